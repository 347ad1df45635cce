/* ops.c — eager execution of primitives: check shapes and dtypes with the
 * op table's rules, allocate the result, hand the work to the backend that
 * owns the inputs' storage. */
#include "trace.h"

#include <math.h>
#include <string.h>

/* The dtype an op of rule `rule` computes in, given the promoted input
 * dtype; *result receives the output dtype. */
static xcs_status rule_dtypes(xcs_op op, xcs_dtype in, xcs_dtype *compute, xcs_dtype *result) {
    /* float16/bfloat16 keep their dtype but compute in float32 */
    const xcs_dtype c = xcs_dtype_compute(in);
    switch (xcs_op_get_info(op)->rule) {
    case XCS_RULE_NUMERIC:
        if (in == XCS_BOOL) /* numpy's hints for the two it names */
            return xcs_error(XCS_ERR_TYPE, "%s: not supported for dtype bool (%s)", xcs_op_name(op),
                             op == XCS_OP_NEG   ? "use ~ or logical_not instead"
                             : op == XCS_OP_SUB ? "use ^ or logical_xor instead"
                                                : "cast to an integer dtype first");
        /* fall through */
    case XCS_RULE_SAME:
        *compute = c;
        *result = in;
        return XCS_OK;
    case XCS_RULE_BOOLINT:
        *compute = in == XCS_BOOL ? XCS_I32 : c;
        *result = in == XCS_BOOL ? XCS_I32 : in;
        return XCS_OK;
    case XCS_RULE_FLOAT:
        /* numpy computes ints in float64 and bools in float16 (its first loop
         * a bool casts to safely), but for true_divide, whose type resolver
         * sends every int and bool to float64 */
        if (xcs_dtype_is_float(in)) {
            *compute = c;
            *result = in;
        } else {
            *result = in == XCS_BOOL && op != XCS_OP_DIV ? XCS_F16 : XCS_F64;
            *compute = xcs_dtype_compute(*result);
        }
        return XCS_OK;
    case XCS_RULE_CMP:
        *compute = c;
        *result = XCS_BOOL;
        return XCS_OK;
    case XCS_RULE_LOGIC:
        *compute = *result = XCS_BOOL;
        return XCS_OK;
    case XCS_RULE_INT:
        if (xcs_dtype_is_float(in))
            return xcs_error(XCS_ERR_TYPE, "%s: not supported for dtype %s (integer and bool only)",
                             xcs_op_name(op), xcs_dtype_name(in));
        *compute = *result = in;
        return XCS_OK;
    case XCS_RULE_ACC:
        *result = xcs_dtype_is_float(in) ? in : XCS_I64;
        *compute = xcs_dtype_compute(*result);
        return XCS_OK;
    case XCS_RULE_INDEX:
        *compute = c;
        *result = XCS_I64;
        return XCS_OK;
    case XCS_RULE_NONE:
        break;
    }
    return xcs_error(XCS_ERR_INTERNAL, "%s has no dtype rule", xcs_op_name(op));
}

static const xcs_backend *backend_of(const xcs_tensor *x) {
    return xcs_backend_for(x->storage->device);
}

/* A borrowed stack view of x broadcast to shape (no refcount: it lives only
 * while x does).  Shapes were checked by xcs_shape_broadcast. */
static void broadcast_view(const xcs_tensor *x, int ndim, const int64_t *shape, xcs_tensor *v) {
    *v = *x;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - (ndim - x->ndim);
        v->shape[i] = shape[i];
        v->strides[i] = (j < 0 || x->shape[j] != shape[i]) ? 0 : x->strides[j];
    }
}

