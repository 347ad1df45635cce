/* batch.c — vmap's batching rules: replaying a traced graph of the
 * per-example function on a whole batch (xcs_graph_batch).
 *
 * Every value is either unbatched (the per-example value, shared by all
 * examples) or batched: a contiguous [B, ...node shape] tensor.  Nodes are
 * replayed in order through the eager ops (so on traced inputs the batched
 * program is itself traced: vmap composes with jit, grad and itself).  A
 * node none of whose inputs is batched replays as it is.  Otherwise:
 *
 *   - an edge (a view of a node value) of a batched value is the same view
 *     of each example: batch stride = the per-example element count;
 *   - elementwise ops (unary, binary, where, cast, copy): the edges already
 *     have the node's shape, so [B, ...shape] against [...shape] broadcasts;
 *   - reductions and arg-reductions: the axes move up by one;
 *   - matmul: batched [B, ..., M, K] against unbatched [..., K, N]
 *     broadcasts over B by matmul's own batch rule;
 *   - linear algebra (solve, cholesky, slogdet): batch dims lead, so as
 *     matmul (the edges are broadcast to the node's batch when traced);
 *   - concat: unbatched inputs are broadcast to the batch, axis + 1;
 *   - take with unbatched indices: axis + 1; with batched indices, a gather
 *     at flat positions b * size + position per example;
 *   - scatter_add with shared indices: axis + 1; with batched indices, one
 *     scatter at positions b * n + index along the axis, then split.
 * Creation ops (full, arange, random) have no inputs: unbatched. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

static int64_t numel_of(int nd, const int64_t *s) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= s[i];
    return n;
}

/* v (a node's value, batched or not) read through edge e. */
static xcs_status read_edge(const xcs_tensor *v, bool batched, const xcs_edge *e, const xcs_node *src, int64_t B,
                            xcs_tensor **out) {
    int64_t shape[XCS_MAX_DIMS + 1], strides[XCS_MAX_DIMS + 1];
    int nd = e->ndim;
    if (batched) {
        if (nd + 1 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "vmap: more than %d dimensions", XCS_MAX_DIMS);
        shape[0] = B;
        strides[0] = numel_of(src->ndim, src->shape);
        memcpy(shape + 1, e->shape, (size_t)nd * sizeof *shape);
        memcpy(strides + 1, e->strides, (size_t)nd * sizeof *strides);
        nd++;
    } else {
        memcpy(shape, e->shape, (size_t)nd * sizeof *shape);
        memcpy(strides, e->strides, (size_t)nd * sizeof *strides);
    }
    if (v->graph) { /* a traced value: the same view on its node */
        xcs_tensor *t = calloc(1, sizeof *t);
        if (!t) return xcs_error(XCS_ERR_MEMORY, "out of memory batching a graph");
        *t = *v;
        t->ndim = nd;
        memcpy(t->shape, shape, (size_t)nd * sizeof *shape);
        memcpy(t->strides, strides, (size_t)nd * sizeof *strides);
        t->offset = v->offset + e->offset;
        t->flags = e->flags;
        *out = t;
        return XCS_OK;
    }
    xcs_status st = xcs_tensor_from_storage(v->storage, v->dtype, nd, shape, strides, v->offset + e->offset, out);
    if (!st) (*out)->flags = e->flags;
    return st;
}

/* Flat int64 positions b * stride + idx[b, ...] (idx batched [B, ...]). */
static xcs_status batch_positions(const xcs_tensor *idx, int64_t B, int64_t stride, xcs_tensor **out) {
    xcs_tensor *ib = NULL, *k = NULL, *off = NULL, *i64 = NULL, *r = NULL;
    int64_t bs[XCS_MAX_DIMS];
    xcs_status st = xcs_arange(0, (double)B, 1, XCS_I64, &ib);
    if (!st) st = xcs_tensor_scalar(XCS_I64, (double)stride, &k);
    if (!st) st = xcs_binary(XCS_OP_MUL, ib, k, &off);
    bs[0] = B;
    for (int d = 1; d < idx->ndim; d++) bs[d] = 1;
    if (!st) st = xcs_reshape(off, idx->ndim, bs, &r);
    if (!st) st = xcs_cast(idx, XCS_I64, &i64);
    if (!st) st = xcs_binary(XCS_OP_ADD, r, i64, out);
    xcs_tensor_free(ib); xcs_tensor_free(k); xcs_tensor_free(off); xcs_tensor_free(i64); xcs_tensor_free(r);
    return st;
}

