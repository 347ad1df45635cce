/* runtime.c — see runtime.h.  The driver API is declared here with its
 * documented C signatures (CUresult int, CUdevice int, CUdeviceptr 64-bit,
 * contexts/modules/functions/streams opaque pointers), so no CUDA header is
 * needed to build it. */
#include "runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "nvrtc.h"
#include "xcs_cuda.h"

typedef int cu_res;
typedef void *cu_ctx;
typedef void *cu_mod;
typedef void *cu_fn;
typedef unsigned long long cu_dptr;

enum { CU_ATTR_SM_COUNT = 16, CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 };

typedef struct cu_kernel {
    uint64_t key;   /* source hash ^ device */
    cu_mod mod;
    cu_fn fn;
} cu_kernel;

/* A cached device block (free for reuse): its size class and the streams
 * that may still have work on it (blocks.h). */
typedef struct cu_block {
    cu_dptr ptr;
    size_t size;
    xcs_cu_smask users;
} cu_block;

/* One of the device's streams (one per host thread, up to n_streams, then
 * shared round-robin), made at its first use, with what work on it needs:
 * an event other streams wait for, its word for kernel faults, and two
 * halves of pinned staging memory for host copies.  `lock` serialises the
 * staging buffer and the fault word between threads sharing the stream. */
typedef struct cu_stream {
    atomic_int made; /* s and the events exist */
    void *s;
    void *order_ev;
    pthread_mutex_t lock;
    cu_dptr err_word;
    unsigned *err_host; /* pinned: the fault word read back */
    char *stage;        /* pinned, 2 * half bytes */
    size_t half;
    void *stage_ev[2];  /* the last copy through each half */
    char last_kernel[64];
} cu_stream;

/* Staging halves grow to the largest copy seen, up to this; longer copies
 * go through in chunks, one half filling while the other is in flight. */
#define XCS_CU_STAGE_MAX ((size_t)8 << 20)
#define XCS_CU_STAGE_MIN ((size_t)64 << 10)

struct xcs_cu_runtime {
    void *lib;
    xcs_nvrtc *nvrtc;
    int device, cc, sm_count;
    int ordinal;
    cu_ctx ctx;
    cu_dptr err_words;   /* one fault word per stream */
    unsigned *err_host;  /* pinned, one per stream */
    char desc[256];
    pthread_mutex_t lock; /* the module cache */
    cu_kernel *kernels;
    int n_kernels, cap_kernels;
    int *slots; /* the cache's index (find_kernel) */
    bool sync_each;       /* XCS_CUDA_SYNC=1: wait for every launch (debugging) */
    /* streams (stream_lock guards their creation) */
    pthread_mutex_t stream_lock;
    int n_streams;        /* XCS_CUDA_STREAMS, default 16 */
    _Atomic int next_stream;
    cu_stream streams[XCS_CU_MAX_STREAMS];
    /* the caching allocator (alloc_lock): live blocks with their stream
     * order (blocks.h), cached blocks by size class */
    pthread_mutex_t alloc_lock;
    xcs_cu_blocks *live;
    cu_block *cached;
    int n_cached, cap_cached;
    xcs_cu_mem_stats mem;
    char cache_dir[512]; /* on-disk kernel cache ("" when off) */
    cu_res (*init)(unsigned);
    cu_res (*device_get)(int *, int);
    cu_res (*device_count)(int *);
    cu_res (*device_name)(char *, int, int);
    cu_res (*device_attr)(int *, int, int);
    cu_res (*driver_version)(int *);
    cu_res (*ctx_retain)(cu_ctx *, int);
    cu_res (*ctx_release)(int);
    cu_res (*ctx_set)(cu_ctx);
    cu_res (*ctx_sync)(void);
    cu_res (*mem_alloc)(cu_dptr *, size_t);
    cu_res (*mem_free)(cu_dptr);
    cu_res (*mem_info)(size_t *, size_t *);
    cu_res (*event_create)(void **, unsigned);
    cu_res (*event_record)(void *, void *);
    cu_res (*event_sync)(void *);
    cu_res (*event_elapsed)(float *, void *, void *);
    cu_res (*event_destroy)(void *);
    cu_res (*stream_create)(void **, unsigned);
    cu_res (*stream_destroy)(void *);
    cu_res (*stream_sync)(void *);
    cu_res (*stream_wait)(void *, void *, unsigned);
    cu_res (*h2d_async)(cu_dptr, const void *, size_t, void *);
    cu_res (*d2h_async)(void *, cu_dptr, size_t, void *);
    cu_res (*d2d_async)(cu_dptr, cu_dptr, size_t, void *);
    cu_res (*memset32_async)(cu_dptr, unsigned, size_t, void *);
    cu_res (*host_alloc)(void **, size_t, unsigned);
    cu_res (*host_free)(void *);
    cu_res (*mod_load)(cu_mod *, const void *);
    cu_res (*mod_fn)(cu_fn *, cu_mod, const char *);
    cu_res (*mod_unload)(cu_mod);
    cu_res (*launch)(cu_fn, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **,
                     void **);
    cu_res (*err_name)(cu_res, const char **);
};

static xcs_status cu_fail(const xcs_cu_runtime *rt, cu_res r, const char *what) {
    const char *name = NULL;
    if (!rt->err_name || rt->err_name(r, &name) != 0 || !name) name = "?";
    return xcs_error(r == 2 ? XCS_ERR_MEMORY : XCS_ERR_INTERNAL, "CUDA %s failed: %s (%d)", what, name, r);
}

static void cache_dir_init(xcs_cu_runtime *rt);

#define CU_CALL(rt, call, what)                                                                     \
    do {                                                                                            \
        cu_res cu_r_ = (call);                                                                      \
        if (cu_r_ != 0) return cu_fail((rt), cu_r_, (what));                                        \
    } while (0)

static void stream_close(xcs_cu_runtime *rt, cu_stream *cs) {
    if (cs->s) {
        rt->stream_sync(cs->s);
        rt->stream_destroy(cs->s);
    }
    if (cs->order_ev) rt->event_destroy(cs->order_ev);
    for (int h = 0; h < 2; h++)
        if (cs->stage_ev[h]) rt->event_destroy(cs->stage_ev[h]);
    if (cs->stage) rt->host_free(cs->stage);
    pthread_mutex_destroy(&cs->lock);
}

void xcs_cu_close(xcs_cu_runtime *rt) {
    if (!rt) return;
    if (rt->ctx) {
        rt->ctx_set(rt->ctx);
        for (int i = 0; i < XCS_CU_MAX_STREAMS; i++) stream_close(rt, &rt->streams[i]);
        for (int i = 0; i < rt->n_kernels; i++) rt->mod_unload(rt->kernels[i].mod);
        for (int i = 0; i < rt->n_cached; i++) rt->mem_free(rt->cached[i].ptr);
        for (int i = 0; rt->live && i < xcs_cu_blocks_count(rt->live); i++)
            rt->mem_free(xcs_cu_blocks_base(rt->live, i));
        if (rt->err_words) rt->mem_free(rt->err_words);
        if (rt->err_host) rt->host_free(rt->err_host);
        rt->ctx_release(rt->device);
    } else {
        for (int i = 0; i < XCS_CU_MAX_STREAMS; i++) pthread_mutex_destroy(&rt->streams[i].lock);
    }
    free(rt->kernels);
    free(rt->slots);
    xcs_cu_blocks_free(rt->live);
    free(rt->cached);
    xcs_nvrtc_close(rt->nvrtc);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->stream_lock);
    pthread_mutex_destroy(&rt->alloc_lock);
    free(rt);
}

