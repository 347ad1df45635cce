"""scan inside jit and grad: one op of the trace (Graph.scan_trace), not an
unrolled loop.  The trace keeps the size of one step whatever the length;
the op computes what the loop program and numpy compute; its gradient (a
reverse loop of the body's VJP) matches the gradient of the same loop
unrolled, to the last bits in float64, including closures over traced
values (loop invariants), reverse loops, integer carries, second order;
vmap batches the op (its body batched, a carry made batched where the
step makes it so), per-example gradients included; random elementwise
bodies (hypothesis) match the unrolled loop, values and gradients."""
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import ember.xcs as xcs
from ember.xcs import grad, jit, scan, vmap


def unrolled(f, init, xs, reverse=False):
    """scan's semantics as a Python loop (unrolled into any trace)."""
    T = len(xs)
    carry, ys = init, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        carry, ys[t] = f(carry, xs[t])
    return carry, np.stack(ys)


def rnn(U):
    def make(W):
        def cell(h, x):
            h = np.tanh(h @ W + x @ U)
            return h, (h * h).sum()
        return cell
    return make


def top_lines(f, *args):
    """The lines of f's optimised program (explain), without the scans'
    step programs listed after it (indented)."""
    after = xcs.explain(f, *args).split("after optimisation", 1)[1].splitlines()
    return [line for line in after if not line.startswith(" ")]


def scan_ops(f, *args):
    """The scan nodes of f's optimised program."""
    return [line for line in top_lines(f, *args) if "= scan(" in line]


def test_trace_is_one_step_whatever_the_length(rng):
    W, U = rng.standard_normal((6, 6)) * 0.4, rng.standard_normal((3, 6)) * 0.4
    h0 = rng.standard_normal(6)

    def f(W, h0, xs):
        return scan(rnn(U)(W), h0, xs)

    sizes = []
    for T in (5, 2000):
        xs = rng.standard_normal((T, 3))
        jf = jit(f)
        c, ys = jf(W, h0, xs)
        rc, rys = unrolled(rnn(U)(W), h0, xs)
        np.testing.assert_allclose(np.asarray(c), rc, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(ys), rys, rtol=1e-12, atol=1e-12)
        ec, eys = scan(rnn(U)(W), h0, xs)  # the eager loop program: the same kernels, the same bits
        np.testing.assert_array_equal(np.asarray(c), np.asarray(ec))
        np.testing.assert_array_equal(np.asarray(ys), np.asarray(eys))
        assert len(scan_ops(jf, W, h0, xs)) == 2  # the carry and the ys
        sizes.append(len(xcs.explain(jf, W, h0, xs).splitlines()))
        g = jit(grad(lambda W, h0, xs: f(W, h0, xs)[1].sum()))
        g(W, h0, xs)
        sizes.append(len(xcs.explain(g, W, h0, xs).splitlines()))
    assert sizes[0] == sizes[2] and sizes[1] == sizes[3]


@pytest.mark.parametrize("reverse", [False, True])
def test_pytrees_int_carries_and_edge_cases(reverse, rng):
    def body(carry, x):
        s, n = carry["s"], carry["n"]
        return {"s": s * 0.9 + x["a"] * x["b"], "n": n + np.int32(1)}, {"prev": s, "tot": x["a"].sum()}

    T = 7
    xs = {"a": rng.standard_normal((T, 2)), "b": rng.standard_normal((T, 2))}
    init = {"s": rng.standard_normal(2), "n": np.int32(3)}
    got = jit(lambda i, x: scan(body, i, x, reverse=reverse))(init, xs)
    want = scan(body, init, xs, reverse=reverse)
    for a, b in zip(xcs.api.pytree.flatten(got)[0], xcs.api.pytree.flatten(want)[0]):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(np.asarray(got[0]["n"])) == 3 + T
    # no ys, length only
    c, ys = jit(lambda c: scan(lambda c, _: (c * np.float32(2), None), c, length=5))(np.ones(3, np.float32))
    assert ys is None and np.asarray(c).tolist() == [32.0] * 3
    # xs of a dtype xcs converts (uint8, int8): the unrolled path takes them, as eagerly
    small = np.arange(12, dtype=np.uint8).reshape(4, 3)
    for xs8 in (small, small.astype(np.int8)):
        c, ys = jit(lambda c, x: scan(lambda c, x: (c + x, c), c, x))(np.zeros(3, np.int64), xs8)
        assert np.asarray(c).tolist() == [18, 22, 26] and np.asarray(ys)[-1].tolist() == [9, 12, 15]
    # zero steps: the carry comes back, the ys are empty with their shape
    c, ys = jit(lambda c, x: scan(lambda c, x: (c + x, c * x), c, x))(np.ones(2), np.zeros((0, 2)))
    assert np.asarray(c).tolist() == [1.0, 1.0] and np.asarray(ys).shape == (0, 2)


