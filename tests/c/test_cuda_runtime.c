/* test_cuda_runtime.c — generated CUDA kernels run on a GPU and agree with
 * the CPU backend's fused VM on the same programs and inputs (label `cuda`).
 *
 * Every (op, dtype) pair the CPU supports, as a one-op program over a 3-D
 * space, in its flat variant (contiguous) and its strided variant (a
 * transposed input and a broadcast scalar); every reduction over several
 * axis sets; random float chains; integer division by zero reported as the
 * CPU reports it; the module cache reusing kernels.  Integers and bools must
 * match exactly, floats to 1e-5 (float32: CUDA's and our vector math differ
 * by a few ulps) / 1e-12 (float64), NaN where the CPU has NaN.
 *
 * float16/bfloat16: every conversion with a 16-bit side, in the vec4, flat
 * and strided kernels, equals the CPU's converters (half.h) bit for bit on
 * every 16-bit pattern and on random and edge float32/float64/int inputs;
 * float32 chains on 16-bit inputs and reductions of them agree with the CPU
 * to a 16-bit ulp.
 *
 * NCCL, where installed, on this one GPU: a one-rank communicator's
 * all-reduce and all-gather (copies), through the real library.
 *
 * Without a usable device (no driver, no GPU, no NVRTC) it prints why and
 * exits 77, which CTest reports as skipped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ew_kernels.h"
#include "half.h"
#include "nccl.h"
#include "runtime.h"
#include "xcs_host.h"

static xcs_cu_runtime *rt;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

/* A contiguous host tensor of dtype dt filled from [lo, hi). */
static xcs_tensor *rand_t(xcs_dtype dt, int nd, const int64_t *shape, double lo, double hi) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(dt, nd, shape, &t));
    int64_t n = xcs_tensor_numel(t);
    char *d = xcs_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * urand();
        switch (dt) {
        case XCS_BOOL: ((uint8_t *)d)[i] = v > (lo + hi) / 2; break;
        case XCS_I32: ((int32_t *)d)[i] = (int32_t)floor(v); break;
        case XCS_I64: ((int64_t *)d)[i] = (int64_t)floor(v); break;
        case XCS_F32: ((float *)d)[i] = (float)v; break;
        case XCS_F16: ((uint16_t *)d)[i] = xcs_f64_to_f16(v); break;
        case XCS_BF16: ((uint16_t *)d)[i] = xcs_f64_to_bf16(v); break;
        default: ((double *)d)[i] = v; break;
        }
    }
    return t;
}

/* Copies host tensor t (its whole storage) to the device; the operand sees
 * it through t's strides. */
static xcs_cu_operand to_dev(const xcs_tensor *t, xcs_cu_ptr *owned) {
    xcs_cu_operand o = {0};
    size_t bytes = t->storage->nbytes;
    CHECK_OK(xcs_cu_alloc(rt, bytes, owned));
    CHECK_OK(xcs_cu_to_device(rt, *owned, t->storage->data, bytes));
    o.base = *owned + (xcs_cu_ptr)(t->offset * (int64_t)xcs_dtype_size(t->dtype));
    o.dtype = t->dtype;
    for (int d = 0; d < t->ndim; d++) o.strides[d] = t->strides[d];
    return o;
}

static double val(const xcs_tensor *t, int64_t i) {
    const char *d = (const char *)t->storage->data;
    switch (t->dtype) {
    case XCS_BOOL: return ((const uint8_t *)d)[i];
    case XCS_I32: return ((const int32_t *)d)[i];
    case XCS_I64: return (double)((const int64_t *)d)[i];
    case XCS_F32: return ((const float *)d)[i];
    case XCS_F16: return xcs_f16_to_f32(((const uint16_t *)d)[i]);
    case XCS_BF16: return xcs_bf16_to_f32(((const uint16_t *)d)[i]);
    default: return ((const double *)d)[i];
    }
}

