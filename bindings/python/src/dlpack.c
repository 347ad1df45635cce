/* dlpack.c — DLPack exchange (https://dmlc.github.io/dlpack/latest/).
 *
 * Our own minimal copy of the ABI structs (dlpack.h v1.0, layout-stable):
 * exporting with __dlpack__ hands out a "dltensor_versioned" capsule when the
 * consumer passes max_version >= (1, 0) and the legacy "dltensor" capsule
 * otherwise; importing with from_dlpack consumes either, renames the capsule
 * to "used_..." (the protocol's ownership handshake) and wraps the memory
 * zero-copy with a release callback that calls the producer's deleter.
 * CPU memory (kDLCPU) and CUDA memory (kDLCUDA: a device Array's own
 * memory out, a torch/JAX CUDA tensor's in, both zero-copy) with the dtypes
 * xcs has.  xcs runs its kernels on blocking streams (one per host thread),
 * which the legacy default stream is ordered with, so a consumer on that
 * stream (stream None or 1) needs no synchronisation; for any other stream
 * the device is synchronised before the capsule is handed out, and an
 * import asks the producer for stream 1 (xcs's later work follows it). */
#include "xcs_py.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- ABI */

enum { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 };
enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLComplex = 5, kDLBool = 6 };
#define DLPACK_FLAG_BITMASK_READ_ONLY (1ULL << 0)

typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides; /* in elements; NULL means C-contiguous */
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;
typedef struct { uint32_t major; uint32_t minor; } DLPackVersion;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned *self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;

/* ---------------------------------------------------------------- export */

/* One allocation per export: the managed tensor (either flavour), the
 * tensor view that keeps the storage alive, and the shape/stride arrays. */
typedef struct export_ctx {
    union { DLManagedTensor legacy; DLManagedTensorVersioned versioned; } mt;
    xcs_tensor *t;
    int64_t shape[XCS_MAX_DIMS];
    int64_t strides[XCS_MAX_DIMS];
} export_ctx;

/* Deleters may run on any thread, with or without the GIL; xcs_tensor_free
 * needs neither (a numpy-backed storage takes the GIL itself). */
static void export_free(export_ctx *ctx) {
    xcs_tensor_free(ctx->t);
    free(ctx);
}
static void deleter_legacy(DLManagedTensor *self) { export_free(self->manager_ctx); }
static void deleter_versioned(DLManagedTensorVersioned *self) { export_free(self->manager_ctx); }

/* Capsule destructors: free the tensor only if no consumer took it. */
static void capsule_dtor_legacy(PyObject *cap) {
    if (PyCapsule_IsValid(cap, "used_dltensor")) return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    DLManagedTensor *mt = PyCapsule_GetPointer(cap, "dltensor");
    if (mt && mt->deleter) mt->deleter(mt);
    else PyErr_Clear();
    PyErr_Restore(t, v, tb);
}

static void capsule_dtor_versioned(PyObject *cap) {
    if (PyCapsule_IsValid(cap, "used_dltensor_versioned")) return;
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    DLManagedTensorVersioned *mt = PyCapsule_GetPointer(cap, "dltensor_versioned");
    if (mt && mt->deleter) mt->deleter(mt);
    else PyErr_Clear();
    PyErr_Restore(t, v, tb);
}

static DLDataType dl_dtype(xcs_dtype dt) {
    DLDataType d = {kDLFloat, 32, 1};
    switch (dt) {
    case XCS_BOOL: d.code = kDLBool; d.bits = 8; break;
    case XCS_I32: d.code = kDLInt; d.bits = 32; break;
    case XCS_I64: d.code = kDLInt; d.bits = 64; break;
    case XCS_F32: d.code = kDLFloat; d.bits = 32; break;
    case XCS_F64: d.code = kDLFloat; d.bits = 64; break;
    case XCS_F16: d.code = kDLFloat; d.bits = 16; break;
    case XCS_BF16: d.code = kDLBfloat; d.bits = 16; break;
    default: break;
    }
    return d;
}

/* Parses a (type, id) pair; returns 0 or -1 with an error set. */
static int parse_device(PyObject *dev, int *type, int *id) {
    if (!PyTuple_Check(dev) || PyTuple_GET_SIZE(dev) != 2) {
        xcs_py_errorf(XCS_ERR_TYPE, "dl_device must be a (device_type, device_id) tuple, got %R", dev);
        return -1;
    }
    long t = PyLong_AsLong(PyTuple_GET_ITEM(dev, 0));
    if (t == -1 && PyErr_Occurred()) return -1;
    long i = PyLong_AsLong(PyTuple_GET_ITEM(dev, 1));
    if (i == -1 && PyErr_Occurred()) return -1;
    *type = (int)t;
    *id = (int)i;
    return 0;
}

