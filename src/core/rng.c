/* rng.c — keys of the counter-based generator (Philox-4x32-10, philox.h).
 *
 * A key is the 64-bit Philox key; the random data of a key is the Philox
 * stream of counters {j, 0, 0} (see philox.h for the exact element mapping).
 * Keys carry no state: drawing twice from one key gives the same numbers, and
 * independent streams come from xcs_rng_split, as in JAX. */
#include "xcs.h"
#include "philox.h"

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
