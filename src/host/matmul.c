/* matmul.c — batched GEMM for the CPU backend: a cache-blocked kernel for
 * every dtype, and OpenBLAS for float32/float64 when the build has CBLAS.
 *
 * Blocked kernel (the Goto/BLIS scheme: Goto & van de Geijn, "Anatomy of
 * high-performance matrix multiplication", TOMS 2008):
 *   for jc in N by NC:                       B block  KC x NC  -> L3
 *     for pc in K by KC:  pack B[pc:, jc:] into NR-wide panels (k-major)
 *       for ic in M by MC:  pack A[ic:, pc:] into MR-tall panels -> L2
 *         for jr in NC by NR:                B panel  KC x NR  -> L1
 *           for ir in MC by MR:  micro-kernel: MR x NR tile += A panel * B panel
 * Packing absorbs any strides (transposed, broadcast, negative), converts
 * bool/int inputs to the compute type and zero-pads edge panels, so the
 * micro-kernel only ever sees full, aligned, unit-stride panels.  The
 * micro-kernel keeps the MR x NR tile in 12 vector registers (6 rows x 2
 * vectors; with AVX2 that is 6x16 for f32, 6x8 for f64; with AVX-512, 6x32
 * and 6x16) and does one broadcast-FMA per row and vector per k: 12 FMAs per
 * 2 loads of B.  FMA is requested explicitly (intrinsic) because -std=c11
 * turns off contraction.
 *
 * Each element of C is the sum over KC blocks (in k order) of a fresh FMA
 * chain in k order, whatever the thread split, so results do not depend on
 * the thread count.
 *
 * Threads: B packing is shared (omp for over panels); then each thread takes
 * a share of M (in MR units) or, when M is short, of the NR panels, and packs
 * its own A block.  Many small matrices run one per thread instead.
 * Batch dims over which b is broadcast are folded into M when a and out
 * allow it (a [B, M, K] @ b [K, N] is one [B*M, K] @ [K, N] GEMM).
 *
 * Measured (`test_matmul --bench`, 2-core Zen 3 VM, OpenBLAS 0.3.21 pthreads,
 * best of runs, GFLOP/s blocked vs OpenBLAS; the VM is shared, so +-15%):
 *   1 thread   f32 512: 88 vs 90   1024: 87 vs 89   2048: 57 vs 61   f64 1024: 32 vs 29
 *   2 threads  f32 512: 130 vs 128  1024: 131 vs 128..153  2048: 127 vs 151
 *              f64 512: 61 vs 63    1024: 55 vs 46   2048: 56 vs 76
 * Before the C tile was prefetched and written straight from registers the
 * kernel ran at 0.6x OpenBLAS (C misses and spills in the write-back).
 * On a 2-core Sapphire Rapids VM (AVX-512, OpenBLAS 0.3.21 SkylakeX), f32,
 * 2 threads: 6x16 (AVX2) 197-215 GFLOP/s at 512^3..2048^3 and an MLP's
 * 256 x 784 x 512, 0.60-0.73x OpenBLAS; 6x32 (AVX-512) 268-322, 0.9-1.1x.
 *
 * bool matmul is logical: out[i,j] = any_k(a[i,k] and b[k,j]) (computed as a
 * uint32 count, then != 0).  int32/int64 wrap like numpy. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "xcs_host.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef XCS_HAVE_CBLAS
#include <cblas.h>
#endif
#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
#define MM_HAVE_FMA 1
#endif

#define MR 6

typedef float v8f __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef uint64_t v4u __attribute__((vector_size(32)));

#ifdef MM_HAVE_FMA
#define MADD_F32(a, b, c) ((v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define MADD_F64(a, b, c) ((v4d)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
#else
#define MADD_F32(a, b, c) ((c) + (a) * (b))
#define MADD_F64(a, b, c) ((c) + (a) * (b))
#endif
#define MADD_INT(a, b, c) ((c) + (a) * (b))
/* One unaligned vector store (an intrinsic: copies of several vectors would
 * be merged into a memcpy call through the stack). */
#ifdef MM_HAVE_FMA
#define STOREU_F32(p, v) _mm256_storeu_ps((p), (__m256)(v))
#define STOREU_F64(p, v) _mm256_storeu_pd((p), (__m256d)(v))
/* A non-temporal store (p 32-byte aligned): the line is neither read for
 * ownership nor kept in cache.  A thread fences (xcs_host_stream_fence) before
 * its stores are read elsewhere. */
#define STREAM_F32(p, v) _mm256_stream_ps((p), (__m256)(v))
#define STREAM_F64(p, v) _mm256_stream_pd((p), (__m256d)(v))
#else
#define STOREU_F32(p, v) memcpy((p), &(v), sizeof(v))
#define STOREU_F64(p, v) memcpy((p), &(v), sizeof(v))
#define STREAM_F32 STOREU_F32
#define STREAM_F64 STOREU_F64
#endif
#define SPLAT8(V, x) ((V){x, x, x, x, x, x, x, x})
#define SPLAT4(V, x) ((V){x, x, x, x})
#define SPLAT16(V, x) ((V){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})

/* With AVX-512 the float micro-kernels use 64-byte vectors (a 6 x 32 f32
 * tile, 6 x 16 f64): twice the multiply-adds an instruction.  Each element
 * is still one in-order FMA chain over k, so the bits are the same. */
#if defined(MM_HAVE_FMA) && defined(__AVX512F__)
#define MM_WIDE 1
typedef float v16f __attribute__((vector_size(64)));
typedef double v8d __attribute__((vector_size(64)));
#define MADD_F32W(a, b, c) ((v16f)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define MADD_F64W(a, b, c) ((v8d)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
#endif

/* Per compute type: packing, micro-kernel and write-back. */
typedef struct gemm_type {
    int nr;
    int64_t mc, kc, nc;
    size_t tsz;
    /* packs rows [0, m) x cols [0, k) of a (strides rs, cs) into ceil(m/MR) panels */
    void (*pack_a)(const char *a, int64_t rs, int64_t cs, int64_t m, int64_t k, void *dst);
    /* packs rows [0, k) x cols [0, n <= NR) of b into one k x NR panel */
    void (*pack_b)(const char *b, int64_t rs, int64_t cs, int64_t k, int64_t n, void *dst);
    /* tile = A panel * B panel; or, when c is not NULL (full tile, unit column
     * stride, S == T), c[i*rs + j] = (acc ? c : 0) + product directly */
    void (*ukr)(int64_t k, const void *a, const void *b, void *tile, char *c, int64_t rs,
                bool acc);
    bool direct; /* ukr accepts c */
    /* c[:m, :n] = tile (or c += tile when acc) */
    void (*put)(const void *tile, int64_t m, int64_t n, char *c, int64_t rs, int64_t cs, bool acc);
} gemm_type;

