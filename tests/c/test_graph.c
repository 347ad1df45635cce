/* test_graph.c — tracing ops into a graph, the passes, and replay: a traced
 * program run by xcs_graph_run equals the same program run eagerly. */
#include "check.h"
#include "trace.h" /* xcs_graph_clone */
#include "xcs_host.h"

#include <math.h>
#include <stdlib.h>

static uint64_t seed = 0x51ED2701u;
static double rnd(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(seed >> 11) * 0x1p-53 * 2.0 - 1.0;
}

static xcs_tensor *random_f32(int ndim, const int64_t *shape) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F32, ndim, shape, &t)) return NULL;
    float *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) p[i] = (float)rnd();
    return t;
}

/* The program under test, written once and run on concrete or traced x, w:
 * softmax(tanh(x @ w) + 1) over rows, plus a reduction, an arg-reduction, a
 * transposed reshape (forces a copy node) and a take. */
static xcs_status program(const xcs_tensor *x, const xcs_tensor *w, xcs_tensor **outs) {
    xcs_tensor *mm = NULL, *th = NULL, *one = NULL, *sh = NULL, *sm = NULL, *t = NULL, *r = NULL, *idx = NULL;
    xcs_status st;
    if ((st = xcs_matmul(x, w, &mm))) goto done;
    if ((st = xcs_unary(XCS_OP_TANH, mm, &th))) goto done;
    if ((st = xcs_tensor_scalar(XCS_F64, 1.0, &one))) goto done;
    one->flags |= XCS_TENSOR_WEAK;
    if ((st = xcs_binary(XCS_OP_ADD, th, one, &sh))) goto done;
    if ((st = xcs_softmax(sh, -1, &outs[0]))) goto done;
    if ((st = xcs_reduce(XCS_OP_SUM, sh, 2u, false, &outs[1]))) goto done; /* over axis 1 */
    if ((st = xcs_argreduce(XCS_OP_ARGMAX, sh, 1, false, &outs[2]))) goto done;
    if ((st = xcs_transpose(x, &t))) goto done;
    int64_t flat = -1;
    if ((st = xcs_reshape(t, 1, &flat, &r))) goto done;
    if ((st = xcs_arange(0, 5, 1, XCS_I64, &idx))) goto done;
    st = xcs_take(r, idx, 0, &outs[3]);
done:
    xcs_tensor_free(mm); xcs_tensor_free(th); xcs_tensor_free(one); xcs_tensor_free(sh);
    xcs_tensor_free(sm); xcs_tensor_free(t); xcs_tensor_free(r); xcs_tensor_free(idx);
    return st;
}

static void test_replay_equals_eager(void) {
    const int64_t xs[2] = {6, 8}, ws[2] = {8, 5};
    xcs_graph *g = NULL;
    xcs_tensor *tx = NULL, *tw = NULL, *touts[4] = {0}, *eouts[4] = {0}, *routs[4] = {0};
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, xs, &tx));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, ws, &tw));
    CHECK_OK(program(tx, tw, touts));
    CHECK(xcs_tensor_is_traced(touts[0]));
    CHECK_SHAPE(touts[1], 1, 6);          /* shapes are known while tracing */
    CHECK(touts[2] && touts[2]->dtype == XCS_I64);
    for (int i = 0; i < 4; i++) CHECK_OK(xcs_graph_output(g, touts[i]));
    int before = xcs_graph_num_nodes(g);
    CHECK_OK(xcs_graph_optimize(g));
    CHECK(xcs_graph_num_nodes(g) <= before);
    for (int trial = 0; trial < 3; trial++) { /* fresh inputs each time: no stale values */
        xcs_tensor *x = random_f32(2, xs), *w = random_f32(2, ws);
        const xcs_tensor *in[2] = {x, w};
        CHECK_OK(program(x, w, eouts));
        CHECK_OK(xcs_graph_run(g, 2, in, routs));
        for (int o = 0; o < 4; o++) {
            CHECK(routs[o] && eouts[o] && routs[o]->ndim == eouts[o]->ndim && routs[o]->dtype == eouts[o]->dtype);
            /* fused sums may round differently from eager ones: f32 tolerance */
            for (int64_t i = 0; routs[o] && eouts[o] && i < xcs_tensor_numel(eouts[o]); i++) {
                double want = xcs_tensor_get_f64(eouts[o], i);
                CHECK_NEAR(xcs_tensor_get_f64(routs[o], i), want, 2e-6 * (1 + fabs(want)));
            }
            xcs_tensor_free(routs[o]); xcs_tensor_free(eouts[o]);
            routs[o] = eouts[o] = NULL;
        }
        xcs_tensor_free(x); xcs_tensor_free(w);
    }
    /* a call with another shape is refused with both signatures named */
    xcs_tensor *bad = random_f32(2, ws), *w = random_f32(2, ws);
    const xcs_tensor *in[2] = {bad, w};
    CHECK_ERR(xcs_graph_run(g, 2, in, routs), XCS_ERR_SHAPE, "float32(6, 8)");
    xcs_tensor_free(bad); xcs_tensor_free(w);
    for (int i = 0; i < 4; i++) xcs_tensor_free(touts[i]);
    xcs_tensor_free(tx); xcs_tensor_free(tw);
    xcs_graph_free(g);
}

