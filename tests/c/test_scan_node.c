/* test_scan_node.c — scan recorded as one op of a trace (xcs_scan_trace):
 * h' = tanh(h @ W + x @ U), y = sum(h') over the rows of xs, with W a
 * value of the enclosing trace the body captures (a loop invariant) and U
 * a constant.  The op's values and its gradient (autodiff's reverse loop)
 * equal the same loop unrolled into the trace, forward and reverse; with
 * nothing traced the op runs at once; a copy of the graph shares the scan;
 * bad inputs are refused; vmap's rule batches it.  Runs under ASan in CI (the descriptors'
 * references, the reverse body's temporaries). */
#include <stdlib.h>

#include "check.h"
#include "trace.h"
#include "xcs_host.h"

enum { H = 4, X = 3, T = 6 };

static uint64_t seed = 0x5CA9u;
static xcs_tensor *random_f64(int nd, const int64_t *shape) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F64, nd, shape, &t)) return NULL;
    double *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = ((double)(seed >> 11) * 0x1p-53 * 2.0 - 1.0) * 0.6;
    }
    return t;
}

static double max_diff(const xcs_tensor *a, const xcs_tensor *b) {
    xcs_tensor *ca = NULL, *cb = NULL;
    if (xcs_contiguous(a, &ca) || xcs_contiguous(b, &cb) || xcs_tensor_numel(ca) != xcs_tensor_numel(cb)) return -1;
    double m = 0;
    const double *p = xcs_tensor_data(ca), *q = xcs_tensor_data(cb);
    for (int64_t i = 0; i < xcs_tensor_numel(ca); i++) m = fabs(p[i] - q[i]) > m ? fabs(p[i] - q[i]) : m;
    xcs_tensor_free(ca);
    xcs_tensor_free(cb);
    return m;
}

/* One step: *h2 = tanh(h @ W + x @ U), *y = sum(*h2). */
static xcs_status cell(const xcs_tensor *h, const xcs_tensor *x, const xcs_tensor *W, const xcs_tensor *U,
                       xcs_tensor **h2, xcs_tensor **y) {
    xcs_tensor *a = NULL, *b = NULL, *s = NULL;
    xcs_status st = xcs_matmul(h, W, &a);
    if (!st) st = xcs_matmul(x, U, &b);
    if (!st) st = xcs_binary(XCS_OP_ADD, a, b, &s);
    if (!st) st = xcs_unary(XCS_OP_TANH, s, h2);
    if (!st) st = xcs_reduce(XCS_OP_SUM, *h2, 1u, false, y);
    xcs_tensor_free(a);
    xcs_tensor_free(b);
    xcs_tensor_free(s);
    return st;
}

/* The loop's outputs (final carry, ys [T]) in g, as one op or unrolled. */
static void loop(xcs_graph *g, bool op, bool rev, xcs_tensor *W, xcs_tensor *h0, xcs_tensor *xs,
                 const xcs_tensor *U, xcs_tensor **out) {
    if (op) {
        xcs_graph *body = NULL;
        xcs_tensor *h = NULL, *x = NULL, *h2 = NULL, *y = NULL;
        CHECK_OK(xcs_graph_new(&body));
        xcs_graph_set_parent(body, g);
        CHECK_OK(xcs_graph_input(body, XCS_F64, 1, SHAPE(H), &h));
        CHECK_OK(xcs_graph_input(body, XCS_F64, 1, SHAPE(X), &x));
        CHECK_OK(cell(h, x, W, U, &h2, &y)); /* W is g's: captured */
        CHECK_OK(xcs_graph_output(body, h2));
        CHECK_OK(xcs_graph_output(body, y));
        const xcs_tensor *in[2] = {h0, xs};
        CHECK_OK(xcs_scan_trace(body, 1, 1, T, rev, 2, in, out));
        xcs_tensor_free(h); xcs_tensor_free(x); xcs_tensor_free(h2); xcs_tensor_free(y);
        xcs_graph_free(body);
        return;
    }
    xcs_tensor *h = NULL, *ys[T] = {0};
    CHECK_OK(xcs_tensor_view(h0, &h));
    for (int i = 0; i < T; i++) {
        int t = rev ? T - 1 - i : i;
        xcs_slice sl = {.start = t, .stop = t + 1, .step = 1, .has_start = true, .has_stop = true};
        xcs_tensor *row = NULL, *x = NULL, *h2 = NULL, *y = NULL;
        CHECK_OK(xcs_slice_axis(xs, 0, sl, &row));
        CHECK_OK(xcs_reshape(row, 1, SHAPE(X), &x));
        CHECK_OK(cell(h, x, W, U, &h2, &y));
        CHECK_OK(xcs_reshape(y, 1, SHAPE(1), &ys[t]));
        xcs_tensor_free(row); xcs_tensor_free(x); xcs_tensor_free(y); xcs_tensor_free(h);
        h = h2;
    }
    out[0] = h;
    CHECK_OK(xcs_concat(T, (const xcs_tensor *const *)ys, 0, &out[1]));
    for (int t = 0; t < T; t++) xcs_tensor_free(ys[t]);
    (void)g;
}

