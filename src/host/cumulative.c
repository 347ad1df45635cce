/* cumulative.c — the CPU running-sum kernel (xcs_backend.cumsum): out =
 * numpy.cumsum(x, axis), every element the sum of its row's elements up
 * to it taken in order (out[k] = out[k - 1] + x[k]), so float results are
 * numpy's add.accumulate bits.
 *
 * x is seen as [O, N, I] (the dims before the axis, the axis, the dims
 * after it; a strided x is first copied contiguous): the k-th slab of I
 * elements is the (k-1)-th plus x's, a loop over I that vectorises.
 * Threads split the O * I independent columns (outer rows, or pieces of
 * the inner run); one long row (O = I = 1) stays on one thread — its sums
 * depend on each other.  Integers add as unsigned (wrapping, as numpy's
 * two's complement does).  Borrows all arguments; writes out in place. */
#include <stdint.h>
#include <stdlib.h>

#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Outer rows [o0, o1), inner columns [j0, j1). */
#define CUMSUM_PART(T)                                                                               \
    do {                                                                                             \
        const T *xs = (const T *)x;                                                                  \
        T *os = (T *)out;                                                                            \
        for (int64_t o = o0; o < o1; o++) {                                                          \
            const T *xr = xs + o * N * I;                                                            \
            T *orow = os + o * N * I;                                                                \
            for (int64_t j = j0; j < j1; j++) orow[j] = xr[j];                                       \
            for (int64_t k = 1; k < N; k++) {                                                        \
                const T *restrict xk = xr + k * I;                                                   \
                const T *restrict prev = orow + (k - 1) * I;                                         \
                T *restrict ok = orow + k * I;                                                       \
                for (int64_t j = j0; j < j1; j++) ok[j] = prev[j] + xk[j];                           \
            }                                                                                        \
        }                                                                                            \
    } while (0)

static void cumsum_part(xcs_dtype dt, const void *x, void *out, int64_t N, int64_t I, int64_t o0, int64_t o1,
                        int64_t j0, int64_t j1) {
    switch (dt) {
    case XCS_F32: CUMSUM_PART(float); break;
    case XCS_F64: CUMSUM_PART(double); break;
    case XCS_I32: CUMSUM_PART(uint32_t); break;
    default: CUMSUM_PART(uint64_t); break;
    }
}

xcs_status xcs_cpu_cumsum(const xcs_tensor *x, int axis, xcs_tensor *out) {
    const xcs_dtype dt = x->dtype;
    if ((dt != XCS_F32 && dt != XCS_F64 && dt != XCS_I32 && dt != XCS_I64) || out->dtype != dt || axis < 0 ||
        axis >= x->ndim || !xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "cpu cumsum: bad operands");
    xcs_tensor *c = NULL;
    if (!xcs_tensor_is_contiguous(x)) {
        xcs_status st = xcs_contiguous(x, &c);
        if (st) return st;
    }
    const void *xd = xcs_tensor_data(c ? c : x);
    void *od = xcs_tensor_data(out);
    int64_t O = 1, N = x->shape[axis], I = 1;
    for (int d = 0; d < axis; d++) O *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++) I *= x->shape[d];
    int nt = 1;
#ifdef _OPENMP
    if (O * N * I >= XCS_CPU_PAR_MIN && (O > 1 || I >= 64)) nt = omp_get_max_threads();
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
            if (O >= k) /* whole outer rows */
                cumsum_part(dt, xd, od, N, I, O * t / k, O * (t + 1) / k, 0, I);
            else /* pieces of the inner run, each a multiple of 16 columns */
                cumsum_part(dt, xd, od, N, I, 0, O, (I + 15) / 16 * t / k * 16 < I ? (I + 15) / 16 * t / k * 16 : I,
                            (I + 15) / 16 * (t + 1) / k * 16 < I ? (I + 15) / 16 * (t + 1) / k * 16 : I);
        }
    } else
#endif
    {
        cumsum_part(dt, xd, od, N, I, 0, O, 0, I);
    }
    xcs_tensor_free(c);
    return XCS_OK;
}
