/* xcs.h — the C API of XCS: tensors, ops, errors, backends.
 *
 * One public header for the core layer (DESIGN.md §3).  It includes no CUDA
 * and no Python header.  Conventions:
 *   - Functions return xcs_status; on failure the calling thread's error slot
 *     holds a message that names the op, the shapes and the fix
 *     (xcs_last_error()).  Nothing aborts on bad input.
 *   - "returns owned" means the caller must free the result (xcs_tensor_free);
 *     "borrows" means the callee neither keeps nor frees the argument.
 *   - Shapes, strides and offsets are counted in elements, not bytes.
 */
#ifndef XCS_H
#define XCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XCS_MAX_DIMS 8

/* ---------------------------------------------------------------- status */

typedef enum xcs_status {
    XCS_OK = 0,
    XCS_ERR_VALUE,       /* bad argument value (axis, size, dtype combination) */
    XCS_ERR_SHAPE,       /* shapes do not agree (broadcast, matmul, concat)    */
    XCS_ERR_TYPE,        /* dtype not supported by the op                      */
    XCS_ERR_INDEX,       /* index out of bounds                                */
    XCS_ERR_MEMORY,      /* allocation failed or size overflows                */
    XCS_ERR_ZERO_DIV,    /* integer division or modulo by zero                 */
    XCS_ERR_UNSUPPORTED, /* valid request this build/backend cannot serve      */
    XCS_ERR_INTERNAL,    /* an invariant broke: a bug in XCS                   */
    XCS_ERR_LINALG,      /* a matrix numpy.linalg refuses: singular, not positive definite */
    XCS_ERR_OVERFLOW,    /* a Python integer outside the integer dtype it takes */
} xcs_status;

/* Records `status` with a printf-style message in the calling thread's error
 * slot and returns `status`, so failing code reads `return xcs_error(...)`. */
