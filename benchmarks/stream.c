/* stream.c — the machine's memory-bandwidth limit, STREAM-style.
 *
 * Triad a[i] = b[i] + s * c[i] over three double arrays much larger than the
 * last-level cache, OpenMP-parallel with the same static schedule for
 * initialisation (first touch places pages near the thread that uses them)
 * and for the timed loop.  Reports the best of N runs, counting 3 arrays of
 * traffic per element (24 bytes) as STREAM does: the write-allocate read of
 * `a` is not counted, so on machines without streaming stores the true
 * traffic is 4/3 of what is reported — exactly what any eager kernel that
 * writes a fresh output also pays, so the ratio stays meaningful.
 *
 * Usage: xcs_stream [elements_per_array (default 2^25)] [repeats (default 10)]
 * Prints one human line and one JSON line (`{"triad_gbps": ...}`) that
 * benchmarks/bench_eager.py reads. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : (1L << 25);
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 1024 || reps < 1) {
        fprintf(stderr, "usage: %s [elements >= 1024] [repeats >= 1]\n", argv[0]);
        return 2;
    }
    double *a = aligned_alloc(64, ((size_t)n * sizeof(double) + 63) / 64 * 64);
    double *b = aligned_alloc(64, ((size_t)n * sizeof(double) + 63) / 64 * 64);
    double *c = aligned_alloc(64, ((size_t)n * sizeof(double) + 63) / 64 * 64);
    if (!a || !b || !c) {
        fprintf(stderr, "stream: cannot allocate 3 x %ld doubles\n", n);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = 1.0 + (double)(i & 7);
        c[i] = 2.0;
    }
    const double s = 3.0;
    double best = 1e30, total = 0.0;
    for (int r = 0; r < reps + 1; r++) { /* run 0 is a warm-up */
        double t0 = now_s();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double t = now_s() - t0;
        if (r > 0) {
            if (t < best) best = t;
            total += t;
        }
    }
    /* check the result so the loop cannot be optimised away */
    double check = 0.0;
    for (long i = 0; i < n; i += n / 97) check += a[i] - (b[i] + s * c[i]);
    if (check != 0.0) {
        fprintf(stderr, "stream: wrong result\n");
        return 1;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    double bytes = 3.0 * (double)n * sizeof(double);
    double gbps = bytes / best / 1e9;
    printf("STREAM triad: %ld doubles x 3 arrays (%.0f MiB), %d threads, best of %d: %.3f ms -> %.2f GB/s (mean %.2f GB/s)\n",
           n, bytes / (1 << 20), threads, reps, best * 1e3, gbps, bytes / (total / reps) / 1e9);
    printf("{\"triad_gbps\": %.4f, \"best_s\": %.6g, \"elements\": %ld, \"threads\": %d}\n", gbps, best, n,
           threads);
    free(a);
    free(b);
    free(c);
    return 0;
}
