/* test_cuda_host_kernels.c — the generated elementwise CUDA kernels, run on
 * the host (kernel_host.h: compiled by the C++ compiler against a shim),
 * against the CPU backend on the same inputs.
 *
 * What NVRTC in CI cannot tell: whether a kernel that compiles computes the
 * right thing.  Here every (op, compute dtype) pair the CPU has, as a
 * one-op program, and random chains of ops run in the variant the runtime
 * would pick for their operands (xcs_cu_run_fused's logic, mirrored with
 * host pointers): generic (strided, transposed, flipped and row-broadcast
 * operands, strided outputs), flat (contiguous, broadcast scalars, bases
 * off the vector alignment, odd sizes) and flat+vec4.  Inputs are stored as
 * bool, int32, int64, float32, float64, float16 and bfloat16 (loaded with a
 * conversion), outputs likewise.  Grids are the runtime's, or smaller (one
 * block: the grid-stride loops must cover everything), or larger.
 *
 * Comparison: bit for bit for integer, bool and exact float ops (NaN equal
 * NaN); a few ulps for the transcendental ones (relative 1e-5 in float32,
 * 1e-12 in float64, one ulp of a float16/bfloat16 output).  Chains with a
 * transcendental op are checked instruction by instruction: every register
 * is stored, and each instruction is recomputed on the CPU from the
 * kernel's own operands, so rounding differences do not compound.  Output
 * elements a kernel should not touch (strided gaps, guards past the end)
 * must keep their fill.  The error word must say what the CPU reports
 * (integer floor_divide/mod by zero: 1, negative integer power: 2).
 *
 * Kernels are compiled in batches (one shared object: the prelude once);
 * the C++ compile is most of the run time.  Fresh programs each run:
 * XCS_TEST_SEED (printed) reproduces one.  Without a C++ compiler: exit 77
 * (a CTest skip). */
#define _POSIX_C_SOURCE 200809L

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "codegen.h"
#include "runtime.h"
#include "ew_kernels.h"
#include "half.h"
#include "kernel_host.h"
#include "testutil.h"
#include "xcs_host.h"

static test_rng R;
static unsigned rnd(unsigned n) { return (unsigned)(test_rnd(&R) % n); }

static int kernels_run, batches, variants[5]; /* generic, flat, flat with broadcast scalars, vec4, vec4 with scalars */
static long long elements_compared;

/* ---------------------------------------------------------------- op classes */

static int arity(xcs_op op) {
    switch (xcs_op_get_info(op)->kind) {
    case XCS_KIND_UNARY: return 1;
    case XCS_KIND_BINARY: return 2;
    case XCS_KIND_TERNARY: return 3;
    default: return 0;
    }
}

/* Ops whose float results the CPU (vmath.h's float32 versions) and the
 * kernel (libm through the prelude) may round differently.  The rest are
 * IEEE-exact in both (sqrt is correctly rounded; floor_divide and mod are
 * the same fmod-based formula on both sides). */
static bool is_transcendental(xcs_op op, xcs_dtype dt) {
    if (!xcs_dtype_is_float(dt)) return false;
    switch (op) {
    case XCS_OP_EXP: case XCS_OP_LOG: case XCS_OP_LOG1P: case XCS_OP_EXPM1: case XCS_OP_SIN: case XCS_OP_COS:
    case XCS_OP_TANH: case XCS_OP_SIGMOID: case XCS_OP_GELU: case XCS_OP_ERF: case XCS_OP_POW:
    case XCS_OP_TAN: case XCS_OP_ARCSIN: case XCS_OP_ARCCOS: case XCS_OP_ARCTAN: case XCS_OP_SINH: case XCS_OP_COSH:
    case XCS_OP_ARCSINH: case XCS_OP_ARCCOSH: case XCS_OP_ARCTANH: case XCS_OP_LOG2: case XCS_OP_LOG10:
    case XCS_OP_EXP2: case XCS_OP_ARCTAN2: case XCS_OP_HYPOT: case XCS_OP_CBRT: /* (the CPU's vmath, CUDA's cbrtf: 1 ulp apart) */
        return true;
    default: return false;
    }
}

static bool is_logic(xcs_op op) { return xcs_op_get_info(op)->rule == XCS_RULE_LOGIC; }

static bool has_kernel(xcs_op op, xcs_dtype dt) {
    return arity(op) > 0 && xcs_ew_kernel_get(op, dt) != NULL && (!is_logic(op) || dt == XCS_BOOL);
}

static const xcs_dtype compute_dtypes[] = {XCS_BOOL, XCS_I32, XCS_I64, XCS_F32, XCS_F64};
static const xcs_dtype float_dtypes[] = {XCS_F32, XCS_F64, XCS_F16, XCS_BF16};

/* ---------------------------------------------------------------- values */

/* Mostly modest values (so transcendental results stay normal numbers on
 * both sides), small integers (ties, exact quotients, zero divisors) and
 * the special values. */
static double rnd_real(void) {
    /* ties of the 16-bit roundings (1 + 2^-11, 1 + 2^-8), the one float32
     * would round twice (1 + 2^-11 + 2^-40), float16 subnormals */
    static const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 0.5, -0.5, 1.5, 2.5, -2.5, 1.0, -1.0,
                                     40.0, 1e3, -1e3, 1e30, 3e-30, 65504.0, 7e4, 1.00048828125, 1.00390625,
                                     1.00048828125 + 0x1p-40, 6e-8, 1e-5, -3e-6};
    unsigned r = rnd(100);
    if (r < 10) return special[rnd(sizeof special / sizeof *special)];
    if (r < 30) return (double)((int)rnd(11) - 5);
    return test_rnd_unit(&R) * 8.0 - 4.0;
}

static int64_t rnd_int(void) {
    static const int64_t special[] = {0, 1, -1, 2, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX, -2};
    unsigned r = rnd(100);
    if (r < 45) return (int64_t)rnd(19) - 9;
    if (r < 75) return (int64_t)rnd(2001) - 1000;
    if (r < 88) return special[rnd(sizeof special / sizeof *special)];
    return (int64_t)test_rnd(&R);
}

/* Writes a random value of dt at element i of data. */
static void fill_random(xcs_dtype dt, char *data, int64_t i) {
    switch (dt) {
    case XCS_BOOL: data[i] = (char)rnd(2); break;
    case XCS_I32: ((int32_t *)(void *)data)[i] = (int32_t)rnd_int(); break;
    case XCS_I64: ((int64_t *)(void *)data)[i] = rnd_int(); break;
    default: test_store(dt, data, i, 0, rnd_real()); break;
    }
}

/* ---------------------------------------------------------------- tensors */

