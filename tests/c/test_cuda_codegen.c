/* test_cuda_codegen.c — every fused program the CPU can run lowers to CUDA C
 * that NVRTC compiles (NVRTC needs no GPU).
 *
 * - The CUDA op table covers exactly the (op, dtype) pairs the CPU kernel
 *   table does: adding an op to one and not the other fails here.
 * - Each such pair, as a one-op program, compiles in its flat variant and its
 *   strided variant (mixed input dtypes, a broadcast scalar input).
 * - Every reduction (sum/prod/max/min x dtype x several axis sets), with an
 *   elementwise output stored beside it, compiles.
 * - Random chains of ops compile.
 * - Malformed programs and unsupported pairs are refused with a message.
 * - float16/bfloat16: the prelude carries src/core/half.h's conversions
 *   (known answers checked here); programs that load, cast, store and
 *   reduce them (every cast pair, float32 chains on 16-bit inputs, a
 *   matmul epilogue on a float16 product) compile; ops in them are refused.
 * Without NVRTC the compile checks are skipped (exit 77, a CTest skip) after
 * the codegen-only checks ran. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codegen.h"
#include "ew_kernels.h"
#include "half.h"
#include "nvrtc.h"
#include "xcs_host.h"

static xcs_nvrtc *nv;
static int cc = 90;
static int compiled;

/* Kernels are compiled in batches (one NVRTC program: the prelude once,
 * then each kernel under its own name): NVRTC's cost is mostly per program.
 * A failed batch is recompiled kernel by kernel to name the culprit. */
#define BATCH 48
static char *batch_src[BATCH];
static char batch_name[BATCH][96];
static int batch_n;

/* Batches go to PTX (NVRTC's front end and optimiser: where a source error
 * shows); ptxas is what the runtime adds for a cubin, checked on a sample. */
static bool nvrtc_ok(const char *src, const char *what, bool cubin) {
    char *img = NULL;
    size_t sz = 0;
    bool is_cubin = false;
    xcs_status st = xcs_nvrtc_compile(nv, src, what, cc, cubin, &img, &sz, &is_cubin);
    bool ok = st == XCS_OK && sz > 0 && is_cubin == cubin;
    free(img);
    return ok;
}

static void flush_batch(void) {
    if (batch_n == 0) return;
    size_t plen = xcs_cuda_prelude(NULL, 0), total = plen + 1;
    for (int i = 0; i < batch_n; i++) total += strlen(batch_src[i]);
    char *all = malloc(total);
    CHECK(all != NULL);
    if (all) {
        xcs_cuda_prelude(all, plen + 1);
        for (int i = 0; i < batch_n; i++) strcat(all, batch_src[i]);
        static int batches;
        bool ok = nvrtc_ok(all, batch_name[0], batches++ % 4 == 0);
        CHECK(ok);
        if (!ok) { /* which kernel? */
            char pre[1 << 15];
            xcs_cuda_prelude(pre, sizeof pre);
            for (int i = 0; i < batch_n; i++) {
                char *one = malloc(plen + strlen(batch_src[i]) + 1);
                strcpy(one, pre);
                strcat(one, batch_src[i]);
                if (!nvrtc_ok(one, batch_name[i], false)) fprintf(stderr, "---- %s ----\n%s\n%s\n", batch_name[i], one, xcs_last_error());
                free(one);
            }
        } else {
            compiled += batch_n;
        }
        free(all);
    }
    for (int i = 0; i < batch_n; i++) free(batch_src[i]);
    batch_n = 0;
}

static void compile_ok(const xcs_cuda_spec *spec_in, const char *what) {
    xcs_cuda_spec spec = *spec_in;
    char name[96];
    snprintf(name, sizeof name, "k%d_%s", compiled + batch_n, what);
    spec.name = name;
    spec.no_prelude = true;
    char *src = xcs_cuda_codegen_alloc(&spec);
    CHECK(src != NULL);
    if (!src) return;
    CHECK(strstr(src, "#include") == NULL);
    if (!nv) {
        free(src);
        return;
    }
    batch_src[batch_n] = src;
    snprintf(batch_name[batch_n], sizeof batch_name[batch_n], "%s", name);
    if (++batch_n == BATCH) flush_batch();
}

