/* fake_nccl.c — libxcs_fakenccl.so: a fake NCCL (the NCCL 2.28 ABI subset
 * the runtime uses: ncclCommInitAll, groups, AllReduce, Broadcast, AllGather)
 * for testing multi-device collectives on the fake CUDA driver, without a GPU:
 *     XCS_CUDA_DRIVER=.../libxcs_fakecuda.so XCS_NCCL_LIBRARY=.../libxcs_fakenccl.so
 * As on a GPU:
 *   - each rank's part is queued on its stream (the driver's cuLaunchHostFunc),
 *     so it runs after the work queued before it and before the work after;
 *   - when the stream gets there, its worker thread waits until every rank of
 *     the communicator reached the same collective (numbered per communicator
 *     in launch order); the last to arrive checks that all agree, writes every
 *     rank's output and releases the others.  A missing wait around a
 *     collective therefore reads or writes stale data; ranks that disagree
 *     leave an async error (ncclCommGetAsyncError), not wrong data;
 *   - two ranks of one collective on the same stream wait for each other for
 *     ever.  The NULL / legacy / per-thread streams are refused for more than
 *     one rank (the fake driver runs their work on the calling thread, which
 *     the first rank would block).
 * Reductions go in rank order, so results are deterministic: float32 in
 * float, float64 in double, float16 / bfloat16 in float rounded back (nearest
 * even, half.h) after every step, integers wrapping.  ncclAvg and the float8
 * types are refused.  Buffers are checked against the driver's live
 * allocations (xcs_fake_cuda_device_ptr): a bad one leaves the driver's
 * sticky CUDA_ERROR_ILLEGAL_ADDRESS and ncclUnhandledCudaError, nothing written.
 *
 * The driver is dlopen(getenv("XCS_CUDA_DRIVER")), the handle the runtime
 * holds, opened at the first ncclCommInitAll and kept.  Process state: the
 * static struct `g` under one mutex; each clique of communicators has a mutex
 * and condition for its rendezvous (never held with g.lock). */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_cuda.h"
#include "fake_nccl.h"
#include "half.h"

#define FAKE_API __attribute__((visibility("default")))

/* ------------------------------------------------------------ the NCCL 2.28 ABI (nccl.h) */

typedef enum { ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
               ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6, ncclInProgress = 7 } ncclResult_t;
/* (ncclFloat8e4m3 = 10 and ncclFloat8e5m2 = 11 exist too: refused) */
typedef enum { ncclInt8 = 0, ncclUint8 = 1, ncclInt32 = 2, ncclUint32 = 3, ncclInt64 = 4, ncclUint64 = 5,
               ncclFloat16 = 6, ncclFloat32 = 7, ncclFloat64 = 8, ncclBfloat16 = 9 } ncclDataType_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef struct ncclComm *ncclComm_t;
typedef void *cudaStream_t;

/* ------------------------------------------------------------ state */

#define MAX_RANKS 16 /* distinct devices of the fake driver (its MAX_DEVICES) */
#define CUDA_ERROR_INVALID_HANDLE 400

typedef enum { COLL_ALLREDUCE, COLL_BROADCAST, COLL_ALLGATHER } coll_kind;
static const char *const coll_names[] = {"ncclAllReduce", "ncclBroadcast", "ncclAllGather"};
static const size_t dtype_sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};

/* One rank's part of one collective: owned by the caller's group list, then
 * by its stream (freed by its host function).  Fields a kind does not use
 * are 0, so that ranks agree when their fields are equal. */
typedef struct task {
    coll_kind kind;
    unsigned long long send, recv; /* device addresses */
    size_t count;                  /* AllGather: per rank */
    ncclDataType_t dtype;
    ncclRedOp_t op;
    int root, rank;
    ncclComm_t comm; /* numbers the task at launch: must live until then */
    struct clique *c;
    unsigned long long seq;
    cudaStream_t stream;
    struct meet *spare; /* becomes the rendezvous if this rank is first */
    struct task *next;  /* the calling thread's group list */
} task;

/* The rendezvous of collective number seq of a clique (its mutex); freed by
 * the last rank to leave. */
typedef struct meet {
    unsigned long long seq;
    int arrived, left, done;
    struct meet *next;
    task *tasks[]; /* by rank */
} meet;

/* The communicators of one ncclCommInitAll.  Communicators and tasks hold
 * references, so destroying communicators with collectives queued is safe. */
