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

``vmap(f, in_axes=0, out_axes=0, axis_size=None)`` maps ``f`` over an axis
of its arguments.  A tensor function is traced once per example signature
and its graph replayed on the whole batch by batching rules
(src/core/batch.c): one compiled program, no Python loop; it composes with
``jit``, ``grad`` (``vmap(grad(f))`` gives per-example gradients,
``grad(vmap(f))``) and itself.  ``in_axes`` is an int or None for every
argument, or a tuple with one entry per positional argument, each an
int/None or a pytree of them matching that argument; ``out_axes`` likewise
for the outputs.  A function that makes orchestration calls becomes a
concurrent map over the batch (on the host task graph, at most
``Config.max_workers`` examples at once), results in input order: per
output leaf, numbers and arrays are stacked into an array, anything else
(strings, objects) stays a list.  Its tensor parts are still batched: each
example records its tensor work lazily, and where values are needed (the
arguments of an orchestration call, the results) the examples meet, and
those with the same pending program run it as one batched, fused program
(arrays passed to a call stay lazy in the body, so the work after the call
batches too).  An example waits there for the examples still running
Python, a few ms for those blocked on their own calls, and never longer
than about ten times what its program alone would cost (at most 20 ms; see
``_orchestration.Batcher``): batching pays where the examples share big
weights (64 examples of a 2-layer MLP of width 2048 around a 50 ms call:
130 ms batched, 231 ms not), and costs a little latency where their tensor
work is tiny.  An example whose program differs (data-dependent Python
control flow) runs its own, and a batch that fails is re-run per example,
so an error is its example's.  ``pmap`` (below) is a ``vmap`` whose
collectives reduce over the mapped axis.

