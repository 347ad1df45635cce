/* test_tensor.c — storage refcounts, wrapped external memory, allocation
 * counters, tensor construction and bounds checks.
 *
 * The allocation counters are the project's leak detector outside sanitizer
 * builds: every test here ends with live_buffers/live_bytes back where they
 * started. */
#include "check.h"
#include "xcs_host.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static xcs_alloc_stats stats_now(void) {
    xcs_alloc_stats s;
    xcs_alloc_stats_get(&s);
    return s;
}

#define CHECK_NO_LEAK(before)                                                    \
    do {                                                                         \
        xcs_alloc_stats after_ = stats_now();                                    \
        CHECK_EQ_I(after_.live_buffers, (before).live_buffers);                  \
        CHECK_EQ_I(after_.live_bytes, (before).live_bytes);                      \
    } while (0)

/* ------------------------------------------------------------ owned storage */

static void test_storage_refcount(void) {
    xcs_alloc_stats before = stats_now();
    xcs_storage *s = xcs_storage_new(1000, XCS_DEVICE_CPU);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_EQ_I(s->refcount, 1);
    CHECK_EQ_I(s->nbytes, 1000);
    CHECK(s->data != NULL);
    CHECK_EQ_I((uintptr_t)s->data % 64, 0); /* 64-byte aligned for SIMD */
    CHECK(!s->readonly);
    memset(s->data, 0xab, 1000); /* writable over its whole size (ASan checks) */

    xcs_alloc_stats mid = stats_now();
    CHECK_EQ_I(mid.live_buffers, before.live_buffers + 1);
    CHECK_EQ_I(mid.live_bytes, before.live_bytes + 1000);
    CHECK_EQ_I(mid.total_buffers, before.total_buffers + 1);
    CHECK(mid.total_bytes >= before.total_bytes + 1000);

    xcs_storage_retain(s);
    CHECK_EQ_I(s->refcount, 2);
    xcs_storage_release(s);
    CHECK_EQ_I(s->refcount, 1);
    CHECK_EQ_I(stats_now().live_buffers, before.live_buffers + 1);
    xcs_storage_release(s); /* freed here */
    CHECK_NO_LEAK(before);
    /* totals never go down */
    CHECK_EQ_I(stats_now().total_buffers, before.total_buffers + 1);

    /* zero bytes is a valid allocation (an empty array) */
    s = xcs_storage_new(0, XCS_DEVICE_CPU);
    CHECK(s != NULL);
    xcs_storage_release(s);
    CHECK_NO_LEAK(before);

    xcs_storage_release(NULL); /* a no-op, like free(NULL) */
}

static void test_storage_device_unsupported(void) {
    xcs_error_clear();
    xcs_storage *s = xcs_storage_new(16, XCS_DEVICE_CUDA);
    /* on a CPU-only build there is no CUDA allocator: NULL with a reason */
    if (!s) {
        CHECK(xcs_last_status() != XCS_OK);
        CHECK(strlen(xcs_last_error()) > 0);
    } else {
        xcs_storage_release(s);
    }
}

/* ------------------------------------------------------------ wrapped memory */

typedef struct { int calls; void *seen; } release_log;
static void on_release(void *ctx) {
    release_log *log = ctx;
    log->calls++;
    log->seen = ctx;
}

static void test_wrap_release_once(void) {
    xcs_alloc_stats before = stats_now();
    double buf[12];
    for (int i = 0; i < 12; i++) buf[i] = i * 0.5;
    release_log log = {0, NULL};

    xcs_storage *s = xcs_storage_wrap(buf, sizeof buf, true, on_release, &log);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(s->data == buf);
    CHECK(s->readonly);
    CHECK_EQ_I(s->refcount, 1);
    /* wrapped memory is not an owned allocation */
    CHECK_EQ_I(stats_now().live_buffers, before.live_buffers);

    xcs_tensor *t = NULL, *v = NULL, *tr = NULL;
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F64, 2, SHAPE(3, 4), SHAPE(4, 1), 0, &t));
    CHECK_EQ_I(s->refcount, 2);
    xcs_storage_release(s); /* the tensor keeps it alive */
    CHECK_EQ_I(log.calls, 0);
    if (!t) return;
    CHECK_NEAR(xcs_tensor_get_f64(t, 5), 2.5, 0);

    CHECK_OK(xcs_tensor_view(t, &v));
    CHECK_OK(xcs_transpose(t, &tr));
    if (v) CHECK(v->storage == t->storage);
    CHECK_EQ_I(t->storage->refcount, 1 + (v != NULL) + (tr != NULL));
    if (tr) CHECK_NEAR(xcs_tensor_get_f64(tr, 1), 2.0, 0); /* tr[0, 1] = t[1, 0] = 4 * 0.5 */

    xcs_tensor_free(t);
    CHECK_EQ_I(log.calls, 0);
    xcs_tensor_free(v);
    CHECK_EQ_I(log.calls, 0);
    xcs_tensor_free(tr);
    CHECK_EQ_I(log.calls, 1); /* exactly once, at the last reference */
    CHECK(log.seen == &log);
    CHECK_NO_LEAK(before);

    /* a NULL release means the memory outlives us: nothing is called */
    s = xcs_storage_wrap(buf, sizeof buf, false, NULL, NULL);
    CHECK(s != NULL);
    xcs_storage_release(s);
    CHECK_EQ_I(log.calls, 1);
}

