"""numpy protocol dispatch for ``Array`` (NEP 13 ``__array_ufunc__``, NEP 18 ``__array_function__``).

``Array.__array_ufunc__`` / ``__array_function__`` are C methods that forward
to :func:`array_ufunc` / :func:`array_function` here; importing ``ember.xcs``
registers them with ``_xcs._set_dispatch``.

* numpy ufuncs and functions listed in the tables below run on xcs
  (``np.tanh(x)`` -> ``xnp.tanh(x)``), returning ``Array``.
* ``ufunc.reduce`` of add/multiply/maximum/minimum/logical_and/logical_or maps
  to sum/prod/max/min/all/any.
* Anything else — another ufunc method, a numpy function xcs does not have,
  keywords xcs cannot honour (``out=``, ``where=``, ``casting=``, ...) — falls
  back to numpy on inputs converted with ``np.asarray`` (zero-copy, recursively
  inside lists and tuples); array results (ndarray or numpy scalar of a dtype
  xcs has) come back as ``Array``, anything else is returned as numpy made it.
"""

import inspect

import numpy as np

from ember.xcs import _np_shape, _np_stats, _np_ufuncs, _xcs
from ember.xcs import numpy as xnp
from ember.xcs._xcs import Array, XCSTypeError

# ---------------------------------------------------------------- tables

_UFUNC_CALL = {
    np.add: xnp.add,
    np.subtract: xnp.subtract,
    np.multiply: xnp.multiply,
    np.divide: xnp.divide,  # np.true_divide is the same object
    np.floor_divide: xnp.floor_divide,
    np.remainder: xnp.remainder,  # np.mod is the same object
    np.power: xnp.power,
    np.maximum: xnp.maximum,
    np.minimum: xnp.minimum,
    np.equal: xnp.equal,
    np.not_equal: xnp.not_equal,
    np.less: xnp.less,
    np.less_equal: xnp.less_equal,
    np.greater: xnp.greater,
    np.greater_equal: xnp.greater_equal,
    np.logical_and: xnp.logical_and,
    np.logical_or: xnp.logical_or,
    np.logical_xor: xnp.logical_xor,
    np.bitwise_and: xnp.bitwise_and,
    np.bitwise_or: xnp.bitwise_or,
    np.bitwise_xor: xnp.bitwise_xor,
    np.negative: xnp.negative,
    np.positive: xnp.positive,
    np.absolute: xnp.absolute,
    np.exp: xnp.exp,
    np.log: xnp.log,
    np.log1p: xnp.log1p,
    np.expm1: xnp.expm1,
    np.sqrt: xnp.sqrt,
    np.sin: xnp.sin,
    np.cos: xnp.cos,
    np.tanh: xnp.tanh,
    np.floor: xnp.floor,
    np.ceil: xnp.ceil,
    np.sign: xnp.sign,
    np.logical_not: xnp.logical_not,
    np.invert: xnp.invert,  # np.bitwise_not is the same object
    np.square: xnp.square,
    np.reciprocal: xnp.reciprocal,
    np.matmul: xnp.matmul,
}

_UFUNC_REDUCE = {
    np.add: xnp.sum,
    np.multiply: xnp.prod,
    np.maximum: xnp.max,
    np.minimum: xnp.min,
    np.logical_and: xnp.all,
    np.logical_or: xnp.any,
}

_FUNCTIONS = {
    np.sum: xnp.sum,
    np.prod: xnp.prod,
    np.mean: xnp.mean,
    np.max: xnp.max,
    np.amax: xnp.max,
    np.min: xnp.min,
    np.amin: xnp.min,
    np.all: xnp.all,
    np.any: xnp.any,
    np.argmax: xnp.argmax,
    np.argmin: xnp.argmin,
    np.var: xnp.var,
    np.std: xnp.std,
    np.dot: xnp.dot,
    np.einsum: xnp.einsum,
    np.where: xnp.where,
    np.clip: xnp.clip,
    np.reshape: xnp.reshape,
    np.transpose: xnp.transpose,
    np.squeeze: xnp.squeeze,
    np.expand_dims: xnp.expand_dims,
    np.broadcast_to: xnp.broadcast_to,
    np.ravel: xnp.ravel,
    np.take: xnp.take,
    np.concatenate: xnp.concatenate,
    np.stack: xnp.stack,
    np.split: xnp.split,
    np.zeros_like: xnp.zeros_like,
    np.ones_like: xnp.ones_like,
    np.full_like: xnp.full_like,
    np.empty_like: xnp.empty_like,
}
for _name in ("nan_to_num", "round", "around", "flip", "fliplr", "flipud", "swapaxes", "moveaxis", "roll", "tril",
              "triu", "outer", "diagonal", "trace", "diag", "repeat", "tile", "pad", "take_along_axis", "cumsum",
              "cumprod", "argsort", "sort", "median", "quantile", "percentile", "diff", "isclose", "count_nonzero",
              "ndim", "shape", "size", "iscomplexobj", "isrealobj", "real_if_close", "isposinf", "isneginf", "copy",
              "result_type", "tril_indices_from", "triu_indices_from", "diag_indices_from"):
    _FUNCTIONS[getattr(np, _name)] = getattr(xnp, _name)
