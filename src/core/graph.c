/* graph.c — building graphs: inputs, constants, traced nodes, outputs. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

xcs_status xcs_graph_new(xcs_graph **out) {
    *out = calloc(1, sizeof **out);
    return *out ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory allocating a graph");
}

void xcs_graph_set_parent(xcs_graph *g, const xcs_graph *parent) { g->parent = parent; }

void xcs_graph_free(xcs_graph *g) {
    if (!g) return;
    xcs_plan_free(g->plan);
    for (int i = 0; i < g->n_captured; i++) xcs_tensor_free(g->captured[i]);
    free(g->captured);
    for (int i = 0; i < g->n_consts; i++) xcs_tensor_free(g->consts[i]);
    free(g->consts);
    for (int i = 0; i < g->cap_const_index; i++) xcs_tensor_free(g->const_index[i].src);
    for (int d = 0; d < XCS_GRAPH_DEVICE_SLOTS; d++) {
        xcs_dev_consts *dc = atomic_load(&g->dev_consts[d]);
        for (int k = 0; dc && k < dc->n; k++) xcs_tensor_free(dc->t[k]);
        free(dc);
    }
    free(g->const_index);
    for (int i = 0; i < g->n_scans; i++) xcs_scan_node_release(g->scans[i]);
    free(g->scans);
    free(g->nodes);
    free(g->edges);
    free(g->outputs);
    free(g);
}

xcs_status xcs_graph_clone(const xcs_graph *g, int n_out, const int32_t *out_nodes, xcs_graph **out) {
    xcs_graph *c = NULL;
    xcs_status st = xcs_graph_new(&c);
    if (st) return st;
    int no = out_nodes ? n_out : g->n_outputs;
    c->nodes = malloc(((size_t)g->n_nodes + 1) * sizeof *c->nodes);
    c->edges = malloc(((size_t)g->n_edges + 1) * sizeof *c->edges);
    c->consts = calloc((size_t)g->n_consts + 1, sizeof *c->consts);
    c->outputs = calloc((size_t)no + 1, sizeof *c->outputs);
    c->scans = calloc((size_t)g->n_scans + 1, sizeof *c->scans);
    if (!c->nodes || !c->edges || !c->consts || !c->outputs || !c->scans) {
        xcs_graph_free(c);
        return xcs_error(XCS_ERR_MEMORY, "out of memory copying a graph");
    }
    memcpy(c->nodes, g->nodes, (size_t)g->n_nodes * sizeof *c->nodes);
    memcpy(c->edges, g->edges, (size_t)g->n_edges * sizeof *c->edges);
    c->n_nodes = c->cap_nodes = g->n_nodes;
    c->n_edges = c->cap_edges = g->n_edges;
    c->cap_consts = g->n_consts + 1;
    for (int i = 0; i < g->n_consts && !st; i++) {
        st = xcs_tensor_view(g->consts[i], &c->consts[i]);
        if (!st) c->n_consts = i + 1;
    }
    for (int i = 0; i < g->n_scans; i++) {
        atomic_fetch_add(&g->scans[i]->refs, 1);
        c->scans[c->n_scans++] = g->scans[i];
    }
    c->cap_scans = g->n_scans + 1;
    c->n_inputs = g->n_inputs; /* captured values (a parent's) are plain inputs of the copy */
    c->cap_outputs = no + 1;
    c->n_outputs = no;
    for (int o = 0; o < no; o++) {
        xcs_edge *e = &c->outputs[o];
        if (!out_nodes) {
            *e = g->outputs[o];
            continue;
        }
        const xcs_node *n = &g->nodes[out_nodes[o]];
        memset(e, 0, sizeof *e);
        e->node = out_nodes[o];
        e->ndim = n->ndim;
        memcpy(e->shape, n->shape, sizeof e->shape);
        xcs_strides_contiguous(n->ndim, n->shape, e->strides);
    }
    if (st) {
        xcs_graph_free(c);
        return st;
    }
    *out = c;
    return XCS_OK;
}

int xcs_graph_num_nodes(const xcs_graph *g) { return g->n_nodes; }
int xcs_graph_num_inputs(const xcs_graph *g) { return g->n_inputs; }
int xcs_graph_num_outputs(const xcs_graph *g) { return g->n_outputs; }
int xcs_graph_num_groups(const xcs_graph *g) { return g->plan ? g->plan->n_groups : 0; }

