/* linalg.c — linear algebra on the last two dims, batched over the others
 * (ops of kind LINALG: solve, cholesky, slogdet, eigh, svd, qr, eigvalsh,
 * svdvals; their gradients are in autodiff.c, their batching in batch.c).
 *
 * The dtype follows numpy.linalg: the promoted inputs, ints and bools in
 * float64; float16/bfloat16 are solved in float32 and rounded back (numpy
 * refuses them).  Batch dims broadcast as numpy's: the inputs are traced and
 * computed as views broadcast to the result's batch, so a batched (vmap)
 * operand meets an unbatched one by broadcasting too.  A device backend
 * without a kernel for an op (none at all, or XCS_ERR_UNSUPPORTED from its
 * linalg: CUDA's for big eigh/svd/qr) computes on the host, the values
 * copied there and back. */
#include "trace.h"

#include <string.h>

static xcs_status square_last(const xcs_tensor *a, const char *what) {
    if (a->ndim < 2)
        return xcs_error(XCS_ERR_SHAPE, "%s: %d-dimensional array given; the array must be at least two-dimensional",
                         what, a->ndim);
    if (a->shape[a->ndim - 1] != a->shape[a->ndim - 2])
        return xcs_error(XCS_ERR_SHAPE, "%s: the last 2 dimensions of the array must be square (got %lld x %lld)",
                         what, (long long)a->shape[a->ndim - 2], (long long)a->shape[a->ndim - 1]);
    return XCS_OK;
}

/* The result's shape and the shapes each input is broadcast to. */
static xcs_status linalg_shapes(xcs_op op, int n_in, const xcs_tensor *const *in, int *nd, int64_t *shape,
                                int64_t in_shape[2][XCS_MAX_DIMS]) {
    const char *what = xcs_op_name(op);
    const xcs_tensor *a = in[0];
    if (op == XCS_OP_SVD || op == XCS_OP_QR || op == XCS_OP_SVDVALS) { /* any [..., m, n] */
        if (a->ndim < 2)
            return xcs_error(XCS_ERR_SHAPE, "%s: %d-dimensional array given; the array must be at least "
                             "two-dimensional", what, a->ndim);
        const int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1], k = m < n ? m : n;
        memcpy(shape, a->shape, (size_t)a->ndim * sizeof *shape);
        memcpy(in_shape[0], a->shape, (size_t)a->ndim * sizeof *shape);
        shape[a->ndim - 2] = op == XCS_OP_SVD ? m + 1 + n : m + n, shape[a->ndim - 1] = k;
        *nd = a->ndim;
        if (op == XCS_OP_SVDVALS) shape[a->ndim - 2] = k, *nd = a->ndim - 1;
        return XCS_OK;
    }
    xcs_status st = square_last(a, what);
    if (st) return st;
    const int64_t n = a->shape[a->ndim - 1];
    int nb = a->ndim - 2;
    int64_t batch[XCS_MAX_DIMS];
    memcpy(batch, a->shape, (size_t)nb * sizeof *batch);
    if (op == XCS_OP_SOLVE) {
        const xcs_tensor *b = in[1];
        if (n_in != 2 || b->ndim < 2 || b->shape[b->ndim - 2] != n)
            return xcs_error(XCS_ERR_SHAPE,
                             "solve: b must be [..., %lld, k] for a of [..., %lld, %lld] (got %d dims%s)",
                             (long long)n, (long long)n, (long long)n, b->ndim,
                             b->ndim >= 2 ? ", a different row count" : "");
        if ((st = xcs_shape_broadcast(nb, batch, b->ndim - 2, b->shape, &nb, batch)))
            return xcs_error_context(st, "solve: the batch dims of a and b");
        const int64_t k = b->shape[b->ndim - 1];
        memcpy(shape, batch, (size_t)nb * sizeof *shape);
        shape[nb] = n, shape[nb + 1] = k;
        *nd = nb + 2;
        memcpy(in_shape[1], shape, sizeof in_shape[1]);
    } else if (op == XCS_OP_CHOLESKY) {
        memcpy(shape, a->shape, (size_t)a->ndim * sizeof *shape);
        *nd = a->ndim;
    } else if (op == XCS_OP_EIGH) {
        memcpy(shape, a->shape, (size_t)a->ndim * sizeof *shape);
        shape[a->ndim - 2] = n + 1;
        *nd = a->ndim;
    } else { /* slogdet: [..., 2] of (sign, log|det|); eigvalsh: [..., n] */
        memcpy(shape, batch, (size_t)nb * sizeof *shape);
        shape[nb] = op == XCS_OP_EIGVALSH ? n : 2;
        *nd = nb + 1;
    }
    memcpy(in_shape[0], batch, (size_t)nb * sizeof *shape);
    in_shape[0][nb] = in_shape[0][nb + 1] = n;
    if (nb + 2 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "%s: more than %d dimensions", what, XCS_MAX_DIMS);
    return XCS_OK;
}

