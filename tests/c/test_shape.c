/* test_shape.c — shape arithmetic, broadcasting, strides and views, axis
 * normalisation, dtype facts and numpy's promotion table (NEP 50).
 *
 * Expected values are numpy's (checked by hand against numpy 2.2): every
 * rule here is one the Python layer relies on to match numpy exactly. */
#include "check.h"
#include "xcs_host.h"

#include <stdint.h>
#include <stdlib.h>

/* ------------------------------------------------------------ helpers */

/* An owned contiguous f64 tensor holding 0, 1, 2, ... in C order. */
static xcs_tensor *iota_f64(int ndim, const int64_t *shape) {
    xcs_tensor *t = NULL;
    if (xcs_tensor_empty(XCS_F64, ndim, shape, &t) != XCS_OK) return NULL;
    double *d = xcs_tensor_data(t);
    int64_t n = xcs_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) d[i] = (double)i;
    return t;
}

/* Element of an iota tensor at a multi-index, via its strides (a reference
 * for what a view must read).  Not inlined: gcc's 512-bit vectorisation of
 * the loop, inlined at a SHAPE(...) literal, warns of reads past it. */
static __attribute__((noinline)) double at(const xcs_tensor *t, const int64_t *idx) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += idx[i] * t->strides[i];
    return ((const double *)t->storage->data)[off];
}

static int status_is_error(xcs_status s) { return s != XCS_OK; }

/* ------------------------------------------------------------ shape_str / numel */

static void test_shape_str(void) {
    char b[64];
    CHECK(strcmp(xcs_shape_str(2, SHAPE(2, 3), b, sizeof b), "(2, 3)") == 0);
    CHECK(strcmp(xcs_shape_str(1, SHAPE(5), b, sizeof b), "(5,)") == 0);
    CHECK(strcmp(xcs_shape_str(0, NULL, b, sizeof b), "()") == 0);
    /* a too-small buffer is truncated, never overrun */
    char small[4];
    xcs_shape_str(3, SHAPE(1000, 2000, 3000), small, sizeof small);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
}

static void test_numel(void) {
    int64_t n = -1;
    CHECK_OK(xcs_shape_numel(3, SHAPE(2, 3, 4), 4, &n));
    CHECK_EQ_I(n, 24);
    CHECK_OK(xcs_shape_numel(0, NULL, 8, &n));
    CHECK_EQ_I(n, 1);
    CHECK_OK(xcs_shape_numel(3, SHAPE(5, 0, 3), 8, &n));
    CHECK_EQ_I(n, 0);
    /* a zero anywhere makes the array empty, however large the other dims */
    CHECK_OK(xcs_shape_numel(3, SHAPE((int64_t)1 << 40, 0, (int64_t)1 << 40), 8, &n));
    CHECK_EQ_I(n, 0);
    /* overflow is a memory error, not a wrap-around */
    CHECK_ERR(xcs_shape_numel(2, SHAPE((int64_t)1 << 40, (int64_t)1 << 40), 4, &n),
              XCS_ERR_MEMORY, "too large");
    CHECK_ERR(xcs_shape_numel(2, SHAPE(INT64_MAX, 2), 1, &n), XCS_ERR_MEMORY, NULL);
    CHECK_ERR(xcs_shape_numel(1, SHAPE((int64_t)1 << 61), 8, &n), XCS_ERR_MEMORY, NULL);
    CHECK_ERR(xcs_shape_numel(2, SHAPE(3, -1), 4, &n), XCS_ERR_VALUE, "negative");
}

static void test_empty_too_large(void) {
    xcs_tensor *t = NULL;
    CHECK_ERR(xcs_tensor_empty(XCS_F32, 2, SHAPE((int64_t)1 << 40, (int64_t)1 << 40), &t),
              XCS_ERR_MEMORY, NULL);
    CHECK(t == NULL);
    CHECK_ERR(xcs_full(XCS_F64, 3, SHAPE((int64_t)1 << 30, (int64_t)1 << 30, 1 << 10), 1.0, &t),
              XCS_ERR_MEMORY, NULL);
    CHECK(t == NULL);
}

/* ------------------------------------------------------------ broadcasting */

