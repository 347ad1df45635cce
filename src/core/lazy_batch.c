/* lazy_batch.c — computing the same pending values of several lazy graphs
 * as one batched program (xcs_lazy_key, xcs_lazy_concretize_batch; see
 * xcs.h).
 *
 * vmap over a function that makes orchestration calls runs each example's
 * Python body on its own thread, recording its tensor work in its own lazy
 * graph.  The examples run the same code, so when they need values (to
 * pass to an orchestration call, or to return) their pending programs are
 * usually the same up to the values of their constants (the example's
 * arguments, the results of its earlier calls).  Such a program is built
 * once from example 0's region: each constant that differs between the
 * examples becomes an input, the others (shared weights, equal scalars)
 * stay constants; vmap's rules (batch.c) replay it over the stacked inputs
 * into a fresh lazy graph, which is optimised (fused) and run once; each
 * example's nodes then become constants holding their row of the results
 * (the tensors stay traced; reading one then computes nothing). */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

/* The nodes a request's values need, in graph order. */
typedef struct region {
    int n;
    int32_t *idx;    /* position -> node of the graph */
    int32_t *pos;    /* node of the graph -> position, or -1 */
    int n_out;       /* the distinct pending nodes the values view, in request order */
    int32_t *out;    /* their positions */
} region;

static void region_free(region *r) {
    free(r->idx);
    free(r->pos);
    free(r->out);
    memset(r, 0, sizeof *r);
}

static bool pending(const xcs_graph *g, const xcs_tensor *t) {
    return t->graph == g && t->node >= 0 && t->node < g->n_nodes && g->nodes[t->node].op != XCS_NODE_CONST;
}

static xcs_status region_of(const xcs_graph *g, int n, const xcs_tensor *const *ts, region *r) {
    memset(r, 0, sizeof *r);
    size_t nn = (size_t)g->n_nodes + 1;
    bool *live = calloc(nn, sizeof *live);
    r->idx = malloc(nn * sizeof *r->idx);
    r->pos = malloc(nn * sizeof *r->pos);
    r->out = malloc(((size_t)n + 1) * sizeof *r->out);
    if (!live || !r->idx || !r->pos || !r->out) {
        free(live);
        region_free(r);
        return xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    }
    for (int j = 0; j < n; j++)
        if (pending(g, ts[j])) live[ts[j]->node] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (!live[i]) continue;
        const xcs_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) live[g->edges[nd->first_edge + k].node] = true;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        r->pos[i] = live[i] ? r->n : -1;
        if (live[i]) r->idx[r->n++] = i;
    }
    for (int j = 0; j < n; j++) {
        if (!pending(g, ts[j])) continue;
        int32_t p = r->pos[ts[j]->node];
        bool seen = false;
        for (int o = 0; o < r->n_out && !seen; o++) seen = r->out[o] == p;
        if (!seen) r->out[r->n_out++] = p;
    }
    free(live);
    return XCS_OK;
}

/* The region as a sequence of numbers that is equal for two regions exactly
 * when they are the same program up to their constants' values: every
 * node's op, types, shape and attributes, every edge's view with its source
 * as a position, and the pending nodes. */
static xcs_status region_sig(const xcs_graph *g, const region *r, int64_t **out, size_t *len) {
    size_t cap = 2 + (size_t)r->n_out;
    for (int i = 0; i < r->n; i++) {
        const xcs_node *nd = &g->nodes[r->idx[i]];
        cap += 8 + (size_t)nd->ndim + (size_t)nd->n_in * (4 + 2 * XCS_MAX_DIMS);
    }
    int64_t *s = malloc(cap * sizeof *s);
    if (!s) return xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    size_t k = 0;
    s[k++] = r->n;
    for (int i = 0; i < r->n; i++) {
        const xcs_node *nd = &g->nodes[r->idx[i]];
        s[k++] = nd->op;
        s[k++] = nd->dtype;
        s[k++] = nd->compute;
        s[k++] = nd->axes;
        s[k++] = nd->axis;
        s[k++] = nd->n_in;
        s[k++] = nd->ndim;
        for (int d = 0; d < nd->ndim; d++) s[k++] = nd->shape[d];
        for (int e = 0; e < nd->n_in; e++) {
            const xcs_edge *ed = &g->edges[nd->first_edge + e];
            s[k++] = r->pos[ed->node];
            s[k++] = ed->flags;
            s[k++] = ed->offset;
            s[k++] = ed->ndim;
            for (int d = 0; d < ed->ndim; d++) {
                s[k++] = ed->shape[d];
                s[k++] = ed->strides[d];
            }
        }
    }
    s[k++] = r->n_out;
    for (int o = 0; o < r->n_out; o++) s[k++] = r->out[o];
    *out = s;
    *len = k;
    return XCS_OK;
}

