/* scan_node.c — scan as a node of a trace.
 *
 * A jitted (or differentiated) function that calls scan records the loop as
 * one op instead of unrolling it: the trace stays the size of one step,
 * whatever the length, and the loop runs as scan's loop program (scan.c:
 * the carry-free part hoisted out as one batched program, the one-kernel
 * loop on a device).  The op has one output per carry and per y; each is
 * its own XCS_OP_SCAN node ("siblings": the same inputs and aux, axis =
 * the output), so the passes need no notion of several outputs: CSE keeps
 * them apart by axis, DCE drops the unread ones, and the run computes them
 * all when it meets the first (xcs_scan_node_run).
 *
 * The body's inputs are [carries, rows of xs, loop invariants]: the values
 * of the enclosing program the body reads (an RNN's weights) are
 * invariants, every step reading them whole.  autodiff.c's rule uses
 * xcs_scan_with_residuals (the forward loop also stacks the carry leaving
 * each step, and the carry entering it is that shifted by a step) and
 * xcs_scan_vjp_body (the reverse loop's step: the body
 * replayed on those residuals, and its VJP). */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

void xcs_scan_node_release(xcs_scan_node *d) {
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1) return;
    xcs_scan_program_free(d->prog);
    xcs_graph_free(d->body);
    free(d);
}

/* Input node k of body (NULL when missing). */
static const xcs_node *input_node(const xcs_graph *body, int k) {
    for (int i = 0; i < body->n_nodes; i++)
        if (body->nodes[i].op == XCS_NODE_INPUT && body->nodes[i].aux == k) return &body->nodes[i];
    return NULL;
}

/* Frees the n tensors of array t (NULL: none), then t. */
static void drop_all(xcs_tensor **t, int n) {
    for (int k = 0; t && k < n; k++) xcs_tensor_free(t[k]);
    free(t);
}

xcs_status xcs_scan_node_new(const xcs_graph *body, int n_carry, int n_x, int n_resid, int64_t length, bool reverse,
                             xcs_scan_node **out) {
    if (n_carry < 0 || n_x < 0 || n_carry + n_x > body->n_inputs || n_carry > body->n_outputs || length < 0 ||
        n_resid < 0 || n_resid > body->n_outputs - n_carry)
        return xcs_error(XCS_ERR_VALUE, "scan: a body of %d inputs and %d outputs with %d carries and %d xs, length %lld",
                         body->n_inputs, body->n_outputs, n_carry, n_x, (long long)length);
    for (int j = n_carry; j < body->n_outputs; j++)
        if (body->outputs[j].ndim + 1 > XCS_MAX_DIMS)
            return xcs_error(XCS_ERR_SHAPE, "scan: output y %d has %d dims; stacking needs one more (at most %d)",
                             j - n_carry, body->outputs[j].ndim, XCS_MAX_DIMS);
    xcs_status st = xcs_scan_check_carry(body, n_carry);
    if (st) return st;
    xcs_scan_node *d = calloc(1, sizeof *d);
    if (!d) return xcs_error(XCS_ERR_MEMORY, "out of memory recording a scan");
    atomic_init(&d->refs, 1);
    d->n_carry = n_carry;
    d->n_x = n_x;
    d->n_inv = body->n_inputs - n_carry - n_x; /* explicit invariants, then the values body captured */
    d->n_out = body->n_outputs;
    d->n_resid = n_resid;
    d->length = length;
    d->reverse = reverse;
    st = xcs_graph_clone(body, 0, NULL, &d->body);
    if (!st) st = xcs_scan_program_new(d->body, n_carry, d->n_inv, &d->prog);
    if (st) {
        xcs_scan_node_release(d);
        return st;
    }
    int64_t fields[5] = {n_carry, n_x, n_resid, length, reverse};
    uint64_t h = xcs_graph_hash(d->body);
    d->hash = xcs_fnv(h, fields, sizeof fields);
    *out = d;
    return XCS_OK;
}

/* Output k's dtype and shape (a y stacked over the steps). */
static xcs_dtype output_sig(const xcs_scan_node *d, int k, int *ndim, int64_t *shape) {
    const xcs_edge *e = &d->body->outputs[k];
    int y = k >= d->n_carry;
    shape[0] = d->length;
    memcpy(shape + y, e->shape, (size_t)e->ndim * sizeof *shape);
    *ndim = e->ndim + y;
    return d->body->nodes[e->node].dtype;
}

/* Input k matches the body: a carry or an invariant as the input node, an
 * xs leaf as `length` of its rows. */
static xcs_status check_input(const xcs_scan_node *d, int k, const xcs_tensor *x) {
    char want[160], got[160];
    const xcs_node *in = input_node(d->body, k);
    if (!in) return xcs_error(XCS_ERR_INTERNAL, "scan: the body has no input node %d", k);
    bool row = k >= d->n_carry && k < d->n_carry + d->n_x;
    int64_t shape[XCS_MAX_DIMS];
    shape[0] = d->length;
    memcpy(shape + row, in->shape, (size_t)in->ndim * sizeof *shape);
    int nd = in->ndim + row;
    bool ok = x->dtype == in->dtype && x->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = x->shape[i] == shape[i];
    if (ok) return XCS_OK;
    const char *what = k < d->n_carry ? "carry leaf" : row ? "xs leaf" : "loop invariant";
    int idx = k < d->n_carry ? k : row ? k - d->n_carry : k - d->n_carry - d->n_x;
    return xcs_error(row ? XCS_ERR_SHAPE : XCS_ERR_TYPE, "scan: %s %d is %s%s; the body takes %s%s", what, idx,
                     xcs_dtype_name(x->dtype), xcs_shape_str(x->ndim, x->shape, got, sizeof got),
                     xcs_dtype_name(in->dtype), xcs_shape_str(nd, shape, want, sizeof want));
}

