/* fake_cuda_driver.c — libxcs_fakecuda.so: a fake CUDA driver API for
 * testing the CUDA runtime (src/cuda/runtime.c) on machines without a GPU:
 *     XCS_CUDA_DRIVER=.../libxcs_fakecuda.so
 *
 * It runs no kernels (cuLaunchKernel answers CUDA_ERROR_NOT_SUPPORTED), but
 * everything around them is modelled closely enough that ordering bugs in the
 * runtime show up as wrong data or errors rather than passing by luck:
 *   - each created stream is a worker thread running a FIFO of ops (copies,
 *     memsets, event records, event waits), each op after a random delay
 *     (XCS_FAKE_CUDA_DELAY_US), so a missing cross-stream wait reads stale data;
 *   - device addresses are host addresses with bit 62 flipped, so host code
 *     that dereferences one faults (non-canonical on x86-64);
 *   - device ranges are checked against the live allocations when an op runs:
 *     out of bounds or freed memory records a sticky CUDA_ERROR_ILLEGAL_ADDRESS
 *     that the synchronizing calls return until every primary context has
 *     been released (the driver's context reset);
 *   - async copies from/to pageable host memory are done before returning
 *     (after draining the stream), as the real driver does; only pinned memory
 *     (cuMemHostAlloc) is read/written later by the worker;
 *   - NULL / legacy / per-thread stream work runs at once on the calling thread
 *     and is not ordered with the created streams (they behave as
 *     non-blocking streams, whatever their flags);
 *   - host functions (cuLaunchHostFunc) run on the stream's worker in order
 *     with its other ops, without the lock, so one may block until other
 *     streams got somewhere (the fake NCCL's rendezvous, fake_nccl.c).
 * Fresh device memory is filled with 0xA5 so that reading unwritten memory
 * shows.  Environment variables and the test-only counters: see fake_cuda.h.
 * The process state lives in the one static struct `g`, under one mutex. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_cuda.h"

#define FAKE_API __attribute__((visibility("default")))

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_UNKNOWN = 999,
};

enum { ATTR_SM_COUNT = 16, ATTR_CC_MAJOR = 75, ATTR_CC_MINOR = 76 };
enum { EVENT_DISABLE_TIMING = 2 };

#define MAX_DEVICES 16
#define DEV_BIT (1ull << 62)
#define DEV_ALIGN 256
#define HOST_ALIGN 64
#define DEFAULT_MEM ((size_t)1 << 30)

/* One live allocation: host base address, requested and rounded sizes. */
typedef struct region {
    uintptr_t base;
    size_t size, rounded;
} region;

typedef struct region_table {
    region *v;
    int n, cap;
} region_table;

typedef struct fake_event {
    unsigned flags;
    unsigned long long recorded; /* the latest record generation issued */
    unsigned long long done;     /* the highest generation completed */
    double stamp_ms;             /* when generation `done` completed */
    int refs;                    /* the handle (until destroyed) + pending ops */
    struct fake_event *next;     /* live handles (g.events) */
} fake_event;

typedef enum { OP_H2D, OP_D2H, OP_D2D, OP_MEMSET, OP_WAIT, OP_RECORD, OP_HOSTFN } op_kind;

typedef struct fake_op {
    op_kind kind;
    const char *name;            /* the API call, for error messages */
    unsigned long long dst, src; /* device addresses as handed out */
    void *host;                  /* H2D source, D2H destination */
    size_t n;                    /* bytes */
    unsigned value;              /* memset */
    int pinned;                  /* host side pinned: check it is still live */
    fake_event *ev;              /* record / wait */
    unsigned long long gen;
    void (*fn)(void *);          /* host function and its argument */
    void *user;
    struct fake_op *next;
} fake_op;

typedef struct fake_stream {
    unsigned long long id;
    pthread_t thread;
    pthread_cond_t wake; /* the worker waits here for ops (with g.lock) */
    fake_op *head, *tail;
    unsigned long long enqueued, done;
    int stop;
    unsigned delay_us;
    uint64_t rng;
    struct fake_stream *next; /* live streams (g.streams) */
} fake_stream;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t progress; /* broadcast whenever a stream op completes */
    int initialized, n_devices;
    int ctx_refs[MAX_DEVICES];
    char ctx_dummy[MAX_DEVICES]; /* &ctx_dummy[d]: device d's primary context */
    char module_dummy, function_dummy;
    int sticky; /* the sticky context error (0: none) */
    region_table dev, host;
    size_t dev_used;
    fake_stream *streams;
    fake_event *events;
    unsigned long long next_stream_id;
    struct xcs_fake_cuda_stats stats;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .progress = PTHREAD_COND_INITIALIZER};

