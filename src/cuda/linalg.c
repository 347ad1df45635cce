/* linalg.c — the CUDA C of solve, slogdet and cholesky (codegen.h): a
 * block per matrix, the CPU's algorithms (src/host/linalg.c) with their
 * loops spread over the block's threads.
 *
 * LU (SOLVE, SLOGDET): for each column c, the block finds the pivot (the
 * first largest |w[r][c]|, r >= c, NaNs skipped unless w[c][c] is one: the
 * CPU's scan, as a tree over per-thread candidates that keeps the lower row
 * on ties), swaps rows c and p of w (and of x), and eliminates below the
 * pivot: each (row, column) element of the trailing block (and of x) is one
 * thread's, with the CPU's multiplier and its skip of zero multipliers.
 * SOLVE then substitutes back column by column (x[c] /= u[c][c], then the
 * rows above take u[r][c] x[c] off: the same terms as the CPU's, summed in
 * the other order).  CHOLESKY: column j's pivot on one thread, then the
 * rows below on all of them, each summing its products in the CPU's order.
 * EIGH: the CPU's cyclic Jacobi (src/host/linalg_jacobi.c), pair by pair in
 * its order: thread 0 decides each rotation, all of them apply it to the
 * two columns, then the two rows (and V's columns); thread 0 then sorts.
 * Decisions (singular, not positive definite) are read by every thread
 * after a barrier, so the block takes them together. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "codegen.h"

#define LINALG_ARGS                                                                                      \
    "struct xcs_linalg_args {\n"                                                                         \
    "    const void *a, *b;\n"                                                                           \
    "    void *out, *work;\n"                                                                            \
    "    long long batch, m, n, k, work_per;\n"                                                          \
    "    unsigned int *err;\n"                                                                           \
    "    const long long *piv;\n"                                                                       \
    "    const int *info;\n"                                                                            \
    "};\n"

/* Device helpers of the Jacobi kernels (eigh, svd), after the math
 * prelude: a rotation's (c, s) from its angle's cotangent-like ratio (the
 * CPU's formulas), and a selection sort of n values with the columns of
 * M1 (r1 x ld) and M2 (r2 x ld; NULL: none) following them. */
#define JACOBI_HELPERS                                                                                   \
    "__device__ void xcs_rotation(T theta, T *c, T *s) {\n"                                             \
    "    T t = 1 / (XCS_FABS(theta) + XCS_SQRT(theta * theta + 1));\n"                                   \
    "    if (theta < 0) t = -t;\n"                                                                      \
    "    if (!(XCS_FABS(theta) < (T)1e150)) t = (T)0.5 / theta;\n"                                       \
    "    *c = 1 / XCS_SQRT(t * t + 1);\n"                                                                \
    "    *s = t * *c;\n"                                                                                 \
    "}\n"                                                                                               \
    "__device__ void xcs_sort_cols(T *v, long long n, bool desc, T *M1, long long r1, T *M2, long long r2,\n" \
    "                              long long ld) {\n"                                                   \
    "    for (long long i = 0; i < n; i++) {\n"                                                          \
    "        long long best = i;\n"                                                                      \
    "        for (long long j = i + 1; j < n; j++)\n"                                                    \
    "            if (desc ? v[j] > v[best] : v[j] < v[best]) best = j;\n"                                \
    "        if (best == i) continue;\n"                                                                 \
    "        T t = v[i];\n"                                                                              \
    "        v[i] = v[best], v[best] = t;\n"                                                             \
    "        for (long long r = 0; r < r1; r++) t = M1[r * ld + i], M1[r * ld + i] = M1[r * ld + best], M1[r * ld + best] = t;\n" \
    "        for (long long r = 0; M2 && r < r2; r++) t = M2[r * ld + i], M2[r * ld + i] = M2[r * ld + best], M2[r * ld + best] = t;\n" \
    "    }\n"                                                                                            \
    "}\n"

/* What the LU kernel does after the factorisation. */
static const char *lu_body(xcs_op op) {
    return op == XCS_OP_SOLVE
               ? "        if (singular) {\n"
                 "            if (threadIdx.x == 0) atomicOr(a.err, %uu);\n"
                 "            continue;\n"
                 "        }\n"
                 "        for (long long c = n - 1; c >= 0; c--) { /* back substitution with U */\n"
                 "            const T d = W[c * n + c];\n"
                 "            for (long long q = threadIdx.x; q < k; q += blockDim.x) X[c * k + q] /= d;\n"
                 "            __syncthreads();\n"
                 "            for (long long e = threadIdx.x; e < c * k; e += blockDim.x) {\n"
                 "                const long long r = e / k, q = e - r * k;\n"
                 "                X[r * k + q] -= W[r * n + c] * X[c * k + q];\n"
                 "            }\n"
                 "            __syncthreads();\n"
                 "        }\n"
               : "        if (threadIdx.x == 0) {\n"
                 "            T *o = (T *)a.out + 2 * m;\n"
                 "            if (singular) {\n"
                 "                o[0] = 0, o[1] = -XCS_INF;\n"
                 "            } else {\n"
                 "                T logdet = 0;\n"
                 "                for (long long c = 0; c < n; c++) {\n"
                 "                    const T d = W[c * n + c];\n"
                 "                    if (d < 0) sign = -sign;\n"
                 "                    logdet += XCS_LOG(XCS_FABS(d));\n"
                 "                }\n"
                 "                o[0] = (T)sign, o[1] = logdet;\n"
                 "            }\n"
                 "        }\n"
                 "        __syncthreads();\n";
}

