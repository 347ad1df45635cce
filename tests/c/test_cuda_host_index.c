/* test_cuda_host_index.c — the CUDA index kernels (codegen.h: take and
 * scatter_add, what device graphs run for gathers, fancy indexing and
 * their gradients) without a GPU: each generated source is compiled with
 * NVRTC (when present) and run on the host (kernel_host.h) with the
 * arguments the backend builds (xcs_cuda_take_args / _scatter_args), on a
 * grid small enough that the grid-stride loops go round, against the CPU
 * backend on fresh random inputs (XCS_TEST_SEED repeats a run):
 *   take         every width (1, 2, 4, 8 bytes: bool, float16, bfloat16, int32,
 *                float32, int64, float64), every axis, 0-d to 2-d indices,
 *                negative ones: the same bytes as the CPU's take;
 *   scatter_add  float32/float64/int32/int64 along an axis, with many
 *                values a position and more indices than a sort tile: the
 *                same bytes as the CPU's, the four launches of the plan;
 * argmax/argmin (a block per output meeting in shared memory, run on
 * fibers in every scheduling order): numpy's first extreme or first NaN,
 * on transposed views too; uniform/normal draws: the CPU's stream, bit
 * for bit;
 * an index out of range sets the fault bit the runtime reports (and is
 * skipped), and a dtype without a kernel is refused before any launch. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "codegen.h"
#include "kernel_build.h"
#include "nvrtc.h"
#include "testutil.h"
#include "xcs_host.h"

static xcs_nvrtc *nv;
static int nvrtc_compiled;
static test_rng R;

static uint64_t next_u64(void) { return test_rnd(&R); }
static int64_t uniform(int64_t lo, int64_t hi) { return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo)); }

/* kernel_build of source src (freed here; NULL: none). */
static xcs_kernel_host *host_build(char *src, const char *args_type, unsigned flags) {
    CHECK(src != NULL);
    if (!src) return NULL;
    xcs_kernel_host *k = kernel_build(nv, &nvrtc_compiled, src, "index.cu", args_type, flags);
    free(src);
    return k;
}

static xcs_kernel_host *kernel_for(xcs_cuda_index_kind kind, xcs_dtype dt) {
    xcs_cuda_index_spec is = {kind, dt};
    return host_build(xcs_cuda_index_codegen_alloc(&is), "xcs_index_args", 0);
}

/* Launches k with a (fault word here) on a few blocks; returns the word. */
static unsigned launch(xcs_kernel_host *k, xcs_cuda_index_args a) {
    unsigned err = 0;
    a.err = &err;
    long long blocks = (a.n + XCS_CUDA_BLOCK - 1) / XCS_CUDA_BLOCK;
    if (blocks > 3) blocks = 3; /* fewer than the work: the grid-stride loop goes round */
    if (blocks < 1) blocks = 1;
    CHECK_OK(xcs_kernel_host_launch(k, 0, &a, (unsigned)blocks, XCS_CUDA_BLOCK));
    return err;
}

/* The same for the by-rows take: a block a row, fewer blocks than rows. */
static unsigned launch_rows(xcs_kernel_host *k, xcs_cuda_index_args a) {
    unsigned err = 0;
    a.err = &err;
    long long rows = a.Q ? a.n / a.Q : 0;
    /* 16 threads, fewer than most rows: the loop along a row goes round too */
    CHECK_OK(xcs_kernel_host_launch(k, 0, &a, (unsigned)(rows > 5 ? 5 : rows < 1 ? 1 : rows), 16));
    return err;
}

static xcs_tensor *random_of(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *f = NULL, *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, nd, shape, &f));
    double *p = xcs_tensor_data(f);
    for (int64_t i = 0; i < xcs_tensor_numel(f); i++) p[i] = (double)uniform(-1000, 1000) / 8.0;
    CHECK_OK(xcs_cast(f, dt, &t));
    xcs_tensor_free(f);
    return t;
}

/* Values whose float sums round (sevenths across 2^-12 .. 2^12), so a sum
 * in another order shows in the bits; integers for the integer dtypes. */
