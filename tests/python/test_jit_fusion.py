"""Fusion under @jit: programs past the fused-program limits (instructions,
registers, inputs) are split into several groups and still compute exactly
what the eager ops compute; simple chains become one group."""
import warnings

import numpy as np
import pytest

import ember.xcs as xcs
from conftest import assert_same_bits


def long_chain(x):
    for i in range(120):
        x = np.tanh(x * 1.01 + 0.1) if i % 2 else x - 0.05 * x * x
    return x


def many_inputs(*xs):
    acc = xs[0]
    for i, y in enumerate(xs[1:]):
        acc = acc * 0.9 + np.sin(y) * (i + 1)
    return acc


def wide_live(x):
    vs = [x * (i + 1) for i in range(24)]  # more live values than registers
    out = vs[0]
    for v in vs[1:]:
        out = out + np.sqrt(np.abs(v))
    return out


def chain8(x):
    return np.tanh(x * 0.5 + 0.25) * np.exp(-(x * x)) + x


@pytest.mark.parametrize("fn,n_args", [(long_chain, 1), (many_inputs, 30), (wide_live, 1)])
def test_split_programs_match_eager(fn, n_args, rng):
    args = [rng.standard_normal((257, 33)).astype(np.float32) for _ in range(n_args)]
    jf = xcs.jit(fn)
    got = np.asarray(jf(*args))
    eager = np.asarray(fn(*[xcs.asarray(a) for a in args]))
    assert_same_bits(got, eager)
    assert jf.stats()["fused_groups"] > 1


def test_chain_is_one_group(rng):
    x = rng.standard_normal(100_000).astype(np.float32)
    jf = xcs.jit(chain8)
    np.testing.assert_allclose(np.asarray(jf(x)), chain8(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    s = jf.stats()
    assert s["fused_groups"] == 1 and s["kernels_per_call"] == 1


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    m = x.mean(axis=1, keepdims=True)
    d = x - m
    v = (d * d).mean(axis=1, keepdims=True)
    return d / np.sqrt(v + 1e-5)


def two_outputs(x):  # an intermediate that leaves the chain (returned) and a row statistic
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e, e.sum(axis=-1), np.tanh(e * 2.0)


def reads_transposed(x):  # a value re-read transposed: must not be run row block by row block
    y = np.tanh(x)
    return (y + y.T).sum(axis=1, keepdims=True) * y


@pytest.mark.parametrize("fn", [softmax, layernorm, two_outputs])
@pytest.mark.parametrize("shape", [(300, 8192), (257, 4099), (3, 40, 5000)])
def test_row_chains_match_eager(fn, shape, rng):
    """Rows past the chain block size (with a partial last block) run block by
    block through several fused groups; results equal the eager ops."""
    x = rng.standard_normal(shape).astype(np.float32)
    jf = xcs.jit(fn)
    got, eager = jf(x), fn(xcs.asarray(x))
    got, eager = (got, eager) if isinstance(got, tuple) else ((got,), (eager,))
    for a, b in zip(got, eager):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-6, atol=1e-6)
    assert jf.stats()["fused_groups"] >= 2


def test_transposed_reread_is_not_chained(rng):
    x = rng.standard_normal((600, 600)).astype(np.float32)
    jf = xcs.jit(reads_transposed)
    np.testing.assert_allclose(np.asarray(jf(x)), np.asarray(reads_transposed(xcs.asarray(x))), rtol=2e-6, atol=1e-5)


def dense_softmax(x, w, b):
    return softmax(np.tanh(x @ w + b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(600, 300, 700), (130, 64, 2100), (2, 5, 3)])
def test_matmul_with_epilogue_and_softmax(m, k, n, dtype, rng):
    """A 2-D matmul, its bias/activation epilogue and a row softmax (a row
    chain after the matmul) equal the eager ops and float64 numpy."""
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    jf = xcs.jit(dense_softmax)
    got = np.asarray(jf(x, w, b))
    eager = np.asarray(dense_softmax(xcs.asarray(x), xcs.asarray(w), xcs.asarray(b)))
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, eager, rtol=tol, atol=tol)
    want = dense_softmax(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-6)


