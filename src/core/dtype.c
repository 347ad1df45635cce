/* dtype.c — dtype facts and numpy's promotion rules (NEP 50 for Python
 * scalars, which are "weak": they adopt the array's dtype unless their kind
 * is higher, e.g. int32_array + 1.5 -> float64, float32_array + 2 -> float32). */
#include "xcs.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
    int kind; /* 0 bool, 1 int, 2 float */
} dtype_table[XCS_DTYPE_COUNT] = {
    [XCS_BOOL] = {"bool", 1, 0},
    [XCS_I32] = {"int32", 4, 1},
    [XCS_I64] = {"int64", 8, 1},
    [XCS_F32] = {"float32", 4, 2},
    [XCS_F64] = {"float64", 8, 2},
    [XCS_F16] = {"float16", 2, 2},
    [XCS_BF16] = {"bfloat16", 2, 2},
};

static bool dtype_valid(xcs_dtype dt) { return (unsigned)dt < XCS_DTYPE_COUNT; }

const char *xcs_dtype_name(xcs_dtype dt) { return dtype_valid(dt) ? dtype_table[dt].name : "invalid"; }
bool xcs_dtype_is_float(xcs_dtype dt) { return dtype_valid(dt) && dtype_table[dt].kind == 2; }
bool xcs_dtype_is_int(xcs_dtype dt) { return dt == XCS_I32 || dt == XCS_I64; }

xcs_status xcs_dtype_from_name(const char *name, xcs_dtype *out) {
    static const struct { const char *alias; xcs_dtype dt; } aliases[] = {
        {"bool", XCS_BOOL},   {"bool_", XCS_BOOL},  {"?", XCS_BOOL},    {"b1", XCS_BOOL},
        {"int32", XCS_I32},   {"i4", XCS_I32},      {"intc", XCS_I32},
        {"int64", XCS_I64},   {"i8", XCS_I64},      {"int", XCS_I64},   {"int_", XCS_I64},
        {"long", XCS_I64},    {"intp", XCS_I64},
        {"float32", XCS_F32}, {"f4", XCS_F32},      {"single", XCS_F32},
        {"float64", XCS_F64}, {"f8", XCS_F64},      {"float", XCS_F64}, {"double", XCS_F64},
        {"float16", XCS_F16}, {"f2", XCS_F16},      {"half", XCS_F16},  {"e", XCS_F16},
        {"bfloat16", XCS_BF16}, {"bf16", XCS_BF16},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(name, aliases[i].alias) == 0) {
            *out = aliases[i].dt;
            return XCS_OK;
        }
    }
    return xcs_error(XCS_ERR_TYPE,
                     "unsupported dtype '%s': xcs supports bool, int32, int64, float16, bfloat16, "
                     "float32, float64",
                     name);
}

/* numpy's table restricted to our dtypes: bool < int32 < int64, float16 <
 * float32 < float64, and an int of either width meeting float16 or float32
 * gives float64 (neither can hold every int32 exactly).  bfloat16 (not in
 * numpy) follows ml_dtypes and JAX: above bool, below float32, and float16
 * with bfloat16 gives float32, the smallest float holding both. */
static xcs_dtype promote_strong(xcs_dtype a, xcs_dtype b) {
    if (a == b) return a;
    if (a == XCS_BOOL) return b;
    if (b == XCS_BOOL) return a;
    int ka = dtype_table[a].kind, kb = dtype_table[b].kind;
    if (ka == kb && dtype_table[a].size == dtype_table[b].size) return XCS_F32; /* float16 + bfloat16 */
    if (ka == kb) return dtype_table[a].size > dtype_table[b].size ? a : b;
    /* one int, one float: int + float16/bfloat16/float32/float64 all give float64 */
    return XCS_F64;
}

/* The dtype a weak scalar of kind k takes when standing alone. */
static xcs_dtype weak_default(int kind) {
    return kind == 0 ? XCS_BOOL : kind == 1 ? XCS_I64 : XCS_F64;
}

xcs_dtype xcs_dtype_promote(xcs_dtype a, bool a_weak, xcs_dtype b, bool b_weak) {
    if (a_weak == b_weak) return promote_strong(a, b);
    xcs_dtype weak = a_weak ? a : b, strong = a_weak ? b : a;
    int kw = dtype_table[weak].kind, ks = dtype_table[strong].kind;
    if (kw <= ks) return strong;
    /* the scalar's kind is higher: bool array + 1 -> int64, int array + 1.0 -> float64 */
    return promote_strong(strong, weak_default(kw));
}
