/* solver.h — cuSOLVER's dense LU and Cholesky (cusolverDn, its 64-bit
 * "X" API) opened with dlopen (libcusolver.so.12/.11, or
 * XCS_CUSOLVER_LIBRARY), as blas.h opens cuBLAS: the backend module links
 * nothing from CUDA, and a machine without the library keeps the block-per-
 * matrix kernels of linalg.c.
 *
 * Matrices are column-major n x n with leading dimension n, as LAPACK's
 * (backend.c hands a row-major matrix over as its transpose, the host's
 * LAPACK path's convention, src/host/linalg.c).  A handle serves one
 * stream: its calls are queued there and return before they ran; info and
 * the pivots are device words, read after the stream (linalg.c's kernels
 * that run after the factorisation read them on the device). */
#ifndef XCS_CUDA_SOLVER_H
#define XCS_CUDA_SOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xcs.h"

typedef struct xcs_cusolver xcs_cusolver;

xcs_status xcs_cusolver_open(void *stream, xcs_cusolver **out);
void xcs_cusolver_close(xcs_cusolver *s);
int xcs_cusolver_version(const xcs_cusolver *s);

/* One factorisation of an n x n matrix a (float32 or float64, in place):
 *   LU        getrf: P a = L U, pivots (1-based, int64) in piv;
 *   CHOLESKY  potrf of the upper triangle: a = U^T U, U in that triangle;
 * *info (device) > 0: a zero pivot (LU) or a leading minor not positive
 * definite (Cholesky), as LAPACK's.  The device and host workspaces are
 * the caller's, of the sizes xcs_cusolver_work gives (any of them 0: none). */
typedef enum { XCS_CUSOLVER_LU, XCS_CUSOLVER_CHOLESKY } xcs_cusolver_kind;
typedef struct xcs_cusolver_work {
    size_t device_bytes, host_bytes;
} xcs_cusolver_work;
xcs_status xcs_cusolver_work_size(xcs_cusolver *s, xcs_cusolver_kind kind, xcs_dtype dt, int64_t n, void *a,
                                  xcs_cusolver_work *out);
xcs_status xcs_cusolver_factor(xcs_cusolver *s, xcs_cusolver_kind kind, xcs_dtype dt, int64_t n, void *a,
                               int64_t *piv, void *dwork, void *hwork, const xcs_cusolver_work *w, int *info);

/* getrs: b (n x k, leading dimension n) = op(a)^-1 b from getrf's factors
 * of a and its pivots, op a transposed when trans. *info (device): a bad
 * argument only (a singular factor is getrf's info). */
xcs_status xcs_cusolver_lu_solve(xcs_cusolver *s, xcs_dtype dt, bool trans, int64_t n, int64_t k, const void *a,
                                 const int64_t *piv, void *b, int *info);

#endif /* XCS_CUDA_SOLVER_H */
