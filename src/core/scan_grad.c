/* scan_grad.c — what autodiff.c's rule for a scan op builds.
 *
 * xcs_scan_with_residuals makes the forward loop also stack the carry
 * leaving each step; the carry entering each step (the residual) is that
 * shifted by a step.  xcs_scan_vjp_body builds the reverse loop's step:
 * the body replayed on the residual row (xcs_graph_inline) and the VJP of
 * sum(out * ct) over its float outputs.  An invariant's step cotangent is
 * summed in a carry of the reverse loop, or, when it is a thin product of
 * two step values, stacked as its two factors and summed by one GEMM
 * after the loop (xcs_scan_ct_gemm). */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

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
            xcs_dtype dt = xcs_scan_output_sig(d, base + q, &nd, shape);
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
    for (int q = 0; q < nc; q++) VJP_INPUT(xcs_scan_input_node(f, q));               /* ct of the carry out */
    for (int v = 0; v < ni; v++)                                              /* ct accumulators */
        if (kind[v] == XCS_SCAN_CT_SUM) VJP_INPUT(xcs_scan_input_node(f, nc + nx + v));
    for (int q = 0; q < nc + nx; q++) VJP_INPUT(xcs_scan_input_node(f, q));          /* carry in, x row */
    for (int j = 0; j < ny && !st; j++) {                                     /* ct of the y row */
        const xcs_edge *e = &f->outputs[nc + j];
        st = xcs_graph_input(b, f->nodes[e->node].dtype, e->ndim, e->shape, &in[k++]);
    }
    for (int v = 0; v < ni; v++) VJP_INPUT(xcs_scan_input_node(f, nc + nx + v));     /* invariants */
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
        kinds[v] = !xcs_dtype_is_float(xcs_scan_input_node(d->body, nc + nx + v)->dtype) ? XCS_SCAN_CT_NONE
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
    xcs_tensors_drop(in, n_b);
    xcs_tensors_drop(fo, d->n_out);
    xcs_tensors_drop(grads, n_w);
    xcs_tensors_drop(ct_all, n_w);
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

