/* ew_kernels.c — the CPU's contiguous elementwise kernels, one table
 * [op][compute dtype], and the dtype converters (see ew_kernels.h).
 *
 * Table design.  Each supported (op, dtype class) is one row of an X-macro
 * list below:  X(OP, class, result, expression)  where
 *   class       B bool, I int32+int64, F float32+float64, D float64 only,
 *               BI bool+ints, A all five dtypes;
 *   result      T (the compute dtype) or B (bool: comparisons, logic);
 *   expression  the value of one element, in x (and y; z for where), which
 *               have the compute type T; U is T's unsigned twin (integer
 *               wrap-around without signed-overflow UB); `err |=` records an
 *               XCS_EW_ERR_* bit.  Float functions go through the ew_* names,
 *               which pick vmath.h's vectorisable float32 version or libm's
 *               double one by type (_Generic).
 * A float expression's `?:` arms should be values or constants: an arm that
 * computes is sunk into a branch that gcc will not if-convert, and the loop
 * stays scalar (vmath.h, vm_self).  With AVX2 every float32 row vectorises
 * except floor_divide, mod and power (fmod/pow calls), checked with objdump.
 * One macro turns every row into a kernel per dtype of its class (a
 * `#pragma omp simd` loop), another into designated initialisers of the
 * table, so adding an op or a dtype to an op is one row.  Cells no row fills
 * stay NULL, which the driver reports as XCS_ERR_TYPE.  A few kernels are
 * written by hand (sin/cos float32: libm fallback for huge arguments;
 * sqrt/rsqrt: vector sqrt without -fno-math-errno) and listed after the rows.
 *
 * Semantics follow numpy: integer ops wrap; floor_divide/mod floor
 * (npy_divmod for floats); INT_MIN // -1 wraps to INT_MIN and x % -1 is 0;
 * integer division by zero yields 0 and the ZERO_DIV bit, a negative integer
 * exponent 0 and the NEG_POW bit; maximum/minimum/relu propagate NaN;
 * sign(NaN) = NaN; bool add/mul/maximum/minimum are or/and/or/and; bool
 * negative, subtract, sign, division and power have no kernel (numpy raises
 * or leaves bool).  Bool storage holds 0 or 1. */
#include "ew_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "half.h"
#include "vmath.h"

#if defined(__clang__)
/* `omp simd` asks for vectorisation; rows that cannot have it (integer
 * division, libm calls in float64 rows) are fine scalar, so clang's
 * "loop not vectorized" notice is not a warning here. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#if defined(__SSE2__) || defined(__F16C__)
#include <immintrin.h>
#endif
#if defined(__SSE2__) && !defined(__NO_MATH_ERRNO__)
#define EW_SQRT_INTRINSICS 1
#else
#define EW_SQRT_INTRINSICS 0
#endif

/* ---------------------------------------------------------------- helpers */

#define EW_FLAG(cond, bit) ((cond) ? (unsigned)(bit) : 0u)
#define EW_SQRT1_2 0.70710678118654752440

/* numpy's npy_divmod / npy_remainder (npymath): the quotient is derived from
 * fmod so that a == b*q + m holds as closely as floats allow, then snapped. */
#define EW_FLOAT_DIVMOD(SFX, T, FMOD, FLOOR, COPYSIGN)                          \
    static inline T ew_floordiv_##SFX(T a, T b) {                               \
        if (b == 0) return a / b;                                               \
        T mod = FMOD(a, b);                                                     \
        T div = (a - mod) / b;                                                  \
        if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;                       \
        if (div == 0) return COPYSIGN((T)0, a / b);                             \
        T fd = FLOOR(div);                                                      \
        return div - fd > (T)0.5 ? fd + 1 : fd;                                 \
    }                                                                           \
    static inline T ew_mod_##SFX(T a, T b) {                                    \
        T mod = FMOD(a, b);                                                     \
        if (b == 0) return mod;                                                 \
        if (mod == 0) return COPYSIGN((T)0, b);                                 \
        return ((b < 0) != (mod < 0)) ? mod + b : mod;                          \
    }
EW_FLOAT_DIVMOD(f32, float, fmodf, floorf, copysignf)
EW_FLOAT_DIVMOD(f64, double, fmod, floor, copysign)

/* Integer floor division, Python modulo and power by squaring; the caller
 * flags b == 0 (and b < 0 for power) — these return 0 there. */