for _name in ("isnan", "isinf", "isfinite", "rint", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
              "arccosh", "arctanh", "log2", "log10", "exp2", "arctan2", "hypot", "logaddexp", "logaddexp2", "cbrt",
              "trunc", "fmod", "copysign", "fabs", "deg2rad", "rad2deg", "signbit", "fmax", "fmin", "heaviside",
              "float_power", "modf", "conjugate", "radians", "degrees"):
    _UFUNC_CALL[getattr(np, _name)] = getattr(xnp, _name)
for _name in ("fix", "sinc", "real", "imag", "isreal", "iscomplex", "angle"):
    _FUNCTIONS[getattr(np, _name)] = getattr(xnp, _name)
for _name in [n for n in vars(xnp.linalg) if not n.startswith("_")]:  # every function of ember.xcs.numpy.linalg
    if hasattr(np.linalg, _name):  # svdvals: numpy >= 2.0
        _FUNCTIONS[getattr(np.linalg, _name)] = getattr(xnp.linalg, _name)
for _name in ("permute_dims", "astype", "matrix_transpose", "cumulative_sum", "cumulative_prod"):  # numpy >= 2.0 / 2.1
    if hasattr(np, _name):
        _FUNCTIONS[getattr(np, _name)] = getattr(xnp, _name)
for _name in ("matvec", "vecmat"):  # ufuncs of numpy >= 2.2
    if isinstance(getattr(np, _name, None), np.ufunc):
        _UFUNC_CALL[getattr(np, _name)] = getattr(xnp, _name)


def _dotted(root, name):
    """root.a.b for name "a.b" (None when numpy lacks it)."""
    for part in name.split("."):
        root = getattr(root, part, None)
    return root


for _mod in (_np_shape, _np_stats, _np_ufuncs):  # the themed modules list what numpy dispatches to them
    for _name in _mod.NUMPY_FUNCTIONS:
        if _dotted(np, _name) is not None:
            _FUNCTIONS[_dotted(np, _name)] = _dotted(xnp, _name)
for _name in _np_ufuncs.NUMPY_UFUNCS:  # numpy >= 2.0 / 2.1 names skipped where numpy lacks them
    if isinstance(getattr(np, _name, None), np.ufunc):
        _UFUNC_CALL[getattr(np, _name)] = getattr(xnp, _name)


