/* indexing.c — the CUDA C of the index kernels (codegen.h): take, a
 * gather that moves elements as unsigned integers of their width (no
 * conversion, so one kernel per width serves every dtype), checking every
 * index on the device (wrapping a negative one first, as numpy does) and
 * setting XCS_CUDA_ERR_INDEX in the fault word for one out of range, so
 * the indices never come back to the host; scatter_add, a stable sort of
 * the indices (tiles sorted in shared memory, then merged) and a thread
 * an output element summing its values in order of j, so its sums are
 * the CPU's, bit for bit, with no atomics; argmax/argmin, a block per
 * output; and the Philox draws. */
#include <stdio.h>
#include <stdlib.h>

#include "codegen.h"

/* snprintf's count as a source length; 0 with the error set on failure. */
size_t xcs_cuda_written(int w, const char *what) {
    if (w < 0) xcs_error(XCS_ERR_INTERNAL, "%s: formatting failed", what);
    return w < 0 ? 0 : (size_t)w;
}

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

/* The element type of a scatter_add and the type it sums in (integers as
 * unsigned: two's complement wraps the same, without overflow). */
static bool scatter_types(xcs_dtype dt, const char **type, const char **acc_type) {
    switch (dt) {
    case XCS_F32: *type = *acc_type = "float"; return true;
    case XCS_F64: *type = *acc_type = "double"; return true;
    case XCS_I32: *type = "int", *acc_type = "unsigned int"; return true;
    case XCS_I64: *type = "long long", *acc_type = "unsigned long long"; return true;
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
    "    unsigned long long *keys, *keys2;\n"                                                            \
    "    long long *start;\n"                                                                            \
    "    long long width;\n"                                                                             \
    "};\n"

/* scatter_add's search: the first of keys[lo, hi) (sorted) not below x */
#define LOWER_BOUND                                                                                      \
    "__device__ __forceinline__ long long xcs_lower_bound(const unsigned long long *keys, long long lo,\n" \
    "                                                     long long hi, unsigned long long x) {\n"         \
    "    while (lo < hi) {\n"                                                                           \
    "        long long m = lo + (hi - lo) / 2;\n"                                                       \
    "        if (keys[m] < x) lo = m + 1; else hi = m;\n"                                               \
    "    }\n"                                                                                           \
    "    return lo;\n"                                                                                  \
    "}\n"

size_t xcs_cuda_index_codegen(const xcs_cuda_index_spec *is, char *buf, size_t cap) {
    int w = -1;
    const char *u = word_of(xcs_dtype_size(is->dtype)); /* a take's element word */
    const bool is_take = is->kind == XCS_CUDA_TAKE || is->kind == XCS_CUDA_TAKE_ROWS;
    if (is_take && !u) {
        xcs_error(XCS_ERR_UNSUPPORTED, "take: no CUDA kernel for dtype %s", xcs_dtype_name(is->dtype));
        return 0;
    }
    if (is->kind == XCS_CUDA_TAKE_ROWS) {
        w = snprintf(buf, cap,
                     "/* xcs take by rows: out[o, j, :] = src[o, idx[j], :] (%zu-byte elements), a block a row */\n"
                     INDEX_ARGS
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    typedef %s word;\n"
                     "    const long long rows = a.n / a.Q;\n"
                     "    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {\n"
                     "        long long o = row / a.J, j = row - o * a.J, v = a.idx[j];\n"
                     "        if (v < 0) v += a.A;\n"
                     "        if (v < 0 || v >= a.A) {\n"
                     "            if (threadIdx.x == 0) atomicOr(a.err, %uu);\n"
                     "            continue;\n"
                     "        }\n"
                     "        const word *s = (const word *)a.src + (o * a.A + v) * a.Q;\n"
                     "        word *d = (word *)a.out + row * a.Q;\n"
                     "        for (long long q = threadIdx.x; q < a.Q; q += blockDim.x) d[q] = s[q];\n"
                     "    }\n"
                     "}\n",
                     xcs_dtype_size(is->dtype), XCS_CUDA_BLOCK, u, XCS_CUDA_ERR_INDEX);
    } else if (is->kind == XCS_CUDA_TAKE) {
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
    } else if (is->kind == XCS_CUDA_SCATTER_SORT) {
        w = snprintf(buf, cap,
                     "/* xcs scatter_add, 1: tiles of %d keys idx[j] << 32 | j sorted (bitonic, shared memory) */\n"
                     INDEX_ARGS
                     "#define TILE %d\n"
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    __shared__ unsigned long long s[TILE];\n"
                     "    const long long tiles = (a.J + TILE - 1) / TILE;\n"
                     "    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {\n"
                     "        const long long base = t * TILE;\n"
                     "        for (int i = threadIdx.x; i < TILE; i += blockDim.x) {\n"
                     "            long long j = base + i;\n"
                     "            unsigned long long key = ~0ull; /* past the end: sorts last */\n"
                     "            if (j < a.J) {\n"
                     "                unsigned long long v = (unsigned long long)a.idx[j];\n"
                     "                if (v >= (unsigned long long)a.A) v = (unsigned long long)a.A; /* out of range */\n"
                     "                key = v << 32 | (unsigned long long)j;\n"
                     "            }\n"
                     "            s[i] = key;\n"
                     "        }\n"
                     "        __syncthreads();\n"
                     "        for (unsigned k = 2; k <= TILE; k <<= 1)\n"
                     "            for (unsigned h = k >> 1; h > 0; h >>= 1) {\n"
                     "                for (unsigned p = threadIdx.x; p < TILE / 2; p += blockDim.x) {\n"
                     "                    unsigned i = (p / h) * 2 * h + p %% h, l = i + h;\n"
                     "                    unsigned long long x = s[i], y = s[l];\n"
                     "                    if ((x > y) == ((i & k) == 0)) { s[i] = y; s[l] = x; }\n"
                     "                }\n"
                     "                __syncthreads();\n"
                     "            }\n"
                     "        for (int i = threadIdx.x; i < TILE; i += blockDim.x)\n"
                     "            if (base + i < a.J) a.keys[base + i] = s[i];\n"
                     "        __syncthreads();\n"
                     "    }\n"
                     "}\n",
                     XCS_CUDA_SCATTER_TILE, XCS_CUDA_SCATTER_TILE, XCS_CUDA_BLOCK);
    } else if (is->kind == XCS_CUDA_SCATTER_MERGE) {
        w = snprintf(buf, cap,
                     "/* xcs scatter_add, 2: sorted runs of a.width keys merged in pairs (keys -> keys2); keys\n"
                     " * are distinct, so a key's place is its rank in its run plus the keys below it in the other */\n"
                     INDEX_ARGS LOWER_BOUND
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < a.J;\n"
                     "         k += (long long)gridDim.x * blockDim.x) {\n"
                     "        const unsigned long long x = a.keys[k];\n"
                     "        const long long r = k / a.width, other = (r ^ 1) * a.width;\n"
                     "        const long long lo = other < a.J ? other : a.J, hi = other + a.width < a.J ? other + a.width : a.J;\n"
                     "        a.keys2[(r & ~1ll) * a.width + (k - r * a.width) + (xcs_lower_bound(a.keys, lo, hi, x) - lo)] = x;\n"
                     "    }\n"
                     "}\n",
                     XCS_CUDA_BLOCK);
    } else if (is->kind == XCS_CUDA_SCATTER_BOUNDS) {
        w = snprintf(buf, cap,
                     "/* xcs scatter_add, 3: start[v] = the first sorted key of position v (v <= A); the\n"
                     " * keys past start[A] are indices out of range */\n"
                     INDEX_ARGS LOWER_BOUND
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v <= a.A;\n"
                     "         v += (long long)gridDim.x * blockDim.x) {\n"
                     "        const long long lo = xcs_lower_bound(a.keys, 0, a.J, (unsigned long long)v << 32);\n"
                     "        a.start[v] = lo;\n"
                     "        if (v == a.A && lo != a.J) atomicOr(a.err, %uu);\n"
                     "    }\n"
                     "}\n",
                     XCS_CUDA_BLOCK, XCS_CUDA_ERR_INDEX);
    } else if (is->kind == XCS_CUDA_SCATTER_ADD) {
        const char *t, *acc;
        if (!scatter_types(is->dtype, &t, &acc)) {
            xcs_error(XCS_ERR_UNSUPPORTED, "scatter_add: no CUDA kernel for dtype %s", xcs_dtype_name(is->dtype));
            return 0;
        }
        w = snprintf(buf, cap,
                     "/* xcs scatter_add, 4 (%s): out[o, v, q] = 0 + the values of position v in order of j */\n"
                     INDEX_ARGS
                     "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME
                     "(struct xcs_index_args a) {\n"
                     "    typedef %s T;\n"
                     "    typedef %s ACC;\n"
                     "    const T *src = (const T *)a.src;\n"
                     "    T *out = (T *)a.out;\n"
                     "    const long long AQ = a.A * a.Q;\n"
                     "    if (blockIdx.x == 0 && threadIdx.x == 0 && a.start[a.A] != a.J) atomicOr(a.err, %uu);\n"
                     "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n;\n"
                     "         i += (long long)gridDim.x * blockDim.x) {\n"
                     "        long long o = i / AQ, r = i - o * AQ, v = r / a.Q, q = r - v * a.Q;\n"
                     "        const T *row = src + o * a.J * a.Q + q;\n"
                     "        ACC sum = 0;\n"
                     "        for (long long k = a.start[v], e = a.start[v + 1]; k < e; k++)\n"
                     "            sum += (ACC)row[(long long)(a.keys[k] & 0xffffffffull) * a.Q];\n"
                     "        out[i] = (T)sum;\n"
                     "    }\n"
                     "}\n",
                     xcs_dtype_name(is->dtype), XCS_CUDA_BLOCK, t, acc, XCS_CUDA_ERR_INDEX);
    } else {
        xcs_error(XCS_ERR_INTERNAL, "index kernel: unknown kind %d", (int)is->kind);
        return 0;
    }
    return xcs_cuda_written(w, "index kernel");
}

/* Source of `need` bytes written by gen(spec, buf, cap), allocated (free()
 * it); NULL with the error set. */
char *xcs_cuda_source_alloc(size_t (*gen)(const void *, char *, size_t), const void *spec, const char *what) {
    size_t need = gen(spec, NULL, 0);
    if (!need) return NULL;
    char *buf = malloc(need + 1);
    if (!buf) {
        xcs_error(XCS_ERR_MEMORY, "out of memory generating %s kernel", what);
        return NULL;
    }
    gen(spec, buf, need + 1);
    return buf;
}

static size_t index_gen(const void *spec, char *buf, size_t cap) { return xcs_cuda_index_codegen(spec, buf, cap); }

char *xcs_cuda_index_codegen_alloc(const xcs_cuda_index_spec *is) { return xcs_cuda_source_alloc(index_gen, is, "an index"); }

/* argmax / argmin: a block per output (grid-stride over outputs); each
 * thread scans its strided share of the axis keeping the first best it
 * meets, then the block's candidates meet in shared memory under one total
 * order (a NaN beats any number, then the larger (smaller) value, then the
 * lower index), so the result is the sequential scan's: numpy's first
 * extreme, or its first NaN. */
size_t xcs_cuda_argred_codegen(const xcs_cuda_argred_spec *as, char *buf, size_t cap) {
    const char *t;
    bool is_float = false;
    switch (as->dtype) {
    case XCS_BOOL: t = "unsigned char"; break;
    case XCS_I32: t = "int"; break;
    case XCS_I64: t = "long long"; break;
    case XCS_F32: t = "float", is_float = true; break;
    case XCS_F64: t = "double", is_float = true; break;
    default:
        xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel for dtype %s", xcs_op_name(as->op),
                  xcs_dtype_name(as->dtype));
        return 0;
    }
    if (as->op != XCS_OP_ARGMAX && as->op != XCS_OP_ARGMIN) {
        xcs_error(XCS_ERR_INTERNAL, "arg-reduction kernel for %s", xcs_op_name(as->op));
        return 0;
    }
    int w = snprintf(
        buf, cap,
        "/* xcs %s (%s): a block per output */\n"
        "struct xcs_argred_args {\n"
        "    const void *x;\n"
        "    long long *out;\n"
        "    long long n_out, A, sa;\n"
        "    int nd;\n"
        "    long long shape[%d], stride[%d];\n"
        "};\n"
        "typedef %s T;\n"
        "__device__ __forceinline__ bool xcs_isnan(T v) { return %s; }\n"
        "/* c (value cv, index ci) beats the current (bv, bi); index < 0: none */\n"
        "__device__ __forceinline__ bool xcs_beats(T cv, long long ci, T bv, long long bi) {\n"
        "    if (ci < 0) return false;\n"
        "    if (bi < 0) return true;\n"
        "    bool cn = xcs_isnan(cv), bn = xcs_isnan(bv);\n"
        "    if (cn || bn) return cn && (!bn || ci < bi);\n"
        "    return cv %s bv || (cv == bv && ci < bi);\n"
        "}\n"
        "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_argred_args a) {\n"
        "    __shared__ T sv[%d];\n"
        "    __shared__ long long si[%d];\n"
        "    const T *x = (const T *)a.x;\n"
        "    for (long long o = blockIdx.x; o < a.n_out; o += gridDim.x) {\n"
        "        long long base = 0, rest = o;\n"
        "        for (int d = a.nd - 1; d >= 0; d--) {\n"
        "            base += (rest %% a.shape[d]) * a.stride[d];\n"
        "            rest /= a.shape[d];\n"
        "        }\n"
        "        T bv = 0;\n"
        "        long long bi = -1;\n"
        "        for (long long i = threadIdx.x; i < a.A; i += blockDim.x) {\n"
        "            T v = x[base + i * a.sa];\n"
        "            if (xcs_beats(v, i, bv, bi)) { bv = v; bi = i; }\n"
        "        }\n"
        "        sv[threadIdx.x] = bv;\n"
        "        si[threadIdx.x] = bi;\n"
        "        __syncthreads();\n"
        "        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n"
        "            if (threadIdx.x < s && xcs_beats(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {\n"
        "                sv[threadIdx.x] = sv[threadIdx.x + s];\n"
        "                si[threadIdx.x] = si[threadIdx.x + s];\n"
        "            }\n"
        "            __syncthreads();\n"
        "        }\n"
        "        if (threadIdx.x == 0) a.out[o] = si[0];\n"
        "        __syncthreads();\n"
        "    }\n"
        "}\n",
        xcs_op_name(as->op), xcs_dtype_name(as->dtype), XCS_MAX_DIMS, XCS_MAX_DIMS, t, is_float ? "v != v" : "false",
        as->op == XCS_OP_ARGMAX ? ">" : "<", XCS_CUDA_BLOCK, XCS_CUDA_BLOCK, XCS_CUDA_BLOCK);
    return xcs_cuda_written(w, "arg-reduction kernel");
}

static size_t argred_gen(const void *spec, char *buf, size_t cap) { return xcs_cuda_argred_codegen(spec, buf, cap); }

char *xcs_cuda_argred_codegen_alloc(const xcs_cuda_argred_spec *as) {
    return xcs_cuda_source_alloc(argred_gen, as, "an arg-reduction");
}

uint64_t xcs_cuda_argred_spec_hash(const xcs_cuda_argred_spec *as) {
    return 0x7b3c9e15d2a40f61ull ^ ((uint64_t)as->op << 40) ^ ((uint64_t)as->dtype << 8);
}

/* ---------------------------------------------------------------- random */

extern const char xcs_cuda_philox_source[]; /* src/core/philox.h (philox_source.c, generated) */

/* The per-block bodies: the stream of src/host/random.c (philox.h says
 * it), with every double product and sum rounded on its own (no FMA) so
 * uniforms are bit-identical to the CPU's. */
static const char *random_body(xcs_op op, xcs_dtype dt) {
    bool f32 = dt == XCS_F32;
    if (op == XCS_OP_RANDOM_UNIFORM)
        return f32 ? "        xcs_philox_block(key, (uint64_t)j, r);\n"
                     "        for (int q = 0; q < 4 && 4 * j + q < a.n; q++) {\n"
                     "            double v = __dadd_rn(a.lo, __dmul_rn(w, (double)xcs_philox_u01_f32(r[q])));\n"
                     "            float f = __double2float_rn(v);\n"
                     "            if ((double)f >= a.hi && a.lo < a.hi) f = nextafterf(f, -__int_as_float(0x7f800000));\n"
                     "            out[4 * j + q] = f;\n"
                     "        }\n"
                   : "        xcs_philox_block(key, (uint64_t)j, r);\n"
                     "        for (int q = 0; q < 2 && 2 * j + q < a.n; q++) {\n"
                     "            double v = __dadd_rn(a.lo, __dmul_rn(w, xcs_philox_u01_f64(r[2 * q], r[2 * q + 1])));\n"
                     "            if (v >= a.hi && a.lo < a.hi) v = nextafter(v, -__longlong_as_double(0x7ff0000000000000LL));\n"
                     "            out[2 * j + q] = v;\n"
                     "        }\n";
    return f32 ? "        xcs_philox_block(key, (uint64_t)j, r);\n"
                 "        double z[4];\n"
                 "        xcs_box_muller(xcs_philox_u01_open0_24(r[0]), (double)xcs_philox_u01_f32(r[1]), &z[0], &z[1]);\n"
                 "        xcs_box_muller(xcs_philox_u01_open0_24(r[2]), (double)xcs_philox_u01_f32(r[3]), &z[2], &z[3]);\n"
                 "        for (int q = 0; q < 4 && 4 * j + q < a.n; q++)\n"
                 "            out[4 * j + q] = __double2float_rn(__dadd_rn(a.lo, __dmul_rn(a.hi, z[q])));\n"
               : "        xcs_philox_block(key, (uint64_t)j, r);\n"
                 "        double z[2];\n"
                 "        xcs_box_muller(xcs_philox_u01_open0_53(r[0], r[1]), xcs_philox_u01_f64(r[2], r[3]), &z[0], &z[1]);\n"
                 "        for (int q = 0; q < 2 && 2 * j + q < a.n; q++)\n"
                 "            out[2 * j + q] = __dadd_rn(a.lo, __dmul_rn(a.hi, z[q]));\n";
}

size_t xcs_cuda_random_codegen(const xcs_cuda_random_spec *rs, char *buf, size_t cap) {
    if ((rs->op != XCS_OP_RANDOM_UNIFORM && rs->op != XCS_OP_RANDOM_NORMAL) ||
        (rs->dtype != XCS_F32 && rs->dtype != XCS_F64)) {
        xcs_error(XCS_ERR_UNSUPPORTED, "%s: no CUDA kernel for dtype %s", xcs_op_name(rs->op),
                  xcs_dtype_name(rs->dtype));
        return 0;
    }
    int per = rs->dtype == XCS_F32 ? 4 : 2; /* elements a Philox block gives */
    int w = snprintf(
        buf, cap,
        "/* xcs random %s (%s): a Philox block a thread, grid-stride */\n"
        "#ifdef __CUDACC_RTC__ /* NVRTC: no <stdint.h> */\n"
        "typedef unsigned int uint32_t;\n"
        "typedef unsigned long long uint64_t;\n"
        "#define XCS_PHILOX_NO_STDINT\n"
        "#endif\n"
        "#define XCS_PHILOX_QUAL static __device__ __forceinline__\n"
        "%s\n"
        "struct xcs_random_args {\n"
        "    void *out;\n"
        "    unsigned int key[2];\n"
        "    long long n;\n"
        "    double lo, hi; /* uniform: [lo, hi); normal: loc, scale */\n"
        "};\n"
        "static __device__ __forceinline__ void xcs_box_muller(double u1, double u2, double *z0, double *z1) {\n"
        "    double r = sqrt(__dmul_rn(-2.0, log(u1))), t = __dmul_rn(6.283185307179586476925286766559, u2);\n"
        "    *z0 = __dmul_rn(r, cos(t));\n"
        "    *z1 = __dmul_rn(r, sin(t));\n"
        "}\n"
        "extern \"C\" __global__ void __launch_bounds__(%d) " XCS_CUDA_KERNEL_NAME "(struct xcs_random_args a) {\n"
        "    %s *out = (%s *)a.out;\n"
        "    const uint32_t key[2] = {a.key[0], a.key[1]};\n"
        "    const double w = __dadd_rn(a.hi, -a.lo);\n"
        "    (void)w;\n"
        "    uint32_t r[4];\n"
        "    const long long nb = (a.n + %d) / %d;\n"
        "    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < nb;\n"
        "         j += (long long)gridDim.x * blockDim.x) {\n"
        "%s"
        "    }\n"
        "}\n",
        xcs_op_name(rs->op), xcs_dtype_name(rs->dtype), xcs_cuda_philox_source, XCS_CUDA_BLOCK,
        rs->dtype == XCS_F32 ? "float" : "double", rs->dtype == XCS_F32 ? "float" : "double", per - 1, per,
        random_body(rs->op, rs->dtype));
    return xcs_cuda_written(w, "random kernel");
}

static size_t random_gen(const void *spec, char *buf, size_t cap) { return xcs_cuda_random_codegen(spec, buf, cap); }

char *xcs_cuda_random_codegen_alloc(const xcs_cuda_random_spec *rs) { return xcs_cuda_source_alloc(random_gen, rs, "a random"); }

uint64_t xcs_cuda_random_spec_hash(const xcs_cuda_random_spec *rs) {
    return 0x2f8d61c3a9e5b047ull ^ ((uint64_t)rs->op << 40) ^ ((uint64_t)rs->dtype << 8);
}

uint64_t xcs_cuda_index_spec_hash(const xcs_cuda_index_spec *is) {
    /* take depends on the width only, the sort's kernels on nothing */
    int dt = is->kind == XCS_CUDA_SCATTER_ADD                                   ? (int)is->dtype
             : is->kind == XCS_CUDA_TAKE || is->kind == XCS_CUDA_TAKE_ROWS ? (int)xcs_dtype_size(is->dtype)
                                                                            : 0;
    return 0x1d6e4c0b5a3f2917ull ^ ((uint64_t)is->kind << 40) ^ ((uint64_t)dt << 8);
}

int xcs_cuda_scatter_plan(const xcs_cuda_index_args *a, xcs_cuda_scatter_step *steps) {
    int n = 0;
    xcs_cuda_index_args cur = *a;
    if (cur.J > 0) steps[n++] = (xcs_cuda_scatter_step){XCS_CUDA_SCATTER_SORT, cur};
    for (long long width = XCS_CUDA_SCATTER_TILE; width < cur.J; width *= 2) {
        cur.width = width;
        steps[n++] = (xcs_cuda_scatter_step){XCS_CUDA_SCATTER_MERGE, cur};
        unsigned long long *t = cur.keys; /* the merged runs are the next pass's input */
        cur.keys = cur.keys2;
        cur.keys2 = t;
    }
    cur.width = 0;
    steps[n++] = (xcs_cuda_scatter_step){XCS_CUDA_SCATTER_BOUNDS, cur};
    if (cur.n > 0) steps[n++] = (xcs_cuda_scatter_step){XCS_CUDA_SCATTER_ADD, cur};
    return n;
}

long long xcs_cuda_index_blocks(xcs_cuda_index_kind kind, const xcs_cuda_index_args *a) {
    long long per = XCS_CUDA_BLOCK;
    switch (kind) {
    case XCS_CUDA_TAKE_ROWS: return a->n / (a->Q > 0 ? a->Q : 1); /* a block a row */
    case XCS_CUDA_SCATTER_SORT: return (a->J + XCS_CUDA_SCATTER_TILE - 1) / XCS_CUDA_SCATTER_TILE; /* a block a tile */
    case XCS_CUDA_SCATTER_MERGE: return (a->J + per - 1) / per;
    case XCS_CUDA_SCATTER_BOUNDS: return (a->A + 1 + per - 1) / per;
    default: return (a->n + per - 1) / per;
    }
}
