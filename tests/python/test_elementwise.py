"""Elementwise ops against numpy: every unary and binary op of docs/api.md,
each dtype it supports, shapes from 0-d and size-0 to 300 000 elements (the
OpenMP path), broadcasting, strided/transposed/reversed views, and numpy's
dtype promotion including Python scalars (NEP 50)."""
import math

import numpy as np
import pytest

from conftest import (ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, TOL_TRANSCENDENTAL,
                      apply_layout, assert_close, make_pair, random_array, reference)

BIG = 300_000  # > XCS_CPU_PAR_MIN (32 768) in every test that uses it

# Shapes for unary ops: 0-d, empty, size 1, odd length, 3-D, an empty middle dim.
UNARY_SHAPES = [(), (0,), (1,), (7,), (2, 3, 4), (5, 0, 3), (BIG,)]

# name -> (dtypes supported as numpy supports them, input kind, tolerance table, upcast)
# "positive" inputs keep log/sqrt in their real domain.
UNARY = {
    "negative": ((np.int32, np.int64, np.float32, np.float64), "normal", None, True),
    "positive": ((np.int32, np.int64, np.float32, np.float64), "normal", None, True),
    "abs": (ALL_DTYPES, "normal", None, True),
    "absolute": (ALL_DTYPES, "normal", None, True),
    "exp": (ALL_DTYPES, "small", None, True),
    "log": (ALL_DTYPES[1:], "positive", None, True),
    "log1p": (ALL_DTYPES[1:], "positive", None, True),
    "expm1": (ALL_DTYPES, "small", None, True),
    "sqrt": (ALL_DTYPES[1:], "positive", None, True),
    "sin": (ALL_DTYPES, "normal", None, True),
    "cos": (ALL_DTYPES, "normal", None, True),
    "tanh": (ALL_DTYPES, "normal", TOL_TRANSCENDENTAL, True),
    "floor": (ALL_DTYPES, "small", None, False),
    "ceil": (ALL_DTYPES, "small", None, False),
    "sign": ((np.int32, np.int64, np.float32, np.float64), "normal", None, True),
    "logical_not": (ALL_DTYPES, "small", None, True),
    "invert": ((np.bool_, np.int32, np.int64), "normal", None, True),
    "square": ((np.int32, np.int64, np.float32, np.float64), "normal", None, True),
    "reciprocal": (FLOAT_DTYPES, "positive", None, True),
}

UNARY_CASES = [
    pytest.param(name, dt, shape, id=f"{name}-{np.dtype(dt).name}-{shape}")
    for name, (dts, _, _, _) in UNARY.items()
    for dt in dts
    for shape in UNARY_SHAPES
    # the 300k case once per op and float dtype, keeps the suite fast
    if shape != (BIG,) or np.dtype(dt) in (np.dtype(np.float32), np.dtype(np.float64))
]


@pytest.mark.parametrize("name,dtype,shape", UNARY_CASES)
def test_unary(xnp, xcs, rng, name, dtype, shape):
    _, kind, tol, upcast = UNARY[name]
    a, x = make_pair(xcs, rng, shape, dtype, kind=kind)
    ref, rdt = reference(getattr(np, name), a, upcast=upcast)
    out = getattr(xnp, name)(x)
    assert isinstance(out, xcs.Array)
    assert_close(out, ref, rdt, tol=tol)