/* S storage type, T compute type, V vector of VL T's (NR = 2 VL). */
#define GEMM_DEFINE(sfx, S, T, V, VL, SPLAT, MC, KC, NC, MADD, PUT, PUT_ACC, DIRECT)            \
    static void pack_a_##sfx(const char *ap, int64_t rs, int64_t cs, int64_t m, int64_t k,       \
                             void *dstp) {                                                      \
        const S *a = (const S *)(const void *)ap;                                               \
        T *dst = dstp;                                                                          \
        for (int64_t i0 = 0; i0 < m; i0 += MR, dst += MR * k) {                                 \
            int64_t mr = m - i0 < MR ? m - i0 : MR;                                             \
            for (int64_t p = 0; p < k; p++)                                                     \
                for (int64_t i = 0; i < MR; i++)                                                \
                    dst[p * MR + i] = i < mr ? (T)a[(i0 + i) * rs + p * cs] : (T)0;             \
        }                                                                                       \
    }                                                                                           \
    static void pack_b_##sfx(const char *bp, int64_t rs, int64_t cs, int64_t k, int64_t n,       \
                             void *dstp) {                                                      \
        const S *b = (const S *)(const void *)bp;                                               \
        T *dst = dstp;                                                                          \
        enum { NR_ = 2 * VL };                                                                  \
        if (cs == 1 && n == NR_) {                                                              \
            for (int64_t p = 0; p < k; p++)                                                     \
                for (int j = 0; j < NR_; j++) dst[p * NR_ + j] = (T)b[p * rs + j];              \
            return;                                                                             \
        }                                                                                       \
        for (int64_t p = 0; p < k; p++)                                                         \
            for (int64_t j = 0; j < NR_; j++)                                                   \
                dst[p * NR_ + j] = j < n ? (T)b[p * rs + j * cs] : (T)0;                        \
    }                                                                                           \
    static void ukr_##sfx(int64_t k, const void *ap, const void *bp, void *tilep, char *cp,      \
                          int64_t rs, bool acc) {                                               \
        const T *a = ap;                                                                        \
        const T *b = bp;                                                                        \
        V c0[MR], c1[MR];                                                                       \
        if (DIRECT && cp) /* C rows are far apart: start fetching them now */                   \
            for (int i = 0; i < MR; i++) {                                                      \
                __builtin_prefetch(cp + i * rs * (int64_t)sizeof(T), 1);                        \
                __builtin_prefetch(cp + i * rs * (int64_t)sizeof(T) + 2 * sizeof(V) - 1, 1);    \
            }                                                                                   \
        _Pragma("GCC unroll 6") for (int i = 0; i < MR; i++) c0[i] = c1[i] = (V){0};            \
        for (int64_t p = 0; p < k; p++, a += MR, b += 2 * VL) {                                 \
            V b0 = *(const V *)(const void *)b, b1 = *(const V *)(const void *)(b + VL);        \
            _Pragma("GCC unroll 6") for (int i = 0; i < MR; i++) {                              \
                V ai = SPLAT(V, a[i]);                                                          \
                c0[i] = MADD(ai, b0, c0[i]);                                                    \
                c1[i] = MADD(ai, b1, c1[i]);                                                    \
            }                                                                                   \
        }                                                                                       \
        if (DIRECT && cp) {                                                                     \
            _Pragma("GCC unroll 6") for (int i = 0; i < MR; i++) {                              \
                char *ci = cp + i * rs * (int64_t)sizeof(T);                                    \
                if (acc) {                                                                      \
                    V o0, o1;                                                                   \
                    memcpy(&o0, ci, sizeof(V));                                                 \
                    memcpy(&o1, ci + sizeof(V), sizeof(V));                                     \
                    c0[i] += o0;                                                                \
                    c1[i] += o1;                                                                \
                }                                                                               \
                memcpy(ci, &c0[i], sizeof(V));                                                  \
                memcpy(ci + sizeof(V), &c1[i], sizeof(V));                                      \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        T *tile = tilep;                                                                        \
        _Pragma("GCC unroll 6") for (int i = 0; i < MR; i++) {                                  \
            memcpy(tile + i * 2 * VL, &c0[i], sizeof(V));                                       \
            memcpy(tile + i * 2 * VL + VL, &c1[i], sizeof(V));                                  \
        }                                                                                       \
    }                                                                                           \
    static void put_##sfx(const void *tilep, int64_t m, int64_t n, char *cp, int64_t rs,         \
                          int64_t cs, bool acc) {                                               \
        const T *t = tilep;                                                                     \
        S *c = (S *)(void *)cp;                                                                 \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const T *ti = t + i * 2 * VL;                                                       \
            S *ci = c + i * rs;                                                                 \
            if (cs == 1) {                                                                      \
                if (acc) for (int64_t j = 0; j < n; j++) ci[j] = PUT_ACC(ci[j], ti[j]);         \
                else for (int64_t j = 0; j < n; j++) ci[j] = PUT(ti[j]);                        \
            } else {                                                                            \
                if (acc) for (int64_t j = 0; j < n; j++) ci[j * cs] = PUT_ACC(ci[j * cs], ti[j]); \
                else for (int64_t j = 0; j < n; j++) ci[j * cs] = PUT(ti[j]);                   \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    static const gemm_type gemm_##sfx = {2 * VL, MC, KC, NC, sizeof(T), pack_a_##sfx,           \
                                         pack_b_##sfx, ukr_##sfx, DIRECT, put_##sfx};

#define PUT_SAME(t) (t)
#define ACC_ADD(c, t) ((c) + (t))
#define PUT_I32(t) ((int32_t)(t))
#define ACC_I32(c, t) ((int32_t)((uint32_t)(c) + (t)))
#define PUT_I64(t) ((int64_t)(t))
#define ACC_I64(c, t) ((int64_t)((uint64_t)(c) + (t)))
#define PUT_BOOL(t) ((uint8_t)((t) != 0))
#define ACC_BOOL(c, t) ((uint8_t)((c) | ((t) != 0)))

/* Block sizes for Zen 3 / Haswell-class cores (32 KiB L1d, 512 KiB+ L2):
 * KC x NR panel of B in L1 (16 KiB), MC x KC block of A in L2 (f32 ~170 KiB),
 * KC x NC block of B in L3.  MC is a multiple of MR, NC of NR. */
#ifdef MM_WIDE
GEMM_DEFINE(f32, float, float, v16f, 16, SPLAT16, 168, 256, 4064, MADD_F32W, PUT_SAME, ACC_ADD, 1)
GEMM_DEFINE(f64, double, double, v8d, 8, SPLAT8, 84, 256, 2032, MADD_F64W, PUT_SAME, ACC_ADD, 1)
#else
GEMM_DEFINE(f32, float, float, v8f, 8, SPLAT8, 168, 256, 4080, MADD_F32, PUT_SAME, ACC_ADD, 1)
GEMM_DEFINE(f64, double, double, v4d, 4, SPLAT4, 84, 256, 2040, MADD_F64, PUT_SAME, ACC_ADD, 1)
#endif
GEMM_DEFINE(i32, int32_t, uint32_t, v8u, 8, SPLAT8, 168, 256, 4080, MADD_INT, PUT_I32, ACC_I32, 0)
GEMM_DEFINE(i64, int64_t, uint64_t, v4u, 4, SPLAT4, 84, 256, 2040, MADD_INT, PUT_I64, ACC_I64, 0)
GEMM_DEFINE(b, uint8_t, uint32_t, v8u, 8, SPLAT8, 168, 256, 4080, MADD_INT, PUT_BOOL, ACC_BOOL, 0)

static const gemm_type *const gemm_table[XCS_DTYPE_COUNT] = {&gemm_b, &gemm_i32, &gemm_i64,
                                                             &gemm_f32, &gemm_f64};

/* ------------------------------------------------------------------ plan */

typedef struct mm_plan {
    int64_t M, N, K, nbatch;
    int nb; /* batch dims left after folding */
    int64_t bshape[XCS_MAX_DIMS], bsa[XCS_MAX_DIMS], bsb[XCS_MAX_DIMS], bso[XCS_MAX_DIMS];
    int64_t rsa, csa, rsb, csb, rsc, csc;
    const char *a, *b;
    char *c;
    int64_t sz; /* bytes per element of a, b and out */
    xcs_mm_epilogue *epi; /* blocked GEMM: called on each final block of C */
    bool stream;          /* unpacked path: aligned rows of C written with non-temporal stores */
} mm_plan;

static xcs_status mm_plan_build(mm_plan *p, const char *what, const xcs_tensor *a,
                                const xcs_tensor *b, const xcs_tensor *out) {
    int nd = out->ndim;
    if (a->dtype != b->dtype || a->dtype != out->dtype || (unsigned)a->dtype >= XCS_DTYPE_COUNT)
        return xcs_error(XCS_ERR_TYPE, "%s: dtypes %s @ %s -> %s must agree", what,
                         xcs_dtype_name(a->dtype), xcs_dtype_name(b->dtype),
                         xcs_dtype_name(out->dtype));
    if (!gemm_table[a->dtype])
        return xcs_error(XCS_ERR_TYPE, "%s: no GEMM kernel for %s (xcs_cpu_matmul computes it in float32)", what,
                         xcs_dtype_name(a->dtype));
    if (nd < 2 || a->ndim != nd || b->ndim != nd)
        return xcs_error(XCS_ERR_SHAPE, "%s: operands must be broadcast to out's %d dims (>= 2)",
                         what, nd);
    p->M = a->shape[nd - 2];
    p->K = a->shape[nd - 1];
    p->N = b->shape[nd - 1];
    if (b->shape[nd - 2] != p->K || out->shape[nd - 2] != p->M || out->shape[nd - 1] != p->N)
        return xcs_error(XCS_ERR_SHAPE, "%s: [%lld, %lld] @ [%lld, %lld] -> [%lld, %lld] does not agree",
                         what, (long long)p->M, (long long)p->K, (long long)b->shape[nd - 2],
                         (long long)p->N, (long long)out->shape[nd - 2],
                         (long long)out->shape[nd - 1]);
    p->sz = (int64_t)xcs_dtype_size(a->dtype);
    p->rsa = a->strides[nd - 2], p->csa = a->strides[nd - 1];
    p->rsb = b->strides[nd - 2], p->csb = b->strides[nd - 1];
    p->rsc = out->strides[nd - 2], p->csc = out->strides[nd - 1];
    p->a = xcs_tensor_data(a);
    p->b = xcs_tensor_data(b);
    p->c = xcs_tensor_data(out);
    p->nb = 0;
    p->nbatch = 1;
    p->epi = NULL;
    p->stream = false;
    bool fold = true; /* fold trailing batch dims into M while b is broadcast over them */
    for (int d = nd - 3; d >= 0; d--) {
        int64_t n = out->shape[d];
        if (a->shape[d] != n || b->shape[d] != n)
            return xcs_error(XCS_ERR_SHAPE, "%s: batch dim %d differs (%lld, %lld, out %lld)",
                             what, d, (long long)a->shape[d], (long long)b->shape[d], (long long)n);
        p->nbatch *= n;
        if (n == 1) continue;
        if (fold && b->strides[d] == 0 && p->M == 1) { /* one row: its row strides are the batch's */
            p->rsa = a->strides[d], p->rsc = out->strides[d];
            p->M = n;
            continue;
        }
        if (fold && b->strides[d] == 0 && a->strides[d] == p->M * p->rsa &&
            out->strides[d] == p->M * p->rsc) {
            p->M *= n;
            continue;
        }
        fold = false;
        int i = p->nb++;
        p->bshape[i] = n, p->bsa[i] = a->strides[d], p->bsb[i] = b->strides[d];
        p->bso[i] = out->strides[d];
    }
    /* batch dims were collected innermost first; the order does not matter */
    p->nbatch = 1;
    for (int i = 0; i < p->nb; i++) p->nbatch *= p->bshape[i];
    return XCS_OK;
}

/* Byte offsets of batch t in a, b and out. */
static void mm_batch(const mm_plan *p, int64_t t, const char **a, const char **b, char **c) {
    int64_t oa = 0, ob = 0, oc = 0;
    for (int i = 0; i < p->nb; i++) {
        int64_t j = t % p->bshape[i];
        t /= p->bshape[i];
        oa += j * p->bsa[i], ob += j * p->bsb[i], oc += j * p->bso[i];
    }
    *a = p->a + oa * p->sz;
    *b = p->b + ob * p->sz;
    *c = p->c + oc * p->sz;
}

static void zero_out(const mm_plan *p, char *c) {
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) memset(c + (i * p->rsc + j * p->csc) * p->sz, 0, p->sz);
}

/* ------------------------------------------------------------ blocked GEMM */

static void pack_b_panel(const gemm_type *g, const mm_plan *p, const char *B, char *bbuf,
                         int64_t jc, int64_t pc, int64_t kc, int64_t q) {
    int64_t nr = g->nr, j0 = jc + q * nr, n = p->N - j0 < nr ? p->N - j0 : nr;
    g->pack_b(B + (pc * p->rsb + j0 * p->csb) * p->sz, p->rsb, p->csb, kc, n,
              bbuf + q * kc * nr * (int64_t)g->tsz);
}

/* One GEMM C = A B with the plan's M, N, K and strides.  bbuf holds a KC x NC
 * block of B; abufs one MC x KC block of A per thread.  With `team`, every
 * thread of the current OpenMP team calls this and they share the work (B
 * packed once, by all); without, the caller runs it alone. */
static void gemm_team(const gemm_type *g, const mm_plan *p, const char *A, const char *B,
                      char *C, char *bbuf, char *abufs, size_t abuf_bytes, bool team) {
    int nt = 1, t = 0;
#ifdef _OPENMP
    if (team) {
        nt = omp_get_num_threads();
        t = omp_get_thread_num();
    }
#endif
    const int64_t nr = g->nr, sz = p->sz, tsz = (int64_t)g->tsz;
    char *abuf = abufs + (size_t)t * abuf_bytes;
    _Alignas(64) unsigned char tile[MR * 16 * 8];
    int64_t mtiles = (p->M + MR - 1) / MR;
    for (int64_t jc = 0; jc < p->N; jc += g->nc) {
        int64_t nc = p->N - jc < g->nc ? p->N - jc : g->nc, np = (nc + nr - 1) / nr;
        /* split M when it has enough MR tiles for every thread, else the panels */
        bool split_m = mtiles >= np || mtiles >= 8 * nt;
        int64_t m0 = 0, m1 = p->M, p0 = 0, p1 = np;
        if (split_m) {
            m0 = mtiles * t / nt * MR;
            m1 = mtiles * (t + 1) / nt * MR;
            if (m1 > p->M) m1 = p->M;
        } else {
            p0 = np * t / nt;
            p1 = np * (t + 1) / nt;
        }
        for (int64_t pc = 0; pc < p->K; pc += g->kc) {
            int64_t kc = p->K - pc < g->kc ? p->K - pc : g->kc;
            if (team) {
#pragma omp for schedule(static)
                for (int64_t q = 0; q < np; q++) pack_b_panel(g, p, B, bbuf, jc, pc, kc, q);
            } else {
                for (int64_t q = 0; q < np; q++) pack_b_panel(g, p, B, bbuf, jc, pc, kc, q);
            }
            for (int64_t ic = m0; ic < m1; ic += g->mc) {
                int64_t mc = m1 - ic < g->mc ? m1 - ic : g->mc;
                g->pack_a(A + (ic * p->rsa + pc * p->csa) * sz, p->rsa, p->csa, mc, kc, abuf);
                for (int64_t q = p0; q < p1; q++) {
                    int64_t j0 = jc + q * nr, n = p->N - j0 < nr ? p->N - j0 : nr;
                    const char *bp = bbuf + q * kc * nr * tsz;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t m = mc - ir < MR ? mc - ir : MR;
                        char *cp = C + ((ic + ir) * p->rsc + j0 * p->csc) * sz;
                        if (g->direct && m == MR && n == nr && p->csc == 1) {
                            g->ukr(kc, abuf + ir * kc * tsz, bp, NULL, cp, p->rsc, pc > 0);
                        } else {
                            g->ukr(kc, abuf + ir * kc * tsz, bp, tile, NULL, 0, false);
                            g->put(tile, m, n, cp, p->rsc, p->csc, pc > 0);
                        }
                    }
                }
                if (p->epi && pc + kc >= p->K) { /* this block of C is final: run the epilogue while it is hot */
                    int64_t j0 = jc + p0 * nr, j1 = jc + p1 * nr < jc + nc ? jc + p1 * nr : jc + nc;
                    if (j1 > j0) p->epi->fn(p->epi, C + (ic * p->rsc + j0 * p->csc) * sz, mc, j1 - j0);
                }
            }
            if (team) {
#pragma omp barrier
            }
        }
    }
}

xcs_status xcs_host_matmul_blocked(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    return xcs_host_matmul_blocked_epi(a, b, out, NULL);
}

/* Small float GEMMs (one KC panel, few multiply-adds: an RNN cell's h @ W,
 * one example under vmap) skip packing: C rows accumulate FMAs over k in
 * order, exactly the chain the micro-kernel computes for K <= KC, so the
 * result has the same bits as the blocked path; only the setup is gone.
 * Matrix-vector products (M = 1, any size) take the same path: the row
 * streams B once, where packing would read it, write it and read it again
 * (measured: [1, 2048] @ [2048, 2048] f32 per example of a vmap, 64 of
 * them, 484 -> 228 ms); for K > KC their chain is one over all of K. */
#define MM_SMALL_MNK ((int64_t)1 << 17)
#define MM_SMALL_N 512

/* Full blocks of 8, then 4, then 1 vector of columns (unit column stride in B)
 * keep their accumulators in registers across the whole k loop: 8 chains
 * keep the FMA units busy where one row (a GEMV: M = 1) has no other
 * parallelism; the rest go element by element.  Either way each element is
 * the same in-order FMA chain over k. */
#define SMALL_BLOCK(T, V, VL, MADD, SPLAT, STOREU, STREAM, NV)                                                    \
    static inline __attribute__((always_inline)) void small_##T##_##NV(const mm_plan *p, const T *A, \
                                                                       const T *Bm, T *C, int64_t i, \
                                                                       int64_t j0) {                 \
        V c[NV], b;                                                                                 \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) c[v] = (V){0};                        \
        for (int64_t k = 0; k < p->K; k++) {                                                        \
            const V av = SPLAT(V, A[i * p->rsa + k * p->csa]);                                      \
            const T *brow = Bm + k * p->rsb + j0;                                                   \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                  \
                memcpy(&b, brow + v * VL, sizeof b);                                                \
                c[v] = MADD(av, b, c[v]);                                                           \
            }                                                                                       \
        }                                                                                           \
        if (p->csc == 1) { /* straight from the registers, a vector store each */                  \
            T *crow = C + i * p->rsc + j0;                                                          \
            if (p->stream && ((uintptr_t)crow & 31u) == 0) {                                        \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) STREAM(crow + v * VL, c[v]);   \
                return;                                                                             \
            }                                                                                       \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) STOREU(crow + v * VL, c[v]);       \
            return;                                                                                 \
        }                                                                                           \
        T out[NV * VL];                                                                             \
        memcpy(out, c, sizeof out);                                                                 \
        for (int64_t j = 0; j < NV * VL; j++) C[i * p->rsc + (j0 + j) * p->csc] = out[j];          \
    }
