/* index.c — Array.__getitem__ / __setitem__.
 *
 * Basic indexing (ints, slices, None, Ellipsis and tuples of them) makes a
 * view with xcs_index_axis / xcs_slice_axis / xcs_expand_dims, axis by axis,
 * left to right.  One integer-array index (an Array, ndarray or list of ints,
 * any shape) among basic ones becomes xcs_take on its axis: its dimensions
 * replace that axis in place, which is numpy's rule as long as the integer
 * scalars and the array index are adjacent.
 *
 * Everything else — boolean masks, several array indices, or integers
 * separated from the array index (where numpy moves the broadcast dims to the
 * front) — is computed by numpy on a zero-copy ndarray view of the Array, and
 * the result (always a fresh numpy array for these indices) is wrapped
 * zero-copy.  Results are the same as numpy's; only the speed differs. */
#include "xcs_py.h"

#define MAX_ITEMS 64

enum { IDX_INT, IDX_SLICE, IDX_NEW, IDX_ELL, IDX_ARRAY, IDX_NUMPY };

typedef struct idx_item {
    int kind;
    int64_t i;            /* IDX_INT */
    PyObject *obj;        /* borrowed from the key */
    xcs_py_arg arr;       /* IDX_ARRAY: the int64/int32 index tensor */
} idx_item;

static PyObject *invalid_index(PyObject *obj) {
    return xcs_py_errorf(XCS_ERR_INDEX, "only integers, slices (`:`), ellipsis (`...`), None and integer or "
                         "boolean arrays are valid indices (got %s)", Py_TYPE(obj)->tp_name);
}

/* Classifies one key entry.  Returns 0 or -1 with an error set. */
static int classify(PyObject *obj, idx_item *it) {
    it->obj = obj;
    it->arr.t = NULL;
    it->arr.owned = false;
    if (PyBool_Check(obj)) { it->kind = IDX_NUMPY; return 0; } /* a 0-d mask */
    if (PyLong_Check(obj)) {
        it->kind = IDX_INT;
        return xcs_py_int64(obj, "index", &it->i);
    }
    if (PySlice_Check(obj)) { it->kind = IDX_SLICE; return 0; }
    if (obj == Py_None) { it->kind = IDX_NEW; return 0; }
    if (obj == Py_Ellipsis) { it->kind = IDX_ELL; return 0; }
    if (PyFloat_Check(obj) || PyUnicode_Check(obj) || PyBytes_Check(obj) || PyDict_Check(obj)) {
        invalid_index(obj);
        return -1;
    }
    if (xcs_py_arg_from(obj, "getitem", &it->arr)) {
        PyErr_Clear();
        invalid_index(obj);
        return -1;
    }
    const xcs_tensor *t = it->arr.t;
    if (t->dtype == XCS_BOOL) {
        xcs_py_arg_drop(&it->arr);
        it->kind = IDX_NUMPY;
        return 0;
    }
    if (xcs_dtype_is_float(t->dtype)) {
        if (xcs_tensor_numel(t) == 0 && !XcsArray_Check(obj)) { /* x[[]]: numpy takes [] as an int index */
            xcs_tensor *c;
            xcs_status st = xcs_cast(t, XCS_I64, &c);
            xcs_py_arg_drop(&it->arr);
            if (st) {
                xcs_py_raise(st);
                return -1;
            }
            it->arr.t = c;
            it->arr.owned = true;
            it->kind = IDX_ARRAY;
            return 0;
        }
        xcs_py_arg_drop(&it->arr);
        invalid_index(obj);
        return -1;
    }
    if (t->ndim == 0 && !t->graph) { /* numpy integer scalars, 0-d integer arrays (a traced one is taken) */
        it->i = xcs_tensor_get_i64(t, 0);
        xcs_py_arg_drop(&it->arr);
        it->kind = IDX_INT;
        return 0;
    }
    it->kind = IDX_ARRAY;
    return 0;
}

