/* array.c — the Array type: lifetime, attributes, methods, repr, iteration
 * and the numpy protocol entry points (__array__, __array_ufunc__,
 * __array_function__), which forward to hooks registered by the Python
 * package (ember.xcs._dispatch) through _set_dispatch. */
#include "xcs_py.h"

/* ---------------------------------------------------------------- lifetime */

PyObject *xcs_py_wrap(xcs_tensor *t) {
    if (!t) return NULL;
    if (!t->graph && !xcs_tensor_on_host(t)) return xcs_py_wrap_device(t); /* an eager op's result on a device */
    XcsArray *a = (XcsArray *)XcsArray_Type.tp_alloc(&XcsArray_Type, 0);
    if (!a) {
        xcs_tensor_free(t);
        return NULL;
    }
    a->t = t;
    a->weakreflist = NULL;
    a->graph_owner = NULL;
    a->dev = NULL;
    if (!t->graph) {
        t->flags &= ~(unsigned)XCS_TENSOR_WEAK;
        return (PyObject *)a;
    }
    XcsGraph *owner = xcs_py_graph_owner(t->graph);
    if (!owner) { /* every xcs_graph the binding makes is owned by a Graph */
        Py_DECREF(a);
        return xcs_py_errorf(XCS_ERR_INTERNAL, "a traced result has no live Graph (a bug in ember.xcs)");
    }
    a->graph_owner = Py_NewRef((PyObject *)owner);
    return (PyObject *)a;
}

PyObject *xcs_py_wrap_device(xcs_tensor *d) {
    if (!d) return NULL;
    if (xcs_tensor_on_host(d)) return xcs_py_wrap(d);
    XcsArray *a = (XcsArray *)XcsArray_Type.tp_alloc(&XcsArray_Type, 0);
    if (!a) {
        xcs_tensor_free(d);
        return NULL;
    }
    d->flags &= ~(unsigned)XCS_TENSOR_WEAK;
    a->t = NULL; /* made by xcs_py_host when the values are read on the host */
    a->weakreflist = NULL;
    a->graph_owner = NULL;
    a->dev = d;
    return (PyObject *)a;
}

xcs_tensor *xcs_py_host(PyObject *o) {
    XcsArray *a = (XcsArray *)o;
    if (a->t) return a->t;
    xcs_tensor *h = NULL;
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_tensor_to(a->dev, XCS_DEVICE_CPU, 0, &h);
    Py_END_ALLOW_THREADS
    if (st) {
        xcs_py_raise(st);
        return NULL;
    }
    if (a->t) xcs_tensor_free(h); /* another thread made it meanwhile */
    else a->t = h;
    return a->t;
}

xcs_tensor *xcs_py_placed(PyObject *o) {
    XcsArray *a = (XcsArray *)o;
    return a->dev ? a->dev : xcs_py_host(o);
}

static void array_dealloc(PyObject *self) {
    XcsArray *a = (XcsArray *)self;
    if (a->weakreflist) PyObject_ClearWeakRefs(self);
    xcs_tensor_free(a->t); /* may release a numpy buffer: runs with the GIL held */
    a->t = NULL;
    xcs_tensor_free(a->dev);
    a->dev = NULL;
    Py_CLEAR(a->graph_owner); /* after the tensor: it borrowed the graph */
    Py_TYPE(self)->tp_free(self);
}

/* ---------------------------------------------------------------- attributes */

static PyObject *get_shape(PyObject *self, void *c) {
    const xcs_tensor *t = XCS_T(self);
    PyObject *r = PyTuple_New(t->ndim);
    for (int i = 0; r && i < t->ndim; i++) {
        PyObject *v = PyLong_FromLongLong(t->shape[i]);
        if (!v) { Py_CLEAR(r); break; }
        PyTuple_SET_ITEM(r, i, v);
    }
    return r;
}

static PyObject *get_strides(PyObject *self, void *c) {
    const xcs_tensor *t = ((XcsArray *)self)->dev ? xcs_py_host(self) : XCS_T(self); /* the host copy's */
    if (!t) return NULL;
    int64_t isz = (int64_t)xcs_dtype_size(t->dtype);
    PyObject *r = PyTuple_New(t->ndim);
    for (int i = 0; r && i < t->ndim; i++) {
        PyObject *v = PyLong_FromLongLong(t->strides[i] * isz);
        if (!v) { Py_CLEAR(r); break; }
        PyTuple_SET_ITEM(r, i, v);
    }
    return r;
}