def test_closure_array_is_captured_by_reference():
    """A closure numpy array is a zero-copy constant: an in-place change
    between calls is seen, exactly as by the plain function."""
    w = np.ones(4)

    @xcs.jit
    def f(x):
        return x * w

    np.testing.assert_array_equal(np.asarray(f(np.ones(4))), np.ones(4))
    w[:] = 3.0
    np.testing.assert_array_equal(np.asarray(f(np.ones(4))), np.full(4, 3.0))
    assert f.stats()["traces"] == 1


def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0) * 0.5


def dense_both(x, w, b):  # the product leaves the group too
    y = x @ w
    return np.tanh(y + b), y


def dense_residual_t(x, w, b):  # a transposed weight and a residual read of x
    return x @ w.T * 2.0 - b + x[..., : w.shape[0]]


EPILOGUE_CASES = [  # x shape, w shape, b shape
    ((300, 200), (200, 150), (150,)),
    ((64, 64), (64, 64), (64, 1)),
    ((1, 1), (1, 1), ()),
    ((7, 0), (0, 5), (5,)),          # K == 0: the product is zeros
    ((0, 4), (4, 3), (3,)),          # M == 0: empty
    ((3, 50, 40), (40, 30), (50, 1)),  # batched; the bias broadcasts over the batch
    ((2, 3, 20, 10), (3, 10, 7), (7,)),  # two batch dims, w broadcast over the first
    ((600, 1, 40), (40, 30), (30,)),       # vmap's per-example rows: one block spans many matrices
    ((600, 1, 40), (40, 30), (600, 1, 30)),  # ... with a bias per example
    ((4, 150, 40), (40, 30), (150, 1)),    # a bias per row, the same for every matrix: matrix by matrix
]