#define EW_INT_HELPERS(SFX, T, U)                                               \
    static inline T ew_floordiv_##SFX(T a, T b) {                               \
        if (b == 0) return 0;                                                   \
        if (b == -1) return (T)(0 - (U)a); /* INT_MIN // -1 wraps */            \
        T q = a / b;                                                            \
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;                \
    }                                                                           \
    static inline T ew_fmod_##SFX(T a, T b) { /* C's %: the sign of a */       \
        return b == 0 || b == -1 ? 0 : a % b;                                   \
    }                                                                           \
    static inline T ew_mod_##SFX(T a, T b) {                                    \
        if (b == 0 || b == -1) return 0;                                        \
        T r = a % b;                                                            \
        return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;                    \
    }                                                                           \
    static inline T ew_pow_##SFX(T a, T b) {                                    \
        if (b < 0) return 0;                                                    \
        U r = 1, base = (U)a;                                                   \
        for (; b; b >>= 1) {                                                    \
            if (b & 1) r *= base;                                               \
            base *= base;                                                       \
        }                                                                       \
        return (T)r;                                                            \
    }
EW_INT_HELPERS(i32, int32_t, uint32_t)
EW_INT_HELPERS(i64, int64_t, uint64_t)

static inline double ew_sigmoid_f64(double x) {
    double e = vm_exp_d(-fabs(x));
    return vm_seld(x >= 0, 1.0, e) / (1.0 + e);
}

/* x/2 (1 + erf(x/sqrt2)); for x < 0 as x/2 erfc(|x|/sqrt2), which does not
 * cancel.  Below -40 the result underflows (and -inf would give -inf*0). */
static inline double ew_gelu_f64(double x) {
    if (x < -40.0) return -0.0;
    return x >= 0 ? 0.5 * x * (1.0 + erf(x * EW_SQRT1_2)) : 0.5 * x * erfc(-x * EW_SQRT1_2);
}

#define EW_GF(x, f32fn, f64fn) _Generic((x), float: f32fn, double: f64fn)
#define ew_fabs(x) EW_GF(x, fabsf, fabs)(x)
#define ew_exp(x) EW_GF(x, vm_expf, vm_exp_d)(x)
#define ew_expm1(x) EW_GF(x, vm_expm1f, vm_expm1_d)(x)
#define ew_log(x) EW_GF(x, vm_logf, vm_log_d)(x)
#define ew_log1p(x) EW_GF(x, vm_log1pf, vm_log1p_d)(x)
#define ew_tanh(x) EW_GF(x, vm_tanhf, vm_tanh_d)(x)
#define ew_sigmoid(x) EW_GF(x, vm_sigmoidf, ew_sigmoid_f64)(x)
#define ew_erf(x) EW_GF(x, vm_erff, erf)(x)
#define ew_gelu(x) EW_GF(x, vm_geluf, ew_gelu_f64)(x)
#define ew_floor(x) EW_GF(x, vm_floorf, vm_floor)(x)
#define ew_ceil(x) EW_GF(x, vm_ceilf, vm_ceil)(x)
#define ew_trunc(x) EW_GF(x, truncf, trunc)(x)
#define ew_rint(x) EW_GF(x, vm_rintf, vm_rint)(x)
#define ew_fpow(x, y) EW_GF(x, powf, pow)(x, y)
#define ew_floordiv(x, y)                                                       \
    _Generic((x), int32_t: ew_floordiv_i32, int64_t: ew_floordiv_i64,           \
             float: ew_floordiv_f32, double: ew_floordiv_f64)(x, y)
#define ew_fmod(x, y)                                                           \
    _Generic((x), int32_t: ew_fmod_i32, int64_t: ew_fmod_i64, float: fmodf,     \
             double: fmod)(x, y)
#define ew_mod(x, y)                                                            \
    _Generic((x), int32_t: ew_mod_i32, int64_t: ew_mod_i64, float: ew_mod_f32,  \
             double: ew_mod_f64)(x, y)
#define ew_ipow(x, y) _Generic((x), int32_t: ew_pow_i32, int64_t: ew_pow_i64)(x, y)

/* ---------------------------------------------------------------- rows */

