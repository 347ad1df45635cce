"""Regressions found by differential testing against numpy: each test runs the
inputs that exposed a difference (and a few random or edge ones) through
ember.xcs and numpy and compares dtypes and values (bit for bit for ints);
a numpy error is expected as the matching XCSError subclass."""
import warnings

import numpy as np
import pytest
from ml_dtypes import bfloat16

import ember.xcs as xcs
import ember.xcs.numpy as xnp
from ember.xcs import jit, vmap


def same(got, want, rtol=0.0, atol=0.0):
    """got (an Array) has want's dtype and shape, and its values (NaNs equal; within rtol / atol for floats)."""
    assert isinstance(got, xcs.Array), type(got)
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if (rtol or atol) and (want.dtype.kind == "f" or want.dtype == bfloat16):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                   equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- float-only ufuncs: numpy's result dtype


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2"])
def test_logaddexp_promotes_first(name, rng):
    """The inputs are converted to the common float dtype before the difference: large ints do not
    wrap, a float16 with a float64 is computed in float64, bools give float16."""
    f, ref = getattr(xnp, name), getattr(np, name)
    cases = [
        (np.array([1], np.int32), np.array([-2**31], np.int32)),
        (np.array([2**62]), np.array([-2**62])),
        (np.zeros(1, np.float16), np.zeros(1)),
        (np.zeros(1, np.float16), np.zeros(1, np.float32)),
        (np.array([True]), np.array([1.0], np.float16)),
        (np.array([True, False]), np.array([True, True])),
        (np.array([True, False]), 1.5),
        (rng.integers(-2**31, 2**31, 20).astype(np.int32), rng.integers(-2**31, 2**31, 20).astype(np.int32)),
        (rng.standard_normal(20).astype(np.float32), 2.5),
        (np.array([1.0, -np.inf, np.inf, np.nan, 3.0]), np.array([1.0, -np.inf, np.inf, 0.0, -3.0])),
        (np.array([1.0, 2.0], bfloat16), np.array([1.0, -3.0], bfloat16)),
    ]
    with np.errstate(invalid="ignore"):
        for a, b in cases:
            same(f(a, b), ref(a, b), rtol=1e-6)
    # a Python number traced by jit stays weak: float32 data keeps float32
    assert jit(f)(np.ones(3, np.float32), 2.0).dtype == np.float32


def test_sinc_of_bool_and_int():
    """numpy's pi * where(x == 0, 1e-20, x) is float64 for bools and ints: sinc(False) is 1."""
    for x in (np.array([False, True]), np.array([0, 1, 2, -3], np.int32), np.linspace(-3, 3, 13)):
        same(xnp.sinc(x), np.sinc(x), rtol=1e-14)


# numpy's dtype for bool inputs, with int8 (which xcs lacks) as int32
BOOL_UFUNCS = ["arctan2", "hypot", "copysign", "true_divide", "floor_divide", "remainder", "fmod", "power",
               "add", "multiply", "maximum", "square", "reciprocal", "sin", "sqrt"]


@pytest.mark.parametrize("name", BOOL_UFUNCS)
def test_ufuncs_of_bools_take_numpys_dtype(name):
    """Bools meet numpy's first loop they cast to: float16 for the float functions (true_divide's resolver
    gives float64), int8 (here int32) for floor_divide, remainder, fmod, power, square and reciprocal; the
    same in jit and vmap."""
    a = np.array([False, True, True, False, True])
    b = np.array([True, True, True, True, False]) if name not in ("floor_divide", "remainder", "fmod") \
        else np.ones(5, bool)
    f, ref = getattr(xnp, name), getattr(np, name)
    args = (a,) if ref.nin == 1 else (a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(*args)
    if want.dtype == np.int8:
        want = want.astype(np.int32)
    same(f(*args), want, rtol=1e-3)
    same(jit(f)(*args), want, rtol=1e-3)
    same(vmap(f)(*(x.reshape(5, 1) for x in args)), want.reshape(5, 1), rtol=1e-3)


def test_heaviside_dtype_from_both_inputs(rng):
    x = np.array([-1, 0, 1], np.int32)
    cases = [(x, np.float32(0.5)), (x, np.array(True)), (x, 0.5),
             (np.array([0.0, 1.0, -2.0], bfloat16), np.array(True)),
             (np.array([-1.0, 0.0, 1.0, np.nan], np.float16), 0.5), (np.array([True, False]), np.array([True])),
             (rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float16))]
    for a, b in cases:
        same(xnp.heaviside(a, b), np.heaviside(a, b))


