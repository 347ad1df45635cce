/* sort.c — the CUDA C of argsort (codegen.h): numpy.argsort(kind="stable")
 * along one axis, rows sorted independently, with the CPU's result exactly
 * (a stable sort has one answer).
 *
 * Each element becomes a key {v, j}: v its value mapped to an unsigned
 * integer in the same order (integers with the sign bit flipped; floats by
 * their bits, negatives inverted, -0 as +0, every NaN the largest), j its
 * position along the axis.  Keys of a row are distinct and sorting them by
 * (v, j) is the stable sort.  SORT_TILE sorts tiles of T keys (T the power
 * of two that holds a row, at most XCS_CUDA_SORT_SLOTS) in shared memory,
 * bitonically, several short rows a block; SORT_MERGE merges pairs of
 * sorted runs of a row (a key's place: its rank in its own run plus a binary
 * search in the other); the last launch writes the j's to out instead of
 * keys. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "codegen.h"

#define SORT_ARGS                                                                                        \
    "struct xcs_sort_key { unsigned long long v, j; };\n"                                               \
    "struct xcs_sort_args {\n"                                                                           \
    "    const void *x;\n"                                                                               \
    "    long long *out;\n"                                                                              \
    "    struct xcs_sort_key *keys, *keys2;\n"                                                          \
    "    long long R, L, T, width, sa, so;\n"                                                            \
    "    int nd, emit;\n"                                                                                \
    "    long long shape[%d], stride[%d];\n"                                                             \
    "};\n"                                                                                               \
    "__device__ __forceinline__ bool xcs_key_less(struct xcs_sort_key a, struct xcs_sort_key b) {\n"     \
    "    return a.v < b.v || (a.v == b.v && a.j < b.j);\n"                                              \
    "}\n"                                                                                                \
    "/* where position p of row r goes: out (contiguous in x's shape: row r is\n"                        \
    " * (outer o, inner q) with so inner elements) or the next keys */\n"                                 \
    "__device__ __forceinline__ void xcs_put(const struct xcs_sort_args &a, struct xcs_sort_key *to,\n"   \
    "                                        long long r, long long p, struct xcs_sort_key k) {\n"        \
    "    if (a.emit) {\n"                                                                                \
    "        long long o = r / a.so, q = r - o * a.so;\n"                                                \
    "        a.out[(o * a.L + p) * a.so + q] = (long long)k.j;\n"                                        \
    "    } else {\n"                                                                                     \
    "        to[r * a.L + p] = k;\n"                                                                     \
    "    }\n"                                                                                            \
    "}\n"

/* The value's order as an unsigned integer, from `x`, the element. */
static const char *key_of(xcs_dtype dt, const char **type) {
    switch (dt) {
    case XCS_BOOL: *type = "unsigned char"; return "(unsigned long long)x";
    case XCS_I32: *type = "int"; return "(unsigned long long)((unsigned int)x ^ 0x80000000u)";
    case XCS_I64: *type = "long long"; return "(unsigned long long)x ^ 0x8000000000000000ull";
    case XCS_F32:
        *type = "float";
        return "x != x ? ~0ull : (unsigned long long)xcs_ordered32(__float_as_uint(x == 0.0f ? 0.0f : x))";
    case XCS_F64:
        *type = "double";
        return "x != x ? ~0ull : xcs_ordered64((unsigned long long)__double_as_longlong(x == 0.0 ? 0.0 : x))";
    default: return NULL;
    }
}

