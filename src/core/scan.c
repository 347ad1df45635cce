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
    *out = *x;
    out->ndim = x->ndim - 1;
    memmove(out->shape, x->shape + 1, (size_t)out->ndim * sizeof *out->shape);
    memmove(out->strides, x->strides + 1, (size_t)out->ndim * sizeof *out->strides);
    out->offset = x->offset + t * x->strides[0];
    out->flags = 0;
}

static bool edge_matches_input(const xcs_graph *g, const xcs_edge *e, const xcs_node *in) {
    if (g->nodes[e->node].dtype != in->dtype || e->ndim != in->ndim) return false;
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != in->shape[d]) return false;
    return true;
}

/* The checks a body must pass before the loop starts. */
static xcs_status check_body(const xcs_graph *body, int n_carry, int64_t length, int n_in,
                             const xcs_tensor *const *inputs) {
    char want[160], got[160];
    if (n_carry < 0 || n_in != body->n_inputs || body->n_captured > 0)
        return xcs_error(XCS_ERR_VALUE, "scan: the body takes %d inputs (%d captured), got %d with %d carries",
                         body->n_inputs, body->n_captured, n_in, n_carry);
    if (n_carry > body->n_outputs)
        return xcs_error(XCS_ERR_VALUE, "scan: %d carries but the body returns %d values", n_carry, body->n_outputs);
    if (length < 0) return xcs_error(XCS_ERR_VALUE, "scan: length must be >= 0, got %lld", (long long)length);
    const xcs_node **in_node = calloc((size_t)n_in + 1, sizeof *in_node);
    if (!in_node) return xcs_error(XCS_ERR_MEMORY, "out of memory starting a scan");
    xcs_status st = XCS_OK;
    int found = 0;
    for (int i = 0; i < body->n_nodes && found < n_in; i++)
        if (body->nodes[i].op == XCS_NODE_INPUT) {
            in_node[body->nodes[i].aux] = &body->nodes[i];
            found++;
        }
    if (found != n_in) st = xcs_error(XCS_ERR_INTERNAL, "scan: the body has %d input nodes for %d inputs", found, n_in);
    for (int k = 0; k < n_carry && !st; k++) {
        const xcs_edge *e = &body->outputs[k];
        if (!edge_matches_input(body, e, in_node[k]))
            st = xcs_error(XCS_ERR_TYPE,
                             "scan: the carry must keep its shape and dtype; leaf %d enters as %s%s and the body "
                             "returns %s%s", k, xcs_dtype_name(in_node[k]->dtype),
                             xcs_shape_str(in_node[k]->ndim, in_node[k]->shape, want, sizeof want),
                             xcs_dtype_name(body->nodes[e->node].dtype), xcs_shape_str(e->ndim, e->shape, got, sizeof got));
    }
    free(in_node);
    for (int k = 0; k < n_in && !st; k++) {
        const xcs_tensor *x = inputs[k];
        if (x->graph) return xcs_error(XCS_ERR_VALUE, "scan: input %d is traced; the loop takes concrete arrays", k);
        if (k >= n_carry && (x->ndim < 1 || x->shape[0] != length))
            st = xcs_error(XCS_ERR_SHAPE, "scan: xs leaf %d has shape %s; its leading axis must be the length %lld",
                             k - n_carry, xcs_shape_str(x->ndim, x->shape, got, sizeof got), (long long)length);
    }
    return st;
}

/* Copies src into the contiguous header dst (same shape and dtype). */
static xcs_status copy_into(const xcs_backend *be, xcs_tensor *src, xcs_tensor *dst) {
    if (xcs_tensor_numel(src) == 0) return XCS_OK;
    return be->elementwise(XCS_OP_COPY, 1, (const xcs_tensor *const *)&src, src->dtype, dst);
}

/* The loop.  Each step's carry is written straight into one of two buffers
 * per carry (alternating, so a step never writes what it reads) and each y
 * straight into its row of the stacked output: run.c's output destinations
 * (xcs_run.dest), so a step allocates nothing.  A value the body does not
 * compute in place (a carry passed through unchanged, a y that is a view)
 * is copied there instead. */
xcs_status xcs_graph_scan(const xcs_graph *body, int n_carry, int64_t length, bool reverse, int n_in,
                          const xcs_tensor *const *inputs, xcs_tensor **outs) {
    xcs_status st = check_body(body, n_carry, length, n_in, inputs);
    if (st) return st;
    int n_out = body->n_outputs, n_y = n_out - n_carry;
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CPU);
    if (!be) return xcs_error(XCS_ERR_UNSUPPORTED, "scan: no CPU backend");
    xcs_tensor **buf = calloc((size_t)n_carry * 2 + 1, sizeof *buf); /* two per carry */
    xcs_tensor **step_out = calloc((size_t)n_out + 1, sizeof *step_out);
    xcs_tensor **dest = calloc((size_t)n_out + 1, sizeof *dest);
    const xcs_tensor **step_in = calloc((size_t)n_in + 1, sizeof *step_in);
    xcs_tensor *rows = malloc(((size_t)(n_in - n_carry) + (size_t)n_y + 1) * sizeof *rows);
    xcs_run r = {0};
    if (!buf || !step_out || !dest || !step_in || !rows) st = xcs_error(XCS_ERR_MEMORY, "out of memory starting a scan");
    for (int q = 0; q < n_carry && !st && length > 0; q++)
        for (int b = 0; b < 2 && !st; b++)
            st = xcs_tensor_empty(inputs[q]->dtype, inputs[q]->ndim, inputs[q]->shape, &buf[2 * q + b]);
    /* ys: [length, ...y's shape] each */
    for (int j = 0; j < n_y && !st; j++) {
        const xcs_edge *e = &body->outputs[n_carry + j];
        int64_t shape[XCS_MAX_DIMS];
        if (e->ndim + 1 > XCS_MAX_DIMS) {
            st = xcs_error(XCS_ERR_SHAPE, "scan: output y %d has %d dims; stacking needs one more (at most %d)", j,
                           e->ndim, XCS_MAX_DIMS);
            break;
        }
        shape[0] = length;
        memcpy(shape + 1, e->shape, (size_t)e->ndim * sizeof *shape);
        st = xcs_tensor_empty(body->nodes[e->node].dtype, e->ndim + 1, shape, &outs[n_carry + j]);
    }
    if (!st) st = xcs_run_open(body, &r);
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
