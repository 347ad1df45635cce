/* test_cuda_host_reduce.c — the generated CUDA kernels whose threads
 * cooperate (reductions, row chains), run on the host against the CPU.
 *
 * kernel_host.h compiles them with XCS_KERNEL_HOST_COOPERATIVE: each
 * block's 256 threads are fibers, __syncthreads a block barrier, the warp
 * shuffles exchanges at a warp barrier, so the cross-warp combines run as
 * they would on a GPU (blocks one after another).  Launches take turns
 * with the scheduler's orders (round-robin, lowest or highest index first,
 * random): each lets other warps run ahead, so a missing barrier shows up
 * as a wrong value under some of them.
 *   fibers      the shim itself: every shuffle kind and width against a
 *               model, shared memory across barriers, threads that return
 *               early, under every order; a block stuck at a barrier and a
 *               partial-warp shuffle are errors, not hangs.
 *   reductions  fused programs ending in REDUCE (sum/prod/max/min) over
 *               every axis set of 1-D..4-D shapes, reduced extents around
 *               the warp/block/unroll sizes (1 .. 20000), bool/int32/int64/
 *               float32/float64 inputs and float16/bfloat16 ones widened
 *               by the LOAD or a CAST, plain, transposed, strided, flipped
 *               and broadcast inputs, elementwise ops (and a stored value)
 *               before the REDUCE, NaN/inf planted or drawn.  The kernel is
 *               launched as xcs_cu_run_fused launches it (one block per
 *               kept output, the reduction output C-contiguous), and a
 *               quarter of the cases again on a 3-block grid (the
 *               grid-stride loop over outputs).  Against the CPU's
 *               run_fused on the same operands: integers, bool, max/min and
 *               stored values exactly (NaN equal NaN: the CPU propagates
 *               it); float sums within n * 2^-51 * sum|v| plus one rounding
 *               of the result (both sides accumulate in double, in
 *               different orders), products within n * 2^-51 relative (an
 *               exp before the REDUCE: 4 ulps more per term).
 *   row chains  softmax, layer norm and a mixed chain (broadcast weight, a
 *               row max, an integer program) over [R, C], C from 1 to 8192,
 *               float32 and float16 inputs: the real chains of the fusion
 *               pass (which needs R > 512 KiB / row, so R is large), on the
 *               mock device of mock_device.h whose run_rows emulates the
 *               chain on every row, then builds the module's spec
 *               (xcs_cuda_row_spec_of) and runs the row kernel here over
 *               rows [r0, r0 + n) of them (n from 1 to 300, the rows first
 *               overwritten with a sentinel), on min(n, 80 * 32) blocks or
 *               fewer (blocks stride over rows); the graph's output against
 *               xcs_graph_run on the CPU: float32 within 1e-5 relative
 *               (layer norm: of 1 + |y|), 16-bit within one ulp, integers
 *               exactly.
 * Kernels are compiled in batches (one shared object each).  Fresh inputs
 * each run: XCS_TEST_SEED (printed) reproduces one.  Without a C++
 * compiler: exit 77 (a CTest skip). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "check.h"
#include "codegen.h"
#include "ew_kernels.h"
#include "graph_prog.h"
#include "half.h"
#include "kernel_host.h"
#include "mock_device.h"
#include "runtime.h"
#include "testutil.h"
#include "xcs_host.h"

static test_rng R;
static unsigned rnd(unsigned n) { return (unsigned)(test_rnd(&R) % n); }

static int red_cases, red_kernels, red_launches, row_graphs, row_kernels, row_launches, batches;
static long long outputs_compared;

/* ---------------------------------------------------------------- elements */

/* Element `flat` (C order over t's shape) of t, as an integer and a double. */
typedef struct val {
    int64_t i;
    double d;
} val;

static val elem(const xcs_tensor *t, int64_t flat) {
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (flat % t->shape[d]) * t->strides[d];
        flat /= t->shape[d];
    }
    const char *p = (const char *)t->storage->data + off * (int64_t)xcs_dtype_size(t->dtype);
    val v = {0, 0};
    uint16_t h;
    switch (t->dtype) {
    case XCS_BOOL: v.i = *(const unsigned char *)p; break;
    case XCS_I32: v.i = *(const int32_t *)(const void *)p; break;
    case XCS_I64: v.i = *(const int64_t *)(const void *)p; break;
    case XCS_F32: v.d = *(const float *)(const void *)p; break;
    case XCS_F64: v.d = *(const double *)(const void *)p; break;
    case XCS_F16: memcpy(&h, p, 2), v.i = h, v.d = xcs_f16_to_f32(h); break;
    case XCS_BF16: memcpy(&h, p, 2), v.i = h, v.d = xcs_bf16_to_f32(h); break;
    default: break;
    }
    if (t->dtype == XCS_BOOL || xcs_dtype_is_int(t->dtype)) v.d = (double)v.i;
    return v;
}