#define EW_UNARY_ROWS(X)                                                        \
    X(NEG, I, T, (T)(0 - (U)x))                                                 \
    X(NEG, F, T, -x)                                                            \
    X(ABS, B, T, x)                                                             \
    X(ABS, I, T, x < 0 ? (T)(0 - (U)x) : x)                                     \
    X(ABS, F, T, ew_fabs(x))                                                    \
    X(EXP, F, T, ew_exp(x))                                                     \
    X(LOG, F, T, ew_log(x))                                                     \
    X(LOG1P, F, T, ew_log1p(x))                                                 \
    X(EXPM1, F, T, ew_expm1(x))                                                 \
    X(SIN, D, T, sin(x))                                                        \
    X(COS, D, T, cos(x))                                                        \
    X(TANH, F, T, ew_tanh(x))                                                   \
    X(SIGMOID, F, T, ew_sigmoid(x))                                             \
    X(RELU, B, T, x)                                                            \
    X(RELU, I, T, x > 0 ? x : 0)                                                \
    X(RELU, F, T, (x > 0 || x != x) ? x : 0)                                    \
    X(GELU, F, T, ew_gelu(x))                                                   \
    X(ERF, F, T, ew_erf(x))                                                     \
    X(TAN, F, T, (T)tan((double)x))                                             \
    X(ARCSIN, F, T, (T)asin((double)x))                                         \
    X(ARCCOS, F, T, (T)acos((double)x))                                         \
    X(ARCTAN, F, T, EW_GF(x, vm_atanf, vm_atan_d)(x))                           \
    X(SINH, F, T, EW_GF(x, vm_sinhf, vm_sinh_d)(x))                             \
    X(COSH, F, T, EW_GF(x, vm_coshf, vm_cosh_d)(x))                             \
    X(ARCSINH, F, T, (T)asinh((double)x))                                       \
    X(ARCCOSH, F, T, (T)acosh((double)x))                                       \
    X(ARCTANH, F, T, (T)atanh((double)x))                                       \
    X(LOG2, F, T, EW_GF(x, vm_log2f, vm_log2_d)(x))                             \
    X(LOG10, F, T, EW_GF(x, vm_log10f, vm_log10_d)(x))                          \
    X(EXP2, F, T, EW_GF(x, vm_exp2f, vm_exp2_d)(x))                             \
    X(CBRT, F, T, EW_GF(x, vm_cbrtf, vm_cbrt_d)(x))                             \
    X(FLOOR, BI, T, x)                                                          \
    X(FLOOR, F, T, ew_floor(x))                                                 \
    X(CEIL, BI, T, x)                                                           \
    X(CEIL, F, T, ew_ceil(x))                                                   \
    X(TRUNC, BI, T, x)                                                          \
    X(TRUNC, F, T, ew_trunc(x))                                                 \
    X(RINT, BI, T, x)                                                           \
    X(RINT, F, T, ew_rint(x))                                                   \
    X(SIGN, I, T, (x > 0) - (x < 0))                                            \
    X(SIGN, F, T, x > 0 ? (T)1 : x < 0 ? (T)-1 : x == 0 ? (T)0 : x)             \
    X(LOGICAL_NOT, B, B, !x)                                                    \
    X(BIT_NOT, B, T, !x)                                                        \
    X(BIT_NOT, I, T, ~x)                                                        \
    X(CAST, A, T, x)                                                            \
    X(COPY, A, T, x)

#define EW_BINARY_ROWS(X)                                                       \
    X(ADD, B, T, x | y)                                                         \
    X(ADD, I, T, (T)((U)x + (U)y))                                              \
    X(ADD, F, T, x + y)                                                         \
    X(SUB, I, T, (T)((U)x - (U)y))                                              \
    X(SUB, F, T, x - y)                                                         \
    X(MUL, B, T, x & y)                                                         \
    X(MUL, I, T, (T)((U)x * (U)y))                                              \
    X(MUL, F, T, x * y)                                                         \
    X(DIV, F, T, x / y)                                                         \
    X(FLOOR_DIV, I, T, (err |= EW_FLAG(y == 0, XCS_EW_ERR_ZERO_DIV), ew_floordiv(x, y))) \
    X(FLOOR_DIV, F, T, ew_floordiv(x, y))                                       \
    X(MOD, I, T, (err |= EW_FLAG(y == 0, XCS_EW_ERR_ZERO_DIV), ew_mod(x, y)))   \
    X(MOD, F, T, ew_mod(x, y))                                                  \
    X(POW, I, T, (err |= EW_FLAG(y < 0, XCS_EW_ERR_NEG_POW), ew_ipow(x, y)))    \
    X(POW, F, T, ew_fpow(x, y))                                                 \
    X(MAXIMUM, B, T, x | y)                                                     \
    X(MAXIMUM, I, T, x > y ? x : y)                                             \
    X(MAXIMUM, F, T, (x > y || x != x) ? x : y)                                 \
    X(MINIMUM, B, T, x & y)                                                     \
    X(MINIMUM, I, T, x < y ? x : y)                                             \
    X(MINIMUM, F, T, (x < y || x != x) ? x : y)                                 \
    X(ARCTAN2, F, T, (T)atan2((double)x, (double)y))                            \
    X(HYPOT, F, T, (T)hypot((double)x, (double)y))                              \
    X(FMOD, I, T, (err |= EW_FLAG(y == 0, XCS_EW_ERR_ZERO_DIV), ew_fmod(x, y))) \
    X(FMOD, F, T, ew_fmod(x, y))                                                \
    X(COPYSIGN, F, T, EW_GF(x, copysignf, copysign)(x, y))                      \
    X(EQ, A, B, x == y)                                                         \
    X(NE, A, B, x != y)                                                         \
    X(LT, A, B, x < y)                                                          \
    X(LE, A, B, x <= y)                                                         \
    X(GT, A, B, x > y)                                                          \
    X(GE, A, B, x >= y)                                                         \
    X(LOGICAL_AND, B, B, (x != 0) & (y != 0))                                   \
    X(LOGICAL_OR, B, B, (x != 0) | (y != 0))                                    \
    X(LOGICAL_XOR, B, B, (x != 0) ^ (y != 0))                                   \
    X(BIT_AND, BI, T, x & y)                                                    \
    X(BIT_OR, BI, T, x | y)                                                     \
    X(BIT_XOR, BI, T, x ^ y)