static xcs_tensor *random_inexact(xcs_dtype dt, int nd, const int64_t *shape) {
    xcs_tensor *f = NULL, *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, nd, shape, &f));
    double *p = xcs_tensor_data(f);
    for (int64_t i = 0; i < xcs_tensor_numel(f); i++)
        p[i] = xcs_dtype_is_float(dt) ? ldexp((double)uniform(-1000000, 1000000) / 7.0, (int)uniform(-12, 13))
                                      : (double)uniform(-1000000, 1000000);
    CHECK_OK(xcs_cast(f, dt, &t));
    xcs_tensor_free(f);
    return t;
}

static xcs_tensor *indices(int nd, const int64_t *shape, int64_t lo, int64_t hi) {
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_I64, nd, shape, &t));
    int64_t *p = xcs_tensor_data(t);
    for (int64_t i = 0; i < xcs_tensor_numel(t); i++) p[i] = uniform(lo, hi);
    return t;
}

static void test_take_every_width_and_axis(void) {
    const xcs_dtype dts[] = {XCS_BOOL, XCS_F16, XCS_BF16, XCS_I32, XCS_F32, XCS_I64, XCS_F64};
    int cases = 0;
    for (size_t d = 0; d < 2 * sizeof dts / sizeof dts[0]; d++) { /* each dtype by elements, then by rows */
        bool rows = d >= sizeof dts / sizeof dts[0];
        xcs_dtype dt = dts[d % (sizeof dts / sizeof dts[0])];
        xcs_kernel_host *k = kernel_for(rows ? XCS_CUDA_TAKE_ROWS : XCS_CUDA_TAKE, dt);
        for (int trial = 0; k && trial < 12; trial++) {
            int nd = (int)uniform(1, 4), ind = (int)uniform(0, 3), axis = (int)uniform(0, nd);
            int64_t shape[3], ishape[2];
            for (int i = 0; i < nd; i++) shape[i] = uniform(1, 9);
            for (int i = 0; i < ind; i++) ishape[i] = uniform(1, 40);
            xcs_tensor *x = random_of(dt, nd, shape), *idx = indices(ind, ishape, -shape[axis], shape[axis]);
            xcs_tensor *want = NULL, *got = NULL;
            CHECK_OK(xcs_take(x, idx, axis, &want));
            if (!want) continue;
            CHECK_OK(xcs_tensor_empty(dt, want->ndim, want->shape, &got));
            xcs_cuda_index_args a;
            CHECK_OK(xcs_cuda_take_args(x, idx, axis, got, &a));
            CHECK_EQ_I(a.n, xcs_tensor_numel(want));
            if (a.n) CHECK_EQ_I(rows ? launch_rows(k, a) : launch(k, a), 0);
            CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want),
                         (size_t)xcs_tensor_numel(want) * xcs_dtype_size(dt)) == 0);
            /* one index past either end: the fault bit */
            int64_t *ip = xcs_tensor_data(idx);
            if (xcs_tensor_numel(idx) > 0) {
                ip[uniform(0, xcs_tensor_numel(idx))] = trial % 2 ? shape[axis] : -shape[axis] - 1;
                CHECK_EQ_I(rows ? launch_rows(k, a) : launch(k, a), XCS_CUDA_ERR_INDEX);
            }
            xcs_tensor_free(x);
            xcs_tensor_free(idx);
            xcs_tensor_free(want);
            xcs_tensor_free(got);
            cases++;
        }
        xcs_kernel_host_free(k);
    }
    printf("  take: %d cases\n", cases);
}

static xcs_kernel_host *index_kernel(xcs_cuda_index_kind kind, xcs_dtype dt) {
    xcs_cuda_index_spec is = {kind, dt};
    return host_build(xcs_cuda_index_codegen_alloc(&is), "xcs_index_args", XCS_KERNEL_HOST_COOPERATIVE);
}

/* scatter_add's launches as the backend makes them (xcs_cuda_scatter_plan,
 * the sort's scratch here in host memory), each on fewer blocks than its
 * work (the grid-stride loops go round; the tile sort on fibers, in a
 * random order); returns the last launch's fault word.  k[kind] runs kind. */
