"""numpy's integer, bit-level and floating-point decomposition ufuncs (and
their relatives), composed of ember.xcs.numpy's ops, so they work eagerly and
under jit / grad / vmap alike.

Re-exported by ember.xcs.numpy; ``NUMPY_UFUNCS`` names the numpy ufuncs whose
plain calls (``np.ldexp(x, 2)``) dispatch here from ``Array`` arguments
(ember.xcs._dispatch), ``NUMPY_FUNCTIONS`` the other numpy functions.

Result dtypes are numpy's: each ufunc asks numpy itself, by calling it on
empty arrays of the operands' dtypes (Python scalars passed as they are, so
NEP 50's weak scalars, numpy's OverflowError for a Python int out of the
loop's range and its TypeError for an unsupported dtype all come from numpy).
Where numpy's result dtype is one xcs lacks (int8 for two bools, uint8 for
bitwise_count) the result is int32, the dtype xcs stores those values in --
what numpy's own result turns into as an Array.

No op here reinterprets bits (xcs has no bitcast): shifts multiply and
floor-divide by powers of two (integer ops wrap, as numpy's), and the float
decompositions scale by exact powers of two built as products of constants."""

import ml_dtypes as _ml_dtypes
import numpy as _np

from ember.xcs import numpy as xnp  # attributes read at call time: xnp is still loading here
from ember.xcs._xcs import XCSTypeError

__all__ = [
    "bitwise_count", "bitwise_left_shift", "bitwise_right_shift", "divmod", "frexp", "gcd", "i0", "lcm", "ldexp",
    "left_shift", "nextafter", "right_shift", "spacing",
]

NUMPY_UFUNCS = (
    "bitwise_count", "divmod", "frexp", "gcd", "lcm", "ldexp", "left_shift", "nextafter", "right_shift", "spacing",
)
NUMPY_FUNCTIONS = ("i0",)


# ---------------------------------------------------------------- helpers

# numpy dtypes xcs stores as another (as ember.xcs.numpy converts inputs)
_STORED_AS = {_np.dtype(t): _np.dtype(_np.int32) for t in (_np.int8, _np.int16, _np.uint8, _np.uint16)}


def _operands(ufunc, args):
    """(operands, numpy's result dtypes) for ufunc(*args).

    Python scalars stay as they are (NEP 50 weak); anything else becomes an
    Array.  numpy itself picks the result dtypes, from a call on empty
    arrays of the operands' dtypes; its errors (no loop for these dtypes, a
    Python int out of range) are raised as they are, a TypeError as XCSTypeError."""
    ops = [v if type(v) in (int, float) else xnp.asarray(v) for v in args]
    probe = [v if type(v) in (int, float) else _np.empty(0, v.dtype) for v in ops]
    try:
        r = ufunc(*probe)
    except TypeError as e:
        raise XCSTypeError(f"{ufunc.__name__}: {e}") from None
    outs = tuple(o.dtype for o in (r if isinstance(r, tuple) else (r,)))
    for dt in outs:
        if not xnp._numeric(dt):
            raise XCSTypeError(f"{ufunc.__name__}: numpy's result dtype {dt} is not an xcs dtype")
    return ops, tuple(_STORED_AS.get(dt, dt) for dt in outs)


def _as(v, dt):
    """v (Array or Python scalar) as an Array of dtype dt."""
    return xnp.astype(xnp.asarray(v), dt, copy=False)


def _c(v, dt):
    """The constant v as a 0-d Array of dtype dt (a Python float would be weak, or float64 in where)."""
    return xnp.asarray(v, dt)


def _finfo(dt):
    """numpy's finfo, ml_dtypes' for bfloat16 (numpy's has no entry for it)."""
    return _ml_dtypes.finfo(dt) if dt == xnp._BF16 else _np.finfo(dt)


def _fmt(dt):
    """(p, emin, emax) of float dtype dt: precision in bits (the implicit one counted), and the
    exponents of its smallest and largest normal binades (x = m 2^e, 1 <= m < 2)."""
    f = _finfo(dt)
    return int(f.nmant) + 1, int(f.minexp), int(f.maxexp) - 1