static PyObject *get_dtype(PyObject *self, void *c) {
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return NULL;
    return xcs_py_np_dtype(s, XCS_T(self)->dtype);
}

static PyObject *get_ndim(PyObject *self, void *c) { return PyLong_FromLong(XCS_T(self)->ndim); }
static PyObject *get_size(PyObject *self, void *c) { return PyLong_FromLongLong(xcs_tensor_numel(XCS_T(self))); }
static PyObject *get_itemsize(PyObject *self, void *c) {
    return PyLong_FromSize_t(xcs_dtype_size(XCS_T(self)->dtype));
}
static PyObject *get_nbytes(PyObject *self, void *c) {
    const xcs_tensor *t = XCS_T(self);
    return PyLong_FromLongLong(xcs_tensor_numel(t) * (int64_t)xcs_dtype_size(t->dtype));
}
static PyObject *get_T(PyObject *self, void *c) { return xcs_py_transpose(self, Py_None); }
static PyObject *get_device(PyObject *self, void *c) {
    const xcs_tensor *d = ((XcsArray *)self)->dev;
    const xcs_storage *s = d ? d->storage : XCS_T(self)->storage;
    if (s && s->device == XCS_DEVICE_CUDA) return PyUnicode_FromFormat("cuda:%d", s->device_index);
    return PyUnicode_FromString("cpu");
}

static PyObject *forward(const char *name, PyObject *self, PyObject *args, PyObject *kw);

/* name(self) from ember.xcs.numpy: the computed attributes */
static PyObject *forward0(const char *name, PyObject *self) {
    PyObject *none = PyTuple_New(0);
    PyObject *r = none ? forward(name, self, none, NULL) : NULL;
    Py_XDECREF(none);
    return r;
}
static PyObject *get_real(PyObject *self, void *c) { return forward0("real", self); }
static PyObject *get_imag(PyObject *self, void *c) { return forward0("imag", self); }
static PyObject *get_mT(PyObject *self, void *c) { return forward0("matrix_transpose", self); }
static PyObject *get_at(PyObject *self, void *c) { return forward0("_array_at", self); }

static PyGetSetDef array_getset[] = {
    {"shape", get_shape, NULL, "Tuple of dimensions.", NULL},
    {"dtype", get_dtype, NULL, "Element type, as a numpy.dtype.", NULL},
    {"ndim", get_ndim, NULL, "Number of dimensions.", NULL},
    {"size", get_size, NULL, "Number of elements.", NULL},
    {"itemsize", get_itemsize, NULL, "Bytes per element.", NULL},
    {"nbytes", get_nbytes, NULL, "size * itemsize.", NULL},
    {"strides", get_strides, NULL, "Bytes to step in each dimension (numpy convention).", NULL},
    {"T", get_T, NULL, "The transposed array (a view).", NULL},
    {"mT", get_mT, NULL, "The last two axes swapped (a view).", NULL},
    {"at", get_at, NULL, "Functional index updates: x.at[key].set(v), .add(v), ... (a new Array; see ember.xcs._at).",
     NULL},
    {"real", get_real, NULL, "The real part: the values (xcs has no complex dtypes).", NULL},
    {"imag", get_imag, NULL, "The imaginary part: zeros (xcs has no complex dtypes).", NULL},
    {"device", get_device, NULL, "Where the data lives: 'cpu' or 'cuda:N' (copied to the host when first read there).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---------------------------------------------------------------- methods */

/* True when a method call fits its fast path: at most `pos` positional
 * arguments and keywords among `names`. */
static bool plain_call(PyObject *args, PyObject *kw, Py_ssize_t pos, char **names) {
    if (PyTuple_GET_SIZE(args) > pos) return false;
    PyObject *key, *value;
    Py_ssize_t at = 0;
    while (kw && PyDict_Next(kw, &at, &key, &value)) {
        bool known = false;
        for (char **n = names; *n && !known; n++) known = PyUnicode_Check(key) && !PyUnicode_CompareWithASCIIString(key, *n);
        if (!known) return false;
    }
    return true;
}

static PyObject *m_reduce_common(const char *name, PyObject *self, PyObject *args, PyObject *kw,
                                 bool with_dtype) {
    static char *kw_dtype[] = {"axis", "keepdims", "dtype", NULL};
    static char *kw_plain[] = {"axis", "keepdims", NULL};
    PyObject *axis = Py_None, *dtype = Py_None;
    int keepdims = 0;
    if (!plain_call(args, kw, 1, with_dtype ? kw_dtype : kw_plain)) /* numpy's positional order, where=, ... */
        return forward(name, self, args, kw);
    if (with_dtype ? !PyArg_ParseTupleAndKeywords(args, kw, "|Op$O", kw_dtype, &axis, &keepdims, &dtype)
                   : !PyArg_ParseTupleAndKeywords(args, kw, "|Op", kw_plain, &axis, &keepdims))
        return NULL;
    return xcs_py_reduce(name, self, axis, keepdims, dtype);
}

static PyObject *m_sum(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("sum", s, a, k, true); }
static PyObject *m_prod(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("prod", s, a, k, true); }
static PyObject *m_mean(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("mean", s, a, k, true); }
static PyObject *m_max(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("max", s, a, k, false); }
static PyObject *m_min(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("min", s, a, k, false); }
static PyObject *m_all(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("all", s, a, k, false); }
static PyObject *m_any(PyObject *s, PyObject *a, PyObject *k) { return m_reduce_common("any", s, a, k, false); }

static PyObject *m_arg_common(xcs_op op, PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"axis", "keepdims", NULL};
    PyObject *axis = Py_None;
    int keepdims = 0;
    if (!plain_call(args, kw, 1, kwlist)) return forward(op == XCS_OP_ARGMAX ? "argmax" : "argmin", self, args, kw);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op", kwlist, &axis, &keepdims)) return NULL;
    return xcs_py_argreduce(op, self, axis, keepdims);
}
static PyObject *m_argmax(PyObject *s, PyObject *a, PyObject *k) { return m_arg_common(XCS_OP_ARGMAX, s, a, k); }
static PyObject *m_argmin(PyObject *s, PyObject *a, PyObject *k) { return m_arg_common(XCS_OP_ARGMIN, s, a, k); }

static PyObject *m_varstd_common(bool is_std, PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"axis", "keepdims", "ddof", "dtype", NULL};
    PyObject *axis = Py_None, *dtype = Py_None;
    int keepdims = 0, ddof = 0;
    if (!plain_call(args, kw, 1, kwlist)) return forward(is_std ? "std" : "var", self, args, kw);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Opi$O", kwlist, &axis, &keepdims, &ddof, &dtype)) return NULL;
    return xcs_py_varstd(is_std, self, axis, keepdims, ddof, dtype);
}
static PyObject *m_var(PyObject *s, PyObject *a, PyObject *k) { return m_varstd_common(false, s, a, k); }
static PyObject *m_std(PyObject *s, PyObject *a, PyObject *k) { return m_varstd_common(true, s, a, k); }

