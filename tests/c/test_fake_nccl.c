/* test_fake_nccl.c — the fake NCCL (libxcs_fakenccl.so, fake_nccl.c) tested
 * on its own, on the fake CUDA driver (libxcs_fakecuda.so), both through
 * dlopen as the runtime uses them.  Every collective is checked against the
 * test's own arithmetic in rank order, on 2 to 4 ranks, each rank with its
 * own stream whose worker runs every op after a random delay:
 *   - refusals: no driver, bad device lists, bad arguments, a group end
 *     without a start, the NULL stream for several ranks;
 *   - AllReduce of float32/int32/float64/float16/bfloat16 with every
 *     reduction, in one group; in place;
 *   - Broadcast from every root; grouped Broadcasts of uneven counts into one
 *     buffer (the allgather-v pattern); AllGather, with the communicators
 *     destroyed while it is still queued;
 *   - two threads taking turns on the same communicators;
 *   - ranks that disagree, and a buffer outside its allocation: recorded as
 *     the communicators' async error, nothing written;
 *   - nothing left alive in either library at the end.
 * Fresh random data each run: XCS_TEST_SEED (printed) reproduces a run. */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "fake_cuda.h"
#include "fake_nccl.h"
#include "testutil.h"

typedef unsigned long long dptr;

enum { OK = 0, E_ILLEGAL = 700 };
enum { NC_OK = 0, NC_CUDA = 1, NC_SYSTEM = 2, NC_ARG = 4, NC_USAGE = 5 };
enum { T_I32 = 2, T_F16 = 6, T_F32 = 7, T_F64 = 8, T_BF16 = 9 };
enum { OP_SUM = 0, OP_PROD = 1, OP_MAX = 2, OP_MIN = 3, OP_AVG = 4 };
enum { MAXR = 4 }; /* XCS_FAKE_CUDA_DEVICES */

static const size_t esize[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};

static struct {
    void *lib;
    int (*init)(unsigned);
    int (*ctx_retain)(void **, int);
    int (*ctx_release)(int);
    int (*ctx_set)(void *);
    int (*mem_alloc)(dptr *, size_t);
    int (*mem_free)(dptr);
    int (*host_alloc)(void **, size_t, unsigned);
    int (*host_free)(void *);
    int (*h2d_async)(dptr, const void *, size_t, void *);
    int (*d2h_async)(void *, dptr, size_t, void *);
    int (*stream_create)(void **, unsigned);
    int (*stream_destroy)(void *);
    int (*stream_sync)(void *);
    xcs_fake_cuda_stats_fn stats;
} cu;

/* NCCL's enums passed as int: the same ABI. */
static struct {
    void *lib;
    int (*version)(int *);
    const char *(*err_str)(int);
    int (*init_all)(void **, int, const int *);
    int (*destroy)(void *);
    int (*count)(void *, int *);
    int (*cu_device)(void *, int *);
    int (*user_rank)(void *, int *);
    int (*async_error)(void *, int *);
    int (*group_start)(void);
    int (*group_end)(void);
    int (*all_reduce)(const void *, void *, size_t, int, int, void *, void *);
    int (*broadcast)(const void *, void *, size_t, int, int, void *, void *);
    int (*all_gather)(const void *, void *, size_t, int, void *, void *);
    xcs_fake_nccl_stats_fn stats;
} nc;

static test_rng rng;
static const char *fake_cuda_path; /* XCS_CUDA_DRIVER for the fake NCCL */
static void *ctx[MAXR]; /* each device's primary context, retained throughout */

static void *dp(dptr d) { return (void *)(uintptr_t)d; }

static struct xcs_fake_nccl_stats nstats(void) {
    struct xcs_fake_nccl_stats s;
    nc.stats(&s);
    return s;
}

static int async_error(void *comm) {
    int e = -1;
    CHECK_EQ_I(nc.async_error(comm, &e), NC_OK);
    return e;
}

static void destroy_all(void **comms, int n) {
    for (int i = 0; i < n; i++) CHECK_EQ_I(nc.destroy(comms[i]), NC_OK);
}

/* ------------------------------------------------------------ ranks' buffers */

/* One rank: its stream, device send/receive buffers of `bytes` each (fresh
 * device memory reads 0xA5), and pinned upload / download buffers. */
