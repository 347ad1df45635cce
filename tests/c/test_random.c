/* test_random.c — Philox-4x32-10, key derivation and the CPU random kernel.
 *
 * Known-answer vectors from Random123 (kat_vectors, philox4x32_10), the
 * documented element mapping of philox.h checked element by element,
 * determinism, split independence, thread-count independence, and moments
 * of 1e6 draws within 6 standard errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu_kernels.h"
#include "philox.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void test_philox_kat(void) {
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
         {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
         {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        xcs_philox4x32_10(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++) {
            if (out[j] != kat[i].out[j])
                fprintf(stderr, "  kat %d word %d: got 0x%08x want 0x%08x\n", i, j, out[j],
                        kat[i].out[j]);
            CHECK(out[j] == kat[i].out[j]);
        }
    }
    /* the seed's halves are the key: seed 0 is the all-zero KAT key */
    xcs_rng_key k = xcs_rng_key_from_seed(0x0123456789abcdefull);
    CHECK(k.k[0] == 0x89abcdefu && k.k[1] == 0x01234567u);
}

static xcs_tensor *draw(xcs_op op, xcs_rng_key key, xcs_dtype dt, int64_t n, double a, double b) {
    xcs_tensor *t = NULL;
    xcs_tensor_empty(dt, 1, &n, &t);
    CHECK_OK(xcs_cpu_random(op, key, a, b, t));
    return t;
}

static bool same(const xcs_tensor *x, const xcs_tensor *y) {
    return x->storage->nbytes == y->storage->nbytes &&
           memcmp(x->storage->data, y->storage->data, x->storage->nbytes) == 0;
}

/* Element i matches the mapping documented in philox.h, computed here from
 * the raw words. */
static void test_documented_mapping(void) {
    xcs_rng_key key = xcs_rng_key_from_seed(42);
    int64_t n = 11;
    xcs_tensor *uf = draw(XCS_OP_RANDOM_UNIFORM, key, XCS_F32, n, 0, 1);
    xcs_tensor *ud = draw(XCS_OP_RANDOM_UNIFORM, key, XCS_F64, n, -2, 3);
    xcs_tensor *nf = draw(XCS_OP_RANDOM_NORMAL, key, XCS_F32, n, 0, 1);
    xcs_tensor *nd = draw(XCS_OP_RANDOM_NORMAL, key, XCS_F64, n, 1, 2);
    const float *pf = uf->storage->data, *qf = nf->storage->data;
    const double *pd = ud->storage->data, *qd = nd->storage->data;
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        xcs_philox_block(key.k, (uint64_t)(i / 4), w);
        CHECK(pf[i] == (float)(w[i % 4] >> 8) * 0x1p-24f);
        int q = (int)(i % 4) / 2;
        double u1 = ((w[2 * q] >> 8) + 1.0) * 0x1p-24, u2 = (w[2 * q + 1] >> 8) * 0x1p-24;
        double r = sqrt(-2 * log(u1)), t = 6.283185307179586476925286766559 * u2;
        CHECK(qf[i] == (float)(i % 2 ? r * sin(t) : r * cos(t)));

        xcs_philox_block(key.k, (uint64_t)(i / 2), w);
        int h = (int)(i % 2);
        uint64_t m = ((uint64_t)(w[2 * h] >> 5) << 26) | (w[2 * h + 1] >> 6);
        CHECK(pd[i] == -2 + 5 * ((double)m * 0x1p-53));
        uint64_t m1 = ((uint64_t)(w[0] >> 5) << 26) | (w[1] >> 6);
        uint64_t m2 = ((uint64_t)(w[2] >> 5) << 26) | (w[3] >> 6);
        u1 = (double)(m1 + 1) * 0x1p-53, u2 = (double)m2 * 0x1p-53;
        r = sqrt(-2 * log(u1)), t = 6.283185307179586476925286766559 * u2;
        CHECK(qd[i] == 1 + 2 * (h ? r * sin(t) : r * cos(t)));
    }
    xcs_tensor_free(uf), xcs_tensor_free(ud), xcs_tensor_free(nf), xcs_tensor_free(nd);
}

