/* blas.c — see blas.h.  cuBLAS's C entry points are declared here with their
 * documented signatures (cublasStatus_t is an int enum, the handle opaque),
 * so no CUDA header is needed to build this. */
#include "blas.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef int cb_status;
typedef void *cb_handle;

/* cublasOperation_t, cublasMath_t (CB_EXACT_REDUCTION is
 * CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION), cudaDataType,
 * cublasComputeType_t and cublasGemmAlgo_t values (cublas_api.h,
 * library_types.h) */
enum { CB_OP_N = 0, CB_OP_T = 1, CB_DEFAULT_MATH = 0, CB_TF32_MATH = 3, CB_EXACT_REDUCTION = 16 };
enum { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1 };

struct xcs_cublas {
    void *lib;
    cb_handle h;
    int version;
    pthread_mutex_t lock; /* one handle, many host threads */
    cb_status (*create)(cb_handle *);
    cb_status (*destroy)(cb_handle);
    cb_status (*get_version)(cb_handle, int *);
    cb_status (*set_math)(cb_handle, int);
    cb_status (*sgemm)(cb_handle, int, int, int, int, int, const float *, const float *, int, long long,
                       const float *, int, long long, const float *, float *, int, long long, int);
    cb_status (*dgemm)(cb_handle, int, int, int, int, int, const double *, const double *, int, long long,
                       const double *, int, long long, const double *, double *, int, long long, int);
    cb_status (*gemm_ex)(cb_handle, int, int, int, int, int, const void *, const void *, int, int, long long,
                         const void *, int, int, long long, const void *, void *, int, int, long long, int, int, int);
    const char *(*status_name)(cb_status);
};

void xcs_cublas_close(xcs_cublas *b) {
    if (!b) return;
    if (b->h) b->destroy(b->h);
    pthread_mutex_destroy(&b->lock);
    /* the library stays loaded: cuBLAS keeps threads and state that outlive
     * its handles */
    free(b);
}

xcs_status xcs_cublas_open(xcs_cublas **out) {
    *out = NULL;
    xcs_cublas *b = calloc(1, sizeof *b);
    if (!b) return xcs_error(XCS_ERR_MEMORY, "out of memory opening cuBLAS");
    pthread_mutex_init(&b->lock, NULL);
    const char *env = getenv("XCS_CUBLAS_LIBRARY");
    const char *names[] = {env && *env ? env : "libcublas.so.13", "libcublas.so.12", "libcublas.so",
                           "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12"};
    char tried[600] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !b->lib; i++) {
        b->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!b->lib && used < sizeof tried)
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", names[i]);
    }
    if (!b->lib) {
        xcs_cublas_close(b);
        return xcs_error(XCS_ERR_UNSUPPORTED, "cuBLAS not found (tried %s); set XCS_CUBLAS_LIBRARY", tried);
    }
#define CB_SYM(field, sym)                                                                          \
    do {                                                                                            \
        *(void **)&b->field = dlsym(b->lib, sym);                                                   \
        if (!b->field) {                                                                            \
            xcs_cublas_close(b);                                                                    \
            return xcs_error(XCS_ERR_UNSUPPORTED, "cuBLAS lacks %s", sym);                          \
        }                                                                                           \
    } while (0)
    CB_SYM(create, "cublasCreate_v2");
    CB_SYM(destroy, "cublasDestroy_v2");
    CB_SYM(get_version, "cublasGetVersion_v2");
    CB_SYM(set_math, "cublasSetMathMode");
    CB_SYM(sgemm, "cublasSgemmStridedBatched");
    CB_SYM(dgemm, "cublasDgemmStridedBatched");
    CB_SYM(gemm_ex, "cublasGemmStridedBatchedEx");
    CB_SYM(status_name, "cublasGetStatusName");
#undef CB_SYM
    cb_status s = b->create(&b->h);
    if (s != 0) {
        b->h = NULL;
        xcs_status st = xcs_error(XCS_ERR_INTERNAL, "cublasCreate failed: %s (%d)", b->status_name(s), s);
        xcs_cublas_close(b);
        return st;
    }
    b->get_version(b->h, &b->version);
    *out = b;
    return XCS_OK;
}