static void test_broadcast(void) {
    int n = -1;
    int64_t out[XCS_MAX_DIMS];

    CHECK_OK(xcs_shape_broadcast(2, SHAPE(3, 1), 2, SHAPE(1, 4), &n, out));
    CHECK_EQ_I(n, 2); CHECK_EQ_I(out[0], 3); CHECK_EQ_I(out[1], 4);

    CHECK_OK(xcs_shape_broadcast(0, NULL, 2, SHAPE(2, 3), &n, out));
    CHECK_EQ_I(n, 2); CHECK_EQ_I(out[0], 2); CHECK_EQ_I(out[1], 3);

    CHECK_OK(xcs_shape_broadcast(3, SHAPE(5, 1, 3), 1, SHAPE(3), &n, out));
    CHECK_EQ_I(n, 3); CHECK_EQ_I(out[0], 5); CHECK_EQ_I(out[1], 1); CHECK_EQ_I(out[2], 3);

    /* size 0 broadcasts against 1 and against itself, never against 2 */
    CHECK_OK(xcs_shape_broadcast(1, SHAPE(0), 1, SHAPE(1), &n, out));
    CHECK_EQ_I(n, 1); CHECK_EQ_I(out[0], 0);
    CHECK_OK(xcs_shape_broadcast(3, SHAPE(5, 0, 3), 2, SHAPE(1, 3), &n, out));
    CHECK_EQ_I(out[0], 5); CHECK_EQ_I(out[1], 0); CHECK_EQ_I(out[2], 3);
    CHECK_ERR(xcs_shape_broadcast(1, SHAPE(0), 1, SHAPE(2), &n, out), XCS_ERR_SHAPE, "(0,)");

    CHECK_OK(xcs_shape_broadcast(4, SHAPE(8, 1, 6, 1), 3, SHAPE(7, 1, 5), &n, out));
    CHECK_EQ_I(n, 4);
    CHECK_EQ_I(out[0], 8); CHECK_EQ_I(out[1], 7); CHECK_EQ_I(out[2], 6); CHECK_EQ_I(out[3], 5);

    /* errors name both shapes */
    CHECK_ERR(xcs_shape_broadcast(2, SHAPE(2, 3), 2, SHAPE(3, 2), &n, out), XCS_ERR_SHAPE, "(2, 3)");
    CHECK_ERR(xcs_shape_broadcast(2, SHAPE(2, 3), 2, SHAPE(3, 2), &n, out), XCS_ERR_SHAPE, "(3, 2)");
    CHECK_ERR(xcs_shape_broadcast(1, SHAPE(4), 2, SHAPE(2, 3), &n, out), XCS_ERR_SHAPE, "(4,)");
}

static void test_broadcast_to(void) {
    int64_t shp[2] = {3, 1};
    xcs_tensor *x = iota_f64(2, shp), *y = NULL;
    CHECK_OK(xcs_broadcast_to(x, 3, SHAPE(2, 3, 4), &y));
    if (y) {
        CHECK_SHAPE(y, 3, 2, 3, 4);
        CHECK_EQ_I(y->strides[0], 0);
        CHECK_EQ_I(y->strides[2], 0);
        CHECK(y->storage == x->storage);
        CHECK_EQ_I(xcs_tensor_get_f64(y, 4 * 2 + 3), 2.0); /* y[0, 2, 3] == x[2, 0] */
        CHECK_EQ_I(xcs_tensor_get_f64(y, 12 + 4 + 1), 1.0); /* y[1, 1, 1] */
        CHECK(!xcs_tensor_is_contiguous(y));
        xcs_tensor_free(y);
        y = NULL;
    }
    CHECK_ERR(xcs_broadcast_to(x, 2, SHAPE(2, 4), &y), XCS_ERR_SHAPE, "(3, 1)");
    /* broadcast_to cannot drop dims */
    CHECK(status_is_error(xcs_broadcast_to(x, 1, SHAPE(3), &y)));
    xcs_tensor_free(x);
}

/* ------------------------------------------------------------ strides and contiguity */

