/* scan.c — the loop program: a traced body f(carry, x) -> (carry, y) run
 * `length` times in C (no per-step Python), the value table and the arena of
 * the body's intermediates allocated once for the whole loop.  Step t reads
 * x[t] of every xs leaf in place (a header on the stack) and writes y[t]
 * straight into the stacked output. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

/* Row t of x (axis 0 dropped) as a borrowed header. */
static void row_header(const xcs_tensor *x, int64_t t, xcs_tensor *out) {
    out->storage = x->storage;
    out->graph = NULL;
    out->node = 0;
    out->dtype = x->dtype;
    out->ndim = x->ndim - 1;
    memcpy(out->shape, x->shape + 1, sizeof out->shape - sizeof *out->shape); /* (fixed sizes: no call) */
    memcpy(out->strides, x->strides + 1, sizeof out->strides - sizeof *out->strides);
    out->offset = x->offset + t * x->strides[0];
    out->flags = 0;
}

static bool edge_matches_input(const xcs_graph *g, const xcs_edge *e, const xcs_node *in) {
    if (g->nodes[e->node].dtype != in->dtype || e->ndim != in->ndim) return false;
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != in->shape[d]) return false;
    return true;
}

/* The loop's inputs are concrete, and each xs leaf has `length` rows. */
static xcs_status check_inputs(int n_carry, int64_t length, int n_in, const xcs_tensor *const *inputs) {
    char got[160];
    for (int k = 0; k < n_in; k++) {
        const xcs_tensor *x = inputs[k];
        if (x->graph) return xcs_error(XCS_ERR_VALUE, "scan: input %d is traced; the loop takes concrete arrays", k);
        if (k >= n_carry && (x->ndim < 1 || x->shape[0] != length))
            return xcs_error(XCS_ERR_SHAPE, "scan: xs leaf %d has shape %s; its leading axis must be the length %lld",
                             k - n_carry, xcs_shape_str(x->ndim, x->shape, got, sizeof got), (long long)length);
    }
    return XCS_OK;
}

/* The body's carry outputs have the carry inputs' shapes and dtypes. */
xcs_status xcs_scan_check_carry(const xcs_graph *body, int n_carry) {
    char want[160], got[160];
    if (n_carry < 0 || n_carry > body->n_inputs || n_carry > body->n_outputs)
        return xcs_error(XCS_ERR_VALUE, "scan: %d carries but the body takes %d inputs and returns %d values", n_carry,
                         body->n_inputs, body->n_outputs);
    for (int k = 0; k < n_carry; k++) {
        const xcs_node *in = NULL;
        for (int i = 0; i < body->n_nodes && !in; i++)
            if (body->nodes[i].op == XCS_NODE_INPUT && body->nodes[i].aux == k) in = &body->nodes[i];
        if (!in) return xcs_error(XCS_ERR_INTERNAL, "scan: the body has no input node %d", k);
        const xcs_edge *e = &body->outputs[k];
        if (!edge_matches_input(body, e, in))
            return xcs_error(XCS_ERR_TYPE,
                             "scan: the carry must keep its shape and dtype; leaf %d enters as %s%s and the body "
                             "returns %s%s", k, xcs_dtype_name(in->dtype), xcs_shape_str(in->ndim, in->shape, want, sizeof want),
                             xcs_dtype_name(body->nodes[e->node].dtype), xcs_shape_str(e->ndim, e->shape, got, sizeof got));
    }
    return XCS_OK;
}

/* The checks a body must pass before the loop starts. */
static xcs_status check_body(const xcs_graph *body, int n_carry, int64_t length, int n_in,
                             const xcs_tensor *const *inputs) {
    if (n_carry < 0 || n_in != body->n_inputs || body->n_captured > 0)
        return xcs_error(XCS_ERR_VALUE, "scan: the body takes %d inputs (%d captured), got %d with %d carries",
                         body->n_inputs, body->n_captured, n_in, n_carry);
    if (n_carry > body->n_outputs)
        return xcs_error(XCS_ERR_VALUE, "scan: %d carries but the body returns %d values", n_carry, body->n_outputs);
    if (length < 0) return xcs_error(XCS_ERR_VALUE, "scan: length must be >= 0, got %lld", (long long)length);
    xcs_status st = xcs_scan_check_carry(body, n_carry);
    return st ? st : check_inputs(n_carry, length, n_in, inputs);
}

