"""More numpy functions composed of xcs ops, so that numpy code runs under jit:
pad's other modes (edge, reflect, symmetric, wrap, linear_ramp, maximum,
minimum, mean, median), numpy 2's cumulative_sum / cumulative_prod, matvec and
vecmat, nancumsum / nancumprod, digitize, block, unstack, rollaxis, diagflat,
compress, piecewise, apply_along_axis, ediff1d, vander, gradient, unwrap and
polyfit: numpy's values, dtypes and shapes on fresh random inputs, eagerly and
under jit; gradients where they are smooth (against finite differences) and
vmap against a loop; numpy's errors."""
import numpy as np
import pytest
from conftest import fd_grad

import ember.xcs as xcs
from ember.xcs import grad, jit, vmap

HAS_MATVEC = isinstance(getattr(np, "matvec", None), np.ufunc)  # numpy >= 2.2


def _pad_cases():
    cases = {}
    for mode, kw in [("edge", {}), ("reflect", {}), ("symmetric", {}), ("wrap", {}), ("linear_ramp", {}),
                     ("linear_ramp", {"end_values": (5, -3)}), ("maximum", {}), ("minimum", {"stat_length": 2}),
                     ("mean", {}), ("median", {"stat_length": ((1, 2), (3, 1))}), ("constant", {"constant_values": ((1, 2), (3, 4))})]:
        for pw in (1, (2, 3), ((0, 5), (7, 1)), ((9, 0), (1, 9))):  # wider than the axis: reflected again
            name = f"pad_{mode}_{'_'.join(map(str, kw))}_{pw}"
            cases[name] = (lambda x, pw=pw, mode=mode, kw=kw: np.pad(x, pw, mode=mode, **kw),
                           lambda r: ((r.standard_normal((3, 4)) * 10),))
    return cases


