/* blas.c — see blas.h.  cuBLAS's C entry points are declared here with their
 * documented signatures (cublasStatus_t is an int enum, the handle opaque),
 * so no CUDA header is needed to build this. */
#include "blas.h"
#include "dl.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int cb_status;
typedef void *cb_handle;

/* cublasOperation_t, cublasMath_t (CB_EXACT_REDUCTION is
 * CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION), cudaDataType,
 * cublasComputeType_t and cublasGemmAlgo_t values (cublas_api.h,
 * library_types.h) */
enum { CB_OP_N = 0, CB_OP_T = 1, CB_DEFAULT_MATH = 0, CB_TF32_MATH = 3, CB_EXACT_REDUCTION = 16 };
enum { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1 };

/* cuBLASLt, for GEMMs with a bias / relu+bias epilogue (cublasLt.h's
 * values: matmul-desc and layout attributes, epilogues, the compute type
 * that allows TF32).  Opened at the first such GEMM; its absence or a
 * failed setup only means the epilogue runs as its own kernel. */
enum { LT_DESC_TRANSA = 3, LT_DESC_TRANSB = 4, LT_DESC_EPILOGUE = 7, LT_DESC_BIAS_POINTER = 8,
       LT_LAYOUT_BATCH_COUNT = 5, LT_LAYOUT_BATCH_OFFSET = 6, LT_PREF_MAX_WORKSPACE = 1,
       LT_EPI_BIAS = 4, LT_EPI_RELU_BIAS = 6, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 };
typedef struct { uint64_t data[8]; } lt_algo;
typedef struct { lt_algo algo; size_t workspace; cb_status state; float waves; int reserved[4]; } lt_heuristic;
typedef struct lt_api {
    void *lib;
    void *h;
    cb_status (*create)(void **);
    cb_status (*desc_create)(void **, int, int);
    cb_status (*desc_set)(void *, int, const void *, size_t);
    cb_status (*desc_destroy)(void *);
    cb_status (*layout_create)(void **, int, uint64_t, uint64_t, int64_t);
    cb_status (*layout_set)(void *, int, const void *, size_t);
    cb_status (*layout_destroy)(void *);
    cb_status (*pref_create)(void **);
    cb_status (*pref_set)(void *, int, const void *, size_t);
    cb_status (*pref_destroy)(void *);
    cb_status (*heuristic)(void *, void *, void *, void *, void *, void *, void *, int, lt_heuristic *, int *);
    cb_status (*matmul)(void *, void *, const void *, const void *, void *, const void *, void *, const void *,
                        const void *, void *, void *, void *, const lt_algo *, void *, size_t, void *);
} lt_api;

