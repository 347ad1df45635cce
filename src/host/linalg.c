/* linalg.c — the CPU linear-algebra kernels (xcs_backend.linalg): solve by
 * LU with partial pivoting (LAPACK's getrf/getrs order: the largest pivot
 * of a column, the first on ties, an exactly zero pivot singular), the
 * Cholesky factor from the lower triangle, and (sign, log|det|) from the LU
 * factors.  Matrices are row-major and contiguous; the rows being updated
 * are contiguous, so the inner loops vectorise.  Batches split over the
 * threads, each matrix computed by one thread, so results do not depend on
 * the thread count.  Matrices of xcs_linalg_lapack_min rows or more go to
 * LAPACK where the BLAS build has it (blocked: numpy's speed, other bits),
 * one at a time, but for batches of LA_OWN_BATCH_MIN solves up to
 * LA_OWN_BATCH_MAX rows (lapack.h says why).  EIGH, SVD, QR, EIGVALSH,
 * SVDVALS: linalg_jacobi.c.  Borrows all arguments; writes out in place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum { LA_OK = 0, LA_SINGULAR = 1, LA_NOT_PD = 2 };

#include "lapack.h"

#ifdef XCS_HAVE_LAPACK
#include <pthread.h>

static pthread_mutex_t lapack_mutex = PTHREAD_MUTEX_INITIALIZER;
static int lapack_saved_threads; /* OpenBLAS's count before the call; guarded by lapack_mutex */

void xcs_lapack_enter(int64_t n) {
    pthread_mutex_lock(&lapack_mutex);
    lapack_saved_threads = openblas_get_num_threads();
    int threads = 1;
#ifdef _OPENMP
    if (n >= LA_THREADED_MIN && !omp_in_parallel()) threads = omp_get_max_threads();
#else
    (void)n;
#endif
    openblas_set_num_threads(threads);
}

void xcs_lapack_leave(void) {
    openblas_set_num_threads(lapack_saved_threads); /* cblas's GEMMs keep their count */
    pthread_mutex_unlock(&lapack_mutex);
}
#endif

