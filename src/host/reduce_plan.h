/* reduce_plan.h — internal to src/host: what reduce.c (sum, prod, max, min)
 * and argreduce.c (argmax, argmin) share: the per-(op, dtype) folding kernels,
 * the reduction plan and the checks on the preallocated output.  How the plan
 * is built and run (ROW / COL shapes, RED_BLOCK blocks, determinism) is
 * explained at the top of reduce.c. */
#ifndef XCS_REDUCE_PLAN_H
#define XCS_REDUCE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_kernels.h"

#define RED_BLOCK ((int64_t)1 << 16) /* reduced elements per partial result */

/* Per (op, input dtype): folding kernels over an accumulator type A.
 *   row:   acc[0] = op(acc[0], x[0], x[s], ..., x[(n-1)s])
 *   col:   acc[j] = op(acc[j], x[j*s])               for j < n
 *   merge: acc[j] = op(acc[j], part[j])
 *   store: out[j*os] = (output type) acc[j] */
typedef struct red_kernels {
    size_t acc_size;
    void (*init)(void *acc, int64_t n);
    void (*row)(const char *x, int64_t n, int64_t s, void *acc);
    void (*col)(const char *x, int64_t n, int64_t s, void *acc);
    void (*merge)(void *acc, const void *part, int64_t n);
    void (*store)(const void *acc, int64_t n, char *out, int64_t os);
} red_kernels;

/* Rows of xcs_red_table.  max/min accumulate in the input type and store it
 * unchanged, so argreduce.c reuses their row kernels to find the extreme. */
enum { RED_SUM, RED_PROD, RED_MAX, RED_MIN, RED_SLOTS };
extern const red_kernels *const xcs_red_table[RED_SLOTS][XCS_DTYPE_COUNT];

typedef struct red_plan {
    const red_kernels *k;
    const char *xbase;
    char *obase;
    int64_t xsz, osz;
    int nk;                       /* kept dims, in order */
    int64_t kshape[XCS_MAX_DIMS], kxs[XCS_MAX_DIMS], kos[XCS_MAX_DIMS];
    int nr;                       /* reduced dims, strides descending */
    int64_t rshape[XCS_MAX_DIMS], rxs[XCS_MAX_DIMS];
    int64_t nout, R;
} red_plan;

/* Builds the plan of reducing x over the dims in `axes` into out (keepdims
 * form); drop_broadcast skips stride-0 reduced dims (max/min).  Borrows x and
 * out.  Returns false when x has no elements on a kept dim (there is nothing
 * to write).  R == 0 means an empty reduction. */
bool xcs_red_plan_build(red_plan *p, const xcs_tensor *x, unsigned axes, xcs_tensor *out,
                        bool drop_broadcast);

/* XCS_OK when out has dtype `want` and is x's keepdims shape for `axes`;
 * else an error naming `what`. */
xcs_status xcs_red_check_out(const char *what, const xcs_tensor *x, unsigned axes,
                             const xcs_tensor *out, xcs_dtype want);

/* Element offsets in x and out of kept index o, skipping kept dim `skip`.
 * Inline: it runs once per output (or task) in every loop shape. */
static inline void red_kept_offsets(const red_plan *p, int64_t o, int skip, int64_t *xo,
                                    int64_t *oo) {
    int64_t a = 0, b = 0;
    for (int d = p->nk - 1; d >= 0; d--) {
        if (d == skip) continue;
        int64_t i = o % p->kshape[d];
        o /= p->kshape[d];
        a += i * p->kxs[d];
        b += i * p->kos[d];
    }
    *xo = a;
    *oo = b;
}

#endif