static int arity(xcs_op op) {
    switch (xcs_op_get_info(op)->kind) {
    case XCS_KIND_UNARY: case XCS_KIND_COPY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return 0;
    }
}

/* out0 = op(load in0.., computed in dt); inputs of dtype `in_dt` converted. */
static void one_op_program(xcs_op op, xcs_dtype dt, xcs_fused_program *p, xcs_cuda_spec *spec, xcs_dtype in_dt) {
    memset(p, 0, sizeof *p);
    memset(spec, 0, sizeof *spec);
    p->ndim = 3;
    p->shape[0] = 4, p->shape[1] = 5, p->shape[2] = 6;
    int n = arity(op);
    p->n_inputs = n;
    p->n_outputs = 1;
    int r = 0;
    for (int k = 0; k < n; k++) {
        xcs_dtype rd = xcs_ew_in_dtype(op, k, dt);
        p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, r, k, -1, -1, rd, rd};
        spec->in_dtype[k] = k == 0 ? in_dt : rd;
        r++;
    }
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, op, r, 0, n > 1 ? 1 : -1, n > 2 ? 2 : -1, dt, dt};
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, r, -1, -1, dt, dt};
    p->n_regs = r + 1;
    spec->p = p;
    spec->out_dtype[0] = xcs_ew_out_dtype(op, dt);
}

static void test_op_table_matches_cpu(void) {
    for (int op = 0; op < XCS_OP_COUNT; op++) {
        int n = arity((xcs_op)op);
        if (n == 0) continue;
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) {
            bool cpu = xcs_ew_kernel_get((xcs_op)op, (xcs_dtype)dt) != NULL;
            xcs_fused_program p;
            xcs_cuda_spec spec;
            one_op_program((xcs_op)op, (xcs_dtype)dt, &p, &spec, xcs_ew_in_dtype((xcs_op)op, 0, (xcs_dtype)dt));
            spec.flat = true;
            size_t len = xcs_cuda_codegen(&spec, NULL, 0);
            if ((len > 0) != cpu)
                fprintf(stderr, "%s/%s: CPU kernel %s, CUDA codegen %s\n", xcs_op_name((xcs_op)op),
                        xcs_dtype_name((xcs_dtype)dt), cpu ? "yes" : "no", len ? "yes" : "no");
            CHECK((len > 0) == cpu);
            if (!cpu) CHECK(check_contains(xcs_last_error(), "not supported"));
            xcs_error_clear();
        }
    }
}

static void test_every_op_compiles(void) {
    char what[96];
    for (int op = 0; op < XCS_OP_COUNT; op++) {
        if (arity((xcs_op)op) == 0) continue;
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) {
            if (!xcs_ew_kernel_get((xcs_op)op, (xcs_dtype)dt)) continue;
            xcs_fused_program p;
            xcs_cuda_spec spec;
            /* flat, inputs already in the compute dtype */
            one_op_program((xcs_op)op, (xcs_dtype)dt, &p, &spec, xcs_ew_in_dtype((xcs_op)op, 0, (xcs_dtype)dt));
            spec.flat = true;
            snprintf(what, sizeof what, "%s_%s_flat", xcs_op_name((xcs_op)op), xcs_dtype_name((xcs_dtype)dt));
            compile_ok(&spec, what);
            if (xcs_dtype_size(spec.in_dtype[0]) == 4 && xcs_dtype_size(spec.out_dtype[0]) == 4 &&
                (arity((xcs_op)op) < 2 || xcs_dtype_size(spec.in_dtype[1]) == 4) &&
                (arity((xcs_op)op) < 3 || xcs_dtype_size(spec.in_dtype[2]) == 4)) {
                spec.vec4 = true; /* 16-byte vectors */
                snprintf(what, sizeof what, "%s_%s_vec4", xcs_op_name((xcs_op)op), xcs_dtype_name((xcs_dtype)dt));
                compile_ok(&spec, what);
                spec.vec4 = false;
            }
            /* strided, input 0 converted from another dtype, input 1 a broadcast scalar */
            one_op_program((xcs_op)op, (xcs_dtype)dt, &p, &spec, (xcs_dtype)((dt + 2) % XCS_DTYPE_COUNT));
            spec.scalar_inputs = 2u;
            snprintf(what, sizeof what, "%s_%s_strided", xcs_op_name((xcs_op)op), xcs_dtype_name((xcs_dtype)dt));
            compile_ok(&spec, what);
        }
    }
}

