"""numpy's statistics, NaN-ignoring reductions, searching and counting functions
(ember.xcs._np_stats: average, ptp, cov, corrcoef, nan*, searchsorted, interp,
isin, histogram, bincount, partition, lexsort, allclose, ...): numpy's values,
dtypes and shapes eagerly (through __array_function__) and under jit, NaNs
included; the partition contract as a property; gradients against finite
differences; vmap; numpy's errors on concrete data and what tracing gives
instead; numpy's own function for the options xcs does not compute."""
import inspect
import warnings

import numpy as np
import pytest

import ember.xcs as xcs
from conftest import assert_same_bits
from ember.xcs import grad, jit, vmap

R = np.random.default_rng(11)  # fixed inputs: the table below is built once
A = R.standard_normal((4, 6))
A3 = R.standard_normal((2, 3, 5))
AN = A.copy()
AN[0, 1] = AN[3, 0] = np.nan
AN[2, :] = np.nan  # an all-NaN row
AN1 = A.copy()
AN1[0, 1] = AN1[3, 0] = AN1[1, 4] = np.nan  # NaNs, no all-NaN row or column
F32 = A.astype(np.float32)
W = R.uniform(0.5, 2.0, (4, 6))
INTS = R.integers(-20, 20, (4, 6))
XP = np.sort(R.uniform(0.0, 10.0, 9))
FP = R.standard_normal(9)
XS = np.concatenate([R.uniform(-1.0, 11.0, 40), XP[[0, 3, 8]], [np.nan, np.inf, -np.inf]])
SORTED = np.sort(R.integers(0, 10, 20))
V = R.integers(-1, 11, (3, 4))
SORTED_NAN = np.array([-np.inf, 1.0, 2.0, 2.0, np.inf, np.nan, np.nan])
V_NAN = np.array([np.nan, 2.0, 0.0, 5.0, np.inf, -np.inf, 1.5, -0.0])
D = R.standard_normal(200)
DI = R.integers(0, 20, 200)  # values on the edges of 20 bins over [0, 19]
BIN_IDX = R.integers(0, 6, 30)