def _compute(dt):
    """The float dtype xcs computes dt in: float32 for the 16-bit floats (every one of their values
    and of the powers of two they reach is a float32), dt otherwise."""
    return _np.dtype(xnp.float32) if dt.itemsize == 2 else _np.dtype(dt)


def _pow2(n, dt, lo, hi):
    """2.0**n exactly, in float dtype dt, for an integer Array n in [lo, hi], a range over
    which 2**n is a value of dt (subnormals included).

    A product over the bits of |n| of the constants 2^(+-2^j): every partial
    product is a power of two between 1 and 2^n, so representable, so exact
    (no exp2: xcs's is not promised to be exact at integers on every backend)."""
    a = xnp.absolute(n)
    neg = xnp.less(n, 0)
    r = None
    for j in range(max(-lo, hi).bit_length()):
        up = 2.0 ** (1 << j) if 1 << j <= hi else 1.0  # a bit that n's sign never sets: any factor
        down = 2.0 ** -(1 << j) if 1 << j <= -lo else 1.0
        f = xnp.where(neg, _c(down, dt), _c(up, dt))
        f = xnp.where(xnp.not_equal(xnp.bitwise_and(a, 1 << j), 0), f, _c(1.0, dt))
        r = f if r is None else xnp.multiply(r, f)
    return xnp.broadcast_to(_c(1.0, dt), n.shape) if r is None else r


def _ipow2(s, dt):
    """2**s in integer dtype dt for s in [0, bits), 2**(bits-1) wrapping to the dtype's minimum
    (integer multiplies wrap, so the product of the bits' powers is exact modulo 2**bits)."""
    bits = 8 * dt.itemsize
    r = None
    for j in range((bits - 1).bit_length()):
        f = xnp.where(xnp.not_equal(xnp.bitwise_and(s, 1 << j), 0), _c(1 << (1 << j), dt), _c(1, dt))
        r = f if r is None else xnp.multiply(r, f)
    return r


def _frexp_parts(x):
    """(m, e) with x = m 2^e, 0.5 <= |m| < 1, e int32, for a float32 / float64 Array x; (x, 0)
    where x is 0, infinite or NaN.

    Subnormals are first scaled by 2^p into the normal range.  e comes from
    floor(log2|x|) + 1, which may be one off near a power of two (log2's
    rounding): m = x 2^-e then lies in [0.25, 2), and one halving or doubling
    (exact) puts it in [0.5, 1).  2^-e is built as 2^(1-e) / 2, with 1 - e in
    the normal range."""
    p, emin, emax = _fmt(x.dtype)
    dt = x.dtype
    ax = xnp.absolute(x)
    tiny = xnp.less(ax, 2.0 ** emin)
    xs = xnp.where(tiny, xnp.multiply(x, _c(2.0 ** p, dt)), x)
    special = xnp.logical_or(xnp.equal(x, 0), xnp.logical_not(xnp.isfinite(x)))
    safe = xnp.where(special, _c(1.0, dt), xs)  # log2 and the int cast see finite nonzero values only
    e = xnp.add(xnp.astype(xnp.floor(xnp.log2(xnp.absolute(safe))), xnp.int32), 1)
    e = xnp.clip(e, emin + 1, emax + 1)  # the true e of a normal value lies here
    m = xnp.multiply(xnp.multiply(safe, _pow2(xnp.subtract(1, e), dt, -emax, -emin)), _c(0.5, dt))
    big = xnp.greater_equal(xnp.absolute(m), 1.0)
    m, e = xnp.where(big, xnp.multiply(m, _c(0.5, dt)), m), xnp.where(big, xnp.add(e, 1), e)
    small = xnp.less(xnp.absolute(m), 0.5)
    m, e = xnp.where(small, xnp.multiply(m, _c(2.0, dt)), m), xnp.where(small, xnp.subtract(e, 1), e)
    e = xnp.where(tiny, xnp.subtract(e, p), e)
    return xnp.where(special, x, m), xnp.where(special, _c(0, xnp.int32), e)