#define SMALL_GEMM(T, V, VL, MADD, SPLAT, STOREU, STREAM, FMA)                                      \
    SMALL_BLOCK(T, V, VL, MADD, SPLAT, STOREU, STREAM, 8)                                           \
    SMALL_BLOCK(T, V, VL, MADD, SPLAT, STOREU, STREAM, 4)                                           \
    SMALL_BLOCK(T, V, VL, MADD, SPLAT, STOREU, STREAM, 1)                                           \
    static void small_##T(const mm_plan *p, const char *A_, const char *B_, char *C_) {             \
        const T *A = (const T *)(const void *)A_, *Bm = (const T *)(const void *)B_;                \
        T *C = (T *)(void *)C_;                                                                     \
        const int64_t full8 = p->csb == 1 ? p->N / (8 * VL) * (8 * VL) : 0;                         \
        const int64_t full4 = p->csb == 1 ? p->N / (4 * VL) * (4 * VL) : 0;                         \
        const int64_t full = p->csb == 1 ? p->N / VL * VL : 0;                                      \
        for (int64_t i = 0; i < p->M; i++) {                                                        \
            for (int64_t j0 = 0; j0 < full8; j0 += 8 * VL) small_##T##_8(p, A, Bm, C, i, j0);       \
            for (int64_t j0 = full8; j0 < full4; j0 += 4 * VL) small_##T##_4(p, A, Bm, C, i, j0);   \
            for (int64_t j0 = full4; j0 < full; j0 += VL) small_##T##_1(p, A, Bm, C, i, j0);        \
            int64_t j = full;                                                                       \
            for (; j + 8 <= p->N; j += 8) { /* strided columns (a transposed B): 8 chains at once */ \
                T acc[8] = {0};                                                                     \
                for (int64_t k = 0; k < p->K; k++) {                                                \
                    const T a = A[i * p->rsa + k * p->csa], *bk = Bm + k * p->rsb + j * p->csb;     \
                    _Pragma("GCC unroll 8") for (int v = 0; v < 8; v++) acc[v] = FMA(a, bk[v * p->csb], acc[v]); \
                }                                                                                   \
                for (int v = 0; v < 8; v++) C[i * p->rsc + (j + v) * p->csc] = acc[v];              \
            }                                                                                       \
            for (; j < p->N; j++) {                                                                 \
                T acc = 0;                                                                          \
                for (int64_t k = 0; k < p->K; k++)                                                  \
                    acc = FMA(A[i * p->rsa + k * p->csa], Bm[k * p->rsb + j * p->csb], acc);        \
                C[i * p->rsc + j * p->csc] = acc;                                                   \
            }                                                                                       \
        }                                                                                           \
    }
