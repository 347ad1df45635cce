/* runtime.c — see runtime.h.  The driver API is declared here with its
 * documented C signatures (CUresult int, CUdevice int, CUdeviceptr 64-bit,
 * contexts/modules/functions/streams opaque pointers), so no CUDA header is
 * needed to build it. */
#include "runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvrtc.h"

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

/* A device block: live (handed out) or cached (free for reuse). */
typedef struct cu_block {
    cu_dptr ptr;
    size_t size; /* its size class */
} cu_block;

struct xcs_cu_runtime {
    void *lib;
    xcs_nvrtc *nvrtc;
    int device, cc, sm_count;
    cu_ctx ctx;
    cu_dptr err_word;
    char desc[256];
    pthread_mutex_t lock; /* the module cache */
    cu_kernel *kernels;
    int n_kernels, cap_kernels;
    int *slots; /* the cache's index (find_kernel) */
    bool sync_each;       /* XCS_CUDA_SYNC=1: wait for every launch (debugging) */
    char last_kernel[64]; /* the last kernel launched (named in asynchronous errors) */
    /* the caching allocator (alloc_lock): live and cached blocks by size class */
    pthread_mutex_t alloc_lock;
    cu_block *live, *cached;
    int n_live, cap_live, n_cached, cap_cached;
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
    cu_res (*h2d)(cu_dptr, const void *, size_t);
    cu_res (*d2h)(void *, cu_dptr, size_t);
    cu_res (*d2d)(cu_dptr, cu_dptr, size_t);
    cu_res (*mem_info)(size_t *, size_t *);
    cu_res (*event_create)(void **, unsigned);
    cu_res (*event_record)(void *, void *);
    cu_res (*event_sync)(void *);
    cu_res (*event_elapsed)(float *, void *, void *);
    cu_res (*event_destroy)(void *);
    cu_res (*memset32)(cu_dptr, unsigned, size_t);
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

void xcs_cu_close(xcs_cu_runtime *rt) {
    if (!rt) return;
    if (rt->ctx) {
        rt->ctx_set(rt->ctx);
        for (int i = 0; i < rt->n_kernels; i++) rt->mod_unload(rt->kernels[i].mod);
        for (int i = 0; i < rt->n_cached; i++) rt->mem_free(rt->cached[i].ptr);
        for (int i = 0; i < rt->n_live; i++) rt->mem_free(rt->live[i].ptr);
        if (rt->err_word) rt->mem_free(rt->err_word);
        rt->ctx_release(rt->device);
    }
    free(rt->kernels);
    free(rt->slots);
    free(rt->live);
    free(rt->cached);
    xcs_nvrtc_close(rt->nvrtc);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->alloc_lock);
    free(rt);
}

xcs_status xcs_cu_open(int ordinal, xcs_cu_runtime **out) {
    *out = NULL;
    xcs_cu_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return xcs_error(XCS_ERR_MEMORY, "out of memory opening a CUDA device");
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->alloc_lock, NULL);
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
    SYM(h2d, "cuMemcpyHtoD_v2");
    SYM(d2h, "cuMemcpyDtoH_v2");
    SYM(memset32, "cuMemsetD32_v2");
    SYM(d2d, "cuMemcpyDtoD_v2");
    SYM(mem_info, "cuMemGetInfo_v2");
    SYM(event_create, "cuEventCreate");
    SYM(event_record, "cuEventRecord");
    SYM(event_sync, "cuEventSynchronize");
    SYM(event_elapsed, "cuEventElapsedTime");
    SYM(event_destroy, "cuEventDestroy_v2");
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
    } else if ((r = rt->mem_alloc(&rt->err_word, 4)) != 0) {
        st = cu_fail(rt, r, "cuMemAlloc (error word)");
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
    *out = rt;
    return XCS_OK;
}

const char *xcs_cu_describe(const xcs_cu_runtime *rt) { return rt->desc; }

xcs_status xcs_cu_make_current(xcs_cu_runtime *rt) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    return XCS_OK;
}
int xcs_cu_cc(const xcs_cu_runtime *rt) { return rt->cc; }
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

