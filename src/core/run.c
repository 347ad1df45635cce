/* run.c — the graph interpreter: replays each node through the eager op
 * that traced it, so a graph computes exactly what the eager code computes
 * (same promotion, same kernels).  Fusion replaces runs of nodes with fused
 * programs on top of this. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

static int64_t shape_count(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

/* A view of value v (contiguous, of node shape) through edge e. */
static xcs_status edge_view(const xcs_tensor *v, const xcs_edge *e, xcs_tensor **out) {
    int64_t strides[XCS_MAX_DIMS];
    for (int i = 0; i < e->ndim; i++) strides[i] = e->strides[i];
    xcs_status st = xcs_tensor_from_storage(v->storage, v->dtype, e->ndim, e->shape, strides,
                                            v->offset + e->offset, out);
    if (!st) (*out)->flags = e->flags;
    return st;
}

/* The same view as a borrowed header on the caller's stack (no allocation:
 * the edge was checked against its node's shape when it was traced). */
static void edge_header(const xcs_tensor *v, const xcs_edge *e, xcs_tensor *out) {
    out->storage = v->storage;
    out->graph = v->graph;
    out->node = v->node;
    out->dtype = v->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof out->shape); /* (fixed sizes: inline moves, no call) */
    memcpy(out->strides, e->strides, sizeof out->strides);
    out->offset = v->offset + e->offset;
    out->flags = e->flags;
}

/* A matmul node's operands are already typed and broadcast by its trace:
 * straight to the backend, without xcs_matmul's checks and conversions. */
/* True when matmul node n's operands already have its dtype and share one
 * device: the backend's GEMM can take them as they are. */
static bool matmul_ready(const xcs_node *n, xcs_tensor *const *in) {
    return in[0]->dtype == n->dtype && in[1]->dtype == n->dtype && in[1]->storage->device == in[0]->storage->device;
}

static xcs_status run_matmul_node(const xcs_node *n, xcs_tensor *const *in, xcs_tensor **out) {
    if (in[0]->graph || in[1]->graph) return xcs_matmul(in[0], in[1], out); /* replayed into a trace */
    const xcs_backend *be = xcs_backend_for(in[0]->storage->device);
    if (!be || !matmul_ready(n, in)) return xcs_matmul(in[0], in[1], out);
    xcs_status st = xcs_tensor_empty_on(in[0]->storage, n->dtype, n->ndim, n->shape, out);
    if (!st && xcs_tensor_numel(*out) > 0) st = be->matmul(in[0], in[1], *out);
    if (st) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

xcs_status xcs_node_apply(const xcs_node *n, xcs_tensor *const *in, xcs_tensor **out) {
    switch (xcs_op_get_info(n->op)->kind) {
    case XCS_KIND_UNARY: return xcs_unary(n->op, in[0], out);
    case XCS_KIND_BINARY: return xcs_binary(n->op, in[0], in[1], out);
    case XCS_KIND_TERNARY: return xcs_where(in[0], in[1], in[2], out);
    case XCS_KIND_CAST: return xcs_cast(in[0], n->dtype, out);
    case XCS_KIND_COPY: return xcs_copy(in[0], out);
    case XCS_KIND_REDUCE: return xcs_reduce(n->op, in[0], n->axes, true, out);
    case XCS_KIND_ARGREDUCE: return xcs_argreduce(n->op, in[0], n->axis, true, out);
    case XCS_KIND_SORT: return (n->op == XCS_OP_SORT ? xcs_sort : xcs_argsort)(in[0], n->axis, out);
    case XCS_KIND_CUMULATIVE: return xcs_cumsum(in[0], n->axis, out);
    case XCS_KIND_LINALG: return xcs_linalg(n->op, n->n_in, (const xcs_tensor *const *)in, out);
    case XCS_KIND_MATMUL: return run_matmul_node(n, in, out);
    case XCS_KIND_TAKE: return xcs_take(in[0], in[1], n->axis, out);
    case XCS_KIND_CONCAT: return xcs_concat(n->n_in, (const xcs_tensor *const *)in, n->axis, out);
    case XCS_KIND_SCATTER: return xcs_scatter_add_axis(in[0], in[1], n->axis, n->shape[n->axis], out);
    case XCS_KIND_RANDOM:
        return xcs_random_node_run(n->op, n->dtype, n->ndim, n->shape, n->n_in, (const xcs_tensor *const *)in, out);
    case XCS_KIND_COLLECTIVE:
        return xcs_error(XCS_ERR_VALUE, "%s: a collective runs only inside pmap or vmap with an axis_name",
                         xcs_op_name(n->op));
    default: break; /* a scan has several outputs: xcs_scan_node_run */
    }
    return xcs_error(XCS_ERR_INTERNAL, "graph node %s cannot be replayed", xcs_op_name(n->op));
}

static bool same_signature(const xcs_node *n, const xcs_tensor *x) {
    if (n->dtype != x->dtype || n->ndim != x->ndim) return false;
    for (int i = 0; i < n->ndim; i++)
        if (n->shape[i] != x->shape[i]) return false;
    return true;
}

/* A fused group's operand headers, kept between the steps of a loop with
 * the plans (xcs_run_keep_plans).  Their layouts are fixed by the graph:
 * every value is contiguous in its node's shape and seen through an edge,
 * so a later step only moves them onto that step's memory (header_move)
 * instead of rebuilding ~300 bytes each. */
typedef struct group_hdrs {
    bool ready;                          /* built by a step: later ones move them */
    xcs_tensor in[XCS_FUSED_MAX_IO];     /* the program's inputs: edge views, or the product */
    xcs_tensor cin[XCS_FUSED_MAX_IO], cout[XCS_FUSED_MAX_IO]; /* matmul group: seen in the program's shape */
    xcs_tensor a, b;                     /* matmul group: the operands */
} group_hdrs;

/* What one run carries: the plan, the backend, the arena of planned
 * intermediates, every node's current value, and the device they live on. */
typedef struct run_ctx {
    const xcs_graph *g;
    const xcs_plan *plan;
    const xcs_backend *be;
    xcs_storage *arena;
    xcs_tensor **val;
    xcs_device dev;
    int dev_index;
    xcs_tensor *const *consts; /* device copies of g's constants (NULL on the CPU) */
    xcs_tensor **mirror;       /* off the CPU: host copies of small values computed on the host (xcs_run) */
    xcs_tensor *pool;          /* per node: a header a value may live in (borrowing storage that outlives the run) */
    const int *out_of_node;    /* per node: the output it is (identity edge), or -1 */
    xcs_tensor *const *dest;   /* per output: where the caller wants it written, or NULL */
    xcs_fused_cache **kept;    /* per group: the backend's kept plan (NULL: none kept) */
    group_hdrs *hdrs;          /* per group: its operand headers, kept with the plans (or NULL) */
} run_ctx;

/* The context of a step of run r. */
static run_ctx run_ctx_of(const xcs_run *r) {
    return (run_ctx){.g = r->g, .plan = r->plan, .be = r->be, .arena = r->arena, .val = r->val, .dev = r->dev,
                     .dev_index = r->dev_index, .consts = r->consts, .mirror = r->mirror, .pool = r->pool,
                     .out_of_node = r->out_of_node,
                     .dest = r->dest, .kept = r->kept, .hdrs = r->hdrs};
}

/* True when t is one of the run's pooled headers (not to be freed). */
static bool pooled(const xcs_tensor *pool, int n, const xcs_tensor *t) { return pool && t >= pool && t < pool + n; }

/* Drops node i's value: an owned tensor is freed, a pooled header forgotten. */
static void drop_value(const run_ctx *c, int i) {
    if (!pooled(c->pool, c->g->n_nodes, c->val[i])) xcs_tensor_free(c->val[i]);
    c->val[i] = NULL;
}

/* True when a node of this kind runs on a device backend; the others run on
 * the host, their operands downloaded and their value uploaded. */
static bool device_kernel(const xcs_backend *be, const xcs_node *n) {
    switch (xcs_op_get_info(n->op)->kind) {
    case XCS_KIND_UNARY: case XCS_KIND_BINARY: case XCS_KIND_TERNARY: case XCS_KIND_CAST: case XCS_KIND_COPY:
        return be->elementwise != NULL;
    case XCS_KIND_REDUCE: return be->reduce != NULL;
    case XCS_KIND_ARGREDUCE: return be->argreduce != NULL;
    case XCS_KIND_SORT: return be->argsort != NULL || (n->op == XCS_OP_SORT && be->sort != NULL);
    case XCS_KIND_CUMULATIVE: return true; /* a kernel, or core's doubling steps of device ops */
    case XCS_KIND_LINALG: return be->linalg != NULL;
    case XCS_KIND_MATMUL: return be->matmul != NULL && xcs_dtype_is_float(n->dtype);
    case XCS_KIND_TAKE: return be->take != NULL;
    case XCS_KIND_SCATTER: return be->scatter_add != NULL;
    case XCS_KIND_CONCAT: return be->elementwise != NULL;
    case XCS_KIND_RANDOM: /* draws by the device's kernel (run_random_on_device); split on the host */
        return be->random != NULL && n->op != XCS_OP_RANDOM_SPLIT && (n->dtype == XCS_F32 || n->dtype == XCS_F64);
    default: return false;
    }
}

static xcs_status value_slot(const run_ctx *c, int id, xcs_tensor **out);

/* A matmul node whose product the memory plan placed in the arena, with
 * operands already of its dtype on its device: computed straight into its
 * slot (an empty product has nothing to compute). */
static bool planned_matmul(const run_ctx *c, int i, xcs_tensor *const *in) {
    const xcs_node *n = &c->g->nodes[i];
    if (!c->plan || !c->pool || !c->arena || c->plan->arena_off[i] < 0) return false;
    if (!matmul_ready(n, in) || in[0]->storage->device != c->dev ||
        (c->dev != XCS_DEVICE_CPU && !xcs_dtype_is_float(n->dtype)))
        return false;
    for (int d = 0; d < n->ndim; d++)
        if (n->shape[d] == 0) return false;
    return true;
}

/* Operand k of node n (its value `v` seen through the edge) on the host:
 * v itself there; a constant's or a host argument's own memory, or the
 * mirror of a value computed on the host; else a copy brought down (*tmp,
 * owned), or NULL when !fetch. */
static const xcs_tensor *host_operand(const run_ctx *c, const xcs_node *n, int k, const xcs_tensor *v,
                                      const xcs_tensor *const *inputs, bool fetch, xcs_tensor **tmp, xcs_status *st) {
    *tmp = NULL;
    if (xcs_tensor_on_host(v)) return v;
    const xcs_edge *e = &c->g->edges[n->first_edge + k];
    const xcs_node *src = &c->g->nodes[e->node];
    if (c->mirror && c->mirror[e->node]) { /* computed on the host: its copy there, seen through the edge */
        if ((*st = xcs_tensor_view(c->mirror[e->node], tmp))) return NULL;
        edge_header(c->mirror[e->node], e, *tmp);
        return *tmp;
    }
    if (xcs_edge_is_identity(c->g, e)) {
        if (src->op == XCS_NODE_CONST && xcs_tensor_on_host(c->g->consts[src->aux])) return c->g->consts[src->aux];
        if (src->op == XCS_NODE_INPUT && xcs_tensor_on_host(inputs[src->aux])) return inputs[src->aux];
    }
    if (!fetch) return NULL;
    *st = xcs_tensor_to(v, XCS_DEVICE_CPU, 0, tmp);
    return *tmp;
}

/* Node i on the host for a device run: operands there (host_operand:
 * down only when they are nowhere on the host), value up; a small value
 * (random.split's keys) also kept there as its mirror. */
static xcs_status run_on_host(const run_ctx *c, int i, const xcs_tensor *const *inputs, xcs_tensor *const *in,
                              xcs_tensor **out) {
    const xcs_node *n = &c->g->nodes[i];
    int n_in = n->n_in;
    xcs_tensor *host[XCS_FUSED_MAX_IO * 4] = {0}, *tmp_small[XCS_FUSED_MAX_IO * 4] = {0}, **h = host,
               **tmp = tmp_small, *v = NULL;
    if (n_in > (int)(sizeof host / sizeof host[0]) &&
        (!(h = calloc((size_t)n_in, sizeof *h)) || !(tmp = calloc((size_t)n_in, sizeof *tmp)))) {
        if (h != host) free(h);
        return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    }
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_in && !st; k++) h[k] = (xcs_tensor *)host_operand(c, n, k, in[k], inputs, true, &tmp[k], &st);
    if (!st) st = xcs_node_apply(n, h, &v);
    if (!st) st = xcs_tensor_to(v, c->dev, c->dev_index, out);
    if (!st && c->mirror && v && xcs_tensor_numel(v) * (int64_t)xcs_dtype_size(v->dtype) <= 4096) {
        xcs_tensor_free(c->mirror[i]);
        c->mirror[i] = v, v = NULL;
    }
    xcs_tensor_free(v);
    for (int k = 0; k < n_in; k++) xcs_tensor_free(tmp[k]);
    if (h != host) free(h);
    if (tmp != tmp_small) free(tmp);
    return st;
}

