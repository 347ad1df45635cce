/* codegen.c — fused programs to CUDA C (see codegen.h). */
#include "codegen.h"
#include "half.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- a string builder */

typedef struct sb {
    char *buf;
    size_t cap, len; /* len: bytes wanted so far (may pass cap) */
} sb;

static void sb_put(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(sb *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->len < s->cap ? s->cap - s->len : 0;
    int n = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) s->len += (size_t)n;
}

/* ---------------------------------------------------------------- the prelude */

/* Types, numpy-faithful helpers (the same formulas as src/host/ew_kernels.c)
 * and converters (float -> int out of range or NaN gives INT_MIN, as x86
 * gives numpy; int64 -> int32 wraps). */
static const char prelude_head[] =
    "typedef unsigned char xcs_b;\n"
    "#define XCS_INF_F __int_as_float(0x7f800000)\n"
    "#define XCS_INF_D __longlong_as_double(0x7ff0000000000000LL)\n";

static const char *const unary_math[] = {"exp",  "log",  "log1p", "expm1", "sqrt",  "sin",  "cos",  "tanh",
                                         "erf",  "erfc", "floor", "ceil",  "fabs",  "tan",  "asin", "acos",
                                         "atan", "sinh", "cosh",  "asinh", "acosh", "atanh", "log2", "log10",
                                         "exp2", "cbrt", "trunc", "rint"};
static const char *const binary_math[] = {"pow", "fmod", "copysign", "atan2", "hypot"};

static const char prelude_tail[] =
    "template <class T> __device__ __forceinline__ T xcs_sigmoid(T x) {\n"
    "    T e = xcs_exp(-xcs_fabs(x));\n"
    "    return (x >= 0 ? (T)1 : e) / ((T)1 + e);\n"
    "}\n"
    "template <class T> __device__ __forceinline__ T xcs_gelu(T x) {\n"
    "    if (x < (T)-40) return (T)-0.0;\n"
    "    const T r = (T)0.70710678118654752440;\n"
    "    return x >= 0 ? (T)0.5 * x * ((T)1 + xcs_erf(x * r)) : (T)0.5 * x * xcs_erfc(-x * r);\n"
    "}\n"
    "template <class T> __device__ __forceinline__ T xcs_ffloordiv(T a, T b) {\n"
    "    if (b == 0) return a / b;\n"
    "    T mod = xcs_fmod(a, b), div = (a - mod) / b;\n"
    "    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;\n"
    "    if (div == 0) return xcs_copysign((T)0, a / b);\n"
    "    T fd = xcs_floor(div);\n"
    "    return div - fd > (T)0.5 ? fd + 1 : fd;\n"
    "}\n"
    "template <class T> __device__ __forceinline__ T xcs_fmodpy(T a, T b) {\n"
    "    T mod = xcs_fmod(a, b);\n"
    "    if (b == 0) return mod;\n"
    "    if (mod == 0) return xcs_copysign((T)0, b);\n"
    "    return ((b < 0) != (mod < 0)) ? mod + b : mod;\n"
    "}\n"
    "template <class T, class U> __device__ __forceinline__ T xcs_ifloordiv(T a, T b) {\n"
    "    if (b == 0) return 0;\n"
    "    if (b == -1) return (T)((U)0 - (U)a);\n"
    "    T q = a / b;\n"
    "    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;\n"
    "}\n"
    "template <class T> __device__ __forceinline__ T xcs_imod(T a, T b) {\n"
    "    if (b == 0 || b == -1) return 0;\n"
    "    T r = a % b;\n"
    "    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n"
    "}\n"
    "template <class T, class U> __device__ __forceinline__ T xcs_ipow_(T a, T b) {\n"
    "    if (b < 0) return 0;\n"
    "    U r = 1, base = (U)a;\n"
    "    for (; b; b >>= 1) {\n"
    "        if (b & 1) r *= base;\n"
    "        base *= base;\n"
    "    }\n"
    "    return (T)r;\n"
    "}\n"
    "__device__ __forceinline__ int xcs_floordiv(int a, int b) { return xcs_ifloordiv<int, unsigned>(a, b); }\n"
    "__device__ __forceinline__ long long xcs_floordiv(long long a, long long b) {\n"
    "    return xcs_ifloordiv<long long, unsigned long long>(a, b);\n"
    "}\n"
    "__device__ __forceinline__ float xcs_floordiv(float a, float b) { return xcs_ffloordiv(a, b); }\n"
    "__device__ __forceinline__ double xcs_floordiv(double a, double b) { return xcs_ffloordiv(a, b); }\n"
    "__device__ __forceinline__ int xcs_mod(int a, int b) { return xcs_imod(a, b); }\n"
    "__device__ __forceinline__ long long xcs_mod(long long a, long long b) { return xcs_imod(a, b); }\n"
    "__device__ __forceinline__ float xcs_mod(float a, float b) { return xcs_fmodpy(a, b); }\n"
    "__device__ __forceinline__ double xcs_mod(double a, double b) { return xcs_fmodpy(a, b); }\n"
    "__device__ __forceinline__ int xcs_ipow(int a, int b) { return xcs_ipow_<int, unsigned>(a, b); }\n"
    "__device__ __forceinline__ long long xcs_ipow(long long a, long long b) {\n"
    "    return xcs_ipow_<long long, unsigned long long>(a, b);\n"
    "}\n"
    "template <class To, class From> __device__ __forceinline__ To xcs_cv(From v) { return (To)v; }\n"
    "template <> __device__ __forceinline__ xcs_b xcs_cv<xcs_b, xcs_b>(xcs_b v) { return v != 0; }\n"
    "template <> __device__ __forceinline__ xcs_b xcs_cv<xcs_b, int>(int v) { return v != 0; }\n"
    "template <> __device__ __forceinline__ xcs_b xcs_cv<xcs_b, long long>(long long v) { return v != 0; }\n"
    "template <> __device__ __forceinline__ xcs_b xcs_cv<xcs_b, float>(float v) { return v != 0; }\n"
    "template <> __device__ __forceinline__ xcs_b xcs_cv<xcs_b, double>(double v) { return v != 0; }\n"
    "template <> __device__ __forceinline__ int xcs_cv<int, long long>(long long v) { return (int)(unsigned)v; }\n"
    "template <> __device__ __forceinline__ int xcs_cv<int, float>(float v) {\n"
    "    return (v >= -0x1p31f && v < 0x1p31f) ? (int)v : (int)0x80000000u;\n"
    "}\n"
    "template <> __device__ __forceinline__ long long xcs_cv<long long, float>(float v) {\n"
    "    return (v >= -0x1p63f && v < 0x1p63f) ? (long long)v : (long long)0x8000000000000000ull;\n"
    "}\n"
    "template <> __device__ __forceinline__ int xcs_cv<int, double>(double v) {\n"
    "    return (v > -2147483649.0 && v < 2147483648.0) ? (int)v : (int)0x80000000u;\n"
    "}\n"
    "template <> __device__ __forceinline__ long long xcs_cv<long long, double>(double v) {\n"
    "    return (v >= -0x1p63 && v < 0x1p63) ? (long long)v : (long long)0x8000000000000000ull;\n"
    "}\n";

/* float16 and bfloat16 are storage types (xcs computes in float32): two
 * distinct structs, so that xcs_cv specialises on each and a conversion not
 * written below fails to compile instead of reading the bits as an integer.
 * Their vector twins are the vec4 variant's 8-byte loads.  The conversions
 * are src/core/half.h's (its XCS_HALF_CV_SOURCE body, stringified: the
 * host's own code), composed as the CPU's converters do (ew_kernels.c):
 * to an int through float32's rules, from an int through float64, between
 * the two through float32 (exact, then one rounding). */
#define XCS_TEXT_(...) #__VA_ARGS__
#define XCS_TEXT(...) XCS_TEXT_(__VA_ARGS__)
static const char prelude_half_head[] =
    "struct xcs_h { unsigned short x; };\n"
    "struct xcs_bh { unsigned short x; };\n"
    "struct alignas(8) xcs_h4 { xcs_h x, y, z, w; };\n"
    "struct alignas(8) xcs_bh4 { xcs_bh x, y, z, w; };\n"
    "__device__ __forceinline__ unsigned int xcs_hc_f2u(float f) { return __float_as_uint(f); }\n"
    "__device__ __forceinline__ float xcs_hc_u2f(unsigned int u) { return __uint_as_float(u); }\n"
    "__device__ __forceinline__ unsigned long long xcs_hc_d2u(double d) {\n"
    "    return (unsigned long long)__double_as_longlong(d);\n"
    "}\n";
static const char prelude_half_cv[] = XCS_TEXT(XCS_HALF_CV_SOURCE(__device__ __forceinline__)) "\n";

/* The xcs_cv specialisations of one 16-bit float type t (its half.h
 * suffix sfx, the bits of 1.0 one) and, for the second, of the pair. */
