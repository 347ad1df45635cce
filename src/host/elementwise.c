/* elementwise.c — the CPU backend's elementwise driver (xcs_cpu_elementwise)
 * and the creation kernels fill and iota.
 *
 * Plan.  The output is C-contiguous; inputs are strided views broadcast to
 * its shape (stride 0 on broadcast dims, any sign, any dtype).  Size-1 dims
 * are dropped and neighbouring dims merged wherever every operand sees them
 * as one run, so a contiguous or a plainly broadcast operand ends up 1-D.
 * The output is then cut into chunks of at most EW_CHUNK elements (ew_shape):
 * pieces of one row when rows are long (>= EW_ROW_MIN), runs spanning
 * several short rows otherwise, and 2-D tiles of the last two dims when an
 * input is transposed (its rows would touch a new cache line and page per
 * element; a tile 32 wide keeps 32 lines live, and numpy-like speed).  Each
 * chunk is:
 *   1. for each input, made a contiguous array of the dtype the kernel reads
 *      (ew_kernels.h): the input's own memory when its dtype already matches
 *      and the chunk is a stride-1 run of it (no copy); a buffer filled once
 *      when the input is one broadcast scalar; otherwise a gather+convert
 *      into a per-thread stack buffer (segment by segment along rows);
 *   2. passed to the contiguous kernel, which writes straight into the
 *      output when the output dtype is the kernel's, else into a buffer that
 *      is then converted into the output.
 * CAST and COPY skip step 2: the gather converts straight into the output.
 * Buffers are EW_CHUNK elements of at most 8 bytes: 4 of them (3 inputs, 1
 * output) are 32 KiB, so a chunk's working set stays in L1.
 *
 * Parallelism: chunks are split statically over OpenMP threads when the
 * output has at least XCS_CPU_PAR_MIN elements, so each thread writes (and
 * first-touches) one contiguous part of the output.  Kernels report integer
 * division by zero and negative integer powers as bits OR-reduced over the
 * region; the error is recorded after it, on the calling thread (xcs_error
 * is thread-local).  Nothing here is global or mutable.
 *
 * Everything borrows its arguments and writes the preallocated output. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_kernels.h"
#include "ew_kernels.h"

#define EW_CHUNK 1024  /* elements per chunk */
#define EW_ROW_MIN 256 /* rows at least this long are chunked row by row */
#define EW_MAX_IN 3
#define EW_TILE_W 32  /* tile width: lines a transposed input keeps live */

typedef enum ew_mode {
    EW_DIRECT,  /* kernel reads the operand's memory: dtype matches, stride 1 */
    EW_SCALAR,  /* one value broadcast everywhere: a pre-filled buffer */
    EW_GATHER,  /* strided and/or converted into a buffer per chunk */
} ew_mode;

/* How the output is cut into chunks. */
typedef enum ew_shape {
    EW_ROWS,  /* pieces of one row (1-D, or rows >= EW_ROW_MIN) */
    EW_FLAT,  /* runs of EW_CHUNK that span several short rows */
    EW_TILES, /* tile_h x tile_w blocks of the last two dims: some input is
               * transposed, and walking a row of it would touch a new cache
               * line and page per element */
} ew_shape;

typedef struct ew_operand {
    const char *base;              /* the operand's element [0, ..., 0] */
    int64_t strides[XCS_MAX_DIMS]; /* per collapsed dim, in elements */
    size_t isize, ksize;           /* bytes per element: stored, kernel */
    ew_mode mode;
    xcs_ew_convert_fn conv;        /* stored dtype -> kernel dtype */
    const void *scalar;            /* EW_SCALAR: EW_CHUNK copies */
} ew_operand;

typedef struct ew_plan {
    int ndim;                      /* collapsed, >= 1 */
    int64_t shape[XCS_MAX_DIMS];
    int64_t numel, chunk, nchunks, chunks_per_row;
    ew_shape shape_kind;
    int64_t tile_h, tile_w, tiles_r, tiles_c; /* EW_TILES */
    int n_in;
    ew_operand in[EW_MAX_IN];
    xcs_ew_kernel kernel;          /* NULL for CAST/COPY */
    char *out;
    size_t osize, kosize;          /* bytes per element: output, kernel output */
    xcs_ew_convert_fn out_conv;    /* kernel output -> output dtype, or NULL */
} ew_plan;

