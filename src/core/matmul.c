/* matmul.c — numpy matmul semantics on top of the backend's batched GEMM:
 * 1-D operands are promoted to matrices and the added axis removed again,
 * batch dimensions broadcast, mixed dtypes promoted first. */
#include "trace.h"

#include <string.h>

/* Casts x to dt when needed; *owned receives the tensor to free (or NULL). */
static xcs_status as_dtype(const xcs_tensor *x, xcs_dtype dt, const xcs_tensor **res, xcs_tensor **owned) {
    *owned = NULL;
    *res = x;
    if (x->dtype == dt) return XCS_OK;
    xcs_status st = xcs_cast(x, dt, owned);
    if (!st) *res = *owned;
    return st;
}

xcs_status xcs_matmul(const xcs_tensor *a0, const xcs_tensor *b0, xcs_tensor **out) {
    char sa[160], sb[160];
    if (a0->ndim == 0 || b0->ndim == 0)
        return xcs_error(XCS_ERR_SHAPE, "matmul: operand %d is 0-d (shape ()); use multiply for scalars",
                         a0->ndim == 0 ? 0 : 1);
    /* matrix views of the operands: a as [..., M, K], b as [..., K, N] */
    xcs_tensor a = *a0, b = *b0;
    bool a_vec = a.ndim == 1, b_vec = b.ndim == 1;
    if (a_vec) { a.ndim = 2; a.shape[1] = a.shape[0]; a.strides[1] = a.strides[0]; a.shape[0] = 1; a.strides[0] = 0; }
    if (b_vec) { b.ndim = 2; b.shape[1] = 1; b.strides[1] = 0; }
    int64_t M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1];
    int64_t K2 = b.shape[b.ndim - 2], N = b.shape[b.ndim - 1];
    if (K != K2)
        return xcs_error(XCS_ERR_SHAPE,
                         "matmul: shapes %s and %s are not aligned: %lld (last dim of a) != %lld (%s of b)",
                         xcs_shape_str(a0->ndim, a0->shape, sa, sizeof sa),
                         xcs_shape_str(b0->ndim, b0->shape, sb, sizeof sb), (long long)K, (long long)K2,
                         b_vec ? "dim 0" : "second-to-last dim");
    int64_t batch[XCS_MAX_DIMS];
    int nb;
    xcs_status st = xcs_shape_broadcast(a.ndim - 2, a.shape, b.ndim - 2, b.shape, &nb, batch);
    if (st) return xcs_error_context(st, "matmul (batch dimensions of %s and %s)",
                                     xcs_shape_str(a0->ndim, a0->shape, sa, sizeof sa),
                                     xcs_shape_str(b0->ndim, b0->shape, sb, sizeof sb));
    if (nb + 2 > XCS_MAX_DIMS) return xcs_error(XCS_ERR_VALUE, "matmul: too many dimensions");
    /* broadcast both to [batch..., rows, cols] with stride 0 on broadcast dims */
    xcs_tensor av = a, bv = b;
    int64_t oshape[XCS_MAX_DIMS];
    av.ndim = bv.ndim = nb + 2;
    for (int i = 0; i < nb; i++) {
        int ja = i - (nb - (a.ndim - 2)), jb = i - (nb - (b.ndim - 2));
        av.shape[i] = bv.shape[i] = oshape[i] = batch[i];
        av.strides[i] = (ja < 0 || a.shape[ja] != batch[i]) ? 0 : a.strides[ja];
        bv.strides[i] = (jb < 0 || b.shape[jb] != batch[i]) ? 0 : b.strides[jb];
    }
    av.shape[nb] = M; av.strides[nb] = a.strides[a.ndim - 2];
    av.shape[nb + 1] = K; av.strides[nb + 1] = a.strides[a.ndim - 1];
    bv.shape[nb] = K; bv.strides[nb] = b.strides[b.ndim - 2];
    bv.shape[nb + 1] = N; bv.strides[nb + 1] = b.strides[b.ndim - 1];
    oshape[nb] = M;
    oshape[nb + 1] = N;

    xcs_dtype dt = xcs_dtype_promote(a0->dtype, a0->flags & XCS_TENSOR_WEAK, b0->dtype, b0->flags & XCS_TENSOR_WEAK);
    const xcs_tensor *ac, *bc;
    xcs_tensor *aown, *bown;
    if ((st = as_dtype(&av, dt, &ac, &aown))) return st;
    if ((st = as_dtype(&bv, dt, &bc, &bown))) { xcs_tensor_free(aown); return st; }
    const xcs_tensor *ops[2] = {ac, bc};
    xcs_tensor *moved[2] = {NULL, NULL};
    xcs_graph *g;
    const xcs_backend *be = NULL;
    if (xcs_trace_any(2, ops, &g, &st)) {
        if (!st) st = xcs_trace_node(g, XCS_OP_MATMUL, 2, ops, dt, dt, nb + 2, oshape, 0, 0, out);
    } else if (!(st = xcs_colocate(2, ops, moved, "matmul"))) { /* a host operand joins a device one */
        be = xcs_backend_for(ops[0]->storage->device);
        if (!be) st = xcs_last_status();
        if (!st) st = xcs_tensor_empty_on(ops[0]->storage, dt, nb + 2, oshape, out);
    }
    if (!st && be && xcs_tensor_numel(*out) > 0) {
        st = be->matmul(ops[0], ops[1], *out);
        if (st) { xcs_tensor_free(*out); *out = NULL; }
    }
    xcs_tensor_free(moved[0]);
    xcs_tensor_free(moved[1]);
    xcs_tensor_free(aown);
    xcs_tensor_free(bown);
    if (st) return st;
    /* drop the axes added for 1-D operands (out is contiguous: a header edit) */
    xcs_tensor *o = *out;
    if (b_vec) o->ndim--;
    if (a_vec) { o->shape[o->ndim - (b_vec ? 1 : 2)] = o->shape[o->ndim - (b_vec ? 1 : 2) + 1]; o->ndim--; }
    xcs_strides_contiguous(o->ndim, o->shape, o->strides);
    return XCS_OK;
}

