/* linalg_jacobi.c — the CPU's symmetric eigendecomposition, singular
 * value decomposition and QR (xcs_backend.linalg, ops EIGH, SVD, QR): QR
 * by Householder reflections as LAPACK's geqrf/orgqr (its signs); the
 * others by Jacobi rotations: cyclic two-sided Jacobi on the symmetric matrix built from
 * the lower triangle (eigh), one-sided Jacobi (Hestenes) on the columns
 * (svd).  Both converge quadratically and are accurate to the last bits of
 * the small singular values / eigenvalues; they cost O(n^3) a sweep, a few
 * sweeps, so they suit the small and medium matrices of a batch (each
 * matrix on one thread, threads over the batch).
 *
 * Packed outputs (one tensor per op; ember.xcs.numpy slices them):
 *   EIGH  [..., n + 1, n]: row 0 the eigenvalues, ascending; rows 1.. the
 *         eigenvectors as columns (v[:, j] for w[j]);
 *   SVD   [..., m + 1 + n, k], k = min(m, n): rows 0..m-1 U, row m the
 *         singular values, descending, rows m+1.. V (A = U diag(s) V^T);
 *   QR    [..., m + n, k]: rows 0..m-1 Q, rows m.. R^T;
 *   EIGVALSH [..., n], SVDVALS [..., k]: the values alone (the rotations
 *         not accumulated into vectors).
 * Eigen- and singular vectors are unique up to sign (and within repeated
 * values): these are not LAPACK's signs.  Where the BLAS build has LAPACK,
 * its syevd / gesdd (divide and conquer; jobz 'N' for the values alone) /
 * geqrf + orgqr do it instead from xcs_linalg_lapack_min(op) rows and
 * columns on (src/core/linalg.c: Jacobi's sweeps cost ~10x syevd's flops). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "lapack.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define JACOBI_SWEEPS 80

#define JACOBI_ROUTINES(SFX, T, EPS, FABS, SQRT)                                                     \
    /* Columns p, q of M (rows x ld, row-major) rotated: (c x - s y, s x + c y). */                   \
    static void rot_cols_##SFX(T *M, int64_t rows, int64_t ld, int64_t p, int64_t q, T c, T s) {      \
        for (int64_t k = 0; k < rows; k++) {                                                         \
            const T x = M[k * ld + p], y = M[k * ld + q];                                            \
            M[k * ld + p] = c * x - s * y, M[k * ld + q] = s * x + c * y;                            \
        }                                                                                            \
    }                                                                                                \
    /* vals (n) sorted (ascending, or descending when desc), the columns of \
     * M1 (r1 x n) and M2 (r2 x n; NULL: none) with them. */                \
    static void sort_cols_##SFX(T *vals, int64_t n, bool desc, T *M1, int64_t r1, T *M2, int64_t r2) {  \
        for (int64_t i = 0; i < n; i++) {                                                            \
            int64_t best = i;                                                                        \
            for (int64_t j = i + 1; j < n; j++)                                                      \
                if (desc ? vals[j] > vals[best] : vals[j] < vals[best]) best = j;                    \
            if (best == i) continue;                                                                 \
            T t = vals[i];                                                                           \
            vals[i] = vals[best], vals[best] = t;                                                    \
            for (int64_t k = 0; k < r1; k++)                                                         \
                t = M1[k * n + i], M1[k * n + i] = M1[k * n + best], M1[k * n + best] = t;           \
            for (int64_t k = 0; M2 && k < r2; k++)                                                   \
                t = M2[k * n + i], M2[k * n + i] = M2[k * n + best], M2[k * n + best] = t;           \
        }                                                                                            \
    }                                                                                                \
    /* w (n), V (n x n, columns; NULL: the values alone) of the symmetric  \
     * matrix from a's lower triangle; A: n x n scratch. */                \
    static void eigh_##SFX(const T *a, T *A, T *w, T *V, int64_t n) {                                \
        for (int64_t i = 0; i < n; i++)                                                              \
            for (int64_t j = 0; j < n; j++) {                                                        \
                A[i * n + j] = i >= j ? a[i * n + j] : a[j * n + i];                                 \
                if (V) V[i * n + j] = i == j;                                                        \
            }                                                                                        \
        for (int sweep = 0; sweep < JACOBI_SWEEPS; sweep++) {                                        \
            int rotated = 0;                                                                         \
            for (int64_t p = 0; p < n; p++)                                                          \
                for (int64_t q = p + 1; q < n; q++) {                                                \
                    const T apq = A[p * n + q], app = A[p * n + p], aqq = A[q * n + q];              \
                    if (apq == 0) continue;                                                          \
                    if (FABS(apq) <= EPS * SQRT(FABS(app)) * SQRT(FABS(aqq))) {                      \
                        A[p * n + q] = A[q * n + p] = 0; /* below the diagonal's rounding */         \
                        continue;                                                                    \
                    }                                                                                \
                    rotated = 1;                                                                     \
                    const T theta = (aqq - app) / (2 * apq);                                         \
                    T t = 1 / (FABS(theta) + SQRT(theta * theta + 1));                               \
                    if (theta < 0) t = -t;                                                           \
                    if (!(FABS(theta) < (T)1e150)) t = (T)0.5 / theta;                               \
                    const T c = 1 / SQRT(t * t + 1), s = t * c;                                      \
                    rot_cols_##SFX(A, n, n, p, q, c, s); /* A P: columns p, q */                     \
                    for (int64_t k = 0; k < n; k++) { /* P^T (A P): rows p, q */                     \
                        const T x = A[p * n + k], y = A[q * n + k];                                  \
                        A[p * n + k] = c * x - s * y, A[q * n + k] = s * x + c * y;                  \
                    }                                                                                \
                    A[p * n + q] = A[q * n + p] = 0;                                                 \
                    if (V) rot_cols_##SFX(V, n, n, p, q, c, s);                                      \
                }                                                                                    \
            if (!rotated) break;                                                                     \
        }                                                                                            \
        for (int64_t i = 0; i < n; i++) w[i] = A[i * n + i];                                         \
        sort_cols_##SFX(w, n, false, V, V ? n : 0, NULL, 0);                                         \
    }                                                                                                \
    /* U (m x n, in place of a copy of a, m >= n), s (n), V (n x n) with    \
     * a = U diag(s) V^T; s descending.  V NULL: s alone (U left as the     \
     * rotated columns). */                                                \
    static void svd_tall_##SFX(T *U, T *s, T *V, int64_t m, int64_t n) {                             \
        for (int64_t i = 0; V && i < n; i++)                                                         \
            for (int64_t j = 0; j < n; j++) V[i * n + j] = i == j;                                   \
        for (int sweep = 0; sweep < JACOBI_SWEEPS; sweep++) {                                        \
            int rotated = 0;                                                                         \
            for (int64_t p = 0; p < n; p++)                                                          \
                for (int64_t q = p + 1; q < n; q++) {                                                \
                    T alpha = 0, beta = 0, gamma = 0;                                                \
                    for (int64_t i = 0; i < m; i++) {                                                \
                        const T x = U[i * n + p], y = U[i * n + q];                                  \
                        alpha += x * x, beta += y * y, gamma += x * y;                               \
                    }                                                                                \
                    if (gamma == 0 || FABS(gamma) <= EPS * SQRT(alpha) * SQRT(beta)) continue;       \
                    rotated = 1;                                                                     \
                    const T zeta = (beta - alpha) / (2 * gamma);                                     \
                    T t = 1 / (FABS(zeta) + SQRT(1 + zeta * zeta));                                  \
                    if (zeta < 0) t = -t;                                                            \
                    if (!(FABS(zeta) < (T)1e150)) t = (T)0.5 / zeta;                                 \
                    const T c = 1 / SQRT(1 + t * t), sn = c * t;                                     \
                    rot_cols_##SFX(U, m, n, p, q, c, sn);                                            \
                    if (V) rot_cols_##SFX(V, n, n, p, q, c, sn);                                     \
                }                                                                                    \
            if (!rotated) break;                                                                     \
        }                                                                                            \
        for (int64_t j = 0; j < n; j++) {                                                            \
            T nrm = 0;                                                                               \
            for (int64_t i = 0; i < m; i++) nrm += U[i * n + j] * U[i * n + j];                      \
            s[j] = SQRT(nrm);                                                                        \
            for (int64_t i = 0; V && s[j] > 0 && i < m; i++) U[i * n + j] /= s[j];                   \
        }                                                                                            \
        sort_cols_##SFX(s, n, true, U, V ? m : 0, V, n);                                             \
        if (!V) return;                                                                              \
        for (int64_t j = 0; j < n; j++) { /* a zero value's column: an orthonormal completion */     \
            if (s[j] > 0) continue;                                                                  \
            for (int64_t e = 0; e < m; e++) {                                                        \
                for (int64_t i = 0; i < m; i++) U[i * n + j] = i == e;                               \
                for (int64_t l = 0; l < n; l++) {                                                    \
                    if (l == j || (s[l] == 0 && l > j)) continue;                                    \
                    T d = 0;                                                                         \
                    for (int64_t i = 0; i < m; i++) d += U[i * n + l] * U[i * n + j];                \
                    for (int64_t i = 0; i < m; i++) U[i * n + j] -= d * U[i * n + l];                \
                }                                                                                    \
                T nrm = 0;                                                                           \
                for (int64_t i = 0; i < m; i++) nrm += U[i * n + j] * U[i * n + j];                  \
                if (nrm > (T)0.25) {                                                                 \
                    nrm = SQRT(nrm);                                                                 \
                    for (int64_t i = 0; i < m; i++) U[i * n + j] /= nrm;                             \
                    break;                                                                           \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
    /* Q (m x k) and R^T (n x k) of a (m x n) into o, by Householder        \
     * reflections as LAPACK's geqrf/orgqr make them (a zero tail: no      \
     * reflection); R: m x n scratch, v: m, taus: k. */                     \
    static void qr_##SFX(const T *a, T *o, int64_t m, int64_t n, T *R, T *v, T *taus) {              \
        const int64_t k = m < n ? m : n;                                                             \
        memcpy(R, a, (size_t)(m * n) * sizeof *R);                                                   \
        for (int64_t j = 0; j < k; j++) {                                                            \
            T tail = 0;                                                                              \
            for (int64_t i = j + 1; i < m; i++) tail += R[i * n + j] * R[i * n + j];                 \
            const T alpha = R[j * n + j];                                                            \
            taus[j] = 0;                                                                             \
            if (tail == 0) continue;                                                                 \
            const T nrm = SQRT(alpha * alpha + tail), beta = alpha >= 0 ? -nrm : nrm;                \
            const T tau = (beta - alpha) / beta, scale = 1 / (alpha - beta);                         \
            for (int64_t i = j + 1; i < m; i++) R[i * n + j] *= scale; /* v, v_j = 1 implied */      \
            for (int64_t c = j + 1; c < n; c++) { /* (I - tau v v^T) on the columns to the right */  \
                T d = R[j * n + c];                                                                  \
                for (int64_t i = j + 1; i < m; i++) d += R[i * n + j] * R[i * n + c];                \
                d *= tau;                                                                            \
                R[j * n + c] -= d;                                                                   \
                for (int64_t i = j + 1; i < m; i++) R[i * n + c] -= d * R[i * n + j];                \
            }                                                                                        \
            R[j * n + j] = beta, taus[j] = tau;                                                      \
        }                                                                                            \
        T *Q = o; /* m x k: H_0 ... H_{k-1} applied to I's first k columns */                        \
        for (int64_t i = 0; i < m; i++)                                                              \
            for (int64_t c = 0; c < k; c++) Q[i * k + c] = i == c;                                   \
        for (int64_t j = k - 1; j >= 0; j--) {                                                       \
            if (taus[j] == 0) continue;                                                              \
            v[j] = 1;                                                                                \
            for (int64_t i = j + 1; i < m; i++) v[i] = R[i * n + j];                                 \
            for (int64_t c = j; c < k; c++) {                                                        \
                T d = 0;                                                                             \
                for (int64_t i = j; i < m; i++) d += v[i] * Q[i * k + c];                            \
                d *= taus[j];                                                                        \
                for (int64_t i = j; i < m; i++) Q[i * k + c] -= d * v[i];                            \
            }                                                                                        \
        }                                                                                            \
        T *Rt = o + m * k; /* R^T: n x k, R's zeros below the diagonal */                            \
        for (int64_t c = 0; c < n; c++)                                                              \
            for (int64_t r = 0; r < k; r++) Rt[c * k + r] = r <= c ? R[r * n + c] : 0;               \
    }                                                                                                \
    /* Matrix `b` of the batch into its packed output (see the file        \
     * comment); scratch: (m + n) * k + 2 n^2 ... elements (jacobi_need). */ \
    static void one_##SFX(xcs_op op, const T *a, T *out, int64_t m, int64_t n, int64_t b, T *scratch) {  \
        const T *ab = a + b * m * n;                                                                 \
        if (op == XCS_OP_EIGH || op == XCS_OP_EIGVALSH) {                                            \
            T *o = out + b * (op == XCS_OP_EIGH ? n + 1 : 1) * n, *A = scratch;                      \
            eigh_##SFX(ab, A, o, op == XCS_OP_EIGH ? o + n : NULL, n);                               \
            return;                                                                                  \
        }                                                                                            \
        if (op == XCS_OP_QR) {                                                                       \
            const int64_t kq = m < n ? m : n;                                                        \
            T *R = scratch, *v = R + m * n, *taus = v + m;                                           \
            qr_##SFX(ab, out + b * (m + n) * kq, m, n, R, v, taus);                                  \
            return;                                                                                  \
        }                                                                                            \
        const int64_t k = m < n ? m : n, rows = m >= n ? m : n; /* the tall side */                  \
        T *U = scratch, *V = U + rows * k, *s = V + k * k;                                           \
        if (m >= n) {                                                                                \
            memcpy(U, ab, (size_t)(m * n) * sizeof *U);                                              \
        } else { /* a^T = V s U^T: the tall one's U is a's V */                                      \
            for (int64_t i = 0; i < m; i++)                                                          \
                for (int64_t j = 0; j < n; j++) U[j * m + i] = ab[i * n + j];                        \
        }                                                                                            \
        if (op == XCS_OP_SVDVALS) {                                                                  \
            svd_tall_##SFX(U, out + b * k, NULL, rows, k);                                           \
            return;                                                                                  \
        }                                                                                            \
        svd_tall_##SFX(U, s, V, rows, k);                                                            \
        T *o = out + b * (m + 1 + n) * k;                                                            \
        const T *ua = m >= n ? U : V, *va = m >= n ? V : U;                                          \
        memcpy(o, ua, (size_t)(m * k) * sizeof *o);                                                  \
        memcpy(o + m * k, s, (size_t)k * sizeof *o);                                                 \
        memcpy(o + (m + 1) * k, va, (size_t)(n * k) * sizeof *o);                                    \
    }
JACOBI_ROUTINES(f32, float, FLT_EPSILON, fabsf, sqrtf)
JACOBI_ROUTINES(f64, double, DBL_EPSILON, fabs, sqrt)

#ifdef XCS_HAVE_LAPACK
/* Matrix b through LAPACK: syevd('V', 'U') of the column-major upper
 * triangle (our lower one), its eigenvectors column-major (transposed
 * into ours); gesdd('S') of a^T (n x m column-major) = U' s V'^T, so a's U
 * is V' (VT' column-major is U row-major: copied as it is) and a's V is
 * U' (transposed).  scratch: work (queried once by the caller: lwork),
 * iwork.  Returns LAPACK's info. */
#define LAPACK_EIG_ROUTINES(SFX, T, P)                                                                \
    static blasint lapack_one_##SFX(xcs_op op, const T *a, T *out, int64_t m64, int64_t n64, int64_t b, \
                                    T *A, T *U, T *work, blasint lwork, blasint *iwork, blasint liwork) { \
        const blasint m = (blasint)m64, n = (blasint)n64;                                            \
        const int64_t k64 = m64 < n64 ? m64 : n64;                                                   \
        const blasint k = (blasint)k64;                                                              \
        blasint info = 0;                                                                            \
        if (op == XCS_OP_QR) { /* a column-major copy; geqrf, then orgqr's Q; tau in U */             \
            const T *ab = a + b * m64 * n64;                                                         \
            for (int64_t r = 0; r < m64; r++)                                                        \
                for (int64_t c = 0; c < n64; c++) A[c * m64 + r] = ab[r * n64 + c];                  \
            P##geqrf_(&m, &n, A, &m, U, work, &lwork, &info);                                        \
            T *o = out + b * (m64 + n64) * k64, *Rt = o + m64 * k64;                                 \
            for (int64_t c = 0; c < n64; c++)                                                        \
                for (int64_t r = 0; r < k64; r++) Rt[c * k64 + r] = r <= c ? A[c * m64 + r] : 0;     \
            if (!info) P##orgqr_(&m, &k, &k, A, &m, U, work, &lwork, &info);                          \
            for (int64_t i = 0; i < m64; i++)                                                        \
                for (int64_t p = 0; p < k64; p++) o[i * k64 + p] = A[p * m64 + i];                   \
            return info;                                                                             \
        }                                                                                            \
        memcpy(A, a + b * m64 * n64, (size_t)(m64 * n64) * sizeof *A);                               \
        if (op == XCS_OP_EIGVALSH) {                                                                 \
            P##syevd_("N", "U", &n, A, &n, out + b * n64, work, &lwork, iwork, &liwork, &info, 1, 1); \
            return info;                                                                             \
        }                                                                                            \
        if (op == XCS_OP_SVDVALS) {                                                                  \
            P##gesdd_("N", &n, &m, A, &n, out + b * k64, U, &n, U, &k, work, &lwork, iwork, &info, 1); \
            return info;                                                                             \
        }                                                                                            \
        if (op == XCS_OP_EIGH) {                                                                     \
            T *o = out + b * (n64 + 1) * n64;                                                        \
            P##syevd_("V", "U", &n, A, &n, o, work, &lwork, iwork, &liwork, &info, 1, 1);            \
            for (int64_t i = 0; i < n64; i++)                                                        \
                for (int64_t j = 0; j < n64; j++) o[n64 + i * n64 + j] = A[j * n64 + i];            \
            return info;                                                                             \
        }                                                                                            \
        T *o = out + b * (m64 + 1 + n64) * k64;                                                      \
        /* a^T is n x m column-major: U' n x k (ldu n), VT' k x m (ldvt k) straight into o */     \
        P##gesdd_("S", &n, &m, A, &n, o + m64 * k64, U, &n, o, &k, work, &lwork, iwork, &info, 1);  \
        for (int64_t i = 0; i < n64; i++)                                                            \
            for (int64_t p = 0; p < k64; p++) o[(m64 + 1) * k64 + i * k64 + p] = U[p * n64 + i];     \
        return info;                                                                                 \
    }                                                                                                \
    /* The workspace sizes LAPACK asks for (query calls). */                 \
    static void lapack_query_##SFX(xcs_op op, int64_t m64, int64_t n64, blasint *lwork, blasint *liwork) { \
        const blasint m = (blasint)m64, n = (blasint)n64, k = (blasint)(m64 < n64 ? m64 : n64), q = -1;    \
        blasint info = 0, iw = 0;                                                                    \
        T w = 0, dummy = 0;                                                                          \
        const char *jobz = op == XCS_OP_EIGVALSH || op == XCS_OP_SVDVALS ? "N" : op == XCS_OP_SVD ? "S" : "V"; \
        if (op == XCS_OP_EIGH || op == XCS_OP_EIGVALSH) {                                            \
            P##syevd_(jobz, "U", &n, &dummy, &n, &dummy, &w, &q, &iw, &q, &info, 1, 1);              \
            *liwork = iw;                                                                            \
        } else if (op == XCS_OP_QR) {                                                                \
            T w2 = 0;                                                                                \
            P##geqrf_(&m, &n, &dummy, &m, &dummy, &w, &q, &info);                                    \
            P##orgqr_(&m, &k, &k, &dummy, &m, &dummy, &w2, &q, &info);                               \
            if (w2 > w) w = w2;                                                                      \
            *liwork = 1;                                                                             \
        } else {                                                                                     \
            P##gesdd_(jobz, &n, &m, &dummy, &n, &dummy, &dummy, &n, &dummy, &k, &w, &q, &iw, &info, 1); \
            *liwork = 8 * k;                                                                         \
        }                                                                                            \
        *lwork = (blasint)w + 1;                                                                     \
    }
