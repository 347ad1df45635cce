/* test_matmul.c — the CPU GEMM kernels against a naive triple loop.
 *
 * Blocked and BLAS kernels are called directly (xcs_host_matmul_blocked /
 * _blas) on hand-made strided views: odd sizes around the register and cache
 * blocks, transposed / strided / negative / broadcast operands, batch
 * broadcasting and folding, K = 0, every dtype (ints exact with wraparound,
 * bool as or-of-ands), and thread-count independence.
 *
 * `test_matmul --bench` prints GFLOP/s of blocked vs BLAS GEMM at 512..2048
 * and at an MLP step's shapes. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cpu_kernels.h"
#include "testutil.h"
#include "xcs_host.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static test_rng rng = {0x9E3779B97F4A7C15ull};

/* Test views (layouts: testutil.h) hold random values: floats uniform in
 * [-1, 1), ints in [-5, 5] or, when `big`, from a wide range (to test
 * wraparound), bools true one time in three. */
static void fill_mm(void *ctx, xcs_dtype dt, char *p, int64_t i) {
    bool big = *(const bool *)ctx;
    double u = test_rnd_unit(&rng) * 2 - 1;
    int64_t iv = big ? (int64_t)(test_rnd(&rng) >> 1) : (int64_t)(test_rnd(&rng) % 11) - 5;
    if (dt == XCS_BOOL) iv = test_rnd(&rng) % 3 == 0;
    test_store(dt, p, i, iv, u);
}
static xcs_tensor *make_view(xcs_dtype dt, int nd, const int64_t *shape, test_layout L, bool big) {
    return test_make_view(dt, nd, shape, L, fill_mm, &big);
}

static xcs_tensor *make_out(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *t = NULL;
    xcs_tensor_empty(dt, nd, shape, &t);
    memset(t->storage->data, 0x7f, t->storage->nbytes); /* garbage, never read */
    return t;
}

/* Checks out == a @ b elementwise: floats within tol * sum|a||b|, ints
 * exactly (wrapping), bool as or-of-ands.  Returns the number of mismatches. */
static int check_product(const xcs_tensor *a, const xcs_tensor *b, const xcs_tensor *out,
                         double tol) {
    int nd = out->ndim, bad = 0;
    int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = a->shape[nd - 1];
    int64_t nbatch = xcs_tensor_numel(out) / (M * N > 0 ? M * N : 1);
    if (M * N == 0) return 0;
    for (int64_t t = 0; t < nbatch; t++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                int64_t fo = (t * M + i) * N + j;
                if (xcs_dtype_is_float(out->dtype)) {
                    double s = 0, mag = 0;
                    for (int64_t k = 0; k < K; k++) {
                        double x = xcs_tensor_get_f64(a, (t * M + i) * K + k);
                        double y = xcs_tensor_get_f64(b, (t * K + k) * N + j);
                        s += x * y;
                        mag += fabs(x * y);
                    }
                    double got = xcs_tensor_get_f64(out, fo);
                    /* float16 results below 2^-14 are subnormal: a fixed quantum of 2^-24 */
                    double quantum = out->dtype == XCS_F16 ? 0x1p-25 : 1e-300;
                    if (!(fabs(got - s) <= tol * mag + quantum)) {
                        if (bad++ < 3)
                            fprintf(stderr, "  [%lld,%lld,%lld] got %.9g want %.9g\n",
                                    (long long)t, (long long)i, (long long)j, got, s);
                    }
                } else {
                    uint64_t s = 0;
                    for (int64_t k = 0; k < K; k++) {
                        uint64_t x = (uint64_t)xcs_tensor_get_i64(a, (t * M + i) * K + k);
                        uint64_t y = (uint64_t)xcs_tensor_get_i64(b, (t * K + k) * N + j);
                        s = out->dtype == XCS_BOOL ? (s | (x & y)) : s + x * y;
                    }
                    int64_t want = out->dtype == XCS_I32 ? (int64_t)(int32_t)(uint32_t)s
                                                         : (int64_t)s;
                    int64_t got = xcs_tensor_get_i64(out, fo);
                    if (got != want && bad++ < 3)
                        fprintf(stderr, "  [%lld,%lld,%lld] got %lld want %lld\n", (long long)t,
                                (long long)i, (long long)j, (long long)got, (long long)want);
                }
            }
    return bad;
}