/* where(c, y, z): the condition array is bool whatever the compute dtype */
#define EW_TERNARY_ROWS(X) X(WHERE, A, T, c ? y : z)

/* ---------------------------------------------------------------- generators */

/* Class -> (suffix, C type, unsigned twin, dtype) for each member dtype. */
#define EW_CLS_B(M, ...) M(b, uint8_t, uint8_t, XCS_BOOL, __VA_ARGS__)
#define EW_CLS_I(M, ...)                                                        \
    M(i32, int32_t, uint32_t, XCS_I32, __VA_ARGS__)                             \
    M(i64, int64_t, uint64_t, XCS_I64, __VA_ARGS__)
#define EW_CLS_D(M, ...) M(f64, double, uint64_t, XCS_F64, __VA_ARGS__)
#define EW_CLS_F(M, ...) M(f32, float, uint32_t, XCS_F32, __VA_ARGS__) EW_CLS_D(M, __VA_ARGS__)
#define EW_CLS_BI(M, ...) EW_CLS_B(M, __VA_ARGS__) EW_CLS_I(M, __VA_ARGS__)
#define EW_CLS_A(M, ...) EW_CLS_BI(M, __VA_ARGS__) EW_CLS_F(M, __VA_ARGS__)

#define EW_RES_T(TT) TT
#define EW_RES_B(TT) uint8_t

