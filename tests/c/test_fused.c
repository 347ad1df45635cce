/* test_fused.c — the CPU fused tile VM (run_fused) against the same ops run
 * one by one through the eager core API.
 *
 * Programs are built by hand.  Elementwise results must be bit-identical to
 * eager (same kernels); float reductions agree to a relative 1e-6 (f32) /
 * 1e-12 (f64), since eager accumulates in another order; integer and max/min
 * reductions exactly.  Also: broadcast, transposed and reversed inputs, mixed
 * dtypes, multiple outputs, NaN, empty and size-1 shapes, errors, thread-count
 * determinism, plans kept between calls (a loop's steps), and that no
 * storage is allocated while a program runs.
 *
 * `test_fused --bench` prints GB/s of an 8-op f32 chain on 1e7 elements,
 * fused vs eager (counting one read and one write of the array). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "half.h"
#include "xcs_host.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

/* A C-contiguous tensor of uniform values in [lo, hi) (ints: floor). */
static xcs_tensor *rand_t(xcs_dtype dt, int nd, const int64_t *shape, double lo, double hi) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(dt, nd, shape, &t));
    int64_t n = xcs_tensor_numel(t);
    void *d = xcs_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * urand();
        switch (dt) {
        case XCS_BOOL: ((uint8_t *)d)[i] = v >= 0.5 * (lo + hi); break;
        case XCS_I32: ((int32_t *)d)[i] = (int32_t)floor(v); break;
        case XCS_I64: ((int64_t *)d)[i] = (int64_t)floor(v); break;
        case XCS_F32: ((float *)d)[i] = (float)v; break;
        case XCS_F16: ((uint16_t *)d)[i] = xcs_f64_to_f16(v); break;
        case XCS_BF16: ((uint16_t *)d)[i] = xcs_f64_to_bf16(v); break;
        default: ((double *)d)[i] = v; break;
        }
    }
    return t;
}

static xcs_tensor *out_t(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(dt, nd, shape, &t));
    return t;
}

/* Bitwise equality of two tensors of equal dtype and numel (any layout). */
static bool same_bits(const xcs_tensor *a, const xcs_tensor *b) {
    if (a->dtype != b->dtype || xcs_tensor_numel(a) != xcs_tensor_numel(b)) return false;
    xcs_tensor *ca = NULL, *cb = NULL;
    CHECK_OK(xcs_contiguous(a, &ca));
    CHECK_OK(xcs_contiguous(b, &cb));
    bool eq = memcmp(xcs_tensor_data(ca), xcs_tensor_data(cb),
                     (size_t)xcs_tensor_numel(a) * xcs_dtype_size(a->dtype)) == 0;
    xcs_tensor_free(ca);
    xcs_tensor_free(cb);
    return eq;
}

/* Max relative difference (NaNs must match). */
static double rel_diff(const xcs_tensor *a, const xcs_tensor *b) {
    double worst = 0;
    for (int64_t i = 0; i < xcs_tensor_numel(a); i++) {
        double x = xcs_tensor_get_f64(a, i), y = xcs_tensor_get_f64(b, i);
        if (isnan(x) || isnan(y)) {
            if (!(isnan(x) && isnan(y))) return INFINITY;
            continue;
        }
        double d = fabs(x - y) / (fabs(y) > 1e-30 ? fabs(y) : 1.0);
        if (d > worst) worst = d;
    }
    return worst;
}

/* ---------------------------------------------------------------- builder */

static xcs_fused_program prog(int nd, const int64_t *shape, int n_in, int n_out) {
    xcs_fused_program p;
    memset(&p, 0, sizeof p);
    p.ndim = nd;
    for (int d = 0; d < nd; d++) p.shape[d] = shape[d];
    p.n_inputs = n_in;
    p.n_outputs = n_out;
    p.n_regs = XCS_FUSED_MAX_REGS;
    return p;
}
static void emit(xcs_fused_program *p, xcs_fused_kind k, xcs_op op, int dst, int a, int b, int c,
                 xcs_dtype dt) {
    p->instr[p->n_instr++] = (xcs_fused_instr){k, op, dst, a, b, c, dt, dt};
}
#define LD(p, r, in, dt) emit(p, XCS_FUSED_LOAD, XCS_OP_COPY, r, in, -1, -1, dt)
#define OP1(p, op, r, a, dt) emit(p, XCS_FUSED_OP, XCS_OP_##op, r, a, -1, -1, dt)
#define OP2(p, op, r, a, b, dt) emit(p, XCS_FUSED_OP, XCS_OP_##op, r, a, b, -1, dt)
#define ST(p, o, r) emit(p, XCS_FUSED_STORE, XCS_OP_COPY, o, r, -1, -1, XCS_F32)
#define RED(p, op, o, r, axes) (emit(p, XCS_FUSED_REDUCE, XCS_OP_##op, o, r, -1, -1, XCS_F32), (p)->reduce_axes = (axes))

static xcs_status run(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out) {
    return xcs_backend_for(XCS_DEVICE_CPU)->run_fused(p, in, out);
}

