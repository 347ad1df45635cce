"""numpy's integer, bit and float-decomposition ufuncs composed of xcs ops
(ember/xcs/_np_ufuncs.py: ldexp, frexp, nextafter, spacing, divmod, gcd, lcm,
left_shift, right_shift, bitwise_count) and numpy.i0: numpy's values bit for
bit, dtypes and signs of zero, eagerly through numpy's own functions
(np.ldexp(Array) dispatches) and under jit, on random bit patterns (every
exponent, subnormals, infinities, NaNs) and on the edges (-0.0, the largest
and smallest values, shift counts past the width, the integer minimum,
gcd(0, 0), Euclid's Fibonacci worst case); NEP 50 weak scalars and numpy's
errors; gradients (ldexp, frexp's mantissa, i0) and vmap."""
import warnings

import ml_dtypes
import numpy as np
import pytest

import ember.xcs as xcs
import ember.xcs.numpy as xnp
from ember.xcs import grad, jit, vmap

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [np.dtype(t) for t in (np.float16, np.float32, np.float64)] + [BF16]
INTS = [np.dtype(np.int32), np.dtype(np.int64)]
# numpy result dtypes xcs lacks, and the one it gives for them (what numpy's own result becomes as an Array)
STORED_AS = {np.dtype(np.int8): np.dtype(np.int32), np.dtype(np.uint8): np.dtype(np.int32)}


def _finfo(dt):
    return ml_dtypes.finfo(dt) if dt == BF16 else np.finfo(dt)


def _bits(dt):
    """The unsigned integer dtype of dt's width (for random bit patterns)."""
    return np.dtype(f"u{dt.itemsize}")


def _specials(dt):
    """dt's edge values: zeros, ones, powers of two, the subnormal and normal extremes, inf, NaN."""
    f = _finfo(dt)
    tiny, small, big = float(f.smallest_subnormal), float(f.smallest_normal), float(f.max)
    v = [0.0, 1.0, 0.5, 0.75, 3.0, 2.0 ** -3, tiny, 2 * tiny, small - tiny, small, 1.5 * small, big, np.inf, np.nan]
    return np.array(v + [-a for a in v], dt)


def _floats(rng, dt, n=3000):
    """n random bit patterns of float dtype dt (so every binade, subnormals, NaNs and infinities), then the edges."""
    x = rng.integers(0, np.iinfo(_bits(dt)).max, n, dtype=_bits(dt), endpoint=True).view(dt)
    return np.concatenate([x, _specials(dt)])


def _ints(rng, dt, n=1000):
    """Random integers of dt: small ones, full-range ones, then the edges."""
    i = np.iinfo(dt)
    edges = np.array([0, 1, -1, 2, -2, i.min, i.max, i.min + 1, 7, -7], dt)
    small, full = rng.integers(-40, 41, n, dtype=dt), rng.integers(i.min, i.max, n, dtype=dt, endpoint=True)
    return np.concatenate([small, full, edges])


def _check(got, want, err=""):
    """got (an Array, or a tuple of them) is numpy's want: dtype (those xcs lacks as STORED_AS), shape,
    every value (NaN where NaN) and every zero's sign."""
    pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
    assert isinstance(got, tuple) == isinstance(want, tuple), err
    for g, w in pairs:
        assert isinstance(g, xcs.Array), f"{type(g)} {err}"
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == STORED_AS.get(w.dtype, w.dtype), f"{g.dtype} != {w.dtype} {err}"
        assert g.shape == w.shape, err
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w.astype(g.dtype), err_msg=err)
            continue
        with np.errstate(invalid="ignore"):  # signalling NaNs quieted
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
        bad = ~((g64 == w64) & (np.signbit(g64) == np.signbit(w64)) | np.isnan(g64) & np.isnan(w64))
        assert not bad.any(), f"{err}: {bad.sum()} differ, at {np.flatnonzero(bad)[:5]}: got {g[bad][:5]}, " \
                              f"numpy {w[bad][:5]}"