/* A layout: dims reversed in memory (transposed), every stride doubled
 * (gaps), dim 0 flipped, dims in bcast with stride 0 (all dims: one
 * broadcast scalar), and the base `off` elements into the storage (off
 * the vec4 alignment when odd). */
enum { LAY_T = 1, LAY_STEP = 2, LAY_FLIP = 4 };
typedef struct lay {
    unsigned bits, bcast;
    int off;
} lay;

#define GUARD 3 /* elements past the last one reachable, which nothing may write */

/* An owned tensor of that shape and layout over fresh storage filled with
 * random values (fill_random) or a byte (sentinel >= 0). */
static xcs_tensor *make_tensor(xcs_dtype dt, int nd, const int64_t *shape, lay L, int sentinel) {
    int64_t mstr[XCS_MAX_DIMS], str[XCS_MAX_DIMS], n = 1, off = L.off;
    int step = L.bits & LAY_STEP ? 2 : 1;
    for (int i = nd - 1; i >= 0; i--) { /* memory order: position i holds logical dim perm(i) */
        int d = L.bits & LAY_T ? nd - 1 - i : i;
        mstr[d] = n * step;
        n *= shape[d] > 0 ? shape[d] : 1;
    }
    for (int d = 0; d < nd; d++) {
        str[d] = L.bcast >> d & 1u ? 0 : mstr[d];
        if (d == 0 && (L.bits & LAY_FLIP) && shape[0] > 1) {
            off += (shape[0] - 1) * str[0];
            str[0] = -str[0];
        }
    }
    int64_t cap = L.off + n * step + GUARD;
    size_t es = xcs_dtype_size(dt);
    xcs_storage *s = xcs_storage_new((size_t)cap * es, XCS_DEVICE_CPU);
    if (!s) return NULL;
    if (sentinel >= 0) memset(s->data, sentinel, (size_t)cap * es);
    else
        for (int64_t i = 0; i < cap; i++) fill_random(dt, s->data, i);
    xcs_tensor *t = NULL;
    if (xcs_tensor_from_storage(s, dt, nd, shape, str, off, &t) != XCS_OK)
        fprintf(stderr, "make_tensor: %s\n", xcs_last_error());
    xcs_storage_release(s);
    return t;
}

/* Element `flat` (C order over t's shape) of t. */
static const char *elem_at(const xcs_tensor *t, int64_t flat) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (flat % t->shape[d]) * t->strides[d];
        flat /= t->shape[d];
    }
    return (const char *)t->storage->data + off * (int64_t)xcs_dtype_size(t->dtype);
}

static int64_t numel_of(int nd, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    return n;
}

/* ---------------------------------------------------------------- comparison */

/* TOL_F32_ILL: a float32 op whose result amplifies the rounding of an
 * intermediate (gelu's erfc(-x / sqrt 2) in the far tail: the argument is
 * rounded to float32 and erfc's relative condition there is ~x^2, so two
 * faithful float32 implementations differ by 1e-5 relative at x = -13). */
typedef enum { TOL_EXACT, TOL_F32, TOL_F64, TOL_F32_ILL } tol;

/* The tolerance of op's result in compute dtype dt (transcendental ops). */
static tol tol_of(xcs_op op, xcs_dtype dt) {
    if (dt == XCS_F64) return TOL_F64;
    return op == XCS_OP_GELU || op == XCS_OP_POW ? TOL_F32_ILL : TOL_F32;
}

static bool close_real(double a, double b, double rtol, double atol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (a == b) return true;
    if (isinf(a) || isinf(b)) return false;
    return fabs(a - b) <= rtol * fmax(fabs(a), fabs(b)) + atol;
}

/* A 16-bit float's bits on a line where neighbours differ by one. */
static int half_order(uint16_t u) { return u & 0x8000u ? -(int)(u & 0x7fffu) : (int)u; }

static bool half_nan(xcs_dtype dt, uint16_t u) {
    return dt == XCS_F16 ? (u & 0x7c00u) == 0x7c00u && (u & 0x3ffu) : (u & 0x7f80u) == 0x7f80u && (u & 0x7fu);
}

/* One element of dtype dt: a (the kernel's) against b (the CPU's). */
static bool elem_equal(xcs_dtype dt, const char *a, const char *b, tol t) {
    switch (dt) {
    case XCS_F32: {
        float x, y;
        memcpy(&x, a, 4), memcpy(&y, b, 4);
        if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
        if (t == TOL_EXACT) return memcmp(a, b, 4) == 0;
        return close_real(x, y, t == TOL_F32_ILL ? 2e-4 : t == TOL_F32 ? 1e-5 : 3e-7, 8 * FLT_TRUE_MIN);
    }
    case XCS_F64: {
        double x, y;
        memcpy(&x, a, 8), memcpy(&y, b, 8);
        if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
        if (t == TOL_EXACT) return memcmp(a, b, 8) == 0;
        return t == TOL_F32_ILL ? close_real(x, y, 2e-4, 8 * FLT_TRUE_MIN)
               : t == TOL_F32   ? close_real(x, y, 1e-5, 8 * FLT_TRUE_MIN)
                                : close_real(x, y, 1e-12, 8 * DBL_TRUE_MIN);
    }
    case XCS_F16: case XCS_BF16: {
        uint16_t x, y;
        memcpy(&x, a, 2), memcpy(&y, b, 2);
        if (half_nan(dt, x) || half_nan(dt, y)) return half_nan(dt, x) && half_nan(dt, y);
        if (t == TOL_EXACT) return x == y;
        return abs(half_order(x) - half_order(y)) <= 1;
    }
    default: return memcmp(a, b, xcs_dtype_size(dt)) == 0;
    }
}

static void elem_str(xcs_dtype dt, const char *p, char *buf, size_t cap) {
    switch (dt) {
    case XCS_BOOL: snprintf(buf, cap, "%d", *(const unsigned char *)p); break;
    case XCS_I32: { int32_t v; memcpy(&v, p, 4); snprintf(buf, cap, "%d", v); break; }
    case XCS_I64: { int64_t v; memcpy(&v, p, 8); snprintf(buf, cap, "%lld", (long long)v); break; }
    case XCS_F32: { float v; memcpy(&v, p, 4); snprintf(buf, cap, "%.9g (0x%08x)", v, xcs_f32_bits(v)); break; }
    case XCS_F64: { double v; memcpy(&v, p, 8); snprintf(buf, cap, "%.17g", v); break; }
    case XCS_F16: case XCS_BF16: {
        uint16_t u;
        memcpy(&u, p, 2);
        snprintf(buf, cap, "%.6g (0x%04x)", dt == XCS_F16 ? xcs_f16_to_f32(u) : xcs_bf16_to_f32(u), u);
        break;
    }
    default: snprintf(buf, cap, "?");
    }
}