#ifdef MM_HAVE_FMA
#define MM_FMAF(a, b, c) fmaf((a), (b), (c))
#define MM_FMAD(a, b, c) fma((a), (b), (c))
#else
#define MM_FMAF(a, b, c) ((c) + (a) * (b))
#define MM_FMAD(a, b, c) ((c) + (a) * (b))
#endif
SMALL_GEMM(float, v8f, 8, MADD_F32, SPLAT8, STOREU_F32, STREAM_F32, MM_FMAF)
SMALL_GEMM(double, v4d, 4, MADD_F64, SPLAT4, STOREU_F64, STREAM_F64, MM_FMAD)

#define MM_PAR_MIN_FLOPS 8.0e6
#define MM_THIN_K 4
#define MM_STREAM_BYTES 16.0e6 /* products at least this big are streamed (past a 2-core guest's L3 share) */
#define MM_STREAM_BYTES_THIN 4.0e6 /* ... outer products (K <= 4): written once, read by nothing soon */

/* ---- narrow outer products: a batch whose C rows are not whole vectors
 * (the last layer's [128, 10] weight gradient per example) spent most of
 * its time in the per-row scalar tail (instruction-bound at 7 GB/s).  It is
 * made instead in a buffer, row after row, the last partial vector of a row
 * stored whole: its extra lanes land on the next row's first columns, which
 * that row then writes (the buffer has a vector of slack).  B's partial
 * vector is read from a zero-padded copy.  The buffer is then copied out as
 * one run (xcs_host_stream_copy when the product is streamed).  Every element is the
 * same in-order FMA chain as on the other paths. */