static void test_reductions_compile(void) {
    static const xcs_op ops[] = {XCS_OP_SUM, XCS_OP_PROD, XCS_OP_MAX, XCS_OP_MIN};
    static const unsigned axes[] = {0x1, 0x2, 0x4, 0x5, 0x7};
    char what[96];
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++)
            for (size_t a = 0; a < sizeof axes / sizeof *axes; a++) {
                if (dt == XCS_BOOL && a > 1) continue;
                xcs_fused_program p = {0};
                xcs_cuda_spec spec = {0};
                p.ndim = 3;
                p.shape[0] = 3, p.shape[1] = 70, p.shape[2] = 9;
                p.n_inputs = 1;
                p.n_outputs = 2;
                p.n_regs = 2;
                xcs_dtype acc = (ops[o] == XCS_OP_SUM || ops[o] == XCS_OP_PROD) && !xcs_dtype_is_float((xcs_dtype)dt)
                                    ? XCS_I64 : (xcs_dtype)dt;
                p.instr[0] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, (xcs_dtype)dt, (xcs_dtype)dt};
                p.instr[1] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 0, -1, -1, (xcs_dtype)dt, (xcs_dtype)dt};
                p.instr[2] = (xcs_fused_instr){XCS_FUSED_REDUCE, ops[o], 1, 0, -1, -1, acc, acc};
                p.n_instr = 3;
                p.reduce_axes = axes[a];
                spec.p = &p;
                spec.in_dtype[0] = (xcs_dtype)dt;
                spec.out_dtype[0] = XCS_F64;
                spec.out_dtype[1] = acc;
                snprintf(what, sizeof what, "%s_%s_axes%x", xcs_op_name(ops[o]), xcs_dtype_name((xcs_dtype)dt), axes[a]);
                compile_ok(&spec, what);
            }
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Random float chains of unary/binary ops over 2-3 inputs, some ending in a
 * reduction, like the CPU fusion tests' op-chain generator. */
static void test_random_chains_compile(void) {
    static const xcs_op un[] = {XCS_OP_EXP, XCS_OP_TANH, XCS_OP_NEG, XCS_OP_SIGMOID, XCS_OP_ABS, XCS_OP_RELU,
                                XCS_OP_GELU, XCS_OP_LOG1P, XCS_OP_SQRT, XCS_OP_FLOOR};
    static const xcs_op bin[] = {XCS_OP_ADD, XCS_OP_SUB, XCS_OP_MUL, XCS_OP_DIV, XCS_OP_MAXIMUM, XCS_OP_MINIMUM,
                                 XCS_OP_POW, XCS_OP_MOD, XCS_OP_FLOOR_DIV};
    char what[64];
    for (int t = 0; t < 24; t++) {
        xcs_fused_program p = {0};
        xcs_cuda_spec spec = {0};
        xcs_dtype dt = t % 2 ? XCS_F32 : XCS_F64;
        p.ndim = 2;
        p.shape[0] = 33, p.shape[1] = 17;
        p.n_inputs = 2 + (int)rnd(2);
        int r = 0;
        for (int k = 0; k < p.n_inputs; k++) {
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, r++, k, -1, -1, dt, dt};
            spec.in_dtype[k] = k == 1 ? XCS_I32 : dt;
        }
        int len = 3 + (int)rnd(10);
        for (int i = 0; i < len && r < XCS_FUSED_MAX_REGS; i++) {
            bool b = rnd(2);
            xcs_op op = b ? bin[rnd(sizeof bin / sizeof *bin)] : un[rnd(sizeof un / sizeof *un)];
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, op, r, (int)rnd((unsigned)r), b ? (int)rnd((unsigned)r) : -1,
                                                     -1, dt, dt};
            r++;
        }
        p.n_regs = r;
        p.n_outputs = 1;
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, r - 1, -1, -1, dt, dt};
        spec.out_dtype[0] = dt;
        if (t % 3 == 0) {
            p.n_outputs = 2;
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, t % 2 ? XCS_OP_SUM : XCS_OP_MAX, 1, r - 1, -1, -1, dt, dt};
            p.reduce_axes = 1u << rnd(2);
            spec.out_dtype[1] = dt;
        } else {
            spec.flat = t % 2;
        }
        spec.p = &p;
        snprintf(what, sizeof what, "chain_%d", t);
        compile_ok(&spec, what);
    }
}

