/* test_fake_cuda.c — the fake CUDA driver (libxcs_fakecuda.so, see
 * fake_cuda_driver.c) tested on its own, through dlopen as the runtime
 * uses it: copies (sync, async, pinned and pageable), memsets, streams that
 * really run asynchronously (a missing cross-stream wait reads stale data; an
 * event wait never does), events, host functions (cuLaunchHostFunc), the
 * sticky illegal-address error, the device-range lookup that fakes built on
 * this one use, the memory cap and the live-object counters.
 *
 * The fake's environment is set here with setenv: XCS_FAKE_CUDA_DEVICES
 * before the first cuInit, XCS_FAKE_CUDA_DELAY_US before each cuStreamCreate
 * (each stream reads it when created), XCS_FAKE_CUDA_MEM around the
 * allocations it caps (read at every cuMemAlloc_v2). */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "fake_cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

typedef unsigned long long dptr;

enum { OK = 0, E_VALUE = 1, E_OOM = 2, E_NOT_INIT = 3, E_DEVICE = 101, E_HANDLE = 400, E_NOT_READY = 600,
       E_ILLEGAL = 700, E_NOT_SUPPORTED = 801 };

/* The driver entry points, with the signatures src/cuda/runtime.c declares. */
static struct {
    void *lib;
    int (*init)(unsigned);
    int (*device_get)(int *, int);
    int (*device_count)(int *);
    int (*device_name)(char *, int, int);
    int (*device_attr)(int *, int, int);
    int (*driver_version)(int *);
    int (*ctx_retain)(void **, int);
    int (*ctx_release)(int);
    int (*ctx_set)(void *);
    int (*ctx_sync)(void);
    int (*mem_alloc)(dptr *, size_t);
    int (*mem_free)(dptr);
    int (*h2d)(dptr, const void *, size_t);
    int (*d2h)(void *, dptr, size_t);
    int (*d2d)(dptr, dptr, size_t);
    int (*memset32)(dptr, unsigned, size_t);
    int (*mem_info)(size_t *, size_t *);
    int (*event_create)(void **, unsigned);
    int (*event_record)(void *, void *);
    int (*event_query)(void *);
    int (*event_sync)(void *);
    int (*event_elapsed)(float *, void *, void *);
    int (*event_destroy)(void *);
    int (*stream_create)(void **, unsigned);
    int (*stream_destroy)(void *);
    int (*stream_sync)(void *);
    int (*stream_query)(void *);
    int (*stream_wait)(void *, void *, unsigned);
    int (*h2d_async)(dptr, const void *, size_t, void *);
    int (*d2h_async)(void *, dptr, size_t, void *);
    int (*d2d_async)(dptr, dptr, size_t, void *);
    int (*memset32_async)(dptr, unsigned, size_t, void *);
    int (*host_alloc)(void **, size_t, unsigned);
    int (*host_free)(void *);
    int (*mod_load)(void **, const void *);
    int (*mod_fn)(void **, void *, const char *);
    int (*mod_unload)(void *);
    int (*launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **,
                  void **);
    int (*err_name)(int, const char **);
    int (*host_fn)(void *, void (*)(void *), void *);
    xcs_fake_cuda_stats_fn stats;
    xcs_fake_cuda_device_ptr_fn device_ptr;
} cu;

static void *ctx0; /* device 0's primary context, retained for the whole run */

static struct xcs_fake_cuda_stats stats_now(void) {
    struct xcs_fake_cuda_stats s;
    cu.stats(&s);
    return s;
}

/* A stream whose worker sleeps a random [0, delay_us] before each op. */
static void *stream_with_delay(unsigned delay_us) {
    char buf[32];
    snprintf(buf, sizeof buf, "%u", delay_us);
    setenv("XCS_FAKE_CUDA_DELAY_US", buf, 1);
    void *s = NULL;
    CHECK_EQ_I(cu.stream_create(&s, 1), OK);
    unsetenv("XCS_FAKE_CUDA_DELAY_US");
    return s;
}

static int all_equal(const uint32_t *v, size_t n, uint32_t x) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != x) return 0;
    return 1;
}

/* ------------------------------------------------------------ init, devices */

static void test_not_initialized(void) {
    int n = -1;
    dptr d = 0;
    CHECK_EQ_I(cu.device_count(&n), E_NOT_INIT);
    CHECK_EQ_I(cu.mem_alloc(&d, 16), E_NOT_INIT);
}