/* The typedefs let row expressions name T and U. */
#define EW_KERNEL_HEAD(OP, SFX, TT, UT, RT)                                     \
    static unsigned k_##OP##_##SFX(int64_t n, const void *a_, const void *b_,   \
                                   const void *c_, void *o_) {                  \
        typedef TT T __attribute__((unused));                                   \
        typedef UT U __attribute__((unused));                                   \
        EW_RES_##RT(TT) *po = o_;                                               \
        unsigned err = 0;

#define EW_KERNEL1(SFX, TT, UT, DT, OP, RT, E)                                  \
    EW_KERNEL_HEAD(OP, SFX, TT, UT, RT)                                         \
        const TT *pa = a_;                                                      \
        (void)b_, (void)c_;                                                     \
        _Pragma("omp simd reduction(|:err)")                                    \
        for (int64_t i = 0; i < n; i++) {                                       \
            TT x = pa[i];                                                       \
            po[i] = (EW_RES_##RT(TT))(E);                                       \
        }                                                                       \
        return err;                                                             \
    }

#define EW_KERNEL2(SFX, TT, UT, DT, OP, RT, E)                                  \
    EW_KERNEL_HEAD(OP, SFX, TT, UT, RT)                                         \
        const TT *pa = a_, *pb = b_;                                            \
        (void)c_;                                                               \
        _Pragma("omp simd reduction(|:err)")                                    \
        for (int64_t i = 0; i < n; i++) {                                       \
            TT x = pa[i], y = pb[i];                                            \
            po[i] = (EW_RES_##RT(TT))(E);                                       \
        }                                                                       \
        return err;                                                             \
    }

/* Both branches are loaded unconditionally so the select is a blend. */
#define EW_KERNEL3(SFX, TT, UT, DT, OP, RT, E)                                  \
    EW_KERNEL_HEAD(OP, SFX, TT, UT, RT)                                         \
        const uint8_t *pc = a_;                                                 \
        const TT *pb = b_, *pd = c_;                                            \
        _Pragma("omp simd reduction(|:err)")                                    \
        for (int64_t i = 0; i < n; i++) {                                       \
            uint8_t c = pc[i];                                                  \
            TT y = pb[i], z = pd[i];                                            \
            po[i] = (EW_RES_##RT(TT))(E);                                       \
        }                                                                       \
        return err;                                                             \
    }

#define EW_DEF1(OP, CLS, RT, E) EW_CLS_##CLS(EW_KERNEL1, OP, RT, E)
#define EW_DEF2(OP, CLS, RT, E) EW_CLS_##CLS(EW_KERNEL2, OP, RT, E)
#define EW_DEF3(OP, CLS, RT, E) EW_CLS_##CLS(EW_KERNEL3, OP, RT, E)
EW_UNARY_ROWS(EW_DEF1)
EW_BINARY_ROWS(EW_DEF2)
EW_TERNARY_ROWS(EW_DEF3)

/* ---------------------------------------------------------------- hand-written */

/* sin/cos float32: vmath.h is exact for |x| <= VM_TRIG_MAX; a block with a
 * larger or non-finite argument goes element by element with libm for those.
 * Blocks keep the common case one vector loop and make in-place safe. */
#define EW_TRIG_BLOCK 64
#define EW_TRIG_KERNEL(OP, VMFN, LIBMFN)                                        \
    static unsigned k_##OP##_f32(int64_t n, const void *a_, const void *b_,     \
                                 const void *c_, void *o_) {                    \
        const float *a = a_;                                                    \
        float *o = o_;                                                          \
        (void)b_, (void)c_;                                                     \
        for (int64_t i0 = 0; i0 < n; i0 += EW_TRIG_BLOCK) {                     \
            int64_t m = n - i0 < EW_TRIG_BLOCK ? n - i0 : EW_TRIG_BLOCK;        \
            const float *x = a + i0;                                            \
            float *y = o + i0;                                                  \
            int big = 0;                                                        \
            _Pragma("omp simd reduction(|:big)")                                \
            for (int64_t j = 0; j < m; j++) big |= !(fabsf(x[j]) <= VM_TRIG_MAX); \
            if (!big) {                                                         \
                _Pragma("omp simd")                                             \
                for (int64_t j = 0; j < m; j++) y[j] = VMFN(x[j]);              \
            } else {                                                            \
                for (int64_t j = 0; j < m; j++) {                               \
                    float v = x[j];                                             \
                    y[j] = fabsf(v) <= VM_TRIG_MAX ? VMFN(v) : LIBMFN(v);       \
                }                                                               \
            }                                                                   \
        }                                                                       \
        return 0;                                                               \
    }
EW_TRIG_KERNEL(SIN, vm_sinf, sinf)
EW_TRIG_KERNEL(COS, vm_cosf, cosf)

/* sqrt, 1/sqrt: with errno semantics (-fmath-errno, the default) gcc keeps
 * sqrt scalar, so on x86 use the vector instruction directly; elsewhere, or
 * when the build has -fno-math-errno, the plain loop vectorises. */
