/* collective.c — the module's `collective` entry (xcs_cuda.h): pmap's
 * staged psum / pmax / all_gather over blocks on several GPUs, combined
 * device to device through NCCL (nccl.h), opened at the first collective.
 * Without NCCL, or for a dtype it cannot carry, the answer is
 * XCS_ERR_UNSUPPORTED with the reason, and the caller combines on the host. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "nccl.h"
#include "runtime.h"

/* NCCL, opened once for the module's life (never closed: the module is
 * never unloaded), or why it could not be. */
static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;
static xcs_nccl *nccl;
static char nccl_why[400];

static void nccl_open_once(void) {
    if (xcs_nccl_open(&nccl)) snprintf(nccl_why, sizeof nccl_why, "%s", xcs_last_error());
    xcs_error_clear();
}

int xcs_cuda_be_nccl_info(char *why, size_t cap) {
    pthread_once(&nccl_once, nccl_open_once);
    if (!nccl) snprintf(why, cap, "%s", nccl_why);
    return xcs_nccl_version(nccl);
}

static const char *const coll_names[] = {"psum", "pmax", "all_gather"};

/* Checks what the entry promises its caller to have checked (xcs_cuda.h);
 * fills each rank's runtime and element count. */
static xcs_status check_parts(xcs_cuda_coll kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out,
                              xcs_cu_runtime **rts, size_t *counts) {
    const char *what = (unsigned)kind <= XCS_CUDA_COLL_GATHER ? coll_names[kind] : NULL;
    if (!what) return xcs_error(XCS_ERR_VALUE, "collective: unknown kind %d", (int)kind);
    if (n < 1 || n > XCS_CUDA_MAX_DEVICES)
        return xcs_error(XCS_ERR_VALUE, "%s across %d devices (1 to %d)", what, n, XCS_CUDA_MAX_DEVICES);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const xcs_tensor *p = part[i], *o = out[i];
        if (!p || !o || !p->storage || !o->storage || p->storage->device != XCS_DEVICE_CUDA ||
            o->storage->device != XCS_DEVICE_CUDA || o->storage->device_index != p->storage->device_index)
            return xcs_error(XCS_ERR_VALUE, "%s: part %d and its result must be on the same CUDA device", what, i);
        if (p->dtype != part[0]->dtype || o->dtype != p->dtype)
            return xcs_error(XCS_ERR_TYPE, "%s: part %d is %s, part 0 %s", what, i, xcs_dtype_name(p->dtype),
                             xcs_dtype_name(part[0]->dtype));
        if (!xcs_tensor_is_contiguous(p) || !xcs_tensor_is_contiguous(o))
            return xcs_error(XCS_ERR_VALUE, "%s: part %d is not contiguous", what, i);
        for (int j = 0; j < i; j++)
            if (part[j]->storage->device_index == p->storage->device_index)
                return xcs_error(XCS_ERR_VALUE, "%s: parts %d and %d are both on cuda:%d", what, j, i,
                                 p->storage->device_index);
        counts[i] = (size_t)xcs_tensor_numel(p);
        total += xcs_tensor_numel(p);
        if (kind != XCS_CUDA_COLL_GATHER && (counts[i] != counts[0] || xcs_tensor_numel(o) != xcs_tensor_numel(p)))
            return xcs_error(XCS_ERR_VALUE, "%s: part %d has %zu elements, part 0 %zu, its result %lld", what, i,
                             counts[i], counts[0], (long long)xcs_tensor_numel(o));
        if (!(rts[i] = xcs_cuda_be_runtime(p->storage->device_index))) return xcs_last_status();
    }
    for (int i = 0; kind == XCS_CUDA_COLL_GATHER && i < n; i++)
        if (xcs_tensor_numel(out[i]) != total)
            return xcs_error(XCS_ERR_VALUE, "all_gather: result %d has %lld elements, the parts %lld", i,
                             (long long)xcs_tensor_numel(out[i]), (long long)total);
    return XCS_OK;
}

xcs_status xcs_cuda_be_collective(xcs_cuda_coll kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out) {
    xcs_cu_runtime *rts[XCS_CUDA_MAX_DEVICES];
    size_t counts[XCS_CUDA_MAX_DEVICES];
    xcs_status st = check_parts(kind, n, part, out, rts, counts);
    if (st) return st;
    if (n == 1) { /* nothing to combine: a device copy */
        xcs_cu_ptr src = xcs_cuda_be_addr(part[0]), dst = xcs_cuda_be_addr(out[0]);
        xcs_cu_use use[2] = {{src, false, false}, {dst, true, false}};
        size_t bytes = counts[0] * xcs_dtype_size(part[0]->dtype);
        return (st = xcs_cu_order(rts[0], 2, use)) ? st : xcs_cu_copy(rts[0], dst, src, bytes);
    }
    pthread_once(&nccl_once, nccl_open_once);
    if (!nccl) return xcs_error(XCS_ERR_UNSUPPORTED, "%s", nccl_why);
    xcs_cu_ptr in[XCS_CUDA_MAX_DEVICES], res[XCS_CUDA_MAX_DEVICES];
    for (int i = 0; i < n; i++) {
        in[i] = xcs_cuda_be_addr(part[i]);
        res[i] = xcs_cuda_be_addr(out[i]);
    }
    st = xcs_nccl_run(nccl, kind, n, rts, in, res, counts, part[0]->dtype);
    return st ? xcs_error_context(st, "%s across %d GPUs", coll_names[kind], n) : XCS_OK;
}