typedef struct rank_bufs {
    void *stream;
    dptr send, recv;
    unsigned char *up, *down;
    size_t bytes;
} rank_bufs;

static void ranks_open(rank_bufs *rb, int n, size_t bytes) {
    memset(rb, 0, (size_t)n * sizeof *rb);
    for (int r = 0; r < n; r++) {
        rb[r].bytes = bytes;
        CHECK_EQ_I(cu.ctx_set(ctx[r]), OK);
        CHECK_EQ_I(cu.stream_create(&rb[r].stream, 1), OK);
        CHECK_EQ_I(cu.mem_alloc(&rb[r].send, bytes), OK);
        CHECK_EQ_I(cu.mem_alloc(&rb[r].recv, bytes), OK);
        CHECK_EQ_I(cu.host_alloc((void **)&rb[r].up, bytes, 0), OK);
        CHECK_EQ_I(cu.host_alloc((void **)&rb[r].down, bytes, 0), OK);
    }
}

static void ranks_close(rank_bufs *rb, int n) {
    for (int r = 0; r < n; r++) {
        CHECK_EQ_I(cu.stream_destroy(rb[r].stream), OK);
        CHECK_EQ_I(cu.mem_free(rb[r].send), OK);
        CHECK_EQ_I(cu.mem_free(rb[r].recv), OK);
        CHECK_EQ_I(cu.host_free(rb[r].up), OK);
        CHECK_EQ_I(cu.host_free(rb[r].down), OK);
    }
}

/* up -> send, on each rank's stream (asynchronous: the collectives queued
 * after it must still see it). */
static void upload(rank_bufs *rb, int n) {
    for (int r = 0; r < n; r++) CHECK_EQ_I(cu.h2d_async(rb[r].send, rb[r].up, rb[r].bytes, rb[r].stream), OK);
}

/* recv (or send) -> down, then wait for each stream. */
static void download(rank_bufs *rb, int n, int from_send) {
    for (int r = 0; r < n; r++) {
        CHECK_EQ_I(cu.d2h_async(rb[r].down, from_send ? rb[r].send : rb[r].recv, rb[r].bytes, rb[r].stream), OK);
        CHECK_EQ_I(cu.stream_sync(rb[r].stream), OK);
    }
}

/* Random elements of dtype dt; 16-bit floats are quarters in [-4, 4], so that
 * sums of four stay exact whatever the rounding. */
static void fill(int dt, unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double u = test_rnd_unit(&rng) * 2 - 1;
        int32_t k = (int32_t)(test_rnd(&rng) % 33) - 16;
        uint16_t h = dt == T_F16 ? xcs_f32_to_f16((float)k / 4) : xcs_f32_to_bf16((float)k / 4);
        int32_t iv = (int32_t)(uint32_t)test_rnd(&rng);
        float f = (float)u;
        switch (dt) {
        case T_I32: memcpy(p + i * 4, &iv, 4); break;
        case T_F32: memcpy(p + i * 4, &f, 4); break;
        case T_F64: memcpy(p + i * 8, &u, 8); break;
        default: memcpy(p + i * 2, &h, 2); break;
        }
    }
}

/* ------------------------------------------------------------ the reference */

static float f32_op(int op, float a, float b) {
    return op == OP_SUM ? a + b : op == OP_PROD ? a * b : op == OP_MAX ? (a > b ? a : b) : (a < b ? a : b);
}

static double f64_op(int op, double a, double b) {
    return op == OP_SUM ? a + b : op == OP_PROD ? a * b : op == OP_MAX ? (a > b ? a : b) : (a < b ? a : b);
}

static int32_t i32_op(int op, int32_t a, int32_t b) {
    if (op == OP_SUM) return (int32_t)((uint32_t)a + (uint32_t)b); /* wraps */
    if (op == OP_PROD) return (int32_t)((uint32_t)a * (uint32_t)b);
    return op == OP_MAX ? (a > b ? a : b) : (a < b ? a : b);
}