#if EW_SQRT_INTRINSICS && defined(__AVX__)
#define EW_VW_f32 8
#define EW_VW_f64 4
#define EW_VSQRT_f32(p) _mm256_sqrt_ps(_mm256_loadu_ps(p))
#define EW_VSQRT_f64(p) _mm256_sqrt_pd(_mm256_loadu_pd(p))
#define EW_VRSQRT_f32(p) _mm256_div_ps(_mm256_set1_ps(1.0f), EW_VSQRT_f32(p))
#define EW_VRSQRT_f64(p) _mm256_div_pd(_mm256_set1_pd(1.0), EW_VSQRT_f64(p))
#define EW_VSTORE_f32 _mm256_storeu_ps
#define EW_VSTORE_f64 _mm256_storeu_pd
#elif EW_SQRT_INTRINSICS
#define EW_VW_f32 4
#define EW_VW_f64 2
#define EW_VSQRT_f32(p) _mm_sqrt_ps(_mm_loadu_ps(p))
#define EW_VSQRT_f64(p) _mm_sqrt_pd(_mm_loadu_pd(p))
#define EW_VRSQRT_f32(p) _mm_div_ps(_mm_set1_ps(1.0f), EW_VSQRT_f32(p))
#define EW_VRSQRT_f64(p) _mm_div_pd(_mm_set1_pd(1.0), EW_VSQRT_f64(p))
#define EW_VSTORE_f32 _mm_storeu_ps
#define EW_VSTORE_f64 _mm_storeu_pd
#endif
#if EW_SQRT_INTRINSICS
#define EW_SQRT_VLOOP(SFX, VOP)                                                 \
    for (; i + EW_VW_##SFX <= n; i += EW_VW_##SFX) EW_VSTORE_##SFX(o + i, VOP(a + i));
#else
#define EW_SQRT_VLOOP(SFX, VOP)
#endif

#define EW_SQRT_KERNEL(OP, SFX, T, SQRT, INV, VOP)                              \
    static unsigned k_##OP##_##SFX(int64_t n, const void *a_, const void *b_,   \
                                   const void *c_, void *o_) {                  \
        const T *a = a_;                                                        \
        T *o = o_;                                                              \
        int64_t i = 0;                                                          \
        (void)b_, (void)c_;                                                     \
        EW_SQRT_VLOOP(SFX, VOP)                                                 \
        _Pragma("omp simd")                                                     \
        for (int64_t j = i; j < n; j++) o[j] = INV ? (T)1 / SQRT(a[j]) : SQRT(a[j]); \
        return 0;                                                               \
    }
EW_SQRT_KERNEL(SQRT, f32, float, sqrtf, 0, EW_VSQRT_f32)
EW_SQRT_KERNEL(SQRT, f64, double, sqrt, 0, EW_VSQRT_f64)
EW_SQRT_KERNEL(RSQRT, f32, float, sqrtf, 1, EW_VRSQRT_f32)
EW_SQRT_KERNEL(RSQRT, f64, double, sqrt, 1, EW_VRSQRT_f64)

/* ---------------------------------------------------------------- the table */

#define EW_ENTRY(SFX, TT, UT, DT, OP, RT, E) [XCS_OP_##OP][DT] = k_##OP##_##SFX,
#define EW_ROW(OP, CLS, RT, E) EW_CLS_##CLS(EW_ENTRY, OP, RT, E)

static const xcs_ew_kernel ew_table[XCS_OP_COUNT][XCS_DTYPE_COUNT] = {
    EW_UNARY_ROWS(EW_ROW)
    EW_BINARY_ROWS(EW_ROW)
    EW_TERNARY_ROWS(EW_ROW)
    [XCS_OP_SIN][XCS_F32] = k_SIN_f32,
    [XCS_OP_COS][XCS_F32] = k_COS_f32,
    [XCS_OP_SQRT][XCS_F32] = k_SQRT_f32,
    [XCS_OP_SQRT][XCS_F64] = k_SQRT_f64,
    [XCS_OP_RSQRT][XCS_F32] = k_RSQRT_f32,
    [XCS_OP_RSQRT][XCS_F64] = k_RSQRT_f64,
};

static bool ew_is_logic(xcs_op op) {
    const xcs_op_info *info = xcs_op_get_info(op);
    return info && info->rule == XCS_RULE_LOGIC;
}

xcs_ew_kernel xcs_ew_kernel_get(xcs_op op, xcs_dtype compute) {
    if ((unsigned)op >= XCS_OP_COUNT || (unsigned)compute >= XCS_DTYPE_COUNT) return NULL;
    return ew_table[op][ew_is_logic(op) ? XCS_BOOL : compute];
}

xcs_dtype xcs_ew_in_dtype(xcs_op op, int k, xcs_dtype compute) {
    if (ew_is_logic(op) || (op == XCS_OP_WHERE && k == 0)) return XCS_BOOL;
    return compute;
}

xcs_dtype xcs_ew_out_dtype(xcs_op op, xcs_dtype compute) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (info && (info->rule == XCS_RULE_CMP || info->rule == XCS_RULE_LOGIC)) return XCS_BOOL;
    return compute;
}

/* ---------------------------------------------------------------- converters */

/* Float -> int: C's cast is UB out of range, so in-range values are cast and
 * the rest (NaN included) become INT_MIN, as cvttss2si gives numpy on x86.
 * The bounds are exact: floats in (-2^31 - 1, 2^31) truncate into int32. */