/* Runs p on the CPU and on the device over the same inputs; compares outputs. */
static void compare(const xcs_fused_program *p, xcs_tensor **ins, const char *what) {
    const xcs_backend *be = xcs_backend_for(XCS_DEVICE_CPU);
    xcs_tensor *cpu_out[XCS_FUSED_MAX_IO] = {0}, *gpu_out[XCS_FUSED_MAX_IO] = {0};
    xcs_cu_ptr din[XCS_FUSED_MAX_IO] = {0}, dout[XCS_FUSED_MAX_IO] = {0};
    xcs_cu_operand oin[XCS_FUSED_MAX_IO], oout[XCS_FUSED_MAX_IO];
    bool reduce = p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE;
    for (int k = 0; k < p->n_outputs; k++) {
        int64_t shape[XCS_MAX_DIMS];
        memcpy(shape, p->shape, sizeof shape);
        const xcs_fused_instr *w = NULL;
        for (int i = 0; i < p->n_instr; i++)
            if ((p->instr[i].kind == XCS_FUSED_STORE || p->instr[i].kind == XCS_FUSED_REDUCE) && p->instr[i].dst == k)
                w = &p->instr[i];
        if (reduce && w && w->kind == XCS_FUSED_REDUCE)
            for (int d = 0; d < p->ndim; d++)
                if (p->reduce_axes >> d & 1u) shape[d] = 1;
        xcs_dtype dt = w ? w->dtype : XCS_F64;
        CHECK_OK(xcs_tensor_empty(dt, p->ndim, shape, &cpu_out[k]));
        CHECK_OK(xcs_tensor_empty(dt, p->ndim, shape, &gpu_out[k]));
        oout[k] = to_dev(gpu_out[k], &dout[k]);
        for (int d = 0; d < p->ndim; d++)
            if (shape[d] == 1) oout[k].strides[d] = 0; /* a reduced dim */
    }
    for (int k = 0; k < p->n_inputs; k++) oin[k] = to_dev(ins[k], &din[k]);
    xcs_status cs = be->run_fused(p, (const xcs_tensor *const *)ins, cpu_out);
    xcs_status gs = xcs_cu_run_fused(rt, p, oin, oout);
    if (cs != gs) fprintf(stderr, "%s: CPU status %d, CUDA status %d (%s)\n", what, cs, gs, xcs_last_error());
    CHECK(cs == gs);
    for (int k = 0; k < p->n_outputs && !cs && !gs; k++) {
        CHECK_OK(xcs_cu_to_host(rt, gpu_out[k]->storage->data, dout[k], gpu_out[k]->storage->nbytes));
        int64_t n = xcs_tensor_numel(cpu_out[k]);
        xcs_dtype odt = cpu_out[k]->dtype;
        bool fl = xcs_dtype_is_float(odt);
        /* float32 math differs by ulps, which may tip a 16-bit rounding by one of its ulps */
        double tol = odt == XCS_F32 ? 1e-5 : odt == XCS_F16 ? 1e-3 : odt == XCS_BF16 ? 8e-3 : 1e-12;
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = val(cpu_out[k], i), b = val(gpu_out[k], i);
            bool ok = (isnan(a) && isnan(b)) || a == b || (fl && fabs(a - b) <= tol * fmax(1.0, fabs(a)));
            if (!ok && bad++ < 3) fprintf(stderr, "%s: output %d [%lld]: CPU %.17g, CUDA %.17g\n", what, k, (long long)i, a, b);
        }
        CHECK(bad == 0);
    }
    for (int k = 0; k < p->n_outputs; k++) {
        xcs_tensor_free(cpu_out[k]);
        xcs_tensor_free(gpu_out[k]);
        xcs_cu_free(rt, dout[k]);
    }
    for (int k = 0; k < p->n_inputs; k++) xcs_cu_free(rt, din[k]);
    xcs_error_clear();
}

static int arity(xcs_op op) {
    switch (xcs_op_get_info(op)->kind) {
    case XCS_KIND_UNARY: case XCS_KIND_COPY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return 0;
    }
}

