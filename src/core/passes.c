/* passes.c — graph passes: common-subexpression elimination, dead-code
 * elimination, the structural hash, and the textual dump behind explain(). */
#include "trace.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over bytes, chained. */
uint64_t xcs_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}

static uint64_t edge_hash(uint64_t h, const xcs_edge *e) {
    h = xcs_fnv(h, &e->node, sizeof e->node);
    h = xcs_fnv(h, &e->ndim, sizeof e->ndim);
    h = xcs_fnv(h, &e->flags, sizeof e->flags);
    h = xcs_fnv(h, &e->offset, sizeof e->offset);
    h = xcs_fnv(h, e->shape, (size_t)e->ndim * sizeof e->shape[0]);
    return xcs_fnv(h, e->strides, (size_t)e->ndim * sizeof e->strides[0]);
}

static bool edge_eq(const xcs_edge *a, const xcs_edge *b) {
    if (a->node != b->node || a->ndim != b->ndim || a->flags != b->flags || a->offset != b->offset) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i] || a->strides[i] != b->strides[i]) return false;
    return true;
}

/* Hash of a node's own content (op, types, shape, attrs, edges); constants
 * hash by the identity of their tensor, or by value when 0-d. */
static uint64_t node_hash(const xcs_graph *g, const xcs_node *n) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = xcs_fnv(h, &n->op, sizeof n->op);
    h = xcs_fnv(h, &n->dtype, sizeof n->dtype);
    h = xcs_fnv(h, &n->compute, sizeof n->compute);
    h = xcs_fnv(h, &n->ndim, sizeof n->ndim);
    h = xcs_fnv(h, n->shape, (size_t)n->ndim * sizeof n->shape[0]);
    h = xcs_fnv(h, &n->axes, sizeof n->axes);
    h = xcs_fnv(h, &n->axis, sizeof n->axis);
    if (n->op == XCS_NODE_INPUT) return xcs_fnv(h, &n->aux, sizeof n->aux);
    if (n->op == XCS_NODE_CONST) {
        const xcs_tensor *c = g->consts[n->aux];
        if (c->ndim == 0 && xcs_tensor_on_host(c)) return xcs_fnv(h, xcs_tensor_data(c), xcs_dtype_size(c->dtype));
        return xcs_fnv(h, &c->storage, sizeof c->storage);
    }
    h = xcs_fnv(h, &n->aux, sizeof n->aux); /* a collective's map, a scan's number */
    if (n->op == XCS_OP_SCAN) h = xcs_fnv(h, &g->scans[n->aux]->hash, sizeof g->scans[n->aux]->hash); /* its body */
    for (int k = 0; k < n->n_in; k++) h = edge_hash(h, &g->edges[n->first_edge + k]);
    return h;
}

static bool node_eq(const xcs_graph *g, const xcs_node *a, const xcs_node *b) {
    if (a->op != b->op || a->dtype != b->dtype || a->compute != b->compute || a->ndim != b->ndim ||
        a->axes != b->axes || a->axis != b->axis || a->n_in != b->n_in)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    if (a->op == XCS_NODE_INPUT) return a->aux == b->aux;
    if (a->op == XCS_NODE_CONST) {
        const xcs_tensor *x = g->consts[a->aux], *y = g->consts[b->aux];
        if (x->storage == y->storage && x->offset == y->offset) return true;
        return x->ndim == 0 && y->ndim == 0 && x->dtype == y->dtype && xcs_tensor_on_host(x) && xcs_tensor_on_host(y) &&
               memcmp(xcs_tensor_data(x), xcs_tensor_data(y), xcs_dtype_size(x->dtype)) == 0;
    }
    if (a->aux != b->aux) return false; /* collectives of different maps */
    for (int k = 0; k < a->n_in; k++)
        if (!edge_eq(&g->edges[a->first_edge + k], &g->edges[b->first_edge + k])) return false;
    return true;
}

static bool is_const(const xcs_graph *g, int node) { return g->nodes[node].op == XCS_NODE_CONST; }