static bool same_float(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* A 16-bit float's bits on a line where neighbours differ by one. */
static int half_order(int64_t u) { return u & 0x8000 ? -(int)(u & 0x7fff) : (int)u; }

/* ---------------------------------------------------------------- values */

enum { V_PLAIN, V_SPECIAL, V_PROD };
typedef struct fill_kind {
    int kind;
    xcs_op op;
} fill_kind;

/* test_make_view's fill: values for a reduction (ctx: a fill_kind).
 * Integer sums and products stay inside int64 (the kernel's accumulator is
 * a signed long long: no overflow to wrap); float products stay near
 * magnitude 1 (no underflow, whose rounding depends on the order). */
static void fill_value(void *ctx, xcs_dtype dt, char *data, int64_t i) {
    const fill_kind *f = ctx;
    const int kind = f->kind;
    static const double special[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1e30, -1e30, 3e-30, 65504.0, 1e5};
    static const int64_t ispecial[] = {INT32_MIN, INT32_MAX, 0, -1, 1, INT64_MIN, INT64_MAX};
    const unsigned n_ispecial = f->op == XCS_OP_SUM ? 5 : 7;
    if (dt == XCS_BOOL) {
        data[i] = (char)(kind == V_PROD ? rnd(16) != 0 : rnd(2));
    } else if (dt == XCS_I32 || dt == XCS_I64) {
        int64_t v;
        if (kind == V_PROD) {
            unsigned r = rnd(8192); /* ~5 factors 2 or -3 in 20000 (x * y: ~10): far from 2^63 */
            v = r == 0 ? 0 : r < 3 ? 2 : r < 5 ? -3 : rnd(2) ? 1 : -1;
        } else if (kind == V_SPECIAL && rnd(20) == 0) {
            v = ispecial[rnd(n_ispecial)];
        } else {
            /* int64 values past int32 where nothing is added or multiplied
             * (max/min); else small enough for sums of 20000 products */
            v = (int64_t)rnd(2001) - 1000;
            if (rnd(8) == 0)
                v *= dt == XCS_I32 ? 1000003 : f->op == XCS_OP_MAX || f->op == XCS_OP_MIN ? 1000000007 : 10007;
        }
        test_store(dt, data, i, dt == XCS_I32 ? (int32_t)v : v, 0);
    } else {
        double u = test_rnd_unit(&R);
        double v = kind == V_PROD ? (rnd(2) ? 1 : -1) * (0.8 + 0.45 * u) : u * 8.0 - 4.0;
        if (kind == V_SPECIAL && rnd(40) == 0) v = special[rnd(sizeof special / sizeof *special)];
        test_store(dt, data, i, 0, v);
    }
}

/* ---------------------------------------------------------------- programs */

static int add_instr(xcs_fused_program *p, xcs_fused_kind kind, xcs_op op, int a, int b, xcs_dtype dt, xcs_dtype src) {
    int dst = kind == XCS_FUSED_STORE || kind == XCS_FUSED_REDUCE ? a : p->n_regs++;
    if (kind == XCS_FUSED_STORE || kind == XCS_FUSED_REDUCE) { /* (a: the output; b: the register) */
        p->instr[p->n_instr++] = (xcs_fused_instr){kind, op, dst, b, -1, -1, dt, dt};
        return -1;
    }
    p->instr[p->n_instr++] = (xcs_fused_instr){kind, op, dst, a, b, -1, dt, src};
    return dst;
}
static int p_load(xcs_fused_program *p, int input, xcs_dtype dt) {
    return add_instr(p, XCS_FUSED_LOAD, XCS_OP_COPY, input, -1, dt, dt);
}
static int p_op(xcs_fused_program *p, xcs_op op, int a, int b, xcs_dtype dt) {
    return add_instr(p, XCS_FUSED_OP, op, a, b, dt, dt);
}
static int p_cast(xcs_fused_program *p, int a, xcs_dtype from, xcs_dtype to) {
    return add_instr(p, XCS_FUSED_CAST, XCS_OP_COPY, a, -1, to, from);
}

/* What REDUCE(op) of a register of dtype dt writes (the CPU's xcs_red_table). */
static xcs_dtype reduce_out_dtype(xcs_op op, xcs_dtype dt) {
    bool sumlike = op == XCS_OP_SUM || op == XCS_OP_PROD;
    return sumlike && !xcs_dtype_is_float(dt) ? XCS_I64 : dt;
}

/* Program shapes (x: input 0, y: input 1; w: x's compute dtype):
 *   T_PLAIN  reduce(x)                     (16-bit x widened by its LOAD)
 *   T_CAST   reduce(cast(x))               (16-bit x: loaded as is, then CAST; int32 x: to float64)
 *   T_MUL    reduce(x * y)                 (y broadcast over dim 0)
 *   T_STORE  s = |x| + y stored, reduce(s) (s in x's storage dtype)
 *   T_CMP    reduce(x > y)                 (a bool register: counts, any, all)
 *   T_EXP    reduce(exp(x - y))            (y broadcast over the reduced dims: softmax's shape; float only) */
enum { T_PLAIN, T_CAST, T_MUL, T_STORE, T_CMP, T_EXP, T_COUNT };
static const char *const tmpl_name[T_COUNT] = {"plain", "cast", "mul", "store", "cmp", "exp"};

/* ---------------------------------------------------------------- reduction cases */

typedef struct rcase {
    char desc[200];
    xcs_fused_program p;
    xcs_dtype xdt;
    int tmpl, red_out, nan_kind;
    xcs_op op;
    bool approx; /* an exp before the REDUCE: the two sides' exp may differ by an ulp */
    xcs_tensor *in[XCS_FUSED_MAX_IO], *want[XCS_FUSED_MAX_IO], *got[XCS_FUSED_MAX_IO], *absum;
    xcs_cuda_spec spec;
    int kernel;
} rcase;

static void rcase_free(rcase *c) {
    for (int k = 0; k < XCS_FUSED_MAX_IO; k++) {
        xcs_tensor_free(c->in[k]);
        xcs_tensor_free(c->want[k]);
        xcs_tensor_free(c->got[k]);
    }
    xcs_tensor_free(c->absum);
    free(c);
}

/* The case's program over shape/axes, its operands (random values) and
 * its output tensors; NULL when the CPU has no kernel for one of its ops
 * (the combination is skipped). */
static rcase *rcase_new(int tmpl, xcs_op op, xcs_dtype xdt, int nd, const int64_t *shape, unsigned axes) {
    const xcs_dtype w = xcs_dtype_is_half(xdt) ? XCS_F32 : xdt;
    if ((tmpl == T_EXP && !xcs_dtype_is_float(w)) || (tmpl == T_STORE && w == XCS_BOOL) ||
        (tmpl == T_CAST && xcs_dtype_is_float(xdt) && !xcs_dtype_is_half(xdt)))
        return NULL;
    rcase *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    xcs_fused_program *p = &c->p;
    p->ndim = nd;
    memcpy(p->shape, shape, sizeof(int64_t) * (size_t)nd);
    p->reduce_axes = axes;
    c->xdt = xdt, c->tmpl = tmpl, c->op = op;
    int n_in = 1, r = -1;
    xcs_dtype rdt = w; /* the reduced register's dtype */
    const int x = tmpl == T_CAST && xcs_dtype_is_half(xdt) ? p_load(p, 0, xdt) : p_load(p, 0, w);
    switch (tmpl) {
    case T_PLAIN: r = x; break;
    case T_CAST:
        rdt = xcs_dtype_is_half(xdt) ? XCS_F32 : xdt == XCS_I32 ? XCS_F64 : XCS_F32;
        r = p_cast(p, x, xcs_dtype_is_half(xdt) ? xdt : w, rdt);
        break;
    case T_MUL: n_in = 2, r = p_op(p, XCS_OP_MUL, x, p_load(p, 1, w), w); break;
    case T_STORE: {
        n_in = 2;
        r = p_op(p, XCS_OP_ADD, p_op(p, XCS_OP_ABS, x, -1, w), p_load(p, 1, w), w);
        add_instr(p, XCS_FUSED_STORE, XCS_OP_COPY, p->n_outputs++, r, xdt, xdt);
        break;
    }
    case T_CMP: n_in = 2, rdt = XCS_BOOL, r = p_op(p, XCS_OP_GT, x, p_load(p, 1, w), w); break;
    default: n_in = 2, c->approx = true, r = p_op(p, XCS_OP_EXP, p_op(p, XCS_OP_SUB, x, p_load(p, 1, w), w), -1, w); break;
    }
    c->red_out = p->n_outputs++;
    const xcs_dtype odt = reduce_out_dtype(op, rdt);
    add_instr(p, XCS_FUSED_REDUCE, op, c->red_out, r, odt, odt);
    p->n_inputs = n_in;
    for (int i = 0; i < p->n_instr; i++) /* the CPU's kernels decide what exists */
        if (p->instr[i].kind == XCS_FUSED_OP && !xcs_ew_kernel_get(p->instr[i].op, p->instr[i].dtype)) {
            free(c);
            return NULL;
        }
    /* operands: x plain, transposed (dims reversed in memory), strided or
     * flipped; y broadcast as its template wants */
    static const int reversed[XCS_MAX_DIMS + 1][XCS_MAX_DIMS] = {{0}, {0}, {1, 0}, {2, 1, 0}, {3, 2, 1, 0}};
    c->nan_kind = op == XCS_OP_PROD ? V_PROD : rnd(3) == 0 ? V_SPECIAL : V_PLAIN;
    for (int k = 0; k < n_in; k++) {
        test_layout L = {0};
        unsigned lay = rnd(6);
        if (k == 0 && lay == 1 && nd >= 2) L.perm = reversed[nd];
        if (k == 0 && lay == 2) L.step = 2;
        if (k == 0 && lay == 3) L.flip = 1u;
        if (k == 1 && (tmpl == T_MUL || tmpl == T_STORE) && nd >= 2) L.bcast = 1u;
        if (k == 1 && tmpl == T_EXP) L.bcast = axes;
        fill_kind f = {c->nan_kind, op};
        c->in[k] = test_make_view(xdt, nd, shape, L, fill_value, &f);
    }
    int64_t rshape[XCS_MAX_DIMS];
    for (int d = 0; d < nd; d++) rshape[d] = axes >> d & 1u ? 1 : shape[d];
    for (int o = 0; o < p->n_outputs; o++) {
        const xcs_fused_instr *in = NULL;
        for (int i = 0; i < p->n_instr; i++)
            if ((p->instr[i].kind == XCS_FUSED_STORE || p->instr[i].kind == XCS_FUSED_REDUCE) && p->instr[i].dst == o)
                in = &p->instr[i];
        const int64_t *s = o == c->red_out ? rshape : shape;
        if (xcs_tensor_empty(in->dtype, nd, s, &c->want[o]) || xcs_tensor_empty(in->dtype, nd, s, &c->got[o])) {
            rcase_free(c);
            return NULL;
        }
    }
    c->spec.p = &c->p;
    for (int k = 0; k < n_in; k++) c->spec.in_dtype[k] = xdt;
    for (int o = 0; o < p->n_outputs; o++) c->spec.out_dtype[o] = c->want[o]->dtype;
    char sh[64] = "";
    for (int d = 0, n = 0; d < nd; d++) n += snprintf(sh + n, sizeof sh - (size_t)n, d ? ",%lld" : "%lld", (long long)shape[d]);
    snprintf(c->desc, sizeof c->desc, "%s %s of %s [%s] axes 0x%x%s", tmpl_name[tmpl], xcs_op_name(op),
             xcs_dtype_name(xdt), sh, axes, c->nan_kind == V_SPECIAL ? " (with NaN/inf)" : "");
    return c;
}

/* Element pointer and per-dim strides of t as a kernel operand over nd
 * dims (xcs_cuda_be's operand_of: a size-1 dim has stride 0). */
static void *operand(const xcs_tensor *t, int64_t *strides) {
    for (int d = 0; d < t->ndim; d++) strides[d] = t->shape[d] != 1 ? t->strides[d] : 0;
    return xcs_tensor_data(t);
}

/* The kernel's arguments and grid as xcs_cu_run_fused picks them
 * (xcs_cu_fused_launch, for an 80-SM device) over host pointers, the
 * outputs c->got, the reduction's output C-contiguous over the kept dims
 * (backend.c's xcs_cuda_be_run_fused sets it so). */
static long long rcase_args(const rcase *c, xcs_cuda_args *a, unsigned *err) {
    const xcs_fused_program *p = &c->p;
    xcs_cu_operand in[XCS_FUSED_MAX_IO], out[XCS_FUSED_MAX_IO];
    for (int k = 0; k < p->n_inputs; k++) {
        memset(&in[k], 0, sizeof in[k]);
        in[k].dtype = c->in[k]->dtype;
        in[k].base = (xcs_cu_ptr)(uintptr_t)operand(c->in[k], in[k].strides);
    }
    for (int o = 0; o < p->n_outputs; o++) {
        memset(&out[o], 0, sizeof out[o]);
        out[o].dtype = c->got[o]->dtype;
        out[o].base = (xcs_cu_ptr)(uintptr_t)operand(c->got[o], out[o].strides);
        if (o == c->red_out) { /* C-contiguous over the kept dims, 0 on the folded ones */
            int64_t s = 1;
            for (int d = p->ndim - 1; d >= 0; d--) {
                bool f = p->reduce_axes >> d & 1u;
                out[o].strides[d] = f ? 0 : s;
                if (!f) s *= p->shape[d];
            }
        }
    }
    xcs_cuda_spec spec;
    long long blocks = 1;
    memset(a, 0, sizeof *a);
    if (!xcs_cu_fused_launch(p, in, out, 80, &spec, a, &blocks)) blocks = 1;
    a->err = err;
    return blocks;
}

/* sum|v| per output (v: the reduced register), for the tolerance of a float
 * sum: the program with |.| before a SUM, on the CPU. */
static xcs_status rcase_absum(rcase *c) {
    const xcs_fused_program *p = &c->p;
    xcs_fused_program q = *p;
    xcs_fused_instr red = q.instr[--q.n_instr];
    int a = p_op(&q, XCS_OP_ABS, red.a, -1, red.dtype);
    add_instr(&q, XCS_FUSED_REDUCE, XCS_OP_SUM, red.dst, a, red.dtype, red.dtype);
    xcs_status st = xcs_tensor_empty(red.dtype, p->ndim, c->want[c->red_out]->shape, &c->absum);
    xcs_tensor *outs[XCS_FUSED_MAX_IO];
    for (int o = 0; o < p->n_outputs; o++) outs[o] = o == c->red_out ? c->absum : c->got[o];
    return st ? st : cpu->run_fused(&q, (const xcs_tensor *const *)c->in, outs);
}

/* Output o of the kernel (c->got) against the CPU's; false on a mismatch
 * (the first few printed). */
static bool rcase_compare(const rcase *c, int o, const char *grid) {
    const xcs_tensor *g = c->got[o], *w = c->want[o];
    const int64_t n = xcs_tensor_numel(w);
    const bool red = o == c->red_out, fl = xcs_dtype_is_float(w->dtype);
    double rn = 1; /* terms per output */
    for (int d = 0; d < c->p.ndim; d++)
        if (c->p.reduce_axes >> d & 1u) rn *= (double)c->p.shape[d];
    const double eps_out = w->dtype == XCS_F32 ? 0x1p-23 : w->dtype == XCS_F64 ? 0x1p-52 : 0;
    /* a product that decays into the subnormals rounds there in an order of
     * its own (no relative bound): a few hundred ulps of the smallest normal */
    const double tiny = w->dtype == XCS_F32 ? 0x1p-140 : 0x1p-1000;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        val gv = elem(g, i), wv = elem(w, i);
        bool ok;
        if (!fl) {
            ok = gv.i == wv.i;
        } else if (!red || c->op == XCS_OP_MAX || c->op == XCS_OP_MIN) { /* exact (the exp template: an ulp) */
            ok = same_float(gv.d, wv.d) ||
                 (c->approx && isfinite(wv.d) && fabs(gv.d - wv.d) <= 4 * eps_out * fabs(wv.d));
        } else if (!isfinite(wv.d) || !isfinite(gv.d)) {
            ok = same_float(gv.d, wv.d);
        } else {
            double m = fmax(fabs(gv.d), fabs(wv.d)), tol;
            if (c->op == XCS_OP_SUM) /* order: n * 2^-51 of the magnitudes summed; exp: 4 ulps of each term */
                tol = rn * 0x1p-51 * elem(c->absum, i).d + eps_out * m + (c->approx ? 4 * eps_out * elem(c->absum, i).d : 0);
            else
                tol = (rn * 0x1p-51 + eps_out + (c->approx ? 4 * rn * eps_out : 0)) * m;
            ok = fabs(gv.d - wv.d) <= tol + tiny;
        }
        if (!ok && bad++ < 5) {
            if (fl)
                fprintf(stderr, "%s%s: output %d element %lld: kernel %.17g, CPU %.17g\n", c->desc, grid, o,
                        (long long)i, gv.d, wv.d);
            else
                fprintf(stderr, "%s%s: output %d element %lld: kernel %lld, CPU %lld\n", c->desc, grid, o,
                        (long long)i, (long long)gv.i, (long long)wv.i);
        }
    }
    outputs_compared += n;
    return bad == 0;
}

