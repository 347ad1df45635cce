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
