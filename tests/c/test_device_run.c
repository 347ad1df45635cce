/* test_device_run.c — core's device path (xcs_graph_run_on, device
 * storage, xcs_tensor_to, host fallback, row chains) on any machine,
 * through the mock device of mock_device.h.  A graph run on the mock device
 * must equal the same graph run on the CPU, leave its outputs on the device,
 * upload each host input once per run and its constants once (kept with
 * the graph), run take (the indices
 * checked there) and argmax on the device, hand row chains to the backend whole,
 * and free every device block it made; graphs on float16/bfloat16 inputs
 * too (2-byte device blocks, 16-bit outputs left on the device); scan loops
 * run on the device (inputs up once, outputs left there). */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "graph_prog.h"
#include "mock_device.h"
#include "xcs_host.h"

static void test_graph_on_device_equals_cpu(void) {
    const int64_t xs[2] = {64, 48}, ws[2] = {48, 40};
    xcs_tensor *c = random_f32(1, &ws[1]);
    xcs_graph *g = program_graph(64, 48, 40, c);
    for (int trial = 0; trial < 3; trial++) {
        xcs_tensor *x = random_f32(2, xs), *w = random_f32(2, ws), *wd = NULL;
        const xcs_tensor *in[2] = {x, w}, *din[2] = {x, w};
        if (trial == 2) { /* w already on the device: read there, not uploaded again */
            CHECK_OK(xcs_tensor_to(w, XCS_DEVICE_CUDA, 0, &wd));
            din[1] = wd;
        }
        long up0 = n_up, down0 = n_down, wrong0 = n_wrong_device, take0 = n_take, checked0 = n_take_in_range;
        check_device_equals_cpu(g, 2, in, din, 2e-6);
        /* uploads: x (and w), and at the first run only the constants (c,
         * idx, 1.0: memory xcs made, so they cannot change, kept on the
         * device with the graph); downloads: only the NOUT outputs checked */
        CHECK_EQ_I(n_up - up0, trial == 0 ? 5 : trial == 1 ? 2 : 1);
        CHECK_EQ_I(n_down - down0, NOUT);
        /* its indices are a constant: checked on the host, the kernel not waited for */
        CHECK_EQ_I(n_take_in_range - checked0, 1);
        CHECK_EQ_I(n_take - take0, 0);
        CHECK_EQ_I(n_wrong_device, wrong0);
        xcs_tensor_free(x);
        xcs_tensor_free(w);
        xcs_tensor_free(wd);
    }
    xcs_tensor_free(c);
    xcs_graph_free(g);
    CHECK_EQ_I(n_alloc, n_free); /* every device block went back */
}

