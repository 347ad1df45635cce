/* convert.c — any Python object -> xcs_tensor.
 *
 * Order of the checks (first match wins):
 *   1. Array                      its tensor, borrowed
 *   2. Python bool / int / float  a weak 0-d tensor (NEP 50): bool, int64, float64
 *   3. str, bytes                 XCSTypeError (numpy would make a string array)
 *   4. buffer protocol            zero-copy when the format is ?/i/l/q/f/d in
 *                                 native order, strides are multiples of the
 *                                 itemsize and the pointer is aligned (numpy
 *                                 arrays and scalars, array.array, memoryview)
 *   5. int/float subclasses       weak, like their base
 *   6. lists, tuples, other sequences (range), __array__ /
 *      __array_interface__ objects, numpy fallbacks of step 4
 *                                 numpy.asarray, then cast to the nearest
 *                                 supported dtype: float16 -> float32,
 *                                 int8/int16/uint8/uint16 -> int32,
 *                                 uint32 -> int64, uint64 -> float64 (numpy's
 *                                 own uint64+int64 rule: int64 cannot hold
 *                                 2**63 and above), longdouble -> float64
 *   7. anything else              XCSTypeError naming the type and the op
 *
 * A zero-copy tensor keeps the exporter's Py_buffer until the storage's last
 * reference goes; the release callback takes the GIL because it may run on
 * whichever thread drops that reference.  Hence a rule for C code (the host
 * task graph included): a thread that holds the GIL must not block waiting
 * for another thread that may drop the last reference to such a storage.
 * Today every last reference is dropped by an Array's dealloc (GIL held,
 * PyGILState_Ensure re-enters) or by a binding call that released the GIL.  Zero-copy means a writable numpy
 * array mutated afterwards is seen through the Array (numpy's own view
 * semantics); copy with ember.xcs.array(x) when that matters. */
#include "xcs_py.h"

#include <limits.h>
#include <stdint.h>

/* ---------------------------------------------------------------- buffers */

static void release_pybuffer(void *ctx) {
    Py_buffer *view = ctx;
    if (!Py_IsInitialized()) return; /* interpreter gone: leaking is all we can do */
    PyGILState_STATE g = PyGILState_Ensure();
    PyBuffer_Release(view);
    PyMem_RawFree(view);
    PyGILState_Release(g);
}

static bool little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* The xcs dtype of a struct-module format, or -1 when we cannot wrap it. */
static int format_dtype(const char *fmt, Py_ssize_t itemsize) {
    if (!fmt) fmt = "B";
    if (*fmt == '@' || *fmt == '=' || (*fmt == '<' && little_endian()) || (*fmt == '>' && !little_endian()))
        fmt++;
    if (!fmt[0] || fmt[1]) return -1;
    switch (fmt[0]) {
    case '?': return itemsize == 1 ? XCS_BOOL : -1;
    case 'i': case 'l': case 'q': case 'n':
        return itemsize == 4 ? XCS_I32 : itemsize == 8 ? XCS_I64 : -1;
    case 'f': return itemsize == 4 ? XCS_F32 : -1;
    case 'd': return itemsize == 8 ? XCS_F64 : -1;
    case 'e': return itemsize == 2 ? XCS_F16 : -1;
    default: return -1;
    }
}

/* Wraps the buffer of obj without copying, as dtype `force` when it is not
 * -1 (a uint16 view of bfloat16 values), else as its format says.  Returns
 * 1 with *out set, 0 when obj has no buffer or its layout cannot be wrapped
 * (no error set), -1 on error. */
