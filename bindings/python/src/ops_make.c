/* ops_make.c — shape/movement ops, conversion (cast, copy, asarray) and
 * array creation (full, arange, linspace, eye). */
#include "xcs_py.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t numel(const xcs_tensor *t) { return xcs_tensor_numel(t); }

/* Finishes an op: drops the operand, raises or wraps *out.  Takes the
 * result by address so that finish(&a, op(..., &out), &out) is well defined
 * whatever the order in which the arguments are evaluated. */
static PyObject *finish(xcs_py_arg *a, xcs_status st, xcs_tensor **out) {
    xcs_py_arg_drop(a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(*out);
}

/* ---------------------------------------------------------------- movement */

PyObject *xcs_py_reshape(PyObject *x, PyObject *shape_obj) {
    xcs_py_arg a;
    int64_t shape[XCS_MAX_DIMS];
    int nd;
    if (xcs_py_operand(x, "reshape", &a)) return NULL;
    if (xcs_py_shape(shape_obj, "reshape", true, &nd, shape)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, xcs_reshape(a.t, nd, shape, &out)); /* may copy */
    return finish(&a, st, &out);
}

PyObject *xcs_py_transpose(PyObject *x, PyObject *axes) {
    xcs_py_arg a;
    if (xcs_py_operand(x, "transpose", &a)) return NULL;
    xcs_tensor *out = NULL;
    if (xcs_py_none(axes)) return finish(&a, xcs_transpose(a.t, &out), &out);
    PyObject *seq = PySequence_Fast(axes, "axes must be a sequence of ints");
    if (!seq) {
        xcs_py_arg_drop(&a);
        return xcs_py_chain(XCS_ERR_TYPE, "transpose");
    }
    int perm[XCS_MAX_DIMS];
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != a.t->ndim) {
        int nd = a.t->ndim;
        Py_DECREF(seq);
        xcs_py_arg_drop(&a);
        return xcs_py_errorf(XCS_ERR_SHAPE, "transpose: axes don't match array: %zd axes given for an array of "
                             "dimension %d", n, nd);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (xcs_py_axis(PySequence_Fast_GET_ITEM(seq, i), a.t->ndim, "transpose", &perm[i])) {
            Py_DECREF(seq);
            xcs_py_arg_drop(&a);
            return NULL;
        }
    }
    Py_DECREF(seq);
    return finish(&a, xcs_permute(a.t, perm, &out), &out);
}