/* Runs the case's kernel (index c->kernel of kh) on a grid of `blocks`
 * (0: the runtime's) and checks every output. */
static void rcase_launch(rcase *c, xcs_kernel_host *kh, long long blocks) {
    xcs_cuda_args a;
    unsigned err = 0;
    long long rt_blocks = rcase_args(c, &a, &err);
    for (int o = 0; o < c->p.n_outputs; o++) /* a sentinel: every output element must be written */
        memset(xcs_tensor_data(c->got[o]), 0x5a, (size_t)xcs_tensor_numel(c->got[o]) * xcs_dtype_size(c->got[o]->dtype));
    /* the orders in turn: each lets other warps run ahead (missing barriers show up) */
    const xcs_kernel_host_schedule order = (xcs_kernel_host_schedule)(red_launches % 4);
    const uint64_t seed = test_rnd(&R);
    char grid[96];
    snprintf(grid, sizeof grid, " (%s, order %d seed %llu)", blocks ? "grid of 3" : "runtime grid", (int)order,
             (unsigned long long)seed);
    if (!blocks) blocks = rt_blocks;
    CHECK_OK(xcs_kernel_host_set_schedule(kh, order, seed));
    CHECK_OK(xcs_kernel_host_launch(kh, c->kernel, &a, (unsigned)blocks, XCS_CUDA_BLOCK));
    red_launches++;
    CHECK_EQ_I(err, 0);
    for (int o = 0; o < c->p.n_outputs; o++) CHECK(rcase_compare(c, o, grid));
}