CASES = {
    "average": (np.average, [A]), "average_axis": (lambda a: np.average(a, axis=1), [A]),
    "average_w": (lambda a, w: np.average(a, axis=0, weights=w), [A, W]),
    "average_w1d": (lambda a, w: np.average(a, axis=1, weights=w, returned=True), [A, W[0]]),
    "average_w_axes": (lambda a, w: np.average(a, axis=(2, 0), weights=w, keepdims=True),
                       [A3, R.uniform(0.5, 2.0, (5, 2))]),
    "average_int": (lambda a, w: np.average(a, weights=w, returned=True), [INTS, INTS + 30]),
    "average_f32": (lambda a: np.average(a, axis=(0, 1), keepdims=True, returned=True), [F32]),
    "average_f32_w": (lambda a, w: np.average(a, axis=0, weights=w), [F32, W]),
    "ptp": (lambda a: np.ptp(a, axis=1), [A]), "ptp_int": (np.ptp, [INTS]), "ptp_nan": (lambda a: np.ptp(a, 0), [AN]),
    "cov": (np.cov, [A]), "cov_f32": (np.cov, [F32]), "cov_int": (np.cov, [INTS]), "cov_1d": (np.cov, [A[0]]),
    "cov_y": (lambda a, b: np.cov(a, b, rowvar=False), [A, A[:, :2]]), "cov_y1d": (np.cov, [A[0], A[1]]),
    "cov_bias": (lambda a: np.cov(a, bias=True), [A]), "cov_ddof": (lambda a: np.cov(a, ddof=3), [A]),
    "cov_dtype": (lambda a: np.cov(a, dtype=np.float32), [A]),
    "corrcoef": (np.corrcoef, [A]), "corrcoef_1": (np.corrcoef, [A[0]]), "corrcoef_rowvar": (
        lambda a, b: np.corrcoef(a, b, rowvar=False), [A, A[:, 1:3]]),
    "corrcoef_const": (np.corrcoef, [np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.5]])]),
    "nansum": (lambda a: np.nansum(a, axis=1), [AN]), "nansum_int": (np.nansum, [INTS]),
    "nansum_bool": (lambda a: np.nansum(a > 0, axis=0), [A]), "nanprod": (np.nanprod, [AN]),
    "nanmax": (lambda a: np.nanmax(a, axis=1), [AN]), "nanmax_all": (np.nanmax, [AN]),
    "nanmin": (lambda a: np.nanmin(a, axis=0, keepdims=True), [AN]), "nanmin_int": (np.nanmin, [INTS]),
    "nanargmax": (lambda a: np.nanargmax(a, axis=0), [AN1]), "nanargmax_flat": (np.nanargmax, [AN]),
    "nanargmin": (lambda a: np.nanargmin(a, axis=1, keepdims=True), [AN1]), "nanargmin_int": (np.nanargmin, [INTS]),
    "nanmean": (lambda a: np.nanmean(a, axis=1), [AN]), "nanmean_all": (np.nanmean, [AN]),
    "nanmean_f32": (lambda a: np.nanmean(a, axis=0), [AN.astype(np.float32)]), "nanmean_int": (np.nanmean, [INTS]),
    "nanvar": (lambda a: np.nanvar(a, axis=1, ddof=1), [AN]), "nanvar_all": (np.nanvar, [AN]),
    "nanstd": (lambda a: np.nanstd(a, axis=0, ddof=3, keepdims=True), [AN]),
    "nanvar_f32": (lambda a: np.nanvar(a, axis=0, dtype=np.float64), [AN.astype(np.float32)]),
    "nanvar_int": (lambda a: np.nanvar(a, axis=1), [INTS]),
    "nanmedian": (lambda a: np.nanmedian(a, axis=1), [AN]), "nanmedian_0": (lambda a: np.nanmedian(a, axis=0), [AN]),
    "nanmedian_all": (np.nanmedian, [AN]), "nanmedian_keep": (lambda a: np.nanmedian(a, (0, 2), keepdims=True), [A3]),
    "nanmedian_int": (lambda a: np.nanmedian(a, axis=1), [INTS]),
    "nanmedian_f32": (lambda a: np.nanmedian(a, axis=1), [AN.astype(np.float32)]),
    "nanquantile": (lambda a: np.nanquantile(a, 0.3, axis=1), [AN]),
    "nanquantile_qs": (lambda a: np.nanquantile(a, [0.0, 0.1, 0.5, 1.0], axis=0, keepdims=True), [AN]),
    "nanquantile_f32": (lambda a: np.nanquantile(a, 0.37, axis=1), [AN.astype(np.float32)]),
    "nanquantile_int": (lambda a: np.nanquantile(a, [0.3, 0.71]), [INTS]),
    "nanquantile_inf": (lambda a: np.nanquantile(a, [0.5, 1.0]), [np.array([1.0, np.nan, np.inf, 2.0])]),
    "nanpercentile": (lambda a: np.nanpercentile(a, [10, 50, 99], axis=1), [AN]),
    "nanpercentile_f32": (lambda a: np.nanpercentile(a, 33.0), [AN.astype(np.float32)]),
    "searchsorted": (np.searchsorted, [SORTED, V]),
    "searchsorted_right": (lambda a, v: np.searchsorted(a, v, side="right"), [SORTED, V]),
    "searchsorted_float_v": (lambda a, v: np.searchsorted(a, v), [SORTED, V + 0.5]),
    "searchsorted_scalar": (lambda a: np.searchsorted(a, 4.0, "right"), [SORTED]),
    "searchsorted_nan": (np.searchsorted, [SORTED_NAN, V_NAN]),
    "searchsorted_nan_right": (lambda a, v: np.searchsorted(a, v, "right"), [SORTED_NAN, V_NAN]),
    "searchsorted_sorter": (lambda a, v, s: np.searchsorted(a, v, sorter=s), [D[:9], D[:20], np.argsort(D[:9])]),
    "searchsorted_empty": (np.searchsorted, [np.zeros(0), V_NAN]),
    "interp": (np.interp, [XS, XP, FP]), "interp_f32": (np.interp, [XS.astype(np.float32), XP, FP.astype(np.float32)]),
    "interp_lr": (lambda x, xp, fp: np.interp(x, xp, fp, left=-5, right=7.5), [XS, XP, FP]),
    "interp_dup": (np.interp, [np.array([0.5, 1.0, 1.5, 2.0]), np.array([0.0, 1.0, 1.0, 2.0]),
                               np.array([0.0, 1.0, 3.0, 4.0])]),
    "interp_inf_fp": (np.interp, [np.array([0.5, 1.0, 1.5]), np.array([0.0, 1.0, 2.0]),
                                  np.array([np.inf, np.inf, 1.0])]),
    "interp_one": (np.interp, [np.array([0.0, 1.0, 2.0, np.nan]), np.array([1.0]), np.array([5.0])]),
    "interp_scalar": (lambda xp, fp: np.interp(2.5, xp, fp), [XP, FP]),
    "isin": (np.isin, [INTS, np.array([1, 3, 5, -7])]),
    "isin_invert": (lambda a, b: np.isin(a, b, invert=True),
                    [np.array([1.0, np.nan, 2.0, -0.0]), np.array([np.nan, 2.0, 0.0])]),
    "isin_empty": (np.isin, [INTS, np.zeros(0)]),
    **({"in1d": (np.in1d, [INTS, np.array([1, 3, 5])])} if hasattr(np, "in1d") else {}),  # gone in numpy 2.5
    "hist": (np.histogram, [D]), "hist_range": (lambda a: np.histogram(a, bins=7, range=(-1, 1.5)), [D]),
    "hist_edges": (lambda a: np.histogram(a, bins=[-2, -1, 0, 0.5, 3]), [D]),
    "hist_int_edges": (lambda a: np.histogram(a, bins=[0, 3, 5, 19]), [DI]),
    "hist_int": (lambda a: np.histogram(a, bins=19), [DI]),
    "hist_int_range": (lambda a: np.histogram(a, 10, (0, 20)), [DI]),
    "hist_f32": (lambda a: np.histogram(a, bins=13), [(DI / 3).astype(np.float32)]),
    "hist_f32_range": (lambda a: np.histogram(a, bins=10, range=(0, 7)), [(DI / 3).astype(np.float32)]),
    "hist_equal": (lambda a: np.histogram(a, bins=3), [np.full(5, 2.0)]), "hist_empty": (np.histogram, [np.zeros(0)]),
    "hist_2d": (lambda a: np.histogram(a, bins=4), [A]),
    "hist_edges_fn": (lambda a: np.histogram_bin_edges(a, bins=6), [D]),
    "histw": (lambda a, w: np.histogram(a, bins=5, weights=w), [D, R.uniform(0, 1, 200)]),
    "histw_int": (lambda a, w: np.histogram(a, bins=5, weights=w), [D, R.integers(0, 5, 200).astype(np.int32)]),
    "histw_edges": (lambda a, w: np.histogram(a, bins=[-1, 0, 0.5, 2], weights=w), [D, R.uniform(0, 1, 200)]),
    "histw_density": (lambda a: np.histogram(a, bins=5, density=True), [D]),
    "bincount": (lambda w: np.bincount(BIN_IDX, weights=w, minlength=8), [R.standard_normal(30)]),
    "lexsort": (lambda a, b: np.lexsort((a, b)), [R.integers(0, 3, 20), R.integers(0, 3, 20)]),
    "lexsort_axis0": (lambda a, b: np.lexsort((a, b), axis=0), [R.integers(0, 3, (6, 3)), R.integers(0, 3, (6, 3))]),
    "lexsort_3keys": (lambda a, b, c: np.lexsort((a, b, c)), [R.integers(0, 2, 16), R.integers(0, 2, 16), V_NAN[[
        0, 1, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 0]]]),
    "lexsort_2d": (np.lexsort, [R.integers(0, 3, (3, 10))]),
    "allclose": (np.allclose, [A, A + 1e-9]), "allclose_not": (np.allclose, [A, A + 1e-3]),
    "allclose_nan": (lambda a, b: np.allclose(a, b, equal_nan=True), [AN, AN]),
    "array_equal": (np.array_equal, [AN, AN]), "array_equal_nan": (lambda a, b: np.array_equal(a, b, True), [AN, AN]),
    "array_equal_shape": (np.array_equal, [A, A[:2]]), "array_equiv": (np.array_equiv, [A[:1], A]),
    "array_equiv_no": (np.array_equiv, [A[:, :2], A]),
}
# results computed without rounding differences from numpy (the others: summation orders differ)
EXACT = ("ptp", "nanmax", "nanmin", "nanarg", "nanmedian", "nanquantile", "nanpercentile", "searchsorted", "interp",
         "isin", "in1d", "hist_", "lexsort", "allclose", "array_")


