/* index.c — Array.__getitem__ / __setitem__.
 *
 * Basic indexing (ints, slices, None, Ellipsis and tuples of them) makes a
 * view with xcs_index_axis / xcs_slice_axis / xcs_expand_dims, axis by axis,
 * left to right.  One integer-array index (an Array, ndarray or list of ints,
 * any shape) among basic ones becomes xcs_take on its axis: its dimensions
 * replace that axis in place, which is numpy's rule as long as the integer
 * scalars and the array index are adjacent.
 *
 * Several array indices, or integers separated from the array index (where
 * numpy moves the broadcast dims to the front), on a traced (or lazily
 * recorded) Array or with traced indices become ops too (gather_getitem:
 * one take at the flat positions in the indexed axes), so jit, grad and
 * vmap see through them.  So do boolean masks whose values are known (a
 * numpy mask of a traced Array): each becomes the index arrays of its
 * nonzero(), numpy's own reading, its shape checked first.  Everything
 * else — masks on concrete Arrays, and the keys above on concrete Arrays
 * — is computed by numpy on a zero-copy ndarray view of the Array, and the
 * result (always a fresh numpy array for these indices) is wrapped
 * zero-copy; a traced mask (a shape that depends on values) is an
 * XCSTracerError.  Results are the same as numpy's; only the speed
 * differs. */
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
    if (xcs_py_operand(obj, "getitem", &it->arr)) { /* a device Array's indices stay there */
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
    if (t->ndim == 0 && !t->graph && xcs_tensor_on_host(t)) {
        /* numpy integer scalars, 0-d integer arrays (a traced one, or one on a device, is taken) */
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
    static const char *traced_use = "as an array numpy must index (a boolean mask; under jit use xnp.where)";
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
    if (PySlice_Unpack(slice, &start, &stop, &stp) < 0) { /* a float bound: TypeError, step 0: ValueError */
        xcs_py_chain(PyErr_ExceptionMatches(PyExc_TypeError) ? XCS_ERR_TYPE : XCS_ERR_VALUE, "getitem");
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

/* Applies a basic entry (ellipsis, slice, newaxis) of the key to *cur at
 * *axis (the view's axis; *orig counts x's axes consumed): 1 when it was
 * one, 0 for an integer or array entry (left to the caller), -1 with the
 * error set. */
static int basic_item(const idx_item *it, xcs_tensor **cur, int *axis, int *orig, int ndim, int consumed) {
    xcs_tensor *next = NULL;
    switch (it->kind) {
    case IDX_ELL:
        *axis += ndim - consumed;
        *orig += ndim - consumed;
        return 1;
    case IDX_SLICE:
        if (apply_slice(cur, *axis, it->obj)) return -1;
        ++*axis;
        ++*orig;
        return 1;
    case IDX_NEW: {
        xcs_status st = xcs_expand_dims(*cur, *axis, &next);
        if (step(cur, st, next)) return -1;
        ++*axis;
        return 1;
    }
    default:
        return 0;
    }
}

/* The index pass over classified items (see the file comment). */
static PyObject *basic_getitem(PyObject *self, idx_item *items, int n, int consumed) {
    const xcs_tensor *x = xcs_py_placed(self); /* views of a device Array stay there */
    if (!x) return NULL;
    xcs_tensor *cur = NULL, *next = NULL;
    xcs_status st = xcs_tensor_view(x, &cur);
    if (st) return xcs_py_raise(st);
    int axis = 0, orig = 0;
    for (int k = 0; k < n; k++) {
        idx_item *it = &items[k];
        int basic = basic_item(it, &cur, &axis, &orig, x->ndim, consumed);
        if (basic < 0) goto fail;
        if (basic) continue;
        switch (it->kind) {
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

/* A temporaries list for gather_getitem: every tensor made is kept here and
 * freed at the end (the result is a fresh one). */
typedef struct tmp_list {
    xcs_tensor *t[4 * MAX_ITEMS + 16];
    int n;
    xcs_status st;
} tmp_list;

/* Records `made` (the result of an op that returned st) and returns it;
 * NULL once any op failed. */
static xcs_tensor *keep(tmp_list *l, xcs_status st, xcs_tensor *made) {
    if (l->st || st) {
        if (!l->st) l->st = st;
        xcs_tensor_free(made);
        return NULL;
    }
    if (l->n == (int)(sizeof l->t / sizeof l->t[0])) {
        xcs_tensor_free(made);
        l->st = xcs_error(XCS_ERR_INTERNAL, "getitem: too many temporaries");
        return NULL;
    }
    return l->t[l->n++] = made;
}

static xcs_tensor *op2(tmp_list *l, xcs_op op, const xcs_tensor *a, const xcs_tensor *b) {
    if (l->st || !a || !b) return NULL;
    xcs_tensor *r = NULL;
    xcs_status st = xcs_binary(op, a, b, &r);
    return keep(l, st, r);
}

static xcs_tensor *scalar64(tmp_list *l, int64_t v) {
    if (l->st) return NULL;
    xcs_tensor *r = NULL;
    xcs_status st = xcs_tensor_scalar_i64(XCS_I64, v, &r);
    return keep(l, st, r);
}

/* where(c, a, b), kept. */
static xcs_tensor *where3(tmp_list *l, const xcs_tensor *c, const xcs_tensor *a, const xcs_tensor *b) {
    if (l->st || !c || !a || !b) return NULL;
    xcs_tensor *r = NULL;
    xcs_status st = xcs_where(c, a, b, &r);
    return keep(l, st, r);
}

/* Advanced indexing with several integer-array indices (or integers apart
 * from the array index) on a traced or lazy Array, or with traced indices:
 * numpy's rules built from ops, so the program records it and grad / vmap
 * see through it.  The basic entries are applied as views first, each
 * advanced entry keeping its axis; the advanced indices (an integer is a
 * 0-d one) are wrapped and broadcast together into one flat position in
 * their axes, moved to the front and merged, for one take; the broadcast
 * dims then go where the first advanced index was when the advanced entries
 * are next to each other in the key, else in front.  Indices known here are
 * checked with numpy's message; traced ones out of range turn the flat
 * position out of range, which the take reports. */
static PyObject *gather_getitem(PyObject *self, idx_item *items, int n, int consumed) {
    const xcs_tensor *x = xcs_py_placed(self); /* a device Array's take runs there */
    if (!x) return NULL;
    tmp_list l = {.n = 0, .st = XCS_OK};
    xcs_tensor *cur = NULL;
    xcs_status st = xcs_tensor_view(x, &cur);
    if (st) return xcs_py_raise(st);
    int axis = 0, orig = 0, n_adv = 0, first = -1, last = -1;
    int adv_axis[MAX_ITEMS], adv_orig[MAX_ITEMS];
    const xcs_tensor *adv_idx[MAX_ITEMS];
    for (int k = 0; k < n; k++) {
        idx_item *it = &items[k];
        int basic = basic_item(it, &cur, &axis, &orig, x->ndim, consumed);
        if (basic < 0) goto fail;
        if (basic) continue;
        /* an integer or an integer array: advanced, its axis kept for now */
        adv_idx[n_adv] = it->kind == IDX_ARRAY ? it->arr.t : scalar64(&l, it->i);
        adv_axis[n_adv] = axis++;
        adv_orig[n_adv++] = orig++;
        if (first < 0) first = k;
        last = k;
    }
    const bool adjacent = last - first + 1 == n_adv;
    /* the flat position in the advanced axes (C order), broadcast */
    xcs_tensor *flat = NULL, *valid = NULL;
    int64_t P = 1;
    for (int m = 0; m < n_adv; m++) P *= cur->shape[adv_axis[m]];
    for (int m = 0; m < n_adv && !l.st; m++) {
        const xcs_tensor *I = adv_idx[m];
        const int64_t S = cur->shape[adv_axis[m]];
        int64_t stride = 1;
        for (int q = m + 1; q < n_adv; q++) stride *= cur->shape[adv_axis[q]];
        const bool known = I && !I->graph && xcs_tensor_on_host(I);
        for (int64_t j = 0; known && j < xcs_tensor_numel(I); j++) {
            int64_t v = xcs_tensor_get_i64(I, j);
            if (v < -S || v >= S) {
                xcs_py_errorf(XCS_ERR_INDEX, "index %lld is out of bounds for axis %d with size %lld", (long long)v,
                              adv_orig[m], (long long)S);
                goto fail;
            }
        }
        xcs_tensor *i64 = NULL;
        if (I && !l.st) {
            st = xcs_cast(I, XCS_I64, &i64);
            i64 = keep(&l, st, i64);
        }
        xcs_tensor *w = where3(&l, op2(&l, XCS_OP_LT, i64, scalar64(&l, 0)), op2(&l, XCS_OP_ADD, i64, scalar64(&l, S)),
                               i64);
        if (!known) { /* in range after wrapping: 0 <= w < S */
            xcs_tensor *ok = op2(&l, XCS_OP_LOGICAL_AND, op2(&l, XCS_OP_GE, w, scalar64(&l, 0)),
                                 op2(&l, XCS_OP_LT, w, scalar64(&l, S)));
            valid = valid ? op2(&l, XCS_OP_LOGICAL_AND, valid, ok) : ok;
        }
        xcs_tensor *term = stride == 1 ? w : op2(&l, XCS_OP_MUL, w, scalar64(&l, stride));
        flat = flat ? op2(&l, XCS_OP_ADD, flat, term) : term;
    }
    if (valid) flat = where3(&l, valid, flat, scalar64(&l, P)); /* out of range: past the merged axis */
    /* the advanced axes first (merged into one of P), the others after in order */
    int perm[XCS_MAX_DIMS], nd = cur->ndim, rest = 0;
    int64_t merged[XCS_MAX_DIMS];
    for (int m = 0; m < n_adv; m++) perm[m] = adv_axis[m];
    merged[0] = P;
    for (int d = 0, k = n_adv; d < nd; d++) {
        bool adv = false;
        for (int m = 0; m < n_adv; m++) adv |= adv_axis[m] == d;
        if (!adv) {
            perm[k++] = d;
            merged[1 + rest++] = cur->shape[d];
        }
    }
    xcs_tensor *moved = NULL, *flat_x = NULL, *r = NULL;
    if (!l.st) {
        st = xcs_permute(cur, perm, &moved);
        moved = keep(&l, st, moved);
    }
    if (!l.st) {
        st = xcs_reshape(moved, 1 + rest, merged, &flat_x);
        flat_x = keep(&l, st, flat_x);
    }
    if (!l.st) l.st = xcs_take(flat_x, flat, 0, &r);
    if (!l.st && adjacent && adv_axis[0] > 0) { /* the broadcast dims where the first advanced index was */
        const int bd = flat->ndim, a0 = adv_axis[0];
        int back[XCS_MAX_DIMS], k = 0;
        for (int d = 0; d < a0; d++) back[k++] = bd + d;
        for (int d = 0; d < bd; d++) back[k++] = d;
        for (int d = a0; d < rest; d++) back[k++] = bd + d;
        xcs_tensor *r2 = NULL;
        l.st = xcs_permute(r, back, &r2);
        xcs_tensor_free(r);
        r = l.st ? NULL : r2;
    }
    xcs_tensor_free(cur);
    for (int q = 0; q < l.n; q++) xcs_tensor_free(l.t[q]);
    if (l.st) {
        xcs_tensor_free(r);
        return xcs_py_raise(l.st);
    }
    return xcs_py_wrap(r);
fail:
    xcs_tensor_free(cur);
    for (int q = 0; q < l.n; q++) xcs_tensor_free(l.t[q]);
    return NULL;
}

/* True when x or an array index is a traced (or lazily recorded) value, or
 * lives on a device: numpy cannot compute it, gather_getitem does. */
static bool any_recorded(PyObject *self, const idx_item *items, int n) {
    if (XCS_T(self)->graph || ((XcsArray *)self)->dev) return true;
    for (int k = 0; k < n; k++)
        if (items[k].kind == IDX_ARRAY && (items[k].arr.t->graph || !xcs_tensor_on_host(items[k].arr.t))) return true;
    return false;
}

/* The key with each boolean mask (n-d, its values known: numpy's, a list,
 * an untraced Array) replaced by the index arrays of its nonzero() —
 * numpy's own reading of a mask — after checking its shape against the
 * axes it indexes (numpy's IndexError otherwise), so that a traced or
 * device Array is indexed by ops; NULL with no error set when a mask
 * cannot be (0-d, traced: the numpy path then says why), NULL with the
 * error set on a bad mask. */
static PyObject *masks_as_indices(PyObject *self, const idx_item *items, int n) {
    const int ndim = XCS_T(self)->ndim;
    int used[MAX_ITEMS], before = 0, total = 0, ell = -1;
    PyObject *arrs[MAX_ITEMS] = {NULL}, *out = NULL, *numpy = NULL;
    for (int k = 0; k < n; k++) {
        const idx_item *it = &items[k];
        used[k] = it->kind == IDX_INT || it->kind == IDX_SLICE || it->kind == IDX_ARRAY;
        if (it->kind == IDX_ELL) ell = k;
        if (it->kind != IDX_NUMPY) {
            total += used[k];
            continue;
        }
        if (PyBool_Check(it->obj) || (XcsArray_Check(it->obj) && XCS_T(it->obj)->graph)) goto cannot;
        if (!numpy && !(numpy = PyImport_ImportModule("numpy"))) goto fail;
        arrs[k] = XcsArray_Check(it->obj) ? xcs_py_to_numpy(it->obj)
                                          : PyObject_CallMethod(numpy, "asarray", "O", it->obj);
        if (!arrs[k]) goto fail;
        PyObject *nd = PyObject_GetAttrString(arrs[k], "ndim");
        long d = nd ? PyLong_AsLong(nd) : -1;
        Py_XDECREF(nd);
        if (d < 0 && PyErr_Occurred()) goto fail;
        if (d == 0) goto cannot;
        total += used[k] = (int)d;
    }
    PyObject *parts = PyList_New(0);
    for (int k = 0; parts && k < n; k++) {
        if (k == ell) { /* the axes the ellipsis stands for */
            before += ndim - total;
        } else if (arrs[k]) { /* the mask's shape must be that of the axes it covers */
            PyObject *shape = PyObject_GetAttrString(arrs[k], "shape");
            for (int j = 0; shape && j < used[k]; j++) {
                const int64_t want = before + j < ndim ? XCS_T(self)->shape[before + j] : -1;
                const long got = PyLong_AsLong(PyTuple_GET_ITEM(shape, j));
                if (want < 0) {
                    xcs_py_errorf(XCS_ERR_INDEX, "too many indices for array: array is %d-dimensional, but %d "
                                  "were indexed", ndim, total);
                    Py_CLEAR(parts);
                } else if (got != want) {
                    xcs_py_errorf(XCS_ERR_INDEX, "boolean index did not match indexed array along axis %d; size of "
                                  "axis is %lld but size of corresponding boolean axis is %ld", before + j,
                                  (long long)want, got);
                    Py_CLEAR(parts);
                }
                if (!parts) break;
            }
            Py_XDECREF(shape);
            PyObject *nz = parts && shape ? PyObject_CallMethod(arrs[k], "nonzero", NULL) : NULL;
            for (Py_ssize_t j = 0; nz && parts && j < PyTuple_GET_SIZE(nz); j++)
                if (PyList_Append(parts, PyTuple_GET_ITEM(nz, j))) Py_CLEAR(parts);
            if (!nz) Py_CLEAR(parts);
            Py_XDECREF(nz);
            before += used[k];
            continue;
        } else {
            before += used[k];
        }
        if (parts && PyList_Append(parts, items[k].obj)) Py_CLEAR(parts);
    }
    out = parts ? PyList_AsTuple(parts) : NULL;
    Py_XDECREF(parts);
    goto fail; /* (cleanup) */
cannot:
    out = NULL;
fail:
    for (int k = 0; k < n; k++) Py_XDECREF(arrs[k]);
    Py_XDECREF(numpy);
    return out;
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
    bool advanced = n_arr > 1 || (n_arr == 1 && n_int > 0 && last - first + 1 != n_arr + n_int);
    if (advanced && !via_numpy && any_recorded(self, items, n)) { /* recorded or on a device: not numpy's */
        if (consumed > XCS_T(self)->ndim)
            xcs_py_errorf(XCS_ERR_INDEX, "too many indices for array: array is %d-dimensional, but %d were indexed",
                          XCS_T(self)->ndim, consumed);
        else
            r = gather_getitem(self, items, n, consumed);
        goto done;
    }
    if (via_numpy && any_recorded(self, items, n)) { /* masks (known now): their nonzero() indices */
        PyObject *nkey = masks_as_indices(self, items, n);
        if (nkey) {
            r = xcs_py_getitem(self, nkey);
            Py_DECREF(nkey);
            goto done;
        }
        if (PyErr_Occurred()) goto done;
    }
    if (advanced) via_numpy = true;
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