static void rcase_run(rcase *c, xcs_kernel_host *kh) {
    const char *test = check_current;
    check_current = c->desc;
    xcs_status st = cpu->run_fused(&c->p, (const xcs_tensor *const *)c->in, c->want);
    CHECK_OK(st);
    const xcs_fused_instr *red = &c->p.instr[c->p.n_instr - 1];
    bool fsum = red->op == XCS_OP_SUM && xcs_dtype_is_float(red->dtype);
    if (!st && fsum) CHECK_OK(st = rcase_absum(c));
    if (!st) {
        rcase_launch(c, kh, 0);
        if (rnd(4) == 0) rcase_launch(c, kh, 3); /* fewer blocks than outputs: the grid-stride loop */
    }
    red_cases++;
    check_current = test;
}

/* ---------------------------------------------------------------- batches */

#define BATCH 48
static rcase *batch[BATCH];
static int batch_n;

/* Generates the batch's kernels (one per distinct source: the prelude once,
 * then each), compiles them as one object, runs and frees the cases. */
static void flush_batch(void) {
    if (batch_n == 0) return;
    uint64_t hash[BATCH];
    char names[BATCH][16], *srcs[BATCH] = {NULL};
    const char *name_ptrs[BATCH];
    int nk = 0;
    size_t plen = xcs_cuda_prelude(NULL, 0), total = plen + 1;
    for (int i = 0; i < batch_n; i++) {
        rcase *c = batch[i];
        c->spec.name = NULL;
        c->spec.no_prelude = true;
        uint64_t h = xcs_cuda_spec_hash(&c->spec);
        c->kernel = -1;
        for (int k = 0; k < nk && c->kernel < 0; k++)
            if (hash[k] == h) c->kernel = k;
        if (c->kernel >= 0) continue;
        snprintf(names[nk], sizeof names[nk], "r%d", nk);
        c->spec.name = names[nk];
        if (!(srcs[nk] = xcs_cuda_codegen_alloc(&c->spec))) {
            fprintf(stderr, "%s: codegen refused it: %s\n", c->desc, xcs_last_error());
            CHECK(false);
            continue;
        }
        c->kernel = nk;
        hash[nk] = h;
        name_ptrs[nk] = names[nk];
        total += strlen(srcs[nk++]);
    }
    char *all = malloc(total);
    CHECK(all != NULL);
    xcs_kernel_host *kh = NULL;
    if (all && nk > 0) {
        xcs_cuda_prelude(all, plen + 1);
        size_t len = plen;
        for (int k = 0; k < nk; k++) {
            size_t l = strlen(srcs[k]);
            memcpy(all + len, srcs[k], l + 1);
            len += l;
        }
        xcs_status st = xcs_kernel_host_compile_ex(all, nk, name_ptrs, "xcs_args", XCS_KERNEL_HOST_COOPERATIVE, &kh);
        if (st) fprintf(stderr, "batch %d: %s\n", batches, xcs_last_error());
        CHECK_OK(st);
        CHECK(!kh || xcs_kernel_host_fibers(kh));
        batches++;
        red_kernels += nk;
    }
    for (int i = 0; i < batch_n; i++) {
        rcase *c = batch[i];
        if (kh && c->kernel >= 0) {
            int before = check_failures;
            rcase_run(c, kh);
            if (check_failures != before && getenv("XCS_TEST_VERBOSE"))
                fprintf(stderr, "---- kernel of %s ----\n%s", c->desc, srcs[c->kernel]);
        }
        rcase_free(c);
    }
    batch_n = 0;
    xcs_kernel_host_free(kh);
    free(all);
    for (int k = 0; k < nk; k++) free(srcs[k]);
}

static void add_case(rcase *c) {
    if (!c) return;
    batch[batch_n++] = c;
    if (batch_n == BATCH) flush_batch();
}

/* ---------------------------------------------------------------- the reduction sweeps */

static const xcs_op red_ops[4] = {XCS_OP_SUM, XCS_OP_PROD, XCS_OP_MAX, XCS_OP_MIN};
static const xcs_dtype red_dtypes[7] = {XCS_F32, XCS_F64, XCS_I32, XCS_I64, XCS_BOOL, XCS_F16, XCS_BF16};
#define N_COMBOS (T_COUNT * 4 * 7)

/* The next (template, op, dtype) in a fixed cycle started at a random
 * point: every combination comes up once in N_COMBOS cases. */
static unsigned combo_next;
static rcase *next_case(int nd, const int64_t *shape, unsigned axes) {
    for (int tries = 0; tries < N_COMBOS; tries++) {
        unsigned k = combo_next++ % N_COMBOS;
        rcase *c = rcase_new((int)(k % T_COUNT), red_ops[k / T_COUNT % 4], red_dtypes[k / (T_COUNT * 4)], nd, shape, axes);
        if (c) return c;
    }
    return NULL;
}

/* Every axis set of 1-D..4-D shapes: kept dims small (a block per kept
 * output, every block 256 fibers), reduced dims from a menu around the
 * warp and block sizes, at most 1 << 17 elements in all. */
static void test_axis_sets(void) {
    static const int64_t kept_menu[] = {1, 2, 3, 4, 5, 7};
    static const int64_t red_menu[] = {1, 2, 3, 7, 31, 32, 33, 64, 100, 255, 256, 257, 1000, 1031};
    combo_next = rnd(N_COMBOS);
    for (int nd = 1; nd <= 4; nd++)
        for (unsigned axes = 1; axes < 1u << nd; axes++)
            for (int rep = 0; rep < 5; rep++) {
                int64_t shape[XCS_MAX_DIMS], kept = 1, folded = 1;
                for (int d = 0; d < nd; d++) {
                    if (axes >> d & 1u) {
                        shape[d] = red_menu[rnd(sizeof red_menu / sizeof *red_menu)];
                        while (folded * shape[d] * 48 > (1 << 17)) shape[d] = shape[d] / 4 + 1;
                        folded *= shape[d];
                    } else {
                        shape[d] = kept_menu[rnd(sizeof kept_menu / sizeof *kept_menu)];
                        if (kept * shape[d] > 48) shape[d] = 1;
                        kept *= shape[d];
                    }
                }
                add_case(next_case(nd, shape, axes));
            }
    flush_batch();
}

