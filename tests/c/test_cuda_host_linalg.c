/* test_cuda_host_linalg.c — the CUDA linalg kernels (codegen.h: solve,
 * slogdet, cholesky, eigh, svd, qr; a block per matrix, its threads meeting at barriers)
 * without a GPU: each source compiled with NVRTC (when present) and run on
 * the host on fibers (kernel_host.h), in a random scheduling order, on
 * fewer blocks than matrices (the grid-stride loop goes round) and on
 * blocks of 256 and of 32 threads (rows, columns and elements per thread
 * go round), against the CPU backend (src/host/linalg.c) on fresh random
 * batches (XCS_TEST_SEED repeats a run):
 *   values      well-conditioned matrices of 1 to 300 rows, float32 and
 *               float64, within the dtype's tolerance;
 *   ties        small integer entries (pivot ties everywhere);
 *   NaN, inf    the same NaN and infinity pattern as the CPU's (its pivot
 *               rules: a NaN at the diagonal stays the pivot, a zero
 *               multiplier skips its row);
 *   faults      a singular matrix in the batch sets XCS_CUDA_ERR_SINGULAR
 *               for solve (slogdet gives (0, -inf)), a matrix that is not
 *               positive definite XCS_CUDA_ERR_NOT_PD for cholesky;
 *   eigh        the CPU's Jacobi rotations in its order: its values and
 *               vectors to rounding, signs included, and A V = V diag(w);
 *   svd, qr     the CPU's factors to rounding (tall, wide, rank-deficient);
 *   eigvalsh, svdvals  the values alone: those of the CPU's eigh / svd;
 *   refusals    eigh/svd/qr past their limits (8, 24, 64; eigvalsh and
 *               svdvals: eigh's and svd's), other dtypes:
 *               XCS_ERR_UNSUPPORTED (core runs them on the host). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "codegen.h"
#include "kernel_build.h"
#include "nvrtc.h"
#include "solver.h"
#include "testutil.h"
#include "xcs_host.h"

static xcs_nvrtc *nv;
static int nvrtc_compiled;
static test_rng R;

static uint64_t next_u64(void) { return test_rnd(&R); }
static int64_t uniform(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo)); }

typedef enum { WELL, TIES, SPECIAL, SINGULAR } draw_kind;

/* A batch x n x n float64 matrix of kind (SPD for cholesky when spd). */
static xcs_tensor *matrices(int64_t batch, int64_t n, draw_kind kind, bool spd) {
    const int64_t shape[3] = {batch, n, n};
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, shape, &t));
    if (!t) return NULL;
    double *p = xcs_tensor_data(t);
    for (int64_t m = 0; m < batch; m++) {
        double *a = p + m * n * n;
        for (int64_t i = 0; i < n * n; i++)
            a[i] = kind == TIES ? (double)uniform(-2, 3) : test_rnd_unit(&R) * 2 - 1;
        if (spd) { /* a a^T + n I (in place: from a copy) */
            double *c = malloc((size_t)(n * n) * sizeof *c);
            memcpy(c, a, (size_t)(n * n) * sizeof *c);
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = i == j ? (double)n : 0;
                    for (int64_t q = 0; q < n; q++) s += c[i * n + q] * c[j * n + q];
                    a[i * n + j] = s;
                }
            free(c);
        } else if (kind == WELL) {
            for (int64_t i = 0; i < n; i++) a[i * n + i] += (double)n;
        }
        if (kind == SPECIAL && n > 1) /* a few NaNs and infinities, the diagonal included */
            for (int q = 0; q < 3; q++) {
                int64_t i = uniform(0, n), j = uniform(0, 2) ? i : uniform(0, n);
                a[i * n + j] = uniform(0, 2) ? NAN : (uniform(0, 2) ? INFINITY : -INFINITY);
            }
        if (kind == SINGULAR && m == batch - 1 && n > 1) { /* the last matrix: a zero column */
            int64_t j = uniform(0, n);
            for (int64_t i = 0; i < n; i++) a[i * n + j] = 0;
        }
    }
    return t;
}

static xcs_tensor *as_dtype(xcs_tensor *t, xcs_dtype dt) {
    xcs_tensor *c = NULL;
    CHECK_OK(xcs_cast(t, dt, &c));
    return c;
}

/* got against want: within atol + rtol |want|, or the same NaN / infinity. */
static int compare(const xcs_tensor *got, const xcs_tensor *want, double rtol, double atol) {
    xcs_tensor *g = as_dtype((xcs_tensor *)got, XCS_F64), *w = as_dtype((xcs_tensor *)want, XCS_F64);
    int bad = 0;
    const double *gp = xcs_tensor_data(g), *wp = xcs_tensor_data(w);
    for (int64_t i = 0; g && w && i < xcs_tensor_numel(w); i++) {
        double a = gp[i], b = wp[i];
        bool ok = isnan(b) ? isnan(a) : isinf(b) ? a == b : fabs(a - b) <= atol + rtol * fabs(b);
        if (!ok && bad++ < 3) printf("    element %lld: got %.17g, want %.17g\n", (long long)i, a, b);
    }
    xcs_tensor_free(g);
    xcs_tensor_free(w);
    return bad;
}