/* Copies src into the contiguous header dst (same shape and dtype). */
static xcs_status copy_into(const xcs_backend *be, xcs_tensor *src, xcs_tensor *dst) {
    if (xcs_tensor_numel(src) == 0) return XCS_OK;
    return be->elementwise(XCS_OP_COPY, 1, (const xcs_tensor *const *)&src, src->dtype, dst);
}

/* The stacked ys, outs[n_carry..): [length, ...y's shape] each. */
static xcs_status stacked_ys(const xcs_graph *body, int n_carry, int64_t length, const xcs_storage *where,
                             xcs_tensor **outs) {
    for (int j = 0; j < body->n_outputs - n_carry; j++) {
        const xcs_edge *e = &body->outputs[n_carry + j];
        int64_t shape[XCS_MAX_DIMS];
        if (e->ndim + 1 > XCS_MAX_DIMS)
            return xcs_error(XCS_ERR_SHAPE, "scan: output y %d has %d dims; stacking needs one more (at most %d)", j,
                             e->ndim, XCS_MAX_DIMS);
        shape[0] = length;
        memcpy(shape + 1, e->shape, (size_t)e->ndim * sizeof *shape);
        xcs_status st = xcs_tensor_empty_on(where, body->nodes[e->node].dtype, e->ndim + 1, shape, &outs[n_carry + j]);
        if (st) return st;
    }
    return XCS_OK;
}

/* The loop in one kernel (below); false: it does not fit, run the steps. */
static bool scan_kernel(const xcs_graph *body, int n_carry, int64_t length, bool reverse,
                        const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index,
                        const xcs_storage *where);

/* The loop.  Each step's carry is written straight into one of two buffers
 * per carry (alternating, so a step never writes what it reads) and each y
 * straight into its row of the stacked output: run.c's output destinations
 * (xcs_run.dest), so a step allocates nothing.  A value the body does not
 * compute in place (a carry passed through unchanged, a y that is a view)
 * is copied there instead. */
/* The loop on one device (scan_on below): inputs already there. */
static xcs_status scan_loop(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                            const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index,
                            const xcs_storage *where);

/* On a device every input is moved there once (the xs leaves whole: a
 * step's row is then a view, never an upload), the carries' buffers and the
 * stacked ys are made there, and each step's groups run there: only the
 * final values would come back, when the caller asks.  The CPU keeps each
 * group's plan across steps (xcs_run_keep_plans); a device has none to keep. */
static xcs_status hoisted_rows(const xcs_tensor *v, bool batched, int64_t length, xcs_tensor **out);

/* Leaf x of xs moved to dev once.  Rows that are all one value (a
 * stride-0 leading axis: a loop invariant, a hoisted value the same every
 * step) go there as that one value, seen again as [length, ...] rows:
 * never length copies of it. */
static xcs_status move_input(const xcs_tensor *x, xcs_device dev, int index, xcs_tensor **out) {
    if (x->ndim < 1 || x->strides[0] != 0 || x->shape[0] < 2) return xcs_tensor_to(x, dev, index, out);
    xcs_tensor row, *one = NULL;
    row_header(x, 0, &row); /* borrowed: read by the move */
    xcs_status st = xcs_tensor_to(&row, dev, index, &one);
    if (!st) st = hoisted_rows(one, false, x->shape[0], out);
    xcs_tensor_free(one);
    return st;
}

static xcs_status scan_on(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index) {
    xcs_status st = check_body(body, n_carry, length, n_in, inputs);
    if (st) return st;
    if (dev == XCS_DEVICE_CPU) return scan_loop(body, n_carry, length, reverse, n_in, inputs, outs, dev, index, NULL);
    xcs_tensor **moved = calloc((size_t)n_in + 1, sizeof *moved);
    xcs_storage *anchor = xcs_storage_new_on(1, dev, index); /* where the loop's own tensors go */
    if (!moved || !anchor) st = moved ? xcs_last_status() : xcs_error(XCS_ERR_MEMORY, "out of memory starting a scan");
    for (int k = 0; k < n_in && !st; k++) /* the carries whole and contiguous; the xs as rows */
        st = k < n_carry ? xcs_tensor_to(inputs[k], dev, index, &moved[k]) : move_input(inputs[k], dev, index, &moved[k]);
    if (!st && !scan_kernel(body, n_carry, length, reverse, (const xcs_tensor *const *)moved, outs, dev, index, anchor))
        st = scan_loop(body, n_carry, length, reverse, n_in, (const xcs_tensor *const *)moved, outs, dev, index, anchor);
    for (int k = 0; moved && k < n_in; k++) xcs_tensor_free(moved[k]);
    free(moved);
    xcs_storage_release(anchor);
    return st;
}