/* eager helpers: consume `a` (and b), return the result */
static xcs_tensor *eu(xcs_op op, xcs_tensor *a) {
    xcs_tensor *r = NULL;
    CHECK_OK(xcs_unary(op, a, &r));
    xcs_tensor_free(a);
    return r;
}
static xcs_tensor *eb(xcs_op op, xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *r = NULL;
    CHECK_OK(xcs_binary(op, a, b, &r));
    xcs_tensor_free(a);
    return r;
}
static xcs_tensor *view(const xcs_tensor *x) {
    xcs_tensor *v = NULL;
    CHECK_OK(xcs_tensor_view(x, &v));
    return v;
}

/* ---------------------------------------------------------------- elementwise */

/* The 8-op chain ((sqrt|tanh(sin(x*y + x) * x) - y|)...) used by tests and bench. */
static void chain8(xcs_fused_program *p) {
    LD(p, 0, 0, XCS_F32);
    LD(p, 1, 1, XCS_F32);
    OP2(p, MUL, 2, 0, 1, XCS_F32);
    OP2(p, ADD, 2, 2, 0, XCS_F32);
    OP1(p, SIN, 2, 2, XCS_F32);
    OP2(p, MUL, 2, 2, 0, XCS_F32);
    OP1(p, TANH, 2, 2, XCS_F32);
    OP2(p, SUB, 2, 2, 1, XCS_F32);
    OP1(p, ABS, 2, 2, XCS_F32);
    OP1(p, SQRT, 2, 2, XCS_F32);
    ST(p, 0, 2);
}
static xcs_tensor *chain8_eager(const xcs_tensor *x, const xcs_tensor *y) {
    xcs_tensor *t = eb(XCS_OP_MUL, view(x), y);
    t = eb(XCS_OP_ADD, t, x);
    t = eu(XCS_OP_SIN, t);
    t = eb(XCS_OP_MUL, t, x);
    t = eu(XCS_OP_TANH, t);
    t = eb(XCS_OP_SUB, t, y);
    t = eu(XCS_OP_ABS, t);
    return eu(XCS_OP_SQRT, t);
}

static void test_chain8(void) {
    const int64_t n = 1000003;
    xcs_tensor *x = rand_t(XCS_F32, 1, &n, -3, 3), *y = rand_t(XCS_F32, 1, &n, -3, 3);
    xcs_tensor *o = out_t(XCS_F32, 1, &n);
    xcs_fused_program p = prog(1, &n, 2, 1);
    chain8(&p);
    xcs_alloc_stats before, after;
    xcs_alloc_stats_get(&before);
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, y}, &o));
    xcs_alloc_stats_get(&after);
    CHECK_EQ_I(after.total_buffers, before.total_buffers); /* no storage at all */
    CHECK_EQ_I(after.live_buffers, before.live_buffers);
    xcs_tensor *e = chain8_eager(x, y);
    CHECK(same_bits(o, e));
    xcs_tensor_free(e);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
    xcs_tensor_free(y);
}

/* (x + b) * s with b a broadcast row, s a broadcast 0-d scalar; x reversed
 * along dim 0 and a transposed second input. */
static void test_broadcast_strided(void) {
    const int64_t shp[2] = {300, 401};
    xcs_tensor *x = rand_t(XCS_F32, 2, shp, -1, 1), *b = rand_t(XCS_F32, 1, &shp[1], -1, 1);
    xcs_tensor *s = NULL, *bb = NULL, *sb = NULL, *xr = NULL, *yt = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F32, 1.5, &s));
    CHECK_OK(xcs_broadcast_to(b, 2, shp, &bb));
    CHECK_OK(xcs_broadcast_to(s, 2, shp, &sb));
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){0, 0, -1, false, false}, &xr));
    xcs_tensor *y = rand_t(XCS_F32, 2, SHAPE(401, 300), -1, 1);
    CHECK_OK(xcs_transpose(y, &yt));
    xcs_fused_program p = prog(2, shp, 4, 1);
    LD(&p, 0, 0, XCS_F32);
    LD(&p, 1, 1, XCS_F32);
    OP2(&p, ADD, 0, 0, 1, XCS_F32);
    LD(&p, 1, 2, XCS_F32);
    OP2(&p, MUL, 0, 0, 1, XCS_F32);
    LD(&p, 1, 3, XCS_F32);
    OP2(&p, SUB, 0, 0, 1, XCS_F32);
    ST(&p, 0, 0);
    xcs_tensor *o = out_t(XCS_F32, 2, shp);
    CHECK_OK(run(&p, (const xcs_tensor *[]){xr, bb, sb, yt}, &o));
    xcs_tensor *e = eb(XCS_OP_SUB, eb(XCS_OP_MUL, eb(XCS_OP_ADD, view(xr), b), s), yt);
    CHECK(same_bits(o, e));
    xcs_tensor *all[] = {x, b, s, bb, sb, xr, y, yt, o, e};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xcs_tensor_free(all[i]);
}

/* int32 loaded as f64, plus f64, stored to f32 (conversion on store); and a
 * comparison + where with two outputs (bool and f64). */