static void test_every_op(void) {
    static const int64_t shape[3] = {3, 5, 7};
    char what[96];
    for (int op = 0; op < XCS_OP_COUNT; op++) {
        int n = arity((xcs_op)op);
        /* a copy is a LOAD + STORE in fused programs: the CPU's fused VM
         * refuses it as an OP (the CUDA codegen compiles one) */
        if (!n || xcs_op_get_info((xcs_op)op)->kind == XCS_KIND_COPY) continue;
        for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++) {
            if (!xcs_ew_kernel_get((xcs_op)op, (xcs_dtype)dt)) continue;
            for (int variant = 0; variant < 2; variant++) {
                xcs_fused_program p = {0};
                p.ndim = 3;
                memcpy(p.shape, shape, sizeof shape);
                p.n_inputs = n;
                p.n_outputs = 1;
                xcs_tensor *ins[3] = {0};
                bool divlike = xcs_op_int_faults((xcs_op)op);
                for (int k = 0; k < n; k++) {
                    xcs_dtype rd = xcs_ew_in_dtype((xcs_op)op, k, (xcs_dtype)dt);
                    double lo = divlike && k == 1 ? (op == XCS_OP_POW ? 0 : 1) : -3, hi = divlike && k == 1 ? 4 : 3;
                    if (op == XCS_OP_LOG || op == XCS_OP_SQRT || op == XCS_OP_RSQRT) lo = 0.01;
                    if (op == XCS_OP_POW && xcs_dtype_is_float(rd) && k == 0) lo = 0.1;
                    if (variant == 1 && k == 0) { /* a transposed view */
                        int64_t ts[3] = {7, 5, 3};
                        xcs_tensor *base = rand_t(rd, 3, ts, lo, hi);
                        CHECK_OK(xcs_transpose(base, &ins[k])); /* reversed axes: (3, 5, 7), strided */
                        xcs_tensor_free(base);
                    } else if (variant == 1 && k == 1) { /* a broadcast scalar */
                        xcs_tensor *one = rand_t(rd, 0, NULL, lo, hi);
                        CHECK_OK(xcs_broadcast_to(one, 3, shape, &ins[k]));
                        xcs_tensor_free(one);
                    } else {
                        ins[k] = rand_t(rd, 3, shape, lo, hi);
                    }
                    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, k, k, -1, -1, rd, rd};
                }
                p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, (xcs_op)op, n, 0, n > 1 ? 1 : -1,
                                                         n > 2 ? 2 : -1, (xcs_dtype)dt, (xcs_dtype)dt};
                xcs_dtype od = xcs_ew_out_dtype((xcs_op)op, (xcs_dtype)dt);
                p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, n, -1, -1, od, od};
                p.n_regs = n + 1;
                snprintf(what, sizeof what, "%s/%s/%s", xcs_op_name((xcs_op)op), xcs_dtype_name((xcs_dtype)dt),
                         variant ? "strided" : "flat");
                compare(&p, ins, what);
                for (int k = 0; k < n; k++) xcs_tensor_free(ins[k]);
            }
        }
    }
}

static void test_reductions(void) {
    static const xcs_op ops[] = {XCS_OP_SUM, XCS_OP_PROD, XCS_OP_MAX, XCS_OP_MIN};
    static const unsigned axes[] = {0x1, 0x2, 0x4, 0x3, 0x7};
    static const int64_t shape[3] = {4, 300, 6};
    char what[96];
    for (size_t o = 0; o < 4; o++)
        for (int dt = 1; dt < XCS_DTYPE_COUNT; dt++)
            for (size_t a = 0; a < 5 && !xcs_dtype_is_half((xcs_dtype)dt); a++) { /* 16-bit: test_half_math */
                xcs_fused_program p = {0};
                p.ndim = 3;
                memcpy(p.shape, shape, sizeof shape);
                p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 1;
                xcs_dtype acc = (ops[o] == XCS_OP_SUM || ops[o] == XCS_OP_PROD) && !xcs_dtype_is_float((xcs_dtype)dt)
                                    ? XCS_I64 : (xcs_dtype)dt;
                double lo = ops[o] == XCS_OP_PROD ? 0.99 : -5, hi = ops[o] == XCS_OP_PROD ? 1.01 : 5;
                if (ops[o] == XCS_OP_PROD && !xcs_dtype_is_float((xcs_dtype)dt)) lo = 1, hi = 2;
                xcs_tensor *in = rand_t((xcs_dtype)dt, 3, shape, lo, hi);
                p.instr[0] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, (xcs_dtype)dt, (xcs_dtype)dt};
                p.instr[1] = (xcs_fused_instr){XCS_FUSED_REDUCE, ops[o], 0, 0, -1, -1, acc, acc};
                p.n_instr = 2;
                p.reduce_axes = axes[a];
                snprintf(what, sizeof what, "%s/%s/axes%x", xcs_op_name(ops[o]), xcs_dtype_name((xcs_dtype)dt), axes[a]);
                compare(&p, &in, what);
                xcs_tensor_free(in);
            }
}