static _Thread_local void *tls_ctx; /* cuCtxSetCurrent (per thread by nature) */

/* ------------------------------------------------------------ helpers */

static size_t env_size(const char *name, size_t def) {
    const char *s = getenv(name);
    if (!s || !*s || *s == '-') return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end || errno) return def;
    return (size_t)v;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_us(unsigned us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random delay in [0, s->delay_us] (xorshift64). */
static unsigned next_delay(fake_stream *s) {
    if (!s->delay_us) return 0;
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return (unsigned)(x % ((uint64_t)s->delay_us + 1));
}

/* Locks g.lock and returns 0, or returns CUDA_ERROR_NOT_INITIALIZED unlocked. */
static int enter(void) {
    pthread_mutex_lock(&g.lock);
    if (g.initialized) return CUDA_SUCCESS;
    pthread_mutex_unlock(&g.lock);
    return CUDA_ERROR_NOT_INITIALIZED;
}

static int leave(int r) {
    pthread_mutex_unlock(&g.lock);
    return r;
}

/* ------------------------------------------------------------ allocation tables */

static int table_add(region_table *t, uintptr_t base, size_t size, size_t rounded) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        region *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (region){base, size, rounded};
    return 1;
}

static int table_find(const region_table *t, uintptr_t base) {
    for (int i = 0; i < t->n; i++)
        if (t->v[i].base == base) return i;
    return -1;
}

static void table_remove(region_table *t, int i) {
    t->v[i] = t->v[--t->n];
    if (!t->n) {
        free(t->v);
        t->v = NULL;
        t->cap = 0;
    }
}

/* Is [p, p + n) inside one live allocation? */
static int table_covers(const region_table *t, uintptr_t p, size_t n) {
    for (int i = 0; i < t->n; i++) {
        const region *r = &t->v[i];
        if (p >= r->base && p - r->base <= r->size && n <= r->size - (p - r->base)) return 1;
    }
    return 0;
}

static void *dev_host(unsigned long long d) { return (void *)(uintptr_t)(d ^ DEV_BIT); }

static int dev_ok(unsigned long long d, size_t n) { return table_covers(&g.dev, (uintptr_t)(d ^ DEV_BIT), n); }

static int host_pinned(const void *p, size_t n) { return table_covers(&g.host, (uintptr_t)p, n); }

/* ------------------------------------------------------------ events */

static fake_event *find_event(void *h) {
    for (fake_event *e = g.events; e; e = e->next)
        if (e == h) return e;
    return NULL;
}

static void event_unref(fake_event *e) {
    if (--e->refs) return;
    free(e);
    g.stats.live_events--;
}

static void event_complete(fake_event *e, unsigned long long gen) {
    if (gen <= e->done) return;
    e->done = gen;
    e->stamp_ms = now_ms();
}

/* Blocks (g.lock held) until generation gen of e has completed. */
static void event_wait(fake_event *e, unsigned long long gen) {
    e->refs++;
    while (e->done < gen) pthread_cond_wait(&g.progress, &g.lock);
    event_unref(e);
}

/* ------------------------------------------------------------ ops */

/* Records the sticky error and says which op failed. */
static int illegal(const fake_op *op, const char *side, unsigned long long addr, size_t n) {
    fprintf(stderr,
            "xcs fake CUDA: %s of %zu bytes: the %s 0x%llx is not inside a live allocation "
            "(CUDA_ERROR_ILLEGAL_ADDRESS)\n",
            op->name, n, side, addr);
    if (!g.sticky) g.sticky = CUDA_ERROR_ILLEGAL_ADDRESS;
    return CUDA_ERROR_ILLEGAL_ADDRESS;
}

static int check_host(const fake_op *op, const char *side) {
    if (!op->pinned || host_pinned(op->host, op->n)) return CUDA_SUCCESS;
    return illegal(op, side, (unsigned long long)(uintptr_t)op->host, op->n);
}