static void test_devices(void) {
    setenv("XCS_FAKE_CUDA_DEVICES", "2", 1);
    CHECK_EQ_I(cu.init(0), OK);
    int n = 0, dev = -1, v = -1;
    CHECK_EQ_I(cu.device_count(&n), OK);
    CHECK_EQ_I(n, 2);
    CHECK_EQ_I(cu.device_get(&dev, 1), OK);
    CHECK_EQ_I(dev, 1);
    CHECK_EQ_I(cu.device_get(&dev, 2), E_DEVICE);
    char name[64] = "";
    CHECK_EQ_I(cu.device_name(name, (int)sizeof name, 1), OK);
    CHECK(strcmp(name, "xcs fake CUDA device 1") == 0);
    CHECK_EQ_I(cu.device_attr(&v, 16, 0), OK);
    CHECK_EQ_I(v, 4);
    cu.device_attr(&v, 75, 0);
    CHECK_EQ_I(v, 9);
    cu.device_attr(&v, 76, 0);
    CHECK_EQ_I(v, 0);
    CHECK_EQ_I(cu.driver_version(&v), OK);
    CHECK_EQ_I(v, 13000);
    void *ctx1 = NULL;
    CHECK_EQ_I(cu.ctx_retain(&ctx0, 0), OK);
    CHECK_EQ_I(cu.ctx_retain(&ctx1, 1), OK);
    CHECK(ctx0 && ctx1 && ctx0 != ctx1);
    CHECK_EQ_I(cu.ctx_set(ctx0), OK);
    CHECK_EQ_I(cu.ctx_release(1), OK);
}

/* ------------------------------------------------------------ copies */

enum { N = 1024 }; /* uint32 words per test buffer */

static void test_copies(void) {
    struct xcs_fake_cuda_stats before = stats_now();
    const size_t nb = N * sizeof(uint32_t);
    dptr d[3] = {0};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_I(cu.mem_alloc(&d[i], nb), OK);
        CHECK(d[i] & (1ull << 62)); /* not a host address */
        CHECK_EQ_I((d[i] ^ (1ull << 62)) % 256, 0);
    }
    CHECK_EQ_I(stats_now().live_device_allocs, before.live_device_allocs + 3);
    uint32_t src[N], out[N];
    for (int i = 0; i < N; i++) src[i] = (uint32_t)i * 2654435761u;

    /* synchronous: H2D, D2H, memset, D2D */
    CHECK_EQ_I(cu.h2d(d[0], src, nb), OK);
    CHECK_EQ_I(cu.d2h(out, d[0], nb), OK);
    CHECK(memcmp(out, src, nb) == 0);
    CHECK_EQ_I(cu.memset32(d[1], 0x12345678u, N), OK);
    CHECK_EQ_I(cu.d2h(out, d[1], nb), OK);
    CHECK(all_equal(out, N, 0x12345678u));
    CHECK_EQ_I(cu.d2d(d[2], d[0], nb), OK);
    CHECK_EQ_I(cu.d2h(out, d[2], nb), OK);
    CHECK(memcmp(out, src, nb) == 0);
    CHECK_EQ_I(cu.memset32(d[1] + 2, 0, 1), E_VALUE); /* misaligned */

    /* asynchronous through pinned memory: enqueued, done by the stream sync */
    void *s = stream_with_delay(200);
    uint32_t *pin_in = NULL, *pin_out = NULL;
    CHECK_EQ_I(cu.host_alloc((void **)&pin_in, nb, 0), OK);
    CHECK_EQ_I(cu.host_alloc((void **)&pin_out, nb, 0), OK);
    if (!s || !pin_in || !pin_out) return;
    CHECK_EQ_I((uintptr_t)pin_in % 64, 0);
    for (int i = 0; i < N; i++) pin_in[i] = (uint32_t)i + 7;
    memset(pin_out, 0, nb);
    CHECK_EQ_I(cu.h2d_async(d[1], pin_in, nb, s), OK);
    CHECK_EQ_I(cu.d2d_async(d[2], d[1], nb, s), OK);
    CHECK_EQ_I(cu.d2h_async(pin_out, d[2], nb, s), OK);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK(memcmp(pin_out, pin_in, nb) == 0);
    CHECK_EQ_I(cu.memset32_async(d[2], 0xdeadbeefu, N, s), OK);
    CHECK_EQ_I(cu.d2h_async(pin_out, d[2], nb, s), OK);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK(all_equal(pin_out, N, 0xdeadbeefu));
    CHECK_EQ_I(cu.stream_query(s), OK);
    CHECK_EQ_I(stats_now().pageable_async, before.pageable_async);
    CHECK_EQ_I(stats_now().async_ops, before.async_ops + 5);

    /* asynchronous through pageable memory: done before returning */
    CHECK_EQ_I(cu.h2d_async(d[0], src, nb, s), OK);
    CHECK_EQ_I(cu.d2h(out, d[0], nb), OK);
    CHECK(memcmp(out, src, nb) == 0);
    memset(out, 0, nb);
    CHECK_EQ_I(cu.d2h_async(out, d[0], nb, s), OK);
    CHECK(memcmp(out, src, nb) == 0);
    CHECK_EQ_I(stats_now().pageable_async, before.pageable_async + 2);

    /* the NULL stream: at once on this thread */
    CHECK_EQ_I(cu.h2d_async(d[0], pin_in, nb, NULL), OK);
    CHECK_EQ_I(cu.d2h(out, d[0], nb), OK);
    CHECK(memcmp(out, pin_in, nb) == 0);

    size_t fr = 0, total = 0;
    CHECK_EQ_I(cu.mem_info(&fr, &total), OK);
    CHECK_EQ_I(total, (size_t)1 << 30);
    CHECK_EQ_I(fr, total - 3 * nb); /* nb is a multiple of 256 */

    CHECK_EQ_I(cu.stream_destroy(s), OK);
    CHECK_EQ_I(cu.stream_query(s), E_HANDLE);
    CHECK_EQ_I(cu.host_free(pin_in), OK);
    CHECK_EQ_I(cu.host_free(pin_out), OK);
    CHECK_EQ_I(cu.host_free(src), E_VALUE);
    for (int i = 0; i < 3; i++) CHECK_EQ_I(cu.mem_free(d[i]), OK);
    CHECK_EQ_I(cu.mem_free(d[0]), E_VALUE);
    struct xcs_fake_cuda_stats after = stats_now();
    CHECK_EQ_I(after.live_device_allocs, before.live_device_allocs);
    CHECK_EQ_I(after.live_host_allocs, before.live_host_allocs);
    CHECK_EQ_I(after.live_streams, before.live_streams);
}