/* Allocates out and runs one elementwise kernel over n broadcast inputs. */
static xcs_status run_elementwise(xcs_op op, int n, const xcs_tensor *const *in, int ndim,
                                  const int64_t *shape, xcs_dtype compute, xcs_dtype result,
                                  xcs_tensor **out) {
    const xcs_tensor *at[3] = {in[0], n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL};
    xcs_tensor *moved[3] = {NULL, NULL, NULL}, views[3];
    const xcs_tensor *ptrs[3];
    xcs_graph *g;
    xcs_status st;
    const bool traced = xcs_trace_any(n, in, &g, &st);
    if (!traced && !st) st = xcs_colocate(n, at, moved, xcs_op_name(op)); /* host operands join a device one */
    if (st) return st;
    for (int i = 0; i < n; i++) {
        broadcast_view(at[i], ndim, shape, &views[i]);
        ptrs[i] = &views[i];
    }
    if (traced) return xcs_trace_node(g, op, n, ptrs, result, compute, ndim, shape, 0, 0, out);
    const xcs_backend *be = backend_of(at[0]);
    if (!be) st = xcs_last_status();
    if (!st && (st = xcs_tensor_empty_on(at[0]->storage, result, ndim, shape, out)))
        st = xcs_error_context(st, "%s", xcs_op_name(op));
    if (!st && xcs_tensor_numel(*out) > 0 && (st = be->elementwise(op, n, ptrs, compute, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    for (int i = 0; i < n; i++) xcs_tensor_free(moved[i]);
    return st;
}

static xcs_status expect_kind(xcs_op op, xcs_op_kind kind, const char *what) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (!info || info->kind != kind)
        return xcs_error(XCS_ERR_VALUE, "%s is not a %s op", xcs_op_name(op), what);
    return XCS_OK;
}

xcs_status xcs_unary(xcs_op op, const xcs_tensor *x, xcs_tensor **out) {
    xcs_dtype compute, result;
    xcs_status st = expect_kind(op, XCS_KIND_UNARY, "unary");
    if (st || (st = rule_dtypes(op, x->dtype, &compute, &result))) return st;
    return run_elementwise(op, 1, &x, x->ndim, x->shape, compute, result, out);
}

/* False when x is a Python int (weak int64, one value: 0-d or a broadcast
 * view of one, on the host) outside int32 meeting an int32 array (dt). */
static bool weak_int_fits(const xcs_tensor *x, xcs_dtype dt) {
    if (!(x->flags & XCS_TENSOR_WEAK) || x->dtype != XCS_I64 || dt != XCS_I32 || x->graph) return true;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] > 1 && x->strides[d] != 0) return true; /* not one value */
    if (xcs_tensor_numel(x) == 0) return true;
    int64_t v = xcs_tensor_get_i64(x, 0);
    return v >= INT32_MIN && v <= INT32_MAX;
}

/* NEP 50: a Python int adopts the array's integer dtype, so it must fit it
 * (numpy raises OverflowError rather than wrapping 2**40 into int32). */
static xcs_status check_weak_fits(const xcs_tensor *x, xcs_dtype dt, const char *op) {
    if (weak_int_fits(x, dt)) return XCS_OK;
    return xcs_error(XCS_ERR_OVERFLOW, "%s: Python integer %lld is out of bounds for int32 (the array's dtype); "
                     "cast the array to int64 first", op, (long long)xcs_tensor_get_i64(x, 0));
}

/* NEP 50, numpy's and JAX's rule: a Python scalar takes the array's dtype
 * before the op.  Where that dtype computes wider (float16, bfloat16 compute
 * in float32), the scalar must be rounded to it first: float16 + 1.1 adds
 * float16(1.1), not 1.1 in float32.  *use is x, or a rounded copy in *tmp. */
static xcs_status weak_in(const xcs_tensor *x, xcs_dtype p, xcs_tensor **tmp, const xcs_tensor **use) {
    *tmp = NULL;
    *use = x;
    if (!(x->flags & XCS_TENSOR_WEAK) || x->dtype == p || xcs_dtype_compute(p) == p) return XCS_OK;
    xcs_status st = xcs_cast(x, p, tmp);
    if (!st) *use = *tmp;
    return st;
}

/* Runs an elementwise op of promoted dtype p whose operands in[first..n)
 * may be weak scalars: checks that weak ints fit p and rounds weak scalars
 * to p (weak_in) before the kernel. */
static xcs_status run_promoted(xcs_op op, int n, int first, const xcs_tensor *const *in, xcs_dtype p, int ndim,
                               const int64_t *shape, xcs_dtype compute, xcs_dtype result, xcs_tensor **out) {
    const xcs_tensor *use[3] = {in[0], in[1], n > 2 ? in[2] : NULL};
    xcs_tensor *tmp[3] = {NULL, NULL, NULL};
    xcs_status st = XCS_OK;
    for (int i = first; i < n && !st; i++)
        if (!(st = check_weak_fits(in[i], p, xcs_op_name(op)))) st = weak_in(in[i], p, &tmp[i], &use[i]);
    if (!st) st = run_elementwise(op, n, use, ndim, shape, compute, result, out);
    for (int i = 0; i < n; i++) xcs_tensor_free(tmp[i]);
    return st;
}

