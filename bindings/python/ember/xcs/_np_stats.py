"""numpy's statistics, NaN-ignoring reductions, searching and counting
functions, composed of ember.xcs.numpy's (so they work eagerly and under
jit / grad / vmap alike).

Re-exported by ember.xcs.numpy; ``NUMPY_FUNCTIONS`` names the numpy functions
that dispatch here from ``Array`` arguments (ember.xcs._dispatch).

Checks numpy makes on values (an all-NaN slice for nanargmax, weights summing
to zero, a non-finite histogram range, bins not increasing) raise numpy's
error on concrete data only: traced values cannot be inspected, and each
docstring says what is returned for them instead."""

import builtins as _builtins
import operator as _operator
import warnings as _warnings

import numpy as _np

from ember.xcs import _xcs
from ember.xcs import numpy as xnp  # noqa: F401  (attributes read at call time: xnp is still loading here)
from ember.xcs._xcs import Array, XCSTypeError, XCSValueError

__all__ = ["average", "ptp", "cov", "corrcoef", "nansum", "nanprod", "nanmax", "nanmin", "nanargmax", "nanargmin",
           "nanmean", "nanvar", "nanstd", "nanmedian", "nanquantile", "nanpercentile", "searchsorted", "interp",
           "isin", "in1d", "histogram", "histogram_bin_edges", "bincount", "partition", "argpartition", "lexsort",
           "allclose", "array_equal", "array_equiv", "nancumsum", "nancumprod", "digitize", "histogramdd",
           "histogram2d"]
NUMPY_FUNCTIONS = tuple(__all__)  # in1d: numpy < 2.4 only (dispatch skips names numpy lacks)


# ---------------------------------------------------------------- helpers


def _known(cond):
    """True when cond (bool) is concrete and holds somewhere: numpy's value checks, made only where values exist."""
    cond = xnp.asarray(cond)
    return not _xcs._is_traced(cond) and bool(xnp.any(cond))


def _concrete(x, what):
    """x as a numpy value, for arguments that fix shapes or constants (an Array must not be traced)."""
    if isinstance(x, Array):
        if _xcs._is_traced(x):
            raise xnp._Unsupported(f"{what} must be known when tracing (not computed from traced values)")
        return _np.asarray(x)[()]
    return x


def _floating(a):
    return xnp._floating(a.dtype)


def _axes(axis, ndim, name):
    """axis (int or tuple) as a tuple of non-negative ints, in the order given."""
    axes = tuple(xnp._axis(_operator.index(v), ndim, name) for v in (axis if isinstance(axis, (tuple, list)) else
                                                                      (axis,)))
    if len(set(axes)) != len(axes):
        raise XCSValueError(f"{name}: repeated axis")
    return axes


def _to_last(a, axis, name):
    """(a with the reduced axes moved last and merged, kept shape, keepdims shape)."""
    axes = tuple(range(a.ndim)) if axis is None else tuple(sorted(_axes(axis, a.ndim, name)))
    kept = tuple(s for d, s in enumerate(a.shape) if d not in axes)
    kd = tuple(1 if d in axes else s for d, s in enumerate(a.shape))
    moved = xnp.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    return xnp.reshape(moved, kept + (int(_np.prod([a.shape[d] for d in axes])),)), kept, kd


def _fill_nan(a, value):
    return xnp.where(xnp.isnan(a), value, a) if _floating(a) else a


def _lt(x, y):
    """x < y in numpy's sort order (NaNs last)."""
    r = xnp.less(x, y)
    if _floating(y):
        r = xnp.logical_or(r, xnp.logical_and(xnp.isnan(y), xnp.logical_not(xnp.isnan(x))))
    return r


def _search(a, v, right):
    """Insertion points of v in the sorted 1-D a (numpy's searchsorted, NaNs last): a binary search of
    log2(len(a)) steps, each one gather."""
    n = a.shape[0]
    pos = xnp.zeros(v.shape, xnp.int64)
    k = 1 << (n.bit_length() - 1) if n else 0
    while k:  # pos grows by k where the k-th element on is still before v
        cand = xnp.add(pos, k)
        ai = xnp.take(a, xnp.subtract(xnp.minimum(cand, n), 1))
        ok = xnp.logical_not(_lt(v, ai)) if right else _lt(ai, v)
        pos = xnp.where(xnp.logical_and(xnp.less_equal(cand, n), ok), cand, pos)
        k >>= 1
    return pos