static void test_cse_dce_hash(void) {
    const int64_t s[1] = {16};
    xcs_graph *g = NULL, *g2 = NULL;
    xcs_tensor *x = NULL, *a = NULL, *b = NULL, *c = NULL, *dead = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, s, &x));
    CHECK_OK(xcs_unary(XCS_OP_EXP, x, &a));
    CHECK_OK(xcs_unary(XCS_OP_EXP, x, &b));      /* same as a */
    CHECK_OK(xcs_unary(XCS_OP_SIN, x, &dead));   /* never used */
    CHECK_OK(xcs_binary(XCS_OP_ADD, a, b, &c));
    CHECK_OK(xcs_graph_output(g, c));
    CHECK_EQ_I(xcs_graph_num_nodes(g), 5);
    CHECK_OK(xcs_graph_optimize(g));
    CHECK_EQ_I(xcs_graph_num_nodes(g), 3);       /* input, exp, add */
    char dump[1024];
    xcs_graph_dump(g, dump, sizeof dump);
    CHECK(strstr(dump, "exp(%0)") && strstr(dump, "add(%1, %1)") && !strstr(dump, "sin"));
    uint64_t h = xcs_graph_hash(g);
    xcs_tensor_free(x); xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(c); xcs_tensor_free(dead);
    /* the same program traced again hashes the same; another shape does not */
    for (int pass = 0; pass < 2; pass++) {
        const int64_t s2[1] = {pass ? 17 : 16};
        CHECK_OK(xcs_graph_new(&g2));
        CHECK_OK(xcs_graph_input(g2, XCS_F32, 1, s2, &x));
        CHECK_OK(xcs_unary(XCS_OP_EXP, x, &a));
        CHECK_OK(xcs_binary(XCS_OP_ADD, a, a, &c));
        CHECK_OK(xcs_graph_output(g2, c));
        CHECK_OK(xcs_graph_optimize(g2));
        CHECK(pass ? xcs_graph_hash(g2) != h : xcs_graph_hash(g2) == h);
        xcs_tensor_free(x); xcs_tensor_free(a); xcs_tensor_free(c);
        xcs_graph_free(g2);
    }
    xcs_graph_free(g);
}

/* DCE renumbers the live constants by their nodes, whatever slots they
 * held: here an unread input turned constant (node 1, the last slot) comes
 * before a dead constant (slot 0) and a live one (slot 1).  Moving slots in
 * place once gave node 1 the freed slot 0 (a scan's VJP crashed on it). */
static void test_dce_constant_slots(void) {
    const int64_t s[1] = {4};
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *y = NULL, *a = NULL, *b = NULL, *dead = NULL, *xb = NULL, *z = NULL, *in[2] = {NULL, NULL},
               *out = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 1, s, &x));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 0, NULL, &y));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 5, &a));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 3, &b));
    CHECK_OK(xcs_binary(XCS_OP_MUL, x, a, &dead)); /* constant slot 0, read by nothing kept */
    CHECK_OK(xcs_binary(XCS_OP_MUL, x, b, &xb));   /* slot 1 */
    CHECK_OK(xcs_binary(XCS_OP_ADD, xb, y, &z));
    CHECK_OK(xcs_graph_output(g, z));
    CHECK_OK(xcs_graph_unread_input(g, y->node)); /* y: a zero in slot 2 */
    CHECK_OK(xcs_graph_optimize(g));
    CHECK_OK(xcs_full(XCS_F64, 1, s, 2, &in[0]));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 100, &in[1])); /* unread */
    CHECK_OK(xcs_graph_run(g, 2, (const xcs_tensor *const *)in, &out));
    for (int i = 0; out && i < 4; i++) CHECK(xcs_tensor_get_f64(out, i) == 6.0);
    xcs_tensor *all[] = {x, y, a, b, dead, xb, z, in[0], in[1], out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xcs_tensor_free(all[i]);
    xcs_graph_free(g);
}

static void test_constants_and_errors(void) {
    const int64_t s[2] = {1000, 1000};
    xcs_graph *g = NULL, *h = NULL;
    xcs_tensor *x = NULL, *y = NULL, *k = NULL, *z = NULL, *bad = NULL;
    xcs_alloc_stats before, after;
    xcs_alloc_stats_get(&before);
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, s, &x));
    CHECK_OK(xcs_tensor_scalar(XCS_F32, 2.0, &k));
    xcs_tensor *kb = NULL;
    CHECK_OK(xcs_broadcast_to(k, 2, s, &kb));    /* a broadcast constant stays one element */
    CHECK_OK(xcs_binary(XCS_OP_MUL, x, kb, &y));
    xcs_alloc_stats_get(&after);
    CHECK(after.live_bytes - before.live_bytes < 1024);
    CHECK(!xcs_tensor_is_traced(k));
    /* values of two traces never mix */
    CHECK_OK(xcs_graph_new(&h));
    CHECK_OK(xcs_graph_input(h, XCS_F32, 2, s, &z));
    CHECK_ERR(xcs_binary(XCS_OP_ADD, y, z, &bad), XCS_ERR_VALUE, "different traces");
    /* integer take indices traced: bounds are checked when the graph runs */
    CHECK_ERR(xcs_take(y, y, 0, &bad), XCS_ERR_TYPE, "integers");
    xcs_tensor_free(x); xcs_tensor_free(y); xcs_tensor_free(k); xcs_tensor_free(kb); xcs_tensor_free(z);
    xcs_graph_free(g);
    xcs_graph_free(h);
    xcs_alloc_stats_get(&after);
    CHECK_EQ_I(after.live_buffers, before.live_buffers);
}

