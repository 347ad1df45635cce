/* composite.c — ops written once from primitives (tinygrad's habit): every
 * backend runs them, and autodiff/batching will get them for free.  Each
 * function collects its temporaries in a scope freed on every path. */
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct scope { xcs_tensor *t[16]; int n; } scope;

/* Keeps t for freeing at scope end and returns it. */
static xcs_tensor *keep(scope *s, xcs_tensor *t) {
    s->t[s->n++] = t;
    return t;
}
static void scope_free(scope *s) {
    for (int i = 0; i < s->n; i++) xcs_tensor_free(s->t[i]);
    s->n = 0;
}

/* A weak Python-style float scalar, so it adopts the other operand's dtype. */
static xcs_status weak_scalar(scope *s, double v, xcs_tensor **out) {
    xcs_status st = xcs_tensor_scalar(XCS_F64, v, out);
    if (st) return st;
    (*out)->flags |= XCS_TENSOR_WEAK;
    keep(s, *out);
    return XCS_OK;
}

#define TRY(expr) do { if ((st = (expr))) goto done; } while (0)

static int64_t reduced_count(const xcs_tensor *x, unsigned axes) {
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++)
        if ((axes >> i) & 1u) n *= x->shape[i];
    return n;
}

/* numpy's mean: integers and bools summed in float64 (an int64 sum would
 * wrap: the mean of [2**62, 2**62, 2**61] is 3.8e18, not negative). */
xcs_status xcs_mean(const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_mean(x32, axes, keepdims, &r_));
    scope s = {0};
    xcs_tensor *sum, *n;
    xcs_status st;
    if (!xcs_dtype_is_float(x->dtype)) {
        xcs_tensor *f;
        if ((st = xcs_cast(x, XCS_F64, &f))) return st;
        st = xcs_mean(f, axes, keepdims, out);
        xcs_tensor_free(f);
        return st;
    }
    TRY(xcs_reduce(XCS_OP_SUM, x, axes, keepdims, &sum));
    keep(&s, sum);
    TRY(weak_scalar(&s, (double)reduced_count(x, axes), &n));
    TRY(xcs_binary(XCS_OP_DIV, sum, n, out));
done:
    scope_free(&s);
    return st;
}

/* var = sum((x - mean(x))^2) / (n - ddof): the two-pass form, which keeps
 * the cancellation error of the one-pass E[x^2]-E[x]^2 formula away. */
xcs_status xcs_var(const xcs_tensor *x, unsigned axes, bool keepdims, int ddof, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_var(x32, axes, keepdims, ddof, &r_));
    scope s = {0};
    xcs_tensor *m, *d, *sq, *sum, *n;
    xcs_status st;
    TRY(xcs_mean(x, axes, true, &m));
    keep(&s, m);
    TRY(xcs_binary(XCS_OP_SUB, x, m, &d));
    keep(&s, d);
    TRY(xcs_binary(XCS_OP_MUL, d, d, &sq));
    keep(&s, sq);
    TRY(xcs_reduce(XCS_OP_SUM, sq, axes, keepdims, &sum));
    keep(&s, sum);
    /* numpy divides by max(n - ddof, 0): nan or inf past n, never a negative count */
    int64_t dof = reduced_count(x, axes) - ddof;
    TRY(weak_scalar(&s, (double)(dof > 0 ? dof : 0), &n));
    TRY(xcs_binary(XCS_OP_DIV, sum, n, out));
done:
    scope_free(&s);
    return st;
}

xcs_status xcs_std(const xcs_tensor *x, unsigned axes, bool keepdims, int ddof, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_std(x32, axes, keepdims, ddof, &r_));
    xcs_tensor *v;
    xcs_status st = xcs_var(x, axes, keepdims, ddof, &v);
    if (st) return st;
    st = xcs_unary(XCS_OP_SQRT, v, out);
    xcs_tensor_free(v);
    return st;
}

/* softmax(x) = exp(x - max x) / sum exp(x - max x): subtracting the max keeps
 * exp from overflowing and leaves the ratio unchanged. */
xcs_status xcs_softmax(const xcs_tensor *x, int axis, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_softmax(x32, axis, &r_));
    scope s = {0};
    xcs_tensor *m, *d, *e, *sum;
    xcs_status st;
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "softmax");
    TRY(xcs_reduce(XCS_OP_MAX, x, 1u << a, true, &m));
    keep(&s, m);
    TRY(xcs_binary(XCS_OP_SUB, x, m, &d));
    keep(&s, d);
    TRY(xcs_unary(XCS_OP_EXP, d, &e));
    keep(&s, e);
    TRY(xcs_reduce(XCS_OP_SUM, e, 1u << a, true, &sum));
    keep(&s, sum);
    TRY(xcs_binary(XCS_OP_DIV, e, sum, out));
done:
    scope_free(&s);
    return st;
}