#define MM_NARROW_BYTES 16384 /* a batch's product at most this big */

#ifdef MM_HAVE_FMA
#define MM_NARROW 1
#define NARROW_GEMM(T, V, VL, ZERO, SPLAT, LOADU, STOREU, FMADD)                                            \
    static void narrow_##T(const mm_plan *p, const T *A, const T *Bm, T *buf) {                           \
        const int64_t nb = p->N / VL, tail = p->N - nb * VL;                                            \
        V bt[MM_THIN_K];                                                                                \
        for (int64_t k = 0; k < p->K; k++) {                                                            \
            T pad[VL] = {0};                                                                            \
            for (int64_t j = 0; j < tail; j++) pad[j] = Bm[k * p->rsb + nb * VL + j];                   \
            bt[k] = LOADU(pad);                                                                         \
        }                                                                                               \
        for (int64_t i = 0; i < p->M; i++) {                                                            \
            T *row = buf + i * p->N;                                                                    \
            for (int64_t v = 0; v < nb; v++) {                                                          \
                V c = ZERO();                                                                           \
                for (int64_t k = 0; k < p->K; k++)                                                      \
                    c = FMADD(SPLAT(A[i * p->rsa + k * p->csa]), LOADU(Bm + k * p->rsb + v * VL), c);   \
                STOREU(row + v * VL, c);                                                                \
            }                                                                                           \
            V c = ZERO();                                                                               \
            for (int64_t k = 0; k < p->K; k++) c = FMADD(SPLAT(A[i * p->rsa + k * p->csa]), bt[k], c);  \
            STOREU(row + nb * VL, c);                                                                   \
        }                                                                                               \
    }