typedef struct clique {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a rendezvous completed */
    int nranks, refs;  /* refs: under g.lock */
    ncclResult_t err;  /* the first asynchronous error */
    meet *meets;       /* rendezvous in progress */
} clique;

struct ncclComm {
    clique *c;
    int rank, device;
    unsigned long long next_seq; /* g.lock */
};

static struct {
    pthread_mutex_t lock;
    struct xcs_fake_nccl_stats stats;
    /* the fake driver: set once, before the first communicator exists */
    void *lib;
    int (*cu_init)(unsigned);
    int (*device_count)(int *);
    int (*stream_query)(void *);
    int (*host_fn)(void *, void (*)(void *), void *);
    xcs_fake_cuda_device_ptr_fn device_ptr;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Collectives issued on this thread inside ncclGroupStart/End, in order. */
static _Thread_local struct { int depth; task *head, *tail; } tls_group;

/* ------------------------------------------------------------ helpers */

static void stat_add(long long *field, long long n) {
    pthread_mutex_lock(&g.lock);
    *field += n;
    pthread_mutex_unlock(&g.lock);
}

/* Says why a call is refused (as real NCCL does with NCCL_DEBUG=WARN). */
static ncclResult_t refuse(const char *fn, const char *why, ncclResult_t r) {
    fprintf(stderr, "xcs fake NCCL: %s: %s\n", fn, why);
    return r;
}

static void clique_unref(clique *c) {
    pthread_mutex_lock(&g.lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&g.lock);
    if (!last) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static void task_free(task *t) {
    clique *c = t->c;
    free(t->spare);
    free(t);
    clique_unref(c);
}

/* Keeps the clique's first asynchronous error. */
static void clique_fail(clique *c, ncclResult_t r) {
    pthread_mutex_lock(&c->mu);
    if (c->err == ncclSuccess) c->err = r;
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ the driver */

static ncclResult_t driver_load(void) {
    const char *path = getenv("XCS_CUDA_DRIVER");
    if (!path || !*path) return refuse("ncclCommInitAll", "XCS_CUDA_DRIVER is not set", ncclSystemError);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return refuse("ncclCommInitAll", dlerror(), ncclSystemError);
    *(void **)&g.cu_init = dlsym(lib, "cuInit");
    *(void **)&g.device_count = dlsym(lib, "cuDeviceGetCount");
    *(void **)&g.stream_query = dlsym(lib, "cuStreamQuery");
    *(void **)&g.host_fn = dlsym(lib, "cuLaunchHostFunc");
    *(void **)&g.device_ptr = dlsym(lib, "xcs_fake_cuda_device_ptr");
    if (!g.cu_init || !g.device_count || !g.stream_query || !g.host_fn || !g.device_ptr) {
        dlclose(lib);
        return refuse("ncclCommInitAll", "XCS_CUDA_DRIVER is not the fake driver (no xcs_fake_cuda_device_ptr)",
                      ncclSystemError);
    }
    g.lib = lib;
    return ncclSuccess;
}

/* Opens the driver once (kept open, as the runtime keeps it) and returns its
 * device count in *n. */
static ncclResult_t driver_devices(int *n) {
    pthread_mutex_lock(&g.lock);
    ncclResult_t r = g.lib ? ncclSuccess : driver_load();
    pthread_mutex_unlock(&g.lock);
    if (r) return r;
    int e = g.cu_init(0);
    if (!e) e = g.device_count(n);
    return e ? refuse("ncclCommInitAll", "the CUDA driver refused cuInit / cuDeviceGetCount", ncclUnhandledCudaError)
             : ncclSuccess;
}

/* ------------------------------------------------------------ element arithmetic */

/* One element: integers in u (signed ones sign-extended, so i compares
 * them), floats in f. */
typedef union { int64_t i; uint64_t u; double f; } scalar;

static scalar load(ncclDataType_t t, const unsigned char *p) {
    scalar v = {0};
    uint16_t h;
    int32_t i32;
    float f;
    switch (t) {
    case ncclInt8: v.i = (int8_t)*p; break;
    case ncclUint8: v.u = *p; break;
    case ncclInt32: memcpy(&i32, p, 4), v.i = i32; break;
    case ncclUint32: memcpy(&i32, p, 4), v.u = (uint32_t)i32; break;
    case ncclInt64: case ncclUint64: memcpy(&v.u, p, 8); break;
    case ncclFloat16: memcpy(&h, p, 2), v.f = xcs_f16_to_f32(h); break;
    case ncclFloat32: memcpy(&f, p, 4), v.f = f; break;
    case ncclFloat64: memcpy(&v.f, p, 8); break;
    case ncclBfloat16: memcpy(&h, p, 2), v.f = xcs_bf16_to_f32(h); break;
    }
    return v;
}

/* Integers: the low bits of u (two's complement wraps signed ones too);
 * float64: the same 8 bytes. */
static void store(ncclDataType_t t, unsigned char *p, scalar v) {
    size_t n = dtype_sizes[t];
    uint8_t u8 = (uint8_t)v.u;
    uint32_t u32 = (uint32_t)v.u;
    uint16_t h;
    float f;
    const void *src = n == 1 ? (const void *)&u8 : n == 4 ? (const void *)&u32 : (const void *)&v.u;
    if (t == ncclFloat32) {
        f = (float)v.f;
        src = &f;
    } else if (t == ncclFloat16 || t == ncclBfloat16) {
        h = t == ncclFloat16 ? xcs_f32_to_f16((float)v.f) : xcs_f32_to_bf16((float)v.f);
        src = &h;
    }
    memcpy(p, src, n);
}

static double combine_f(ncclRedOp_t op, double a, double b) {
    return op == ncclSum ? a + b : op == ncclProd ? a * b : op == ncclMax ? (a > b ? a : b) : (a < b ? a : b);
}

/* a op b in the dtype's arithmetic.  Floats: the double result rounded to
 * float is float arithmetic (53 >= 2 * 24 + 2 bits: double rounding is
 * innocuous for + and *); 16-bit floats are rounded back every step. */
static scalar combine(ncclDataType_t t, ncclRedOp_t op, scalar a, scalar b) {
    scalar r = {0};
    if (t == ncclFloat64) {
        r.f = combine_f(op, a.f, b.f);
    } else if (t >= ncclFloat16) {
        float f = (float)combine_f(op, a.f, b.f);
        if (t == ncclFloat16) f = xcs_f16_to_f32(xcs_f32_to_f16(f));
        if (t == ncclBfloat16) f = xcs_bf16_to_f32(xcs_f32_to_bf16(f));
        r.f = f;
    } else if (op == ncclSum || op == ncclProd) {
        r.u = op == ncclSum ? a.u + b.u : a.u * b.u;
    } else {
        int is_signed = t == ncclInt8 || t == ncclInt32 || t == ncclInt64;
        int a_greater = is_signed ? a.i > b.i : a.u > b.u;
        r = a_greater == (op == ncclMax) ? a : b;
    }
    return r;
}

/* ------------------------------------------------------------ running a collective */

static int device_buffer(const task *t, const char *which, unsigned long long d, size_t n, void **host) {
    if (g.device_ptr(d, n, host) == 0) return 1;
    fprintf(stderr, "xcs fake NCCL: %s #%llu, rank %d: the %s buffer 0x%llx (%zu bytes) is not device memory\n",
            coll_names[t->kind], t->seq, t->rank, which, d, n);
    return 0;
}

/* Do all ranks call the same collective?  (If not, says how they differ.) */
static int agree(const meet *m, int nranks) {
    const task *a = m->tasks[0];
    for (int r = 1; r < nranks; r++) {
        const task *b = m->tasks[r];
        if (b->kind == a->kind && b->count == a->count && b->dtype == a->dtype && b->op == a->op && b->root == a->root)
            continue;
        fprintf(stderr,
                "xcs fake NCCL: collective #%llu: rank 0 called %s(count %zu, dtype %d, op %d, root %d) but rank %d "
                "%s(count %zu, dtype %d, op %d, root %d): nothing written (ncclInvalidUsage)\n",
                m->seq, coll_names[a->kind], a->count, (int)a->dtype, (int)a->op, a->root, r, coll_names[b->kind],
                b->count, (int)b->dtype, (int)b->op, b->root);
        return 0;
    }
    return 1;
}

/* The output every rank receives, built in out from all the inputs before
 * anything is written, so that buffers may overlap (in place). */
static void compute(const task *t, void *const *send, int nranks, unsigned char *out) {
    size_t esz = dtype_sizes[t->dtype], bytes = t->count * esz;
    if (t->kind == COLL_BROADCAST) memcpy(out, send[t->root], bytes);
    if (t->kind == COLL_ALLGATHER)
        for (int r = 0; r < nranks; r++) memcpy(out + (size_t)r * bytes, send[r], bytes);
    if (t->kind != COLL_ALLREDUCE) return;
    for (size_t i = 0; i < bytes; i += esz) {
        scalar acc = load(t->dtype, (const unsigned char *)send[0] + i);
        for (int r = 1; r < nranks; r++)
            acc = combine(t->dtype, t->op, acc, load(t->dtype, (const unsigned char *)send[r] + i));
        store(t->dtype, out + i, acc);
    }
}

/* Run by the last rank to arrive, without the clique's mutex: the others
 * wait, so nobody else touches m->tasks. */
static ncclResult_t meet_run(const meet *m, int nranks) {
    stat_add(&g.stats.collectives, 1);
    if (!agree(m, nranks)) {
        stat_add(&g.stats.mismatches, 1);
        return ncclInvalidUsage;
    }
    const task *t = m->tasks[0];
    size_t bytes = t->count * dtype_sizes[t->dtype];
    size_t out_bytes = t->kind == COLL_ALLGATHER ? bytes * (size_t)nranks : bytes;
    if (!bytes) return ncclSuccess;
    void *send[MAX_RANKS] = {0}, *recv[MAX_RANKS];
    for (int r = 0; r < nranks; r++) {
        const task *rt = m->tasks[r];
        int need_send = t->kind != COLL_BROADCAST || r == t->root;
        if ((need_send && !device_buffer(rt, "send", rt->send, bytes, &send[r])) ||
            !device_buffer(rt, "receive", rt->recv, out_bytes, &recv[r]))
            return ncclUnhandledCudaError;
    }
    unsigned char *out = malloc(out_bytes);
    if (!out) return refuse(coll_names[t->kind], "out of host memory", ncclSystemError);
    compute(t, send, nranks, out);
    for (int r = 0; r < nranks; r++) memcpy(recv[r], out, out_bytes);
    free(out);
    return ncclSuccess;
}

/* The rendezvous of t's collective (c->mu held): found, or made of t's spare. */
static meet *meet_for(clique *c, task *t) {
    for (meet *m = c->meets; m; m = m->next)
        if (m->seq == t->seq) return m;
    meet *m = t->spare;
    t->spare = NULL;
    memset(m, 0, sizeof *m + (size_t)c->nranks * sizeof m->tasks[0]);
    m->seq = t->seq;
    m->next = c->meets;
    return c->meets = m;
}

/* A rank's host function, on its stream's worker thread: arrive; wait for
 * the others, or run the collective as the last; leave. */
static void task_run(void *arg) {
    task *t = arg;
    clique *c = t->c;
    pthread_mutex_lock(&c->mu);
    meet *m = meet_for(c, t);
    m->tasks[t->rank] = t;
    if (++m->arrived == c->nranks) {
        pthread_mutex_unlock(&c->mu);
        ncclResult_t r = meet_run(m, c->nranks);
        if (r) clique_fail(c, r);
        pthread_mutex_lock(&c->mu);
        m->done = 1;
        pthread_cond_broadcast(&c->cv);
    }
    while (!m->done) pthread_cond_wait(&c->cv, &c->mu);
    int last = ++m->left == c->nranks;
    for (meet **pp = &c->meets; last && *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    if (last) free(m);
    task_free(t);
}

/* Numbers t on its communicator and queues it on its stream, which owns it
 * then (on failure it is freed).  The peers already launched then wait for
 * ever, as on a GPU after a failed launch; the async error says so. */
static ncclResult_t launch(task *t) {
    pthread_mutex_lock(&g.lock);
    t->seq = t->comm->next_seq++;
    g.stats.launched++;
    pthread_mutex_unlock(&g.lock);
    clique *c = t->c;
    int e = g.host_fn(t->stream, task_run, t);
    if (!e) return ncclSuccess;
    fprintf(stderr, "xcs fake NCCL: %s: cuLaunchHostFunc answered %d: its peers will never finish\n",
            coll_names[t->kind], e);
    clique_fail(c, ncclUnhandledCudaError);
    stat_add(&g.stats.launched, -1);
    task_free(t);
    return ncclUnhandledCudaError;
}

/* Checks what all collectives share, then launches the task or keeps it for
 * the group's end. */
static ncclResult_t submit(const char *fn, task tmpl, int need_send) {
    ncclComm_t comm = tmpl.comm;
    if (!comm) return refuse(fn, "the communicator is NULL", ncclInvalidArgument);
    if ((unsigned)tmpl.dtype > ncclBfloat16) return refuse(fn, "unsupported data type", ncclInvalidArgument);
    int n = comm->c->nranks;
    if (tmpl.count > SIZE_MAX / dtype_sizes[tmpl.dtype] / (size_t)n)
        return refuse(fn, "the count is too large", ncclInvalidArgument);
    if (tmpl.count && (!tmpl.recv || (need_send && !tmpl.send)))
        return refuse(fn, "a NULL buffer", ncclInvalidArgument);
    if (n > 1 && (!tmpl.stream || tmpl.stream == (void *)1 || tmpl.stream == (void *)2))
        return refuse(fn, "the NULL / legacy / per-thread stream runs on the calling thread in the fake driver, "
                      "which the first rank would block for ever", ncclInvalidUsage);
    if (g.stream_query(tmpl.stream) == CUDA_ERROR_INVALID_HANDLE)
        return refuse(fn, "not a live stream", ncclUnhandledCudaError);
    task *t = malloc(sizeof *t);
    meet *spare = malloc(sizeof *spare + (size_t)n * sizeof spare->tasks[0]);
    if (!t || !spare) {
        free(t);
        free(spare);
        return refuse(fn, "out of host memory", ncclSystemError);
    }
    *t = tmpl;
    t->rank = comm->rank;
    t->c = comm->c;
    t->spare = spare;
    t->next = NULL;
    pthread_mutex_lock(&g.lock);
    t->c->refs++;
    pthread_mutex_unlock(&g.lock);
    if (!tls_group.depth) return launch(t);
    *(tls_group.tail ? &tls_group.tail->next : &tls_group.head) = t;
    tls_group.tail = t;
    return ncclSuccess;
}

static unsigned long long dev_addr(const void *p) { return (unsigned long long)(uintptr_t)p; }

/* ------------------------------------------------------------ collectives and groups */

FAKE_API ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                    ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    if ((unsigned)op > ncclMin) return refuse("ncclAllReduce", "unsupported reduction", ncclInvalidArgument);
    task t = {.kind = COLL_ALLREDUCE, .send = dev_addr(sendbuff), .recv = dev_addr(recvbuff), .count = count,
              .dtype = datatype, .op = op, .comm = comm, .stream = stream};
    return submit("ncclAllReduce", t, 1);
}

/* Only the root's send buffer is read (the others may pass NULL). */
FAKE_API ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                    int root, ncclComm_t comm, cudaStream_t stream) {
    if (comm && (root < 0 || root >= comm->c->nranks))
        return refuse("ncclBroadcast", "the root is not a rank", ncclInvalidArgument);
    int is_root = comm && comm->rank == root;
    task t = {.kind = COLL_BROADCAST, .send = is_root ? dev_addr(sendbuff) : 0, .recv = dev_addr(recvbuff),
              .count = count, .dtype = datatype, .root = root, .comm = comm, .stream = stream};
    return submit("ncclBroadcast", t, is_root);
}

/* Rank r's sendcount elements land at element r * sendcount of every recvbuff. */
FAKE_API ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                                    ncclComm_t comm, cudaStream_t stream) {
    task t = {.kind = COLL_ALLGATHER, .send = dev_addr(sendbuff), .recv = dev_addr(recvbuff), .count = sendcount,
              .dtype = datatype, .comm = comm, .stream = stream};
    return submit("ncclAllGather", t, 1);
}

FAKE_API ncclResult_t ncclGroupStart(void) {
    tls_group.depth++;
    return ncclSuccess;
}

/* XCS_FAKE_NCCL_LAUNCH_DELAY_US: a random pause of up to this between the
 * launches of one group, so that another thread's group can come in between
 * (callers must keep every rank's queue in one order themselves). */
static void launch_pause(void) {
    static _Thread_local uint64_t rng;
    const char *e = getenv("XCS_FAKE_NCCL_LAUNCH_DELAY_US");
    long max = e && *e ? atol(e) : 0;
    if (max <= 0) return;
    if (!rng) rng = (uint64_t)(uintptr_t)&rng * 0x9E3779B97F4A7C15ull | 1;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    long us = (long)(rng % (uint64_t)(max + 1));
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    nanosleep(&ts, NULL);
}

/* The outermost end launches the group's collectives in issue order; after
 * a failed launch the rest are dropped.  (The communicators must live until
 * then, as in NCCL; a thread ending inside a group leaks its list.) */
FAKE_API ncclResult_t ncclGroupEnd(void) {
    if (!tls_group.depth) return refuse("ncclGroupEnd", "no ncclGroupStart to end", ncclInvalidUsage);
    if (--tls_group.depth) return ncclSuccess;
    task *t = tls_group.head;
    tls_group.head = tls_group.tail = NULL;
    stat_add(&g.stats.groups, 1);
    ncclResult_t r = ncclSuccess;
    while (t) {
        task *next = t->next; /* a launched task may be gone at once */
        if (r == ncclSuccess) r = launch(t);
        else task_free(t);
        t = next;
        if (t) launch_pause();
    }
    return r;
}

/* ------------------------------------------------------------ communicators */

/* Real NCCL refuses a device out of range (ncclInvalidArgument) or twice in
 * one communicator (ncclInvalidUsage). */
static ncclResult_t check_devices(int ndev, const int *devlist, int n_devices) {
    for (int i = 0; i < ndev; i++) {
        int d = devlist ? devlist[i] : i, dup = 0;
        for (int j = 0; devlist && j < i; j++) dup |= devlist[j] == d;
        if (d >= 0 && d < n_devices && !dup) continue;
        fprintf(stderr, "xcs fake NCCL: ncclCommInitAll: device %d %s (the driver has %d)\n", d,
                dup ? "twice in devlist" : "does not exist", n_devices);
        return dup ? ncclInvalidUsage : ncclInvalidArgument;
    }
    return ncclSuccess;
}

/* comms[i]: rank i on device devlist[i] (NULL: device i), each owned by the
 * caller until ncclCommDestroy; all of them one clique. */
FAKE_API ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
    if (!comms || ndev < 1) return refuse("ncclCommInitAll", "no communicators asked for", ncclInvalidArgument);
    int n_devices = 0;
    ncclResult_t r = driver_devices(&n_devices);
    if (r || (r = check_devices(ndev, devlist, n_devices))) return r;
    clique *c = calloc(1, sizeof *c);
    int made = 0;
    for (; c && made < ndev; made++) {
        if (!(comms[made] = malloc(sizeof *comms[made]))) break;
        *comms[made] = (struct ncclComm){.c = c, .rank = made, .device = devlist ? devlist[made] : made};
    }
    if (made < ndev) {
        while (made--) free(comms[made]);
        free(c);
        return refuse("ncclCommInitAll", "out of host memory", ncclSystemError);
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->nranks = c->refs = ndev;
    pthread_mutex_lock(&g.lock);
    g.stats.live_comms += ndev;
    g.stats.comm_inits++;
    pthread_mutex_unlock(&g.lock);
    return ncclSuccess;
}

/* Not synchronizing: the clique's queued collectives still run. */
FAKE_API ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclSuccess;
    clique *c = comm->c;
    free(comm);
    stat_add(&g.stats.live_comms, -1);
    clique_unref(c);
    return ncclSuccess;
}