xcs_status xcs_graph_scan(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs) {
    return scan_on(body, n_carry, length, reverse, n_in, inputs, outs, XCS_DEVICE_CPU, 0);
}

xcs_status xcs_graph_scan_on(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                             const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index) {
    return scan_on(body, n_carry, length, reverse, n_in, inputs, outs, dev, index);
}

static xcs_status scan_loop(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                            const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index,
                            const xcs_storage *where) {
    xcs_status st = XCS_OK;
    int n_out = body->n_outputs, n_y = n_out - n_carry;
    const xcs_backend *be = xcs_backend_for(dev);
    if (!be) return xcs_error_context(xcs_last_status(), "scan");
    xcs_tensor **buf = calloc((size_t)n_carry * 2 + 1, sizeof *buf); /* two per carry */
    xcs_tensor **step_out = calloc((size_t)n_out + 1, sizeof *step_out);
    xcs_tensor **dest = calloc((size_t)n_out + 1, sizeof *dest);
    const xcs_tensor **step_in = calloc((size_t)n_in + 1, sizeof *step_in);
    xcs_tensor *rows = malloc(((size_t)(n_in - n_carry) + (size_t)n_y + 1) * sizeof *rows);
    xcs_run r = {0};
    if (!buf || !step_out || !dest || !step_in || !rows) st = xcs_error(XCS_ERR_MEMORY, "out of memory starting a scan");
    for (int q = 0; q < n_carry && !st && length > 0; q++)
        for (int b = 0; b < 2 && !st; b++)
            st = xcs_tensor_empty_on(where, inputs[q]->dtype, inputs[q]->ndim, inputs[q]->shape, &buf[2 * q + b]);
    if (!st) st = stacked_ys(body, n_carry, length, where, outs);
    if (!st) st = xcs_run_open_on(body, dev, index, &r);
    if (!st && dev == XCS_DEVICE_CPU) st = xcs_run_keep_plans(&r);
    r.dest = dest;
    for (int64_t i = 0; i < length && !st; i++) {
        int64_t t = reverse ? length - 1 - i : i;
        int now = (int)(i & 1);
        for (int q = 0; q < n_carry; q++) {
            step_in[q] = i == 0 ? inputs[q] : buf[2 * q + (1 - now)];
            dest[q] = buf[2 * q + now];
        }
        for (int q = n_carry; q < n_in; q++) {
            row_header(inputs[q], t, &rows[q - n_carry]);
            step_in[q] = &rows[q - n_carry];
        }
        for (int j = 0; j < n_y; j++) {
            xcs_tensor *slot = &rows[n_in - n_carry + j];
            row_header(outs[n_carry + j], t, slot);
            dest[n_carry + j] = slot;
        }
        st = xcs_run_once(&r, step_in, step_out);
        if (st) {
            xcs_error_context(st, "scan step %lld", (long long)t);
            break;
        }
        for (int k = 0; k < n_out; k++) { /* not computed in place: copied there */
            if (step_out[k] && !st) st = copy_into(be, step_out[k], dest[k]);
            xcs_tensor_free(step_out[k]);
            step_out[k] = NULL;
        }
    }
    xcs_run_close(&r);
    for (int q = 0; q < n_carry && !st; q++) { /* the last step's buffer, or the initial value */
        if (length == 0) {
            st = xcs_tensor_view(inputs[q], &outs[q]);
        } else {
            int last = (int)((length - 1) & 1);
            outs[q] = buf[2 * q + last];
            buf[2 * q + last] = NULL;
        }
    }
    for (int q = 0; buf && q < 2 * n_carry; q++) xcs_tensor_free(buf[q]);
    if (st) {
        for (int q = 0; q < n_carry; q++) {
            xcs_tensor_free(outs[q]);
            outs[q] = NULL;
        }
        for (int j = 0; j < n_y; j++) {
            xcs_tensor_free(outs[n_carry + j]);
            outs[n_carry + j] = NULL;
        }
    }
    free(buf);
    free(step_out);
    free(dest);
    free(step_in);
    free(rows);
    return st;
}