CASES = {
    **_pad_cases(),
    "pad_int_mean": (lambda x: np.pad(x, 2, mode="mean"), lambda r: (r.integers(-9, 9, (3, 4)),)),  # rounded half to even
    "pad_int_ramp": (lambda x: np.pad(x, 3, mode="linear_ramp", end_values=7), lambda r: (r.integers(-9, 9, (2, 3)),)),
    "pad_f32_reflect": (lambda x: np.pad(x, ((1, 2), (3, 0), (0, 1)), mode="reflect"),
                        lambda r: (r.standard_normal((2, 3, 2)).astype(np.float32),)),
    "pad_bool_wrap": (lambda x: np.pad(x, 2, mode="wrap"), lambda r: (r.standard_normal(3) > 0,)),
    "cumulative_sum": (lambda x: np.cumulative_sum(x, axis=1), lambda r: (r.standard_normal((3, 5)),)),
    "cumulative_sum_initial": (lambda x: np.cumulative_sum(x, axis=0, include_initial=True),
                               lambda r: (r.integers(-5, 5, (3, 4)).astype(np.int32),)),
    "cumulative_sum_1d": (np.cumulative_sum, lambda r: (r.standard_normal(6).astype(np.float32),)),
    "cumulative_prod": (lambda x: np.cumulative_prod(x, axis=-1, include_initial=True),
                        lambda r: (r.standard_normal((2, 4)),)),
    "cumulative_prod_bool": (np.cumulative_prod, lambda r: (r.standard_normal(5) > -0.5,)),
    "nancumsum": (lambda x: np.nancumsum(np.where(x > 1, np.nan, x), axis=0), lambda r: (r.standard_normal((4, 3)),)),
    "nancumprod": (lambda x: np.nancumprod(np.where(x > 1, np.nan, x)), lambda r: (r.standard_normal((3, 3)),)),
    "digitize": (lambda x: np.digitize(x, np.array([-1.0, 0.0, 0.5, 2.0])), lambda r: (r.standard_normal((3, 4)),)),
    "digitize_right": (lambda x: np.digitize(x, np.array([-1.0, 0.0, 0.0, 2.0]), right=True),
                       lambda r: (np.round(r.standard_normal(9)),)),
    "digitize_decreasing": (lambda x: np.digitize(x, np.array([2.0, 0.5, 0.0, -1.0])),
                            lambda r: (np.append(r.standard_normal(6), [np.nan, 0.5]),)),
    "digitize_traced_bins": (lambda x, b: np.digitize(x, b), lambda r: (r.standard_normal(7), np.array([1.0, 0.0, -1.0]))),
    "block": (lambda a, b: np.block([[a, b], [b, a]]), lambda r: (r.standard_normal((2, 2)), r.standard_normal((2, 2)))),
    "block_promote": (lambda a, b: np.block([[[a]], [[b]]]), lambda r: (r.standard_normal(3), r.standard_normal(3))),
    "block_1d": (lambda a, b: np.block([a, b, 1.0]), lambda r: (r.standard_normal(2), r.standard_normal(3))),
    "unstack": (lambda x: np.unstack(x, axis=1)[2], lambda r: (r.standard_normal((2, 3, 4)),)),
    "rollaxis": (lambda x: np.rollaxis(x, 2), lambda r: (r.standard_normal((2, 3, 4)),)),
    "rollaxis_start": (lambda x: np.rollaxis(x, 0, 3), lambda r: (r.standard_normal((2, 3, 4)),)),
    "rollaxis_neg": (lambda x: np.rollaxis(x, -1, -2), lambda r: (r.standard_normal((2, 3, 4)),)),
    "diagflat": (lambda x: np.diagflat(x, -1), lambda r: (r.standard_normal((2, 2)),)),
    "compress": (lambda x: np.compress([True, False, True], x, axis=0), lambda r: (r.standard_normal((4, 2)),)),
    "compress_flat": (lambda x: np.compress([0, 1, 1, 0, 1], x), lambda r: (r.standard_normal((2, 3)),)),
    "piecewise": (lambda x: np.piecewise(x, [x < 0, x > 1], [lambda t: -t, lambda t: t * t, 0.5]),
                  lambda r: (r.standard_normal((3, 4)),)),
    "piecewise_int": (lambda x: np.piecewise(x, [x < 0], [lambda t: t * 2.7]), lambda r: (r.integers(-5, 5, 8),)),
    "apply_along_axis": (lambda x: np.apply_along_axis(lambda v: np.convolve(v, [1.0, 2.0]), 1, x),
                         lambda r: (r.standard_normal((3, 4)),)),
    "apply_along_axis_0": (lambda x: np.apply_along_axis(lambda v: np.outer(v, v), 0, x),
                           lambda r: (r.standard_normal((3, 2, 2)),)),
    "apply_along_axis_scalar": (lambda x: np.apply_along_axis(np.max, -1, x), lambda r: (r.standard_normal((2, 3, 4)),)),
    "ediff1d": (lambda x: np.ediff1d(x, to_end=[9.0, 8.0], to_begin=-1), lambda r: (r.standard_normal((2, 3)),)),
    "ediff1d_int": (np.ediff1d, lambda r: (r.integers(-9, 9, 6),)),
    "vander": (np.vander, lambda r: (r.standard_normal(5),)),
    "vander_n": (lambda x: np.vander(x, 3, increasing=True), lambda r: (r.integers(-4, 4, 4),)),
    "vander_f32": (lambda x: np.vander(x, 4), lambda r: (r.standard_normal(3).astype(np.float32),)),
    "gradient": (np.gradient, lambda r: (r.standard_normal(7),)),
    "gradient_2d": (lambda f: np.stack(np.gradient(f, 0.5, edge_order=2)), lambda r: (r.standard_normal((4, 5)),)),
    "gradient_axis": (lambda f: np.gradient(f, 2.0, axis=1), lambda r: (r.standard_normal((3, 4)),)),
    "gradient_coords": (lambda f: np.gradient(f, np.array([0.0, 0.5, 1.5, 1.7, 3.0]), edge_order=2),
                        lambda r: (r.standard_normal(5),)),
    "gradient_coords_traced": (lambda f, x: np.gradient(f, x), lambda r: (r.standard_normal(5), np.cumsum(r.random(5) + 0.1))),
    "gradient_int": (lambda f: np.gradient(f, axis=0), lambda r: (r.integers(-9, 9, (4, 2)),)),
    "unwrap": (np.unwrap, lambda r: (np.cumsum(r.standard_normal(12) * 2.5),)),
    "unwrap_axis": (lambda p: np.unwrap(p, discont=4.0, axis=0), lambda r: (np.cumsum(r.standard_normal((9, 2)) * 3, 0),)),
    "unwrap_period": (lambda p: np.unwrap(p, period=6), lambda r: (r.integers(0, 6, 10) + 6 * r.integers(0, 3, 10),)),
    "polyfit": (lambda x, y: np.polyfit(x, y, 2), lambda r: (np.linspace(-1, 1, 9), r.standard_normal(9))),
    "polyfit_2d": (lambda x, y: np.polyfit(x, y, 3), lambda r: (r.standard_normal(8), r.standard_normal((8, 2)))),
    "polyfit_w": (lambda x, y, w: np.polyfit(x, y, 1, w=w), lambda r: (r.standard_normal(6), r.standard_normal(6), r.random(6))),
}
CASES.update({
    "histogram2d": (lambda x, y: np.histogram2d(x, y)[0], lambda r: (r.standard_normal(50) * 3, r.standard_normal(50))),
    "histogram2d_bins_edges": (lambda x, y: np.histogram2d(x, y, bins=[3, 4])[2], lambda r: (r.standard_normal(30), r.standard_normal(30))),
    "histogram2d_density": (lambda x, y: np.histogram2d(x, y, bins=5, range=[[-2, 2], [-1, 3]], density=True)[0],
                            lambda r: (r.standard_normal(40), r.standard_normal(40))),
    "histogram2d_weights": (lambda x, y, w: np.histogram2d(x, y, bins=np.array([-3.0, 0, 1, 5]), weights=w)[0],
                            lambda r: (r.standard_normal(40), r.standard_normal(40), r.random(40))),
    "histogram2d_f32": (lambda x, y: np.histogram2d(x, y, bins=(2, np.array([-1.0, 0.0, 1.0])))[0],
                        lambda r: (r.standard_normal(20).astype(np.float32), r.standard_normal(20).astype(np.float32))),
    "histogramdd": (lambda s: np.histogramdd(s, bins=(2, 3, 4))[0], lambda r: (r.standard_normal((60, 3)),)),
    "histogramdd_list_density": (lambda x, y, z: np.histogramdd([x, y, z], bins=3, density=True)[0],
                                 lambda r: (r.standard_normal(30), r.standard_normal(30), r.standard_normal(30))),
    "histogramdd_int_edges": (lambda s: np.histogramdd(s, bins=4)[1][1], lambda r: (r.integers(-5, 5, (20, 2)),)),
    "histogram_weights": (lambda x, w: np.histogram(x, bins=5, weights=w)[0], lambda r: (r.standard_normal(40), r.random(40))),
})
if HAS_MATVEC:
    CASES["matvec"] = (np.matvec, lambda r: (r.standard_normal((2, 3, 4)), r.standard_normal(4)))
    CASES["matvec_broadcast"] = (np.matvec, lambda r: (r.standard_normal((3, 4)), r.standard_normal((5, 1, 4))))
    CASES["vecmat"] = (np.vecmat, lambda r: (r.standard_normal(3), r.standard_normal((2, 3, 4))))


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name, mode, rng):
    f, make = CASES[name]
    args = make(rng)
    want = f(*args)
    got = f(*[xcs.asarray(a) for a in args]) if mode == "eager" else jit(f)(*args)
    assert isinstance(got, xcs.Array), type(got)
    got = np.asarray(got)
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype, (got.dtype, np.asarray(want).dtype)
    tol = 1e-5 if got.dtype == np.float32 else 1e-10  # sums by doubling steps (cumsum): the last bits
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_gradients_and_vmap(rng):
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((8, 9))
    fns = [lambda v: (np.pad(v, ((1, 0), (2, 1)), mode="reflect") * w[:4, :7]).sum(),
           lambda v: (np.pad(v, 1, mode="mean") * w[:5, :6]).sum(),
           lambda v: (np.pad(v, 2, mode="linear_ramp", end_values=1.0) * w[:7, :8]).sum(),
           lambda v: (np.cumulative_sum(v, axis=1, include_initial=True) ** 2).sum(),
           lambda v: (np.gradient(v, 0.3, edge_order=2)[1] * w[:3, :4]).sum(),
           lambda v: (np.polyfit(np.linspace(0, 1, 4), v.T, 2) ** 2).sum(),
           lambda v: np.piecewise(v, [v < 0], [lambda t: t ** 3, lambda t: np.sin(t)]).sum(),
           lambda v: (np.apply_along_axis(lambda r: r * r.sum(), 1, v) * w[:3, :4]).sum(),
           lambda v: (np.block([[v, v[:, :1]], [v[:1], v[:1, :1]]]) * w[:4, :5]).sum()]
    for f in fns:
        np.testing.assert_allclose(np.asarray(grad(f)(x)), fd_grad(f, x), rtol=1e-6, atol=1e-7)
    batch = rng.standard_normal((4, 3, 4))
    for f in (lambda v: np.pad(v, 2, mode="symmetric"), lambda v: np.gradient(v, axis=1),
              lambda v: np.digitize(v, np.array([-0.5, 0.5])), lambda v: np.unwrap(v * 4)):
        np.testing.assert_allclose(np.asarray(vmap(f)(batch)), np.stack([f(b) for b in batch]), rtol=1e-12, atol=1e-12)


