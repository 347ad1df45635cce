"""pmap and collectives (psum, pmean, pmax, all_gather): results equal vmap
and numpy for every number of shards 1..8, collectives on values that do
and do not depend on the shard, gradients through collectives, closures over
an enclosing trace's values (grad/vmap/jit composition), and errors."""
import functools

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


@pytest.mark.parametrize("outer_map", [pmap, vmap])
def test_collectives_over_an_outer_axis_inside_an_inner_map(outer_map, rng):
    """A collective names its map: one over the outer axis, met inside the
    inner map, reduces over the outer examples (for each inner one), not
    over the inner axis (which it once did, silently)."""
    x = rng.standard_normal((3, 4, 5))
    o = lambda f: outer_map(vmap(f, axis_name="inner"), axis_name="outer")  # noqa: E731
    S = x.sum(axis=0)
    np.testing.assert_allclose(np.asarray(o(lambda v: psum(v, "outer"))(x)), np.broadcast_to(S, x.shape), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(o(lambda v: pmax(v, "outer") + psum(v, "inner"))(x)),
                               x.max(axis=0) + x.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(o(lambda v: v - pmean(v, "outer"))(x)), x - x.mean(axis=0), rtol=1e-12,
                               atol=1e-12)
    g = np.asarray(o(lambda v: all_gather(v, "outer"))(x))  # example (i, j) sees x[:, j]
    np.testing.assert_allclose(g, np.broadcast_to(np.moveaxis(x, 0, 1)[None], (3, 4, 3, 5)))
    from ember.xcs import axis_index
    idx = np.asarray(o(lambda v: axis_index("outer") * 10 + axis_index("inner"))(x))
    np.testing.assert_array_equal(idx, np.arange(3)[:, None] * 10 + np.arange(4)[None, :])
    # differentiated inside both maps: the VJP of the outer psum is an outer psum too
    gr = o(grad(lambda v: (psum(v, "outer") * v).sum()))(x)
    np.testing.assert_allclose(np.asarray(gr), 2 * np.broadcast_to(S, x.shape), rtol=1e-12)
    gi = o(grad(lambda v: (psum(v, "inner") * v).sum()))(x)
    np.testing.assert_allclose(np.asarray(gi), 2 * x.sum(axis=1, keepdims=True) + 0 * x, rtol=1e-12)
    # through an enclosing jit and a gradient of the whole
    j = jit(lambda x: o(lambda v: psum(v, "outer") * v)(x))
    np.testing.assert_allclose(np.asarray(j(x)), S * x, rtol=1e-12)
    gw = grad(lambda x: o(lambda v: (psum(v, "outer") ** 2).sum())(x).sum())(x)
    np.testing.assert_allclose(np.asarray(gw), 2 * 3 * np.broadcast_to(S, x.shape), rtol=1e-12)


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


# ---------------------------------------------------------------- over several devices
# In CI the mock device (CTest python_mock_cuda, XCS_MOCK_DEVICES=2) has two
# GPUs whose kernels fail when handed memory of another device; on a
# one-GPU machine "cpu" and "cuda:0" make two devices.

_GPUS = [f"cuda:{g['ordinal']}" for g in xcs.devices()[1].get("gpus", [])] if xcs.devices()[1]["available"] else []
_TWO = _GPUS if len(_GPUS) >= 2 else (["cpu", _GPUS[0]] if _GPUS else [])
two_devices = pytest.mark.skipif(len(_TWO) < 2, reason="needs a GPU (two devices: two GPUs, or the CPU and a GPU)")


