/* fake_cuda.h — the test-only introspection entry of libxcs_fakecuda.so
 * (fake_cuda_driver.c), a fake CUDA driver API that runs no kernels but has
 * genuinely asynchronous streams, events, pinned host memory and bounds-checked
 * device memory, for testing the CUDA runtime on machines without a GPU.
 *
 * Tests dlopen the same library the runtime was pointed at (XCS_CUDA_DRIVER)
 * and dlsym "xcs_fake_cuda_stats" (type xcs_fake_cuda_stats_fn).  Fakes of
 * libraries that work on device memory (fake_nccl.c) dlsym
 * "xcs_fake_cuda_device_ptr" (type xcs_fake_cuda_device_ptr_fn): the host
 * address behind a device range, or 700 (CUDA_ERROR_ILLEGAL_ADDRESS, made
 * sticky) when the range is not inside one live allocation.
 *
 * Environment, read by the fake:
 *   XCS_FAKE_CUDA_DEVICES   device count, 0..16 (default 1); read at cuInit
 *   XCS_FAKE_CUDA_MEM       device memory capacity in bytes (default 1 GiB);
 *                           read at every cuMemAlloc_v2 / cuMemGetInfo_v2
 *   XCS_FAKE_CUDA_DELAY_US  each stream worker sleeps a random [0, this] us
 *                           before every op (default 0); read at cuStreamCreate
 *   XCS_FAKE_CUDA_SEED      seed of the per-stream delay RNG (default 1; the
 *                           stream's number is added); read at cuStreamCreate */
#ifndef XCS_TEST_FAKE_CUDA_H
#define XCS_TEST_FAKE_CUDA_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A struct tag, not a typedef: the name is also the function's. */
struct xcs_fake_cuda_stats {
    long long live_device_allocs; /* cuMemAlloc_v2 not yet freed */
    long long live_device_bytes;  /* their sizes, rounded up to 256 */
    long long live_host_allocs;   /* cuMemHostAlloc not yet freed */
    long long live_streams;       /* cuStreamCreate not yet destroyed */
    long long live_events;        /* events not yet freed (a destroyed event
                                     with a pending record/wait lives on until
                                     that op ran) */
    long long async_ops;          /* ops run by stream workers (all kinds) */
    long long stream_waits;       /* cuStreamWaitEvent calls on a recorded event */
    long long pageable_async;     /* async copies whose host side was not pinned
                                     (done synchronously, as the driver does) */
    long long launches_refused;   /* cuLaunchKernel calls (always refused: 801) */
    long long host_fns;           /* cuLaunchHostFunc calls accepted (queued or run) */
    long long event_syncs;        /* cuEventSynchronize calls (the host waiting) */
};

typedef void (*xcs_fake_cuda_stats_fn)(struct xcs_fake_cuda_stats *out);

/* For tests on the fake: this run's seed, XCS_TEST_SEED or else the clock
 * (nanoseconds), printed so that a failure can be rerun with it, and handed
 * to the fake's stream delays (XCS_FAKE_CUDA_SEED).  Needs setenv: include
 * this after defining _POSIX_C_SOURCE. */
static inline unsigned long long xcs_fake_cuda_test_seed(void) {
    const char *env = getenv("XCS_TEST_SEED");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long seed = env && *env ? strtoull(env, NULL, 10)
                                          : (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
    printf("XCS_TEST_SEED=%llu\n", seed);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", seed);
    setenv("XCS_FAKE_CUDA_SEED", buf, 1);
    return seed;
}
typedef int (*xcs_fake_cuda_device_ptr_fn)(unsigned long long dptr, size_t n, void **host);

#endif