/* Accepts f(a, b, c) and f((a, b, c)) like numpy's reshape/transpose;
 * returns a new reference to the tuple/object that describes the argument. */
static PyObject *varargs_or_one(PyObject *args) {
    if (PyTuple_GET_SIZE(args) == 1) return Py_NewRef(PyTuple_GET_ITEM(args, 0));
    return Py_NewRef(args);
}

/* kw holds at most order=: 0 when it is absent or 'C', 1 (*order set,
 * borrowed) for another order (ember.xcs.numpy's function computes it),
 * -1 with the error set for another keyword. */
static int check_order(PyObject *kw, const char *op, PyObject **order) {
    if (!kw) return 0;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int other = 0;
    while (PyDict_Next(kw, &pos, &key, &value)) {
        if (!PyUnicode_Check(key) || PyUnicode_CompareWithASCIIString(key, "order") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", op, key);
            return -1;
        }
        if (value != Py_None && (!PyUnicode_Check(value) || PyUnicode_CompareWithASCIIString(value, "C") != 0)) {
            *order = value;
            other = 1;
        }
    }
    return other;
}

/* ember.xcs.numpy.<fn>(self[, arg], order=order): the orders other than 'C'. */
static PyObject *call_with_order(const char *fn, PyObject *self, PyObject *arg, PyObject *order) {
    PyObject *args = arg ? PyTuple_Pack(1, arg) : PyTuple_New(0);
    PyObject *kw = args ? Py_BuildValue("{sO}", "order", order) : NULL;
    PyObject *r = kw ? forward(fn, self, args, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(args);
    return r;
}

static PyObject *m_reshape(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *order = NULL;
    const int rc = check_order(kw, "reshape", &order);
    if (rc < 0) return NULL;
    if (PyTuple_GET_SIZE(args) == 0)
        return xcs_py_errorf(XCS_ERR_TYPE, "reshape() needs a shape, e.g. x.reshape(2, 3) or x.reshape((2, 3))");
    PyObject *shape = varargs_or_one(args);
    PyObject *r = rc ? call_with_order("reshape", self, shape, order) : xcs_py_reshape(self, shape);
    Py_DECREF(shape);
    return r;
}

static PyObject *m_transpose(PyObject *self, PyObject *args) {
    if (PyTuple_GET_SIZE(args) == 0) return xcs_py_transpose(self, Py_None);
    PyObject *axes = varargs_or_one(args);
    PyObject *r = xcs_py_transpose(self, axes);
    Py_DECREF(axes);
    return r;
}

static PyObject *m_squeeze(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"axis", NULL};
    PyObject *axis = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:squeeze", kwlist, &axis)) return NULL;
    return xcs_py_squeeze(self, axis);
}

