/* solver.c — see solver.h.  cuSOLVER's entry points are declared here with
 * their documented signatures (cusolverStatus_t an int enum, handles
 * opaque; cusolverDn.h, CUDA 11.1 on), so no CUDA header is needed. */
#include "solver.h"
#include "dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef int cs_status;

/* cudaDataType, cublasFillMode_t, cublasOperation_t and
 * cusolverDeterministicMode_t values (library_types.h, cublas_api.h,
 * cusolver_common.h) */
enum { CS_R_32F = 0, CS_R_64F = 1, CS_FILL_UPPER = 1, CS_OP_N = 0, CS_OP_T = 1, CS_DETERMINISTIC = 1 };

struct xcs_cusolver {
    void *lib;
    void *h, *params;
    int version;
    pthread_mutex_t lock; /* one handle, the host threads that share its stream */
    cs_status (*create)(void **);
    cs_status (*destroy)(void *);
    cs_status (*set_stream)(void *, void *);
    cs_status (*params_create)(void **);
    cs_status (*params_destroy)(void *);
    cs_status (*get_version)(int *);
    cs_status (*set_deterministic)(void *, int); /* optional (CUDA 12.2 on) */
    cs_status (*getrf_size)(void *, void *, int64_t, int64_t, int, const void *, int64_t, int, size_t *, size_t *);
    cs_status (*getrf)(void *, void *, int64_t, int64_t, int, void *, int64_t, int64_t *, int, void *, size_t, void *,
                       size_t, int *);
    cs_status (*getrs)(void *, void *, int, int64_t, int64_t, int, const void *, int64_t, const int64_t *, int, void *,
                       int64_t, int *);
    cs_status (*potrf_size)(void *, void *, int, int64_t, int, const void *, int64_t, int, size_t *, size_t *);
    cs_status (*potrf)(void *, void *, int, int64_t, int, void *, int64_t, int, void *, size_t, void *, size_t, int *);
};

static const char *status_name(cs_status s) {
    static const char *const names[] = {"SUCCESS",        "NOT_INITIALIZED",  "ALLOC_FAILED",   "INVALID_VALUE",
                                        "ARCH_MISMATCH",  "MAPPING_ERROR",    "EXECUTION_FAILED", "INTERNAL_ERROR",
                                        "MATRIX_TYPE_NOT_SUPPORTED", "NOT_SUPPORTED", "ZERO_PIVOT"};
    return s >= 0 && s < (cs_status)(sizeof names / sizeof names[0]) ? names[s] : "unknown status";
}

void xcs_cusolver_close(xcs_cusolver *s) {
    if (!s) return;
    if (s->params) s->params_destroy(s->params);
    if (s->h) s->destroy(s->h);
    pthread_mutex_destroy(&s->lock);
    /* the library stays loaded, as cuBLAS does (blas.c) */
    free(s);
}

static xcs_status open_fail(xcs_cusolver *s, const char *what, cs_status r) {
    xcs_status st = xcs_error(r == 2 ? XCS_ERR_MEMORY : XCS_ERR_INTERNAL, "%s failed: CUSOLVER_STATUS_%s (%d)", what,
                              status_name(r), r);
    xcs_cusolver_close(s);
    return st;
}

