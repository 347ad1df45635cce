/* fuse.c — the fusion pass: cuts a graph's node list into steps, each either
 * one node replayed through its eager op or a group of elementwise nodes
 * (with at most one trailing reduction) lowered to one xcs_fused_program.
 *
 * Grouping rule (greedy over the topological node order): consecutive
 * fusible nodes of one iteration shape form a group; a reduction over that
 * shape joins and closes it.  A member read by a later member through
 * anything but the identity view (a transpose, a broadcast) ends the group,
 * because registers hold tiles in iteration order.  Because a group is a run
 * of consecutive nodes, everything it reads from outside was computed by an
 * earlier step: no cycles, no reordering.
 *
 * A matmul (2-D or batched, not from 1-D operands) opens a group too: the
 * elementwise nodes after it over its output shape become its epilogue (bias,
 * activation, residual), which the backend applies to each block of the
 * product while it is in cache, in place; a trailing reduction may close it
 * (the backend then runs the epilogue over the whole product).
 *
 * Materialisation: a member is stored (becomes a group output) only when a
 * node outside the group or a graph output reads it; everything else lives
 * in tile registers and is never allocated. */
#include "trace.h"

#include <stdlib.h>
#include <string.h>

static bool fusible_elementwise(const xcs_node *n) {
    if (n->op == XCS_NODE_INPUT || n->op == XCS_NODE_CONST) return false;
    switch (xcs_op_get_info(n->op)->kind) {
    case XCS_KIND_UNARY: case XCS_KIND_BINARY: case XCS_KIND_TERNARY:
    case XCS_KIND_CAST: case XCS_KIND_COPY:
        return true;
    default:
        return false;
    }
}

static bool is_reduce(const xcs_node *n) {
    return n->op != XCS_NODE_INPUT && n->op != XCS_NODE_CONST &&
           xcs_op_get_info(n->op)->kind == XCS_KIND_REDUCE;
}

static bool is_matmul_head(const xcs_node *n) { return n->op == XCS_OP_MATMUL && n->ndim >= 2; }

/* Shapes equal once size-1 dims are dropped: a matmul of a 1-D operand has
 * the value [1, N] (or [M, 1]) and its consumers read it as (N,). */
static bool same_squeezed(int na, const int64_t *a, int nb, const int64_t *b) {
    int i = 0, j = 0;
    for (;;) {
        while (i < na && a[i] == 1) i++;
        while (j < nb && b[j] == 1) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (a[i++] != b[j++]) return false;
    }
}

/* e reads its source's whole value in order, up to size-1 dims. */
static bool squeeze_identity(const xcs_graph *g, const xcs_edge *e) {
    const xcs_node *src = &g->nodes[e->node];
    if (e->offset != 0 || !same_squeezed(e->ndim, e->shape, src->ndim, src->shape)) return false;
    int64_t cs[XCS_MAX_DIMS];
    xcs_strides_contiguous(e->ndim, e->shape, cs);
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != 1 && e->strides[d] != cs[d]) return false;
    return true;
}

static bool same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* dtype an elementwise kernel reads for input k (mirrors the backend rule). */
static xcs_dtype input_dtype(const xcs_node *n, int k) {
    const xcs_op_info *info = xcs_op_get_info(n->op);
    if (info->rule == XCS_RULE_LOGIC) return XCS_BOOL;
    if (n->op == XCS_OP_WHERE && k == 0) return XCS_BOOL;
    if (info->kind == XCS_KIND_CAST || info->kind == XCS_KIND_COPY) return n->dtype;
    return n->compute;
}

/* dtype of the register an elementwise member leaves its value in: what
 * the kernel produces (bool for comparisons, else the compute dtype, so a
 * float16 node's value stays float32 until it is stored), or the target of
 * a cast. */
static xcs_dtype value_dtype(const xcs_node *n) {
    const xcs_op_info *info = xcs_op_get_info(n->op);
    if (info->kind == XCS_KIND_CAST || info->kind == XCS_KIND_COPY) return n->dtype;
    if (info->rule == XCS_RULE_CMP || info->rule == XCS_RULE_LOGIC) return XCS_BOOL;
    return n->compute;
}

/* ---------------------------------------------------------------- lowering */