xcs_status xcs_cu_open(int ordinal, xcs_cu_runtime **out) {
    *out = NULL;
    xcs_cu_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return xcs_error(XCS_ERR_MEMORY, "out of memory opening a CUDA device");
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->stream_lock, NULL);
    pthread_mutex_init(&rt->alloc_lock, NULL);
    for (int i = 0; i < XCS_CU_MAX_STREAMS; i++) pthread_mutex_init(&rt->streams[i].lock, NULL);
    rt->ordinal = ordinal;
    if (!(rt->live = xcs_cu_blocks_new())) {
        xcs_cu_close(rt);
        return xcs_error(XCS_ERR_MEMORY, "out of memory opening a CUDA device");
    }
    const char *env = getenv("XCS_CUDA_DRIVER");
    const char *name = env && *env ? env : "libcuda.so.1";
    rt->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!rt->lib) {
        xcs_cu_close(rt);
        return xcs_error(XCS_ERR_UNSUPPORTED, "no CUDA driver: %s", dlerror());
    }
#define SYM(field, sym)                                                                             \
    do {                                                                                            \
        *(void **)&rt->field = dlsym(rt->lib, sym);                                                 \
        if (!rt->field) {                                                                           \
            xcs_cu_close(rt);                                                                       \
            return xcs_error(XCS_ERR_UNSUPPORTED, "the CUDA driver %s lacks %s", name, sym);        \
        }                                                                                           \
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
    SYM(mem_info, "cuMemGetInfo_v2");
    SYM(event_create, "cuEventCreate");
    SYM(event_record, "cuEventRecord");
    SYM(event_sync, "cuEventSynchronize");
    SYM(event_elapsed, "cuEventElapsedTime");
    SYM(event_destroy, "cuEventDestroy_v2");
    SYM(stream_create, "cuStreamCreate");
    SYM(stream_destroy, "cuStreamDestroy_v2");
    SYM(stream_sync, "cuStreamSynchronize");
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
#undef SYM
    xcs_status st = XCS_OK;
    cu_res r;
    int count = 0, dev = 0, major = 0, minor = 0, drv = 0;
    char dname[128] = "";
    if ((r = rt->init(0)) != 0) st = cu_fail(rt, r, "cuInit");
    else if ((r = rt->device_count(&count)) != 0) st = cu_fail(rt, r, "cuDeviceGetCount");
    else if (ordinal < 0 || ordinal >= count)
        st = xcs_error(XCS_ERR_UNSUPPORTED, "CUDA device %d requested; the driver sees %d", ordinal, count);
    else if ((r = rt->device_get(&dev, ordinal)) != 0) st = cu_fail(rt, r, "cuDeviceGet");
    if (st) {
        xcs_cu_close(rt);
        return st;
    }
    rt->device = dev;
    rt->device_name(dname, (int)sizeof dname, dev);
    rt->device_attr(&major, CU_ATTR_CC_MAJOR, dev);
    rt->device_attr(&minor, CU_ATTR_CC_MINOR, dev);
    rt->device_attr(&rt->sm_count, CU_ATTR_SM_COUNT, dev);
    rt->driver_version(&drv);
    rt->cc = major * 10 + minor;
    if ((st = xcs_nvrtc_open(&rt->nvrtc))) {
        xcs_cu_close(rt);
        return st;
    }
    if ((r = rt->ctx_retain(&rt->ctx, dev)) != 0) {
        st = cu_fail(rt, r, "cuDevicePrimaryCtxRetain");
        rt->ctx = NULL;
    } else if ((r = rt->ctx_set(rt->ctx)) != 0) {
        st = cu_fail(rt, r, "cuCtxSetCurrent");
    } else if ((r = rt->mem_alloc(&rt->err_words, 4 * XCS_CU_MAX_STREAMS)) != 0) {
        st = cu_fail(rt, r, "cuMemAlloc (fault words)");
    } else if ((r = rt->host_alloc((void **)&rt->err_host, 4 * XCS_CU_MAX_STREAMS, 0)) != 0) {
        st = cu_fail(rt, r, "cuMemHostAlloc (fault words)");
        rt->err_host = NULL;
    }
    if (st) {
        xcs_cu_close(rt);
        return st;
    }
    snprintf(rt->desc, sizeof rt->desc, "%s, sm_%d, %d SMs, driver %d, NVRTC %d", dname, rt->cc, rt->sm_count, drv,
             xcs_nvrtc_version(rt->nvrtc));
    cache_dir_init(rt);
    const char *sync = getenv("XCS_CUDA_SYNC");
    rt->sync_each = sync && strcmp(sync, "1") == 0;
    const char *ns = getenv("XCS_CUDA_STREAMS");
    rt->n_streams = ns && *ns ? atoi(ns) : 16;
    if (rt->n_streams < 1) rt->n_streams = 1;
    if (rt->n_streams > XCS_CU_MAX_STREAMS) rt->n_streams = XCS_CU_MAX_STREAMS;
    for (int i = 0; i < XCS_CU_MAX_STREAMS; i++) {
        rt->streams[i].err_word = rt->err_words + 4 * (cu_dptr)i;
        rt->streams[i].err_host = rt->err_host + i;
    }
    *out = rt;
    return XCS_OK;
}

const char *xcs_cu_describe(const xcs_cu_runtime *rt) { return rt->desc; }

xcs_status xcs_cu_make_current(xcs_cu_runtime *rt) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    return XCS_OK;
}
int xcs_cu_cc(const xcs_cu_runtime *rt) { return rt->cc; }
int xcs_cu_ordinal(const xcs_cu_runtime *rt) { return rt->ordinal; }

/* ---------------------------------------------------------------- streams */

/* The calling thread's stream number on each device, plus one (0: none
 * yet).  Per-thread by nature: a thread keeps its stream, so its work stays
 * in order without any event. */
static _Thread_local int thread_stream[XCS_CUDA_MAX_DEVICES];

enum { CU_EVENT_DISABLE_TIMING = 2 };

/* Makes a stream's handle and events (stream_lock held). */
static xcs_status stream_make(xcs_cu_runtime *rt, cu_stream *cs) {
    /* flags 0: a blocking stream, ordered with the legacy default stream,
     * where DLPack consumers such as torch queue their work by default */
    cu_res r = rt->stream_create(&cs->s, 0);
    if (r != 0) {
        cs->s = NULL;
        return cu_fail(rt, r, "cuStreamCreate");
    }
    void **ev[] = {&cs->order_ev, &cs->stage_ev[0], &cs->stage_ev[1]};
    for (int i = 0; i < 3 && r == 0; i++)
        if ((r = rt->event_create(ev[i], CU_EVENT_DISABLE_TIMING)) != 0) *ev[i] = NULL;
    if (r != 0) {
        xcs_status st = cu_fail(rt, r, "cuEventCreate");
        for (int i = 0; i < 3; i++)
            if (*ev[i]) rt->event_destroy(*ev[i]);
        rt->stream_destroy(cs->s);
        cs->s = cs->order_ev = cs->stage_ev[0] = cs->stage_ev[1] = NULL;
        return st;
    }
    atomic_store_explicit(&cs->made, 1, memory_order_release);
    return XCS_OK;
}