xcs_status xcs_error(xcs_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepends "context: " to the current message (e.g. the op name). */
xcs_status xcs_error_context(xcs_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *xcs_last_error(void);      /* message of the last failure */
xcs_status xcs_last_status(void);
void xcs_error_clear(void);
const char *xcs_status_name(xcs_status s);
/* Whether environment variable `name` is "0": a feature on by default,
 * turned off (XCS_CUDA=0, XCS_SCAN_KERNEL=0, XCS_CUDA_ROW_KERNELS=0, ...). */
bool xcs_env_off(const char *name);

/* ---------------------------------------------------------------- dtypes */

typedef enum xcs_dtype {
    XCS_BOOL = 0,
    XCS_I32,
    XCS_I64,
    XCS_F32,
    XCS_F64,
    XCS_F16,  /* IEEE binary16 } storage dtypes: loaded into float32 */
    XCS_BF16, /* bfloat16      } registers, rounded once on store  */
    XCS_DTYPE_COUNT
} xcs_dtype;

/* Bytes per element (0 for an invalid dtype); inline: every data pointer needs it. */
static inline size_t xcs_dtype_size(xcs_dtype dt) {
    return (unsigned)dt < XCS_DTYPE_COUNT ? (size_t)((0x2284841ull >> (4 * (unsigned)dt)) & 0xf) : 0;
}
const char *xcs_dtype_name(xcs_dtype dt); /* numpy names: "float32", ... */
bool xcs_dtype_is_float(xcs_dtype dt);
bool xcs_dtype_is_int(xcs_dtype dt);      /* i32/i64, not bool */
/* The dtype arithmetic on dt runs in: float32 for the 16-bit floats (which
 * are only stored), dt itself otherwise. */
static inline xcs_dtype xcs_dtype_compute(xcs_dtype dt) {
    return dt == XCS_F16 || dt == XCS_BF16 ? XCS_F32 : dt;
}
static inline bool xcs_dtype_is_half(xcs_dtype dt) { return dt == XCS_F16 || dt == XCS_BF16; }
/* Parses a numpy dtype name ("float32", "f4", "int64", "bool", ...). */
xcs_status xcs_dtype_from_name(const char *name, xcs_dtype *out);
/* numpy promotion for two dtypes; a "weak" side is a Python scalar (NEP 50):
 * it takes the other side's dtype unless its kind is higher. */
xcs_dtype xcs_dtype_promote(xcs_dtype a, bool a_weak, xcs_dtype b, bool b_weak);

/* ---------------------------------------------------------------- ops */

typedef enum xcs_op_kind {
    XCS_KIND_UNARY, XCS_KIND_BINARY, XCS_KIND_TERNARY, XCS_KIND_REDUCE,
    XCS_KIND_ARGREDUCE, XCS_KIND_MATMUL, XCS_KIND_CAST, XCS_KIND_COPY,
    XCS_KIND_TAKE, XCS_KIND_CONCAT, XCS_KIND_FILL, XCS_KIND_IOTA,
    XCS_KIND_RANDOM, XCS_KIND_SCATTER, XCS_KIND_COLLECTIVE, XCS_KIND_SCAN,
    XCS_KIND_SORT, XCS_KIND_LINALG, XCS_KIND_CUMULATIVE,
} xcs_op_kind;

typedef enum xcs_type_rule {
    XCS_RULE_SAME, XCS_RULE_FLOAT, XCS_RULE_CMP, XCS_RULE_LOGIC,
    XCS_RULE_INT, XCS_RULE_ACC, XCS_RULE_INDEX, XCS_RULE_NONE, XCS_RULE_NUMERIC, XCS_RULE_BOOLINT,
} xcs_type_rule;

typedef enum xcs_op {
#define XCS_OP(e, name, kind, rule) XCS_OP_##e,
#include "ops.def"
#undef XCS_OP
    XCS_OP_COUNT
} xcs_op;

typedef struct xcs_op_info {
    const char *name;
    xcs_op_kind kind;
    xcs_type_rule rule;
} xcs_op_info;

const xcs_op_info *xcs_op_get_info(xcs_op op);
const char *xcs_op_name(xcs_op op);
/* True when the op's integer kernels report faults (floor_divide, mod and
 * fmod by zero: XCS_EW_ERR_ZERO_DIV; power to a negative exponent:
 * XCS_EW_ERR_NEG_POW), which kernels set in an error word for the runtime
 * to read back. */
bool xcs_op_int_faults(xcs_op op);
/* Finds an op by its table name ("add", "exp", ...); XCS_ERR_VALUE if none. */
xcs_status xcs_op_from_name(const char *name, xcs_op *out);

/* ---------------------------------------------------------------- storage */

typedef enum xcs_device { XCS_DEVICE_CPU = 0, XCS_DEVICE_CUDA = 1, XCS_DEVICE_COUNT } xcs_device;

/* Refcounted memory.  Owned memory is 64-byte aligned and freed with the last
 * reference; external memory (a numpy buffer, a DLPack tensor) is released by
 * calling `release(release_ctx)` exactly once, from whichever thread drops the
 * last reference. */
typedef struct xcs_storage {
    long refcount;               /* atomic */
    void *data;
    size_t nbytes;
    xcs_device device;
    int device_index;
    bool readonly;
    bool owned;                  /* data came from xcs_storage_new */
    void (*release)(void *release_ctx);
    void *release_ctx;
    bool lent;                   /* handed to a consumer that may write it (DLPack): no copy of it is kept */
} xcs_storage;

/* Returns owned storage of nbytes (uninitialised), or NULL with the error set. */
xcs_storage *xcs_storage_new(size_t nbytes, xcs_device device);
/* Storage on device `device` number `index` through its backend's alloc
 * (the CPU: xcs_storage_new); freed through the backend with the last
 * reference. */
xcs_storage *xcs_storage_new_on(size_t nbytes, xcs_device device, int index);
/* Wraps external memory; `release` may be NULL (memory outlives us). */
xcs_storage *xcs_storage_wrap(void *data, size_t nbytes, bool readonly,
                              void (*release)(void *), void *release_ctx);
void xcs_storage_retain(xcs_storage *s);
/* Marks s as lent out (atomic): its contents may change behind xcs, so the
 * device copies a compiled program keeps of its constants are not kept for
 * it (every run copies it again); _lent reads the mark. */
void xcs_storage_lend(xcs_storage *s);
bool xcs_storage_lent(const xcs_storage *s);
void xcs_storage_release(xcs_storage *s);

/* Live/total owned allocations made by xcs_storage_new (debug counters used by
 * tests to prove that fused programs allocate no intermediates). */
typedef struct xcs_alloc_stats {
    int64_t live_buffers, live_bytes, total_buffers, total_bytes;
} xcs_alloc_stats;
void xcs_alloc_stats_get(xcs_alloc_stats *out);
/* Frees the large blocks kept for reuse (see tensor.c). */
void xcs_alloc_cache_clear(void);

/* ---------------------------------------------------------------- tensor */

enum {
    XCS_TENSOR_WEAK = 1u << 0, /* a Python scalar: weak dtype for promotion */
};

typedef struct xcs_graph xcs_graph;

/* A strided view of storage.  A tensor is owned by exactly one holder and is
 * freed with xcs_tensor_free; storage is shared by views through refcounts.
 *
 * A traced tensor (graph != NULL) has no storage: it stands for the value of
 * node `node` of `graph` (a C-contiguous array of the node's shape) seen
 * through this header's shape/strides/offset.  Every op accepts traced
 * tensors and records a node instead of computing, so views, promotion and
 * composites behave exactly as in eager mode (JAX's tracer idea, in C). */
typedef struct xcs_tensor {
    xcs_storage *storage;
    xcs_graph *graph;                /* borrowed; NULL for concrete tensors */
    int32_t node;
    xcs_dtype dtype;
    int ndim;
    unsigned flags;
    int64_t offset;                  /* elements from storage->data */
    int64_t shape[XCS_MAX_DIMS];
    int64_t strides[XCS_MAX_DIMS];   /* elements; 0 on broadcast dims */
} xcs_tensor;

/* Returns an owned, C-contiguous, uninitialised tensor. */
xcs_status xcs_tensor_empty(xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out);
/* The same on the device of `where` (NULL: the CPU). */
xcs_status xcs_tensor_empty_on(const xcs_storage *where, xcs_dtype dt, int ndim, const int64_t *shape,
                               xcs_tensor **out);
/* A C-contiguous copy of concrete x on `device` number `index` (a view when
 * x already is one there): uploads and downloads through the device's
 * backend. */
xcs_status xcs_tensor_to(const xcs_tensor *x, xcs_device device, int index, xcs_tensor **out);
/* Brings n concrete operands of one op (`what`, for messages) to one
 * place: when some live on a device and the others on the host, the host
 * ones are copied to that device (moved[i], owned by the caller, NULL for
 * the others; xs[i] then points at it), as JAX moves uncommitted host
 * data to a committed array's device.  Operands on two different devices
 * are an XCS_ERR_VALUE. */
xcs_status xcs_colocate(int n, const xcs_tensor **xs, xcs_tensor **moved, const char *what);
/* True when x's data lives on the host (every tensor without storage too). */
bool xcs_tensor_on_host(const xcs_tensor *x);
/* Returns an owned view of `storage` (retained) with the given layout; checks
 * that every reachable element lies inside the storage. */
xcs_status xcs_tensor_from_storage(xcs_storage *storage, xcs_dtype dt, int ndim,
                                   const int64_t *shape, const int64_t *strides,
                                   int64_t offset, xcs_tensor **out);
/* Returns an owned 0-d tensor holding `v` converted to dt. */
xcs_status xcs_tensor_scalar(xcs_dtype dt, double v, xcs_tensor **out);
xcs_status xcs_tensor_scalar_i64(xcs_dtype dt, int64_t v, xcs_tensor **out);
/* Returns an owned view sharing storage (same layout). */
xcs_status xcs_tensor_view(const xcs_tensor *x, xcs_tensor **out);
void xcs_tensor_free(xcs_tensor *t);

int64_t xcs_tensor_numel(const xcs_tensor *t);
static inline bool xcs_tensor_is_traced(const xcs_tensor *t) { return t->graph != NULL; }
bool xcs_tensor_is_contiguous(const xcs_tensor *t);
static inline void *xcs_tensor_data(const xcs_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)xcs_dtype_size(t->dtype);
}
/* A tensor's layout without its memory (dtype, shape, strides): what a plan
 * kept between calls is keyed by (a loop's steps see new memory in the
 * same layouts). */
typedef struct xcs_layout {
    xcs_dtype dtype;
    int ndim;
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
} xcs_layout;
static inline void xcs_layout_of(const xcs_tensor *t, xcs_layout *l) {
    l->dtype = t->dtype;
    l->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) l->shape[d] = t->shape[d], l->strides[d] = t->strides[d];
}
/* True when t (may be NULL) has layout l. */
static inline bool xcs_layout_is(const xcs_layout *l, const xcs_tensor *t) {
    if (!t || t->dtype != l->dtype || t->ndim != l->ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != l->shape[d] || t->strides[d] != l->strides[d]) return false;
    return true;
}
/* Reads element `flat` (C order) converted to double / int64 (for tests, repr). */
double xcs_tensor_get_f64(const xcs_tensor *t, int64_t flat);
int64_t xcs_tensor_get_i64(const xcs_tensor *t, int64_t flat);

/* ---------------------------------------------------------------- shapes */