/* float32, float16 or bfloat16 as a float. */
static float get_f(int dt, const unsigned char *p) {
    float f;
    uint16_t h;
    if (dt == T_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    return dt == T_F16 ? xcs_f16_to_f32(h) : xcs_bf16_to_f32(h);
}

static void put_f(int dt, unsigned char *p, float f) {
    uint16_t h = dt == T_F16 ? xcs_f32_to_f16(f) : xcs_f32_to_bf16(f);
    if (dt == T_F32) memcpy(p, &f, 4);
    else memcpy(p, &h, 2);
}

/* Element i of in[0] op in[1] op ... op in[n-1], in rank order, into want:
 * float32 (and the 16-bit floats, whose test values add up exactly) in float
 * arithmetic, float64 in double, int32 wrapping. */
static void reduce_ref(int dt, int op, unsigned char *const *in, int n, size_t i, unsigned char *want) {
    size_t o = i * esize[dt];
    if (dt == T_I32) {
        int32_t acc, x;
        memcpy(&acc, in[0] + o, 4);
        for (int r = 1; r < n; r++) {
            memcpy(&x, in[r] + o, 4);
            acc = i32_op(op, acc, x);
        }
        memcpy(want, &acc, 4);
    } else if (dt == T_F64) {
        double acc, x;
        memcpy(&acc, in[0] + o, 8);
        for (int r = 1; r < n; r++) {
            memcpy(&x, in[r] + o, 8);
            acc = f64_op(op, acc, x);
        }
        memcpy(want, &acc, 8);
    } else {
        float acc = get_f(dt, in[0] + o);
        for (int r = 1; r < n; r++) acc = f32_op(op, acc, get_f(dt, in[r] + o));
        put_f(dt, want, acc);
    }
}

/* ------------------------------------------------------------ refusals */

static void test_refusals(void) {
    void *comms[MAXR] = {0};
    fprintf(stderr, "(the refusal lines below are expected)\n");
    unsetenv("XCS_CUDA_DRIVER");
    CHECK_EQ_I(nc.init_all(comms, 2, NULL), NC_SYSTEM);
    setenv("XCS_CUDA_DRIVER", "/nonexistent/libcuda.so", 1);
    CHECK_EQ_I(nc.init_all(comms, 2, NULL), NC_SYSTEM);
    setenv("XCS_CUDA_DRIVER", fake_cuda_path, 1);

    int v = 0;
    CHECK_EQ_I(nc.version(&v), NC_OK);
    CHECK_EQ_I(v, 22800);
    CHECK(strcmp(nc.err_str(NC_OK), "no error") == 0);
    CHECK(check_contains(nc.err_str(NC_USAGE), "invalid usage"));
    CHECK(check_contains(nc.err_str(99), "unknown"));

    struct xcs_fake_nccl_stats before = nstats();
    CHECK_EQ_I(nc.init_all(comms, 0, NULL), NC_ARG);
    CHECK_EQ_I(nc.init_all(NULL, 2, NULL), NC_ARG);
    CHECK_EQ_I(nc.init_all(comms, 2, (const int[]){1, 1}), NC_USAGE);
    CHECK_EQ_I(nc.init_all(comms, 2, (const int[]){0, 4}), NC_ARG);
    CHECK_EQ_I(nc.init_all(comms, 1, (const int[]){-1}), NC_ARG);
    CHECK_EQ_I(nc.init_all(comms, 5, NULL), NC_ARG);
    CHECK_EQ_I(nc.group_end(), NC_USAGE);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_USAGE);
    CHECK_EQ_I(nstats().comm_inits, before.comm_inits);

    /* ranks follow the device list */
    CHECK_EQ_I(nc.init_all(comms, 3, (const int[]){2, 0, 3}), NC_OK);
    int k = -1;
    CHECK_EQ_I(nc.count(comms[1], &k), NC_OK);
    CHECK_EQ_I(k, 3);
    CHECK_EQ_I(nc.cu_device(comms[1], &k), NC_OK);
    CHECK_EQ_I(k, 0);
    CHECK_EQ_I(nc.cu_device(comms[2], &k), NC_OK);
    CHECK_EQ_I(k, 3);
    CHECK_EQ_I(nc.user_rank(comms[2], &k), NC_OK);
    CHECK_EQ_I(k, 2);
    CHECK_EQ_I(nc.count(NULL, &k), NC_ARG);
    CHECK_EQ_I(nstats().live_comms, before.live_comms + 3);

    rank_bufs rb[1];
    ranks_open(rb, 1, 64);
    void *s = rb[0].stream, *buf = dp(rb[0].send);
    CHECK_EQ_I(nc.all_reduce(buf, buf, 4, T_F32, OP_SUM, NULL, s), NC_ARG);
    CHECK_EQ_I(nc.all_reduce(buf, buf, 4, 12, OP_SUM, comms[0], s), NC_ARG); /* float8: not in the fake */
    CHECK_EQ_I(nc.all_reduce(buf, buf, 4, T_F32, OP_AVG, comms[0], s), NC_ARG);
    CHECK_EQ_I(nc.all_reduce(NULL, buf, 4, T_F32, OP_SUM, comms[0], s), NC_ARG);
    CHECK_EQ_I(nc.broadcast(buf, buf, 4, T_F32, 3, comms[0], s), NC_ARG);
    CHECK_EQ_I(nc.broadcast(buf, buf, 4, T_F32, -1, comms[0], s), NC_ARG);
    CHECK_EQ_I(nc.broadcast(NULL, buf, 4, T_F32, 0, comms[0], s), NC_ARG); /* the root's send */
    CHECK_EQ_I(nc.all_gather(buf, NULL, 4, T_F32, comms[0], s), NC_ARG);
    CHECK_EQ_I(nc.all_reduce(buf, buf, 4, T_F32, OP_SUM, comms[0], NULL), NC_USAGE);
    CHECK_EQ_I(nc.all_reduce(buf, buf, 4, T_F32, OP_SUM, comms[0], (void *)&k), NC_CUDA); /* not a stream */
    CHECK_EQ_I(async_error(comms[0]), NC_OK);
    CHECK_EQ_I(nstats().launched, before.launched);
    destroy_all(comms, 3);
    CHECK_EQ_I(nc.destroy(NULL), NC_OK);

    /* one rank may use the NULL stream: done at once, on this thread */
    CHECK_EQ_I(nc.init_all(comms, 1, (const int[]){1}), NC_OK);
    float x[4] = {1, 2, 3, 4};
    memcpy(rb[0].up, x, sizeof x);
    upload(rb, 1);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK_EQ_I(nc.all_reduce(buf, dp(rb[0].recv), 4, T_F32, OP_SUM, comms[0], NULL), NC_OK);
    CHECK_EQ_I(cu.d2h_async(rb[0].down, rb[0].recv, sizeof x, NULL), OK);
    CHECK(memcmp(rb[0].down, x, sizeof x) == 0);
    destroy_all(comms, 1);
    ranks_close(rb, 1);
    CHECK_EQ_I(nstats().live_comms, before.live_comms);
}