const xcs_fused_program *xcs_graph_group(const xcs_graph *g, int k, xcs_dtype *in_dtypes, xcs_dtype *out_dtypes,
                                         bool *matmul) {
    if (!g->plan || k < 0 || k >= g->plan->n_groups) return NULL;
    const xcs_plan_group *grp = &g->plan->groups[k];
    for (int i = 0; i < grp->n_inputs; i++) {
        int e = grp->input_edges[i];
        in_dtypes[i] = g->nodes[e < 0 ? grp->first : g->edges[e].node].dtype; /* -1: the matmul's product */
    }
    for (int o = 0; o < grp->n_outputs; o++) out_dtypes[o] = g->nodes[grp->output_nodes[o]].dtype;
    if (matmul) *matmul = grp->matmul;
    return &grp->prog;
}

void xcs_graph_memory_get(const xcs_graph *g, xcs_graph_memory *out) {
    const xcs_plan *p = g->plan;
    *out = (xcs_graph_memory){p ? p->n_planned : 0, p ? p->arena_bytes : 0, p ? p->planned_bytes : 0};
}

int xcs_graph_num_steps(const xcs_graph *g) {
    if (!g->plan) return 0;
    int n = 0; /* inputs and constants launch nothing; a scan's outputs are one loop */
    bool *seen = g->n_scans ? calloc((size_t)g->n_scans, sizeof *seen) : NULL;
    for (int s = 0; s < g->plan->n_steps; s++) {
        const xcs_plan_step *st = &g->plan->steps[s];
        const xcs_node *nd = &g->nodes[st->node];
        if (st->group < 0 && nd->op == XCS_OP_SCAN && seen) {
            n += !seen[nd->aux];
            seen[nd->aux] = true;
            continue;
        }
        n += st->group >= 0 || (nd->op != XCS_NODE_INPUT && nd->op != XCS_NODE_CONST);
    }
    free(seen);
    return n;
}

/* Grows *arr (of *cap elements of size sz) to hold n+1. */
static xcs_status grow(void **arr, int *cap, int n, size_t sz) {
    if (n < *cap) return XCS_OK;
    int nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * sz);
    if (!p) return xcs_error(XCS_ERR_MEMORY, "out of memory growing a graph");
    *arr = p;
    *cap = nc;
    return XCS_OK;
}

static xcs_status add_node(xcs_graph *g, const xcs_node *n, int32_t *id) {
    xcs_plan_free(g->plan); /* the graph changes: any plan is stale */
    g->plan = NULL;
    xcs_status st = grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes, sizeof *g->nodes);
    if (st) return st;
    g->nodes[g->n_nodes] = *n;
    *id = g->n_nodes++;
    return XCS_OK;
}

/* A contiguous traced tensor over node `id`. */
static xcs_status traced_view(xcs_graph *g, int32_t id, xcs_tensor **out) {
    const xcs_node *n = &g->nodes[id];
    xcs_tensor *t = calloc(1, sizeof *t);
    if (!t) return xcs_error(XCS_ERR_MEMORY, "out of memory allocating a tensor header");
    t->graph = g;
    t->node = id;
    t->dtype = n->dtype;
    t->ndim = n->ndim;
    memcpy(t->shape, n->shape, sizeof t->shape);
    xcs_strides_contiguous(n->ndim, n->shape, t->strides);
    *out = t;
    return XCS_OK;
}

xcs_status xcs_graph_input(xcs_graph *g, xcs_dtype dt, int ndim, const int64_t *shape, xcs_tensor **out) {
    int64_t numel;
    xcs_status st;
    if (ndim < 0 || ndim > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "graph input: bad ndim %d", ndim);
    if ((st = xcs_shape_numel(ndim, shape, xcs_dtype_size(dt), &numel))) return st;
    xcs_node n = {.op = XCS_NODE_INPUT, .dtype = dt, .compute = dt, .ndim = ndim, .aux = g->n_inputs};
    if (ndim) memcpy(n.shape, shape, (size_t)ndim * sizeof *shape); /* a 0-d input may pass no shape */
    int32_t id;
    if ((st = add_node(g, &n, &id))) return st;
    g->n_inputs++;
    return traced_view(g, id, out);
}