static int wrap_buffer(PyObject *obj, int force, xcs_tensor **out) {
    Py_buffer *view = PyMem_RawMalloc(sizeof *view);
    if (!view) {
        PyErr_NoMemory();
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) < 0) {
        PyMem_RawFree(view);
        PyErr_Clear();
        return 0;
    }
    int dt = force >= 0 && view->itemsize == (Py_ssize_t)xcs_dtype_size((xcs_dtype)force)
                 ? force : force >= 0 ? -1 : format_dtype(view->format, view->itemsize);
    bool ok = dt >= 0 && view->ndim >= 0 && view->ndim <= XCS_MAX_DIMS && !view->suboffsets &&
              ((uintptr_t)view->buf % (uintptr_t)view->itemsize) == 0;
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    int64_t lo = 0, hi = 0, numel = 1; /* byte extent relative to view->buf */
    for (int i = 0; ok && i < view->ndim; i++) {
        Py_ssize_t bst = view->strides ? view->strides[i] : 0;
        if (!view->strides) { /* C-contiguous */
            bst = view->itemsize;
            for (int j = i + 1; j < view->ndim; j++) bst *= view->shape[j];
        }
        if (bst % view->itemsize) ok = false;
        shape[i] = view->shape[i];
        strides[i] = bst / view->itemsize;
        numel *= shape[i];
        if (shape[i] > 0) {
            int64_t span = (shape[i] - 1) * (int64_t)bst;
            if (span < 0) lo += span; else hi += span;
        }
    }
    if (!ok) {
        PyBuffer_Release(view);
        PyMem_RawFree(view);
        return 0;
    }
    size_t nbytes = numel ? (size_t)(hi - lo + view->itemsize) : 0;
    char *base = (char *)view->buf + (numel ? lo : 0);
    xcs_storage *s = xcs_storage_wrap(base, nbytes, true, release_pybuffer, view);
    if (!s) {
        PyBuffer_Release(view);
        PyMem_RawFree(view);
        xcs_py_raise(xcs_last_status());
        return -1;
    }
    /* the storage now owns view; dropping our reference below releases it
     * if the tensor could not be made */
    xcs_status st = xcs_tensor_from_storage(s, (xcs_dtype)dt, view->ndim, shape, strides,
                                            numel ? -lo / view->itemsize : 0, out);
    xcs_storage_release(s);
    if (st) {
        xcs_py_raise(st);
        return -1;
    }
    return 1;
}

/* ---------------------------------------------------------------- numpy path */

/* The numpy dtype name we convert an array of kind/itemsize to, or NULL. */
static const char *nearest_dtype(int kind, Py_ssize_t itemsize) {
    switch (kind) {
    case 'b': return "bool";
    case 'i': return itemsize <= 4 ? "int32" : itemsize == 8 ? "int64" : NULL;
    case 'u': return itemsize <= 2 ? "int32" : itemsize <= 4 ? "int64" : itemsize == 8 ? "float64" : NULL;
    case 'f': return itemsize == 2 ? "float16" : itemsize <= 4 ? "float32" : "float64";
    default: return NULL;
    }
}

/* Calls numpy.asarray(obj[, dtype]) and reports numpy's failure as an
 * XCSTypeError naming the op (original exception chained). */
static PyObject *np_asarray(xcs_py_state *s, PyObject *obj, const char *dtype, const char *op) {
    PyObject *r = dtype ? PyObject_CallFunction(s->np_asarray, "Os", obj, dtype)
                        : PyObject_CallOneArg(s->np_asarray, obj);
    if (!r && !(s->XCSTracerError && PyErr_ExceptionMatches(s->XCSTracerError))) {
        char prefix[160];
        PyOS_snprintf(prefix, sizeof prefix, "cannot convert %.60s to an xcs array for xcs op '%.40s'",
                      Py_TYPE(obj)->tp_name, op);
        xcs_py_chain(XCS_ERR_TYPE, prefix);
    }
    return r;
}