/* ---------------------------------------------------------------- cases */

typedef enum { CASE_ONE_OP, CASE_CHAIN, CASE_STEPS } case_kind;

typedef struct tcase {
    case_kind kind;
    xcs_fused_program p;
    int n_in, n_out;
    xcs_tensor *in[XCS_FUSED_MAX_IO];
    xcs_tensor *out_k[XCS_FUSED_MAX_IO], *out_c[XCS_FUSED_MAX_IO]; /* the kernel's, the CPU's: one layout */
    tol out_tol[XCS_FUSED_MAX_IO];
    xcs_cuda_spec spec;
    xcs_cuda_args args;
    unsigned err_word;
    int expect_err; /* -1: whatever the CPU reports */
    unsigned blocks;
    char desc[200];
} tcase;

#define BATCH 128
static tcase *batch[BATCH];
static int batch_n;

static void case_free(tcase *c) {
    for (int k = 0; k < c->n_in; k++) xcs_tensor_free(c->in[k]);
    for (int k = 0; k < c->n_out; k++) xcs_tensor_free(c->out_k[k]), xcs_tensor_free(c->out_c[k]);
    free(c);
}

/* t as a kernel operand over a space of nd dims (backend.c's operand_of,
 * with t's host address for the device one). */
static xcs_cu_operand host_operand(const xcs_tensor *t, int nd) {
    xcs_cu_operand o;
    memset(&o, 0, sizeof o);
    o.base = (xcs_cu_ptr)(uintptr_t)xcs_tensor_data(t);
    o.dtype = t->dtype;
    for (int d = 0; d < nd; d++) {
        int src = d - (nd - t->ndim);
        o.strides[d] = src >= 0 && t->shape[src] != 1 ? t->strides[src] : 0;
    }
    return o;
}

/* The argument block, variant and grid the runtime picks for the case
 * (xcs_cu_fused_launch, over host addresses, for an 80-SM device); the grid
 * the runtime's (mode 0), one block (1: the grid-stride loops do all) or
 * one more than needed (2).  False for an empty space (no launch). */
static bool case_launch_setup(tcase *c, int grid_mode) {
    const xcs_fused_program *p = &c->p;
    xcs_cu_operand in[XCS_FUSED_MAX_IO], out[XCS_FUSED_MAX_IO];
    for (int k = 0; k < p->n_inputs; k++) in[k] = host_operand(c->in[k], p->ndim);
    for (int k = 0; k < p->n_outputs; k++) out[k] = host_operand(c->out_k[k], p->ndim);
    long long blocks = 0;
    if (!xcs_cu_fused_launch(p, in, out, 80, &c->spec, &c->args, &blocks)) return false;
    c->blocks = grid_mode == 1 ? 1u : grid_mode == 2 ? (unsigned)blocks + 1 : (unsigned)blocks;
    c->args.err = &c->err_word;
    return true;
}

/* Outputs of the case's dtypes and layout: a kernel's and the CPU's. */
static bool case_outputs(tcase *c, const xcs_dtype *dts, lay L) {
    c->n_out = c->p.n_outputs;
    for (int k = 0; k < c->n_out; k++) {
        c->out_k[k] = make_tensor(dts[k], c->p.ndim, c->p.shape, L, 0xa5);
        c->out_c[k] = make_tensor(dts[k], c->p.ndim, c->p.shape, L, 0x5a);
        if (!c->out_k[k] || !c->out_c[k]) return false;
    }
    return true;
}

static const char *variant_name(const xcs_cuda_spec *s) {
    if (!s->flat) return "generic";
    if (s->vec4) return s->scalar_inputs ? "vec4+scalar" : "vec4";
    return s->scalar_inputs ? "flat+scalar" : "flat";
}

/* ---------------------------------------------------------------- checking */

/* Elements of t's storage outside its view must keep the fill byte. */
static bool untouched_ok(const xcs_tensor *t, int fill) {
    size_t es = xcs_dtype_size(t->dtype), n = t->storage->nbytes / es;
    unsigned char *mark = calloc(n, 1);
    if (!mark) return false;
    int64_t numel = xcs_tensor_numel(t);
    for (int64_t i = 0; i < numel; i++) mark[(elem_at(t, i) - (const char *)t->storage->data) / (int64_t)es] = 1;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (mark[i]) continue;
        for (size_t b = 0; b < es; b++) ok &= ((const unsigned char *)t->storage->data)[i * es + b] == fill;
    }
    free(mark);
    return ok;
}

/* The kernel's output against a reference, element by element; the first
 * mismatch printed with the inputs at that element. */
/* True when element i of a float32/float64 x is NaN. */
static bool elem_nan(const xcs_tensor *x, int64_t i) {
    double v = xcs_dtype_is_float(x->dtype) ? xcs_tensor_get_f64(x, i) : 0;
    return v != v;
}

/* copysign(x, y) with y NaN: the sign of a NaN is the platform's (x86 makes
 * them negative, CUDA positive, and compilers fold copysign(x, acosh(...))
 * to |x|, acosh being "non-negative"), so only the magnitude is compared. */
static bool nan_signed(const xcs_fused_instr *in, const xcs_tensor *const *ins, int n_ins, const xcs_tensor *got,
                       const xcs_tensor *want, int64_t i) {
    return in && in->kind == XCS_FUSED_OP && in->op == XCS_OP_COPYSIGN && n_ins == 2 && elem_nan(ins[1], i) &&
           fabs(xcs_tensor_get_f64(got, i)) == fabs(xcs_tensor_get_f64(want, i));
}

static bool compare_outputs(const tcase *c, const char *what, const xcs_tensor *got, const xcs_tensor *want,
                            tol t, const xcs_fused_instr *in, const xcs_tensor *const *ins, int n_ins) {
    int64_t n = xcs_tensor_numel(got);
    for (int64_t i = 0; i < n; i++) {
        if (elem_equal(got->dtype, elem_at(got, i), elem_at(want, i), t)) continue;
        if (nan_signed(in, ins, n_ins, got, want, i)) continue;
        char g[64], w[64];
        elem_str(got->dtype, elem_at(got, i), g, sizeof g);
        elem_str(want->dtype, elem_at(want, i), w, sizeof w);
        fprintf(stderr, "MISMATCH %s [%s, %s, %u blocks] %s: element %lld: kernel %s, CPU %s; inputs:", c->desc,
                variant_name(&c->spec), c->spec.name, c->blocks, what, (long long)i, g, w);
        for (int k = 0; k < n_ins; k++) {
            char v[64];
            elem_str(ins[k]->dtype, elem_at(ins[k], i), v, sizeof v);
            fprintf(stderr, " %s %s", xcs_dtype_name(ins[k]->dtype), v);
        }
        fprintf(stderr, "\n");
        return false;
    }
    elements_compared += n;
    return true;
}