/* The 0-d or broadcast constant's single value, when edge e reads one
 * that is on the host (a device constant, a scan's loop on a device, is
 * not read back for this). */
static bool const_scalar(const xcs_graph *g, const xcs_edge *e, double *v) {
    if (!is_const(g, e->node)) return false;
    const xcs_tensor *c = g->consts[g->nodes[e->node].aux];
    if (xcs_tensor_numel(c) != 1 || !xcs_tensor_on_host(c)) return false;
    *v = xcs_tensor_get_f64(c, 0);
    return true;
}

/* e reads its source whole, and that source has n's dtype and shape. */
static bool plain_edge(const xcs_graph *g, const xcs_edge *e, const xcs_node *like) {
    const xcs_node *src = &g->nodes[e->node];
    if (src->dtype != like->dtype || src->ndim != like->ndim || !xcs_edge_is_identity(g, e)) return false;
    for (int i = 0; i < like->ndim; i++)
        if (src->shape[i] != like->shape[i]) return false;
    return true;
}

/* Algebraic no-ops: x*1, 1*x, x/1, x+0, 0+x, x-0 (float -0.0 aside: x+0 is
 * kept for floats, where it turns -0.0 into +0.0) whose result is x itself,
 * same dtype and shape.  Returns the node to use instead, or -1. */
static int identity_of(const xcs_graph *g, const xcs_node *n) {
    if (n->op == XCS_NODE_INPUT || n->op == XCS_NODE_CONST || n->n_in != 2) return -1;
    const xcs_edge *a = &g->edges[n->first_edge], *b = a + 1;
    double v;
    bool fl = xcs_dtype_is_float(n->dtype);
    switch (n->op) {
    case XCS_OP_MUL:
        if (const_scalar(g, b, &v) && v == 1 && plain_edge(g, a, n)) return a->node;
        if (const_scalar(g, a, &v) && v == 1 && plain_edge(g, b, n)) return b->node;
        return -1;
    case XCS_OP_DIV:
        return const_scalar(g, b, &v) && v == 1 && plain_edge(g, a, n) ? a->node : -1;
    case XCS_OP_ADD:
        if (fl) return -1;
        if (const_scalar(g, b, &v) && v == 0 && plain_edge(g, a, n)) return a->node;
        if (const_scalar(g, a, &v) && v == 0 && plain_edge(g, b, n)) return b->node;
        return -1;
    case XCS_OP_SUB: /* x - (+0) is x even for -0.0; x - (-0) is not */
        return const_scalar(g, b, &v) && v == 0 && !signbit(v) && plain_edge(g, a, n) ? a->node : -1;
    default:
        return -1;
    }
}

/* Strength reduction: x ** 2 (a constant exponent 2) becomes x * x, as numpy
 * does for `array ** 2`: the same value in every dtype (pow(x, 2) is the
 * correctly rounded x*x; integer powers wrap like the product), one multiply
 * instead of a pow per element. */
static void reduce_strength(xcs_graph *g, xcs_node *n) {
    if (n->op != XCS_OP_POW || n->n_in != 2) return;
    xcs_edge *a = &g->edges[n->first_edge], *b = a + 1;
    double v;
    if (!const_scalar(g, b, &v) || v != 2.0) return;
    n->op = XCS_OP_MUL;
    *b = *a;
}

/* One forward sweep: algebraic no-ops, then CSE — a node equal to an
 * earlier one is replaced by it (edges retargeted).  Constant folding needs
 * no pass: an op whose operands are all concrete runs eagerly while tracing,
 * so the graph only ever holds its result as a constant. */