static xcs_status batch_take(const xcs_tensor *x, bool xb, const xcs_tensor *idx, bool ib, int axis, int64_t B,
                             xcs_tensor **out) {
    if (!ib) return xcs_take(x, idx, xb ? axis + 1 : axis, out);
    /* per-example indices: x as [B, pre, A, post] flattened, positions per example */
    xcs_status st;
    xcs_tensor *xfull = NULL, *flat = NULL, *pos = NULL, *g = NULL;
    int xnd = xb ? x->ndim - 1 : x->ndim;
    const int64_t *xs = xb ? x->shape + 1 : x->shape;
    int64_t pre = 1, A = xs[axis], post = 1, shape[XCS_MAX_DIMS + 1];
    for (int d = 0; d < axis; d++) pre *= xs[d];
    for (int d = axis + 1; d < xnd; d++) post *= xs[d];
    shape[0] = B;
    memcpy(shape + 1, xs, (size_t)xnd * sizeof *shape);
    st = xb ? xcs_tensor_view(x, &xfull) : xcs_broadcast_to(x, xnd + 1, shape, &xfull);
    int64_t n = B * pre * A * post;
    if (!st) st = xcs_reshape(xfull, 1, &n, &flat);
    /* positions: ((b * pre + p) * A + idx[b, j]) * post + q, shaped [B, pre, J..., post] */
    int jn = idx->ndim - 1;
    if (xnd - 1 + jn + 1 > XCS_MAX_DIMS) st = st ? st : xcs_error(XCS_ERR_VALUE, "vmap: too many dimensions");
    xcs_tensor *bp = NULL, *ip = NULL, *qq = NULL, *t1 = NULL, *t2 = NULL, *kA = NULL, *kP = NULL;
    int64_t total_nd = 2 + jn + 1, s_bp[XCS_MAX_DIMS + 2], s_ip[XCS_MAX_DIMS + 2], s_q[XCS_MAX_DIMS + 2];
    for (int d = 0; d < total_nd; d++) s_bp[d] = s_ip[d] = s_q[d] = 1;
    s_bp[0] = B, s_bp[1] = pre;              /* b * pre + p on dims 0, 1 */
    s_ip[0] = B;                             /* idx [B, J...] on dims 0, 2.. */
    for (int d = 0; d < jn; d++) s_ip[2 + d] = idx->shape[1 + d];
    s_q[total_nd - 1] = post;
    if (!st) st = xcs_arange(0, (double)(B * pre), 1, XCS_I64, &t1);
    if (!st) st = xcs_reshape(t1, (int)total_nd, s_bp, &bp);
    xcs_tensor *i64 = NULL, *wrapped = NULL, *neg = NULL, *kA0 = NULL, *zero = NULL, *plusA = NULL;
    if (!st) st = xcs_cast(idx, XCS_I64, &i64);
    /* take wraps negative indices per example: idx < 0 -> idx + A */
    if (!st) st = xcs_tensor_scalar(XCS_I64, 0, &zero);
    if (!st) st = xcs_tensor_scalar(XCS_I64, (double)A, &kA0);
    if (!st) st = xcs_binary(XCS_OP_LT, i64, zero, &neg);
    if (!st) st = xcs_binary(XCS_OP_ADD, i64, kA0, &plusA);
    if (!st) st = xcs_where(neg, plusA, i64, &wrapped);
    if (!st) st = xcs_reshape(wrapped, (int)total_nd, s_ip, &ip);
    xcs_tensor_free(wrapped); xcs_tensor_free(neg); xcs_tensor_free(kA0); xcs_tensor_free(zero);
    xcs_tensor_free(plusA);
    if (!st) st = xcs_arange(0, (double)post, 1, XCS_I64, &t2);
    if (!st) st = xcs_reshape(t2, (int)total_nd, s_q, &qq);
    if (!st) st = xcs_tensor_scalar(XCS_I64, (double)A, &kA);
    if (!st) st = xcs_tensor_scalar(XCS_I64, (double)post, &kP);
    xcs_tensor *a1 = NULL, *a2 = NULL, *a3 = NULL;
    if (!st) st = xcs_binary(XCS_OP_MUL, bp, kA, &a1);
    if (!st) st = xcs_binary(XCS_OP_ADD, a1, ip, &a2);
    if (!st) st = xcs_binary(XCS_OP_MUL, a2, kP, &a3);
    if (!st) st = xcs_binary(XCS_OP_ADD, a3, qq, &pos);
    /* pos: [B*pre -> split below, J..., post]; gather, then shape [B, pre..., J..., post...] */
    if (!st) st = xcs_take(flat, pos, 0, &g);
    if (!st) {
        int64_t os[XCS_MAX_DIMS + 1];
        int on = 0;
        os[on++] = B;
        for (int d = 0; d < axis; d++) os[on++] = xs[d];
        for (int d = 0; d < jn; d++) os[on++] = idx->shape[1 + d];
        for (int d = axis + 1; d < xnd; d++) os[on++] = xs[d];
        st = xcs_reshape(g, on, os, out);
    }
    xcs_tensor_free(xfull); xcs_tensor_free(flat); xcs_tensor_free(pos); xcs_tensor_free(g);
    xcs_tensor_free(bp); xcs_tensor_free(ip); xcs_tensor_free(qq); xcs_tensor_free(t1); xcs_tensor_free(t2);
    xcs_tensor_free(kA); xcs_tensor_free(kP); xcs_tensor_free(i64); xcs_tensor_free(a1); xcs_tensor_free(a2);
    xcs_tensor_free(a3);
    return st;
}