def _run(f, args, mode):
    """f on Arrays made from args (eager: numpy's own f dispatches to xcs) or traced by jit."""
    if mode == "eager":
        return f(*[xcs.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
    return jit(f)(*args)


def _numpy(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args)


MODES = ["eager", "jit"]


# ---------------------------------------------------------------- float decomposition


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dt", FLOATS, ids=str)
def test_float_decomposition_matches_numpy(dt, mode, rng):
    x = _floats(rng, dt)
    y = rng.permutation(x)
    y[:40] = x[:40]  # nextafter(x, x) is x
    inf = np.full(x.shape, np.inf, dt)
    n32 = rng.integers(-2 * _finfo(dt).maxexp - 60, 2 * _finfo(dt).maxexp + 60, x.size).astype(np.int32)
    n64 = rng.integers(-(2 ** 40), 2 ** 40, x.size)  # past int32: numpy clamps
    n64[:100] = rng.integers(-70, 70, 100)
    cases = [("frexp", np.frexp, (x,)), ("spacing", np.spacing, (x,)), ("nextafter", np.nextafter, (x, y)),
             ("nextafter+inf", np.nextafter, (x, inf)), ("nextafter-inf", np.nextafter, (x, -inf)),
             ("ldexp", np.ldexp, (x, n32)), ("ldexp int64", np.ldexp, (x, n64)),
             ("ldexp scalar", lambda a: np.ldexp(a, -3), (x,))]
    for name, f, args in cases:
        _check(_run(f, args, mode), _numpy(f, *args), f"{name} {dt} {mode}")


@pytest.mark.parametrize("mode", MODES)
def test_float_decomposition_edges(mode):
    """The cases numpy documents, spelt out: subnormal exponents, the largest value's spacing, -0.0."""
    tiny = 5e-324
    x = np.array([0.0, -0.0, tiny, -tiny, 2.0 ** -1022, 1.7976931348623157e308, np.inf, -np.inf, np.nan, 1.0, -1.0])
    m, e = (np.asarray(v) for v in _run(np.frexp, (x,), mode))
    assert e.dtype == np.int32 and e[2] == -1073 and e[4] == -1021 and e[5] == 1024 and m[2] == 0.5
    assert np.signbit(m[1]) and m[6] == np.inf and np.isnan(m[8]) and (e[[0, 1, 6, 7, 8]] == 0).all()
    s = np.asarray(_run(np.spacing, (x,), mode))
    assert s[0] == tiny and s[1] == tiny and s[5] == np.inf and np.isnan(s[6:9]).all() and s[10] == -2.0 ** -52
    after = np.asarray(_run(np.nextafter, (x, np.array([-0.0, 0.0, 0.0, 1.0, -1, np.inf, 0, 0, 1, 2, -2])), mode))
    assert np.signbit(after[0]) and not np.signbit(after[1]) and after[2] == 0 and np.signbit(after[3])
    assert after[5] == np.inf and after[6] == 1.7976931348623157e308 and after[10] == -1 - 2.0 ** -52
    assert after[9] == 1 + 2.0 ** -52 and after[4] == 2.0 ** -1022 - tiny
    # rounded once: 1.5 tiny to even (2 tiny), 0.75 tiny up, 0.5 tiny to even (0)
    scaled = np.asarray(_run(np.ldexp, (np.array([1.0, 1.5, 1.5, -3.0, 1.0, tiny, 0.75]),
                                        np.array([-1074, -1074, -1075, 1024, -1075, 2000, 1024])), mode))
    np.testing.assert_array_equal(scaled, [tiny, 2 * tiny, tiny, -np.inf, 0.0, 2.0 ** 926, 2.0 ** 1023 * 1.5])


# ---------------------------------------------------------------- integers


def _int_cases(rng, dt):
    a, b = _ints(rng, dt), rng.permutation(_ints(rng, dt))
    bits = 8 * dt.itemsize
    s = rng.integers(-3, bits + 4, a.size).astype(dt)
    s[:bits + 1] = np.arange(bits + 1)  # every count, the width itself
    nz = np.where(b == 0, 3, b)
    return [("gcd", np.gcd, (a, b)), ("lcm", np.lcm, (a, b)), ("gcd small", np.gcd, (a % 60, b % 45)),
            ("lcm small", np.lcm, (a % 60, b % 45)), ("gcd 0", np.gcd, (a, np.zeros_like(a))),
            ("left_shift", np.left_shift, (a, s)), ("right_shift", np.right_shift, (a, s)),
            ("left_shift 1", np.left_shift, (np.ones_like(a), s)), ("bitwise_count", np.bitwise_count, (a,)),
            ("divmod", np.divmod, (a, nz)), ("divmod small", np.divmod, (a, nz % 9 + 1))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dt", INTS, ids=str)
def test_integer_ufuncs_match_numpy(dt, mode, rng):
    for name, f, args in _int_cases(rng, dt):
        _check(_run(f, args, mode), _numpy(f, *args), f"{name} {dt} {mode}")


@pytest.mark.parametrize("dt", INTS, ids=str)
def test_gcd_euclid_worst_case(dt):
    """Consecutive Fibonacci numbers take the most Euclid steps: F(91), F(92) (int64: 91 steps),
    F(45), F(46) (int32: 45): the fixed step count must reach them."""
    fib = [0, 1]
    while len(fib) < 94:
        fib.append(fib[-1] + fib[-2])
    k = 92 if dt == np.int64 else 46
    a = np.array([fib[k - 1], fib[k], -fib[k - 1], fib[k - 2], np.iinfo(dt).min], dt)
    b = np.array([fib[k], fib[k - 1], fib[k], -fib[k - 1], fib[k]], dt)
    for f in (np.gcd, np.lcm):
        for mode in MODES:
            _check(_run(f, (a, b), mode), _numpy(f, a, b), f"{f.__name__} {mode}")
    assert (np.asarray(np.gcd(xcs.asarray(a), xcs.asarray(b))) == 1).all()


def test_integer_edges():
    mn = np.iinfo(np.int64).min
    i = np.array([0, 0, mn, mn, mn, 12, -12, 7, 6, -7, 0, 2 ** 62])
    j = np.array([0, 5, 0, mn, 6, -18, 0, 1, mn, mn, mn, 3])
    np.testing.assert_array_equal(np.asarray(np.gcd(xcs.asarray(i), xcs.asarray(j))),
                                  [0, 5, mn, mn, 2, 6, 12, 1, 2, 1, mn, 1])
    np.testing.assert_array_equal(np.asarray(np.lcm(xcs.asarray(i), xcs.asarray(j))),  # wrapping as numpy's
                                  [0, 0, 0, mn, mn, 36, 0, 7, mn, mn, 0, -(2 ** 62)])
    x, s = xcs.asarray(np.array([-5, -5, 5, -1, 1, -8])), xcs.asarray(np.array([1, 64, 64, 63, 63, -1]))
    np.testing.assert_array_equal(np.asarray(np.right_shift(x, s)), [-3, -1, 0, -1, 0, -1])
    np.testing.assert_array_equal(np.asarray(np.left_shift(x, s)), [-10, 0, 0, mn, mn, 0])
    np.testing.assert_array_equal(np.asarray(np.bitwise_count(xcs.asarray(np.array([mn, -1, 255, 0])))), [1, 1, 8, 0])
    q, r = np.divmod(xcs.asarray(np.array([7, -7, 7, -7])), xcs.asarray(np.array([2, 2, -2, -2])))
    np.testing.assert_array_equal(np.asarray(q), [3, -4, -4, 3])
    np.testing.assert_array_equal(np.asarray(r), [1, 1, -1, -1])


@pytest.mark.parametrize("mode", MODES)
def test_divmod_of_floats(mode, rng):
    x = np.concatenate([rng.standard_normal(300) * 10, _specials(np.dtype(np.float64))])
    y = np.concatenate([rng.standard_normal(300), rng.permutation(_specials(np.dtype(np.float64)))])
    with np.errstate(over="ignore"):
        x32, y32 = x.astype(np.float32), y.astype(np.float32)
    for a, b in ((x, y), (x32, y32), (x, np.zeros_like(x)), (x, np.inf)):
        _check(_run(np.divmod, (a, b), mode), _numpy(np.divmod, a, b), f"{a.dtype} {mode}")


# ---------------------------------------------------------------- i0


@pytest.mark.parametrize("mode", MODES)
def test_i0(mode, rng):
    x = np.concatenate([rng.uniform(-30, 30, 400), rng.uniform(-8.5, 8.5, 100), [0.0, -0.0, 8.0, -8.0, 700.0, 720.0,
                                                                                  np.inf, -np.inf, np.nan]])
    want = _numpy(np.i0, x)
    got = np.asarray(_run(np.i0, (x,), mode))
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)  # numpy's series and order; exp may differ by an ulp
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(np.isinf(got), np.isinf(want))
    x32 = rng.uniform(-30, 30, 300).astype(np.float32)
    got = _run(np.i0, (x32,), mode)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), np.i0(x32.astype(np.float64)), rtol=1e-6)
    i = rng.integers(-20, 20, 50)  # ints and bools: in float64, as numpy
    for a in (i, i.astype(np.int32), i > 0):
        got = _run(np.i0, (a,), mode)
        assert got.dtype == np.float64
        np.testing.assert_allclose(np.asarray(got), np.i0(a), rtol=1e-15)
    h = rng.uniform(-11, 11, 50).astype(np.float16)  # float16: in float32, rounded once (numpy rounds each step)
    got = _run(np.i0, (h,), mode)
    assert got.dtype == np.float16
    np.testing.assert_allclose(np.asarray(got).astype(float), np.i0(h.astype(float)), rtol=1e-3)


