/* test_vmath.c — accuracy of the CPU backend's float32 elementary functions
 * (vmath.h, reached through the contiguous kernels of ew_kernels.c so the
 * sin/cos libm fallback and the vectorised code as built are what is
 * measured), their special values, and in-place kernel calls.
 *
 * Prints, per function and range, the max error in float ulps against
 * double-precision libm and the max relative error over normal results;
 * fails past a per-function bound (a run over every third float32 bit
 * pattern, done when the functions were written, gave: exp 1.01, expm1
 * 1.43, log 0.82, log1p 1.44, tanh 2.42, sigmoid 2.40, erf 2.47, gelu 0.99,
 * sin 1.56, cos 1.56 ulp; log2, log10, exp2, sinh, cosh, atan, cbrt and asinh
 * are measured on the random samples only). */
#include "ew_kernels.h"
#include "ew_test.h"

/* In-place kernels (out == a), which the tile VM relies on. */
static void test_in_place(void) {
    float x[300], y[300];
    for (int i = 0; i < 300; i++) x[i] = y[i] = (float)rnd_in(-20, 20) * (i % 50 == 0 ? 1e6f : 1.0f);
    xcs_ew_kernel k = xcs_ew_kernel_get(XCS_OP_SIN, XCS_F32);
    k(300, x, NULL, NULL, x);
    for (int i = 0; i < 300; i++) CHECK(close_to(x[i], sin((double)y[i]), XCS_F32, 4));
    xcs_ew_kernel_get(XCS_OP_MUL, XCS_F32)(300, x, x, NULL, x);
    for (int i = 0; i < 300; i++) CHECK(close_to(x[i], sin((double)y[i]) * sin((double)y[i]), XCS_F32, 12));
}