def _compare(got, want, exact):
    assert isinstance(got, xcs.Array)
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    if exact or want.dtype.kind in "biu":
        assert_same_bits(got, want)  # exact, but for a GPU's FMAs (interp's, a quantile's lerp)
    else:
        tol = 1e-12 if want.dtype == np.float64 else 2e-6
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name, mode):
    f, args = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # in1d
        want = f(*args)
        got = f(*[xcs.asarray(x) for x in args]) if mode == "eager" else jit(f)(*args)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
    else:
        got, want = (got,), (want,)
    for g, w in zip(got, want, strict=True):
        _compare(g, w, name.startswith(EXACT))


def _partition_holds(p, a, kth, axis):
    """numpy's contract: p is a permutation of a along axis, p[k] is the k-th smallest, smaller before, larger after."""
    s = np.sort(a, axis=axis)
    np.testing.assert_array_equal(np.sort(p, axis=axis), s)
    p, s = np.moveaxis(p, axis, -1), np.moveaxis(s, axis, -1)
    for k in np.atleast_1d(kth) % p.shape[-1]:
        np.testing.assert_array_equal(p[..., k], s[..., k])
        assert np.all(p[..., :k] <= p[..., k:k + 1]) and np.all(p[..., k + 1:] >= p[..., k:k + 1])


