"""scan: against a Python loop (forward and reverse, pytrees, length-only),
its gradient against finite differences, composition (jit(vmap(scan))),
one compiled program per signature, the carry rule, and orchestration
bodies (a sequential loop whose independent calls overlap)."""
import threading
import time

import numpy as np
import pytest

import ember.xcs as xcs
from conftest import assert_same_bits
from ember.api.decorators import mark_orchestration
from ember.xcs import Config, grad, jit, scan, vmap


def py_scan(f, init, xs, reverse=False):
    carry, ys = init, []
    idx = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    out = {}
    for t in idx:
        carry, y = f(carry, xs[t])
        out[t] = y
    return carry, np.stack([np.asarray(out[t]) for t in range(len(xs))])


def rnn(W, U):
    def cell(h, x):
        h2 = np.tanh(h @ W + x @ U)
        return h2, (h2 * h2).sum()
    return cell


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_equals_python_loop(reverse, rng):
    W, U = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((3, 4)) * 0.5
    xs, h0 = rng.standard_normal((12, 3)), rng.standard_normal(4)
    c, ys = scan(rnn(W, U), h0, xs, reverse=reverse)
    rc, rys = py_scan(rnn(W, U), h0, xs, reverse)
    # atol: an element near 0 (a seed in ~1500 has one of ~1e-4) is off by an ulp of the O(1) ones
    np.testing.assert_allclose(np.asarray(c), rc, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(ys), rys, rtol=1e-12, atol=1e-14)


def test_pytrees_and_length(rng):
    def body(carry, x):
        s, n = carry["s"], carry["n"]
        return {"s": s + x["a"] * x["b"], "n": n + 1.0}, (s, x["a"].sum())

    xs = {"a": rng.standard_normal((5, 2)), "b": rng.standard_normal((5, 2))}
    c, (ss, sums) = scan(body, {"s": np.zeros(2), "n": 0.0}, xs)
    np.testing.assert_allclose(np.asarray(c["s"]), (xs["a"] * xs["b"]).sum(axis=0), rtol=1e-12)
    assert float(np.asarray(c["n"])) == 5.0
    np.testing.assert_allclose(np.asarray(sums), xs["a"].sum(axis=1), rtol=1e-12)
    c2, ys2 = scan(lambda c, _: (c * 2.0, c), 1.0, length=4)
    assert float(np.asarray(c2)) == 16.0 and np.asarray(ys2).tolist() == [1.0, 2.0, 4.0, 8.0]


def test_gradient_of_scan_matches_finite_differences(rng):
    W, U = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((2, 3)) * 0.5
    xs, h0 = rng.standard_normal((6, 2)), rng.standard_normal(3)

    def loss(W, h0):
        return scan(rnn(W, U), h0, xs)[1].sum()

    gW, gh = grad(loss, argnums=(0, 1))(W, h0)
    for arg, g in ((0, gW), (1, gh)):
        base = [W, h0]
        num = np.zeros_like(base[arg])
        for i in np.ndindex(num.shape):
            p, m = [b.copy() for b in base], [b.copy() for b in base]
            p[arg][i] += 1e-6
            m[arg][i] -= 1e-6
            num[i] = (float(np.asarray(loss(*p))) - float(np.asarray(loss(*m)))) / 2e-6
        np.testing.assert_allclose(np.asarray(g), num, rtol=1e-5, atol=1e-7)


def test_gradient_through_carries_the_input_does_not_reach(rng):
    """A carry the differentiated input never reaches (scaled, passed
    through, in a dict, next to a closed-over weight; eager and jitted): its
    zero cotangent makes the backward body drop nodes, which once freed a
    constant still read (a crash)."""
    xs = rng.standard_normal(5)
    w, z, one = 1.7, np.float64(0), np.float64(1)
    cases = [  # (loss, its gradient in xs)
        (lambda v: scan(lambda c, x: ((c[0] + x, c[1] * 2.0), x), (z, one), v)[0][0], np.ones(5)),
        (lambda v: scan(lambda c, x: ((c[0], c[1] + x * x), x), (z, one), v)[0][1], 2 * xs),
        (lambda v: scan(lambda c, x: ({"a": c["a"] + w * x, "b": c["b"]}, x), {"a": z, "b": one}, v)[0]["a"],
         np.full(5, w)),
        (lambda v: scan(lambda c, x: ((c[0] * 0.5 + x, c[1] - 1.0), c[1] * x), (z, 3 * one), v)[1].sum(),
         3.0 - np.arange(5.0)),
    ]
    for loss, want in cases:
        np.testing.assert_allclose(np.asarray(grad(loss)(xs)), want, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(jit(grad(loss))(xs)), want, rtol=1e-12)
    gw = grad(lambda w: scan(lambda c, x: ((c[0] + w * x, c[1] * 2.0), x), (z, one), xs)[0][0])(w)
    np.testing.assert_allclose(float(np.asarray(gw)), xs.sum(), rtol=1e-12)


