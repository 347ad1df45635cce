/* fused_reduce.c — the trailing REDUCE of a fused program (fu_run_reduce).
 *
 * The program's dims (size-1 dims dropped) are classified kept (K) or
 * reduced (R) and one of two drivers runs:
 *   ROWS  reduced dims innermost (K* R+): softmax's sum over the last axis, a
 *         full reduction.  Space = [kept..., reduced...], flat = k * R + r.
 *         Rows of at most FU_TILE elements are packed several to a tile and
 *         each folded into its own accumulator; longer rows are walked tile by
 *         tile into one accumulator.  Any other axes set (e.g. K R K R) runs
 *         here too, with the space permuted to put kept dims first (strided
 *         gathers; correct, not fast).
 *   COLS  reduced dims in the middle or outermost (K* R+ K+): a sum over axis
 *         0 of a matrix.  Space = [K1, R, K2]; a tile holds several rows of K2
 *         (or a piece of one long row) and is folded "vertically" into K2
 *         accumulators, so every load is unit-stride.
 *
 * Accumulators follow xcs_reduce (reduce.c): float sums/products in double,
 * bool/int sums/products in uint64 (wrapping like int64, no signed-overflow
 * UB), max/min in the register's dtype with NaN propagating.  The result is
 * converted to the output's dtype.
 *
 * Determinism: the reduced range of each output is cut into blocks whose size
 * depends only on the shape (only when there are fewer than FU_SPLIT output
 * units to share out), blocks fold in a fixed tile order and partial results
 * merge in block order — the same bits for any thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "fused_plan.h"
#include "reduce_plan.h"

#define FU_BLOCK ((int64_t)64 * FU_TILE) /* reduced elements per partial result */
#define FU_SPLIT 64                       /* fewer output units: split the reduced range */

/* The folding kernels are reduce.c's (reduce_plan.h): the same vectorised,
 * NaN-propagating loops and the same accumulator types as eager reductions,
 * applied here to contiguous registers (stride 1). */
typedef struct fu_red {
    const fu_plan *P;
    const red_kernels *f;
    int reg;              /* register REDUCE folds */
    size_t xs;            /* its element size */
    char *out;            /* output data, C order over kept dims */
    size_t os;
    int64_t K1, R, K2;    /* ROWS: K1 outputs of R elements, K2 == 1 */
    bool par;
} fu_red;

/* Accumulators for one tile: FU_TILE of at most 8 bytes. */
typedef struct fu_accs { _Alignas(64) char a[FU_TILE * 8]; } fu_accs;

/* Runs fn(t) for t < tasks, in parallel when worth it; each thread gets its
 * registers and accumulators on its own stack.  On one thread no OpenMP
 * region is entered at all (entering one costs a futex call even then). */
#define FU_FOR_TASKS(rd, tasks, err, ...)                                                  \
    if (!((rd)->par && (tasks) > 1)) {                                                      \
        fu_regs R_;                                                                         \
        fu_accs A_;                                                                         \
        for (int64_t t = 0; t < (tasks); t++) __VA_ARGS__                                   \
    } else {                                                                                \
        _Pragma("omp parallel reduction(| : err)")                                          \
        {                                                                                   \
            fu_regs R_;                                                                     \
            fu_accs A_;                                                                     \
            _Pragma("omp for schedule(static)")                                             \
            for (int64_t t = 0; t < (tasks); t++) __VA_ARGS__                               \
        }                                                                                   \
    }