static void test_errors(void) {
    xcs_fused_program p = {0};
    xcs_cuda_spec spec = {.p = &p};
    CHECK(xcs_cuda_codegen(&spec, NULL, 0) == 0); /* no instructions */
    CHECK(check_contains(xcs_last_error(), "malformed"));
    p.ndim = 1, p.shape[0] = 4, p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 1, p.n_instr = 2;
    p.instr[0] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_EXP, 0, 0, -1, -1, XCS_F32, XCS_F32};
    p.instr[1] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    spec.in_dtype[0] = XCS_F32, spec.out_dtype[0] = XCS_F32;
    CHECK(xcs_cuda_codegen(&spec, NULL, 0) == 0); /* reads a register never written */
    CHECK(check_contains(xcs_last_error(), "before it is written"));
    p.instr[0] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 3, -1, -1, XCS_F32, XCS_F32};
    CHECK(xcs_cuda_codegen(&spec, NULL, 0) == 0); /* loads an input that does not exist */
    p.instr[0] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
    char small[16];
    size_t need = xcs_cuda_codegen(&spec, small, sizeof small); /* truncates like snprintf */
    CHECK(need > sizeof small && strlen(small) == sizeof small - 1);
    if (nv) { /* a compile error carries NVRTC's log */
        char *img = NULL;
        size_t sz = 0;
        bool cub = false;
        CHECK(xcs_nvrtc_compile(nv, "extern \"C\" __global__ void k() { undeclared(); }", "bad_kernel", cc, true, &img,
                                &sz, &cub) == XCS_ERR_VALUE);
        CHECK(check_contains(xcs_last_error(), "bad_kernel") && check_contains(xcs_last_error(), "undeclared"));
        CHECK(img == NULL);
    }
    xcs_error_clear();
}

/* ---------------------------------------------------------------- float16 / bfloat16 */

/* The prelude carries half.h's conversions (one macro body, stringified), so
 * the device rounds as the host does; a few independent values hold that
 * body to ties-to-even, to the double rounding float32 would add, to
 * overflow, and to NaNs kept quiet with their payload.  (The exhaustive
 * checks against numpy and ml_dtypes are tests/python/test_half.py's.) */
