/* test_cuda_streams.c — the CUDA runtime's streams, cross-stream order,
 * staged host copies and caching allocator (src/cuda/runtime.c), run
 * without a GPU on the fake driver (fake_cuda_driver.c): every stream is a
 * thread of the fake that runs its copies later, after a random delay, so a
 * missing wait shows up as wrong data.
 *
 *   - round trips through the staging buffers, in one chunk and in many;
 *   - scalar uploads (up to 16 bytes) queued as memsets: a run of them never
 *     makes the host wait on an event, and they land in order;
 *   - threads each on their own stream, working at once;
 *   - a block written on one thread's stream and read, copied or
 *     overwritten on another's (the block table's waits, blocks.h);
 *   - a block freed by one thread while its upload is in flight, handed
 *     out to another that overwrites it;
 *   - random programs of threads sharing a table of blocks (allocate,
 *     upload, copy, zero, read back, free), checked against a model;
 *   - uploads return before the device has the data (they are
 *     asynchronous), and the source may change right after;
 *   - waiting for a block (block_until_ready) waits for its writer's
 *     stream, through an event;
 *   - out of memory: the cache is emptied and the allocation tried again,
 *     then the error names the sizes;
 *   - faults reported by a later wait; kernels refused by the fake come back
 *     as errors naming the launch;
 *   - closing the runtime leaves no stream, event, pinned or device block.
 *
 * The threads' tests run again with two streams for all of them
 * (XCS_CUDA_STREAMS=2).  It needs NVRTC (the runtime opens it) and exits 77
 * (a CTest skip) when it is missing. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fake_cuda.h"
#include "runtime.h"
#include "testutil.h"

static xcs_cu_runtime *rt;
static uint64_t test_seed; /* XCS_TEST_SEED, else the time: printed */
static bool shared_streams; /* the second pass: XCS_CUDA_STREAMS=2, threads share streams */
static xcs_fake_cuda_stats_fn fake_stats;

static void fill(uint32_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = seed * 2654435761u + (uint32_t)i;
}

static size_t mismatches(const uint32_t *p, size_t n, uint32_t seed) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += p[i] != seed * 2654435761u + (uint32_t)i;
    return bad;
}

/* Scalars (4 to 16 bytes) go up as memsets: a run of them never makes the
 * host wait (a staged upload waits for its half's last copy), and each
 * lands in order, the last one read back, also over a staged upload of
 * the same block. */
static void test_scalar_uploads_do_not_wait(void) {
    struct xcs_fake_cuda_stats before, after;
    xcs_cu_ptr d = 0;
    CHECK_OK(xcs_cu_alloc(rt, 64, &d));
    uint32_t big[16], back[4] = {0}, model[4] = {0};
    fill(big, 16, 7);
    fake_stats(&before);
    for (uint32_t i = 1; i <= 40; i++) {
        const uint32_t v[4] = {i, i * 3, i * 5, i * 7};
        CHECK_OK(xcs_cu_to_device(rt, d, v, 4 * (1 + i % 4)));
        memcpy(model, v, 4 * (1 + i % 4));
    }
    fake_stats(&after);
    CHECK_EQ_I((int)(after.event_syncs - before.event_syncs), 0);
    CHECK_OK(xcs_cu_to_host(rt, back, d, 16));
    CHECK(memcmp(back, model, sizeof model) == 0);
    CHECK_OK(xcs_cu_to_device(rt, d, big, sizeof big)); /* staged */
    const uint32_t one[2] = {11, 12};
    CHECK_OK(xcs_cu_to_device(rt, d + 8, one, 8)); /* a scalar into its middle, after it */
    uint32_t all[16];
    CHECK_OK(xcs_cu_to_host(rt, all, d, sizeof all));
    fill(big, 16, 7);
    big[2] = 11, big[3] = 12;
    CHECK(memcmp(all, big, sizeof all) == 0);
    xcs_cu_free(rt, d);
}