static void put_half_cv(sb *s, const char *t, const char *sfx, unsigned one, const char *other, const char *osfx) {
#define CV "template <> __device__ __forceinline__ "
    sb_put(s, CV "float xcs_cv<float, %s>(%s v) { return xcs_hc_%s_to_f32(v.x); }\n", t, t, sfx);
    sb_put(s, CV "double xcs_cv<double, %s>(%s v) { return (double)xcs_hc_%s_to_f32(v.x); }\n", t, t, sfx);
    sb_put(s, CV "int xcs_cv<int, %s>(%s v) { return xcs_cv<int, float>(xcs_hc_%s_to_f32(v.x)); }\n", t, t, sfx);
    sb_put(s, CV "long long xcs_cv<long long, %s>(%s v) { return xcs_cv<long long, float>(xcs_hc_%s_to_f32(v.x)); }\n",
           t, t, sfx);
    sb_put(s, CV "xcs_b xcs_cv<xcs_b, %s>(%s v) { return (v.x & 0x7fffu) != 0; }\n", t, t);
    sb_put(s, CV "%s xcs_cv<%s, %s>(%s v) { return v; }\n", t, t, t, t);
    sb_put(s, CV "%s xcs_cv<%s, xcs_b>(xcs_b v) { return {(unsigned short)(v != 0 ? 0x%xu : 0u)}; }\n", t, t, one);
    sb_put(s, CV "%s xcs_cv<%s, int>(int v) { return {xcs_hc_f64_to_%s((double)v)}; }\n", t, t, sfx);
    sb_put(s, CV "%s xcs_cv<%s, long long>(long long v) { return {xcs_hc_f64_to_%s((double)v)}; }\n", t, t, sfx);
    sb_put(s, CV "%s xcs_cv<%s, float>(float v) { return {xcs_hc_f32_to_%s(v)}; }\n", t, t, sfx);
    sb_put(s, CV "%s xcs_cv<%s, double>(double v) { return {xcs_hc_f64_to_%s(v)}; }\n", t, t, sfx);
    sb_put(s, CV "%s xcs_cv<%s, %s>(%s v) { return {xcs_hc_f32_to_%s(xcs_hc_%s_to_f32(v.x))}; }\n", other, other, t, t,
           osfx, sfx);
#undef CV
}

static void put_prelude(sb *s) {
    sb_put(s, "%s", prelude_head);
    for (size_t i = 0; i < sizeof unary_math / sizeof *unary_math; i++)
        sb_put(s,
               "__device__ __forceinline__ float xcs_%s(float x) { return %sf(x); }\n"
               "__device__ __forceinline__ double xcs_%s(double x) { return %s(x); }\n",
               unary_math[i], unary_math[i], unary_math[i], unary_math[i]);
    for (size_t i = 0; i < sizeof binary_math / sizeof *binary_math; i++)
        sb_put(s,
               "__device__ __forceinline__ float xcs_%s(float x, float y) { return %sf(x, y); }\n"
               "__device__ __forceinline__ double xcs_%s(double x, double y) { return %s(x, y); }\n",
               binary_math[i], binary_math[i], binary_math[i], binary_math[i]);
    sb_put(s, "%s", prelude_tail);
    sb_put(s, "%s%s", prelude_half_head, prelude_half_cv);
    put_half_cv(s, "xcs_h", "f16", 0x3c00u, "xcs_bh", "bf16");
    put_half_cv(s, "xcs_bh", "bf16", 0x3f80u, "xcs_h", "f16");
    sb_put(s,
           "struct xcs_args {\n"
           "    const void *in[%d];\n"
           "    void *out[%d];\n"
           "    unsigned int *err;\n"
           "    long long n, rn;\n"
           "    long long shape[%d];\n"
           "    long long in_stride[%d][%d];\n"
           "    long long out_stride[%d][%d];\n"
           "};\n",
           XCS_FUSED_MAX_IO, XCS_FUSED_MAX_IO, XCS_MAX_DIMS, XCS_FUSED_MAX_IO, XCS_MAX_DIMS, XCS_FUSED_MAX_IO,
           XCS_MAX_DIMS);
}

/* ---------------------------------------------------------------- the op table */

/* One row per elementwise op: its expression per dtype class (bool, int,
 * float), or NULL where the CPU has no kernel either.  Operands: x, y, z
 * (where: c ? y : z); T is the compute type, U its unsigned twin; `err` is
 * the thread's error word. */
typedef struct cu_op {
    xcs_op op;
    const char *b, *i, *f;
} cu_op;

#define WRAP(e) "(T)((U)x " e " (U)y)"
static const cu_op cu_ops[] = {
    {XCS_OP_NEG, NULL, "(T)((U)0 - (U)x)", "-x"},
    {XCS_OP_ABS, "x", "x < 0 ? (T)((U)0 - (U)x) : x", "xcs_fabs(x)"},
    {XCS_OP_EXP, NULL, NULL, "xcs_exp(x)"},
    {XCS_OP_LOG, NULL, NULL, "xcs_log(x)"},
    {XCS_OP_LOG1P, NULL, NULL, "xcs_log1p(x)"},
    {XCS_OP_EXPM1, NULL, NULL, "xcs_expm1(x)"},
    {XCS_OP_SQRT, NULL, NULL, "xcs_sqrt(x)"},
    {XCS_OP_RSQRT, NULL, NULL, "(T)1 / xcs_sqrt(x)"},
    {XCS_OP_SIN, NULL, NULL, "xcs_sin(x)"},
    {XCS_OP_COS, NULL, NULL, "xcs_cos(x)"},
    {XCS_OP_TANH, NULL, NULL, "xcs_tanh(x)"},
    {XCS_OP_SIGMOID, NULL, NULL, "xcs_sigmoid(x)"},
    {XCS_OP_RELU, "x", "x > 0 ? x : (T)0", "(x > 0 || x != x) ? x : (T)0"},
    {XCS_OP_GELU, NULL, NULL, "xcs_gelu(x)"},
    {XCS_OP_ERF, NULL, NULL, "xcs_erf(x)"},
    {XCS_OP_TAN, NULL, NULL, "xcs_tan(x)"},
    {XCS_OP_ARCSIN, NULL, NULL, "xcs_asin(x)"},
    {XCS_OP_ARCCOS, NULL, NULL, "xcs_acos(x)"},
    {XCS_OP_ARCTAN, NULL, NULL, "xcs_atan(x)"},
    {XCS_OP_SINH, NULL, NULL, "xcs_sinh(x)"},
    {XCS_OP_COSH, NULL, NULL, "xcs_cosh(x)"},
    {XCS_OP_ARCSINH, NULL, NULL, "xcs_asinh(x)"},
    {XCS_OP_ARCCOSH, NULL, NULL, "xcs_acosh(x)"},
    {XCS_OP_ARCTANH, NULL, NULL, "xcs_atanh(x)"},
    {XCS_OP_LOG2, NULL, NULL, "xcs_log2(x)"},
    {XCS_OP_LOG10, NULL, NULL, "xcs_log10(x)"},
    {XCS_OP_EXP2, NULL, NULL, "xcs_exp2(x)"},
    {XCS_OP_CBRT, NULL, NULL, "xcs_cbrt(x)"},
    {XCS_OP_FLOOR, "x", "x", "xcs_floor(x)"},
    {XCS_OP_CEIL, "x", "x", "xcs_ceil(x)"},
    {XCS_OP_TRUNC, "x", "x", "xcs_trunc(x)"},
    {XCS_OP_RINT, "x", "x", "xcs_rint(x)"},
    {XCS_OP_SIGN, NULL, "(T)((x > 0) - (x < 0))", "x > 0 ? (T)1 : x < 0 ? (T)-1 : x == 0 ? (T)0 : x"},
    {XCS_OP_LOGICAL_NOT, "(xcs_b)!x", NULL, NULL},
    {XCS_OP_BIT_NOT, "(xcs_b)!x", "(T)~x", NULL},
    {XCS_OP_ADD, "(xcs_b)(x | y)", WRAP("+"), "x + y"},
    {XCS_OP_SUB, NULL, WRAP("-"), "x - y"},
    {XCS_OP_MUL, "(xcs_b)(x & y)", WRAP("*"), "x * y"},
    {XCS_OP_DIV, NULL, NULL, "x / y"},
    {XCS_OP_FLOOR_DIV, NULL, "(err |= (y == 0) ? 1u : 0u, xcs_floordiv(x, y))", "xcs_floordiv(x, y)"},
    {XCS_OP_MOD, NULL, "(err |= (y == 0) ? 1u : 0u, xcs_mod(x, y))", "xcs_mod(x, y)"},
    {XCS_OP_POW, NULL, "(err |= (y < 0) ? 2u : 0u, xcs_ipow(x, y))", "xcs_pow(x, y)"},
    {XCS_OP_MAXIMUM, "(xcs_b)(x | y)", "x > y ? x : y", "(x > y || x != x) ? x : y"},
    {XCS_OP_MINIMUM, "(xcs_b)(x & y)", "x < y ? x : y", "(x < y || x != x) ? x : y"},
    {XCS_OP_ARCTAN2, NULL, NULL, "xcs_atan2(x, y)"},
    {XCS_OP_HYPOT, NULL, NULL, "xcs_hypot(x, y)"},
    {XCS_OP_FMOD, NULL, "(err |= (y == 0) ? 1u : 0u, y == 0 || y == (T)-1 ? (T)0 : (T)(x % y))", "xcs_fmod(x, y)"},
    {XCS_OP_COPYSIGN, NULL, NULL, "xcs_copysign(x, y)"},
    {XCS_OP_EQ, "(xcs_b)(x == y)", "(xcs_b)(x == y)", "(xcs_b)(x == y)"},
    {XCS_OP_NE, "(xcs_b)(x != y)", "(xcs_b)(x != y)", "(xcs_b)(x != y)"},
    {XCS_OP_LT, "(xcs_b)(x < y)", "(xcs_b)(x < y)", "(xcs_b)(x < y)"},
    {XCS_OP_LE, "(xcs_b)(x <= y)", "(xcs_b)(x <= y)", "(xcs_b)(x <= y)"},
    {XCS_OP_GT, "(xcs_b)(x > y)", "(xcs_b)(x > y)", "(xcs_b)(x > y)"},
    {XCS_OP_GE, "(xcs_b)(x >= y)", "(xcs_b)(x >= y)", "(xcs_b)(x >= y)"},
    {XCS_OP_LOGICAL_AND, "(xcs_b)((x != 0) & (y != 0))", NULL, NULL},
    {XCS_OP_LOGICAL_OR, "(xcs_b)((x != 0) | (y != 0))", NULL, NULL},
    {XCS_OP_LOGICAL_XOR, "(xcs_b)((x != 0) ^ (y != 0))", NULL, NULL},
    {XCS_OP_BIT_AND, "(xcs_b)(x & y)", "(T)(x & y)", NULL},
    {XCS_OP_BIT_OR, "(xcs_b)(x | y)", "(T)(x | y)", NULL},
    {XCS_OP_BIT_XOR, "(xcs_b)(x ^ y)", "(T)(x ^ y)", NULL},
    {XCS_OP_WHERE, "c ? y : z", "c ? y : z", "c ? y : z"},
    {XCS_OP_COPY, "x", "x", "x"},
};
#undef WRAP