/* An 8-op elementwise chain becomes one fused group whose run allocates
 * nothing but its output. */
static void test_chain_fuses_without_intermediates(void) {
    const int64_t s[1] = {100000};
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *v[9] = {0}, *two = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, s, &x));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 2.0, &two));
    two->flags |= XCS_TENSOR_WEAK;
    const xcs_op chain[8] = {XCS_OP_MUL, XCS_OP_TANH, XCS_OP_ADD, XCS_OP_EXP,
                             XCS_OP_SUB, XCS_OP_SIGMOID, XCS_OP_MAXIMUM, XCS_OP_SQRT};
    v[0] = x;
    for (int i = 0; i < 8; i++) {
        if (xcs_op_get_info(chain[i])->kind == XCS_KIND_UNARY) CHECK_OK(xcs_unary(chain[i], v[i], &v[i + 1]));
        else CHECK_OK(xcs_binary(chain[i], v[i], i % 4 == 0 ? two : x, &v[i + 1]));
    }
    CHECK_OK(xcs_graph_output(g, v[8]));
    CHECK_OK(xcs_graph_optimize(g));
    CHECK_EQ_I(xcs_graph_num_groups(g), 1);
    CHECK_EQ_I(xcs_graph_num_steps(g), 1);
    xcs_tensor *in = random_f32(1, s), *out = NULL, *e[9] = {0};
    const xcs_tensor *ins[1] = {in};
    xcs_alloc_stats a0, a1;
    xcs_alloc_stats_get(&a0);
    CHECK_OK(xcs_graph_run(g, 1, ins, &out));
    xcs_alloc_stats_get(&a1);
    CHECK_EQ_I(a1.total_buffers - a0.total_buffers, 1); /* the output, nothing else */
    e[0] = in;
    for (int i = 0; i < 8; i++) {
        if (xcs_op_get_info(chain[i])->kind == XCS_KIND_UNARY) CHECK_OK(xcs_unary(chain[i], e[i], &e[i + 1]));
        else CHECK_OK(xcs_binary(chain[i], e[i], i % 4 == 0 ? two : in, &e[i + 1]));
    }
    for (int64_t i = 0; out && e[8] && i < s[0]; i += 997)
        CHECK_NEAR(xcs_tensor_get_f64(out, i), xcs_tensor_get_f64(e[8], i), 0);
    for (int i = 1; i < 9; i++) { xcs_tensor_free(v[i]); xcs_tensor_free(e[i]); }
    xcs_tensor_free(x); xcs_tensor_free(two); xcs_tensor_free(in); xcs_tensor_free(out);
    xcs_graph_free(g);
}

/* A matmul and its epilogue (bias, activation, scale) are one step that
 * allocates only its output (the product is computed in place); with the
 * product also returned, two.  Batched with a broadcast bias too.  Results
 * are bit-identical to the eager ops (same GEMM, same kernels). */
