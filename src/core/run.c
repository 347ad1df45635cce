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

/* Computes node i into val[i] (sources bind inputs/constants). */
static xcs_status run_one(const xcs_graph *g, int i, const xcs_tensor *const *inputs, xcs_tensor **val) {
    char want[160], got[160];
    const xcs_node *n = &g->nodes[i];
    if (n->op == XCS_NODE_INPUT) {
        const xcs_tensor *x = inputs[n->aux];
        if (x->graph) return xcs_error(XCS_ERR_VALUE, "graph input %d is itself traced", n->aux);
        if (!same_signature(n, x))
            return xcs_error(XCS_ERR_SHAPE, "argument %d: traced as %s%s, called with %s%s", n->aux,
                             xcs_dtype_name(n->dtype), xcs_shape_str(n->ndim, n->shape, want, sizeof want),
                             xcs_dtype_name(x->dtype), xcs_shape_str(x->ndim, x->shape, got, sizeof got));
        return xcs_contiguous(x, &val[i]);
    }
    if (n->op == XCS_NODE_CONST) return xcs_tensor_view(g->consts[n->aux], &val[i]);
    xcs_tensor *in[64] = {0};
    xcs_tensor **ins = n->n_in <= 64 ? in : calloc((size_t)n->n_in, sizeof *ins);
    if (!ins) return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    xcs_status st = XCS_OK;
    int k = 0;
    for (; k < n->n_in && !st; k++) {
        const xcs_edge *e = &g->edges[n->first_edge + k];
        st = edge_view(val[e->node], e, &ins[k]);
    }
    if (!st) st = run_node(g, n, ins, &val[i]);
    if (st) xcs_error_context(st, "graph node %%%d (%s)", i, xcs_op_name(n->op));
    for (int j = 0; j < k; j++) xcs_tensor_free(ins[j]);
    if (ins != in) free(ins);
    return st;
}

/* Runs one fused group: its external inputs are views of earlier values,
 * its stored members get fresh buffers. */
static xcs_status run_group(const xcs_graph *g, const xcs_backend *be, const xcs_plan_group *grp, xcs_tensor **val) {
    xcs_tensor *ins[XCS_FUSED_MAX_IO] = {0}, *outs[XCS_FUSED_MAX_IO] = {0};
    xcs_status st = XCS_OK;
    int ni = 0, no = 0;
    for (; ni < grp->n_inputs && !st; ni++) {
        const xcs_edge *e = &g->edges[grp->input_edges[ni]];
        st = edge_view(val[e->node], e, &ins[ni]);
    }
    for (; no < grp->n_outputs && !st; no++) {
        const xcs_node *n = &g->nodes[grp->output_nodes[no]];
        st = xcs_tensor_empty(n->dtype, n->ndim, n->shape, &outs[no]);
    }
    int64_t numel = 1;
    for (int d = 0; d < grp->prog.ndim; d++) numel *= grp->prog.shape[d];
    bool empty_out = false;
    for (int o = 0; o < no && !st; o++) empty_out |= xcs_tensor_numel(outs[o]) == 0;
    if (!st && numel > 0) st = be->run_fused(&grp->prog, (const xcs_tensor *const *)ins, outs);
    else if (!st && numel == 0 && !empty_out) {
        /* an empty reduction: let the eager op produce its identity */
        int last = grp->last;
        st = run_one(g, last, NULL, val);
        if (!st) { xcs_tensor_free(outs[0]); outs[0] = val[last]; val[last] = NULL; }
    }
    if (st) xcs_error_context(st, "fused group of nodes %%%d..%%%d", grp->first, grp->last);
    for (int k = 0; k < ni; k++) xcs_tensor_free(ins[k]);
    for (int o = 0; o < no; o++) {
        if (st) xcs_tensor_free(outs[o]);
        else val[grp->output_nodes[o]] = outs[o];
    }
    return st;
}

xcs_status xcs_graph_run(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    if (n_in != g->n_inputs)
        return xcs_error(XCS_ERR_VALUE, "graph takes %d inputs, got %d", g->n_inputs, n_in);
    xcs_tensor **val = calloc((size_t)g->n_nodes + 1, sizeof *val);
    if (!val) return xcs_error(XCS_ERR_MEMORY, "out of memory running a graph");
    xcs_status st = XCS_OK;
    const xcs_plan *plan = g->plan;
    const xcs_backend *be = plan ? xcs_backend_for(XCS_DEVICE_CPU) : NULL;
    if (plan && (!be || !be->run_fused)) plan = NULL; /* no fusion: node by node */
    if (plan) {
        for (int s = 0; s < plan->n_steps && !st; s++) {
            const xcs_plan_step *step = &plan->steps[s];
            st = step->group < 0 ? run_one(g, step->node, inputs, val)
                                 : run_group(g, be, &plan->groups[step->group], val);
            /* drop values no later step reads: the buffers go back to malloc
             * while the rest of the graph runs */
            for (int i = 0; i < g->n_nodes && !st; i++)
                if (plan->last_step[i] == s && val[i]) { xcs_tensor_free(val[i]); val[i] = NULL; }
        }
    } else {
        for (int i = 0; i < g->n_nodes && !st; i++) st = run_one(g, i, inputs, val);
    }
    int made_out = 0;
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
