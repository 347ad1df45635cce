/* trace.h — internal to src/core: the graph (IR) data structure and the hook
 * through which ops record nodes when an input is traced. */
#ifndef XCS_TRACE_H
#define XCS_TRACE_H

#include "xcs.h"

#include <stdatomic.h>
#include <string.h>

/* For an op without kernels for float16/bfloat16 (reductions, scatter-adds,
 * composites): when x is 16-bit, CALL (which reads x32 and writes &r_) runs
 * on x's float32 cast and returns from the enclosing function; its result is
 * rounded once into *out when `narrow`, else handed out as it is (an argmax's
 * indices).  float32 accumulation is also numpy's for float16 means: a sum
 * of halves overflows float16's 65504 long before the mean does.  Traced,
 * the casts fuse into the neighbouring groups. */
#define XCS_HALF_VIA_F32(x, out, narrow, CALL)                                  \
    if (xcs_dtype_is_half((x)->dtype)) {                                        \
        xcs_tensor *w_ = NULL, *r_ = NULL;                                      \
        xcs_status st_ = xcs_cast((x), XCS_F32, &w_);                           \
        const xcs_tensor *x32 = w_;                                             \
        if (!st_) st_ = (CALL);                                                 \
        if (!st_ && (narrow)) st_ = xcs_cast(r_, (x)->dtype, (out));            \
        else if (!st_) *(out) = r_, r_ = NULL;                                  \
        xcs_tensor_free(w_);                                                    \
        xcs_tensor_free(r_);                                                    \
        return st_;                                                             \
    }

/* Source nodes are not in ops.def (no kernel, no rules): */
#define XCS_NODE_INPUT ((xcs_op)-1)
#define XCS_NODE_CONST ((xcs_op)-2)

/* An edge: a strided view of node `node`'s contiguous value.  `flags` keeps
 * XCS_TENSOR_WEAK so replays promote like the trace did. */
typedef struct xcs_edge {
    int32_t node;
    int ndim;
    unsigned flags;
    int64_t offset;
    int64_t shape[XCS_MAX_DIMS];
    int64_t strides[XCS_MAX_DIMS];
} xcs_edge;

typedef struct xcs_node {
    xcs_op op;
    xcs_dtype dtype;           /* value dtype */
    xcs_dtype compute;         /* elementwise compute dtype */
    int ndim;
    int64_t shape[XCS_MAX_DIMS];
    int n_in;
    int32_t first_edge;        /* into graph->edges */
    unsigned axes;             /* REDUCE */
    int axis;                  /* ARGREDUCE, TAKE, CONCAT */
    int32_t aux;               /* INPUT: argument index; CONST: constant index */
} xcs_node;

/* The fusion plan: steps in order, each one node replayed eagerly (group
 * -1) or one fused group of consecutive nodes [first, last]. */
typedef struct xcs_plan_group {
    xcs_fused_program prog;
    int first, last;
    int n_inputs, n_outputs;
    int input_edges[XCS_FUSED_MAX_IO];   /* graph edge index per program input (-1: the product) */
    int output_nodes[XCS_FUSED_MAX_IO];  /* node whose value each output is */
    /* A matmul group: node `first` is a matmul and prog its epilogue, whose
     * input 0 is the product.  The product is written into output prod_out
     * (in place), or, when -1, into its own buffer (the node's value when it
     * is read outside the group, else a scratch buffer). */
    bool matmul;
    int prod_out;
} xcs_plan_group;

typedef struct xcs_plan_step { int node, group; } xcs_plan_step;