/* Program: (W, h0, xs) -> (hT, ys, dL/dW, dL/dh0, dL/dxs), L = sum(hT^2) + sum(ys * w). */
static xcs_graph *program(bool op, bool rev, const xcs_tensor *U, const xcs_tensor *wy) {
    xcs_graph *g = NULL;
    xcs_tensor *W = NULL, *h0 = NULL, *xs = NULL, *out[2] = {0}, *sq = NULL, *l1 = NULL, *wys = NULL, *l2 = NULL,
               *L = NULL, *grads[3] = {0};
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 2, SHAPE(H, H), &W));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 1, SHAPE(H), &h0));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 2, SHAPE(T, X), &xs));
    loop(g, op, rev, W, h0, xs, U, out);
    CHECK_OK(xcs_binary(XCS_OP_MUL, out[0], out[0], &sq));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, sq, 1u, false, &l1));
    CHECK_OK(xcs_binary(XCS_OP_MUL, out[1], wy, &wys));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, wys, 1u, false, &l2));
    CHECK_OK(xcs_binary(XCS_OP_ADD, l1, l2, &L));
    const xcs_tensor *wrt[3] = {W, h0, xs};
    CHECK_OK(xcs_graph_vjp(g, L, NULL, 3, wrt, grads));
    CHECK_OK(xcs_graph_output(g, out[0]));
    CHECK_OK(xcs_graph_output(g, out[1]));
    for (int k = 0; k < 3; k++) CHECK_OK(xcs_graph_output(g, grads[k]));
    xcs_tensor *ts[] = {W, h0, xs, out[0], out[1], sq, l1, wys, l2, L, grads[0], grads[1], grads[2]};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    CHECK_OK(xcs_graph_optimize(g));
    return g;
}

static int count_scans(const xcs_graph *g) {
    xcs_node_info info;
    int32_t ins[16];
    int n = 0;
    for (int i = 0; i < xcs_graph_num_nodes(g); i++)
        if (xcs_graph_node_get(g, i, &info, ins, 16) >= 0 && strcmp(info.op, "scan") == 0) n++;
    return n;
}