static xcs_status cse(xcs_graph *g) {
    int cap = 16;
    while (cap < 2 * g->n_nodes) cap *= 2;
    int32_t *table = malloc((size_t)cap * sizeof *table), *repl = malloc((size_t)g->n_nodes * sizeof *repl);
    if (!table || !repl) { free(table); free(repl); return xcs_error(XCS_ERR_MEMORY, "out of memory in CSE"); }
    memset(table, 0xff, (size_t)cap * sizeof *table);
    for (int i = 0; i < g->n_nodes; i++) {
        xcs_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            xcs_edge *e = &g->edges[n->first_edge + k];
            e->node = repl[e->node];
        }
        repl[i] = i;
        reduce_strength(g, n);
        int same = identity_of(g, n);
        if (same >= 0) { repl[i] = same; continue; }
        uint64_t h = node_hash(g, n);
        for (int s = (int)(h & (uint64_t)(cap - 1));; s = (s + 1) & (cap - 1)) {
            if (table[s] < 0) { table[s] = i; break; }
            if (node_eq(g, &g->nodes[table[s]], n)) { repl[i] = table[s]; break; }
        }
    }
    for (int o = 0; o < g->n_outputs; o++) g->outputs[o].node = repl[g->outputs[o].node];
    free(table);
    free(repl);
    return XCS_OK;
}

/* DCE: keeps inputs (they define the signature) and what outputs reach.
 * Live constants are renumbered in node order through a map, not moved in
 * place: a constant's slot need not follow its node's order (an unread
 * input turned constant takes the last slot), and one slot may be read by
 * several nodes. */
static xcs_status dce(xcs_graph *g) {
    bool *live = calloc((size_t)g->n_nodes + 1, sizeof *live);
    int32_t *remap = malloc(((size_t)g->n_nodes + 1) * sizeof *remap);
    int32_t *cmap = malloc(((size_t)g->n_consts + 1) * sizeof *cmap);
    xcs_tensor **kept = calloc((size_t)g->n_consts + 1, sizeof *kept);
    if (!live || !remap || !cmap || !kept) {
        free(live);
        free(remap);
        free(cmap);
        free(kept);
        return xcs_error(XCS_ERR_MEMORY, "out of memory in DCE");
    }
    for (int o = 0; o < g->n_outputs; o++) live[g->outputs[o].node] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const xcs_node *n = &g->nodes[i];
        if (n->op == XCS_NODE_INPUT) live[i] = true;
        if (!live[i]) continue;
        for (int k = 0; k < n->n_in; k++) live[g->edges[n->first_edge + k].node] = true;
    }
    for (int c = 0; c < g->n_consts; c++) cmap[c] = -1;
    int nn = 0, ne = 0, nc = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        xcs_node n = g->nodes[i];
        if (!live[i]) continue;
        remap[i] = nn;
        for (int k = 0; k < n.n_in; k++) {
            xcs_edge e = g->edges[n.first_edge + k];
            e.node = remap[e.node];
            g->edges[ne + k] = e; /* ne + k <= first_edge + k: compaction never overtakes */
        }
        n.first_edge = ne;
        ne += n.n_in;
        if (n.op == XCS_NODE_CONST) {
            if (cmap[n.aux] < 0) { /* its slot's first reader takes the tensor */
                kept[nc] = g->consts[n.aux];
                g->consts[n.aux] = NULL;
                cmap[n.aux] = nc++;
            }
            n.aux = cmap[n.aux];
        }
        g->nodes[nn++] = n;
    }
    for (int c = 0; c < g->n_consts; c++) xcs_tensor_free(g->consts[c]); /* the dead ones */
    if (nc) memcpy(g->consts, kept, (size_t)nc * sizeof *kept); /* consts may be NULL when there were none */
    for (int o = 0; o < g->n_outputs; o++) g->outputs[o].node = remap[g->outputs[o].node];
    g->n_nodes = nn;
    g->n_edges = ne;
    g->n_consts = nc;
    free(live);
    free(remap);
    free(cmap);
    free(kept);
    return XCS_OK;
}

/* Moves inputs and constants to the front (they read nothing, so the order
 * stays topological): constants created mid-trace then no longer split the
 * runs of consecutive nodes that fusion groups. */