@pytest.mark.parametrize("layout", ["transposed", "step2", "negative"])
@pytest.mark.parametrize("name", ["exp", "negative", "sqrt", "tanh", "abs", "floor"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_views(xnp, xcs, rng, name, dtype, layout):
    shape = (37, 41)  # odd sizes so no vector loop divides evenly
    _, kind, tol, upcast = UNARY[name]
    a, x = make_pair(xcs, rng, shape, dtype, layout=layout, kind=kind)
    ref, rdt = reference(getattr(np, name), a, upcast=upcast)
    assert_close(getattr(xnp, name)(x), ref, rdt, tol=tol)


@pytest.mark.parametrize("layout", ["transposed", "step2", "negative"])
def test_unary_views_large(xnp, xcs, rng, layout):
    a, x = make_pair(xcs, rng, (600, 700), np.float32, layout=layout)
    ref, rdt = reference(np.sin, a)
    assert_close(xnp.sin(x), ref, rdt)


def test_unary_special_values(xnp, xcs):
    a = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e300], np.float64)
    x = xcs.asarray(a)
    for name in ["exp", "expm1", "tanh", "sin", "cos", "floor", "ceil", "sign", "abs", "negative",
                 "square"]:
        with np.errstate(all="ignore"):
            ref = getattr(np, name)(a)
        got = np.asarray(getattr(xnp, name)(x))
        np.testing.assert_array_equal(got, ref, err_msg=name)  # NaN == NaN here
    # signed zero survives negation and abs
    assert math.copysign(1.0, float(np.asarray(xnp.negative(xcs.asarray(np.array([0.0]))))[0])) == -1.0
    assert math.copysign(1.0, float(np.asarray(xnp.abs(xcs.asarray(np.array([-0.0]))))[0])) == 1.0
    with np.errstate(all="ignore"):
        for name, val in [("log", -1.0), ("sqrt", -1.0), ("log1p", -2.0)]:
            got = np.asarray(getattr(xnp, name)(xcs.asarray(np.array([val]))))
            assert np.isnan(got[0]), name
        assert np.asarray(xnp.log(xcs.asarray(np.array([0.0]))))[0] == -np.inf


def test_unary_bool_errors(xnp, xcs):
    """numpy refuses arithmetic negation of bool; so do we (TypeError)."""
    b = xcs.asarray(np.array([True, False]))
    with pytest.raises(TypeError):
        xnp.negative(b)
    with pytest.raises(TypeError):
        -b
    f = xcs.asarray(np.array([1.5]))
    with pytest.raises(TypeError):
        xnp.invert(f)
    with pytest.raises(TypeError):
        ~f


# ----------------------------------------------------------------- binary

# name -> (dtypes, lhs kind, rhs kind, tol table, upcast)
BINARY = {
    "add": (ALL_DTYPES, "normal", "normal", None, True),
    "subtract": (ALL_DTYPES[1:], "normal", "normal", None, True),
    "multiply": (ALL_DTYPES, "normal", "normal", None, True),
    "divide": (ALL_DTYPES[1:], "normal", "positive", None, True),
    "true_divide": (ALL_DTYPES[1:], "normal", "positive", None, True),
    "floor_divide": (ALL_DTYPES[1:], "normal", "positive", None, False),
    "mod": (ALL_DTYPES[1:], "normal", "positive", None, False),
    "remainder": (ALL_DTYPES[1:], "normal", "positive", None, False),
    "power": (ALL_DTYPES[1:], "positive", "small", TOL_TRANSCENDENTAL, True),
    "maximum": (ALL_DTYPES, "normal", "normal", None, True),
    "minimum": (ALL_DTYPES, "normal", "normal", None, True),
    "equal": (ALL_DTYPES, "small", "small", None, False),
    "not_equal": (ALL_DTYPES, "small", "small", None, False),
    "less": (ALL_DTYPES, "small", "small", None, False),
    "less_equal": (ALL_DTYPES, "small", "small", None, False),
    "greater": (ALL_DTYPES, "small", "small", None, False),
    "greater_equal": (ALL_DTYPES, "small", "small", None, False),
    "logical_and": (ALL_DTYPES, "small", "small", None, False),
    "logical_or": (ALL_DTYPES, "small", "small", None, False),
    "logical_xor": (ALL_DTYPES, "small", "small", None, False),
    "bitwise_and": ((np.bool_,) + INT_DTYPES, "normal", "normal", None, False),
    "bitwise_or": ((np.bool_,) + INT_DTYPES, "normal", "normal", None, False),
    "bitwise_xor": ((np.bool_,) + INT_DTYPES, "normal", "normal", None, False),
}

BINARY_SHAPES = [
    ((), ()),
    ((0,), (0,)),
    ((1,), (1,)),
    ((7,), ()),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 4)),
    ((5, 0, 3), (1, 3)),
    ((0,), (1,)),
    ((BIG,), (BIG,)),
    ((600, 500), (500,)),  # broadcast on the OpenMP path
]

BINARY_CASES = [
    pytest.param(name, dt, sa, sb, id=f"{name}-{np.dtype(dt).name}-{sa}-{sb}")
    for name, (dts, _, _, _, _) in BINARY.items()
    for dt in dts
    for sa, sb in BINARY_SHAPES
    if (math.prod(sa) < 100_000 and math.prod(sb) < 100_000)
    or np.dtype(dt) in (np.dtype(np.float32), np.dtype(np.int64))
]