# ---------------------------------------------------------------- at[]: numpy's ufunc.at


AT_UFUNCS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide, "power": np.power}


@pytest.mark.parametrize("kind", list(AT_UFUNCS))
def test_at_float_update_of_int_array(kind, rng):
    """Float updates of an int array are combined in float and the result cast back (int(3 * 2.5)
    is 7, not 3 * int(2.5)); repeated known positions are updated one at a time, as numpy's."""
    base = np.array([3, 5, -4, 7], np.int32)
    keys = [0, (np.array([1]),), slice(None), np.array([True, False, True, True]), (np.array([0, 0, 1]),),
            (np.array([1, 0, 1, 1, 3]),)]
    values = [2.5, 0.5, -1.5, np.float32(2.5), 2, np.array(3, np.int64)]
    with np.errstate(all="ignore"):
        for key in keys:
            for v in values:
                want = base.copy()
                AT_UFUNCS[kind].at(want, key, v)
                same(getattr(xcs.asarray(base).at[key], kind)(v), want)
    x = rng.standard_normal(6) * 4
    idx = np.array([0, 2, 2, 5, 2])
    v = rng.standard_normal(5)
    want = x.astype(np.int64)
    with np.errstate(all="ignore"):
        AT_UFUNCS[kind].at(want, idx, v)
    same(jit(lambda a: getattr(a.at[idx], kind)(v))(x.astype(np.int64)), want)


def test_at_repeated_power_is_sequential():
    """(x ** a) ** b at a repeated position, as numpy's power.at: not x ** (a * b)."""
    for x, v in ((np.array([-8.0, 2.0]), np.array([2.0, 0.5, 3.0])), (np.array([3, 5], np.int32), 2.5)):
        want = x.copy()
        np.power.at(want, [0, 0, 1], v)
        same(xcs.asarray(x).at[np.array([0, 0, 1])].power(v), want, rtol=1e-15)


# ---------------------------------------------------------------- vmap keeps Python numbers weak


def test_vmap_unmapped_python_scalar_stays_weak():
    f = lambda x, s: x * s  # noqa: E731
    for dt, s in ((np.float32, 2), (np.int32, 2), (np.float16, 1.5), (np.float32, 2.5)):
        x = np.arange(6, dtype=dt).reshape(2, 3)
        want = x * s
        same(vmap(f, in_axes=(0, None))(x, s), want)
        same(jit(vmap(f, in_axes=(0, None)))(x, s), want)
        same(vmap(vmap(f, in_axes=(0, None)), in_axes=(0, None))(x, s), want)
    # a numpy scalar is strong
    x = np.ones((2, 3), np.float32)
    assert vmap(f, in_axes=(0, None))(x, np.float64(2)).dtype == np.float64


# ---------------------------------------------------------------- statistics and linalg dtypes


@pytest.mark.parametrize("name", ["nanquantile", "nanpercentile"])
def test_nanquantile_of_ints_keeps_dtype(name, rng):
    f, ref = getattr(xnp, name), getattr(np, name)
    scale = 100 if name == "nanpercentile" else 1
    for a in (np.array([1, 2, 3], np.int32), rng.integers(-100, 100, (4, 7)), np.array([True, False, True])):
        for method in ("inverted_cdf", "closest_observation", "lower", "higher", "nearest", "linear"):
            if a.dtype == bool and method == "linear":
                continue  # numpy cannot subtract booleans
            for q in (0.5, [0.1, 0.9]):
                for axis in (None, -1):
                    q_ = np.asarray(q) * scale
                    same(f(a, q_, axis=axis, method=method), ref(a, q_, axis=axis, method=method), rtol=1e-15)


