/* test_reduce.c — CPU reductions and arg-reductions against naive loops.
 *
 * xcs_cpu_reduce / xcs_cpu_argreduce are called directly on hand-made views
 * (permuted, strided, reversed, broadcast) for every op, dtype and subset of
 * axes; the reference walks x in C order and folds each element into its
 * output slot in double (floats) or wrapping uint64 (ints).  Also: NaN
 * propagation, empty reductions, sizes past the parallel and block
 * thresholds, and bitwise equality across thread counts.
 *
 * `test_reduce --bench` prints reduction throughput in GB/s. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cpu_kernels.h"
#include "testutil.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static test_rng rng = {0x243F6A8885A308D3ull};

/* Values of test views (layouts: testutil.h), by vals: 0 uniform [-1, 1),
 * 1 exp(uniform [-0.5, 0.5)) (log-mean 0: long products neither vanish nor
 * blow up quickly), 2 ints in [-3, 3] (ties).  Ints are always in [-3, 3],
 * bools fair coins. */
static void fill_red(void *ctx, xcs_dtype dt, char *p, int64_t i) {
    int vals = *(const int *)ctx;
    double u = vals == 1 ? exp(test_rnd_unit(&rng) - 0.5)
             : vals == 2 ? (double)(test_rnd(&rng) % 7) - 3
                         : test_rnd_unit(&rng) * 2 - 1;
    int64_t iv = dt == XCS_BOOL            ? (int64_t)(test_rnd(&rng) % 2)
               : xcs_dtype_is_float(dt) ? 0
                                        : (int64_t)(test_rnd(&rng) % 7) - 3;
    test_store(dt, p, i, iv, u);
}
static xcs_tensor *make_view(xcs_dtype dt, int nd, const int64_t *shape, test_layout L, int vals) {
    return test_make_view(dt, nd, shape, L, fill_red, &vals);
}

static xcs_tensor *keepdims_out(xcs_dtype dt, const xcs_tensor *x, unsigned axes) {
    int64_t shape[XCS_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = axes >> d & 1u ? 1 : x->shape[d];
    xcs_tensor *t = NULL;
    xcs_tensor_empty(dt, x->ndim, shape, &t);
    memset(t->storage->data, 0x55, t->storage->nbytes);
    return t;
}

static xcs_dtype result_dtype(xcs_op op, xcs_dtype dt) {
    if ((op == XCS_OP_SUM || op == XCS_OP_PROD) && !xcs_dtype_is_float(dt)) return XCS_I64;
    return dt;
}

/* Output slot (C order over the keepdims shape) of x's flat index f. */
static int64_t out_slot(const xcs_tensor *x, unsigned axes, int64_t f) {
    int64_t idx[XCS_MAX_DIMS], o = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        idx[d] = f % x->shape[d];
        f /= x->shape[d];
    }
    for (int d = 0; d < x->ndim; d++) o = o * (axes >> d & 1u ? 1 : x->shape[d]) + (axes >> d & 1u ? 0 : idx[d]);
    return o;
}

