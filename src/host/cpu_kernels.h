/* cpu_kernels.h — internal to src/host: the CPU backend's kernel entry points,
 * one per xcs_backend slot (see xcs.h for each contract). */
#ifndef XCS_CPU_KERNELS_H
#define XCS_CPU_KERNELS_H

#include "xcs.h"

/* Work below this many elements runs on one thread: an OpenMP fork costs
 * ~1-5 us, which small arrays cannot amortise. */
#define XCS_CPU_PAR_MIN 32768

xcs_status xcs_cpu_elementwise(xcs_op op, int n_in, const xcs_tensor *const *in,
                               xcs_dtype compute, xcs_tensor *out);
xcs_status xcs_cpu_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out);
xcs_status xcs_cpu_argreduce(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out);
xcs_status xcs_cpu_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
xcs_status xcs_cpu_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
xcs_status xcs_cpu_fill(xcs_tensor *out, double value);
xcs_status xcs_cpu_iota(xcs_tensor *out, double start, double step);
xcs_status xcs_cpu_random(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out);
xcs_status xcs_cpu_run_fused(const xcs_fused_program *p, const xcs_tensor *const *inputs, xcs_tensor *const *outputs);

#endif