static int convert_via_numpy(PyObject *obj, const char *op, xcs_tensor **out) {
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return -1;
    PyObject *arr = np_asarray(s, obj, NULL, op);
    if (!arr) return -1;
    PyObject *dt = PyObject_GetAttrString(arr, "dtype");
    PyObject *kind = dt ? PyObject_GetAttrString(dt, "kind") : NULL;
    PyObject *isz = dt ? PyObject_GetAttrString(dt, "itemsize") : NULL;
    int rc = -1;
    if (!kind || !isz || !PyUnicode_Check(kind) || PyUnicode_GetLength(kind) != 1) goto done;
    Py_ssize_t itemsize = PyLong_AsSsize_t(isz);
    if (itemsize == -1 && PyErr_Occurred()) goto done;
    /* ml_dtypes' bfloat16 has no buffer format: its bits, as uint16 */
    int force = -1, is_bf16 = s->dtypes[XCS_BF16] ? PyObject_RichCompareBool(dt, s->dtypes[XCS_BF16], Py_EQ) : 0;
    if (is_bf16 < 0) goto done;
    const char *target = is_bf16 ? "uint16" : nearest_dtype((int)PyUnicode_READ_CHAR(kind, 0), itemsize);
    if (!target) {
        xcs_py_errorf(XCS_ERR_TYPE,
                      "unsupported dtype '%S' for xcs op '%s' (xcs supports bool, int32, int64, float16, "
                      "bfloat16, float32, float64)", dt, op);
        goto done;
    }
    PyObject *conv = is_bf16 ? PyObject_CallMethod(arr, "view", "s", target)
                             : np_asarray(s, arr, target, op); /* no-op when already native `target` */
    if (!conv) goto done;
    if (is_bf16) force = XCS_BF16;
    Py_SETREF(arr, conv);
    rc = wrap_buffer(arr, force, out);
    if (rc == 0) { /* unaligned or exotic strides: take a fresh C-ordered copy */
        PyObject *copy = PyObject_CallMethod(s->numpy, "array", "O", arr);
        if (!copy) goto done;
        Py_SETREF(arr, copy);
        rc = wrap_buffer(arr, force, out);
        if (rc == 0) {
            xcs_py_errorf(XCS_ERR_INTERNAL, "xcs op '%s': numpy returned an array xcs cannot wrap", op);
            rc = -1;
        }
    }
    if (rc == 1) rc = 0;
    else if (rc == 0) rc = -1;
done:
    Py_XDECREF(kind);
    Py_XDECREF(isz);
    Py_XDECREF(dt);
    Py_DECREF(arr);
    return rc;
}

/* ---------------------------------------------------------------- scalars */

static int weak_scalar(PyObject *obj, const char *op, xcs_tensor **out) {
    xcs_status st;
    if (PyBool_Check(obj)) {
        st = xcs_tensor_scalar_i64(XCS_BOOL, obj == Py_True, out);
    } else if (PyLong_Check(obj)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (overflow) {
            xcs_py_errorf(XCS_ERR_OVERFLOW, "Python integer %R is out of bounds for int64 (xcs op '%s')", obj, op);
            return -1;
        }
        st = xcs_tensor_scalar_i64(XCS_I64, (int64_t)v, out);
    } else {
        double v = PyFloat_AsDouble(obj);
        if (v == -1.0 && PyErr_Occurred()) return -1;
        st = xcs_tensor_scalar(XCS_F64, v, out);
    }
    if (st) {
        xcs_py_raise(st);
        return -1;
    }
    (*out)->flags |= XCS_TENSOR_WEAK;
    return 0;
}

int xcs_py_int_fits(PyObject *obj, xcs_dtype dt, const char *op) {
    if (dt != XCS_I32 || !PyLong_Check(obj) || PyBool_Check(obj)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow && v >= INT32_MIN && v <= INT32_MAX) return 0;
    xcs_py_errorf(XCS_ERR_OVERFLOW, "%s: Python integer %R out of bounds for int32", op, obj);
    return -1;
}

static bool numpy_like(PyObject *obj) {
    return PyList_Check(obj) || PyTuple_Check(obj) || PySequence_Check(obj) ||
           PyObject_HasAttrString(obj, "__array__") ||
           PyObject_HasAttrString(obj, "__array_interface__") ||
           PyObject_HasAttrString(obj, "__array_struct__");
}

/* ---------------------------------------------------------------- entry points */

int xcs_py_arg_from(PyObject *obj, const char *op, xcs_py_arg *out) {
    out->t = NULL;
    out->owned = false;
    if (XcsArray_Check(obj)) {
        if (xcs_py_check_live(obj)) return -1;
        out->t = xcs_py_host(obj);
        return out->t ? 0 : -1;
    }
    out->owned = true;
    if (PyBool_Check(obj) || PyLong_CheckExact(obj) || PyFloat_CheckExact(obj))
        return weak_scalar(obj, op, &out->t);
    if (PyUnicode_Check(obj) || PyBytes_Check(obj) || obj == Py_None) goto unsupported;
    if (PyObject_CheckBuffer(obj)) {
        int rc = wrap_buffer(obj, -1, &out->t);
        if (rc) return rc > 0 ? 0 : -1;
        return convert_via_numpy(obj, op, &out->t);
    }
    if (PyLong_Check(obj) || PyFloat_Check(obj)) return weak_scalar(obj, op, &out->t);
    if (numpy_like(obj)) return convert_via_numpy(obj, op, &out->t);
unsupported:
    xcs_py_errorf(XCS_ERR_TYPE, "unsupported operand type '%s' for xcs op '%s'", Py_TYPE(obj)->tp_name, op);
    return -1;
}