static void test_half_prelude(void) {
    CHECK_EQ_I(xcs_f32_to_f16(65520.0f), 0x7c00);
    CHECK_EQ_I(xcs_f32_to_f16(65519.996f), 0x7bff);
    CHECK_EQ_I(xcs_f32_to_f16(0x1p-25f), 0x0000);
    CHECK_EQ_I(xcs_f32_to_f16(0x1.8p-24f), 0x0002);
    CHECK_EQ_I(xcs_f32_to_f16(-1.0f), 0xbc00);
    CHECK_EQ_I(xcs_f64_to_f16(1.0 + 0x1p-11 + 0x1p-40), 0x3c01);
    CHECK_EQ_I(xcs_f32_to_f16((float)(1.0 + 0x1p-11 + 0x1p-40)), 0x3c00);
    CHECK_EQ_I(xcs_f64_to_bf16(1.0 + 0x1p-8 + 0x1p-40), 0x3f81);
    CHECK_EQ_I(xcs_f64_to_bf16(0x1p-134), 0x0000);
    CHECK_EQ_I(xcs_f64_to_bf16(0x1.0000000000001p-134), 0x0001);
    CHECK_EQ_I(xcs_f32_to_bf16(xcs_bits_f32(0x3f808000u)), 0x3f80);
    CHECK_EQ_I(xcs_f32_to_bf16(xcs_bits_f32(0x3f818000u)), 0x3f82);
    CHECK_EQ_I(xcs_f32_to_bf16(xcs_bits_f32(0x7f7fffffu)), 0x7f80);
    CHECK_EQ_I(xcs_f32_to_bf16(xcs_bits_f32(0xff800001u)), 0xffc0);
    CHECK_EQ_I(xcs_f32_to_f16(xcs_bits_f32(0x7f802000u)), 0x7e01);
    CHECK_EQ_I(xcs_f32_bits(xcs_f16_to_f32(0x0001)), xcs_f32_bits(0x1p-24f));
    CHECK_EQ_I(xcs_f32_bits(xcs_f16_to_f32(0x7bff)), xcs_f32_bits(65504.0f));
    char *pre = malloc(xcs_cuda_prelude(NULL, 0) + 1);
    CHECK(pre != NULL);
    if (pre) {
        xcs_cuda_prelude(pre, xcs_cuda_prelude(NULL, 0) + 1);
        CHECK(strstr(pre, "__device__ __forceinline__ unsigned short xcs_hc_f64_to_bf16(double d)") != NULL);
        CHECK(strstr(pre, "xcs_cv<xcs_h, float>") != NULL && strstr(pre, "xcs_cv<float, xcs_bh>") != NULL);
    }
    free(pre);
}

static const xcs_dtype all_dtypes[] = {XCS_BOOL, XCS_I32, XCS_I64, XCS_F32, XCS_F64, XCS_F16, XCS_BF16};
#define N_DTYPES (sizeof all_dtypes / sizeof *all_dtypes)

/* A [4, 6, 8] space (strided variant: input 1 a broadcast scalar). */
static void half_space(xcs_fused_program *p, xcs_cuda_spec *spec) {
    memset(p, 0, sizeof *p);
    memset(spec, 0, sizeof *spec);
    p->ndim = 3;
    p->shape[0] = 4, p->shape[1] = 6, p->shape[2] = 8;
    spec->p = p;
}

/* spec compiled flat, vec4 (when every operand has a vector type), and
 * strided. */
static void compile_variants(xcs_cuda_spec *spec, const char *what) {
    char name[96];
    spec->flat = true;
    snprintf(name, sizeof name, "%s_flat", what);
    compile_ok(spec, name);
    bool vec = true;
    for (int k = 0; k < spec->p->n_inputs; k++) {
        xcs_dtype dt = spec->in_dtype[k];
        vec &= dt == XCS_F32 || dt == XCS_I32 || xcs_dtype_is_half(dt);
    }
    for (int k = 0; k < spec->p->n_outputs; k++) {
        xcs_dtype dt = spec->out_dtype[k];
        vec &= dt == XCS_F32 || dt == XCS_I32 || xcs_dtype_is_half(dt);
    }
    if (vec) {
        spec->vec4 = true;
        snprintf(name, sizeof name, "%s_vec4", what);
        compile_ok(spec, name);
        spec->vec4 = false;
    }
    spec->flat = false;
    snprintf(name, sizeof name, "%s_strided", what);
    compile_ok(spec, name);
}

