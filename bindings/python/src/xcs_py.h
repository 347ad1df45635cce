/* xcs_py.h — internal header of the CPython extension ember.xcs._xcs.
 *
 * The binding is the top layer (DESIGN.md §3): it includes Python.h and the
 * core/host headers, never the other way round.  It does not compile against
 * numpy's C API; numpy is reached through Python calls and the buffer
 * protocol, so one build works with every numpy >= 2.0.
 *
 * Files, one responsibility each:
 *   module.c   module init, exception hierarchy, module state, devices/build_info
 *   args.c     parsing of axis / shape / dtype / int arguments
 *   convert.c  any Python object -> xcs_tensor (zero-copy where possible)
 *   array.c    the Array type: lifetime, attributes, methods
 *   number.c   operators (nb_*), rich comparison
 *   buffer.c   buffer protocol export (np.asarray(Array) is zero-copy)
 *   dlpack.c   __dlpack__ / __dlpack_device__ / from_dlpack
 *   index.c    __getitem__ / __setitem__
 *   ops.c      module-level op functions used by the Python package
 *   ops_make.c shape/movement, conversion and creation functions
 *   random.c   ember.xcs.random: keys, split, uniform, normal
 *   graph.c    the Graph type (traced programs for ember.xcs.jit), the
 *              owner registry of traced Arrays and the tracer guards
 *
 * Ownership conventions follow xcs.h: "steals" means the callee takes the
 * caller's reference/ownership even on failure. */
#ifndef XCS_PY_H
#define XCS_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>

#include "xcs.h"
#include "xcs_host.h"

/* C calls whose output (or largest input) has at least this many elements run
 * with the GIL released: below it the release/re-acquire costs more than it
 * frees (same threshold as the CPU backend's OpenMP cut-off). */
#define XCS_PY_NOGIL_MIN 32768

#ifndef XCS_VERSION_STR /* set by CMake from the project version */
#define XCS_VERSION_STR "0.0.0"
#endif

/* ---------------------------------------------------------------- module state
 * Reached from anywhere through xcs_py_state_get() (PyState_FindModule on the
 * module definition): slots such as nb_add receive no module argument, and
 * PyType_GetModuleByDef needs Python 3.11 while we support 3.10. */
typedef struct xcs_py_state {
    PyObject *XCSError;
    PyObject *XCSShapeError;
    PyObject *XCSValueError;
    PyObject *XCSTypeError;
    PyObject *XCSIndexError;
    PyObject *XCSZeroDivisionError;
    PyObject *XCSMemoryError;
    PyObject *XCSTracerError;           /* (XCSError, TypeError): a traced value read as data */
    PyObject *XCSLinAlgError;           /* (XCSValueError, numpy.linalg.LinAlgError) */
    PyObject *XCSOverflowError;         /* (XCSValueError, OverflowError) */
    PyObject *numpy;                    /* the numpy module */
    PyObject *np_asarray;               /* numpy.asarray */
    PyObject *np_dtype;                 /* numpy.dtype */
    PyObject *np_ndarray;               /* numpy.ndarray */
    PyObject *dtypes[XCS_DTYPE_COUNT];  /* numpy.dtype objects by xcs_dtype */
    PyObject *ufunc_hook;               /* ember.xcs._dispatch.array_ufunc or NULL */
    PyObject *function_hook;            /* ember.xcs._dispatch.array_function or NULL */
} xcs_py_state;

extern struct PyModuleDef xcs_py_module_def;
/* The module state, or NULL with RuntimeError set (only during teardown). */
xcs_py_state *xcs_py_state_get(void);

/* ---------------------------------------------------------------- errors */

/* The exception class for a status (borrowed; never NULL). */
PyObject *xcs_py_exc_class(xcs_status st);
/* Raises the class for `st` with xcs_last_error(); returns NULL. */
PyObject *xcs_py_raise(xcs_status st);
/* Raises the class for `st` with a formatted message; returns NULL. */
PyObject *xcs_py_errorf(xcs_status st, const char *fmt, ...);
/* Replaces the current Python exception by the class for `st` whose message
 * is `prefix: <original message>` and whose __cause__ is the original. */
