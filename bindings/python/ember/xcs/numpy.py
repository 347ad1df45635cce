"""ember.xcs.numpy — numpy-named functions computed by XCS (``import ember.xcs.numpy as xnp``).

Every function accepts ``Array``s, numpy arrays, lists and Python scalars and
returns an ``Array`` (``split`` a list of them, ``where(cond)`` a tuple).
Signatures follow numpy's; parameters numpy has and xcs cannot honour are left
out, so calling with them raises ``TypeError`` (and numpy's own functions,
reached through ``__array_function__``, fall back to numpy for them).  ``out=``
is accepted where numpy takes it positionally, and must be ``None``: Arrays are
immutable.  A case a function accepts but does not compute (a callable pad
mode, ``reflect_type='odd'``, a sublist einsum, a traced argument that must
be known) runs numpy's function on concrete inputs (array results as
``Array``), called directly as through numpy; on traced inputs it raises
``XCSTracerError`` saying why.

Promotion follows numpy 2 (NEP 50): Python scalars are weak
(``float32_array * 2.0`` stays float32), numpy arrays and scalars are strong.
Inputs of dtypes xcs lacks convert to the nearest one (int8/int16/uint8/uint16
-> int32, uint32 -> int64, uint64 -> float64).  float16 and bfloat16
(``ml_dtypes.bfloat16``, as in JAX) are stored in 16 bits and computed in
float32: elementwise chains that xcs fuses round once, when they are stored.
"""

import builtins as _builtins
import collections as _collections
import functools as _functools
import operator as _operator
import sys as _sys
import warnings as _warnings

import numpy as _np

from ember.xcs import _xcs
from ember.xcs._xcs import Array, XCSTypeError

# dtype names, so xnp.float32 etc. read like numpy
bool_ = _np.bool_
int32 = _np.int32
int64 = _np.int64
float16 = _np.float16
float32 = _np.float32
float64 = _np.float64
try:
    from ml_dtypes import bfloat16
except ImportError:  # pragma: no cover - ml_dtypes is a dependency
    bfloat16 = "bfloat16"
_BF16 = _np.dtype(bfloat16) if not isinstance(bfloat16, str) else None


def _floating(dtype):
    """True for the float dtypes xcs knows, bfloat16 included (numpy's kind 'V')."""
    return dtype.kind == "f" or (_BF16 is not None and dtype == _BF16)


def _numeric(dtype):
    """True for numpy dtypes xcs computes on: bool, ints, floats, bfloat16."""
    return dtype.kind in "biuf" or (_BF16 is not None and dtype == _BF16)

_unary = _xcs._unary
_binary = _xcs._binary


def _no_out(out, name):
    if out is not None:
        raise XCSTypeError(f"{name}: out= is not supported (xcs Arrays are immutable); use the return value")


# ---------------------------------------------------------------- elementwise


def _ufunc1(name, op=None):
    op = op or name

    def f(x, /):
        return _unary(op, x)

    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"Elementwise numpy.{name}(x), computed by xcs."
    return f


def _ufunc2(name, op=None):
    op = op or name

    def f(x1, x2, /):
        return _binary(op, x1, x2)

    f.__name__ = f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = f"Elementwise numpy.{name}(x1, x2) with broadcasting, computed by xcs."
    return f


negative = _ufunc1("negative")
absolute = _ufunc1("absolute")
abs = _ufunc1("abs", "absolute")  # noqa: A001  (numpy's name)
exp = _ufunc1("exp")
log = _ufunc1("log")
log1p = _ufunc1("log1p")
expm1 = _ufunc1("expm1")
sqrt = _ufunc1("sqrt")
sin = _ufunc1("sin")
cos = _ufunc1("cos")
tanh = _ufunc1("tanh")
floor = _ufunc1("floor")
ceil = _ufunc1("ceil")
sign = _ufunc1("sign")
tan = _ufunc1("tan")
arcsin = asin = _ufunc1("arcsin")
arccos = acos = _ufunc1("arccos")
arctan = atan = _ufunc1("arctan")
sinh = _ufunc1("sinh")
cosh = _ufunc1("cosh")
arcsinh = asinh = _ufunc1("arcsinh")
arccosh = acosh = _ufunc1("arccosh")
arctanh = atanh = _ufunc1("arctanh")
log2 = _ufunc1("log2")
log10 = _ufunc1("log10")
exp2 = _ufunc1("exp2")
cbrt = _ufunc1("cbrt")
trunc = _ufunc1("trunc")
logical_not = _ufunc1("logical_not")
invert = _ufunc1("invert")
bitwise_not = invert

add = _ufunc2("add")
subtract = _ufunc2("subtract")
multiply = _ufunc2("multiply")
divide = _ufunc2("divide")
true_divide = _ufunc2("true_divide", "divide")
floor_divide = _ufunc2("floor_divide")
mod = _ufunc2("mod")
remainder = _ufunc2("remainder", "mod")
power = _ufunc2("power")
maximum = _ufunc2("maximum")
minimum = _ufunc2("minimum")
arctan2 = atan2 = _ufunc2("arctan2")
hypot = _ufunc2("hypot")
fmod = _ufunc2("fmod")
copysign = _ufunc2("copysign")
equal = _ufunc2("equal")
not_equal = _ufunc2("not_equal")
less = _ufunc2("less")
less_equal = _ufunc2("less_equal")
greater = _ufunc2("greater")
greater_equal = _ufunc2("greater_equal")
logical_and = _ufunc2("logical_and")
logical_or = _ufunc2("logical_or")
logical_xor = _ufunc2("logical_xor")
bitwise_and = _ufunc2("bitwise_and")
bitwise_or = _ufunc2("bitwise_or")
bitwise_xor = _ufunc2("bitwise_xor")


def positive(x, /):
    """numpy.positive(x): the values unchanged (an Array sharing x's memory)."""
    return +asarray(x)


def _bool_as_int(x):
    """x, with a bool x cast to int32: numpy's integer loops start at int8,
    which xcs lacks."""
    return x.astype("int32") if x.dtype == _np.bool_ else x


def square(x, /):
    """x * x, elementwise (dtype preserved; bools give int32, numpy's int8 in
    the int xcs has)."""
    x = _bool_as_int(asarray(x))
    return _binary("multiply", x, x)


def reciprocal(x, /):
    """1 / x elementwise, in x's dtype.

    Floats divide.  Integers follow numpy's integer reciprocal: 1 and -1 map to
    themselves and every other value to 0 (numpy leaves 1/0 undefined; xcs
    gives 0); bools give int32, numpy's int8 in the int xcs has.
    """
    x = _bool_as_int(asarray(x))
    if _floating(x.dtype):
        return _binary("divide", 1, x)
    return _xcs._where(_binary("equal", _unary("absolute", x), 1), x, 0)


def where(condition, x, y, /):
    """Elements of x where condition holds, else of y (all three broadcast together).

    The one-argument form numpy.where(cond) (= numpy.nonzero) has a
    data-dependent shape and is not an xcs op; numpy.where(Array) still works
    through numpy's own implementation.
    """
    return _xcs._where(condition, x, y)


def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None):  # noqa: A002
    """Limit the values of a to [a_min, a_max] (either bound may be None).

    Composed as minimum(maximum(a, a_min), a_max); dtypes follow those ops,
    so integer arrays clipped by float bounds become float (numpy 2 does the same).
    A Python int bound beyond an int32 array's range on its open side is no
    bound (numpy's); on the other it raises XCSOverflowError.
    """
    _no_out(out, "clip")
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    r = asarray(a)
    if r.dtype == int32:
        i32 = _np.iinfo(_np.int32)
        lo = None if type(lo) is int and lo < i32.min else lo
        hi = None if type(hi) is int and hi > i32.max else hi
    if lo is not None:
        r = _binary("maximum", r, lo)
    if hi is not None:
        r = _binary("minimum", r, hi)
    return r


# ---------------------------------------------------------------- reductions


# numpy's reductions take where= (a mask broadcast against a: only its True
# elements count) and initial= (a first element of every reduction; max and
# min need it with a mask, and give it for an empty one); both are composed
# here around the plain reduction.


def _masked(a, where, fill):
    """a with fill where the mask where is False (where=True: a itself)."""
    a = asarray(a)
    if where is True:
        return a
    m = astype(asarray(where), bool_, copy=False)
    return _xcs._where(broadcast_to(m, _np.broadcast_shapes(m.shape, a.shape)), a, full((), fill, a.dtype))


def _reduced_axes(a, axis, name):
    return tuple(range(a.ndim)) if axis is None else tuple(sorted(_axis(d, a.ndim, name) for d in (
        axis if isinstance(axis, tuple) else (axis,))))


def _with_initial(kind, a, axis, keepdims, initial, name):
    """max / min of a over axis with initial as one more element of every reduction (so an empty
    one gives initial): the reduced axes moved last and merged, initial appended."""
    a = asarray(a)
    axes = _reduced_axes(a, axis, name)
    kept = [d for d in range(a.ndim) if d not in axes]
    moved = transpose(a, kept + list(axes))
    lead = tuple(a.shape[d] for d in kept)
    flat = reshape(moved, lead + (-1,)) if axes else reshape(moved, lead + (1,))
    r = _xcs._reduce(kind, concatenate([flat, full(lead + (1,), initial, a.dtype)], axis=-1), -1, False)
    if keepdims:
        r = reshape(r, tuple(1 if d in axes else a.shape[d] for d in range(a.ndim)))
    return r


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):  # noqa: A001
    """Sum over axis (None: all; int or tuple).  Integer and bool sums are int64, like numpy;
    where= masks elements out, initial= is added."""
    _no_out(out, "sum")
    r = _xcs._reduce("sum", _masked(a, where, 0), axis, keepdims, dtype)
    return r if initial is None else add(r, initial)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """Product over axis.  Integer and bool products are int64, like numpy; where= masks elements
    out, initial= multiplies in."""
    _no_out(out, "prod")
    r = _xcs._reduce("prod", _masked(a, where, 1), axis, keepdims, dtype)
    return r if initial is None else multiply(r, initial)


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    """Arithmetic mean over axis (integers give float64); where=: of the masked-in elements (their
    sum over their count, as numpy)."""
    _no_out(out, "mean")
    if where is True:
        return _xcs._reduce("mean", a, axis, keepdims, dtype)
    a = asarray(a)
    acc = dtype if dtype is not None else float64 if not _floating(a.dtype) else None
    s = _xcs._reduce("sum", _masked(a, where, 0), axis, keepdims, acc)
    n = _xcs._reduce("sum", broadcast_to(astype(asarray(where), bool_, copy=False), a.shape), axis, keepdims, None)
    return astype(divide(s, n), s.dtype, copy=False)


def _extreme(kind, a, axis, keepdims, initial, where, name):
    if where is not True and initial is None:
        raise _xcs.XCSValueError(f"reduction operation '{'maximum' if kind == 'max' else 'minimum'}' does not have "
                                 "an identity, so to use a where mask one has to specify 'initial'")
    if initial is None:
        return _xcs._reduce(kind, a, axis, keepdims)
    return _with_initial(kind, _masked(a, where, initial), axis, keepdims, initial, name)


def max(a, axis=None, out=None, keepdims=False, initial=None, where=True):  # noqa: A001
    """Maximum over axis; NaN propagates.  Empty reductions raise XCSError unless initial= is
    given (one more element of every reduction, needed with a where= mask)."""
    _no_out(out, "max")
    return _extreme("max", a, axis, keepdims, initial, where, "max")