/* float16/bfloat16: float32 accumulation, then one rounding (2^-11, 2^-8 of the result) */
static double tol_for(xcs_dtype dt) {
    return dt == XCS_F32 ? 2e-6 : dt == XCS_F16 ? 0x1p-10 : dt == XCS_BF16 ? 0x1p-7 : 1e-14;
}


typedef xcs_status (*mm_fn)(const xcs_tensor *, const xcs_tensor *, xcs_tensor *);
static mm_fn gemm_for(xcs_dtype dt) { return xcs_dtype_is_half(dt) ? xcs_cpu_matmul : xcs_host_matmul_blocked; }

/* One 2-D case: a [M,K] with test_layout la, b [K,N] with lb. */
static int run_case(mm_fn fn, xcs_dtype dt, int64_t M, int64_t N, int64_t K, test_layout la, test_layout lb,
                    bool big) {
    xcs_tensor *a = make_view(dt, 2, SHAPE(M, K), la, big);
    xcs_tensor *b = make_view(dt, 2, SHAPE(K, N), lb, big);
    xcs_tensor *o = make_out(dt, 2, SHAPE(M, N));
    int bad = 0;
    xcs_status st = fn(a, b, o);
    CHECK_OK(st);
    if (st == XCS_OK) bad = check_product(a, b, o, tol_for(dt));
    if (bad)
        fprintf(stderr, "  %s %lldx%lldx%lld: %d mismatches\n", xcs_dtype_name(dt), (long long)M,
                (long long)N, (long long)K, bad);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(o);
    return bad;
}

static const int T2[] = {1, 0};
static const test_layout CONTIG = {NULL, 1, 0, 0};

static void test_odd_sizes_f32(void) {
    static const int64_t sz[] = {1, 2, 5, 6, 7, 16, 17, 33, 67};
    int n = (int)(sizeof sz / sizeof sz[0]), bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int k = 0; k < n; k++)
                bad += run_case(xcs_host_matmul_blocked, XCS_F32, sz[i], sz[j], sz[k], CONTIG,
                                CONTIG, false);
    CHECK_EQ_I(bad, 0);
}

static void test_dtypes_and_layouts(void) {
    const test_layout lays[] = {
        CONTIG,
        {T2, 1, 0, 0},      /* transposed */
        {NULL, 2, 0, 0},    /* every other element */
        {T2, 3, 1u, 0},     /* transposed, strided, rows reversed */
        {NULL, 1, 3u, 0},   /* both dims reversed */
        {NULL, 1, 0, 1u},   /* rows broadcast (stride 0) */
    };
    int nl = (int)(sizeof lays / sizeof lays[0]);
    static const int64_t dims[][3] = {{1, 1, 1}, {3, 5, 7}, {13, 17, 19}, {67, 35, 33},
                                      {6, 16, 1}, {1, 40, 9}};
    int bad = 0;
    for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++)
        for (int c = 0; c < 6; c++)
            for (int la = 0; la < nl; la++)
                for (int lb = 0; lb < nl; lb += (la % 2) + 1)
                    bad += run_case(gemm_for((xcs_dtype)dt), (xcs_dtype)dt, dims[c][0],
                                    dims[c][1], dims[c][2], lays[la], lays[lb], false);
    CHECK_EQ_I(bad, 0);
}

static void test_int_wraparound(void) {
    int bad = 0;
    bad += run_case(xcs_host_matmul_blocked, XCS_I32, 9, 17, 31, CONTIG, CONTIG, true);
    bad += run_case(xcs_host_matmul_blocked, XCS_I64, 9, 17, 31, CONTIG, (test_layout){T2, 1, 0, 0},
                    true);
    CHECK_EQ_I(bad, 0);
}

/* Crosses MC, KC and NC blocks and the thread split. */
static void test_block_edges(void) {
    int bad = 0;
    bad += run_case(xcs_host_matmul_blocked, XCS_F32, 401, 67, 600, CONTIG, CONTIG, false);
    bad += run_case(xcs_host_matmul_blocked, XCS_F64, 175, 93, 513, (test_layout){T2, 1, 0, 0},
                    CONTIG, false);
    bad += run_case(xcs_host_matmul_blocked, XCS_F32, 7, 4200, 70, CONTIG, (test_layout){T2, 1, 0, 0},
                    false);
    bad += run_case(xcs_host_matmul_blocked, XCS_I64, 90, 2100, 20, CONTIG, CONTIG, false);
    CHECK_EQ_I(bad, 0);
}