/* The kernel of op for dt, compiled by NVRTC (a check) and built on the
 * host on fibers; NULL (with a failed check) when either fails. */
static xcs_kernel_host *linalg_kernel(xcs_op op, xcs_dtype dt) {
    xcs_cuda_linalg_spec ls = {op, dt, XCS_CUDA_LA_WHOLE};
    char *src = xcs_cuda_linalg_codegen_alloc(&ls);
    CHECK(src != NULL);
    xcs_kernel_host *k =
        src ? kernel_build(nv, &nvrtc_compiled, src, "linalg.cu", "xcs_linalg_args", XCS_KERNEL_HOST_COOPERATIVE) : NULL;
    free(src);
    CHECK(k && xcs_kernel_host_fibers(k));
    return k;
}

/* Runs kernel k for op on inputs in (as the backend gets them) into out;
 * returns the fault word. */
static unsigned run(xcs_kernel_host *k, xcs_op op, const xcs_tensor *const *in, xcs_tensor *out, unsigned threads) {
    xcs_cuda_linalg_args a;
    unsigned err = 0;
    if (xcs_cuda_linalg_args_of(op, op == XCS_OP_SOLVE ? 2 : 1, in, out, &a)) {
        CHECK(false);
        return 0;
    }
    /* host addresses: the tests' tensors are on the host */
    a.a = xcs_tensor_data(in[0]);
    a.b = op == XCS_OP_SOLVE ? xcs_tensor_data(in[1]) : NULL;
    a.out = xcs_tensor_data(out);
    size_t wb = (size_t)(a.batch * a.work_per) * xcs_dtype_size(out->dtype);
    void *work = malloc(wb > 0 ? wb : 1);
    memset(work, 0xA5, wb);
    a.work = work;
    a.err = &err;
    long long blocks = a.batch < 2 ? a.batch : 2; /* fewer than the matrices: the loop goes round */
    if (blocks > 0) CHECK_OK(xcs_kernel_host_launch(k, 0, &a, (unsigned)blocks, threads));
    free(work);
    return err;
}

/* One solve / slogdet / cholesky case: a batch of n x n matrices of kind
 * (SPD where spd) and b (batch x n x kk), in dt; the CPU's result (or its
 * refusal) and an output for a kernel's. */
typedef struct la_case {
    xcs_op op;
    xcs_dtype dt;
    int64_t batch, n, kk;
    draw_kind kind;
    xcs_tensor *a64, *b64, *a, *b, *want, *got;
    xcs_status cpu;
} la_case;

static void case_make(la_case *c, xcs_op op, xcs_dtype dt, int64_t batch, int64_t n, int64_t kk, draw_kind kind,
                      bool spd) {
    *c = (la_case){.op = op, .dt = dt, .batch = batch, .n = n, .kk = kk, .kind = kind};
    c->a64 = matrices(batch, n, kind, spd);
    c->a = as_dtype(c->a64, dt);
    const int64_t bshape[3] = {batch, n, kk};
    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, bshape, &c->b64));
    for (int64_t i = 0; c->b64 && i < batch * n * kk; i++) ((double *)xcs_tensor_data(c->b64))[i] = test_rnd_unit(&R) - 0.5;
    c->b = as_dtype(c->b64, dt);
    const xcs_tensor *in[2] = {c->a, c->b};
    c->cpu = xcs_linalg(op, op == XCS_OP_SOLVE ? 2 : 1, in, &c->want);
    const int64_t oshape[3] = {batch, op == XCS_OP_SLOGDET ? 2 : n, op == XCS_OP_SOLVE ? kk : n};
    CHECK_OK(xcs_tensor_empty(dt, op == XCS_OP_SLOGDET ? 2 : 3, oshape, &c->got));
    if (c->got) memset(xcs_tensor_data(c->got), 0x5A, (size_t)xcs_tensor_numel(c->got) * xcs_dtype_size(dt));
}

/* The kernel's result (c->got, its fault word err) against the CPU's: the
 * same values to the dtype's tolerance, or the same refusal; a singular
 * matrix (the batch's last) refused by solve (with a right-hand side) and
 * cholesky, (0, -inf) from slogdet. */