static void test_strides(void) {
    int64_t s[XCS_MAX_DIMS];
    xcs_strides_contiguous(3, SHAPE(2, 3, 4), s);
    CHECK_EQ_I(s[0], 12); CHECK_EQ_I(s[1], 4); CHECK_EQ_I(s[2], 1);
    /* zero-size dims keep strides finite and non-zero */
    xcs_strides_contiguous(3, SHAPE(5, 0, 3), s);
    CHECK_EQ_I(s[2], 1); CHECK_EQ_I(s[1], 3);
    CHECK(s[0] >= 0);

    xcs_tensor *x = iota_f64(2, SHAPE(2, 3)), *t = NULL;
    CHECK(xcs_tensor_is_contiguous(x));
    CHECK_EQ_I(x->strides[0], 3); CHECK_EQ_I(x->strides[1], 1);
    CHECK_OK(xcs_transpose(x, &t));
    if (t) {
        CHECK(!xcs_tensor_is_contiguous(t));
        CHECK_EQ_I(t->strides[0], 1); CHECK_EQ_I(t->strides[1], 3);
        xcs_tensor_free(t);
    }
    xcs_tensor_free(x);

    /* size-1 dims do not break contiguity whatever their stride (numpy's
     * relaxed strides): (3, 1) with strides (1, 7) is C-contiguous */
    x = iota_f64(1, SHAPE(3));
    CHECK_OK(xcs_tensor_from_storage(x->storage, XCS_F64, 2, SHAPE(3, 1), SHAPE(1, 7), 0, &t));
    if (t) {
        CHECK(xcs_tensor_is_contiguous(t));
        xcs_tensor_free(t);
    }
    xcs_tensor_free(x);

    /* 0-d tensors are contiguous */
    CHECK_OK(xcs_tensor_scalar(XCS_F32, 2.5, &t));
    if (t) {
        CHECK(xcs_tensor_is_contiguous(t));
        CHECK_EQ_I(xcs_tensor_numel(t), 1);
        xcs_tensor_free(t);
    }
}

/* ------------------------------------------------------------ reshape */

static void test_reshape_view(void) {
    xcs_tensor *x = iota_f64(3, SHAPE(2, 3, 4)), *y = NULL;
    CHECK_OK(xcs_reshape(x, 2, SHAPE(6, 4), &y));
    if (y) {
        CHECK_SHAPE(y, 2, 6, 4);
        CHECK(y->storage == x->storage); /* a view: no copy */
        CHECK(xcs_tensor_is_contiguous(y));
        CHECK_NEAR(xcs_tensor_get_f64(y, 17), 17.0, 0);
        xcs_tensor_free(y);
        y = NULL;
    }
    /* -1 is inferred */
    CHECK_OK(xcs_reshape(x, 3, SHAPE(4, -1, 2), &y));
    if (y) {
        CHECK_SHAPE(y, 3, 4, 3, 2);
        CHECK(y->storage == x->storage);
        xcs_tensor_free(y);
        y = NULL;
    }
    /* to 0-d and back */
    xcs_tensor *one = iota_f64(2, SHAPE(1, 1));
    CHECK_OK(xcs_reshape(one, 0, NULL, &y));
    if (y) {
        CHECK_EQ_I(y->ndim, 0);
        CHECK_EQ_I(xcs_tensor_numel(y), 1);
        xcs_tensor_free(y);
        y = NULL;
    }
    xcs_tensor_free(one);
    /* size mismatch names both */
    CHECK_ERR(xcs_reshape(x, 2, SHAPE(5, 5), &y), XCS_ERR_SHAPE, "(5, 5)");
    CHECK(y == NULL);
    CHECK(status_is_error(xcs_reshape(x, 2, SHAPE(-1, -1), &y)));
    CHECK(status_is_error(xcs_reshape(x, 2, SHAPE(-1, 5), &y)));
    CHECK(status_is_error(xcs_reshape(x, 2, SHAPE(-3, -8), &y)));
    xcs_tensor_free(x);

    /* empty arrays: (0, 3) -> (3, 0) and (-1, 3) */
    x = iota_f64(2, SHAPE(0, 3));
    CHECK_OK(xcs_reshape(x, 2, SHAPE(3, 0), &y));
    if (y) { CHECK_SHAPE(y, 2, 3, 0); xcs_tensor_free(y); y = NULL; }
    CHECK_OK(xcs_reshape(x, 2, SHAPE(-1, 3), &y));
    if (y) { CHECK_SHAPE(y, 2, 0, 3); xcs_tensor_free(y); y = NULL; }
    xcs_tensor_free(x);
}

