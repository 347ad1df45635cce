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
 * Without a usable device (no driver, no GPU, no NVRTC) it prints why and
 * exits 77, which CTest reports as skipped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ew_kernels.h"
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
        bool f32 = cpu_out[k]->dtype == XCS_F32, fl = xcs_dtype_is_float(cpu_out[k]->dtype);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = val(cpu_out[k], i), b = val(gpu_out[k], i);
            bool ok = (isnan(a) && isnan(b)) || a == b ||
                      (fl && fabs(a - b) <= (f32 ? 1e-5 : 1e-12) * fmax(1.0, fabs(a)));
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
                bool divlike = op == XCS_OP_FLOOR_DIV || op == XCS_OP_MOD || op == XCS_OP_POW;
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
            for (size_t a = 0; a < 5; a++) {
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
    printf("%d kernels compiled and run\n", xcs_cu_kernels_cached(rt));
    xcs_cu_close(rt);
    return check_report();
}