LAPACK_EIG_ROUTINES(f32, float, s)
LAPACK_EIG_ROUTINES(f64, double, d)

static xcs_status lapack_eigh_svd(xcs_op op, const xcs_tensor *a, xcs_tensor *out, int64_t m, int64_t n,
                                  int64_t batch) {
    const bool f32 = a->dtype == XCS_F32;
    const size_t es = xcs_dtype_size(a->dtype);
    blasint lwork = 0, liwork = 0;
    xcs_lapack_enter(m < n ? m : n); /* every matrix in order, under the LAPACK lock */
    if (f32) lapack_query_f32(op, m, n, &lwork, &liwork);
    else lapack_query_f64(op, m, n, &lwork, &liwork);
    const size_t need = ((size_t)(m * n) + (size_t)(n * (m < n ? m : n)) + (size_t)lwork) * es +
                        (size_t)(liwork > 0 ? liwork : 1) * sizeof(blasint);
    char *A = malloc(need);
    if (!A) {
        xcs_lapack_leave();
        return xcs_error(XCS_ERR_MEMORY, "%s: cannot allocate %zu bytes", xcs_op_name(op), need);
    }
    char *U = A + (size_t)(m * n) * es, *work = U + (size_t)(n * (m < n ? m : n)) * es;
    blasint *iwork = (blasint *)(void *)(work + (size_t)lwork * es);
    const void *ap = xcs_tensor_data(a);
    void *op_ = xcs_tensor_data(out);
    blasint worst = 0;
    for (int64_t b = 0; b < batch; b++) {
        blasint info = f32 ? lapack_one_f32(op, ap, op_, m, n, b, (float *)(void *)A, (float *)(void *)U,
                                            (float *)(void *)work, lwork, iwork, liwork)
                           : lapack_one_f64(op, ap, op_, m, n, b, (double *)(void *)A, (double *)(void *)U,
                                            (double *)(void *)work, lwork, iwork, liwork);
        if (info > worst) worst = info;
    }
    xcs_lapack_leave();
    free(A);
    if (worst > 0) return xcs_error(XCS_ERR_VALUE, "%s: the decomposition did not converge", xcs_op_name(op));
    return XCS_OK;
}
#endif

