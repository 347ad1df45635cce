"""Property tests (hypothesis): random broadcastable shape pairs, random
views, and random chains of ops, each checked against numpy in float64.

Example counts are bounded by the "ci" profile in conftest.py
(XCS_HYPOTHESIS_EXAMPLES, default 60) with no deadline."""
import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import TOL_TRANSCENDENTAL, assert_close

FLOATS = st.sampled_from([np.float32, np.float64])

BINARY = ["add", "subtract", "multiply", "maximum", "minimum", "divide", "less", "equal"]
UNARY = ["negative", "abs", "exp", "tanh", "sin", "floor", "square", "sqrt_abs", "log1p_abs"]


def _np_unary(name, a):
    if name == "sqrt_abs":
        return np.sqrt(np.abs(a))
    if name == "log1p_abs":
        return np.log1p(np.abs(a))
    return getattr(np, name)(a)


def _x_unary(xnp, name, x):
    if name == "sqrt_abs":
        return xnp.sqrt(xnp.abs(x))
    if name == "log1p_abs":
        return xnp.log1p(xnp.abs(x))
    return getattr(xnp, name)(x)


def _values(draw, shape, dtype):
    """Finite values in [-4, 4] (exp stays in range, chains stay finite)."""
    n = int(np.prod(shape))
    elems = st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=32)
    flat = draw(st.lists(elems, min_size=n, max_size=n)) if n <= 64 else None
    if flat is None:
        seed = draw(st.integers(0, 2**32 - 1))
        return np.random.default_rng(seed).uniform(-4, 4, shape).astype(dtype)
    return np.asarray(flat, dtype=np.float64).reshape(shape).astype(dtype)


@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                                  min_side=0, max_side=5),
       dtype=FLOATS, op=st.sampled_from(BINARY))
def test_broadcast_binary(xnp, xcs, data, shapes, dtype, op):
    sa, sb = shapes.input_shapes
    a = _values(data.draw, sa, dtype)
    b = _values(data.draw, sb, dtype)
    if op == "divide":
        b = np.where(np.abs(b) < 0.25, 1.0, b).astype(dtype)
    want = getattr(np, op)(a, b)
    ref = getattr(np, op)(a.astype(np.float64), b.astype(np.float64)) if want.dtype.kind == "f" else want
    got = getattr(xnp, op)(xcs.asarray(a), xcs.asarray(b))
    assert got.shape == shapes.result_shape
    assert_close(got, ref, want.dtype)