/* Drops size-1 dims and merges dim d into d+1 where every operand has
 * stride[d] == stride[d+1] * shape[d+1] (output strides are C-contiguous).
 * strides[k] are the n operands' strides, rewritten in place. */
static int ew_collapse(int ndim, const int64_t *shape_in, int n, int64_t (*strides)[XCS_MAX_DIMS],
                       int64_t *shape) {
    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape_in[d] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < n && merge; k++)
            merge = strides[k][nd - 1] == strides[k][d] * shape_in[d];
        if (merge) {
            shape[nd - 1] *= shape_in[d];
            for (int k = 0; k < n; k++) strides[k][nd - 1] = strides[k][d];
        } else {
            shape[nd] = shape_in[d];
            for (int k = 0; k < n; k++) strides[k][nd] = strides[k][d];
            nd++;
        }
    }
    if (nd == 0) { /* a single element */
        shape[0] = 1;
        for (int k = 0; k < n; k++) strides[k][0] = 0;
        nd = 1;
    }
    return nd;
}

/* Offset (elements) of flat output index s in operand o, with the index. */
static int64_t ew_unravel(const ew_plan *p, const ew_operand *o, int64_t s, xcs_strided_walk *w) {
    return xcs_walk_start(w, p->ndim, p->shape, o->strides, s);
}

/* Converts elements [s, s+len) of operand o (in output order) into dst. */
static void ew_gather(const ew_plan *p, const ew_operand *o, int64_t s, int64_t len, char *dst) {
    xcs_strided_walk w;
    ew_unravel(p, o, s, &w);
    const int64_t istride = o->strides[p->ndim - 1];
    while (len > 0) {
        int64_t seg = xcs_walk_run(&w, len);
        o->conv(seg, o->base + w.off * (int64_t)o->isize, istride, dst);
        dst += seg * (int64_t)o->ksize;
        len -= seg;
        xcs_walk_advance(&w, seg);
    }
}

/* Chunk c -> flat output index of its first element, its length, and (for
 * tiles) its height and width; elsewhere h = 1, w = len. */
static void ew_chunk_range(const ew_plan *p, int64_t c, int64_t *s, int64_t *h, int64_t *w) {
    const int64_t inner = p->shape[p->ndim - 1];
    if (p->shape_kind == EW_ROWS) {
        int64_t row = c / p->chunks_per_row, j = (c % p->chunks_per_row) * p->chunk;
        *s = row * inner + j;
        *h = 1;
        *w = inner - j < p->chunk ? inner - j : p->chunk;
    } else if (p->shape_kind == EW_FLAT) {
        *s = c * p->chunk;
        *h = 1;
        *w = p->numel - *s < p->chunk ? p->numel - *s : p->chunk;
    } else {
        const int64_t rows = p->shape[p->ndim - 2], per = p->tiles_r * p->tiles_c;
        int64_t outer = c / per, tr = c % per / p->tiles_c, tc = c % p->tiles_c;
        int64_t r0 = tr * p->tile_h, c0 = tc * p->tile_w;
        *s = (outer * rows + r0) * inner + c0;
        *h = rows - r0 < p->tile_h ? rows - r0 : p->tile_h;
        *w = inner - c0 < p->tile_w ? inner - c0 : p->tile_w;
    }
}

/* Converts an h x w tile of operand o whose first element is at flat
 * output index s into dst (row-major). */
static void ew_gather_tile(const ew_plan *p, const ew_operand *o, int64_t s, int64_t h, int64_t w, char *dst) {
    xcs_strided_walk at;
    const int64_t off = ew_unravel(p, o, s, &at);
    const int64_t sr = o->strides[p->ndim - 2], sc = o->strides[p->ndim - 1];
    for (int64_t r = 0; r < h; r++)
        o->conv(w, o->base + (off + r * sr) * (int64_t)o->isize, sc, dst + r * w * (int64_t)o->ksize);
}

