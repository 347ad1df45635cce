/* test_take.c — the CPU gather kernel against a per-element reference.
 *
 * xcs_cpu_take on hand-made views (permuted, strided, reversed, broadcast)
 * for every dtype and axis, index arrays of rank 0-2 (repeats, strided,
 * int32), the flattened form (XCS_AXIS_NONE), sizes past the parallel
 * threshold, and out-of-range indices; and its adjoint, the scatter-add
 * along an axis (xcs_scatter_add_axis): each way its threads split the
 * work gives the bits of one loop in order of the indices, and bad
 * operands are errors; and both along an axis (take_along_axis). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "half.h"
#include "cpu_kernels.h"
#include "testutil.h"
#include "xcs_host.h"

static test_rng rng = {0x13198A2E03707344ull};

/* Test views (layouts: testutil.h) hold distinct-ish values: a different
 * affine function of the storage index per dtype; bools are random. */
static void fill_take(void *ctx, xcs_dtype dt, char *p, int64_t i) {
    switch (dt) {
    case XCS_BOOL: p[i] = (char)(test_rnd(&rng) & 1); break;
    case XCS_I32: ((int32_t *)(void *)p)[i] = (int32_t)i * 7 - 100; break;
    case XCS_I64: ((int64_t *)(void *)p)[i] = (int64_t)i * 1000003 - 5; break;
    case XCS_F32: ((float *)(void *)p)[i] = (float)i * 0.5f - 3; break;
    case XCS_F16: ((uint16_t *)(void *)p)[i] = xcs_f64_to_f16((double)i * 0.125 - 7); break;
    case XCS_BF16: ((uint16_t *)(void *)p)[i] = xcs_f64_to_bf16((double)i * 0.375 + 2); break;
    default: ((double *)(void *)p)[i] = (double)i * 0.25 + 1; break;
    }
}
static xcs_tensor *make_view(xcs_dtype dt, int nd, const int64_t *shape, test_layout L) {
    return test_make_view(dt, nd, shape, L, fill_take, NULL);
}

/* An index tensor of the given shape with values in [0, n); transposed
 * (strided) when `strided` and 2-d. */
static xcs_tensor *make_idx(xcs_dtype dt, int nd, const int64_t *shape, int64_t n, bool strided) {
    static const int T2[] = {1, 0};
    xcs_tensor *t = make_view(dt, nd, shape, (test_layout){strided && nd == 2 ? T2 : NULL, 1, 0, 0});
    char *p = t->storage->data;
    int64_t cap = (int64_t)(t->storage->nbytes / xcs_dtype_size(dt));
    for (int64_t i = 0; i < cap; i++) {
        int64_t v = (int64_t)(test_rnd(&rng) % (uint64_t)(n > 0 ? n : 1));
        if (dt == XCS_I64) ((int64_t *)(void *)p)[i] = v;
        else ((int32_t *)(void *)p)[i] = (int32_t)v;
    }
    return t;
}

/* out must equal take(x, idx, axis); returns mismatches. */
static int check_take(const xcs_tensor *x, const xcs_tensor *idx, int axis, const xcs_tensor *out) {
    int64_t ni = xcs_tensor_numel(idx), nout = xcs_tensor_numel(out), inner = 1, n;
    if (axis == XCS_AXIS_NONE) {
        n = xcs_tensor_numel(x);
    } else {
        n = x->shape[axis];
        for (int d = axis + 1; d < x->ndim; d++) inner *= x->shape[d];
    }
    int bad = 0;
    for (int64_t f = 0; f < nout; f++) {
        int64_t in = f % inner, j = f / inner % ni, o = f / inner / ni;
        int64_t v = xcs_tensor_get_i64(idx, j);
        int64_t xf = (o * n + v) * inner + in;
        double got = xcs_tensor_get_f64(out, f), want = xcs_tensor_get_f64(x, xf);
        int64_t gi = xcs_tensor_get_i64(out, f), wi = xcs_tensor_get_i64(x, xf);
        if ((got != want || gi != wi) && bad++ < 3)
            fprintf(stderr, "  %s axis %d out[%lld]: got %.17g want %.17g\n",
                    xcs_dtype_name(x->dtype), axis, (long long)f, got, want);
    }
    return bad;
}