/* ------------------------------------------------------------ AllReduce */

static const struct {
    int dt, op;
} combos[] = {{T_F32, OP_SUM}, {T_F32, OP_MAX}, {T_I32, OP_SUM}, {T_I32, OP_MAX},  {T_F64, OP_SUM}, {T_F64, OP_MAX},
              {T_F16, OP_SUM}, {T_F16, OP_MAX}, {T_I32, OP_MIN}, {T_F64, OP_PROD}, {T_BF16, OP_SUM}};
enum { NCOMBO = sizeof combos / sizeof combos[0] };

/* Every combination at its own offset of one buffer per rank, in one group. */
static void allreduce_ranks(int n) {
    void *comms[MAXR];
    struct xcs_fake_nccl_stats before = nstats();
    CHECK_EQ_I(nc.init_all(comms, n, NULL), NC_OK);
    size_t cnt[NCOMBO], off[NCOMBO], total = 0;
    for (int k = 0; k < NCOMBO; k++) {
        cnt[k] = 1 + test_rnd(&rng) % 700;
        off[k] = total;
        total += (cnt[k] * esize[combos[k].dt] + 15) & ~(size_t)15;
    }
    rank_bufs rb[MAXR];
    ranks_open(rb, n, total);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < NCOMBO; k++) fill(combos[k].dt, rb[r].up + off[k], cnt[k]);
    upload(rb, n);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int k = 0; k < NCOMBO; k++)
        for (int r = 0; r < n; r++)
            CHECK_EQ_I(nc.all_reduce(dp(rb[r].send + off[k]), dp(rb[r].recv + off[k]), cnt[k], combos[k].dt,
                                     combos[k].op, comms[r], rb[r].stream),
                       NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    download(rb, n, 0);

    unsigned char *in[MAXR], want[8];
    size_t bad = 0;
    for (int k = 0; k < NCOMBO; k++) {
        size_t es = esize[combos[k].dt];
        for (int r = 0; r < n; r++) in[r] = rb[r].up + off[k];
        for (size_t i = 0; i < cnt[k]; i++) {
            reduce_ref(combos[k].dt, combos[k].op, in, n, i, want);
            for (int r = 0; r < n; r++) bad += memcmp(rb[r].down + off[k] + i * es, want, es) != 0;
        }
    }
    CHECK_EQ_I(bad, 0);
    struct xcs_fake_nccl_stats after = nstats();
    CHECK_EQ_I(after.launched - before.launched, n * NCOMBO);
    CHECK_EQ_I(after.collectives - before.collectives, NCOMBO);
    CHECK_EQ_I(after.groups - before.groups, 1);
    CHECK_EQ_I(async_error(comms[0]), NC_OK);
    destroy_all(comms, n);
    ranks_close(rb, n);
}

