/* module.c — ember.xcs._xcs: module init, the exception hierarchy, module
 * state, the status -> exception mapping and the module-level functions that
 * are not ops (devices, build_info, alloc_stats, _set_dispatch).
 *
 * Single-phase init: one module instance per interpreter, state reached with
 * PyState_FindModule (see xcs_py.h for why not PyType_GetModuleByDef).  The
 * Array type is a static type; it holds no Python objects of its own, so it
 * is safe to share. */
#include "xcs_cuda.h"
#include "xcs_py.h"

#include <stdarg.h>

static xcs_py_state *state_quiet(void) {
    PyObject *m = PyState_FindModule(&xcs_py_module_def);
    return m ? (xcs_py_state *)PyModule_GetState(m) : NULL;
}

xcs_py_state *xcs_py_state_get(void) {
    xcs_py_state *s = state_quiet();
    if (!s || !s->numpy)
        PyErr_SetString(PyExc_RuntimeError, "ember.xcs._xcs is not initialised (interpreter shutting down?)");
    return s && s->numpy ? s : NULL;
}

/* ---------------------------------------------------------------- errors */

PyObject *xcs_py_exc_class(xcs_status st) {
    xcs_py_state *s = state_quiet();
    PyObject *c = NULL;
    if (!s) return PyExc_RuntimeError;
    switch (st) {
    case XCS_ERR_SHAPE: c = s->XCSShapeError; break;
    case XCS_ERR_VALUE: c = s->XCSValueError; break;
    case XCS_ERR_TYPE: c = s->XCSTypeError; break;
    case XCS_ERR_INDEX: c = s->XCSIndexError; break;
    case XCS_ERR_ZERO_DIV: c = s->XCSZeroDivisionError; break;
    case XCS_ERR_MEMORY: c = s->XCSMemoryError; break;
    case XCS_ERR_LINALG: c = s->XCSLinAlgError ? s->XCSLinAlgError : s->XCSValueError; break;
    case XCS_ERR_OVERFLOW: c = s->XCSOverflowError ? s->XCSOverflowError : s->XCSValueError; break;
    default: c = s->XCSError; break;
    }
    return c ? c : PyExc_RuntimeError;
}

PyObject *xcs_py_raise(xcs_status st) {
    const char *msg = xcs_last_error();
    if (st == XCS_OK) st = XCS_ERR_INTERNAL; /* a failure without a status is our bug */
    if (!msg || !*msg) msg = xcs_status_name(st);
    PyErr_SetString(xcs_py_exc_class(st), msg);
    return NULL;
}

PyObject *xcs_py_errorf(xcs_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    PyErr_FormatV(xcs_py_exc_class(st), fmt, ap);
    va_end(ap);
    return NULL;
}

PyObject *xcs_py_chain(xcs_status st, const char *prefix) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v && tb) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    PyErr_Format(xcs_py_exc_class(st), "%s: %S", prefix, v ? v : Py_None);
    if (v) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2) PyException_SetCause(v2, v); /* steals v */
        else Py_DECREF(v);
        PyErr_Restore(t2, v2, tb2);
    }
    return NULL;
}

/* ---------------------------------------------------------------- functions */

