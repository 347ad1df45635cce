/* test_autodiff.c — xcs_graph_vjp against central finite differences (f64),
 * through broadcasting, a transpose, a strided slice (scatter-add adjoint),
 * matmul, reductions and a gather; and scatter_add itself (values, order,
 * bad indices).  Runs under ASan in CI, so the backward builder's temporary
 * tensors are checked for leaks. */
#include <stdlib.h>

#include "check.h"
#include "xcs_host.h"

static uint64_t seed = 0xAD0FF5E7u;
static double rnd(void) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(seed >> 11) * 0x1p-53 * 2.0 - 1.0;
}

/* y = sum(tanh(x @ w + b) * x[:, ::2]^T-ish) built from traced or concrete x, w, b. */
static xcs_status program(const xcs_tensor *x, const xcs_tensor *w, const xcs_tensor *b, xcs_tensor **y) {
    xcs_tensor *mm = NULL, *ad = NULL, *th = NULL, *xt = NULL, *sl = NULL, *pr = NULL, *mx = NULL, *s1 = NULL,
               *idx = NULL, *tk = NULL, *s2 = NULL;
    xcs_status st;
    xcs_slice every2 = {.start = 0, .stop = 4, .step = 2, .has_start = true, .has_stop = true};
    if ((st = xcs_matmul(x, w, &mm))) goto done;                 /* [3,4] @ [4,2] */
    if ((st = xcs_binary(XCS_OP_ADD, mm, b, &ad))) goto done;    /* + b[2] broadcast */
    if ((st = xcs_unary(XCS_OP_TANH, ad, &th))) goto done;
    if ((st = xcs_slice_axis(x, 1, every2, &sl))) goto done;     /* x[:, ::2]: [3,2] strided */
    if ((st = xcs_binary(XCS_OP_MUL, th, sl, &pr))) goto done;
    if ((st = xcs_reduce(XCS_OP_MAX, pr, 2u, true, &mx))) goto done; /* max over axis 1 */
    if ((st = xcs_reduce(XCS_OP_SUM, mx, 3u, false, &s1))) goto done;
    if ((st = xcs_arange(0, 3, 1, XCS_I64, &idx))) goto done;
    if ((st = xcs_transpose(w, &xt))) goto done;                 /* w^T [2,4] */
    if ((st = xcs_take(xt, idx, 1, &tk))) goto done;             /* gather columns 0..2 */
    if ((st = xcs_reduce(XCS_OP_SUM, tk, 3u, false, &s2))) goto done;
    st = xcs_binary(XCS_OP_ADD, s1, s2, y);
done:
    xcs_tensor_free(mm); xcs_tensor_free(ad); xcs_tensor_free(th); xcs_tensor_free(xt); xcs_tensor_free(sl);
    xcs_tensor_free(pr); xcs_tensor_free(mx); xcs_tensor_free(s1); xcs_tensor_free(idx); xcs_tensor_free(tk);
    xcs_tensor_free(s2);
    return st;
}

static xcs_tensor *rand_f64(int nd, const int64_t *shape) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F64, nd, shape, &t)) return NULL;
    double *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) p[i] = rnd();
    return t;
}

static double eval(xcs_tensor *const *v) {
    xcs_tensor *y = NULL;
    CHECK_OK(program(v[0], v[1], v[2], &y));
    double r = y ? xcs_tensor_get_f64(y, 0) : 0;
    xcs_tensor_free(y);
    return r;
}

