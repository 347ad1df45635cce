/* test_cuda_nccl.c — collectives across devices through NCCL (src/cuda/nccl.c
 * and the module's entry, collective.c), run without a GPU on the fake
 * driver (fake_cuda_driver.c, four devices) and the fake NCCL (fake_nccl.c):
 * its collectives are host functions on the ranks' streams that meet, so a
 * collective that starts before its input is written, a read of its output
 * that does not wait for it, or two threads' groups reaching the ranks in
 * different orders, all show up as wrong data or as a mismatch.
 *
 *   - psum / pmax / all_gather (even and uneven blocks, an empty one) over
 *     2, 3 and 4 devices in every dtype NCCL carries, in place too;
 *   - inputs written and outputs read on other threads' streams, blocks
 *     freed and handed out again while collectives are in flight;
 *   - threads issuing collectives on the same devices at once;
 *   - communicators made once per ordered set of devices;
 *   - the module's entry on core tensors (checks, one device as a copy);
 *   - refusals: no NCCL, NCCL turned off, a library that is not NCCL, a
 *     device twice, a sum of booleans; an asynchronous NCCL error reported
 *     by the next collective;
 *   - the real libnccl.so.2, where installed, has every entry point used.
 * It needs NVRTC (the runtime opens it) and exits 77 (a CTest skip) without. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "fake_cuda.h"
#include "fake_nccl.h"
#include "nccl.h"
#include "runtime.h"
#include "testutil.h"
#include "xcs_host.h"

#define NDEV 4
static xcs_cu_runtime *rts[NDEV];
static xcs_nccl *nc;
static uint64_t test_seed;
static xcs_fake_nccl_stats_fn nccl_stats;

static const xcs_dtype all_dtypes[] = {XCS_F32, XCS_F64, XCS_I32, XCS_I64, XCS_F16, XCS_BF16, XCS_BOOL};

/* Element i of a host buffer of dt as a double, and v stored there (small
 * integers: exact in every dtype, and their sums too, whatever the order). */
static double get(xcs_dtype dt, const char *p, size_t i) {
    switch (dt) {
    case XCS_BOOL: return p[i];
    case XCS_I32: return ((const int32_t *)(const void *)p)[i];
    case XCS_I64: return (double)((const int64_t *)(const void *)p)[i];
    case XCS_F32: return ((const float *)(const void *)p)[i];
    case XCS_F16: return xcs_f16_to_f32(((const uint16_t *)(const void *)p)[i]);
    case XCS_BF16: return xcs_bf16_to_f32(((const uint16_t *)(const void *)p)[i]);
    default: return ((const double *)(const void *)p)[i];
    }
}

static int64_t draw(test_rng *r, xcs_dtype dt) {
    if (dt == XCS_BOOL) return (int64_t)(test_rnd(r) % 2);
    int64_t span = dt == XCS_F16 || dt == XCS_BF16 ? 17 : 2001;
    return (int64_t)(test_rnd(r) % (uint64_t)span) - span / 2;
}

/* One collective's buffers: rank i's input and output on device devs[i]. */
typedef struct coll_case {
    int n, devs[NDEV];
    xcs_cuda_coll kind;
    xcs_dtype dt;
    size_t counts[NDEV], total;
    bool in_place;
    char *host_in[NDEV]; /* what each rank's input holds */
    xcs_cu_ptr in[NDEV], out[NDEV];
    xcs_cu_runtime *rt[NDEV];
} coll_case;

static size_t out_count(const coll_case *c) { return c->kind == XCS_CUDA_COLL_GATHER ? c->total : c->counts[0]; }

/* Allocates and uploads a case's inputs (on the calling thread's streams). */
static void case_setup(coll_case *c, test_rng *r) {
    size_t es = xcs_dtype_size(c->dt);
    c->total = 0;
    for (int i = 0; i < c->n; i++) {
        if (c->kind != XCS_CUDA_COLL_GATHER) c->counts[i] = c->counts[0];
        c->total += c->counts[i];
    }
    for (int i = 0; i < c->n; i++) {
        c->rt[i] = rts[c->devs[i]];
        c->host_in[i] = malloc(c->counts[i] * es + 1);
        for (size_t j = 0; j < c->counts[i]; j++) test_store(c->dt, c->host_in[i], (int64_t)j, draw(r, c->dt),
                                                              (double)draw(r, c->dt));
        CHECK_OK(xcs_cu_alloc(c->rt[i], c->counts[i] * es, &c->in[i]));
        c->out[i] = c->in[i];
        if (!c->in_place) CHECK_OK(xcs_cu_alloc(c->rt[i], out_count(c) * es, &c->out[i]));
        CHECK_OK(xcs_cu_to_device(c->rt[i], c->in[i], c->host_in[i], c->counts[i] * es));
    }
}

