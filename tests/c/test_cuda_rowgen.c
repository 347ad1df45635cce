/* test_cuda_rowgen.c — the CUDA row-chain kernels of real programs compile
 * with NVRTC (no GPU needed: label c, in CI).  Softmax and layer-norm rows
 * of several widths, and a chain with a broadcast weight and an integer
 * program, run on the mock device (mock_device.h); each chain core hands
 * the backend is turned into the row kernel's spec as the CUDA backend
 * would launch it, generated and compiled for sm_90, and the chain's values
 * are checked against the CPU's.  A softmax row chain over a float16 input
 * (values kept in float32, the result stored as float16 and bfloat16) is
 * built by hand and compiled too.  Exits 77 (a CTest skip) without NVRTC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "codegen.h"
#include "graph_prog.h"
#include "mock_device.h"
#include "nvrtc.h"
#include "xcs_host.h"

_Static_assert(MOCK_EIGVALSH_MAX_ROWS == XCS_CUDA_EIGVALSH_MAX_ROWS && MOCK_SVDVALS_MAX_ROWS == XCS_CUDA_SVDVALS_MAX_ROWS,
               "the mock device keeps the CUDA module's limits");

static xcs_nvrtc *nv;
static int compiled, unsupported;
/* (spec hash, source hash) of every chain compiled: the cache key must
 * tell apart exactly the chains whose sources differ */
static uint64_t keys[64][2];
static int n_keys;

static void compile_chain(const xcs_row_chain *rc) {
    xcs_cuda_row_spec rs;
    xcs_cuda_row_args args;
    bool checked;
    int dev;
    xcs_status st = xcs_cuda_row_spec_of(rc, &rs, &args, &checked, &dev);
    if (st == XCS_ERR_UNSUPPORTED) {
        unsupported++;
        for (int g = 0; getenv("XCS_TEST_VERBOSE") && g < rc->n; g++)
            fprintf(stderr, "  unsupported chain: program %d ndim %d shape %lld x %lld axes %u\n", g, rc->prog[g]->ndim,
                    (long long)rc->prog[g]->shape[0], (long long)rc->prog[g]->shape[1], rc->prog[g]->reduce_axes);
        return;
    }
    CHECK_OK(st);
    char *src = xcs_cuda_row_codegen_alloc(&rs);
    CHECK(src != NULL);
    if (src && n_keys < 64) {
        keys[n_keys][0] = xcs_cuda_row_spec_hash(&rs);
        keys[n_keys++][1] = xcs_cuda_source_hash(src);
    }
    char *img = NULL;
    size_t size = 0;
    bool cubin = false;
    if (src) {
        xcs_status cs = xcs_nvrtc_compile(nv, src, "row_chain.cu", 90, true, &img, &size, &cubin);
        if (cs || (getenv("XCS_TEST_VERBOSE") && compiled == 2)) fprintf(stderr, "row chain source:\n%s\n", strstr(src, "struct xcs_row_args"));
        CHECK_OK(cs);
        compiled += cs == XCS_OK;
    }
    free(img);
    free(src);
}

/* x * w (w a broadcast row of weights) + the row max, cast to int32 and
 * halved with an integer floor division: a chain with a per-column
 * external, a row value and an integer program. */
static xcs_status mixed_chain(const xcs_tensor *x, const xcs_tensor *w, xcs_tensor **out) {
    xcs_tensor *xw = NULL, *m = NULL, *sm = NULL, *i = NULL, *two = NULL;
    xcs_status st;
    if (!(st = xcs_binary(XCS_OP_MUL, x, w, &xw)) && !(st = xcs_reduce(XCS_OP_MAX, xw, 2u, true, &m)) &&
        !(st = xcs_binary(XCS_OP_ADD, xw, m, &sm)) && !(st = xcs_cast(sm, XCS_I32, &i)) &&
        !(st = xcs_tensor_scalar_i64(XCS_I32, 2, &two)))
        st = xcs_binary(XCS_OP_FLOOR_DIV, i, two, out);
    xcs_tensor *f[] = {xw, m, sm, i, two};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) xcs_tensor_free(f[k]);
    return st;
}