#define LINALG_ROUTINES(SFX, T, FABS, SQRT, LOG)                                                    \
    /* LU of A (n x n, in place) with row swaps applied to X (n x k) too;  \
     * piv_sign gets +-1; returns the first zero pivot's column or -1. */  \
    static int64_t lu_##SFX(T *A, T *X, int64_t n, int64_t k, int *piv_sign) {                       \
        int sign = 1;                                                                                \
        for (int64_t c = 0; c < n; c++) {                                                            \
            int64_t p = c;                                                                           \
            T best = FABS(A[c * n + c]);                                                             \
            for (int64_t r = c + 1; r < n; r++)                                                      \
                if (FABS(A[r * n + c]) > best) best = FABS(A[r * n + c]), p = r;                     \
            if (best == 0) {                                                                         \
                *piv_sign = sign;                                                                    \
                return c;                                                                            \
            }                                                                                        \
            if (p != c) {                                                                            \
                sign = -sign;                                                                        \
                for (int64_t j = 0; j < n; j++) {                                                    \
                    T t = A[c * n + j];                                                              \
                    A[c * n + j] = A[p * n + j], A[p * n + j] = t;                                   \
                }                                                                                    \
                for (int64_t j = 0; X && j < k; j++) {                                               \
                    T t = X[c * k + j];                                                              \
                    X[c * k + j] = X[p * k + j], X[p * k + j] = t;                                   \
                }                                                                                    \
            }                                                                                        \
            const T inv = (T)1 / A[c * n + c];                                                       \
            for (int64_t r = c + 1; r < n; r++) {                                                    \
                const T m = A[r * n + c] * inv;                                                      \
                A[r * n + c] = m;                                                                    \
                if (m == 0) continue;                                                                \
                T *ar = A + r * n;                                                                   \
                const T *ac = A + c * n;                                                             \
                for (int64_t j = c + 1; j < n; j++) ar[j] -= m * ac[j];                              \
                for (int64_t j = 0; X && j < k; j++) X[r * k + j] -= m * X[c * k + j];               \
            }                                                                                        \
        }                                                                                            \
        *piv_sign = sign;                                                                            \
        return -1;                                                                                   \
    }                                                                                                \
    static int solve_##SFX(T *A, T *X, int64_t n, int64_t k) {                                       \
        int sign;                                                                                    \
        if (lu_##SFX(A, X, n, k, &sign) >= 0) return LA_SINGULAR;                                    \
        for (int64_t c = n - 1; c >= 0; c--) { /* back substitution with U */                        \
            T *xc = X + c * k;                                                                       \
            for (int64_t j = c + 1; j < n; j++) {                                                    \
                const T u = A[c * n + j];                                                            \
                const T *xj = X + j * k;                                                             \
                for (int64_t q = 0; q < k; q++) xc[q] -= u * xj[q];                                  \
            }                                                                                        \
            const T d = A[c * n + c];                                                                \
            for (int64_t q = 0; q < k; q++) xc[q] /= d;                                              \
        }                                                                                            \
        return LA_OK;                                                                                \
    }                                                                                                \
    static void slogdet_##SFX(T *A, int64_t n, T *out) {                                             \
        int sign;                                                                                    \
        if (lu_##SFX(A, NULL, n, 0, &sign) >= 0) {                                                   \
            out[0] = 0, out[1] = -(T)INFINITY;                                                       \
            return;                                                                                  \
        }                                                                                            \
        T logdet = 0;                                                                                \
        for (int64_t c = 0; c < n; c++) {                                                            \
            const T d = A[c * n + c];                                                                \
            if (d < 0) sign = -sign;                                                                 \
            logdet += LOG(FABS(d));                                                                  \
        }                                                                                            \
        out[0] = (T)sign, out[1] = logdet;                                                           \
    }                                                                                                \
    /* L (n x n, zeros above) from a's lower triangle; LA_NOT_PD when a    \
     * pivot is not positive (or NaN). */                                  \
    static int cholesky_##SFX(const T *a, T *L, int64_t n) {                                         \
        memset(L, 0, (size_t)(n * n) * sizeof *L);                                                   \
        for (int64_t j = 0; j < n; j++) {                                                            \
            const T *lj = L + j * n;                                                                 \
            T s = a[j * n + j];                                                                      \
            for (int64_t p = 0; p < j; p++) s -= lj[p] * lj[p];                                      \
            if (!(s > 0)) return LA_NOT_PD;                                                          \
            const T d = SQRT(s);                                                                     \
            L[j * n + j] = d;                                                                        \
            for (int64_t i = j + 1; i < n; i++) {                                                    \
                const T *li = L + i * n;                                                             \
                T t = a[i * n + j];                                                                  \
                for (int64_t p = 0; p < j; p++) t -= li[p] * lj[p];                                  \
                L[i * n + j] = t / d;                                                                \
            }                                                                                        \
        }                                                                                            \
        return LA_OK;                                                                                \
    }                                                                                                \
    /* Matrices [m0, m1) of the batch; scratch: n * n elements. */         \
    static int batch_##SFX(xcs_op op, const T *a, const T *b, T *out, int64_t n, int64_t k, int64_t m0, \
                           int64_t m1, T *scratch) {                                                 \
        int worst = LA_OK;                                                                           \
        for (int64_t m = m0; m < m1; m++) {                                                          \
            const T *am = a + m * n * n;                                                             \
            int r = LA_OK;                                                                           \
            if (op == XCS_OP_CHOLESKY) {                                                             \
                r = cholesky_##SFX(am, out + m * n * n, n);                                          \
            } else {                                                                                 \
                memcpy(scratch, am, (size_t)(n * n) * sizeof *scratch);                              \
                if (op == XCS_OP_SLOGDET) {                                                          \
                    slogdet_##SFX(scratch, n, out + 2 * m);                                          \
                } else {                                                                             \
                    T *x = out + m * n * k;                                                          \
                    memcpy(x, b + m * n * k, (size_t)(n * k) * sizeof *x);                           \
                    r = solve_##SFX(scratch, x, n, k);                                               \
                }                                                                                    \
            }                                                                                        \
            if (r > worst) worst = r;                                                                \
        }                                                                                            \
        return worst;                                                                                \
    }
LINALG_ROUTINES(f32, float, fabsf, sqrtf, logf)
LINALG_ROUTINES(f64, double, fabs, sqrt, log)

