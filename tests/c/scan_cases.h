/* scan_cases.h — scan bodies for the one-kernel loop's tests
 * (test_cuda_scan on the mock device, test_cuda_graph on a GPU): each an
 * optimised step graph with fresh concrete inputs (carries, then xs) and
 * whether it fits the kernel (xcs_backend.run_scan).  Include after
 * check.h and graph_prog.h (random_f32, seed). */
#ifndef XCS_TEST_SCAN_CASES_H
#define XCS_TEST_SCAN_CASES_H

#include <stdint.h>
#include <string.h>

#include "check.h"
#include "graph_prog.h"
#include "xcs.h"

typedef struct pool {
    xcs_tensor *t[64];
    int n;
} pool;

static inline xcs_tensor *keep(pool *p, xcs_tensor *t) {
    if (p->n < (int)(sizeof p->t / sizeof p->t[0])) p->t[p->n++] = t;
    return t;
}
static inline void pool_free(pool *p) {
    for (int i = 0; i < p->n; i++) xcs_tensor_free(p->t[i]);
    p->n = 0;
}
static inline xcs_tensor *bin(pool *p, xcs_op op, const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_binary(op, a, b, &o));
    return keep(p, o);
}
static inline xcs_tensor *un(pool *p, xcs_op op, const xcs_tensor *a) {
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_unary(op, a, &o));
    return keep(p, o);
}
static inline xcs_tensor *num(pool *p, double v) { /* a Python number: weak */
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F64, v, &o));
    if (o) o->flags |= XCS_TENSOR_WEAK;
    return keep(p, o);
}
static inline xcs_tensor *inum(pool *p, double v) { /* a Python int: weak */
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_I64, v, &o));
    if (o) o->flags |= XCS_TENSOR_WEAK;
    return keep(p, o);
}
static inline xcs_tensor *input(pool *p, xcs_graph *g, xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_graph_input(g, dt, nd, shape, &o));
    return keep(p, o);
}
static inline xcs_tensor *cast(pool *p, const xcs_tensor *x, xcs_dtype dt) {
    xcs_tensor *o = NULL;
    CHECK_OK(xcs_cast(x, dt, &o));
    return keep(p, o);
}
/* Host int32 values in [lo, hi] (zero excluded when nonzero). */
static inline xcs_tensor *random_i32(pool *p, int nd, const int64_t *shape, int lo, int hi, bool nonzero) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_I32, nd, shape, &t));
    int32_t *d = t ? xcs_tensor_data(t) : NULL;
    for (int64_t i = 0; d && i < xcs_tensor_numel(t); i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int v = lo + (int)((seed >> 33) % (uint64_t)(hi - lo + 1));
        d[i] = nonzero && v == 0 ? 1 : v;
    }
    return keep(p, t);
}

/* A scan case: its optimised body and concrete inputs (carries, then xs). */
typedef struct scan_case {
    const char *name;
    xcs_graph *g;
    int n_carry, n_in, n_out;
    const xcs_tensor *in[8];
    bool kernel; /* fits the one-kernel loop */
    double tol;  /* relative; 0: exact */
} scan_case;

static inline void finish(scan_case *c, xcs_graph *g, int n_out, const xcs_tensor *const *outs) {
    for (int k = 0; k < n_out; k++) CHECK_OK(xcs_graph_output(g, outs[k]));
    CHECK_OK(xcs_graph_optimize(g));
    c->g = g;
    c->n_out = n_out;
}

/* An exponential moving average: c' = 0.9 c + 0.1 x, y = 2 c'. */
static inline void case_ema(pool *p, int64_t T, scan_case *c) {
    const int64_t cs[2] = {4, 201}, xs[3] = {T, 4, 201};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(p, g, XCS_F32, 2, cs), *x = input(p, g, XCS_F32, 2, cs);
    xcs_tensor *h2 = bin(p, XCS_OP_ADD, bin(p, XCS_OP_MUL, h, num(p, 0.9)), bin(p, XCS_OP_MUL, x, num(p, 0.1)));
    const xcs_tensor *outs[2] = {h2, bin(p, XCS_OP_MUL, h2, num(p, 2.0))};
    *c = (scan_case){.name = "ema", .n_carry = 1, .n_in = 2, .kernel = true, .tol = 1e-6};
    c->in[0] = keep(p, random_f32(2, cs));
    c->in[1] = keep(p, random_f32(3, xs));
    finish(c, g, 2, outs);
}

