/* test_cuda_graph.c — the CUDA backend through core on a GPU (label `cuda`):
 * whole graphs run with xcs_graph_run_on equal the CPU's runs; matmuls of
 * every layout cuBLAS is handed (transposed views, batched, broadcast
 * batches, vectors, float64, an empty inner dimension); eager ops on device
 * tensors; the caching allocator reusing blocks, emptying its cache, and
 * naming the sizes on out-of-memory; integer division by zero reported;
 * float16/bfloat16 matmuls (cuBLAS, float32 accumulation), eager ops and a
 * graph on 16-bit tensors, equal to the CPU's to a 16-bit ulp or two;
 * matmul groups run as one cuBLASLt GEMM with a bias / relu+bias epilogue
 * (XCS_CUDA_LT_EPILOGUE=1) equal to the CPU's, and counted; threads
 * sharing the device on their own streams, with tensors made on one
 * thread's stream read on another's; scan loops run as one kernel
 * (xcs_backend.run_scan) equal to the CPU's step loop, an integer division
 * by zero in one reported at its step; take (every width, negative
 * indices), scatter_add (a thousand values a position, flat and by rows:
 * the CPU's bits), argmax/argmin, argsort (rows of 17 to 2^20) and
 * concatenate as device kernels equal to the CPU's, an index out of range
 * reported by the kernel.
 * Without a usable device it prints why and exits 77 (a CTest skip). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "runtime.h"
#include "check.h"
#include "graph_prog.h"
#include "scan_cases.h"
#include "xcs_host.h"

static void test_program_graphs(void) {
    const int64_t sizes[][3] = {{64, 48, 40}, {1, 7, 3}, {257, 129, 1000}, {2048, 512, 256}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t *d = sizes[s], xs[2] = {d[0], d[1]}, ws[2] = {d[1], d[2]};
        xcs_tensor *c = random_f32(1, &ws[1]);
        xcs_graph *g = program_graph(d[0], d[1], d[2], c);
        for (int trial = 0; trial < 2; trial++) { /* fresh inputs: nothing stale */
            xcs_tensor *x = random_f32(2, xs), *w = random_f32(2, ws), *wd = NULL;
            const xcs_tensor *in[2] = {x, w}, *din[2] = {x, w};
            if (trial == 1) {
                CHECK_OK(xcs_tensor_to(w, XCS_DEVICE_CUDA, 0, &wd));
                din[1] = wd;
            }
            check_device_equals_cpu(g, 2, in, din, 2e-5);
            xcs_tensor_free(x);
            xcs_tensor_free(w);
            xcs_tensor_free(wd);
        }
        xcs_tensor_free(c);
        xcs_graph_free(g);
    }
}

static xcs_tensor *to_dev(const xcs_tensor *h) {
    xcs_tensor *d = NULL;
    CHECK_OK(xcs_tensor_to(h, XCS_DEVICE_CUDA, 0, &d));
    return d;
}

static xcs_tensor *random_dt(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *f = random_f32(nd, shape), *t = NULL;
    CHECK_OK(xcs_cast(f, dt, &t));
    xcs_tensor_free(f);
    return t;
}

/* xcs_matmul of a and b (host), each optionally transposed (a view), on the
 * CPU and on the device: equal within rel. */
