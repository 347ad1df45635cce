/* cpu_kernels.h — internal to src/host: the CPU backend's kernel entry points,
 * one per xcs_backend slot (see xcs.h for each contract). */
#ifndef XCS_CPU_KERNELS_H
#define XCS_CPU_KERNELS_H

#include "xcs.h"

#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#define XCS_HOST_STREAM 1 /* non-temporal 32-byte stores */
#else
#define XCS_HOST_STREAM 0
#endif

/* A walk over a strided operand in the row-major order of an nd-dim space,
 * one run along the last dim at a time: idx is the position, off the
 * operand's element offset there.  Shared by the elementwise and fused
 * kernels' gathers and scatters. */
typedef struct xcs_strided_walk {
    int nd;
    const int64_t *shape, *strides;
    int64_t idx[XCS_MAX_DIMS];
    int64_t off;
} xcs_strided_walk;

/* Starts w at flat position s of the space; returns the offset there. */
static inline int64_t xcs_walk_start(xcs_strided_walk *w, int nd, const int64_t *shape, const int64_t *strides,
                                     int64_t s) {
    w->nd = nd, w->shape = shape, w->strides = strides, w->off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        w->idx[d] = s % shape[d];
        s /= shape[d];
        w->off += w->idx[d] * strides[d];
    }
    return w->off;
}

/* The length of the run from w's position, at most len. */
static inline int64_t xcs_walk_run(const xcs_strided_walk *w, int64_t len) {
    int64_t seg = w->shape[w->nd - 1] - w->idx[w->nd - 1];
    return seg < len ? seg : len;
}

/* Moves w on by seg elements of its current run (carrying into the outer
 * dims at the run's end). */
static inline void xcs_walk_advance(xcs_strided_walk *w, int64_t seg) {
    const int last = w->nd - 1;
    w->idx[last] += seg;
    w->off += seg * w->strides[last];
    for (int d = last; d > 0 && w->idx[d] == w->shape[d]; d--) {
        w->off += w->strides[d - 1] - w->idx[d] * w->strides[d];
        w->idx[d] = 0;
        w->idx[d - 1]++;
    }
}

/* Copies n bytes to dst with non-temporal stores where there are any (dst's
 * lines are neither read for ownership nor kept in cache): the 32-byte
 * aligned middle, the ends plainly.  A thread fences
 * (xcs_host_stream_fence) before its stores are read by another. */
static inline void xcs_host_stream_copy(char *dst, const char *src, size_t n) {
#if XCS_HOST_STREAM
    size_t head = (size_t)(-(uintptr_t)dst & 31u);
    if (head > n) head = n;
    memcpy(dst, src, head);
    dst += head, src += head, n -= head;
    for (; n >= 32; n -= 32, dst += 32, src += 32)
        _mm256_stream_si256((__m256i *)(void *)dst, _mm256_loadu_si256((const __m256i *)(const void *)src));
#endif
    memcpy(dst, src, n);
}

static inline void xcs_host_stream_fence(void) {
#if XCS_HOST_STREAM
    _mm_sfence();
#endif
}

/* Work below this many elements runs on one thread: an OpenMP fork costs
 * ~1-5 us, which small arrays cannot amortise. */
#define XCS_CPU_PAR_MIN 32768

xcs_status xcs_cpu_elementwise(xcs_op op, int n_in, const xcs_tensor *const *in,
                               xcs_dtype compute, xcs_tensor *out);
xcs_status xcs_cpu_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out);
xcs_status xcs_cpu_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out);
xcs_status xcs_cpu_argsort(const xcs_tensor *x, int axis, xcs_tensor *out);
/* The values sorted along one axis, NaNs last (sort_values.c). */
xcs_status xcs_cpu_sort(const xcs_tensor *x, int axis, xcs_tensor *out);
/* The running sum along one axis, each row in order (cumulative.c). */
xcs_status xcs_cpu_cumsum(const xcs_tensor *x, int axis, xcs_tensor *out);
/* xcs_backend.linalg: solve / cholesky / slogdet (linalg.c). */
xcs_status xcs_cpu_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out);
/* Its EIGH and SVD (Jacobi rotations) and QR (Householder) (linalg_jacobi.c). */
xcs_status xcs_cpu_eigh_svd(xcs_op op, const xcs_tensor *a, xcs_tensor *out);
xcs_status xcs_cpu_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
xcs_status xcs_cpu_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
xcs_status xcs_cpu_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out);
xcs_status xcs_cpu_fill(xcs_tensor *out, double value);
xcs_status xcs_cpu_iota(xcs_tensor *out, double start, double step);
xcs_status xcs_cpu_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out);
xcs_status xcs_cpu_run_fused(const xcs_fused_program *p, const xcs_tensor *const *inputs, xcs_tensor *const *outputs);
/* run_fused; parallel == false keeps an elementwise program on the calling
 * thread (a GEMM epilogue runs inside the GEMM's own parallel region). */
xcs_status xcs_cpu_run_fused_ex(const xcs_fused_program *p, const xcs_tensor *const *inputs,
                                xcs_tensor *const *outputs, bool parallel);
/* run_fused_ex keeping its plan in *cache between calls (cache NULL: not
 * kept).  key: the program the plan is for (p itself, or the program p is
 * a re-shaped copy of); a call with another key, shape or operand layout
 * rebuilds it. */
xcs_status xcs_cpu_run_fused_kept(const xcs_fused_program *key, const xcs_fused_program *p, xcs_fused_cache **cache,
                                  const xcs_tensor *const *inputs, xcs_tensor *const *outputs, bool parallel);
void xcs_cpu_fused_cache_free(xcs_fused_cache *c);
/* The blocked GEMM calls fn on each block of C (rows x cols elements at c,
 * the output's row stride) as soon as it is final, from the thread that
 * computed it, possibly inside a parallel region. */
typedef struct xcs_mm_epilogue xcs_mm_epilogue;
struct xcs_mm_epilogue {
    void (*fn)(xcs_mm_epilogue *e, char *c, int64_t rows, int64_t cols);
};
xcs_status xcs_host_matmul_blocked_epi(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out,
                                       xcs_mm_epilogue *epi);
/* True when xcs_cpu_matmul hands this GEMM to BLAS (large float ones). */
bool xcs_host_matmul_prefers_blas(const xcs_tensor *a, const xcs_tensor *b, const xcs_tensor *out);
xcs_status xcs_cpu_matmul_fused(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                const xcs_fused_program *p, const xcs_tensor *const *inputs,
                                xcs_tensor *const *outputs);
xcs_status xcs_cpu_matmul_fused_kept(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                     const xcs_fused_program *p, xcs_fused_cache **cache,
                                     const xcs_tensor *const *inputs, xcs_tensor *const *outputs);
xcs_status xcs_cpu_run_fused_cached(const xcs_fused_program *p, xcs_fused_cache **cache,
                                    const xcs_tensor *const *inputs, xcs_tensor *const *outputs);

#endif
