/* nccl.c — see nccl.h.  The NCCL API is declared here with its documented C
 * signatures (nccl.h of NCCL 2.x: enums as ints, communicators and streams
 * as opaque pointers), so no NCCL header is needed to build it. */
#include "nccl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xcs_cuda.h"

typedef int nccl_res;   /* ncclResult_t: 0 is ncclSuccess */
typedef void *nccl_comm; /* ncclComm_t */

enum { NCCL_UINT8 = 1, NCCL_INT32 = 2, NCCL_INT64 = 4, NCCL_F16 = 6, NCCL_F32 = 7, NCCL_F64 = 8,
       NCCL_BF16 = 9 };
enum { NCCL_SUM = 0, NCCL_MAX = 2 };

/* Communicators over one ordered set of devices, with the lock that keeps
 * every rank's queue of groups in one order. */
typedef struct nccl_clique {
    int n;
    int dev[XCS_CUDA_MAX_DEVICES];
    nccl_comm comm[XCS_CUDA_MAX_DEVICES];
    pthread_mutex_t issue;
} nccl_clique;

struct xcs_nccl {
    void *lib;
    int version;
    pthread_mutex_t lock; /* the clique list */
    nccl_clique **cliques;
    int n_cliques, cap_cliques;
    nccl_res (*get_version)(int *);
    nccl_res (*comm_init_all)(nccl_comm *, int, const int *);
    nccl_res (*comm_destroy)(nccl_comm);
    nccl_res (*async_error)(nccl_comm, nccl_res *);
    nccl_res (*group_start)(void);
    nccl_res (*group_end)(void);
    nccl_res (*all_reduce)(const void *, void *, size_t, int, int, nccl_comm, void *);
    nccl_res (*all_gather)(const void *, void *, size_t, int, nccl_comm, void *);
    nccl_res (*broadcast)(const void *, void *, size_t, int, int, nccl_comm, void *);
    const char *(*error_string)(nccl_res);
};

static xcs_status nccl_fail(const xcs_nccl *nc, nccl_res r, const char *what) {
    const char *s = nc->error_string ? nc->error_string(r) : NULL;
    return xcs_error(XCS_ERR_INTERNAL, "NCCL %s failed: %s (%d)", what, s ? s : "?", r);
}

void xcs_nccl_close(xcs_nccl *nc) {
    if (!nc) return;
    for (int i = 0; i < nc->n_cliques; i++) {
        for (int r = 0; r < nc->cliques[i]->n; r++) nc->comm_destroy(nc->cliques[i]->comm[r]);
        pthread_mutex_destroy(&nc->cliques[i]->issue);
        free(nc->cliques[i]);
    }
    free(nc->cliques);
    pthread_mutex_destroy(&nc->lock);
    /* the library stays loaded: NCCL keeps threads of its own */
    free(nc);
}

xcs_status xcs_nccl_open(xcs_nccl **out) {
    *out = NULL;
    if (xcs_env_off("XCS_NCCL")) return xcs_error(XCS_ERR_UNSUPPORTED, "NCCL is turned off (XCS_NCCL=0)");
    const char *env = getenv("XCS_NCCL_LIBRARY");
    const char *name = env && *env ? env : "libnccl.so.2";
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return xcs_error(XCS_ERR_UNSUPPORTED, "no NCCL (%s)", dlerror());
    xcs_nccl *nc = calloc(1, sizeof *nc);
    if (!nc) return xcs_error(XCS_ERR_MEMORY, "out of memory opening NCCL");
    nc->lib = lib;
    pthread_mutex_init(&nc->lock, NULL);
    struct {
        void **field;
        const char *sym;
    } syms[] = {
        {(void **)&nc->get_version, "ncclGetVersion"},   {(void **)&nc->comm_init_all, "ncclCommInitAll"},
        {(void **)&nc->comm_destroy, "ncclCommDestroy"}, {(void **)&nc->async_error, "ncclCommGetAsyncError"},
        {(void **)&nc->group_start, "ncclGroupStart"},   {(void **)&nc->group_end, "ncclGroupEnd"},
        {(void **)&nc->all_reduce, "ncclAllReduce"},     {(void **)&nc->all_gather, "ncclAllGather"},
        {(void **)&nc->broadcast, "ncclBroadcast"},      {(void **)&nc->error_string, "ncclGetErrorString"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].field = dlsym(lib, syms[i].sym))) {
            xcs_nccl_close(nc);
            return xcs_error(XCS_ERR_UNSUPPORTED, "%s lacks %s: NCCL is too old for this build", name, syms[i].sym);
        }
    nccl_res r = nc->get_version(&nc->version);
    if (r != 0) {
        const char *why = nc->error_string(r);
        xcs_nccl_close(nc);
        return xcs_error(XCS_ERR_UNSUPPORTED, "%s: ncclGetVersion failed: %s (%d)", name, why ? why : "?", r);
    }
    *out = nc;
    return XCS_OK;
}