def _binary_inputs(xcs, rng, name, dtype, sa, sb, layout_a="contiguous", layout_b="contiguous"):
    _, ka, kb, _, _ = BINARY[name]
    if name == "power" and np.dtype(dtype).kind in "iu":
        kb = "positive"  # integers to negative powers are an error (tested below)
        a = random_array(rng, sa, dtype, "small")
        b = np.minimum(random_array(rng, sb, dtype, "positive"), 9).astype(dtype)
        return a, xcs.asarray(a), b, xcs.asarray(b)
    a, x = make_pair(xcs, rng, sa, dtype, layout=layout_a, kind=ka)
    b, y = make_pair(xcs, rng, sb, dtype, layout=layout_b, kind=kb)
    return a, x, b, y


@pytest.mark.parametrize("name,dtype,sa,sb", BINARY_CASES)
def test_binary(xnp, xcs, rng, name, dtype, sa, sb):
    _, _, _, tol, upcast = BINARY[name]
    a, x, b, y = _binary_inputs(xcs, rng, name, dtype, sa, sb)
    fn = getattr(np, name)
    ref, rdt = reference(fn, a, b, upcast=upcast)
    assert_close(getattr(xnp, name)(x, y), ref, rdt, tol=tol)
    if name in ("floor_divide", "mod", "remainder", "divide", "true_divide", "power"):
        return  # operand domains are not symmetric
    # and the mirrored broadcast
    ref, rdt = reference(fn, b, a, upcast=upcast)
    assert_close(getattr(xnp, name)(y, x), ref, rdt, tol=tol)


@pytest.mark.parametrize("la,lb", [("transposed", "contiguous"), ("step2", "negative"),
                                   ("negative", "transposed"), ("transposed", "transposed")])
