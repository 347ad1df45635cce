/* test_cuda_scan.c — scan's device-side loop (xcs_backend.run_scan): a
 * step that is one elementwise fused program runs as one kernel whose
 * threads keep the carries in registers (codegen.h: xcs_cuda_scan_codegen).
 *
 * Without a GPU: core's loops run on the mock device of mock_device.h, and
 * its run_scan hook builds the real module's spec and arguments
 * (xcs_cuda_scan_spec_of), generates the kernel, compiles it with NVRTC
 * (when present) and runs the same source on the host (kernel_host.h),
 * threads one after another.  Every loop must equal the CPU's step loop
 * (xcs_graph_scan): forwards and reversed, float32 / int32 / float16 /
 * bool values, several carries, broadcast rows and constants, a carry that
 * is also a y, hoisted values (xcs_scan_program).  Loops that do not fit
 * the kernel (a matmul, a reduction, a carry passed through or transposed)
 * must not reach it and still be right; an integer division by zero in the
 * kernel must come back as the step loop's error naming the step; and
 * XCS_SCAN_KERNEL=0 turns the kernel off. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "check.h"
#include "codegen.h"
#include "fake_cuda.h"
#include "graph_prog.h"
#include "kernel_build.h"
#include "mock_device.h"
#include "nvrtc.h"
#include "scan_cases.h"
#include "xcs_host.h"

/* ---------------------------------------------------------------- the kernel on the host */

static xcs_nvrtc *nv;
static bool host_ok;
static int nvrtc_compiled, host_launches;

typedef struct compiled {
    uint64_t hash;
    xcs_kernel_host *k;
} compiled;
static compiled kernels[32];
static int n_kernels;

/* The kernel of source src: compiled once (and checked with NVRTC). */
static xcs_kernel_host *kernel_of(const char *src) {
    uint64_t h = xcs_cuda_source_hash(src);
    for (int i = 0; i < n_kernels; i++)
        if (kernels[i].hash == h) return kernels[i].k;
    xcs_kernel_host *k = kernel_build(nv, &nvrtc_compiled, src, "scan_loop.cu", "xcs_scan_args", 0);
    if (k && n_kernels < (int)(sizeof kernels / sizeof kernels[0])) kernels[n_kernels++] = (compiled){h, k};
    else xcs_kernel_host_free(k), k = NULL;
    return k;
}

/* mock_scan_hook: the module's spec and arguments for the loop, its kernel
 * generated and run on the host over the mock's memory (device addresses
 * turned back into host ones), its fault word read as the runtime reads it. */
static xcs_status host_scan(const xcs_scan_loop *sl) {
    xcs_cuda_scan_spec ss;
    xcs_cuda_scan_args a;
    int dev = 0;
    xcs_status st = xcs_cuda_scan_spec_of(sl, &ss, &a, &dev);
    if (st) return st;
    CHECK_EQ_I(dev, 0);
    char *src = xcs_cuda_scan_codegen_alloc(&ss);
    if (!src) return xcs_last_status();
    xcs_kernel_host *k = kernel_of(src);
    free(src);
    if (!k) return xcs_error(XCS_ERR_INTERNAL, "the scan kernel did not compile on the host");
    for (int i = 0; i < XCS_FUSED_MAX_IO; i++) {
        if (a.in[i]) a.in[i] = dev_to_host(a.in[i]);
        if (a.out[i]) a.out[i] = dev_to_host(a.out[i]);
    }
    for (int q = 0; q < XCS_SCAN_MAX_CARRY; q++) {
        if (a.carry_in[q]) a.carry_in[q] = dev_to_host(a.carry_in[q]);
        if (a.carry_out[q]) a.carry_out[q] = dev_to_host(a.carry_out[q]);
    }
    unsigned err = 0;
    a.err = &err;
    long long blocks = (a.n + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
    if (blocks > 2) blocks = 2; /* fewer blocks than elements need: the grid-stride loop covers the rest */
    st = xcs_kernel_host_launch(k, 0, &a, (unsigned)blocks, XCS_CUDA_BLOCK);
    host_launches++;
    if (!st && (err & 1u)) return xcs_error(XCS_ERR_ZERO_DIV, "integer division by zero in a fused CUDA kernel");
    if (!st && (err & 2u)) return xcs_error(XCS_ERR_VALUE, "a negative integer power in a CUDA kernel");
    return st;
}

/* The case on the mock device, with the mock's own loop (mode 0) and with
 * the generated kernel run on the host (mode 1), against the CPU's steps. */
static void run_case(const scan_case *c, int64_t T, bool rev) {
    xcs_tensor *want[8] = {0}, *got[8] = {0};
    const char *test = check_current;
    check_current = c->name;
    CHECK_OK(xcs_graph_scan(c->g, c->n_carry, T, rev, c->n_in, c->in, want));
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1 && !host_ok) continue;
        mock_scan_hook = mode ? host_scan : NULL;
        long s0 = n_scan_loops, wrong0 = n_wrong_device;
        int launches0 = host_launches;
        CHECK_OK(xcs_graph_scan_on(c->g, c->n_carry, T, rev, c->n_in, c->in, got, XCS_DEVICE_CUDA, 0));
        CHECK_EQ_I(n_scan_loops - s0, c->kernel && T > 0 ? 1 : 0);
        CHECK_EQ_I(host_launches - launches0, mode == 1 && c->kernel && T > 0 ? 1 : 0);
        CHECK_EQ_I(n_wrong_device, wrong0);
        for (int k = 0; k < c->n_out; k++) {
            expect_equal(c->name, got[k], want[k], c->tol);
            xcs_tensor_free(got[k]);
            got[k] = NULL;
        }
    }
    mock_scan_hook = NULL;
    for (int k = 0; k < c->n_out; k++) xcs_tensor_free(want[k]);
    check_current = test;
}