/* Ops on a wrapped input must not retain it past their own lifetime. */
static void test_wrap_through_ops(void) {
    float buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    release_log log = {0, NULL};
    xcs_storage *s = xcs_storage_wrap(buf, sizeof buf, true, on_release, &log);
    xcs_tensor *t = NULL, *r = NULL, *sum = NULL;
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(8), SHAPE(1), 0, &t));
    xcs_storage_release(s);
    if (!t) return;
    CHECK_OK(xcs_unary(XCS_OP_EXP, t, &r));
    CHECK_OK(xcs_reduce(XCS_OP_SUM, t, 1u, false, &sum));
    if (sum) {
        CHECK_EQ_I(sum->ndim, 0);
        CHECK_NEAR(xcs_tensor_get_f64(sum, 0), 36.0, 0);
    }
    if (r) CHECK(r->storage != t->storage);
    xcs_tensor_free(t);
    CHECK_EQ_I(log.calls, 1);
    xcs_tensor_free(r);
    xcs_tensor_free(sum);
    CHECK_EQ_I(log.calls, 1);
}

/* Concurrent retain/release from several threads keeps an exact count. */
#define N_THREADS 4
#define N_ITERS 100000
static void *hammer(void *arg) {
    xcs_storage *s = arg;
    for (int i = 0; i < N_ITERS; i++) {
        xcs_storage_retain(s);
        xcs_storage_release(s);
    }
    for (int i = 0; i < 1000; i++) xcs_storage_retain(s);
    return NULL;
}

static void test_refcount_threads(void) {
    release_log log = {0, NULL};
    static char mem[64];
    xcs_storage *s = xcs_storage_wrap(mem, sizeof mem, false, on_release, &log);
    if (!s) { CHECK(s != NULL); return; }
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&th[i], NULL, hammer, s);
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    CHECK_EQ_I(s->refcount, 1 + N_THREADS * 1000);
    for (int i = 0; i < N_THREADS * 1000; i++) xcs_storage_release(s);
    CHECK_EQ_I(log.calls, 0);
    xcs_storage_release(s);
    CHECK_EQ_I(log.calls, 1);
}

/* ------------------------------------------------------------ tensors */

static void test_tensor_empty(void) {
    xcs_alloc_stats before = stats_now();
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F32, 3, SHAPE(2, 3, 4), &t));
    if (t) {
        CHECK_SHAPE(t, 3, 2, 3, 4);
        CHECK_EQ_I(t->dtype, XCS_F32);
        CHECK_EQ_I(t->offset, 0);
        CHECK_EQ_I(t->strides[0], 12);
        CHECK_EQ_I(t->strides[2], 1);
        CHECK_EQ_I(xcs_tensor_numel(t), 24);
        CHECK(t->storage->nbytes >= 96);
        CHECK(xcs_tensor_is_contiguous(t));
        CHECK_EQ_I(t->storage->refcount, 1);
        xcs_tensor_free(t);
    }
    t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_I64, 0, NULL, &t));
    if (t) { CHECK_EQ_I(t->ndim, 0); CHECK_EQ_I(xcs_tensor_numel(t), 1); xcs_tensor_free(t); }
    t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, 3, SHAPE(5, 0, 3), &t));
    if (t) { CHECK_EQ_I(xcs_tensor_numel(t), 0); xcs_tensor_free(t); }
    t = NULL;
    CHECK(xcs_tensor_empty(XCS_F64, 2, SHAPE(2, -3), &t) != XCS_OK);
    CHECK(t == NULL);
    CHECK(xcs_tensor_empty(XCS_F64, XCS_MAX_DIMS + 1,
                           SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1), &t) != XCS_OK);
    CHECK(t == NULL);
    CHECK(xcs_tensor_empty(XCS_DTYPE_COUNT, 1, SHAPE(3), &t) != XCS_OK);
    CHECK(t == NULL);
    xcs_tensor_free(NULL);
    CHECK_NO_LEAK(before);
}