static void test_matmul_epilogue(void) {
    const int64_t cases[3][4] = {{1, 300, 200, 150}, {3, 50, 40, 30}, {1, 1, 1, 1}};
    for (int c = 0; c < 3; c++) {
        int64_t B = cases[c][0], M = cases[c][1], K = cases[c][2], N = cases[c][3];
        int nd = B > 1 ? 3 : 2;
        const int64_t xs[3] = {B, M, K}, ws[2] = {K, N}, bs[2] = {M, 1};
        const int64_t *xshape = nd == 3 ? xs : xs + 1;
        xcs_graph *g = NULL;
        xcs_tensor *x = NULL, *w = NULL, *b = NULL, *half = NULL;
        CHECK_OK(xcs_graph_new(&g));
        CHECK_OK(xcs_graph_input(g, XCS_F32, nd, xshape, &x));
        CHECK_OK(xcs_graph_input(g, XCS_F32, 2, ws, &w));
        CHECK_OK(xcs_graph_input(g, XCS_F32, nd == 3 ? 2 : 1, nd == 3 ? bs : ws + 1, &b));
        CHECK_OK(xcs_tensor_scalar(XCS_F64, 0.5, &half));
        half->flags |= XCS_TENSOR_WEAK;
        /* out0 = tanh(x @ w + b) * 0.5; out1 = x @ w (only in the second run) */
        xcs_tensor *t[4] = {0};
        CHECK_OK(xcs_matmul(x, w, &t[0]));
        CHECK_OK(xcs_binary(XCS_OP_ADD, t[0], b, &t[1]));
        CHECK_OK(xcs_unary(XCS_OP_TANH, t[1], &t[2]));
        CHECK_OK(xcs_binary(XCS_OP_MUL, t[2], half, &t[3]));
        CHECK_OK(xcs_graph_output(g, t[3]));
        CHECK_OK(xcs_graph_optimize(g));
        CHECK_EQ_I(xcs_graph_num_steps(g), 1);
        CHECK_EQ_I(xcs_graph_num_groups(g), 1);
        xcs_tensor *xi = random_f32(nd, xshape), *wi = random_f32(2, ws);
        xcs_tensor *bi = random_f32(nd == 3 ? 2 : 1, nd == 3 ? bs : ws + 1);
        const xcs_tensor *ins[3] = {xi, wi, bi};
        xcs_tensor *out[2] = {0};
        xcs_alloc_stats a0, a1;
        xcs_alloc_stats_get(&a0);
        CHECK_OK(xcs_graph_run(g, 3, ins, out));
        xcs_alloc_stats_get(&a1);
        CHECK_EQ_I(a1.total_buffers - a0.total_buffers, 1);
        /* eager reference */
        xcs_tensor *e[4] = {0};
        CHECK_OK(xcs_matmul(xi, wi, &e[0]));
        CHECK_OK(xcs_binary(XCS_OP_ADD, e[0], bi, &e[1]));
        CHECK_OK(xcs_unary(XCS_OP_TANH, e[1], &e[2]));
        CHECK_OK(xcs_binary(XCS_OP_MUL, e[2], half, &e[3]));
        for (int64_t i = 0; out[0] && i < xcs_tensor_numel(e[3]); i += 7)
            CHECK_NEAR(xcs_tensor_get_f64(out[0], i), xcs_tensor_get_f64(e[3], i), 0);
        xcs_tensor_free(out[0]);
        out[0] = NULL;
        /* the product leaves the group as well: its own buffer, two allocations */
        xcs_graph *g2 = NULL;
        xcs_tensor *x2 = NULL, *w2 = NULL, *b2 = NULL, *u[4] = {0};
        CHECK_OK(xcs_graph_new(&g2));
        CHECK_OK(xcs_graph_input(g2, XCS_F32, nd, xshape, &x2));
        CHECK_OK(xcs_graph_input(g2, XCS_F32, 2, ws, &w2));
        CHECK_OK(xcs_graph_input(g2, XCS_F32, nd == 3 ? 2 : 1, nd == 3 ? bs : ws + 1, &b2));
        CHECK_OK(xcs_matmul(x2, w2, &u[0]));
        CHECK_OK(xcs_binary(XCS_OP_ADD, u[0], b2, &u[1]));
        CHECK_OK(xcs_unary(XCS_OP_TANH, u[1], &u[2]));
        CHECK_OK(xcs_graph_output(g2, u[2]));
        CHECK_OK(xcs_graph_output(g2, u[0]));
        CHECK_OK(xcs_graph_optimize(g2));
        CHECK_EQ_I(xcs_graph_num_steps(g2), 1);
        xcs_alloc_stats_get(&a0);
        CHECK_OK(xcs_graph_run(g2, 3, ins, out));
        xcs_alloc_stats_get(&a1);
        CHECK_EQ_I(a1.total_buffers - a0.total_buffers, 2);
        for (int64_t i = 0; out[0] && out[1] && i < xcs_tensor_numel(e[2]); i += 7) {
            CHECK_NEAR(xcs_tensor_get_f64(out[0], i), xcs_tensor_get_f64(e[2], i), 0);
            CHECK_NEAR(xcs_tensor_get_f64(out[1], i), xcs_tensor_get_f64(e[0], i), 0);
        }
        for (int i = 0; i < 4; i++) { xcs_tensor_free(t[i]); xcs_tensor_free(e[i]); xcs_tensor_free(u[i]); }
        xcs_tensor_free(out[0]); xcs_tensor_free(out[1]);
        xcs_tensor_free(x); xcs_tensor_free(w); xcs_tensor_free(b); xcs_tensor_free(half);
        xcs_tensor_free(x2); xcs_tensor_free(w2); xcs_tensor_free(b2);
        xcs_tensor_free(xi); xcs_tensor_free(wi); xcs_tensor_free(bi);
        xcs_graph_free(g);
        xcs_graph_free(g2);
    }
}

/* x*1 and x-0 vanish; ops on concrete values are constants already. */
static void test_fold_and_identities(void) {
    const int64_t s[1] = {8};
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *one = NULL, *zero = NULL, *a = NULL, *b = NULL, *c3 = NULL, *c4 = NULL, *y = NULL, *z = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, s, &x));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 1.0, &one));
    one->flags |= XCS_TENSOR_WEAK;
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 0.0, &zero));
    zero->flags |= XCS_TENSOR_WEAK;
    CHECK_OK(xcs_binary(XCS_OP_MUL, x, one, &a));
    CHECK_OK(xcs_binary(XCS_OP_SUB, a, zero, &b));
    CHECK_OK(xcs_full(XCS_F32, 1, s, 3.0, &c3));
    CHECK_OK(xcs_unary(XCS_OP_EXP, c3, &c4)); /* concrete: computed eagerly, a constant */
    CHECK_OK(xcs_binary(XCS_OP_ADD, b, c4, &y));
    CHECK_OK(xcs_graph_output(g, y));
    CHECK_OK(xcs_graph_optimize(g));
    char dump[2048];
    xcs_graph_dump(g, dump, sizeof dump);
    CHECK(!strstr(dump, "multiply") && !strstr(dump, "subtract") && strstr(dump, "add(%0"));
    xcs_tensor *in = random_f32(1, s);
    const xcs_tensor *ins[1] = {in};
    CHECK_OK(xcs_graph_run(g, 1, ins, &z));
    for (int64_t i = 0; z && i < 8; i++)
        CHECK_NEAR(xcs_tensor_get_f64(z, i), (float)(xcs_tensor_get_f64(in, i) + (float)exp(3.0)), 1e-5);
    xcs_tensor_free(x); xcs_tensor_free(one); xcs_tensor_free(zero); xcs_tensor_free(a); xcs_tensor_free(b);
    xcs_tensor_free(c3); xcs_tensor_free(c4); xcs_tensor_free(y); xcs_tensor_free(z); xcs_tensor_free(in);
    xcs_graph_free(g);
}

