/* take.c — the CPU gather kernel: out = take(x, idx, axis).
 *
 * out (contiguous) has shape x.shape[:axis] + idx.shape + x.shape[axis+1:],
 * so it is a sequence of "rows": for each outer index o (over x's dims before
 * axis) and each index position j (over idx, in C order), one block of
 * `inner` elements copied from x[o, idx[j], ...].  Index values are turned
 * into element offsets once (off[j] = idx[j] * stride[axis]); the inner block
 * is one memcpy when x is contiguous there, else a strided odometer copy.
 * Threads take equal contiguous ranges of rows (one division each, then an
 * odometer), so the kernel never divides per element.
 *
 * axis == XCS_AXIS_NONE takes from x.ravel(): idx values are C-order flat
 * indices, unravelled against x's (possibly strided) layout.
 *
 * Core wraps negative indices and checks bounds; this kernel checks the
 * bounds again (cheap next to the copy) so a bad index is an error, never an
 * out-of-bounds read.  Borrows all arguments; writes out in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct take_plan {
    const char *xbase;        /* x's first element */
    char *obase;
    size_t isz;
    const int64_t *off;       /* element offset of each idx entry (ni) */
    int64_t ni;
    int no;                   /* outer dims (before axis), collapsed */
    int64_t oshape[XCS_MAX_DIMS], ostride[XCS_MAX_DIMS];
    int nin;                  /* inner dims (after axis), collapsed */
    int64_t ishape[XCS_MAX_DIMS], istride[XCS_MAX_DIMS];
    int64_t inner;            /* elements per row */
    bool inner_contig;        /* inner block is one run of stride 1 */
} take_plan;

/* Drops size-1 dims and merges dims that are one run in memory. */
static int collapse(int n, const int64_t *shape, const int64_t *stride, int64_t *cs,
                    int64_t *cst) {
    int m = 0;
    for (int d = 0; d < n; d++) {
        if (shape[d] == 1) continue;
        if (m > 0 && cst[m - 1] == stride[d] * shape[d]) {
            cs[m - 1] *= shape[d];
            cst[m - 1] = stride[d];
        } else {
            cs[m] = shape[d];
            cst[m] = stride[d];
            m++;
        }
    }
    return m;
}

static inline void copy_elem(char *dst, const char *src, size_t isz) {
    switch (isz) {
    case 1: *dst = *src; break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, isz); break;
    }
}

/* Copies the strided inner block at src into contiguous dst. */
static void copy_inner(const take_plan *p, char *dst, const char *src) {
    if (p->inner_contig) {
        memcpy(dst, src, (size_t)p->inner * p->isz);
        return;
    }
    if (p->nin == 0) {
        copy_elem(dst, src, p->isz);
        return;
    }
    int64_t idx[XCS_MAX_DIMS] = {0};
    int last = p->nin - 1;
    int64_t n = p->ishape[last], s = p->istride[last] * (int64_t)p->isz;
    for (;;) {
        int64_t off = 0;
        for (int d = 0; d < last; d++) off += idx[d] * p->istride[d];
        const char *sp = src + off * (int64_t)p->isz;
        switch (p->isz) {
        case 1: for (int64_t i = 0; i < n; i++) dst[i] = sp[i * s]; break;
        case 2:
            for (int64_t i = 0; i < n; i++) memcpy(dst + 2 * i, sp + i * s, 2);
            break;
        case 4:
            for (int64_t i = 0; i < n; i++) memcpy(dst + 4 * i, sp + i * s, 4);
            break;
        default:
            for (int64_t i = 0; i < n; i++) memcpy(dst + 8 * i, sp + i * s, 8);
            break;
        }
        dst += n * (int64_t)p->isz;
        int d = last - 1;
        while (d >= 0 && ++idx[d] == p->ishape[d]) idx[d--] = 0;
        if (d < 0) return;
    }
}

