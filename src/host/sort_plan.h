/* sort_plan.h — internal to src/host: what sort.c (argsort) and
 * sort_values.c (sort) share: the checks on the operands and the plan of
 * the rows along the sorted axis (a row's start in x and out; out is
 * contiguous in x's shape). */
#ifndef XCS_SORT_PLAN_H
#define XCS_SORT_PLAN_H

#include <stdint.h>

#include "cpu_kernels.h"

typedef struct sort_plan {
    const char *x;
    char *out;
    int64_t n, rows, sx, so; /* axis length; rows; the axis' stride in x and out (elements) */
    int nd;                   /* the other dims, for a row's start */
    int64_t shape[XCS_MAX_DIMS], xst[XCS_MAX_DIMS], ost[XCS_MAX_DIMS];
    size_t isz;               /* x's element size */
    xcs_dtype dt;             /* x's dtype */
} sort_plan;

/* Checks a sort kernel's operands (`what`: out of dtype out_dt, x's shape,
 * contiguous; x of a dtype the kernels sort) and plans x's rows along axis. */
static inline xcs_status sort_plan_of(const xcs_tensor *x, int axis, const xcs_tensor *out, xcs_dtype out_dt,
                                      const char *what, sort_plan *p) {
    if (axis < 0 || axis >= x->ndim || out->dtype != out_dt || out->ndim != x->ndim || !xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_VALUE, "%s kernel: bad operands", what);
    if (x->dtype != XCS_BOOL && x->dtype != XCS_I32 && x->dtype != XCS_I64 && x->dtype != XCS_F32 &&
        x->dtype != XCS_F64)
        return xcs_error(XCS_ERR_TYPE, "%s: dtype %s is not supported", what, xcs_dtype_name(x->dtype));
    *p = (sort_plan){.x = xcs_tensor_data(x), .out = xcs_tensor_data(out), .n = x->shape[axis], .rows = 1,
                     .sx = x->strides[axis], .isz = xcs_dtype_size(x->dtype), .dt = x->dtype};
    int64_t ostr[XCS_MAX_DIMS];
    xcs_strides_contiguous(x->ndim, x->shape, ostr);
    p->so = ostr[axis];
    for (int d = 0; d < x->ndim; d++)
        if (d != axis) {
            p->shape[p->nd] = x->shape[d];
            p->xst[p->nd] = x->strides[d];
            p->ost[p->nd++] = ostr[d];
            p->rows *= x->shape[d];
        }
    return XCS_OK;
}

/* Row r's first element in x and in out (element offsets). */
static inline void sort_row_start(const sort_plan *p, int64_t r, int64_t *xo, int64_t *oo) {
    *xo = *oo = 0;
    for (int d = p->nd - 1; d >= 0; d--) {
        int64_t i = r % p->shape[d];
        r /= p->shape[d];
        *xo += i * p->xst[d];
        *oo += i * p->ost[d];
    }
}

#endif