static void test_half_programs_compile(void) {
    xcs_fused_program p;
    xcs_cuda_spec spec;
    char what[96];
    /* every cast with a 16-bit side: input of `from` loaded as itself, CAST
     * to `to`, stored as `to`; and the same conversion done by the LOAD
     * (input `from` into a `to` register) and by the STORE */
    for (size_t i = 0; i < N_DTYPES; i++)
        for (size_t j = 0; j < N_DTYPES; j++) {
            xcs_dtype from = all_dtypes[i], to = all_dtypes[j];
            if (!xcs_dtype_is_half(from) && !xcs_dtype_is_half(to)) continue;
            half_space(&p, &spec);
            p.n_inputs = 1, p.n_outputs = 3, p.n_regs = 3;
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, from, from};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_COPY, 1, 0, -1, -1, to, from};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 2, 0, -1, -1, to, to};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 1, -1, -1, to, to};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 2, -1, -1, to, to};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 2, 0, -1, -1, to, to};
            spec.in_dtype[0] = from;
            spec.out_dtype[0] = spec.out_dtype[1] = spec.out_dtype[2] = to;
            snprintf(what, sizeof what, "cast_%s_%s", xcs_dtype_name(from), xcs_dtype_name(to));
            compile_variants(&spec, what);
        }
    /* float32 chains on 16-bit inputs: gelu(x * y + z) for x float16, y
     * bfloat16, z float32 (a broadcast scalar when strided), loaded into
     * float32 registers, stored as float16, bfloat16 and float32; and the
     * same with x loaded as a float16 register and CAST (the other lowering
     * core may pick), y read by the op straight from a bfloat16 register */
    for (int form = 0; form < 2; form++) {
        half_space(&p, &spec);
        p.n_inputs = 3, p.n_outputs = 3;
        if (form == 0) {
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_F32, XCS_F32};
        } else {
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 6, 0, -1, -1, XCS_F16, XCS_F16};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_COPY, 0, 6, -1, -1, XCS_F32, XCS_F16};
            p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_BF16, XCS_BF16};
        }
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 2, 2, -1, -1, XCS_F32, XCS_F32};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_MUL, 3, 0, 1, -1, XCS_F32, XCS_F32};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_ADD, 4, 3, 2, -1, XCS_F32, XCS_F32};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_GELU, 5, 4, -1, -1, XCS_F32, XCS_F32};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 5, -1, -1, XCS_F16, XCS_F16};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 5, -1, -1, XCS_BF16, XCS_BF16};
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 2, 4, -1, -1, XCS_F32, XCS_F32};
        p.n_regs = 7;
        spec.in_dtype[0] = XCS_F16, spec.in_dtype[1] = XCS_BF16, spec.in_dtype[2] = XCS_F32;
        spec.out_dtype[0] = XCS_F16, spec.out_dtype[1] = XCS_BF16, spec.out_dtype[2] = XCS_F32;
        snprintf(what, sizeof what, "half_chain_%d", form);
        compile_variants(&spec, what);
        spec.scalar_inputs = 4u; /* z one value: vec4 streams x and y only */
        spec.flat = spec.vec4 = true;
        snprintf(what, sizeof what, "half_chain_%d_scalar_vec4", form);
        compile_ok(&spec, what);
    }
    /* a matmul's epilogue on its float16 product [M, N]: gelu(prod + bias)
     * (bias float16 [N], broadcast) stored as float16, and its row sums
     * (float32, folded in double) stored as float16 by the REDUCE */
    for (int red = 0; red < 2; red++) {
        xcs_fused_program q = {0};
        memset(&spec, 0, sizeof spec);
        q.ndim = 2, q.shape[0] = 64, q.shape[1] = 96;
        q.n_inputs = 2, q.n_outputs = red ? 2 : 1, q.n_regs = 5;
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_F32, XCS_F32};
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_ADD, 2, 0, 1, -1, XCS_F32, XCS_F32};
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_GELU, 3, 2, -1, -1, XCS_F32, XCS_F32};
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 3, -1, -1, XCS_F16, XCS_F16};
        if (red) {
            q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, XCS_OP_SUM, 1, 3, -1, -1, XCS_F32, XCS_F32};
            q.reduce_axes = 2u;
        }
        spec.p = &q;
        spec.in_dtype[0] = spec.in_dtype[1] = XCS_F16;
        spec.out_dtype[0] = spec.out_dtype[1] = XCS_F16;
        snprintf(what, sizeof what, "matmul_epilogue_f16%s", red ? "_rowsum" : "");
        if (red) {
            compile_ok(&spec, what);
        } else {
            spec.scalar_inputs = 0;
            compile_variants(&spec, what);
        }
    }
    /* reductions of 16-bit registers (core casts first, but a program that
     * does not still folds exactly: in float32/double) into every dtype */
    static const xcs_op rops[] = {XCS_OP_SUM, XCS_OP_PROD, XCS_OP_MAX, XCS_OP_MIN};
    for (size_t o = 0; o < 4; o++)
        for (int h = 0; h < 2; h++)
            for (size_t j = 0; j < N_DTYPES; j++) {
                xcs_dtype hd = h ? XCS_BF16 : XCS_F16, to = all_dtypes[j];
                half_space(&p, &spec);
                p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 1;
                p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, hd, hd};
                p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, rops[o], 0, 0, -1, -1, to, to};
                p.reduce_axes = 5u;
                spec.in_dtype[0] = hd;
                spec.out_dtype[0] = to;
                snprintf(what, sizeof what, "%s_%s_to_%s", xcs_op_name(rops[o]), xcs_dtype_name(hd),
                         xcs_dtype_name(to));
                compile_ok(&spec, what);
            }
    /* an op asked to compute in float16 is refused (core computes in float32) */
    half_space(&p, &spec);
    p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 2;
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F16, XCS_F16};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_EXP, 1, 0, -1, -1, XCS_F16, XCS_F16};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 1, -1, -1, XCS_F16, XCS_F16};
    spec.in_dtype[0] = spec.out_dtype[0] = XCS_F16;
    CHECK_ERR(xcs_cuda_codegen(&spec, NULL, 0) == 0 ? xcs_last_status() : XCS_OK, XCS_ERR_TYPE,
              "not supported for dtype float16");
    /* vec4 refuses an operand without a vector type */
    half_space(&p, &spec);
    p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 1;
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F16, XCS_F16};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 0, -1, -1, XCS_F64, XCS_F64};
    spec.in_dtype[0] = XCS_F16, spec.out_dtype[0] = XCS_F64, spec.flat = spec.vec4 = true;
    CHECK(xcs_cuda_codegen(&spec, NULL, 0) == 0 && check_contains(xcs_last_error(), "vector type"));
    /* float16 and bfloat16 kernels are told apart by the cache key */
    spec.vec4 = false;
    uint64_t k16 = xcs_cuda_spec_hash(&spec);
    spec.in_dtype[0] = XCS_BF16;
    CHECK(xcs_cuda_spec_hash(&spec) != k16);
    xcs_error_clear();
}