# ---------------------------------------------------------------- averages, spread, covariance


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """numpy.average: the mean, or sum(a * w) / sum(w) in numpy's result dtype (ints and bools: float64 at least).
    Weights summing to zero raise ZeroDivisionError on concrete data; traced, they give inf / NaN."""
    a = xnp.asarray(a)
    axes = None if axis is None else _axes(axis, a.ndim, "average")
    if weights is None:
        avg = xnp.mean(a, axes, keepdims=keepdims)
        scl = xnp.full(avg.shape, a.size / avg.size, avg.dtype)
    else:
        w = xnp.asarray(weights)
        if w.shape != a.shape:
            if axes is None:
                raise XCSTypeError("Axis must be specified when shapes of a and weights differ.")
            if w.shape != tuple(a.shape[d] for d in axes):
                raise XCSValueError("Shape of weights must be consistent with shape of a along specified axis.")
            w = xnp.reshape(xnp.transpose(w, tuple(_np.argsort(axes))),
                            tuple(s if d in axes else 1 for d, s in enumerate(a.shape)))
        rdt = _np.result_type(a.dtype, w.dtype, *(("f8",) if a.dtype.kind in "biu" else ()))
        scl = xnp.sum(w, axes, rdt, keepdims=keepdims)
        if _known(xnp.equal(scl, 0)):
            raise _xcs.XCSZeroDivisionError("Weights sum to zero, can't be normalized")
        avg = xnp.divide(xnp.sum(xnp.multiply(xnp.astype(a, rdt), xnp.astype(w, rdt)), axes, keepdims=keepdims), scl)
    if returned:
        return avg, (scl if scl.shape == avg.shape else xnp.broadcast_to(scl, avg.shape))
    return avg


def ptp(a, axis=None, out=None, keepdims=False):
    """Range of values (max - min) along axis."""
    xnp._no_out(out, "ptp")
    a = xnp.asarray(a)
    if a.dtype == xnp.bool_:
        raise xnp._Unsupported("ptp: numpy does not subtract booleans")
    return xnp.subtract(xnp.max(a, axis, keepdims=keepdims), xnp.min(a, axis, keepdims=keepdims))


def _rows(x, dtype):
    """x as numpy.cov's 2-D observations array (variables in rows)."""
    x = xnp.astype(xnp.asarray(x), dtype)
    return x if x.ndim == 2 else xnp.reshape(x, (1,) * (2 - x.ndim) + x.shape)


def cov(m, y=None, rowvar=True, bias=False, ddof=None, *, dtype=None):
    """numpy.cov (no fweights / aweights): centred rows times their transpose, times 1 / (N - ddof)."""
    if ddof is not None and ddof != int(ddof):
        raise XCSValueError("ddof must be integer")
    m = xnp.asarray(m)
    y = None if y is None else xnp.asarray(y)
    if m.ndim > 2 or (y is not None and y.ndim > 2):
        raise XCSValueError(f"{'m' if m.ndim > 2 else 'y'} has more than 2 dimensions")
    if dtype is None:
        dtype = _np.result_type(m.dtype, *(() if y is None else (y.dtype,)), _np.float64)
    X = _rows(m, dtype)
    if not rowvar and m.ndim != 1:
        X = X.T
    if X.shape[0] == 0:
        return xnp.zeros((0, 0))
    if y is not None:
        Y = _rows(y, dtype)
        X = xnp.concatenate((X, Y if rowvar or Y.shape[0] == 1 else Y.T), axis=0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    fact = X.shape[1] - ddof
    if fact <= 0:
        _warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=2)
        fact = 0.0
    X = xnp.subtract(X, xnp.mean(X, 1, keepdims=True))
    c = xnp.matmul(X, X.T)
    with _np.errstate(divide="ignore"):
        s = _np.true_divide(1, fact)  # numpy multiplies by a float64 reciprocal, rounding once to c's dtype
    c = xnp.multiply(c, s) if c.dtype == xnp.float64 else xnp.astype(xnp.multiply(xnp.astype(c, xnp.float64), s),
                                                                     c.dtype)
    return xnp.squeeze(c)


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """numpy.corrcoef: cov scaled by the standard deviations, clipped to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:  # one variable: NaN for 0 / inf / NaN, else 1 (numpy's c / c)
        return xnp.divide(c, c)
    d = xnp.sqrt(xnp.diagonal(c))
    c = xnp.divide(xnp.divide(c, xnp.expand_dims(d, 1)), xnp.expand_dims(d, 0))
    return xnp.clip(c, -1, 1)


# ---------------------------------------------------------------- NaN-ignoring reductions


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """Sum treating NaNs as zero (initial= and where= as sum's)."""
    xnp._no_out(out, "nansum")
    return xnp.sum(_fill_nan(xnp.asarray(a), 0), axis, dtype, keepdims=keepdims, initial=initial, where=where)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """Product treating NaNs as one (initial= and where= as prod's)."""
    xnp._no_out(out, "nanprod")
    return xnp.prod(_fill_nan(xnp.asarray(a), 1), axis, dtype, keepdims=keepdims, initial=initial, where=where)


def nancumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum treating NaNs as zero (of the flattened array when axis is None)."""
    xnp._no_out(out, "nancumsum")
    return xnp.cumsum(_fill_nan(xnp.asarray(a), 0), axis, dtype)


def nancumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product treating NaNs as one (of the flattened array when axis is None)."""
    xnp._no_out(out, "nancumprod")
    return xnp.cumprod(_fill_nan(xnp.asarray(a), 1), axis, dtype)


def _nanextreme(a, axis, keepdims, red, fill, initial, where):
    a = xnp.asarray(a)
    if not _floating(a):
        return red(a, axis, keepdims=keepdims, initial=initial, where=where)
    nan = xnp.isnan(a)
    r = red(xnp.where(nan, fill, a), axis, keepdims=keepdims, initial=initial, where=where)
    if initial is not None:  # numpy's fmax.reduce from initial: NaNs never win over it
        return r
    return xnp.where(xnp.all(xnp.logical_or(nan, xnp.logical_not(where)), axis, keepdims=keepdims), _np.nan, r)


def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=True):
    """Maximum ignoring NaNs; NaN for an all-NaN slice (numpy also warns); initial= and where= as max's."""
    xnp._no_out(out, "nanmax")
    return _nanextreme(a, axis, keepdims, xnp.max, -_np.inf, initial, where)


