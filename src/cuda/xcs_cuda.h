/* xcs_cuda.h — the boundary between the host (src/host/cuda_loader.c) and
 * the CUDA backend module, libxcs_cuda.so, which the host opens with dlopen
 * at first use.  The module links nothing from CUDA: it dlopens the driver
 * (libcuda.so.1) and NVRTC itself (cuBLAS will be opened the same way), so
 * it loads on any machine and reports exactly what is missing.
 *
 * Only plain C types cross the boundary (the module carries its own copy of
 * the core, so errors come back as text, not through xcs_last_error). */
#ifndef XCS_CUDA_H
#define XCS_CUDA_H

#include <stddef.h>

#define XCS_CUDA_ABI 1
#define XCS_CUDA_ENTRY "xcs_cuda_module_v1"
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
} xcs_cuda_probe;

typedef struct xcs_cuda_module {
    int abi;                  /* XCS_CUDA_ABI */
    /* Fills *out; never fails (a failure is a reason and 0 devices). */
    void (*probe)(xcs_cuda_probe *out);
} xcs_cuda_module;

typedef const xcs_cuda_module *(*xcs_cuda_entry_fn)(void);

#endif /* XCS_CUDA_H */