/* Two carries, a row broadcast over them, a constant vector, and a y that
 * is carry 0 itself: c1' = c1 k + c2, c2' = c2 / 2 + x, ys c1', c1' - c2'. */
static inline void case_two_carries(pool *p, int64_t T, scan_case *c) {
    const int64_t cs[2] = {3, 50}, xs[2] = {T, 50}, ks[1] = {50};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *k = keep(p, random_f32(1, ks));
    xcs_tensor *c1 = input(p, g, XCS_F32, 2, cs), *c2 = input(p, g, XCS_F32, 2, cs), *x = input(p, g, XCS_F32, 1, ks);
    xcs_tensor *n1 = bin(p, XCS_OP_ADD, bin(p, XCS_OP_MUL, c1, k), c2);
    xcs_tensor *n2 = bin(p, XCS_OP_ADD, bin(p, XCS_OP_DIV, c2, num(p, 2.0)), x);
    const xcs_tensor *outs[4] = {n1, n2, n1, bin(p, XCS_OP_SUB, n1, n2)};
    *c = (scan_case){.name = "two carries", .n_carry = 2, .n_in = 3, .kernel = true, .tol = 1e-6};
    c->in[0] = keep(p, random_f32(2, cs));
    c->in[1] = keep(p, random_f32(2, cs));
    c->in[2] = keep(p, random_f32(2, xs));
    finish(c, g, 4, outs);
}

/* int32: c' = c + 7 // x - x % 3 (x nonzero unless `zero_at` >= 0, where
 * row zero_at holds a zero), y = c' % 5 (exact). */
static inline void case_int(pool *p, int64_t T, scan_case *c, int64_t zero_at) {
    const int64_t cs[1] = {300}, xs[2] = {T, 300};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(p, g, XCS_I32, 1, cs), *x = input(p, g, XCS_I32, 1, cs);
    xcs_tensor *h2 = bin(p, XCS_OP_SUB, bin(p, XCS_OP_ADD, h, bin(p, XCS_OP_FLOOR_DIV, inum(p, 7), x)),
                         bin(p, XCS_OP_MOD, x, inum(p, 3)));
    const xcs_tensor *outs[2] = {h2, bin(p, XCS_OP_MOD, h2, inum(p, 5))};
    *c = (scan_case){.name = zero_at >= 0 ? "int (a zero divisor)" : "int", .n_carry = 1, .n_in = 2, .kernel = true};
    c->in[0] = random_i32(p, 1, cs, -1000, 1000, false);
    xcs_tensor *xv = random_i32(p, 2, xs, -9, 9, true);
    if (zero_at >= 0 && xv) ((int32_t *)xcs_tensor_data(xv))[zero_at * 300 + 17] = 0;
    c->in[1] = xv;
    finish(c, g, 2, outs);
}

/* float16: c' = c * 0.99 + x rounded to float16 every step (exact: both
 * loops round the same float32 values); y = c' > 1 (bool). */
static inline void case_half(pool *p, int64_t T, scan_case *c) {
    const int64_t cs[1] = {259}, xs[2] = {T, 259};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(p, g, XCS_F16, 1, cs), *x = input(p, g, XCS_F16, 1, cs);
    xcs_tensor *h2 = bin(p, XCS_OP_ADD, bin(p, XCS_OP_MUL, h, num(p, 0.99)), x);
    const xcs_tensor *outs[2] = {h2, bin(p, XCS_OP_GT, h2, num(p, 1.0))};
    *c = (scan_case){.name = "float16", .n_carry = 1, .n_in = 2, .kernel = true};
    c->in[0] = cast(p, keep(p, random_f32(1, cs)), XCS_F16);
    c->in[1] = cast(p, keep(p, random_f32(2, xs)), XCS_F16);
    finish(c, g, 2, outs);
}

/* where and a bool carry: c' = where(x > 0, c + x, c / 2), b' = b ^ (x > 0.5). */
static inline void case_where(pool *p, int64_t T, scan_case *c) {
    const int64_t cs[1] = {77}, xs[2] = {T, 77};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(p, g, XCS_F32, 1, cs), *b = input(p, g, XCS_BOOL, 1, cs), *x = input(p, g, XCS_F32, 1, cs);
    xcs_tensor *pos = bin(p, XCS_OP_GT, x, num(p, 0.0)), *w = NULL;
    CHECK_OK(xcs_where(pos, bin(p, XCS_OP_ADD, h, x), bin(p, XCS_OP_DIV, h, num(p, 2.0)), &w));
    keep(p, w);
    const xcs_tensor *outs[2] = {w, bin(p, XCS_OP_LOGICAL_XOR, b, bin(p, XCS_OP_GT, x, num(p, 0.5)))};
    *c = (scan_case){.name = "where, bool carry", .n_carry = 2, .n_in = 3, .kernel = true, .tol = 1e-6};
    c->in[0] = keep(p, random_f32(1, cs));
    c->in[1] = bin(p, XCS_OP_GT, keep(p, random_f32(1, cs)), num(p, 0.0));
    c->in[2] = keep(p, random_f32(2, xs));
    finish(c, g, 2, outs);
}

