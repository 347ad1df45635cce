/* matmul_fused.c — a GEMM and its elementwise epilogue (bias, activation,
 * residual) in one step: xcs_cpu_matmul_fused.
 *
 * The blocked GEMM (matmul.c) hands each block of C to the epilogue as soon
 * as its last K panel is accumulated, from the thread that computed it, so
 * the fused program reads the block from cache instead of streaming the
 * whole product through memory a second time.  The product is usually the
 * group's own output (the epilogue runs in place), so no intermediate array
 * is allocated.  Large float GEMMs go to BLAS, which offers no such hook:
 * there the epilogue runs as one in-place pass after the GEMM (its cost is
 * one read + write of C against 2*M*N*K flops). */
#include <stdio.h>
#include <string.h>

#include "cpu_kernels.h"

typedef struct epi_ctx {
    xcs_mm_epilogue base; /* first: the GEMM sees only this */
    const xcs_fused_program *p;
    const xcs_tensor *const *inputs;
    xcs_tensor *const *outputs;
    const char *c0;       /* prod's element [0, ..., 0] */
    int64_t sz, N, M0;    /* element bytes, columns, rows per matrix */
    int nd;
    const int64_t *shape; /* prod's shape */
    int64_t rows;         /* prod's rows, all matrices */
    /* flat: every operand's (batch..., row) dims are one axis with one
     * stride (row_stride[k], inputs then outputs), so a block of rows from
     * several matrices is one 2-D view (a vmap's [B, 1, N] products: one
     * row per matrix) */
    bool flat;
    int64_t row_stride[2 * XCS_FUSED_MAX_IO];
    xcs_fused_cache **cache; /* the call site's kept plan: used by a block that is the whole product (the only one) */
    xcs_status st;        /* first failure, from any thread */
    char msg[512];
} epi_ctx;

/* The stride from one row of t's leading nd - 1 dims (batch..., row), taken
 * in C order as one axis, to the next, when one stride serves them all
 * (size-1 dims aside); false when it does not. */
static bool flat_row_stride(const xcs_tensor *t, int nd, int64_t *rs) {
    bool have = false;
    int64_t expect = 0;
    *rs = 0;
    for (int d = nd - 2; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (have && t->strides[d] != expect) return false;
        if (!have) *rs = t->strides[d];
        have = true;
        expect = t->strides[d] * t->shape[d];
    }
    return true;
}

/* t's [rows, cols] block at leading index idx (nd - 1 dims: batch..., row)
 * and column j0, as a borrowed stack view; rs >= 0: rows step by rs (a
 * flat block, idx[0] its first global row), else by the row dim's stride. */
static void block_view(const xcs_tensor *t, const int64_t *idx, int nd, int64_t j0, int64_t rows,
                       int64_t cols, int64_t rs, xcs_tensor *v) {
    *v = *t;
    int64_t off = t->offset + j0 * t->strides[nd - 1];
    if (rs >= 0) off += idx[0] * rs;
    else
        for (int d = 0; d < nd - 1; d++) off += idx[d] * t->strides[d];
    v->offset = off;
    v->ndim = 2;
    v->shape[0] = rows, v->shape[1] = cols;
    v->strides[0] = rs >= 0 ? rs : t->strides[nd - 2], v->strides[1] = t->strides[nd - 1];
}