static void test_k_zero_and_empty(void) {
    for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) {
        xcs_tensor *a = make_view((xcs_dtype)dt, 2, SHAPE(4, 0), CONTIG, false);
        xcs_tensor *b = make_view((xcs_dtype)dt, 2, SHAPE(0, 5), CONTIG, false);
        xcs_tensor *o = make_out((xcs_dtype)dt, 2, SHAPE(4, 5));
        CHECK_OK(gemm_for((xcs_dtype)dt)(a, b, o));
        for (int i = 0; i < 20; i++) CHECK(xcs_tensor_get_f64(o, i) == 0.0);
        if (dt == XCS_F32 || dt == XCS_F64) {
            memset(o->storage->data, 0x7f, o->storage->nbytes);
            CHECK_OK(xcs_cpu_matmul(a, b, o));
            for (int i = 0; i < 20; i++) CHECK(xcs_tensor_get_f64(o, i) == 0.0);
        }
        xcs_tensor_free(a);
        xcs_tensor_free(b);
        xcs_tensor_free(o);
    }
    xcs_tensor *a = make_view(XCS_F32, 2, SHAPE(0, 3), CONTIG, false);
    xcs_tensor *b = make_view(XCS_F32, 2, SHAPE(3, 5), CONTIG, false);
    xcs_tensor *o = make_out(XCS_F32, 2, SHAPE(0, 5));
    CHECK_OK(xcs_host_matmul_blocked(a, b, o));
    CHECK_OK(xcs_cpu_matmul(a, b, o));
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(o);
}

/* a [3,4,M,K] broadcast from [3,1,M,K]; b [3,4,K,N] from [1,4,K,N]; and a
 * folded case a [5,M,K] @ b [K,N] broadcast to [5,K,N]. */
static void test_batches(void) {
    mm_fn fns[2] = {xcs_host_matmul_blocked, xcs_cpu_matmul};
    for (int f = 0; f < 2; f++)
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) {
            xcs_dtype d = (xcs_dtype)dt;
            if (f == 0 && xcs_dtype_is_half(d)) { /* the blocked GEMM refuses them, cleanly */
                xcs_tensor *a = make_view(d, 2, SHAPE(2, 3), CONTIG, false), *o = make_out(d, 2, SHAPE(2, 2));
                xcs_tensor *b = make_view(d, 2, SHAPE(3, 2), CONTIG, false);
                CHECK_ERR(xcs_host_matmul_blocked(a, b, o), XCS_ERR_TYPE, "float32");
                xcs_tensor_free(a), xcs_tensor_free(b), xcs_tensor_free(o);
                continue;
            }
            xcs_tensor *a = make_view(d, 4, SHAPE(3, 4, 7, 9), (test_layout){NULL, 1, 0, 2u}, false);
            xcs_tensor *b = make_view(d, 4, SHAPE(3, 4, 9, 5), (test_layout){NULL, 1, 0, 1u}, false);
            xcs_tensor *o = make_out(d, 4, SHAPE(3, 4, 7, 5));
            CHECK_OK(fns[f](a, b, o));
            CHECK_EQ_I(check_product(a, b, o, tol_for(d)), 0);
            xcs_tensor_free(a);
            xcs_tensor_free(b);
            xcs_tensor_free(o);
            a = make_view(d, 3, SHAPE(5, 11, 13), CONTIG, false);
            b = make_view(d, 3, SHAPE(5, 13, 6), (test_layout){NULL, 1, 0, 1u}, false);
            o = make_out(d, 3, SHAPE(5, 11, 6));
            CHECK_OK(fns[f](a, b, o));
            CHECK_EQ_I(check_product(a, b, o, tol_for(d)), 0);
            xcs_tensor_free(a);
            xcs_tensor_free(b);
            xcs_tensor_free(o);
        }
    /* many small matrices: the one-GEMM-per-thread path */
    xcs_tensor *a = make_view(XCS_F32, 3, SHAPE(300, 8, 12), (test_layout){NULL, 1, 4u, 0}, false);
    xcs_tensor *b = make_view(XCS_F32, 3, SHAPE(300, 12, 10), CONTIG, false);
    xcs_tensor *o = make_out(XCS_F32, 3, SHAPE(300, 8, 10));
    CHECK_OK(xcs_host_matmul_blocked(a, b, o));
    CHECK_EQ_I(check_product(a, b, o, tol_for(XCS_F32)), 0);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(o);
}

