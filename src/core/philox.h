/* philox.h — the Philox-4x32-10 counter-based generator and the exact maps
 * from its output words to floats, shared by every backend.
 *
 * Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011): a 10-round bijection of a 128-bit counter under
 * a 64-bit key.  Each round multiplies two counter words by M0 = 0xD2511F53
 * and M1 = 0xCD9E8D57, takes the 64-bit products apart into hi/lo halves and
 * mixes them with the other two words and the round key:
 *     (hi0, lo0) = M0 * c0          (hi1, lo1) = M1 * c2
 *     c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 * and the key is bumped by the Weyl constants (0x9E3779B9, 0xBB67AE85)
 * between rounds.  Known-answer vectors (Random123 kat_vectors) are checked by
 * tests/c/test_random.c.
 *
 * Everything here is static inline and depends on <stdint.h> only, so the
 * CUDA code generator can paste or include it: define XCS_PHILOX_QUAL to
 * "__host__ __device__ __forceinline__" (done automatically under nvcc) and,
 * under NVRTC, define XCS_PHILOX_NO_STDINT after providing uint32_t/uint64_t.
 *
 * Bit-exact stream (what a device kernel must reproduce; xcs_cpu_random in
 * src/host/random.c is the reference):
 *   block(j)   = philox4x32_10(counter = {lo32(j), hi32(j), 0, 0}, key) -> w[0..3]
 *   f32 uniform  element i: w = block(i / 4)[i % 4];  u = (w >> 8) * 2^-24  in [0, 1)
 *   f64 uniform  element i: (w0, w1) = block(i / 2)[2*(i%2)], [2*(i%2)+1];
 *                u = ((w0 >> 5) * 2^26 + (w1 >> 6)) * 2^-53                   in [0, 1)
 *   uniform out  = a + (b - a) * u, in double with two roundings (no FMA:
 *                  __dmul_rn/__dadd_rn on CUDA), then rounded once to the
 *                  output dtype; a result >= b (rounding) is replaced by the
 *                  next value of the output dtype towards -inf.
 *   f32 normal   element i: w = block(i / 4); q = (i % 4) / 2;
 *                u1 = ((w[2q] >> 8) + 1) * 2^-24 in (0, 1],  u2 = (w[2q+1] >> 8) * 2^-24;
 *   f64 normal   element i: w = block(i / 2);
 *                u1 = (53 bits of w0, w1 as above + 1) * 2^-53 in (0, 1],
 *                u2 = (53 bits of w2, w3) * 2^-53 in [0, 1);
 *   Box-Muller   r = sqrt(-2 log u1), t = 2 pi u2 (double);  z = r cos t for an
 *                even i, r sin t for an odd i;  out = a + b * z in double, then
 *                rounded to the output dtype.  u1 > 0, so log never sees 0.
 * Uniforms are therefore bit-identical on every device.  Normals go through
 * log/cos/sin, which neither glibc nor CUDA round correctly, so they agree to
 * about 1 ulp of double (almost always bit-identical after rounding to f32).
 *
 * Counter words c2 and c3 are 0 for data; c2 != 0 is reserved for key
 * derivation (xcs_rng_split uses c2 = XCS_PHILOX_SPLIT_TAG), so a key's data
 * stream never contains its children's keys. */
#ifndef XCS_PHILOX_H
#define XCS_PHILOX_H

#ifndef XCS_PHILOX_NO_STDINT
#include <stdint.h>
#endif

#ifndef XCS_PHILOX_QUAL
#ifdef __CUDACC__
#define XCS_PHILOX_QUAL __host__ __device__ __forceinline__
#else
#define XCS_PHILOX_QUAL static inline
#endif
#endif

#define XCS_PHILOX_M0 0xD2511F53u
#define XCS_PHILOX_M1 0xCD9E8D57u
#define XCS_PHILOX_W0 0x9E3779B9u
#define XCS_PHILOX_W1 0xBB67AE85u
#define XCS_PHILOX_SPLIT_TAG 0x53504C54u /* "SPLT" */

XCS_PHILOX_QUAL void xcs_philox4x32_round(uint32_t c[4], uint32_t k0, uint32_t k1) {
    uint64_t p0 = (uint64_t)XCS_PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)XCS_PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

/* out = Philox-4x32-10(ctr, key).  out may alias ctr. */
XCS_PHILOX_QUAL void xcs_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                                       uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += XCS_PHILOX_W0;
            k1 += XCS_PHILOX_W1;
        }
        xcs_philox4x32_round(c, k0, k1);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* The data block j of a key: counter {lo32(j), hi32(j), 0, 0}. */
XCS_PHILOX_QUAL void xcs_philox_block(const uint32_t key[2], uint64_t j, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)j, (uint32_t)(j >> 32), 0u, 0u};
    xcs_philox4x32_10(ctr, key, out);
}

/* 24 random bits -> [0, 1) as float (exact). */
XCS_PHILOX_QUAL float xcs_philox_u01_f32(uint32_t w) {
    return (float)(w >> 8) * (1.0f / 16777216.0f);
}
/* 24 random bits -> (0, 1] as double (exact). */
XCS_PHILOX_QUAL double xcs_philox_u01_open0_24(uint32_t w) {
    return (double)((w >> 8) + 1u) * (1.0 / 16777216.0);
}
/* 53 random bits (27 of w0, 26 of w1) -> [0, 1) as double (exact). */
XCS_PHILOX_QUAL double xcs_philox_u01_f64(uint32_t w0, uint32_t w1) {
    uint64_t m = ((uint64_t)(w0 >> 5) << 26) | (uint64_t)(w1 >> 6);
    return (double)m * (1.0 / 9007199254740992.0);
}
/* 53 random bits -> (0, 1] as double (exact). */
XCS_PHILOX_QUAL double xcs_philox_u01_open0_53(uint32_t w0, uint32_t w1) {
    uint64_t m = ((uint64_t)(w0 >> 5) << 26) | (uint64_t)(w1 >> 6);
    return (double)(m + 1u) * (1.0 / 9007199254740992.0);
}

#endif /* XCS_PHILOX_H */