static void test_reshape_copy(void) {
    /* a transposed (3, 2) cannot be flattened without a copy; the copy must
     * read in the view's C order: x.T.ravel() == [0, 3, 1, 4, 2, 5] */
    xcs_tensor *x = iota_f64(2, SHAPE(2, 3)), *t = NULL, *y = NULL;
    CHECK_OK(xcs_transpose(x, &t));
    if (!t) { xcs_tensor_free(x); return; }
    CHECK_OK(xcs_reshape(t, 1, SHAPE(6), &y));
    if (y) {
        static const double want[6] = {0, 3, 1, 4, 2, 5};
        CHECK_SHAPE(y, 1, 6);
        CHECK(xcs_tensor_is_contiguous(y));
        for (int i = 0; i < 6; i++) CHECK_NEAR(xcs_tensor_get_f64(y, i), want[i], 0);
        xcs_tensor_free(y);
        y = NULL;
    }
    /* adding a size-1 axis to the transposed view needs no copy */
    CHECK_OK(xcs_reshape(t, 3, SHAPE(3, 1, 2), &y));
    if (y) {
        CHECK(y->storage == x->storage);
        for (int i = 0; i < 6; i++) CHECK_NEAR(xcs_tensor_get_f64(y, i), xcs_tensor_get_f64(t, i), 0);
        xcs_tensor_free(y);
        y = NULL;
    }
    xcs_tensor_free(t);
    xcs_tensor_free(x);

    /* splitting a strided axis is a view: x[:, ::2] of (4, 8) reshaped to (4, 2, 2) */
    x = iota_f64(2, SHAPE(4, 8));
    xcs_slice s = {0, 0, 2, false, false};
    CHECK_OK(xcs_slice_axis(x, 1, s, &t));
    if (t) {
        CHECK_OK(xcs_reshape(t, 3, SHAPE(4, 2, 2), &y));
        if (y) {
            CHECK(y->storage == x->storage);
            for (int i = 0; i < 16; i++) CHECK_NEAR(xcs_tensor_get_f64(y, i), xcs_tensor_get_f64(t, i), 0);
            xcs_tensor_free(y);
        }
        xcs_tensor_free(t);
    }
    xcs_tensor_free(x);
}

/* ------------------------------------------------------------ permute / slice / index */

static void test_permute(void) {
    xcs_tensor *x = iota_f64(3, SHAPE(2, 3, 4)), *y = NULL;
    CHECK_OK(xcs_permute(x, (const int[]){2, 0, 1}, &y));
    if (y) {
        CHECK_SHAPE(y, 3, 4, 2, 3);
        CHECK_EQ_I(y->strides[0], 1); CHECK_EQ_I(y->strides[1], 12); CHECK_EQ_I(y->strides[2], 4);
        CHECK(y->storage == x->storage);
        /* y[k, i, j] == x[i, j, k] */
        for (int64_t k = 0; k < 4; k++)
            for (int64_t i = 0; i < 2; i++)
                for (int64_t j = 0; j < 3; j++)
                    CHECK_NEAR(xcs_tensor_get_f64(y, (k * 2 + i) * 3 + j), (double)(i * 12 + j * 4 + k), 0);
        xcs_tensor_free(y);
        y = NULL;
    }
    /* negative axes in perm are allowed like numpy */
    CHECK_OK(xcs_permute(x, (const int[]){-1, 0, 1}, &y));
    if (y) { CHECK_SHAPE(y, 3, 4, 2, 3); xcs_tensor_free(y); y = NULL; }
    /* a repeated or out-of-range axis is an error */
    CHECK(status_is_error(xcs_permute(x, (const int[]){0, 0, 1}, &y)));
    CHECK(y == NULL);
    CHECK(status_is_error(xcs_permute(x, (const int[]){0, 1, 3}, &y)));
    CHECK(y == NULL);
    xcs_tensor_free(x);
}