static void check_matmul(xcs_dtype dt, int nda, const int64_t *sa, int ndb, const int64_t *sb, bool ta, bool tb,
                         double rel) {
    xcs_tensor *a = random_dt(dt, nda, sa), *b = random_dt(dt, ndb, sb);
    xcs_tensor *ad = to_dev(a), *bd = to_dev(b), *av = NULL, *bv = NULL, *adv = NULL, *bdv = NULL;
    xcs_tensor *want = NULL, *got = NULL, *h = NULL;
    if (ta) { CHECK_OK(xcs_transpose(a, &av)); CHECK_OK(xcs_transpose(ad, &adv)); }
    if (tb) { CHECK_OK(xcs_transpose(b, &bv)); CHECK_OK(xcs_transpose(bd, &bdv)); }
    CHECK_OK(xcs_matmul(ta ? av : a, tb ? bv : b, &want));
    CHECK_OK(xcs_matmul(ta ? adv : ad, tb ? bdv : bd, &got));
    CHECK(got && got->storage->device == XCS_DEVICE_CUDA);
    if (got) CHECK_OK(xcs_tensor_to(got, XCS_DEVICE_CPU, 0, &h));
    CHECK(h && want && h->ndim == want->ndim);
    double scale = 0;
    for (int64_t i = 0; want && i < xcs_tensor_numel(want); i++) scale = fmax(scale, fabs(xcs_tensor_get_f64(want, i)));
    for (int64_t i = 0; h && want && i < xcs_tensor_numel(want); i++)
        CHECK_NEAR(xcs_tensor_get_f64(h, i), xcs_tensor_get_f64(want, i), rel * (1 + scale));
    xcs_tensor *f[] = {a, b, ad, bd, av, bv, adv, bdv, want, got, h};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

static void test_matmul_layouts(void) {
    const int64_t a2[2] = {33, 17}, b2[2] = {17, 65}, a2t[2] = {17, 33}, b2t[2] = {65, 17};
    check_matmul(XCS_F32, 2, a2, 2, b2, false, false, 1e-5);
    check_matmul(XCS_F32, 2, a2t, 2, b2, true, false, 1e-5);
    check_matmul(XCS_F32, 2, a2, 2, b2t, false, true, 1e-5);
    check_matmul(XCS_F32, 2, a2t, 2, b2t, true, true, 1e-5);
    check_matmul(XCS_F64, 2, a2, 2, b2, false, false, 1e-12);
    const int64_t a3[3] = {5, 33, 17}, b3[3] = {5, 17, 9}, v[1] = {17}, big_a[2] = {1024, 768}, big_b[2] = {768, 512};
    check_matmul(XCS_F32, 3, a3, 3, b3, false, false, 1e-5); /* batched */
    check_matmul(XCS_F32, 3, a3, 2, b2, false, false, 1e-5); /* b broadcast over the batch */
    check_matmul(XCS_F32, 2, b2t, 3, b3, false, false, 1e-5); /* a broadcast */
    check_matmul(XCS_F32, 2, a2, 1, v, false, false, 1e-5);  /* matrix @ vector */
    check_matmul(XCS_F32, 1, v, 2, b2, false, false, 1e-5);  /* vector @ matrix */
    check_matmul(XCS_F32, 2, big_a, 2, big_b, false, false, 1e-5);
    const int64_t e_a[2] = {4, 0}, e_b[2] = {0, 3};
    check_matmul(XCS_F32, 2, e_a, 2, e_b, false, false, 0); /* zeros */
    /* 16-bit operands and result, float32 accumulation on both sides: one
     * rounding each, which may differ by a 16-bit ulp */
    for (int h = 0; h < 2; h++) {
        xcs_dtype dt = h ? XCS_BF16 : XCS_F16;
        double rel = h ? 1e-2 : 2e-3;
        check_matmul(dt, 2, a2, 2, b2, false, false, rel);
        check_matmul(dt, 2, a2t, 2, b2t, true, true, rel);
        check_matmul(dt, 3, a3, 3, b3, false, false, rel);
        check_matmul(dt, 3, a3, 2, b2, false, false, rel);
        check_matmul(dt, 2, a2, 1, v, false, false, rel);
        check_matmul(dt, 2, big_a, 2, big_b, false, false, rel);
        check_matmul(dt, 2, e_a, 2, e_b, false, false, 0);
    }
    /* integers: no cuBLAS kernel, so an eager device matmul says so (a graph
     * runs it on the host) */
    xcs_tensor *ia = random_dt(XCS_I64, 2, a2), *ib = random_dt(XCS_I64, 2, b2), *iad = to_dev(ia), *ibd = to_dev(ib);
    xcs_tensor *bad = NULL;
    CHECK_ERR(xcs_matmul(iad, ibd, &bad), XCS_ERR_UNSUPPORTED, "no CUDA kernel");
    xcs_tensor *f[] = {ia, ib, iad, ibd};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

static void test_eager_device_ops(void) {
    const int64_t s[3] = {37, 64, 129};
    xcs_tensor *a = random_f32(3, s), *ad = to_dev(a), *e = NULL, *ed = NULL, *r = NULL, *rd = NULL, *h = NULL;
    CHECK_OK(xcs_unary(XCS_OP_EXP, a, &e));
    CHECK_OK(xcs_unary(XCS_OP_EXP, ad, &ed));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, e, 5u, false, &r)); /* axes 0 and 2 */
    CHECK_OK(xcs_reduce(XCS_OP_SUM, ed, 5u, false, &rd));
    CHECK(rd && rd->storage->device == XCS_DEVICE_CUDA);
    if (rd) CHECK_OK(xcs_tensor_to(rd, XCS_DEVICE_CPU, 0, &h));
    for (int64_t i = 0; h && r && i < xcs_tensor_numel(r); i++)
        CHECK_NEAR(xcs_tensor_get_f64(h, i), xcs_tensor_get_f64(r, i), 1e-5 * fabs(xcs_tensor_get_f64(r, i)));
    xcs_tensor *f[] = {a, ad, e, ed, r, rd, h};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    /* integer division by zero is reported, as on the CPU */
    const int64_t n[1] = {1000};
    xcs_tensor *x = random_dt(XCS_I32, 1, n), *z = NULL, *xd = NULL, *zd = NULL, *q = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_I32, 0, &z));
    xd = to_dev(x);
    zd = to_dev(z);
    CHECK_ERR(xcs_binary(XCS_OP_FLOOR_DIV, xd, zd, &q), XCS_ERR_ZERO_DIV, "division by zero");
    xcs_tensor_free(x);
    xcs_tensor_free(z);
    xcs_tensor_free(xd);
    xcs_tensor_free(zd);
}

/* A device tensor's value on the host equals the CPU's (exactly, or to tol
 * relative to the largest magnitude). */