typedef struct lower_ctx {
    const xcs_graph *g;
    xcs_plan_group *grp;
    int first, last;           /* member node range [first, last] */
    int8_t *reg_of;            /* per member: register holding its value, -1 none */
    xcs_dtype *reg_dt;         /* per member: that register's dtype */
    int *last_use;             /* per member: last member index reading it */
    bool reg_busy[XCS_FUSED_MAX_REGS];
} lower_ctx;

static int alloc_reg(lower_ctx *c) {
    for (int r = 0; r < XCS_FUSED_MAX_REGS; r++)
        if (!c->reg_busy[r]) {
            c->reg_busy[r] = true;
            if (r + 1 > c->grp->prog.n_regs) c->grp->prog.n_regs = r + 1;
            return r;
        }
    return -1;
}

static xcs_fused_instr *emit(lower_ctx *c) {
    xcs_fused_program *p = &c->grp->prog;
    if (p->n_instr >= XCS_FUSED_MAX_INSTR) return NULL;
    xcs_fused_instr *in = &p->instr[p->n_instr++];
    memset(in, 0, sizeof *in);
    in->dst = in->a = in->b = in->c = -1;
    return in;
}

/* A register holding edge e's value in dtype dt: a member's register (cast
 * if needed) or a LOAD of an external input.  Returns -1 when out of room. */
static int operand(lower_ctx *c, const xcs_edge *e, int edge_index, xcs_dtype dt, bool *temp) {
    *temp = false;
    xcs_fused_program *p = &c->grp->prog;
    if (e->node >= c->first && e->node <= c->last) {
        int src = c->reg_of[e->node - c->first];
        xcs_dtype have = c->reg_dt[e->node - c->first];
        if (have == dt) return src;
        int r = alloc_reg(c);
        xcs_fused_instr *in = r < 0 ? NULL : emit(c);
        if (!in) return -1;
        *in = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_CAST, r, src, -1, -1, dt, have};
        *temp = true;
        return r;
    }
    if (c->grp->n_inputs >= XCS_FUSED_MAX_IO) return -1;
    int k = c->grp->n_inputs++;
    c->grp->input_edges[k] = edge_index;
    p->n_inputs = c->grp->n_inputs;
    int r = alloc_reg(c);
    xcs_fused_instr *in = r < 0 ? NULL : emit(c);
    if (!in) return -1;
    *in = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, r, k, -1, -1, dt, dt};
    *temp = true;
    return r;
}

/* Lowers members [first, last] (an optional reduce last); false when the
 * program would not fit (then the caller shortens the group). */