/* The calling thread's stream (made at its first use), with the context
 * current. */
static xcs_status my_stream(xcs_cu_runtime *rt, int *out) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    int ord = rt->ordinal >= 0 && rt->ordinal < XCS_CUDA_MAX_DEVICES ? rt->ordinal : 0;
    int i = thread_stream[ord] - 1;
    if (i < 0 || i >= rt->n_streams) {
        i = atomic_fetch_add(&rt->next_stream, 1) % rt->n_streams;
        thread_stream[ord] = i + 1;
    }
    cu_stream *cs = &rt->streams[i];
    xcs_status st = XCS_OK;
    if (!atomic_load_explicit(&cs->made, memory_order_acquire)) {
        pthread_mutex_lock(&rt->stream_lock);
        if (!atomic_load(&cs->made)) st = stream_make(rt, cs);
        pthread_mutex_unlock(&rt->stream_lock);
    }
    *out = i;
    return st;
}

/* Stream `me` waits for the work queued so far on every stream of mask. */
static xcs_status wait_streams(xcs_cu_runtime *rt, int me, xcs_cu_smask mask) {
    for (int t = 0; mask; t++, mask >>= 1) {
        if (!(mask & 1u) || t == me || !atomic_load_explicit(&rt->streams[t].made, memory_order_acquire)) continue;
        CU_CALL(rt, rt->event_record(rt->streams[t].order_ev, rt->streams[t].s), "cuEventRecord (stream order)");
        CU_CALL(rt, rt->stream_wait(rt->streams[me].s, rt->streams[t].order_ev, 0), "cuStreamWaitEvent");
    }
    return XCS_OK;
}

/* Orders stream `me` after what it must wait for before touching the blocks
 * of `n` uses (blocks.h). */
static xcs_status order_uses(xcs_cu_runtime *rt, int me, int n, const xcs_cu_use *use) {
    xcs_cu_smask wait = 0;
    pthread_mutex_lock(&rt->alloc_lock);
    for (int i = 0; i < n; i++) wait |= xcs_cu_blocks_access(rt->live, use[i].addr, use[i].exact, me, use[i].write);
    pthread_mutex_unlock(&rt->alloc_lock);
    return wait ? wait_streams(rt, me, wait) : XCS_OK;
}

xcs_status xcs_cu_order(xcs_cu_runtime *rt, int n, const xcs_cu_use *use) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    return st ? st : order_uses(rt, me, n, use);
}

xcs_status xcs_cu_stream(xcs_cu_runtime *rt, void **handle, int *index) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (handle) *handle = st ? NULL : rt->streams[me].s;
    if (index) *index = st ? -1 : me;
    return st;
}

/* Waits for stream i; a fault of a kernel queued on it is reported naming
 * the last kernel launched there. */
static xcs_status stream_wait_done(xcs_cu_runtime *rt, int i, const char *what) {
    cu_res r = rt->stream_sync(rt->streams[i].s);
    if (r != 0)
        return xcs_error_context(cu_fail(rt, r, what), "the last kernel launched on this thread's stream was %s",
                                 rt->streams[i].last_kernel[0] ? rt->streams[i].last_kernel : "none");
    return XCS_OK;
}

int xcs_cu_kernels_cached(const xcs_cu_runtime *rt) { return rt->n_kernels; }

/* Size classes: 512-byte steps under 1 MiB, 2 MiB steps above, so a block
 * freed by one step of a loop serves the next step's request of about the
 * same size. */
static size_t size_class(size_t n) {
    if (n == 0) n = 1;
    size_t step = n < ((size_t)1 << 20) ? 512 : ((size_t)2 << 20);
    return (n + step - 1) / step * step;
}

static bool push_block(cu_block **arr, int *n, int *cap, cu_block b) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        cu_block *a = realloc(*arr, (size_t)c * sizeof *a);
        if (!a) return false;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = b;
    return true;
}

/* Frees every cached block (alloc_lock held). */
static void drop_cache_locked(xcs_cu_runtime *rt) {
    for (int i = 0; i < rt->n_cached; i++) rt->mem_free(rt->cached[i].ptr);
    rt->n_cached = 0;
    rt->mem.cached_bytes = 0;
}

/* A cached block of `size` for stream me (alloc_lock held): the most
 * recently freed one that only `me` used (still in L2, and no wait), else
 * the most recent one, whose users `me` will wait for; -1 when none. */
static int cached_pick(const xcs_cu_runtime *rt, size_t size, int me) {
    int pick = -1;
    for (int i = rt->n_cached - 1; i >= 0; i--)
        if (rt->cached[i].size == size) {
            if (!(rt->cached[i].users & ~((xcs_cu_smask)1u << me))) return i;
            if (pick < 0) pick = i;
        }
    return pick;
}

xcs_status xcs_cu_alloc(xcs_cu_runtime *rt, size_t nbytes, xcs_cu_ptr *out) {
    size_t size = size_class(nbytes);
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (st) return st;
    pthread_mutex_lock(&rt->alloc_lock);
    cu_dptr p = 0;
    xcs_cu_smask users = 0, wait = 0;
    int i = cached_pick(rt, size, me);
    if (i >= 0) {
        p = rt->cached[i].ptr;
        users = rt->cached[i].users;
        rt->cached[i] = rt->cached[--rt->n_cached];
        rt->mem.cached_bytes -= size;
        rt->mem.reused++;
    } else {
        cu_res r = rt->mem_alloc(&p, size);
        if (r == 2 /* CUDA_ERROR_OUT_OF_MEMORY */ && rt->n_cached > 0) { /* once more, without the cache */
            rt->ctx_sync();
            drop_cache_locked(rt);
            r = rt->mem_alloc(&p, size);
        }
        if (r != 0) {
            size_t free_b = 0, total_b = 0;
            rt->mem_info(&free_b, &total_b);
            st = cu_fail(rt, r, "cuMemAlloc");
            xcs_error_context(st, "allocating %zu bytes on %s (%lld bytes in use by xcs, %zu of %zu bytes free on the "
                              "device; free arrays or call ember.xcs.empty_cache())",
                              nbytes, rt->desc, (long long)rt->mem.current_bytes, free_b, total_b);
            p = 0;
        } else {
            rt->mem.device_allocs++;
        }
    }
    if (p && !xcs_cu_blocks_add(rt->live, p, size, me, users, &wait)) {
        rt->ctx_sync(); /* its last users may still run */
        rt->mem_free(p);
        p = 0;
        st = xcs_error(XCS_ERR_MEMORY, "out of host memory tracking a device block");
    }
    if (p) {
        rt->mem.current_bytes += (int64_t)size;
        if (rt->mem.current_bytes > rt->mem.peak_bytes) rt->mem.peak_bytes = rt->mem.current_bytes;
        rt->mem.allocs++;
    }
    pthread_mutex_unlock(&rt->alloc_lock);
    if (!st && wait && (st = wait_streams(rt, me, wait))) xcs_cu_free(rt, p);
    if (!st) *out = p;
    return st;
}

