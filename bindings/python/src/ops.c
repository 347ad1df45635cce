/* ops.c — compute ops for the Python layer: elementwise, reductions, linear
 * algebra and the composites of ember.xcs.nn.  Each converts its operands
 * (xcs_py_operand: a device Array's op runs on its device), runs the C op
 * — without the GIL when the work is large (XCS_PY_NOGIL_MIN) — and maps a
 * failing status to its exception class. */
#include "xcs_py.h"

#include <stdint.h>
#include <string.h>

static int64_t numel(const xcs_tensor *t) { return xcs_tensor_numel(t); }

/* Looks up an op by table name and checks its kind. */
static int op_named(PyObject *name, xcs_op_kind kind, const char *what, xcs_op *op) {
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) {
        if (!PyErr_Occurred()) xcs_py_errorf(XCS_ERR_TYPE, "op name must be a str, got %s", Py_TYPE(name)->tp_name);
        return -1;
    }
    if (xcs_op_from_name(s, op)) {
        xcs_py_raise(xcs_last_status());
        return -1;
    }
    if (xcs_op_get_info(*op)->kind != kind) {
        xcs_py_errorf(XCS_ERR_VALUE, "'%s' is not a %s op", s, what);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- elementwise */

PyObject *xcs_py_unary(xcs_op op, PyObject *x) {
    xcs_py_arg a;
    if (xcs_py_operand(x, xcs_op_name(op), &a)) return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, xcs_unary(op, a.t, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

PyObject *xcs_py_binary_t(xcs_op op, const xcs_tensor *a, const xcs_tensor *b) {
    int64_t shape[XCS_MAX_DIMS], n = numel(a) > numel(b) ? numel(a) : numel(b);
    int nd;
    if (xcs_shape_broadcast(a->ndim, a->shape, b->ndim, b->shape, &nd, shape) == XCS_OK)
        n = xcs_py_numel_sat(nd, shape);
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, n >= XCS_PY_NOGIL_MIN, xcs_binary(op, a, b, &out));
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

PyObject *xcs_py_binary(xcs_op op, PyObject *a, PyObject *b) {
    xcs_py_arg x = XCS_PY_ARG_INIT, y = XCS_PY_ARG_INIT;
    const char *name = xcs_op_name(op);
    if (xcs_py_operand(a, name, &x) || xcs_py_operand(b, name, &y)) {
        xcs_py_arg_drop(&x);
        return NULL;
    }
    PyObject *r = xcs_py_binary_t(op, x.t, y.t);
    xcs_py_arg_drop(&x);
    xcs_py_arg_drop(&y);
    return r;
}

static PyObject *py_unary(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    xcs_op op;
    if (nargs != 2) return xcs_py_errorf(XCS_ERR_TYPE, "_unary(name, x) takes 2 arguments, got %zd", nargs);
    if (op_named(args[0], XCS_KIND_UNARY, "unary", &op)) return NULL;
    return xcs_py_unary(op, args[1]);
}

static PyObject *py_binary(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    xcs_op op;
    if (nargs != 3) return xcs_py_errorf(XCS_ERR_TYPE, "_binary(name, a, b) takes 3 arguments, got %zd", nargs);
    if (op_named(args[0], XCS_KIND_BINARY, "binary", &op)) return NULL;
    return xcs_py_binary(op, args[1], args[2]);
}

static PyObject *py_where(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    xcs_py_arg c = XCS_PY_ARG_INIT, a = XCS_PY_ARG_INIT, b = XCS_PY_ARG_INIT;
    if (nargs != 3) return xcs_py_errorf(XCS_ERR_TYPE, "_where(cond, a, b) takes 3 arguments, got %zd", nargs);
    if (xcs_py_operand(args[0], "where", &c) || xcs_py_operand(args[1], "where", &a) ||
        xcs_py_operand(args[2], "where", &b)) {
        xcs_py_arg_drop(&c);
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st = XCS_OK;
    bool big = numel(c.t) + numel(a.t) + numel(b.t) >= XCS_PY_NOGIL_MIN;
    XCS_PY_CALL(st, big, xcs_where(c.t, a.t, b.t, &out));
    xcs_py_arg_drop(&c);
    xcs_py_arg_drop(&a);
    xcs_py_arg_drop(&b);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

/* ---------------------------------------------------------------- reductions */

/* all/any over bool: min/max (the CPU backend's bool max is "any"), or a
 * count when the reduced extent is empty (numpy: all([]) is True). */
static xcs_status logical_reduce(bool is_all, const xcs_tensor *x, unsigned axes, bool keepdims,
                                 xcs_tensor **out) {
    xcs_tensor *b = NULL, *cnt = NULL, *zero = NULL;
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++)
        if ((axes >> i) & 1u) n *= x->shape[i];
    xcs_status st = x->dtype == XCS_BOOL ? xcs_tensor_view(x, &b) : xcs_cast(x, XCS_BOOL, &b);
    if (st) return st;
    if (n > 0) {
        st = xcs_reduce(is_all ? XCS_OP_MIN : XCS_OP_MAX, b, axes, keepdims, out);
    } else if (!(st = xcs_reduce(XCS_OP_SUM, b, axes, keepdims, &cnt)) &&
               !(st = xcs_tensor_scalar_i64(XCS_I64, 0, &zero))) {
        st = xcs_binary(is_all ? XCS_OP_EQ : XCS_OP_NE, cnt, zero, out);
    }
    xcs_tensor_free(b);
    xcs_tensor_free(cnt);
    xcs_tensor_free(zero);
    return st;
}

static xcs_status reduce_named(const char *name, const xcs_tensor *x, unsigned axes, bool keepdims,
                               xcs_tensor **out) {
    if (!strcmp(name, "sum")) return xcs_reduce(XCS_OP_SUM, x, axes, keepdims, out);
    if (!strcmp(name, "prod")) return xcs_reduce(XCS_OP_PROD, x, axes, keepdims, out);
    if (!strcmp(name, "max") || !strcmp(name, "amax")) return xcs_reduce(XCS_OP_MAX, x, axes, keepdims, out);
    if (!strcmp(name, "min") || !strcmp(name, "amin")) return xcs_reduce(XCS_OP_MIN, x, axes, keepdims, out);
    if (!strcmp(name, "mean")) return xcs_mean(x, axes, keepdims, out);
    if (!strcmp(name, "all")) return logical_reduce(true, x, axes, keepdims, out);
    if (!strcmp(name, "any")) return logical_reduce(false, x, axes, keepdims, out);
    if (!strcmp(name, "logsumexp")) return xcs_logsumexp(x, axes, keepdims, out);
    return xcs_error(XCS_ERR_VALUE, "unknown reduction '%s' (sum, prod, max, min, mean, all, any, logsumexp)",
                     name);
}

/* Casts the input to `dtype` before the op and the result after (numpy's
 * dtype= for reductions: sum(int32, dtype=int32) stays int32). */
typedef struct dtype_arg { bool set; xcs_dtype dt; } dtype_arg;

static int parse_dtype_arg(PyObject *dtype, const char *op, dtype_arg *d) {
    int rc = xcs_py_dtype(dtype, op, &d->dt);
    d->set = rc == 0;
    return rc < 0 ? -1 : 0;
}

static xcs_status pre_cast(const dtype_arg *d, const xcs_tensor *x, xcs_tensor **tmp, const xcs_tensor **use) {
    *tmp = NULL;
    *use = x;
    if (!d->set || x->dtype == d->dt) return XCS_OK;
    xcs_status st = xcs_cast(x, d->dt, tmp);
    if (!st) *use = *tmp;
    return st;
}

static xcs_status post_cast(const dtype_arg *d, xcs_tensor **out) {
    if (!d->set || (*out)->dtype == d->dt) return XCS_OK;
    xcs_tensor *c;
    xcs_status st = xcs_cast(*out, d->dt, &c);
    xcs_tensor_free(*out);
    *out = st ? NULL : c;
    return st;
}

/* pre-cast, op, post-cast: runs without the GIL for large inputs */
static xcs_status reduce_run(const char *name, const dtype_arg *d, const xcs_tensor *x, unsigned axes,
                             bool keepdims, xcs_tensor **out) {
    xcs_tensor *tmp;
    const xcs_tensor *use;
    xcs_status st = pre_cast(d, x, &tmp, &use);
    if (!st) st = reduce_named(name, use, axes, keepdims, out);
    if (!st) st = post_cast(d, out);
    xcs_tensor_free(tmp);
    return st;
}

PyObject *xcs_py_reduce(const char *name, PyObject *x, PyObject *axis, bool keepdims, PyObject *dtype) {
    xcs_py_arg a;
    dtype_arg d;
    unsigned axes;
    if (xcs_py_operand(x, name, &a)) return NULL;
    if (xcs_py_axes(axis, a.t->ndim, name, &axes, NULL) || parse_dtype_arg(dtype, name, &d)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, reduce_run(name, &d, a.t, axes, keepdims, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

PyObject *xcs_py_argreduce(xcs_op op, PyObject *x, PyObject *axis, bool keepdims) {
    xcs_py_arg a;
    int ax = XCS_AXIS_NONE;
    if (xcs_py_operand(x, xcs_op_name(op), &a)) return NULL;
    if (!xcs_py_none(axis) && xcs_py_axis(axis, a.t->ndim, xcs_op_name(op), &ax)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, xcs_argreduce(op, a.t, ax, keepdims, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static xcs_status varstd_run(bool is_std, const dtype_arg *d, const xcs_tensor *x, unsigned axes,
                             bool keepdims, int ddof, xcs_tensor **out) {
    xcs_tensor *tmp;
    const xcs_tensor *use;
    xcs_status st = pre_cast(d, x, &tmp, &use);
    if (!st) st = (is_std ? xcs_std : xcs_var)(use, axes, keepdims, ddof, out);
    xcs_tensor_free(tmp);
    return st;
}

PyObject *xcs_py_varstd(bool is_std, PyObject *x, PyObject *axis, bool keepdims, int ddof, PyObject *dtype) {
    const char *name = is_std ? "std" : "var";
    xcs_py_arg a;
    dtype_arg d;
    unsigned axes;
    if (xcs_py_operand(x, name, &a)) return NULL;
    if (xcs_py_axes(axis, a.t->ndim, name, &axes, NULL) || parse_dtype_arg(dtype, name, &d)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, varstd_run(is_std, &d, a.t, axes, keepdims, ddof, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *py_reduce(PyObject *m, PyObject *args) {
    const char *name;
    PyObject *x, *axis = Py_None, *dtype = Py_None;
    int keepdims = 0;
    if (!PyArg_ParseTuple(args, "sO|OpO:_reduce", &name, &x, &axis, &keepdims, &dtype)) return NULL;
    return xcs_py_reduce(name, x, axis, keepdims, dtype);
}

static PyObject *py_argreduce(PyObject *m, PyObject *args) {
    PyObject *name, *x, *axis = Py_None;
    int keepdims = 0;
    xcs_op op;
    if (!PyArg_ParseTuple(args, "OO|Op:_argreduce", &name, &x, &axis, &keepdims)) return NULL;
    if (op_named(name, XCS_KIND_ARGREDUCE, "arg-reduction", &op)) return NULL;
    return xcs_py_argreduce(op, x, axis, keepdims);
}

static PyObject *py_var(PyObject *m, PyObject *args) {
    PyObject *x, *axis = Py_None, *dtype = Py_None;
    int keepdims = 0, ddof = 0;
    if (!PyArg_ParseTuple(args, "O|OpiO:_var", &x, &axis, &keepdims, &ddof, &dtype)) return NULL;
    return xcs_py_varstd(false, x, axis, keepdims, ddof, dtype);
}

static PyObject *py_std(PyObject *m, PyObject *args) {
    PyObject *x, *axis = Py_None, *dtype = Py_None;
    int keepdims = 0, ddof = 0;
    if (!PyArg_ParseTuple(args, "O|OpiO:_std", &x, &axis, &keepdims, &ddof, &dtype)) return NULL;
    return xcs_py_varstd(true, x, axis, keepdims, ddof, dtype);
}

/* ---------------------------------------------------------------- linalg */

typedef xcs_status (*binop_fn)(const xcs_tensor *, const xcs_tensor *, xcs_tensor **);

static PyObject *two_operands(const char *name, PyObject *args, binop_fn fn) {
    PyObject *a0, *b0;
    if (!PyArg_UnpackTuple(args, name, 2, 2, &a0, &b0)) return NULL;
    xcs_py_arg a = XCS_PY_ARG_INIT, b = XCS_PY_ARG_INIT;
    if (xcs_py_operand(a0, name, &a) || xcs_py_operand(b0, name, &b)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) + numel(b.t) >= XCS_PY_NOGIL_MIN, fn(a.t, b.t, &out));
    xcs_py_arg_drop(&a);
    xcs_py_arg_drop(&b);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

/* _linalg(name, a[, b]): solve / cholesky / slogdet (xcs_linalg). */
static PyObject *py_linalg(PyObject *m, PyObject *args) {
    const char *name;
    PyObject *objs[2] = {NULL, NULL};
    if (!PyArg_ParseTuple(args, "sO|O:_linalg", &name, &objs[0], &objs[1])) return NULL;
    xcs_op op;
    if (xcs_op_from_name(name, &op) || xcs_op_get_info(op)->kind != XCS_KIND_LINALG)
        return xcs_py_errorf(XCS_ERR_VALUE, "_linalg: unknown op '%s'", name);
    const int n_in = objs[1] ? 2 : 1;
    xcs_py_arg a[2] = {XCS_PY_ARG_INIT, XCS_PY_ARG_INIT};
    for (int k = 0; k < n_in; k++)
        if (xcs_py_operand(objs[k], name, &a[k])) {
            xcs_py_arg_drop(&a[0]);
            return NULL;
        }
    const xcs_tensor *in[2] = {a[0].t, a[1].t};
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a[0].t) >= XCS_PY_NOGIL_MIN / 64, xcs_linalg(op, n_in, in, &out));
    xcs_py_arg_drop(&a[0]);
    xcs_py_arg_drop(&a[1]);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *py_matmul(PyObject *m, PyObject *args) { return two_operands("matmul", args, xcs_matmul); }
static PyObject *py_dot(PyObject *m, PyObject *args) { return two_operands("dot", args, xcs_dot); }

static PyObject *py_einsum(PyObject *m, PyObject *args) {
    Py_ssize_t n = PyTuple_GET_SIZE(args) - 1;
    if (n < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0)))
        return xcs_py_errorf(XCS_ERR_TYPE, "einsum(subscripts, *operands): subscripts must be a str followed by "
                             "1 or 2 operands");
    if (n > 2)
        return xcs_py_errorf(XCS_ERR_UNSUPPORTED, "einsum: %zd operands given; xcs einsum takes 1 or 2 (chain "
                             "two-operand einsums instead)", n);
    const char *subs = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0));
    if (!subs) return NULL;
    xcs_py_arg a[2] = {XCS_PY_ARG_INIT, XCS_PY_ARG_INIT};
    const xcs_tensor *xs[2];
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (xcs_py_operand(PyTuple_GET_ITEM(args, i + 1), "einsum", &a[i])) {
            xcs_py_arg_drop(&a[0]);
            return NULL;
        }
        xs[i] = a[i].t;
        total += numel(a[i].t);
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, total >= XCS_PY_NOGIL_MIN, xcs_einsum(subs, (int)n, xs, &out));
    xcs_py_arg_drop(&a[0]);
    xcs_py_arg_drop(&a[1]);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

/* _matmul_impl(a, b, "blocked"|"blas"): one CPU matmul implementation,
 * called directly so tests can check that they agree.  2-D operands of the
 * same dtype (the backend contract: no promotion, no broadcasting). */
static PyObject *py_matmul_impl(PyObject *m, PyObject *args) {
    PyObject *a0, *b0;
    const char *impl;
    if (!PyArg_ParseTuple(args, "OOs:_matmul_impl", &a0, &b0, &impl)) return NULL;
    xcs_status (*fn)(const xcs_tensor *, const xcs_tensor *, xcs_tensor *) =
        !strcmp(impl, "blocked") ? xcs_host_matmul_blocked : !strcmp(impl, "blas") ? xcs_host_matmul_blas : NULL;
    if (!fn) return xcs_py_errorf(XCS_ERR_VALUE, "_matmul_impl: impl must be 'blocked' or 'blas', got '%s'", impl);
    xcs_py_arg a = XCS_PY_ARG_INIT, b = XCS_PY_ARG_INIT;
    if (xcs_py_operand(a0, "matmul", &a) || xcs_py_operand(b0, "matmul", &b)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st = XCS_OK;
    if (a.t->ndim != 2 || b.t->ndim != 2 || a.t->shape[1] != b.t->shape[0] || a.t->dtype != b.t->dtype) {
        char sa[96], sb[96];
        xcs_py_errorf(XCS_ERR_SHAPE, "_matmul_impl: needs 2-D operands (M, K) @ (K, N) of one dtype, got %s %s "
                      "and %s %s", xcs_shape_str(a.t->ndim, a.t->shape, sa, sizeof sa), xcs_dtype_name(a.t->dtype),
                      xcs_shape_str(b.t->ndim, b.t->shape, sb, sizeof sb), xcs_dtype_name(b.t->dtype));
        goto done;
    }
    int64_t shape[2] = {a.t->shape[0], b.t->shape[1]};
    if ((st = xcs_tensor_empty(a.t->dtype, 2, shape, &out))) goto done;
    XCS_PY_CALL(st, numel(a.t) + numel(b.t) >= XCS_PY_NOGIL_MIN, fn(a.t, b.t, out));
    if (st) {
        xcs_tensor_free(out);
        out = NULL;
    }
done:
    xcs_py_arg_drop(&a);
    xcs_py_arg_drop(&b);
    if (PyErr_Occurred()) return NULL;
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

/* ---------------------------------------------------------------- nn composites */

/* fn(x, axis) with axis an int, or None: the last axis, or (flat) every
 * axis, as XCS_AXIS_NONE (then a 0-d x is fine). */
static PyObject *axis_op_ex(PyObject *args, const char *name, xcs_status (*fn)(const xcs_tensor *, int, xcs_tensor **),
                            bool flat) {
    PyObject *x, *axis = NULL;
    if (!PyArg_UnpackTuple(args, name, 1, 2, &x, &axis)) return NULL;
    xcs_py_arg a;
    int ax = -1;
    if (xcs_py_operand(x, name, &a)) return NULL;
    if (a.t->ndim == 0 && !(flat && xcs_py_none(axis))) {
        xcs_py_arg_drop(&a);
        return xcs_py_errorf(XCS_ERR_INDEX, "%s: needs an array with at least one dimension, got a 0-d array", name);
    }
    if (xcs_py_none(axis)) ax = flat ? XCS_AXIS_NONE : a.t->ndim - 1;
    else if (xcs_py_axis(axis, a.t->ndim, name, &ax)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, fn(a.t, ax, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *axis_op(PyObject *args, const char *name, xcs_status (*fn)(const xcs_tensor *, int, xcs_tensor **)) {
    return axis_op_ex(args, name, fn, false);
}

static PyObject *py_argsort(PyObject *m, PyObject *args) { return axis_op_ex(args, "argsort", xcs_argsort, true); }
static PyObject *py_sort(PyObject *m, PyObject *args) { return axis_op_ex(args, "sort", xcs_sort, true); }
static PyObject *py_cumsum(PyObject *m, PyObject *args) { return axis_op(args, "cumsum", xcs_cumsum); }
static PyObject *py_softmax(PyObject *m, PyObject *args) { return axis_op(args, "softmax", xcs_softmax); }
static PyObject *py_log_softmax(PyObject *m, PyObject *args) { return axis_op(args, "log_softmax", xcs_log_softmax); }

static PyObject *py_logsumexp(PyObject *m, PyObject *args) {
    PyObject *x, *axis = Py_None;
    int keepdims = 0;
    if (!PyArg_ParseTuple(args, "O|Op:_logsumexp", &x, &axis, &keepdims)) return NULL;
    return xcs_py_reduce("logsumexp", x, axis, keepdims, Py_None);
}

#define FAST(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL
PyMethodDef xcs_py_ops_methods[] = {
    {"_unary", FAST(py_unary), "_unary(name, x): elementwise unary op by table name ('exp', 'negative', ...)."},
    {"_binary", FAST(py_binary), "_binary(name, a, b): elementwise binary op by table name ('add', ...)."},
    {"_where", FAST(py_where), "_where(cond, a, b)"},
    {"_reduce", py_reduce, METH_VARARGS,
     "_reduce(name, x, axis=None, keepdims=False, dtype=None): name in sum, prod, max, min, mean, all, any."},
    {"_argreduce", py_argreduce, METH_VARARGS, "_argreduce(name, x, axis=None, keepdims=False): argmax/argmin."},
    {"_argsort", py_argsort, METH_VARARGS, "_argsort(x, axis=None): stable argsort (NaNs last), int64."},
    {"_sort", py_sort, METH_VARARGS, "_sort(x, axis=None): x sorted along axis (NaNs last)."},
    {"_cumsum", py_cumsum, METH_VARARGS, "_cumsum(x, axis): the running sum along axis, in order (float32/64, int32/64)."},
    {"_var", py_var, METH_VARARGS, "_var(x, axis=None, keepdims=False, ddof=0, dtype=None)"},
    {"_std", py_std, METH_VARARGS, "_std(x, axis=None, keepdims=False, ddof=0, dtype=None)"},
    {"_matmul", py_matmul, METH_VARARGS, "_matmul(a, b): numpy.matmul semantics."},
    {"_dot", py_dot, METH_VARARGS, "_dot(a, b): numpy.dot semantics."},
    {"_linalg", py_linalg, METH_VARARGS, "_linalg(name, a[, b]): 'solve' (a, b), 'cholesky', 'slogdet' ([..., 2])."},
    {"_einsum", py_einsum, METH_VARARGS, "_einsum(subscripts, *operands): 1 or 2 operands."},
    {"_matmul_impl", py_matmul_impl, METH_VARARGS,
     "_matmul_impl(a, b, impl): 2-D matmul through one CPU implementation, 'blocked' or 'blas' (tests)."},
    {"_softmax", py_softmax, METH_VARARGS, "_softmax(x, axis=-1)"},
    {"_log_softmax", py_log_softmax, METH_VARARGS, "_log_softmax(x, axis=-1)"},
    {"_logsumexp", py_logsumexp, METH_VARARGS, "_logsumexp(x, axis=None, keepdims=False)"},
    {NULL, NULL, 0, NULL},
};
#undef FAST