static xcs_status hoist_sources(xcs_graph *g) {
    int n = g->n_nodes;
    xcs_node *nodes = malloc(((size_t)n + 1) * sizeof *nodes);
    int32_t *remap = malloc(((size_t)n + 1) * sizeof *remap);
    if (!nodes || !remap) { free(nodes); free(remap); return xcs_error(XCS_ERR_MEMORY, "out of memory"); }
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            bool src = g->nodes[i].op == XCS_NODE_INPUT || g->nodes[i].op == XCS_NODE_CONST;
            if (src == (pass == 0)) { remap[i] = k; nodes[k++] = g->nodes[i]; }
        }
    for (int e = 0; e < g->n_edges; e++) g->edges[e].node = remap[g->edges[e].node];
    for (int o = 0; o < g->n_outputs; o++) g->outputs[o].node = remap[g->outputs[o].node];
    memcpy(g->nodes, nodes, (size_t)n * sizeof *nodes);
    free(nodes);
    free(remap);
    return XCS_OK;
}

xcs_status xcs_graph_optimize(xcs_graph *g) {
    bool pruned = false;
    xcs_status st = cse(g);
    if (!st) st = dce(g);
    if (!st && g->n_scans) st = xcs_scan_prune(g, &pruned);
    if (!st && pruned) st = dce(g);
    if (!st) st = hoist_sources(g);
    if (!st) st = xcs_graph_fuse(g);
    return st;
}

uint64_t xcs_graph_hash(const xcs_graph *g) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < g->n_nodes; i++) {
        uint64_t nh = node_hash(g, &g->nodes[i]);
        h = xcs_fnv(h, &nh, sizeof nh);
    }
    for (int o = 0; o < g->n_outputs; o++) h = edge_hash(h, &g->outputs[o]);
    return h;
}

static const char *node_name(const xcs_node *n) {
    return n->op == XCS_NODE_INPUT ? "input" : n->op == XCS_NODE_CONST ? "const" : xcs_op_name(n->op);
}

/* The fused group holding node i, or -1: the plan's groups are disjoint
 * node ranges in node order, so a binary search (a per-node scan of every
 * group made dumps of long unrolled loops quadratic). */
static int group_of_node(const xcs_plan *p, int i) {
    int lo = 0, hi = p ? p->n_groups : 0;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->groups[mid].last < i) lo = mid + 1;
        else hi = mid;
    }
    return p && lo < p->n_groups && p->groups[lo].first <= i ? lo : -1;
}

int xcs_graph_node_get(const xcs_graph *g, int i, xcs_node_info *out, int32_t *inputs, int cap) {
    if (i < 0 || i >= g->n_nodes) return -1;
    const xcs_node *n = &g->nodes[i];
    memset(out, 0, sizeof *out);
    out->op = node_name(n);
    out->dtype = n->dtype;
    out->ndim = n->ndim;
    memcpy(out->shape, n->shape, sizeof out->shape);
    out->group = -1;
    out->stored = true;
    int k = group_of_node(g->plan, i);
    if (k >= 0) {
        const xcs_plan_group *grp = &g->plan->groups[k];
        out->group = k;
        out->matmul_head = grp->matmul && i == grp->first;
        out->stored = false;
        for (int o = 0; o < grp->n_outputs; o++) out->stored |= grp->output_nodes[o] == i;
        if (out->matmul_head) out->stored = grp->prod_out < 0;
    }
    for (int k = 0; k < n->n_in && k < cap; k++) inputs[k] = g->edges[n->first_edge + k].node;
    return n->n_in;
}

