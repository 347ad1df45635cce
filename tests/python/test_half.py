"""float16 and bfloat16: storage dtypes computed in float32.

Conversions are checked bit for bit against numpy (float16) and ml_dtypes or
an exact rounding reference (bfloat16), on every 16-bit pattern and on random
float32/float64 patterns.  Ops, reductions, matmul, fused jit chains, grad,
vmap, scan and random draws are checked against a float64 reference with the
16-bit tolerances of conftest.TOL; result dtypes follow numpy (float16) and
JAX (bfloat16, which numpy lacks)."""
import numpy as np
import pytest
import ml_dtypes
from ml_dtypes import bfloat16

from conftest import TOL, TOL_TRANSCENDENTAL, assert_close, erf_ref, random_array

# the references cast NaN/inf/out-of-range values on purpose
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

HALVES = [pytest.param(np.float16, id="float16"), pytest.param(bfloat16, id="bfloat16")]


def bits16(a):
    return np.ascontiguousarray(a).view(np.uint16)


def same_bits(got, want):
    """Bitwise equality, any NaN matching any NaN."""
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype, (g.dtype, w.dtype)
    nan = np.isnan(w.astype(np.float64))
    assert np.array_equal(np.isnan(g.astype(np.float64)), nan)
    bad = np.flatnonzero((bits16(g) != bits16(w)) & ~nan.ravel().reshape(nan.shape))
    assert bad.size == 0, f"{bad.size} mismatches, first inputs at {bad[:5]}"


def all_patterns(dtype):
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)


def random_f32(rng, n):
    """Random float32 bit patterns plus the edge cases of both 16-bit formats."""
    r = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edges = np.array([0.0, -0.0, 65504, 65519.99, 65520, 65536, 2.0**-14, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25,
                      2.0**-26, 3.4e38, np.finfo(np.float32).max, np.inf, -np.inf, np.nan, 1 + 2.0**-11,
                      1 + 3 * 2.0**-11, 1 + 2.0**-8, 1 + 3 * 2.0**-8, 2.0**-126, 2.0**-133, 2.0**-134, 2.0**-149],
                     np.float32)
    # ties of both formats: a 16-bit value plus half its ulp, both signs
    h = rng.integers(0, 1 << 15, 4096).astype(np.uint16)
    ties16 = (h.view(np.float16).astype(np.float32).view(np.uint32) + (1 << 12)).view(np.float32)
    tiesbf = ((h.astype(np.uint32) << 16) + (1 << 15)).view(np.float32)
    out = np.concatenate([r, edges, -edges, ties16, -ties16, tiesbf, -tiesbf])
    return out[np.isfinite(out) | np.isnan(out) | np.isinf(out)]