@st.composite
def strided_view(draw, dtype):
    """A numpy array with a random shape and a random basic-indexing view of it."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=7))
    a = _values(draw, shape, dtype)
    index = draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))
    transpose = draw(st.booleans())
    return a, index, transpose


@given(data=st.data(), dtype=FLOATS, op=st.sampled_from(UNARY + ["sum0", "max_last", "mean_all"]))
def test_views_then_op(xnp, xcs, data, dtype, op):
    a, index, transpose = data.draw(strided_view(dtype))
    note(f"shape={a.shape} index={index!r} transpose={transpose}")
    v = a[index]
    if v.ndim > 8:  # numpy allows 64 dims (many newaxis); xcs arrays have at most 8
        with pytest.raises(xcs.XCSValueError, match="at most 8 dimensions"):
            xcs.asarray(a)[index]
        return
    x = xcs.asarray(a)[index]
    if transpose:
        v, x = np.transpose(v), xnp.transpose(x)
    v = np.asarray(v)
    assert tuple(x.shape) == v.shape
    assert_close(x, v)
    if op == "sum0":
        assume(v.ndim >= 1)
        got, want = xnp.sum(x, axis=0), np.sum(v.astype(np.float64), axis=0)
        return assert_close(got, want, v.dtype, rtol=1e-5, atol=1e-4)
    if op == "max_last":
        assume(v.ndim >= 1 and v.shape[-1] > 0)
        return assert_close(xnp.max(x, axis=-1), np.max(v, axis=-1))
    if op == "mean_all":
        assume(v.size > 0)
        return assert_close(xnp.mean(x), np.mean(v.astype(np.float64)), v.dtype, rtol=1e-5, atol=1e-5)
    with np.errstate(all="ignore"):
        want = _np_unary(op, v)
        ref = _np_unary(op, v.astype(np.float64))
    assert_close(_x_unary(xnp, op, x), ref, want.dtype, tol=TOL_TRANSCENDENTAL)


@st.composite
def op_chain(draw):
    """A random program: a list of steps, each unary, binary with a fresh
    broadcastable operand, binary with a scalar, or a reduction with keepdims."""
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "scalar", "reduce"]))
        if kind == "unary":
            steps.append(("unary", draw(st.sampled_from(["tanh", "sin", "negative", "abs", "square_c"]))))
        elif kind == "binary":
            steps.append(("binary", draw(st.sampled_from(["add", "subtract", "multiply", "maximum"]))))
        elif kind == "scalar":
            steps.append(("scalar", draw(st.sampled_from(["add", "multiply"])),
                          draw(st.floats(-2, 2, allow_nan=False, width=32))))
        else:
            steps.append(("reduce", draw(st.sampled_from(["sum", "max", "mean"]))))
    return steps


def _run_chain(m, steps, x, operands, axes):
    """Runs steps with module m (numpy or ember.xcs.numpy)."""
    k = 0
    for step in steps:
        if step[0] == "unary":
            x = m.clip(x * x, -3, 3) if step[1] == "square_c" else getattr(m, step[1])(x)
        elif step[0] == "binary":
            x = getattr(m, step[1])(x, operands[k])
            k += 1
        elif step[0] == "scalar":
            x = getattr(m, step[1])(x, step[2])
        else:
            ax = axes.pop(0) if axes else None
            if ax is not None and (np.ndim(x) == 0 or ax >= np.ndim(x)):
                ax = None
            x = getattr(m, step[1])(x, axis=ax, keepdims=ax is not None)
    return x


@given(data=st.data(), steps=op_chain(), dtype=FLOATS,
       shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
def test_random_op_chains(xnp, xcs, data, steps, dtype, shape):
    note(f"steps={steps}")
    a = _values(data.draw, shape, dtype)
    operands = []
    for step in steps:
        if step[0] == "binary":
            # a shape broadcastable against the running result: a suffix of
            # `shape` with some dims set to 1 (reductions keep dims)
            nd = data.draw(st.integers(0, len(shape)))
            sub = tuple(1 if data.draw(st.booleans()) else d for d in shape[len(shape) - nd:])
            operands.append(_values(data.draw, sub, dtype))
    axes = [data.draw(st.integers(0, len(shape) - 1)) for s in steps if s[0] == "reduce"]
    got = _run_chain(xnp, steps, xcs.asarray(a), [xcs.asarray(o) for o in operands], list(axes))
    with np.errstate(all="ignore"):
        want = np.asarray(_run_chain(np, steps, a, operands, list(axes)))
        ref = np.asarray(_run_chain(np, steps, a.astype(np.float64),
                                    [o.astype(np.float64) for o in operands], list(axes)))
    assert tuple(got.shape) == want.shape
    # errors compound along the chain: bound each step's float32 rounding
    r = 1e-4 if dtype == np.float32 else 1e-11
    assert_close(got, ref, want.dtype, rtol=r * len(steps), atol=r * len(steps) * 10)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6), data=st.data())
def test_reshape_roundtrip(xnp, xcs, shape, data):
    n = int(np.prod(shape))
    a = np.arange(n, dtype=np.float64).reshape(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    v = np.transpose(a, perm)
    x = xnp.transpose(xcs.asarray(a), perm)
    flat = xnp.reshape(x, (-1,))
    np.testing.assert_array_equal(np.asarray(flat), v.reshape(-1))
    back = xnp.reshape(flat, v.shape)
    np.testing.assert_array_equal(np.asarray(back), v)


@given(dtype_a=st.sampled_from([np.bool_, np.int32, np.int64, np.float16, np.float32, np.float64]),
       dtype_b=st.sampled_from([np.bool_, np.int32, np.int64, np.float16, np.float32, np.float64]),
       scalar=st.one_of(st.none(), st.integers(-100, 100), st.floats(-10, 10, allow_nan=False), st.booleans()),
       op=st.sampled_from(["add", "multiply", "maximum", "less_equal"]))
def test_promotion_property(xnp, xcs, dtype_a, dtype_b, scalar, op):
    a = np.arange(1, 4).astype(dtype_a)
    b = scalar if scalar is not None else np.arange(2, 5).astype(dtype_b)
    with np.errstate(all="ignore"):
        try:
            want = getattr(np, op)(a, b)
        except (TypeError, OverflowError):
            return
    got = getattr(xnp, op)(xcs.asarray(a), b if scalar is not None else xcs.asarray(b))
    assert got.dtype == want.dtype, f"{op}({a.dtype}, {b!r}): {got.dtype} vs numpy {want.dtype}"
    assert_close(got, want)