static void test_real_chains_compile(void) {
    const int64_t sizes[][2] = {{4096, 96}, {2048, 1000}, {1100, 4096}, {600, 8192}};
    xcs_status (*progs[2])(const xcs_tensor *, xcs_tensor **) = {softmax_rows, layer_norm_rows};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (int k = 0; k < 2; k++) {
            xcs_graph *g = one_input_graph(sizes[z], progs[k]);
            xcs_tensor *h = random_f32(2, sizes[z]);
            const xcs_tensor *in[1] = {h};
            check_device_equals_cpu(g, 1, in, in, 2e-6);
            xcs_tensor_free(h);
            xcs_graph_free(g);
        }
    const int64_t xs[2] = {5000, 200}, ws[1] = {200};
    xcs_graph *g = NULL;
    xcs_tensor *tx = NULL, *tw = NULL, *ty = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 2, xs, &tx));
    CHECK_OK(xcs_graph_input(g, XCS_F32, 1, ws, &tw));
    CHECK_OK(mixed_chain(tx, tw, &ty));
    CHECK_OK(xcs_graph_output(g, ty));
    CHECK_OK(xcs_graph_optimize(g));
    xcs_tensor *hx = random_f32(2, xs), *hw = random_f32(1, ws);
    const xcs_tensor *in[2] = {hx, hw};
    check_device_equals_cpu(g, 2, in, in, 0);
    xcs_tensor *f[] = {hx, hw, tx, tw, ty};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) xcs_tensor_free(f[k]);
    xcs_graph_free(g);
    printf("%d row-chain kernels compiled, %d chains without one\n", compiled, unsupported);
    int distinct = 0;
    for (int i = 0; i < n_keys; i++) {
        bool first = true;
        for (int j = 0; j < i; j++) {
            CHECK((keys[i][0] == keys[j][0]) == (keys[i][1] == keys[j][1]));
            first &= keys[i][1] != keys[j][1];
        }
        distinct += first;
    }
    CHECK(distinct >= 3); /* softmax, layer norm and the mixed chain at least */
    CHECK(compiled >= 9);
}

/* softmax rows of a float16 x [R, C], as core's row chain would hold it:
 *   program 0: m = max(x) per row (x loaded into float32)
 *   program 1: e = exp(x - m), s = sum(e) per row (e kept, float32)
 *   program 2: y = e / s stored as float16 and bfloat16 (and the row max as
 *              float16, written from a per-row program) */