/* NULL for float16/bfloat16: ops compute in float32 (xcs_dtype_compute),
 * as the CPU, which has no kernel for them either. */
static const char *op_expr(xcs_op op, xcs_dtype dt) {
    if (xcs_dtype_is_half(dt)) return NULL;
    for (size_t k = 0; k < sizeof cu_ops / sizeof *cu_ops; k++) {
        if (cu_ops[k].op != op) continue;
        return dt == XCS_BOOL ? cu_ops[k].b : xcs_dtype_is_int(dt) ? cu_ops[k].i : cu_ops[k].f;
    }
    return NULL;
}

static const char *ctype(xcs_dtype dt) {
    switch (dt) {
    case XCS_BOOL: return "xcs_b";
    case XCS_I32: return "int";
    case XCS_I64: return "long long";
    case XCS_F32: return "float";
    case XCS_F64: return "double";
    case XCS_F16: return "xcs_h";
    case XCS_BF16: return "xcs_bh";
    default: return NULL;
    }
}

/* A zero of dt's type (padding for loads past the end). */
static const char *czero(xcs_dtype dt) {
    switch (dt) {
    case XCS_BOOL: return "(xcs_b)0";
    case XCS_I32: return "(int)0";
    case XCS_I64: return "(long long)0";
    case XCS_F32: return "(float)0";
    case XCS_F64: return "(double)0";
    case XCS_F16: return "xcs_h{}";
    case XCS_BF16: return "xcs_bh{}";
    default: return NULL;
    }
}

/* The vec4 variant's vector of four dt (16 bytes for 4-byte types, 8 for
 * the 16-bit floats); NULL where there is none. */
static const char *ctype4(xcs_dtype dt) {
    switch (dt) {
    case XCS_I32: return "int4";
    case XCS_F32: return "float4";
    case XCS_F16: return "xcs_h4";
    case XCS_BF16: return "xcs_bh4";
    default: return NULL;
    }
}

static const char *utype(xcs_dtype dt) {
    switch (dt) {
    case XCS_I32: return "unsigned";
    case XCS_I64: return "unsigned long long";
    case XCS_BOOL: return "xcs_b";
    default: return "unsigned";
    }
}

static bool is_logic(xcs_op op) {
    const xcs_op_info *info = xcs_op_get_info(op);
    return info && info->rule == XCS_RULE_LOGIC;
}

static xcs_dtype out_dtype(xcs_op op, xcs_dtype compute) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (info && (info->rule == XCS_RULE_CMP || info->rule == XCS_RULE_LOGIC)) return XCS_BOOL;
    return compute;
}

static int arity(xcs_op op) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (!info) return -1;
    switch (info->kind) {
    case XCS_KIND_UNARY: return 1;
    case XCS_KIND_COPY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return -1;
    }
}

/* ---------------------------------------------------------------- the body */

typedef struct cg {
    const xcs_cuda_spec *spec;
    const xcs_fused_program *p;
    xcs_dtype reg_dt[XCS_FUSED_MAX_REGS];
    int reg_var[XCS_FUSED_MAX_REGS]; /* instruction whose variable holds the register */
    bool in_used[XCS_FUSED_MAX_IO], out_used[XCS_FUSED_MAX_IO];
    unsigned preloaded; /* bit k: input k's element is already in p<k> (the unrolled flat loop) */
    char vec_comp;      /* the vec4 variant: STOREs write component vec_comp of o<k> */
    bool store_var;     /* row chains: STOREs write variable o<k> */
    const xcs_cuda_scan_spec *scan; /* a scan loop: operands move by t * step; carries in registers */
} cg;

#define CG_BAD(...) (xcs_error(XCS_ERR_VALUE, "CUDA codegen: " __VA_ARGS__), false)

/* Checks the program and records which operands are read/written. */
static bool cg_check(cg *c) {
    const xcs_fused_program *p = c->p;
    bool def[XCS_FUSED_MAX_REGS] = {false};
    if (p->ndim < 0 || p->ndim > XCS_MAX_DIMS || p->n_inputs < 0 || p->n_inputs > XCS_FUSED_MAX_IO ||
        p->n_outputs < 0 || p->n_outputs > XCS_FUSED_MAX_IO || p->n_regs < 0 || p->n_regs > XCS_FUSED_MAX_REGS ||
        p->n_instr < 1 || p->n_instr > XCS_FUSED_MAX_INSTR)
        return CG_BAD("malformed program (%d dims, %d inputs, %d outputs, %d registers, %d instructions)", p->ndim,
                      p->n_inputs, p->n_outputs, p->n_regs, p->n_instr);
    for (int k = 0; k < p->n_inputs; k++)
        if (!ctype(c->spec->in_dtype[k])) return CG_BAD("input %d has no CUDA type", k);
    for (int k = 0; k < p->n_outputs; k++)
        if (!ctype(c->spec->out_dtype[k])) return CG_BAD("output %d has no CUDA type", k);
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        bool reads = in->kind != XCS_FUSED_LOAD;
        if (reads && (in->a < 0 || in->a >= p->n_regs || !def[in->a]))
            return CG_BAD("instruction %d reads register %d before it is written", i, in->a);
        switch (in->kind) {
        case XCS_FUSED_LOAD:
            if (in->a < 0 || in->a >= p->n_inputs) return CG_BAD("instruction %d loads input %d", i, in->a);
            if (!ctype(in->dtype)) return CG_BAD("instruction %d has no CUDA type", i);
            c->in_used[in->a] = true;
            break;
        case XCS_FUSED_OP: {
            int n = arity(in->op);
            if (n < 0) return CG_BAD("instruction %d: %s is not elementwise", i, xcs_op_name(in->op));
            const int r[3] = {in->a, in->b, in->c};
            for (int k = 1; k < n; k++)
                if (r[k] < 0 || r[k] >= p->n_regs || !def[r[k]])
                    return CG_BAD("instruction %d reads register %d before it is written", i, r[k]);
            if (!op_expr(in->op, is_logic(in->op) ? XCS_BOOL : in->dtype))
                return xcs_error(XCS_ERR_TYPE, "%s: not supported for dtype %s", xcs_op_name(in->op),
                                 xcs_dtype_name(in->dtype)),
                       false;
            break;
        }
        case XCS_FUSED_CAST:
            if (!ctype(in->dtype) || !ctype(in->src_dtype)) return CG_BAD("instruction %d has no CUDA type", i);
            break;
        case XCS_FUSED_STORE:
        case XCS_FUSED_REDUCE:
            if (in->dst < 0 || in->dst >= p->n_outputs) return CG_BAD("instruction %d writes output %d", i, in->dst);
            if (in->kind == XCS_FUSED_REDUCE &&
                (i != p->n_instr - 1 || (in->op != XCS_OP_SUM && in->op != XCS_OP_PROD && in->op != XCS_OP_MAX &&
                                         in->op != XCS_OP_MIN)))
                return CG_BAD("REDUCE must be the last instruction and one of sum/prod/max/min");
            if (in->kind == XCS_FUSED_REDUCE && (p->reduce_axes >> p->ndim))
                return CG_BAD("reduce_axes 0x%x past %d dims", p->reduce_axes, p->ndim);
            c->out_used[in->dst] = true;
            break;
        default: return CG_BAD("instruction %d has unknown kind %d", i, (int)in->kind);
        }
        bool writes = in->kind == XCS_FUSED_LOAD || in->kind == XCS_FUSED_OP || in->kind == XCS_FUSED_CAST;
        if (writes) {
            if (in->dst < 0 || in->dst >= p->n_regs) return CG_BAD("instruction %d writes register %d", i, in->dst);
            def[in->dst] = true;
        }
    }
    if (c->spec->vec4) {
        if (!c->spec->flat) return CG_BAD("the vec4 variant is flat");
        for (int k = 0; k < p->n_inputs; k++)
            if (c->in_used[k] && !(c->spec->scalar_inputs >> k & 1u) && !ctype4(c->spec->in_dtype[k]))
                return CG_BAD("vec4: input %d (%s) has no vector type", k, xcs_dtype_name(c->spec->in_dtype[k]));
        for (int k = 0; k < p->n_outputs; k++)
            if (c->out_used[k] && !ctype4(c->spec->out_dtype[k]))
                return CG_BAD("vec4: output %d (%s) has no vector type", k, xcs_dtype_name(c->spec->out_dtype[k]));
    }
    return true;
}

/* The instructions but a trailing REDUCE, as straight-line code for one
 * element whose operand offsets are oi<k> / oo<k>. */