/* Indices a take checks on the host at most: past them, the device's
 * check (a wait of tens of microseconds) is cheaper than the host's pass. */
#define XCS_HOST_INDEX_CHECK_MAX ((int64_t)1 << 16)

/* take on the device.  Indices the caller passed from the host (or a
 * constant), up to XCS_HOST_INDEX_CHECK_MAX, are checked here, so the
 * kernel has nothing to report and is not waited for; others are checked
 * by the kernel. */
static xcs_status run_take_on_device(const run_ctx *c, const xcs_node *n, xcs_tensor *const *in,
                                     const xcs_tensor *const *inputs, xcs_tensor **out) {
    xcs_tensor *tmp = NULL;
    xcs_status st = XCS_OK;
    const xcs_tensor *h = host_operand(c, n, 1, in[1], inputs, false, &tmp, &st);
    int64_t len = in[0]->shape[n->axis], m = h ? xcs_tensor_numel(h) : 0;
    if (!h || !xcs_dtype_is_int(h->dtype) || m > XCS_HOST_INDEX_CHECK_MAX) return xcs_take(in[0], in[1], n->axis, out);
    const bool dense64 = h->dtype == XCS_I64 && xcs_tensor_is_contiguous(h);
    const int64_t *p = dense64 ? xcs_tensor_data(h) : NULL;
    for (int64_t i = 0; i < m; i++) {
        int64_t v = p ? p[i] : xcs_tensor_get_i64(h, i);
        if (v < -len || v >= len)
            return xcs_error(XCS_ERR_INDEX, "index %lld is out of bounds for axis %d with size %lld", (long long)v,
                             n->axis, (long long)len);
    }
    return xcs_take_in_range(in[0], in[1], n->axis, out);
}

/* A uniform / normal draw on the device: the key's two words and the
 * bounds read on the host (a key passed in from the host is read there;
 * one the program made comes down), the numbers drawn there by the
 * backend's kernel, the stream of the CPU's. */