static PyObject *set_dispatch(PyObject *module, PyObject *args) {
    PyObject *ufunc_fn, *function_fn;
    if (!PyArg_ParseTuple(args, "OO:_set_dispatch", &ufunc_fn, &function_fn)) return NULL;
    if ((ufunc_fn != Py_None && !PyCallable_Check(ufunc_fn)) ||
        (function_fn != Py_None && !PyCallable_Check(function_fn))) {
        PyErr_SetString(PyExc_TypeError, "_set_dispatch: both hooks must be callables or None");
        return NULL;
    }
    xcs_py_state *s = PyModule_GetState(module);
    Py_XSETREF(s->ufunc_hook, ufunc_fn == Py_None ? NULL : Py_NewRef(ufunc_fn));
    Py_XSETREF(s->function_hook, function_fn == Py_None ? NULL : Py_NewRef(function_fn));
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- introspection */

static PyObject *py_devices(PyObject *m, PyObject *unused) {
    xcs_build_info bi = {0};
    xcs_host_build_info(&bi);
    PyObject *cpu = Py_BuildValue("{sssssisssOsO}", "kind", "cpu", "name", "cpu", "threads", bi.max_threads,
                                  "blas", bi.blas_name ? bi.blas_name : "blocked", "openmp",
                                  bi.has_openmp ? Py_True : Py_False, "available", Py_True);
    if (!cpu) return NULL;
    PyObject *cuda;
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CUDA);
    const char *module = NULL;
    bool loaded = false;
    const xcs_cuda_probe *pr = xcs_cuda_probe_get(&module, &loaded);
    PyObject *gpus = PyList_New(0);
    for (int i = 0; gpus && i < pr->n_devices; i++) {
        const xcs_cuda_device_info *d = &pr->devices[i];
        PyObject *g = Py_BuildValue("{sssisssisK}", "name", d->name, "ordinal", d->ordinal, "compute_capability",
                                    "", "sm_count", d->sm_count, "memory_bytes", (unsigned long long)d->total_mem);
        PyObject *ccs = g ? PyUnicode_FromFormat("%d.%d", d->cc_major, d->cc_minor) : NULL;
        if (!ccs || PyDict_SetItemString(g, "compute_capability", ccs) || PyList_Append(gpus, g)) Py_CLEAR(gpus);
        Py_XDECREF(ccs);
        Py_XDECREF(g);
    }
    if (!gpus) {
        Py_DECREF(cpu);
        return NULL;
    }
    if (pr->n_devices > 0) {
        /* NCCL's version as "2.28.9" (NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch), or why none */
        int v = pr->nccl_version;
        PyObject *nccl = v ? PyUnicode_FromFormat("%d.%d.%d", v / 10000, v / 100 % 100, v % 100) : Py_NewRef(Py_None);
        cuda = !nccl ? NULL
                     : Py_BuildValue("{sssssOsOszsisisNsOsssNss}", "kind", "cuda", "name", "cuda", "available",
                                     Py_True, "module_loaded", loaded ? Py_True : Py_False, "module", module,
                                     "driver_version", pr->driver_version, "nvrtc_version", pr->nvrtc_version, "gpus",
                                     gpus, "active", be ? Py_True : Py_False, "description",
                                     be ? xcs_cuda_describe(0) : "", "nccl", nccl, "nccl_reason", pr->nccl_reason);
        if (!nccl) Py_DECREF(gpus);
    } else {
        cuda = Py_BuildValue("{sssssOsssOszsisisN}", "kind", "cuda", "name", "cuda", "available", Py_False, "reason",
                             pr->reason[0] ? pr->reason : "the CUDA backend is not loaded", "module_loaded",
                             loaded ? Py_True : Py_False, "module", module, "driver_version", pr->driver_version,
                             "nvrtc_version", pr->nvrtc_version, "gpus", gpus);
    }
    xcs_error_clear();
    PyObject *r = cuda ? PyList_New(2) : NULL;
    if (!r) {
        Py_DECREF(cpu);
        Py_XDECREF(cuda);
        return NULL;
    }
    PyList_SET_ITEM(r, 0, cpu);
    PyList_SET_ITEM(r, 1, cuda);
    return r;
}

int xcs_py_device_arg(PyObject *name, const char *what) {
    if (name == Py_None) return -1;
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) {
        xcs_py_errorf(XCS_ERR_TYPE, "%s must be a device name such as 'cpu' or 'cuda:0'", what);
        return -2;
    }
    if (strcmp(s, "cpu") == 0) return -1;
    int ordinal = 0;
    char tail = 0;
    if (strcmp(s, "cuda") != 0 && (sscanf(s, "cuda:%d%c", &ordinal, &tail) != 1 || ordinal < 0)) {
        xcs_py_errorf(XCS_ERR_VALUE, "%s must be 'cpu', 'cuda' or 'cuda:N', got %R", what, name);
        return -2;
    }
    xcs_status st = xcs_cuda_activate(ordinal);
    if (st) {
        xcs_py_raise(st);
        return -2;
    }
    return ordinal;
}

/* _device_put(x, device) -> Array: x's values on `device` ('cpu' or
 * 'cuda:N'); one put there from the host keeps its host copy. */
