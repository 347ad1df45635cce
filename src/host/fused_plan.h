/* fused_plan.h — internal to src/host: the plan and tile executor of the
 * fused tile VM (fused.c), shared with its reduction drivers
 * (fused_reduce.c).
 *
 * The iteration space of a program is rebuilt as a "space": the program's
 * dims in some order (identity, or kept dims before reduced ones), size-1
 * dims dropped and neighbours merged inside a group (kept / reduced) where
 * every operand sees one run.  A tile is a range [s, s + len) of the flat
 * C-order index of that space, len <= FU_TILE.  Drivers pick tiles; the
 * executor runs the instruction list over one tile. */
#ifndef XCS_FUSED_PLAN_H
#define XCS_FUSED_PLAN_H

#include "ew_kernels.h"
#include "xcs.h"

#define FU_TILE 1024 /* elements per tile: a register is at most 8 KiB */

/* An input, or an output written by STORE, seen through the space. */
typedef struct fu_operand {
    char *base;                    /* element [0, ..., 0] (inputs: read only) */
    int64_t strides[XCS_MAX_DIMS]; /* per space dim, elements */
    size_t isize;
    xcs_dtype dtype;
    int64_t run;                   /* flat length of the unit-stride C-order run
                                    * that ends at the last dim; 0: none */
    bool scalar;                   /* every stride 0 */
} fu_operand;

typedef struct fu_plan {
    const xcs_fused_program *p;
    int n_exec;                    /* instructions the executor runs (no REDUCE) */
    /* per instruction, filled by validation */
    xcs_ew_kernel kern[XCS_FUSED_MAX_INSTR];
    xcs_ew_convert_fn conv[XCS_FUSED_MAX_INSTR]; /* LOAD/CAST/STORE; NULL: same dtype */
    xcs_dtype adt[XCS_FUSED_MAX_INSTR];          /* dtype of reg[a] when read */
    size_t dsize[XCS_FUSED_MAX_INSTR];           /* bytes per element of reg[dst] */
    int target[XCS_FUSED_MAX_INSTR];  /* OP/CAST: output written straight into, or -1 */
    bool skip[XCS_FUSED_MAX_INSTR];   /* STORE made redundant by such a target */
    bool overlap[XCS_FUSED_MAX_INSTR]; /* OP writing over its own operand register of another width
                                        * (a bool condition under a float result): computed in scratch */
    const char *scalar[XCS_FUSED_MAX_INSTR]; /* LOAD of a broadcast scalar: FU_TILE copies */
    char *scalar_mem;
    bool copy_in[XCS_FUSED_MAX_IO];  /* input is an output's memory: LOAD copies it */
    bool stream[XCS_FUSED_MAX_IO];   /* output written with non-temporal stores */
    bool parallel;                   /* may open an OpenMP region */
    /* a trailing REDUCE (fu_reduce_space): the driver (COLS when cols, else
     * ROWS) and the space cut into K1 outputs of R reduced elements by K2 */
    bool cols;
    int64_t red_K1, red_R, red_K2;
    /* the space */
    int nd;
    int64_t shape[XCS_MAX_DIMS];
    int group[XCS_MAX_DIMS];
    int64_t numel;
    fu_operand in[XCS_FUSED_MAX_IO], out[XCS_FUSED_MAX_IO]; /* out: STORE targets */
} fu_plan;

/* Per-thread registers.  ptr[r] is where register r's tile lives: buf[r],
 * an input's own memory (read-only), a pre-filled scalar buffer, or an
 * output's memory (a targeted OP).  Only buf[r] and outputs are written. */
typedef struct fu_regs {
    _Alignas(64) char buf[XCS_FUSED_MAX_REGS][FU_TILE * 8];
    _Alignas(64) char scratch[FU_TILE * 8];
    const char *ptr[XCS_FUSED_MAX_REGS];
} fu_regs;

/* Builds the space from the program's dims taken in `order` (all ndim of
 * them), dims in the same `group` merging when every operand allows. */
void fu_space_build(fu_plan *P, const xcs_tensor *const *inputs, xcs_tensor *const *outputs,
                    const int *order, const int *group);
/* Finishes operands (runs, scalars); allocates the scalar buffers, which
 * fu_fill_scalars fills from the inputs (on every run of a kept plan: the
 * scalars' values change, the plan does not). */
xcs_status fu_prepare(fu_plan *P);
void fu_fill_scalars(const fu_plan *P);
/* Runs every instruction but REDUCE over tile [s, s + len); returns
 * XCS_EW_ERR_* bits.  Register contents are then at R->ptr[]. */
unsigned fu_exec_tile(const fu_plan *P, fu_regs *R, int64_t s, int64_t len);
/* The trailing REDUCE (fused_reduce.c): the space of validated P, kept
 * dims first (fu_space_build with the reduction's order) and the cut into
 * red_K1 x red_R x red_K2; then, once P is prepared, the fold into the
 * REDUCE's output (*err: the kernels' XCS_EW_ERR_* bits). */
void fu_reduce_space(fu_plan *P, const xcs_tensor *const *inputs, xcs_tensor *const *outputs);
xcs_status fu_reduce_run(const fu_plan *P, unsigned *err);

#endif /* XCS_FUSED_PLAN_H */
