/* sort.c — the CPU argsort kernel (xcs_backend.argsort): out = the indices
 * that sort x along one axis, stably (equal values keep their order), with
 * NaNs last, as numpy.argsort(kind="stable") orders them.
 *
 * Each row along the axis is copied into a contiguous key buffer, and its
 * indices are merge-sorted by key (bottom-up, runs of 16 by insertion
 * first), then written to out's row.  Rows of RADIX_MIN values or more are
 * sorted by an LSD radix sort instead (stable by construction): each key
 * mapped to an unsigned integer in the same order (floats: -0.0 as 0.0,
 * every NaN as the largest key; signed ints: the sign bit flipped),
 * RADIX_BITS-bit digits, a pass skipped where every key shares the digit.
 * Measured on 2 cores (float64, ms; numpy's stable argsort in brackets):
 * one row of 1e7: merge 1900, radix 700 (1520); 500 x 4096: 52 -> 16
 * (99); 16000 x 128: 28 -> 18; 32000 x 64: 26 -> 24; 64000 x 32: 20 -> 51,
 * hence RADIX_MIN.  8-bit digits beat 11 (880 ms: 2048 buckets scatter
 * into too many streams) and 9.
 * Rows are independent: threads take equal ranges of them.  Borrows all
 * arguments; writes out in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sort_plan.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* a before b: a < b, or b NaN and a not (NaNs last); equal keys: neither */
#define FLOAT_BEFORE(a, b) ((a) < (b) || ((b) != (b) && (a) == (a)))
#define PLAIN_BEFORE(a, b) ((a) < (b))

/* Sorts idx[0..n) by key[idx[.]] (tmp: n more indices): insertion over runs
 * of 16, then merges of doubling width, ping-ponging idx and tmp. */
#define SORT_ROW(SFX, T, BEFORE)                                                                  \
    static void sort_row_##SFX(const T *key, int64_t *idx, int64_t *tmp, int64_t n) {           \
        for (int64_t i = 0; i < n; i++) idx[i] = i;                                               \
        for (int64_t lo = 0; lo < n; lo += 16) {                                                  \
            int64_t hi = lo + 16 < n ? lo + 16 : n;                                               \
            for (int64_t i = lo + 1; i < hi; i++) {                                               \
                int64_t v = idx[i], j = i;                                                        \
                for (; j > lo && BEFORE(key[v], key[idx[j - 1]]); j--) idx[j] = idx[j - 1];      \
                idx[j] = v;                                                                       \
            }                                                                                     \
        }                                                                                         \
        int64_t *src = idx, *dst = tmp;                                                           \
        for (int64_t w = 16; w < n; w *= 2) {                                                     \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                           \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;      \
                int64_t i = lo, j = mid, k = lo;                                                  \
                while (i < mid && j < hi) /* the left one on ties: stable */                      \
                    dst[k++] = BEFORE(key[src[j]], key[src[i]]) ? src[j++] : src[i++];            \
                while (i < mid) dst[k++] = src[i++];                                              \
                while (j < hi) dst[k++] = src[j++];                                               \
            }                                                                                     \
            int64_t *t = src;                                                                     \
            src = dst;                                                                            \
            dst = t;                                                                              \
        }                                                                                         \
        if (src != idx) memcpy(idx, src, (size_t)n * sizeof *idx);                                \
    }
SORT_ROW(b, uint8_t, PLAIN_BEFORE)
SORT_ROW(i32, int32_t, PLAIN_BEFORE)
SORT_ROW(i64, int64_t, PLAIN_BEFORE)
SORT_ROW(f32, float, FLOAT_BEFORE)
SORT_ROW(f64, double, FLOAT_BEFORE)

#define RADIX_BITS 8
#define RADIX (1 << RADIX_BITS)
#define RADIX_MIN 128 /* below it merging costs less than the passes' bucket scans */

/* An unsigned key of x's k-th element in x's order (see the file comment). */
static uint64_t radix_key(const char *x, xcs_dtype dt, int64_t k) {
    switch (dt) {
    case XCS_F64: {
        double v = ((const double *)(const void *)x)[k] + 0.0; /* -0.0 -> 0.0 */
        if (v != v) return UINT64_MAX;
        uint64_t u;
        memcpy(&u, &v, 8);
        return u >> 63 ? ~u : u | (1ull << 63);
    }
    case XCS_F32: {
        float v = ((const float *)(const void *)x)[k] + 0.0f;
        if (v != v) return UINT32_MAX;
        uint32_t u;
        memcpy(&u, &v, 4);
        return u >> 31 ? (uint32_t)~u : u | (1u << 31);
    }
    case XCS_I64: return (uint64_t)((const int64_t *)(const void *)x)[k] ^ (1ull << 63);
    case XCS_I32: return (uint32_t)((const int32_t *)(const void *)x)[k] ^ (1u << 31);
    default: return ((const uint8_t *)(const void *)x)[k];
    }
}

/* Sorts idx[0..n) (0, 1, ...) by key[0..n) (both permuted together), keys of
 * `bits` significant bits; k2, i2: n more of each; count: RADIX * passes. */