NARROW_GEMM(float, __m256, 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps)
NARROW_GEMM(double, __m256d, 4, _mm256_setzero_pd, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
            _mm256_fmadd_pd)
#else
#define MM_NARROW 0
static void narrow_float(const mm_plan *p, const float *A, const float *Bm, float *buf) {
    (void)p, (void)A, (void)Bm, (void)buf;
}
static void narrow_double(const mm_plan *p, const double *A, const double *Bm, double *buf) {
    (void)p, (void)A, (void)Bm, (void)buf;
}
#endif

#define MM_PACK_B_BYTES 32768 /* a transposed B packed on the stack at most this big */

/* Batch t of a product on the unpacked path, then its epilogue. */
static void small_batch(const mm_plan *p, xcs_dtype dt, xcs_mm_epilogue *epi, int64_t t) {
    const char *A, *B;
    char *C;
    mm_batch(p, t, &A, &B, &C);
    const int64_t vl = 32 / p->sz;
    const size_t bytes = (size_t)(p->M * p->N * p->sz);
    if (MM_NARROW && !epi && p->K <= MM_THIN_K && p->csb == 1 && p->csc == 1 && p->rsc == p->N && p->N % vl != 0 &&
        bytes + 32 <= MM_NARROW_BYTES) {
        _Alignas(64) char buf[MM_NARROW_BYTES];
        if (dt == XCS_F32) narrow_float(p, (const float *)(const void *)A, (const float *)(const void *)B, (float *)(void *)buf);
        else narrow_double(p, (const double *)(const void *)A, (const double *)(const void *)B, (double *)(void *)buf);
        if (p->stream) xcs_host_stream_copy(C, buf, bytes);
        else memcpy(C, buf, bytes);
        return;
    }
    /* strided columns (a transposed B) under several rows: B packed
     * row-major once, so every row takes the vector path (each element the
     * same in-order chain over k: the same bits) */
    _Alignas(64) char packed[MM_PACK_B_BYTES];
    mm_plan q;
    if (p->csb != 1 && p->M >= 4 && p->N >= 8 && p->K * p->N * p->sz <= MM_PACK_B_BYTES) {
        for (int64_t k = 0; k < p->K; k++)
            for (int64_t j = 0; j < p->N; j++)
                memcpy(packed + (k * p->N + j) * p->sz, B + (k * p->rsb + j * p->csb) * p->sz, (size_t)p->sz);
        q = *p;
        q.rsb = p->N, q.csb = 1;
        p = &q;
        B = packed;
    }
    if (dt == XCS_F32) small_float(p, A, B, C);
    else small_double(p, A, B, C);
    if (epi) epi->fn(epi, C, p->M, p->N);
}