xcs_status xcs_cu_alloc(xcs_cu_runtime *rt, size_t nbytes, xcs_cu_ptr *out) {
    size_t size = size_class(nbytes);
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    pthread_mutex_lock(&rt->alloc_lock);
    cu_dptr p = 0;
    for (int i = rt->n_cached - 1; i >= 0; i--) /* most recently freed first: still in L2 */
        if (rt->cached[i].size == size) {
            p = rt->cached[i].ptr;
            rt->cached[i] = rt->cached[--rt->n_cached];
            rt->mem.cached_bytes -= size;
            rt->mem.reused++;
            break;
        }
    xcs_status st = XCS_OK;
    if (!p) {
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
    if (p && !push_block(&rt->live, &rt->n_live, &rt->cap_live, (cu_block){p, size})) {
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
    if (!st) *out = p;
    return st;
}

/* Blocks go back to the cache, not to the driver: the one stream orders any
 * kernel still reading a block before the kernels of its next owner. */
void xcs_cu_free(xcs_cu_runtime *rt, xcs_cu_ptr p) {
    if (!p) return;
    pthread_mutex_lock(&rt->alloc_lock);
    for (int i = rt->n_live - 1; i >= 0; i--)
        if (rt->live[i].ptr == p) {
            cu_block b = rt->live[i];
            rt->live[i] = rt->live[--rt->n_live];
            rt->mem.current_bytes -= (int64_t)b.size;
            if (push_block(&rt->cached, &rt->n_cached, &rt->cap_cached, b)) rt->mem.cached_bytes += (int64_t)b.size;
            else if (rt->ctx_set(rt->ctx) == 0) rt->mem_free(b.ptr);
            break;
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

void xcs_cu_note_gemm_epilogue(xcs_cu_runtime *rt) {
    pthread_mutex_lock(&rt->alloc_lock);
    rt->mem.gemm_epilogues++;
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
    if (r != 0)
        return xcs_error_context(cu_fail(rt, r, "a kernel (cuCtxSynchronize)"), "the last kernel launched was %s",
                                 rt->last_kernel[0] ? rt->last_kernel : "none");
    return XCS_OK;
}

xcs_status xcs_cu_zero(xcs_cu_runtime *rt, xcs_cu_ptr dst, size_t nbytes) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    if (nbytes % 4) return xcs_error(XCS_ERR_INTERNAL, "xcs_cu_zero of %zu bytes (not whole words)", nbytes);
    if (nbytes) CU_CALL(rt, rt->memset32(dst, 0, nbytes / 4), "cuMemsetD32");
    return XCS_OK;
}

xcs_status xcs_cu_copy(xcs_cu_runtime *rt, xcs_cu_ptr dst, xcs_cu_ptr src, size_t nbytes) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    if (nbytes) CU_CALL(rt, rt->d2d(dst, src, nbytes), "cuMemcpyDtoD");
    return XCS_OK;
}

xcs_status xcs_cu_event_new(xcs_cu_runtime *rt, void **ev) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    CU_CALL(rt, rt->event_create(ev, 0), "cuEventCreate");
    return XCS_OK;
}

xcs_status xcs_cu_event_record(xcs_cu_runtime *rt, void *ev) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    CU_CALL(rt, rt->event_record(ev, NULL), "cuEventRecord");
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

xcs_status xcs_cu_to_device(xcs_cu_runtime *rt, xcs_cu_ptr dst, const void *src, size_t nbytes) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    if (nbytes) CU_CALL(rt, rt->h2d(dst, src, nbytes), "cuMemcpyHtoD");
    return XCS_OK;
}

xcs_status xcs_cu_to_host(xcs_cu_runtime *rt, void *dst, xcs_cu_ptr src, size_t nbytes) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    if (nbytes) CU_CALL(rt, rt->d2h(dst, src, nbytes), "cuMemcpyDtoH");
    return XCS_OK;
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
    const char *off = getenv("XCS_CUDA_DISK_CACHE");
    if (off && strcmp(off, "0") == 0) return;
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

/* True when the program has an integer division, modulo or power, whose
 * kernels report faults through the error word (then the launch is waited
 * for and the word read back). */
static bool can_raise(const xcs_fused_program *p) {
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        if (in->kind == XCS_FUSED_OP && xcs_dtype_is_int(in->dtype) &&
            (in->op == XCS_OP_FLOOR_DIV || in->op == XCS_OP_MOD || in->op == XCS_OP_POW))
            return true;
    }
    return false;
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