static bool lower_group(const xcs_graph *g, int first, int last, const bool *stored, xcs_plan_group *grp) {
    int nm = last - first + 1;
    int8_t reg_of[XCS_FUSED_MAX_INSTR];
    xcs_dtype reg_dt[XCS_FUSED_MAX_INSTR];
    int last_use[XCS_FUSED_MAX_INSTR];
    if (nm > XCS_FUSED_MAX_INSTR) return false;
    memset(grp, 0, sizeof *grp);
    /* iteration space: a trailing reduction's input, else the members' shape */
    const xcs_node *tail = &g->nodes[last];
    if (is_matmul_head(&g->nodes[first]) && !is_reduce(tail)) { /* the product's shape (members may drop its 1s) */
        grp->prog.ndim = g->nodes[first].ndim;
        memcpy(grp->prog.shape, g->nodes[first].shape, sizeof grp->prog.shape);
    } else if (is_reduce(tail)) {
        const xcs_edge *e = &g->edges[tail->first_edge];
        grp->prog.ndim = e->ndim;
        memcpy(grp->prog.shape, e->shape, sizeof grp->prog.shape);
    } else {
        grp->prog.ndim = tail->ndim;
        memcpy(grp->prog.shape, tail->shape, sizeof grp->prog.shape);
    }
    grp->first = first;
    grp->last = last;
    grp->prod_out = -1;
    grp->prog.product_used = is_matmul_head(&g->nodes[first]) && stored[first];
    for (int m = 0; m < nm; m++) {
        last_use[m] = -1;
        reg_of[m] = -1;
    }
    for (int m = 0; m < nm; m++) {
        const xcs_node *n = &g->nodes[first + m];
        for (int k = 0; k < n->n_in; k++) {
            int src = g->edges[n->first_edge + k].node;
            if (src >= first && src <= last) last_use[src - first] = m;
        }
    }
    lower_ctx c = {.g = g, .grp = grp, .first = first, .last = last, .reg_of = reg_of, .reg_dt = reg_dt,
                   .last_use = last_use};
    int m0 = 0;
    if (is_matmul_head(&g->nodes[first])) {
        /* the product is input 0, loaded first (so it may be an output's memory) */
        grp->matmul = true;
        grp->input_edges[grp->n_inputs++] = -1;
        grp->prog.n_inputs = 1;
        int r = alloc_reg(&c);
        xcs_fused_instr *in = emit(&c);
        xcs_dtype dt = g->nodes[first].dtype;
        *in = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, r, 0, -1, -1, dt, dt};
        reg_of[0] = (int8_t)r;
        reg_dt[0] = dt;
        m0 = 1;
    }
    for (int m = m0; m < nm; m++) {
        const xcs_node *n = &g->nodes[first + m];
        int ops[3] = {-1, -1, -1};
        bool temp[3] = {false, false, false};
        for (int k = 0; k < n->n_in; k++) {
            /* a reduction folds its input in the input's own dtype */
            xcs_dtype want = is_reduce(n) ? g->nodes[g->edges[n->first_edge].node].dtype : input_dtype(n, k);
            ops[k] = operand(&c, &g->edges[n->first_edge + k], n->first_edge + k, want, &temp[k]);
            if (ops[k] < 0) return false;
        }
        xcs_fused_instr *in;
        if (is_reduce(n)) {
            if (grp->n_outputs >= XCS_FUSED_MAX_IO || !(in = emit(&c))) return false;
            grp->output_nodes[grp->n_outputs] = first + m;
            *in = (xcs_fused_instr){XCS_FUSED_REDUCE, n->op, grp->n_outputs++, ops[0], -1, -1, n->dtype, n->dtype};
            grp->prog.reduce_axes = n->axes;
            grp->prog.n_outputs = grp->n_outputs;
            return true;
        }
        /* operands whose last reader is this node free their registers; one
         * of the result's dtype is freed before the result is allocated, so
         * the kernel may run in place (kernels allow out == an input, never
         * a partial overlap, which a bool register under a float64 result
         * would be) */
        bool dying[3] = {false, false, false};
        for (int k = 0; k < n->n_in; k++) {
            int src = g->edges[n->first_edge + k].node;
            dying[k] = temp[k] || (src >= first && src <= last && last_use[src - first] == m && !stored[src]);
        }
        xcs_op_kind kind = xcs_op_get_info(n->op)->kind;
        const xcs_dtype vdt = value_dtype(n);
        for (int k = 0; k < n->n_in; k++)
            if (dying[k] && input_dtype(n, k) == vdt && kind != XCS_KIND_CAST && kind != XCS_KIND_COPY)
                c.reg_busy[ops[k]] = false;
        int r = alloc_reg(&c);
        if (r < 0 || !(in = emit(&c))) return false;
        for (int k = 0; k < n->n_in; k++)
            if (dying[k] && ops[k] != r) c.reg_busy[ops[k]] = false;
        if (kind == XCS_KIND_CAST || kind == XCS_KIND_COPY)
            *in = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_CAST, r, ops[0], -1, -1, n->dtype, n->dtype};
        else
            *in = (xcs_fused_instr){XCS_FUSED_OP, n->op, r, ops[0], ops[1], ops[2], n->compute, n->compute};
        reg_of[m] = (int8_t)r;
        reg_dt[m] = vdt;
        if (last_use[m] < 0 && !stored[first + m]) c.reg_busy[r] = false; /* dead: CSE/DCE normally prevent */
        if (stored[first + m]) {
            if (grp->n_outputs >= XCS_FUSED_MAX_IO || !(in = emit(&c))) return false;
            grp->output_nodes[grp->n_outputs] = first + m;
            *in = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, grp->n_outputs++, r, -1, -1, n->dtype, n->dtype};
            if (last_use[m] < 0) c.reg_busy[r] = false;
        }
    }
    grp->prog.n_outputs = grp->n_outputs;
    if (grp->matmul && !stored[first]) { /* in place into the last output of the product's dtype and shape */
        const xcs_node *mm = &g->nodes[first];
        for (int o = grp->n_outputs - 1; o >= 0 && grp->prod_out < 0; o--) {
            const xcs_node *on = &g->nodes[grp->output_nodes[o]];
            if (on->dtype == mm->dtype && same_shape(on->ndim, on->shape, mm->ndim, mm->shape)) grp->prod_out = o;
        }
    }
    return true;
}