static void test_op_equals_unrolled_loop(void) {
    xcs_tensor *U = random_f64(2, SHAPE(X, H)), *wy = random_f64(1, SHAPE(T));
    xcs_tensor *W = random_f64(2, SHAPE(H, H)), *h0 = random_f64(1, SHAPE(H)), *xs = random_f64(2, SHAPE(T, X));
    const xcs_tensor *in[3] = {W, h0, xs};
    for (int rev = 0; rev < 2; rev++) {
        xcs_graph *a = program(true, rev, U, wy), *b = program(false, rev, U, wy), *c = NULL;
        CHECK(count_scans(a) >= 3); /* the forward loop's carry, ys and residuals, the reverse loop's gradients */
        CHECK_EQ_I(count_scans(b), 0);
        CHECK_OK(xcs_graph_clone(a, 0, NULL, &c)); /* shares the scans */
        CHECK_OK(xcs_graph_optimize(c));
        xcs_tensor *oa[5] = {0}, *ob[5] = {0}, *oc[5] = {0};
        CHECK_OK(xcs_graph_run(a, 3, in, oa));
        CHECK_OK(xcs_graph_run(b, 3, in, ob));
        xcs_graph_free(a); /* c's references keep the scans */
        CHECK_OK(xcs_graph_run(c, 3, in, oc));
        for (int k = 0; k < 5; k++) {
            double d = max_diff(oa[k], ob[k]);
            CHECK(d >= 0 && d <= 1e-12);
            CHECK(max_diff(oa[k], oc[k]) == 0);
            xcs_tensor_free(oa[k]); xcs_tensor_free(ob[k]); xcs_tensor_free(oc[k]);
        }
        xcs_graph_free(b);
        xcs_graph_free(c);
    }
    xcs_tensor *ts[] = {U, wy, W, h0, xs};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
}

/* Nothing traced: the loop runs at once (the loop program's values). */
static void test_concrete_inputs_run_now(void) {
    xcs_tensor *U = random_f64(2, SHAPE(X, H)), *W = random_f64(2, SHAPE(H, H));
    xcs_tensor *h0 = random_f64(1, SHAPE(H)), *xs = random_f64(2, SHAPE(T, X));
    xcs_graph *body = NULL;
    xcs_tensor *h = NULL, *x = NULL, *h2 = NULL, *y = NULL, *out[2] = {0}, *want[2] = {0};
    CHECK_OK(xcs_graph_new(&body));
    CHECK_OK(xcs_graph_input(body, XCS_F64, 1, SHAPE(H), &h));
    CHECK_OK(xcs_graph_input(body, XCS_F64, 1, SHAPE(X), &x));
    CHECK_OK(cell(h, x, W, U, &h2, &y));
    CHECK_OK(xcs_graph_output(body, h2));
    CHECK_OK(xcs_graph_output(body, y));
    const xcs_tensor *in[2] = {h0, xs};
    CHECK_OK(xcs_scan_trace(body, 1, 1, T, false, 2, in, out));
    CHECK(out[0] && !out[0]->graph && out[1] && !out[1]->graph);
    CHECK_SHAPE(out[1], 1, T);
    CHECK_OK(xcs_graph_scan(body, 1, T, false, 2, in, want));
    CHECK(max_diff(out[0], want[0]) == 0 && max_diff(out[1], want[1]) == 0);
    /* bad inputs: xs of another length, a carry of another dtype, a count */
    xcs_tensor *short_xs = random_f64(2, SHAPE(T - 1, X)), *h32 = NULL, *o2[2] = {0};
    CHECK_OK(xcs_cast(h0, XCS_F32, &h32));
    const xcs_tensor *bad_len[2] = {h0, short_xs}, *bad_dt[2] = {h32, xs};
    CHECK_ERR(xcs_scan_trace(body, 1, 1, T, false, 2, bad_len, o2), XCS_ERR_SHAPE, "xs leaf 0");
    CHECK_ERR(xcs_scan_trace(body, 1, 1, T, false, 2, bad_dt, o2), XCS_ERR_TYPE, "carry leaf 0");
    CHECK_ERR(xcs_scan_trace(body, 1, 1, T, false, 1, in, o2), XCS_ERR_VALUE, "takes 2 inputs");
    CHECK_ERR(xcs_scan_trace(body, 3, 0, T, false, 2, in, o2), XCS_ERR_VALUE, "3 carries");
    CHECK(!o2[0] && !o2[1]);
    xcs_tensor *ts[] = {U, W, h0, xs, h, x, h2, y, out[0], out[1], want[0], want[1], short_xs, h32};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    xcs_graph_free(body);
}

/* Nested: an outer loop over blocks xs [NO, T, X] whose step runs the
 * inner loop (cell) over its block from carry h, returning (hT, sum(ys)).
 * As ops (the inner one recorded in the outer body) or unrolled, with the
 * gradient of sum(hT^2) + sum(outer ys): the same values. */
