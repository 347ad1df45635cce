/* buffer.c — the buffer protocol export of Array (PEP 3118).
 *
 * Read-only (Arrays are immutable), any strides numpy can express (negative
 * for reversed slices, zero for broadcast dims), so np.asarray(Array) and
 * memoryview(Array) never copy.  The Py_buffer holds a reference to the Array
 * (view->obj), which owns the tensor, which holds the storage: the memory
 * lives as long as any consumer.  Shape/stride arrays in bytes live in
 * view->internal and are freed by bf_releasebuffer. */
#include "xcs_py.h"

typedef struct bufinfo {
    Py_ssize_t shape[XCS_MAX_DIMS];
    Py_ssize_t strides[XCS_MAX_DIMS];
} bufinfo;

const char *xcs_py_format(xcs_dtype dt) {
    switch (dt) {
    case XCS_BOOL: return "?";
    case XCS_I32: return sizeof(int) == 4 ? "i" : "=i";
    case XCS_I64: return sizeof(long) == 8 ? "l" : "q";
    case XCS_F32: return "f";
    case XCS_F64: return "d";
    case XCS_F16: return "e";
    default: return NULL; /* bfloat16: PEP 3118 has no code for it (see xcs_py_raw_bytes) */
    }
}

/* Contiguity in the given order ('C' or 'F'); size-1 dims are free. */
static bool is_contiguous(const xcs_tensor *t, char order) {
    int64_t expect = 1;
    if (xcs_tensor_numel(t) == 0) return true;
    for (int k = 0; k < t->ndim; k++) {
        int i = order == 'C' ? t->ndim - 1 - k : k;
        if (t->shape[i] != 1 && t->strides[i] != expect) return false;
        expect *= t->shape[i];
    }
    return true;
}

static int array_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    static char empty_data[64]; /* a valid pointer for zero-size arrays */
    view->obj = NULL;
    if (xcs_py_concrete(XCS_T(self), "through the buffer protocol (memoryview, numpy)")) return -1;
    const xcs_tensor *t = xcs_py_host(self);
    if (!t) return -1;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "xcs Arrays are immutable: their buffer is read-only "
                                           "(copy it with numpy.array(x) to get a writable array)");
        return -1;
    }
    if (t->storage->device != XCS_DEVICE_CPU) {
        PyErr_SetString(PyExc_BufferError, "this Array lives on a device; the buffer protocol needs CPU memory");
        return -1;
    }
    if (!xcs_py_format(t->dtype)) {
        PyErr_Format(PyExc_BufferError, "the buffer protocol has no format for %s (np.asarray converts it "
                     "through ml_dtypes)", xcs_dtype_name(t->dtype));
        return -1;
    }
    bool c = is_contiguous(t, 'C'), f = is_contiguous(t, 'F');
    if (((flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS && !c) ||
        ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && !f) ||
        ((flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS && !c && !f) ||
        (!(flags & PyBUF_STRIDES) && !c)) {
        PyErr_SetString(PyExc_BufferError, "this Array is not contiguous in the requested order "
                                           "(ask for strides, or copy it first)");
        return -1;
    }
    bufinfo *info = PyMem_Malloc(sizeof *info);
    if (!info) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t isz = (Py_ssize_t)xcs_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        info->shape[i] = (Py_ssize_t)t->shape[i];
        info->strides[i] = (Py_ssize_t)t->strides[i] * isz;
    }
    void *data = t->storage->data ? xcs_tensor_data(t) : NULL;
    view->buf = data ? data : empty_data;
    view->obj = Py_NewRef(self);
    view->len = (Py_ssize_t)xcs_tensor_numel(t) * isz;
    view->readonly = 1;
    view->itemsize = isz;
    view->format = (flags & PyBUF_FORMAT) ? (char *)xcs_py_format(t->dtype) : NULL;
    view->ndim = t->ndim;
    view->shape = (flags & PyBUF_ND) ? info->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? info->strides : NULL;
    view->suboffsets = NULL;
    view->internal = info;
    return 0;
}

static void array_releasebuffer(PyObject *self, Py_buffer *view) {
    PyMem_Free(view->internal);
    view->internal = NULL;
}

PyBufferProcs xcs_py_buffer_procs = {
    .bf_getbuffer = array_getbuffer,
    .bf_releasebuffer = array_releasebuffer,
};

/* ---------------------------------------------------------------- raw bytes */

/* The bytes under a host tensor, exported as one read-only run, holding the
 * Array that owns them: how a bfloat16 Array reaches numpy, which builds an
 * ndarray of ml_dtypes.bfloat16 over it (shape, strides and offset given
 * separately), zero-copy like every other dtype. */
typedef struct {
    PyObject_HEAD
    PyObject *owner;
    char *lo;
    Py_ssize_t len;
} RawBytes;

static int raw_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    RawBytes *r = (RawBytes *)self;
    static char empty_data[8];
    return PyBuffer_FillInfo(view, self, r->len ? r->lo : empty_data, r->len, 1, flags);
}

static void raw_dealloc(PyObject *self) {
    Py_XDECREF(((RawBytes *)self)->owner);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs raw_buffer_procs = {.bf_getbuffer = raw_getbuffer};

PyTypeObject XcsRawBytes_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember.xcs._xcs._RawBytes",
    .tp_basicsize = sizeof(RawBytes),
    .tp_dealloc = raw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_as_buffer = &raw_buffer_procs,
    .tp_doc = "The bytes under an xcs Array (internal).",
};

PyObject *xcs_py_raw_bytes(PyObject *owner, const xcs_tensor *t, Py_ssize_t *offset) {
    int64_t lo = 0, hi = 0, isz = (int64_t)xcs_dtype_size(t->dtype);
    bool empty = xcs_tensor_numel(t) == 0;
    for (int i = 0; i < t->ndim && !empty; i++) {
        int64_t span = (t->shape[i] - 1) * t->strides[i] * isz;
        if (span < 0) lo += span; else hi += span;
    }
    RawBytes *r = PyObject_New(RawBytes, &XcsRawBytes_Type);
    if (!r) return NULL;
    r->owner = Py_NewRef(owner);
    r->lo = empty ? NULL : (char *)xcs_tensor_data(t) + lo;
    r->len = empty ? 0 : (Py_ssize_t)(hi - lo + isz);
    *offset = (Py_ssize_t)-lo;
    return (PyObject *)r;
}
