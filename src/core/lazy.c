/* lazy.c — computing one value of a graph that keeps growing
 * (xcs_graph_concretize; see xcs.h).
 *
 * The graph g itself is never optimised (its node ids are what live traced
 * tensors point at): a copy with a single output, the needed node's value,
 * is optimised (DCE keeps only what the value needs, fusion plans kernels)
 * and run.  The node then becomes a constant holding the value, so a later
 * value computed from it starts there instead of recomputing its inputs. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

static xcs_status clone_for(const xcs_graph *g, int32_t node, xcs_graph **out) {
    xcs_graph *c = NULL;
    xcs_status st = xcs_graph_new(&c);
    if (st) return st;
    c->nodes = malloc(((size_t)g->n_nodes + 1) * sizeof *c->nodes);
    c->edges = malloc(((size_t)g->n_edges + 1) * sizeof *c->edges);
    c->consts = calloc((size_t)g->n_consts + 1, sizeof *c->consts);
    c->outputs = calloc(1, sizeof *c->outputs);
    if (!c->nodes || !c->edges || !c->consts || !c->outputs) {
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
    c->n_inputs = g->n_inputs;
    c->cap_outputs = 1;
    c->n_outputs = 1;
    const xcs_node *n = &g->nodes[node];
    xcs_edge *e = &c->outputs[0];
    memset(e, 0, sizeof *e);
    e->node = node;
    e->ndim = n->ndim;
    memcpy(e->shape, n->shape, sizeof e->shape);
    xcs_strides_contiguous(n->ndim, n->shape, e->strides);
    if (st) {
        xcs_graph_free(c);
        return st;
    }
    *out = c;
    return XCS_OK;
}

xcs_status xcs_graph_concretize(xcs_graph *g, xcs_tensor *t) {
    return xcs_graph_concretize_on(g, t, XCS_DEVICE_CPU, 0);
}

xcs_status xcs_graph_concretize_on(xcs_graph *g, xcs_tensor *t, xcs_device dev, int index) {
    if (t->graph != g) return xcs_error(XCS_ERR_VALUE, "concretize: the value does not belong to this graph");
    if (g->n_inputs) return xcs_error(XCS_ERR_VALUE, "concretize: a graph with inputs is run, not concretized");
    int32_t node = t->node;
    if (node < 0 || node >= g->n_nodes) return xcs_error(XCS_ERR_INTERNAL, "concretize: node %d out of range", node);
    xcs_tensor *v = NULL;
    xcs_node *n = &g->nodes[node];
    xcs_status st = XCS_OK;
    if (n->op == XCS_NODE_CONST) {
        st = xcs_tensor_view(g->consts[n->aux], &v);
    } else {
        xcs_graph *c = NULL;
        if (!(st = clone_for(g, node, &c)) && !(st = xcs_graph_optimize(c)))
            st = xcs_graph_run_on(c, dev, index, 0, NULL, &v);
        xcs_graph_free(c);
        if (!st && !xcs_tensor_on_host(v)) { /* computed on a device: the value is kept on the host */
            xcs_tensor *h = NULL;
            st = xcs_tensor_to(v, XCS_DEVICE_CPU, 0, &h);
            xcs_tensor_free(v);
            v = h;
        }
        if (!st) { /* the node becomes a constant holding its value */
            xcs_tensor *keep = NULL;
            if (!(st = xcs_graph_grow_consts(g)) && !(st = xcs_tensor_view(v, &keep))) {
                n = &g->nodes[node];
                n->op = XCS_NODE_CONST;
                n->n_in = 0;
                n->aux = g->n_consts;
                g->consts[g->n_consts++] = keep;
            }
        }
    }
    if (st) {
        xcs_tensor_free(v);
        return xcs_error_context(st, "computing a lazy value (%s of node %%%d)", xcs_op_name(n->op), (int)node);
    }
    /* t reads the node's value through its own view (offset and strides are
     * relative to that contiguous value, or to the compact constant) */
    t->storage = v->storage;
    xcs_storage_retain(v->storage);
    t->offset += v->offset;
    t->graph = NULL;
    t->node = 0;
    xcs_tensor_free(v);
    return XCS_OK;
}