static xcs_tensor *take_out(const xcs_tensor *x, const xcs_tensor *idx, int axis) {
    int64_t shape[XCS_MAX_DIMS];
    int nd = 0;
    if (axis == XCS_AXIS_NONE) {
        for (int d = 0; d < idx->ndim; d++) shape[nd++] = idx->shape[d];
    } else {
        for (int d = 0; d < axis; d++) shape[nd++] = x->shape[d];
        for (int d = 0; d < idx->ndim; d++) shape[nd++] = idx->shape[d];
        for (int d = axis + 1; d < x->ndim; d++) shape[nd++] = x->shape[d];
    }
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(x->dtype, nd, shape, &t) != XCS_OK) return NULL;
    memset(t->storage->data, 0x5a, t->storage->nbytes);
    return t;
}

static int take_case(xcs_tensor *x, xcs_tensor *idx, int axis) {
    xcs_tensor *o = take_out(x, idx, axis);
    int bad = 0;
    if (!o) return 1;
    xcs_status st = xcs_cpu_take(x, idx, axis, o);
    if (st != XCS_OK) {
        fprintf(stderr, "  take failed: %s\n", xcs_last_error());
        bad = 1;
    } else {
        bad = check_take(x, idx, axis, o);
    }
    xcs_tensor_free(o);
    return bad;
}

static const int P120[] = {1, 2, 0};

static void test_axes_layouts_dtypes(void) {
    test_layout lays[] = {{0}, {P120, 1, 0, 0}, {NULL, 2, 5u, 0}, {NULL, 1, 0, 2u}, {P120, 3, 2u, 1u}};
    static const int64_t ishapes[][2] = {{0, 0}, {7, 0}, {2, 3}, {0, 0}};
    static const int inds[] = {0, 1, 2, 1};
    int bad = 0;
    for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++)
        for (int l = 0; l < 5; l++)
            for (int axis = 0; axis < 3; axis++)
                for (int s = 0; s < 4; s++) {
                    xcs_tensor *x = make_view((xcs_dtype)dt, 3, SHAPE(4, 5, 6), lays[l]);
                    int64_t ish[2] = {s == 3 ? 0 : ishapes[s][0], ishapes[s][1]};
                    xcs_tensor *idx = make_idx(s == 1 ? XCS_I32 : XCS_I64, inds[s], ish,
                                               x->shape[axis], s == 2 && l % 2);
                    bad += take_case(x, idx, axis);
                    xcs_tensor_free(idx);
                    xcs_tensor_free(x);
                }
    CHECK_EQ_I(bad, 0);
}

static void test_flat(void) {
    int bad = 0;
    test_layout lays[] = {{0}, {P120, 1, 0, 0}, {NULL, 2, 3u, 4u}};
    for (int dt = 0; dt < XCS_DTYPE_COUNT; dt++)
        for (int l = 0; l < 3; l++) {
            xcs_tensor *x = make_view((xcs_dtype)dt, 3, SHAPE(3, 4, 5), lays[l]);
            xcs_tensor *idx = make_idx(XCS_I64, 2, SHAPE(4, 9), 60, l == 1);
            bad += take_case(x, idx, XCS_AXIS_NONE);
            xcs_tensor_free(idx);
            xcs_tensor_free(x);
        }
    xcs_tensor *x = make_view(XCS_F64, 0, SHAPE(0), (test_layout){0}); /* 0-d */
    xcs_tensor *idx = make_idx(XCS_I64, 1, SHAPE(3), 1, false);
    bad += take_case(x, idx, XCS_AXIS_NONE);
    xcs_tensor_free(idx);
    xcs_tensor_free(x);
    CHECK_EQ_I(bad, 0);
}

/* Past XCS_CPU_PAR_MIN: whole-row memcpy (axis 0), element gathers (last
 * axis), and a strided inner block. */