static void test_slice(void) {
    xcs_tensor *x = iota_f64(1, SHAPE(10)), *y = NULL;

    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){2, 8, 2, true, true}, &y));
    if (y) {
        CHECK_SHAPE(y, 1, 3);
        CHECK_EQ_I(y->strides[0], 2);
        CHECK(y->storage == x->storage);
        CHECK_NEAR(xcs_tensor_get_f64(y, 0), 2, 0);
        CHECK_NEAR(xcs_tensor_get_f64(y, 2), 6, 0);
        xcs_tensor_free(y); y = NULL;
    }
    /* ::-1 */
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){0, 0, -1, false, false}, &y));
    if (y) {
        CHECK_SHAPE(y, 1, 10);
        CHECK_EQ_I(y->strides[0], -1);
        CHECK_NEAR(xcs_tensor_get_f64(y, 0), 9, 0);
        CHECK_NEAR(xcs_tensor_get_f64(y, 9), 0, 0);
        CHECK(!xcs_tensor_is_contiguous(y));
        xcs_tensor_free(y); y = NULL;
    }
    /* 8:1:-3 -> 8, 5, 2 */
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){8, 1, -3, true, true}, &y));
    if (y) {
        CHECK_SHAPE(y, 1, 3);
        CHECK_NEAR(xcs_tensor_get_f64(y, 1), 5, 0);
        CHECK_NEAR(xcs_tensor_get_f64(y, 2), 2, 0);
        xcs_tensor_free(y); y = NULL;
    }
    /* -3: -> 7, 8, 9 ; out-of-range stops clip like Python */
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){-3, 0, 1, true, false}, &y));
    if (y) { CHECK_SHAPE(y, 1, 3); CHECK_NEAR(xcs_tensor_get_f64(y, 0), 7, 0); xcs_tensor_free(y); y = NULL; }
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){-100, 100, 1, true, true}, &y));
    if (y) { CHECK_SHAPE(y, 1, 10); xcs_tensor_free(y); y = NULL; }
    /* an empty slice is fine */
    CHECK_OK(xcs_slice_axis(x, 0, (xcs_slice){5, 2, 1, true, true}, &y));
    if (y) { CHECK_SHAPE(y, 1, 0); CHECK_EQ_I(xcs_tensor_numel(y), 0); xcs_tensor_free(y); y = NULL; }
    /* step 0 is a value error */
    CHECK_ERR(xcs_slice_axis(x, 0, (xcs_slice){0, 10, 0, true, true}, &y), XCS_ERR_VALUE, "step");
    CHECK(status_is_error(xcs_slice_axis(x, 1, (xcs_slice){0, 10, 1, true, true}, &y)));
    xcs_tensor_free(x);

    /* slicing a 2-D axis: x[:, 3:0:-2] of (2, 5) reads 3, 1 and 8, 6 */
    x = iota_f64(2, SHAPE(2, 5));
    CHECK_OK(xcs_slice_axis(x, 1, (xcs_slice){3, 0, -2, true, true}, &y));
    if (y) {
        CHECK_SHAPE(y, 2, 2, 2);
        CHECK_NEAR(at(y, SHAPE(0, 0)), 3, 0);
        CHECK_NEAR(at(y, SHAPE(0, 1)), 1, 0);
        CHECK_NEAR(at(y, SHAPE(1, 0)), 8, 0);
        CHECK_NEAR(at(y, SHAPE(1, 1)), 6, 0);
        xcs_tensor_free(y); y = NULL;
    }
    xcs_tensor_free(x);
}

static void test_index_axis(void) {
    xcs_tensor *x = iota_f64(2, SHAPE(3, 4)), *y = NULL;
    CHECK_OK(xcs_index_axis(x, 0, -1, &y));
    if (y) {
        CHECK_SHAPE(y, 1, 4);
        CHECK_NEAR(xcs_tensor_get_f64(y, 0), 8, 0);
        xcs_tensor_free(y); y = NULL;
    }
    CHECK_OK(xcs_index_axis(x, 1, 2, &y));
    if (y) {
        CHECK_SHAPE(y, 1, 3);
        CHECK_EQ_I(y->strides[0], 4);
        CHECK_NEAR(xcs_tensor_get_f64(y, 2), 10, 0);
        xcs_tensor_free(y); y = NULL;
    }
    CHECK_ERR(xcs_index_axis(x, 0, 3, &y), XCS_ERR_INDEX, "3");
    CHECK_ERR(xcs_index_axis(x, 1, -5, &y), XCS_ERR_INDEX, "-5");
    CHECK(y == NULL);
    xcs_tensor_free(x);
}

