/* fake_nccl.h — the test-only introspection entry of libxcs_fakenccl.so
 * (fake_nccl.c), a fake NCCL for testing multi-device collectives of the CUDA
 * runtime on the fake CUDA driver (fake_cuda_driver.c), without a GPU:
 *     XCS_CUDA_DRIVER=.../libxcs_fakecuda.so XCS_NCCL_LIBRARY=.../libxcs_fakenccl.so
 *
 * It exports the NCCL 2.28 ABI subset the runtime uses (ncclGetVersion,
 * ncclGetErrorString, ncclCommInitAll, ncclCommDestroy, ncclCommCount,
 * ncclCommCuDevice, ncclCommUserRank, ncclCommGetAsyncError, ncclGroupStart,
 * ncclGroupEnd, ncclAllReduce, ncclBroadcast, ncclAllGather).  The NCCL types
 * are not declared here, so that a test may include this header beside its
 * own NCCL declarations.
 *
 * Tests dlopen the library and dlsym "xcs_fake_nccl_stats" (type
 * xcs_fake_nccl_stats_fn).
 *
 * Environment: XCS_FAKE_NCCL_LAUNCH_DELAY_US pauses a random [0, this] us
 * between the launches of one group (read at every ncclGroupEnd), so that a
 * caller that lets two threads' groups interleave is caught. */
#ifndef XCS_TEST_FAKE_NCCL_H
#define XCS_TEST_FAKE_NCCL_H

/* A struct tag, not a typedef: the name is also the function's. */
struct xcs_fake_nccl_stats {
    long long live_comms;  /* communicators not yet destroyed */
    long long comm_inits;  /* successful ncclCommInitAll calls */
    long long launched;    /* per-rank collective tasks put on streams */
    long long collectives; /* rendezvous every rank reached (written, or
                              refused as a mismatch or a bad address) */
    long long mismatches;  /* rendezvous whose ranks disagreed (nothing written) */
    long long groups;      /* outermost ncclGroupEnd calls */
};

typedef void (*xcs_fake_nccl_stats_fn)(struct xcs_fake_nccl_stats *out);

#endif
