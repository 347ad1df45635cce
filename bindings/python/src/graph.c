/* graph.c — the Graph type (a traced program, wrapping xcs_graph) and the
 * tracer guards used by every binding path that would read array data.
 *
 * Lifetime of traced arrays.  A traced xcs_tensor borrows its xcs_graph, so
 * an Array wrapping one holds a strong reference to the Graph object that
 * owns that xcs_graph (XcsArray.graph_owner).  Results are wrapped in one
 * place, xcs_py_wrap, which only sees the tensor: it finds the owner in a
 * registry of live Graph objects (an intrusive list, protected by the GIL,
 * with the last hit cached; only traced results pay for the lookup).  So
 * every op on a traced Array returns an Array that keeps the graph alive,
 * whatever thread or path made it.
 *
 * Sealing.  When the jit finishes a trace it seals the Graph (also done by
 * optimize() and run()): from then on the graph is a compiled program that
 * other threads may run concurrently (xcs_graph_run only reads it), so it
 * must never grow again.  A traced Array that outlived its trace (stored in
 * a global, returned through a side channel) is refused by every op
 * (xcs_py_check_live, called by xcs_py_arg_from and the few paths that take
 * XCS_T(self) directly) with XCSTracerError "a traced array escaped its jit
 * function".
 *
 * Concretization.  A traced tensor has no storage.  Reading its value
 * (bool(), float(), item(), the buffer protocol, __array__, DLPack, repr's
 * numbers, numpy fallbacks, random keys) raises XCSTracerError through
 * xcs_py_concrete; the jit wrapper adds the user's source line.  In a lazy
 * Graph (Graph(lazy=True): the tensor regions of an orchestration body,
 * whose Python re-runs every call) the same read computes the value instead
 * (xcs_graph_concretize: the fused program for what it needs) and the
 * traced tensor becomes concrete in place. */
#include "xcs_py.h"

#include <string.h>

/* ---------------------------------------------------------------- registry */

static XcsGraph *registry_head, *registry_last_hit;

static void registry_add(XcsGraph *g) {
    g->prev = NULL;
    g->next = registry_head;
    if (registry_head) registry_head->prev = g;
    registry_head = g;
}

static void registry_remove(XcsGraph *g) {
    if (g->prev) g->prev->next = g->next;
    else if (registry_head == g) registry_head = g->next;
    if (g->next) g->next->prev = g->prev;
    if (registry_last_hit == g) registry_last_hit = NULL;
    g->prev = g->next = NULL;
}

XcsGraph *xcs_py_graph_owner(const xcs_graph *graph) {
    if (!graph) return NULL;
    if (registry_last_hit && registry_last_hit->g == graph) return registry_last_hit;
    for (XcsGraph *it = registry_head; it; it = it->next)
        if (it->g == graph) return registry_last_hit = it;
    return NULL;
}

/* ---------------------------------------------------------------- guards */

/* "float32[4,8]" into buf. */
static const char *abstract_str(const xcs_tensor *t, char *buf, size_t cap) {
    size_t n = (size_t)PyOS_snprintf(buf, cap, "%s[", xcs_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)PyOS_snprintf(buf + n, cap - n, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (n < cap) PyOS_snprintf(buf + n, cap - n, "]");
    return buf;
}

static PyObject *tracer_error_class(void) {
    xcs_py_state *s = xcs_py_state_get();
    return s && s->XCSTracerError ? s->XCSTracerError : PyExc_TypeError;
}

static int raise_escaped(const xcs_tensor *t) {
    char sig[160];
    PyErr_Format(tracer_error_class(),
                 "a traced array escaped its jit function: this Traced<%s> belongs to a trace that has "
                 "finished, so it has no value and cannot be used any more; return arrays from the jitted "
                 "function instead of storing them in globals or closures",
                 abstract_str(t, sig, sizeof sig));
    return -1;
}

int xcs_py_concrete(const xcs_tensor *t, const char *what) {
    if (!t->graph) return 0;
    XcsGraph *owner = xcs_py_graph_owner(t->graph);
    if (owner && owner->lazy) { /* compute it; the tensor header is the Array's own, so it turns concrete */
        xcs_status st;
        xcs_tensor *mt = (xcs_tensor *)t;
        int dev = owner->device;
        Py_BEGIN_ALLOW_THREADS
        st = dev >= 0 ? xcs_graph_concretize_on(owner->g, mt, XCS_DEVICE_CUDA, dev) : xcs_graph_concretize(owner->g, mt);
        Py_END_ALLOW_THREADS
        if (st) {
            xcs_py_raise(st);
            return -1;
        }
        return 0;
    }
    if (!owner || owner->sealed) return raise_escaped(t);
    char sig[160];
    PyErr_Format(tracer_error_class(),
                 "jit: cannot use a traced %s value %s inside a jitted function (its value is only known "
                 "when the compiled program runs); values that steer Python control flow must be static: "
                 "jit(f, static_argnums=(1,)) or static_argnames=('n',); for data-dependent choices use "
                 "xnp.where",
                 abstract_str(t, sig, sizeof sig), what);
    return -1;
}

int xcs_py_lazy_resolve(const xcs_tensor *t) {
    XcsGraph *owner = t->graph ? xcs_py_graph_owner(t->graph) : NULL;
    if (!owner || !owner->lazy) return 0;
    return xcs_py_concrete(t, "as a value") ? -1 : 1;
}

int xcs_py_check_live(PyObject *arr) {
    XcsArray *a = (XcsArray *)arr;
    if (!a->graph_owner || !((XcsGraph *)a->graph_owner)->sealed) return 0;
    return raise_escaped(a->t);
}

PyObject *xcs_py_traced_repr(const xcs_tensor *t) {
    char sig[160];
    return PyUnicode_FromFormat("Traced<%s>", abstract_str(t, sig, sizeof sig));
}

/* ---------------------------------------------------------------- Graph */

static PyObject *graph_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"lazy", "parent", "device", NULL};
    int lazy = 0;
    PyObject *parent = Py_None, *device = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|$pOO:Graph", kwlist, &lazy, &parent, &device)) return NULL;
    int dev = xcs_py_device_arg(device, "Graph: device");
    if (dev == -2) return NULL;
    if (parent != Py_None && !PyObject_TypeCheck(parent, &XcsGraph_Type)) {
        PyErr_SetString(PyExc_TypeError, "Graph(parent=...) expects a Graph or None");
        return NULL;
    }
    XcsGraph *self = (XcsGraph *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->lazy = lazy;
    self->device = dev;
    xcs_status st = xcs_graph_new(&self->g);
    if (st) {
        Py_DECREF(self);
        return xcs_py_raise(st);
    }
    registry_add(self);
    if (parent != Py_None) {
        self->parent = Py_NewRef(parent);
        xcs_graph_set_parent(self->g, ((XcsGraph *)parent)->g);
    }
    return (PyObject *)self;
}