static void test_squeeze_expand(void) {
    xcs_tensor *x = iota_f64(4, SHAPE(1, 3, 1, 2)), *y = NULL;
    CHECK_OK(xcs_squeeze(x, 0, &y));
    if (y) { CHECK_SHAPE(y, 2, 3, 2); CHECK(y->storage == x->storage); xcs_tensor_free(y); y = NULL; }
    CHECK_OK(xcs_squeeze(x, 1u << 2, &y));
    if (y) { CHECK_SHAPE(y, 3, 1, 3, 2); xcs_tensor_free(y); y = NULL; }
    /* squeezing an axis whose size is not 1 is an error */
    CHECK(status_is_error(xcs_squeeze(x, 1u << 1, &y)));
    CHECK(y == NULL);
    xcs_tensor_free(x);

    x = iota_f64(2, SHAPE(3, 2));
    CHECK_OK(xcs_expand_dims(x, 0, &y));
    if (y) { CHECK_SHAPE(y, 3, 1, 3, 2); xcs_tensor_free(y); y = NULL; }
    CHECK_OK(xcs_expand_dims(x, -1, &y));
    if (y) { CHECK_SHAPE(y, 3, 3, 2, 1); xcs_tensor_free(y); y = NULL; }
    CHECK_OK(xcs_expand_dims(x, 1, &y));
    if (y) {
        CHECK_SHAPE(y, 3, 3, 1, 2);
        for (int i = 0; i < 6; i++) CHECK_NEAR(xcs_tensor_get_f64(y, i), i, 0);
        xcs_tensor_free(y); y = NULL;
    }
    /* numpy: axis in [-ndim-1, ndim] */
    CHECK(status_is_error(xcs_expand_dims(x, 3, &y)));
    CHECK(status_is_error(xcs_expand_dims(x, -4, &y)));
    xcs_tensor_free(x);
}

/* ------------------------------------------------------------ axes */

static void test_axis_normalize(void) {
    int a = -7;
    CHECK_OK(xcs_axis_normalize(-1, 3, &a)); CHECK_EQ_I(a, 2);
    CHECK_OK(xcs_axis_normalize(0, 3, &a)); CHECK_EQ_I(a, 0);
    CHECK_OK(xcs_axis_normalize(-3, 3, &a)); CHECK_EQ_I(a, 0);
    CHECK_ERR(xcs_axis_normalize(3, 3, &a), XCS_ERR_VALUE, "out of bounds");
    CHECK_ERR(xcs_axis_normalize(-4, 3, &a), XCS_ERR_VALUE, "-4");
    CHECK_ERR(xcs_axis_normalize(0, 0, &a), XCS_ERR_VALUE, "dimension 0");
}

/* ------------------------------------------------------------ dtypes */

static void test_dtype_facts(void) {
    CHECK_EQ_I(xcs_dtype_size(XCS_BOOL), 1);
    CHECK_EQ_I(xcs_dtype_size(XCS_I32), 4);
    CHECK_EQ_I(xcs_dtype_size(XCS_I64), 8);
    CHECK_EQ_I(xcs_dtype_size(XCS_F32), 4);
    CHECK_EQ_I(xcs_dtype_size(XCS_F64), 8);
    CHECK(strcmp(xcs_dtype_name(XCS_F32), "float32") == 0);
    CHECK(strcmp(xcs_dtype_name(XCS_BOOL), "bool") == 0);
    CHECK(xcs_dtype_is_float(XCS_F64) && !xcs_dtype_is_float(XCS_I64));
    CHECK(xcs_dtype_is_int(XCS_I32) && !xcs_dtype_is_int(XCS_BOOL));

    xcs_dtype d = XCS_DTYPE_COUNT;
    CHECK_OK(xcs_dtype_from_name("float32", &d)); CHECK_EQ_I(d, XCS_F32);
    CHECK_OK(xcs_dtype_from_name("f8", &d)); CHECK_EQ_I(d, XCS_F64);
    CHECK_OK(xcs_dtype_from_name("int64", &d)); CHECK_EQ_I(d, XCS_I64);
    CHECK_OK(xcs_dtype_from_name("i4", &d)); CHECK_EQ_I(d, XCS_I32);
    CHECK_OK(xcs_dtype_from_name("bool", &d)); CHECK_EQ_I(d, XCS_BOOL);
    for (int i = 0; i < XCS_DTYPE_COUNT; i++) {
        CHECK_OK(xcs_dtype_from_name(xcs_dtype_name((xcs_dtype)i), &d));
        CHECK_EQ_I(d, i);
    }
    CHECK_OK(xcs_dtype_from_name("float16", &d)); CHECK_EQ_I(d, XCS_F16);
    CHECK_OK(xcs_dtype_from_name("half", &d)); CHECK_EQ_I(d, XCS_F16);
    CHECK_OK(xcs_dtype_from_name("bfloat16", &d)); CHECK_EQ_I(d, XCS_BF16);
    CHECK(xcs_dtype_size(XCS_F16) == 2 && xcs_dtype_size(XCS_BF16) == 2 && xcs_dtype_size(XCS_F64) == 8);
    CHECK(xcs_dtype_is_float(XCS_F16) && xcs_dtype_is_float(XCS_BF16) && !xcs_dtype_is_int(XCS_BF16));
    CHECK(xcs_dtype_compute(XCS_F16) == XCS_F32 && xcs_dtype_compute(XCS_BF16) == XCS_F32 &&
          xcs_dtype_compute(XCS_I32) == XCS_I32);
    CHECK_ERR(xcs_dtype_from_name("uint8", &d), XCS_ERR_TYPE, "uint8");
    CHECK_ERR(xcs_dtype_from_name("complex64", &d), XCS_ERR_TYPE, "complex64");
    CHECK_ERR(xcs_dtype_from_name("", &d), XCS_ERR_TYPE, NULL);
}