#ifdef XCS_HAVE_LAPACK
/* The same through LAPACK.  A row-major matrix is its transpose in
 * column-major: getrf factors A^T, getrs('T') then solves A x = b (b and x
 * moved to column-major through t, n * k more); potrf('U') of the
 * column-major upper triangle reads our lower one and leaves L = U^T in it;
 * det A^T = det A.  scratch: n * n, t: n * k, piv: n. */
#define LAPACK_ROUTINES(SFX, T, P, FABS, LOG)                                                         \
    static int lapack_##SFX(xcs_op op, const T *a, const T *b, T *out, int64_t n64, int64_t k64,     \
                            int64_t m, T *scratch, T *t, blasint *piv) {                             \
        const blasint n = (blasint)n64, k = (blasint)k64;                                            \
        blasint info = 0;                                                                            \
        const T *am = a + m * n64 * n64;                                                             \
        if (op == XCS_OP_CHOLESKY) {                                                                 \
            T *L = out + m * n64 * n64;                                                              \
            memcpy(L, am, (size_t)(n64 * n64) * sizeof *L);                                          \
            P##potrf_("U", &n, L, &n, &info, 1);                                                     \
            if (info != 0) return LA_NOT_PD;                                                         \
            for (int64_t i = 0; i < n64; i++)                                                        \
                for (int64_t j = i + 1; j < n64; j++) L[i * n64 + j] = 0;                            \
            return LA_OK;                                                                            \
        }                                                                                            \
        memcpy(scratch, am, (size_t)(n64 * n64) * sizeof *scratch);                                  \
        P##getrf_(&n, &n, scratch, &n, piv, &info);                                                  \
        if (op == XCS_OP_SLOGDET) {                                                                  \
            T *o = out + 2 * m;                                                                      \
            if (info > 0) {                                                                          \
                o[0] = 0, o[1] = -(T)INFINITY;                                                       \
                return LA_OK;                                                                        \
            }                                                                                        \
            int sign = 1;                                                                            \
            T logdet = 0;                                                                            \
            for (int64_t c = 0; c < n64; c++) {                                                      \
                const T d = scratch[c * n64 + c];                                                    \
                if (piv[c] != (blasint)(c + 1)) sign = -sign;                                        \
                if (d < 0) sign = -sign;                                                             \
                logdet += LOG(FABS(d));                                                              \
            }                                                                                        \
            o[0] = (T)sign, o[1] = logdet;                                                           \
            return LA_OK;                                                                            \
        }                                                                                            \
        if (info > 0) return LA_SINGULAR;                                                            \
        const T *bm = b + m * n64 * k64;                                                             \
        for (int64_t i = 0; i < n64; i++)                                                            \
            for (int64_t j = 0; j < k64; j++) t[j * n64 + i] = bm[i * k64 + j];                      \
        P##getrs_("T", &n, &k, scratch, &n, piv, t, &n, &info, 1);                                   \
        T *x = out + m * n64 * k64;                                                                  \
        for (int64_t i = 0; i < n64; i++)                                                            \
            for (int64_t j = 0; j < k64; j++) x[i * k64 + j] = t[j * n64 + i];                      \
        return LA_OK;                                                                                \
    }
LAPACK_ROUTINES(f32, float, s, fabsf, logf)
LAPACK_ROUTINES(f64, double, d, fabs, log)

/* Every matrix of the batch through LAPACK, in order, under the LAPACK lock. */
static xcs_status lapack_all(xcs_op op, const xcs_tensor *const *in, xcs_tensor *out, int64_t n, int64_t k,
                             int64_t batch) {
    const xcs_dtype dt = in[0]->dtype;
    const size_t es = xcs_dtype_size(dt), tn = (size_t)(n * (k > 0 ? k : 1));
    char *buf = malloc(((size_t)(n * n) + tn) * es + (size_t)n * sizeof(blasint));
    if (!buf) return xcs_error(XCS_ERR_MEMORY, "%s: out of memory for a %lld x %lld matrix", xcs_op_name(op),
                               (long long)n, (long long)n);
    char *tb = buf + (size_t)(n * n) * es;
    blasint *piv = (blasint *)(void *)(tb + tn * es);
    const void *ap = xcs_tensor_data(in[0]), *bp = op == XCS_OP_SOLVE ? xcs_tensor_data(in[1]) : NULL;
    void *op_ = xcs_tensor_data(out);
    int worst = LA_OK;
    xcs_lapack_enter(n);
    for (int64_t m = 0; m < batch; m++) {
        int r = dt == XCS_F32 ? lapack_f32(op, ap, bp, op_, n, k, m, (float *)(void *)buf, (float *)(void *)tb, piv)
                              : lapack_f64(op, ap, bp, op_, n, k, m, (double *)(void *)buf, (double *)(void *)tb, piv);
        if (r > worst) worst = r;
    }
    xcs_lapack_leave();
    free(buf);
    if (worst == LA_SINGULAR) return xcs_error(XCS_ERR_LINALG, "%s: Singular matrix", xcs_op_name(op));
    if (worst == LA_NOT_PD) return xcs_error(XCS_ERR_LINALG, "cholesky: Matrix is not positive definite");
    return XCS_OK;
}
#endif