static double ref_gelu(double x) { return x < -60 ? -0.0 : 0.5 * x * erfc(-x * 0.70710678118654752440); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Max ulp error of the float32 kernel over random x in [lo, hi] (uniform,
 * or log-uniform in |x| with random sign when log_scale). */
static void accuracy(xcs_op op, double (*ref)(double), double lo, double hi, bool log_scale, double bound) {
    enum { N = 1 << 18 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) {
        double v = log_scale ? exp2(rnd_in(log2(lo), log2(hi))) * (rnd() & 1 ? -1 : 1) : rnd_in(lo, hi);
        x[i] = (float)v;
    }
    xcs_ew_kernel_get(op, XCS_F32)(N, x, NULL, NULL, y);
    double worst = 0, wx = 0, rel = 0;
    for (int i = 0; i < N; i++) {
        double want = ref(x[i]);
        if (want != want || isinf((float)want)) {
            if (!close_to(y[i], want, XCS_F32, 0)) worst = INFINITY, wx = x[i];
            continue;
        }
        double e = fabs(y[i] - want) / ulp_of(want, XCS_F32);
        if (e > worst) worst = e, wx = x[i];
        if (fabs(want) >= FLT_MIN && fabs(y[i] - want) / fabs(want) > rel) rel = fabs(y[i] - want) / fabs(want);
    }
    printf("  vmath %-8s x in %s[%-9g, %9g]: max %.2f ulp (at %.9g), max rel err %.2e\n", xcs_op_name(op),
           log_scale ? "+-" : "  ", lo, hi, worst, wx, rel);
    CHECK(worst <= bound);
}

/* The float64 kernels against long double libm (x86's 80-bit: 11 more bits
 * than the result): max ulp error over random x, as accuracy(). */
static void accuracy_d(xcs_op op, long double (*ref)(long double), double lo, double hi, bool log_scale, double bound) {
    enum { N = 1 << 17 };
    static double x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = log_scale ? exp2(rnd_in(log2(lo), log2(hi))) * (rnd() & 1 ? -1 : 1) : rnd_in(lo, hi);
    xcs_ew_kernel_get(op, XCS_F64)(N, x, NULL, NULL, y);
    double worst = 0, wx = 0;
    for (int i = 0; i < N; i++) {
        long double want = ref((long double)x[i]);
        if (want != want || isinf((double)want)) {
            if (!((want != want && y[i] != y[i]) || y[i] == (double)want)) worst = INFINITY, wx = x[i];
            continue;
        }
        double e = (double)(fabsl((long double)y[i] - want) / (long double)ulp_of((double)want, XCS_F64));
        if (e > worst) worst = e, wx = x[i];
    }
    printf("  vmath %-8s f64 x in %s[%-9g, %9g]: max %.2f ulp (at %.17g)\n", xcs_op_name(op), log_scale ? "+-" : "  ",
           lo, hi, worst, wx);
    CHECK(worst <= bound);
}

static void test_vmath_f64(void) {
    accuracy_d(XCS_OP_EXP, expl, -745, 709.7, false, 1.5);
    accuracy_d(XCS_OP_EXP, expl, 1e-300, 700, true, 1.5);
    accuracy_d(XCS_OP_EXPM1, expm1l, -50, 709.7, false, 2);
    accuracy_d(XCS_OP_EXPM1, expm1l, 1e-300, 1, true, 2);
    accuracy_d(XCS_OP_LOG, logl, 0, 1e300, false, 1.5);
    accuracy_d(XCS_OP_LOG, logl, 1e-320, 1e308, true, 1.5);
    accuracy_d(XCS_OP_LOG1P, log1pl, -1, 10, false, 2);
    accuracy_d(XCS_OP_LOG1P, log1pl, 1e-300, 1, true, 2);
    accuracy_d(XCS_OP_TANH, tanhl, -30, 30, false, 2);
    accuracy_d(XCS_OP_TANH, tanhl, 1e-300, 1, true, 2);
    accuracy_d(XCS_OP_EXP2, exp2l, -1075, 1023.9, false, 1.5);
    accuracy_d(XCS_OP_EXP2, exp2l, 1e-300, 1000, true, 1.5);
    accuracy_d(XCS_OP_LOG2, log2l, 0, 1e300, false, 1.5);
    accuracy_d(XCS_OP_LOG2, log2l, 1e-320, 1e308, true, 1.5);
    accuracy_d(XCS_OP_LOG10, log10l, 0, 1e300, false, 1.5);
    accuracy_d(XCS_OP_LOG10, log10l, 1e-320, 1e308, true, 1.5);
    accuracy_d(XCS_OP_SINH, sinhl, -711, 711, false, 2.5);
    accuracy_d(XCS_OP_SINH, sinhl, 1e-300, 1, true, 2.5);
    accuracy_d(XCS_OP_COSH, coshl, -711, 711, false, 2.5);
    accuracy_d(XCS_OP_ARCTAN, atanl, -10, 10, false, 2);
    accuracy_d(XCS_OP_ARCTAN, atanl, 1e-300, 1e300, true, 2);
    accuracy_d(XCS_OP_CBRT, cbrtl, -1e6, 1e6, false, 1.5);
    accuracy_d(XCS_OP_CBRT, cbrtl, 1e-320, 1e308, true, 1.5);
    struct { xcs_op op; double x, want; } sp[] = {
        {XCS_OP_EXP, INFINITY, INFINITY}, {XCS_OP_EXP, -INFINITY, 0}, {XCS_OP_EXP, 710, INFINITY}, {XCS_OP_EXP, -746, 0},
        {XCS_OP_EXP, 0, 1}, {XCS_OP_EXP, 1, 2.718281828459045}, {XCS_OP_EXP, -745, 0x1p-1074},
        {XCS_OP_EXPM1, -0.0, -0.0}, {XCS_OP_EXPM1, -INFINITY, -1}, {XCS_OP_EXPM1, INFINITY, INFINITY},
        {XCS_OP_EXPM1, 1e-300, 1e-300}, {XCS_OP_LOG, 0, -INFINITY}, {XCS_OP_LOG, -0.0, -INFINITY}, {XCS_OP_LOG, -1, NAN},
        {XCS_OP_LOG, 1, 0}, {XCS_OP_LOG, INFINITY, INFINITY}, {XCS_OP_LOG, 0x1p-1074, -744.4400719213812},
        {XCS_OP_LOG1P, -1, -INFINITY}, {XCS_OP_LOG1P, -2, NAN}, {XCS_OP_LOG1P, -0.0, -0.0},
        {XCS_OP_LOG1P, INFINITY, INFINITY}, {XCS_OP_TANH, -0.0, -0.0}, {XCS_OP_TANH, INFINITY, 1},
        {XCS_OP_TANH, -INFINITY, -1}, {XCS_OP_TANH, 1e-300, 1e-300}, {XCS_OP_EXP2, 10, 1024}, {XCS_OP_EXP2, -1074, 0x1p-1074},
        {XCS_OP_EXP2, 1024, INFINITY}, {XCS_OP_EXP2, -INFINITY, 0}, {XCS_OP_EXP2, 0.5, 1.4142135623730951},
        {XCS_OP_LOG2, 1024, 10}, {XCS_OP_LOG2, 0x1p-1074, -1074}, {XCS_OP_LOG2, 0, -INFINITY}, {XCS_OP_LOG2, -1, NAN},
        {XCS_OP_LOG10, 1000, 3}, {XCS_OP_LOG10, 1e-5, -5}, {XCS_OP_LOG10, 1e22, 22}, {XCS_OP_LOG10, INFINITY, INFINITY},
        {XCS_OP_SINH, -0.0, -0.0}, {XCS_OP_SINH, -INFINITY, -INFINITY}, {XCS_OP_SINH, 711, INFINITY},
        {XCS_OP_COSH, 0, 1}, {XCS_OP_COSH, -INFINITY, INFINITY}, {XCS_OP_ARCTAN, INFINITY, 1.5707963267948966},
        {XCS_OP_ARCTAN, -0.0, -0.0}, {XCS_OP_ARCTAN, 1, 0.7853981633974483}, {XCS_OP_CBRT, -27, -3}, {XCS_OP_CBRT, 64, 4},
        {XCS_OP_CBRT, -0.0, -0.0}, {XCS_OP_CBRT, -INFINITY, -INFINITY}, {XCS_OP_CBRT, 0x1p-1074, 1.7031839360032603e-108},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        double in[2] = {sp[i].x, NAN}, out[2];
        xcs_ew_kernel_get(sp[i].op, XCS_F64)(2, in, NULL, NULL, out);
        bool ok = (sp[i].want != sp[i].want ? out[0] != out[0]
                                            : out[0] == sp[i].want && signbit(out[0]) == signbit(sp[i].want)) &&
                  out[1] != out[1];
        if (!ok) fprintf(stderr, "  f64 %s(%g) = %.17g, want %.17g\n", xcs_op_name(sp[i].op), sp[i].x, out[0], sp[i].want);
        CHECK(ok);
    }
}

static void test_vmath_accuracy(void) {
    accuracy(XCS_OP_EXP, exp, -104, 89, false, 2);
    accuracy(XCS_OP_EXP, exp, 1e-30, 80, true, 2);
    accuracy(XCS_OP_EXPM1, expm1, -20, 89, false, 3);
    accuracy(XCS_OP_EXPM1, expm1, 1e-30, 1, true, 3);
    accuracy(XCS_OP_LOG, log, 0, 1e38, false, 2);
    accuracy(XCS_OP_LOG, log, 1e-45, 3e38, true, 2);
    accuracy(XCS_OP_LOG1P, log1p, -1, 10, false, 3);
    accuracy(XCS_OP_LOG1P, log1p, 1e-30, 1, true, 3);
    accuracy(XCS_OP_TANH, tanh, -12, 12, false, 3);
    accuracy(XCS_OP_TANH, tanh, 1e-30, 1, true, 3);
    accuracy(XCS_OP_SIGMOID, ref_sigmoid, -110, 30, false, 3);
    accuracy(XCS_OP_ERF, erf, -5, 5, false, 3);
    accuracy(XCS_OP_ERF, erf, 1e-30, 1, true, 3);
    accuracy(XCS_OP_GELU, ref_gelu, -16, 16, false, 2);
    accuracy(XCS_OP_GELU, ref_gelu, 1e-30, 1e3, true, 2);
    accuracy(XCS_OP_SIN, sin, -10, 10, false, 2);
    accuracy(XCS_OP_SIN, sin, 1e-30, 1e30, true, 2);
    accuracy(XCS_OP_COS, cos, -1e5, 1e5, false, 2);
    accuracy(XCS_OP_COS, cos, 1e-30, 1e30, true, 2);
    accuracy(XCS_OP_LOG2, log2, 0, 1e38, false, 2);
    accuracy(XCS_OP_LOG2, log2, 1e-45, 3e38, true, 2);
    accuracy(XCS_OP_LOG10, log10, 0, 1e38, false, 2);
    accuracy(XCS_OP_LOG10, log10, 1e-45, 3e38, true, 2);
    accuracy(XCS_OP_EXP2, exp2, -152, 130, false, 2);
    accuracy(XCS_OP_EXP2, exp2, 1e-30, 100, true, 2);
    accuracy(XCS_OP_SINH, sinh, -92, 92, false, 3);
    accuracy(XCS_OP_SINH, sinh, 1e-30, 1, true, 3);
    accuracy(XCS_OP_COSH, cosh, -92, 92, false, 3);
    accuracy(XCS_OP_ARCTAN, atan, -10, 10, false, 3);
    accuracy(XCS_OP_ARCTAN, atan, 1e-30, 1e30, true, 3);
    accuracy(XCS_OP_CBRT, cbrt, -1e6, 1e6, false, 1);
    accuracy(XCS_OP_CBRT, cbrt, 1e-45, 3e38, true, 1);
    accuracy(XCS_OP_ARCSINH, asinh, -1e5, 1e5, false, 3);
    accuracy(XCS_OP_ARCSINH, asinh, 1e-30, 3e38, true, 3);
    /* special values */
    struct { xcs_op op; float x, want; } sp[] = {
        {XCS_OP_EXP, INFINITY, INFINITY}, {XCS_OP_EXP, -INFINITY, 0}, {XCS_OP_EXP, 89, INFINITY},
        {XCS_OP_EXP, -104, 0}, {XCS_OP_EXP, 0, 1}, {XCS_OP_EXPM1, -INFINITY, -1}, {XCS_OP_EXPM1, INFINITY, INFINITY},
        {XCS_OP_EXPM1, -0.0f, -0.0f}, {XCS_OP_LOG, 0, -INFINITY}, {XCS_OP_LOG, -0.0f, -INFINITY},
        {XCS_OP_LOG, -1, NAN}, {XCS_OP_LOG, INFINITY, INFINITY}, {XCS_OP_LOG, 1, 0},
        {XCS_OP_LOG1P, -1, -INFINITY}, {XCS_OP_LOG1P, -2, NAN}, {XCS_OP_LOG1P, INFINITY, INFINITY},
        {XCS_OP_LOG1P, -0.0f, -0.0f}, {XCS_OP_TANH, INFINITY, 1}, {XCS_OP_TANH, -INFINITY, -1},
        {XCS_OP_TANH, -0.0f, -0.0f}, {XCS_OP_SIGMOID, INFINITY, 1}, {XCS_OP_SIGMOID, -INFINITY, 0},
        {XCS_OP_ERF, INFINITY, 1}, {XCS_OP_ERF, -INFINITY, -1}, {XCS_OP_GELU, -INFINITY, -0.0f},
        {XCS_OP_GELU, INFINITY, INFINITY}, {XCS_OP_SIN, INFINITY, NAN}, {XCS_OP_SIN, -0.0f, -0.0f},
        {XCS_OP_COS, -INFINITY, NAN}, {XCS_OP_SQRT, -1, NAN}, {XCS_OP_RSQRT, 0, INFINITY},
        {XCS_OP_LOG2, 8, 3}, {XCS_OP_LOG2, 0x1p-140f, -140}, {XCS_OP_LOG2, 0, -INFINITY}, {XCS_OP_LOG2, -1, NAN},
        {XCS_OP_LOG2, INFINITY, INFINITY}, {XCS_OP_LOG10, 1000, 3}, {XCS_OP_LOG10, 1e-10f, (float)log10(1e-10f)},
        {XCS_OP_EXP2, 10, 1024}, {XCS_OP_EXP2, -149, 0x1p-149f}, {XCS_OP_EXP2, -150.5f, 0}, {XCS_OP_EXP2, 128, INFINITY},
        {XCS_OP_EXP2, -INFINITY, 0}, {XCS_OP_EXP2, INFINITY, INFINITY}, {XCS_OP_SINH, -0.0f, -0.0f},
        {XCS_OP_SINH, INFINITY, INFINITY}, {XCS_OP_SINH, -INFINITY, -INFINITY}, {XCS_OP_SINH, 90, INFINITY},
        {XCS_OP_COSH, 0, 1}, {XCS_OP_COSH, -INFINITY, INFINITY}, {XCS_OP_ARCTAN, INFINITY, (float)1.5707963267948966},
        {XCS_OP_ARCTAN, -0.0f, -0.0f}, {XCS_OP_CBRT, -27, -3}, {XCS_OP_CBRT, 0x1p-147f, (float)cbrt(0x1p-147)},
        {XCS_OP_CBRT, -0.0f, -0.0f}, {XCS_OP_CBRT, -INFINITY, -INFINITY}, {XCS_OP_ARCSINH, -0.0f, -0.0f},
        {XCS_OP_ARCSINH, -INFINITY, -INFINITY},
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        float in[2] = {sp[i].x, NAN}, out[2];
        xcs_ew_kernel_get(sp[i].op, XCS_F32)(2, in, NULL, NULL, out);
        bool ok = (sp[i].want != sp[i].want ? out[0] != out[0]
                                            : out[0] == sp[i].want && signbit(out[0]) == signbit(sp[i].want)) &&
                  out[1] != out[1];
        if (!ok) fprintf(stderr, "  %s(%g) = %g, want %g\n", xcs_op_name(sp[i].op), sp[i].x, out[0], sp[i].want);
        CHECK(ok);
    }
}

int main(void) {
    RUN(test_vmath_accuracy);
    RUN(test_vmath_f64);
    RUN(test_in_place);
    return check_report();
}