static void case_check(const la_case *c, unsigned err, const char *what) {
    const bool chol = c->op == XCS_OP_CHOLESKY, f32 = c->dt == XCS_F32;
    const unsigned refusal = chol ? XCS_CUDA_ERR_NOT_PD : XCS_CUDA_ERR_SINGULAR;
    if (c->cpu == XCS_OK) {
        CHECK_EQ_I((int)err, 0);
        const double rtol = f32 ? 2e-3 : 1e-9, atol = f32 ? 1e-4 : 1e-12;
        int bad = err ? 0 : compare(c->got, c->want, rtol, atol);
        if (bad)
            printf("  %s %s%s, n=%lld batch=%lld k=%lld kind=%d: %d elements differ\n", xcs_op_name(c->op),
                   xcs_dtype_name(c->dt), what, (long long)c->n, (long long)c->batch, (long long)c->kk, (int)c->kind, bad);
        CHECK_EQ_I(bad, 0);
    } else { /* the CPU refused: a singular (solve) or not positive definite (cholesky) matrix */
        CHECK_EQ_I((int)err, (int)refusal);
    }
    if (c->kind != SINGULAR || c->n < 2) return;
    if (c->op == XCS_OP_SLOGDET) { /* the last matrix's (0, -inf) */
        xcs_tensor *g64 = as_dtype(c->got, XCS_F64);
        const double *g = g64 ? xcs_tensor_data(g64) : NULL;
        CHECK(g && g[2 * c->batch - 2] == 0 && g[2 * c->batch - 1] == -INFINITY);
        xcs_tensor_free(g64);
        CHECK_EQ_I((int)err, 0);
    } else if (!(c->op == XCS_OP_SOLVE && c->kk == 0)) {
        CHECK_EQ_I((int)err, (int)refusal);
    }
}

static void case_free(la_case *c) {
    xcs_tensor *fr[] = {c->a64, c->b64, c->a, c->b, c->want, c->got};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) xcs_tensor_free(fr[i]);
}

static void test_values_against_cpu(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    const xcs_op ops[3] = {XCS_OP_SOLVE, XCS_OP_SLOGDET, XCS_OP_CHOLESKY};
    int cases = 0;
    for (int d = 0; d < 2; d++)
        for (int o = 0; o < 3; o++) {
            xcs_kernel_host *k = linalg_kernel(ops[o], dts[d]);
            const bool f32 = dts[d] == XCS_F32;
            for (int trial = 0; k && trial < 10; trial++) {
                CHECK_OK(xcs_kernel_host_set_schedule(k, XCS_KERNEL_HOST_RANDOM, next_u64()));
                const draw_kind kind = trial < 5 ? WELL : trial < 7 ? TIES : trial < 9 ? SPECIAL : SINGULAR;
                /* trial 0: past a block's threads (f64 only: the fibers are slow) */
                const int64_t n = trial == 0 && !f32 ? uniform(257, 300) : uniform(1, trial % 2 ? 9 : 40);
                const int64_t batch = trial == 0 ? 1 : uniform(1, 5), kk = uniform(1, 4);
                const bool chol = ops[o] == XCS_OP_CHOLESKY;
                la_case c;
                case_make(&c, ops[o], dts[d], batch, n, kk, kind, chol && kind != SPECIAL && kind != SINGULAR);
                const xcs_tensor *in[2] = {c.a, c.b};
                const unsigned threads = trial % 3 == 2 ? 32 : XCS_CUDA_BLOCK;
                case_check(&c, c.got ? run(k, ops[o], in, c.got, threads) : 0, "");
                case_free(&c);
                cases++;
            }
            xcs_kernel_host_free(k);
        }
    printf("  solve/slogdet/cholesky: %d cases\n", cases);
}

/* ---------------------------------------------------------------- around cuSOLVER
 *
 * Big solve, slogdet and cholesky go to cuSOLVER between a BEFORE and an
 * AFTER kernel (codegen.h).  CI has no cuSOLVER to call, so LAPACK's
 * getrf, getrs and potrf (what cuSOLVER's X API computes, column-major,
 * 1-based int64 pivots, info) are written out below, unblocked and in
 * float64, on the buffers the BEFORE kernel filled: the kernels, the
 * layouts (a row-major a handed over as the column-major a^T; getrs 'T';
 * potrf of the upper triangle) and the pivot and info conventions are
 * then checked against the CPU backend's results. */

/* getrf of the column-major n x n a (element (r, c) at a[r + c n]):
 * partial pivoting on the first largest |a|, info the first zero pivot. */
static int ref_getrf(double *a, int64_t n, long long *piv) {
    int info = 0;
    for (int64_t c = 0; c < n; c++) {
        int64_t p = c;
        for (int64_t r = c + 1; r < n; r++)
            if (fabs(a[r + c * n]) > fabs(a[p + c * n])) p = r;
        piv[c] = p + 1;
        if (a[p + c * n] == 0) {
            if (!info) info = (int)c + 1;
            continue;
        }
        if (p != c)
            for (int64_t j = 0; j < n; j++) {
                double t = a[c + j * n];
                a[c + j * n] = a[p + j * n], a[p + j * n] = t;
            }
        for (int64_t r = c + 1; r < n; r++) a[r + c * n] /= a[c + c * n];
        for (int64_t j = c + 1; j < n; j++)
            for (int64_t r = c + 1; r < n; r++) a[r + j * n] -= a[r + c * n] * a[c + j * n];
    }
    return info;
}