typedef struct xcs_plan {
    xcs_plan_step *steps;
    int n_steps;
    xcs_plan_group *groups;
    int n_groups;
    int *last_step;                      /* per node: last step reading it */
    int *free_start;                     /* per step (n_steps + 1): its nodes to drop are free_nodes[free_start[s] ..) */
    int *free_nodes;                     /* nodes grouped by last_step (a value no later step reads) */
    int *chain;                          /* per step: steps in the row chain starting here (0: none) */
    int64_t *chain_rows;                 /* per chain start: rows per block */
    int *chain_workers;                  /* per chain start: workers (each with its own block buffers) */
    /* The memory plan: every intermediate a step writes (group outputs, a
     * matmul's own product, a row chain's block buffers) is a view of one
     * arena allocated per run, at an offset chosen so that values whose
     * lifetimes (first writing step .. last reading step) overlap never
     * share bytes.  Graph outputs and nodes replayed eagerly own buffers. */
    int64_t *arena_off;                  /* per node: byte offset of its value, -1: own buffer */
    int64_t *block_off;                  /* per node: byte offset of its row-chain block buffer, -1: none */
    int64_t arena_bytes;                 /* arena size */
    int64_t planned_bytes;               /* sum of the planned values' sizes (no reuse) */
    int n_planned;                       /* values in the arena */
} xcs_plan;

void xcs_plan_free(xcs_plan *p);
/* Builds g->plan (replacing any old one); the graph must not change after. */
xcs_status xcs_graph_fuse(xcs_graph *g);

/* Device copies of an optimised graph's constants that cannot change
 * (xcs_graph.dev_consts): t[k] for constant k < n whose memory xcs made
 * (an Array's, or the copy a trace took of a strided view), NULL for one
 * that reads a caller's buffer in place (a numpy array: read again every
 * run, so a change to it shows, as on the CPU); a copy is not used once
 * its source is lent out (xcs_storage_lent: DLPack). */
typedef struct xcs_dev_consts {
    int n;
    xcs_tensor *t[];
} xcs_dev_consts;
#define XCS_GRAPH_DEVICE_SLOTS 16 /* device numbers whose copies are kept */

/* An entry of xcs_graph.const_index: constant node `node` (-1: empty),
 * made from the array `src` views when the constant is a copy of it (a
 * transposed weight, W.T: the view, owned, keeps that memory from being
 * reused by another array while it identifies the copy), else NULL (the
 * constant itself holds the array's memory). */
typedef struct xcs_const_slot {
    int32_t node;
    xcs_tensor *src;
} xcs_const_slot;

/* A scan recorded in a trace (scan_node.c): the loop program of `body`,
 * whose inputs are [carries (n_carry), rows of xs (n_x), loop invariants
 * (n_inv: values of the enclosing program every step reads whole)] and
 * whose outputs are [carries, ys].  Shared (refcounted) by the graphs that
 * copy the nodes; immutable once made. */
typedef struct xcs_scan_node {
    atomic_int refs;
    xcs_graph *body;           /* traced, not optimised: autodiff replays it */
    xcs_scan_program *prog;    /* compiled from body */
    int n_carry, n_x, n_inv, n_out;
    int n_resid;               /* ys at the end that are the carries leaving each step (autodiff's residuals), else 0 */
    int64_t length;
    bool reverse;
    uint64_t hash;             /* the body's structure, length, direction */
} xcs_scan_node;

void xcs_scan_node_release(xcs_scan_node *d);

struct xcs_graph {
    xcs_plan *plan;            /* NULL until xcs_graph_optimize */
    xcs_node *nodes;
    int n_nodes, cap_nodes;
    xcs_edge *edges;
    int n_edges, cap_edges;
    xcs_tensor **consts;       /* owned views */
    int n_consts, cap_consts;
    /* Constant nodes by the memory they were made from (graph.c's
     * const_edge reuses the node of an array used again): open addressing,
     * a power-of-two table at most half full.  Entries are checked on use,
     * so one a pass made stale is only a missed reuse. */
    struct xcs_const_slot *const_index;
    int n_const_index, cap_const_index;
    /* per device number: the kept device copies of the constants (made by
     * the first run there, published by compare-and-swap, freed with the
     * graph) */
    _Atomic(xcs_dev_consts *) dev_consts[XCS_GRAPH_DEVICE_SLOTS];
    int n_inputs;
    xcs_edge *outputs;         /* outputs are views too (e.g. a transposed result) */
    int n_outputs, cap_outputs;
    /* A graph traced inside another trace (vmap's per-example graph): a
     * value of an enclosing graph used here becomes an extra input, after
     * the n_inputs - n_captured real ones; captured[k] is that value. */
    const xcs_graph *parent;
    xcs_tensor **captured;     /* owned views (traced in an enclosing graph) */
    int n_captured, cap_captured;
    /* the scans recorded here (XCS_OP_SCAN nodes' aux), each a reference */
    xcs_scan_node **scans;
    int n_scans, cap_scans;
};