# ---------------------------------------------------------------- dtypes, weak scalars, errors

I32 = np.array([3, -8, 12, 0], np.int32)
F32 = np.array([1.5, -0.0, 3e-39, 7.0], np.float32)
B = np.array([True, False, True, True])
DTYPE_CASES = [
    ("ldexp f32 int", lambda a: np.ldexp(a, 3), F32), ("ldexp bool", lambda a: np.ldexp(a, 2), B),
    ("ldexp int32", lambda a: np.ldexp(a, np.int64(-2)), I32), ("ldexp bool exp", lambda a: np.ldexp(a, B), F32),
    ("frexp int", np.frexp, I32), ("frexp bool", np.frexp, B), ("spacing bool", np.spacing, B),
    ("spacing int", np.spacing, I32), ("nextafter weak", lambda a: np.nextafter(a, 1.0), F32),
    ("nextafter int", lambda a: np.nextafter(a, 0.5), I32), ("gcd weak", lambda a: np.gcd(a, 6), I32),
    ("gcd mixed", lambda a: np.gcd(a, np.array([4, 6, 9, 0], np.int64)), I32),
    ("gcd bool int", lambda a: np.gcd(a, 4), B), ("lcm weak", lambda a: np.lcm(a, 4), I32),
    ("left_shift bools", lambda a: np.left_shift(a, a), B), ("right_shift bool", lambda a: np.right_shift(a, 1), B),
    ("left_shift weak", lambda a: np.left_shift(a, 35), I32), ("right_shift -1", lambda a: np.right_shift(a, -1), I32),
    ("bitwise_count", np.bitwise_count, I32), ("bitwise_count bool", np.bitwise_count, B),
    ("divmod float", lambda a: np.divmod(a, 2.5), I32), ("divmod bools", lambda a: np.divmod(a, a | True), B),
    ("divmod weak", lambda a: np.divmod(a, -3), I32), ("divmod f32", lambda a: np.divmod(a, 2), F32),
    ("broadcast", lambda a: np.ldexp(a[:, None], np.arange(3)), F32),
    ("broadcast gcd", lambda a: np.gcd(a[:, None], np.array([[2, 3, 4]])), I32),
    ("0-d", lambda a: np.frexp(a[0]), F32), ("0-d gcd", lambda a: np.lcm(a[0], a[1]), I32),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [c[0] for c in DTYPE_CASES])