/* numpy.result_type over our dtypes (row op column), numpy 2.x; bfloat16,
 * which numpy lacks, as JAX and ml_dtypes' ufuncs give it (float16 with
 * bfloat16: float32). */
static void test_promotion_strong(void) {
    enum { B = XCS_BOOL, I = XCS_I32, L = XCS_I64, F = XCS_F32, D = XCS_F64, H = XCS_F16, Z = XCS_BF16 };
    static const int table[7][7] = {
        /*        bool int32 int64 f32 f64 f16 bf16 */
        /* bool */ {B, I, L, F, D, H, Z},
        /* i32  */ {I, I, L, D, D, D, D},
        /* i64  */ {L, L, L, D, D, D, D},
        /* f32  */ {F, D, D, F, D, F, F},
        /* f64  */ {D, D, D, D, D, D, D},
        /* f16  */ {H, D, D, F, D, H, F},
        /* bf16 */ {Z, D, D, F, D, F, Z},
    };
    _Static_assert(XCS_DTYPE_COUNT == 7, "extend the promotion table");
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 7; b++) {
            xcs_dtype r = xcs_dtype_promote((xcs_dtype)a, false, (xcs_dtype)b, false);
            if ((int)r != table[a][b])
                fprintf(stderr, "promote(%s, %s) = %s, numpy says %s\n", xcs_dtype_name(a),
                        xcs_dtype_name(b), xcs_dtype_name(r), xcs_dtype_name(table[a][b]));
            CHECK_EQ_I(r, table[a][b]);
        }
}

/* NEP 50: a Python scalar is weak.  Its "dtype" here is what it would be
 * alone (bool, int64, float64); the result keeps the array's dtype unless the
 * scalar's kind is higher.  numpy 2.2:
 *   np.float32 array + 2      -> float32     int32 array + 2    -> int32
 *   np.int32 array + 2.5      -> float64     bool array + 2     -> int64
 *   bool array + 2.5          -> float64     int32 array + True -> int32
 *   float32 array + 2.5       -> float32     (weak, weak): as strong */