@pytest.mark.parametrize("name", ["add", "multiply", "divide", "maximum", "less", "power"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_binary_views(xnp, xcs, rng, name, dtype, la, lb):
    shape = (33, 29)
    a, x, b, y = _binary_inputs(xcs, rng, name, dtype, shape, shape, la, lb)
    _, _, _, tol, upcast = BINARY[name]
    ref, rdt = reference(getattr(np, name), a, b, upcast=upcast)
    assert_close(getattr(xnp, name)(x, y), ref, rdt, tol=tol)


def test_binary_views_large(xnp, xcs, rng):
    a, x = make_pair(xcs, rng, (500, 640), np.float32, layout="transposed")
    b, y = make_pair(xcs, rng, (500, 640), np.float32, layout="step2")
    ref, rdt = reference(np.add, a, b)
    assert_close(xnp.add(x, y), ref, rdt)
    c, z = make_pair(xcs, rng, (640,), np.float32, layout="negative")
    ref, rdt = reference(np.multiply, a, c)
    assert_close(xnp.multiply(x, z), ref, rdt)


# ----------------------------------------------------------------- operators

OPERATORS = [
    ("+", lambda p, q: p + q), ("-", lambda p, q: p - q), ("*", lambda p, q: p * q),
    ("/", lambda p, q: p / q), ("//", lambda p, q: p // q), ("%", lambda p, q: p % q),
    ("**", lambda p, q: p ** q), ("==", lambda p, q: p == q), ("!=", lambda p, q: p != q),
    ("<", lambda p, q: p < q), ("<=", lambda p, q: p <= q), (">", lambda p, q: p > q),
    (">=", lambda p, q: p >= q),
]


@pytest.mark.parametrize("sym,op", OPERATORS, ids=[o[0] for o in OPERATORS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_operators(xcs, rng, sym, op, dtype):
    a = random_array(rng, (4, 5), dtype, "positive")
    b = random_array(rng, (5,), dtype, "positive")
    if sym == "**":
        a = random_array(rng, (4, 5), dtype, "small")
        b = np.minimum(b, 5).astype(dtype)
    x, y = xcs.asarray(a), xcs.asarray(b)
    upcast = sym not in ("//", "%")
    ref, rdt = reference(op, a, b, upcast=upcast)
    tol = TOL_TRANSCENDENTAL if sym == "**" else None
    assert_close(op(x, y), ref, rdt, tol=tol, err_msg=f"Array {sym} Array")
    # numpy on one side dispatches to xcs too (__array_ufunc__ / reflected ops)
    r1 = op(x, b)
    r2 = op(a, y)
    assert isinstance(r1, xcs.Array), type(r1)
    assert isinstance(r2, xcs.Array), type(r2)
    assert_close(r1, ref, rdt, tol=tol, err_msg=f"Array {sym} ndarray")
    assert_close(r2, ref, rdt, tol=tol, err_msg=f"ndarray {sym} Array")


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.int64])
def test_bitwise_operators(xcs, rng, dtype):
    a = random_array(rng, (6,), dtype)
    b = random_array(rng, (6,), dtype)
    x, y = xcs.asarray(a), xcs.asarray(b)
    for op in (lambda p, q: p & q, lambda p, q: p | q, lambda p, q: p ^ q):
        assert_close(op(x, y), op(a, b))
    assert_close(~x, ~a)


def test_unary_operators(xcs, rng):
    a = random_array(rng, (3, 4), np.float32)
    x = xcs.asarray(a)
    assert_close(-x, -a)
    assert_close(+x, +a)
    assert_close(abs(x), np.abs(a))
    i = random_array(rng, (5,), np.int64)
    assert_close(abs(xcs.asarray(i)), np.abs(i))


def test_list_operands(xcs, xnp):
    x = xcs.asarray(np.arange(3, dtype=np.float32))
    assert_close(x + [1, 2, 3], np.arange(3, dtype=np.float32) + np.array([1, 2, 3]),
                 np.result_type(np.float32, np.int64))
    assert_close(xnp.add([1.0, 2.0], [[1.0], [2.0]]), np.add([1.0, 2.0], [[1.0], [2.0]]))
    assert_close(xnp.exp([0.0, 1.0]), np.exp([0.0, 1.0]))


# ----------------------------------------------------------------- promotion

@pytest.mark.parametrize("da", ALL_DTYPES)
@pytest.mark.parametrize("db", ALL_DTYPES)
def test_promotion_arrays(xnp, xcs, rng, da, db):
    a = random_array(rng, (3,), da, "positive")
    b = random_array(rng, (3,), db, "positive")
    x, y = xcs.asarray(a), xcs.asarray(b)
    for name in ("add", "multiply", "maximum", "divide", "less"):
        ref, rdt = reference(getattr(np, name), a, b)
        assert_close(getattr(xnp, name)(x, y), ref, rdt, err_msg=f"{name}({a.dtype}, {b.dtype})")


# NEP 50: Python scalars are weak, numpy scalars are strong.
SCALARS = [2, -3, 2.5, True, False]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
def test_promotion_python_scalars(xcs, rng, dtype, scalar):
    a = random_array(rng, (4,), dtype, "positive")
    x = xcs.asarray(a)
    ops = [("+", lambda p, q: p + q), ("*", lambda p, q: p * q), (">", lambda p, q: p > q)]
    if np.dtype(dtype) != np.bool_ or type(scalar) is not bool:
        ops.append(("-", lambda p, q: p - q))
    for sym, op in ops:
        with np.errstate(all="ignore"):
            try:
                want = op(a, scalar)
            except TypeError:
                with pytest.raises(TypeError):
                    op(x, scalar)
                continue
            want_r = op(scalar, a)
        assert_close(op(x, scalar), want, want.dtype, err_msg=f"{a.dtype} {sym} {scalar!r}")
        assert_close(op(scalar, x), want_r, want_r.dtype, err_msg=f"{scalar!r} {sym} {a.dtype}")


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_promotion_numpy_scalars_are_strong(xcs, dtype):
    a = np.arange(1, 4, dtype=dtype)
    x = xcs.asarray(a)
    for s in (np.float64(2.5), np.int64(3), np.float32(1.5)):
        want = a + s
        assert_close(x + s, want, want.dtype, err_msg=f"{a.dtype} + {type(s).__name__}")


def test_scalar_results_keep_float32(xcs, xnp):
    """The classic NEP 50 cases spelled out."""
    f = xcs.asarray(np.ones(3, np.float32))
    i = xcs.asarray(np.ones(3, np.int32))
    b = xcs.asarray(np.ones(3, np.bool_))
    assert (f + 2).dtype == np.float32
    assert (f * 2.5).dtype == np.float32
    assert (i + 2).dtype == np.int32
    assert (i + 2.5).dtype == np.float64
    assert (b + 1).dtype == np.int64
    assert (b + 1.5).dtype == np.float64
    assert (i / 2).dtype == np.float64
    assert (f / 2).dtype == np.float32
    assert xnp.add(f, 1).dtype == np.float32


# ----------------------------------------------------------------- errors

@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("name", ["floor_divide", "mod", "remainder"])
def test_integer_division_by_zero(xnp, xcs, name, dtype):
    x = xcs.asarray(np.array([1, 2, 3], dtype))
    y = xcs.asarray(np.array([1, 0, 3], dtype))
    with pytest.raises(xcs.XCSZeroDivisionError) as ei:
        getattr(xnp, name)(x, y)
    assert isinstance(ei.value, ZeroDivisionError)
    assert isinstance(ei.value, xcs.XCSError)
    with pytest.raises(ZeroDivisionError):
        x // 0
    with pytest.raises(ZeroDivisionError):
        x % 0


def test_float_division_by_zero_is_ieee(xnp, xcs):
    x = xcs.asarray(np.array([1.0, -1.0, 0.0]))
    got = np.asarray(x / 0.0)
    assert got[0] == np.inf and got[1] == -np.inf and np.isnan(got[2])
    got = np.asarray(xnp.floor_divide(x, 0.0))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, np.floor_divide(np.array([1.0, -1.0, 0.0]), 0.0))
    # int / int is a float division: no error
    r = np.asarray(xcs.asarray(np.array([1, 0])) / xcs.asarray(np.array([0, 0])))
    assert r[0] == np.inf and np.isnan(r[1])


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_negative_power(xnp, xcs, dtype):
    x = xcs.asarray(np.array([2, 3], dtype))
    with pytest.raises(xcs.XCSValueError) as ei:
        xnp.power(x, xcs.asarray(np.array([1, -1], dtype)))
    assert "negative" in str(ei.value).lower()
    assert isinstance(ei.value, ValueError)  # numpy raises ValueError here too
    with pytest.raises(ValueError):
        x ** -2


def test_integer_wraparound_matches_numpy(xnp, xcs):
    a = np.array([2**31 - 1, -(2**31)], np.int32)
    x = xcs.asarray(a)
    with np.errstate(all="ignore"):
        assert_close(xnp.add(x, xcs.asarray(np.array([1, -1], np.int32))), a + np.array([1, -1], np.int32))
        assert_close(xnp.multiply(x, xcs.asarray(np.array([2, 2], np.int32))), a * np.int32(2))
    assert_close(xnp.power(xcs.asarray(np.array([3], np.int64)), xcs.asarray(np.array([40], np.int64))),
                 np.power(np.array([3], np.int64), np.array([40], np.int64)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_floor_divide_mod_signs(xnp, xcs, dtype):
    """Python/numpy floor semantics: the remainder has the divisor's sign."""
    a = np.array([7, -7, 7, -7, 0, 5], dtype)
    b = np.array([2, 2, -2, -2, 3, 5], dtype)
    x, y = xcs.asarray(a), xcs.asarray(b)
    assert_close(xnp.floor_divide(x, y), np.floor_divide(a, b))
    assert_close(xnp.mod(x, y), np.mod(a, b))
    if np.dtype(dtype).kind == "f":
        z = np.asarray(xnp.mod(xcs.asarray(np.array([-0.0, 0.0], dtype)), xcs.asarray(np.array([3.0, -3.0], dtype))))
        np.testing.assert_array_equal(np.signbit(z), np.signbit(np.mod(np.array([-0.0, 0.0]), np.array([3.0, -3.0]))))


# ----------------------------------------------------------------- NaN semantics

def test_maximum_minimum_nan_propagation(xnp, xcs):
    a = np.array([1.0, np.nan, 3.0, np.nan, -np.inf], np.float32)
    b = np.array([np.nan, 2.0, 1.0, np.nan, np.inf], np.float32)
    for name in ("maximum", "minimum"):
        got = np.asarray(getattr(xnp, name)(xcs.asarray(a), xcs.asarray(b)))
        np.testing.assert_array_equal(got, getattr(np, name)(a, b), err_msg=name)


def test_comparisons_with_nan(xnp, xcs):
    a = np.array([np.nan, 1.0, np.nan, np.inf])
    b = np.array([np.nan, np.nan, 1.0, np.inf])
    x, y = xcs.asarray(a), xcs.asarray(b)
    for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
        assert_close(getattr(xnp, name)(x, y), getattr(np, name)(a, b), err_msg=name)


# ----------------------------------------------------------------- where / clip

@pytest.mark.parametrize("shapes", [((4,), (4,), (4,)), ((3, 1), (1, 4), ()), ((), (2, 3), (3,)),
                                    ((0, 3), (3,), (1,)), ((BIG,), (BIG,), ())])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.int32, np.float64),
                                    (np.int64, np.int64), (np.bool_, np.int32)])
def test_where(xnp, xcs, rng, shapes, dtypes):
    sc, sa, sb = shapes
    c = rng.random(sc) < 0.4
    a = random_array(rng, sa, dtypes[0])
    b = random_array(rng, sb, dtypes[1])
    want = np.where(c, a, b)
    got = xnp.where(xcs.asarray(c), xcs.asarray(a), xcs.asarray(b))
    assert_close(got, want)


def test_where_non_bool_condition_and_scalars(xnp, xcs, rng):
    c = rng.integers(-2, 3, size=(10,))
    a = random_array(rng, (10,), np.float32)
    assert_close(xnp.where(xcs.asarray(c), xcs.asarray(a), 0.0), np.where(c, a, 0.0).astype(np.float32),
                 np.float32)
    assert_close(xnp.where(c > 0, 1, 2), np.where(c > 0, 1, 2))
    cf = rng.standard_normal(10)
    assert_close(xnp.where(xcs.asarray(cf), 1.0, -1.0), np.where(cf, 1.0, -1.0))


def test_where_views(xnp, xcs, rng):
    c, cx = make_pair(xcs, rng, (20, 30), np.bool_, layout="transposed")
    a, ax = make_pair(xcs, rng, (20, 30), np.float64, layout="negative")
    b, bx = make_pair(xcs, rng, (20, 30), np.float64, layout="step2")
    assert_close(xnp.where(cx, ax, bx), np.where(c, a, b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(), (0,), (17,), (4, 5), (BIG,)])
def test_clip(xnp, xcs, rng, dtype, shape):
    a = random_array(rng, shape, dtype)
    x = xcs.asarray(a)
    lo, hi = (-1, 1) if np.dtype(dtype).kind == "i" else (-0.5, 0.75)
    assert_close(xnp.clip(x, lo, hi), np.clip(a, lo, hi))


def test_clip_arrays_and_promotion(xnp, xcs, rng):
    a = random_array(rng, (3, 4), np.float32)
    lo = random_array(rng, (4,), np.float32) - 1
    hi = lo + 1.5
    assert_close(xnp.clip(xcs.asarray(a), xcs.asarray(lo), xcs.asarray(hi)), np.clip(a, lo, hi))
    i = np.arange(-5, 5, dtype=np.int32)
    assert_close(xnp.clip(xcs.asarray(i), 0, 3.5), np.clip(i, 0, 3.5))  # float64 by NEP 50
    assert_close(xnp.clip(xcs.asarray(i), None, 2), np.clip(i, None, 2))


def test_clip_nan(xnp, xcs):
    a = np.array([np.nan, -5.0, 5.0, 0.5])
    assert_close(xnp.clip(xcs.asarray(a), -1.0, 1.0), np.clip(a, -1.0, 1.0))


# ----------------------------------------------------------------- astype

@pytest.mark.parametrize("src", ALL_DTYPES)
@pytest.mark.parametrize("dst", ALL_DTYPES)
def test_astype(xnp, xcs, rng, src, dst):
    a = random_array(rng, (5, 3), src, "small")
    if np.dtype(src).kind == "f":
        a = a * 10  # values with fractional parts, both signs: truncation toward zero
    want = a.astype(dst)
    x = xcs.asarray(a)
    assert_close(x.astype(dst), want)
    assert_close(xnp.astype(x, dst), want)
    assert_close(x.T.astype(np.dtype(dst).name), a.T.astype(dst))


@pytest.mark.parametrize("dtype,value", [(np.int32, 2**40), (np.int32, -(2**31) - 1), (np.int64, 2**63),
                                         (np.int64, -(2**63) - 1)])
def test_python_int_out_of_range_for_weak_dtype(xcs, dtype, value):
    """NEP 50: a Python int that the array's integer dtype cannot hold is an
    error (numpy: OverflowError), never a silently wrapped value."""
    a = np.arange(3, dtype=dtype)
    with pytest.raises(OverflowError):
        a + value
    x = xcs.asarray(a)
    with pytest.raises((OverflowError, xcs.XCSError)):
        x + value
    with pytest.raises((OverflowError, xcs.XCSError)):
        value * x
