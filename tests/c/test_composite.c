/* test_composite.c — core's eager dispatch and composites (matmul's 1-D
 * rules, einsum lowering, dot, concat/stack/split, eye, linspace, logsumexp,
 * softmax, var) and the linear-algebra ops (solve, cholesky, slogdet)
 * checked against naive loops and their defining identities. */
#include "check.h"
#include "xcs_host.h"

#include <math.h>
#include <stdlib.h>

/* A float64 tensor of the given shape filled with a deterministic pattern. */
static xcs_tensor *pattern(int ndim, const int64_t *shape, double scale) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F64, ndim, shape, &t)) return NULL;
    double *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) p[i] = scale * (double)((i * 7919) % 23 - 11) / 7.0;
    return t;
}

static double at(const xcs_tensor *t, int64_t flat) { return xcs_tensor_get_f64(t, flat); }

static void test_matmul_vector_rules(void) {
    xcs_tensor *a = pattern(2, SHAPE(3, 4), 1), *v = pattern(1, SHAPE(4), 1), *r = NULL, *s = NULL;
    CHECK_OK(xcs_matmul(a, v, &r));
    CHECK_SHAPE(r, 1, 3);
    for (int i = 0; r && i < 3; i++) {
        double acc = 0;
        for (int k = 0; k < 4; k++) acc += at(a, i * 4 + k) * at(v, k);
        CHECK_NEAR(at(r, i), acc, 1e-12);
    }
    CHECK_OK(xcs_matmul(v, v, &s));
    CHECK(s && s->ndim == 0);
    CHECK_ERR(xcs_matmul(v, a, &r), XCS_ERR_SHAPE, "(4,)");
    xcs_tensor_free(a); xcs_tensor_free(v); xcs_tensor_free(s);
    xcs_tensor *x = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 2, &x));
    CHECK_ERR(xcs_matmul(x, x, &s), XCS_ERR_SHAPE, "0-d");
    xcs_tensor_free(x);
    xcs_tensor_free(r);
}

static void test_einsum_forms(void) {
    xcs_tensor *a = pattern(3, SHAPE(2, 3, 4), 1), *b = pattern(3, SHAPE(2, 4, 5), 0.5), *r = NULL, *m = NULL;
    const xcs_tensor *ab[2] = {a, b};
    CHECK_OK(xcs_einsum("bij,bjk->bik", 2, ab, &r));
    CHECK_OK(xcs_matmul(a, b, &m));
    CHECK_SHAPE(r, 3, 2, 3, 5);
    for (int64_t i = 0; r && m && i < 30; i++) CHECK_NEAR(at(r, i), at(m, i), 1e-12);
    xcs_tensor_free(r); r = NULL;
    CHECK_OK(xcs_einsum("...ij,...jk->...ik", 2, ab, &r));
    for (int64_t i = 0; r && m && i < 30; i++) CHECK_NEAR(at(r, i), at(m, i), 1e-12);
    xcs_tensor_free(r); r = NULL;
    /* output order permuted: bik -> kib */
    CHECK_OK(xcs_einsum("bij,bjk->kib", 2, ab, &r));
    CHECK_SHAPE(r, 3, 5, 3, 2);
    if (r && m)
        for (int bb = 0; bb < 2; bb++)
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < 5; k++)
                    CHECK_NEAR(at(r, k * 6 + i * 2 + bb), at(m, bb * 15 + i * 5 + k), 1e-12);
    xcs_tensor_free(r); r = NULL;
    /* one operand: full sum and transpose */
    const xcs_tensor *aa[1] = {a};
    CHECK_OK(xcs_einsum("bij->", 1, aa, &r));
    double total = 0;
    for (int64_t i = 0; i < 24; i++) total += at(a, i);
    CHECK(r && r->ndim == 0);
    if (r) CHECK_NEAR(at(r, 0), total, 1e-12);
    xcs_tensor_free(r); r = NULL;
    CHECK_OK(xcs_einsum("bij->jbi", 1, aa, &r));
    CHECK_SHAPE(r, 3, 4, 2, 3); /* r[j, b, i] = a[b, i, j] */
    if (r) CHECK_NEAR(at(r, 1 * 6 + 1 * 3 + 2), at(a, 1 * 12 + 2 * 4 + 1), 0);
    xcs_tensor_free(r); r = NULL;
    CHECK_ERR(xcs_einsum("bii->b", 1, aa, &r), XCS_ERR_UNSUPPORTED, "repeated");
    CHECK_ERR(xcs_einsum("bij,bkj->bik", 2, ab, &r), XCS_ERR_SHAPE, "subscript 'j'");
    CHECK_ERR(xcs_einsum("bij,bjk->bq", 2, ab, &r), XCS_ERR_VALUE, "output");
    xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(m);
}