def test_lstsq_rank_is_int32_and_pinv_of_empty(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal(5)
    assert xnp.linalg.lstsq(a, b)[2].dtype == np.linalg.lstsq(a, b)[2].dtype == np.int32
    for shape in ((0, 3), (0, 0), (3, 0), (2, 0, 3), (2, 3, 0)):
        for dt in (np.float64, np.float32, np.int32):
            a = np.zeros(shape, dt)
            same(xnp.linalg.pinv(a), np.linalg.pinv(a))


@pytest.mark.parametrize("name,kw", [("nansum", {}), ("nansum", {"initial": 2}), ("nanprod", {}), ("nanmean", {}),
                                     ("nanvar", {}), ("nanvar", {"ddof": 1}), ("nanstd", {}), ("nanmax", {}),
                                     ("nanmin", {}), ("nanmax", {"initial": -5.0}), ("nanmin", {"initial": 5.0})])
def test_nan_reductions_take_where(name, kw, rng):
    a = rng.standard_normal((4, 5))
    a[0, 1] = a[2, 3] = a[3, 2] = np.nan
    mask = rng.random((4, 5)) > 0.3
    mask[:, 0] = True
    ints = rng.integers(-9, 9, (4, 5)).astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x in (a, a.astype(np.float32), ints):
            if x is ints and isinstance(kw.get("initial"), float):
                continue
            for axis in (None, 0, 1):
                for where in (mask, mask[0]):
                    if name in ("nanmax", "nanmin") and "initial" not in kw:  # numpy: no identity, so an error
                        with pytest.raises(ValueError, match="initial"):
                            getattr(np, name)(x, axis=axis, where=where)
                        with pytest.raises(xcs.XCSValueError, match="initial"):
                            getattr(xnp, name)(x, axis=axis, where=where)
                        continue
                    same(getattr(xnp, name)(x, axis=axis, where=where, **kw),
                         getattr(np, name)(x, axis=axis, where=where, **kw), rtol=1e-5, atol=1e-5)


def test_median_of_empty_is_nan_with_warning():
    for shape, axis in (((0,), None), ((0, 3), 0), ((2, 0, 3), 1), ((2, 0, 3), (0, 1))):
        for dt in (np.float64, np.float32, np.int32):
            a = np.zeros(shape, dt)
            with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
                got = xnp.median(a, axis=axis)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                same(got, np.median(a, axis=axis))


# ---------------------------------------------------------------- shapes and creation


def test_tril_triu_of_1d():
    v = np.array([1.0, 2.0, 3.0])
    for k in (-1, 0, 1):
        same(xnp.tril(v, k), np.tril(v, k))
        same(xnp.triu(v, k), np.triu(v, k))
    same(xnp.tril(np.array([1, 2], np.int32)), np.tril(np.array([1, 2], np.int32)))


def test_linspace_array_endpoints():
    lo, hi = np.array([0.0, 1.0]), np.array([2.0, 3.0])
    cases = [((lo, hi, 3), {}), ((lo, hi, 3), {"axis": 1}), ((lo, 5.0, 4), {"endpoint": False}),
             ((0.0, np.array([[1.0, 2.0], [3.0, 4.0]]), 5), {"axis": -1}),
             ((np.array([1, 2], np.int32), np.array([7, 9], np.int32), 4), {"dtype": np.int32}),
             ((np.array([1.0, 1.0]), np.array([1.0, 2.0]), 4), {}),
             ((lo.astype(np.float32), hi.astype(np.float32), 7), {}), ((lo, hi, 0), {})]
    for args, kw in cases:
        same(xnp.linspace(*args, **kw), np.linspace(*args, **kw))
    y, step = xnp.linspace(lo, hi, 5, retstep=True)
    same(step, np.linspace(lo, hi, 5, retstep=True)[1])
    with pytest.raises(xcs.XCSValueError, match="axis 1 is out of bounds"):
        xnp.linspace(0.0, 1.0, 3, axis=1)


def test_pad_checks_as_numpy():
    a = np.array([1, 2], np.int32)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError if bad != bad else OverflowError):
            np.pad(a, 1, constant_values=bad)
        with pytest.raises(xcs.XCSValueError, match="cannot convert float"):
            xnp.pad(a, 1, constant_values=bad)
    for mode, kw in (("constant", {"end_values": 5}), ("constant", {"stat_length": 1}),
                     ("edge", {"constant_values": 1}),
                     ("wrap", {"reflect_type": "even"}), ("maximum", {"end_values": 1})):
        with pytest.raises(ValueError, match="unsupported keyword arguments"):
            np.pad(a, 1, mode=mode, **kw)
        with pytest.raises(xcs.XCSValueError, match="unsupported keyword arguments"):
            xnp.pad(a, 1, mode=mode, **kw)
    x = np.arange(5.0)
    for mode, kw in (("constant", {"constant_values": 2.5}), ("linear_ramp", {"end_values": (1, 9)}),
                     ("maximum", {"stat_length": 2}), ("reflect", {"reflect_type": "even"}), ("edge", {})):
        same(xnp.pad(x, 2, mode=mode, **kw), np.pad(x, 2, mode=mode, **kw))