/* Largest |a - b| over two concrete tensors of the same shape (as f64). */
static double max_diff(const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *ca = NULL, *cb = NULL;
    double m = -1;
    if (!xcs_cast(a, XCS_F64, &ca) && !xcs_cast(b, XCS_F64, &cb) && xcs_tensor_numel(ca) == xcs_tensor_numel(cb)) {
        xcs_tensor *pa = NULL, *pb = NULL;
        if (!xcs_contiguous(ca, &pa) && !xcs_contiguous(cb, &pb)) {
            const double *x = xcs_tensor_data(pa), *y = xcs_tensor_data(pb);
            m = 0;
            for (int64_t i = 0; i < xcs_tensor_numel(pa); i++) m = fmax(m, fabs(x[i] - y[i]));
        }
        xcs_tensor_free(pa); xcs_tensor_free(pb);
    }
    xcs_tensor_free(ca); xcs_tensor_free(cb);
    return m;
}

/* vmap's examples of an orchestration body: K lazy graphs recording the same
 * program on their own x and a shared w run as one batched program, values
 * equal to the eager program's; an example with another program (x of
 * another shape) is computed on its own.  The tensors stay traced, reading
 * constants afterwards. */
static void test_lazy_batch(void) {
    enum { K = 5 };
    const int64_t ws[2] = {8, 5};
    xcs_tensor *w = random_f32(2, ws), *x[K] = {0}, *touts[K][4] = {{0}}, *eouts[K][4] = {{0}};
    xcs_graph *g[K] = {0};
    uint64_t key[K];
    for (int k = 0; k < K; k++) {
        const int64_t xs[2] = {k == K - 1 ? 7 : 6, 8};
        xcs_tensor *cx = NULL, *cw = NULL;
        x[k] = random_f32(2, xs);
        CHECK_OK(xcs_graph_new(&g[k]));
        CHECK_OK(xcs_graph_const(g[k], x[k], &cx));
        CHECK_OK(xcs_graph_const(g[k], w, &cw));
        CHECK_OK(program(cx, cw, touts[k]));
        CHECK_OK(program(x[k], w, eouts[k]));
        xcs_lazy_cost cost;
        key[k] = xcs_lazy_key(g[k], 4, (const xcs_tensor *const *)touts[k], &cost);
        /* x, w, the f64 1.0 and the take's int64 positions 0..4 */
        CHECK(cost.ops == 12 && cost.bytes == xs[0] * 8 * 4 + 8 * 5 * 4 + 8 + 5 * 8);
        xcs_tensor_free(cx); xcs_tensor_free(cw);
    }
    for (int k = 1; k < K - 1; k++) CHECK(key[k] == key[0] && key[k] != 0);
    CHECK(key[K - 1] != key[0]);
    const int n[K] = {4, 4, 4, 4, 4};
    xcs_tensor *const *ts[K];
    for (int k = 0; k < K; k++) ts[k] = touts[k];
    int batched = -1;
    CHECK_OK(xcs_lazy_concretize_batch(K, g, n, ts, XCS_DEVICE_CPU, 0, &batched));
    CHECK_EQ_I(batched, K - 1);
    CHECK(xcs_lazy_key(g[0], 4, (const xcs_tensor *const *)touts[0], NULL) == 0); /* nothing left to compute */
    for (int k = 0; k < K; k++)
        for (int j = 0; j < 4; j++) {
            CHECK(xcs_tensor_is_traced(touts[k][j]));
            xcs_tensor *v = NULL;
            CHECK_OK(xcs_graph_lazy_value(g[k], touts[k][j], XCS_DEVICE_CPU, 0, &v));
            CHECK(xcs_tensor_is_traced(touts[k][j]));
            double d = max_diff(v, eouts[k][j]);
            CHECK(d >= 0 && d <= (j >= 2 ? 0.0 : 1e-5)); /* argmax and take are exact */
            CHECK_OK(xcs_graph_concretize(g[k], touts[k][j]));
            CHECK(!xcs_tensor_is_traced(touts[k][j]) && max_diff(touts[k][j], v) == 0.0);
            xcs_tensor_free(v);
        }
    /* a batch of one, and nothing pending */
    xcs_tensor *c = NULL, *y = NULL;
    CHECK_OK(xcs_graph_const(g[0], x[0], &c));
    CHECK_OK(xcs_unary(XCS_OP_EXP, c, &y));
    xcs_tensor *const one[1] = {y};
    const int n1 = 1;
    CHECK_OK(xcs_lazy_concretize_batch(1, g, &n1, (xcs_tensor *const *const[]){one}, XCS_DEVICE_CPU, 0, &batched));
    CHECK_EQ_I(batched, 0);
    CHECK(xcs_lazy_key(g[0], 1, (const xcs_tensor *const *)one, NULL) == 0);
    CHECK_OK(xcs_lazy_concretize_batch(1, g, &n1, (xcs_tensor *const *const[]){one}, XCS_DEVICE_CPU, 0, &batched));
    xcs_tensor_free(c); xcs_tensor_free(y);
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < 4; j++) { xcs_tensor_free(touts[k][j]); xcs_tensor_free(eouts[k][j]); }
        xcs_tensor_free(x[k]);
        xcs_graph_free(g[k]);
    }
    xcs_tensor_free(w);
}