static void check_same(const xcs_tensor *dev, const xcs_tensor *want, double tol) {
    xcs_tensor *h = NULL;
    CHECK(dev && dev->storage->device == XCS_DEVICE_CUDA);
    if (dev) CHECK_OK(xcs_tensor_to(dev, XCS_DEVICE_CPU, 0, &h));
    CHECK(h && want && xcs_tensor_numel(h) == xcs_tensor_numel(want));
    double scale = 1;
    for (int64_t i = 0; want && i < xcs_tensor_numel(want); i++) scale = fmax(scale, fabs(xcs_tensor_get_f64(want, i)));
    for (int64_t i = 0; h && want && i < xcs_tensor_numel(want); i++)
        CHECK_NEAR(xcs_tensor_get_f64(h, i), xcs_tensor_get_f64(want, i), tol * scale);
    xcs_tensor_free(h);
}

/* take (every width), scatter_add with many values per position (flat
 * and by rows), argmax/argmin over each axis and concatenate, on device
 * tensors, against the CPU; an index out of range found by the kernel. */
static void test_index_kernels(void) {
    const int64_t s[3] = {300, 17, 33}, ni[1] = {5000};
    const xcs_dtype dts[] = {XCS_F32, XCS_F64, XCS_I32, XCS_I64, XCS_F16, XCS_BOOL};
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        xcs_tensor *x = random_dt(dts[d], 3, s), *xd = to_dev(x);
        for (int axis = 0; axis < 3; axis++) {
            xcs_tensor *idx = NULL, *idxd = NULL, *want = NULL, *got = NULL, *am = NULL, *amd = NULL;
            CHECK_OK(xcs_random_uniform((xcs_rng_key){{(uint32_t)axis, 7u}}, XCS_F64, 1, ni, -(double)s[axis],
                                        (double)s[axis], &want));
            CHECK_OK(xcs_cast(want, XCS_I64, &idx)); /* -s .. s-1: negative ones count from the end */
            xcs_tensor_free(want);
            want = NULL;
            idxd = to_dev(idx);
            CHECK_OK(xcs_take(x, idx, axis, &want));
            CHECK_OK(xcs_take(xd, idxd, axis, &got));
            check_same(got, want, 0);
            xcs_op op = axis % 2 ? XCS_OP_ARGMIN : XCS_OP_ARGMAX;
            CHECK_OK(xcs_argreduce(op, x, axis, false, &am));
            CHECK_OK(xcs_argreduce(op, xd, axis, false, &amd));
            check_same(amd, am, 0);
            xcs_tensor *as = NULL, *asd = NULL; /* a stable sort has one answer: the CPU's */
            CHECK_OK(xcs_argsort(x, axis, &as));
            CHECK_OK(xcs_argsort(xd, axis, &asd));
            check_same(asd, as, 0);
            xcs_tensor_free(as);
            xcs_tensor_free(asd);
            xcs_tensor *f[] = {idx, idxd, want, got, am, amd};
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
        }
        xcs_tensor_free(x);
        xcs_tensor_free(xd);
    }
    /* scatter_add: 1M float32 values onto 1000 positions (1000 atomics each) */
    const int64_t m[1] = {1 << 20};
    xcs_tensor *u = NULL, *pos = NULL, *src = random_f32(1, m), *posd = NULL, *srcd = NULL, *want = NULL, *got = NULL;
    CHECK_OK(xcs_random_uniform((xcs_rng_key){{3u, 9u}}, XCS_F64, 1, m, 0, 1000, &u));
    CHECK_OK(xcs_cast(u, XCS_I64, &pos));
    posd = to_dev(pos);
    srcd = to_dev(src);
    CHECK_OK(xcs_scatter_add(pos, src, 1000, &want));
    CHECK_OK(xcs_scatter_add(posd, srcd, 1000, &got));
    check_same(got, want, 0); /* the CPU's sums in the CPU's order: the same bits */
    xcs_tensor *bad = NULL;
    CHECK_ERR(xcs_scatter_add(posd, srcd, 999, &bad), XCS_ERR_INDEX, "out of bounds for size 999");
    /* argsort of 2^20 float32 in one row (9 merges) and of the integer
     * positions (every value ~1000 times: ties in order) */
    xcs_tensor *srt = NULL, *srtd = NULL, *pst = NULL, *pstd = NULL;
    CHECK_OK(xcs_argsort(src, 0, &srt));
    CHECK_OK(xcs_argsort(srcd, 0, &srtd));
    check_same(srtd, srt, 0);
    CHECK_OK(xcs_argsort(pos, 0, &pst));
    CHECK_OK(xcs_argsort(posd, 0, &pstd));
    check_same(pstd, pst, 0);
    xcs_tensor *sf[] = {srt, srtd, pst, pstd};
    for (size_t i = 0; i < sizeof sf / sizeof sf[0]; i++) xcs_tensor_free(sf[i]);
    /* along an axis (an embedding's gradient): [4096, 256] rows onto 1000 */
    const int64_t rows[1] = {4096}, rs[2] = {4096, 256};
    xcs_tensor *ri = NULL, *rid = NULL, *rv = NULL, *rvd = NULL, *rw = NULL, *rg = NULL;
    CHECK_OK(xcs_slice_axis(pos, 0, (xcs_slice){.stop = rows[0], .step = 1, .has_stop = true}, &ri));
    CHECK_OK(xcs_reshape(src, 2, rs, &rv));
    rid = to_dev(ri);
    rvd = to_dev(rv);
    CHECK_OK(xcs_scatter_add_axis(ri, rv, 0, 1000, &rw));
    CHECK_OK(xcs_scatter_add_axis(rid, rvd, 0, 1000, &rg));
    check_same(rg, rw, 0);
    xcs_tensor *rf[] = {ri, rid, rv, rvd, rw, rg};
    for (size_t i = 0; i < sizeof rf / sizeof rf[0]; i++) xcs_tensor_free(rf[i]);
    /* concatenate along the last axis: each part into strided slabs */
    const int64_t sq[2] = {1024, 1024};
    xcs_tensor *s2 = NULL, *s2d = NULL, *cat = NULL, *catc = NULL;
    CHECK_OK(xcs_reshape(src, 2, sq, &s2));
    CHECK_OK(xcs_reshape(srcd, 2, sq, &s2d));
    const xcs_tensor *parts[3] = {s2d, s2d, s2d}, *hparts[3] = {s2, s2, s2};
    CHECK_OK(xcs_concat(3, parts, 1, &cat));
    CHECK_OK(xcs_concat(3, hparts, 1, &catc));
    check_same(cat, catc, 0);
    xcs_tensor *f[] = {u, pos, src, posd, srcd, want, got, s2, s2d, cat, catc};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* linalg as device kernels (a block per matrix): solve, cholesky, slogdet
 * on batches of small matrices and of 300 rows (past a block's threads;
 * eigh: 7, its kernel's range), float32 and float64, and qr, against the CPU; one
 * matrix of 300 rows (on the host); a singular matrix and one not positive definite reported at the op;
 * an svd of 70 x 50 (past the kernels' 64) on the host, sent back. */
static void test_linalg_kernels(void) {
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    /* {batch, n}: the last one on the host (a few big matrices: XCS_CUDA_LA_BIG) */
    const int64_t sizes[3][2] = {{1000, 8}, {64, 300}, {1, 300}};
    for (int d = 0; d < 2; d++)
        for (int z = 0; z < 3; z++) {
            const int64_t batch = sizes[z][0], n = sizes[z][1], sa[3] = {batch, n, n}, sb[3] = {batch, n, 3};
            xcs_tensor *r = random_dt(dts[d], 3, sa), *b = random_dt(dts[d], 3, sb), *e = NULL, *k = NULL,
                       *ek = NULL, *a = NULL, *rt = NULL, *rrt = NULL, *spd = NULL;
            CHECK_OK(xcs_eye(n, n, 0, dts[d], &e));
            CHECK_OK(xcs_tensor_scalar(dts[d], (double)n, &k));
            CHECK_OK(xcs_binary(XCS_OP_MUL, e, k, &ek));
            CHECK_OK(xcs_binary(XCS_OP_ADD, r, ek, &a)); /* r + n I: well conditioned */
            const int perm[3] = {0, 2, 1};
            CHECK_OK(xcs_permute(r, perm, &rt));
            CHECK_OK(xcs_matmul(r, rt, &rrt));
            CHECK_OK(xcs_binary(XCS_OP_ADD, rrt, ek, &spd)); /* r r^T + n I */
            xcs_tensor *ad = to_dev(a), *bd = to_dev(b), *sd = to_dev(spd);
            const xcs_tensor *ab[2] = {a, b}, *abd[2] = {ad, bd}, *s1[1] = {spd}, *s1d[1] = {sd};
            const double tol = dts[d] == XCS_F32 ? 1e-4 : 1e-11;
            xcs_tensor *x = NULL, *xd = NULL, *l = NULL, *ld = NULL, *g = NULL, *gd = NULL;
            CHECK_OK(xcs_linalg(XCS_OP_SOLVE, 2, ab, &x));
            CHECK_OK(xcs_linalg(XCS_OP_SOLVE, 2, abd, &xd));
            check_same(xd, x, tol);
            CHECK_OK(xcs_linalg(XCS_OP_CHOLESKY, 1, s1, &l));
            CHECK_OK(xcs_linalg(XCS_OP_CHOLESKY, 1, s1d, &ld));
            check_same(ld, l, tol);
            CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, s1, &g));
            CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, s1d, &gd));
            check_same(gd, g, tol);
            xcs_tensor *v = NULL, *vd = NULL, *sub = NULL, *subd = NULL; /* eigh's kernel: fewer than 8 rows */
            const xcs_tensor *e1[1] = {NULL}, *e1d[1] = {NULL};
            CHECK_OK(xcs_slice_axis(spd, 1, (xcs_slice){.stop = 7, .step = 1, .has_stop = true}, &v));
            CHECK_OK(xcs_slice_axis(v, 2, (xcs_slice){.stop = 7, .step = 1, .has_stop = true}, &sub));
            xcs_tensor_free(v);
            v = NULL;
            e1[0] = sub, e1d[0] = subd = to_dev(sub);
            CHECK_OK(xcs_linalg(XCS_OP_EIGH, 1, e1, &v));
            CHECK_OK(xcs_linalg(XCS_OP_EIGH, 1, e1d, &vd));
            check_same(vd, v, tol);
            xcs_tensor *f[] = {r, b, e, k, ek, a, rt, rrt, spd, ad, bd, sd, x, xd, l, ld, g, gd, v, vd, sub, subd};
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
        }
    const int64_t s3[3] = {4, 3, 3};
    xcs_tensor *zero = NULL, *zd = NULL, *neg = NULL, *nd = NULL, *out = NULL, *w = NULL, *wd = NULL;
    CHECK_OK(xcs_full(XCS_F64, 3, s3, 0.0, &zero));
    zd = to_dev(zero);
    const xcs_tensor *zz[2] = {zd, zd}, *z1[1] = {zd};
    CHECK_ERR(xcs_linalg(XCS_OP_SOLVE, 2, zz, &out), XCS_ERR_LINALG, "solve: Singular matrix");
    CHECK_ERR(xcs_linalg(XCS_OP_CHOLESKY, 1, z1, &out), XCS_ERR_LINALG, "cholesky: Matrix is not positive definite");
    CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, z1, &out)); /* (0, -inf) each */
    xcs_tensor *h = NULL;
    if (out) CHECK_OK(xcs_tensor_to(out, XCS_DEVICE_CPU, 0, &h));
    for (int i = 0; h && i < 4; i++)
        CHECK(xcs_tensor_get_f64(h, 2 * i) == 0 && isinf(xcs_tensor_get_f64(h, 2 * i + 1)));
    CHECK_OK(xcs_eye(3, 3, 0, XCS_F64, &neg));
    nd = to_dev(neg);
    const xcs_tensor *n1[1] = {neg}, *n1d[1] = {nd};
    CHECK_OK(xcs_linalg(XCS_OP_QR, 1, n1, &w));
    CHECK_OK(xcs_linalg(XCS_OP_QR, 1, n1d, &wd));
    check_same(wd, w, 1e-12);
    xcs_tensor *big = NULL, *bigd = NULL, *bs = NULL, *bsd = NULL; /* 70 x 50: LAPACK on the host, sent back */
    const int64_t sb[2] = {70, 50};
    big = random_dt(XCS_F64, 2, sb);
    bigd = to_dev(big);
    const xcs_tensor *b1[1] = {big}, *b1d[1] = {bigd};
    CHECK_OK(xcs_linalg(XCS_OP_SVD, 1, b1, &bs));
    CHECK_OK(xcs_linalg(XCS_OP_SVD, 1, b1d, &bsd));
    check_same(bsd, bs, 1e-12);
    xcs_tensor *bf[] = {big, bigd, bs, bsd};
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++) xcs_tensor_free(bf[i]);
    xcs_tensor *f[] = {zero, zd, neg, nd, out, h, w, wd};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* tanh(x @ w) for float16/bfloat16 x and w, its softmax, its row sums and
 * its cast to the other 16-bit type, as a graph on the device and eagerly
 * (exp of a device tensor) */