size_t xcs_cuda_sort_codegen(const xcs_cuda_sort_spec *ss, char *buf, size_t cap) {
    int w = -1;
    if (ss->kind == XCS_CUDA_SORT_TILE) {
        const char *t = NULL, *key = key_of(ss->dtype, &t);
        if (!key) {
            xcs_error(XCS_ERR_UNSUPPORTED, "argsort: no CUDA kernel for dtype %s", xcs_dtype_name(ss->dtype));
            return 0;
        }
        w = snprintf(
            buf, cap,
            "/* xcs argsort, 1 (%s): tiles of a.T keys {value, j} sorted in shared memory (bitonic),\n"
            " * %d / a.T tiles a block */\n" SORT_ARGS
            "__device__ __forceinline__ unsigned int xcs_ordered32(unsigned int u) {\n"
            "    return u & 0x80000000u ? ~u : u | 0x80000000u;\n"
            "}\n"
            "__device__ __forceinline__ unsigned long long xcs_ordered64(unsigned long long u) {\n"
            "    return u & 0x8000000000000000ull ? ~u : u | 0x8000000000000000ull;\n"
            "}\n"
            "#define SLOTS %d\n"
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_sort_args a) {\n"
            "    typedef %s T;\n"
            "    __shared__ struct xcs_sort_key s[SLOTS];\n"
            "    const T *xs = (const T *)a.x;\n"
            "    const long long per_row = (a.L + a.T - 1) / a.T, tiles = a.R * per_row, G = SLOTS / a.T;\n"
            "    for (long long g0 = (long long)blockIdx.x * G; g0 < tiles; g0 += (long long)gridDim.x * G) {\n"
            "        for (int i = threadIdx.x; i < SLOTS; i += blockDim.x) {\n"
            "            const long long g = g0 + i / a.T, r = g / per_row, p = (g - r * per_row) * a.T + i %% a.T;\n"
            "            struct xcs_sort_key k = {~0ull, ~0ull}; /* past the row: sorts last */\n"
            "            if (g < tiles && p < a.L) {\n"
            "                long long off = 0, rest = r;\n"
            "                for (int d = a.nd - 1; d >= 0; d--) {\n"
            "                    off += (rest %% a.shape[d]) * a.stride[d];\n"
            "                    rest /= a.shape[d];\n"
            "                }\n"
            "                const T x = xs[off + p * a.sa];\n"
            "                k.v = %s;\n"
            "                k.j = (unsigned long long)p;\n"
            "            }\n"
            "            s[i] = k;\n"
            "        }\n"
            "        __syncthreads();\n"
            "        for (long long k = 2; k <= a.T; k <<= 1)\n"
            "            for (long long h = k >> 1; h > 0; h >>= 1) {\n"
            "                for (int q = threadIdx.x; q < SLOTS / 2; q += blockDim.x) {\n"
            "                    const int i = (int)((q / h) * 2 * h + q %% h), l = i + (int)h;\n"
            "                    /* ascending where bit k of i is clear; the last merge of a tile: all */\n"
            "                    const bool up = k == a.T || (i & k) == 0;\n"
            "                    struct xcs_sort_key x = s[i], y = s[l];\n"
            "                    if (xcs_key_less(y, x) == up) { s[i] = y; s[l] = x; }\n"
            "                }\n"
            "                __syncthreads();\n"
            "            }\n"
            "        for (int i = threadIdx.x; i < SLOTS; i += blockDim.x) {\n"
            "            const long long g = g0 + i / a.T, r = g / per_row, p = (g - r * per_row) * a.T + i %% a.T;\n"
            "            if (g < tiles && p < a.L) xcs_put(a, a.keys, r, p, s[i]);\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "}\n",
            xcs_dtype_name(ss->dtype), XCS_CUDA_SORT_SLOTS, XCS_MAX_DIMS, XCS_MAX_DIMS, XCS_CUDA_SORT_SLOTS,
            XCS_CUDA_BLOCK, t, key);
    } else if (ss->kind == XCS_CUDA_SORT_MERGE) {
        w = snprintf(
            buf, cap,
            "/* xcs argsort, 2: a row's sorted runs of a.width keys merged in pairs (keys -> keys2, or\n"
            " * the j's to out); keys are distinct, so a key's place is its rank in its run plus the keys\n"
            " * below it in the other */\n" SORT_ARGS
            "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_sort_args a) {\n"
            "    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < a.R * a.L;\n"
            "         k += (long long)gridDim.x * blockDim.x) {\n"
            "        const struct xcs_sort_key x = a.keys[k];\n"
            "        const long long r = k / a.L, p = k - r * a.L, run = p / a.width, other = (run ^ 1) * a.width;\n"
            "        const struct xcs_sort_key *row = a.keys + r * a.L;\n"
            "        long long lo = other < a.L ? other : a.L, hi = other + a.width < a.L ? other + a.width : a.L;\n"
            "        const long long first = lo;\n"
            "        while (lo < hi) {\n"
            "            long long m = lo + (hi - lo) / 2;\n"
            "            if (xcs_key_less(row[m], x)) lo = m + 1; else hi = m;\n"
            "        }\n"
            "        xcs_put(a, a.keys2, r, (run & ~1ll) * a.width + (p - run * a.width) + (lo - first), x);\n"
            "    }\n"
            "}\n",
            XCS_MAX_DIMS, XCS_MAX_DIMS, XCS_CUDA_BLOCK);
    } else {
        xcs_error(XCS_ERR_INTERNAL, "sort kernel: unknown kind %d", (int)ss->kind);
        return 0;
    }
    return xcs_cuda_written(w, "sort kernel");
}