static void test_big(void) {
    int bad = 0;
    static const int T2[] = {1, 0};
    xcs_tensor *x = make_view(XCS_F32, 2, SHAPE(1000, 300), (test_layout){0});
    xcs_tensor *idx = make_idx(XCS_I64, 1, SHAPE(5000), 1000, false);
    bad += take_case(x, idx, 0);
    xcs_tensor_free(idx);
    idx = make_idx(XCS_I64, 2, SHAPE(40, 50), 300, true);
    bad += take_case(x, idx, 1);
    xcs_tensor_free(idx);
    xcs_tensor_free(x);
    x = make_view(XCS_I64, 2, SHAPE(1000, 300), (test_layout){T2, 1, 0, 0});
    idx = make_idx(XCS_I32, 1, SHAPE(3000), 1000, false);
    bad += take_case(x, idx, 0);
    xcs_tensor_free(idx);
    xcs_tensor_free(x);
    CHECK_EQ_I(bad, 0);
}

static void test_errors(void) {
    xcs_tensor *x = make_view(XCS_F32, 2, SHAPE(3, 4), (test_layout){0});
    xcs_tensor *idx = make_idx(XCS_I64, 1, SHAPE(2), 3, false);
    xcs_tensor *o = take_out(x, idx, 0);
    ((int64_t *)idx->storage->data)[1] = 3;
    CHECK_ERR(xcs_cpu_take(x, idx, 0, o), XCS_ERR_INDEX, "out of bounds");
    ((int64_t *)idx->storage->data)[1] = -1;
    CHECK_ERR(xcs_cpu_take(x, idx, 0, o), XCS_ERR_INDEX, "-1");
    CHECK_ERR(xcs_cpu_take(x, idx, 2, o), XCS_ERR_VALUE, "axis");
    /* the scalar gather (one element a row: a 1-D x, or x flattened) checks in its loop */
    xcs_tensor *x1 = make_view(XCS_F64, 1, SHAPE(5), (test_layout){0}), *i1 = make_idx(XCS_I32, 1, SHAPE(4), 5, false);
    xcs_tensor *o1 = take_out(x1, i1, 0);
    ((int32_t *)i1->storage->data)[2] = 5;
    CHECK_ERR(xcs_cpu_take(x1, i1, 0, o1), XCS_ERR_INDEX, "index 5 is out of bounds for size 5");
    ((int32_t *)i1->storage->data)[2] = -2;
    CHECK_ERR(xcs_cpu_take(x1, i1, 0, o1), XCS_ERR_INDEX, "index -2");
    ((int64_t *)idx->storage->data)[1] = 12;
    xcs_tensor *of = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F32, 1, SHAPE(2), &of));
    CHECK_ERR(xcs_cpu_take(x, idx, XCS_AXIS_NONE, of), XCS_ERR_INDEX, "index 12 is out of bounds for size 12");
    xcs_tensor_free(of);
    xcs_tensor_free(o1);
    xcs_tensor_free(i1);
    xcs_tensor_free(x1);
    xcs_tensor *f = make_view(XCS_F32, 1, SHAPE(2), (test_layout){0});
    CHECK_ERR(xcs_cpu_take(x, f, 0, o), XCS_ERR_TYPE, "float32");
    xcs_tensor_free(f);
    xcs_tensor_free(o);
    xcs_tensor_free(idx);
    /* an empty index array writes nothing and reads no index */
    idx = make_idx(XCS_I64, 1, SHAPE(0), 3, false);
    o = take_out(x, idx, 1);
    CHECK_OK(xcs_cpu_take(x, idx, 1, o));
    xcs_tensor_free(o);
    xcs_tensor_free(idx);
    xcs_tensor_free(x);
}

/* out[O, A, Q] = zeros; out[o, idx[j], q] += src[o, j, q], one j at a time. */
#define SCATTER_REF(T)                                                                   \
    do {                                                                                 \
        T *o_ = xcs_tensor_data(want);                                                   \
        const T *s_ = xcs_tensor_data(src);                                              \
        memset(o_, 0, (size_t)(O * A * Q) * sizeof(T));                                  \
        for (int64_t o = 0; o < O; o++)                                                  \
            for (int64_t j = 0; j < J; j++)                                              \
                for (int64_t q = 0; q < Q; q++) o_[(o * A + ip[j]) * Q + q] += s_[(o * J + j) * Q + q]; \
    } while (0)