typedef struct ew_buffers {
    _Alignas(64) char in[EW_MAX_IN][EW_CHUNK * 8];
    _Alignas(64) char out[EW_CHUNK * 8];
} ew_buffers;

/* Writes the h x w kernel-output tile in src (row-major) into the output. */
static void ew_scatter_tile(const ew_plan *p, int64_t s, int64_t h, int64_t w, const char *src) {
    const int64_t inner = p->shape[p->ndim - 1];
    for (int64_t r = 0; r < h; r++) {
        char *dst = p->out + (s + r * inner) * (int64_t)p->osize;
        const char *row = src + r * w * (int64_t)p->kosize;
        if (p->out_conv)
            p->out_conv(w, row, 1, dst);
        else
            memcpy(dst, row, (size_t)w * p->osize);
    }
}

static unsigned ew_run_chunk(const ew_plan *p, int64_t c, ew_buffers *b) {
    int64_t s, h, w;
    xcs_strided_walk at;
    ew_chunk_range(p, c, &s, &h, &w);
    const int64_t len = h * w;
    const bool tiles = p->shape_kind == EW_TILES;
    char *dst = p->out + s * (int64_t)p->osize;
    if (!p->kernel) { /* CAST / COPY: the gather converts into the output */
        const ew_operand *o = &p->in[0];
        char *to = (p->out_conv || tiles) ? b->out : dst;
        if (o->mode == EW_SCALAR)
            memcpy(to, o->scalar, (size_t)len * o->ksize);
        else if (tiles)
            ew_gather_tile(p, o, s, h, w, to);
        else if (o->mode == EW_GATHER)
            ew_gather(p, o, s, len, to);
        else
            memcpy(to, o->base + ew_unravel(p, o, s, &at) * (int64_t)o->isize, (size_t)len * o->ksize);
        if (tiles)
            ew_scatter_tile(p, s, h, w, b->out);
        else if (p->out_conv)
            p->out_conv(len, b->out, 1, dst);
        return 0;
    }
    const void *args[EW_MAX_IN] = {NULL, NULL, NULL};
    for (int k = 0; k < p->n_in; k++) {
        const ew_operand *o = &p->in[k];
        if (o->mode == EW_SCALAR) {
            args[k] = o->scalar;
        } else if (o->mode == EW_DIRECT) {
            args[k] = o->base + ew_unravel(p, o, s, &at) * (int64_t)o->isize;
        } else {
            if (tiles)
                ew_gather_tile(p, o, s, h, w, b->in[k]);
            else
                ew_gather(p, o, s, len, b->in[k]);
            args[k] = b->in[k];
        }
    }
    if (!p->out_conv && !tiles) return p->kernel(len, args[0], args[1], args[2], dst);
    unsigned err = p->kernel(len, args[0], args[1], args[2], b->out);
    if (tiles)
        ew_scatter_tile(p, s, h, w, b->out);
    else
        p->out_conv(len, b->out, 1, dst);
    return err;
}

static bool ew_arity_ok(xcs_op_kind kind, int n_in) {
    switch (kind) {
    case XCS_KIND_UNARY: case XCS_KIND_CAST: case XCS_KIND_COPY: return n_in == 1;
    case XCS_KIND_BINARY: return n_in == 2;
    case XCS_KIND_TERNARY: return n_in == 3;
    default: return false;
    }
}