/* Returns the number of wrong outputs of op(x, axes) in out. */
static int check_reduce(xcs_op op, const xcs_tensor *x, unsigned axes, const xcs_tensor *out) {
    int64_t nx = xcs_tensor_numel(x), no = xcs_tensor_numel(out);
    bool fl = xcs_dtype_is_float(x->dtype);
    double *rf = malloc((size_t)no * sizeof *rf), *mag = calloc((size_t)no, sizeof *mag);
    uint64_t *ri = malloc((size_t)no * sizeof *ri);
    for (int64_t o = 0; o < no; o++) {
        rf[o] = op == XCS_OP_SUM ? 0 : op == XCS_OP_PROD ? 1 : op == XCS_OP_MAX ? -INFINITY : INFINITY;
        ri[o] = op == XCS_OP_PROD ? 1 : 0;
    }
    bool *seen = calloc((size_t)no, 1);
    for (int64_t f = 0; f < nx; f++) {
        int64_t o = out_slot(x, axes, f);
        if (fl) {
            double v = xcs_tensor_get_f64(x, f);
            if (op == XCS_OP_SUM) rf[o] += v, mag[o] += fabs(v);
            else if (op == XCS_OP_PROD) rf[o] *= v;
            else if (isnan(v) || isnan(rf[o])) rf[o] = NAN;
            else rf[o] = op == XCS_OP_MAX ? fmax(rf[o], v) : fmin(rf[o], v);
        } else {
            int64_t v = xcs_tensor_get_i64(x, f);
            if (op == XCS_OP_SUM) ri[o] += (uint64_t)v;
            else if (op == XCS_OP_PROD) ri[o] *= (uint64_t)v;
            else if (!seen[o] || (op == XCS_OP_MAX ? v > (int64_t)ri[o] : v < (int64_t)ri[o]))
                ri[o] = (uint64_t)v;
            seen[o] = true;
        }
    }
    int bad = 0;
    for (int64_t o = 0; o < no; o++) {
        bool ok;
        double gf = 0, wf = 0;
        if (fl) {
            gf = xcs_tensor_get_f64(out, o);
            wf = x->dtype == XCS_F32 ? (double)(float)rf[o] : rf[o];
            double eps = x->dtype == XCS_F32 ? 1.2e-7 : 4e-16;
            if ((isnan(gf) && isnan(wf)) || gf == wf) ok = true;
            else if (op == XCS_OP_SUM) ok = fabs(gf - wf) <= eps * fabs(wf) + 1e-12 * mag[o] + 1e-300;
            else if (op == XCS_OP_PROD) /* double rounding over up to 3e5 factors */
                ok = fabs(gf - wf) <= (x->dtype == XCS_F32 ? 2e-7 : 1e-10) * fabs(wf);
            else ok = (isnan(gf) && isnan(wf)) || gf == wf;
        } else {
            int64_t g = xcs_tensor_get_i64(out, o), w = (int64_t)ri[o];
            if (x->dtype == XCS_BOOL && (op == XCS_OP_MAX || op == XCS_OP_MIN)) w = w != 0;
            ok = g == w;
            gf = (double)g, wf = (double)w;
        }
        if (!ok && bad++ < 3)
            fprintf(stderr, "  %s %s axes 0x%x out[%lld]: got %.17g want %.17g\n",
                    xcs_op_name(op), xcs_dtype_name(x->dtype), axes, (long long)o, gf, wf);
    }
    free(rf), free(mag), free(ri), free(seen);
    return bad;
}

static const xcs_op RED_OPS[4] = {XCS_OP_SUM, XCS_OP_PROD, XCS_OP_MAX, XCS_OP_MIN};

/* Every op x dtype x axis subset of x (built with test_layout L). */
static int sweep(int nd, const int64_t *shape, test_layout L) {
    int bad = 0;
    for (int dt = 0; dt <= XCS_F64; dt++) /* the compute dtypes: halves reduce their f32 cast */
        for (int k = 0; k < 4; k++) {
            xcs_op op = RED_OPS[k];
            xcs_tensor *x = make_view((xcs_dtype)dt, nd, shape, L, op == XCS_OP_PROD ? 1 : 0);
            for (unsigned axes = 0; axes < (1u << nd); axes++) {
                xcs_tensor *o = keepdims_out(result_dtype(op, (xcs_dtype)dt), x, axes);
                xcs_status st = xcs_cpu_reduce(op, x, axes, o);
                if (st != XCS_OK) {
                    bad++;
                    fprintf(stderr, "  %s failed: %s\n", xcs_op_name(op), xcs_last_error());
                } else {
                    bad += check_reduce(op, x, axes, o);
                }
                xcs_tensor_free(o);
            }
            xcs_tensor_free(x);
        }
    return bad;
}

static const int P102[] = {1, 0, 2}, P210[] = {2, 1, 0}, P3120[] = {3, 1, 2, 0};