/* The unpacked path computes each element as one in-order chain over k,
 * whichever way it gets there: rows of a batch against a shared B (folded
 * into one product of Bn rows), and a transposed B (its strided columns,
 * packed when there are rows enough) give the bits of the plain products. */
static void test_same_bits_across_paths(void) {
    const int64_t Bn = 9, K = 40, N = 24;
    for (int dt = XCS_F32; dt <= XCS_F64; dt++) {
        xcs_tensor *a2 = make_view((xcs_dtype)dt, 2, SHAPE(Bn, K), CONTIG, false), *a3 = NULL;
        xcs_tensor *bt = make_view((xcs_dtype)dt, 2, SHAPE(N, K), CONTIG, false), *bT = NULL, *bc = NULL;
        CHECK_OK(xcs_reshape(a2, 3, SHAPE(Bn, 1, K), &a3));
        CHECK_OK(xcs_permute(bt, T2, &bT)); /* [K, N], strided columns */
        CHECK_OK(xcs_contiguous(bT, &bc));
        for (int tr = 0; tr < 2; tr++) {
            const xcs_tensor *b = tr ? bT : bc;
            xcs_tensor *bb = NULL, *whole = make_out((xcs_dtype)dt, 2, SHAPE(Bn, N));
            xcs_tensor *batched = make_out((xcs_dtype)dt, 3, SHAPE(Bn, 1, N));
            CHECK_OK(xcs_broadcast_to(b, 3, SHAPE(Bn, K, N), &bb));
            CHECK_OK(xcs_host_matmul_blocked(a3, bb, batched)); /* Bn products of one row, B shared */
            CHECK_OK(xcs_host_matmul_blocked(a2, b, whole));     /* one product of Bn rows */
            CHECK_EQ_I(check_product(a2, bc, whole, tol_for((xcs_dtype)dt)), 0);
            for (int64_t r = 0; r < Bn; r++) {
                xcs_slice sl = {.start = r, .stop = r + 1, .step = 1, .has_start = true, .has_stop = true};
                xcs_tensor *row = NULL, *one = make_out((xcs_dtype)dt, 2, SHAPE(1, N));
                CHECK_OK(xcs_slice_axis(a2, 0, sl, &row));
                CHECK_OK(xcs_host_matmul_blocked(row, b, one)); /* a single row */
                size_t w = xcs_dtype_size((xcs_dtype)dt) * (size_t)N;
                CHECK(memcmp(xcs_tensor_data(one), (const char *)xcs_tensor_data(whole) + r * w, w) == 0);
                CHECK(memcmp(xcs_tensor_data(one), (const char *)xcs_tensor_data(batched) + r * w, w) == 0);
                xcs_tensor_free(row);
                xcs_tensor_free(one);
            }
            xcs_tensor_free(bb);
            xcs_tensor_free(whole);
            xcs_tensor_free(batched);
        }
        xcs_tensor *ts[] = {a2, a3, bt, bT, bc};
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    }
}

/* xcs_matmul_fold_rows (the CUDA backend's one-GEMM batches): the folded
 * 2-D product is the batched one, bit for bit; it folds only batches of
 * rows against one b that form one strided run. */