xcs_status xcs_binary(xcs_op op, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out) {
    int64_t shape[XCS_MAX_DIMS];
    int ndim;
    xcs_dtype compute, result;
    xcs_status st = expect_kind(op, XCS_KIND_BINARY, "binary");
    if (st) return st;
    if ((st = xcs_shape_broadcast(a->ndim, a->shape, b->ndim, b->shape, &ndim, shape)))
        return xcs_error_context(st, "%s", xcs_op_name(op));
    bool aw = a->flags & XCS_TENSOR_WEAK, bw = b->flags & XCS_TENSOR_WEAK;
    xcs_dtype p = xcs_dtype_promote(a->dtype, aw, b->dtype, bw);
    /* numpy compares a Python int outside int32 with an int32 array exactly */
    if (xcs_op_get_info(op)->rule == XCS_RULE_CMP && (!weak_int_fits(a, p) || !weak_int_fits(b, p))) p = XCS_I64;
    if ((st = rule_dtypes(op, p, &compute, &result))) return st;
    const xcs_tensor *in[2] = {a, b};
    if ((st = run_promoted(op, 2, 0, in, p, ndim, shape, compute, result, out))) return st;
    if (aw && bw) (*out)->flags |= XCS_TENSOR_WEAK;
    return XCS_OK;
}

xcs_status xcs_where(const xcs_tensor *cond, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out) {
    int64_t s1[XCS_MAX_DIMS], shape[XCS_MAX_DIMS];
    int n1, ndim;
    xcs_status st;
    if ((st = xcs_shape_broadcast(cond->ndim, cond->shape, a->ndim, a->shape, &n1, s1)) ||
        (st = xcs_shape_broadcast(n1, s1, b->ndim, b->shape, &ndim, shape)))
        return xcs_error_context(st, "where");
    xcs_dtype p = xcs_dtype_promote(a->dtype, a->flags & XCS_TENSOR_WEAK, b->dtype, b->flags & XCS_TENSOR_WEAK);
    const xcs_tensor *in[3] = {cond, a, b};
    return run_promoted(XCS_OP_WHERE, 3, 1, in, p, ndim, shape, xcs_dtype_compute(p), p, out);
}

xcs_status xcs_cast(const xcs_tensor *x, xcs_dtype dt, xcs_tensor **out) {
    if ((unsigned)dt >= XCS_DTYPE_COUNT) return xcs_error(XCS_ERR_TYPE, "cast: invalid dtype %d", (int)dt);
    return run_elementwise(XCS_OP_CAST, 1, &x, x->ndim, x->shape, dt, dt, out);
}

xcs_status xcs_copy(const xcs_tensor *x, xcs_tensor **out) {
    return run_elementwise(XCS_OP_COPY, 1, &x, x->ndim, x->shape, x->dtype, x->dtype, out);
}

xcs_status xcs_contiguous(const xcs_tensor *x, xcs_tensor **out) {
    return xcs_tensor_is_contiguous(x) ? xcs_tensor_view(x, out) : xcs_copy(x, out);
}

/* ---------------------------------------------------------------- reductions */

/* Drops the reduced axes of a freshly allocated keepdims-form result. */
static void drop_axes(xcs_tensor *t, unsigned axes) {
    int n = 0;
    for (int i = 0; i < t->ndim; i++)
        if (!((axes >> i) & 1u)) t->shape[n++] = t->shape[i];
    t->ndim = n;
    xcs_strides_contiguous(n, t->shape, t->strides);
}

