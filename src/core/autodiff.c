/* autodiff.c — reverse-mode automatic differentiation on the IR
 * (xcs_graph_vjp).
 *
 * The backward pass is built from the same traced ops as any program: each
 * node's VJP rule is ordinary tensor code (xcs_binary, xcs_reduce, ...) on
 * traced tensors that stand for node values, so the rule's ops append nodes
 * to the same graph, and the gradient then goes through the same passes
 * (CSE, fusion, memory plan) and kernels as the forward program.
 *
 * Nodes are visited from the output down (node ids are a topological
 * order).  A node's cotangent has the node's value shape.  Inputs are read
 * through edges (views: broadcasts, transposes, slices), so a rule produces
 * the cotangent of the *view*, and view_adjoint maps it back onto the
 * source node's value: a sum over broadcast dims, then a reshape or an
 * inverse permutation when the view covers the value in some order, else a
 * scatter-add at the view's element positions (slices, steps, offsets).
 *
 * Conventions (documented in docs/api.md): max/min (reduce and elementwise)
 * split the cotangent equally between ties; floor, ceil, sign, rounding and
 * integer/boolean-valued ops have zero gradient; prod's gradient is
 * cotangent * prod / x (undefined where x == 0). */
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A cotangent read through a view that is not all of its source (a
 * slice, an element, a strided view): values for the source's flat
 * positions pos.  A source's pieces are summed in one scatter-add when its
 * cotangent is first needed, so the T slices of an unrolled loop's xs cost
 * O(size of xs), not T full-size scatters and sums. */
typedef struct ad_piece {
    xcs_tensor *pos;     /* host int64 [m] */
    xcs_tensor *vals;    /* traced [m], the source's dtype */
    int next;            /* the source's previous piece, or -1 */
} ad_piece;

typedef struct ad {
    xcs_graph *g;
    xcs_status st;
    xcs_status kst;      /* scratch for KEEP */
    xcs_tensor **ct;     /* per original node: its dense cotangent (traced), or NULL */
    int *last_piece;     /* per original node: its newest pending piece, or -1 */
    ad_piece *pieces;
    int n_pieces, cap_pieces;
    int n_nodes;
    xcs_tensor **tmp;    /* every tensor header made here, freed at the end */
    int n_tmp, cap_tmp;
} ad;

/* KEEP(c, call, o): runs call (which sets o) first, then keeps o — the
 * order matters: C leaves the evaluation order of arguments unspecified. */
#define KEEP(c, call, o) ((c)->kst = (call), keep((c), (c)->kst, (o)))

static xcs_tensor *keep(ad *c, xcs_status st, xcs_tensor *t) {
    if (st) {
        if (!c->st) c->st = st;
        xcs_tensor_free(t);
        return NULL;
    }
    if (c->n_tmp == c->cap_tmp) {
        int cap = c->cap_tmp ? 2 * c->cap_tmp : 64;
        xcs_tensor **p = realloc(c->tmp, (size_t)cap * sizeof *p);
        if (!p) {
            c->st = xcs_error(XCS_ERR_MEMORY, "out of memory building a gradient");
            xcs_tensor_free(t);
            return NULL;
        }
        c->tmp = p;
        c->cap_tmp = cap;
    }
    c->tmp[c->n_tmp++] = t;
    return t;
}

/* Ops that do nothing once an error is set (so rules read straight). */
static xcs_tensor *U(ad *c, xcs_op op, const xcs_tensor *a) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_unary(op, a, &o), o);
}
static xcs_tensor *B(ad *c, xcs_op op, const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *o = NULL;
    return c->st || !a || !b ? NULL : KEEP(c, xcs_binary(op, a, b, &o), o);
}
static xcs_tensor *W(ad *c, const xcs_tensor *cond, const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *o = NULL;
    return c->st || !cond || !a || !b ? NULL : KEEP(c, xcs_where(cond, a, b, &o), o);
}
static xcs_tensor *K(ad *c, double v) { /* a weak scalar: takes the other operand's dtype */
    xcs_tensor *o = NULL;
    if (c->st) return NULL;
    xcs_status st = xcs_tensor_scalar(XCS_F64, v, &o);
    if (!st) o->flags |= XCS_TENSOR_WEAK;
    return keep(c, st, o);
}
static xcs_tensor *KI(ad *c, int64_t v) { /* a weak integer scalar (index arithmetic stays int64) */
    xcs_tensor *o = NULL;
    if (c->st) return NULL;
    xcs_status st = xcs_tensor_scalar(XCS_I64, (double)v, &o);
    if (!st) o->flags |= XCS_TENSOR_WEAK;
    return keep(c, st, o);
}
static xcs_tensor *CAST(ad *c, const xcs_tensor *a, xcs_dtype dt) {
    xcs_tensor *o = NULL;
    if (c->st || !a) return NULL;
    if (a->dtype == dt) return (xcs_tensor *)a;
    return KEEP(c, xcs_cast(a, dt, &o), o);
}
static xcs_tensor *SUM(ad *c, const xcs_tensor *a, unsigned axes) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_reduce(XCS_OP_SUM, a, axes, true, &o), o);
}
static xcs_tensor *RESHAPE(ad *c, const xcs_tensor *a, int nd, const int64_t *shape) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_reshape(a, nd, shape, &o), o);
}
static xcs_tensor *BCAST(ad *c, const xcs_tensor *a, int nd, const int64_t *shape) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_broadcast_to(a, nd, shape, &o), o);
}
static xcs_tensor *PERMUTE(ad *c, const xcs_tensor *a, const int *perm) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_permute(a, perm, &o), o);
}
static xcs_tensor *MATMUL(ad *c, const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *o = NULL;
    return c->st || !a || !b ? NULL : KEEP(c, xcs_matmul(a, b, &o), o);
}
static xcs_tensor *SWAP_LAST(ad *c, const xcs_tensor *a) {
    int perm[XCS_MAX_DIMS];
    if (!a) return NULL;
    for (int i = 0; i < a->ndim; i++) perm[i] = i;
    perm[a->ndim - 1] = a->ndim - 2;
    perm[a->ndim - 2] = a->ndim - 1;
    return PERMUTE(c, a, perm);
}

static xcs_tensor *SOLVE(ad *c, const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *o = NULL;
    const xcs_tensor *in[2] = {a, b};
    return c->st || !a || !b ? NULL : KEEP(c, xcs_linalg(XCS_OP_SOLVE, 2, in, &o), o);
}
/* An n x n constant of dtype dt: `diag` on the diagonal, `below` under it,
 * `above` over it (eye, the lower-triangle masks). */