static void test_tensor_scalar(void) {
    xcs_alloc_stats before = stats_now();
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_F32, 1.5, &t));
    if (t) {
        CHECK_EQ_I(t->ndim, 0);
        CHECK_EQ_I(t->dtype, XCS_F32);
        CHECK_NEAR(xcs_tensor_get_f64(t, 0), 1.5, 0);
        xcs_tensor_free(t);
    }
    t = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_I32, -7.9, &t)); /* C conversion truncates */
    if (t) { CHECK_EQ_I(xcs_tensor_get_i64(t, 0), -7); xcs_tensor_free(t); }
    t = NULL;
    CHECK_OK(xcs_tensor_scalar(XCS_BOOL, 2.0, &t));
    if (t) { CHECK_EQ_I(xcs_tensor_get_i64(t, 0), 1); xcs_tensor_free(t); }
    t = NULL;
    /* int64 values past 2^53 survive exactly */
    const int64_t big = ((int64_t)1 << 53) + 1;
    CHECK_OK(xcs_tensor_scalar_i64(XCS_I64, big, &t));
    if (t) { CHECK_EQ_I(xcs_tensor_get_i64(t, 0), big); xcs_tensor_free(t); }
    t = NULL;
    CHECK_OK(xcs_tensor_scalar_i64(XCS_I64, INT64_MIN, &t));
    if (t) { CHECK_EQ_I(xcs_tensor_get_i64(t, 0), INT64_MIN); xcs_tensor_free(t); }
    CHECK_NO_LEAK(before);
}

static void test_from_storage_bounds(void) {
    xcs_alloc_stats before = stats_now();
    xcs_storage *s = xcs_storage_new(6 * sizeof(float), XCS_DEVICE_CPU);
    if (!s) { CHECK(s != NULL); return; }
    float *d = s->data;
    for (int i = 0; i < 6; i++) d[i] = (float)i;
    xcs_tensor *t = NULL;

    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(2, 3), SHAPE(3, 1), 0, &t));
    if (t) { CHECK_NEAR(xcs_tensor_get_f64(t, 4), 4.0, 0); xcs_tensor_free(t); t = NULL; }
    /* transposed layout over the same bytes */
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(3, 2), SHAPE(1, 3), 0, &t));
    if (t) { CHECK_NEAR(xcs_tensor_get_f64(t, 1), 3.0, 0); xcs_tensor_free(t); t = NULL; }
    /* negative stride from the end: reversed view */
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(6), SHAPE(-1), 5, &t));
    if (t) { CHECK_NEAR(xcs_tensor_get_f64(t, 0), 5.0, 0); CHECK_NEAR(xcs_tensor_get_f64(t, 5), 0.0, 0); xcs_tensor_free(t); t = NULL; }
    /* broadcast (stride 0) reaches one element only */
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(1000, 6), SHAPE(0, 1), 0, &t));
    if (t) { CHECK_NEAR(xcs_tensor_get_f64(t, 5999), 5.0, 0); xcs_tensor_free(t); t = NULL; }
    /* an empty view reaches nothing: any offset within the storage is fine */
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(0, 100), SHAPE(100, 1), 0, &t));
    if (t) { xcs_tensor_free(t); t = NULL; }
    /* the last element with offset */
    CHECK_OK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(2), SHAPE(1), 4, &t));
    if (t) { xcs_tensor_free(t); t = NULL; }

    /* out of bounds in every direction */
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(2, 4), SHAPE(4, 1), 0, &t) != XCS_OK);
    CHECK(t == NULL);
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(2), SHAPE(1), 5, &t) != XCS_OK);
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(6), SHAPE(-1), 4, &t) != XCS_OK);
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(1), SHAPE(1), -1, &t) != XCS_OK);
    CHECK(xcs_tensor_from_storage(s, XCS_F64, 1, SHAPE(4), SHAPE(1), 0, &t) != XCS_OK);
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(3), SHAPE(3), 0, &t) != XCS_OK);
    /* strides so large that offset arithmetic would overflow */
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 1, SHAPE(2), SHAPE(INT64_MAX / 2), 0, &t) != XCS_OK);
    CHECK(xcs_tensor_from_storage(s, XCS_F32, 2, SHAPE(-1, 2), SHAPE(1, 1), 0, &t) != XCS_OK);
    CHECK(t == NULL);
    CHECK(strlen(xcs_last_error()) > 0);

    CHECK_EQ_I(s->refcount, 1); /* failed calls retained nothing */
    xcs_storage_release(s);
    CHECK_NO_LEAK(before);
}

