/* rowref.c — hand-written one-pass row kernels: what the jit's fused
 * softmax and layer-norm could reach on this machine.
 *
 * Each row (4096 float32 by default) is read from memory once and every
 * later pass over it hits L1: softmax = max, exp-and-sum, scale; layer-norm
 * = sum, sum of squared deviations, normalise.  Sums accumulate in double
 * and the last pass divides exactly, as the fused programs do; exp is
 * vmath.h's vm_expf (the one the CPU backend uses).  Rows are split over
 * the OpenMP threads; the output is written with plain stores and, when
 * the CPU has AVX, also with non-temporal stores (both reported).
 *
 * Usage: xcs_rowref [rows] [cols] [repeats]; prints one JSON line with the
 * best time of each kernel in ms. */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmath.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void store_row(float *o, const float *v, long n, int nt) {
#if defined(__AVX__)
    if (nt && ((unsigned long)o & 31u) == 0 && n % 8 == 0) {
        for (long j = 0; j < n; j += 8) _mm256_stream_ps(o + j, _mm256_loadu_ps(v + j));
        return;
    }
#endif
    (void)nt;
    memcpy(o, v, (size_t)n * sizeof *o);
}

/* Row helpers: 8-wide AVX where available (the reference should be the best
 * plain C can do), scalar otherwise.  Sums accumulate in double. */
#if defined(__AVX__)
static float row_max(const float *x, long n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    long j = 0;
    for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
    float t[8], r = -INFINITY;
    _mm256_storeu_ps(t, m);
    for (int k = 0; k < 8; k++) r = t[k] > r ? t[k] : r;
    for (; j < n; j++) r = x[j] > r ? x[j] : r;
    return r;
}
static double row_sum(const float *x, long n) {
    __m256d a = _mm256_setzero_pd(), b = a;
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double t[4], r = 0;
    _mm256_storeu_pd(t, _mm256_add_pd(a, b));
    r = (t[0] + t[1]) + (t[2] + t[3]);
    for (; j < n; j++) r += x[j];
    return r;
}
#else
static float row_max(const float *x, long n) {
    float r = -INFINITY;
    for (long j = 0; j < n; j++) r = x[j] > r ? x[j] : r;
    return r;
}
static double row_sum(const float *x, long n) {
    double r = 0;
    for (long j = 0; j < n; j++) r += x[j];
    return r;
}
#endif

static void softmax_rows(const float *x, float *o, long rows, long cols, int nt) {
#pragma omp parallel
    {
        float *e = aligned_alloc(64, ((size_t)cols * sizeof *e + 63) & ~(size_t)63);
#pragma omp for schedule(static)
        for (long r = 0; r < rows; r++) {
            const float *xr = x + r * cols;
            float m = row_max(xr, cols);
#pragma omp simd
            for (long j = 0; j < cols; j++) e[j] = vm_expf(xr[j] - m);
            float fs = (float)row_sum(e, cols);
#pragma omp simd
            for (long j = 0; j < cols; j++) e[j] = e[j] / fs;
            store_row(o + r * cols, e, cols, nt);
        }
        free(e);
#if defined(__AVX__)
        _mm_sfence();
#endif
    }
}

static void layernorm_rows(const float *x, float *o, long rows, long cols, int nt) {
#pragma omp parallel
    {
        float *d = aligned_alloc(64, ((size_t)cols * sizeof *d + 63) & ~(size_t)63);
#pragma omp for schedule(static)
        for (long r = 0; r < rows; r++) {
            const float *xr = x + r * cols;
            float m = (float)(row_sum(xr, cols) / (double)cols);
#pragma omp simd
            for (long j = 0; j < cols; j++) {
                float dj = xr[j] - m;
                d[j] = dj * dj;
            }
            float sd = sqrtf((float)(row_sum(d, cols) / (double)cols) + 1e-5f);
#pragma omp simd
            for (long j = 0; j < cols; j++) d[j] = (xr[j] - m) / sd;
            store_row(o + r * cols, d, cols, nt);
        }
        free(d);
#if defined(__AVX__)
        _mm_sfence();
#endif
    }
}

typedef void (*row_kernel)(const float *, float *, long, long, int);

static double best_ms(row_kernel k, const float *x, float *o, long rows, long cols, int nt, int reps) {
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t = now();
        k(x, o, rows, cols, nt);
        t = now() - t;
        if (t < best) best = t;
    }
    return best * 1e3;
}

int main(int argc, char **argv) {
    long rows = argc > 1 ? atol(argv[1]) : 4096, cols = argc > 2 ? atol(argv[2]) : 4096;
    int reps = argc > 3 ? atoi(argv[3]) : 10;
    if (rows < 1 || cols < 8 || reps < 1) {
        fprintf(stderr, "usage: xcs_rowref [rows] [cols >= 8] [repeats]\n");
        return 2;
    }
    size_t bytes = ((size_t)(rows * cols) * sizeof(float) + 4095) & ~(size_t)4095;
    float *x = aligned_alloc(4096, bytes), *o = aligned_alloc(4096, bytes);
    if (!x || !o) {
        fprintf(stderr, "rowref: cannot allocate 2 x %zu bytes\n", bytes);
        return 1;
    }
    unsigned long long z = 88172645463325252ull;
    for (long i = 0; i < rows * cols; i++) { /* xorshift: values in [-4, 4), pages touched */
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        x[i] = (float)((double)(z >> 11) * 0x1p-53 * 8.0 - 4.0);
        o[i] = 0;
    }
    printf("{\"rows\": %ld, \"cols\": %ld, \"softmax_ms\": %.3f, \"softmax_nt_ms\": %.3f, "
           "\"layernorm_ms\": %.3f, \"layernorm_nt_ms\": %.3f}\n",
           rows, cols, best_ms(softmax_rows, x, o, rows, cols, 0, reps), best_ms(softmax_rows, x, o, rows, cols, 1, reps),
           best_ms(layernorm_rows, x, o, rows, cols, 0, reps), best_ms(layernorm_rows, x, o, rows, cols, 1, reps));
    free(x);
    free(o);
    return 0;
}
