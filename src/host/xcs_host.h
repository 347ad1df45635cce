/* xcs_host.h — the CPU backend and (later) the host task graph.
 *
 * Public entry points of src/host.  Depends on core (xcs.h) only. */
#ifndef XCS_HOST_H
#define XCS_HOST_H

#include "xcs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Registers the CPU backend with core.  Idempotent and thread-safe. */
xcs_status xcs_host_init(void);
/* What this build of the CPU backend has (OpenMP, CBLAS, thread count). */
void xcs_host_build_info(xcs_build_info *out);

/* The two matmul implementations, callable directly so tests can check that
 * they agree.  Same contract as xcs_backend.matmul.  The BLAS one returns
 * XCS_ERR_UNSUPPORTED when the build has no CBLAS or the dtype is not f32/f64. */
xcs_status xcs_host_matmul_blocked(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);
xcs_status xcs_host_matmul_blas(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out);

#ifdef __cplusplus
}
#endif
#endif /* XCS_HOST_H */
