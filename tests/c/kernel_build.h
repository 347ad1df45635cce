/* kernel_build.h — one generated kernel made twice, for the tests that run
 * generated kernels on the host: its source compiled by NVRTC (the
 * device's compiler, sm_90; skipped when nv is NULL) and built on the host
 * (kernel_host.h).  The kernel is XCS_CUDA_KERNEL_NAME, taking one
 * `args_type`; what names the source in NVRTC's messages. */
#ifndef XCS_TEST_KERNEL_BUILD_H
#define XCS_TEST_KERNEL_BUILD_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "codegen.h"
#include "kernel_host.h"
#include "nvrtc.h"

/* The host build of src (NULL, with a failed check, when either compile
 * fails); *nvrtc_compiled counts the NVRTC compiles. */
static inline xcs_kernel_host *kernel_build(xcs_nvrtc *nv, int *nvrtc_compiled, const char *src, const char *what,
                                            const char *args_type, unsigned flags) {
    if (nv) {
        char *img = NULL;
        size_t size = 0;
        bool cubin = false;
        CHECK_OK(xcs_nvrtc_compile(nv, src, what, 90, false, &img, &size, &cubin));
        CHECK(size > 0);
        free(img);
        (*nvrtc_compiled)++;
    }
    const char *names[1] = {XCS_CUDA_KERNEL_NAME};
    xcs_kernel_host *k = NULL;
    CHECK_OK(xcs_kernel_host_compile_ex(src, 1, names, args_type, flags, &k));
    return k;
}

/* The start of a test that runs kernels on the host: false (after saying
 * why; the test then exits 77, a skip) without a C++ compiler; *nv is
 * NVRTC, or NULL (its compile checks skipped, and said so). */
static inline bool kernel_tests_open(xcs_nvrtc **nv) {
    if (!xcs_kernel_host_available()) {
        printf("no C++ compiler to run the kernels on the host (%s): skipped\n", xcs_last_error());
        return false;
    }
    if (xcs_nvrtc_open(nv)) {
        printf("NVRTC not available (%s): its compile checks are skipped\n", xcs_last_error());
        *nv = NULL;
    }
    return true;
}

#endif