/* Which matrices the host's LAPACK takes (where the BLAS build has it) and
 * which xcs's own loops (threads over the batch; the CUDA kernels, which
 * follow the CPU's), from bench runs on 2 cores (batches of 200, and single
 * matrices):
 *   solve, slogdet, cholesky, qr: from 64 rows (src/host/lapack.h: batched
 *     solve and slogdet keep the loops longer);
 *   eigh: from 8 rows (Jacobi sweeps cost ~10x syevd's flops: 200 x 16^2
 *     7.6 ms against 3.5, 200 x 32^2 41 against 13);
 *   svd: from 24 rows and columns (200 x 16^2: Jacobi 4.7 ms, gesdd 6.5;
 *     200 x 32^2: 47 against 21);
 *   eigvalsh: from 4 rows (syevd 'N' is Householder tridiagonalisation
 *     and root-free QR: 200 x 4^2 0.16 ms against Jacobi's 0.17, 200 x
 *     16^2 1.8 against 7.7; 200 x 2^2 0.027 against 0.012);
 *   svdvals: from 12 rows and columns (gesdd 'N'; 200 x 8^2: Jacobi 0.50
 *     ms, gesdd 0.72; 12^2: 1.6 against 1.5; 16^2 3.6 against 2.4). */
int64_t xcs_linalg_lapack_min(xcs_op op) {
    switch (op) {
    case XCS_OP_EIGH: return 8;
    case XCS_OP_SVD: return 24;
    case XCS_OP_EIGVALSH: return 4;
    case XCS_OP_SVDVALS: return 12;
    default: return 64;
    }
}

/* The dims of the inputs of a result of nd dims. */
static int in_ndim(xcs_op op, int nd) {
    return op == XCS_OP_SLOGDET || op == XCS_OP_EIGVALSH || op == XCS_OP_SVDVALS ? nd + 1 : nd;
}

static xcs_status linalg_run(xcs_op op, int n_in, const xcs_tensor *const *in, int nd, const int64_t *shape,
                             int64_t in_shape[2][XCS_MAX_DIMS], xcs_tensor **out);

/* op of device inputs without a device kernel: on the host, the result
 * sent back. */
static xcs_status linalg_on_host(xcs_op op, int n_in, const xcs_tensor *const *in, int nd, const int64_t *shape,
                                 int64_t in_shape[2][XCS_MAX_DIMS], xcs_tensor **out) {
    xcs_tensor *h[2] = {NULL, NULL}, *r = NULL;
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_in && !st; k++) st = xcs_tensor_to(in[k], XCS_DEVICE_CPU, 0, &h[k]);
    if (!st) st = linalg_run(op, n_in, (const xcs_tensor *const *)h, nd, shape, in_shape, &r);
    if (!st) st = xcs_tensor_to(r, in[0]->storage->device, in[0]->storage->device_index, out);
    for (int k = 0; k < n_in; k++) xcs_tensor_free(h[k]);
    xcs_tensor_free(r);
    return st;
}

/* Computes op on concrete inputs of the compute dtype on one backend (a
 * device without a kernel for op: on the host). */