static void test_eager_ops_and_errors_on_device(void) {
    const int64_t s[2] = {3, 4};
    xcs_tensor *a = random_f32(2, s), *b = random_f32(2, s), *ad = NULL, *bd = NULL, *sum = NULL, *h = NULL, *bad = NULL;
    CHECK_OK(xcs_tensor_to(a, XCS_DEVICE_CUDA, 0, &ad));
    CHECK_OK(xcs_tensor_to(b, XCS_DEVICE_CUDA, 0, &bd));
    CHECK_OK(xcs_binary(XCS_OP_ADD, ad, bd, &sum)); /* a device op: its output on the device */
    CHECK(sum && sum->storage->device == XCS_DEVICE_CUDA);
    CHECK_OK(xcs_tensor_to(sum, XCS_DEVICE_CPU, 0, &h));
    for (int64_t i = 0; h && i < 12; i++)
        CHECK_NEAR(xcs_tensor_get_f64(h, i), xcs_tensor_get_f64(a, i) + xcs_tensor_get_f64(b, i), 1e-6);
    /* a host operand joins the device one (copied there), as in JAX; two
     * devices are an error */
    xcs_tensor *mixed = NULL, *mixedh = NULL, *other = NULL;
    long up0 = n_up;
    CHECK_OK(xcs_binary(XCS_OP_SUB, b, ad, &mixed));
    CHECK(mixed && mixed->storage->device == XCS_DEVICE_CUDA && n_up - up0 == 1);
    CHECK_OK(xcs_tensor_to(mixed, XCS_DEVICE_CPU, 0, &mixedh));
    for (int64_t i = 0; mixedh && i < 12; i++)
        CHECK_NEAR(xcs_tensor_get_f64(mixedh, i), xcs_tensor_get_f64(b, i) - xcs_tensor_get_f64(a, i), 1e-6);
    mock_devices = 2;
    CHECK_OK(xcs_tensor_to(b, XCS_DEVICE_CUDA, 1, &other));
    CHECK_ERR(xcs_binary(XCS_OP_ADD, ad, other, &bad), XCS_ERR_VALUE, "different devices");
    const xcs_tensor *two[2] = {ad, other};
    CHECK_ERR(xcs_concat(2, two, 0, &bad), XCS_ERR_VALUE, "different devices");
    xcs_tensor_free(other);
    mock_devices = 1;
    xcs_tensor *idx = NULL, *idxd = NULL, *tk = NULL, *tkh = NULL, *tk2 = NULL, *tk2h = NULL, *cat = NULL, *cath = NULL;
    CHECK_OK(xcs_arange(-2, 3, 1, XCS_I64, &idx)); /* -2 .. 2: negative ones count from the end */
    CHECK_OK(xcs_take(ad, idx, 0, &tk2)); /* host indices: copied to the device, checked by the kernel */
    CHECK(tk2 && tk2->storage->device == XCS_DEVICE_CUDA);
    CHECK_OK(xcs_tensor_to(tk2, XCS_DEVICE_CPU, 0, &tk2h));
    for (int64_t i = 0; tk2h && i < 5; i++)
        for (int64_t j = 0; j < 4; j++)
            CHECK_NEAR(xcs_tensor_get_f64(tk2h, i * 4 + j), xcs_tensor_get_f64(a, ((i + 1) % 3) * 4 + j), 0);
    CHECK_OK(xcs_tensor_to(idx, XCS_DEVICE_CUDA, 0, &idxd));
    CHECK_OK(xcs_take(ad, idxd, 1, &tk)); /* on the device: a's columns 2 3 0 1 2 */
    CHECK(tk && tk->storage->device == XCS_DEVICE_CUDA && tk->shape[0] == 3 && tk->shape[1] == 5);
    CHECK_OK(xcs_tensor_to(tk, XCS_DEVICE_CPU, 0, &tkh));
    for (int64_t i = 0; tkh && i < 3; i++)
        for (int64_t j = 0; j < 5; j++)
            CHECK_NEAR(xcs_tensor_get_f64(tkh, i * 5 + j), xcs_tensor_get_f64(a, i * 4 + (j + 2) % 4), 0);
    xcs_tensor *far = NULL, *fard = NULL; /* -4 on an axis of 3 */
    CHECK_OK(xcs_arange(-4, -2, 1, XCS_I64, &far));
    CHECK_OK(xcs_tensor_to(far, XCS_DEVICE_CUDA, 0, &fard));
    CHECK_ERR(xcs_take(ad, fard, 0, &bad), XCS_ERR_INDEX, "out of bounds for axis 0 with size 3");
    const xcs_tensor *parts[2] = {ad, bd};
    CHECK_OK(xcs_concat(2, parts, 1, &cat)); /* into strided slabs of the result, on the device */
    CHECK(cat && cat->storage->device == XCS_DEVICE_CUDA);
    CHECK_OK(xcs_tensor_to(cat, XCS_DEVICE_CPU, 0, &cath));
    for (int64_t i = 0; cath && i < 3; i++)
        for (int64_t j = 0; j < 8; j++)
            CHECK_NEAR(xcs_tensor_get_f64(cath, i * 8 + j), xcs_tensor_get_f64(j < 4 ? a : b, i * 4 + j % 4), 0);
    xcs_tensor *am = NULL, *amh = NULL, *amc = NULL;
    CHECK_OK(xcs_argreduce(XCS_OP_ARGMIN, ad, 1, false, &am)); /* on the device */
    CHECK(am && am->storage->device == XCS_DEVICE_CUDA);
    CHECK_OK(xcs_tensor_to(am, XCS_DEVICE_CPU, 0, &amh));
    CHECK_OK(xcs_argreduce(XCS_OP_ARGMIN, a, 1, false, &amc));
    for (int64_t i = 0; amh && amc && i < 3; i++) CHECK_EQ_I(xcs_tensor_get_f64(amh, i), xcs_tensor_get_f64(amc, i));
    /* a device-to-device move is through the host, a same-place move a view */
    xcs_tensor *same = NULL;
    CHECK_OK(xcs_tensor_to(ad, XCS_DEVICE_CUDA, 0, &same));
    CHECK(same && same->storage == ad->storage);
    xcs_tensor *f[] = {a,   b,    ad,   bd,  sum, h,  mixed, mixedh, idx, idxd, far, fard,
                       tk2, tk2h, tk,   tkh, cat, cath, am,   amh,    amc, same};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

/* A graph's take with its indices passed from the host: up to 65536 of
 * them are checked on the host (take_in_range: the kernel not waited
 * for), more by the kernel (take); an index out of range either way is
 * the same XCSIndexError, and the values are the CPU's. */
static void test_take_indices_checked_where_cheaper(void) {
    const int64_t xs[2] = {10, 4}, counts[2] = {1000, 70000};
    for (int t = 0; t < 2; t++) {
        xcs_graph *g = NULL;
        xcs_tensor *tx = NULL, *ti = NULL, *ty = NULL;
        CHECK_OK(xcs_graph_new(&g));
        CHECK_OK(xcs_graph_input(g, XCS_F32, 2, xs, &tx));
        CHECK_OK(xcs_graph_input(g, XCS_I64, 1, &counts[t], &ti));
        CHECK_OK(xcs_take(tx, ti, 0, &ty));
        CHECK_OK(xcs_graph_output(g, ty));
        CHECK_OK(xcs_graph_optimize(g));
        xcs_tensor *x = random_f32(2, xs), *idx = NULL;
        CHECK_OK(xcs_tensor_empty(XCS_I64, 1, &counts[t], &idx));
        int64_t *p = xcs_tensor_data(idx);
        for (int64_t i = 0; i < counts[t]; i++) p[i] = (i * 7919) % 20 - 10; /* -10 .. 9 */
        const xcs_tensor *in[2] = {x, idx};
        long fast0 = n_take_in_range, checked0 = n_take;
        check_device_equals_cpu(g, 2, in, in, 0);
        CHECK_EQ_I(n_take_in_range - fast0, t == 0 ? 1 : 0);
        CHECK_EQ_I(n_take - checked0, t == 0 ? 0 : 1);
        p[counts[t] - 1] = 10; /* out of range */
        xcs_tensor *out = NULL;
        CHECK_ERR(xcs_graph_run_on(g, XCS_DEVICE_CUDA, 0, 2, in, &out), XCS_ERR_INDEX,
                  "out of bounds for axis 0 with size 10");
        xcs_tensor_free(out);
        xcs_tensor *f[] = {tx, ti, ty, x, idx};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
        xcs_graph_free(g);
    }
}

/* softmax and layer norm rows, large enough for the planner's row chains:
 * run as chains (the mock's run_rows), equal to the CPU's runs */
static void test_row_chains(void) {
    const int64_t s[2] = {4096, 96};
    xcs_status (*progs[2])(const xcs_tensor *, xcs_tensor **) = {softmax_rows, layer_norm_rows};
    for (int k = 0; k < 2; k++) {
        xcs_graph *g = one_input_graph(s, progs[k]);
        xcs_tensor *h = random_f32(2, s);
        const xcs_tensor *in[1] = {h};
        long chains0 = n_row_chains, wrong0 = n_wrong_device;
        check_device_equals_cpu(g, 1, in, in, 2e-6);
        CHECK(n_row_chains > chains0);
        CHECK_EQ_I(n_wrong_device, wrong0);
        xcs_tensor_free(h);
        xcs_graph_free(g);
    }
    CHECK_EQ_I(n_alloc, n_free);
}

/* softmax(tanh(x @ w)) and its cast to the other 16-bit type, for float16
 * and bfloat16 x, w: the device run equals the CPU's, in the same dtypes */
static void test_half_graph_on_device(void) {
    const int64_t xs[2] = {32, 24}, ws[2] = {24, 16};
    for (int h = 0; h < 2; h++) {
        xcs_dtype dt = h ? XCS_BF16 : XCS_F16;
        xcs_graph *g = NULL;
        xcs_tensor *tx = NULL, *tw = NULL, *mm = NULL, *t = NULL, *y[2] = {0};
        CHECK_OK(xcs_graph_new(&g));
        CHECK_OK(xcs_graph_input(g, dt, 2, xs, &tx));
        CHECK_OK(xcs_graph_input(g, dt, 2, ws, &tw));
        CHECK_OK(xcs_matmul(tx, tw, &mm));
        CHECK_OK(xcs_unary(XCS_OP_TANH, mm, &t));
        CHECK_OK(xcs_softmax(t, -1, &y[0]));
        CHECK_OK(xcs_cast(y[0], h ? XCS_F16 : XCS_BF16, &y[1]));
        for (int i = 0; i < 2; i++) CHECK_OK(xcs_graph_output(g, y[i]));
        CHECK_OK(xcs_graph_optimize(g));
        xcs_tensor *x32 = random_f32(2, xs), *w32 = random_f32(2, ws), *x = NULL, *w = NULL;
        CHECK_OK(xcs_cast(x32, dt, &x));
        CHECK_OK(xcs_cast(w32, dt, &w));
        const xcs_tensor *in[2] = {x, w};
        long wrong0 = n_wrong_device;
        /* the same CPU kernels, but the device plan may split groups where
         * the host's fuses (a float32 ulp can tip a 16-bit rounding) */
        check_device_equals_cpu(g, 2, in, in, h ? 8e-3 : 1e-3);
        CHECK_EQ_I(n_wrong_device, wrong0);
        xcs_tensor *f[] = {tx, tw, mm, t, y[0], y[1], x32, w32, x, w};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
        xcs_graph_free(g);
    }
    CHECK_EQ_I(n_alloc, n_free);
}

/* An RNN cell h' = tanh(h @ W + x @ U + b), y = sum(h' * h'), as a scan body:
 * carry h [H], x a row of xs [T, X]. */
static xcs_graph *rnn_body(const xcs_tensor *W, const xcs_tensor *U, const xcs_tensor *b, bool optimize) {
    const int64_t hs[1] = {W->shape[0]}, xs[1] = {U->shape[0]};
    xcs_graph *g = NULL;
    xcs_tensor *h = NULL, *x = NULL, *hw = NULL, *xu = NULL, *s = NULL, *s2 = NULL, *h2 = NULL, *sq = NULL, *y = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, hs, &h));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, xs, &x));
    CHECK_OK(xcs_matmul(h, W, &hw));
    CHECK_OK(xcs_matmul(x, U, &xu));
    CHECK_OK(xcs_binary(XCS_OP_ADD, hw, xu, &s));
    CHECK_OK(xcs_binary(XCS_OP_ADD, s, b, &s2));
    CHECK_OK(xcs_unary(XCS_OP_TANH, s2, &h2));
    CHECK_OK(xcs_binary(XCS_OP_MUL, h2, h2, &sq));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, sq, 1u, false, &y));
    CHECK_OK(xcs_graph_output(g, h2));
    CHECK_OK(xcs_graph_output(g, y));
    if (optimize) CHECK_OK(xcs_graph_optimize(g));
    xcs_tensor *f[] = {h, x, hw, xu, s, s2, h2, sq, y};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    return g;
}