static void test_all_ops_contiguous(void) {
    CHECK_EQ_I(sweep(3, SHAPE(3, 4, 5), (test_layout){0}), 0);
    CHECK_EQ_I(sweep(4, SHAPE(2, 3, 1, 7), (test_layout){0}), 0);
    CHECK_EQ_I(sweep(2, SHAPE(37, 70), (test_layout){0}), 0);
    CHECK_EQ_I(sweep(1, SHAPE(1), (test_layout){0}), 0);
    CHECK_EQ_I(sweep(0, SHAPE(0), (test_layout){0}), 0);
}

static void test_all_ops_strided(void) {
    CHECK_EQ_I(sweep(3, SHAPE(3, 4, 5), (test_layout){P102, 1, 0, 0}), 0);
    CHECK_EQ_I(sweep(3, SHAPE(6, 5, 33), (test_layout){P210, 2, 0, 0}), 0);
    CHECK_EQ_I(sweep(3, SHAPE(3, 4, 5), (test_layout){NULL, 1, 5u, 0}), 0);       /* reversed */
    CHECK_EQ_I(sweep(3, SHAPE(3, 4, 5), (test_layout){NULL, 1, 0, 2u}), 0);       /* broadcast */
    CHECK_EQ_I(sweep(4, SHAPE(4, 3, 5, 2), (test_layout){P3120, 3, 9u, 4u}), 0);  /* all of it */
    CHECK_EQ_I(sweep(2, SHAPE(700, 3), (test_layout){NULL, 1, 0, 0}), 0);
    CHECK_EQ_I(sweep(2, SHAPE(3, 700), (test_layout){P102, 1, 1u, 0}), 0);
}

/* Sizes past XCS_CPU_PAR_MIN and the 65536-element block: row, column and
 * strided shapes, checked against the reference and across thread counts. */
static void test_big(void) {
    static const int64_t shapes[][2] = {{1, 300001}, {3, 140000}, {140000, 3}, {700, 1100},
                                        {270000, 2}};
    test_layout lays[] = {{0}, {P102, 1, 0, 0}, {NULL, 2, 1u, 0}};
    for (int s = 0; s < 5; s++)
        for (int l = 0; l < 3; l++)
            for (int dt = XCS_I64; dt <= XCS_F64; dt++)
                for (unsigned axes = 1; axes < 4; axes++) {
                    xcs_op op = axes == 3 ? XCS_OP_SUM : RED_OPS[(s + l + dt) % 4];
                    xcs_tensor *x = make_view((xcs_dtype)dt, 2, shapes[s], lays[l],
                                              op == XCS_OP_PROD ? 1 : 0);
                    xcs_tensor *o = keepdims_out(result_dtype(op, (xcs_dtype)dt), x, axes);
                    CHECK_OK(xcs_cpu_reduce(op, x, axes, o));
                    CHECK_EQ_I(check_reduce(op, x, axes, o), 0);
#ifdef _OPENMP
                    xcs_tensor *o1 = keepdims_out(o->dtype, x, axes);
                    int saved = omp_get_max_threads();
                    omp_set_num_threads(1);
                    CHECK_OK(xcs_cpu_reduce(op, x, axes, o1));
                    omp_set_num_threads(saved);
                    CHECK(memcmp(o->storage->data, o1->storage->data, o->storage->nbytes) == 0);
                    xcs_tensor_free(o1);
#endif
                    xcs_tensor_free(o);
                    xcs_tensor_free(x);
                }
}