/* The device a loop on concrete inputs runs on: the first input's that is
 * on one, else the CPU. */
static void eager_device(int n, const xcs_tensor *const *in, xcs_device *dev, int *index) {
    *dev = XCS_DEVICE_CPU;
    *index = 0;
    for (int k = 0; k < n; k++)
        if (in[k]->storage && in[k]->storage->device != XCS_DEVICE_CPU) {
            *dev = in[k]->storage->device;
            *index = in[k]->storage->device_index;
            return;
        }
}

static xcs_status add_scan(xcs_graph *g, xcs_scan_node *d, int *aux) {
    if (g->n_scans == g->cap_scans) {
        int cap = g->cap_scans ? 2 * g->cap_scans : 4;
        xcs_scan_node **p = realloc(g->scans, (size_t)cap * sizeof *p);
        if (!p) return xcs_error(XCS_ERR_MEMORY, "out of memory recording a scan");
        g->scans = p;
        g->cap_scans = cap;
    }
    atomic_fetch_add(&d->refs, 1);
    *aux = g->n_scans;
    g->scans[g->n_scans++] = d;
    return XCS_OK;
}

xcs_status xcs_scan_node_call(xcs_scan_node *d, int n_in, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    if (n_in != d->n_carry + d->n_x + d->n_inv)
        return xcs_error(XCS_ERR_VALUE, "scan: the body takes %d inputs, got %d", d->n_carry + d->n_x + d->n_inv, n_in);
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_in && !st; k++) st = check_input(d, k, inputs[k]);
    xcs_graph *g = NULL;
    if (!st && !xcs_trace_any(n_in, inputs, &g, &st)) { /* nothing traced: the loop runs now */
        xcs_device dev;
        int index;
        eager_device(n_in, inputs, &dev, &index);
        return st ? st : xcs_scan_program_run_on(d->prog, d->length, d->reverse, n_in, inputs, outs, dev, index);
    }
    int aux = -1, made = 0;
    if (!st) st = add_scan(g, d, &aux);
    for (; made < d->n_out && !st; made++) {
        int64_t shape[XCS_MAX_DIMS];
        int nd = 0;
        xcs_dtype dt = output_sig(d, made, &nd, shape);
        if (made == 0) {
            st = xcs_trace_node(g, XCS_OP_SCAN, n_in, inputs, dt, dt, nd, shape, 0, 0, &outs[0]);
            if (!st) g->nodes[outs[0]->node].aux = aux;
        } else {
            st = xcs_trace_sibling(g, outs[0]->node, dt, nd, shape, made, &outs[made]);
        }
        if (st) break;
    }
    if (st)
        for (int k = 0; k < made; k++) {
            xcs_tensor_free(outs[k]);
            outs[k] = NULL;
        }
    return st;
}

xcs_status xcs_scan_node_run(const xcs_graph *g, int i, xcs_tensor *const *ins, xcs_device dev, int index,
                             xcs_tensor **vals) {
    const xcs_node *n = &g->nodes[i];
    const xcs_scan_node *d = g->scans[n->aux];
    xcs_tensor **outs = calloc((size_t)d->n_out + 1, sizeof *outs);
    if (!outs) return xcs_error(XCS_ERR_MEMORY, "out of memory running a scan");
    xcs_status st = xcs_scan_program_run_on(d->prog, d->length, d->reverse, n->n_in, (const xcs_tensor *const *)ins,
                                            outs, dev, index);
    for (int j = i; j < g->n_nodes && !st; j++) { /* node values are contiguous in the node's shape */
        const xcs_node *m = &g->nodes[j];
        if (m->op != XCS_OP_SCAN || m->aux != n->aux || vals[j]) continue;
        xcs_tensor *v = outs[m->axis];
        if (v && xcs_tensor_is_contiguous(v)) st = xcs_tensor_view(v, &vals[j]);
        else if (v) st = xcs_contiguous(v, &vals[j]);
        else st = xcs_error(XCS_ERR_INTERNAL, "scan: node %%%d stands for output %d of %d", j, m->axis, d->n_out);
    }
    drop_all(outs, d->n_out);
    return st;
}

/* ---------------------------------------------------------------- inline */

/* v (contiguous in its shape) read through edge e: a view, traced or not. */
static xcs_status through_edge(const xcs_tensor *v, const xcs_edge *e, xcs_tensor **out) {
    xcs_status st = xcs_tensor_view(v, out);
    if (st) return st;
    xcs_tensor *t = *out;
    t->ndim = e->ndim;
    memcpy(t->shape, e->shape, sizeof t->shape);
    memcpy(t->strides, e->strides, sizeof t->strides);
    t->offset = v->offset + e->offset;
    t->flags = e->flags;
    return XCS_OK;
}

/* Scan node i of body applied to `in`: every output's node gets its value. */
static xcs_status inline_scan(const xcs_graph *body, int i, xcs_tensor *const *in, xcs_tensor **val) {
    const xcs_node *n = &body->nodes[i];
    xcs_scan_node *d = body->scans[n->aux];
    xcs_tensor **outs = calloc((size_t)d->n_out + 1, sizeof *outs);
    if (!outs) return xcs_error(XCS_ERR_MEMORY, "out of memory replaying a scan body");
    xcs_status st = xcs_scan_node_call(d, n->n_in, (const xcs_tensor *const *)in, outs);
    for (int j = i; j < body->n_nodes && !st; j++) {
        const xcs_node *m = &body->nodes[j];
        if (m->op == XCS_OP_SCAN && m->aux == n->aux && !val[j]) st = xcs_contiguous(outs[m->axis], &val[j]);
    }
    drop_all(outs, d->n_out);
    return st;
}