int xcs_py_operand(PyObject *obj, const char *op, xcs_py_arg *out) {
    if (XcsArray_Check(obj) && ((XcsArray *)obj)->dev) {
        if (xcs_py_check_live(obj)) return -1;
        out->t = ((XcsArray *)obj)->dev;
        out->owned = false;
        return 0;
    }
    return xcs_py_arg_from(obj, op, out);
}

void xcs_py_arg_drop(xcs_py_arg *a) {
    if (a->owned) xcs_tensor_free(a->t);
    a->t = NULL;
    a->owned = false;
}

xcs_tensor *xcs_py_to_tensor(PyObject *obj, const char *op) {
    xcs_py_arg a;
    if (xcs_py_arg_from(obj, op, &a)) return NULL;
    if (a.owned) return a.t;
    xcs_tensor *v;
    xcs_status st = xcs_tensor_view(a.t, &v);
    if (st) {
        xcs_py_raise(st);
        return NULL;
    }
    return v;
}

PyObject *xcs_py_np_dtype(xcs_py_state *s, xcs_dtype dt) {
    if ((unsigned)dt >= XCS_DTYPE_COUNT) return xcs_py_errorf(XCS_ERR_INTERNAL, "invalid dtype %d", (int)dt);
    if (!s->dtypes[dt])
        return xcs_py_errorf(XCS_ERR_TYPE, "numpy has no %s dtype: install ml_dtypes (pip install ml_dtypes) to "
                             "convert %s arrays to numpy", xcs_dtype_name(dt), xcs_dtype_name(dt));
    return Py_NewRef(s->dtypes[dt]);
}

/* A bfloat16 Array as an ndarray of ml_dtypes.bfloat16 over its memory. */
static PyObject *bf16_to_numpy(xcs_py_state *s, PyObject *obj) {
    PyObject *dtype = xcs_py_np_dtype(s, XCS_BF16);
    const xcs_tensor *t = dtype ? xcs_py_host(obj) : NULL;
    Py_ssize_t offset = 0;
    PyObject *raw = t ? xcs_py_raw_bytes(obj, t, &offset) : NULL;
    PyObject *shape = raw ? PyTuple_New(t->ndim) : NULL, *strides = shape ? PyTuple_New(t->ndim) : NULL;
    PyObject *r = NULL;
    if (strides) {
        for (int i = 0; i < t->ndim; i++) {
            PyTuple_SET_ITEM(shape, i, PyLong_FromLongLong(t->shape[i]));
            PyTuple_SET_ITEM(strides, i, PyLong_FromLongLong(t->strides[i] * 2));
        }
        if (!PyErr_Occurred())
            r = PyObject_CallFunction(s->np_ndarray, "OOOnO", shape, dtype, raw, offset, strides);
    }
    Py_XDECREF(strides);
    Py_XDECREF(shape);
    Py_XDECREF(raw);
    Py_XDECREF(dtype);
    return r;
}

PyObject *xcs_py_to_numpy(PyObject *obj) {
    xcs_py_state *s = xcs_py_state_get();
    if (!s) return NULL;
    if (XcsArray_Check(obj) && xcs_py_concrete(XCS_T(obj), "as a numpy array"))
        return NULL;
    if (XcsArray_Check(obj) && XCS_T(obj)->dtype == XCS_BF16) return bf16_to_numpy(s, obj);
    /* a memoryview keeps the exporter alive and makes numpy take our buffer
     * even where it would prefer __array__ */
    PyObject *mv = PyMemoryView_FromObject(obj);
    if (!mv) return NULL;
    PyObject *r = PyObject_CallOneArg(s->np_asarray, mv);
    Py_DECREF(mv);
    return r;
}