static void test_scatter_threads_same_bits(void) {
    /* {O, J, A, Q}: long rows (split by columns), many outer rows (split
     * by them), one outer row of short rows (split by positions), and
     * below the parallel threshold */
    const int64_t cfg[][4] = {{1, 3000, 500, 300}, {7, 900, 50, 9}, {1, 40000, 700, 3}, {2, 30, 9, 5}};
    const xcs_dtype dts[] = {XCS_F32, XCS_F64, XCS_I32, XCS_I64};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
        for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
            const int64_t O = cfg[c][0], J = cfg[c][1], A = cfg[c][2], Q = cfg[c][3];
            xcs_tensor *idx = NULL, *src = NULL, *want = NULL, *got = NULL, *f = NULL;
            CHECK_OK(xcs_tensor_empty(XCS_I64, 1, &J, &idx));
            CHECK_OK(xcs_tensor_empty(XCS_F64, 3, SHAPE(O, J, Q), &f));
            int64_t *ip = xcs_tensor_data(idx);
            for (int64_t j = 0; j < J; j++) ip[j] = (int64_t)(test_rnd(&rng) % (uint64_t)A);
            double *fp = xcs_tensor_data(f); /* sums that round: another order shows */
            for (int64_t i = 0; i < O * J * Q; i++)
                fp[i] = ldexp((double)(int64_t)(test_rnd(&rng) % 2000001) - 1e6, (int)(test_rnd(&rng) % 25) - 12) / 7;
            CHECK_OK(xcs_cast(f, dts[d], &src));
            CHECK_OK(xcs_tensor_empty(dts[d], 3, SHAPE(O, A, Q), &want));
            CHECK_OK(xcs_tensor_empty(dts[d], 3, SHAPE(O, A, Q), &got));
            switch (dts[d]) {
            case XCS_F32: SCATTER_REF(float); break;
            case XCS_F64: SCATTER_REF(double); break;
            case XCS_I32: SCATTER_REF(uint32_t); break;
            default: SCATTER_REF(uint64_t); break;
            }
            memset(xcs_tensor_data(got), 0x5A, (size_t)(O * A * Q) * xcs_dtype_size(dts[d]));
            CHECK_OK(xcs_cpu_scatter_add(idx, src, 1, got));
            CHECK(memcmp(xcs_tensor_data(got), xcs_tensor_data(want), (size_t)(O * A * Q) * xcs_dtype_size(dts[d])) == 0);
            xcs_tensor *viac = NULL; /* through core: the same */
            CHECK_OK(xcs_scatter_add_axis(idx, src, 1, A, &viac));
            if (viac) CHECK(memcmp(xcs_tensor_data(viac), xcs_tensor_data(want), (size_t)(O * A * Q) * xcs_dtype_size(dts[d])) == 0);
            xcs_tensor *all[] = {idx, src, want, got, f, viac};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xcs_tensor_free(all[i]);
        }
}

static void test_scatter_errors(void) {
    xcs_tensor *idx = make_idx(XCS_I64, 1, SHAPE(2), 3, false), *src = NULL, *out = NULL, *fi = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F32, 2, SHAPE(4, 2), &src));
    memset(xcs_tensor_data(src), 0, 8 * sizeof(float));
    CHECK_ERR(xcs_scatter_add_axis(idx, src, 0, 3, &out), XCS_ERR_SHAPE, "indices' shape (2,)");
    CHECK_ERR(xcs_scatter_add_axis(idx, src, 2, 3, &out), XCS_ERR_SHAPE, "do not fit");
    CHECK_ERR(xcs_scatter_add_axis(idx, src, -1, 3, &out), XCS_ERR_SHAPE, "do not fit");
    CHECK_ERR(xcs_scatter_add_axis(idx, src, 1, -1, &out), XCS_ERR_VALUE, "negative size");
    CHECK_OK(xcs_cast(idx, XCS_F32, &fi));
    CHECK_ERR(xcs_scatter_add_axis(fi, src, 1, 3, &out), XCS_ERR_TYPE, "integers");
    ((int64_t *)idx->storage->data)[1] = 3;
    CHECK_ERR(xcs_scatter_add_axis(idx, src, 1, 3, &out), XCS_ERR_INDEX, "index 3 at position 1");
    ((int64_t *)idx->storage->data)[1] = -1; /* no wrapping: the adjoint gets wrapped indices */
    CHECK_ERR(xcs_scatter_add_axis(idx, src, 1, 3, &out), XCS_ERR_INDEX, "index -1");
    ((int64_t *)idx->storage->data)[1] = 2;
    CHECK_OK(xcs_scatter_add_axis(idx, src, 1, 3, &out));
    if (out) CHECK(out->ndim == 2 && out->shape[0] == 4 && out->shape[1] == 3);
    xcs_tensor_free(out);
    xcs_tensor_free(fi);
    xcs_tensor_free(src);
    xcs_tensor_free(idx);
}

