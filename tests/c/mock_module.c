/* mock_module.c — libxcs_mockcuda.so: a CUDA backend module (xcs_cuda.h)
 * whose one "GPU" is the mock device of mock_device.h, so the Python
 * package's whole device path (Config(device="cuda"), device Arrays with
 * host copies, device_put, orchestration regions on the device, the
 * fallbacks) runs in CI without a GPU:
 *     XCS_CUDA_MODULE=.../libxcs_mockcuda.so pytest tests/python/...
 * Device addresses are host addresses with a high bit flipped, so host code
 * that touches device memory faults; the kernels are the CPU backend's (of
 * this module's own copy of the core), so results equal the CPU's exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_device.h"
#include "xcs_cuda.h"
#include "xcs_host.h"

/* XCS_MOCK_DEVICES=N (1..16, default 1): how many devices the mock has. */
static void count_devices(void) {
    const char *e = getenv("XCS_MOCK_DEVICES");
    int n = e && *e ? atoi(e) : 1;
    mock_devices = n < 1 ? 1 : n > XCS_CUDA_MAX_DEVICES ? XCS_CUDA_MAX_DEVICES : n;
}

static void probe(xcs_cuda_probe *out) {
    memset(out, 0, sizeof *out);
    count_devices();
    out->n_devices = mock_devices;
    snprintf(out->nccl_reason, sizeof out->nccl_reason, "a stand-in for NCCL combines them on the mock's devices");
    for (int i = 0; i < mock_devices; i++) {
        snprintf(out->devices[i].name, sizeof out->devices[i].name, "xcs mock device");
        out->devices[i].ordinal = i;
        out->devices[i].cc_major = 9;
        out->devices[i].sm_count = 1;
        out->devices[i].total_mem = (size_t)1 << 30;
    }
}

static xcs_status open_dev(int ordinal) {
    count_devices();
    if (ordinal < 0 || ordinal >= mock_devices)
        return xcs_error(XCS_ERR_VALUE, "the mock has %d device(s), not %d", mock_devices, ordinal);
    if (!cpu && (xcs_host_init() || !(cpu = xcs_backend_for(XCS_DEVICE_CPU)))) return xcs_last_status();
    return XCS_OK;
}

static const char *last_error(void) { return xcs_last_error(); }
static const char *describe(int ordinal) {
    return ordinal >= 0 && ordinal < mock_devices ? "xcs mock device (host memory, CPU kernels)" : "";
}
static xcs_status wait_for(int ordinal, const void *p) { /* the mock's kernels are done when they return */
    if (ordinal < 0 || ordinal >= mock_devices || dev_of(p) != ordinal)
        return xcs_error(XCS_ERR_VALUE, "mock device %d: no block of it at %p", ordinal, p);
    return XCS_OK;
}
static xcs_status sync(int ordinal) {
    return ordinal >= 0 && ordinal < mock_devices ? XCS_OK : xcs_error(XCS_ERR_VALUE, "no mock device %d", ordinal);
}

/* Row chains as the CUDA backend takes them: unless XCS_CUDA_ROW_KERNELS=0. */
static xcs_status run_rows(const xcs_row_chain *rc) {
    return xcs_env_off("XCS_CUDA_ROW_KERNELS") ? XCS_ERR_UNSUPPORTED : m_run_rows(rc);
}

static void mem_stats(int ordinal, xcs_cuda_mem_stats *out) {
    memset(out, 0, sizeof *out);
    if (ordinal < 0 || ordinal >= mock_devices) return;
    out->allocs = out->device_allocs = n_alloc;
    out->row_chains = n_row_chains;
    out->scan_loops = n_scan_loops;
    out->downloads = n_down;
    out->uploads = n_up;
}

static void empty_cache(int ordinal) { (void)ordinal; }
static void set_tf32(int on) { (void)on; }
static int kernels_cached(int ordinal) { return ordinal >= 0 && ordinal < mock_devices ? 1 : 0; }