static xcs_status half_program(const xcs_tensor *x, const xcs_tensor *w, xcs_tensor **outs) {
    xcs_tensor *mm = NULL, *t = NULL;
    xcs_status st;
    if (!(st = xcs_matmul(x, w, &mm)) && !(st = xcs_unary(XCS_OP_TANH, mm, &t)) &&
        !(st = xcs_softmax(t, -1, &outs[0])) && !(st = xcs_reduce(XCS_OP_SUM, t, 2u, false, &outs[1])))
        st = xcs_cast(t, x->dtype == XCS_F16 ? XCS_BF16 : XCS_F16, &outs[2]);
    xcs_tensor_free(mm);
    xcs_tensor_free(t);
    return st;
}

static void test_half_on_device(void) {
    const int64_t xs[2] = {96, 48}, ws[2] = {48, 40};
    for (int h = 0; h < 2; h++) {
        xcs_dtype dt = h ? XCS_BF16 : XCS_F16;
        xcs_graph *g = NULL;
        xcs_tensor *tx = NULL, *tw = NULL, *touts[3] = {0};
        CHECK_OK(xcs_graph_new(&g));
        CHECK_OK(xcs_graph_input(g, dt, 2, xs, &tx));
        CHECK_OK(xcs_graph_input(g, dt, 2, ws, &tw));
        CHECK_OK(half_program(tx, tw, touts));
        for (int i = 0; i < 3; i++) CHECK_OK(xcs_graph_output(g, touts[i]));
        CHECK_OK(xcs_graph_optimize(g));
        xcs_tensor *x = random_dt(dt, 2, xs), *w = random_dt(dt, 2, ws);
        const xcs_tensor *in[2] = {x, w};
        check_device_equals_cpu(g, 2, in, in, 1e-2);
        /* eager: exp of a device tensor is a 16-bit device tensor */
        xcs_tensor *xd = to_dev(x), *e = NULL, *ed = NULL, *eh = NULL;
        CHECK_OK(xcs_unary(XCS_OP_EXP, x, &e));
        CHECK_OK(xcs_unary(XCS_OP_EXP, xd, &ed));
        CHECK(ed && ed->dtype == dt && ed->storage->device == XCS_DEVICE_CUDA);
        if (ed) CHECK_OK(xcs_tensor_to(ed, XCS_DEVICE_CPU, 0, &eh));
        for (int64_t i = 0; eh && e && i < xcs_tensor_numel(e); i++)
            CHECK_NEAR(xcs_tensor_get_f64(eh, i), xcs_tensor_get_f64(e, i),
                       (h ? 8e-3 : 1e-3) * xcs_tensor_get_f64(e, i));
        xcs_tensor *f[] = {tx, tw, touts[0], touts[1], touts[2], x, w, xd, e, ed, eh};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
        xcs_graph_free(g);
    }
}