/* 1e7 float32 summed in double: exact to the last float bit here. */
static void test_big_sum_f32(void) {
    int64_t n = 10000000;
    xcs_tensor *x = make_view(XCS_F32, 1, SHAPE(n), (test_layout){0}, 1);
    xcs_tensor *o = keepdims_out(XCS_F32, x, 1u);
    CHECK_OK(xcs_cpu_reduce(XCS_OP_SUM, x, 1u, o));
    const float *p = xcs_tensor_data(x);
    double ref = 0;
    for (int64_t i = 0; i < n; i++) ref += p[i];
    float got = *(float *)xcs_tensor_data(o);
    CHECK(got == (float)ref || fabs(got - ref) <= 1.2e-7 * ref);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

static void set_f(xcs_tensor *x, int64_t flat, double v) {
    int64_t off = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        off += (flat % x->shape[d]) * x->strides[d];
        flat /= x->shape[d];
    }
    if (x->dtype == XCS_F32) ((float *)xcs_tensor_data(x))[off] = (float)v;
    else ((double *)xcs_tensor_data(x))[off] = v;
}

static void test_nan(void) {
    for (int dt = XCS_F32; dt <= XCS_F64; dt++)
        for (int big = 0; big < 2; big++) {
            int64_t r = big ? 3 : 5, c = big ? 100000 : 40;
            xcs_tensor *x = make_view((xcs_dtype)dt, 2, SHAPE(r, c), (test_layout){0}, 0);
            set_f(x, 1 * c + 7, NAN);          /* row 1 */
            set_f(x, 2 * c + c - 1, NAN);      /* row 2, last */
            set_f(x, 2 * c + c / 2, INFINITY); /* with an inf beside */
            for (int k = 0; k < 4; k++)
                for (unsigned axes = 1; axes < 4; axes++) {
                    xcs_tensor *o = keepdims_out((xcs_dtype)dt, x, axes);
                    CHECK_OK(xcs_cpu_reduce(RED_OPS[k], x, axes, o));
                    CHECK_EQ_I(check_reduce(RED_OPS[k], x, axes, o), 0);
                    xcs_tensor_free(o);
                }
            xcs_tensor_free(x);
        }
}

static void test_empty(void) {
    for (int dt = 0; dt <= XCS_F64; dt++) /* the compute dtypes: halves reduce their f32 cast */ {
        xcs_tensor *x = make_view((xcs_dtype)dt, 2, SHAPE(3, 0), (test_layout){0}, 0);
        for (int k = 0; k < 2; k++) {
            xcs_tensor *o = keepdims_out(result_dtype(RED_OPS[k], (xcs_dtype)dt), x, 2u);
            CHECK_OK(xcs_cpu_reduce(RED_OPS[k], x, 2u, o));
            for (int i = 0; i < 3; i++) CHECK(xcs_tensor_get_f64(o, i) == (k == 0 ? 0.0 : 1.0));
            xcs_tensor_free(o);
            /* kept axis empty: nothing to write */
            o = keepdims_out(result_dtype(RED_OPS[k], (xcs_dtype)dt), x, 1u);
            CHECK_OK(xcs_cpu_reduce(RED_OPS[k], x, 1u, o));
            xcs_tensor_free(o);
        }
        xcs_tensor *o = keepdims_out((xcs_dtype)dt, x, 2u);
        CHECK_ERR(xcs_cpu_reduce(XCS_OP_MAX, x, 2u, o), XCS_ERR_VALUE, "zero-size");
        xcs_tensor_free(o);
        xcs_tensor_free(x);
    }
}