/* ---------------------------------------------------------------- one kernel
 *
 * A step that is one elementwise fused program (a moving average, a
 * recurrence with a diagonal transition, a leaky integrator, any map over
 * time) runs on a device as one kernel for the whole loop
 * (xcs_backend.run_scan): each element's carries stay in registers, and
 * the launches (one per step otherwise) become one.  What does not fit (a
 * matmul or a reduction in the step, more than one group, a carry that is
 * not elementwise over the program's space, rows that are not contiguous,
 * an output that is a view or a pass-through) runs step by step, and so
 * does a loop whose kernel fails: the step loop then reports the failing
 * step (an integer division by zero at step t).  XCS_SCAN_KERNEL=0 turns
 * the kernel off (benchmarks compare the two). */

static bool same_shape(int nd, const int64_t *a, int nd2, const int64_t *b) {
    if (nd != nd2) return false;
    for (int d = 0; d < nd; d++)
        if (a[d] != b[d]) return false;
    return true;
}

/* The rows of x (axis 0 dropped) are C-contiguous (size-1 dims aside). */
static bool rows_contiguous(const xcs_tensor *x) {
    int64_t want = 1;
    for (int d = x->ndim - 1; d >= 1; d--) {
        if (x->shape[d] == 1) continue;
        if (x->strides[d] != want) return false;
        want *= x->shape[d];
    }
    return true;
}

/* The plan's one fused group, elementwise, when every other step is an
 * input or a constant; else NULL. */
static const xcs_plan_group *lone_group(const xcs_graph *g) {
    const xcs_plan *pl = g->plan;
    if (!pl || pl->n_groups != 1) return NULL;
    for (int s = 0; s < pl->n_steps; s++) {
        const xcs_plan_step *step = &pl->steps[s];
        if (step->group >= 0 ? pl->chain && pl->chain[s] > 1
                             : g->nodes[step->node].op != XCS_NODE_INPUT && g->nodes[step->node].op != XCS_NODE_CONST)
            return NULL;
    }
    const xcs_plan_group *grp = &pl->groups[0];
    const xcs_fused_program *p = &grp->prog;
    if (grp->matmul || p->n_instr < 1 || p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE) return NULL;
    return grp;
}

/* Every input node matches what it will read (a carry, or a row of its
 * xs leaf): otherwise the step loop reports the mismatch. */
static bool inputs_match(const xcs_graph *body, int n_carry, const xcs_tensor *const *inputs) {
    for (int i = 0; i < body->n_nodes; i++) {
        const xcs_node *n = &body->nodes[i];
        if (n->op != XCS_NODE_INPUT) continue;
        const xcs_tensor *x = inputs[n->aux];
        int row = n->aux >= n_carry; /* a row: the leaf's axis 0 dropped */
        if (x->dtype != n->dtype || !same_shape(x->ndim - row, x->shape + row, n->ndim, n->shape)) return false;
    }
    return true;
}

/* Header over base's memory through edge e (e's shape and strides, which
 * are over base's contiguous layout), at element offset `at` of base. */
static void edge_over(const xcs_tensor *base, const xcs_edge *e, int64_t at, xcs_tensor *h) {
    memset(h, 0, sizeof *h);
    h->storage = base->storage;
    h->dtype = base->dtype;
    h->ndim = e->ndim;
    memcpy(h->shape, e->shape, sizeof h->shape);
    memcpy(h->strides, e->strides, sizeof h->strides);
    h->offset = at + e->offset;
}

/* The loop's operands (sl->in, in_carry, in_step) from the group's input
 * edges; constants copied to the device into consts[k].  False: no fit. */
static bool loop_inputs(const xcs_graph *body, const xcs_plan_group *grp, int n_carry, const xcs_tensor *const *inputs,
                        xcs_device dev, int index, xcs_scan_loop *sl, xcs_tensor *ih, xcs_tensor **consts) {
    const xcs_fused_program *p = &grp->prog;
    for (int k = 0; k < grp->n_inputs; k++) {
        if (grp->input_edges[k] < 0) return false;
        const xcs_edge *e = &body->edges[grp->input_edges[k]];
        const xcs_node *src = &body->nodes[e->node];
        sl->in_carry[k] = -1;
        if (src->op == XCS_NODE_INPUT && src->aux < n_carry) { /* elementwise in the space: its register */
            sl->in_carry[k] = src->aux;
            if (!xcs_edge_is_identity(body, e) || !same_shape(src->ndim, src->shape, p->ndim, p->shape)) return false;
            continue;
        }
        const xcs_tensor *base;
        if (src->op == XCS_NODE_INPUT) {
            base = inputs[src->aux];
            if (!rows_contiguous(base)) return false;
            sl->in_step[k] = base->strides[0];
        } else if (src->op == XCS_NODE_CONST) {
            if (xcs_tensor_to(body->consts[src->aux], dev, index, &consts[k])) return false;
            base = consts[k];
            if (!xcs_tensor_is_contiguous(base)) return false;
        } else {
            return false;
        }
        edge_over(base, e, base->offset, &ih[k]);
        sl->in[k] = &ih[k];
    }
    return true;
}