/* Scan nodes (scan_node.c; _vjp_body, _with_residuals and _ct_gemm are
 * scan_grad.c's).  _call records descriptor d applied to
 * inputs [carries, xs, invariants] in their graph (one XCS_OP_SCAN node per
 * output; outs owned, traced), or runs it at once when none is traced.
 * _run computes node i of g (and its sibling nodes' values) from the
 * node's operands ins, on dev: vals[j] (NULL ones only) for every sibling
 * j.  _vjp_body is the body of the reverse loop of autodiff's rule: inputs
 * [ct carries, ct accumulators of the invariants summed in a carry,
 * carries entering the step, x rows, ct of the ys, invariants], outputs
 * [ct carries, ct accumulators, ct x rows, factors of the invariants summed
 * by a GEMM], kind[v] (n_inv) telling how each invariant is summed.
 * _with_residuals makes g's scan `aux` also stack the carry leaving each
 * step (once) and returns the carries entering each step ([T, ...], that
 * shifted by a step: traced in g). */
xcs_status xcs_scan_node_call(xcs_scan_node *d, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs);
xcs_status xcs_scan_node_run(const xcs_graph *g, int i, xcs_tensor *const *ins, xcs_device dev, int index,
                             xcs_tensor **vals);
xcs_status xcs_scan_node_new(const xcs_graph *body, int n_carry, int n_x, int n_resid, int64_t length, bool reverse,
                             xcs_scan_node **out);
/* How the reverse loop sums an invariant's cotangent: not at all (not a
 * float), in a carry, or (its step cotangent a product a @ c of two step
 * values, transposed for _T) as the ys a and c, summed after the loop by
 * one GEMM (xcs_scan_ct_gemm): the per-step [K, N] update becomes one
 * [K, T*M] @ [T*M, N] product. */
enum { XCS_SCAN_CT_NONE, XCS_SCAN_CT_SUM, XCS_SCAN_CT_GEMM, XCS_SCAN_CT_GEMM_T };
xcs_status xcs_scan_vjp_body(const xcs_scan_node *d, int *kind, xcs_graph **out);
/* sum over t of a[t] @ c[t] (a [T, K, M], c [T, M, N]), transposed when asked. */
xcs_status xcs_scan_ct_gemm(const xcs_tensor *a, const xcs_tensor *c, bool transposed, xcs_tensor **out);
xcs_status xcs_scan_with_residuals(xcs_graph *g, int aux, int32_t first, xcs_tensor **resid);
/* Optimisation (passes.c, after DCE): each scan computes only what g's
 * nodes still read (unread ys dropped, and carries nothing kept reads);
 * *changed when any scan was rewritten (its dropped inputs' sources may
 * now be dead). */
xcs_status xcs_scan_prune(xcs_graph *g, bool *changed);
/* vmap's rule (batch.c): node i of g read through `in` (batched [B, ...]
 * where ib[k]) for the map axis_id; sets val[j] (contiguous) and vb[j] for
 * every sibling j whose val is NULL.  The body is batched (a carry is made
 * batched when the step makes it so) and recorded as a scan of its own;
 * the xs are read [T, B, ...], and the stacked ys come back [B, T, ...]. */
xcs_status xcs_scan_node_batch(const xcs_graph *g, int i, xcs_tensor *const *in, const bool *ib, int64_t B,
                               int32_t axis_id, xcs_tensor **val, bool *vb);

/* Node n's op on operands `in` (views of its inputs' values) through the
 * eager ops: concrete operands compute, traced ones record (run.c). */
xcs_status xcs_node_apply(const xcs_node *n, xcs_tensor *const *in, xcs_tensor **out);