/* numpy computes the index on an ndarray view; the result is wrapped. */
static PyObject *numpy_getitem(PyObject *self, PyObject *key) {
    PyObject *nkey;
    static const char *traced_use = "as an array numpy must index (boolean masks, several integer-array "
                                    "indices; under jit use xnp.where or xnp.take)";
    if (xcs_py_concrete(XCS_T(self), traced_use)) return NULL;
    for (Py_ssize_t i = 0; i < (PyTuple_Check(key) ? PyTuple_GET_SIZE(key) : 1); i++) {
        PyObject *k = PyTuple_Check(key) ? PyTuple_GET_ITEM(key, i) : key;
        if (XcsArray_Check(k) && xcs_py_concrete(XCS_T(k), traced_use)) return NULL;
    }
    if (PyTuple_Check(key)) {
        Py_ssize_t n = PyTuple_GET_SIZE(key);
        nkey = PyTuple_New(n);
        for (Py_ssize_t i = 0; nkey && i < n; i++) {
            PyObject *k = PyTuple_GET_ITEM(key, i);
            PyObject *v = XcsArray_Check(k) ? xcs_py_to_numpy(k) : Py_NewRef(k);
            if (!v) { Py_CLEAR(nkey); break; }
            PyTuple_SET_ITEM(nkey, i, v);
        }
    } else {
        nkey = XcsArray_Check(key) ? xcs_py_to_numpy(key) : Py_NewRef(key);
    }
    if (!nkey) return NULL;
    PyObject *nd = xcs_py_to_numpy(self);
    PyObject *res = nd ? PyObject_GetItem(nd, nkey) : NULL;
    Py_XDECREF(nd);
    Py_DECREF(nkey);
    if (!res) {
        return xcs_py_chain(PyErr_ExceptionMatches(PyExc_IndexError) ? XCS_ERR_INDEX : XCS_ERR_VALUE,
                            "getitem (computed by numpy)");
    }
    xcs_tensor *t = xcs_py_to_tensor(res, "getitem");
    Py_DECREF(res);
    return t ? xcs_py_wrap(t) : NULL;
}

/* Replaces *cur by `next`, the result of a view op that returned st (frees
 * the old one).  Callers evaluate the op first: argument order is unspecified. */
static int step(xcs_tensor **cur, xcs_status st, xcs_tensor *next) {
    if (st) {
        xcs_py_raise(st);
        return -1;
    }
    xcs_tensor_free(*cur);
    *cur = next;
    return 0;
}

static int apply_slice(xcs_tensor **cur, int axis, PyObject *slice) {
    Py_ssize_t start, stop, stp;
    if (PySlice_Unpack(slice, &start, &stop, &stp) < 0) {
        xcs_py_chain(XCS_ERR_VALUE, "getitem");
        return -1;
    }
    Py_ssize_t len = (Py_ssize_t)(*cur)->shape[axis];
    Py_ssize_t n = PySlice_AdjustIndices(len, &start, &stop, stp);
    /* pass normalised, unambiguous bounds: an empty slice as [0:0], and a
     * negative-step slice running past index 0 as "no stop" */
    xcs_slice s = {.start = start, .stop = stop, .step = stp, .has_start = true, .has_stop = true};
    if (n == 0) s = (xcs_slice){.start = 0, .stop = 0, .step = 1, .has_start = true, .has_stop = true};
    else if (stp < 0 && stop < 0) s.has_stop = false;
    xcs_tensor *next = NULL;
    xcs_status st = xcs_slice_axis(*cur, axis, s, &next);
    return step(cur, st, next);
}

