/* argreduce.c — CPU argmax / argmin over one axis or the flattened input.
 *
 * Each block of the axis (RED_BLOCK elements) is searched in two passes: the
 * max (min) by the vectorised row kernel of reduce.c's max/min, then the first
 * index holding it, or the first NaN when the max is NaN (numpy: NaN is the
 * extreme, first one wins).  Blocks are searched independently (in parallel
 * from XCS_CPU_PAR_MIN elements) and merge in order, a later block winning
 * only when strictly better, so the result does not depend on the thread
 * count.  Kept dims are walked with reduce.c's plan
 * (see reduce_plan.h), but the axis itself is not reordered: indices count in
 * its own (C) order.
 *
 * Borrows x and writes the preallocated int64 out (keepdims form). */
#include <stdint.h>
#include <stdlib.h>

#include "reduce_plan.h"

typedef struct arg_res {
    int64_t idx;
    bool nan;
    union { uint8_t b; int32_t i32; int64_t i64; float f32; double f64; } v;
} arg_res;

#define DEFINE_ARG(sfx, T, FIELD, FLOAT)                                                  \
    static void argblk_##sfx(const red_kernels *k, const char *xp, int64_t n, int64_t s,   \
                             arg_res *r) {                                                \
        const T *x = (const T *)(const void *)xp;                                         \
        T m;                                                                              \
        k->init(&m, 1);                                                                   \
        k->row(xp, n, s, &m);                                                             \
        int64_t i = 0;                                                                    \
        r->nan = FLOAT && m != m;                                                         \
        if (r->nan)                                                                       \
            while (x[i * s] == x[i * s]) i++;                                             \
        else                                                                              \
            while (x[i * s] != m) i++;                                                    \
        r->idx = i;                                                                       \
        r->v.FIELD = m;                                                                   \
    }                                                                                     \
    static bool argbetter_##sfx(const arg_res *cand, const arg_res *cur, bool is_max) {   \
        if (cur->nan) return false;                                                       \
        if (cand->nan) return true;                                                       \
        return is_max ? cand->v.FIELD > cur->v.FIELD : cand->v.FIELD < cur->v.FIELD;       \
    }

DEFINE_ARG(b, uint8_t, b, 0)
DEFINE_ARG(i32, int32_t, i32, 0)
DEFINE_ARG(i64, int64_t, i64, 0)
DEFINE_ARG(f32, float, f32, 1)
DEFINE_ARG(f64, double, f64, 1)

typedef void (*argblk_fn)(const red_kernels *, const char *, int64_t, int64_t, arg_res *);
typedef bool (*argbetter_fn)(const arg_res *, const arg_res *, bool);
static const argblk_fn argblk_table[XCS_DTYPE_COUNT] = {argblk_b, argblk_i32, argblk_i64,
                                                        argblk_f32, argblk_f64};
static const argbetter_fn argbetter_table[XCS_DTYPE_COUNT] = {
    argbetter_b, argbetter_i32, argbetter_i64, argbetter_f32, argbetter_f64};

xcs_status xcs_cpu_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out) {
    if (op != XCS_OP_ARGMAX && op != XCS_OP_ARGMIN)
        return xcs_error(XCS_ERR_INTERNAL, "cpu argreduce: op %d is not argmax/argmin", op);
    const char *name = xcs_op_name(op);
    bool is_max = op == XCS_OP_ARGMAX;
    unsigned axes;
    if (axis == XCS_AXIS_NONE) {
        axes = x->ndim ? (1u << x->ndim) - 1u : 0u;
    } else {
        if (axis < 0 || axis >= x->ndim)
            return xcs_error(XCS_ERR_VALUE, "%s: axis %d is out of range for %d-d input", name,
                             axis, x->ndim);
        axes = 1u << axis;
    }
    xcs_status st = xcs_red_check_out(name, x, axes, out, XCS_I64);
    if (st != XCS_OK) return st;

    red_plan p;
    p.k = xcs_red_table[is_max ? RED_MAX : RED_MIN][x->dtype];
    /* no reordering here: indices count in the axis' own (C) order */
    int64_t n = 1, s = 0;
    if (axis == XCS_AXIS_NONE) {
        /* flat index: only layouts that are one strided run (core passes a
         * contiguous copy otherwise) */
        int nd = 0;
        for (int d = 0; d < x->ndim; d++) n *= x->shape[d];
        if (n == 0) return xcs_error(XCS_ERR_VALUE, "%s: attempt to get %s of an empty sequence",
                                     name, is_max ? "argmax" : "argmin");
        n = 1;
        for (int d = 0; d < x->ndim; d++) {
            if (x->shape[d] == 1) continue;
            if (nd++ > 0 && s != x->strides[d] * x->shape[d])
                return xcs_error(XCS_ERR_UNSUPPORTED,
                                 "%s: flattened arg-reduction needs a single-run layout", name);
            s = x->strides[d];
            n *= x->shape[d];
        }
        p.nk = 0;
        p.nout = 1;
        p.xbase = xcs_tensor_data(x);
    } else {
        n = x->shape[axis];
        s = x->strides[axis];
        xcs_red_plan_build(&p, x, axes, out, false);
        p.xbase = xcs_tensor_data(x); /* undo plan_build's flip of a negative stride */
    }
    p.xsz = (int64_t)xcs_dtype_size(x->dtype);
    p.osz = 8;
    p.obase = xcs_tensor_data(out);
    if (p.nout == 0) return XCS_OK;
    if (n == 0) return xcs_error(XCS_ERR_VALUE, "%s: attempt to get %s of an empty sequence",
                                 name, is_max ? "argmax" : "argmin");

    argblk_fn blk = argblk_table[x->dtype];
    argbetter_fn better = argbetter_table[x->dtype];
    int64_t nblk = (n + RED_BLOCK - 1) / RED_BLOCK, tasks = p.nout * nblk;
    arg_res one, *res = nblk > 1 ? malloc((size_t)tasks * sizeof *res) : &one;
    if (!res) return xcs_error(XCS_ERR_MEMORY, "%s: cannot allocate partial results", name);
    bool par = p.nout * n >= XCS_CPU_PAR_MIN && tasks > 1;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nblk, b = t % nblk, xo, oo;
        int64_t i0 = b * RED_BLOCK, len = n - i0 < RED_BLOCK ? n - i0 : RED_BLOCK;
        red_kept_offsets(&p, o, -1, &xo, &oo);
        arg_res r;
        blk(p.k, p.xbase + (xo + i0 * s) * p.xsz, len, s, &r);
        r.idx += i0;
        if (nblk > 1) res[t] = r;
        else ((int64_t *)(void *)p.obase)[oo] = r.idx;
    }
    if (nblk > 1) {
        for (int64_t o = 0; o < p.nout; o++) {
            int64_t xo, oo, best = o * nblk;
            red_kept_offsets(&p, o, -1, &xo, &oo);
            for (int64_t b = 1; b < nblk; b++)
                if (better(&res[o * nblk + b], &res[best], is_max)) best = o * nblk + b;
            ((int64_t *)(void *)p.obase)[oo] = res[best].idx;
        }
        free(res);
    }
    return XCS_OK;
}