def min(a, axis=None, out=None, keepdims=False, initial=None, where=True):  # noqa: A001
    """Minimum over axis; NaN propagates (see max for initial= and where=)."""
    _no_out(out, "min")
    return _extreme("min", a, axis, keepdims, initial, where, "min")


amax = max
amin = min


def all(a, axis=None, out=None, keepdims=False, *, where=True):  # noqa: A001
    """True where every element along axis is non-zero (all([]) is True); where= masks elements out."""
    _no_out(out, "all")
    return _xcs._reduce("all", _masked(a, where, True), axis, keepdims)


def any(a, axis=None, out=None, keepdims=False, *, where=True):  # noqa: A001
    """True where some element along axis is non-zero (any([]) is False); where= masks elements out."""
    _no_out(out, "any")
    return _xcs._reduce("any", _masked(a, where, False), axis, keepdims)


def argmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the maximum (first occurrence), int64; axis=None indexes the flattened array."""
    _no_out(out, "argmax")
    return _xcs._argreduce("argmax", a, axis, keepdims)


def argmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the minimum (first occurrence), int64; axis=None indexes the flattened array."""
    _no_out(out, "argmin")
    return _xcs._argreduce("argmin", a, axis, keepdims)


def _var_general(a, axis, dtype, ddof, keepdims, where, the_mean, correction, name):
    """numpy's _var with where= / mean= / correction=: sum((x - mean)^2 over the masked-in
    elements) / max(count - ddof, 0), the mean theirs unless given."""
    if correction is not None:
        if ddof != 0:
            raise _xcs.XCSValueError(f"{name}: ddof and correction can't be provided simultaneously.")
        ddof = correction
    a = asarray(a)
    if where is True and the_mean is None:
        return None, ddof
    acc = dtype if dtype is not None else float64 if not _floating(a.dtype) else a.dtype
    x = astype(a, acc, copy=False)
    mask = broadcast_to(astype(asarray(where), bool_, copy=False), a.shape) if where is not True else None
    n = _xcs._reduce("sum", mask, axis, True, None) if mask is not None else _np.prod(
        [a.shape[d] for d in _reduced_axes(a, axis, name)], dtype=_np.int64)
    m = the_mean if the_mean is not None else divide(_xcs._reduce("sum", _masked(x, where, 0), axis, True, None), n)
    d = subtract(x, m)
    s = _xcs._reduce("sum", _masked(multiply(d, d), where, 0), axis, keepdims, None)
    cnt = maximum(subtract(n if keepdims or mask is None else squeeze(n, _reduced_axes(a, axis, name)), ddof), 0)
    return astype(divide(s, cnt), acc, copy=False), ddof


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    """Variance, sum((x - mean)^2) / (n - ddof), two-pass; where= (the masked-in elements), mean=
    (numpy 2: the mean to use) and correction= (ddof's array-API name) as numpy."""
    _no_out(out, "var")
    r, ddof = _var_general(a, axis, dtype, ddof, keepdims, where, mean, correction, "var")
    return _xcs._var(a, axis, keepdims, ddof, dtype) if r is None else r


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    """Standard deviation, sqrt(var(a, axis, ddof=ddof)) (where=, mean=, correction= as var's)."""
    _no_out(out, "std")
    r, ddof = _var_general(a, axis, dtype, ddof, keepdims, where, mean, correction, "std")
    return _xcs._std(a, axis, keepdims, ddof, dtype) if r is None else sqrt(r)


# ---------------------------------------------------------------- linear algebra


def matmul(x1, x2, /):
    """numpy.matmul: 1-D operands promoted and demoted, batch dims broadcast."""
    return _xcs._matmul(x1, x2)


def dot(a, b, out=None):
    """numpy.dot: scalars multiply, 1-D/2-D are matmul, N-D contracts a's last with b's second-to-last axis."""
    _no_out(out, "dot")
    return _xcs._dot(a, b)


def _einsum_diagonals(term, x):
    """term (labels, '...' allowed) and operand x with each repeated label taken as a diagonal
    (numpy.diagonal puts it last), so no label repeats: 'ii' -> 'i', 'iij' -> 'ji'."""
    ell = "..." in term
    head, _, tail = term.partition("...") if ell else ("", "", term)
    labels = list(head) + (["..."] if ell else []) + list(tail)
    while True:
        seen, rep = {}, None
        for pos, lab in enumerate(labels):
            if lab != "..." and lab in seen:
                rep = (seen[lab], pos)
                break
            seen[lab] = pos
        if rep is None:
            return "".join(labels), x
        p, q = rep
        nd_ell = x.ndim - (len(labels) - 1) if ell else 0  # dims the ellipsis stands for
        axis = lambda i: i if not ell or i < labels.index("...") else i + nd_ell - 1  # noqa: E731
        lab = labels[p]
        x = diagonal(x, 0, axis(p), axis(q))
        labels = [v for i, v in enumerate(labels) if i not in (p, q)] + [lab]


def einsum(subscripts, *operands, out=None, optimize=False):
    """Einstein summation over any number of operands (numpy's subscripts: '->' or implicit
    output, '...', repeated labels within an operand as diagonals).

    Each operand's repeated labels are taken as diagonals first; then the operands are contracted
    pairwise from the left, each step keeping the labels a later operand or the output needs,
    and each step lowered by xcs to permute + reshape + (batched) matmul + sum.  ``optimize`` is
    accepted for numpy compatibility and has no effect.
    """
    _no_out(out, "einsum")
    if not isinstance(subscripts, str):
        raise _Unsupported("einsum: only the subscripts-string form is supported")
    subs = subscripts.replace(" ", "")
    ins, arrow, outs = subs.partition("->")
    terms = ins.split(",")
    if len(terms) != len(operands):
        raise _xcs.XCSValueError(f"einsum: {len(terms)} subscript terms for {len(operands)} operands")
    if not arrow:  # numpy's implicit output: the labels seen once, sorted; the ellipsis first
        counts = {}
        for t in terms:
            for c in t.replace("...", ""):
                counts[c] = counts.get(c, 0) + 1
        outs = ("..." if "..." in ins else "") + "".join(sorted(c for c, k in counts.items() if k == 1))
    xs = []
    for i, t in enumerate(terms):
        t, x = _einsum_diagonals(t, asarray(operands[i]))
        terms[i] = t
        xs.append(x)
    if len(xs) == 1:
        return _xcs._einsum(f"{terms[0]}->{outs}", xs[0])
    cur, x = terms[0], xs[0]
    for i in range(1, len(xs)):
        if i == len(xs) - 1:
            return _xcs._einsum(f"{cur},{terms[i]}->{outs}", x, xs[i])
        later = set(outs.replace("...", "")).union(*(set(t.replace("...", "")) for t in terms[i + 1:]))
        keep = []
        for c in (cur + terms[i]).replace("...", ""):
            if c in later and c not in keep:
                keep.append(c)
        inter = ("..." if "..." in cur or "..." in terms[i] else "") + "".join(keep)
        x = _xcs._einsum(f"{cur},{terms[i]}->{inter}", x, xs[i])
        cur = inter
    return x


# ---------------------------------------------------------------- shapes


def _order(a, order, name, keep=False):
    """numpy's index order 'C' or 'F' for order (None and 'C', 'F'; 'A': 'F' for an Array laid out
    Fortran-contiguous and not C-contiguous; 'K' (keep, ravel only): the memory order, as the
    axes sorted by stride).  A traced value has no layout: 'A' and 'K' of one are refused."""
    if order is None or order == "C":
        return "C"
    if order == "F":
        return "F"
    if order not in ("A", "K") or (order == "K" and not keep):
        raise _xcs.XCSValueError(f"{name}: order must be one of 'C', 'F', 'A'{', or K' if keep else ''} "
                                 f"(got {order!r})")
    if a.ndim < 2:
        return "C"
    if _xcs._is_traced(a):
        raise _Unsupported(f"{name}: order={order!r} of a traced value (its memory layout is not known when "
                           "tracing); use order='C' or 'F'")
    st = [abs(s) for s, n in zip(a.strides, a.shape) if n > 1]
    c = st == sorted(st, reverse=True)
    if order == "A":
        return "F" if not c and st == sorted(st) else "C"
    return "C" if c else tuple(sorted(range(a.ndim), key=lambda d: -abs(a.strides[d])))


def reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    """Gives a a new shape (-1 inferred); a view when the layout allows, else a copy.  order 'F'
    (and 'A' of a Fortran-ordered Array) reads and writes the elements with the first index
    fastest: the reshape of the transposes."""
    if shape is None:
        shape = newshape
    if shape is None:
        raise TypeError("reshape() missing the required argument 'shape'")
    a = asarray(a)
    if _order(a, order, "reshape") == "F":
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        r = transpose(_xcs._reshape(transpose(a), shape[::-1]))
    else:
        r = _xcs._reshape(a, shape)
    return _xcs._copy(r) if copy else r


def transpose(a, axes=None):
    """Permutes the axes (reversed when axes is None); a view."""
    return _xcs._transpose(a, axes)


def permute_dims(a, /, axes=None):
    """Array-API name of transpose."""
    return _xcs._transpose(a, axes)


def squeeze(a, axis=None):
    """Removes size-1 axes (all of them, or those in axis); a view."""
    return _xcs._squeeze(a, axis)


def expand_dims(a, axis):
    """Inserts size-1 axes at the positions in axis (int or tuple) of the result; a view."""
    return _xcs._expand_dims(a, axis)


def broadcast_to(array, shape):
    """A read-only broadcast view of array with the given shape."""
    return _xcs._broadcast_to(array, shape)


def ravel(a, order="C"):
    """The flattened array (a view when possible); order 'F' with the first index fastest, 'A' and
    'K' as numpy (see _order)."""
    a = asarray(a)
    o = _order(a, order, "ravel", keep=True)
    if o == "F":
        return _xcs._reshape(transpose(a), -1)
    return _xcs._reshape(a if o == "C" else transpose(a, o), -1)


def take(a, indices, axis=None, out=None, mode="raise"):
    """Elements of a at integer indices along axis (None: of the flattened array).

    Negative indices count from the end; out-of-range indices raise
    XCSIndexError (numpy's mode='raise', the only mode supported).
    """
    _no_out(out, "take")
    if mode != "raise":
        raise XCSTypeError(f"take: only mode='raise' is supported, got {mode!r}")
    return _xcs._take(a, indices, axis)


def concatenate(arrays, /, axis=0, out=None, *, dtype=None):
    """Joins arrays along an existing axis (None: flattens them first)."""
    _no_out(out, "concatenate")
    r = _xcs._concatenate(arrays, axis)
    return r if dtype is None else _xcs._cast(r, dtype)


def stack(arrays, axis=0, out=None, *, dtype=None):
    """Joins same-shaped arrays along a new axis."""
    _no_out(out, "stack")
    r = _xcs._stack(arrays, axis)
    return r if dtype is None else _xcs._cast(r, dtype)


def split(ary, indices_or_sections, axis=0):
    """Splits into equal sections (an int that must divide the axis) or at indices; a list of views."""
    return _xcs._split(ary, indices_or_sections, axis)


# ---------------------------------------------------------------- creation


def full(shape, fill_value, dtype=None):
    """A new array of shape filled with fill_value (dtype inferred from it when None)."""
    return _xcs._full(shape, fill_value, dtype)