/* Host -> device -> host, sizes from a word to several staging chunks. */
static void test_round_trips(void) {
    const size_t sizes[] = {1, 3, 1000, 16384, 300000, (size_t)5 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint32_t *h = malloc(n * 4), *back = calloc(n, 4);
        fill(h, n, (uint32_t)k + 1);
        xcs_cu_ptr d = 0, d2 = 0;
        CHECK_OK(xcs_cu_alloc(rt, n * 4, &d));
        CHECK_OK(xcs_cu_alloc(rt, n * 4, &d2));
        CHECK_OK(xcs_cu_to_device(rt, d, h, n * 4));
        memset(h, 0, n * 4); /* staged: the upload no longer reads h */
        CHECK_OK(xcs_cu_copy(rt, d2, d, n * 4));
        CHECK_OK(xcs_cu_to_host(rt, back, d2, n * 4));
        CHECK_EQ_I(mismatches(back, n, (uint32_t)k + 1), 0);
        /* an inner address: the second half */
        memset(back, 0, n * 4);
        CHECK_OK(xcs_cu_to_host(rt, back, d2 + (n / 2) * 4, (n - n / 2) * 4));
        size_t bad = 0;
        for (size_t i = 0; i < n - n / 2; i++) bad += back[i] != ((uint32_t)k + 1) * 2654435761u + (uint32_t)(i + n / 2);
        CHECK_EQ_I(bad, 0);
        CHECK_OK(xcs_cu_zero(rt, d2, (n & ~(size_t)0) * 4));
        CHECK_OK(xcs_cu_to_host(rt, back, d2, n * 4));
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++) nonzero += back[i] != 0;
        CHECK_EQ_I(nonzero, 0);
        xcs_cu_free(rt, d);
        xcs_cu_free(rt, d2);
        free(h);
        free(back);
    }
    struct xcs_fake_cuda_stats fs;
    fake_stats(&fs);
    CHECK_EQ_I(fs.pageable_async, 0); /* every async copy went through pinned memory */
}

/* ---------------------------------------------------------------- threads */

typedef struct worker {
    int id, rounds;
    size_t bad;
    xcs_status st;
    int stream;
} worker;

/* Each thread: its own data through upload, copy and download, many times. */
static void *own_work(void *arg) {
    worker *w = arg;
    w->st = xcs_cu_stream(rt, NULL, &w->stream);
    size_t n = 20000 + 977 * (size_t)w->id;
    uint32_t *h = malloc(n * 4), *back = malloc(n * 4);
    for (int r = 0; r < w->rounds && !w->st; r++) {
        uint32_t seed = (uint32_t)(w->id * 1000 + r);
        xcs_cu_ptr a = 0, b = 0;
        fill(h, n, seed);
        if ((w->st = xcs_cu_alloc(rt, n * 4, &a)) || (w->st = xcs_cu_alloc(rt, n * 4, &b))) break;
        const xcs_cu_use use[2] = {{a, false, true}, {b, true, true}};
        if (!(w->st = xcs_cu_to_device(rt, a, h, n * 4)) && !(w->st = xcs_cu_order(rt, 2, use)) &&
            !(w->st = xcs_cu_copy(rt, b, a, n * 4)) && !(w->st = xcs_cu_to_host(rt, back, b, n * 4)))
            w->bad += mismatches(back, n, seed);
        xcs_cu_free(rt, a);
        xcs_cu_free(rt, b);
    }
    free(h);
    free(back);
    return NULL;
}

static void test_threads_own_streams(void) {
    enum { T = 6 };
    pthread_t th[T];
    worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker){.id = i, .rounds = 25};
        pthread_create(&th[i], NULL, own_work, &w[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        CHECK_OK(w[i].st);
        CHECK_EQ_I(w[i].bad, 0);
        for (int j = 0; j < i && !shared_streams; j++) CHECK(w[i].stream != w[j].stream); /* 16 streams: one each */
    }
}

/* Two threads hand a block back and forth: one writes it (upload, or a
 * copy into it), the other reads it (a copy out, a download) or overwrites
 * it, each on its own stream, with host order between them only. */
typedef struct relay {
    pthread_mutex_t lock;
    pthread_cond_t turn_cv;
    int turn, rounds;
    size_t n;
    xcs_cu_ptr x, y;
    size_t bad;
    xcs_status st;
} relay;

static void wait_turn(relay *r, int who) {
    pthread_mutex_lock(&r->lock);
    while (r->turn % 2 != who) pthread_cond_wait(&r->turn_cv, &r->lock);
    pthread_mutex_unlock(&r->lock);
}
static void pass_turn(relay *r) {
    pthread_mutex_lock(&r->lock);
    r->turn++;
    pthread_cond_broadcast(&r->turn_cv);
    pthread_mutex_unlock(&r->lock);
}