/* Reads every rank's output back (on the calling thread's streams) and
 * compares it with the host's combination; returns the wrong elements. */
static size_t case_check(const coll_case *c) {
    size_t es = xcs_dtype_size(c->dt), m = out_count(c), bad = 0;
    char *back = malloc(m * es + 1);
    for (int i = 0; i < c->n; i++) {
        CHECK_OK(xcs_cu_to_host(c->rt[i], back, c->out[i], m * es));
        size_t j = 0;
        for (int r = 0; c->kind == XCS_CUDA_COLL_GATHER && r < c->n; r++)
            for (size_t e = 0; e < c->counts[r]; e++, j++) bad += get(c->dt, back, j) != get(c->dt, c->host_in[r], e);
        for (; c->kind != XCS_CUDA_COLL_GATHER && j < m; j++) {
            double want = get(c->dt, c->host_in[0], j);
            for (int r = 1; r < c->n; r++) {
                double v = get(c->dt, c->host_in[r], j);
                want = c->kind == XCS_CUDA_COLL_SUM ? want + v : (v > want ? v : want);
            }
            bad += get(c->dt, back, j) != want;
        }
    }
    free(back);
    return bad;
}

static void case_free(coll_case *c) {
    for (int i = 0; i < c->n; i++) {
        xcs_cu_free(c->rt[i], c->in[i]);
        if (!c->in_place) xcs_cu_free(c->rt[i], c->out[i]);
        free(c->host_in[i]);
    }
}

static xcs_status case_run(const coll_case *c) {
    return xcs_nccl_run(nc, c->kind, c->n, c->rt, c->in, c->out, c->counts, c->dt);
}

static void test_every_kind_and_dtype(void) {
    test_rng r = {test_seed ^ 0x1111};
    static const int sets[][NDEV + 1] = {{2, 0, 1}, {3, 0, 1, 2}, {4, 0, 1, 2, 3}, {2, 2, 0}, {3, 3, 1, 2}};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
        for (int kind = XCS_CUDA_COLL_SUM; kind <= XCS_CUDA_COLL_GATHER; kind++)
            for (size_t d = 0; d < sizeof all_dtypes / sizeof all_dtypes[0]; d++) {
                coll_case c = {.n = sets[s][0], .kind = (xcs_cuda_coll)kind, .dt = all_dtypes[d]};
                if (!xcs_nccl_supports(c.kind, c.dt)) continue;
                memcpy(c.devs, &sets[s][1], sizeof c.devs);
                c.in_place = kind != XCS_CUDA_COLL_GATHER && test_rnd(&r) % 2;
                bool even = test_rnd(&r) % 2;
                for (int i = 0; i < c.n; i++) c.counts[i] = even && i ? c.counts[0] : (size_t)(test_rnd(&r) % 3000);
                if (kind == XCS_CUDA_COLL_GATHER && s == 1) c.counts[1] = 0; /* an empty block */
                case_setup(&c, &r);
                CHECK_OK(case_run(&c));
                size_t bad = case_check(&c);
                if (bad)
                    fprintf(stderr, "set %zu kind %d %s counts %zu/%zu in_place %d: %zu wrong\n", s, kind,
                            xcs_dtype_name(c.dt), c.counts[0], c.counts[1], c.in_place, bad);
                CHECK_EQ_I(bad, 0);
                case_free(&c);
            }
    /* a communicator set per ordered set of devices, made once */
    CHECK_EQ_I(xcs_nccl_cliques(nc), 5);
    struct xcs_fake_nccl_stats ns;
    nccl_stats(&ns);
    CHECK_EQ_I(ns.comm_inits, 5);
    CHECK_EQ_I(ns.mismatches, 0);
}

/* Inputs uploaded on one thread, the collective queued on a second, the
 * outputs read and freed on a third: each waits for the others' streams
 * through the block table, never for the host. */
typedef struct relay3 {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int turn, round;
    coll_case c;
    test_rng r;
    size_t bad;
} relay3;

static void relay_wait(relay3 *x, int who) {
    pthread_mutex_lock(&x->lock);
    while (x->turn != who) pthread_cond_wait(&x->cond, &x->lock);
    pthread_mutex_unlock(&x->lock);
}