static size_t const_slot(const xcs_graph *g, const void *data) {
    uint64_t h = (uint64_t)(uintptr_t)data * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (size_t)(g->cap_const_index - 1);
}

/* The array entry e's constant was made from: its source view, or the
 * constant itself; NULL when the node is no constant (any more). */
static const xcs_tensor *const_origin(const xcs_graph *g, const xcs_const_slot *e) {
    if (e->src) return e->src;
    int32_t i = e->node;
    if (i < 0 || i >= g->n_nodes || g->nodes[i].op != XCS_NODE_CONST || g->nodes[i].aux >= g->n_consts) return NULL;
    const xcs_tensor *k = g->consts[g->nodes[i].aux];
    return k->storage ? k : NULL;
}

/* Notes e in g->const_index (taking its src); a table that cannot grow
 * only costs later reuse, never the trace. */
static void const_index_add(xcs_graph *g, xcs_const_slot e) {
    const xcs_tensor *o = const_origin(g, &e);
    if (!o) {
        xcs_tensor_free(e.src);
        return;
    }
    if (2 * (g->n_const_index + 1) > g->cap_const_index) {
        int cap = g->cap_const_index ? 2 * g->cap_const_index : 64, old_cap = g->cap_const_index;
        xcs_const_slot *t = malloc((size_t)cap * sizeof *t), *old = g->const_index;
        if (!t) {
            xcs_tensor_free(e.src);
            return;
        }
        for (int i = 0; i < cap; i++) t[i] = (xcs_const_slot){-1, NULL};
        g->const_index = t;
        g->cap_const_index = cap;
        g->n_const_index = 0;
        for (int i = 0; i < old_cap; i++)
            if (old[i].node >= 0) const_index_add(g, old[i]);
        free(old);
    }
    size_t s = const_slot(g, o->storage->data);
    while (g->const_index[s].node >= 0) s = (s + 1) & (size_t)(g->cap_const_index - 1);
    g->const_index[s] = e;
    g->n_const_index++;
}

/* The constant node of g made from x's memory with x's view (compact: x's
 * shape with broadcast dims 1), or -1. */
static int32_t const_find(const xcs_graph *g, const xcs_tensor *x, const xcs_tensor *compact) {
    if (!g->cap_const_index) return -1;
    for (size_t s = const_slot(g, x->storage->data); g->const_index[s].node >= 0;
         s = (s + 1) & (size_t)(g->cap_const_index - 1)) {
        const xcs_const_slot *e = &g->const_index[s];
        const xcs_tensor *k = const_origin(g, e);
        if (!k || k->storage->data != x->storage->data || k->storage->nbytes != x->storage->nbytes) continue;
        if (k->dtype != x->dtype || k->ndim != x->ndim || k->offset != x->offset) continue;
        const int64_t *shape = e->src ? x->shape : compact->shape; /* a constant has the compact shape */
        bool same = true;
        for (int d = 0; d < x->ndim && same; d++) same = k->shape[d] == shape[d] && k->strides[d] == x->strides[d];
        if (same) return e->node;
    }
    return -1;
}

/* The constant node for concrete x.  Broadcast (stride-0) dims are kept at
 * size 1 in the constant, so a scalar broadcast to a big shape stays one
 * element; the edge broadcasts it again. */