PyObject *xcs_py_chain(xcs_status st, const char *prefix);

/* ---------------------------------------------------------------- Array */

typedef struct XcsArray {
    PyObject_HEAD
    xcs_tensor *t;          /* owned; never NULL once constructed */
    PyObject *weakreflist;
    PyObject *graph_owner;  /* the Graph owning t->graph (strong), NULL when concrete */
    xcs_tensor *dev;        /* owned: the same values on a CUDA device (a jit output run there, or
                             * device_put), NULL for host arrays.  t is its host copy, made when
                             * first needed (NULL until then): Arrays are immutable, so the two
                             * never differ. */
} XcsArray;

extern PyTypeObject XcsArray_Type;
extern PyTypeObject XcsArrayIter_Type;
extern PyTypeObject XcsRawBytes_Type;
/* A read-only bytes object over the memory of host tensor t (owned by
 * `owner`, kept alive); *offset receives the byte offset of t's first
 * element in it. */
PyObject *xcs_py_raw_bytes(PyObject *owner, const xcs_tensor *t, Py_ssize_t *offset);
/* The numpy dtype of dt (new reference), or NULL with XCSTypeError when
 * numpy cannot name it (bfloat16 without ml_dtypes installed). */
PyObject *xcs_py_np_dtype(xcs_py_state *s, xcs_dtype dt);
#define XcsArray_Check(o) PyObject_TypeCheck((o), &XcsArray_Type)
/* An Array's tensor for its metadata (shape, dtype, graph): the host tensor,
 * or the device tensor of a device Array whose host copy is not made yet.
 * Its values are read through xcs_py_host. */
static inline xcs_tensor *xcs_py_meta(PyObject *o) {
    XcsArray *a = (XcsArray *)o;
    return a->t ? a->t : a->dev;
}
#define XCS_T(o) xcs_py_meta(o)
/* Array o's host tensor, for reading its values: a device Array's host copy
 * is made now (once, without the GIL).  NULL with the error set when that
 * fails.  (Traced values are checked by xcs_py_concrete, not here.) */
xcs_tensor *xcs_py_host(PyObject *o);
/* Array o's tensor where it lives: a device Array's device tensor, else
 * its host one (xcs_py_host).  For ops on it, not for reading values. */
xcs_tensor *xcs_py_placed(PyObject *o);

/* Wraps t in a new Array (steals t, frees it on failure).  Clears the weak
 * flag of concrete tensors: a concrete Array is always a strongly typed
 * value.  A traced tensor keeps it (it stands for a Python-scalar argument
 * of a jitted function, or arithmetic on such ones, so the trace promotes
 * as eager Python-scalar code does) and the Array takes a strong reference
 * to the Graph owning t->graph (see graph.c). */
PyObject *xcs_py_wrap(xcs_tensor *t);
/* Wraps device tensor d (steals it); its host copy is made when first
 * needed (xcs_py_host). */
PyObject *xcs_py_wrap_device(xcs_tensor *d);
/* The CUDA device named by a "cuda:N" string, activated; -1 for "cpu" or
 * None; -2 with the error set. */
int xcs_py_device_arg(PyObject *name, const char *what);

/* ---------------------------------------------------------------- graphs (graph.c) */

typedef struct XcsGraph {
    PyObject_HEAD
    xcs_graph *g;                     /* owned */
    bool sealed;                      /* trace over: never grows again */
    bool lazy;                        /* values are computed when used (xcs_graph_concretize) */
    int device;                       /* lazy: the CUDA device they are computed on, -1: the CPU */
    PyObject *parent;                 /* the enclosing trace's Graph (kept alive), or NULL */
    xcs_scan_program *scan;           /* owned: this graph compiled as a scan body (scan_compile), or NULL */
    int scan_carry;                   /* its carries */
    struct XcsGraph *prev, *next;     /* registry of live graphs (GIL) */
    PyObject *weakreflist;
} XcsGraph;

