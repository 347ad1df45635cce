"""numpy functions composed of xcs ops (ember.xcs.numpy: isnan/isinf/isfinite,
nan_to_num, rint/round, flip, swapaxes/moveaxis, roll, tril/triu, outer,
diagonal/trace/diag, repeat, tile, pad, take_along_axis, cumsum/cumprod):
numpy's values, dtypes and signs of zero eagerly and under jit, on
special values (NaN, infinities, halves, -0.0); their gradients (the
linear ones, against the adjoint probed one element at a time) and vmap."""
import warnings

import numpy as np
import pytest
import ml_dtypes
from ml_dtypes import bfloat16

import ember.xcs as xcs
from conftest import assert_same_bits
from ember.xcs import grad, jit, vmap

R = np.random.default_rng(7)  # fixed inputs: the table below is built once
A = R.standard_normal((4, 5))
A3 = R.standard_normal((2, 4, 5))
V = R.standard_normal(4)
SPECIAL = np.array([1.5, -2.5, 0.5, -0.5, 2.5, np.nan, np.inf, -np.inf, -0.2, 3.7, 1e300, -0.0, 4503599627370497.0])
INTS = np.array([1234, 1250, 1350, -1250, -1350, 5, 0, -49, 150])
IDX = R.integers(-5, 5, (4, 3))

CASES = {
    "isnan": (np.isnan, [SPECIAL]), "isinf": (np.isinf, [SPECIAL]), "isfinite": (np.isfinite, [SPECIAL]),
    "isnan_int": (np.isnan, [INTS]), "isfinite_int": (np.isfinite, [INTS]), "rint_int": (np.rint, [INTS]),
    "rint_bool": (np.rint, [INTS > 0]), "cumsum_empty": (lambda x: np.cumsum(x, axis=0), [np.ones((0, 3))]),
    "roll_big": (lambda x: np.roll(x, -13), [A]), "diagonal_past": (lambda x: np.diagonal(x, 9), [A]),
    "tile_0": (lambda x: np.tile(x, (0, 2)), [A]), "repeat_0": (lambda x: np.repeat(x, 0, axis=1), [A]),
    "nan_to_num": (np.nan_to_num, [SPECIAL]),
    "nan_to_num_kw": (lambda x: np.nan_to_num(x, nan=-1.0, posinf=9.0), [SPECIAL]),
    "nan_to_num_f32": (np.nan_to_num, [np.where(np.abs(SPECIAL) > 1e30, np.inf, SPECIAL).astype(np.float32)]),
    "rint": (np.rint, [SPECIAL]), "rint_f32": (np.rint, [np.where(np.abs(SPECIAL) > 1e30, -np.inf, SPECIAL).astype(np.float32)]),
    "rint_f16": (np.rint, [np.array([0.5, 1.5, 2.5, -0.5, 1000.5, -0.0], np.float16)]),
    "round_2": (lambda x: np.round(x, 2), [A * 10]), "round_-1": (lambda x: np.round(x, -1), [A * 100]),
    "round_int_-2": (lambda x: np.round(x, -2), [INTS]), "around": (np.around, [SPECIAL]),
    "flip": (np.flip, [A]), "flip_axis": (lambda x: np.flip(x, 1), [A3]), "fliplr": (np.fliplr, [A]),
    "flipud": (np.flipud, [A]), "swapaxes": (lambda x: np.swapaxes(x, 0, 2), [A3]),
    "moveaxis": (lambda x: np.moveaxis(x, 0, -1), [A3]), "moveaxis_2": (lambda x: np.moveaxis(x, (0, 1), (2, 0)), [A3]),
    "roll": (lambda x: np.roll(x, 2), [A]), "roll_axis": (lambda x: np.roll(x, -1, axis=1), [A3]),
    "roll_axes": (lambda x: np.roll(x, (1, 2), axis=(0, 2)), [A3]),
    "tril": (np.tril, [A]), "tril_k": (lambda x: np.tril(x, -1), [A3]), "triu_k": (lambda x: np.triu(x, 2), [A]),
    "outer": (np.outer, [V, A[0]]), "diagonal": (np.diagonal, [A]), "diagonal_1": (lambda x: np.diagonal(x, 1), [A]),
    "diagonal_-2": (lambda x: np.diagonal(x, -2), [A]), "diagonal_3d": (lambda x: np.diagonal(x, 0, 1, 2), [A3]),
    "trace": (np.trace, [A]), "trace_1": (lambda x: np.trace(x, 1), [A]), "diag_2d": (np.diag, [A]),
    "diag_1d": (np.diag, [V]), "diag_1d_k": (lambda x: np.diag(x, 2), [V]), "diag_1d_-k": (lambda x: np.diag(x, -1), [V]),
    "repeat": (lambda x: np.repeat(x, 2), [A]), "repeat_counts": (lambda x: np.repeat(x, [1, 0, 2, 1], axis=0), [A]),
    "tile": (lambda x: np.tile(x, 2), [A]), "tile_3": (lambda x: np.tile(x, (2, 1, 3)), [A]),
    "pad": (lambda x: np.pad(x, 1), [A]), "pad_widths": (lambda x: np.pad(x, ((0, 2), (1, 0)), constant_values=3.0), [A]),
    "take_along_axis": (lambda x, i: np.take_along_axis(x, i, axis=1), [A, IDX]),
    "take_along_axis_0": (lambda x, i: np.take_along_axis(x, i, axis=0), [A, R.integers(-4, 4, (2, 5))]),
    "cumsum": (lambda x: np.cumsum(x, axis=1), [A]), "cumsum_flat": (np.cumsum, [A3]),
    "cumsum_int32": (np.cumsum, [INTS.astype(np.int32)]), "cumsum_bool": (np.cumsum, [A > 0]),
    "cumprod": (lambda x: np.cumprod(x, axis=0), [A]),
}


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name, mode):
    f, args = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.asarray(f(*args))
        got = f(*[xcs.asarray(x) for x in args]) if mode == "eager" else jit(f)(*args)
    assert isinstance(got, xcs.Array)
    got = np.asarray(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    if name.startswith("cum") and want.dtype.kind == "f":  # summed by doubling steps: rounding differs
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    else:
        assert_same_bits(got, want)
    if want.dtype.kind == "f":  # -0.0 stays -0.0 (rint(-0.2), round(-0.3))
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


LINEAR = {
    "flip": lambda x: np.flip(x, 1), "roll": lambda x: np.roll(x, 2, axis=1), "tril": np.tril,
    "diagonal": lambda x: np.diagonal(x, 1), "trace": np.trace, "diag": np.diag,
    "repeat": lambda x: np.repeat(x, [1, 0, 2, 1], axis=0), "tile": lambda x: np.tile(x, (2, 1)),
    "pad": lambda x: np.pad(x, 1), "take_along_axis": lambda x: np.take_along_axis(x, IDX, axis=1),
    "cumsum": lambda x: np.cumsum(x, axis=1), "swapaxes": lambda x: np.swapaxes(x, 0, 1),
    "outer": lambda x: np.outer(x[0], x[1]),
}


@pytest.mark.parametrize("name", list(LINEAR))
def test_gradients_of_the_linear_ones(name, rng):
    f = LINEAR[name]
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal(np.shape(f(x)))
    g = np.asarray(grad(lambda x: (f(x) * w).sum())(x))
    if name == "outer":  # bilinear: d/dx0 = w @ x1, d/dx1 = x0 @ w
        ref = np.zeros_like(x)
        ref[0], ref[1] = w @ x[1], x[0] @ w
    else:  # the adjoint, one element at a time
        ref = np.array([(f(np.eye(x.size)[k].reshape(x.shape)) * w).sum() for k in range(x.size)]).reshape(x.shape)
    np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-10)


