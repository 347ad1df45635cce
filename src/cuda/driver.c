/* driver.c — the CUDA driver API opened with dlopen, and the module's entry
 * point (xcs_cuda.h).  The few driver entry points are declared with the
 * driver API's documented C signatures (CUresult is an int enum, CUdevice an
 * int), so no CUDA header is needed to build this. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "nvrtc.h"
#include "xcs_cuda.h"

typedef int cu_result;

enum { /* CUdevice_attribute values (cuda.h) */
    CU_ATTR_MULTIPROCESSOR_COUNT = 16,
    CU_ATTR_CC_MAJOR = 75,
    CU_ATTR_CC_MINOR = 76,
};

typedef struct cu_api {
    void *lib;
    cu_result (*init)(unsigned);
    cu_result (*driver_version)(int *);
    cu_result (*device_count)(int *);
    cu_result (*device_get)(int *, int);
    cu_result (*device_name)(char *, int, int);
    cu_result (*device_attr)(int *, int, int);
    cu_result (*device_mem)(size_t *, int);
    cu_result (*error_name)(cu_result, const char **);
} cu_api;

static const char *cu_err(const cu_api *cu, cu_result r, char *buf, size_t cap) {
    const char *name = NULL;
    if (cu->error_name && cu->error_name(r, &name) == 0 && name) snprintf(buf, cap, "%s (%d)", name, r);
    else snprintf(buf, cap, "error %d", r);
    return buf;
}

/* Opens libcuda.so.1 (the driver; XCS_CUDA_DRIVER overrides the name). */
static bool cu_open(cu_api *cu, char *why, size_t cap) {
    memset(cu, 0, sizeof *cu);
    const char *env = getenv("XCS_CUDA_DRIVER");
    const char *name = env && *env ? env : "libcuda.so.1";
    cu->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!cu->lib) {
        snprintf(why, cap, "the NVIDIA driver library %s was not found (%s): no CUDA driver on this machine", name,
                 dlerror());
        return false;
    }
#define CU_SYM(field, sym)                                                                          \
    do {                                                                                            \
        *(void **)&cu->field = dlsym(cu->lib, sym);                                                 \
        if (!cu->field) {                                                                           \
            snprintf(why, cap, "%s lacks %s: the driver is too old for this build", name, sym);     \
            return false;                                                                           \
        }                                                                                           \
    } while (0)
    CU_SYM(init, "cuInit");
    CU_SYM(driver_version, "cuDriverGetVersion");
    CU_SYM(device_count, "cuDeviceGetCount");
    CU_SYM(device_get, "cuDeviceGet");
    CU_SYM(device_name, "cuDeviceGetName");
    CU_SYM(device_attr, "cuDeviceGetAttribute");
    CU_SYM(device_mem, "cuDeviceTotalMem_v2");
    CU_SYM(error_name, "cuGetErrorName");
#undef CU_SYM
    return true;
}

static void probe(xcs_cuda_probe *out) {
    memset(out, 0, sizeof *out);
    xcs_nvrtc *nv = NULL;
    char nvwhy[256] = "";
    if (xcs_nvrtc_open(&nv) == XCS_OK) out->nvrtc_version = xcs_nvrtc_version(nv);
    else snprintf(nvwhy, sizeof nvwhy, "%s", xcs_last_error());
    xcs_nvrtc_close(nv);
    cu_api cu;
    char e[96];
    if (!cu_open(&cu, out->reason, sizeof out->reason)) return;
    cu_result r = cu.init(0);
    if (r != 0) {
        snprintf(out->reason, sizeof out->reason, "cuInit failed: %s (no usable GPU, or the driver cannot reach it)",
                 cu_err(&cu, r, e, sizeof e));
        return;
    }
    cu.driver_version(&out->driver_version);
    int n = 0;
    if ((r = cu.device_count(&n)) != 0 || n == 0) {
        snprintf(out->reason, sizeof out->reason, "the driver sees no CUDA device%s%s", r ? ": " : "",
                 r ? cu_err(&cu, r, e, sizeof e) : "");
        return;
    }
    for (int i = 0; i < n && out->n_devices < XCS_CUDA_MAX_DEVICES; i++) {
        int dev = 0;
        if (cu.device_get(&dev, i) != 0) continue;
        xcs_cuda_device_info *d = &out->devices[out->n_devices];
        d->ordinal = i;
        cu.device_name(d->name, (int)sizeof d->name, dev);
        cu.device_attr(&d->cc_major, CU_ATTR_CC_MAJOR, dev);
        cu.device_attr(&d->cc_minor, CU_ATTR_CC_MINOR, dev);
        cu.device_attr(&d->sm_count, CU_ATTR_MULTIPROCESSOR_COUNT, dev);
        cu.device_mem(&d->total_mem, dev);
        out->n_devices++;
    }
    if (out->n_devices > 0 && !out->nvrtc_version) {
        /* a device, but no compiler for its kernels */
        snprintf(out->reason, sizeof out->reason, "%s", nvwhy);
        out->n_devices = 0;
    }
    if (out->n_devices > 0) out->nccl_version = xcs_cuda_be_nccl_info(out->nccl_reason, sizeof out->nccl_reason);
}

static const char *last_error(void) { return xcs_last_error(); }

static const xcs_cuda_module module = {
    .abi = XCS_CUDA_ABI,
    .probe = probe,
    .open = xcs_cuda_be_open,
    .last_error = last_error,
    .describe = xcs_cuda_be_describe,
    .alloc = xcs_cuda_be_alloc,
    .free = xcs_cuda_be_free,
    .upload = xcs_cuda_be_upload,
    .download = xcs_cuda_be_download,
    .sync = xcs_cuda_be_sync,
    .wait = xcs_cuda_be_wait,
    .elementwise = xcs_cuda_be_elementwise,
    .reduce = xcs_cuda_be_reduce,
    .matmul = xcs_cuda_be_matmul,
    .run_fused = xcs_cuda_be_run_fused,
    .run_rows = xcs_cuda_be_run_rows,
    .run_scan = xcs_cuda_be_run_scan,
    .mem_stats = xcs_cuda_be_mem_stats,
    .empty_cache = xcs_cuda_be_empty_cache,
    .set_tf32 = xcs_cuda_be_set_tf32,
    .kernels_cached = xcs_cuda_be_kernels_cached,
    .matmul_fused = xcs_cuda_be_matmul_fused,
    .collective = xcs_cuda_be_collective,
    .take = xcs_cuda_be_take,
    .scatter_add = xcs_cuda_be_scatter_add,
    .argreduce = xcs_cuda_be_argreduce,
    .random = xcs_cuda_be_random,
    .take_in_range = xcs_cuda_be_take_in_range,
    .argsort = xcs_cuda_be_argsort,
    .linalg = xcs_cuda_be_linalg,
};

__attribute__((visibility("default"))) const xcs_cuda_module *xcs_cuda_module_v2(void) { return &module; }