xcs_status xcs_graph_inline(const xcs_graph *body, const xcs_tensor *const *inputs, xcs_tensor **outs) {
    xcs_tensor **val = calloc((size_t)body->n_nodes + 1, sizeof *val);
    xcs_tensor *ops[8], **in = ops;
    if (!val) return xcs_error(XCS_ERR_MEMORY, "out of memory replaying a scan body");
    xcs_status st = XCS_OK;
    for (int i = 0; i < body->n_nodes && !st; i++) {
        const xcs_node *n = &body->nodes[i];
        if (n->op == XCS_NODE_INPUT || n->op == XCS_NODE_CONST) {
            const xcs_tensor *x = n->op == XCS_NODE_INPUT ? inputs[n->aux] : body->consts[n->aux];
            st = xcs_contiguous(x, &val[i]); /* edges read a node's value in its C order */
            continue;
        }
        if (n->op == XCS_OP_SCAN && val[i]) continue; /* made with an earlier output of its scan */
        if (n->n_in > 8 && !(in = calloc((size_t)n->n_in, sizeof *in))) {
            st = xcs_error(XCS_ERR_MEMORY, "out of memory replaying a scan body");
            break;
        }
        int made = 0;
        for (; made < n->n_in && !st; made++) {
            const xcs_edge *e = &body->edges[n->first_edge + made];
            st = through_edge(val[e->node], e, &in[made]);
        }
        xcs_tensor *v = NULL;
        if (!st && n->op == XCS_OP_SCAN) st = inline_scan(body, i, in, val); /* a scan in the body: recorded again */
        else if (!st) st = xcs_node_apply(n, in, &v);
        if (!st && v && !xcs_tensor_is_contiguous(v)) {
            xcs_tensor *c = NULL;
            st = xcs_contiguous(v, &c);
            xcs_tensor_free(v);
            v = c;
        }
        if (v) val[i] = v;
        for (int k = 0; k < made; k++) xcs_tensor_free(in[k]);
        if (in != ops) free(in);
        in = ops;
    }
    int made = 0;
    for (; made < body->n_outputs && !st; made++) st = through_edge(val[body->outputs[made].node], &body->outputs[made], &outs[made]);
    if (st)
        for (int k = 0; k < made; k++) {
            xcs_tensor_free(outs[k]);
            outs[k] = NULL;
        }
    for (int i = 0; i < body->n_nodes; i++) xcs_tensor_free(val[i]);
    free(val);
    return st;
}

/* ---------------------------------------------------------------- autodiff */

/* A traced tensor reading node e->node of g through edge e. */
static xcs_status edge_tensor(xcs_graph *g, const xcs_edge *e, xcs_tensor **out) {
    xcs_tensor *t = calloc(1, sizeof *t);
    if (!t) return xcs_error(XCS_ERR_MEMORY, "out of memory differentiating a scan");
    *t = (xcs_tensor){.graph = g, .node = e->node, .dtype = g->nodes[e->node].dtype, .ndim = e->ndim,
                      .offset = e->offset};
    memcpy(t->shape, e->shape, sizeof t->shape);
    memcpy(t->strides, e->strides, sizeof t->strides);
    *out = t;
    return XCS_OK;
}

/* The carries entering each step, [T, ...] in the order of xs, from the
 * carries leaving each step (`after`, stacked like a y) and the initial
 * carry: after shifted by one step, init in the first step's row. */
static xcs_status entering(const xcs_tensor *init, const xcs_tensor *after, int64_t T, bool reverse, xcs_tensor **out) {
    if (T == 0) return xcs_tensor_view(after, out);
    int64_t shape[XCS_MAX_DIMS];
    shape[0] = 1;
    memcpy(shape + 1, init->shape, (size_t)init->ndim * sizeof *shape);
    xcs_slice sl = {.start = reverse ? 1 : 0, .stop = reverse ? T : T - 1, .step = 1, .has_start = true, .has_stop = true};
    xcs_tensor *row = NULL, *rest = NULL;
    xcs_status st = xcs_reshape(init, init->ndim + 1, shape, &row);
    if (!st) st = xcs_slice_axis(after, 0, sl, &rest);
    const xcs_tensor *parts[2] = {reverse ? rest : row, reverse ? row : rest};
    if (!st) st = xcs_concat(2, parts, 0, out);
    xcs_tensor_free(row);
    xcs_tensor_free(rest);
    return st;
}

