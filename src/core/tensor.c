/* tensor.c — refcounted storage and strided tensor views over it. */
#define _DEFAULT_SOURCE /* madvise */
#include "xcs.h"
#include "half.h"

#include <math.h>
#include <stdatomic.h>
#include <threads.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

/* Debug counters of owned allocations (tests assert that fused programs make
 * none).  Process-wide by nature: they count what malloc hands out. */
static _Atomic int64_t live_buffers, live_bytes, total_buffers, total_bytes;

#define XCS_ALIGN 64
#define XCS_HUGE (2u << 20)

#ifdef __linux__
#include <sys/mman.h>
#endif

/* Large buffers are 2 MiB aligned and asked to be backed by huge pages:
 * where transparent huge pages are "madvise"-only, a fresh 40 MB array
 * otherwise costs ~10k page faults, which took longer than the op itself
 * (measured: 1e7-float add with a fresh output 54 ms -> 9.8 ms).
 *
 * Freed large blocks are kept in a small cache and handed out again to a
 * request of the same padded size: a program that allocates the same big
 * outputs call after call (every jitted function) then never pays the page
 * faults and zeroing of fresh mmap memory again.  The cache is process-wide
 * like malloc's own arenas, bounded (XCS_CACHE_BLOCKS blocks, XCS_CACHE_BYTES
 * bytes) and guarded by a mutex; xcs_alloc_cache_clear() empties it. */
#define XCS_CACHE_BLOCKS 8
#define XCS_CACHE_BYTES ((size_t)1 << 30)

static struct {
    mtx_t lock;
    once_flag once;
    void *ptr[XCS_CACHE_BLOCKS];
    size_t size[XCS_CACHE_BLOCKS];
    size_t bytes;
} block_cache = {.once = ONCE_FLAG_INIT};

static void cache_init(void) { mtx_init(&block_cache.lock, mtx_plain); }

static size_t huge_padded(size_t nbytes) { return (nbytes + XCS_HUGE - 1) / XCS_HUGE * XCS_HUGE; }

static void *cache_take(size_t padded) {
    void *p = NULL;
    call_once(&block_cache.once, cache_init);
    mtx_lock(&block_cache.lock);
    for (int i = 0; i < XCS_CACHE_BLOCKS; i++)
        if (block_cache.ptr[i] && block_cache.size[i] == padded) {
            p = block_cache.ptr[i];
            block_cache.ptr[i] = NULL;
            block_cache.bytes -= padded;
            break;
        }
    mtx_unlock(&block_cache.lock);
    return p;
}

/* Keeps p for reuse when there is room; else frees it. */
static void cache_put(void *p, size_t padded) {
    call_once(&block_cache.once, cache_init);
    mtx_lock(&block_cache.lock);
    for (int i = 0; p && i < XCS_CACHE_BLOCKS; i++)
        if (!block_cache.ptr[i] && block_cache.bytes + padded <= XCS_CACHE_BYTES) {
            block_cache.ptr[i] = p;
            block_cache.size[i] = padded;
            block_cache.bytes += padded;
            p = NULL;
        }
    mtx_unlock(&block_cache.lock);
    free(p);
}

void xcs_alloc_cache_clear(void) {
    call_once(&block_cache.once, cache_init);
    mtx_lock(&block_cache.lock);
    for (int i = 0; i < XCS_CACHE_BLOCKS; i++) {
        free(block_cache.ptr[i]);
        block_cache.ptr[i] = NULL;
    }
    block_cache.bytes = 0;
    mtx_unlock(&block_cache.lock);
}

/* The machine's physical memory: a request above it fails at once, rather
 * than being granted by overcommit and then killed when touched. */
static size_t phys_bytes;
static once_flag phys_once = ONCE_FLAG_INIT;
static void phys_init(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    phys_bytes = pages > 0 && size > 0 ? (size_t)pages * (size_t)size : SIZE_MAX;
}