static void cg_body(cg *c, sb *s, const char *ind) {
    const xcs_fused_program *p = c->p;
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        switch (in->kind) {
        case XCS_FUSED_LOAD: {
            xcs_dtype from = c->spec->in_dtype[in->a];
            if (c->preloaded >> in->a & 1u)
                sb_put(s, "%sconst %s v%d = xcs_cv<%s, %s>(p%d);\n", ind, ctype(in->dtype), i, ctype(in->dtype),
                       ctype(from), in->a);
            else
                sb_put(s, "%sconst %s v%d = xcs_cv<%s, %s>(((const %s *)a.in[%d])[oi%d]);\n", ind, ctype(in->dtype), i,
                       ctype(in->dtype), ctype(from), ctype(from), in->a, in->a);
            c->reg_dt[in->dst] = in->dtype;
            c->reg_var[in->dst] = i;
            break;
        }
        case XCS_FUSED_OP: {
            xcs_dtype cdt = is_logic(in->op) ? XCS_BOOL : in->dtype, odt = out_dtype(in->op, in->dtype);
            const int r[3] = {in->a, in->b, in->c};
            int n = arity(in->op);
            sb_put(s, "%s%s v%d;\n%s{\n%s    typedef %s T;\n%s    typedef %s U;\n", ind, ctype(odt), i, ind, ind,
                   ctype(cdt), ind, utype(cdt));
            static const char *const names[3] = {"x", "y", "z"};
            for (int k = 0; k < n; k++) {
                bool cond = in->op == XCS_OP_WHERE && k == 0;
                /* where(c, y, z): operand 0 is the bool condition c */
                xcs_dtype rk = c->reg_dt[r[k]];
                if (xcs_dtype_is_half(rk)) /* a 16-bit register is read as the op's type (float32) */
                    sb_put(s, "%s    const %s %s = xcs_cv<%s, %s>(v%d);\n", ind, cond ? "xcs_b" : "T",
                           cond ? "c" : names[k], cond ? "xcs_b" : "T", ctype(rk), c->reg_var[r[k]]);
                else
                    sb_put(s, "%s    const %s %s = v%d;\n", ind, cond ? "xcs_b" : "T", cond ? "c" : names[k],
                           c->reg_var[r[k]]);
            }
            sb_put(s, "%s    v%d = (%s)(%s);\n%s}\n", ind, i, ctype(odt), op_expr(in->op, cdt), ind);
            c->reg_dt[in->dst] = odt;
            c->reg_var[in->dst] = i;
            break;
        }
        case XCS_FUSED_CAST:
            sb_put(s, "%sconst %s v%d = xcs_cv<%s, %s>(v%d);\n", ind, ctype(in->dtype), i, ctype(in->dtype),
                   ctype(in->src_dtype), c->reg_var[in->a]);
            c->reg_dt[in->dst] = in->dtype;
            c->reg_var[in->dst] = i;
            break;
        case XCS_FUSED_STORE: {
            xcs_dtype to = c->spec->out_dtype[in->dst];
            if (c->store_var) {
                sb_put(s, "%so%d = xcs_cv<%s, %s>(v%d);\n", ind, in->dst, ctype(to), ctype(c->reg_dt[in->a]),
                       c->reg_var[in->a]);
                break;
            }
            if (c->scan) {
                int q = c->scan->out_carry[in->dst];
                if (q >= 0)
                    sb_put(s, "%sn%d = xcs_cv<%s, %s>(v%d);\n", ind, q, ctype(to), ctype(c->reg_dt[in->a]),
                           c->reg_var[in->a]);
                if (c->scan->out_mem >> in->dst & 1u)
                    sb_put(s, "%s((%s *)a.out[%d])[oo%d + t * a.out_step[%d]] = xcs_cv<%s, %s>(v%d);\n", ind, ctype(to),
                           in->dst, in->dst, in->dst, ctype(to), ctype(c->reg_dt[in->a]), c->reg_var[in->a]);
                break;
            }
            if (c->vec_comp) {
                sb_put(s, "%so%d.%c = xcs_cv<%s, %s>(v%d);\n", ind, in->dst, c->vec_comp, ctype(to),
                       ctype(c->reg_dt[in->a]), c->reg_var[in->a]);
                break;
            }
            sb_put(s, "%s((%s *)a.out[%d])[oo%d] = xcs_cv<%s, %s>(v%d);\n", ind, ctype(to), in->dst, in->dst,
                   ctype(to), ctype(c->reg_dt[in->a]), c->reg_var[in->a]);
            break;
        }
        case XCS_FUSED_REDUCE: break; /* the reduction driver folds it */
        }
    }
}

/* Offsets of every used operand: oi<k>/oo<k> = the unravelled index
 * `idx` over the dims listed (innermost last), strides from a. */
/* One step of unravelling an index r over dims, innermost first: q gets
 * dim d's coordinate.  The outermost dim needs no division (r is already
 * below its size): a one-dim unravel costs none. */
static void cg_unravel_step(sb *s, const char *ind, int d, bool outermost) {
    if (outermost) sb_put(s, "%s    q = r;\n", ind);
    else sb_put(s, "%s    q = r %% a.shape[%d];\n%s    r /= a.shape[%d];\n", ind, d, ind, d);
}

static void cg_offsets(const cg *c, sb *s, const char *ind, const char *idx, const int *dims, int nd) {
    const xcs_fused_program *p = c->p;
    for (int k = 0; k < p->n_inputs; k++)
        if (c->in_used[k]) sb_put(s, "%slong long oi%d = 0;\n", ind, k);
    for (int k = 0; k < p->n_outputs; k++)
        if (c->out_used[k]) sb_put(s, "%slong long oo%d = 0;\n", ind, k);
    if (nd == 0) return;
    sb_put(s, "%s{\n%s    long long r = %s, q;\n", ind, ind, idx);
    for (int j = nd - 1; j >= 0; j--) {
        int d = dims[j];
        cg_unravel_step(s, ind, d, j == 0);
        for (int k = 0; k < p->n_inputs; k++)
            if (c->in_used[k]) sb_put(s, "%s    oi%d += q * a.in_stride[%d][%d];\n", ind, k, k, d);
        for (int k = 0; k < p->n_outputs; k++)
            if (c->out_used[k] && !(p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE &&
                                    p->instr[p->n_instr - 1].dst == k))
                sb_put(s, "%s    oo%d += q * a.out_stride[%d][%d];\n", ind, k, k, d);
    }
    sb_put(s, "%s}\n", ind);
}

/* The flat variant, XCS_CUDA_UNROLL elements per thread per step: every
 * input element of the step is loaded before the first is used, so the
 * loads are in flight together (the stores of one element cannot be moved
 * above the loads of the next by the compiler: an output may be an input's
 * memory). */
static void cg_flat(cg *c, sb *s) {
    const xcs_fused_program *p = c->p;
    sb_put(s, "    const long long stride = (long long)gridDim.x * blockDim.x;\n");
    sb_put(s, "    for (long long i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x; i0 < a.n; i0 += %d * stride) {\n",
           XCS_CUDA_UNROLL);
    c->preloaded = 0;
    for (int k = 0; k < p->n_inputs; k++) {
        if (!c->in_used[k] || (c->spec->scalar_inputs >> k & 1u)) continue;
        const char *t = ctype(c->spec->in_dtype[k]);
        c->preloaded |= 1u << k;
        for (int u = 0; u < XCS_CUDA_UNROLL; u++)
            sb_put(s, "        const %s p%d_%d = i0 + %d * stride < a.n ? ((const %s *)a.in[%d])[i0 + %d * stride] : %s;\n",
                   t, k, u, u, t, k, u, czero(c->spec->in_dtype[k]));
    }
    for (int u = 0; u < XCS_CUDA_UNROLL; u++) {
        sb_put(s, "        {\n            const long long i = i0 + %d * stride;\n            if (i < a.n) {\n", u);
        for (int k = 0; k < p->n_inputs; k++) {
            if (!c->in_used[k]) continue;
            if (c->preloaded >> k & 1u)
                sb_put(s, "                const %s p%d = p%d_%d;\n", ctype(c->spec->in_dtype[k]), k, k, u);
            else
                sb_put(s, "                const long long oi%d = 0;\n", k);
        }
        for (int k = 0; k < p->n_outputs; k++)
            if (c->out_used[k]) sb_put(s, "                const long long oo%d = i;\n", k);
        cg_body(c, s, "                ");
        sb_put(s, "            }\n        }\n");
    }
    c->preloaded = 0;
    sb_put(s, "    }\n");
}

/* The vec4 variant of the flat kernel: a vector of four elements of every
 * non-scalar input per thread per step (float4/int4: 16 bytes; xcs_h4/
 * xcs_bh4: 8), the program run on its four components, the outputs written
 * as vectors. */
static void cg_flat_vec4(cg *c, sb *s) {
    const xcs_fused_program *p = c->p;
    static const char comp[4] = {'x', 'y', 'z', 'w'};
    sb_put(s, "    const long long nv = a.n >> 2;\n");
    sb_put(s, "    for (long long i4 = (long long)blockIdx.x * blockDim.x + threadIdx.x; i4 < nv;\n"
              "         i4 += (long long)gridDim.x * blockDim.x) {\n");
    c->preloaded = 0;
    for (int k = 0; k < p->n_inputs; k++) {
        if (!c->in_used[k] || (c->spec->scalar_inputs >> k & 1u)) continue;
        c->preloaded |= 1u << k;
        sb_put(s, "        const %s w%d = ((const %s *)a.in[%d])[i4];\n", ctype4(c->spec->in_dtype[k]), k,
               ctype4(c->spec->in_dtype[k]), k);
    }
    for (int k = 0; k < p->n_outputs; k++)
        if (c->out_used[k]) sb_put(s, "        %s o%d;\n", ctype4(c->spec->out_dtype[k]), k);
    for (int u = 0; u < 4; u++) {
        sb_put(s, "        {\n");
        for (int k = 0; k < p->n_inputs; k++) {
            if (!c->in_used[k]) continue;
            if (c->preloaded >> k & 1u)
                sb_put(s, "            const %s p%d = w%d.%c;\n", ctype(c->spec->in_dtype[k]), k, k, comp[u]);
            else
                sb_put(s, "            const long long oi%d = 0;\n", k);
        }
        c->vec_comp = comp[u];
        cg_body(c, s, "            ");
        c->vec_comp = 0;
        sb_put(s, "        }\n");
    }
    for (int k = 0; k < p->n_outputs; k++)
        if (c->out_used[k]) sb_put(s, "        ((%s *)a.out[%d])[i4] = o%d;\n", ctype4(c->spec->out_dtype[k]), k, k);
    c->preloaded = 0;
    sb_put(s, "    }\n");
}