static void test_mixed_where_multi(void) {
    const int64_t shp[2] = {257, 129};
    xcs_tensor *i = rand_t(XCS_I32, 2, shp, -100, 100), *x = rand_t(XCS_F64, 2, shp, -100, 100);
    xcs_fused_program p = prog(2, shp, 2, 3);
    LD(&p, 0, 0, XCS_F64);
    LD(&p, 1, 1, XCS_F64);
    OP2(&p, ADD, 2, 0, 1, XCS_F64);
    ST(&p, 0, 2);
    OP2(&p, GT, 3, 0, 1, XCS_F64);
    ST(&p, 1, 3);
    emit(&p, XCS_FUSED_OP, XCS_OP_WHERE, 4, 3, 0, 1, XCS_F64);
    ST(&p, 2, 4);
    xcs_tensor *outs[3] = {out_t(XCS_F32, 2, shp), out_t(XCS_BOOL, 2, shp), out_t(XCS_F64, 2, shp)};
    CHECK_OK(run(&p, (const xcs_tensor *[]){i, x}, outs));
    xcs_tensor *i64 = NULL, *sum = NULL, *sum32 = NULL, *gt = NULL, *w = NULL;
    CHECK_OK(xcs_cast(i, XCS_F64, &i64));
    CHECK_OK(xcs_binary(XCS_OP_ADD, i64, x, &sum));
    CHECK_OK(xcs_cast(sum, XCS_F32, &sum32));
    CHECK_OK(xcs_binary(XCS_OP_GT, i64, x, &gt));
    CHECK_OK(xcs_where(gt, i64, x, &w));
    CHECK(same_bits(outs[0], sum32));
    CHECK(same_bits(outs[1], gt));
    CHECK(same_bits(outs[2], w));
    xcs_tensor *all[] = {i, x, outs[0], outs[1], outs[2], i64, sum, sum32, gt, w};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) xcs_tensor_free(all[k]);
}

/* ---------------------------------------------------------------- reductions */

/* out = reduce(op, f(x) over axes) with f = x * x + x (or x for max/min),
 * checked against eager.  nan_every > 0 plants NaNs. */
static void check_reduce(xcs_op op, xcs_dtype dt, xcs_dtype odt, int nd, const int64_t *shp,
                         unsigned axes, int nan_every) {
    xcs_tensor *x = rand_t(dt, nd, shp, -2, 2);
    if (nan_every > 0 && xcs_dtype_is_float(dt))
        for (int64_t k = 0; k < xcs_tensor_numel(x); k += nan_every) {
            if (dt == XCS_F32) ((float *)xcs_tensor_data(x))[k] = NAN;
            else ((double *)xcs_tensor_data(x))[k] = NAN;
        }
    const bool poly = op == XCS_OP_SUM || op == XCS_OP_PROD;
    xcs_fused_program p = prog(nd, shp, 1, 1);
    LD(&p, 0, 0, dt);
    if (poly && dt != XCS_BOOL) {
        OP2(&p, MUL, 1, 0, 0, dt);
        OP2(&p, ADD, 0, 1, 0, dt);
    }
    emit(&p, XCS_FUSED_REDUCE, op, 0, 0, -1, -1, dt);
    p.reduce_axes = axes;
    int64_t oshp[XCS_MAX_DIMS];
    for (int d = 0; d < nd; d++) oshp[d] = axes >> d & 1u ? 1 : shp[d];
    xcs_tensor *o = out_t(odt, nd, oshp);
    CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &o));
    xcs_tensor *f = view(x), *e = NULL;
    if (poly && dt != XCS_BOOL) {
        xcs_tensor *sq = NULL;
        CHECK_OK(xcs_binary(XCS_OP_MUL, x, x, &sq));
        xcs_tensor_free(f);
        f = eb(XCS_OP_ADD, sq, x);
    }
    CHECK_OK(xcs_reduce(op, f, axes, true, &e));
    CHECK(e && e->dtype == odt);
    double tol = !xcs_dtype_is_float(dt) || !poly ? 0 : dt == XCS_F32 ? 1e-6 : 1e-12;
    double d = rel_diff(o, e);
    if (!(d <= tol)) fprintf(stderr, "  %s %s axes 0x%x: rel diff %g\n", xcs_op_name(op), xcs_dtype_name(dt), axes, d);
    CHECK(d <= tol);
    xcs_tensor_free(e);
    xcs_tensor_free(f);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

