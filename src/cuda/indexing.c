/* indexing.c — the CUDA C of the index kernels (codegen.h): take, a
 * gather that moves elements as unsigned integers of their width (no
 * conversion, so one kernel per width serves every dtype), and
 * scatter_add, atomic adds of each value at its position.  Both check
 * every index on the device (take wraps a negative one first, as numpy
 * does) and set XCS_CUDA_ERR_INDEX in the fault word for one out of range,
 * so the indices never come back to the host. */
#include <stdio.h>
#include <stdlib.h>

#include "codegen.h"

/* The element type a take of this width moves (NULL: no such width). */
static const char *word_of(size_t size) {
    switch (size) {
    case 1: return "unsigned char";
    case 2: return "unsigned short";
    case 4: return "unsigned int";
    case 8: return "unsigned long long";
    default: return NULL;
    }
}

/* The type a scatter_add accumulates in, and how its atomicAdd is spelled
 * (int64 adds as unsigned long long: two's complement wraps the same). */
static bool scatter_types(xcs_dtype dt, const char **type, const char **atomic_type) {
    switch (dt) {
    case XCS_F32: *type = *atomic_type = "float"; return true;
    case XCS_F64: *type = *atomic_type = "double"; return true;
    case XCS_I32: *type = *atomic_type = "int"; return true;
    case XCS_I64: *type = "long long", *atomic_type = "unsigned long long"; return true;
    default: return false;
    }
}

#define INDEX_ARGS                                                                                       \
    "struct xcs_index_args {\n"                                                                           \
    "    const void *src;\n"                                                                              \
    "    const long long *idx;\n"                                                                         \
    "    void *out;\n"                                                                                    \
    "    unsigned int *err;\n"                                                                            \
    "    long long n, A, J, Q;\n"                                                                         \
    "};\n"

size_t xcs_cuda_index_codegen(const xcs_cuda_index_spec *is, char *buf, size_t cap) {
    int w = -1;
    if (is->kind == XCS_CUDA_TAKE) {
        const char *u = word_of(xcs_dtype_size(is->dtype));
        if (!u) {
            xcs_error(XCS_ERR_UNSUPPORTED, "take: no CUDA kernel for dtype %s", xcs_dtype_name(is->dtype));
            return 0;
        }
        w = snprintf(buf, cap,
                     "/* xcs take: out[o, j, q] = src[o, idx[j], q] (%zu-byte elements) */\n" INDEX_ARGS
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    typedef %s word;\n"
                     "    const word *src = (const word *)a.src;\n"
                     "    word *out = (word *)a.out;\n"
                     "    const long long JQ = a.J * a.Q;\n"
                     "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n;\n"
                     "         i += (long long)gridDim.x * blockDim.x) {\n"
                     "        long long o = i / JQ, r = i - o * JQ, j = r / a.Q, q = r - j * a.Q;\n"
                     "        long long v = a.idx[j];\n"
                     "        if (v < 0) v += a.A;\n"
                     "        if (v < 0 || v >= a.A) { atomicOr(a.err, %uu); continue; }\n"
                     "        out[i] = src[(o * a.A + v) * a.Q + q];\n"
                     "    }\n"
                     "}\n",
                     xcs_dtype_size(is->dtype), XCS_CUDA_BLOCK, u, XCS_CUDA_ERR_INDEX);
    } else if (is->kind == XCS_CUDA_SCATTER_ADD) {
        const char *t, *at;
        if (!scatter_types(is->dtype, &t, &at)) {
            xcs_error(XCS_ERR_UNSUPPORTED, "scatter_add: no CUDA kernel for dtype %s", xcs_dtype_name(is->dtype));
            return 0;
        }
        w = snprintf(buf, cap,
                     "/* xcs scatter_add: out[idx[i]] += src[i] (%s; out zeroed before) */\n" INDEX_ARGS
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    const %s *src = (const %s *)a.src;\n"
                     "    %s *out = (%s *)a.out;\n"
                     "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n;\n"
                     "         i += (long long)gridDim.x * blockDim.x) {\n"
                     "        long long v = a.idx[i];\n"
                     "        if ((unsigned long long)v >= (unsigned long long)a.A) { atomicOr(a.err, %uu); continue; }\n"
                     "        atomicAdd(&out[v], (%s)src[i]);\n"
                     "    }\n"
                     "}\n",
                     xcs_dtype_name(is->dtype), XCS_CUDA_BLOCK, t, t, at, at, XCS_CUDA_ERR_INDEX, at);
    } else {
        xcs_error(XCS_ERR_INTERNAL, "index kernel: unknown kind %d", (int)is->kind);
        return 0;
    }
    if (w < 0) {
        xcs_error(XCS_ERR_INTERNAL, "index kernel: formatting failed");
        return 0;
    }
    return (size_t)w;
}

char *xcs_cuda_index_codegen_alloc(const xcs_cuda_index_spec *is) {
    size_t need = xcs_cuda_index_codegen(is, NULL, 0);
    if (!need) return NULL;
    char *buf = malloc(need + 1);
    if (!buf) {
        xcs_error(XCS_ERR_MEMORY, "out of memory generating an index kernel");
        return NULL;
    }
    xcs_cuda_index_codegen(is, buf, need + 1);
    return buf;
}

uint64_t xcs_cuda_index_spec_hash(const xcs_cuda_index_spec *is) {
    /* take depends on the width only */
    int dt = is->kind == XCS_CUDA_TAKE ? (int)xcs_dtype_size(is->dtype) : (int)is->dtype;
    return 0x1d6e4c0b5a3f2917ull ^ ((uint64_t)is->kind << 40) ^ ((uint64_t)dt << 8);
}