/* The rows of t's dims [0, nd - 1) (the batch dims and the row dim), when
 * they are one strided run: *stride between consecutive rows (size-1 dims
 * aside), *rows their count. */
static bool rows_merge(const xcs_tensor *t, int64_t *rows, int64_t *stride) {
    int64_t n = 1, step = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (n == 1) step = t->strides[d];
        else if (t->strides[d] != step * n) return false;
        n *= t->shape[d];
    }
    *rows = n;
    *stride = step;
    return n > 1;
}

bool xcs_matmul_fold_rows(const xcs_tensor *a, const xcs_tensor *b, const xcs_tensor *out, xcs_tensor *a2,
                          xcs_tensor *b2, xcs_tensor *out2) {
    int nd = out->ndim;
    if (nd < 3 || a->ndim != nd || b->ndim != nd) return false;
    for (int d = 0; d < nd - 2; d++)
        if (b->shape[d] != 1 && b->strides[d] != 0) return false; /* b differs between batch entries */
    int64_t ra, sa, ro, so, batch = 1;
    for (int d = 0; d < nd - 2; d++) batch *= out->shape[d];
    if (batch < 2 || !rows_merge(a, &ra, &sa) || !rows_merge(out, &ro, &so) || ra != ro) return false;
    *a2 = *a;
    *b2 = *b;
    *out2 = *out;
    a2->ndim = b2->ndim = out2->ndim = 2;
    a2->shape[0] = ra, a2->strides[0] = sa;
    a2->shape[1] = a->shape[nd - 1], a2->strides[1] = a->strides[nd - 1];
    b2->shape[0] = b->shape[nd - 2], b2->strides[0] = b->strides[nd - 2];
    b2->shape[1] = b->shape[nd - 1], b2->strides[1] = b->strides[nd - 1];
    out2->shape[0] = ro, out2->strides[0] = so;
    out2->shape[1] = out->shape[nd - 1], out2->strides[1] = out->strides[nd - 1];
    return true;
}