/* A row-aligned edge: row r of its reader is row r of its (contiguous)
 * source, the rest of the row read whole or broadcast. */
static bool row_aligned_edge(const xcs_graph *g, const xcs_edge *e) {
    const xcs_node *src = &g->nodes[e->node];
    if (e->offset != 0 || e->ndim != src->ndim || e->shape[0] != src->shape[0]) return false;
    int64_t cs[XCS_MAX_DIMS];
    xcs_strides_contiguous(src->ndim, src->shape, cs);
    if (src->shape[0] > 1 && e->strides[0] != cs[0]) return false;
    for (int d = 1; d < e->ndim; d++)
        if (!(e->strides[d] == cs[d] && e->shape[d] == src->shape[d]) && !(e->strides[d] == 0 && src->shape[d] == 1))
            return false;
    return true;
}

/* Step t can run in the row chain that starts at step s. */
static bool row_chain_member(const xcs_graph *g, const xcs_plan *plan, int s, int t) {
    const xcs_plan_step *st = &plan->steps[t];
    if (st->group < 0) return false;
    const xcs_plan_group *grp = &plan->groups[st->group], *head = &plan->groups[plan->steps[s].group];
    const xcs_fused_program *p = &grp->prog;
    if (grp->matmul || head->matmul) return false;
    if (p->ndim < 2 || p->shape[0] != head->prog.shape[0] || p->shape[0] < 2 || (p->reduce_axes & 1u)) return false;
    for (int o = 0; o < grp->n_outputs; o++)
        if (g->nodes[grp->output_nodes[o]].shape[0] != p->shape[0]) return false;
    int chain_first = head->first;
    for (int k = 0; k < grp->n_inputs; k++) {
        const xcs_edge *e = &g->edges[grp->input_edges[k]];
        if (e->node >= chain_first && !row_aligned_edge(g, e)) return false; /* made inside the chain */
    }
    return true;
}

/* Bytes of one row block of a chain's widest value: the block, its
 * block-local intermediates and the rows of the inputs stay in one core's
 * L2 while the chain's steps pass over them. */
#define XCS_CHAIN_BLOCK_BYTES ((int64_t)512 << 10)

/* Rows per block of the chain of `len` steps at s, from its widest stored
 * row; 0 when one block would hold every row (no chain then). */
static int64_t chain_block_rows(const xcs_graph *g, const xcs_plan *plan, int s, int len) {
    int64_t row_bytes = 1, R = plan->groups[plan->steps[s].group].prog.shape[0];
    for (int t = s; t < s + len; t++) {
        const xcs_plan_group *grp = &plan->groups[plan->steps[t].group];
        for (int o = 0; o < grp->n_outputs; o++) {
            const xcs_node *n = &g->nodes[grp->output_nodes[o]];
            int64_t rb = (int64_t)xcs_dtype_size(n->dtype);
            for (int d = 1; d < n->ndim; d++) rb *= n->shape[d];
            if (rb > row_bytes) row_bytes = rb;
        }
    }
    int64_t B = XCS_CHAIN_BLOCK_BYTES / row_bytes;
    if (B < 1) B = 1;
    return B >= R ? 0 : B;
}

/* Values this big outlive any cache between their write and their next
 * read, so writing them around the cache (non-temporal stores) saves the
 * read-for-ownership of every line: 25% of an out-of-place pass's traffic. */
#define XCS_STREAM_MIN_BYTES ((int64_t)16 << 20)