/* Runs a copy, memset or record (g.lock held). */
static int exec_op(const fake_op *op) {
    int r;
    if (op->kind == OP_RECORD) {
        event_complete(op->ev, op->gen);
        return CUDA_SUCCESS;
    }
    if (op->kind == OP_WAIT || op->kind == OP_HOSTFN || op->n == 0) return CUDA_SUCCESS;
    switch (op->kind) {
    case OP_H2D:
        if (!dev_ok(op->dst, op->n)) return illegal(op, "device destination", op->dst, op->n);
        if ((r = check_host(op, "pinned host source"))) return r;
        memcpy(dev_host(op->dst), op->host, op->n);
        break;
    case OP_D2H:
        if (!dev_ok(op->src, op->n)) return illegal(op, "device source", op->src, op->n);
        if ((r = check_host(op, "pinned host destination"))) return r;
        memcpy(op->host, dev_host(op->src), op->n);
        break;
    case OP_D2D:
        if (!dev_ok(op->dst, op->n)) return illegal(op, "device destination", op->dst, op->n);
        if (!dev_ok(op->src, op->n)) return illegal(op, "device source", op->src, op->n);
        memmove(dev_host(op->dst), dev_host(op->src), op->n);
        break;
    case OP_MEMSET: {
        if (!dev_ok(op->dst, op->n)) return illegal(op, "device destination", op->dst, op->n);
        unsigned char *p = dev_host(op->dst);
        for (size_t i = 0; i < op->n; i += 4) memcpy(p + i, &op->value, 4);
        break;
    }
    default:
        break;
    }
    return CUDA_SUCCESS;
}

/* Runs an op on the calling thread (g.lock held): the sticky error first. */
static int run_now(const fake_op *op) {
    if (g.sticky) return g.sticky;
    return exec_op(op);
}

/* ------------------------------------------------------------ streams */

static int is_sync_stream(void *h) { return h == NULL || h == (void *)1 || h == (void *)2; }

static fake_stream *find_stream(void *h) {
    for (fake_stream *s = g.streams; s; s = s->next)
        if (s == h) return s;
    return NULL;
}