/* getrs 'T': b (n x k, column-major) = (P^T L U)^-T b = P^T L^-T U^-T b. */
static void ref_getrs_t(const double *lu, const long long *piv, int64_t n, int64_t k, double *b) {
    for (int64_t q = 0; q < k; q++) {
        double *x = b + q * n;
        for (int64_t i = 0; i < n; i++) { /* U^T y = b: U^T is lower */
            double t = x[i];
            for (int64_t j = 0; j < i; j++) t -= lu[j + i * n] * x[j];
            x[i] = t / lu[i + i * n];
        }
        for (int64_t i = n - 1; i >= 0; i--) /* L^T z = y: unit upper */
            for (int64_t j = i + 1; j < n; j++) x[i] -= lu[j + i * n] * x[j];
        for (int64_t i = n - 1; i >= 0; i--) { /* the row swaps, undone last to first */
            double t = x[i];
            x[i] = x[piv[i] - 1], x[piv[i] - 1] = t;
        }
    }
}

/* potrf 'U': a = U^T U, U in the upper triangle (the lower one untouched);
 * info the first minor that is not positive definite. */
static int ref_potrf_u(double *a, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double d = a[j + j * n];
        for (int64_t p = 0; p < j; p++) d -= a[p + j * n] * a[p + j * n];
        if (!(d > 0)) return (int)j + 1;
        a[j + j * n] = sqrt(d);
        for (int64_t i = j + 1; i < n; i++) {
            double t = a[j + i * n];
            for (int64_t p = 0; p < j; p++) t -= a[p + j * n] * a[p + i * n];
            a[j + i * n] = t / a[j + j * n];
        }
    }
    return 0;
}

/* The stage kernel of op for dt (plain grid-stride loops: no fibers). */
static xcs_kernel_host *stage_kernel(xcs_op op, xcs_dtype dt, xcs_cuda_la_stage stage) {
    xcs_cuda_linalg_spec ls = {op, dt, stage};
    char *src = xcs_cuda_linalg_codegen_alloc(&ls);
    CHECK(src != NULL);
    xcs_kernel_host *k = src ? kernel_build(nv, &nvrtc_compiled, src, "linalg_stage.cu", "xcs_linalg_args", 0) : NULL;
    free(src);
    CHECK(k && !xcs_kernel_host_fibers(k));
    return k;
}