static xcs_tensor *TRI(ad *c, int64_t n, xcs_dtype dt, double below, double diag, double above) {
    xcs_tensor *f = NULL, *o = NULL;
    if (c->st) return NULL;
    const int64_t s[2] = {n, n};
    xcs_status st = xcs_tensor_empty(XCS_F64, 2, s, &f);
    for (int64_t i = 0; !st && i < n; i++)
        for (int64_t j = 0; j < n; j++)
            ((double *)xcs_tensor_data(f))[i * n + j] = i > j ? below : i == j ? diag : above;
    if (!st) st = xcs_cast(f, dt, &o);
    xcs_tensor_free(f);
    return keep(c, st, o);
}

/* A traced tensor reading node `node` through a view. */
static xcs_tensor *view_of(ad *c, int32_t node, int ndim, const int64_t *shape, const int64_t *strides, int64_t off) {
    if (c->st) return NULL;
    xcs_tensor *t = calloc(1, sizeof *t);
    if (!t) return keep(c, xcs_error(XCS_ERR_MEMORY, "out of memory building a gradient"), NULL);
    t->graph = c->g;
    t->node = node;
    t->dtype = c->g->nodes[node].dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    t->offset = off;
    return keep(c, XCS_OK, t);
}
static xcs_tensor *edge_tensor(ad *c, const xcs_edge *e) {
    return view_of(c, e->node, e->ndim, e->shape, e->strides, e->offset);
}
static xcs_tensor *node_tensor(ad *c, int32_t i) {
    const xcs_node *n = &c->g->nodes[i];
    int64_t st[XCS_MAX_DIMS];
    xcs_strides_contiguous(n->ndim, n->shape, st);
    return view_of(c, i, n->ndim, n->shape, st, 0);
}

/* ------------------------------------------------------------ views */

/* ct (the view's shape) mapped onto the source node's value (its shape),
 * or, for a view that is not all of it, *pos set to the view's flat
 * positions in it and ct's values returned flat (a piece). */
static xcs_tensor *view_adjoint(ad *c, int32_t src_id, int ndim, const int64_t *shape, const int64_t *strides,
                                int64_t off, xcs_tensor *ct, xcs_tensor **pos_out) {
    *pos_out = NULL;
    if (c->st || !ct) return NULL;
    const xcs_node src = c->g->nodes[src_id];
    int64_t n_src = 1, n_view = 1;
    for (int d = 0; d < src.ndim; d++) n_src *= src.shape[d];
    /* 1. broadcast dims (stride 0, size > 1) are summed */
    unsigned axes = 0;
    int64_t vs[XCS_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        vs[d] = shape[d];
        if (strides[d] == 0 && shape[d] > 1) {
            axes |= 1u << d;
            vs[d] = 1;
        }
        n_view *= vs[d];
    }
    xcs_tensor *r = axes ? SUM(c, ct, axes) : ct;
    if (!r) return NULL;
    /* 2. the remaining view covers the value exactly, in some dim order: permute back, reshape */
    if (n_view == n_src && off == 0) {
        int order[XCS_MAX_DIMS], m = 0;
        for (int d = 0; d < ndim; d++)
            if (vs[d] > 1) order[m++] = d;
        for (int i = 1; i < m; i++) /* by decreasing stride: the source's C order */
            for (int j = i; j > 0 && strides[order[j]] > strides[order[j - 1]]; j--) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        bool dense = true;
        int64_t expect = 1;
        for (int i = m - 1; i >= 0 && dense; i--) {
            dense = strides[order[i]] == expect;
            expect *= vs[order[i]];
        }
        if (dense) {
            int perm[XCS_MAX_DIMS], k = 0;
            bool identity = true;
            for (int i = 0; i < m; i++) perm[k++] = order[i];
            for (int d = 0; d < ndim; d++)
                if (vs[d] <= 1) perm[k++] = d;
            for (int d = 0; d < ndim; d++) identity = identity && perm[d] == d;
            /* keep size-1 dims where they are: permute only the dims that matter */
            if (!identity) {
                int full[XCS_MAX_DIMS], f = 0, q = 0;
                for (int d = 0; d < ndim; d++) full[f++] = vs[d] > 1 ? order[q++] : d;
                r = PERMUTE(c, r, full);
            }
            return RESHAPE(c, r, src.ndim, src.shape);
        }
    }
    /* 3. anything else: a scatter-add at the view's flat positions in the value */
    xcs_tensor *pos = NULL;
    xcs_status st = xcs_tensor_empty(XCS_I64, 1, &n_view, &pos);
    if (!keep(c, st, pos)) return NULL;
    int64_t *p = xcs_tensor_data(pos), idx[XCS_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n_view; i++) {
        int64_t o = off;
        for (int d = 0; d < ndim; d++) o += idx[d] * strides[d];
        p[i] = o;
        for (int d = ndim - 1; d >= 0; d--) {
            if (++idx[d] < vs[d]) break;
            idx[d] = 0;
        }
    }
    xcs_tensor *flat = RESHAPE(c, r, 1, &n_view);
    if (flat) *pos_out = pos;
    return flat;
}

/* Adds contribution ct (read through edge e of the consumer) to e's source. */
static void accumulate(ad *c, const xcs_edge *e, xcs_tensor *ct) {
    if (c->st || !ct || e->node >= c->n_nodes) return;
    xcs_dtype dt = c->g->nodes[e->node].dtype;
    if (!xcs_dtype_is_float(dt)) return;
    xcs_tensor *pos = NULL, *v = view_adjoint(c, e->node, e->ndim, e->shape, e->strides, e->offset, ct, &pos);
    v = CAST(c, v, dt);
    if (!v) return;
    if (!pos) {
        c->ct[e->node] = c->ct[e->node] ? B(c, XCS_OP_ADD, c->ct[e->node], v) : v;
        return;
    }
    if (c->n_pieces == c->cap_pieces) {
        int cap = c->cap_pieces ? 2 * c->cap_pieces : 64;
        ad_piece *p = realloc(c->pieces, (size_t)cap * sizeof *p);
        if (!p) {
            c->st = xcs_error(XCS_ERR_MEMORY, "out of memory building a gradient");
            return;
        }
        c->pieces = p;
        c->cap_pieces = cap;
    }
    c->pieces[c->n_pieces] = (ad_piece){pos, v, c->last_piece[e->node]};
    c->last_piece[e->node] = c->n_pieces++;
}

/* Node i's whole cotangent: its dense part plus its pending pieces, summed
 * by one scatter-add (their positions and values concatenated). */
