/* xcs_cuda.h — the boundary between the host (src/host/cuda_loader.c) and
 * the CUDA backend module, libxcs_cuda.so, which the host opens with dlopen
 * at first use.  The module links nothing from CUDA: it dlopens the driver
 * (libcuda.so.1), NVRTC and cuBLAS itself, so it loads on any machine and
 * reports exactly what is missing.
 *
 * The module carries its own copy of the core, so its errors come back as
 * a status plus text (last_error, thread-local in the module), which the
 * host turns into its own xcs error.  Tensors cross the boundary as core's
 * xcs_tensor (the same header on both sides); their storage's data is a
 * device address and device_index the ordinal. */
#ifndef XCS_CUDA_H
#define XCS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "xcs.h"

#define XCS_CUDA_ABI 12
#define XCS_CUDA_ENTRY "xcs_cuda_module_v2"
#define XCS_CUDA_MAX_DEVICES 16

typedef struct xcs_cuda_device_info {
    char name[128];
    int ordinal;
    int cc_major, cc_minor;   /* compute capability */
    int sm_count;
    size_t total_mem;         /* bytes */
} xcs_cuda_device_info;

typedef struct xcs_cuda_probe {
    int driver_version;       /* e.g. 12040; 0 when no driver */
    int nvrtc_version;        /* e.g. 13000; 0 when NVRTC is missing */
    int n_devices;
    xcs_cuda_device_info devices[XCS_CUDA_MAX_DEVICES];
    char reason[512];         /* why no device can be used ("" when n_devices > 0) */
    /* NCCL (pmap's collectives across GPUs), looked for only where there
     * is a device: its version (e.g. 22809), or 0 and why not. */
    int nccl_version;
    char nccl_reason[256];
} xcs_cuda_probe;

/* The caching allocator's counters for one device (bytes and counts). */
typedef struct xcs_cuda_mem_stats {
    int64_t current_bytes, peak_bytes, cached_bytes;
    int64_t allocs, reused, device_allocs;
    int64_t row_chains; /* row-chain kernels launched */
    int64_t gemm_epilogues; /* matmul groups run as one cuBLASLt GEMM with their bias/relu epilogue */
    int64_t scan_loops;     /* scan loops run as one kernel (xcs_backend.run_scan) */
    int64_t downloads;      /* copies from the device to the host */
    int64_t uploads;        /* copies from the host to the device */
    int64_t solver_factorizations; /* matrices factored by cuSOLVER (big solve, slogdet, cholesky) */
} xcs_cuda_mem_stats;

/* A collective across devices (the module's `collective`). */
typedef enum xcs_cuda_coll {
    XCS_CUDA_COLL_SUM,    /* psum: the elementwise sum of the parts */
    XCS_CUDA_COLL_MAX,    /* pmax: their elementwise max */
    XCS_CUDA_COLL_GATHER, /* all_gather: the parts concatenated along axis 0 */
} xcs_cuda_coll;

typedef struct xcs_cuda_module {
    int abi;                  /* XCS_CUDA_ABI */
    /* Fills *out; never fails (a failure is a reason and 0 devices). */
    void (*probe)(xcs_cuda_probe *out);
    /* Device work.  Entries returning xcs_status leave the message in
     * last_error() on failure.  open() is idempotent and thread-safe. */
    xcs_status (*open)(int ordinal);
    const char *(*last_error)(void);
    const char *(*describe)(int ordinal);
    xcs_status (*alloc)(int ordinal, size_t nbytes, void **out);
    void (*free)(int ordinal, void *p);
    xcs_status (*upload)(int ordinal, void *dst, const void *src, size_t nbytes);
    xcs_status (*download)(int ordinal, void *dst, const void *src, size_t nbytes);
    xcs_status (*sync)(int ordinal); /* waits for every stream of the device */
    /* As the xcs_backend entries of the same names (xcs.h). */
    xcs_status (*elementwise)(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_dtype compute, xcs_tensor *out);
    xcs_status (*reduce)(xcs_op op, const xcs_tensor *x, unsigned axes, xcs_tensor *out);
    xcs_status (*matmul)(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
    xcs_status (*run_fused)(const xcs_fused_program *p, const xcs_tensor *const *in, xcs_tensor *const *out);
    xcs_status (*run_rows)(const xcs_row_chain *rc); /* XCS_ERR_UNSUPPORTED: no row kernel for it (no message) */
    void (*mem_stats)(int ordinal, xcs_cuda_mem_stats *out);
    void (*empty_cache)(int ordinal);
    void (*set_tf32)(int on); /* float32 matmuls may use TF32 tensor cores */
    int (*kernels_cached)(int ordinal);
    /* As xcs_backend.matmul_fused (may be NULL: the GEMM, then run_fused). */
    xcs_status (*matmul_fused)(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *prod, const xcs_fused_program *p,
                               const xcs_tensor *const *in, xcs_tensor *const *out);
    /* Returns once the work queued so far that writes the device block
     * holding p is done (the calling thread's stream waits for the writer's
     * event, then for itself): block_until_ready, without a copy. */
    xcs_status (*wait)(int ordinal, const void *p);
    /* Combines n parts, device to device: part[i] and out[i] C-contiguous
     * on the i-th of n distinct devices (rank i = block i, in order); out[i]
     * gets the combination (SUM / MAX: the parts' shape; GATHER: the parts
     * concatenated along axis 0).  Queued on the calling thread's streams
     * like a kernel.  XCS_ERR_UNSUPPORTED, with the reason, when the module
     * cannot (no NCCL, a dtype it cannot carry): the caller combines on the
     * host. */
    xcs_status (*collective)(xcs_cuda_coll kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out);
    /* As xcs_backend.run_scan: XCS_ERR_UNSUPPORTED (no message) when the
     * loop does not fit its kernel. */
    xcs_status (*run_scan)(const xcs_scan_loop *sl);
    /* As the xcs_backend entries on a device (xcs.h): the indices as given,
     * checked by the kernel. */
    xcs_status (*take)(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
    xcs_status (*scatter_add)(const xcs_tensor *idx, const xcs_tensor *src, int axis, xcs_tensor *out);
    xcs_status (*argreduce)(xcs_op op, const xcs_tensor *x, int axis, xcs_tensor *out);
    xcs_status (*random)(xcs_op op, xcs_rng_key key, double a, double b, xcs_tensor *out);
    xcs_status (*take_in_range)(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out);
    xcs_status (*argsort)(const xcs_tensor *x, int axis, xcs_tensor *out);
    /* As xcs_backend.linalg; XCS_ERR_UNSUPPORTED for an op without a device
     * kernel (core then computes it on the host). */
    xcs_status (*linalg)(xcs_op op, int n_in, const xcs_tensor *const *in, xcs_tensor *out);
} xcs_cuda_module;

typedef const xcs_cuda_module *(*xcs_cuda_entry_fn)(void);

#endif /* XCS_CUDA_H */