/* relu?(x @ w + b) with cuBLASLt's epilogues on (XCS_CUDA_LT_EPILOGUE=1):
 * float32/float16/bfloat16, a batched x, a transposed w (a view), b + mm;
 * and where the epilogue does not apply (the product also an output, a full
 * matrix added instead of a row): all equal to the CPU's run, and the
 * epilogue GEMMs counted only where they apply. */
static xcs_graph *epilogue_graph(xcs_dtype dt, int nd, const int64_t *xs, const int64_t *ws, bool trans_w,
                                 int form) {
    int64_t ys[3]; /* the product's shape: x's leading dims, then w's columns */
    for (int d = 0; d < nd - 1; d++) ys[d] = xs[d];
    ys[nd - 1] = ws[trans_w ? 0 : 1];
    const int64_t bs[1] = {ys[nd - 1]};
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *w = NULL, *wt = NULL, *b = NULL, *mm = NULL, *t = NULL, *r = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, dt, nd, xs, &x));
    CHECK_OK(xcs_graph_input(g, dt, 2, ws, &w));
    CHECK_OK(xcs_graph_input(g, dt, form == 4 ? nd : 1, form == 4 ? ys : bs, &b));
    if (trans_w) CHECK_OK(xcs_transpose(w, &wt));
    CHECK_OK(xcs_matmul(x, trans_w ? wt : w, &mm));
    CHECK_OK(form == 2 ? xcs_binary(XCS_OP_ADD, b, mm, &t) : xcs_binary(XCS_OP_ADD, mm, b, &t));
    if (form != 2) CHECK_OK(xcs_unary(XCS_OP_RELU, t, &r));
    CHECK_OK(xcs_graph_output(g, r ? r : t));
    if (form == 3) CHECK_OK(xcs_graph_output(g, mm));
    CHECK_OK(xcs_graph_optimize(g));
    xcs_tensor *all[] = {x, w, wt, b, mm, t, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xcs_tensor_free(all[i]);
    return g;
}

