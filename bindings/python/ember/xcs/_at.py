"""``Array.at[key]``: functional index updates (xcs Arrays are immutable), as
JAX's: ``x.at[key].set(v)``, ``.add``, ``.subtract``, ``.multiply``,
``.divide``, ``.power``, ``.min``, ``.max``, ``.apply(f)`` and ``.get()``
return a new Array, the updated elements changed and the others as in x.
They trace like any op, so jit / grad / vmap see through them.

key is anything ``x[key]`` takes (ints, slices, None, Ellipsis, integer
arrays, traced ones included, and boolean masks whose values are known).
The indexed elements are found as the flat positions ``arange(x.size)``
takes under key, and v is broadcast to ``x[key].shape`` (numpy's rule for
``x[key] = v``).  set casts v to x's dtype (numpy's ``x[key] = v``); the
other updates are computed in numpy's ufunc.at dtype (x's and v's common
one, Python numbers weak) and cast back to x's dtype, so an int x
multiplied by 2.5 becomes int(x * 2.5), as numpy's.  Where an element is
indexed more than once, add, subtract, multiply, min and max combine every
update (JAX's rule); set keeps the last one in key's order; divide
applies the combined divisor as one.  Where that would differ from numpy's
one-update-at-a-time result beyond rounding (float updates of an int x,
whose every step numpy truncates; power, as (x**a)**b), repeated positions
that are known (not traced) are updated in rounds, one per repeat, exactly
as numpy's ufunc.at.  Indices out of bounds raise XCSIndexError (numpy's
rule; JAX drops such updates).

Updates at distinct positions are one scatter of the new values; repeated
positions are grouped by a stable sort of the positions and combined by a
segmented scan (log2(n) doubling steps), then scattered."""

import numpy as _np

from ember.xcs import _np_shape, _xcs
from ember.xcs import numpy as xnp  # attributes read at call time: xnp is still loading here

__all__ = []


def _positions(x, key):
    """The flat positions (int64) of x's elements that x[key] reads, in x[key]'s shape."""
    grid = xnp.reshape(xnp.arange(0, int(_np.prod(x.shape, dtype=_np.int64)), 1, xnp.int64), x.shape)
    return xnp.asarray(grid[key])


def _segmented_scan(vals, starts, op):
    """Inclusive scan of vals (1-D) with op, restarting where starts is True (doubling steps)."""
    n, step = vals.shape[0], 1
    while step < n:
        prev_v = xnp.concatenate([vals[:step], vals[:n - step]])
        prev_f = xnp.concatenate([xnp.ones((step,), xnp.bool_), starts[:n - step]])
        keep = xnp.concatenate([xnp.ones((step,), xnp.bool_), xnp.zeros((n - step,), xnp.bool_)])
        vals = xnp.where(xnp.logical_or(starts, keep), vals, op(prev_v, vals))
        starts = xnp.logical_or(starts, xnp.logical_and(prev_f, xnp.logical_not(keep)))
        step *= 2
    return vals


def _options(kw, name):
    """JAX's keyword hints: indices_are_sorted / unique_indices (ignored: xcs finds repeats itself) and
    mode None or 'promise_in_bounds'; other modes ('clip', 'drop', 'fill') are refused, as out-of-bounds
    indices raise here."""
    for k, v in kw.items():
        if k == "mode" and v not in (None, "promise_in_bounds"):
            raise _xcs.XCSValueError(f"at[...].{name}: mode={v!r} is not supported (out-of-bounds indices raise "
                                     "XCSIndexError, numpy's rule)")
        if k not in ("indices_are_sorted", "unique_indices", "mode"):
            raise TypeError(f"at[...].{name}() got an unexpected keyword argument {k!r}")


def _update_dtype(dt, v, kind):
    """The dtype an update v of an x of dtype dt is computed in: set casts v to dt (numpy's
    x[key] = v); the others combine in the dtype numpy's ufunc.at loop uses (x's and v's common
    dtype, Python numbers weak), whose result is then cast back to dt."""
    if kind == "set":
        return dt
    return _np.result_type(dt, xnp._promotion_key(v))


def _occurrences(known):
    """Per update (flat positions known, in key order), how many earlier updates hit its position."""
    order = _np.argsort(known, kind="stable")
    s = known[order]
    first = _np.concatenate([[True], s[1:] != s[:-1]])
    start = _np.maximum.accumulate(_np.where(first, _np.arange(s.size), 0))
    rank = _np.empty(s.size, _np.int64)
    rank[order] = _np.arange(s.size) - start
    return rank


def _scatter_unique(flat, ps, new, size):
    """flat with new written at the distinct positions ps."""
    dt = flat.dtype
    scattered = _xcs._scatter_add(ps, xnp.astype(new, dt, copy=False), 0, size)
    hit = xnp.greater(_xcs._scatter_add(ps, xnp.ones(ps.shape, xnp.int32), 0, size), 0)
    return xnp.where(hit, scattered, flat)