static void test_allreduce(void) {
    for (int n = 2; n <= MAXR; n++) allreduce_ranks(n);
}

/* send == recv: every input is read before any output is written. */
static void test_allreduce_in_place(void) {
    enum { N = 3, COUNT = 500 };
    void *comms[N];
    rank_bufs rb[N];
    CHECK_EQ_I(nc.init_all(comms, N, NULL), NC_OK);
    ranks_open(rb, N, COUNT * 4);
    for (int r = 0; r < N; r++) fill(T_F32, rb[r].up, COUNT);
    upload(rb, N);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int r = 0; r < N; r++)
        CHECK_EQ_I(nc.all_reduce(dp(rb[r].send), dp(rb[r].send), COUNT, T_F32, OP_SUM, comms[r], rb[r].stream),
                   NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    download(rb, N, 1);
    unsigned char *in[N] = {rb[0].up, rb[1].up, rb[2].up}, want[4];
    size_t bad = 0;
    for (size_t i = 0; i < COUNT; i++) {
        reduce_ref(T_F32, OP_SUM, in, N, i, want);
        for (int r = 0; r < N; r++) bad += memcmp(rb[r].down + i * 4, want, 4) != 0;
    }
    CHECK_EQ_I(bad, 0);
    destroy_all(comms, N);
    ranks_close(rb, N);
}

/* ------------------------------------------------------------ Broadcast, AllGather */

static void test_broadcast(void) {
    enum { N = 4, COUNT = 300 };
    void *comms[N];
    rank_bufs rb[N];
    CHECK_EQ_I(nc.init_all(comms, N, NULL), NC_OK);
    ranks_open(rb, N, COUNT * 8);
    for (int r = 0; r < N; r++) fill(T_F64, rb[r].up, COUNT);
    upload(rb, N);
    for (int root = 0; root < N; root++) {
        CHECK_EQ_I(nc.group_start(), NC_OK);
        for (int r = 0; r < N; r++) /* only the root's send is read */
            CHECK_EQ_I(nc.broadcast(r == root ? dp(rb[r].send) : NULL, dp(rb[r].recv), COUNT, T_F64, root, comms[r],
                                    rb[r].stream),
                       NC_OK);
        CHECK_EQ_I(nc.group_end(), NC_OK);
        download(rb, N, 0);
        for (int r = 0; r < N; r++) CHECK(memcmp(rb[r].down, rb[root].up, COUNT * 8) == 0);
    }
    destroy_all(comms, N);
    ranks_close(rb, N);
}

/* Rank r contributes counts[r] floats (uneven, maybe none) at offset
 * offs[r] of everyone's receive buffer: one Broadcast per root, each rank
 * calling every one of them with its own communicator and buffer. */
static void allgatherv_ranks(int n, const size_t *counts) {
    void *comms[MAXR];
    rank_bufs rb[MAXR];
    size_t offs[MAXR], total = 0;
    for (int r = 0; r < n; r++) {
        offs[r] = total;
        total += counts[r];
    }
    CHECK_EQ_I(nc.init_all(comms, n, NULL), NC_OK);
    ranks_open(rb, n, total * 4);
    for (int r = 0; r < n; r++) fill(T_F32, rb[r].up, counts[r]);
    upload(rb, n);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int root = 0; root < n; root++)
        for (int i = 0; i < n; i++)
            CHECK_EQ_I(nc.broadcast(i == root ? dp(rb[i].send) : NULL, dp(rb[i].recv + offs[root] * 4), counts[root],
                                    T_F32, root, comms[i], rb[i].stream),
                       NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    download(rb, n, 0);
    for (int i = 0; i < n; i++)
        for (int root = 0; root < n; root++)
            CHECK(memcmp(rb[i].down + offs[root] * 4, rb[root].up, counts[root] * 4) == 0);
    destroy_all(comms, n);
    ranks_close(rb, n);
}