def _scalbn(x, n):
    """x 2^n rounded once, for a float32 / float64 Array x and an int Array n (musl's scalbn).

    One multiply by 2^n cannot do: 2^n itself over- or underflows for some n
    whose result is finite.  Up to two exact pre-scalings by 2^emax (n large)
    or by 2^(emin+p) (n small) bring n into [emin, emax]; the small step keeps
    the last n below -p, so a subnormal result is rounded by the last multiply
    only.  Past two steps the result is 0 or inf whatever n is, so n is clamped
    (as numpy clamps int64 exponents to int32's range)."""
    p, emin, emax = _fmt(x.dtype)
    dt = x.dtype
    n = xnp.astype(xnp.clip(n, -4 * (emax + p), 4 * (emax + p)), xnp.int32)
    for _ in range(2):
        up, down = xnp.greater(n, emax), xnp.less(n, emin)
        f = xnp.where(up, _c(2.0 ** emax, dt), xnp.where(down, _c(2.0 ** (emin + p), dt), _c(1.0, dt)))
        x = xnp.multiply(x, f)
        n = xnp.subtract(n, xnp.where(up, emax, xnp.where(down, emin + p, 0)))
    return xnp.multiply(x, _pow2(xnp.clip(n, emin, emax), dt, emin, emax))


# ---------------------------------------------------------------- float decomposition


def ldexp(x1, x2, /):
    """x1 * 2**x2, rounded once (numpy.ldexp): x2 must be an integer (numpy's TypeError for a float
    exponent), the result has x1's float dtype (ints give float64, bools float16); overflow gives
    inf, underflow rounds into the subnormals and to (signed) zero.  Differentiable in x1
    (d/dx1 = 2**x2); float16 / bfloat16 are scaled in float32 (exactly) and rounded once."""
    (x, n), (dt,) = _operands(_np.ldexp, (x1, x2))
    ct = _compute(dt)
    return xnp.astype(_scalbn(_as(x, ct), xnp.asarray(n)), dt, copy=False)


def frexp(x, /):
    """(mantissa, exponent) with x = mantissa * 2**exponent and 0.5 <= |mantissa| < 1 (numpy.frexp):
    mantissa in x's float dtype (ints: float64, bools: float16), exponent int32; 0, infinities
    and NaN give (x, 0), subnormals their true exponent.  The mantissa is differentiable
    (d/dx = 2**-exponent)."""
    (x,), (dt, _) = _operands(_np.frexp, (x,))
    m, e = _frexp_parts(_as(x, _compute(dt)))
    return xnp.astype(m, dt, copy=False), e


def nextafter(x1, x2, /):
    """The next value of x1's float dtype after x1 toward x2 (numpy.nextafter): x2 where x1 == x2
    (so nextafter(0.0, -0.0) is -0.0), the smallest subnormal (signed) from zero, the largest
    finite value from an infinity, inf past the largest, NaN when either is NaN.

    x1 plus or minus the spacing of its binade (half of it going toward zero from a power of
    two), an exact sum; float16 / bfloat16 step by their own spacing, in float32."""
    (a, b), (dt,) = _operands(_np.nextafter, (x1, x2))
    ct = _compute(dt)
    a, b = _as(a, ct), _as(b, ct)
    p, emin, emax = _fmt(dt)
    m, e = _frexp_parts(a)
    up = xnp.greater(b, a)
    away = xnp.equal(up, xnp.greater(a, 0))
    k = xnp.subtract(xnp.maximum(e, emin + 1), p)
    halve = xnp.logical_and(xnp.logical_not(away),
                            xnp.logical_and(xnp.equal(xnp.absolute(m), 0.5), xnp.greater(e, emin + 1)))
    step = _pow2(xnp.where(halve, xnp.subtract(k, 1), k), ct, emin + 1 - p, emax + 1 - p)
    r = xnp.where(up, xnp.add(a, step), xnp.subtract(a, step))
    r = xnp.where(xnp.equal(r, 0), xnp.multiply(a, 0.0), r)  # -tiny toward zero: -0.0
    tiny = _c(2.0 ** (emin + 1 - p), ct)
    r = xnp.where(xnp.equal(a, 0), xnp.where(up, tiny, xnp.negative(tiny)), r)
    r = xnp.where(xnp.isinf(a), xnp.copysign(_c(float(_finfo(dt).max), ct), a), r)
    r = xnp.where(xnp.equal(a, b), b, r)
    r = xnp.where(xnp.logical_or(xnp.isnan(a), xnp.isnan(b)), xnp.add(a, b), r)
    return xnp.astype(r, dt, copy=False)