static void test_reduce_layouts(void) {
    /* rows: long, short (several per tile), full */
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 2, SHAPE(500, 1000), 2u, 0);
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 2, SHAPE(100000, 3), 2u, 0);
    check_reduce(XCS_OP_SUM, XCS_F64, XCS_F64, 2, SHAPE(7, 300001), 2u, 0);
    check_reduce(XCS_OP_SUM, XCS_F64, XCS_F64, 1, SHAPE(3000000), 1u, 0);
    check_reduce(XCS_OP_MAX, XCS_F32, XCS_F32, 2, SHAPE(40, 5000), 3u, 0);
    /* columns: tall, wide, small K2 (split), middle axis */
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 2, SHAPE(3000, 500), 1u, 0);
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 2, SHAPE(30, 5000), 1u, 0);
    check_reduce(XCS_OP_SUM, XCS_F64, XCS_F64, 2, SHAPE(200000, 3), 1u, 0);
    check_reduce(XCS_OP_MIN, XCS_F64, XCS_F64, 3, SHAPE(50, 100, 40), 2u, 0);
    check_reduce(XCS_OP_PROD, XCS_F64, XCS_F64, 3, SHAPE(5, 7, 9), 2u, 0);
    /* general: K R K R, and R K R */
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 4, SHAPE(4, 30, 5, 20), 0xAu, 0);
    check_reduce(XCS_OP_MAX, XCS_F64, XCS_F64, 3, SHAPE(6, 7, 8), 0x5u, 0);
    /* ints and bools accumulate in int64 */
    check_reduce(XCS_OP_SUM, XCS_I32, XCS_I64, 2, SHAPE(300, 700), 2u, 0);
    check_reduce(XCS_OP_SUM, XCS_I32, XCS_I64, 2, SHAPE(300, 700), 1u, 0);
    check_reduce(XCS_OP_SUM, XCS_BOOL, XCS_I64, 2, SHAPE(1000, 333), 3u, 0);
    check_reduce(XCS_OP_MAX, XCS_I64, XCS_I64, 2, SHAPE(77, 1234), 2u, 0);
    /* NaN propagates through max/min, rows and columns */
    check_reduce(XCS_OP_MAX, XCS_F32, XCS_F32, 2, SHAPE(64, 1000), 2u, 9973);
    check_reduce(XCS_OP_MIN, XCS_F64, XCS_F64, 2, SHAPE(1000, 64), 1u, 9973);
    /* size 1 everywhere, 0-d, nothing reduced */
    check_reduce(XCS_OP_SUM, XCS_F32, XCS_F32, 3, SHAPE(1, 1, 1), 5u, 0);
    check_reduce(XCS_OP_SUM, XCS_F64, XCS_F64, 0, SHAPE(0), 0u, 0);
    check_reduce(XCS_OP_SUM, XCS_F64, XCS_F64, 2, SHAPE(33, 1), 2u, 0);
    check_reduce(XCS_OP_MAX, XCS_F64, XCS_F64, 2, SHAPE(33, 20), 0u, 0);
}

/* softmax's denominator: e = exp(x - m) stored, sum(e, axis=-1) reduced. */
static void test_softmax_like(void) {
    const int64_t shp[2] = {777, 1000};
    xcs_tensor *x = rand_t(XCS_F32, 2, shp, -5, 5), *m = NULL, *mb = NULL;
    CHECK_OK(xcs_reduce(XCS_OP_MAX, x, 2u, true, &m));
    CHECK_OK(xcs_broadcast_to(m, 2, shp, &mb));
    xcs_fused_program p = prog(2, shp, 2, 2);
    LD(&p, 0, 0, XCS_F32);
    LD(&p, 1, 1, XCS_F32);
    OP2(&p, SUB, 0, 0, 1, XCS_F32);
    OP1(&p, EXP, 0, 0, XCS_F32);
    ST(&p, 0, 0);
    RED(&p, SUM, 1, 0, 2u);
    xcs_tensor *outs[2] = {out_t(XCS_F32, 2, shp), out_t(XCS_F32, 2, SHAPE(777, 1))};
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, mb}, outs));
    xcs_tensor *e = eu(XCS_OP_EXP, eb(XCS_OP_SUB, view(x), m)), *s = NULL;
    CHECK_OK(xcs_reduce(XCS_OP_SUM, e, 2u, true, &s));
    CHECK(same_bits(outs[0], e));
    CHECK(rel_diff(outs[1], s) <= 1e-6);
    xcs_tensor *all[] = {x, m, mb, outs[0], outs[1], e, s};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) xcs_tensor_free(all[k]);
}

/* The same bits for 1 thread and many: full, row and column reductions. */
static void test_deterministic(void) {
#ifdef _OPENMP
    const int64_t shp[2] = {3, 2000001};
    xcs_tensor *x = rand_t(XCS_F32, 2, shp, -1, 1);
    for (unsigned axes = 1; axes <= 3; axes++) {
        xcs_fused_program p = prog(2, shp, 1, 1);
        LD(&p, 0, 0, XCS_F32);
        OP1(&p, EXP, 0, 0, XCS_F32);
        RED(&p, SUM, 0, 0, axes);
        const int64_t os[2] = {axes & 1u ? 1 : 3, axes & 2u ? 1 : shp[1]};
        xcs_tensor *a = out_t(XCS_F32, 2, os), *b = out_t(XCS_F32, 2, os);
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &a));
        omp_set_num_threads(saved > 1 ? saved : 4);
        CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &b));
        omp_set_num_threads(saved);
        CHECK(same_bits(a, b));
        xcs_tensor_free(a);
        xcs_tensor_free(b);
    }
    xcs_tensor_free(x);
