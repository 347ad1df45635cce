/* graph_prog.h — a program exercising every path of a device graph run
 * (matmul, fused elementwise and softmax groups, reductions, a constant, a
 * copy, and host-fallback ops: argmax and take), shared by the mock-device
 * test and the real-GPU test. */
#ifndef XCS_TEST_GRAPH_PROG_H
#define XCS_TEST_GRAPH_PROG_H

#include <stdint.h>

#include "check.h"
#include "xcs.h"

static uint64_t seed = 0xD3C1CEull;
/* A host float32 tensor of uniform [-1, 1) values. */
static inline xcs_tensor *random_f32(int ndim, const int64_t *shape) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F32, ndim, shape, &t)) return NULL;
    float *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(seed >> 11) * 0x1p-53 * 2.0 - 1.0);
    }
    return t;
}

/* softmax(tanh(x @ w) * c + 1) (c a constant), its row sums, argmax (host),
 * a transposed copy and a take (host), a column mean. */
static inline xcs_status program(const xcs_tensor *x, const xcs_tensor *w, const xcs_tensor *c, xcs_tensor **outs) {
    xcs_tensor *mm = NULL, *th = NULL, *sc = NULL, *one = NULL, *sh = NULL, *t = NULL, *r = NULL, *idx = NULL;
    xcs_status st;
    if ((st = xcs_matmul(x, w, &mm))) goto done;
    if ((st = xcs_unary(XCS_OP_TANH, mm, &th))) goto done;
    if ((st = xcs_binary(XCS_OP_MUL, th, c, &sc))) goto done;
    if ((st = xcs_tensor_scalar(XCS_F64, 1.0, &one))) goto done;
    one->flags |= XCS_TENSOR_WEAK;
    if ((st = xcs_binary(XCS_OP_ADD, sc, one, &sh))) goto done;
    if ((st = xcs_softmax(sh, -1, &outs[0]))) goto done;
    if ((st = xcs_reduce(XCS_OP_SUM, sh, 2u, false, &outs[1]))) goto done;
    if ((st = xcs_argreduce(XCS_OP_ARGMAX, sh, 1, false, &outs[2]))) goto done;
    if ((st = xcs_transpose(x, &t))) goto done;
    int64_t flat = -1;
    if ((st = xcs_reshape(t, 1, &flat, &r))) goto done;
    if ((st = xcs_arange(0, 5, 1, XCS_I64, &idx))) goto done;
    if ((st = xcs_take(r, idx, 0, &outs[3]))) goto done;
    st = xcs_reduce(XCS_OP_MAX, x, 1u, true, &outs[4]);
done:
    xcs_tensor_free(mm); xcs_tensor_free(th); xcs_tensor_free(sc); xcs_tensor_free(one);
    xcs_tensor_free(sh); xcs_tensor_free(t); xcs_tensor_free(r); xcs_tensor_free(idx);
    return st;
}

#define NOUT 5

static inline xcs_status softmax_rows(const xcs_tensor *x, xcs_tensor **out) { return xcs_softmax(x, -1, out); }

/* (x - mean) / sqrt(var + 1e-5) over each row. */
static inline xcs_status layer_norm_rows(const xcs_tensor *x, xcs_tensor **out) {
    xcs_tensor *mu = NULL, *d = NULL, *var = NULL, *ve = NULL, *sd = NULL, *eps = NULL;
    xcs_status st = xcs_tensor_scalar(XCS_F64, 1e-5, &eps);
    if (!st) eps->flags |= XCS_TENSOR_WEAK;
    if (!st && !(st = xcs_mean(x, 2u, true, &mu)) && !(st = xcs_binary(XCS_OP_SUB, x, mu, &d)) &&
        !(st = xcs_var(x, 2u, true, 0, &var)) && !(st = xcs_binary(XCS_OP_ADD, var, eps, &ve)) &&
        !(st = xcs_unary(XCS_OP_SQRT, ve, &sd)))
        st = xcs_binary(XCS_OP_DIV, d, sd, out);
    xcs_tensor *f[] = {mu, d, var, ve, sd, eps};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    return st;
}

/* prog(x) traced over a float32 input of `shape` (2-D), optimised. */
static inline xcs_graph *one_input_graph(const int64_t *shape, xcs_status (*prog)(const xcs_tensor *, xcs_tensor **)) {
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *y = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, shape, &x));
    CHECK_OK(prog(x, &y));
    CHECK_OK(xcs_graph_output(g, y));
    CHECK_OK(xcs_graph_optimize(g));
    xcs_tensor_free(x);
    xcs_tensor_free(y);
    return g;
}

/* The program traced into a graph (optimised) with inputs x [M, K], w [K, N]
 * and the constant c [N]. */
static inline xcs_graph *program_graph(int64_t M, int64_t K, int64_t N, const xcs_tensor *c) {
    const int64_t xs[2] = {M, K}, ws[2] = {K, N};
    xcs_graph *g = NULL;
    xcs_tensor *tx = NULL, *tw = NULL, *touts[NOUT] = {0};
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, xs, &tx));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, ws, &tw));
    CHECK_OK(program(tx, tw, c, touts));
    for (int i = 0; i < NOUT; i++) CHECK_OK(xcs_graph_output(g, touts[i]));
    CHECK_OK(xcs_graph_optimize(g));
    for (int i = 0; i < NOUT; i++) xcs_tensor_free(touts[i]);
    xcs_tensor_free(tx);
    xcs_tensor_free(tw);
    return g;
}

/* Runs g on the CPU (inputs in) and on CUDA device 0 (inputs din: host or
 * already there) and checks that every output of the device run lives there
 * and equals the CPU's within rel. */
static inline void check_device_equals_cpu(const xcs_graph *g, int n_in, const xcs_tensor *const *in,
                                    const xcs_tensor *const *din, double rel) {
    xcs_tensor *want[NOUT] = {0}, *got[NOUT] = {0};
    int n_out = xcs_graph_num_outputs(g);
    CHECK_OK(xcs_graph_run(g, n_in, in, want));
    CHECK_OK(xcs_graph_run_on(g, XCS_DEVICE_CUDA, 0, n_in, din, got));
    for (int o = 0; o < n_out; o++) {
        CHECK(got[o] && got[o]->storage->device == XCS_DEVICE_CUDA);
        xcs_tensor *h = NULL;
        if (got[o]) CHECK_OK(xcs_tensor_to(got[o], XCS_DEVICE_CPU, 0, &h));
        CHECK(h && want[o] && xcs_tensor_on_host(h) && h->ndim == want[o]->ndim && h->dtype == want[o]->dtype);
        for (int64_t i = 0; h && want[o] && i < xcs_tensor_numel(want[o]); i++) {
            double wv = xcs_tensor_get_f64(want[o], i);
            CHECK_NEAR(xcs_tensor_get_f64(h, i), wv, rel * (1 + fabs(wv)));
        }
        xcs_tensor_free(h);
        xcs_tensor_free(got[o]);
        xcs_tensor_free(want[o]);
    }
}

#endif