/* Reduced extents around the warp (32), the block (256) and a block's
 * unrolled step (4 * 256), and long ones: as a whole 1-D reduction, the
 * last axis of [3, E], the first of [E, 5], the middle of [2, E, 3]; and
 * an empty one. */
static void test_extents(void) {
    static const int64_t ext[] = {1, 31, 32, 33, 255, 256, 257, 1000, 1023, 1024, 1025, 4099, 20000};
    for (size_t e = 0; e < sizeof ext / sizeof *ext; e++) {
        const int64_t E = ext[e];
        const int64_t s1[1] = {E}, s2[2] = {3, E}, s3[2] = {E, 5}, s4[3] = {2, E, 3};
        add_case(next_case(1, s1, 1u));
        add_case(next_case(2, s2, 2u));
        add_case(next_case(2, s3, 1u));
        add_case(next_case(3, s4, 2u));
        add_case(next_case(2, s2, 2u));
    }
    /* nothing to fold: the identity (max/min of nothing is an error on the CPU) */
    const int64_t empty[2] = {3, 0};
    for (int d = 0; d < 7; d++)
        for (int o = 0; o < 2; o++) add_case(rcase_new(T_PLAIN, red_ops[o], red_dtypes[d], 2, empty, 2u));
    flush_batch();
}

/* NaN in some outputs' ranges, each at one random place (any warp of the
 * block): max, min and sum must give NaN exactly there, as the CPU does. */
static void test_nan(void) {
    static const xcs_op ops[3] = {XCS_OP_MAX, XCS_OP_MIN, XCS_OP_SUM};
    static const xcs_dtype dts[3] = {XCS_F32, XCS_F64, XCS_BF16};
    const int64_t shapes[2][2] = {{6, 1000}, {300, 4}};
    for (int o = 0; o < 3; o++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 2; s++) {
                const unsigned axes = s ? 1u : 2u;
                rcase *c = rcase_new(T_PLAIN, ops[o], dts[d], 2, shapes[s], axes);
                if (!c) continue;
                const int64_t kept = shapes[s][s ? 1 : 0], n = shapes[s][s ? 0 : 1];
                for (int64_t k = 0; k < kept; k++) {
                    if (rnd(3) == 0) continue;
                    int64_t j = rnd((unsigned)n), flat = s ? j * kept + k : k * n + j;
                    int64_t off = c->in[0]->offset;
                    for (int dd = 1, f = (int)flat; dd >= 0; dd--) {
                        off += (f % c->in[0]->shape[dd]) * c->in[0]->strides[dd];
                        f /= (int)c->in[0]->shape[dd];
                    }
                    test_store(dts[d], c->in[0]->storage->data, off, 0, NAN);
                }
                strncat(c->desc, " (NaN planted)", sizeof c->desc - strlen(c->desc) - 1);
                add_case(c);
            }
    flush_batch();
}

/* ---------------------------------------------------------------- the shim itself */

static const char fiber_src[] =
    "struct kt_args { long long *out; int n; };\n"
    /* every shuffle kind and width, on long long, double, float, int and unsigned values */
    "extern \"C\" __global__ void kt_shfl(const kt_args a) {\n"
    "    const unsigned t = threadIdx.x;\n"
    "    const long long v = 1000LL * blockIdx.x + t;\n"
    "    long long *o = a.out + ((long long)blockIdx.x * blockDim.x + t) * 24;\n"
    "    int k = 0;\n"
    "    for (int w = 32; w >= 4; w >>= 2) {\n"
    "        o[k++] = __shfl_down_sync(0xffffffffu, v, 3, w);\n"
    "        o[k++] = __shfl_up_sync(0xffffffffu, v, 5, w);\n"
    "        o[k++] = __shfl_xor_sync(0xffffffffu, v, 6, w);\n"
    "        o[k++] = __shfl_sync(0xffffffffu, v, 13, w);\n"
    "        o[k++] = (long long)__shfl_down_sync(0xffffffffu, (double)v + 0.5, 1, w);\n"
    "        o[k++] = __shfl_up_sync(0xffffffffu, (int)v, 1, w);\n"
    "        o[k++] = (long long)__shfl_xor_sync(0xffffffffu, (float)v, 17, w);\n"
    "        o[k++] = __shfl_sync(0xffffffffu, (unsigned)v, 0, w);\n"
    "    }\n"
    "    o[k++] = __shfl_down_sync(0xffffffffu, v, 31);\n"
    "    o[k++] = t;\n" /* its own coordinates after all that switching */
    "    o[k++] = blockIdx.x;\n"
    "}\n"
    /* shared memory across barriers; threads past a.n return early (they
     * count as arrived) */
    "extern \"C\" __global__ void kt_shared(const kt_args a) {\n"
    "    __shared__ int s[256];\n"
    "    const unsigned t = threadIdx.x;\n"
    "    if ((int)t >= a.n) return;\n"
    "    s[t] = (int)(t * 3 + blockIdx.x);\n"
    "    __syncthreads();\n"
    "    const int mine = s[(t + 1) % a.n];\n"
    "    __syncthreads();\n"
    "    s[t] = 2 * mine;\n"
    "    __syncthreads();\n"
    "    a.out[blockIdx.x * a.n + t] = s[a.n - 1 - t] + 100000LL * t;\n"
    "}\n"
    /* half of warp 0 at the block barrier, the other half at a shuffle:
     * neither can open */
    "extern \"C\" __global__ void kt_stuck(const kt_args a) {\n"
    "    if (threadIdx.x < 16) __syncthreads();\n"
    "    else a.out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (long long)threadIdx.x, 1);\n"
    "}\n"
    /* a shuffle over half a warp: not emulated */
    "extern \"C\" __global__ void kt_mask(const kt_args a) {\n"
    "    a.out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, (long long)threadIdx.x, 1);\n"
    "}\n";

/* CUDA's source lane for lane l (-1: the caller's own value). */
static int shfl_src(int kind, int l, int arg, int w) {
    int base = l & ~(w - 1), s;
    switch (kind) {
    case 0: return (l & (w - 1)) + arg >= w ? -1 : l + arg;  /* down */
    case 1: return (l & (w - 1)) < arg ? -1 : l - arg;       /* up */
    case 2: s = l ^ arg; return s >= base + w ? -1 : s;      /* xor */
    default: return base + (arg & (w - 1));                  /* idx */
    }
}

typedef struct kt_args {
    long long *out;
    int n;
} kt_args;

/* kt_shfl and kt_shared under one order; the number of wrong values. */
static int fiber_run(xcs_kernel_host *kh, long long *out, xcs_kernel_host_schedule order) {
    static const int args[4] = {3, 5, 6, 13}, args2[4] = {1, 1, 17, 0}; /* down, up, xor, idx */
    const unsigned blocks = 3, threads = 64;
    kt_args a = {out, 0};
    int bad = 0;
    CHECK_OK(xcs_kernel_host_set_schedule(kh, order, test_rnd(&R)));
    CHECK_OK(xcs_kernel_host_launch(kh, 0, &a, blocks, threads));
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned t = 0; t < threads; t++) {
            const long long *o = out + ((long long)b * threads + t) * 24;
            int k = 0, l = (int)(t & 31), w0 = (int)(t & ~31u);
            for (int w = 32; w >= 4; w >>= 2)
                for (int kind = 0; kind < 8; kind++) {
                    int s = shfl_src(kind % 4, l, kind < 4 ? args[kind] : args2[kind - 4], w);
                    bad += o[k++] != 1000LL * b + (s < 0 ? (int)t : w0 + s);
                }
            bad += o[k++] != 1000LL * b + (l == 0 ? w0 + 31 : (int)t);
            bad += o[k++] != t;
            bad += o[k++] != b;
        }
    for (int n = 256; n >= 100; n -= 156) { /* every thread, then 100 of 256 (the rest return at once) */
        memset(out, 0, sizeof *out * blocks * 256);
        a.n = n;
        CHECK_OK(xcs_kernel_host_launch(kh, 1, &a, blocks, 256));
        for (int b = 0; b < (int)blocks; b++)
            for (int t = 0; t < n; t++) {
                int u = n - 1 - t; /* s[u] = 2 * s0[(u + 1) % n] */
                bad += out[b * n + t] != 2LL * (((u + 1) % n) * 3 + b) + 100000LL * t;
            }
    }
    return bad;
}