static PyObject *py_device_put(PyObject *m, PyObject *args) {
    PyObject *x, *name;
    if (!PyArg_ParseTuple(args, "OO:device_put", &x, &name)) return NULL;
    int dev = xcs_py_device_arg(name, "device_put: device");
    if (dev == -2) return NULL;
    if (XcsArray_Check(x)) {
        const xcs_tensor *d = ((XcsArray *)x)->dev;
        if (dev < 0 && !d) return Py_NewRef(x);
        if (dev >= 0 && d && d->storage->device_index == dev) return Py_NewRef(x);
    }
    xcs_tensor *t = xcs_py_to_tensor(x, "device_put");
    if (!t) return NULL;
    if (t->graph) {
        xcs_tensor_free(t);
        return xcs_py_errorf(XCS_ERR_VALUE, "device_put: a traced value is placed by its jit function's "
                             "Config(device=...)");
    }
    if (dev < 0) return xcs_py_wrap(t); /* the host copy */
    xcs_tensor *d = NULL;
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_tensor_to(t, XCS_DEVICE_CUDA, dev, &d);
    Py_END_ALLOW_THREADS
    if (st) {
        xcs_tensor_free(t);
        return xcs_py_raise(st);
    }
    PyObject *a = xcs_py_wrap(t);
    if (!a) {
        xcs_tensor_free(d);
        return NULL;
    }
    ((XcsArray *)a)->dev = d;
    return a;
}

/* _has_host_copy(x) -> bool: whether Array x has its values on the host (a
 * device Array's copy is made when they are first read there). */
static PyObject *py_has_host_copy(PyObject *m, PyObject *x) {
    (void)m;
    if (!XcsArray_Check(x)) return xcs_py_errorf(XCS_ERR_TYPE, "_has_host_copy: expected an Array");
    return PyBool_FromLong(((XcsArray *)x)->t != NULL);
}

static PyObject *py_cuda_stats(PyObject *m, PyObject *arg) {
    int dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    xcs_cuda_mem_stats s;
    xcs_cuda_mem_stats_get(dev, &s);
    return Py_BuildValue("{sLsLsLsLsLsLsisLsLsLsLsLsL}", "current_bytes", (long long)s.current_bytes, "peak_bytes",
                         (long long)s.peak_bytes, "cached_bytes", (long long)s.cached_bytes, "allocs",
                         (long long)s.allocs, "reused", (long long)s.reused, "device_allocs",
                         (long long)s.device_allocs, "kernels", xcs_cuda_kernels_cached(dev), "row_chains",
                         (long long)s.row_chains, "gemm_epilogues", (long long)s.gemm_epilogues, "scan_loops",
                         (long long)s.scan_loops, "downloads", (long long)s.downloads,
                         "uploads", (long long)s.uploads, "solver_factorizations",
                         (long long)s.solver_factorizations);
}