static void test_allgatherv_by_broadcasts(void) {
    size_t c3[3] = {1 + test_rnd(&rng) % 40, 0, 1 + test_rnd(&rng) % 40};
    allgatherv_ranks(3, c3);
    size_t c4[4];
    for (int r = 0; r < 4; r++) c4[r] = 1 + test_rnd(&rng) % 100;
    allgatherv_ranks(4, c4);
}

/* The communicators are destroyed while the collective is still queued:
 * their clique lives until it ran. */
static void test_allgather(void) {
    enum { N = 4 };
    void *comms[N];
    rank_bufs rb[N];
    size_t count = 1 + test_rnd(&rng) % 300;
    long long live = nstats().live_comms;
    CHECK_EQ_I(nc.init_all(comms, N, NULL), NC_OK);
    ranks_open(rb, N, N * count * 4);
    for (int r = 0; r < N; r++) fill(T_I32, rb[r].up, count);
    upload(rb, N);
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int r = 0; r < N; r++)
        CHECK_EQ_I(nc.all_gather(dp(rb[r].send), dp(rb[r].recv), count, T_I32, comms[r], rb[r].stream), NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    destroy_all(comms, N);
    CHECK_EQ_I(nstats().live_comms, live);
    download(rb, N, 0);
    for (int i = 0; i < N; i++)
        for (int r = 0; r < N; r++) CHECK(memcmp(rb[i].down + r * count * 4, rb[r].up, count * 4) == 0);
    ranks_close(rb, N);
}

/* ------------------------------------------------------------ threads */

enum { TN = 3, ITERS = 20, TCOUNT = 64 };

/* A thread's streams and buffers; the communicators and the lock that keeps
 * each group whole are shared. */
typedef struct turn_taker {
    void **comms;
    pthread_mutex_t *lock;
    rank_bufs rb[TN]; /* send: TCOUNT int32; recv: ITERS * TCOUNT */
    int failed_calls;
} turn_taker;

/* Even iterations: AllReduce sum; odd: Broadcast from a rotating root; each
 * into its own slice of recv. */
static void *take_turns(void *arg) {
    turn_taker *t = arg;
    for (int it = 0; it < ITERS; it++) {
        pthread_mutex_lock(t->lock);
        t->failed_calls += nc.group_start() != NC_OK;
        for (int r = 0; r < TN; r++) {
            rank_bufs *b = &t->rb[r];
            void *out = dp(b->recv + (size_t)it * TCOUNT * 4);
            int root = (it / 2) % TN;
            t->failed_calls += (it % 2 ? nc.broadcast(r == root ? dp(b->send) : NULL, out, TCOUNT, T_I32, root,
                                                      t->comms[r], b->stream)
                                       : nc.all_reduce(dp(b->send), out, TCOUNT, T_I32, OP_SUM, t->comms[r],
                                                       b->stream)) != NC_OK;
        }
        t->failed_calls += nc.group_end() != NC_OK;
        pthread_mutex_unlock(t->lock);
    }
    return NULL;
}

static void test_threads(void) {
    void *comms[TN];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    turn_taker tt[2];
    pthread_t th[2];
    CHECK_EQ_I(nc.init_all(comms, TN, NULL), NC_OK);
    for (int k = 0; k < 2; k++) {
        tt[k] = (turn_taker){.comms = comms, .lock = &lock};
        ranks_open(tt[k].rb, TN, (size_t)ITERS * TCOUNT * 4);
        for (int r = 0; r < TN; r++) fill(T_I32, tt[k].rb[r].up, TCOUNT);
        upload(tt[k].rb, TN);
    }
    for (int k = 0; k < 2; k++) CHECK_EQ_I(pthread_create(&th[k], NULL, take_turns, &tt[k]), 0);
    for (int k = 0; k < 2; k++) CHECK_EQ_I(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_I(tt[k].failed_calls, 0);
        rank_bufs *rb = tt[k].rb;
        download(rb, TN, 0);
        unsigned char *in[TN] = {rb[0].up, rb[1].up, rb[2].up}, want[4];
        size_t bad = 0;
        for (int it = 0; it < ITERS; it++)
            for (size_t i = 0; i < TCOUNT; i++) {
                if (it % 2) memcpy(want, rb[(it / 2) % TN].up + i * 4, 4);
                else reduce_ref(T_I32, OP_SUM, in, TN, i, want);
                for (int r = 0; r < TN; r++) bad += memcmp(rb[r].down + ((size_t)it * TCOUNT + i) * 4, want, 4) != 0;
            }
        CHECK_EQ_I(bad, 0);
        ranks_close(rb, TN);
    }
    CHECK_EQ_I(async_error(comms[0]), NC_OK);
    destroy_all(comms, TN);
}