def _update(x, key, v, kind, combine, fold):
    """x with the elements at key updated by v.  combine(old, c): an element's new value from its old
    one and its combined update c (None for set); fold: how repeated updates combine (op or 'last')."""
    x = xnp.asarray(x)
    pos = _positions(x, key)
    dt = x.dtype
    udt = _update_dtype(dt, v, kind)
    # a Python int that udt cannot hold raises (numpy's OverflowError) rather than wrapping
    v = xnp.asarray(v, dtype=udt) if type(v) is int else xnp.astype(xnp.asarray(v), udt, copy=False)
    v = xnp.broadcast_to(v, pos.shape)
    p, vals = xnp.ravel(pos), xnp.ravel(v)
    size = int(_np.prod(x.shape, dtype=_np.int64))
    n = p.shape[0]
    flat = xnp.ravel(x)
    if n == 0:
        return x
    known = _np_shape._concrete(p)
    unique = known is not None and _np.unique(known).size == known.size
    if kind == "add" and combine is None:
        if udt == dt:  # every update summed: one scatter
            return xnp.reshape(xnp.add(flat, _xcs._scatter_add(p, vals, 0, size)), x.shape)
        combine = xnp.add  # a float update of an int x: added in float, the sum cast back
    if known is not None and not unique and kind != "set" and (
            (xnp._floating(udt) and not xnp._floating(dt)) or (kind == "power" and xnp._floating(udt))):
        # numpy's ufunc.at updates one element at a time, casting each result back to x's dtype:
        # which no combined update reproduces (int truncation, (x**a)**b), so one round per repeat
        rank = _occurrences(known)
        for r in range(int(rank.max()) + 1):
            sel = _np.nonzero(rank == r)[0]
            ps = xnp.asarray(known[sel])
            flat = _scatter_unique(flat, ps, combine(xnp.take(flat, ps), xnp.take(vals, xnp.asarray(sel))), size)
        return xnp.reshape(flat, x.shape)
    if unique:
        ps, last = p, xnp.ones((n,), xnp.bool_)
    else:
        order = xnp.argsort(p, kind="stable")
        ps, vals = xnp.take(p, order), xnp.take(vals, order)
        diff = xnp.not_equal(ps[1:], ps[:-1])
        last = xnp.concatenate([diff, xnp.ones((1,), xnp.bool_)])
        if fold != "last":
            vals = _segmented_scan(vals, xnp.concatenate([xnp.ones((1,), xnp.bool_), diff]), fold)
    new = vals if combine is None else combine(xnp.take(flat, ps), vals)
    new = xnp.astype(new, dt, copy=False)
    zero = xnp.zeros((), dt)
    scattered = _xcs._scatter_add(ps, xnp.where(last, new, zero), 0, size)
    hit = xnp.greater(_xcs._scatter_add(ps, xnp.astype(last, xnp.int32), 0, size), 0)
    return xnp.reshape(xnp.where(hit, scattered, flat), x.shape)


class _Ref:
    """x.at[key]: the update methods (see the module docstring)."""

    __slots__ = ("_x", "_key")

    def __init__(self, x, key):
        self._x, self._key = x, key

    def get(self, **kw):
        """x[key]."""
        _options(kw, "get")
        return self._x[self._key]

    def set(self, values, **kw):
        """x with x[key] replaced by values (broadcast); the last of repeated indices wins."""
        _options(kw, "set")
        return _update(self._x, self._key, values, "set", None, "last")

    def add(self, values, **kw):
        """x with values added at key (repeated indices: every one added)."""
        _options(kw, "add")
        return _update(self._x, self._key, values, "add", None, xnp.add)

    def subtract(self, values, **kw):
        """x with values subtracted at key (repeated indices: every one subtracted)."""
        _options(kw, "subtract")
        neg = -values if type(values) in (int, float) else xnp.negative(xnp.asarray(values))  # Python numbers stay weak
        return _update(self._x, self._key, neg, "add", None, xnp.add)

    def multiply(self, values, **kw):
        """x multiplied by values at key (repeated indices: by their product)."""
        _options(kw, "multiply")
        return _update(self._x, self._key, values, "mul", xnp.multiply, xnp.multiply)

    mul = multiply

    def divide(self, values, **kw):
        """x divided by values at key (repeated indices: by their product)."""
        _options(kw, "divide")
        return _update(self._x, self._key, values, "div", xnp.divide, xnp.multiply)

    def power(self, values, **kw):
        """x raised to values at key (repeated indices: to their product, (x^a)^b)."""
        _options(kw, "power")
        return _update(self._x, self._key, values, "power", xnp.power, xnp.multiply)

    def min(self, values, **kw):
        """The minimum of x and values at key (repeated indices: of all of them); NaN propagates."""
        _options(kw, "min")
        return _update(self._x, self._key, values, "min", xnp.minimum, xnp.minimum)

    def max(self, values, **kw):
        """The maximum of x and values at key (repeated indices: of all of them); NaN propagates."""
        _options(kw, "max")
        return _update(self._x, self._key, values, "max", xnp.maximum, xnp.maximum)

    def apply(self, func, **kw):
        """x with func (elementwise) applied to the elements at key: a set of func(x[key]), so a
        repeated index gets func of its old value once."""
        _options(kw, "apply")
        return _update(self._x, self._key, func(self._x[self._key]), "set", None, "last")


class _At:
    """x.at: index it (x.at[key]) for the updates."""

    __slots__ = ("_x",)

    def __init__(self, x):
        self._x = x

    def __getitem__(self, key):
        return _Ref(self._x, key)

    def __repr__(self):
        return f"_At({self._x!r})"


def at(x):
    """x.at (Array.at's implementation)."""
    return _At(x)
