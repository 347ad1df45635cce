/* gather.c — ops that assemble new arrays from pieces of others: take
 * (numpy.take, the gather primitive) and concatenate. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

/* Checks idx and returns an owned contiguous int64 copy with negative
 * indices wrapped, so backends only ever see in-range indices. */
static xcs_status wrap_indices(const xcs_tensor *idx, int64_t len, int axis, xcs_tensor **out) {
    if (!xcs_dtype_is_int(idx->dtype))
        return xcs_error(XCS_ERR_TYPE, "take: indices must be integers, got dtype %s",
                         xcs_dtype_name(idx->dtype));
    xcs_status st = xcs_cast(idx, XCS_I64, out); /* always a fresh contiguous copy */
    if (st) return st;
    int64_t *p = xcs_tensor_data(*out), n = xcs_tensor_numel(*out);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = p[i] < 0 ? p[i] + len : p[i];
        if (v < 0 || v >= len) {
            long long bad = (long long)p[i];
            xcs_tensor_free(*out);
            *out = NULL;
            return xcs_error(XCS_ERR_INDEX, "index %lld is out of bounds for axis %d with size %lld",
                             bad, axis, (long long)len);
        }
        p[i] = v;
    }
    return XCS_OK;
}

/* The backend of the device the n operands meet on (xcs_colocate: host
 * ones copied there, into moved[], freed by the caller), or NULL with the
 * error set: `what` names the op. */
static const xcs_backend *device_backend(int n, const xcs_tensor **xs, xcs_tensor **moved, const char *what) {
    if (xcs_colocate(n, xs, moved, what)) return NULL;
    return xcs_backend_for(xs[0]->storage->device);
}

/* idx as a contiguous int64 array on its device (a view when it is one). */
static xcs_status int64_indices(const xcs_tensor *idx, xcs_tensor **out) {
    if (idx->dtype == XCS_I64) return xcs_contiguous(idx, out);
    return xcs_cast(idx, XCS_I64, out);
}

/* take on device arrays: the backend's kernel reads x contiguous and the
 * indices as given (int64), wrapping negative ones and reporting one out
 * of range itself, so nothing comes back to the host. */