static void test_fold_rows(void) {
    const int64_t Bn = 6, M = 3, K = 10, N = 7;
    xcs_tensor *bm = make_view(XCS_F64, 2, SHAPE(K, N), CONTIG, false), *bb = NULL;
    CHECK_OK(xcs_broadcast_to(bm, 3, SHAPE(Bn, K, N), &bb));
    for (int64_t m = 1; m <= M; m += M - 1) {
        xcs_tensor *a = make_view(XCS_F64, 3, SHAPE(Bn, m, K), CONTIG, false);
        xcs_tensor *want = make_out(XCS_F64, 3, SHAPE(Bn, m, N)), *got = make_out(XCS_F64, 3, SHAPE(Bn, m, N));
        xcs_tensor a2, b2, o2;
        CHECK(xcs_matmul_fold_rows(a, bb, got, &a2, &b2, &o2));
        CHECK_EQ_I((int)a2.shape[0], (int)(Bn * m));
        CHECK_OK(xcs_host_matmul_blocked(a, bb, want));
        CHECK_OK(xcs_host_matmul_blocked(&a2, &b2, &o2));
        CHECK(memcmp(xcs_tensor_data(want), xcs_tensor_data(got), (size_t)(Bn * m * N) * sizeof(double)) == 0);
        xcs_tensor_free(a);
        xcs_tensor_free(want);
        xcs_tensor_free(got);
    }
    /* no fold: b differs per batch entry; a's rows are not one run (a transposed block); one batch entry */
    xcs_tensor *a = make_view(XCS_F64, 3, SHAPE(Bn, M, K), CONTIG, false), *o = make_out(XCS_F64, 3, SHAPE(Bn, M, N));
    xcs_tensor *bfull = make_view(XCS_F64, 3, SHAPE(Bn, K, N), CONTIG, false), *at = NULL, *atT = NULL;
    xcs_tensor a2, b2, o2;
    CHECK(!xcs_matmul_fold_rows(a, bfull, o, &a2, &b2, &o2));
    at = make_view(XCS_F64, 3, SHAPE(Bn, K, M), CONTIG, false);
    CHECK_OK(xcs_permute(at, (const int[]){0, 2, 1}, &atT));
    CHECK(!xcs_matmul_fold_rows(atT, bb, o, &a2, &b2, &o2));
    xcs_tensor *a1 = make_view(XCS_F64, 3, SHAPE(1, M, K), CONTIG, false), *b1 = NULL, *o1 = make_out(XCS_F64, 3, SHAPE(1, M, N));
    CHECK_OK(xcs_broadcast_to(bm, 3, SHAPE(1, K, N), &b1));
    CHECK(!xcs_matmul_fold_rows(a1, b1, o1, &a2, &b2, &o2));
    xcs_tensor *ts[] = {bm, bb, a, o, bfull, at, atT, a1, b1, o1};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
}

/* BLAS (when built) and the blocked kernel agree, also via xcs_cpu_matmul. */
static void test_blas_agrees(void) {
    xcs_build_info info;
    xcs_host_build_info(&info);
    const test_layout lays[] = {CONTIG, {T2, 1, 0, 0}, {NULL, 2, 0, 0}, {NULL, 1, 2u, 0}};
    for (int dt = XCS_F32; dt <= XCS_F64; dt++)
        for (int la = 0; la < 4; la++)
            for (int lb = 0; lb < 4; lb++) {
                int bad = 0;
                if (info.has_cblas)
                    bad += run_case(xcs_host_matmul_blas, (xcs_dtype)dt, 37, 29, 41, lays[la],
                                    lays[lb], false);
                bad += run_case(xcs_cpu_matmul, (xcs_dtype)dt, 37, 29, 41, lays[la], lays[lb],
                                false);
                bad += run_case(xcs_cpu_matmul, (xcs_dtype)dt, 1, 29, 41, lays[la], lays[lb],
                                false);
                CHECK_EQ_I(bad, 0);
            }
    if (!info.has_cblas) {
        xcs_tensor *a = make_view(XCS_F32, 2, SHAPE(2, 2), CONTIG, false);
        xcs_tensor *o = make_out(XCS_F32, 2, SHAPE(2, 2));
        CHECK_ERR(xcs_host_matmul_blas(a, a, o), XCS_ERR_UNSUPPORTED, NULL);
        xcs_tensor_free(a);
        xcs_tensor_free(o);
    }
    /* big enough for xcs_cpu_matmul to pick BLAS (when built): agrees with blocked */
    for (int dt = XCS_F32; dt <= XCS_F64; dt++) {
        xcs_tensor *a = make_view((xcs_dtype)dt, 2, SHAPE(410, 400), (test_layout){T2, 1, 0, 0}, false);
        xcs_tensor *b = make_view((xcs_dtype)dt, 2, SHAPE(400, 420), CONTIG, false);
        xcs_tensor *o1 = make_out((xcs_dtype)dt, 2, SHAPE(410, 420));
        xcs_tensor *o2 = make_out((xcs_dtype)dt, 2, SHAPE(410, 420));
        CHECK_OK(xcs_cpu_matmul(a, b, o1));
        CHECK_OK(xcs_host_matmul_blocked(a, b, o2));
        double worst = 0;
        for (int64_t i = 0; i < 410 * 420; i++)
            worst = fmax(worst, fabs(xcs_tensor_get_f64(o1, i) - xcs_tensor_get_f64(o2, i)));
        CHECK(worst <= (dt == XCS_F32 ? 1e-4 : 1e-12));
        xcs_tensor_free(a), xcs_tensor_free(b), xcs_tensor_free(o1), xcs_tensor_free(o2);
    }
    /* ints are never BLAS */
    xcs_tensor *a = make_view(XCS_I32, 2, SHAPE(2, 2), CONTIG, false);
    xcs_tensor *o = make_out(XCS_I32, 2, SHAPE(2, 2));
    CHECK_ERR(xcs_host_matmul_blas(a, a, o), XCS_ERR_UNSUPPORTED, NULL);
    xcs_tensor_free(a);
    xcs_tensor_free(o);
}