static void test_half_chain_compiles(void) {
    static xcs_fused_program p0, p1, p2, p3;
    static const xcs_cuda_row_spec zero;
    xcs_cuda_row_spec rs = zero;
    const int64_t R = 512, C = 1000;
    xcs_fused_program *ps[4] = {&p0, &p1, &p2, &p3};
    for (int g = 0; g < 4; g++) {
        memset(ps[g], 0, sizeof *ps[g]);
        ps[g]->ndim = 2, ps[g]->shape[0] = R, ps[g]->shape[1] = g == 3 ? 1 : C;
    }
    p0.n_inputs = 1, p0.n_outputs = 1, p0.n_regs = 1, p0.reduce_axes = 2u;
    p0.instr[p0.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    p0.instr[p0.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, XCS_OP_MAX, 0, 0, -1, -1, XCS_F32, XCS_F32};
    p1.n_inputs = 2, p1.n_outputs = 2, p1.n_regs = 5, p1.reduce_axes = 2u;
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F16, XCS_F16};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_COPY, 1, 0, -1, -1, XCS_F32, XCS_F16};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 2, 1, -1, -1, XCS_F32, XCS_F32};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_SUB, 3, 1, 2, -1, XCS_F32, XCS_F32};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_EXP, 4, 3, -1, -1, XCS_F32, XCS_F32};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 4, -1, -1, XCS_F32, XCS_F32};
    p1.instr[p1.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, XCS_OP_SUM, 1, 4, -1, -1, XCS_F32, XCS_F32};
    p2.n_inputs = 2, p2.n_outputs = 2, p2.n_regs = 3;
    p2.instr[p2.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    p2.instr[p2.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_F32, XCS_F32};
    p2.instr[p2.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_DIV, 2, 0, 1, -1, XCS_F32, XCS_F32};
    p2.instr[p2.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 2, -1, -1, XCS_F16, XCS_F16};
    p2.instr[p2.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 2, -1, -1, XCS_BF16, XCS_BF16};
    p3.n_inputs = 1, p3.n_outputs = 1, p3.n_regs = 1; /* the row max, per row, as float16 */
    p3.instr[p3.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    p3.instr[p3.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 0, -1, -1, XCS_F16, XCS_F16};
    rs.n = 4;
    rs.per = (int)((C + 255) / 256);
    for (int g = 0; g < 4; g++) rs.prog[g] = ps[g];
    rs.n_ext = 1, rs.ext_kind[0] = 0, rs.ext_dtype[0] = XCS_F16;
    /* values: 0 m (row), 1 e, 2 s (row), 3 y16, 4 ybf16, 5 m16 (row) */
    static const xcs_dtype vdt[6] = {XCS_F32, XCS_F32, XCS_F32, XCS_F16, XCS_BF16, XCS_F16};
    rs.n_values = 6;
    for (int v = 0; v < 6; v++) rs.value_dtype[v] = vdt[v];
    rs.value_scalar[0] = rs.value_scalar[2] = rs.value_scalar[5] = true;
    rs.value_read[0] = rs.value_read[1] = rs.value_read[2] = true;
    rs.prog_scalar[3] = true;
    rs.in_src[0][0] = -1, rs.in_dtype[0][0] = XCS_F16;
    rs.out_value[0][0] = 0, rs.out_slot[0][0] = -1, rs.out_dtype[0][0] = XCS_F32;
    rs.in_src[1][0] = -1, rs.in_dtype[1][0] = XCS_F16;
    rs.in_src[1][1] = 0, rs.in_dtype[1][1] = XCS_F32;
    rs.out_value[1][0] = 1, rs.out_slot[1][0] = -1, rs.out_dtype[1][0] = XCS_F32;
    rs.out_value[1][1] = 2, rs.out_slot[1][1] = -1, rs.out_dtype[1][1] = XCS_F32;
    rs.in_src[2][0] = 1, rs.in_dtype[2][0] = XCS_F32;
    rs.in_src[2][1] = 2, rs.in_dtype[2][1] = XCS_F32;
    rs.out_value[2][0] = 3, rs.out_slot[2][0] = 0, rs.out_dtype[2][0] = XCS_F16;
    rs.out_value[2][1] = 4, rs.out_slot[2][1] = 1, rs.out_dtype[2][1] = XCS_BF16;
    rs.in_src[3][0] = 0, rs.in_dtype[3][0] = XCS_F32;
    rs.out_value[3][0] = 5, rs.out_slot[3][0] = 2, rs.out_dtype[3][0] = XCS_F16;
    rs.n_out = 3;
    char *src = xcs_cuda_row_codegen_alloc(&rs);
    CHECK(src != NULL);
    if (!src) return;
    CHECK(strstr(src, "xcs_h ext0[") != NULL); /* the float16 row, loaded once */
    char *img = NULL;
    size_t size = 0;
    bool cubin = false;
    xcs_status cs = xcs_nvrtc_compile(nv, src, "row_chain_f16.cu", 90, true, &img, &size, &cubin);
    if (cs || getenv("XCS_TEST_VERBOSE"))
        fprintf(stderr, "float16 row chain source:\n%s\n", strstr(src, "struct xcs_row_args"));
    CHECK_OK(cs);
    free(img);
    /* the same chain over a bfloat16 row is another kernel */
    uint64_t k16 = xcs_cuda_row_spec_hash(&rs);
    rs.ext_dtype[0] = rs.in_dtype[0][0] = rs.in_dtype[1][0] = XCS_BF16;
    p1.instr[0].dtype = p1.instr[0].src_dtype = p1.instr[1].src_dtype = XCS_BF16;
    CHECK(xcs_cuda_row_spec_hash(&rs) != k16);
    char *src2 = xcs_cuda_row_codegen_alloc(&rs);
    CHECK(src2 != NULL);
    if (src2) CHECK_OK(xcs_nvrtc_compile(nv, src2, "row_chain_bf16.cu", 90, false, &img, &size, &cubin));
    free(img);
    free(src2);
    free(src);
}

int main(void) {
    if (xcs_host_init()) return 1;
    if (xcs_nvrtc_open(&nv)) {
        printf("SKIP: %s\n", xcs_last_error());
        return 77;
    }
    if (mock_register()) return 1;
    mock_row_hook = compile_chain;
    RUN(test_real_chains_compile);
    RUN(test_half_chain_compiles);
    xcs_nvrtc_close(nv);
    return check_report();
}