/* One element of a dt buffer as a double, and back. */
static double elem_get(const void *p, xcs_dtype dt, int64_t i) {
    return dt == XCS_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static void elem_set(void *p, xcs_dtype dt, int64_t i, double v) {
    if (dt == XCS_F32) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

/* op on in through BEFORE, the reference factorisation (as backend.c
 * calls cuSOLVER: each matrix at its place in work, or in out for
 * cholesky) and AFTER, into out; returns the fault word. */
static unsigned run_around_solver(xcs_kernel_host *before, xcs_kernel_host *after, xcs_op op,
                                  const xcs_tensor *const *in, xcs_tensor *out, unsigned threads) {
    xcs_cuda_linalg_args a;
    if (xcs_cuda_linalg_args_of(op, op == XCS_OP_SOLVE ? 2 : 1, in, out, &a)) {
        CHECK(false);
        return 0;
    }
    xcs_cuda_linalg_solver_args(op, &a);
    const xcs_dtype dt = out->dtype;
    const int64_t n = a.n, k = op == XCS_OP_SOLVE ? a.k : 0, batch = a.batch;
    a.a = xcs_tensor_data(in[0]);
    a.b = op == XCS_OP_SOLVE ? xcs_tensor_data(in[1]) : NULL;
    a.out = xcs_tensor_data(out);
    size_t wb = (size_t)(batch * a.work_per) * xcs_dtype_size(dt);
    void *work = malloc(wb > 0 ? wb : 1);
    memset(work, 0xA5, wb);
    long long *piv = malloc((size_t)(batch * n + 1) * sizeof *piv);
    int *info = calloc((size_t)(2 * batch + 1), sizeof *info);
    double *m64 = malloc((size_t)(n * (n + k) + 1) * sizeof *m64);
    unsigned err = 0;
    a.work = work, a.piv = piv, a.info = info, a.err = &err;
    xcs_cuda_linalg_spec bs = {op, dt, XCS_CUDA_LA_BEFORE}, as = {op, dt, XCS_CUDA_LA_AFTER};
    long long blocks = xcs_cuda_linalg_blocks(&bs, &a);
    /* fewer blocks than the work: the grid-stride loops go round */
    CHECK_OK(xcs_kernel_host_launch(before, 0, &a, (unsigned)(blocks < 3 ? blocks : 3), threads));
    for (int64_t m = 0; m < batch; m++) {
        void *mat = op == XCS_OP_CHOLESKY ? (char *)a.out + (size_t)(m * n * n) * xcs_dtype_size(dt)
                                          : (char *)work + (size_t)(m * a.work_per) * xcs_dtype_size(dt);
        for (int64_t i = 0; i < n * (n + k); i++) m64[i] = elem_get(mat, dt, i);
        if (op == XCS_OP_CHOLESKY) {
            info[m] = ref_potrf_u(m64, n);
        } else {
            info[m] = ref_getrf(m64, n, piv + m * n);
            if (k > 0) ref_getrs_t(m64, piv + m * n, n, k, m64 + n * n);
        }
        for (int64_t i = 0; i < n * (n + k); i++) elem_set(mat, dt, i, m64[i]);
    }
    blocks = xcs_cuda_linalg_blocks(&as, &a);
    CHECK_OK(xcs_kernel_host_launch(after, 0, &a, (unsigned)(blocks < 3 ? blocks : 3), threads));
    free(work), free(piv), free(info), free(m64);
    return err;
}

static void test_around_solver_against_cpu(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    const xcs_op ops[3] = {XCS_OP_SOLVE, XCS_OP_SLOGDET, XCS_OP_CHOLESKY};
    int cases = 0;
    CHECK(!xcs_cuda_linalg_solver(XCS_OP_SOLVE, XCS_CUDA_SOLVER_MIN - 1) &&
          xcs_cuda_linalg_solver(XCS_OP_CHOLESKY, XCS_CUDA_SOLVER_MIN) &&
          !xcs_cuda_linalg_solver(XCS_OP_EIGH, 1000));
    for (int d = 0; d < 2; d++)
        for (int o = 0; o < 3; o++) {
            xcs_kernel_host *kb = stage_kernel(ops[o], dts[d], XCS_CUDA_LA_BEFORE);
            xcs_kernel_host *ka = stage_kernel(ops[o], dts[d], XCS_CUDA_LA_AFTER);
            const bool chol = ops[o] == XCS_OP_CHOLESKY;
            for (int trial = 0; kb && ka && trial < 8; trial++) {
                const draw_kind kind = trial < 5 ? WELL : trial < 7 ? TIES : SINGULAR;
                /* trial 0: past the CPU's LAPACK bound (64 rows), as big matrices are */
                const int64_t n = trial == 0 ? uniform(64, 90) : uniform(1, trial % 2 ? 9 : 40);
                const int64_t batch = uniform(1, 5), kk = trial == 3 ? 0 : uniform(1, 5);
                la_case c;
                case_make(&c, ops[o], dts[d], batch, n, kk, kind, chol && kind == WELL);
                const xcs_tensor *in[2] = {c.a, c.b};
                const unsigned threads = trial % 3 == 2 ? 32 : XCS_CUDA_BLOCK;
                case_check(&c, c.got ? run_around_solver(kb, ka, ops[o], in, c.got, threads) : 0, " around cuSOLVER");
                case_free(&c);
                cases++;
            }
            xcs_kernel_host_free(kb);
            xcs_kernel_host_free(ka);
        }
    printf("  solve/slogdet/cholesky around cuSOLVER: %d cases\n", cases);
}

/* cuSOLVER that cannot be used says why, naming the library or the entry
 * point (backend.c then keeps the kernels); needs no GPU. */
static void test_solver_library_errors(void) {
    xcs_cusolver *s = NULL;
    setenv("XCS_CUSOLVER_LIBRARY", "/nonexistent/libcusolver.so.12", 1);
    CHECK_ERR(xcs_cusolver_open(NULL, &s), XCS_ERR_UNSUPPORTED, "cuSOLVER not found (tried /nonexistent/libcusolver.so.12)");
    CHECK(s == NULL);
    setenv("XCS_CUSOLVER_LIBRARY", "libm.so.6", 1); /* a library, but not cuSOLVER */
    CHECK_ERR(xcs_cusolver_open(NULL, &s), XCS_ERR_UNSUPPORTED, "cuSOLVER lacks cusolverDnCreate");
    CHECK(s == NULL);
    unsetenv("XCS_CUSOLVER_LIBRARY");
}

/* eigh: the kernel runs the CPU's Jacobi rotations in the CPU's order, so
 * its values and vectors (signs included) are the CPU's to rounding: on
 * symmetric matrices read from the lower triangle (the upper one garbage),
 * on matrices with repeated eigenvalues (a diagonal with ties, where no
 * rotation happens), 1 to 7 rows (the kernel's range); and they make the
 * decomposition. */
/* The values-only kernel of op (EIGVALSH, SVDVALS) on in: row `row` of
 * the CPU's full decomposition `want`, to rounding. */
static void check_values_only(xcs_kernel_host *k, xcs_op op, const xcs_tensor *const *in, const xcs_tensor *want,
                              int64_t row, unsigned threads, double tol) {
    xcs_tensor *w = NULL, *got = NULL;
    CHECK_OK(xcs_index_axis(want, want->ndim - 2, row, &w)); /* [batch, k] */
    if (w) CHECK_OK(xcs_tensor_empty(w->dtype, w->ndim, w->shape, &got));
    if (got) CHECK_EQ_I((int)run(k, op, in, got, threads), 0);
    const int bad = got && w ? compare(got, w, tol, tol) : 1;
    if (bad) printf("  %s %s: %d values differ\n", xcs_op_name(op), xcs_dtype_name(want->dtype), bad);
    CHECK_EQ_I(bad, 0);
    xcs_tensor_free(w);
    xcs_tensor_free(got);
}

static void test_eigh_against_cpu(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    int cases = 0;
    for (int d = 0; d < 2; d++) {
        xcs_kernel_host *k = linalg_kernel(XCS_OP_EIGH, dts[d]), *kv = linalg_kernel(XCS_OP_EIGVALSH, dts[d]);
        const bool f32 = dts[d] == XCS_F32;
        const double tol = f32 ? 2e-4 : 1e-10;
        for (int trial = 0; k && trial < 10; trial++) {
            CHECK_OK(xcs_kernel_host_set_schedule(k, XCS_KERNEL_HOST_RANDOM, next_u64()));
            const int64_t n = uniform(1, xcs_cuda_linalg_limit(XCS_OP_EIGH)), batch = uniform(1, 4);
            xcs_tensor *a64 = matrices(batch, n, WELL, false);
            double *p = a64 ? xcs_tensor_data(a64) : NULL;
            for (int64_t m = 0; p && trial == 1 && m < batch; m++) /* diagonal, ties: nothing to rotate */
                for (int64_t i = 0; i < n * n; i++) p[m * n * n + i] = i % (n + 1) ? (i % n > i / n ? 7.0 : 0.0)
                                                                                   : (double)uniform(0, 3);
            xcs_tensor *a = as_dtype(a64, dts[d]), *want = NULL, *got = NULL;
            const xcs_tensor *in[1] = {a};
            CHECK_OK(xcs_linalg(XCS_OP_EIGH, 1, in, &want));
            const int64_t oshape[3] = {batch, n + 1, n};
            CHECK_OK(xcs_tensor_empty(dts[d], 3, oshape, &got));
            const unsigned threads = trial % 3 == 2 ? 32 : XCS_CUDA_BLOCK;
            if (got) CHECK_EQ_I((int)run(k, XCS_OP_EIGH, in, got, threads), 0);
            int bad = got && want ? compare(got, want, tol, tol) : 1;
            if (bad) printf("  eigh %s n=%lld batch=%lld: %d elements differ\n", xcs_dtype_name(dts[d]),
                            (long long)n, (long long)batch, bad);
            CHECK_EQ_I(bad, 0);
            if (kv && want) check_values_only(kv, XCS_OP_EIGVALSH, in, want, 0, threads, tol);
            /* A v_j = w_j v_j for the symmetric A of the lower triangle */
            xcs_tensor *g64 = got ? as_dtype(got, XCS_F64) : NULL;
            const double *g = g64 ? xcs_tensor_data(g64) : NULL;
            double worst = 0;
            for (int64_t m = 0; g && p && m < batch; m++) {
                const double *am = p + m * n * n, *wv = g + m * (n + 1) * n, *V = wv + n;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < n; j++) {
                        double av = 0;
                        for (int64_t q = 0; q < n; q++) av += (i >= q ? am[i * n + q] : am[q * n + i]) * V[q * n + j];
                        worst = fmax(worst, fabs(av - wv[j] * V[i * n + j]));
                    }
            }
            CHECK(worst <= (f32 ? 1e-3 : 1e-10) * (double)(n + 1) * (trial == 1 ? 1.0 : (double)n));
            xcs_tensor *fr[] = {a64, a, want, got, g64};
            for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) xcs_tensor_free(fr[i]);
            cases++;
        }
        xcs_kernel_host_free(k);
        xcs_kernel_host_free(kv);
    }
    printf("  eigh, eigvalsh: %d cases\n", cases);
}