static void test_errors_and_cache(void) {
    static const int64_t shape[1] = {64};
    xcs_fused_program p = {0};
    p.ndim = 1, p.shape[0] = 64, p.n_inputs = 2, p.n_outputs = 1, p.n_regs = 3, p.n_instr = 4;
    p.instr[0] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_I32, XCS_I32};
    p.instr[1] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, XCS_I32, XCS_I32};
    p.instr[2] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_FLOOR_DIV, 2, 0, 1, -1, XCS_I32, XCS_I32};
    p.instr[3] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 2, -1, -1, XCS_I32, XCS_I32};
    xcs_tensor *ins[2] = {rand_t(XCS_I32, 1, shape, -9, 9), rand_t(XCS_I32, 1, shape, 0, 3)}; /* zeros in b */
    int before = xcs_cu_kernels_cached(rt);
    compare(&p, ins, "floor_divide by zero"); /* both report XCS_ERR_ZERO_DIV */
    compare(&p, ins, "floor_divide by zero, again");
    CHECK_EQ_I(xcs_cu_kernels_cached(rt), before + 1); /* compiled once */
    xcs_tensor_free(ins[0]);
    xcs_tensor_free(ins[1]);
}

/* ---------------------------------------------------------------- float16 / bfloat16 */

static uint64_t bits_rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_bits(void) {
    bits_rng ^= bits_rng << 13, bits_rng ^= bits_rng >> 7, bits_rng ^= bits_rng << 17;
    return bits_rng;
}

/* n elements of dt: every 16-bit pattern (n = 65536), else random bit
 * patterns mixed with values near the 16-bit ranges and edges. */
static void fill_bits(xcs_dtype dt, int64_t n, void *p) {
    static const double edges[] = {0.0, -0.0, 65504.0, 65519.99, 65520.0, 65536.0, 0x1p-24, 0x1p-25, 0x1.8p-25,
                                   0x1p-14, 0x1p-133, 0x1p-134, 3.4e38, 1e300, 1.0 + 0x1p-11 + 0x1p-40, INFINITY,
                                   -INFINITY, NAN, 2147483647.0, -2147483648.0};
    const int ne = (int)(sizeof edges / sizeof *edges);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = next_bits();
        double near = ldexp((double)(r >> 11) * 0x1p-53 * ((r & 1) ? -1 : 1), (int)((r >> 3) % 300) - 150);
        double v = i < ne ? edges[i] : near;
        bool raw = (r >> 8) % 2 == 0;
        switch (dt) {
        case XCS_BOOL: ((uint8_t *)p)[i] = (uint8_t)(r >> 40) % 2; break;
        case XCS_I32: ((int32_t *)p)[i] = (int32_t)(r >> (r % 32)); break;
        case XCS_I64: ((int64_t *)p)[i] = (int64_t)(r >> (r % 64)); break;
        case XCS_F32: {
            float f = (float)v;
            uint32_t u = raw && i >= ne ? (uint32_t)(r >> 32) : xcs_f32_bits(f);
            memcpy((float *)p + i, &u, 4);
            break;
        }
        case XCS_F64: {
            uint64_t u = raw && i >= ne ? r : xcs_f64_bits(v);
            memcpy((double *)p + i, &u, 8);
            break;
        }
        default: ((uint16_t *)p)[i] = (uint16_t)i; break; /* 16-bit: every pattern */
        }
    }
}

