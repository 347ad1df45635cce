/* test_elementwise.c — CPU elementwise kernels (elementwise.c, ew_kernels.c,
 * vmath.h) against scalar double-precision references.
 *
 * xcs_cpu_elementwise is called directly on hand-made views: every op of
 * every dtype its table row supports on random inputs (with NaN, inf, +-0,
 * extremes mixed in), inputs of other dtypes than the compute dtype and
 * outputs of other dtypes (conversion paths), broadcast / transposed /
 * reversed / strided layouts with short rows, long rows and tiles, sizes
 * 0, 1 and past XCS_CPU_PAR_MIN.  (numpy's rules for integer/float
 * floor_divide, mod and power, errors, casts, fill and iota:
 * test_ew_semantics.c; vmath.h's accuracy: test_vmath.c.)
 *
 * `test_elementwise --bench` prints times for 1e7-element float32 ops.
 *
 * Floats are compared in ulps of the compute dtype (1 for correctly rounded
 * ops, 4 for transcendental ones); integers and bools exactly. */
#include "cpu_kernels.h"
#include "ew_kernels.h"
#include "ew_test.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* A random value for input k of op in dtype dt: mostly small numbers, with
 * specials and extremes mixed in; domains kept away from integer errors. */
static double gen(xcs_op op, int k, xcs_dtype dt) {
    static const double fspecial[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-30, -1e-30, 1e30,
                                      -1e30, 100.0, -100.0, 0.5, 88.5, -88.5, 1e-40, 3.0};
    static const double ispecial[] = {INT32_MIN, INT32_MAX, -1, 0, 1, 2, -2, 1000000};
    if (dt == XCS_BOOL) return (double)(rnd() & 1);
    if (xcs_dtype_is_int(dt)) {
        if (op == XCS_OP_POW) return k == 0 ? (double)((int)(rnd() % 19) - 9) : (double)(rnd() % 7);
        double v = rnd() % 16 == 0 ? ispecial[rnd() % 8] : (double)((int)(rnd() % 101) - 50);
        if (k == 1 && v == 0 && xcs_op_int_faults(op) && op != XCS_OP_POW) v = 7;
        return v;
    }
    if (op == XCS_OP_POW && rnd() % 8) return k == 0 ? rnd_in(0, 5) : rnd_in(-3, 3);
    return rnd() % 10 == 0 ? fspecial[rnd() % 16] : rnd_in(-8, 8);
}

/* ---------------------------------------------------------------- references */