/* Which carry (out_carry) and which y (yj, -1: none) each group output
 * is; false when a graph output is not a group output read whole, or one
 * output would be two carries or two ys. */
static bool loop_outputs(const xcs_graph *body, const xcs_plan_group *grp, int n_carry, xcs_scan_loop *sl, int *yj) {
    const xcs_fused_program *p = &grp->prog;
    for (int o = 0; o < grp->n_outputs; o++) {
        const xcs_node *n = &body->nodes[grp->output_nodes[o]];
        sl->out_carry[o] = yj[o] = -1;
        if (!same_shape(n->ndim, n->shape, p->ndim, p->shape)) return false;
    }
    for (int k = 0; k < body->n_outputs; k++) {
        const xcs_edge *e = &body->outputs[k];
        int o = 0;
        while (o < grp->n_outputs && grp->output_nodes[o] != e->node) o++;
        if (o == grp->n_outputs || !xcs_edge_is_identity(body, e)) return false;
        int *slot = k < n_carry ? &sl->out_carry[o] : &yj[o];
        if (*slot >= 0) return false;
        *slot = k < n_carry ? k : k - n_carry;
    }
    return true;
}

static bool scan_kernel(const xcs_graph *body, int n_carry, int64_t length, bool reverse,
                        const xcs_tensor *const *inputs, xcs_tensor **outs, xcs_device dev, int index,
                        const xcs_storage *where) {
    const xcs_backend *be = dev == XCS_DEVICE_CPU ? NULL : xcs_backend_for(dev);
    const xcs_plan_group *grp = NULL;
    if (!be) xcs_error_clear();
    if (!be || !be->run_scan || length < 1 || n_carry > XCS_SCAN_MAX_CARRY || xcs_env_off("XCS_SCAN_KERNEL") ||
        !(grp = lone_group(body)) || !inputs_match(body, n_carry, inputs))
        return false;
    const xcs_fused_program *p = &grp->prog;
    int64_t numel = 1;
    for (int d = 0; d < p->ndim; d++) numel *= p->shape[d];
    xcs_scan_loop sl;
    memset(&sl, 0, sizeof sl);
    sl.p = p;
    sl.length = length;
    sl.reverse = reverse;
    sl.n_carry = n_carry;
    xcs_tensor ih[XCS_FUSED_MAX_IO], oh[XCS_FUSED_MAX_IO], *consts[XCS_FUSED_MAX_IO] = {0};
    int yj[XCS_FUSED_MAX_IO];
    bool ok = numel > 0 && loop_outputs(body, grp, n_carry, &sl, yj) &&
              loop_inputs(body, grp, n_carry, inputs, dev, index, &sl, ih, consts);
    for (int q = 0; q < n_carry && ok; q++) {
        ok = xcs_tensor_is_contiguous(inputs[q]);
        sl.carry_init[q] = inputs[q];
    }
    xcs_status st = ok ? XCS_OK : XCS_ERR_UNSUPPORTED;
    for (int q = 0; q < n_carry && !st; q++)
        st = xcs_tensor_empty_on(where, inputs[q]->dtype, inputs[q]->ndim, inputs[q]->shape, &outs[q]);
    if (!st) st = stacked_ys(body, n_carry, length, where, outs);
    for (int q = 0; q < n_carry && !st; q++) sl.carry_final[q] = outs[q];
    for (int o = 0; o < grp->n_outputs && !st; o++) { /* y row 0 over the program's space (the node's layout) */
        if (yj[o] < 0) continue;
        const xcs_tensor *y = outs[n_carry + yj[o]];
        memset(&oh[o], 0, sizeof oh[o]);
        oh[o].storage = y->storage;
        oh[o].dtype = y->dtype;
        oh[o].ndim = p->ndim;
        memcpy(oh[o].shape, p->shape, sizeof oh[o].shape);
        xcs_strides_contiguous(p->ndim, p->shape, oh[o].strides);
        oh[o].offset = y->offset;
        sl.out[o] = &oh[o];
        sl.out_step[o] = y->strides[0];
    }
    if (!st) st = be->run_scan(&sl);
    for (int k = 0; k < XCS_FUSED_MAX_IO; k++) xcs_tensor_free(consts[k]);
    if (!st) return true;
    for (int k = 0; ok && k < body->n_outputs; k++) { /* no fit, or the kernel failed: the steps say why */
        xcs_tensor_free(outs[k]);
        outs[k] = NULL;
    }
    xcs_error_clear();
    return false;
}