static xcs_status const_edge(xcs_graph *g, const xcs_tensor *x, xcs_edge *e) {
    xcs_status st = grow((void **)&g->consts, &g->cap_consts, g->n_consts, sizeof *g->consts);
    if (st) return st;
    xcs_tensor compact = *x, *c;
    for (int i = 0; i < x->ndim; i++)
        if (x->strides[i] == 0) compact.shape[i] = 1;
    /* the same array used again (a closure weight read every step of an
     * unrolled loop; numpy arrays get a new wrapper storage per use, so the
     * memory is compared — the constant, or the view kept with its copy,
     * keeps that memory alive, so no other array can have it meanwhile):
     * one constant node, another edge */
    bool big = x->storage && x->storage->nbytes >= 64;
    int32_t found = big ? const_find(g, x, &compact) : -1;
    if (found >= 0) {
        e->node = found;
    } else {
        if ((st = xcs_contiguous(&compact, &c))) return st;
        c->flags = 0;
        xcs_node n = {.op = XCS_NODE_CONST, .dtype = x->dtype, .compute = x->dtype, .ndim = x->ndim,
                      .aux = g->n_consts};
        memcpy(n.shape, compact.shape, sizeof n.shape);
        if ((st = add_node(g, &n, &e->node))) {
            xcs_tensor_free(c);
            return st;
        }
        g->consts[g->n_consts++] = c;
        /* a copy (of a strided view: W.T) is found again through a view of
         * its source, kept unless that holds much more memory than the copy
         * (a column of a big array) */
        xcs_tensor *src = NULL;
        bool copied = !c->storage || c->storage->data != x->storage->data;
        if (big && copied && c->storage && x->storage->nbytes <= 4 * c->storage->nbytes + 4096 &&
            xcs_tensor_view(x, &src)) {
            xcs_error_clear();
            src = NULL;
        }
        if (big && (!copied || src)) const_index_add(g, (xcs_const_slot){e->node, src});
    }
    xcs_strides_contiguous(x->ndim, compact.shape, e->strides);
    for (int d = 0; d < x->ndim; d++)
        if (x->strides[d] == 0) e->strides[d] = 0;
    return XCS_OK;
}

xcs_status xcs_graph_grow_consts(xcs_graph *g) {
    return grow((void **)&g->consts, &g->cap_consts, g->n_consts, sizeof *g->consts);
}

xcs_status xcs_graph_const(xcs_graph *g, const xcs_tensor *x, xcs_tensor **out) {
    if (x->graph) return xcs_error(XCS_ERR_VALUE, "graph constant: the value is itself traced");
    xcs_edge e;
    memset(&e, 0, sizeof e);
    xcs_status st = const_edge(g, x, &e);
    if (st) return st;
    xcs_tensor *t = calloc(1, sizeof *t);
    if (!t) return xcs_error(XCS_ERR_MEMORY, "out of memory allocating a tensor header");
    t->graph = g;
    t->node = e.node;
    t->dtype = x->dtype;
    t->ndim = x->ndim;
    t->flags = x->flags & XCS_TENSOR_WEAK;
    memcpy(t->shape, x->shape, sizeof t->shape);
    memcpy(t->strides, e.strides, sizeof t->strides); /* broadcast dims read the compact constant */
    *out = t;
    return XCS_OK;
}

static bool encloses(const xcs_graph *outer, const xcs_graph *g) {
    for (const xcs_graph *p = g->parent; p; p = p->parent)
        if (p == outer) return true;
    return false;
}

static bool same_view(const xcs_tensor *a, const xcs_tensor *b) {
    if (a->graph != b->graph || a->node != b->node || a->ndim != b->ndim || a->offset != b->offset ||
        a->dtype != b->dtype)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i] || a->strides[i] != b->strides[i]) return false;
    return true;
}

/* x, a value of an enclosing graph: the input node standing for it here. */
static xcs_status capture_edge(xcs_graph *g, const xcs_tensor *x, xcs_edge *e) {
    int k = 0;
    for (; k < g->n_captured && !same_view(g->captured[k], x); k++) {}
    int32_t id = -1;
    if (k < g->n_captured) {
        for (int32_t i = 0; i < g->n_nodes && id < 0; i++)
            if (g->nodes[i].op == XCS_NODE_INPUT && g->nodes[i].aux == g->n_inputs - g->n_captured + k) id = i;
    } else {
        xcs_status st = grow((void **)&g->captured, &g->cap_captured, g->n_captured, sizeof *g->captured);
        xcs_tensor *keep = NULL;
        if (!st) st = xcs_tensor_view(x, &keep);
        xcs_node n = {.op = XCS_NODE_INPUT, .dtype = x->dtype, .compute = x->dtype, .ndim = x->ndim,
                      .aux = g->n_inputs};
        memcpy(n.shape, x->shape, sizeof n.shape);
        if (!st) st = add_node(g, &n, &id);
        if (st) {
            xcs_tensor_free(keep);
            return st;
        }
        g->captured[g->n_captured++] = keep;
        g->n_inputs++;
    }
    e->node = id;
    xcs_strides_contiguous(x->ndim, x->shape, e->strides);
    return XCS_OK;
}