extern PyTypeObject XcsGraph_Type;
extern PyMethodDef xcs_py_graph_methods[];
extern PyTypeObject XcsTaskGraph_Type;     /* taskgraph.c: the host task graph */
extern PyMethodDef xcs_py_taskgraph_methods[];
/* The live Graph object owning `graph` (borrowed), or NULL. */
XcsGraph *xcs_py_graph_owner(const xcs_graph *graph);
/* 0 when t is concrete; else -1 with XCSTracerError set, naming t's abstract
 * value and `what` (how the value was used, e.g. "as a Python bool"). */
int xcs_py_concrete(const xcs_tensor *t, const char *what);
/* 0 unless the Array arr is a tracer whose trace has ended (-1 with
 * XCSTracerError "a traced array escaped its jit function"). */
/* A traced tensor of a lazy Graph computed in place: 1 done, 0 not lazy
 * (still traced), -1 error (set). */
int xcs_py_lazy_resolve(const xcs_tensor *t);
int xcs_py_check_live(PyObject *arr);
/* "Traced<float32[4,8]>" */
PyObject *xcs_py_traced_repr(const xcs_tensor *t);

extern PyNumberMethods xcs_py_number_methods;
extern PyMappingMethods xcs_py_mapping_methods;
extern PySequenceMethods xcs_py_sequence_methods;
extern PyBufferProcs xcs_py_buffer_procs;
PyObject *xcs_py_richcompare(PyObject *self, PyObject *other, int op);

/* index.c */
PyObject *xcs_py_getitem(PyObject *self, PyObject *key);
int xcs_py_setitem(PyObject *self, PyObject *key, PyObject *value);