def test_errors_are_xcs_subclasses():
    with pytest.raises(xcs.XCSValueError, match="repeated axis"):
        xnp.flip(np.ones((2, 2)), (0, 0))
    with pytest.raises(xcs.XCSValueError):
        xnp.flip(np.ones((2, 2)), (0, -2))
    same(xnp.flip(np.arange(6.0).reshape(2, 3), (0, 1)), np.flip(np.arange(6.0).reshape(2, 3), (0, 1)))
    with pytest.raises(xcs.XCSValueError):
        xnp.repeat(np.ones(3), [1, 2])
    with pytest.raises(xcs.XCSIndexError):
        xnp.insert(np.arange(5), -6, 7)
    with pytest.raises(xcs.XCSIndexError):
        xnp.delete(np.arange(5), 5)


# ---------------------------------------------------------------- numpy's fallback on direct calls


def test_direct_calls_fall_back_to_numpy():
    """Cases xcs declines run numpy's on concrete inputs, called directly as through numpy; traced
    inputs raise XCSTracerError (never the private _Unsupported)."""
    a = np.array([0.0, 1.0])
    same(xnp.pad(a, 3, mode="reflect", reflect_type="odd"), np.pad(a, 3, mode="reflect", reflect_type="odd"))
    same(xnp.nanmedian(np.array([True, False, True])), np.nanmedian(np.array([True, False, True])))
    same(xnp.einsum(a, [0], a, [0]), np.einsum(a, [0], a, [0]))
    ramp = lambda v, w, i, k: None  # noqa: E731  (numpy's callable pad mode: leaves the padding as it is)
    same(xnp.pad(a, 1, mode=ramp), np.pad(a, 1, mode=ramp))
    q, r = xnp.linalg.qr(np.ones((3, 2)), mode="complete")
    assert isinstance(q, xcs.Array) and q.shape == (3, 3) and r.shape == (3, 2)
    with pytest.raises(xcs.XCSTracerError, match="reflect_type 'odd'"):
        jit(lambda x: xnp.pad(x, 3, mode="reflect", reflect_type="odd"))(a)
    with pytest.raises(xcs.XCSTracerError, match="q must be known"):
        jit(lambda x, q: xnp.nanquantile(x, q))(a, 0.5)


# ---------------------------------------------------------------- Python ints an int32 array cannot hold

BIG = 2**40


