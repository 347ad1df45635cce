/* view.c — ops that only re-describe existing storage: reshape (when the
 * layout allows), permute, broadcast, squeeze, expand_dims, slicing and
 * integer indexing.  None of them touches data; all return owned tensors that
 * share the input's storage. */
#include "xcs.h"

#include <string.h>

/* An owned copy of x's header with the given layout. */
static xcs_status make_view(const xcs_tensor *x, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset, xcs_tensor **out) {
    xcs_status st = xcs_tensor_view(x, out);
    if (st) return st;
    (*out)->ndim = ndim;
    (*out)->offset = offset;
    (*out)->flags = 0;
    for (int i = 0; i < ndim; i++) {
        (*out)->shape[i] = shape[i];
        (*out)->strides[i] = strides[i];
    }
    return XCS_OK;
}

/* Fills in a -1 entry and checks the element count (numpy's rules). */
static xcs_status resolve_shape(const xcs_tensor *x, int ndim, const int64_t *shape, int64_t *res) {
    char a[160], b[160];
    int64_t known = 1, n = xcs_tensor_numel(x);
    int infer = -1;
    if (ndim > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "reshape: at most %d dimensions, got %d", XCS_MAX_DIMS, ndim);
    for (int i = 0; i < ndim; i++) {
        res[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) return xcs_error(XCS_ERR_VALUE, "reshape: can only specify one unknown dimension (-1)");
            infer = i;
        } else if (shape[i] < 0) {
            return xcs_error(XCS_ERR_VALUE, "reshape: negative dimension %lld in %s", (long long)shape[i],
                             xcs_shape_str(ndim, shape, a, sizeof a));
        } else {
            if (shape[i] && known > ((int64_t)1 << 62) / shape[i])
                return xcs_error(XCS_ERR_VALUE, "reshape: shape %s is too large",
                                 xcs_shape_str(ndim, shape, a, sizeof a));
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || n % known)
            return xcs_error(XCS_ERR_SHAPE, "cannot reshape array of size %lld into shape %s",
                             (long long)n, xcs_shape_str(ndim, shape, a, sizeof a));
        res[infer] = n / known;
        known *= res[infer];
    }
    if (known != n)
        return xcs_error(XCS_ERR_SHAPE, "cannot reshape array of size %lld (shape %s) into shape %s",
                         (long long)n, xcs_shape_str(x->ndim, x->shape, a, sizeof a),
                         xcs_shape_str(ndim, shape, b, sizeof b));
    return XCS_OK;
}

/* numpy's "attempt no-copy reshape": group old and new dims into runs with
 * equal products; a run can be re-strided iff its old dims are contiguous
 * among themselves.  Returns false when a copy is needed. */
static bool reshape_strides(const xcs_tensor *x, int nn, const int64_t *nshape, int64_t *nstrides) {
    int64_t oshape[XCS_MAX_DIMS], ostr[XCS_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != 1) { oshape[on] = x->shape[i]; ostr[on] = x->strides[i]; on++; }
    int oi = 0, ni = 0;
    while (ni < nn && oi < on) {
        int64_t np_ = nshape[ni], op_ = oshape[oi];
        int nj = ni + 1, oj = oi + 1;
        while (np_ != op_) {
            if (np_ < op_) np_ *= nshape[nj++];
            else op_ *= oshape[oj++];
        }
        for (int k = oi; k < oj - 1; k++)
            if (ostr[k] != oshape[k + 1] * ostr[k + 1]) return false;
        nstrides[nj - 1] = ostr[oj - 1];
        for (int k = nj - 1; k > ni; k--) nstrides[k - 1] = nstrides[k] * nshape[k];
        ni = nj;
        oi = oj;
    }
    for (; ni < nn; ni++) nstrides[ni] = 1; /* trailing size-1 dims */
    return true;
}

xcs_status xcs_reshape(const xcs_tensor *x, int ndim, const int64_t *shape, xcs_tensor **out) {
    int64_t res[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    xcs_status st = resolve_shape(x, ndim, shape, res);
    if (st) return st;
    if (xcs_tensor_numel(x) == 0) {
        xcs_strides_contiguous(ndim, res, strides);
        return make_view(x, ndim, res, strides, x->offset, out);
    }
    if (reshape_strides(x, ndim, res, strides))
        return make_view(x, ndim, res, strides, x->offset, out);
    xcs_tensor *c;
    if ((st = xcs_copy(x, &c))) return st;
    st = xcs_reshape(c, ndim, res, out);
    xcs_tensor_free(c);
    return st;
}

xcs_status xcs_permute(const xcs_tensor *x, const int *perm, xcs_tensor **out) {
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    unsigned seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        int p;
        if (xcs_axis_normalize(perm[i], x->ndim, &p))
            return xcs_error_context(XCS_ERR_VALUE, "transpose");
        if (seen & (1u << p))
            return xcs_error(XCS_ERR_VALUE, "transpose: repeated axis %d in permutation", perm[i]);
        seen |= 1u << p;
        shape[i] = x->shape[p];
        strides[i] = x->strides[p];
    }
    return make_view(x, x->ndim, shape, strides, x->offset, out);
}