static void test_vjp_matches_finite_differences(void) {
    const int64_t sx[2] = {3, 4}, sw[2] = {4, 2}, sb[1] = {2};
    xcs_graph *g = NULL;
    xcs_tensor *tx = NULL, *tw = NULL, *tb = NULL, *y = NULL, *grads[3] = {0};
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 2, sx, &tx));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 2, sw, &tw));
    CHECK_OK(xcs_graph_input(g, XCS_F64, 1, sb, &tb));
    CHECK_OK(program(tx, tw, tb, &y));
    const xcs_tensor *wrt[3] = {tx, tw, tb};
    CHECK_OK(xcs_graph_vjp(g, y, NULL, 3, wrt, grads));
    for (int k = 0; k < 3; k++) CHECK_OK(xcs_graph_output(g, grads[k]));
    CHECK_OK(xcs_graph_optimize(g));
    xcs_tensor *v[3] = {rand_f64(2, sx), rand_f64(2, sw), rand_f64(1, sb)}, *out[3] = {0};
    CHECK_OK(xcs_graph_run(g, 3, (const xcs_tensor *const *)v, out));
    for (int k = 0; k < 3; k++) {
        double *p = xcs_tensor_data(v[k]);
        for (int64_t i = 0; out[k] && i < xcs_tensor_numel(v[k]); i++) {
            double keep = p[i], h = 1e-6;
            p[i] = keep + h;
            double fp = eval(v);
            p[i] = keep - h;
            double fm = eval(v);
            p[i] = keep;
            CHECK_NEAR(xcs_tensor_get_f64(out[k], i), (fp - fm) / (2 * h), 1e-6);
        }
    }
    /* a second request on the same graph: a seed, an argument with no path */
    xcs_tensor *seed2 = NULL, *g2 = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F64, 3.0, &seed2));
    xcs_graph *h = NULL;
    xcs_tensor *hx = NULL, *hz = NULL, *hy = NULL;
    CHECK_OK(xcs_graph_new(&h));
    CHECK_OK(xcs_graph_input(h, XCS_F64, 1, sb, &hx));
    CHECK_OK(xcs_graph_input(h, XCS_F64, 1, sb, &hz));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, hx, 1u, false, &hy));
    const xcs_tensor *wz[1] = {hz};
    CHECK_OK(xcs_graph_vjp(h, hy, seed2, 1, wz, &g2));
    CHECK(g2 && !g2->graph && xcs_tensor_get_f64(g2, 0) == 0.0 && xcs_tensor_get_f64(g2, 1) == 0.0);
    CHECK_ERR(xcs_graph_vjp(h, hx, NULL, 1, (const xcs_tensor *const *)&tx, &g2), XCS_ERR_VALUE, "argument 0");
    xcs_tensor_free(g2);
    xcs_tensor_free(seed2); xcs_tensor_free(hx); xcs_tensor_free(hz); xcs_tensor_free(hy);
    xcs_graph_free(h);
    for (int k = 0; k < 3; k++) { xcs_tensor_free(v[k]); xcs_tensor_free(out[k]); xcs_tensor_free(grads[k]); }
    xcs_tensor_free(tx); xcs_tensor_free(tw); xcs_tensor_free(tb); xcs_tensor_free(y);
    xcs_graph_free(g);
}

static void test_scatter_add(void) {
    const int64_t n = 6, m = 5;
    xcs_tensor *idx = NULL, *src = NULL, *out = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_I64, 1, &m, &idx));
    CHECK_OK(xcs_tensor_empty(XCS_F32, 1, &m, &src));
    const int64_t iv[5] = {4, 0, 4, 5, 0};
    const float sv[5] = {1.5f, 2.0f, 0.25f, -1.0f, 3.0f};
    for (int i = 0; i < 5; i++) {
        ((int64_t *)xcs_tensor_data(idx))[i] = iv[i];
        ((float *)xcs_tensor_data(src))[i] = sv[i];
    }
    CHECK_OK(xcs_scatter_add(idx, src, n, &out));
    const double want[6] = {5.0, 0, 0, 0, 1.75, -1.0};
    for (int i = 0; out && i < 6; i++) CHECK_NEAR(xcs_tensor_get_f64(out, i), want[i], 0);
    xcs_tensor_free(out);
    out = NULL;
    ((int64_t *)xcs_tensor_data(idx))[3] = 6;
    CHECK_ERR(xcs_scatter_add(idx, src, n, &out), XCS_ERR_INDEX, "out of bounds");
    CHECK_ERR(xcs_scatter_add(src, src, n, &out), XCS_ERR_TYPE, "integers");
    xcs_tensor_free(idx); xcs_tensor_free(src);
}

int main(void) {
    if (xcs_host_init()) return 1;
    RUN(test_vjp_matches_finite_differences);
    RUN(test_scatter_add);
    return check_report();
}
