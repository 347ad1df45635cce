"""numpy's stacking, splitting, rearranging and product functions, composed
of ember.xcs.numpy's (so they work eagerly and under jit / grad / vmap alike).

Re-exported by ember.xcs.numpy; ``NUMPY_FUNCTIONS`` names the numpy functions
that dispatch here from ``Array`` arguments (ember.xcs._dispatch), dotted for
numpy submodules; ``LINALG`` holds the numpy.linalg ones.

Shapes, dtypes and index arguments (insert / delete positions, split points)
are static: they are read when the function is traced.  Values are not: where
numpy checks index values (unravel_index, ravel_multi_index and choose in
mode 'raise'), the check is made on concrete arrays only; under jit the
indices are used as they are (see each function)."""

import math as _math
import operator as _operator
import warnings as _warnings

import numpy as _np

from ember.xcs import _xcs
from ember.xcs import numpy as xnp  # attributes read at call time: xnp is still loading here
from ember.xcs._xcs import Array, XCSTypeError, XCSValueError

__all__ = [
    "append", "array_split", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_arrays", "choose", "column_stack",
    "convolve", "correlate", "cross", "delete", "dsplit", "dstack", "hsplit", "hstack", "inner", "insert", "kron",
    "meshgrid", "polyval", "ravel_multi_index", "resize", "rot90", "row_stack", "select", "tensordot", "trapezoid",
    "trapz", "unravel_index", "vdot", "vsplit", "vstack", "block", "unstack", "rollaxis", "diagflat", "compress",
    "ediff1d", "vander", "gradient", "unwrap", "polyfit", "piecewise", "apply_along_axis",
]


# ---------------------------------------------------------------- helpers


def _bshape(*shapes):
    """The broadcast of shapes (XCSValueError when they do not broadcast)."""
    try:
        return _np.broadcast_shapes(*shapes)
    except ValueError as e:
        raise XCSValueError(str(e)) from None


def _concrete(x):
    """x as a numpy array when its values are known now (not traced), else None."""
    return None if isinstance(x, Array) and _xcs._is_traced(x) else _np.asarray(x)


def _weak(v):
    """v for numpy.result_type: Python scalars stay weak (NEP 50), the rest give their dtype."""
    return v if type(v) in (int, float, complex) else xnp.asarray(v).dtype


def _int_indices(x, name):
    """x as an int64 Array, for integer or bool x (numpy: 'only int indices permitted')."""
    x = xnp.asarray(x)
    if x.dtype.kind not in "biu":
        raise XCSTypeError(f"{name}: only int indices permitted, got {x.dtype}")
    return xnp.astype(x, xnp.int64, copy=False)


def _index_mode(idx, n, mode, message):
    """Integer indices into n under numpy's mode: 'wrap' (mod n), 'clip' (to [0, n)), or 'raise':
    as they are, checked against [0, n) where their values are known (not under jit)."""
    if mode == "wrap":
        return xnp.mod(idx, n)
    if mode == "clip":
        return xnp.clip(idx, 0, n - 1)
    v = _concrete(idx)
    if v is not None and v.size and (v.min() < 0 or v.max() >= n):
        raise XCSValueError(message)
    return idx


def _along(a, axis, key):
    """a[..., key, ...] with key at axis."""
    k = [slice(None)] * a.ndim
    k[axis] = key
    return a[tuple(k)]


# ---------------------------------------------------------------- at least n-D, stacking


def _at1(a):
    a = xnp.asarray(a)
    return xnp.reshape(a, (1,)) if a.ndim == 0 else a