/* svd and qr: the CPU's sums, rotations and reflections in its order, so
 * its factors to rounding (signs included), on tall, wide and square
 * matrices of 1 to 20 rows and columns (the smaller side below svd's 24),
 * rank-deficient ones (zero values: the orthonormal completion) included. */
static void test_svd_qr_against_cpu(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    const xcs_op ops[2] = {XCS_OP_SVD, XCS_OP_QR};
    int cases = 0;
    for (int d = 0; d < 2; d++)
        for (int o = 0; o < 2; o++) {
            xcs_kernel_host *k = linalg_kernel(ops[o], dts[d]);
            xcs_kernel_host *kv = ops[o] == XCS_OP_SVD ? linalg_kernel(XCS_OP_SVDVALS, dts[d]) : NULL;
            const double tol = dts[d] == XCS_F32 ? 1e-4 : 1e-10;
            for (int trial = 0; k && trial < 9; trial++) {
                CHECK_OK(xcs_kernel_host_set_schedule(k, XCS_KERNEL_HOST_RANDOM, next_u64()));
                const int64_t m = uniform(1, 21), n = trial % 3 == 0 ? m : uniform(1, 21), batch = uniform(1, 4);
                const int64_t shape[3] = {batch, m, n};
                xcs_tensor *a64 = NULL;
                CHECK_OK(xcs_tensor_empty(XCS_F64, 3, shape, &a64));
                double *p = a64 ? xcs_tensor_data(a64) : NULL;
                for (int64_t i = 0; p && i < batch * m * n; i++) p[i] = test_rnd_unit(&R) * 2 - 1;
                for (int64_t b = 0; p && trial % 3 == 1 && b < batch; b++) /* rank 1: u v^T */
                    for (int64_t i = 0; i < m * n; i++) p[b * m * n + i] = (double)(i / n + 1) * (double)(i % n - 2);
                xcs_tensor *a = as_dtype(a64, dts[d]), *want = NULL, *got = NULL;
                const xcs_tensor *in[1] = {a};
                CHECK_OK(xcs_linalg(ops[o], 1, in, &want));
                if (want) CHECK_OK(xcs_tensor_empty(dts[d], want->ndim, want->shape, &got));
                const unsigned threads = trial % 2 ? 32 : XCS_CUDA_BLOCK;
                if (got) CHECK_EQ_I((int)run(k, ops[o], in, got, threads), 0);
                int bad = got && want ? compare(got, want, tol, tol) : 1;
                if (bad) printf("  %s %s %lldx%lld batch=%lld: %d elements differ\n", xcs_op_name(ops[o]),
                                xcs_dtype_name(dts[d]), (long long)m, (long long)n, (long long)batch, bad);
                CHECK_EQ_I(bad, 0);
                if (kv && want) check_values_only(kv, XCS_OP_SVDVALS, in, want, m, threads, tol);
                xcs_tensor *fr[] = {a64, a, want, got};
                for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) xcs_tensor_free(fr[i]);
                cases++;
            }
            xcs_kernel_host_free(k);
            xcs_kernel_host_free(kv);
        }
    printf("  svd/svdvals/qr: %d cases\n", cases);
}