/* The edge through which a node reads x. */
static xcs_status make_edge(xcs_graph *g, const xcs_tensor *x, xcs_edge *e) {
    memset(e, 0, sizeof *e);
    e->ndim = x->ndim;
    e->flags = x->flags & XCS_TENSOR_WEAK;
    memcpy(e->shape, x->shape, sizeof e->shape);
    if (!x->graph) return const_edge(g, x, e);
    if (x->graph != g && encloses(x->graph, g)) return capture_edge(g, x, e);
    if (x->graph != g) return xcs_error(XCS_ERR_VALUE, "a traced value from another trace was used here "
                                        "(did a traced array escape its jit function?)");
    e->node = x->node;
    e->offset = x->offset;
    memcpy(e->strides, x->strides, sizeof e->strides);
    return XCS_OK;
}

bool xcs_edge_is_identity(const xcs_graph *g, const xcs_edge *e) {
    const xcs_node *src = &g->nodes[e->node];
    if (e->offset != 0 || e->ndim != src->ndim) return false;
    int64_t cs[XCS_MAX_DIMS];
    xcs_strides_contiguous(e->ndim, e->shape, cs);
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] != src->shape[i] || (e->shape[i] != 1 && e->strides[i] != cs[i])) return false;
    return true;
}

bool xcs_trace_any(int n, const xcs_tensor *const *xs, xcs_graph **g, xcs_status *st) {
    *g = NULL;
    *st = XCS_OK;
    for (int i = 0; i < n; i++) {
        xcs_graph *h = xs[i]->graph;
        if (!h || h == *g) continue;
        if (!*g || encloses(*g, h)) *g = h; /* the innermost trace records the op */
        else if (!encloses(h, *g))
            *st = xcs_error(XCS_ERR_VALUE, "values from two different traces meet in one op");
    }
    return *g != NULL;
}

xcs_status xcs_trace_node(xcs_graph *g, xcs_op op, int n, const xcs_tensor *const *in, xcs_dtype dtype,
                          xcs_dtype compute, int ndim, const int64_t *shape, unsigned axes, int axis,
                          xcs_tensor **out) {
    xcs_status st;
    int64_t numel;
    if ((st = xcs_shape_numel(ndim, shape, xcs_dtype_size(dtype), &numel))) return st;
    xcs_node node = {.op = op, .dtype = dtype, .compute = compute, .ndim = ndim, .n_in = n,
                     .first_edge = g->n_edges, .axes = axes, .axis = axis};
    memcpy(node.shape, shape, (size_t)ndim * sizeof *shape);
    for (int i = 0; i < n; i++) {
        xcs_edge e;
        if ((st = make_edge(g, in[i], &e))) return st;
        if ((st = grow((void **)&g->edges, &g->cap_edges, g->n_edges, sizeof *g->edges))) return st;
        g->edges[g->n_edges++] = e;
    }
    int32_t id;
    if ((st = add_node(g, &node, &id))) return st;
    return traced_view(g, id, out);
}

xcs_status xcs_trace_sibling(xcs_graph *g, int32_t like, xcs_dtype dtype, int ndim, const int64_t *shape, int axis,
                             xcs_tensor **out) {
    xcs_node node = g->nodes[like];
    int64_t numel;
    xcs_status st = xcs_shape_numel(ndim, shape, xcs_dtype_size(dtype), &numel);
    if (st) return st;
    node.dtype = node.compute = dtype;
    node.ndim = ndim;
    memset(node.shape, 0, sizeof node.shape);
    memcpy(node.shape, shape, (size_t)ndim * sizeof *shape);
    node.axis = axis;
    node.first_edge = g->n_edges;
    for (int k = 0; k < node.n_in; k++) {
        if ((st = grow((void **)&g->edges, &g->cap_edges, g->n_edges, sizeof *g->edges))) return st;
        g->edges[g->n_edges++] = g->edges[g->nodes[like].first_edge + k];
    }
    int32_t id;
    if ((st = add_node(g, &node, &id))) return st;
    return traced_view(g, id, out);
}

xcs_status xcs_graph_output(xcs_graph *g, const xcs_tensor *x) {
    xcs_plan_free(g->plan);
    g->plan = NULL;
    xcs_status st = grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs, sizeof *g->outputs);
    if (st) return st;
    xcs_edge e;
    if ((st = make_edge(g, x, &e))) return st;
    g->outputs[g->n_outputs++] = e;
    return XCS_OK;
}