/* ------------------------------------------------------------ failures */

/* Rank 0 asks for 4 elements, rank 1 for 5: an error, nothing written. */
static void test_mismatch(void) {
    void *comms[2];
    rank_bufs rb[2];
    struct xcs_fake_nccl_stats before = nstats();
    CHECK_EQ_I(nc.init_all(comms, 2, NULL), NC_OK);
    ranks_open(rb, 2, 64);
    fill(T_F32, rb[0].up, 16);
    fill(T_F32, rb[1].up, 16);
    upload(rb, 2);
    fprintf(stderr, "(the disagreement below is expected)\n");
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int r = 0; r < 2; r++)
        CHECK_EQ_I(nc.all_reduce(dp(rb[r].send), dp(rb[r].recv), 4 + (size_t)r, T_F32, OP_SUM, comms[r], rb[r].stream),
                   NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    download(rb, 2, 0);
    struct xcs_fake_nccl_stats after = nstats();
    CHECK_EQ_I(after.mismatches - before.mismatches, 1);
    CHECK_EQ_I(after.collectives - before.collectives, 1);
    CHECK_EQ_I(async_error(comms[0]), NC_USAGE);
    CHECK_EQ_I(async_error(comms[1]), NC_USAGE);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 64; i++) CHECK_EQ_I(rb[r].down[i], 0xA5);
    destroy_all(comms, 2);
    ranks_close(rb, 2);
}

/* A receive buffer too small for the count: the driver's sticky 700 and the
 * communicators' ncclUnhandledCudaError; reset by releasing every primary
 * context (the driver's context reset). */
static void test_bad_buffer(void) {
    void *comms[2];
    rank_bufs rb[2];
    CHECK_EQ_I(nc.init_all(comms, 2, NULL), NC_OK);
    ranks_open(rb, 2, 64);
    fprintf(stderr, "(the illegal-address lines below are expected)\n");
    CHECK_EQ_I(nc.group_start(), NC_OK);
    for (int r = 0; r < 2; r++)
        CHECK_EQ_I(nc.all_reduce(dp(rb[r].send), dp(rb[r].recv + 4), 16, T_F32, OP_SUM, comms[r], rb[r].stream),
                   NC_OK);
    CHECK_EQ_I(nc.group_end(), NC_OK);
    CHECK_EQ_I(cu.stream_sync(rb[0].stream), E_ILLEGAL);
    CHECK_EQ_I(cu.stream_sync(rb[1].stream), E_ILLEGAL);
    CHECK_EQ_I(async_error(comms[1]), NC_CUDA);
    for (int d = 0; d < MAXR; d++) CHECK_EQ_I(cu.ctx_release(d), OK);
    for (int d = 0; d < MAXR; d++) CHECK_EQ_I(cu.ctx_retain(&ctx[d], d), OK);
    CHECK_EQ_I(cu.stream_sync(rb[0].stream), OK);
    destroy_all(comms, 2);
    ranks_close(rb, 2);
}

/* ------------------------------------------------------------ the end */

static void test_nothing_live(void) {
    struct xcs_fake_nccl_stats ns = nstats();
    struct xcs_fake_cuda_stats cs;
    cu.stats(&cs);
    CHECK_EQ_I(ns.live_comms, 0);
    CHECK(ns.comm_inits > 10 && ns.collectives > 80);
    CHECK_EQ_I(cs.host_fns, ns.launched); /* every task reached its stream */
    for (int d = 0; d < MAXR; d++) CHECK_EQ_I(cu.ctx_release(d), OK);
    cu.stats(&cs);
    CHECK_EQ_I(cs.live_device_allocs, 0);
    CHECK_EQ_I(cs.live_host_allocs, 0);
    CHECK_EQ_I(cs.live_streams, 0);
    CHECK_EQ_I(cs.live_events, 0);
}

