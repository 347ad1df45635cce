/* backend.c — the CPU backend's vtable and its registration with core. */
#include "xcs_host.h"
#include "cpu_kernels.h"

#include <stdio.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* One OpenMP team of n_workers threads; a worker's error (recorded in its
 * own thread's slot) is carried back to the caller's. */
static xcs_status cpu_parallel(int n_workers, xcs_status (*fn)(void *ctx, int worker), void *ctx) {
    xcs_status first = XCS_OK;
    char msg[512] = "";
#pragma omp parallel for schedule(static, 1) num_threads(n_workers) if (n_workers > 1)
    for (int w = 0; w < n_workers; w++) {
        xcs_status st = fn(ctx, w);
        if (st) {
#pragma omp critical(xcs_cpu_parallel)
            if (!first) {
                first = st;
                snprintf(msg, sizeof msg, "%s", xcs_last_error());
            }
        }
    }
    return first ? xcs_error(first, "%s", msg) : XCS_OK;
}

static int cpu_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static const xcs_backend cpu_backend = {
    .name = "cpu",
    .device = XCS_DEVICE_CPU,
    .elementwise = xcs_cpu_elementwise,
    .reduce = xcs_cpu_reduce,
    .argreduce = xcs_cpu_argreduce,
    .argsort = xcs_cpu_argsort,
    .sort = xcs_cpu_sort,
    .cumsum = xcs_cpu_cumsum,
    .linalg = xcs_cpu_linalg,
    .matmul = xcs_cpu_matmul,
    .take = xcs_cpu_take,
    .scatter_add = xcs_cpu_scatter_add,
    .fill = xcs_cpu_fill,
    .iota = xcs_cpu_iota,
    .random = xcs_cpu_random,
    .run_fused = xcs_cpu_run_fused,
    .matmul_fused = xcs_cpu_matmul_fused,
    .run_fused_kept = xcs_cpu_run_fused_cached,
    .matmul_fused_kept = xcs_cpu_matmul_fused_kept,
    .fused_cache_free = xcs_cpu_fused_cache_free,
    .parallel = cpu_parallel,
    .max_threads = cpu_max_threads,
};

xcs_status xcs_host_init(void) { return xcs_backend_register(&cpu_backend); }

void xcs_host_build_info(xcs_build_info *out) {
#ifdef _OPENMP
    out->has_openmp = true;
    out->max_threads = omp_get_max_threads();
#else
    out->has_openmp = false;
    out->max_threads = 1;
#endif
#ifdef XCS_HAVE_CBLAS
    out->has_cblas = true;
    out->blas_name = "openblas";
#else
    out->has_cblas = false;
    out->blas_name = "blocked";
#endif
    bool loaded = false;
    xcs_cuda_probe_get(NULL, &loaded);
    out->has_cuda_backend = loaded;
}