/* dlpack.c */
PyObject *xcs_py_dlpack(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *xcs_py_dlpack_device(PyObject *self, PyObject *unused);
PyObject *xcs_py_from_dlpack(PyObject *module, PyObject *obj);

/* buffer.c: the struct-module format character of a dtype. */
const char *xcs_py_format(xcs_dtype dt);

/* ---------------------------------------------------------------- conversion */

/* A converted operand: `t` is borrowed from an Array (owned == false) or
 * owned by the holder (owned == true). */
typedef struct xcs_py_arg {
    xcs_tensor *t;
    bool owned;
} xcs_py_arg;

#define XCS_PY_ARG_INIT {NULL, false}

/* Converts obj for op `op` (named in error messages): Array -> its tensor;
 * Python bool/int/float -> weak 0-d tensor; buffer objects (numpy) ->
 * zero-copy wrap when the layout allows; lists, tuples and other array-likes
 * through numpy.asarray.  Returns 0, or -1 with XCSTypeError (or another
 * error) set.  Release with xcs_py_arg_drop. */
int xcs_py_arg_from(PyObject *obj, const char *op, xcs_py_arg *out);
/* The same for an operand of an eager op, which runs where its operands
 * live: a device Array gives its device tensor (no host copy), and the op
 * brings host operands to it (xcs_colocate), as JAX does. */
int xcs_py_operand(PyObject *obj, const char *op, xcs_py_arg *out);
void xcs_py_arg_drop(xcs_py_arg *a);
/* 0 unless obj is a Python int (not a bool) that dtype dt, an integer dtype,
 * cannot hold: then -1 with XCSOverflowError, as numpy raises OverflowError
 * for np.full(3, 2**40, dtype=np.int32) rather than wrapping. */
int xcs_py_int_fits(PyObject *obj, xcs_dtype dt, const char *op);
/* Same as xcs_py_arg_from but returns an owned tensor (a view for Arrays). */
xcs_tensor *xcs_py_to_tensor(PyObject *obj, const char *op);
/* An ndarray that shares memory with obj's tensor (new reference). */
PyObject *xcs_py_to_numpy(PyObject *obj);

/* ---------------------------------------------------------------- arguments */

/* axis: None -> every axis (ndim bits), int, or a sequence of ints -> bitmask.
 * Errors name the op, the axis and ndim.  *empty is set when a sequence was
 * empty (numpy then reduces nothing), may be NULL. */
int xcs_py_axes(PyObject *axis, int ndim, const char *op, unsigned *mask, bool *empty);
/* A single axis normalised to [0, ndim). */
int xcs_py_axis(PyObject *axis, int ndim, const char *op, int *out);
/* A shape: int or sequence of ints; negative entries rejected unless
 * allow_neg1 (reshape's -1). */
int xcs_py_shape(PyObject *obj, const char *op, bool allow_neg1, int *ndim, int64_t *shape);
/* A dtype: str, numpy dtype, Python type, numpy scalar type.  Returns 0,
 * 1 when obj is None (and *out untouched), or -1 with XCSTypeError set. */
int xcs_py_dtype(PyObject *obj, const char *op, xcs_dtype *out);
/* Parses a Python int into int64 with an error naming `what`. */
int xcs_py_int64(PyObject *obj, const char *what, int64_t *out);
/* a * b clamped to INT64_MAX (sizes only decide whether to drop the GIL;
 * the ops themselves report shapes that overflow). */
static inline int64_t xcs_py_mul_sat(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
static inline int64_t xcs_py_numel_sat(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n = xcs_py_mul_sat(n, shape[i]);
    return n;
}
/* True when obj is Py_None or NULL. */
static inline bool xcs_py_none(PyObject *o) { return o == NULL || o == Py_None; }

/* ---------------------------------------------------------------- ops (shared
 * between the module functions and the Array methods).  All borrow their
 * arguments and return a new reference or NULL. */

PyObject *xcs_py_unary(xcs_op op, PyObject *x);
PyObject *xcs_py_binary(xcs_op op, PyObject *a, PyObject *b);
/* The same on converted operands (borrowed). */
PyObject *xcs_py_binary_t(xcs_op op, const xcs_tensor *a, const xcs_tensor *b);
/* name: sum, prod, max, min, mean, all, any; dtype may be NULL/None. */
PyObject *xcs_py_reduce(const char *name, PyObject *x, PyObject *axis, bool keepdims, PyObject *dtype);
PyObject *xcs_py_argreduce(xcs_op op, PyObject *x, PyObject *axis, bool keepdims);
PyObject *xcs_py_varstd(bool is_std, PyObject *x, PyObject *axis, bool keepdims, int ddof, PyObject *dtype);
PyObject *xcs_py_reshape(PyObject *x, PyObject *shape);
PyObject *xcs_py_transpose(PyObject *x, PyObject *axes);
PyObject *xcs_py_squeeze(PyObject *x, PyObject *axis);
PyObject *xcs_py_cast(PyObject *x, PyObject *dtype);
PyObject *xcs_py_copy(PyObject *x);

/* Runs `expr` (an xcs_status expression) into `st`, with the GIL released when
 * `big` is true.  Inputs must be kept alive by the caller, which they are:
 * every borrowed tensor belongs to an object the caller holds. */
#define XCS_PY_CALL(st, big, expr)                  \
    do {                                            \
        if (big) {                                  \
            Py_BEGIN_ALLOW_THREADS (st) = (expr);   \
            Py_END_ALLOW_THREADS                    \
        } else {                                    \
            (st) = (expr);                          \
        }                                           \
    } while (0)

/* Method tables defined in ops.c / ops_make.c / random.c, joined by module.c. */
extern PyMethodDef xcs_py_ops_methods[];
extern PyMethodDef xcs_py_make_methods[];
extern PyMethodDef xcs_py_random_methods[];

#endif /* XCS_PY_H */