static void relay_pass(relay3 *x, int next) {
    pthread_mutex_lock(&x->lock);
    x->turn = next;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

enum { RELAY_ROUNDS = 24 };

static void *relay_upload(void *arg) {
    relay3 *x = arg;
    for (int k = 0; k < RELAY_ROUNDS; k++) {
        relay_wait(x, 0);
        coll_case *c = &x->c;
        *c = (coll_case){.n = 2 + k % 3, .devs = {k % 2, 1 - k % 2, 2, 3}, .kind = (xcs_cuda_coll)(k % 3),
                         .dt = k % 4 ? XCS_F32 : XCS_I64};
        for (int i = 0; i < c->n; i++) c->counts[i] = 1000 + (size_t)(test_rnd(&x->r) % 200000);
        case_setup(c, &x->r);
        relay_pass(x, 1);
    }
    return NULL;
}

static void *relay_collect(void *arg) {
    relay3 *x = arg;
    for (int k = 0; k < RELAY_ROUNDS; k++) {
        relay_wait(x, 1);
        CHECK_OK(case_run(&x->c));
        relay_pass(x, 2);
    }
    return NULL;
}

static void *relay_read(void *arg) {
    relay3 *x = arg;
    for (int k = 0; k < RELAY_ROUNDS; k++) {
        relay_wait(x, 2);
        x->bad += case_check(&x->c);
        case_free(&x->c); /* handed to the uploader's next round, maybe while streams still use them */
        relay_pass(x, 0);
    }
    return NULL;
}

static void test_other_threads_streams(void) {
    relay3 x = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .r = {test_seed ^ 0x2222}};
    pthread_t t[3];
    void *(*fn[3])(void *) = {relay_upload, relay_collect, relay_read};
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, fn[i], &x);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CHECK_EQ_I(x.bad, 0);
}

/* Threads issuing collectives on the same devices at once: each group
 * reaches every rank in the same order (the set's issue lock). */
typedef struct issuer {
    int id;
    size_t bad;
} issuer;

static void *issue_many(void *arg) {
    issuer *me = arg;
    test_rng r = {test_seed ^ (0x3333 + (uint64_t)me->id)};
    for (int k = 0; k < 12; k++) {
        coll_case c = {.n = 3, .devs = {0, 1, 2}, .kind = (xcs_cuda_coll)(test_rnd(&r) % 3), .dt = XCS_F64};
        for (int i = 0; i < c.n; i++) c.counts[i] = 1 + (size_t)(test_rnd(&r) % 5000);
        case_setup(&c, &r);
        CHECK_OK(case_run(&c));
        me->bad += case_check(&c);
        case_free(&c);
    }
    return NULL;
}