/* Copies rows [r0, r1) of the output. */
static void take_rows(const take_plan *p, int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    int64_t o = r0 / p->ni, j = r0 % p->ni;
    int64_t oidx[XCS_MAX_DIMS], xo = 0;
    for (int d = p->no - 1; d >= 0; d--) {
        oidx[d] = o % p->oshape[d];
        o /= p->oshape[d];
        xo += oidx[d] * p->ostride[d];
    }
    size_t row_bytes = (size_t)p->inner * p->isz;
    char *dst = p->obase + (size_t)r0 * row_bytes;
    for (int64_t r = r0; r < r1; r++, dst += row_bytes) {
        copy_inner(p, dst, p->xbase + (xo + p->off[j]) * (int64_t)p->isz);
        if (++j == p->ni) {
            j = 0;
            for (int d = p->no - 1; d >= 0; d--) {
                xo += p->ostride[d];
                if (++oidx[d] < p->oshape[d]) break;
                xo -= oidx[d] * p->ostride[d];
                oidx[d] = 0;
            }
        }
    }
}

static int64_t numel(int n, const int64_t *shape) {
    int64_t m = 1;
    for (int d = 0; d < n; d++) m *= shape[d];
    return m;
}

/* Reads idx (int64 or int32, any layout) in C order into the offsets array,
 * checking each value against [0, n) and scaling it by `scale` (axis mode) or
 * unravelling it against x's layout (flat mode). */
static xcs_status index_offsets(const xcs_tensor *idx, const xcs_tensor *x, int64_t n,
                                bool flat, int64_t scale, int64_t *off) {
    int64_t ni = numel(idx->ndim, idx->shape);
    int64_t pos[XCS_MAX_DIMS] = {0};
    const char *base = xcs_tensor_data(idx);
    for (int64_t j = 0; j < ni; j++) {
        int64_t eo = 0;
        for (int d = 0; d < idx->ndim; d++) eo += pos[d] * idx->strides[d];
        int64_t v = idx->dtype == XCS_I64 ? ((const int64_t *)(const void *)base)[eo]
                                          : ((const int32_t *)(const void *)base)[eo];
        if (v < 0 || v >= n)
            return xcs_error(XCS_ERR_INDEX,
                             "take: index %lld is out of bounds for size %lld",
                             (long long)v, (long long)n);
        if (!flat) {
            off[j] = v * scale;
        } else {
            int64_t e = 0, rem = v;
            for (int d = x->ndim - 1; d >= 0; d--) {
                e += (rem % x->shape[d]) * x->strides[d];
                rem /= x->shape[d];
            }
            off[j] = e;
        }
        for (int d = idx->ndim - 1; d >= 0; d--) {
            if (++pos[d] < idx->shape[d]) break;
            pos[d] = 0;
        }
    }
    return XCS_OK;
}

/* The scalar gather out[j] = x[idx[j] * s] (one element a row, no outer
 * dims, idx contiguous): one parallel loop that checks and copies, no
 * offsets array.  A bad index is found again serially for its message. */
#define GATHER1(T, IT)                                                                                  \
    static int64_t gather1_##T##_##IT(const T *x, const IT *ix, T *o, int64_t ni, int64_t n, int64_t s) { \
        int64_t bad = 0;                                                                                \
        XCS_PRAGMA_PAR_FOR_REDUCE(ni, bad)                                                              \
        for (int64_t j = 0; j < ni; j++) {                                                              \
            const int64_t v = (int64_t)ix[j];                                                           \
            const bool ok = v >= 0 && v < n;                                                            \
            bad += !ok;                                                                                 \
            o[j] = x[(ok ? v : 0) * s];                                                                 \
        }                                                                                               \
        return bad;                                                                                     \
    }
#ifdef _OPENMP
#define XCS_PRAGMA_PAR_FOR_REDUCE(ni, bad) _Pragma("omp parallel for reduction(+ : bad) if (ni >= XCS_CPU_PAR_MIN) schedule(static)")
#else
#define XCS_PRAGMA_PAR_FOR_REDUCE(ni, bad)
#endif
GATHER1(uint8_t, int64_t)
GATHER1(uint16_t, int64_t)
GATHER1(uint32_t, int64_t)
GATHER1(uint64_t, int64_t)
GATHER1(uint8_t, int32_t)
GATHER1(uint16_t, int32_t)
GATHER1(uint32_t, int32_t)
GATHER1(uint64_t, int32_t)