/* Formats "(2, 3, 4)" into buf; returns buf (for error messages). */
const char *xcs_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* numel with overflow check (XCS_ERR_MEMORY past 2^62 bytes). */
xcs_status xcs_shape_numel(int ndim, const int64_t *shape, size_t itemsize, int64_t *out);
/* numpy broadcasting of two shapes. */
xcs_status xcs_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                               int *nout, int64_t *out);
/* Normalises axis (negative counts from the end) for an ndim-array. */
xcs_status xcs_axis_normalize(int axis, int ndim, int *out);
/* C-contiguous strides for a shape. */
void xcs_strides_contiguous(int ndim, const int64_t *shape, int64_t *strides);

/* ---------------------------------------------------------------- views
 * All return owned tensors that share the input's storage. */

xcs_status xcs_reshape(const xcs_tensor *x, int ndim, const int64_t *shape, xcs_tensor **out);
/* -1 in shape is inferred; copies when a view is impossible. */
xcs_status xcs_permute(const xcs_tensor *x, const int *perm, xcs_tensor **out);
xcs_status xcs_transpose(const xcs_tensor *x, xcs_tensor **out); /* reverse axes */
xcs_status xcs_broadcast_to(const xcs_tensor *x, int ndim, const int64_t *shape, xcs_tensor **out);
/* axes: bitmask of size-1 axes to drop; 0 drops all size-1 axes. */
xcs_status xcs_squeeze(const xcs_tensor *x, unsigned axes, xcs_tensor **out);
xcs_status xcs_expand_dims(const xcs_tensor *x, int axis, xcs_tensor **out);
/* Python slice semantics per axis (start/stop already clipped by the caller
 * or not: this normalises like slice.indices()); step != 0. */
typedef struct xcs_slice { int64_t start, stop, step; bool has_start, has_stop; } xcs_slice;
xcs_status xcs_slice_axis(const xcs_tensor *x, int axis, xcs_slice s, xcs_tensor **out);
/* Integer index along an axis (drops it); negative counts from the end. */
xcs_status xcs_index_axis(const xcs_tensor *x, int axis, int64_t index, xcs_tensor **out);

/* ---------------------------------------------------------------- ops
 * Each returns an owned new tensor.  Inputs are borrowed. */

xcs_status xcs_unary(xcs_op op, const xcs_tensor *x, xcs_tensor **out);
xcs_status xcs_binary(xcs_op op, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out);
xcs_status xcs_where(const xcs_tensor *cond, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out);
xcs_status xcs_cast(const xcs_tensor *x, xcs_dtype dt, xcs_tensor **out);
/* A C-contiguous copy (also of dtype dt). */
xcs_status xcs_copy(const xcs_tensor *x, xcs_tensor **out);
/* Same as x when already contiguous (returns a view), else a copy. */
xcs_status xcs_contiguous(const xcs_tensor *x, xcs_tensor **out);

/* axes: bitmask over x's dims (axis=None: all ndim bits); 0 reduces nothing. */
xcs_status xcs_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out);
/* axis < 0 after normalisation means "flattened" (pass XCS_AXIS_NONE). */
#define XCS_AXIS_NONE (-1000)
xcs_status xcs_argreduce(xcs_op op, const xcs_tensor *x, int axis, bool keepdims, xcs_tensor **out);
/* numpy.argsort(x, axis, kind="stable"): int64 indices that sort x along
 * axis (XCS_AXIS_NONE: of the flattened x), equal values in their order,
 * NaNs last.  On a device without an argsort kernel x is sorted on the host
 * and the indices go back there. */
xcs_status xcs_argsort(const xcs_tensor *x, int axis, xcs_tensor **out);
/* numpy.sort(x, axis): x's values sorted along axis (XCS_AXIS_NONE: the
 * flattened x), NaNs last with their bits; -0.0 before 0.0.  Values only on
 * a backend with a sort kernel; elsewhere x taken at its argsort.  Its
 * gradient scatters back through the argsort. */
xcs_status xcs_sort(const xcs_tensor *x, int axis, xcs_tensor **out);
/* numpy.take_along_axis(x, idx, axis) for int64 idx of x's shape but the
 * axis (any length there), every index in [0, x.shape[axis]); and its
 * adjoint: out (x's shape but n along axis) = zeros, src scattered-added at
 * idx along axis. */
xcs_status xcs_take_along_axis(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out);
xcs_status xcs_scatter_add_along_axis(const xcs_tensor *idx, const xcs_tensor *src, int axis, int64_t n,
                                      xcs_tensor **out);
/* numpy.cumsum(x, axis) for float32/float64/int32/int64 x (the caller
 * casts bools and picks the accumulator): each row summed in order, so a
 * backend with a kernel gives numpy's add.accumulate bits.  On a backend
 * without one (a device) it is log2(n) doubling steps of whole-array adds
 * (the last bits may differ). */
xcs_status xcs_cumsum(const xcs_tensor *x, int axis, xcs_tensor **out);
/* Linear algebra on the last two dims, batched (numpy broadcasting) over
 * the others (kind LINALG; ints and bools in float64, 16-bit floats in
 * float32 rounded back):
 *   XCS_OP_SOLVE     in a [..., n, n], b [..., n, k]: x with a @ x = b
 *                    (LU with partial pivoting; an exactly singular a is
 *                    XCS_ERR_LINALG "Singular matrix", as numpy);
 *   XCS_OP_CHOLESKY  in a [..., n, n]: lower L with L @ L^T = a, from a's
 *                    lower triangle (not positive definite: XCS_ERR_LINALG);
 *   XCS_OP_SLOGDET   in a [..., n, n]: [..., 2] of (sign, log|det|), a
 *                    singular a giving (0, -inf) as numpy's;
 *   XCS_OP_EIGH      in a [..., n, n] (its lower triangle, symmetric):
 *                    [..., n + 1, n], row 0 the eigenvalues ascending,
 *                    rows 1.. the eigenvectors as columns;
 *   XCS_OP_SVD       in a [..., m, n]: [..., m + 1 + n, k], k = min(m, n):
 *                    rows 0..m-1 U, row m the singular values descending,
 *                    rows m+1.. V, with a = U diag(s) V^T;
 *   XCS_OP_QR        in a [..., m, n]: [..., m + n, k]: rows 0..m-1 Q
 *                    (orthonormal columns), rows m.. R^T (R upper
 *                    triangular k x n), a = Q R, LAPACK's signs (Householder
 *                    reflections, R's diagonal -sign(a_jj) * norm);
 *   XCS_OP_EIGVALSH  EIGH's eigenvalues alone: [..., n], ascending;
 *   XCS_OP_SVDVALS   SVD's singular values alone: [..., k], descending
 *                    (both without computing the vectors: LAPACK's jobz
 *                    'N', Jacobi rotations not accumulated; their
 *                    gradients compute EIGH / SVD).
 * Eigen- and singular vectors are unique up to sign. */