/* A node reading what node `like` reads, with its op and aux, standing
 * for output `axis` (of dtype and shape): another output of a scan. */
xcs_status xcs_trace_sibling(xcs_graph *g, int32_t like, xcs_dtype dtype, int ndim, const int64_t *shape, int axis,
                             xcs_tensor **out);
/* Input node i of g, which nothing that is kept reads, made a scalar zero
 * constant (DCE then drops it with what reads it); the caller renumbers
 * the other inputs (scan.c). */
xcs_status xcs_graph_unread_input(xcs_graph *g, int i);
/* The body's carry outputs have the carry inputs' shapes and dtypes (scan.c). */
xcs_status xcs_scan_check_carry(const xcs_graph *body, int n_carry);

/* Input node k of body (NULL when missing); output k's dtype and shape (a
 * y stacked over the steps); frees the n tensors of array t (NULL: none),
 * then t (scan_node.c). */
const xcs_node *xcs_scan_input_node(const xcs_graph *body, int k);
xcs_dtype xcs_scan_output_sig(const xcs_scan_node *d, int k, int *ndim, int64_t *shape);
void xcs_tensors_drop(xcs_tensor **t, int n);

/* Replays graph `body` on `inputs` (traced or concrete) through the eager
 * ops: outs[k] (owned) is its output k (scan_node.c). */
xcs_status xcs_graph_inline(const xcs_graph *body, const xcs_tensor *const *inputs, xcs_tensor **outs);

/* A copy of g (no plan; constants shared as views, scans as references)
 * whose outputs are g's, or, when out_nodes is given, those n_out nodes'
 * whole values.  Values g captured from a parent are plain inputs of the
 * copy, which has no parent. */
xcs_status xcs_graph_clone(const xcs_graph *g, int n_out, const int32_t *out_nodes, xcs_graph **out);

/* Per-example program p run for B examples as one fused program
 * (lazy_batch.c): inputs[k] is [B, ...] when batched[k], else shared;
 * vmap's rules replay p into a fresh graph whose constants hold the
 * inputs, which is optimised and run on dev.  vals[o] (owned, contiguous;
 * brought to the host when to_host, else left where they were made: a
 * scan's hoisted values stay on its device) is [B, ...] when vb[o], else
 * the value all share. */
xcs_status xcs_graph_batch_run(const xcs_graph *p, const xcs_tensor *const *inputs, const bool *batched, int64_t B,
                               xcs_device dev, int index, bool to_host, xcs_tensor **vals, bool *vb);

/* Room for one more constant in g->consts. */
xcs_status xcs_graph_grow_consts(xcs_graph *g);

/* FNV-1a over n bytes at p, chained from h (passes.c). */
uint64_t xcs_fnv(uint64_t h, const void *p, size_t n);

/* Lazy graphs (lazy.c): v (owned) moved to the host when it is not there;
 * node `node` of g made a constant holding v (a contiguous value of the
 * node's shape); traced t, a view of a constant node of g, made concrete
 * in place, reading that constant. */
xcs_status xcs_lazy_to_host(xcs_tensor **v);
xcs_status xcs_lazy_settle(xcs_graph *g, int32_t node, const xcs_tensor *v);
void xcs_lazy_adopt(xcs_graph *g, xcs_tensor *t);
/* t's node computed (on dev/index) and made a constant; t stays traced. */
xcs_status xcs_lazy_compute(xcs_graph *g, const xcs_tensor *t, xcs_device dev, int index);

/* The checks of a uniform / normal draw's dtype (a float one) and, for a
 * uniform one, its bounds (finite, lo <= hi): create.c's, shared by
 * traced draws (rng.c) and device runs (run.c). */
xcs_status xcs_random_args_check(xcs_op op, xcs_dtype dt, double lo, double hi);

/* True when edge e reads its source node's value whole, in order (the
 * identity view; strides of size-1 dims do not matter). */
bool xcs_edge_is_identity(const xcs_graph *g, const xcs_edge *e);