static void test_threads_at_once(void) {
    struct xcs_fake_nccl_stats before, after;
    nccl_stats(&before);
    enum { T = 4 };
    pthread_t t[T];
    issuer is[T];
    for (int i = 0; i < T; i++) {
        is[i] = (issuer){i, 0};
        pthread_create(&t[i], NULL, issue_many, &is[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < T; i++) CHECK_EQ_I(is[i].bad, 0);
    nccl_stats(&after);
    CHECK_EQ_I(after.mismatches, before.mismatches);
    CHECK_EQ_I(after.collectives - before.collectives >= T * 12, 1);
}

/* The module's entry on core tensors (collective.c). */
static xcs_tensor *on_device(int dev, xcs_dtype dt, int64_t rows, int64_t cols, test_rng *r, xcs_tensor **host) {
    int64_t shape[2] = {rows, cols};
    xcs_tensor *h = NULL, *d = NULL;
    CHECK_OK(xcs_tensor_empty(dt, 2, shape, &h));
    for (int64_t i = 0; h && i < rows * cols; i++) test_store(dt, h->storage->data, i, draw(r, dt), (double)draw(r, dt));
    if (h) CHECK_OK(xcs_tensor_to(h, XCS_DEVICE_CUDA, dev, &d));
    *host = h;
    return d;
}

static void test_module_entry(void) {
    test_rng r = {test_seed ^ 0x4444};
    xcs_tensor *h[3], *p[3], *o[3] = {0}, *back = NULL;
    for (int i = 0; i < 3; i++) p[i] = on_device(i, XCS_F32, 4 + i, 3, &r, &h[i]);
    /* all_gather of uneven blocks */
    for (int i = 0; i < 3; i++) CHECK_OK(xcs_tensor_empty_on(p[i]->storage, XCS_F32, 2, SHAPE(15, 3), &o[i]));
    CHECK_OK(xcs_cuda_be_collective(XCS_CUDA_COLL_GATHER, 3, (const xcs_tensor *const *)p, o));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(xcs_tensor_to(o[i], XCS_DEVICE_CPU, 0, &back));
        size_t bad = 0, off = 0;
        for (int b = 0; back && b < 3; b++) {
            bad += memcmp((char *)back->storage->data + off, h[b]->storage->data, (size_t)(4 + b) * 3 * 4) != 0;
            off += (size_t)(4 + b) * 3 * 4;
        }
        CHECK_EQ_I(bad, 0);
        xcs_tensor_free(back);
        back = NULL;
    }
    /* one device: a copy */
    xcs_tensor *one = NULL;
    CHECK_OK(xcs_tensor_empty_on(p[1]->storage, XCS_F32, 2, SHAPE(5, 3), &one));
    CHECK_OK(xcs_cuda_be_collective(XCS_CUDA_COLL_SUM, 1, (const xcs_tensor *const *)&p[1], &one));
    CHECK_OK(xcs_tensor_to(one, XCS_DEVICE_CPU, 0, &back));
    CHECK(back && memcmp(back->storage->data, h[1]->storage->data, 5 * 3 * 4) == 0);
    xcs_tensor_free(back);
    /* refusals: what the caller must have checked */
    const xcs_tensor *same[2] = {p[0], p[0]};
    xcs_tensor *two[2] = {o[0], o[0]};
    CHECK_ERR(xcs_cuda_be_collective(XCS_CUDA_COLL_GATHER, 2, same, two), XCS_ERR_VALUE, "both on cuda:0");
    const xcs_tensor *uneven[2] = {p[0], p[1]};
    xcs_tensor *uo[2] = {o[0], o[1]};
    CHECK_ERR(xcs_cuda_be_collective(XCS_CUDA_COLL_SUM, 2, uneven, uo), XCS_ERR_VALUE, "elements");
    CHECK_ERR(xcs_cuda_be_collective(XCS_CUDA_COLL_GATHER, 2, uneven, uo), XCS_ERR_VALUE, "all_gather: result 0");
    const xcs_tensor *host_part[2] = {h[0], p[1]};
    CHECK_ERR(xcs_cuda_be_collective(XCS_CUDA_COLL_MAX, 2, host_part, uo), XCS_ERR_VALUE, "same CUDA device");
    CHECK_ERR(xcs_cuda_be_collective((xcs_cuda_coll)7, 2, uneven, uo), XCS_ERR_VALUE, "unknown kind");
    xcs_tensor_free(one);
    for (int i = 0; i < 3; i++) {
        xcs_tensor_free(o[i]);
        xcs_tensor_free(p[i]);
        xcs_tensor_free(h[i]);
    }
}

/* What makes NCCL unusable, and refused collectives. */
static void test_refusals(void) {
    xcs_nccl *other = NULL;
    setenv("XCS_NCCL", "0", 1);
    CHECK_ERR(xcs_nccl_open(&other), XCS_ERR_UNSUPPORTED, "turned off");
    unsetenv("XCS_NCCL");
    setenv("XCS_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
    CHECK_ERR(xcs_nccl_open(&other), XCS_ERR_UNSUPPORTED, "no NCCL");
    setenv("XCS_NCCL_LIBRARY", XCS_FAKE_CUDA_PATH, 1); /* a library, but not NCCL */
    CHECK_ERR(xcs_nccl_open(&other), XCS_ERR_UNSUPPORTED, "lacks ncclGetVersion");
    setenv("XCS_NCCL_LIBRARY", XCS_FAKE_NCCL_PATH, 1);
    CHECK(other == NULL);
    xcs_cu_ptr a = 0, b = 0;
    CHECK_OK(xcs_cu_alloc(rts[0], 64, &a));
    CHECK_OK(xcs_cu_alloc(rts[1], 64, &b));
    xcs_cu_runtime *twice[2] = {rts[0], rts[0]}, *pair[2] = {rts[0], rts[1]};
    xcs_cu_ptr bufs[2] = {a, b};
    size_t counts[2] = {16, 16};
    CHECK_ERR(xcs_nccl_run(nc, XCS_CUDA_COLL_SUM, 2, twice, bufs, bufs, counts, XCS_F32), XCS_ERR_VALUE,
              "device 0 holds two ranks");
    CHECK_ERR(xcs_nccl_run(nc, XCS_CUDA_COLL_SUM, 2, pair, bufs, bufs, counts, XCS_BOOL), XCS_ERR_UNSUPPORTED, "bool");
    xcs_cu_free(rts[0], a);
    xcs_cu_free(rts[1], b);
}

/* The installed NCCL, where there is one: every entry point nccl.c uses,
 * and its version (no GPU needed). */
static void test_real_nccl_entry_points(void) {
    void *probe = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!probe) {
        printf("  (no libnccl.so.2 here: %s)\n", dlerror());
        return;
    }
    dlclose(probe);
    unsetenv("XCS_NCCL_LIBRARY");
    xcs_nccl *real = NULL;
    CHECK_OK(xcs_nccl_open(&real));
    CHECK(xcs_nccl_version(real) >= 20000);
    printf("  (libnccl.so.2: version %d)\n", xcs_nccl_version(real));
    xcs_nccl_close(real);
    setenv("XCS_NCCL_LIBRARY", XCS_FAKE_NCCL_PATH, 1);
}

/* A collective that fails on the devices (a rank's output is not device
 * memory) is reported by the next collective on those devices.  Last: the
 * fake's context error is sticky, as a GPU's is. */
static void test_async_error_reported(void) {
    xcs_cu_ptr a = 0, b = 0;
    CHECK_OK(xcs_cu_alloc(rts[2], 256, &a));
    CHECK_OK(xcs_cu_alloc(rts[3], 256, &b));
    xcs_cu_runtime *pair[2] = {rts[2], rts[3]};
    xcs_cu_ptr in[2] = {a, b}, out[2] = {a, b + ((xcs_cu_ptr)1 << 40)};
    size_t counts[2] = {64, 64};
    xcs_nccl_run(nc, XCS_CUDA_COLL_SUM, 2, pair, in, out, counts, XCS_F32); /* queued: fails later */
    CHECK(xcs_cu_sync(rts[2]) != XCS_OK);
    CHECK_ERR(xcs_nccl_run(nc, XCS_CUDA_COLL_SUM, 2, pair, in, in, counts, XCS_F32), XCS_ERR_INTERNAL, "asynchronous");
}

int main(void) {
    test_seed = xcs_fake_cuda_test_seed();
    setenv("XCS_FAKE_CUDA_DELAY_US", "30", 1);
    setenv("XCS_FAKE_CUDA_DEVICES", "4", 1);
    setenv("XCS_CUDA_DRIVER", XCS_FAKE_CUDA_PATH, 1);
    setenv("XCS_NCCL_LIBRARY", XCS_FAKE_NCCL_PATH, 1);
    setenv("XCS_FAKE_NCCL_LAUNCH_DELAY_US", "200", 1); /* other threads' groups may come in between ranks */
    setenv("XCS_CUDA_DISK_CACHE", "0", 1);
    void *lib = dlopen(XCS_FAKE_NCCL_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!lib || !(*(void **)&nccl_stats = dlsym(lib, "xcs_fake_nccl_stats"))) {
        fprintf(stderr, "cannot load the fake NCCL %s: %s\n", XCS_FAKE_NCCL_PATH, dlerror());
        return 1;
    }
    CHECK_OK(xcs_host_init());
    for (int i = 0; i < NDEV; i++) {
        xcs_status st = xcs_cuda_be_register(i);
        if (st == XCS_ERR_UNSUPPORTED && check_contains(xcs_last_error(), "NVRTC")) {
            printf("skipped: %s\n", xcs_last_error());
            return 77;
        }
        CHECK_OK(st);
        if (st || !(rts[i] = xcs_cuda_be_runtime(i))) return check_report();
    }
    CHECK_OK(xcs_nccl_open(&nc));
    if (!nc) return check_report();
    RUN(test_every_kind_and_dtype);
    RUN(test_other_threads_streams);
    RUN(test_threads_at_once);
    RUN(test_module_entry);
    RUN(test_refusals);
    RUN(test_real_nccl_entry_points);
    RUN(test_async_error_reported);
    xcs_nccl_close(nc);
    struct xcs_fake_nccl_stats ns;
    nccl_stats(&ns);
    CHECK_EQ_I(ns.live_comms, 3); /* this handle's communicators are gone; the module's ({0,1,2}) stay */
    return check_report();
}