xcs_status xcs_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor **out);
/* The size (min(m, n) of its matrices) from which the host computes
 * linalg op through LAPACK, where its BLAS build has it, rather than by
 * xcs's loops; a device's kernels for EIGH, SVD, QR, EIGVALSH and SVDVALS
 * stop there too (larger ones computed on the host), so that a device
 * gives the host's results. */
int64_t xcs_linalg_lapack_min(xcs_op op);

/* numpy matmul: 1-D operands promoted and demoted, batch dims broadcast. */
xcs_status xcs_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out);
/* A backend's batched product a [..., M, K] @ b [..., K, N] -> out [..., M, N]
 * (operands broadcast to out's rank) as one 2-D product, when b is the same
 * for every batch entry (stride 0) and the batch and row dims of a and of
 * out each merge into one strided run of rows: a2 [R, K] @ b2 [K, N] ->
 * out2 [R, N], R = batch * M, borrowed headers over the same memory (a
 * vmapped h @ W: one GEMM, not B products of a row).  False: no fold. */
bool xcs_matmul_fold_rows(const xcs_tensor *a, const xcs_tensor *b, const xcs_tensor *out, xcs_tensor *a2,
                          xcs_tensor *b2, xcs_tensor *out2);

/* numpy.take(x, idx, axis) (idx integer, any shape; negative indices wrap,
 * out of range is XCS_ERR_INDEX).  axis == XCS_AXIS_NONE takes from x.ravel(). */
xcs_status xcs_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out);
/* xcs_take when the caller has checked idx in range on the host (a device
 * graph's indices passed from the host): on a device the kernel then has
 * nothing to report and is not waited for. */
xcs_status xcs_take_in_range(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor **out);
/* The adjoint of take: with k = idx.ndim and src.shape = pre + idx.shape +
 * post (idx.shape from `axis` on), out (pre + (n,) + post, src's dtype) =
 * zeros, then out[o, idx[j], q] += src[o, j, q] for j in C order, so every
 * float sum is the same sum in the same order on every backend and thread
 * count.  idx integer in [0, n) (else XCS_ERR_INDEX). */
xcs_status xcs_scatter_add_axis(const xcs_tensor *idx, const xcs_tensor *src, int axis, int64_t n, xcs_tensor **out);
/* xcs_scatter_add_axis of 1-D idx and src of one length at axis 0. */
xcs_status xcs_scatter_add(const xcs_tensor *idx, const xcs_tensor *src, int64_t n, xcs_tensor **out);
/* A collective (PSUM, PMAX, ALL_GATHER) over a mapped axis of `axis_size`
 * examples, recorded in the per-example graph of traced x (vmap/pmap's
 * batching rules compute it: the sum / max over the axis, or the stack of
 * all examples, [axis_size, ...x.shape]).  Only traced x: a collective has
 * no meaning outside a map. */
xcs_status xcs_collective(xcs_op op, const xcs_tensor *x, int64_t axis_size, xcs_tensor **out);
/* The same over the map numbered axis_id (> 0; the binding calls each map
 * by a number of its own): a map that batches a collective of another map
 * (one over an outer axis, met inside an inner map) passes it on to the
 * enclosing program, over its own batch, instead of reducing its own axis.
 * 0 (xcs_collective): whichever map batches it. */
xcs_status xcs_collective_on(xcs_op op, const xcs_tensor *x, int64_t axis_size, int32_t axis_id, xcs_tensor **out);
/* AXIS_INDEX: each example's position on the mapped axis (an int64 0-d
 * value), recorded in the graph of traced x (x is not read). */
xcs_status xcs_concat(int n, const xcs_tensor *const *xs, int axis, xcs_tensor **out);

xcs_status xcs_full(xcs_dtype dt, int ndim, const int64_t *shape, double value, xcs_tensor **out);
/* arange(start, stop, step) in dtype dt (numpy length rule). */
xcs_status xcs_arange(double start, double stop, double step, xcs_dtype dt, xcs_tensor **out);

/* Counter-based random numbers (Philox-4x32-10): element i of the result is a
 * pure function of (key, i), so CPU and GPU produce identical streams and
 * every thread can generate its slice independently. */
typedef struct xcs_rng_key { uint32_t k[2]; } xcs_rng_key;
xcs_rng_key xcs_rng_key_from_seed(uint64_t seed);
/* Derives n independent keys from `key` (JAX-style split). */
void xcs_rng_split(xcs_rng_key key, int64_t n, xcs_rng_key *out);
/* Uniform in [lo, hi) / normal(0,1)*scale+loc, float dtypes only. */
xcs_status xcs_random_uniform(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape,
                              double lo, double hi, xcs_tensor **out);
xcs_status xcs_random_normal(xcs_rng_key key, xcs_dtype dt, int ndim, const int64_t *shape,
                             xcs_tensor **out);
/* The same with the key an array: an integer array of shape (2,) holding
 * two 32-bit words (what ember.xcs.random.key makes).  A concrete key is
 * read now; a traced one (a jitted function's argument, a vmapped row)
 * records the draw in its graph (ops RANDOM_UNIFORM / RANDOM_NORMAL /
 * RANDOM_SPLIT, inputs: the key, and minval / maxval as constants), drawn
 * when the program runs, so one compiled program serves every key.
 * xcs_random_split_a gives int64 [n, 2]: n keys derived from the key.
 * `op` names the caller in errors. */
xcs_status xcs_rng_key_read(const xcs_tensor *key, const char *op, xcs_rng_key *out);
xcs_status xcs_random_uniform_a(const xcs_tensor *key, xcs_dtype dt, int ndim, const int64_t *shape, double lo,
                                double hi, xcs_tensor **out);
xcs_status xcs_random_normal_a(const xcs_tensor *key, xcs_dtype dt, int ndim, const int64_t *shape,
                               xcs_tensor **out);
xcs_status xcs_random_split_a(const xcs_tensor *key, int64_t n, xcs_tensor **out);
/* A RANDOM node's value from its concrete inputs (run.c, batch.c). */
xcs_status xcs_random_node_run(xcs_op op, xcs_dtype dt, int ndim, const int64_t *shape, int n_in,
                               const xcs_tensor *const *in, xcs_tensor **out);

/* ---------------------------------------------------------------- composites
 * Written in src/core/composite.c from the primitives above. */