static const xcs_backend *cpu;

/* The CPU's result of instruction `in` (a LOAD, OP or CAST of c's
 * program, or a CAST standing for a converting STORE) recomputed from the
 * kernel's own operands: its stored registers, or the input for a LOAD.
 * An owned C-contiguous tensor of dtype out_dt; ins/n_ins: the operands. */
static xcs_tensor *cpu_step(const tcase *c, const xcs_fused_instr *in, const xcs_dtype *reg_dt, xcs_dtype out_dt,
                            const xcs_tensor **ins, int *n_ins) {
    xcs_fused_program q;
    memset(&q, 0, sizeof q);
    q.ndim = c->p.ndim;
    memcpy(q.shape, c->p.shape, sizeof q.shape);
    int n = in->kind == XCS_FUSED_OP ? arity(in->op) : 1;
    const int src[3] = {in->a, in->b, in->c};
    for (int k = 0; k < n; k++) {
        ins[k] = in->kind == XCS_FUSED_LOAD ? c->in[in->a] : c->out_k[src[k]];
        xcs_dtype dt = in->kind == XCS_FUSED_LOAD ? in->dtype : reg_dt[src[k]];
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, k, k, -1, -1, dt, dt};
    }
    *n_ins = n;
    q.n_inputs = n;
    q.n_outputs = 1;
    int r = in->kind == XCS_FUSED_LOAD ? 0 : n;
    if (in->kind == XCS_FUSED_OP)
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, in->op, n, 0, n > 1 ? 1 : -1, n > 2 ? 2 : -1,
                                                 in->dtype, in->dtype};
    else if (in->kind == XCS_FUSED_CAST)
        q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_CAST, XCS_OP_COPY, n, 0, -1, -1, in->dtype, in->src_dtype};
    q.instr[q.n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, r, -1, -1, out_dt, out_dt};
    q.n_regs = n + 1;
    xcs_tensor *out = NULL;
    if (xcs_tensor_empty(out_dt, q.ndim, q.shape, &out)) return NULL;
    xcs_status st = cpu->run_fused(&q, ins, &out);
    if (st != XCS_OK && st != XCS_ERR_ZERO_DIV && st != XCS_ERR_VALUE) {
        fprintf(stderr, "%s: the CPU refused a step: %s\n", c->desc, xcs_last_error());
        xcs_tensor_free(out);
        return NULL;
    }
    xcs_error_clear();
    return out;
}

/* Register dtypes after each instruction (what a STORE of it writes). */
static void reg_dtypes(const xcs_fused_program *p, xcs_dtype *reg_dt) {
    for (int i = 0; i < p->n_instr; i++) {
        const xcs_fused_instr *in = &p->instr[i];
        if (in->kind == XCS_FUSED_OP) reg_dt[in->dst] = xcs_ew_out_dtype(in->op, in->dtype);
        else if (in->kind == XCS_FUSED_LOAD || in->kind == XCS_FUSED_CAST) reg_dt[in->dst] = in->dtype;
    }
}

/* Runs case c (kernel `index` of kh) and checks it. */
static void case_check(tcase *c, xcs_kernel_host *kh, int index) {
    c->err_word = 0;
    CHECK_OK(xcs_kernel_host_launch(kh, index, &c->args, c->blocks, XCS_CUDA_BLOCK));
    kernels_run++;
    variants[c->spec.flat ? 1 + (c->spec.scalar_inputs != 0) + 2 * c->spec.vec4 : 0]++;
    xcs_status st = cpu->run_fused(&c->p, (const xcs_tensor *const *)c->in, c->out_c);
    char msg[400];
    snprintf(msg, sizeof msg, "%s", st ? xcs_last_error() : "");
    xcs_error_clear();
    bool ok = st == XCS_OK || st == XCS_ERR_ZERO_DIV || st == XCS_ERR_VALUE;
    if (!ok) fprintf(stderr, "%s: the CPU refused the program: %s\n", c->desc, msg);
    CHECK(ok);
    /* the error word: what the runtime turns into the CPU's errors */
    unsigned e = c->err_word;
    bool err_ok = (st == XCS_OK) == (e == 0) && (st != XCS_ERR_ZERO_DIV || (e & 1u)) &&
                  (st != XCS_ERR_VALUE || (e & 2u)) && (e & ~3u) == 0;
    if (c->expect_err >= 0) err_ok &= e == (unsigned)c->expect_err;
    if (!err_ok)
        fprintf(stderr, "%s [%s]: error word 0x%x, CPU %s (%s), expected 0x%x\n", c->desc, variant_name(&c->spec), e,
                xcs_status_name(st), msg, c->expect_err);
    CHECK(err_ok);
    for (int k = 0; k < c->n_out; k++) CHECK(untouched_ok(c->out_k[k], 0xa5));
    char what[64];
    if (c->kind != CASE_STEPS) {
        for (int k = 0; k < c->n_out; k++) {
            snprintf(what, sizeof what, "output %d", k);
            CHECK(compare_outputs(c, what, c->out_k[k], c->out_c[k], c->out_tol[k], NULL,
                                  (const xcs_tensor *const *)c->in, c->n_in));
        }
        return;
    }
    /* instruction by instruction: output r holds register r (its dtype),
     * the last output the last register converted; registers no
     * transcendental op (or copysign, whose result shows a NaN's platform
     * sign) feeds are the CPU's whole-program results too */
    xcs_dtype reg_dt[XCS_FUSED_MAX_REGS];
    reg_dtypes(&c->p, reg_dt);
    bool tainted[XCS_FUSED_MAX_REGS] = {false};
    for (int i = 0; i < c->p.n_instr; i++) {
        const xcs_fused_instr *in = &c->p.instr[i];
        if (in->kind == XCS_FUSED_OP)
            tainted[in->dst] = is_transcendental(in->op, in->dtype) || in->op == XCS_OP_COPYSIGN /* NaN signs */ ||
                               tainted[in->a] ||
                               (in->b >= 0 && tainted[in->b]) || (in->c >= 0 && tainted[in->c]);
        else if (in->kind == XCS_FUSED_CAST) tainted[in->dst] = tainted[in->a];
        else if (in->kind == XCS_FUSED_STORE && !tainted[in->a]) {
            snprintf(what, sizeof what, "output %d (whole program)", in->dst);
            CHECK(compare_outputs(c, what, c->out_k[in->dst], c->out_c[in->dst], TOL_EXACT, NULL,
                                  (const xcs_tensor *const *)c->in, c->n_in));
        }
    }
    for (int i = 0; i < c->p.n_instr; i++) {
        const xcs_fused_instr *in = &c->p.instr[i];
        const xcs_tensor *ins[3];
        int n_ins = 0;
        tol t = TOL_EXACT;
        xcs_tensor *want = NULL;
        if (in->kind == XCS_FUSED_STORE) {
            if (in->dst != c->n_out - 1) continue; /* a register's own store: checked at its instruction */
            xcs_dtype to = c->out_k[in->dst]->dtype;
            const xcs_fused_instr cv = {XCS_FUSED_CAST, XCS_OP_COPY, in->dst, in->a, -1, -1, to, reg_dt[in->a]};
            want = cpu_step(c, &cv, reg_dt, to, ins, &n_ins);
        } else {
            want = cpu_step(c, in, reg_dt, reg_dt[in->dst], ins, &n_ins);
            if (in->kind == XCS_FUSED_OP && is_transcendental(in->op, in->dtype))
                t = tol_of(in->op, in->dtype);
        }
        CHECK(want != NULL);
        if (!want) continue;
        snprintf(what, sizeof what, "instruction %d (%s)", i,
                 in->kind == XCS_FUSED_OP     ? xcs_op_name(in->op)
                 : in->kind == XCS_FUSED_LOAD ? "load"
                 : in->kind == XCS_FUSED_CAST ? "cast"
                                              : "converting store");
        CHECK(compare_outputs(c, what, c->out_k[in->dst], want, t, in, ins, n_ins));
        xcs_tensor_free(want);
    }
}