/* eigvalsh and svdvals past the vectors' range (the device keeps them up
 * to xcs_cuda_linalg_limit's rows): the Jacobi kernel's values against the
 * CPU's LAPACK ones (syevd / gesdd without vectors), to rounding, on
 * 8 to 40 rows and columns (tall, wide and square). */
static void test_values_past_vectors(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    const xcs_op ops[2] = {XCS_OP_EIGVALSH, XCS_OP_SVDVALS};
    int cases = 0;
    for (int d = 0; d < 2; d++)
        for (int o = 0; o < 2; o++) {
            xcs_kernel_host *k = linalg_kernel(ops[o], dts[d]);
            const double tol = dts[d] == XCS_F32 ? 2e-4 : 1e-10;
            for (int trial = 0; k && trial < 3; trial++) {
                CHECK_OK(xcs_kernel_host_set_schedule(k, XCS_KERNEL_HOST_RANDOM, next_u64()));
                const int64_t m = uniform(8, 41), batch = uniform(1, 3);
                const int64_t n = ops[o] == XCS_OP_EIGVALSH || trial == 0 ? m : uniform(8, 41);
                xcs_tensor *a64 = ops[o] == XCS_OP_EIGVALSH ? matrices(batch, n, WELL, false) : NULL;
                if (!a64) {
                    const int64_t shape[3] = {batch, m, n};
                    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, shape, &a64));
                    double *p = a64 ? xcs_tensor_data(a64) : NULL;
                    for (int64_t i = 0; p && i < batch * m * n; i++) p[i] = test_rnd_unit(&R) * 2 - 1;
                }
                xcs_tensor *a = as_dtype(a64, dts[d]), *want = NULL, *got = NULL;
                const xcs_tensor *in[1] = {a};
                CHECK_OK(xcs_linalg(ops[o], 1, in, &want)); /* LAPACK from these sizes */
                if (want) CHECK_OK(xcs_tensor_empty(dts[d], want->ndim, want->shape, &got));
                if (got) CHECK_EQ_I((int)run(k, ops[o], in, got, 64), 0);
                int bad = got && want ? compare(got, want, tol, tol) : 1;
                if (bad) printf("  %s %s %lldx%lld batch=%lld: %d values differ\n", xcs_op_name(ops[o]),
                                xcs_dtype_name(dts[d]), (long long)m, (long long)n, (long long)batch, bad);
                CHECK_EQ_I(bad, 0);
                xcs_tensor *fr[] = {a64, a, want, got};
                for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) xcs_tensor_free(fr[i]);
                cases++;
            }
            xcs_kernel_host_free(k);
        }
    printf("  eigvalsh/svdvals from 8 rows: %d cases\n", cases);
}

