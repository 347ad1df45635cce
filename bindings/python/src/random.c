/* random.c — ember.xcs.random: Philox keys as int64 (2,) Arrays, split, and
 * uniform / normal draws (xcs_random_*_a, pure functions of key and shape;
 * a traced key records them in its program). */
#include "xcs_py.h"

static int get_double(PyObject *o, const char *what, double *out) {
    *out = PyFloat_AsDouble(o);
    if (*out == -1.0 && PyErr_Occurred()) {
        xcs_py_chain(XCS_ERR_TYPE, what);
        return -1;
    }
    return 0;
}

/* An owned int64 tensor of shape (n, 2) (or (2,) when n < 0) holding keys. */
static PyObject *keys_array(const xcs_rng_key *keys, int64_t n) {
    int64_t shape[2] = {n < 0 ? 2 : n, 2};
    xcs_tensor *t;
    xcs_status st = xcs_tensor_empty(XCS_I64, n < 0 ? 1 : 2, n < 0 ? &shape[1] : shape, &t);
    if (st) return xcs_py_raise(st);
    int64_t *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < (n < 0 ? 1 : n); i++) {
        p[2 * i] = keys[i].k[0];
        p[2 * i + 1] = keys[i].k[1];
    }
    return xcs_py_wrap(t);
}

static PyObject *py_random_key(PyObject *m, PyObject *seed) {
    if (PyBool_Check(seed) || !PyIndex_Check(seed))
        return xcs_py_errorf(XCS_ERR_TYPE, "random.key: seed must be an int, got %s", Py_TYPE(seed)->tp_name);
    PyObject *i = PyNumber_Index(seed);
    if (!i) return NULL;
    unsigned long long s = PyLong_AsUnsignedLongLongMask(i); /* negative seeds wrap, like numpy's */
    Py_DECREF(i);
    if (s == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    xcs_rng_key k = xcs_rng_key_from_seed((uint64_t)s);
    return keys_array(&k, -1);
}

static PyObject *py_random_split(PyObject *m, PyObject *args) {
    PyObject *key_obj, *n_obj = NULL;
    int64_t n = 2;
    if (!PyArg_UnpackTuple(args, "_random_split", 1, 2, &key_obj, &n_obj)) return NULL;
    if (n_obj && xcs_py_int64(n_obj, "random.split: num", &n)) return NULL;
    xcs_py_arg a;
    if (xcs_py_arg_from(key_obj, "random.split", &a)) return NULL;
    xcs_tensor *out = NULL;
    xcs_status st = xcs_random_split_a(a.t, n, &out); /* a traced key: recorded in its program */
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *random_draw(PyObject *args, bool uniform) {
    const char *op = uniform ? "random.uniform" : "random.normal";
    PyObject *key_obj, *shape_obj = NULL, *dtype = Py_None, *lo_obj = NULL, *hi_obj = NULL;
    if (!PyArg_UnpackTuple(args, op, 1, uniform ? 5 : 3, &key_obj, &shape_obj, &dtype, &lo_obj, &hi_obj))
        return NULL;
    int64_t shape[XCS_MAX_DIMS], n = 1;
    int nd = 0;
    double lo = 0.0, hi = 1.0;
    xcs_dtype dt = XCS_F32;
    if (shape_obj && !xcs_py_none(shape_obj) && xcs_py_shape(shape_obj, op, false, &nd, shape)) return NULL;
    if (xcs_py_dtype(dtype, op, &dt) < 0) return NULL;
    if ((lo_obj && get_double(lo_obj, "random.uniform: minval", &lo)) ||
        (hi_obj && get_double(hi_obj, "random.uniform: maxval", &hi)))
        return NULL;
    xcs_py_arg a;
    if (xcs_py_arg_from(key_obj, op, &a)) return NULL;
    n = xcs_py_numel_sat(nd, shape);
    xcs_tensor *out = NULL;
    xcs_status st; /* a traced key (a jitted function's argument): the draw is recorded in its program */
    XCS_PY_CALL(st, n >= XCS_PY_NOGIL_MIN && !a.t->graph,
                uniform ? xcs_random_uniform_a(a.t, dt, nd, shape, lo, hi, &out)
                        : xcs_random_normal_a(a.t, dt, nd, shape, &out));
    xcs_py_arg_drop(&a);
    return st ? xcs_py_raise(st) : xcs_py_wrap(out);
}

static PyObject *py_random_uniform(PyObject *m, PyObject *args) { return random_draw(args, true); }
static PyObject *py_random_normal(PyObject *m, PyObject *args) { return random_draw(args, false); }

PyMethodDef xcs_py_random_methods[] = {
    {"_random_key", py_random_key, METH_O, "_random_key(seed) -> int64 (2,) key"},
    {"_random_split", py_random_split, METH_VARARGS, "_random_split(key, num=2) -> int64 (num, 2)"},
    {"_random_uniform", py_random_uniform, METH_VARARGS, "_random_uniform(key, shape=(), dtype=None, lo=0, hi=1)"},
    {"_random_normal", py_random_normal, METH_VARARGS, "_random_normal(key, shape=(), dtype=None)"},
    {NULL, NULL, 0, NULL},
};