int xcs_cublas_version(const xcs_cublas *b) { return b->version; }

static xcs_status cb_fail(const xcs_cublas *b, cb_status s, const char *what, const xcs_gemm *g) {
    return xcs_error(s == 3 ? XCS_ERR_MEMORY : XCS_ERR_INTERNAL,
                     "%s failed: %s (%d) for a %s GEMM m=%lld n=%lld k=%lld batch=%lld", what, b->status_name(s), s,
                     xcs_dtype_name(g->dt), (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
}

static bool fits_int(const xcs_gemm *g) {
    const int64_t v[] = {g->m, g->n, g->k, g->lda, g->ldb, g->ldc, g->batch};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] > INT_MAX) return false;
    return true;
}

/* A float16/bfloat16 GEMM: 16-bit A, B and C, float32 alpha/beta and
 * accumulation (tensor cores); CB_EXACT_REDUCTION keeps split-K partial
 * sums in float32 too (cuBLAS may otherwise add them in the 16-bit output
 * type), so C is the float32 sum rounded once, as on the CPU.  Lock held. */
static cb_status gemm_half(xcs_cublas *b, const xcs_gemm *g, int ta, int tb) {
    const float one = 1.0f, zero = 0.0f;
    int type = g->dt == XCS_F16 ? CUDA_R_16F : CUDA_R_16BF;
    cb_status s = b->set_math(b->h, CB_DEFAULT_MATH | CB_EXACT_REDUCTION);
    if (!s)
        s = b->gemm_ex(b->h, ta, tb, (int)g->m, (int)g->n, (int)g->k, &one, g->a, type, (int)g->lda, g->stride_a, g->b,
                       type, (int)g->ldb, g->stride_b, &zero, g->c, type, (int)g->ldc, g->stride_c, (int)g->batch,
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s;
}

xcs_status xcs_cublas_gemm(xcs_cublas *b, const xcs_gemm *g) {
    if (!fits_int(g))
        return xcs_error(XCS_ERR_UNSUPPORTED, "a GEMM with a dimension over 2^31 (m=%lld n=%lld k=%lld)",
                         (long long)g->m, (long long)g->n, (long long)g->k);
    int ta = g->trans_a ? CB_OP_T : CB_OP_N, tb = g->trans_b ? CB_OP_T : CB_OP_N;
    cb_status s;
    const char *what;
    pthread_mutex_lock(&b->lock);
    if (g->dt == XCS_F32) {
        const float one = 1.0f, zero = 0.0f;
        what = "cublasSgemmStridedBatched";
        s = b->set_math(b->h, g->tf32 ? CB_TF32_MATH : CB_DEFAULT_MATH);
        if (!s)
            s = b->sgemm(b->h, ta, tb, (int)g->m, (int)g->n, (int)g->k, &one, g->a, (int)g->lda, g->stride_a, g->b,
                         (int)g->ldb, g->stride_b, &zero, g->c, (int)g->ldc, g->stride_c, (int)g->batch);
    } else if (g->dt == XCS_F64) {
        const double one = 1.0, zero = 0.0;
        what = "cublasDgemmStridedBatched";
        s = b->dgemm(b->h, ta, tb, (int)g->m, (int)g->n, (int)g->k, &one, g->a, (int)g->lda, g->stride_a, g->b,
                     (int)g->ldb, g->stride_b, &zero, g->c, (int)g->ldc, g->stride_c, (int)g->batch);
    } else if (xcs_dtype_is_half(g->dt)) {
        what = g->dt == XCS_F16 ? "cublasGemmStridedBatchedEx (float16, float32 compute)"
                                : "cublasGemmStridedBatchedEx (bfloat16, float32 compute)";
        s = gemm_half(b, g, ta, tb);
    } else {
        pthread_mutex_unlock(&b->lock);
        return xcs_error(XCS_ERR_UNSUPPORTED, "cuBLAS GEMM of %s", xcs_dtype_name(g->dt));
    }
    pthread_mutex_unlock(&b->lock);
    return s ? cb_fail(b, s, what, g) : XCS_OK;
}
