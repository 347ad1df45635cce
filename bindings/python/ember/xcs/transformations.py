"""ember.xcs.transformations — ``grad`` and ``value_and_grad`` (reverse-mode AD).

``grad(f)`` returns a function computing the gradient of ``f`` (which must
return a scalar float) with respect to argument ``argnums`` (an int or a
tuple of ints; each argument may be a pytree of arrays, and its gradient has
the same structure).  The gradient is reverse-mode AD on the traced IR
(src/core/autodiff.c): the backward pass is recorded into the same graph as
the forward one and compiled, fused and cached like any ``jit`` program, one
trace per abstract signature.  It composes with ``jit`` both ways
(``jit(grad(f))``, ``grad(jit(f))``) and with itself (``grad(grad(f))``).

``has_aux=True``: ``f`` returns ``(value, aux)``; ``aux`` is returned next
to the gradient untouched by differentiation.  Integer or boolean
arguments raise ``XCSTypeError`` unless ``allow_int=True`` (their gradient
is then zeros of their dtype).  A function that makes orchestration calls
(LLM / tool calls) cannot be differentiated: ``grad`` raises ``XCSError``
saying so and how to split the function.

Conventions: max/min (reductions and ``np.maximum``/``np.minimum``) split
the gradient equally between ties; ``floor``, ``ceil``, ``sign``, rounding,
comparisons and integer ops have zero gradient; the gradient of ``prod``
divides by each element (undefined where one is 0).

``vmap``, ``pmap`` and ``scan`` arrive with the rest of the transformations
issue.
"""
from __future__ import annotations

import functools

import numpy as np

from ember.xcs import _orchestration as orch
from ember.xcs import _xcs
from ember.xcs._xcs import Array
from ember.xcs.api import pytree
from ember.xcs.errors import XCSTypeError, XCSValueError

__all__ = ["grad", "value_and_grad"]

_FLOAT = ("float32", "float64")


def _argnums_tuple(argnums, fname):
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        return (argnums,), True
    if isinstance(argnums, (tuple, list)) and argnums and all(isinstance(a, int) and not isinstance(a, bool)
                                                                for a in argnums):
        return tuple(argnums), False
    raise XCSValueError(f"{fname}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


def _orchestration_error(fname, fn, what):
    name = getattr(fn, "__qualname__", type(fn).__name__)
    return XCSValueError(
        f"{fname}({name}): the function makes orchestration calls ({what}), which cannot be differentiated; "
        f"split it: differentiate the tensor part on its own (a function of arrays returning a scalar) and call "
        f"the orchestration part outside grad")


def value_and_grad(fn, argnums=0, has_aux=False, allow_int=False, *, _name="value_and_grad"):
    """``(f(*args), gradient)`` — see the module docstring; with ``has_aux``,
    ``((value, aux), gradient)``."""
    from ember.xcs.api.jit import JittedFunction

    if not callable(fn):
        raise XCSTypeError(f"{_name}: expected a callable, got {type(fn).__name__}")
    nums, single = _argnums_tuple(argnums, _name)
    checked = []

    def body(*args, **kwargs):
        if not checked:  # once: unmarked LLM/tool callables the function names
            target = fn.__wrapped__ if hasattr(fn, "_xcs_jit") else fn
            report = orch.plan_interception(getattr(target, "_fn", target))[1]
            hits = [n for n, kind, _, _ in report if kind in ("orchestration", "hybrid")]
            if hits:
                raise _orchestration_error(_name, fn, ", ".join(hits))
            checked.append(True)
        for i in nums:
            if not -len(args) <= i < len(args):
                raise XCSValueError(f"{_name}: argnums {i} is out of range for {len(args)} positional arguments")
        try:
            out = fn(*args, **kwargs)
        except orch.NeedsOrchestration as e:
            raise _orchestration_error(_name, fn, str(e)) from None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise XCSTypeError(f"{_name}(has_aux=True): the function must return (value, aux), got "
                                   f"{type(out).__name__}")
            out, aux = out
        y = out
        if not (type(y) is Array and _xcs._is_traced(y)):
            raise XCSTypeError(f"{_name}: the function must return a float array computed from the differentiated "
                               f"arguments, got {type(y).__name__}")
        if y.ndim != 0 and int(np.prod(y.shape)) != 1:
            raise XCSTypeError(f"{_name}: the function must return a scalar (got shape {tuple(y.shape)}); for "
                               f"vector outputs differentiate a sum or use vmap(grad)")
        if str(y.dtype) not in _FLOAT:
            raise XCSTypeError(f"{_name}: the function must return a float value, got dtype {y.dtype}")
        trees, wrt, where = [], [], []
        for i in nums:
            leaves, tree = pytree.flatten(args[i])
            trees.append((leaves, tree))
            for j, leaf in enumerate(leaves):
                if not (type(leaf) is Array and _xcs._is_traced(leaf)):
                    raise XCSTypeError(f"{_name}: argument {i} must hold arrays or numbers, found "
                                       f"{type(leaf).__name__}")
                if str(leaf.dtype) not in _FLOAT:
                    if not allow_int:
                        raise XCSTypeError(
                            f"{_name}: argument {i} has dtype {leaf.dtype}; gradients are defined for float "
                            f"inputs (cast it, or pass allow_int=True for a zero gradient)")
                    continue
                wrt.append(leaf)
                where.append((len(trees) - 1, j))
        grads = _xcs._vjp(y, wrt) if wrt else []
        out_trees = []
        for t, (leaves, tree) in enumerate(trees):
            gl = [np.zeros(leaf.shape, dtype=str(leaf.dtype)) for leaf in leaves]  # int leaves: zeros
            out_trees.append([gl, tree])
        for (t, j), gr in zip(where, grads):
            out_trees[t][0][j] = gr
        g = [pytree.unflatten(tree, gl) for gl, tree in out_trees]
        g = g[0] if single else tuple(g)
        return ((y, aux), g) if has_aux else (y, g)

    jf = JittedFunction(body, tensor_only=True)
    functools.update_wrapper(jf, fn, updated=())

    @functools.wraps(fn, updated=())
    def transformed(*args, **kwargs):
        return jf(*args, **kwargs)

    transformed._xcs_jit = jf
    return transformed


def grad(fn, argnums=0, has_aux=False, allow_int=False):
    """The gradient of scalar-valued ``fn`` — see the module docstring; with
    ``has_aux``, ``(gradient, aux)``."""
    vg = value_and_grad(fn, argnums, has_aux, allow_int, _name="grad")

    @functools.wraps(fn, updated=())
    def gradient(*args, **kwargs):
        (val, g) = vg(*args, **kwargs)
        return (g, val[1]) if has_aux else g

    gradient._xcs_jit = vg._xcs_jit
    return gradient