static void test_fibers(void) {
    static const char *const names[4] = {"kt_shfl", "kt_shared", "kt_stuck", "kt_mask"};
    xcs_kernel_host *kh = NULL;
    CHECK_OK(xcs_kernel_host_compile_ex(fiber_src, 4, names, "kt_args", XCS_KERNEL_HOST_COOPERATIVE, &kh));
    if (!kh) return;
    CHECK(xcs_kernel_host_fibers(kh));
    long long *out = calloc((size_t)3 * 64 * 24, sizeof *out);
    CHECK(out != NULL);
    if (!out) {
        xcs_kernel_host_free(kh);
        return;
    }
    for (int order = XCS_KERNEL_HOST_ROUND_ROBIN; order <= XCS_KERNEL_HOST_RANDOM; order++) /* any order: the same values */
        CHECK_EQ_I(fiber_run(kh, out, (xcs_kernel_host_schedule)order), 0);
    kt_args a = {out, 0};
    CHECK_OK(xcs_kernel_host_set_schedule(kh, XCS_KERNEL_HOST_ROUND_ROBIN, 0));
    CHECK_ERR(xcs_kernel_host_launch(kh, 2, &a, 2, 64), XCS_ERR_VALUE, "cannot open");
    CHECK_ERR(xcs_kernel_host_launch(kh, 3, &a, 1, 32), XCS_ERR_VALUE, "mask");
    CHECK_ERR(xcs_kernel_host_launch(kh, 1, &a, 1, 2048), XCS_ERR_VALUE, "at most 1024");
    xcs_kernel_host_free(kh);
    free(out);
    /* a source whose threads never meet keeps the plain loop */
    static const char plain[] = "struct kt_args { unsigned *word; };\n"
                                "extern \"C\" __global__ void kt_plain(const kt_args a) { atomicOr(a.word, 1u << threadIdx.x); }\n";
    static const char *const plain_name[1] = {"kt_plain"};
    CHECK_OK(xcs_kernel_host_compile_ex(plain, 1, plain_name, "kt_args", XCS_KERNEL_HOST_COOPERATIVE, &kh));
    if (!kh) return;
    CHECK(!xcs_kernel_host_fibers(kh));
    unsigned word = 0, *wp = &word;
    CHECK_OK(xcs_kernel_host_launch(kh, 0, &wp, 1, 5));
    CHECK_EQ_I(word, 31);
    xcs_kernel_host_free(kh);
}

/* ---------------------------------------------------------------- row chains */

/* A row graph: chain(x) over [R, C] (the mixed chain also reads w [C]) and
 * its inputs.  The fusion pass makes a row chain only when one block of
 * rows (512 KiB of its widest row) does not hold them all, so R is large
 * (262144 / C rows and more); every row is computed by the mock's
 * program-by-program emulation of the chain, then the rows [r0, r0 + rows)
 * are overwritten with a sentinel and computed again by the row kernel,
 * launched over just those rows (args.R = rows, the operands moved to row
 * r0) on min(rows, grid_cap) blocks: a launch over a chain of `rows` rows. */
typedef struct rgraph {
    char desc[128];
    xcs_graph *g;
    xcs_tensor *in[2];
    int n_in;
    bool layer_norm;
    bool faults; /* the fault chain: the CPU's error and the kernel's are compared */
    char fault_msg[256]; /* the kernel's */
    int64_t r0, rows;
    long long grid_cap;
    xcs_kernel_host_schedule order;
    int launches;
} rgraph;

/* The row kernels seen (by source hash), and in the second pass the
 * compiled object holding them. */
#define MAX_ROW_KERNELS 48
static struct {
    uint64_t hash;
    char *src;
} row_src[MAX_ROW_KERNELS];
static int n_row_src;
static xcs_kernel_host *row_kh;
static rgraph *row_current;
static int row_unsupported;

/* The element size of output slot `slot` of a row kernel. */
static size_t slot_size(const xcs_cuda_row_spec *rs, int slot) {
    for (int g = 0; g < rs->n; g++)
        for (int o = 0; o < rs->prog[g]->n_outputs; o++)
            if (rs->out_slot[g][o] == slot) return xcs_dtype_size(rs->out_dtype[g][o]);
    return 1;
}

/* Writes 0x7f bytes over rows [r0, r0 + rows) of output slot `slot` (a
 * float32 3.4e38, a float16 NaN, an int32 2139062143: no value a chain
 * here makes), so that the kernel must write every element it owns. */
static void row_sentinel(const xcs_cuda_row_spec *rs, const xcs_cuda_row_args *a, int slot, char *base, int64_t r0,
                         int64_t rows) {
    const size_t es = slot_size(rs, slot);
    const int64_t cols = a->out_cs[slot] == 0 ? 1 : a->C;
    for (int64_t r = r0; r < r0 + rows; r++)
        for (int64_t c = 0; c < cols; c++) memset(base + (size_t)(r * a->out_rs[slot] + c * a->out_cs[slot]) * es, 0x7f, es);
}

/* run_rows of the test's device: the module's spec and arguments for the
 * chain; first pass, its source is kept and the chain left to core
 * (program by program); second pass, the mock's emulation, then the row
 * kernel over the graph's test rows, run here over the mock's memory
 * (device addresses turned back into host ones). */