def _fd(loss, args, k, eps=1e-6):
    base = [np.array(a, dtype=np.float64) for a in args]
    num = np.zeros_like(base[k])
    for i in np.ndindex(num.shape):
        p, m = [b.copy() for b in base], [b.copy() for b in base]
        p[k][i] += eps
        m[k][i] -= eps
        num[i] = (float(np.asarray(loss(*p))) - float(np.asarray(loss(*m)))) / (2 * eps)
    return num


@pytest.mark.parametrize("reverse", [False, True])
def test_gradient_matches_the_unrolled_loop(reverse, rng):
    """Gradients wrt the initial carry, the xs, a traced weight the body
    closes over (an invariant) and a pytree of them, through both outputs."""
    W, U = rng.standard_normal((5, 5)) * 0.4, rng.standard_normal((3, 5)) * 0.4
    h0, xs = rng.standard_normal(5), rng.standard_normal((9, 3))

    def loss_with(run):
        def loss(W, h0, xs):
            c, ys = run(rnn(U)(W), h0, xs)
            return (c * c).sum() + (ys * np.arange(1.0, 10.0)).sum()
        return loss

    op = loss_with(lambda f, i, x: scan(f, i, x, reverse=reverse))
    loop = loss_with(lambda f, i, x: unrolled(f, i, x, reverse))
    got = jit(grad(op, argnums=(0, 1, 2)))(W, h0, xs)
    want = jit(grad(loop, argnums=(0, 1, 2)))(W, h0, xs)
    eager = grad(op, argnums=(0, 1, 2))(W, h0, xs)  # grad outside jit records the op too
    for k in range(3):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(eager[k]), np.asarray(want[k]), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.asarray(got[k]), _fd(op, (W, h0, xs), k), rtol=1e-5, atol=1e-7)


def test_gradient_with_int_carries_and_unused_outputs(rng):
    """An integer step counter in the carry, a y nothing reads, the carry
    passed through untouched: zero cotangents where there is no path."""
    a = rng.standard_normal(4)

    def loss(a, xs):
        def body(c, x):
            v, n, keep = c
            v = v * np.cos(x) + n.astype(np.float64) * 0.1
            return (v, n + 1, keep), (v.sum(), x * 0)
        (v, n, keep), (s, _) = scan(body, (a, np.int64(0), a * 2), xs)
        return (v ** 2).sum() + s.sum() + keep.sum()

    xs = rng.standard_normal((6, 4))
    got = jit(grad(loss, argnums=(0, 1)))(a, xs)
    for k in range(2):
        np.testing.assert_allclose(np.asarray(got[k]), _fd(loss, (a, xs), k), rtol=1e-5, atol=1e-7)