static void test_gemm_epilogue(void) {
    setenv("XCS_CUDA_LT_EPILOGUE", "1", 1);
    const xcs_dtype dts[3] = {XCS_F32, XCS_F16, XCS_BF16};
    const double tol[3] = {1e-4, 4e-3, 3e-2};
    const int64_t x2[2] = {96, 64}, x3[3] = {3, 40, 64}, ws[2] = {64, 48}, wts[2] = {48, 64};
    for (int d = 0; d < 3; d++)
        for (int form = 0; form < 5; form++)
            for (int v = 0; v < 3; v++) { /* plain, batched x, transposed w */
                const int nd = v == 1 ? 3 : 2;
                const int64_t *xs = v == 1 ? x3 : x2, *wsh = v == 2 ? wts : ws;
                xcs_graph *g = epilogue_graph(dts[d], nd, xs, wsh, v == 2, form);
                int64_t ys[3]; /* the product's shape */
                for (int k = 0; k < nd - 1; k++) ys[k] = xs[k];
                ys[nd - 1] = 48;
                xcs_tensor *x = random_dt(dts[d], nd, xs), *w = random_dt(dts[d], 2, wsh);
                xcs_tensor *b = form == 4 ? random_dt(dts[d], nd, ys) : random_dt(dts[d], 1, &ys[nd - 1]);
                const xcs_tensor *in[3] = {x, w, b};
                xcs_cuda_mem_stats s0, s1;
                xcs_cuda_be_mem_stats(0, &s0);
                check_device_equals_cpu(g, 3, in, in, tol[d]);
                xcs_cuda_be_mem_stats(0, &s1);
                /* forms 0-2 run as one epilogue GEMM; 3 (product kept) and 4 (a full matrix) do not */
                CHECK_EQ_I((int)(s1.gemm_epilogues - s0.gemm_epilogues), form <= 2 ? 1 : 0);
                xcs_tensor_free(x);
                xcs_tensor_free(w);
                xcs_tensor_free(b);
                xcs_graph_free(g);
            }
    unsetenv("XCS_CUDA_LT_EPILOGUE");
}