xcs_status xcs_scan_with_residuals(xcs_graph *g, int aux, int32_t first, xcs_tensor **resid) {
    xcs_scan_node *d = g->scans[aux];
    int nc = d->n_carry;
    xcs_status st = XCS_OK;
    if (d->n_resid == 0 && nc > 0) { /* a body whose extra ys are its carry outputs (a one-kernel loop keeps them) */
        xcs_graph *b = NULL;
        xcs_scan_node *d2 = NULL;
        st = xcs_graph_clone(d->body, 0, NULL, &b);
        xcs_edge *grown = st ? NULL : realloc(b->outputs, ((size_t)b->n_outputs + nc + 1) * sizeof *b->outputs);
        if (!st && !grown) st = xcs_error(XCS_ERR_MEMORY, "out of memory differentiating a scan");
        if (grown) b->outputs = grown;
        for (int q = 0; q < nc && !st; q++) b->outputs[b->n_outputs++] = b->outputs[q];
        if (!st) {
            b->cap_outputs = b->n_outputs + 1;
            st = xcs_scan_node_new(b, nc, d->n_x, nc, d->length, d->reverse, &d2);
        }
        xcs_graph_free(b);
        if (st) return st;
        g->scans[aux] = d2; /* the nodes' outputs keep their numbers: the residuals come after them */
        xcs_scan_node_release(d);
        d = d2;
    }
    int base = d->n_out - d->n_resid;
    for (int q = 0; q < nc && !st; q++) {
        int32_t have = -1;
        for (int32_t j = 0; j < g->n_nodes && have < 0; j++)
            if (g->nodes[j].op == XCS_OP_SCAN && g->nodes[j].aux == aux && g->nodes[j].axis == base + q) have = j;
        xcs_tensor *after = NULL, *init = NULL;
        if (have >= 0) {
            const xcs_node *m = &g->nodes[have];
            xcs_edge e = {.node = have, .ndim = m->ndim};
            memcpy(e.shape, m->shape, sizeof e.shape);
            xcs_strides_contiguous(m->ndim, m->shape, e.strides);
            st = edge_tensor(g, &e, &after);
        } else {
            int64_t shape[XCS_MAX_DIMS];
            int nd = 0;
            xcs_dtype dt = output_sig(d, base + q, &nd, shape);
            st = xcs_trace_sibling(g, first, dt, nd, shape, base + q, &after);
        }
        xcs_edge e0 = g->edges[g->nodes[first].first_edge + q];
        if (!st) st = edge_tensor(g, &e0, &init);
        if (!st) st = entering(init, after, d->length, d->reverse, &resid[q]);
        xcs_tensor_free(after);
        xcs_tensor_free(init);
    }
    if (st)
        for (int q = 0; q < nc; q++) {
            xcs_tensor_free(resid[q]);
            resid[q] = NULL;
        }
    return st;
}

/* Inputs of the reverse step's graph, in order, from the forward body:
 * an accumulator for each invariant of kind XCS_SCAN_CT_SUM. */
static xcs_status vjp_inputs(const xcs_scan_node *d, const int *kind, xcs_graph *b, xcs_tensor **in) {
    const xcs_graph *f = d->body;
    int nc = d->n_carry, nx = d->n_x, ni = d->n_inv, ny = d->n_out - nc, k = 0;
    xcs_status st = XCS_OK;
    const xcs_node *n;
#define VJP_INPUT(node)                                                                       \
    do {                                                                                      \
        n = (node);                                                                           \
        if (!st) st = xcs_graph_input(b, n->dtype, n->ndim, n->shape, &in[k]);                \
        k++;                                                                                  \
    } while (0)
    for (int q = 0; q < nc; q++) VJP_INPUT(input_node(f, q));               /* ct of the carry out */
    for (int v = 0; v < ni; v++)                                              /* ct accumulators */
        if (kind[v] == XCS_SCAN_CT_SUM) VJP_INPUT(input_node(f, nc + nx + v));
    for (int q = 0; q < nc + nx; q++) VJP_INPUT(input_node(f, q));          /* carry in, x row */
    for (int j = 0; j < ny && !st; j++) {                                     /* ct of the y row */
        const xcs_edge *e = &f->outputs[nc + j];
        st = xcs_graph_input(b, f->nodes[e->node].dtype, e->ndim, e->shape, &in[k++]);
    }
    for (int v = 0; v < ni; v++) VJP_INPUT(input_node(f, nc + nx + v));     /* invariants */
#undef VJP_INPUT
    return st;
}

static xcs_status zeros_like(const xcs_tensor *x, xcs_tensor **out) {
    xcs_tensor *z = NULL;
    xcs_status st = xcs_tensor_scalar(x->dtype, 0, &z);
    if (!st) st = xcs_broadcast_to(z, x->ndim, x->shape, out);
    xcs_tensor_free(z);
    return st;
}

/* sum over the float outputs of sum(out * ct): its gradient is the VJP of
 * the outputs for cotangents ct.  NULL (no error) when none is float. */
static xcs_status pairing(int n, xcs_tensor *const *outs, xcs_tensor *const *ct, xcs_tensor **s) {
    xcs_status st = XCS_OK;
    *s = NULL;
    for (int j = 0; j < n && !st; j++) {
        if (!xcs_dtype_is_float(outs[j]->dtype)) continue;
        xcs_tensor *p = NULL, *r = NULL, *acc = NULL;
        unsigned all = outs[j]->ndim ? (1u << outs[j]->ndim) - 1 : 0;
        st = xcs_binary(XCS_OP_MUL, outs[j], ct[j], &p);
        if (!st) st = all ? xcs_reduce(XCS_OP_SUM, p, all, false, &r) : xcs_tensor_view(p, &r);
        if (!st && *s) st = xcs_binary(XCS_OP_ADD, *s, r, &acc);
        if (!st && *s) {
            xcs_tensor_free(*s);
            *s = acc, acc = NULL;
        } else if (!st) {
            *s = r, r = NULL;
        }
        xcs_tensor_free(p);
        xcs_tensor_free(r);
        xcs_tensor_free(acc);
    }
    if (st) {
        xcs_tensor_free(*s);
        *s = NULL;
    }
    return st;
}

/* Inner sizes up to which a step's product a @ c (a [K, M], c [M, N]) is
 * summed over the steps by one GEMM on its stacked factors: a thin
 * product (an outer product h^T dpre: M = 1) is a poor GEMM on its own,
 * and its factors take T * M * (K + N) values, not much beside the
 * residuals; a wider one is a good GEMM a step, summed in the carry. */