static double ref_float(xcs_op op, double x, double y, double z) {
    switch (op) {
    case XCS_OP_NEG: return -x;
    case XCS_OP_ABS: return fabs(x);
    case XCS_OP_EXP: return exp(x);
    case XCS_OP_LOG: return log(x);
    case XCS_OP_LOG1P: return log1p(x);
    case XCS_OP_EXPM1: return expm1(x);
    case XCS_OP_SQRT: return sqrt(x);
    case XCS_OP_RSQRT: return 1.0 / sqrt(x);
    case XCS_OP_SIN: return sin(x);
    case XCS_OP_COS: return cos(x);
    case XCS_OP_TANH: return tanh(x);
    case XCS_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case XCS_OP_RELU: return (x > 0 || x != x) ? x : 0.0;
    case XCS_OP_GELU: return x < -60 ? -0.0 : 0.5 * x * erfc(-x * 0.70710678118654752440);
    case XCS_OP_ERF: return erf(x);
    case XCS_OP_TAN: return tan(x);
    case XCS_OP_ARCSIN: return asin(x);
    case XCS_OP_ARCCOS: return acos(x);
    case XCS_OP_ARCTAN: return atan(x);
    case XCS_OP_SINH: return sinh(x);
    case XCS_OP_COSH: return cosh(x);
    case XCS_OP_ARCSINH: return asinh(x);
    case XCS_OP_ARCCOSH: return acosh(x);
    case XCS_OP_ARCTANH: return atanh(x);
    case XCS_OP_LOG2: return log2(x);
    case XCS_OP_LOG10: return log10(x);
    case XCS_OP_EXP2: return exp2(x);
    case XCS_OP_CBRT: return cbrt(x);
    case XCS_OP_ARCTAN2: return atan2(x, y);
    case XCS_OP_HYPOT: return hypot(x, y);
    case XCS_OP_FMOD: return fmod(x, y);
    case XCS_OP_COPYSIGN: return copysign(x, y);
    case XCS_OP_FLOOR: return floor(x);
    case XCS_OP_CEIL: return ceil(x);
    case XCS_OP_TRUNC: return trunc(x);
    case XCS_OP_RINT: return rint(x); /* the default rounding mode: halves to even */
    case XCS_OP_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x;
    case XCS_OP_CAST: case XCS_OP_COPY: return x;
    case XCS_OP_ADD: return x + y;
    case XCS_OP_SUB: return x - y;
    case XCS_OP_MUL: return x * y;
    case XCS_OP_DIV: return x / y;
    case XCS_OP_FLOOR_DIV: {
        if (y == 0) return x / y;
        double m = fmod(x, y), d = (x - m) / y;
        if (m != 0 && ((y < 0) != (m < 0))) d -= 1;
        if (d == 0) return copysign(0.0, x / y);
        double f = floor(d);
        return d - f > 0.5 ? f + 1 : f;
    }
    case XCS_OP_MOD: {
        double m = fmod(x, y);
        if (y == 0) return m;
        if (m == 0) return copysign(0.0, y);
        return ((y < 0) != (m < 0)) ? m + y : m;
    }
    case XCS_OP_POW: return pow(x, y);
    case XCS_OP_MAXIMUM: return (x > y || x != x) ? x : y;
    case XCS_OP_MINIMUM: return (x < y || x != x) ? x : y;
    case XCS_OP_EQ: return x == y;
    case XCS_OP_NE: return x != y;
    case XCS_OP_LT: return x < y;
    case XCS_OP_LE: return x <= y;
    case XCS_OP_GT: return x > y;
    case XCS_OP_GE: return x >= y;
    case XCS_OP_WHERE: return x != 0 ? y : z;
    default: return NAN;
    }
}

/* Integer/bool ops in wrapping uint64 arithmetic; comparisons and logic
 * give 0/1.  Bool add/mul/max/min are or/and/or/and. */