static PyObject *m_astype(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dtype", "copy", NULL};
    PyObject *dtype;
    int copy = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:astype", kwlist, &dtype, &copy)) return NULL;
    xcs_dtype dt;
    int rc = xcs_py_dtype(dtype, "astype", &dt);
    if (rc < 0) return NULL;
    if (rc > 0) return xcs_py_errorf(XCS_ERR_TYPE, "astype: dtype must not be None");
    if (!copy && dt == XCS_T(self)->dtype) return Py_NewRef(self);
    return xcs_py_cast(self, dtype);
}

static PyObject *m_copy(PyObject *self, PyObject *unused) { return xcs_py_copy(self); }

/* ravel(order) / flatten(order): order also positionally, checked the same
 * way (*order: a new reference when the result is 1). */
static int check_order_arg(PyObject *args, PyObject *kw, const char *op, PyObject **order) {
    if (PyTuple_GET_SIZE(args) > 1 || (PyTuple_GET_SIZE(args) == 1 && kw && PyDict_Size(kw) > 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most one argument (order)", op);
        return -1;
    }
    PyObject *d = PyTuple_GET_SIZE(args) == 1 ? Py_BuildValue("{sO}", "order", PyTuple_GET_ITEM(args, 0))
                                              : Py_XNewRef(kw);
    if (PyTuple_GET_SIZE(args) == 1 && !d) return -1;
    int rc = check_order(d, op, order);
    if (rc > 0) Py_INCREF(*order);
    Py_XDECREF(d);
    return rc;
}

static PyObject *m_ravel(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *order = NULL;
    const int rc = check_order_arg(args, kw, "ravel", &order);
    if (rc < 0) return NULL;
    if (rc) {
        PyObject *r = call_with_order("ravel", self, NULL, order);
        Py_DECREF(order);
        return r;
    }
    PyObject *m1 = PyLong_FromLong(-1);
    if (!m1) return NULL;
    PyObject *r = xcs_py_reshape(self, m1);
    Py_DECREF(m1);
    return r;
}

static PyObject *m_flatten(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *flat = m_ravel(self, args, kw);
    if (!flat) return NULL;
    PyObject *r = xcs_py_copy(flat); /* numpy's flatten always returns a copy */
    Py_DECREF(flat);
    return r;
}

static PyObject *scalar_at(const xcs_tensor *t, int64_t flat) {
    switch (t->dtype) {
    case XCS_BOOL: return PyBool_FromLong(xcs_tensor_get_i64(t, flat) != 0);
    case XCS_I32:
    case XCS_I64: return PyLong_FromLongLong(xcs_tensor_get_i64(t, flat));
    default: return PyFloat_FromDouble(xcs_tensor_get_f64(t, flat));
    }
}

static PyObject *m_item(PyObject *self, PyObject *args) {
    if (xcs_py_concrete(XCS_T(self), "as a Python scalar (.item())")) return NULL;
    const xcs_tensor *t = xcs_py_host(self);
    if (!t) return NULL;
    int64_t n = xcs_tensor_numel(t);
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs == 0) {
        if (n != 1)
            return xcs_py_errorf(XCS_ERR_SHAPE, "can only convert an array of size 1 to a Python scalar "
                                 "(this one has size %lld)", (long long)n);
        return scalar_at(t, 0);
    }
    if (nargs == 1 && !PyTuple_Check(PyTuple_GET_ITEM(args, 0))) {
        int64_t i;
        if (xcs_py_int64(PyTuple_GET_ITEM(args, 0), "item index", &i)) return NULL;
        if (i < -n || i >= n)
            return xcs_py_errorf(XCS_ERR_INDEX, "index %lld is out of bounds for size %lld", (long long)i,
                                 (long long)n);
        return scalar_at(t, i < 0 ? i + n : i);
    }
    PyObject *key = varargs_or_one(args);
    PyObject *sub = xcs_py_getitem(self, key);
    Py_DECREF(key);
    if (!sub) return NULL;
    const xcs_tensor *st = xcs_py_host(sub);
    PyObject *r = !st ? NULL
                  : xcs_tensor_numel(st) == 1 && st->ndim == 0
                      ? scalar_at(st, 0)
                      : xcs_py_errorf(XCS_ERR_INDEX, "item: incorrect number of indices for array");
    Py_DECREF(sub);
    return r;
}