static void mark_streamed_outputs(const xcs_graph *g, xcs_plan *plan) {
    for (int s = 0; s < plan->n_steps; s++) {
        int len = plan->chain[s] > 1 ? plan->chain[s] : 1;
        for (int t = s; t < s + len; t++) {
            if (plan->steps[t].group < 0) continue;
            xcs_plan_group *grp = &plan->groups[plan->steps[t].group];
            for (int o = 0; o < grp->n_outputs; o++) {
                int id = grp->output_nodes[o];
                const xcs_node *n = &g->nodes[id];
                int64_t bytes = (int64_t)xcs_dtype_size(n->dtype);
                for (int d = 0; d < n->ndim; d++) bytes *= n->shape[d];
                bool block_local = len > 1 && plan->last_step[id] < s + len;
                if (!block_local && bytes >= XCS_STREAM_MIN_BYTES) grp->prog.stream_outputs |= 1u << o;
            }
        }
        s += len - 1;
    }
}

/* ------------------------------------------------------------- memory plan */

typedef struct mp_value {
    int node;
    bool block;          /* a row chain's block buffer */
    int first, last;     /* steps */
    int64_t bytes, off;
} mp_value;

static int mp_by_size(const void *a, const void *b) {
    const mp_value *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->first - y->first;
}

static int64_t mp_node_bytes(const xcs_node *n, int64_t rows) {
    int64_t b = (int64_t)xcs_dtype_size(n->dtype);
    for (int d = 0; d < n->ndim; d++) b *= d == 0 && rows >= 0 ? rows : n->shape[d];
    return (b + 63) & ~(int64_t)63;
}

/* Greedy by size (largest first, each at the lowest offset clear of every
 * placed value it is live with), as TFLite's and XLA's heap simulators do;
 * within a few percent of optimal on inference graphs.  A value's search
 * walks at most MP_SEARCH placed values up from offset 0, then puts it on
 * top of the arena (always clear): a long unrolled loop whose thousands of
 * ys all live until they are stacked stays linear to plan. */
#define MP_SEARCH 2048
static xcs_status plan_memory(const xcs_graph *g, xcs_plan *plan) {
    const int nn = g->n_nodes, ns = plan->n_steps;
    for (int i = 0; i < nn; i++) plan->arena_off[i] = plan->block_off[i] = -1;
    plan->arena_bytes = plan->planned_bytes = 0;
    plan->n_planned = 0;
    mp_value *v = malloc(((size_t)nn * 2 + 1) * sizeof *v);
    if (!v) return xcs_error(XCS_ERR_MEMORY, "out of memory planning buffers");
    int nv = 0;
    for (int s = 0; s < ns; s++) {
        int len = plan->chain[s] > 1 ? plan->chain[s] : 1; /* a chain's values are live all along it */
        for (int t = s; t < s + len; t++) {
            if (plan->steps[t].group < 0) { /* an unfused matmul's product: a planned intermediate too */
                int id = plan->steps[t].node, last = plan->last_step[id];
                const xcs_node *n = &g->nodes[id];
                const xcs_op_info *info = xcs_op_get_info(n->op); /* NULL for inputs and constants */
                if (info && info->kind == XCS_KIND_MATMUL && last < ns)
                    v[nv++] = (mp_value){id, false, t, last < t ? t : last, mp_node_bytes(n, -1), 0};
                continue;
            }
            const xcs_plan_group *grp = &plan->groups[plan->steps[t].group];
            int ids[XCS_FUSED_MAX_IO + 1], n_ids = 0;
            for (int o = 0; o < grp->n_outputs; o++) ids[n_ids++] = grp->output_nodes[o];
            if (grp->matmul && grp->prod_out < 0) ids[n_ids++] = grp->first;
            for (int k = 0; k < n_ids; k++) {
                int id = ids[k], last = plan->last_step[id];
                if (last >= ns) continue; /* a graph output: returned, owns its buffer */
                const xcs_node *n = &g->nodes[id];
                bool local = len > 1 && last < s + len;
                int first = len > 1 ? s : t;
                if (last < s + len - 1) last = s + len - 1;
                if (last < t) last = t;
                int64_t bytes = local ? mp_node_bytes(n, plan->chain_rows[s]) * plan->chain_workers[s]
                                      : mp_node_bytes(n, -1);
                v[nv++] = (mp_value){id, local, first, last, bytes, 0};
            }
        }
        s += len - 1;
    }
    qsort(v, (size_t)nv, sizeof *v, mp_by_size);
    /* the placed values, kept sorted by offset: a value's gap search walks
     * them once, skipping those it is not live with (O(nv) per value; a
     * per-value sort of its live set was cubic in a long unrolled loop,
     * whose ys all live until they are stacked) */
    mp_value **placed = malloc(((size_t)nv + 1) * sizeof *placed);
    if (!placed) {
        free(v);
        return xcs_error(XCS_ERR_MEMORY, "out of memory planning buffers");
    }
    for (int i = 0; i < nv; i++) {
        int64_t off = 0; /* the lowest gap that fits */
        int k = 0;
        for (; k < i && k < MP_SEARCH && off + v[i].bytes > placed[k]->off; k++) {
            const mp_value *p = placed[k];
            if (p->last < v[i].first || v[i].last < p->first) continue; /* not live together */
            if (p->off + p->bytes > off) off = p->off + p->bytes;
        }
        if (k == MP_SEARCH && k < i) off = plan->arena_bytes; /* no gap low down: on top of everything */
        v[i].off = off;
        int at = 0, hi = i; /* after every placed value at or below off */
        while (at < hi) {
            int mid = at + (hi - at) / 2;
            if (placed[mid]->off <= off) at = mid + 1;
            else hi = mid;
        }
        memmove(&placed[at + 1], &placed[at], (size_t)(i - at) * sizeof *placed);
        placed[at] = &v[i];
        if (off + v[i].bytes > plan->arena_bytes) plan->arena_bytes = off + v[i].bytes;
        plan->planned_bytes += v[i].bytes;
        if (v[i].block) plan->block_off[v[i].node] = off;
        else plan->arena_off[v[i].node] = off;
    }
    plan->n_planned = nv;
    free(placed);
    free(v);
    return XCS_OK;
}