static size_t sort_gen(const void *spec, char *buf, size_t cap) { return xcs_cuda_sort_codegen(spec, buf, cap); }

char *xcs_cuda_sort_codegen_alloc(const xcs_cuda_sort_spec *ss) {
    return xcs_cuda_source_alloc(sort_gen, ss, "a sort");
}

uint64_t xcs_cuda_sort_spec_hash(const xcs_cuda_sort_spec *ss) {
    int dt = ss->kind == XCS_CUDA_SORT_TILE ? (int)ss->dtype : 0; /* the merge reads keys only */
    return 0x5c0e3a97b41d6f28ull ^ ((uint64_t)ss->kind << 40) ^ ((uint64_t)dt << 8);
}

static long long tile_of(long long L) {
    long long T = 1;
    while (T < L && T < XCS_CUDA_SORT_SLOTS) T <<= 1;
    return T;
}

int xcs_cuda_sort_plan(const xcs_cuda_sort_args *a, xcs_cuda_sort_step *steps) {
    int n = 0;
    xcs_cuda_sort_args cur = *a;
    cur.T = tile_of(cur.L);
    cur.width = 0;
    cur.emit = cur.L <= cur.T; /* one tile a row: the tile sort writes out */
    steps[n++] = (xcs_cuda_sort_step){XCS_CUDA_SORT_TILE, cur};
    for (long long width = cur.T; width < cur.L; width *= 2) {
        cur.width = width;
        cur.emit = width * 2 >= cur.L; /* the last merge writes out */
        steps[n++] = (xcs_cuda_sort_step){XCS_CUDA_SORT_MERGE, cur};
        xcs_cuda_sort_key *t = cur.keys; /* the merged runs are the next pass's input */
        cur.keys = cur.keys2;
        cur.keys2 = t;
    }
    return n;
}

long long xcs_cuda_sort_blocks(const xcs_cuda_sort_step *s) {
    const xcs_cuda_sort_args *a = &s->args;
    if (s->kind == XCS_CUDA_SORT_TILE) {
        long long per_row = (a->L + a->T - 1) / a->T, G = XCS_CUDA_SORT_SLOTS / a->T;
        return (a->R * per_row + G - 1) / G;
    }
    return (a->R * a->L + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
}

xcs_status xcs_cuda_sort_args_of(const xcs_tensor *x, int axis, const xcs_tensor *out, xcs_cuda_sort_args *a) {
    const char *t;
    if (axis < 0 || axis >= x->ndim || out->dtype != XCS_I64 || out->ndim != x->ndim || !xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "CUDA argsort: bad operands");
    if (!key_of(x->dtype, &t))
        return xcs_error(XCS_ERR_UNSUPPORTED, "argsort: no CUDA kernel for dtype %s", xcs_dtype_name(x->dtype));
    memset(a, 0, sizeof *a);
    a->x = (const void *)(uintptr_t)xcs_cuda_be_addr(x);
    a->out = (long long *)(uintptr_t)xcs_cuda_be_addr(out);
    a->L = x->shape[axis];
    a->sa = x->strides[axis];
    a->R = a->so = 1;
    for (int d = 0; d < x->ndim; d++)
        if (d != axis) {
            a->shape[a->nd] = x->shape[d];
            a->stride[a->nd++] = x->strides[d];
            a->R *= x->shape[d];
            if (d > axis) a->so *= x->shape[d];
        }
    if (a->L >= ((int64_t)1 << 40))
        return xcs_error(XCS_ERR_UNSUPPORTED, "argsort: rows of %lld elements; the CUDA kernel sorts fewer than 2^40",
                         (long long)a->L);
    return XCS_OK;
}