static void epi_block(xcs_mm_epilogue *e, char *c, int64_t rows, int64_t cols) {
    epi_ctx *x = (epi_ctx *)e;
    const xcs_fused_program *p = x->p;
    int64_t flat = (int64_t)(c - x->c0) / x->sz, gi = flat / x->N, j0 = flat % x->N;
    while (rows > 0) {
        /* the whole block as one view where the operands allow (flat), else
         * the rows of one matrix at a time: folded batch rows need not be
         * evenly strided in the epilogue's inputs */
        int64_t piece = x->flat ? rows : x->M0 - gi % x->M0 < rows ? x->M0 - gi % x->M0 : rows;
        int64_t idx[XCS_MAX_DIMS], r = gi;
        if (x->flat) {
            idx[0] = gi;
        } else {
            for (int d = x->nd - 2; d >= 0; d--) {
                idx[d] = r % x->shape[d];
                r /= x->shape[d];
            }
        }
        xcs_tensor in[XCS_FUSED_MAX_IO], out[XCS_FUSED_MAX_IO];
        const xcs_tensor *inp[XCS_FUSED_MAX_IO];
        xcs_tensor *outp[XCS_FUSED_MAX_IO];
        for (int k = 0; k < p->n_inputs; k++) {
            block_view(x->inputs[k], idx, x->nd, j0, piece, cols, x->flat ? x->row_stride[k] : -1, &in[k]);
            inp[k] = &in[k];
        }
        for (int k = 0; k < p->n_outputs; k++) {
            block_view(x->outputs[k], idx, x->nd, j0, piece, cols, x->flat ? x->row_stride[p->n_inputs + k] : -1,
                       &out[k]);
            outp[k] = &out[k];
        }
        xcs_fused_program q = *p;
        q.ndim = 2;
        q.shape[0] = piece, q.shape[1] = cols;
        bool whole = piece == x->rows && cols == x->N;
        xcs_status st = xcs_cpu_run_fused_kept(p, &q, whole ? x->cache : NULL, inp, outp, false);
        if (st) {
#pragma omp critical(xcs_matmul_epilogue)
            if (!x->st) {
                x->st = st;
                snprintf(x->msg, sizeof x->msg, "%s", xcs_last_error());
            }
            return;
        }
        rows -= piece;
        gi += piece;
    }
}

xcs_status xcs_cpu_matmul_fused(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                const xcs_fused_program *p, const xcs_tensor *const *inputs,
                                xcs_tensor *const *outputs) {
    return xcs_cpu_matmul_fused_kept(a, b, prod, p, NULL, inputs, outputs);
}

xcs_status xcs_cpu_matmul_fused_kept(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod,
                                     const xcs_fused_program *p, xcs_fused_cache **cache,
                                     const xcs_tensor *const *inputs, xcs_tensor *const *outputs) {
    int nd = prod->ndim;
    bool ok = p && p->n_inputs >= 1 && inputs[0] && xcs_tensor_data(inputs[0]) == xcs_tensor_data(prod) && nd >= 2;
    bool reduces = ok && p->n_instr > 0 && p->instr[p->n_instr - 1].kind == XCS_FUSED_REDUCE;
    /* a program ending in a reduction may run over the product's shape
     * without its size-1 dims (a 1-D operand's product) */
    int64_t numel = 1;
    for (int d = 0; ok && d < p->ndim; d++) numel *= p->shape[d];
    if (reduces) ok = numel == xcs_tensor_numel(prod);
    else ok = ok && p->ndim == nd;
    for (int d = 0; ok && !reduces && d < nd; d++) ok = p->shape[d] == prod->shape[d];
    if (!ok) return xcs_error(XCS_ERR_VALUE, "matmul epilogue: the program must be elementwise over the product, "
                                             "with the product as input 0");
    /* the blocked GEMM's hook needs every block of prod at one place in the
     * inputs' index space: a C-contiguous product */
    /* (a trailing reduction needs the whole product: the epilogue runs after the GEMM) */
    if (reduces || xcs_host_matmul_prefers_blas(a, b, prod) || a->shape[nd - 1] == 0 || xcs_dtype_is_half(prod->dtype) ||
        !xcs_tensor_is_contiguous(prod) || xcs_tensor_numel(prod) == 0) {
        xcs_status st = xcs_cpu_matmul(a, b, prod);
        return st ? st : xcs_cpu_run_fused_kept(p, p, cache, inputs, outputs, true);
    }
    epi_ctx x = {.base = {.fn = epi_block}, .p = p, .inputs = inputs, .outputs = outputs,
                 .c0 = xcs_tensor_data(prod), .sz = (int64_t)xcs_dtype_size(prod->dtype),
                 .N = prod->shape[nd - 1], .M0 = prod->shape[nd - 2], .nd = nd, .shape = prod->shape,
                 .rows = xcs_tensor_numel(prod) / prod->shape[nd - 1], .cache = cache, .flat = true};
    for (int k = 0; k < p->n_inputs + p->n_outputs && x.flat; k++)
        x.flat = flat_row_stride(k < p->n_inputs ? inputs[k] : outputs[k - p->n_inputs], nd, &x.row_stride[k]);
    xcs_status st = xcs_host_matmul_blocked_epi(a, b, prod, &x.base);
    if (!st && x.st) st = xcs_error(x.st, "%s", x.msg);
    return st;
}