/* The kernels around a cuSOLVER factorisation (codegen.h: BEFORE, AFTER):
 * grid-stride loops over the batch's elements (its matrices for the infos
 * and slogdet's sums), so every thread of a big grid has work. */
static size_t stage_codegen(const xcs_cuda_linalg_spec *ls, const char *math, char *buf, size_t cap) {
    const xcs_op op = ls->op;
    if (op != XCS_OP_SOLVE && op != XCS_OP_SLOGDET && op != XCS_OP_CHOLESKY) {
        xcs_error(XCS_ERR_UNSUPPORTED, "%s: no kernel around a cuSOLVER factorisation", xcs_op_name(op));
        return 0;
    }
    const bool before = ls->stage == XCS_CUDA_LA_BEFORE;
    char body[2048];
    if (before) /* D: the factor's input (work a matrix, or out for cholesky); SOLVE's b after it, column-major */
        snprintf(body, sizeof body,
                 "    T *D = (T *)%s;\n"
                 "    const long long ds = %s, per = n * n + n * k;\n"
                 "    for (long long e = gid; e < a.batch * per; e += step) {\n"
                 "        const long long m = e / per, i = e - m * per;\n"
                 "        if (i < n * n) {\n"
                 "            D[m * ds + i] = ((const T *)a.a)[m * n * n + i];\n"
                 "        } else {\n"
                 "            const long long t = i - n * n, j = t / n, r = t - j * n;\n"
                 "            D[m * ds + i] = ((const T *)a.b)[m * n * k + r * k + j];\n"
                 "        }\n"
                 "    }\n",
                 op == XCS_OP_CHOLESKY ? "a.out" : "a.work", op == XCS_OP_CHOLESKY ? "n * n" : "a.work_per");
    else if (op == XCS_OP_SOLVE)
        snprintf(body, sizeof body,
                 "    for (long long m = gid; m < a.batch; m += step)\n"
                 "        if (a.info[m] > 0) atomicOr(a.err, %uu);\n"
                 "    for (long long e = gid; e < a.batch * n * k; e += step) { /* x: column-major to row-major */\n"
                 "        const long long m = e / (n * k), i = e - m * (n * k), r = i / k, j = i - r * k;\n"
                 "        ((T *)a.out)[e] = ((const T *)a.work)[m * a.work_per + n * n + j * n + r];\n"
                 "    }\n",
                 XCS_CUDA_ERR_SINGULAR);
    else if (op == XCS_OP_CHOLESKY)
        snprintf(body, sizeof body,
                 "    for (long long m = gid; m < a.batch; m += step)\n"
                 "        if (a.info[m] > 0) atomicOr(a.err, %uu);\n"
                 "    for (long long e = gid; e < a.batch * n * n; e += step) { /* zeros above the diagonal */\n"
                 "        const long long i = e %% (n * n), r = i / n;\n"
                 "        if (i - r * n > r) ((T *)a.out)[e] = 0;\n"
                 "    }\n",
                 XCS_CUDA_ERR_NOT_PD);
    else /* the host's LAPACK path's sums, a thread a matrix */
        snprintf(body, sizeof body, "%s",
                 "    for (long long m = gid; m < a.batch; m += step) {\n"
                 "        T *o = (T *)a.out + 2 * m;\n"
                 "        if (a.info[m] > 0) {\n"
                 "            o[0] = 0, o[1] = -XCS_INF;\n"
                 "            continue;\n"
                 "        }\n"
                 "        const T *W = (const T *)a.work + m * a.work_per;\n"
                 "        const long long *p = a.piv + m * n;\n"
                 "        int sign = 1;\n"
                 "        T logdet = 0;\n"
                 "        for (long long c = 0; c < n; c++) {\n"
                 "            const T d = W[c * n + c];\n"
                 "            if (p[c] != c + 1) sign = -sign;\n"
                 "            if (d < 0) sign = -sign;\n"
                 "            logdet += XCS_LOG(XCS_FABS(d));\n"
                 "        }\n"
                 "        o[0] = (T)sign, o[1] = logdet;\n"
                 "    }\n");
    int w = snprintf(buf, cap,
                     "/* xcs %s (%s): %s a cuSOLVER factorisation */\n" LINALG_ARGS "%s"
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_linalg_args a) {\n"
                     "    const long long n = a.n, k = %s;\n"
                     "    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                     "    const long long step = (long long)gridDim.x * blockDim.x;\n"
                     "%s"
                     "}\n",
                     xcs_op_name(op), xcs_dtype_name(ls->dtype), before ? "before" : "after", math, XCS_CUDA_BLOCK,
                     op == XCS_OP_SOLVE ? "a.k" : "0", body);
    return xcs_cuda_written(w, "linalg kernel");
}