static xcs_tensor *cotangent(ad *c, int32_t i) {
    if (c->st) return NULL;
    if (c->last_piece[i] < 0) return c->ct[i];
    int n = 0;
    int64_t m = 0;
    for (int k = c->last_piece[i]; k >= 0; k = c->pieces[k].next, n++) m += c->pieces[k].pos->shape[0];
    const xcs_tensor **vals = malloc((size_t)n * sizeof *vals);
    xcs_tensor *pos = NULL, *flat = NULL, *sum = NULL;
    if (!vals) {
        c->st = xcs_error(XCS_ERR_MEMORY, "out of memory building a gradient");
        return NULL;
    }
    if (KEEP(c, xcs_tensor_empty(XCS_I64, 1, &m, &pos), pos)) {
        int64_t *p = xcs_tensor_data(pos), at = m;
        int j = n;
        for (int k = c->last_piece[i]; k >= 0; k = c->pieces[k].next) { /* newest last in both */
            const xcs_tensor *pk = c->pieces[k].pos;
            at -= pk->shape[0];
            memcpy(p + at, xcs_tensor_data(pk), (size_t)pk->shape[0] * sizeof *p);
            vals[--j] = c->pieces[k].vals;
        }
        if (n == 1) flat = (xcs_tensor *)vals[0];
        else KEEP(c, xcs_concat(n, vals, 0, &flat), flat);
    }
    free(vals);
    c->last_piece[i] = -1;
    const xcs_node src = c->g->nodes[i]; /* a copy: ops append nodes (realloc) */
    int64_t n_src = 1;
    for (int d = 0; d < src.ndim; d++) n_src *= src.shape[d];
    if (!c->st) KEEP(c, xcs_scatter_add(pos, flat, n_src, &sum), sum);
    xcs_tensor *v = RESHAPE(c, sum, src.ndim, src.shape);
    if (v) c->ct[i] = c->ct[i] ? B(c, XCS_OP_ADD, c->ct[i], v) : v;
    return c->st ? NULL : c->ct[i];
}

/* ------------------------------------------------------------ rules */

static const double AD_SQRT1_2 = 0.70710678118654752440, AD_INV_SQRT_2PI = 0.39894228040143267794,
                    AD_2_SQRTPI = 1.12837916709551257390, AD_LN2 = 0.69314718055994530942,
                    AD_LN10 = 2.30258509299404568402;

static xcs_tensor *unary_rule(ad *c, xcs_op op, xcs_tensor *a, xcs_tensor *y, xcs_tensor *g) {
    switch (op) {
    case XCS_OP_NEG: return U(c, XCS_OP_NEG, g);
    case XCS_OP_ABS: return B(c, XCS_OP_MUL, g, U(c, XCS_OP_SIGN, a));
    case XCS_OP_EXP: return B(c, XCS_OP_MUL, g, y);
    case XCS_OP_LOG: return B(c, XCS_OP_DIV, g, a);
    case XCS_OP_LOG1P: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_ADD, a, K(c, 1)));
    case XCS_OP_EXPM1: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_ADD, y, K(c, 1)));
    case XCS_OP_SQRT: return B(c, XCS_OP_DIV, B(c, XCS_OP_MUL, g, K(c, 0.5)), y);
    case XCS_OP_RSQRT: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_DIV, B(c, XCS_OP_MUL, y, K(c, -0.5)), a));
    case XCS_OP_SIN: return B(c, XCS_OP_MUL, g, U(c, XCS_OP_COS, a));
    case XCS_OP_COS: return U(c, XCS_OP_NEG, B(c, XCS_OP_MUL, g, U(c, XCS_OP_SIN, a)));
    case XCS_OP_TANH: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_SUB, K(c, 1), B(c, XCS_OP_MUL, y, y)));
    case XCS_OP_SIGMOID: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_MUL, y, B(c, XCS_OP_SUB, K(c, 1), y)));
    case XCS_OP_RELU: return W(c, B(c, XCS_OP_GT, a, K(c, 0)), g, K(c, 0));
    case XCS_OP_ERF:
        return B(c, XCS_OP_MUL, g,
                 B(c, XCS_OP_MUL, K(c, AD_2_SQRTPI), U(c, XCS_OP_EXP, U(c, XCS_OP_NEG, B(c, XCS_OP_MUL, a, a)))));
    case XCS_OP_GELU: { /* Phi(x) + x phi(x) */
        xcs_tensor *cdf = B(c, XCS_OP_MUL, K(c, 0.5),
                            B(c, XCS_OP_ADD, K(c, 1), U(c, XCS_OP_ERF, B(c, XCS_OP_MUL, a, K(c, AD_SQRT1_2)))));
        xcs_tensor *pdf = B(c, XCS_OP_MUL, K(c, AD_INV_SQRT_2PI),
                            U(c, XCS_OP_EXP, B(c, XCS_OP_MUL, B(c, XCS_OP_MUL, a, a), K(c, -0.5))));
        return B(c, XCS_OP_MUL, g, B(c, XCS_OP_ADD, cdf, B(c, XCS_OP_MUL, a, pdf)));
    }
    case XCS_OP_TAN: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_ADD, K(c, 1), B(c, XCS_OP_MUL, y, y)));
    case XCS_OP_ARCSIN: /* 1 / sqrt(1 - a^2) */
        return B(c, XCS_OP_MUL, g, U(c, XCS_OP_RSQRT, B(c, XCS_OP_SUB, K(c, 1), B(c, XCS_OP_MUL, a, a))));
    case XCS_OP_ARCCOS:
        return U(c, XCS_OP_NEG, B(c, XCS_OP_MUL, g, U(c, XCS_OP_RSQRT, B(c, XCS_OP_SUB, K(c, 1), B(c, XCS_OP_MUL, a, a)))));
    case XCS_OP_ARCTAN: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_ADD, K(c, 1), B(c, XCS_OP_MUL, a, a)));
    case XCS_OP_SINH: return B(c, XCS_OP_MUL, g, U(c, XCS_OP_COSH, a));
    case XCS_OP_COSH: return B(c, XCS_OP_MUL, g, U(c, XCS_OP_SINH, a));
    case XCS_OP_ARCSINH: /* 1 / sqrt(a^2 + 1) */
        return B(c, XCS_OP_MUL, g, U(c, XCS_OP_RSQRT, B(c, XCS_OP_ADD, B(c, XCS_OP_MUL, a, a), K(c, 1))));
    case XCS_OP_ARCCOSH: /* 1 / (sqrt(a - 1) sqrt(a + 1)) */
        return B(c, XCS_OP_DIV, g,
                 B(c, XCS_OP_MUL, U(c, XCS_OP_SQRT, B(c, XCS_OP_SUB, a, K(c, 1))),
                   U(c, XCS_OP_SQRT, B(c, XCS_OP_ADD, a, K(c, 1)))));
    case XCS_OP_ARCTANH: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_SUB, K(c, 1), B(c, XCS_OP_MUL, a, a)));
    case XCS_OP_LOG2: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_MUL, a, K(c, AD_LN2)));
    case XCS_OP_LOG10: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_MUL, a, K(c, AD_LN10)));
    case XCS_OP_EXP2: return B(c, XCS_OP_MUL, g, B(c, XCS_OP_MUL, y, K(c, AD_LN2)));
    case XCS_OP_CBRT: return B(c, XCS_OP_DIV, g, B(c, XCS_OP_MUL, K(c, 3), B(c, XCS_OP_MUL, y, y)));
    default: return NULL; /* floor, ceil, trunc, rint, sign, logical/bitwise: zero gradient */
    }
}