def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=True):
    """Minimum ignoring NaNs; NaN for an all-NaN slice (numpy also warns); initial= and where= as min's."""
    xnp._no_out(out, "nanmin")
    return _nanextreme(a, axis, keepdims, xnp.min, _np.inf, initial, where)


def _nanarg(a, axis, keepdims, red, fill):
    a = xnp.asarray(a)
    if not _floating(a):
        return red(a, axis, keepdims=keepdims)
    nan = xnp.isnan(a)
    bad = xnp.all(nan, axis, keepdims=keepdims)
    if _known(bad):
        raise XCSValueError("All-NaN slice encountered")
    return xnp.where(bad, -1, red(xnp.where(nan, fill, a), axis, keepdims=keepdims))


def nanargmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the maximum ignoring NaNs.  An all-NaN slice raises ValueError on concrete data, as numpy;
    traced (where values cannot be checked) its index is -1."""
    xnp._no_out(out, "nanargmax")
    return _nanarg(a, axis, keepdims, xnp.argmax, -_np.inf)


def nanargmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the minimum ignoring NaNs.  An all-NaN slice raises ValueError on concrete data, as numpy;
    traced (where values cannot be checked) its index is -1."""
    xnp._no_out(out, "nanargmin")
    return _nanarg(a, axis, keepdims, xnp.argmin, _np.inf)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    """Mean of the non-NaN values (NaN for an all-NaN slice, which numpy also warns about); where=
    as mean's."""
    xnp._no_out(out, "nanmean")
    a = xnp.asarray(a)
    if not _floating(a):
        return xnp.mean(a, axis, dtype, keepdims=keepdims, where=where)
    nan = xnp.isnan(a)
    tot = xnp.sum(xnp.where(nan, 0, a), axis, dtype, keepdims=keepdims, where=where)
    cnt = xnp.sum(xnp.logical_not(nan), axis, keepdims=keepdims, where=where)
    return xnp.astype(xnp.divide(tot, cnt), tot.dtype, copy=False)


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True):
    """Variance of the non-NaN values, numpy's two passes; NaN where fewer than ddof + 1 values remain;
    where= as var's."""
    xnp._no_out(out, "nanvar")
    a = xnp.asarray(a)
    if not _floating(a):
        return xnp.var(a, axis, dtype, ddof=ddof, keepdims=keepdims, where=where)
    nan = xnp.isnan(a)
    arr = xnp.where(nan, 0, a)
    tot = xnp.sum(arr, axis, dtype, keepdims=True, where=where)
    cnt = xnp.sum(xnp.logical_not(nan), axis, keepdims=True, where=where)
    avg = xnp.astype(xnp.divide(tot, cnt), tot.dtype, copy=False)
    d = xnp.where(nan, 0, xnp.astype(xnp.subtract(arr, avg), arr.dtype, copy=False))
    v = xnp.sum(xnp.multiply(d, d), axis, dtype, keepdims=keepdims, where=where)
    dof = xnp.subtract(xnp.sum(xnp.logical_not(nan), axis, keepdims=keepdims, where=where), ddof)
    return xnp.where(xnp.less_equal(dof, 0), _np.nan, xnp.astype(xnp.divide(v, dof), v.dtype, copy=False))


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True):
    """Standard deviation of the non-NaN values: sqrt(nanvar) (where= as var's)."""
    xnp._no_out(out, "nanstd")
    return xnp.sqrt(nanvar(a, axis, dtype, None, ddof, keepdims, where=where))


def _sorted_rows(a, axis, name):
    """(sorted rows of a's reduced axes (NaNs last), count of non-NaN per row, kept shape, keepdims shape)."""
    if a.dtype == xnp.bool_ or a.size == 0:
        raise xnp._Unsupported(f"{name}: boolean or empty input")
    if not _floating(a):
        a = xnp.astype(a, xnp.float64)
    rows, kept, kd = _to_last(a, axis, name)
    s = xnp.sort(rows, -1)
    return s, xnp.sum(xnp.logical_not(xnp.isnan(s)), -1, keepdims=True), kept, kd


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """Median of the non-NaN values: the middle one, or the mean of the two middle ones, of each sorted row
    (NaNs sort last, so the count of the others says where they are); NaN for an all-NaN slice."""
    xnp._no_out(out, "nanmedian")
    a = xnp.asarray(a)
    s, cnt, kept, kd = _sorted_rows(a, axis, "nanmedian")
    lo = xnp.take_along_axis(s, xnp.maximum(xnp.floor_divide(xnp.subtract(cnt, 1), 2), 0), -1)
    hi = xnp.take_along_axis(s, xnp.minimum(xnp.floor_divide(cnt, 2), s.shape[-1] - 1), -1)
    m = xnp.where(xnp.equal(xnp.mod(cnt, 2), 1), lo, xnp.divide(xnp.add(lo, hi), 2))
    return xnp.reshape(xnp.where(xnp.equal(cnt, 0), _np.nan, m), kd if keepdims else kept)