static xcs_status take_on_device(const xcs_tensor *x, const xcs_tensor *idx, int a, int nd, const int64_t *shape,
                                 bool in_range, xcs_tensor **out) {
    const xcs_tensor *both[2] = {x, idx};
    xcs_tensor *moved[2] = {NULL, NULL}, *xc = NULL, *ix = NULL;
    const xcs_backend *be = device_backend(2, both, moved, "take");
    xcs_status st = be ? XCS_OK : xcs_last_status();
    if (!st && !be->take) st = xcs_error(XCS_ERR_UNSUPPORTED, "take: backend %s has no kernel", be->name);
    if (!st) st = xcs_contiguous(both[0], &xc);
    if (!st) st = int64_indices(both[1], &ix);
    if (!st) st = xcs_tensor_empty_on(xc->storage, x->dtype, nd, shape, out);
    xcs_status (*kernel)(const xcs_tensor *, const xcs_tensor *, int, xcs_tensor *) =
        in_range && be->take_in_range ? be->take_in_range : be->take;
    if (!st && xcs_tensor_numel(*out) > 0 && (st = kernel(xc, ix, a, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    xcs_tensor_free(xc);
    xcs_tensor_free(ix);
    xcs_tensor_free(moved[0]);
    xcs_tensor_free(moved[1]);
    return st;
}

static xcs_status take(const xcs_tensor *x, const xcs_tensor *idx, int axis, bool in_range, xcs_tensor **out) {
    xcs_status st;
    if (axis == XCS_AXIS_NONE) {
        int64_t flat = -1;
        xcs_tensor *f;
        if ((st = xcs_reshape(x, 1, &flat, &f))) return st;
        st = take(f, idx, 0, in_range, out);
        xcs_tensor_free(f);
        return st;
    }
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "take");
    if (x->ndim - 1 + idx->ndim > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "take: result would have more than %d dimensions", XCS_MAX_DIMS);
    int64_t shape[XCS_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < a; i++) shape[n++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) shape[n++] = idx->shape[i];
    for (int i = a + 1; i < x->ndim; i++) shape[n++] = x->shape[i];
    const xcs_tensor *xi[2] = {x, idx};
    xcs_graph *g;
    if (xcs_trace_any(2, xi, &g, &st)) {
        /* indices are wrapped and bounds-checked when the graph runs */
        if (!xcs_dtype_is_int(idx->dtype))
            return xcs_error(XCS_ERR_TYPE, "take: indices must be integers, got dtype %s", xcs_dtype_name(idx->dtype));
        return st ? st : xcs_trace_node(g, XCS_OP_TAKE, 2, xi, x->dtype, x->dtype, n, shape, 0, a, out);
    }
    xcs_tensor *wrapped;
    if (!xcs_tensor_on_host(x) || !xcs_tensor_on_host(idx)) return take_on_device(x, idx, a, n, shape, in_range, out);
    if ((st = wrap_indices(idx, x->shape[a], a, &wrapped))) return st;
    const xcs_backend *be = xcs_backend_for(x->storage->device);
    if (!be) st = xcs_last_status();
    else if (!be->take) st = xcs_error(XCS_ERR_UNSUPPORTED, "take: backend %s has no kernel", be->name);
    if (!st) st = xcs_tensor_empty(x->dtype, n, shape, out);
    if (!st && xcs_tensor_numel(*out) > 0) {
        st = be->take(x, wrapped, a, *out);
        if (st) { xcs_tensor_free(*out); *out = NULL; }
    }
    xcs_tensor_free(wrapped);
    return st;
}

xcs_status xcs_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out) {
    return take(x, idx, axis, false, out);
}

xcs_status xcs_take_in_range(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out) {
    return take(x, idx, axis, true, out);
}

/* concatenate on device arrays: each input copied (and converted to dt)
 * by the backend's elementwise kernel straight into its slab of the
 * output, a strided view of it. */
static xcs_status concat_on_device(int n, const xcs_tensor *const *xs, int a, xcs_dtype dt, int nd,
                                   const int64_t *shape, xcs_tensor **out) {
    const xcs_tensor **at = malloc((size_t)n * sizeof *at);
    xcs_tensor **moved = calloc((size_t)n, sizeof *moved);
    if (!at || !moved) {
        free(at);
        free(moved);
        return xcs_error(XCS_ERR_MEMORY, "concatenate: out of memory");
    }
    memcpy(at, xs, (size_t)n * sizeof *at);
    const xcs_backend *be = device_backend(n, at, moved, "concatenate");
    xcs_status st = be ? XCS_OK : xcs_last_status();
    if (!st && !be->elementwise)
        st = xcs_error(XCS_ERR_UNSUPPORTED, "concatenate: backend %s has no kernel", be->name);
    if (!st) st = xcs_tensor_empty_on(at[0]->storage, dt, nd, shape, out);
    int64_t off = 0;
    for (int i = 0; i < n && !st; i++) {
        xcs_tensor slab = **out;
        slab.shape[a] = at[i]->shape[a];
        slab.offset += off * slab.strides[a];
        off += at[i]->shape[a];
        if (xcs_tensor_numel(&slab) > 0) st = be->elementwise(XCS_OP_COPY, 1, &at[i], dt, &slab);
    }
    if (st && *out) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    for (int i = 0; i < n; i++) xcs_tensor_free(moved[i]);
    free(moved);
    free(at);
    return st;
}

/* Concatenation copies each input, converted to the common dtype and made
 * contiguous, into its slab of the output: on the host by memcpy, on a
 * device by the backend's elementwise copy (concat_on_device). */
xcs_status xcs_concat(int n, const xcs_tensor *const *xs, int axis, xcs_tensor **out) {
    char s0[160], s1[160];
    if (n <= 0) return xcs_error(XCS_ERR_VALUE, "need at least one array to concatenate");
    const xcs_tensor *x0 = xs[0];
    if (x0->ndim == 0) return xcs_error(XCS_ERR_VALUE, "zero-dimensional arrays cannot be concatenated");
    int a;
    if (xcs_axis_normalize(axis, x0->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "concatenate");
    xcs_dtype dt = x0->dtype;
    int64_t shape[XCS_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    for (int i = 1; i < n; i++) {
        const xcs_tensor *x = xs[i];
        if (x->ndim != x0->ndim)
            return xcs_error(XCS_ERR_SHAPE,
                             "concatenate: all the input arrays must have same number of dimensions, "
                             "but array 0 has shape %s and array %d has shape %s",
                             xcs_shape_str(x0->ndim, x0->shape, s0, sizeof s0), i,
                             xcs_shape_str(x->ndim, x->shape, s1, sizeof s1));
        for (int d = 0; d < x0->ndim; d++)
            if (d != a && x->shape[d] != x0->shape[d])
                return xcs_error(XCS_ERR_SHAPE,
                                 "concatenate: input array dimensions except for the concatenation axis "
                                 "must match exactly, but along dimension %d array 0 has shape %s and "
                                 "array %d has shape %s", d,
                                 xcs_shape_str(x0->ndim, x0->shape, s0, sizeof s0), i,
                                 xcs_shape_str(x->ndim, x->shape, s1, sizeof s1));
        shape[a] += x->shape[a];
        dt = xcs_dtype_promote(dt, false, x->dtype, false);
    }
    xcs_graph *g;
    xcs_status st;
    if (xcs_trace_any(n, xs, &g, &st))
        return st ? st : xcs_trace_node(g, XCS_OP_CONCAT, n, xs, dt, dt, x0->ndim, shape, 0, a, out);
    for (int i = 0; i < n; i++)
        if (xs[i]->storage->device != XCS_DEVICE_CPU) return concat_on_device(n, xs, a, dt, x0->ndim, shape, out);
    st = xcs_tensor_empty(dt, x0->ndim, shape, out);
    if (st) return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < a; d++) outer *= shape[d];
    for (int d = a + 1; d < x0->ndim; d++) inner *= shape[d];
    size_t isz = xcs_dtype_size(dt);
    char *dst = xcs_tensor_data(*out);
    int64_t row = shape[a] * inner, done = 0;
    for (int i = 0; i < n && !st; i++) {
        const xcs_tensor *x = xs[i];
        xcs_tensor *c = NULL;
        int64_t chunk = x->shape[a] * inner;
        if (chunk == 0 || outer == 0) continue;
        st = x->dtype == dt ? xcs_contiguous(x, &c) : xcs_cast(x, dt, &c);
        if (st) break;
        const char *src = xcs_tensor_data(c);
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + (size_t)(o * row + done) * isz, src + (size_t)(o * chunk) * isz, (size_t)chunk * isz);
        done += chunk;
        xcs_tensor_free(c);
    }
    if (st) { xcs_tensor_free(*out); *out = NULL; }
    return st;
}

/* The output shape of a scatter_add along `axis` (src.shape with the k =
 * idx.ndim dims from axis on, which must be idx.shape, replaced by n); the
 * error names what does not fit. */
static xcs_status scatter_shape(const xcs_tensor *idx, const xcs_tensor *src, int axis, int64_t n, int *nd,
                                int64_t *shape) {
    char si[96], ss[96];
    const int k = idx->ndim;
    if (!xcs_dtype_is_int(idx->dtype))
        return xcs_error(XCS_ERR_TYPE, "scatter_add: indices must be integers, got dtype %s", xcs_dtype_name(idx->dtype));
    if (n < 0) return xcs_error(XCS_ERR_VALUE, "scatter_add: negative size %lld", (long long)n);
    if (axis < 0 || axis + k > src->ndim || src->ndim - k + 1 > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_SHAPE, "scatter_add: indices %s do not fit values %s at axis %d",
                         xcs_shape_str(k, idx->shape, si, sizeof si), xcs_shape_str(src->ndim, src->shape, ss, sizeof ss),
                         axis);
    for (int d = 0; d < k; d++)
        if (src->shape[axis + d] != idx->shape[d])
            return xcs_error(XCS_ERR_SHAPE, "scatter_add: values %s do not have the indices' shape %s at axis %d",
                             xcs_shape_str(src->ndim, src->shape, ss, sizeof ss),
                             xcs_shape_str(k, idx->shape, si, sizeof si), axis);
    *nd = 0;
    for (int d = 0; d < axis; d++) shape[(*nd)++] = src->shape[d];
    shape[(*nd)++] = n;
    for (int d = axis + k; d < src->ndim; d++) shape[(*nd)++] = src->shape[d];
    return XCS_OK;
}

xcs_status xcs_scatter_add_axis(const xcs_tensor *idx, const xcs_tensor *src, int axis, int64_t n, xcs_tensor **out) {
    int nd = 0;
    int64_t shape[XCS_MAX_DIMS];
    xcs_status st = scatter_shape(idx, src, axis, n, &nd, shape);
    if (st) return st;
    XCS_HALF_VIA_F32(src, out, true, xcs_scatter_add_axis(idx, x32, axis, n, &r_));
    const xcs_tensor *xi[2] = {idx, src};
    xcs_graph *g;
    if (xcs_trace_any(2, xi, &g, &st))
        return st ? st : xcs_trace_node(g, XCS_OP_SCATTER_ADD, 2, xi, src->dtype, src->dtype, nd, shape, 0, axis, out);
    const bool host = xcs_tensor_on_host(idx) && xcs_tensor_on_host(src);
    const xcs_tensor *both[2] = {idx, src};
    xcs_tensor *moved[2] = {NULL, NULL}, *ix = NULL, *sc = NULL;
    const xcs_backend *be = host ? xcs_backend_for(src->storage->device) : device_backend(2, both, moved, "scatter_add");
    st = be ? XCS_OK : xcs_last_status();
    if (!st && !be->scatter_add)
        st = xcs_error(XCS_ERR_UNSUPPORTED, "scatter_add: backend %s has no kernel", be->name);
    /* the kernel reads int64 indices and values contiguous; on the host
     * the indices are checked here (on a device, by the kernel) */
    if (!st) st = int64_indices(both[0], &ix);
    const int64_t *ip = !st && host ? xcs_tensor_data(ix) : NULL;
    for (int64_t j = 0; ip && j < xcs_tensor_numel(ix); j++)
        if (ip[j] < 0 || ip[j] >= n) {
            st = xcs_error(XCS_ERR_INDEX, "scatter_add: index %lld at position %lld is out of bounds for size %lld",
                           (long long)ip[j], (long long)j, (long long)n);
            break;
        }
    if (!st) st = xcs_contiguous(both[1], &sc);
    if (!st) st = xcs_tensor_empty_on(sc->storage, src->dtype, nd, shape, out);
    if (!st && (st = be->scatter_add(ix, sc, axis, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    xcs_tensor_free(ix);
    xcs_tensor_free(sc);
    xcs_tensor_free(moved[0]);
    xcs_tensor_free(moved[1]);
    return st;
}

xcs_status xcs_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int64_t n, xcs_tensor **out) {
    if (idx->ndim != 1 || src->ndim != 1 || idx->shape[0] != src->shape[0])
        return xcs_error(XCS_ERR_SHAPE, "scatter_add: indices and values must be 1-D of one length (got %d-D of %lld "
                         "and %d-D of %lld)", idx->ndim, (long long)(idx->ndim ? idx->shape[0] : 1), src->ndim,
                         (long long)(src->ndim ? src->shape[0] : 1));
    return xcs_scatter_add_axis(idx, src, 0, n, out);
}

xcs_status xcs_collective(xcs_op op, const xcs_tensor *x, int64_t axis_size, xcs_tensor **out) {
    return xcs_collective_on(op, x, axis_size, 0, out);
}

/* The collective node of traced *out gets its map's number. */
static xcs_status number_map(const xcs_tensor *x, int32_t axis_id, xcs_status st, xcs_tensor **out) {
    if (!st) x->graph->nodes[(*out)->node].aux = axis_id;
    return st;
}

xcs_status xcs_collective_on(xcs_op op, const xcs_tensor *x, int64_t axis_size, int32_t axis_id, xcs_tensor **out) {
    if (axis_id < 0) return xcs_error(XCS_ERR_VALUE, "%s: negative map number %d", xcs_op_name(op), axis_id);
    if (!x->graph)
        return xcs_error(XCS_ERR_VALUE, "%s: a collective runs only inside pmap or vmap with an axis_name",
                         xcs_op_name(op));
    if (op != XCS_OP_PSUM && op != XCS_OP_PMAX && op != XCS_OP_ALL_GATHER && op != XCS_OP_AXIS_INDEX)
        return xcs_error(XCS_ERR_VALUE, "%s is not a collective", xcs_op_name(op));
    if (op == XCS_OP_AXIS_INDEX) { /* no input: a node of x's graph */
        if (axis_size > INT32_MAX) return xcs_error(XCS_ERR_VALUE, "axis_index: axis of %lld examples", (long long)axis_size);
        return number_map(x, axis_id, xcs_trace_node(x->graph, op, 0, NULL, XCS_I64, XCS_I64, 0, NULL, 0, (int)axis_size, out), out);
    }
    if (axis_size < 0) return xcs_error(XCS_ERR_VALUE, "%s: negative axis size", xcs_op_name(op));
    int64_t shape[XCS_MAX_DIMS];
    int nd = x->ndim;
    if (op == XCS_OP_ALL_GATHER) {
        if (nd + 1 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "all_gather: too many dimensions");
        shape[0] = axis_size;
        memcpy(shape + 1, x->shape, (size_t)nd * sizeof *shape);
        nd++;
    } else {
        memcpy(shape, x->shape, (size_t)nd * sizeof *shape);
    }
    const xcs_tensor *xi[1] = {x};
    if (axis_size > INT32_MAX) return xcs_error(XCS_ERR_VALUE, "%s: axis of %lld examples", xcs_op_name(op), (long long)axis_size);
    return number_map(x, axis_id, xcs_trace_node(x->graph, op, 1, xi, x->dtype, x->dtype, nd, shape, 0, (int)axis_size, out),
                      out);
}

/* ------------------------------------------------------ along an axis */

/* Checks idx against x for an along-axis op (`what`): same ndim, the same
 * dims but axis'; sets O, J, Q (the dims before axis, idx's length there,
 * the dims after). */
static xcs_status along_shape(const xcs_tensor *x, const xcs_tensor *idx, int axis, const char *what, int64_t *O,
                              int64_t *J, int64_t *Q) {
    char sx[96], si[96];
    bool ok = x->ndim == idx->ndim && axis >= 0 && axis < x->ndim && idx->dtype == XCS_I64;
    *O = *Q = 1;
    *J = 0;
    for (int d = 0; ok && d < x->ndim; d++) {
        ok = d == axis || x->shape[d] == idx->shape[d];
        if (d < axis) *O *= x->shape[d];
        if (d > axis) *Q *= x->shape[d];
    }
    if (!ok)
        return xcs_error(XCS_ERR_SHAPE, "%s: int64 indices %s do not match %s but at axis %d", what,
                         xcs_shape_str(idx->ndim, idx->shape, si, sizeof si),
                         xcs_shape_str(x->ndim, x->shape, sx, sizeof sx), axis);
    *J = idx->shape[axis];
    return XCS_OK;
}

/* The positions, in a C-ordered [O, n, Q] array, of the elements idx
 * ([O, J, Q]) points at along axis 1: o*n*Q + idx*Q + q, flattened (owned;
 * traced when idx is). */
static xcs_status along_positions(const xcs_tensor *idx, int64_t O, int64_t J, int64_t Q, int64_t n,
                                  xcs_tensor **flat) {
    const int64_t s3[3] = {O, J, Q}, so[3] = {O, 1, 1}, sq[3] = {1, 1, Q}, all = -1;
    xcs_tensor *t[10] = {NULL};
    xcs_status st = xcs_arange(0, (double)O, 1, XCS_I64, &t[0]);
    if (!st) st = xcs_tensor_scalar_i64(XCS_I64, n * Q, &t[1]);
    if (!st) st = xcs_binary(XCS_OP_MUL, t[0], t[1], &t[2]);
    if (!st) st = xcs_reshape(t[2], 3, so, &t[3]); /* o*n*Q */
    if (!st) st = xcs_arange(0, (double)Q, 1, XCS_I64, &t[4]);
    if (!st) st = xcs_reshape(t[4], 3, sq, &t[5]); /* q */
    if (!st) st = xcs_tensor_scalar_i64(XCS_I64, Q, &t[6]);
    if (!st) st = xcs_reshape(idx, 3, s3, &t[7]);
    if (!st) st = xcs_binary(XCS_OP_MUL, t[7], t[6], &t[8]);
    if (!st) st = xcs_binary(XCS_OP_ADD, t[3], t[5], &t[9]);
    xcs_tensor *sum = NULL;
    if (!st) st = xcs_binary(XCS_OP_ADD, t[8], t[9], &sum);
    if (!st) st = xcs_reshape(sum, 1, &all, flat);
    xcs_tensor_free(sum);
    for (int i = 0; i < 10; i++) xcs_tensor_free(t[i]);
    return st;
}

xcs_status xcs_take_along_axis(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out) {
    int64_t O, J, Q, all = -1;
    xcs_status st = along_shape(x, idx, axis, "take_along_axis", &O, &J, &Q);
    if (st) return st;
    xcs_tensor *pos = NULL, *xf = NULL, *r = NULL;
    if (!(st = along_positions(idx, O, J, Q, x->shape[axis], &pos)) && !(st = xcs_reshape(x, 1, &all, &xf)) &&
        !(st = xcs_take_in_range(xf, pos, 0, &r)))
        st = xcs_reshape(r, idx->ndim, idx->shape, out);
    xcs_tensor_free(pos);
    xcs_tensor_free(xf);
    xcs_tensor_free(r);
    return st;
}

xcs_status xcs_scatter_add_along_axis(const xcs_tensor *idx, const xcs_tensor *src, int axis, int64_t n,
                                      xcs_tensor **out) {
    int64_t O, J, Q, all = -1, shape[XCS_MAX_DIMS];
    xcs_status st = along_shape(src, idx, axis, "scatter_add_along_axis", &O, &J, &Q);
    if (st) return st;
    if (J != src->shape[axis] || n < 0)
        return xcs_error(XCS_ERR_SHAPE, "scatter_add_along_axis: %lld indices for %lld values at axis %d, length %lld",
                         (long long)J, (long long)src->shape[axis], axis, (long long)n);
    memcpy(shape, src->shape, (size_t)src->ndim * sizeof *shape);
    shape[axis] = n;
    xcs_tensor *pos = NULL, *sf = NULL, *r = NULL;
    if (!(st = along_positions(idx, O, J, Q, n, &pos)) && !(st = xcs_reshape(src, 1, &all, &sf)) &&
        !(st = xcs_scatter_add_axis(pos, sf, 0, O * n * Q, &r)))
        st = xcs_reshape(r, src->ndim, shape, out);
    xcs_tensor_free(pos);
    xcs_tensor_free(sf);
    xcs_tensor_free(r);
    return st;
}