static void *relay_a(void *arg) { /* writes x: an upload */
    relay *r = arg;
    uint32_t *h = malloc(r->n * 4);
    for (int i = 0; i < r->rounds; i++) {
        wait_turn(r, 0);
        fill(h, r->n, (uint32_t)i + 7);
        xcs_status st = xcs_cu_to_device(rt, r->x, h, r->n * 4);
        if (st) r->st = st;
        pass_turn(r);
    }
    free(h);
    return NULL;
}

static void *relay_b(void *arg) { /* copies x to y, reads y back, then overwrites x */
    relay *r = arg;
    uint32_t *back = malloc(r->n * 4);
    for (int i = 0; i < r->rounds; i++) {
        wait_turn(r, 1);
        const xcs_cu_use use[2] = {{r->x, false, true}, {r->y, true, true}};
        xcs_status st = xcs_cu_order(rt, 2, use);
        if (!st) st = xcs_cu_copy(rt, r->y, r->x, r->n * 4);
        const xcs_cu_use over = {r->x, true, true};
        if (!st) st = xcs_cu_order(rt, 1, &over);
        if (!st) st = xcs_cu_zero(rt, r->x, r->n * 4); /* must not land before the copy read x */
        if (!st) st = xcs_cu_to_host(rt, back, r->y, r->n * 4);
        if (st) r->st = st;
        else r->bad += mismatches(back, r->n, (uint32_t)i + 7);
        pass_turn(r);
    }
    free(back);
    return NULL;
}

static void test_cross_stream_order(void) {
    relay r = {.rounds = 40, .n = 50000};
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.turn_cv, NULL);
    CHECK_OK(xcs_cu_alloc(rt, r.n * 4, &r.x));
    CHECK_OK(xcs_cu_alloc(rt, r.n * 4, &r.y));
    struct xcs_fake_cuda_stats before, after;
    fake_stats(&before);
    pthread_t a, b;
    pthread_create(&a, NULL, relay_a, &r);
    pthread_create(&b, NULL, relay_b, &r);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    fake_stats(&after);
    CHECK_OK(r.st);
    CHECK_EQ_I(r.bad, 0);
    if (!shared_streams) CHECK(after.stream_waits > before.stream_waits); /* ordered by events, not by luck */
    xcs_cu_free(rt, r.x);
    xcs_cu_free(rt, r.y);
    pthread_mutex_destroy(&r.lock);
    pthread_cond_destroy(&r.turn_cv);
}

/* A block freed on one thread with its uploads in flight is handed out to
 * another thread, which zeroes and reads it: zeros, never an upload landing
 * late.  Both threads stay up (their streams made), and take turns. */
typedef struct reuse {
    relay turns; /* turn taking only */
    size_t n;
    xcs_cu_ptr freed, got;
    int reused;
    size_t bad;
    xcs_status st;
} reuse;

static void *reuse_first(void *arg) {
    reuse *u = arg;
    uint32_t *h = malloc(u->n * 4);
    fill(h, u->n, 99);
    for (int r = 0; r < u->turns.rounds; r++) {
        wait_turn(&u->turns, 0);
        xcs_cu_ptr p = 0;
        xcs_status st = xcs_cu_alloc(rt, u->n * 4, &p);
        for (int i = 0; i < 3 && !st; i++) st = xcs_cu_to_device(rt, p, h, u->n * 4); /* a queue of them */
        xcs_cu_free(rt, p);
        u->freed = p;
        if (st) u->st = st;
        pass_turn(&u->turns);
    }
    free(h);
    return NULL;
}

static void *reuse_second(void *arg) {
    reuse *u = arg;
    uint32_t *back = malloc(u->n * 4);
    for (int r = 0; r < u->turns.rounds; r++) {
        wait_turn(&u->turns, 1);
        xcs_cu_ptr p = 0;
        xcs_status st = xcs_cu_alloc(rt, u->n * 4, &p);
        if (!st) st = xcs_cu_zero(rt, p, u->n * 4);
        if (!st) st = xcs_cu_to_host(rt, back, p, u->n * 4);
        for (size_t i = 0; !st && i < u->n; i++) u->bad += back[i] != 0;
        u->reused += p == u->freed;
        xcs_cu_free(rt, p);
        if (st) u->st = st;
        pass_turn(&u->turns);
    }
    free(back);
    return NULL;
}

