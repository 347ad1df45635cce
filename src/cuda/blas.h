/* blas.h — cuBLAS opened with dlopen (libcublas.so.13/.12, or
 * XCS_CUBLAS_LIBRARY), so the backend module links nothing from CUDA.
 * Column-major GEMM as cuBLAS defines it; backend.c maps row-major xcs
 * matmuls onto it.  The handle works on the calling thread's current
 * context (xcs_cu_make_current) and queues its GEMMs on one stream (the
 * backend keeps a handle per stream, runtime.h). */
#ifndef XCS_CUDA_BLAS_H
#define XCS_CUDA_BLAS_H

#include <stdbool.h>
#include <stdint.h>

#include "xcs.h"

typedef struct xcs_cublas xcs_cublas;

xcs_status xcs_cublas_open(void *stream, xcs_cublas **out);
void xcs_cublas_close(xcs_cublas *b);
int xcs_cublas_version(const xcs_cublas *b);

/* C[i] = op(A[i]) @ op(B[i]) for i < batch (column-major, cuBLAS's
 * conventions; strides in elements between consecutive matrices).  dt is
 * float32 or float64 (tf32 lets float32 use the TF32 tensor cores), or
 * float16/bfloat16: 16-bit A, B, C through cublasGemmStridedBatchedEx with
 * float32 accumulation. */
typedef struct xcs_gemm {
    xcs_dtype dt;
    bool trans_a, trans_b, tf32;
    int64_t m, n, k, batch;
    const void *a, *b;
    void *c;
    int64_t lda, ldb, ldc, stride_a, stride_b, stride_c;
} xcs_gemm;
xcs_status xcs_cublas_gemm(xcs_cublas *b, const xcs_gemm *g);

/* The same GEMM (float32 or float16/bfloat16) through cuBLASLt with the
 * bias epilogue: C[:, j] (column-major) = op(A) op(B) + bias over the m rows,
 * then relu when asked, all before C is written; bias is m elements of g->dt
 * on the device.  XCS_ERR_UNSUPPORTED when cuBLASLt is missing or has no
 * algorithm for it (the caller then runs the epilogue itself). */
xcs_status xcs_cublas_gemm_epilogue(xcs_cublas *b, const xcs_gemm *g, bool relu, const void *bias);

#endif /* XCS_CUDA_BLAS_H */
