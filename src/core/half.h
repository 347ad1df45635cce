/* half.h — IEEE binary16 (float16) and bfloat16 conversions, bit-exact and
 * branch-free so loops over them vectorise.
 *
 * Both are storage dtypes: xcs loads them into float32 registers, computes in
 * float32 and rounds once when it stores (see xcs_dtype_compute).  Rounding
 * is to nearest, ties to even, from float32 *and* from float64 directly: a
 * float64 rounded through float32 first can land on a tie and round the
 * wrong way (numpy's npy_double_to_half rounds directly too).  NaN stays NaN
 * (quiet, sign kept); overflow gives infinity; float16 subnormals are exact.
 *
 * The reference is numpy (float16) and ml_dtypes (bfloat16); the tests
 * compare every float16 and bfloat16 bit pattern, and random float32/float64
 * patterns, against them. */
#ifndef XCS_HALF_H
#define XCS_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t xcs_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float xcs_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint64_t xcs_f64_bits(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* float16 -> float32: exact.  Normal and subnormal halves are rescaled by
 * one float multiply (2^112 moves the exponent bias from 15 to 127 and turns
 * a subnormal's integer mantissa into the right normal float); inf/NaN keep
 * an all-ones exponent. */
static inline float xcs_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    float scaled = xcs_bits_f32(em << 13) * 0x1p112f;
    uint32_t special = em >= 0x7c00u ? 0x7f800000u | (em & 0x3ffu) << 13 : 0;
    uint32_t bits = special ? special : xcs_f32_bits(scaled);
    return xcs_bits_f32(sign | bits);
}

/* float32 -> float16, round to nearest even.  Normal results: add the
 * rounding bias to the float32 bits and shift (a carry into the exponent is
 * the right answer, up to infinity).  Subnormal results: a float add of 0.5
 * aligns the mantissa so the FPU rounds it (ties to even), as in
 * Giesen's float_to_half_fast3. */
static inline uint16_t xcs_f32_to_f16(float f) {
    uint32_t u = xcs_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);            /* quiet, payload kept */
    uint32_t odd = (a >> 13) & 1u;
    uint32_t normal = (a - ((uint32_t)(127 - 15) << 23) + 0xfffu + odd) >> 13;
    uint32_t sub = xcs_f32_bits(xcs_bits_f32(a) + 0.5f) - 0x3f000000u;
    uint32_t r = a > 0x7f800000u ? nan
               : a >= 0x477ff000u ? 0x7c00u                   /* >= 65520: inf */
               : a < 0x38800000u ? sub                        /* < 2^-14: subnormal or 0 */
               : normal;
    return (uint16_t)(sign | r);
}

/* float64 -> float16, round to nearest even, directly. */
static inline uint16_t xcs_f64_to_f16(double d) {
    uint64_t u = xcs_f64_bits(d);
    uint32_t sign = (uint32_t)(u >> 48) & 0x8000u;
    uint64_t a = u & 0x7fffffffffffffffull;
    int32_t e = (int32_t)(a >> 52) - 1023 + 15;               /* the half's biased exponent */
    uint64_t m = (a & 0xfffffffffffffull) | (1ull << 52);     /* 53 bits with the implicit 1 */
    /* bits to drop: 42 for a normal half, more below its exponent range */
    int32_t shift = 42 + (e < 1 ? 1 - e : 0);
    shift = shift > 63 ? 63 : shift;
    uint64_t kept = m >> shift, rest = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    uint64_t up = rest > half || (rest == half && (kept & 1));
    /* a normal's exponent sits above its 10 mantissa bits; a carry out of
     * the mantissa bumps it, which is right (up to infinity) */
    uint64_t bits = ((uint64_t)(e < 1 ? 0 : e - 1) << 10) + kept + up;
    uint32_t nan = 0x7e00u | (uint32_t)((a >> 42) & 0x3ffu);
    uint32_t r = a > 0x7ff0000000000000ull ? nan
               : e >= 31 || bits >= 0x7c00u ? 0x7c00u
               : a < 0x3e60000000000000ull ? 0                /* below half the smallest subnormal */
               : (uint32_t)bits;
    return (uint16_t)(sign | r);
}

/* bfloat16 is the top half of a float32. */
static inline float xcs_bf16_to_f32(uint16_t h) { return xcs_bits_f32((uint32_t)h << 16); }

static inline uint16_t xcs_f32_to_bf16(float f) {
    uint32_t u = xcs_f32_bits(f);
    uint32_t nan = (u >> 16) | 0x40u;                          /* quiet, sign and payload kept */
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

/* float64 -> bfloat16, round to nearest even, directly. */
static inline uint16_t xcs_f64_to_bf16(double d) {
    uint64_t u = xcs_f64_bits(d);
    uint32_t sign = (uint32_t)(u >> 48) & 0x8000u;
    uint64_t a = u & 0x7fffffffffffffffull;
    int32_t e = (int32_t)(a >> 52) - 1023 + 127;               /* the bfloat16's biased exponent */
    uint64_t m = (a & 0xfffffffffffffull) | (1ull << 52);
    int32_t shift = 45 + (e < 1 ? 1 - e : 0);
    shift = shift > 63 ? 63 : shift;
    uint64_t kept = m >> shift, rest = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    uint64_t up = rest > half || (rest == half && (kept & 1));
    uint64_t bits = ((uint64_t)(e < 1 ? 0 : e - 1) << 7) + kept + up;
    uint32_t nan = 0x7fc0u | (uint32_t)((a >> 45) & 0x7fu);
    uint32_t r = a > 0x7ff0000000000000ull ? nan
               : e >= 255 || bits >= 0x7f80u ? 0x7f80u
               : a < 0x3790000000000000ull ? 0                /* below half the smallest subnormal, 2^-134 */
               : (uint32_t)bits;
    return (uint16_t)(sign | r);
}

#endif
