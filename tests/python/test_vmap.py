"""vmap: batching rules checked against a Python loop of the un-mapped
function, for every in_axes / out_axes form, nested vmap, composition with
grad and jit (per-example gradients), the error rules, and the concurrent
map of orchestration functions."""
import threading
import time

import numpy as np
import pytest

import ember.xcs as xcs
from ember.api.decorators import mark_orchestration
from ember.xcs import grad, jit, nn, vmap


def loop(fn, args, in_axes, out_axis=0):
    """The reference: fn per example, results stacked on out_axis."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
    B = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = [fn(*[np.take(a, i, axis=ax) if ax is not None else a for a, ax in zip(args, axes)]) for i in range(B)]
    if isinstance(outs[0], tuple):
        return tuple(np.stack([np.asarray(o[j]) for o in outs], axis=out_axis) for j in range(len(outs[0])))
    return np.stack([np.asarray(o) for o in outs], axis=out_axis)


def close(got, want, tol=1e-10):
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            close(g, w, tol)
        return
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


def mlp(x, w1, w2):
    return nn.softmax(np.tanh(x @ w1) @ w2, axis=-1)


PROGRAMS = [
    ("elementwise", lambda x, y: np.exp(-x * x) + y * 2, [(4, 3), (4, 3)]),
    ("reduce", lambda x, y: (x * y).sum(axis=0) + x.max(), [(4, 3), (4, 3)]),
    ("matmul", lambda x, y: x @ y.T, [(4, 3), (2, 3)]),
    ("mlp", lambda x, w1, w2: mlp(x, w1, w2), [(5,), (5, 4), (4, 3)]),
    ("views", lambda x, y: (x.T[::-1, 1:] * y[1:, :].T).reshape(-1), [(4, 3), (4, 3)]),
    ("concat_take", lambda x, y: np.concatenate([x[np.array([2, 0])], y], axis=0).argmax(axis=1), [(4, 3), (4, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", PROGRAMS, ids=[p[0] for p in PROGRAMS])
@pytest.mark.parametrize("axes_kind", ["all0", "first_only", "last", "mixed"])
def test_vmap_equals_python_loop(name, fn, shapes, axes_kind, rng):
    B = 6
    n = len(shapes)
    if axes_kind == "all0":
        in_axes = 0
    elif axes_kind == "first_only":
        in_axes = (0,) + (None,) * (n - 1)
    elif axes_kind == "last":
        in_axes = tuple(len(s) for s in shapes)  # a new trailing axis
    else:
        in_axes = tuple((i % 2) * len(shapes[i]) if i % 2 else 0 for i in range(n))
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * n
    args = []
    for s, ax in zip(shapes, axes):
        if ax is None:
            args.append(rng.standard_normal(s))
        else:
            full = list(s)
            full.insert(ax, B)
            args.append(rng.standard_normal(full))
    got = vmap(fn, in_axes=in_axes)(*args)
    close(got, loop(fn, args, in_axes))


@pytest.mark.parametrize("out_axes", [0, 1, -1])
def test_out_axes_and_unbatched_outputs(out_axes, rng):
    x = rng.standard_normal((5, 3, 4))
    w = rng.standard_normal((4, 2))
    f = vmap(lambda x, w: (x @ w, w.sum()), in_axes=(0, None), out_axes=(out_axes, None))
    y, s = f(x, w)
    close(y, loop(lambda x: x @ w, [x], 0, out_axis=out_axes))
    np.testing.assert_allclose(float(np.asarray(s)), w.sum())
    # an output that does not depend on the mapped axis is broadcast for an int out_axes
    c = vmap(lambda x, w: w * 2, in_axes=(0, None))(x, w)
    assert c.shape == (5, 4, 2)
    with pytest.raises(xcs.XCSError, match="out_axes=None requires identical outputs"):
        vmap(lambda x: x * 2, out_axes=None)(x)


def test_pytree_in_axes_and_axis_size(rng):
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal((7, 2))}
    xs = rng.standard_normal((7, 3))
    f = vmap(lambda p, x: x @ p["w"] + p["b"], in_axes=({"w": None, "b": 0}, 0))
    close(f(params, xs), xs @ params["w"] + params["b"])
    g = vmap(lambda c: c * np.ones(2), in_axes=None, axis_size=3)(np.float64(2.0))
    np.testing.assert_array_equal(np.asarray(g), np.full((3, 2), 2.0))


def test_nested_vmap_and_composition(rng):
    x, y = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    f = lambda a, b: np.tanh(a) * b  # noqa: E731
    close(vmap(vmap(f))(x, y), np.tanh(x) * y)
    close(jit(vmap(f))(x, y), np.tanh(x) * y)
    close(vmap(jit(f))(x, y), np.tanh(x) * y)
    # per-example gradients: vmap(grad) equals a loop of grad
    w = rng.standard_normal((5, 3))

    def loss(w, x):
        return (nn.log_softmax(x @ w, axis=-1) ** 2).sum()
    xs = rng.standard_normal((8, 5))
    per = vmap(grad(loss), in_axes=(None, 0))(w, xs)
    want = np.stack([np.asarray(grad(loss)(w, xs[i])) for i in range(8)])
    close(per, want, 1e-9)
    # grad of a vmapped function equals the gradient of the loop
    total = grad(lambda w: vmap(loss, in_axes=(None, 0))(w, xs).sum())(w)
    close(total, want.sum(axis=0), 1e-9)
    # one compiled program for the whole batch
    g = vmap(f)
    g(x, y)
    g(x, y)
    assert g._xcs_jit.stats()["traces"] == 1 and g._xcs_jit.stats()["hits"] == 1


def test_per_example_gather_indices(rng):
    x = rng.standard_normal((4, 6, 3))
    idx = rng.integers(-6, 6, size=(4, 2))
    close(vmap(lambda a, i: np.take(a, i, axis=0))(x, idx), loop(lambda a, i: np.take(a, i, axis=0), [x, idx], 0))
    close(vmap(lambda a, i: np.take(a, i, axis=1), in_axes=(None, 0))(x[0], idx % 3),
          loop(lambda i: np.take(x[0], i, axis=1), [idx % 3], 0))


def test_errors(rng):
    x = rng.standard_normal((3, 2))
    with pytest.raises(xcs.XCSError, match="Mismatched batch dimensions"):
        vmap(lambda a, b: a + b)(x, rng.standard_normal((4, 2)))
    with pytest.raises(xcs.XCSError, match="axis_size"):
        vmap(lambda a: a, in_axes=None)(x)
    with pytest.raises(xcs.XCSError, match="only 2 dimension"):
        vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(xcs.XCSError, match="in_axes has 1 entries"):
        vmap(lambda a, b: a, in_axes=(0,))(x, x)
    with pytest.raises(xcs.XCSError, match="does not match"):
        vmap(lambda p: p["a"], in_axes=({"b": 0},))({"a": x})


def test_orchestration_functions_map_concurrently():
    calls, lock = [], threading.Lock()

    @mark_orchestration
    def llm(prompt):
        time.sleep(0.1)
        with lock:
            calls.append(prompt)
        return f"<{prompt}>"

    def rate(q, score):
        return {"text": llm(f"{q} {float(score):.1f}"), "score": float(score) * 2}

    t0 = time.perf_counter()
    out = vmap(rate, in_axes=(0, 0))(np.array(["a", "b", "c", "d", "e", "f", "g", "h"]), np.arange(8.0))
    assert time.perf_counter() - t0 < 0.35  # 8 x 100 ms, concurrently
    assert out["text"] == [f"<{q} {i:.1f}>" for q, i in zip("abcdefgh", range(8))]  # strings stay a list, in order
    np.testing.assert_array_equal(np.asarray(out["score"]), np.arange(8.0) * 2)  # numbers are stacked
    assert sorted(calls) == sorted(f"{q} {i:.1f}" for q, i in zip("abcdefgh", range(8)))
    # max_workers bounds it
    calls.clear()
    t0 = time.perf_counter()
    vmap(rate, config=xcs.Config(max_workers=2))(np.array(list("abcd")), np.arange(4.0))
    assert time.perf_counter() - t0 >= 0.19


def test_orchestration_map_examples_run_their_calls_concurrently():
    @mark_orchestration
    def llm(p):
        time.sleep(0.1)
        return p * 2

    def two_calls(q):  # two independent calls per example
        return llm(q) + llm(q + 1)

    t0 = time.perf_counter()
    out = vmap(two_calls)(np.arange(4.0))
    assert time.perf_counter() - t0 < 0.18  # 4 examples x 2 calls, all overlapped: about one latency
    np.testing.assert_array_equal(np.asarray(out), [2 * q + 2 * (q + 1) for q in range(4)])


# ---------------------------------------------------------------- mixed functions: tensor parts batched


@pytest.fixture
def patient(monkeypatch):
    """Batches close when every example has come, never by time: what each
    test counts does not depend on the machine's speed."""
    from ember.xcs import _orchestration as orch

    monkeypatch.setattr(orch, "BATCH_WINDOW_S", 60.0)
    monkeypatch.setattr(orch, "BATCH_MAX_WAIT_S", 60.0)
    monkeypatch.setattr(orch, "BATCH_PAYOFF", float("inf"))