def exact_round_bf16(x):
    """float64 -> bfloat16 value (as float64), round to nearest even, exactly."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    with np.errstate(all="ignore"):
        m, e = np.frexp(x)                                # x = m 2^e, 0.5 <= |m| < 1
        normal = np.ldexp(np.rint(m * 256.0), e - 8)      # 8 significant bits
        sub = np.rint(x * 2.0**133) * 2.0**-133           # below 2^-126: a fixed quantum
        out = np.where(np.abs(x) < 2.0**-126, sub, normal)
        big = np.abs(out) > float(ml_dtypes.finfo(bfloat16).max)
        out = np.where(big, np.copysign(np.inf, x), out)
    return np.where(np.isnan(x), np.nan, out)


# ----------------------------------------------------------------- conversions

@pytest.mark.parametrize("dtype", HALVES)
def test_every_pattern_widens_exactly(xcs, dtype):
    h = all_patterns(dtype)
    x = xcs.asarray(h)
    assert x.dtype == np.dtype(dtype)
    for wide in (np.float32, np.float64):
        got = np.asarray(x.astype(wide))
        want = h.astype(wide)
        assert np.array_equal(got, want, equal_nan=True), wide
    # back again: the round trip is the identity (NaNs stay NaN)
    same_bits(x.astype(np.float32).astype(dtype), h)
    # and to the other half format, through float32 (one rounding)
    other = bfloat16 if dtype is np.float16 else np.float16
    same_bits(x.astype(other), h.astype(np.float32).astype(other))


def test_float32_to_float16_matches_numpy(xcs, rng):
    f = random_f32(rng, 1 << 20)
    same_bits(xcs.asarray(f).astype(np.float16), f.astype(np.float16))


def test_float64_to_float16_rounds_directly(xcs, rng):
    """numpy rounds float64 -> float16 in one step; through float32 a value
    just past a float16 tie would round to the tie and then to even."""
    d = rng.standard_normal(1 << 18) * np.exp2(rng.integers(-28, 18, 1 << 18))
    h = rng.integers(0, 0x7c00, 4096).astype(np.uint16).view(np.float16).astype(np.float64)
    ulp = np.spacing(h.astype(np.float16)).astype(np.float64)
    tricky = np.concatenate([h + ulp / 2 + h * 2.0**-40, h + ulp / 2, h + ulp / 2 - h * 2.0**-40])
    d = np.concatenate([d, tricky, -tricky, [65519.999, 65520.0, 2.0**-25, 2.0**-25 * (1 + 2.0**-30)]])
    same_bits(xcs.asarray(d).astype(np.float16), d.astype(np.float16))


def test_float32_to_bfloat16_matches_ml_dtypes(xcs, rng):
    f = random_f32(rng, 1 << 20)
    same_bits(xcs.asarray(f).astype(bfloat16), f.astype(bfloat16))


def test_float64_to_bfloat16_rounds_directly(xcs, rng):
    d = rng.standard_normal(1 << 18) * np.exp2(rng.integers(-140, 128, 1 << 18))
    h = rng.integers(0, 0x7f80, 4096).astype(np.uint16).view(bfloat16).astype(np.float64)
    ulp = np.exp2(np.floor(np.log2(np.maximum(h, 2.0**-126))) - 7)
    tricky = np.concatenate([h + ulp / 2 + h * 2.0**-40, h + ulp / 2, h + ulp / 2 - h * 2.0**-40])
    d = np.concatenate([d, tricky, -tricky, [np.inf, -np.inf, np.nan, 3.4e38, 3.3961e38, 2.0**-134]])
    got = np.asarray(xcs.asarray(d).astype(bfloat16)).astype(np.float64)
    want = exact_round_bf16(d)
    assert np.array_equal(got, want, equal_nan=True), np.flatnonzero(got != want)[:5]


@pytest.mark.parametrize("dtype", HALVES)
def test_int_and_bool_conversions(xcs, rng, dtype):
    for src in (np.int32, np.int64):
        i = np.concatenate([rng.integers(-70000, 70000, 5000), [0, 2049, 2051, 65504, 65520, -65536, 2**31 - 1]])
        i = i.astype(src)
        same_bits(xcs.asarray(i).astype(dtype), i.astype(np.float64).astype(dtype))
    h = np.array([0.0, -0.0, 1.5, -2.75, np.nan, np.inf, -7.9, 3e4], np.float32).astype(dtype)
    x = xcs.asarray(h)
    np.testing.assert_array_equal(np.asarray(x.astype(np.bool_)), h.astype(np.float32) != 0)
    np.testing.assert_array_equal(np.asarray(x[[0, 1, 2, 3, 6, 7]].astype(np.int32)),
                                  h[[0, 1, 2, 3, 6, 7]].astype(np.float32).astype(np.int32))
    same_bits(xcs.asarray(np.array([True, False])).astype(dtype), np.array([1.0, 0.0], dtype))


# ----------------------------------------------------------------- promotion

def test_promotion(xcs):
    h = xcs.asarray(np.ones(3, np.float16))
    b = xcs.asarray(np.ones(3, bfloat16))
    f = xcs.asarray(np.ones(3, np.float32))
    i = xcs.asarray(np.ones(3, np.int32))
    assert (h + 2.5).dtype == np.float16 and (h * 2).dtype == np.float16   # weak Python scalars
    assert (b + 2.5).dtype == bfloat16 and (b - 1).dtype == bfloat16       # JAX's rule
    assert (h + f).dtype == np.float32 and (b + f).dtype == np.float32
    assert (h + b).dtype == np.float32                                     # JAX: the smallest float holding both
    assert (i + h).dtype == np.float64 and (i + b).dtype == np.float64     # numpy's int + float16
    assert (h + np.float64(1)).dtype == np.float64                         # numpy scalars are strong
    assert xcs.numpy.sin(xcs.asarray(np.array([True, False]))).dtype == np.float16  # numpy: bool -> float16
    assert (h > 0.5).dtype == np.bool_


@pytest.mark.parametrize("dtype", HALVES)
def test_weak_scalar_rounds_to_the_half_dtype(xnp, xcs, rng, dtype):
    """NEP 50 (and JAX): a Python scalar takes the array's dtype before the
    op, so float16 + 1.1 adds float16(1.1), rounded directly from the double;
    the op then computes in float32 and rounds once, as numpy does.  Eager,
    jitted, scalar on either side, ints too, and where's scalar branch."""
    x = rng.uniform(-3, 3, 4001).astype(dtype)
    x[:3] = [1, 2, 3]
    x32 = x.astype(np.float32)
    for s in (-1.1, 0.1, 2.0 / 3.0, 1e-3, 1 + 2.0**-11 + 2.0**-30, 2049, 65519, -3):
        r = np.float32(np.array(s).astype(dtype))  # the scalar in the 16-bit dtype
        cases = {
            "x + s": (lambda a: a + s, (x32 + r).astype(dtype)),
            "s - x": (lambda a: s - a, (r - x32).astype(dtype)),
            "x * s": (lambda a: a * s, (x32 * r).astype(dtype)),
            "max(x, s)": (lambda a: xnp.maximum(a, s), np.maximum(x32, r).astype(dtype)),
            "where": (lambda a: xnp.where(a > 0, a, s), np.where(x32 > 0, x32, r).astype(dtype)),
        }
        for name, (f, want) in cases.items():
            for how, g in (("eager", f), ("jit", xcs.jit(f))):
                got = g(xcs.asarray(x))
                assert got.dtype == np.dtype(dtype), (name, how)
                same_bits(got, want)
    if dtype is np.float16:  # numpy itself, where it has the dtype
        np.testing.assert_array_equal(np.asarray(xcs.asarray(x) + (-1.1)).view(np.uint16),
                                      (x + (-1.1)).view(np.uint16))


