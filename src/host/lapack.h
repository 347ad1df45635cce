/* lapack.h — the LAPACK routines the CPU's linear algebra calls where the
 * BLAS build carries them (XCS_HAVE_LAPACK: OpenBLAS's, checked by CMake).
 * Fortran, column-major: a row-major matrix is its transpose there.  A
 * trailing hidden length for each char argument (OpenBLAS's C versions
 * ignore it). */
#ifndef XCS_HOST_LAPACK_H
#define XCS_HOST_LAPACK_H

#ifdef XCS_HAVE_LAPACK
#include <cblas.h> /* blasint, openblas_set_num_threads */
#include <stddef.h>
#include <stdint.h>

/* Which matrices go to LAPACK: xcs_linalg_lapack_min (src/core/linalg.c)
 * but for solve and slogdet of a batch of LA_OWN_BATCH_MIN matrices or
 * more, up to LA_OWN_BATCH_MAX rows (64 x 192^2 solves: 37 ms against
 * LAPACK's 67; a thread's loops ~ LAPACK a matrix at these sizes, so the
 * rule needs no thread count and results do not depend on it; one 256^2:
 * LAPACK 2.3 ms, the loops 2.8). */
#define LA_OWN_BATCH_MIN 8
#define LA_OWN_BATCH_MAX 256

/* From this size on a matrix is worth OpenBLAS's threads: on 2 cores,
 * 1024^2 solve 75 -> 50 ms, eigh 170 -> 120, svd 475 -> 330; 512^2 solve
 * 12.5 -> 9 ms.  At 256 the gain (2.2 -> 1.5 ms) is lost to contention
 * with other pools still spinning (numpy's OpenBLAS: 12 ms, measured). */
#define LA_THREADED_MIN 512

/* OpenBLAS's LAPACK is not safe to enter from two threads at once (its
 * syevd crashed so in a test; distribution builds lack USE_LOCKING), so
 * every call holds this lock (process-wide, as the library's state is).
 * Inside it OpenBLAS runs on all the threads for an n x n problem of
 * LA_THREADED_MIN or more when the caller is not inside an OpenMP region
 * (a matrix of a batch split over the pool, a task of the host graph),
 * else on one; leave restores the count it found. */
void xcs_lapack_enter(int64_t n);
void xcs_lapack_leave(void);

void dgetrf_(const blasint *m, const blasint *n, double *a, const blasint *lda, blasint *ipiv, blasint *info);
void sgetrf_(const blasint *m, const blasint *n, float *a, const blasint *lda, blasint *ipiv, blasint *info);
void dgetrs_(const char *trans, const blasint *n, const blasint *nrhs, const double *a, const blasint *lda,
             const blasint *ipiv, double *b, const blasint *ldb, blasint *info, size_t trans_len);
void sgetrs_(const char *trans, const blasint *n, const blasint *nrhs, const float *a, const blasint *lda,
             const blasint *ipiv, float *b, const blasint *ldb, blasint *info, size_t trans_len);
void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info, size_t uplo_len);
void spotrf_(const char *uplo, const blasint *n, float *a, const blasint *lda, blasint *info, size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const blasint *n, double *a, const blasint *lda, double *w,
             double *work, const blasint *lwork, blasint *iwork, const blasint *liwork, blasint *info, size_t jobz_len,
             size_t uplo_len);
void ssyevd_(const char *jobz, const char *uplo, const blasint *n, float *a, const blasint *lda, float *w,
             float *work, const blasint *lwork, blasint *iwork, const blasint *liwork, blasint *info, size_t jobz_len,
             size_t uplo_len);
void dgesdd_(const char *jobz, const blasint *m, const blasint *n, double *a, const blasint *lda, double *s,
             double *u, const blasint *ldu, double *vt, const blasint *ldvt, double *work, const blasint *lwork,
             blasint *iwork, blasint *info, size_t jobz_len);
void sgesdd_(const char *jobz, const blasint *m, const blasint *n, float *a, const blasint *lda, float *s,
             float *u, const blasint *ldu, float *vt, const blasint *ldvt, float *work, const blasint *lwork,
             blasint *iwork, blasint *info, size_t jobz_len);
void dgeqrf_(const blasint *m, const blasint *n, double *a, const blasint *lda, double *tau, double *work,
             const blasint *lwork, blasint *info);
void sgeqrf_(const blasint *m, const blasint *n, float *a, const blasint *lda, float *tau, float *work,
             const blasint *lwork, blasint *info);
void dorgqr_(const blasint *m, const blasint *n, const blasint *k, double *a, const blasint *lda, const double *tau,
             double *work, const blasint *lwork, blasint *info);
void sorgqr_(const blasint *m, const blasint *n, const blasint *k, float *a, const blasint *lda, const float *tau,
             float *work, const blasint *lwork, blasint *info);
#endif

#endif