/* A scan body's carry-free part is hoisted out of the loop: h' = tanh(h @ W
 * + x @ U), y = sum(x @ U) + sum(W): x @ U and y read no carry (y and the
 * sum of W are hoisted; the latter is the same every step).  The compiled
 * scan equals the plain loop program, forward and reverse, and with no
 * steps. */
static void test_scan_hoisting(void) {
    const int64_t hs[2] = {1, 4}, xs1[2] = {1, 3}, ws[2] = {4, 4}, us[2] = {3, 4};
    xcs_tensor *W = random_f32(2, ws), *U = random_f32(2, us);
    xcs_graph *g = NULL;
    xcs_tensor *h = NULL, *x = NULL, *hw = NULL, *xu = NULL, *s = NULL, *h2 = NULL, *y = NULL, *sw = NULL,
               *y2 = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, hs, &h));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, xs1, &x));
    CHECK_OK(xcs_matmul(h, W, &hw));
    CHECK_OK(xcs_matmul(x, U, &xu));
    CHECK_OK(xcs_binary(XCS_OP_ADD, hw, xu, &s));
    CHECK_OK(xcs_unary(XCS_OP_TANH, s, &h2));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, xu, 3u, false, &y));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, W, 3u, false, &sw));
    CHECK_OK(xcs_binary(XCS_OP_ADD, y, sw, &y2));
    CHECK_OK(xcs_graph_output(g, h2));
    CHECK_OK(xcs_graph_output(g, y2));
    xcs_graph *plain = NULL;
    CHECK_OK(xcs_graph_clone(g, 0, NULL, &plain));
    CHECK_OK(xcs_graph_optimize(plain));
    xcs_scan_program *sp = NULL;
    CHECK_OK(xcs_scan_program_new(g, 1, 0, &sp));
    CHECK_EQ_I(xcs_scan_program_hoisted(sp), 2); /* x @ U (read by the add), y2 (an output) */
    for (int64_t T = 0; T <= 6; T += 6)
        for (int rev = 0; rev < 2; rev++) {
            const int64_t xsT[3] = {T, 1, 3};
            xcs_tensor *h0 = random_f32(2, hs), *xsv = random_f32(3, xsT), *a[2] = {0}, *b[2] = {0};
            const xcs_tensor *in[2] = {h0, xsv};
            CHECK_OK(xcs_scan_program_run(sp, T, rev, 2, in, a));
            CHECK_OK(xcs_graph_scan(plain, 1, T, rev, 2, in, b));
            CHECK(max_diff(a[0], b[0]) >= 0 && max_diff(a[0], b[0]) <= 1e-6);
            CHECK_SHAPE(a[1], 1, T);
            CHECK(max_diff(a[1], b[1]) >= 0 && max_diff(a[1], b[1]) <= 1e-5);
            for (int k = 0; k < 2; k++) { xcs_tensor_free(a[k]); xcs_tensor_free(b[k]); }
            xcs_tensor_free(h0); xcs_tensor_free(xsv);
        }
    CHECK_ERR(xcs_scan_program_new(plain, 1, 0, &sp), XCS_ERR_VALUE, "already optimised");
    xcs_scan_program_free(sp);
    xcs_graph_free(plain);
    xcs_tensor *ts[] = {h, x, hw, xu, s, h2, y, sw, y2, W, U};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    xcs_graph_free(g);
}

/* A kept run (xcs_run_keep_plans, a loop's) records a step made of fused
 * groups and replays it while the inputs and destinations keep their
 * layouts: every step equals a fresh run of the graph bit for bit, a step
 * with a transposed input or a missing destination runs the interpreter
 * (and its output comes back as a new tensor), and replay resumes after. */