static inline int32_t ew_f32_i32(float v) {
    int ok = v >= -0x1p31f && v < 0x1p31f;
    int32_t r = (int32_t)(ok ? v : 0.0f);
    return ok ? r : INT32_MIN;
}
static inline int64_t ew_f32_i64(float v) {
    int ok = v >= -0x1p63f && v < 0x1p63f;
    int64_t r = (int64_t)(ok ? v : 0.0f);
    return ok ? r : INT64_MIN;
}
static inline int32_t ew_f64_i32(double v) {
    int ok = v > -2147483649.0 && v < 2147483648.0;
    int32_t r = (int32_t)(ok ? v : 0.0);
    return ok ? r : INT32_MIN;
}
static inline int64_t ew_f64_i64(double v) {
    int ok = v >= -0x1p63 && v < 0x1p63;
    int64_t r = (int64_t)(ok ? v : 0.0);
    return ok ? r : INT64_MIN;
}

/* EW_CV_<from>_<to>(v): one element. */
#define EW_CV_b_b(v) (uint8_t)((v) != 0)
#define EW_CV_b_i32(v) (int32_t)((v) != 0)
#define EW_CV_b_i64(v) (int64_t)((v) != 0)
#define EW_CV_b_f32(v) (float)((v) != 0)
#define EW_CV_b_f64(v) (double)((v) != 0)
#define EW_CV_i32_b(v) (uint8_t)((v) != 0)
#define EW_CV_i32_i32(v) (v)
#define EW_CV_i32_i64(v) (int64_t)(v)
#define EW_CV_i32_f32(v) (float)(v)
#define EW_CV_i32_f64(v) (double)(v)
#define EW_CV_i64_b(v) (uint8_t)((v) != 0)
#define EW_CV_i64_i32(v) (int32_t)(uint32_t)(v) /* wraps (gcc/clang define it) */
#define EW_CV_i64_i64(v) (v)
#define EW_CV_i64_f32(v) (float)(v)
#define EW_CV_i64_f64(v) (double)(v)
#define EW_CV_f32_b(v) (uint8_t)((v) != 0)
#define EW_CV_f32_i32(v) ew_f32_i32(v)
#define EW_CV_f32_i64(v) ew_f32_i64(v)
#define EW_CV_f32_f32(v) (v)
#define EW_CV_f32_f64(v) (double)(v)
#define EW_CV_f64_b(v) (uint8_t)((v) != 0)
#define EW_CV_f64_i32(v) ew_f64_i32(v)
#define EW_CV_f64_i64(v) ew_f64_i64(v)
#define EW_CV_f64_f32(v) (float)(v)
#define EW_CV_f64_f64(v) (v)

/* float16 (h) and bfloat16 (bh): through half.h, exact both ways; ints
 * reach them through float64 (exact for int32; an int64 past 2^53 is far
 * past both ranges' precision, and past float16's range). */
#define EW_CV_h_b(v) (uint8_t)(((v) & 0x7fffu) != 0)
#define EW_CV_h_i32(v) ew_f32_i32(xcs_f16_to_f32(v))
#define EW_CV_h_i64(v) ew_f32_i64(xcs_f16_to_f32(v))
#define EW_CV_h_f32(v) xcs_f16_to_f32(v)
#define EW_CV_h_f64(v) (double)xcs_f16_to_f32(v)
#define EW_CV_h_h(v) (v)
#define EW_CV_h_bh(v) xcs_f32_to_bf16(xcs_f16_to_f32(v))
#define EW_CV_bh_b(v) (uint8_t)(((v) & 0x7fffu) != 0)
#define EW_CV_bh_i32(v) ew_f32_i32(xcs_bf16_to_f32(v))
#define EW_CV_bh_i64(v) ew_f32_i64(xcs_bf16_to_f32(v))
#define EW_CV_bh_f32(v) xcs_bf16_to_f32(v)
#define EW_CV_bh_f64(v) (double)xcs_bf16_to_f32(v)
#define EW_CV_bh_h(v) xcs_f32_to_f16(xcs_bf16_to_f32(v))
#define EW_CV_bh_bh(v) (v)
#define EW_CV_b_h(v) (uint16_t)((v) != 0 ? 0x3c00u : 0u)
#define EW_CV_b_bh(v) (uint16_t)((v) != 0 ? 0x3f80u : 0u)
#define EW_CV_i32_h(v) xcs_f64_to_f16((double)(v))
#define EW_CV_i32_bh(v) xcs_f64_to_bf16((double)(v))
#define EW_CV_i64_h(v) xcs_f64_to_f16((double)(v))
#define EW_CV_i64_bh(v) xcs_f64_to_bf16((double)(v))
#define EW_CV_f32_h(v) xcs_f32_to_f16(v)
#define EW_CV_f32_bh(v) xcs_f32_to_bf16(v)
#define EW_CV_f64_h(v) xcs_f64_to_f16(v)
#define EW_CV_f64_bh(v) xcs_f64_to_bf16(v)