/* Launches fn (key: its cache key, named in errors) over `blocks` blocks of
 * XCS_CUDA_BLOCK threads with its one argument block.  Asynchronous, unless
 * `checked` (the kernel may set the error word: it is cleared first, the
 * launch waited for, and the word read back) or XCS_CUDA_SYNC=1. */
static xcs_status launch(xcs_cu_runtime *rt, cu_fn fn, long long blocks, void *args, bool checked, uint64_t key,
                         const char *what) {
    CU_CALL(rt, rt->ctx_set(rt->ctx), "cuCtxSetCurrent");
    if (checked) CU_CALL(rt, rt->memset32(rt->err_word, 0, 1), "cuMemsetD32");
    void *params[] = {args};
    CU_CALL(rt, rt->launch(fn, (unsigned)blocks, 1, 1, XCS_CUDA_BLOCK, 1, 1, 0, NULL, params, NULL), "cuLaunchKernel");
    snprintf(rt->last_kernel, sizeof rt->last_kernel, "xcs_%016llx%s", (unsigned long long)key, what);
    if (!checked && !rt->sync_each) return XCS_OK; /* asynchronous: the stream orders what reads its outputs */
    cu_res r = rt->ctx_sync();
    if (r != 0)
        return xcs_error_context(cu_fail(rt, r, "kernel execution (cuCtxSynchronize)"), "kernel %s", rt->last_kernel);
    if (!checked) return XCS_OK;
    unsigned err = 0;
    CU_CALL(rt, rt->d2h(&err, rt->err_word, sizeof err), "cuMemcpyDtoH (error word)");
    if (err & 1u) return xcs_error(XCS_ERR_ZERO_DIV, "integer division by zero in a fused CUDA kernel");
    if (err & 2u) return xcs_error(XCS_ERR_VALUE, "Integers to negative integer powers are not allowed (CUDA kernel)");
    return XCS_OK;
}

xcs_status xcs_cu_run_fused(xcs_cu_runtime *rt, const xcs_fused_program *p, const xcs_cu_operand *in,
                            const xcs_cu_operand *out) {
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
    if (numel == 0 && !(reduce && kept > 0)) return XCS_OK;
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
    args.err = (unsigned int *)(uintptr_t)rt->err_word;
    args.n = reduce ? kept : numel;
    args.rn = reduce ? folded : 0;
    cu_fn fn = NULL;
    uint64_t key = 0;
    xcs_status st = kernel_for(rt, &spec, &fn, &key);
    if (st) return st;
    bool checked = can_raise(p);
    long long per_thread = vec ? 4 : 1;
    long long blocks = reduce ? kept : (numel / per_thread + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
    long long cap = reduce ? (1LL << 20) : (long long)(rt->sm_count > 0 ? rt->sm_count : 80) * 32;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return launch(rt, fn, blocks, &args, checked, key, "");
}

static char *gen_rows(const void *rs) { return xcs_cuda_row_codegen_alloc(rs); }

xcs_status xcs_cu_run_rows(xcs_cu_runtime *rt, const xcs_cuda_row_spec *rs, const xcs_cuda_row_args *args_in,
                           bool checked) {
    uint64_t key = xcs_cuda_row_spec_hash(rs) ^ ((uint64_t)rt->cc << 56) ^ 0x5a5a5a5a5a5a5a5aull;
    cu_fn fn = NULL;
    xcs_status st = kernel_cached(rt, key, gen_rows, rs, &fn);
    if (st) return st;
    xcs_cuda_row_args args = *args_in;
    args.err = (unsigned int *)(uintptr_t)rt->err_word;
    long long cap = (long long)(rt->sm_count > 0 ? rt->sm_count : 80) * 32;
    long long blocks = args.R < cap ? args.R : cap;
    if (blocks < 1) return XCS_OK;
    pthread_mutex_lock(&rt->alloc_lock);
    rt->mem.row_chains++;
    pthread_mutex_unlock(&rt->alloc_lock);
    return launch(rt, fn, blocks, &args, checked, key, " (row chain)");
}

bool xcs_cu_can_raise(const xcs_fused_program *p) { return can_raise(p); }