xcs_status xcs_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out) {
    xcs_dtype compute, result;
    int64_t shape[XCS_MAX_DIMS], count = 1;
    xcs_status st = expect_kind(op, XCS_KIND_REDUCE, "reduction");
    if (st) return st;
    XCS_HALF_VIA_F32(x, out, true, xcs_reduce(op, x32, axes, keepdims, &r_));
    if ((st = rule_dtypes(op, x->dtype, &compute, &result))) return st;
    if (axes >> x->ndim)
        return xcs_error(XCS_ERR_VALUE, "%s: axis out of bounds for array of dimension %d",
                         xcs_op_name(op), x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        bool r = (axes >> i) & 1u;
        shape[i] = r ? 1 : x->shape[i];
        if (r) count *= x->shape[i];
    }
    int64_t out_numel;
    if ((st = xcs_shape_numel(x->ndim, shape, 0, &out_numel))) return st;
    if (count == 0 && out_numel > 0 && (op == XCS_OP_MAX || op == XCS_OP_MIN))
        return xcs_error(XCS_ERR_VALUE,
                         "zero-size array to reduction operation %s which has no identity",
                         op == XCS_OP_MAX ? "maximum" : "minimum");
    if (x->graph) {
        if ((st = xcs_trace_node(x->graph, op, 1, &x, result, compute, x->ndim, shape, axes, 0, out))) return st;
        if (!keepdims) drop_axes(*out, axes);
        return XCS_OK;
    }
    const xcs_backend *be = backend_of(x);
    if (!be) return xcs_last_status();
    if ((st = xcs_tensor_empty_on(x->storage, result, x->ndim, shape, out))) return st;
    if (out_numel > 0 && (st = be->reduce(op, x, axes, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
        return st;
    }
    if (!keepdims) drop_axes(*out, axes);
    return XCS_OK;
}

/* Running sum along axis a by doubling steps of whole-array ops (for a
 * backend without a cumsum kernel): at step s, y[i] += y[i - s] for i >= s,
 * as the head y[:s] (final already) and the shifted sum joined. */
static xcs_status cumsum_doubling(const xcs_tensor *x, int a, xcs_tensor **out) {
    const int64_t n = x->shape[a];
    xcs_tensor *y = NULL;
    xcs_status st = xcs_tensor_view(x, &y);
    for (int64_t s = 1; s < n && !st; s *= 2) {
        xcs_tensor *head = NULL, *hi = NULL, *lo = NULL, *tail = NULL, *next = NULL;
        const xcs_slice sh = {.start = 0, .stop = s, .step = 1, .has_start = true, .has_stop = true};
        const xcs_slice sl = {.start = 0, .stop = n - s, .step = 1, .has_start = true, .has_stop = true};
        const xcs_slice su = {.start = s, .stop = n, .step = 1, .has_start = true, .has_stop = true};
        if (!(st = xcs_slice_axis(y, a, sh, &head)) && !(st = xcs_slice_axis(y, a, su, &hi)) &&
            !(st = xcs_slice_axis(y, a, sl, &lo)) && !(st = xcs_binary(XCS_OP_ADD, hi, lo, &tail))) {
            const xcs_tensor *parts[2] = {head, tail};
            st = xcs_concat(2, parts, a, &next);
        }
        xcs_tensor *fr[] = {head, hi, lo, tail, y};
        for (size_t k = 0; k < sizeof fr / sizeof fr[0]; k++) xcs_tensor_free(fr[k]);
        y = next;
    }
    if (st) {
        xcs_tensor_free(y);
        return st;
    }
    *out = y;
    return XCS_OK;
}

xcs_status xcs_cumsum(const xcs_tensor *x, int axis, xcs_tensor **out) {
    *out = NULL;
    if (x->dtype != XCS_F32 && x->dtype != XCS_F64 && x->dtype != XCS_I32 && x->dtype != XCS_I64)
        return xcs_error(XCS_ERR_TYPE, "cumsum: dtype %s (cast bools and 16-bit floats first)", xcs_dtype_name(x->dtype));
    int a;
    if (x->ndim == 0 || xcs_axis_normalize(axis, x->ndim, &a))
        return xcs_error(XCS_ERR_VALUE, "cumsum: axis %d is out of bounds for array of dimension %d", axis, x->ndim);
    if (x->graph) return xcs_trace_node(x->graph, XCS_OP_CUMSUM, 1, &x, x->dtype, x->dtype, x->ndim, x->shape, 0, a, out);
    const xcs_backend *be = backend_of(x);
    if (!be) return xcs_last_status();
    if (!be->cumsum) return cumsum_doubling(x, a, out);
    xcs_status st = xcs_tensor_empty_on(x->storage, x->dtype, x->ndim, x->shape, out);
    if (!st && xcs_tensor_numel(*out) > 0 && (st = be->cumsum(x, a, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* fn (an op along one axis) of the flattened x: axis=None. */
static xcs_status on_flat(const xcs_tensor *x, xcs_status (*fn)(const xcs_tensor *, int, xcs_tensor **),
                          xcs_tensor **out) {
    int64_t flat = -1;
    xcs_tensor *f;
    xcs_status st = xcs_reshape(x, 1, &flat, &f);
    if (st) return st;
    st = fn(f, 0, out);
    xcs_tensor_free(f);
    return st;
}

xcs_status xcs_argsort(const xcs_tensor *x, int axis, xcs_tensor **out) {
    xcs_status st;
    XCS_HALF_VIA_F32(x, out, false, xcs_argsort(x32, axis, &r_));
    if (axis == XCS_AXIS_NONE) return on_flat(x, xcs_argsort, out);
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "argsort");
    if (x->graph) return xcs_trace_node(x->graph, XCS_OP_ARGSORT, 1, &x, XCS_I64, x->dtype, x->ndim, x->shape, 0, a, out);
    const xcs_backend *be = backend_of(x);
    if (!be) return xcs_last_status();
    if (!be->argsort && !xcs_tensor_on_host(x)) { /* no device kernel: sorted on the host, the indices sent back */
        xcs_tensor *h = NULL, *r = NULL;
        st = xcs_tensor_to(x, XCS_DEVICE_CPU, 0, &h);
        if (!st) st = xcs_argsort(h, a, &r);
        if (!st) st = xcs_tensor_to(r, x->storage->device, x->storage->device_index, out);
        xcs_tensor_free(h);
        xcs_tensor_free(r);
        return st;
    }
    if (!be->argsort) return xcs_error(XCS_ERR_UNSUPPORTED, "argsort has no kernel on %s", be->name);
    if ((st = xcs_tensor_empty_on(x->storage, XCS_I64, x->ndim, x->shape, out))) return st;
    if (xcs_tensor_numel(*out) > 0 && (st = be->argsort(x, a, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

xcs_status xcs_sort(const xcs_tensor *x, int axis, xcs_tensor **out) {
    xcs_status st;
    XCS_HALF_VIA_F32(x, out, true, xcs_sort(x32, axis, &r_));
    if (axis == XCS_AXIS_NONE) return on_flat(x, xcs_sort, out);
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "sort");
    if (x->graph) return xcs_trace_node(x->graph, XCS_OP_SORT, 1, &x, x->dtype, x->dtype, x->ndim, x->shape, 0, a, out);
    const xcs_backend *be = backend_of(x);
    if (!be) return xcs_last_status();
    if (!be->sort) { /* the values at their argsort */
        xcs_tensor *idx = NULL;
        if (!(st = xcs_argsort(x, a, &idx))) st = xcs_take_along_axis(x, idx, a, out);
        xcs_tensor_free(idx);
        return st;
    }
    if ((st = xcs_tensor_empty_on(x->storage, x->dtype, x->ndim, x->shape, out))) return st;
    if (xcs_tensor_numel(*out) > 0 && (st = be->sort(x, a, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

xcs_status xcs_argreduce(xcs_op op, const xcs_tensor *x, int axis, bool keepdims, xcs_tensor **out) {
    xcs_status st = expect_kind(op, XCS_KIND_ARGREDUCE, "arg-reduction");
    if (st) return st;
    XCS_HALF_VIA_F32(x, out, false, xcs_argreduce(op, x32, axis, keepdims, &r_));
    if (axis == XCS_AXIS_NONE) {
        int64_t flat = -1;
        xcs_tensor *f;
        if ((st = xcs_reshape(x, 1, &flat, &f))) return st;
        st = xcs_argreduce(op, f, 0, false, out);
        xcs_tensor_free(f);
        if (st || !keepdims) return st;
        int64_t ones[XCS_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++) ones[i] = 1;
        xcs_tensor *r;
        if ((st = xcs_reshape(*out, x->ndim, ones, &r))) return st;
        xcs_tensor_free(*out);
        *out = r;
        return XCS_OK;
    }
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "%s", xcs_op_name(op));
    if (x->shape[a] == 0)
        return xcs_error(XCS_ERR_VALUE, "attempt to get %s of an empty sequence", xcs_op_name(op));
    int64_t shape[XCS_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[a] = 1;
    if (x->graph) {
        if ((st = xcs_trace_node(x->graph, op, 1, &x, XCS_I64, x->dtype, x->ndim, shape, 1u << a, a, out)))
            return st;
        if (!keepdims) drop_axes(*out, 1u << a);
        return XCS_OK;
    }
    const xcs_backend *be = backend_of(x);
    if (!be) return xcs_last_status();
    if (!be->argreduce) return xcs_error(XCS_ERR_UNSUPPORTED, "%s has no kernel on %s", xcs_op_name(op), be->name);
    if ((st = xcs_tensor_empty_on(x->storage, XCS_I64, x->ndim, shape, out))) return st;
    if (xcs_tensor_numel(*out) > 0 && (st = be->argreduce(op, x, a, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
        return st;
    }
    if (!keepdims) drop_axes(*out, 1u << a);
    return XCS_OK;
}