size_t xcs_cuda_linalg_codegen(const xcs_cuda_linalg_spec *ls, char *buf, size_t cap) {
    const bool f32 = ls->dtype == XCS_F32;
    if (!f32 && ls->dtype != XCS_F64) {
        xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel for dtype %s", xcs_op_name(ls->op),
                  xcs_dtype_name(ls->dtype));
        return 0;
    }
    char math[512];
    snprintf(math, sizeof math,
             "typedef %s T;\n"
             "#define XCS_FABS %s\n"
             "#define XCS_SQRT %s\n"
             "#define XCS_LOG %s\n"
             "#define XCS_INF %s\n",
             f32 ? "float" : "double", f32 ? "fabsf" : "fabs", f32 ? "sqrtf" : "sqrt", f32 ? "logf" : "log",
             f32 ? "__int_as_float(0x7f800000)" : "__longlong_as_double(0x7ff0000000000000ll)");
    if (ls->stage != XCS_CUDA_LA_WHOLE) return stage_codegen(ls, math, buf, cap);
    const char *eps = f32 ? "1.1920928955078125e-07f" : "2.220446049250313080847e-16"; /* FLT_, DBL_EPSILON */
    int w;
    if (ls->op == XCS_OP_CHOLESKY) {
        w = snprintf(
            buf, cap,
            "/* xcs cholesky (%s): a block per matrix, L column by column */\n" LINALG_ARGS "%s"
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_linalg_args a) {\n"
            "    __shared__ T s_d;\n"
            "    __shared__ int s_ok;\n"
            "    const long long n = a.n;\n"
            "    for (long long m = blockIdx.x; m < a.batch; m += gridDim.x) {\n"
            "        const T *A = (const T *)a.a + m * n * n;\n"
            "        T *L = (T *)a.out + m * n * n;\n"
            "        for (long long i = threadIdx.x; i < n * n; i += blockDim.x) L[i] = 0;\n"
            "        __syncthreads();\n"
            "        for (long long j = 0; j < n; j++) {\n"
            "            const T *lj = L + j * n;\n"
            "            if (threadIdx.x == 0) {\n"
            "                T s = A[j * n + j];\n"
            "                for (long long p = 0; p < j; p++) s -= lj[p] * lj[p];\n"
            "                s_ok = s > 0; /* false for NaN too */\n"
            "                s_d = s_ok ? XCS_SQRT(s) : (T)0;\n"
            "                if (s_ok) L[j * n + j] = s_d;\n"
            "                else atomicOr(a.err, %uu);\n"
            "            }\n"
            "            __syncthreads();\n"
            "            if (!s_ok) break;\n"
            "            const T d = s_d;\n"
            "            for (long long i = j + 1 + threadIdx.x; i < n; i += blockDim.x) {\n"
            "                const T *li = L + i * n;\n"
            "                T t = A[i * n + j];\n"
            "                for (long long p = 0; p < j; p++) t -= li[p] * lj[p];\n"
            "                L[i * n + j] = t / d;\n"
            "            }\n"
            "            __syncthreads();\n"
            "        }\n"
            "        __syncthreads(); /* s_ok and s_d are read before the next matrix writes them */\n"
            "    }\n"
            "}\n",
            xcs_dtype_name(ls->dtype), math, XCS_CUDA_BLOCK, XCS_CUDA_ERR_NOT_PD);
    } else if (ls->op == XCS_OP_SOLVE || ls->op == XCS_OP_SLOGDET) {
        const bool solve = ls->op == XCS_OP_SOLVE;
        char tail[2048];
        snprintf(tail, sizeof tail, lu_body(ls->op), XCS_CUDA_ERR_SINGULAR);
        w = snprintf(
            buf, cap,
            "/* xcs %s (%s): a block per matrix, LU with partial pivoting */\n" LINALG_ARGS "%s"
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_linalg_args a) {\n"
            "    __shared__ T sv[%d];\n"
            "    __shared__ long long si[%d];\n"
            "    const long long n = a.n, k = %s;\n"
            "    for (long long m = blockIdx.x; m < a.batch; m += gridDim.x) {\n"
            "        const T *A = (const T *)a.a + m * n * n;\n"
            "        T *W = (T *)a.work + m * a.work_per;\n"
            "        T *X = %s;\n"
            "        for (long long i = threadIdx.x; i < n * n; i += blockDim.x) W[i] = A[i];\n"
            "        for (long long i = threadIdx.x; i < n * k; i += blockDim.x) X[i] = ((const T *)a.b)[m * n * k + i];\n"
            "        int sign = 1;\n"
            "        bool singular = false;\n"
            "        __syncthreads();\n"
            "        for (long long c = 0; c < n; c++) {\n"
            "            /* the pivot: each thread's first largest |w[r][c]| of its rows, then the\n"
            "             * lowest row among the largest (a NaN counts as the least, but a NaN\n"
            "             * at c as the most: the CPU's strict > never replaces it) */\n"
            "            T bv = 0;\n"
            "            long long bi = -1;\n"
            "            for (long long r = c + threadIdx.x; r < n; r += blockDim.x) {\n"
            "                T v = XCS_FABS(W[r * n + c]);\n"
            "                if (v != v) v = r == c ? XCS_INF : (T)-1;\n"
            "                if (bi < 0 || v > bv) bv = v, bi = r;\n"
            "            }\n"
            "            sv[threadIdx.x] = bv, si[threadIdx.x] = bi;\n"
            "            __syncthreads();\n"
            "            for (int h = blockDim.x / 2; h > 0; h >>= 1) {\n"
            "                if (threadIdx.x < h) {\n"
            "                    const T ov = sv[threadIdx.x + h];\n"
            "                    const long long oi = si[threadIdx.x + h], mi = si[threadIdx.x];\n"
            "                    if (oi >= 0 && (mi < 0 || ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < mi)))\n"
            "                        sv[threadIdx.x] = ov, si[threadIdx.x] = oi;\n"
            "                }\n"
            "                __syncthreads();\n"
            "            }\n"
            "            const long long p = si[0];\n"
            "            const T pv = W[p * n + c];\n"
            "            __syncthreads(); /* every thread has read si[0] */\n"
            "            if (pv == 0) {\n"
            "                singular = true;\n"
            "                break;\n"
            "            }\n"
            "            if (p != c) {\n"
            "                sign = -sign;\n"
            "                for (long long j = threadIdx.x; j < n; j += blockDim.x) {\n"
            "                    const T t = W[c * n + j];\n"
            "                    W[c * n + j] = W[p * n + j], W[p * n + j] = t;\n"
            "                }\n"
            "                for (long long j = threadIdx.x; j < k; j += blockDim.x) {\n"
            "                    const T t = X[c * k + j];\n"
            "                    X[c * k + j] = X[p * k + j], X[p * k + j] = t;\n"
            "                }\n"
            "                __syncthreads();\n"
            "            }\n"
            "            const T inv = (T)1 / W[c * n + c];\n"
            "            const long long rows = n - c - 1, cw = n - c - 1, cols = cw + k;\n"
            "            for (long long e = threadIdx.x; e < rows * cols; e += blockDim.x) {\n"
            "                const long long r = c + 1 + e / cols, j = e %% cols;\n"
            "                const T f = W[r * n + c] * inv;\n"
            "                if (f == 0) continue;\n"
            "                if (j < cw) W[r * n + c + 1 + j] -= f * W[c * n + c + 1 + j];\n"
            "                else X[r * k + j - cw] -= f * X[c * k + j - cw];\n"
            "            }\n"
            "            __syncthreads();\n"
            "        }\n"
            "%s"
            "    }\n"
            "}\n",
            solve ? "solve" : "slogdet", xcs_dtype_name(ls->dtype), math, XCS_CUDA_BLOCK, XCS_CUDA_BLOCK,
            XCS_CUDA_BLOCK, solve ? "a.k" : "0", solve ? "(T *)a.out + m * n * k" : "(T *)0", tail);
    } else if (ls->op == XCS_OP_EIGH || ls->op == XCS_OP_EIGVALSH) {
        const bool vec = ls->op == XCS_OP_EIGH;
        w = snprintf(
            buf, cap,
            "/* xcs %s (%s): a block per matrix, cyclic Jacobi; out: w%s */\n" LINALG_ARGS "%s"
            "#define XCS_EPS %s\n"
            "#define XCS_VECTORS %d\n" JACOBI_HELPERS
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_linalg_args a) {\n"
            "    /* the rotation of pair number i is in slot i %% 2: thread 0 writes the next one\n"
            "     * while the others may still read this one */\n"
            "    __shared__ T s_c[2], s_s[2];\n"
            "    __shared__ int s_act[2], s_rotated;\n"
            "    const long long n = a.n;\n"
            "    for (long long m = blockIdx.x; m < a.batch; m += gridDim.x) {\n"
            "        const T *in = (const T *)a.a + m * n * n;\n"
            "        T *A = (T *)a.work + m * a.work_per, *wv = (T *)a.out + m * (XCS_VECTORS ? n + 1 : 1) * n, *V = wv + n;\n"
            "        for (long long i = threadIdx.x; i < n * n; i += blockDim.x) {\n"
            "            const long long r = i / n, c = i - r * n;\n"
            "            A[i] = r >= c ? in[i] : in[c * n + r]; /* the lower triangle, mirrored */\n"
            "            if (XCS_VECTORS) V[i] = r == c;\n"
            "        }\n"
            "        long long pair = 0;\n"
            "        for (int sweep = 0; sweep < %d; sweep++) {\n"
            "            __syncthreads(); /* A written; s_rotated read by every thread */\n"
            "            if (threadIdx.x == 0) s_rotated = 0;\n"
            "            for (long long p = 0; p < n; p++)\n"
            "                for (long long q = p + 1; q < n; q++, pair++) {\n"
            "                    const int sl = (int)(pair & 1);\n"
            "                    if (threadIdx.x == 0) {\n"
            "                        const T apq = A[p * n + q], app = A[p * n + p], aqq = A[q * n + q];\n"
            "                        int act = 0;\n"
            "                        if (apq == 0) {\n"
            "                        } else if (XCS_FABS(apq) <= XCS_EPS * XCS_SQRT(XCS_FABS(app)) * XCS_SQRT(XCS_FABS(aqq))) {\n"
            "                            A[p * n + q] = A[q * n + p] = 0; /* below the diagonal's rounding */\n"
            "                        } else {\n"
            "                            xcs_rotation((aqq - app) / (2 * apq), &s_c[sl], &s_s[sl]);\n"
            "                            act = 1;\n"
            "                            s_rotated = 1;\n"
            "                        }\n"
            "                        s_act[sl] = act;\n"
            "                    }\n"
            "                    __syncthreads();\n"
            "                    if (!s_act[sl]) continue;\n"
            "                    const T c = s_c[sl], s = s_s[sl];\n"
            "                    for (long long k = threadIdx.x; k < n; k += blockDim.x) { /* A P: columns p, q */\n"
            "                        const T x = A[k * n + p], y = A[k * n + q];\n"
            "                        A[k * n + p] = c * x - s * y, A[k * n + q] = s * x + c * y;\n"
            "                    }\n"
            "                    __syncthreads();\n"
            "                    for (long long k = threadIdx.x; k < n; k += blockDim.x) { /* P^T (A P): rows p, q */\n"
            "                        const T x = A[p * n + k], y = A[q * n + k];\n"
            "                        A[p * n + k] = c * x - s * y, A[q * n + k] = s * x + c * y;\n"
            "                        if (!XCS_VECTORS) continue;\n"
            "                        const T vx = V[k * n + p], vy = V[k * n + q];\n"
            "                        V[k * n + p] = c * vx - s * vy, V[k * n + q] = s * vx + c * vy;\n"
            "                    }\n"
            "                    __syncthreads();\n"
            "                    if (threadIdx.x == 0) A[p * n + q] = A[q * n + p] = 0;\n"
            "                }\n"
            "            __syncthreads();\n"
            "            if (!s_rotated) break;\n"
            "        }\n"
            "        __syncthreads();\n"
            "        if (threadIdx.x == 0) { /* the values ascending, the vectors with them */\n"
            "            for (long long i = 0; i < n; i++) wv[i] = A[i * n + i];\n"
            "            xcs_sort_cols(wv, n, false, V, XCS_VECTORS ? n : 0, (T *)0, 0, n);\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "}\n",
            xcs_op_name(ls->op), xcs_dtype_name(ls->dtype), vec ? ", then V's rows" : " alone", math, eps, (int)vec,
            XCS_CUDA_BLOCK, XCS_CUDA_JACOBI_SWEEPS);
    } else if (ls->op == XCS_OP_SVD || ls->op == XCS_OP_SVDVALS) {
        const bool vec = ls->op == XCS_OP_SVD;
        w = snprintf(
            buf, cap,
            "/* xcs %s (%s): a block per matrix, one-sided Jacobi on the tall side's columns;\n"
            " * out: %s */\n" LINALG_ARGS "%s"
            "#define XCS_EPS %s\n"
            "#define XCS_VECTORS %d\n" JACOBI_HELPERS
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_linalg_args a) {\n"
            "    __shared__ T s_c[2], s_s[2]; /* pair i's rotation in slot i %% 2 (see eigh) */\n"
            "    __shared__ int s_act[2], s_rotated;\n"
            "    const long long mm = a.m, n = a.n, k = mm < n ? mm : n, rows = mm < n ? n : mm;\n"
            "    for (long long b = blockIdx.x; b < a.batch; b += gridDim.x) {\n"
            "        const T *ab = (const T *)a.a + b * mm * n;\n"
            "        T *U = (T *)a.work + b * a.work_per, *V = U + rows * k, *s = V + k * k;\n"
            "        for (long long i = threadIdx.x; i < rows * k; i += blockDim.x) {\n"
            "            const long long r = i / k, c = i - r * k;\n"
            "            U[i] = mm >= n ? ab[i] : ab[c * n + r]; /* a, or a^T = V s U^T when wide */\n"
            "        }\n"
            "        for (long long i = threadIdx.x; XCS_VECTORS && i < k * k; i += blockDim.x) V[i] = i / k == i %% k;\n"
            "        long long pair = 0;\n"
            "        for (int sweep = 0; sweep < %d; sweep++) {\n"
            "            __syncthreads();\n"
            "            if (threadIdx.x == 0) s_rotated = 0;\n"
            "            for (long long p = 0; p < k; p++)\n"
            "                for (long long q = p + 1; q < k; q++, pair++) {\n"
            "                    const int sl = (int)(pair & 1);\n"
            "                    if (threadIdx.x == 0) {\n"
            "                        T alpha = 0, beta = 0, gamma = 0;\n"
            "                        for (long long i = 0; i < rows; i++) {\n"
            "                            const T x = U[i * k + p], y = U[i * k + q];\n"
            "                            alpha += x * x, beta += y * y, gamma += x * y;\n"
            "                        }\n"
            "                        int act = 0;\n"
            "                        if (!(gamma == 0 || XCS_FABS(gamma) <= XCS_EPS * XCS_SQRT(alpha) * XCS_SQRT(beta))) {\n"
            "                            xcs_rotation((beta - alpha) / (2 * gamma), &s_c[sl], &s_s[sl]);\n"
            "                            act = 1;\n"
            "                            s_rotated = 1;\n"
            "                        }\n"
            "                        s_act[sl] = act;\n"
            "                    }\n"
            "                    __syncthreads();\n"
            "                    if (!s_act[sl]) continue;\n"
            "                    const T c = s_c[sl], sn = s_s[sl];\n"
            "                    for (long long i = threadIdx.x; i < rows + (XCS_VECTORS ? k : 0); i += blockDim.x) {\n"
            "                        T *M = i < rows ? U + i * k : V + (i - rows) * k; /* a row of U or of V */\n"
            "                        const T x = M[p], y = M[q];\n"
            "                        M[p] = c * x - sn * y, M[q] = sn * x + c * y;\n"
            "                    }\n"
            "                    __syncthreads();\n"
            "                }\n"
            "            __syncthreads();\n"
            "            if (!s_rotated) break;\n"
            "        }\n"
            "        __syncthreads();\n"
            "        for (long long j = threadIdx.x; j < k; j += blockDim.x) { /* the values: the columns' norms */\n"
            "            T nrm = 0;\n"
            "            for (long long i = 0; i < rows; i++) nrm += U[i * k + j] * U[i * k + j];\n"
            "            s[j] = XCS_SQRT(nrm);\n"
            "            for (long long i = 0; XCS_VECTORS && s[j] > 0 && i < rows; i++) U[i * k + j] /= s[j];\n"
            "        }\n"
            "        __syncthreads();\n"
            "        if (!XCS_VECTORS) { /* the values alone, descending */\n"
            "            if (threadIdx.x == 0) xcs_sort_cols(s, k, true, (T *)0, 0, (T *)0, 0, k);\n"
            "            __syncthreads();\n"
            "            for (long long j = threadIdx.x; j < k; j += blockDim.x) ((T *)a.out)[b * k + j] = s[j];\n"
            "            __syncthreads();\n"
            "            continue;\n"
            "        }\n"
            "        if (threadIdx.x == 0) {\n"
            "            xcs_sort_cols(s, k, true, U, rows, V, k, k); /* descending, U's and V's columns with them */\n"
            "            for (long long j = 0; j < k; j++) { /* a zero value's column: an orthonormal completion */\n"
            "                if (s[j] > 0) continue;\n"
            "                for (long long e = 0; e < rows; e++) {\n"
            "                    for (long long i = 0; i < rows; i++) U[i * k + j] = i == e;\n"
            "                    for (long long l = 0; l < k; l++) {\n"
            "                        if (l == j || (s[l] == 0 && l > j)) continue;\n"
            "                        T d = 0;\n"
            "                        for (long long i = 0; i < rows; i++) d += U[i * k + l] * U[i * k + j];\n"
            "                        for (long long i = 0; i < rows; i++) U[i * k + j] -= d * U[i * k + l];\n"
            "                    }\n"
            "                    T nrm = 0;\n"
            "                    for (long long i = 0; i < rows; i++) nrm += U[i * k + j] * U[i * k + j];\n"
            "                    if (nrm > (T)0.25) {\n"
            "                        nrm = XCS_SQRT(nrm);\n"
            "                        for (long long i = 0; i < rows; i++) U[i * k + j] /= nrm;\n"
            "                        break;\n"
            "                    }\n"
            "                }\n"
            "            }\n"
            "        }\n"
            "        __syncthreads();\n"
            "        T *o = (T *)a.out + b * (mm + 1 + n) * k;\n"
            "        const T *ua = mm >= n ? U : V, *va = mm >= n ? V : U;\n"
            "        for (long long i = threadIdx.x; i < (mm + 1 + n) * k; i += blockDim.x)\n"
            "            o[i] = i < mm * k ? ua[i] : i < (mm + 1) * k ? s[i - mm * k] : va[i - (mm + 1) * k];\n"
            "        __syncthreads();\n"
            "    }\n"
            "}\n",
            xcs_op_name(ls->op), xcs_dtype_name(ls->dtype), vec ? "U, the values, V" : "the values", math, eps,
            (int)vec, XCS_CUDA_BLOCK, XCS_CUDA_JACOBI_SWEEPS);
    } else if (ls->op == XCS_OP_QR) {
        w = snprintf(
            buf, cap,
            "/* xcs qr (%s): a block per matrix, Householder as LAPACK's geqrf / orgqr; out: Q, R^T */\n"
            LINALG_ARGS "%s"
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_linalg_args a) {\n"
            "    __shared__ T s_beta, s_tau, s_scale;\n"
            "    __shared__ int s_act;\n"
            "    const long long mm = a.m, n = a.n, k = mm < n ? mm : n;\n"
            "    for (long long b = blockIdx.x; b < a.batch; b += gridDim.x) {\n"
            "        const T *ab = (const T *)a.a + b * mm * n;\n"
            "        T *R = (T *)a.work + b * a.work_per, *taus = R + mm * n;\n"
            "        T *Q = (T *)a.out + b * (mm + n) * k, *Rt = Q + mm * k;\n"
            "        for (long long i = threadIdx.x; i < mm * n; i += blockDim.x) R[i] = ab[i];\n"
            "        __syncthreads();\n"
            "        for (long long j = 0; j < k; j++) {\n"
            "            if (threadIdx.x == 0) {\n"
            "                T tail = 0;\n"
            "                for (long long i = j + 1; i < mm; i++) tail += R[i * n + j] * R[i * n + j];\n"
            "                const T alpha = R[j * n + j];\n"
            "                s_act = tail != 0;\n"
            "                taus[j] = 0;\n"
            "                if (s_act) {\n"
            "                    const T nrm = XCS_SQRT(alpha * alpha + tail), beta = alpha >= 0 ? -nrm : nrm;\n"
            "                    s_beta = beta, s_tau = (beta - alpha) / beta, s_scale = 1 / (alpha - beta);\n"
            "                }\n"
            "            }\n"
            "            __syncthreads();\n"
            "            if (s_act) {\n"
            "                const T tau = s_tau, scale = s_scale;\n"
            "                for (long long i = j + 1 + threadIdx.x; i < mm; i += blockDim.x) R[i * n + j] *= scale; /* v */\n"
            "                __syncthreads();\n"
            "                for (long long c = j + 1 + threadIdx.x; c < n; c += blockDim.x) { /* (I - tau v v^T), a column a thread */\n"
            "                    T d = R[j * n + c];\n"
            "                    for (long long i = j + 1; i < mm; i++) d += R[i * n + j] * R[i * n + c];\n"
            "                    d *= tau;\n"
            "                    R[j * n + c] -= d;\n"
            "                    for (long long i = j + 1; i < mm; i++) R[i * n + c] -= d * R[i * n + j];\n"
            "                }\n"
            "                __syncthreads();\n"
            "                if (threadIdx.x == 0) R[j * n + j] = s_beta, taus[j] = tau;\n"
            "            }\n"
            "            __syncthreads();\n"
            "        }\n"
            "        for (long long i = threadIdx.x; i < mm * k; i += blockDim.x) Q[i] = i / k == i %% k;\n"
            "        __syncthreads();\n"
            "        for (long long j = k - 1; j >= 0; j--) { /* H_0 ... H_{k-1} applied to I's first k columns */\n"
            "            const T tau = taus[j];\n"
            "            if (tau == 0) continue;\n"
            "            for (long long c = j + threadIdx.x; c < k; c += blockDim.x) { /* v_j = 1, then R's column */\n"
            "                T d = Q[j * k + c];\n"
            "                for (long long i = j + 1; i < mm; i++) d += R[i * n + j] * Q[i * k + c];\n"
            "                d *= tau;\n"
            "                Q[j * k + c] -= d;\n"
            "                for (long long i = j + 1; i < mm; i++) Q[i * k + c] -= d * R[i * n + j];\n"
            "            }\n"
            "            __syncthreads();\n"
            "        }\n"
            "        for (long long i = threadIdx.x; i < n * k; i += blockDim.x) {\n"
            "            const long long c = i / k, r = i - c * k;\n"
            "            Rt[i] = r <= c ? R[r * n + c] : (T)0; /* R^T, R's zeros below the diagonal */\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "}\n",
            xcs_dtype_name(ls->dtype), math, XCS_CUDA_BLOCK);
    } else {
        xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel", xcs_op_name(ls->op));
        return 0;
    }
    return xcs_cuda_written(w, "linalg kernel");
}