static void expect_close(const xcs_tensor *got_dev, const xcs_tensor *want, double tol) {
    xcs_tensor *h = NULL;
    CHECK(got_dev && got_dev->storage->device == XCS_DEVICE_CUDA); /* left on the device */
    if (got_dev) CHECK_OK(xcs_tensor_to(got_dev, XCS_DEVICE_CPU, 0, &h));
    CHECK(h && want && xcs_tensor_numel(h) == xcs_tensor_numel(want));
    for (int64_t i = 0; h && want && i < xcs_tensor_numel(want); i++)
        CHECK_NEAR(xcs_tensor_get_f64(h, i), xcs_tensor_get_f64(want, i), tol * (1 + fabs(xcs_tensor_get_f64(want, i))));
    xcs_tensor_free(h);
}

/* scan on the device: the plain loop (xcs_graph_scan_on) and the compiled
 * program with its hoisted x @ U (xcs_scan_program_run_on), forwards and
 * reversed, equal the CPU's; the inputs go up once (not once a step), the
 * outputs stay on the device, and no host code reads device memory. */
static void test_scan_on_device(void) {
    const int64_t H = 12, X = 5, T = 37, ws[2] = {12, 12}, us[2] = {5, 12}, bs[1] = {12}, xss[2] = {37, 5};
    xcs_tensor *W = random_f32(2, ws), *U = random_f32(2, us), *b = random_f32(1, bs);
    xcs_tensor *h0 = random_f32(1, &H), *xs = random_f32(2, xss);
    (void)X, (void)T;
    const xcs_tensor *in[2] = {h0, xs};
    for (int prog = 0; prog < 2; prog++)
        for (int rev = 0; rev < 2; rev++) {
            xcs_graph *g = rnn_body(W, U, b, prog == 0);
            xcs_scan_program *sp = NULL;
            if (prog) CHECK_OK(xcs_scan_program_new(g, 1, 0, &sp));
            xcs_tensor *want[2] = {0}, *got[2] = {0};
            if (prog) CHECK_OK(xcs_scan_program_run(sp, T, rev, 2, in, want));
            else CHECK_OK(xcs_graph_scan(g, 1, T, rev, 2, in, want));
            long up0 = n_up, wrong0 = n_wrong_device;
            if (prog) CHECK_OK(xcs_scan_program_run_on(sp, T, rev, 2, in, got, XCS_DEVICE_CUDA, 0));
            else CHECK_OK(xcs_graph_scan_on(g, 1, T, rev, 2, in, got, XCS_DEVICE_CUDA, 0));
            CHECK(n_up - up0 <= 8); /* h0, xs, W, U, b (and a hoisted value): not per step */
            CHECK_EQ_I(n_wrong_device, wrong0);
            for (int k = 0; k < 2; k++) expect_close(got[k], want[k], 1e-5);
            CHECK(got[1] && got[1]->ndim == 1 && got[1]->shape[0] == T);
            for (int k = 0; k < 2; k++) {
                xcs_tensor_free(want[k]);
                xcs_tensor_free(got[k]);
            }
            xcs_scan_program_free(sp);
            xcs_graph_free(g);
        }
    xcs_tensor *f[] = {W, U, b, h0, xs};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
    CHECK_EQ_I(n_alloc, n_free);
}

int main(void) {
    if (xcs_host_init()) return 1;
    if (mock_register()) return 1;
    RUN(test_graph_on_device_equals_cpu);
    RUN(test_eager_ops_and_errors_on_device);
    RUN(test_take_indices_checked_where_cheaper);
    RUN(test_row_chains);
    RUN(test_half_graph_on_device);
    RUN(test_scan_on_device);
    return check_report();
}