/* 1 where a wins, 0.5 on ties, 0 where it loses (wins: `better` is GT or LT). */
static xcs_tensor *winner(ad *c, xcs_op better, xcs_tensor *a, xcs_tensor *b) {
    return W(c, B(c, better, a, b), K(c, 1), W(c, B(c, XCS_OP_EQ, a, b), K(c, 0.5), K(c, 0)));
}

static void binary_rule(ad *c, xcs_op op, xcs_tensor *a, xcs_tensor *b, xcs_tensor *y, xcs_tensor *g,
                        xcs_tensor **ga, xcs_tensor **gb) {
    *ga = *gb = NULL;
    switch (op) {
    case XCS_OP_ADD: *ga = g, *gb = g; break;
    case XCS_OP_SUB: *ga = g, *gb = U(c, XCS_OP_NEG, g); break;
    case XCS_OP_MUL: *ga = B(c, XCS_OP_MUL, g, b), *gb = B(c, XCS_OP_MUL, g, a); break;
    case XCS_OP_DIV:
        *ga = B(c, XCS_OP_DIV, g, b);
        *gb = U(c, XCS_OP_NEG, B(c, XCS_OP_DIV, B(c, XCS_OP_MUL, g, y), b));
        break;
    case XCS_OP_POW:
        *ga = B(c, XCS_OP_MUL, g, B(c, XCS_OP_MUL, b, B(c, XCS_OP_POW, a, B(c, XCS_OP_SUB, b, K(c, 1)))));
        *gb = B(c, XCS_OP_MUL, g, W(c, B(c, XCS_OP_GT, a, K(c, 0)), B(c, XCS_OP_MUL, y, U(c, XCS_OP_LOG, a)), K(c, 0)));
        break;
    case XCS_OP_MAXIMUM:
        *ga = B(c, XCS_OP_MUL, g, winner(c, XCS_OP_GT, a, b)), *gb = B(c, XCS_OP_MUL, g, winner(c, XCS_OP_GT, b, a));
        break;
    case XCS_OP_MINIMUM:
        *ga = B(c, XCS_OP_MUL, g, winner(c, XCS_OP_LT, a, b)), *gb = B(c, XCS_OP_MUL, g, winner(c, XCS_OP_LT, b, a));
        break;
    case XCS_OP_MOD: /* a - floor(a / b) * b */
        *ga = g;
        *gb = U(c, XCS_OP_NEG, B(c, XCS_OP_MUL, g, U(c, XCS_OP_FLOOR, B(c, XCS_OP_DIV, a, b))));
        break;
    case XCS_OP_ARCTAN2: { /* d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2) */
        xcs_tensor *r2 = B(c, XCS_OP_ADD, B(c, XCS_OP_MUL, a, a), B(c, XCS_OP_MUL, b, b));
        *ga = B(c, XCS_OP_DIV, B(c, XCS_OP_MUL, g, b), r2);
        *gb = U(c, XCS_OP_NEG, B(c, XCS_OP_DIV, B(c, XCS_OP_MUL, g, a), r2));
        break;
    }
    case XCS_OP_HYPOT: *ga = B(c, XCS_OP_MUL, g, B(c, XCS_OP_DIV, a, y)), *gb = B(c, XCS_OP_MUL, g, B(c, XCS_OP_DIV, b, y)); break;
    case XCS_OP_FMOD: /* a - trunc(a / b) * b */
        *ga = g;
        *gb = U(c, XCS_OP_NEG, B(c, XCS_OP_MUL, g, U(c, XCS_OP_TRUNC, B(c, XCS_OP_DIV, a, b))));
        break;
    case XCS_OP_COPYSIGN: /* |a| with b's sign: d/da = sign(a) * copysign(1, b) */
        *ga = B(c, XCS_OP_MUL, g, B(c, XCS_OP_MUL, U(c, XCS_OP_SIGN, a), B(c, XCS_OP_COPYSIGN, K(c, 1), b)));
        break;
    default: break; /* floor_divide, comparisons, logical, bitwise: zero */
    }
}

static xcs_tensor *ZEROS(ad *c, xcs_dtype dt, int nd, const int64_t *shape) { /* a broadcast scalar */
    xcs_tensor *z = NULL;
    if (c->st) return NULL;
    xcs_status st = xcs_tensor_scalar(dt, 0, &z);
    return BCAST(c, keep(c, st, z), nd, shape);
}

/* scan (scan_node.c): the reverse loop.  The forward loop also stacks the
 * carry leaving each step, which shifted by a step is the carry entering
 * each step (the residuals); the reverse loop runs the body's VJP from the
 * last step to the first, its carries the carry's
 * cotangent and the sums of the invariants' cotangents, its ys the xs'
 * cotangents.  Run once per scan, at its lowest node: every consumer of
 * its outputs comes after it, so their cotangents are complete. */