static void test_dot_nd(void) {
    /* dot(a[2,3], b[4,3,5])[i,k,m] = sum_j a[i,j] b[k,j,m] */
    xcs_tensor *a = pattern(2, SHAPE(2, 3), 1), *b = pattern(3, SHAPE(4, 3, 5), 1), *r = NULL;
    CHECK_OK(xcs_dot(a, b, &r));
    CHECK_SHAPE(r, 3, 2, 4, 5);
    for (int i = 0; r && i < 2; i++)
        for (int k = 0; k < 4; k++)
            for (int mm = 0; mm < 5; mm++) {
                double acc = 0;
                for (int j = 0; j < 3; j++) acc += at(a, i * 3 + j) * at(b, k * 15 + j * 5 + mm);
                CHECK_NEAR(at(r, i * 20 + k * 5 + mm), acc, 1e-12);
            }
    xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(r);
}

static void test_concat_stack_split(void) {
    xcs_tensor *a = pattern(2, SHAPE(2, 3), 1), *b = NULL, *c = NULL, *s = NULL;
    CHECK_OK(xcs_full(XCS_I32, 2, SHAPE(2, 1), 7, &b));
    const xcs_tensor *ab[2] = {a, b};
    CHECK_OK(xcs_concat(2, ab, 1, &c));
    CHECK_SHAPE(c, 2, 2, 4);
    CHECK(c && c->dtype == XCS_F64);
    if (c) { CHECK_NEAR(at(c, 3), 7, 0); CHECK_NEAR(at(c, 5), at(a, 4), 0); }
    CHECK_ERR(xcs_concat(2, ab, 0, &s), XCS_ERR_SHAPE, "(2, 1)");
    const xcs_tensor *aa[3] = {a, a, a};
    CHECK_OK(xcs_stack(3, aa, -1, &s));
    CHECK_SHAPE(s, 3, 2, 3, 3);
    if (s) CHECK_NEAR(at(s, 1 * 9 + 2 * 3 + 1), at(a, 5), 0);
    xcs_tensor *parts[3] = {0};
    CHECK_OK(xcs_split(c, 2, SHAPE(1, 3), 1, parts));
    CHECK_SHAPE(parts[0], 2, 2, 1);
    CHECK_SHAPE(parts[1], 2, 2, 2);
    CHECK_SHAPE(parts[2], 2, 2, 1);
    CHECK(parts[1] && parts[1]->storage == c->storage);
    for (int i = 0; i < 3; i++) xcs_tensor_free(parts[i]);
    xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(c); xcs_tensor_free(s);
}

static void test_creation(void) {
    xcs_tensor *e = NULL, *l = NULL;
    CHECK_OK(xcs_eye(3, 4, 1, XCS_F32, &e));
    CHECK_SHAPE(e, 2, 3, 4);
    for (int i = 0; e && i < 3; i++)
        for (int j = 0; j < 4; j++) CHECK_NEAR(at(e, i * 4 + j), j - i == 1 ? 1 : 0, 0);
    CHECK_OK(xcs_linspace(0, 1, 7, true, XCS_F64, &l));
    CHECK_SHAPE(l, 1, 7);
    if (l) { CHECK(at(l, 6) == 1.0); CHECK_NEAR(at(l, 3), 0.5, 1e-15); }
    CHECK_ERR(xcs_linspace(0, 1, -1, true, XCS_F64, &e), XCS_ERR_VALUE, "non-negative");
    CHECK_ERR(xcs_arange(0, 1, 0, XCS_F64, &e), XCS_ERR_ZERO_DIV, "step");
    xcs_tensor_free(e); xcs_tensor_free(l);
}