/* ------------------------------------------------------------ asynchrony */

/* A D2D on a delayed stream A, then a D2H of its destination on stream B:
 * without a wait B reads the old data (at least once in a few tries); with
 * cuEventRecord(A) + cuStreamWaitEvent(B) it always reads the new. */
static void test_cross_stream_race(void) {
    const size_t nb = N * sizeof(uint32_t);
    dptr fresh = 0, dst = 0;
    uint32_t *out = NULL;
    void *ev = NULL;
    CHECK_EQ_I(cu.mem_alloc(&fresh, nb), OK);
    CHECK_EQ_I(cu.mem_alloc(&dst, nb), OK);
    CHECK_EQ_I(cu.host_alloc((void **)&out, nb, 0), OK);
    CHECK_EQ_I(cu.event_create(&ev, 0), OK);
    void *a = stream_with_delay(20000), *b = stream_with_delay(0);
    if (!out || !a || !b || !ev) return;
    CHECK_EQ_I(cu.memset32(fresh, 1, N), OK);

    int stale = 0;
    for (int t = 0; t < 5 && !stale; t++) {
        CHECK_EQ_I(cu.memset32(dst, 0, N), OK);
        CHECK_EQ_I(cu.d2d_async(dst, fresh, nb, a), OK);
        CHECK_EQ_I(cu.d2h_async(out, dst, nb, b), OK);
        CHECK_EQ_I(cu.stream_sync(b), OK);
        stale = out[0] == 0;
        CHECK_EQ_I(cu.stream_sync(a), OK);
    }
    CHECK(stale);

    long long waits = stats_now().stream_waits;
    for (int t = 0; t < 5; t++) {
        CHECK_EQ_I(cu.memset32(dst, 0, N), OK);
        CHECK_EQ_I(cu.d2d_async(dst, fresh, nb, a), OK);
        CHECK_EQ_I(cu.event_record(ev, a), OK);
        CHECK_EQ_I(cu.stream_wait(b, ev, 0), OK);
        CHECK_EQ_I(cu.d2h_async(out, dst, nb, b), OK);
        CHECK_EQ_I(cu.stream_sync(b), OK);
        CHECK(all_equal(out, N, 1));
    }
    CHECK_EQ_I(stats_now().stream_waits, waits + 5);

    CHECK_EQ_I(cu.stream_destroy(a), OK);
    CHECK_EQ_I(cu.stream_destroy(b), OK);
    CHECK_EQ_I(cu.event_destroy(ev), OK);
    CHECK_EQ_I(cu.host_free(out), OK);
    CHECK_EQ_I(cu.mem_free(fresh), OK);
    CHECK_EQ_I(cu.mem_free(dst), OK);
}