/* slogdet of 0 x 0 matrices (the only op with elements to write for
 * them): (1, 0) each, numpy's empty product. */
static void test_empty_matrices(void) {
    xcs_kernel_host *k = linalg_kernel(XCS_OP_SLOGDET, XCS_F64);
    const int64_t s[3] = {3, 0, 0}, so[2] = {3, 2};
    xcs_tensor *a = NULL, *out = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, s, &a));
    CHECK_OK(xcs_tensor_empty(XCS_F64, 2, so, &out));
    const xcs_tensor *in[1] = {a};
    if (k && a && out) {
        memset(xcs_tensor_data(out), 0xA5, 6 * sizeof(double));
        CHECK_EQ_I((int)run(k, XCS_OP_SLOGDET, in, out, XCS_CUDA_BLOCK), 0);
        const double *o = xcs_tensor_data(out);
        for (int i = 0; i < 3; i++) CHECK(o[2 * i] == 1 && o[2 * i + 1] == 0);
    }
    xcs_tensor_free(a);
    xcs_tensor_free(out);
    xcs_kernel_host_free(k);
}

/* Matrices whose smaller side reaches the op's limit (eigh 8, svd 24, qr
 * 64: where the CPU uses LAPACK), float16 (core computes in float32) and
 * int64 have no kernel; a malformed call is an internal error. */
static void test_refusals(void) {
    const int64_t shape[2] = {3, 3}, big[2] = {64, 69};
    xcs_tensor *f = NULL, *h = NULL, *i = NULL, *bg = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F32, 2, shape, &f));
    CHECK_OK(xcs_tensor_empty(XCS_F16, 2, shape, &h));
    CHECK_OK(xcs_tensor_empty(XCS_I64, 2, shape, &i));
    CHECK_OK(xcs_tensor_empty(XCS_F64, 2, big, &bg));
    xcs_cuda_linalg_args a;
    const xcs_tensor *in[2] = {f, f}, *hin[1] = {h}, *iin[1] = {i}, *bin[1] = {bg};
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_SVD, 1, bin, bg, &a), XCS_ERR_UNSUPPORTED, "fewer than 24 rows or columns");
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_QR, 1, bin, bg, &a), XCS_ERR_UNSUPPORTED, "fewer than 64 rows or columns");
    const int64_t e8[2] = {8, 8};
    xcs_tensor *eg = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F32, 2, e8, &eg));
    const xcs_tensor *ein[1] = {eg};
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_EIGH, 1, ein, eg, &a), XCS_ERR_UNSUPPORTED, "fewer than 8 rows");
    CHECK_OK(xcs_cuda_linalg_args_of(XCS_OP_EIGVALSH, 1, ein, eg, &a)); /* values alone: to 63 rows */
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_SVDVALS, 1, bin, bg, &a), XCS_ERR_UNSUPPORTED, "fewer than 48 rows");
    xcs_tensor_free(eg);
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_CHOLESKY, 1, hin, h, &a), XCS_ERR_UNSUPPORTED, "dtype float16");
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_SLOGDET, 1, iin, i, &a), XCS_ERR_UNSUPPORTED, "dtype int64");
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_SOLVE, 1, in, f, &a), XCS_ERR_INTERNAL, "bad operands");
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_EIGH, 1, bin, bg, &a), XCS_ERR_INTERNAL, "bad operands"); /* not square */
    CHECK_ERR(xcs_cuda_linalg_args_of(XCS_OP_ADD, 1, in, f, &a), XCS_ERR_UNSUPPORTED, "no CUDA kernel");
    xcs_cuda_linalg_spec ls = {XCS_OP_ADD, XCS_F64, XCS_CUDA_LA_WHOLE};
    CHECK(xcs_cuda_linalg_codegen_alloc(&ls) == NULL);
    xcs_tensor *fr[] = {f, h, i, bg};
    for (size_t j = 0; j < sizeof fr / sizeof fr[0]; j++) xcs_tensor_free(fr[j]);
}

int main(void) {
    CHECK_OK(xcs_host_init());
    R.state = test_run_seed(); /* fresh inputs each run; the seed repeats one */
    if (!kernel_tests_open(&nv)) return 77;
    RUN(test_values_against_cpu);
    RUN(test_around_solver_against_cpu);
    RUN(test_solver_library_errors);
    RUN(test_eigh_against_cpu);
    RUN(test_svd_qr_against_cpu);
    RUN(test_values_past_vectors);
    RUN(test_empty_matrices);
    RUN(test_refusals);
    printf("%d kernels compiled with NVRTC\n", nvrtc_compiled);
    xcs_nvrtc_close(nv);
    return check_report();
}