xcs_status xcs_mean(const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out);
xcs_status xcs_var(const xcs_tensor *x, unsigned axes, bool keepdims, int ddof, xcs_tensor **out);
xcs_status xcs_std(const xcs_tensor *x, unsigned axes, bool keepdims, int ddof, xcs_tensor **out);
xcs_status xcs_softmax(const xcs_tensor *x, int axis, xcs_tensor **out);
xcs_status xcs_log_softmax(const xcs_tensor *x, int axis, xcs_tensor **out);
xcs_status xcs_logsumexp(const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out);
xcs_status xcs_dot(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out);
/* Two-operand (or one-operand) einsum without repeated labels in an operand:
 * lowered to permute + reshape + (batched) matmul + sum. */
xcs_status xcs_einsum(const char *subscripts, int n, const xcs_tensor *const *xs, xcs_tensor **out);
xcs_status xcs_stack(int n, const xcs_tensor *const *xs, int axis, xcs_tensor **out);
/* Splits at `n_idx` indices along axis into n_idx+1 views (outs owned). */
xcs_status xcs_split(const xcs_tensor *x, int n_idx, const int64_t *indices, int axis, xcs_tensor **outs);
xcs_status xcs_linspace(double start, double stop, int64_t num, bool endpoint, xcs_dtype dt, xcs_tensor **out);
xcs_status xcs_eye(int64_t n, int64_t m, int64_t k, xcs_dtype dt, xcs_tensor **out);

/* ---------------------------------------------------------------- graphs (IR)
 *
 * A graph is a flat array of nodes in topological order (ggml's habit),
 * built by running ordinary ops on traced tensors.  Node values are
 * C-contiguous arrays; an edge is a strided view of one (so transposes,
 * slices and broadcasts cost no node).  Concrete tensors that meet traced
 * ones become constants (retained, not copied). */

xcs_status xcs_graph_new(xcs_graph **out);
/* A graph traced inside the trace of `parent` (which must outlive it):
 * values of parent (or of its enclosing graphs) used here become extra
 * inputs, filled in by xcs_graph_batch with those values themselves. */
void xcs_graph_set_parent(xcs_graph *g, const xcs_graph *parent);
void xcs_graph_free(xcs_graph *g);
/* Adds argument #k (k = number of inputs so far); returns an owned traced
 * tensor standing for it. */
xcs_status xcs_graph_input(xcs_graph *g, xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out);
/* Appends x to the outputs (a concrete x becomes a constant output). */
xcs_status xcs_graph_output(xcs_graph *g, const xcs_tensor *x);
int xcs_graph_num_nodes(const xcs_graph *g);
int xcs_graph_num_inputs(const xcs_graph *g);
int xcs_graph_num_outputs(const xcs_graph *g);
/* Fused groups / steps of the plan built by xcs_graph_optimize (0 before):
 * a step is one kernel launch, fused or not. */
int xcs_graph_num_groups(const xcs_graph *g);
/* Fused group k of the plan: its program (owned by g), the dtype of each of
 * its inputs and outputs (arrays of XCS_FUSED_MAX_IO), and whether it is a
 * matmul's epilogue (input 0 is then the product).  NULL past the groups. */
struct xcs_fused_program;
const struct xcs_fused_program *xcs_graph_group(const xcs_graph *g, int k, xcs_dtype *in_dtypes, xcs_dtype *out_dtypes,
                                                bool *matmul);
int xcs_graph_num_steps(const xcs_graph *g);
/* The plan's memory plan: `buffers` intermediates live in one arena of
 * `arena_bytes` per run; `planned_bytes` is what they would take without
 * reusing memory between values whose lifetimes do not overlap. */
typedef struct xcs_graph_memory {
    int buffers;
    int64_t arena_bytes, planned_bytes;
} xcs_graph_memory;
void xcs_graph_memory_get(const xcs_graph *g, xcs_graph_memory *out);
/* One node, for introspection: its op ("input", "const" or an op name), value
 * dtype and shape, the nodes it reads (the first `cap` ids go to inputs),
 * and its fusion group (-1: none, or before optimize).  Returns the number
 * of inputs, or -1 when i is out of range. */
typedef struct xcs_node_info {
    const char *op;
    xcs_dtype dtype;
    int ndim;
    int64_t shape[XCS_MAX_DIMS];
    int group;
    bool matmul_head;    /* the matmul of a matmul + epilogue group */
    bool stored;         /* written to memory (a group output or an unfused value) */
} xcs_node_info;
int xcs_graph_node_get(const xcs_graph *g, int i, xcs_node_info *out, int32_t *inputs, int cap);
/* Dead-code and common-subexpression elimination (in place). */
xcs_status xcs_graph_optimize(xcs_graph *g);
/* Structural hash: ops, dtypes, shapes, attrs, edges, input signature and
 * constant identities.  Equal graphs hash equal. */
uint64_t xcs_graph_hash(const xcs_graph *g);
/* Human-readable listing ("%3 = add(%1, %2) f32[4,8]"); returns bytes
 * needed (like snprintf). */
size_t xcs_graph_dump(const xcs_graph *g, char *buf, size_t cap);
/* Runs the graph on concrete inputs (shapes/dtypes must match the traced
 * ones); outs receives n_outputs owned tensors. */
xcs_status xcs_graph_run(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs);
/* The same with every value on device `dev` number `index` (its backend
 * registered): host inputs and constants are uploaded, nodes the device has
 * no kernel for run on the host (operands down, value up), and the outputs
 * stay on the device. */
xcs_status xcs_graph_run_on(const xcs_graph *g, xcs_device dev, int index, int n_in, const xcs_tensor *const *inputs,
                            xcs_tensor **outs);
/* The loop program of scan (scan.c): body is a traced, optimised step
 * f(carry..., x...) -> (carry..., y...) whose first n_carry inputs and
 * outputs are the carry (same shapes and dtypes) and whose other inputs are
 * rows of the xs leaves inputs[n_carry..n_in) ([length, ...] each).  Runs
 * the body `length` times (t = 0.., or length-1.. when reverse) in C; outs
 * receives the final carry, then each y stacked to [length, ...]. */
xcs_status xcs_graph_scan(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs);
/* The same on `dev` number `index`: the inputs are moved there once, every
 * step runs there, and the outputs are left there. */
xcs_status xcs_graph_scan_on(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                             const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index);
/* A compiled scan (scan.c): body (traced, not optimised; the inputs and
 * outputs as for xcs_graph_scan) split into the part that reads no carry,
 * computed for all steps at once before the loop as one batched program
 * (an RNN cell's x @ U: one GEMM instead of a matrix-vector product per
 * step), and the loop over the rest, optimised.  _run takes and returns
 * what xcs_graph_scan does; _hoisted says how many values were hoisted. */
typedef struct xcs_scan_program xcs_scan_program;
/* n_inv: the last n_inv inputs are loop invariants, passed whole (not as
 * [length, ...] rows) to _run: every step reads them as they are. */
