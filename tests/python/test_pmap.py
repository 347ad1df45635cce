"""pmap and collectives (psum, pmean, pmax, all_gather): results equal vmap
and numpy for every number of shards 1..8, collectives on values that do
and do not depend on the shard, gradients through collectives, closures over
an enclosing trace's values (grad/vmap/jit composition), and errors."""
import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import all_gather, grad, jit, pmap, pmax, pmean, psum, vmap


def body(x, w):
    s = psum(x, "i")
    return x / s, pmean(x * w, "i"), pmax(x.sum(), "i"), all_gather(x[0], "i"), psum(w, "i")


@pytest.mark.parametrize("shards", range(1, 9))
def test_collectives_for_every_shard_count(shards, rng):
    x = rng.uniform(0.5, 2.0, size=(shards, 3))
    w = rng.standard_normal(3)
    a, m, mx, gathered, sw = pmap(body, axis_name="i", in_axes=(0, None))(x, w)
    np.testing.assert_allclose(np.asarray(a), x / x.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(m), np.broadcast_to((x * w).mean(axis=0), (shards, 3)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(mx), np.full(shards, x.sum(axis=1).max()), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gathered), np.broadcast_to(x[:, 0], (shards, shards)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sw), np.broadcast_to(w * shards, (shards, 3)), rtol=1e-12)
    # pmap equals vmap with the same axis name
    v = vmap(body, axis_name="i", in_axes=(0, None))(x, w)
    for p_, v_ in zip((a, m, mx, gathered, sw), v):
        np.testing.assert_allclose(np.asarray(p_), np.asarray(v_), rtol=1e-12)


def test_gradients_through_collectives_and_closures(rng):
    x = rng.uniform(0.5, 2.0, size=(4, 3))
    w = rng.standard_normal(3)

    def total(w):
        return pmap(lambda v: (v * w / psum(v * w, "i")).sum(), axis_name="i")(x).sum()
    np.testing.assert_allclose(np.asarray(grad(total)(w)), 0.0, atol=1e-12)  # the total is always 3
    pg = pmap(grad(lambda v: psum(v * v, "i").sum()), axis_name="i")(x)
    np.testing.assert_allclose(np.asarray(pg), 2 * x * 4, rtol=1e-12)

    def loss(w, v):
        return np.tanh(v @ w).sum()
    W, xs = rng.standard_normal((3, 2)), rng.standard_normal((5, 3))
    g1 = grad(lambda W: vmap(lambda v: loss(W, v))(xs).sum())(W)  # closes over the traced W
    g2 = grad(lambda W: sum(loss(W, xs[i]) for i in range(5)))(W)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-12)
    g3 = jit(lambda W: grad(lambda v: loss(W, v))(xs[0]))(W)  # grad inside jit, closing over a jit tracer
    np.testing.assert_allclose(np.asarray(g3), np.asarray(grad(loss, argnums=1)(W, xs[0])), rtol=1e-12)


def test_nested_axis_names(rng):
    x = rng.standard_normal((2, 3, 4))
    f = pmap(vmap(lambda v: v - pmean(v, "inner") + psum(v, "outer") * 0, axis_name="inner"), axis_name="outer")
    np.testing.assert_allclose(np.asarray(f(x)), x - x.mean(axis=1, keepdims=True), rtol=1e-12, atol=1e-12)


def test_errors(rng):
    x = rng.standard_normal((3, 2))
    with pytest.raises(xcs.XCSError, match="unbound axis name 'j'"):
        pmap(lambda v: psum(v, "j"), axis_name="i")(x)
    with pytest.raises(xcs.XCSError, match="collectives run inside"):
        jit(lambda v: psum(v, "i"))(x)
    with pytest.raises(xcs.XCSError, match="unknown or unavailable device"):
        pmap(lambda v: v, devices=["tpu:0"])(x)
    np.testing.assert_allclose(np.asarray(pmap(lambda v: v * 2, devices=["cpu"])(x)), x * 2)


def test_pmax_gradient_goes_to_the_max_and_splits_ties(rng):
    x = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 0.5]])
    g = grad(lambda x: pmap(lambda v: pmax(v, "i").sum(), axis_name="i")(x).sum())(x)
    # each of the 3 shards' outputs depends on the max: 3 units of cotangent per column,
    # all to the argmax, split between the two tied 5.0s
    np.testing.assert_allclose(np.asarray(g), [[0, 1.5], [3, 1.5], [0, 0]])


def test_vmap_maps_keyword_arguments(rng):
    x, s = rng.standard_normal((4, 3)), rng.standard_normal(4)
    f = vmap(lambda x, scale=1.0: x * scale)
    np.testing.assert_allclose(np.asarray(f(x, scale=s)), x * s[:, None])
    np.testing.assert_allclose(np.asarray(f(x, scale=s)), x * s[:, None])  # cached


def test_axis_index_and_all_gather_gradient(rng):
    from ember.xcs import axis_index
    x = rng.standard_normal((5, 3))
    idx = pmap(lambda v: axis_index("i") * 1, axis_name="i")(x)
    np.testing.assert_array_equal(np.asarray(idx), np.arange(5))
    w = rng.standard_normal((5, 5, 3))  # per shard, weights over the gathered rows

    def f(x):
        return pmap(lambda v, wi: (all_gather(v, "i") * wi).sum(), axis_name="i")(x, w).sum()
    # d/dx_j = sum over shards i of w[i, j]
    np.testing.assert_allclose(np.asarray(grad(f)(x)), w.sum(axis=0), rtol=1e-12)