static void test_reuse_across_streams(void) {
    reuse u = {.turns = {.rounds = 12}, .n = (size_t)3 << 20};
    pthread_mutex_init(&u.turns.lock, NULL);
    pthread_cond_init(&u.turns.turn_cv, NULL);
    pthread_t a, b;
    pthread_create(&a, NULL, reuse_first, &u);
    pthread_create(&b, NULL, reuse_second, &u);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK_OK(u.st);
    CHECK_EQ_I(u.bad, 0);
    CHECK(u.reused > 0); /* the cache did hand the block to the other stream */
    pthread_mutex_destroy(&u.turns.lock);
    pthread_cond_destroy(&u.turns.turn_cv);
}

/* Random programs: threads (each on its own stream) allocate, upload,
 * copy between, zero, read back and free the blocks of a shared table, in
 * whatever order they take its slots' locks; that host order is the
 * specification, and every read-back must match the model. */
enum { SLOTS = 10, SIZES = 3 };
typedef struct slot {
    pthread_mutex_t lock;
    xcs_cu_ptr p;
    size_t n;
    uint32_t seed; /* the pattern in it (0: zeros) */
} slot;
typedef struct table {
    slot s[SLOTS];
    int rounds;
    _Atomic long bad, ops;
    _Atomic int failed;
    uint64_t seed;
} table;

static void pattern(uint32_t *h, size_t n, uint32_t seed) {
    if (seed) fill(h, n, seed);
    else memset(h, 0, n * 4);
}

static void *random_work(void *arg) {
    table *t = ((void **)arg)[0];
    test_rng r = {.state = t->seed + (uint64_t)(uintptr_t)((void **)arg)[1]};
    static const size_t sizes[SIZES] = {3000, 40000, 300000};
    uint32_t *h = malloc(sizes[SIZES - 1] * 4), *back = malloc(sizes[SIZES - 1] * 4);
    for (int i = 0; i < t->rounds && !atomic_load(&t->failed); i++) {
        int a = (int)(test_rnd(&r) % SLOTS), b = (int)(test_rnd(&r) % SLOTS), op = (int)(test_rnd(&r) % 6);
        int lo = a < b ? a : b, hi = a < b ? b : a;
        pthread_mutex_lock(&t->s[lo].lock);
        if (hi != lo) pthread_mutex_lock(&t->s[hi].lock);
        slot *x = &t->s[a], *y = &t->s[b];
        xcs_status st = XCS_OK;
        uint32_t seed = (uint32_t)(test_rnd(&r) % 100000) + 1;
        if (!x->p) { /* empty: allocate and fill */
            x->n = sizes[test_rnd(&r) % SIZES];
            pattern(h, x->n, seed);
            if (!(st = xcs_cu_alloc(rt, x->n * 4, &x->p)) && !(st = xcs_cu_to_device(rt, x->p, h, x->n * 4)))
                x->seed = seed;
        } else if (op == 0) { /* overwrite */
            pattern(h, x->n, seed);
            if (!(st = xcs_cu_to_device(rt, x->p, h, x->n * 4))) x->seed = seed;
        } else if (op == 1 && y->p && y != x && y->n == x->n) { /* copy y into x */
            const xcs_cu_use use[2] = {{y->p, false, true}, {x->p, true, true}};
            if (!(st = xcs_cu_order(rt, 2, use)) && !(st = xcs_cu_copy(rt, x->p, y->p, x->n * 4))) x->seed = y->seed;
        } else if (op == 2) { /* zero */
            const xcs_cu_use use = {x->p, true, true};
            if (!(st = xcs_cu_order(rt, 1, &use)) && !(st = xcs_cu_zero(rt, x->p, x->n * 4))) x->seed = 0;
        } else if (op == 3) { /* free */
            xcs_cu_free(rt, x->p);
            x->p = 0;
        } else { /* read back */
            if (!(st = xcs_cu_to_host(rt, back, x->p, x->n * 4))) {
                pattern(h, x->n, x->seed);
                if (memcmp(h, back, x->n * 4) != 0) atomic_fetch_add(&t->bad, 1);
            }
        }
        if (st) atomic_store(&t->failed, 1);
        atomic_fetch_add(&t->ops, 1);
        if (hi != lo) pthread_mutex_unlock(&t->s[hi].lock);
        pthread_mutex_unlock(&t->s[lo].lock);
    }
    free(h);
    free(back);
    return NULL;
}