/* Every op's temporaries are freed: a chain of ops on fresh tensors leaves
 * only the tensors the test still holds. */
static void test_ops_do_not_leak(void) {
    xcs_alloc_stats before = stats_now();
    xcs_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL, *t = NULL;
    CHECK_OK(xcs_arange(0, 12, 1, XCS_F32, &a));
    CHECK_OK(xcs_full(XCS_F64, 2, SHAPE(3, 1), 2.0, &b));
    if (a && b) {
        CHECK_OK(xcs_reshape(a, 2, SHAPE(3, 4), &t));
        if (t) {
            CHECK_OK(xcs_binary(XCS_OP_MUL, t, b, &c)); /* (3,4) * (3,1), f32 x f64 -> f64 */
            if (c) {
                CHECK_EQ_I(c->dtype, XCS_F64);
                CHECK_SHAPE(c, 2, 3, 4);
                CHECK_NEAR(xcs_tensor_get_f64(c, 11), 22.0, 0);
                CHECK_OK(xcs_reduce(XCS_OP_SUM, c, 1u << 1, true, &d));
                if (d) { CHECK_SHAPE(d, 2, 3, 1); CHECK_NEAR(xcs_tensor_get_f64(d, 2), 2 * (8 + 9 + 10 + 11), 0); }
                /* (3,4) @ (3,4) fails; the failure must not leak either */
                CHECK_ERR(xcs_matmul(c, t, &e), XCS_ERR_SHAPE, "(3, 4)");
                CHECK(e == NULL);
                CHECK_OK(xcs_softmax(c, -1, &f));
            }
        }
    }
    xcs_tensor_free(a); xcs_tensor_free(b); xcs_tensor_free(c); xcs_tensor_free(d);
    xcs_tensor_free(e); xcs_tensor_free(f); xcs_tensor_free(t);
    CHECK_NO_LEAK(before);
}

/* Regression: xcs_take's out-of-range message printed the index after
 * freeing the buffer holding it (heap use-after-free; garbage in the text). */
static void test_take_error_names_index(void) {
    xcs_alloc_stats before = stats_now();
    xcs_tensor *x = NULL, *idx = NULL, *out = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_F64, 1, SHAPE(10), &x));
    CHECK_OK(xcs_tensor_empty(XCS_I64, 1, SHAPE(2), &idx));
    if (x && idx) {
        memset(xcs_tensor_data(x), 0, 10 * sizeof(double));
        int64_t *p = xcs_tensor_data(idx);
        p[0] = 0;
        p[1] = -11;
        CHECK_ERR(xcs_take(x, idx, 0, &out), XCS_ERR_INDEX, "-11");
        CHECK(out == NULL);
        p[1] = 10;
        CHECK_ERR(xcs_take(x, idx, XCS_AXIS_NONE, &out), XCS_ERR_INDEX, "index 10");
        p[1] = -10;
        CHECK_OK(xcs_take(x, idx, 0, &out));
        xcs_tensor_free(out);
    }
    xcs_tensor_free(x);
    xcs_tensor_free(idx);
    CHECK_NO_LEAK(before);
}

int main(void) {
    if (xcs_host_init() != XCS_OK) {
        fprintf(stderr, "xcs_host_init failed: %s\n", xcs_last_error());
        return 1;
    }
    RUN(test_storage_refcount);
    RUN(test_storage_device_unsupported);
    RUN(test_wrap_release_once);
    RUN(test_wrap_through_ops);
    RUN(test_refcount_threads);
    RUN(test_tensor_empty);
    RUN(test_tensor_scalar);
    RUN(test_from_storage_bounds);
    RUN(test_ops_do_not_leak);
    RUN(test_take_error_names_index);
    return check_report();
}