uint64_t xcs_lazy_key(const xcs_graph *g, int n, const xcs_tensor *const *ts, xcs_lazy_cost *cost) {
    region r;
    int64_t *sig = NULL;
    size_t len = 0;
    uint64_t h = 0;
    if (cost) memset(cost, 0, sizeof *cost);
    if (g->n_inputs || region_of(g, n, ts, &r)) return 0;
    if (r.n_out && !region_sig(g, &r, &sig, &len)) {
        h = xcs_fnv(0xcbf29ce484222325ull, sig, len * sizeof *sig);
        h += !h; /* 0 means nothing pending */
    }
    for (int i = 0; cost && h && i < r.n; i++) {
        const xcs_node *nd = &g->nodes[r.idx[i]];
        if (nd->op != XCS_NODE_CONST) {
            cost->ops++;
            continue;
        }
        int64_t numel = 1;
        for (int d = 0; d < nd->ndim; d++) numel *= nd->shape[d];
        cost->bytes += numel * (int64_t)xcs_dtype_size(nd->dtype);
    }
    free(sig);
    region_free(&r);
    return h;
}

/* Constants a and b hold the same value: the same memory, or small host
 * values with the same bytes. */
static bool same_const(const xcs_tensor *a, const xcs_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
    int64_t numel = 1;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] != b->shape[d] || a->strides[d] != b->strides[d]) return false;
        numel *= a->shape[d];
    }
    if (a->storage && b->storage && a->storage->data == b->storage->data && a->offset == b->offset) return true;
    size_t bytes = (size_t)numel * xcs_dtype_size(a->dtype);
    return bytes <= 256 && xcs_tensor_on_host(a) && xcs_tensor_on_host(b) &&
           memcmp(xcs_tensor_data(a), xcs_tensor_data(b), bytes) == 0; /* constants are contiguous */
}

/* Example 0's region as a graph: constants that vary are inputs (in region
 * order), the pending nodes its outputs, whole. */
static xcs_status build_program(const xcs_graph *g, const region *r, const bool *varying, xcs_graph **out) {
    xcs_graph *p = NULL;
    xcs_status st = xcs_graph_new(&p);
    if (st) return st;
    int n_edges = 0;
    for (int i = 0; i < r->n; i++) n_edges += g->nodes[r->idx[i]].n_in;
    p->nodes = malloc(((size_t)r->n + 1) * sizeof *p->nodes);
    p->edges = malloc(((size_t)n_edges + 1) * sizeof *p->edges);
    p->consts = calloc((size_t)r->n + 1, sizeof *p->consts);
    p->outputs = calloc((size_t)r->n_out + 1, sizeof *p->outputs);
    if (!p->nodes || !p->edges || !p->consts || !p->outputs) {
        xcs_graph_free(p);
        return xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    }
    p->cap_nodes = r->n + 1;
    p->cap_edges = n_edges + 1;
    p->cap_consts = r->n + 1;
    p->cap_outputs = r->n_out + 1;
    for (int i = 0; i < r->n && !st; i++) {
        xcs_node nd = g->nodes[r->idx[i]];
        if (nd.op == XCS_NODE_CONST && varying[i]) {
            nd.op = XCS_NODE_INPUT;
            nd.aux = p->n_inputs++;
        } else if (nd.op == XCS_NODE_CONST) {
            if ((st = xcs_tensor_view(g->consts[nd.aux], &p->consts[p->n_consts]))) break;
            nd.aux = p->n_consts++;
        }
        for (int k = 0; k < nd.n_in; k++) {
            xcs_edge e = g->edges[nd.first_edge + k];
            e.node = r->pos[e.node];
            p->edges[p->n_edges + k] = e;
        }
        nd.first_edge = p->n_edges;
        p->n_edges += nd.n_in;
        p->nodes[p->n_nodes++] = nd;
    }
    for (int o = 0; o < r->n_out; o++) {
        const xcs_node *nd = &p->nodes[r->out[o]];
        xcs_edge *e = &p->outputs[o];
        memset(e, 0, sizeof *e);
        e->node = r->out[o];
        e->ndim = nd->ndim;
        memcpy(e->shape, nd->shape, sizeof e->shape);
        xcs_strides_contiguous(nd->ndim, nd->shape, e->strides);
    }
    p->n_outputs = r->n_out;
    if (st) {
        xcs_graph_free(p);
        return st;
    }
    *out = p;
    return XCS_OK;
}

/* Each of vals[0..n) (owned) made a contiguous host tensor. */
static xcs_status host_contiguous(int n, xcs_tensor **vals) {
    xcs_status st = XCS_OK;
    for (int o = 0; o < n && !st; o++) {
        xcs_tensor *c = NULL;
        if (!(st = xcs_lazy_to_host(&vals[o])) && !(st = xcs_contiguous(vals[o], &c))) {
            xcs_tensor_free(vals[o]);
            vals[o] = c;
        }
    }
    return st;
}