def test_composition_and_single_compile(rng):
    W, U = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((3, 4)) * 0.5
    xs = rng.standard_normal((8, 7, 3))  # 8 sequences of 7 steps
    f = jit(vmap(lambda x: scan(rnn(W, U), np.zeros(4), x)[0]))
    got = np.asarray(f(xs))
    want = np.stack([py_scan(rnn(W, U), np.zeros(4), xs[i])[0] for i in range(8)])
    # the hoisted x @ U (one batched GEMM) sums in another order than numpy's
    # per-step products: an ulp of the O(1) values, which an element near 0
    # (seed 3987687590: 4e-5) cannot carry within rtol alone
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    cell = rnn(W, U)
    for _ in range(3):
        scan(cell, np.zeros(4), xs[0])
    # outside a trace the body is traced once into a loop program (no unrolled program)
    assert len([k for k in xcs.transformations._PROGRAMS if k[0] is cell]) == 1
    assert (cell, False, None) not in xcs.transformations._SCANS


def test_carry_rule_and_errors(rng):
    with pytest.raises(xcs.XCSTypeError, match="carry must keep"):
        scan(lambda c, x: (np.concatenate([c, x]), x), np.zeros(1), np.ones((3, 1)))
    with pytest.raises(xcs.XCSError, match="pass xs or length"):
        scan(lambda c, x: (c, c), 0.0)
    with pytest.raises(xcs.XCSError, match="different leading sizes"):
        scan(lambda c, x: (c, c), 0.0, {"a": np.ones(3), "b": np.ones(4)})
    with pytest.raises(xcs.XCSTypeError, match=r"\(carry, y\)"):
        scan(lambda c, x: c, 0.0, np.ones(3))


def test_orchestration_body_runs_in_order_with_overlap():
    calls, lock = [], threading.Lock()

    @mark_orchestration
    def llm(prompt):
        time.sleep(0.1)
        with lock:
            calls.append(prompt)
        return prompt.upper()

    def step(summary, q):
        side = llm(f"aside {q}")              # independent of the carry: overlaps with the chain
        new = llm(summary + "+" + str(q))      # depends on the previous step's result
        return new, side

    t0 = time.perf_counter()
    carry, sides = scan(step, "s", np.array(["a", "b", "c"]))
    dt = time.perf_counter() - t0
    assert carry == "S+A+B+C"
    assert list(sides) == ["ASIDE A", "ASIDE B", "ASIDE C"]
    assert dt < 0.45  # 3 chained calls; the asides ride along
    assert len(calls) == 6


# ---------------------------------------------------------------- the loop program (Graph.scan)


def _programs_of(f):
    return [k for k in xcs.transformations._PROGRAMS if k[0] is f]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loop_program_matches_unrolled_program(reverse, dtype, rng):
    W = (rng.standard_normal((6, 6)) * 0.4).astype(dtype)
    U = (rng.standard_normal((5, 6)) * 0.4).astype(dtype)

    def cell(carry, x):
        h, n = carry
        h2 = np.tanh(h @ W + x["u"] @ U) * x["g"][:, None].sum()
        return (h2, n + 1), {"s": h2.sum(), "h": h2}

    xs = {"u": rng.standard_normal((9, 5)).astype(dtype), "g": rng.standard_normal((9, 1)).astype(dtype)}
    init = (rng.standard_normal(6).astype(dtype), np.int64(3))
    (h, n), ys = scan(cell, init, xs, reverse=reverse)
    assert len(_programs_of(cell)) == 1
    # the same loop unrolled in a trace (jit records scan itself as the loop
    # program: test_scan_op.py), on the CPU as the loop program runs (the same
    # kernels give the same bits; a GPU's differ by ulps: the numpy check below)
    def loop(carry, x):
        ys = [None] * 9
        for t in (range(8, -1, -1) if reverse else range(9)):
            carry, ys[t] = cell(carry, {"u": x["u"][t], "g": x["g"][t]})
        return carry, {k: np.stack([y[k] for y in ys]) for k in ("s", "h")}

    (rh, rn), rys = jit(loop, config=Config(device="cpu"))(init, xs)
    assert np.asarray(h).dtype == dtype and int(np.asarray(n)) == 12
    for a, b in ((h, rh), (ys["h"], rys["h"]), (ys["s"], rys["s"])):  # 9 steps of a GPU's ulps apart
        assert_same_bits(a, b, ulps=64)
    # and both agree with numpy in float64
    ch, want = init[0].astype(np.float64), {}
    order = range(8, -1, -1) if reverse else range(9)
    for t in order:
        ch = np.tanh(ch @ W.astype(np.float64) + xs["u"][t].astype(np.float64) @ U.astype(np.float64)) \
            * xs["g"][t].astype(np.float64).sum()
        want[t] = ch
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(h), ch, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(ys["h"]), np.stack([want[t] for t in range(9)]), rtol=tol, atol=tol)


