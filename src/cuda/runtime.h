/* runtime.h — the CUDA device runtime's first layer: a device (primary
 * context) through the driver API opened with dlopen, device memory, and
 * fused programs run as NVRTC-compiled kernels (codegen.h), each compiled
 * once per (source, device) and kept in an in-memory module cache.
 *
 * Synchronous on the context's default stream for now: the caller's thread
 * waits for each launch (streams/events and the backend vtable come next).
 * Every driver and NVRTC call is checked; failures return XCS_ERR_* with a
 * message naming the call, the kernel and the driver's error name. */
#ifndef XCS_CUDA_RUNTIME_H
#define XCS_CUDA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "codegen.h"
#include "xcs.h"

typedef struct xcs_cu_runtime xcs_cu_runtime;
typedef uint64_t xcs_cu_ptr; /* a device address (CUdeviceptr) */

/* Opens device `ordinal`: XCS_ERR_UNSUPPORTED with the reason when there is
 * no driver, no such device, or no NVRTC. */
xcs_status xcs_cu_open(int ordinal, xcs_cu_runtime **out);
void xcs_cu_close(xcs_cu_runtime *rt);
/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, driver 12040". */
const char *xcs_cu_describe(const xcs_cu_runtime *rt);
int xcs_cu_cc(const xcs_cu_runtime *rt); /* compute capability, e.g. 90 */

xcs_status xcs_cu_alloc(xcs_cu_runtime *rt, size_t nbytes, xcs_cu_ptr *out);
void xcs_cu_free(xcs_cu_runtime *rt, xcs_cu_ptr p);
xcs_status xcs_cu_to_device(xcs_cu_runtime *rt, xcs_cu_ptr dst, const void *src, size_t nbytes);
xcs_status xcs_cu_to_host(xcs_cu_runtime *rt, void *dst, xcs_cu_ptr src, size_t nbytes);

/* A fused-program operand on the device: base address of element [0, ...]
 * and strides (elements) per dim of the program's space (0: broadcast). */
typedef struct xcs_cu_operand {
    xcs_cu_ptr base;
    xcs_dtype dtype;
    int64_t strides[XCS_MAX_DIMS];
} xcs_cu_operand;

/* Runs program p over its space: inputs/outputs as above (a REDUCE output is
 * C-contiguous with 1 on the reduced axes).  Picks the flat variant when
 * every operand allows it.  Waits for the kernel; integer division by zero
 * and negative integer powers come back as the CPU backend reports them. */
xcs_status xcs_cu_run_fused(xcs_cu_runtime *rt, const xcs_fused_program *p, const xcs_cu_operand *in,
                            const xcs_cu_operand *out);

/* Kernels compiled so far (module cache size), for tests. */
int xcs_cu_kernels_cached(const xcs_cu_runtime *rt);

#endif /* XCS_CUDA_RUNTIME_H */