static unsigned run_scatter(xcs_kernel_host *const *k, xcs_cuda_index_args a) {
    unsigned err = 0;
    size_t kb = (size_t)(a.J > 0 ? a.J : 1) * sizeof(unsigned long long);
    unsigned long long *keys = malloc(kb), *keys2 = malloc(kb);
    long long *start = malloc((size_t)(a.A + 1) * sizeof *start);
    CHECK(keys && keys2 && start);
    a.keys = keys, a.keys2 = keys2, a.start = start;
    xcs_cuda_scatter_step steps[XCS_CUDA_SCATTER_STEPS];
    int n = xcs_cuda_scatter_plan(&a, steps);
    CHECK(n >= 1 && n <= XCS_CUDA_SCATTER_STEPS);
    for (int i = 0; i < n; i++) {
        err = 0;
        steps[i].args.err = &err;
        long long want = xcs_cuda_index_blocks(steps[i].kind, &steps[i].args);
        unsigned blocks = (unsigned)(want > 2 ? 2 : want < 1 ? 1 : want);
        CHECK_OK(xcs_kernel_host_launch(k[steps[i].kind], 0, &steps[i].args, blocks, XCS_CUDA_BLOCK));
    }
    free(keys);
    free(keys2);
    free(start);
    return err;
}

/* scatter_add along an axis: values [O, J, Q] onto [O, A, Q], with many
 * values a position (A small against J) and more indices than a tile (the
 * merges, runs of every length); the same bytes as the CPU's sums. */
static void test_scatter_add_same_bits(void) {
    const xcs_dtype dts[] = {XCS_F32, XCS_F64, XCS_I32, XCS_I64};
    int cases = 0, merged = 0;
    xcs_kernel_host *k[XCS_CUDA_SCATTER_BOUNDS + 1] = {NULL};
    k[XCS_CUDA_SCATTER_SORT] = index_kernel(XCS_CUDA_SCATTER_SORT, XCS_F32);
    k[XCS_CUDA_SCATTER_MERGE] = index_kernel(XCS_CUDA_SCATTER_MERGE, XCS_F32);
    k[XCS_CUDA_SCATTER_BOUNDS] = index_kernel(XCS_CUDA_SCATTER_BOUNDS, XCS_F32);
    CHECK(k[XCS_CUDA_SCATTER_SORT] && xcs_kernel_host_fibers(k[XCS_CUDA_SCATTER_SORT]));
    if (k[XCS_CUDA_SCATTER_SORT])
        CHECK_OK(xcs_kernel_host_set_schedule(k[XCS_CUDA_SCATTER_SORT], XCS_KERNEL_HOST_RANDOM, R.state));
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        k[XCS_CUDA_SCATTER_ADD] = index_kernel(XCS_CUDA_SCATTER_ADD, dts[d]);
        for (int trial = 0; k[XCS_CUDA_SCATTER_ADD] && k[XCS_CUDA_SCATTER_SORT] && trial < 8; trial++) {
            /* shapes: pre [O] (0-2 dims), idx (0-2 dims), post [Q] (0-1 dims) */
            /* (trial 0: one position; trial 1: 2-4 tiles of indices, runs of uneven length) */
            int npre = (int)uniform(0, 3), nidx = trial == 1 ? 2 : (int)uniform(0, 3), npost = (int)uniform(0, 2);
            int64_t shape[6], ishape[2], A = trial == 0 ? 1 : uniform(1, 70);
            int nd = 0;
            for (int i = 0; i < npre; i++) shape[nd++] = uniform(1, 3);
            for (int i = 0; i < nidx; i++)
                shape[nd++] = ishape[i] = trial == 1 ? uniform(50, 90) : uniform(0, 2) ? uniform(1, 90) : uniform(1, 9);
            for (int i = 0; i < npost; i++) shape[nd++] = uniform(1, 5);
            xcs_tensor *src = random_inexact(dts[d], nd, shape), *idx = indices(nidx, ishape, 0, A), *want = NULL,
                       *got = NULL;
            CHECK_OK(xcs_scatter_add_axis(idx, src, npre, A, &want));
            if (!want) continue;
            CHECK_OK(xcs_tensor_empty(dts[d], want->ndim, want->shape, &got));
            memset(xcs_tensor_data(got), 0xA5, (size_t)xcs_tensor_numel(got) * xcs_dtype_size(dts[d]));
            xcs_cuda_index_args a;
            CHECK_OK(xcs_cuda_scatter_args(idx, src, npre, got, &a));
            CHECK_EQ_I(a.n, xcs_tensor_numel(want));
            CHECK_EQ_I(run_scatter(k, a), 0);
            CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want),
                         (size_t)xcs_tensor_numel(want) * xcs_dtype_size(dts[d])) == 0);
            merged += a.J > XCS_CUDA_SCATTER_TILE;
            if (a.J > 0) { /* one index out of range (past the end or negative): the last launch's fault */
                ((int64_t *)xcs_tensor_data(idx))[uniform(0, a.J)] = trial % 2 ? A : -1;
                CHECK_EQ_I(run_scatter(k, a), XCS_CUDA_ERR_INDEX);
            }
            xcs_tensor_free(src);
            xcs_tensor_free(idx);
            xcs_tensor_free(want);
            xcs_tensor_free(got);
            cases++;
        }
        xcs_kernel_host_free(k[XCS_CUDA_SCATTER_ADD]);
    }
    for (int i = 0; i <= XCS_CUDA_SCATTER_BOUNDS; i++)
        if (i != XCS_CUDA_SCATTER_ADD) xcs_kernel_host_free(k[i]);
    printf("  scatter_add: %d cases (%d merged tiles)\n", cases, merged);
    CHECK(merged > 0);
}

