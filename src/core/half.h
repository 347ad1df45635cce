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
 * patterns, against them (tests/python/test_half.py).
 *
 * One body serves two compilers: XCS_HALF_CV_SOURCE(Q) below is expanded here
 * as host C (Q = static inline) and stringified by src/cuda/codegen.c into
 * the prelude NVRTC compiles (Q = __device__ __forceinline__), so the GPU's
 * conversions are these, token for token.  It uses only `unsigned int` (32
 * bits), `unsigned long long`, `int`, float and double, and three bit casts
 * each side defines first: xcs_hc_f2u(float), xcs_hc_u2f(unsigned int),
 * xcs_hc_d2u(double).  No comments inside the body (stringification drops
 * them); the reasoning is here:
 *
 * - float16 -> float32 is exact: normal and subnormal halves are rescaled by
 *   one float multiply (2^112 moves the exponent bias from 15 to 127 and
 *   turns a subnormal's integer mantissa into the right normal float);
 *   inf/NaN keep an all-ones exponent.
 * - float32 -> float16: normal results add the rounding bias to the float32
 *   bits and shift (a carry into the exponent is the right answer, up to
 *   infinity); subnormal results come from a float add of 0.5, which aligns
 *   the mantissa so the FPU rounds it, ties to even (Giesen's
 *   float_to_half_fast3).  Neither the host (SSE) nor NVRTC (no
 *   --use_fast_math) flushes float32 subnormals or contracts the add.
 * - float64 -> float16/bfloat16 round the 53-bit significand directly: the
 *   bits to drop are 42 (45) for a normal result and more below the
 *   exponent range; a carry out of the mantissa bumps the exponent, which is
 *   right up to infinity; below half the smallest subnormal the result is 0.
 * - bfloat16 is the top half of a float32: rounding adds 0x7fff plus the
 *   kept lsb.
 * PTX cvt.rn.f16.f32 would round the same but makes every NaN 0x7fff, where
 * this keeps the payload. */
#ifndef XCS_HALF_H
#define XCS_HALF_H

#include <stdint.h>
#include <string.h>

#define XCS_HALF_CV_SOURCE(Q)                                                                                   \
    Q float xcs_hc_f16_to_f32(unsigned int h) {                                                                 \
        unsigned int sign = (h & 0x8000u) << 16;                                                                \
        unsigned int em = h & 0x7fffu;                                                                          \
        float scaled = xcs_hc_u2f(em << 13) * 0x1p112f;                                                         \
        unsigned int special = em >= 0x7c00u ? 0x7f800000u | (em & 0x3ffu) << 13 : 0u;                          \
        unsigned int bits = special ? special : xcs_hc_f2u(scaled);                                             \
        return xcs_hc_u2f(sign | bits);                                                                         \
    }                                                                                                           \
    Q unsigned short xcs_hc_f32_to_f16(float f) {                                                               \
        unsigned int u = xcs_hc_f2u(f);                                                                         \
        unsigned int sign = (u >> 16) & 0x8000u;                                                                \
        unsigned int a = u & 0x7fffffffu;                                                                       \
        unsigned int qnan = 0x7e00u | ((a >> 13) & 0x3ffu);                                                     \
        unsigned int odd = (a >> 13) & 1u;                                                                      \
        unsigned int normal = (a - (112u << 23) + 0xfffu + odd) >> 13;                                          \
        unsigned int sub = xcs_hc_f2u(xcs_hc_u2f(a) + 0.5f) - 0x3f000000u;                                      \
        unsigned int r = a > 0x7f800000u ? qnan                                                                 \
                       : a >= 0x477ff000u ? 0x7c00u                                                             \
                       : a < 0x38800000u ? sub                                                                  \
                       : normal;                                                                                \
        return (unsigned short)(sign | r);                                                                      \
    }                                                                                                           \
    Q unsigned short xcs_hc_f64_to_small(double d, int mant, int bias, unsigned int inf,                        \
                                         unsigned long long zero_below) {                                       \
        unsigned long long u = xcs_hc_d2u(d);                                                                   \
        unsigned int sign = (unsigned int)(u >> 48) & 0x8000u;                                                  \
        unsigned long long a = u & 0x7fffffffffffffffull;                                                       \
        int e = (int)(a >> 52) - 1023 + bias;                                                                   \
        unsigned long long m = (a & 0xfffffffffffffull) | (1ull << 52);                                         \
        int shift = 52 - mant + (e < 1 ? 1 - e : 0);                                                            \
        shift = shift > 63 ? 63 : shift;                                                                        \
        unsigned long long kept = m >> shift, rest = m & ((1ull << shift) - 1ull);                              \
        unsigned long long hw = 1ull << (shift - 1);                                                            \
        unsigned long long up = rest > hw || (rest == hw && (kept & 1ull));                                     \
        unsigned long long bits = ((unsigned long long)(e < 1 ? 0 : e - 1) << mant) + kept + up;                \
        unsigned int payload = (unsigned int)((a >> (52 - mant)) & ((1ull << mant) - 1ull));                    \
        unsigned int qnan = inf | (1u << (mant - 1)) | payload;                                                 \
        unsigned int r = a > 0x7ff0000000000000ull ? qnan                                                       \
                       : e >= (int)(inf >> mant) || bits >= inf ? inf                                           \
                       : a < zero_below ? 0u                                                                    \
                       : (unsigned int)bits;                                                                    \
        return (unsigned short)(sign | r);                                                                      \
    }                                                                                                           \
    Q unsigned short xcs_hc_f64_to_f16(double d) {                                                              \
        return xcs_hc_f64_to_small(d, 10, 15, 0x7c00u, 0x3e60000000000000ull);                                  \
    }                                                                                                           \
    Q float xcs_hc_bf16_to_f32(unsigned int h) { return xcs_hc_u2f(h << 16); }                                  \
    Q unsigned short xcs_hc_f32_to_bf16(float f) {                                                              \
        unsigned int u = xcs_hc_f2u(f);                                                                         \
        unsigned int qnan = (u >> 16) | 0x40u;                                                                  \
        unsigned int r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                                                \
        return (unsigned short)((u & 0x7fffffffu) > 0x7f800000u ? qnan : r);                                    \
    }                                                                                                           \
    Q unsigned short xcs_hc_f64_to_bf16(double d) {                                                             \
        return xcs_hc_f64_to_small(d, 7, 127, 0x7f80u, 0x3790000000000000ull);                                  \
    }

static inline unsigned int xcs_hc_f2u(float f) {
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float xcs_hc_u2f(unsigned int u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline unsigned long long xcs_hc_d2u(double d) {
    unsigned long long u;
    memcpy(&u, &d, sizeof u);
    return u;
}
XCS_HALF_CV_SOURCE(static inline)

static inline uint32_t xcs_f32_bits(float f) { return xcs_hc_f2u(f); }
static inline float xcs_bits_f32(uint32_t u) { return xcs_hc_u2f(u); }
static inline uint64_t xcs_f64_bits(double f) { return xcs_hc_d2u(f); }

static inline float xcs_f16_to_f32(uint16_t h) { return xcs_hc_f16_to_f32(h); }
static inline uint16_t xcs_f32_to_f16(float f) { return xcs_hc_f32_to_f16(f); }
static inline uint16_t xcs_f64_to_f16(double d) { return xcs_hc_f64_to_f16(d); }
static inline float xcs_bf16_to_f32(uint16_t h) { return xcs_hc_bf16_to_f32(h); }
static inline uint16_t xcs_f32_to_bf16(float f) { return xcs_hc_f32_to_bf16(f); }
static inline uint16_t xcs_f64_to_bf16(double d) { return xcs_hc_f64_to_bf16(d); }

#endif