/* A value handed back and forth between two delayed streams through one
 * reused event: each hop waits on the other stream's latest record. */
static void test_ping_pong(void) {
    enum { HOPS = 24 };
    dptr buf[HOPS + 1];
    void *s[2] = {stream_with_delay(1000), stream_with_delay(1000)};
    void *ev = NULL;
    CHECK_EQ_I(cu.event_create(&ev, 0), OK);
    for (int i = 0; i <= HOPS; i++) {
        CHECK_EQ_I(cu.mem_alloc(&buf[i], 64), OK);
        CHECK_EQ_I(cu.memset32(buf[i], 0, 16), OK);
    }
    CHECK_EQ_I(cu.memset32_async(buf[0], 42, 16, s[0]), OK);
    for (int i = 1; i <= HOPS; i++) {
        void *from = s[(i - 1) % 2], *to = s[i % 2];
        CHECK_EQ_I(cu.event_record(ev, from), OK);
        CHECK_EQ_I(cu.stream_wait(to, ev, 0), OK);
        CHECK_EQ_I(cu.d2d_async(buf[i], buf[i - 1], 64, to), OK);
    }
    CHECK_EQ_I(cu.ctx_sync(), OK);
    CHECK_EQ_I(cu.stream_query(s[0]), OK);
    CHECK_EQ_I(cu.stream_query(s[1]), OK);
    uint32_t out[16];
    CHECK_EQ_I(cu.d2h(out, buf[HOPS], 64), OK);
    CHECK(all_equal(out, 16, 42));
    for (int i = 0; i <= HOPS; i++) cu.mem_free(buf[i]);
    cu.event_destroy(ev);
    cu.stream_destroy(s[0]);
    cu.stream_destroy(s[1]);
}

/* ------------------------------------------------------------ host functions */

/* What a host function saw of the device word it watches (through
 * xcs_fake_cuda_device_ptr: host code cannot dereference a device address). */
typedef struct host_probe {
    dptr d;
    unsigned sleep_ms; /* before looking */
    uint32_t seen;
    int ran;
    pthread_t thread;
} host_probe;

static void probe_fn(void *arg) {
    host_probe *p = arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)p->sleep_ms * 1000000};
    nanosleep(&ts, NULL);
    void *h = NULL;
    if (cu.device_ptr(p->d, 4, &h) == OK) memcpy(&p->seen, h, 4);
    p->thread = pthread_self();
    p->ran++;
}

/* A host function runs after the copies queued before it and before the ones
 * queued after it; on the NULL stream at once, on the calling thread. */
static void test_host_functions(void) {
    long long before = stats_now().host_fns;
    dptr d = 0;
    uint32_t *pin = NULL;
    CHECK_EQ_I(cu.mem_alloc(&d, 256), OK);
    CHECK_EQ_I(cu.host_alloc((void **)&pin, 256, 0), OK);
    void *s = stream_with_delay(2000);
    if (!pin || !s) return;
    for (int i = 0; i < 64; i++) pin[i] = 11;
    /* the upload runs after up to 2 ms: the probe must still see it; the
     * memset queued after the probe must wait out the probe's 20 ms sleep */
    host_probe p = {.d = d, .sleep_ms = 20}, later = {.d = d};
    CHECK_EQ_I(cu.h2d_async(d, pin, 256, s), OK);
    CHECK_EQ_I(cu.host_fn(s, probe_fn, &p), OK);
    CHECK_EQ_I(cu.memset32_async(d, 22, 64, s), OK);
    CHECK_EQ_I(cu.host_fn(s, probe_fn, &later), OK);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK_EQ_I(p.ran, 1);
    CHECK_EQ_I(p.seen, 11);
    CHECK_EQ_I(later.seen, 22);
    CHECK(!pthread_equal(p.thread, pthread_self()));

    host_probe now = {.d = d};
    CHECK_EQ_I(cu.host_fn(NULL, probe_fn, &now), OK);
    CHECK_EQ_I(now.ran, 1);
    CHECK_EQ_I(now.seen, 22);
    CHECK(pthread_equal(now.thread, pthread_self()));
    CHECK_EQ_I(cu.host_fn(s, NULL, NULL), E_VALUE);
    CHECK_EQ_I(cu.host_fn(&now, probe_fn, &now), E_HANDLE);
    CHECK_EQ_I(stats_now().host_fns, before + 3);
    CHECK_EQ_I(cu.stream_destroy(s), OK);
    CHECK_EQ_I(cu.host_free(pin), OK);
    CHECK_EQ_I(cu.mem_free(d), OK);
}