xcs_status xcs_graph_batch_run(const xcs_graph *p, const xcs_tensor *const *inputs, const bool *batched, int64_t B,
                               xcs_device dev, int index, bool to_host, xcs_tensor **vals, bool *vb) {
    int n_in = p->n_inputs - p->n_captured, n_out = p->n_outputs;
    xcs_graph *lz = NULL;
    xcs_tensor **tin = calloc((size_t)n_in + 1, sizeof *tin);
    xcs_tensor **outs = calloc((size_t)n_out + 1, sizeof *outs);
    xcs_tensor **run = calloc((size_t)n_out + 1, sizeof *run);
    xcs_status st = tin && outs && run ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory batching a program");
    if (!st) st = xcs_graph_new(&lz);
    for (int i = 0; i < n_in && !st; i++) st = xcs_graph_const(lz, inputs[i], &tin[i]);
    if (!st) st = xcs_graph_batch(p, n_in, (const xcs_tensor *const *)tin, batched, B, outs, vb);
    int traced = 0;
    for (int o = 0; o < n_out && !st; o++)
        if (outs[o]->graph == lz && !(st = xcs_graph_output(lz, outs[o]))) traced++;
    if (!st && traced && !(st = xcs_graph_optimize(lz))) st = xcs_graph_run_on(lz, dev, index, 0, NULL, run);
    for (int o = 0, t = 0; o < n_out && !st; o++) { /* the replay computed the outputs of shared values itself */
        if (outs[o]->graph == lz) vals[o] = run[t], run[t++] = NULL;
        else st = xcs_contiguous(outs[o], &vals[o]);
    }
    if (!st) st = to_host ? host_contiguous(n_out, vals) : XCS_OK;
    if (st)
        for (int o = 0; o < n_out; o++) {
            xcs_tensor_free(vals[o]);
            vals[o] = NULL;
        }
    for (int t = 0; run && t < n_out; t++) xcs_tensor_free(run[t]);
    for (int i = 0; tin && i < n_in; i++) xcs_tensor_free(tin[i]);
    for (int o = 0; outs && o < n_out; o++) xcs_tensor_free(outs[o]);
    free(run);
    free(tin);
    free(outs);
    xcs_graph_free(lz);
    return st;
}

/* Runs program p for K examples: each input stacked from the examples'
 * constants (xcs_graph_batch_run); with no input, once for all. */
static xcs_status run_batched(xcs_graph *p, int K, xcs_graph *const *gs, const region *rs, const bool *varying,
                              xcs_device dev, int index, xcs_tensor **vals, bool *batched) {
    const region *r0 = &rs[0];
    int n_in = p->n_inputs, n_out = p->n_outputs;
    xcs_status st = XCS_OK;
    if (n_in == 0) { /* nothing differs: one run, the value shared */
        for (int o = 0; o < n_out; o++) batched[o] = false;
        if (!(st = xcs_graph_optimize(p))) st = xcs_graph_run_on(p, dev, index, 0, NULL, vals);
        return st ? st : host_contiguous(n_out, vals);
    }
    xcs_tensor **stacked = calloc((size_t)n_in + 1, sizeof *stacked);
    const xcs_tensor **cs = calloc((size_t)K + 1, sizeof *cs);
    bool *ib = calloc((size_t)n_in + 1, sizeof *ib);
    if (!stacked || !cs || !ib) st = xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    for (int i = 0, in = 0; i < r0->n && !st; i++) {
        if (!varying[i]) continue;
        for (int k = 0; k < K; k++) {
            const xcs_graph *g = gs[k];
            cs[k] = g->consts[g->nodes[rs[k].idx[i]].aux];
        }
        ib[in] = true;
        st = xcs_stack(K, cs, 0, &stacked[in++]);
    }
    if (!st) st = xcs_graph_batch_run(p, (const xcs_tensor *const *)stacked, ib, K, dev, index, true, vals, batched);
    for (int i = 0; stacked && i < n_in; i++) xcs_tensor_free(stacked[i]);
    free(stacked);
    free(cs);
    free(ib);
    return st;
}

