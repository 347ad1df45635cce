/* args.c — parsing of the argument kinds every op shares: integers, axes,
 * shapes and dtypes, with errors that name the op and the value at fault. */
#include "xcs_py.h"

int xcs_py_int64(PyObject *obj, const char *what, int64_t *out) {
    if (PyBool_Check(obj) || PyFloat_Check(obj)) {
        xcs_py_errorf(XCS_ERR_TYPE, "%s must be an integer, got %s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            xcs_py_errorf(XCS_ERR_TYPE, "%s must be an integer, got %s", what, Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) {
        xcs_py_errorf(XCS_ERR_VALUE, "%s is out of the int64 range", what);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int xcs_py_axis(PyObject *axis, int ndim, const char *op, int *out) {
    int64_t a;
    if (xcs_py_int64(axis, "axis", &a)) return -1;
    if (a < -ndim || a >= ndim) {
        xcs_py_errorf(XCS_ERR_INDEX, "%s: axis %lld is out of bounds for array of dimension %d", op,
                      (long long)a, ndim);
        return -1;
    }
    *out = (int)(a < 0 ? a + ndim : a);
    return 0;
}

int xcs_py_axes(PyObject *axis, int ndim, const char *op, unsigned *mask, bool *empty) {
    if (empty) *empty = false;
    if (xcs_py_none(axis)) {
        *mask = ndim ? (1u << ndim) - 1u : 0u;
        return 0;
    }
    if (!PyTuple_Check(axis) && !PyList_Check(axis)) {
        int a;
        if (xcs_py_axis(axis, ndim, op, &a)) return -1;
        *mask = 1u << a;
        return 0;
    }
    unsigned m = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(axis); /* tuple or list */
    for (Py_ssize_t i = 0; i < n; i++) {
        int a;
        if (xcs_py_axis(PySequence_Fast_GET_ITEM(axis, i), ndim, op, &a)) return -1;
        if (m & (1u << a)) {
            xcs_py_errorf(XCS_ERR_SHAPE, "%s: duplicate value in 'axis' (axis %d given twice for an array of "
                          "dimension %d)", op, a, ndim);
            return -1;
        }
        m |= 1u << a;
    }
    if (empty) *empty = n == 0;
    *mask = m;
    return 0;
}

static int shape_entry(PyObject *item, const char *op, bool allow_neg1, int64_t *out) {
    if (xcs_py_int64(item, "shape entry", out)) return -1;
    if (*out < 0 && !(allow_neg1 && *out == -1)) {
        xcs_py_errorf(XCS_ERR_SHAPE, "%s: negative dimensions are not allowed (got %lld)", op, (long long)*out);
        return -1;
    }
    return 0;
}

int xcs_py_shape(PyObject *obj, const char *op, bool allow_neg1, int *ndim, int64_t *shape) {
    if (!PyTuple_Check(obj) && !PyList_Check(obj) && PyIndex_Check(obj)) {
        if (shape_entry(obj, op, allow_neg1, &shape[0]) == 0) {
            *ndim = 1;
            return 0;
        }
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) return -1;
        PyErr_Clear(); /* e.g. a 1-d array: try it as a sequence */
    }
    PyObject *seq = PySequence_Fast(obj, "");
    if (!seq) {
        PyErr_Clear();
        xcs_py_errorf(XCS_ERR_TYPE, "%s: shape must be an int or a sequence of ints, got %s", op,
                      Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > XCS_MAX_DIMS) {
        Py_DECREF(seq);
        xcs_py_errorf(XCS_ERR_SHAPE, "%s: xcs arrays have at most %d dimensions, shape has %zd", op,
                      XCS_MAX_DIMS, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (shape_entry(PySequence_Fast_GET_ITEM(seq, i), op, allow_neg1, &shape[i])) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    *ndim = (int)n;
    return 0;
}

int xcs_py_dtype(PyObject *obj, const char *op, xcs_dtype *out) {
    if (xcs_py_none(obj)) return 1;
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return -1;
    for (int i = 0; i < XCS_DTYPE_COUNT; i++) {
        if (obj == s->dtypes[i]) {
            *out = (xcs_dtype)i;
            return 0;
        }
    }
    if (PyUnicode_Check(obj)) {
        const char *name = PyUnicode_AsUTF8(obj);
        if (!name) return -1;
        if (xcs_dtype_from_name(name, out) == XCS_OK) return 0;
        xcs_error_clear();
    }
    /* numpy understands the rest: numpy.float32, float, "<f4", dtype objects */
    PyObject *dt = PyObject_CallOneArg(s->np_dtype, obj);
    if (!dt) {
        xcs_py_chain(XCS_ERR_TYPE, op);
        return -1;
    }
    PyObject *name = PyObject_GetAttrString(dt, "name");
    Py_DECREF(dt);
    if (!name) return -1;
    const char *cname = PyUnicode_AsUTF8(name);
    if (!cname) {
        Py_DECREF(name);
        return -1;
    }
    xcs_status st = xcs_dtype_from_name(cname, out);
    if (st) xcs_py_errorf(XCS_ERR_TYPE, "%s: %s", op, xcs_last_error());
    Py_DECREF(name);
    return st ? -1 : 0;
}