static xcs_status host_rows(const xcs_row_chain *rc) {
    xcs_cuda_row_spec rs;
    xcs_cuda_row_args a;
    bool checked = false;
    int dev = 0;
    xcs_status st = xcs_cuda_row_spec_of(rc, &rs, &a, &checked, &dev);
    if (st == XCS_ERR_UNSUPPORTED) row_unsupported++;
    if (st) return st;
    char *src = xcs_cuda_row_codegen_alloc(&rs);
    if (!src) return xcs_last_status();
    uint64_t h = xcs_cuda_source_hash(src);
    int k = 0;
    while (k < n_row_src && row_src[k].hash != h) k++;
    if (!row_kh) {
        if (k == n_row_src && n_row_src < MAX_ROW_KERNELS) {
            row_src[n_row_src].hash = h;
            row_src[n_row_src++].src = src;
        } else {
            free(src);
        }
        return XCS_ERR_UNSUPPORTED;
    }
    free(src);
    rgraph *r = row_current;
    if (k == n_row_src || !r) return xcs_error(XCS_ERR_INTERNAL, "a row kernel not seen in the first pass");
    xcs_status cpu_st = m_run_rows(rc);
    if (cpu_st && !r->faults) return cpu_st;
    const int64_t r0 = r->r0 < a.R ? r->r0 : 0, rows = r0 + r->rows <= a.R ? r->rows : a.R - r0;
    for (int e = 0; e < rs.n_ext; e++)
        a.in[e] = (const char *)dev_to_host(a.in[e]) + (size_t)(r0 * a.in_rs[e]) * xcs_dtype_size(rs.ext_dtype[e]);
    for (int o = 0; o < rs.n_out; o++) {
        char *base = dev_to_host(a.out[o]);
        row_sentinel(&rs, &a, o, base, r0, rows);
        a.out[o] = base + (size_t)(r0 * a.out_rs[o]) * slot_size(&rs, o);
    }
    a.R = rows;
    unsigned err = 0;
    a.err = &err;
    long long blocks = a.R < r->grid_cap ? a.R : r->grid_cap;
    st = xcs_kernel_host_set_schedule(row_kh, r->order, test_rnd(&R));
    if (!st) st = xcs_kernel_host_launch(row_kh, k, &a, (unsigned)blocks, XCS_CUDA_BLOCK);
    r->launches++;
    row_launches++;
    if (!st && r->faults) { /* the kernel's fault, as the module reports it, beside the CPU's */
        char cpu_msg[256];
        snprintf(cpu_msg, sizeof cpu_msg, "%s", cpu_st ? xcs_last_error() : "no error");
        xcs_status kst = xcs_cu_fault_status(err, rs.prog, rs.n, "row kernel");
        snprintf(r->fault_msg, sizeof r->fault_msg, "%s", kst ? xcs_last_error() : "no error");
        CHECK_EQ_I((int)kst, (int)cpu_st);
        const size_t stem = strlen(cpu_msg) - 1; /* the CPU's message up to its closing parenthesis */
        CHECK(cpu_st && strncmp(r->fault_msg, cpu_msg, stem) == 0 && strstr(r->fault_msg, ", CUDA kernel)"));
        if (kst) return xcs_error(kst, "%s", r->fault_msg);
    }
    return st;
}

static xcs_backend host_device; /* the mock, with host_rows as its run_rows */

/* x * w + the row max of it, cast to int32 and floor-halved (test_cuda_rowgen's). */
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

/* A chain of two programs that can fault, of which only the second does:
 * q = int32(x * w) % 7 with the row max of q (program 0: a remainder by 7),
 * then q // (m - m) (program 1: a floor division by zero).  The kernel's
 * error must name program 1's op (each program's bits apart). */
static xcs_status fault_chain(const xcs_tensor *x, const xcs_tensor *w, xcs_tensor **out) {
    xcs_tensor *xw = NULL, *i = NULL, *seven = NULL, *q = NULL, *m = NULL, *z = NULL;
    xcs_status st;
    if (!(st = xcs_binary(XCS_OP_MUL, x, w, &xw)) && !(st = xcs_cast(xw, XCS_I32, &i)) &&
        !(st = xcs_tensor_scalar_i64(XCS_I32, 7, &seven)) && !(st = xcs_binary(XCS_OP_MOD, i, seven, &q)) &&
        !(st = xcs_reduce(XCS_OP_MAX, q, 2u, true, &m)) && !(st = xcs_binary(XCS_OP_SUB, m, m, &z)))
        st = xcs_binary(XCS_OP_FLOOR_DIV, q, z, out);
    xcs_tensor *f[] = {xw, i, seven, q, m, z};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) xcs_tensor_free(f[k]);
    return st;
}

static void fill_row(void *ctx, xcs_dtype dt, char *data, int64_t i) {
    (void)ctx;
    test_store(dt, data, i, 0, test_rnd_unit(&R) * 16.0 - 8.0);
}

/* which: 0 softmax, 1 layer norm, 2 mixed, 3 the fault chain; `rows` of
 * them run by the kernel. */
static rgraph *rgraph_new(int which, int64_t C, xcs_dtype dt, int64_t rows, long long cap, int order) {
    rgraph *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    static const char *const chain_name[4] = {"softmax", "layer norm", "mixed chain", "fault chain"};
    const int64_t Rn = (int64_t)262144 / C + 2 + rnd(9);
    r->rows = rows;
    r->r0 = rnd((unsigned)(Rn - rows + 1));
    r->layer_norm = which == 1;
    r->faults = which == 3;
    r->grid_cap = cap;
    r->order = (xcs_kernel_host_schedule)order;
    snprintf(r->desc, sizeof r->desc, "%s of %s [%lld, %lld], rows %lld..%lld by the kernel on %lld blocks, order %d",
             chain_name[which], xcs_dtype_name(dt), (long long)Rn, (long long)C, (long long)r->r0,
             (long long)(r->r0 + rows - 1), rows < cap ? (long long)rows : cap, order);
    const int64_t xs[2] = {Rn, C}, ws[1] = {C};
    xcs_tensor *tx = NULL, *tw = NULL, *ty = NULL;
    CHECK_OK(xcs_graph_new(&r->g));
    CHECK_OK(xcs_graph_input(r->g, dt, 2, xs, &tx));
    if (which >= 2) CHECK_OK(xcs_graph_input(r->g, dt, 1, ws, &tw));
    xcs_status st = which == 0   ? softmax_rows(tx, &ty)
                    : which == 1 ? layer_norm_rows(tx, &ty)
                    : which == 2 ? mixed_chain(tx, tw, &ty)
                                 : fault_chain(tx, tw, &ty);
    CHECK_OK(st);
    if (!st) CHECK_OK(xcs_graph_output(r->g, ty));
    CHECK_OK(xcs_graph_optimize(r->g));
    xcs_tensor_free(tx), xcs_tensor_free(tw), xcs_tensor_free(ty);
    r->in[0] = test_make_view(dt, 2, xs, (test_layout){0}, fill_row, NULL);
    if (which >= 2) r->in[1] = test_make_view(dt, 1, ws, (test_layout){0}, fill_row, NULL);
    r->n_in = which >= 2 ? 2 : 1;
    return r;
}

static void rgraph_free(rgraph *r) {
    if (!r) return;
    xcs_graph_free(r->g);
    xcs_tensor_free(r->in[0]);
    xcs_tensor_free(r->in[1]);
    free(r);
}

/* The graph on the device (its chain's test rows by the row kernel)
 * against the CPU, every row (the others are the mock's). */