/* Example k's pending nodes become constants holding their row of vals. */
static xcs_status settle_example(xcs_graph *g, const region *r, int k, xcs_tensor *const *vals, const bool *batched) {
    xcs_status st = XCS_OK;
    for (int o = 0; o < r->n_out && !st; o++) {
        const xcs_tensor *v = vals[o];
        const xcs_node *nd = &g->nodes[r->idx[r->out[o]]];
        xcs_tensor *row = NULL;
        if (batched[o])
            st = xcs_tensor_from_storage(v->storage, v->dtype, v->ndim - 1, v->shape + 1, v->strides + 1,
                                         v->offset + (int64_t)k * v->strides[0], &row);
        else
            st = xcs_tensor_view(v, &row);
        if (!st && (row->ndim != nd->ndim || memcmp(row->shape, nd->shape, (size_t)nd->ndim * sizeof *nd->shape)))
            st = xcs_error(XCS_ERR_INTERNAL, "batched lazy value of the wrong shape");
        if (!st) st = xcs_lazy_settle(g, r->idx[r->out[o]], row);
        xcs_tensor_free(row);
    }
    return st;
}

static xcs_status one_by_one(xcs_graph *g, int n, xcs_tensor *const *ts, xcs_device dev, int index) {
    xcs_status st = XCS_OK;
    for (int j = 0; j < n && !st; j++)
        if (ts[j]->graph == g) st = xcs_lazy_compute(g, ts[j], dev, index);
    return st;
}

xcs_status xcs_lazy_concretize_batch(int K, xcs_graph *const *gs, const int *n, xcs_tensor *const *const *ts,
                                     xcs_device dev, int index, int *n_batched) {
    if (n_batched) *n_batched = 0;
    if (K <= 0) return XCS_OK;
    for (int k = 0; k < K; k++)
        if (gs[k]->n_inputs) return xcs_error(XCS_ERR_VALUE, "concretize: a graph with inputs is run, not concretized");
    region *rs = calloc((size_t)K, sizeof *rs);
    bool *same = calloc((size_t)K, sizeof *same);
    int64_t *sig0 = NULL;
    size_t len0 = 0;
    xcs_status st = rs && same ? XCS_OK : xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    for (int k = 0; k < K && !st; k++) st = region_of(gs[k], n[k], (const xcs_tensor *const *)ts[k], &rs[k]);
    if (!st && rs[0].n_out) st = region_sig(gs[0], &rs[0], &sig0, &len0);
    int batch = 0; /* the examples whose program is example 0's, moved to the front */
    int *order = st ? NULL : malloc((size_t)K * sizeof *order);
    if (!st && !order) st = xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
    for (int k = 0; k < K && !st && sig0; k++) {
        int64_t *sig = NULL;
        size_t len = 0;
        if (k == 0) same[k] = true;
        else if (!(st = region_sig(gs[k], &rs[k], &sig, &len)))
            same[k] = len == len0 && memcmp(sig, sig0, len * sizeof *sig) == 0;
        free(sig);
        if (same[k]) order[batch++] = k;
    }
    if (!st && batch > 1) {
        xcs_graph **bg = malloc((size_t)batch * sizeof *bg);
        region *br = malloc((size_t)batch * sizeof *br);
        bool *varying = calloc((size_t)rs[0].n + 1, sizeof *varying);
        xcs_tensor **vals = calloc((size_t)rs[0].n_out + 1, sizeof *vals);
        bool *vb = calloc((size_t)rs[0].n_out + 1, sizeof *vb);
        xcs_graph *p = NULL;
        if (!bg || !br || !varying || !vals || !vb) st = xcs_error(XCS_ERR_MEMORY, "out of memory batching lazy values");
        for (int b = 0; b < batch && !st; b++) bg[b] = gs[order[b]], br[b] = rs[order[b]];
        for (int i = 0; i < rs[0].n && !st; i++) {
            const xcs_node *nd = &gs[0]->nodes[rs[0].idx[i]];
            if (nd->op != XCS_NODE_CONST) continue;
            const xcs_tensor *c0 = gs[0]->consts[nd->aux];
            for (int b = 1; b < batch && !varying[i]; b++) {
                const xcs_graph *g = bg[b];
                varying[i] = !same_const(c0, g->consts[g->nodes[br[b].idx[i]].aux]);
            }
        }
        if (!st) st = build_program(gs[0], &rs[0], varying, &p);
        if (!st) st = run_batched(p, batch, bg, br, varying, dev, index, vals, vb);
        for (int b = 0; b < batch && !st; b++) st = settle_example(bg[b], &br[b], b, vals, vb);
        if (!st && n_batched) *n_batched = batch;
        for (int o = 0; vals && o < rs[0].n_out; o++) xcs_tensor_free(vals[o]);
        xcs_graph_free(p);
        free(bg);
        free(br);
        free(varying);
        free(vals);
        free(vb);
    }
    for (int k = 0; k < K && !st; k++) /* the rest, and a batch of one */
        if (!same[k] || batch <= 1) st = one_by_one(gs[k], n[k], ts[k], dev, index);
    for (int k = 0; rs && k < K; k++) region_free(&rs[k]);
    free(rs);
    free(same);
    free(sig0);
    free(order);
    return st ? xcs_error_context(st, "computing lazy values of %d examples as one program", K) : XCS_OK;
}