#define XCS_SCAN_GEMM_MAX_INNER 8

/* The kind of invariant w's step cotangent g (traced in b): a thin
 * product a @ c of two 2-D values of the step (w read by a matmul,
 * nothing else reaching it), as it is or transposed, whose sum over the
 * steps is one GEMM after the loop; else a sum carried through it. */
static int ct_kind(const xcs_graph *b, const xcs_tensor *g, const xcs_tensor *w) {
    if (!g->graph || g->ndim != 2 || w->ndim != 2 || g->offset != 0) return XCS_SCAN_CT_SUM;
    const xcs_node *m = &b->nodes[g->node];
    if (m->op != XCS_OP_MATMUL || m->ndim != 2 || m->n_in != 2 || b->edges[m->first_edge].ndim != 2 ||
        b->edges[m->first_edge + 1].ndim != 2 || b->edges[m->first_edge].shape[1] > XCS_SCAN_GEMM_MAX_INNER)
        return XCS_SCAN_CT_SUM;
    bool same = g->shape[0] == m->shape[0] && g->shape[1] == m->shape[1] && (g->shape[1] == 1 || g->strides[1] == 1) &&
                (g->shape[0] == 1 || g->strides[0] == m->shape[1]);
    bool swapped = g->shape[0] == m->shape[1] && g->shape[1] == m->shape[0] &&
                   (g->shape[0] == 1 || g->strides[0] == 1) && (g->shape[1] == 1 || g->strides[1] == m->shape[1]);
    return same ? XCS_SCAN_CT_GEMM : swapped ? XCS_SCAN_CT_GEMM_T : XCS_SCAN_CT_SUM;
}

/* The reverse step for invariant kinds kind[] (NULL: every float one
 * summed); kind_out[] (when given) gets the kind each float invariant's
 * cotangent allows. */
static xcs_status build_vjp(const xcs_scan_node *d, const int *kind, int *kind_out, xcs_graph **out) {
    int nc = d->n_carry, nx = d->n_x, ni = d->n_inv, ny = d->n_out - nc, nsum = 0;
    int *kinds = calloc((size_t)ni + 1, sizeof *kinds);
    if (!kinds) return xcs_error(XCS_ERR_MEMORY, "out of memory differentiating a scan");
    for (int v = 0; v < ni; v++) {
        kinds[v] = !xcs_dtype_is_float(input_node(d->body, nc + nx + v)->dtype) ? XCS_SCAN_CT_NONE
                   : kind ? kind[v] : XCS_SCAN_CT_SUM;
        nsum += kinds[v] == XCS_SCAN_CT_SUM;
    }
    int n_b = nc + nsum + nc + nx + ny + ni, n_w = nc + nx + ni;
    xcs_graph *b = NULL;
    xcs_status st = xcs_graph_new(&b);
    xcs_tensor **in = calloc((size_t)n_b + 1, sizeof *in), **fo = calloc((size_t)d->n_out + 1, sizeof *fo);
    xcs_tensor **grads = calloc((size_t)n_w + 1, sizeof *grads), **ct_all = calloc((size_t)n_w + 1, sizeof *ct_all);
    xcs_tensor **cts = calloc((size_t)d->n_out + 1, sizeof *cts), *ops[2] = {0}, *s = NULL;
    const xcs_tensor **wrt = calloc((size_t)n_w + 1, sizeof *wrt), **fwd_in = calloc((size_t)n_w + 1, sizeof *fwd_in);
    int *slot = calloc((size_t)n_w + 1, sizeof *slot), n_float = 0;
    if (!st && !(in && fo && grads && ct_all && cts && wrt && fwd_in && slot))
        st = xcs_error(XCS_ERR_MEMORY, "out of memory differentiating a scan");
    if (!st) st = vjp_inputs(d, kinds, b, in);
    xcs_tensor **ct_c = in, **acc = in + nc, **c_in = acc + nsum, **ct_y = c_in + nc + nx, **inv = ct_y + ny;
    for (int k = 0; !st && k < n_w; k++) fwd_in[k] = k < nc + nx ? c_in[k] : inv[k - nc - nx];
    if (!st) st = xcs_graph_inline(d->body, fwd_in, fo);
    for (int j = 0; !st && j < d->n_out; j++) cts[j] = j < nc ? ct_c[j] : ct_y[j - nc];
    if (!st) st = pairing(d->n_out, fo, cts, &s);
    if (s && !s->graph) { /* the outputs read no input: every cotangent is zero */
        xcs_tensor_free(s);
        s = NULL;
    }
    for (int k = 0; !st && k < n_w; k++) {
        slot[k] = -1;
        if (s && xcs_dtype_is_float(fwd_in[k]->dtype)) {
            slot[k] = n_float;
            wrt[n_float++] = fwd_in[k];
        }
    }
    if (!st && n_float) st = xcs_graph_vjp(b, s, NULL, n_float, wrt, grads);
    /* per input its step cotangent (zeros without a path); a summed invariant's added to its accumulator */
    for (int k = 0, a = 0; !st && k < n_w; k++) {
        int v = k - nc - nx;
        if (v >= 0 && kinds[v] == XCS_SCAN_CT_NONE) continue;
        xcs_tensor *r = NULL;
        st = slot[k] >= 0 ? xcs_tensor_view(grads[slot[k]], &r) : zeros_like(fwd_in[k], &r);
        if (!st && v >= 0 && kind_out) kind_out[v] = slot[k] >= 0 ? ct_kind(b, r, fwd_in[k]) : XCS_SCAN_CT_SUM;
        if (!st && v >= 0 && kinds[v] == XCS_SCAN_CT_SUM) {
            st = xcs_binary(XCS_OP_ADD, acc[a++], r, &ct_all[k]);
            xcs_tensor_free(r);
        } else {
            ct_all[k] = r;
        }
    }
    /* outputs: carries [ct carries, summed invariants], ys [ct x rows, the two factors of each GEMM one] */
    for (int k = 0; !st && k < nc; k++) st = xcs_graph_output(b, ct_all[k]);
    for (int v = 0; !st && v < ni; v++)
        if (kinds[v] == XCS_SCAN_CT_SUM) st = xcs_graph_output(b, ct_all[nc + nx + v]);
    for (int k = nc; !st && k < nc + nx; k++) st = xcs_graph_output(b, ct_all[k]);
    for (int v = 0; !st && v < ni; v++) {
        if (kinds[v] != XCS_SCAN_CT_GEMM && kinds[v] != XCS_SCAN_CT_GEMM_T) continue;
        const xcs_tensor *g = ct_all[nc + nx + v];
        if (ct_kind(b, g, fwd_in[nc + nx + v]) != kinds[v]) {
            st = xcs_error(XCS_ERR_INTERNAL, "scan: an invariant's cotangent changed form between two traces");
            break;
        }
        const xcs_node *m = &b->nodes[g->node];
        int32_t first = m->first_edge;
        for (int f = 0; f < 2 && !st; f++) {
            xcs_edge e = b->edges[first + f];
            st = edge_tensor(b, &e, &ops[f]);
            if (!st) st = xcs_graph_output(b, ops[f]);
            xcs_tensor_free(ops[f]);
            ops[f] = NULL;
        }
    }
    drop_all(in, n_b);
    drop_all(fo, d->n_out);
    drop_all(grads, n_w);
    drop_all(ct_all, n_w);
    xcs_tensor_free(s);
    free(cts);
    free(wrt);
    free(fwd_in);
    free(slot);
    free(kinds);
    if (st) {
        xcs_graph_free(b);
        return st;
    }
    *out = b;
    return XCS_OK;
}