/* True when the dt element at p is a NaN (float dtypes only). */
static bool nan_at(xcs_dtype dt, const char *p) {
    uint16_t h;
    uint32_t f;
    uint64_t d;
    switch (dt) {
    case XCS_F16: memcpy(&h, p, 2); return (h & 0x7fffu) > 0x7c00u;
    case XCS_BF16: memcpy(&h, p, 2); return (h & 0x7fffu) > 0x7f80u;
    case XCS_F32: memcpy(&f, p, 4); return (f & 0x7fffffffu) > 0x7f800000u;
    case XCS_F64: memcpy(&d, p, 8); return (d & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
    default: return false;
    }
}

/* from -> reg (LOAD) -> to (CAST when reg != to) -> STORE as to, over n
 * inputs read with element stride `st` (1: flat, the vec4 kernel when n % 4
 * == 0), on the device; the result must equal the CPU's converters bit for
 * bit, NaNs only as NaNs (the CPU's F16C quiets a signalling float16 NaN,
 * and a GPU's float -> double conversion may give the canonical NaN). */
static void check_convert(xcs_dtype from, xcs_dtype reg, xcs_dtype to, int64_t n, int64_t st) {
    size_t fs = xcs_dtype_size(from), ts = xcs_dtype_size(to), rs = xcs_dtype_size(reg);
    char *in = calloc((size_t)(n * st), fs), *mid = calloc((size_t)n, rs), *want = calloc((size_t)n, ts),
         *got = calloc((size_t)n, ts), *dense = calloc((size_t)n, fs);
    CHECK(in && mid && want && got && dense);
    if (!in || !mid || !want || !got || !dense) goto done;
    fill_bits(from, n, dense);
    for (int64_t i = 0; i < n; i++) memcpy(in + (size_t)(i * st) * fs, dense + (size_t)i * fs, fs);
    xcs_ew_convert_fn c1 = xcs_ew_convert_get(from, reg), c2 = xcs_ew_convert_get(reg, to);
    CHECK(c1 && c2);
    if (!c1 || !c2) goto done;
    c1(n, dense, 1, mid);
    c2(n, mid, 1, want);
    xcs_fused_program p = {0};
    p.ndim = 1, p.shape[0] = n, p.n_inputs = 1, p.n_outputs = 1, p.n_regs = 2;
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, reg, reg};
    int r = 0;
    if (reg != to) p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_COPY, r = 1, 0, -1, -1, to, reg};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, r, -1, -1, to, to};
    xcs_cu_ptr din = 0, dout = 0;
    CHECK_OK(xcs_cu_alloc(rt, (size_t)(n * st) * fs, &din));
    CHECK_OK(xcs_cu_alloc(rt, (size_t)n * ts, &dout));
    CHECK_OK(xcs_cu_to_device(rt, din, in, (size_t)(n * st) * fs));
    xcs_cu_operand oi = {.base = din, .dtype = from}, oo = {.base = dout, .dtype = to};
    oi.strides[0] = st;
    oo.strides[0] = 1;
    CHECK_OK(xcs_cu_run_fused(rt, &p, &oi, &oo));
    CHECK_OK(xcs_cu_to_host(rt, got, dout, (size_t)n * ts));
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(got + (size_t)i * ts, want + (size_t)i * ts, ts) == 0) continue;
        if (nan_at(to, want + (size_t)i * ts) && nan_at(to, got + (size_t)i * ts)) continue;
        if (bad++ < 4) {
            unsigned long long a = 0, w = 0, g = 0;
            memcpy(&a, dense + (size_t)i * fs, fs);
            memcpy(&w, want + (size_t)i * ts, ts);
            memcpy(&g, got + (size_t)i * ts, ts);
            fprintf(stderr, "%s -> %s -> %s (n %lld, stride %lld): input 0x%llx: CPU 0x%llx, CUDA 0x%llx\n",
                    xcs_dtype_name(from), xcs_dtype_name(reg), xcs_dtype_name(to), (long long)n, (long long)st, a, w,
                    g);
        }
    }
    CHECK_EQ_I(bad, 0);
    xcs_cu_free(rt, din);
    xcs_cu_free(rt, dout);
done:
    free(in), free(mid), free(want), free(got), free(dense);
}

static void test_half_conversions(void) {
    static const xcs_dtype dts[] = {XCS_BOOL, XCS_I32, XCS_I64, XCS_F32, XCS_F64, XCS_F16, XCS_BF16};
    for (size_t i = 0; i < 7; i++)
        for (size_t j = 0; j < 7; j++) {
            xcs_dtype from = dts[i], to = dts[j];
            if (!xcs_dtype_is_half(from) && !xcs_dtype_is_half(to)) continue;
            int64_t n = xcs_dtype_is_half(from) ? 65536 : 1 << 18;
            check_convert(from, to, to, n, 1);     /* the LOAD converts (vec4 where both have vectors) */
            check_convert(from, from, to, n - 3, 1); /* a CAST converts (flat, unvectorised) */
            check_convert(from, from, to, n, 3);     /* strided */
        }
}

/* float32 chains on float16/bfloat16 inputs (gelu(x * y + z), z float32)
 * stored as float16, bfloat16, float32; their row and column reductions
 * stored as float16: equal to the CPU's fused VM to a 16-bit ulp. */