static xcs_status run_random_on_device(const run_ctx *c, const xcs_node *n, xcs_tensor *const *in,
                                       const xcs_tensor *const *inputs, xcs_tensor **out) {
    xcs_tensor *tmp[3] = {NULL, NULL, NULL};
    const xcs_tensor *h[3];
    xcs_status st =
        n->n_in == 3 ? XCS_OK : xcs_error(XCS_ERR_INTERNAL, "%s node: %d inputs", xcs_op_name(n->op), n->n_in);
    for (int k = 0; k < 3 && !st; k++) h[k] = host_operand(c, n, k, in[k], inputs, true, &tmp[k], &st);
    xcs_rng_key key;
    if (!st) st = xcs_rng_key_read(h[0], xcs_op_name(n->op), &key);
    double a = st ? 0 : xcs_tensor_get_f64(h[1], 0), b = st ? 0 : xcs_tensor_get_f64(h[2], 0);
    if (!st) st = xcs_random_args_check(n->op, n->dtype, a, b);
    const xcs_storage where = {.device = c->dev, .device_index = c->dev_index};
    if (!st) st = xcs_tensor_empty_on(&where, n->dtype, n->ndim, n->shape, out);
    if (!st && xcs_tensor_numel(*out) > 0 && (st = c->be->random(n->op, key, a, b, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
    }
    for (int k = 0; k < 3; k++) xcs_tensor_free(tmp[k]);
    return st;
}

/* Computes node i into val[i] (sources bind inputs/constants). */
static xcs_status run_one(const run_ctx *c, int i, const xcs_tensor *const *inputs) {
    char want[160], got[160];
    const xcs_graph *g = c->g;
    xcs_tensor **val = c->val;
    const xcs_node *n = &g->nodes[i];
    if (n->op == XCS_NODE_INPUT) {
        const xcs_tensor *x = inputs[n->aux];
        if (x->graph) return xcs_error(XCS_ERR_VALUE, "graph input %d is itself traced", n->aux);
        if (!same_signature(n, x))
            return xcs_error(XCS_ERR_SHAPE, "argument %d: traced as %s%s, called with %s%s", n->aux,
                             xcs_dtype_name(n->dtype), xcs_shape_str(n->ndim, n->shape, want, sizeof want),
                             xcs_dtype_name(x->dtype), xcs_shape_str(x->ndim, x->shape, got, sizeof got));
        if (c->dev == XCS_DEVICE_CPU && !xcs_tensor_on_host(x))
            return xcs_error(XCS_ERR_VALUE, "argument %d lives on a device; this program runs on the CPU", n->aux);
        if (c->dev == XCS_DEVICE_CPU && c->pool && xcs_tensor_is_contiguous(x)) { /* read in place */
            xcs_header_copy(&c->pool[i], x);
            val[i] = &c->pool[i];
            return XCS_OK;
        }
        return c->dev == XCS_DEVICE_CPU ? xcs_contiguous(x, &val[i]) : xcs_tensor_to(x, c->dev, c->dev_index, &val[i]);
    }
    if (n->op == XCS_NODE_CONST) {
        const xcs_tensor *k = c->consts ? c->consts[n->aux] : g->consts[n->aux];
        if (!c->pool) return xcs_tensor_view(k, &val[i]);
        if (c->pool[i].storage != k->storage) xcs_header_copy(&c->pool[i], k); /* (a loop's later steps: there) */
        val[i] = &c->pool[i];
        return XCS_OK;
    }
    xcs_tensor hdr[8], *in[8];
    xcs_tensor *heap_hdr = NULL, **ins = in;
    if (n->n_in > 8) { /* concat of many: headers on the heap */
        heap_hdr = malloc((size_t)n->n_in * sizeof *heap_hdr);
        ins = malloc((size_t)n->n_in * sizeof *ins);
        if (!heap_hdr || !ins) {
            free(heap_hdr);
            if (ins != in) free(ins);
            return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
        }
    }
    for (int k = 0; k < n->n_in; k++) {
        const xcs_edge *e = &g->edges[n->first_edge + k];
        xcs_tensor *h = heap_hdr ? &heap_hdr[k] : &hdr[k];
        edge_header(val[e->node], e, h);
        ins[k] = h;
    }
    xcs_status st;
    if (xcs_op_get_info(n->op)->kind == XCS_KIND_MATMUL && planned_matmul(c, i, ins))
        st = value_slot(c, i, &val[i]) ? xcs_last_status() : c->be->matmul(ins[0], ins[1], val[i]);
    else if (c->dev != XCS_DEVICE_CPU && xcs_op_get_info(n->op)->kind == XCS_KIND_RANDOM && device_kernel(c->be, n))
        st = run_random_on_device(c, n, ins, inputs, &val[i]);
    else if (c->dev != XCS_DEVICE_CPU && xcs_op_get_info(n->op)->kind == XCS_KIND_TAKE && device_kernel(c->be, n))
        st = run_take_on_device(c, n, ins, inputs, &val[i]);
    else if (n->op == XCS_OP_SCAN) /* the loop on the run's device; its other outputs' nodes get theirs too */
        st = val[i] ? XCS_OK : xcs_scan_node_run(g, i, ins, c->dev, c->dev_index, val);
    else if (c->dev == XCS_DEVICE_CPU || device_kernel(c->be, n))
        st = xcs_node_apply(n, ins, &val[i]);
    else
        st = run_on_host(c, i, inputs, ins, &val[i]);
    if (st) xcs_error_context(st, "graph node %%%d (%s)", i, xcs_op_name(n->op));
    free(heap_hdr);
    if (ins != in) free(ins);
    return st;
}

/* A buffer for node id's value: its slice of the arena when the memory plan
 * placed it there, else a fresh tensor.  block: the row-chain block buffer
 * (`rows` rows). */
static xcs_status value_buffer(const run_ctx *c, int id, bool block, int64_t rows, xcs_tensor **out) {
    const xcs_node *n = &c->g->nodes[id];
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    memcpy(shape, n->shape, sizeof shape);
    if (block) shape[0] = rows;
    int64_t off = block ? c->plan->block_off[id] : c->plan->arena_off[id];
    if (off < 0 || !c->arena) {
        xcs_storage where = {.device = c->dev, .device_index = c->dev_index};
        return xcs_tensor_empty_on(&where, n->dtype, n->ndim, shape, out);
    }
    xcs_strides_contiguous(n->ndim, shape, strides);
    return xcs_tensor_from_storage(c->arena, n->dtype, n->ndim, shape, strides,
                                   off / (int64_t)xcs_dtype_size(n->dtype), out);
}

/* Node id's value as a contiguous tensor of its shape at element `offset` of
 * `storage` (which outlives the run), in the node's pooled header. */
static xcs_tensor *pooled_value(const run_ctx *c, int id, xcs_storage *storage, int64_t offset) {
    const xcs_node *n = &c->g->nodes[id];
    xcs_tensor *t = &c->pool[id];
    if (t->storage) { /* shaped by an earlier step (the pool starts zeroed): only the memory moves */
        t->storage = storage;
        t->offset = offset;
        return t;
    }
    t->storage = storage;
    t->graph = NULL;
    t->node = 0;
    t->dtype = n->dtype;
    t->ndim = n->ndim;
    t->flags = 0;
    t->offset = offset;
    memcpy(t->shape, n->shape, sizeof t->shape);
    xcs_strides_contiguous(n->ndim, n->shape, t->strides);
    return t;
}

/* Node id's value for a group output: its arena slice in the node's pooled
 * header (no allocation), else as value_buffer. */
static xcs_status value_slot(const run_ctx *c, int id, xcs_tensor **out) {
    const xcs_node *n = &c->g->nodes[id];
    int k = c->out_of_node ? c->out_of_node[id] : -1;
    const xcs_tensor *d = k >= 0 && c->dest ? c->dest[k] : NULL;
    if (d && c->pool && d->dtype == n->dtype && xcs_tensor_is_contiguous(d) &&
        xcs_tensor_numel(d) == shape_count(n->ndim, n->shape) && d->storage->device == c->dev &&
        (c->dev == XCS_DEVICE_CPU || d->storage->device_index == c->dev_index)) {
        *out = pooled_value(c, id, d->storage, d->offset); /* straight into the caller's buffer */
        return XCS_OK;
    }
    int64_t off = c->plan->arena_off[id];
    if (off < 0 || !c->arena || !c->pool) return value_buffer(c, id, false, 0, out);
    *out = pooled_value(c, id, c->arena, off / (int64_t)xcs_dtype_size(n->dtype));
    return XCS_OK;
}

/* h: t's header reshaped to `shape` (nd dims) where it differs only by
 * size-1 dims (a 1-D matmul's members see [1, N] as (N,)): the other dims
 * keep their order and strides. */
static void conform(const xcs_tensor *t, int nd, const int64_t *shape, xcs_tensor *h) {
    xcs_header_copy(h, t);
    if (shape_count(t->ndim, t->shape) != shape_count(nd, shape)) return; /* a reduction's output keeps its own (keepdims) shape */
    h->ndim = nd;
    int j = 0;
    for (int d = 0; d < nd; d++) {
        h->shape[d] = shape[d];
        if (shape[d] == 1) {
            h->strides[d] = 0;
            continue;
        }
        while (j < t->ndim && t->shape[j] == 1) j++;
        h->strides[d] = j < t->ndim ? t->strides[j++] : 0;
    }
}

/* prod = a @ b (prod C-contiguous) on the run's backend, or on the host
 * when the device has no GEMM for the dtype (integers: cuBLAS has none). */
static xcs_status group_matmul(const run_ctx *c, const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod) {
    if (c->dev == XCS_DEVICE_CPU || xcs_dtype_is_float(prod->dtype)) return c->be->matmul(a, b, prod);
    const xcs_backend *cpu = xcs_backend_for(XCS_DEVICE_CPU);
    xcs_tensor *ha = NULL, *hb = NULL, *hp = NULL;
    xcs_status st = cpu ? XCS_OK : xcs_last_status();
    if (!st) st = xcs_tensor_to(a, XCS_DEVICE_CPU, 0, &ha);
    if (!st) st = xcs_tensor_to(b, XCS_DEVICE_CPU, 0, &hb);
    if (!st) st = xcs_tensor_empty(prod->dtype, prod->ndim, prod->shape, &hp);
    if (!st) st = cpu->matmul(ha, hb, hp);
    size_t nbytes = hp ? (size_t)xcs_tensor_numel(hp) * xcs_dtype_size(hp->dtype) : 0;
    if (!st && nbytes)
        st = c->be->upload(c->dev_index, (char *)prod->storage->data + prod->offset * (int64_t)xcs_dtype_size(prod->dtype),
                           xcs_tensor_data(hp), nbytes);
    xcs_tensor_free(ha);
    xcs_tensor_free(hb);
    xcs_tensor_free(hp);
    return st;
}

/* Header h (of a fixed layout) moved onto value v's memory, `off` elements
 * further: what rebuilding it from v would change. */
static inline void header_move(xcs_tensor *h, const xcs_tensor *v, int64_t off) {
    h->storage = v->storage;
    h->graph = v->graph;
    h->node = v->node;
    h->offset = v->offset + off;
}

/* prod = a @ b of the group's matmul node, then the group's epilogue.  gh:
 * the group's kept headers (NULL: built on the stack); when gh->ready their
 * layouts stand and only their memory moves. */
static xcs_status run_matmul_group(const run_ctx *c, const xcs_plan_group *grp, xcs_tensor *prod, xcs_tensor **ins_in,
                                   xcs_tensor **outs_in, group_hdrs *gh) {
    const xcs_graph *g = c->g;
    /* members may hold the product's values without its size-1 dims: give the
     * program headers of the product's shape */
    group_hdrs local;
    group_hdrs *h = gh ? gh : &local;
    bool fresh = !gh || !gh->ready;
    xcs_tensor *ins[XCS_FUSED_MAX_IO], *outs[XCS_FUSED_MAX_IO];
    const xcs_fused_program *p = &grp->prog;
    for (int k = 0; k < grp->n_inputs; k++) {
        if (fresh) conform(ins_in[k], p->ndim, p->shape, &h->cin[k]);
        else header_move(&h->cin[k], ins_in[k], 0);
        ins[k] = &h->cin[k];
    }
    for (int o = 0; o < grp->n_outputs; o++) {
        if (fresh) conform(outs_in[o], p->ndim, p->shape, &h->cout[o]);
        else header_move(&h->cout[o], outs_in[o], 0);
        outs[o] = &h->cout[o];
    }
    const xcs_node *mn = &g->nodes[grp->first];
    const xcs_edge *ea = &g->edges[mn->first_edge], *eb = &g->edges[mn->first_edge + 1];
    if (fresh) { /* the operands, as headers */
        edge_header(c->val[ea->node], ea, &h->a);
        edge_header(c->val[eb->node], eb, &h->b);
    } else {
        header_move(&h->a, c->val[ea->node], ea->offset);
        header_move(&h->b, c->val[eb->node], eb->offset);
    }
    xcs_status st;
    if (c->kept && c->be->matmul_fused_kept) {
        st = c->be->matmul_fused_kept(&h->a, &h->b, prod, &grp->prog, &c->kept[grp - c->plan->groups],
                                      (const xcs_tensor *const *)ins, outs);
    } else if (c->be->matmul_fused && (c->dev == XCS_DEVICE_CPU || xcs_dtype_is_float(prod->dtype))) {
        st = c->be->matmul_fused(&h->a, &h->b, prod, &grp->prog, (const xcs_tensor *const *)ins, outs);
    } else {
        st = group_matmul(c, &h->a, &h->b, prod);
        if (!st) st = c->be->run_fused(&grp->prog, (const xcs_tensor *const *)ins, outs);
    }
    return st;
}

/* The group's input headers (into ih, pointed at by ins): views of the
 * values they read, or the product; built when `fresh`, else only moved
 * onto this step's memory (their layouts are the graph's). */
static void group_inputs(const run_ctx *c, const xcs_plan_group *grp, const xcs_tensor *prod, bool fresh,
                         xcs_tensor *ih, xcs_tensor **ins) {
    const xcs_graph *g = c->g;
    for (int k = 0; k < grp->n_inputs; k++) {
        const xcs_edge *e = grp->input_edges[k] < 0 ? NULL : &g->edges[grp->input_edges[k]];
        if (!e) fresh ? xcs_header_copy(&ih[k], prod) : header_move(&ih[k], prod, 0);
        else if (fresh) edge_header(c->val[e->node], e, &ih[k]);
        else header_move(&ih[k], c->val[e->node], e->offset);
        ins[k] = &ih[k];
    }
}

/* The group's kernels over a non-empty space: the GEMM and its epilogue,
 * or the fused program (its kept plan in a kept run). */
static xcs_status group_kernels(const run_ctx *c, const xcs_plan_group *grp, xcs_tensor *prod, xcs_tensor **ins,
                                xcs_tensor **outs, group_hdrs *gh) {
    if (grp->matmul) return run_matmul_group(c, grp, prod, ins, outs, gh);
    if (c->kept && c->be->run_fused_kept)
        return c->be->run_fused_kept(&grp->prog, &c->kept[grp - c->plan->groups], (const xcs_tensor *const *)ins,
                                     outs);
    return c->be->run_fused(&grp->prog, (const xcs_tensor *const *)ins, outs);
}

/* Runs one fused group: its external inputs are views of earlier values,
 * its stored members get their planned buffers. */
static xcs_status run_group(const run_ctx *c, const xcs_plan_group *grp) {
    const xcs_graph *g = c->g;
    xcs_tensor **val = c->val;
    group_hdrs *gh = c->hdrs ? &c->hdrs[grp - c->plan->groups] : NULL;
    bool fresh = !gh || !gh->ready;
    xcs_tensor ih_stack[XCS_FUSED_MAX_IO], *ih = gh ? gh->in : ih_stack;
    /* (entries past n_inputs / the outputs made are never read: not cleared,
     * which costs a `rep stos` per array on every step of a loop) */
    xcs_tensor *ins[XCS_FUSED_MAX_IO], *outs[XCS_FUSED_MAX_IO], *prod = NULL;
    xcs_tensor prod_in_out; /* the product in place in an output: a stack header over it */
    xcs_status st = XCS_OK;
    int no = 0;
    for (; no < grp->n_outputs && !st; no++) {
        outs[no] = NULL; /* (freed on failure) */
        st = value_slot(c, grp->output_nodes[no], &outs[no]);
    }
    if (!st && grp->matmul && grp->prod_out >= 0) {
        xcs_header_copy(&prod_in_out, outs[grp->prod_out]);
        prod = &prod_in_out;
    } else if (!st && grp->matmul) { /* its own buffer: the matmul node's value */
        st = value_slot(c, grp->first, &prod);
    }
    if (!st) group_inputs(c, grp, prod, fresh, ih, ins); /* headers over values that outlive the group */
    int64_t numel = 1;
    for (int d = 0; d < grp->prog.ndim; d++) numel *= grp->prog.shape[d];
    if (!st && numel > 0) st = group_kernels(c, grp, prod, ins, outs, gh);
    for (int o = 0; o < no && !st && numel == 0; o++) {
        /* an empty space: its elementwise values are empty, and a reduction
         * over it (an output with elements) is its identity, which the eager
         * op gives for an empty input of the reduced shape (the values inside
         * the group were never made) */
        if (xcs_tensor_numel(outs[o]) == 0) continue;
        const xcs_node *n = &g->nodes[grp->output_nodes[o]];
        const xcs_edge *e = &g->edges[n->first_edge];
        xcs_tensor *in0 = NULL, *r = NULL;
        st = n->n_in == 1 ? xcs_tensor_empty_on(outs[o]->storage, g->nodes[e->node].dtype, e->ndim, e->shape, &in0)
                          : xcs_error(XCS_ERR_INTERNAL, "%s of an empty space in a fused group", xcs_op_name(n->op));
        if (!st) st = xcs_node_apply(n, &in0, &r);
        xcs_tensor_free(in0);
        if (!st) {
            if (!pooled(c->pool, g->n_nodes, outs[o])) xcs_tensor_free(outs[o]);
            outs[o] = r;
        }
    }
    if (gh) gh->ready = !st && numel > 0; /* (an empty group runs other code each time) */
    if (st) xcs_error_context(st, "fused group of nodes %%%d..%%%d", grp->first, grp->last);
    for (int o = 0; o < no; o++) {
        if (!st) val[grp->output_nodes[o]] = outs[o];
        else if (!pooled(c->pool, g->n_nodes, outs[o])) xcs_tensor_free(outs[o]);
    }
    /* a product in its own buffer is the matmul node's value (dropped after
     * this step when nothing else reads it) */
    if (!st && grp->matmul && grp->prod_out < 0) val[grp->first] = prod;
    else if (prod != &prod_in_out && !pooled(c->pool, g->n_nodes, prod)) xcs_tensor_free(prod);
    return st;
}

/* Rows [r0, r0 + b) of tensor v (a view; v is freed). */
static xcs_status rows_of(xcs_tensor *v, int64_t r0, int64_t b, xcs_tensor **out) {
    xcs_slice sl = {.start = r0, .stop = r0 + b, .step = 1, .has_start = true, .has_stop = true};
    xcs_status st = xcs_slice_axis(v, 0, sl, out);
    xcs_tensor_free(v);
    return st;
}

/* A row chain in flight: what its workers share. */
typedef struct chain_run {
    const run_ctx *c;
    int s, len, workers;
    int64_t R, B;
    int first_node, last_node;
    const bool *local;         /* per chain node: its value lives in block buffers */
    xcs_tensor *const *blk;    /* per chain node: block buffers, B rows per worker */
} chain_run;

/* Rows [r0, r0 + b) of the block buffer of chain node id, seen through
 * edge e (or whole when e is NULL), for worker w. */
static xcs_status block_rows(const chain_run *k, int id, const xcs_edge *e, int w, int64_t b, xcs_tensor **out) {
    const xcs_tensor *bt = k->blk[id - k->first_node];
    int64_t shape[XCS_MAX_DIMS];
    memcpy(shape, e ? e->shape : bt->shape, sizeof shape);
    shape[0] = b;
    return xcs_tensor_from_storage(bt->storage, bt->dtype, e ? e->ndim : bt->ndim, shape, e ? e->strides : bt->strides,
                                   bt->offset + (int64_t)w * k->B * bt->strides[0] + (e ? e->offset : 0), out);
}

/* Worker w: blocks w, w + workers, ...; each through every step of the chain. */
static xcs_status chain_worker(void *ctx, int w) {
    const chain_run *k = ctx;
    const xcs_graph *g = k->c->g;
    const xcs_plan *plan = k->c->plan;
    xcs_tensor **val = k->c->val;
    xcs_status st = XCS_OK;
    for (int64_t r0 = (int64_t)w * k->B; r0 < k->R && !st; r0 += (int64_t)k->workers * k->B) {
        int64_t b = k->R - r0 < k->B ? k->R - r0 : k->B;
        for (int t = k->s; t < k->s + k->len && !st; t++) {
            const xcs_plan_group *grp = &plan->groups[plan->steps[t].group];
            xcs_tensor *ins[XCS_FUSED_MAX_IO] = {0}, *outs[XCS_FUSED_MAX_IO] = {0};
            int ni = 0, no = 0;
            for (; ni < grp->n_inputs && !st; ni++) {
                const xcs_edge *e = &g->edges[grp->input_edges[ni]];
                xcs_tensor *v;
                if (e->node >= k->first_node && e->node <= k->last_node && k->local[e->node - k->first_node])
                    st = block_rows(k, e->node, e, w, b, &ins[ni]);
                else if (!(st = edge_view(val[e->node], e, &v)))
                    st = rows_of(v, r0, b, &ins[ni]);
            }
            for (; no < grp->n_outputs && !st; no++) {
                int id = grp->output_nodes[no];
                xcs_tensor *v;
                if (k->local[id - k->first_node]) st = block_rows(k, id, NULL, w, b, &outs[no]);
                else if (!(st = xcs_tensor_view(val[id], &v))) st = rows_of(v, r0, b, &outs[no]);
            }
            if (!st) {
                xcs_fused_program p = grp->prog;
                p.shape[0] = b;
                st = k->c->be->run_fused(&p, (const xcs_tensor *const *)ins, outs);
                if (st) xcs_error_context(st, "fused group of nodes %%%d..%%%d", grp->first, grp->last);
            }
            for (int i = 0; i < ni; i++) xcs_tensor_free(ins[i]);
            for (int o = 0; o < no; o++) xcs_tensor_free(outs[o]);
        }
    }
    return st;
}

/* Runs steps [s, s + len) — a row chain (fuse.c) — block of rows by block of
 * rows (plan->chain_rows[s] each), the blocks dealt round-robin to
 * plan->chain_workers[s] workers, each running every step of the chain on
 * its block: a block's values made and used only inside the chain live in
 * the worker's block buffers and stay in its core's cache; the others are
 * written to full buffers. */
static xcs_status run_chain(const run_ctx *c, int s, int len) {
    const xcs_graph *g = c->g;
    const xcs_plan *plan = c->plan;
    chain_run k = {.c = c, .s = s, .len = len, .workers = plan->chain_workers[s],
                   .R = plan->groups[plan->steps[s].group].prog.shape[0], .B = plan->chain_rows[s],
                   .first_node = plan->groups[plan->steps[s].group].first,
                   .last_node = plan->groups[plan->steps[s + len - 1].group].last};
    xcs_status st = XCS_OK;
    bool local[XCS_FUSED_MAX_IO * 64] = {false};
    xcs_tensor *blk[XCS_FUSED_MAX_IO * 64] = {0};
    if (k.last_node - k.first_node + 1 > (int)(sizeof local / sizeof local[0]))
        return xcs_error(XCS_ERR_INTERNAL, "row chain of nodes %%%d..%%%d is too long", k.first_node, k.last_node);
    k.local = local;
    k.blk = blk;
    /* buffers: block-local ones of B rows per worker, the rest full size (in val) */
    for (int t = s; t < s + len && !st; t++) {
        const xcs_plan_group *grp = &plan->groups[plan->steps[t].group];
        for (int o = 0; o < grp->n_outputs && !st; o++) {
            int id = grp->output_nodes[o], j = id - k.first_node;
            local[j] = plan->last_step[id] < s + len;
            st = local[j] ? value_buffer(c, id, true, k.B * k.workers, &blk[j]) : value_buffer(c, id, false, 0, &c->val[id]);
        }
    }
    if (!st && c->be->parallel) st = c->be->parallel(k.workers, chain_worker, &k);
    for (int w = 0; w < k.workers && !st && !c->be->parallel; w++) st = chain_worker(&k, w);
    for (int i = 0; i <= k.last_node - k.first_node; i++) xcs_tensor_free(blk[i]);
    (void)g;
    return st;
}

/* A row chain on a device backend with a row kernel: the whole chain in one
 * pass, values read only inside it never written anywhere.  *done false
 * (XCS_OK) when the backend has no row kernel for this chain: the caller
 * runs its groups one by one. */
static xcs_status run_chain_rows(const run_ctx *c, int s, int len, bool *done) {
    const xcs_graph *g = c->g;
    const xcs_plan *plan = c->plan;
    *done = false;
    if (!c->be->run_rows || len > XCS_ROW_CHAIN_MAX) return XCS_OK;
    xcs_row_chain rc;
    memset(&rc, 0, sizeof rc);
    rc.n = len;
    int first = plan->groups[plan->steps[s].group].first, last = plan->groups[plan->steps[s + len - 1].group].last;
    int value_of[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO], node_of[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO], nv = 0;
    xcs_tensor *views[XCS_ROW_CHAIN_MAX * XCS_FUSED_MAX_IO];
    int n_views = 0;
    xcs_status st = XCS_OK;
    for (int t = 0; t < len && !st; t++) {
        const xcs_plan_group *grp = &plan->groups[plan->steps[s + t].group];
        rc.prog[t] = &grp->prog;
        for (int k = 0; k < grp->n_inputs && !st; k++) {
            const xcs_edge *e = &g->edges[grp->input_edges[k]];
            int v = -1;
            for (int j = 0; j < nv && e->node >= first && e->node <= last; j++)
                if (node_of[j] == e->node) v = value_of[j];
            rc.in_value[t][k] = v;
            if (v < 0 && !(st = edge_view(c->val[e->node], e, &views[n_views]))) rc.in[t][k] = views[n_views++];
        }
        for (int o = 0; o < grp->n_outputs && !st; o++) {
            int id = grp->output_nodes[o];
            node_of[nv] = id;
            value_of[nv] = nv;
            nv++;
            rc.out_dtype[t][o] = g->nodes[id].dtype;
            if (plan->last_step[id] >= s + len && !(st = value_buffer(c, id, false, 0, &c->val[id])))
                rc.out[t][o] = c->val[id]; /* read after the chain (or a graph output): written */
        }
    }
    if (!st) {
        st = c->be->run_rows(&rc);
        if (st == XCS_ERR_UNSUPPORTED) { /* no row kernel: the caller runs the groups */
            st = XCS_OK;
            for (int t = 0; t < len; t++) {
                const xcs_plan_group *grp = &plan->groups[plan->steps[s + t].group];
                for (int o = 0; o < grp->n_outputs; o++) drop_value(c, grp->output_nodes[o]);
            }
        } else {
            *done = !st;
        }
    }
    for (int i = 0; i < n_views; i++) xcs_tensor_free(views[i]);
    if (st) xcs_error_context(st, "row chain of nodes %%%d..%%%d", first, last);
    return st;
}

/* Opens a run of g: the value table and the arena, reused by every
 * xcs_run_once of the run. */
/* True when edge e reads its source's (contiguous) value whole and in order,
 * in any shape: the output's bytes are the value's. */
static bool reads_whole(const xcs_graph *g, const xcs_edge *e) {
    const xcs_node *src = &g->nodes[e->node];
    if (e->offset != 0 || shape_count(e->ndim, e->shape) != shape_count(src->ndim, src->shape)) return false;
    int64_t cs[XCS_MAX_DIMS];
    xcs_strides_contiguous(e->ndim, e->shape, cs);
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != 1 && e->strides[d] != cs[d]) return false;
    return true;
}

/* The device copies kept with optimised graph g for device `index` of its
 * constants that cannot change (trace.h: xcs_dev_consts), made by the
 * first run there, so a compiled program does not send its weights again
 * on every call.  NULL (every constant copied by each run) for a graph
 * still being built (a lazy graph: no plan) or when they cannot be made
 * now (the run then copies them itself, and reports any failure). */
static const xcs_dev_consts *device_consts(const xcs_graph *g, xcs_device dev, int index) {
    if (!g->plan || index < 0 || index >= XCS_GRAPH_DEVICE_SLOTS) return NULL;
    _Atomic(xcs_dev_consts *) *slot = (_Atomic(xcs_dev_consts *) *)&g->dev_consts[index];
    xcs_dev_consts *have = atomic_load(slot);
    if (have) return have;
    xcs_dev_consts *dc = calloc(1, sizeof *dc + ((size_t)g->n_consts + 1) * sizeof dc->t[0]);
    if (!dc) return NULL;
    xcs_status st = XCS_OK;
    dc->n = g->n_consts;
    for (int k = 0; !st && k < dc->n; k++) {
        const xcs_tensor *c = g->consts[k];
        if (c->storage && c->storage->owned && c->storage->device == XCS_DEVICE_CPU && !xcs_storage_lent(c->storage))
            st = xcs_tensor_to(c, dev, index, &dc->t[k]);
    }
    if (!st && atomic_compare_exchange_strong(slot, &have, dc)) return dc;
    for (int k = 0; k < dc->n; k++) xcs_tensor_free(dc->t[k]); /* failed, or another thread's are in */
    free(dc);
    if (st) xcs_error_clear();
    return st ? NULL : have;
}

xcs_status xcs_run_open_on(const xcs_graph *g, xcs_device dev, int index, xcs_run *r) {
    memset(r, 0, sizeof *r);
    r->g = g;
    r->dev = dev;
    r->dev_index = index;
    r->be = xcs_backend_for(dev);
    if (!r->be) return xcs_last_status();
    r->val = calloc((size_t)g->n_nodes + 1, sizeof *r->val);
    r->pool = calloc((size_t)g->n_nodes + 1, sizeof *r->pool);
    if (!r->val || !r->pool) {
        free(r->val);
        free(r->pool);
        memset(r, 0, sizeof *r);
        return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    }
    r->plan = g->plan;
    if (r->plan && !r->be->run_fused) r->plan = NULL; /* no fusion: node by node */
    if (!(r->out_of_node = malloc(((size_t)g->n_nodes + 1) * sizeof *r->out_of_node))) {
        xcs_run_close(r);
        return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    }
    for (int i = 0; i < g->n_nodes; i++) r->out_of_node[i] = -1;
    for (int k = g->n_outputs - 1; k >= 0; k--)
        if (reads_whole(g, &g->outputs[k])) r->out_of_node[g->outputs[k].node] = k;
    xcs_status st = XCS_OK;
    if (r->plan && r->plan->arena_bytes > 0 && !(r->arena = xcs_storage_new_on((size_t)r->plan->arena_bytes, dev, index)))
        st = xcs_error_context(xcs_last_status(), "the graph's %lld bytes of intermediates",
                               (long long)r->plan->arena_bytes);
    if (!st && dev != XCS_DEVICE_CPU && !(r->mirror = calloc((size_t)g->n_nodes + 1, sizeof *r->mirror)))
        st = xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    if (!st && dev != XCS_DEVICE_CPU && g->n_consts > 0) { /* the constants there: kept copies, or copied now */
        const xcs_dev_consts *kept = device_consts(g, dev, index);
        if (!(r->consts = calloc((size_t)g->n_consts, sizeof *r->consts)))
            st = xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
        for (int k = 0; !st && k < g->n_consts; k++)
            st = kept && k < kept->n && kept->t[k] && !xcs_storage_lent(g->consts[k]->storage) /* lent since */
                     ? xcs_tensor_view(kept->t[k], &r->consts[k])
                     : xcs_tensor_to(g->consts[k], dev, index, &r->consts[k]);
    }
    if (st) xcs_run_close(r);
    return st;
}

xcs_status xcs_run_open(const xcs_graph *g, xcs_run *r) { return xcs_run_open_on(g, XCS_DEVICE_CPU, 0, r); }

xcs_status xcs_run_keep_plans(xcs_run *r) {
    if (!r->plan || r->hdrs || r->plan->n_groups == 0) return XCS_OK;
    r->hdrs = calloc((size_t)r->plan->n_groups, sizeof *r->hdrs);
    if (r->hdrs && r->be->fused_cache_free && !(r->kept = calloc((size_t)r->plan->n_groups, sizeof *r->kept))) {
        free(r->hdrs);
        r->hdrs = NULL;
    }
    return r->hdrs ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
}

static void replay_free(struct run_replay *rp);

void xcs_run_close(xcs_run *r) {
    for (int i = 0; r->kept && i < r->plan->n_groups; i++) r->be->fused_cache_free(r->kept[i]);
    free(r->kept);
    free(r->hdrs);
    replay_free(r->replay);
    if (r->val)
        for (int i = 0; i < r->g->n_nodes; i++)
            if (!pooled(r->pool, r->g->n_nodes, r->val[i])) xcs_tensor_free(r->val[i]);
    free(r->val);
    free(r->pool);
    free(r->out_of_node);
    if (r->consts)
        for (int k = 0; k < r->g->n_consts; k++) xcs_tensor_free(r->consts[k]);
    free(r->consts);
    if (r->mirror)
        for (int i = 0; i < r->g->n_nodes; i++) xcs_tensor_free(r->mirror[i]);
    free(r->mirror);
    xcs_storage_release(r->arena);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- replay
 *
 * A kept run (a loop) whose step went entirely through fused groups, with
 * every input read in place and every output written into its
 * destination, records where each node's value lives: in an input, in an
 * output's destination, or at a fixed place (the arena, a constant).  A
 * later step whose inputs and destinations have the recorded layouts is
 * then replayed: the values' headers are moved onto this step's memory
 * and the groups' kernels called in order, without the interpreter's
 * per-node work (signature and contiguity checks, slot choice, drops).
 * Anything else runs the interpreter, which records again. */
enum { LOC_INPUT, LOC_DEST, LOC_FIXED };

typedef struct replay_loc {
    int kind, idx;       /* LOC_INPUT: graph input idx; LOC_DEST: output idx */
    xcs_storage *storage; /* LOC_FIXED */
    int64_t offset;
} replay_loc;

typedef struct run_replay {
    bool on;              /* recorded, and the plan allows it */
    bool never;           /* the plan does not allow it (row chains, unfused nodes) */
    replay_loc *loc;      /* per node whose value a group or an input makes */
    xcs_layout *in;    /* per graph input: the recorded layout */
    xcs_layout *dest;  /* per output: the recorded destination layout (dest_used) */
    bool *dest_used;
} run_replay;

static void replay_free(run_replay *rp) {
    if (!rp) return;
    free(rp->loc);
    free(rp->in);
    free(rp->dest);
    free(rp->dest_used);
    free(rp);
}

/* Node id's value (pooled) as a location; false when it is none of them. */
static bool locate(const xcs_run *r, int id, replay_loc *l, run_replay *rp) {
    const xcs_tensor *v = r->val[id];
    if (!pooled(r->pool, r->g->n_nodes, v) || v != &r->pool[id]) return false;
    int k = r->out_of_node[id];
    const xcs_tensor *d = k >= 0 && r->dest ? r->dest[k] : NULL;
    if (d && v->storage == d->storage && v->offset == d->offset) {
        *l = (replay_loc){.kind = LOC_DEST, .idx = k};
        rp->dest_used[k] = true;
        xcs_layout_of(d, &rp->dest[k]);
        return true;
    }
    if (!r->arena || v->storage != r->arena) return false;
    *l = (replay_loc){.kind = LOC_FIXED, .storage = v->storage, .offset = v->offset};
    return true;
}

/* After a successful interpreted step (values still set, outputs made):
 * records it when it can be replayed. */
static void replay_record(xcs_run *r, const xcs_tensor *const *inputs, xcs_tensor *const *outs) {
    const xcs_graph *g = r->g;
    const xcs_plan *plan = r->plan;
    if (!r->hdrs || !plan || r->dev != XCS_DEVICE_CPU) return;
    run_replay *rp = r->replay;
    if (!rp) {
        if (!(rp = r->replay = calloc(1, sizeof *rp))) return; /* (an optimisation: no error) */
        rp->loc = calloc((size_t)g->n_nodes + 1, sizeof *rp->loc);
        rp->in = calloc((size_t)g->n_inputs + 1, sizeof *rp->in);
        rp->dest = calloc((size_t)g->n_outputs + 1, sizeof *rp->dest);
        rp->dest_used = calloc((size_t)g->n_outputs + 1, sizeof *rp->dest_used);
        if (!rp->loc || !rp->in || !rp->dest || !rp->dest_used) rp->never = true;
        for (int s = 0; s < plan->n_steps && !rp->never; s++) {
            const xcs_plan_step *step = &plan->steps[s];
            if (plan->chain[s] > 1) rp->never = true;
            else if (step->group < 0 && g->nodes[step->node].op != XCS_NODE_INPUT &&
                     g->nodes[step->node].op != XCS_NODE_CONST)
                rp->never = true;
            else if (step->group >= 0 && !r->kept)
                rp->never = true;
        }
    }
    rp->on = false;
    if (rp->never) return;
    for (int k = 0; k < g->n_outputs; k++) {
        if (outs[k]) return; /* an output not written in place */
        rp->dest_used[k] = false;
    }
    for (int s = 0; s < plan->n_steps; s++) {
        const xcs_plan_step *step = &plan->steps[s];
        if (step->group < 0) {
            const xcs_node *n = &g->nodes[step->node];
            if (n->op == XCS_NODE_CONST) continue;
            if (r->val[step->node] != &r->pool[step->node]) return; /* not read in place */
            rp->loc[step->node] = (replay_loc){.kind = LOC_INPUT, .idx = n->aux};
            continue;
        }
        const xcs_plan_group *grp = &plan->groups[step->group];
        if (!r->hdrs[step->group].ready) return;
        for (int o = 0; o < grp->n_outputs; o++)
            if (!locate(r, grp->output_nodes[o], &rp->loc[grp->output_nodes[o]], rp)) return;
        if (grp->matmul && grp->prod_out < 0 && !locate(r, grp->first, &rp->loc[grp->first], rp)) return;
    }
    for (int a = 0; a < g->n_inputs; a++) xcs_layout_of(inputs[a], &rp->in[a]);
    rp->on = true;
}

/* True when this step's inputs and destinations have the recorded layouts. */
static bool replay_fits(const xcs_run *r, const xcs_tensor *const *inputs) {
    const run_replay *rp = r->replay;
    if (!rp || !rp->on) return false;
    for (int a = 0; a < r->g->n_inputs; a++) {
        const xcs_tensor *x = inputs[a];
        if (!xcs_layout_is(&rp->in[a], x) || x->graph || x->storage->device != XCS_DEVICE_CPU) return false;
    }
    for (int k = 0; k < r->g->n_outputs; k++)
        if (rp->dest_used[k] && (!r->dest || !xcs_layout_is(&rp->dest[k], r->dest[k]))) return false;
    return true;
}

/* Node id's pooled header moved to where the recorded step put its value. */
static void replay_place(const xcs_run *r, int id, const xcs_tensor *const *inputs) {
    const replay_loc *l = &r->replay->loc[id];
    const xcs_tensor *from = l->kind == LOC_INPUT ? inputs[l->idx] : l->kind == LOC_DEST ? r->dest[l->idx] : NULL;
    r->pool[id].storage = from ? from->storage : l->storage;
    r->pool[id].offset = from ? from->offset : l->offset;
    r->val[id] = &r->pool[id];
}

static xcs_status replay_step(xcs_run *r, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    const xcs_graph *g = r->g;
    const xcs_plan *plan = r->plan;
    run_ctx c = run_ctx_of(r);
    xcs_status st = XCS_OK;
    for (int s = 0; s < plan->n_steps && !st; s++) {
        const xcs_plan_step *step = &plan->steps[s];
        if (step->group < 0) {
            if (g->nodes[step->node].op == XCS_NODE_INPUT) replay_place(r, step->node, inputs);
            else r->val[step->node] = &r->pool[step->node]; /* a constant: its header stands */
            continue;
        }
        const xcs_plan_group *grp = &plan->groups[step->group];
        group_hdrs *gh = &r->hdrs[step->group];
        xcs_tensor *ins[XCS_FUSED_MAX_IO], *os[XCS_FUSED_MAX_IO], prod_in_out, *prod = NULL;
        for (int o = 0; o < grp->n_outputs; o++) {
            replay_place(r, grp->output_nodes[o], inputs);
            os[o] = r->val[grp->output_nodes[o]];
        }
        if (grp->matmul && grp->prod_out >= 0) {
            xcs_header_copy(&prod_in_out, os[grp->prod_out]);
            prod = &prod_in_out;
        } else if (grp->matmul) {
            replay_place(r, grp->first, inputs);
            prod = r->val[grp->first];
        }
        group_inputs(&c, grp, prod, false, gh->in, ins);
        st = group_kernels(&c, grp, prod, ins, os, gh);
        if (st) xcs_error_context(st, "fused group of nodes %%%d..%%%d", grp->first, grp->last);
    }
    r->replayed++;
    for (int k = 0; k < g->n_outputs; k++) outs[k] = NULL; /* all written in place */
    for (int i = 0; i < g->n_nodes; i++) r->val[i] = NULL; /* (every value is pooled) */
    return st;
}

xcs_status xcs_run_once(xcs_run *r, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    if (r->replay && replay_fits(r, inputs)) return replay_step(r, inputs, outs);
    const xcs_graph *g = r->g;
    xcs_tensor **val = r->val;
    run_ctx c = run_ctx_of(r);
    const xcs_plan *plan = c.plan;
    xcs_status st = XCS_OK;
    if (plan) {
        for (int s = 0; s < plan->n_steps && !st; s++) {
            const xcs_plan_step *step = &plan->steps[s];
            /* row chains keep blocks in a core's cache: the CPU's; a device
             * runs the chain's groups one after another */
            int done = plan->chain[s] > 1 ? plan->chain[s] : 1;
            bool rows_done = false;
            if (done > 1 && c.dev != XCS_DEVICE_CPU && !(st = run_chain_rows(&c, s, done, &rows_done)) && !rows_done)
                done = 1; /* no row kernel for it: group by group */
            if (!st && !rows_done)
                st = done > 1 ? run_chain(&c, s, done)
                     : step->group < 0 ? run_one(&c, step->node, inputs) : run_group(&c, &plan->groups[step->group]);
            /* drop values no later step reads (an owned buffer goes back to
             * the allocator; an arena slice is free for the plan's next use);
             * a kept run's step drops them at its end, so that the step can
             * be recorded for replay with every value still in place */
            for (int t = s; t < s + done && !st && !r->hdrs; t++)
                for (int k = plan->free_start[t]; k < plan->free_start[t + 1]; k++) drop_value(&c, plan->free_nodes[k]);
            s += done - 1;
        }
    } else {
        for (int i = 0; i < g->n_nodes && !st; i++) st = run_one(&c, i, inputs);
    }
    int made_out = 0;
    for (; made_out < g->n_outputs && !st; made_out++) {
        const xcs_edge *e = &g->outputs[made_out];
        xcs_tensor *v;
        if (r->dest && r->dest[made_out] && val[e->node] && val[e->node]->storage == r->dest[made_out]->storage &&
            val[e->node]->offset == r->dest[made_out]->offset && r->out_of_node[e->node] == made_out) {
            outs[made_out] = NULL; /* already in the caller's buffer */
            continue;
        }
        if ((st = edge_view(val[e->node], e, &v))) break;
        v->flags = 0;
        outs[made_out] = v;
    }
    if (st)
        for (int j = 0; j < made_out; j++) { xcs_tensor_free(outs[j]); outs[j] = NULL; }
    if (!st && r->hdrs) replay_record(r, inputs, outs);
    else if (r->replay) r->replay->on = false;
    for (int i = 0; i < g->n_nodes; i++) drop_value(&c, i);
    return st;
}

xcs_status xcs_graph_run(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    return xcs_graph_run_on(g, XCS_DEVICE_CPU, 0, n_in, inputs, outs);
}

xcs_status xcs_graph_run_on(const xcs_graph *g, xcs_device dev, int index, int n_in, const xcs_tensor *const *inputs,
                            xcs_tensor **outs) {
    if (n_in != g->n_inputs)
        return xcs_error(XCS_ERR_VALUE, "graph takes %d inputs, got %d", g->n_inputs, n_in);
    xcs_run r;
    xcs_status st = xcs_run_open_on(g, dev, index, &r);
    if (!st) st = xcs_run_once(&r, inputs, outs);
    xcs_run_close(&r);
    return st;
}