struct xcs_cublas {
    lt_api lt;
    int lt_state; /* 0 not tried, 1 ready, -1 unavailable */
    void *lib;
    cb_handle h;
    void *stream; /* the stream its GEMMs go on */
    int version;
    pthread_mutex_t lock; /* one handle, many host threads */
    cb_status (*create)(cb_handle *);
    cb_status (*destroy)(cb_handle);
    cb_status (*get_version)(cb_handle, int *);
    cb_status (*set_math)(cb_handle, int);
    cb_status (*set_stream)(cb_handle, void *);
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

xcs_status xcs_cublas_open(void *stream, xcs_cublas **out) {
    *out = NULL;
    xcs_cublas *b = calloc(1, sizeof *b);
    if (!b) return xcs_error(XCS_ERR_MEMORY, "out of memory opening cuBLAS");
    pthread_mutex_init(&b->lock, NULL);
    const char *env = getenv("XCS_CUBLAS_LIBRARY");
    const char *names[] = {env && *env ? env : "libcublas.so.13", "libcublas.so.12", "libcublas.so",
                           "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12"};
    char tried[600];
    if (!(b->lib = xcs_dlopen_first(names, sizeof names / sizeof names[0], tried, sizeof tried))) {
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
    CB_SYM(set_stream, "cublasSetStream_v2");
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
    b->stream = stream;
    if ((s = b->set_stream(b->h, stream)) != 0) {
        xcs_status st = xcs_error(XCS_ERR_INTERNAL, "cublasSetStream failed: %s (%d)", b->status_name(s), s);
        xcs_cublas_close(b);
        return st;
    }
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

/* ---------------------------------------------------------------- cuBLASLt epilogues */

/* Loads cuBLASLt and makes its handle; false (no error set) when it cannot. */
static bool lt_open(xcs_cublas *b) {
    if (b->lt_state) return b->lt_state > 0;
    b->lt_state = -1;
    const char *names[] = {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                           "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12"};
    lt_api *l = &b->lt;
    if (!(l->lib = xcs_dlopen_first(names, sizeof names / sizeof names[0], NULL, 0))) return false;
    static const struct { size_t off; const char *sym; } syms[] = {
        {offsetof(lt_api, create), "cublasLtCreate"},
        {offsetof(lt_api, desc_create), "cublasLtMatmulDescCreate"},
        {offsetof(lt_api, desc_set), "cublasLtMatmulDescSetAttribute"},
        {offsetof(lt_api, desc_destroy), "cublasLtMatmulDescDestroy"},
        {offsetof(lt_api, layout_create), "cublasLtMatrixLayoutCreate"},
        {offsetof(lt_api, layout_set), "cublasLtMatrixLayoutSetAttribute"},
        {offsetof(lt_api, layout_destroy), "cublasLtMatrixLayoutDestroy"},
        {offsetof(lt_api, pref_create), "cublasLtMatmulPreferenceCreate"},
        {offsetof(lt_api, pref_set), "cublasLtMatmulPreferenceSetAttribute"},
        {offsetof(lt_api, pref_destroy), "cublasLtMatmulPreferenceDestroy"},
        {offsetof(lt_api, heuristic), "cublasLtMatmulAlgoGetHeuristic"},
        {offsetof(lt_api, matmul), "cublasLtMatmul"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(l->lib, syms[i].sym);
        if (!f) return false;
        memcpy((char *)l + syms[i].off, &f, sizeof f);
    }
    if (l->create(&l->h) != 0) return false;
    b->lt_state = 1;
    return true;
}

/* One column-major layout of a (rows x cols, ld) matrix per batch entry. */
static cb_status lt_layout(const lt_api *l, void **out, int type, int64_t rows, int64_t cols, int64_t ld,
                           int64_t batch, int64_t stride) {
    cb_status s = l->layout_create(out, type, (uint64_t)rows, (uint64_t)cols, ld);
    if (!s && batch > 1) {
        int32_t n = (int32_t)batch;
        s = l->layout_set(*out, LT_LAYOUT_BATCH_COUNT, &n, sizeof n);
        if (!s) s = l->layout_set(*out, LT_LAYOUT_BATCH_OFFSET, &stride, sizeof stride);
    }
    return s;
}

xcs_status xcs_cublas_gemm_epilogue(xcs_cublas *b, const xcs_gemm *g, bool relu, const void *bias) {
    if (g->dt != XCS_F32 && !xcs_dtype_is_half(g->dt))
        return xcs_error(XCS_ERR_UNSUPPORTED, "cuBLASLt epilogue for a %s GEMM", xcs_dtype_name(g->dt));
    if (!fits_int(g) || g->batch > INT32_MAX)
        return xcs_error(XCS_ERR_UNSUPPORTED, "a GEMM with a dimension over 2^31");
    pthread_mutex_lock(&b->lock);
    if (!lt_open(b)) {
        pthread_mutex_unlock(&b->lock);
        return xcs_error(XCS_ERR_UNSUPPORTED, "cuBLASLt is not available");
    }
    const lt_api *l = &b->lt;
    const int type = g->dt == XCS_F32 ? CUDA_R_32F : g->dt == XCS_F16 ? CUDA_R_16F : CUDA_R_16BF;
    const int compute = g->dt == XCS_F32 && g->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const int32_t ta = g->trans_a ? CB_OP_T : CB_OP_N, tb = g->trans_b ? CB_OP_T : CB_OP_N;
    const int32_t epi = relu ? LT_EPI_RELU_BIAS : LT_EPI_BIAS;
    const uint64_t no_workspace = 0;
    void *desc = NULL, *la = NULL, *lb = NULL, *lc = NULL, *pref = NULL;
    lt_heuristic h;
    int found = 0;
    const char *what = "cublasLtMatmulDescCreate";
    cb_status s = l->desc_create(&desc, compute, CUDA_R_32F);
    if (!s) s = l->desc_set(desc, LT_DESC_TRANSA, &ta, sizeof ta);
    if (!s) s = l->desc_set(desc, LT_DESC_TRANSB, &tb, sizeof tb);
    if (!s) s = l->desc_set(desc, LT_DESC_EPILOGUE, &epi, sizeof epi);
    if (!s) s = l->desc_set(desc, LT_DESC_BIAS_POINTER, &bias, sizeof bias);
    if (!s && (what = "cublasLtMatrixLayoutCreate"))
        s = lt_layout(l, &la, type, g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k, g->lda, g->batch, g->stride_a);
    if (!s) s = lt_layout(l, &lb, type, g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n, g->ldb, g->batch, g->stride_b);
    if (!s) s = lt_layout(l, &lc, type, g->m, g->n, g->ldc, g->batch, g->stride_c);
    if (!s && (what = "cublasLtMatmulPreferenceCreate")) s = l->pref_create(&pref);
    if (!s) s = l->pref_set(pref, LT_PREF_MAX_WORKSPACE, &no_workspace, sizeof no_workspace);
    if (!s && (what = "cublasLtMatmulAlgoGetHeuristic")) s = l->heuristic(l->h, desc, la, lb, lc, lc, pref, 1, &h, &found);
    xcs_status st = XCS_OK;
    if (!s && found < 1) {
        st = xcs_error(XCS_ERR_UNSUPPORTED, "cuBLASLt has no algorithm for this epilogue GEMM");
    } else if (!s) {
        const float one = 1.0f, zero = 0.0f;
        what = "cublasLtMatmul";
        s = l->matmul(l->h, desc, &one, g->a, la, g->b, lb, &zero, g->c, lc, g->c, lc, &h.algo, NULL, 0, b->stream);
    }
    if (s) st = xcs_error(XCS_ERR_UNSUPPORTED, "%s failed: %s (%d) for a %s epilogue GEMM m=%lld n=%lld k=%lld", what,
                          b->status_name(s), s, xcs_dtype_name(g->dt), (long long)g->m, (long long)g->n,
                          (long long)g->k);
    if (pref) l->pref_destroy(pref);
    if (lc) l->layout_destroy(lc);
    if (lb) l->layout_destroy(lb);
    if (la) l->layout_destroy(la);
    if (desc) l->desc_destroy(desc);
    pthread_mutex_unlock(&b->lock);
    return st;
}