static PyObject *py_cuda_empty_cache(PyObject *m, PyObject *arg) {
    int dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    Py_BEGIN_ALLOW_THREADS
    xcs_cuda_empty_cache(dev);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_cuda_set_tf32(PyObject *m, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    xcs_cuda_set_tf32(on);
    Py_RETURN_NONE;
}

static PyObject *py_cuda_sync(PyObject *m, PyObject *arg) {
    int dev = PyLong_AsLong(arg);
    if (dev == -1 && PyErr_Occurred()) return NULL;
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_cuda_sync(dev);
    Py_END_ALLOW_THREADS
    if (st) return xcs_py_raise(st);
    Py_RETURN_NONE;
}

/* The device tensor of Array part (a lazy value computed first), or NULL
 * with *why set when it has none; NULL with the error set on failure. */
static const xcs_tensor *device_part(PyObject *part, Py_ssize_t i, char *why, size_t cap) {
    if (!XcsArray_Check(part)) {
        snprintf(why, cap, "part %zd is not an xcs Array", i);
        return NULL;
    }
    if (xcs_py_concrete(XCS_T(part), "in a pmap collective")) return NULL;
    const xcs_tensor *d = ((XcsArray *)part)->dev;
    if (!d) snprintf(why, cap, "part %zd is on the host", i);
    else if (!xcs_tensor_is_contiguous(d)) snprintf(why, cap, "part %zd is not contiguous", i);
    else return d;
    return NULL;
}

/* _device_collective(kind, parts) -> list[Array] | str: pmap's psum / pmax /
 * all_gather of the blocks' parts (device Arrays, one per GPU, in block
 * order) combined device to device (NCCL): one result per part, on its
 * device.  A str says why it cannot be (no NCCL, a part on the host, a dtype
 * NCCL does not carry): the caller combines on the host. */
static PyObject *py_device_collective(PyObject *m, PyObject *args) {
    (void)m;
    const char *kind;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "sO:_device_collective", &kind, &seq)) return NULL;
    int k = strcmp(kind, "psum") == 0 ? 0 : strcmp(kind, "pmax") == 0 ? 1 : strcmp(kind, "all_gather") == 0 ? 2 : -1;
    if (k < 0) return xcs_py_errorf(XCS_ERR_VALUE, "_device_collective: unknown collective %s", kind);
    PyObject *fast = PySequence_Fast(seq, "_device_collective: parts must be a sequence");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    const xcs_tensor *part[XCS_CUDA_MAX_DEVICES];
    xcs_tensor *out[XCS_CUDA_MAX_DEVICES] = {0};
    char why[160] = "";
    PyObject *res = NULL;
    if (n < 1 || n > XCS_CUDA_MAX_DEVICES) {
        res = PyUnicode_FromFormat("%zd parts (1 to %d)", n, XCS_CUDA_MAX_DEVICES);
        goto done;
    }
    int64_t rows = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!(part[i] = device_part(PySequence_Fast_GET_ITEM(fast, i), i, why, sizeof why))) {
            res = why[0] ? PyUnicode_FromString(why) : NULL;
            goto done;
        }
        const xcs_tensor *p = part[i], *p0 = part[0];
        bool same_rest = p->ndim == p0->ndim && p->dtype == p0->dtype && p->ndim >= (k == 2);
        for (int d = k == 2; same_rest && d < p->ndim; d++) same_rest = p->shape[d] == p0->shape[d];
        if (!same_rest) {
            xcs_py_errorf(XCS_ERR_SHAPE, "_device_collective: %s parts differ in dtype or shape%s (part %zd: %s, "
                          "%d dims; part 0: %s, %d dims)", kind, k == 2 ? " (rows aside)" : "", i,
                          xcs_dtype_name(p->dtype), p->ndim, xcs_dtype_name(p0->dtype), p0->ndim);
            goto done;
        }
        for (Py_ssize_t j = 0; j < i; j++)
            if (part[j]->storage->device_index == p->storage->device_index) {
                xcs_py_errorf(XCS_ERR_VALUE, "_device_collective: parts %zd and %zd are both on cuda:%d (one part a "
                              "device)", j, i, p->storage->device_index);
                goto done;
            }
        rows += p->ndim ? p->shape[0] : 1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t shape[XCS_MAX_DIMS];
        memcpy(shape, part[i]->shape, sizeof shape);
        if (k == 2) shape[0] = rows;
        xcs_status st = xcs_tensor_empty_on(part[i]->storage, part[i]->dtype, part[i]->ndim, shape, &out[i]);
        if (st) {
            xcs_py_raise(st);
            goto done;
        }
    }
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_cuda_collective(k, (int)n, part, out);
    Py_END_ALLOW_THREADS
    if (st == XCS_ERR_UNSUPPORTED) {
        res = PyUnicode_FromString(xcs_last_error());
        goto done;
    }
    if (st) {
        xcs_py_raise(st);
        goto done;
    }
    if (!(res = PyList_New(n))) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = xcs_py_wrap_device(out[i]);
        out[i] = NULL;
        if (!a) {
            Py_CLEAR(res);
            break;
        }
        PyList_SET_ITEM(res, i, a);
    }
done:
    for (Py_ssize_t i = 0; i < n && i < XCS_CUDA_MAX_DEVICES; i++) xcs_tensor_free(out[i]);
    Py_DECREF(fast);
    return res;
}

