/* test_ew_semantics.c — the numpy rules the CPU elementwise kernels follow,
 * checked value by value: integer floor_divide / mod / power (signs,
 * INT_MIN // -1, wrap-around) and their errors, also raised from inside the
 * parallel region; float floor_divide / mod edge cases (zeros, inf, NaN,
 * signed zeros), maximum / minimum / relu / sign with NaN; bool arithmetic
 * and the ops bool or float rejects (XCS_ERR_TYPE naming op and dtype);
 * logical ops on non-bool inputs; all 25 casts on stress values; fill and
 * iota (numpy's arange rule) for every dtype, sizes 0 to parallel. */
#include "cpu_kernels.h"
#include "ew_kernels.h"
#include "ew_test.h"

/* Runs a binary op on two 1-D value lists; returns status, result in out[]. */
static xcs_status binop(xcs_op op, xcs_dtype dt, int64_t n, const double *a, const double *b, double *out) {
    xcs_tensor *ta = from_values(dt, n, a), *tb = from_values(dt, n, b);
    xcs_tensor *to = empty(xcs_ew_out_dtype(op, dt), 1, &n);
    const xcs_tensor *in[2] = {ta, tb};
    xcs_status st = xcs_cpu_elementwise(op, 2, in, dt, to);
    for (int64_t i = 0; i < n && out; i++) out[i] = rd(to, i);
    xcs_tensor_free(ta), xcs_tensor_free(tb), xcs_tensor_free(to);
    return st;
}

static void test_int_semantics(void) {
    const double a[] = {7, -7, 7, -7, 0, INT32_MIN, INT32_MIN, 5};
    const double b[] = {2, 2, -2, -2, 3, -1, 1, 1};
    const double fd[] = {3, -4, -4, 3, 0, INT32_MIN, INT32_MIN, 5}, md[] = {1, 1, -1, -1, 0, 0, 0, 0};
    double r[8];
    for (int d = XCS_I32; d <= XCS_I64; d++) {
        double a64[8], fd64[8]; /* in int64: INT64_MIN // -1 wraps, INT32_MIN // -1 does not */
        memcpy(a64, a, sizeof a64), memcpy(fd64, fd, sizeof fd64);
        if (d == XCS_I64) a64[5] = fd64[5] = -0x1p63, fd64[6] = INT32_MIN;
        CHECK_OK(binop(XCS_OP_FLOOR_DIV, (xcs_dtype)d, 8, a64, b, r));
        for (int i = 0; i < 8; i++) CHECK_EQ_I(r[i], fd64[i]);
        CHECK_OK(binop(XCS_OP_MOD, (xcs_dtype)d, 8, a64, b, r));
        for (int i = 0; i < 8; i++) CHECK_EQ_I(r[i], md[i]);
    }
    const double pb[] = {2, -3, 2, 0, -1, 7}, pe[] = {10, 3, 31, 0, 5, 0}, pw[] = {1024, -27, INT32_MIN, 1, -1, 1};
    CHECK_OK(binop(XCS_OP_POW, XCS_I32, 6, pb, pe, r));
    for (int i = 0; i < 6; i++) CHECK_EQ_I(r[i], pw[i]);
    const double one[] = {INT32_MIN}, big[] = {INT32_MAX};
    CHECK_OK(binop(XCS_OP_ADD, XCS_I32, 1, big, big, r)); /* wraps */
    CHECK_EQ_I(r[0], -2);
    xcs_tensor *t = from_values(XCS_I32, 1, one), *o = empty(XCS_I32, 1, SHAPE(1));
    const xcs_tensor *tin[1] = {t};
    CHECK_OK(xcs_cpu_elementwise(XCS_OP_ABS, 1, tin, XCS_I32, o));
    CHECK_EQ_I(rd(o, 0), INT32_MIN);
    xcs_tensor_free(t), xcs_tensor_free(o);
    /* errors, also from inside the parallel region */
    const double z[] = {1, 0}, x2[] = {5, 6};
    CHECK_ERR(binop(XCS_OP_FLOOR_DIV, XCS_I64, 2, x2, z, NULL), XCS_ERR_ZERO_DIV,
              "integer division by zero in floor_divide");
    CHECK_ERR(binop(XCS_OP_MOD, XCS_I32, 2, x2, z, NULL), XCS_ERR_ZERO_DIV, "integer division by zero in mod");
    const double ne[] = {2, -1};
    CHECK_ERR(binop(XCS_OP_POW, XCS_I64, 2, x2, ne, NULL), XCS_ERR_VALUE,
              "Integers to negative integer powers are not allowed");
    int64_t n = 3 * XCS_CPU_PAR_MIN;
    double *va = malloc(sizeof(double) * (size_t)n), *vb = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) va[i] = (double)i, vb[i] = 1 + (double)(i % 5);
    vb[n - 2] = 0;
    CHECK_ERR(binop(XCS_OP_FLOOR_DIV, XCS_I32, n, va, vb, NULL), XCS_ERR_ZERO_DIV, "floor_divide");
    free(va), free(vb);
}

/* numpy's float answers for the edge cases of floor_divide, mod, maximum,
 * minimum, relu and sign (np.float64 and np.float32 agree). */