def spacing(x, /):
    """The distance from x to the next value of its float dtype away from zero (numpy.spacing):
    nextafter(x, +-inf) - x, negative for negative x, inf from the largest finite value, NaN for
    infinities and NaN.  Ints give float64, bools float16.  The zeros and the 16-bit floats
    follow each numpy loop: float32 / float64 step from -0.0 to +tiny, float16 always toward
    +inf (numpy's half loop: never negative, from -2^k the smaller spacing), bfloat16 (ml_dtypes)
    toward copysign(inf, x), so from -0.0 to -tiny."""
    (x,), (dt,) = _operands(_np.spacing, (x,))
    x = _as(x, dt)
    inf, ninf = _c(_np.inf, dt), _c(-_np.inf, dt)
    if dt == xnp.float16:
        to = inf
    elif dt == xnp._BF16:
        to = xnp.copysign(inf, x)
    else:
        to = xnp.where(xnp.less(x, 0), ninf, inf)
    nxt = nextafter(x, to)
    return xnp.where(xnp.isinf(x), _c(_np.nan, dt), xnp.subtract(nxt, x))


# ---------------------------------------------------------------- integer arithmetic


def divmod(x1, x2, /):  # noqa: A001  (numpy's name)
    """(floor_divide(x1, x2), remainder(x1, x2)) in numpy's dtype (numpy.divmod): the quotient
    rounded toward -inf, the remainder with x2's sign, float NaN / inf cases as numpy's.  An
    integer division by zero raises XCSZeroDivisionError, as xcs's floor_divide does (numpy
    returns 0 and warns); two bools give int32 (numpy: int8)."""
    (a, b), (dt, _) = _operands(_np.divmod, (x1, x2))
    a, b = _as(a, dt), _as(b, dt)
    return xnp.floor_divide(a, b), xnp.remainder(a, b)


def _euclid_steps(dt):
    """Enough Euclid steps (a, b) -> (b, a mod b) to reach b == 0 for any 0 <= a, b <= 2^(bits-1).

    Lamé: N steps from a > b >= 1 need a >= F(N+2) (Fibonacci, F(1) = F(2) =
    1).  a <= 2^63 < F(93) gives N <= 90 for int64, a <= 2^31 < F(47) N <= 44
    for int32; one more step when a < b (its remainder swaps them).  Both are
    reached: gcd(F(91), F(92)) takes 91 steps, gcd(F(45), F(46)) 45."""
    return 91 if dt.itemsize == 8 else 45


def gcd(x1, x2, /):
    """The greatest common divisor of |x1| and |x2| (numpy.gcd), integers only: gcd(0, 0) = 0, and
    |minimum| (2^63 for int64) wraps to the minimum, as numpy's unsigned Euclid gives it.

    A fixed number of Euclid steps, each a where, so a traced program does
    the same work for every value (see _euclid_steps for the bound)."""
    (a, b), (dt,) = _operands(_np.gcd, (x1, x2))
    return _gcd(xnp.absolute(_as(a, dt)), xnp.absolute(_as(b, dt)))


def _gcd(a, b):
    """gcd of |x1|, |x2| given as a, b (absolute values; the dtype's minimum stands for 2^(bits-1))."""
    # the minimum is the only negative value; as a divisor it would make mod's result negative,
    # so it goes first: (min, b) -> (b, min mod b) is exact, floor mod ranging over [0, b) for b > 0
    swap = xnp.less(b, 0)
    a, b = xnp.where(swap, b, a), xnp.where(swap, a, b)
    for _ in range(_euclid_steps(a.dtype)):
        nz = xnp.not_equal(b, 0)
        r = xnp.remainder(a, xnp.where(nz, b, _c(1, b.dtype)))
        a, b = xnp.where(nz, b, a), xnp.where(nz, r, _c(0, b.dtype))
    return a