static void cg_elementwise(cg *c, sb *s) {
    const xcs_fused_program *p = c->p;
    sb_put(s, "extern \"C\" __global__ void __launch_bounds__(%d) %s(const xcs_args a) {\n",
           XCS_CUDA_BLOCK, c->spec->name ? c->spec->name : XCS_CUDA_KERNEL_NAME);
    sb_put(s, "    unsigned int err = 0;\n");
    if (c->spec->flat && c->spec->vec4) {
        cg_flat_vec4(c, s);
    } else if (c->spec->flat) {
        cg_flat(c, s);
    } else {
        sb_put(s, "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n;\n"
                  "         i += (long long)gridDim.x * blockDim.x) {\n");
        int dims[XCS_MAX_DIMS];
        for (int d = 0; d < p->ndim; d++) dims[d] = d;
        cg_offsets(c, s, "        ", "i", dims, p->ndim);
        cg_body(c, s, "        ");
        sb_put(s, "    }\n");
    }
    sb_put(s, "    if (err) atomicOr(a.err, err);\n}\n");
}

/* The dtype register `reg` holds when instruction `at` reads it (the body
 * records register dtypes as it emits code, after the reduction driver's
 * prologue needs this one). */
static xcs_dtype reg_dtype_at(const xcs_fused_program *p, int reg, int at) {
    xcs_dtype dt = XCS_F64;
    for (int i = 0; i < at; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        if (in->kind == XCS_FUSED_STORE || in->kind == XCS_FUSED_REDUCE || in->dst != reg) continue;
        dt = in->kind == XCS_FUSED_OP ? out_dtype(in->op, in->dtype) : in->dtype;
    }
    return dt;
}

/* A reduction's accumulator type, identity and combining expression (of A
 * and B) for op over values of dtype rdt: float sums and products in
 * double, integer ones in int64, extrema in the values' own type (float32
 * for float16/bfloat16 values, which it holds exactly: core casts them to
 * float32 before a reduction anyway). */
static void reduce_parts(xcs_op op, xcs_dtype rdt, const char **acc, const char **ident, const char **comb) {
    rdt = xcs_dtype_compute(rdt);
    bool sumlike = op == XCS_OP_SUM || op == XCS_OP_PROD;
    *acc = sumlike ? (xcs_dtype_is_float(rdt) ? "double" : "long long")
                   : rdt == XCS_F32 ? "float" : rdt == XCS_F64 ? "double" : rdt == XCS_I64 ? "long long" : "int";
    bool fl = xcs_dtype_is_float(rdt);
    switch (op) {
    case XCS_OP_SUM: *ident = "0", *comb = "(A + B)"; break;
    case XCS_OP_PROD: *ident = "1", *comb = "(A * B)"; break;
    case XCS_OP_MAX:
        *ident = rdt == XCS_F32 ? "-XCS_INF_F" : rdt == XCS_F64 ? "-XCS_INF_D" : rdt == XCS_I64 ? "(long long)0x8000000000000000ull"
               : rdt == XCS_I32 ? "(int)0x80000000u" : "0";
        *comb = fl ? "((A > B || A != A) ? A : B)" : "(A > B ? A : B)";
        break;
    default:
        *ident = rdt == XCS_F32 ? "XCS_INF_F" : rdt == XCS_F64 ? "XCS_INF_D" : rdt == XCS_I64 ? "0x7fffffffffffffffll"
               : rdt == XCS_I32 ? "0x7fffffff" : "1";
        *comb = fl ? "((A < B || A != A) ? A : B)" : "(A < B ? A : B)";
        break;
    }
}

static void cg_reduce(cg *c, sb *s) {
    const xcs_fused_program *p = c->p;
    const xcs_fused_instr *red = &p->instr[p->n_instr - 1];
    xcs_dtype rdt = reg_dtype_at(p, red->a, p->n_instr - 1);
    const char *acc, *ident, *comb;
    reduce_parts(red->op, rdt, &acc, &ident, &comb);
    int kept[XCS_MAX_DIMS], reduced[XCS_MAX_DIMS], nk = 0, nr = 0;
    for (int d = 0; d < p->ndim; d++) {
        if (p->reduce_axes >> d & 1u) reduced[nr++] = d;
        else kept[nk++] = d;
    }
    sb_put(s, "#define XCS_COMBINE(A, B) %s\n", comb);
    sb_put(s, "extern \"C\" __global__ void __launch_bounds__(%d) %s(const xcs_args a) {\n",
           XCS_CUDA_BLOCK, c->spec->name ? c->spec->name : XCS_CUDA_KERNEL_NAME);
    sb_put(s, "    __shared__ %s part[%d];\n    unsigned int err = 0;\n", acc, XCS_CUDA_BLOCK / 32);
    sb_put(s, "    for (long long o = blockIdx.x; o < a.n; o += gridDim.x) {\n");
    {
        /* bases bi<k>/bo<k>: the offsets of this output's kept index */
        for (int k = 0; k < p->n_inputs; k++)
            if (c->in_used[k]) sb_put(s, "        long long bi%d = 0;\n", k);
        for (int k = 0; k < p->n_outputs; k++)
            if (c->out_used[k] && k != red->dst) sb_put(s, "        long long bo%d = 0;\n", k);
        if (nk > 0) {
            sb_put(s, "        {\n            long long r = o, q;\n");
            for (int j = nk - 1; j >= 0; j--) {
                int d = kept[j];
                cg_unravel_step(s, "        ", d, j == 0);
                for (int k = 0; k < p->n_inputs; k++)
                    if (c->in_used[k]) sb_put(s, "            bi%d += q * a.in_stride[%d][%d];\n", k, k, d);
                for (int k = 0; k < p->n_outputs; k++)
                    if (c->out_used[k] && k != red->dst)
                        sb_put(s, "            bo%d += q * a.out_stride[%d][%d];\n", k, k, d);
            }
            sb_put(s, "        }\n");
        }
    }
    sb_put(s, "        %s acc = %s;\n", acc, ident);
    /* XCS_CUDA_UNROLL elements per thread per step, every input element
     * loaded before the first is folded (loads in flight together) */
    sb_put(s, "        for (long long jb = threadIdx.x; jb < a.rn; jb += %d * (long long)blockDim.x) {\n", XCS_CUDA_UNROLL);
    c->preloaded = 0;
    for (int u = 0; u < XCS_CUDA_UNROLL; u++) {
        sb_put(s, "            const long long j%d = jb + %d * (long long)blockDim.x;\n", u, u);
        for (int k = 0; k < p->n_inputs; k++)
            if (c->in_used[k]) sb_put(s, "            long long oi%d_%d = bi%d;\n", k, u, k);
        if (nr > 0) {
            sb_put(s, "            {\n                long long r = j%d, q;\n", u);
            for (int j = nr - 1; j >= 0; j--) {
                int d = reduced[j];
                cg_unravel_step(s, "            ", d, j == 0);
                for (int k = 0; k < p->n_inputs; k++)
                    if (c->in_used[k]) sb_put(s, "                oi%d_%d += q * a.in_stride[%d][%d];\n", k, u, k, d);
            }
            sb_put(s, "            }\n");
        }
        for (int k = 0; k < p->n_inputs; k++) {
            if (!c->in_used[k]) continue;
            const char *t = ctype(c->spec->in_dtype[k]);
            c->preloaded |= 1u << k;
            sb_put(s, "            const %s p%d_%d = j%d < a.rn ? ((const %s *)a.in[%d])[oi%d_%d] : %s;\n", t, k, u, u, t,
                   k, k, u, czero(c->spec->in_dtype[k]));
        }
    }
    for (int u = 0; u < XCS_CUDA_UNROLL; u++) {
        sb_put(s, "            if (j%d < a.rn) {\n", u);
        for (int k = 0; k < p->n_inputs; k++)
            if (c->in_used[k]) sb_put(s, "                const %s p%d = p%d_%d;\n", ctype(c->spec->in_dtype[k]), k, k, u);
        for (int k = 0; k < p->n_outputs; k++)
            if (c->out_used[k] && k != red->dst) sb_put(s, "                long long oo%d = bo%d;\n", k, k);
        bool stores = false;
        for (int k = 0; k < p->n_outputs; k++) stores |= c->out_used[k] && k != red->dst;
        if (nr > 0 && stores) {
            sb_put(s, "                {\n                    long long r = j%d, q;\n", u);
            for (int j = nr - 1; j >= 0; j--) {
                int d = reduced[j];
                cg_unravel_step(s, "                ", d, j == 0);
                for (int k = 0; k < p->n_outputs; k++)
                    if (c->out_used[k] && k != red->dst)
                        sb_put(s, "                    oo%d += q * a.out_stride[%d][%d];\n", k, k, d);
            }
            sb_put(s, "                }\n");
        }
        cg_body(c, s, "                ");
        sb_put(s,
               "                const %s e = xcs_cv<%s, %s>(v%d);\n"
               "                acc = XCS_COMBINE(acc, e);\n            }\n",
               acc, acc, ctype(c->reg_dt[red->a]), c->reg_var[red->a]);
    }
    c->preloaded = 0;
    sb_put(s, "        }\n");
    sb_put(s,
           "        for (int sh = 16; sh > 0; sh >>= 1) {\n"
           "            const %s e = __shfl_down_sync(0xffffffffu, acc, sh);\n"
           "            acc = XCS_COMBINE(acc, e);\n"
           "        }\n"
           "        if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;\n"
           "        __syncthreads();\n"
           "        if (threadIdx.x < 32) {\n"
           "            acc = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : (%s)(%s);\n"
           "            for (int sh = 16; sh > 0; sh >>= 1) {\n"
           "                const %s e = __shfl_down_sync(0xffffffffu, acc, sh);\n"
           "                acc = XCS_COMBINE(acc, e);\n"
           "            }\n"
           "            if (threadIdx.x == 0) ((%s *)a.out[%d])[o] = xcs_cv<%s, %s>(acc);\n"
           "        }\n"
           "        __syncthreads();\n"
           "    }\n"
           "    if (err) atomicOr(a.err, err);\n"
           "}\n"
           "#undef XCS_COMBINE\n",
           acc, acc, ident, acc, ctype(c->spec->out_dtype[red->dst]), red->dst, ctype(c->spec->out_dtype[red->dst]),
           acc);
}

