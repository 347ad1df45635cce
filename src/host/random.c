/* random.c — the CPU reference of the counter-based random ops.
 *
 * Element i of the output is a pure function of (key, i): the exact mapping
 * from Philox blocks to values is documented in src/core/philox.h, and this
 * file is the reference a device kernel is diffed against.  Each OpenMP
 * iteration computes one Philox block and writes the elements it owns, so the
 * result does not depend on the thread count or the schedule.
 *
 * RANDOM_UNIFORM: out = a + (b - a) * u, u in [0, 1), clamped below b.
 * RANDOM_NORMAL:  out = a + b * z, z ~ N(0, 1) by Box-Muller (core passes
 *                 a = 0, b = 1 for a standard normal; loc/scale composites
 *                 may pass others).
 * `out` must be contiguous (core allocates it); borrowed, written in place. */
#include <math.h>
#include <stdint.h>

#include "cpu_kernels.h"
#include "philox.h"

#define TWO_PI 6.283185307179586476925286766559

/* a + (b - a) * u rounded to float, kept strictly below b (when a < b). */
static inline float uniform_f32(double u, double a, double w, double b) {
    double r = a + w * u;
    float f = (float)r;
    if ((double)f >= b && a < b) f = nextafterf(f, -INFINITY);
    return f;
}
static inline double uniform_f64(double u, double a, double w, double b) {
    double r = a + w * u;
    if (r >= b && a < b) r = nextafter(r, -INFINITY);
    return r;
}

/* Writes elements [j*per, min(n, (j+1)*per)) of block j. */
static void gen_uniform_f32(const uint32_t key[2], int64_t n, double a, double b, float *o) {
    int64_t nb = (n + 3) / 4;
    double w = b - a;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
    for (int64_t j = 0; j < nb; j++) {
        uint32_t r[4];
        xcs_philox_block(key, (uint64_t)j, r);
        int64_t i0 = 4 * j, m = n - i0 < 4 ? n - i0 : 4;
        for (int64_t q = 0; q < m; q++)
            o[i0 + q] = uniform_f32((double)xcs_philox_u01_f32(r[q]), a, w, b);
    }
}

static void gen_uniform_f64(const uint32_t key[2], int64_t n, double a, double b, double *o) {
    int64_t nb = (n + 1) / 2;
    double w = b - a;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
    for (int64_t j = 0; j < nb; j++) {
        uint32_t r[4];
        xcs_philox_block(key, (uint64_t)j, r);
        int64_t i0 = 2 * j;
        o[i0] = uniform_f64(xcs_philox_u01_f64(r[0], r[1]), a, w, b);
        if (i0 + 1 < n) o[i0 + 1] = uniform_f64(xcs_philox_u01_f64(r[2], r[3]), a, w, b);
    }
}

/* Box-Muller on (u1 in (0,1], u2 in [0,1)): the pair (r cos t, r sin t). */
static inline void box_muller(double u1, double u2, double *z0, double *z1) {
    double r = sqrt(-2.0 * log(u1)), t = TWO_PI * u2;
    *z0 = r * cos(t);
    *z1 = r * sin(t);
}

static void gen_normal_f32(const uint32_t key[2], int64_t n, double a, double b, float *o) {
    int64_t nb = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN / 8)
    for (int64_t j = 0; j < nb; j++) {
        uint32_t r[4];
        xcs_philox_block(key, (uint64_t)j, r);
        double z[4];
        box_muller(xcs_philox_u01_open0_24(r[0]), (double)xcs_philox_u01_f32(r[1]), &z[0], &z[1]);
        box_muller(xcs_philox_u01_open0_24(r[2]), (double)xcs_philox_u01_f32(r[3]), &z[2], &z[3]);
        int64_t i0 = 4 * j, m = n - i0 < 4 ? n - i0 : 4;
        for (int64_t q = 0; q < m; q++) o[i0 + q] = (float)(a + b * z[q]);
    }
}

static void gen_normal_f64(const uint32_t key[2], int64_t n, double a, double b, double *o) {
    int64_t nb = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN / 8)
    for (int64_t j = 0; j < nb; j++) {
        uint32_t r[4];
        xcs_philox_block(key, (uint64_t)j, r);
        double z0, z1;
        box_muller(xcs_philox_u01_open0_53(r[0], r[1]), xcs_philox_u01_f64(r[2], r[3]), &z0, &z1);
        int64_t i0 = 2 * j;
        o[i0] = a + b * z0;
        if (i0 + 1 < n) o[i0 + 1] = a + b * z1;
    }
}

xcs_status xcs_cpu_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out) {
    if (op != XCS_OP_RANDOM_UNIFORM && op != XCS_OP_RANDOM_NORMAL)
        return xcs_error(XCS_ERR_INTERNAL, "cpu random: op %d is not a random op", (int)op);
    const char *name = op == XCS_OP_RANDOM_UNIFORM ? "uniform" : "normal";
    if (out->dtype != XCS_F32 && out->dtype != XCS_F64)
        return xcs_error(XCS_ERR_TYPE, "%s: dtype %s is not supported (use float32 or float64)",
                         name, xcs_dtype_name(out->dtype));
    if (!xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "%s: the output must be contiguous", name);
    if (!isfinite(a) || !isfinite(b))
        return xcs_error(XCS_ERR_VALUE, "%s: parameters must be finite (got %g, %g)", name, a, b);
    int64_t n = 1;
    for (int d = 0; d < out->ndim; d++) n *= out->shape[d];
    if (n == 0) return XCS_OK;
    void *o = xcs_tensor_data(out);
    if (op == XCS_OP_RANDOM_UNIFORM) {
        if (out->dtype == XCS_F32) gen_uniform_f32(key.k, n, a, b, o);
        else gen_uniform_f64(key.k, n, a, b, o);
    } else {
        if (out->dtype == XCS_F32) gen_normal_f32(key.k, n, a, b, o);
        else gen_normal_f64(key.k, n, a, b, o);
    }
    return XCS_OK;
}
