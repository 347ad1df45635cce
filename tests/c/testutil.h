/* testutil.h — helpers shared by the kernel C tests: a seeded random stream
 * and strided test views (permuted, strided, reversed, broadcast) over fresh
 * storage whose values each test fills its own way. */
#ifndef XCS_TEST_TESTUTIL_H
#define XCS_TEST_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "half.h"
#include "xcs.h"

/* splitmix64: one stream per test file, seeded there, so each file's values
 * stay the same whatever the other files draw. */
typedef struct test_rng { uint64_t state; } test_rng;

static inline uint64_t test_rnd(test_rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* This run's seed: XCS_TEST_SEED, else the time (fresh inputs every run),
 * printed so that a failing run can be repeated. */
static inline uint64_t test_run_seed(void) {
    const char *env = getenv("XCS_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("XCS_TEST_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

/* Uniform in [0, 1), 53 random bits. */
static inline double test_rnd_unit(test_rng *r) { return (double)(test_rnd(r) >> 11) * 0x1p-53; }

/* Layout of a test view: dims permuted in memory (perm[i] = the logical dim
 * stored at memory position i; NULL: C order), every stride times `step`
 * (0 counts as 1), dims in flip reversed (negative stride), dims in bcast
 * with stride 0.  {0} is a plain C-contiguous view. */
typedef struct test_layout { const int *perm; int step; unsigned flip, bcast; } test_layout;

/* Stores element i of a buffer of dtype dt: iv for bool and integer dtypes
 * (exact, wrapping to int32), u for float ones. */
static inline void test_store(xcs_dtype dt, char *data, int64_t i, int64_t iv, double u) {
    switch (dt) {
    case XCS_BOOL: data[i] = (char)iv; break;
    case XCS_I32: ((int32_t *)(void *)data)[i] = (int32_t)iv; break;
    case XCS_I64: ((int64_t *)(void *)data)[i] = iv; break;
    case XCS_F32: ((float *)(void *)data)[i] = (float)u; break;
    case XCS_F16: ((uint16_t *)(void *)data)[i] = xcs_f64_to_f16(u); break;
    case XCS_BF16: ((uint16_t *)(void *)data)[i] = xcs_f64_to_bf16(u); break;
    default: ((double *)(void *)data)[i] = u; break;
    }
}

/* Writes element i of the storage buffer `data` of dtype dt. */
typedef void (*test_fill_fn)(void *ctx, xcs_dtype dt, char *data, int64_t i);

/* A view of the given shape and layout over fresh storage; fill(ctx, ...)
 * is called for every storage element in order (including the ones the
 * view skips, one spare past the end).  Returns an owned tensor (the
 * storage is owned by it), or NULL after printing the error. */
static inline xcs_tensor *test_make_view(xcs_dtype dt, int nd, const int64_t *shape, test_layout L,
                                         test_fill_fn fill, void *ctx) {
    int64_t mshape[XCS_MAX_DIMS], mstr[XCS_MAX_DIMS], str[XCS_MAX_DIMS], off = 0, n = 1;
    int step = L.step ? L.step : 1;
    for (int i = 0; i < nd; i++) mshape[i] = shape[L.perm ? L.perm[i] : i];
    for (int i = nd - 1; i >= 0; i--) {
        mstr[i] = n * step;
        n *= mshape[i] > 0 ? mshape[i] : 1;
    }
    for (int i = 0; i < nd; i++) str[L.perm ? L.perm[i] : i] = mstr[i];
    for (int d = 0; d < nd; d++) {
        if (L.bcast >> d & 1u) str[d] = 0;
        if ((L.flip >> d & 1u) && shape[d] > 0) {
            off += (shape[d] - 1) * str[d];
            str[d] = -str[d];
        }
    }
    int64_t cap = n * step + 1;
    xcs_storage *s = xcs_storage_new((size_t)cap * xcs_dtype_size(dt), XCS_DEVICE_CPU);
    for (int64_t i = 0; i < cap; i++) fill(ctx, dt, s->data, i);
    xcs_tensor *t = NULL;
    if (xcs_tensor_from_storage(s, dt, nd, shape, str, off, &t) != XCS_OK)
        fprintf(stderr, "test_make_view: %s\n", xcs_last_error());
    xcs_storage_release(s);
    return t;
}

#endif