xcs_status xcs_scan_program_new(const xcs_graph *body, int n_carry, int n_inv, xcs_scan_program **out);
void xcs_scan_program_free(xcs_scan_program *sp);
int xcs_scan_program_hoisted(const xcs_scan_program *sp);
/* The optimised step graph the loop runs (the hoisted values among its inputs). */
const xcs_graph *xcs_scan_program_step(const xcs_scan_program *sp);
xcs_status xcs_scan_program_run(const xcs_scan_program *sp, int64_t length, bool reverse, int n_in,
                                const xcs_tensor *const *inputs, xcs_tensor **outs);
xcs_status xcs_scan_program_run_on(const xcs_scan_program *sp, int64_t length, bool reverse, int n_in,
                                   const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index);

/* scan inside a trace (scan_node.c): the loop of body (traced, not
 * optimised; inputs [carries (n_carry), rows of xs (n_x), values it reads
 * whole], outputs [carries, ys]) over `length` steps recorded as one op of
 * the graph of the traced inputs, or of the values body captured from its
 * parent (which are read whole at every step), or run at once when none
 * is traced.  inputs: [carries, xs ([length, ...] each), the others];
 * outs (xcs_graph_num_outputs(body), owned): [final carries, stacked ys].
 * The op is differentiable (a reverse loop of the body's VJP) and
 * batchable (vmap batches the body). */
xcs_status xcs_scan_trace(const xcs_graph *body, int n_carry, int n_x, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs);

/* Lazy graphs (the tensor regions of a Python body that re-runs every call):
 * concrete values enter as constants, ops record nodes, and a value is
 * computed when it is needed.  xcs_graph_const returns a traced tensor
 * standing for concrete x.  xcs_graph_concretize computes traced tensor t
 * (any view of a node of g, which has no inputs): it optimises and runs a
 * copy of g whose output is t's node (fusion applies), turns that node into
 * a constant holding the value (so nothing upstream is computed twice), and
 * makes t itself concrete in place (t->graph becomes NULL). */
xcs_status xcs_graph_const(xcs_graph *g, const xcs_tensor *x, xcs_tensor **out);

/* Reverse-mode AD (autodiff.c): appends to g the nodes computing the
 * vector-Jacobian product of traced value y with respect to each traced
 * argument wrt[k] (whole values of g's nodes), for cotangent `seed` (NULL:
 * ones, the gradient of a scalar y).  grads[k] (owned, traced, wrt[k]'s
 * shape and dtype) are then typically added as outputs; the backward nodes
 * go through the same optimisation and fusion as any.  Ties of max/min
 * split the cotangent equally; floor/ceil/sign/integer ops have zero
 * gradient; prod's gradient divides by x. */
xcs_status xcs_graph_vjp(xcs_graph *g, const xcs_tensor *y, const xcs_tensor *seed, int n, const xcs_tensor *const *wrt,
                         xcs_tensor **grads);

/* vmap's batching rules (batch.c): replays g (a traced per-example
 * function) on inputs that are batched ([B, ...per-example shape],
 * batched[k]) or shared (the per-example shape), through the eager ops, so
 * traced inputs give a traced batched program.  outs[k] (owned) is batched
 * ([B, ...]) when out_batched[k]. */
xcs_status xcs_graph_batch(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, const bool *batched,
                           int64_t B, xcs_tensor **outs, bool *out_batched);
/* The same for the map numbered axis_id (see xcs_collective_on): its own
 * collectives (and those numbered 0) reduce its axis, others are recorded
 * again, over the batched values, for the map they name. */
xcs_status xcs_graph_batch_on(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, const bool *batched,
                              int64_t B, int32_t axis_id, xcs_tensor **outs, bool *out_batched);
xcs_status xcs_graph_concretize(xcs_graph *g, xcs_tensor *t);
/* The same with the program run on device `dev` number `index`; the value
 * comes back to the host (lazy values are read by host code). */
xcs_status xcs_graph_concretize_on(xcs_graph *g, xcs_tensor *t, xcs_device dev, int index);
/* t's value as a new concrete tensor (owned; t's view of it), computed as
 * xcs_graph_concretize_on does, while t itself stays traced: later ops on
 * t are still recorded in g (reading the computed constant). */
xcs_status xcs_graph_lazy_value(xcs_graph *g, const xcs_tensor *t, xcs_device dev, int index, xcs_tensor **out);

/* Batched concretization (lazy_batch.c): vmap over an orchestration body
 * runs each example's Python on its own thread, recording its tensor work
 * in its own lazy graph.  xcs_lazy_key fingerprints the pending program
 * that computing ts[0..n) (traced tensors of lazy graph g) needs: its ops,
 * shapes and dtypes, not its constants' values; 0 when nothing is pending.
 * xcs_lazy_concretize_batch computes, for K examples, example k's n[k]
 * values ts[k][..] of lazy graph gs[k] into constants of that graph (the
 * tensors stay traced: xcs_graph_concretize_on / xcs_graph_lazy_value then
 * read them without computing), but the examples whose program equals example 0's run as ONE program:
 * example 0's, with every constant that differs between them (their
 * arguments, earlier results) made an input, batched over the stacked
 * values by vmap's rules and optimised (fused) as a whole; constants the
 * same in all (shared weights) stay shared.  The others are computed one
 * by one.  *n_batched (may be NULL) receives how many ran batched. */
typedef struct xcs_lazy_cost {
    int ops;        /* nodes the program computes */
    int64_t bytes;  /* bytes of the constants it reads */
} xcs_lazy_cost;
/* cost (may be NULL) receives the size of that program. */
uint64_t xcs_lazy_key(const xcs_graph *g, int n, const xcs_tensor *const *ts, xcs_lazy_cost *cost);
xcs_status xcs_lazy_concretize_batch(int K, xcs_graph *const *gs, const int *n, xcs_tensor *const *const *ts,
                                     xcs_device dev, int index, int *n_batched);

/* ---------------------------------------------------------------- fused programs
 *
 * What the fusion pass hands a backend: a group of elementwise ops run in one
 * pass over memory, optionally ending in one reduction.  The program works on
 * registers; on the CPU each register is a per-thread tile of a few KiB, so
 * no intermediate of the group is ever materialised (DESIGN.md §5-6).
 *
 * Iteration space: `shape` (ndim dims).  Every input is a strided view
 * already broadcast to `shape` (stride 0 on broadcast dims), of any dtype.
 * Instructions run in order:
 *   XCS_FUSED_LOAD   reg[dst] = input[a] converted to `dtype`
 *   XCS_FUSED_OP     reg[dst] = op(reg[a], reg[b], reg[c]) computed in
 *                    `dtype` (the op's compute dtype; CMP/LOGIC ops write
 *                    bool registers, where's condition register is bool)
 *   XCS_FUSED_CAST   reg[dst] = reg[a] converted from `src_dtype` to `dtype`
 *   XCS_FUSED_STORE  output[dst] = reg[a] converted to output[dst]'s dtype
 *   XCS_FUSED_REDUCE output[dst] = reduce_op over `reduce_axes` of reg[a]
 *                    (SUM/PROD/MAX/MIN, accumulated like xcs_reduce: float
 *                    sums in double, ints in int64); output[dst] has
 *                    `shape` with 1 on each reduced axis.  At most one
 *                    REDUCE per program and it is the last instruction.
 * Outputs of STORE have `shape` and any strides that do not make an output
 * overlap itself; REDUCE outputs are C-contiguous.  An input may be the very
 * memory of an output (same data pointer: a program run in place) when every
 * LOAD of that input comes before every write of that output. */
