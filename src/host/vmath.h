/* vmath.h — internal to src/host: float32 elementary functions written so
 * that gcc/clang vectorise them inside `#pragma omp simd` loops.
 *
 * Rules every function here follows, and why:
 *   - No libm call and no branch: both sides of a case split are computed and
 *     the result is picked with vm_self (a mask blend); see there for why
 *     not `c ? a : b`.
 *   - Bits are moved with memcpy (vm_f2u/vm_u2f), which compiles to nothing.
 *   - Rounding to an integer uses the 1.5*2^23 "magic number": for |v| < 2^22,
 *     (v + 0x1.8p23) rounds v to the nearest integer n (ulp is 1 there) and
 *     the low bits of its representation hold n in two's complement.
 *   - Coefficients are the Cephes single-precision minimax sets (S. L.
 *     Moshier, Cephes Math Library: expf.c, logf.c, sinf.c, ndtrf.c);
 *     the reductions and special-value handling are ours and are described
 *     at each function.  VM_FMA fuses where the target has FMA.
 *
 * Accuracy against double-precision libm, max error in float ulps over every
 * third float32 bit pattern (1.4e9 inputs: all signs, subnormals, inf, NaN),
 * AVX2+FMA build: exp 1.01, expm1 1.43, log 0.82, log1p 1.44, tanh 2.42,
 * sigmoid 2.40, erf 2.47, gelu 0.99 (evaluated in double), sin 1.56, cos
 * 1.56; floor/ceil exact.  tests/c/test_vmath.c re-measures on samples.
 * Special values: NaN propagates; exp overflows to inf / underflows through
 * the subnormals to 0; log(0) = -inf, log(x<0) = NaN, log(inf) = inf;
 * tanh(+-large) = +-1, sigmoid saturates to 0/1, erf to +-1.
 *
 * sin/cos reduce with three-part pi/2 (Cody-Waite) which is exact only for
 * |x| <= VM_TRIG_MAX; callers send larger (and non-finite) arguments to libm
 * (see the sin/cos kernels in ew_kernels.c). */
#ifndef XCS_VMATH_H
#define XCS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
#define VM_HAVE_FMA 1
#define VM_FMA(a, b, c) fmaf((a), (b), (c))
#define VM_FMAD(a, b, c) fma((a), (b), (c))
#else
#define VM_HAVE_FMA 0
#define VM_FMA(a, b, c) ((a) * (b) + (c))
#define VM_FMAD(a, b, c) ((a) * (b) + (c))
#endif