static PyObject *m_tolist(PyObject *self, PyObject *unused) {
    if (xcs_py_concrete(XCS_T(self), "as Python lists (.tolist())")) return NULL;
    PyObject *nd = xcs_py_to_numpy(self);
    if (!nd) return NULL;
    PyObject *r = PyObject_CallMethod(nd, "tolist", NULL);
    Py_DECREF(nd);
    return r;
}

static PyObject *m_array(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dtype", "copy", NULL};
    PyObject *dtype = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:__array__", kwlist, &dtype, &copy)) return NULL;
    if (xcs_py_concrete(XCS_T(self), "as a numpy array (__array__, np.asarray)")) return NULL;
    PyObject *nd = xcs_py_to_numpy(self);
    if (!nd || (dtype == Py_None && copy != Py_True)) return nd;
    xcs_py_state *s = xcs_py_state_get();
    PyObject *a = s ? PyTuple_Pack(1, nd) : NULL;
    PyObject *k = a ? Py_BuildValue("{sOsO}", "dtype", dtype, "copy", copy) : NULL;
    PyObject *r = k ? PyObject_Call(s->np_asarray, a, k) : NULL;
    Py_XDECREF(k);
    Py_XDECREF(a);
    Py_DECREF(nd);
    return r;
}

/* __array_ufunc__(ufunc, method, *inputs, **kwargs) and
 * __array_function__(func, types, args, kwargs): forwarded unchanged. */
static PyObject *m_array_ufunc(PyObject *self, PyObject *args, PyObject *kw) {
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return NULL;
    if (!s->ufunc_hook) Py_RETURN_NOTIMPLEMENTED; /* _xcs imported without ember.xcs */
    return PyObject_Call(s->ufunc_hook, args, kw);
}

static PyObject *m_array_function(PyObject *self, PyObject *args) {
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return NULL;
    if (!s->function_hook) Py_RETURN_NOTIMPLEMENTED;
    return PyObject_Call(s->function_hook, args, NULL);
}

static PyObject *m_reduce_pickle(PyObject *self, PyObject *unused) {
    PyObject *mod = PyState_FindModule(&xcs_py_module_def); /* borrowed */
    if (!mod) return xcs_py_errorf(XCS_ERR_INTERNAL, "ember.xcs._xcs is not initialised");
    PyObject *fn = PyObject_GetAttrString(mod, "_asarray");
    PyObject *nd = fn ? xcs_py_to_numpy(self) : NULL;
    PyObject *r = nd ? Py_BuildValue("O(O)", fn, nd) : NULL;
    Py_XDECREF(nd);
    Py_XDECREF(fn);
    return r;
}

static PyObject *m_copy_self(PyObject *self, PyObject *args) { return Py_NewRef(self); } /* immutable */

static PyObject *m_format(PyObject *self, PyObject *spec) {
    if (!PyUnicode_Check(spec)) return xcs_py_errorf(XCS_ERR_TYPE, "__format__ expects a str");
    if (XCS_T(self)->graph && PyUnicode_GetLength(spec) == 0) {
        int lz = xcs_py_lazy_resolve(XCS_T(self));
        if (lz < 0) return NULL;
        if (lz == 0) return xcs_py_traced_repr(XCS_T(self));
    }
    if (xcs_py_concrete(XCS_T(self), "in a format string")) return NULL;
    if (XCS_T(self)->ndim == 0) {
        const xcs_tensor *t = xcs_py_host(self);
        PyObject *v = t ? scalar_at(t, 0) : NULL;
        PyObject *r = v ? PyObject_Format(v, spec) : NULL;
        Py_XDECREF(v);
        return r;
    }
    if (PyUnicode_GetLength(spec) == 0) return PyObject_Str(self);
    return xcs_py_errorf(XCS_ERR_TYPE, "unsupported format string passed to Array.__format__ "
                         "(format specs apply to 0-d arrays only)");
}

/* block_until_ready(): self, once the device work that computes it is done
 * (a lazy value is computed first); no copy to the host. */
