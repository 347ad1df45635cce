/* scatter.c — the CPU scatter-add kernel (xcs_backend.scatter_add):
 * out = zeros; out[idx[i]] += src[i], in order of i.
 *
 * It is the adjoint of a gather (take) and of any strided view, so autodiff
 * uses it for every read that is not the whole value in order.  One thread,
 * in index order: every float result is the same sum in the same order
 * whatever the thread count, and the loop is one load-add-store per element
 * (memory-bound).  Core checked the indices; this kernel checks them again
 * so a bad one is an error, never a stray write. */
#include <stdint.h>
#include <string.h>

#include "cpu_kernels.h"

#define SCATTER_LOOP(T)                                                                 \
    do {                                                                                \
        T *o = xcs_tensor_data(out);                                                    \
        const char *s = xcs_tensor_data(src);                                           \
        const int64_t ss = src->strides[0] * (int64_t)sizeof(T);                        \
        memset(o, 0, (size_t)n * sizeof(T));                                            \
        for (int64_t i = 0; i < m; i++) {                                               \
            if ((uint64_t)ip[i] >= (uint64_t)n) return XCS_ERR_INDEX;                   \
            T v;                                                                        \
            memcpy(&v, s + i * ss, sizeof v);                                           \
            o[ip[i]] += v;                                                              \
        }                                                                               \
    } while (0)

static xcs_status scatter(const int64_t *ip, int64_t m, const xcs_tensor *src, xcs_tensor *out, int64_t n) {
    switch (out->dtype) {
    case XCS_F32: SCATTER_LOOP(float); break;
    case XCS_F64: SCATTER_LOOP(double); break;
    case XCS_I32: SCATTER_LOOP(int32_t); break;
    case XCS_I64: SCATTER_LOOP(int64_t); break;
    default: return XCS_ERR_TYPE;
    }
    return XCS_OK;
}

xcs_status xcs_cpu_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, xcs_tensor *out) {
    if (idx->dtype != XCS_I64 || idx->ndim != 1 || src->ndim != 1 || out->ndim != 1 ||
        idx->shape[0] != src->shape[0] || src->dtype != out->dtype || !xcs_tensor_is_contiguous(idx) ||
        !xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_VALUE, "scatter_add kernel: bad operands");
    xcs_status st = scatter(xcs_tensor_data(idx), idx->shape[0], src, out, out->shape[0]);
    if (st == XCS_ERR_INDEX) return xcs_error(st, "scatter_add: an index is out of bounds for size %lld",
                                              (long long)out->shape[0]);
    if (st) return xcs_error(st, "scatter_add: dtype %s is not supported", xcs_dtype_name(out->dtype));
    return XCS_OK;
}
