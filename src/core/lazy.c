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

xcs_status xcs_graph_concretize(xcs_graph *g, xcs_tensor *t) {
    return xcs_graph_concretize_on(g, t, XCS_DEVICE_CPU, 0);
}

xcs_status xcs_lazy_to_host(xcs_tensor **v) {
    if (xcs_tensor_on_host(*v)) return XCS_OK;
    xcs_tensor *h = NULL; /* computed on a device: the value is kept on the host */
    xcs_status st = xcs_tensor_to(*v, XCS_DEVICE_CPU, 0, &h);
    xcs_tensor_free(*v);
    *v = h;
    return st;
}

xcs_status xcs_lazy_settle(xcs_graph *g, int32_t node, const xcs_tensor *v) {
    xcs_tensor *keep = NULL;
    xcs_status st = xcs_graph_grow_consts(g);
    if (!st) st = xcs_tensor_view(v, &keep);
    if (st) return st;
    xcs_node *n = &g->nodes[node];
    n->op = XCS_NODE_CONST;
    n->n_in = 0;
    n->aux = g->n_consts;
    g->consts[g->n_consts++] = keep;
    return XCS_OK;
}

void xcs_lazy_adopt(xcs_graph *g, xcs_tensor *t) {
    /* t reads the node's value through its own view (offset and strides are
     * relative to that contiguous value, or to the compact constant) */
    const xcs_tensor *v = g->consts[g->nodes[t->node].aux];
    xcs_storage_retain(v->storage);
    t->storage = v->storage;
    t->offset += v->offset;
    t->graph = NULL;
    t->node = 0;
}

xcs_status xcs_lazy_compute(xcs_graph *g, const xcs_tensor *t, xcs_device dev, int index) {
    if (t->graph != g) return xcs_error(XCS_ERR_VALUE, "concretize: the value does not belong to this graph");
    if (g->n_inputs) return xcs_error(XCS_ERR_VALUE, "concretize: a graph with inputs is run, not concretized");
    int32_t node = t->node;
    if (node < 0 || node >= g->n_nodes) return xcs_error(XCS_ERR_INTERNAL, "concretize: node %d out of range", node);
    if (g->nodes[node].op == XCS_NODE_CONST) return XCS_OK;
    xcs_op op = g->nodes[node].op;
    xcs_graph *c = NULL;
    xcs_tensor *v = NULL;
    xcs_status st = xcs_graph_clone(g, 1, &node, &c);
    if (!st) st = xcs_graph_optimize(c);
    if (!st) st = xcs_graph_run_on(c, dev, index, 0, NULL, &v);
    xcs_graph_free(c);
    if (!st) st = xcs_lazy_to_host(&v);
    if (!st) st = xcs_lazy_settle(g, node, v); /* so nothing upstream is computed twice */
    xcs_tensor_free(v);
    if (st) return xcs_error_context(st, "computing a lazy value (%s of node %%%d)", xcs_op_name(op), (int)node);
    return XCS_OK;
}

xcs_status xcs_graph_concretize_on(xcs_graph *g, xcs_tensor *t, xcs_device dev, int index) {
    xcs_status st = xcs_lazy_compute(g, t, dev, index);
    if (!st) xcs_lazy_adopt(g, t);
    return st;
}

xcs_status xcs_graph_lazy_value(xcs_graph *g, const xcs_tensor *t, xcs_device dev, int index, xcs_tensor **out) {
    xcs_tensor *c = calloc(1, sizeof *c);
    if (!c) return xcs_error(XCS_ERR_MEMORY, "out of memory allocating a tensor header");
    xcs_status st = xcs_lazy_compute(g, t, dev, index);
    if (st) {
        free(c);
        return st;
    }
    *c = *t;
    xcs_lazy_adopt(g, c);
    *out = c;
    return XCS_OK;
}