static void scan_rule(ad *c, int32_t i) {
    xcs_graph *g = c->g;
    int aux = g->nodes[i].aux;
    for (int32_t j = 0; j < i; j++)
        if (g->nodes[j].op == XCS_OP_SCAN && g->nodes[j].aux == aux) return;
    const xcs_scan_node *d = g->scans[aux];
    int nc = d->n_carry, nx = d->n_x, ni = d->n_inv, n_in = g->nodes[i].n_in, cap = d->n_out + nc;
    xcs_tensor **ct = calloc((size_t)cap + 1, sizeof *ct), **resid = calloc((size_t)nc + 1, sizeof *resid);
    xcs_edge *e = malloc(((size_t)n_in + 1) * sizeof *e);
    const xcs_tensor **in = calloc((size_t)(2 * nc + 2 * ni + nx + cap) + 1, sizeof *in);
    xcs_tensor **outs = calloc((size_t)(nc + 2 * ni + nx) + 1, sizeof *outs);
    int *kind = calloc((size_t)ni + 1, sizeof *kind);
    xcs_graph *body = NULL;
    xcs_scan_node *back = NULL;
    bool any = false;
    if (!ct || !resid || !e || !in || !outs || !kind)
        c->st = xcs_error(XCS_ERR_MEMORY, "out of memory differentiating a scan");
    for (int32_t j = i; j < c->n_nodes && !c->st; j++) {
        const xcs_node *m = &g->nodes[j];
        if (m->op != XCS_OP_SCAN || m->aux != aux) continue;
        int ax = m->axis;
        xcs_tensor *t = cotangent(c, j);
        if (t) {
            ct[ax] = ct[ax] ? B(c, XCS_OP_ADD, ct[ax], t) : t;
            any = true;
        }
    }
    if (!c->st && any) {
        memcpy(e, &g->edges[g->nodes[i].first_edge], (size_t)n_in * sizeof *e);
        c->st = xcs_scan_with_residuals(g, aux, i, resid);
        for (int q = 0; q < nc && !c->st; q++) keep(c, XCS_OK, resid[q]);
    }
    int nsum = 0, ngemm = 0;
    if (!c->st && any) {
        d = g->scans[aux]; /* with the residual ys */
        if (!(c->st = xcs_scan_vjp_body(d, kind, &body))) {
            for (int v = 0; v < ni; v++) {
                nsum += kind[v] == XCS_SCAN_CT_SUM;
                ngemm += kind[v] == XCS_SCAN_CT_GEMM || kind[v] == XCS_SCAN_CT_GEMM_T;
            }
            c->st = xcs_scan_node_new(body, nc + nsum, nc + nx + d->n_out - nc, 0, d->length, !d->reverse, &back);
        }
    }
    if (!c->st && any) {
        int k = 0;
        for (int q = 0; q < nc; q++) { /* the carry's cotangent, zeros where none */
            const xcs_edge *o = &d->body->outputs[q];
            in[k++] = ct[q] ? ct[q] : ZEROS(c, d->body->nodes[o->node].dtype, o->ndim, o->shape);
        }
        for (int v = 0; v < ni; v++) /* the summed invariants start at zero */
            if (kind[v] == XCS_SCAN_CT_SUM) in[k++] = ZEROS(c, g->nodes[e[nc + nx + v].node].dtype, e[nc + nx + v].ndim,
                                                           e[nc + nx + v].shape);
        for (int q = 0; q < nc; q++) in[k++] = resid[q];
        for (int x = 0; x < nx; x++) in[k++] = edge_tensor(c, &e[nc + x]);
        for (int j = nc; j < d->n_out; j++) {
            const xcs_edge *o = &d->body->outputs[j];
            int64_t shape[XCS_MAX_DIMS];
            shape[0] = d->length;
            memcpy(shape + 1, o->shape, (size_t)o->ndim * sizeof *shape);
            in[k++] = ct[j] ? ct[j] : ZEROS(c, d->body->nodes[o->node].dtype, o->ndim + 1, shape);
        }
        for (int v = 0; v < ni; v++) in[k++] = edge_tensor(c, &e[nc + nx + v]);
        if (!c->st) c->st = xcs_scan_node_call(back, k, in, outs);
        for (int q = 0; q < nc + nsum + nx + 2 * ngemm && !c->st; q++) keep(c, XCS_OK, outs[q]);
        for (int q = 0; q < nc && !c->st; q++) accumulate(c, &e[q], outs[q]);
        for (int x = 0; x < nx && !c->st; x++) accumulate(c, &e[nc + x], outs[nc + nsum + x]);
        for (int v = 0, a = nc, f = nc + nsum + nx; v < ni && !c->st; v++) {
            if (kind[v] == XCS_SCAN_CT_SUM) {
                accumulate(c, &e[nc + nx + v], outs[a++]);
            } else if (kind[v] != XCS_SCAN_CT_NONE) { /* one GEMM over the steps' factors */
                xcs_tensor *sum = NULL;
                KEEP(c, xcs_scan_ct_gemm(outs[f], outs[f + 1], kind[v] == XCS_SCAN_CT_GEMM_T, &sum), sum);
                accumulate(c, &e[nc + nx + v], sum);
                f += 2;
            }
        }
    }
    xcs_scan_node_release(back);
    xcs_graph_free(body);
    free(ct);
    free(resid);
    free(e);
    free(in);
    free(outs);
    free(kind);
}

/* Rows [r0, r1) of a's second-to-last axis; ROW: row r, that axis dropped. */
static xcs_tensor *ROWS(ad *c, const xcs_tensor *a, int64_t r0, int64_t r1) {
    xcs_tensor *o = NULL;
    xcs_slice sl = {.start = r0, .stop = r1, .step = 1, .has_start = true, .has_stop = true};
    return c->st || !a ? NULL : KEEP(c, xcs_slice_axis(a, a->ndim - 2, sl, &o), o);
}
static xcs_tensor *ROW(ad *c, const xcs_tensor *a, int64_t r) {
    xcs_tensor *o = NULL;
    return c->st || !a ? NULL : KEEP(c, xcs_index_axis(a, a->ndim - 2, r, &o), o);
}
/* Columns [c0, c1) of a's last axis. */
static xcs_tensor *COLS(ad *c, const xcs_tensor *a, int64_t c0, int64_t c1) {
    xcs_tensor *o = NULL;
    xcs_slice sl = {.start = c0, .stop = c1, .step = 1, .has_start = true, .has_stop = true};
    return c->st || !a ? NULL : KEEP(c, xcs_slice_axis(a, a->ndim - 1, sl, &o), o);
}
/* The cotangent of a tall-or-square a = q r (r square, k x k) from those
 * of q and r (Liao et al. 2019): (gq + q copyltu(M)) r^-T, M = r gr^T -
 * gq^T q, copyltu: the lower triangle copied over the upper. */
static xcs_tensor *qr_square_ct(ad *c, xcs_tensor *q, xcs_tensor *r, xcs_tensor *gq, xcs_tensor *gr, int64_t k,
                                xcs_dtype dt) {
    xcs_tensor *mm = B(c, XCS_OP_SUB, MATMUL(c, r, SWAP_LAST(c, gr)), MATMUL(c, SWAP_LAST(c, gq), q));
    xcs_tensor *low = B(c, XCS_OP_MUL, mm, TRI(c, k, dt, 1, 1, 0));
    xcs_tensor *sym = B(c, XCS_OP_ADD, low, SWAP_LAST(c, B(c, XCS_OP_MUL, mm, TRI(c, k, dt, 1, 0, 0))));
    xcs_tensor *x = B(c, XCS_OP_ADD, gq, MATMUL(c, q, sym));
    return SWAP_LAST(c, SOLVE(c, r, SWAP_LAST(c, x))); /* x r^-T = (r^-1 x^T)^T */
}
/* v [..., k] as [..., 1, k] (as_row) or [..., k, 1]. */
static xcs_tensor *VEC2(ad *c, const xcs_tensor *v, bool as_row) {
    int64_t s[XCS_MAX_DIMS];
    if (!v || c->st) return NULL;
    memcpy(s, v->shape, (size_t)v->ndim * sizeof *s);
    s[v->ndim] = as_row ? v->shape[v->ndim - 1] : 1;
    s[v->ndim - 1] = as_row ? 1 : v->shape[v->ndim - 1];
    return RESHAPE(c, v, v->ndim + 1, s);
}
/* F_ij = 1 / (d_j - d_i) off the diagonal, 0 on it (d: [..., k]). */
static xcs_tensor *GAPS(ad *c, const xcs_tensor *d, int64_t k, xcs_dtype dt) {
    xcs_tensor *diff = B(c, XCS_OP_SUB, VEC2(c, d, true), VEC2(c, d, false));
    return W(c, B(c, XCS_OP_GT, TRI(c, k, dt, 0, 1, 0), K(c, 0)), K(c, 0), B(c, XCS_OP_DIV, K(c, 1), diff));
}

