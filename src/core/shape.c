/* shape.c — shape arithmetic: numel with overflow checks, numpy broadcasting,
 * axis normalisation, contiguous strides. */
#include "xcs.h"

#include <stdio.h>

const char *xcs_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t n = 0;
    if (cap == 0) return buf;
    n += (size_t)snprintf(buf + n, cap - n, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
    return buf;
}

/* Sizes are capped at 2^62 bytes: far past any memory, far from overflow. */
xcs_status xcs_shape_numel(int ndim, const int64_t *shape, size_t itemsize, int64_t *out) {
    const int64_t limit = (int64_t)1 << 62;
    int64_t n = 1;
    bool zero = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char b[160];
            return xcs_error(XCS_ERR_VALUE, "negative dimension %lld in shape %s",
                             (long long)shape[i], xcs_shape_str(ndim, shape, b, sizeof b));
        }
        if (shape[i] == 0) zero = true;
    }
    if (zero) { *out = 0; return XCS_OK; }
    for (int i = 0; i < ndim; i++) {
        if (n > limit / shape[i]) goto too_big;
        n *= shape[i];
    }
    if (itemsize && n > limit / (int64_t)itemsize) goto too_big;
    *out = n;
    return XCS_OK;
too_big: {
        char b[160];
        return xcs_error(XCS_ERR_MEMORY, "array of shape %s is too large to allocate",
                         xcs_shape_str(ndim, shape, b, sizeof b));
    }
}

xcs_status xcs_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                               int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    int64_t res[XCS_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db || db == 1) res[i] = da;
        else if (da == 1) res[i] = db;
        else {
            char sa[160], sb[160];
            return xcs_error(XCS_ERR_SHAPE,
                             "operands could not be broadcast together with shapes %s %s "
                             "(axis %d: %lld vs %lld)",
                             xcs_shape_str(na, a, sa, sizeof sa), xcs_shape_str(nb, b, sb, sizeof sb),
                             i - n, (long long)da, (long long)db);
        }
    }
    for (int i = 0; i < n; i++) out[i] = res[i];
    *nout = n;
    return XCS_OK;
}

xcs_status xcs_axis_normalize(int axis, int ndim, int *out) {
    if (axis < -ndim || axis >= ndim)
        return xcs_error(XCS_ERR_VALUE,
                         "axis %d is out of bounds for array of dimension %d", axis, ndim);
    *out = axis < 0 ? axis + ndim : axis;
    return XCS_OK;
}

void xcs_strides_contiguous(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}