xcs_status xcs_host_matmul_blocked_epi(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out,
                                       xcs_mm_epilogue *epi) {
    mm_plan p;
    xcs_status st = mm_plan_build(&p, "matmul", a, b, out);
    if (st != XCS_OK) return st;
    if (p.M == 0 || p.N == 0 || p.nbatch == 0) return XCS_OK;
    if (epi && p.csc != 1)
        return xcs_error(XCS_ERR_INTERNAL, "matmul epilogue: the product must have unit column stride");
    /* small products; matrix-vector products (one row of A: packing B,
     * which the row reads once, would triple the memory traffic); and thin
     * ones (K <= MM_THIN_K: outer products such as per-example weight
     * gradients, where packing is all the work there is) */
    if ((a->dtype == XCS_F32 || a->dtype == XCS_F64) && p.K > 0 &&
        ((p.K <= gemm_table[a->dtype]->kc && p.N <= MM_SMALL_N && p.M * p.N * p.K * p.nbatch <= MM_SMALL_MNK) ||
         (p.M == 1 && p.csb == 1) || p.K <= MM_THIN_K)) {
        int nthreads = 1;
#ifdef _OPENMP
        nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
        /* batches on all threads when there are enough and enough work (each
         * element is the same chain whichever thread computes it); an output
         * element costs about as much as 8 FMAs to store (per-example weight
         * gradients, K = 1, are all stores) */
        /* a product bigger than the caches, not read back by an epilogue, is
         * not worth keeping there: streamed (per-example gradients write
         * ~100 MB; this saves reading every line before writing it) */
        p.stream = !epi && (double)p.M * (double)p.N * (double)p.nbatch * (double)p.sz >=
                               (p.K <= MM_THIN_K ? MM_STREAM_BYTES_THIN : MM_STREAM_BYTES);
        if (nthreads > 1 && p.nbatch >= nthreads &&
            (double)p.M * (double)p.N * (double)(p.K + 8) * (double)p.nbatch >= MM_PAR_MIN_FLOPS / 2) {
#pragma omp parallel num_threads(nthreads)
            {
                /* (dynamic: on a VM whose vCPUs are taken away for a while, a
                 * static half would leave the other thread waiting at the end;
                 * each batch is the same chains whichever thread runs it) */
#pragma omp for schedule(dynamic, 8) nowait
                for (int64_t t = 0; t < p.nbatch; t++) small_batch(&p, a->dtype, epi, t);
                if (p.stream) xcs_host_stream_fence();
            }
        } else {
            for (int64_t t = 0; t < p.nbatch; t++) small_batch(&p, a->dtype, epi, t);
            if (p.stream) xcs_host_stream_fence();
        }
        return XCS_OK;
    }
    p.epi = p.K > 0 ? epi : NULL; /* K == 0: the caller runs it over the zeros */
    if (p.K == 0) {
        for (int64_t t = 0; t < p.nbatch; t++) {
            const char *A, *B;
            char *C;
            mm_batch(&p, t, &A, &B, &C);
            zero_out(&p, C);
        }
        return XCS_OK;
    }
    const gemm_type *g = gemm_table[a->dtype];
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = omp_get_max_threads();
#endif
    double flops = 2.0 * (double)p.M * (double)p.N * (double)p.K;
    /* a parallel region only for >= ~8 Mflop (~60 us on one core): below, the
     * region's cost is a large share, and on a loaded machine waiting for a
     * descheduled team member costs a scheduler slice (milliseconds) */
    bool par = flops * (double)p.nbatch >= MM_PAR_MIN_FLOPS && nthreads > 1;
    /* many small GEMMs: one per thread; else one GEMM at a time, all threads */
    bool per_batch = par && p.nbatch >= nthreads && flops <= 2.0 * 128 * 128 * 128;
    int64_t kc = p.K < g->kc ? p.K : g->kc;
    int64_t ncr = (p.N < g->nc ? p.N : g->nc) + g->nr;
    int64_t mcr = (p.M < g->mc ? p.M : g->mc) + MR;
    size_t abytes = ((size_t)(mcr * kc) * g->tsz + 63) & ~(size_t)63;
    size_t bbytes = ((size_t)(ncr * kc) * g->tsz + 63) & ~(size_t)63;
    int teams = par ? nthreads : 1; /* buffers: a per thread, b per team */
    size_t total = (size_t)teams * abytes + (per_batch ? (size_t)teams : 1) * bbytes;
    char *ws = aligned_alloc(64, total);
    if (!ws) return xcs_error(XCS_ERR_MEMORY, "matmul: cannot allocate %zu bytes of packing space",
                              total);
    char *abufs = ws, *bbufs = ws + (size_t)teams * abytes;
    if (!par) {
        for (int64_t t = 0; t < p.nbatch; t++) {
            const char *A, *B;
            char *C;
            mm_batch(&p, t, &A, &B, &C);
            gemm_team(g, &p, A, B, C, bbufs, abufs, abytes, false);
        }
    } else if (per_batch) {
#pragma omp parallel num_threads(teams)
        {
            int me = 0;
#ifdef _OPENMP
            me = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
            for (int64_t t = 0; t < p.nbatch; t++) {
                const char *A, *B;
                char *C;
                mm_batch(&p, t, &A, &B, &C);
                gemm_team(g, &p, A, B, C, bbufs + (size_t)me * bbytes,
                          abufs + (size_t)me * abytes, abytes, false);
            }
        }
    } else {
#pragma omp parallel num_threads(teams)
        for (int64_t t = 0; t < p.nbatch; t++) {
            const char *A, *B;
            char *C;
            mm_batch(&p, t, &A, &B, &C);
            gemm_team(g, &p, A, B, C, bbufs, abufs, abytes, true);
        }
    }
    free(ws);
    return XCS_OK;
}

/* ------------------------------------------------------------------- BLAS */

#ifdef XCS_HAVE_CBLAS
/* How cblas can read a rows x cols operand with strides (rs, cs): sets
 * *trans and *ld, or returns false when it must be copied first. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, bool *trans,
                        int64_t *ld) {
    /* the stride of a size-1 dim is never used, so it may take any value */
    int64_t minr = rows > 1 ? rows : 1, minc = cols > 1 ? cols : 1;
    if ((cols <= 1 || cs == 1) && (rows <= 1 || rs >= minc)) {
        *trans = false;
        *ld = rows <= 1 ? minc : rs;
    } else if ((rows <= 1 || rs == 1) && (cols <= 1 || cs >= minr)) {
        *trans = true;
        *ld = cols <= 1 ? minr : cs;
    } else {
        return false;
    }
    return *ld <= INT_MAX;
}

/* Copies a strided rows x cols matrix into contiguous dst. */
static void copy_dense(const char *src, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                       int64_t sz, char *dst) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            memcpy(dst + (i * cols + j) * sz, src + (i * rs + j * cs) * sz, (size_t)sz);
}
#endif

xcs_status xcs_host_matmul_blas(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
#ifndef XCS_HAVE_CBLAS
    (void)a, (void)b, (void)out;
    return xcs_error(XCS_ERR_UNSUPPORTED, "matmul: this build has no CBLAS");
#else
    if (a->dtype != XCS_F32 && a->dtype != XCS_F64)
        return xcs_error(XCS_ERR_UNSUPPORTED, "matmul: BLAS serves float32/float64, not %s",
                         xcs_dtype_name(a->dtype));
    mm_plan p;
    xcs_status st = mm_plan_build(&p, "matmul", a, b, out);
    if (st != XCS_OK) return st;
    if (p.M == 0 || p.N == 0 || p.nbatch == 0) return XCS_OK;
    if (p.M > INT_MAX || p.N > INT_MAX || p.K > INT_MAX)
        return xcs_error(XCS_ERR_UNSUPPORTED, "matmul: dims past INT_MAX for BLAS");
    bool ta = false, tb = false, tc = false, dbl = a->dtype == XCS_F64;
    int64_t lda = 1, ldb = 1, ldc = 1;
    bool da = blas_layout(p.M, p.K, p.rsa, p.csa, &ta, &lda);
    bool db = blas_layout(p.K, p.N, p.rsb, p.csb, &tb, &ldb);
    bool dc = blas_layout(p.M, p.N, p.rsc, p.csc, &tc, &ldc) && !tc;
    size_t na = da ? 0 : (size_t)(p.M * p.K), nbb = db ? 0 : (size_t)(p.K * p.N);
    size_t nc = dc ? 0 : (size_t)(p.M * p.N);
    char *tmp = NULL;
    if (na + nbb + nc) {
        tmp = malloc((na + nbb + nc) * (size_t)p.sz);
        if (!tmp) return xcs_error(XCS_ERR_MEMORY, "matmul: cannot allocate BLAS staging");
    }
    if (!da) ta = false, lda = p.K > 1 ? p.K : 1;
    if (!db) tb = false, ldb = p.N > 1 ? p.N : 1;
    if (!dc) ldc = p.N > 1 ? p.N : 1;
    char *ta_buf = tmp, *tb_buf = tmp + na * p.sz, *tc_buf = tmp + (na + nbb) * p.sz;
    for (int64_t t = 0; t < p.nbatch; t++) {
        const char *A, *B;
        char *C;
        mm_batch(&p, t, &A, &B, &C);
        if (p.K == 0) {
            zero_out(&p, C);
            continue;
        }
        if (!da) copy_dense(A, p.M, p.K, p.rsa, p.csa, p.sz, ta_buf), A = ta_buf;
        if (!db) copy_dense(B, p.K, p.N, p.rsb, p.csb, p.sz, tb_buf), B = tb_buf;
        char *Cw = dc ? C : tc_buf;
        enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
        enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
        if (dbl)
            cblas_dgemm(CblasRowMajor, opa, opb, (int)p.M, (int)p.N, (int)p.K, 1.0,
                        (const double *)(const void *)A, (int)lda,
                        (const double *)(const void *)B, (int)ldb, 0.0, (double *)(void *)Cw,
                        (int)ldc);
        else
            cblas_sgemm(CblasRowMajor, opa, opb, (int)p.M, (int)p.N, (int)p.K, 1.0f,
                        (const float *)(const void *)A, (int)lda, (const float *)(const void *)B,
                        (int)ldb, 0.0f, (float *)(void *)Cw, (int)ldc);
        if (!dc)
            for (int64_t i = 0; i < p.M; i++)
                for (int64_t j = 0; j < p.N; j++)
                    memcpy(C + (i * p.rsc + j * p.csc) * p.sz, Cw + (i * p.N + j) * p.sz,
                           (size_t)p.sz);
    }
    free(tmp);
    return XCS_OK;
#endif
}