size_t xcs_cuda_codegen(const xcs_cuda_spec *spec, char *buf, size_t cap) {
    if (!spec || !spec->p) return xcs_error(XCS_ERR_VALUE, "CUDA codegen: no program"), 0;
    cg c;
    memset(&c, 0, sizeof c);
    c.spec = spec;
    c.p = spec->p;
    if (!cg_check(&c)) return 0;
    sb s = {.buf = buf, .cap = cap, .len = 0};
    if (buf && cap) buf[0] = '\0';
    if (!spec->no_prelude) put_prelude(&s);
    if (c.p->instr[c.p->n_instr - 1].kind == XCS_FUSED_REDUCE) {
        if (spec->flat) return xcs_error(XCS_ERR_VALUE, "CUDA codegen: a reduction has no flat variant"), 0;
        cg_reduce(&c, &s);
    } else {
        cg_elementwise(&c, &s);
    }
    return s.len;
}

size_t xcs_cuda_prelude(char *buf, size_t cap) {
    sb s = {.buf = buf, .cap = cap, .len = 0};
    if (buf && cap) buf[0] = '\0';
    put_prelude(&s);
    return s.len;
}

/* gen's source in a buffer of its size (gen sizes it first, like snprintf). */
static char *gen_alloc(size_t (*gen)(const void *spec, char *buf, size_t cap), const void *spec) {
    size_t n = gen(spec, NULL, 0);
    if (n == 0) return NULL;
    char *buf = malloc(n + 1);
    if (!buf) return xcs_error(XCS_ERR_MEMORY, "CUDA codegen: out of memory"), NULL;
    gen(spec, buf, n + 1);
    return buf;
}

static size_t gen_fused(const void *spec, char *buf, size_t cap) { return xcs_cuda_codegen(spec, buf, cap); }

char *xcs_cuda_codegen_alloc(const xcs_cuda_spec *spec) { return gen_alloc(gen_fused, spec); }

uint64_t xcs_cuda_source_hash(const char *src) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *q = (const unsigned char *)src; *q; q++) {
        h ^= *q;
        h *= 1099511628211ull;
    }
    return h;
}

/* FNV-1a over bytes. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t xcs_cuda_spec_hash(const xcs_cuda_spec *spec) {
    const xcs_fused_program *p = spec->p;
    uint64_t h = 0xcbf29ce484222325ull;
    int head[5] = {p->ndim, p->n_inputs, p->n_outputs, p->n_instr, (int)p->reduce_axes};
    h = fnv(h, head, sizeof head);
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        int f[8] = {in->kind, in->op, in->dst, in->a, in->b, in->c, in->dtype, in->src_dtype};
        h = fnv(h, f, sizeof f);
    }
    for (int k = 0; k < p->n_inputs; k++) h = fnv(h, &spec->in_dtype[k], sizeof spec->in_dtype[k]);
    for (int k = 0; k < p->n_outputs; k++) h = fnv(h, &spec->out_dtype[k], sizeof spec->out_dtype[k]);
    int tail[5] = {spec->flat, (int)spec->scalar_inputs, spec->no_prelude, XCS_CUDA_UNROLL, spec->vec4};
    h = fnv(h, tail, sizeof tail);
    if (spec->name) h = fnv(h, spec->name, strlen(spec->name));
    return h;
}

/* ---------------------------------------------------------------- row chains
 *
 * One block per row (grid-stride over rows), XCS_CUDA_BLOCK threads, each
 * holding columns tid + k * XCS_CUDA_BLOCK for k < per in registers (the
 * k loops are unrolled, so the arrays stay registers).  The chain's
 * programs run in order on the row: elementwise ones column by column,
 * reductions over the columns then across the block (shuffles, one shared
 * array), their result broadcast to every thread. */

/* The kernel spec of the chain's program g (its operand dtypes). */
static void row_group_spec(const xcs_cuda_row_spec *rs, int g, xcs_cuda_spec *spec) {
    const xcs_fused_program *p = rs->prog[g];
    memset(spec, 0, sizeof *spec);
    spec->p = p;
    for (int k = 0; k < p->n_inputs; k++) spec->in_dtype[k] = rs->in_dtype[g][k];
    for (int o = 0; o < p->n_outputs; o++) spec->out_dtype[o] = rs->out_dtype[g][o];
}

