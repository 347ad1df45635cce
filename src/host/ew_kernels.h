/* ew_kernels.h — internal to src/host: the contiguous elementwise kernels and
 * the dtype converters, shared by the strided driver (elementwise.c) and the
 * fused tile VM, which runs several kernels back to back over L1-sized tiles.
 *
 * A kernel works on contiguous arrays that are already in the dtypes it
 * expects (xcs_ew_in_dtype / xcs_ew_out_dtype); all dtype conversion and
 * striding is the caller's job, through xcs_ew_convert_get. */
#ifndef XCS_EW_KERNELS_H
#define XCS_EW_KERNELS_H

#include "xcs.h"

/* Error bits a kernel returns (OR-ed over elements; 0 when all is well).
 * The kernel still writes every output element (0 where the bit was set),
 * so callers can finish a region and report after it. */
enum {
    XCS_EW_ERR_ZERO_DIV = 1u << 0, /* integer floor_divide / mod by zero */
    XCS_EW_ERR_NEG_POW = 1u << 1,  /* integer power with negative exponent */
};

/* out[i] = op(a[i], b[i], c[i]) for 0 <= i < n, reading as many inputs as
 * the op's arity (unused pointers may be NULL).  Inputs are arrays of
 * xcs_ew_in_dtype(op, k, compute), out of xcs_ew_out_dtype(op, compute).
 * `out` may be exactly one of the inputs (in-place), never a partial overlap.
 * Returns XCS_EW_ERR_* bits. */
typedef unsigned (*xcs_ew_kernel)(int64_t n, const void *a, const void *b, const void *c,
                                  void *out);

/* The kernel for op computing in `compute`, or NULL when the combination is
 * unsupported (bitwise ops on floats, negative on bool, ...).  LOGIC ops
 * always compute in bool, whatever `compute` says. */
xcs_ew_kernel xcs_ew_kernel_get(xcs_op op, xcs_dtype compute);
/* dtype the kernel reads for input k: bool for LOGIC ops and for where's
 * condition, else compute. */
xcs_dtype xcs_ew_in_dtype(xcs_op op, int k, xcs_dtype compute);
/* dtype the kernel writes: bool for CMP and LOGIC ops, else compute. */
xcs_dtype xcs_ew_out_dtype(xcs_op op, xcs_dtype compute);

/* dst[i] = src[i * stride] converted, for 0 <= i < n (stride in elements,
 * any sign, 0 broadcasts).  numpy casting: float -> int truncates toward
 * zero and gives INT_MIN for NaN and out-of-range values (what x86 does);
 * int -> narrower int wraps; anything -> bool is (x != 0); bool reads any
 * nonzero byte as true.  Never NULL for valid dtypes. */
typedef void (*xcs_ew_convert_fn)(int64_t n, const void *src, int64_t stride, void *dst);
xcs_ew_convert_fn xcs_ew_convert_get(xcs_dtype from, xcs_dtype to);
/* The same conversion without the instruction-set fast paths (F16C for
 * float16 <-> float32): the tests hold the two to the same bits. */
xcs_ew_convert_fn xcs_ew_convert_portable(xcs_dtype from, xcs_dtype to);

#endif /* XCS_EW_KERNELS_H */
