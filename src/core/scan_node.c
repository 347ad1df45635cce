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
 * invariants, every step reading them whole.  Its gradient is
 * scan_grad.c's; vmap's rule and the pruning after DCE are here. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

void xcs_scan_node_release(xcs_scan_node *d) {
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1) return;
    xcs_scan_program_free(d->prog);
    xcs_graph_free(d->body);
    free(d);
}

const xcs_node *xcs_scan_input_node(const xcs_graph *body, int k) {
    for (int i = 0; i < body->n_nodes; i++)
        if (body->nodes[i].op == XCS_NODE_INPUT && body->nodes[i].aux == k) return &body->nodes[i];
    return NULL;
}

void xcs_tensors_drop(xcs_tensor **t, int n) {
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

xcs_dtype xcs_scan_output_sig(const xcs_scan_node *d, int k, int *ndim, int64_t *shape) {
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
    const xcs_node *in = xcs_scan_input_node(d->body, k);
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
        xcs_dtype dt = xcs_scan_output_sig(d, made, &nd, shape);
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

/* outs[k] (the outputs of scan node i of g) as the values of every node
 * of that scan from i on whose val is NULL: contiguous in the node's shape. */
static xcs_status sibling_values(const xcs_graph *g, int i, xcs_tensor *const *outs, xcs_tensor **val) {
    const xcs_node *n = &g->nodes[i];
    xcs_status st = XCS_OK;
    for (int j = i; j < g->n_nodes && !st; j++) {
        const xcs_node *m = &g->nodes[j];
        if (m->op != XCS_OP_SCAN || m->aux != n->aux || val[j]) continue;
        st = outs[m->axis] ? xcs_contiguous(outs[m->axis], &val[j])
                           : xcs_error(XCS_ERR_INTERNAL, "scan: node %%%d stands for output %d of %d", j, m->axis,
                                       g->scans[n->aux]->n_out);
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
    if (!st) st = sibling_values(g, i, outs, vals);
    xcs_tensors_drop(outs, d->n_out);
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
    if (!st) st = sibling_values(body, i, outs, val);
    xcs_tensors_drop(outs, d->n_out);
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
            const xcs_node *in = xcs_scan_input_node(d->body, k);
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
            st = batched_shape(xcs_scan_input_node(d->body, q), B, &nd, shape);
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
                st = batched_shape(xcs_scan_input_node(d->body, k), B, &dims, shape);
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
    xcs_tensors_drop(outs, n_out);
    xcs_tensors_drop(ins, n_in);
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
            const xcs_node *in = xcs_scan_input_node(d->body, q);
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
