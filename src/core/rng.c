/* rng.c — keys of the counter-based generator (Philox-4x32-10, philox.h).
 *
 * A key is the 64-bit Philox key; the random data of a key is the Philox
 * stream of counters {j, 0, 0} (see philox.h for the exact element mapping).
 * Keys carry no state: drawing twice from one key gives the same numbers, and
 * independent streams come from xcs_rng_split, as in JAX. */
#include "philox.h"
#include "trace.h"

#include <stdlib.h>

/* The seed's two 32-bit halves are the key, so key_from_seed(0) is the
 * all-zero key of the Random123 known-answer tests.  Philox's quality does
 * not depend on the key's bits being mixed (Salmon et al. §3.2: any key, even
 * consecutive ones, gives an independent stream). */
xcs_rng_key xcs_rng_key_from_seed(uint64_t seed) {
    xcs_rng_key k;
    k.k[0] = (uint32_t)seed;
    k.k[1] = (uint32_t)(seed >> 32);
    return k;
}

/* Child i of `key` is the first two words of
 *     philox4x32_10(counter = {lo32(i), hi32(i), XCS_PHILOX_SPLIT_TAG, 0}, key).
 * The tag in counter word 2 keeps these counters disjoint from the data
 * counters {j, 0, 0}, so no child key ever appears among the parent's random
 * words, and child i does not depend on n (split(k, 2)[0] == split(k, 5)[0]).
 * Writes n keys to out; n <= 0 writes nothing. */
void xcs_rng_split(xcs_rng_key key, int64_t n, xcs_rng_key *out) {
    if (!out) return;
    for (int64_t i = 0; i < n; i++) {
        uint32_t ctr[4] = {(uint32_t)(uint64_t)i, (uint32_t)((uint64_t)i >> 32),
                           XCS_PHILOX_SPLIT_TAG, 0u};
        uint32_t w[4];
        xcs_philox4x32_10(ctr, key.k, w);
        out[i].k[0] = w[0];
        out[i].k[1] = w[1];
    }
}

/* ---------------------------------------------------------------- keys as arrays */

static xcs_status key_shape(const xcs_tensor *key, const char *op) {
    if (xcs_dtype_is_int(key->dtype) && key->ndim == 1 && key->shape[0] == 2) return XCS_OK;
    char s[96];
    return xcs_error(XCS_ERR_TYPE,
                     "%s: a key is an integer array of shape (2,) from ember.xcs.random.key or split, got %s %s", op,
                     xcs_dtype_name(key->dtype), xcs_shape_str(key->ndim, key->shape, s, sizeof s));
}

xcs_status xcs_rng_key_read(const xcs_tensor *key, const char *op, xcs_rng_key *out) {
    xcs_status st = key_shape(key, op);
    if (st) return st;
    if (key->graph || !key->storage)
        return xcs_error(XCS_ERR_VALUE, "%s: the key is traced; its words are known only when the program runs", op);
    xcs_tensor *h = NULL; /* a key on a device: its two words come to the host */
    if (!xcs_tensor_on_host(key) && (st = xcs_tensor_to(key, XCS_DEVICE_CPU, 0, &h))) return st;
    for (int i = 0; i < 2; i++) {
        int64_t w = xcs_tensor_get_i64(h ? h : key, i);
        if (w < 0 || w > (int64_t)UINT32_MAX) {
            xcs_tensor_free(h);
            return xcs_error(XCS_ERR_VALUE, "%s: key words must be 32-bit unsigned values, got %lld", op, (long long)w);
        }
        out->k[i] = (uint32_t)w;
    }
    xcs_tensor_free(h);
    return XCS_OK;
}

/* Records op on traced key (and the draw's bounds) in its graph. */
static xcs_status trace_draw(xcs_op op, const xcs_tensor *key, xcs_dtype dt, int ndim, const int64_t *shape,
                             double lo, double hi, xcs_tensor **out) {
    xcs_tensor *b[2] = {NULL, NULL};
    xcs_status st = xcs_tensor_scalar(XCS_F64, lo, &b[0]);
    if (!st) st = xcs_tensor_scalar(XCS_F64, hi, &b[1]);
    const xcs_tensor *in[3] = {key, b[0], b[1]};
    if (!st) st = xcs_trace_node(key->graph, op, 3, in, dt, dt, ndim, shape, 0, 0, out);
    xcs_tensor_free(b[0]);
    xcs_tensor_free(b[1]);
    return st;
}