@two_devices
@pytest.mark.parametrize("B", [1, 2, 3, 7, 16])
def test_split_over_devices_equals_numpy(B, rng):
    x, w, b = rng.standard_normal((B, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)

    def f(v, w, b):
        h = np.tanh(v @ w + b)
        return {"h": h, "s": h.sum()}, v * 2

    m = pmap(f, in_axes=(0, None, None), devices=_TWO)
    out, dbl = m(x, w, b)
    h = np.tanh(x @ w + b)
    np.testing.assert_allclose(np.asarray(out["h"]), h, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(out["s"]), h.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(dbl), x * 2)
    state = m._xcs_pmap_state
    assert not state["one_device"]
    assert state.get("last_devices") == (_TWO[:B] if B >= 2 else None)  # one shard: not split
    # again: each device's program is cached
    out2, _ = m(x + 1, w, b)
    np.testing.assert_allclose(np.asarray(out2["h"]), np.tanh((x + 1) @ w + b), rtol=1e-12)


@two_devices
def test_split_out_axes_and_unmapped_outputs(rng):
    x, c = rng.standard_normal((6, 3, 2)), rng.standard_normal(2)
    m = pmap(lambda v, c: (v + c, c * 3), in_axes=(1, None), out_axes=(2, None), devices=_TWO)
    a, cc = m(x, c)
    np.testing.assert_allclose(np.asarray(a), np.moveaxis(np.moveaxis(x, 1, 0) + c, 0, 2))
    np.testing.assert_allclose(np.asarray(cc), c * 3)
    assert not m._xcs_pmap_state["one_device"]


@two_devices
@pytest.mark.parametrize("B", [2, 5, 8])
def test_collectives_over_the_split_axis_run_in_stages(B, rng):
    """Collectives the function calls in its own body are combined across the
    devices on the host, one stage each: every block computes up to the
    collective, the host combines the blocks' parts in block order, and
    every block goes on with the whole axis's result."""
    x = rng.uniform(0.5, 2.0, size=(B, 3))
    w = rng.standard_normal(3)
    from ember.xcs import axis_index

    def f(v, w):
        s = psum(v, "i")  # stage 1
        m = pmax((v / s).sum(), "i")  # stage 2, from stage 1's result
        g = all_gather(v[0] * w[0], "i")  # stage 3
        c = psum(w, "i")  # the same in every example, but traced: a stage too
        return v / s + m, pmean(v * w, "i"), g * 1.0, c, axis_index("i") * 1
    m = pmap(f, axis_name="i", in_axes=(0, None), devices=_TWO)
    got = m(x, w)
    want = vmap(f, axis_name="i", in_axes=(0, None))(x, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
    st = m._xcs_pmap_state
    assert not st["one_device"] and st["last_stages"] == 5  # psum, pmax, all_gather, psum(w), pmean's psum
    np.testing.assert_array_equal(np.asarray(got[4]), np.arange(B))
    got2 = m(x * 2, w)  # the stages are cached
    for a, b in zip(got2, vmap(f, axis_name="i", in_axes=(0, None))(x * 2, w)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


@two_devices
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_sums_across_devices_round_once(dtype, rng):
    """A 16-bit psum travels between the stages in float32: the same bits as
    one device's psum (float32 accumulation, rounded once)."""
    import ml_dtypes

    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(np.float16)
    f = lambda v: (psum(v, "i"), pmean(v * 3, "i"))  # noqa: E731
    m = pmap(f, axis_name="i", devices=_TWO)
    for _ in range(10):
        x = (rng.uniform(0, 100, size=(7, 5))).astype(dt)
        for a, b in zip(m(x), vmap(f, axis_name="i")(x)):
            a, b = np.asarray(a), np.asarray(b)
            assert a.dtype == b.dtype == dt
            np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


@two_devices
def test_data_parallel_step_in_stages(rng):
    """The data-parallel pattern: per-shard gradients, psum'd in the body,
    then the update: equal to one device's."""
    W, xs, ys = rng.standard_normal((4, 3)), rng.standard_normal((6, 5, 4)), rng.standard_normal((6, 5, 3))

    def loss(W, x, y):
        return ((np.tanh(x @ W) - y) ** 2).mean()

    def step(W, x, y):
        g = grad(loss)(W, x, y)
        return W - 0.1 * pmean(g, "i"), psum(loss(W, x, y), "i")
    m = pmap(step, axis_name="i", in_axes=(None, 0, 0), devices=_TWO)
    W2, total = m(W, xs, ys)
    W2v, totalv = vmap(step, axis_name="i", in_axes=(None, 0, 0))(W, xs, ys)
    np.testing.assert_allclose(np.asarray(W2), np.asarray(W2v), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(total), np.asarray(totalv), rtol=1e-12)
    assert not m._xcs_pmap_state["one_device"] and m._xcs_pmap_state["last_stages"] == 2


# ---------------------------------------------------------------- combining on the GPUs (NCCL)

two_gpus = pytest.mark.skipif(len(_GPUS) < 2, reason="needs two GPUs (in CI: the mock's, XCS_MOCK_DEVICES=2)")
_MOCK = bool(_GPUS) and xcs.devices()[1]["gpus"][0]["name"] == "xcs mock device"


def _staged_body(v, w):
    s = psum(v, "i")
    g = all_gather(v * w, "i")  # blocks of uneven rows
    return v / s + pmax(v.max(), "i"), g.sum(axis=0), pmean(v, "i")


@two_gpus
@pytest.mark.parametrize("nccl", [True, False])
def test_staged_collectives_combine_on_the_gpus(nccl, rng, monkeypatch):
    """Over blocks on GPUs of their own, a stage's parts are combined device to
    device (NCCL, the mock's stand-in in CI) and each GPU goes on with its own
    copy; without NCCL the host combines them.  The same results either way."""
    if not nccl:
        if not _MOCK:
            pytest.skip("turning NCCL off is tested on the mock (XCS_NCCL=0, which the real module reads once)")
        monkeypatch.setenv("XCS_NCCL", "0")
    x, w = rng.uniform(0.5, 2.0, size=(5, 3)), rng.standard_normal(3)
    m = pmap(_staged_body, axis_name="i", in_axes=(0, None), devices=_GPUS)
    for scale in (1.0, 3.0):  # again: the stages and the communicators are reused
        got, want = m(x * scale, w), vmap(_staged_body, axis_name="i", in_axes=(0, None))(x * scale, w)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)
    st = m._xcs_pmap_state
    assert not st["one_device"] and st["last_stages"] == 4
    if _MOCK:
        assert st["collectives"] == ("device" if nccl else "host: NCCL is turned off (XCS_NCCL=0)")
    else:  # real GPUs: on them, or on the host with the reason (no NCCL)
        assert st["collectives"] == "device" or st["collectives"].startswith("host: "), st["collectives"]


def test_device_collective_bad_input():
    """The entry never crashes on what it is handed: a reason for what the
    host can still combine, an error for what is not a list of parts."""
    from ember.xcs import _xcs

    with pytest.raises(TypeError):
        _xcs._device_collective("psum", 5)
    with pytest.raises(TypeError):
        _xcs._device_collective(None, [])
    assert _xcs._device_collective("psum", []) == "0 parts (1 to 16)"
    assert _xcs._device_collective("pmax", [np.ones(2)] * 17) == "17 parts (1 to 16)"
    assert _xcs._device_collective("psum", [None]) == "part 0 is not an xcs Array"
    assert _xcs._device_collective("all_gather", [xcs.asarray(np.ones(3))]) == "part 0 is on the host"
    with pytest.raises(xcs.XCSTracerError):
        jit(lambda v: _xcs._device_collective("psum", [v]))(np.ones(2))


@two_gpus
def test_device_collective_entry(rng):
    """_device_collective, the entry pmap's stages use: psum / pmax / all_gather
    of device Arrays on distinct GPUs, one result per part on the part's GPU;
    a reason (str) where it cannot be, an XCSError for bad parts."""
    from ember.xcs import _xcs

    gpus = _GPUS[:3]
    put = lambda arrays: [xcs.device_put(a, g) for a, g in zip(arrays, gpus)]  # noqa: E731
    for dt in (np.float32, np.float64, np.int32, np.int64, np.float16):
        parts = [rng.uniform(-50, 50, size=(3, 4)).astype(dt) for _ in gpus]
        for kind, fold in (("psum", np.add), ("pmax", np.maximum)):
            res = _xcs._device_collective(kind, put(parts))
            if isinstance(res, str):
                assert not _MOCK, res
                pytest.skip(f"no device collectives here: {res}")
            want = functools.reduce(fold, parts)  # in block order, as NCCL's ranks
            assert [r.device for r in res] == gpus
            for r in res:
                assert r.dtype == dt
                np.testing.assert_allclose(np.asarray(r), want, rtol={np.float32: 1e-6, np.float16: 2e-3}.get(dt, 1e-12))
    rows = [rng.standard_normal((n, 2)) for n in (2, 5, 1)[: len(gpus)]]  # uneven blocks
    res = _xcs._device_collective("all_gather", put(rows))
    for r, g in zip(res, gpus):
        assert r.device == g
        np.testing.assert_array_equal(np.asarray(r), np.concatenate(rows))
    flags = [rng.random(6) < 0.3 for _ in gpus]
    np.testing.assert_array_equal(np.asarray(_xcs._device_collective("pmax", put(flags))[0]),
                                  functools.reduce(np.logical_or, flags))
    # what cannot be combined on the devices: a reason, for the host to do it
    assert "bool" in _xcs._device_collective("psum", put(flags))
    assert _xcs._device_collective("psum", [xcs.device_put(rows[0], gpus[0]), np.ones(2)]) == \
        "part 1 is not an xcs Array"
    assert _xcs._device_collective("psum", [xcs.device_put(rows[0], gpus[0]), xcs.asarray(rows[0])]) == \
        "part 1 is on the host"
    # bad parts
    a = xcs.device_put(rows[0], gpus[0])
    with pytest.raises(xcs.XCSValueError, match="both on"):
        _xcs._device_collective("psum", [a, a])
    with pytest.raises(xcs.XCSShapeError, match="differ"):
        _xcs._device_collective("psum", [a, xcs.device_put(rows[0].astype(np.float32), gpus[1])])
    with pytest.raises(xcs.XCSShapeError, match="differ"):
        _xcs._device_collective("all_gather", [a, xcs.device_put(np.ones((2, 3)), gpus[1])])
    with pytest.raises(xcs.XCSValueError, match="unknown collective"):
        _xcs._device_collective("pmin", [a])


@two_devices
def test_collectives_that_cannot_be_staged_run_on_one_device(rng):
    x = rng.uniform(0.5, 2.0, size=(5, 3))
    # inside grad: the gradient goes through the psum
    g = pmap(grad(lambda v: (psum(v * v, "i") * v).sum()), axis_name="i", devices=_TWO)
    np.testing.assert_allclose(np.asarray(g(x)), np.asarray(vmap(grad(lambda v: (psum(v * v, "i") * v).sum()),
                                                                 axis_name="i")(x)), rtol=1e-12)
    assert g._xcs_pmap_state["one_device"]
    # inside an inner map, over the outer (split) axis
    y = rng.standard_normal((4, 3, 2))
    h = pmap(vmap(lambda v: v - pmean(v, "i"), axis_name="j"), axis_name="i", devices=_TWO)
    np.testing.assert_allclose(np.asarray(h(y)), y - y.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert h._xcs_pmap_state["one_device"]
    np.testing.assert_allclose(np.asarray(h(y * 2)), 2 * (y - y.mean(axis=0)), rtol=1e-12, atol=1e-12)  # remembered
    # a collective over an inner map's axis only: split, no stage
    inner = pmap(vmap(lambda v: v - pmean(v, "j"), axis_name="j"), axis_name="i", devices=_TWO)
    np.testing.assert_allclose(np.asarray(inner(y)), y - y.mean(axis=1, keepdims=True), rtol=1e-12, atol=1e-12)
    assert not inner._xcs_pmap_state["one_device"] and inner._xcs_pmap_state["last_stages"] == 0


@two_devices
def test_split_inside_traces_and_orchestration(rng):
    from ember.api.decorators import mark_orchestration

    x, w = rng.standard_normal((4, 3)), rng.standard_normal(3)
    m = pmap(lambda v, w: np.tanh(v * w).sum(), in_axes=(0, None), devices=_TWO)
    g = grad(lambda w: m(x, w).sum())(w)  # traced: one program
    np.testing.assert_allclose(np.asarray(g), ((1 - np.tanh(x * w) ** 2) * x).sum(axis=0), rtol=1e-10)

    @mark_orchestration
    def tool(v):
        return float(np.asarray(v).sum())

    o = pmap(lambda v: tool(v) + 1.0, devices=_TWO)(x)
    np.testing.assert_allclose(np.asarray(o), x.sum(axis=1) + 1.0)


def test_devices_are_checked(rng):
    x = rng.standard_normal((3, 2))
    with pytest.raises(xcs.XCSError, match="unknown or unavailable device"):
        pmap(lambda v: v, devices=["cuda:99"])(x)
    with pytest.raises(xcs.XCSError, match="at least one device"):
        pmap(lambda v: v, devices=[])(x)
    m = pmap(lambda v: v * 2, devices=["cpu", "cpu"])  # duplicates: one device
    np.testing.assert_allclose(np.asarray(m(x)), x * 2)
    assert "last_devices" not in m._xcs_pmap_state


# ---------------------------------------------------------------- random bodies, split vs one device

_STEPS = ["psum", "pmax", "pmean", "all_gather_sum", "axis_index", "tanh", "mul_w", "sum_keep", "psum_w"]


def _random_body(steps):
    from ember.xcs import axis_index

    def f(v, w):
        for s in steps:
            if s == "psum":
                v = v - psum(v, "i") * 0.25
            elif s == "pmax":
                v = v + pmax(v.max(), "i")
            elif s == "pmean":
                v = v * pmean(v * v, "i")
            elif s == "all_gather_sum":
                v = v + all_gather(v, "i").sum(axis=0) * 0.1
            elif s == "axis_index":
                v = v + axis_index("i") * 0.5
            elif s == "tanh":
                v = np.tanh(v)
            elif s == "mul_w":
                v = v * w
            elif s == "sum_keep":
                v = v - v.sum(keepdims=True) * 0.1
            else:
                v = v + psum(w, "i")
        return v, v.sum()
    return f


@two_devices
def test_random_bodies_split_equal_one_device():
    from hypothesis import given, strategies as st

    @given(steps=st.lists(st.sampled_from(_STEPS), min_size=1, max_size=6), B=st.integers(1, 9),
           seed=st.integers(0, 2**31 - 1))
    def check(steps, B, seed):
        r = np.random.default_rng(seed)
        x, w = r.uniform(-1, 1, size=(B, 3)), r.uniform(-1, 1, size=3)
        f = _random_body(steps)
        got = pmap(f, axis_name="i", in_axes=(0, None), devices=_TWO)(x, w)
        want = vmap(f, axis_name="i", in_axes=(0, None))(x, w)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
    check()