/* ---------------------------------------------------------------- hoisting
 *
 * The part of a step that reads no carry (an RNN cell's x @ U, any
 * function of x alone) does not have to wait for the previous step: it is
 * computed for all steps at once before the loop, as one batched program
 * (x @ U for every t is one GEMM instead of `length` matrix-vector
 * products), and the loop body reads its row t like a row of xs.  Nodes
 * are split by whether they depend on a carry; the carry-free nodes that a
 * carry-dependent node (or an output) reads are the "hoisted" values: the
 * pre-program's outputs, and inputs of the loop body (after the xs). */
struct xcs_scan_program {
    xcs_graph *pre;  /* xs rows -> hoisted values (per step); NULL: nothing hoisted */
    xcs_graph *loop; /* carries, xs rows, hoisted rows -> carries, ys (optimised) */
    xcs_graph *full; /* the whole body, optimised: run when the hoisted part fails, so the error names its step */
    int n_carry, n_x, n_hoist;
    int n_inv;       /* the last n_inv of the n_x step inputs are loop invariants: read whole by every step */
};

static bool is_source(const xcs_node *n) { return n->op == XCS_NODE_INPUT || n->op == XCS_NODE_CONST; }

xcs_status xcs_graph_unread_input(xcs_graph *g, int i) {
    xcs_node *n = &g->nodes[i];
    xcs_tensor *z = NULL;
    xcs_status st = xcs_tensor_scalar(n->dtype, 0, &z);
    if (!st) st = xcs_graph_grow_consts(g);
    if (!st) {
        n->op = XCS_NODE_CONST;
        n->ndim = 0;
        n->aux = g->n_consts;
        g->consts[g->n_consts++] = z;
        z = NULL;
    }
    xcs_tensor_free(z);
    return st;
}

/* The pre-program: the carry-free nodes the hoisted ones need, its inputs
 * the xs (renumbered from 0), its outputs the hoisted nodes (mark[i] > 0,
 * in node order). */
static xcs_status build_pre(const xcs_graph *g, int n_carry, const int *mark, int n_hoist, xcs_graph **out) {
    int32_t *outs = malloc(((size_t)n_hoist + 1) * sizeof *outs);
    if (!outs) return xcs_error(XCS_ERR_MEMORY, "out of memory splitting a scan body");
    for (int i = 0, k = 0; i < g->n_nodes; i++)
        if (mark[i] > 0) outs[k++] = i;
    xcs_graph *p = NULL;
    xcs_status st = xcs_graph_clone(g, n_hoist, outs, &p);
    free(outs);
    if (st) return st;
    /* the carries are not inputs of the pre-program: nothing it keeps reads them, so they become
     * scalar constants that DCE drops with the nodes that read them */
    for (int i = 0; i < p->n_nodes && !st; i++) {
        xcs_node *n = &p->nodes[i];
        if (n->op != XCS_NODE_INPUT) continue;
        if (n->aux >= n_carry) {
            n->aux -= n_carry;
            continue;
        }
        st = xcs_graph_unread_input(p, i);
    }
    p->n_inputs -= n_carry;
    if (!st) st = xcs_graph_optimize(p); /* drops what reads a carry (batching replays every node) */
    if (st) {
        xcs_graph_free(p);
        return st;
    }
    *out = p;
    return XCS_OK;
}