/* scatter_add along axis on a batch.  Shared indices: the axis moves up by
 * one.  Per-example indices [B, J...]: example b's values land at b * n +
 * idx[b] of one scatter into [pre..., B * n, post...], its values with the
 * batch dim moved next to the indices' dims, then split and moved back. */
static xcs_status batch_scatter(const xcs_tensor *idx, bool ib, const xcs_tensor *src, bool sb, int axis, int64_t n,
                                int64_t B, xcs_tensor **out) {
    if (!ib) return xcs_scatter_add_axis(idx, src, axis + 1, n, out);
    const int sn = sb ? src->ndim - 1 : src->ndim, k = idx->ndim - 1, rn = sn - k + 1;
    if (sn + 1 > XCS_MAX_DIMS || rn + 1 > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "vmap: more than %d dimensions", XCS_MAX_DIMS);
    int64_t full[XCS_MAX_DIMS], split[XCS_MAX_DIMS];
    int to_axis[XCS_MAX_DIMS], to_front[XCS_MAX_DIMS];
    full[0] = B;
    memcpy(full + 1, sb ? src->shape + 1 : src->shape, (size_t)sn * sizeof *full);
    for (int d = 0; d <= sn; d++) to_axis[d] = d < axis ? d + 1 : d == axis ? 0 : d; /* B before the indices' dims */
    int m = 0;
    for (int d = 0; d < axis; d++) split[m++] = full[1 + d];
    split[m++] = B;
    split[m++] = n;
    for (int d = axis + k; d < sn; d++) split[m++] = full[1 + d];
    for (int d = 0; d <= rn; d++) to_front[d] = d == 0 ? axis : d <= axis ? d - 1 : d; /* and back in front */
    xcs_tensor *s2 = NULL, *st_ = NULL, *pos = NULL, *r = NULL, *r2 = NULL, *r3 = NULL;
    xcs_status st = sb ? xcs_tensor_view(src, &s2) : xcs_broadcast_to(src, sn + 1, full, &s2);
    if (!st) st = xcs_permute(s2, to_axis, &st_);
    if (!st) st = batch_positions(idx, B, n, &pos);
    if (!st) st = xcs_scatter_add_axis(pos, st_, axis, B * n, &r);
    if (!st) st = xcs_reshape(r, rn + 1, split, &r2);
    if (!st) st = xcs_permute(r2, to_front, &r3);
    if (!st) st = xcs_contiguous(r3, out);
    xcs_tensor_free(s2); xcs_tensor_free(st_); xcs_tensor_free(pos); xcs_tensor_free(r); xcs_tensor_free(r2);
    xcs_tensor_free(r3);
    return st;
}