/* True when any of the n tensors is traced; *g receives their graph, and
 * XCS_ERR_VALUE is returned (via *st) when they come from different graphs. */
bool xcs_trace_any(int n, const xcs_tensor *const *xs, xcs_graph **g, xcs_status *st);

/* Records op over `n` inputs (each is used through its own view; concrete
 * ones become constants) producing a value of dtype/shape; returns an owned
 * traced tensor (contiguous view of the new node). */
xcs_status xcs_trace_node(xcs_graph *g, xcs_op op, int n, const xcs_tensor *const *in, xcs_dtype dtype,
                          xcs_dtype compute, int ndim, const int64_t *shape, unsigned axes, int axis,
                          xcs_tensor **out);

/* *dst = *src on a hot path (a loop's step): GCC makes the whole struct
 * copy a 168-byte memcpy call (and a loop over ndim dims one of ndim * 8
 * bytes); field by field with fixed-size dims it is a few vector moves. */
static inline void xcs_header_copy(xcs_tensor *dst, const xcs_tensor *src) {
    dst->storage = src->storage;
    dst->graph = src->graph;
    dst->node = src->node;
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    dst->flags = src->flags;
    dst->offset = src->offset;
    memcpy(dst->shape, src->shape, sizeof dst->shape);
    memcpy(dst->strides, src->strides, sizeof dst->strides);
}

/* One run of a graph, repeated (run.c): xcs_graph_run is open, once,
 * close; a loop program (scan.c) opens once and runs the body per step, so
 * the value table and the arena of intermediates are allocated once. */
typedef struct xcs_run {
    const xcs_graph *g;
    const xcs_plan *plan;              /* NULL: node by node */
    const xcs_backend *be;
    xcs_storage *arena;
    xcs_tensor **val;
    xcs_device dev;                    /* where values live */
    int dev_index;
    xcs_tensor **consts;               /* off the CPU: g's constants copied there once (NULL on the CPU) */
    xcs_tensor **mirror;               /* off the CPU: per node, a small value computed on the host kept there
                                        * too (random.split's keys), so ops reading it on the host need not
                                        * bring it back (NULL on the CPU) */
    xcs_tensor *pool;                  /* per node: a header its value may live in, borrowing storage that
                                        * outlives the run (inputs, constants, the arena): no allocation */
    int *out_of_node;                  /* per node: the output it is, read whole (identity edge), or -1 */
    /* Set by the caller before xcs_run_once (NULL: none): per output, a
     * C-contiguous tensor of its shape and dtype the value may be written
     * into directly; outs[k] is then NULL. */
    xcs_tensor *const *dest;
    /* Per plan group, the backend's kept plan (xcs_run_keep_plans; NULL:
     * every call plans afresh). */
    xcs_fused_cache **kept;
    struct group_hdrs *hdrs;           /* per plan group, with `kept`: operand headers (run.c) */
    struct run_replay *replay;         /* with `kept`: a recorded step (run.c), NULL until one is */
    int64_t replayed;                  /* steps run by replaying the recorded one (a count for tests) */
} xcs_run;
xcs_status xcs_run_open(const xcs_graph *g, xcs_run *r);
/* The same on device `dev` number `index`: every value of the run lives
 * there (inputs on the host are uploaded; outputs stay on the device). */
xcs_status xcs_run_open_on(const xcs_graph *g, xcs_device dev, int index, xcs_run *r);
/* inputs: g's inputs; outs: its n_outputs outputs (owned), NULL for those
 * written into r->dest. */
xcs_status xcs_run_once(xcs_run *r, const xcs_tensor *const *inputs, xcs_tensor **outs);
/* For a run repeated many times over operands of one layout (a loop):
 * the backend keeps each fused group's plan between xcs_run_once calls,
 * and a step made only of fused groups, its inputs read in place and its
 * outputs written into r->dest, is recorded and replayed by later steps
 * whose inputs and destinations have the same layouts (run.c). */
xcs_status xcs_run_keep_plans(xcs_run *r);
void xcs_run_close(xcs_run *r);

#endif