xcs_status xcs_scan_vjp_body(const xcs_scan_node *d, int *kind, xcs_graph **out) {
    xcs_graph *probe = NULL;
    bool gemm = false;
    for (int v = 0; v < d->n_inv; v++) kind[v] = XCS_SCAN_CT_NONE;
    xcs_status st = build_vjp(d, NULL, kind, &probe); /* every float invariant summed: which could be a GEMM? */
    for (int v = 0; !st && v < d->n_inv; v++) gemm |= kind[v] == XCS_SCAN_CT_GEMM || kind[v] == XCS_SCAN_CT_GEMM_T;
    if (st || !gemm) {
        if (!st) *out = probe;
        return st;
    }
    xcs_graph_free(probe);
    return build_vjp(d, kind, NULL, out);
}

xcs_status xcs_scan_ct_gemm(const xcs_tensor *a, const xcs_tensor *c, bool transposed, xcs_tensor **out) {
    /* sum_t a[t] @ c[t] = (a as [K, T*M]) @ (c as [T*M, N]) */
    int perm[3] = {1, 0, 2};
    int64_t K = a->shape[1], M = a->shape[2], N = c->shape[2], TM = a->shape[0] * a->shape[2];
    int64_t as[2] = {K, TM}, cs[2] = {TM, N};
    xcs_tensor *p = NULL, *pc = NULL, *a2 = NULL, *c2 = NULL, *prod = NULL;
    xcs_status st = a->ndim == 3 && c->ndim == 3 && c->shape[1] == M && c->shape[0] == a->shape[0]
                        ? XCS_OK : xcs_error(XCS_ERR_INTERNAL, "scan: the factors of a cotangent do not match");
    if (!st) st = xcs_permute(a, perm, &p);
    if (!st) st = xcs_contiguous(p, &pc);
    if (!st) st = xcs_reshape(pc, 2, as, &a2);
    if (!st) st = xcs_reshape(c, 2, cs, &c2);
    if (!st) st = xcs_matmul(a2, c2, &prod);
    if (!st && transposed) st = xcs_permute(prod, (const int[]){1, 0}, out);
    else if (!st) *out = prod, prod = NULL;
    xcs_tensor_free(p);
    xcs_tensor_free(pc);
    xcs_tensor_free(a2);
    xcs_tensor_free(c2);
    xcs_tensor_free(prod);
    return st;
}

xcs_status xcs_scan_trace(const xcs_graph *body, int n_carry, int n_x, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs) {
    if (n_in != body->n_inputs - body->n_captured)
        return xcs_error(XCS_ERR_VALUE, "scan: the body takes %d inputs, got %d", body->n_inputs - body->n_captured, n_in);
    xcs_scan_node *d = NULL;
    xcs_status st = xcs_scan_node_new(body, n_carry, n_x, 0, length, reverse, &d);
    const xcs_tensor **all = st ? NULL : calloc((size_t)body->n_inputs + 1, sizeof *all);
    if (!st && !all) st = xcs_error(XCS_ERR_MEMORY, "out of memory recording a scan");
    for (int k = 0; !st && k < body->n_inputs; k++) /* what the body captured: invariants after the others */
        all[k] = k < n_in ? inputs[k] : body->captured[k - n_in];
    if (!st) st = xcs_scan_node_call(d, body->n_inputs, all, outs);
    free(all);
    xcs_scan_node_release(d);
    return st;
}

/* ---------------------------------------------------------------- vmap */

/* x, batched [B, T, ...] (an xs leaf), seen as [T, B, ...]; or [T, B, ...]
 * (a stacked y) as [B, T, ...]: the first two axes swapped (a view). */
