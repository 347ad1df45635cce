"""Creation functions against numpy, and ember.xcs.random: determinism,
split independence, distribution statistics."""
import math

import numpy as np
import pytest

from conftest import ALL_DTYPES, assert_close, assert_same_bits


@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), 5])
@pytest.mark.parametrize("dtype", [None] + list(ALL_DTYPES))
def test_zeros_ones_full_empty(xnp, xcs, shape, dtype):
    kw = {} if dtype is None else {"dtype": dtype}
    assert_close(xnp.zeros(shape, **kw), np.zeros(shape, **kw))
    assert_close(xnp.ones(shape, **kw), np.ones(shape, **kw))
    fill = 3 if dtype is None or np.dtype(dtype).kind != "b" else True
    assert_close(xnp.full(shape, fill, **kw), np.full(shape, fill, **kw))
    e = xnp.empty(shape, **kw)
    want = np.empty(shape, **kw)
    assert e.shape == want.shape and e.dtype == want.dtype


def test_full_dtype_inference(xnp):
    assert_close(xnp.full((2,), 1.5), np.full((2,), 1.5))
    assert_close(xnp.full((2,), 7), np.full((2,), 7))
    assert_close(xnp.full((2,), True), np.full((2,), True))
    assert_close(xnp.full((2, 2), 2.5, dtype="float32"), np.full((2, 2), 2.5, dtype="float32"))


@pytest.mark.parametrize("dtype", [None, np.float32, np.int32])
def test_like_functions(xnp, xcs, rng, dtype):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = xcs.asarray(a)
    kw = {} if dtype is None else {"dtype": dtype}
    assert_close(xnp.zeros_like(x, **kw), np.zeros_like(a, **kw))
    assert_close(xnp.ones_like(x, **kw), np.ones_like(a, **kw))
    assert_close(xnp.full_like(x, 2, **kw), np.full_like(a, 2, **kw))
    # numpy arrays in, Arrays out
    assert isinstance(xnp.zeros_like(a), xcs.Array)


ARANGES = [(5,), (0,), (-3,), (2, 10), (2, 10, 3), (10, 2, -2), (0.0, 1.0, 0.1), (1, 2, 0.25),
           (0.5, 7.3), (-1.5, 1.5, 0.5), (10, 0), (0, 10, 100)]


@pytest.mark.parametrize("args", ARANGES, ids=repr)
def test_arange(xnp, args):
    want = np.arange(*args)
    got = xnp.arange(*args)
    assert_close(got, want, rtol=0, atol=1e-12 * max(1, np.max(np.abs(want), initial=0)))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.float64])
def test_arange_dtype(xnp, dtype):
    assert_close(xnp.arange(0, 7, 2, dtype=dtype), np.arange(0, 7, 2, dtype=dtype))
    assert_close(xnp.arange(100_000, dtype=dtype), np.arange(100_000, dtype=dtype))


def test_arange_errors(xnp, xcs):
    with pytest.raises((xcs.XCSError, ZeroDivisionError, ValueError)):
        xnp.arange(0, 10, 0)


@pytest.mark.parametrize("args,kw", [((0, 1, 5), {}), ((0, 1, 5), {"endpoint": False}),
                                     ((-2.5, 7.0, 11), {}), ((1, 1, 3), {}), ((0, 1, 1), {}),
                                     ((0, 1, 0), {}), ((0, 10, 7), {"dtype": np.float32}),
                                     ((0, 10, 6), {"dtype": np.int64}), ((5, -5, 1001), {})])
def test_linspace(xnp, args, kw):
    want = np.linspace(*args, **kw)
    got = xnp.linspace(*args, **kw)
    assert_close(got, want, rtol=1e-6 if want.dtype == np.float32 else 1e-13, atol=1e-13)
    if want.size:
        # numpy's endpoint is exact
        np.testing.assert_array_equal(np.asarray(got)[0], want[0])
        if kw.get("endpoint", True) and want.dtype.kind == "f":
            np.testing.assert_array_equal(np.asarray(got)[-1], want[-1])


@pytest.mark.parametrize("args", [(3,), (3, 4), (4, 3), (3, 4, 1), (3, 4, -2), (4, None, 5), (0,)], ids=repr)
@pytest.mark.parametrize("dtype", [None, np.int32, np.bool_])
def test_eye(xnp, args, dtype):
    kw = {} if dtype is None else {"dtype": dtype}
    assert_close(xnp.eye(*args, **kw), np.eye(*args, **kw))