static void test_determinism_and_prefix(void) {
    xcs_rng_key key = xcs_rng_key_from_seed(7);
    for (int dt = XCS_F32; dt <= XCS_F64; dt++)
        for (int k = 0; k < 2; k++) {
            xcs_op op = k ? XCS_OP_RANDOM_NORMAL : XCS_OP_RANDOM_UNIFORM;
            xcs_tensor *a = draw(op, key, (xcs_dtype)dt, 1001, 0, 1);
            xcs_tensor *b = draw(op, key, (xcs_dtype)dt, 1001, 0, 1);
            xcs_tensor *c = draw(op, key, (xcs_dtype)dt, 37, 0, 1); /* a prefix of a */
            CHECK(same(a, b));
            CHECK(memcmp(a->storage->data, c->storage->data, 37 * xcs_dtype_size(dt)) == 0);
            xcs_tensor_free(a), xcs_tensor_free(b), xcs_tensor_free(c);
        }
}

static double corr(const double *x, const double *y, int64_t n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

static void test_split(void) {
    xcs_rng_key key = xcs_rng_key_from_seed(2024), ks[5], ks2[2];
    xcs_rng_split(key, 5, ks);
    xcs_rng_split(key, 2, ks2);
    CHECK(ks[0].k[0] == ks2[0].k[0] && ks[0].k[1] == ks2[0].k[1]); /* child i ignores n */
    CHECK(ks[1].k[0] == ks2[1].k[0] && ks[1].k[1] == ks2[1].k[1]);
    for (int i = 0; i < 5; i++) {
        CHECK(ks[i].k[0] != key.k[0] || ks[i].k[1] != key.k[1]);
        for (int j = 0; j < i; j++) CHECK(ks[i].k[0] != ks[j].k[0] || ks[i].k[1] != ks[j].k[1]);
    }
    /* children's streams are uncorrelated with each other and the parent */
    int64_t n = 100000;
    xcs_tensor *p = draw(XCS_OP_RANDOM_UNIFORM, key, XCS_F64, n, 0, 1);
    xcs_tensor *a = draw(XCS_OP_RANDOM_UNIFORM, ks[0], XCS_F64, n, 0, 1);
    xcs_tensor *b = draw(XCS_OP_RANDOM_UNIFORM, ks[1], XCS_F64, n, 0, 1);
    double lim = 6 / sqrt((double)n);
    CHECK(fabs(corr(p->storage->data, a->storage->data, n)) < lim);
    CHECK(fabs(corr(a->storage->data, b->storage->data, n)) < lim);
    CHECK(fabs(corr(p->storage->data, b->storage->data, n)) < lim);
    CHECK(!same(a, b));
    xcs_tensor_free(p), xcs_tensor_free(a), xcs_tensor_free(b);
    /* a child key never appears among the parent's words (c2 tag) */
    uint32_t w[4];
    xcs_philox_block(key.k, 0, w);
    CHECK(!(w[0] == ks[0].k[0] && w[1] == ks[0].k[1]));
    xcs_rng_split(key, 0, NULL); /* no-op */
}

static void test_thread_independent(void) {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    xcs_rng_key key = xcs_rng_key_from_seed(99);
    for (int dt = XCS_F32; dt <= XCS_F64; dt++)
        for (int k = 0; k < 2; k++) {
            xcs_op op = k ? XCS_OP_RANDOM_NORMAL : XCS_OP_RANDOM_UNIFORM;
            omp_set_num_threads(1);
            xcs_tensor *a = draw(op, key, (xcs_dtype)dt, 1000003, -1, 2);
            omp_set_num_threads(2);
            xcs_tensor *b = draw(op, key, (xcs_dtype)dt, 1000003, -1, 2);
            omp_set_num_threads(3);
            xcs_tensor *c = draw(op, key, (xcs_dtype)dt, 1000003, -1, 2);
            CHECK(same(a, b));
            CHECK(same(a, c));
            xcs_tensor_free(a), xcs_tensor_free(b), xcs_tensor_free(c);
        }
    omp_set_num_threads(saved);
#endif
}

/* Sample mean and variance within 6 standard errors of the truth; the range
 * holds exactly. */
static void test_moments(void) {
    int64_t n = 1000000;
    xcs_rng_key key = xcs_rng_key_from_seed(12345);
    for (int dt = XCS_F32; dt <= XCS_F64; dt++) {
        for (int k = 0; k < 2; k++) {
            xcs_op op = k ? XCS_OP_RANDOM_NORMAL : XCS_OP_RANDOM_UNIFORM;
            double lo = k ? 0 : -3, hi = k ? 1 : 5; /* uniform [-3, 5) / N(0, 1) */
            xcs_tensor *t = draw(op, key, (xcs_dtype)dt, n, lo, hi);
            double s = 0, s2 = 0, mn = INFINITY, mx = -INFINITY;
            int finite = 1;
            for (int64_t i = 0; i < n; i++) {
                double v = xcs_tensor_get_f64(t, i);
                finite &= isfinite(v) != 0;
                s += v, s2 += v * v;
                mn = fmin(mn, v), mx = fmax(mx, v);
            }
            double mean = s / (double)n, var = s2 / (double)n - mean * mean;
            double tm = k ? 0 : 1, tv = k ? 1 : 64.0 / 12; /* true mean, variance */
            double m4 = k ? 3 : 64.0 * 64.0 / 80;      /* fourth central moment */
            CHECK(finite);
            CHECK_NEAR(mean, tm, 6 * sqrt(tv / (double)n));
            CHECK_NEAR(var, tv, 6 * sqrt((m4 - tv * tv) / (double)n));
            if (!k) CHECK(mn >= -3 && mx < 5);
            if (k) CHECK(mn > -6.5 && mx < 6.5 && mn < -4 && mx > 4);
            xcs_tensor_free(t);
        }
    }
    /* [0, 1) in float32 never rounds up to 1; [a, a) gives a */
    xcs_tensor *t = draw(XCS_OP_RANDOM_UNIFORM, key, XCS_F32, n, 1 - 0x1p-24, 1);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= ((float *)t->storage->data)[i] < 1.0f;
    CHECK(ok);
    xcs_tensor_free(t);
    t = draw(XCS_OP_RANDOM_UNIFORM, key, XCS_F64, 5, 2.5, 2.5);
    for (int i = 0; i < 5; i++) CHECK(xcs_tensor_get_f64(t, i) == 2.5);
    xcs_tensor_free(t);
}

static void test_bad_input(void) {
    xcs_rng_key key = xcs_rng_key_from_seed(1);
    xcs_tensor *t = NULL;
    CHECK_OK(xcs_tensor_empty(XCS_I32, 1, SHAPE(4), &t));
    CHECK_ERR(xcs_cpu_random(XCS_OP_RANDOM_UNIFORM, key, 0, 1, t), XCS_ERR_TYPE, "int32");
    xcs_tensor_free(t);
    CHECK_OK(xcs_tensor_empty(XCS_F32, 1, SHAPE(4), &t));
    CHECK_ERR(xcs_cpu_random(XCS_OP_ADD, key, 0, 1, t), XCS_ERR_INTERNAL, NULL);
    CHECK_ERR(xcs_cpu_random(XCS_OP_RANDOM_UNIFORM, key, 0, INFINITY, t), XCS_ERR_VALUE, "finite");
    xcs_tensor_free(t);
    CHECK_OK(xcs_tensor_empty(XCS_F64, 1, SHAPE(0), &t));
    CHECK_OK(xcs_cpu_random(XCS_OP_RANDOM_NORMAL, key, 0, 1, t));
    xcs_tensor_free(t);
}

int main(void) {
    RUN(test_philox_kat);
    RUN(test_documented_mapping);
    RUN(test_determinism_and_prefix);
    RUN(test_split);
    RUN(test_thread_independent);
    RUN(test_moments);
    RUN(test_bad_input);
    return check_report();
}