def test_histogram_weight_gradients(rng):
    """Weighted histograms are one scatter-add of the weights: their gradient is a gather of the
    cotangent at each point's bin (0 for points outside the range)."""
    x, y, w = rng.standard_normal(30), rng.standard_normal(30), rng.random(30)
    c = rng.standard_normal((4, 4))
    f = lambda w: (np.histogram2d(x, y, bins=4, range=[[-1, 1], [-1, 1]], weights=w)[0] * c).sum()  # noqa: E731
    ix = np.clip(np.searchsorted(np.linspace(-1, 1, 5), x, "right") - 1, 0, 3)
    iy = np.clip(np.searchsorted(np.linspace(-1, 1, 5), y, "right") - 1, 0, 3)
    inside = (np.abs(x) <= 1) & (np.abs(y) <= 1)
    np.testing.assert_allclose(np.asarray(grad(f)(w)), np.where(inside, c[ix, iy], 0.0), rtol=1e-12)


def test_errors_and_fallbacks():
    with pytest.raises(xcs.XCSValueError, match="can't extend empty axis"):
        np.pad(xcs.asarray(np.ones((0, 2))), 1, mode="edge")
    with pytest.raises(xcs.XCSValueError, match="negative"):
        np.pad(xcs.asarray(np.ones(2)), -1)
    with pytest.raises(xcs.XCSValueError, match="axis`` argument is required"):
        np.cumulative_sum(xcs.asarray(np.ones((2, 2))))
    with pytest.raises(xcs.XCSValueError, match="monotonically"):
        np.digitize(xcs.asarray(np.ones(2)), [1.0, 3.0, 2.0])
    with pytest.raises(xcs.XCSValueError, match="List depths are mismatched"):
        np.block([[xcs.asarray(np.ones(2))], xcs.asarray(np.ones(2))])
    with pytest.raises(xcs.XCSTypeError, match="is a tuple"):
        xcs.numpy.block(([1.0], [2.0]))
    with pytest.raises(xcs.XCSValueError, match="start"):
        np.rollaxis(xcs.asarray(np.ones((2, 3))), 0, 5)
    with pytest.raises(xcs.XCSIndexError, match="out of bounds"):
        np.compress([True] * 4, xcs.asarray(np.ones(3)))
    with pytest.raises(xcs.XCSValueError, match="too small to calculate a numerical gradient"):
        np.gradient(xcs.asarray(np.ones(2)), edge_order=2)
    with pytest.raises(xcs.XCSTypeError, match="same_kind"):
        np.ediff1d(xcs.asarray(np.arange(3)), to_end=0.5)
    with pytest.raises(xcs.XCSValueError, match="iteration dimensions are 0"):
        np.apply_along_axis(np.sum, 0, xcs.asarray(np.ones((3, 0))))
    # the result's shape depends on a traced condition: no trace (numpy would compute it on the data)
    with pytest.raises(xcs.XCSTracerError, match="compress"):
        jit(lambda c, x: np.compress(c, x))(np.array([True, False]), np.ones(2))
    # numpy's own loop for a func1d that cannot be traced, on concrete arrays
    branchy = lambda v: v.sum() if float(v[0]) > 0 else -v.sum()  # noqa: E731
    a = np.array([[1.0, 2.0], [-1.0, 5.0]])
    np.testing.assert_array_equal(np.asarray(np.apply_along_axis(branchy, 1, xcs.asarray(a))),
                                  np.apply_along_axis(branchy, 1, a))
    with pytest.warns(np.exceptions.RankWarning):  # concrete rank below deg + 1
        np.polyfit(xcs.asarray(np.ones(4)), np.arange(4.0), 2)