/* The cotangents of a linear-algebra node's inputs (y: its value, g: y's
 * cotangent; a, b: its inputs, already broadcast to y's batch). */
static void linalg_rule(ad *c, const xcs_node *n, const xcs_edge *e, xcs_tensor *y, xcs_tensor *g) {
    xcs_tensor *a = edge_tensor(c, &e[0]);
    const int64_t m = e[0].shape[e[0].ndim - 1];
    if (n->op == XCS_OP_SOLVE) { /* x = a^-1 b: gb = a^-T g, ga = -gb x^T */
        xcs_tensor *gb = SOLVE(c, SWAP_LAST(c, a), g);
        accumulate(c, &e[1], gb);
        accumulate(c, &e[0], U(c, XCS_OP_NEG, MATMUL(c, gb, SWAP_LAST(c, y))));
    } else if (n->op == XCS_OP_SLOGDET) { /* d log|det a| = a^-T, the sign's cotangent none */
        xcs_tensor *gl = NULL, *gl2 = NULL;
        if (!c->st) KEEP(c, xcs_index_axis(g, g->ndim - 1, 1, &gl), gl);
        int64_t s[XCS_MAX_DIMS];
        if (gl) {
            memcpy(s, gl->shape, (size_t)gl->ndim * sizeof *s);
            s[gl->ndim] = s[gl->ndim + 1] = 1;
            gl2 = RESHAPE(c, gl, gl->ndim + 2, s);
        }
        xcs_tensor *inv_t = SOLVE(c, SWAP_LAST(c, a), TRI(c, m, n->dtype, 0, 1, 0));
        accumulate(c, &e[0], B(c, XCS_OP_MUL, gl2, inv_t));
    } else if (n->op == XCS_OP_EIGH || n->op == XCS_OP_EIGVALSH) {
        /* of the lower triangle: S = V (diag(gw) + F o (V^T gV)) V^T; the values
         * alone: S = V diag(gw) V^T, V computed again (an EIGH of a) */
        xcs_tensor *full = y;
        if (n->op == XCS_OP_EIGVALSH && !c->st) KEEP(c, xcs_linalg(XCS_OP_EIGH, 1, (const xcs_tensor *const *)&a, &full), full);
        xcs_tensor *v = ROWS(c, full, 1, m + 1), *gw = n->op == XCS_OP_EIGH ? ROW(c, g, 0) : g;
        xcs_tensor *inner = B(c, XCS_OP_MUL, VEC2(c, gw, true), TRI(c, m, n->dtype, 0, 1, 0));
        if (n->op == XCS_OP_EIGH)
            inner = B(c, XCS_OP_ADD, inner, B(c, XCS_OP_MUL, GAPS(c, ROW(c, y, 0), m, n->dtype),
                                              MATMUL(c, SWAP_LAST(c, v), ROWS(c, g, 1, m + 1))));
        xcs_tensor *sm = MATMUL(c, MATMUL(c, v, inner), SWAP_LAST(c, v));
        accumulate(c, &e[0], B(c, XCS_OP_MUL, B(c, XCS_OP_ADD, sm, SWAP_LAST(c, sm)), TRI(c, m, n->dtype, 1, 0.5, 0)));
    } else if (n->op == XCS_OP_SVDVALS) { /* U diag(gs) V^T, U and V computed again (an SVD of a) */
        const int64_t rows = e[0].shape[e[0].ndim - 2], cols = e[0].shape[e[0].ndim - 1];
        xcs_tensor *full = NULL;
        if (!c->st) KEEP(c, xcs_linalg(XCS_OP_SVD, 1, (const xcs_tensor *const *)&a, &full), full);
        xcs_tensor *us = B(c, XCS_OP_MUL, ROWS(c, full, 0, rows), VEC2(c, g, true));
        accumulate(c, &e[0], MATMUL(c, us, SWAP_LAST(c, ROWS(c, full, rows + 1, rows + 1 + cols))));
    } else if (n->op == XCS_OP_SVD) { /* Townsend's: U [(F o (X - X^T)) S + diag(gs) + S (F o (Y - Y^T))] V^T
                                       * + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T),
                                       * X = U^T gU, Y = V^T gV, F_ij = 1 / (s_j^2 - s_i^2) */
        const int64_t rows = e[0].shape[e[0].ndim - 2], cols = e[0].shape[e[0].ndim - 1];
        const int64_t k = rows < cols ? rows : cols;
        xcs_tensor *u = ROWS(c, y, 0, rows), *sv = ROW(c, y, rows), *v = ROWS(c, y, rows + 1, rows + 1 + cols);
        xcs_tensor *gu = ROWS(c, g, 0, rows), *gs = ROW(c, g, rows), *gvv = ROWS(c, g, rows + 1, rows + 1 + cols);
        xcs_tensor *f = GAPS(c, B(c, XCS_OP_MUL, sv, sv), k, n->dtype), *eye = TRI(c, k, n->dtype, 0, 1, 0);
        xcs_tensor *x = MATMUL(c, SWAP_LAST(c, u), gu), *yy = MATMUL(c, SWAP_LAST(c, v), gvv);
        xcs_tensor *row_s = VEC2(c, sv, true), *col_s = VEC2(c, sv, false);
        xcs_tensor *core = B(c, XCS_OP_MUL, B(c, XCS_OP_MUL, f, B(c, XCS_OP_SUB, x, SWAP_LAST(c, x))), row_s);
        core = B(c, XCS_OP_ADD, core, B(c, XCS_OP_MUL, VEC2(c, gs, true), eye));
        xcs_tensor *fy = B(c, XCS_OP_MUL, f, B(c, XCS_OP_SUB, yy, SWAP_LAST(c, yy)));
        core = B(c, XCS_OP_ADD, core, B(c, XCS_OP_MUL, col_s, fy));
        xcs_tensor *ga = MATMUL(c, MATMUL(c, u, core), SWAP_LAST(c, v));
        xcs_tensor *pu = B(c, XCS_OP_DIV, B(c, XCS_OP_SUB, gu, MATMUL(c, u, x)), row_s);    /* (I - U U^T) gU S^-1 */
        xcs_tensor *pv = B(c, XCS_OP_DIV, B(c, XCS_OP_SUB, gvv, MATMUL(c, v, yy)), row_s);  /* (I - V V^T) gV S^-1 */
        ga = B(c, XCS_OP_ADD, ga, MATMUL(c, pu, SWAP_LAST(c, v)));
        ga = B(c, XCS_OP_ADD, ga, MATMUL(c, u, SWAP_LAST(c, pv)));
        accumulate(c, &e[0], ga);
    } else if (n->op == XCS_OP_QR) { /* packed q; r^T.  Wide a = [x | y]: r = [u | v], x = q u, v = q^T y */
        const int64_t rows = e[0].shape[e[0].ndim - 2], cols = e[0].shape[e[0].ndim - 1];
        const int64_t k = rows < cols ? rows : cols;
        xcs_tensor *q = ROWS(c, y, 0, rows), *r = SWAP_LAST(c, ROWS(c, y, rows, rows + cols));
        xcs_tensor *gq = ROWS(c, g, 0, rows), *gr = SWAP_LAST(c, ROWS(c, g, rows, rows + cols));
        if (rows >= cols) {
            accumulate(c, &e[0], qr_square_ct(c, q, r, gq, gr, k, n->dtype));
        } else {
            xcs_tensor *a = edge_tensor(c, &e[0]), *yv = COLS(c, a, rows, cols);
            xcs_tensor *u = COLS(c, r, 0, rows), *gu = COLS(c, gr, 0, rows), *gv = COLS(c, gr, rows, cols);
            xcs_tensor *gx = qr_square_ct(c, q, u, B(c, XCS_OP_ADD, gq, MATMUL(c, yv, SWAP_LAST(c, gv))), gu, k,
                                          n->dtype);
            xcs_tensor *parts[2] = {gx, MATMUL(c, q, gv)}, *ga = NULL;
            if (!c->st && gx && parts[1])
                KEEP(c, xcs_concat(2, (const xcs_tensor *const *)parts, -1, &ga), ga);
            accumulate(c, &e[0], ga);
        }
    } else { /* cholesky, of a's lower triangle: S = L^-T phi(L^T tril(g)) L^-1; ga = phi(S + S^T) */
        xcs_tensor *phi = TRI(c, m, n->dtype, 1, 0.5, 0), *low = TRI(c, m, n->dtype, 1, 1, 0);
        xcs_tensor *p = B(c, XCS_OP_MUL, MATMUL(c, SWAP_LAST(c, y), B(c, XCS_OP_MUL, g, low)), phi);
        xcs_tensor *lt = SWAP_LAST(c, y), *yv = SOLVE(c, lt, p);   /* L^-T P */
        xcs_tensor *st_ = SOLVE(c, lt, SWAP_LAST(c, yv));          /* L^-T (L^-T P)^T = S^T */
        accumulate(c, &e[0], B(c, XCS_OP_MUL, B(c, XCS_OP_ADD, st_, SWAP_LAST(c, st_)), phi));
    }
}