static xcs_status draw(xcs_op op, const char *name, const xcs_tensor *key, xcs_dtype dt, int ndim,
                       const int64_t *shape, double lo, double hi, xcs_tensor **out) {
    xcs_status st = key_shape(key, name);
    if (st) return st;
    if (key->graph) {
        /* the checks a concrete draw makes, now: the program fails only on a bad key */
        if ((st = xcs_random_args_check(op, dt, lo, hi))) return st;
        return trace_draw(op, key, dt, ndim, shape, lo, hi, out);
    }
    xcs_rng_key k;
    if ((st = xcs_rng_key_read(key, name, &k))) return st;
    return op == XCS_OP_RANDOM_UNIFORM ? xcs_random_uniform(k, dt, ndim, shape, lo, hi, out)
                                       : xcs_random_normal(k, dt, ndim, shape, out);
}

xcs_status xcs_random_uniform_a(const xcs_tensor *key, xcs_dtype dt, int ndim, const int64_t *shape, double lo,
                                double hi, xcs_tensor **out) {
    return draw(XCS_OP_RANDOM_UNIFORM, "random.uniform", key, dt, ndim, shape, lo, hi, out);
}

xcs_status xcs_random_normal_a(const xcs_tensor *key, xcs_dtype dt, int ndim, const int64_t *shape,
                               xcs_tensor **out) {
    return draw(XCS_OP_RANDOM_NORMAL, "random.normal", key, dt, ndim, shape, 0.0, 1.0, out);
}

/* n keys from key as an int64 [n, 2] array. */
static xcs_status split_array(xcs_rng_key key, int64_t n, xcs_tensor **out) {
    int64_t shape[2] = {n, 2};
    xcs_rng_key *keys = malloc((size_t)(n > 0 ? n : 1) * sizeof *keys);
    if (!keys) return xcs_error(XCS_ERR_MEMORY, "random.split: out of memory for %lld keys", (long long)n);
    xcs_status st = xcs_tensor_empty(XCS_I64, 2, shape, out);
    if (!st) {
        xcs_rng_split(key, n, keys);
        int64_t *p = xcs_tensor_data(*out);
        for (int64_t i = 0; i < n; i++) p[2 * i] = keys[i].k[0], p[2 * i + 1] = keys[i].k[1];
    }
    free(keys);
    return st;
}

xcs_status xcs_random_split_a(const xcs_tensor *key, int64_t n, xcs_tensor **out) {
    xcs_status st = key_shape(key, "random.split");
    if (st) return st;
    if (n < 1 || n > ((int64_t)1 << 40))
        return xcs_error(XCS_ERR_VALUE, "random.split: num must be in [1, 2**40], got %lld", (long long)n);
    if (key->graph) {
        int64_t shape[2] = {n, 2};
        return xcs_trace_node(key->graph, XCS_OP_RANDOM_SPLIT, 1, &key, XCS_I64, XCS_I64, 2, shape, 0, 0, out);
    }
    xcs_rng_key k;
    if ((st = xcs_rng_key_read(key, "random.split", &k))) return st;
    return split_array(k, n, out);
}

xcs_status xcs_random_node_run(xcs_op op, xcs_dtype dt, int ndim, const int64_t *shape, int n_in,
                               const xcs_tensor *const *in, xcs_tensor **out) {
    const char *name = xcs_op_name(op);
    xcs_rng_key k;
    xcs_status st = n_in >= 1 ? xcs_rng_key_read(in[0], name, &k) : xcs_error(XCS_ERR_INTERNAL, "%s: no key", name);
    if (st) return st;
    if (op == XCS_OP_RANDOM_SPLIT) return split_array(k, shape[0], out);
    if (n_in != 3) return xcs_error(XCS_ERR_INTERNAL, "%s node: %d inputs", name, n_in);
    double lo = xcs_tensor_get_f64(in[1], 0), hi = xcs_tensor_get_f64(in[2], 0);
    return op == XCS_OP_RANDOM_UNIFORM ? xcs_random_uniform(k, dt, ndim, shape, lo, hi, out)
                                       : xcs_random_normal(k, dt, ndim, shape, out);
}