static inline uint32_t vm_f2u(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float vm_u2f(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* c ? a : b as bit operations.  A plain ?: lets gcc sink the computation
 * of an arm into a branch, which -ftrapping-math then forbids it to
 * if-convert, and the whole loop stays scalar; masks cannot be sunk. */
static inline float vm_self(int c, float a, float b) {
    uint32_t m = 0u - (uint32_t)(c != 0);
    return vm_u2f((vm_f2u(a) & m) | (vm_f2u(b) & ~m));
}

static inline double vm_seld(int c, double a, double b) {
    uint64_t m = 0u - (uint64_t)(c != 0), ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* Clamps that let NaN through (the comparison fails); blends, like vm_self. */
static inline float vm_clamp_hi(float x, float hi) { return vm_self(x > hi, hi, x); }
static inline float vm_clamp_lo(float x, float lo) { return vm_self(x < lo, lo, x); }

#define VM_MAGIC 0x1.8p23f /* 1.5 * 2^23 */
#define VM_LN2_HI 6.93147180369123816490e-01 /* fdlibm's ln2 split: n * LN2_HI exact for |n| < 2^11 */
#define VM_LN2_LO 1.90821492927058770002e-10

/* 2^n for n in [-126, 127] (exponent field), computed in unsigned arithmetic
 * so that garbage n (from a NaN input) is harmless. */
static inline float vm_pow2i(uint32_t n) { return vm_u2f((n + 127u) << 23); }

/* Low part of x*x: x*x == hi + lo exactly (Dekker).  With FMA it is one
 * instruction; without, Veltkamp-split x into 12-bit halves. */
static inline float vm_sq_lo(float x, float hi) {
#if VM_HAVE_FMA
    return fmaf(x, x, -hi);
#else
    float xh = vm_u2f(vm_f2u(x) & 0xfffff000u), xl = x - xh;
    return ((xh * xh - hi) + 2.0f * xh * xl) + xl * xl;
#endif
}

/* ------------------------------------------------------------- floor, ceil
 * Exact and libm-free (gcc vectorises floorf only with -fno-trapping-math):
 * for |x| < 2^23, (|x| + 2^23) - 2^23 is |x| rounded to an integer; with
 * x's sign restored, step down by one where that landed above x.  Larger
 * |x|, inf and NaN are returned as they are.  Signs of zeros follow C:
 * floor(-0.0) = -0.0, ceil(-0.5) = -0.0. */
static inline float vm_floorf(float x) {
    float r = copysignf((fabsf(x) + 0x1p23f) - 0x1p23f, x);
    float f = r - vm_self(r > x, 1.0f, 0.0f);
    return vm_self(fabsf(x) < 0x1p23f, f, x);
}
static inline float vm_ceilf(float x) { return -vm_floorf(-x); }
static inline double vm_floor(double x) {
    double r = copysign((fabs(x) + 0x1p52) - 0x1p52, x);
    double f = r - vm_seld(r > x, 1.0, 0.0);
    return vm_seld(fabs(x) < 0x1p52, f, x);
}
static inline double vm_ceil(double x) { return -vm_floor(-x); }
/* rint: the same sum alone, which the default rounding mode takes to the
 * even integer at halves (numpy.rint); rint(-0.3) = -0.0. */
static inline float vm_rintf(float x) {
    return vm_self(fabsf(x) < 0x1p23f, copysignf((fabsf(x) + 0x1p23f) - 0x1p23f, x), x);
}
static inline double vm_rint(double x) {
    return vm_seld(fabs(x) < 0x1p52, copysign((fabs(x) + 0x1p52) - 0x1p52, x), x);
}

/* ------------------------------------------------------------- exp family
 * x = n ln2 + r with n = rint(x / ln2), |r| <= ln2/2.  ln2 = C1 + C2 where
 * C1 = 355/512 has 9 bits, so n*C1 is exact and r carries no reduction error
 * beyond C2's rounding (Cody & Waite).  e^r - 1 = r + r^2 P(r), P the Cephes
 * expf polynomial (rel. error ~1e-7 on |r| <= ln2/2).
 *
 * 2^n is applied as 2^(n>>1) * 2^(n - (n>>1)): both factors are normal for
 * n in [-150, 128], the first product is exact and the second rounds once,
 * so results in the subnormal range are correctly formed and e^x for x just
 * below ln(FLT_MAX) does not overflow early.  Inputs are clamped to
 * [-104, 89] first (e^-104 < 2^-150 rounds to 0, e^89 > FLT_MAX gives inf);
 * the clamps compare, so NaN passes through. */
#define VM_EXP_LO (-104.0f)
#define VM_EXP_HI 89.0f

/* Shared reduction: returns e^r - 1 and sets *ni = n (as raw uint32). */
static inline float vm_exp_core(float x, uint32_t *ni) {
    float t = VM_FMA(x, 1.44269504088896341f, VM_MAGIC);
    float n = t - VM_MAGIC;
    *ni = vm_f2u(t) - vm_f2u(VM_MAGIC);
    float r = VM_FMA(n, -0.693359375f, x);
    r = VM_FMA(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = VM_FMA(p, r, 1.3981999507e-3f);
    p = VM_FMA(p, r, 8.3334519073e-3f);
    p = VM_FMA(p, r, 4.1665795894e-2f);
    p = VM_FMA(p, r, 1.6666665459e-1f);
    p = VM_FMA(p, r, 5.0000001201e-1f);
    return VM_FMA(p, r * r, r);
}

static inline float vm_expf(float x) {
    x = vm_clamp_hi(vm_clamp_lo(x, VM_EXP_LO), VM_EXP_HI);
    uint32_t n;
    float em = vm_exp_core(x, &n);
    uint32_t n1 = (uint32_t)((int32_t)n >> 1), n2 = n - n1;
    return (em + 1.0f) * vm_pow2i(n1) * vm_pow2i(n2);
}

/* expm1(x) = 2^n (e^r - 1) + (2^n - 1).  For n <= 24, 2^n - 1 is exact and
 * the fused form keeps full relative accuracy near 0 (n = 0 gives e^r - 1
 * itself); for larger n the "- 1" is below half an ulp and e^x - 1 is formed
 * as for exp.  |x| < 2^-25: expm1(x) = x in float (keeps -0 and subnormals). */
static inline float vm_expm1f(float x) {
    float xc = vm_clamp_hi(vm_clamp_lo(x, VM_EXP_LO), VM_EXP_HI);
    uint32_t n;
    float em = vm_exp_core(xc, &n);
    int32_t ns = (int32_t)n;
    uint32_t n1 = (uint32_t)(ns >> 1), n2 = n - n1;
    float s1 = vm_pow2i(n1), s2 = vm_pow2i(n2);
    float s = s1 * s2; /* exact for n <= 24; 0 below 2^-149: then result -1 */
    float small = VM_FMA(s, em, s - 1.0f);
    float large = (em + 1.0f) * s1 * s2 - 1.0f;
    float res = vm_self(ns > 24, large, small);
    return vm_self(fabsf(x) < 0x1p-25f, x, res);
}

/* ------------------------------------------------------------- log family
 * x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact);
 * log(1+f) = f - f^2/2 + f^3 P(f) (Cephes logf polynomial, |f| <= 0.29);
 * log x = f - f^2/2 + f^3 P(f) + e*C2 + e*C1 with ln2 = C1 + C2 as in exp.
 * Subnormal x are scaled by 2^23 first. */
/* x's reduction and polynomial (the comment above): *e, *f, *z and P(f). */
static inline float vm_logf_parts(float x, float *e_out, float *f_out, float *z_out) {
    int sub = x < 0x1p-126f;
    float xs = x * vm_self(sub, 0x1p23f, 1.0f);
    uint32_t u = vm_f2u(xs);
    float e = (float)((int32_t)(u >> 23) - 127) - vm_self(sub, 23.0f, 0.0f);
    float m = vm_u2f((u & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    int big = m > 1.41421356f;
    m = m * vm_self(big, 0.5f, 1.0f);
    *e_out = e + vm_self(big, 1.0f, 0.0f);
    float f = m - 1.0f;
    *f_out = f, *z_out = f * f;
    float p = 7.0376836292e-2f;
    p = VM_FMA(p, f, -1.1514610310e-1f);
    p = VM_FMA(p, f, 1.1676998740e-1f);
    p = VM_FMA(p, f, -1.2420140846e-1f);
    p = VM_FMA(p, f, 1.4249322787e-1f);
    p = VM_FMA(p, f, -1.6668057665e-1f);
    p = VM_FMA(p, f, 2.0000714765e-1f);
    p = VM_FMA(p, f, -2.4999993993e-1f);
    return VM_FMA(p, f, 3.3333331174e-1f);
}

/* logf's special values around res: x <= 0, NaN, inf. */
static inline float vm_log_specials(float x, float res) {
    res = vm_self(x > 0.0f, res, vm_self(x == 0.0f, -INFINITY, NAN));
    return vm_self(x == INFINITY, x, res);
}

static inline float vm_logf(float x) {
    float e, f, z, p = vm_logf_parts(x, &e, &f, &z);
    float y = p * f * z;
    y = VM_FMA(e, -2.12194440e-4f, y);
    y = VM_FMA(-0.5f, z, y);
    return vm_log_specials(x, VM_FMA(e, 0.693359375f, f + y));
}

/* log1p(x) = log(u) + (x - (u - 1)) / u with u = fl(1 + x): the second term
 * is the first-order correction for the rounding of u (Goldberg, "What every
 * computer scientist should know...", Thm. 4 variant used by fdlibm). */
static inline float vm_log1pf(float x) {
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;
    float res = vm_logf(u) + c;
    res = vm_self(x == -1.0f, -INFINITY, res);
    res = vm_self(x == INFINITY, x, res);
    return vm_self(fabsf(x) < 0x1p-25f, x, res);
}

/* ------------------------------------------------------------- tanh, sigmoid
 * tanh|x| = m / (m + 2) with m = expm1(2|x|): no cancellation anywhere, and
 * for tiny x it is 2x/(2+2x) = x.  |x| > 9.1 gives 1 in float (1 - tanh <
 * 2^-25), so the argument is clamped there (also keeps m finite). */
static inline float vm_tanhf(float x) {
    float a = fabsf(x);
    a = vm_clamp_hi(a, 9.1f);
    float m = vm_expm1f(2.0f * a);
    return copysignf(m / (m + 2.0f), x);
}

/* sigmoid(x) = 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0, both from
 * e = e^-|x| <= 1: no overflow, and tiny results keep their relative
 * accuracy (sigmoid(-100) = e^-100, a subnormal, not 0). */
static inline float vm_sigmoidf(float x) {
    float e = vm_expf(-fabsf(x));
    float num = vm_self(x >= 0.0f, 1.0f, e);
    return num / (1.0f + e);
}

/* ------------------------------------------------------------- erf, gelu
 * Cephes ndtrf.c:  erf(x) = x T(x^2) for |x| < 1;
 *   erfc(x) = e^(-x^2) (1/x) P(1/x^2) for 1 <= x < 2, same with R for x >= 2.
 * e^(-x^2) is formed from x^2 = hi + lo exactly: e^-hi (1 - lo); an e^-hi
 * alone would carry a relative error of x^2 * 2^-24 (1e-5 at x = 14). */
static inline float vm_erf_small(float x) { /* |x| < 1 */
    float z = x * x;
    float p = 7.853861353153693e-5f;
    p = VM_FMA(p, z, -8.010193625184903e-4f);
    p = VM_FMA(p, z, 5.188327685732524e-3f);
    p = VM_FMA(p, z, -2.685381193529856e-2f);
    p = VM_FMA(p, z, 1.128358514861418e-1f);
    p = VM_FMA(p, z, -3.761262582423300e-1f);
    p = VM_FMA(p, z, 1.128379165726710e+0f);
    return x * p;
}

/* erfc(t) for t >= 1 given ex2 = e^(-t^2) (accurate): both Cephes tails are
 * evaluated and blended. */
static inline float vm_erfc_tail(float t, float ex2) {
    float q = 1.0f / t, y = q * q;
    float p = 2.326819970068386e-2f;
    p = VM_FMA(p, y, -1.387039388740657e-1f);
    p = VM_FMA(p, y, 3.687424674597105e-1f);
    p = VM_FMA(p, y, -5.824733027278666e-1f);
    p = VM_FMA(p, y, 6.210004621745983e-1f);
    p = VM_FMA(p, y, -4.944515323274145e-1f);
    p = VM_FMA(p, y, 3.404879937665872e-1f);
    p = VM_FMA(p, y, -2.741127028184656e-1f);
    p = VM_FMA(p, y, 5.638259427386472e-1f);
    float r = -1.047766399936249e+1f;
    r = VM_FMA(r, y, 1.297719955372516e+1f);
    r = VM_FMA(r, y, -7.495518717768503e+0f);
    r = VM_FMA(r, y, 2.921019019210786e+0f);
    r = VM_FMA(r, y, -1.015265279202700e+0f);
    r = VM_FMA(r, y, 4.218463358204948e-1f);
    r = VM_FMA(r, y, -2.820767439740514e-1f);
    r = VM_FMA(r, y, 5.641895067754075e-1f);
    float pr = vm_self(t < 2.0f, p, r);
    return ex2 * q * pr;
}

/* e^(-s*s*k) with s*s split exactly (k = 1 or 1/2, a power of two). */
static inline float vm_exp_negsq(float s, float k) {
    float hi = s * s, lo = vm_sq_lo(s, hi);
    float e = vm_expf(-k * hi);
    return VM_FMA(-e, k * lo, e);
}

static inline float vm_erff(float x) {
    float a = fabsf(x);
    a = vm_clamp_hi(a, 10.0f); /* erfc(10) < 2^-149 */
    float big = 1.0f - vm_erfc_tail(a, vm_exp_negsq(a, 1.0f));
    float res = vm_self(a < 1.0f, vm_erf_small(x), copysignf(big, x));
    return vm_self(x != x, x, res);
}

/* e^v for v in [-746, 0], in double, to ~1e-10 relative: enough for any
 * float result.  v = n ln2 + r (fdlibm's ln2 split: n*LN2_HI is exact for
 * |n| < 2^20), e^r by its degree-9 Taylor polynomial (|r| <= ln2/2: error
 * r^10/10! < 1e-11), times 2^n built in the exponent field. */
static inline double vm_exp_neg_d(double v) {
    double t = VM_FMAD(v, 1.4426950408889634, 0x1.8p52);
    double n = t - 0x1.8p52;
    uint64_t tb;
    memcpy(&tb, &t, sizeof tb);
    double r = VM_FMAD(n, -VM_LN2_HI, v);
    r = VM_FMAD(n, -VM_LN2_LO, r);
    double p = 1.0 / 362880;
    p = VM_FMAD(p, r, 1.0 / 40320);
    p = VM_FMAD(p, r, 1.0 / 5040);
    p = VM_FMAD(p, r, 1.0 / 720);
    p = VM_FMAD(p, r, 1.0 / 120);
    p = VM_FMAD(p, r, 1.0 / 24);
    p = VM_FMAD(p, r, 1.0 / 6);
    p = VM_FMAD(p, r, 0.5);
    p = VM_FMAD(p, r, 1.0);
    p = VM_FMAD(p, r, 1.0);
    uint64_t sb = (tb - 0x4338000000000000ull + 1023u) << 52; /* low bits of t hold n */
    double s;
    memcpy(&s, &sb, sizeof s);
    return p * s;
}

/* gelu(x) = x/2 (1 + erf(x/sqrt2)) = x/2 erfc(-x/sqrt2), evaluated in double
 * and rounded once, because in float the erfc tail alone collects ~5 ulp of
 * rounding (1/t, 1/t^2, Horner with alternating coefficients) and 1 + erf
 * cancels for x < 0.  With c = erfc(|x|/sqrt2) from the Cephes pieces above
 * (x T(x^2) below 1, e^(-t^2) (1/t) P|R(1/t^2) from 1 on; their own error is
 * 0.5 float ulp), gelu = x/2 (2 - c) for x >= 0 and x/2 c for x < 0: no
 * cancellation on either side, and e^(-t^2) = e^(-x^2/2) is exact in its
 * argument (x^2 of a float is exact in double).  |x| is clamped at 15 inside
 * (gelu(-15) underflows to -0; for x >= 15 the result is x). */
static inline float vm_geluf(float x) {
    double xd = (double)x;
    double xc = (double)vm_clamp_hi(vm_clamp_lo(x, -15.0f), 15.0f);
    double t = fabs(xc) * 0.70710678118654752440;
    double z = t * t;
    double ps = 7.853861353153693e-5;
    ps = VM_FMAD(ps, z, -8.010193625184903e-4);
    ps = VM_FMAD(ps, z, 5.188327685732524e-3);
    ps = VM_FMAD(ps, z, -2.685381193529856e-2);
    ps = VM_FMAD(ps, z, 1.128358514861418e-1);
    ps = VM_FMAD(ps, z, -3.761262582423300e-1);
    ps = VM_FMAD(ps, z, 1.128379165726710e+0);
    double small = VM_FMAD(-t, ps, 1.0);
    double q = 1.0 / t, y = q * q; /* t = 0: inf/NaN, blended away below */
    double p = 2.326819970068386e-2;
    p = VM_FMAD(p, y, -1.387039388740657e-1);
    p = VM_FMAD(p, y, 3.687424674597105e-1);
    p = VM_FMAD(p, y, -5.824733027278666e-1);
    p = VM_FMAD(p, y, 6.210004621745983e-1);
    p = VM_FMAD(p, y, -4.944515323274145e-1);
    p = VM_FMAD(p, y, 3.404879937665872e-1);
    p = VM_FMAD(p, y, -2.741127028184656e-1);
    p = VM_FMAD(p, y, 5.638259427386472e-1);
    double r = -1.047766399936249e+1;
    r = VM_FMAD(r, y, 1.297719955372516e+1);
    r = VM_FMAD(r, y, -7.495518717768503e+0);
    r = VM_FMAD(r, y, 2.921019019210786e+0);
    r = VM_FMAD(r, y, -1.015265279202700e+0);
    r = VM_FMAD(r, y, 4.218463358204948e-1);
    r = VM_FMAD(r, y, -2.820767439740514e-1);
    r = VM_FMAD(r, y, 5.641895067754075e-1);
    double tail = vm_exp_neg_d(-0.5 * xc * xc) * q * vm_seld(t < 2.0, p, r);
    double c = vm_seld(t < 1.0, small, tail);
    double res = vm_seld(x >= 0.0f, 0.5 * xd * (2.0 - c), 0.5 * xc * c);
    return vm_self(x != x, x, (float)res);
}

/* ------------------------------------------------------------- sin, cos
 * n = rint(x * 2/pi), r = x - n pi/2 with pi/2 = P1 + P2 + P3 (P1 = pi/2
 * rounded to float).  With FMA, x - n*P1 is exact (its exact value is a
 * multiple of ulp(P1) below 2 in magnitude) and the two corrections lose at
 * most an ulp of r, which holds up to |x| ~ 1e5; without FMA, P1 has 12
 * bits (Cephes-style DP1) so that n*P1 is exact for the smaller range.
 * sin r = r + r^3 S(r^2), cos r = 1 - r^2/2 + r^4 C(r^2) on |r| <= pi/4
 * (Cephes sinf.c minimax polynomials); the quadrant n mod 4 picks the
 * polynomial and the sign. */
#if VM_HAVE_FMA
#define VM_TRIG_MAX 71476.0f
#define VM_PIO2_1 0x1.921fb6p+0f
#define VM_PIO2_2 -0x1.777a5cp-25f
#define VM_PIO2_3 -0x1.ee59dap-50f
#else
#define VM_TRIG_MAX 8192.0f
#define VM_PIO2_1 1.5703125f                  /* 2 * Cephes DP1 */
#define VM_PIO2_2 4.837512969970703125e-4f    /* 2 * DP2 */
#define VM_PIO2_3 7.54978995489188216e-8f     /* 2 * DP3 */
#endif

static inline float vm_sincos_poly(float x, uint32_t quad_shift) {
    float t = VM_FMA(x, 0.636619772367581343f, VM_MAGIC);
    float n = t - VM_MAGIC;
    uint32_t q = vm_f2u(t) + quad_shift; /* low 2 bits: quadrant (+1 for cos) */
    float r = VM_FMA(n, -VM_PIO2_1, x);
    r = VM_FMA(n, -VM_PIO2_2, r);
    r = VM_FMA(n, -VM_PIO2_3, r);
    float z = r * r;
    float s = -1.9515295891e-4f;
    s = VM_FMA(s, z, 8.3321608736e-3f);
    s = VM_FMA(s, z, -1.6666654611e-1f);
    s = VM_FMA(s * z, r, r);
    float c = 2.443315711809948e-5f;
    c = VM_FMA(c, z, -1.388731625493765e-3f);
    c = VM_FMA(c, z, 4.166664568298827e-2f);
    c = VM_FMA(c * z, z, VM_FMA(-0.5f, z, 1.0f));
    float v = vm_self(q & 1u, c, s);
    return vm_u2f(vm_f2u(v) ^ ((q & 2u) << 30));
}

/* Valid for |x| <= VM_TRIG_MAX; garbage (never UB) beyond. */
static inline float vm_sinf(float x) {
    float res = vm_sincos_poly(x, 0u);
    return vm_self(fabsf(x) < 0x1p-12f, x, res); /* sin x = x there; keeps -0 */
}

static inline float vm_cosf(float x) { return vm_sincos_poly(x, 1u); }

/* ------------------------------------------------------------- log2, log10
 * logf's reduction x = 2^e m and its ln(m) (no e * ln2 terms), then
 * e + ln(m) log2(e) or e log10(2) + ln(m) log10(e) summed in double and
 * rounded once: exact for powers of two (m = 1: ln(m) = 0), and log10 of
 * the powers of ten a float holds is their exponent. */
static inline float vm_log_mant(float x, float *e_out) {
    float f, z, p = vm_logf_parts(x, e_out, &f, &z);
    return f + VM_FMA(-0.5f, z, p * f * z);
}

static inline float vm_log2f(float x) {
    float e, lm = vm_log_mant(x, &e);
    return vm_log_specials(x, (float)VM_FMAD((double)lm, 1.4426950408889634, (double)e));
}

static inline float vm_log10f(float x) {
    float e, lm = vm_log_mant(x, &e);
    return vm_log_specials(x, (float)VM_FMAD((double)lm, 0.43429448190325182, (double)e * 0.30102999566398120));
}

/* 2^x = 2^n 2^r, n = rint(x), r = x - n exact (|r| <= 1/2): 2^r = e^(r ln2)
 * (the argument's rounding costs < 0.35 ulp), 2^n applied in two halves
 * (no intermediate overflow; one rounding into the subnormals).  Integers
 * give their power exactly. */
static inline float vm_exp2f(float x) {
    float xc = vm_clamp_hi(vm_clamp_lo(x, -151.0f), 129.0f);
    float t = xc + VM_MAGIC, n = t - VM_MAGIC;
    uint32_t ni = vm_f2u(t) - vm_f2u(VM_MAGIC);
    uint32_t n1 = (uint32_t)((int32_t)ni >> 1), n2 = ni - n1;
    float res = vm_expf((xc - n) * 0.693147180559945f) * vm_pow2i(n1) * vm_pow2i(n2);
    return vm_self(x != x, x, res);
}

/* ------------------------------------------------------------- sinh, cosh
 * sinh|x| = (m + m / (m + 1)) / 2 with m = expm1|x| (no cancellation near
 * 0), cosh|x| = (e + 1/e) / 2 with e = e^|x|; past 88.5 (e^x overflows
 * before sinh, cosh do) both are (h / 2) h with h = e^(|x|/2). */
static inline float vm_sinhf(float x) {
    float a = fabsf(x);
    float m = vm_expm1f(vm_clamp_hi(a, 88.5f));
    float h = vm_expf(0.5f * a);
    float res = vm_self(a > 88.5f, (0.5f * h) * h, 0.5f * (m + m / (m + 1.0f)));
    return copysignf(res, x);
}

static inline float vm_coshf(float x) {
    float a = fabsf(x);
    float e = vm_expf(vm_clamp_hi(a, 88.5f));
    float h = vm_expf(0.5f * a);
    float res = vm_self(a > 88.5f, (0.5f * h) * h, VM_FMA(0.5f, e, 0.5f / e));
    return vm_self(x != x, x, res);
}

/* ------------------------------------------------------------- atan
 * Cephes atanf.c: |x| > tan(3pi/8): pi/2 + atan(-1/x); > tan(pi/8):
 * pi/4 + atan((x - 1)/(x + 1)); then the odd polynomial on |t| <= 0.4142.
 * The offset is a float pair (hi + lo): lo joins the polynomial first. */
static inline float vm_atanf(float x) {
    float a = fabsf(x);
    int big = a > 2.414213562373095f, mid = (a > 0.4142135623730950f) & !big; /* (&: no branch) */
    float t = vm_self(big, -1.0f / a, vm_self(mid, (a - 1.0f) / (a + 1.0f), a));
    float hi = vm_self(big, 1.57079637f, vm_self(mid, 0.785398185f, 0.0f));
    float lo = vm_self(big, -4.37113883e-08f, vm_self(mid, -2.18556941e-08f, 0.0f));
    float z = t * t;
    float p = 8.05374449538e-2f;
    p = VM_FMA(p, z, -1.38776856032e-1f);
    p = VM_FMA(p, z, 1.99777106478e-1f);
    p = VM_FMA(p, z, -3.33329491539e-1f);
    float res = hi + (VM_FMA(p * z, t, t) + lo);
    return copysignf(res, x);
}

/* ------------------------------------------------------------- cbrt
 * A guess from the bits (exponent / 3), then two Halley steps in double
 * (cubic convergence: 5e-2 -> 1e-4 -> 1e-12), rounded once; subnormals
 * scaled by 2^24 first (their root by 2^-8); 0, inf and NaN are themselves. */
static inline float vm_cbrtf(float x) {
    float a = fabsf(x);
    int sub = a < 0x1p-126f;
    float as = a * vm_self(sub, 0x1p24f, 1.0f);
    double ad = (double)as, y = (double)vm_u2f(vm_f2u(as) / 3u + 709921077u); /* Kahan's: within 3.2% */
    double y3 = y * y * y;
    y = y * (y3 + 2.0 * ad) / (2.0 * y3 + ad);
    y3 = y * y * y;
    y = y * (y3 + 2.0 * ad) / (2.0 * y3 + ad);
    float res = (float)(y * vm_seld(sub, 0x1p-8, 1.0));
    res = vm_self((a == 0.0f) | (a == INFINITY) | (x != x), a, res);
    return copysignf(res, x);
}

/* ============================================================= float64
 * The same rules (no libm, no branch, vm_seld blends) for the double
 * functions numpy users hit most: exp, expm1, log, log1p, tanh.  Reductions
 * as fdlibm's (e_exp.c, e_log.c: Cody-Waite ln2 split, the log's
 * s = f / (2 + f) series with its Lg coefficients); ~1 ulp, measured by
 * tests/c/test_vmath.c against long double libm. */

static inline uint64_t vm_d2u(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double vm_u2d(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* 2^n for n in [-1022, 1023]. */
static inline double vm_pow2d(uint64_t n) { return vm_u2d((n + 1023u) << 52); }

#define VM_EXPD_HI 709.782712893384         /* e^x overflows past it */
#define VM_EXPD_LO -745.1332191019412       /* and is 0 below it */

/* P(r) with e^r - 1 = r + r^2 P(r) for |r| <= ln2/2 + a little: the
 * Taylor series to r^13 (its tail r^14/14! < 2^-70 relative). */
static inline double vm_expm1_poly(double r) {
    double p = 1.0 / 6227020800.0;
    p = VM_FMAD(p, r, 1.0 / 479001600.0);
    p = VM_FMAD(p, r, 1.0 / 39916800.0);
    p = VM_FMAD(p, r, 1.0 / 3628800.0);
    p = VM_FMAD(p, r, 1.0 / 362880.0);
    p = VM_FMAD(p, r, 1.0 / 40320.0);
    p = VM_FMAD(p, r, 1.0 / 5040.0);
    p = VM_FMAD(p, r, 1.0 / 720.0);
    p = VM_FMAD(p, r, 1.0 / 120.0);
    p = VM_FMAD(p, r, 1.0 / 24.0);
    p = VM_FMAD(p, r, 1.0 / 6.0);
    return VM_FMAD(p, r, 0.5);
}

static inline double vm_expm1_core(double r) { return VM_FMAD(vm_expm1_poly(r) * r, r, r); }

/* x = n ln2 + r (x clamped to the finite range): returns r, with n and
 * r_err, the part of n ln2_lo that r's rounding dropped. */
static inline double vm_exp_split(double x, uint64_t *n, double *r_err) {
    double t = VM_FMAD(x, 1.4426950408889634, 0x1.8p52);
    double k = t - 0x1.8p52;
    *n = vm_d2u(t) - vm_d2u(0x1.8p52); /* k's low bits: n, two's complement */
    double rh = VM_FMAD(k, -VM_LN2_HI, x); /* exact */
    double r = VM_FMAD(k, -VM_LN2_LO, rh);
    *r_err = VM_FMAD(-k, VM_LN2_LO, rh - r); /* what that rounding dropped */
    return r;
}

/* e^r - 1 and n for x = n ln2 + r. */
static inline double vm_exp_reduce(double x, uint64_t *n) {
    double r_err;
    return vm_expm1_core(vm_exp_split(x, n, &r_err));
}

/* e^x = 2^n e^r with e^r = 1 + r + r^2 P(r) summed as (1 + r) exactly (a
 * Fast2Sum) plus the small terms: the reduction's own rounding of r and
 * the polynomial tail are added before the one final rounding, so the
 * result is within ~0.55 ulp (mostly correctly rounded: e^1 is numpy's). */
/* e^(r + r_err) 2^n for |r| <= ln2/2 + a little, r_err << r: (1 + r) as a
 * Fast2Sum, then r^2 P(r) and r_err added before the one final rounding;
 * 2^n applied in two halves (subnormal results rounded once). */
static inline double vm_exp_finish(double r, double r_err, uint64_t n) {
    double q = vm_expm1_poly(r) * r * r; /* r^2 P(r) */
    double s_hi = 1.0 + r, s_lo = (1.0 - s_hi) + r;
    double er = s_hi + (s_lo + (q + r_err));
    uint64_t n1 = (uint64_t)((int64_t)n >> 1), n2 = n - n1;
    return er * vm_pow2d(n1) * vm_pow2d(n2);
}

static inline double vm_exp_d(double x) {
    double xc = vm_seld(x > VM_EXPD_HI, 710.0, vm_seld(x < VM_EXPD_LO, -746.0, x));
    uint64_t n;
    double r_err, r = vm_exp_split(xc, &n, &r_err);
    return vm_seld(x != x, x, vm_exp_finish(r, r_err, n));
}

/* 2^x = 2^n e^(r ln2), n = rint(x), r = x - n exact; r ln2 as a double-
 * double (FMA), so integers give their power exactly. */
static inline double vm_exp2_d(double x) {
    double xc = vm_seld(x > 1025.0, 1025.0, vm_seld(x < -1076.0, -1076.0, x));
    double t = xc + 0x1.8p52, k = t - 0x1.8p52;
    uint64_t n = vm_d2u(t) - vm_d2u(0x1.8p52);
    double rr = xc - k, a = rr * 0.6931471805599453;
    double a_err = VM_FMAD(rr, 0.6931471805599453, -a) + rr * 2.3190468138462996e-17;
    return vm_seld(x != x, x, vm_exp_finish(a, a_err, n));
}

/* expm1: 2^n (e^r - 1) + (2^n - 1), the "- 1" exact for n <= 53 (n = 0:
 * e^r - 1 itself, full relative accuracy near 0); past 53 e^x - 1 as exp. */
static inline double vm_expm1_d(double x) {
    double xc = vm_seld(x > VM_EXPD_HI, 710.0, vm_seld(x < -40.0, -40.0, x)); /* e^-40 - 1 = -1 in double */
    uint64_t n;
    double em = vm_exp_reduce(xc, &n);
    uint64_t n1 = (uint64_t)((int64_t)n >> 1), n2 = n - n1;
    double s1 = vm_pow2d(n1), s2 = vm_pow2d(n2), s = s1 * s2;
    double small = VM_FMAD(s, em, s - 1.0);
    double large = (em + 1.0) * s1 * s2 - 1.0;
    double res = vm_seld((int64_t)n > 53, large, small);
    return vm_seld((x != x) | (fabs(x) < 0x1p-54), x, res); /* tiny: x itself (keeps -0) */
}

/* log: x = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f),
 * log m = f - f^2/2 + s (f^2/2 + R(s^2)) (fdlibm e_log.c); subnormal x
 * scaled by 2^54 first.  vm_log_dd: log x as hi + *lo (|lo| < ulp(hi)),
 * for x > 0 finite (no special values). */
static inline double vm_log_dd(double x, double *lo) {
    int sub = x < 0x1p-1022;
    double xs = x * vm_seld(sub, 0x1p54, 1.0);
    uint64_t u = vm_d2u(xs);
    double e = (double)((int64_t)(u >> 52) - 1023) - vm_seld(sub, 54.0, 0.0);
    double m = vm_u2d((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
    int big = m > 1.4142135623730951;
    m = m * vm_seld(big, 0.5, 1.0);
    e = e + vm_seld(big, 1.0, 0.0);
    double f = m - 1.0, hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * VM_FMAD(w, VM_FMAD(w, 1.531383769920937332e-01, 2.222219843214978396e-01), 3.999999999940941908e-01);
    double t2 = z * VM_FMAD(w, VM_FMAD(w, VM_FMAD(w, 1.479819860511658591e-01, 1.818357216161805012e-01),
                                       2.857142874366239149e-01), 6.666666666666735130e-01);
    double R = t2 + t1;
    /* the big terms e ln2_hi + f summed exactly (TwoSum), f^2/2 with its own
     * rounding error (FMA), so only the small tail and the last add round */
    double a = e * VM_LN2_HI, hi = a + f, bb = hi - a;
    double two_err = (a - (hi - bb)) + (f - bb);
    double hf_err = VM_FMAD(0.5 * f, f, -hfsq);
    double tail = VM_FMAD(s, hfsq + R, e * VM_LN2_LO) - hfsq - hf_err + two_err;
    double res = hi + tail;
    *lo = tail - (res - hi);
    return res;
}

/* logf's special values around res, for double: x <= 0, NaN, inf. */
static inline double vm_log_specials_d(double x, double res) {
    res = vm_seld(x > 0.0, res, vm_seld(x == 0.0, -INFINITY, NAN));
    return vm_seld(x == INFINITY, x, res);
}

static inline double vm_log_d(double x) {
    double lo;
    return vm_log_specials_d(x, vm_log_dd(x, &lo));
}

/* log2, log10: log x (double-double) times the constant (double-double),
 * one final rounding: exact for powers of two, and log10 of 10^k is k. */
static inline double vm_log_scaled_d(double x, double c_hi, double c_lo) {
    double lo, hi = vm_log_dd(x, &lo);
    double p = hi * c_hi, p_err = VM_FMAD(hi, c_hi, -p);
    return vm_log_specials_d(x, p + (p_err + VM_FMAD(hi, c_lo, lo * c_hi)));
}
static inline double vm_log2_d(double x) { return vm_log_scaled_d(x, 1.4426950408889634, 2.0355273740931033e-17); }
static inline double vm_log10_d(double x) { return vm_log_scaled_d(x, 0.4342944819032518, 1.098319650216765e-17); }

/* log1p(x) = log(u) + (x - (u - 1)) / u, u = fl(1 + x) (as the float one). */
static inline double vm_log1p_d(double x) {
    double u = 1.0 + x;
    double res = vm_log_d(u) + (x - (u - 1.0)) / u;
    res = vm_seld(x == -1.0, -INFINITY, res);
    res = vm_seld(x == INFINITY, x, res);
    return vm_seld(fabs(x) < 0x1p-54, x, res);
}

/* sinh|x| = (m + m / (m + 1)) / 2, m = expm1|x|; cosh|x| = (e + 1/e) / 2;
 * past 709 (e^x overflows first) (h / 2) h with h = e^(|x|/2). */
static inline double vm_sinh_d(double x) {
    double a = fabs(x), m = vm_expm1_d(vm_seld(a > 709.0, 709.0, a)), h = vm_exp_d(0.5 * a);
    return copysign(vm_seld(a > 709.0, (0.5 * h) * h, 0.5 * (m + m / (m + 1.0))), x);
}

static inline double vm_cosh_d(double x) {
    double a = fabs(x), e = vm_exp_d(vm_seld(a > 709.0, 709.0, a)), h = vm_exp_d(0.5 * a);
    return vm_seld(x != x, x, vm_seld(a > 709.0, (0.5 * h) * h, VM_FMAD(0.5, e, 0.5 / e)));
}

/* atan: Cephes atan.c (|x| > tan(3pi/8): pi/2 + atan(-1/x); > 0.66: pi/4 +
 * atan((x-1)/(x+1)); its rational P/Q, and pi/2's low bits MOREBITS). */
static inline double vm_atan_d(double x) {
    double a = fabs(x);
    int big = a > 2.41421356237309504880, mid = (a > 0.66) & !big;
    double t = vm_seld(big, -1.0 / a, vm_seld(mid, (a - 1.0) / (a + 1.0), a));
    double y = vm_seld(big, 1.5707963267948966, vm_seld(mid, 0.7853981633974483, 0.0));
    double more = vm_seld(big, 6.123233995736765886130e-17, vm_seld(mid, 3.061616997868382943065e-17, 0.0));
    double z = t * t;
    double p = VM_FMAD(VM_FMAD(VM_FMAD(VM_FMAD(-8.750608600031904122785e-1, z, -1.615753718733365076637e1), z,
                                       -7.500855792314704667340e1), z, -1.228866684490136173410e2), z,
                       -6.485021904942025371773e1);
    double q = VM_FMAD(VM_FMAD(VM_FMAD(VM_FMAD(z + 2.485846490142306297962e1, z, 1.650270098316988542046e2), z,
                                       4.328810604912902668951e2), z, 4.853903996359136964868e2), z,
                       1.945506571482613964425e2);
    double r = VM_FMAD(t, z * p / q, t);
    return copysign(y + (r + more), x);
}

/* cbrt: x = 2^(3k) m with m in [1, 8) (subnormals scaled by 2^54 first),
 * so nothing overflows; cbrt m from a guess from the bits (fdlibm's magic),
 * two Halley steps (5e-2 -> 1e-4 -> 1e-12) and a Newton step with y^3 - m
 * formed exactly (FMA), then times 2^k; 0, inf, NaN are themselves. */
static inline double vm_cbrt_d(double x) {
    double a = fabs(x);
    int sub = a < 0x1p-1022;
    uint64_t u = vm_d2u(a * vm_seld(sub, 0x1p54, 1.0));
    int32_t e = (int32_t)(u >> 52) - 1023 - 54 * sub;
    int32_t k = (int32_t)((uint32_t)(e + 1200) / 3u) - 400; /* floor(e / 3) (32-bit: it vectorises) */
    double m = vm_u2d((u & 0x000fffffffffffffull) | ((uint64_t)(e - 3 * k + 1023) << 52)); /* [1, 8) */
    double y = vm_u2d((uint64_t)((uint32_t)(vm_d2u(m) >> 32) / 3u + 715094163u) << 32), y3;
    y3 = y * y * y;
    y = y * ((y3 + 2.0 * m) / (2.0 * y3 + m));
    y3 = y * y * y;
    y = y * ((y3 + 2.0 * m) / (2.0 * y3 + m));
    double y2 = y * y, y2e = VM_FMAD(y, y, -y2);
    y3 = y2 * y;
    double y3e = VM_FMAD(y2, y, -y3) + y2e * y;
    y = y - ((y3 - m) + y3e) / (3.0 * y2);
    double res = y * vm_pow2d((uint64_t)(int64_t)k);
    res = vm_seld((a == 0.0) | (a == INFINITY) | (x != x), a, res);
    return copysign(res, x);
}

/* tanh: |x| < 0.625 Cephes tanh.c's x + x^3 P(x^2) / Q(x^2); above, 1 -
 * 2 / (e^2|x| + 1) (>= 0.55: no cancellation); from 22 on 1 in double. */
static inline double vm_tanh_d(double x) {
    double a = fabs(x), s = x * x;
    double p = VM_FMAD(VM_FMAD(-9.64399179425052238628e-1, s, -9.92877231001918586564e1), s, -1.61468768441708447952e3);
    double q = VM_FMAD(VM_FMAD(s + 1.12811678491632931402e2, s, 2.23548839060100448583e3), s, 4.84406305325125486048e3);
    double small = VM_FMAD(x * s, p / q, x);
    double e = vm_exp_d(2.0 * vm_seld(a > 22.0, 22.0, a));
    double large = copysign(1.0 - 2.0 / (e + 1.0), x);
    double res = vm_seld(a < 0.625, small, large); /* NaN: small is NaN, the comparison fails: large is NaN too */
    return vm_seld(a < 0x1p-28, x, res);           /* tanh x = x there (keeps -0) */
}

#endif /* XCS_VMATH_H */