@pytest.mark.parametrize("case", [
    lambda m, x: x + BIG, lambda m, x: x * -BIG, lambda m, x: m.maximum(x, BIG), lambda m, x: x // BIG,
    lambda m, x: m.full(3, BIG, dtype=np.int32), lambda m, x: m.full_like(x, -BIG),
    lambda m, x: m.arange(BIG, BIG + 3, dtype=np.int32), lambda m, x: m.pad(x, 1, constant_values=BIG),
    lambda m, x: m.clip(x, BIG, None), lambda m, x: m.clip(x, None, -BIG), lambda m, x: x + 2**70,
], ids=["add", "mul", "maximum", "floordiv", "full", "full_like", "arange", "pad", "clip_lo", "clip_hi", "int64"])
def test_python_int_out_of_bounds_is_overflow_error(case):
    """numpy raises OverflowError for a Python int the int32 array's dtype cannot hold; xcs raises
    XCSOverflowError, also an OverflowError and an XCSValueError, and never wraps (full, full_like,
    arange and pad had filled INT32_MIN)."""
    a = np.arange(3, dtype=np.int32)
    with pytest.raises(OverflowError):
        case(np, a)
    with pytest.raises(xcs.XCSOverflowError) as e:
        np.asarray(case(xnp, xnp.asarray(a)))
    assert isinstance(e.value, xcs.XCSValueError) and "out of bounds for int" in str(e.value)


def test_python_int_beyond_int32_where_numpy_takes_it():
    """clip ignores a bound beyond the range on its open side, comparisons are exact, and an .at[]
    update that cannot fit raises (numpy's a[0] = 2**40) instead of wrapping."""
    a = np.arange(-2, 3, dtype=np.int32)
    x = xnp.asarray(a)
    same(xnp.clip(x, -BIG, 1), np.clip(a, -BIG, 1))
    same(xnp.clip(x, None, BIG), np.clip(a, None, BIG))
    same(xnp.clip(x, -BIG, BIG), np.clip(a, -BIG, BIG))
    same(x < BIG, a < BIG)
    for f in (lambda: x.at[0].set(BIG), lambda: x.at[1].add(-BIG)):
        with pytest.raises(OverflowError):
            f()
    same(x.at[0].set(2**31 - 1), np.array([2**31 - 1, -1, 0, 1, 2], np.int32))


# ---------------------------------------------------------------- gradients numpy has no word on


def test_rounding_has_zero_gradient():
    """rint (an op since rint's add-and-subtract passed the gradient through), round and around
    are piecewise constant: zero gradient, as floor and ceil; rint's values are numpy's bits."""
    x = np.array([0.3, 1.6, -2.5, 2.5, 13.0, -0.2])
    for f in (xnp.rint, lambda v: xnp.round(v, 1), lambda v: xnp.around(v, -1), lambda v: v.round(2),
              xnp.floor):
        same(xcs.grad(lambda v: f(v).sum())(x), np.zeros_like(x))
    edge = np.array([0.5, 1.5, -0.5, -0.3, 2**52 - 0.5, 2**52 + 1, np.nan, np.inf, -np.inf, 8388607.5])
    for dt in (np.float64, np.float32, np.float16):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 2**52 overflows float16: inf
            v = edge.astype(dt)
        got = np.asarray(xnp.rint(v))
        assert got.dtype == dt and got.tobytes() == np.rint(v).tobytes(), (dt, got, np.rint(v))


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2"])
def test_logaddexp_gradient_far_apart_and_infinite(name):
    """The branch where() does not select no longer overflows: far-apart inputs (a gap of 100 in
    float32, 800 in float64) and an infinite one give the softmax weights, not NaN."""
    f = getattr(xnp, name)
    base = 2.0 if name == "logaddexp2" else np.e
    for dt, gap in ((np.float32, 100.0), (np.float64, 800.0)):
        x = np.array([0.0, 1.0], dt)
        same(xcs.grad(lambda v: f(v, v + gap).sum())(x), np.ones(2, dt))
        same(xcs.grad(lambda v: f(v, gap).sum())(x), np.zeros(2, dt), atol=1e-20)
        same(xcs.grad(lambda v: f(v, -np.inf).sum())(x), np.ones(2, dt))
    x = np.array([-1.0, 0.0, 2.0])  # the weight of x1: base**x1 / (base**x1 + base**0.5)
    same(xcs.grad(lambda v: f(v, 0.5).sum())(x), base ** x / (base ** x + base ** 0.5), rtol=1e-14)


# ---------------------------------------------------------------- round, quantile, gradient, searchsorted