xcs_status xcs_transpose(const xcs_tensor *x, xcs_tensor **out) {
    int perm[XCS_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) perm[i] = x->ndim - 1 - i;
    return xcs_permute(x, perm, out);
}

xcs_status xcs_broadcast_to(const xcs_tensor *x, int ndim, const int64_t *shape, xcs_tensor **out) {
    int64_t strides[XCS_MAX_DIMS], n;
    char a[160], b[160];
    if (ndim > XCS_MAX_DIMS || ndim < x->ndim)
        goto bad;
    if (xcs_shape_numel(ndim, shape, xcs_dtype_size(x->dtype), &n)) return xcs_last_status();
    for (int i = 0; i < ndim; i++) {
        int j = i - (ndim - x->ndim);
        if (j < 0) { strides[i] = 0; continue; }
        if (x->shape[j] == shape[i]) strides[i] = x->strides[j];
        else if (x->shape[j] == 1) strides[i] = 0;
        else goto bad;
    }
    return make_view(x, ndim, shape, strides, x->offset, out);
bad:
    return xcs_error(XCS_ERR_SHAPE, "cannot broadcast array of shape %s to shape %s",
                     xcs_shape_str(x->ndim, x->shape, a, sizeof a), xcs_shape_str(ndim, shape, b, sizeof b));
}

xcs_status xcs_squeeze(const xcs_tensor *x, unsigned axes, xcs_tensor **out) {
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    int n = 0;
    if (axes >> x->ndim)
        return xcs_error(XCS_ERR_VALUE, "squeeze: axis out of bounds for array of dimension %d", x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        bool drop = axes ? (axes >> i) & 1u : x->shape[i] == 1;
        if (drop && x->shape[i] != 1)
            return xcs_error(XCS_ERR_VALUE,
                             "cannot select an axis to squeeze out which has size not equal to one "
                             "(axis %d has size %lld)", i, (long long)x->shape[i]);
        if (!drop) { shape[n] = x->shape[i]; strides[n] = x->strides[i]; n++; }
    }
    return make_view(x, n, shape, strides, x->offset, out);
}

xcs_status xcs_expand_dims(const xcs_tensor *x, int axis, xcs_tensor **out) {
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    int a;
    if (x->ndim >= XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "expand_dims: xcs arrays have at most %d dimensions", XCS_MAX_DIMS);
    if (xcs_axis_normalize(axis, x->ndim + 1, &a)) return xcs_error_context(XCS_ERR_VALUE, "expand_dims");
    for (int i = 0, j = 0; i <= x->ndim; i++) {
        if (i == a) { shape[i] = 1; strides[i] = 0; continue; }
        shape[i] = x->shape[j];
        strides[i] = x->strides[j];
        j++;
    }
    return make_view(x, x->ndim + 1, shape, strides, x->offset, out);
}

/* Python's slice.indices(): clip start/stop to the axis, count the items. */
static int64_t slice_normalize(xcs_slice s, int64_t len, int64_t *start) {
    int64_t b, e, st = s.step;
    if (!s.has_start) b = st < 0 ? len - 1 : 0;
    else {
        b = s.start < 0 ? s.start + len : s.start;
        if (b < 0) b = st < 0 ? -1 : 0;
        else if (b >= len) b = st < 0 ? len - 1 : len;
    }
    if (!s.has_stop) e = st < 0 ? -1 : len;
    else {
        e = s.stop < 0 ? s.stop + len : s.stop;
        if (e < 0) e = st < 0 ? -1 : 0;
        else if (e >= len) e = st < 0 ? len - 1 : len;
    }
    *start = b;
    if (st < 0) return e < b ? (b - e - 1) / (-st) + 1 : 0;
    return b < e ? (e - b - 1) / st + 1 : 0;
}

xcs_status xcs_slice_axis(const xcs_tensor *x, int axis, xcs_slice s, xcs_tensor **out) {
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_INDEX, "slice");
    if (s.step == 0) return xcs_error(XCS_ERR_VALUE, "slice step cannot be zero");
    int64_t start, n = slice_normalize(s, x->shape[a], &start);
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    memcpy(strides, x->strides, sizeof strides);
    int64_t offset = x->offset + (n > 0 ? start * x->strides[a] : 0);
    shape[a] = n;
    strides[a] = x->strides[a] * s.step;
    return make_view(x, x->ndim, shape, strides, offset, out);
}

xcs_status xcs_index_axis(const xcs_tensor *x, int axis, int64_t index, xcs_tensor **out) {
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a))
        return xcs_error(XCS_ERR_INDEX, "too many indices for array of dimension %d", x->ndim);
    int64_t len = x->shape[a], i = index < 0 ? index + len : index;
    if (i < 0 || i >= len)
        return xcs_error(XCS_ERR_INDEX, "index %lld is out of bounds for axis %d with size %lld",
                         (long long)index, a, (long long)len);
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    for (int k = 0, j = 0; k < x->ndim; k++) {
        if (k == a) continue;
        shape[j] = x->shape[k];
        strides[j] = x->strides[k];
        j++;
    }
    return make_view(x, x->ndim - 1, shape, strides, x->offset + i * x->strides[a], out);
}