def _at2(a):
    a = xnp.asarray(a)
    return xnp.reshape(a, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else a


def _at3(a):
    a = xnp.asarray(a)
    if a.ndim == 0:
        return xnp.reshape(a, (1, 1, 1))
    if a.ndim == 1:
        return xnp.reshape(a, (1, a.shape[0], 1))
    return xnp.reshape(a, a.shape + (1,)) if a.ndim == 2 else a


def _each(fn, arys):
    return fn(arys[0]) if len(arys) == 1 else tuple(fn(a) for a in arys)


def atleast_1d(*arys):
    """Each input with at least one dimension (0-d -> (1,)); one array, or a tuple of them."""
    return _each(_at1, arys)


def atleast_2d(*arys):
    """Each input with at least two dimensions (leading axes of size 1 added)."""
    return _each(_at2, arys)


def atleast_3d(*arys):
    """Each input with at least three dimensions: (N,) -> (1, N, 1), (M, N) -> (M, N, 1)."""
    return _each(_at3, arys)


_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def _join(arrays, axis, dtype=None, casting="same_kind"):
    """concatenate, each input cast to dtype first, numpy's casting rule checked."""
    if casting not in _CASTINGS:
        raise XCSValueError("casting must be one of 'no', 'equiv', 'safe', 'same_kind', or 'unsafe'")
    if arrays and (dtype is not None or casting in ("no", "equiv")):
        dt = _np.dtype(dtype) if dtype is not None else _np.result_type(*(a.dtype for a in arrays))
        for a in arrays:
            if not _np.can_cast(a.dtype, dt, casting):
                raise XCSTypeError(f"Cannot cast array data from {a.dtype!r} to {dt!r} according to the rule "
                                   f"{casting!r}")
        arrays = [xnp.astype(a, dt, copy=False) for a in arrays]
    return xnp.concatenate(arrays, axis=axis)


def vstack(tup, *, dtype=None, casting="same_kind"):
    """Stacks arrays row-wise: concatenate of atleast_2d along axis 0."""
    return _join([_at2(a) for a in tup], 0, dtype, casting)


row_stack = vstack  # numpy's deprecated alias (it calls vstack, dispatched here)


def hstack(tup, *, dtype=None, casting="same_kind"):
    """Stacks arrays column-wise: along axis 0 for 1-D inputs, else axis 1."""
    arrs = [_at1(a) for a in tup]
    return _join(arrs, 0 if arrs and arrs[0].ndim == 1 else 1, dtype, casting)


def dstack(tup):
    """Stacks arrays depth-wise: concatenate of atleast_3d along axis 2."""
    return _join([_at3(a) for a in tup], 2)


def column_stack(tup):
    """Stacks 1-D arrays as columns (2-D and higher inputs join along axis 1 as they are)."""
    arrs = []
    for v in tup:
        v = xnp.asarray(v)
        arrs.append(xnp.reshape(v, (-1, 1)) if v.ndim < 2 else v)
    return _join(arrs, 1)


# ---------------------------------------------------------------- splitting


def array_split(ary, indices_or_sections, axis=0):
    """Splits into N nearly equal sections (the first ones one longer) or at static indices; a list of views."""
    ary = xnp.asarray(ary)
    ax = xnp._axis(axis, ary.ndim, "array_split")
    n = ary.shape[ax]
    if isinstance(indices_or_sections, Array):
        raise xnp._Unsupported("array_split: the split points must be static (an int or a list of ints)")
    try:
        points = [0] + [int(i) for i in indices_or_sections] + [n]
    except TypeError:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise XCSValueError("number sections must be larger than 0.") from None
        each, extras = divmod(n, sections)
        points = [0] + list(_np.cumsum([each + 1] * extras + [each] * (sections - extras)))
    return [_along(ary, ax, slice(int(points[i]), int(points[i + 1]))) for i in range(len(points) - 1)]


def _split(ary, indices_or_sections, axis):
    """numpy.split: array_split, an int number of sections having to divide the axis."""
    ios = indices_or_sections
    if not _np.iterable(ios) and not isinstance(ios, Array) and ary.shape[axis] % int(ios):
        raise XCSValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    """split along axis 1 (axis 0 for 1-D arrays)."""
    ary = xnp.asarray(ary)
    if ary.ndim == 0:
        raise XCSValueError("hsplit only works on arrays of 1 or more dimensions")
    return _split(ary, indices_or_sections, 1 if ary.ndim > 1 else 0)


def vsplit(ary, indices_or_sections):
    """split along axis 0 (arrays of 2 or more dimensions)."""
    ary = xnp.asarray(ary)
    if ary.ndim < 2:
        raise XCSValueError("vsplit only works on arrays of 2 or more dimensions")
    return _split(ary, indices_or_sections, 0)


def dsplit(ary, indices_or_sections):
    """split along axis 2 (arrays of 3 or more dimensions)."""
    ary = xnp.asarray(ary)
    if ary.ndim < 3:
        raise XCSValueError("dsplit only works on arrays of 3 or more dimensions")
    return _split(ary, indices_or_sections, 2)


# ---------------------------------------------------------------- rearranging


def rot90(m, k=1, axes=(0, 1)):
    """m rotated by 90 degrees k times in the plane of axes (from the first axis towards the second); a view."""
    axes = tuple(axes)
    if len(axes) != 2:
        raise XCSValueError("len(axes) must be 2.")
    m = xnp.asarray(m)
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise XCSValueError("Axes must be different.")
    i, j = (xnp._axis(v, m.ndim, "rot90") for v in axes)
    k %= 4
    if k == 0:
        return m[...]
    if k == 2:
        return xnp.flip(xnp.flip(m, i), j)
    perm = list(range(m.ndim))
    perm[i], perm[j] = perm[j], perm[i]
    return xnp.transpose(xnp.flip(m, j), perm) if k == 1 else xnp.flip(xnp.transpose(m, perm), j)


def broadcast_arrays(*args):
    """The arrays broadcast against each other (read-only views), as a tuple."""
    arrs = [xnp.asarray(a) for a in args]
    shape = _bshape(*(a.shape for a in arrs))
    return tuple(xnp.broadcast_to(a, shape) for a in arrs)


def append(arr, values, axis=None):
    """arr with values joined at the end along axis (both flattened when axis is None)."""
    arr, values = xnp.asarray(arr), xnp.asarray(values)
    if axis is None:
        return xnp.concatenate([xnp.ravel(arr), xnp.ravel(values)], axis=0)
    return xnp.concatenate([arr, values], axis=axis)


def insert(arr, obj, values, axis=None):
    """values inserted before the static index / indices / slice obj along axis (flattened when None),
    cast to arr's dtype as numpy does: a gather from arr joined with the broadcast values."""
    arr = xnp.asarray(arr)
    if axis is None:
        arr, axis = xnp.ravel(arr), 0
    ax = xnp._axis(axis, arr.ndim, "insert")
    if isinstance(obj, Array):
        raise xnp._Unsupported("insert: obj must be static (an int, a slice or a list of ints)")
    n = arr.shape[ax]
    ind = _np.arange(*obj.indices(n)) if isinstance(obj, slice) else _np.asarray(obj)
    if ind.ndim > 1:
        raise XCSValueError("index array argument obj to insert must be one dimensional or scalar")
    vals = xnp.astype(xnp.asarray(values), arr.dtype, copy=False)
    if ind.size == 1:  # one position: a block of values (numpy: values made arr.ndim-D, the first axis to axis)
        vals = xnp.reshape(vals, (1,) * (arr.ndim - vals.ndim) + vals.shape)
        if ind.ndim == 0:
            vals = xnp.moveaxis(vals, 0, ax)
        numnew = vals.shape[ax]
    else:
        numnew = ind.size
    slot = arr.shape[:ax] + (numnew,) + arr.shape[ax + 1:]
    while vals.ndim > len(slot) and vals.shape[0] == 1:
        vals = vals[0]
    vals = xnp.broadcast_to(vals, slot)
    perm = xnp._numpy_rule("insert", _np.insert, _np.arange(n), obj, n + _np.arange(numnew))  # numpy's placement
    return xnp.take(xnp.concatenate([arr, vals], axis=ax), perm, axis=ax)


def delete(arr, obj, axis=None):
    """arr without the static index / indices / slice / boolean mask obj along axis (flattened when None)."""
    arr = xnp.asarray(arr)
    if axis is None:
        arr, axis = xnp.ravel(arr), 0
    ax = xnp._axis(axis, arr.ndim, "delete")
    if isinstance(obj, Array):
        raise xnp._Unsupported("delete: obj must be static (an int, a slice, a list of ints or a boolean mask)")
    keep = xnp._numpy_rule("delete", _np.delete, _np.arange(arr.shape[ax]), obj)  # numpy's own rules and errors
    return xnp.take(arr, keep, axis=ax)


def resize(a, new_shape):
    """a flattened, repeated to fill new_shape and reshaped (zeros when a or the new shape is empty)."""
    shape = (new_shape,) if isinstance(new_shape, (int, _np.integer)) else tuple(int(d) for d in new_shape)
    if any(d < 0 for d in shape):
        raise XCSValueError("all elements of `new_shape` must be non-negative")
    a = xnp.ravel(xnp.asarray(a))
    size = _math.prod(shape)
    if a.shape[0] == 0 or size == 0:
        return xnp.zeros(shape, a.dtype)
    return xnp.reshape(xnp.take(a, _np.arange(size) % a.shape[0]), shape)


# ---------------------------------------------------------------- index arithmetic


def _dims(shape):
    return tuple(int(d) for d in shape) if _np.iterable(shape) else (int(shape),)


def _order(order):
    if order not in ("C", "F"):
        raise XCSValueError("only 'C' or 'F' order is permitted")
    return order


def unravel_index(indices, shape, order="C"):
    """The coordinate arrays (int64) of flat indices into shape.  numpy's bounds check is made
    when indices are concrete; under jit an out-of-range index gives an out-of-range first
    (C order; last for F) coordinate."""
    dims, order = _dims(shape), _order(order)
    idx = _int_indices(indices, "unravel_index")
    size = _math.prod(dims)
    c = _concrete(idx)
    if c is not None and c.size and (c.min() < 0 or c.max() >= size):
        bad = c[(c < 0) | (c >= size)].flat[0]
        raise XCSValueError(f"index {bad} is out of bounds for array with size {size}")
    out = [None] * len(dims)
    axes = list(range(len(dims)))[::-1] if order == "C" else list(range(len(dims)))
    for n, d in enumerate(axes):
        if n == len(axes) - 1:
            out[d] = idx
        else:
            out[d], idx = xnp.mod(idx, dims[d]), xnp.floor_divide(idx, dims[d])
    return tuple(out)


def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """Flat indices (int64) of coordinate arrays into dims; mode 'raise' (checked when the
    coordinates are concrete; under jit they are used as they are), 'wrap' or 'clip', or one per axis."""
    dims, order = _dims(dims), _order(order)
    coords = list(multi_index)
    if len(coords) != len(dims):
        raise XCSValueError(f"parameter multi_index must be a sequence of length {len(dims)}")
    modes = tuple(mode) if isinstance(mode, (tuple, list)) else (mode,) * len(dims)
    if len(modes) != len(dims) or any(m not in ("raise", "wrap", "clip") for m in modes):
        raise XCSValueError("clipmode must be one of 'clip', 'raise', or 'wrap'")
    fixed = []
    for c, d, m in zip(coords, dims, modes):
        fixed.append(_index_mode(_int_indices(c, "ravel_multi_index"), d, m, "invalid entry in coordinates array"))
    if order == "F":
        fixed, dims = fixed[::-1], dims[::-1]
    r = fixed[0]
    for c, d in zip(fixed[1:], dims[1:]):
        r = xnp.add(xnp.multiply(r, d), c)
    return r


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate arrays from 1-D coordinate vectors (a tuple; xy: the first two axes swapped).
    copy is accepted and has no effect: Arrays are immutable."""
    if indexing not in ("xy", "ij"):
        raise XCSValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    shapes = [[1] * nd for _ in range(nd)]
    for i in range(nd):
        shapes[i][i] = -1
    if indexing == "xy" and nd > 1:
        shapes[0][:2], shapes[1][:2] = [1, -1], [-1, 1]
    out = [xnp.reshape(xnp.asarray(x), tuple(s)) for x, s in zip(xi, shapes)]
    return tuple(out) if sparse else broadcast_arrays(*out)


# ---------------------------------------------------------------- products


def tensordot(a, b, axes=2):
    """Sum of products over axes (an int: a's last and b's first N; or a pair of sequences),
    as numpy computes it: a transpose, a reshape and one matmul."""
    a, b = xnp.asarray(a), xnp.asarray(b)
    try:
        axes_a, axes_b = axes
    except TypeError:
        axes_a, axes_b = list(range(-axes, 0)), list(range(axes))
    axes_a = list(axes_a) if _np.iterable(axes_a) else [axes_a]
    axes_b = list(axes_b) if _np.iterable(axes_b) else [axes_b]
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] for i, j in zip(axes_a, axes_b)):
        raise XCSValueError("shape-mismatch for sum")
    axes_a = [i % a.ndim for i in axes_a]
    axes_b = [j % b.ndim for j in axes_b]
    free_a = [k for k in range(a.ndim) if k not in axes_a]
    free_b = [k for k in range(b.ndim) if k not in axes_b]
    n = _math.prod(a.shape[k] for k in axes_a)
    at = xnp.reshape(xnp.transpose(a, free_a + axes_a), (_math.prod(a.shape[k] for k in free_a), n))
    bt = xnp.reshape(xnp.transpose(b, axes_b + free_b), (n, _math.prod(b.shape[k] for k in free_b)))
    return xnp.reshape(xnp.matmul(at, bt), tuple(a.shape[k] for k in free_a) + tuple(b.shape[k] for k in free_b))


def inner(a, b, /):
    """Sum of products over the last axes (a product when either is 0-d)."""
    a, b = xnp.asarray(a), xnp.asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        return xnp.multiply(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise XCSValueError("shapes of the last axes of inner's operands do not match")
    return tensordot(a, b, ([-1], [-1]))


def vdot(a, b, /):
    """The dot product of the flattened arrays (real dtypes: no conjugation)."""
    a, b = xnp.ravel(xnp.asarray(a)), xnp.ravel(xnp.asarray(b))
    if a.shape != b.shape:
        raise XCSValueError("vdot: vectors have different lengths")
    return xnp.dot(a, b)


def kron(a, b):
    """The Kronecker product: blocks of b scaled by a's elements (a broadcast multiply and a reshape)."""
    b = xnp.asarray(b)
    a = _at_least(xnp.asarray(a), b.ndim)
    if a.ndim == 0 or b.ndim == 0:
        return xnp.multiply(a, b)
    nd = max(a.ndim, b.ndim)
    a = _at_least(a, nd)
    b = _at_least(b, nd)
    shape = tuple(s * t for s, t in zip(a.shape, b.shape))
    a2 = xnp.expand_dims(a, tuple(range(1, 2 * nd, 2)))
    b2 = xnp.expand_dims(b, tuple(range(0, 2 * nd, 2)))
    return xnp.reshape(xnp.multiply(a2, b2), shape)


def _at_least(a, nd):
    """a with leading axes of size 1 added up to nd dimensions (numpy's ndmin)."""
    return xnp.reshape(a, (1,) * (nd - a.ndim) + a.shape) if a.ndim < nd else a


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors (or 2-vectors, numpy's deprecated z-only / zero-padded form)
    along axisa / axisb, the result's vectors along axisc."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = xnp.asarray(a), xnp.asarray(b)
    if a.ndim < 1 or b.ndim < 1:
        raise XCSValueError("At least one array has zero dimension")
    a = xnp.moveaxis(a, xnp._axis(axisa, a.ndim, "cross"), -1)
    b = xnp.moveaxis(b, xnp._axis(axisb, b.ndim, "cross"), -1)
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise XCSValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    dt = _np.promote_types(a.dtype, b.dtype)
    if dt == _np.bool_:
        raise xnp._Unsupported("cross: boolean vectors (numpy rejects their subtraction)")
    if na == 2 or nb == 2:
        _warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of 3-dimensional vectors "
                       "instead. (deprecated in NumPy 2.0)", DeprecationWarning, stacklevel=2)
    a, b = xnp.astype(a, dt, copy=False), xnp.astype(b, dt, copy=False)
    a0, a1, b0, b1 = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    c2 = xnp.subtract(xnp.multiply(a0, b1), xnp.multiply(a1, b0))
    if na == 2 and nb == 2:
        return c2
    if na == 2:
        b2 = b[..., 2]
        c0, c1 = xnp.multiply(a1, b2), xnp.negative(xnp.multiply(a0, b2))
    elif nb == 2:
        a2 = a[..., 2]
        c0, c1 = xnp.negative(xnp.multiply(a2, b1)), xnp.multiply(a2, b0)
    else:
        a2, b2 = a[..., 2], b[..., 2]
        c0 = xnp.subtract(xnp.multiply(a1, b2), xnp.multiply(a2, b1))
        c1 = xnp.subtract(xnp.multiply(a2, b0), xnp.multiply(a0, b2))
    c0, c1, c2 = broadcast_arrays(c0, c1, c2)
    cp = xnp.stack([c0, c1, c2], axis=-1)
    return xnp.moveaxis(cp, -1, xnp._axis(axisc, cp.ndim, "cross"))


def _multi_dot(arrays, *, out=None):
    """numpy.linalg.multi_dot: the chain of dot products in numpy's cheapest order (1-D ends allowed)."""
    xnp._no_out(out, "multi_dot")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise XCSValueError("Expecting at least two arrays.")
    if len(arrays) == 2:
        return xnp.dot(arrays[0], arrays[1])
    arrays = [xnp.asarray(a) for a in arrays]
    first, last = arrays[0].ndim, arrays[-1].ndim
    if first == 1:
        arrays[0] = xnp.reshape(arrays[0], (1, -1))
    if last == 1:
        arrays[-1] = xnp.reshape(arrays[-1], (-1, 1))
    for a in arrays:
        if a.ndim != 2:
            raise XCSValueError(f"{a.ndim}-dimensional array given. Array must be two-dimensional")
    n = len(arrays)
    if n == 3:
        (a0, a1b0), (b1c0, c1) = arrays[0].shape, arrays[2].shape
        if a0 * b1c0 * (a1b0 + c1) < a1b0 * c1 * (a0 + b1c0):
            r = xnp.dot(xnp.dot(arrays[0], arrays[1]), arrays[2])
        else:
            r = xnp.dot(arrays[0], xnp.dot(arrays[1], arrays[2]))
    else:
        r = _chain(arrays, _chain_order(arrays), 0, n - 1)
    if first == 1 and last == 1:
        return r[0, 0]
    return xnp.ravel(r) if first == 1 or last == 1 else r


def _chain_order(arrays):
    """numpy's _multi_dot_matrix_chain_order: the split points of the cheapest parenthesisation."""
    n = len(arrays)
    p = [a.shape[0] for a in arrays] + [arrays[-1].shape[1]]
    m = [[0.0] * n for _ in range(n)]
    s = [[0] * n for _ in range(n)]
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            m[i][j] = float("inf")
            for k in range(i, j):
                q = m[i][k] + m[k + 1][j] + p[i] * p[k + 1] * p[j + 1]
                if q < m[i][j]:
                    m[i][j], s[i][j] = q, k
    return s


def _chain(arrays, order, i, j):
    if i == j:
        return arrays[i]
    return xnp.dot(_chain(arrays, order, i, order[i][j]), _chain(arrays, order, order[i][j] + 1, j))


def _matrix_power(a, n):
    """numpy.linalg.matrix_power, by numpy's repeated squaring (n < 0: of the inverse)."""
    a = xnp.asarray(a)
    if a.ndim < 2:
        raise XCSValueError(f"{a.ndim}-dimensional array given. Array must be at least two-dimensional")
    if a.shape[-1] != a.shape[-2]:
        raise XCSValueError("Last 2 dimensions of the array must be square")
    try:
        n = _operator.index(n)
    except TypeError as e:
        raise XCSTypeError("exponent must be an integer") from e
    if n < 0:
        a, n = xnp.linalg.inv(a), -n
    if n == 0:
        return xnp.broadcast_to(xnp.eye(a.shape[-1], dtype=a.dtype), a.shape)
    if n <= 3:
        r = a
        for _ in range(n - 1):
            r = xnp.matmul(r, a)
        return r
    z = r = None
    while n > 0:
        z = a if z is None else xnp.matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            r = z if r is None else xnp.matmul(r, z)
    return r


LINALG = {"multi_dot": _multi_dot, "matrix_power": _matrix_power}


# ---------------------------------------------------------------- integration, polynomials, signals


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of y along axis by the trapezoidal rule (spacing x's differences, or dx)."""
    y = xnp.asarray(y)
    if x is None:
        d = dx
    else:
        x = xnp.asarray(x)
        if x.ndim == 1:
            d = xnp.diff(x)
            shape = [1] * y.ndim
            shape[axis] = d.shape[0]
            d = xnp.reshape(d, tuple(shape))
        else:
            d = xnp.diff(x, axis=axis)
    ax = xnp._axis(axis, y.ndim, "trapezoid")
    mid = xnp.add(_along(y, ax, slice(1, None)), _along(y, ax, slice(None, -1)))
    return xnp.sum(xnp.divide(xnp.multiply(d, mid), 2.0), axis=ax)


trapz = trapezoid


def polyval(p, x):
    """The polynomial with coefficients p (highest power first) at x, by Horner's rule from zeros_like(x)."""
    p, x = xnp.asarray(p), xnp.asarray(x)
    if p.ndim == 0:
        raise XCSTypeError("polyval: p must be a sequence of coefficients, not a 0-d array")
    y = xnp.zeros_like(x)
    for i in range(p.shape[0]):
        y = xnp.add(xnp.multiply(y, x), p[i])
    return y


_MODES = {"valid": 0, "same": 1, "full": 2}


def _mode(mode):
    """numpy's mode converter: the names, 0 / 1 / 2, or (deprecated) a name's first letter in any case."""
    m = mode if type(mode) is int else _MODES.get(mode) if isinstance(mode, str) else None
    if m is None and isinstance(mode, str):
        m = {"v": 0, "s": 1, "f": 2}.get(mode.lower()[:1])
        if m is not None:
            _warnings.warn("inexact matches and case insensitive matches for convolve/correlate mode are "
                           "deprecated, please use one of 'valid', 'same', or 'full' instead.",
                           DeprecationWarning, stacklevel=3)
    if m not in (0, 1, 2):
        raise XCSValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")
    return m


def _correlate(a, v, mode):
    """numpy's _pyarray_correlate for len(a) >= len(v): out[i] = sum_j a[i - left + j] * v[j]
    (a zero outside), as a gather of a's windows and one matrix-vector product."""
    n1, n2 = a.shape[0], v.shape[0]
    left, right, length = ((0, 0, n1 - n2 + 1), (n2 // 2, n2 - n2 // 2 - 1, n1), (n2 - 1, n2 - 1, n1 + n2 - 1))[mode]
    pad = [xnp.zeros((left,), a.dtype), a, xnp.zeros((right,), a.dtype)]
    windows = xnp.take(xnp.concatenate(pad), _np.arange(length)[:, None] + _np.arange(n2)[None, :])
    return xnp.matmul(windows, v)


def _vectors(a, v):
    a, v = _at1(a), _at1(v)
    if a.ndim != 1 or v.ndim != 1:
        raise XCSValueError("object too deep for desired array")
    return a, v


def convolve(a, v, mode="full"):
    """The discrete linear convolution of two 1-D sequences (modes full, same, valid)."""
    a, v = _vectors(a, v)
    mode = _mode(mode)
    if v.shape[0] > a.shape[0]:
        a, v = v, a
    if a.shape[0] == 0:
        raise XCSValueError("a cannot be empty")
    if v.shape[0] == 0:
        raise XCSValueError("v cannot be empty")
    return _correlate(a, xnp.flip(v), mode)


def correlate(a, v, mode="valid"):
    """The cross-correlation of two 1-D sequences, sum_n a[n + k] * v[n] (modes valid, same, full;
    real dtypes: no conjugation); a shorter than v is numpy's reversed swap."""
    a, v = _vectors(a, v)
    mode = _mode(mode)
    if a.shape[0] == 0:
        raise XCSValueError("first array argument cannot be empty")
    if v.shape[0] == 0:
        raise XCSValueError("second array argument cannot be empty")
    if v.shape[0] > a.shape[0]:
        return xnp.flip(_correlate(v, a, mode))
    return _correlate(a, v, mode)


# ---------------------------------------------------------------- choosing


def select(condlist, choicelist, default=0):
    """Elements of the first choice whose condition holds, else default (a chain of where from the last)."""
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise XCSValueError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise XCSValueError("select with an empty condition list is not possible")
    dt = _np.result_type(*(_weak(c) for c in choicelist + [default]))
    conds = [xnp.asarray(c) for c in condlist]
    for i, c in enumerate(conds):
        if c.dtype != _np.bool_:
            raise XCSTypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    choices = [xnp.astype(xnp.asarray(c), dt, copy=False) for c in choicelist]
    r = xnp.astype(xnp.asarray(default), dt, copy=False)
    shape = _bshape(*(c.shape for c in conds + choices + [r]))
    for cond, choice in zip(conds[::-1], choices[::-1]):
        r = xnp.where(cond, choice, r)
    return xnp.broadcast_to(r, shape)


def choose(a, choices, out=None, mode="raise"):
    """choices[a[i]][i] for each i (a and the choices broadcast together), a take_along_axis of
    the stacked choices.  mode 'raise' checks the indices when a is concrete; under jit they
    are used as they are (negative ones count from the end); 'wrap' and 'clip' as numpy."""
    xnp._no_out(out, "choose")
    if mode not in ("raise", "wrap", "clip"):
        raise XCSValueError("clipmode must be one of 'clip', 'raise', or 'wrap'")
    idx = _int_indices(a, "choose")
    if isinstance(choices, (Array, _np.ndarray)):
        choices = list(xnp.asarray(choices))
    else:
        choices = list(choices)
    n = len(choices)
    dt = _np.result_type(*(_weak(c) for c in choices))
    choices = [xnp.astype(xnp.asarray(c), dt, copy=False) for c in choices]
    idx = _index_mode(idx, n, mode, "invalid entry in choice array")
    shape = _bshape(idx.shape, *(c.shape for c in choices))
    stacked = xnp.stack([xnp.broadcast_to(c, shape) for c in choices])
    return xnp.take_along_axis(stacked, xnp.broadcast_to(idx, shape)[None], 0)[0]


# ---------------------------------------------------------------- blocks, axes, selections


def _block_depth(x, where):
    """(list depth, the largest ndim of a leaf) of numpy.block's nested lists."""
    if type(x) is tuple:
        raise XCSTypeError(f"{where} is a tuple. Only lists can be used to arrange blocks, and np.block does not "
                           "allow implicit conversion from tuple to ndarray.")
    if type(x) is not list:
        return 0, xnp.asarray(x).ndim
    if not x:
        raise XCSValueError(f"List at {where} cannot be empty")
    kids = [_block_depth(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if any(d != kids[0][0] for d, _ in kids):
        raise XCSValueError(f"List depths are mismatched. All the elements of {where} must be lists of the same "
                            "depth")
    return kids[0][0] + 1, max(n for _, n in kids)


def block(arrays):
    """numpy.block: nested lists of arrays joined, the innermost lists along the last axis, the
    next ones along the one before, ...; every block first given the result's number of dims
    (leading axes of size 1)."""
    depth, nd = _block_depth(arrays, "arrays")
    nd = max(nd, depth)

    def join(x, d):
        if d == depth:
            a = xnp.asarray(x)
            return xnp.reshape(a, (1,) * (nd - a.ndim) + a.shape)
        return xnp.concatenate([join(v, d + 1) for v in x], axis=d - depth)

    return join(arrays, 0)


def unstack(x, /, *, axis=0):
    """numpy.unstack: the slices of x along axis, as a tuple."""
    x = xnp.asarray(x)
    if x.ndim == 0:
        raise XCSValueError("Input array must be at least 1-d.")
    ax = xnp._axis(axis, x.ndim, "unstack")
    return tuple(_along(x, ax, i) for i in range(x.shape[ax]))


def rollaxis(a, axis, start=0):
    """numpy.rollaxis: axis moved to sit before position start (a transpose)."""
    a = xnp.asarray(a)
    n = a.ndim
    axis = xnp._axis(axis, n, "rollaxis")
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise XCSValueError(f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in")
    if axis < start:
        start -= 1
    axes = [d for d in range(n) if d != axis]
    axes.insert(start, axis)
    return xnp.transpose(a, axes)


def diagflat(v, k=0):
    """A 2-D array with the flattened v on its k-th diagonal."""
    return xnp.diag(xnp.ravel(xnp.asarray(v)), k)


def compress(condition, a, axis=None, out=None):
    """The slices of a (flattened when axis is None) along axis where the 1-D condition holds (a
    shorter condition is padded with False).  The result's shape depends on condition's values, so
    condition must be concrete; under jit a traced one raises XCSTracerError (numpy's fallback)."""
    xnp._no_out(out, "compress")
    if isinstance(condition, Array) and _xcs._is_traced(condition):
        raise xnp._Unsupported("compress: a traced condition (the result's shape depends on its values)")
    c = _np.asarray(condition)
    if c.ndim != 1:
        raise XCSValueError("condition must be a 1-d array")
    a = xnp.asarray(a)
    if axis is None:
        a, ax = xnp.ravel(a), 0
    else:
        ax = xnp._axis(axis, a.ndim, "compress")
    idx = _np.flatnonzero(c)
    if idx.size and idx[-1] >= a.shape[ax]:
        raise _xcs.XCSIndexError(f"index {idx[-1]} is out of bounds for axis {ax} with size {a.shape[ax]}")
    return xnp.take(a, idx, axis=ax)


def piecewise(x, condlist, funclist, *args, **kw):
    """numpy.piecewise: funclist[i] where condlist[i] holds (a later condition over an earlier one),
    a last extra function where none does, 0 elsewhere, in x's dtype.  Each function is applied to
    the whole of x and its values selected (numpy applies it to x[cond] alone: the same for
    elementwise functions, which these must be; a function's NaN or inf outside its condition is not
    seen, but its gradient there can be, as with where)."""
    x = xnp.asarray(x)
    n2 = len(funclist)
    if _np.isscalar(condlist) or (x.ndim != 0 and not isinstance(condlist[0], (list, _np.ndarray, Array))):
        condlist = [condlist]
    conds = [xnp.astype(xnp.asarray(c), xnp.bool_, copy=False) for c in condlist]
    if len(conds) == n2 - 1:
        none = conds[0] if len(conds) == 1 else xnp.logical_or(conds[0], conds[1])
        for c in conds[2:]:
            none = xnp.logical_or(none, c)
        conds.append(xnp.logical_not(none) if conds else xnp.ones(x.shape, xnp.bool_))
    elif len(conds) != n2:
        raise XCSValueError(f"with {len(conds)} condition(s), either {len(conds)} or {len(conds) + 1} functions "
                            "are expected")
    y = xnp.zeros_like(x)
    for cond, fn in zip(conds, funclist):
        val = fn(x, *args, **kw) if callable(fn) else fn
        y = xnp.where(cond, xnp.astype(xnp.asarray(val), x.dtype, copy=False), y)
    return y


def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """numpy.apply_along_axis as one vmap of func1d over the 1-D slices along axis (func1d must be
    traceable, as for vmap; on concrete arrays numpy's loop runs the others): the result's shape is
    arr.shape[:axis] + func1d's result shape + arr.shape[axis + 1:]."""
    from ember.xcs.transformations import vmap

    arr = xnp.asarray(arr)
    ax = xnp._axis(axis, arr.ndim, "apply_along_axis")
    rest = arr.shape[:ax] + arr.shape[ax + 1:]
    if _math.prod(rest) == 0:
        raise XCSValueError("Cannot apply_along_axis when any iteration dimensions are 0")
    rows = xnp.reshape(xnp.moveaxis(arr, ax, -1), (-1, arr.shape[ax]))
    try:
        res = xnp.asarray(vmap(lambda r: xnp.asarray(func1d(r, *args, **kwargs)))(rows))
    except _xcs.XCSTracerError:
        if _xcs._is_traced(arr):
            raise
        raise xnp._Unsupported("apply_along_axis: func1d cannot be traced") from None
    k = res.ndim - 1
    res = xnp.reshape(res, rest + res.shape[1:])
    order = list(range(ax)) + list(range(len(rest), len(rest) + k)) + list(range(ax, len(rest)))
    return xnp.transpose(res, order)


# ---------------------------------------------------------------- differences, polynomial fits


def ediff1d(ary, to_end=None, to_begin=None):
    """The differences of the flattened ary, with to_begin before and to_end after (flattened, in
    ary's dtype: numpy's same-kind cast rule)."""
    a = xnp.ravel(xnp.asarray(ary))
    parts = [xnp.subtract(a[1:], a[:-1])]
    for extra, at, name in ((to_begin, 0, "to_begin"), (to_end, len(parts) + 1, "to_end")):
        if extra is None:
            continue
        e = xnp.ravel(xnp.asarray(extra))
        if not _np.can_cast(e.dtype, a.dtype, casting="same_kind"):
            raise XCSTypeError(f"dtype of `{name}` must be compatible with input `ary` under the `same_kind` rule.")
        parts.insert(at if at == 0 else len(parts), xnp.astype(e, a.dtype, copy=False))
    return xnp.concatenate(parts) if len(parts) > 1 else parts[0]


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of 1-D x: columns x**(N-1) ... x**0 (increasing: the other way), each
    power one more product (numpy's running product, so its bits); ints and bools in int64 and
    float32 in float64 (numpy's promotion with int)."""
    x = xnp.asarray(x)
    if x.ndim != 1:
        raise XCSValueError("x must be a one-dimensional array or sequence.")
    n = x.shape[0] if N is None else _operator.index(N)
    dt = _np.promote_types(x.dtype, int)
    x = xnp.astype(x, dt, copy=False)
    cols, p = [], xnp.ones(x.shape, dt)
    for i in range(n):
        cols.append(p)
        if i + 1 < n:
            p = xnp.multiply(p, x) if i else x
    if not increasing:
        cols.reverse()
    return xnp.stack(cols, axis=1) if cols else xnp.zeros((x.shape[0], 0), dt)


def _gradient_axis(f, ax, dx, edge_order):
    """numpy.gradient along one axis: central differences inside, one-sided at the ends; dx a
    number (uniform) or the 1-D spacings (len - 1 of them)."""
    n = f.shape[ax]
    if n < edge_order + 1:
        raise XCSValueError("Shape of array too small to calculate a numerical gradient, at least (edge_order + 1) "
                            "elements are required.")
    at = lambda s: _along(f, ax, s)  # noqa: E731
    shape = [1] * f.ndim
    shape[ax] = -1
    uniform = not isinstance(dx, Array) and _np.ndim(dx) == 0
    if uniform:
        inner = xnp.divide(xnp.subtract(at(slice(2, None)), at(slice(None, -2))), 2.0 * dx)
    else:
        dx1, dx2 = xnp.reshape(dx[:-1], shape), xnp.reshape(dx[1:], shape)
        a = xnp.divide(xnp.negative(dx2), xnp.multiply(dx1, xnp.add(dx1, dx2)))
        b = xnp.divide(xnp.subtract(dx2, dx1), xnp.multiply(dx1, dx2))
        c = xnp.divide(dx1, xnp.multiply(dx2, xnp.add(dx1, dx2)))
        inner = xnp.add(xnp.add(xnp.multiply(a, at(slice(None, -2))), xnp.multiply(b, at(slice(1, -1)))),
                        xnp.multiply(c, at(slice(2, None))))
    if edge_order == 1:
        d0, dn = (dx, dx) if uniform else (dx[0], dx[-1])
        first = xnp.divide(xnp.subtract(at(slice(1, 2)), at(slice(0, 1))), d0)
        last = xnp.divide(xnp.subtract(at(slice(n - 1, n)), at(slice(n - 2, n - 1))), dn)
    else:
        if uniform:
            a, b, c = -1.5 / dx, 2.0 / dx, -0.5 / dx
            a2, b2, c2 = 0.5 / dx, -2.0 / dx, 1.5 / dx
        else:
            d1, d2 = dx[0], dx[1]
            a = xnp.divide(xnp.negative(xnp.add(xnp.multiply(2.0, d1), d2)), xnp.multiply(d1, xnp.add(d1, d2)))
            b = xnp.divide(xnp.add(d1, d2), xnp.multiply(d1, d2))
            c = xnp.divide(xnp.negative(d1), xnp.multiply(d2, xnp.add(d1, d2)))
            d1, d2 = dx[-2], dx[-1]
            a2 = xnp.divide(d2, xnp.multiply(d1, xnp.add(d1, d2)))
            b2 = xnp.divide(xnp.negative(xnp.add(d2, d1)), xnp.multiply(d1, d2))
            c2 = xnp.divide(xnp.add(xnp.multiply(2.0, d2), d1), xnp.multiply(d2, xnp.add(d1, d2)))
        first = xnp.add(xnp.add(xnp.multiply(a, at(slice(0, 1))), xnp.multiply(b, at(slice(1, 2)))),
                        xnp.multiply(c, at(slice(2, 3))))
        last = xnp.add(xnp.add(xnp.multiply(a2, at(slice(n - 3, n - 2))), xnp.multiply(b2, at(slice(n - 2, n - 1)))),
                       xnp.multiply(c2, at(slice(n - 1, n))))
    return xnp.concatenate([first, inner, last], axis=ax)


def gradient(f, *varargs, axis=None, edge_order=1):
    """numpy.gradient: second-order central differences inside, first- or second-order (edge_order)
    one-sided ones at the ends, along each axis (a tuple of arrays for more than one); spacings: none
    (1), one number for all axes, or one number or 1-D coordinate array per axis (coordinates equally
    spaced, when concrete, are read as their spacing, as numpy).  Ints in float64; the result has f's
    dtype, as numpy's."""
    f = xnp.asarray(f)
    if f.dtype == _np.bool_:
        raise XCSTypeError("gradient: boolean arrays are not supported (numpy's subtract refuses them)")
    if f.dtype.kind in "iu":
        f = xnp.astype(f, xnp.float64)
    axes = tuple(range(f.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(xnp._axis(a, f.ndim, "gradient") for a in axes)
    if len(set(axes)) != len(axes):
        raise XCSValueError("duplicate value in 'axis'")
    if edge_order not in (1, 2):
        raise XCSValueError("'edge_order' greater than 2 not supported")
    if not varargs:
        dx = [1.0] * len(axes)
    elif len(varargs) == 1 and not isinstance(varargs[0], Array) and _np.ndim(varargs[0]) == 0:
        dx = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes):
        dx = []
        for i, d in enumerate(varargs):
            if not isinstance(d, Array) and _np.ndim(d) == 0:
                dx.append(d)
                continue
            d = xnp.asarray(d)
            if d.ndim != 1:
                raise XCSValueError("distances must be either scalars or 1d")
            if d.shape[0] != f.shape[axes[i]]:
                raise XCSValueError("when 1d, distances must match the length of the corresponding dimension")
            if d.dtype.kind in "iub":
                d = xnp.astype(d, xnp.float64)
            diffs = xnp.subtract(d[1:], d[:-1])
            known = _concrete(diffs)
            dx.append(known[0].item() if known is not None and known.size and (known == known[0]).all() else diffs)
    else:
        raise XCSTypeError("invalid number of arguments")
    # numpy writes each result into an array of f's dtype: computed in f's and the spacings'
    # common dtype, rounded once to f's
    out = tuple(xnp.astype(_gradient_axis(f, ax, d, edge_order), f.dtype, copy=False) for ax, d in zip(axes, dx))
    return out[0] if len(out) == 1 else out


def unwrap(p, discont=None, axis=-1, *, period=2 * _math.pi):
    """numpy.unwrap: jumps between neighbours along axis larger than max(discont, period / 2)
    replaced by their period complement, the corrections summed along axis (by doubling steps: the
    last bits can differ from numpy's running sum)."""
    p = xnp.asarray(p)
    ax = xnp._axis(axis, p.ndim, "unwrap")
    dd = xnp.diff(p, axis=ax)
    if discont is None:
        discont = period / 2
    dt = _np.result_type(dd.dtype, _weak(period))
    if dt.kind in "iu":
        high, rem = divmod(period, 2)
        ambiguous = rem == 0
    else:
        high, ambiguous = period / 2, True
    ddmod = xnp.add(xnp.mod(xnp.subtract(dd, -high), period), -high)
    if ambiguous:
        ddmod = xnp.where(xnp.logical_and(xnp.equal(ddmod, -high), xnp.greater(dd, 0)), high, ddmod)
    fix = xnp.where(xnp.less(xnp.absolute(dd), discont), 0, xnp.subtract(ddmod, dd))
    p = xnp.astype(p, dt, copy=False)
    rest = xnp.add(_along(p, ax, slice(1, None)), xnp.cumsum(fix, axis=ax))
    return xnp.concatenate([_along(p, ax, slice(0, 1)), xnp.astype(rest, dt, copy=False)], axis=ax)


def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """numpy.polyfit's coefficients (highest power first) by least squares on the Vandermonde matrix
    with numpy's column scaling (through lstsq: the pseudo-inverse, numpy's rcond); y 1-D or one fit
    per column.  full=True and cov: numpy's, on concrete arrays.  The poorly-conditioned warning is
    given when the rank is known (not under jit)."""
    if full or cov:
        raise xnp._Unsupported("polyfit: full=True and cov are not supported")
    order = _operator.index(deg) + 1
    x, y = (xnp.asarray(v) for v in (x, y))
    x = xnp.astype(x, _np.result_type(x.dtype, 0.0), copy=False)
    y = xnp.astype(y, _np.result_type(y.dtype, 0.0), copy=False)
    if order < 1:
        raise XCSValueError("expected deg >= 0")
    if x.ndim != 1:
        raise XCSTypeError("expected 1D vector for x")
    if x.shape[0] == 0:
        raise XCSTypeError("expected non-empty vector for x")
    if y.ndim < 1 or y.ndim > 2:
        raise XCSTypeError("expected 1D or 2D array for y")
    if x.shape[0] != y.shape[0]:
        raise XCSTypeError("expected x and y to have same length")
    if rcond is None:
        rcond = x.shape[0] * _np.finfo(x.dtype).eps
    lhs, rhs = vander(x, order), y
    if w is not None:
        w = xnp.astype(xnp.asarray(w), _np.result_type(xnp.asarray(w).dtype, 0.0), copy=False)
        if w.ndim != 1:
            raise XCSTypeError("expected a 1-d array for weights")
        if w.shape[0] != y.shape[0]:
            raise XCSTypeError("expected w and y to have the same length")
        lhs = xnp.multiply(lhs, xnp.expand_dims(w, 1))
        rhs = xnp.multiply(rhs, w if rhs.ndim == 1 else xnp.expand_dims(w, 1))
    scale = xnp.sqrt(xnp.sum(xnp.multiply(lhs, lhs), axis=0))
    c, _, rank, _ = xnp.linalg.lstsq(xnp.divide(lhs, scale), rhs, rcond)
    c = xnp.divide(c, scale) if c.ndim == 1 else xnp.divide(c, xnp.expand_dims(scale, 1))
    if not _xcs._is_traced(rank) and int(_np.asarray(rank)) != order:
        _warnings.warn("Polyfit may be poorly conditioned", _np.exceptions.RankWarning, stacklevel=2)
    return c


NUMPY_FUNCTIONS = tuple(__all__) + ("linalg.multi_dot", "linalg.matrix_power")