def lcm(x1, x2, /):
    """The least common multiple of |x1| and |x2| (numpy.lcm), integers only: 0 when either is 0;
    (|x1| / gcd) * |x2| in wrapping arithmetic, as numpy's unsigned computation, so a
    result past the dtype's range wraps as numpy's does."""
    (a, b), (dt,) = _operands(_np.lcm, (x1, x2))
    a, b = xnp.absolute(_as(a, dt)), xnp.absolute(_as(b, dt))
    g = _gcd(a, b)
    zero = xnp.equal(g, 0)
    # numpy's (|x1| / g) * |x2| is unsigned; for |x1| = 2^(bits-1) (a, wrapped, the minimum) a // g is
    # -(2^(bits-1) / g), and q b == -q b modulo 2^bits (their difference 2^bits (b / g)): the same bits
    q = xnp.floor_divide(a, xnp.where(zero, _c(1, dt), g))
    return xnp.where(zero, _c(0, dt), xnp.multiply(q, b))


# ---------------------------------------------------------------- bits


def left_shift(x1, x2, /):
    """x1 * 2**x2 in x1's integer dtype, wrapping (numpy.left_shift): 0 for a shift count < 0 or
    >= the bit width (numpy's unsigned comparison of the count).  Integers and bools only."""
    (a, s), (dt,) = _operands(_np.left_shift, (x1, x2))
    a, s = _as(a, dt), _as(s, dt)
    ok = xnp.logical_and(xnp.greater_equal(s, 0), xnp.less(s, 8 * dt.itemsize))
    return xnp.where(ok, xnp.multiply(a, _ipow2(xnp.where(ok, s, _c(0, dt)), dt)), _c(0, dt))


def right_shift(x1, x2, /):
    """x1 >> x2, arithmetic (numpy.right_shift): floor(x1 / 2**x2); a count < 0 or >= the bit width
    gives -1 for negative x1, else 0.  Integers and bools only."""
    (a, s), (dt,) = _operands(_np.right_shift, (x1, x2))
    a, s = _as(a, dt), _as(s, dt)
    # bits - 1 is left out: 2^(bits-1) wraps negative; its result is the sign's, as past the width
    ok = xnp.logical_and(xnp.greater_equal(s, 0), xnp.less(s, 8 * dt.itemsize - 1))
    sign = xnp.where(xnp.less(a, 0), _c(-1, dt), _c(0, dt))
    return xnp.where(ok, xnp.floor_divide(a, _ipow2(xnp.where(ok, s, _c(0, dt)), dt)), sign)


bitwise_left_shift = left_shift  # numpy >= 2.0's array-API names
bitwise_right_shift = right_shift