/* ---------------------------------------------------------------- planning */

void xcs_plan_free(xcs_plan *p) {
    if (!p) return;
    free(p->steps);
    free(p->groups);
    free(p->last_step);
    free(p->free_start);
    free(p->free_nodes);
    free(p->chain);
    free(p->chain_rows);
    free(p->chain_workers);
    free(p->arena_off);
    free(p->block_off);
    free(p);
}

xcs_status xcs_graph_fuse(xcs_graph *g) {
    int nn = g->n_nodes;
    xcs_plan *plan = calloc(1, sizeof *plan);
    bool *read_outside = calloc((size_t)nn + 1, sizeof *read_outside);
    int *group_of = malloc(((size_t)nn + 1) * sizeof *group_of);
    if (plan) {
        plan->steps = calloc((size_t)nn + 1, sizeof *plan->steps);
        plan->groups = calloc((size_t)nn + 1, sizeof *plan->groups);
        plan->last_step = malloc(((size_t)nn + 1) * sizeof *plan->last_step);
        plan->chain = calloc((size_t)nn + 1, sizeof *plan->chain);
        plan->chain_rows = calloc((size_t)nn + 1, sizeof *plan->chain_rows);
        plan->chain_workers = calloc((size_t)nn + 1, sizeof *plan->chain_workers);
        plan->arena_off = malloc(((size_t)nn + 1) * sizeof *plan->arena_off);
        plan->block_off = malloc(((size_t)nn + 1) * sizeof *plan->block_off);
    }
    if (!plan || !read_outside || !group_of || !plan->steps || !plan->groups || !plan->last_step || !plan->chain ||
        !plan->chain_rows || !plan->chain_workers || !plan->arena_off || !plan->block_off) {
        xcs_plan_free(plan);
        free(read_outside);
        free(group_of);
        return xcs_error(XCS_ERR_MEMORY, "out of memory planning fusion");
    }
    /* 1. greedy grouping */
    int cur = -1; /* first member of the open group */
    for (int i = 0; i < nn; i++) {
        const xcs_node *n = &g->nodes[i];
        group_of[i] = -1;
        if (is_matmul_head(n)) { /* opens a group for its epilogue */
            cur = group_of[i] = i;
            continue;
        }
        bool ew = fusible_elementwise(n), red = is_reduce(n);
        if (!ew && !red) { cur = -1; continue; }
        const xcs_node *head = cur >= 0 ? &g->nodes[cur] : NULL;
        bool join = head != NULL, mm_head = head && head->op == XCS_OP_MATMUL;
        if (join) {
            const xcs_edge *e0 = &g->edges[n->first_edge];
            if (red) join = same_shape(e0->ndim, e0->shape, head->ndim, head->shape) ||
                            (mm_head && same_squeezed(e0->ndim, e0->shape, head->ndim, head->shape));
            else join = same_shape(n->ndim, n->shape, head->ndim, head->shape) ||
                        (mm_head && same_squeezed(n->ndim, n->shape, head->ndim, head->shape));
        }
        for (int k = 0; join && k < n->n_in; k++) { /* members are read only whole */
            const xcs_edge *e = &g->edges[n->first_edge + k];
            bool whole = xcs_edge_is_identity(g, e) || (mm_head && e->node == cur && squeeze_identity(g, e));
            if (e->node >= cur && group_of[e->node] == cur && !whole) join = false;
        }
        if (!join) cur = i;
        group_of[i] = cur;
        if (red) cur = -1; /* a reduction closes its group */
    }
    for (int i = 0; i < nn; i++) /* a matmul nothing joined runs as itself */
        if (group_of[i] == i && is_matmul_head(&g->nodes[i]) && (i + 1 == nn || group_of[i + 1] != i))
            group_of[i] = -1;
    /* 2. which members must be stored: read by another group/step or an output */
    for (int i = 0; i < nn; i++) {
        const xcs_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            int src = g->edges[n->first_edge + k].node;
            if (group_of[src] < 0 || group_of[src] != group_of[i]) read_outside[src] = true;
        }
    }
    for (int o = 0; o < g->n_outputs; o++) read_outside[g->outputs[o].node] = true;
    /* 3. lower groups, shortening any that does not fit a program */
    int ns = 0, ng = 0;
    for (int i = 0; i < nn;) {
        if (group_of[i] < 0) {
            plan->steps[ns++] = (xcs_plan_step){.node = i, .group = -1};
            i++;
            continue;
        }
        int last = i;
        while (last + 1 < nn && group_of[last + 1] == group_of[i]) last++;
        while (!lower_group(g, i, last, read_outside, &plan->groups[ng])) {
            /* too big: split off the tail as a new group (its members that the
             * head produced become stored inputs) */
            last = i + (last - i) / 2;
            for (int j = i; j <= last; j++) read_outside[j] = true;
            if (last == i && is_matmul_head(&g->nodes[i])) break; /* a matmul alone: a plain step */
            if (last == i && !lower_group(g, i, last, read_outside, &plan->groups[ng])) {
                xcs_plan_free(plan);
                free(read_outside);
                free(group_of);
                return xcs_error(XCS_ERR_INTERNAL, "fusion: node %d does not fit a fused program", i);
            }
            if (last == i) break;
        }
        if (last == i && is_matmul_head(&g->nodes[i])) {
            plan->steps[ns++] = (xcs_plan_step){.node = i, .group = -1};
            for (int j = i + 1; j < nn && group_of[j] == group_of[i]; j++) group_of[j] = i + 1;
            i++;
            continue;
        }
        plan->steps[ns++] = (xcs_plan_step){.node = i, .group = ng++};
        for (int j = last + 1; j < nn && group_of[j] == group_of[i]; j++) group_of[j] = last + 1;
        i = last + 1;
    }
    plan->n_steps = ns;
    plan->n_groups = ng;
    /* 4. last step reading each node, so values can be freed early */
    for (int i = 0; i < nn; i++) plan->last_step[i] = -1;
    for (int s = 0; s < ns; s++) {
        const xcs_plan_step *st = &plan->steps[s];
        int lo = st->group >= 0 ? plan->groups[st->group].first : st->node;
        int hi = st->group >= 0 ? plan->groups[st->group].last : st->node;
        for (int i = lo; i <= hi; i++) {
            const xcs_node *n = &g->nodes[i];
            for (int k = 0; k < n->n_in; k++) plan->last_step[g->edges[n->first_edge + k].node] = s;
        }
    }
    for (int o = 0; o < g->n_outputs; o++) plan->last_step[g->outputs[o].node] = ns; /* kept */
    /* the same, grouped by step (a counting sort), so a run drops each
     * value in O(1) instead of scanning every node after every step */
    plan->free_start = calloc((size_t)ns + 2, sizeof *plan->free_start);
    plan->free_nodes = malloc(((size_t)nn + 1) * sizeof *plan->free_nodes);
    if (!plan->free_start || !plan->free_nodes) {
        xcs_plan_free(plan);
        free(read_outside);
        free(group_of);
        return xcs_error(XCS_ERR_MEMORY, "out of memory planning fusion");
    }
    for (int i = 0; i < nn; i++)
        if (plan->last_step[i] >= 0 && plan->last_step[i] < ns) plan->free_start[plan->last_step[i] + 1]++;
    for (int s = 0; s < ns; s++) plan->free_start[s + 1] += plan->free_start[s];
    {
        int *fill = calloc((size_t)ns + 1, sizeof *fill);
        if (!fill) {
            xcs_plan_free(plan);
            free(read_outside);
            free(group_of);
            return xcs_error(XCS_ERR_MEMORY, "out of memory planning fusion");
        }
        for (int i = 0; i < nn; i++) {
            int s = plan->last_step[i];
            if (s >= 0 && s < ns) plan->free_nodes[plan->free_start[s] + fill[s]++] = i;
        }
        free(fill);
    }
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CPU);
    int threads = be && be->max_threads && be->parallel ? be->max_threads() : 1;
    if (threads < 1) threads = 1;
    xcs_error_clear();
    /* 5. row chains: consecutive groups over the same leading rows, none
     * reducing over them, each reading values of earlier chain members only
     * row by row.  run.c executes a chain block of rows by block of rows, so
     * intermediates (softmax's exp, layer-norm's x - mean) stay in cache. */
    for (int s = 0; s < ns; s++) {
        int len = 0;
        for (int t = s; t < ns && row_chain_member(g, plan, s, t); t++) len++;
        if (len >= 2 && (plan->chain_rows[s] = chain_block_rows(g, plan, s, len)) > 0) {
            /* blocks are dealt to workers round-robin, each worker runs the
             * whole chain on its block in its own block buffers */
            int64_t R = plan->groups[plan->steps[s].group].prog.shape[0];
            int64_t nblocks = (R + plan->chain_rows[s] - 1) / plan->chain_rows[s];
            plan->chain_workers[s] = (int)(nblocks < threads ? nblocks : threads);
            plan->chain[s] = len;
            s += len - 1;
        }
    }
    mark_streamed_outputs(g, plan);
    free(read_outside);
    free(group_of);
    xcs_status st = plan_memory(g, plan);
    if (st) {
        xcs_plan_free(plan);
        return st;
    }
    xcs_plan_free(g->plan);
    g->plan = plan;
    return XCS_OK;
}