static size_t linalg_gen(const void *spec, char *buf, size_t cap) { return xcs_cuda_linalg_codegen(spec, buf, cap); }

char *xcs_cuda_linalg_codegen_alloc(const xcs_cuda_linalg_spec *ls) {
    return xcs_cuda_source_alloc(linalg_gen, ls, "a linalg");
}

uint64_t xcs_cuda_linalg_spec_hash(const xcs_cuda_linalg_spec *ls) {
    return 0x3e8d51c7a90b246full ^ ((uint64_t)ls->op << 40) ^ ((uint64_t)ls->dtype << 8) ^ ((uint64_t)ls->stage << 24);
}

bool xcs_cuda_linalg_solver(xcs_op op, int64_t n) {
    return (op == XCS_OP_SOLVE || op == XCS_OP_SLOGDET || op == XCS_OP_CHOLESKY) && n >= XCS_CUDA_SOLVER_MIN;
}

void xcs_cuda_linalg_solver_args(xcs_op op, xcs_cuda_linalg_args *a) {
    a->work_per = op == XCS_OP_CHOLESKY ? 0 : a->n * a->n + a->n * (op == XCS_OP_SOLVE ? a->k : 0);
}

long long xcs_cuda_linalg_blocks(const xcs_cuda_linalg_spec *ls, const xcs_cuda_linalg_args *a) {
    if (ls->stage == XCS_CUDA_LA_WHOLE) return a->batch;
    const long long k = ls->op == XCS_OP_SOLVE ? a->k : 0;
    long long per = ls->stage == XCS_CUDA_LA_BEFORE ? a->n * a->n + a->n * k
                    : ls->op == XCS_OP_SLOGDET      ? 1
                    : ls->op == XCS_OP_SOLVE        ? a->n * k
                                                    : a->n * a->n;
    if (per < 1) per = 1; /* the infos, a thread a matrix */
    return (a->batch * per + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
}

/* Eigenvalues and singular values alone stay on the device below
 * XCS_CUDA_EIGVALSH_MAX_ROWS / XCS_CUDA_SVDVALS_MAX_ROWS: a block per
 * matrix runs the Jacobi sweeps there, where the host path downloads the
 * batch and runs LAPACK.  H200 with 16 host cores, 2026-11-27, float32:
 * 1000 of 32 x 32, eigvalsh 54 -> 4.7 ms, svdvals 59 -> 8.8 ms; 200 of
 * 63 x 63, eigvalsh 14.7 ms on the device against 24.7 on the host, but
 * svdvals 46.8 against 35.6 (the one-sided sweeps grow faster): svdvals
 * stops at 48 rows, between the two (benchmarks/RESULTS.md). */
int64_t xcs_cuda_linalg_limit(xcs_op op) {
    if (op == XCS_OP_EIGVALSH) return XCS_CUDA_EIGVALSH_MAX_ROWS;
    if (op == XCS_OP_SVDVALS) return XCS_CUDA_SVDVALS_MAX_ROWS;
    return op == XCS_OP_EIGH || op == XCS_OP_SVD || op == XCS_OP_QR ? xcs_linalg_lapack_min(op) : 0;
}

xcs_status xcs_cuda_linalg_args_of(xcs_op op, int n_in, const xcs_tensor *const *in, const xcs_tensor *out,
                                   xcs_cuda_linalg_args *a) {
    const xcs_tensor *x = in[0];
    const bool svd = op == XCS_OP_SVD || op == XCS_OP_SVDVALS;
    const bool jacobi = op == XCS_OP_EIGH || op == XCS_OP_EIGVALSH || svd || op == XCS_OP_QR;
    if (op != XCS_OP_SOLVE && op != XCS_OP_SLOGDET && op != XCS_OP_CHOLESKY && !jacobi)
        return xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel", xcs_op_name(op));
    if (x->dtype != XCS_F32 && x->dtype != XCS_F64)
        return xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel for dtype %s", xcs_op_name(op),
                         xcs_dtype_name(x->dtype));
    const int nd = x->ndim;
    bool ok = nd >= 2 && n_in == (op == XCS_OP_SOLVE ? 2 : 1) && out->dtype == x->dtype &&
              (svd || op == XCS_OP_QR || x->shape[nd - 1] == x->shape[nd - 2]) &&
              xcs_tensor_is_contiguous(x) && xcs_tensor_is_contiguous(out);
    if (ok && op == XCS_OP_SOLVE)
        ok = in[1]->dtype == x->dtype && in[1]->ndim == nd && xcs_tensor_is_contiguous(in[1]) &&
             in[1]->shape[nd - 2] == x->shape[nd - 1];
    if (!ok) return xcs_error(XCS_ERR_INTERNAL, "CUDA %s: bad operands", xcs_op_name(op));
    const int64_t m = x->shape[nd - 2], n = x->shape[nd - 1], k = m < n ? m : n, rows = m > n ? m : n;
    const int64_t limit = xcs_cuda_linalg_limit(op);
    if (limit && k >= limit)
        return xcs_error(XCS_ERR_UNSUPPORTED, "%s: the CUDA kernel takes matrices of fewer than %lld rows or columns "
                         "(as the CPU's own loops; LAPACK on the host from there)", xcs_op_name(op), (long long)limit);
    memset(a, 0, sizeof *a);
    a->m = m, a->n = n;
    a->batch = 1;
    for (int d = 0; d < nd - 2; d++) a->batch *= x->shape[d];
    a->k = op == XCS_OP_SOLVE ? in[1]->shape[nd - 1] : 0;
    /* scratch a matrix: the LU factors, A (eigh, eigvalsh), U V s (svd, svdvals: the tall side's), R taus (qr) */
    a->work_per = op == XCS_OP_CHOLESKY ? 0 : svd ? rows * k + k * k + k : op == XCS_OP_QR ? m * n + k : n * n;
    a->a = (const void *)(uintptr_t)xcs_cuda_be_addr(x);
    a->b = op == XCS_OP_SOLVE ? (const void *)(uintptr_t)xcs_cuda_be_addr(in[1]) : NULL;
    a->out = (void *)(uintptr_t)xcs_cuda_be_addr(out);
    return XCS_OK;
}