PyObject *xcs_py_dlpack(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"stream", "max_version", "dl_device", "copy", NULL};
    PyObject *stream = Py_None, *max_version = Py_None, *dl_device = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOOO:__dlpack__", kwlist, &stream, &max_version,
                                     &dl_device, &copy))
        return NULL;
    if (xcs_py_concrete(XCS_T(self), "through DLPack (__dlpack__)")) return NULL;
    const xcs_tensor *dev = ((XcsArray *)self)->dev;
    int ordinal = dev ? dev->storage->device_index : 0;
    bool on_device = dev != NULL; /* a device Array exports its device memory unless asked for the CPU */
    if (!xcs_py_none(dl_device)) {
        int type, id;
        if (parse_device(dl_device, &type, &id)) return NULL;
        if (type == kDLCPU) on_device = false;
        else if (!(type == kDLCUDA && dev && id == ordinal))
            return xcs_py_errorf(XCS_ERR_UNSUPPORTED, "__dlpack__: cannot export to device (%d, %d); this "
                                 "Array is on %s (%d, %d)", type, id, dev ? "a GPU" : "the CPU",
                                 dev ? kDLCUDA : kDLCPU, dev ? ordinal : 0);
    }
    const xcs_tensor *src = on_device ? dev : xcs_py_host(self);
    if (!src) return NULL;
    if (!on_device && !xcs_py_none(stream) && !(PyLong_Check(stream) && PyLong_AsLong(stream) == -1))
        return xcs_py_errorf(XCS_ERR_VALUE, "__dlpack__: stream must be None for CPU arrays, got %R", stream);
    if (on_device && !xcs_py_none(stream)) {
        long sv = PyLong_Check(stream) ? PyLong_AsLong(stream) : -2;
        if (sv == -1 && PyErr_Occurred()) return NULL;
        if (sv == -2 || sv == 0)
            return xcs_py_errorf(XCS_ERR_VALUE, "__dlpack__: stream must be None, -1 or a CUDA stream number "
                                 "(0 is not allowed for CUDA), got %R", stream);
        if (sv != 1 && sv != -1) { /* another stream: our work must be done first */
            xcs_status st;
            Py_BEGIN_ALLOW_THREADS
            st = xcs_cuda_sync(ordinal);
            Py_END_ALLOW_THREADS
            if (st) return xcs_py_raise(st);
        }
    }
    bool versioned = false;
    if (!xcs_py_none(max_version)) {
        if (!PyTuple_Check(max_version) || PyTuple_GET_SIZE(max_version) < 1)
            return xcs_py_errorf(XCS_ERR_TYPE, "__dlpack__: max_version must be a (major, minor) tuple, got %R",
                                 max_version);
        long major = PyLong_AsLong(PyTuple_GET_ITEM(max_version, 0));
        if (major == -1 && PyErr_Occurred()) return NULL;
        versioned = major >= 1;
    }
    int want_copy = xcs_py_none(copy) ? 0 : PyObject_IsTrue(copy);
    if (want_copy < 0) return NULL;

    export_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return PyErr_NoMemory();
    xcs_status st = want_copy ? xcs_copy(src, &ctx->t) : xcs_tensor_view(src, &ctx->t);
    if (st) {
        free(ctx);
        return xcs_py_raise(st);
    }
    const xcs_tensor *t = ctx->t;
    /* the consumer may write the memory (a legacy capsule has no read-only
     * flag, and not every consumer honours it): compiled programs stop
     * keeping device copies of it */
    if (!want_copy) xcs_storage_lend(t->storage);
    for (int i = 0; i < t->ndim; i++) {
        ctx->shape[i] = t->shape[i];
        ctx->strides[i] = t->strides[i];
    }
    DLTensor dl = {
        .data = t->storage->data ? xcs_tensor_data(t) : NULL,
        .device = {on_device ? kDLCUDA : kDLCPU, on_device ? ordinal : 0},
        .ndim = t->ndim,
        .dtype = dl_dtype(t->dtype),
        .shape = ctx->shape,
        .strides = ctx->strides,
        .byte_offset = 0,
    };
    PyObject *cap;
    if (versioned) {
        DLManagedTensorVersioned *mt = &ctx->mt.versioned;
        mt->version.major = 1;
        mt->version.minor = 0;
        mt->manager_ctx = ctx;
        mt->deleter = deleter_versioned;
        /* an exported view is read-only; a fresh copy belongs to the consumer */
        mt->flags = want_copy ? 0 : DLPACK_FLAG_BITMASK_READ_ONLY;
        mt->dl_tensor = dl;
        cap = PyCapsule_New(mt, "dltensor_versioned", capsule_dtor_versioned);
    } else {
        DLManagedTensor *mt = &ctx->mt.legacy;
        mt->manager_ctx = ctx;
        mt->deleter = deleter_legacy;
        mt->dl_tensor = dl;
        cap = PyCapsule_New(mt, "dltensor", capsule_dtor_legacy);
    }
    if (!cap) export_free(ctx);
    return cap;
}