/* Blocks go back to the cache, not to the driver, with the streams that
 * used them: their next owner's stream waits for those (blocks.h), so no
 * kernel still reading a block races the kernels of its next owner. */
void xcs_cu_free(xcs_cu_runtime *rt, xcs_cu_ptr p) {
    if (!p) return;
    pthread_mutex_lock(&rt->alloc_lock);
    size_t size = 0;
    xcs_cu_smask users = 0;
    if (xcs_cu_blocks_remove(rt->live, p, &size, &users)) {
        rt->mem.current_bytes -= (int64_t)size;
        if (push_block(&rt->cached, &rt->n_cached, &rt->cap_cached, (cu_block){p, size, users})) {
            rt->mem.cached_bytes += (int64_t)size;
        } else if (rt->ctx_set(rt->ctx) == 0) {
            rt->ctx_sync();
            rt->mem_free(p);
        }
    }
    pthread_mutex_unlock(&rt->alloc_lock);
}

void xcs_cu_empty_cache(xcs_cu_runtime *rt) {
    pthread_mutex_lock(&rt->alloc_lock);
    if (rt->ctx_set(rt->ctx) == 0) {
        rt->ctx_sync();
        drop_cache_locked(rt);
    }
    pthread_mutex_unlock(&rt->alloc_lock);
}

void xcs_cu_mem_stats_get(xcs_cu_runtime *rt, xcs_cu_mem_stats *out) {
    pthread_mutex_lock(&rt->alloc_lock);
    *out = rt->mem;
    pthread_mutex_unlock(&rt->alloc_lock);
}

void xcs_cu_note(xcs_cu_runtime *rt, xcs_cu_note_kind kind, int64_t n) {
    pthread_mutex_lock(&rt->alloc_lock);
    int64_t *counter[] = {[XCS_CU_NOTE_GEMM_EPILOGUE] = &rt->mem.gemm_epilogues,
                          [XCS_CU_NOTE_SOLVER] = &rt->mem.solver_factorizations,
                          [XCS_CU_NOTE_ROW_CHAIN] = &rt->mem.row_chains,
                          [XCS_CU_NOTE_SCAN_LOOP] = &rt->mem.scan_loops};
    *counter[kind] += n;
    pthread_mutex_unlock(&rt->alloc_lock);
}

void xcs_cu_mem_reset_peak(xcs_cu_runtime *rt) {
    pthread_mutex_lock(&rt->alloc_lock);
    rt->mem.peak_bytes = rt->mem.current_bytes;
    pthread_mutex_unlock(&rt->alloc_lock);
}

xcs_status xcs_cu_sync(xcs_cu_runtime *rt) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    cu_res r = rt->ctx_sync();
    if (r != 0) {
        int me = -1;
        if (my_stream(rt, &me)) me = -1;
        const char *last = me >= 0 && rt->streams[me].last_kernel[0] ? rt->streams[me].last_kernel : "none";
        return xcs_error_context(cu_fail(rt, r, "a kernel (cuCtxSynchronize)"),
                                 "the last kernel launched on this thread's stream was %s", last);
    }
    return XCS_OK;
}

xcs_status xcs_cu_sync_stream(xcs_cu_runtime *rt) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    return st ? st : stream_wait_done(rt, me, "a kernel (cuStreamSynchronize)");
}

xcs_status xcs_cu_wait(xcs_cu_runtime *rt, xcs_cu_ptr addr) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    const xcs_cu_use use = {addr, false, false};
    if (!st) st = order_uses(rt, me, 1, &use);
    return st ? st : stream_wait_done(rt, me, "a kernel (cuStreamSynchronize)");
}

xcs_status xcs_cu_zero(xcs_cu_runtime *rt, xcs_cu_ptr dst, size_t nbytes) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (st) return st;
    if (nbytes % 4) return xcs_error(XCS_ERR_INTERNAL, "xcs_cu_zero of %zu bytes (not whole words)", nbytes);
    if (nbytes) CU_CALL(rt, rt->memset32_async(dst, 0, nbytes / 4, rt->streams[me].s), "cuMemsetD32Async");
    return XCS_OK;
}

xcs_status xcs_cu_copy(xcs_cu_runtime *rt, xcs_cu_ptr dst, xcs_cu_ptr src, size_t nbytes) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (st) return st;
    if (nbytes) CU_CALL(rt, rt->d2d_async(dst, src, nbytes, rt->streams[me].s), "cuMemcpyDtoDAsync");
    return XCS_OK;
}

xcs_status xcs_cu_event_new(xcs_cu_runtime *rt, void **ev) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    CU_CALL(rt, rt->event_create(ev, 0), "cuEventCreate");
    return XCS_OK;
}

xcs_status xcs_cu_event_record(xcs_cu_runtime *rt, void *ev) {
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (st) return st;
    CU_CALL(rt, rt->event_record(ev, rt->streams[me].s), "cuEventRecord");
    return XCS_OK;
}

xcs_status xcs_cu_event_ms(xcs_cu_runtime *rt, void *start, void *stop, float *ms) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    CU_CALL(rt, rt->event_sync(stop), "cuEventSynchronize");
    CU_CALL(rt, rt->event_elapsed(ms, start, stop), "cuEventElapsedTime");
    return XCS_OK;
}

void xcs_cu_event_free(xcs_cu_runtime *rt, void *ev) {
    if (ev && rt->ctx_set(rt->ctx) == 0) rt->event_destroy(ev);
}

/* Stream cs's staging halves hold at least min(want, STAGE_MAX) bytes each
 * (cs->lock held): grown once the copies through the old ones are done. */
static xcs_status stage_reserve(xcs_cu_runtime *rt, cu_stream *cs, size_t want) {
    size_t half = XCS_CU_STAGE_MIN;
    while (half < want && half < XCS_CU_STAGE_MAX) half *= 2;
    if (cs->stage && cs->half >= half) return XCS_OK;
    if (cs->stage) {
        for (int h = 0; h < 2; h++) CU_CALL(rt, rt->event_sync(cs->stage_ev[h]), "cuEventSynchronize (staging)");
        rt->host_free(cs->stage);
        cs->stage = NULL;
        cs->half = 0;
    }
    void *p = NULL;
    CU_CALL(rt, rt->host_alloc(&p, 2 * half, 0), "cuMemHostAlloc (staging)");
    cs->stage = p;
    cs->half = half;
    return XCS_OK;
}

/* A host copy of nbytes to (write) or from the device block holding addr
 * begins: the calling thread's stream *me ordered for it, its lock taken
 * (*locked) and its staging halves ready. */