def zeros(shape, dtype=None):
    """A new array of zeros (float64 unless dtype is given)."""
    return _xcs._full(shape, 0.0, "float64" if dtype is None else dtype)


def ones(shape, dtype=None):
    """A new array of ones (float64 unless dtype is given)."""
    return _xcs._full(shape, 1.0, "float64" if dtype is None else dtype)


def empty(shape, dtype=None):
    """Same as zeros: Arrays are immutable, so uninitialised memory could never be written —
    xcs fills it with zeros rather than expose garbage."""
    return zeros(shape, dtype)


def _like(a, fill_value, dtype, shape):
    a = asarray(a)
    return _xcs._full(a.shape if shape is None else shape, fill_value, a.dtype if dtype is None else dtype)


def full_like(a, fill_value, dtype=None, shape=None):
    """An array like a (its shape and dtype unless given) filled with fill_value."""
    return _like(a, fill_value, dtype, shape)


def zeros_like(a, dtype=None, shape=None):
    """Zeros with a's shape and dtype (unless given)."""
    return _like(a, 0, dtype, shape)


def ones_like(a, dtype=None, shape=None):
    """Ones with a's shape and dtype (unless given)."""
    return _like(a, 1, dtype, shape)


def empty_like(a, dtype=None, shape=None):
    """Same as zeros_like (see empty)."""
    return _like(a, 0, dtype, shape)