static void test_bad_input(void) {
    xcs_tensor *a = make_view(XCS_F32, 2, SHAPE(2, 3), CONTIG, false);
    xcs_tensor *b = make_view(XCS_F64, 2, SHAPE(3, 2), CONTIG, false);
    xcs_tensor *o = make_out(XCS_F32, 2, SHAPE(2, 2));
    CHECK_ERR(xcs_host_matmul_blocked(a, b, o), XCS_ERR_TYPE, "dtypes");
    CHECK_ERR(xcs_host_matmul_blocked(a, a, o), XCS_ERR_SHAPE, NULL);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(o);
}

/* Bitwise the same with 1 and 2 threads (blocked kernel). */
static void test_thread_independent(void) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    xcs_tensor *a = make_view(XCS_F32, 2, SHAPE(300, 700), CONTIG, false);
    xcs_tensor *b = make_view(XCS_F32, 2, SHAPE(700, 130), (test_layout){T2, 1, 0, 0}, false);
    xcs_tensor *o1 = make_out(XCS_F32, 2, SHAPE(300, 130));
    xcs_tensor *o2 = make_out(XCS_F32, 2, SHAPE(300, 130));
    omp_set_num_threads(1);
    CHECK_OK(xcs_host_matmul_blocked(a, b, o1));
    omp_set_num_threads(2);
    CHECK_OK(xcs_host_matmul_blocked(a, b, o2));
    omp_set_num_threads(saved);
    CHECK(memcmp(o1->storage->data, o2->storage->data, 300 * 130 * 4) == 0);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(o1);
    xcs_tensor_free(o2);
#endif
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double bench_one(mm_fn fn, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *o, int64_t m,
                        int64_t k, int64_t n) {
    double best = 1e30, flop = 2.0 * (double)m * (double)k * (double)n;
    int reps = flop <= 3e8 ? 20 : flop <= 3e9 ? 5 : 3;
    fn(a, b, o); /* warm up (page faults, BLAS thread start) */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fn(a, b, o);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return flop / best * 1e-9;
}

static int bench(void) {
    xcs_build_info info;
    xcs_host_build_info(&info);
    printf("matmul GFLOP/s (best of reps), %d threads\n", info.max_threads);
    /* squares, then an MLP step's products (784-512-512, batch 256: forward, dW, dh) */
    const int64_t shapes[][3] = {{512, 512, 512},   {1024, 1024, 1024}, {2048, 2048, 2048}, {256, 784, 512},
                                 {256, 512, 512},   {784, 256, 512},    {512, 256, 512},    {256, 512, 784}};
    for (int dt = XCS_F32; dt <= XCS_F64; dt++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
            xcs_tensor *a = make_view((xcs_dtype)dt, 2, SHAPE(m, k), CONTIG, false);
            xcs_tensor *b = make_view((xcs_dtype)dt, 2, SHAPE(k, n), CONTIG, false);
            xcs_tensor *o = make_out((xcs_dtype)dt, 2, SHAPE(m, n));
            double gb = bench_one(xcs_host_matmul_blocked, a, b, o, m, k, n);
            double gl = info.has_cblas ? bench_one(xcs_host_matmul_blas, a, b, o, m, k, n) : 0;
            printf("  %s %5lld x %5lld x %5lld  blocked %7.1f  blas %7.1f  ratio %.2f\n",
                   xcs_dtype_name((xcs_dtype)dt), (long long)m, (long long)k, (long long)n, gb, gl,
                   gl > 0 ? gb / gl : 0);
            xcs_tensor_free(a);
            xcs_tensor_free(b);
            xcs_tensor_free(o);
        }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    if (xcs_host_init()) return 1; /* views and copies (test_same_bits_across_paths) go through the CPU backend */
    RUN(test_odd_sizes_f32);
    RUN(test_dtypes_and_layouts);
    RUN(test_int_wraparound);
    RUN(test_block_edges);
    RUN(test_k_zero_and_empty);
    RUN(test_batches);
    RUN(test_same_bits_across_paths);
    RUN(test_fold_rows);
    RUN(test_blas_agrees);
    RUN(test_bad_input);
    RUN(test_thread_independent);
    return check_report();
}