xcs_status xcs_scan_program_new(const xcs_graph *body, int n_carry, int n_inv, xcs_scan_program **out) {
    if (n_carry < 0 || n_inv < 0 || n_carry + n_inv > body->n_inputs || body->n_captured)
        return xcs_error(XCS_ERR_VALUE, "scan: a body of %d inputs with %d carries and %d invariants", body->n_inputs,
                         n_carry, n_inv);
    if (body->plan) return xcs_error(XCS_ERR_VALUE, "scan: the body is already optimised (compile it first)");
    xcs_scan_program *sp = calloc(1, sizeof *sp);
    int *mark = calloc((size_t)body->n_nodes + 1, sizeof *mark); /* -1: reads a carry, 1: hoisted */
    if (!sp || !mark) {
        free(sp);
        free(mark);
        return xcs_error(XCS_ERR_MEMORY, "out of memory compiling a scan");
    }
    sp->n_carry = n_carry;
    sp->n_x = body->n_inputs - n_carry;
    sp->n_inv = n_inv;
    for (int i = 0; i < body->n_nodes; i++) {
        const xcs_node *n = &body->nodes[i];
        if (n->op == XCS_NODE_INPUT) mark[i] = n->aux < n_carry ? -1 : 0;
        for (int k = 0; k < n->n_in && mark[i] == 0; k++)
            if (mark[body->edges[n->first_edge + k].node] < 0) mark[i] = -1;
    }
    for (int i = 0; i < body->n_nodes; i++) { /* carry-free values read across the split */
        const xcs_node *n = &body->nodes[i];
        for (int k = 0; mark[i] < 0 && k < n->n_in; k++) {
            int j = body->edges[n->first_edge + k].node;
            if (mark[j] == 0 && !is_source(&body->nodes[j])) mark[j] = 1;
        }
    }
    for (int o = 0; o < body->n_outputs; o++) {
        int j = body->outputs[o].node;
        if (mark[j] == 0 && !is_source(&body->nodes[j])) mark[j] = 1;
    }
    for (int i = 0; i < body->n_nodes; i++) sp->n_hoist += mark[i] > 0;
    xcs_status st = sp->n_hoist ? build_pre(body, n_carry, mark, sp->n_hoist, &sp->pre) : XCS_OK;
    if (!st) st = xcs_graph_clone(body, 0, NULL, &sp->loop);
    if (!st && sp->n_hoist && !(st = xcs_graph_clone(body, 0, NULL, &sp->full))) st = xcs_graph_optimize(sp->full);
    for (int i = 0, k = 0; !st && i < body->n_nodes; i++) { /* the loop reads hoisted values as inputs */
        if (mark[i] <= 0) continue;
        xcs_node *n = &sp->loop->nodes[i];
        n->op = XCS_NODE_INPUT;
        n->n_in = 0;
        n->aux = body->n_inputs + k++;
    }
    if (!st) {
        sp->loop->n_inputs += sp->n_hoist;
        st = xcs_graph_optimize(sp->loop);
    }
    free(mark);
    if (st) {
        xcs_scan_program_free(sp);
        return st;
    }
    *out = sp;
    return XCS_OK;
}

void xcs_scan_program_free(xcs_scan_program *sp) {
    if (!sp) return;
    xcs_graph_free(sp->pre);
    xcs_graph_free(sp->loop);
    xcs_graph_free(sp->full);
    free(sp);
}

int xcs_scan_program_hoisted(const xcs_scan_program *sp) { return sp->n_hoist; }

const xcs_graph *xcs_scan_program_step(const xcs_scan_program *sp) { return sp->loop; }

/* An empty tensor on a device (no tensor there to take its place from). */
static xcs_status empty_on_device(xcs_dtype dt, int ndim, const int64_t *shape, xcs_device dev, int index,
                                  xcs_tensor **out) {
    xcs_storage *anchor = xcs_storage_new_on(1, dev, index);
    if (!anchor) return xcs_last_status();
    xcs_status st = xcs_tensor_empty_on(anchor, dt, ndim, shape, out);
    xcs_storage_release(anchor);
    return st;
}

/* Hoisted value k for all `length` steps: [length, ...] (a value the same
 * for every step, computed from constants alone, is broadcast). */
static xcs_status hoisted_rows(const xcs_tensor *v, bool batched, int64_t length, xcs_tensor **out) {
    if (batched) return xcs_tensor_view(v, out);
    int64_t shape[XCS_MAX_DIMS], strides[XCS_MAX_DIMS];
    if (v->ndim + 1 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_SHAPE, "scan: a hoisted value of %d dims", v->ndim);
    shape[0] = length;
    strides[0] = 0;
    memcpy(shape + 1, v->shape, (size_t)v->ndim * sizeof *shape);
    memcpy(strides + 1, v->strides, (size_t)v->ndim * sizeof *strides);
    return xcs_tensor_from_storage(v->storage, v->dtype, v->ndim + 1, shape, strides, v->offset, out);
}

