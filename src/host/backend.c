/* backend.c — the CPU backend's vtable and its registration with core. */
#include "xcs_host.h"
#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const xcs_backend cpu_backend = {
    .name = "cpu",
    .device = XCS_DEVICE_CPU,
    .elementwise = xcs_cpu_elementwise,
    .reduce = xcs_cpu_reduce,
    .argreduce = xcs_cpu_argreduce,
    .matmul = xcs_cpu_matmul,
    .take = xcs_cpu_take,
    .fill = xcs_cpu_fill,
    .iota = xcs_cpu_iota,
    .random = xcs_cpu_random,
    .run_fused = xcs_cpu_run_fused,
    .matmul_fused = xcs_cpu_matmul_fused,
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
    out->has_cuda_backend = false;
}