/* The cotangent of node i's inputs, accumulated onto their sources. */
static void node_rule(ad *c, int32_t i) {
    if (c->g->nodes[i].op == XCS_OP_SCAN) {
        scan_rule(c, i);
        return;
    }
    xcs_node n = c->g->nodes[i]; /* a copy: the rules append nodes (realloc) */
    xcs_tensor *g = cotangent(c, i);
    if (!g || n.op == XCS_NODE_INPUT || n.op == XCS_NODE_CONST || !xcs_dtype_is_float(n.dtype)) return;
    xcs_edge e[3];
    int nin = n.n_in < 3 ? n.n_in : 3;
    memcpy(e, &c->g->edges[n.first_edge], (size_t)nin * sizeof *e);
    const xcs_op_info *info = xcs_op_get_info(n.op);
    switch (info->kind) {
    case XCS_KIND_UNARY:
        accumulate(c, &e[0], unary_rule(c, n.op, edge_tensor(c, &e[0]), node_tensor(c, i), g));
        break;
    case XCS_KIND_BINARY: {
        xcs_tensor *ga, *gb;
        binary_rule(c, n.op, edge_tensor(c, &e[0]), edge_tensor(c, &e[1]), node_tensor(c, i), g, &ga, &gb);
        accumulate(c, &e[0], ga);
        accumulate(c, &e[1], gb);
        break;
    }
    case XCS_KIND_TERNARY: {
        xcs_tensor *cond = edge_tensor(c, &e[0]), *z = K(c, 0);
        accumulate(c, &e[1], W(c, cond, g, z));
        accumulate(c, &e[2], W(c, cond, z, g));
        break;
    }
    case XCS_KIND_CAST: case XCS_KIND_COPY:
        accumulate(c, &e[0], g);
        break;
    case XCS_KIND_REDUCE: {
        xcs_tensor *a = edge_tensor(c, &e[0]);
        if (n.op == XCS_OP_SUM) {
            accumulate(c, &e[0], BCAST(c, g, e[0].ndim, e[0].shape));
        } else if (n.op == XCS_OP_PROD) {
            xcs_tensor *gy = BCAST(c, B(c, XCS_OP_MUL, g, node_tensor(c, i)), e[0].ndim, e[0].shape);
            accumulate(c, &e[0], B(c, XCS_OP_DIV, gy, a));
        } else { /* max / min: split between ties */
            xcs_tensor *y = BCAST(c, node_tensor(c, i), e[0].ndim, e[0].shape);
            xcs_tensor *hit = B(c, XCS_OP_EQ, a, y);
            xcs_tensor *cnt = SUM(c, W(c, hit, K(c, 1), K(c, 0)), n.axes);
            xcs_tensor *share = BCAST(c, B(c, XCS_OP_DIV, g, cnt), e[0].ndim, e[0].shape);
            accumulate(c, &e[0], W(c, hit, share, K(c, 0)));
        }
        break;
    }
    case XCS_KIND_MATMUL: {
        xcs_tensor *a = edge_tensor(c, &e[0]), *b = edge_tensor(c, &e[1]);
        accumulate(c, &e[0], MATMUL(c, g, SWAP_LAST(c, b)));
        accumulate(c, &e[1], MATMUL(c, SWAP_LAST(c, a), g));
        break;
    }
    case XCS_KIND_TAKE: { /* scatter-add back along the axis, at the wrapped indices */
        const xcs_edge *ex = &e[0];
        int64_t A = ex->shape[n.axis];
        xcs_tensor *i64 = CAST(c, edge_tensor(c, &e[1]), XCS_I64);
        xcs_tensor *iw = W(c, B(c, XCS_OP_LT, i64, KI(c, 0)), B(c, XCS_OP_ADD, i64, KI(c, A)), i64);
        xcs_tensor *out = NULL;
        if (!c->st) KEEP(c, xcs_scatter_add_axis(iw, g, n.axis, A, &out), out);
        accumulate(c, ex, out);
        break;
    }
    case XCS_KIND_CONCAT: {
        int64_t at = 0;
        for (int k = 0; k < n.n_in && !c->st; k++) {
            xcs_edge ek = c->g->edges[n.first_edge + k];
            xcs_slice sl = {.start = at, .stop = at + ek.shape[n.axis], .step = 1, .has_start = true, .has_stop = true};
            xcs_tensor *part = NULL;
            KEEP(c, xcs_slice_axis(g, n.axis, sl, &part), part);
            accumulate(c, &ek, part);
            at += ek.shape[n.axis];
        }
        break;
    }
    case XCS_KIND_COLLECTIVE: { /* every example's x feeds every example's y */
        if (n.op == XCS_OP_AXIS_INDEX) break; /* an integer: no inputs */
        xcs_tensor *tot = NULL; /* psum of the cotangent */
        if (g->graph) {
            if (!c->st) KEEP(c, xcs_collective_on(XCS_OP_PSUM, g, n.axis, n.aux, &tot), tot);
        } else { /* a cotangent shared by every example: psum is a product by the axis size */
            tot = B(c, XCS_OP_MUL, g, KI(c, n.axis));
        }
        if (n.op == XCS_OP_ALL_GATHER) { /* example j's x is row j of every example's y */
            xcs_tensor *me = NULL, *row = NULL;
            if (!c->st) KEEP(c, xcs_collective_on(XCS_OP_AXIS_INDEX, edge_tensor(c, &e[0]), n.axis, n.aux, &me), me);
            if (!c->st) KEEP(c, xcs_take(tot, me, 0, &row), row);
            tot = row;
        } else if (n.op == XCS_OP_PMAX) { /* to the examples that hold the max, split between ties */
            xcs_tensor *x = edge_tensor(c, &e[0]);
            xcs_tensor *hit = B(c, XCS_OP_EQ, x, node_tensor(c, i)), *cnt = NULL;
            xcs_tensor *one = W(c, hit, K(c, 1), K(c, 0));
            if (!c->st) KEEP(c, xcs_collective_on(XCS_OP_PSUM, CAST(c, one, n.dtype), n.axis, n.aux, &cnt), cnt);
            tot = W(c, hit, B(c, XCS_OP_DIV, tot, cnt), K(c, 0));
        }
        accumulate(c, &e[0], tot);
        break;
    }
    case XCS_KIND_LINALG:
        linalg_rule(c, &n, e, node_tensor(c, i), g);
        break;
    case XCS_KIND_CUMULATIVE: { /* the running sum of g from the end: reversed, summed, reversed back */
        const xcs_slice rev = {.step = -1};
        xcs_tensor *gr = NULL, *cs = NULL, *back = NULL;
        if (!c->st) KEEP(c, xcs_slice_axis(g, n.axis, rev, &gr), gr);
        if (!c->st) KEEP(c, xcs_cumsum(gr, n.axis, &cs), cs);
        if (!c->st) KEEP(c, xcs_slice_axis(cs, n.axis, rev, &back), back);
        accumulate(c, &e[0], back);
        break;
    }
    case XCS_KIND_SORT: { /* sort: each value's cotangent back to where it came from, by the argsort */
        if (n.op != XCS_OP_SORT) break;
        xcs_tensor *idx = NULL, *back = NULL;
        if (!c->st) KEEP(c, xcs_argsort(edge_tensor(c, &e[0]), n.axis, &idx), idx);
        if (!c->st) KEEP(c, xcs_scatter_add_along_axis(idx, g, n.axis, e[0].shape[n.axis], &back), back);
        accumulate(c, &e[0], back);
        break;
    }
    case XCS_KIND_SCATTER: { /* d src = the take of the cotangent along the axis */
        xcs_tensor *out = NULL;
        if (!c->st) KEEP(c, xcs_take(g, edge_tensor(c, &e[0]), n.axis, &out), out);
        accumulate(c, &e[1], out);
        break;
    }
    default: break; /* argmax/argmin, creation ops: no inputs to differentiate */
    }
}