def test_dtypes_and_weak_scalars(name, mode):
    """Result dtypes are numpy's (NEP 50: Python scalars weak), int8 / uint8 ones stored as int32."""
    _, f, a = next(c for c in DTYPE_CASES if c[0] == name)
    _check(_run(f, (a,), mode), _numpy(f, a), f"{name} {mode}")


def test_numpy_errors():
    with pytest.raises(TypeError):  # numpy: no loop for floats / bools / a float exponent
        xnp.gcd(xcs.asarray(F32), 2)
    with pytest.raises(TypeError):
        xnp.lcm(xcs.asarray(B), xcs.asarray(B))
    with pytest.raises(TypeError):
        np.ldexp(xcs.asarray(F32), 1.5)
    with pytest.raises(TypeError):
        np.bitwise_count(xcs.asarray(F32))
    with pytest.raises(OverflowError):  # a Python int out of the int32 loop's range
        np.left_shift(xcs.asarray(I32), 2 ** 40)
    with pytest.raises(xcs.XCSZeroDivisionError):  # as xcs's floor_divide (numpy: 0 and a warning)
        np.asarray(np.divmod(xcs.asarray(I32), 0)[0])


def test_inputs_of_dtypes_xcs_lacks(rng):
    """int8 / uint8 / uint16 inputs are int32 Arrays (ember.xcs.numpy's rule): numpy's values where
    its narrow dtype does not wrap; uint64 is float64, which ldexp / frexp take as numpy does."""
    for dt in (np.int8, np.uint8, np.uint16):
        a, b = rng.integers(0, 12, 50).astype(dt), rng.integers(1, 12, 50).astype(dt)  # lcm < 128
        for f in (np.gcd, np.lcm, np.divmod, np.right_shift, np.bitwise_count):
            args = (a,) if f is np.bitwise_count else (a, b % 8 if f is np.right_shift else b)
            want = f(*args)
            got = getattr(xnp, f.__name__)(*args)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                assert np.asarray(g).dtype == np.int32
                np.testing.assert_array_equal(np.asarray(g), w.astype(np.int64))
    u = rng.integers(0, 2 ** 63, 20, dtype=np.uint64)
    _check(xnp.ldexp(u, 3), np.ldexp(u, 3))
    _check(xnp.frexp(u), np.frexp(u))