/* ---------------------------------------------------------------- GEMM epilogues */

/* The matmul group of a traced program over x [2, 5, 8] @ w [8, 6] (+ b [6]):
 * its epilogue as xcs_cuda_gemm_epilogue reads it.  form: 0 mm + b, 1
 * relu(mm + b), 2 b + mm, 3 relu(mm + b) with mm also an output, 4 tanh(mm +
 * b), 5 mm * 2 + b, 6 relu(mm + y) with y a full matrix (the program
 * matches; the bias-row check is the backend's, on the tensors). */
static bool epilogue_of(xcs_dtype dt, int form, xcs_gemm_epi *e) {
    const int64_t xs[3] = {2, 5, 8}, ws[2] = {8, 6}, bs[1] = {6}, ys[3] = {2, 5, 6};
    xcs_graph *g = NULL;
    xcs_tensor *x = NULL, *w = NULL, *b = NULL, *mm = NULL, *t = NULL, *r = NULL;
    CHECK_OK(xcs_graph_new(&g));
    CHECK_OK(xcs_graph_input(g, dt, 3, xs, &x));
    CHECK_OK(xcs_graph_input(g, dt, 2, ws, &w));
    CHECK_OK(xcs_graph_input(g, dt, form == 6 ? 3 : 1, form == 6 ? ys : bs, &b));
    CHECK_OK(xcs_matmul(x, w, &mm));
    if (form == 5) {
        xcs_tensor *two = NULL, *m2 = NULL;
        CHECK_OK(xcs_tensor_scalar(XCS_F64, 2.0, &two));
        two->flags |= XCS_TENSOR_WEAK;
        CHECK_OK(xcs_binary(XCS_OP_MUL, mm, two, &m2));
        CHECK_OK(xcs_binary(XCS_OP_ADD, m2, b, &t));
        xcs_tensor_free(two);
        xcs_tensor_free(m2);
    } else {
        CHECK_OK(form == 2 ? xcs_binary(XCS_OP_ADD, b, mm, &t) : xcs_binary(XCS_OP_ADD, mm, b, &t));
    }
    if (form == 1 || form == 3 || form == 6) CHECK_OK(xcs_unary(XCS_OP_RELU, t, &r));
    if (form == 4) CHECK_OK(xcs_unary(XCS_OP_TANH, t, &r));
    CHECK_OK(xcs_graph_output(g, r ? r : t));
    if (form == 3) CHECK_OK(xcs_graph_output(g, mm));
    CHECK_OK(xcs_graph_optimize(g));
    bool found = false, got = false;
    for (int k = 0; k < xcs_graph_num_groups(g); k++) {
        xcs_dtype ind[XCS_FUSED_MAX_IO], outd[XCS_FUSED_MAX_IO];
        bool matmul = false;
        const xcs_fused_program *p = xcs_graph_group(g, k, ind, outd, &matmul);
        if (!p || !matmul) continue;
        found = true;
        got = xcs_cuda_gemm_epilogue(p, ind[0], ind, e);
    }
    CHECK(found);
    xcs_tensor *all[] = {x, w, b, mm, t, r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xcs_tensor_free(all[i]);
    xcs_graph_free(g);
    return got;
}

static void test_gemm_epilogue_match(void) {
    const xcs_dtype dts[3] = {XCS_F32, XCS_F16, XCS_BF16};
    for (int d = 0; d < 3; d++) {
        xcs_gemm_epi e;
        CHECK(epilogue_of(dts[d], 0, &e) && e.kind == XCS_GEMM_EPI_BIAS && e.bias_input == 1);
        CHECK(epilogue_of(dts[d], 1, &e) && e.kind == XCS_GEMM_EPI_RELU_BIAS && e.bias_input == 1);
        CHECK(epilogue_of(dts[d], 2, &e) && e.kind == XCS_GEMM_EPI_BIAS && e.bias_input == 1);
        CHECK(!epilogue_of(dts[d], 3, &e) && e.kind == XCS_GEMM_EPI_NONE); /* the product is stored too */
        CHECK(!epilogue_of(dts[d], 4, &e));                                 /* tanh: not an epilogue cuBLASLt has */
        CHECK(!epilogue_of(dts[d], 5, &e));                                 /* a scale before the add */
        CHECK(epilogue_of(dts[d], 6, &e) && e.kind == XCS_GEMM_EPI_RELU_BIAS);
    }
    xcs_gemm_epi e;
    CHECK(!epilogue_of(XCS_F64, 1, &e)); /* float64: the GEMM and a kernel */
    CHECK(!xcs_cuda_gemm_epilogue(NULL, XCS_F32, NULL, &e));
}

int main(void) {
    CHECK_OK(xcs_host_init());
    if (xcs_nvrtc_open(&nv)) {
        printf("NVRTC not available (%s): compile checks skipped\n", xcs_last_error());
        nv = NULL;
    } else {
        printf("NVRTC %d, compiling for sm_%d\n", xcs_nvrtc_version(nv), cc);
    }
    RUN(test_op_table_matches_cpu);
    RUN(test_errors);
    RUN(test_every_op_compiles);
    RUN(test_reductions_compile);
    RUN(test_random_chains_compile);
    RUN(test_half_prelude);
    RUN(test_half_programs_compile);
    RUN(test_gemm_epilogue_match);
    flush_batch();
    printf("%d kernels compiled\n", compiled);
    xcs_nvrtc_close(nv);
    int rc = check_report();
    return rc ? rc : (nv ? 0 : 77);
}