def test_array_and_asarray(xnp, xcs):
    assert_close(xnp.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    assert_close(xnp.array([1.5, 2]), np.array([1.5, 2]))
    assert_close(xnp.array([True, False]), np.array([True, False]))
    assert_close(xnp.array(3.0), np.array(3.0))
    assert_close(xnp.array([[1, 2]], dtype=np.float32), np.array([[1, 2]], dtype=np.float32))
    assert_close(xcs.array([]), np.array([]))
    assert_close(xnp.asarray(range(5)), np.asarray(range(5)))


def test_creation_errors(xnp, xcs):
    with pytest.raises((xcs.XCSError, ValueError)):
        xnp.zeros((-1, 2))
    with pytest.raises((xcs.XCSTypeError, TypeError)):
        xnp.zeros((2,), dtype="complex64")
    with pytest.raises((xcs.XCSTypeError, TypeError)):
        xnp.zeros((2,), dtype="no-such-dtype")
    with pytest.raises((xcs.XCSError, TypeError, ValueError)):
        xnp.array([[1, 2], [3]])  # ragged


# ----------------------------------------------------------------- random

@pytest.fixture(scope="module")
def xr():
    import ember.xcs.random as m
    return m


def test_key(xr, xcs):
    k = xr.key(0)
    assert isinstance(k, xcs.Array)
    assert k.shape == (2,)
    assert k.dtype == np.int64
    v = np.asarray(k)
    assert ((v >= 0) & (v < 2**32)).all()
    assert not np.array_equal(np.asarray(xr.key(0)), np.asarray(xr.key(1)))
    np.testing.assert_array_equal(np.asarray(xr.key(12345)), np.asarray(xr.key(12345)))


@pytest.mark.parametrize("fn", ["uniform", "normal"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_determinism(xr, fn, dtype):
    k = xr.key(42)
    a = np.asarray(getattr(xr, fn)(k, (1000,), dtype=dtype))
    b = np.asarray(getattr(xr, fn)(xr.key(42), (1000,), dtype=dtype))
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a, b)
    c = np.asarray(getattr(xr, fn)(xr.key(43), (1000,), dtype=dtype))
    assert not np.array_equal(a, c)


def test_counter_based_prefix(xr):
    """Element i depends on (key, i) only: a longer draw extends a shorter one,
    and a multi-dim draw is the flat draw reshaped (threads can split work)."""
    k = xr.key(7)
    small = np.asarray(xr.uniform(k, (100,)))
    big = np.asarray(xr.uniform(k, (300_000,)))
    np.testing.assert_array_equal(small, big[:100])
    shaped = np.asarray(xr.uniform(k, (600, 500)))
    np.testing.assert_array_equal(shaped.ravel(), big)


def test_split(xr, xcs):
    k = xr.key(0)
    ks = xr.split(k)
    assert ks.shape == (2, 2) and ks.dtype == np.int64
    ks4 = xr.split(k, 4)
    assert ks4.shape == (4, 2)
    rows = np.asarray(ks4)
    assert len({tuple(r) for r in rows}) == 4
    assert not any((r == np.asarray(k)).all() for r in rows)
    np.testing.assert_array_equal(np.asarray(xr.split(xr.key(0), 4)), rows)
    # streams of different split keys are uncorrelated
    a = np.asarray(xr.normal(ks4[0], (50_000,), dtype="float64"))
    b = np.asarray(xr.normal(ks4[1], (50_000,), dtype="float64"))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03


def test_uniform_statistics(xr):
    n = 1_000_000
    u = np.asarray(xr.uniform(xr.key(1), (n,)))
    assert u.dtype == np.float32
    assert u.min() >= 0.0 and u.max() < 1.0
    se = 1 / math.sqrt(12 * n)
    assert abs(u.mean() - 0.5) < 6 * se
    assert abs(u.var() - 1 / 12) < 1e-3
    hist, _ = np.histogram(u, bins=20, range=(0, 1))
    expected = n / 20
    chi2 = ((hist - expected) ** 2 / expected).sum()
    assert chi2 < 60  # 19 dof: p < 1e-5 beyond ~50
    lo_hi = np.asarray(xr.uniform(xr.key(2), (10_000,), dtype="float64", minval=-3.0, maxval=5.0))
    assert lo_hi.min() >= -3.0 and lo_hi.max() < 5.0
    assert abs(lo_hi.mean() - 1.0) < 0.15


def test_normal_statistics(xr):
    n = 1_000_000
    z = np.asarray(xr.normal(xr.key(3), (n,), dtype="float64"))
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 6 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5e-3
    # tails: P(|z| > 3) = 0.0027
    assert abs((np.abs(z) > 3).mean() - 0.0027) < 5e-4
    skew = ((z - z.mean()) ** 3).mean() / z.std() ** 3
    kurt = ((z - z.mean()) ** 4).mean() / z.var() ** 2
    assert abs(skew) < 0.02 and abs(kurt - 3) < 0.05


def test_random_shapes_and_errors(xr, xcs):
    assert xr.uniform(xr.key(0)).shape == ()
    assert xr.normal(xr.key(0), (0, 3)).shape == (0, 3)
    with pytest.raises((xcs.XCSTypeError, TypeError)):
        xr.uniform(xr.key(0), (3,), dtype="int32")
    with pytest.raises((xcs.XCSError, TypeError, ValueError)):
        xr.uniform(np.zeros(3), (3,))  # not a key


# ---------------------------------------------------------------- traced keys


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_traced_key_draws_the_eager_numbers(xr, xcs, dtype):
    """A key passed to a jitted function is drawn from when the program
    runs: one trace serves every key, and each call gives the numbers that
    key gives outside jit (split inside the program too)."""
    def f(key, x):
        k1, k2 = xr.split(key)
        return x + xr.normal(k1, (3, 5), dtype=dtype), xr.uniform(k2, (7,), dtype=dtype, minval=-2.0, maxval=3.0)

    jf = xcs.jit(f)
    x = np.zeros((3, 5), dtype=np.float32 if dtype != "float64" else np.float64)
    for seed in (0, 1, 12345):
        key = xr.key(seed)
        got = jf(key, x)
        want = f(key, xcs.asarray(x))
        for g, w in zip(got, want):  # a GPU's log / cos: float64 normals an ulp or two apart
            assert_same_bits(g, w, ulps=4)
    assert jf.stats()["traces"] == 1


def test_vmap_over_keys_draws_each_examples_own(xr, xcs):
    """vmap over split keys: example i draws from key i, as alone."""
    keys = xr.split(xr.key(5), 6)
    draw = lambda k: xr.normal(k, (4,)) * 2 + xr.uniform(xr.split(k)[1], ())
    want = np.stack([np.asarray(draw(keys[i])) for i in range(6)])
    np.testing.assert_array_equal(np.asarray(xcs.vmap(draw)(keys)), want)
    np.testing.assert_array_equal(np.asarray(xcs.jit(xcs.vmap(draw))(keys)), want)
    shared = xcs.vmap(lambda v, k: v + xr.normal(k, (4,)), in_axes=(0, None))(np.zeros((3, 4), np.float32), keys[0])
    np.testing.assert_array_equal(np.asarray(shared), np.broadcast_to(np.asarray(xr.normal(keys[0], (4,))), (3, 4)))


def test_dropout_step_with_a_traced_key_is_differentiated(xr, xcs):
    """A training step drawing a dropout mask from its key argument: the
    gradient flows through the mask (a constant), not into the draw."""
    r = np.random.default_rng(0)
    w, x = r.standard_normal(8), r.standard_normal((16, 8))

    def loss(w, key):
        keep = xr.uniform(key, (16, 8)) > 0.3
        h = xcs.numpy.where(keep, x / 0.7, 0.0)
        return ((h @ w) ** 2).mean()

    step = xcs.jit(xcs.grad(loss))
    for seed in (3, 4):
        key = xr.key(seed)
        keep = np.asarray(xr.uniform(key, (16, 8))) > 0.3
        h = np.where(keep, x / 0.7, 0.0)
        np.testing.assert_allclose(np.asarray(step(w, key)), 2 * h.T @ (h @ w) / 16, rtol=1e-10, atol=1e-12)
    assert step.stats()["traces"] == 1


def test_key_carried_through_a_scan(xr, xcs):
    """A key in a scan's carry, split every step: the loop program draws
    what a Python loop draws."""
    def step(key, _):
        key, sub = xr.split(key)
        return key, xr.normal(sub, (2,))

    _, ys = xcs.scan(step, xr.key(9), length=5)
    key, want = xr.key(9), []
    for _ in range(5):
        key, sub = xr.split(key)
        want.append(np.asarray(xr.normal(sub, (2,))))
    np.testing.assert_array_equal(np.asarray(ys), np.stack(want))


def test_traced_key_errors(xr, xcs):
    """A traced value that is no key fails at trace time; key words out of
    range, when the program runs."""
    with pytest.raises(xcs.XCSTypeError, match=r"a key is an integer array of shape \(2,\)"):
        xcs.jit(lambda k: xr.normal(k, (2,)))(np.zeros(3, np.int64))
    with pytest.raises(xcs.XCSTypeError, match="float dtype"):
        xcs.jit(lambda k: xr.uniform(k, (2,), dtype="int32"))(xr.key(0))
    with pytest.raises(xcs.XCSValueError, match="32-bit unsigned"):
        np.asarray(xcs.jit(lambda k: xr.normal(k, (2,)))(np.array([-1, 0], np.int64)))
    with pytest.raises(xcs.XCSValueError, match=r"num must be in \[1, 2\*\*40\]"):
        xcs.jit(lambda k: xr.split(k, 0))(xr.key(0))