xcs_status xcs_cpu_elementwise(xcs_op op, int n_in, const xcs_tensor *const *in,
                               xcs_dtype compute, xcs_tensor *out) {
    const xcs_op_info *info = xcs_op_get_info(op);
    if (!info || !ew_arity_ok(info->kind, n_in))
        return xcs_error(XCS_ERR_INTERNAL, "cpu elementwise: %s is not an elementwise op of arity %d",
                         xcs_op_name(op), n_in);
    if ((unsigned)compute >= XCS_DTYPE_COUNT || (unsigned)out->dtype >= XCS_DTYPE_COUNT)
        return xcs_error(XCS_ERR_INTERNAL, "cpu elementwise %s: invalid dtype", info->name);
    const bool identity = info->kind == XCS_KIND_CAST || info->kind == XCS_KIND_COPY;
    ew_plan p = {0};
    if (!identity && !(p.kernel = xcs_ew_kernel_get(op, compute)))
        return xcs_error(XCS_ERR_TYPE, "%s: not supported for dtype %s", info->name,
                         xcs_dtype_name(compute));
    for (int k = 0; k < n_in; k++) {
        if (in[k]->ndim != out->ndim)
            return xcs_error(XCS_ERR_INTERNAL, "cpu elementwise %s: input %d has %d dims, output %d",
                             info->name, k, in[k]->ndim, out->ndim);
        for (int d = 0; d < out->ndim; d++)
            if (in[k]->shape[d] != out->shape[d] && in[k]->strides[d] != 0)
                return xcs_error(XCS_ERR_INTERNAL, "cpu elementwise %s: input %d not broadcast to the output",
                                 info->name, k);
    }
    p.numel = xcs_tensor_numel(out);
    if (p.numel == 0) return XCS_OK;

    /* collapse dims over inputs + output (output strides: C-contiguous) */
    int64_t strides[EW_MAX_IN + 1][XCS_MAX_DIMS];
    for (int k = 0; k < n_in; k++) memcpy(strides[k], in[k]->strides, sizeof strides[k]);
    xcs_strides_contiguous(out->ndim, out->shape, strides[n_in]);
    p.ndim = ew_collapse(out->ndim, out->shape, n_in + 1, strides, p.shape);

    /* Tiles when some input walks memory fastest along the next-to-last
     * dim (a transpose): see ew_shape. */
    const int64_t inner = p.shape[p.ndim - 1];
    p.shape_kind = p.ndim == 1 || inner >= EW_ROW_MIN ? EW_ROWS : EW_FLAT;
    for (int k = 0; k < n_in && p.ndim >= 2; k++) {
        int64_t sr = strides[k][p.ndim - 2], sc = strides[k][p.ndim - 1];
        if (sr != 0 && (sr < 0 ? -sr : sr) < (sc < 0 ? -sc : sc)) p.shape_kind = EW_TILES;
    }
    if (p.shape_kind == EW_ROWS) { /* equal pieces per row, so no row ends in a sliver */
        p.chunks_per_row = (inner + EW_CHUNK - 1) / EW_CHUNK;
        p.chunk = (inner + p.chunks_per_row - 1) / p.chunks_per_row;
        p.nchunks = p.numel / inner * p.chunks_per_row;
    } else if (p.shape_kind == EW_FLAT) {
        p.chunk = EW_CHUNK;
        p.nchunks = (p.numel + EW_CHUNK - 1) / EW_CHUNK;
    } else {
        const int64_t rows = p.shape[p.ndim - 2];
        p.tile_w = inner < EW_TILE_W ? inner : EW_TILE_W;
        p.tile_h = EW_CHUNK / p.tile_w < rows ? EW_CHUNK / p.tile_w : rows;
        p.chunk = p.tile_h * p.tile_w;
        p.tiles_r = (rows + p.tile_h - 1) / p.tile_h;
        p.tiles_c = (inner + p.tile_w - 1) / p.tile_w;
        p.nchunks = p.numel / (rows * inner) * p.tiles_r * p.tiles_c;
    }

    /* Scalars are converted once, before any thread starts; kept here. */
    _Alignas(64) char scalar_bufs[EW_MAX_IN][EW_CHUNK * 8];
    const xcs_dtype kout = identity ? compute : xcs_ew_out_dtype(op, compute);
    p.n_in = n_in;
    for (int k = 0; k < n_in; k++) {
        ew_operand *o = &p.in[k];
        const xcs_dtype kdt = identity ? compute : xcs_ew_in_dtype(op, k, compute);
        o->base = xcs_tensor_data(in[k]);
        memcpy(o->strides, strides[k], sizeof o->strides);
        o->isize = xcs_dtype_size(in[k]->dtype);
        o->ksize = xcs_dtype_size(kdt);
        o->conv = xcs_ew_convert_get(in[k]->dtype, kdt);
        bool all_zero = true;
        for (int d = 0; d < p.ndim; d++) all_zero = all_zero && o->strides[d] == 0;
        if (all_zero) {
            o->mode = EW_SCALAR;
            o->conv(1, o->base, 0, scalar_bufs[k]);
            for (int64_t filled = 1; filled < p.chunk; filled *= 2) { /* replicate */
                int64_t m = filled < p.chunk - filled ? filled : p.chunk - filled;
                memcpy(scalar_bufs[k] + filled * (int64_t)o->ksize, scalar_bufs[k], (size_t)(m * (int64_t)o->ksize));
            }
            o->scalar = scalar_bufs[k];
        } else if (in[k]->dtype == kdt && o->strides[p.ndim - 1] == 1 && p.shape_kind == EW_ROWS) {
            o->mode = EW_DIRECT;
        } else {
            o->mode = EW_GATHER;
        }
    }
    p.out = xcs_tensor_data(out);
    p.osize = xcs_dtype_size(out->dtype);
    p.kosize = xcs_dtype_size(kout);
    p.out_conv = kout != out->dtype ? xcs_ew_convert_get(kout, out->dtype) : NULL;

    unsigned err = 0;
    if (p.numel >= XCS_CPU_PAR_MIN && p.nchunks > 1) {
#pragma omp parallel reduction(| : err)
        {
            ew_buffers b;
#pragma omp for schedule(static)
            for (int64_t c = 0; c < p.nchunks; c++) err |= ew_run_chunk(&p, c, &b);
        }
    } else {
        ew_buffers b;
        for (int64_t c = 0; c < p.nchunks; c++) err |= ew_run_chunk(&p, c, &b);
    }
    if (err & XCS_EW_ERR_ZERO_DIV)
        return xcs_error(XCS_ERR_ZERO_DIV, "integer division by zero in %s (dtype %s)", info->name,
                         xcs_dtype_name(compute));
    if (err & XCS_EW_ERR_NEG_POW)
        return xcs_error(XCS_ERR_VALUE, "Integers to negative integer powers are not allowed (%s, dtype %s)",
                         info->name, xcs_dtype_name(compute));
    return XCS_OK;
}