static void test_loops_equal_the_steps(void) {
    const int64_t lengths[3] = {1, 2, 23};
    for (int li = 0; li < 3; li++)
        for (int rev = 0; rev < 2; rev++)
            for (int which = 0; which < SCAN_CASES; which++) {
                pool p = {0};
                scan_case c;
                scan_case_make(which, &p, lengths[li], &c);
                run_case(&c, lengths[li], rev);
                xcs_graph_free(c.g);
                pool_free(&p);
            }
    CHECK_EQ_I(n_alloc, n_free);
}

/* A division by zero at step 13: the kernel's fault word sends the loop
 * back to the steps, whose error names the step. */
static void test_fault_names_the_step(void) {
    pool p = {0};
    scan_case c;
    case_int(&p, 20, &c, 13);
    xcs_tensor *got[2] = {0};
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1 && !host_ok) continue;
        mock_scan_hook = mode ? host_scan : NULL;
        int launches0 = host_launches;
        CHECK_ERR(xcs_graph_scan_on(c.g, 1, 20, false, 2, c.in, got, XCS_DEVICE_CUDA, 0), XCS_ERR_ZERO_DIV,
                  "scan step 13");
        CHECK(got[0] == NULL && got[1] == NULL);
        if (mode == 1) CHECK_EQ_I(host_launches - launches0, 1);
    }
    mock_scan_hook = NULL;
    xcs_graph_free(c.g);
    pool_free(&p);
    CHECK_EQ_I(n_alloc, n_free);
}

/* The part of a step that reads no carry is hoisted out (one batched
 * program); the rest, c' = 0.5 c + u with u = tanh(x) * 2 hoisted, is one
 * kernel reading u's rows. */
static void test_hoisted_rows(void) {
    const int64_t cs[1] = {130}, xs[2] = {31, 130};
    pool p = {0};
    xcs_graph *g = NULL;
    CHECK_OK(xcs_graph_new(&g));
    xcs_tensor *h = input(&p, g, XCS_F32, 1, cs), *x = input(&p, g, XCS_F32, 1, cs);
    xcs_tensor *u = bin(&p, XCS_OP_MUL, un(&p, XCS_OP_TANH, x), num(&p, 2.0));
    xcs_tensor *h2 = bin(&p, XCS_OP_ADD, bin(&p, XCS_OP_MUL, h, num(&p, 0.5)), u);
    CHECK_OK(xcs_graph_output(g, h2));
    CHECK_OK(xcs_graph_output(g, bin(&p, XCS_OP_SUB, h2, u)));
    xcs_scan_program *sp = NULL;
    CHECK_OK(xcs_scan_program_new(g, 1, 0, &sp));
    CHECK(sp && xcs_scan_program_hoisted(sp) >= 1);
    const xcs_tensor *in[2] = {keep(&p, random_f32(1, cs)), keep(&p, random_f32(2, xs))};
    for (int rev = 0; sp && rev < 2; rev++)
        for (int mode = 0; mode < 2; mode++) {
            if (mode == 1 && !host_ok) continue;
            mock_scan_hook = mode ? host_scan : NULL;
            xcs_tensor *want[2] = {0}, *got[2] = {0};
            long s0 = n_scan_loops;
            CHECK_OK(xcs_scan_program_run(sp, 31, rev, 2, in, want));
            CHECK_OK(xcs_scan_program_run_on(sp, 31, rev, 2, in, got, XCS_DEVICE_CUDA, 0));
            CHECK_EQ_I(n_scan_loops - s0, 1);
            for (int k = 0; k < 2; k++) {
                expect_equal("hoisted", got[k], want[k], 1e-6);
                xcs_tensor_free(want[k]);
                xcs_tensor_free(got[k]);
            }
        }
    mock_scan_hook = NULL;
    xcs_scan_program_free(sp);
    xcs_graph_free(g);
    pool_free(&p);
}