static void test_half_math(void) {
    static const int64_t shape[2] = {67, 130};
    xcs_tensor *ins[3] = {rand_t(XCS_F16, 2, shape, -3, 3), rand_t(XCS_BF16, 2, shape, -3, 3),
                          rand_t(XCS_F32, 2, shape, -1, 1)};
    xcs_fused_program p = {0};
    p.ndim = 2;
    memcpy(p.shape, shape, sizeof shape);
    p.n_inputs = 3, p.n_outputs = 3, p.n_regs = 6;
    for (int k = 0; k < 3; k++) /* the LOADs widen to float32 */
        p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, k, k, -1, -1, XCS_F32, XCS_F32};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_MUL, 3, 0, 1, -1, XCS_F32, XCS_F32};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_ADD, 4, 3, 2, -1, XCS_F32, XCS_F32};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_GELU, 5, 4, -1, -1, XCS_F32, XCS_F32};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 5, -1, -1, XCS_F16, XCS_F16};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 5, -1, -1, XCS_BF16, XCS_BF16};
    p.instr[p.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 2, 4, -1, -1, XCS_F32, XCS_F32};
    compare(&p, ins, "gelu(x16 * y16 + z32)");
    static const xcs_op ops[] = {XCS_OP_SUM, XCS_OP_MAX};
    char what[64];
    for (int o = 0; o < 2; o++)
        for (unsigned axes = 1; axes <= 3; axes++)
            for (int k = 0; k < 2; k++) {
                xcs_fused_program q = {0};
                q.ndim = 2;
                memcpy(q.shape, shape, sizeof shape);
                q.n_inputs = 1, q.n_outputs = 1, q.n_regs = 1, q.reduce_axes = axes;
                q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, XCS_F32, XCS_F32};
                q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_REDUCE, ops[o], 0, 0, -1, -1, XCS_F32, XCS_F32};
                snprintf(what, sizeof what, "%s of %s over axes %x", xcs_op_name(ops[o]), k ? "bfloat16" : "float16",
                         axes);
                compare(&q, &ins[k], what);
            }
    for (int k = 0; k < 3; k++) xcs_tensor_free(ins[k]);
}

/* One rank of NCCL on the GPU: its entry points and arguments on a device
 * (more ranks need more GPUs: tests/c/test_cuda_nccl.c runs them on fakes). */
static void test_nccl_one_rank(void) {
    xcs_nccl *nc = NULL;
    if (xcs_nccl_open(&nc)) {
        printf("  (no NCCL: %s)\n", xcs_last_error());
        return;
    }
    printf("  (NCCL %d)\n", xcs_nccl_version(nc));
    enum { N = 100000 };
    float *h = malloc(N * sizeof *h), *back = malloc(N * sizeof *back);
    for (int i = 0; i < N; i++) h[i] = (float)urand();
    xcs_cu_ptr in = 0, out = 0;
    CHECK_OK(xcs_cu_alloc(rt, N * 4, &in));
    CHECK_OK(xcs_cu_alloc(rt, N * 4, &out));
    CHECK_OK(xcs_cu_to_device(rt, in, h, N * 4));
    size_t counts[1] = {N};
    for (int kind = XCS_CUDA_COLL_SUM; kind <= XCS_CUDA_COLL_GATHER; kind++) {
        CHECK_OK(xcs_cu_zero(rt, out, N * 4));
        CHECK_OK(xcs_nccl_run(nc, (xcs_cuda_coll)kind, 1, &rt, &in, &out, counts, XCS_F32));
        CHECK_OK(xcs_cu_to_host(rt, back, out, N * 4));
        CHECK(memcmp(back, h, N * 4) == 0);
    }
    CHECK_EQ_I(xcs_nccl_cliques(nc), 1);
    xcs_cu_free(rt, in);
    xcs_cu_free(rt, out);
    free(h);
    free(back);
    xcs_nccl_close(nc);
}

int main(void) {
    CHECK_OK(xcs_host_init());
    if (xcs_cu_open(0, &rt)) {
        printf("SKIP: no usable CUDA device (%s)\n", xcs_last_error());
        return 77;
    }
    printf("CUDA device: %s\n", xcs_cu_describe(rt));
    RUN(test_every_op);
    RUN(test_reductions);
    RUN(test_errors_and_cache);
    RUN(test_half_conversions);
    RUN(test_half_math);
    RUN(test_nccl_one_rank);
    printf("%d kernels compiled and run\n", xcs_cu_kernels_cached(rt));
    xcs_cu_close(rt);
    return check_report();
}