static void *host_alloc(size_t nbytes) {
    call_once(&phys_once, phys_init);
    if (nbytes > phys_bytes) return NULL;
    if (nbytes < XCS_HUGE) {
        size_t padded = (nbytes + XCS_ALIGN - 1) / XCS_ALIGN * XCS_ALIGN;
        return aligned_alloc(XCS_ALIGN, padded ? padded : XCS_ALIGN);
    }
    size_t padded = huge_padded(nbytes);
    void *p = cache_take(padded);
    if (p) return p;
    p = aligned_alloc(XCS_HUGE, padded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, padded, MADV_HUGEPAGE);
#endif
    return p;
}

static void host_free(void *p, size_t nbytes) {
    if (nbytes < XCS_HUGE) free(p);
    else cache_put(p, huge_padded(nbytes));
}

/* Device storage goes back to its backend (release_ctx is the storage). */
static void device_release(void *ctx) {
    xcs_storage *s = ctx;
    const xcs_backend *be = xcs_backend_for(s->device);
    if (be && be->free) be->free(s->device_index, s->data);
}

xcs_storage *xcs_storage_new_on(size_t nbytes, xcs_device device, int index) {
    if (device == XCS_DEVICE_CPU) return xcs_storage_new(nbytes, device);
    const xcs_backend *be = xcs_backend_for(device);
    if (!be) return NULL;
    if (!be->alloc) {
        xcs_error(XCS_ERR_UNSUPPORTED, "backend %s has no device memory", be->name);
        return NULL;
    }
    void *data = NULL;
    if (be->alloc(index, nbytes, &data)) return NULL;
    xcs_storage *s = xcs_storage_wrap(data, nbytes, false, device_release, NULL);
    if (!s) {
        be->free(index, data);
        return NULL;
    }
    s->device = device;
    s->device_index = index;
    s->release_ctx = s;
    return s;
}

xcs_storage *xcs_storage_new(size_t nbytes, xcs_device device) {
    if (device != XCS_DEVICE_CPU) return xcs_storage_new_on(nbytes, device, 0);
    xcs_storage *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->data = host_alloc(nbytes);
    if (!s->data) { free(s); goto oom; }
    s->refcount = 1;
    s->owned = true;
    s->nbytes = nbytes;
    s->device = device;
    atomic_fetch_add(&live_buffers, 1);
    atomic_fetch_add(&live_bytes, (int64_t)nbytes);
    atomic_fetch_add(&total_buffers, 1);
    atomic_fetch_add(&total_bytes, (int64_t)nbytes);
    return s;
oom:
    xcs_error(XCS_ERR_MEMORY, "out of memory allocating %zu bytes", nbytes);
    return NULL;
}

xcs_storage *xcs_storage_wrap(void *data, size_t nbytes, bool readonly,
                              void (*release)(void *), void *release_ctx) {
    xcs_storage *s = calloc(1, sizeof *s);
    if (!s) {
        xcs_error(XCS_ERR_MEMORY, "out of memory wrapping a buffer");
        return NULL;
    }
    s->refcount = 1;
    s->data = data;
    s->nbytes = nbytes;
    s->device = XCS_DEVICE_CPU;
    s->readonly = readonly;
    s->release = release;
    s->release_ctx = release_ctx;
    return s;
}

void xcs_storage_retain(xcs_storage *s) {
    if (!s) return; /* traced tensors have none */
    atomic_fetch_add_explicit((_Atomic long *)&s->refcount, 1, memory_order_relaxed);
}

void xcs_storage_lend(xcs_storage *s) {
    if (s) atomic_store_explicit((_Atomic bool *)&s->lent, true, memory_order_release);
}

bool xcs_storage_lent(const xcs_storage *s) {
    return s && atomic_load_explicit((_Atomic bool *)&s->lent, memory_order_acquire);
}