static void test_float_semantics(void) {
    const double a[] = {-7, 7, -0.0, 0.0, 1, -1, 0, 1, 5, -5, -5, 7.5};
    const double b[] = {2, -2, 2, -2, 0, 0, 0, 0, INFINITY, INFINITY, INFINITY, 2};
    const double fd[] = {-4, -4, -0.0, -0.0, INFINITY, -INFINITY, NAN, INFINITY, 0, -1, -1, 3};
    const double md[] = {1, -1, 0.0, -0.0, NAN, NAN, NAN, NAN, 5, INFINITY, INFINITY, 1.5};
    double r[12];
    for (int d = XCS_F32; d <= XCS_F64; d++) {
        CHECK_OK(binop(XCS_OP_FLOOR_DIV, (xcs_dtype)d, 12, a, b, r));
        for (int i = 0; i < 12; i++) CHECK((isnan(fd[i]) && isnan(r[i])) || (r[i] == fd[i] && signbit(r[i]) == signbit(fd[i])));
        CHECK_OK(binop(XCS_OP_MOD, (xcs_dtype)d, 12, a, b, r));
        for (int i = 0; i < 12; i++) CHECK((isnan(md[i]) && isnan(r[i])) || (r[i] == md[i] && signbit(r[i]) == signbit(md[i])));
        const double x[] = {NAN, 1, -0.0, 0.0}, y[] = {1, NAN, 0.0, -0.0};
        CHECK_OK(binop(XCS_OP_MAXIMUM, (xcs_dtype)d, 4, x, y, r));
        CHECK(isnan(r[0]) && isnan(r[1]) && !signbit(r[2]) && signbit(r[3]));
        CHECK_OK(binop(XCS_OP_MINIMUM, (xcs_dtype)d, 4, x, y, r));
        CHECK(isnan(r[0]) && isnan(r[1]));
        xcs_tensor *t = from_values((xcs_dtype)d, 4, (const double[]){NAN, -0.0, -3, 2}), *o = empty((xcs_dtype)d, 1, SHAPE(4));
        const xcs_tensor *in[1] = {t};
        CHECK_OK(xcs_cpu_elementwise(XCS_OP_SIGN, 1, in, (xcs_dtype)d, o));
        CHECK(isnan(rd(o, 0)) && rd(o, 1) == 0 && !signbit(rd(o, 1)) && rd(o, 2) == -1 && rd(o, 3) == 1);
        CHECK_OK(xcs_cpu_elementwise(XCS_OP_RELU, 1, in, (xcs_dtype)d, o));
        CHECK(isnan(rd(o, 0)) && rd(o, 1) == 0 && rd(o, 2) == 0 && rd(o, 3) == 2);
        xcs_tensor_free(t), xcs_tensor_free(o);
    }
}

/* Bool arithmetic is logic; what numpy rejects for bool (negative, subtract)
 * and bitwise ops on floats are XCS_ERR_TYPE naming op and dtype. */
static void test_bool_and_type_errors(void) {
    const double a[] = {0, 0, 1, 1}, b[] = {0, 1, 0, 1};
    double r[4];
    const double want_add[] = {0, 1, 1, 1}, want_mul[] = {0, 0, 0, 1};
    CHECK_OK(binop(XCS_OP_ADD, XCS_BOOL, 4, a, b, r));
    for (int i = 0; i < 4; i++) CHECK_EQ_I(r[i], want_add[i]);
    CHECK_OK(binop(XCS_OP_MUL, XCS_BOOL, 4, a, b, r));
    for (int i = 0; i < 4; i++) CHECK_EQ_I(r[i], want_mul[i]);
    CHECK_ERR(binop(XCS_OP_SUB, XCS_BOOL, 4, a, b, r), XCS_ERR_TYPE, "subtract: not supported for dtype bool");
    CHECK_ERR(binop(XCS_OP_BIT_AND, XCS_F32, 4, a, b, r), XCS_ERR_TYPE, "bitwise_and: not supported for dtype float32");
    xcs_tensor *t = from_values(XCS_BOOL, 4, a), *o = empty(XCS_BOOL, 1, SHAPE(4));
    const xcs_tensor *in[1] = {t};
    CHECK_ERR(xcs_cpu_elementwise(XCS_OP_NEG, 1, in, XCS_BOOL, o), XCS_ERR_TYPE, "negative");
    CHECK_ERR(xcs_cpu_elementwise(XCS_OP_SUM, 1, in, XCS_BOOL, o), XCS_ERR_INTERNAL, NULL);
    xcs_tensor_free(t), xcs_tensor_free(o);
    /* logical ops read any dtype as != 0 (NaN is true) */
    xcs_tensor *f = from_values(XCS_F32, 4, (const double[]){0, NAN, -0.0, 2.5});
    xcs_tensor *g = from_values(XCS_I64, 4, (const double[]){5, 1, 1, 0});
    xcs_tensor *ob = empty(XCS_BOOL, 1, SHAPE(4));
    const xcs_tensor *lin[2] = {f, g};
    CHECK_OK(xcs_cpu_elementwise(XCS_OP_LOGICAL_AND, 2, lin, XCS_BOOL, ob));
    CHECK(rd(ob, 0) == 0 && rd(ob, 1) == 1 && rd(ob, 2) == 0 && rd(ob, 3) == 0);
    xcs_tensor_free(f), xcs_tensor_free(g), xcs_tensor_free(ob);
}