xcs_status xcs_graph_vjp(xcs_graph *g, const xcs_tensor *y, const xcs_tensor *seed, int n, const xcs_tensor *const *wrt,
                         xcs_tensor **grads) {
    if (y->graph != g) return xcs_error(XCS_ERR_VALUE, "grad: the output is not a traced value of this graph");
    if (!xcs_dtype_is_float(y->dtype))
        return xcs_error(XCS_ERR_TYPE, "grad: the function must return a float value, got dtype %s", xcs_dtype_name(y->dtype));
    for (int k = 0; k < n; k++) {
        const xcs_tensor *w = wrt[k];
        xcs_edge ew = {.node = w->node, .ndim = w->ndim, .offset = w->offset};
        memcpy(ew.shape, w->shape, sizeof ew.shape);
        memcpy(ew.strides, w->strides, sizeof ew.strides);
        if (w->graph != g || w->node < 0 || w->node >= g->n_nodes || !xcs_edge_is_identity(g, &ew))
            return xcs_error(XCS_ERR_VALUE, "grad: argument %d is not a whole traced value of this graph", k);
    }
    ad c = {.g = g, .n_nodes = g->n_nodes};
    c.ct = calloc((size_t)c.n_nodes + 1, sizeof *c.ct);
    c.last_piece = malloc(((size_t)c.n_nodes + 1) * sizeof *c.last_piece);
    if (!c.ct || !c.last_piece) {
        free(c.ct);
        free(c.last_piece);
        return xcs_error(XCS_ERR_MEMORY, "out of memory building a gradient");
    }
    for (int i = 0; i < c.n_nodes; i++) c.last_piece[i] = -1;
    /* seed the output node through y's own view */
    xcs_tensor *one = NULL;
    if (seed) one = (xcs_tensor *)seed;
    else if (!c.st) KEEP(&c, xcs_full(y->dtype, y->ndim, y->shape, 1.0, &one), one);
    if (!c.st) {
        xcs_tensor *s = CAST(&c, one, y->dtype);
        xcs_edge ey = {.node = y->node, .ndim = y->ndim, .offset = y->offset};
        memcpy(ey.shape, y->shape, sizeof ey.shape);
        memcpy(ey.strides, y->strides, sizeof ey.strides);
        accumulate(&c, &ey, s);
    }
    for (int32_t i = y->node; i >= 0 && !c.st; i--) node_rule(&c, i);
    for (int k = 0; k < n && !c.st; k++) {
        const xcs_tensor *w = wrt[k];
        xcs_tensor *node_ct = cotangent(&c, w->node), *gk = NULL;
        if (!node_ct) /* no path from this argument to the output: zeros */
            KEEP(&c, xcs_full(w->dtype, w->ndim, w->shape, 0.0, &gk), gk);
        else /* an argument tracer is its node's whole value */
            KEEP(&c, xcs_reshape(node_ct, w->ndim, w->shape, &gk), gk);
        if (!c.st) c.st = xcs_tensor_view(gk, &grads[k]);
        if (c.st)
            for (int j = 0; j < k; j++) { xcs_tensor_free(grads[j]); grads[j] = NULL; }
    }
    for (int i = 0; i < c.n_tmp; i++) xcs_tensor_free(c.tmp[i]);
    free(c.tmp);
    free(c.ct);
    free(c.last_piece);
    free(c.pieces);
    return c.st;
}