/* ---------------------------------------------------------------- fill, iota */

static xcs_status ew_check_contiguous(const xcs_tensor *out, const char *what) {
    if (!xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "cpu %s: output must be C-contiguous", what);
    if ((unsigned)out->dtype >= XCS_DTYPE_COUNT)
        return xcs_error(XCS_ERR_INTERNAL, "cpu %s: invalid dtype", what);
    return XCS_OK;
}

/* value is converted like a float64 -> dtype cast (NaN/out-of-range to an
 * integer dtype gives INT_MIN, anything nonzero to bool is true). */
xcs_status xcs_cpu_fill(xcs_tensor *out, double value) {
    xcs_status st = ew_check_contiguous(out, "fill");
    if (st) return st;
    const int64_t n = xcs_tensor_numel(out);
    const size_t size = xcs_dtype_size(out->dtype);
    union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; } v;
    xcs_ew_convert_get(XCS_F64, out->dtype)(1, &value, 1, &v);
    char *base = xcs_tensor_data(out);
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
    for (int64_t c = 0; c < (n + EW_CHUNK - 1) / EW_CHUNK; c++) {
        int64_t s = c * EW_CHUNK, m = n - s < EW_CHUNK ? n - s : EW_CHUNK;
        char *p = base + s * (int64_t)size;
        if (size == 1) {
            memset(p, v.u8, (size_t)m);
        } else if (size == 2) {
            uint16_t *q = (uint16_t *)(void *)p;
            for (int64_t i = 0; i < m; i++) q[i] = v.u16;
        } else if (size == 4) {
            uint32_t *q = (uint32_t *)(void *)p;
            for (int64_t i = 0; i < m; i++) q[i] = v.u32;
        } else {
            uint64_t *q = (uint64_t *)(void *)p;
            for (int64_t i = 0; i < m; i++) q[i] = v.u64;
        }
    }
    return XCS_OK;
}