static void rgraph_check(rgraph *r) {
    const char *test = check_current;
    check_current = r->desc;
    xcs_tensor *want[1] = {NULL}, *got[1] = {NULL}, *h = NULL;
    if (r->faults) { /* both raise; host_rows compared the messages */
        row_current = r;
        CHECK_ERR(xcs_graph_run(r->g, r->n_in, (const xcs_tensor *const *)r->in, want), XCS_ERR_ZERO_DIV,
                  "integer division by zero in floor_divide (dtype int32)");
        CHECK_ERR(xcs_graph_run_on(r->g, XCS_DEVICE_CUDA, 0, r->n_in, (const xcs_tensor *const *)r->in, got),
                  XCS_ERR_ZERO_DIV, "integer division by zero in floor_divide (dtype int32, CUDA kernel)");
        row_current = NULL;
        CHECK_EQ_I(r->launches, 1);
        xcs_tensor_free(want[0]), xcs_tensor_free(got[0]);
        check_current = test;
        return;
    }
    row_current = r;
    CHECK_OK(xcs_graph_run(r->g, r->n_in, (const xcs_tensor *const *)r->in, want));
    CHECK_OK(xcs_graph_run_on(r->g, XCS_DEVICE_CUDA, 0, r->n_in, (const xcs_tensor *const *)r->in, got));
    row_current = NULL;
    CHECK_EQ_I(r->launches, 1); /* the chain ran as one row kernel */
    if (got[0]) CHECK_OK(xcs_tensor_to(got[0], XCS_DEVICE_CPU, 0, &h));
    CHECK(h && want[0] && h->dtype == want[0]->dtype && xcs_tensor_numel(h) == xcs_tensor_numel(want[0]));
    int bad = 0;
    const int64_t C = h ? h->shape[h->ndim - 1] : 1;
    for (int64_t i = 0; h && want[0] && i < xcs_tensor_numel(want[0]); i++) {
        val g = elem(h, i), w = elem(want[0], i);
        bool ok;
        if (!xcs_dtype_is_float(h->dtype)) ok = g.i == w.i;
        else if (xcs_dtype_is_half(h->dtype)) ok = abs(half_order(g.i) - half_order(w.i)) <= 1;
        else if (r->layer_norm) ok = fabs(g.d - w.d) <= 1e-5 * (1 + fabs(w.d));
        else ok = same_float(g.d, w.d) || fabs(g.d - w.d) <= 1e-5 * fabs(w.d);
        if (!ok && bad++ < 5)
            fprintf(stderr, "%s: row %lld column %lld: kernel %.9g, CPU %.9g\n", r->desc, (long long)(i / C),
                    (long long)(i % C), g.d, w.d);
    }
    CHECK_EQ_I(bad, 0);
    if (h) outputs_compared += r->rows * C;
    xcs_tensor_free(h);
    xcs_tensor_free(got[0]);
    xcs_tensor_free(want[0]);
    check_current = test;
}

/* The row kernels as one object: the first source's prelude and argument
 * struct, then every kernel renamed rk<k>. */
static xcs_kernel_host *compile_row_kernels(void) {
    static const char sig[] = "extern \"C\" __global__", name[] = " " XCS_CUDA_KERNEL_NAME "(const xcs_row_args";
    size_t head = 0, total = 1;
    for (int k = 0; k < n_row_src; k++) total += strlen(row_src[k].src) + 16;
    char *all = malloc(total), names[MAX_ROW_KERNELS][16];
    const char *name_ptrs[MAX_ROW_KERNELS];
    if (!all) return NULL;
    size_t len = 0;
    bool ok = true;
    for (int k = 0; k < n_row_src && ok; k++) {
        const char *s = row_src[k].src, *kern = strstr(s, sig), *at = kern ? strstr(kern, name) : NULL;
        ok = at != NULL && (k == 0 || ((size_t)(kern - s) == head && memcmp(s, row_src[0].src, head) == 0));
        if (!ok) break;
        if (k == 0) {
            head = (size_t)(kern - s);
            memcpy(all, s, head);
            len = head;
        }
        snprintf(names[k], sizeof names[k], "rk%d", k);
        name_ptrs[k] = names[k];
        memcpy(all + len, kern, (size_t)(at - kern));
        len += (size_t)(at - kern);
        len += (size_t)snprintf(all + len, total - len, " %s", names[k]);
        size_t rest = strlen(at + strlen(" " XCS_CUDA_KERNEL_NAME));
        memcpy(all + len, at + strlen(" " XCS_CUDA_KERNEL_NAME), rest + 1);
        len += rest;
    }
    CHECK(ok); /* every row source: the same head, one kernel of the expected name */
    xcs_kernel_host *kh = NULL;
    if (ok && n_row_src > 0) {
        xcs_status st = xcs_kernel_host_compile_ex(all, n_row_src, name_ptrs, "xcs_row_args", XCS_KERNEL_HOST_COOPERATIVE, &kh);
        if (st) fprintf(stderr, "row kernels: %s\n", xcs_last_error());
        CHECK_OK(st);
        batches++;
    }
    free(all);
    return kh;
}

static void test_row_chains(void) {
    static const int64_t cols[] = {1, 7, 32, 255, 256, 257, 1000, 4096, 8192};
    static const int64_t rows[] = {1, 3, 8, 33};
    static const long long caps[] = {80 * 32, 1, 2, 3, 7};
    rgraph *gs[64];
    int n = 0, turn = (int)rnd(20);
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++)
        for (int which = 0; which < 2; which++)
            for (int d = 0; d < 2; d++, turn++)
                gs[n++] = rgraph_new(which, cols[c], d ? XCS_F16 : XCS_F32, rows[turn % 4], caps[turn % 5], turn / 5 % 4);
    /* many rows per block; and the mixed chain (a per-column weight, an integer program) */
    gs[n++] = rgraph_new(0, 257, XCS_F32, 300, 7, XCS_KERNEL_HOST_LOWEST_FIRST);
    gs[n++] = rgraph_new(1, 1000, XCS_F16, 200, 80 * 32, XCS_KERNEL_HOST_HIGHEST_FIRST);
    gs[n++] = rgraph_new(2, 200, XCS_F32, 40, 3, XCS_KERNEL_HOST_RANDOM);
    gs[n++] = rgraph_new(2, 4096, XCS_F32, 5, 80 * 32, XCS_KERNEL_HOST_ROUND_ROBIN);
    gs[n++] = rgraph_new(3, 300, XCS_F32, 6, 4, XCS_KERNEL_HOST_RANDOM);
    /* first pass: the chains' sources; then one compile; then the checks */
    for (int i = 0; i < n; i++)
        if (gs[i]) {
            xcs_tensor *got[1] = {NULL};
            xcs_status st =
                xcs_graph_run_on(gs[i]->g, XCS_DEVICE_CUDA, 0, gs[i]->n_in, (const xcs_tensor *const *)gs[i]->in, got);
            if (gs[i]->faults) CHECK_EQ_I((int)st, (int)XCS_ERR_ZERO_DIV); /* program by program, on the CPU */
            else CHECK_OK(st);
            xcs_tensor_free(got[0]);
        }
    CHECK(n_row_src >= 10);
    CHECK_EQ_I(row_unsupported, 0);
    row_kh = compile_row_kernels();
    row_kernels = n_row_src;
    for (int i = 0; row_kh && i < n; i++)
        if (gs[i]) {
            rgraph_check(gs[i]);
            row_graphs++;
        }
    for (int i = 0; i < n; i++) rgraph_free(gs[i]);
    xcs_kernel_host_free(row_kh);
    row_kh = NULL;
    for (int k = 0; k < n_row_src; k++) free(row_src[k].src);
    n_row_src = 0;
}

int main(void) {
    const uint64_t seed = R.state = test_run_seed(); /* fresh inputs each run; the seed reproduces one */
    if (!xcs_kernel_host_available()) {
        printf("generated kernels not run: they cannot be built on the host (%s)\n", xcs_last_error());
        return 77;
    }
    CHECK_OK(xcs_host_init());
    cpu = xcs_backend_for(XCS_DEVICE_CPU);
    CHECK(cpu && cpu->run_fused);
    if (!cpu || !cpu->run_fused) return check_report();
    host_device = mock;
    host_device.run_rows = host_rows;
    CHECK_OK(xcs_backend_register(&host_device));
    RUN(test_fibers);
    RUN(test_axis_sets);
    RUN(test_extents);
    RUN(test_nan);
    RUN(test_row_chains);
    printf("%d reductions (%d kernels, %d launches), %d row graphs (%d row kernels, %d launches), %d compiles, "
           "%lld outputs compared\n",
           red_cases, red_kernels, red_launches, row_graphs, row_kernels, row_launches, batches, outputs_compared);
    CHECK_EQ_I(n_alloc, n_free);
    int rc = check_report();
    if (rc) printf("reproduce with XCS_TEST_SEED=%llu\n", (unsigned long long)seed);
    return rc;
}