def _nanquantile(a, q, axis, method, keepdims, name):
    """numpy's nanquantile on concrete q (numpy's own dtype), each of quantile's methods: per row of
    n non-NaN sorted values, numpy's plan for n values (ember.xcs.numpy's _quantile_plan, n an array
    of the rows' counts here): one order statistic, or two lerped two-sided as numpy's _lerp; NaN
    for an all-NaN row."""
    fd = a.dtype if _floating(a) else _np.dtype(_np.float64)
    if q.dtype.kind != "f" or q.dtype != fd or fd not in (_np.float32, _np.float64):
        # numpy's result dtype would then depend on which rows are all NaN (or it computes in float16)
        raise xnp._Unsupported(f"{name}: q of dtype {q.dtype} with data of dtype {a.dtype}")
    s, cnt, kept, kd = _sorted_rows(a, axis, name)
    # numpy's index arithmetic: a row's count (a Python int there) with q, in q's dtype
    i, j, gamma = xnp._quantile_plan(xnp.astype(cnt, fd), xnp.asarray(q.reshape(-1)), method, xnp)  # [..., q]
    top = s.shape[-1] - 1  # an all-NaN row's indices (-1 there) kept in range: its result is NaN anyway
    lo = xnp.take_along_axis(s, xnp.clip(i, 0, top), -1)
    if gamma is None:
        r = lo
    else:
        hi = xnp.take_along_axis(s, xnp.clip(j, 0, top), -1)
        r = xnp._lerp(lo, hi, xnp.subtract(hi, lo), gamma)
    r = xnp.where(xnp.equal(cnt, 0), _np.nan, r)
    r = xnp.reshape(r, (kd if keepdims else kept) + q.shape)
    return xnp.moveaxis(r, tuple(range(r.ndim - q.ndim, r.ndim)), tuple(range(q.ndim)))


def _q_valid(q, message):
    if not (_np.all(0 <= q) and _np.all(q <= 1)):
        raise XCSValueError(message)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """numpy.nanquantile, each of numpy.quantile's methods, q known (not traced); the q dims come first.
    Integer and boolean data (no NaNs) go to quantile, as numpy's do: lower, higher, nearest and the
    inverted-cdf methods keep their dtype."""
    xnp._no_out(out, "nanquantile")
    a = xnp.asarray(a)
    scalar = isinstance(q, (int, float)) and a.dtype.kind == "f"  # numpy: q in a's dtype
    q = _np.asarray(_concrete(q, "nanquantile: q"), a.dtype if scalar else None)
    _q_valid(q, "Quantiles must be in the range [0, 1]")
    if not _floating(a) and a.size:  # no NaNs: numpy's quantile, whose discrete methods keep an int dtype
        return xnp.quantile(a, q, axis, None, False, method, keepdims)
    return _nanquantile(a, q, axis, method, keepdims, "nanquantile")


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """numpy.nanpercentile: nanquantile at q / 100 (numpy's division, in a's float dtype for a scalar q)."""
    xnp._no_out(out, "nanpercentile")
    a = xnp.asarray(a)
    q = _np.asarray(_np.true_divide(_concrete(q, "nanpercentile: q"), a.dtype.type(100) if a.dtype.kind == "f"
                                    else 100))
    _q_valid(q, "Percentiles must be in the range [0, 100]")
    if not _floating(a) and a.size:  # no NaNs: numpy's quantile, whose discrete methods keep an int dtype
        return xnp.quantile(a, q, axis, None, False, method, keepdims)
    return _nanquantile(a, q, axis, method, keepdims, "nanpercentile")


# ---------------------------------------------------------------- searching, interpolation, membership


