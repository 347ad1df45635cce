/* ew_test.h — helpers shared by the elementwise C tests: a seeded random
 * stream (testutil.h's, with this file's seed), element access to strided
 * tensors of any dtype, tensors made from value lists, the cast rules as a
 * reference, and ulp comparisons. */
#ifndef XCS_TEST_EW_TEST_H
#define XCS_TEST_EW_TEST_H

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "testutil.h"

static test_rng ew_rng = {0x3C6EF372FE94F82Bull}; /* one stream per test file */
static inline uint64_t rnd(void) { return test_rnd(&ew_rng); }
static inline double rnd_in(double lo, double hi) { return lo + (hi - lo) * test_rnd_unit(&ew_rng); }

/* ---------------------------------------------------------------- tensors */

static inline double rd_raw(xcs_dtype dt, const char *p) {
    switch (dt) {
    case XCS_BOOL: return *(const uint8_t *)p;
    case XCS_I32: return *(const int32_t *)(const void *)p;
    case XCS_I64: return (double)*(const int64_t *)(const void *)p;
    case XCS_F32: return *(const float *)(const void *)p;
    case XCS_F16: return xcs_f16_to_f32(*(const uint16_t *)(const void *)p);
    case XCS_BF16: return xcs_bf16_to_f32(*(const uint16_t *)(const void *)p);
    default: return *(const double *)(const void *)p;
    }
}
static inline void wr_raw(xcs_dtype dt, char *p, double v) { /* v representable */
    switch (dt) {
    case XCS_BOOL: *(uint8_t *)p = v != 0; break;
    case XCS_I32: *(int32_t *)(void *)p = (int32_t)v; break;
    case XCS_I64: *(int64_t *)(void *)p = (int64_t)v; break;
    case XCS_F32: *(float *)(void *)p = (float)v; break;
    case XCS_F16: *(uint16_t *)(void *)p = xcs_f64_to_f16(v); break;
    case XCS_BF16: *(uint16_t *)(void *)p = xcs_f64_to_bf16(v); break;
    default: *(double *)(void *)p = v; break;
    }
}
static inline const char *elem_ptr(const xcs_tensor *t, int64_t flat) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (flat % t->shape[d]) * t->strides[d];
        flat /= t->shape[d];
    }
    return (const char *)xcs_tensor_data(t) + off * (int64_t)xcs_dtype_size(t->dtype);
}
static inline double rd(const xcs_tensor *t, int64_t flat) { return rd_raw(t->dtype, elem_ptr(t, flat)); }
static inline int64_t rdi(const xcs_tensor *t, int64_t flat) {
    const char *p = elem_ptr(t, flat);
    return t->dtype == XCS_I64 ? *(const int64_t *)(const void *)p : (int64_t)rd_raw(t->dtype, p);
}

static inline xcs_tensor *empty(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(dt, nd, shape, &t));
    return t;
}
static inline xcs_tensor *from_values(xcs_dtype dt, int64_t n, const double *v) {
    xcs_tensor *t = empty(dt, 1, &n);
    for (int64_t i = 0; i < n; i++) wr_raw(dt, (char *)xcs_tensor_data(t) + i * (int64_t)xcs_dtype_size(dt), v[i]);
    return t;
}

static inline int64_t wrap(uint64_t v, xcs_dtype dt) {
    return dt == XCS_I32 ? (int64_t)(int32_t)(uint32_t)v : dt == XCS_BOOL ? (v != 0) : (int64_t)v;
}

/* x converted to dt the way casts do (float -> int: truncate, INT_MIN when
 * NaN or out of range). */
static inline double conv(double x, xcs_dtype dt) {
    switch (dt) {
    case XCS_BOOL: return x != 0;
    case XCS_I32: return (x > -2147483649.0 && x < 2147483648.0) ? trunc(x) : INT32_MIN;
    case XCS_I64: return (x >= -0x1p63 && x < 0x1p63) ? trunc(x) : -0x1p63;
    case XCS_F32: return (float)x;
    case XCS_F16: return xcs_f16_to_f32(xcs_f64_to_f16(x));
    case XCS_BF16: return xcs_bf16_to_f32(xcs_f64_to_bf16(x));
    default: return x;
    }
}

static inline double ulp_of(double v, xcs_dtype dt) {
    int e;
    frexp(v, &e);
    switch (dt) {
    case XCS_F32: return ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 23);
    case XCS_F16: return ldexp(1.0, (e - 1 < -14 ? -14 : e - 1) - 10);
    case XCS_BF16: return ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 7);
    default: return ldexp(1.0, (e - 1 < -1022 ? -1022 : e - 1) - 52);
    }
}
/* got (a value of dtype dt) within `ulps` of the exact want. */
static inline bool close_to(double got, double want, xcs_dtype dt, double ulps) {
    if (!xcs_dtype_is_float(dt)) return got == conv(want, dt);
    if (want != want) return got != got;
    double wr = conv(want, dt);
    if (isinf(wr) || isinf(got)) return got == wr;
    return fabs(got - want) <= ulps * ulp_of(want, dt);
}
#endif