xcs_status xcs_cpu_eigh_svd(xcs_op op, const xcs_tensor *a, xcs_tensor *out) {
    const int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
    const int64_t k = m < n ? m : n, rows = m > n ? m : n;
    int64_t batch = 1;
    for (int d = 0; d < a->ndim - 2; d++) batch *= a->shape[d];
    if (batch == 0 || k == 0) return XCS_OK; /* (an empty QR's Q or R^T has no elements either) */
#ifdef XCS_HAVE_LAPACK
    const int64_t from = xcs_linalg_lapack_min(op); /* src/core/linalg.c */
    if (k >= from && rows < ((int64_t)1 << 30) / (rows > 0 ? rows : 1)) return lapack_eigh_svd(op, a, out, m, n, batch);
#endif
    const size_t es = xcs_dtype_size(a->dtype);
    const size_t per = (op == XCS_OP_EIGH || op == XCS_OP_EIGVALSH ? (size_t)(n * n)
                        : op == XCS_OP_QR ? (size_t)(m * n + m + k)
                                          : (size_t)(rows * k + k * k + k)) * es;
    int nt = 1;
#ifdef _OPENMP
    if (batch > 1 && batch * rows * k * k * 8 >= XCS_CPU_PAR_MIN) nt = omp_get_max_threads();
#endif
    if (nt > batch) nt = (int)batch;
    char *scratch = malloc(per * (size_t)nt);
    if (!scratch) return xcs_error(XCS_ERR_MEMORY, "%s: cannot allocate %zu bytes", xcs_op_name(op), per * (size_t)nt);
    const void *ap = xcs_tensor_data(a);
    void *op_ = xcs_tensor_data(out);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
#endif
    for (int64_t b = 0; b < batch; b++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        char *s = scratch + per * (size_t)t;
        if (a->dtype == XCS_F32) one_f32(op, ap, op_, m, n, b, (float *)(void *)s);
        else one_f64(op, ap, op_, m, n, b, (double *)(void *)s);
    }
    free(scratch);
    return XCS_OK;
}
