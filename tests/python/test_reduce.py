"""Reductions against numpy: sum/mean/max/min/prod/argmax/argmin/var/std over
axis None / int / tuple / negative, keepdims, ddof, views, empty inputs, NaN."""
import numpy as np
import pytest

from conftest import ALL_DTYPES, apply_layout, assert_close, make_pair, random_array

SHAPES_AXES = [
    ((), None),
    ((1,), None),
    ((7,), 0),
    ((7,), -1),
    ((4, 5), None),
    ((4, 5), 0),
    ((4, 5), 1),
    ((4, 5), -2),
    ((4, 5), (0, 1)),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, -3)),
    ((2, 3, 4), 1),
    ((3, 1, 5), 1),
    ((1, 1), (0, 1)),
    ((300_000,), None),       # OpenMP path, flat
    ((600, 700), 0),          # OpenMP path, column reduction
    ((700, 600), -1),         # OpenMP path, row reduction
]


def _tol(name, a, axis, dtype):
    """Tolerances for a float reduction over `a` (numpy input) along `axis`.

    Summation error grows with the number of terms n and with cancellation,
    so sum/mean are bounded absolutely by ~eps*sqrt(n)*sum|x| (what a blocked
    or pairwise sum achieves in practice) instead of relative to the result."""
    eps = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52}.get(np.dtype(dtype))
    if eps is None:
        return {}
    with np.errstate(all="ignore"):
        out_size = np.asarray(np.sum(np.zeros(a.shape, np.int8), axis=axis)).size
        n = max(1, a.size // max(1, out_size))
        if name in ("sum", "mean"):
            mag = float(np.max(np.sum(np.abs(a.astype(np.float64)), axis=axis), initial=0.0))
            if name == "mean":
                mag /= n
            return dict(rtol=8 * eps, atol=4 * eps * (np.sqrt(n) + 1) * mag)
        if name in ("var", "std"):
            return dict(rtol=1e-4, atol=1e-5) if eps > 1e-10 else dict(rtol=1e-10, atol=1e-12)
        if name == "prod":
            # a float64 product may land in float32's subnormal range or below
            return dict(rtol=4 * eps * (n + 1), atol=float(np.finfo(dtype).tiny))
    return {}


def _big(shape):
    return int(np.prod(shape)) > 100_000


# large shapes run for float32 and int64 only, without keepdims (covered small)
REDUCE_CASES = [
    pytest.param(dtype, shape, axis, keepdims, id=f"{np.dtype(dtype).name}-{shape}-{axis}-{keepdims}")
    for dtype in ALL_DTYPES
    for shape, axis in SHAPES_AXES
    for keepdims in (False, True)
    if not _big(shape) or (np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.int64)) and not keepdims)
]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("dtype,shape,axis,keepdims", REDUCE_CASES)
def test_reduce(xnp, xcs, rng, name, dtype, shape, axis, keepdims):
    kind = "small" if name == "prod" else "normal"
    if name == "prod" and np.dtype(dtype).kind == "f":
        a = rng.uniform(0.5, 1.5, size=shape).astype(dtype)  # keep products finite
    else:
        a = random_array(rng, shape, dtype, kind)
    x = xcs.asarray(a)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
        ref = getattr(np, name)(a.astype(np.float64) if a.dtype.kind == "f" else a, axis=axis,
                                keepdims=keepdims)
    tol = _tol(name, a, axis, want.dtype)
    assert_close(getattr(xnp, name)(x, axis=axis, keepdims=keepdims), ref, np.asarray(want).dtype, **tol)
    # the method form
    assert_close(getattr(x, name)(axis=axis, keepdims=keepdims), ref, np.asarray(want).dtype, **tol)


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_aliases(xnp, xcs, rng, name):
    a = random_array(rng, (3, 4), np.float32)
    assert_close(getattr(xnp, name)(xcs.asarray(a), axis=1), getattr(np, name)(a, axis=1))


ARG_SHAPES = [((7,), None), ((7,), 0), ((4, 5), None), ((4, 5), 0), ((4, 5), -1), ((2, 3, 4), 1),
              ((1,), 0), ((300_000,), None), ((500, 600), 0)]