``scan(f, init, xs=None, length=None, reverse=False, unroll=1)`` is
``carry, y = f(carry, x)`` over the leading axis of ``xs`` (pytrees), and
returns ``(carry, ys)`` with the ys stacked on a new leading axis (in the
order of ``xs`` also when ``reverse``).  On concrete arrays a tensor body is
traced once per signature and run as a loop program in C (``Graph.scan``:
no per-step Python); what a step computes without reading the carry (an
RNN cell's ``x @ U``) runs for all steps at once before the loop, as one
batched program.  Inside ``jit``, ``grad`` or ``vmap`` the loop is one op
of the enclosing trace (``Graph.scan_trace``): the body is traced once, the
values of the trace it reads are loop invariants, the gradient is a reverse
loop of the body's VJP and vmap batches the body, so the trace keeps the
size of one step.  A scan inside another scan's body is an op of that
body.  The carry must keep its structure, shapes
and dtypes.  A body that makes orchestration calls runs as a Python loop
inside an orchestration scope: each step's calls start as soon as their
inputs (earlier steps' Deferreds) are ready, so independent calls still
overlap.  ``unroll`` is accepted for compatibility.
"""
from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
import itertools
import time

import numpy as np

from ember.xcs import _orchestration as orch
from ember.xcs import _xcs
from ember.xcs._xcs import Array
from ember.xcs.api import pytree
from ember.xcs.config import profile_from_env
from ember.xcs.errors import XCSDeviceError, XCSTypeError, XCSValueError
from ember.xcs.numpy import _numeric

__all__ = ["grad", "value_and_grad", "vmap", "pmap", "scan", "psum", "pmean", "pmax", "all_gather", "axis_index"]

_FLOAT = ("float16", "bfloat16", "float32", "float64")


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
        active = orch._ACTIVE.get()
        if active is not None:  # inside another trace: concrete differentiated arrays become its constants
            args = list(args)
            for i in nums:
                leaves, tree = pytree.flatten(args[i])
                lifted = [active.constant(v) if not (type(v) is Array and _xcs._is_traced(v))
                          and _numeric(np.asarray(v).dtype) else v for v in leaves]
                args[i] = pytree.unflatten(tree, lifted)
            args = tuple(args)
        tok = _DIFFERENTIATING.set(True)  # a split pmap cannot stage collectives met here
        try:
            out = fn(*args, **kwargs)
        except orch.NeedsOrchestration as e:
            raise _orchestration_error(_name, fn, str(e)) from None
        finally:
            _DIFFERENTIATING.reset(tok)
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise XCSTypeError(f"{_name}(has_aux=True): the function must return (value, aux), got "
                                   f"{type(out).__name__}")
            out, aux = out
        y = out
        const = not (type(y) is Array and _xcs._is_traced(y))
        if const:
            # not computed from the arguments (a constant, a loop of no steps):
            # its gradient is zeros, as JAX's is
            if isinstance(y, bool) or not isinstance(y, (int, float, np.generic, np.ndarray, Array)):
                raise XCSTypeError(f"{_name}: the function must return a float array, got {type(y).__name__}")
            y = _xcs._asarray(np.asarray(y))
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
        grads = _xcs._vjp(y, wrt) if wrt and not const else []
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


# ---------------------------------------------------------------- vmap


def _axes_for(spec, value, what):
    """One axis (int or None) per leaf of `value` (in pytree.flatten order), from
    an int/None or a prefix of value's structure made of them (None is an
    axis here, not an empty subtree)."""
    if spec is None or (isinstance(spec, int) and not isinstance(spec, bool)):
        return [spec] * len(pytree.flatten(value)[0])
    if isinstance(spec, (tuple, list)) and isinstance(value, (tuple, list)) and len(spec) == len(value):
        return [ax for s, v in zip(spec, value) for ax in _axes_for(s, v, what)]
    if isinstance(spec, dict) and isinstance(value, dict) and set(spec) == set(value):
        return [ax for k in _dict_order(value) for ax in _axes_for(spec[k], value[k], what)]
    raise XCSValueError(f"vmap: {what} {spec!r} does not match the structure of the value it applies to")


def _dict_order(d):
    """The key order pytree.flatten uses for a dict."""
    return pytree._dict_keys(d)


def _norm_axis(ax, ndim, what):
    if ax is None:
        return None
    if not -ndim <= ax < ndim:
        raise XCSValueError(f"vmap: {what} maps axis {ax}, but it has only {ndim} dimension(s)")
    return ax % ndim


def _ndim(x):
    return x.ndim if hasattr(x, "ndim") else np.ndim(x)


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _move(x, src, dst):
    """x with axis src moved to dst (a view; works on traced arrays)."""
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return np.transpose(x, perm)


# ---------------------------------------------------------------- collectives

_AXES: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_axes", default=())


#: axis names pmap is splitting over several devices in this call (see
#: pmap): a collective over one is staged (_Stage) or needs one device
_SHARDED: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_sharded_axes", default=())


class _NeedsOneDevice(BaseException):
    """Raised while a pmap block is traced when it reaches a collective over
    the split axis that cannot be staged (inside grad, an inner map, a
    nested jit): pmap then runs the whole map on one device.  A
    BaseException, so a user's ``except Exception`` cannot swallow it."""


class _StageEnds(BaseException):
    """A staged trace reached the collective its stage computes."""


class _NoMoreStages(BaseException):
    """A staged trace finished fn without reaching its stage's collective."""


class _Stage:
    """One block of a split pmap traced as a stage: collectives over the
    split axis that fn calls in its own body are numbered in call order;
    those before ``stop`` return the combined results fed in (``fed``:
    tracers of unmapped inputs), the one numbered ``stop`` ends the trace
    with its block-local value (``local``), to be combined across the
    devices on the host and fed to the next stage.  ``B`` is the whole axis,
    ``offset`` the block's first index."""

    def __init__(self, axis_name, B, offset, fed, stop, kinds):
        self.axis_name, self.B, self.offset, self.fed, self.stop = axis_name, B, offset, fed, stop
        self.kinds = kinds  # per stage number, the collective's kind (filled in while tracing)
        self.graph = orch._ACTIVE.get()  # fn's own per-example graph
        self.n = 0
        self.local = None

    def collective(self, kind, v, block, aid):
        i = self.n
        self.n += 1
        # a 16-bit sum travels in float32, so that it is rounded once, as on one device
        wide = kind == "psum" and str(v.dtype) in ("float16", "bfloat16")
        if i < len(self.fed):
            if self.kinds.get(i) != kind:
                raise _NeedsOneDevice(kind)  # fn does not call the same collectives every time
            return self.fed[i].astype(v.dtype) if wide else self.fed[i]
        if self.stop is None or self.kinds.get(i, kind) != kind:  # more collectives than other blocks met
            raise _NeedsOneDevice(kind)
        self.kinds[i] = kind
        self.local = _xcs._collective(kind, v.astype(np.float32) if wide else v, block, aid)
        raise _StageEnds()


_STAGE: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_pmap_stage", default=None)
#: true while grad traces its function: a staged collective's result is an
#: input of the block's program, which the gradient would not see through
_DIFFERENTIATING: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_differentiating", default=False)


#: each map's number (per trace of its body): the batching rules tell a
#: collective of an outer map, met inside an inner one, from the inner map's own
_MAP_IDS = itertools.count(1)


def _staged(axis_name, what):
    """The _Stage when axis_name is a split pmap's axis and this collective
    can be staged; None when the axis is not split."""
    if axis_name not in _SHARDED.get():
        return None
    st = _STAGE.get()
    if st is None or st.axis_name != axis_name or orch._ACTIVE.get() is not st.graph or _DIFFERENTIATING.get():
        raise _NeedsOneDevice(what)
    return st


#: the innermost map bound to an axis name: B its whole axis, block the
#: examples batched here (a split pmap's block, else B), aid its map number,
#: stage the _Stage of a split pmap (else None)
_Bound = collections.namedtuple("_Bound", "B block aid stage")


def _axis(axis_name, what):
    """The innermost map bound to axis_name, as a _Bound."""
    for name, size, aid in reversed(_AXES.get()):
        if name == axis_name:
            st = _staged(axis_name, what)
            return _Bound(st.B if st is not None else size, size, aid, st)
    bound = [n for n, _, _ in _AXES.get()]
    raise XCSValueError(f"{what}: unbound axis name {axis_name!r}"
                        + (f" (bound here: {', '.join(map(repr, bound))})" if bound else
                           "; collectives run inside pmap(f, axis_name=...) or vmap(f, axis_name=...)"))


def _collective(kind, x, axis_name):
    ax = _axis(axis_name, kind)
    B = ax.B
    leaves, tree = pytree.flatten(x)
    out = []
    for v in leaves:
        if type(v) is Array and _xcs._is_traced(v):
            out.append(ax.stage.collective(kind, v, ax.block, ax.aid) if ax.stage is not None else
                       _xcs._collective(kind, v, B, ax.aid))
        elif kind == "psum":  # the same value in every example
            out.append(v * B)
        elif kind == "pmax":
            out.append(v)
        else:
            out.append(np.broadcast_to(np.expand_dims(v, 0), (B,) + tuple(_shape(v))))
    return pytree.unflatten(tree, out)


def psum(x, axis_name):
    """The sum of x over the mapped axis `axis_name` (inside pmap/vmap): every example gets it."""
    return _collective("psum", x, axis_name)


def pmean(x, axis_name):
    """The mean of x over the mapped axis `axis_name`."""
    B = _axis(axis_name, "pmean").B
    return pytree.unflatten(pytree.flatten(x)[1], [v / B for v in pytree.flatten(psum(x, axis_name))[0]])


def pmax(x, axis_name):
    """The maximum of x over the mapped axis `axis_name`."""
    return _collective("pmax", x, axis_name)


def all_gather(x, axis_name):
    """Every example's x, stacked on a new leading axis (the same for every example)."""
    return _collective("all_gather", x, axis_name)


def axis_index(axis_name):
    """This example's position (0 .. size-1, int64) on the mapped axis `axis_name`."""
    ax = _axis(axis_name, "axis_index")
    idx = _xcs._collective("axis_index", orch._ACTIVE.get().constant(np.zeros((), np.int64)), ax.block, ax.aid)
    return idx + ax.stage.offset if ax.stage is not None else idx  # a split pmap's block: from its first index


def _plan(args, in_axes, axis_size, what="vmap"):
    """Per leaf of (args): its value and mapped axis (or None), the batch
    size B; for vmap and pmap."""
    if isinstance(in_axes, (tuple, list)) and not isinstance(in_axes, int):
        if len(in_axes) != len(args):
            raise XCSValueError(f"{what}: in_axes has {len(in_axes)} entries but the function got {len(args)} "
                                f"positional arguments")
        specs = list(in_axes)
    else:
        specs = [in_axes] * len(args)
    leaves_all, axes_all, where = [], [], []
    for k, (a, spec) in enumerate(zip(args, specs)):
        leaves, tree = pytree.flatten(a)
        axes = _axes_for(spec, a, f"in_axes[{k}]")
        for leaf, ax in zip(leaves, axes):
            if ax is not None:
                nd = _ndim(leaf)
                ax = _norm_axis(ax, nd, f"argument {k}")
            leaves_all.append(leaf)
            axes_all.append(ax)
            where.append(k)
    sizes = {}
    for leaf, ax, k in zip(leaves_all, axes_all, where):
        if ax is not None:
            sizes.setdefault(_shape(leaf)[ax], k)
    if len(sizes) > 1:
        desc = ", ".join(f"argument {k} has size {n}" for n, k in sizes.items())
        raise XCSValueError(f"{what}: Mismatched batch dimensions: the mapped axes have different sizes ({desc})")
    if sizes:
        B = next(iter(sizes))
        if axis_size is not None and axis_size != B:
            raise XCSValueError(f"{what}: axis_size={axis_size} but the mapped axes have size {B}")
    elif axis_size is not None:
        B = axis_size
    else:
        raise XCSValueError(f"{what}: no argument is mapped (every in_axes is None); pass axis_size to say how "
                            "many copies to make")
    return leaves_all, axes_all, B


def vmap(fn, in_axes=0, out_axes=0, axis_size=None, config=None, axis_name=None):
    """Maps ``fn`` over an axis of its arguments — see the module docstring."""
    from ember.xcs.api.jit import JittedFunction, _convert_leaf, _Exact

    if not callable(fn):
        raise XCSTypeError(f"vmap: expected a callable, got {type(fn).__name__}")
    if axis_size is not None and (not isinstance(axis_size, int) or isinstance(axis_size, bool) or axis_size < 0):
        raise XCSValueError(f"vmap: axis_size must be an int >= 0, got {axis_size!r}")
    state = {"orchestration": None}

    def plan(args):
        return _plan(args, in_axes, axis_size)

    def tensor_body(*args):
        leaves, axes, B = plan(args)
        g = _xcs.Graph(parent=orch._ACTIVE.get())  # values of an enclosing trace are captured
        tracers, values, flags = [], [], []
        for leaf, ax in zip(leaves, axes):
            if ax is None and type(leaf) is Array and leaf.ndim == 0 and _xcs._is_traced(leaf):
                # an unmapped traced scalar (a Python number, which the jit around this body traced as a
                # weak value) is captured as it is: a new input would lose its weak dtype (NEP 50)
                tracers.append(leaf)
                continue
            conv = _convert_leaf(leaf)
            if conv is None:
                raise XCSTypeError(f"vmap: a {type(leaf).__name__} argument cannot be mapped (tensor functions take "
                                   f"arrays and numbers)")
            v, (shape, dt, weak) = conv
            if ax is None and type(weak) is _Exact:  # a Python int int32 cannot hold: as it is (jit's rule)
                tracers.append(v)
                continue
            if ax is not None:
                per = tuple(s for i, s in enumerate(shape) if i != ax)
                tracers.append(g.input(dt, per, weak=weak))
                values.append(_move(v, ax, 0))
                flags.append(True)
            else:
                tracers.append(g.input(dt, shape, weak=weak))
                values.append(v)
                flags.append(False)
        rebuilt, it = [], iter(tracers)
        for a in args:
            al, tree = pytree.flatten(a)
            rebuilt.append(pytree.unflatten(tree, [next(it) for _ in al]))
        aid = next(_MAP_IDS) % 0x7FFFFFFF or 1  # an int32 > 0 (the numbers wrap after 2^31 traces)
        tok = _AXES.set(_AXES.get() + ((axis_name, B, aid),)) if axis_name is not None else None
        tok_g = orch._ACTIVE.set(g)
        try:
            out = fn(*rebuilt)
        finally:
            orch._ACTIVE.reset(tok_g)
            if tok is not None:
                _AXES.reset(tok)
        out_leaves, out_tree = pytree.flatten(out)
        for leaf in out_leaves:
            if isinstance(leaf, (str, bytes)) or leaf is None:
                raise XCSTypeError(f"vmap: a tensor function must return arrays or numbers, got "
                                   f"{type(leaf).__name__}")
            g.output(leaf)
        outs, oflags = g.batch(values, flags, B, aid)
        oaxes = _axes_for(out_axes, out, "out_axes")
        res = []
        for o, b, ax in zip(outs, oflags, oaxes):
            if ax is None:
                if b:
                    raise XCSValueError("vmap: out_axes=None requires identical outputs across the batch, but this "
                                        "output depends on the mapped arguments")
                res.append(o)
                continue
            ax = _norm_axis(ax, o.ndim + 1, "out_axes")
            if not b:
                o = np.broadcast_to(np.expand_dims(o, 0), (B,) + tuple(o.shape))
            res.append(_move(o, 0, ax))
        return pytree.unflatten(out_tree, res)

    compiled = JittedFunction(tensor_body, tensor_only=True, config=config)

    def orchestration_map(args):
        from ember.xcs.config import Config

        leaves, axes, B = plan(args)
        cfg = config if config is not None else Config()
        per_example = []
        for i in range(B):
            vals = [np.take(np.asarray(leaf), i, axis=ax) if ax is not None else leaf for leaf, ax in zip(leaves, axes)]
            rebuilt, it = [], iter(vals)
            for a in args:
                al, tree = pytree.flatten(a)
                rebuilt.append(pytree.unflatten(tree, [next(it) for _ in al]))
            per_example.append(rebuilt)
        scope = orch.Scope(cfg, getattr(fn, "__name__", "vmap"))
        t0 = time.perf_counter()
        # each example runs as an orchestration-mode jitted call of fn: its own
        # independent calls overlap too, and its tensor code is lazily fused
        if state.get("per_example") is None:
            state["per_example"] = fn if isinstance(fn, JittedFunction) else JittedFunction(fn, config=cfg)
        one = state["per_example"]
        try:
            if scope.parallel:
                # the examples meet at a Batcher to compute their tensor values as one program
                batcher = orch.Batcher(B, min(B, scope.max_workers))

                def example(*a):
                    tok = orch._BATCHER.set(batcher)
                    batcher.enter()
                    try:
                        return one(*a)
                    finally:
                        batcher.leave()
                        orch._BATCHER.reset(tok)

                example.__name__ = getattr(one, "__name__", "vmap")
                example._xcs_transparent = True  # its XCSExecutionError is the user's call's, not wrapped again
                ds = [scope.submit(example, tuple(a), {}) for a in per_example]
                scope.finish()
                results = [d._get() for d in ds]
                state["batches"] = batcher.sizes
            else:
                results = [scope.submit(one, tuple(a), {}) for a in per_example]
        except BaseException as e:
            scope.abort(e)
            raise
        finally:
            if cfg.profile or profile_from_env():  # the mapped function's profile, as jit's
                scope.record_profile(state["mapped"], t0)
        if not results:
            return []
        flat = [pytree.flatten(r) for r in results]
        tree = flat[0][1]
        out = []
        for j in range(len(flat[0][0])):
            col = [f[0][j] for f in flat]
            numeric = all(isinstance(v, (int, float, np.number, np.bool_, np.ndarray, Array)) for v in col)
            out.append(np.stack([np.asarray(v) for v in col]) if numeric else _Examples(col))
        if out_axes != 0:
            out = [(_move(v, 0, out_axes) if isinstance(v, np.ndarray) and isinstance(out_axes, int) else v)
                   for v in out]
        return pytree.unflatten(tree, [Array_from(v) for v in out])

    @functools.wraps(fn, updated=())
    def mapped(*args, **kwargs):
        if kwargs:  # keyword arguments are mapped over their leading axis (as in JAX)
            spec = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
            names = tuple(sorted(kwargs))
            inner = state.setdefault("kw", {}).get((len(args), names))
            if inner is None:
                n = len(args)
                inner = state["kw"][(n, names)] = vmap(
                    lambda *a: fn(*a[:n], **dict(zip(names, a[n:]))), in_axes=spec + (0,) * len(names),
                    out_axes=out_axes, axis_size=axis_size, config=config, axis_name=axis_name)
            return inner(*args, *[kwargs[k] for k in names])
        if state["orchestration"] is None:
            target = getattr(fn, "_fn", fn)
            report = orch.plan_interception(target)[1]
            state["orchestration"] = any(kind in ("orchestration", "hybrid") and hooked
                                         for _, kind, _, hooked in report)
        if not state["orchestration"]:
            try:
                return compiled(*args)
            except orch.NeedsOrchestration:
                state["orchestration"] = True
        return orchestration_map(args)

    state["mapped"] = mapped
    mapped._xcs_jit = compiled
    mapped._xcs_vmap_state = state  # "batches": examples per batched tensor program of the last orchestration map
    return mapped


def _pmap_devices(names):
    """The devices a pmap call splits over: ``names`` resolved (``"cuda"``
    is ``"cuda:0"``), duplicates dropped; None: every usable GPU when the
    default device is a GPU, else just the default device."""
    from ember.xcs import _device

    if names is not None:
        out = []
        for n in names:
            d = _device.resolve(n, "pmap: devices")
            if d not in out:
                out.append(d)
        return out
    if _device.resolve("auto") == "cpu":
        return ["cpu"]
    return [f"cuda:{g['ordinal']}" for g in _device.cuda_status().get("gpus", [])]


def pmap(fn, axis_name=None, in_axes=0, out_axes=0, devices=None, config=None):
    """Maps ``fn`` over shards of an axis, with collectives (``psum``,
    ``pmean``, ``pmax``, ``all_gather``) over ``axis_name`` inside.

    Each index of the mapped axis is one shard; there may be more shards
    than devices (unlike JAX).  Results equal ``vmap(fn, ...)`` with the same
    collectives.  ``devices``: a list of device names (``"cpu"``, ``"cuda"``,
    ``"cuda:N"``) or None for every GPU (the CPU where there is none).

    Over several devices, the mapped axis is split into one contiguous block
    of shards per device, and each block runs as one batched program on its
    device; the blocks' programs are queued on every device before any
    result is read, so the devices work at the same time, and the results
    come back to the host, concatenated.  Arguments that are not mapped are
    copied to every device.  Collectives over ``axis_name`` that fn calls in
    its own body run in stages (:class:`_Stage`): each device computes its
    block up to the collective, the blocks' parts are combined, and every
    device goes on with the result.  When every block is on a GPU of its
    own, they are combined device to device through NCCL (an all-reduce, or
    an all-gather), and each GPU keeps its copy; without NCCL (or with the
    CPU among the devices) the host combines them.  One met inside ``grad``, an
    inner map or a nested trace cannot be staged: that pmap runs on its
    first device (found when it is first traced, and remembered).  Calls
    inside a trace (``jit``, ``grad``, ``vmap``) are part of the enclosing
    program, and functions that make orchestration calls are a concurrent
    map, as with vmap: neither is split.  On one device (the CPU: one
    batched program over its threads) a pmap costs what the equivalent
    vmap costs.
    """
    from ember.xcs.config import Config

    names = None
    if devices is None and config is not None and config.device != "auto":
        devices = [config.device]  # the config's device, as for vmap
    if devices is not None:
        names = [d if isinstance(d, str) else getattr(d, "name", str(d)) for d in devices]
        if not names:
            raise XCSValueError("pmap: devices must name at least one device")
        try:
            resolved = _pmap_devices(names)
        except (XCSValueError, XCSDeviceError) as e:
            known = sorted({d["name"] for d in _devices_list() if d.get("available")})
            raise XCSValueError(f"pmap: unknown or unavailable device(s) in {names}: {e}; available: {known}") from None
        if len(resolved) == 1:  # one device: that device's vmap
            base = config if config is not None else Config()
            config = dataclasses.replace(base, device=resolved[0])
    whole = vmap(fn, in_axes=in_axes, out_axes=out_axes, config=config, axis_name=axis_name)
    state = {"one_device": False, "stages": {}, "n_stages": {}, "kinds": {}}

    def stage(dev, B, offset, nargs, stop):
        """fn's vmap on device dev for the block at offset of a split over B:
        the stage that ends at collective number stop, or (None) all of fn
        with every collective's result fed in (made once per key)."""
        key = (dev, B, offset, nargs, stop)
        v = state["stages"].get(key)
        if v is not None:
            return v
        kinds = state["kinds"].setdefault(B, {})

        def body(*a):
            st = _Stage(axis_name, B, offset, list(a[-1]), stop, kinds)
            tok = _STAGE.set(st)
            try:
                out = fn(*a[:-1])
            except _StageEnds:
                return st.local
            finally:
                _STAGE.reset(tok)
            if stop is not None:
                raise _NoMoreStages()
            return out

        ax = (tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * nargs) + (None,)
        base = config if config is not None else Config()
        v = state["stages"][key] = vmap(body, in_axes=ax, out_axes=out_axes if stop is None else None,
                                        config=dataclasses.replace(base, device=dev), axis_name=axis_name)
        return v

    @functools.wraps(fn, updated=())
    def mapped(*args, **kwargs):
        if kwargs or state["one_device"] or orch._ACTIVE.get() is not None:
            return whole(*args, **kwargs)
        devs = _pmap_devices(names)
        leaves, axes, B = _plan(args, in_axes, None, "pmap")
        k = min(len(devs), B)
        if k < 2 or any(type(v) is Array and _xcs._is_traced(v) for v in leaves) or _makes_orchestration_calls():
            return whole(*args)
        bounds = [B * i // k for i in range(k + 1)]
        blocks = []
        for i in range(k):
            vals = [leaf if ax is None else np.asarray(leaf)[(slice(None),) * ax + (slice(bounds[i], bounds[i + 1]),)]
                    for leaf, ax in zip(leaves, axes)]
            rebuilt, vi = [], iter(vals)
            for a in args:
                al, tree = pytree.flatten(a)
                rebuilt.append(pytree.unflatten(tree, [next(vi) for _ in al]))
            blocks.append(rebuilt)
        n_stages = 0 if axis_name is None else state["n_stages"].get(B)
        fed, outs = [], []
        tok = _SHARDED.set(_SHARDED.get() + ((axis_name,) if axis_name is not None else ()))
        try:
            while n_stages is None or len(fed) < n_stages:  # one collective over the split axis a stage
                parts = []
                try:  # queued on every device before anything is read back
                    for i in range(k):
                        parts.append(stage(devs[i], B, bounds[i], len(args), len(fed))(*blocks[i], _fed_for(fed, i)))
                except _NoMoreStages:
                    if parts:  # the blocks disagree on how many collectives fn calls
                        raise _NeedsOneDevice("collectives") from None
                    n_stages = state["n_stages"][B] = len(fed)
                    break
                fed.append(_combine_parts(state, state["kinds"][B][len(fed)], parts, devs[:k]))
            outs = [stage(devs[i], B, bounds[i], len(args), None)(*blocks[i], _fed_for(fed, i)) for i in range(k)]
        except _NeedsOneDevice:
            state["one_device"] = True
        finally:
            _SHARDED.reset(tok)
        if state["one_device"]:
            return whole(*args)
        state["last_devices"], state["last_stages"] = devs[:k], len(fed)
        return _concat_blocks(outs, out_axes)

    def _makes_orchestration_calls():
        if "orchestration" not in state:
            target = getattr(fn, "_fn", fn)
            state["orchestration"] = any(kind in ("orchestration", "hybrid") and hooked
                                         for _, kind, _, hooked in orch.plan_interception(target)[1])
        return state["orchestration"]

    # "one_device": a collective that cannot be staged keeps it on one device;
    # "last_devices" / "last_stages": the devices and the number of combined
    # collectives of the last split call; "collectives": where the last one
    # was combined ("device", or "host: <why not on the devices>")
    mapped._xcs_pmap_state = state
    return mapped


def _devices_list():
    from ember.xcs import devices as _devices

    return _devices()


class _PerDevice(tuple):
    """A collective's result combined on the devices: one copy per block, on
    that block's device (fed to block i as element i)."""


def _fed_for(fed, i):
    """The collectives' results block i's next stage is fed."""
    return tuple(f[i] if isinstance(f, _PerDevice) else f for f in fed)


def _combine_parts(state, kind, parts, devs):
    """One staged collective's parts (the blocks' local results, in block
    order) combined: device to device (NCCL) when every block is on its own
    GPU and the backend can, else on the host."""
    why = "a block is on the CPU"
    if all(d.startswith("cuda") for d in devs):
        res = _xcs._device_collective(kind, parts)
        if not isinstance(res, str):
            state["collectives"] = "device"
            return _PerDevice(res)
        why = res
    state["collectives"] = f"host: {why}"
    return _combine(kind, [np.asarray(p) for p in parts])


def _combine(kind, parts):
    """The blocks' local results of one collective (host arrays, in block
    order) combined: what the whole axis gives."""
    if kind == "all_gather":
        return np.concatenate(parts, axis=0)
    return functools.reduce(np.add if kind == "psum" else np.maximum, parts)


def _concat_blocks(blocks, out_axes):
    """The per-device blocks' outputs joined along their out_axes, on the host."""
    flat = [pytree.flatten(b) for b in blocks]
    tree = flat[0][1]
    oaxes = _axes_for(out_axes, pytree.unflatten(tree, flat[0][0]), "out_axes")
    out = []
    for j, ax in enumerate(oaxes):
        col = [np.asarray(f[0][j]) for f in flat]
        if ax is None:  # the same in every block (vmap checked it is not mapped)
            out.append(_xcs._asarray(col[0]) if col[0].dtype.kind in "biuf" else col[0])
            continue
        ax = _norm_axis(ax, col[0].ndim, "out_axes")
        out.append(_xcs._asarray(np.ascontiguousarray(np.concatenate(col, axis=ax))))
    return pytree.unflatten(tree, out)


class _Examples(list):
    """A mapped orchestration output that is not numeric (strings, objects): one value per
    example.  A list to the user, and one leaf to a map around this one (a plain list is a pytree
    node, whose items an outer map stacked across its examples: nested maps came out transposed)."""

    __slots__ = ()


def Array_from(v):
    """numpy arrays from a stacked orchestration map as xcs Arrays; lists stay lists."""
    return _xcs._asarray(v) if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" else v


# ---------------------------------------------------------------- scan


def _sig_of(tree):
    leaves, t = pytree.flatten(tree)
    return t, [(tuple(_shape(v)), str(getattr(v, "dtype", type(v).__name__))) for v in leaves]


def _scan_loop(f, init, xs, length, reverse, check_carry):
    """The loop itself (on tracers inside a trace, or on values)."""
    x_leaves, x_tree = pytree.flatten(xs)
    if x_leaves:
        lengths = {_shape(v)[0] if _ndim(v) else None for v in x_leaves}
        if None in lengths:
            raise XCSValueError("scan: every leaf of xs needs a leading axis to scan over (got a 0-d value)")
        if len(lengths) > 1:
            raise XCSValueError(f"scan: the leaves of xs have different leading sizes {sorted(lengths)}")
        T = lengths.pop()
        if length is not None and length != T:
            raise XCSValueError(f"scan: length={length} but xs has leading size {T}")
    elif length is None:
        raise XCSValueError("scan: pass xs or length")
    else:
        T = length
    carry, ys = init, [None] * T
    sig0 = _sig_of(init) if check_carry else None
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        x = pytree.unflatten(x_tree, [v[t] for v in x_leaves]) if x_leaves else None
        out = f(carry, x)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise XCSTypeError(f"scan: the body must return (carry, y), got {type(out).__name__}")
        carry, ys[t] = out
        if check_carry and _sig_of(carry) != sig0:
            raise XCSTypeError(f"scan: the carry must keep its structure, shapes and dtypes; step {t} turned "
                               f"{sig0[1]} into {_sig_of(carry)[1]}")
    if T == 0 and check_carry:
        return carry, _empty_ys(f, carry, x_leaves, x_tree)
    if T == 0 or all(y is None for y in ys):
        return carry, None
    y_flat = [pytree.flatten(y) for y in ys]
    y_tree = y_flat[0][1]
    stacked = [np.stack([yf[0][j] for yf in y_flat]) for j in range(len(y_flat[0][0]))]
    return carry, pytree.unflatten(y_tree, stacked)


def _empty_ys(f, carry, x_leaves, x_tree):
    """ys of a loop of no steps: the body's ys stacked over none, each
    (0, *shape).  Their shapes come from one step traced on zeros (in the
    enclosing trace, so it is recorded and never run)."""
    x = pytree.unflatten(x_tree, [np.zeros(_shape(v)[1:], np.dtype(v.dtype)) for v in x_leaves]) if x_leaves else None
    out = f(carry, x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise XCSTypeError(f"scan: the body must return (carry, y), got {type(out).__name__}")
    y_leaves, y_tree = pytree.flatten(out[1])
    if not y_leaves:
        return None
    empty = [np.zeros((0, *_shape(y)), np.asarray(y).dtype if not isinstance(y, Array) else np.dtype(y.dtype))
             for y in y_leaves]
    return pytree.unflatten(y_tree, [_xcs._asarray(e) for e in empty])


_SCANS = {}
_PROGRAMS = {}
_FALLBACK = object()


def _scan_body_graph(f, c_tree, c_sigs, x_tree, x_sigs, parent=None):
    """The traced step graph (carry..., x...) -> (carry..., y...), with the
    ys' tree; _FALLBACK when the body needs the unrolled path.  Without a
    parent it is compiled as a loop program and optimised; with one (the
    enclosing trace, whose values it may read) it is left for scan_trace."""
    from ember.xcs._xcs import Graph
    from ember.xcs.errors import XCSTracerError

    g = Graph(parent=parent)
    try:
        tracers = [g.input(dt, shape) for shape, dt, _ in (*c_sigs, *x_sigs)]
        carry = pytree.unflatten(c_tree, tracers[:len(c_sigs)])
        x = pytree.unflatten(x_tree, tracers[len(c_sigs):]) if x_sigs else None
        del tracers
        tok, tok_g = orch._TRACING.set(True), orch._ACTIVE.set(g)
        try:
            out = f(carry, x)
        except XCSTracerError:
            return _FALLBACK  # the unrolled path traces each step and says where
        finally:
            orch._TRACING.reset(tok)
            orch._ACTIVE.reset(tok_g)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise XCSTypeError(f"scan: the body must return (carry, y), got {type(out).__name__}")
        c_leaves, c_tree2 = pytree.flatten(out[0])
        y_leaves, y_tree = pytree.flatten(out[1])
        if c_tree2 != c_tree:
            raise XCSTypeError("scan: the carry must keep its structure, shapes and dtypes; the body returned "
                               f"a carry of another structure ({c_tree} -> {c_tree2})")
        for leaf in (*c_leaves, *y_leaves):
            if isinstance(leaf, (bool, int, float, complex)):
                leaf = np.asarray(leaf)
            if not isinstance(leaf, (Array, np.ndarray, np.generic)):
                return _FALLBACK
            g.output(leaf if isinstance(leaf, Array) else _xcs._asarray(np.asarray(leaf)))
        del out, carry, x, c_leaves, y_leaves
    finally:
        g.seal()
    if parent is None:
        g.scan_compile(len(c_sigs))  # the carry-free part hoisted out of the loop
        g.optimize()
    return g, len(c_sigs), y_tree


def _leaf_sig(v):
    """(shape, dtype name, weak) of an array leaf (traced or not), or None."""
    from ember.xcs.api.jit import _dt_name

    if isinstance(v, Array):
        return tuple(v.shape), _dt_name(v.dtype), False
    if isinstance(v, (np.ndarray, np.generic)) and v.dtype.name in _SCAN_DTYPES:
        return tuple(np.shape(v)), v.dtype.name, False
    return None  # Python numbers, other dtypes (int8, ...): the unrolled path converts them


_SCAN_DTYPES = ("bool", "int32", "int64", "float16", "float32", "float64")


def _xs_length(x_full, length):
    """The loop's length from the xs leaves' signatures (checked) or `length`."""
    if any(len(shape) == 0 for shape, _, _ in x_full):
        raise XCSValueError("scan: every leaf of xs needs a leading axis to scan over (got a 0-d value)")
    lengths = {shape[0] for shape, _, _ in x_full}
    if len(lengths) > 1:
        raise XCSValueError(f"scan: the leaves of xs have different leading sizes {sorted(lengths)}")
    T = lengths.pop() if lengths else length
    if length is not None and length != T:
        raise XCSValueError(f"scan: length={length} but xs has leading size {T}")
    return T


def _scan_traced(f, init, xs, length, reverse, active):
    """scan recorded as one op of the enclosing trace (Graph.scan_trace): the
    trace keeps the size of one step, and the loop runs as the loop program
    (hoisting, the one-kernel loop on a device); differentiable.  None when
    the arguments need the unrolled path (Python numbers, a body that is not
    a tensor function)."""
    c_leaves, c_tree = pytree.flatten(init)
    x_leaves, x_tree = pytree.flatten(xs)
    c_sigs = [_leaf_sig(v) for v in c_leaves]
    x_full = [_leaf_sig(v) for v in x_leaves]
    if None in c_sigs or None in x_full or (not x_leaves and length is None):
        return None
    T = _xs_length(x_full, length)
    x_sigs = [(shape[1:], dt, w) for shape, dt, w in x_full]
    entry = _scan_body_graph(f, c_tree, c_sigs, x_tree, x_sigs, parent=active)
    if entry is _FALLBACK:
        return None
    g, n_carry, y_tree = entry
    outs = g.scan_trace(n_carry, len(x_leaves), T, bool(reverse), [*c_leaves, *x_leaves])
    return pytree.unflatten(c_tree, outs[:n_carry]), pytree.unflatten(y_tree, outs[n_carry:])


def _scan_program(f, init, xs, length, reverse):
    """scan as one loop program run in C (Graph.scan), or None when the
    arguments need the unrolled path (Python scalars, traced values, ...)."""
    c_leaves, c_tree = pytree.flatten(init)
    x_leaves, x_tree = pytree.flatten(xs)
    c_leaves = [np.asarray(v) if isinstance(v, np.generic) else v for v in c_leaves]
    x_leaves = [np.asarray(v) if isinstance(v, np.generic) else v for v in x_leaves]
    c_sigs = _xcs._signature(tuple(c_leaves))
    x_full = _xcs._signature(tuple(x_leaves))
    if c_sigs is None or x_full is None or (not x_leaves and length is None):
        return None
    T = _xs_length(x_full, length)
    x_sigs = tuple((shape[1:], dt, w) for shape, dt, w in x_full)
    key = (f, c_tree, c_sigs, x_tree, x_sigs)
    try:
        entry = _PROGRAMS.get(key)
    except TypeError:  # an unhashable callable
        key, entry = None, None
    if entry is None:
        entry = _scan_body_graph(f, c_tree, c_sigs, x_tree, x_sigs)
        if key is not None:
            if len(_PROGRAMS) > 256:
                _PROGRAMS.clear()
            _PROGRAMS[key] = entry
    if entry is _FALLBACK:
        return None
    g, n_carry, y_tree = entry
    from ember.xcs import _device
    # on the default device, as jitted calls: every step there, the results left there
    outs = g.scan(n_carry, T, bool(reverse), [*c_leaves, *x_leaves], _device.run_device(None))
    return pytree.unflatten(c_tree, outs[:n_carry]), pytree.unflatten(y_tree, outs[n_carry:])


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``(carry, ys)`` of ``f`` looped over ``xs`` — see the module docstring."""
    from ember.xcs.api.jit import JittedFunction

    if not callable(f):
        raise XCSTypeError(f"scan: expected a callable body, got {type(f).__name__}")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
        raise XCSValueError(f"scan: length must be an int >= 0, got {length!r}")
    if not isinstance(unroll, int) or isinstance(unroll, bool) or unroll < 1:
        raise XCSValueError(f"scan: unroll must be an int >= 1, got {unroll!r}")
    target = getattr(f, "_fn", f)
    report = orch.plan_interception(target)[1]
    if any(kind in ("orchestration", "hybrid") and hooked for _, kind, _, hooked in report):
        if orch.current_scope() is not None:  # inside an orchestration call: its scope runs the calls
            return _scan_loop(f, init, xs, length, reverse, False)
        from ember.xcs.config import Config
        scope = orch.Scope(Config(), getattr(f, "__name__", "scan"))
        tok = orch._SCOPE.set(scope)
        try:
            carry, ys = _scan_loop(f, init, xs, length, reverse, False)
            carry, ys = orch.wait(carry), orch.wait(ys)
            scope.finish()
        except BaseException as e:
            scope.abort(e)
            raise
        finally:
            orch._SCOPE.reset(tok)
        return carry, ys
    active = orch._ACTIVE.get()
    if active is None and not orch._TRACING.get():
        done = _scan_program(f, init, xs, length, reverse)
        if done is not None:
            return done
    elif active is not None and not active.lazy:
        done = _scan_traced(f, init, xs, length, reverse, active)
        if done is not None:
            return done
    key = (f, bool(reverse), length)
    try:
        jf = _SCANS.get(key)
    except TypeError:  # an unhashable callable
        key, jf = None, None
    if jf is None:
        jf = JittedFunction(lambda init, xs: _scan_loop(f, init, xs, length, reverse, True), tensor_only=True)
        if key is not None:
            if len(_SCANS) > 256:
                _SCANS.clear()
            _SCANS[key] = jf
    return jf(init, xs)