def test_loops_compute_only_what_is_read(rng):
    """After optimisation each loop keeps only the outputs the program
    reads: the gradient with respect to xs alone has no accumulator for
    the weight, and the forward loop of a gradient keeps only the carries
    the reverse loop reads (its ys go)."""
    W, U = rng.standard_normal((5, 5)) * 0.4, rng.standard_normal((3, 5)) * 0.4
    h0, xs = rng.standard_normal(5), rng.standard_normal((9, 3))

    def loss(W, h0, xs):
        return scan(rnn(U)(W), h0, xs)[1].sum()

    gx = jit(grad(loss, argnums=2))
    lines = scan_ops(gx, W, h0, xs)
    assert len(lines) == 2  # the forward loop's residuals, the reverse loop's xs cotangents
    assert "1 carries" in lines[1] and "reverse" in lines[1]
    gw = jit(grad(loss, argnums=0))
    # the weight's step cotangent is an outer product h_t^T dpre_t: the loop
    # stacks the two factors and one GEMM after it sums them over the steps
    lines = scan_ops(gw, W, h0, xs)
    assert "1 carries" in lines[-1] and "reverse" in lines[-1]
    assert any("= matmul(" in line for line in top_lines(gw, W, h0, xs))
    # a wide step product (a minibatch of 32 rows: a good GEMM each step) is summed in a carry
    hb, xb = rng.standard_normal((32, 5)), rng.standard_normal((9, 32, 3))
    gb = jit(grad(loss, argnums=0))
    assert "2 carries" in scan_ops(gb, W, hb, xb)[-1]
    want_b = jit(grad(lambda W, h0, xs: unrolled(rnn(U)(W), h0, xs)[1].sum()))(W, hb, xb)
    np.testing.assert_allclose(np.asarray(gb(W, hb, xb)), np.asarray(want_b), rtol=1e-12, atol=1e-12)
    loop = jit(grad(lambda W, h0, xs: unrolled(rnn(U)(W), h0, xs)[1].sum(), argnums=(0, 2)))(W, h0, xs)
    np.testing.assert_allclose(np.asarray(gx(W, h0, xs)), np.asarray(loop[1]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(gw(W, h0, xs)), np.asarray(loop[0]), rtol=1e-12, atol=1e-13)


def test_second_order_through_the_op(rng):
    """grad of grad: the reverse loop is itself differentiated."""
    W, U = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal((2, 3)) * 0.5
    h0, xs = rng.standard_normal(3), rng.standard_normal((4, 2))

    def make(run):
        def loss(W):
            return run(rnn(U)(W), h0, xs)[1].sum()

        def gnorm(W):
            g = grad(loss)(W)
            return (g * g).sum()
        return gnorm

    got = jit(grad(make(scan)))(W)
    want = jit(grad(make(unrolled)))(W)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


def test_float32_and_closures_over_concrete_arrays(rng):
    """A numpy weight the body reads stays a constant of the body; the
    traced one is an invariant of the op."""
    W = (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
    U = (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
    xs = rng.standard_normal((50, 8)).astype(np.float32)

    def loss(W, xs):
        return scan(rnn(U)(W), np.zeros(8, np.float32), xs)[1].mean()

    got = jit(grad(loss, argnums=(0, 1)))(W, xs)
    want = jit(grad(lambda W, xs: unrolled(rnn(U)(W), np.zeros(8, np.float32), xs)[1].mean(), argnums=(0, 1)))(W, xs)
    for k in range(2):
        assert np.asarray(got[k]).dtype == np.float32
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=2e-5, atol=1e-6)


def test_vmap_batches_the_op(rng):
    """vmap records one batched scan: a shared initial carry the step makes
    batched, a counter that stays shared, ys of both kinds, jit in either
    order, per-example gradients, a collective in the body, vmap of vmap."""
    W, U = rng.standard_normal((4, 4)) * 0.5, rng.standard_normal((3, 4)) * 0.5
    xs = rng.standard_normal((5, 6, 3))

    def f(x):
        def cell(c, xt):
            h, n = c
            h = np.tanh(h @ W + xt @ U)
            return (h, n + 1.0), (h.sum(), n)
        (h, n), (s, ns) = scan(cell, (np.zeros(4), np.zeros(())), x)
        return h, n, s, ns

    want = [np.stack(v) for v in zip(*[jit(f)(xs[i]) for i in range(5)])]
    for fn in (vmap(f), jit(vmap(f)), vmap(jit(f))):
        got = fn(xs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-13)
    assert scan_ops(jit(vmap(f)), xs)  # one op, not an unrolled loop

    def loss(W, x):
        return scan(rnn(U)(W), np.zeros(4), x)[1].sum()

    per_ex = jit(vmap(grad(loss), in_axes=(None, 0)))(W, xs)
    for i in range(5):
        one = jit(grad(loss))(W, xs[i])
        np.testing.assert_allclose(np.asarray(per_ex[i]), np.asarray(one), rtol=1e-12, atol=1e-13)

    summed = vmap(lambda x: scan(lambda c, xt: (c + xcs.psum(xt, "b"), c), np.zeros(3), x)[0], axis_name="b")(xs)
    np.testing.assert_allclose(np.asarray(summed), np.broadcast_to(xs.sum(axis=(0, 1)), (5, 3)), rtol=1e-12)
    inner = vmap(vmap(lambda x: scan(lambda c, xt: (c * 0.5 + xt, c), np.zeros(()), x)[0]))(xs)
    ref = np.zeros((5, 6))
    for t in range(3):
        ref = ref * 0.5 + xs[:, :, t]
    np.testing.assert_allclose(np.asarray(inner), ref, rtol=1e-12, atol=1e-14)


def test_errors_inside_jit(rng):
    with pytest.raises(xcs.XCSTypeError, match="carry must keep"):  # float32 carry promoted to float64
        jit(lambda c, x: scan(lambda c, x: (c + x, None), c, x))(np.zeros(2, np.float32), np.ones((3, 2)))
    with pytest.raises(xcs.XCSValueError, match="different leading sizes"):
        jit(lambda x, y: scan(lambda c, x: (c, c), 0.0, {"a": x, "b": y}))(np.ones(3), np.ones(4))
    with pytest.raises(xcs.XCSError, match="scan step"):  # an error inside the loop names the step
        jit(lambda c, x: scan(lambda c, x: (c + np.take(x, np.array([5])), None), c, x))(np.zeros(1), np.ones((3, 2)))


def test_scan_trace_refuses_bad_arguments():
    """Graph.scan_trace (the op's binding) checks its arguments: XCSError
    (or TypeError for a non-sequence), never a crash."""
    from ember.xcs import _xcs

    def body():
        g = _xcs.Graph()
        h, x = g.input("float64", (3,)), g.input("float64", (3,))
        g.output(h + x)
        g.output(h * 2)
        return g

    good = [np.zeros(3), np.zeros((4, 3))]
    c, ys = body().scan_trace(1, 1, 4, False, good)
    assert np.asarray(c).shape == (3,) and np.asarray(ys).shape == (4, 3)
    bad = [
        (lambda: _xcs.Graph().scan_trace(1, 0, 3, False, [1, 2]), xcs.XCSValueError, "takes 0 inputs"),
        (lambda: body().scan_trace(-1, 0, 4, False, good), xcs.XCSValueError, "-1 carries"),
        (lambda: body().scan_trace(1, 1, -5, False, good), xcs.XCSValueError, "length -5"),
        (lambda: body().scan_trace(1, 5, 4, False, good), xcs.XCSValueError, "5 xs"),
        (lambda: body().scan_trace(3, 0, 4, False, good), xcs.XCSValueError, "3 carries"),
        (lambda: body().scan_trace(1, 1, 4, False, [np.zeros(3), "abc"]), xcs.XCSTypeError, "str"),
        (lambda: body().scan_trace(1, 1, 5, False, good), xcs.XCSShapeError, "xs leaf 0"),
        (lambda: body().scan_trace(1, 1, 4, False, [np.zeros(2), good[1]]), xcs.XCSTypeError, "carry leaf 0"),
        (lambda: body().scan_trace(1, 1, 4, False, [np.zeros(3, np.float32), good[1]]), xcs.XCSTypeError, "float32"),
        (lambda: body().scan_trace(1, 1, 4, False, 7), TypeError, "sequence"),
    ]
    for call, cls, text in bad:
        with pytest.raises(cls, match=text):
            call()


def test_nested_scans_are_ops_too(rng):
    """A scan inside another scan's body is an op of that body: the outer
    loop program runs it each step, eagerly or under jit; the gradient
    differentiates the inner reverse loop inside the outer one; vmap
    batches both."""
    W = rng.standard_normal((4, 4)) * 0.4
    xs = rng.standard_normal((5, 6, 4))  # 5 outer steps of 6 inner steps

    def run(scan_fn):
        def f(W, h0, xs):
            def outer(h, block):
                def inner(c, x):
                    c = np.tanh(c @ W + x + h)
                    return c, c.sum()
                c, s = scan_fn(inner, h * 0.5, block)
                return c, s.sum()
            return scan_fn(outer, h0, xs)
        return f

    def loop(f, init, xs):
        return unrolled(f, init, xs)

    op, ref = run(scan), run(loop)
    h0 = rng.standard_normal(4)
    for got in (op(W, h0, xs), jit(op)(W, h0, xs)):
        want = ref(W, h0, xs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-13)
    jf = jit(op)
    assert len(scan_ops(jf, W, h0, xs)) == 2  # the outer loop's two outputs
    steps = xcs.explain(jf, W, h0, xs).split("after optimisation", 1)[1]
    assert "    scan #0 runs this step" in steps  # the inner loop, listed inside the outer loop's step

    def loss(run_fn):
        return lambda W, h0, xs: (run_fn(W, h0, xs)[1] ** 2).sum()

    got = jit(grad(loss(op), argnums=(0, 1, 2)))(W, h0, xs)
    want = jit(grad(loss(ref), argnums=(0, 1, 2)))(W, h0, xs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-11, atol=1e-12)
    h0s = rng.standard_normal((3, 4))
    batched = jit(vmap(lambda h: op(W, h, xs)[1]))(h0s)
    for b in range(3):
        np.testing.assert_allclose(np.asarray(batched[b]), np.asarray(ref(W, h0s[b], xs)[1]), rtol=1e-12, atol=1e-12)


@st.composite
def _bodies(draw):
    """A random elementwise step: a chain over the carry c, the row x and a
    traced weight w (each binary step takes one of them), squashed by tanh
    into the next carry; the y is the chain's value or its sum."""
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            steps.append(("unary", draw(st.sampled_from(["sin", "tanh", "negative", "abs"]))))
        else:
            steps.append(("binary", draw(st.sampled_from(["add", "multiply", "subtract", "maximum"])),
                          draw(st.sampled_from(["c", "x", "w"]))))
    return steps, draw(st.booleans())


def _step(steps, y_sum):
    def body(c, x, w):
        v, env = c, {"c": c, "x": x, "w": w}
        for s in steps:
            v = getattr(np, s[1])(v) if s[0] == "unary" else getattr(np, s[1])(v, env[s[2]])
        c2 = np.tanh(v + c * 0.5)
        return c2, (v.sum() if y_sum else v)
    return body


@given(body=_bodies(), T=st.integers(0, 5), reverse=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_random_bodies_match_the_unrolled_loop(body, T, reverse, seed):
    """Random elementwise steps: the op's values and gradients (with
    respect to the initial carry, the xs and the weight) equal the same loop
    unrolled into the trace, in float64, and vmap of the op equals each
    example's."""
    steps, y_sum = body
    note(f"steps={steps} y_sum={y_sum} T={T} reverse={reverse}")
    rng = np.random.default_rng(seed)
    c0, w, xs = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((T, 3))
    f = _step(steps, y_sum)

    def run(loop):
        def g(c0, w, xs):
            return loop(lambda c, x: f(c, x, w), c0, xs)
        return g

    op = run(lambda f_, c, x: scan(f_, c, x, reverse=reverse))
    ref = run(lambda f_, c, x: unrolled(f_, c, x, reverse) if T else (c, None))
    got, want = jit(op)(c0, w, xs), jit(ref)(c0, w, xs)
    np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want[0]), rtol=1e-12, atol=1e-13)
    if T:
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]), rtol=1e-12, atol=1e-13)

    def loss(g):
        def L(c0, w, xs):
            c, ys = g(c0, w, xs)
            return (c * c).sum() + (0.0 if ys is None else (ys * ys).sum())
        return L

    if T == 0:
        return
    # batched over the initial carry and the xs (w shared): each example's values
    C0, XS = rng.standard_normal((2, 3)), rng.standard_normal((2, T, 3))
    batched = jit(vmap(op, in_axes=(0, None, 0)))(C0, w, XS)
    for b in range(2):
        one = jit(op)(C0[b], w, XS[b])
        for got_b, want_b in zip(batched, one):
            np.testing.assert_allclose(np.asarray(got_b)[b], np.asarray(want_b), rtol=1e-12, atol=1e-13)
    ga = jit(grad(loss(op), argnums=(0, 1, 2)))(c0, w, xs)
    gb = jit(grad(loss(ref), argnums=(0, 1, 2)))(c0, w, xs)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