/* A mock of NCCL: the parts combined in rank order in the host memory
 * behind them (XCS_NCCL=0: none, so the caller combines on the host, as
 * without NCCL; read at every collective here, at the first by the real
 * module).  Checks what a real GPU would make fail: every part and
 * its result on one device, a device per part. */
static xcs_status collective(xcs_cuda_coll kind, int n, const xcs_tensor *const *part, xcs_tensor *const *out) {
    if (xcs_env_off("XCS_NCCL")) return xcs_error(XCS_ERR_UNSUPPORTED, "NCCL is turned off (XCS_NCCL=0)");
    if (n < 1 || n > XCS_CUDA_MAX_DEVICES) return xcs_error(XCS_ERR_VALUE, "mock collective over %d devices", n);
    xcs_storage s[2 * XCS_CUDA_MAX_DEVICES];
    xcs_tensor h[2 * XCS_CUDA_MAX_DEVICES];
    bool ok = true;
    for (int i = 0; i < n; i++) {
        int dev = -1;
        ok &= alias(part[i], &s[i], &h[i], &dev) && alias(out[i], &s[n + i], &h[n + i], &dev);
        for (int j = 0; j < i; j++) ok &= part[j]->storage->device_index != dev;
        ok &= xcs_tensor_is_contiguous(part[i]) && xcs_tensor_is_contiguous(out[i]);
    }
    if (!ok) return wrong_device();
    if (kind == XCS_CUDA_COLL_SUM && part[0]->dtype == XCS_BOOL) /* as xcs_nccl_supports: not a bool */
        return xcs_error(XCS_ERR_UNSUPPORTED, "the mock, as NCCL, does not sum bool parts");
    size_t es = xcs_dtype_size(part[0]->dtype);
    char *dst0 = (char *)s[n].data + h[n].offset * (int64_t)es;
    if (kind == XCS_CUDA_COLL_GATHER) {
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            size_t bytes = (size_t)xcs_tensor_numel(part[i]) * es;
            memcpy(dst0 + off, (char *)s[i].data + h[i].offset * (int64_t)es, bytes);
            off += bytes;
        }
    } else {
        memcpy(dst0, (char *)s[0].data + h[0].offset * (int64_t)es, (size_t)xcs_tensor_numel(part[0]) * es);
        xcs_op op = kind == XCS_CUDA_COLL_SUM ? XCS_OP_ADD : XCS_OP_MAXIMUM;
        for (int i = 1; i < n; i++) {
            const xcs_tensor *in[2] = {&h[n], &h[i]};
            xcs_status st = cpu->elementwise(op, 2, in, xcs_dtype_compute(part[0]->dtype), &h[n]);
            if (st) return st;
        }
    }
    for (int i = 1; i < n; i++)
        memcpy((char *)s[n + i].data + h[n + i].offset * (int64_t)es, dst0, (size_t)xcs_tensor_numel(out[0]) * es);
    return XCS_OK;
}

static const xcs_cuda_module module = {
    .abi = XCS_CUDA_ABI,
    .probe = probe,
    .open = open_dev,
    .last_error = last_error,
    .describe = describe,
    .alloc = m_alloc,
    .free = m_free,
    .upload = m_upload,
    .download = m_download,
    .sync = sync,
    .wait = wait_for,
    .elementwise = m_elementwise,
    .reduce = m_reduce,
    .matmul = m_matmul,
    .run_fused = m_run_fused,
    .run_rows = run_rows,
    .run_scan = m_run_scan,
    .mem_stats = mem_stats,
    .empty_cache = empty_cache,
    .set_tf32 = set_tf32,
    .kernels_cached = kernels_cached,
    .collective = collective,
    .take = m_take,
    .scatter_add = m_scatter_add,
    .argreduce = m_argreduce,
    .random = m_random,
    .take_in_range = m_take_in_range,
    .argsort = m_argsort,
    .linalg = m_linalg,
};

__attribute__((visibility("default"))) const xcs_cuda_module *xcs_cuda_module_v2(void) { return &module; }