def test_mixed_tensor_parts_run_as_one_batched_program(patient, rng):
    import ember.xcs.numpy as xnp

    W, b = rng.standard_normal((6, 5)), rng.standard_normal(5)
    got = {}

    @mark_orchestration
    def score(h, k):
        got[int(k)] = np.array(h)  # a concrete array, this example's row
        time.sleep(0.01 * (int(k) % 3))  # the examples come back at different times
        return float(np.sum(h)) + k

    def f(x, k):
        h = xnp.tanh(x @ W + b)  # before the call: batched
        s = score(h, k)
        return h * 2.0 + k, s, xnp.exp(h) * s  # after it, on h and the call's result: batched too

    B = 12
    xs, ks = rng.standard_normal((B, 6)), np.arange(B, dtype=np.float64)
    vf = vmap(f)
    h2, s, e = vf(xs, ks)
    ref = np.tanh(xs @ W + b)
    np.testing.assert_allclose(np.asarray(h2), ref * 2 + ks[:, None], rtol=1e-12, atol=1e-12)
    # (a sum may cancel to near zero: an ulp of its terms is the absolute tolerance)
    np.testing.assert_allclose(np.asarray(s), ref.sum(1) + ks, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(e), np.exp(ref) * (ref.sum(1) + ks)[:, None], rtol=1e-12, atol=1e-12)
    for k in range(B):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-12)
    assert vf._xcs_vmap_state["batches"] == [B, B]  # two programs for the whole batch, not 2 x 12