typedef enum xcs_fused_kind {
    XCS_FUSED_LOAD, XCS_FUSED_OP, XCS_FUSED_CAST, XCS_FUSED_STORE, XCS_FUSED_REDUCE,
} xcs_fused_kind;

typedef struct xcs_fused_instr {
    xcs_fused_kind kind;
    xcs_op op;              /* OP: elementwise op; REDUCE: SUM/PROD/MAX/MIN */
    int dst, a, b, c;       /* register / input / output indices (-1 unused) */
    xcs_dtype dtype;        /* dtype of reg[dst] (LOAD/OP/CAST), compute dtype of OP */
    xcs_dtype src_dtype;    /* CAST: dtype of reg[a] */
} xcs_fused_instr;

#define XCS_FUSED_MAX_INSTR 64
#define XCS_FUSED_MAX_REGS 16
#define XCS_FUSED_MAX_IO 16

/* A backend's kept state for one call site of a fused program (opaque). */
typedef struct xcs_fused_cache xcs_fused_cache;

typedef struct xcs_fused_program {
    int ndim;
    int64_t shape[XCS_MAX_DIMS];
    int n_inputs, n_outputs, n_regs, n_instr;
    xcs_fused_instr instr[XCS_FUSED_MAX_INSTR];
    unsigned reduce_axes;   /* REDUCE: axes of `shape` it folds */
    unsigned stream_outputs; /* bit k: output k is not read again while it could
                              * still be cached (it is larger than the caches):
                              * the backend may write it around the cache */
    bool product_used;       /* a matmul group's product (input 0) is read after
                              * the program too: it must reach memory (else a
                              * backend may keep it inside the GEMM's epilogue) */
} xcs_fused_program;

/* A fused kernel's fault bits (every backend's kernels set them: the CPU's
 * loops, the CUDA kernels' fault word) as the error of the program's first
 * op that can raise them, naming it as the eager op would; `where` says
 * which kernel ran ("" for the CPU's). */
#define XCS_FUSED_FAULT_ZERO_DIV 1u /* integer floor_divide / mod / fmod by zero */
#define XCS_FUSED_FAULT_NEG_POW 2u  /* an integer to a negative integer power */
xcs_status xcs_fused_fault(const xcs_fused_program *p, unsigned bits, const char *where);
/* Whether p has an op that can set them (integer division, modulo, power). */
bool xcs_fused_can_fault(const xcs_fused_program *p);

/* A row chain (the fusion pass's): fused programs over spaces with the same
 * rows (dim 0), each reading earlier programs' values row by row.  A
 * backend may run the whole chain one row at a time, so values made and
 * used inside it never reach memory.  Values are the programs' outputs,
 * numbered in order (program 0's outputs first). */
#define XCS_ROW_CHAIN_MAX 8
typedef struct xcs_row_chain {
    int n;
    const xcs_fused_program *prog[XCS_ROW_CHAIN_MAX];
    /* per program input: the value it reads (>= 0), or -1: tensor in[g][k]
     * (a view broadcast to the program's space, as run_fused takes) */
    int in_value[XCS_ROW_CHAIN_MAX][XCS_FUSED_MAX_IO];
    const xcs_tensor *in[XCS_ROW_CHAIN_MAX][XCS_FUSED_MAX_IO];
    /* per program output: where it is also written (NULL: only later
     * programs of the chain read it), and its dtype */
    xcs_tensor *out[XCS_ROW_CHAIN_MAX][XCS_FUSED_MAX_IO];
    xcs_dtype out_dtype[XCS_ROW_CHAIN_MAX][XCS_FUSED_MAX_IO];
} xcs_row_chain;

/* scan's loop in one pass (xcs_backend.run_scan, used off the CPU when a
 * step is one elementwise fused program): p runs `length` times over its
 * space, step i on t = reverse ? length - 1 - i : i.  Input k of p reads
 * carry in_carry[k] (>= 0: its value before the step) or, when -1, in[k]
 * (row 0's operand, a view broadcast to p's space as run_fused takes)
 * moved in_step[k] elements per t (0: the same every step).  Output o
 * becomes carry out_carry[o] (-1: none) and, when out[o] is set, is
 * written into out[o] (row 0's destination over p's space) moved
 * out_step[o] elements per t.  Carry q starts as carry_init[q] and ends in
 * carry_final[q], both C-contiguous of p's shape and dtype. */
#define XCS_SCAN_MAX_CARRY 8
typedef struct xcs_scan_loop {
    const xcs_fused_program *p;
    int64_t length;
    bool reverse;
    int n_carry;
    const xcs_tensor *carry_init[XCS_SCAN_MAX_CARRY];
    xcs_tensor *carry_final[XCS_SCAN_MAX_CARRY];
    int in_carry[XCS_FUSED_MAX_IO];
    const xcs_tensor *in[XCS_FUSED_MAX_IO];
    int64_t in_step[XCS_FUSED_MAX_IO];
    int out_carry[XCS_FUSED_MAX_IO];
    xcs_tensor *out[XCS_FUSED_MAX_IO];
    int64_t out_step[XCS_FUSED_MAX_IO];
} xcs_scan_loop;

/* ---------------------------------------------------------------- backends
 *
 * A backend executes kernels on tensors whose shapes/dtypes core has already
 * checked and whose outputs core has already allocated.  The CPU backend is
 * linked in; the CUDA backend is a shared object opened at run time.  All
 * entries borrow every argument. */