@pytest.mark.parametrize("kth,axis", [(0, -1), (3, 0), ([1, 4], -1), (-1, 1), ((2, 0), 0)])
def test_partition_contract(rng, kth, axis):
    a = rng.integers(0, 5, (6, 7)).astype(np.float64)  # many ties
    for f in (lambda x: np.partition(x, kth, axis=axis), jit(lambda x: np.partition(x, kth, axis=axis))):
        p = f(xcs.asarray(a))
        assert isinstance(p, xcs.Array) and p.dtype == np.float64 and p.shape == a.shape
        _partition_holds(np.asarray(p), a, kth, axis)
    for f in (lambda x: np.argpartition(x, kth, axis=axis), jit(lambda x: np.argpartition(x, kth, axis=axis))):
        i = f(xcs.asarray(a))
        assert isinstance(i, xcs.Array) and i.dtype == np.int64 and i.shape == a.shape
        _partition_holds(np.take_along_axis(a, np.asarray(i), axis), a, kth, axis)
    flat = np.asarray(jit(lambda x: np.partition(x, 5, axis=None))(a))
    _partition_holds(flat, a.ravel(), 5, 0)


def test_searchsorted_random(rng):
    """Exactly numpy's insertion points, both sides, ties, NaNs and infinities, float and int."""
    a = np.sort(np.concatenate([rng.integers(-50, 50, 300) / 4, [np.nan] * 3, [np.inf, -np.inf]]))
    v = np.concatenate([rng.integers(-60, 60, 200) / 4, [np.nan, np.inf, -np.inf]])
    for side in ("left", "right"):
        f = jit(lambda a, v, side=side: np.searchsorted(a, v, side))
        np.testing.assert_array_equal(np.asarray(f(a, v)), np.searchsorted(a, v, side))
        ai = np.sort(rng.integers(-9, 9, rng.integers(1, 70)))
        vi = rng.integers(-10, 10, 50)
        np.testing.assert_array_equal(np.asarray(f(ai, vi)), np.searchsorted(ai, vi, side))