/* ------------------------------------------------------------ loading */

#define SYM(api, field, name)                                                 \
    do {                                                                      \
        *(void **)&api.field = dlsym(api.lib, name);                          \
        if (!api.field) {                                                     \
            fprintf(stderr, "%s is missing\n", name);                         \
            ok = 0;                                                           \
        }                                                                     \
    } while (0)

static int load(void) {
#if defined(XCS_FAKE_CUDA_PATH) && defined(XCS_FAKE_NCCL_PATH)
    fake_cuda_path = XCS_FAKE_CUDA_PATH;
    cu.lib = dlopen(XCS_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
    nc.lib = cu.lib ? dlopen(XCS_FAKE_NCCL_PATH, RTLD_NOW | RTLD_LOCAL) : NULL;
#endif
    if (!cu.lib || !nc.lib) {
        fprintf(stderr, "cannot open the fake libraries: %s\n", dlerror());
        return 0;
    }
    int ok = 1;
    SYM(cu, init, "cuInit");
    SYM(cu, ctx_retain, "cuDevicePrimaryCtxRetain");
    SYM(cu, ctx_release, "cuDevicePrimaryCtxRelease_v2");
    SYM(cu, ctx_set, "cuCtxSetCurrent");
    SYM(cu, mem_alloc, "cuMemAlloc_v2");
    SYM(cu, mem_free, "cuMemFree_v2");
    SYM(cu, host_alloc, "cuMemHostAlloc");
    SYM(cu, host_free, "cuMemFreeHost");
    SYM(cu, h2d_async, "cuMemcpyHtoDAsync_v2");
    SYM(cu, d2h_async, "cuMemcpyDtoHAsync_v2");
    SYM(cu, stream_create, "cuStreamCreate");
    SYM(cu, stream_destroy, "cuStreamDestroy_v2");
    SYM(cu, stream_sync, "cuStreamSynchronize");
    SYM(cu, stats, "xcs_fake_cuda_stats");
    SYM(nc, version, "ncclGetVersion");
    SYM(nc, err_str, "ncclGetErrorString");
    SYM(nc, init_all, "ncclCommInitAll");
    SYM(nc, destroy, "ncclCommDestroy");
    SYM(nc, count, "ncclCommCount");
    SYM(nc, cu_device, "ncclCommCuDevice");
    SYM(nc, user_rank, "ncclCommUserRank");
    SYM(nc, async_error, "ncclCommGetAsyncError");
    SYM(nc, group_start, "ncclGroupStart");
    SYM(nc, group_end, "ncclGroupEnd");
    SYM(nc, all_reduce, "ncclAllReduce");
    SYM(nc, broadcast, "ncclBroadcast");
    SYM(nc, all_gather, "ncclAllGather");
    SYM(nc, stats, "xcs_fake_nccl_stats");
    return ok;
}

int main(void) {
#if !defined(XCS_FAKE_CUDA_PATH) || !defined(XCS_FAKE_NCCL_PATH)
    printf("the fake CUDA driver and NCCL are not built here (no CUDA backend): nothing to test\n");
    return 0;
#endif
    unsigned long long seed = xcs_fake_cuda_test_seed();
    rng.state = seed;
    setenv("XCS_FAKE_CUDA_DEVICES", "4", 1);
    setenv("XCS_FAKE_CUDA_DELAY_US", "50", 1);
    check_count++;
    if (!load()) {
        check_failures++;
        return check_report();
    }
    CHECK_EQ_I(cu.init(0), OK);
    for (int d = 0; d < MAXR; d++) CHECK_EQ_I(cu.ctx_retain(&ctx[d], d), OK);
    RUN(test_refusals);
    RUN(test_allreduce);
    RUN(test_allreduce_in_place);
    RUN(test_broadcast);
    RUN(test_allgatherv_by_broadcasts);
    RUN(test_allgather);
    RUN(test_threads);
    RUN(test_mismatch);
    RUN(test_bad_buffer);
    RUN(test_nothing_live);
    if (check_failures) printf("reproduce with XCS_TEST_SEED=%llu\n", seed);
    int r = check_report();
    dlclose(nc.lib);
    dlclose(cu.lib);
    return r;
}