def searchsorted(a, v, side="left", sorter=None):
    """Indices where v's elements would be inserted into the sorted 1-D a (int64, v's shape), NaNs last:
    a binary search of log2(len(a)) steps.  sorter (a permutation sorting a) is taken first."""
    a = xnp.asarray(a)
    if a.ndim != 1:
        raise XCSValueError("searchsorted: a must be 1-D")
    if side not in ("left", "right"):
        raise xnp._Unsupported(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        sorter = xnp.asarray(sorter)
        if sorter.ndim != 1 or sorter.shape[0] != a.shape[0]:
            raise XCSValueError("sorter.size must equal a.size")
        s = None if _xcs._is_traced(sorter) else _np.asarray(sorter)
        if s is not None and s.size and (s.min() < 0 or s.max() >= s.size):
            raise XCSValueError("Sorter index out of range.")
        a = xnp.take(a, sorter)
    return _search(a, xnp.asarray(v), side == "right")


def _monotonicity(b):
    """numpy's check of digitize's bins (check_array_monotonic): past a run of equal first values,
    increasing if the next is above (1), else decreasing (-1), 0 if neither holds (NaNs compare
    false, so [0, nan] reads as decreasing, as numpy's)."""
    i = 1
    while i < b.size and b[i] == b[i - 1]:
        i += 1
    if i >= b.size:
        return 1
    if b[i - 1] < b[i]:
        return 0 if bool((b[i:-1] > b[i + 1:]).any()) else 1
    return 0 if bool((b[i:-1] < b[i + 1:]).any()) else -1


def digitize(x, bins, right=False):
    """The index of the bin each x falls in (int64, x's shape): searchsorted of increasing bins
    (side 'right', or 'left' when right=True), len(bins) minus that of the reversed decreasing
    ones.  numpy's check that bins are monotonic is made on concrete bins; traced bins are read
    as decreasing when the last is below the first."""
    bins, x = xnp.asarray(bins), xnp.asarray(x)
    if bins.ndim != 1:
        raise XCSValueError("object too deep for desired array" if bins.ndim > 1 else "object of too small depth "
                            "for desired array")
    side = "left" if right else "right"
    b = None if _xcs._is_traced(bins) else _np.asarray(bins)
    if b is not None:
        mono = _monotonicity(b)
        if mono == 0:
            raise XCSValueError("bins must be monotonically increasing or decreasing")
        if mono == 1:
            return searchsorted(bins, x, side=side)
        return xnp.subtract(bins.shape[0], searchsorted(xnp.flip(bins), x, side=side))
    up = searchsorted(bins, x, side=side)
    down = xnp.subtract(bins.shape[0], searchsorted(xnp.flip(bins), x, side=side))
    return xnp.where(xnp.less(bins[-1], bins[0]), down, up) if bins.shape[0] else up


def interp(x, xp, fp, left=None, right=None, period=None):
    """numpy.interp (period=None), in float64 as numpy's C loop: slope * (x - xp[j]) + fp[j] with
    slope = (fp[j+1] - fp[j]) / (xp[j+1] - xp[j]), xp[j] <= x < xp[j+1]; fp[j] at x == xp[j],
    left / right (default fp[0] / fp[-1]) outside, NaN for a NaN x."""
    if period is not None or (not isinstance(fp, Array) and _np.iscomplexobj(fp)):
        raise xnp._Unsupported("interp: period= and complex fp are not supported")
    x, xp, fp = (xnp.astype(xnp.asarray(t), xnp.float64) for t in (x, xp, fp))
    if xp.ndim != 1 or fp.ndim != 1:
        raise XCSValueError("interp: xp and fp must be 1-D")
    n = xp.shape[0]
    if n == 0:
        raise XCSValueError("array of sample points is empty")
    if fp.shape[0] != n:
        raise XCSValueError("fp and xp are not of the same length.")
    lval = fp[0] if left is None else left
    rval = fp[n - 1] if right is None else right
    if n == 1:  # numpy's loop for one point: no NaN test
        return xnp.where(xnp.less(x, xp[0]), lval, xnp.where(xnp.greater(x, xp[0]), rval, fp[0]))
    j = xnp.subtract(_search(xp, x, True), 1)  # the last j with xp[j] <= x
    jc = xnp.clip(j, 0, n - 2)
    x0, x1, y0, y1 = xnp.take(xp, jc), xnp.take(xp, xnp.add(jc, 1)), xnp.take(fp, jc), xnp.take(fp, xnp.add(jc, 1))
    slope = xnp.divide(xnp.subtract(y1, y0), xnp.subtract(x1, x0))
    r = xnp.add(xnp.multiply(slope, xnp.subtract(x, x0)), y0)
    r = xnp.where(xnp.isnan(r), xnp.add(xnp.multiply(slope, xnp.subtract(x, x1)), y1), r)  # numpy's retry
    r = xnp.where(xnp.logical_and(xnp.isnan(r), xnp.equal(y0, y1)), y0, r)
    r = xnp.where(xnp.equal(x, x0), y0, r)
    r = xnp.where(xnp.equal(j, n - 1), fp[n - 1], r)
    r = xnp.where(xnp.less(x, xp[0]), lval, r)
    r = xnp.where(xnp.greater(x, xp[n - 1]), rval, r)
    return xnp.where(xnp.isnan(x), x, r)


def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """element's elements found in test_elements (a bool array of element's shape): every pair compared."""
    if kind not in (None, "sort"):
        raise xnp._Unsupported(f"isin: kind={kind!r} is not supported")
    e = xnp.asarray(element)
    r = xnp.any(xnp.equal(xnp.expand_dims(e, -1), xnp.ravel(xnp.asarray(test_elements))), axis=-1)
    return xnp.logical_not(r) if invert else r


def in1d(ar1, ar2, assume_unique=False, invert=False, *, kind=None):
    """isin of the flattened ar1 (numpy's deprecated in1d)."""
    return isin(xnp.ravel(xnp.asarray(ar1)), ar2, assume_unique, invert, kind=kind)


# ---------------------------------------------------------------- histograms and counting


def _hist_input(a, weights):
    a = xnp.asarray(a)
    if a.dtype == xnp.bool_:
        _warnings.warn("Converting input from bool to uint8 for compatibility.", RuntimeWarning, stacklevel=3)
        a = xnp.astype(a, xnp.int32)
    if weights is not None:
        weights = xnp.asarray(weights)
        if weights.shape != a.shape:
            raise XCSValueError("weights should have the same shape as a.")
        weights = xnp.ravel(weights)
    return xnp.ravel(a), weights


def _linspace(start, stop, num):
    """numpy.linspace(start, stop, num) for 0-d start and stop of one float dtype (traced)."""
    div = num - 1
    delta = xnp.subtract(stop, start)
    step = xnp.divide(delta, div)
    i = xnp.arange(0, num, 1, start.dtype)
    y = xnp.where(xnp.equal(step, 0), xnp.multiply(xnp.divide(i, div), delta), xnp.multiply(i, step))
    return xnp.concatenate([xnp.add(y, start)[:num - 1], xnp.reshape(stop, (1,))])


def _given_range(rng, name):
    """numpy's _get_outer_edges for a given range (or none: (0, 1)): checked, widened by 0.5 when empty."""
    first, last = (0, 1) if rng is None else (_concrete(v, f"{name}: range") for v in rng)
    if first > last:
        raise XCSValueError("max must be larger than min in range parameter.")
    if not (_np.isfinite(first) and _np.isfinite(last)):
        raise XCSValueError(f"supplied range of [{first}, {last}] is not finite")
    if first == last:
        first, last = first - 0.5, last + 0.5
    return first, last


def _bin_edges(a, bins, range):  # noqa: A002  (numpy's name)
    """numpy's _get_bin_edges: the edges, from int bins (and range or the data's min and max) or given."""
    if isinstance(bins, str):
        raise xnp._Unsupported("histogram: bin estimators ('auto', 'fd', ...) are not supported")
    nd = bins.ndim if isinstance(bins, Array) else _np.ndim(bins)
    if nd == 1:
        edges = xnp.asarray(bins)
        if _known(xnp.greater(edges[:-1], edges[1:])):
            raise XCSValueError("`bins` must increase monotonically, when an array")
        return edges
    if nd != 0:
        raise XCSValueError("`bins` must be 1d, when an array")
    try:
        nb = _operator.index(_concrete(bins, "histogram: bins"))
    except TypeError as e:
        raise XCSTypeError("`bins` must be an integer, a string, or an array") from e
    if nb < 1:
        raise XCSValueError("`bins` must be positive, when an integer")
    if range is None and a.size:
        ft = a.dtype if _floating(a) else _np.dtype(_np.float64)
        first, last = xnp.astype(xnp.min(a), ft), xnp.astype(xnp.max(a), ft)
        if _known(xnp.logical_not(xnp.logical_and(xnp.isfinite(first), xnp.isfinite(last)))):
            raise XCSValueError(f"autodetected range of [{first.item()}, {last.item()}] is not finite")
        eq = xnp.equal(first, last)
        return _linspace(xnp.where(eq, xnp.subtract(first, 0.5), first), xnp.where(eq, xnp.add(last, 0.5), last),
                         nb + 1)
    first, last = _given_range(range, "histogram")
    bt = _np.result_type(first, last, a.dtype)
    if bt.kind in "biu":
        bt = _np.result_type(bt, float)
    return xnp.asarray(_np.linspace(first, last, nb + 1, endpoint=True, dtype=bt))


def _bin_index(a, edges, uniform):
    """Each value's bin (edges[i] <= x < edges[i+1], the last bin closed), nb = len(edges) - 1 for the
    values outside (and NaN).  Uniform bins: numpy's own arithmetic, (x - first) / (last - first) * nb in
    the edges' dtype, then its one-step corrections against the edges; else a binary search."""
    nb = edges.shape[0] - 1
    first, last = edges[0], edges[nb]
    if uniform:
        x = xnp.astype(a, edges.dtype, copy=False)
        ok = xnp.logical_and(xnp.greater_equal(x, first), xnp.less_equal(x, last))
        f = xnp.multiply(xnp.divide(xnp.subtract(x, first), xnp.subtract(last, first)), nb)
        i = xnp.astype(xnp.where(ok, f, 0), xnp.int64)
        i = xnp.where(xnp.equal(i, nb), nb - 1, i)
        i = xnp.where(xnp.less(x, xnp.take(edges, i)), xnp.subtract(i, 1), i)
        up = xnp.logical_and(xnp.greater_equal(x, xnp.take(edges, xnp.add(i, 1))), xnp.not_equal(i, nb - 1))
        i = xnp.where(up, xnp.add(i, 1), i)
    else:
        ok = xnp.logical_and(xnp.greater_equal(a, first), xnp.less_equal(a, last))
        i = xnp.subtract(_search(edges, a, True), 1)
        i = xnp.where(xnp.equal(a, last), nb - 1, i)
    return xnp.where(ok, i, nb)


def histogram(a, bins=10, range=None, density=None, weights=None):  # noqa: A002  (numpy's name)
    """numpy.histogram (int bins or 1-D edges; no estimator strings): bin i counts edges[i] <= x < edges[i+1],
    the last bin also x == edges[-1].  Each value's bin is found as numpy finds it (for int bins its
    arithmetic and corrections, else a binary search of the edges) and the counts (or the weights, in
    float64) are one scatter-add in the values' order, as numpy's bincount (numpy sums weights in blocks
    of 65536 values, and for given edges by cumulative sums: the last bits can differ there).  A
    non-finite autodetected range raises on concrete data; traced, the edges are NaN and the counts
    meaningless."""
    a, w = _hist_input(a, weights)
    edges = _bin_edges(a, bins, range)
    nb = edges.shape[0] - 1
    uniform = (bins.ndim if isinstance(bins, Array) else _np.ndim(bins)) == 0
    idx = _bin_index(a, edges, uniform)
    if w is None:
        one = xnp.broadcast_to(xnp.asarray(1, xnp.int64), idx.shape)  # (not a constant of len(a) ones)
        n = _xcs._scatter_add(idx, one, 0, nb + 1)[:nb]
    else:
        n = xnp.astype(_xcs._scatter_add(idx, xnp.astype(w, xnp.float64), 0, nb + 1)[:nb], w.dtype)
    if density:
        return xnp.divide(xnp.divide(n, xnp.astype(xnp.diff(edges), xnp.float64)), xnp.sum(n)), edges
    return n, edges


def _dd_edges(x, bins, rng, i):
    """histogramdd's edges of dimension i: bins[i] + 1 evenly from the range (or the data's min and max,
    0.5 either side of a single value) in numpy's linspace dtype, or the given 1-D edges."""
    nd = bins.ndim if isinstance(bins, Array) else _np.ndim(bins)
    if nd == 1:
        edges = xnp.asarray(bins)
        if _known(xnp.greater(edges[:-1], edges[1:])):
            raise XCSValueError(f"`bins[{i}]` must be monotonically increasing, when an array")
        return edges
    if nd != 0:
        raise XCSValueError(f"`bins[{i}]` must be a scalar or 1d array")
    b = _concrete(bins, "histogramdd: bins")
    if b < 1:
        raise XCSValueError(f"`bins[{i}]` must be positive, when an integer")
    try:
        n = _operator.index(b)
    except TypeError as e:
        raise XCSTypeError(f"`bins[{i}]` must be an integer, when a scalar") from e
    if rng is not None or x.shape[0] == 0:
        return xnp.asarray(_np.linspace(*_given_range(rng, "histogramdd"), n + 1))
    ft = x.dtype if _floating(x) else _np.dtype(_np.float64)
    first, last = xnp.astype(xnp.min(x), ft), xnp.astype(xnp.max(x), ft)
    if _known(xnp.logical_not(xnp.logical_and(xnp.isfinite(first), xnp.isfinite(last)))):
        raise XCSValueError(f"autodetected range of [{first.item()}, {last.item()}] is not finite")
    eq = xnp.equal(first, last)
    return _linspace(xnp.where(eq, xnp.subtract(first, 0.5), first), xnp.where(eq, xnp.add(last, 0.5), last), n + 1)


def histogramdd(sample, bins=10, range=None, density=None, weights=None):  # noqa: A002  (numpy's name)
    """numpy.histogramdd of an (N, D) sample (or D arrays of N): per dimension int bins or 1-D edges
    (a value on the last edge counts in the last bin), each point added at its bin (outliers and NaNs
    dropped) by one scatter in the points' order, as numpy's bincount; float64 counts, density as
    numpy's.  A non-finite autodetected range raises on concrete data only."""
    if isinstance(sample, (Array, _np.ndarray)) or (not isinstance(sample, (list, tuple))):
        s = xnp.asarray(sample)
        s = xnp.reshape(s, (-1, 1)) if s.ndim == 1 else s
    else:
        s = xnp.stack([xnp.asarray(v) for v in sample], axis=1)
    if s.ndim != 2:
        raise XCSValueError("histogramdd: the sample must be (N, D) or a sequence of D arrays of N values")
    N, D = s.shape
    per_dim = isinstance(bins, (list, tuple)) or (_np.ndim(bins) if not isinstance(bins, Array) else bins.ndim) > 0
    bins_l = [bins[i] for i in _builtins.range(len(bins))] if per_dim else [bins] * D
    if len(bins_l) != D:
        raise XCSValueError("The dimension of bins must be equal to the dimension of the sample x.")
    if range is not None and len(range) != D:
        raise XCSValueError("range argument must have one entry per dimension")
    edges, flat, nbin = [], None, []
    for i in _builtins.range(D):
        x = s[:, i]
        e = _dd_edges(x, bins_l[i], None if range is None else range[i], i)
        k = e.shape[0] + 1  # an outlier slot at each end
        idx = _search(e, x, True)  # numpy's searchsorted(side='right')
        idx = xnp.where(xnp.equal(x, e[k - 2]), xnp.subtract(idx, 1), idx)  # on the last edge: the last bin
        flat = idx if flat is None else xnp.add(xnp.multiply(flat, k), idx)
        edges.append(e)
        nbin.append(k)
    w = (xnp.broadcast_to(xnp.asarray(1.0, xnp.float64), (N,)) if weights is None
         else xnp.astype(xnp.asarray(weights), xnp.float64))
    if w.shape != (N,):
        raise XCSValueError("histogramdd: weights must hold one value per sample point")
    total = int(_np.prod(nbin))
    if flat is None:
        flat = xnp.zeros((N,), xnp.int64)
    hist = xnp.reshape(_xcs._scatter_add(flat, w, 0, total), tuple(nbin))[(slice(1, -1),) * D]
    if density:
        tot = xnp.sum(hist)
        for i in _builtins.range(D):
            shape = [1] * D
            shape[i] = nbin[i] - 2
            hist = xnp.divide(hist, xnp.reshape(xnp.diff(edges[i]), tuple(shape)))
        hist = xnp.divide(hist, tot)
    return hist, edges


def histogram2d(x, y, bins=10, range=None, density=None, weights=None):  # noqa: A002  (numpy's name)
    """numpy.histogram2d: histogramdd of the points (x, y); bins an int, two ints, edges, or two edges."""
    try:
        n = len(bins)
    except TypeError:
        n = 1
    if n not in (1, 2):  # one array of edges for both
        bins = [xnp.asarray(bins), xnp.asarray(bins)]
    hist, edges = histogramdd([x, y], bins, range, density, weights)
    return hist, edges[0], edges[1]


def histogram_bin_edges(a, bins=10, range=None, weights=None):  # noqa: A002  (numpy's name)
    """The edges numpy.histogram would use (int bins or 1-D edges; no estimator strings)."""
    a, _ = _hist_input(a, weights)
    return _bin_edges(a, bins, range)


def bincount(x, /, weights=None, minlength=0):
    """numpy.bincount for a known (untraced) x: the result's length, max(x) + 1 or minlength, depends on
    x's values.  weights may be traced (grad flows to them); they are summed per bin in float64."""
    if isinstance(x, Array) and _xcs._is_traced(x):
        raise xnp._Unsupported("bincount: x must be known when tracing (the result's length depends on its values)")
    xv = _np.asarray(x)
    if xv.size == 0 and xv.dtype.kind == "f":  # numpy takes an empty list
        xv = xv.astype(_np.int64)
    counts = _np.bincount(xv, minlength=minlength)
    if weights is None:
        return xnp.asarray(counts)
    w = xnp.astype(xnp.asarray(weights), xnp.float64)
    if w.shape != xv.shape:
        raise XCSValueError("The weights and list don't have the same length.")
    return _xcs._scatter_add(xv.astype(_np.int64), w, 0, counts.size)  # added in order, as numpy's


# ---------------------------------------------------------------- partial sorts, lexsort


def _check_kth(a, kth, axis):
    if isinstance(kth, Array) and _xcs._is_traced(kth):
        return  # the result does not depend on it
    n = a.size if axis is None else a.shape[xnp._axis(axis, a.ndim, "partition")]
    kv = _np.asarray(kth)
    if kv.dtype.kind not in "iu":
        raise XCSTypeError("Partition index must be integer")
    if n == 0:  # numpy checks no kth against an empty axis
        return
    for k in _np.ravel(kv):
        if not -n <= k < n:
            raise XCSValueError(f"kth(={k}) out of bounds ({n})")


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """numpy.partition's contract (element kth in its sorted place, none larger before it, none smaller
    after) met by a full stable sort: the other elements' arrangement can differ from numpy's (unspecified)."""
    if order is not None or kind != "introselect":
        raise xnp._Unsupported(f"partition: order= and kind={kind!r} are not supported")
    a = xnp.asarray(a)
    _check_kth(a, kth, axis)
    return xnp.sort(a, axis)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """numpy.argpartition's contract met by a stable argsort (see partition): int64 indices."""
    if order is not None or kind != "introselect":
        raise xnp._Unsupported(f"argpartition: order= and kind={kind!r} are not supported")
    a = xnp.asarray(a)
    _check_kth(a, kth, axis)
    return xnp.argsort(a, axis)


def lexsort(keys, axis=-1):
    """Indices sorting by the last key, ties broken by the one before, ...: stable argsorts from the first
    key to the last, each of the previous order's keys."""
    if isinstance(keys, (Array, _np.ndarray)):
        if keys.ndim < 2:
            raise xnp._Unsupported("lexsort: a 1-D array of keys")
        keys = [keys[i] for i in _builtins.range(keys.shape[0])]
    keys = [xnp.asarray(k) for k in keys]
    if not keys:
        raise XCSTypeError("need sequence of keys with len > 0 in lexsort")
    if _builtins.any(k.shape != keys[0].shape for k in keys):
        raise XCSValueError("all keys need to be the same shape")
    axis = _operator.index(axis)  # numpy: no axis=None
    idx = xnp.argsort(keys[0], axis)
    for k in keys[1:]:
        idx = xnp.take_along_axis(idx, xnp.argsort(xnp.take_along_axis(k, idx, axis), axis), axis)
    return idx


# ---------------------------------------------------------------- whole-array comparisons


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """all(isclose(a, b)), as a 0-d bool Array (numpy returns a Python bool; a traced one cannot be)."""
    return xnp.all(xnp.isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1, a2, equal_nan=False):
    """Same shape and elements (NaNs equal with equal_nan), as a 0-d bool Array (numpy: a Python bool)."""
    a1, a2 = xnp.asarray(a1), xnp.asarray(a2)
    if a1.shape != a2.shape:
        return xnp.full((), False, xnp.bool_)
    eq = xnp.equal(a1, a2)
    if equal_nan:
        eq = xnp.logical_or(eq, xnp.logical_and(xnp.isnan(a1), xnp.isnan(a2)))
    return xnp.all(eq)


def array_equiv(a1, a2):
    """Shapes broadcastable and all elements equal, as a 0-d bool Array (numpy: a Python bool)."""
    a1, a2 = xnp.asarray(a1), xnp.asarray(a2)
    try:
        _np.broadcast_shapes(a1.shape, a2.shape)
    except ValueError:
        return xnp.full((), False, xnp.bool_)
    return xnp.all(xnp.equal(a1, a2))