void xcs_storage_release(xcs_storage *s) {
    if (!s) return;
    if (atomic_fetch_sub_explicit((_Atomic long *)&s->refcount, 1, memory_order_acq_rel) != 1)
        return;
    if (s->owned) {
        atomic_fetch_sub(&live_buffers, 1);
        atomic_fetch_sub(&live_bytes, (int64_t)s->nbytes);
        host_free(s->data, s->nbytes);
    } else if (s->release) {
        s->release(s->release_ctx);
    }
    free(s);
}

void xcs_alloc_stats_get(xcs_alloc_stats *out) {
    out->live_buffers = atomic_load(&live_buffers);
    out->live_bytes = atomic_load(&live_bytes);
    out->total_buffers = atomic_load(&total_buffers);
    out->total_bytes = atomic_load(&total_bytes);
}

/* ---------------------------------------------------------------- tensors */

static xcs_tensor *tensor_alloc(void) {
    xcs_tensor *t = calloc(1, sizeof *t);
    if (!t) xcs_error(XCS_ERR_MEMORY, "out of memory allocating a tensor header");
    return t;
}

static xcs_status check_ndim(int ndim) {
    if (ndim < 0 || ndim > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "xcs arrays have at most %d dimensions, got %d",
                         XCS_MAX_DIMS, ndim);
    return XCS_OK;
}