enum { NO = 3 };

static void outer_step(xcs_graph *g, bool op, xcs_tensor *W, xcs_tensor *h, xcs_tensor *block, const xcs_tensor *U,
                       xcs_tensor **hT, xcs_tensor **s) {
    xcs_tensor *out[2] = {0};
    loop(g, op, false, W, h, block, U, out);
    *hT = out[0];
    CHECK_OK(xcs_reduce(XCS_OP_SUM, out[1], 1u, false, s));
    xcs_tensor_free(out[1]);
}

static xcs_graph *nested_program(bool op, const xcs_tensor *U) {
    xcs_graph *g = NULL;
    xcs_tensor *W = NULL, *h0 = NULL, *xs = NULL, *hT = NULL, *ys = NULL, *sq = NULL, *l1 = NULL, *l2 = NULL,
               *L = NULL, *grads[3] = {0};
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 2, SHAPE(H, H), &W));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 1, SHAPE(H), &h0));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 3, SHAPE(NO, T, X), &xs));
    if (op) {
        xcs_graph *body = NULL;
        xcs_tensor *h = NULL, *blk = NULL, *bh = NULL, *bs = NULL, *outs[2] = {0};
        CHECK_OK(xcs_graph_new(&body));
        xcs_graph_set_parent(body, g);
        CHECK_OK(xcs_graph_input(body, XCS_F64, 1, SHAPE(H), &h));
        CHECK_OK(xcs_graph_input(body, XCS_F64, 2, SHAPE(T, X), &blk));
        outer_step(body, true, W, h, blk, U, &bh, &bs); /* W captured twice over */
        CHECK_OK(xcs_graph_output(body, bh));
        CHECK_OK(xcs_graph_output(body, bs));
        const xcs_tensor *in[2] = {h0, xs};
        CHECK_OK(xcs_scan_trace(body, 1, 1, NO, false, 2, in, outs));
        hT = outs[0], ys = outs[1];
        xcs_tensor *ts[] = {h, blk, bh, bs};
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
        xcs_graph_free(body);
    } else {
        xcs_tensor *h = NULL, *parts[NO] = {0};
        CHECK_OK(xcs_tensor_view(h0, &h));
        for (int o = 0; o < NO; o++) {
            xcs_slice sl = {.start = o, .stop = o + 1, .step = 1, .has_start = true, .has_stop = true};
            xcs_tensor *row = NULL, *blk = NULL, *h2 = NULL, *so = NULL;
            CHECK_OK(xcs_slice_axis(xs, 0, sl, &row));
            CHECK_OK(xcs_reshape(row, 2, SHAPE(T, X), &blk));
            outer_step(g, false, W, h, blk, U, &h2, &so);
            CHECK_OK(xcs_reshape(so, 1, SHAPE(1), &parts[o]));
            xcs_tensor_free(row); xcs_tensor_free(blk); xcs_tensor_free(so); xcs_tensor_free(h);
            h = h2;
        }
        hT = h;
        CHECK_OK(xcs_concat(NO, (const xcs_tensor *const *)parts, 0, &ys));
        for (int o = 0; o < NO; o++) xcs_tensor_free(parts[o]);
    }
    CHECK_OK(xcs_binary(XCS_OP_MUL, hT, hT, &sq));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, sq, 1u, false, &l1));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, ys, 1u, false, &l2));
    CHECK_OK(xcs_binary(XCS_OP_ADD, l1, l2, &L));
    const xcs_tensor *wrt[3] = {W, h0, xs};
    CHECK_OK(xcs_graph_vjp(g, L, NULL, 3, wrt, grads));
    CHECK_OK(xcs_graph_output(g, hT));
    CHECK_OK(xcs_graph_output(g, ys));
    for (int k = 0; k < 3; k++) CHECK_OK(xcs_graph_output(g, grads[k]));
    xcs_tensor *ts[] = {W, h0, xs, hT, ys, sq, l1, l2, L, grads[0], grads[1], grads[2]};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    CHECK_OK(xcs_graph_optimize(g));
    return g;
}

