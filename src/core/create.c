/* create.c — arrays made from nothing: full, arange, random. */
#include "half.h"
#include "trace.h"

#include <math.h>

typedef xcs_status (*fill_fn)(const xcs_backend *be, xcs_tensor *out, const void *arg);

/* Allocates a CPU tensor and lets the backend write it. */
static xcs_status create(xcs_dtype dt, int ndim, const int64_t *shape, fill_fn fill, const void *arg,
                         xcs_tensor **out) {
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CPU);
    if (!be) return xcs_last_status();
    xcs_status st = xcs_tensor_empty(dt, ndim, shape, out);
    if (st || xcs_tensor_numel(*out) == 0) return st;
    if ((st = fill(be, *out, arg))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

static xcs_status fill_value(const xcs_backend *be, xcs_tensor *out, const void *arg) {
    return be->fill(out, *(const double *)arg);
}

xcs_status xcs_full(xcs_dtype dt, int ndim, const int64_t *shape, double value, xcs_tensor **out) {
    return create(dt, ndim, shape, fill_value, &value, out);
}

static xcs_status fill_iota(const xcs_backend *be, xcs_tensor *out, const void *arg) {
    const double *p = arg;
    return be->iota(out, p[0], p[1]);
}

xcs_status xcs_arange(double start, double stop, double step, xcs_dtype dt, xcs_tensor **out) {
    if (step == 0) return xcs_error(XCS_ERR_ZERO_DIV, "arange: step must not be zero");
    if (!isfinite(start) || !isfinite(stop) || !isfinite(step))
        return xcs_error(XCS_ERR_VALUE, "arange: start, stop and step must be finite");
    double len = ceil((stop - start) / step);
    int64_t n = len > 0 ? (int64_t)len : 0;
    if (len > 4e18) return xcs_error(XCS_ERR_MEMORY, "arange: %g elements is too many", len);
    double args[2] = {start, step};
    return create(dt, 1, &n, fill_iota, args, out);
}

struct random_args { xcs_op op; xcs_rng_key key; double a, b; };

static xcs_status fill_random(const xcs_backend *be, xcs_tensor *out, const void *arg) {
    const struct random_args *r = arg;
    return be->random(r->op, r->key, r->a, r->b, out);
}

xcs_status xcs_random_args_check(xcs_op op, xcs_dtype dt, double lo, double hi) {
    const char *what = op == XCS_OP_RANDOM_UNIFORM ? "uniform" : "normal";
    if (!xcs_dtype_is_float(dt))
        return xcs_error(XCS_ERR_TYPE, "random.%s: dtype must be a float dtype (float16, bfloat16, float32, float64), got %s", what,
                         xcs_dtype_name(dt));
    if (op == XCS_OP_RANDOM_UNIFORM && (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)))
        return xcs_error(XCS_ERR_VALUE, "random.uniform: need finite minval <= maxval, got [%g, %g)", lo, hi);
    return XCS_OK;
}

static double half_value(xcs_dtype dt, uint16_t h) { return dt == XCS_F16 ? xcs_f16_to_f32(h) : xcs_bf16_to_f32(h); }

/* The float16/bfloat16 value nearest v on one side: the largest one below
 * v (up = false) or the smallest one at or above it (up = true); a step
 * along the sign-magnitude bits. */
static double half_bound(xcs_dtype dt, double v, bool up) {
    uint16_t h = dt == XCS_F16 ? xcs_f64_to_f16(v) : xcs_f64_to_bf16(v);
    double r = half_value(dt, h);
    if (up && r < v) h = h == 0x8000u ? 0x0001u : h & 0x8000u ? (uint16_t)(h - 1) : (uint16_t)(h + 1);
    if (!up && r >= v) h = h == 0x0000u ? 0x8001u : h & 0x8000u ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
    return half_value(dt, h);
}

/* float16/bfloat16 draws: the float32 draw rounded, so the stream is the
 * float32 one's; a uniform draw is then clamped into [lo, hi) (rounding can
 * reach hi, or fall below a lo the dtype cannot hold). */
static xcs_status random_half(xcs_op op, xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape,
                              double lo, double hi, xcs_tensor **out) {
    xcs_tensor *r32 = NULL, *h = NULL, *b = NULL, *t = NULL;
    xcs_status st = op == XCS_OP_RANDOM_UNIFORM ? xcs_random_uniform(key, XCS_F32, ndim, shape, lo, hi, &r32)
                                                : xcs_random_normal(key, XCS_F32, ndim, shape, &r32);
    if (!st) st = xcs_cast(r32, dt, op == XCS_OP_RANDOM_UNIFORM ? &h : out);
    if (!st && op == XCS_OP_RANDOM_UNIFORM && lo < hi) {
        if (!(st = xcs_tensor_scalar(dt, half_bound(dt, lo, true), &b))) st = xcs_binary(XCS_OP_MAXIMUM, h, b, &t);
        xcs_tensor_free(b);
        b = NULL;
        if (!st && !(st = xcs_tensor_scalar(dt, half_bound(dt, hi, false), &b)))
            st = xcs_binary(XCS_OP_MINIMUM, t, b, out);
    } else if (!st && op == XCS_OP_RANDOM_UNIFORM) {
        *out = h, h = NULL;
    }
    xcs_tensor_free(r32);
    xcs_tensor_free(h);
    xcs_tensor_free(b);
    xcs_tensor_free(t);
    return st;
}

xcs_status xcs_random_uniform(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape,
                              double lo, double hi, xcs_tensor **out) {
    xcs_status st = xcs_random_args_check(XCS_OP_RANDOM_UNIFORM, dt, lo, hi);
    if (st) return st;
    if (xcs_dtype_is_half(dt)) return random_half(XCS_OP_RANDOM_UNIFORM, key, dt, ndim, shape, lo, hi, out);
    struct random_args r = {XCS_OP_RANDOM_UNIFORM, key, lo, hi};
    return create(dt, ndim, shape, fill_random, &r, out);
}

xcs_status xcs_random_normal(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out) {
    xcs_status st = xcs_random_args_check(XCS_OP_RANDOM_NORMAL, dt, 0.0, 1.0);
    if (st) return st;
    if (xcs_dtype_is_half(dt)) return random_half(XCS_OP_RANDOM_NORMAL, key, dt, ndim, shape, 0.0, 1.0, out);
    struct random_args r = {XCS_OP_RANDOM_NORMAL, key, 0.0, 1.0};
    return create(dt, ndim, shape, fill_random, &r, out);
}
