/* test_device_run.c — core's device path (xcs_graph_run_on, device
 * storage, xcs_tensor_to, host fallback) on any machine, through a mock
 * device backend registered as XCS_DEVICE_CUDA.
 *
 * The mock's "device addresses" are host addresses with a high bit flipped:
 * non-canonical on x86-64, so any host code that dereferences device memory
 * faults here, as it would with a real GPU.  Its kernels undo the flip and
 * run the CPU backend's kernels, after checking that every operand they are
 * handed lives on the device.  A graph run on the mock device must equal the
 * same graph run on the CPU, leave its outputs on the device, upload each
 * host input and constant once, run the ops without device kernels (take,
 * argmax) on the host, and free every device block it made. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "graph_prog.h"
#include "xcs_host.h"

#define FLIP ((uintptr_t)1 << 62)

static const xcs_backend *cpu;
static long n_alloc, n_free, n_up, n_down, n_wrong_device;

static void *dev_to_host(void *p) { return (void *)((uintptr_t)p ^ FLIP); }

/* A host alias of device tensor t (storage copied into *s). */
static void alias(const xcs_tensor *t, xcs_storage *s, xcs_tensor *h) {
    if (!t->storage || t->storage->device != XCS_DEVICE_CUDA || t->storage->device_index != 0) n_wrong_device++;
    *s = *t->storage;
    s->data = dev_to_host(s->data);
    s->device = XCS_DEVICE_CPU;
    *h = *t;
    h->storage = s;
}

static xcs_status m_alloc(int index, size_t nbytes, void **out) {
    if (index != 0) return xcs_error(XCS_ERR_VALUE, "mock device %d", index);
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p) return xcs_error(XCS_ERR_MEMORY, "mock device out of memory");
    n_alloc++;
    *out = dev_to_host(p);
    return XCS_OK;
}
static void m_free(int index, void *p) {
    (void)index;
    n_free++;
    free(dev_to_host(p));
}
static xcs_status m_upload(int index, void *dst, const void *src, size_t n) {
    (void)index;
    n_up++;
    memcpy(dev_to_host(dst), src, n);
    return XCS_OK;
}
static xcs_status m_download(int index, void *dst, const void *src, size_t n) {
    (void)index;
    n_down++;
    memcpy(dst, dev_to_host((void *)src), n);
    return XCS_OK;
}

#define MAXT 2 * XCS_FUSED_MAX_IO
static xcs_status m_elementwise(xcs_op op, int n, const xcs_tensor *const *in, xcs_dtype compute, xcs_tensor *out) {
    xcs_storage s[4];
    xcs_tensor h[4];
    const xcs_tensor *hp[3];
    for (int k = 0; k < n; k++) {
        alias(in[k], &s[k], &h[k]);
        hp[k] = &h[k];
    }
    alias(out, &s[3], &h[3]);
    return cpu->elementwise(op, n, hp, compute, &h[3]);
}
static xcs_status m_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out) {
    xcs_storage s[2];
    xcs_tensor h[2];
    alias(x, &s[0], &h[0]);
    alias(out, &s[1], &h[1]);
    return cpu->reduce(op, &h[0], axes, &h[1]);
}
static xcs_status m_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    xcs_storage s[3];
    xcs_tensor h[3];
    alias(a, &s[0], &h[0]);
    alias(b, &s[1], &h[1]);
    alias(out, &s[2], &h[2]);
    return cpu->matmul(&h[0], &h[1], &h[2]);
}
static xcs_status m_run_fused(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out) {
    xcs_storage s[MAXT];
    xcs_tensor h[MAXT];
    const xcs_tensor *ip[XCS_FUSED_MAX_IO];
    xcs_tensor *op[XCS_FUSED_MAX_IO];
    for (int k = 0; k < p->n_inputs; k++) {
        alias(in[k], &s[k], &h[k]);
        ip[k] = &h[k];
    }
    for (int k = 0; k < p->n_outputs; k++) {
        alias(out[k], &s[XCS_FUSED_MAX_IO + k], &h[XCS_FUSED_MAX_IO + k]);
        op[k] = &h[XCS_FUSED_MAX_IO + k];
    }
    return cpu->run_fused(p, ip, op);
}

static const xcs_backend mock = {
    .name = "mock-cuda",
    .device = XCS_DEVICE_CUDA,
    .elementwise = m_elementwise,
    .reduce = m_reduce,
    .matmul = m_matmul,
    .run_fused = m_run_fused,
    .alloc = m_alloc,
    .free = m_free,
    .upload = m_upload,
    .download = m_download,
};


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

int main(void) {
    if (xcs_host_init()) return 1;
    cpu = xcs_backend_for(XCS_DEVICE_CPU);
    if (xcs_backend_register(&mock)) return 1;
    RUN(test_graph_on_device_equals_cpu);
    RUN(test_eager_ops_and_errors_on_device);
    return check_report();
}
