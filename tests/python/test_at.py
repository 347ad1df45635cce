"""Array.at[key]: functional index updates (JAX's x.at[i].set(v) idiom on
immutable Arrays): set (numpy's x[key] = v: the last of repeated indices
wins), add / subtract / multiply / min / max (every repeated update combined,
as numpy's ufunc.at), divide / power, apply and get, against numpy on fresh
random inputs, for keys of every kind (ints, slices, Ellipsis, integer arrays
with repeats, known boolean masks, traced index arrays), eagerly, under jit,
vmap and grad; numpy's errors."""
import numpy as np
import pytest
from conftest import fd_grad

import ember.xcs as xcs
from ember.xcs import grad, jit, vmap

KEYS = {
    "int": lambda a: (1,), "slice": lambda a: (slice(1, 3),), "repeats": lambda a: (np.array([0, 2, 2, 3, 0]),),
    "cols_repeats": lambda a: (slice(None), np.array([4, 0, 4, 4])), "2d_index": lambda a: (np.array([[0, 0], [1, 3]]), 2),
    "mask": lambda a: (a[:, 0] > 0,), "ellipsis": lambda a: (Ellipsis, -1), "same_point": lambda a: (np.array([1, 1, 1]), np.array([2, 2, 2])),
    "negative": lambda a: (np.array([-1, -4]), np.array([0, -5])), "empty": lambda a: (np.array([], np.int64),),
}
UFUNC_AT = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def reference(kind, a, key, v):
    b = a.copy()
    if kind == "set":
        b[key] = v
    elif kind == "subtract":
        np.subtract.at(b, key, v)
    elif kind in ("divide", "power"):  # repeated indices: the combined divisor / exponent
        fold = np.ones_like(b)
        np.multiply.at(fold, key, v)
        b = b / fold if kind == "divide" else b ** fold
    else:
        UFUNC_AT[kind].at(b, key, v)
    return b


@pytest.mark.parametrize("kind", ["set", "add", "subtract", "multiply", "divide", "power", "min", "max"])
@pytest.mark.parametrize("name", list(KEYS))
def test_updates_match_numpy(name, kind, rng):
    a = rng.standard_normal((4, 5))
    if kind == "power":
        a = np.abs(a) + 0.5
    key = KEYS[name](a)
    v = rng.standard_normal(a[key].shape) if kind != "power" else rng.random(a[key].shape) + 0.5
    want = reference(kind, a, key, v)
    f = lambda x: getattr(x.at[key], kind)(v)  # noqa: E731
    for got in (f(xcs.asarray(a)), jit(f)(a)):
        assert isinstance(got, xcs.Array) and got.shape == a.shape and got.dtype == a.dtype
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["set", "add", "multiply", "min", "max"])
def test_traced_indices_and_vmap(kind, rng):
    """Index arrays traced (repeats found at run time: a stable sort of the positions) and the
    update batched by vmap."""
    a, idx = rng.standard_normal(6), rng.integers(0, 6, 9)
    v = rng.standard_normal(9)
    got = jit(lambda x, i, v: getattr(x.at[i], kind)(v))(a, idx, v)
    np.testing.assert_allclose(np.asarray(got), reference(kind, a, (idx,), v), rtol=1e-12)
    xs, vs = rng.standard_normal((3, 6)), rng.standard_normal((3, 9))
    got = vmap(lambda x, v: getattr(x.at[idx], kind)(v))(xs, vs)
    np.testing.assert_allclose(np.asarray(got), np.stack([reference(kind, x, (idx,), v) for x, v in zip(xs, vs)]),
                               rtol=1e-12)


def test_gradients(rng):
    """Gradients reach x (the untouched elements, and through multiply / min / max the touched
    ones) and v (set: only the winning update of a repeated index)."""
    a, v = rng.standard_normal(5), rng.standard_normal(4)
    idx = np.array([0, 2, 2, 4])
    w = rng.standard_normal(5)
    for kind in ("set", "add", "multiply", "min", "max"):
        for argnum in (0, 1):
            f = lambda x, v: (getattr(xcs.asarray(x).at[idx], kind)(v) * w).sum()  # noqa: E731
            g = np.asarray(grad(f, argnums=argnum)(a, v))
            ref = fd_grad(lambda t: float(np.asarray(f(t, v) if argnum == 0 else f(a, t))), a if argnum == 0 else v)
            np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-8)


def test_apply_get_dtypes_and_errors(rng):
    a = rng.standard_normal((3, 4))
    x = xcs.asarray(a)
    idx = np.array([0, 2, 2])
    want = a.copy()
    want[idx, 1] = np.sin(a[idx, 1])  # applied once per element, a repeat included
    np.testing.assert_allclose(np.asarray(x.at[idx, 1].apply(np.sin)), want, rtol=1e-15)
    # traced indices that repeat: still once per element (a set of func of the old values)
    np.testing.assert_allclose(np.asarray(jit(lambda v, i: v.at[i, 1].apply(np.sin))(a, idx)), want, rtol=1e-15)
    np.testing.assert_array_equal(np.asarray(x.at[1:, ::2].get()), a[1:, ::2])
    i = xcs.asarray(np.arange(6, dtype=np.int32))
    got = i.at[np.array([1, 1, 5])].add(np.array([2, 3, 4]))
    assert got.dtype == np.int32 and np.asarray(got).tolist() == [0, 6, 2, 3, 4, 9]
    assert np.asarray(i.at[2].set(7.9)).tolist() == [0, 1, 7, 3, 4, 5]  # cast to x's dtype, as numpy's setitem
    with pytest.raises(IndexError):
        x.at[np.array([3])].set(1.0)
    with pytest.raises(xcs.XCSError):
        x.at[np.array([0, 1])].set(np.ones(3))  # v must broadcast to x[key]'s shape
    # JAX's hints are taken; its other modes are refused, not ignored
    np.testing.assert_array_equal(np.asarray(x.at[0].add(1.0, unique_indices=True, mode="promise_in_bounds")),
                                  a + (np.arange(3)[:, None] == 0))
    with pytest.raises(xcs.XCSValueError, match="mode='drop' is not supported"):
        x.at[0].set(1.0, mode="drop")
    with pytest.raises(TypeError, match="unexpected keyword"):
        x.at[0].set(1.0, fill=2)