static void graph_dealloc(PyObject *o) {
    XcsGraph *self = (XcsGraph *)o;
    if (self->weakreflist) PyObject_ClearWeakRefs(o);
    if (self->g) {
        registry_remove(self);
        xcs_graph_free(self->g); /* may release numpy buffers of constants: GIL held */
        self->g = NULL;
    }
    xcs_scan_program_free(self->scan);
    self->scan = NULL;
    Py_CLEAR(self->parent);
    Py_TYPE(o)->tp_free(o);
}

static int refuse_sealed(XcsGraph *self, const char *what) {
    if (!self->sealed) return 0;
    xcs_py_errorf(XCS_ERR_VALUE, "Graph.%s: the graph is sealed (optimized or run); it can no longer grow", what);
    return -1;
}

static PyObject *g_input(PyObject *o, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dtype", "shape", "weak", NULL};
    XcsGraph *self = (XcsGraph *)o;
    PyObject *dtype_obj, *shape_obj;
    int weak = 0, nd;
    int64_t shape[XCS_MAX_DIMS];
    xcs_dtype dt;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p:input", kwlist, &dtype_obj, &shape_obj, &weak)) return NULL;
    if (refuse_sealed(self, "input")) return NULL;
    int rc = xcs_py_dtype(dtype_obj, "Graph.input", &dt);
    if (rc) return rc < 0 ? NULL : xcs_py_errorf(XCS_ERR_TYPE, "Graph.input: dtype must not be None");
    if (xcs_py_shape(shape_obj, "Graph.input", false, &nd, shape)) return NULL;
    xcs_tensor *t;
    xcs_status st = xcs_graph_input(self->g, dt, nd, shape, &t);
    if (st) return xcs_py_raise(st);
    if (weak) t->flags |= XCS_TENSOR_WEAK; /* kept by xcs_py_wrap for traced tensors */
    return xcs_py_wrap(t);
}

/* constant(x) -> a traced Array standing for concrete x (lazy graphs' leaves). */
static PyObject *g_constant(PyObject *o, PyObject *x) {
    XcsGraph *self = (XcsGraph *)o;
    if (refuse_sealed(self, "constant")) return NULL;
    xcs_py_arg a;
    if (xcs_py_arg_from(x, "Graph.constant", &a)) return NULL;
    xcs_tensor *t = NULL;
    xcs_status st = a.t->graph ? xcs_error(XCS_ERR_VALUE, "Graph.constant: the value is itself traced")
                               : xcs_graph_const(self->g, a.t, &t);
    xcs_py_arg_drop(&a);
    if (st) return xcs_py_raise(st);
    return xcs_py_wrap(t);
}

/* _concretize(x): a traced Array of a lazy graph computed in place (and
 * detached from its graph); anything else is returned as it is. */
static PyObject *py_concretize(PyObject *m, PyObject *x) {
    (void)m;
    if (!XcsArray_Check(x) || !XCS_T(x)->graph) return Py_NewRef(x);
    XcsGraph *owner = xcs_py_graph_owner(XCS_T(x)->graph);
    if (!owner || !owner->lazy) return Py_NewRef(x);
    if (xcs_py_concrete(XCS_T(x), "as a value")) return NULL;
    Py_CLEAR(((XcsArray *)x)->graph_owner);
    return Py_NewRef(x);
}

/* _lazy_value(x): the value of a traced Array of a lazy graph as a new
 * concrete Array, x itself staying lazy (xcs_graph_lazy_value); anything
 * else is returned as it is. */
static PyObject *py_lazy_value(PyObject *m, PyObject *x) {
    (void)m;
    if (!XcsArray_Check(x) || !XCS_T(x)->graph) return Py_NewRef(x);
    XcsGraph *owner = xcs_py_graph_owner(XCS_T(x)->graph);
    if (!owner || !owner->lazy) return Py_NewRef(x);
    xcs_tensor *v = NULL;
    xcs_status st;
    int dev = owner->device;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_graph_lazy_value(owner->g, XCS_T(x), dev >= 0 ? XCS_DEVICE_CUDA : XCS_DEVICE_CPU, dev >= 0 ? dev : 0, &v);
    Py_END_ALLOW_THREADS
    if (st) return xcs_py_raise(st);
    return xcs_py_wrap(v);
}

/* The traced Arrays of lazy Graphs in sequence `fast`, into ts (*n of them),
 * and the Graph they share; NULL when there is none, or (*several) when
 * they come from more than one. */
static XcsGraph *lazy_values(PyObject *fast, xcs_tensor **ts, int *n, bool *several) {
    XcsGraph *owner = NULL;
    *n = 0;
    *several = false;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *x = PySequence_Fast_GET_ITEM(fast, i);
        if (!XcsArray_Check(x) || !XCS_T(x)->graph) continue;
        XcsGraph *o = xcs_py_graph_owner(XCS_T(x)->graph);
        if (!o || !o->lazy) continue;
        if (owner && o != owner) *several = true;
        owner = o;
        ts[(*n)++] = XCS_T(x);
    }
    return *several ? NULL : owner;
}