static void test_kept_run_replay(void) {
    const int64_t hs[2] = {3, 4}, ts[2] = {4, 3}, ws[2] = {4, 4};
    xcs_tensor *W = random_f32(2, ws);
    xcs_graph *g = NULL;
    xcs_tensor *h = NULL, *x = NULL, *hw = NULL, *s = NULL, *o0 = NULL, *o1 = NULL, *two = NULL, *o2 = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, hs, &h));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, hs, &x));
    CHECK_OK(xcs_matmul(h, W, &hw));
    CHECK_OK(xcs_binary(XCS_OP_ADD, hw, x, &s));
    CHECK_OK(xcs_unary(XCS_OP_TANH, s, &o0));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, o0, 2u, false, &o1));
    CHECK_OK(xcs_tensor_scalar(XCS_F32, 2.0, &two));
    CHECK_OK(xcs_binary(XCS_OP_MUL, x, two, &o2));
    CHECK_OK(xcs_graph_output(g, o0));
    CHECK_OK(xcs_graph_output(g, o1));
    CHECK_OK(xcs_graph_output(g, o2));
    CHECK_OK(xcs_graph_optimize(g));
    xcs_run r;
    CHECK_OK(xcs_run_open(g, &r));
    CHECK_OK(xcs_run_keep_plans(&r));
    const int64_t s1[1] = {3};
    xcs_tensor *d[3] = {NULL, NULL, NULL};
    CHECK_OK(xcs_tensor_empty(XCS_F32, 2, hs, &d[0]));
    CHECK_OK(xcs_tensor_empty(XCS_F32, 1, s1, &d[1]));
    CHECK_OK(xcs_tensor_empty(XCS_F32, 2, hs, &d[2]));
    xcs_tensor *dest[3] = {d[0], d[1], d[2]};
    r.dest = dest;
    /* steps: 0 interpreted (recorded), 1-2 replayed, 3 a transposed x, 4 no
     * destination for output 2, 5 interpreted again (recorded), 6 replayed */
    const int64_t want_replayed[7] = {0, 1, 2, 2, 2, 2, 3};
    for (int step = 0; step < 7; step++) {
        xcs_tensor *hv = random_f32(2, hs), *xv = NULL, *base = NULL;
        if (step == 3) {
            base = random_f32(2, ts);
            CHECK_OK(xcs_transpose(base, &xv));
        } else {
            xv = random_f32(2, hs);
        }
        dest[2] = step == 4 ? NULL : d[2];
        const xcs_tensor *in[2] = {hv, xv};
        xcs_tensor *outs[3] = {NULL, NULL, NULL}, *want[3] = {NULL, NULL, NULL};
        CHECK_OK(xcs_run_once(&r, in, outs));
        CHECK_OK(xcs_graph_run(g, 2, in, want));
        CHECK_EQ_I((int)r.replayed, (int)want_replayed[step]);
        for (int k = 0; k < 3; k++) {
            const xcs_tensor *got = outs[k] ? outs[k] : d[k];
            CHECK(k == 2 && step == 4 ? outs[k] != NULL : outs[k] == NULL);
            CHECK(max_diff(got, want[k]) == 0.0);
            xcs_tensor_free(outs[k]);
            xcs_tensor_free(want[k]);
        }
        xcs_tensor_free(hv); xcs_tensor_free(xv); xcs_tensor_free(base);
    }
    xcs_run_close(&r);
    for (int k = 0; k < 3; k++) xcs_tensor_free(d[k]);
    xcs_tensor_free(W); xcs_tensor_free(h); xcs_tensor_free(x); xcs_tensor_free(hw); xcs_tensor_free(s);
    xcs_tensor_free(o0); xcs_tensor_free(o1); xcs_tensor_free(two); xcs_tensor_free(o2);
    xcs_graph_free(g);
}

/* Collectives name their map: batching the inner map (number 5) passes a
 * psum of the outer map (number 7) through, over the inner batch, and the
 * outer batching sums it over its own axis; CSE keeps psums of the two
 * maps apart, and a collective numbered 0 belongs to whichever map batches
 * it. */