/* Compiles the batch as one shared object (the prelude once), runs and
 * checks each case, frees them. */
static void flush_batch(void) {
    if (batch_n == 0) return;
    char *srcs[BATCH] = {NULL};
    char names[BATCH][16];
    const char *name_ptrs[BATCH];
    size_t plen = xcs_cuda_prelude(NULL, 0), total = plen + 1;
    int n = 0;
    tcase *ok_cases[BATCH];
    for (int i = 0; i < batch_n; i++) {
        tcase *c = batch[i];
        snprintf(names[n], sizeof names[n], "k%d", n);
        c->spec.name = names[n];
        c->spec.no_prelude = true;
        char *s = xcs_cuda_codegen_alloc(&c->spec);
        if (!s) {
            fprintf(stderr, "%s [%s]: codegen refused it: %s\n", c->desc, variant_name(&c->spec), xcs_last_error());
            CHECK(s != NULL);
            case_free(c);
            continue;
        }
        srcs[n] = s;
        name_ptrs[n] = names[n];
        ok_cases[n++] = c;
        total += strlen(s);
    }
    batch_n = 0;
    char *all = malloc(total);
    CHECK(all != NULL);
    if (all && n > 0) {
        xcs_cuda_prelude(all, plen + 1);
        size_t len = plen;
        for (int i = 0; i < n; i++) {
            size_t l = strlen(srcs[i]);
            memcpy(all + len, srcs[i], l + 1);
            len += l;
        }
        xcs_kernel_host *kh = NULL;
        xcs_status st = xcs_kernel_host_compile(all, n, name_ptrs, "xcs_args", &kh);
        if (st) fprintf(stderr, "batch %d: %s\n", batches, xcs_last_error());
        CHECK_OK(st);
        batches++;
        for (int i = 0; kh && i < n; i++) {
            size_t before = (size_t)check_failures;
            case_check(ok_cases[i], kh, i);
            if ((size_t)check_failures != before) fprintf(stderr, "---- kernel of %s ----\n%s", ok_cases[i]->desc, srcs[i]);
        }
        xcs_kernel_host_free(kh);
    }
    free(all);
    for (int i = 0; i < n; i++) {
        free(srcs[i]);
        case_free(ok_cases[i]);
    }
}

static void add_case(tcase *c) {
    batch[batch_n++] = c;
    if (batch_n == BATCH) flush_batch();
}

/* ---------------------------------------------------------------- shapes and layouts */

typedef struct shape { int nd; int64_t s[XCS_MAX_DIMS]; } shape;
static const shape shapes[] = {
    {0, {0}},      {1, {1}},         {1, {7}},       {1, {64}},         {1, {1031}}, {2, {3, 5}},
    {2, {4, 6}},   {2, {33, 17}},    {2, {2, 1030}}, {3, {2, 3, 4}},    {3, {5, 1, 9}}, {3, {4, 1, 8}},
    {4, {3, 4, 5, 2}}, {2, {1, 1}},  {2, {0, 3}},    {1, {4096}},
    {6, {2, 3, 1, 2, 3, 2}}, {8, {2, 1, 2, 2, 1, 3, 1, 2}},
};
#define N_SHAPES (sizeof shapes / sizeof *shapes)

/* Layout classes: what the runtime then picks. */
enum { L_CONTIG, L_STRIDED, L_SCALAR, L_MISALIGNED, L_COUNT };

/* Input k's layout in class cls (n inputs). */
static lay input_lay(int cls, int k, int n, int nd) {
    lay L = {0, 0, 0};
    switch (cls) {
    case L_STRIDED:
        if (k == 0 || rnd(2)) {
            static const unsigned pick[] = {LAY_T, LAY_STEP, LAY_FLIP, LAY_T | LAY_FLIP, LAY_STEP | LAY_T, 0};
            L.bits = pick[rnd(sizeof pick / sizeof *pick)];
            if (nd > 1 && (L.bits == 0 || rnd(3) == 0)) L.bcast = 1u << rnd((unsigned)nd); /* a row/column broadcast */
        }
        break;
    case L_SCALAR:
        if (k == (n > 1 ? 1 : 0) || rnd(4) == 0) L.bcast = (1u << nd) - 1;
        break;
    case L_MISALIGNED:
        if (k == 0) L.off = 1 + (int)rnd(3);
        break;
    default: break;
    }
    return L;
}

static lay output_lay(int cls) {
    lay L = {0, 0, 0};
    if (cls == L_STRIDED && rnd(2)) L.bits = rnd(2) ? LAY_T : LAY_STEP;
    if (cls == L_MISALIGNED && rnd(2)) L.off = 2;
    return L;
}

static const shape *pick_shape(bool mult4) {
    for (;;) {
        const shape *s = &shapes[rnd(N_SHAPES)];
        if (!mult4 || numel_of(s->nd, s->s) % 4 == 0) return s;
    }
}

static tcase *case_new(case_kind kind, const shape *s) {
    tcase *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kind = kind;
    c->expect_err = -1;
    c->p.ndim = s->nd;
    for (int d = 0; d < s->nd; d++) c->p.shape[d] = s->s[d];
    return c;
}