def test_under_vmap(rng):
    a = rng.standard_normal((3, 6))
    np.testing.assert_allclose(np.asarray(vmap(np.cumsum)(a)), np.cumsum(a, axis=1), rtol=1e-12)
    i = rng.integers(0, 6, (3, 2))
    np.testing.assert_array_equal(np.asarray(vmap(lambda x, j: np.take_along_axis(x, j, axis=0))(a, i)),
                                  np.take_along_axis(a, i, axis=1))
    np.testing.assert_array_equal(np.asarray(vmap(lambda x: np.roll(x, 1))(a)), np.roll(a, 1, axis=1))


def test_errors():
    with pytest.raises(xcs.XCSValueError, match="at least 1 dimension"):
        xcs.numpy.tril(np.float64(3))  # a 1-D x is a row broadcast, as numpy's
    with pytest.raises(xcs.XCSValueError, match="out of bounds"):
        xcs.numpy.flip(np.ones(3), 2)
    with pytest.raises(xcs.XCSValueError, match="same number of dimensions"):
        xcs.numpy.take_along_axis(np.ones((2, 3)), np.zeros(2, np.int64), 1)
    with pytest.raises(xcs.XCSTracerError, match="reflect_type .odd. is not supported"):  # traced: no fallback
        jit(lambda x: xcs.numpy.pad(x, 1, mode="reflect", reflect_type="odd"))(np.ones(3))
    np.testing.assert_array_equal(np.asarray(xcs.numpy.pad(np.arange(3.0), 2, mode="reflect", reflect_type="odd")),
                                  np.pad(np.arange(3.0), 2, mode="reflect", reflect_type="odd"))
    # numpy's own function for what xcs does not do, on concrete arrays
    np.testing.assert_array_equal(np.asarray(np.pad(xcs.asarray(np.arange(3.0)), 2, mode="reflect", reflect_type="odd")),
                                  np.pad(np.arange(3.0), 2, mode="reflect", reflect_type="odd"))