typedef struct xcs_backend {
    const char *name;
    xcs_device device;
    /* out = op(in[0..n_in)) elementwise.  Inputs are already broadcast to
     * out's shape (stride 0 on broadcast dims) and are of any dtype: the
     * backend converts each element to `compute` before applying the op and
     * converts the result to out->dtype.  Covers UNARY, BINARY, TERNARY
     * (WHERE: in[0] is the condition, compute is the dtype of in[1], in[2]),
     * CAST and COPY (n_in == 1, compute == out->dtype).  out is C-contiguous
     * on the host; a device backend also writes a strided view (concatenate
     * copies each input into its slab of the result). */
    xcs_status (*elementwise)(xcs_op op, int n_in, const xcs_tensor *const *in,
                              xcs_dtype compute, xcs_tensor *out);
    /* out has x's ndim with size 1 on each axis in `axes` (keepdims form). */
    xcs_status (*reduce)(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out);
    /* out (int64) has x's ndim with size 1 on `axis`. */
    xcs_status (*argreduce)(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out);
    /* out (int64, x's shape, contiguous) = the stable argsort of x along
     * axis, NaNs last.  NULL: no kernel (core sorts on the host). */
    xcs_status (*argsort)(const xcs_tensor *x, int axis, xcs_tensor *out);
    /* out (x's dtype and shape, contiguous) = x sorted along axis (as
     * xcs_sort).  NULL: x taken at its argsort. */
    xcs_status (*sort)(const xcs_tensor *x, int axis, xcs_tensor *out);
    /* out (x's dtype and shape, contiguous) = the running sum of x along
     * axis, each row in order (xcs_cumsum).  NULL: core's doubling steps. */
    xcs_status (*cumsum)(const xcs_tensor *x, int axis, xcs_tensor *out);
    /* xcs_linalg's ops on contiguous float32/float64 inputs of one dtype,
     * broadcast to out's batch (a [..., n, n], b [..., n, k]); out
     * contiguous.  NULL: no kernel (core computes on the host). */
    xcs_status (*linalg)(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out);
    /* a: [..., M, K], b: [..., K, N], out: [..., M, N]; batch dims of a and b
     * already broadcast to out's (stride 0 where broadcast); same dtype. */
    xcs_status (*matmul)(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
    /* out = take(x, idx, axis): out.shape = x.shape[:axis] + idx.shape + x.shape[axis+1:],
     * out contiguous.  On the host idx holds int64 already wrapped into
     * [0, x.shape[axis]) by core.  On a device (whose indices core cannot
     * read) x and idx (int64) are contiguous and the indices as given: the
     * kernel wraps negative ones and reports one out of range as
     * XCS_ERR_INDEX. */
    xcs_status (*take)(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
    /* As take on a device, with indices core checked in [-len, len): the
     * kernel has nothing to report, so it need not be waited for.  NULL:
     * take. */
    xcs_status (*take_in_range)(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
    /* xcs_scatter_add_axis into out: idx int64 contiguous (J = its element
     * count), src [O, J, Q] and out [O, A, Q] contiguous of one dtype, where
     * O is the product of out's dims before axis, A = out.shape[axis] and Q
     * the product of the dims after it.  Each position's values are summed
     * in order of j from zero (the same bits on every backend).  On the host
     * core checked the indices in [0, A); on a device the kernel reports one
     * out of range as XCS_ERR_INDEX. */
    xcs_status (*scatter_add)(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out);
    /* Fill out (contiguous) with value / start + i*step / random numbers. */
    xcs_status (*fill)(xcs_tensor *out, double value);
    xcs_status (*iota)(xcs_tensor *out, double start, double step);
    xcs_status (*random)(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out);
    /* Runs a fused program (see above); inputs broadcast to p->shape,
     * outputs allocated by the caller.  NULL: the backend cannot fuse and
     * core runs the ops one by one. */
    xcs_status (*run_fused)(const xcs_fused_program *p, const xcs_tensor *const *inputs,
                            xcs_tensor *const *outputs);
    /* A matmul with an elementwise epilogue: prod = a @ b (as `matmul`), then
     * the program p (which may end in a REDUCE) over prod's shape, whose inputs[0] is prod.
     * prod may be one of the outputs (in place, see above).  The backend may
     * run p on each block of prod as soon as that block is final, while it is
     * still in cache.  NULL: core calls matmul, then run_fused. */
    xcs_status (*matmul_fused)(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                               const xcs_fused_program *p, const xcs_tensor *const *inputs,
                               xcs_tensor *const *outputs);
    /* Optional: run_fused / matmul_fused for a call site that runs one
     * program again and again (a loop's step).  *cache (NULL at first, owned
     * by the caller, released with fused_cache_free) keeps what the backend
     * worked out for the operands' layout, so that a call whose operands
     * differ from the last only in where they are skips that work. */
    xcs_status (*run_fused_kept)(const xcs_fused_program *p, xcs_fused_cache **cache,
                                 const xcs_tensor *const *inputs, xcs_tensor *const *outputs);
    xcs_status (*matmul_fused_kept)(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                    const xcs_fused_program *p, xcs_fused_cache **cache,
                                    const xcs_tensor *const *inputs, xcs_tensor *const *outputs);
    void (*fused_cache_free)(xcs_fused_cache *cache);
    /* Host-side SPMD: runs fn(ctx, w) for every worker w < n_workers, each on
     * its own thread where possible, and returns the first failure (with its
     * message, on the calling thread).  Kernels called from fn run on fn's
     * thread only.  NULL: core runs the workers one after another. */
    xcs_status (*parallel)(int n_workers, xcs_status (*fn)(void *ctx, int worker), void *ctx);
    int (*max_threads)(void); /* workers worth starting (NULL: 1) */
    /* Device memory, for a backend whose memory is not the host's (NULL on
     * the CPU): `index` is the device number (xcs_storage.device_index).
     * Copies wait for what the device has queued before them. */
    xcs_status (*alloc)(int index, size_t nbytes, void **out);
    void (*free)(int index, void *p);
    xcs_status (*upload)(int index, void *dst, const void *src, size_t nbytes);
    xcs_status (*download)(int index, void *dst, const void *src, size_t nbytes);
    /* Runs a row chain in one pass over its rows; XCS_ERR_UNSUPPORTED (no
     * error to report) when this chain does not fit the backend's row
     * kernel: core then runs the programs one by one.  NULL: never. */
    xcs_status (*run_rows)(const xcs_row_chain *rc);
    /* Runs a scan loop in one pass (a CUDA kernel whose threads keep the
     * carries in registers); XCS_ERR_UNSUPPORTED (no error to report) when
     * this loop does not fit it: core then runs the steps one by one.
     * NULL: never. */
    xcs_status (*run_scan)(const xcs_scan_loop *sl);
} xcs_backend;

/* The backend serving `device`, or NULL with the error set. */
const xcs_backend *xcs_backend_for(xcs_device device);
/* Called once by each backend's init (the registry is written only then). */
xcs_status xcs_backend_register(const xcs_backend *b);

/* Runtime facts for users and tests. */
typedef struct xcs_build_info {
    bool has_openmp, has_cblas, has_cuda_backend;
    int max_threads;
    const char *blas_name;
} xcs_build_info;

#ifdef __cplusplus
}
#endif
#endif /* XCS_H */