/* _lazy_key(arrays) -> (key, ops, constant bytes) or None (see xcs_lazy_key). */
static PyObject *py_lazy_key(PyObject *m, PyObject *seq) {
    (void)m;
    PyObject *fast = PySequence_Fast(seq, "_lazy_key: expected a sequence of arrays");
    if (!fast) return NULL;
    xcs_tensor **ts = PyMem_Malloc(((size_t)PySequence_Fast_GET_SIZE(fast) + 1) * sizeof *ts);
    if (!ts) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    int n;
    bool several;
    XcsGraph *owner = lazy_values(fast, ts, &n, &several);
    xcs_lazy_cost cost;
    uint64_t key = owner ? xcs_lazy_key(owner->g, n, (const xcs_tensor *const *)ts, &cost) : 0;
    PyMem_Free(ts);
    Py_DECREF(fast);
    if (!key) Py_RETURN_NONE;
    return Py_BuildValue("(KiL)", (unsigned long long)(key ^ ((uint64_t)(owner->device + 1) << 56)), cost.ops,
                         (long long)cost.bytes);
}

/* _concretize_batch(requests) -> examples run as one program: each request
 * (a sequence of Arrays, one example's) is computed; the Arrays stay lazy,
 * reading their values computes nothing more; see xcs_lazy_concretize_batch. */
static PyObject *py_concretize_batch(PyObject *m, PyObject *seq) {
    (void)m;
    PyObject *reqs = PySequence_Fast(seq, "_concretize_batch: expected a sequence of requests");
    if (!reqs) return NULL;
    Py_ssize_t K = PySequence_Fast_GET_SIZE(reqs);
    PyObject **fast = PyMem_Calloc((size_t)K + 1, sizeof *fast);
    xcs_graph **gs = PyMem_Calloc((size_t)K + 1, sizeof *gs);
    xcs_tensor ***ts = PyMem_Calloc((size_t)K + 1, sizeof *ts);
    int *n = PyMem_Calloc((size_t)K + 1, sizeof *n);
    PyObject *res = NULL;
    int dev = -1, used = 0, n_batched = 0;
    if (!fast || !gs || !ts || !n) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < K; k++) {
        fast[k] = PySequence_Fast(PySequence_Fast_GET_ITEM(reqs, k), "_concretize_batch: a request is a sequence");
        if (!fast[k]) goto done;
        ts[k] = PyMem_Malloc(((size_t)PySequence_Fast_GET_SIZE(fast[k]) + 1) * sizeof *ts[k]);
        if (!ts[k]) {
            PyErr_NoMemory();
            goto done;
        }
        bool several;
        XcsGraph *o = lazy_values(fast[k], ts[k], &n[k], &several);
        if (several) {
            PyErr_SetString(PyExc_ValueError, "_concretize_batch: a request's arrays come from several lazy graphs");
            goto done;
        }
        if (!o) { /* nothing lazy in this one */
            PyMem_Free(ts[k]);
            ts[k] = NULL;
            continue;
        }
        if (used && o->device != dev) {
            PyErr_SetString(PyExc_ValueError, "_concretize_batch: the requests are on different devices");
            goto done;
        }
        dev = o->device;
        gs[used] = o->g;
        ts[used] = ts[k];
        n[used] = n[k];
        if (used != k) ts[k] = NULL;
        used++;
    }
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_lazy_concretize_batch(used, gs, n, (xcs_tensor *const *const *)ts,
                                   dev >= 0 ? XCS_DEVICE_CUDA : XCS_DEVICE_CPU, dev >= 0 ? dev : 0, &n_batched);
    Py_END_ALLOW_THREADS
    res = st ? xcs_py_raise(st) : PyLong_FromLong(n_batched);
done:
    for (Py_ssize_t k = 0; fast && k < K; k++) Py_XDECREF(fast[k]);
    for (Py_ssize_t k = 0; ts && k < K; k++) PyMem_Free(ts[k]);
    PyMem_Free(fast);
    PyMem_Free(gs);
    PyMem_Free(ts);
    PyMem_Free(n);
    Py_DECREF(reqs);
    return res;
}

static PyObject *g_output(PyObject *o, PyObject *x) {
    XcsGraph *self = (XcsGraph *)o;
    if (refuse_sealed(self, "output")) return NULL;
    xcs_py_arg a;
    if (xcs_py_arg_from(x, "Graph.output", &a)) return NULL;
    xcs_status st = xcs_graph_output(self->g, a.t);
    xcs_py_arg_drop(&a);
    if (st) return xcs_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *g_seal(PyObject *o, PyObject *unused) {
    ((XcsGraph *)o)->sealed = true;
    Py_RETURN_NONE;
}

static PyObject *g_optimize(PyObject *o, PyObject *unused) {
    XcsGraph *self = (XcsGraph *)o;
    self->sealed = true; /* node ids change: live tracers would point at the wrong nodes */
    xcs_status st = xcs_graph_optimize(self->g);
    if (st) return xcs_py_raise(st);
    Py_RETURN_NONE;
}

static PyObject *g_dump(PyObject *o, PyObject *unused) {
    XcsGraph *self = (XcsGraph *)o;
    size_t need = xcs_graph_dump(self->g, NULL, 0);
    char *buf = PyMem_Malloc(need + 1);
    if (!buf) return PyErr_NoMemory();
    xcs_graph_dump(self->g, buf, need + 1);
    PyObject *r = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)strnlen(buf, need + 1), "replace");
    PyMem_Free(buf);
    return r;
}

static PyObject *g_hash(PyObject *o, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(xcs_graph_hash(((XcsGraph *)o)->g));
}

/* run(inputs) -> list[Array].  Inputs are converted like op operands
 * (Python scalars stay weak 0-d tensors); xcs_graph_run only reads the
 * graph, so many threads may run one Graph at once with the GIL released. */
/* A scan request (Graph.scan); NULL in run_inputs: a plain run. */
typedef struct scan_req {
    int n_carry;
    long long length;
    bool reverse;
} scan_req;