/* All 25 casts on values that stress the rules. */
static void test_casts(void) {
    const double v[] = {0, -0.0, 1, -1, 2.7, -2.7, 0.5, 3e9, -3e9, 1e20, -1e20, NAN, INFINITY, -INFINITY,
                        2147483647.0, -2147483648.0, 255, 16777217.0};
    const int64_t n = sizeof v / sizeof v[0];
    for (int s = 0; s < XCS_DTYPE_COUNT; s++) {
        double sv[32];
        for (int64_t i = 0; i < n; i++) sv[i] = conv(v[i], (xcs_dtype)s);
        /* i64 -> i32 wraps: feed a value past 2^31 through the i64 source */
        if (s == XCS_I64) sv[7] = 3000000000.0;
        xcs_tensor *t = from_values((xcs_dtype)s, n, sv);
        for (int d = 0; d < XCS_DTYPE_COUNT; d++) {
            xcs_tensor *o = empty((xcs_dtype)d, 1, &n);
            const xcs_tensor *in[1] = {t};
            CHECK_OK(xcs_cpu_elementwise(XCS_OP_CAST, 1, in, (xcs_dtype)d, o));
            for (int64_t i = 0; i < n; i++) {
                double want = s == XCS_I64 && d == XCS_I32 ? (double)(int32_t)(uint32_t)(int64_t)sv[i] : conv(sv[i], (xcs_dtype)d);
                bool ok = (want != want && rd(o, i) != rd(o, i)) || rd(o, i) == want;
                if (!ok) fprintf(stderr, "  cast %s -> %s of %.17g: %.17g, want %.17g\n", xcs_dtype_name((xcs_dtype)s),
                                 xcs_dtype_name((xcs_dtype)d), sv[i], rd(o, i), want);
                CHECK(ok);
            }
            xcs_tensor_free(o);
        }
        xcs_tensor_free(t);
    }
}

static void test_fill_iota(void) {
    const int64_t sizes[] = {0, 1, 1000, 2 * XCS_CPU_PAR_MIN + 5};
    for (size_t si = 0; si < 4; si++) {
        int64_t n = sizes[si];
        for (int d = 0; d < XCS_DTYPE_COUNT; d++) {
            xcs_tensor *o = empty((xcs_dtype)d, 1, &n);
            const double fv[] = {-2.7, NAN, 0.5, 0.0};
            for (int k = 0; k < 4; k++) {
                CHECK_OK(xcs_cpu_fill(o, fv[k]));
                double want = conv(fv[k], (xcs_dtype)d);
                int bad = 0;
                for (int64_t i = 0; i < n; i++) bad += !(rd(o, i) == want || (want != want && rd(o, i) != rd(o, i)));
                CHECK(bad == 0);
            }
            /* numpy arange: a0 = start, a1 = start + step, then a0 + i*(a1 - a0) in the dtype */
            const double st[] = {0.1, -3, 1e9}, sp[] = {0.3, 2, 7};
            for (int k = 0; k < 3 && d != XCS_BOOL; k++) {
                CHECK_OK(xcs_cpu_iota(o, st[k], sp[k]));
                int bad = 0;
                for (int64_t i = 0; i < n; i++) {
                    double want;
                    if (d == XCS_F32) {
                        float a0 = (float)st[k], dd = (float)(st[k] + sp[k]) - a0;
                        want = i == 1 ? (float)(st[k] + sp[k]) : a0 + (float)i * dd;
                    } else if (xcs_dtype_is_half((xcs_dtype)d)) { /* numpy's HALF_fill */
                        float a0 = (float)conv(st[k], (xcs_dtype)d), a1 = (float)conv(st[k] + sp[k], (xcs_dtype)d);
                        float step_i = (float)i * (a1 - a0);
                        want = i == 0 ? a0 : i == 1 ? a1 : conv(a0 + step_i, (xcs_dtype)d);
                    } else if (d == XCS_F64) {
                        want = i == 1 ? st[k] + sp[k] : st[k] + (double)i * ((st[k] + sp[k]) - st[k]);
                    } else {
                        int64_t a0 = (int64_t)st[k], a1 = (int64_t)(st[k] + sp[k]);
                        want = (double)wrap((uint64_t)a0 + (uint64_t)i * (uint64_t)(a1 - a0), (xcs_dtype)d);
                    }
                    bad += d >= XCS_F32 ? !close_to(rd(o, i), want, (xcs_dtype)d, 1) : rd(o, i) != want;
                }
                CHECK(bad == 0);
            }
            xcs_tensor_free(o);
        }
    }
}

int main(void) {
    RUN(test_int_semantics);
    RUN(test_float_semantics);
    RUN(test_bool_and_type_errors);
    RUN(test_casts);
    RUN(test_fill_iota);
    return check_report();
}