static xcs_status swap01(const xcs_tensor *x, xcs_tensor **out) {
    int perm[XCS_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) perm[k] = k;
    perm[0] = 1;
    perm[1] = 0;
    return xcs_permute(x, perm, out);
}

static xcs_status batched_shape(const xcs_node *in, int64_t B, int *nd, int64_t *shape) {
    if (in->ndim + 1 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "vmap: more than %d dimensions", XCS_MAX_DIMS);
    shape[0] = B;
    memcpy(shape + 1, in->shape, (size_t)in->ndim * sizeof *shape);
    *nd = in->ndim + 1;
    return XCS_OK;
}

/* The body batched: inputs batched where fb[k] (a carry found batched
 * after a pass is made batched and the body batched again), outputs
 * [carries (batched where fb), ys], ob[] which are batched. */
static xcs_status batched_body(const xcs_scan_node *d, bool *fb, int64_t B, int32_t axis_id, xcs_graph **out, bool *ob) {
    int n_in = d->n_carry + d->n_x + d->n_inv, n_out = d->n_out;
    xcs_tensor **t = calloc((size_t)n_in + 1, sizeof *t), **o = calloc((size_t)n_out + 1, sizeof *o);
    xcs_status st = t && o ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "vmap: out of memory batching a scan");
    xcs_graph *nb = NULL;
    for (int pass = 0; !st && pass <= d->n_carry; pass++) {
        bool again = false;
        st = xcs_graph_new(&nb);
        for (int k = 0; !st && k < n_in; k++) {
            const xcs_node *in = input_node(d->body, k);
            int64_t shape[XCS_MAX_DIMS];
            int nd = in->ndim;
            memcpy(shape, in->shape, sizeof shape);
            if (fb[k]) st = batched_shape(in, B, &nd, shape);
            if (!st) st = xcs_graph_input(nb, in->dtype, nd, shape, &t[k]);
        }
        if (!st) st = xcs_graph_batch_on(d->body, n_in, (const xcs_tensor *const *)t, fb, B, axis_id, o, ob);
        for (int q = 0; !st && q < d->n_carry; q++)
            if (ob[q] && !fb[q]) again = fb[q] = true;
        for (int q = 0; !st && !again && q < d->n_carry; q++) { /* a batched carry the step makes shared again */
            if (!fb[q] || ob[q]) continue;
            int64_t shape[XCS_MAX_DIMS];
            int nd = 0;
            xcs_tensor *bc = NULL;
            st = batched_shape(input_node(d->body, q), B, &nd, shape);
            if (!st) st = xcs_broadcast_to(o[q], nd, shape, &bc);
            xcs_tensor_free(o[q]);
            o[q] = bc;
            ob[q] = true;
        }
        for (int k = 0; !st && !again && k < n_out; k++) st = xcs_graph_output(nb, o[k]);
        for (int k = 0; k < n_in; k++) { xcs_tensor_free(t[k]); t[k] = NULL; }
        for (int k = 0; k < n_out; k++) { xcs_tensor_free(o[k]); o[k] = NULL; }
        if (st || again) {
            xcs_graph_free(nb);
            nb = NULL;
        }
        if (!again) break;
    }
    free(t);
    free(o);
    if (!st && !nb) st = xcs_error(XCS_ERR_INTERNAL, "vmap: a scan's carries did not settle");
    if (!st) *out = nb;
    return st;
}

xcs_status xcs_scan_node_batch(const xcs_graph *g, int i, xcs_tensor *const *in, const bool *ib, int64_t B,
                               int32_t axis_id, xcs_tensor **val, bool *vb) {
    const xcs_node *n = &g->nodes[i];
    xcs_scan_node *d = g->scans[n->aux];
    int nc = d->n_carry, nx = d->n_x, n_in = n->n_in, n_out = d->n_out;
    xcs_tensor **outs = calloc((size_t)n_out + 1, sizeof *outs), **ins = calloc((size_t)n_in + 1, sizeof *ins);
    bool *fb = calloc((size_t)n_in + n_out + 1, sizeof *fb), *ob = fb + n_in, any = false;
    xcs_graph *nb = NULL;
    xcs_scan_node *nd = NULL;
    xcs_status st = outs && ins && fb ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "vmap: out of memory batching a scan");
    for (int k = 0; !st && k < n_in; k++) any |= fb[k] = ib[k];
    if (!st && !any) {
        st = xcs_scan_node_call(d, n_in, (const xcs_tensor *const *)in, outs);
    } else if (!st) {
        st = batched_body(d, fb, B, axis_id, &nb, ob);
        if (!st) st = xcs_scan_node_new(nb, nc, nx, d->n_resid, d->length, d->reverse, &nd);
        for (int k = 0; !st && k < n_in; k++) {
            int64_t shape[XCS_MAX_DIMS];
            int dims = 0;
            if (k < nc && fb[k] && !ib[k]) { /* a shared initial carry the loop makes batched */
                st = batched_shape(input_node(d->body, k), B, &dims, shape);
                if (!st) st = xcs_broadcast_to(in[k], dims, shape, &ins[k]);
            } else if (k >= nc && k < nc + nx && ib[k]) { /* [B, T, ...] read as [T, B, ...] */
                st = swap01(in[k], &ins[k]);
            } else {
                st = xcs_tensor_view(in[k], &ins[k]);
            }
        }
        if (!st) st = xcs_scan_node_call(nd, n_in, (const xcs_tensor *const *)ins, outs);
    }
    for (int j = i; j < g->n_nodes && !st; j++) { /* every output's node: [B, ...] when batched */
        const xcs_node *m = &g->nodes[j];
        if (m->op != XCS_OP_SCAN || m->aux != n->aux || val[j]) continue;
        xcs_tensor *v = outs[m->axis], *sw = NULL;
        if (ob[m->axis] && m->axis >= nc) st = swap01(v, &sw); /* a stacked y: [T, B, ...] -> [B, T, ...] */
        if (!st) st = xcs_contiguous(sw ? sw : v, &val[j]);
        vb[j] = ob[m->axis];
        xcs_tensor_free(sw);
    }
    drop_all(outs, n_out);
    drop_all(ins, n_in);
    xcs_scan_node_release(nd);
    xcs_graph_free(nb);
    free(fb);
    return st;
}