/* psum / pmax / all_gather over the mapped axis (x batched [B, ...] or shared). */
static xcs_status batch_collective(const xcs_node *n, const xcs_tensor *x, bool xb, int64_t B, xcs_tensor **out) {
    if (n->op == XCS_OP_ALL_GATHER) {
        if (xb) return xcs_copy(x, out);
        int64_t s[XCS_MAX_DIMS];
        s[0] = B;
        memcpy(s + 1, x->shape, (size_t)x->ndim * sizeof *s);
        xcs_tensor *v = NULL;
        xcs_status st = xcs_broadcast_to(x, x->ndim + 1, s, &v);
        if (!st) st = xcs_copy(v, out);
        xcs_tensor_free(v);
        return st;
    }
    if (xb) return xcs_reduce(n->op == XCS_OP_PSUM ? XCS_OP_SUM : XCS_OP_MAX, x, 1u, false, out);
    if (n->op == XCS_OP_PMAX) return xcs_copy(x, out);
    xcs_tensor *k = NULL;
    xcs_status st = xcs_tensor_scalar(XCS_I64, (double)B, &k);
    if (!st) {
        k->flags |= XCS_TENSOR_WEAK;
        st = xcs_binary(XCS_OP_MUL, x, k, out);
    }
    xcs_tensor_free(k);
    return st;
}

/* A collective of another map (numbered n->aux), met while batching this
 * one (an outer map's, inside an inner map): recorded again, over x as
 * batched here, for that map to compute; the result is batched here as x
 * is.  carrier: any value of the enclosing trace (axis_index has no input
 * to record it by), or NULL. */
static xcs_status pass_collective(const xcs_node *n, const xcs_tensor *x, bool xb, const xcs_tensor *carrier, bool *ob,
                                  xcs_tensor **out) {
    int64_t size = n->axis;
    if (n->op == XCS_OP_AXIS_INDEX) { /* the same for every example here */
        *ob = false;
        if (!carrier || !carrier->graph)
            return xcs_error(XCS_ERR_VALUE, "axis_index of an enclosing map met outside its trace");
        return xcs_collective_on(XCS_OP_AXIS_INDEX, carrier, size, n->aux, out);
    }
    *ob = xb;
    xcs_tensor *r = NULL;
    /* x not traced: the same in every example of that map too */
    xcs_status st = x->graph ? xcs_collective_on(n->op, x, size, n->aux, &r) : batch_collective(n, x, false, size, &r);
    if (st || n->op != XCS_OP_ALL_GATHER || !xb) {
        if (!st) *out = r;
        return st;
    }
    int perm[XCS_MAX_DIMS]; /* gathered [size, B, ...]: this map's batch first */
    for (int d = 0; d < r->ndim; d++) perm[d] = d;
    perm[0] = 1;
    perm[1] = 0;
    st = xcs_permute(r, perm, out);
    xcs_tensor_free(r);
    return st;
}