/* logsumexp with the max shift; a shift of +-inf (all -inf, or an inf entry)
 * is replaced by 0 so the result is -inf/inf instead of nan (scipy's rule). */
static xcs_status lse_keepdims(scope *s, const xcs_tensor *x, unsigned axes, xcs_tensor **out) {
    xcs_tensor *m, *am, *fin, *inf, *zero, *shift, *d, *e, *sum, *lg;
    xcs_status st;
    if ((st = xcs_reduce(XCS_OP_MAX, x, axes, true, &m))) return st;
    keep(s, m);
    if ((st = xcs_unary(XCS_OP_ABS, m, &am))) return st;
    keep(s, am);
    if ((st = weak_scalar(s, INFINITY, &inf)) || (st = weak_scalar(s, 0.0, &zero))) return st;
    if ((st = xcs_binary(XCS_OP_LT, am, inf, &fin))) return st;
    keep(s, fin);
    if ((st = xcs_where(fin, m, zero, &shift))) return st;
    keep(s, shift);
    if ((st = xcs_binary(XCS_OP_SUB, x, shift, &d))) return st;
    keep(s, d);
    if ((st = xcs_unary(XCS_OP_EXP, d, &e))) return st;
    keep(s, e);
    if ((st = xcs_reduce(XCS_OP_SUM, e, axes, true, &sum))) return st;
    keep(s, sum);
    if ((st = xcs_unary(XCS_OP_LOG, sum, &lg))) return st;
    keep(s, lg);
    return xcs_binary(XCS_OP_ADD, lg, shift, out);
}

xcs_status xcs_logsumexp(const xcs_tensor *x, unsigned axes, bool keepdims, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_logsumexp(x32, axes, keepdims, &r_));
    scope s = {0};
    xcs_tensor *r;
    xcs_status st;
    TRY(lse_keepdims(&s, x, axes, &r));
    if (keepdims) { *out = r; goto done; }
    keep(&s, r);
    TRY(xcs_squeeze(r, axes, out));
done:
    scope_free(&s);
    return st;
}

xcs_status xcs_log_softmax(const xcs_tensor *x, int axis, xcs_tensor **out) {
    XCS_HALF_VIA_F32(x, out, true, xcs_log_softmax(x32, axis, &r_));
    scope s = {0};
    xcs_tensor *l;
    xcs_status st;
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "log_softmax");
    TRY(lse_keepdims(&s, x, 1u << a, &l));
    keep(&s, l);
    TRY(xcs_binary(XCS_OP_SUB, x, l, out));
done:
    scope_free(&s);
    return st;
}

/* numpy.dot: scalars multiply, otherwise contract the last axis of a with the
 * second-to-last of b (the last when b is 1-D).  For b of ndim <= 2 that is
 * matmul; higher b is moved to [K, rest] and flattened into one matmul. */
xcs_status xcs_dot(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor **out) {
    if (a->ndim == 0 || b->ndim == 0) return xcs_binary(XCS_OP_MUL, a, b, out);
    if (b->ndim <= 2) return xcs_matmul(a, b, out);
    scope s = {0};
    xcs_status st;
    int perm[XCS_MAX_DIMS], n = 0, kb = b->ndim - 2;
    int64_t shape2[2], oshape[XCS_MAX_DIMS];
    int on = 0;
    if (a->ndim - 1 + b->ndim - 1 > XCS_MAX_DIMS)
        return xcs_error(XCS_ERR_VALUE, "dot: result would have more than %d dimensions", XCS_MAX_DIMS);
    perm[n++] = kb;
    for (int i = 0; i < b->ndim; i++)
        if (i != kb) perm[n++] = i;
    xcs_tensor *bt, *b2, *a2, *r;
    TRY(xcs_permute(b, perm, &bt));
    keep(&s, bt);
    shape2[0] = b->shape[kb];
    shape2[1] = -1;
    TRY(xcs_reshape(bt, 2, shape2, &b2));
    keep(&s, b2);
    shape2[0] = -1;
    shape2[1] = a->shape[a->ndim - 1];
    TRY(xcs_reshape(a, a->ndim == 1 ? 1 : 2, a->ndim == 1 ? &shape2[1] : shape2, &a2));
    keep(&s, a2);
    TRY(xcs_matmul(a2, b2, &r));
    keep(&s, r);
    for (int i = 0; i < a->ndim - 1; i++) oshape[on++] = a->shape[i];
    for (int i = 0; i < b->ndim; i++)
        if (i != kb) oshape[on++] = b->shape[i];
    TRY(xcs_reshape(r, on, oshape, out));
done:
    scope_free(&s);
    return st;
}