xcs_status xcs_scan_program_run(const xcs_scan_program *sp, int64_t length, bool reverse, int n_in,
                                const xcs_tensor *const *inputs, xcs_tensor **outs) {
    return xcs_scan_program_run_on(sp, length, reverse, n_in, inputs, outs, XCS_DEVICE_CPU, 0);
}

/* The inputs as the loop reads them: each invariant seen as [length, ...]
 * rows that are all the same value (a stride-0 axis), the others as they
 * are; *owned gets the views made. */
static xcs_status invariant_rows(const xcs_scan_program *sp, int64_t length, const xcs_tensor *const *inputs,
                                 const xcs_tensor **rowed, xcs_tensor **owned) {
    int n_in = sp->n_carry + sp->n_x, first = n_in - sp->n_inv;
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_in; k++) rowed[k] = inputs[k];
    for (int k = first; k < n_in && !st; k++) {
        st = hoisted_rows(inputs[k], false, length, &owned[k - first]);
        rowed[k] = owned[k - first];
    }
    return st;
}

xcs_status xcs_scan_program_run_on(const xcs_scan_program *sp, int64_t length, bool reverse, int n_in,
                                   const xcs_tensor *const *raw, xcs_tensor **outs, xcs_device dev, int index) {
    if (n_in != sp->n_carry + sp->n_x)
        return xcs_error(XCS_ERR_VALUE, "scan: the body takes %d inputs, got %d", sp->n_carry + sp->n_x, n_in);
    int n_all = n_in + sp->n_hoist;
    const xcs_tensor **all = calloc((size_t)n_all + 1, sizeof *all);
    xcs_tensor **vals = calloc((size_t)sp->n_hoist + 1, sizeof *vals), **rows = calloc((size_t)sp->n_hoist + 1, sizeof *rows);
    xcs_tensor **inv = calloc((size_t)sp->n_inv + 1, sizeof *inv);
    bool *batched = calloc((size_t)sp->n_x + sp->n_hoist + 1, sizeof *batched), *vb = batched + sp->n_x;
    xcs_status st = all && vals && rows && inv && batched ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory starting a scan");
    if (!st) st = invariant_rows(sp, length, raw, all, inv); /* all[0, n_in): what the loop reads */
    const xcs_tensor *const *inputs = all;
    bool plain = false;
    if (!st && !sp->pre) { /* (scan_on checks the inputs) */
        st = scan_on(sp->loop, sp->n_carry, length, reverse, n_in, inputs, outs, dev, index);
    } else if (!st && !(st = check_inputs(sp->n_carry, length, n_in, inputs))) { /* before the hoisted part reads xs */
        for (int k = 0; k < sp->n_x; k++) batched[k] = k < sp->n_x - sp->n_inv;
        /* the hoisted part failing (an out-of-range index, a division by zero...): the plain loop says at which step */
        plain = length > 0 && xcs_graph_batch_run(sp->pre, raw + sp->n_carry, batched, length, dev, index, false, vals, vb);
        if (plain) st = scan_on(sp->full, sp->n_carry, length, reverse, n_in, inputs, outs, dev, index);
        for (int k = 0; !st && !plain && k < sp->n_hoist; k++) {
            if (length > 0) { st = hoisted_rows(vals[k], vb[k], length, &rows[k]); continue; }
            const xcs_node *n = &sp->pre->nodes[sp->pre->outputs[k].node]; /* no steps: empty rows */
            int64_t shape[XCS_MAX_DIMS] = {0};
            memcpy(shape + 1, n->shape, (size_t)n->ndim * sizeof *shape);
            st = dev == XCS_DEVICE_CPU ? xcs_tensor_empty(n->dtype, n->ndim + 1, shape, &rows[k])
                                       : empty_on_device(n->dtype, n->ndim + 1, shape, dev, index, &rows[k]);
        }
        for (int k = n_in; !st && !plain && k < n_all; k++) all[k] = rows[k - n_in];
        if (!st && !plain) st = scan_on(sp->loop, sp->n_carry, length, reverse, n_all, all, outs, dev, index);
    }
    for (int k = 0; vals && rows && k < sp->n_hoist; k++) {
        xcs_tensor_free(vals[k]);
        xcs_tensor_free(rows[k]);
    }
    for (int k = 0; inv && k < sp->n_inv; k++) xcs_tensor_free(inv[k]);
    free(all);
    free(vals);
    free(rows);
    free(inv);
    free(batched);
    return st;
}