/* How a batch run sees the map it batches: its number and size, and a
 * value of the enclosing trace (pass_collective). */
typedef struct batch_map {
    int64_t B;
    int32_t id;
    const xcs_tensor *carrier;
} batch_map;

/* One key's draw (or split) of RANDOM node n, from key (concrete or traced). */
static xcs_status random_draw(const xcs_node *n, const xcs_tensor *key, xcs_tensor *const *in, xcs_tensor **out) {
    if (n->op == XCS_OP_RANDOM_SPLIT) return xcs_random_split_a(key, n->shape[0], out);
    if (n->op == XCS_OP_RANDOM_NORMAL) return xcs_random_normal_a(key, n->dtype, n->ndim, n->shape, out);
    return xcs_random_uniform_a(key, n->dtype, n->ndim, n->shape, xcs_tensor_get_f64(in[1], 0),
                                xcs_tensor_get_f64(in[2], 0), out);
}

/* A RANDOM node: one key shared by every example, one draw; a batched key
 * [B, 2], each example its own draw from its own key, stacked (the same
 * numbers as each example alone). */
static xcs_status batch_random(const xcs_node *n, xcs_tensor *const *in, bool kb, int64_t B, xcs_tensor **out) {
    if (!kb) return random_draw(n, in[0], in, out);
    xcs_tensor **draws = calloc((size_t)(B > 0 ? B : 1), sizeof *draws);
    if (!draws) return xcs_error(XCS_ERR_MEMORY, "vmap: out of memory drawing %lld examples' numbers", (long long)B);
    xcs_status st = XCS_OK;
    for (int64_t b = 0; b < B && !st; b++) {
        xcs_tensor *key = NULL;
        if (!(st = xcs_index_axis(in[0], 0, b, &key))) st = random_draw(n, key, in, &draws[b]);
        xcs_tensor_free(key);
    }
    if (!st && B > 0) st = xcs_stack((int)B, (const xcs_tensor *const *)draws, 0, out);
    if (!st && B == 0) {
        int64_t s[XCS_MAX_DIMS + 1] = {0};
        memcpy(s + 1, n->shape, (size_t)n->ndim * sizeof *s);
        st = xcs_full(n->dtype, n->ndim + 1, s, 0, out);
    }
    for (int64_t b = 0; b < B; b++) xcs_tensor_free(draws[b]);
    free(draws);
    return st;
}