def test_round_corners_as_numpy():
    """Bools round as rint (float16) and refuse other decimals; ints beyond the dtype's range round
    to 0; 10**d is built as numpy builds it, so huge decimals give NaN and big ones numpy's bits;
    decimals must be an integer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, d in ((np.array([True, False]), 0), (np.array([123, -5], np.int32), -10),
                     (np.array([125, 135, -125], np.int32), -1), (np.array([123]), -19), (np.array([1.5]), 400),
                     (np.array([1.5]), -400), (np.array([1e300]), -300), (np.array([1.23456789e-20]), 25),
                     (np.array([2.675, -0.125], np.float32), 2)):
            same(xnp.round(x, d), np.round(x, d))
    with pytest.raises(TypeError):
        xnp.round(np.array([1.5]), 1.5)
    with pytest.raises(TypeError):
        xnp.round(np.array([True]), 1)


def test_quantile_q_dtype_and_range():
    """q's own float dtype counts unless it is a Python number (numpy's rule); percentile divides as
    numpy does; a NaN q is out of range."""
    a, h = np.arange(10, dtype=np.float32), np.arange(10, dtype=np.float16)
    for d in (a, h):
        for q in (0.3, np.float32(.3), np.array([.3], np.float32), np.float64(.3), np.array(0.3), [0.3],
                  np.float16(.5)):
            same(xnp.quantile(d, q), np.quantile(d, q), rtol=1e-3)
        for q in (30, 30.0, np.float64(30), np.float32(30), np.array([30], np.float32)):
            same(xnp.percentile(d, q), np.percentile(d, q), rtol=1e-3)
    for bad in (np.nan, 1.5, -0.1):
        with pytest.raises(ValueError):
            xnp.quantile(a, bad)


def test_gradient_keeps_f_dtype_with_float64_coordinates(rng):
    f = rng.standard_normal(12).astype(np.float32)
    x = np.cumsum(rng.uniform(0.5, 1.5, 12))
    same(xnp.gradient(f, x), np.gradient(f, x), rtol=1e-6)
    same(xnp.gradient(f.astype(np.float16), x), np.gradient(f.astype(np.float16), x), rtol=1e-3)


def test_searchsorted_sorter_and_digitize_bins_checked_as_numpy():
    with pytest.raises(ValueError, match="Sorter index out of range"):
        xnp.searchsorted([1., 2, 3], 2., sorter=np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="sorter.size must equal a.size"):
        xnp.searchsorted([1., 2, 3], 2., sorter=np.array([0, 1]))
    for bins in ([0, np.nan], [0, 1, np.nan], [3, 2, 2, 1], [1, 1, 1], []):
        same(xnp.digitize([0.5, 2.0], bins), np.digitize([0.5, 2.0], bins))
    for bins in ([np.nan, 0, 1], [1, 2, 1]):
        with pytest.raises(ValueError, match="monotonically"):
            xnp.digitize([0.5], bins)


def test_small_corners_as_numpy():
    """Shift operators on Arrays, cumsum/cumprod of a 0-d array along axis 0, bincount of an empty
    list, partition of an empty array, and numpy's checks of sort's kind and partition's kth."""
    a = np.array([-8, -1, 0, 3, 2**30], np.int32)
    x = xnp.asarray(a)
    for s in (0, 1, 5, 31, 32, -1):
        same(x << s, a << s)
        same(x >> s, a >> s)
    same(3 << xnp.asarray(np.arange(3, dtype=np.int32)), 3 << np.arange(3, dtype=np.int32))
    same(jit(lambda v: v << 2)(a), a << 2)
    for f in ("cumsum", "cumprod"):
        same(getattr(xnp, f)(np.float32(3), axis=0), getattr(np, f)(np.float32(3), axis=0))
    same(xnp.bincount([]), np.bincount([]))
    same(xnp.partition(np.array([]), 0), np.partition(np.array([]), 0))
    for f in (xnp.sort, xnp.argsort):
        with pytest.raises(ValueError, match="sort kind"):
            f(np.ones(3), kind="foo")
        f(np.ones(3), kind="stable")
    with pytest.raises(TypeError, match="Partition index must be integer"):
        xnp.partition(np.ones(3), 1.5)