#endif
}

static void test_empty(void) {
    xcs_tensor *x = rand_t(XCS_F32, 2, SHAPE(0, 5), 0, 1);
    xcs_fused_program p = prog(2, SHAPE(0, 5), 1, 1);
    LD(&p, 0, 0, XCS_F32);
    OP1(&p, EXP, 0, 0, XCS_F32);
    ST(&p, 0, 0);
    xcs_tensor *o = out_t(XCS_F32, 2, SHAPE(0, 5));
    CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &o));
    xcs_tensor_free(o);
    /* empty sum is 0; empty max has no identity */
    p.n_instr = 2;
    RED(&p, SUM, 0, 0, 1u);
    o = out_t(XCS_F32, 2, SHAPE(1, 5));
    CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &o));
    for (int k = 0; k < 5; k++) CHECK(xcs_tensor_get_f64(o, k) == 0);
    p.instr[2].op = XCS_OP_MAX;
    CHECK_ERR(run(&p, (const xcs_tensor *[]){x}, &o), XCS_ERR_VALUE, "identity");
    p.reduce_axes = 2u; /* nothing to write */
    xcs_tensor *o2 = out_t(XCS_F32, 2, SHAPE(0, 1));
    CHECK_OK(run(&p, (const xcs_tensor *[]){x}, &o2));
    xcs_tensor_free(o2);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

/* In place and strided outputs (what a GEMM epilogue uses): an input that is
 * an output's own memory, loaded before that output is written, gives the
 * same bits as a separate output; a block view of a larger output (row
 * stride > width) is written only inside the block; a LOAD after the write
 * is refused. */
static void test_in_place_and_strided_out(void) {
    const int64_t shape[2] = {37, 300};
    xcs_tensor *x = rand_t(XCS_F32, 2, shape, -2, 2), *y = rand_t(XCS_F32, 2, shape, -2, 2);
    xcs_tensor *sep[2] = {out_t(XCS_F32, 2, shape), out_t(XCS_F32, 2, shape)}, *inpl[2] = {NULL, out_t(XCS_F32, 2, shape)};
    CHECK_OK(xcs_copy(x, &inpl[0]));
    xcs_fused_program p = prog(2, shape, 2, 2);
    LD(&p, 0, 0, XCS_F32);
    LD(&p, 1, 1, XCS_F32);
    OP2(&p, ADD, 2, 0, 1, XCS_F32);
    OP1(&p, TANH, 2, 2, XCS_F32); /* written straight into output 0: x's memory in place */
    ST(&p, 0, 2);
    OP2(&p, MUL, 3, 2, 0, XCS_F32); /* reads the loaded x after that write */
    ST(&p, 1, 3);
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, y}, sep));
    CHECK_OK(run(&p, (const xcs_tensor *[]){inpl[0], y}, inpl));
    CHECK(same_bits(sep[0], inpl[0]) && same_bits(sep[1], inpl[1]));
    /* a [37, 120] block at column 50 of a [37, 300] output */
    xcs_tensor *big = NULL, *blk = NULL;
    CHECK_OK(xcs_full(XCS_F32, 2, shape, -7.0, &big));
    const int64_t bshape[2] = {37, 120};
    CHECK_OK(xcs_tensor_from_storage(big->storage, XCS_F32, 2, bshape, big->strides, 50, &blk));
    xcs_tensor *xb = NULL, *yb = NULL;
    CHECK_OK(xcs_tensor_from_storage(x->storage, XCS_F32, 2, bshape, x->strides, 50, &xb));
    CHECK_OK(xcs_tensor_from_storage(y->storage, XCS_F32, 2, bshape, y->strides, 50, &yb));
    xcs_fused_program q = p;
    q.shape[1] = 120;
    q.n_instr = 5; /* output 0 only */
    q.n_outputs = 1;
    CHECK_OK(run(&q, (const xcs_tensor *[]){xb, yb}, &blk));
    for (int64_t i = 0; i < 37 * 300; i += 7) {
        int64_t c = i % 300;
        double want = c >= 50 && c < 170 ? xcs_tensor_get_f64(sep[0], i) : -7.0;
        CHECK_NEAR(xcs_tensor_get_f64(big, i), want, 0);
    }
    /* a LOAD of the aliased input after its output was written */
    xcs_fused_program r = prog(2, shape, 2, 1);
    LD(&r, 1, 1, XCS_F32);
    ST(&r, 0, 1);
    LD(&r, 0, 0, XCS_F32);
    OP2(&r, ADD, 2, 0, 1, XCS_F32);
    ST(&r, 0, 2);
    CHECK_ERR(run(&r, (const xcs_tensor *[]){inpl[0], y}, inpl), XCS_ERR_VALUE, "after output 0");
    xcs_tensor_free(x); xcs_tensor_free(y);
    for (int k = 0; k < 2; k++) { xcs_tensor_free(sep[k]); xcs_tensor_free(inpl[k]); }
    xcs_tensor_free(big); xcs_tensor_free(blk); xcs_tensor_free(xb); xcs_tensor_free(yb);
}