/* Replays node n with inputs `in` (edge reads; batched flags per input). */
static xcs_status replay(const xcs_node *n, xcs_tensor *const *in, const bool *ib, const batch_map *m, bool *ob,
                         xcs_tensor **out) {
    const int64_t B = m->B;
    bool any = false;
    for (int k = 0; k < n->n_in; k++) any |= ib[k];
    *ob = any;
    xcs_op_kind kind = xcs_op_get_info(n->op)->kind;
    switch (kind) {
    case XCS_KIND_UNARY: return xcs_unary(n->op, in[0], out);
    case XCS_KIND_BINARY: return xcs_binary(n->op, in[0], in[1], out);
    case XCS_KIND_TERNARY: return xcs_where(in[0], in[1], in[2], out);
    case XCS_KIND_CAST: return xcs_cast(in[0], n->dtype, out);
    case XCS_KIND_COPY: return xcs_copy(in[0], out);
    case XCS_KIND_REDUCE: return xcs_reduce(n->op, in[0], any ? n->axes << 1 : n->axes, true, out);
    case XCS_KIND_ARGREDUCE: return xcs_argreduce(n->op, in[0], any ? n->axis + 1 : n->axis, true, out);
    case XCS_KIND_SORT: return (n->op == XCS_OP_SORT ? xcs_sort : xcs_argsort)(in[0], any ? n->axis + 1 : n->axis, out);
    case XCS_KIND_CUMULATIVE: return xcs_cumsum(in[0], any ? n->axis + 1 : n->axis, out);
    case XCS_KIND_LINALG: /* batch dims lead: [B, ...] broadcasts against an unbatched operand */
        return xcs_linalg(n->op, n->n_in, (const xcs_tensor *const *)in, out);
    case XCS_KIND_MATMUL: return xcs_matmul(in[0], in[1], out);
    case XCS_KIND_TAKE: return batch_take(in[0], ib[0], in[1], ib[1], n->axis, B, out);
    case XCS_KIND_SCATTER:
        if (!any) return xcs_scatter_add_axis(in[0], in[1], n->axis, n->shape[n->axis], out);
        return batch_scatter(in[0], ib[0], in[1], ib[1], n->axis, n->shape[n->axis], B, out);
    case XCS_KIND_COLLECTIVE:
        if (m->id && n->aux && n->aux != m->id) return pass_collective(n, in[0], any, m->carrier, ob, out);
        if (n->op == XCS_OP_AXIS_INDEX) { /* 0, 1, ..., B-1: batched */
            *ob = true;
            return xcs_arange(0, (double)B, 1, XCS_I64, out);
        }
        *ob = false; /* the result is the same for every example: unbatched */
        return batch_collective(n, in[0], any, B, out);
    case XCS_KIND_RANDOM: return batch_random(n, in, ib[0], B, out);
    case XCS_KIND_CONCAT: {
        if (!any) return xcs_concat(n->n_in, (const xcs_tensor *const *)in, n->axis, out);
        xcs_tensor **ys = calloc((size_t)n->n_in, sizeof *ys); /* (a scan's stacked ys: thousands) */
        if (!ys) return xcs_error(XCS_ERR_MEMORY, "vmap: out of memory batching a concatenate");
        xcs_status st = XCS_OK;
        for (int k = 0; k < n->n_in && !st; k++) {
            int64_t s[XCS_MAX_DIMS + 1];
            s[0] = B;
            memcpy(s + 1, in[k]->shape, (size_t)in[k]->ndim * sizeof *s);
            st = ib[k] ? xcs_tensor_view(in[k], &ys[k]) : xcs_broadcast_to(in[k], in[k]->ndim + 1, s, &ys[k]);
        }
        if (!st) st = xcs_concat(n->n_in, (const xcs_tensor *const *)ys, n->axis + 1, out);
        for (int k = 0; k < n->n_in; k++) xcs_tensor_free(ys[k]);
        free(ys);
        return st;
    }
    default:
        return xcs_error(XCS_ERR_UNSUPPORTED, "vmap: no batching rule for %s", xcs_op_name(n->op));
    }
}

xcs_status xcs_graph_batch(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, const bool *batched,
                           int64_t B, xcs_tensor **outs, bool *out_batched) {
    return xcs_graph_batch_on(g, n_in, inputs, batched, B, 0, outs, out_batched);
}