/* Inputs of the given dtypes in layout class cls; outputs too; the launch.
 * False (c freed) for an empty space, which the runtime does not launch. */
static bool case_finish(tcase *c, const xcs_dtype *in_dt, const xcs_dtype *out_dt, int cls) {
    c->n_in = c->p.n_inputs;
    for (int k = 0; k < c->n_in; k++) {
        c->in[k] = make_tensor(in_dt[k], c->p.ndim, c->p.shape, input_lay(cls, k, c->n_in, c->p.ndim), -1);
        CHECK(c->in[k] != NULL);
    }
    CHECK(case_outputs(c, out_dt, output_lay(cls)));
    int grid = rnd(4);
    if (!case_launch_setup(c, grid == 3 ? 0 : grid)) {
        case_free(c);
        return false;
    }
    size_t l = strlen(c->desc);
    char sh[64];
    snprintf(c->desc + l, sizeof c->desc - l, " shape %s", xcs_shape_str(c->p.ndim, c->p.shape, sh, sizeof sh));
    return true;
}

/* ---------------------------------------------------------------- one-op programs */

/* out0 = op(in0.., computed in dt): each input stored as its LOAD's dtype
 * or another (converted by the LOAD), the result stored as the op's dtype
 * or another (converted by the STORE; float ones only after a
 * transcendental op, whose neighbouring results could truncate apart). */
static void one_op_case(xcs_op op, xcs_dtype dt, int cls) {
    bool tr = is_transcendental(op, dt);
    const shape *s = pick_shape(cls == L_CONTIG && rnd(4) != 0);
    tcase *c = case_new(CASE_ONE_OP, s);
    if (!c) return;
    xcs_fused_program *p = &c->p;
    int n = arity(op);
    p->n_inputs = n;
    p->n_outputs = 1;
    xcs_dtype in_dt[3], out_dt[1];
    for (int k = 0; k < n; k++) {
        xcs_dtype rd = xcs_ew_in_dtype(op, k, dt);
        p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, k, k, -1, -1, rd, rd};
        in_dt[k] = rnd(3) ? rd : (xcs_dtype)rnd(XCS_DTYPE_COUNT);
        if (rd == XCS_F32 && rnd(3) == 0) in_dt[k] = rnd(2) ? XCS_F16 : XCS_BF16; /* the 16-bit floats' own path */
    }
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, op, n, 0, n > 1 ? 1 : -1, n > 2 ? 2 : -1, dt, dt};
    xcs_dtype od = xcs_ew_out_dtype(op, dt);
    out_dt[0] = rnd(3) ? od : tr ? float_dtypes[rnd(4)] : (xcs_dtype)rnd(XCS_DTYPE_COUNT);
    if (od == XCS_F32 && rnd(3) == 0) out_dt[0] = rnd(2) ? XCS_F16 : XCS_BF16;
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, n, -1, -1, od, od};
    p->n_regs = n + 1;
    c->out_tol[0] = !tr ? TOL_EXACT : tol_of(op, dt);
    snprintf(c->desc, sizeof c->desc, "%s(%s", xcs_op_name(op), xcs_dtype_name(in_dt[0]));
    for (int k = 1; k < n; k++)
        snprintf(c->desc + strlen(c->desc), sizeof c->desc - strlen(c->desc), ", %s", xcs_dtype_name(in_dt[k]));
    snprintf(c->desc + strlen(c->desc), sizeof c->desc - strlen(c->desc), ") in %s -> %s", xcs_dtype_name(dt),
             xcs_dtype_name(out_dt[0]));
    if (case_finish(c, in_dt, out_dt, cls)) add_case(c);
}

/* Every (op, compute dtype) the CPU has, in each layout class. */
static void test_every_op(void) {
    for (int op = 0; op < XCS_OP_COUNT; op++)
        for (size_t d = 0; d < sizeof compute_dtypes / sizeof *compute_dtypes; d++) {
            if (!has_kernel((xcs_op)op, compute_dtypes[d])) continue;
            one_op_case((xcs_op)op, compute_dtypes[d], L_CONTIG);
            one_op_case((xcs_op)op, compute_dtypes[d], L_STRIDED);
            one_op_case((xcs_op)op, compute_dtypes[d], rnd(2) ? L_SCALAR : L_MISALIGNED);
        }
    flush_batch();
}

/* ---------------------------------------------------------------- the error word */

/* Integer floor_divide / mod / fmod by zero set 1, a negative integer power 2,
 * both 3, neither 0: a divisor / exponent array whose one element is the
 * culprit (or none is). */
static void error_case(xcs_op op, xcs_dtype dt, int bad, int expect, bool both) {
    const shape s = {2, {5, 9}};
    tcase *c = case_new(CASE_ONE_OP, &s);
    if (!c) return;
    xcs_fused_program *p = &c->p;
    p->n_inputs = 2;
    p->n_outputs = both ? 2 : 1;
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 0, 0, -1, -1, dt, dt};
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_LOAD, XCS_OP_COPY, 1, 1, -1, -1, dt, dt};
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, op, 2, 0, 1, -1, dt, dt};
    p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 0, 2, -1, -1, dt, dt};
    if (both) { /* pow(x, y) beside it: y's negative element sets 2 too */
        p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_OP, XCS_OP_POW, 3, 0, 1, -1, dt, dt};
        p->instr[p->n_instr++] = (xcs_fused_instr){XCS_FUSED_STORE, XCS_OP_COPY, 1, 3, -1, -1, dt, dt};
    }
    p->n_regs = 4;
    const xcs_dtype in_dt[2] = {dt, dt}, out_dt[2] = {dt, dt};
    snprintf(c->desc, sizeof c->desc, "error word: %s%s in %s, culprit %d", xcs_op_name(op), both ? " and power" : "",
             xcs_dtype_name(dt), bad);
    if (!case_finish(c, in_dt, out_dt, L_CONTIG)) return;
    /* y: 1..9, but element `bad` (0 for a divisor, -3 for an exponent) */
    for (int64_t i = 0; i < 45; i++) {
        int64_t v = i == bad ? (op == XCS_OP_POW ? -3 : 0) : 1 + i % 9;
        if (both && i == bad + 1) v = -2; /* a negative divisor is fine, a negative exponent is not */
        char *y = (char *)xcs_tensor_data(c->in[1]);
        if (dt == XCS_I32) ((int32_t *)(void *)y)[i] = (int32_t)v;
        else ((int64_t *)(void *)y)[i] = v;
    }
    c->expect_err = expect;
    add_case(c);
}