def test_loop_program_edge_cases(rng):
    # length only, no y
    c, ys = scan(lambda c, _: (c * np.float32(2), None), np.ones(3, np.float32), length=5)
    assert ys is None and np.asarray(c).tolist() == [32.0] * 3
    # zero steps: the carry comes back, ys are empty with the right shape
    c, ys = scan(lambda c, x: (c + x, c * x), np.ones(2), np.zeros((0, 2)))
    assert np.asarray(c).tolist() == [1.0, 1.0] and np.asarray(ys).shape == (0, 2)
    # ... on the unrolled path too (a Python-number carry), eagerly and under
    # jit, vmap and grad: ys keep the body's structure, stacked over no steps
    c, ys = scan(lambda c, x: (c + x.sum(), {"a": c * x, "b": np.float32(1)}), 0.0, np.zeros((0, 3)))
    assert float(np.asarray(c)) == 0.0 and np.asarray(ys["a"]).shape == (0, 3)
    assert np.asarray(ys["b"]).shape == (0,) and np.asarray(ys["b"]).dtype == np.float32
    c, ys = jit(lambda xs: scan(lambda c, x: (c * 2.0, c + x), 1.0, xs))(np.zeros((0, 2)))
    assert np.asarray(ys).shape == (0, 2)
    g = vmap(grad(lambda xs: scan(lambda c, v: (c + v, c * v), 0.0, xs)[1].sum()))(np.ones((2, 0)))
    assert np.asarray(g).shape == (2, 0)
    # strided and transposed xs are read in place
    base = rng.standard_normal((4, 10))
    c, ys = scan(lambda c, x: (c + x, x * 2.0), np.zeros(4), base.T[::2])
    np.testing.assert_allclose(np.asarray(c), base.T[::2].sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ys), base.T[::2] * 2.0, rtol=1e-12)
    # integer carries and an identity carry (the body returns its input unchanged)
    c, ys = scan(lambda c, x: ((c[0] + x, c[1]), c[0] * x), (np.int32(1), np.arange(3)), np.arange(1, 6, dtype=np.int32))
    assert int(np.asarray(c[0])) == 16 and np.asarray(c[1]).tolist() == [0, 1, 2]
    assert np.asarray(ys).tolist() == [1, 4, 12, 28, 55]


def test_loop_program_errors(rng):
    with pytest.raises(xcs.XCSTypeError, match="carry must keep"):  # float32 carry promoted to float64
        scan(lambda c, x: (c + x, None), np.zeros(2, np.float32), np.ones((3, 2)))
    with pytest.raises(xcs.XCSTypeError, match="carry must keep"):  # shape changes
        scan(lambda c, x: (np.concatenate([c, x]), None), np.zeros(2), np.ones((3, 2)))
    with pytest.raises(xcs.XCSTypeError, match="structure"):
        scan(lambda c, x: ((c, c), None), np.zeros(2), np.ones((3, 2)))
    with pytest.raises(xcs.XCSValueError, match="length=4"):
        scan(lambda c, x: (c, x), np.zeros(2), np.ones((3, 2)), length=4)
    with pytest.raises(xcs.XCSValueError, match="leading axis"):
        scan(lambda c, x: (c, x), np.zeros(2), np.float64(1.0))
    with pytest.raises(xcs.XCSError, match="scan step"):  # an error inside the loop names the step
        scan(lambda c, x: (c + np.take(x, np.array([5])), None), np.zeros(1), np.ones((3, 2)))
    # the loop still works after errors
    c, _ = scan(lambda c, x: (c + x, None), np.zeros(2), np.ones((3, 2)))
    assert np.asarray(c).tolist() == [3.0, 3.0]