# ----------------------------------------------------------------- elementwise

UNARY = ["negative", "abs", "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tanh", "floor", "ceil", "sign",
         "square", "reciprocal"]
BINARY = ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "floor_divide", "mod"]


def _kind(name):
    return "positive" if name in ("log", "log1p", "sqrt", "reciprocal", "power") else "small"


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", UNARY)
def test_unary(xnp, xcs, rng, dtype, name):
    a = random_array(rng, (257,), dtype, _kind(name))
    got = getattr(xnp, name)(xcs.asarray(a))
    want = getattr(np, name)(a.astype(np.float64))
    # one float32 computation rounded once: within the 16-bit tolerance of the exact value
    tol = TOL_TRANSCENDENTAL if name in ("tanh", "expm1", "log1p") else TOL
    if name in ("floor", "ceil", "sign"):
        tol = {np.dtype(dtype): (0, 0)}
    assert_close(got, want, dtype, tol=tol)


@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("name", BINARY)
def test_binary(xnp, xcs, rng, dtype, name):
    a = random_array(rng, (3, 85), dtype, _kind(name))
    b = random_array(rng, (85,), dtype, "positive")  # broadcast; positive keeps divisions away from 0
    if name == "power":
        b = (np.asarray(b, np.float32) / 4).astype(dtype)
    got = getattr(xnp, name)(xcs.asarray(a), xcs.asarray(b))
    want = getattr(np, name)(a.astype(np.float64), b.astype(np.float64))
    if name in ("floor_divide", "mod"):
        # discontinuous: the float32 computation on the 16-bit values, then rounded
        want = getattr(np, name)(a.astype(np.float32), b.astype(np.float32)).astype(dtype)
        assert_close(got, want.astype(np.float64), dtype, rtol=0, atol=0)
        return
    assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", HALVES)
def test_comparisons_where_and_mixed(xnp, xcs, rng, dtype):
    a = random_array(rng, (40,), dtype)
    b = random_array(rng, (40,), dtype)
    x, y = xcs.asarray(a), xcs.asarray(b)
    np.testing.assert_array_equal(np.asarray(x < y), a.astype(np.float32) < b.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(x == x), np.ones(40, bool))
    w = xnp.where(x > 0, x, y)
    assert w.dtype == np.dtype(dtype)
    same_bits(w, np.where(a.astype(np.float32) > 0, a, b).astype(dtype))
    m = x * xcs.asarray(b.astype(np.float32))  # half * float32 -> float32, exact product of the values
    assert_close(m, a.astype(np.float64) * b.astype(np.float64), np.float32)


def test_integer_only_ops_reject_halves(xnp, xcs):
    x = xcs.asarray(np.ones(3, np.float16))
    with pytest.raises(xcs.XCSTypeError, match="float16"):
        xnp.bitwise_and(x, x)