int xcs_nccl_version(const xcs_nccl *nc) { return nc ? nc->version : 0; }

int xcs_nccl_cliques(xcs_nccl *nc) {
    pthread_mutex_lock(&nc->lock);
    int n = nc->n_cliques;
    pthread_mutex_unlock(&nc->lock);
    return n;
}

static int nccl_dtype(xcs_dtype dt) {
    switch (dt) {
    case XCS_BOOL: return NCCL_UINT8;
    case XCS_I32: return NCCL_INT32;
    case XCS_I64: return NCCL_INT64;
    case XCS_F32: return NCCL_F32;
    case XCS_F64: return NCCL_F64;
    case XCS_F16: return NCCL_F16;
    case XCS_BF16: return NCCL_BF16;
    default: return -1;
    }
}

bool xcs_nccl_supports(xcs_cuda_coll kind, xcs_dtype dt) {
    /* a sum of booleans is not a boolean: the caller's promotion decides */
    return nccl_dtype(dt) >= 0 && !(kind == XCS_CUDA_COLL_SUM && dt == XCS_BOOL);
}

/* The communicators over devs[0..n) in this order, made at first use. */
static xcs_status clique_of(xcs_nccl *nc, int n, const int *devs, nccl_clique **out) {
    xcs_status st = XCS_OK;
    pthread_mutex_lock(&nc->lock);
    *out = NULL;
    for (int i = 0; i < nc->n_cliques && !*out; i++)
        if (nc->cliques[i]->n == n && memcmp(nc->cliques[i]->dev, devs, (size_t)n * sizeof *devs) == 0)
            *out = nc->cliques[i];
    if (*out) goto done;
    if (nc->n_cliques == nc->cap_cliques) {
        int cap = nc->cap_cliques ? 2 * nc->cap_cliques : 4;
        nccl_clique **v = realloc(nc->cliques, (size_t)cap * sizeof *v);
        if (!v) {
            st = xcs_error(XCS_ERR_MEMORY, "out of memory for NCCL communicators");
            goto done;
        }
        nc->cliques = v;
        nc->cap_cliques = cap;
    }
    nccl_clique *c = calloc(1, sizeof *c);
    if (!c) {
        st = xcs_error(XCS_ERR_MEMORY, "out of memory for NCCL communicators");
        goto done;
    }
    c->n = n;
    memcpy(c->dev, devs, (size_t)n * sizeof *devs);
    nccl_res r = nc->comm_init_all(c->comm, n, c->dev);
    if (r != 0) {
        char list[XCS_CUDA_MAX_DEVICES * 4 + 1] = "", *p = list;
        for (int i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? "," : "", devs[i]);
        st = xcs_error_context(nccl_fail(nc, r, "ncclCommInitAll"), "devices %s", list);
        free(c);
        goto done;
    }
    pthread_mutex_init(&c->issue, NULL);
    nc->cliques[nc->n_cliques++] = *out = c;
done:
    pthread_mutex_unlock(&nc->lock);
    return st;
}