def test_interp_random(rng):
    """numpy's C formula to the bit: sample points at many scales, queries inside, outside and on them."""
    for _ in range(3):
        xp = np.sort(rng.uniform(-5, 5, rng.integers(2, 300)))
        fp = rng.standard_normal(xp.size) * 10.0 ** rng.uniform(-3, 3)
        x = np.concatenate([rng.uniform(-6, 6, 500), xp[rng.integers(0, xp.size, 20)]])
        np.testing.assert_array_equal(np.asarray(jit(np.interp)(x, xp, fp)), np.interp(x, xp, fp))


def test_nan_quantiles_random(rng):
    a = rng.standard_normal((7, 40))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0] = np.nan
    q = np.sort(rng.random(9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x in (a, a.astype(np.float32)):
            assert_same_bits(jit(lambda x: np.nanmedian(x, axis=1))(x), np.nanmedian(x, axis=1))
            want = np.nanquantile(x, float(q[3]), axis=1)
            got = np.asarray(jit(lambda x: np.nanquantile(x, float(q[3]), axis=1))(x))
            assert got.dtype == want.dtype
            assert_same_bits(got, want)
        assert_same_bits(jit(lambda x: np.nanquantile(x, q, axis=0))(a), np.nanquantile(a, q, axis=0))


NAN_METHODS = ["lower", "higher", "nearest", "midpoint", "inverted_cdf", "averaged_inverted_cdf",
               "closest_observation", "interpolated_inverted_cdf", "hazen", "weibull", "median_unbiased",
               "normal_unbiased"]


@pytest.mark.parametrize("method", NAN_METHODS)
def test_nan_quantile_methods(rng, method):
    """nanquantile / nanpercentile with each of numpy's other methods, jitted: numpy's bits and dtype,
    per row of the non-NaN values (rows of one value, all-NaN rows, q at 0 and 1, ties)."""
    a = rng.standard_normal((6, 11))
    a[rng.random(a.shape) < 0.35] = np.nan
    a[0], a[1, 1:] = np.nan, np.nan  # all NaN; one value
    a[2, :6] = 0.5  # ties
    q = np.concatenate([[0.0, 1.0], rng.random(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x in (a, a.astype(np.float32)):
            qx = q.astype(x.dtype)
            for axis in (None, 0, 1):
                want = np.nanquantile(x, qx, axis=axis, method=method)
                got = np.asarray(jit(lambda v: np.nanquantile(v, qx, axis=axis, method=method))(x))
                assert got.dtype == want.dtype and got.shape == want.shape
                assert_same_bits(got, want)
            want = np.nanpercentile(x, 37.5, axis=1, method=method, keepdims=True)
            got = np.asarray(jit(lambda v: np.nanpercentile(v, 37.5, axis=1, method=method, keepdims=True))(x))
            assert got.dtype == want.dtype
            assert_same_bits(got, want)


def test_histogram_random(rng):
    """Counts exactly numpy's, edges too, with values on the edges (integers) and the last edge inclusive."""
    for dt in (np.int64, np.float32, np.float64):
        d = rng.integers(0, 30, 500).astype(dt)
        for bins in (1, 7, 29, 30, 64):
            h, e = jit(lambda x, bins=bins: np.histogram(x, bins))(d)
            wh, we = np.histogram(d, bins)
            np.testing.assert_array_equal(np.asarray(e), we)
            np.testing.assert_array_equal(np.asarray(h), wh)
            assert np.asarray(h).dtype == wh.dtype and np.asarray(e).dtype == we.dtype
    w = rng.standard_normal(500)
    h, _ = jit(lambda x, w: np.histogram(x, 9, weights=w))(d, w)
    np.testing.assert_allclose(np.asarray(h), np.histogram(d, 9, weights=w)[0], rtol=1e-12, atol=1e-12)


def _fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_gradients(rng):
    """average (of a and of the weights), nanmean, nanvar, interp (of x and of fp), cov / corrcoef and
    histogram weights, against central differences; NaN positions get no gradient."""
    a, w = rng.standard_normal((3, 5)), rng.uniform(0.5, 2.0, 5)
    c = rng.standard_normal(3)
    xp, fp = np.sort(rng.uniform(0, 10, 8)), rng.standard_normal(8)
    x = rng.uniform(-1, 11, 20)
    d, dw = rng.standard_normal(50), rng.random(50)
    checks = [
        (lambda a: (np.average(a, axis=1, weights=w) * c).sum(), a),
        (lambda w: (np.average(a, axis=1, weights=w) * c).sum(), w),
        (lambda a: (np.average(a, axis=0) * w).sum(), a),
        (lambda x: (np.interp(x, xp, fp) * np.arange(20)).sum(), x),
        (lambda f: (np.interp(x, xp, f) * np.arange(20)).sum(), fp),
        (lambda a: np.cov(a).sum() + (np.corrcoef(a) * np.arange(9).reshape(3, 3)).sum(), a),
        (lambda w: (np.histogram(d, bins=5, weights=w)[0] * np.arange(5)).sum(), dw),
    ]
    for f, x0 in checks:
        np.testing.assert_allclose(np.asarray(grad(f)(x0)), _fd(f, x0), rtol=1e-6, atol=1e-7)
    an = a.copy()
    an[0, 1] = an[2, 3] = np.nan
    nan = np.isnan(an)
    for f in (lambda a: (np.nanmean(a, axis=1) * c).sum(), lambda a: (np.nanvar(a, axis=1, ddof=1) * c).sum()):
        g = np.asarray(grad(f)(an))
        assert np.all(g[nan] == 0)
        ref = _fd(lambda b, f=f: f(np.where(nan, np.nan, b)), np.where(nan, 0.0, an))
        np.testing.assert_allclose(g[~nan], ref[~nan], rtol=1e-6, atol=1e-7)


def test_under_vmap(rng):
    v = rng.standard_normal((4, 9))
    v[1, 3] = np.nan
    xp, fp = np.sort(rng.uniform(-2, 2, 6)), rng.standard_normal(6)
    np.testing.assert_allclose(np.asarray(vmap(np.nanmean)(v)), np.nanmean(v, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(vmap(np.nanmedian)(v)), np.nanmedian(v, axis=1))
    np.testing.assert_array_equal(np.asarray(vmap(lambda r: np.searchsorted(xp, r))(v)), np.searchsorted(xp, v))
    np.testing.assert_array_equal(np.asarray(vmap(lambda r: np.interp(r, xp, fp))(v)), np.interp(v, xp, fp))
    np.testing.assert_array_equal(np.asarray(vmap(lambda r: np.histogram(r, 3, (-1, 1))[0])(v)),
                                  [np.histogram(r, 3, (-1, 1))[0] for r in v])
    np.testing.assert_array_equal(np.asarray(vmap(lambda r: np.isin(r, xp[:3]))(np.broadcast_to(xp, (2, 6)))),
                                  np.isin(np.broadcast_to(xp, (2, 6)), xp[:3]))
    np.testing.assert_array_equal(np.asarray(vmap(np.nanargmax)(np.array([[1.0, np.nan], [np.nan, np.nan]]))), [0, -1])


def test_numpy_errors_on_concrete_data_and_traced_results():
    """numpy's value checks raise numpy's exceptions eagerly; traced, the documented results come back."""
    allnan = np.array([[np.nan, np.nan], [1.0, np.nan]])
    with pytest.raises(ValueError, match="All-NaN slice"):
        np.nanargmax(xcs.asarray(allnan), axis=1)
    with pytest.raises(ValueError, match="All-NaN slice"):
        np.nanargmin(xcs.asarray(allnan), axis=0)
    np.testing.assert_array_equal(np.asarray(jit(lambda a: np.nanargmax(a, axis=1))(allnan)), [-1, 0])
    np.testing.assert_array_equal(np.asarray(jit(lambda a: np.nanargmin(a, axis=0))(allnan)), [1, -1])
    with pytest.raises(ZeroDivisionError):
        np.average(xcs.asarray(np.ones(3)), weights=xcs.asarray(np.array([1.0, -1.0, 0.0])))
    assert np.isnan(np.asarray(jit(lambda a, w: np.average(a, weights=w))(np.ones(3), np.array([1.0, -1.0, 0.0]))))
    with pytest.raises(ValueError, match="not finite"):
        np.histogram(xcs.asarray(np.array([1.0, np.nan])))
    with pytest.raises(ValueError, match="monotonically"):
        np.histogram(xcs.asarray(D), bins=xcs.asarray(np.array([0.0, 2.0, 1.0])))
    with pytest.raises(ValueError, match="out of bounds"):
        np.partition(xcs.asarray(np.arange(3.0)), 3)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        np.nanpercentile(xcs.asarray(A), 101)
    with pytest.raises(TypeError):
        np.lexsort((xcs.asarray(V), xcs.asarray(V)), axis=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(np.asarray(jit(lambda a: np.nanmax(a, axis=1))(allnan)), [np.nan, 1.0])
        c = jit(lambda a: np.cov(a, ddof=5))(A)  # degrees of freedom <= 0: inf / NaN, as numpy
        np.testing.assert_array_equal(np.isfinite(np.asarray(c)), np.isfinite(np.cov(A, ddof=5)))


def test_whole_array_comparisons_give_arrays():
    """numpy returns Python bools; xcs 0-d bool Arrays (traced ones under jit), usable in where."""
    for f in (np.allclose, np.array_equal, np.array_equiv):
        r = jit(lambda a, b, f=f: np.where(f(a, b), a, -a))(A, A)
        np.testing.assert_array_equal(np.asarray(r), A)
        r = f(xcs.asarray(A), xcs.asarray(A + 1))
        assert isinstance(r, xcs.Array) and r.shape == () and r.dtype == np.bool_ and not bool(r)


def test_numpy_runs_what_xcs_does_not_compute():
    """Options xcs leaves out fall back to numpy's own function on concrete data."""
    x = xcs.asarray(AN1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        fallbacks = [
            (lambda a: np.nanpercentile(a, [10, 50]), xcs.asarray(F32), F32),  # numpy's dtype depends on the data
            (lambda a: np.histogram(a, bins="auto")[0], xcs.asarray(D), D),
            (lambda a: np.cov(a, fweights=[1, 2, 1, 1, 3, 1]), xcs.asarray(A), A),
            *([(lambda a: np.corrcoef(a, bias=True), xcs.asarray(A), A)]  # gone in numpy 2.5
              if "bias" in inspect.signature(np.corrcoef).parameters else []),
            (lambda a: np.isin(a, [1, 2], kind="table"), xcs.asarray(INTS), INTS),
            (lambda a: np.bincount(a), xcs.asarray(BIN_IDX), BIN_IDX),
            (lambda a: np.interp(a, [0.0, 1.0], [0.0, 1.0], period=1.0), xcs.asarray(D), D),
        ]
        for f, xa, na in fallbacks:
            got, want = f(xa), f(na)
            assert isinstance(got, xcs.Array)
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
            assert np.asarray(got).dtype == want.dtype
    with pytest.raises(xcs.XCSTracerError):  # traced x: bincount's length is not known
        jit(lambda a: np.bincount(a, minlength=8))(BIN_IDX)