/* numpy's arange fill: out[0] = start, out[1] = start + step (each converted
 * to the dtype), then out[i] = out[0] + i * (out[1] - out[0]) in the dtype's
 * own arithmetic.  For integer dtypes that is exact integer arithmetic
 * (wrapping, like numpy), for floats the rounding numpy shows. */
xcs_status xcs_cpu_iota(xcs_tensor *out, double start, double step) {
    xcs_status st = ew_check_contiguous(out, "iota");
    if (st) return st;
    const int64_t n = xcs_tensor_numel(out);
    void *base = xcs_tensor_data(out);
    const double second = start + step;
    switch (out->dtype) {
    case XCS_F32: {
        float a0 = (float)start, d = (float)second - a0, *q = base;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float step_i = (float)i * d; /* own statement: never fused into an fma */
            q[i] = a0 + step_i;
        }
        if (n > 1) q[1] = (float)second;
        break;
    }
    case XCS_F16:
    case XCS_BF16: { /* numpy's HALF_fill: the two ends rounded, the rest in float32 */
        xcs_ew_convert_fn to16 = xcs_ew_convert_get(XCS_F32, out->dtype);
        xcs_ew_convert_fn from16 = xcs_ew_convert_get(out->dtype, XCS_F32);
        uint16_t h[2], *q = base;
        float f[2];
        xcs_ew_convert_get(XCS_F64, out->dtype)(1, &start, 1, &h[0]);
        xcs_ew_convert_get(XCS_F64, out->dtype)(1, &second, 1, &h[1]);
        from16(2, h, 1, f);
        const float a0 = f[0], d = f[1] - f[0];
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
        for (int64_t c = 0; c < (n + EW_CHUNK - 1) / EW_CHUNK; c++) {
            int64_t s = c * EW_CHUNK, m = n - s < EW_CHUNK ? n - s : EW_CHUNK;
            float buf[EW_CHUNK];
            for (int64_t i = 0; i < m; i++) {
                float step_i = (float)(s + i) * d;
                buf[i] = a0 + step_i;
            }
            to16(m, buf, 1, q + s);
        }
        for (int64_t i = 0; i < n && i < 2; i++) q[i] = h[i];
        break;
    }
    case XCS_F64: {
        double a0 = start, d = second - a0, *q = base;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            double step_i = (double)i * d;
            q[i] = a0 + step_i;
        }
        if (n > 1) q[1] = second;
        break;
    }
    case XCS_I32:
    case XCS_I64: {
        int64_t a0, a1;
        xcs_ew_convert_get(XCS_F64, XCS_I64)(1, &start, 1, &a0);
        xcs_ew_convert_get(XCS_F64, XCS_I64)(1, &second, 1, &a1);
        const uint64_t u0 = (uint64_t)a0, ud = (uint64_t)a1 - (uint64_t)a0;
        if (out->dtype == XCS_I64) {
            int64_t *q = base;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
            for (int64_t i = 0; i < n; i++) q[i] = (int64_t)(u0 + (uint64_t)i * ud);
        } else {
            int32_t *q = base;
#pragma omp parallel for schedule(static) if (n >= XCS_CPU_PAR_MIN)
            for (int64_t i = 0; i < n; i++) q[i] = (int32_t)(uint32_t)(u0 + (uint64_t)i * ud);
        }
        break;
    }
    case XCS_BOOL: {
        uint8_t *q = base;
        for (int64_t i = 0; i < n; i++) q[i] = start + (double)i * step != 0;
        break;
    }
    default:
        return xcs_error(XCS_ERR_INTERNAL, "cpu iota: invalid dtype");
    }
    return XCS_OK;
}