def bitwise_count(x, /):
    """The number of 1 bits in |x| (numpy.bitwise_count, numpy >= 2.0), integers and bools only.
    numpy's result is uint8, a dtype xcs lacks: the counts come as int32.

    The SWAR popcount: bit pairs, nibbles, bytes summed in place, then all
    bytes by one multiply; shifts are floor divisions of values kept >= 0 (|x|
    of the dtype's minimum wraps negative: its count is 1)."""
    (x,), _ = _operands(_np.bitwise_count, (x,))
    x = xnp.asarray(x)
    if x.dtype == xnp.bool_:
        x = xnp.astype(x, xnp.int32)
    dt, bits = x.dtype, 8 * x.dtype.itemsize
    y = xnp.absolute(x)
    wrapped = xnp.less(y, 0)
    y = xnp.where(wrapped, _c(0, dt), y)

    def rep(byte):  # the byte repeated through the dtype's width
        return int.from_bytes(bytes([byte]) * (bits // 8), "little")

    y = xnp.subtract(y, xnp.bitwise_and(xnp.floor_divide(y, 2), rep(0x55)))
    y = xnp.add(xnp.bitwise_and(y, rep(0x33)), xnp.bitwise_and(xnp.floor_divide(y, 4), rep(0x33)))
    y = xnp.bitwise_and(xnp.add(y, xnp.floor_divide(y, 16)), rep(0x0F))
    # each byte now holds its count (<= 8), so the top byte of y * 0x0101.. is their sum (< 128)
    y = xnp.floor_divide(xnp.multiply(y, rep(0x01)), 1 << (bits - 8))
    return xnp.astype(xnp.where(wrapped, _c(1, dt), y), xnp.int32, copy=False)


# ---------------------------------------------------------------- special functions

# Cephes' Chebyshev coefficients for exp(-x) I0(x) on [0, 8] and exp(-x) sqrt(x) I0(x) on
# (8, inf), in 32/x: numpy's _i0A and _i0B, summed in numpy's order (_chbevl).
_I0A = (
    -4.4153416464793395e-18, 3.3307945188222384e-17, -2.431279846547955e-16, 1.715391285555133e-15,
    -1.1685332877993451e-14, 7.676185498604936e-14, -4.856446783111929e-13, 2.95505266312964e-12,
    -1.726826291441556e-11, 9.675809035373237e-11, -5.189795601635263e-10, 2.6598237246823866e-09,
    -1.300025009986248e-08, 6.046995022541919e-08, -2.670793853940612e-07, 1.1173875391201037e-06,
    -4.4167383584587505e-06, 1.6448448070728896e-05, -5.754195010082104e-05, 0.00018850288509584165,
    -0.0005763755745385824, 0.0016394756169413357, -0.004324309995050576, 0.010546460394594998,
    -0.02373741480589947, 0.04930528423967071, -0.09490109704804764, 0.17162090152220877, -0.3046826723431984,
    0.6767952744094761,
)
_I0B = (
    -7.233180487874754e-18, -4.830504485944182e-18, 4.46562142029676e-17, 3.461222867697461e-17,
    -2.8276239805165836e-16, -3.425485619677219e-16, 1.7725601330565263e-15, 3.8116806693526224e-15,
    -9.554846698828307e-15, -4.150569347287222e-14, 1.54008621752141e-14, 3.8527783827421426e-13,
    7.180124451383666e-13, -1.7941785315068062e-12, -1.3215811840447713e-11, -3.1499165279632416e-11,
    1.1889147107846439e-11, 4.94060238822497e-10, 3.3962320257083865e-09, 2.266668990498178e-08,
    2.0489185894690638e-07, 2.8913705208347567e-06, 6.889758346916825e-05, 0.0033691164782556943,
    0.8044904110141088,
)


def _chbevl(t, coefs):
    """Clenshaw's sum of the Chebyshev series coefs at t (Cephes' chbevl, numpy's _chbevl)."""
    b0, b1, b2 = coefs[0], 0.0, 0.0
    for c in coefs[1:]:
        b2, b1 = b1, b0
        b0 = xnp.add(xnp.subtract(xnp.multiply(t, b1), b2), c)
    return xnp.multiply(0.5, xnp.subtract(b0, b2))


def i0(x):
    """The modified Bessel function of the first kind, order 0 (numpy.i0), by numpy's Cephes
    Chebyshev series: exp(|x|) chbevl(|x|/2 - 2, A) for |x| <= 8, exp(|x|) chbevl(32/|x| - 2, B)
    / sqrt(|x|) beyond (inf and NaN give NaN, as numpy's).  Non-float inputs (ints, bools,
    bfloat16) are computed in float64, as numpy's; float16 in float32, rounded once (numpy
    rounds every step, so its float16 exp overflows past |x| ~ 11.1 and gives inf where I0 is
    still a float16: xcs gives that value).  Differentiable (d/dx = I1(x)): each branch sees
    only its own inputs, so the other's overflow does not turn the gradient into NaN."""
    x = xnp.asarray(x)
    dt = x.dtype if x.dtype.kind == "f" else _np.dtype(xnp.float64)
    ax = xnp.absolute(_as(x, _compute(dt)))
    near = xnp.less_equal(ax, 8.0)
    a = xnp.where(near, ax, 0.0)  # the other branch's input, a value where it is finite
    b = xnp.where(near, 16.0, ax)
    small = xnp.multiply(xnp.exp(a), _chbevl(xnp.subtract(xnp.divide(a, 2.0), 2.0), _I0A))
    large = xnp.divide(xnp.multiply(xnp.exp(b), _chbevl(xnp.subtract(xnp.divide(32.0, b), 2.0), _I0B)),
                       xnp.sqrt(b))
    return xnp.astype(xnp.where(near, small, large), dt, copy=False)