ARG_CASES = [
    pytest.param(dtype, shape, axis, keepdims, id=f"{np.dtype(dtype).name}-{shape}-{axis}-{keepdims}")
    for dtype in ALL_DTYPES
    for shape, axis in ARG_SHAPES
    for keepdims in (False, True)
    if not _big(shape) or np.dtype(dtype) == np.dtype(np.float32)  # large: float32 only
]


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype,shape,axis,keepdims", ARG_CASES)
def test_argreduce(xnp, xcs, rng, name, dtype, shape, axis, keepdims):
    a = random_array(rng, shape, dtype, "small")  # small ints: ties, first index wins
    x = xcs.asarray(a)
    want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert_close(getattr(xnp, name)(x, axis=axis, keepdims=keepdims), want, np.int64)
    assert_close(getattr(x, name)(axis=axis, keepdims=keepdims), want, np.int64)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape,axis", [((10,), None), ((4, 5), 0), ((4, 5), -1), ((2, 3, 4), (0, 2)),
                                        ((200_000,), None)])
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_var_std(xnp, xcs, rng, name, dtype, shape, axis, ddof, keepdims):
    a = random_array(rng, shape, dtype)
    if np.dtype(dtype).kind == "f":
        a = (a + 3).astype(dtype)  # a non-zero mean: catches the naive E[x^2]-E[x]^2 formula
    x = xcs.asarray(a)
    want = getattr(np, name)(a, axis=axis, ddof=ddof, keepdims=keepdims)
    ref = getattr(np, name)(a.astype(np.float64), axis=axis, ddof=ddof, keepdims=keepdims)
    tol = _tol(name, a, axis, want.dtype)
    assert_close(getattr(xnp, name)(x, axis=axis, ddof=ddof, keepdims=keepdims), ref, want.dtype, **tol)
    assert_close(getattr(x, name)(axis=axis, ddof=ddof, keepdims=keepdims), ref, want.dtype, **tol)


def test_var_large_offset_is_stable(xnp, xcs, rng):
    """A two-pass (or Welford) variance keeps precision when mean >> std."""
    a = (1e4 + rng.standard_normal(10_000)).astype(np.float32)
    want = np.var(a.astype(np.float64))
    got = float(np.asarray(xnp.var(xcs.asarray(a))))
    assert abs(got - want) / want < 1e-2


@pytest.mark.parametrize("layout", ["transposed", "step2", "negative"])
@pytest.mark.parametrize("name", ["sum", "max", "argmax", "mean"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_reduce_views(xnp, xcs, rng, layout, name, axis):
    a, x = make_pair(xcs, rng, (33, 47), np.float64, layout=layout)
    want = getattr(np, name)(a, axis=axis)
    tol = _tol(name, a, axis, np.float64)
    assert_close(getattr(xnp, name)(x, axis=axis), want, **tol)


def test_reduce_broadcast_view(xnp, xcs, rng):
    a = random_array(rng, (1, 50), np.float32)
    x = xnp.broadcast_to(xcs.asarray(a), (40, 50))
    assert_close(xnp.sum(x, axis=0), np.sum(np.broadcast_to(a, (40, 50)).astype(np.float64), axis=0),
                 np.float32, rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------- empty inputs

@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_empty_sum_prod(xnp, xcs, dtype):
    a = np.zeros((0, 3), dtype)
    x = xcs.asarray(a)
    for name in ("sum", "prod"):
        for axis in (None, 0, 1):
            assert_close(getattr(xnp, name)(x, axis=axis), getattr(np, name)(a, axis=axis),
                         err_msg=f"{name} axis={axis}")


def test_empty_max_raises_like_numpy(xnp, xcs):
    """numpy: 'zero-size array to reduction operation maximum which has no identity'."""
    x = xcs.asarray(np.zeros((0, 3), np.float32))
    for name in ("max", "min", "amax", "argmax", "argmin"):
        with pytest.raises(ValueError):
            getattr(np, name)(np.zeros((0, 3), np.float32))
        with pytest.raises(xcs.XCSValueError) as ei:  # a ValueError, like numpy's
            getattr(xnp, name)(x)
        msg = str(ei.value).lower()
        assert any(w in msg for w in ("empty", "zero-size", "identity")), msg
    with pytest.raises(xcs.XCSError):
        xnp.max(x, axis=0)
    # along a non-empty axis the result is just empty
    assert_close(xnp.max(x, axis=1), np.max(np.zeros((0, 3), np.float32), axis=1))


def test_empty_mean_is_nan(xnp, xcs):
    with pytest.warns(RuntimeWarning), np.errstate(all="ignore"):
        want = np.mean(np.zeros((0,), np.float64))
    got = np.asarray(xnp.mean(xcs.asarray(np.zeros((0,), np.float64))))
    assert np.isnan(got) and np.isnan(want)


# ----------------------------------------------------------------- NaN

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagation(xnp, xcs, dtype):
    a = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0], [-np.inf, 2.0, np.inf]], dtype)
    x = xcs.asarray(a)
    for name in ("sum", "max", "min", "mean", "prod"):
        for axis in (None, 0, 1):
            with np.errstate(all="ignore"):
                want = getattr(np, name)(a, axis=axis)
            got = np.asarray(getattr(xnp, name)(x, axis=axis))
            np.testing.assert_array_equal(got, want, err_msg=f"{name} axis={axis}")
    for name in ("argmax", "argmin"):
        for axis in (None, 0, 1):
            np.testing.assert_array_equal(np.asarray(getattr(xnp, name)(x, axis=axis)),
                                          getattr(np, name)(a, axis=axis), err_msg=f"{name} axis={axis}")