def _signature_facts(fn):
    """(positional names, positional-only count, required count, keyword-only names, takes *args)."""
    pos, posonly, req, kwonly, varpos = [], 0, 0, set(), False
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            pos.append(p.name)
            posonly += p.kind == p.POSITIONAL_ONLY
            req += p.default is p.empty
        elif p.kind == p.KEYWORD_ONLY:
            kwonly.add(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            varpos = True
    return pos, posonly, req, frozenset(kwonly), varpos


_FACTS = {impl: _signature_facts(impl) for impl in set(_FUNCTIONS.values())}


def _accepts(impl, args, kwargs):
    """True when impl can take this call as numpy received it (else numpy runs it).

    Equivalent to inspect.signature(impl).bind(*args, **kwargs) succeeding for
    our functions (no **kwargs, required parameters first), at a tenth of the cost.
    """
    pos, posonly, req, kwonly, varpos = _FACTS[impl]
    n = len(args)
    if n > len(pos) and not varpos:
        return False
    if kwargs:
        if kwargs.get("out") is not None:
            return False
        for k in kwargs:
            if k in kwonly:
                continue
            try:
                i = pos.index(k)
            except ValueError:
                return False
            if i < n or i < posonly:
                return False
    for i in range(n, req):
        if i < posonly or pos[i] not in kwargs:
            return False
    return True


def _accumulator(ufunc):
    """ufunc.accumulate(a, axis, dtype) as an inclusive scan: add / multiply as cumsum / cumprod
    (numpy's dtypes), maximum / minimum and the logical ones in a's dtype (doubling steps)."""
    if ufunc is np.add:
        return xnp.cumsum
    if ufunc is np.multiply:
        return xnp.cumprod

    def scan(a, axis=0, dtype=None):
        a = xnp.asarray(a)
        if dtype is not None:
            a = xnp.astype(a, dtype)
        if ufunc in (np.logical_and, np.logical_or):
            a = xnp.astype(a, xnp.bool_, copy=False)
            return xnp._scan_axis(a, axis, _UFUNC_CALL[ufunc], ufunc is np.logical_and, ufunc.__name__)
        dt = np.dtype(a.dtype)
        big = np.inf if dt.kind == "f" else True if dt.kind == "b" else np.iinfo(dt).max
        low = -np.inf if dt.kind == "f" else False if dt.kind == "b" else np.iinfo(dt).min
        return xnp._scan_axis(a, axis, _UFUNC_CALL[ufunc], low if ufunc is np.maximum else big, ufunc.__name__)

    return scan if ufunc in (np.maximum, np.minimum, np.logical_and, np.logical_or) else None


def _outer(impl, a, b):
    """ufunc.outer(a, b): impl of a (with b.ndim new trailing axes) and b: a.shape + b.shape."""
    a, b = xnp.asarray(a), xnp.asarray(b)
    return impl(xnp.reshape(a, a.shape + (1,) * b.ndim), b)


# ---------------------------------------------------------------- fallback


def _to_numpy(x):
    if isinstance(x, Array):
        return np.asarray(x)
    if type(x) is list:
        return [_to_numpy(v) for v in x]
    if type(x) is tuple:
        return tuple(_to_numpy(v) for v in x)
    return x


def _wrap(r):
    if isinstance(r, (np.ndarray, np.generic)):
        try:
            return _xcs._asarray(r)
        except XCSTypeError:  # complex, strings, objects: numpy's result as is
            return r
    if isinstance(r, tuple):  # numpy's named results (QRResult, ...) keep their type
        vals = [_wrap(v) for v in r]
        return type(r)(*vals) if hasattr(r, "_fields") else tuple(vals)
    if type(r) is list:
        return [_wrap(v) for v in r]
    return r


def _name_of(fn):
    """numpy's name for fn: a ufunc's method as 'ldexp' (__call__) or 'add.at'."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc):
        return owner.__name__ if fn.__name__ == "__call__" else f"{owner.__name__}.{fn.__name__}"
    return str(getattr(fn, "__name__", fn))


def _check_untraced(fn, objs, why=None):
    for x in objs:
        if isinstance(x, Array):
            _xcs._check_concrete(x, f"as an input of numpy {_name_of(fn)}, which xcs does not "
                                    + (f"compute here ({why})" if why else
                                       "implement (numpy would compute it on the data)"))
        elif type(x) in (list, tuple):
            _check_untraced(fn, x, why)


def _numpy_fallback(fn, args, kwargs, why=None):
    """numpy's fn on the inputs as numpy arrays; why: the reason xcs's own declined (its message)."""
    _check_untraced(fn, args, why)
    _check_untraced(fn, kwargs.values(), why)
    r = fn(*_to_numpy(tuple(args)), **{k: _to_numpy(v) for k, v in kwargs.items()})
    # with out=, numpy returns the caller's own output array(s): hand them back as they are
    return r if kwargs.get("out") is not None else _wrap(r)


def _foreign(objs):
    """True when an operand is another library's array that overrides numpy too."""
    for x in objs:
        if isinstance(x, (Array, np.ndarray, np.generic)):
            continue
        if getattr(type(x), "__array_ufunc__", None) is not None:
            return True
    return False


# ---------------------------------------------------------------- hooks


def array_ufunc(ufunc, method, *inputs, **kwargs):
    """Implements Array.__array_ufunc__ (see the module docstring)."""
    out = kwargs.get("out")
    if _foreign(inputs) or (out is not None and _foreign(out)):
        return NotImplemented
    if out is not None and all(o is None for o in out):
        kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    why = None
    if method == "__call__" and not kwargs and len(inputs) == ufunc.nin:
        impl = _UFUNC_CALL.get(ufunc)
        if impl is not None:
            try:
                return impl(*inputs)
            except xnp._Unsupported as e:  # a case xcs does not compute: numpy's
                why = str(e)
    if method == "outer" and not kwargs and len(inputs) == 2 and ufunc.nin == 2 and _UFUNC_CALL.get(ufunc):
        return _outer(_UFUNC_CALL[ufunc], *inputs)
    if method == "accumulate" and len(inputs) == 1 and set(kwargs) <= {"axis", "dtype"}:
        acc = _accumulator(ufunc)
        axis = kwargs.get("axis", 0)
        if acc is not None and axis is not None and (isinstance(axis, int) or len(axis) == 1):
            return acc(inputs[0], axis=axis if isinstance(axis, int) else axis[0], dtype=kwargs.get("dtype"))
    if method == "reduce" and len(inputs) == 1 and set(kwargs) <= {"axis", "keepdims", "dtype"}:
        impl = _UFUNC_REDUCE.get(ufunc)
        if impl is not None and (kwargs.get("dtype") is None or impl in (xnp.sum, xnp.prod)):
            extra = {"dtype": kwargs["dtype"]} if kwargs.get("dtype") is not None else {}
            return impl(inputs[0], axis=kwargs.get("axis", 0), keepdims=bool(kwargs.get("keepdims", False)), **extra)
    return _numpy_fallback(getattr(ufunc, method), inputs, kwargs, why)


def array_function(func, types, args, kwargs):
    """Implements Array.__array_function__ (see the module docstring)."""
    for t in types:
        if not issubclass(t, (Array, np.ndarray)):
            return NotImplemented
    impl = _FUNCTIONS.get(func)
    why = None
    if impl is not None and _accepts(impl, args, kwargs):
        try:
            return impl(*args, **kwargs)
        except xnp._Unsupported as e:  # a mode / method / order xcs does not compute: numpy's
            why = str(e)
    return _numpy_fallback(func, args, kwargs, why)


_xcs._set_dispatch(array_ufunc, array_function)