static PyObject *py_build_info(PyObject *m, PyObject *unused) {
    xcs_build_info bi = {0};
    xcs_host_build_info(&bi);
    return Py_BuildValue("{sssOsOsOsisssisis(sssss)}", "version", XCS_VERSION_STR, "has_openmp",
                         bi.has_openmp ? Py_True : Py_False, "has_cblas", bi.has_cblas ? Py_True : Py_False,
                         "has_cuda_backend", bi.has_cuda_backend ? Py_True : Py_False, "max_threads",
                         bi.max_threads, "blas", bi.blas_name ? bi.blas_name : "blocked", "max_dims", XCS_MAX_DIMS,
                         "nogil_min_elements", XCS_PY_NOGIL_MIN, "dtypes", "bool", "int32", "int64", "float32",
                         "float64");
}

static PyObject *py_alloc_stats(PyObject *m, PyObject *unused) {
    xcs_alloc_stats s;
    xcs_alloc_stats_get(&s);
    return Py_BuildValue("{sLsLsLsL}", "live_buffers", (long long)s.live_buffers, "live_bytes",
                         (long long)s.live_bytes, "total_buffers", (long long)s.total_buffers, "total_bytes",
                         (long long)s.total_bytes);
}

static PyMethodDef module_methods[] = {
    {"from_dlpack", (PyCFunction)xcs_py_from_dlpack, METH_O,
     "from_dlpack(obj) -> Array\n\nZero-copy import of a DLPack producer (an object with __dlpack__, or a "
     "'dltensor' capsule) living on the CPU."},
    {"_devices", py_devices, METH_NOARGS, "_devices() -> list of dicts, one per backend."},
    {"_device_put", py_device_put, METH_VARARGS, "_device_put(x, device) -> Array on device ('cpu'/'cuda:N')."},
    {"_has_host_copy", py_has_host_copy, METH_O,
     "_has_host_copy(x) -> whether Array x has its values on the host (device Arrays copy them when first read)."},
    {"_cuda_stats", py_cuda_stats, METH_O, "_cuda_stats(ordinal) -> the caching allocator's counters."},
    {"_cuda_empty_cache", py_cuda_empty_cache, METH_O, "_cuda_empty_cache(ordinal): frees cached device blocks."},
    {"_cuda_set_tf32", py_cuda_set_tf32, METH_O, "_cuda_set_tf32(on): float32 matmuls may use TF32."},
    {"_cuda_sync", py_cuda_sync, METH_O, "_cuda_sync(ordinal): waits for the device's queued work."},
    {"_device_collective", py_device_collective, METH_VARARGS,
     "_device_collective(kind, parts) -> list[Array] | str: pmap's psum/pmax/all_gather of device Arrays on "
     "distinct GPUs combined device to device (NCCL); a str says why not (the caller combines on the host)."},
    {"_build_info", py_build_info, METH_NOARGS, "_build_info() -> dict"},
    {"_alloc_stats", py_alloc_stats, METH_NOARGS, "_alloc_stats() -> dict of xcs_storage_new counters"},
    {"_set_dispatch", (PyCFunction)set_dispatch, METH_VARARGS,
     "_set_dispatch(ufunc_hook, function_hook)\n\nRegisters the Python functions that implement "
     "Array.__array_ufunc__ and Array.__array_function__ (ember.xcs._dispatch does this at import)."},
    {NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------------------- lifetime */

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    xcs_py_state *s = PyModule_GetState(m);
    if (!s) return 0;
    Py_VISIT(s->XCSError);
    Py_VISIT(s->XCSShapeError);
    Py_VISIT(s->XCSValueError);
    Py_VISIT(s->XCSTypeError);
    Py_VISIT(s->XCSIndexError);
    Py_VISIT(s->XCSZeroDivisionError);
    Py_VISIT(s->XCSMemoryError);
    Py_VISIT(s->XCSTracerError);
    Py_VISIT(s->XCSLinAlgError);
    Py_VISIT(s->XCSOverflowError);
    Py_VISIT(s->numpy);
    Py_VISIT(s->np_asarray);
    Py_VISIT(s->np_dtype);
    Py_VISIT(s->np_ndarray);
    for (int i = 0; i < XCS_DTYPE_COUNT; i++) Py_VISIT(s->dtypes[i]);
    Py_VISIT(s->ufunc_hook);
    Py_VISIT(s->function_hook);
    return 0;
}

static int module_clear(PyObject *m) {
    xcs_py_state *s = PyModule_GetState(m);
    if (!s) return 0;
    Py_CLEAR(s->XCSError);
    Py_CLEAR(s->XCSShapeError);
    Py_CLEAR(s->XCSValueError);
    Py_CLEAR(s->XCSTypeError);
    Py_CLEAR(s->XCSIndexError);
    Py_CLEAR(s->XCSZeroDivisionError);
    Py_CLEAR(s->XCSMemoryError);
    Py_CLEAR(s->XCSTracerError);
    Py_CLEAR(s->XCSLinAlgError);
    Py_CLEAR(s->XCSOverflowError);
    Py_CLEAR(s->numpy);
    Py_CLEAR(s->np_asarray);
    Py_CLEAR(s->np_dtype);
    Py_CLEAR(s->np_ndarray);
    for (int i = 0; i < XCS_DTYPE_COUNT; i++) Py_CLEAR(s->dtypes[i]);
    Py_CLEAR(s->ufunc_hook);
    Py_CLEAR(s->function_hook);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

struct PyModuleDef xcs_py_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ember.xcs._xcs",
    .m_doc = "XCS tensor runtime: the C extension behind ember.xcs (Array, ops, DLPack, errors).",
    .m_size = sizeof(xcs_py_state),
    .m_methods = module_methods,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

/* Creates one exception class, stores it in *slot and adds it to the module.
 * `bases` is a class or a tuple of classes (borrowed). */
static int add_exception(PyObject *m, PyObject **slot, const char *name, const char *doc, PyObject *bases) {
    char qual[96];
    PyOS_snprintf(qual, sizeof qual, "ember.xcs.errors.%s", name);
    *slot = PyErr_NewExceptionWithDoc(qual, doc, bases, NULL);
    if (!*slot) return -1;
    return PyModule_AddObjectRef(m, name, *slot);
}

static int add_exceptions(PyObject *m, xcs_py_state *s) {
    if (add_exception(m, &s->XCSError, "XCSError",
                      "Base class of every error raised by XCS.  The message names the op, the shapes "
                      "or values at fault, and the fix.", PyExc_RuntimeError))
        return -1;
    struct { PyObject **slot; const char *name; PyObject *std; const char *doc; } sub[] = {
        {&s->XCSShapeError, "XCSShapeError", PyExc_ValueError, "Shapes do not agree (broadcast, matmul, reshape, ...)."},
        {&s->XCSValueError, "XCSValueError", PyExc_ValueError, "A bad argument value (axis, size, empty reduction, ...)."},
        {&s->XCSTypeError, "XCSTypeError", PyExc_TypeError, "A dtype or Python type an op cannot take."},
        {&s->XCSIndexError, "XCSIndexError", PyExc_IndexError, "An index or axis out of bounds."},
        {&s->XCSZeroDivisionError, "XCSZeroDivisionError", PyExc_ZeroDivisionError,
         "Integer division or modulo by zero."},
        {&s->XCSMemoryError, "XCSMemoryError", PyExc_MemoryError, "An allocation failed or a size overflows."},
        {&s->XCSTracerError, "XCSTracerError", PyExc_TypeError,
         "A traced value (inside a jitted function) was used as concrete data: as a Python bool/int/float, "
         "converted to numpy, printed as numbers; or a traced array escaped its jit function."},
    };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        PyObject *bases = PyTuple_Pack(2, s->XCSError, sub[i].std);
        if (!bases) return -1;
        int rc = add_exception(m, sub[i].slot, sub[i].name, sub[i].doc, bases);
        Py_DECREF(bases);
        if (rc) return -1;
    }
    /* numpy raises OverflowError for a Python int its dtype cannot hold; xcs
     * raised XCSValueError before, which this stays */
    PyObject *bases = PyTuple_Pack(2, s->XCSValueError, PyExc_OverflowError);
    if (!bases) return -1;
    int rc = add_exception(m, &s->XCSOverflowError, "XCSOverflowError",
                           "A Python integer outside the integer dtype it takes (numpy's OverflowError): "
                           "also an OverflowError and an XCSValueError.", bases);
    Py_DECREF(bases);
    return rc;
}

/* XCSLinAlgError(XCSValueError, numpy.linalg.LinAlgError): numpy's code that
 * catches LinAlgError catches xcs's singular / not positive definite
 * matrices too (after numpy is loaded). */
static int add_linalg_error(PyObject *m, xcs_py_state *s) {
    PyObject *la = PyImport_ImportModule("numpy.linalg");
    PyObject *np_err = la ? PyObject_GetAttrString(la, "LinAlgError") : NULL;
    Py_XDECREF(la);
    if (!np_err) return -1;
    PyObject *bases = PyTuple_Pack(2, s->XCSValueError, np_err);
    Py_DECREF(np_err);
    if (!bases) return -1;
    int rc = add_exception(m, &s->XCSLinAlgError, "XCSLinAlgError",
                           "A matrix numpy.linalg refuses (singular, not positive definite): also a "
                           "numpy.linalg.LinAlgError and an XCSValueError.", bases);
    Py_DECREF(bases);
    return rc;
}

static int load_numpy(xcs_py_state *s) {
    s->numpy = PyImport_ImportModule("numpy");
    if (!s->numpy) return -1;
    s->np_asarray = PyObject_GetAttrString(s->numpy, "asarray");
    s->np_dtype = PyObject_GetAttrString(s->numpy, "dtype");
    s->np_ndarray = PyObject_GetAttrString(s->numpy, "ndarray");
    if (!s->np_asarray || !s->np_dtype || !s->np_ndarray) return -1;
    for (int i = 0; i < XCS_DTYPE_COUNT; i++) {
        if (i == XCS_BF16) continue;
        s->dtypes[i] = PyObject_CallFunction(s->np_dtype, "s", xcs_dtype_name((xcs_dtype)i));
        if (!s->dtypes[i]) return -1;
    }
    /* numpy has no bfloat16: ml_dtypes (JAX's) adds it.  Without it xcs
     * still computes in bfloat16, but cannot hand such arrays to numpy. */
    PyObject *mld = PyImport_ImportModule("ml_dtypes");
    if (mld) {
        PyObject *bf = PyObject_GetAttrString(mld, "bfloat16");
        s->dtypes[XCS_BF16] = bf ? PyObject_CallOneArg(s->np_dtype, bf) : NULL;
        Py_XDECREF(bf);
        Py_DECREF(mld);
        if (!s->dtypes[XCS_BF16]) return -1;
    } else if (PyErr_ExceptionMatches(PyExc_ImportError)) {
        PyErr_Clear();
    } else {
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__xcs(void) {
    PyObject *m = PyModule_Create(&xcs_py_module_def);
    if (!m) return NULL;
    xcs_py_state *s = PyModule_GetState(m);
    if (add_exceptions(m, s) || load_numpy(s) || add_linalg_error(m, s)) goto fail;
    xcs_status st = xcs_host_init();
    if (st) {
        const char *msg = xcs_last_error();
        PyErr_Format(s->XCSError, "cannot initialise the CPU backend: %s", msg && *msg ? msg : xcs_status_name(st));
        goto fail;
    }
    if (PyType_Ready(&XcsArray_Type) || PyType_Ready(&XcsArrayIter_Type) || PyType_Ready(&XcsGraph_Type) ||
        PyType_Ready(&XcsTaskGraph_Type) || PyType_Ready(&XcsRawBytes_Type))
        goto fail;
    if (PyModule_AddObjectRef(m, "Array", (PyObject *)&XcsArray_Type)) goto fail;
    if (PyModule_AddObjectRef(m, "Graph", (PyObject *)&XcsGraph_Type)) goto fail;
    if (PyModule_AddObjectRef(m, "TaskGraph", (PyObject *)&XcsTaskGraph_Type)) goto fail;
    if (PyModule_AddFunctions(m, xcs_py_ops_methods) || PyModule_AddFunctions(m, xcs_py_make_methods) ||
        PyModule_AddFunctions(m, xcs_py_random_methods) || PyModule_AddFunctions(m, xcs_py_graph_methods) ||
        PyModule_AddFunctions(m, xcs_py_taskgraph_methods))
        goto fail;
    if (PyModule_AddStringConstant(m, "__version__", XCS_VERSION_STR)) goto fail;
    if (PyModule_AddIntConstant(m, "MAX_DIMS", XCS_MAX_DIMS)) goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