# ----------------------------------------------------------------- reductions

@pytest.mark.parametrize("dtype", HALVES)
def test_reductions(xnp, xcs, rng, dtype):
    a = random_array(rng, (6, 50, 7), dtype)
    x = xcs.asarray(a)
    a64 = a.astype(np.float64)
    for axis in (None, 0, 1, (0, 2)):
        for name in ("sum", "mean", "max", "min"):
            got = getattr(xnp, name)(x, axis=axis)
            want = getattr(np, name)(a64, axis=axis)
            # float32 accumulation, one rounding: scale the tolerance by the magnitudes summed
            scale = np.abs(a64).sum(axis=axis) if name == "sum" else np.abs(a64).max()
            r, t = TOL[np.dtype(dtype)]
            assert_close(got, want, dtype, rtol=r, atol=t * 10 + 1e-6 * np.max(scale))
        np.testing.assert_array_equal(np.asarray(xnp.argmax(x, axis=1)), np.argmax(a.astype(np.float32), axis=1))
    v = xnp.var(x, axis=1)
    assert_close(v, np.var(a64, axis=1), dtype, rtol=3e-2 if dtype is bfloat16 else 4e-3, atol=1e-3)


def test_mean_accumulates_past_float16_range(xnp, xcs):
    """A sum of 200 000 ones overflows float16 (max 65504); the mean does not
    (numpy accumulates float16 means in float32 too)."""
    x = xcs.asarray(np.ones(200_000, np.float16))
    assert float(xnp.mean(x)) == 1.0
    assert np.isinf(float(xnp.sum(x)))  # the sum itself is rounded to float16: inf, as numpy's
    assert float(xnp.std(x)) == 0.0


# ----------------------------------------------------------------- matmul

@pytest.mark.parametrize("dtype", HALVES)
@pytest.mark.parametrize("shapes", [((7, 33), (33, 5)), ((2, 4, 64), (64, 3)), ((3, 130), (130,)),
                                    ((2, 1, 9, 16), (3, 16, 4))])
def test_matmul(xcs, rng, dtype, shapes):
    a = random_array(rng, shapes[0], dtype)
    b = random_array(rng, shapes[1], dtype)
    got = xcs.asarray(a) @ xcs.asarray(b)
    want = a.astype(np.float64) @ b.astype(np.float64)
    # float32 accumulation then one rounding: 2 ulp of the result plus the
    # float32 error of the K-term sum of |a||b|
    mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    r, _ = TOL[np.dtype(dtype)]
    assert got.dtype == np.dtype(dtype)
    assert np.all(np.abs(np.asarray(got).astype(np.float64) - want) <= r * np.abs(want) + 1e-5 * mag + 1e-6)


# ----------------------------------------------------------------- transforms

@pytest.mark.parametrize("dtype", HALVES)
def test_jit_fused_chain_rounds_once(xcs, rng, dtype):
    """An elementwise chain in one fused group keeps float32 between ops and
    rounds once at the store: within a rounding of the exact value."""
    a = random_array(rng, (64, 48), dtype, "small")
    b = random_array(rng, (48,), dtype, "small")

    @xcs.jit
    def f(x, y):
        return np.tanh(x * y + 1.0) * 0.5 + np.exp(-x * x)

    got = f(xcs.asarray(a), xcs.asarray(b))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.tanh(a64 * b64 + 1.0) * 0.5 + np.exp(-a64 * a64)
    assert got.dtype == np.dtype(dtype)
    eps = 2.0**-10 if dtype is np.float16 else 2.0**-7
    err = np.abs(np.asarray(got).astype(np.float64) - want)
    assert np.all(err <= 0.5 * eps * np.abs(want) * 1.01 + 1e-5), err.max()
    # the same function eagerly: every op rounds, so it is within a few roundings
    eager = f.__wrapped__(xcs.asarray(a), xcs.asarray(b))
    assert eager.dtype == np.dtype(dtype)
    assert_close(eager, want, dtype, rtol=4 * eps, atol=4 * eps)