static unsigned fu_rows(const fu_red *rd, char **part_out) {
    const fu_plan *P = rd->P;
    const red_kernels *f = rd->f;
    const int64_t K = rd->K1, R = rd->R;
    unsigned err = 0;
    if (R <= FU_TILE) { /* h whole rows per tile */
        const int64_t h = FU_TILE / R, tasks = (K + h - 1) / h;
        FU_FOR_TASKS(rd, tasks, err, {
            int64_t k0 = t * h, hh = K - k0 < h ? K - k0 : h;
            err |= fu_exec_tile(P, &R_, k0 * R, hh * R);
            const char *x = R_.ptr[rd->reg];
            f->init(A_.a, hh);
            for (int64_t i = 0; i < hh; i++)
                f->row((const char *)(x + i * R * (int64_t)rd->xs), R, 1, A_.a + i * (int64_t)f->acc_size);
            rd->f->store(A_.a, hh, rd->out + k0 * (int64_t)rd->os, 1);
        })
        return err;
    }
    const int64_t nblk = K >= FU_SPLIT ? 1 : (R + FU_BLOCK - 1) / FU_BLOCK;
    const int64_t blk = nblk == 1 ? R : FU_BLOCK, tasks = K * nblk;
    char *part = NULL;
    if (nblk > 1 && !(part = *part_out = malloc((size_t)tasks * f->acc_size))) return ~0u;
    FU_FOR_TASKS(rd, tasks, err, {
        int64_t k = t / nblk, r0 = t % nblk * blk, r1 = r0 + blk < R ? r0 + blk : R;
        char *acc = part ? part + t * (int64_t)f->acc_size : A_.a;
        f->init(acc, 1);
        for (int64_t r = r0; r < r1; r += FU_TILE) {
            int64_t len = r1 - r < FU_TILE ? r1 - r : FU_TILE;
            err |= fu_exec_tile(P, &R_, k * R + r, len);
            f->row((const char *)(R_.ptr[rd->reg]), len, 1, acc);
        }
        if (!part) rd->f->store(acc, 1, rd->out + k * (int64_t)rd->os, 1);
    })
    if (part) {
#pragma omp parallel for schedule(static) if (rd->par && K > 1)
        for (int64_t k = 0; k < K; k++) {
            fu_accs A;
            f->init(A.a, 1);
            for (int64_t b = 0; b < nblk; b++) f->merge(A.a, part + (k * nblk + b) * (int64_t)f->acc_size, 1);
            rd->f->store(A.a, 1, rd->out + k * (int64_t)rd->os, 1);
        }
    }
    return err;
}

static unsigned fu_cols(const fu_red *rd, char **part_out) {
    const fu_plan *P = rd->P;
    const red_kernels *f = rd->f;
    const int64_t K1 = rd->K1, R = rd->R, K2 = rd->K2;
    const int64_t as = (int64_t)f->acc_size, xs = (int64_t)rd->xs;
    /* a unit: w consecutive outputs of one k1; a tile: h reduced rows of it */
    const int64_t nw = (K2 + FU_TILE - 1) / FU_TILE, w = (K2 + nw - 1) / nw;
    const int64_t h = nw == 1 ? FU_TILE / K2 : 1, units = K1 * nw;
    int64_t cb = (FU_BLOCK / (h * w) > 1 ? FU_BLOCK / (h * w) : 1) * h; /* rows per block */
    const int64_t nblk = units >= FU_SPLIT ? 1 : (R + cb - 1) / cb;
    if (nblk == 1) cb = R;
    const int64_t tasks = units * nblk;
    unsigned err = 0;
    char *part = NULL;
    if (nblk > 1 && !(part = *part_out = malloc((size_t)(tasks * w * as)))) return ~0u;
    FU_FOR_TASKS(rd, tasks, err, {
        int64_t u = t / nblk, k1 = u / nw, j0 = u % nw * w, wl = K2 - j0 < w ? K2 - j0 : w;
        int64_t q0 = t % nblk * cb, q1 = q0 + cb < R ? q0 + cb : R;
        char *acc = part ? part + t * w * as : A_.a;
        f->init(acc, wl);
        for (int64_t q = q0; q < q1; q += h) {
            int64_t hh = q1 - q < h ? q1 - q : h;
            err |= fu_exec_tile(P, &R_, (k1 * R + q) * K2 + j0, nw == 1 ? hh * K2 : wl);
            const char *x = R_.ptr[rd->reg];
            for (int64_t i = 0; i < hh; i++) f->col((const char *)(x + i * K2 * xs), wl, 1, acc);
        }
        if (!part) rd->f->store(acc, wl, rd->out + (k1 * K2 + j0) * (int64_t)rd->os, 1);
    })
    if (part) {
#pragma omp parallel for schedule(static) if (rd->par && units > 1)
        for (int64_t u = 0; u < units; u++) {
            int64_t k1 = u / nw, j0 = u % nw * w, wl = K2 - j0 < w ? K2 - j0 : w;
            fu_accs A;
            f->init(A.a, wl);
            for (int64_t b = 0; b < nblk; b++) f->merge(A.a, part + (u * nblk + b) * w * as, wl);
            rd->f->store(A.a, wl, rd->out + (k1 * K2 + j0) * (int64_t)rd->os, 1);
        }
    }
    return err;
}

