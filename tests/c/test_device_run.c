/* test_device_run.c — core's device path (xcs_graph_run_on, device
 * storage, xcs_tensor_to, host fallback, row chains) on any machine,
 * through the mock device of mock_device.h.  A graph run on the mock device
 * must equal the same graph run on the CPU, leave its outputs on the device,
 * upload each host input and constant once, run the ops without device
 * kernels (take, argmax) on the host, hand row chains to the backend whole,
 * and free every device block it made. */
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
        long up0 = n_up, down0 = n_down, wrong0 = n_wrong_device;
        check_device_equals_cpu(g, 2, in, din, 2e-6);
        /* uploads: x (and w), the constant c, the host ops' values; downloads:
         * the host ops' operands, and the NOUT outputs checked */
        CHECK(n_up - up0 >= (trial == 2 ? 4 : 5));
        CHECK(n_down - down0 >= NOUT + 2);
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
    CHECK_ERR(xcs_binary(XCS_OP_ADD, ad, b, &bad), XCS_ERR_VALUE, "different devices");
    xcs_tensor *idx = NULL;
    CHECK_OK(xcs_arange(0, 2, 1, XCS_I64, &idx));
    CHECK_ERR(xcs_take(ad, idx, 0, &bad), XCS_ERR_UNSUPPORTED, "no device kernel");
    CHECK_ERR(xcs_argreduce(XCS_OP_ARGMAX, ad, 0, false, &bad), XCS_ERR_UNSUPPORTED, "no kernel");
    /* a device-to-device move is through the host, a same-place move a view */
    xcs_tensor *same = NULL;
    CHECK_OK(xcs_tensor_to(ad, XCS_DEVICE_CUDA, 0, &same));
    CHECK(same && same->storage == ad->storage);
    xcs_tensor *f[] = {a, b, ad, bd, sum, h, idx, same};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
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

int main(void) {
    if (xcs_host_init()) return 1;
    if (mock_register()) return 1;
    RUN(test_graph_on_device_equals_cpu);
    RUN(test_eager_ops_and_errors_on_device);
    RUN(test_row_chains);
    return check_report();
}