static void test_error_word(void) {
    const xcs_dtype ints[2] = {XCS_I32, XCS_I64};
    for (int d = 0; d < 2; d++) {
        error_case(XCS_OP_FLOOR_DIV, ints[d], 17, 1, false);
        error_case(XCS_OP_MOD, ints[d], 44, 1, false);
        error_case(XCS_OP_FMOD, ints[d], 30, 1, false);
        error_case(XCS_OP_POW, ints[d], 3, 2, false);
        error_case(XCS_OP_FLOOR_DIV, ints[d], -1, 0, false);
        error_case(XCS_OP_POW, ints[d], -1, 0, false);
        error_case(XCS_OP_MOD, ints[d], 20, 3, true);
    }
    flush_batch();
}

/* ---------------------------------------------------------------- random chains */

/* An op computing in dt with a CPU kernel (exact ones only unless mixed). */
static xcs_op pick_op(xcs_dtype dt, bool mixed) {
    for (int tries = 0; tries < 200; tries++) {
        xcs_op op = (xcs_op)rnd(XCS_OP_COUNT);
        if (!has_kernel(op, dt)) continue;
        if (is_transcendental(op, dt) && !mixed) continue;
        /* copysign shows a NaN's sign, the platform's (1/sqrt(-3) is -NaN on x86,
         * +NaN in a kernel built otherwise): checked instruction by instruction,
         * where nan_signed allows it, never in an exact chain compared whole */
        if (op == XCS_OP_COPYSIGN && !mixed) continue;
        return op;
    }
    return XCS_OP_ADD;
}

/* A register holding dt, or -1. */
static int reg_of(const xcs_dtype *reg_dt, int n_regs, xcs_dtype dt) {
    int found[XCS_FUSED_MAX_REGS], n = 0;
    for (int r = 0; r < n_regs; r++)
        if (reg_dt[r] == dt) found[n++] = r;
    return n ? found[rnd((unsigned)n)] : -1;
}

/* A random chain: inputs loaded (some as float16/bfloat16 then CAST, some
 * again later as another dtype, one declared and never read), ops in the
 * chain's compute dtype and others the registers hold (compares make bools
 * for where and the logic ops, CASTs move between dtypes).
 *
 * Exact chains (no transcendental op) reuse registers as the fusion pass
 * does (a result overwriting an older register, its operand included),
 * store registers along the way and at the end, some converted, and are
 * compared whole with the CPU's run.  Mixed ones write each register once,
 * store every one as itself and the last converted, and are checked
 * instruction by instruction. */
static void chain_case(bool mixed, int cls) {
    const shape *s = pick_shape(cls == L_CONTIG && rnd(2));
    tcase *c = case_new(mixed ? CASE_STEPS : CASE_CHAIN, s);
    if (!c) return;
    xcs_fused_program *p = &c->p;
    xcs_dtype cd = compute_dtypes[rnd(5)];
    if (mixed && rnd(3)) cd = rnd(2) ? XCS_F32 : XCS_F64;
    xcs_dtype reg_dt[XCS_FUSED_MAX_REGS], in_dt[XCS_FUSED_MAX_IO], out_dt[XCS_FUSED_MAX_IO];
    int n_regs = 0, last = 0, n_out = 0;
    /* mixed: one register per instruction and an output each, plus one */
    const int max_regs = mixed ? XCS_FUSED_MAX_REGS - 1 : XCS_FUSED_MAX_REGS;
#define EMIT(...) (p->instr[p->n_instr++] = (xcs_fused_instr){__VA_ARGS__})
    /* the register an instruction writes: a fresh one, or (exact chains) an old one */
    int dst;
#define NEW_DST() (dst = n_regs < max_regs && (mixed || n_regs < 3 || rnd(4)) ? n_regs++ : (int)rnd((unsigned)n_regs))
    p->n_inputs = 1 + (int)rnd(3);
    for (int k = 0; k < p->n_inputs; k++) {
        in_dt[k] = rnd(2) ? cd : (xcs_dtype)rnd(XCS_DTYPE_COUNT);
        if (cd == XCS_F32 && rnd(2)) in_dt[k] = rnd(2) ? XCS_F16 : XCS_BF16;
        if (xcs_dtype_is_half(in_dt[k]) && rnd(2)) { /* loaded as itself, then widened */
            NEW_DST();
            EMIT(XCS_FUSED_LOAD, XCS_OP_COPY, dst, k, -1, -1, in_dt[k], in_dt[k]);
            reg_dt[dst] = in_dt[k];
            int from = dst;
            NEW_DST();
            EMIT(XCS_FUSED_CAST, XCS_OP_COPY, dst, from, -1, -1, cd, in_dt[k]);
            reg_dt[dst] = cd;
        } else {
            NEW_DST();
            EMIT(XCS_FUSED_LOAD, XCS_OP_COPY, dst, k, -1, -1, cd, cd);
            reg_dt[dst] = cd;
        }
        last = dst;
    }
    int n_loaded = p->n_inputs;
    if (rnd(4) == 0) in_dt[p->n_inputs++] = (xcs_dtype)rnd(XCS_DTYPE_COUNT); /* never loaded */
    int steps = 3 + (int)rnd(mixed ? 10 : 24);
    /* room: the stores at the end, two instructions for a step */
    for (int st = 0; st < 4 * steps && steps > 0 && p->n_instr < XCS_FUSED_MAX_INSTR - 20; st++) {
        if (mixed && n_regs == max_regs) break;
        unsigned what = rnd(12);
        if (!mixed && what == 0 && n_out < XCS_FUSED_MAX_IO - 1) { /* a store along the way */
            int q = (int)rnd((unsigned)n_regs);
            out_dt[n_out] = rnd(3) ? reg_dt[q] : (xcs_dtype)rnd(XCS_DTYPE_COUNT);
            c->out_tol[n_out] = TOL_EXACT;
            EMIT(XCS_FUSED_STORE, XCS_OP_COPY, n_out, q, -1, -1, out_dt[n_out], out_dt[n_out]);
            n_out++;
            continue;
        }
        if (what == 1) { /* an input loaded again, as another dtype */
            int k = (int)rnd((unsigned)n_loaded);
            xcs_dtype to = rnd(8) == 0 && xcs_dtype_is_half(in_dt[k]) ? in_dt[k] : compute_dtypes[rnd(5)];
            NEW_DST();
            EMIT(XCS_FUSED_LOAD, XCS_OP_COPY, dst, k, -1, -1, to, to);
            reg_dt[last = dst] = to;
            steps--;
            continue;
        }
        if (what == 2 || what == 3) { /* a CAST between two dtypes registers can hold */
            int a = (int)rnd((unsigned)n_regs);
            xcs_dtype to = rnd(8) == 0 ? (rnd(2) ? XCS_F16 : XCS_BF16) : compute_dtypes[rnd(5)];
            if (xcs_dtype_is_half(reg_dt[a]) && xcs_dtype_is_half(to)) continue;
            NEW_DST();
            EMIT(XCS_FUSED_CAST, XCS_OP_COPY, dst, a, -1, -1, to, reg_dt[a]);
            reg_dt[last = dst] = to;
            steps--;
            continue;
        }
        /* an op in the chain's dtype mostly, else in a dtype some register holds */
        xcs_dtype dt = cd;
        if (rnd(3) == 0) {
            int a = (int)rnd((unsigned)n_regs);
            if (!xcs_dtype_is_half(reg_dt[a])) dt = reg_dt[a];
        }
        xcs_op op = pick_op(dt, mixed);
        int n = arity(op), src[3] = {-1, -1, -1};
        bool have = true;
        for (int k = 0; k < n && have; k++) have = (src[k] = reg_of(reg_dt, n_regs, xcs_ew_in_dtype(op, k, dt))) >= 0;
        if (!have) continue;
        NEW_DST();
        EMIT(XCS_FUSED_OP, op, dst, src[0], src[1], src[2], dt, dt);
        reg_dt[last = dst] = xcs_ew_out_dtype(op, dt);
        steps--;
    }
    p->n_regs = n_regs;
    if (mixed) { /* every register as itself, then the last one converted */
        for (int q = 0; q < n_regs; q++) {
            EMIT(XCS_FUSED_STORE, XCS_OP_COPY, q, q, -1, -1, reg_dt[q], reg_dt[q]);
            out_dt[q] = reg_dt[q];
        }
        out_dt[n_regs] = (xcs_dtype)rnd(XCS_DTYPE_COUNT);
        EMIT(XCS_FUSED_STORE, XCS_OP_COPY, n_regs, n_regs - 1, -1, -1, out_dt[n_regs], out_dt[n_regs]);
        n_out = n_regs + 1;
    } else { /* the last result, and another register, some converted */
        for (int o = 0; o < 2 && n_out < XCS_FUSED_MAX_IO; o++) {
            int q = o == 0 ? last : (int)rnd((unsigned)n_regs);
            out_dt[n_out] = rnd(3) ? reg_dt[q] : (xcs_dtype)rnd(XCS_DTYPE_COUNT);
            if (reg_dt[q] == XCS_F32 && rnd(3) == 0) out_dt[n_out] = rnd(2) ? XCS_F16 : XCS_BF16;
            EMIT(XCS_FUSED_STORE, XCS_OP_COPY, n_out, q, -1, -1, out_dt[n_out], out_dt[n_out]);
            c->out_tol[n_out++] = TOL_EXACT;
        }
    }
#undef NEW_DST
#undef EMIT
    p->n_outputs = n_out;
    snprintf(c->desc, sizeof c->desc, "%s chain of %d instructions in %s", mixed ? "mixed" : "exact", p->n_instr,
             xcs_dtype_name(cd));
    if (case_finish(c, in_dt, out_dt, cls)) add_case(c);
}