def test_loop_program_outputs_written_in_place_or_copied(rng):
    """Carries and ys the body computes go straight into the loop's buffers;
    a carry passed through unchanged, a y that is an input row, a reshaped
    reduction and a carry read after being overwritten all come out right."""
    W = (rng.standard_normal((5, 5)) * 0.5).astype(np.float32)

    def cell(carry, x):
        h, keep = carry
        h2 = np.tanh(h @ W + x)
        return (h2, keep), {"x": x, "s": h2.sum(), "old": h * 1.0, "m": (h2 * keep).reshape(1, 5)}

    xs = rng.standard_normal((7, 5)).astype(np.float32)
    init = (rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32))
    (h, keep), ys = scan(cell, init, xs)
    assert len(_programs_of(cell)) == 1
    ch = init[0].astype(np.float64)
    for t in range(7):
        old = ch
        ch = np.tanh(ch @ W.astype(np.float64) + xs[t])
        np.testing.assert_allclose(np.asarray(ys["old"])[t], old, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(ys["s"])[t], ch.sum(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(ys["m"])[t], (ch * init[1]).reshape(1, 5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), ch, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(keep), init[1])
    np.testing.assert_array_equal(np.asarray(ys["x"]), xs)
    assert np.asarray(init[1]).tolist() == np.asarray(keep).tolist()  # the initial carry untouched


def test_carry_free_part_is_hoisted_out_of_the_loop(rng):
    """What a step computes from x alone (x @ U, a y of x only) runs for all
    steps at once before the loop; the results equal the Python loop,
    forward and reverse, and with no steps."""
    W = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    U = (rng.standard_normal((3, 4)) * 0.5).astype(np.float32)

    def cell(h, x):
        xu = x @ U
        h2 = np.tanh(h @ W + xu) * np.tanh(W).sum()
        return h2, {"xu": xu.sum() * 2.0, "h": h2.max()}

    g = xcs._xcs.Graph()
    h, x = g.input("float32", (4,)), g.input("float32", (3,))
    out = cell(h, x)
    for leaf in (out[0], out[1]["xu"], out[1]["h"]):
        g.output(leaf)
    g.seal()
    assert g.scan_compile(1) == 2  # x @ U and the "xu" output (numpy computed tanh(W).sum() while tracing)
    for T in (0, 9):
        xs = rng.standard_normal((T, 3)).astype(np.float32)
        h0 = rng.standard_normal(4).astype(np.float32)
        for reverse in (False, True):
            c, ys = scan(cell, h0, xs, reverse=reverse)
            if T == 0:
                assert np.array_equal(np.asarray(c), h0) and ys["xu"].shape == ys["h"].shape == (0,)
                continue
            rc, rys = h0, {}
            for t in (range(T - 1, -1, -1) if reverse else range(T)):
                rc, rys[t] = cell(rc, xs[t])
            # two float32 implementations (xcs's kernels, numpy's) through 9
            # steps that can amplify a rounding: a tolerance on the values'
            # scale (the worst seen over 300 seeds: 1e-5 of it)
            scale = max(1.0, float(np.abs(rc).max()))
            np.testing.assert_allclose(np.asarray(c), rc, rtol=2e-5, atol=5e-5 * scale)
            for k in ("xu", "h"):
                want = np.array([rys[t][k] for t in range(T)])
                np.testing.assert_allclose(np.asarray(ys[k]), want, rtol=2e-5,
                                           atol=5e-5 * max(1.0, float(np.abs(want).max())))


def test_loop_steps_keep_their_plans_but_read_each_steps_values(rng):
    """Each fused step keeps the plan of the first (scan.c / xcs_run_keep_plans):
    a per-step scalar broadcast over the carry is read afresh every step, a
    carry whose first value has another layout (a transposed view) still
    comes out right, and an error at a later step names that step."""
    W = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
    xs = rng.standard_normal(11).astype(np.float32)  # one 0-d x per step
    base = rng.standard_normal((4, 3)).astype(np.float32)
    h0 = base.T  # [3, 4], not contiguous: step 0 reads it in place, later steps the loop's buffers

    def cell(h, x):
        h2 = np.tanh(h @ W * x + 1.0)
        return h2, (h2 * x).sum()

    for reverse in (False, True):
        c, ys = scan(cell, h0, xs, reverse=reverse)
        ch, want = h0.astype(np.float64), {}
        for t in (range(10, -1, -1) if reverse else range(11)):
            ch = np.tanh(ch @ W.astype(np.float64) * float(xs[t]) + 1.0)
            want[t] = (ch * float(xs[t])).sum()
        np.testing.assert_allclose(np.asarray(c), ch, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(ys), [want[t] for t in range(11)], rtol=1e-4, atol=1e-4)

    ints = np.array([3, 2, 1, 0, 5], np.int64)
    with pytest.raises(xcs.XCSError, match=r"(?s)division by zero.*scan step 3|scan step 3.*division by zero"):
        scan(lambda c, x: (c // x + c, None), np.full(3, 7, np.int64), ints)
    c, _ = scan(lambda c, x: (c // x + c, None), np.full(3, 7, np.int64), ints[:3])
    want = np.full(3, 7, np.int64)
    for x in ints[:3]:
        want = want // x + want
    assert np.asarray(c).tolist() == want.tolist()