size_t xcs_cuda_row_codegen(const xcs_cuda_row_spec *rs, char *buf, size_t cap) {
    sb s = {.buf = buf, .cap = cap, .len = 0};
    if (buf && cap) buf[0] = '\0';
    if (rs->n < 1 || rs->n > XCS_ROW_MAX || rs->per < 1 || rs->per > XCS_ROW_MAX_PER || rs->n_ext > XCS_ROW_MAX_EXT ||
        rs->n_out > XCS_ROW_MAX_OUT || rs->n_values > XCS_ROW_MAX_VALUES)
        return xcs_error(XCS_ERR_VALUE, "CUDA row codegen: malformed chain"), 0;
    put_prelude(&s);
    sb_put(&s, "struct xcs_row_args {\n    const void *in[%d];\n    long long in_rs[%d], in_cs[%d];\n"
               "    void *out[%d];\n    long long out_rs[%d], out_cs[%d];\n    unsigned int *err;\n"
               "    long long R, C;\n};\n",
           XCS_ROW_MAX_EXT, XCS_ROW_MAX_EXT, XCS_ROW_MAX_EXT, XCS_ROW_MAX_OUT, XCS_ROW_MAX_OUT, XCS_ROW_MAX_OUT);
    sb_put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s(const xcs_row_args a) {\n", XCS_CUDA_BLOCK,
           XCS_CUDA_KERNEL_NAME);
    sb_put(&s, "    __shared__ double part_d[%d];\n    __shared__ long long part_l[%d];\n"
               "    __shared__ float part_f[%d];\n    __shared__ int part_i[%d];\n",
           XCS_CUDA_BLOCK / 32, XCS_CUDA_BLOCK / 32, XCS_CUDA_BLOCK / 32, XCS_CUDA_BLOCK / 32);
    sb_put(&s, "    unsigned int err_all = 0; /* program g's faults at XCS_ROW_FAULT_SHIFT(g, n) */\n"
               "    const int tid = threadIdx.x;\n");
    sb_put(&s, "    for (long long r = blockIdx.x; r < a.R; r += gridDim.x) {\n");
    for (int v = 0; v < rs->n_values; v++)
        if (!rs->value_scalar[v]) sb_put(&s, "        %s val%d[%d];\n", ctype(rs->value_dtype[v]), v, rs->per);
    for (int g = 0; g < rs->n; g++)
        for (int o = 0; rs->prog_scalar[g] && o < rs->prog[g]->n_outputs; o++)
            sb_put(&s, "        %s rowv%d;\n", ctype(rs->value_dtype[rs->out_value[g][o]]), rs->out_value[g][o]);
    for (int e = 0; e < rs->n_ext; e++) {
        const char *t = ctype(rs->ext_dtype[e]);
        if (rs->ext_kind[e] != 1) { /* per column: the row's elements, loaded once, from the row's start (one
                                      * base register and immediate offsets where the column stride is 1) */
            sb_put(&s, "        %s ext%d[%d];\n        const %s *row%d = (const %s *)a.in[%d] + r * a.in_rs[%d];\n", t, e,
                   rs->per, t, e, t, e, e);
            char at[48];
            snprintf(at, sizeof at, rs->ext_kind[e] == 2 ? "c" : "c * a.in_cs[%d]", e);
            sb_put(&s, "#pragma unroll\n        for (int k = 0; k < %d; k++) {\n"
                       "            const int c = tid + k * %d;\n"
                       "            ext%d[k] = c < a.C ? row%d[%s] : %s;\n"
                       "        }\n",
                   rs->per, XCS_CUDA_BLOCK, e, e, at, czero(rs->ext_dtype[e]));
        } else { /* one per row (or one in all) */
            sb_put(&s, "        const %s ext%d = ((const %s *)a.in[%d])[r * a.in_rs[%d]];\n", t, e, t, e, e);
        }
    }
    for (int g = 0; g < rs->n; g++) {
        const xcs_fused_program *p = rs->prog[g];
        xcs_cuda_spec spec;
        row_group_spec(rs, g, &spec);
        cg c;
        memset(&c, 0, sizeof c);
        c.spec = &spec;
        c.p = p;
        if (!cg_check(&c)) return 0;
        bool reduce = p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE;
        const xcs_fused_instr *red = reduce ? &p->instr[p->n_instr - 1] : NULL;
        /* the program's own fault word, where it can fault: the body's `err` */
        char err_open[64] = "", err_close[96] = "";
        if (xcs_fused_can_fault(p)) {
            snprintf(err_open, sizeof err_open, "unsigned int err = 0;\n");
            snprintf(err_close, sizeof err_close, "err_all |= err << %d;\n", XCS_ROW_FAULT_SHIFT(g, rs->n));
        }
        if (rs->prog_scalar[g]) { /* one value per row: every thread computes it (no memory, no barrier) */
            sb_put(&s, "        /* program %d (per row) */\n", g);
            c.preloaded = 0;
            for (int k = 0; k < p->n_inputs; k++) {
                if (!c.in_used[k]) continue;
                c.preloaded |= 1u << k;
                int src = rs->in_src[g][k];
                sb_put(&s, "        const %s p%d_%d = %s%d;\n", ctype(rs->in_dtype[g][k]), g, k, src >= 0 ? "val" : "ext",
                       src >= 0 ? src : -src - 1);
            }
            sb_put(&s, "        {\n%s%s", *err_open ? "            " : "", err_open);
            for (int k = 0; k < p->n_inputs; k++)
                if (c.in_used[k]) sb_put(&s, "            const %s p%d = p%d_%d;\n", ctype(rs->in_dtype[g][k]), k, g, k);
            for (int o = 0; o < p->n_outputs; o++)
                if (c.out_used[o]) sb_put(&s, "            %s o%d;\n", ctype(rs->out_dtype[g][o]), o);
            c.store_var = true;
            cg_body(&c, &s, "            ");
            for (int o = 0; o < p->n_outputs; o++) {
                if (!c.out_used[o]) continue;
                int slot = rs->out_slot[g][o];
                sb_put(&s, "            rowv%d = o%d;\n", rs->out_value[g][o], o);
                if (slot >= 0)
                    sb_put(&s, "            if (tid == 0) ((%s *)a.out[%d])[r * a.out_rs[%d]] = o%d;\n",
                           ctype(rs->out_dtype[g][o]), slot, slot, o);
            }
            sb_put(&s, "%s%s        }\n", *err_close ? "            " : "", err_close);
            for (int o = 0; o < p->n_outputs; o++)
                if (c.out_used[o])
                    sb_put(&s, "        const %s val%d = rowv%d;\n", ctype(rs->out_dtype[g][o]), rs->out_value[g][o],
                           rs->out_value[g][o]);
            continue;
        }
        const char *acc = NULL, *ident = NULL, *comb = NULL;
        if (reduce) {
            reduce_parts(red->op, reg_dtype_at(p, red->a, p->n_instr - 1), &acc, &ident, &comb);
            sb_put(&s, "        %s acc%d = %s;\n", acc, g, ident);
        }
        sb_put(&s, "        /* program %d */\n        {\n%s%s#pragma unroll\n        for (int k = 0; k < %d; k++) {\n"
                   "            const int c = tid + k * %d;\n            if (c < a.C) {\n",
               g, *err_open ? "        " : "", err_open, rs->per, XCS_CUDA_BLOCK);
        c.preloaded = 0;
        for (int k = 0; k < p->n_inputs; k++) {
            if (!c.in_used[k]) continue;
            c.preloaded |= 1u << k;
            const char *t = ctype(rs->in_dtype[g][k]);
            int src = rs->in_src[g][k];
            if (src >= 0)
                sb_put(&s, "                const %s p%d = val%d%s;\n", t, k, src, rs->value_scalar[src] ? "" : "[k]");
            else
                sb_put(&s, "                const %s p%d = ext%d%s;\n", t, k, -src - 1,
                       rs->ext_kind[-src - 1] != 1 ? "[k]" : "");
        }
        for (int o = 0; o < p->n_outputs; o++)
            if (c.out_used[o] && !(reduce && o == red->dst))
                sb_put(&s, "                %s o%d;\n", ctype(rs->out_dtype[g][o]), o);
        c.store_var = true;
        cg_body(&c, &s, "                ");
        for (int o = 0; o < p->n_outputs; o++) {
            if (!c.out_used[o] || (reduce && o == red->dst)) continue;
            int v = rs->out_value[g][o], slot = rs->out_slot[g][o];
            if (v >= 0 && rs->value_read[v]) sb_put(&s, "                val%d[k] = o%d;\n", v, o);
            if (slot >= 0 && rs->out_unit[slot])
                sb_put(&s, "                ((%s *)a.out[%d] + r * a.out_rs[%d])[c] = o%d;\n", ctype(rs->out_dtype[g][o]),
                       slot, slot, o);
            else if (slot >= 0)
                sb_put(&s, "                ((%s *)a.out[%d] + r * a.out_rs[%d])[c * a.out_cs[%d]] = o%d;\n",
                       ctype(rs->out_dtype[g][o]), slot, slot, slot, o);
        }
        if (reduce)
            sb_put(&s, "                { const %s A = acc%d, B = xcs_cv<%s, %s>(v%d); acc%d = %s; }\n", acc, g, acc,
                   ctype(c.reg_dt[red->a]), c.reg_var[red->a], g, comb);
        sb_put(&s, "            }\n        }\n%s%s        }\n", *err_close ? "        " : "", err_close);
        if (reduce) { /* across the block: each warp folds the warps' partials, so every thread gets the row's
                       * value (indexing the partials by tid, not by lane, left warps 1.. with the identity:
                       * found on the GPU) */
            const char *part = strcmp(acc, "double") == 0 ? "part_d" : strcmp(acc, "float") == 0 ? "part_f"
                             : strcmp(acc, "int") == 0 ? "part_i" : "part_l";
            int v = rs->out_value[g][red->dst], slot = rs->out_slot[g][red->dst];
            const char *vt = ctype(rs->out_dtype[g][red->dst]);
            sb_put(&s,
                   "        for (int sh = 16; sh > 0; sh >>= 1) {\n"
                   "            const %s A = acc%d, B = __shfl_down_sync(0xffffffffu, acc%d, sh);\n"
                   "            acc%d = %s;\n        }\n"
                   "        if ((tid & 31) == 0) %s[tid >> 5] = acc%d;\n        __syncthreads();\n"
                   "        acc%d = (tid & 31) < %d ? %s[tid & 31] : (%s)(%s);\n"
                   "        for (int sh = 16; sh > 0; sh >>= 1) {\n"
                   "            const %s A = acc%d, B = __shfl_xor_sync(0xffffffffu, acc%d, sh);\n"
                   "            acc%d = %s;\n        }\n"
                   "        const %s val%d = xcs_cv<%s, %s>(acc%d);\n"
                   "        __syncthreads();\n",
                   acc, g, g, g, comb, part, g, g, XCS_CUDA_BLOCK / 32, part, acc, ident, acc, g, g, g, comb, vt,
                   v, vt, acc, g);
            if (slot >= 0)
                sb_put(&s, "        if (tid == 0) ((%s *)a.out[%d])[r * a.out_rs[%d]] = val%d;\n", vt, slot, slot, v);
        }
    }
    sb_put(&s, "    }\n    if (err_all) atomicOr(a.err, err_all);\n}\n");
    return s.len;
}

static size_t gen_rows(const void *rs, char *buf, size_t cap) { return xcs_cuda_row_codegen(rs, buf, cap); }

char *xcs_cuda_row_codegen_alloc(const xcs_cuda_row_spec *rs) { return gen_alloc(gen_rows, rs); }

uint64_t xcs_cuda_row_spec_hash(const xcs_cuda_row_spec *rs) {
    uint64_t h = 0x84222325cbf29ce4ull;
    int head[5] = {rs->n, rs->n_values, rs->n_ext, rs->n_out, rs->per};
    h = fnv(h, head, sizeof head);
    for (int g = 0; g < rs->n; g++) {
        const xcs_fused_program *p = rs->prog[g];
        xcs_cuda_spec spec;
        row_group_spec(rs, g, &spec);
        uint64_t ph = xcs_cuda_spec_hash(&spec);
        int f[2] = {rs->prog_scalar[g], p->n_outputs};
        h = fnv(fnv(h, &ph, sizeof ph), f, sizeof f);
        for (int k = 0; k < p->n_inputs; k++) h = fnv(h, &rs->in_src[g][k], sizeof rs->in_src[g][k]);
        for (int o = 0; o < p->n_outputs; o++) {
            int v[2] = {rs->out_value[g][o], rs->out_slot[g][o]};
            h = fnv(h, v, sizeof v);
        }
    }
    for (int v = 0; v < rs->n_values; v++) {
        int f[3] = {rs->value_scalar[v], rs->value_read[v], rs->value_dtype[v]};
        h = fnv(h, f, sizeof f);
    }
    for (int e = 0; e < rs->n_ext; e++) {
        int f[2] = {rs->ext_kind[e], rs->ext_dtype[e]};
        h = fnv(h, f, sizeof f);
    }
    for (int o = 0; o < rs->n_out; o++) h = fnv(h, &rs->out_unit[o], sizeof rs->out_unit[o]);
    return h;
}

/* ---------------------------------------------------------------- GEMM epilogues */

/* Register r widened from a LOAD of input k: the LOAD itself (loaded as
 * `want`) or a LOAD as the input's dtype then one CAST to `want`.  *in
 * receives k; -1 when r is not such a value. */
static int epi_source(const xcs_fused_program *p, int upto, int r, xcs_dtype want, const xcs_dtype *in_dtypes) {
    for (int i = upto - 1; i >= 0; i--) {
        const xcs_fused_instr *ins = &p->instr[i];
        if (ins->dst != r || ins->kind == XCS_FUSED_STORE) continue;
        if (ins->kind == XCS_FUSED_LOAD) return ins->dtype == want || ins->dtype == in_dtypes[ins->a] ? ins->a : -1;
        if (ins->kind == XCS_FUSED_CAST && ins->dtype == want && ins->src_dtype != want) {
            int k = epi_source(p, i, ins->a, ins->src_dtype, in_dtypes);
            return k >= 0 && in_dtypes[k] == ins->src_dtype ? k : -1;
        }
        return -1;
    }
    return -1;
}