@pytest.mark.parametrize("dtype", HALVES)
def test_grad_vmap_scan(xcs, rng, dtype):
    w = random_array(rng, (16, 8), dtype, "unit")
    xs = random_array(rng, (5, 16), dtype, "unit")

    def loss(w, x):
        return (np.tanh(x @ w) ** 2).mean()

    g = xcs.grad(loss)(xcs.asarray(w), xcs.asarray(xs))
    g32 = xcs.grad(loss)(xcs.asarray(w.astype(np.float32)), xcs.asarray(xs.astype(np.float32)))
    assert g.dtype == np.dtype(dtype)
    tol = 2e-2 if dtype is np.float16 else 1e-1
    np.testing.assert_allclose(np.asarray(g).astype(np.float64), np.asarray(g32), rtol=tol,
                               atol=tol * np.abs(np.asarray(g32)).max())

    per = xcs.vmap(xcs.grad(lambda w, x: (np.tanh(x @ w) ** 2).sum()), in_axes=(None, 0))(xcs.asarray(w),
                                                                                           xcs.asarray(xs))
    assert per.dtype == np.dtype(dtype) and per.shape == (5, 16, 8)

    def step(c, x):
        c = c * 0.5 + x
        return c, c.sum()

    carry, ys = xcs.scan(step, xcs.asarray(np.zeros(16, dtype)), xcs.asarray(xs))
    c = np.zeros(16)
    want = []
    for x in xs.astype(np.float64):
        c = c * 0.5 + x
        want.append(c.sum())
    assert carry.dtype == np.dtype(dtype)
    assert_close(carry, c, dtype, rtol=4e-2 if dtype is bfloat16 else 4e-3, atol=2e-2)
    assert_close(ys, np.array(want), dtype, rtol=4e-2 if dtype is bfloat16 else 4e-3, atol=1e-1)


# ----------------------------------------------------------------- creation and random

@pytest.mark.parametrize("dtype", HALVES)
def test_creation(xnp, xcs, dtype):
    same_bits(xnp.zeros((3, 2), dtype=dtype), np.zeros((3, 2), dtype))
    same_bits(xnp.full((4,), 0.1, dtype=dtype), np.full((4,), 0.1, dtype))
    same_bits(xnp.arange(0, 5, 0.7, dtype=dtype), np.arange(0, 5, 0.7, dtype=dtype))
    same_bits(xnp.eye(3, dtype=dtype), np.eye(3, dtype=dtype))
    assert_close(xnp.linspace(-1, 1, 9, dtype=dtype), np.linspace(-1, 1, 9), dtype)


@pytest.mark.parametrize("dtype", HALVES)
def test_random(xcs, dtype):
    k = xcs.random.key(7)
    u = np.asarray(xcs.random.uniform(k, (200_000,), dtype=dtype)).astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0  # rounding up to 1.0 is clamped away
    assert abs(u.mean() - 0.5) < 0.01
    lo, hi = 0.1, 0.2  # neither is a 16-bit value
    v = np.asarray(xcs.random.uniform(k, (50_000,), dtype=dtype, minval=lo, maxval=hi)).astype(np.float64)
    assert v.min() >= lo and v.max() < hi
    n = np.asarray(xcs.random.normal(k, (200_000,), dtype=dtype)).astype(np.float64)
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    # the 16-bit stream is the float32 one, rounded
    n32 = np.asarray(xcs.random.normal(k, (200_000,), dtype=np.float32))
    same_bits(xcs.random.normal(k, (200_000,), dtype=dtype), n32.astype(dtype))


# ----------------------------------------------------------------- interop

def test_buffer_and_numpy_zero_copy(xcs, rng):
    h = random_array(rng, (5, 6), np.float16)
    x = xcs.asarray(h)
    assert np.shares_memory(np.asarray(x), h)
    assert memoryview(x).format == "e"
    b = random_array(rng, (5, 6), bfloat16)
    y = xcs.asarray(b)
    assert y.dtype == bfloat16
    assert np.shares_memory(np.asarray(y), b)  # in: a uint16 view of the same memory
    with pytest.raises(BufferError, match="bfloat16"):
        memoryview(y)  # PEP 3118 has no bfloat16 code (numpy's own bfloat16 arrays refuse too)
    n = np.asarray(y[::-2, 1::2])  # out: an ndarray of bfloat16 over the Array's memory
    assert n.dtype == bfloat16
    same_bits(n, b[::-2, 1::2])
    assert np.shares_memory(n, b)
    same_bits(np.asarray(y.T + 0.0), b.T)
    assert y[1, 2].item() == float(b[1, 2])
    assert y.tolist() == b.tolist()