static void test_random_shared_table(void) {
    enum { T = 5 };
    static table t;
    memset(&t, 0, sizeof t);
    t.rounds = 300;
    t.seed = test_seed;
    for (int i = 0; i < SLOTS; i++) pthread_mutex_init(&t.s[i].lock, NULL);
    pthread_t th[T];
    void *args[T][2];
    for (int i = 0; i < T; i++) {
        args[i][0] = &t;
        args[i][1] = (void *)(uintptr_t)(i + 1);
        pthread_create(&th[i], NULL, random_work, args[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    CHECK_EQ_I(atomic_load(&t.failed), 0);
    CHECK_EQ_I(atomic_load(&t.bad), 0);
    CHECK_EQ_I(atomic_load(&t.ops), T * t.rounds);
    uint32_t *h = malloc(300000 * 4), *back = malloc(300000 * 4);
    for (int i = 0; i < SLOTS; i++) { /* what is left, read on this thread's stream */
        slot *x = &t.s[i];
        if (!x->p) continue;
        CHECK_OK(xcs_cu_to_host(rt, back, x->p, x->n * 4));
        pattern(h, x->n, x->seed);
        CHECK(memcmp(h, back, x->n * 4) == 0);
        xcs_cu_free(rt, x->p);
        pthread_mutex_destroy(&x->lock);
    }
    free(h);
    free(back);
}

/* xcs_cu_wait (block_until_ready): another thread's upload, still queued on
 * its stream, is done when the wait returns, and nothing was copied to the
 * host for it. */
typedef struct waited {
    xcs_cu_ptr p;
    size_t n;
    void *stream;
    xcs_status st;
} waited;

static void *upload_and_leave(void *arg) {
    waited *w = arg;
    uint32_t *h = malloc(w->n * 4);
    fill(h, w->n, 5);
    w->st = xcs_cu_stream(rt, &w->stream, NULL);
    for (int i = 0; i < 3 && !w->st; i++) w->st = xcs_cu_to_device(rt, w->p, h, w->n * 4); /* queued */
    free(h);
    return NULL;
}

static void test_wait_for_a_block(void) {
    void *lib = dlopen(XCS_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
    int (*stream_query)(void *) = NULL;
    *(void **)&stream_query = lib ? dlsym(lib, "cuStreamQuery") : NULL;
    CHECK(stream_query != NULL);
    int idle = 0;
    for (int round = 0; round < 5 && stream_query; round++) {
        waited w = {.n = (size_t)3 << 20};
        CHECK_OK(xcs_cu_alloc(rt, w.n * 4, &w.p));
        pthread_t th;
        pthread_create(&th, NULL, upload_and_leave, &w);
        pthread_join(th, NULL);
        CHECK_OK(w.st);
        struct xcs_fake_cuda_stats before, after;
        fake_stats(&before);
        CHECK_OK(xcs_cu_wait(rt, w.p + 1000)); /* an address inside the block */
        fake_stats(&after);
        idle += stream_query(w.stream) == 0; /* the writer's stream has run the uploads */
        void *mine = NULL;
        CHECK_OK(xcs_cu_stream(rt, &mine, NULL));
        if (mine != w.stream) CHECK(after.stream_waits > before.stream_waits); /* (threads past 16 share streams) */
        xcs_cu_free(rt, w.p);
    }
    CHECK_EQ_I(idle, 5);
    if (lib) dlclose(lib);
}

/* Out of memory: cached blocks are given back and the allocation tried
 * again; then the error names the sizes. */
static void test_out_of_memory(void) {
    xcs_cu_empty_cache(rt);
    xcs_cu_mem_stats m;
    xcs_cu_ptr keep = 0, p = 0;
    CHECK_OK(xcs_cu_alloc(rt, (size_t)96 << 20, &keep)); /* the fake has 256 MiB */
    CHECK_OK(xcs_cu_alloc(rt, (size_t)100 << 20, &p));
    xcs_cu_free(rt, p); /* cached */
    xcs_cu_mem_stats_get(rt, &m);
    CHECK(m.cached_bytes >= (int64_t)100 << 20);
    CHECK_OK(xcs_cu_alloc(rt, (size_t)120 << 20, &p)); /* fits only once the cache is dropped */
    xcs_cu_mem_stats_get(rt, &m);
    CHECK_EQ_I(m.cached_bytes, 0);
    xcs_cu_ptr q = 0;
    CHECK_ERR(xcs_cu_alloc(rt, (size_t)200 << 20, &q), XCS_ERR_MEMORY, "empty_cache");
    CHECK(check_contains(xcs_last_error(), "bytes in use by xcs"));
    xcs_cu_free(rt, p);
    xcs_cu_free(rt, keep);
}

/* A copy the fake finds out of bounds faults later, as a kernel would: the
 * next wait on that stream reports it. */
static void test_fault_reported(void) {
    xcs_cu_ptr p = 0;
    CHECK_OK(xcs_cu_alloc(rt, 4096, &p));
    uint32_t h[16] = {0};
    CHECK_OK(xcs_cu_zero(rt, p + 4096 * 64, 64)); /* queued; faults when it runs */
    xcs_status st = xcs_cu_to_host(rt, h, p, sizeof h);
    CHECK(st != XCS_OK);
    CHECK(check_contains(xcs_last_error(), "CUDA_ERROR_ILLEGAL_ADDRESS"));
    xcs_cu_free(rt, p);
}

/* ---------------------------------------------------------------- main */

int main(void) {
    test_seed = xcs_fake_cuda_test_seed();
    setenv("XCS_FAKE_CUDA_DELAY_US", "40", 1);
    setenv("XCS_FAKE_CUDA_MEM", "268435456", 1);
    setenv("XCS_CUDA_DRIVER", XCS_FAKE_CUDA_PATH, 1);
    setenv("XCS_CUDA_DISK_CACHE", "0", 1);
    void *lib = dlopen(XCS_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!lib || !(*(void **)&fake_stats = dlsym(lib, "xcs_fake_cuda_stats"))) {
        fprintf(stderr, "cannot load the fake driver %s: %s\n", XCS_FAKE_CUDA_PATH, dlerror());
        return 1;
    }
    setenv("XCS_CUDA_STREAMS", "16", 1);
    xcs_status st = xcs_cu_open(0, &rt);
    if (st == XCS_ERR_UNSUPPORTED && check_contains(xcs_last_error(), "NVRTC")) {
        printf("skipped: %s\n", xcs_last_error());
        return 77;
    }
    CHECK_OK(st);
    if (st) return check_report();
    RUN(test_round_trips);
    RUN(test_scalar_uploads_do_not_wait);
    RUN(test_threads_own_streams);
    RUN(test_cross_stream_order);
    RUN(test_reuse_across_streams);
    RUN(test_random_shared_table);
    RUN(test_wait_for_a_block);
    RUN(test_out_of_memory);
    RUN(test_fault_reported);
    xcs_cu_close(rt);
    struct xcs_fake_cuda_stats fs;
    fake_stats(&fs);
    CHECK_EQ_I(fs.live_device_allocs, 0);
    CHECK_EQ_I(fs.live_host_allocs, 0);
    CHECK_EQ_I(fs.live_streams, 0);
    CHECK_EQ_I(fs.live_events, 0);
    /* again with two streams for every thread: shared streams stay correct */
    setenv("XCS_CUDA_STREAMS", "2", 1);
    shared_streams = true;
    CHECK_OK(xcs_cu_open(0, &rt));
    if (!rt) return check_report();
    printf("-- XCS_CUDA_STREAMS=2\n");
    RUN(test_threads_own_streams);
    RUN(test_cross_stream_order);
    RUN(test_reuse_across_streams);
    RUN(test_random_shared_table);
    RUN(test_wait_for_a_block);
    xcs_cu_close(rt);
    fake_stats(&fs);
    CHECK_EQ_I(fs.live_device_allocs + fs.live_host_allocs + fs.live_streams + fs.live_events, 0);
    return check_report();
}