static void test_nested_ops_equal_unrolled_loops(void) {
    xcs_tensor *U = random_f64(2, SHAPE(X, H)), *W = random_f64(2, SHAPE(H, H)), *h0 = random_f64(1, SHAPE(H));
    xcs_tensor *xs = random_f64(3, SHAPE(NO, T, X));
    xcs_graph *a = nested_program(true, U), *b = nested_program(false, U);
    CHECK(count_scans(a) >= 2);
    const xcs_tensor *in[3] = {W, h0, xs};
    xcs_tensor *oa[5] = {0}, *ob[5] = {0};
    CHECK_OK(xcs_graph_run(a, 3, in, oa));
    CHECK_OK(xcs_graph_run(b, 3, in, ob));
    for (int k = 0; k < 5; k++) {
        double d = max_diff(oa[k], ob[k]);
        CHECK(d >= 0 && d <= 1e-11);
        xcs_tensor_free(oa[k]);
        xcs_tensor_free(ob[k]);
    }
    xcs_graph_free(a);
    xcs_graph_free(b);
    xcs_tensor *ts[] = {U, W, h0, xs};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
}

/* vmap's rule: the program (forward loop, reverse loop) batched over
 * h0 and xs with W shared equals each example run alone. */
static void test_batched_op_equals_each_example(void) {
    enum { NB = 3 };
    xcs_tensor *U = random_f64(2, SHAPE(X, H)), *wy = random_f64(1, SHAPE(T)), *W = random_f64(2, SHAPE(H, H));
    xcs_tensor *h0s = random_f64(2, SHAPE(NB, H)), *xss = random_f64(3, SHAPE(NB, T, X));
    xcs_graph *g = program(true, false, U, wy);
    const xcs_tensor *in[3] = {W, h0s, xss};
    const bool batched[3] = {false, true, true};
    xcs_tensor *outs[5] = {0};
    bool ob[5] = {0};
    CHECK_OK(xcs_graph_batch(g, 3, in, batched, NB, outs, ob));
    for (int b = 0; b < NB; b++) {
        xcs_tensor *h0 = NULL, *xs = NULL, *one[5] = {0};
        xcs_slice sl = {.start = b, .stop = b + 1, .step = 1, .has_start = true, .has_stop = true};
        xcs_tensor *r1 = NULL, *r2 = NULL;
        CHECK_OK(xcs_slice_axis(h0s, 0, sl, &r1));
        CHECK_OK(xcs_reshape(r1, 1, SHAPE(H), &h0));
        CHECK_OK(xcs_slice_axis(xss, 0, sl, &r2));
        CHECK_OK(xcs_reshape(r2, 2, SHAPE(T, X), &xs));
        const xcs_tensor *ein[3] = {W, h0, xs};
        CHECK_OK(xcs_graph_run(g, 3, ein, one));
        for (int k = 0; k < 5; k++) {
            CHECK(ob[k]); /* every output depends on the example */
            xcs_tensor *row = NULL;
            CHECK_OK(xcs_slice_axis(outs[k], 0, sl, &row));
            double d = max_diff(row, one[k]);
            CHECK(d >= 0 && d <= 1e-12);
            xcs_tensor_free(row);
            xcs_tensor_free(one[k]);
        }
        xcs_tensor *ts[] = {h0, xs, r1, r2};
        for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
    }
    for (int k = 0; k < 5; k++) xcs_tensor_free(outs[k]);
    xcs_graph_free(g);
    xcs_tensor *ts[] = {U, wy, W, h0s, xss};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) xcs_tensor_free(ts[k]);
}

int main(void) {
    if (xcs_host_init()) return 1;
    RUN(test_op_equals_unrolled_loop);
    RUN(test_concrete_inputs_run_now);
    RUN(test_batched_op_equals_each_example);
    RUN(test_nested_ops_equal_unrolled_loops);
    return check_report();
}