static void test_caching_allocator(void) {
    xcs_cuda_mem_stats s0, s1, s2;
    xcs_cuda_be_mem_stats(0, &s0);
    const int64_t shape[2] = {1000, 1000};
    for (int i = 0; i < 4; i++) { /* the same size freed and asked for again: served from the cache */
        xcs_tensor *h = random_f32(2, shape), *d = to_dev(h);
        xcs_tensor_free(d);
        xcs_tensor_free(h);
    }
    xcs_cuda_be_mem_stats(0, &s1);
    CHECK(s1.reused >= s0.reused + 3);
    CHECK(s1.device_allocs <= s0.device_allocs + 1);
    CHECK(s1.peak_bytes >= 4000000);
    CHECK(s1.cached_bytes >= 4000000);
    xcs_cuda_be_empty_cache(0);
    xcs_cuda_be_mem_stats(0, &s2);
    CHECK_EQ_I(s2.cached_bytes, 0);
    CHECK_EQ_I(s2.current_bytes, s1.current_bytes);
    void *p = NULL; /* far more than any GPU has: an error naming the sizes, after one retry */
    CHECK_ERR(xcs_cuda_be_alloc(0, (size_t)1 << 50, &p), XCS_ERR_MEMORY, "free on the device");
}

/* softmax and layer norm rows through the row kernel (XCS_CUDA_ROW_KERNELS=1,
 * the default) and group by group (=0): equal to
 * the CPU; a row wider than the kernel holds falls back by itself */
static void test_row_chains(void) {
    const int64_t sizes[][2] = {{4096, 96}, {2048, 4096}, {1200, 7000}, {4000, 1000}, {128, 20000}};
    xcs_status (*progs[2])(const xcs_tensor *, xcs_tensor **) = {softmax_rows, layer_norm_rows};
    for (int off = 0; off < 2; off++) {
        setenv("XCS_CUDA_ROW_KERNELS", off ? "0" : "1", 1);
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
            for (int k = 0; k < 2; k++) {
                xcs_graph *g = one_input_graph(sizes[z], progs[k]);
                xcs_tensor *h = random_f32(2, sizes[z]);
                const xcs_tensor *in[1] = {h};
                xcs_cuda_mem_stats s0, s1;
                xcs_cuda_be_mem_stats(0, &s0);
                check_device_equals_cpu(g, 1, in, in, 1e-5);
                xcs_cuda_be_mem_stats(0, &s1);
                bool fits = sizes[z][1] <= 32 * 256;
                printf("  %s %lldx%lld: %s\n", k ? "layer norm" : "softmax", (long long)sizes[z][0],
                       (long long)sizes[z][1], s1.row_chains > s0.row_chains ? "row kernel" : "group by group");
                if (off || !fits) CHECK_EQ_I(s1.row_chains, s0.row_chains);
                xcs_tensor_free(h);
                xcs_graph_free(g);
            }
    }
    unsetenv("XCS_CUDA_ROW_KERNELS");
}

/* ---------------------------------------------------------------- threads */

/* Threads share the device, each on its own stream (runtime.h): per thread,
 * tanh(exp(x) @ w) of its own x with a weight w uploaded once by the main
 * thread (each stream waits for that upload, blocks.h), downloaded and
 * compared with the CPU; and a device tensor made on the main thread's
 * stream summed on a worker's. */
typedef struct dev_worker {
    const xcs_tensor *wd, *w; /* the shared weight, on the device and the host */
    const xcs_tensor *yd;     /* a device tensor made by the main thread (or NULL) */
    double y_sum;             /* its sum, computed here */
    int rounds;
    double worst;             /* the largest error seen, over its float32 bound */
    xcs_status st;
    char err[256];
} dev_worker;

static xcs_status tanh_exp_mm(const xcs_tensor *x, const xcs_tensor *w, xcs_tensor **out) {
    xcs_tensor *e = NULL, *m = NULL;
    xcs_status st = xcs_unary(XCS_OP_EXP, x, &e);
    if (!st) st = xcs_matmul(e, w, &m);
    if (!st) st = xcs_unary(XCS_OP_TANH, m, out);
    xcs_tensor_free(e);
    xcs_tensor_free(m);
    return st;
}

static void *dev_work(void *arg) {
    dev_worker *k = arg;
    const int64_t xs[2] = {129, k->w->shape[0]};
    for (int r = 0; r < k->rounds && !k->st; r++) {
        xcs_tensor *x = random_f32(2, xs), *xd = NULL, *want = NULL, *gd = NULL, *got = NULL;
        xcs_status st = xcs_tensor_to(x, XCS_DEVICE_CUDA, 0, &xd);
        if (!st) st = tanh_exp_mm(xd, k->wd, &gd);
        if (!st) st = xcs_tensor_to(gd, XCS_DEVICE_CPU, 0, &got);
        if (!st) st = tanh_exp_mm(x, k->w, &want);
        /* against float64: tanh(m) with m = sum_q exp(x_iq) w_qj, whose
         * float32 sums may differ from it by K u sum_q |exp(x_iq) w_qj|
         * (the device's order, or the CPU's): the error over that bound,
         * where a race would leave errors of the values' own size */
        const int64_t K = k->w->shape[0], N = k->w->shape[1];
        for (int64_t i = 0; !st && i < xs[0]; i++)
            for (int64_t j = 0; j < N; j++) {
                double m = 0, mag = 0;
                for (int64_t q = 0; q < K; q++) {
                    double t = exp(xcs_tensor_get_f64(x, i * K + q)) * xcs_tensor_get_f64(k->w, q * N + j);
                    m += t;
                    mag += fabs(t);
                }
                const double ref = tanh(m), bound = (double)(K + 4) * 0x1p-24 * mag + 0x1p-23;
                const double e = fmax(fabs(xcs_tensor_get_f64(got, i * N + j) - ref),
                                      fabs(xcs_tensor_get_f64(want, i * N + j) - ref)) / bound;
                if (!(e <= k->worst)) k->worst = e; /* NaN stays */
            }
        if (st) {
            k->st = st;
            snprintf(k->err, sizeof k->err, "%s", xcs_last_error());
        }
        xcs_tensor *f[] = {x, xd, want, gd, got};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    }
    if (k->yd && !k->st) {
        xcs_tensor *s = NULL, *h = NULL;
        if (!(k->st = xcs_reduce(XCS_OP_SUM, k->yd, 3u, false, &s)) && !(k->st = xcs_tensor_to(s, XCS_DEVICE_CPU, 0, &h)))
            k->y_sum = xcs_tensor_get_f64(h, 0);
        else
            snprintf(k->err, sizeof k->err, "%s", xcs_last_error());
        xcs_tensor_free(s);
        xcs_tensor_free(h);
    }
    return NULL;
}