void fu_reduce_space(fu_plan *P, const xcs_tensor *const *inputs, xcs_tensor *const *outputs) {
    const xcs_fused_program *p = P->p;
    /* Classify: kept dims after the first reduced one make COLS when they
     * form one trailing run (K* R+ K+), else the space is permuted. */
    const unsigned axes = p->reduce_axes;
    int seq = 0; /* 0: K*, 1: K* R+, 2: K* R+ K+, 3: anything else */
    int64_t K1 = 1, R = 1, K2 = 1;
    int order[XCS_MAX_DIMS] = {0}, group[XCS_MAX_DIMS] = {0}; /* (all of them written for ndim > 0) */
    for (int d = 0; d < p->ndim; d++) {
        bool red = axes >> d & 1u;
        if (red) R *= p->shape[d];
        else if (seq >= 1) K2 *= p->shape[d];
        else K1 *= p->shape[d];
        order[d] = d;
        group[d] = red ? 1 : seq >= 1 ? 2 : 0;
        if (p->shape[d] == 1) continue;
        if (red && seq == 0) seq = 1;
        else if (red && seq == 2) seq = 3;
        else if (!red && seq == 1) seq = 2;
    }
    if (seq == 3) { /* kept first, then reduced: a ROWS space */
        int n = 0;
        K1 *= K2;
        K2 = 1;
        for (int d = 0; d < p->ndim; d++)
            if (!(axes >> d & 1u)) order[n] = d, group[n++] = 0;
        for (int d = 0; d < p->ndim; d++)
            if (axes >> d & 1u) order[n] = d, group[n++] = 1;
    } else if (seq < 2) { /* K2 holds only size-1 dims: fold into K1 */
        K1 *= K2;
        K2 = 1;
    }
    fu_space_build(P, inputs, outputs, order, group);
    P->cols = seq == 2;
    P->red_K1 = K1, P->red_R = R, P->red_K2 = K2;
}

xcs_status fu_reduce_run(const fu_plan *P, unsigned *err) {
    const xcs_fused_program *p = P->p;
    const xcs_fused_instr *ri = &p->instr[p->n_instr - 1];
    const int slot = ri->op == XCS_OP_SUM ? RED_SUM : ri->op == XCS_OP_PROD ? RED_PROD
                   : ri->op == XCS_OP_MAX ? RED_MAX : RED_MIN;
    const fu_operand *out = &P->out[ri->dst];
    fu_red rd = {.P = P, .f = xcs_red_table[slot][P->adt[p->n_instr - 1]], .reg = ri->a,
                 .xs = xcs_dtype_size(P->adt[p->n_instr - 1]), .out = out->base, .os = out->isize,
                 .K1 = P->red_K1, .R = P->red_R, .K2 = P->red_K2};
    *err = 0;
    if (rd.K1 * rd.K2 == 0) return XCS_OK;
    if (rd.R == 0) {
        if (slot >= 2)
            return xcs_error(XCS_ERR_VALUE, "%s: zero-size reduction has no identity", xcs_op_name(ri->op));
        fu_accs A;
        rd.f->init(A.a, 1);
        for (int64_t k = 0; k < rd.K1 * rd.K2; k++) rd.f->store(A.a, 1, rd.out + k * (int64_t)rd.os, 1);
        return XCS_OK;
    }
    rd.par = P->parallel && P->numel >= XCS_CPU_PAR_MIN;
    char *part = NULL;
    *err = P->cols ? fu_cols(&rd, &part) : fu_rows(&rd, &part);
    free(part);
    if (*err == ~0u) {
        *err = 0;
        return xcs_error(XCS_ERR_MEMORY, "fused %s: cannot allocate partial results", xcs_op_name(ri->op));
    }
    return XCS_OK;
}