xcs_status xcs_graph_batch_on(const xcs_graph *g, int n_in, const xcs_tensor *const *inputs, const bool *batched,
                              int64_t B, int32_t axis_id, xcs_tensor **outs, bool *out_batched) {
    const int n_real = g->n_inputs - g->n_captured;
    if (n_in != n_real) return xcs_error(XCS_ERR_VALUE, "vmap: the graph takes %d inputs, got %d", n_real, n_in);
    if (B < 0) return xcs_error(XCS_ERR_VALUE, "vmap: negative batch size %lld", (long long)B);
    xcs_tensor **val = calloc((size_t)g->n_nodes + 1, sizeof *val);
    bool *vb = calloc((size_t)g->n_nodes + 1, sizeof *vb);
    if (!val || !vb) {
        free(val);
        free(vb);
        return xcs_error(XCS_ERR_MEMORY, "out of memory batching a graph");
    }
    batch_map m = {.B = B, .id = axis_id};
    for (int k = 0; k < n_in && !m.carrier; k++)
        if (inputs[k]->graph) m.carrier = inputs[k];
    for (int k = 0; k < g->n_captured && !m.carrier; k++)
        if (g->captured[k]->graph) m.carrier = g->captured[k];
    xcs_status st = XCS_OK;
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const xcs_node *n = &g->nodes[i];
        if (n->op == XCS_NODE_INPUT && n->aux >= n_real) { /* a captured value of an enclosing trace: shared */
            st = xcs_contiguous(g->captured[n->aux - n_real], &val[i]);
            continue;
        }
        if (n->op == XCS_NODE_INPUT) {
            const xcs_tensor *x = inputs[n->aux];
            bool b = batched[n->aux];
            bool ok = x->ndim == n->ndim + (b ? 1 : 0) && (!b || x->shape[0] == B);
            for (int d = 0; ok && d < n->ndim; d++) ok = x->shape[d + (b ? 1 : 0)] == n->shape[d];
            if (!ok) {
                char want[160], got[160];
                st = xcs_error(XCS_ERR_SHAPE, "vmap: argument %d should be %s%s per example (batch %lld), got %s",
                               n->aux, xcs_dtype_name(n->dtype), xcs_shape_str(n->ndim, n->shape, want, sizeof want),
                               (long long)B, xcs_shape_str(x->ndim, x->shape, got, sizeof got));
                break;
            }
            st = xcs_contiguous(x, &val[i]);
            vb[i] = b;
            continue;
        }
        if (n->op == XCS_NODE_CONST) {
            st = xcs_tensor_view(g->consts[n->aux], &val[i]);
            continue;
        }
        xcs_tensor *in_small[8] = {0}, **in = in_small;
        bool ib_small[8] = {false}, *ib = ib_small;
        if (n->n_in > 8) { /* a concatenate of many (a scan's stacked ys) */
            in = calloc((size_t)n->n_in, sizeof *in);
            ib = calloc((size_t)n->n_in, sizeof *ib);
            if (!in || !ib) {
                if (in != in_small) free(in);
                if (ib != ib_small) free(ib);
                st = xcs_error(XCS_ERR_MEMORY, "out of memory batching a graph");
                break;
            }
        }
        int k = 0;
        for (; k < n->n_in && !st; k++) {
            const xcs_edge *e = &g->edges[n->first_edge + k];
            ib[k] = vb[e->node];
            st = read_edge(val[e->node], ib[k], e, &g->nodes[e->node], B, &in[k]);
        }
        xcs_tensor *r = NULL;
        bool rb = false;
        if (!st && n->op == XCS_OP_SCAN) { /* every output's node at once: val and vb set, r stays NULL */
            if (!val[i]) st = xcs_scan_node_batch(g, i, in, ib, B, m.id, val, vb);
        } else if (!st) {
            st = replay(n, in, ib, &m, &rb, &r);
        }
        for (int j = 0; j < k; j++) xcs_tensor_free(in[j]);
        if (in != in_small) free(in);
        if (ib != ib_small) free(ib);
        if (st) {
            xcs_error_context(st, "vmap: node %%%d (%s)", i, xcs_op_name(n->op));
            break;
        }
        /* node values are contiguous [B, ...shape] or [...shape] */
        if (r) {
            st = xcs_contiguous(r, &val[i]);
            xcs_tensor_free(r);
            vb[i] = rb;
        }
    }
    int made = 0;
    for (; made < g->n_outputs && !st; made++) {
        const xcs_edge *e = &g->outputs[made];
        st = read_edge(val[e->node], vb[e->node], e, &g->nodes[e->node], B, &outs[made]);
        if (!st) outs[made]->flags = 0;
        out_batched[made] = vb[e->node];
    }
    if (st)
        for (int j = 0; j < made; j++) { xcs_tensor_free(outs[j]); outs[j] = NULL; }
    for (int i = 0; i < g->n_nodes; i++) xcs_tensor_free(val[i]);
    free(val);
    free(vb);
    return st;
}