/* A tensor of dtype dt and shape of values draw(dt) gives, as a transposed
 * view (strides not in C order; the shape reversed end for end) when
 * `transposed` and nd >= 2. */
static xcs_tensor *drawn(xcs_dtype dt, int nd, int64_t *shape, double (*draw)(xcs_dtype), bool transposed) {
    xcs_tensor *f = NULL, *x = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, nd, shape, &f));
    double *p = xcs_tensor_data(f);
    for (int64_t i = 0; i < xcs_tensor_numel(f); i++) p[i] = draw(dt);
    CHECK_OK(xcs_cast(f, dt, &x));
    xcs_tensor_free(f);
    if (transposed && nd >= 2) {
        int perm[3] = {0, 1, 2};
        perm[0] = nd - 1, perm[nd - 1] = 0;
        xcs_tensor *t = NULL;
        CHECK_OK(xcs_permute(x, perm, &t));
        xcs_tensor_free(x);
        x = t;
    }
    return x;
}

/* Few levels (ties decide), a NaN in 40 in float rows. */
static double argred_value(xcs_dtype dt) {
    return xcs_dtype_is_float(dt) && uniform(0, 40) == 0 ? 0.0 / 0.0 : (double)uniform(-3, 4);
}

/* argmax/argmin: the kernel's threads meet in shared memory, so it runs
 * on fibers (every scheduling order); x is a transposed view (strides not
 * C order) half the time, and the values are drawn from few levels, with
 * NaNs in float rows, so ties and NaNs decide. */