xcs_status xcs_tensor_empty_on(const xcs_storage *where, xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out) {
    int64_t n;
    xcs_status st = check_ndim(ndim);
    if (st) return st;
    if ((unsigned)dt >= XCS_DTYPE_COUNT) return xcs_error(XCS_ERR_TYPE, "invalid dtype %d", (int)dt);
    if ((st = xcs_shape_numel(ndim, shape, xcs_dtype_size(dt), &n))) return st;
    xcs_tensor *t = tensor_alloc();
    if (!t) return XCS_ERR_MEMORY;
    t->storage = xcs_storage_new_on((size_t)n * xcs_dtype_size(dt), where ? where->device : XCS_DEVICE_CPU,
                                    where ? where->device_index : 0);
    if (!t->storage) {
        free(t);
        return xcs_last_status();
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    xcs_strides_contiguous(ndim, shape, t->strides);
    *out = t;
    return XCS_OK;
}

xcs_status xcs_tensor_empty(xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out) {
    return xcs_tensor_empty_on(NULL, dt, ndim, shape, out);
}

xcs_status xcs_tensor_from_storage(xcs_storage *storage, xcs_dtype dt, int ndim,
                                   const int64_t *shape, const int64_t *strides,
                                   int64_t offset, xcs_tensor **out) {
    int64_t n;
    xcs_status st = check_ndim(ndim);
    if (st) return st;
    if ((st = xcs_shape_numel(ndim, shape, xcs_dtype_size(dt), &n))) return st;
    if (n > 0) {
        /* every reachable element must lie inside the storage */
        int64_t lo = offset, hi = offset;
        for (int i = 0; i < ndim; i++) {
            int64_t span = (shape[i] - 1) * strides[i];
            if (span < 0) lo += span; else hi += span;
        }
        int64_t cap = (int64_t)(storage->nbytes / xcs_dtype_size(dt));
        if (lo < 0 || hi >= cap)
            return xcs_error(XCS_ERR_INDEX,
                             "view reaches elements [%lld, %lld] outside its storage of %lld elements",
                             (long long)lo, (long long)hi, (long long)cap);
    }
    xcs_tensor *t = tensor_alloc();
    if (!t) return XCS_ERR_MEMORY;
    xcs_storage_retain(storage);
    t->storage = storage;
    t->dtype = dt;
    t->ndim = ndim;
    t->offset = offset;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    *out = t;
    return XCS_OK;
}

xcs_status xcs_tensor_view(const xcs_tensor *x, xcs_tensor **out) {
    xcs_tensor *t = tensor_alloc();
    if (!t) return XCS_ERR_MEMORY;
    *t = *x;
    xcs_storage_retain(t->storage);
    *out = t;
    return XCS_OK;
}

void xcs_tensor_free(xcs_tensor *t) {
    if (!t) return;
    xcs_storage_release(t->storage);
    free(t);
}

int64_t xcs_tensor_numel(const xcs_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool xcs_tensor_is_contiguous(const xcs_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) return true;
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

/* Element offset (from the data pointer) of flat C-order index `flat`. */
static int64_t flat_offset(const xcs_tensor *t, int64_t flat) {
    int64_t off = 0;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t d = t->shape[i];
        off += (flat % d) * t->strides[i];
        flat /= d;
    }
    return off;
}

double xcs_tensor_get_f64(const xcs_tensor *t, int64_t flat) {
    if (!t->storage) return NAN; /* traced: no value yet (callers check first) */
    const char *p = xcs_tensor_data(t);
    int64_t o = flat_offset(t, flat);
    switch (t->dtype) {
    case XCS_BOOL: return ((const bool *)p)[o];
    case XCS_I32: return ((const int32_t *)p)[o];
    case XCS_I64: return (double)((const int64_t *)p)[o];
    case XCS_F32: return ((const float *)p)[o];
    case XCS_F64: return ((const double *)p)[o];
    case XCS_F16: return xcs_f16_to_f32(((const uint16_t *)p)[o]);
    case XCS_BF16: return xcs_bf16_to_f32(((const uint16_t *)p)[o]);
    default: return 0;
    }
}

int64_t xcs_tensor_get_i64(const xcs_tensor *t, int64_t flat) {
    if (!t->storage) return 0; /* traced: no value yet (callers check first) */
    const char *p = xcs_tensor_data(t);
    int64_t o = flat_offset(t, flat);
    switch (t->dtype) {
    case XCS_BOOL: return ((const bool *)p)[o];
    case XCS_I32: return ((const int32_t *)p)[o];
    case XCS_I64: return ((const int64_t *)p)[o];
    case XCS_F32: return (int64_t)((const float *)p)[o];
    case XCS_F64: return (int64_t)((const double *)p)[o];
    case XCS_F16:
    case XCS_BF16: { /* |v| < 2^63 or not finite: 0 for inf/NaN */
        double v = xcs_tensor_get_f64(t, flat);
        return v > -0x1p63 && v < 0x1p63 ? (int64_t)v : 0;
    }
    default: return 0;
    }
}

/* Writes v into a 0-d tensor of dtype dt. */
static void store_scalar(xcs_tensor *t, double v, int64_t iv, bool use_int) {
    void *p = xcs_tensor_data(t);
    switch (t->dtype) {
    case XCS_BOOL: *(bool *)p = use_int ? iv != 0 : v != 0; break;
    case XCS_I32: *(int32_t *)p = (int32_t)(use_int ? iv : (int64_t)v); break;
    case XCS_I64: *(int64_t *)p = use_int ? iv : (int64_t)v; break;
    case XCS_F32: *(float *)p = (float)(use_int ? (double)iv : v); break;
    case XCS_F64: *(double *)p = use_int ? (double)iv : v; break;
    case XCS_F16: *(uint16_t *)p = xcs_f64_to_f16(use_int ? (double)iv : v); break;
    case XCS_BF16: *(uint16_t *)p = xcs_f64_to_bf16(use_int ? (double)iv : v); break;
    default: break;
    }
}

xcs_status xcs_tensor_scalar(xcs_dtype dt, double v, xcs_tensor **out) {
    xcs_status st = xcs_tensor_empty(dt, 0, NULL, out);
    if (st) return st;
    store_scalar(*out, v, 0, false);
    return XCS_OK;
}

xcs_status xcs_tensor_scalar_i64(xcs_dtype dt, int64_t v, xcs_tensor **out) {
    xcs_status st = xcs_tensor_empty(dt, 0, NULL, out);
    if (st) return st;
    store_scalar(*out, 0, v, true);
    return XCS_OK;
}

/* ---------------------------------------------------------------- devices */

bool xcs_tensor_on_host(const xcs_tensor *x) { return !x->storage || x->storage->device == XCS_DEVICE_CPU; }

xcs_status xcs_colocate(int n, const xcs_tensor **xs, xcs_tensor **moved, const char *what) {
    const xcs_storage *dev = NULL;
    for (int i = 0; i < n; i++) {
        moved[i] = NULL;
        if (xcs_tensor_on_host(xs[i])) continue;
        if (dev && (xs[i]->storage->device != dev->device || xs[i]->storage->device_index != dev->device_index))
            return xcs_error(XCS_ERR_VALUE, "%s: operands on different devices (move them with device_put)", what);
        dev = xs[i]->storage;
    }
    for (int i = 0; dev && i < n; i++) {
        if (!xcs_tensor_on_host(xs[i])) continue;
        xcs_status st = xcs_tensor_to(xs[i], dev->device, dev->device_index, &moved[i]);
        if (st) {
            for (int j = 0; j < i; j++) xcs_tensor_free(moved[j]);
            for (int j = 0; j < n; j++) moved[j] = NULL;
            return xcs_error_context(st, "%s: copying an operand to the device", what);
        }
        moved[i]->flags |= xs[i]->flags & XCS_TENSOR_WEAK;
        xs[i] = moved[i];
    }
    return XCS_OK;
}

xcs_status xcs_tensor_to(const xcs_tensor *x, xcs_device device, int index, xcs_tensor **out) {
    *out = NULL;
    if (x->graph) return xcs_error(XCS_ERR_VALUE, "a traced value cannot be moved between devices");
    xcs_device from = x->storage ? x->storage->device : XCS_DEVICE_CPU;
    int from_index = x->storage ? x->storage->device_index : 0;
    if (from == device && (device == XCS_DEVICE_CPU || from_index == index)) return xcs_contiguous(x, out);
    if (from != XCS_DEVICE_CPU && device != XCS_DEVICE_CPU) { /* device to device: through the host */
        xcs_tensor *h = NULL;
        xcs_status st = xcs_tensor_to(x, XCS_DEVICE_CPU, 0, &h);
        if (!st) st = xcs_tensor_to(h, device, index, out);
        xcs_tensor_free(h);
        return st;
    }
    xcs_tensor *src = NULL, *dst = NULL;
    xcs_status st = xcs_contiguous(x, &src); /* on x's own device */
    if (st) return st;
    xcs_storage where = {.device = device, .device_index = index};
    if ((st = xcs_tensor_empty_on(&where, x->dtype, x->ndim, x->shape, &dst))) {
        xcs_tensor_free(src);
        return st;
    }
    size_t nbytes = (size_t)xcs_tensor_numel(dst) * xcs_dtype_size(x->dtype);
    const xcs_backend *be = xcs_backend_for(device == XCS_DEVICE_CPU ? from : device);
    if (!be) st = xcs_last_status();
    else if (nbytes == 0) st = XCS_OK;
    else if (device == XCS_DEVICE_CPU)
        st = be->download ? be->download(from_index, dst->storage->data,
                                          (char *)src->storage->data + src->offset * (int64_t)xcs_dtype_size(src->dtype),
                                          nbytes)
                          : xcs_error(XCS_ERR_UNSUPPORTED, "backend %s cannot copy to the host", be->name);
    else
        st = be->upload ? be->upload(index, dst->storage->data, xcs_tensor_data(src), nbytes)
                        : xcs_error(XCS_ERR_UNSUPPORTED, "backend %s cannot copy from the host", be->name);
    xcs_tensor_free(src);
    if (st) {
        xcs_tensor_free(dst);
        return st;
    }
    *out = dst;
    return XCS_OK;
}
