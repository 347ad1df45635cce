/* sort_values.c — the CPU sort kernel (xcs_backend.sort): out = x sorted
 * along one axis, NaNs last, as numpy.sort.  Only values move, no indices.
 *
 * A row's values are mapped to unsigned keys in the same order: signed ints
 * with the sign bit flipped; floats with the sign bit set when positive and
 * every bit flipped when negative, so -0.0 sorts before 0.0 (equal values:
 * any order is numpy's); NaNs are set aside, bits and order kept, and come
 * last.  Keys are sorted by an LSD radix sort of 8-bit digits (a pass
 * skipped where every key shares the digit), or below RADIX_MIN by
 * insertion over runs of 16 and merging, then mapped back.  Bools are
 * counted.  Rows are independent: threads take equal ranges of them; a
 * single row (fewer rows than threads) is sorted by all of them, each pass
 * counting and scattering one slice per thread.
 *
 * Measured on 2 cores (ms; numpy.sort's AVX-512 quicksort in brackets):
 * float32 2^22 in one row: 165 as argsort + take -> 38 (14); 512 x 4096:
 * 14.8 -> 6.6 (4.4); 64000 x 32: 24.6 -> 6.2 (2.6).  Rows of float32 sort
 * as fast by radix as by networks and merges near 220 values: RADIX_MIN.
 * Borrows all arguments; writes out in place. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sort_plan.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define DIGIT_BITS 8
#define DIGITS (1 << DIGIT_BITS)
#define RADIX_MIN 256 /* below it networks and merging cost less than the passes' digit counts */

/* v[i], v[j] in order (a compare-exchange of a sorting network) */
#define CE(T, v, i, j)                                                                                 \
    do {                                                                                               \
        const T lo_ = v[i] < v[j] ? v[i] : v[j], hi_ = v[i] < v[j] ? v[j] : v[i];                      \
        v[i] = lo_;                                                                                    \
        v[j] = hi_;                                                                                    \
    } while (0)
/* radix_T: the sort of n keys of type T (key; tmp: n more), by `threads`
 * threads when more than one (count: threads * DIGITS); returns the buffer
 * that holds the result, key or tmp. */
#define SORT_KEYS(T)                                                                                   \
    /* runs of 8 by a 19-exchange network, a short tail by insertion; then                            \
     * branchless merges of doubling width */                                                          \
    static T *small_##T(T *key, T *tmp, int64_t n) {                                                   \
        int64_t lo = 0;                                                                                \
        for (; lo + 8 <= n; lo += 8) {                                                                 \
            T *v = key + lo;                                                                           \
            CE(T, v, 0, 2); CE(T, v, 1, 3); CE(T, v, 4, 6); CE(T, v, 5, 7);                            \
            CE(T, v, 0, 4); CE(T, v, 1, 5); CE(T, v, 2, 6); CE(T, v, 3, 7);                            \
            CE(T, v, 0, 1); CE(T, v, 2, 3); CE(T, v, 4, 5); CE(T, v, 6, 7);                            \
            CE(T, v, 2, 4); CE(T, v, 3, 5); CE(T, v, 1, 4); CE(T, v, 3, 6);                            \
            CE(T, v, 1, 2); CE(T, v, 3, 4); CE(T, v, 5, 6);                                            \
        }                                                                                              \
        for (int64_t i = lo + 1; i < n; i++) {                                                         \
            T v = key[i];                                                                              \
            int64_t j = i;                                                                             \
            for (; j > lo && v < key[j - 1]; j--) key[j] = key[j - 1];                                 \
            key[j] = v;                                                                                \
        }                                                                                              \
        T *src = key, *dst = tmp;                                                                      \
        for (int64_t w = 8; w < n; w *= 2) {                                                           \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                                \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;           \
                int64_t i = lo, j = mid, k = lo;                                                       \
                while (i < mid && j < hi) {                                                            \
                    const T a = src[i], b = src[j];                                                    \
                    const int take_b = b < a;                                                          \
                    dst[k++] = take_b ? b : a;                                                         \
                    j += take_b;                                                                       \
                    i += !take_b;                                                                      \
                }                                                                                      \
                while (i < mid) dst[k++] = src[i++];                                                   \
                while (j < hi) dst[k++] = src[j++];                                                    \
            }                                                                                          \
            T *t = src;                                                                                \
            src = dst;                                                                                 \
            dst = t;                                                                                   \
        }                                                                                              \
        return src;                                                                                    \
    }                                                                                                  \
    /* one pass's digit counts of src[lo, hi); its scatter by offsets at */                           \
    static void count_##T(const T *src, int64_t lo, int64_t hi, int shift, int64_t *c) {               \
        memset(c, 0, DIGITS * sizeof *c);                                                              \
        for (int64_t i = lo; i < hi; i++) c[(src[i] >> shift) & (DIGITS - 1)]++;                       \
    }                                                                                                  \
    static void scatter_##T(const T *src, T *dst, int64_t lo, int64_t hi, int shift, int64_t *at) {    \
        for (int64_t i = lo; i < hi; i++) dst[at[(src[i] >> shift) & (DIGITS - 1)]++] = src[i];        \
    }                                                                                                  \
    static T *radix_##T(T *key, T *tmp, int64_t n, int threads, int64_t *count) {                      \
        if (n < RADIX_MIN) return small_##T(key, tmp, n);                                              \
        T *src = key, *dst = tmp;                                                                      \
        for (int shift = 0; shift < (int)(8 * sizeof(T)); shift += DIGIT_BITS) {                       \
            bool moves = true;                                                                         \
            if (threads == 1) {                                                                        \
                count_##T(src, 0, n, shift, count);                                                    \
                if ((moves = digit_offsets(count, 1, n))) scatter_##T(src, dst, 0, n, shift, count);   \
            } else {                                                                                   \
                PARALLEL_PASS(count_##T(src, lo, hi, shift, c), scatter_##T(src, dst, lo, hi, shift, c)); \
            }                                                                                          \
            if (moves) {                                                                               \
                T *t = src;                                                                            \
                src = dst;                                                                             \
                dst = t;                                                                               \
            }                                                                                          \
        }                                                                                              \
        return src;                                                                                    \
    }