static void test_argreduce_ties_nans_and_views(void) {
    const xcs_dtype dts[] = {XCS_BOOL, XCS_I32, XCS_I64, XCS_F32, XCS_F64};
    const xcs_op ops[2] = {XCS_OP_ARGMAX, XCS_OP_ARGMIN};
    int cases = 0;
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
        for (int o = 0; o < 2; o++) {
            xcs_cuda_argred_spec as = {ops[o], dts[d]};
            xcs_kernel_host *k =
                host_build(xcs_cuda_argred_codegen_alloc(&as), "xcs_argred_args", XCS_KERNEL_HOST_COOPERATIVE);
            for (int trial = 0; k && trial < 6; trial++) {
                CHECK_OK(xcs_kernel_host_set_schedule(k, (xcs_kernel_host_schedule)(trial % 4), next_u64()));
                int nd = (int)uniform(1, 4), axis = (int)uniform(0, nd);
                int64_t shape[3];
                for (int i = 0; i < nd; i++) shape[i] = i == axis ? uniform(1, 700) : uniform(1, 5);
                xcs_tensor *x = drawn(dts[d], nd, shape, argred_value, trial % 2), *want = NULL, *got = NULL;
                CHECK_OK(xcs_argreduce(ops[o], x, axis, true, &want));
                if (want) CHECK_OK(xcs_tensor_empty(XCS_I64, want->ndim, want->shape, &got));
                xcs_cuda_argred_args a;
                if (got && !xcs_cuda_argred_args_of(ops[o], x, axis, got, &a)) {
                    long long blocks = a.n_out < 3 ? a.n_out : 3; /* fewer than the outputs: the loop goes round */
                    CHECK_OK(xcs_kernel_host_launch(k, 0, &a, (unsigned)blocks, XCS_CUDA_BLOCK));
                    CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want), (size_t)a.n_out * 8) == 0);
                }
                xcs_tensor *fr[] = {x, want, got};
                for (size_t i = 0; i < 3; i++) xcs_tensor_free(fr[i]);
                cases++;
            }
            xcs_kernel_host_free(k);
        }
    printf("  argmax/argmin: %d cases\n", cases);
}

/* argsort's launches as the backend makes them (xcs_cuda_sort_plan, the
 * merges' scratch here in host memory), each on fewer blocks than its work
 * (the grid-stride loops go round; the tile sort on fibers, in a random
 * order).  k[kind] runs kind; returns the steps. */
static int run_sort(xcs_kernel_host *const *k, xcs_cuda_sort_args a) {
    size_t kb = (size_t)(a.R * a.L > 0 ? a.R * a.L : 1) * sizeof(xcs_cuda_sort_key);
    xcs_cuda_sort_key *keys = malloc(kb), *keys2 = malloc(kb);
    CHECK(keys && keys2);
    memset(keys, 0xA5, kb); /* a key the plan forgot to write shows */
    memset(keys2, 0xA5, kb);
    a.keys = keys, a.keys2 = keys2;
    xcs_cuda_sort_step steps[XCS_CUDA_SORT_STEPS];
    int n = xcs_cuda_sort_plan(&a, steps);
    CHECK(n >= 1 && n <= XCS_CUDA_SORT_STEPS && steps[n - 1].args.emit);
    for (int i = 0; i < n; i++) {
        CHECK(steps[i].args.emit == (i == n - 1));
        long long want = xcs_cuda_sort_blocks(&steps[i]);
        unsigned blocks = (unsigned)(want > 2 ? 2 : want < 1 ? 1 : want);
        CHECK_OK(xcs_kernel_host_launch(k[steps[i].kind], 0, &steps[i].args, blocks, XCS_CUDA_BLOCK));
    }
    free(keys);
    free(keys2);
    return n;
}

/* A value of few levels (ties decide), with NaNs, zeros of both signs and
 * infinities in float rows and each integer type's extremes. */
static double sort_value(xcs_dtype dt) {
    int64_t r = uniform(0, 40);
    if (xcs_dtype_is_float(dt)) {
        if (r == 0) return 0.0 / 0.0;
        if (r == 1) return -0.0;
        if (r == 2) return -1.0 / 0.0;
        if (r == 3) return 1.0 / 0.0;
    }
    if (dt == XCS_I32 && r < 2) return r ? 2147483647.0 : -2147483648.0;
    if (dt == XCS_I64 && r < 2) return r ? 4611686018427387904.0 : -9223372036854775808.0;
    return dt == XCS_BOOL ? (double)(r % 2) : (double)uniform(-4, 5) / (xcs_dtype_is_float(dt) ? 4.0 : 1.0);
}

/* argsort: rows short (several tiles a block) and longer than a tile (the
 * merges: runs of every length, the last one short), along every axis, on
 * transposed views half the time: the CPU's indices exactly (a stable sort
 * has one answer: ties in order, NaNs last, -0 == +0). */