FAKE_API ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    return comm && count ? (*count = comm->c->nranks, ncclSuccess) : ncclInvalidArgument;
}

FAKE_API ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device) {
    return comm && device ? (*device = comm->device, ncclSuccess) : ncclInvalidArgument;
}

FAKE_API ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    return comm && rank ? (*rank = comm->rank, ncclSuccess) : ncclInvalidArgument;
}

/* The clique's first failed collective (it stays): ranks that disagreed
 * (ncclInvalidUsage), a bad buffer or launch (ncclUnhandledCudaError). */
FAKE_API ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error) {
    if (!comm || !async_error) return ncclInvalidArgument;
    pthread_mutex_lock(&comm->c->mu);
    *async_error = comm->c->err;
    pthread_mutex_unlock(&comm->c->mu);
    return ncclSuccess;
}

FAKE_API ncclResult_t ncclGetVersion(int *version) {
    return version ? (*version = 22800, ncclSuccess) : ncclInvalidArgument; /* 2.28.0 */
}

/* NCCL's own wording. */
FAKE_API const char *ncclGetErrorString(ncclResult_t result) {
    static const char *const text[] = {
        "no error",
        "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
        "unhandled system error (run with NCCL_DEBUG=INFO for details)",
        "internal error - please report this issue to the NCCL developers",
        "invalid argument (run with NCCL_DEBUG=WARN for details)",
        "invalid usage (run with NCCL_DEBUG=WARN for details)",
        "remote process exited or there was a network error",
        "NCCL operation in progress",
    };
    return (unsigned)result < sizeof text / sizeof text[0] ? text[result] : "unknown result code";
}

/* ------------------------------------------------------------ test introspection */

FAKE_API void xcs_fake_nccl_stats(struct xcs_fake_nccl_stats *out) {
    if (!out) return;
    pthread_mutex_lock(&g.lock);
    *out = g.stats;
    pthread_mutex_unlock(&g.lock);
}