/* snprintf that appends at *used and counts what did not fit. */
static void emit(char *buf, size_t cap, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void emit(char *buf, size_t cap, size_t *used, const char *fmt, ...) {
    char scratch[1];
    va_list ap;
    va_start(ap, fmt);
    bool room = buf && *used < cap;
    int w = vsnprintf(room ? buf + *used : scratch, room ? cap - *used : sizeof scratch, fmt, ap);
    va_end(ap);
    if (w > 0) *used += (size_t)w;
}

size_t xcs_graph_dump(const xcs_graph *g, char *buf, size_t cap) {
    size_t used = 0;
    char sh[160];
#define EMIT(...) emit(buf, cap, &used, __VA_ARGS__)
    for (int i = 0; i < g->n_nodes; i++) {
        const xcs_node *n = &g->nodes[i];
        EMIT("%%%d = %s(", i, node_name(n));
        if (n->op == XCS_NODE_INPUT || n->op == XCS_NODE_CONST) EMIT("#%d", n->aux);
        for (int k = 0; k < n->n_in; k++) {
            const xcs_edge *e = &g->edges[n->first_edge + k];
            EMIT(k ? ", %%%d" : "%%%d", e->node);
            bool plain = xcs_edge_is_identity(g, e);
            if (!plain) EMIT(" as view%s", xcs_shape_str(e->ndim, e->shape, sh, sizeof sh));
        }
        EMIT(") %s%s", xcs_dtype_name(n->dtype), xcs_shape_str(n->ndim, n->shape, sh, sizeof sh));
        if (xcs_op_get_info(n->op) && xcs_op_get_info(n->op)->kind == XCS_KIND_REDUCE) EMIT(" axes=0x%x", n->axes);
        if (n->op == XCS_OP_SCAN) {
            const xcs_scan_node *d = g->scans[n->aux];
            EMIT(" out=%d of scan #%d (length %lld%s, %d carries, %d xs, %d invariants, a %d-node body)", n->axis,
                 n->aux, (long long)d->length, d->reverse ? ", reverse" : "", d->n_carry, d->n_x, d->n_inv,
                 d->body->n_nodes);
        }
        int k = group_of_node(g->plan, i);
        if (k >= 0) {
            const xcs_plan_group *grp = &g->plan->groups[k];
            bool stored = false;
            for (int o = 0; o < grp->n_outputs; o++) stored |= grp->output_nodes[o] == i;
            if (grp->matmul && i == grp->first)
                EMIT("  [group %d, matmul%s]", k, grp->prod_out >= 0 ? ", epilogue in place" : "");
            else
                EMIT("  [group %d%s]", k, stored ? ", stored" : "");
        }
        EMIT("\n");
    }
    for (int o = 0; o < g->n_outputs; o++) EMIT("out[%d] = %%%d\n", o, g->outputs[o].node);
    if (g->plan && g->plan->n_planned)
        EMIT("memory plan: %d intermediates in one %lld-byte arena (%lld bytes without reuse)\n", g->plan->n_planned,
             (long long)g->plan->arena_bytes, (long long)g->plan->planned_bytes);
    for (int k = 0; k < g->n_scans; k++) { /* each scan a node stands for: its step, indented */
        bool stands = false;
        for (int i = 0; i < g->n_nodes && !stands; i++) stands = g->nodes[i].op == XCS_OP_SCAN && g->nodes[i].aux == k;
        if (!stands) continue;
        const xcs_scan_node *d = g->scans[k];
        const xcs_graph *step = xcs_scan_program_step(d->prog);
        size_t need = xcs_graph_dump(step, NULL, 0) + 1;
        char *sub = malloc(need);
        EMIT("scan #%d runs this step (its inputs: carries, xs rows, invariants, then %d value%s hoisted out of "
             "the loop, computed for all steps before it):\n", k, xcs_scan_program_hoisted(d->prog),
             xcs_scan_program_hoisted(d->prog) == 1 ? "" : "s");
        if (!sub) continue;
        xcs_graph_dump(step, sub, need);
        for (char *line = sub, *end; *line; line = end + (*end != '\0')) {
            end = strchr(line, '\n');
            if (!end) end = line + strlen(line);
            EMIT("    %.*s\n", (int)(end - line), line);
        }
        free(sub);
    }
#undef EMIT
    if (buf && cap) buf[used < cap ? used : cap - 1] = '\0';
    return used;
}