static PyObject *run_inputs(XcsGraph *self, PyObject *seq, const scan_req *scan, int device) {
    const char *what = scan ? "Graph.scan" : "Graph.run";
    PyObject *fast = PySequence_Fast(seq, "Graph.run / Graph.scan expect a list of inputs");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int n_in = xcs_graph_num_inputs(self->g), n_out = xcs_graph_num_outputs(self->g);
    if (n != n_in) {
        Py_DECREF(fast);
        return xcs_py_errorf(XCS_ERR_VALUE, "%s: the graph takes %d inputs, got %zd", what, n_in, n);
    }
    self->sealed = true;
    xcs_py_arg *args = PyMem_Calloc((size_t)n + 1, sizeof *args);
    const xcs_tensor **ins = PyMem_Calloc((size_t)n + 1, sizeof *ins);
    xcs_tensor **outs = PyMem_Calloc((size_t)n_out + 1, sizeof *outs);
    PyObject *result = NULL;
    Py_ssize_t made = 0;
    if (!args || !ins || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    for (; made < n; made++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, made);
        const xcs_tensor *d = XcsArray_Check(item) ? ((XcsArray *)item)->dev : NULL;
        if (device >= 0 && d && d->storage->device_index == device) { /* already there */
            ins[made] = d;
            continue;
        }
        if (xcs_py_arg_from(item, "jit call", &args[made])) goto done;
        if (args[made].t->graph) {
            xcs_py_errorf(XCS_ERR_VALUE, "%s: input %zd is traced; it takes concrete arrays", what, made);
            made++;
            goto done;
        }
        ins[made] = args[made].t;
    }
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    xcs_device sdev = device >= 0 ? XCS_DEVICE_CUDA : XCS_DEVICE_CPU;
    if (scan && self->scan && scan->n_carry == self->scan_carry)
        st = xcs_scan_program_run_on(self->scan, (int64_t)scan->length, scan->reverse, (int)n, ins, outs, sdev,
                                     device >= 0 ? device : 0);
    else if (scan)
        st = xcs_graph_scan_on(self->g, scan->n_carry, (int64_t)scan->length, scan->reverse, (int)n, ins, outs, sdev,
                               device >= 0 ? device : 0);
    else if (device >= 0)
        st = xcs_graph_run_on(self->g, XCS_DEVICE_CUDA, device, (int)n, ins, outs);
    else
        st = xcs_graph_run(self->g, (int)n, ins, outs);
    Py_END_ALLOW_THREADS
    if (st) {
        xcs_py_raise(st);
        goto done;
    }
    result = PyList_New(n_out);
    for (int i = 0; i < n_out; i++) {
        PyObject *w = xcs_py_wrap_device(outs[i]); /* steals (a host tensor is wrapped as is) */
        outs[i] = NULL;
        if (!w || !result) {
            Py_XDECREF(w);
            Py_CLEAR(result);
            continue;
        }
        PyList_SET_ITEM(result, i, w);
    }
done:
    for (Py_ssize_t i = 0; args && i < made; i++) xcs_py_arg_drop(&args[i]);
    for (int i = 0; outs && i < n_out; i++) xcs_tensor_free(outs[i]);
    PyMem_Free(args);
    PyMem_Free(ins);
    PyMem_Free(outs);
    Py_DECREF(fast);
    return result;
}

#ifdef XCS_HAVE_CUDA_CODEGEN
#include "codegen.h"
#include "nvrtc.h"
#endif

/* cuda_sources() -> [{group, matmul, source}]: each fused group of the plan
 * lowered to CUDA C (the strided variant), as the CUDA backend compiles it. */
static PyObject *g_cuda_sources(PyObject *o, PyObject *unused) {
    XcsGraph *self = (XcsGraph *)o;
#ifdef XCS_HAVE_CUDA_CODEGEN
    PyObject *out = PyList_New(0);
    for (int k = 0; out && k < xcs_graph_num_groups(self->g); k++) {
        xcs_cuda_spec spec;
        memset(&spec, 0, sizeof spec);
        bool mm = false;
        spec.p = xcs_graph_group(self->g, k, spec.in_dtype, spec.out_dtype, &mm);
        char *src = spec.p ? xcs_cuda_codegen_alloc(&spec) : NULL;
        if (!src) {
            Py_DECREF(out);
            return xcs_py_raise(xcs_last_status());
        }
        PyObject *d = Py_BuildValue("{sisOss}", "group", k, "matmul", mm ? Py_True : Py_False, "source", src);
        free(src);
        if (!d || PyList_Append(out, d)) Py_CLEAR(out);
        Py_XDECREF(d);
    }
    return out;
#else
    (void)self;
    return xcs_py_errorf(XCS_ERR_UNSUPPORTED, "this build has no CUDA code generator (built with XCS_CUDA=OFF)");
#endif
}

static PyObject *g_run(PyObject *o, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"inputs", "device", NULL};
    PyObject *seq, *dev = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:run", kwlist, &seq, &dev)) return NULL;
    int device = xcs_py_device_arg(dev, "Graph.run: device");
    if (device == -2) return NULL;
    return run_inputs((XcsGraph *)o, seq, NULL, device);
}

/* scan(n_carry, length, reverse, inputs, device=None) -> list[Array]: this
 * graph as the body of a loop program (xcs_graph_scan), on `device` ("cuda:N":
 * every step there, the outputs left there). */
static PyObject *g_scan(PyObject *o, PyObject *args) {
    scan_req req;
    int reverse;
    PyObject *seq, *dev = Py_None;
    if (!PyArg_ParseTuple(args, "iLpO|O:scan", &req.n_carry, &req.length, &reverse, &seq, &dev)) return NULL;
    req.reverse = reverse;
    int device = xcs_py_device_arg(dev, "Graph.scan: device");
    if (device == -2) return NULL;
    return run_inputs((XcsGraph *)o, seq, &req, device);
}

/* scan_compile(n_carry) -> hoisted: this traced (not yet optimised) graph
 * compiled as a scan body (xcs_scan_program_new), used by scan(). */
static PyObject *g_scan_compile(PyObject *o, PyObject *arg) {
    XcsGraph *self = (XcsGraph *)o;
    int n_carry = PyLong_AsLong(arg);
    if (n_carry == -1 && PyErr_Occurred()) return NULL;
    xcs_scan_program *sp = NULL;
    xcs_status st = xcs_scan_program_new(self->g, n_carry, 0, &sp);
    if (st) return xcs_py_raise(st);
    xcs_scan_program_free(self->scan);
    self->scan = sp;
    self->scan_carry = n_carry;
    return PyLong_FromLong(xcs_scan_program_hoisted(sp));
}