bool xcs_cuda_gemm_epilogue(const xcs_fused_program *p, xcs_dtype prod_dtype, const xcs_dtype *in_dtypes,
                            xcs_gemm_epi *out) {
    out->kind = XCS_GEMM_EPI_NONE;
    out->bias_input = -1;
    if (!p || p->product_used || p->n_inputs != 2 || p->n_outputs != 1 || p->n_instr < 3 || p->reduce_axes)
        return false;
    if (in_dtypes[0] != prod_dtype || in_dtypes[1] != prod_dtype) return false;
    if (prod_dtype != XCS_F32 && !xcs_dtype_is_half(prod_dtype)) return false;
    const xcs_dtype cdt = xcs_dtype_compute(prod_dtype);
    const xcs_fused_instr *st = &p->instr[p->n_instr - 1];
    if (st->kind != XCS_FUSED_STORE || st->dst != 0) return false;
    /* walk back from the store: [relu] <- add <- (product, bias) */
    int at = p->n_instr - 2, r = st->a;
    const xcs_fused_instr *ins = &p->instr[at];
    bool relu = false;
    if (ins->kind == XCS_FUSED_OP && ins->op == XCS_OP_RELU && ins->dst == r && ins->dtype == cdt) {
        relu = true;
        r = ins->a;
        ins = &p->instr[--at];
    }
    if (at < 0 || ins->kind != XCS_FUSED_OP || ins->op != XCS_OP_ADD || ins->dst != r || ins->dtype != cdt)
        return false;
    int ka = epi_source(p, at, ins->a, cdt, in_dtypes), kb = epi_source(p, at, ins->b, cdt, in_dtypes);
    if (ka < 0 || kb < 0 || ka == kb || (ka != 0 && kb != 0)) return false;
    /* before the add only the operands' LOADs and CASTs: nothing else is computed or stored */
    for (int i = 0; i < at; i++)
        if (p->instr[i].kind != XCS_FUSED_LOAD && p->instr[i].kind != XCS_FUSED_CAST) return false;
    out->kind = relu ? XCS_GEMM_EPI_RELU_BIAS : XCS_GEMM_EPI_BIAS;
    out->bias_input = ka == 0 ? kb : ka;
    return true;
}

/* ---------------------------------------------------------------- scan loops */

/* What a scan spec adds to its program's checks: carries in range, of
 * their operands' dtypes, each made by exactly one stored output. */
static bool scan_check(const xcs_cuda_scan_spec *ss, const cg *c) {
    const xcs_fused_program *p = c->p;
    if (ss->n_carry < 0 || ss->n_carry > XCS_SCAN_MAX_CARRY)
        return CG_BAD("a scan loop of %d carries (at most %d)", ss->n_carry, XCS_SCAN_MAX_CARRY);
    if (p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE) return CG_BAD("a scan loop's program is elementwise");
    if (p->n_outputs < 32 && (ss->out_mem >> p->n_outputs)) return CG_BAD("scan: out_mem 0x%x past the outputs", ss->out_mem);
    int made[XCS_SCAN_MAX_CARRY] = {0};
    for (int q = 0; q < ss->n_carry; q++)
        if (!ctype(ss->carry_dtype[q])) return CG_BAD("carry %d has no CUDA type", q);
    for (int k = 0; k < p->n_inputs; k++) {
        int q = ss->in_carry[k];
        if (q < -1 || q >= ss->n_carry) return CG_BAD("input %d reads carry %d of %d", k, q, ss->n_carry);
        if (q >= 0 && c->spec->in_dtype[k] != ss->carry_dtype[q]) return CG_BAD("input %d is not carry %d's dtype", k, q);
    }
    for (int o = 0; o < p->n_outputs; o++) {
        int q = ss->out_carry[o];
        if (q < -1 || q >= ss->n_carry) return CG_BAD("output %d makes carry %d of %d", o, q, ss->n_carry);
        if (q < 0) continue;
        if (!c->out_used[o] || c->spec->out_dtype[o] != ss->carry_dtype[q])
            return CG_BAD("output %d makes carry %d but is not stored in its dtype", o, q);
        made[q]++;
    }
    for (int q = 0; q < ss->n_carry; q++)
        if (made[q] != 1) return CG_BAD("carry %d is made by %d outputs (one needed)", q, made[q]);
    return true;
}

size_t xcs_cuda_scan_codegen(const xcs_cuda_scan_spec *ss, char *buf, size_t cap) {
    if (!ss || !ss->base.p) return xcs_error(XCS_ERR_VALUE, "CUDA codegen: no program"), 0;
    cg c;
    memset(&c, 0, sizeof c);
    c.spec = &ss->base;
    c.p = ss->base.p;
    if (!cg_check(&c) || !scan_check(ss, &c)) return 0;
    const xcs_fused_program *p = c.p;
    c.scan = ss;
    for (int k = 0; k < p->n_inputs; k++) /* a carry is read from its register */
        if (ss->in_carry[k] >= 0 && c.in_used[k]) {
            c.in_used[k] = false;
            c.preloaded |= 1u << k;
        }
    for (int o = 0; o < p->n_outputs; o++) c.out_used[o] = ss->out_mem >> o & 1u; /* offsets of memory outputs only */
    sb s = {.buf = buf, .cap = cap, .len = 0};
    if (buf && cap) buf[0] = '\0';
    if (!ss->base.no_prelude) {
        put_prelude(&s);
        sb_put(&s,
               "struct xcs_scan_args {\n    const void *in[%d];\n    void *out[%d];\n    const void *carry_in[%d];\n"
               "    void *carry_out[%d];\n    unsigned int *err;\n    long long n, length, t0, dt;\n"
               "    long long shape[%d];\n    long long in_stride[%d][%d];\n    long long out_stride[%d][%d];\n"
               "    long long in_step[%d], out_step[%d];\n};\n",
               XCS_FUSED_MAX_IO, XCS_FUSED_MAX_IO, XCS_SCAN_MAX_CARRY, XCS_SCAN_MAX_CARRY, XCS_MAX_DIMS,
               XCS_FUSED_MAX_IO, XCS_MAX_DIMS, XCS_FUSED_MAX_IO, XCS_MAX_DIMS, XCS_FUSED_MAX_IO, XCS_FUSED_MAX_IO);
    }
    sb_put(&s, "extern \"C\" __global__ void __launch_bounds__(%d) %s(const xcs_scan_args a) {\n", XCS_CUDA_BLOCK,
           ss->base.name ? ss->base.name : XCS_CUDA_KERNEL_NAME);
    sb_put(&s, "    unsigned int err = 0;\n"
               "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n;\n"
               "         i += (long long)gridDim.x * blockDim.x) {\n");
    int dims[XCS_MAX_DIMS];
    for (int d = 0; d < p->ndim; d++) dims[d] = d;
    cg_offsets(&c, &s, "        ", "i", dims, p->ndim);
    for (int q = 0; q < ss->n_carry; q++) {
        const char *t = ctype(ss->carry_dtype[q]);
        sb_put(&s, "        %s c%d = ((const %s *)a.carry_in[%d])[i];\n        %s n%d = c%d;\n", t, q, t, q, t, q, q);
    }
    /* memory operands one step ahead (f%d: the next step's element), so a
     * step's loads are in flight while the step before computes; ys and
     * the final carries are fresh buffers, never an input's memory */
    for (int k = 0; k < p->n_inputs; k++)
        if (c.in_used[k])
            sb_put(&s, "        %s f%d = ((const %s *)a.in[%d])[oi%d + a.t0 * a.in_step[%d]];\n",
                   ctype(ss->base.in_dtype[k]), k, ctype(ss->base.in_dtype[k]), k, k, k);
    sb_put(&s, "        long long t = a.t0;\n"
               "        for (long long step = 0; step < a.length; step++, t += a.dt) {\n");
    for (int k = 0; k < p->n_inputs; k++) {
        if (c.preloaded >> k & 1u) {
            sb_put(&s, "            const %s p%d = c%d;\n", ctype(ss->carry_dtype[ss->in_carry[k]]), k, ss->in_carry[k]);
        } else if (c.in_used[k]) {
            const char *ty = ctype(ss->base.in_dtype[k]);
            sb_put(&s, "            const %s p%d = f%d;\n"
                       "            if (step + 1 < a.length) f%d = ((const %s *)a.in[%d])[oi%d + (t + a.dt) * a.in_step[%d]];\n",
                   ty, k, k, k, ty, k, k, k);
        }
    }
    for (int k = 0; k < p->n_inputs; k++) /* every operand is in p<k> now */
        if (c.in_used[k]) c.preloaded |= 1u << k;
    cg_body(&c, &s, "            ");
    for (int q = 0; q < ss->n_carry; q++) sb_put(&s, "            c%d = n%d;\n", q, q);
    sb_put(&s, "        }\n");
    for (int q = 0; q < ss->n_carry; q++)
        sb_put(&s, "        ((%s *)a.carry_out[%d])[i] = c%d;\n", ctype(ss->carry_dtype[q]), q, q);
    sb_put(&s, "    }\n    if (err) atomicOr(a.err, err);\n}\n");
    return s.len;
}

static size_t gen_scan(const void *ss, char *buf, size_t cap) { return xcs_cuda_scan_codegen(ss, buf, cap); }

char *xcs_cuda_scan_codegen_alloc(const xcs_cuda_scan_spec *ss) { return gen_alloc(gen_scan, ss); }

uint64_t xcs_cuda_scan_spec_hash(const xcs_cuda_scan_spec *ss) {
    const xcs_fused_program *p = ss->base.p;
    uint64_t h = xcs_cuda_spec_hash(&ss->base) ^ 0x3c6ef372fe94f82bull; /* not a fused kernel's key */
    int head[2] = {ss->n_carry, (int)ss->out_mem};
    h = fnv(h, head, sizeof head);
    /* (counts clamped: a malformed spec is refused by the codegen, after its key is made) */
    int nc = ss->n_carry < 0 ? 0 : ss->n_carry > XCS_SCAN_MAX_CARRY ? XCS_SCAN_MAX_CARRY : ss->n_carry;
    int ni = p->n_inputs < 0 ? 0 : p->n_inputs > XCS_FUSED_MAX_IO ? XCS_FUSED_MAX_IO : p->n_inputs;
    int no = p->n_outputs < 0 ? 0 : p->n_outputs > XCS_FUSED_MAX_IO ? XCS_FUSED_MAX_IO : p->n_outputs;
    h = fnv(h, ss->carry_dtype, (size_t)nc * sizeof *ss->carry_dtype);
    h = fnv(h, ss->in_carry, (size_t)ni * sizeof *ss->in_carry);
    return fnv(h, ss->out_carry, (size_t)no * sizeof *ss->out_carry);
}