/* Turns nt threads' digit counts (count[t * DIGITS + d]) into where each
 * thread's keys of each digit go: after the smaller digits' keys and the
 * earlier threads' keys of its digit, so a pass is stable.  False (counts
 * untouched) when all n keys share one digit: the pass moves nothing. */
static bool digit_offsets(int64_t *count, int nt, int64_t n) {
    for (int d = 0; d < DIGITS; d++) {
        int64_t tot = 0;
        for (int u = 0; u < nt; u++) tot += count[(size_t)u * DIGITS + d];
        if (tot == n) return false;
    }
    int64_t sum = 0;
    for (int d = 0; d < DIGITS; d++)
        for (int u = 0; u < nt; u++) {
            const int64_t v = count[(size_t)u * DIGITS + d];
            count[(size_t)u * DIGITS + d] = sum;
            sum += v;
        }
    return true;
}

/* A pass by a team of `threads`: each counts its slice [lo, hi) into its
 * counts c, one thread turns them into offsets (setting `moves`), then each
 * scatters its slice. */
#ifdef _OPENMP
#define PARALLEL_PASS(COUNT, SCATTER)                                                                  \
    _Pragma("omp parallel num_threads(threads)") {                                                     \
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();                                \
        const int64_t lo = n * t / nt, hi = n * (t + 1) / nt;                                          \
        int64_t *c = count + (size_t)t * DIGITS;                                                       \
        COUNT;                                                                                         \
        _Pragma("omp barrier") _Pragma("omp single") moves = digit_offsets(count, nt, n);              \
        if (moves) SCATTER;                                                                            \
    }
#else
#define PARALLEL_PASS(COUNT, SCATTER)                                                                  \
    do {                                                                                               \
        const int64_t lo = 0, hi = n;                                                                  \
        int64_t *c = count;                                                                            \
        COUNT;                                                                                         \
        if ((moves = digit_offsets(count, 1, n))) SCATTER;                                             \
    } while (0)
#endif

SORT_KEYS(uint32_t)
SORT_KEYS(uint64_t)

/* Keys of one row of a 4- or 8-byte dtype (T: uint32_t / uint64_t, F: the
 * float of that width, TOP: the sign bit): non-NaN keys to key[0..m), NaN
 * bits to key[n-1] downwards; sorted; mapped back into out's row with the
 * NaNs after them in their order. */