/* ---------------------------------------------------------------- pruning */

/* mark[i] for every node of body that outputs `want` (flags per output) read. */
static void reached(const xcs_graph *body, const bool *want, bool *mark) {
    memset(mark, 0, (size_t)body->n_nodes * sizeof *mark);
    for (int o = 0; o < body->n_outputs; o++)
        if (want[o]) mark[body->outputs[o].node] = true;
    for (int i = body->n_nodes - 1; i >= 0; i--) {
        const xcs_node *n = &body->nodes[i];
        for (int k = 0; mark[i] && k < n->n_in; k++) mark[body->edges[n->first_edge + k].node] = true;
    }
}

/* The body keeping outputs `keep` and, of the carries, those kept (the
 * inputs of the others become constants nothing reads). */
static xcs_status pruned_body(const xcs_scan_node *d, const bool *keep, xcs_graph **out) {
    xcs_graph *b = NULL;
    xcs_status st = xcs_graph_clone(d->body, 0, NULL, &b);
    int o = 0, dropped = 0;
    for (int k = 0; !st && k < d->n_out; k++)
        if (keep[k]) b->outputs[o++] = b->outputs[k];
    if (!st) b->n_outputs = o;
    for (int i = 0; !st && i < b->n_nodes; i++) {
        xcs_node *n = &b->nodes[i];
        if (n->op != XCS_NODE_INPUT) continue;
        if (n->aux >= d->n_carry || keep[n->aux]) { /* renumbered past the dropped carries */
            int before = 0;
            for (int q = 0; q < d->n_carry && q < n->aux; q++) before += !keep[q];
            n->aux -= before;
            continue;
        }
        st = xcs_graph_unread_input(b, i);
        dropped++;
    }
    if (!st) b->n_inputs -= dropped;
    if (st) {
        xcs_graph_free(b);
        return st;
    }
    *out = b;
    return XCS_OK;
}

/* Scan `aux` of g computing only what its nodes still read: its ys that no
 * node stands for are dropped, and its carries whose final value nothing
 * reads and that no kept output depends on (a gradient's accumulator for
 * an argument nobody asked about).  True in *changed when it did. */
static xcs_status prune_one(xcs_graph *g, int aux, bool *changed) {
    const xcs_scan_node *d = g->scans[aux];
    int nc = d->n_carry, n_out = d->n_out;
    bool *keep = calloc((size_t)n_out + 1, sizeof *keep), *mark = calloc((size_t)d->body->n_nodes + 1, sizeof *mark);
    int *axis_of = calloc((size_t)n_out + 1, sizeof *axis_of);
    xcs_status st = keep && mark && axis_of ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory pruning a scan");
    int32_t first = -1;
    for (int32_t j = 0; !st && j < g->n_nodes; j++)
        if (g->nodes[j].op == XCS_OP_SCAN && g->nodes[j].aux == aux) {
            keep[g->nodes[j].axis] = true;
            if (first < 0) first = j;
        }
    for (bool grew = true; !st && grew;) { /* a carry a kept output reads is kept */
        grew = false;
        reached(d->body, keep, mark);
        for (int q = 0; q < nc; q++) {
            const xcs_node *in = input_node(d->body, q);
            if (!keep[q] && in && mark[in - d->body->nodes]) grew = keep[q] = true;
        }
    }
    int n_keep = 0, nc2 = 0;
    for (int k = 0; !st && k < n_out; k++) {
        axis_of[k] = keep[k] ? n_keep++ : -1;
        nc2 += k < nc && keep[k];
    }
    xcs_graph *b = NULL;
    xcs_scan_node *d2 = NULL;
    if (!st && first >= 0 && n_keep < n_out) {
        st = pruned_body(d, keep, &b);
        if (!st) st = xcs_scan_node_new(b, nc2, d->n_x, 0, d->length, d->reverse, &d2);
    }
    if (d2) { /* the nodes: the dropped carries' inputs removed, outputs renumbered */
        for (int32_t j = first; j < g->n_nodes; j++) {
            xcs_node *m = &g->nodes[j];
            if (m->op != XCS_OP_SCAN || m->aux != aux) continue;
            int w = 0;
            for (int k = 0; k < m->n_in; k++)
                if (k >= nc || keep[k]) g->edges[m->first_edge + w++] = g->edges[m->first_edge + k];
            m->n_in = w;
            m->axis = axis_of[m->axis];
        }
        g->scans[aux] = d2;
        xcs_scan_node_release((xcs_scan_node *)d);
        *changed = true;
    }
    xcs_graph_free(b);
    free(keep);
    free(mark);
    free(axis_of);
    return st;
}

xcs_status xcs_scan_prune(xcs_graph *g, bool *changed) {
    xcs_status st = XCS_OK;
    *changed = false;
    for (int a = 0; a < g->n_scans && !st; a++) st = prune_one(g, a, changed);
    return st;
}