/* The index pass over classified items (see the file comment). */
static PyObject *basic_getitem(PyObject *self, idx_item *items, int n, int consumed) {
    const xcs_tensor *x = xcs_py_host(self);
    if (!x) return NULL;
    xcs_tensor *cur = NULL, *next = NULL;
    xcs_status st = xcs_tensor_view(x, &cur);
    if (st) return xcs_py_raise(st);
    int axis = 0, orig = 0;
    for (int k = 0; k < n; k++) {
        idx_item *it = &items[k];
        switch (it->kind) {
        case IDX_ELL:
            axis += x->ndim - consumed;
            orig += x->ndim - consumed;
            break;
        case IDX_INT: {
            int64_t len = cur->shape[axis];
            if (it->i < -len || it->i >= len) {
                xcs_tensor_free(cur);
                return xcs_py_errorf(XCS_ERR_INDEX, "index %lld is out of bounds for axis %d with size %lld",
                                     (long long)it->i, orig, (long long)len);
            }
            st = xcs_index_axis(cur, axis, it->i < 0 ? it->i + len : it->i, &next);
            if (step(&cur, st, next)) goto fail;
            orig++;
            break;
        }
        case IDX_SLICE:
            if (apply_slice(&cur, axis, it->obj)) goto fail;
            axis++;
            orig++;
            break;
        case IDX_NEW:
            st = xcs_expand_dims(cur, axis, &next);
            if (step(&cur, st, next)) goto fail;
            axis++;
            break;
        case IDX_ARRAY: {
            const xcs_tensor *idx = it->arr.t;
            int64_t rest = xcs_tensor_numel(cur) / (cur->shape[axis] ? cur->shape[axis] : 1);
            bool big = xcs_py_mul_sat(xcs_tensor_numel(idx), rest) >= XCS_PY_NOGIL_MIN;
            XCS_PY_CALL(st, big, xcs_take(cur, idx, axis, &next));
            if (step(&cur, st, next)) goto fail;
            axis += idx->ndim;
            orig++;
            break;
        }
        default:
            break;
        }
    }
    return xcs_py_wrap(cur);
fail:
    xcs_tensor_free(cur);
    return NULL;
}

PyObject *xcs_py_getitem(PyObject *self, PyObject *key) {
    idx_item items[MAX_ITEMS];
    int n = 0, n_ell = 0, n_arr = 0, n_int = 0, consumed = 0, first = -1, last = -1;
    bool via_numpy = false;
    PyObject *keys = PyTuple_Check(key) ? key : NULL;
    Py_ssize_t nk = keys ? PyTuple_GET_SIZE(keys) : 1;
    PyObject *r = NULL;
    if (xcs_py_check_live(self)) return NULL;
    if (nk > MAX_ITEMS)
        return xcs_py_errorf(XCS_ERR_INDEX, "too many indices for array: %zd given", nk);
    for (; n < nk; n++) {
        if (classify(keys ? PyTuple_GET_ITEM(keys, n) : key, &items[n])) goto done;
        int kind = items[n].kind;
        if (kind == IDX_ELL) n_ell++;
        if (kind == IDX_NUMPY) via_numpy = true;
        if (kind == IDX_INT || kind == IDX_SLICE || kind == IDX_ARRAY) consumed++;
        if (kind == IDX_INT || kind == IDX_ARRAY) {
            n_int += kind == IDX_INT;
            n_arr += kind == IDX_ARRAY;
            if (first < 0) first = n;
            last = n;
        }
    }
    if (n_ell > 1) {
        xcs_py_errorf(XCS_ERR_INDEX, "an index can only have a single ellipsis ('...')");
        goto done;
    }
    /* several array indices, or ints apart from the array index: numpy's
     * broadcasting/transposing rules, left to numpy */
    if (n_arr > 1 || (n_arr == 1 && n_int > 0 && last - first + 1 != n_arr + n_int)) via_numpy = true;
    if (via_numpy) {
        r = numpy_getitem(self, key);
        goto done;
    }
    if (consumed > XCS_T(self)->ndim) {
        xcs_py_errorf(XCS_ERR_INDEX, "too many indices for array: array is %d-dimensional, but %d were indexed",
                      XCS_T(self)->ndim, consumed);
        goto done;
    }
    r = basic_getitem(self, items, n, consumed);
done:
    for (int k = 0; k < n; k++) xcs_py_arg_drop(&items[k].arr);
    return r;
}

int xcs_py_setitem(PyObject *self, PyObject *key, PyObject *value) {
    xcs_py_errorf(XCS_ERR_VALUE, "xcs Arrays are immutable: x[...] %s is not supported; build a new array instead "
                  "(e.g. ember.xcs.numpy.where(mask, value, x)), or copy to numpy with numpy.array(x)",
                  value ? "= value" : "deletion");
    return -1;
}