static void test_promotion_weak(void) {
    struct { xcs_dtype arr, scalar, want; } cases[] = {
        {XCS_F32, XCS_I64, XCS_F32}, {XCS_F32, XCS_F64, XCS_F32}, {XCS_F32, XCS_BOOL, XCS_F32},
        {XCS_F64, XCS_I64, XCS_F64}, {XCS_F64, XCS_F64, XCS_F64},
        {XCS_I32, XCS_I64, XCS_I32}, {XCS_I32, XCS_F64, XCS_F64}, {XCS_I32, XCS_BOOL, XCS_I32},
        {XCS_I64, XCS_I64, XCS_I64}, {XCS_I64, XCS_F64, XCS_F64},
        {XCS_BOOL, XCS_BOOL, XCS_BOOL}, {XCS_BOOL, XCS_I64, XCS_I64}, {XCS_BOOL, XCS_F64, XCS_F64},
        {XCS_F16, XCS_I64, XCS_F16}, {XCS_F16, XCS_F64, XCS_F16}, {XCS_F16, XCS_BOOL, XCS_F16},
        {XCS_BF16, XCS_I64, XCS_BF16}, {XCS_BF16, XCS_F64, XCS_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xcs_dtype r1 = xcs_dtype_promote(cases[i].arr, false, cases[i].scalar, true);
        xcs_dtype r2 = xcs_dtype_promote(cases[i].scalar, true, cases[i].arr, false);
        if (r1 != cases[i].want || r2 != cases[i].want)
            fprintf(stderr, "weak promote(%s array, %s scalar) = %s / %s, numpy says %s\n",
                    xcs_dtype_name(cases[i].arr), xcs_dtype_name(cases[i].scalar),
                    xcs_dtype_name(r1), xcs_dtype_name(r2), xcs_dtype_name(cases[i].want));
        CHECK_EQ_I(r1, cases[i].want);
        CHECK_EQ_I(r2, cases[i].want);
    }
    /* two weak scalars: 1 + 2.5 -> float64; True + 1 -> int64 */
    CHECK_EQ_I(xcs_dtype_promote(XCS_I64, true, XCS_F64, true), XCS_F64);
    CHECK_EQ_I(xcs_dtype_promote(XCS_BOOL, true, XCS_I64, true), XCS_I64);
}

/* ------------------------------------------------------------ op table */

static void test_op_table(void) {
    for (int i = 0; i < XCS_OP_COUNT; i++) {
        const xcs_op_info *info = xcs_op_get_info((xcs_op)i);
        CHECK(info != NULL);
        if (!info) continue;
        CHECK(info->name && info->name[0]);
        CHECK(strcmp(xcs_op_name((xcs_op)i), info->name) == 0);
        xcs_op back = XCS_OP_COUNT;
        CHECK_OK(xcs_op_from_name(info->name, &back));
        CHECK_EQ_I(back, i);
    }
    xcs_op o;
    CHECK_OK(xcs_op_from_name("add", &o)); CHECK_EQ_I(o, XCS_OP_ADD);
    CHECK_ERR(xcs_op_from_name("no_such_op", &o), XCS_ERR_VALUE, "no_such_op");
    CHECK(strcmp(xcs_status_name(XCS_OK), "") != 0);
}

/* ------------------------------------------------------------ errors */

static void test_error_slot(void) {
    xcs_error_clear();
    CHECK_EQ_I(xcs_last_status(), XCS_OK);
    CHECK_EQ_I(xcs_error(XCS_ERR_SHAPE, "bad %s %d", "thing", 7), XCS_ERR_SHAPE);
    CHECK_EQ_I(xcs_last_status(), XCS_ERR_SHAPE);
    CHECK(strstr(xcs_last_error(), "bad thing 7") != NULL);
    CHECK_EQ_I(xcs_error_context(XCS_ERR_SHAPE, "matmul"), XCS_ERR_SHAPE);
    CHECK(strstr(xcs_last_error(), "matmul") != NULL);
    CHECK(strstr(xcs_last_error(), "bad thing 7") != NULL);
    CHECK(strstr(xcs_last_error(), "matmul") < strstr(xcs_last_error(), "bad thing"));
    /* a very long message is truncated, not overrun */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    xcs_error(XCS_ERR_VALUE, "%s", big);
    CHECK(strlen(xcs_last_error()) > 0);
    xcs_error_clear();
    CHECK_EQ_I(xcs_last_status(), XCS_OK);
}

int main(void) {
    if (xcs_host_init() != XCS_OK) {
        fprintf(stderr, "xcs_host_init failed: %s\n", xcs_last_error());
        return 1;
    }
    RUN(test_shape_str);
    RUN(test_numel);
    RUN(test_empty_too_large);
    RUN(test_broadcast);
    RUN(test_broadcast_to);
    RUN(test_strides);
    RUN(test_reshape_view);
    RUN(test_reshape_copy);
    RUN(test_permute);
    RUN(test_slice);
    RUN(test_index_axis);
    RUN(test_squeeze_expand);
    RUN(test_axis_normalize);
    RUN(test_dtype_facts);
    RUN(test_promotion_strong);
    RUN(test_promotion_weak);
    RUN(test_op_table);
    RUN(test_error_slot);
    return check_report();
}
