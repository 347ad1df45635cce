/* create.c — arrays made from nothing: full, arange, random. */
#include "xcs.h"

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

static xcs_status random_check(const char *what, xcs_dtype dt) {
    if (!xcs_dtype_is_float(dt))
        return xcs_error(XCS_ERR_TYPE, "random.%s: dtype must be float32 or float64, got %s", what,
                         xcs_dtype_name(dt));
    return XCS_OK;
}

xcs_status xcs_random_uniform(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape,
                              double lo, double hi, xcs_tensor **out) {
    xcs_status st = random_check("uniform", dt);
    if (st) return st;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return xcs_error(XCS_ERR_VALUE, "random.uniform: need finite minval <= maxval, got [%g, %g)", lo, hi);
    struct random_args r = {XCS_OP_RANDOM_UNIFORM, key, lo, hi};
    return create(dt, ndim, shape, fill_random, &r, out);
}

xcs_status xcs_random_normal(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out) {
    xcs_status st = random_check("normal", dt);
    if (st) return st;
    struct random_args r = {XCS_OP_RANDOM_NORMAL, key, 0.0, 1.0};
    return create(dt, ndim, shape, fill_random, &r, out);
}