static PyObject *m_block_until_ready(PyObject *self, PyObject *unused) {
    (void)unused;
    XcsArray *a = (XcsArray *)self;
    if (xcs_py_concrete(XCS_T(self), "in block_until_ready()")) return NULL;
    const xcs_tensor *d = a->dev ? a->dev : a->t;
    if (d && d->storage && d->storage->device == XCS_DEVICE_CUDA) {
        xcs_status st;
        int index = d->storage->device_index;
        const void *p = d->storage->data;
        Py_BEGIN_ALLOW_THREADS
        st = xcs_cuda_wait(index, p);
        Py_END_ALLOW_THREADS
        if (st) return xcs_py_raise(st);
    }
    Py_INCREF(self);
    return self;
}

/* Methods of numpy arrays whose function ember.xcs.numpy has: x.name(...)
 * is xnp.name(x, ...), so they work on traced values too. */
static PyObject *forward(const char *name, PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *mod = PyImport_ImportModule("ember.xcs.numpy");
    PyObject *fn = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    if (!fn) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *all = PyTuple_New(n + 1);
    if (!all) {
        Py_DECREF(fn);
        return NULL;
    }
    PyTuple_SET_ITEM(all, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    PyObject *r = PyObject_Call(fn, all, kw);
    Py_DECREF(all);
    Py_DECREF(fn);
    return r;
}
#define FORWARD(name)                                                             \
    static PyObject *m_fwd_##name(PyObject *self, PyObject *args, PyObject *kw) { \
        return forward(#name, self, args, kw);                                    \
    }
FORWARD(clip)
FORWARD(round)
FORWARD(cumsum)
FORWARD(cumprod)
FORWARD(repeat)
FORWARD(swapaxes)
FORWARD(diagonal)
FORWARD(trace)
FORWARD(take)
FORWARD(dot)
FORWARD(argsort)
FORWARD(argpartition)
FORWARD(searchsorted)
FORWARD(ptp)
FORWARD(choose)
FORWARD(conjugate)
#undef FORWARD
static PyObject *m_conj(PyObject *self, PyObject *args, PyObject *kw) { return forward("conjugate", self, args, kw); }
static PyObject *m_to_device(PyObject *self, PyObject *args, PyObject *kw) {
    return forward("_to_device", self, args, kw);
}

#define KW (METH_VARARGS | METH_KEYWORDS)
#define FWD(name, doc) {#name, (PyCFunction)(void (*)(void))m_fwd_##name, KW, doc " (ember.xcs.numpy." #name ")"}
static PyMethodDef array_methods[] = {
    FWD(clip, "clip(min=None, max=None)"),
    FWD(round, "round(decimals=0)"),
    FWD(cumsum, "cumsum(axis=None, dtype=None)"),
    FWD(cumprod, "cumprod(axis=None, dtype=None)"),
    FWD(repeat, "repeat(repeats, axis=None)"),
    FWD(swapaxes, "swapaxes(axis1, axis2)"),
    FWD(diagonal, "diagonal(offset=0, axis1=0, axis2=1)"),
    FWD(trace, "trace(offset=0, axis1=0, axis2=1, dtype=None)"),
    FWD(take, "take(indices, axis=None)"),
    FWD(dot, "dot(b)"),
    FWD(argsort, "argsort(axis=-1)"),
    FWD(argpartition, "argpartition(kth, axis=-1)"),
    FWD(searchsorted, "searchsorted(v, side='left')"),
    FWD(ptp, "ptp(axis=None, keepdims=False)"),
    FWD(choose, "choose(choices, mode='raise')"),
    FWD(conjugate, "conjugate()"),
    {"conj", (PyCFunction)(void (*)(void))m_conj, KW, "conj(): the values themselves (ember.xcs.numpy.conjugate)"},
    {"to_device", (PyCFunction)(void (*)(void))m_to_device, KW,
     "to_device(device, /, *, stream=None): the Array on device (the array API's; ember.xcs.device_put)"},
    {"sum", (PyCFunction)(void (*)(void))m_sum, KW, "sum(axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True)"},
    {"prod", (PyCFunction)(void (*)(void))m_prod, KW, "prod(axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True)"},
    {"mean", (PyCFunction)(void (*)(void))m_mean, KW, "mean(axis=None, dtype=None, out=None, keepdims=False, *, where=True)"},
    {"max", (PyCFunction)(void (*)(void))m_max, KW, "max(axis=None, out=None, keepdims=False, initial=None, where=True)"},
    {"min", (PyCFunction)(void (*)(void))m_min, KW, "min(axis=None, out=None, keepdims=False, initial=None, where=True)"},
    {"all", (PyCFunction)(void (*)(void))m_all, KW, "all(axis=None, out=None, keepdims=False, *, where=True)"},
    {"any", (PyCFunction)(void (*)(void))m_any, KW, "any(axis=None, out=None, keepdims=False, *, where=True)"},
    {"argmax", (PyCFunction)(void (*)(void))m_argmax, KW, "argmax(axis=None, out=None, *, keepdims=False)"},
    {"argmin", (PyCFunction)(void (*)(void))m_argmin, KW, "argmin(axis=None, out=None, *, keepdims=False)"},
    {"var", (PyCFunction)(void (*)(void))m_var, KW, "var(axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None)"},
    {"std", (PyCFunction)(void (*)(void))m_std, KW, "std(axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None)"},
    {"reshape", (PyCFunction)(void (*)(void))m_reshape, KW,
     "reshape(*shape, order='C'): a view when the layout allows (-1 is inferred)."},
    {"transpose", (PyCFunction)m_transpose, METH_VARARGS, "transpose(*axes): a view with permuted axes."},
    {"squeeze", (PyCFunction)(void (*)(void))m_squeeze, KW, "squeeze(axis=None)"},
    {"astype", (PyCFunction)(void (*)(void))m_astype, KW, "astype(dtype, copy=True)"},
    {"copy", m_copy, METH_NOARGS, "A C-contiguous copy."},
    {"block_until_ready", m_block_until_ready, METH_NOARGS,
     "self, once the GPU work that computes it is done (no copy to the host; for timing)."},
    {"flatten", (PyCFunction)(void (*)(void))m_flatten, KW, "A flattened copy."},
    {"ravel", (PyCFunction)(void (*)(void))m_ravel, KW, "The flattened array (a view when possible)."},
    {"item", m_item, METH_VARARGS, "item(*index): the element as a Python scalar."},
    {"tolist", m_tolist, METH_NOARGS, "Nested Python lists of Python scalars."},
    {"__array__", (PyCFunction)(void (*)(void))m_array, KW,
     "__array__(dtype=None, copy=None): a numpy array sharing memory (read-only) unless a copy is asked."},
    {"__array_ufunc__", (PyCFunction)(void (*)(void))m_array_ufunc, KW, "numpy ufunc override (NEP 13)."},
    {"__array_function__", m_array_function, METH_VARARGS, "numpy function override (NEP 18)."},
    {"__dlpack__", (PyCFunction)(void (*)(void))xcs_py_dlpack, KW,
     "__dlpack__(*, stream=None, max_version=None, dl_device=None, copy=None) -> capsule"},
    {"__dlpack_device__", xcs_py_dlpack_device, METH_NOARGS, "(device_type, device_id): (1, 0) for the CPU."},
    {"__reduce__", m_reduce_pickle, METH_NOARGS, "Pickle support (by value)."},
    {"__copy__", m_copy_self, METH_NOARGS, "Arrays are immutable: returns self."},
    {"__deepcopy__", m_copy_self, METH_VARARGS, "Arrays are immutable: returns self."},
    {"__format__", m_format, METH_O, "format(x, spec): 0-d arrays format like their Python scalar."},
    {NULL, NULL, 0, NULL},
};
#undef KW

/* ---------------------------------------------------------------- repr */

static PyObject *array_repr(PyObject *self) {
    if (XCS_T(self)->graph) {
        int lz = xcs_py_lazy_resolve(XCS_T(self));
        if (lz < 0) return NULL;
        if (lz == 0) return xcs_py_traced_repr(XCS_T(self));
    }
    xcs_py_state *s = xcs_py_state_get();
    PyObject *nd = s ? xcs_py_to_numpy(self) : NULL;
    PyObject *r = nd ? PyObject_CallMethod(s->numpy, "array_repr", "O", nd) : NULL;
    Py_XDECREF(nd);
    if (!r) return NULL;
    /* "array(...)" -> "Array(...)": same length, so numpy's line wrapping holds */
    if (PyUnicode_Check(r) && PyUnicode_GetLength(r) > 5 && PyUnicode_READ_CHAR(r, 0) == 'a') {
        PyObject *tail = PyUnicode_Substring(r, 1, PyUnicode_GetLength(r));
        PyObject *out = tail ? PyUnicode_FromFormat("A%U", tail) : NULL;
        Py_XDECREF(tail);
        Py_SETREF(r, out);
    }
    return r;
}

static PyObject *array_str(PyObject *self) {
    if (XCS_T(self)->graph) {
        int lz = xcs_py_lazy_resolve(XCS_T(self));
        if (lz < 0) return NULL;
        if (lz == 0) return xcs_py_traced_repr(XCS_T(self));
    }
    PyObject *nd = xcs_py_to_numpy(self);
    PyObject *r = nd ? PyObject_Str(nd) : NULL;
    Py_XDECREF(nd);
    return r;
}

/* ---------------------------------------------------------------- iteration */

typedef struct {
    PyObject_HEAD
    PyObject *arr;
    int64_t i, n;
} XcsArrayIter;

static PyObject *array_iter(PyObject *self) {
    const xcs_tensor *t = XCS_T(self);
    if (t->ndim == 0) return xcs_py_errorf(XCS_ERR_TYPE, "iteration over a 0-d array");
    XcsArrayIter *it = PyObject_GC_New(XcsArrayIter, &XcsArrayIter_Type);
    if (!it) return NULL;
    it->arr = Py_NewRef(self);
    it->i = 0;
    it->n = t->shape[0];
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

static PyObject *iter_next(PyObject *o) {
    XcsArrayIter *it = (XcsArrayIter *)o;
    if (!it->arr || it->i >= it->n) return NULL;
    xcs_tensor *row;
    const xcs_tensor *t = xcs_py_host(it->arr);
    if (!t) return NULL;
    xcs_status st = xcs_index_axis(t, 0, it->i++, &row);
    return st ? xcs_py_raise(st) : xcs_py_wrap(row);
}

static int iter_traverse(PyObject *o, visitproc visit, void *arg) {
    Py_VISIT(((XcsArrayIter *)o)->arr);
    return 0;
}

static void iter_dealloc(PyObject *o) {
    PyObject_GC_UnTrack(o);
    Py_CLEAR(((XcsArrayIter *)o)->arr);
    PyObject_GC_Del(o);
}

PyTypeObject XcsArrayIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember.xcs._xcs.ArrayIterator",
    .tp_basicsize = sizeof(XcsArrayIter),
    .tp_dealloc = iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = iter_traverse,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = iter_next,
};

/* ---------------------------------------------------------------- sequence */

static Py_ssize_t array_len(PyObject *self) {
    const xcs_tensor *t = XCS_T(self);
    if (t->ndim == 0) {
        xcs_py_errorf(XCS_ERR_TYPE, "len() of unsized object (a 0-d Array)");
        return -1;
    }
    return (Py_ssize_t)t->shape[0];
}

static int array_contains(PyObject *self, PyObject *v) {
    PyObject *eq = xcs_py_binary(XCS_OP_EQ, self, v);
    if (!eq) return -1;
    PyObject *any = xcs_py_reduce("any", eq, Py_None, false, Py_None);
    Py_DECREF(eq);
    if (!any) return -1;
    if (xcs_py_concrete(XCS_T(any), "as a Python bool (the `in` operator)")) {
        Py_DECREF(any);
        return -1;
    }
    const xcs_tensor *t = xcs_py_host(any);
    int r = t ? xcs_tensor_get_i64(t, 0) != 0 : -1;
    Py_DECREF(any);
    return r;
}

PyMappingMethods xcs_py_mapping_methods = {
    .mp_length = array_len,
    .mp_subscript = xcs_py_getitem,
    .mp_ass_subscript = xcs_py_setitem,
};

PySequenceMethods xcs_py_sequence_methods = {
    .sq_length = array_len,
    .sq_contains = array_contains,
};

/* ---------------------------------------------------------------- type */

PyTypeObject XcsArray_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember.xcs.Array",
    .tp_doc = "An immutable n-dimensional array computed by XCS.\n\n"
              "Create with ember.xcs.array / asarray / from_dlpack or the ember.xcs.numpy functions. "
              "Supports numpy's protocols (buffer, __array__, __array_ufunc__, __array_function__), "
              "DLPack, operators with numpy promotion (Python scalars are weak, NEP 50) and basic / "
              "integer-array indexing.",
    .tp_basicsize = sizeof(XcsArray),
    .tp_dealloc = array_dealloc,
    .tp_repr = array_repr,
    .tp_str = array_str,
    .tp_as_number = &xcs_py_number_methods,
    .tp_as_sequence = &xcs_py_sequence_methods,
    .tp_as_mapping = &xcs_py_mapping_methods,
    .tp_hash = PyObject_HashNotImplemented, /* == is elementwise */
    .tp_as_buffer = &xcs_py_buffer_procs,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_richcompare = xcs_py_richcompare,
    .tp_weaklistoffset = offsetof(XcsArray, weakreflist),
    .tp_iter = array_iter,
    .tp_methods = array_methods,
    .tp_getset = array_getset,
};