static void test_bad_input(void) {
    xcs_tensor *x = make_view(XCS_I32, 2, SHAPE(3, 4), (test_layout){0}, 0);
    xcs_tensor *o = keepdims_out(XCS_I32, x, 1u);
    CHECK_ERR(xcs_cpu_reduce(XCS_OP_SUM, x, 1u, o), XCS_ERR_INTERNAL, "int64");
    CHECK_ERR(xcs_cpu_reduce(XCS_OP_MAX, x, 4u, o), XCS_ERR_VALUE, "axis");
    CHECK_ERR(xcs_cpu_reduce(XCS_OP_ADD, x, 1u, o), XCS_ERR_INTERNAL, NULL);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

/* ----------------------------------------------------------- arg-reductions */

static int check_arg(xcs_op op, const xcs_tensor *x, int axis, const xcs_tensor *out) {
    int64_t n = axis == XCS_AXIS_NONE ? xcs_tensor_numel(x) : x->shape[axis];
    int64_t no = xcs_tensor_numel(out), st = 1;
    if (axis != XCS_AXIS_NONE)
        for (int d = axis + 1; d < x->ndim; d++) st *= x->shape[d];
    int bad = 0;
    for (int64_t o = 0; o < no; o++) {
        int64_t base = axis == XCS_AXIS_NONE ? 0 : (o / st) * n * st + o % st, best = 0;
        bool fl = xcs_dtype_is_float(x->dtype);
        for (int64_t i = 1; i < n; i++) {
            if (fl) {
                double v = xcs_tensor_get_f64(x, base + i * st), b = xcs_tensor_get_f64(x, base + best * st);
                if (isnan(b)) break;
                if (isnan(v) || (op == XCS_OP_ARGMAX ? v > b : v < b)) best = i;
            } else {
                int64_t v = xcs_tensor_get_i64(x, base + i * st), b = xcs_tensor_get_i64(x, base + best * st);
                if (op == XCS_OP_ARGMAX ? v > b : v < b) best = i;
            }
        }
        int64_t got = xcs_tensor_get_i64(out, o);
        if (got != best && bad++ < 3)
            fprintf(stderr, "  %s %s axis %d out[%lld]: got %lld want %lld\n", xcs_op_name(op),
                    xcs_dtype_name(x->dtype), axis, (long long)o, (long long)got, (long long)best);
    }
    return bad;
}

static int arg_case(xcs_dtype dt, int nd, const int64_t *shape, test_layout L, int axis, int vals) {
    int bad = 0;
    xcs_tensor *x = make_view(dt, nd, shape, L, vals);
    for (int k = 0; k < 2; k++) {
        xcs_op op = k ? XCS_OP_ARGMIN : XCS_OP_ARGMAX;
        unsigned axes = axis == XCS_AXIS_NONE ? (1u << nd) - 1u : 1u << axis;
        xcs_tensor *o = keepdims_out(XCS_I64, x, axes);
        xcs_status s = xcs_cpu_argreduce(op, x, axis, o);
        if (s != XCS_OK) {
            fprintf(stderr, "  argreduce: %s\n", xcs_last_error());
            bad++;
        } else {
            bad += check_arg(op, x, axis, o);
        }
        xcs_tensor_free(o);
    }
    xcs_tensor_free(x);
    return bad;
}

static void test_argreduce(void) {
    int bad = 0;
    test_layout lays[] = {{0}, {P210, 1, 0, 0}, {NULL, 2, 7u, 0}, {NULL, 1, 0, 2u}};
    for (int dt = 0; dt <= XCS_F64; dt++) /* the compute dtypes: halves reduce their f32 cast */
        for (int l = 0; l < 4; l++)
            for (int axis = 0; axis < 3; axis++) {
                bad += arg_case((xcs_dtype)dt, 3, SHAPE(4, 5, 6), lays[l], axis, 2); /* ties */
                bad += arg_case((xcs_dtype)dt, 3, SHAPE(3, 37, 2), lays[l], axis, 0);
            }
    bad += arg_case(XCS_F32, 2, SHAPE(5, 7), (test_layout){0}, XCS_AXIS_NONE, 2);
    bad += arg_case(XCS_I64, 1, SHAPE(300000), (test_layout){NULL, 1, 1u, 0}, 0, 2);
    bad += arg_case(XCS_F64, 2, SHAPE(2, 200000), (test_layout){0}, 1, 2);
    CHECK_EQ_I(bad, 0);
}

static void test_argreduce_nan_and_blocks(void) {
    for (int dt = XCS_F32; dt <= XCS_F64; dt++) {
        int64_t n = 3 * 65536 + 5;
        xcs_tensor *x = make_view((xcs_dtype)dt, 2, SHAPE(3, n), (test_layout){0}, 0);
        set_f(x, 0 * n + 70000, 5.0); /* row 0: max in block 1 ... */
        set_f(x, 0 * n + 140000, 5.0); /* ... tied in block 2: first wins */
        set_f(x, 0 * n + 9, -5.0);
        set_f(x, 1 * n + 150000, NAN); /* row 1: first NaN wins */
        set_f(x, 1 * n + 190000, NAN);
        set_f(x, 1 * n + 3, 7.0);
        set_f(x, 2 * n + 0, NAN); /* row 2: NaN first */
        for (int k = 0; k < 2; k++) {
            xcs_op op = k ? XCS_OP_ARGMIN : XCS_OP_ARGMAX;
            xcs_tensor *o = keepdims_out(XCS_I64, x, 2u);
            CHECK_OK(xcs_cpu_argreduce(op, x, 1, o));
            CHECK_EQ_I(xcs_tensor_get_i64(o, 0), k ? 9 : 70000);
            CHECK_EQ_I(xcs_tensor_get_i64(o, 1), 150000);
            CHECK_EQ_I(xcs_tensor_get_i64(o, 2), 0);
            CHECK_EQ_I(check_arg(op, x, 1, o), 0);
            xcs_tensor_free(o);
        }
        xcs_tensor_free(x);
    }
    xcs_tensor *x = make_view(XCS_F32, 2, SHAPE(3, 0), (test_layout){0}, 0);
    xcs_tensor *o = keepdims_out(XCS_I64, x, 2u);
    CHECK_ERR(xcs_cpu_argreduce(XCS_OP_ARGMAX, x, 1, o), XCS_ERR_VALUE, "empty");
    CHECK_ERR(xcs_cpu_argreduce(XCS_OP_ARGMAX, x, 2, o), XCS_ERR_VALUE, "axis");
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_one(const char *what, xcs_op op, xcs_dtype dt, int nd, const int64_t *shape,
                      unsigned axes) {
    xcs_tensor *x = make_view(dt, nd, shape, (test_layout){0}, 1);
    xcs_tensor *o = keepdims_out(result_dtype(op, dt), x, axes);
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t0 = now();
        xcs_cpu_reduce(op, x, axes, o);
        double t = now() - t0;
        if (t < best) best = t;
    }
    double bytes = (double)xcs_tensor_numel(x) * (double)xcs_dtype_size(dt);
    printf("  %-28s %8.3f ms  %6.1f GB/s\n", what, best * 1e3, bytes / best * 1e-9);
    xcs_tensor_free(o);
    xcs_tensor_free(x);
}

static int bench(void) {
    printf("reduce throughput (best of 20)\n");
    bench_one("sum f32 1e7", XCS_OP_SUM, XCS_F32, 1, SHAPE(10000000), 1u);
    bench_one("max f32 1e7", XCS_OP_MAX, XCS_F32, 1, SHAPE(10000000), 1u);
    bench_one("sum f64 1e7", XCS_OP_SUM, XCS_F64, 1, SHAPE(10000000), 1u);
    bench_one("sum f32 (10000,1000) ax1", XCS_OP_SUM, XCS_F32, 2, SHAPE(10000, 1000), 2u);
    bench_one("sum f32 (10000,1000) ax0", XCS_OP_SUM, XCS_F32, 2, SHAPE(10000, 1000), 1u);
    bench_one("sum f32 (5e6,2) ax1", XCS_OP_SUM, XCS_F32, 2, SHAPE(5000000, 2), 2u);
    bench_one("sum i64 1e7", XCS_OP_SUM, XCS_I64, 1, SHAPE(10000000), 1u);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    RUN(test_all_ops_contiguous);
    RUN(test_all_ops_strided);
    RUN(test_big);
    RUN(test_big_sum_f32);
    RUN(test_nan);
    RUN(test_empty);
    RUN(test_bad_input);
    RUN(test_argreduce);
    RUN(test_argreduce_nan_and_blocks);
    return check_report();
}