/* scan_trace(n_carry, n_x, length, reverse, inputs) -> list[Array]: this
 * traced body's loop recorded as one op of the enclosing trace
 * (xcs_scan_trace): inputs are [carries, xs], the values the body captured
 * from its parent read whole at every step; the outputs are [carries,
 * stacked ys], traced (or concrete when nothing was). */
static PyObject *g_scan_trace(PyObject *o, PyObject *args) {
    XcsGraph *self = (XcsGraph *)o;
    int n_carry, n_x, reverse;
    long long length;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "iiLpO:scan_trace", &n_carry, &n_x, &length, &reverse, &seq)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "Graph.scan_trace: inputs must be a sequence");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int n_out = xcs_graph_num_outputs(self->g);
    self->sealed = true;
    xcs_py_arg *a = PyMem_Calloc((size_t)n + 1, sizeof *a);
    const xcs_tensor **ins = PyMem_Calloc((size_t)n + 1, sizeof *ins);
    xcs_tensor **outs = PyMem_Calloc((size_t)n_out + 1, sizeof *outs);
    PyObject *result = NULL;
    Py_ssize_t made = 0;
    if (!a || !ins || !outs) PyErr_NoMemory();
    for (; a && ins && outs && made < n; made++) {
        if (xcs_py_arg_from(PySequence_Fast_GET_ITEM(fast, made), "scan", &a[made])) break;
        ins[made] = a[made].t;
    }
    if (made == n && a && ins && outs) {
        xcs_status st = xcs_scan_trace(self->g, n_carry, n_x, (int64_t)length, reverse, (int)n, ins, outs);
        result = st ? xcs_py_raise(st) : PyList_New(n_out);
        for (int i = 0; result && !st && i < n_out; i++) {
            PyObject *w = outs[i]->graph ? xcs_py_wrap(outs[i]) : xcs_py_wrap_device(outs[i]); /* steals */
            outs[i] = NULL;
            if (!w) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, w);
        }
    }
    for (Py_ssize_t i = 0; a && i < made; i++) xcs_py_arg_drop(&a[i]);
    for (int i = 0; outs && i < n_out; i++) xcs_tensor_free(outs[i]);
    PyMem_Free(a);
    PyMem_Free(ins);
    PyMem_Free(outs);
    Py_DECREF(fast);
    return result;
}

/* batch(inputs, batched, B, axis_id=0) -> (outputs, out_batched): vmap's
 * batching rules (xcs_graph_batch_on) on this per-example graph, for the
 * map numbered axis_id. */