static void test_logsumexp_and_softmax(void) {
    xcs_tensor *x = NULL, *r = NULL, *sm = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, 2, SHAPE(3, 2), &x));
    double *p = xcs_tensor_data(x);
    p[0] = 1000; p[1] = 1000;            /* overflow without the max shift */
    p[2] = -INFINITY; p[3] = -INFINITY;  /* all -inf: result -inf, not nan */
    p[4] = -2; p[5] = 3;
    CHECK_OK(xcs_logsumexp(x, 2u, false, &r));
    CHECK_SHAPE(r, 1, 3);
    if (r) {
        CHECK_NEAR(at(r, 0), 1000 + log(2.0), 1e-9);
        CHECK(isinf(at(r, 1)) && at(r, 1) < 0);
        CHECK_NEAR(at(r, 2), log(exp(-2.0) + exp(3.0)), 1e-12);
    }
    CHECK_OK(xcs_softmax(x, -1, &sm));
    if (sm) { CHECK_NEAR(at(sm, 0), 0.5, 1e-15); CHECK_NEAR(at(sm, 4) + at(sm, 5), 1, 1e-15); }
    xcs_tensor_free(x); xcs_tensor_free(r); xcs_tensor_free(sm);
}

static void test_var_int_promotes(void) {
    xcs_tensor *x = NULL, *v = NULL;
    CHECK_OK(xcs_arange(0, 10, 1, XCS_I32, &x));
    CHECK_OK(xcs_var(x, 1u, false, 1, &v));
    CHECK(v && v->dtype == XCS_F64 && v->ndim == 0);
    if (v) CHECK_NEAR(at(v, 0), 55.0 / 6.0, 1e-12);
    xcs_tensor_free(x); xcs_tensor_free(v);
}

/* solve: a @ x == b for a batch (broadcast b) with row swaps; cholesky:
 * L lower with L @ L^T == a; slogdet against the 2 x 2 formula; singular
 * and non-positive-definite inputs; float32 too; eigh and svd (packed)
 * against the decompositions they make, a rank-deficient batch included. */