static int64_t ref_int(xcs_op op, int64_t x, int64_t y, int64_t z, xcs_dtype dt) {
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    bool b = dt == XCS_BOOL;
    switch (op) {
    case XCS_OP_NEG: return wrap(0 - ux, dt);
    case XCS_OP_ABS: return wrap(x < 0 ? 0 - ux : ux, dt);
    case XCS_OP_RELU: return x > 0 ? x : 0;
    case XCS_OP_FLOOR: case XCS_OP_CEIL: case XCS_OP_TRUNC: case XCS_OP_RINT: case XCS_OP_CAST: case XCS_OP_COPY: return x;
    case XCS_OP_SIGN: return (x > 0) - (x < 0);
    case XCS_OP_LOGICAL_NOT: return !x;
    case XCS_OP_BIT_NOT: return b ? !x : wrap(~ux, dt);
    case XCS_OP_ADD: return b ? (x | y) : wrap(ux + uy, dt);
    case XCS_OP_SUB: return wrap(ux - uy, dt);
    case XCS_OP_MUL: return b ? (x & y) : wrap(ux * uy, dt);
    case XCS_OP_FLOOR_DIV: {
        if (y == -1) return wrap(0 - ux, dt);
        int64_t q = x / y;
        return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
    }
    case XCS_OP_FMOD: return y == -1 ? 0 : x % y;
    case XCS_OP_MOD: {
        if (y == -1) return 0;
        int64_t r = x % y;
        return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
    }
    case XCS_OP_POW: {
        uint64_t r = 1;
        for (int64_t i = 0; i < y; i++) r *= ux;
        return wrap(r, dt);
    }
    case XCS_OP_MAXIMUM: return x > y ? x : y;
    case XCS_OP_MINIMUM: return x < y ? x : y;
    case XCS_OP_EQ: return x == y;
    case XCS_OP_NE: return x != y;
    case XCS_OP_LT: return x < y;
    case XCS_OP_LE: return x <= y;
    case XCS_OP_GT: return x > y;
    case XCS_OP_GE: return x >= y;
    case XCS_OP_LOGICAL_AND: return (x != 0) && (y != 0);
    case XCS_OP_LOGICAL_OR: return (x != 0) || (y != 0);
    case XCS_OP_LOGICAL_XOR: return (x != 0) != (y != 0);
    case XCS_OP_BIT_AND: return x & y;
    case XCS_OP_BIT_OR: return x | y;
    case XCS_OP_BIT_XOR: return x ^ y;
    case XCS_OP_WHERE: return x != 0 ? y : z;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- checks */

static bool is_transcendental(xcs_op op) {
    return xcs_op_get_info(op)->rule == XCS_RULE_FLOAT && op != XCS_OP_DIV && op != XCS_OP_SQRT;
}

/* Runs op over the inputs and checks every output element against the
 * references (inputs read back as stored, converted to compute).  Returns
 * the number of mismatches (reported with the first few). */
static int run_and_check(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_dtype compute,
                         xcs_dtype out_dt, const char *what) {
    const xcs_tensor *o0 = in[0];
    xcs_tensor *out = empty(out_dt, o0->ndim, o0->shape);
    if (!out) return 1;
    xcs_status st = xcs_cpu_elementwise(op, n_in, in, compute, out);
    CHECK_OK(st);
    int bad = 0;
    const int64_t n = xcs_tensor_numel(out);
    const xcs_dtype kout = xcs_ew_out_dtype(op, compute);
    const double ulps = xcs_dtype_is_float(compute) ? (is_transcendental(op) ? 4 : 1) : 0;
    for (int64_t i = 0; i < n && st == XCS_OK; i++) {
        double args[3] = {0, 0, 0};
        int64_t iargs[3] = {0, 0, 0};
        for (int k = 0; k < n_in; k++) {
            xcs_dtype kd = xcs_ew_in_dtype(op, k, compute);
            args[k] = conv(rd(in[k], i), kd);
            iargs[k] = xcs_dtype_is_float(kd) ? 0 : kd == XCS_I64 && in[k]->dtype == XCS_I64 ? rdi(in[k], i) : (int64_t)args[k];
        }
        double want, got = rd(out, i);
        bool ok;
        if (xcs_dtype_is_float(compute) && xcs_ew_in_dtype(op, n_in - 1, compute) != XCS_BOOL) {
            want = ref_float(op, args[0], args[1], args[2]);
            /* a float result converted to another float dtype: one more rounding */
            ok = xcs_dtype_is_float(out_dt) ? close_to(got, want, out_dt, out_dt == kout ? ulps : 1)
                                            : got == conv(want, out_dt);
        } else {
            int64_t w = ref_int(op, iargs[0], iargs[1], iargs[2], kout == XCS_BOOL ? XCS_BOOL : compute);
            want = (double)w;
            ok = out_dt == XCS_I64 ? rdi(out, i) == w : got == conv(want, out_dt);
        }
        if (!ok && bad++ < 3)
            fprintf(stderr, "  %s %s compute=%s out=%s [%lld]: (%.9g, %.9g, %.9g) -> %.17g, want %.17g\n",
                    what, xcs_op_name(op), xcs_dtype_name(compute), xcs_dtype_name(out_dt), (long long)i,
                    args[0], args[1], args[2], rd(out, i), want);
    }
    xcs_tensor_free(out);
    CHECK(bad == 0);
    return bad;
}

static int op_arity(xcs_op op) {
    switch (xcs_op_get_info(op)->kind) {
    case XCS_KIND_UNARY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- tests */

/* Every elementwise row of ops.def has kernels for the dtypes its rule
 * promises. */
static void test_table_coverage(void) {
    for (int op = 0; op < XCS_OP_COUNT; op++) {
        if (!op_arity((xcs_op)op)) continue;
        xcs_type_rule rule = xcs_op_get_info((xcs_op)op)->rule;
        int have = 0;
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) have += xcs_ew_kernel_get((xcs_op)op, (xcs_dtype)dt) != NULL;
        CHECK(have > 0);
        if (rule == XCS_RULE_FLOAT || rule == XCS_RULE_SAME || rule == XCS_RULE_NUMERIC || rule == XCS_RULE_CMP)
            CHECK(xcs_ew_kernel_get((xcs_op)op, XCS_F32) && xcs_ew_kernel_get((xcs_op)op, XCS_F64));
        if (rule == XCS_RULE_CMP || op == XCS_OP_WHERE) /* every compute dtype: not the stored-only halves */
            CHECK(have == XCS_DTYPE_COUNT - 2 && !xcs_ew_kernel_get((xcs_op)op, XCS_F16));
        if (rule == XCS_RULE_INT)
            CHECK(!xcs_ew_kernel_get((xcs_op)op, XCS_F32) && xcs_ew_kernel_get((xcs_op)op, XCS_BOOL) &&
                  xcs_ew_kernel_get((xcs_op)op, XCS_I64));
        if (rule == XCS_RULE_LOGIC) CHECK(xcs_ew_kernel_get((xcs_op)op, XCS_BOOL) != NULL);
    }
    CHECK(xcs_ew_kernel_get(XCS_OP_NEG, XCS_BOOL) == NULL);
    CHECK(xcs_ew_kernel_get(XCS_OP_SUM, XCS_F32) == NULL);
    for (int a = 0; a < XCS_DTYPE_COUNT; a++)
        for (int b = 0; b < XCS_DTYPE_COUNT; b++) CHECK(xcs_ew_convert_get((xcs_dtype)a, (xcs_dtype)b) != NULL);
}

/* float16/bfloat16 converters, fast paths against the portable half.h ones:
 * every 16-bit pattern widened, and random float32 patterns (plus the ones
 * past each 16-bit value, where ties sit) narrowed, contiguous and strided. */
static void test_half_converters(void) {
    enum { N = 1 << 16, R = 1 << 20 };
    uint16_t *h = malloc(N * sizeof *h), *h1 = malloc(R * sizeof *h1), *h2 = malloc(R * sizeof *h2);
    float *f1 = malloc(R * sizeof *f1), *f2 = malloc(R * sizeof *f2);
    CHECK(h && h1 && h2 && f1 && f2);
    if (!(h && h1 && h2 && f1 && f2)) return;
    for (int half = XCS_F16; half <= XCS_BF16; half++) {
        for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
        for (int st = 1; st <= 2; st++) {
            xcs_ew_convert_get((xcs_dtype)half, XCS_F32)(N / st, h, st, f1);
            xcs_ew_convert_portable((xcs_dtype)half, XCS_F32)(N / st, h, st, f2);
            int bad = 0; /* NaNs stay NaN; F16C also quiets a signalling one */
            for (int i = 0; i < N / st; i++)
                bad += f2[i] != f2[i] ? f1[i] == f1[i] : memcmp(&f1[i], &f2[i], 4) != 0;
            CHECK_EQ_I(bad, 0);
        }
        for (int i = 0; i < R; i++) {
            uint32_t u = (uint32_t)rnd();
            if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u;                  /* bfloat16 ties */
            if (i % 4 == 2) u = (u & 0xffffe000u) | 0x1000u;                  /* float16 ties */
            memcpy(&f1[i], &u, 4);
        }
        for (int st = 1; st <= 3; st += 2) {
            xcs_ew_convert_get(XCS_F32, (xcs_dtype)half)(R / st, f1, st, h1);
            xcs_ew_convert_portable(XCS_F32, (xcs_dtype)half)(R / st, f1, st, h2);
            int bad = 0;
            for (int i = 0; i < R / st; i++) {
                bool nan = (h2[i] & 0x7fffu) > (half == XCS_F16 ? 0x7c00u : 0x7f80u);
                bad += nan ? (h1[i] & 0x7fffu) <= (half == XCS_F16 ? 0x7c00u : 0x7f80u) : h1[i] != h2[i];
            }
            CHECK_EQ_I(bad, 0);
        }
    }
    free(h), free(h1), free(h2), free(f1), free(f2);
}

/* Every (op, compute dtype) with a kernel, on random contiguous inputs of
 * the kernel's dtypes; then again with inputs in another dtype and, for
 * floats, an output in another dtype. */
static void test_ops_random(void) {
    const int64_t n = 777;
    double vals[3][777];
    for (int op = 0; op < XCS_OP_COUNT; op++) {
        int ar = op_arity((xcs_op)op);
        if (!ar) continue;
        for (int cd = 0; cd < XCS_DTYPE_COUNT; cd++) {
            xcs_dtype compute = (xcs_dtype)cd;
            if (!xcs_ew_kernel_get((xcs_op)op, compute)) continue;
            xcs_tensor *in[3] = {NULL, NULL, NULL};
            for (int k = 0; k < ar; k++) {
                xcs_dtype kd = xcs_ew_in_dtype((xcs_op)op, k, compute);
                for (int64_t i = 0; i < n; i++) vals[k][i] = gen((xcs_op)op, k, kd);
                in[k] = from_values(kd, n, vals[k]);
            }
            run_and_check((xcs_op)op, ar, (const xcs_tensor *const *)in, compute,
                          xcs_ew_out_dtype((xcs_op)op, compute), "contiguous");
            /* conversion paths: ints read as i32 (every value fits), floats
             * as f32 values computed in f64; outputs narrowed/widened */
            for (int k = 0; k < ar; k++) {
                xcs_dtype kd = xcs_ew_in_dtype((xcs_op)op, k, compute), alt = kd;
                if (kd == XCS_I64) alt = XCS_I32;
                if (kd == XCS_F64) alt = XCS_F32;
                if (kd == XCS_BOOL) alt = XCS_F32;
                if (kd == XCS_I32 || kd == XCS_F32) alt = XCS_F64;
                xcs_tensor_free(in[k]);
                in[k] = from_values(alt, n, vals[k]);
            }
            xcs_dtype kout = xcs_ew_out_dtype((xcs_op)op, compute);
            xcs_dtype out_dt = kout == XCS_F64 ? XCS_F32 : kout == XCS_BOOL ? XCS_I32 : kout == XCS_I32 ? XCS_I64 : kout;
            run_and_check((xcs_op)op, ar, (const xcs_tensor *const *)in, compute, out_dt, "converted");
            for (int k = 0; k < ar; k++) xcs_tensor_free(in[k]);
        }
    }
}

/* Views of a fresh random buffer (layouts: testutil.h) holding gen(op, k, dt)
 * values. */
typedef struct gen_ctx { xcs_op op; int k; } gen_ctx;
static void fill_gen(void *ctx, xcs_dtype dt, char *p, int64_t i) {
    const gen_ctx *g = ctx;
    wr_raw(dt, p + i * (int64_t)xcs_dtype_size(dt), gen(g->op, g->k, dt));
}
static xcs_tensor *make_view(xcs_dtype dt, int nd, const int64_t *shape, const int *perm, unsigned flip,
                             unsigned bcast, int step, xcs_op op, int k) {
    gen_ctx g = {op, k};
    xcs_tensor *t = test_make_view(dt, nd, shape, (test_layout){perm, step, flip, bcast}, fill_gen, &g);
    CHECK(t != NULL);
    return t;
}

/* Layouts: short rows (chunks span rows), long rows (several chunks per
 * row), broadcasts, transposes, reversed and strided inputs, 0-d, empty,
 * and sizes that run in parallel. */
static void test_layouts(void) {
    static const int perm2[] = {1, 0}, perm3[] = {2, 0, 1};
    struct { int nd; int64_t shape[3]; } shapes[] = {
        {0, {0}}, {1, {0}}, {2, {0, 5}}, {1, {1}}, {1, {1000}}, {2, {37, 3}}, {2, {5, 1500}},
        {1, {XCS_CPU_PAR_MIN + 123}}, {2, {300, 130}}, {3, {17, 9, 300}}, {3, {40, 30, 31}},
    };
    struct { xcs_op op; xcs_dtype compute, a, b; } cases[] = {
        {XCS_OP_ADD, XCS_F32, XCS_F32, XCS_F32}, {XCS_OP_MUL, XCS_F64, XCS_F64, XCS_I32},
        {XCS_OP_SUB, XCS_I64, XCS_I64, XCS_I32}, {XCS_OP_LT, XCS_F32, XCS_F32, XCS_F32},
        {XCS_OP_EXP, XCS_F32, XCS_F32, XCS_F32}, {XCS_OP_FLOOR_DIV, XCS_I32, XCS_I32, XCS_I32},
        {XCS_OP_WHERE, XCS_F64, XCS_BOOL, XCS_F64}, {XCS_OP_CAST, XCS_I32, XCS_F64, XCS_F64},
        {XCS_OP_COPY, XCS_F32, XCS_F32, XCS_F32},
    };
    struct { const int *perm; unsigned flip, bcast; int step; } lays[] = {
        {NULL, 0, 0, 1}, {NULL, 1u, 0, 1}, {NULL, 0, 2u, 1}, {NULL, 0, 1u, 1}, {NULL, 2u, 0, 2},
        {NULL, 0, 7u, 1}, {perm2, 0, 0, 1}, {perm3, 4u, 0, 1},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int nd = shapes[si].nd;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            int ar = cases[ci].op == XCS_OP_CAST || cases[ci].op == XCS_OP_COPY ? 1 : op_arity(cases[ci].op);
            for (size_t li = 0; li < sizeof lays / sizeof lays[0]; li++) {
                const int *perm = lays[li].perm;
                if (perm && (nd != (perm == perm2 ? 2 : 3))) continue;
                unsigned mask = nd ? (1u << nd) - 1 : 0;
                xcs_tensor *in[3];
                for (int k = 0; k < ar; k++) { /* input k alone gets layout li; others plain */
                    xcs_dtype dt = k == 0 ? cases[ci].a : cases[ci].b;
                    bool mine = (size_t)k == li % (size_t)ar;
                    in[k] = make_view(dt, nd, shapes[si].shape, mine ? perm : NULL, mine ? lays[li].flip & mask : 0,
                                      mine ? lays[li].bcast & mask : 0, mine ? lays[li].step : 1, cases[ci].op, k);
                }
                char what[64];
                snprintf(what, sizeof what, "shape#%zu layout#%zu", si, li);
                xcs_dtype out_dt = cases[ci].op == XCS_OP_CAST ? cases[ci].compute
                                                                : xcs_ew_out_dtype(cases[ci].op, cases[ci].compute);
                run_and_check(cases[ci].op, ar, (const xcs_tensor *const *)in, cases[ci].compute, out_dt, what);
                for (int k = 0; k < ar; k++) xcs_tensor_free(in[k]);
            }
        }
    }
}

/* ---------------------------------------------------------------- bench */

static double wall(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

/* Best of 10 runs of op over inputs of the given dtypes and shape; `trans`
 * reads input 0 transposed; `fresh` allocates the output each run (what
 * numpy pays too: page faults on first touch). */
static void bench_one(const char *name, xcs_op op, int n_in, xcs_dtype compute, xcs_dtype in_dt, int nd,
                      const int64_t *shape, bool trans, bool scalar_b, bool fresh) {
    static const int perm2[] = {1, 0};
    xcs_tensor *in[3];
    for (int k = 0; k < n_in; k++)
        in[k] = make_view(k == 0 ? in_dt : compute, nd, shape, k == 0 && trans ? perm2 : NULL, 0,
                          k == 1 && scalar_b ? (1u << nd) - 1 : 0, 1, XCS_OP_ADD, k);
    for (int k = 0; k < n_in; k++) /* positive finite inputs: log/sqrt stay in their domain */
        if (in[k]->dtype == XCS_F32)
            for (int64_t i = 0; i < xcs_tensor_numel(in[k]); i++)
                ((float *)in[k]->storage->data)[i] = (float)rnd_in(0.01, 4);
    xcs_dtype out_dt = op == XCS_OP_CAST ? compute : xcs_ew_out_dtype(op, compute);
    xcs_tensor *out = empty(out_dt, nd, shape);
    double best = 1e30;
    for (int r = 0; r < 11; r++) {
        double t0 = wall();
        if (fresh) {
            xcs_tensor_free(out);
            out = empty(out_dt, nd, shape);
        }
        CHECK_OK(xcs_cpu_elementwise(op, n_in, (const xcs_tensor *const *)in, compute, out));
        double t = wall() - t0;
        if (r > 0 && t < best) best = t;
    }
    int64_t n = xcs_tensor_numel(out);
    double bytes = (double)n * (double)(xcs_dtype_size(in_dt) + (n_in - 1) * xcs_dtype_size(compute) +
                                        xcs_dtype_size(out_dt));
    printf("%-34s %8.2f ms  %6.2f GB/s  %5.2f ns/elem\n", name, best * 1e3, bytes / best * 1e-9, best / (double)n * 1e9);
    for (int k = 0; k < n_in; k++) xcs_tensor_free(in[k]);
    xcs_tensor_free(out);
}

static int bench(void) {
    const int64_t *n = SHAPE(10000000), *m = SHAPE(2000, 5000);
#ifdef _OPENMP
    printf("threads: %d\n", omp_get_max_threads());
#endif
    struct { const char *name; xcs_op op; int n_in; } ops[] = {
        {"add", XCS_OP_ADD, 2}, {"mul", XCS_OP_MUL, 2}, {"exp", XCS_OP_EXP, 1}, {"log", XCS_OP_LOG, 1},
        {"tanh", XCS_OP_TANH, 1}, {"sigmoid", XCS_OP_SIGMOID, 1}, {"gelu", XCS_OP_GELU, 1},
        {"erf", XCS_OP_ERF, 1}, {"sin", XCS_OP_SIN, 1}, {"sqrt", XCS_OP_SQRT, 1}, {"maximum", XCS_OP_MAXIMUM, 2},
    };
    char name[64];
    for (int fresh = 0; fresh < 2; fresh++)
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            snprintf(name, sizeof name, "%s f32 1e7%s", ops[i].name, fresh ? " (new out)" : "");
            bench_one(name, ops[i].op, ops[i].n_in, XCS_F32, XCS_F32, 1, n, false, false, fresh);
        }
    bench_one("add f32 1e7 + scalar", XCS_OP_ADD, 2, XCS_F32, XCS_F32, 1, n, false, true, false);
    bench_one("add f32 (2000,5000) a.T + b", XCS_OP_ADD, 2, XCS_F32, XCS_F32, 2, m, true, false, false);
    bench_one("add i32->f32 1e7", XCS_OP_ADD, 2, XCS_F32, XCS_I32, 1, n, false, false, false);
    bench_one("cast f32->f64 1e7", XCS_OP_CAST, 1, XCS_F64, XCS_F32, 1, n, false, false, false);
    bench_one("exp f64 1e7", XCS_OP_EXP, 1, XCS_F64, XCS_F64, 1, n, false, false, false);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    RUN(test_table_coverage);
    RUN(test_half_converters);
    RUN(test_ops_random);
    RUN(test_layouts);
    return check_report();
}