PyObject *xcs_py_dlpack_device(PyObject *self, PyObject *unused) {
    const xcs_tensor *t = XCS_T(self); /* a device Array: its device tensor */
    const xcs_storage *s = t->storage;
    if (!s) return Py_BuildValue("(ii)", kDLCPU, 0); /* a tracer: where its program runs */
    if (s->device == XCS_DEVICE_CUDA) return Py_BuildValue("(ii)", kDLCUDA, s->device_index);
    return Py_BuildValue("(ii)", kDLCPU, 0);
}

/* ---------------------------------------------------------------- import */

typedef struct import_ctx {
    void *mt;        /* DLManagedTensor or DLManagedTensorVersioned */
    bool versioned;
} import_ctx;

static void release_import(void *p) {
    import_ctx *c = p;
    if (!Py_IsInitialized()) return; /* interpreter gone: leaking is all we can do */
    /* producers such as numpy drop Python references in their deleters */
    PyGILState_STATE g = PyGILState_Ensure();
    if (c->versioned) {
        DLManagedTensorVersioned *mt = c->mt;
        if (mt->deleter) mt->deleter(mt);
    } else {
        DLManagedTensor *mt = c->mt;
        if (mt->deleter) mt->deleter(mt);
    }
    PyGILState_Release(g);
    free(c);
}

static int dl_to_xcs_dtype(DLDataType d, xcs_dtype *out) {
    if (d.lanes != 1) return -1;
    if (d.code == kDLBool && d.bits == 8) *out = XCS_BOOL;
    else if (d.code == kDLInt && d.bits == 32) *out = XCS_I32;
    else if (d.code == kDLInt && d.bits == 64) *out = XCS_I64;
    else if (d.code == kDLFloat && d.bits == 32) *out = XCS_F32;
    else if (d.code == kDLFloat && d.bits == 64) *out = XCS_F64;
    else if (d.code == kDLFloat && d.bits == 16) *out = XCS_F16;
    else if (d.code == kDLBfloat && d.bits == 16) *out = XCS_BF16;
    else return -1;
    return 0;
}

static const char *dl_code_name(int code) {
    switch (code) {
    case kDLInt: return "int";
    case kDLUInt: return "uint";
    case kDLFloat: return "float";
    case kDLBfloat: return "bfloat";
    case kDLComplex: return "complex";
    case kDLBool: return "bool";
    default: return "code";
    }
}