static void test_random_chains(void) {
    for (int t = 0; t < 96; t++) chain_case(t % 2 == 1, t % L_COUNT);
    flush_batch();
}

/* ---------------------------------------------------------------- kernel_host itself */

/* A source that does not compile comes back with the compiler's words; so
 * does a kernel that needs what the shim leaves out (threads that share
 * memory: reductions are not run this way).  Bad names and kernel indices
 * are refused. */
static void test_kernel_host_errors(void) {
    static const char bad[] = "struct xcs_args { int n; };\n"
                              "extern \"C\" __global__ void bad(const xcs_args a) { undeclared_fn(a.n); }\n";
    static const char red[] = "struct xcs_args { int n; };\n"
                              "extern \"C\" __global__ void red(const xcs_args a) {\n"
                              "    __shared__ float part[8];\n    part[threadIdx.x & 7] = 0;\n    __syncthreads();\n}\n";
    const char *bad_name[1] = {"bad"}, *red_name[1] = {"red"};
    xcs_kernel_host *kh = NULL;
    CHECK_ERR(xcs_kernel_host_compile(bad, 1, bad_name, "xcs_args", &kh), XCS_ERR_VALUE, "undeclared_fn");
    CHECK(kh == NULL);
    CHECK_ERR(xcs_kernel_host_compile(red, 1, red_name, "xcs_args", &kh), XCS_ERR_VALUE, "__shared__");
    const char *odd[1] = {"k 1"};
    CHECK_ERR(xcs_kernel_host_compile(bad, 1, odd, "xcs_args", &kh), XCS_ERR_VALUE, "not an identifier");
    CHECK(kh == NULL);
    static const char good[] = "struct xcs_args { unsigned *err; };\n"
                               "extern \"C\" __global__ void __launch_bounds__(256) ok(const xcs_args a) {\n"
                               "    atomicOr(a.err, 1u << (blockIdx.x * blockDim.x + threadIdx.x));\n}\n";
    const char *ok_name[1] = {"ok"};
    CHECK_OK(xcs_kernel_host_compile(good, 1, ok_name, "xcs_args", &kh));
    if (!kh) return;
    unsigned word = 0;
    unsigned *args = &word; /* the argument block: one pointer */
    CHECK_OK(xcs_kernel_host_launch(kh, 0, &args, 3, 4)); /* every (block, thread) once */
    CHECK_EQ_I(word, 0xfffu);
    CHECK_ERR(xcs_kernel_host_launch(kh, 1, &args, 1, 1), XCS_ERR_INDEX, "kernel 1 of 1");
    xcs_kernel_host_free(kh);
}

int main(void) {
    const uint64_t seed = R.state = test_run_seed(); /* fresh programs each run; the seed reproduces one */
    if (!xcs_kernel_host_available()) {
        printf("generated kernels not run: they cannot be built on the host (%s)\n", xcs_last_error());
        return 77;
    }
    CHECK_OK(xcs_host_init());
    cpu = xcs_backend_for(XCS_DEVICE_CPU);
    CHECK(cpu && cpu->run_fused);
    if (!cpu || !cpu->run_fused) return check_report();
    RUN(test_kernel_host_errors);
    RUN(test_error_word);
    RUN(test_every_op);
    RUN(test_random_chains);
    printf("%d kernels run on the host (%d compiles; %d generic, %d flat, %d flat with scalars, %d vec4, %d vec4 with "
           "scalars), %lld elements compared\n",
           kernels_run, batches, variants[0], variants[1], variants[2], variants[3], variants[4], elements_compared);
    int rc = check_report();
    if (rc) printf("reproduce with XCS_TEST_SEED=%llu\n", (unsigned long long)seed);
    return rc;
}