/* An op writing over its own operand register of another width (where's
 * bool condition register taking its float64 result, a float64 register
 * taking a comparison's bools): the program allows it, so the VM computes
 * it aside (found by test_cuda_host_kernels' random chains: the in-place
 * writes overtook the reads). */
static void test_op_over_an_operand_of_another_width(void) {
    const int64_t n = 5003;
    xcs_tensor *x = rand_t(XCS_F64, 1, &n, -2, 2), *y = rand_t(XCS_F64, 1, &n, -2, 2);
    xcs_tensor *o = out_t(XCS_F64, 1, &n), *ob = NULL, *lt = NULL, *w = NULL, *want = NULL, *s = NULL, *wantb = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_BOOL, 1, &n, &ob));
    xcs_fused_program p = prog(1, &n, 2, 2);
    emit(&p, XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F64);
    emit(&p, XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_F64);
    emit(&p, XCS_FUSED_OP, XCS_OP_LT, 2, 0, 1, -1, XCS_F64);       /* r2: bool, in its register */
    emit(&p, XCS_FUSED_OP, XCS_OP_WHERE, 2, 2, 0, 1, XCS_F64);     /* float64 over its own bool operand */
    emit(&p, XCS_FUSED_OP, XCS_OP_NEG, 3, 2, -1, -1, XCS_F64);     /* (read by another op: not an output's tile) */
    emit(&p, XCS_FUSED_STORE, XCS_OP_COPY, 0, 3, -1, -1, XCS_F64);
    emit(&p, XCS_FUSED_OP, XCS_OP_ADD, 0, 0, 1, -1, XCS_F64);      /* r0: float64, in its register */
    emit(&p, XCS_FUSED_OP, XCS_OP_GT, 0, 0, 1, -1, XCS_F64);       /* bools over their own float64 operand */
    emit(&p, XCS_FUSED_OP, XCS_OP_LOGICAL_NOT, 4, 0, -1, -1, XCS_BOOL);
    emit(&p, XCS_FUSED_STORE, XCS_OP_COPY, 1, 4, -1, -1, XCS_BOOL);
    xcs_tensor *outs[2] = {o, ob};
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, y}, outs));
    CHECK_OK(xcs_binary(XCS_OP_LT, x, y, &lt));
    CHECK_OK(xcs_where(lt, x, y, &w));
    CHECK_OK(xcs_unary(XCS_OP_NEG, w, &want));
    CHECK_OK(xcs_binary(XCS_OP_ADD, x, y, &s));
    CHECK_OK(xcs_binary(XCS_OP_LE, s, y, &wantb)); /* not (x + y > y) */
    CHECK(same_bits(o, want) && same_bits(ob, wantb));
    xcs_tensor *f[] = {x, y, o, ob, lt, w, want, s, wantb};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* An output marked for streaming (non-temporal stores) holds the same bits,
 * also when it starts off a 32-byte boundary and ends mid-vector. */
static void test_streamed_output(void) {
    const int64_t n = 100003, big = n + 8;
    xcs_tensor *x = rand_t(XCS_F32, 1, &n, -3, 3), *y = rand_t(XCS_F32, 1, &n, -3, 3);
    xcs_tensor *plain = out_t(XCS_F32, 1, &n), *backing = NULL, *streamed = NULL;
    CHECK_OK(xcs_full(XCS_F32, 1, &big, 5.0, &backing));
    const int64_t one = 1;
    CHECK_OK(xcs_tensor_from_storage(backing->storage, XCS_F32, 1, &n, &one, 3, &streamed));
    xcs_fused_program p = prog(1, &n, 2, 1);
    chain8(&p);
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, y}, &plain));
    p.stream_outputs = 1u;
    CHECK_OK(run(&p, (const xcs_tensor *[]){x, y}, &streamed));
    CHECK(same_bits(plain, streamed));
    CHECK_NEAR(xcs_tensor_get_f64(backing, 2), 5.0, 0);
    CHECK_NEAR(xcs_tensor_get_f64(backing, n + 3), 5.0, 0);
    xcs_tensor_free(x); xcs_tensor_free(y); xcs_tensor_free(plain); xcs_tensor_free(backing);
    xcs_tensor_free(streamed);
}

/* A plan kept between calls (run_fused_kept, what a loop's steps use): new
 * memory and new scalar values with the same layouts reuse it; a new layout
 * (a transposed input) or new aliasing (in place) rebuilds it; a kernel
 * error leaves it usable.  Every result has the bits of a fresh run. */