METHODS = [("clip", (0, 3)), ("round", (1,)), ("cumsum", (1,)), ("cumprod", ()), ("repeat", (2,)),
           ("swapaxes", (0, 1)), ("diagonal", (1,)), ("trace", ()), ("take", ([0, 2],)), ("dot", ())]


@pytest.mark.parametrize("name,args", METHODS, ids=[m[0] for m in METHODS])
def test_array_methods(name, args, rng):
    a = rng.standard_normal((3, 4)) * 3
    if name == "dot":
        args = (a.T,)
    want = getattr(a, name)(*args)
    np.testing.assert_allclose(np.asarray(getattr(xcs.asarray(a), name)(*args)), want, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jit(lambda x: getattr(x, name)(*args))(a)), want, rtol=1e-12)


TRIG = [("tan", (-1.4, 1.4)), ("arcsin", (-0.99, 0.99)), ("arccos", (-0.99, 0.99)), ("arctan", (-5, 5)),
        ("sinh", (-5, 5)), ("cosh", (-5, 5)), ("arcsinh", (-5, 5)), ("arccosh", (1.01, 6)), ("arctanh", (-0.99, 0.99)),
        ("log2", (0.01, 100)), ("log10", (0.01, 100)), ("exp2", (-10, 10))]


@pytest.mark.parametrize("name,dom", TRIG, ids=[t[0] for t in TRIG])
def test_more_unary_ops(name, dom, rng):
    """libm's values in float64 (numpy's too, to an ulp or two), float32 within a few ulps,
    numpy's NaN outside the domain, and gradients against finite differences."""
    f = getattr(np, name)
    x = rng.uniform(*dom, size=64)
    np.testing.assert_allclose(np.asarray(jit(f)(x)), f(x), rtol=4e-16, atol=0)
    x32 = x.astype(np.float32)
    got32 = np.asarray(f(xcs.asarray(x32)))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, f(x32.astype(np.float64)), rtol=3e-7, atol=0)
    odd = np.array([np.nan, 2.0, -2.0, 0.5, 0.0, -0.0])
    with np.errstate(all="ignore"):
        got, want = np.asarray(f(xcs.asarray(odd))), f(odd)
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=0)  # NaNs where numpy's are (libm vs numpy: an ulp)
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    g = np.asarray(grad(lambda v: f(v).sum())(x))
    eps = 1e-6
    np.testing.assert_allclose(g, (f(x + eps) - f(x - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)
    assert np.asarray(getattr(xcs.numpy, name)(np.arange(3))).dtype == np.float64  # ints compute in float


def test_arctan2_and_hypot(rng):
    y, x = rng.standard_normal(50), rng.standard_normal(50)
    for f in (np.arctan2, np.hypot):
        np.testing.assert_allclose(np.asarray(jit(f)(y, x)), f(y, x), rtol=4e-16)
        gy, gx = (np.asarray(v) for v in grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(y, x))
        eps = 1e-6
        np.testing.assert_allclose(gy, (f(y + eps, x) - f(y - eps, x)) / (2 * eps), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gx, (f(y, x + eps) - f(y, x - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)
    # the signed zeros and infinities atan2 distinguishes
    s = np.array([0.0, -0.0, 0.0, -0.0, 1.0, np.inf, -np.inf])
    t = np.array([0.0, 0.0, -0.0, -0.0, np.inf, np.inf, -1.0])
    np.testing.assert_array_equal(np.asarray(np.arctan2(xcs.asarray(s), t)), np.arctan2(s, t))
    assert float(np.asarray(np.hypot(xcs.asarray(1e300), 1e300))) == np.hypot(1e300, 1e300)  # no overflow


SORT_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_]


@pytest.mark.parametrize("shape", [(9, 13), (3, 700)], ids=["merge", "radix"])  # rows of 128 or more: radix
@pytest.mark.parametrize("dtype", SORT_DTYPES, ids=[np.dtype(d).name for d in SORT_DTYPES])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_argsort_sort_stable_nans_last(rng, dtype, axis, shape):
    a = rng.integers(-3, 4, shape).astype(dtype)  # many ties: the stable order decides
    if np.dtype(dtype).kind == "f":
        a[rng.random(a.shape) < 0.1] = np.nan
        a[0, :3] = [-0.0, 0.0, -np.inf]
        a[1, :4] = [np.inf, -0.0, np.finfo(dtype).min, np.finfo(dtype).tiny]
    elif np.dtype(dtype).kind == "i":
        a[1, :3] = [np.iinfo(dtype).min, np.iinfo(dtype).max, -1]
    want_i = np.argsort(a, axis=axis, kind="stable")
    for mode in ("eager", "jit"):
        got = np.argsort(xcs.asarray(a), axis=axis) if mode == "eager" else jit(lambda x: np.argsort(x, axis=axis))(a)
        assert np.asarray(got).dtype == np.int64
        np.testing.assert_array_equal(np.asarray(got), want_i)
        s = np.sort(xcs.asarray(a), axis=axis) if mode == "eager" else jit(lambda x: np.sort(x, axis=axis))(a)
        assert np.asarray(s).dtype == a.dtype
        np.testing.assert_array_equal(np.asarray(s), np.sort(a, axis=axis, kind="stable"))


def _sort_want(a, axis):
    """numpy's sort with the bits xcs promises: NaNs last in their order with
    their bits (a stable sort keeps them), -0.0 before 0.0 among the zeros
    (bfloat16: ordered by its exact float32 values, bits moved as they are)."""
    key = a.astype(np.float32) if a.dtype == bfloat16 else a
    w = np.moveaxis(np.take_along_axis(a, np.argsort(key, axis=axis, kind="stable"), axis), axis, -1).copy()
    if w.dtype.kind == "f" or w.dtype == bfloat16:
        for row in w.reshape(-1, w.shape[-1]):
            z = np.flatnonzero(row == 0)
            row[z] = np.where(np.arange(len(z)) < np.signbit(row[z].astype(np.float32)).sum(), -0.0, 0.0)
    return np.moveaxis(w, -1, axis)


@pytest.mark.parametrize("dtype", SORT_DTYPES + [bfloat16], ids=[np.dtype(d).name for d in SORT_DTYPES + [bfloat16]])
def test_sort_values_kernel(rng, dtype):
    """The values-only sort, bit for bit: rows either side of the network
    runs (8), the radix threshold (256) and one row long enough for every
    thread to sort it together; extreme values, subnormals, NaNs with
    payloads and signs (last, bits and order kept), signed zeros (-0.0
    first); strided and reversed inputs; a permutation of the input."""
    dt = np.dtype(dtype)
    for n in (1, 2, 7, 8, 9, 16, 17, 100, 255, 256, 257, 1000, 100_003):
        rows = max(1, min(40, 20_000 // n))
        if dt.kind == "f" or dt == bfloat16:
            a = (rng.standard_normal((rows, n)) * rng.choice([1e-3, 1, 1e3], (rows, n))).astype(dtype)
            info = ml_dtypes.finfo(dtype)
            special = np.array([0.0, -0.0, np.inf, -np.inf, info.max, info.min, info.tiny, -info.tiny,
                                info.smallest_subnormal, -info.smallest_subnormal], dtype)
            bits = a.view(np.uint16 if dt.itemsize == 2 else np.uint32 if dt.itemsize == 4 else np.uint64)
            nan = np.array(np.nan, dtype).view(bits.dtype)
            payload_nans = np.array([nan, nan | 1, nan | 3 | (1 << (8 * dt.itemsize - 1))], bits.dtype)
            hit = rng.random(a.shape)
            a[hit < 0.1] = rng.choice(special, (hit < 0.1).sum())
            bits[hit > 0.95] = rng.choice(payload_nans, (hit > 0.95).sum())
            a[rng.random(a.shape) < 0.05] = rng.choice([-0.0, 0.0], 1)  # runs of zeros of both signs
        elif dt.kind == "i":
            info = np.iinfo(dtype)
            a = rng.integers(info.min, info.max, (rows, n), dtype=dtype, endpoint=True)
            a[:, ::5] = rng.choice(np.array([info.min, info.max, -1, 0, 1], dtype), a[:, ::5].shape)
        else:
            a = rng.random((rows, n)) < 0.3
        for x, axis in ((a, 1), (a, -1), (a.T, 0), (a[::-1, ::-2], 1), (a[0], None)):
            got = np.asarray(np.sort(xcs.asarray(x), axis=axis))
            want = _sort_want(x.ravel() if axis is None else x, 0 if axis is None else axis)
            assert got.dtype == dt and got.shape == want.shape
            if dt.itemsize == 1:
                np.testing.assert_array_equal(got, want)
            else:
                u = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
                np.testing.assert_array_equal(got.view(u), want.view(u), err_msg=f"n={n} axis={axis}")


def test_sort_gradient_vmap_and_median(rng):
    x = rng.standard_normal(11)
    w = np.arange(11.0)
    ref = np.zeros(11)
    ref[np.argsort(x)] = w  # each sorted slot's weight goes back where its value came from
    np.testing.assert_allclose(np.asarray(grad(lambda v: (np.sort(v) * w).sum())(x)), ref)
    b = rng.standard_normal((4, 6))
    for axis in (0, 1):  # along either axis of a matrix, jitted: the same routing per row
        wb = rng.standard_normal(b.shape)
        ref = np.zeros_like(b)
        np.put_along_axis(ref, np.argsort(b, axis=axis), wb, axis=axis)
        gb = jit(grad(lambda v: (np.sort(v, axis=axis) * wb).sum()))(b)
        np.testing.assert_allclose(np.asarray(gb), ref)
    np.testing.assert_array_equal(np.asarray(vmap(np.argsort)(b)), np.argsort(b, axis=1, kind="stable"))
    np.testing.assert_array_equal(np.asarray(vmap(np.sort, in_axes=1, out_axes=1)(b)), np.sort(b, axis=0))
    for axis in (None, 0, 1, (0, 1)):
        for keepdims in (False, True):
            np.testing.assert_allclose(np.asarray(jit(lambda v: np.median(v, axis=axis, keepdims=keepdims))(b)),
                                       np.median(b, axis=axis, keepdims=keepdims), rtol=1e-15)
    odd = b[:3, :5].copy()
    odd[1, 2] = np.nan
    np.testing.assert_array_equal(np.asarray(np.median(xcs.asarray(odd), axis=1)), np.median(odd, axis=1))
    np.testing.assert_allclose(float(np.asarray(np.median(xcs.asarray(np.arange(7))))), 3.0)
    g = np.asarray(grad(lambda v: np.median(v))(x))  # the middle value's slot
    assert g[np.argsort(x)[5]] == 1.0 and g.sum() == 1.0
    np.testing.assert_array_equal(np.asarray(xcs.asarray(b).argsort(axis=0)), np.argsort(b, axis=0, kind="stable"))
    with pytest.warns(RuntimeWarning):  # numpy's: nan for an empty slice, with its warning
        np.testing.assert_array_equal(np.asarray(xcs.numpy.median(np.ones((0, 3)), axis=0)), np.full(3, np.nan))


def test_argsort_in_a_device_program(rng):
    """argsort runs on the device in a program (a tile sort and merges):
    nothing comes to the host until the result is read; rows longer than a
    tile (merges), ties, NaNs and signed zeros give numpy's stable order."""
    if not xcs.devices()[1]["available"]:
        pytest.skip("no CUDA device (CI runs this on the mock: python_mock_cuda)")
    a = rng.standard_normal((5, 7))
    d = xcs.device_put(a, "cuda")
    down = xcs.memory_stats()["downloads"]
    r = xcs.jit(lambda x: np.sort(x, axis=0) * 2 + np.argsort(x, axis=1))(d)
    assert str(r.device).startswith("cuda") and xcs.memory_stats()["downloads"] == down
    np.testing.assert_array_equal(np.asarray(r), np.sort(a, axis=0) * 2 + np.argsort(a, axis=1, kind="stable"))
    np.testing.assert_array_equal(np.asarray(np.argsort(d, axis=1)), np.argsort(a, axis=1, kind="stable"))
    both = xcs.jit(lambda x: (np.argsort(x, axis=0), np.argsort(x, axis=1)))
    for dtype in (np.float32, np.float64, np.int32, np.int64, np.bool_):
        b = rng.integers(-3, 4, size=(3, 5000)).astype(dtype)
        if b.dtype.kind == "f":
            b[rng.random(b.shape) < 0.05] = np.nan
            b[rng.random(b.shape) < 0.05] = -0.0
        g0, g1 = both(xcs.device_put(b, "cuda"))
        assert str(g1.device).startswith("cuda")
        np.testing.assert_array_equal(np.asarray(g0), np.argsort(b, axis=0, kind="stable"))
        np.testing.assert_array_equal(np.asarray(g1), np.argsort(b, axis=1, kind="stable"))


@pytest.mark.parametrize("q", [0.3, [0.0, 0.1, 0.5, 0.9, 1.0], [[0.0, 1.0], [0.25, 0.75]]], ids=["scalar", "list", "2d"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_quantile(rng, q, axis, keepdims):
    a = rng.standard_normal((5, 8))
    want = np.quantile(a, q, axis=axis, keepdims=keepdims)
    got = np.asarray(jit(lambda v: np.quantile(v, q, axis=axis, keepdims=keepdims))(a))
    assert got.shape == want.shape
    assert_same_bits(got, want)  # numpy's virtual index and lerp: its bits


def test_percentile_median_of_ints_nans_and_other_methods(rng):
    a = rng.standard_normal((4, 9))
    np.testing.assert_allclose(np.asarray(np.percentile(xcs.asarray(a), 37.5, axis=1)), np.percentile(a, 37.5, axis=1),
                               rtol=1e-15)
    np.testing.assert_allclose(np.asarray(np.quantile(xcs.asarray(np.arange(10)), [0.1, 0.5])), [0.9, 4.5], rtol=1e-15)
    a[2, 3] = np.nan
    np.testing.assert_array_equal(np.isnan(np.asarray(np.quantile(xcs.asarray(a), 0.5, axis=1))),
                                  np.isnan(np.quantile(a, 0.5, axis=1)))
    # another method: numpy's on concrete arrays
    np.testing.assert_array_equal(np.asarray(np.quantile(xcs.asarray(a[0]), 0.3, method="nearest")),
                                  np.quantile(a[0], 0.3, method="nearest"))
    with pytest.raises(xcs.XCSValueError, match="range"):
        xcs.numpy.quantile(a, 1.5)


def test_diff_logaddexp_isclose_count_nonzero(rng):
    a = rng.standard_normal((5, 8))
    for n, axis in ((1, -1), (2, 0), (0, 1)):
        np.testing.assert_array_equal(np.asarray(jit(lambda v: np.diff(v, n, axis))(a)), np.diff(a, n, axis))
    np.testing.assert_array_equal(np.asarray(np.diff(xcs.asarray(a > 0))), np.diff(a > 0))
    s1 = np.array([1.0, -np.inf, np.inf, -np.inf, np.nan, 1000.0, -1000.0, 0.0])
    s2 = np.array([2.0, -np.inf, np.inf, np.inf, 1.0, 1000.0, 3.0, -0.0])
    with np.errstate(invalid="ignore"):
        want = np.logaddexp(s1, s2)
    np.testing.assert_allclose(np.asarray(np.logaddexp(xcs.asarray(s1), s2)), want, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(grad(lambda v: np.logaddexp(v, 0.5).sum())(a)),
                               1 / (1 + np.exp(0.5 - a)), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(np.isclose(xcs.asarray(s1), s2)), np.isclose(s1, s2))
    np.testing.assert_array_equal(np.asarray(np.isclose(xcs.asarray(s1), s1, equal_nan=True)),
                                  np.isclose(s1, s1, equal_nan=True))
    assert int(np.asarray(np.count_nonzero(xcs.asarray(a > 0)))) == np.count_nonzero(a > 0)
    np.testing.assert_array_equal(np.asarray(np.count_nonzero(xcs.asarray(a > 0), axis=1)), np.count_nonzero(a > 0, axis=1))


@pytest.mark.parametrize("ord_", [None, 1, 2, np.inf, -np.inf, 0, 3, "fro", -1])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_linalg_norm(rng, ord_, axis):
    a = rng.standard_normal((5, 8))
    try:
        want = np.linalg.norm(a, ord=ord_, axis=axis)
    except ValueError:
        with pytest.raises((xcs.XCSError, ValueError)):
            np.linalg.norm(xcs.asarray(a), ord=ord_, axis=axis)
        return
    got = np.asarray(np.linalg.norm(xcs.asarray(a), ord=ord_, axis=axis))  # (2 on a matrix: numpy's)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    if not (ord_ == 2 and (axis is None or axis == (0, 1))):  # a matrix 2-norm has no xcs op
        np.testing.assert_allclose(np.asarray(jit(lambda v: np.linalg.norm(v, ord=ord_, axis=axis))(a)), want, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(grad(lambda v: np.linalg.norm(v))(a)), a / np.linalg.norm(a), rtol=1e-12)


S_ = np.array([1.5, -2.5, 0.5, -0.5, 2.5, np.nan, np.inf, -np.inf, -0.2, 3.7, 1e300, -0.0, 0.0, 7.0, -1e-310])
T_ = np.array([0.3, 2.0, -0.7, 0.0, -0.0, 1.0, np.nan, 2.0, np.inf, -np.inf, 3.0, 1.0, -1.0, np.nan, 5.0])
I_ = np.array([7, -7, 5, -5, 0, 13, -13, 2**40, 1, -1], np.int64)
J_ = np.array([3, 3, -3, -3, 4, 1, 5, 7, -1, 2], np.int64)
with np.errstate(over="ignore"):  # 1e300 is inf in the narrow floats
    S32, T32, S16 = S_.astype(np.float32), T_.astype(np.float32), S_.astype(np.float16)
UFUNCS = [("cbrt", (S_,)), ("cbrt", (S32,)), ("trunc", (S_,)), ("trunc", (I_,)),
          ("trunc", (S16,)), ("trunc", (I_ > 0,)), ("fix", (S_,)), ("fmod", (S_, T_)),
          ("fmod", (I_, J_)), ("fmod", (I_.astype(np.int32), J_.astype(np.int32))),
          ("fmod", (S32, T32)), ("copysign", (S_, T_)), ("copysign", (I_, J_)),
          ("fabs", (S_,)), ("fabs", (I_,)), ("fabs", (I_ > 0,)), ("deg2rad", (S_,)), ("radians", (I_,)),
          ("rad2deg", (S_,)), ("degrees", (S32,)), ("deg2rad", (S16,)),
          ("signbit", (S_,)), ("signbit", (I_,)), ("fmax", (S_, T_)), ("fmin", (S_, T_)), ("fmax", (I_, J_)),
          ("heaviside", (S_, T_)), ("heaviside", (I_, J_)), ("float_power", (np.abs(S_), T_)), ("sinc", (S_,)),
          ("sinc", (S32,)), ("modf", (S_,)), ("real", (S_,)), ("imag", (S_,)), ("conj", (S_,)),
          ("isreal", (S_,)), ("iscomplex", (S_,)), ("angle", (S_,)), ("logaddexp2", (S_, T_))]


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name,args", UFUNCS, ids=[f"{n}-{a[0].dtype}" for n, a in UFUNCS])
def test_more_ufuncs_match_numpy(name, args, mode):
    """fmod/copysign/cbrt/trunc (ops: libm's on the CPU, CUDA's on a GPU) and
    the ufuncs composed of ops: numpy's dtypes, values (bit for bit where
    the computation is exact), signs of zero and NaNs."""
    f = getattr(np, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = f(*args)
        got = f(*[xcs.asarray(a) for a in args]) if mode == "eager" else jit(f)(*args)
    for w, g in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype.kind != "f" or name not in ("sinc", "logaddexp2", "cbrt", "float_power"):
            np.testing.assert_array_equal(g, w)
        else:  # libm / numpy's own loops: an ulp or two
            np.testing.assert_allclose(g, w, rtol=4e-16 if w.dtype == np.float64 else 2.4e-7, atol=0)
        if w.dtype.kind == "f":
            np.testing.assert_array_equal(np.signbit(g[~np.isnan(g)]), np.signbit(w[~np.isnan(w)]))


def test_more_ufunc_gradients(rng):
    x, y = rng.uniform(0.5, 3, 40) * rng.choice([-1, 1], 40), rng.uniform(0.5, 3, 40) * rng.choice([-1, 1], 40)
    eps = 1e-6
    for f in (np.cbrt, lambda a: np.fmod(a, 0.7), np.fabs, np.deg2rad, np.sinc, lambda a: np.fmax(a, 0.1)):
        g = np.asarray(grad(lambda a: f(a).sum())(x))
        np.testing.assert_allclose(g, (f(x + eps) - f(x - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)
    for f in (np.fmod, np.copysign, np.logaddexp2, np.heaviside):
        ga, gb = (np.asarray(v) for v in grad(lambda a, b: f(a, b).sum(), argnums=(0, 1))(x, y))
        np.testing.assert_allclose(ga, (f(x + eps, y) - f(x - eps, y)) / (2 * eps), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gb, (f(x, y + eps) - f(x, y - eps)) / (2 * eps), rtol=1e-5, atol=1e-6)
    with pytest.raises(xcs.XCSZeroDivisionError, match="division by zero in fmod"):
        np.asarray(jit(np.fmod)(I_, np.zeros_like(J_)))


EINSUMS = [("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]), ("ij,jk,kl", [(3, 4), (4, 5), (5, 2)]),
           ("ii->i", [(4, 4)]), ("ii", [(4, 4)]), ("iik->ki", [(3, 3, 2)]), ("iij", [(3, 3, 2)]),
           ("bij,jk,kl->bil", [(2, 3, 4), (4, 5), (5, 2)]), ("ij,ij,ij->", [(3, 4)] * 3),
           ("ii,ij->j", [(4, 4), (4, 5)]), ("...ij,jk,k->...i", [(2, 3, 4), (4, 5), (5,)]),
           ("i,i,i,i->", [(6,)] * 4)]


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("spec,shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum_chains_and_diagonals(spec, shapes, mode, rng):
    """Three or more operands (contracted pairwise from the left, each step
    keeping the labels later ones need), implicit outputs and repeated labels
    (diagonals) against numpy."""
    ops = [rng.standard_normal(s) for s in shapes]
    want = np.einsum(spec, *ops)
    got = np.einsum(spec, *[xcs.asarray(o) for o in ops]) if mode == "eager" else \
        jit(lambda *x: np.einsum(spec, *x))(*ops)
    got = np.asarray(got)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_einsum_chain_gradient_and_vmap(rng):
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal((4, 2))
    g = np.asarray(grad(lambda x: np.einsum("ij,jj,jk->", a, x, c))(b))  # x's diagonal only
    np.testing.assert_allclose(g, np.diag(np.einsum("ij,jk->j", a, c)), rtol=1e-12, atol=1e-12)
    bs = rng.standard_normal((5, 4, 4))
    np.testing.assert_allclose(np.asarray(vmap(lambda x: np.einsum("ij,jk,kl->il", a, x, c))(bs)),
                               np.einsum("ij,bjk,kl->bil", a, bs, c), rtol=1e-12)


def test_more_array_members(rng):
    """ndarray's ptp, argpartition, searchsorted, choose, conj(ugate), real,
    imag, mT and the array API's to_device, eagerly and under jit."""
    n = rng.standard_normal((3, 4))
    a = xcs.asarray(n)
    np.testing.assert_array_equal(np.asarray(a.ptp(axis=1)), np.ptp(n, axis=1))
    p = np.asarray(a.argpartition(2, axis=1))
    np.testing.assert_array_equal(np.take_along_axis(n, p, 1)[:, 2], np.sort(n, axis=1)[:, 2])
    s = np.sort(n[0])
    np.testing.assert_array_equal(np.asarray(xcs.asarray(s).searchsorted(n[1], side="right")),
                                  s.searchsorted(n[1], side="right"))
    idx = np.array([0, 1, 1, 0])
    np.testing.assert_array_equal(np.asarray(xcs.asarray(idx).choose([n[0], n[1]])), idx.choose([n[0], n[1]]))
    for got, want in ((a.conj(), n), (a.conjugate(), n), (a.real, n), (a.imag, n * 0), (a.mT, n.T)):
        np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(jit(lambda x: x.mT @ x.real + x.ptp())(n)), n.T @ n + np.ptp(n))
    assert a.to_device("cpu").device == "cpu"
    with pytest.raises(xcs.XCSValueError, match="stream must be None"):
        a.to_device("cpu", stream=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int64])
def test_cumsum_is_numpy_running_sum(rng, dtype):
    """cumsum is one op summing each row in order: numpy's add.accumulate bits on the CPU (a device
    without the kernel: doubling steps, equal to rounding), on every axis, strided inputs included,
    a long row, under jit and vmap; its gradient is the running sum of the cotangent from the end."""
    def check(got, want):
        assert np.asarray(got).dtype == want.dtype
        if got.device == "cpu":
            np.testing.assert_array_equal(np.asarray(got), want)
        else:
            # summed in another order: within a few ulps of the running sum of magnitudes (1e6 here)
            np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=0.5 if dtype == np.float32 else 1e-9)

    a = (rng.standard_normal((7, 300, 5)) * 100).astype(dtype)
    for axis in (0, 1, 2, -1, None):
        for x in (a, a.transpose(2, 0, 1)[:, ::2]):  # contiguous, then a strided view
            want = np.cumsum(x, axis=axis)
            check(np.cumsum(xcs.asarray(x), axis=axis), want)
            check(jit(lambda v: np.cumsum(v, axis=axis))(x), want)
    long = (rng.standard_normal(200_000) * 10).astype(dtype)
    check(jit(np.cumsum)(long), np.cumsum(long))
    check(vmap(lambda r: np.cumsum(r))(a[:, :, 0]), np.cumsum(a[:, :, 0], axis=1))
    if np.dtype(dtype).kind == "f":
        w = rng.standard_normal((7, 300, 5))
        g = np.asarray(grad(lambda v: (np.cumsum(v, axis=1) * w).sum())(a.astype(np.float64)))
        np.testing.assert_allclose(g, np.cumsum(w[:, ::-1], axis=1)[:, ::-1], rtol=1e-12, atol=1e-12)