#define ROW_OF(T, F, TOP)                                                                              \
    static void row_##T(const sort_plan *p, const char *xr, char *orow, T *key, T *tmp, int threads,    \
                        int64_t *count) {                                                              \
        const bool fl = p->dt == XCS_F32 || p->dt == XCS_F64;                                          \
        int64_t m = 0, back = p->n;                                                                    \
        for (int64_t k = 0; k < p->n; k++) {                                                           \
            T u;                                                                                       \
            memcpy(&u, xr + k * p->sx * (int64_t)sizeof(T), sizeof u);                                 \
            if (!fl) {                                                                                 \
                key[m++] = u ^ TOP;                                                                    \
                continue;                                                                              \
            }                                                                                          \
            F f;                                                                                       \
            memcpy(&f, &u, sizeof f);                                                                  \
            if (f != f) key[--back] = u;                                                               \
            else key[m++] = u & TOP ? ~u : u | TOP;                                                    \
        }                                                                                              \
        const T *s = radix_##T(key, tmp, m, threads, count);                                           \
        T *o = (T *)(void *)orow;                                                                      \
        for (int64_t k = 0; k < m; k++) {                                                              \
            const T v = s[k];                                                                          \
            o[k * p->so] = !fl ? v ^ TOP : v & TOP ? v & ~TOP : ~v;                                    \
        }                                                                                              \
        for (int64_t k = m; k < p->n; k++) o[k * p->so] = key[p->n - 1 - (k - m)];                     \
    }
ROW_OF(uint32_t, float, ((uint32_t)1 << 31))
ROW_OF(uint64_t, double, ((uint64_t)1 << 63))

/* Rows [r0, r1), `threads` threads sorting each (buf: 2n keys of 8 bytes,
 * then threads * DIGITS counts). */
static void sort_rows(const sort_plan *p, int64_t r0, int64_t r1, char *buf, int threads) {
    int64_t *count = (int64_t *)(void *)(buf + 16 * (size_t)p->n);
    for (int64_t r = r0; r < r1; r++) {
        int64_t xo, oo;
        sort_row_start(p, r, &xo, &oo);
        const char *xr = p->x + xo * (int64_t)p->isz;
        char *orow = p->out + oo * (int64_t)p->isz;
        if (p->dt == XCS_BOOL) { /* falses, then trues */
            int64_t ones = 0;
            for (int64_t k = 0; k < p->n; k++) ones += xr[k * p->sx] != 0;
            for (int64_t k = 0; k < p->n; k++) orow[k * p->so] = k >= p->n - ones;
        } else if (xcs_dtype_size(p->dt) == 4) {
            uint32_t *key = (uint32_t *)(void *)buf;
            row_uint32_t(p, xr, orow, key, key + p->n, threads, count);
        } else {
            uint64_t *key = (uint64_t *)(void *)buf;
            row_uint64_t(p, xr, orow, key, key + p->n, threads, count);
        }
    }
}

xcs_status xcs_cpu_sort(const xcs_tensor *x, int axis, xcs_tensor *out) {
    sort_plan p;
    xcs_status st = sort_plan_of(x, axis, out, x->dtype, "sort", &p);
    if (st) return st;
    if (p.n == 0 || p.rows == 0) return XCS_OK;
    int nt = 1;
#ifdef _OPENMP
    if (p.rows * p.n >= XCS_CPU_PAR_MIN) nt = omp_get_max_threads();
#endif
    /* rows to threads, or (fewer rows than threads) every thread on each row */
    const int per_row = p.rows < nt && p.n >= RADIX_MIN ? nt : 1, groups = per_row > 1 ? 1 : (int)(p.rows < nt ? p.rows : nt);
    const size_t per = 16 * (size_t)p.n + (size_t)per_row * DIGITS * sizeof(int64_t);
    char *buf = malloc(per * (size_t)groups);
    if (!buf) return xcs_error(XCS_ERR_MEMORY, "sort: cannot allocate %zu bytes", per * (size_t)groups);
#ifdef _OPENMP
    if (groups > 1) {
#pragma omp parallel num_threads(groups)
        {
            int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
            sort_rows(&p, p.rows * t / k, p.rows * (t + 1) / k, buf + per * (size_t)t, 1);
        }
    } else
#endif
    {
        sort_rows(&p, 0, p.rows, buf, per_row);
    }
    free(buf);
    return XCS_OK;
}