PyObject *xcs_py_squeeze(PyObject *x, PyObject *axis) {
    xcs_py_arg a;
    unsigned mask = 0;
    bool empty = false;
    if (xcs_py_operand(x, "squeeze", &a)) return NULL;
    if (!xcs_py_none(axis) && xcs_py_axes(axis, a.t->ndim, "squeeze", &mask, &empty)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    /* mask 0 means "every size-1 axis" to xcs_squeeze; axis=() means none */
    xcs_status st = empty ? xcs_tensor_view(a.t, &out) : xcs_squeeze(a.t, mask, &out);
    return finish(&a, st, &out);
}

static PyObject *py_reshape(PyObject *m, PyObject *args) {
    PyObject *x, *shape;
    if (!PyArg_UnpackTuple(args, "_reshape", 2, 2, &x, &shape)) return NULL;
    return xcs_py_reshape(x, shape);
}

static PyObject *py_transpose(PyObject *m, PyObject *args) {
    PyObject *x, *axes = Py_None;
    if (!PyArg_UnpackTuple(args, "_transpose", 1, 2, &x, &axes)) return NULL;
    return xcs_py_transpose(x, axes);
}

static PyObject *py_squeeze(PyObject *m, PyObject *args) {
    PyObject *x, *axis = Py_None;
    if (!PyArg_UnpackTuple(args, "_squeeze", 1, 2, &x, &axis)) return NULL;
    return xcs_py_squeeze(x, axis);
}

static PyObject *py_expand_dims(PyObject *m, PyObject *args) {
    PyObject *x, *axis;
    if (!PyArg_UnpackTuple(args, "_expand_dims", 2, 2, &x, &axis)) return NULL;
    xcs_py_arg a;
    if (xcs_py_operand(x, "expand_dims", &a)) return NULL;
    bool seq = PyTuple_Check(axis) || PyList_Check(axis);
    Py_ssize_t n = seq ? PySequence_Fast_GET_SIZE(axis) : 1;
    int out_nd = a.t->ndim + (int)n;
    unsigned mask = 0;
    if (out_nd > XCS_MAX_DIMS) {
        xcs_py_arg_drop(&a);
        return xcs_py_errorf(XCS_ERR_SHAPE, "expand_dims: result would have %d dimensions; xcs arrays have at "
                             "most %d", out_nd, XCS_MAX_DIMS);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int ax;
        if (xcs_py_axis(seq ? PySequence_Fast_GET_ITEM(axis, i) : axis, out_nd, "expand_dims", &ax)) {
            xcs_py_arg_drop(&a);
            return NULL;
        }
        if (mask & (1u << ax)) {
            xcs_py_arg_drop(&a);
            return xcs_py_errorf(XCS_ERR_SHAPE, "expand_dims: repeated axis %d", ax);
        }
        mask |= 1u << ax;
    }
    xcs_tensor *cur = NULL, *next = NULL;
    xcs_status st = xcs_tensor_view(a.t, &cur);
    for (int i = 0; !st && i < out_nd; i++) { /* ascending: each insert lands at its final place */
        if (!(mask & (1u << i))) continue;
        if (!(st = xcs_expand_dims(cur, i, &next))) {
            xcs_tensor_free(cur);
            cur = next;
        }
    }
    if (st) {
        xcs_tensor_free(cur);
        cur = NULL;
    }
    return finish(&a, st, &cur);
}

static PyObject *py_broadcast_to(PyObject *m, PyObject *args) {
    PyObject *x, *shape_obj;
    if (!PyArg_UnpackTuple(args, "_broadcast_to", 2, 2, &x, &shape_obj)) return NULL;
    xcs_py_arg a;
    int64_t shape[XCS_MAX_DIMS];
    int nd;
    if (xcs_py_operand(x, "broadcast_to", &a)) return NULL;
    if (xcs_py_shape(shape_obj, "broadcast_to", false, &nd, shape)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    xcs_tensor *out = NULL;
    return finish(&a, xcs_broadcast_to(a.t, nd, shape, &out), &out);
}

static PyObject *py_take(PyObject *m, PyObject *args) {
    PyObject *x, *idx, *axis = Py_None;
    if (!PyArg_UnpackTuple(args, "_take", 2, 3, &x, &idx, &axis)) return NULL;
    xcs_py_arg a = XCS_PY_ARG_INIT, i = XCS_PY_ARG_INIT;
    int ax = XCS_AXIS_NONE;
    if (xcs_py_operand(x, "take", &a) || xcs_py_operand(idx, "take", &i) ||
        (!xcs_py_none(axis) && xcs_py_axis(axis, a.t->ndim, "take", &ax))) {
        xcs_py_arg_drop(&a);
        xcs_py_arg_drop(&i);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    if (!XcsArray_Check(idx) && numel(i.t) == 0 && xcs_dtype_is_float(i.t->dtype)) {
        /* take(x, []): numpy reads an empty list as an empty integer index */
        xcs_tensor *c;
        if ((st = xcs_cast(i.t, XCS_I64, &c))) {
            xcs_py_arg_drop(&i);
            return finish(&a, st, &out);
        }
        xcs_py_arg_drop(&i);
        i.t = c;
        i.owned = true;
    }
    XCS_PY_CALL(st, numel(i.t) >= XCS_PY_NOGIL_MIN / 8, xcs_take(a.t, i.t, ax, &out));
    xcs_py_arg_drop(&i);
    return finish(&a, st, &out);
}

/* _scatter_add(idx, src, axis, n): take's adjoint (xcs_scatter_add_axis):
 * zeros of src's shape with idx's dims at axis replaced by n, each src
 * element added at its index, in C order. */
static PyObject *py_scatter_add(PyObject *m, PyObject *args) {
    PyObject *idx, *src;
    int axis;
    long long n;
    if (!PyArg_ParseTuple(args, "OOiL:_scatter_add", &idx, &src, &axis, &n)) return NULL;
    if (n < 0) return xcs_py_errorf(XCS_ERR_VALUE, "_scatter_add: n must not be negative (got %lld)", n);
    xcs_py_arg i = XCS_PY_ARG_INIT, s = XCS_PY_ARG_INIT;
    if (xcs_py_operand(idx, "scatter_add", &i) || xcs_py_operand(src, "scatter_add", &s)) {
        xcs_py_arg_drop(&i);
        xcs_py_arg_drop(&s);
        return NULL;
    }
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(s.t) >= XCS_PY_NOGIL_MIN / 8, xcs_scatter_add_axis(i.t, s.t, axis, (int64_t)n, &out));
    xcs_py_arg_drop(&i);
    return finish(&s, st, &out);
}

/* Converts a sequence of operands; returns the count or -1.  *args gets a
 * PyMem array of n converted operands, *ts their tensors. */
/* The items of seq_obj converted; *hold receives the sequence they came from
 * (a new list when seq_obj is an Array, a generator, ...), which keeps alive
 * the Arrays whose tensors are borrowed: free_seq releases it. */
static Py_ssize_t convert_seq(PyObject *seq_obj, const char *op, xcs_py_arg **args, const xcs_tensor ***ts,
                              PyObject **hold) {
    *hold = NULL;
    PyObject *seq = PySequence_Fast(seq_obj, "");
    if (!seq) {
        PyErr_Clear();
        xcs_py_errorf(XCS_ERR_TYPE, "%s: expected a sequence of arrays, got %s", op, Py_TYPE(seq_obj)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0 || n > INT32_MAX) {
        Py_DECREF(seq);
        xcs_py_errorf(XCS_ERR_VALUE, "%s: need at least one array", op);
        return -1;
    }
    *args = PyMem_Calloc((size_t)n, sizeof **args);
    *ts = PyMem_Calloc((size_t)n, sizeof **ts);
    Py_ssize_t done = 0;
    if (!*args || !*ts) {
        PyErr_NoMemory();
        goto fail;
    }
    for (; done < n; done++) {
        if (xcs_py_operand(PySequence_Fast_GET_ITEM(seq, done), op, &(*args)[done])) goto fail;
        (*ts)[done] = (*args)[done].t;
    }
    *hold = seq;
    return n;
fail:
    for (Py_ssize_t k = 0; *args && k < done; k++) xcs_py_arg_drop(&(*args)[k]);
    PyMem_Free(*args);
    PyMem_Free((void *)*ts);
    *args = NULL;
    *ts = NULL;
    Py_DECREF(seq);
    return -1;
}

static void free_seq(xcs_py_arg *args, const xcs_tensor **ts, Py_ssize_t n, PyObject *hold) {
    for (Py_ssize_t k = 0; k < n; k++) xcs_py_arg_drop(&args[k]);
    PyMem_Free(args);
    PyMem_Free((void *)ts);
    Py_XDECREF(hold);
}

static PyObject *join(PyObject *args, bool stack) {
    const char *op = stack ? "stack" : "concatenate";
    PyObject *seq, *axis_obj = NULL;
    if (!PyArg_UnpackTuple(args, op, 1, 2, &seq, &axis_obj)) return NULL;
    xcs_py_arg *as;
    const xcs_tensor **ts;
    PyObject *hold;
    Py_ssize_t n = convert_seq(seq, op, &as, &ts, &hold);
    if (n < 0) return NULL;
    int64_t axis = 0, total = 0;
    xcs_tensor **flat = NULL, *out = NULL;
    xcs_status st = XCS_OK;
    bool none = axis_obj && axis_obj == Py_None;
    if (none && stack) {
        xcs_py_errorf(XCS_ERR_TYPE, "stack: axis must be an integer, not None");
        goto done;
    }
    if (!none && axis_obj && xcs_py_int64(axis_obj, "axis", &axis)) goto done;
    if (axis < INT32_MIN || axis > INT32_MAX) axis = INT32_MAX; /* out of range: the op reports it */
    for (Py_ssize_t k = 0; k < n; k++) total += numel(ts[k]);
    if (none) { /* numpy: axis=None concatenates the flattened inputs */
        flat = PyMem_Calloc((size_t)n, sizeof *flat);
        if (!flat) {
            PyErr_NoMemory();
            goto done;
        }
        int64_t m1 = -1;
        for (Py_ssize_t k = 0; k < n && !st; k++) st = xcs_reshape(ts[k], 1, &m1, &flat[k]);
        if (!st) XCS_PY_CALL(st, total >= XCS_PY_NOGIL_MIN,
                             xcs_concat((int)n, (const xcs_tensor *const *)flat, 0, &out));
    } else if (stack) {
        XCS_PY_CALL(st, total >= XCS_PY_NOGIL_MIN, xcs_stack((int)n, ts, (int)axis, &out));
    } else {
        XCS_PY_CALL(st, total >= XCS_PY_NOGIL_MIN, xcs_concat((int)n, ts, (int)axis, &out));
    }
    if (st) xcs_py_raise(st);
done:
    if (flat) {
        for (Py_ssize_t k = 0; k < n; k++) xcs_tensor_free(flat[k]);
        PyMem_Free(flat);
    }
    free_seq(as, ts, n, hold);
    return PyErr_Occurred() ? NULL : xcs_py_wrap(out);
}

static PyObject *py_concatenate(PyObject *m, PyObject *args) { return join(args, false); }
static PyObject *py_stack(PyObject *m, PyObject *args) { return join(args, true); }

static PyObject *py_split(PyObject *m, PyObject *args) {
    PyObject *x, *ios, *axis_obj = NULL;
    if (!PyArg_UnpackTuple(args, "_split", 2, 3, &x, &ios, &axis_obj)) return NULL;
    xcs_py_arg a;
    int axis = 0;
    if (xcs_py_operand(x, "split", &a)) return NULL;
    if (a.t->ndim == 0) {
        xcs_py_arg_drop(&a);
        return xcs_py_errorf(XCS_ERR_INDEX, "split: cannot split a 0-d array");
    }
    if (axis_obj && xcs_py_axis(axis_obj, a.t->ndim, "split", &axis)) {
        xcs_py_arg_drop(&a);
        return NULL;
    }
    int64_t len = a.t->shape[axis], *idx = NULL, n_idx = 0;
    PyObject *res = NULL;
    xcs_tensor **outs = NULL;
    if (PyLong_Check(ios) || (PyIndex_Check(ios) && !PySequence_Check(ios))) {
        int64_t sections;
        if (xcs_py_int64(ios, "sections", &sections)) goto done;
        if (sections <= 0) {
            xcs_py_errorf(XCS_ERR_VALUE, "split: number of sections must be larger than 0, got %lld",
                          (long long)sections);
            goto done;
        }
        if (len % sections) {
            xcs_py_errorf(XCS_ERR_SHAPE, "array split does not result in an equal division: axis %d of size %lld "
                          "into %lld sections", axis, (long long)len, (long long)sections);
            goto done;
        }
        if (sections > INT32_MAX) {
            xcs_py_errorf(XCS_ERR_VALUE, "split: too many sections (%lld)", (long long)sections);
            goto done;
        }
        n_idx = sections - 1;
        idx = PyMem_Calloc((size_t)n_idx + 1, sizeof *idx);
        if (!idx) { PyErr_NoMemory(); goto done; }
        for (int64_t k = 1; k < sections; k++) idx[k - 1] = k * (len / sections);
    } else {
        PyObject *seq = PySequence_Fast(ios, "");
        if (!seq) {
            PyErr_Clear();
            xcs_py_errorf(XCS_ERR_TYPE, "split: indices_or_sections must be an int or a sequence of ints, got %s",
                          Py_TYPE(ios)->tp_name);
            goto done;
        }
        n_idx = PySequence_Fast_GET_SIZE(seq);
        idx = n_idx < INT32_MAX ? PyMem_Calloc((size_t)n_idx + 1, sizeof *idx) : NULL;
        if (!idx) { Py_DECREF(seq); PyErr_NoMemory(); goto done; }
        for (int64_t k = 0; k < n_idx; k++) {
            if (xcs_py_int64(PySequence_Fast_GET_ITEM(seq, k), "split index", &idx[k])) {
                Py_DECREF(seq);
                goto done;
            }
            if (idx[k] < 0) idx[k] = idx[k] + len < 0 ? 0 : idx[k] + len; /* numpy slices with them */
        }
        Py_DECREF(seq);
    }
    outs = PyMem_Calloc((size_t)n_idx + 1, sizeof *outs);
    if (!outs) { PyErr_NoMemory(); goto done; }
    xcs_status st = xcs_split(a.t, (int)n_idx, idx, axis, outs);
    if (st) { xcs_py_raise(st); goto done; }
    res = PyList_New(n_idx + 1);
    for (int64_t k = 0; k <= n_idx; k++) {
        PyObject *v = res ? xcs_py_wrap(outs[k]) : (xcs_tensor_free(outs[k]), NULL);
        outs[k] = NULL;
        if (!v) { Py_CLEAR(res); continue; }
        PyList_SET_ITEM(res, k, v);
    }
done:
    PyMem_Free(outs);
    PyMem_Free(idx);
    xcs_py_arg_drop(&a);
    return res;
}

/* ---------------------------------------------------------------- conversion */

PyObject *xcs_py_cast(PyObject *x, PyObject *dtype) {
    xcs_dtype dt;
    int rc = xcs_py_dtype(dtype, "astype", &dt);
    if (rc) return rc < 0 ? NULL : xcs_py_errorf(XCS_ERR_TYPE, "astype: dtype must not be None");
    xcs_py_arg a;
    if (xcs_py_operand(x, "astype", &a)) return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, xcs_cast(a.t, dt, &out));
    return finish(&a, st, &out);
}

PyObject *xcs_py_copy(PyObject *x) {
    xcs_py_arg a;
    if (xcs_py_operand(x, "copy", &a)) return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, numel(a.t) >= XCS_PY_NOGIL_MIN, xcs_copy(a.t, &out));
    return finish(&a, st, &out);
}

static PyObject *py_cast(PyObject *m, PyObject *args) {
    PyObject *x, *dtype;
    if (!PyArg_UnpackTuple(args, "_cast", 2, 2, &x, &dtype)) return NULL;
    return xcs_py_cast(x, dtype);
}

static PyObject *py_copy(PyObject *m, PyObject *x) { return xcs_py_copy(x); }

/* _asarray(obj, dtype=None, copy=None): copy=True always copies, otherwise
 * numpy inputs are wrapped zero-copy and Arrays returned as they are. */
static PyObject *py_asarray(PyObject *m, PyObject *args) {
    PyObject *obj, *dtype = Py_None, *copy_obj = Py_None;
    if (!PyArg_UnpackTuple(args, "_asarray", 1, 3, &obj, &dtype, &copy_obj)) return NULL;
    xcs_dtype dt;
    int rc = xcs_py_dtype(dtype, "asarray", &dt);
    if (rc < 0) return NULL;
    int copy = xcs_py_none(copy_obj) ? 0 : PyObject_IsTrue(copy_obj);
    if (copy < 0) return NULL;
    if (XcsArray_Check(obj) && !copy && (rc == 1 || dt == XCS_T(obj)->dtype)) return Py_NewRef(obj);
    xcs_py_arg a;
    if (xcs_py_operand(obj, "asarray", &a)) return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    bool big = numel(a.t) >= XCS_PY_NOGIL_MIN;
    if (rc == 0 && dt != a.t->dtype) XCS_PY_CALL(st, big, xcs_cast(a.t, dt, &out));
    else if (copy) XCS_PY_CALL(st, big, xcs_copy(a.t, &out));
    else if (a.owned) { out = a.t; a.owned = false; st = XCS_OK; } /* hand over the converted tensor */
    else st = xcs_tensor_view(a.t, &out);
    return finish(&a, st, &out);
}

/* ---------------------------------------------------------------- creation */

/* dtype argument, or the dtype numpy would infer for a Python scalar value. */
static int creation_dtype(PyObject *dtype, const xcs_tensor *value, const char *op, xcs_dtype *dt) {
    int rc = xcs_py_dtype(dtype, op, dt);
    if (rc == 1) *dt = value ? value->dtype : XCS_F64;
    return rc < 0 ? -1 : 0;
}

static PyObject *py_full(PyObject *m, PyObject *args) {
    PyObject *shape_obj, *value, *dtype = Py_None;
    if (!PyArg_UnpackTuple(args, "_full", 2, 3, &shape_obj, &value, &dtype)) return NULL;
    int64_t shape[XCS_MAX_DIMS], n = 1;
    int nd;
    xcs_dtype dt;
    xcs_py_arg v;
    if (xcs_py_shape(shape_obj, "full", false, &nd, shape)) return NULL;
    if (xcs_py_arg_from(value, "full", &v)) return NULL;
    if (creation_dtype(dtype, v.t, "full", &dt) || xcs_py_int_fits(value, dt, "full")) {
        xcs_py_arg_drop(&v);
        return NULL;
    }
    n = xcs_py_numel_sat(nd, shape);
    xcs_tensor *out = NULL, *c = NULL, *b = NULL;
    xcs_status st;
    bool exact = v.t->ndim == 0 && !v.t->graph && /* a traced value is traced through cast + broadcast */
                 (xcs_dtype_is_float(v.t->dtype) || llabs(xcs_tensor_get_i64(v.t, 0)) <= (1LL << 53));
    if (exact) { /* one fill kernel */
        double d = xcs_tensor_get_f64(v.t, 0);
        XCS_PY_CALL(st, n >= XCS_PY_NOGIL_MIN, xcs_full(dt, nd, shape, d, &out));
    } else if (!(st = xcs_cast(v.t, dt, &c)) && !(st = xcs_broadcast_to(c, nd, shape, &b))) {
        /* arrays and big integers: cast, broadcast, materialise */
        XCS_PY_CALL(st, n >= XCS_PY_NOGIL_MIN, xcs_copy(b, &out));
    }
    xcs_tensor_free(c);
    xcs_tensor_free(b);
    return finish(&v, st, &out);
}

static int get_double(PyObject *o, const char *what, double *out) {
    *out = PyFloat_AsDouble(o);
    if (*out == -1.0 && PyErr_Occurred()) {
        xcs_py_chain(XCS_ERR_TYPE, what);
        return -1;
    }
    return 0;
}

static PyObject *py_arange(PyObject *m, PyObject *args) {
    PyObject *a, *b, *c, *dtype = Py_None;
    double start, stop, step;
    xcs_dtype dt;
    if (!PyArg_UnpackTuple(args, "_arange", 3, 4, &a, &b, &c, &dtype)) return NULL;
    if (get_double(a, "arange: start", &start) || get_double(b, "arange: stop", &stop) ||
        get_double(c, "arange: step", &step) || creation_dtype(dtype, NULL, "arange", &dt) ||
        xcs_py_int_fits(a, dt, "arange") || xcs_py_int_fits(b, dt, "arange") || xcs_py_int_fits(c, dt, "arange"))
        return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    double len = step != 0 ? ceil((stop - start) / step) : 0;
    XCS_PY_CALL(st, len >= XCS_PY_NOGIL_MIN, xcs_arange(start, stop, step, dt, &out));
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *py_linspace(PyObject *m, PyObject *args) {
    PyObject *a, *b, *num_obj, *endpoint_obj = Py_True, *dtype = Py_None;
    double start, stop;
    int64_t num;
    xcs_dtype dt;
    if (!PyArg_UnpackTuple(args, "_linspace", 3, 5, &a, &b, &num_obj, &endpoint_obj, &dtype)) return NULL;
    int endpoint = PyObject_IsTrue(endpoint_obj);
    if (endpoint < 0 || get_double(a, "linspace: start", &start) || get_double(b, "linspace: stop", &stop) ||
        xcs_py_int64(num_obj, "linspace: num", &num) || creation_dtype(dtype, NULL, "linspace", &dt))
        return NULL;
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, num >= XCS_PY_NOGIL_MIN, xcs_linspace(start, stop, num, endpoint, dt, &out));
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *py_eye(PyObject *m, PyObject *args) {
    PyObject *n_obj, *m_obj = Py_None, *k_obj = NULL, *dtype = Py_None;
    int64_t n, cols, k = 0;
    xcs_dtype dt;
    if (!PyArg_UnpackTuple(args, "_eye", 1, 4, &n_obj, &m_obj, &k_obj, &dtype)) return NULL;
    if (xcs_py_int64(n_obj, "eye: N", &n) || (!xcs_py_none(m_obj) && xcs_py_int64(m_obj, "eye: M", &cols)) ||
        (k_obj && xcs_py_int64(k_obj, "eye: k", &k)) || creation_dtype(dtype, NULL, "eye", &dt))
        return NULL;
    if (xcs_py_none(m_obj)) cols = n;
    xcs_tensor *out = NULL;
    xcs_status st;
    XCS_PY_CALL(st, xcs_py_mul_sat(n, cols) >= XCS_PY_NOGIL_MIN, xcs_eye(n, cols, k, dt, &out));
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

PyMethodDef xcs_py_make_methods[] = {
    {"_reshape", py_reshape, METH_VARARGS, "_reshape(x, shape): -1 inferred; a view when the layout allows."},
    {"_transpose", py_transpose, METH_VARARGS, "_transpose(x, axes=None)"},
    {"_squeeze", py_squeeze, METH_VARARGS, "_squeeze(x, axis=None)"},
    {"_expand_dims", py_expand_dims, METH_VARARGS, "_expand_dims(x, axis): axis int or tuple."},
    {"_broadcast_to", py_broadcast_to, METH_VARARGS, "_broadcast_to(x, shape)"},
    {"_take", py_take, METH_VARARGS, "_take(x, indices, axis=None)"},
    {"_scatter_add", py_scatter_add, METH_VARARGS, "_scatter_add(idx, src, axis, n): take's adjoint"},
    {"_concatenate", py_concatenate, METH_VARARGS, "_concatenate(arrays, axis=0): axis None flattens first."},
    {"_stack", py_stack, METH_VARARGS, "_stack(arrays, axis=0)"},
    {"_split", py_split, METH_VARARGS, "_split(x, indices_or_sections, axis=0) -> list of views"},
    {"_cast", py_cast, METH_VARARGS, "_cast(x, dtype): a converted copy."},
    {"_copy", py_copy, METH_O, "_copy(x): a C-contiguous copy."},
    {"_asarray", py_asarray, METH_VARARGS, "_asarray(obj, dtype=None, copy=None)"},
    {"_full", py_full, METH_VARARGS, "_full(shape, value, dtype=None)"},
    {"_arange", py_arange, METH_VARARGS, "_arange(start, stop, step, dtype)"},
    {"_linspace", py_linspace, METH_VARARGS, "_linspace(start, stop, num, endpoint=True, dtype=None)"},
    {"_eye", py_eye, METH_VARARGS, "_eye(N, M=None, k=0, dtype=None)"},
    {NULL, NULL, 0, NULL},
};