# ---------------------------------------------------------------- grad, vmap


def test_gradients(rng):
    x = rng.uniform(0.5, 30, 40) * rng.choice([-1, 1], 40)
    n = rng.integers(-20, 20, 40)
    g = np.asarray(grad(lambda a: np.ldexp(a, n).sum())(x))
    np.testing.assert_array_equal(g, np.ldexp(1.0, n))  # d/dx x 2^n = 2^n, exactly
    g = np.asarray(grad(lambda a: np.frexp(a)[0].sum())(x))
    np.testing.assert_array_equal(g, np.ldexp(1.0, -np.frexp(x)[1]))
    g = np.asarray(grad(lambda a: np.i0(a).sum())(x))
    eps = 1e-6 * np.maximum(1, np.abs(x))
    np.testing.assert_allclose(g, (np.i0(x + eps) - np.i0(x - eps)) / (2 * eps), rtol=1e-6)
    assert np.isfinite(np.asarray(grad(lambda a: np.i0(a).sum())(np.array([0.0, 8.0, 100.0, -750.0])))[:3]).all()
    g = np.asarray(jit(grad(lambda a: (np.i0(a) * np.ldexp(a, 2)).sum()))(x))
    np.testing.assert_allclose(g, 4 * (np.i0(x) + x * (np.i0(x + eps) - np.i0(x - eps)) / (2 * eps)), rtol=1e-6)


def test_under_vmap(rng):
    x = _floats(rng, np.dtype(np.float64), 60).reshape(-1, 2, 2)[:-1]
    m, e = vmap(np.frexp)(x)
    _check((m, e), np.frexp(x))
    _check(vmap(lambda a: np.ldexp(a, np.array([1, -1100])))(x), np.ldexp(x, np.array([1, -1100])))
    _check(vmap(np.spacing)(x), _numpy(np.spacing, x))
    _check(vmap(lambda a: np.nextafter(a, 0.0))(x), np.nextafter(x, 0.0))
    i, j = _ints(rng, np.dtype(np.int64), 20)[:48].reshape(4, 12), rng.integers(-3, 67, (4, 12))
    _check(vmap(np.gcd)(i, j), np.gcd(i, j))
    _check(vmap(np.lcm)(i, j), np.lcm(i, j))
    _check(vmap(np.left_shift)(i, j), np.left_shift(i, j))
    _check(vmap(np.right_shift)(i, j), np.right_shift(i, j))
    _check(vmap(np.bitwise_count)(i), np.bitwise_count(i))
    _check(vmap(lambda a: np.divmod(a, 7))(i), np.divmod(i, 7))
    y = rng.uniform(-20, 20, (3, 5))
    np.testing.assert_allclose(np.asarray(vmap(np.i0)(y)), np.i0(y), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(vmap(grad(lambda a: np.i0(a)))(y[0])),
                               (np.i0(y[0] + 1e-6) - np.i0(y[0] - 1e-6)) / 2e-6, rtol=1e-6)


def test_every_listed_name_dispatches():
    """Each NUMPY_UFUNCS / NUMPY_FUNCTIONS name is numpy's, xnp has it, and numpy's calls reach it under jit."""
    from ember.xcs import _np_ufuncs

    for name in _np_ufuncs.NUMPY_UFUNCS:
        assert isinstance(getattr(np, name), np.ufunc) and callable(getattr(xnp, name))
    for name in _np_ufuncs.NUMPY_FUNCTIONS:
        assert callable(getattr(np, name)) and callable(getattr(xnp, name))
    assert xnp.bitwise_left_shift is xnp.left_shift and np.bitwise_left_shift(xcs.asarray(I32), 1).dtype == np.int32

    def every(f, i):
        return (np.ldexp(f, i), np.frexp(f), np.nextafter(f, 0.0), np.spacing(f), np.divmod(i, 3), np.gcd(i, 6),
                np.lcm(i, 6), np.left_shift(i, 2), np.right_shift(i, 1), np.bitwise_count(i), np.i0(f))

    out = jit(every)(F32, I32)  # an XCSTracerError here means one went to numpy's own loop
    flat = [v for o in out for v in (o if isinstance(o, tuple) else (o,))]
    assert all(isinstance(v, xcs.Array) for v in flat) and len(flat) == 13