static void test_argsort_same_order(void) {
    const xcs_dtype dts[] = {XCS_BOOL, XCS_I32, XCS_I64, XCS_F32, XCS_F64};
    int cases = 0, merged = 0;
    xcs_kernel_host *k[XCS_CUDA_SORT_MERGE + 1] = {NULL};
    xcs_cuda_sort_spec ms = {XCS_CUDA_SORT_MERGE, XCS_F32};
    k[XCS_CUDA_SORT_MERGE] = host_build(xcs_cuda_sort_codegen_alloc(&ms), "xcs_sort_args", 0);
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        xcs_cuda_sort_spec ts = {XCS_CUDA_SORT_TILE, dts[d]};
        k[XCS_CUDA_SORT_TILE] = host_build(xcs_cuda_sort_codegen_alloc(&ts), "xcs_sort_args", XCS_KERNEL_HOST_COOPERATIVE);
        CHECK(k[XCS_CUDA_SORT_TILE] && xcs_kernel_host_fibers(k[XCS_CUDA_SORT_TILE]));
        for (int trial = 0; k[XCS_CUDA_SORT_TILE] && k[XCS_CUDA_SORT_MERGE] && trial < 8; trial++) {
            CHECK_OK(xcs_kernel_host_set_schedule(k[XCS_CUDA_SORT_TILE], XCS_KERNEL_HOST_RANDOM, next_u64()));
            int nd = (int)uniform(1, 4), axis = (int)uniform(0, nd);
            int64_t shape[3];
            for (int i = 0; i < nd; i++) /* trials 0, 1: a row of 1 to 4 tiles and more; else short */
                shape[i] = i != axis ? uniform(1, 4) : trial < 2 ? uniform(2049, 9000) : uniform(1, trial % 2 ? 40 : 700);
            xcs_tensor *x = drawn(dts[d], nd, shape, sort_value, trial % 2), *want = NULL, *got = NULL;
            CHECK_OK(xcs_argsort(x, axis, &want));
            if (want) CHECK_OK(xcs_tensor_empty(XCS_I64, want->ndim, want->shape, &got));
            xcs_cuda_sort_args a;
            if (got && !xcs_cuda_sort_args_of(x, axis, got, &a)) {
                memset(xcs_tensor_data(got), 0xA5, (size_t)xcs_tensor_numel(got) * 8);
                merged += run_sort(k, a) > 1;
                CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want), (size_t)xcs_tensor_numel(want) * 8) == 0);
            }
            xcs_tensor *fr[] = {x, want, got};
            for (size_t i = 0; i < 3; i++) xcs_tensor_free(fr[i]);
            cases++;
        }
        xcs_kernel_host_free(k[XCS_CUDA_SORT_TILE]);
    }
    xcs_kernel_host_free(k[XCS_CUDA_SORT_MERGE]);
    printf("  argsort: %d cases (%d merged)\n", cases, merged);
    CHECK(merged > 0);
}

/* uniform / normal draws: the kernel's numbers are the CPU's, bit for bit
 * (the host build has the CPU's libm, so normals match exactly too), for
 * counts that end mid-block and bounds of every kind. */