static void test_kept_plans(void) {
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CPU);
    CHECK(be->run_fused_kept && be->fused_cache_free);
    const int64_t shape[2] = {5, 40}, tshape[2] = {40, 5}, rshape[2] = {5, 1}, one = 1, zero2[2] = {0, 0};
    const int64_t tstrides[2] = {1, 5};
    /* out0 = tanh(x * s) + y (s a broadcast scalar), out1 = its row sums */
    xcs_fused_program p = prog(2, shape, 3, 2);
    LD(&p, 0, 0, XCS_F32);
    LD(&p, 1, 1, XCS_F32);
    LD(&p, 2, 2, XCS_F32);
    OP2(&p, MUL, 3, 0, 2, XCS_F32);
    OP1(&p, TANH, 3, 3, XCS_F32);
    OP2(&p, ADD, 3, 3, 1, XCS_F32);
    ST(&p, 0, 3);
    RED(&p, SUM, 1, 3, 2u);
    xcs_fused_cache *cache = NULL;
    for (int step = 0; step < 5; step++) {
        xcs_tensor *x = NULL, *base = NULL, *y = rand_t(XCS_F32, 2, shape, -2, 2);
        if (step == 2) { /* x transposed: another layout */
            base = rand_t(XCS_F32, 2, tshape, -2, 2);
            CHECK_OK(xcs_tensor_from_storage(base->storage, XCS_F32, 2, shape, tstrides, 0, &x));
        } else {
            x = rand_t(XCS_F32, 2, shape, -2, 2);
        }
        xcs_tensor *sv = NULL, *s = NULL, *xc = NULL;
        CHECK_OK(xcs_full(XCS_F32, 1, &one, 0.5 * (step + 1), &sv));
        CHECK_OK(xcs_tensor_from_storage(sv->storage, XCS_F32, 2, shape, zero2, 0, &s));
        CHECK_OK(xcs_contiguous(x, &xc));
        xcs_tensor *want[2] = {out_t(XCS_F32, 2, shape), out_t(XCS_F32, 2, rshape)};
        CHECK_OK(run(&p, (const xcs_tensor *[]){xc, y, s}, want));
        /* step 3: in place, output 0 is x's memory */
        xcs_tensor *got[2] = {step == 3 ? view(x) : out_t(XCS_F32, 2, shape), out_t(XCS_F32, 2, rshape)};
        CHECK_OK(be->run_fused_kept(&p, &cache, (const xcs_tensor *[]){x, y, s}, got));
        CHECK(same_bits(got[0], want[0]) && same_bits(got[1], want[1]));
        for (int k = 0; k < 2; k++) { xcs_tensor_free(want[k]); xcs_tensor_free(got[k]); }
        xcs_tensor_free(x); xcs_tensor_free(base); xcs_tensor_free(y); xcs_tensor_free(sv); xcs_tensor_free(s);
        xcs_tensor_free(xc);
    }
    be->fused_cache_free(cache);

    /* a // b: a step dividing by zero fails and names it; the next runs */
    const int64_t n = 64;
    xcs_fused_program q = prog(1, &n, 2, 1);
    LD(&q, 0, 0, XCS_I64);
    LD(&q, 1, 1, XCS_I64);
    OP2(&q, FLOOR_DIV, 2, 0, 1, XCS_I64);
    ST(&q, 0, 2);
    cache = NULL;
    for (int step = 0; step < 3; step++) {
        xcs_tensor *a = rand_t(XCS_I64, 1, &n, -50, 50), *b = rand_t(XCS_I64, 1, &n, 1, 9);
        xcs_tensor *got = out_t(XCS_I64, 1, &n), *want = out_t(XCS_I64, 1, &n);
        if (step == 1) {
            ((int64_t *)xcs_tensor_data(b))[17] = 0;
            CHECK_ERR(be->run_fused_kept(&q, &cache, (const xcs_tensor *[]){a, b}, &got), XCS_ERR_ZERO_DIV,
                      "division by zero");
        } else {
            CHECK_OK(be->run_fused_kept(&q, &cache, (const xcs_tensor *[]){a, b}, &got));
            CHECK_OK(run(&q, (const xcs_tensor *[]){a, b}, &want));
            CHECK(same_bits(got, want));
        }
        xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(got); xcs_tensor_free(want);
    }
    be->fused_cache_free(cache);
}