/* Loops that do not fit the kernel: carries swapped (c1' = c2, a pass-
 * through), a transposed carry, a reduction y, a matmul. */
static inline void case_no_fit(pool *p, int64_t T, int which, scan_case *c) {
    const int64_t cs[2] = {6, 6}, xs[3] = {T, 6, 6}, ws[2] = {6, 6};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(p, g, XCS_F32, 2, cs), *h2 = input(p, g, XCS_F32, 2, cs), *x = input(p, g, XCS_F32, 2, cs);
    static const char *const names[4] = {"pass-through carry", "transposed carry", "reduction y", "matmul"};
    *c = (scan_case){.name = names[which], .n_carry = 2, .n_in = 3, .kernel = false, .tol = 1e-5};
    const xcs_tensor *outs[3];
    xcs_tensor *t = NULL;
    switch (which) {
    case 0:
        outs[0] = h2;
        outs[1] = bin(p, XCS_OP_ADD, h, x);
        break;
    case 1:
        CHECK_OK(xcs_transpose(h, &t));
        outs[0] = bin(p, XCS_OP_ADD, keep(p, t), x);
        outs[1] = bin(p, XCS_OP_MUL, h2, num(p, 0.5));
        break;
    case 2:
        outs[0] = bin(p, XCS_OP_ADD, h, x);
        outs[1] = bin(p, XCS_OP_SUB, h2, x);
        CHECK_OK(xcs_reduce(XCS_OP_SUM, outs[0], 1u, false, &t));
        outs[2] = keep(p, t);
        break;
    default:
        CHECK_OK(xcs_matmul(h, keep(p, random_f32(2, ws)), &t));
        outs[0] = un(p, XCS_OP_TANH, bin(p, XCS_OP_ADD, keep(p, t), x));
        outs[1] = bin(p, XCS_OP_SUB, h2, x);
        break;
    }
    c->in[0] = keep(p, random_f32(2, cs));
    c->in[1] = keep(p, random_f32(2, cs));
    c->in[2] = keep(p, random_f32(3, xs));
    finish(c, g, which == 2 ? 3 : 2, outs);
}

/* ---------------------------------------------------------------- checks */

static inline void expect_equal(const char *what, const xcs_tensor *got_dev, const xcs_tensor *want, double tol) {
    xcs_tensor *h = NULL;
    CHECK(got_dev && got_dev->storage->device == XCS_DEVICE_CUDA); /* left on the device */
    if (got_dev) CHECK_OK(xcs_tensor_to(got_dev, XCS_DEVICE_CPU, 0, &h));
    CHECK(h && want && xcs_tensor_numel(h) == xcs_tensor_numel(want) && h->dtype == want->dtype);
    int bad = 0;
    for (int64_t i = 0; h && want && i < xcs_tensor_numel(want) && i < xcs_tensor_numel(h); i++) {
        double g = xcs_tensor_get_f64(h, i), w = xcs_tensor_get_f64(want, i);
        if (g == w || (g != g && w != w) || fabs(g - w) <= tol * (1 + fabs(w))) continue;
        if (bad++ < 3) fprintf(stderr, "  %s: element %lld: %.9g, want %.9g\n", what, (long long)i, g, w);
    }
    CHECK_EQ_I(bad, 0);
    xcs_tensor_free(h);
}

/* Case `which` (0..SCAN_CASES-1; the first SCAN_FITTING fit the kernel)
 * of length T. */
#define SCAN_CASES 9
#define SCAN_FITTING 5
static inline void scan_case_make(int which, pool *p, int64_t T, scan_case *c) {
    switch (which) {
    case 0: case_ema(p, T, c); break;
    case 1: case_two_carries(p, T, c); break;
    case 2: case_int(p, T, c, -1); break;
    case 3: case_half(p, T, c); break;
    case 4: case_where(p, T, c); break;
    default: case_no_fit(p, T, which - 5, c); break;
    }
}

#endif /* XCS_TEST_SCAN_CASES_H */