static void test_threads_share_device(void) {
    enum { T = 4 };
    const int64_t ws[2] = {96, 200}, ys[2] = {512, 1024};
    xcs_tensor *w = random_f32(2, ws), *wd = to_dev(w), *y = random_f32(2, ys), *yd0 = to_dev(y), *yd = NULL;
    CHECK_OK(xcs_unary(XCS_OP_EXP, yd0, &yd)); /* queued on this thread's stream */
    double want = 0;
    for (int64_t i = 0; i < xcs_tensor_numel(y); i++) want += exp(xcs_tensor_get_f64(y, i));
    pthread_t th[T];
    dev_worker k[T];
    for (int i = 0; i < T; i++) {
        k[i] = (dev_worker){.wd = wd, .w = w, .yd = yd, .rounds = 20};
        pthread_create(&th[i], NULL, dev_work, &k[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        if (k[i].st) fprintf(stderr, "worker %d: %s\n", i, k[i].err);
        CHECK_OK(k[i].st);
        if (!(k[i].worst <= 1)) fprintf(stderr, "worker %d: error %.3g of its float32 bound\n", i, k[i].worst);
        CHECK(k[i].worst <= 1);
        CHECK_NEAR(k[i].y_sum, want, 1e-4 * want);
    }
    xcs_tensor *f[] = {w, wd, y, yd0, yd};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* The scan cases of scan_cases.h on the GPU against the CPU's step loop:
 * those that fit as one kernel each (counted), the others step by step.
 * The device contracts a * b + c into FMAs and has its own math library:
 * float32 to 1e-5, a float16 carry to two of its ulps; integers exact. */
static void test_scan_loops(void) {
    for (int rev = 0; rev < 2; rev++)
        for (int which = 0; which < SCAN_CASES; which++) {
            pool p = {0};
            scan_case c;
            scan_case_make(which, &p, 29, &c);
            xcs_tensor *want[8] = {0}, *got[8] = {0};
            xcs_cuda_mem_stats s0, s1;
            xcs_cuda_be_mem_stats(0, &s0);
            CHECK_OK(xcs_graph_scan(c.g, c.n_carry, 29, rev, c.n_in, c.in, want));
            CHECK_OK(xcs_graph_scan_on(c.g, c.n_carry, 29, rev, c.n_in, c.in, got, XCS_DEVICE_CUDA, 0));
            xcs_cuda_be_mem_stats(0, &s1);
            CHECK_EQ_I(s1.scan_loops - s0.scan_loops, c.kernel ? 1 : 0);
            for (int k = 0; k < c.n_out; k++) {
                expect_equal(c.name, got[k], want[k], which == 3 ? 2e-3 : c.tol > 0 ? 1e-5 : 0);
                xcs_tensor_free(want[k]);
                xcs_tensor_free(got[k]);
            }
            xcs_graph_free(c.g);
            pool_free(&p);
        }
    pool p = {0};
    scan_case c;
    case_int(&p, 20, &c, 13);
    xcs_tensor *got[2] = {0};
    CHECK_ERR(xcs_graph_scan_on(c.g, 1, 20, false, 2, c.in, got, XCS_DEVICE_CUDA, 0), XCS_ERR_ZERO_DIV, "scan step 13");
    xcs_graph_free(c.g);
    pool_free(&p);
}

int main(void) {
    if (xcs_host_init()) return 1;
    if (xcs_cuda_be_register(0)) {
        printf("SKIP: no usable CUDA device: %s\n", xcs_last_error());
        return 77;
    }
    printf("device: %s\n", xcs_cu_describe(xcs_cuda_be_runtime(0)));
    RUN(test_program_graphs);
    RUN(test_matmul_layouts);
    RUN(test_eager_device_ops);
    RUN(test_index_kernels);
    RUN(test_linalg_kernels);
    RUN(test_half_on_device);
    RUN(test_gemm_epilogue);
    RUN(test_caching_allocator);
    RUN(test_row_chains);
    RUN(test_threads_share_device);
    RUN(test_scan_loops);
    return check_report();
}