def _is_int(v):
    return isinstance(v, (int, _np.integer)) and not isinstance(v, (bool, _np.bool_))


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in [start, stop): int64 for integer arguments, else float64 (numpy's rule)."""
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if dtype is None:
        dtype = "int64" if _builtins.all(_is_int(v) for v in (start, stop, step)) else "float64"
    return _xcs._arange(start, stop, step, dtype)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """num evenly spaced samples over [start, stop] (or [start, stop) without endpoint).

    Scalar start and stop give a 1-D array (axis 0 or -1).  Array endpoints
    (broadcast together) give numpy's result: the samples along axis, by
    numpy's formula (start + i * step, or i / div * delta where a step is 0).
    The last sample is exactly stop when endpoint is set.
    """
    if _np.ndim(start) or _np.ndim(stop) or _xcs._is_traced(start) or _xcs._is_traced(stop):
        return _linspace_arrays(start, stop, num, endpoint, retstep, dtype, axis)
    if axis not in (0, -1):
        raise _xcs.XCSValueError(f"linspace: axis {axis} is out of bounds for the 1-dimensional result of "
                                 "scalar start and stop")
    r = _xcs._linspace(start, stop, num, endpoint, "float64" if dtype is None else dtype)
    if not retstep:
        return r
    div = (num - 1) if endpoint else num
    return r, ((float(stop) - float(start)) / div if div > 0 else float("nan"))


def _linspace_arrays(start, stop, num, endpoint, retstep, dtype, axis):
    """linspace of array endpoints, numpy's steps (numpy/_core/function_base.py)."""
    num = _operator_index(num, "linspace: num")
    if num < 0:
        raise _xcs.XCSValueError(f"linspace: number of samples, {num}, must be non-negative")
    start, stop = asarray(start), asarray(stop)
    dt = _np.result_type(start.dtype, stop.dtype, 0.0)  # numpy's ensure_inexact
    start, stop = astype(start, dt, copy=False), astype(stop, dt, copy=False)
    delta = subtract(stop, start)
    div = (num - 1) if endpoint else num
    y = reshape(arange(0, num, 1, dt), (-1,) + (1,) * delta.ndim)
    if div > 0:
        step = divide(delta, div)
        y = where(any(equal(step, 0)), multiply(divide(y, div), delta), multiply(y, step))
    else:
        step = _np.nan  # numpy's, a Python float
        y = multiply(y, delta)
    y = add(y, start)
    if endpoint and num > 1:
        y = concatenate([y[:-1], expand_dims(broadcast_to(stop, y.shape[1:]), 0)])
    y = moveaxis(y, 0, _axis(axis, y.ndim, "linspace"))
    if dtype is not None:
        if _np.dtype(dtype).kind in "iu":
            y = floor(y)
        y = astype(y, dtype, copy=False)
    return (y, step) if retstep else y


def _operator_index(v, what):
    try:
        return _operator.index(v)
    except TypeError:
        raise XCSTypeError(f"{what} must be an integer, got {type(v).__name__}") from None


def eye(N, M=None, k=0, dtype=None):
    """A 2-D array with ones on the k-th diagonal (float64 unless dtype is given)."""
    return _xcs._eye(N, M, k, "float64" if dtype is None else dtype)


def _check_literal(a, dtype):
    """numpy's OverflowError for Python ints out of an integer dtype's range (a scalar or in nested
    lists; xcs's conversion would wrap them)."""
    if dtype is not None and type(a) in (int, list, tuple) and _np.dtype(dtype).kind in "iu":
        _np.asarray(a, dtype=dtype)


def asarray(a, dtype=None, *, copy=None):
    """An Array from a (no copy when a is an Array or a numpy array whose layout xcs can wrap)."""
    _check_literal(a, dtype)
    return _xcs._asarray(a, dtype, copy)


def array(object, dtype=None, *, copy=True):  # noqa: A002  (numpy's name)
    """A new Array holding a copy of object's data (copy=False shares memory when possible)."""
    _check_literal(object, dtype)
    return _xcs._asarray(object, dtype, copy)


def astype(x, dtype, /, *, copy=True):
    """x converted to dtype (a copy unless copy=False and the dtype already matches)."""
    x = asarray(x)
    if not copy and x.dtype == _np.dtype(dtype):
        return x
    return _xcs._cast(x, dtype)


# ---------------------------------------------------------------- composed functions
#
# numpy functions built from the ops above, so they work eagerly and under
# jit / grad / vmap alike (each is a few traced ops, fused like any other).


class _Unsupported(XCSTypeError):
    """A call an xcs function accepts by its signature but does not compute
    (a pad mode, a quantile method, a matrix norm): numpy's own function
    runs instead, on concrete inputs (_numpy_when_unsupported for direct
    calls, ember.xcs._dispatch for numpy's); never seen by users."""


def _axis(axis, ndim, name):
    if not -ndim <= axis < ndim:
        raise _xcs.XCSValueError(f"{name}: axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def _numpy_rule(name, fn, *args):
    """fn(*args), numpy's own index arithmetic, its errors raised as the XCS classes (which
    subclass the builtins numpy raises)."""
    try:
        return fn(*args)
    except IndexError as e:
        raise _xcs.XCSIndexError(f"{name}: {e}") from None
    except ValueError as e:
        raise _xcs.XCSValueError(f"{name}: {e}") from None
    except TypeError as e:
        raise XCSTypeError(f"{name}: {e}") from None


def isnan(x, /):
    """Elementwise numpy.isnan(x): x != x (all False for integers)."""
    x = asarray(x)
    return not_equal(x, x) if _floating(x.dtype) else zeros(x.shape, bool_)


def isinf(x, /):
    """Elementwise numpy.isinf(x): |x| == inf (all False for integers)."""
    x = asarray(x)
    return equal(absolute(x), _np.inf) if _floating(x.dtype) else zeros(x.shape, bool_)


def isfinite(x, /):
    """Elementwise numpy.isfinite(x): x - x == 0 (NaN and infinities give NaN)."""
    x = asarray(x)
    return equal(subtract(x, x), 0) if _floating(x.dtype) else ones(x.shape, bool_)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, +inf -> posinf, -inf -> neginf (by default the dtype's largest finite values)."""
    x = asarray(x)
    if not _floating(x.dtype):
        return _xcs._copy(x) if copy else x
    try:
        big = float(_np.finfo(x.dtype).max)
    except ValueError:  # bfloat16
        import ml_dtypes

        big = float(ml_dtypes.finfo(x.dtype).max)
    r = where(isnan(x), nan, x)
    r = where(equal(x, _np.inf), big if posinf is None else posinf, r)
    return where(equal(x, -_np.inf), -big if neginf is None else neginf, r)


def rint(x, /):
    """Elementwise round to the nearest integer, halves to even (numpy.rint): the op
    `rint` (C's rint, CUDA's rint), whose gradient is zero; the sign of a zero
    result is x's."""
    x = asarray(x)
    if not _floating(x.dtype):  # numpy's loop for integers is float64's (bool: float16's)
        return astype(x, float16 if x.dtype == bool_ else float64)
    return _unary("rint", x)


def _power_of_ten(n):
    """10**n as numpy's round builds it (power_of_ten in its C source): exact to 1e8, then 1e9
    times ten n - 9 times, inf past the float range."""
    if n < 9:
        return 10.0 ** n
    r = 1e9
    for _ in range(n - 9):
        r *= 10.0
        if r == _np.inf:
            break
    return r


def round(a, decimals=0, out=None):  # noqa: A001  (numpy's name)
    """Rounds to the given number of decimals as numpy does: rint(a * 10**d) / 10**d
    (for d < 0: rint(a / 10**-d) * 10**-d), 10**d built as numpy builds it (NaN where it is
    inf); integers are left as they are for d >= 0, and go to the nearest multiple of 10**-d
    (halves to the even one) else, 0 where that is beyond the dtype; bools as rint for d = 0."""
    _no_out(out, "round")
    decimals = _operator.index(decimals)
    a = asarray(a)
    if a.dtype == bool_:
        if decimals != 0:
            raise _xcs.XCSTypeError("round: bool input with decimals != 0 (numpy cannot cast the product back "
                                    "to bool); cast to a float dtype first")
        return rint(a)
    if not _floating(a.dtype):
        if decimals >= 0:
            return a
        f = 10 ** -decimals  # to the nearest multiple of f, halves to the even multiple
        if f > _np.iinfo(a.dtype).max:  # every value rounds to 0
            return zeros(a.shape, a.dtype)
        q = floor_divide(a, f)
        twice = multiply(subtract(a, multiply(q, f)), 2)
        up = logical_or(greater(twice, f), logical_and(equal(twice, f), equal(mod(q, 2), 1)))
        return astype(multiply(add(q, astype(up, a.dtype)), f), a.dtype)
    if decimals == 0:
        return rint(a)
    if decimals > 0:
        f = _power_of_ten(decimals)
        return divide(rint(multiply(a, f)), f)
    f = _power_of_ten(-decimals)
    return multiply(rint(divide(a, f)), f)


around = round


def flip(m, axis=None):
    """Reverses the order of elements along axis (all axes when None); a view."""
    m = asarray(m)
    axes = range(m.ndim) if axis is None else (axis if isinstance(axis, (tuple, list)) else (axis,))
    axes = [_axis(a, m.ndim, "flip") for a in axes]
    if len(set(axes)) != len(axes):
        raise _xcs.XCSValueError("flip: repeated axis")
    key = [slice(None)] * m.ndim
    for a in axes:
        key[a] = slice(None, None, -1)
    return m[tuple(key)]


def fliplr(m):
    """Reverses the columns (axis 1); a view."""
    return flip(m, 1)


def flipud(m):
    """Reverses the rows (axis 0); a view."""
    return flip(m, 0)


def swapaxes(a, axis1, axis2):
    """Interchanges two axes; a view."""
    a = asarray(a)
    perm = list(range(a.ndim))
    i, j = _axis(axis1, a.ndim, "swapaxes"), _axis(axis2, a.ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    """Moves axes to new positions, the others keeping their order; a view."""
    a = asarray(a)
    src = [_axis(v, a.ndim, "moveaxis") for v in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [_axis(v, a.ndim, "moveaxis") for v in
           (destination if isinstance(destination, (tuple, list)) else (destination,))]
    if len(src) != len(dst):
        raise _xcs.XCSValueError("moveaxis: source and destination must have the same number of elements")
    order = [d for d in range(a.ndim) if d not in src]
    for d, s_ in sorted(zip(dst, src)):
        order.insert(d, s_)
    return transpose(a, order)


def roll(a, shift, axis=None):
    """Rolls elements along axis (the flattened array when None): two slices joined."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise _xcs.XCSValueError("roll: shift and axis must have the same number of elements")
    for sh, ax in zip(shifts, axes):
        ax = _axis(ax, a.ndim, "roll")
        n = a.shape[ax]
        k = int(sh) % n if n else 0
        if k:
            key_a, key_b = [slice(None)] * a.ndim, [slice(None)] * a.ndim
            key_a[ax], key_b[ax] = slice(n - k, None), slice(None, n - k)
            a = concatenate([a[tuple(key_a)], a[tuple(key_b)]], axis=ax)
    return a


def _tri_mask(shape, k, lower):
    rows, cols = shape[-2], shape[-1]
    d = _np.arange(cols)[None, :] - _np.arange(rows)[:, None]
    return d <= k if lower else d >= k


def tril(m, k=0):
    """The lower triangle of the last two axes (elements above the k-th diagonal zeroed); a 1-D m
    is first broadcast to a square (numpy's rule)."""
    m = asarray(m)
    if m.ndim < 1:
        raise _xcs.XCSValueError("tril: the array must have at least 1 dimension")
    return where(_tri_mask(m.shape if m.ndim > 1 else m.shape * 2, k, True), m, zeros((), m.dtype))


def triu(m, k=0):
    """The upper triangle of the last two axes (elements below the k-th diagonal zeroed); a 1-D m
    is first broadcast to a square (numpy's rule)."""
    m = asarray(m)
    if m.ndim < 1:
        raise _xcs.XCSValueError("triu: the array must have at least 1 dimension")
    return where(_tri_mask(m.shape if m.ndim > 1 else m.shape * 2, k, False), m, zeros((), m.dtype))


def outer(a, b, out=None):
    """The outer product of the flattened a and b."""
    _no_out(out, "outer")
    return multiply(expand_dims(ravel(a), 1), expand_dims(ravel(b), 0))


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The offset diagonal of the axis1 x axis2 planes, as the last axis (numpy's layout)."""
    a = asarray(a)
    if a.ndim < 2:
        raise _xcs.XCSValueError("diagonal: the array must have at least 2 dimensions")
    i, j = _axis(axis1, a.ndim, "diagonal"), _axis(axis2, a.ndim, "diagonal")
    if i == j:
        raise _xcs.XCSValueError("diagonal: axis1 and axis2 cannot be the same")
    a = moveaxis(a, (i, j), (-2, -1))
    rows, cols = a.shape[-2], a.shape[-1]
    n = _builtins.max(0, _builtins.min(rows, cols - offset) if offset >= 0 else _builtins.min(rows + offset, cols))
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    flat = reshape(a, a.shape[:-2] + (rows * cols,))
    return take(flat, (r0 + _np.arange(n)) * cols + c0 + _np.arange(n), axis=-1)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """The sum of the offset diagonal (numpy.trace)."""
    _no_out(out, "trace")
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diag(v, k=0):
    """The k-th diagonal of a 2-D array, or a 2-D array with 1-D v on its k-th diagonal."""
    v = asarray(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise _xcs.XCSValueError("diag: the input must be 1-D or 2-D")
    n = v.shape[0] + (k if k >= 0 else -k)
    pad_v = concatenate([v, zeros((n - v.shape[0],), v.dtype)])
    along = expand_dims(pad_v, 1) if k >= 0 else expand_dims(pad_v, 0)  # v[i] on row i (k >= 0), column i (k < 0)
    return where(_np.eye(n, k=k, dtype=bool), along, zeros((), v.dtype))


def repeat(a, repeats, axis=None):
    """Repeats each element (of the flattened array when axis is None) repeats times;
    repeats is an int or a concrete array of counts (a take at repeated indices)."""
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _axis(axis, a.ndim, "repeat")
    if isinstance(repeats, Array):
        repeats = _np.asarray(repeats)
    idx = _numpy_rule("repeat", _np.repeat, _np.arange(a.shape[ax]), repeats)
    return take(a, idx, axis=ax)


def tile(A, reps):
    """A repeated reps times along each axis (numpy.tile): a broadcast, then a reshape."""
    A = asarray(A)
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (int(reps),)
    d = _builtins.max(A.ndim, len(reps))
    shape = (1,) * (d - A.ndim) + tuple(A.shape)
    reps = (1,) * (d - len(reps)) + reps
    inter = reshape(A, tuple(v for s_ in shape for v in (1, s_)))
    big = broadcast_to(inter, tuple(v for r, s_ in zip(reps, shape) for v in (r, s_)))
    return reshape(big, tuple(r * s_ for r, s_ in zip(reps, shape)))


_PAD_GATHER = ("edge", "reflect", "symmetric", "wrap")  # a padded element is a copy of another
_PAD_STATS = {"maximum": "max", "minimum": "min", "mean": "mean", "median": "median"}


def _pad_pairs(v, ndim, what, dtype=None):
    """numpy.pad's per-axis (before, after) pairs of v (scalar, pair, or one pair per axis)."""
    try:
        return _np.broadcast_to(_np.asarray(v, dtype=dtype), (ndim, 2))
    except ValueError:
        raise _xcs.XCSValueError(f"pad: {what} {v!r} cannot broadcast to ({ndim}, 2)") from None


_PAD_KEYWORDS = {"constant": ("constant_values",), "linear_ramp": ("end_values",), "reflect": ("reflect_type",),
                 "symmetric": ("reflect_type",), "maximum": ("stat_length",), "minimum": ("stat_length",),
                 "mean": ("stat_length",), "median": ("stat_length",)}


def pad(array, pad_width, mode="constant", *, constant_values=None, end_values=None, reflect_type=None,
        stat_length=None):
    """numpy.pad, axis after axis as numpy (later axes pad the earlier ones' padding too):
    'constant', 'edge', 'reflect' and 'symmetric' (reflect_type 'even'), 'wrap' (a take at the
    indices numpy's own pad gives a range), 'linear_ramp', and the statistics 'maximum',
    'minimum', 'mean', 'median' (stat_length).  'empty' pads with zeros (numpy leaves the
    values undefined).  Others (a callable, reflect_type 'odd'): numpy's, on concrete arrays.
    A keyword left None is numpy's default (constant_values and end_values 0, reflect_type
    'even'); one the mode does not take raises, as numpy's."""
    a = asarray(array)
    given = {k for k, v in (("constant_values", constant_values), ("end_values", end_values),
                            ("reflect_type", reflect_type), ("stat_length", stat_length)) if v is not None}
    constant_values = 0 if constant_values is None else constant_values
    end_values = 0 if end_values is None else end_values
    reflect_type = "even" if reflect_type is None else reflect_type
    if callable(mode) or (mode in ("reflect", "symmetric") and reflect_type != "even"):
        raise _Unsupported(f"pad: mode {mode!r} with reflect_type {reflect_type!r} is not supported")
    if mode not in ("constant", "empty", "linear_ramp") + _PAD_GATHER + tuple(_PAD_STATS):
        raise _xcs.XCSValueError(f"pad: mode {mode!r} is not supported")
    extra = given - set(_PAD_KEYWORDS.get(mode, ()))
    if extra:
        raise _xcs.XCSValueError(f"pad: unsupported keyword arguments for mode '{mode}': {sorted(extra)}")
    pw = _pad_pairs(pad_width, a.ndim, "pad_width", _np.int64)
    if (pw < 0).any():
        raise _xcs.XCSValueError("pad: index can't contain negative values")
    cv = _pad_pairs(constant_values if mode == "constant" else end_values, a.ndim, "constant_values")
    if mode == "constant" and not _floating(a.dtype) and cv.dtype.kind == "f" and not _np.isfinite(cv).all():
        raise _xcs.XCSValueError(f"pad: cannot convert float {'NaN' if _np.isnan(cv).any() else 'infinity'} to "
                                 f"integer (the array is of dtype {a.dtype})")
    sl = None if stat_length is None else _pad_pairs(stat_length, a.ndim, "stat_length", _np.int64)
    for ax in range(a.ndim):
        before, after = (int(w) for w in pw[ax])
        n = a.shape[ax]
        if not before and not after:
            continue
        if mode in _PAD_GATHER:
            if n == 0:
                raise _xcs.XCSValueError(f"pad: can't extend empty axis {ax} using modes other than 'constant' "
                                         "or 'empty'")
            a = take(a, _np.pad(_np.arange(n), (before, after), mode=mode), axis=ax)
            continue
        parts = []
        for side, width in ((0, before), (1, after)):
            shape = list(a.shape)
            shape[ax] = width
            if not width:
                pass
            elif mode in ("constant", "empty"):
                parts.append(full(tuple(shape), cv[ax][side].item() if mode == "constant" else 0, a.dtype))
            elif n == 0:
                raise _xcs.XCSValueError(f"pad: can't extend empty axis {ax} using modes other than 'constant' "
                                         "or 'empty'")
            elif mode == "linear_ramp":  # numpy's linspace(end, edge, width, endpoint=False): i * step + end
                edge = _np_shape._along(a, ax, slice(0, 1) if side == 0 else slice(n - 1, n))
                i = _np.arange(width, dtype=_np.float64)
                i = (i if side == 0 else i[::-1]).reshape([-1 if d == ax else 1 for d in range(a.ndim)])
                end = cv[ax][side].item()
                step = divide(subtract(astype(edge, float64), end), float(width))
                ramp = add(multiply(i, step), end)
                if _np.dtype(a.dtype).kind in "iub":  # numpy's integer linspace floors
                    ramp = floor(ramp)
                parts.append(astype(broadcast_to(ramp, tuple(shape)), a.dtype))
            else:
                k = n if sl is None else _builtins.min(int(sl[ax][side]), n)
                if k <= 0:
                    raise _xcs.XCSValueError("pad: stat_length of 0 yields no value for padding")
                src = _np_shape._along(a, ax, slice(0, k) if side == 0 else slice(n - k, n))
                stat = globals()[_PAD_STATS[mode]](src, axis=ax, keepdims=True)
                if _np.dtype(a.dtype).kind in "iub" and mode in ("mean", "median"):
                    stat = rint(stat)  # numpy rounds a mean into an int array (half to even)
                parts.append(broadcast_to(astype(stat, a.dtype), tuple(shape)))
            if side == 0:
                parts.append(a)
        a = concatenate(parts, axis=ax) if len(parts) > 1 else parts[0]
    return a


def take_along_axis(arr, indices, axis):
    """Values of arr at indices along axis, the other axes broadcast (numpy.take_along_axis)."""
    arr = asarray(arr)
    if axis is None:
        arr, axis = ravel(arr), 0
    ax = _axis(axis, arr.ndim, "take_along_axis")
    nd = indices.ndim if isinstance(indices, Array) else _np.ndim(indices)
    if nd != arr.ndim:
        raise _xcs.XCSValueError(f"take_along_axis: indices ({nd}-D) and arr ({arr.ndim}-D) must have the same "
                                 "number of dimensions")
    key = []
    for d in range(arr.ndim):
        if d == ax:
            key.append(indices)
        else:
            shape = [1] * arr.ndim
            shape[d] = arr.shape[d]
            key.append(_np.arange(arr.shape[d]).reshape(shape))
    return arr[tuple(key)]


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Indices that sort a along axis (None: the flattened a), int64.  Always
    stable (numpy's kind='stable'; equal values keep their order, which is
    also a valid result of numpy's default kind), NaNs last."""
    if order is not None:
        raise XCSTypeError("argsort: order= (structured arrays) is not supported")
    _sort_kind(kind)
    a = asarray(a)
    if a.ndim == 0:  # numpy: [0]
        return zeros((1,), int64)
    return _xcs._argsort(a, axis)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """a sorted along axis (None: flattened), NaNs last (their bits kept),
    -0.0 before 0.0.  The values alone are sorted where the backend has a
    kernel (the CPU's radix sort); gradients flow back to where each value
    came from, through the argsort."""
    if order is not None:
        raise XCSTypeError("sort: order= (structured arrays) is not supported")
    _sort_kind(kind)
    return _xcs._sort(asarray(a), axis)


def _sort_kind(kind):
    """numpy's check of kind= (by its first letter: quick, heap, merge, stable; every one is met by
    xcs's stable sort)."""
    if kind is not None and not (isinstance(kind, str) and kind[:1].lower() in ("q", "h", "m", "s")):
        raise _xcs.XCSValueError(f"sort kind must be one of 'quick', 'heap', or 'stable' (got {kind!r})")


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The median along axis (None: of all), numpy's: the middle of the
    sorted values, or the mean of the two middle ones; NaN when a NaN is there, and (with numpy's
    RuntimeWarning) for an empty axis."""
    _no_out(out, "median")
    a = asarray(a)
    if not _floating(a.dtype):
        a = astype(a, float64)
    if axis is None:
        r = median(ravel(a), 0)
        return reshape(r, (1,) * a.ndim) if keepdims else r
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(sorted(_axis(v, a.ndim, "median") for v in axes))
    if len(axes) > 1:  # the axes moved to the end and merged
        moved = moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
        r = median(reshape(moved, moved.shape[:a.ndim - len(axes)] + (-1,)), -1)
        return expand_dims(r, axes) if keepdims else r
    ax = axes[0]
    n = a.shape[ax]
    if n == 0:  # numpy's mean of the empty middle: NaN, with its warning
        _warnings.warn("Mean of empty slice.", RuntimeWarning, stacklevel=2)
        return full(a.shape[:ax] + ((1,) if keepdims else ()) + a.shape[ax + 1:], _np.nan, a.dtype)
    s = sort(a, ax)
    lo, hi = [slice(None)] * a.ndim, [slice(None)] * a.ndim
    lo[ax], hi[ax] = slice((n - 1) // 2, (n - 1) // 2 + 1), slice(n // 2, n // 2 + 1)
    m = s[tuple(lo)] if n % 2 else divide(add(s[tuple(lo)], s[tuple(hi)]), 2)
    last = [slice(None)] * a.ndim
    last[ax] = slice(n - 1, n)
    m = where(isnan(s[tuple(last)]), s[tuple(last)], m)  # NaNs sort last: one there poisons the median
    return m if keepdims else squeeze(m, ax)


_QUANTILE_AB = {"interpolated_inverted_cdf": (0, 1), "hazen": (0.5, 0.5), "weibull": (0, 0),
                "median_unbiased": (1 / 3.0, 1 / 3.0), "normal_unbiased": (3 / 8.0, 3 / 8.0)}


def _quantile_plan(n, q, method, m=_np):
    """numpy's _quantile for n sorted values at the concrete quantiles q: (prev, next, gamma) index
    and weight arrays of q's shape (gamma None: the value at prev itself), each method's virtual
    index, gamma fix and bounds as numpy computes them.  m: the array module, numpy (n a number),
    or ember.xcs.numpy where n is an array (nanquantile: each row's count of values, in q's float
    dtype, broadcasting against q)."""
    v = None
    if method == "linear":
        v = (n - 1) * q
    elif method in _QUANTILE_AB:
        alpha, beta = _QUANTILE_AB[method]
        v = n * q + (alpha + q * (1 - alpha - beta)) - 1
    elif method == "midpoint":
        v = 0.5 * (m.floor((n - 1) * q) + m.ceil((n - 1) * q))
    elif method == "averaged_inverted_cdf":
        v = n * q - 1
    if v is None:  # the discrete methods: one order statistic
        if method == "lower":
            i = m.floor((n - 1) * q)
        elif method == "higher":
            i = m.ceil((n - 1) * q)
        elif method == "nearest":
            i = m.around((n - 1) * q)
        elif method in ("inverted_cdf", "closest_observation"):
            idx = n * q - 1 - (0.5 if method == "closest_observation" else 0)
            prev = m.floor(idx)
            g = idx - prev
            keep = (g == 0) & (m.floor(idx) % 2 == 1) if method == "closest_observation" else g == 0
            i = m.where(keep, prev, prev + 1)
        else:
            raise _xcs.XCSValueError(f"'{method}' is not a valid method. Use one of: linear, lower, higher, "
                                     "midpoint, nearest, inverted_cdf, averaged_inverted_cdf, closest_observation, "
                                     "interpolated_inverted_cdf, hazen, weibull, median_unbiased, normal_unbiased")
        return m.minimum(m.maximum(i, 0), n - 1).astype(_np.int64), None, None
    v = m.asarray(v)
    above, below = v >= n - 1, v < 0
    floor = m.floor(v)
    prev = m.where(above, n - 1, m.where(below, 0, floor))  # numpy's -1 (the last) and 0 at the bounds
    nxt = m.where(above, n - 1, m.where(below, 0, floor + 1))
    g = v - m.where(above, -1, m.where(below, 0, floor))  # numpy's gamma: from its indices, -1 included
    if method == "midpoint":
        g = m.where(v % 1 == 0, 0.0, 0.5)
    elif method == "averaged_inverted_cdf":
        g = m.where(g == 0, 0.5, 1.0)
    return prev.astype(_np.int64), nxt.astype(_np.int64), m.asarray(g).astype(v.dtype)


def _lerp(lo, hi, d, g):
    """numpy's _lerp of lo and hi (d = hi - lo) at g: two-sided, from hi where g >= 0.5, so exact at both ends."""
    return where(greater_equal(g, 0.5), subtract(hi, multiply(d, subtract(1, g))), add(lo, multiply(d, g)))


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """numpy.quantile with each of its methods (linear, the continuous Hyndman & Fan ones, midpoint,
    lower, higher, nearest, the inverted-cdf ones): the sorted values at numpy's virtual index,
    interpolated by its two-sided lerp where the method interpolates, q known (a number or an
    array, whose dims come first); NaN where a NaN is in the data."""
    _no_out(out, "quantile")
    a = asarray(a)
    # numpy computes the index in the data's float dtype when q is a Python number, else in q's
    # own float dtype (ints and lists: float64)
    if isinstance(q, (int, float)) and a.dtype in (float32, float64, float16):
        qv = _np.asarray(q, dtype=a.dtype)
    else:
        qv = _np.asarray(q)
        qv = qv if qv.dtype in (float16, float32, float64) else qv.astype(float64)
    if not _np.all((qv >= 0) & (qv <= 1)):  # NaN too
        raise _xcs.XCSValueError("Quantiles must be in the range [0, 1]")
    nd0 = a.ndim
    if axis is None:
        a, axes = ravel(a), (0,)
    else:
        axes = tuple(sorted(_axis(v, nd0, "quantile") for v in (axis if isinstance(axis, (tuple, list)) else (axis,))))
        a = moveaxis(a, axes, tuple(range(nd0 - len(axes), nd0)))
        a = reshape(a, a.shape[:nd0 - len(axes)] + (-1,))
    n = a.shape[-1]
    if n == 0:
        raise _xcs.XCSValueError("quantile of an empty axis")
    s = sort(a, -1)
    prev, nxt, gamma = _quantile_plan(n, qv, method)
    lo = take(s, prev.reshape(-1), axis=-1)  # [..., q]
    if gamma is None:
        r = lo
    else:
        hi = take(s, nxt.reshape(-1), axis=-1)
        d = subtract(hi, lo)  # numpy's lerp: the difference in the data's dtype, the rest in q's (ints: float64)
        rdt = _np.result_type(s.dtype, qv.dtype) if s.dtype != _BF16 else s.dtype
        if rdt != s.dtype:
            lo, hi, d = astype(lo, rdt), astype(hi, rdt), astype(d, rdt)
        g = _np.asarray(gamma, dtype=lo.dtype if lo.dtype != _BF16 else _np.float32).reshape(-1)
        r = _lerp(lo, hi, d, g)
    r = where(isnan(s[..., n - 1:]), s[..., n - 1:], r)
    r = moveaxis(reshape(r, r.shape[:-1] + qv.shape), tuple(range(r.ndim - 1, r.ndim - 1 + qv.ndim)),
                 tuple(range(qv.ndim)))  # the q dims first
    for d_ in range(nd0 if keepdims else 0):  # the reduced axes back, of size one
        if axis is None or d_ in axes:
            r = expand_dims(r, qv.ndim + d_)
    return r


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False):
    """numpy.percentile: quantile at q / 100, divided as numpy does (by 100 in a float data's dtype,
    the quotient an array: a Python number's takes that dtype, a numpy float's its own)."""
    a = asarray(a)
    hundred = a.dtype.type(100) if a.dtype in (float16, float32, float64) else 100
    qv = _np.asarray(_np.true_divide(q, hundred))
    if not _np.all((qv >= 0) & (qv <= 1)):
        raise _xcs.XCSValueError("Percentiles must be in the range [0, 100]")
    return quantile(a, qv, axis, out, overwrite_input, method, keepdims)


def diff(a, n=1, axis=-1):
    """The n-th discrete difference along axis (booleans: not_equal), as numpy.diff."""
    a = asarray(a)
    if n < 0:
        raise _xcs.XCSValueError(f"diff: order must be non-negative but got {n}")
    if a.ndim == 0:
        raise _xcs.XCSValueError("diff requires input that is at least one dimensional")
    ax = _axis(axis, a.ndim, "diff")
    for _ in range(n):
        hi, lo = [slice(None)] * a.ndim, [slice(None)] * a.ndim
        hi[ax], lo[ax] = slice(1, None), slice(None, -1)
        a = (not_equal if a.dtype == bool_ else subtract)(a[tuple(hi)], a[tuple(lo)])
    return a


def _weak_scalar(v):
    """True for a Python number, or a traced Array standing for one (jit traces Python numbers as
    weak values, NEP 50)."""
    return type(v) in (bool, int, float) or _xcs._is_weak(v)


def _promotion_key(v):
    """v as numpy.result_type reads it: a Python number (weak, NEP 50; read by its type, not its
    value) for Python numbers and traced weak scalars, else its dtype."""
    if type(v) in (bool, int, float):
        return type(v)(0)
    v = asarray(v)
    if _weak_scalar(v):
        return False if v.dtype == bool_ else 0 if v.dtype == int64 else 0.0
    return v.dtype


def _float_operands(*xs):
    """xs as Arrays of the float dtype numpy's float-only ufuncs (logaddexp, heaviside) compute
    them in: their common dtype (Python numbers weak) if it is a float, else float16 for bools
    and float64 for ints, the first loop of e/f/d each input casts to safely."""
    dt = _np.result_type(*(_promotion_key(v) for v in xs))
    if not _floating(dt):
        dt = _np.dtype(float16 if dt == bool_ else float64)
    return [astype(asarray(v), dt, copy=False) for v in xs]


def logaddexp(x1, x2, /):
    """log(exp(x1) + exp(x2)) without overflow, numpy's way: the larger plus
    log1p(exp(-|x1 - x2|)); equal inputs (infinities too) give x + log(2).

    The inputs are first converted to numpy's result dtype (ints to float64,
    bools to float16, a float16 with a float32 to float32); 16-bit floats are
    computed in float32 and rounded once, as numpy's loops do."""
    x1, x2 = _float_operands(x1, x2)
    dt = x1.dtype
    if dt.itemsize == 2:
        x1, x2 = astype(x1, float32), astype(x2, float32)
    t = subtract(x1, x2)
    # numpy's two branches as one, the larger plus log1p(exp(-|t|)): the same bits, and no branch
    # whose exp overflows for the gradient to meet (0 * inf gave NaN)
    pos = greater(t, 0)
    r = add(where(pos, x1, x2), log1p(exp(where(pos, negative(t), t))))
    r = where(isnan(t), t, r)
    return astype(where(equal(x1, x2), add(x1, 0.69314718055994530942), r), dt, copy=False)


def logaddexp2(x1, x2, /):
    """log2(2**x1 + 2**x2) without overflow, numpy's way (as logaddexp, in base 2)."""
    x1, x2 = _float_operands(x1, x2)
    dt = x1.dtype
    if dt.itemsize == 2:
        x1, x2 = astype(x1, float32), astype(x2, float32)
    t = subtract(x1, x2)
    pos = greater(t, 0)
    r = add(where(pos, x1, x2), divide(log1p(exp2(where(pos, negative(t), t))), 0.69314718055994530942))
    r = where(isnan(t), t, r)
    return astype(where(equal(x1, x2), add(x1, 1), r), dt, copy=False)


def fix(x, out=None):
    """Round toward zero (numpy.fix: trunc, the dtype kept)."""
    _no_out(out, "fix")
    return trunc(x)


def _to_float(x):
    """x as numpy's float ufuncs see it: ints in float64, bools in float16."""
    return x if _floating(x.dtype) else astype(x, float16 if x.dtype == bool_ else float64)


def fabs(x, /):
    """Absolute value computed in float (ints as float64, bools as float16, as numpy)."""
    return absolute(_to_float(asarray(x)))


def _scaled(x, num, den):
    """x * (num / den), the constant rounded as numpy's loop makes it: in
    float32 for float32 and the 16-bit floats (npy_deg2radf), else float64."""
    x = _to_float(asarray(x))
    if x.dtype == float64:
        return multiply(x, num / den)
    return multiply(x, float(_np.float32(num) / _np.float32(den)))


def deg2rad(x, /):
    """x * pi / 180, as numpy computes it (one multiply by the rounded constant)."""
    return _scaled(x, 3.141592653589793, 180.0)


def rad2deg(x, /):
    """x * 180 / pi, as numpy computes it."""
    return _scaled(x, 180.0, 3.141592653589793)


radians, degrees = deg2rad, rad2deg


def signbit(x, /):
    """True where the sign bit is set: negatives, -0.0 and NaNs with the bit (numpy's)."""
    x = asarray(x)
    if not _floating(x.dtype):
        return less(x, 0)
    return less(copysign(1.0, x), 0)


def fmax(x1, x2, /):
    """Elementwise maximum ignoring NaNs: a NaN loses unless both are NaN (numpy.fmax)."""
    x1, x2 = asarray(x1), asarray(x2)
    r = maximum(x1, x2)
    return where(isnan(x1), x2, where(isnan(x2), x1, r)) if _floating(r.dtype) else r


def fmin(x1, x2, /):
    """Elementwise minimum ignoring NaNs (numpy.fmin)."""
    x1, x2 = asarray(x1), asarray(x2)
    r = minimum(x1, x2)
    return where(isnan(x1), x2, where(isnan(x2), x1, r)) if _floating(r.dtype) else r


def heaviside(x1, x2, /):
    """0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0, NaN where x1 is NaN,
    in numpy's result dtype: the float dtype of x1 and x2 together (ints as
    float64, bools as float16)."""
    f1, x2 = _float_operands(x1, x2)
    r = where(less(f1, 0), 0.0, where(greater(f1, 0), 1.0, x2))
    return where(isnan(f1), f1, r)


def float_power(x1, x2, /):
    """x1 ** x2 computed in float64 (numpy.float_power)."""
    return power(astype(asarray(x1), float64), astype(asarray(x2), float64))


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0: numpy's formula (pi * where(x == 0, 1e-20, x))."""
    x = asarray(x)
    x = x if _floating(x.dtype) else astype(x, float64)  # bools too: where(x == 0, 1e-20, x) is float64
    y = multiply(3.141592653589793, where(equal(x, 0), 1.0e-20, x))
    return divide(sin(y), y)


def modf(x, /):
    """(fractional, integral) parts, both with x's sign (numpy.modf)."""
    x = _to_float(asarray(x))
    i = trunc(x)
    return copysign(where(isinf(x), 0.0, subtract(x, i)), x), i


def real(val):
    """The real part: the values themselves (xcs has no complex dtypes)."""
    return asarray(val)


def imag(val):
    """The imaginary part: zeros of val's shape and dtype."""
    return zeros_like(val)


def conjugate(x, /):
    """The complex conjugate: the values themselves (xcs has no complex dtypes)."""
    return +asarray(x)


conj = conjugate


def isreal(x):
    """True everywhere (xcs has no complex dtypes)."""
    return ones_like(x, dtype=bool_)


def iscomplex(x):
    """False everywhere (xcs has no complex dtypes)."""
    return zeros_like(x, dtype=bool_)


def iscomplexobj(x):
    """False for an Array (xcs has no complex dtypes); numpy's answer for anything else."""
    return False if isinstance(x, Array) else _np.iscomplexobj(x)


def isrealobj(x):
    """True for an Array (xcs has no complex dtypes); numpy's answer for anything else."""
    return True if isinstance(x, Array) else _np.isrealobj(x)


def real_if_close(a, tol=100):
    """a itself: xcs's dtypes are real."""
    return asarray(a)


def isposinf(x, out=None):
    """x == +inf (False for integers and bools)."""
    _no_out(out, "isposinf")
    x = asarray(x)
    return logical_and(isinf(x), greater(x, 0)) if _floating(x.dtype) else zeros(x.shape, bool_)


def isneginf(x, out=None):
    """x == -inf (False for integers and bools)."""
    _no_out(out, "isneginf")
    x = asarray(x)
    return logical_and(isinf(x), less(x, 0)) if _floating(x.dtype) else zeros(x.shape, bool_)


def copy(a, order="K", subok=False):
    """A copy of a (Arrays are immutable, so a fresh buffer only where it is concrete)."""
    a = asarray(a)
    return a if _xcs._is_traced(a) else _xcs._copy(a)


def result_type(*arrays_and_dtypes):
    """numpy.result_type with each Array read as its dtype (shapes and values play no part)."""
    return _np.result_type(*(v.dtype if isinstance(v, Array) else v for v in arrays_and_dtypes))


def tril_indices_from(arr, k=0):
    """The indices of arr's lower triangle (numpy arrays: from arr's static shape)."""
    if arr.ndim != 2:
        raise _xcs.XCSValueError("input array must be 2-d")
    return _np.tril_indices(arr.shape[-2], k=k, m=arr.shape[-1])


def triu_indices_from(arr, k=0):
    """The indices of arr's upper triangle (numpy arrays: from arr's static shape)."""
    if arr.ndim != 2:
        raise _xcs.XCSValueError("input array must be 2-d")
    return _np.triu_indices(arr.shape[-2], k=k, m=arr.shape[-1])


def diag_indices_from(arr):
    """The indices of arr's main diagonal (all its dims equal; numpy arrays)."""
    if arr.ndim < 2:
        raise _xcs.XCSValueError("input array must be at least 2-d")
    if len(set(arr.shape)) != 1:
        raise _xcs.XCSValueError("All dimensions of input must be of equal length")
    return _np.diag_indices(arr.shape[0], arr.ndim)


def angle(z, deg=False):
    """The angle of real z: pi where z is negative (or -0.0), else 0 (numpy's arctan2(0, z))."""
    a = arctan2(0.0, _to_float(asarray(z)))
    return rad2deg(a) if deg else a


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.isclose: |a - b| <= atol + rtol * |b| for finite b, or a == b."""
    a, b = asarray(a), asarray(b)
    r = logical_or(logical_and(less_equal(absolute(subtract(a, b)), add(atol, multiply(rtol, absolute(b)))),
                               isfinite(b)), equal(a, b))
    return logical_or(r, logical_and(isnan(a), isnan(b))) if equal_nan else r


def count_nonzero(a, axis=None, *, keepdims=False):
    """The number of non-zero elements along axis (int64)."""
    return sum(not_equal(asarray(a), 0), axis=axis, keepdims=keepdims)


def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """numpy.linalg.norm for vectors (ord None/2, 1, inf, -inf, 0, p) and
    matrices (None/'fro', 1, -1, inf, -inf, and 2, -2, 'nuc' from the singular values)."""
    x = asarray(x)
    if not _floating(x.dtype):
        x = astype(x, float64)
    if axis is None:
        if ord is None:
            r = sqrt(sum(multiply(x, x)))
            return reshape(r, (1,) * x.ndim) if keepdims else r
        axes = tuple(range(x.ndim))
    else:
        axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(_axis(v, x.ndim, "norm") for v in axes)
    ax = axes[0] if len(axes) == 1 else axes
    if len(axes) == 1:
        if ord is None or ord == 2:
            return sqrt(sum(multiply(x, x), axis=ax, keepdims=keepdims))
        if ord == _np.inf:
            return max(absolute(x), axis=ax, keepdims=keepdims)
        if ord == -_np.inf:
            return min(absolute(x), axis=ax, keepdims=keepdims)
        if ord == 0:
            return astype(count_nonzero(x, axis=ax, keepdims=keepdims), x.dtype)
        if ord == 1:
            return sum(absolute(x), axis=ax, keepdims=keepdims)
        if isinstance(ord, str):
            raise _xcs.XCSValueError(f"Invalid norm order '{ord}' for vectors")
        return power(sum(power(absolute(x), ord), axis=ax, keepdims=keepdims), 1.0 / ord)
    if len(axes) != 2:
        raise _xcs.XCSValueError("Improper number of dimensions to norm.")
    r_ax, c_ax = axes
    if ord is None or ord == "fro":
        return sqrt(sum(multiply(x, x), axis=axes, keepdims=keepdims))
    if ord in (1, -1, _np.inf, -_np.inf):
        along, across = (r_ax, c_ax) if ord in (1, -1) else (c_ax, r_ax)
        red = max if ord in (1, _np.inf) else min
        sums = sum(absolute(x), axis=along, keepdims=True)
        r = red(sums, axis=across, keepdims=True)
        return r if keepdims else squeeze(r, axes)
    if ord in (2, -2, "nuc"):  # from the singular values of the two axes moved last
        sv = _svdvals(moveaxis(x, (r_ax, c_ax), (-2, -1)))
        r = sum(sv, axis=-1) if ord == "nuc" else (max if ord == 2 else min)(sv, axis=-1)
        if keepdims:
            for a in sorted(axes):
                r = expand_dims(r, a)
        return r
    raise _xcs.XCSValueError(f"Invalid norm order {ord!r} for matrices")


def _solve(a, b):
    """x with a @ x = b (numpy.linalg.solve: b is a vector when 1-D, else
    [..., n, k]; batch dims broadcast).  LU with partial pivoting; an exactly
    singular a raises XCSValueError ('Singular matrix', as numpy's LinAlgError,
    also a ValueError); under jit the check is made when the program runs."""
    a, b = asarray(a), asarray(b)
    if b.ndim == 1:
        return _xcs._linalg("solve", a, expand_dims(b, -1))[..., 0]
    return _xcs._linalg("solve", a, b)


def _inv(a):
    """The inverse of each [..., n, n] matrix (solve against the identity)."""
    a = asarray(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise _xcs.XCSShapeError(f"inv: the last 2 dimensions of the array must be square (got shape {a.shape})")
    return _xcs._linalg("solve", a, eye(a.shape[-1], dtype=a.dtype if _floating(a.dtype) else float64))


def _cholesky(a, /, *, upper=False):
    """The lower Cholesky factor of each [..., n, n] matrix, from its lower
    triangle (numpy's); upper=True gives its transpose.  Not positive
    definite: XCSValueError."""
    L = _xcs._linalg("cholesky", asarray(a))
    return swapaxes(L, -1, -2) if upper else L


# numpy.linalg's result tuples
SlogdetResult = _collections.namedtuple("SlogdetResult", "sign logabsdet")
EighResult = _collections.namedtuple("EighResult", "eigenvalues eigenvectors")
SVDResult = _collections.namedtuple("SVDResult", "U S Vh")


def _slogdet(a):
    """(sign, log|det|) of each [..., n, n] matrix: numpy's SlogdetResult; a
    singular one gives (0, -inf)."""
    r = _xcs._linalg("slogdet", asarray(a))
    return SlogdetResult(r[..., 0], r[..., 1])


def _det(a):
    """The determinant of each [..., n, n] matrix: sign * exp(log|det|) of the LU
    factors (numpy multiplies them: the last bits can differ)."""
    r = _xcs._linalg("slogdet", asarray(a))
    return multiply(r[..., 0], exp(r[..., 1]))


def _eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors (columns) of each symmetric [..., n, n] matrix, from
    its lower (UPLO='L') or upper triangle: numpy's EighResult.  Cyclic Jacobi rotations; the
    vectors' signs may differ from LAPACK's.  Gradients as JAX's (distinct eigenvalues)."""
    a = asarray(a)
    if UPLO not in ("L", "U"):
        raise _xcs.XCSValueError("UPLO argument must be 'L' or 'U'")
    r = _xcs._linalg("eigh", swapaxes(a, -1, -2) if UPLO == "U" and a.ndim >= 2 else a)
    return EighResult(r[..., 0, :], r[..., 1:, :])


def _eigvalsh(a, UPLO="L"):
    """The eigenvalues (ascending) of each symmetric [..., n, n] matrix, without the vectors
    (LAPACK's syevd, jobz='N', or Jacobi rotations; see eigh).  Gradients as eigh's."""
    a = asarray(a)
    if UPLO not in ("L", "U"):
        raise _xcs.XCSValueError("UPLO argument must be 'L' or 'U'")
    return _xcs._linalg("eigvalsh", swapaxes(a, -1, -2) if UPLO == "U" and a.ndim >= 2 else a)


def _svd_packed(a):
    a = asarray(a)
    r = _xcs._linalg("svd", a)
    m = a.shape[-2]
    return r[..., :m, :], r[..., m, :], r[..., m + 1:, :]


def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """U, S (descending), Vh of each [..., m, n] matrix by one-sided Jacobi rotations: numpy's
    SVDResult (S alone when compute_uv=False).  full_matrices=True is computed for square
    matrices only (for others numpy's runs on concrete arrays).  Signs may differ from LAPACK's."""
    a = asarray(a)
    if a.ndim < 2:
        raise _xcs.XCSShapeError(f"svd: {a.ndim}-dimensional array given; the array must be at least "
                                 "two-dimensional")
    if full_matrices and compute_uv and a.shape[-1] != a.shape[-2]:
        raise _Unsupported("svd: full_matrices=True of a non-square matrix is not supported (pass "
                           "full_matrices=False)")
    if not compute_uv:
        return _svdvals(a)
    u, sv, v = _svd_packed(a)
    return SVDResult(u, sv, swapaxes(v, -1, -2))


def _svdvals(x, /):
    """The singular values (descending) of each [..., m, n] matrix, without the vectors (LAPACK's
    gesdd, jobz='N', or Jacobi rotations).  Gradients as svd's (U diag(g) V^T)."""
    x = asarray(x)
    if x.ndim < 2:
        raise _xcs.XCSShapeError(f"svdvals: {x.ndim}-dimensional array given; the array must be at least "
                                 "two-dimensional")
    return _xcs._linalg("svdvals", x)


QRResult = _collections.namedtuple("QRResult", "Q R")


def _qr(a, mode="reduced"):
    """Q (orthonormal columns) and R (upper triangular) of each [..., m, n] matrix by Householder
    reflections with LAPACK's signs: numpy's QRResult (mode 'reduced'), R alone ('r'), or for m <= n
    also 'complete'.  Other modes ('raw', 'complete' of a tall matrix) run numpy's on concrete arrays."""
    a = asarray(a)
    if a.ndim < 2:
        raise _xcs.XCSShapeError(f"qr: {a.ndim}-dimensional array given; the array must be at least two-dimensional")
    m, n = a.shape[-2], a.shape[-1]
    if mode not in ("reduced", "r", "complete") or (mode == "complete" and m > n):
        raise _Unsupported(f"qr: mode={mode!r} is not supported for a {m} x {n} matrix")
    r = _xcs._linalg("qr", a)
    R = swapaxes(r[..., m:, :], -1, -2)
    return R if mode == "r" else QRResult(r[..., :m, :], R)


def _eps(dt):
    """The machine epsilon the rank and pseudo-inverse cutoffs use: float64's or float32's."""
    return _np.finfo(_np.float64 if dt == float64 else _np.float32).eps


def _pinv_of(u, sv, v, cutoff):
    """The pseudo-inverse v diag(1 / s) u^T from an SVD, singular values at most cutoff * the
    largest counting as zero; and which ones it kept."""
    big = greater(sv, multiply(max(sv, axis=-1, keepdims=True), cutoff))
    inv = where(big, divide(1.0, where(big, sv, 1.0)), 0.0)
    return matmul(multiply(v, expand_dims(inv, -2)), swapaxes(u, -1, -2)), big


def _lstsq(a, b, rcond=None):
    """numpy.linalg.lstsq through the pseudo-inverse: (x, residuals, rank, s).  x = pinv(a, rcond) @ b
    (rcond None: max(m, n) * eps, as numpy 2); residuals: the squared column norms of b - a x when
    m > n (numpy returns them only when a has full rank: on concrete arrays so does xcs; under jit
    they are always there); rank: an int32 Array (numpy's dtype); s: the singular values.  One SVD
    serves all four."""
    a, b = asarray(a), asarray(b)
    if a.ndim != 2:
        raise _xcs.XCSShapeError(f"lstsq: a must be 2-dimensional, got {a.ndim} dimensions")
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise _xcs.XCSShapeError(f"lstsq: b must be [{a.shape[0]}] or [{a.shape[0]}, k], got {b.shape}")
    m, n = a.shape
    if not _floating(a.dtype):
        a = astype(a, float64)
    u, sv, v = _svd_packed(a)
    p, kept = _pinv_of(u, sv, v, _builtins.max(m, n) * _eps(a.dtype) if rcond is None else rcond)
    x = matmul(p, b)
    rank = astype(count_nonzero(kept, axis=-1), int32)
    res = subtract(b, matmul(a, x))
    resid = sum(multiply(res, res), axis=0)
    if b.ndim == 1:
        resid = reshape(resid, (1,))
    if m <= n or (not _xcs._is_traced(rank) and int(_np.asarray(rank)) < n):
        resid = zeros((0,), dtype=x.dtype)
    return x, resid, rank, sv


def _pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """The Moore-Penrose pseudo-inverse from the SVD: singular values at most rtol * the largest
    (default max(m, n) * eps) count as zero, as numpy's; an empty matrix gives an empty one of the
    transposed shape (in a's dtype, as numpy's)."""
    a = asarray(a)
    if a.ndim >= 2 and 0 in a.shape[-2:]:
        return zeros(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype)
    if not _floating(a.dtype):
        a = astype(a, float64)
    cutoff = rtol if rtol is not None else rcond
    if cutoff is None:
        cutoff = _builtins.max(a.shape[-2:]) * _eps(a.dtype)
    return _pinv_of(*_svd_packed(a), cutoff)[0]


def _tensorinv(a, ind=2):
    """numpy.linalg.tensorinv: the inverse of a read as a (prod(a.shape[:ind]) x
    prod(a.shape[ind:])) matrix, shaped a.shape[ind:] + a.shape[:ind]."""
    a = asarray(a)
    if not isinstance(ind, int) or isinstance(ind, bool) or ind <= 0:
        raise _xcs.XCSValueError("tensorinv: Invalid ind argument.")
    rows = 1
    for k in a.shape[ind:]:
        rows *= k
    return reshape(_inv(reshape(a, (rows, -1))), a.shape[ind:] + a.shape[:ind])


def _tensorsolve(a, b, axes=None):
    """numpy.linalg.tensorsolve: x with tensordot(a, x, x.ndim) == b (axes: a's
    axes moved to the end first), through one solve of the square matrix a
    makes when flattened."""
    a, b = asarray(a), asarray(b)
    an = a.ndim
    if axes is not None:
        order = [k for k in range(an) if k not in [_axis(k, an, "tensorsolve") for k in axes]]
        a = transpose(a, order + [_axis(k, an, "tensorsolve") for k in axes])
    rest = a.shape[b.ndim:] if b.ndim <= an else None
    n = 1
    for k in rest or ():
        n *= k
    if rest is None or a.size != n * n:
        raise _xcs.XCSValueError("tensorsolve: Input arrays must satisfy the requirement "
                                 "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    return reshape(_solve(reshape(a, (n, n)), ravel(b)), rest)


def _matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """The number of singular values above tol (default: the largest * max(m, n) * eps), int64."""
    A = asarray(A)
    if A.ndim < 2:
        return astype(not_equal(A, 0).any() if A.ndim else not_equal(A, 0), int64)
    sv = _svdvals(A if _floating(A.dtype) else astype(A, float64))
    if tol is None:
        tol = multiply(max(sv, axis=-1, keepdims=True),
                       rtol if rtol is not None else _builtins.max(A.shape[-2:]) * _eps(sv.dtype))
    else:
        tol = expand_dims(asarray(tol), -1)
    return count_nonzero(greater(sv, tol), axis=-1)


def _cond(x, p=None):
    """The condition number of each [..., m, n] matrix: s_max / s_min for p None, 2 (-2: the
    inverse), else norm(x, p) * norm(inv(x), p) as numpy."""
    x = asarray(x)
    if p in (None, 2, -2):
        sv = _svdvals(x)
        r = divide(max(sv, axis=-1), min(sv, axis=-1))
        return divide(1.0, r) if p == -2 else r
    return multiply(_norm(x, p, axis=(-2, -1)), _norm(_inv(x), p, axis=(-2, -1)))


def _matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    """numpy.linalg.matrix_norm: norm over the last two axes."""
    return _norm(x, ord, axis=(-2, -1), keepdims=keepdims)


def _vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    """numpy.linalg.vector_norm: a vector norm over axis (None: every element, flattened)."""
    x = asarray(x)
    if axis is None:
        r = _norm(ravel(x), ord, axis=0)
        return reshape(r, (1,) * x.ndim) if keepdims else r
    if isinstance(axis, (tuple, list)) and len(axis) > 1:  # several axes: flattened together
        axes = tuple(_axis(a, x.ndim, "vector_norm") for a in axis)
        rest = tuple(d for d in range(x.ndim) if d not in axes)
        y = reshape(transpose(x, rest + axes), tuple(x.shape[d] for d in rest) + (-1,))
        r = _norm(y, ord, axis=-1)
        if keepdims:
            for a in sorted(axes):
                r = expand_dims(r, a)
        return r
    return _norm(x, ord, axis=axis, keepdims=keepdims)


def _vecdot(x1, x2, /, *, axis=-1):
    """sum(x1 * x2, axis) (real dtypes: numpy.linalg.vecdot)."""
    return sum(multiply(asarray(x1), asarray(x2)), axis=axis)


def _linalg_diagonal(x, /, *, offset=0):
    """The diagonals of the last two axes (numpy.linalg.diagonal)."""
    return diagonal(x, offset, -2, -1)


def _linalg_trace(x, /, *, offset=0, dtype=None):
    """The traces of the last two axes (numpy.linalg.trace)."""
    return trace(x, offset, -2, -1, dtype=dtype)


def _linalg_cross(x1, x2, /, *, axis=-1):
    """numpy.linalg.cross: 3-vectors along axis."""
    return cross(x1, x2, axis=axis)  # noqa: F821  (from _np_shape, imported below)


def _linalg_tensordot(x1, x2, /, *, axes=2):
    """numpy.linalg.tensordot."""
    return tensordot(x1, x2, axes)  # noqa: F821  (from _np_shape, imported below)


def _linalg_outer(x1, x2, /):
    """The outer product of two 1-D arrays (numpy.linalg.outer)."""
    return outer(x1, x2)


def _matrix_transpose(x, /):
    """The last two axes swapped."""
    return swapaxes(x, -1, -2)


matrix_transpose = _matrix_transpose


def _to_device(x, device, /, *, stream=None):
    """Array.to_device (the array API): ember.xcs.device_put(x, device); stream must be None."""
    if stream is not None:
        raise _xcs.XCSValueError("to_device: stream must be None (xcs orders its own streams)")
    from ember.xcs._device import device_put
    return device_put(x, device)


class linalg:  # noqa: N801  (numpy's name: ember.xcs.numpy.linalg.norm)
    """The numpy.linalg functions xcs computes."""

    norm = staticmethod(_norm)
    solve = staticmethod(_solve)
    inv = staticmethod(_inv)
    cholesky = staticmethod(_cholesky)
    slogdet = staticmethod(_slogdet)
    det = staticmethod(_det)
    eigh = staticmethod(_eigh)
    eigvalsh = staticmethod(_eigvalsh)
    svd = staticmethod(_svd)
    svdvals = staticmethod(_svdvals)
    pinv = staticmethod(_pinv)
    tensorinv = staticmethod(_tensorinv)
    tensorsolve = staticmethod(_tensorsolve)
    matrix_rank = staticmethod(_matrix_rank)
    qr = staticmethod(_qr)
    lstsq = staticmethod(_lstsq)
    cond = staticmethod(_cond)
    matrix_norm = staticmethod(_matrix_norm)
    vector_norm = staticmethod(_vector_norm)
    vecdot = staticmethod(_vecdot)
    diagonal = staticmethod(_linalg_diagonal)
    trace = staticmethod(_linalg_trace)
    cross = staticmethod(_linalg_cross)
    tensordot = staticmethod(_linalg_tensordot)
    outer = staticmethod(_linalg_outer)
    matrix_transpose = staticmethod(_matrix_transpose)
    matmul = staticmethod(matmul)


def _scan_axis(a, axis, op, identity, name):
    """Inclusive prefix op along axis: log2(n) doubling steps (a[i] op= a[i - 2^s])."""
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    ax = _axis(axis, a.ndim, name)
    n, step = a.shape[ax], 1
    while step < n:
        shape = list(a.shape)
        shape[ax] = step
        body = [slice(None)] * a.ndim
        body[ax] = slice(None, n - step)
        shifted = concatenate([full(tuple(shape), identity, a.dtype), a[tuple(body)]], axis=ax)
        a = op(a, shifted)
        step *= 2
    return a


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum (integers and bools as int64, like numpy): one op summing each row in order,
    numpy's add.accumulate bits on the CPU (a device without the kernel: doubling steps, the last
    bits may differ).  16-bit floats: doubling steps in their storage dtype."""
    _no_out(out, "cumsum")
    a = asarray(a)
    if a.ndim == 0 and axis is not None:  # numpy: a 0-d array is cumulated as one element
        a = ravel(a)
    if dtype is None and not _floating(a.dtype):
        dtype = int64
    a = a if dtype is None else astype(a, dtype)
    if a.dtype in (float16, _BF16) or a.dtype == bool_:
        return _scan_axis(a, axis, add, 0, "cumsum")
    if axis is None:
        a, axis = ravel(a), 0
    return _xcs._cumsum(a, axis)


def cumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product (integers and bools as int64), by doubling steps: the products are grouped
    otherwise than numpy's running one, so the last bits, and where a product overflows to inf or
    underflows to 0 on the way, can differ (numpy's [1e30, 1e30, 1e-30] in float32 ends at inf,
    xcs's at 1e30)."""
    _no_out(out, "cumprod")
    a = asarray(a)
    if a.ndim == 0 and axis is not None:  # numpy: a 0-d array is cumulated as one element
        a = ravel(a)
    if dtype is None and not _floating(a.dtype):
        dtype = int64
    return _scan_axis(a if dtype is None else astype(a, dtype), axis, multiply, 1, "cumprod")


def ndim(a):
    """The number of dimensions of a (static: known while tracing)."""
    return a.ndim if isinstance(a, Array) else _np.ndim(a)


def shape(a):
    """The shape of a (static: known while tracing)."""
    return tuple(a.shape) if isinstance(a, Array) else _np.shape(a)


def size(a, axis=None):
    """The number of elements of a, or its length along axis (static: known while tracing)."""
    if not isinstance(a, Array):
        return _np.size(a, axis)
    if axis is None:
        return int(_np.prod(a.shape, dtype=_np.int64))
    return a.shape[_axis(axis, a.ndim, "size")]


def _cumulative(x, axis, dtype, include_initial, fn, identity, name):
    """numpy 2's cumulative_sum / cumulative_prod: fn along axis (required past 1-D), with the
    identity first when include_initial."""
    x = asarray(x)
    if x.ndim == 0:
        raise _xcs.XCSValueError(f"{name}: the input must have at least one dimension (got a 0-d array)")
    if axis is None:
        if x.ndim > 1:
            raise _xcs.XCSValueError("For arrays which have more than one dimension ``axis`` argument is required.")
        axis = 0
    ax = _axis(axis, x.ndim, name)
    r = fn(x, axis=ax, dtype=dtype)
    if not include_initial:
        return r
    shape = list(r.shape)
    shape[ax] = 1
    return concatenate([full(tuple(shape), identity, r.dtype), r], axis=ax)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """numpy.cumulative_sum: cumsum along axis (required for more than one dimension), a leading 0
    when include_initial."""
    return _cumulative(x, axis, dtype, include_initial, cumsum, 0, "cumulative_sum")


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """numpy.cumulative_prod: cumprod along axis (required for more than one dimension), a leading 1
    when include_initial."""
    return _cumulative(x, axis, dtype, include_initial, cumprod, 1, "cumulative_prod")


def matvec(x1, x2, /):
    """numpy.matvec: the matrix-vector product over the last two axes of x1 and the last of x2,
    the leading axes broadcast ((m, n), (n) -> (m))."""
    x1, x2 = asarray(x1), asarray(x2)
    if x1.ndim < 2 or x2.ndim < 1:
        raise _xcs.XCSValueError("matvec: x1 must be at least 2-D and x2 at least 1-D")
    return squeeze(matmul(x1, expand_dims(x2, -1)), -1)


def vecmat(x1, x2, /):
    """numpy.vecmat: the vector-matrix product over the last axis of x1 and the last two of x2
    ((n), (n, m) -> (m)); real dtypes, so no conjugation."""
    x1, x2 = asarray(x1), asarray(x2)
    if x1.ndim < 1 or x2.ndim < 2:
        raise _xcs.XCSValueError("vecmat: x1 must be at least 1-D and x2 at least 2-D")
    return squeeze(matmul(expand_dims(x1, -2), x2), -2)


# ---------------------------------------------------------------- themed modules
#
# More numpy functions, composed of the ones above (ember/xcs/_np_*.py).

from ember.xcs import _np_shape, _np_stats, _np_ufuncs  # noqa: E402,F401
from ember.xcs._at import at as _array_at  # noqa: E402,F401  (Array.at)
from ember.xcs._np_shape import *  # noqa: E402,F401,F403
from ember.xcs._np_stats import *  # noqa: E402,F401,F403
from ember.xcs._np_ufuncs import *  # noqa: E402,F401,F403

for _k, _v in _np_shape.LINALG.items():
    setattr(linalg, _k, staticmethod(_v))


def _numpy_when_unsupported(fn, numpy_fn):
    """fn, except where it declines a case (_Unsupported: a pad mode, a traced argument that must be
    known): numpy_fn then runs on concrete inputs (its array result an Array) and traced ones raise
    XCSTracerError saying why, as numpy's own function does through __array_function__."""

    @_functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _Unsupported as e:
            from ember.xcs import _dispatch  # noqa: PLC0415  (it imports this module)

            return _dispatch._numpy_fallback(numpy_fn, args, kwargs, str(e))

    return call


# the functions that decline some cases (the others compute every case they accept)
for _name in ("pad", "einsum", "reshape", "ravel", "linalg.svd", "linalg.qr") + _np_shape.NUMPY_FUNCTIONS + \
        _np_stats.NUMPY_FUNCTIONS:
    _owner, _, _attr = _name.rpartition(".")
    _np_fn = getattr(getattr(_np, _owner) if _owner else _np, _attr, None)
    if _np_fn is not None:  # names of numpy versions other than this one are left as they are
        _fn = getattr(linalg if _owner else _sys.modules[__name__], _attr)
        _wrapped = _numpy_when_unsupported(_fn, _np_fn)
        if _owner:
            setattr(linalg, _attr, staticmethod(_wrapped))
        else:
            globals()[_attr] = _wrapped

__all__ = [n for n in dir() if not n.startswith("_") and n not in ("Array", "XCSTypeError")]