bool xcs_fused_can_fault(const xcs_fused_program *p) {
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        if (in->kind == XCS_FUSED_OP && xcs_dtype_is_int(in->dtype) && xcs_op_int_faults(in->op)) return true;
    }
    return false;
}

xcs_status xcs_fused_fault(const xcs_fused_program *p, unsigned bits, const char *where) {
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *ins = &p->instr[i];
        if (ins->kind != XCS_FUSED_OP || xcs_dtype_is_float(ins->dtype)) continue;
        if ((bits & XCS_FUSED_FAULT_ZERO_DIV) && xcs_op_int_faults(ins->op) && ins->op != XCS_OP_POW)
            return xcs_error(XCS_ERR_ZERO_DIV, "integer division by zero in %s (dtype %s%s)", xcs_op_name(ins->op),
                             xcs_dtype_name(ins->dtype), where);
        if ((bits & XCS_FUSED_FAULT_NEG_POW) && ins->op == XCS_OP_POW)
            return xcs_error(XCS_ERR_VALUE, "Integers to negative integer powers are not allowed (%s, dtype %s%s)",
                             xcs_op_name(ins->op), xcs_dtype_name(ins->dtype), where);
    }
    return xcs_error(XCS_ERR_VALUE, "fused program: a kernel reported fault bits 0x%x%s", bits, where);
}