static xcs_status linalg_run(xcs_op op, int n_in, const xcs_tensor *const *in, int nd, const int64_t *shape,
                             int64_t in_shape[2][XCS_MAX_DIMS], xcs_tensor **out) {
    const xcs_backend *be = xcs_backend_for(in[0]->storage->device);
    if (!be) return xcs_last_status();
    const bool device = !xcs_tensor_on_host(in[0]);
    if (!be->linalg && device) return linalg_on_host(op, n_in, in, nd, shape, in_shape, out);
    if (!be->linalg) return xcs_error(XCS_ERR_UNSUPPORTED, "%s has no kernel on %s", xcs_op_name(op), be->name);
    xcs_tensor *c[2] = {NULL, NULL}, *v = NULL;
    xcs_status st = XCS_OK;
    for (int k = 0; k < n_in && !st; k++) { /* each input broadcast to the batch, contiguous */
        if (!(st = xcs_broadcast_to(in[k], in_ndim(op, nd), in_shape[k], &v)))
            st = xcs_contiguous(v, &c[k]);
        xcs_tensor_free(v);
        v = NULL;
    }
    if (!st) st = xcs_tensor_empty_on(in[0]->storage, in[0]->dtype, nd, shape, out);
    if (!st && xcs_tensor_numel(*out) > 0 && (st = be->linalg(op, n_in, (const xcs_tensor *const *)c, *out))) {
        xcs_tensor_free(*out);
        *out = NULL;
        if (st == XCS_ERR_UNSUPPORTED && device) /* no device kernel for this op (eigh, svd, qr) */
            st = linalg_on_host(op, n_in, (const xcs_tensor *const *)c, nd, shape, in_shape, out);
    }
    for (int k = 0; k < n_in; k++) xcs_tensor_free(c[k]);
    return st;
}

xcs_status xcs_linalg(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor **out) {
    *out = NULL;
    const xcs_op_info *info = xcs_op_get_info(op);
    if (!info || info->kind != XCS_KIND_LINALG || n_in != (op == XCS_OP_SOLVE ? 2 : 1))
        return xcs_error(XCS_ERR_VALUE, "%s is not a linear-algebra op of %d operands", xcs_op_name(op), n_in);
    int nd = 0;
    int64_t shape[XCS_MAX_DIMS], in_shape[2][XCS_MAX_DIMS];
    xcs_status st = linalg_shapes(op, n_in, in, &nd, shape, in_shape);
    if (st) return st;
    /* numpy.linalg's dtype: the promoted inputs in float (ints, bools: float64) */
    xcs_dtype dt = in[0]->dtype;
    if (n_in == 2)
        dt = xcs_dtype_promote(in[0]->dtype, in[0]->flags & XCS_TENSOR_WEAK, in[1]->dtype,
                               in[1]->flags & XCS_TENSOR_WEAK);
    if (!xcs_dtype_is_float(dt)) dt = XCS_F64;
    const xcs_dtype compute = xcs_dtype_compute(dt);
    xcs_graph *g;
    if (xcs_trace_any(n_in, in, &g, &st)) {
        if (st) return st;
        xcs_tensor *v[2] = {NULL, NULL};
        for (int k = 0; k < n_in && !st; k++)
            st = xcs_broadcast_to(in[k], in_ndim(op, nd), in_shape[k], &v[k]);
        if (!st) st = xcs_trace_node(g, op, n_in, (const xcs_tensor *const *)v, dt, compute, nd, shape, 0, 0, out);
        for (int k = 0; k < n_in; k++) xcs_tensor_free(v[k]);
        return st;
    }
    xcs_tensor *c[2] = {NULL, NULL}, *r = NULL, *moved[2] = {NULL, NULL};
    const xcs_tensor *at[2] = {in[0], n_in > 1 ? in[1] : NULL};
    if ((st = xcs_colocate(n_in, at, moved, xcs_op_name(op)))) return st;
    for (int k = 0; k < n_in && !st; k++) /* (a cast copies: only when the dtype changes) */
        st = at[k]->dtype == compute ? xcs_tensor_view(at[k], &c[k]) : xcs_cast(at[k], compute, &c[k]);
    if (!st) st = linalg_run(op, n_in, (const xcs_tensor *const *)c, nd, shape, in_shape, &r);
    if (!st && compute != dt) st = xcs_cast(r, dt, out); /* a 16-bit float: rounded back */
    else if (!st) *out = r, r = NULL;
    xcs_tensor_free(r);
    for (int k = 0; k < n_in; k++) {
        xcs_tensor_free(c[k]);
        xcs_tensor_free(moved[k]);
    }
    return st;
}