/* Rank i's part of the group (issue lock held, inside the group). */
static nccl_res enqueue_rank(const xcs_nccl *nc, xcs_cuda_coll kind, const nccl_clique *c, int i, xcs_cu_ptr in,
                             xcs_cu_ptr out, const size_t *counts, int dt, size_t esize, void *stream) {
    void *src = (void *)(uintptr_t)in, *dst = (void *)(uintptr_t)out;
    if (kind != XCS_CUDA_COLL_GATHER)
        return nc->all_reduce(src, dst, counts[0], dt, kind == XCS_CUDA_COLL_SUM ? NCCL_SUM : NCCL_MAX, c->comm[i], stream);
    bool even = true;
    for (int r = 1; r < c->n; r++) even = even && counts[r] == counts[0];
    if (even) return nc->all_gather(src, dst, counts[0], dt, c->comm[i], stream);
    /* uneven blocks: one broadcast per root into its rows (NCCL's all-gather-v) */
    size_t off = 0;
    nccl_res res = 0;
    for (int r = 0; r < c->n && res == 0; r++) {
        if (counts[r]) res = nc->broadcast(src, (char *)dst + off * esize, counts[r], dt, r, c->comm[i], stream);
        off += counts[r];
    }
    return res;
}

xcs_status xcs_nccl_run(xcs_nccl *nc, xcs_cuda_coll kind, int n, xcs_cu_runtime *const *rts, const xcs_cu_ptr *in,
                        const xcs_cu_ptr *out, const size_t *counts, xcs_dtype dt) {
    int ndt = nccl_dtype(dt);
    if (!xcs_nccl_supports(kind, dt))
        return xcs_error(XCS_ERR_UNSUPPORTED, "NCCL does not carry this collective on %s", xcs_dtype_name(dt));
    if (n < 1 || n > XCS_CUDA_MAX_DEVICES) return xcs_error(XCS_ERR_VALUE, "NCCL collective over %d devices", n);
    int devs[XCS_CUDA_MAX_DEVICES];
    for (int i = 0; i < n; i++) {
        devs[i] = xcs_cu_ordinal(rts[i]);
        for (int j = 0; j < i; j++)
            if (devs[j] == devs[i])
                return xcs_error(XCS_ERR_VALUE, "NCCL collective: device %d holds two ranks", devs[i]);
    }
    nccl_clique *c = NULL;
    xcs_status st = clique_of(nc, n, devs, &c);
    if (st) return st;
    /* each rank's stream, ordered after the work its buffers wait for */
    void *streams[XCS_CUDA_MAX_DEVICES];
    pthread_mutex_lock(&c->issue);
    for (int i = 0; i < n && !st; i++) {
        xcs_cu_use use[2] = {{in[i], false, false}, {out[i], true, false}};
        if (!(st = xcs_cu_order(rts[i], 2, use))) st = xcs_cu_stream(rts[i], &streams[i], NULL);
    }
    if (st) {
        pthread_mutex_unlock(&c->issue);
        return st;
    }
    size_t esize = xcs_dtype_size(dt);
    nccl_res r = nc->group_start(), r_end = 0, r_async = 0;
    if (r != 0) {
        pthread_mutex_unlock(&c->issue);
        return nccl_fail(nc, r, "ncclGroupStart");
    }
    for (int i = 0; i < n && r == 0; i++) r = enqueue_rank(nc, kind, c, i, in[i], out[i], counts, ndt, esize, streams[i]);
    r_end = nc->group_end(); /* ends the group even after a failed enqueue */
    /* a collective that failed on the devices shows on its communicators */
    for (int i = 0; i < n && r == 0 && r_end == 0 && r_async == 0; i++)
        if (nc->async_error(c->comm[i], &r_async) != 0) r_async = 0;
    pthread_mutex_unlock(&c->issue);
    static const char *what[] = {"ncclAllReduce (sum)", "ncclAllReduce (max)", "ncclAllGather"};
    if (r != 0) return nccl_fail(nc, r, what[kind]);
    if (r_end != 0) return nccl_fail(nc, r_end, "ncclGroupEnd");
    if (r_async != 0)
        return xcs_error_context(nccl_fail(nc, r_async, what[kind]),
                                 "NCCL reports an asynchronous error on these devices' communicators (this "
                                 "collective or an earlier one)");
    return XCS_OK;
}