/* BLAS takes float GEMMs of at least this many multiply-adds per matrix.
 * Alone, the blocked kernel wins below ~384^3 on this 2-core Zen 3 (f32, us,
 * blocked vs OpenBLAS 0.3.21): 128^3 36 vs 68, 256^3 259 vs 434, 384^3 767
 * vs 770, 1000 x (8^3) batched 115 vs 245, and ties up to 1024^3.  But in a
 * program BLAS costs more than it shows alone: OpenBLAS runs its own pthread
 * pool, and our OpenMP threads, still spinning after the previous op, steal
 * its cores.  Measured, median of 30: `tanh(x @ x)`, x 1024^2 f32, takes
 * 27-29 ms with OpenBLAS for the matmul vs 16.7 ms with the blocked kernel
 * (the matmul alone: 15.0 vs 16.4 ms).  So BLAS is kept for the GEMMs where
 * its ~16% edge (2048^3: 151 vs 127 GFLOP/s) outweighs that: >= 2^32. */
#define MM_BLAS_MIN_MNK ((int64_t)1 << 32)

bool xcs_host_matmul_prefers_blas(const xcs_tensor *a, const xcs_tensor *b, const xcs_tensor *out) {
    (void)b;
#ifdef XCS_HAVE_CBLAS
    int nd = out->ndim;
    return (a->dtype == XCS_F32 || a->dtype == XCS_F64) && nd >= 2 && a->ndim == nd &&
           (double)a->shape[nd - 2] * (double)a->shape[nd - 1] * (double)out->shape[nd - 1] >=
               (double)MM_BLAS_MIN_MNK;
#else
    (void)a, (void)out;
    return false;
#endif
}

/* x's values as a fresh float32 tensor of x's shape; a broadcast (stride 0)
 * dim stays one, seen with stride 0, so batch broadcasting costs nothing. */
static xcs_status widen_f32(const xcs_tensor *x, xcs_tensor **out) {
    xcs_tensor v = *x;
    int64_t shape[XCS_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = v.shape[d] = x->strides[d] == 0 ? 1 : x->shape[d];
    xcs_status st = xcs_tensor_empty(XCS_F32, x->ndim, shape, out);
    const xcs_tensor *in[1] = {&v};
    if (!st && xcs_tensor_numel(*out) > 0) st = xcs_cpu_elementwise(XCS_OP_CAST, 1, in, XCS_F32, *out);
    if (st) {
        xcs_tensor_free(*out);
        *out = NULL;
        return st;
    }
    for (int d = 0; d < x->ndim; d++)
        if (x->strides[d] == 0) (*out)->shape[d] = x->shape[d], (*out)->strides[d] = 0;
    return XCS_OK;
}

/* float16/bfloat16: the operands widened to float32, one float32 GEMM
 * (float32 accumulation, as cuBLAS's CUBLAS_COMPUTE_32F does on a GPU), the
 * product rounded once into out. */
static xcs_status matmul_half(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    if (a->dtype != out->dtype || b->dtype != out->dtype)
        return xcs_error(XCS_ERR_TYPE, "matmul: dtypes %s @ %s -> %s must agree", xcs_dtype_name(a->dtype),
                         xcs_dtype_name(b->dtype), xcs_dtype_name(out->dtype));
    if (!xcs_tensor_is_contiguous(out))
        return xcs_error(XCS_ERR_INTERNAL, "matmul: a %s product must be C-contiguous", xcs_dtype_name(out->dtype));
    xcs_tensor *a32 = NULL, *b32 = NULL, *p32 = NULL;
    xcs_status st = widen_f32(a, &a32);
    if (!st) st = widen_f32(b, &b32);
    if (!st) st = xcs_tensor_empty(XCS_F32, out->ndim, out->shape, &p32);
    if (!st) st = xcs_cpu_matmul(a32, b32, p32);
    const xcs_tensor *in[1] = {p32};
    if (!st && xcs_tensor_numel(out) > 0) st = xcs_cpu_elementwise(XCS_OP_CAST, 1, in, out->dtype, out);
    xcs_tensor_free(a32);
    xcs_tensor_free(b32);
    xcs_tensor_free(p32);
    return st;
}

xcs_status xcs_cpu_matmul(const xcs_tensor *a, const xcs_tensor *b, xcs_tensor *out) {
    if (xcs_dtype_is_half(out->dtype)) return matmul_half(a, b, out);
#ifdef XCS_HAVE_CBLAS
    if (xcs_host_matmul_prefers_blas(a, b, out)) {
        xcs_status st = xcs_host_matmul_blas(a, b, out);
        if (st != XCS_ERR_UNSUPPORTED) return st;
        xcs_error_clear();
    }
#endif
    return xcs_host_matmul_blocked(a, b, out);
}