static PyObject *g_batch(PyObject *o, PyObject *args) {
    XcsGraph *self = (XcsGraph *)o;
    PyObject *seq, *flags;
    long long B;
    int axis_id = 0;
    if (!PyArg_ParseTuple(args, "OOL|i:batch", &seq, &flags, &B, &axis_id)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "Graph.batch: inputs must be a sequence");
    if (!fast) return NULL;
    PyObject *ffast = PySequence_Fast(flags, "Graph.batch: batched must be a sequence of bools");
    if (!ffast) {
        Py_DECREF(fast);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int n_out = xcs_graph_num_outputs(self->g);
    PyObject *result = NULL;
    xcs_py_arg *a = PyMem_Calloc((size_t)n + 1, sizeof *a);
    const xcs_tensor **ins = PyMem_Calloc((size_t)n + 1, sizeof *ins);
    bool *bf = PyMem_Calloc((size_t)n + 1, sizeof *bf), *ob = PyMem_Calloc((size_t)n_out + 1, sizeof *ob);
    xcs_tensor **outs = PyMem_Calloc((size_t)n_out + 1, sizeof *outs);
    Py_ssize_t made = 0;
    if (!a || !ins || !bf || !ob || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    if (PySequence_Fast_GET_SIZE(ffast) != n) {
        xcs_py_errorf(XCS_ERR_VALUE, "Graph.batch: %zd inputs but %zd flags", n, PySequence_Fast_GET_SIZE(ffast));
        goto done;
    }
    self->sealed = true;
    for (; made < n; made++) {
        if (xcs_py_arg_from(PySequence_Fast_GET_ITEM(fast, made), "vmap", &a[made])) goto done;
        ins[made] = a[made].t;
        int t = PyObject_IsTrue(PySequence_Fast_GET_ITEM(ffast, made));
        if (t < 0) {
            made++;
            goto done;
        }
        bf[made] = t;
    }
    xcs_status st = xcs_graph_batch_on(self->g, (int)n, ins, bf, (int64_t)B, axis_id, outs, ob);
    if (st) {
        xcs_py_raise(st);
        goto done;
    }
    PyObject *lo = PyList_New(n_out), *lf = PyList_New(n_out);
    for (int i = 0; lo && lf && i < n_out; i++) {
        PyObject *w = xcs_py_wrap(outs[i]);
        outs[i] = NULL;
        if (!w) {
            Py_CLEAR(lo);
            break;
        }
        PyList_SET_ITEM(lo, i, w);
        PyList_SET_ITEM(lf, i, PyBool_FromLong(ob[i]));
    }
    if (lo && lf) result = PyTuple_Pack(2, lo, lf);
    Py_XDECREF(lo);
    Py_XDECREF(lf);
done:
    for (Py_ssize_t i = 0; a && i < made; i++) xcs_py_arg_drop(&a[i]);
    for (int i = 0; outs && i < n_out; i++) xcs_tensor_free(outs[i]);
    PyMem_Free(a);
    PyMem_Free(ins);
    PyMem_Free(bf);
    PyMem_Free(ob);
    PyMem_Free(outs);
    Py_DECREF(fast);
    Py_DECREF(ffast);
    return result;
}

/* nodes() -> list of dicts {id, op, inputs, dtype, shape, group, matmul, stored}. */
static PyObject *g_nodes(PyObject *o, PyObject *unused) {
    const xcs_graph *g = ((XcsGraph *)o)->g;
    int n = xcs_graph_num_nodes(g);
    PyObject *list = PyList_New(n);
    for (int i = 0; list && i < n; i++) {
        xcs_node_info info;
        int32_t small[16];
        int n_in = xcs_graph_node_get(g, i, &info, small, 16);
        int32_t *ins = small;
        if (n_in > 16) {
            if (!(ins = PyMem_Malloc((size_t)n_in * sizeof *ins))) {
                Py_CLEAR(list);
                PyErr_NoMemory();
                break;
            }
            xcs_graph_node_get(g, i, &info, ins, n_in);
        }
        PyObject *inputs = PyTuple_New(n_in < 0 ? 0 : n_in), *shape = PyTuple_New(info.ndim);
        for (int k = 0; inputs && k < n_in; k++) PyTuple_SET_ITEM(inputs, k, PyLong_FromLong(ins[k]));
        for (int d = 0; shape && d < info.ndim; d++) PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong(info.shape[d]));
        if (ins != small) PyMem_Free(ins);
        PyObject *item = inputs && shape
                             ? Py_BuildValue("{s:i,s:s,s:N,s:s,s:N,s:i,s:O,s:O}", "id", i, "op", info.op, "inputs", inputs,
                                             "dtype", xcs_dtype_name(info.dtype), "shape", shape, "group", info.group,
                                             "matmul", info.matmul_head ? Py_True : Py_False, "stored",
                                             info.stored ? Py_True : Py_False)
                             : NULL;
        if (!item) {
            if (!inputs || !shape) {
                Py_XDECREF(inputs);
                Py_XDECREF(shape);
            }
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *get_num_nodes(PyObject *o, void *c) { return PyLong_FromLong(xcs_graph_num_nodes(((XcsGraph *)o)->g)); }
static PyObject *get_num_inputs(PyObject *o, void *c) { return PyLong_FromLong(xcs_graph_num_inputs(((XcsGraph *)o)->g)); }
static PyObject *get_num_outputs(PyObject *o, void *c) { return PyLong_FromLong(xcs_graph_num_outputs(((XcsGraph *)o)->g)); }
static PyObject *get_num_groups(PyObject *o, void *c) { return PyLong_FromLong(xcs_graph_num_groups(((XcsGraph *)o)->g)); }
static PyObject *get_num_steps(PyObject *o, void *c) { return PyLong_FromLong(xcs_graph_num_steps(((XcsGraph *)o)->g)); }
static PyObject *get_memory(PyObject *o, void *c) {
    xcs_graph_memory m;
    xcs_graph_memory_get(((XcsGraph *)o)->g, &m);
    return Py_BuildValue("{s:i,s:L,s:L}", "buffers", m.buffers, "arena_bytes", (long long)m.arena_bytes,
                         "planned_bytes", (long long)m.planned_bytes);
}
static PyObject *get_sealed(PyObject *o, void *c) { return PyBool_FromLong(((XcsGraph *)o)->sealed); }
static PyObject *get_lazy(PyObject *o, void *c) { return PyBool_FromLong(((XcsGraph *)o)->lazy); }
static PyObject *get_nested(PyObject *o, void *c) { return PyBool_FromLong(((XcsGraph *)o)->parent != NULL); }

static PyGetSetDef graph_getset[] = {
    {"num_nodes", get_num_nodes, NULL, "Number of nodes (inputs and constants included).", NULL},
    {"num_inputs", get_num_inputs, NULL, "Number of inputs.", NULL},
    {"num_outputs", get_num_outputs, NULL, "Number of outputs.", NULL},
    {"num_groups", get_num_groups, NULL, "Fused groups in the plan built by optimize() (0 before).", NULL},
    {"num_steps", get_num_steps, NULL, "Kernel launches per run (fused groups + unfused op nodes); 0 before optimize().", NULL},
    {"memory", get_memory, NULL,
     "Memory plan of optimize(): {'buffers': intermediates in the per-run arena, 'arena_bytes': its size, "
     "'planned_bytes': their total size without reuse}.", NULL},
    {"lazy", get_lazy, NULL, "True for Graph(lazy=True): values are computed when read.", NULL},
    {"nested", get_nested, NULL, "True for Graph(parent=...): traced inside another trace.", NULL},
    {"sealed", get_sealed, NULL, "True once optimized, run or sealed: the graph no longer grows.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef graph_methods[] = {
    {"input", (PyCFunction)(void (*)(void))g_input, METH_VARARGS | METH_KEYWORDS,
     "input(dtype, shape, weak=False) -> traced Array standing for the next argument (weak: a Python scalar)."},
    {"output", g_output, METH_O, "output(x): appends x (traced, or concrete: a constant) to the outputs."},
    {"constant", g_constant, METH_O, "constant(x) -> a traced Array standing for concrete x (a constant node)."},
    {"seal", g_seal, METH_NOARGS, "seal(): the trace is over; its traced arrays can no longer be used."},
    {"optimize", g_optimize, METH_NOARGS, "optimize(): algebraic no-ops, CSE, dead code, then the fusion plan (seals)."},
    {"run", (PyCFunction)(void (*)(void))g_run, METH_VARARGS | METH_KEYWORDS,
     "run(inputs, device=None) -> list of Arrays (seals; thread-safe, runs without the GIL).  device 'cuda:N' "
     "runs it there: the outputs are Arrays on that device, each with its host copy."},
    {"cuda_sources", g_cuda_sources, METH_NOARGS,
     "cuda_sources() -> list of {group, matmul, source}: each fused group of the plan (after optimize()) as the "
     "CUDA C the CUDA backend compiles with NVRTC."},
    {"scan_compile", g_scan_compile, METH_O,
     "scan_compile(n_carry) -> hoisted: compiles this traced graph (before optimize) as a scan body whose "
     "carry-free part runs for all steps at once before the loop; scan() then uses it."},
    {"scan", g_scan, METH_VARARGS,
     "scan(n_carry, length, reverse, inputs, device=None) -> final carry + stacked ys: this graph (optimised) as "
     "the body "
     "f(carry..., x...) -> (carry..., y...) of a loop run in C; inputs are the carry leaves, then the xs leaves "
     "([length, ...])."},
    {"scan_trace", g_scan_trace, METH_VARARGS,
     "scan_trace(n_carry, n_x, length, reverse, inputs) -> list[Array]: this traced body's loop recorded as one op "
     "of the enclosing trace (values it captured are read whole at every step): [carries, stacked ys]."},
    {"dump", g_dump, METH_NOARGS, "dump() -> str: the node listing."},
    {"batch", g_batch, METH_VARARGS,
     "batch(inputs, batched, B) -> (outputs, out_batched): this per-example graph replayed on a batch of B "
     "(batched inputs have a leading B axis; the others are shared) by vmap's batching rules."},
    {"nodes", g_nodes, METH_NOARGS,
     "nodes() -> list of {id, op, inputs, dtype, shape, group, matmul, stored}: the graph's nodes in order "
     "(group: fused group after optimize(), -1 for none)."},
    {"hash", g_hash, METH_NOARGS, "hash() -> int: structural hash."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject XcsGraph_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ember.xcs._xcs.Graph",
    .tp_doc = "A traced program (xcs_graph): Graph(), input(), ops on the traced Arrays, output(), "
              "optimize(), run().  Used by ember.xcs.jit.",
    .tp_basicsize = sizeof(XcsGraph),
    .tp_dealloc = graph_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_weaklistoffset = offsetof(XcsGraph, weakreflist),
    .tp_methods = graph_methods,
    .tp_getset = graph_getset,
    .tp_new = graph_new,
};

/* ---------------------------------------------------------------- functions */

static PyObject *py_is_traced(PyObject *m, PyObject *x) {
    return PyBool_FromLong(XcsArray_Check(x) && XCS_T(x)->graph != NULL);
}

/* A traced Array standing for a Python number (weak, NEP 50); concrete
 * Arrays never are (the flag is dropped when they are wrapped). */
static PyObject *py_is_weak(PyObject *m, PyObject *x) {
    return PyBool_FromLong(XcsArray_Check(x) && (XCS_T(x)->flags & XCS_TENSOR_WEAK));
}

/* _signature(args) -> tuple of (shape, dtype name, False) per argument, the
 * cache-key part jit builds for arrays, or None when an argument is not a
 * concrete Array or a numpy array of an xcs dtype (jit's general path then
 * decides).  One C call instead of a Python loop on every jitted call. */
static PyObject *py_signature(PyObject *m, PyObject *args) {
    if (!PyTuple_Check(args)) Py_RETURN_NONE;
    xcs_py_state *s = PyModule_GetState(m);
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    PyObject *sigs = PyTuple_New(n);
    if (!sigs) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        xcs_py_arg arg = XCS_PY_ARG_INIT;
        const xcs_tensor *t;
        if (Py_IS_TYPE(a, &XcsArray_Type)) {
            t = XCS_T(a);
        } else if (s && PyObject_TypeCheck(a, (PyTypeObject *)s->np_ndarray)) {
            if (xcs_py_arg_from(a, "jit call", &arg)) {
                PyErr_Clear();
                Py_DECREF(sigs);
                Py_RETURN_NONE;
            }
            t = arg.t;
        } else {
            Py_DECREF(sigs);
            Py_RETURN_NONE;
        }
        PyObject *shape = t->graph ? NULL : PyTuple_New(t->ndim);
        for (int d = 0; shape && d < t->ndim; d++) {
            PyObject *v = PyLong_FromLongLong((long long)t->shape[d]);
            if (!v) Py_CLEAR(shape);
            else PyTuple_SET_ITEM(shape, d, v);
        }
        PyObject *sig = shape ? Py_BuildValue("(NsO)", shape, xcs_dtype_name(t->dtype), Py_False) : NULL;
        bool traced = t->graph != NULL;
        xcs_py_arg_drop(&arg);
        if (!sig) {
            Py_DECREF(sigs);
            if (traced) Py_RETURN_NONE; /* inside an outer trace: jit inlines */
            return NULL;
        }
        PyTuple_SET_ITEM(sigs, i, sig);
    }
    return sigs;
}

/* _vjp(y, wrt, seed=None) -> list of traced Arrays: reverse-mode AD on the
 * graph y belongs to (xcs_graph_vjp). */
static PyObject *py_vjp(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *y, *wrt, *seed = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O:_vjp", &y, &wrt, &seed)) return NULL;
    if (!XcsArray_Check(y) || !XCS_T(y)->graph)
        return xcs_py_errorf(XCS_ERR_VALUE, "grad: the function's output is not computed from its arguments");
    xcs_graph *g = XCS_T(y)->graph;
    XcsGraph *owner = xcs_py_graph_owner(g);
    if (!owner || owner->sealed) return xcs_py_errorf(XCS_ERR_VALUE, "grad: the trace is over");
    PyObject *fast = PySequence_Fast(wrt, "_vjp: wrt must be a sequence of traced Arrays");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    const xcs_tensor **ws = PyMem_Calloc((size_t)n + 1, sizeof *ws);
    xcs_tensor **gs = PyMem_Calloc((size_t)n + 1, sizeof *gs);
    PyObject *out = NULL;
    xcs_py_arg sd = XCS_PY_ARG_INIT;
    if (!ws || !gs) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *w = PySequence_Fast_GET_ITEM(fast, k);
        if (!XcsArray_Check(w) || XCS_T(w)->graph != g) {
            xcs_py_errorf(XCS_ERR_VALUE, "grad: argument %zd is not a traced array of this trace", k);
            goto done;
        }
        ws[k] = XCS_T(w);
    }
    if (seed != Py_None && xcs_py_arg_from(seed, "grad seed", &sd)) goto done;
    xcs_status st = xcs_graph_vjp(g, XCS_T(y), seed != Py_None ? sd.t : NULL, (int)n, ws, gs);
    if (st) {
        xcs_py_raise(st);
        goto done;
    }
    out = PyList_New(n);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *w = xcs_py_wrap(gs[k]); /* steals */
        gs[k] = NULL;
        if (!w || !out) {
            Py_XDECREF(w);
            Py_CLEAR(out);
            continue;
        }
        PyList_SET_ITEM(out, k, w);
    }
done:
    xcs_py_arg_drop(&sd);
    for (Py_ssize_t k = 0; gs && k < n; k++) xcs_tensor_free(gs[k]);
    PyMem_Free(ws);
    PyMem_Free(gs);
    Py_DECREF(fast);
    return out;
}

/* _collective(name, x, axis_size, axis_id=0) -> a traced collective node
 * (psum, pmax, all_gather, axis_index) over the map numbered axis_id. */
static PyObject *py_collective(PyObject *m, PyObject *args) {
    (void)m;
    const char *name;
    PyObject *x;
    long long size;
    int axis_id = 0;
    if (!PyArg_ParseTuple(args, "sOL|i:_collective", &name, &x, &size, &axis_id)) return NULL;
    xcs_op op = strcmp(name, "psum") == 0 ? XCS_OP_PSUM : strcmp(name, "pmax") == 0 ? XCS_OP_PMAX
              : strcmp(name, "all_gather") == 0 ? XCS_OP_ALL_GATHER
              : strcmp(name, "axis_index") == 0 ? XCS_OP_AXIS_INDEX : XCS_OP_COUNT;
    if (op == XCS_OP_COUNT) return xcs_py_errorf(XCS_ERR_VALUE, "unknown collective %s", name);
    xcs_py_arg a;
    if (xcs_py_arg_from(x, name, &a)) return NULL;
    xcs_tensor *t = NULL;
    xcs_status st = xcs_collective_on(op, a.t, (int64_t)size, axis_id, &t);
    xcs_py_arg_drop(&a);
    if (st) return xcs_py_raise(st);
    return xcs_py_wrap(t);
}

/* _nvrtc_compile(source, cc=90, cubin=False) -> {"bytes", "cubin", "nvrtc_version"}. */
static PyObject *py_nvrtc_compile(PyObject *m, PyObject *args) {
    (void)m;
    const char *src;
    int cc = 90, cubin = 0;
    if (!PyArg_ParseTuple(args, "s|ip:_nvrtc_compile", &src, &cc, &cubin)) return NULL;
#ifdef XCS_HAVE_CUDA_CODEGEN
    xcs_nvrtc *nv = NULL;
    char *img = NULL;
    size_t size = 0;
    bool is_cubin = false;
    xcs_status st;
    Py_BEGIN_ALLOW_THREADS
    st = xcs_nvrtc_open(&nv);
    if (!st) st = xcs_nvrtc_compile(nv, src, "xcs_kernel.cu", cc, cubin, &img, &size, &is_cubin);
    Py_END_ALLOW_THREADS
    int version = xcs_nvrtc_version(nv);
    xcs_nvrtc_close(nv);
    free(img);
    if (st) return xcs_py_raise(st);
    return Py_BuildValue("{snsOsi}", "bytes", (Py_ssize_t)size, "cubin", is_cubin ? Py_True : Py_False,
                         "nvrtc_version", version);
#else
    (void)src;
    return xcs_py_errorf(XCS_ERR_UNSUPPORTED, "this build has no NVRTC loader (built with XCS_CUDA=OFF)");
#endif
}

static PyObject *py_tracer_error(PyObject *m, PyObject *args) {
    PyObject *x;
    const char *what;
    if (!PyArg_ParseTuple(args, "Os:_tracer_error", &x, &what)) return NULL;
    if (!XcsArray_Check(x)) Py_RETURN_NONE;
    if (xcs_py_concrete(XCS_T(x), what)) return NULL;
    Py_RETURN_NONE;
}

PyMethodDef xcs_py_graph_methods[] = {
    {"_is_traced", py_is_traced, METH_O, "_is_traced(x) -> True when x is an Array standing for a traced value."},
    {"_is_weak", py_is_weak, METH_O, "_is_weak(x) -> True when x is a traced Array standing for a Python number."},
    {"_collective", py_collective, METH_VARARGS,
     "_collective(name, x, axis_size, axis_id=0) -> traced psum/pmax/all_gather/axis_index of x over the mapped "
     "axis of map axis_id."},
    {"_vjp", py_vjp, METH_VARARGS,
     "_vjp(y, wrt, seed=None) -> traced gradients of y (a traced value) with respect to each traced argument "
     "in wrt (reverse-mode AD on the trace)."},
    {"_concretize", py_concretize, METH_O,
     "_concretize(x) -> x: a traced Array of a lazy Graph is computed in place; other values pass through."},
    {"_lazy_value", py_lazy_value, METH_O,
     "_lazy_value(x) -> a concrete Array of the value of x, a traced Array of a lazy Graph, which stays lazy "
     "(later ops on it are still recorded); other values pass through."},
    {"_lazy_key", py_lazy_key, METH_O,
     "_lazy_key(arrays) -> (key, ops, constant bytes) or None: fingerprint of the program computing the lazy "
     "Arrays in the sequence (ops, shapes, dtypes; not the constants' values) and its size; None when nothing is "
     "pending or they span graphs."},
    {"_concretize_batch", py_concretize_batch, METH_O,
     "_concretize_batch(requests) -> int: computes each request's lazy Arrays in place, the requests whose "
     "programs are the same as one batched program (returns how many ran batched)."},
    {"_signature", py_signature, METH_O,
     "_signature(args) -> tuple of (shape, dtype name, False) per array in the tuple args, or None when one is "
     "not a concrete Array / numpy array of an xcs dtype."},
    {"_nvrtc_compile", py_nvrtc_compile, METH_VARARGS,
     "_nvrtc_compile(source, cc=90, cubin=False) -> {bytes, cubin, nvrtc_version}: compiles CUDA C with NVRTC "
     "(no GPU needed); a compile error raises XCSError with NVRTC's log."},
    {"_check_concrete", py_tracer_error, METH_VARARGS,
     "_check_concrete(x, what): raises XCSTracerError when x is traced (what: how the value is used)."},
    {NULL, NULL, 0, NULL},
};