def test_mixed_examples_with_different_programs_group(patient, rng):
    import ember.xcs.numpy as xnp

    @mark_orchestration
    def tool(v):
        return float(np.max(v))

    def f(x, k):
        h = xnp.sin(x)
        if int(k) % 2:  # odd examples run another program
            h = h * 3.0 + xnp.cos(x)
        return tool(h), h.sum()

    B = 8
    xs, ks = rng.standard_normal((B, 5)), np.arange(B)
    vf = vmap(f)
    m, tot = vf(xs, ks)
    ref = np.where((ks % 2)[:, None] == 1, np.sin(xs) * 3 + np.cos(xs), np.sin(xs))
    np.testing.assert_allclose(np.asarray(m), ref.max(1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tot), ref.sum(1), rtol=1e-12, atol=1e-12)  # (sums may cancel)
    # the tool's argument: a program per parity; the sums read computed h: one program for all
    assert sorted(vf._xcs_vmap_state["batches"]) == [4, 4, B]


def test_mixed_error_belongs_to_its_example(patient):
    import ember.xcs.numpy as xnp

    calls = []

    @mark_orchestration
    def tool(v):
        calls.append(int(np.asarray(v)[0]))
        return 1

    def f(x, d):
        return tool(x // d)  # integer division: example 2 divides by zero

    xs = np.arange(12, dtype=np.int64).reshape(4, 3) + 10
    ds = np.array([[1, 1, 1], [2, 2, 2], [0, 1, 1], [5, 5, 5]], dtype=np.int64)
    with pytest.raises(xcs.XCSError, match="division by zero"):
        vmap(f)(xs, ds)
    assert sorted(calls) == sorted([10, 13 // 2, 19 // 5])  # the batch failed; the others still ran their calls


def test_mixed_bounded_workers_and_no_window(rng, monkeypatch):
    """More examples than workers: batches of at most max_workers; with no
    window at all every example still finishes (it computes alone)."""
    import ember.xcs.numpy as xnp
    from ember.xcs import _orchestration as orch

    @mark_orchestration
    def tool(v):
        time.sleep(0.005)
        return float(np.sum(v))

    def f(x):
        return tool(xnp.square(x)), x * 2.0

    xs = rng.standard_normal((7, 4))
    for window in (60.0, 0.0):
        monkeypatch.setattr(orch, "BATCH_WINDOW_S", window)
        monkeypatch.setattr(orch, "BATCH_MAX_WAIT_S", window)
        monkeypatch.setattr(orch, "BATCH_PAYOFF", float("inf"))
        vf = vmap(f, config=xcs.Config(max_workers=3))
        s, d = vf(xs)
        np.testing.assert_allclose(np.asarray(s), (xs ** 2).sum(1), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(d), xs * 2, rtol=1e-12)
        sizes = vf._xcs_vmap_state["batches"]
        assert all(n <= 3 for n in sizes)
        if window:
            assert sum(sizes) >= 7  # the first program of every example ran batched


def test_call_arguments_stay_lazy_in_the_body(rng):
    """An array passed to an orchestration call is computed for the call and
    stays lazy in the body; one inside a container type the call path
    cannot rebuild (a list subclass) is computed in place."""
    import ember.xcs.numpy as xnp

    class Box(list):
        pass

    seen = []

    @mark_orchestration
    def tool(a, box):
        seen.append((type(a).__name__, xcs._xcs._is_traced(a), xcs._xcs._is_traced(box[0])))
        return np.asarray(a).sum() + np.asarray(box[0]).sum()

    @jit
    def f(x):
        h = xnp.tanh(x)
        g = xnp.exp(x)
        s = tool(h, Box([g]))
        traced = (xcs._xcs._is_traced(h), xcs._xcs._is_traced(g))
        return h * 2.0 + s, g + 1.0, traced

    x = rng.standard_normal(5)
    out, g1, traced = f(x)
    assert seen == [("Array", False, False)]
    assert traced == (True, False)  # h stays lazy; g (in the Box) was computed in place
    s = np.tanh(x).sum() + np.exp(x).sum()
    np.testing.assert_allclose(np.asarray(out), np.tanh(x) * 2 + s, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(g1), np.exp(x) + 1, rtol=1e-12)