def test_dlpack(xcs, rng):
    h = random_array(rng, (3, 4), np.float16)
    x = xcs.from_dlpack(h)
    assert x.dtype == np.float16 and np.shares_memory(np.asarray(x), h)
    n = np.from_dlpack(xcs.asarray(h) * 2)
    assert n.dtype == np.float16
    same_bits(n, h * np.float16(2))
    b = xcs.asarray(random_array(rng, (4,), bfloat16))
    torch = pytest.importorskip("torch", reason="a bfloat16 DLPack consumer")
    t = torch.from_dlpack(b)
    assert t.dtype == torch.bfloat16
    np.testing.assert_array_equal(t.float().numpy(), np.asarray(b).astype(np.float32))


@pytest.mark.parametrize("dtype", HALVES)
def test_nn_in_half(xcs, rng, dtype):
    """gelu, softmax, log_softmax and logsumexp of 16-bit inputs: computed in
    float32 (the composites widen first), rounded once."""
    a = random_array(rng, (6, 40), dtype, "small")
    x, a64 = xcs.asarray(a), a.astype(np.float64)
    assert_close(xcs.nn.gelu(x), a64 * 0.5 * (1 + erf_ref(a64 / np.sqrt(2))), dtype, tol=TOL_TRANSCENDENTAL)
    e = np.exp(a64 - a64.max(axis=1, keepdims=True))
    assert_close(xcs.nn.softmax(x, axis=1), e / e.sum(axis=1, keepdims=True), dtype)
    lse = np.log(np.exp(a64).sum(axis=1))
    assert_close(xcs.nn.logsumexp(x, axis=1), lse, dtype)
    assert_close(xcs.nn.log_softmax(x, axis=1), a64 - lse[:, None], dtype, tol=TOL_TRANSCENDENTAL)


def test_bfloat16_numpy_view_lifetime(xcs, rng):
    """The ndarray np.asarray makes of a bfloat16 Array keeps the Array's
    memory alive after the Array goes, and converting leaks no reference."""
    import gc
    import sys
    b = random_array(rng, (32, 16), bfloat16)
    y = xcs.asarray(b) * 2
    r0 = sys.getrefcount(y)
    for _ in range(200):
        n = np.asarray(y[::2])
        del n
    gc.collect()
    assert sys.getrefcount(y) == r0
    n = np.asarray(y)
    del y
    gc.collect()
    same_bits(n, (b.astype(np.float32) * 2).astype(bfloat16))


_CHAIN_OPS = ["tanh", "sin", "negative", "abs", "square", "exp_neg", "add_s", "mul_s", "max_y", "mul_y"]


def _chain(m, steps, x, y):
    for op, s in steps:
        if op == "exp_neg":
            x = m.exp(-(x * x))
        elif op == "add_s":
            x = x + s
        elif op == "mul_s":
            x = x * s
        elif op == "max_y":
            x = m.maximum(x, y)
        elif op == "mul_y":
            x = x * y
        else:
            x = getattr(m, op)(x)
    return x


@pytest.mark.parametrize("dtype", HALVES)
def test_fused_chain_is_the_float32_chain_rounded_once(xcs, dtype):
    """The claim behind 16-bit fusion, exactly: a jitted elementwise chain on
    16-bit inputs (one fused group) gives, bit for bit, the same chain jitted
    on the inputs widened to float32, rounded once to 16 bits.  A Python
    scalar in the chain is an input too: NEP 50 gives it the array's dtype,
    so it is drawn representable in the 16-bit dtype (one that is not gets
    rounded first, test_weak_scalar_rounds_to_the_half_dtype)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    step = st.tuples(st.sampled_from(_CHAIN_OPS), st.floats(-2, 2, allow_nan=False, width=16))

    @settings(deadline=None, max_examples=60)
    @given(steps=st.lists(step, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1),
           shape=st.sampled_from([(7,), (3, 5), (2, 3, 4), (1000,)]))
    def check(steps, seed, shape):
        steps = [(op, float(np.array(s).astype(dtype))) for op, s in steps]
        r = np.random.default_rng(seed)
        x = r.uniform(-3, 3, shape).astype(dtype)
        y = r.uniform(-3, 3, shape[-1:]).astype(dtype)  # a row broadcast over x
        f = xcs.jit(lambda a, b: _chain(np, steps, a, b))
        got = f(xcs.asarray(x), xcs.asarray(y))
        wide = f(xcs.asarray(x.astype(np.float32)), xcs.asarray(y.astype(np.float32)))
        same_bits(got, np.asarray(wide).astype(dtype))

    check()
