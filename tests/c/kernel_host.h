/* kernel_host.h — generated CUDA kernels run on the host, for tests.
 *
 * CI has no GPU, so the kernels src/cuda/codegen.c writes are only compiled
 * there (NVRTC).  This compiles their CUDA C with the system C++ compiler
 * against a small shim (__global__ etc. defined away, threadIdx/blockIdx/
 * blockDim/gridDim as globals, the bit-cast intrinsics through memcpy,
 * the round-to-nearest double intrinsics as plain operations (compiled
 * with -ffp-contract=off: no FMA),
 * float4/int4, atomicOr and atomicAdd as plain read-modify-writes) and runs a launch as a loop over
 * every (block, thread), one after another: the llm.c habit of a CPU
 * reference beside every kernel, with the kernel itself on the CPU too.
 *
 * Only kernels whose threads do not talk to each other run correctly this
 * way: the elementwise ones (grid-stride loops).  Anything with __shared__,
 * __syncthreads or warp shuffles (reductions, row chains) does not compile
 * against that shim, on purpose (xcs_kernel_host_compile keeps refusing
 * them).  Compiled with XCS_KERNEL_HOST_COOPERATIVE
 * (xcs_kernel_host_compile_ex), such kernels run faithfully: each block's
 * threads are fibers (ucontext, a stack each) switched only at barriers,
 * in an order xcs_kernel_host_set_schedule picks, with __shared__ as one
 * static copy per kernel, __syncthreads as a block barrier and
 * __shfl_{down,up,xor,}_sync as exchanges through per-lane slots at a warp
 * barrier (kernel_host.c says how); blocks still run one after another.  A
 * source without any of them keeps the plain loop (the fast path).
 *
 * The compiler is $CXX, else `c++`. */
#ifndef XCS_TEST_KERNEL_HOST_H
#define XCS_TEST_KERNEL_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "xcs.h"

typedef struct xcs_kernel_host xcs_kernel_host;

/* Compiles src (CUDA C: a prelude and n_kernels `extern "C" __global__`
 * kernels named kernel_names[k], each taking one `args_type` by value) into
 * a shared object in a fresh temporary directory, loads it and removes the
 * directory.  *out (owned: xcs_kernel_host_free) runs kernel k by index.
 * Borrows every argument.  A compile failure is XCS_ERR_VALUE with the
 * compiler's first lines in the message; a missing compiler or temporary
 * directory, XCS_ERR_UNSUPPORTED. */
xcs_status xcs_kernel_host_compile(const char *src, int n_kernels, const char *const *kernel_names,
                                   const char *args_type, xcs_kernel_host **out);

/* Flags of xcs_kernel_host_compile_ex. */
#define XCS_KERNEL_HOST_COOPERATIVE 1u /* the fiber shim: threads may meet (barriers, shuffles, shared memory) */

/* xcs_kernel_host_compile with flags (0: the same). */
xcs_status xcs_kernel_host_compile_ex(const char *src, int n_kernels, const char *const *kernel_names,
                                      const char *args_type, unsigned flags, xcs_kernel_host **out);

/* True when k's launches run each block's threads as fibers (compiled
 * cooperative from a source whose threads meet). */
bool xcs_kernel_host_fibers(const xcs_kernel_host *k);

/* The order in which a block's runnable fibers run: each is a schedule a
 * GPU may run, and each exposes other missing barriers (a data race on
 * shared memory shows up as a wrong result under some order).  It holds
 * for k's later launches (seed: the random order's); a plain-loop k
 * ignores it.  XCS_ERR_VALUE for an unknown one. */
typedef enum {
    XCS_KERNEL_HOST_ROUND_ROBIN = 0, /* the default: the next fiber after the one that waits */
    XCS_KERNEL_HOST_LOWEST_FIRST,    /* the runnable fiber of lowest index: warp 0 runs ahead */
    XCS_KERNEL_HOST_HIGHEST_FIRST,   /* of highest index: the last warp runs ahead */
    XCS_KERNEL_HOST_RANDOM           /* from a random place (seeded: reproducible) */
} xcs_kernel_host_schedule;
xcs_status xcs_kernel_host_set_schedule(xcs_kernel_host *k, xcs_kernel_host_schedule order, uint64_t seed);

/* Runs kernel `kernel` over `blocks` blocks of `threads` threads with the
 * argument block at args (a copy of the C mirror of args_type, e.g.
 * xcs_cuda_args with host pointers); returns when every thread is done.
 * On fibers, a block whose threads cannot all pass a barrier (a
 * __syncthreads not every live thread reaches) is XCS_ERR_VALUE, and so
 * are more than 1024 threads. */
xcs_status xcs_kernel_host_launch(xcs_kernel_host *k, int kernel, const void *args, unsigned blocks,
                                  unsigned threads);

/* Unloads and frees (NULL: nothing). */
void xcs_kernel_host_free(xcs_kernel_host *k);

/* True when a kernel compiles, loads and runs (checked once, with $CXX or
 * c++): tests skip without it.  On false, xcs_last_error() says why. */
bool xcs_kernel_host_available(void);

#endif /* XCS_TEST_KERNEL_HOST_H */