static fake_stream *stream_by_id(unsigned long long id) {
    for (fake_stream *s = g.streams; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

/* Waits (g.lock held) until everything enqueued on s so far has run. */
static void drain(fake_stream *s) {
    unsigned long long target = s->enqueued;
    while (s->done < target) pthread_cond_wait(&g.progress, &g.lock);
}

/* Waits (g.lock held) until every stream has run what was enqueued so far;
 * streams destroyed meanwhile were drained by their destroy. */
static void drain_all(void) {
    int n = 0;
    for (fake_stream *s = g.streams; s; s = s->next) n++;
    if (!n) return;
    unsigned long long(*snap)[2] = malloc((size_t)n * sizeof *snap);
    if (!snap) { /* no memory for the snapshot: until every stream is idle */
    restart:
        for (fake_stream *s = g.streams; s; s = s->next)
            if (s->done < s->enqueued) {
                pthread_cond_wait(&g.progress, &g.lock);
                goto restart;
            }
        return;
    }
    int i = 0;
    for (fake_stream *s = g.streams; s; s = s->next, i++) {
        snap[i][0] = s->id;
        snap[i][1] = s->enqueued;
    }
    for (;;) {
        int pending = 0;
        for (i = 0; i < n && !pending; i++) {
            fake_stream *s = stream_by_id(snap[i][0]);
            pending = s && s->done < snap[i][1];
        }
        if (!pending) break;
        pthread_cond_wait(&g.progress, &g.lock);
    }
    free(snap);
}

static int enqueue(fake_stream *s, const fake_op *tmpl) {
    fake_op *op = malloc(sizeof *op);
    if (!op) return CUDA_ERROR_OUT_OF_MEMORY;
    *op = *tmpl;
    op->next = NULL;
    if (op->ev) op->ev->refs++;
    if (s->tail) s->tail->next = op;
    else s->head = op;
    s->tail = op;
    s->enqueued++;
    pthread_cond_signal(&s->wake);
    return CUDA_SUCCESS;
}

static void *stream_worker(void *arg) {
    fake_stream *s = arg;
    pthread_mutex_lock(&g.lock);
    for (;;) {
        while (!s->head && !s->stop) pthread_cond_wait(&s->wake, &g.lock);
        fake_op *op = s->head;
        if (!op) break;
        s->head = op->next;
        if (!s->head) s->tail = NULL;
        unsigned us = next_delay(s);
        if (us) {
            pthread_mutex_unlock(&g.lock);
            sleep_us(us);
            pthread_mutex_lock(&g.lock);
        }
        if (op->kind == OP_WAIT) {
            while (op->ev->done < op->gen) pthread_cond_wait(&g.progress, &g.lock);
        }
        if (op->kind == OP_HOSTFN) { /* unlocked: it may wait for other streams */
            pthread_mutex_unlock(&g.lock);
            op->fn(op->user);
            pthread_mutex_lock(&g.lock);
        }
        exec_op(op); /* an error is sticky: the next synchronize reports it */
        if (op->ev) event_unref(op->ev);
        free(op);
        s->done++;
        g.stats.async_ops++;
        pthread_cond_broadcast(&g.progress);
    }
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

/* An async copy or memset (g.lock held): at once for the NULL stream, after
 * draining the stream for pageable host memory, else enqueued. */
static int submit(void *stream, fake_op op, int has_host) {
    int pageable = has_host && op.n && !host_pinned(op.host, op.n);
    op.pinned = has_host && !pageable;
    if (is_sync_stream(stream)) {
        if (pageable) g.stats.pageable_async++;
        return run_now(&op);
    }
    fake_stream *s = find_stream(stream);
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    if (pageable) {
        drain(s);
        g.stats.pageable_async++;
        return run_now(&op);
    }
    return enqueue(s, &op);
}

/* ------------------------------------------------------------ init, devices, contexts */

FAKE_API int cuInit(unsigned flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&g.lock);
    if (!g.initialized) {
        size_t n = env_size("XCS_FAKE_CUDA_DEVICES", 1);
        g.n_devices = n > MAX_DEVICES ? MAX_DEVICES : (int)n;
        g.initialized = 1;
    }
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDriverGetVersion(int *version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 13000;
    return CUDA_SUCCESS;
}

FAKE_API int cuDeviceGetCount(int *count) {
    int r = enter();
    if (r) return r;
    if (!count) return leave(CUDA_ERROR_INVALID_VALUE);
    *count = g.n_devices;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDeviceGet(int *device, int ordinal) {
    int r = enter();
    if (r) return r;
    if (!device) return leave(CUDA_ERROR_INVALID_VALUE);
    if (ordinal < 0 || ordinal >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    *device = ordinal;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDeviceGetName(char *name, int len, int device) {
    int r = enter();
    if (r) return r;
    if (!name || len <= 0) return leave(CUDA_ERROR_INVALID_VALUE);
    if (device < 0 || device >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    snprintf(name, (size_t)len, "xcs fake CUDA device %d", device);
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDeviceTotalMem_v2(size_t *bytes, int device) { /* the backend module's probe reads it */
    int r = enter();
    if (r) return r;
    if (!bytes) return leave(CUDA_ERROR_INVALID_VALUE);
    if (device < 0 || device >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    *bytes = env_size("XCS_FAKE_CUDA_MEM", DEFAULT_MEM);
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDeviceGetAttribute(int *value, int attrib, int device) {
    int r = enter();
    if (r) return r;
    if (!value) return leave(CUDA_ERROR_INVALID_VALUE);
    if (device < 0 || device >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    *value = attrib == ATTR_SM_COUNT ? 4 : attrib == ATTR_CC_MAJOR ? 9 : 0;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuDevicePrimaryCtxRetain(void **ctx, int device) {
    int r = enter();
    if (r) return r;
    if (!ctx) return leave(CUDA_ERROR_INVALID_VALUE);
    if (device < 0 || device >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    g.ctx_refs[device]++;
    *ctx = &g.ctx_dummy[device];
    return leave(CUDA_SUCCESS);
}

/* The last release of every primary context resets the sticky error. */
FAKE_API int cuDevicePrimaryCtxRelease_v2(int device) {
    int r = enter();
    if (r) return r;
    if (device < 0 || device >= g.n_devices) return leave(CUDA_ERROR_INVALID_DEVICE);
    if (g.ctx_refs[device] == 0) return leave(CUDA_ERROR_INVALID_CONTEXT);
    g.ctx_refs[device]--;
    int any = 0;
    for (int d = 0; d < g.n_devices; d++) any |= g.ctx_refs[d] != 0;
    if (!any) g.sticky = 0;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuCtxSetCurrent(void *ctx) {
    int r = enter();
    if (r) return r;
    if (ctx && !((char *)ctx >= g.ctx_dummy && (char *)ctx < g.ctx_dummy + g.n_devices))
        return leave(CUDA_ERROR_INVALID_CONTEXT);
    tls_ctx = ctx;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuCtxSynchronize(void) {
    int r = enter();
    if (r) return r;
    drain_all();
    return leave(g.sticky);
}

/* ------------------------------------------------------------ memory */

FAKE_API int cuMemAlloc_v2(unsigned long long *dptr, size_t n) {
    int r = enter();
    if (r) return r;
    if (!dptr || n == 0 || n > SIZE_MAX - DEV_ALIGN) return leave(CUDA_ERROR_INVALID_VALUE);
    size_t rounded = (n + DEV_ALIGN - 1) & ~(size_t)(DEV_ALIGN - 1);
    size_t cap = env_size("XCS_FAKE_CUDA_MEM", DEFAULT_MEM);
    if (g.dev_used > cap || rounded > cap - g.dev_used) return leave(CUDA_ERROR_OUT_OF_MEMORY);
    void *p = aligned_alloc(DEV_ALIGN, rounded);
    if (!p) return leave(CUDA_ERROR_OUT_OF_MEMORY);
    if (!table_add(&g.dev, (uintptr_t)p, n, rounded)) {
        free(p);
        return leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    memset(p, 0xA5, rounded);
    g.dev_used += rounded;
    *dptr = (unsigned long long)(uintptr_t)p ^ DEV_BIT;
    return leave(CUDA_SUCCESS);
}

/* Not synchronizing: pending stream ops on the block fail (sticky 700). */
FAKE_API int cuMemFree_v2(unsigned long long dptr) {
    int r = enter();
    if (r) return r;
    int i = table_find(&g.dev, (uintptr_t)(dptr ^ DEV_BIT));
    if (i < 0) return leave(CUDA_ERROR_INVALID_VALUE);
    void *p = (void *)g.dev.v[i].base;
    g.dev_used -= g.dev.v[i].rounded;
    table_remove(&g.dev, i);
    free(p);
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
    int r = enter();
    if (r) return r;
    if (!free_bytes || !total_bytes) return leave(CUDA_ERROR_INVALID_VALUE);
    size_t cap = env_size("XCS_FAKE_CUDA_MEM", DEFAULT_MEM);
    *total_bytes = cap;
    *free_bytes = cap > g.dev_used ? cap - g.dev_used : 0;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuMemHostAlloc(void **pp, size_t n, unsigned flags) {
    int r = enter();
    if (r) return r;
    if (!pp || n == 0 || n > SIZE_MAX - HOST_ALIGN) return leave(CUDA_ERROR_INVALID_VALUE);
    size_t rounded = (n + HOST_ALIGN - 1) & ~(size_t)(HOST_ALIGN - 1);
    void *p = aligned_alloc(HOST_ALIGN, rounded);
    if (!p) return leave(CUDA_ERROR_OUT_OF_MEMORY);
    if (!table_add(&g.host, (uintptr_t)p, n, rounded)) {
        free(p);
        return leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    *pp = p;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuMemFreeHost(void *p) {
    int r = enter();
    if (r) return r;
    int i = table_find(&g.host, (uintptr_t)p);
    if (i < 0) return leave(CUDA_ERROR_INVALID_VALUE);
    table_remove(&g.host, i);
    free(p);
    return leave(CUDA_SUCCESS);
}

/* ------------------------------------------------------------ copies and memsets */

static fake_op copy_op(op_kind kind, const char *name, unsigned long long dst, unsigned long long src, void *host,
                       size_t n) {
    return (fake_op){.kind = kind, .name = name, .dst = dst, .src = src, .host = host, .n = n};
}

/* A synchronous call: at once on the calling thread, not ordered after the
 * (non-blocking) streams. */
static int sync_call(fake_op op) {
    int r = enter();
    if (r) return r;
    if (op.n && (op.kind == OP_H2D || op.kind == OP_D2H) && !op.host) return leave(CUDA_ERROR_INVALID_VALUE);
    return leave(run_now(&op));
}

static int async_call(void *stream, fake_op op) {
    int r = enter();
    if (r) return r;
    int has_host = op.kind == OP_H2D || op.kind == OP_D2H;
    if (op.n && has_host && !op.host) return leave(CUDA_ERROR_INVALID_VALUE);
    return leave(submit(stream, op, has_host));
}

static int memset_op(unsigned long long dst, unsigned value, size_t count, const char *name, fake_op *op) {
    if (count > SIZE_MAX / 4 || (dst & 3)) return CUDA_ERROR_INVALID_VALUE;
    *op = copy_op(OP_MEMSET, name, dst, 0, NULL, count * 4);
    op->value = value;
    return CUDA_SUCCESS;
}

FAKE_API int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t n) {
    return sync_call(copy_op(OP_H2D, "cuMemcpyHtoD_v2", dst, 0, (void *)src, n));
}

FAKE_API int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t n) {
    return sync_call(copy_op(OP_D2H, "cuMemcpyDtoH_v2", 0, src, dst, n));
}

FAKE_API int cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src, size_t n) {
    return sync_call(copy_op(OP_D2D, "cuMemcpyDtoD_v2", dst, src, NULL, n));
}

FAKE_API int cuMemsetD32_v2(unsigned long long dst, unsigned value, size_t count) {
    fake_op op;
    int r = memset_op(dst, value, count, "cuMemsetD32_v2", &op);
    return r ? r : sync_call(op);
}

FAKE_API int cuMemcpyHtoDAsync_v2(unsigned long long dst, const void *src, size_t n, void *stream) {
    return async_call(stream, copy_op(OP_H2D, "cuMemcpyHtoDAsync_v2", dst, 0, (void *)src, n));
}

FAKE_API int cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t n, void *stream) {
    return async_call(stream, copy_op(OP_D2H, "cuMemcpyDtoHAsync_v2", 0, src, dst, n));
}

FAKE_API int cuMemcpyDtoDAsync_v2(unsigned long long dst, unsigned long long src, size_t n, void *stream) {
    return async_call(stream, copy_op(OP_D2D, "cuMemcpyDtoDAsync_v2", dst, src, NULL, n));
}

FAKE_API int cuMemsetD32Async(unsigned long long dst, unsigned value, size_t count, void *stream) {
    fake_op op;
    int r = memset_op(dst, value, count, "cuMemsetD32Async", &op);
    return r ? r : async_call(stream, op);
}

/* ------------------------------------------------------------ streams */

FAKE_API int cuStreamCreate(void **stream, unsigned flags) {
    int r = enter();
    if (r) return r;
    if (!stream) return leave(CUDA_ERROR_INVALID_VALUE);
    fake_stream *s = calloc(1, sizeof *s);
    if (!s) return leave(CUDA_ERROR_OUT_OF_MEMORY);
    s->id = ++g.next_stream_id;
    size_t delay = env_size("XCS_FAKE_CUDA_DELAY_US", 0);
    s->delay_us = delay > 10000000 ? 10000000 : (unsigned)delay;
    s->rng = splitmix64(env_size("XCS_FAKE_CUDA_SEED", 1) + s->id);
    if (!s->rng) s->rng = 1;
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, stream_worker, s) != 0) {
        pthread_cond_destroy(&s->wake);
        free(s);
        return leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    s->next = g.streams;
    g.streams = s;
    g.stats.live_streams++;
    *stream = s;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuStreamDestroy_v2(void *stream) {
    int r = enter();
    if (r) return r;
    fake_stream *s = find_stream(stream);
    if (!s) return leave(CUDA_ERROR_INVALID_HANDLE);
    drain(s);
    for (fake_stream **pp = &g.streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    g.stats.live_streams--;
    pthread_mutex_unlock(&g.lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    free(s);
    return CUDA_SUCCESS;
}

FAKE_API int cuStreamSynchronize(void *stream) {
    int r = enter();
    if (r) return r;
    if (!is_sync_stream(stream)) {
        fake_stream *s = find_stream(stream);
        if (!s) return leave(CUDA_ERROR_INVALID_HANDLE);
        drain(s);
    }
    return leave(g.sticky);
}

FAKE_API int cuStreamQuery(void *stream) {
    int r = enter();
    if (r) return r;
    if (is_sync_stream(stream)) return leave(CUDA_SUCCESS);
    fake_stream *s = find_stream(stream);
    if (!s) return leave(CUDA_ERROR_INVALID_HANDLE);
    return leave(s->done == s->enqueued ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY);
}

FAKE_API int cuStreamWaitEvent(void *stream, void *event, unsigned flags) {
    int r = enter();
    if (r) return r;
    fake_event *e = find_event(event);
    fake_stream *s = is_sync_stream(stream) ? NULL : find_stream(stream);
    if (!e || (!s && !is_sync_stream(stream))) return leave(CUDA_ERROR_INVALID_HANDLE);
    if (!e->recorded) return leave(CUDA_SUCCESS);
    g.stats.stream_waits++;
    if (!s) { /* the NULL stream's later work runs on this thread: wait here */
        event_wait(e, e->recorded);
        return leave(CUDA_SUCCESS);
    }
    fake_op op = {.kind = OP_WAIT, .name = "cuStreamWaitEvent", .ev = e, .gen = e->recorded};
    return leave(enqueue(s, &op));
}

/* Runs fn(user) on the stream after the ops before it and before the ops
 * after it; NULL / legacy / per-thread streams: at once on this thread.
 * Either way g.lock is not held while fn runs.  A sticky error does not stop
 * it (the real driver would refuse the launch; the fake keeps host functions
 * simple and lets the next synchronize report the error). */
FAKE_API int cuLaunchHostFunc(void *stream, void (*fn)(void *), void *user) {
    int r = enter();
    if (r) return r;
    if (!fn) return leave(CUDA_ERROR_INVALID_VALUE);
    if (is_sync_stream(stream)) {
        g.stats.host_fns++;
        pthread_mutex_unlock(&g.lock);
        fn(user);
        return CUDA_SUCCESS;
    }
    fake_stream *s = find_stream(stream);
    if (!s) return leave(CUDA_ERROR_INVALID_HANDLE);
    fake_op op = {.kind = OP_HOSTFN, .name = "cuLaunchHostFunc", .fn = fn, .user = user};
    r = enqueue(s, &op);
    if (!r) g.stats.host_fns++;
    return leave(r);
}

/* ------------------------------------------------------------ events */

FAKE_API int cuEventCreate(void **event, unsigned flags) {
    int r = enter();
    if (r) return r;
    if (!event) return leave(CUDA_ERROR_INVALID_VALUE);
    fake_event *e = calloc(1, sizeof *e);
    if (!e) return leave(CUDA_ERROR_OUT_OF_MEMORY);
    e->flags = flags;
    e->refs = 1;
    e->next = g.events;
    g.events = e;
    g.stats.live_events++;
    *event = e;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuEventRecord(void *event, void *stream) {
    int r = enter();
    if (r) return r;
    fake_event *e = find_event(event);
    fake_stream *s = is_sync_stream(stream) ? NULL : find_stream(stream);
    if (!e || (!s && !is_sync_stream(stream))) return leave(CUDA_ERROR_INVALID_HANDLE);
    unsigned long long gen = ++e->recorded;
    if (!s) {
        event_complete(e, gen);
        pthread_cond_broadcast(&g.progress);
        return leave(CUDA_SUCCESS);
    }
    fake_op op = {.kind = OP_RECORD, .name = "cuEventRecord", .ev = e, .gen = gen};
    r = enqueue(s, &op);
    if (r) e->recorded--; /* nothing was recorded */
    return leave(r);
}

FAKE_API int cuEventQuery(void *event) {
    int r = enter();
    if (r) return r;
    fake_event *e = find_event(event);
    if (!e) return leave(CUDA_ERROR_INVALID_HANDLE);
    return leave(e->done >= e->recorded ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY);
}

FAKE_API int cuEventSynchronize(void *event) {
    int r = enter();
    if (r) return r;
    fake_event *e = find_event(event);
    if (!e) return leave(CUDA_ERROR_INVALID_HANDLE);
    g.stats.event_syncs++;
    event_wait(e, e->recorded);
    return leave(g.sticky);
}

/* Never-recorded or timing-disabled events: CUDA_ERROR_INVALID_HANDLE, as the
 * driver answers; a pending record: CUDA_ERROR_NOT_READY. */
FAKE_API int cuEventElapsedTime(float *ms, void *start, void *stop) {
    int r = enter();
    if (r) return r;
    fake_event *a = find_event(start), *b = find_event(stop);
    if (!ms) return leave(CUDA_ERROR_INVALID_VALUE);
    if (!a || !b || ((a->flags | b->flags) & EVENT_DISABLE_TIMING) || !a->recorded || !b->recorded)
        return leave(CUDA_ERROR_INVALID_HANDLE);
    if (a->done < a->recorded || b->done < b->recorded) return leave(CUDA_ERROR_NOT_READY);
    *ms = (float)(b->stamp_ms - a->stamp_ms);
    return leave(CUDA_SUCCESS);
}

/* The handle dies now; the memory when the last pending op naming it ran. */
FAKE_API int cuEventDestroy_v2(void *event) {
    int r = enter();
    if (r) return r;
    fake_event **pp = &g.events;
    while (*pp && *pp != event) pp = &(*pp)->next;
    if (!*pp) return leave(CUDA_ERROR_INVALID_HANDLE);
    fake_event *e = *pp;
    *pp = e->next;
    event_unref(e);
    return leave(CUDA_SUCCESS);
}

/* ------------------------------------------------------------ modules and launches */

FAKE_API int cuModuleLoadData(void **module, const void *image) {
    int r = enter();
    if (r) return r;
    if (!module || !image) return leave(CUDA_ERROR_INVALID_VALUE);
    *module = &g.module_dummy;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuModuleGetFunction(void **function, void *module, const char *name) {
    int r = enter();
    if (r) return r;
    if (!function || !name) return leave(CUDA_ERROR_INVALID_VALUE);
    if (module != &g.module_dummy) return leave(CUDA_ERROR_INVALID_HANDLE);
    *function = &g.function_dummy;
    return leave(CUDA_SUCCESS);
}

FAKE_API int cuModuleUnload(void *module) {
    int r = enter();
    if (r) return r;
    return leave(module == &g.module_dummy ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE);
}

/* The fake driver runs no kernels. */
FAKE_API int cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
    int r = enter();
    if (r) return r;
    g.stats.launches_refused++;
    return leave(CUDA_ERROR_NOT_SUPPORTED);
}

FAKE_API int cuGetErrorName(int error, const char **name) {
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {CUDA_SUCCESS, "CUDA_SUCCESS"},
        {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE"},
        {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY"},
        {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED"},
        {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE"},
        {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT"},
        {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE"},
        {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY"},
        {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS"},
        {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED"},
        {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN"},
    };
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    *name = "CUDA_ERROR_UNKNOWN";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == error) *name = names[i].name;
    return CUDA_SUCCESS;
}

/* ------------------------------------------------------------ test introspection */

/* For fakes of libraries that work on device memory (fake_nccl.c): the host
 * address behind [dptr, dptr + n), or the sticky CUDA_ERROR_ILLEGAL_ADDRESS
 * when that range is not inside one live allocation, as a kernel touching it
 * would get.  The address stays valid until the allocation is freed. */
FAKE_API int xcs_fake_cuda_device_ptr(unsigned long long dptr, size_t n, void **host) {
    int r = enter();
    if (r) return r;
    if (!host) return leave(CUDA_ERROR_INVALID_VALUE);
    if (!dev_ok(dptr, n)) {
        fake_op op = {.name = "xcs_fake_cuda_device_ptr"};
        return leave(illegal(&op, "device range", dptr, n));
    }
    *host = dev_host(dptr);
    return leave(CUDA_SUCCESS);
}

FAKE_API void xcs_fake_cuda_stats(struct xcs_fake_cuda_stats *out) {
    if (!out) return;
    pthread_mutex_lock(&g.lock);
    *out = g.stats;
    out->live_device_allocs = g.dev.n;
    out->live_device_bytes = (long long)g.dev_used;
    out->live_host_allocs = g.host.n;
    pthread_mutex_unlock(&g.lock);
}