xcs_status xcs_cpu_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out) {
    const xcs_tensor *a = in[0];
    const xcs_dtype dt = a->dtype;
    if ((dt != XCS_F32 && dt != XCS_F64) || a->ndim < 2 || out->dtype != dt || !xcs_tensor_is_contiguous(a) ||
        !xcs_tensor_is_contiguous(out) || (n_in == 2 && (in[1]->dtype != dt || !xcs_tensor_is_contiguous(in[1]))))
        return xcs_error(XCS_ERR_INTERNAL, "cpu %s: bad operands", xcs_op_name(op));
    if (op == XCS_OP_EIGH || op == XCS_OP_SVD || op == XCS_OP_QR || op == XCS_OP_EIGVALSH || op == XCS_OP_SVDVALS)
        return xcs_cpu_eigh_svd(op, a, out);
    const int64_t n = a->shape[a->ndim - 1], k = op == XCS_OP_SOLVE ? in[1]->shape[in[1]->ndim - 1] : 0;
    int64_t batch = 1;
    for (int d = 0; d < a->ndim - 2; d++) batch *= a->shape[d];
    if (batch == 0) return XCS_OK;
#ifdef XCS_HAVE_LAPACK
    /* a batch of LA_OWN_BATCH_MIN matrices or more keeps the loops longer (lapack.h) */
    const bool own = op != XCS_OP_CHOLESKY && n <= LA_OWN_BATCH_MAX && batch >= LA_OWN_BATCH_MIN;
    if (n >= xcs_linalg_lapack_min(op) && !own && n < ((int64_t)1 << 31) / (n > 0 ? n : 1))
        return lapack_all(op, in, out, n, k, batch);
#endif
    int nt = 1;
#ifdef _OPENMP
    if (batch > 1 && batch * n * n * (n + k) >= XCS_CPU_PAR_MIN) nt = omp_get_max_threads();
#endif
    if (nt > batch) nt = (int)batch;
    const size_t es = xcs_dtype_size(dt), per = (size_t)(n * n > 0 ? n * n : 1) * es;
    char *scratch = malloc(per * (size_t)nt);
    if (!scratch) return xcs_error(XCS_ERR_MEMORY, "%s: cannot allocate %zu bytes", xcs_op_name(op), per * (size_t)nt);
    const void *ap = xcs_tensor_data(a), *bp = n_in == 2 ? xcs_tensor_data(in[1]) : NULL;
    void *op_ = xcs_tensor_data(out);
    int worst = LA_OK;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(max : worst)
#endif
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), T = omp_get_num_threads();
#endif
        const int64_t m0 = batch * t / T, m1 = batch * (t + 1) / T;
        int r = dt == XCS_F32 ? batch_f32(op, ap, bp, op_, n, k, m0, m1, (float *)(void *)(scratch + per * (size_t)t))
                              : batch_f64(op, ap, bp, op_, n, k, m0, m1, (double *)(void *)(scratch + per * (size_t)t));
        if (r > worst) worst = r;
    }
    free(scratch);
    if (worst == LA_SINGULAR) return xcs_error(XCS_ERR_LINALG, "%s: Singular matrix", xcs_op_name(op));
    if (worst == LA_NOT_PD) return xcs_error(XCS_ERR_LINALG, "cholesky: Matrix is not positive definite");
    return XCS_OK;
}