static void test_numbered_collectives(void) {
    enum { O = 3, I = 4, K = 5 };
    const int64_t per[1] = {K}, inner_b[2] = {I, K}, outer_b[3] = {O, I, K};
    /* per (outer, inner) example: psum_outer(v) * 10 + psum_inner(v) */
    xcs_graph *gi = NULL, *go = NULL;
    xcs_tensor *v = NULL, *so = NULL, *si = NULL, *so2 = NULL, *r = NULL, *ten = NULL, *t = NULL;
    CHECK_OK(xcs_graph_new(&gi));
    CHECK_OK(xcs_graph_input(gi, XCS_F64, 1, per, &v));
    CHECK_OK(xcs_collective_on(XCS_OP_PSUM, v, O, 7, &so));
    CHECK_OK(xcs_collective_on(XCS_OP_PSUM, v, O, 7, &so2)); /* the same map twice: one node after CSE */
    CHECK_OK(xcs_collective_on(XCS_OP_PSUM, v, I, 5, &si));
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 10, &ten));
    CHECK_OK(xcs_binary(XCS_OP_MUL, so, ten, &t));
    CHECK_OK(xcs_binary(XCS_OP_ADD, t, si, &r));
    xcs_tensor_free(t);
    CHECK_OK(xcs_binary(XCS_OP_SUB, r, so2, &t)); /* - psum_outer once: 9 * psum_outer + psum_inner */
    CHECK_OK(xcs_graph_output(gi, t));
    CHECK_ERR(xcs_collective_on(XCS_OP_PSUM, v, I, -1, &r), XCS_ERR_VALUE, "negative map number");
    /* the outer map's per-example graph: the inner map batched over its input */
    xcs_tensor *vi = NULL, *outs[1] = {NULL};
    bool ob[1] = {false}, bt[1] = {true};
    CHECK_OK(xcs_graph_new(&go));
    CHECK_OK(xcs_graph_input(go, XCS_F64, 2, inner_b, &vi));
    const xcs_tensor *ins[1] = {vi};
    CHECK_OK(xcs_graph_batch_on(gi, 1, ins, bt, I, 5, outs, ob));
    CHECK(ob[0]);
    CHECK_OK(xcs_graph_output(go, outs[0]));
    CHECK_OK(xcs_graph_optimize(go));
    int psums = 0;
    for (int i = 0; i < xcs_graph_num_nodes(go); i++) {
        xcs_node_info info;
        if (xcs_graph_node_get(go, i, &info, NULL, 0) >= 0 && strcmp(info.op, "psum") == 0) psums++;
    }
    CHECK_EQ_I(psums, 1); /* the outer psum, passed through once */
    /* the outer map on concrete values */
    xcs_tensor *x = NULL, *res[1] = {NULL};
    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, outer_b, &x));
    for (int64_t i = 0; i < O * I * K; i++) ((double *)xcs_tensor_data(x))[i] = (double)((i * 37) % 11) - 5.0;
    const xcs_tensor *xin[1] = {x};
    CHECK_OK(xcs_graph_batch_on(go, 1, xin, bt, O, 7, res, ob));
    const double *xd = xcs_tensor_data(x);
    for (int o = 0; res[0] && o < O; o++)
        for (int i = 0; i < I; i++)
            for (int k = 0; k < K; k++) {
                double sum_o = 0, sum_i = 0;
                for (int q = 0; q < O; q++) sum_o += xd[(q * I + i) * K + k];
                for (int q = 0; q < I; q++) sum_i += xd[(o * I + q) * K + k];
                CHECK_NEAR(xcs_tensor_get_f64(res[0], (o * I + i) * K + k), 9 * sum_o + sum_i, 1e-12);
            }
    /* numbered 0: the inner batching takes it as its own (the old rule) */
    xcs_graph *g0 = NULL;
    xcs_tensor *v0 = NULL, *s0 = NULL, *o0[1] = {NULL}, *y = NULL;
    CHECK_OK(xcs_graph_new(&g0));
    CHECK_OK(xcs_graph_input(g0, XCS_F64, 1, per, &v0));
    CHECK_OK(xcs_collective(XCS_OP_PSUM, v0, I, &s0));
    CHECK_OK(xcs_graph_output(g0, s0));
    CHECK_OK(xcs_tensor_empty(XCS_F64, 2, inner_b, &y));
    for (int64_t i = 0; i < I * K; i++) ((double *)xcs_tensor_data(y))[i] = (double)i;
    const xcs_tensor *yin[1] = {y};
    CHECK_OK(xcs_graph_batch_on(g0, 1, yin, bt, I, 5, o0, ob));
    CHECK(!ob[0]);
    for (int k = 0; o0[0] && k < K; k++) CHECK_NEAR(xcs_tensor_get_f64(o0[0], k), 4 * 7.5 + 4 * k, 1e-12);
    /* psums of two maps of one size over one value stay two nodes */
    xcs_graph *gc = NULL;
    xcs_tensor *vc = NULL, *p1 = NULL, *p2 = NULL;
    CHECK_OK(xcs_graph_new(&gc));
    CHECK_OK(xcs_graph_input(gc, XCS_F64, 1, per, &vc));
    CHECK_OK(xcs_collective_on(XCS_OP_PSUM, vc, I, 1, &p1));
    CHECK_OK(xcs_collective_on(XCS_OP_PSUM, vc, I, 2, &p2));
    CHECK_OK(xcs_graph_output(gc, p1));
    CHECK_OK(xcs_graph_output(gc, p2));
    CHECK_OK(xcs_graph_optimize(gc));
    psums = 0;
    for (int i = 0; i < xcs_graph_num_nodes(gc); i++) {
        xcs_node_info info;
        if (xcs_graph_node_get(gc, i, &info, NULL, 0) >= 0 && strcmp(info.op, "psum") == 0) psums++;
    }
    CHECK_EQ_I(psums, 2);
    xcs_tensor_free(vc);
    xcs_tensor_free(p1);
    xcs_tensor_free(p2);
    xcs_graph_free(gc);
    xcs_tensor *f[] = {v, so, so2, si, r, ten, t, vi, outs[0], x, res[0], v0, s0, o0[0], y};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    xcs_graph_free(gi);
    xcs_graph_free(go);
    xcs_graph_free(g0);
}

int main(void) {
    if (xcs_host_init()) return 1;
    RUN(test_replay_equals_eager);
    RUN(test_cse_dce_hash);
    RUN(test_dce_constant_slots);
    RUN(test_constants_and_errors);
    RUN(test_chain_fuses_without_intermediates);
    RUN(test_fold_and_identities);
    RUN(test_matmul_epilogue);
    RUN(test_lazy_batch);
    RUN(test_scan_hoisting);
    RUN(test_kept_run_replay);
    RUN(test_numbered_collectives);
    return check_report();
}