/* Consumes a capsule: validates it, wraps it and renames it as used. */
static PyObject *from_capsule(PyObject *cap) {
    bool versioned = PyCapsule_IsValid(cap, "dltensor_versioned");
    if (!versioned && !PyCapsule_IsValid(cap, "dltensor"))
        return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: expected an unused 'dltensor' or 'dltensor_versioned' "
                             "capsule (a capsule can be consumed only once)");
    void *mt = PyCapsule_GetPointer(cap, versioned ? "dltensor_versioned" : "dltensor");
    if (!mt) return NULL;
    DLTensor *dl;
    bool readonly = false;
    if (versioned) {
        DLManagedTensorVersioned *v = mt;
        if (v->version.major != 1)
            return xcs_py_errorf(XCS_ERR_UNSUPPORTED, "from_dlpack: DLPack version %u.%u is not supported "
                                 "(xcs reads 1.x)", v->version.major, v->version.minor);
        dl = &v->dl_tensor;
        readonly = v->flags & DLPACK_FLAG_BITMASK_READ_ONLY;
    } else {
        dl = &((DLManagedTensor *)mt)->dl_tensor;
    }
    int type = dl->device.device_type, ordinal = -1;
    if (type != kDLCPU && type != kDLCUDA)
        return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: device (%d, %d) is not supported; xcs imports CPU "
                             "(device type 1) and CUDA (2) memory", type, dl->device.device_id);
    if (type == kDLCUDA) {
        PyObject *name = PyUnicode_FromFormat("cuda:%d", dl->device.device_id);
        ordinal = name ? xcs_py_device_arg(name, "from_dlpack: device") : -2;
        Py_XDECREF(name);
        if (ordinal < 0) return NULL;
    }
    xcs_dtype dt;
    if (dl_to_xcs_dtype(dl->dtype, &dt))
        return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: unsupported dtype %s%d (lanes %d); xcs supports bool, "
                             "int32, int64, float16, bfloat16, float32, float64", dl_code_name(dl->dtype.code), dl->dtype.bits,
                             dl->dtype.lanes);
    if (dl->ndim < 0 || dl->ndim > XCS_MAX_DIMS)
        return xcs_py_errorf(XCS_ERR_SHAPE, "from_dlpack: %d dimensions; xcs arrays have at most %d",
                             dl->ndim, XCS_MAX_DIMS);
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS], numel = 1, lo = 0, hi = 0;
    for (int i = 0; i < dl->ndim; i++) shape[i] = dl->shape[i];
    if (dl->strides) for (int i = 0; i < dl->ndim; i++) strides[i] = dl->strides[i];
    else xcs_strides_contiguous(dl->ndim, shape, strides);
    for (int i = 0; i < dl->ndim; i++) {
        if (shape[i] < 0) return xcs_py_errorf(XCS_ERR_SHAPE, "from_dlpack: negative dimension %lld",
                                               (long long)shape[i]);
        numel *= shape[i];
        if (shape[i] > 0) {
            int64_t span = (shape[i] - 1) * strides[i];
            if (span < 0) lo += span; else hi += span;
        }
    }
    size_t isz = xcs_dtype_size(dt);
    char *first = (char *)dl->data + dl->byte_offset;
    if (numel && (!dl->data || ((uintptr_t)first % isz) != 0))
        return xcs_py_errorf(XCS_ERR_VALUE, "from_dlpack: data pointer is NULL or not aligned to %zu bytes", isz);
    import_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) return PyErr_NoMemory();
    ctx->mt = mt;
    ctx->versioned = versioned;
    char *base = numel ? first + lo * (int64_t)isz : first;
    size_t nbytes = numel ? (size_t)(hi - lo + 1) * isz : 0;
    xcs_storage *s = xcs_storage_wrap(base, nbytes, readonly, release_import, ctx);
    if (!s) {
        free(ctx);
        return xcs_py_raise(xcs_last_status());
    }
    if (ordinal >= 0) { /* the producer's device memory, read in place by jitted calls there */
        s->device = XCS_DEVICE_CUDA;
        s->device_index = ordinal;
    }
    /* from here the storage owns the producer's tensor */
    if (PyCapsule_SetName(cap, versioned ? "used_dltensor_versioned" : "used_dltensor")) {
        /* cannot happen for a valid capsule; give ownership back untouched */
        s->release = NULL;
        xcs_storage_release(s);
        free(ctx);
        return NULL;
    }
    xcs_tensor *t;
    xcs_status st = xcs_tensor_from_storage(s, dt, dl->ndim, shape, strides, numel ? -lo : 0, &t);
    xcs_storage_release(s);
    if (st) return xcs_py_raise(st);
    return ordinal >= 0 ? xcs_py_wrap_device(t) : xcs_py_wrap(t);
}

PyObject *xcs_py_from_dlpack(PyObject *module, PyObject *obj) {
    if (XcsArray_Check(obj)) return Py_NewRef(obj);
    if (PyCapsule_CheckExact(obj)) return from_capsule(obj);
    PyObject *meth = PyObject_GetAttrString(obj, "__dlpack__");
    if (!meth) {
        PyErr_Clear();
        return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: object of type '%s' does not implement __dlpack__",
                             Py_TYPE(obj)->tp_name);
    }
    PyObject *dev = PyObject_CallMethod(obj, "__dlpack_device__", NULL);
    bool cuda = false;
    if (dev) {
        int type, id;
        int rc = parse_device(dev, &type, &id);
        Py_DECREF(dev);
        if (rc) {
            Py_DECREF(meth);
            return NULL;
        }
        if (type != kDLCPU && type != kDLCUDA) {
            Py_DECREF(meth);
            return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: device (%d, %d) is not supported; xcs imports "
                                 "CPU (device type 1) and CUDA (2) memory", type, id);
        }
        cuda = type == kDLCUDA;
    } else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear(); /* producers from before the device query: the capsule says */
    } else {
        Py_DECREF(meth);
        return NULL;
    }
    /* ask for a versioned capsule; producers that predate max_version raise
     * TypeError for the keyword, so retry without it */
    /* CUDA: on stream 1 (the legacy default stream, where xcs runs its kernels) */
    PyObject *args = PyTuple_New(0), *cap = NULL;
    PyObject *kw = cuda ? Py_BuildValue("{s(ii)si}", "max_version", 1, 0, "stream", 1)
                        : Py_BuildValue("{s(ii)}", "max_version", 1, 0);
    if (args && kw) cap = PyObject_Call(meth, args, kw);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    if (!cap && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        cap = PyObject_CallNoArgs(meth);
    }
    Py_DECREF(meth);
    if (!cap) return NULL;
    if (!PyCapsule_CheckExact(cap)) {
        Py_DECREF(cap);
        return xcs_py_errorf(XCS_ERR_TYPE, "from_dlpack: __dlpack__ of '%s' did not return a capsule",
                             Py_TYPE(obj)->tp_name);
    }
    PyObject *r = from_capsule(cap);
    Py_DECREF(cap);
    return r;
}