/* Two host functions on two streams meet, one waiting for the other, as the
 * ranks of a collective do in the fake NCCL: the other stream and the
 * synchronizing calls must keep working while one waits. */
typedef struct meeting {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived, timed_out;
} meeting;

static void meet_wait(void *arg) {
    meeting *m = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10; /* a broken fake fails the test instead of hanging it */
    pthread_mutex_lock(&m->mu);
    while (!m->arrived && !m->timed_out) m->timed_out = pthread_cond_timedwait(&m->cv, &m->mu, &deadline) != 0;
    pthread_mutex_unlock(&m->mu);
}

static void meet_arrive(void *arg) {
    meeting *m = arg;
    pthread_mutex_lock(&m->mu);
    m->arrived = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void test_host_function_rendezvous(void) {
    meeting m = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    dptr d = 0;
    uint32_t *pin = NULL;
    CHECK_EQ_I(cu.mem_alloc(&d, 256), OK);
    CHECK_EQ_I(cu.host_alloc((void **)&pin, 256, 0), OK);
    void *a = stream_with_delay(0), *b = stream_with_delay(5000);
    if (!pin || !a || !b) return;
    CHECK_EQ_I(cu.host_fn(a, meet_wait, &m), OK);
    CHECK_EQ_I(cu.memset32_async(d, 5, 64, b), OK);
    CHECK_EQ_I(cu.d2h_async(pin, d, 256, b), OK);
    CHECK_EQ_I(cu.stream_sync(b), OK); /* while a's function waits */
    CHECK(all_equal(pin, 64, 5));
    CHECK_EQ_I(cu.stream_query(a), E_NOT_READY);
    CHECK_EQ_I(cu.host_fn(b, meet_arrive, &m), OK);
    CHECK_EQ_I(cu.ctx_sync(), OK);
    CHECK_EQ_I(m.arrived, 1);
    CHECK_EQ_I(m.timed_out, 0);
    CHECK_EQ_I(cu.stream_destroy(a), OK);
    CHECK_EQ_I(cu.stream_destroy(b), OK);
    CHECK_EQ_I(cu.host_free(pin), OK);
    CHECK_EQ_I(cu.mem_free(d), OK);
    pthread_mutex_destroy(&m.mu);
    pthread_cond_destroy(&m.cv);
}

/* ------------------------------------------------------------ events */

static void test_events(void) {
    struct xcs_fake_cuda_stats before = stats_now();
    void *e0 = NULL, *e1 = NULL, *e2 = NULL, *nt = NULL;
    float ms = -1;
    CHECK_EQ_I(cu.event_create(&e0, 0), OK);
    CHECK_EQ_I(cu.event_create(&e1, 0), OK);
    CHECK_EQ_I(cu.event_create(&nt, 2), OK); /* CU_EVENT_DISABLE_TIMING */
    CHECK_EQ_I(cu.event_query(e0), OK);      /* never recorded */
    CHECK_EQ_I(cu.event_elapsed(&ms, e0, e1), E_HANDLE);
    dptr d = 0;
    CHECK_EQ_I(cu.mem_alloc(&d, 256), OK);
    /* three ops after up to 30 ms each: still running when queried */
    void *s = stream_with_delay(30000);
    if (!s || !e0 || !e1 || !nt) return;
    CHECK_EQ_I(cu.event_record(e0, s), OK);
    for (int i = 0; i < 3; i++) CHECK_EQ_I(cu.memset32_async(d, (unsigned)i, 64, s), OK);
    CHECK_EQ_I(cu.event_record(e1, s), OK);
    CHECK_EQ_I(cu.event_query(e1), E_NOT_READY);
    CHECK_EQ_I(cu.stream_query(s), E_NOT_READY);
    CHECK_EQ_I(cu.event_elapsed(&ms, e0, e1), E_NOT_READY);
    CHECK_EQ_I(cu.event_sync(e1), OK);
    CHECK_EQ_I(cu.event_query(e1), OK);
    CHECK_EQ_I(cu.event_query(e0), OK);
    CHECK_EQ_I(cu.event_elapsed(&ms, e0, e1), OK);
    CHECK(ms >= 0 && ms < 1000);

    /* re-recorded: pending again until the stream gets there */
    for (int i = 0; i < 3; i++) CHECK_EQ_I(cu.memset32_async(d, (unsigned)i, 64, s), OK);
    CHECK_EQ_I(cu.event_record(e1, s), OK);
    CHECK_EQ_I(cu.event_query(e1), E_NOT_READY);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK_EQ_I(cu.event_query(e1), OK);
    CHECK_EQ_I(cu.event_elapsed(&ms, e0, e1), OK);

    /* the NULL stream records at once; timing-disabled events have no time */
    CHECK_EQ_I(cu.event_record(nt, NULL), OK);
    CHECK_EQ_I(cu.event_query(nt), OK);
    CHECK_EQ_I(cu.event_elapsed(&ms, e0, nt), E_HANDLE);

    /* destroyed while its record is pending: freed once the record ran */
    CHECK_EQ_I(cu.event_create(&e2, 0), OK);
    CHECK_EQ_I(cu.memset32_async(d, 9, 64, s), OK);
    CHECK_EQ_I(cu.event_record(e2, s), OK);
    CHECK_EQ_I(cu.event_destroy(e2), OK);
    CHECK_EQ_I(cu.event_query(e2), E_HANDLE);
    CHECK_EQ_I(cu.ctx_sync(), OK);
    CHECK_EQ_I(stats_now().live_events, before.live_events + 3);

    CHECK_EQ_I(cu.stream_destroy(s), OK);
    CHECK_EQ_I(cu.event_destroy(e0), OK);
    CHECK_EQ_I(cu.event_destroy(e1), OK);
    CHECK_EQ_I(cu.event_destroy(nt), OK);
    CHECK_EQ_I(cu.event_destroy(nt), E_HANDLE);
    CHECK_EQ_I(cu.mem_free(d), OK);
    CHECK_EQ_I(stats_now().live_events, before.live_events);
}

/* ------------------------------------------------------------ errors */

/* An out-of-bounds async copy fails when it runs: the next synchronizing
 * calls return 700 until the primary contexts are all released. */
static void test_sticky_illegal_address(void) {
    dptr d = 0;
    uint8_t *pin = NULL, host[512];
    CHECK_EQ_I(cu.mem_alloc(&d, 256), OK);
    CHECK_EQ_I(cu.host_alloc((void **)&pin, 512, 0), OK);
    void *s = stream_with_delay(0);
    if (!pin || !s) return;
    fprintf(stderr, "(the two illegal-address lines below are expected)\n");
    CHECK_EQ_I(cu.h2d_async(d, pin, 512, s), OK); /* enqueued: fails later */
    CHECK_EQ_I(cu.stream_sync(s), E_ILLEGAL);
    CHECK_EQ_I(cu.ctx_sync(), E_ILLEGAL);
    CHECK_EQ_I(cu.h2d(d, host, 16), E_ILLEGAL);
    CHECK_EQ_I(cu.ctx_release(0), OK); /* the context reset */
    CHECK_EQ_I(cu.ctx_retain(&ctx0, 0), OK);
    CHECK_EQ_I(cu.ctx_sync(), OK);
    CHECK_EQ_I(cu.h2d(d, host, 16), OK);
    /* a synchronous one fails at once */
    CHECK_EQ_I(cu.memset32(d + 128, 0, 64), E_ILLEGAL);
    CHECK_EQ_I(cu.stream_sync(s), E_ILLEGAL);
    CHECK_EQ_I(cu.ctx_release(0), OK);
    CHECK_EQ_I(cu.ctx_retain(&ctx0, 0), OK);
    CHECK_EQ_I(cu.stream_sync(s), OK);
    CHECK_EQ_I(cu.stream_destroy(s), OK);
    CHECK_EQ_I(cu.host_free(pin), OK);
    CHECK_EQ_I(cu.mem_free(d), OK);
}

/* The device-range lookup: the host address behind a live range; outside one
 * the sticky 700, reset as above by releasing the primary context. */
static void test_device_ptr(void) {
    dptr d = 0;
    void *h = NULL;
    CHECK_EQ_I(cu.mem_alloc(&d, 256), OK);
    CHECK_EQ_I(cu.device_ptr(d, 256, &h), OK);
    CHECK(h == (void *)(uintptr_t)(d ^ (1ull << 62)));
    CHECK_EQ_I(cu.device_ptr(d + 128, 128, &h), OK);
    CHECK(h == (void *)(uintptr_t)((d + 128) ^ (1ull << 62)));
    CHECK_EQ_I(cu.device_ptr(d, 256, NULL), E_VALUE);
    CHECK_EQ_I(cu.ctx_sync(), OK);
    fprintf(stderr, "(the two illegal-address lines below are expected)\n");
    CHECK_EQ_I(cu.device_ptr(d + 128, 129, &h), E_ILLEGAL);
    CHECK_EQ_I(cu.ctx_sync(), E_ILLEGAL);
    CHECK_EQ_I(cu.ctx_release(0), OK);
    CHECK_EQ_I(cu.ctx_retain(&ctx0, 0), OK);
    CHECK_EQ_I(cu.ctx_sync(), OK);
    CHECK_EQ_I(cu.mem_free(d), OK);
    CHECK_EQ_I(cu.device_ptr(d, 4, &h), E_ILLEGAL); /* freed */
    CHECK_EQ_I(cu.ctx_release(0), OK);
    CHECK_EQ_I(cu.ctx_retain(&ctx0, 0), OK);
    CHECK_EQ_I(cu.ctx_sync(), OK);
}

static void test_out_of_memory(void) {
    setenv("XCS_FAKE_CUDA_MEM", "1048576", 1);
    dptr a = 0, b = 0;
    size_t fr = 1, total = 0;
    CHECK_EQ_I(cu.mem_alloc(&a, 1048576 - 100), OK); /* rounded up to 1 MiB */
    CHECK_EQ_I(cu.mem_alloc(&b, 1), E_OOM);
    CHECK_EQ_I(cu.mem_info(&fr, &total), OK);
    CHECK_EQ_I(fr, 0);
    CHECK_EQ_I(total, 1048576);
    CHECK_EQ_I(cu.mem_free(a), OK);
    CHECK_EQ_I(cu.mem_alloc(&b, 1), OK);
    CHECK_EQ_I(cu.mem_free(b), OK);
    unsetenv("XCS_FAKE_CUDA_MEM");
    CHECK_EQ_I(cu.mem_alloc(&b, 0), E_VALUE);
}

static void test_modules_and_names(void) {
    void *mod = NULL, *fn = NULL;
    long long refused = stats_now().launches_refused;
    CHECK_EQ_I(cu.mod_load(&mod, "// ptx"), OK);
    CHECK_EQ_I(cu.mod_fn(&fn, mod, "k"), OK);
    CHECK(mod && fn);
    CHECK_EQ_I(cu.launch(fn, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), E_NOT_SUPPORTED);
    CHECK_EQ_I(stats_now().launches_refused, refused + 1);
    CHECK_EQ_I(cu.mod_unload(mod), OK);
    const char *name = NULL;
    CHECK_EQ_I(cu.err_name(700, &name), OK);
    CHECK(name && strcmp(name, "CUDA_ERROR_ILLEGAL_ADDRESS") == 0);
    CHECK_EQ_I(cu.err_name(600, &name), OK);
    CHECK(name && strcmp(name, "CUDA_ERROR_NOT_READY") == 0);
    CHECK_EQ_I(cu.err_name(12345, &name), OK);
    CHECK(name && strcmp(name, "CUDA_ERROR_UNKNOWN") == 0);
}

/* ------------------------------------------------------------ threads */

static void *round_trips(void *arg) {
    int seed = *(int *)arg, bad = 0;
    uint32_t *pin = NULL;
    dptr d = 0;
    void *s = NULL;
    if (cu.ctx_set(ctx0) || cu.stream_create(&s, 1) || cu.host_alloc((void **)&pin, 256, 0) ||
        cu.mem_alloc(&d, 256))
        return (void *)1;
    for (int it = 0; it < 50 && !bad; it++) {
        for (int i = 0; i < 64; i++) pin[i] = (uint32_t)(seed * 1000 + it + i);
        bad |= cu.h2d_async(d, pin, 256, s) != OK;
        bad |= cu.memset32_async(d + 128, (unsigned)it, 32, s) != OK;
        bad |= cu.d2h_async(pin, d, 256, s) != OK;
        bad |= cu.stream_sync(s) != OK;
        for (int i = 0; i < 64; i++) bad |= pin[i] != (i < 32 ? (uint32_t)(seed * 1000 + it + i) : (uint32_t)it);
    }
    bad |= cu.stream_destroy(s) || cu.host_free(pin) || cu.mem_free(d);
    return bad ? (void *)1 : NULL;
}

static void test_threads(void) {
    enum { T = 4 };
    pthread_t th[T];
    int seeds[T];
    for (int i = 0; i < T; i++) {
        seeds[i] = i + 1;
        CHECK_EQ_I(pthread_create(&th[i], NULL, round_trips, &seeds[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        void *r = (void *)1;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
}

/* ------------------------------------------------------------ counters */

static void test_nothing_live(void) {
    struct xcs_fake_cuda_stats s = stats_now();
    CHECK_EQ_I(s.live_device_allocs, 0);
    CHECK_EQ_I(s.live_device_bytes, 0);
    CHECK_EQ_I(s.live_host_allocs, 0);
    CHECK_EQ_I(s.live_streams, 0);
    CHECK_EQ_I(s.live_events, 0);
    CHECK(s.async_ops > 0);
    CHECK_EQ_I(cu.ctx_release(0), OK);
}

/* ------------------------------------------------------------ loading */

static int load(void) {
#ifdef XCS_FAKE_CUDA_PATH
    cu.lib = dlopen(XCS_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
#endif
    if (!cu.lib) {
        fprintf(stderr, "cannot open the fake driver: %s\n", dlerror());
        return 0;
    }
    int ok = 1;
#define SYM(field, name)                                                      \
    do {                                                                      \
        *(void **)&cu.field = dlsym(cu.lib, name);                            \
        if (!cu.field) {                                                      \
            fprintf(stderr, "the fake driver lacks %s\n", name);              \
            ok = 0;                                                           \
        }                                                                     \
    } while (0)
    SYM(init, "cuInit");
    SYM(device_get, "cuDeviceGet");
    SYM(device_count, "cuDeviceGetCount");
    SYM(device_name, "cuDeviceGetName");
    SYM(device_attr, "cuDeviceGetAttribute");
    SYM(driver_version, "cuDriverGetVersion");
    SYM(ctx_retain, "cuDevicePrimaryCtxRetain");
    SYM(ctx_release, "cuDevicePrimaryCtxRelease_v2");
    SYM(ctx_set, "cuCtxSetCurrent");
    SYM(ctx_sync, "cuCtxSynchronize");
    SYM(mem_alloc, "cuMemAlloc_v2");
    SYM(mem_free, "cuMemFree_v2");
    SYM(h2d, "cuMemcpyHtoD_v2");
    SYM(d2h, "cuMemcpyDtoH_v2");
    SYM(d2d, "cuMemcpyDtoD_v2");
    SYM(memset32, "cuMemsetD32_v2");
    SYM(mem_info, "cuMemGetInfo_v2");
    SYM(event_create, "cuEventCreate");
    SYM(event_record, "cuEventRecord");
    SYM(event_query, "cuEventQuery");
    SYM(event_sync, "cuEventSynchronize");
    SYM(event_elapsed, "cuEventElapsedTime");
    SYM(event_destroy, "cuEventDestroy_v2");
    SYM(stream_create, "cuStreamCreate");
    SYM(stream_destroy, "cuStreamDestroy_v2");
    SYM(stream_sync, "cuStreamSynchronize");
    SYM(stream_query, "cuStreamQuery");
    SYM(stream_wait, "cuStreamWaitEvent");
    SYM(h2d_async, "cuMemcpyHtoDAsync_v2");
    SYM(d2h_async, "cuMemcpyDtoHAsync_v2");
    SYM(d2d_async, "cuMemcpyDtoDAsync_v2");
    SYM(memset32_async, "cuMemsetD32Async");
    SYM(host_alloc, "cuMemHostAlloc");
    SYM(host_free, "cuMemFreeHost");
    SYM(mod_load, "cuModuleLoadData");
    SYM(mod_fn, "cuModuleGetFunction");
    SYM(mod_unload, "cuModuleUnload");
    SYM(launch, "cuLaunchKernel");
    SYM(err_name, "cuGetErrorName");
    SYM(host_fn, "cuLaunchHostFunc");
    SYM(stats, "xcs_fake_cuda_stats");
    SYM(device_ptr, "xcs_fake_cuda_device_ptr");
#undef SYM
    return ok;
}

int main(void) {
#ifndef XCS_FAKE_CUDA_PATH
    printf("the fake CUDA driver is not built here (no CUDA backend): nothing to test\n");
    return 0;
#endif
    check_count++;
    if (!load()) {
        check_failures++;
        return check_report();
    }
    RUN(test_not_initialized);
    RUN(test_devices);
    RUN(test_copies);
    RUN(test_cross_stream_race);
    RUN(test_ping_pong);
    RUN(test_host_functions);
    RUN(test_host_function_rendezvous);
    RUN(test_events);
    RUN(test_sticky_illegal_address);
    RUN(test_device_ptr);
    RUN(test_out_of_memory);
    RUN(test_modules_and_names);
    RUN(test_threads);
    RUN(test_nothing_live);
    int r = check_report();
    dlclose(cu.lib);
    return r;
}