/* XCS_SCAN_KERNEL=0: the steps, one by one. */
static void test_switch_off(void) {
    pool p = {0};
    scan_case c;
    case_ema(&p, 5, &c);
    setenv("XCS_SCAN_KERNEL", "0", 1);
    c.kernel = false;
    run_case(&c, 5, false);
    unsetenv("XCS_SCAN_KERNEL");
    xcs_graph_free(c.g);
    pool_free(&p);
}

/* The codegen refuses a spec it cannot honour, with a reason. */
static void test_codegen_refusals(void) {
    xcs_fused_program prog;
    memset(&prog, 0, sizeof prog);
    prog.ndim = 1;
    prog.shape[0] = 8;
    prog.n_inputs = 2;
    prog.n_outputs = 2;
    prog.n_regs = 3;
    prog.instr[prog.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    prog.instr[prog.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_F32, XCS_F32};
    prog.instr[prog.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_ADD, 2, 0, 1, -1, XCS_F32, XCS_F32};
    prog.instr[prog.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 2, -1, -1, XCS_F32, XCS_F32};
    prog.instr[prog.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 2, -1, -1, XCS_F32, XCS_F32};
    xcs_cuda_scan_spec ss;
    memset(&ss, 0, sizeof ss);
    ss.base.p = &prog;
    ss.base.in_dtype[0] = ss.base.in_dtype[1] = ss.base.out_dtype[0] = ss.base.out_dtype[1] = XCS_F32;
    ss.n_carry = 1;
    ss.carry_dtype[0] = XCS_F32;
    ss.in_carry[0] = 0;
    ss.in_carry[1] = -1;
    ss.out_carry[0] = 0;
    ss.out_carry[1] = -1;
    ss.out_mem = 2u;
    char *src = xcs_cuda_scan_codegen_alloc(&ss);
    CHECK(src && strstr(src, "c0 = n0;") && strstr(src, "(t + a.dt) * a.in_step[1]") && strstr(src, "t * a.out_step[1]"));
    free(src);
    ss.out_carry[1] = 0; /* carry 0 made twice */
    CHECK(xcs_cuda_scan_codegen(&ss, NULL, 0) == 0 && strstr(xcs_last_error(), "made by 2 outputs"));
    ss.out_carry[1] = -1;
    ss.base.in_dtype[0] = XCS_F64; /* the carry read in another dtype */
    CHECK(xcs_cuda_scan_codegen(&ss, NULL, 0) == 0 && strstr(xcs_last_error(), "not carry 0's dtype"));
    ss.base.in_dtype[0] = XCS_F32;
    ss.n_carry = XCS_SCAN_MAX_CARRY + 1;
    CHECK(xcs_cuda_scan_codegen(&ss, NULL, 0) == 0 && strstr(xcs_last_error(), "carries"));
    ss.n_carry = 1;
    ss.out_carry[0] = -1; /* carry 0 never made */
    CHECK(xcs_cuda_scan_codegen(&ss, NULL, 0) == 0 && strstr(xcs_last_error(), "made by 0 outputs"));
}

int main(void) {
    if (xcs_host_init()) return 1;
    if (mock_register()) return 1;
    seed ^= xcs_fake_cuda_test_seed(); /* fresh inputs every run */
    if (xcs_nvrtc_open(&nv)) {
        printf("NVRTC not found (%s): the scan kernels are not compiled for a GPU here\n", xcs_last_error());
        nv = NULL;
    }
    host_ok = xcs_kernel_host_available();
    if (!host_ok) printf("no C++ compiler: the scan kernels do not run on the host here (the mock's loop still does)\n");
    RUN(test_codegen_refusals);
    RUN(test_loops_equal_the_steps);
    RUN(test_fault_names_the_step);
    RUN(test_hoisted_rows);
    RUN(test_switch_off);
    printf("scan kernels: %d compiled on the host, %d with NVRTC, %d launches\n", n_kernels, nvrtc_compiled,
           host_launches);
    for (int i = 0; i < n_kernels; i++) xcs_kernel_host_free(kernels[i].k);
    xcs_nvrtc_close(nv);
    return check_report();
}