static void radix_sort(uint64_t *key, int64_t *idx, uint64_t *k2, int64_t *i2, int64_t n, int bits, uint32_t *count) {
    const int passes = (bits + RADIX_BITS - 1) / RADIX_BITS;
    memset(count, 0, (size_t)passes * RADIX * sizeof *count);
    for (int64_t i = 0; i < n; i++) /* every pass's digit counts in one read */
        for (int p = 0; p < passes; p++) count[p * RADIX + ((key[i] >> (p * RADIX_BITS)) & (RADIX - 1))]++;
    uint64_t *ks = key, *kd = k2;
    int64_t *is = idx, *id = i2;
    for (int p = 0; p < passes; p++) {
        uint32_t *c = count + p * RADIX;
        const int shift = p * RADIX_BITS;
        if (c[(ks[0] >> shift) & (RADIX - 1)] == (uint32_t)n) continue; /* one digit for all: nothing moves */
        uint32_t sum = 0;
        for (int d = 0; d < RADIX; d++) {
            const uint32_t t = c[d];
            c[d] = sum;
            sum += t;
        }
        for (int64_t i = 0; i < n; i++) {
            const uint32_t at = c[(ks[i] >> shift) & (RADIX - 1)]++;
            kd[at] = ks[i];
            id[at] = is[i];
        }
        uint64_t *kt = ks;
        ks = kd, kd = kt;
        int64_t *it = is;
        is = id, id = it;
    }
    if (is != idx) memcpy(idx, is, (size_t)n * sizeof *idx);
}

/* The scratch a thread needs for one row (see sort_rows). */
static size_t row_scratch(int64_t n, size_t isz) {
    if (n >= RADIX_MIN) /* keys, indices, each twice; the digit counts */
        return 4 * (size_t)n * 8 + (size_t)((64 + RADIX_BITS - 1) / RADIX_BITS) * RADIX * sizeof(uint32_t);
    return ((size_t)n * isz + 7) / 8 * 8 + 2 * (size_t)n * sizeof(int64_t);
}

/* Rows [r0, r1) (buf: row_scratch bytes: n keys then 2n indices; radix: 2n
 * keys, 2n indices, the counts). */
static void sort_rows(const sort_plan *p, int64_t r0, int64_t r1, char *buf) {
    char *key = buf;
    int64_t *idx = (int64_t *)(void *)(buf + ((p->n * p->isz + 7) & ~(size_t)7)), *tmp = idx + p->n;
    int64_t *out = (int64_t *)(void *)p->out;
    for (int64_t r = r0; r < r1; r++) {
        int64_t xo, oo;
        sort_row_start(p, r, &xo, &oo);
        if (p->n >= RADIX_MIN) {
            uint64_t *k1 = (uint64_t *)(void *)buf, *k2 = k1 + p->n;
            int64_t *i1 = (int64_t *)(void *)(k2 + p->n), *i2 = i1 + p->n;
            const char *row = p->x + xo * (int64_t)p->isz;
            for (int64_t k = 0; k < p->n; k++) {
                k1[k] = radix_key(row, p->dt, k * p->sx);
                i1[k] = k;
            }
            const int bits = p->dt == XCS_BOOL ? 8 : p->isz == 4 ? 32 : 64;
            radix_sort(k1, i1, k2, i2, p->n, bits, (uint32_t *)(void *)(i2 + p->n));
            for (int64_t k = 0; k < p->n; k++) out[oo + k * p->so] = i1[k];
            continue;
        }
        for (int64_t k = 0; k < p->n; k++) memcpy(key + k * p->isz, p->x + (xo + k * p->sx) * (int64_t)p->isz, p->isz);
        switch (p->dt) {
        case XCS_BOOL: sort_row_b((const uint8_t *)(const void *)key, idx, tmp, p->n); break;
        case XCS_I32: sort_row_i32((const int32_t *)(const void *)key, idx, tmp, p->n); break;
        case XCS_I64: sort_row_i64((const int64_t *)(const void *)key, idx, tmp, p->n); break;
        case XCS_F32: sort_row_f32((const float *)(const void *)key, idx, tmp, p->n); break;
        default: sort_row_f64((const double *)(const void *)key, idx, tmp, p->n); break;
        }
        for (int64_t k = 0; k < p->n; k++) out[oo + k * p->so] = idx[k];
    }
}

xcs_status xcs_cpu_argsort(const xcs_tensor *x, int axis, xcs_tensor *out) {
    sort_plan p;
    xcs_status st = sort_plan_of(x, axis, out, XCS_I64, "argsort", &p);
    if (st) return st;
    if (p.n == 0 || p.rows == 0) return XCS_OK;
    const size_t per = row_scratch(p.n, p.isz);
    int nt = 1;
#ifdef _OPENMP
    if (p.rows > 1 && p.rows * p.n >= XCS_CPU_PAR_MIN) nt = omp_get_max_threads();
#endif
    if (nt > p.rows) nt = (int)p.rows;
    char *buf = malloc(per * (size_t)nt);
    if (!buf) return xcs_error(XCS_ERR_MEMORY, "argsort: cannot allocate %zu bytes", per * (size_t)nt);
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        {
            int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
            sort_rows(&p, p.rows * t / k, p.rows * (t + 1) / k, buf + per * (size_t)t);
        }
    } else
#endif
    {
        sort_rows(&p, 0, p.rows, buf);
    }
    free(buf);
    return XCS_OK;
}