def test_nan_in_large_max(xnp, xcs, rng):
    """NaN must survive a parallel/SIMD max (maxps drops NaN in one operand order)."""
    a = rng.standard_normal(300_001).astype(np.float32)
    for pos in (0, 150_000, 300_000):
        b = a.copy()
        b[pos] = np.nan
        assert np.isnan(float(np.asarray(xnp.max(xcs.asarray(b))))), pos
        assert int(np.asarray(xnp.argmax(xcs.asarray(b)))) == pos
        assert np.isnan(float(np.asarray(xnp.min(xcs.asarray(b))))), pos


# ----------------------------------------------------------------- bad axes

def test_bad_axes(xnp, xcs):
    x = xcs.asarray(np.zeros((2, 3)))
    for bad in (2, -3, (0, 2), (0, 0), (1, -1)):
        with pytest.raises(xcs.XCSError) as ei:
            xnp.sum(x, axis=bad)
        assert "axis" in str(ei.value).lower()
    with pytest.raises(xcs.XCSError):
        xnp.argmax(x, axis=5)
    with pytest.raises((xcs.XCSError, TypeError)):
        xnp.sum(x, axis=1.5)


def test_integer_sum_widening(xnp, xcs):
    a = np.full(1000, 2**30, np.int32)
    got = xnp.sum(xcs.asarray(a))
    assert got.dtype == np.int64
    assert int(np.asarray(got)) == 1000 * 2**30
    b = np.ones(70_000, np.bool_)
    assert int(np.asarray(xnp.sum(xcs.asarray(b)))) == 70_000


def test_integer_mean_var_sum_in_float64(xnp, xcs, rng):
    """numpy sums integers in float64 for mean (and var's mean): an int64
    sum would wrap (found by differential testing), and a float64 one
    rounds where numpy's does, so the bits are numpy's."""
    big = np.array([2**62, 2**62, 2**61])
    for name in ("mean", "var", "std", "average", "nanmean", "nanvar"):
        got, want = getattr(xnp, name)(big), getattr(np, name)(big)
        assert np.asarray(got).dtype == want.dtype and float(np.asarray(got)) == float(want), name
    for dtype in (np.int32, np.int64, np.bool_):
        a = rng.integers(-2**31, 2**31, (5, 301)).astype(dtype)
        a[0, :3] = np.iinfo(np.int64).max if dtype is np.int64 else 1
        for axis in (None, 0, 1):
            for name in ("mean", "var", "std"):
                got, want = np.asarray(getattr(xnp, name)(xcs.asarray(a), axis=axis)), getattr(np, name)(a, axis=axis)
                assert got.dtype == want.dtype
                np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


def test_sum_accuracy_float32(xnp, xcs, rng):
    """Pairwise/blocked summation: 1e7 float32 ones sum exactly (naive gives 16777216)."""
    a = np.ones(10_000_000, np.float32)
    assert float(np.asarray(xnp.sum(xcs.asarray(a)))) == 1e7
    b = rng.uniform(0, 1, 2_000_000).astype(np.float32)
    want = np.sum(b.astype(np.float64))
    got = float(np.asarray(xnp.sum(xcs.asarray(b))))
    assert abs(got - want) / want < 1e-5