xcs_status xcs_stack(int n, const xcs_tensor *const *xs, int axis, xcs_tensor **out) {
    char s0[160], s1[160];
    if (n <= 0) return xcs_error(XCS_ERR_VALUE, "need at least one array to stack");
    for (int i = 1; i < n; i++) {
        bool same = xs[i]->ndim == xs[0]->ndim;
        for (int d = 0; same && d < xs[0]->ndim; d++) same = xs[i]->shape[d] == xs[0]->shape[d];
        if (!same)
            return xcs_error(XCS_ERR_SHAPE, "stack: all input arrays must have the same shape, "
                             "but array 0 has shape %s and array %d has shape %s",
                             xcs_shape_str(xs[0]->ndim, xs[0]->shape, s0, sizeof s0), i,
                             xcs_shape_str(xs[i]->ndim, xs[i]->shape, s1, sizeof s1));
    }
    int a;
    if (xcs_axis_normalize(axis, xs[0]->ndim + 1, &a)) return xcs_error_context(XCS_ERR_VALUE, "stack");
    xcs_tensor **views = calloc((size_t)n, sizeof *views);
    if (!views) return xcs_error(XCS_ERR_MEMORY, "stack: out of memory");
    xcs_status st = XCS_OK;
    int made = 0;
    for (; made < n; made++)
        if ((st = xcs_expand_dims(xs[made], a, &views[made]))) break;
    if (!st) st = xcs_concat(n, (const xcs_tensor *const *)views, a, out);
    for (int i = 0; i < made; i++) xcs_tensor_free(views[i]);
    free(views);
    return st;
}

xcs_status xcs_split(const xcs_tensor *x, int n_idx, const int64_t *indices, int axis, xcs_tensor **outs) {
    int a;
    if (xcs_axis_normalize(axis, x->ndim, &a)) return xcs_error_context(XCS_ERR_VALUE, "split");
    int64_t prev = 0;
    for (int i = 0; i <= n_idx; i++) {
        xcs_slice sl = {.start = prev, .has_start = true, .step = 1};
        if (i < n_idx) { sl.stop = indices[i]; sl.has_stop = true; }
        xcs_status st = xcs_slice_axis(x, a, sl, &outs[i]);
        if (st) {
            for (int j = 0; j < i; j++) { xcs_tensor_free(outs[j]); outs[j] = NULL; }
            return st;
        }
        if (i < n_idx) prev = indices[i];
    }
    return XCS_OK;
}

/* linspace = start + i * step, then (numpy's rule) the last sample is set
 * to exactly `stop` so callers can rely on the endpoint. */
xcs_status xcs_linspace(double start, double stop, int64_t num, bool endpoint, xcs_dtype dt, xcs_tensor **out) {
    if (num < 0) return xcs_error(XCS_ERR_VALUE, "linspace: number of samples, %lld, must be non-negative", (long long)num);
    int64_t div = endpoint ? num - 1 : num;
    double step = div > 0 ? (stop - start) / (double)div : 0.0;
    xcs_tensor *f;
    xcs_status st = xcs_arange(0, (double)num, 1, XCS_F64, &f);
    if (st) return st;
    /* iota gives exact integers; scale them rather than accumulating steps */
    scope s = {0};
    xcs_tensor *stp, *sta, *mul, *val;
    keep(&s, f);
    TRY(weak_scalar(&s, step, &stp));
    TRY(weak_scalar(&s, start, &sta));
    TRY(xcs_binary(XCS_OP_MUL, f, stp, &mul));
    keep(&s, mul);
    TRY(xcs_binary(XCS_OP_ADD, mul, sta, &val));
    keep(&s, val);
    if (endpoint && num > 1) ((double *)xcs_tensor_data(val))[num - 1] = stop; /* CPU storage: just made */
    TRY(xcs_cast(val, dt, out));
done:
    scope_free(&s);
    return st;
}

/* eye(n, m, k)[i, j] = (j - i == k), from two iotas and a comparison. */
xcs_status xcs_eye(int64_t n, int64_t m, int64_t k, xcs_dtype dt, xcs_tensor **out) {
    if (n < 0 || m < 0) return xcs_error(XCS_ERR_VALUE, "eye: negative dimensions are not allowed");
    scope s = {0};
    xcs_tensor *r, *c, *rc, *diff, *kk, *eq;
    int64_t col[2] = {-1, 1};
    xcs_status st;
    TRY(xcs_arange(0, (double)n, 1, XCS_I64, &r));
    keep(&s, r);
    TRY(xcs_arange(0, (double)m, 1, XCS_I64, &c));
    keep(&s, c);
    TRY(xcs_reshape(r, 2, col, &rc));
    keep(&s, rc);
    TRY(xcs_binary(XCS_OP_SUB, c, rc, &diff));
    keep(&s, diff);
    TRY(xcs_tensor_scalar_i64(XCS_I64, k, &kk));
    keep(&s, kk);
    TRY(xcs_binary(XCS_OP_EQ, diff, kk, &eq));
    keep(&s, eq);
    TRY(xcs_cast(eq, dt, out));
done:
    scope_free(&s);
    return st;
}