/* gather1 for x's element size; returns the number of bad indices (-1: no
 * kernel for this size). */
static int64_t gather1(const void *x, const xcs_tensor *idx, void *o, int64_t ni, int64_t n, int64_t s, size_t isz) {
    const void *ix = xcs_tensor_data(idx);
    const bool i64 = idx->dtype == XCS_I64;
#define G(T) (i64 ? gather1_##T##_int64_t((const T *)x, (const int64_t *)ix, (T *)o, ni, n, s)  \
                  : gather1_##T##_int32_t((const T *)x, (const int32_t *)ix, (T *)o, ni, n, s))
    switch (isz) {
    case 1: return G(uint8_t);
    case 2: return G(uint16_t);
    case 4: return G(uint32_t);
    case 8: return G(uint64_t);
    default: return -1;
    }
#undef G
}

xcs_status xcs_cpu_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, xcs_tensor *out) {
    if (x->dtype != out->dtype)
        return xcs_error(XCS_ERR_INTERNAL, "take: output dtype %s differs from input dtype %s",
                         xcs_dtype_name(out->dtype), xcs_dtype_name(x->dtype));
    if (idx->dtype != XCS_I64 && idx->dtype != XCS_I32)
        return xcs_error(XCS_ERR_TYPE, "take: indices must be int64 or int32, not %s",
                         xcs_dtype_name(idx->dtype));
    bool flat = axis == XCS_AXIS_NONE;
    if (!flat && (axis < 0 || axis >= x->ndim))
        return xcs_error(XCS_ERR_VALUE, "take: axis %d is out of range for %d-d input", axis,
                         x->ndim);
    if (!xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "take: the output must be contiguous");

    take_plan p;
    memset(&p, 0, sizeof p);
    p.isz = xcs_dtype_size(x->dtype);
    p.ni = numel(idx->ndim, idx->shape);
    int64_t n = flat ? numel(x->ndim, x->shape) : x->shape[axis];
    if (flat) {
        p.no = p.nin = 0;
        p.inner = 1;
    } else {
        p.no = collapse(axis, x->shape, x->strides, p.oshape, p.ostride);
        p.nin = collapse(x->ndim - axis - 1, x->shape + axis + 1, x->strides + axis + 1,
                         p.ishape, p.istride);
        p.inner = numel(x->ndim - axis - 1, x->shape + axis + 1);
    }
    int64_t outer = flat ? 1 : numel(axis, x->shape);
    int64_t rows = outer * p.ni, total = rows * p.inner;
    if (total == 0) return XCS_OK;
    /* one element (nin == 0) goes through copy_elem, cheaper than memcpy */
    p.inner_contig = p.nin == 1 && p.istride[0] == 1;
    const bool flat_run = flat && xcs_tensor_is_contiguous(x); /* flat index = element offset */
    if ((flat_run || (!flat && p.no == 0 && p.inner == 1)) && xcs_tensor_is_contiguous(idx)) {
        const int64_t bad = gather1(xcs_tensor_data(x), idx, xcs_tensor_data(out), p.ni, n,
                                    flat_run ? 1 : x->strides[axis], p.isz);
        if (bad == 0) return XCS_OK;
        /* else (bad > 0) the general path below finds the first bad index for the message */
    }

    int64_t *off = malloc((size_t)p.ni * sizeof *off);
    if (!off) return xcs_error(XCS_ERR_MEMORY, "take: cannot allocate %lld offsets",
                               (long long)p.ni);
    xcs_status st = index_offsets(idx, x, n, flat, flat ? 0 : x->strides[axis], off);
    if (st != XCS_OK) {
        free(off);
        return st;
    }
    p.off = off;
    p.xbase = xcs_tensor_data(x);
    p.obase = xcs_tensor_data(out);

#ifdef _OPENMP
    if (total >= XCS_CPU_PAR_MIN && rows > 1) {
#pragma omp parallel
        {
            int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
            take_rows(&p, rows * t / nt, rows * (t + 1) / nt);
        }
    } else
#endif
    {
        take_rows(&p, 0, rows);
    }
    free(off);
    return XCS_OK;
}