@pytest.mark.parametrize("fn", [dense_relu, dense_both])
@pytest.mark.parametrize("xs,ws,bs", EPILOGUE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_matmul_epilogue_is_one_step(fn, xs, ws, bs, dtype, rng):
    """A matmul and its elementwise epilogue run as one step (the epilogue on
    each block of the product while it is in cache), with the eager ops'
    values (the same GEMM and kernels; float64 transcendentals may differ by
    an ulp between a vector body and a scalar tail, whose split the blocks
    move) and numpy's in float64."""
    def draw(shape):
        a = rng.standard_normal(shape) * 3
        return a.astype(dtype)
    x, w, b = draw(xs), draw(ws), draw(bs)
    jf = xcs.jit(fn)
    got = jf(x, w, b)
    eager = fn(*[xcs.asarray(a) for a in (x, w, b)])
    want = fn(*[a.astype(np.float64) if dtype != np.int32 else a.astype(np.int64) for a in (x, w, b)])
    got, eager, want = [r if isinstance(r, tuple) else (r,) for r in (got, eager, want)]
    for g, e, wv in zip(got, eager, want):
        g = np.asarray(g)
        assert g.dtype == np.asarray(e).dtype and g.shape == wv.shape
        if g.dtype.kind == "f" and xcs.default_device() == "cpu":
            np.testing.assert_allclose(g, np.asarray(e), rtol=4 * np.finfo(g.dtype).eps, atol=0)
        else:  # a GPU's GEMM sums in its own order: ulps of the terms' size
            assert_same_bits(g, e, scale=xs[-1] * float(np.max(np.abs(x)) * np.max(np.abs(w))) if x.size * w.size else 0)
        if g.dtype.kind != "f":
            np.testing.assert_array_equal(g, wv.astype(g.dtype))
        else:
            tol = 2e-4 if g.dtype == np.float32 else 1e-11
            np.testing.assert_allclose(g, wv, rtol=tol, atol=tol * max(1, xs[-1]))
    s = jf.stats()
    if 0 not in xs and 0 not in ws:
        assert s["fused_groups"] == 1 and s["kernels_per_call"] == 1


def test_matmul_epilogue_transposed_weight_and_residual(rng):
    x = rng.standard_normal((130, 70)).astype(np.float32)
    w = rng.standard_normal((60, 70)).astype(np.float32)
    b = rng.standard_normal(60).astype(np.float32)
    jf = xcs.jit(dense_residual_t)
    got = np.asarray(jf(x, w, b))
    assert_same_bits(got, dense_residual_t(*map(xcs.asarray, (x, w, b))))
    np.testing.assert_allclose(got, dense_residual_t(x.astype(np.float64), w, b), rtol=1e-4, atol=1e-4)
    assert jf.stats()["kernels_per_call"] == 1


def test_matmul_epilogue_error_names_the_group():
    """An integer division by zero inside an epilogue raises (from any
    thread of the GEMM) and the jitted function keeps working."""
    @xcs.jit
    def f(x, w, d):
        return (x @ w) // d

    x = np.ones((200, 100), np.int32)
    w = np.ones((100, 300), np.int32)
    d = np.ones(300, np.int32)
    np.testing.assert_array_equal(np.asarray(f(x, w, d)), np.full((200, 300), 100))
    d[123] = 0
    with pytest.raises(xcs.XCSZeroDivisionError, match="division by zero"):
        f(x, w, d)
    d[123] = 7
    np.testing.assert_array_equal(np.asarray(f(x, w, d))[:, 123], np.full(200, 14))


def staircase(x):  # every step reads the previous one transposed: 6 groups, 5 intermediates
    for _ in range(6):
        x = np.tanh(x.T * 1.1) + 0.1
    return x


def test_memory_plan_reuses_intermediates(rng):
    """The five intermediates of `staircase` live two at a time, so the memory
    plan puts them in one arena of two buffers; a call allocates that arena
    and the output, nothing else."""
    from ember.xcs import _xcs

    n = 256
    x = rng.standard_normal((n, n)).astype(np.float32)
    jf = xcs.jit(staircase, config=xcs.Config(device="cpu"))  # host allocations (test_cuda_device: the device's)
    np.testing.assert_allclose(np.asarray(jf(x)), staircase(x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    s = jf.stats()
    size = n * n * 4
    assert s["fused_groups"] == 6
    assert s["planned_bytes"] == 5 * size and s["arena_bytes"] == 2 * size
    before = _xcs._alloc_stats()["total_buffers"]
    out = jf(x)
    assert _xcs._alloc_stats()["total_buffers"] - before == 2  # the arena and the output
    np.testing.assert_array_equal(np.asarray(out), np.asarray(staircase(xcs.asarray(x))))
    assert "memory plan: 5 intermediates" in xcs.explain(jf, x)


@pytest.mark.parametrize("fn", [softmax, layernorm, two_outputs, dense_softmax])
def test_memory_plan_under_threads(fn, rng):
    """Each call has its own arena: 8 threads calling one jitted function
    with its intermediates planned get the eager results."""
    import concurrent.futures as cf

    args = [rng.standard_normal((300, 4100)).astype(np.float32)]
    if fn is dense_softmax:
        args = [rng.standard_normal((200, 64)).astype(np.float32), rng.standard_normal((64, 300)).astype(np.float32),
                rng.standard_normal(300).astype(np.float32)]
    jf = xcs.jit(fn)
    want = fn(*[xcs.asarray(a) for a in args])
    want = [np.asarray(w) for w in (want if isinstance(want, tuple) else (want,))]
    with cf.ThreadPoolExecutor(8) as ex:
        for got in ex.map(lambda _: jf(*args), range(32)):
            got = got if isinstance(got, tuple) else (got,)
            for g, w in zip(got, want):
                np.testing.assert_allclose(np.asarray(g), w, rtol=2e-6, atol=1e-6)


def test_large_outputs_are_streamed_faithfully(rng):
    """Outputs past the caches (>= 16 MiB) are written around the cache;
    values are those of the eager ops, for an elementwise program and a
    row chain whose output is streamed block by block."""
    x = rng.standard_normal(4_500_000).astype(np.float32)
    jf = xcs.jit(chain8)
    assert_same_bits(jf(x), chain8(xcs.asarray(x)))
    x2 = rng.standard_normal((1100, 4000)).astype(np.float32)
    js = xcs.jit(softmax)
    np.testing.assert_allclose(np.asarray(js(x2)), np.asarray(softmax(xcs.asarray(x2))), rtol=8e-6, atol=1e-9)


@pytest.mark.parametrize("shape", [(300, 200, 100), (2, 3, 4), (130, 64, 2100)])
def test_matmul_epilogue_with_trailing_reduction(shape, rng):
    """A reduction may close a matmul group (the epilogue then runs over the
    whole product): one kernel, eager values."""
    m, k, n = shape
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)

    def f(x, w):
        return np.tanh(x @ w).sum(axis=1)

    jf = xcs.jit(f)
    got = np.asarray(jf(x, w))
    np.testing.assert_allclose(got, np.asarray(f(xcs.asarray(x), xcs.asarray(w))), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, f(x.astype(np.float64), w), rtol=1e-4, atol=1e-4)
    assert jf.stats()["kernels_per_call"] == 1


@pytest.mark.parametrize("case", ["vec_mat", "mat_vec", "batched_vec"])
def test_matmul_epilogue_of_one_dimensional_operands(case, rng):
    """A matmul of a 1-D operand (value [1, N], read as (N,)) still takes its
    epilogue: one group, the eager values."""
    if case == "vec_mat":
        a, b = rng.standard_normal(33), rng.standard_normal((33, 70))
    elif case == "mat_vec":
        a, b = rng.standard_normal((70, 33)), rng.standard_normal(33)
    else:
        a, b = rng.standard_normal((4, 33)), rng.standard_normal(33)
    c = rng.standard_normal(70 if case != "batched_vec" else 4)

    def f(a, b, c):
        return np.tanh(a @ b + c) * 2.0

    jf = xcs.jit(f)
    got = np.asarray(jf(a, b, c))
    np.testing.assert_allclose(got, np.asarray(f(*map(xcs.asarray, (a, b, c)))), rtol=1e-14, atol=1e-14)
    # numpy sums the dot in another order: an absolute term for outputs near 0
    # (the outputs' scale is 2; 1e-13 is ~200 ulps of it)
    np.testing.assert_allclose(got, f(a, b, c), rtol=1e-12, atol=1e-13)
    assert jf.stats()["kernels_per_call"] == 1


EMPTY_SPACES = {
    "sum": lambda x: (x * 2).sum(), "sum0": lambda x: (x * 2).sum(axis=0), "sum1": lambda x: (x * 2).sum(axis=1),
    "prod0": lambda x: np.exp(x).prod(axis=0), "mean0": lambda x: (x + 1).mean(axis=0),
    "max0": lambda x: (x * 2).max(axis=0), "argmax0": lambda x: (x * 2).argmax(axis=0),
    "var0": lambda x: (x * 3).var(axis=0), "any0": lambda x: (x > 0).any(axis=0),
    "softmax0": lambda x: xcs.nn.softmax(x * 2, axis=0),
    # an empty elementwise output beside a reduction with elements: both from one group
    "both": lambda x: (x * 2, (x * 2).sum(axis=0), (x + 1).max(axis=1)),
}


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0,)])
@pytest.mark.parametrize("name", list(EMPTY_SPACES))
def test_fused_groups_over_empty_spaces(name, shape):
    """A fused group whose space has no elements: its reductions are their
    identities (a value the group never made is not read), the ones without
    one raise as numpy does, and empty outputs stay empty."""
    f, x = EMPTY_SPACES[name], np.ones(shape)
    if name == "both" and len(shape) < 2:
        return
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
            want = f(x)
    except ValueError:
        with pytest.raises(xcs.XCSError):
            xcs.jit(f)(x)
        return
    got = xcs.jit(f)(x)
    for g, w in zip(got if isinstance(want, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape
        np.testing.assert_array_equal(g, w)