static xcs_status copy_begin(xcs_cu_runtime *rt, xcs_cu_ptr addr, bool write, size_t nbytes, int *me, bool *locked) {
    *locked = false;
    xcs_status st = my_stream(rt, me);
    if (st || nbytes == 0) return st;
    const xcs_cu_use use = {addr, write, false};
    if ((st = order_uses(rt, *me, 1, &use))) return st;
    pthread_mutex_lock(&rt->streams[*me].lock);
    *locked = true;
    return stage_reserve(rt, &rt->streams[*me], nbytes);
}

xcs_status xcs_cu_to_device(xcs_cu_runtime *rt, xcs_cu_ptr dst, const void *src, size_t nbytes) {
    int me = 0;
    bool locked;
    xcs_status st = copy_begin(rt, dst, true, nbytes, &me, &locked);
    if (!locked) return st;
    pthread_mutex_lock(&rt->alloc_lock);
    rt->mem.uploads++;
    pthread_mutex_unlock(&rt->alloc_lock);
    cu_stream *cs = &rt->streams[me];
    /* a scalar (a few 4-byte words, aligned): its words ride in memset
     * commands, queued without the host waiting.  Through the staging it
     * would wait for the last copy out of its half, i.e. for every kernel
     * queued before that: an eager op with a Python number each, the host
     * kept within two ops of the device. */
    const bool words = nbytes <= XCS_CU_SCALAR_BYTES && nbytes % 4 == 0 && dst % 4 == 0;
    for (size_t off = 0; words && !st && off < nbytes; off += 4) {
        unsigned w;
        memcpy(&w, (const char *)src + off, 4);
        cu_res r = rt->memset32_async(dst + off, w, 1, cs->s);
        if (r != 0) st = cu_fail(rt, r, "a host-to-device copy of a scalar (cuMemsetD32Async)");
    }
    /* else each chunk: wait until the copy out of its half is done, fill
     * it, queue its copy; the call returns with the last ones in flight */
    for (size_t off = 0, c = 0; !words && !st && off < nbytes; off += cs->half, c++) {
        size_t len = nbytes - off < cs->half ? nbytes - off : cs->half;
        char *half = cs->stage + (c & 1) * cs->half;
        cu_res r = rt->event_sync(cs->stage_ev[c & 1]);
        if (r == 0) {
            memcpy(half, (const char *)src + off, len);
            r = rt->h2d_async(dst + off, half, len, cs->s);
        }
        if (r == 0) r = rt->event_record(cs->stage_ev[c & 1], cs->s);
        if (r != 0) st = cu_fail(rt, r, "a host-to-device copy (cuMemcpyHtoDAsync)");
    }
    pthread_mutex_unlock(&cs->lock);
    if (!st && rt->sync_each) st = stream_wait_done(rt, me, "a host-to-device copy (cuStreamSynchronize)");
    return st;
}

xcs_status xcs_cu_to_host(xcs_cu_runtime *rt, void *dst, xcs_cu_ptr src, size_t nbytes) {
    int me = 0;
    bool locked;
    xcs_status st = copy_begin(rt, src, false, nbytes, &me, &locked);
    if (!locked) return st;
    pthread_mutex_lock(&rt->alloc_lock);
    rt->mem.downloads++;
    pthread_mutex_unlock(&rt->alloc_lock);
    cu_stream *cs = &rt->streams[me];
    /* two chunks in flight: copy one out of its half while the next lands */
    size_t half = cs->half, n_chunks = st ? 0 : (nbytes + half - 1) / half, queued = 0;
    for (size_t done = 0; !st && done < n_chunks; done++) {
        for (; queued < n_chunks && queued < done + 2; queued++) {
            size_t off = queued * half, len = nbytes - off < half ? nbytes - off : half;
            cu_res r = rt->d2h_async(cs->stage + (queued & 1) * half, src + off, len, cs->s);
            if (r == 0) r = rt->event_record(cs->stage_ev[queued & 1], cs->s);
            if (r != 0) {
                st = cu_fail(rt, r, "a device-to-host copy (cuMemcpyDtoHAsync)");
                break;
            }
        }
        cu_res r = st ? 0 : rt->event_sync(cs->stage_ev[done & 1]);
        if (r != 0) {
            st = xcs_error_context(cu_fail(rt, r, "a device-to-host copy or a kernel before it"),
                                   "the last kernel launched on this thread's stream was %s",
                                   cs->last_kernel[0] ? cs->last_kernel : "none");
        } else if (!st) {
            size_t off = done * half, len = nbytes - off < half ? nbytes - off : half;
            memcpy((char *)dst + off, cs->stage + (done & 1) * half, len);
        }
    }
    pthread_mutex_unlock(&cs->lock);
    return st;
}

/* The on-disk kernel cache: $XCS_CACHE_DIR/cuda, else ~/.cache/xcs/cuda;
 * XCS_CUDA_DISK_CACHE=0 turns it off.  Files are keyed by source hash,
 * compute capability and NVRTC version, and written by rename, so
 * concurrent processes never read a half-written image. */
static void mkdir_p(char *path) {
    for (char *q = path + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(path, 0755);
            *q = '/';
        }
    mkdir(path, 0755);
}

static void cache_dir_init(xcs_cu_runtime *rt) {
    if (xcs_env_off("XCS_CUDA_DISK_CACHE")) return;
    const char *dir = getenv("XCS_CACHE_DIR"), *home = getenv("HOME");
    if (dir && *dir) snprintf(rt->cache_dir, sizeof rt->cache_dir, "%s/cuda", dir);
    else if (home && *home) snprintf(rt->cache_dir, sizeof rt->cache_dir, "%s/.cache/xcs/cuda", home);
    else return;
    mkdir_p(rt->cache_dir);
    if (access(rt->cache_dir, W_OK) != 0) rt->cache_dir[0] = 0;
}

static void cache_path(const xcs_cu_runtime *rt, uint64_t hash, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%016llx-sm%d-nvrtc%d.bin", rt->cache_dir, (unsigned long long)hash, rt->cc,
             xcs_nvrtc_version(rt->nvrtc));
}

static char *cache_read(const xcs_cu_runtime *rt, uint64_t hash) {
    if (!rt->cache_dir[0]) return NULL;
    char path[700];
    cache_path(rt, hash, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *img = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && fseek(f, 0, SEEK_SET) == 0 && (img = malloc((size_t)n + 1))) {
        if (fread(img, 1, (size_t)n, f) != (size_t)n) {
            free(img);
            img = NULL;
        } else {
            img[n] = 0;
        }
    }
    fclose(f);
    return img;
}