#define EW_DTYPES_FROM(M, ...)                                                  \
    M(b, uint8_t, XCS_BOOL, __VA_ARGS__) M(i32, int32_t, XCS_I32, __VA_ARGS__)  \
    M(i64, int64_t, XCS_I64, __VA_ARGS__) M(f32, float, XCS_F32, __VA_ARGS__)   \
    M(f64, double, XCS_F64, __VA_ARGS__) M(h, uint16_t, XCS_F16, __VA_ARGS__)   \
    M(bh, uint16_t, XCS_BF16, __VA_ARGS__)
#define EW_DTYPES_TO(M, ...)                                                    \
    M(b, uint8_t, XCS_BOOL, __VA_ARGS__) M(i32, int32_t, XCS_I32, __VA_ARGS__)  \
    M(i64, int64_t, XCS_I64, __VA_ARGS__) M(f32, float, XCS_F32, __VA_ARGS__)   \
    M(f64, double, XCS_F64, __VA_ARGS__) M(h, uint16_t, XCS_F16, __VA_ARGS__)   \
    M(bh, uint16_t, XCS_BF16, __VA_ARGS__)

#define EW_CONV_FN(d, D, DD, s, S, SD)                                          \
    static void cv_##s##_##d(int64_t n, const void *src, int64_t st, void *dst) { \
        const S *p = src;                                                       \
        D *q = dst;                                                             \
        if (st == 1) {                                                          \
            _Pragma("omp simd")                                                 \
            for (int64_t i = 0; i < n; i++) q[i] = EW_CV_##s##_##d(p[i]);       \
        } else {                                                                \
            for (int64_t i = 0; i < n; i++) q[i] = EW_CV_##s##_##d(p[i * st]);  \
        }                                                                       \
    }
#define EW_CONV_FROM(s, S, SD, _) EW_DTYPES_TO(EW_CONV_FN, s, S, SD)
EW_DTYPES_FROM(EW_CONV_FROM, _)

#define EW_CONV_ENT(d, D, DD, s, S, SD) [SD][DD] = cv_##s##_##d,
#define EW_CONV_ROW(s, S, SD, _) EW_DTYPES_TO(EW_CONV_ENT, s, S, SD)
static const xcs_ew_convert_fn ew_conv[XCS_DTYPE_COUNT][XCS_DTYPE_COUNT] = {
    EW_DTYPES_FROM(EW_CONV_ROW, _)
};

/* float16 <-> float32 with the F16C instructions (8 per instruction; the
 * branch-free half.h code does not vectorise as well: 36 vs ~4 ms for 2^24
 * elements).  Both are IEEE conversions, ties to even, like half.h. */
#if defined(__F16C__) && defined(__AVX__)
#define EW_F16C 1
static void cv_h_f32_f16c(int64_t n, const void *src, int64_t st, void *dst) {
    const uint16_t *p = src;
    float *q = dst;
    int64_t i = 0;
    if (st == 1)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(q + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + i))));
    for (; i < n; i++) q[i] = xcs_f16_to_f32(p[i * st]);
}
static void cv_f32_h_f16c(int64_t n, const void *src, int64_t st, void *dst) {
    const float *p = src;
    uint16_t *q = dst;
    int64_t i = 0;
    if (st == 1)
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(void *)(q + i),
                             _mm256_cvtps_ph(_mm256_loadu_ps(p + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) q[i] = xcs_f32_to_f16(p[i * st]);
}
#else
#define EW_F16C 0
#endif

xcs_ew_convert_fn xcs_ew_convert_portable(xcs_dtype from, xcs_dtype to) {
    if ((unsigned)from >= XCS_DTYPE_COUNT || (unsigned)to >= XCS_DTYPE_COUNT) return NULL;
    return ew_conv[from][to];
}

xcs_ew_convert_fn xcs_ew_convert_get(xcs_dtype from, xcs_dtype to) {
#if EW_F16C
    if (from == XCS_F16 && to == XCS_F32) return cv_h_f32_f16c;
    if (from == XCS_F32 && to == XCS_F16) return cv_f32_h_f16c;
#endif
    return xcs_ew_convert_portable(from, to);
}
