"""Long traces: unrolled loops (a Python loop, or a scan inside vmap)
make graphs of thousands of nodes.  Tracing and optimising them must stay
about linear in their length, which these tests check by structure, not by
time: a weight read every step is one constant, the gradient of many slices
of one array is one scatter-add, and the programs compute what numpy does
(values all live at once stress the memory plan)."""
import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import grad, jit, scan


def _after(text):
    """The optimised program's lines in an explain text."""
    return text.split("after optimisation", 1)[1].splitlines()


def _consts(text, shape):
    return sum(1 for line in _after(text) if "= const(#" in line and line.endswith(shape))


def test_weight_read_every_step_is_one_constant(rng):
    """A closure weight read by 200 unrolled steps, directly and transposed
    (a strided view: its constant is a copy), is one constant each."""
    W = (rng.standard_normal((16, 16)) * 0.2).astype(np.float32)

    def f(h):
        for _ in range(200):
            h = np.tanh(h @ W.T) + h @ W * 0.5
        return h

    h = rng.standard_normal(16).astype(np.float32)
    jf = jit(f)
    want = f(h.astype(np.float64))
    np.testing.assert_allclose(np.asarray(jf(h)), want, rtol=1e-4, atol=1e-5)
    assert _consts(xcs.explain(jf, h), "float32(16, 16)") == 2


@pytest.mark.parametrize("kind", ["contiguous", "transposed", "column of a big array"])
def test_fresh_temporaries_are_distinct_constants(kind, rng):
    """Temporaries made and dropped every step (their memory may be reused
    by the next step's) each keep their own values."""
    def temp(t):
        if kind == "contiguous":
            return np.full((8, 8), float(t), np.float32)
        if kind == "transposed":
            return np.arange(64, dtype=np.float32).reshape(8, 8).T * float(t)
        return np.full((4000, 8), float(t), np.float32)[:8, 3]

    def f(h):
        for t in range(40):
            h = h + temp(t) * 0.01
        return h

    h = rng.standard_normal((8, 8)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(jit(f)(h)), f(h.astype(np.float64)), rtol=1e-5, atol=1e-5)


def _unrolled(cell, h0, xs):
    """scan's semantics as a Python loop: unrolled into any trace."""
    h, ys = h0, []
    for t in range(xs.shape[0]):
        h, y = cell(h, xs[t])
        ys.append(y)
    return h, ys


def _rnn_loss(W):
    def loss(h0, xs):
        def cell(h, x):
            return np.tanh(h @ W + x), None
        h, _ = _unrolled(cell, h0, xs)
        return (h * h).sum()
    return loss


def _rnn_grad_xs(W, h0, xs):
    hs = [h0]
    for x in xs:
        hs.append(np.tanh(hs[-1] @ W + x))
    dh, dxs = 2 * hs[-1], np.zeros_like(xs)
    for t in range(len(xs) - 1, -1, -1):
        dpre = dh * (1 - hs[t + 1] ** 2)
        dxs[t] = dpre
        dh = dpre @ W.T
    return dxs


def test_grad_of_every_step_slice_is_one_scatter(rng):
    """grad wrt xs of an unrolled loop reads xs[t] at every step: the T slices'
    cotangents are summed by one scatter-add (not T full-size ones)."""
    T, H = 300, 8
    W = (rng.standard_normal((H, H)) * 0.3).astype(np.float32)
    xs = rng.standard_normal((T, H)).astype(np.float32)
    h0 = rng.standard_normal(H).astype(np.float32)
    g = jit(grad(_rnn_loss(W), argnums=1))
    want = _rnn_grad_xs(W.astype(np.float64), h0.astype(np.float64), xs.astype(np.float64))
    np.testing.assert_allclose(np.asarray(g(h0, xs)), want, rtol=2e-4, atol=2e-5)
    after = _after(xcs.explain(g, h0, xs))
    assert sum("= scatter_add(" in line for line in after) == 1


def test_grad_of_overlapping_and_strided_views(rng):
    """Pieces that overlap, step, reverse or pick single elements add up."""
    x = rng.standard_normal(30)

    def f(x):
        s = 0.0
        for t in range(0, 25, 2):
            s = s + (x[t:t + 5] ** 2).sum()  # overlapping windows
        return s + (x[::3] * x[::-3]).sum() + x[7] * x[8] + np.sin(x[1:-1:4]).sum()

    want = np.zeros(30)
    for t in range(0, 25, 2):
        want[t:t + 5] += 2 * x[t:t + 5]
    want[::3] += x[::-3]
    want[::-3] += x[::3]
    want[7] += x[8]
    want[8] += x[7]
    want[1:-1:4] += np.cos(x[1:-1:4])
    np.testing.assert_allclose(np.asarray(grad(f)(x)), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jit(grad(f))(x)), want, rtol=1e-12, atol=1e-12)


def test_long_unrolled_loop_with_all_ys_live(rng):
    """2000 unrolled steps whose ys all live until they are stacked: the
    memory plan gives each its own place."""
    T, H = 2000, 4
    W = (rng.standard_normal((H, H)) * 0.4).astype(np.float32)
    xs = rng.standard_normal((T, H)).astype(np.float32)

    def cell(h, x):
        h = np.tanh(h @ W + x)
        return h, (h.sum(), h * 2)

    def f(h0, xs):
        c, ys = _unrolled(cell, h0, xs)
        return c, (np.stack([y[0] for y in ys]), np.stack([y[1] for y in ys]))

    c, (s, y2) = jit(f)(np.zeros(H, np.float32), xs)
    h, rs, ry = np.zeros(H), [], []
    for x in xs.astype(np.float64):
        h = np.tanh(h @ W + x)
        rs.append(h.sum())
        ry.append(h * 2)
    np.testing.assert_allclose(np.asarray(c), h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(s), rs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(y2), ry, rtol=1e-4, atol=1e-4)


def test_vmap_of_a_scan_with_many_ys(rng):
    """vmap replays a scan's stacked ys, a concatenate of T inputs (once
    refused above 64), for every example at once."""
    T, H, B = 150, 4, 5
    W = (rng.standard_normal((H, H)) * 0.4).astype(np.float32)
    xs = rng.standard_normal((T, H)).astype(np.float32)
    h0s = rng.standard_normal((B, H)).astype(np.float32)

    def run(h0):
        def cell(h, x):
            h = np.tanh(h @ W + x)
            return h, h.sum()
        return scan(cell, h0, xs)[1]

    got = np.asarray(jit(xcs.vmap(run))(h0s))
    want = []
    for h in h0s.astype(np.float64):
        ys = []
        for x in xs.astype(np.float64):
            h = np.tanh(h @ W + x)
            ys.append(h.sum())
        want.append(ys)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-4)
