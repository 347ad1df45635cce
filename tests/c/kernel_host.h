/* kernel_host.h — generated CUDA kernels run on the host, for tests.
 *
 * CI has no GPU, so the kernels src/cuda/codegen.c writes are only compiled
 * there (NVRTC).  This compiles their CUDA C with the system C++ compiler
 * against a small shim (__global__ etc. defined away, threadIdx/blockIdx/
 * blockDim/gridDim as globals, the bit-cast intrinsics through memcpy,
 * float4/int4, atomicOr as a plain |=) and runs a launch as a loop over
 * every (block, thread), one after another: the llm.c habit of a CPU
 * reference beside every kernel, with the kernel itself on the CPU too.
 *
 * Only kernels whose threads do not talk to each other run correctly this
 * way: the elementwise ones (grid-stride loops).  Anything with __shared__,
 * __syncthreads or warp shuffles (reductions, row chains) does not compile
 * against the shim, on purpose.
 *
 * The compiler is $CXX, else `c++`. */
#ifndef XCS_TEST_KERNEL_HOST_H
#define XCS_TEST_KERNEL_HOST_H

#include <stdbool.h>

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

/* Runs kernel `kernel` over `blocks` blocks of `threads` threads with the
 * argument block at args (a copy of the C mirror of args_type, e.g.
 * xcs_cuda_args with host pointers); returns when every thread is done. */
xcs_status xcs_kernel_host_launch(xcs_kernel_host *k, int kernel, const void *args, unsigned blocks,
                                  unsigned threads);

/* Unloads and frees (NULL: nothing). */
void xcs_kernel_host_free(xcs_kernel_host *k);

/* True when a kernel compiles, loads and runs (checked once, with $CXX or
 * c++): tests skip without it.  On false, xcs_last_error() says why. */
bool xcs_kernel_host_available(void);

#endif /* XCS_TEST_KERNEL_HOST_H */