/* take_along_axis and its adjoint (core, from take and the scatter-add)
 * against per-element loops on an axis in the middle, with a strided x and
 * an index of another length there; then their shape errors. */
static void test_along_axis(void) {
    const int64_t O = 3, A = 5, J = 7, Q = 4;
    static const int T3[] = {2, 1, 0};
    xcs_tensor *x = make_view(XCS_F64, 3, SHAPE(O, A, Q), (test_layout){T3, 1, 0, 0}); /* reversed dims: strided */
    xcs_tensor *idx = make_idx(XCS_I64, 3, SHAPE(O, J, Q), A, false), *src = NULL, *got = NULL, *back = NULL;
    CHECK_OK(xcs_take_along_axis(x, idx, 1, &got));
    CHECK_OK(xcs_scatter_add_along_axis(idx, got, 1, A + 2, &back));
    if (got && back) {
        CHECK_SHAPE(got, 3, O, J, Q);
        CHECK_SHAPE(back, 3, O, A + 2, Q);
        const int64_t *ip = xcs_tensor_data(idx);
        double want_back[3 * 7 * 4] = {0};
        int bad = 0;
        for (int64_t o = 0; o < O; o++)
            for (int64_t j = 0; j < J; j++)
                for (int64_t q = 0; q < Q; q++) {
                    const int64_t k = ip[(o * J + j) * Q + q];
                    const double v = xcs_tensor_get_f64(x, (o * A + k) * Q + q);
                    bad += xcs_tensor_get_f64(got, (o * J + j) * Q + q) != v;
                    want_back[(o * (A + 2) + k) * Q + q] += v;
                }
        for (int64_t i = 0; i < O * (A + 2) * Q; i++) bad += xcs_tensor_get_f64(back, i) != want_back[i];
        CHECK_EQ_I(bad, 0);
    }
    xcs_tensor *i32 = NULL, *short_idx = make_idx(XCS_I64, 3, SHAPE(O, J, Q - 1), A, false), *out = NULL;
    CHECK_OK(xcs_cast(idx, XCS_I32, &i32));
    CHECK_ERR(xcs_take_along_axis(x, i32, 1, &out), XCS_ERR_SHAPE, "int64 indices");
    CHECK_ERR(xcs_take_along_axis(x, short_idx, 1, &out), XCS_ERR_SHAPE, "do not match");
    CHECK_ERR(xcs_take_along_axis(x, idx, 3, &out), XCS_ERR_SHAPE, "at axis 3");
    CHECK_ERR(xcs_scatter_add_along_axis(idx, x, 1, A, &out), XCS_ERR_SHAPE, "7 indices for 5 values");
    CHECK_OK(xcs_copy(got, &src));
    CHECK_ERR(xcs_scatter_add_along_axis(idx, src, 1, -1, &out), XCS_ERR_SHAPE, "length -1");
    xcs_tensor *all[] = {x, idx, src, got, back, i32, short_idx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xcs_tensor_free(all[i]);
}

int main(void) {
    CHECK_OK(xcs_host_init());
    RUN(test_axes_layouts_dtypes);
    RUN(test_flat);
    RUN(test_big);
    RUN(test_errors);
    RUN(test_scatter_threads_same_bits);
    RUN(test_scatter_errors);
    RUN(test_along_axis);
    return check_report();
}