def test_static_shape_functions():
    """np.ndim / np.shape / np.size read a traced Array's static shape (Python ints under jit)."""
    seen = []

    def f(x):
        seen.append((np.ndim(x), np.shape(x), np.size(x), np.size(x, -1)))
        return x * np.size(x, 0)

    np.testing.assert_array_equal(np.asarray(jit(f)(np.ones((2, 3)))), np.full((2, 3), 2.0))
    assert seen == [(2, (2, 3), 6, 3)] and all(type(v) is int for v in (seen[0][0], seen[0][2], seen[0][3]))
    assert np.shape(xcs.asarray(np.ones((4, 1)))) == (4, 1) and np.size(xcs.asarray(np.ones((0, 3)))) == 0


REDUCTIONS = {
    "sum_where": lambda x, m: np.sum(x, where=m), "sum_initial": lambda x, m: np.sum(x, axis=1, where=m, initial=3),
    "prod_where": lambda x, m: np.prod(x, axis=(0, 2), where=m, keepdims=True),
    "max_where": lambda x, m: np.max(x, axis=1, initial=-2, where=m),
    "min_initial": lambda x, m: np.min(x, axis=(1, 2), initial=7, keepdims=True),
    "max_initial_all": lambda x, m: np.max(x, initial=100), "max_initial_empty": lambda x, m: np.max(x[:, :0], axis=1, initial=1),
    "sum_initial_empty": lambda x, m: np.sum(x[:0], axis=0, initial=2),
    "mean_where": lambda x, m: np.mean(x, axis=0, where=m), "mean_where_all": lambda x, m: np.mean(x, where=m),
    "var_where": lambda x, m: np.var(x, axis=2, where=m, ddof=1),
    "std_where": lambda x, m: np.std(x, axis=(0, 1), where=m, keepdims=True),
    "var_mean": lambda x, m: np.var(x, axis=1, mean=np.mean(x, axis=1, keepdims=True)),
    "var_correction": lambda x, m: np.var(x, correction=1), "all_where": lambda x, m: np.all(x > 0, axis=0, where=m),
    "any_where": lambda x, m: np.any(x > 4, where=~m),
    # methods in numpy's positional order (dtype second; var's ddof fourth)
    "method_sum_dtype": lambda x, m: x.sum(1, np.float32), "method_max_initial": lambda x, m: x.max(2, None, True, 0.5),
    "method_var_ddof": lambda x, m: x.var(0, None, None, 1), "method_mean_where": lambda x, m: x.mean(axis=2, where=m),
    "method_argmax": lambda x, m: x.argmax(1, None, keepdims=True),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, on fully masked-out slices (NaN, as xcs's)
@pytest.mark.parametrize("dt", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_where_and_initial(name, dt, rng):
    """numpy's where= (a mask broadcast against the array) and initial= on sum, prod, max, min,
    mean, var, std, all, any, and var's mean= / correction=, eagerly and under jit."""
    a = (rng.standard_normal((3, 4, 5)) * 5).astype(dt)
    m = rng.random((4, 5)) > 0.4
    f = REDUCTIONS[name]
    with np.errstate(all="ignore"):
        want = f(a, m)
        for got in (f(xcs.asarray(a), m), jit(f)(a, m)):
            got = np.asarray(got)
            assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
            np.testing.assert_allclose(got, want, rtol=2e-6 if dt == np.float32 else 1e-12, atol=1e-5)


def test_reduction_where_errors_and_gradients(rng):
    with pytest.raises(xcs.XCSValueError, match="to use a where mask one has to specify 'initial'"):
        np.max(xcs.asarray(np.ones(3)), where=np.array([True, False, True]))
    with pytest.raises(xcs.XCSValueError, match="ddof and correction"):
        np.var(xcs.asarray(np.ones(3)), ddof=1, correction=1)
    a, m, m2 = rng.standard_normal((3, 4)), rng.random(4) > 0.5, rng.random((3, 4)) > 0.5
    m[0] = m2[0] = True  # no empty row or column: their means are NaN
    for f in (lambda x: np.sum(x ** 2, where=m), lambda x: np.mean(x, axis=0, where=m2).sum(),
              lambda x: np.var(x, axis=1, where=m).sum(), lambda x: np.max(x, axis=1, initial=0.0, where=m).sum()):
        np.testing.assert_allclose(np.asarray(grad(f)(a)), fd_grad(f, a), rtol=1e-6, atol=1e-7)


QUANTILE_METHODS = ["linear", "lower", "higher", "midpoint", "nearest", "inverted_cdf", "averaged_inverted_cdf",
                    "closest_observation", "interpolated_inverted_cdf", "hazen", "weibull", "median_unbiased",
                    "normal_unbiased"]


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_quantile_methods(method, rng):
    """Every numpy.quantile method: its virtual index, bounds and gamma, on 1 to 7 values, float
    and int data, scalar and array q (numpy's dtypes: ints kept by the discrete methods, q's float
    dtype for the interpolating ones)."""
    for dt in (np.float64, np.float32, np.int64):
        for shape in ((1,), (2,), (3, 7)):
            a = (rng.standard_normal(shape) * 10).astype(dt)
            for q in (0.0, 0.1, 0.5, 0.999, 1.0, np.array([0.0, 0.33, 0.5, 0.9, 1.0])):
                f = lambda x: np.quantile(x, q, axis=-1, method=method)  # noqa: E731
                want = f(a)
                for got in (f(xcs.asarray(a)), jit(f)(a)):
                    got = np.asarray(got)
                    assert got.shape == want.shape and got.dtype == want.dtype, (dt, shape, q)
                    np.testing.assert_allclose(got, want, rtol=1e-6 if want.dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(np.asarray(np.percentile(xcs.asarray(np.arange(10.0)), 37, method=method)),
                               np.percentile(np.arange(10.0), 37, method=method))
    with pytest.raises(xcs.XCSValueError, match="is not a valid method"):
        np.quantile(xcs.asarray(np.ones(3)), 0.5, method="bogus")


MISC = {
    "add_outer": (lambda x, y: np.add.outer(x, y), lambda r: (r.standard_normal(3), r.standard_normal((2, 2)))),
    "subtract_outer": (lambda x, y: np.subtract.outer(x, y), lambda r: (r.standard_normal((2, 1)), r.standard_normal(4))),
    "maximum_accumulate": (lambda x: np.maximum.accumulate(x, axis=1), lambda r: (r.standard_normal((3, 6)),)),
    "minimum_accumulate_int": (lambda x: np.minimum.accumulate(x), lambda r: (r.integers(-9, 9, 7),)),
    "maximum_accumulate_nan": (lambda x: np.maximum.accumulate(np.where(x > 1, np.nan, x)), lambda r: (r.standard_normal(9),)),
    "add_accumulate": (lambda x: np.add.accumulate(x, axis=0), lambda r: (r.integers(-5, 5, (4, 2)).astype(np.int32),)),
    "multiply_accumulate": (lambda x: np.multiply.accumulate(x, axis=-1), lambda r: (r.standard_normal((2, 5)),)),
    "logical_or_accumulate": (lambda x: np.logical_or.accumulate(x > 1), lambda r: (r.standard_normal(8),)),
    "isposinf": (lambda x: np.isposinf(x / np.where(x > 0, 0.0, 1.0)), lambda r: (r.standard_normal(6),)),
    "isneginf": (lambda x: np.isneginf(-1 / np.where(x > 0, 0.0, 1.0)), lambda r: (r.standard_normal(6),)),
    "copy": (lambda x: np.copy(x) * 2, lambda r: (r.standard_normal(3),)),
    "result_type": (lambda x: x.astype(np.result_type(x, np.float32)), lambda r: (r.integers(0, 5, 3).astype(np.int32),)),
    "iscomplexobj": (lambda x: x * (3 if np.iscomplexobj(x) else 2) * (5 if np.isrealobj(x) else 7), lambda r: (r.standard_normal(2),)),
    "real_if_close": (np.real_if_close, lambda r: (r.standard_normal(3),)),
    "tril_indices_from": (lambda x: x[np.tril_indices_from(x, -1)], lambda r: (r.standard_normal((4, 3)),)),
    "triu_indices_from": (lambda x: x[np.triu_indices_from(x, 1)], lambda r: (r.standard_normal((3, 4)),)),
    "diag_indices_from": (lambda x: x[np.diag_indices_from(x)], lambda r: (r.standard_normal((3, 3, 3)),)),
}


@pytest.mark.parametrize("name", list(MISC))
def test_ufunc_methods_and_queries(name, rng):
    """ufunc.outer and .accumulate (add / multiply as cumsum / cumprod, maximum / minimum / logical
    ones as scans in the data's dtype), and numpy's shape and dtype queries, under jit."""
    f, make = MISC[name]
    args = make(rng)
    with np.errstate(divide="ignore"):
        want = f(*args)
        for got in (f(*[xcs.asarray(a) for a in args]), jit(f)(*args)):
            got = np.asarray(got)
            assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_python_ints_out_of_int32_range_against_int32_arrays(rng):
    """numpy raises for arithmetic with a Python int that int32 cannot hold
    (NEP 50) but compares one exactly, either side (found by differential
    testing)."""
    a = rng.integers(-2**31, 2**31, 50, dtype=np.int32)
    a[:2] = [np.iinfo(np.int32).min, np.iinfo(np.int32).max]
    x = xcs.asarray(a)
    for v in (2**31, -(2**31) - 1, 2**40, -(2**62), 2**31 - 1, -(2**31), 0):
        for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
            got, want = np.asarray(getattr(x, op)(v)), getattr(a, op)(v)
            assert got.dtype == np.bool_
            np.testing.assert_array_equal(got, want, err_msg=f"{op} {v}")
        np.testing.assert_array_equal(np.asarray(v <= x), v <= a)
    with pytest.raises(xcs.XCSValueError, match="out of bounds for int32"):
        x + 2**31


def test_asarray_python_ints_out_of_range():
    """numpy's OverflowError for a Python int out of an integer dtype's range (not a wrapped value)."""
    for v in (2**40, 2**31, [1, 2**40], -(2**31) - 1):
        with pytest.raises(OverflowError, match="out of bounds for int32"):
            xcs.numpy.asarray(v, np.int32)
    assert np.asarray(xcs.numpy.array([1, -(2**31)], np.int32)).tolist() == [1, -(2**31)]