static void test_random_streams(void) {
    const xcs_op ops[2] = {XCS_OP_RANDOM_UNIFORM, XCS_OP_RANDOM_NORMAL};
    const xcs_dtype dts[2] = {XCS_F32, XCS_F64};
    const double bounds[][2] = {{0, 1}, {-3, 5}, {2.5, 2.5}, {-1e-30, 1e-30}, {1e6, 1e6 + 1}};
    int cases = 0;
    for (int o = 0; o < 2; o++)
        for (int d = 0; d < 2; d++) {
            xcs_cuda_random_spec rs = {ops[o], dts[d]};
            xcs_kernel_host *k = host_build(xcs_cuda_random_codegen_alloc(&rs), "xcs_random_args", 0);
            for (int trial = 0; k && trial < 5; trial++) {
                int64_t n = uniform(0, 3000);
                xcs_rng_key key = {{(uint32_t)next_u64(), (uint32_t)next_u64()}};
                double lo = bounds[trial][0], hi = bounds[trial][1];
                xcs_tensor *want = NULL, *got = NULL;
                if (ops[o] == XCS_OP_RANDOM_UNIFORM) {
                    CHECK_OK(xcs_random_uniform(key, dts[d], 1, &n, lo, hi, &want));
                } else { /* loc 0, scale 1 */
                    CHECK_OK(xcs_random_normal(key, dts[d], 1, &n, &want));
                    lo = 0, hi = 1;
                }
                CHECK_OK(xcs_tensor_empty(dts[d], 1, &n, &got));
                xcs_cuda_random_args a;
                CHECK_OK(xcs_cuda_random_args_of(ops[o], key, lo, hi, got, &a));
                long long blocks = (a.n / 4 + XCS_CUDA_BLOCK) / XCS_CUDA_BLOCK;
                if (a.n) CHECK_OK(xcs_kernel_host_launch(k, 0, &a, (unsigned)(blocks > 2 ? 2 : blocks), XCS_CUDA_BLOCK));
                if (want && got)
                    CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want), (size_t)n * xcs_dtype_size(dts[d])) == 0);
                xcs_tensor_free(want);
                xcs_tensor_free(got);
                cases++;
            }
            xcs_kernel_host_free(k);
        }
    printf("  uniform/normal: %d cases\n", cases);
    xcs_tensor *h = NULL;
    const int64_t n = 4;
    xcs_cuda_random_args a;
    CHECK_OK(xcs_tensor_empty(XCS_F16, 1, &n, &h));
    CHECK_ERR(xcs_cuda_random_args_of(XCS_OP_RANDOM_NORMAL, (xcs_rng_key){{1, 2}}, 0, 1, h, &a), XCS_ERR_UNSUPPORTED,
              "no CUDA kernel for dtype float16"); /* core draws float32 and rounds */
    xcs_tensor_free(h);
}

static void test_refusals(void) {
    const int64_t n = 4;
    xcs_tensor *b = NULL, *idx = NULL, *x = NULL, *out = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_BOOL, 1, &n, &b));
    CHECK_OK(xcs_arange(0, 4, 1, XCS_I64, &idx));
    xcs_cuda_index_args a;
    CHECK_ERR(xcs_cuda_scatter_args(idx, b, 0, b, &a), XCS_ERR_UNSUPPORTED, "no CUDA kernel for dtype bool");
    CHECK_OK(xcs_arange(0, 4, 1, XCS_I32, &x));
    CHECK_OK(xcs_tensor_empty(XCS_I32, 1, &n, &out));
    CHECK_ERR(xcs_cuda_take_args(x, x, 0, out, &a), XCS_ERR_INTERNAL, "int64 indices"); /* core casts them first */
    xcs_tensor *h = NULL, *hi = NULL;
    xcs_cuda_sort_args sa;
    CHECK_OK(xcs_tensor_empty(XCS_F16, 1, &n, &h));
    CHECK_OK(xcs_tensor_empty(XCS_I64, 1, &n, &hi));
    CHECK_ERR(xcs_cuda_sort_args_of(h, 0, hi, &sa), XCS_ERR_UNSUPPORTED, "no CUDA kernel for dtype float16");
    CHECK_ERR(xcs_cuda_sort_args_of(x, 0, out, &sa), XCS_ERR_INTERNAL, "bad operands"); /* an int32 out */
    xcs_tensor *f[] = {b, idx, x, out, h, hi};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) xcs_tensor_free(f[i]);
}

int main(void) {
    CHECK_OK(xcs_host_init());
    R.state = test_run_seed(); /* fresh inputs each run; the seed repeats one */
    if (!kernel_tests_open(&nv)) return 77;
    RUN(test_take_every_width_and_axis);
    RUN(test_scatter_add_same_bits);
    RUN(test_argreduce_ties_nans_and_views);
    RUN(test_argsort_same_order);
    RUN(test_random_streams);
    RUN(test_refusals);
    printf("%d kernels compiled with NVRTC\n", nvrtc_compiled);
    xcs_nvrtc_close(nv);
    return check_report();
}