xcs_status xcs_cusolver_open(void *stream, xcs_cusolver **out) {
    *out = NULL;
    xcs_cusolver *s = calloc(1, sizeof *s);
    if (!s) return xcs_error(XCS_ERR_MEMORY, "out of memory opening cuSOLVER");
    pthread_mutex_init(&s->lock, NULL);
    const char *env = getenv("XCS_CUSOLVER_LIBRARY");
    const char *names[] = {env && *env ? env : "libcusolver.so.12", "libcusolver.so.11", "libcusolver.so",
                           "/usr/local/cuda/lib64/libcusolver.so.12", "/usr/local/cuda/lib64/libcusolver.so.11"};
    const size_t n_names = env && *env ? 1 : sizeof names / sizeof names[0]; /* a library named is the only one */
    char tried[600];
    if (!(s->lib = xcs_dlopen_first(names, n_names, tried, sizeof tried))) {
        xcs_cusolver_close(s);
        return xcs_error(XCS_ERR_UNSUPPORTED, "cuSOLVER not found (tried %s); set XCS_CUSOLVER_LIBRARY", tried);
    }
    static const struct {
        size_t offset;
        const char *sym;
    } syms[] = {
        {offsetof(xcs_cusolver, create), "cusolverDnCreate"},
        {offsetof(xcs_cusolver, destroy), "cusolverDnDestroy"},
        {offsetof(xcs_cusolver, set_stream), "cusolverDnSetStream"},
        {offsetof(xcs_cusolver, params_create), "cusolverDnCreateParams"},
        {offsetof(xcs_cusolver, params_destroy), "cusolverDnDestroyParams"},
        {offsetof(xcs_cusolver, get_version), "cusolverGetVersion"},
        {offsetof(xcs_cusolver, getrf_size), "cusolverDnXgetrf_bufferSize"},
        {offsetof(xcs_cusolver, getrf), "cusolverDnXgetrf"},
        {offsetof(xcs_cusolver, getrs), "cusolverDnXgetrs"},
        {offsetof(xcs_cusolver, potrf_size), "cusolverDnXpotrf_bufferSize"},
        {offsetof(xcs_cusolver, potrf), "cusolverDnXpotrf"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(s->lib, syms[i].sym);
        if (!f) {
            xcs_cusolver_close(s);
            return xcs_error(XCS_ERR_UNSUPPORTED, "cuSOLVER lacks %s (CUDA 11.1 or newer has it)", syms[i].sym);
        }
        *(void **)((char *)s + syms[i].offset) = f;
    }
    *(void **)&s->set_deterministic = dlsym(s->lib, "cusolverDnSetDeterministicMode");
    cs_status r = s->create(&s->h);
    if (r) {
        s->h = NULL;
        return open_fail(s, "cusolverDnCreate", r);
    }
    if ((r = s->params_create(&s->params))) {
        s->params = NULL;
        return open_fail(s, "cusolverDnCreateParams", r);
    }
    if ((r = s->set_stream(s->h, stream))) return open_fail(s, "cusolverDnSetStream", r);
    /* the same bits on every run (getrf and potrf are deterministic anyway;
     * this pins it where the library offers the switch) */
    if (s->set_deterministic) s->set_deterministic(s->h, CS_DETERMINISTIC);
    s->get_version(&s->version);
    *out = s;
    return XCS_OK;
}

int xcs_cusolver_version(const xcs_cusolver *s) { return s->version; }

static xcs_status cs_fail(cs_status r, const char *what, xcs_dtype dt, int64_t n) {
    return xcs_error(r == 2 ? XCS_ERR_MEMORY : XCS_ERR_INTERNAL, "%s failed: CUSOLVER_STATUS_%s (%d) for a %s %lld x %lld matrix",
                     what, status_name(r), r, xcs_dtype_name(dt), (long long)n, (long long)n);
}

static int data_type(xcs_dtype dt) { return dt == XCS_F32 ? CS_R_32F : CS_R_64F; }

xcs_status xcs_cusolver_work_size(xcs_cusolver *s, xcs_cusolver_kind kind, xcs_dtype dt, int64_t n, void *a,
                                  xcs_cusolver_work *out) {
    if (dt != XCS_F32 && dt != XCS_F64) return xcs_error(XCS_ERR_UNSUPPORTED, "cuSOLVER of %s", xcs_dtype_name(dt));
    const int t = data_type(dt);
    out->device_bytes = out->host_bytes = 0;
    pthread_mutex_lock(&s->lock);
    cs_status r = kind == XCS_CUSOLVER_LU
                      ? s->getrf_size(s->h, s->params, n, n, t, a, n, t, &out->device_bytes, &out->host_bytes)
                      : s->potrf_size(s->h, s->params, CS_FILL_UPPER, n, t, a, n, t, &out->device_bytes,
                                      &out->host_bytes);
    pthread_mutex_unlock(&s->lock);
    return r ? cs_fail(r, kind == XCS_CUSOLVER_LU ? "cusolverDnXgetrf_bufferSize" : "cusolverDnXpotrf_bufferSize", dt, n)
             : XCS_OK;
}

xcs_status xcs_cusolver_factor(xcs_cusolver *s, xcs_cusolver_kind kind, xcs_dtype dt, int64_t n, void *a,
                               int64_t *piv, void *dwork, void *hwork, const xcs_cusolver_work *w, int *info) {
    if (dt != XCS_F32 && dt != XCS_F64) return xcs_error(XCS_ERR_UNSUPPORTED, "cuSOLVER of %s", xcs_dtype_name(dt));
    const int t = data_type(dt);
    pthread_mutex_lock(&s->lock);
    cs_status r = kind == XCS_CUSOLVER_LU ? s->getrf(s->h, s->params, n, n, t, a, n, piv, t, dwork, w->device_bytes,
                                                     hwork, w->host_bytes, info)
                                          : s->potrf(s->h, s->params, CS_FILL_UPPER, n, t, a, n, t, dwork,
                                                     w->device_bytes, hwork, w->host_bytes, info);
    pthread_mutex_unlock(&s->lock);
    return r ? cs_fail(r, kind == XCS_CUSOLVER_LU ? "cusolverDnXgetrf" : "cusolverDnXpotrf", dt, n) : XCS_OK;
}

xcs_status xcs_cusolver_lu_solve(xcs_cusolver *s, xcs_dtype dt, bool trans, int64_t n, int64_t k, const void *a,
                                 const int64_t *piv, void *b, int *info) {
    if (dt != XCS_F32 && dt != XCS_F64) return xcs_error(XCS_ERR_UNSUPPORTED, "cuSOLVER of %s", xcs_dtype_name(dt));
    const int t = data_type(dt);
    pthread_mutex_lock(&s->lock);
    cs_status r = s->getrs(s->h, s->params, trans ? CS_OP_T : CS_OP_N, n, k, t, a, n, piv, t, b, n, info);
    pthread_mutex_unlock(&s->lock);
    return r ? cs_fail(r, "cusolverDnXgetrs", dt, n) : XCS_OK;
}