static void test_linalg_ops(void) {
    const int64_t n = 5, k = 3;
    xcs_tensor *a0 = pattern(3, SHAPE(4, n, n), 1), *b = pattern(2, SHAPE(n, k), 0.5), *x = NULL, *ax = NULL;
    xcs_tensor *eye5 = NULL, *a = NULL; /* the pattern's matrices are singular: + 3 I */
    CHECK_OK(xcs_eye(n, n, 0, XCS_F64, &eye5));
    xcs_tensor *three = NULL, *eye3 = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 3, &three));
    CHECK_OK(xcs_binary(XCS_OP_MUL, eye5, three, &eye3));
    CHECK_OK(xcs_binary(XCS_OP_ADD, a0, eye3, &a));
    const xcs_tensor *ab[2] = {a, b};
    CHECK_OK(xcs_linalg(XCS_OP_SOLVE, 2, ab, &x));
    CHECK_SHAPE(x, 3, 4, n, k);
    CHECK_OK(xcs_matmul(a, x, &ax));
    for (int64_t m = 0; ax && m < 4; m++)
        for (int64_t i = 0; i < n * k; i++) CHECK_NEAR(at(ax, m * n * k + i), at(b, i), 1e-11);
    xcs_tensor *L = NULL, *llt = NULL, *lt = NULL, *sd = NULL, *at_ = NULL, *spd = NULL, *eye = NULL, *spd2 = NULL;
    int perm[3] = {0, 2, 1};
    CHECK_OK(xcs_permute(a, perm, &at_)); /* a a^T + I: symmetric positive definite */
    CHECK_OK(xcs_matmul(a, at_, &spd));
    CHECK_OK(xcs_eye(n, n, 0, XCS_F64, &eye));
    CHECK_OK(xcs_binary(XCS_OP_ADD, spd, eye, &spd2));
    const xcs_tensor *one[1] = {spd2};
    CHECK_OK(xcs_linalg(XCS_OP_CHOLESKY, 1, one, &L));
    CHECK_OK(xcs_permute(L, perm, &lt));
    CHECK_OK(xcs_matmul(L, lt, &llt));
    for (int64_t i = 0; llt && i < 4 * n * n; i++) {
        CHECK_NEAR(at(llt, i), at(spd2, i), 1e-10);
        if ((i % n) > (i / n) % n) CHECK(at(L, i) == 0.0); /* zeros above the diagonal */
    }
    const xcs_tensor *two[1] = {a};
    CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, two, &sd));
    CHECK_SHAPE(sd, 2, 4, 2);
    xcs_tensor *m2 = pattern(2, SHAPE(2, 2), 1), *sd2 = NULL, *sing = NULL, *bad = NULL;
    const xcs_tensor *m2p[1] = {m2};
    CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, m2p, &sd2));
    const double det = at(m2, 0) * at(m2, 3) - at(m2, 1) * at(m2, 2);
    if (sd2) CHECK_NEAR(at(sd2, 0) * exp(at(sd2, 1)), det, 1e-12);
    CHECK_OK(xcs_full(XCS_F64, 2, SHAPE(3, 3), 1.0, &sing)); /* rank 1 */
    const xcs_tensor *sb[2] = {sing, b}, *sp[1] = {sing};
    CHECK_ERR(xcs_linalg(XCS_OP_SOLVE, 2, sb, &bad), XCS_ERR_SHAPE, "solve: b must be");
    const xcs_tensor *sb3[2] = {sing, sing};
    CHECK_ERR(xcs_linalg(XCS_OP_SOLVE, 2, sb3, &bad), XCS_ERR_LINALG, "Singular matrix");
    CHECK_ERR(xcs_linalg(XCS_OP_CHOLESKY, 1, sp, &bad), XCS_ERR_LINALG, "not positive definite");
    xcs_tensor *sds = NULL;
    CHECK_OK(xcs_linalg(XCS_OP_SLOGDET, 1, sp, &sds)); /* singular: (0, -inf) */
    if (sds) CHECK(at(sds, 0) == 0.0 && isinf(at(sds, 1)) && at(sds, 1) < 0);
    xcs_tensor *a32 = NULL, *b32 = NULL, *x32 = NULL;
    CHECK_OK(xcs_cast(a, XCS_F32, &a32));
    CHECK_OK(xcs_cast(b, XCS_F32, &b32));
    const xcs_tensor *ab32[2] = {a32, b32};
    CHECK_OK(xcs_linalg(XCS_OP_SOLVE, 2, ab32, &x32));
    CHECK(x32 && x32->dtype == XCS_F32);
    for (int64_t i = 0; x32 && x && i < 4 * n * k; i++) CHECK_NEAR(at(x32, i), at(x, i), 1e-3 * (1 + fabs(at(x, i))));
    /* eigh: spd2 v == v diag(w); svd of the (singular) pattern and of a
     * wide block: u diag(s) v^T == a, u's columns orthonormal */
    xcs_tensor *ev = NULL;
    CHECK_OK(xcs_linalg(XCS_OP_EIGH, 1, one, &ev));
    CHECK_SHAPE(ev, 3, 4, n + 1, n);
    for (int64_t mm = 0; ev && mm < 4; mm++) {
        const int64_t base = mm * (n + 1) * n;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) {
                double av = 0;
                for (int64_t p = 0; p < n; p++) av += at(spd2, mm * n * n + i * n + p) * at(ev, base + (p + 1) * n + j);
                CHECK_NEAR(av, at(ev, base + (i + 1) * n + j) * at(ev, base + j), 1e-9);
            }
        for (int64_t j = 1; j < n; j++) CHECK(at(ev, base + j - 1) <= at(ev, base + j)); /* ascending */
    }
    xcs_tensor *wide = pattern(2, SHAPE(3, 7), 1), *sv1 = NULL, *sv2 = NULL;
    const xcs_tensor *w1[1] = {a0}, *w2[1] = {wide};
    CHECK_OK(xcs_linalg(XCS_OP_SVD, 1, w1, &sv1));
    CHECK_SHAPE(sv1, 3, 4, 2 * n + 1, n);
    CHECK_OK(xcs_linalg(XCS_OP_SVD, 1, w2, &sv2));
    CHECK_SHAPE(sv2, 2, 3 + 1 + 7, 3);
    const xcs_tensor *srcs[2] = {a0, wide}, *outs[2] = {sv1, sv2};
    for (int q = 0; q < 2 && sv1 && sv2; q++) {
        const xcs_tensor *src = srcs[q], *o = outs[q];
        const int64_t rr = src->shape[src->ndim - 2], cc = src->shape[src->ndim - 1], kk = rr < cc ? rr : cc;
        int64_t nb = 1;
        for (int d = 0; d < src->ndim - 2; d++) nb *= src->shape[d];
        for (int64_t mm = 0; mm < nb; mm++) {
            const int64_t ob = mm * (rr + 1 + cc) * kk;
            for (int64_t i = 0; i < rr; i++)
                for (int64_t j = 0; j < cc; j++) {
                    double v = 0;
                    for (int64_t p = 0; p < kk; p++)
                        v += at(o, ob + i * kk + p) * at(o, ob + rr * kk + p) * at(o, ob + (rr + 1 + j) * kk + p);
                    CHECK_NEAR(v, at(src, mm * rr * cc + i * cc + j), 1e-10);
                }
            for (int64_t p = 0; p < kk; p++)
                for (int64_t p2 = 0; p2 < kk; p2++) {
                    double d = 0;
                    for (int64_t i = 0; i < rr; i++) d += at(o, ob + i * kk + p) * at(o, ob + i * kk + p2);
                    CHECK_NEAR(d, p == p2, 1e-10);
                }
        }
    }
    /* qr of the wide block and of a tall one: q r == a, q's columns
     * orthonormal, r upper triangular (packed: q, then r^T) */
    xcs_tensor *tall = pattern(2, SHAPE(7, 3), 1), *qw = NULL, *qt = NULL;
    const xcs_tensor *qa[1] = {wide}, *qb[1] = {tall};
    CHECK_OK(xcs_linalg(XCS_OP_QR, 1, qa, &qw));
    CHECK_OK(xcs_linalg(XCS_OP_QR, 1, qb, &qt));
    CHECK_SHAPE(qw, 2, 3 + 7, 3);
    const xcs_tensor *qsrc[2] = {wide, tall}, *qout[2] = {qw, qt};
    for (int q = 0; q < 2 && qw && qt; q++) {
        const int64_t rr = qsrc[q]->shape[0], cc = qsrc[q]->shape[1], kk = rr < cc ? rr : cc;
        const xcs_tensor *o = qout[q];
        for (int64_t i = 0; i < rr; i++)
            for (int64_t j = 0; j < cc; j++) {
                double v = 0;
                for (int64_t p = 0; p < kk; p++) v += at(o, i * kk + p) * at(o, (rr + j) * kk + p);
                CHECK_NEAR(v, at(qsrc[q], i * cc + j), 1e-12);
            }
        for (int64_t p = 0; p < kk; p++)
            for (int64_t j = 0; j < cc; j++)
                if (p > j) CHECK(at(o, (rr + j) * kk + p) == 0.0); /* r below its diagonal */
    }
    xcs_tensor *f[] = {a0, eye5, three, eye3, a,   b,    x,    ax,  L,    llt, lt,  sd, at_, spd, eye,
                       spd2, m2, sd2,   sing, sds, a32, b32, x32, ev, wide, sv1, sv2, tall, qw, qt};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* OpenBLAS's thread count, where the build links OpenBLAS. */
