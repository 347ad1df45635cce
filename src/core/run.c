/* run.c — the graph interpreter: replays each node through the eager op
 * that traced it, so a graph computes exactly what the eager code computes
 * (same promotion, same kernels).  Fusion replaces runs of nodes with fused
 * programs on top of this. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

/* A view of value v (contiguous, of node shape) through edge e. */
static xcs_status edge_view(const xcs_tensor *v, const xcs_edge *e, xcs_tensor **out) {
    int64_t strides[XCS_MAX_DIMS];
    for (int i = 0; i < e->ndim; i++) strides[i] = e->strides[i];
    xcs_status st = xcs_tensor_from_storage(v->storage, v->dtype, e->ndim, e->shape, strides,
                                            v->offset + e->offset, out);
    if (!st) (*out)->flags = e->flags;
    return st;
}

static xcs_status run_node(const xcs_graph *g, const xcs_node *n, xcs_tensor *const *in, xcs_tensor **out) {
    switch (xcs_op_get_info(n->op)->kind) {
    case XCS_KIND_UNARY: return xcs_unary(n->op, in[0], out);
    case XCS_KIND_BINARY: return xcs_binary(n->op, in[0], in[1], out);
    case XCS_KIND_TERNARY: return xcs_where(in[0], in[1], in[2], out);
    case XCS_KIND_CAST: return xcs_cast(in[0], n->dtype, out);
    case XCS_KIND_COPY: return xcs_copy(in[0], out);
    case XCS_KIND_REDUCE: return xcs_reduce(n->op, in[0], n->axes, true, out);
    case XCS_KIND_ARGREDUCE: return xcs_argreduce(n->op, in[0], n->axis, true, out);
    case XCS_KIND_MATMUL: return xcs_matmul(in[0], in[1], out);
    case XCS_KIND_TAKE: return xcs_take(in[0], in[1], n->axis, out);
    case XCS_KIND_CONCAT: return xcs_concat(n->n_in, (const xcs_tensor *const *)in, n->axis, out);
    default: break;
    }
    (void)g;
    return xcs_error(XCS_ERR_INTERNAL, "graph node %s cannot be replayed", xcs_op_name(n->op));
}

static bool same_signature(const xcs_node *n, const xcs_tensor *x) {
    if (n->dtype != x->dtype || n->ndim != x->ndim) return false;
    for (int i = 0; i < n->ndim; i++)
        if (n->shape[i] != x->shape[i]) return false;
    return true;
}

xcs_status xcs_graph_run(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    char want[160], got[160];
    if (n_in != g->n_inputs)
        return xcs_error(XCS_ERR_VALUE, "graph takes %d inputs, got %d", g->n_inputs, n_in);
    xcs_tensor **val = calloc((size_t)g->n_nodes + 1, sizeof *val);
    if (!val) return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    xcs_status st = XCS_OK;
    int made_out = 0;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const xcs_node *n = &g->nodes[i];
        if (n->op == XCS_NODE_INPUT) {
            const xcs_tensor *x = inputs[n->aux];
            if (x->graph) { st = xcs_error(XCS_ERR_VALUE, "graph input %d is itself traced", n->aux); break; }
            if (!same_signature(n, x)) {
                st = xcs_error(XCS_ERR_SHAPE, "argument %d: traced as %s%s, called with %s%s", n->aux,
                               xcs_dtype_name(n->dtype), xcs_shape_str(n->ndim, n->shape, want, sizeof want),
                               xcs_dtype_name(x->dtype), xcs_shape_str(x->ndim, x->shape, got, sizeof got));
                break;
            }
            st = xcs_contiguous(x, &val[i]);
            continue;
        }
        if (n->op == XCS_NODE_CONST) {
            st = xcs_tensor_view(g->consts[n->aux], &val[i]);
            continue;
        }
        xcs_tensor *in[XCS_MAX_DIMS * 8] = {0};
        xcs_tensor **ins = n->n_in <= (int)(sizeof in / sizeof in[0]) ? in : calloc((size_t)n->n_in, sizeof *ins);
        if (!ins) { st = xcs_error(XCS_ERR_MEMORY, "out of memory running a graph"); break; }
        int k = 0;
        for (; k < n->n_in && !st; k++) {
            const xcs_edge *e = &g->edges[n->first_edge + k];
            st = edge_view(val[e->node], e, &ins[k]);
        }
        if (!st) st = run_node(g, n, ins, &val[i]);
        if (st) xcs_error_context(st, "graph node %%%d (%s)", i, xcs_op_name(n->op));
        for (int j = 0; j < k; j++) xcs_tensor_free(ins[j]);
        if (ins != in) free(ins);
    }
    for (; made_out < g->n_outputs && !st; made_out++) {
        const xcs_edge *e = &g->outputs[made_out];
        xcs_tensor *v;
        if ((st = edge_view(val[e->node], e, &v))) break;
        v->flags = 0;
        outs[made_out] = v;
    }
    if (st)
        for (int j = 0; j < made_out; j++) { xcs_tensor_free(outs[j]); outs[j] = NULL; }
    for (int i = 0; i < g->n_nodes; i++) xcs_tensor_free(val[i]);
    free(val);
    return st;
}