static void cache_write(const xcs_cu_runtime *rt, uint64_t hash, const char *img, size_t size) {
    if (!rt->cache_dir[0]) return;
    char path[700], tmp[720];
    cache_path(rt, hash, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    bool ok = fwrite(img, 1, size, f) == size;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

/* The module cache's index: open addressing over 2 * cap_kernels slots
 * holding kernel numbers (-1 empty), so a launch finds its kernel in O(1)
 * however many the process has compiled (lock held). */
static int find_kernel(const xcs_cu_runtime *rt, uint64_t key) {
    if (!rt->slots) return -1;
    unsigned mask = (unsigned)rt->cap_kernels * 2 - 1;
    for (unsigned i = (unsigned)key & mask;; i = (i + 1) & mask) {
        int k = rt->slots[i];
        if (k < 0) return -1;
        if (rt->kernels[k].key == key) return k;
    }
}

static void place_kernel(xcs_cu_runtime *rt, int k) {
    unsigned mask = (unsigned)rt->cap_kernels * 2 - 1;
    unsigned i = (unsigned)rt->kernels[k].key & mask;
    while (rt->slots[i] >= 0) i = (i + 1) & mask;
    rt->slots[i] = k;
}

/* The kernel of `src` (cache key `key`) compiled (or read from disk) and
 * loaded into the module cache (lock held by the caller). */
static xcs_status kernel_load(xcs_cu_runtime *rt, uint64_t key, const char *src, cu_fn *fn) {
    char name[40];
    snprintf(name, sizeof name, "xcs_%016llx.cu", (unsigned long long)key);
    uint64_t src_hash = xcs_cuda_source_hash(src);
    char *img = cache_read(rt, src_hash);
    if (!img) {
        size_t size = 0;
        bool cubin = false;
        xcs_status st = xcs_nvrtc_compile(rt->nvrtc, src, name, rt->cc, true, &img, &size, &cubin);
        if (st) return st;
        cache_write(rt, src_hash, img, size);
    }
    cu_mod mod = NULL;
    cu_res r = rt->mod_load(&mod, img);
    free(img);
    if (r != 0) return xcs_error_context(cu_fail(rt, r, "cuModuleLoadData"), "kernel %s", name);
    if ((r = rt->mod_fn(fn, mod, XCS_CUDA_KERNEL_NAME)) != 0) {
        rt->mod_unload(mod);
        return xcs_error_context(cu_fail(rt, r, "cuModuleGetFunction"), "kernel %s", name);
    }
    if (rt->n_kernels == rt->cap_kernels) {
        int cap = rt->cap_kernels ? 2 * rt->cap_kernels : 32;
        cu_kernel *k = realloc(rt->kernels, (size_t)cap * sizeof *k);
        int *slot = k ? malloc((size_t)cap * 2 * sizeof *slot) : NULL;
        if (!slot) {
            if (k) rt->kernels = k;
            rt->mod_unload(mod);
            return xcs_error(XCS_ERR_MEMORY, "out of memory caching a CUDA kernel");
        }
        rt->kernels = k;
        rt->cap_kernels = cap;
        free(rt->slots);
        rt->slots = slot;
        for (int i = 0; i < cap * 2; i++) slot[i] = -1;
        for (int i = 0; i < rt->n_kernels; i++) place_kernel(rt, i);
    }
    rt->kernels[rt->n_kernels] = (cu_kernel){key, mod, *fn};
    place_kernel(rt, rt->n_kernels++);
    return XCS_OK;
}

/* The kernel for key: from the cache, else gen(ctx) generated (outside the
 * lock), compiled and loaded once. */
static xcs_status kernel_cached(xcs_cu_runtime *rt, uint64_t key, char *(*gen)(const void *), const void *ctx,
                                cu_fn *fn) {
    pthread_mutex_lock(&rt->lock);
    int hit = find_kernel(rt, key);
    if (hit >= 0) *fn = rt->kernels[hit].fn;
    pthread_mutex_unlock(&rt->lock);
    if (hit >= 0) return XCS_OK;
    char *src = gen(ctx);
    if (!src) return xcs_last_status();
    pthread_mutex_lock(&rt->lock);
    xcs_status st = XCS_OK;
    if ((hit = find_kernel(rt, key)) >= 0) *fn = rt->kernels[hit].fn;
    else st = kernel_load(rt, key, src, fn);
    pthread_mutex_unlock(&rt->lock);
    free(src);
    return st;
}

static char *gen_fused(const void *spec) { return xcs_cuda_codegen_alloc(spec); }

/* The kernel for spec: from the cache, else generated, compiled and loaded. */
static xcs_status kernel_for(xcs_cu_runtime *rt, const xcs_cuda_spec *spec, cu_fn *fn, uint64_t *key_out) {
    *key_out = xcs_cuda_spec_hash(spec) ^ ((uint64_t)rt->cc << 56);
    return kernel_cached(rt, *key_out, gen_fused, spec, fn);
}


/* True when strides are C-contiguous over shape (size-1 dims ignored). */
static bool c_contiguous(int nd, const int64_t *shape, const int64_t *strides) {
    int64_t want = 1;
    for (int d = nd - 1; d >= 0; d--) {
        if (shape[d] == 1) continue;
        if (strides[d] != want) return false;
        want *= shape[d];
    }
    return true;
}

/* An operand the vec4 variant can stream: float32/int32 or float16/bfloat16
 * (the codegen's vector types), its base aligned to four elements. */
static bool vec_operand(xcs_dtype dt, xcs_cu_ptr base) {
    size_t size = xcs_dtype_size(dt);
    bool typed = dt == XCS_F32 || dt == XCS_I32 || xcs_dtype_is_half(dt);
    return typed && base % (4 * size) == 0;
}

static bool all_zero(int nd, const int64_t *strides) {
    for (int d = 0; d < nd; d++)
        if (strides[d] != 0) return false;
    return true;
}

/* Launches fn (key: its cache key, named in errors) on stream me over
 * `blocks` blocks of XCS_CUDA_BLOCK threads with its one argument block
 * (whose fault word is the stream's).  Asynchronous, unless `checked` (the
 * kernel may set the fault word: it is cleared first, the launch waited
 * for, and the word read back) or XCS_CUDA_SYNC=1. */
static xcs_status launch(xcs_cu_runtime *rt, int me, cu_fn fn, long long blocks, void *args, bool checked,
                         uint64_t key, const char *what, const xcs_fused_program *const *progs, int n_progs) {
    cu_stream *cs = &rt->streams[me];
    void *params[] = {args};
    if (checked) pthread_mutex_lock(&cs->lock); /* the fault word is the stream's */
    cu_res r = checked ? rt->memset32_async(cs->err_word, 0, 1, cs->s) : 0;
    if (r == 0) r = rt->launch(fn, (unsigned)blocks, 1, 1, XCS_CUDA_BLOCK, 1, 1, 0, cs->s, params, NULL);
    snprintf(cs->last_kernel, sizeof cs->last_kernel, "xcs_%016llx%s", (unsigned long long)key, what);
    if (r == 0 && checked) r = rt->d2h_async(cs->err_host, cs->err_word, sizeof *cs->err_host, cs->s);
    xcs_status st = r != 0 ? xcs_error_context(cu_fail(rt, r, "cuLaunchKernel"), "kernel %s", cs->last_kernel) : XCS_OK;
    if (!st && (checked || rt->sync_each)) st = stream_wait_done(rt, me, "kernel execution (cuStreamSynchronize)");
    unsigned err = !st && checked ? *cs->err_host : 0;
    char cs_name[sizeof cs->last_kernel];
    snprintf(cs_name, sizeof cs_name, "%s", cs->last_kernel);
    if (checked) pthread_mutex_unlock(&cs->lock);
    return err ? xcs_cu_fault_status(err, progs, n_progs, cs_name) : st;
}

xcs_status xcs_cu_fault_status(unsigned err, const xcs_fused_program *const *progs, int n_progs, const char *kernel) {
    const unsigned op_faults = XCS_FUSED_FAULT_ZERO_DIV | XCS_FUSED_FAULT_NEG_POW;
    unsigned known = n_progs > 1 ? 0 : op_faults;
    for (int g = 0; g < n_progs; g++) { /* naming the op, of the program that set the bits */
        const int at = XCS_ROW_FAULT_SHIFT(g, n_progs);
        const unsigned bits = (err >> at) & op_faults;
        known |= op_faults << at;
        if (bits && progs[g]) return xcs_fused_fault(progs[g], bits, ", CUDA kernel");
    }
    if (err & XCS_FUSED_FAULT_ZERO_DIV) return xcs_error(XCS_ERR_ZERO_DIV, "integer division by zero in a CUDA kernel");
    if (err & XCS_FUSED_FAULT_NEG_POW)
        return xcs_error(XCS_ERR_VALUE, "Integers to negative integer powers are not allowed (CUDA kernel)");
    if (err & XCS_CUDA_ERR_INDEX) return xcs_error(XCS_ERR_INDEX, "an index is out of bounds (CUDA kernel %s)", kernel);
    if (err & XCS_CUDA_ERR_SINGULAR) return xcs_error(XCS_ERR_LINALG, "Singular matrix (CUDA kernel %s)", kernel);
    if (err & XCS_CUDA_ERR_NOT_PD)
        return xcs_error(XCS_ERR_LINALG, "Matrix is not positive definite (CUDA kernel %s)", kernel);
    known |= XCS_CUDA_ERR_INDEX | XCS_CUDA_ERR_SINGULAR | XCS_CUDA_ERR_NOT_PD;
    return err & ~known ? xcs_error(XCS_ERR_INTERNAL, "CUDA kernel %s reported fault bits 0x%x", kernel, err) : XCS_OK;
}

bool xcs_cu_fused_launch(const xcs_fused_program *p, const xcs_cu_operand *in, const xcs_cu_operand *out, int sm_count,
                         xcs_cuda_spec *spec_out, xcs_cuda_args *args_out, long long *blocks_out) {
    xcs_cuda_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.p = p;
    bool reduce = p->n_instr > 0 && p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE;
    xcs_cuda_args args;
    memset(&args, 0, sizeof args);
    int64_t numel = 1, kept = 1, folded = 1;
    for (int d = 0; d < p->ndim; d++) {
        numel *= p->shape[d];
        if (reduce && (p->reduce_axes >> d & 1u)) folded *= p->shape[d];
        else kept *= p->shape[d];
        args.shape[d] = p->shape[d];
    }
    if (numel == 0 && !(reduce && kept > 0)) return false;
    bool flat = !reduce;
    for (int k = 0; k < p->n_inputs; k++) {
        spec.in_dtype[k] = in[k].dtype;
        args.in[k] = (const void *)(uintptr_t)in[k].base;
        memcpy(args.in_stride[k], in[k].strides, sizeof args.in_stride[k]);
        if (all_zero(p->ndim, in[k].strides)) spec.scalar_inputs |= 1u << k;
        else flat = flat && c_contiguous(p->ndim, p->shape, in[k].strides);
    }
    for (int k = 0; k < p->n_outputs; k++) {
        spec.out_dtype[k] = out[k].dtype;
        args.out[k] = (void *)(uintptr_t)out[k].base;
        memcpy(args.out_stride[k], out[k].strides, sizeof args.out_stride[k]);
        flat = flat && c_contiguous(p->ndim, p->shape, out[k].strides);
    }
    spec.flat = flat;
    if (!flat) spec.scalar_inputs = 0;
    /* four elements a load when every streamed operand is 4 bytes wide (a
     * 16-byte vector) or 2 (float16/bfloat16: 8 bytes) and its base aligned
     * to four elements */
    bool vec = flat && numel % 4 == 0;
    for (int k = 0; vec && k < p->n_inputs; k++)
        if (!(spec.scalar_inputs >> k & 1u)) vec = vec_operand(in[k].dtype, in[k].base);
    for (int k = 0; vec && k < p->n_outputs; k++) vec = vec_operand(out[k].dtype, out[k].base);
    spec.vec4 = vec;
    args.n = reduce ? kept : numel;
    args.rn = reduce ? folded : 0;
    long long per_thread = vec ? 4 : 1;
    long long blocks = reduce ? kept : (numel / per_thread + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
    long long cap = reduce ? (1LL << 20) : (long long)(sm_count > 0 ? sm_count : 80) * 32;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    *spec_out = spec;
    *args_out = args;
    *blocks_out = blocks;
    return true;
}

xcs_status xcs_cu_run_fused(xcs_cu_runtime *rt, const xcs_fused_program *p, const xcs_cu_operand *in,
                            const xcs_cu_operand *out) {
    xcs_cuda_spec spec;
    xcs_cuda_args args;
    long long blocks = 0;
    if (!xcs_cu_fused_launch(p, in, out, rt->sm_count, &spec, &args, &blocks)) return XCS_OK;
    int me = 0;
    xcs_status st = my_stream(rt, &me);
    if (st) return st;
    args.err = (unsigned int *)(uintptr_t)rt->streams[me].err_word;
    cu_fn fn = NULL;
    uint64_t key = 0;
    if ((st = kernel_for(rt, &spec, &fn, &key))) return st;
    /* a program that can fault reports it through the fault word: waited for, the word read back */
    return launch(rt, me, fn, blocks, &args, xcs_fused_can_fault(p), key, "", &p, 1);
}

/* launch() of a kernel whose grid-stride loop covers `want` blocks' work
 * (rows, elements / XCS_CUDA_BLOCK), on at most as many blocks as the
 * device holds at once; counted in the allocator's stats (xcs_cu_note). */
static xcs_status launch_counted(xcs_cu_runtime *rt, int me, cu_fn fn, long long want, void *args, bool checked,
                                 uint64_t key, const char *what, xcs_cu_note_kind counted,
                                 const xcs_fused_program *const *progs, int n_progs) {
    long long cap = (long long)(rt->sm_count > 0 ? rt->sm_count : 80) * 32;
    long long blocks = want < cap ? want : cap;
    if (blocks < 1) return XCS_OK;
    xcs_cu_note(rt, counted, 1);
    return launch(rt, me, fn, blocks, args, checked, key, what, progs, n_progs);
}

static char *gen_rows(const void *rs) { return xcs_cuda_row_codegen_alloc(rs); }

xcs_status xcs_cu_run_rows(xcs_cu_runtime *rt, const xcs_cuda_row_spec *rs, const xcs_cuda_row_args *args_in,
                           bool checked) {
    uint64_t key = xcs_cuda_row_spec_hash(rs) ^ ((uint64_t)rt->cc << 56) ^ 0x5a5a5a5a5a5a5a5aull;
    cu_fn fn = NULL;
    xcs_status st = kernel_cached(rt, key, gen_rows, rs, &fn);
    if (st) return st;
    int me = 0;
    if ((st = my_stream(rt, &me))) return st;
    xcs_cuda_row_args args = *args_in;
    args.err = (unsigned int *)(uintptr_t)rt->streams[me].err_word;
    return launch_counted(rt, me, fn, args.R, &args, checked, key, " (row chain)", XCS_CU_NOTE_ROW_CHAIN,
                          rs->prog, rs->n);
}

static char *gen_scan(const void *ss) { return xcs_cuda_scan_codegen_alloc(ss); }

xcs_status xcs_cu_run_scan(xcs_cu_runtime *rt, const xcs_cuda_scan_spec *ss, const xcs_cuda_scan_args *args_in) {
    uint64_t key = xcs_cuda_scan_spec_hash(ss) ^ ((uint64_t)rt->cc << 56);
    cu_fn fn = NULL;
    xcs_status st = kernel_cached(rt, key, gen_scan, ss, &fn);
    if (st) return st;
    int me = 0;
    if ((st = my_stream(rt, &me))) return st;
    xcs_cuda_scan_args args = *args_in;
    args.err = (unsigned int *)(uintptr_t)rt->streams[me].err_word;
    /* a thread per element: its steps are a chain */
    return launch_counted(rt, me, fn, (args.n + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK, &args, xcs_fused_can_fault(ss->base.p),
                          key, " (scan loop)", XCS_CU_NOTE_SCAN_LOOP, &ss->base.p, 1);
}


static char *gen_index(const void *is) { return xcs_cuda_index_codegen_alloc(is); }
static char *gen_argred(const void *as) { return xcs_cuda_argred_codegen_alloc(as); }

/* Launches a small kernel (key: its cache key; gen(spec): its source) over
 * `want` blocks' work, at most as many blocks as the device holds at once;
 * *err (NULL: none) gets the stream's fault word, and the launch is waited
 * for (checked) when there is one. */
static xcs_status launch_small(xcs_cu_runtime *rt, uint64_t key, char *(*gen)(const void *), const void *spec,
                               void *args, unsigned int **err, long long want, const char *what) {
    key ^= (uint64_t)rt->cc << 56;
    cu_fn fn = NULL;
    xcs_status st = kernel_cached(rt, key, gen, spec, &fn);
    if (st) return st;
    int me = 0;
    if ((st = my_stream(rt, &me))) return st;
    if (err) *err = (unsigned int *)(uintptr_t)rt->streams[me].err_word;
    long long cap = (long long)(rt->sm_count > 0 ? rt->sm_count : 80) * 32;
    long long blocks = want < cap ? want : cap;
    if (blocks < 1) return XCS_OK;
    return launch(rt, me, fn, blocks, args, err != NULL, key, what, NULL, 0);
}

/* What an index kernel is called in errors. */
static const char *index_what(xcs_cuda_index_kind kind) {
    switch (kind) {
    case XCS_CUDA_SCATTER_SORT: return " (scatter_add: tile sort)";
    case XCS_CUDA_SCATTER_MERGE: return " (scatter_add: merge)";
    case XCS_CUDA_SCATTER_BOUNDS: return " (scatter_add: segments)";
    case XCS_CUDA_SCATTER_ADD: return " (scatter_add)";
    default: return " (take)";
    }
}

xcs_status xcs_cu_run_index(xcs_cu_runtime *rt, const xcs_cuda_index_spec *is, const xcs_cuda_index_args *args_in,
                            bool checked) {
    xcs_cuda_index_args args = *args_in;
    /* checked: waited for, so an index out of range is reported at its op */
    if (!checked) { /* the fault word is still the stream's (never set: the indices are in range) */
        int me = 0;
        xcs_status st = my_stream(rt, &me);
        if (st) return st;
        args.err = (unsigned int *)(uintptr_t)rt->streams[me].err_word;
    }
    return launch_small(rt, xcs_cuda_index_spec_hash(is), gen_index, is, &args, checked ? &args.err : NULL,
                        xcs_cuda_index_blocks(is->kind, &args), index_what(is->kind));
}

static char *gen_sort(const void *ss) { return xcs_cuda_sort_codegen_alloc(ss); }

xcs_status xcs_cu_run_sort(xcs_cu_runtime *rt, const xcs_cuda_sort_step *step, xcs_dtype dtype) {
    xcs_cuda_sort_args args = step->args;
    xcs_cuda_sort_spec ss = {step->kind, dtype};
    return launch_small(rt, xcs_cuda_sort_spec_hash(&ss), gen_sort, &ss, &args, NULL, xcs_cuda_sort_blocks(step),
                        step->kind == XCS_CUDA_SORT_TILE ? " (argsort: tile sort)" : " (argsort: merge)");
}

static char *gen_linalg(const void *ls) { return xcs_cuda_linalg_codegen_alloc(ls); }

xcs_status xcs_cu_run_linalg(xcs_cu_runtime *rt, const xcs_cuda_linalg_spec *ls, const xcs_cuda_linalg_args *args_in) {
    xcs_cuda_linalg_args args = *args_in;
    /* solve and cholesky can fail (slogdet of a singular matrix is (0, -inf)),
     * which their whole kernel or the one after cuSOLVER reports */
    const bool checked = (ls->op == XCS_OP_SOLVE || ls->op == XCS_OP_CHOLESKY) && ls->stage != XCS_CUDA_LA_BEFORE;
    char what[48];
    snprintf(what, sizeof what, " (%s%s)", xcs_op_name(ls->op),
             ls->stage == XCS_CUDA_LA_BEFORE ? ", before cuSOLVER" : ls->stage == XCS_CUDA_LA_AFTER ? ", after cuSOLVER" : "");
    return launch_small(rt, xcs_cuda_linalg_spec_hash(ls), gen_linalg, ls, &args, checked ? &args.err : NULL,
                        xcs_cuda_linalg_blocks(ls, &args), what);
}

static char *gen_random(const void *rs) { return xcs_cuda_random_codegen_alloc(rs); }

xcs_status xcs_cu_run_random(xcs_cu_runtime *rt, const xcs_cuda_random_spec *rs, const xcs_cuda_random_args *args_in) {
    xcs_cuda_random_args args = *args_in;
    int per = rs->dtype == XCS_F32 ? 4 : 2;
    long long blocks_of_work = ((args.n + per - 1) / per + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
    return launch_small(rt, xcs_cuda_random_spec_hash(rs), gen_random, rs, &args, NULL, blocks_of_work,
                        rs->op == XCS_OP_RANDOM_UNIFORM ? " (uniform)" : " (normal)");
}

xcs_status xcs_cu_run_argred(xcs_cu_runtime *rt, const xcs_cuda_argred_spec *as, const xcs_cuda_argred_args *args_in) {
    xcs_cuda_argred_args args = *args_in;
    return launch_small(rt, xcs_cuda_argred_spec_hash(as), gen_argred, as, &args, NULL, args.n_out,
                        as->op == XCS_OP_ARGMAX ? " (argmax)" : " (argmin)");
}