int openblas_get_num_threads(void) __attribute__((weak));
static int blas_threads(void) { return openblas_get_num_threads ? openblas_get_num_threads() : -1; }

/* n x n (70: the LAPACK path where the build has it, under the sanitizers
 * too; 520: on OpenBLAS's threads): solve(a, a) == I, eigh's values sum to
 * the trace, svd's squares to the Frobenius norm, q r == a; OpenBLAS keeps
 * the thread count it had (cblas's GEMMs run on it). */
static void linalg_big(int64_t n) {
    const int threads = blas_threads();
    xcs_tensor *p = pattern(2, SHAPE(n, n), 1), *e = NULL, *k = NULL, *ek = NULL, *a = NULL, *pt = NULL, *s = NULL;
    CHECK_OK(xcs_eye(n, n, 0, XCS_F64, &e));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, (double)n, &k));
    CHECK_OK(xcs_binary(XCS_OP_MUL, e, k, &ek));
    CHECK_OK(xcs_binary(XCS_OP_ADD, p, ek, &a));
    CHECK_OK(xcs_transpose(a, &pt));
    CHECK_OK(xcs_binary(XCS_OP_ADD, a, pt, &s)); /* symmetric */
    xcs_tensor *x = NULL, *ev = NULL, *sv = NULL, *qr = NULL;
    const xcs_tensor *aa[2] = {a, a}, *sa[1] = {s}, *a1[1] = {a};
    CHECK_OK(xcs_linalg(XCS_OP_SOLVE, 2, aa, &x));
    for (int64_t i = 0; x && i < n * n; i++) CHECK_NEAR(at(x, i), (i / n) == (i % n), 1e-12);
    CHECK_OK(xcs_linalg(XCS_OP_EIGH, 1, sa, &ev));
    double tr = 0, wsum = 0, fro = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) tr += at(s, i * n + i);
    for (int64_t i = 0; ev && i < n; i++) wsum += at(ev, i);
    CHECK_NEAR(wsum, tr, 1e-9 * n * n);
    CHECK_OK(xcs_linalg(XCS_OP_SVD, 1, a1, &sv));
    for (int64_t i = 0; i < n * n; i++) fro += at(a, i) * at(a, i);
    for (int64_t i = 0; sv && i < n; i++) s2 += at(sv, n * n + i) * at(sv, n * n + i);
    CHECK_NEAR(s2, fro, 1e-9 * fro);
    CHECK_OK(xcs_linalg(XCS_OP_QR, 1, a1, &qr));
    for (int64_t i = 0; qr && i < n; i += 7)
        for (int64_t j = 0; j < n; j += 5) {
            double v = 0;
            for (int64_t q = 0; q < n; q++) v += at(qr, i * n + q) * at(qr, (n + j) * n + q);
            CHECK_NEAR(v, at(a, i * n + j), 1e-10);
        }
    CHECK_EQ_I(blas_threads(), threads);
    xcs_tensor *f[] = {p, e, k, ek, a, pt, s, x, ev, sv, qr};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

static void test_linalg_big(void) {
    linalg_big(70);
    linalg_big(520);
}

static void test_no_leaks(void) {
    xcs_alloc_stats before, after;
    xcs_alloc_stats_get(&before);
    test_einsum_forms();
    test_logsumexp_and_softmax();
    xcs_alloc_stats_get(&after);
    CHECK_EQ_I(after.live_buffers, before.live_buffers);
}

int main(void) {
    if (xcs_host_init()) return 1;
    RUN(test_matmul_vector_rules);
    RUN(test_einsum_forms);
    RUN(test_dot_nd);
    RUN(test_concat_stack_split);
    RUN(test_creation);
    RUN(test_logsumexp_and_softmax);
    RUN(test_var_int_promotes);
    RUN(test_linalg_ops);
    RUN(test_linalg_big);
    RUN(test_no_leaks);
    return check_report();
}