static void test_errors(void) {
    const int64_t n = 100000;
    xcs_tensor *a = rand_t(XCS_I32, 1, &n, 1, 50), *b = rand_t(XCS_I32, 1, &n, 1, 50);
    ((int32_t *)xcs_tensor_data(b))[77777] = 0;
    xcs_tensor *o = out_t(XCS_I32, 1, &n);
    xcs_fused_program p = prog(1, &n, 2, 1);
    LD(&p, 0, 0, XCS_I32);
    LD(&p, 1, 1, XCS_I32);
    OP2(&p, FLOOR_DIV, 2, 0, 1, XCS_I32);
    ST(&p, 0, 2);
    CHECK_ERR(run(&p, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_ZERO_DIV, "floor_divide");
    p.instr[2].op = XCS_OP_POW;
    ((int32_t *)xcs_tensor_data(b))[77777] = -1;
    CHECK_ERR(run(&p, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "negative integer powers");
    p.instr[2].op = XCS_OP_BIT_AND;
    p.instr[0].dtype = p.instr[1].dtype = p.instr[2].dtype = XCS_F32;
    CHECK_ERR(run(&p, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_TYPE, "bitwise_and");
    p.instr[0].dtype = p.instr[1].dtype = p.instr[2].dtype = XCS_I32;
    p.instr[2].op = XCS_OP_ADD;
    xcs_fused_program q = p;
    q.instr[2].b = 5; /* never written */
    CHECK_ERR(run(&q, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "invalid fused program");
    q = p;
    q.instr[0].dtype = XCS_F64; /* add(i32) reads an f64 register */
    CHECK_ERR(run(&q, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "invalid fused program");
    q = p;
    q.instr[3] = (xcs_fused_instr){XCS_FUSED_REDUCE, XCS_OP_SUM, 0, 2, -1, -1, XCS_I32, XCS_I32};
    q.instr[q.n_instr++] = p.instr[3]; /* REDUCE not last */
    CHECK_ERR(run(&q, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "last");
    q = p;
    q.instr[0].a = 2; /* input out of range */
    CHECK_ERR(run(&q, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "invalid fused program");
    q = p;
    q.shape[0] = 5; /* inputs not of the program's shape */
    CHECK_ERR(run(&q, (const xcs_tensor *[]){a, b}, &o), XCS_ERR_VALUE, "invalid fused program");
    xcs_tensor_free(o);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
}

/* ---------------------------------------------------------------- bench */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A memory-bound 8-op chain of cheap ops (no transcendental), to compare
 * with STREAM. */
static void chain8_cheap(xcs_fused_program *p) {
    LD(p, 0, 0, XCS_F32);
    LD(p, 1, 1, XCS_F32);
    OP2(p, MUL, 2, 0, 1, XCS_F32);
    OP2(p, ADD, 2, 2, 0, XCS_F32);
    OP2(p, SUB, 2, 2, 1, XCS_F32);
    OP2(p, MUL, 2, 2, 0, XCS_F32);
    OP2(p, MAXIMUM, 2, 2, 1, XCS_F32);
    OP2(p, MINIMUM, 2, 2, 0, XCS_F32);
    OP2(p, ADD, 2, 2, 1, XCS_F32);
    OP1(p, ABS, 2, 2, XCS_F32);
    ST(p, 0, 2);
}
static xcs_tensor *chain8_cheap_eager(const xcs_tensor *x, const xcs_tensor *y) {
    xcs_tensor *t = eb(XCS_OP_MUL, view(x), y);
    t = eb(XCS_OP_ADD, t, x);
    t = eb(XCS_OP_SUB, t, y);
    t = eb(XCS_OP_MUL, t, x);
    t = eb(XCS_OP_MAXIMUM, t, y);
    t = eb(XCS_OP_MINIMUM, t, x);
    t = eb(XCS_OP_ADD, t, y);
    return eu(XCS_OP_ABS, t);
}

/* GB/s counts one read + one write of the array (8 bytes per element), as
 * the task defines it; the fused kernel really moves 12 (x, y, out). */
static void bench_chain(const char *what, void (*build)(xcs_fused_program *),
                        xcs_tensor *(*eager)(const xcs_tensor *, const xcs_tensor *)) {
    const int64_t n = 10000000;
    xcs_tensor *x = rand_t(XCS_F32, 1, &n, -3, 3), *y = rand_t(XCS_F32, 1, &n, -3, 3);
    xcs_tensor *o = out_t(XCS_F32, 1, &n);
    xcs_fused_program p = prog(1, &n, 2, 1);
    build(&p);
    double best_f = 1e30, best_e = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = now();
        run(&p, (const xcs_tensor *[]){x, y}, &o);
        double t1 = now();
        xcs_tensor *e = eager(x, y);
        double t2 = now();
        xcs_tensor_free(e);
        if (t1 - t0 < best_f) best_f = t1 - t0;
        if (t2 - t1 < best_e) best_e = t2 - t1;
    }
    const double bytes = 2.0 * 4.0 * (double)n;
    printf("%s, 1e7 f32 (best of 10)\n", what);
    printf("  fused  %8.3f ms  %6.1f GB/s\n", best_f * 1e3, bytes / best_f * 1e-9);
    printf("  eager  %8.3f ms  %6.1f GB/s  (8 passes)  fused speedup %.2fx\n", best_e * 1e3,
           bytes / best_e * 1e-9, best_e / best_f);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
    xcs_tensor_free(y);
}

static int bench(void) {
    bench_chain("8-op chain (sin, tanh, sqrt, ...)", chain8, chain8_eager);
    bench_chain("8-op chain (mul, add, max, ...: memory-bound)", chain8_cheap, chain8_cheap_eager);
    return 0;
}

int main(int argc, char **argv) {
    CHECK_OK(xcs_host_init());
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    RUN(test_chain8);
    RUN(test_broadcast_strided);
    RUN(test_mixed_where_multi);
    RUN(test_reduce_layouts);
    RUN(test_softmax_like);
    RUN(test_deterministic);
    RUN(test_empty);
    RUN(test_in_place_and_strided_out);
    RUN(test_op_over_an_operand_of_another_width);
    RUN(test_streamed_output);
    RUN(test_kept_plans);
    RUN(test_errors);
    return check_report();
}
