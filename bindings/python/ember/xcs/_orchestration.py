"""Orchestration inside ``jit``: classification, Deferred values, the per-call scope.

An orchestration call (an LLM or tool call: blocking, slow, side-effecting)
made while a jitted function runs is submitted to the host task graph
(``_xcs.TaskGraph``, src/host/taskgraph.c) and returns a :class:`Deferred`
at once, so independent calls overlap.  A Deferred passed to another
orchestration call (alone or inside lists, tuples, dicts, sets) becomes a
dependency edge: that call starts when its inputs are ready.  Any other use
(``str``, f-strings, ``len``, iteration, indexing, attributes, operators,
``==``, ``hash``, ``bool``, numpy) waits for the value, and
:func:`wait` resolves a whole pytree.  The jitted function's results are
always concrete.

Each orchestration call runs exactly once per jitted call, with the
arguments of that call: nothing is cached across calls, because the Python
body is re-run every time.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import re
import sys
import threading
import time
import types
import weakref

from ember.xcs import _xcs
from ember.xcs.errors import XCSExecutionError

__all__ = ["Deferred", "wait", "classify", "is_orchestration", "current_scope"]

# task states of _xcs.TaskGraph (xcs_task_state)
_PENDING, _READY, _RUNNING, _DONE, _FAILED, _CANCELLED = range(6)
_WAIT_SLICE_S = 0.1  # waits return to the interpreter this often, so Ctrl-C lands promptly

_concretize = _xcs._concretize
_SCOPE: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_scope", default=None)
_TRACING: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_tracing", default=False)
#: the Graph being traced on this thread (jit, grad, vmap's per-example graphs), or None
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_active_graph", default=None)
#: the Batcher of the vmap example running on this thread, or None
_BATCHER: contextvars.ContextVar = contextvars.ContextVar("ember_xcs_batcher", default=None)


def current_scope():
    """The orchestration scope of the jitted call running on this thread, or None."""
    return _SCOPE.get()


class NeedsOrchestration(BaseException):
    """Raised inside a tensor trace when an orchestration call is reached:
    jit abandons the trace and re-runs the call in orchestration mode.  A
    BaseException, so a user's ``except Exception`` cannot swallow it."""


# ------------------------------------------------------------------ classification

#: Module prefixes whose callables are orchestration (LLM / HTTP clients).
ORCHESTRATION_MODULES = ("openai", "anthropic", "litellm", "cohere", "mistralai", "google.generativeai",
                         "vertexai", "langchain", "llama_index", "transformers.pipelines", "requests",
                         "httpx", "aiohttp", "urllib.request", "ember.models")
#: Whole-word tokens of a callable's name that mark it as orchestration.
ORCHESTRATION_WORDS = frozenset({"llm", "llms", "completion", "completions", "chat", "prompt", "gpt", "claude",
                                 "openai", "anthropic", "api", "http", "agent", "tool"})
#: Module prefixes whose callables are tensor code.
TENSOR_MODULES = ("numpy", "ember.xcs", "math", "jax", "torch", "scipy")

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _words(name):
    """Whole words of an identifier: snake_case, camelCase, dotted."""
    out = []
    for part in re.split(r"[^0-9A-Za-z]+", name or ""):
        out.extend(w.lower() for w in _WORD.findall(part))
    return out


def _target(obj):
    """The function behind obj (a bound method's function, a callable
    object's __call__, a partial's func)."""
    for _ in range(8):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif inspect.ismethod(obj):
            obj = obj.__func__
        else:
            break
    return obj


def classify(obj):
    """``(kind, reason)`` for a callable: kind is ``"orchestration"``,
    ``"tensor"``, ``"hybrid"`` or ``"python"`` (plain glue, run inline).

    Explicit marks win (``mark_orchestration`` / ``mark_tensor`` /
    ``mark_hybrid``, also on a bound method's function or a callable
    object's class); then the module the callable comes from
    (:data:`ORCHESTRATION_MODULES`, :data:`TENSOR_MODULES`, by prefix at a
    dot boundary); then whole words of its qualified name
    (:data:`ORCHESTRATION_WORDS`; ``rapid`` is not ``api``).
    """
    for o in (obj, _target(obj), type(obj)):
        orch, tensor = getattr(o, "_xcs_is_orchestration", None), getattr(o, "_xcs_is_tensor", None)
        if orch is not None or tensor is not None:
            if orch and tensor:
                return "hybrid", "marked with mark_hybrid"
            if orch:
                return "orchestration", "marked with mark_orchestration"
            if tensor:
                return "tensor", "marked with mark_tensor"
    t = _target(obj)
    if not callable(obj):
        return "python", "not callable"
    module = getattr(t, "__module__", None) or getattr(type(obj), "__module__", None) or ""
    for p in ORCHESTRATION_MODULES:
        if module == p or module.startswith(p + "."):
            return "orchestration", f"defined in module {module!r} (an LLM/HTTP client package: {p})"
    for p in TENSOR_MODULES:
        if module == p or module.startswith(p + "."):
            return "tensor", f"defined in module {module!r} ({p})"
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or type(obj).__name__
    hits = sorted(set(_words(name)) & ORCHESTRATION_WORDS)
    if hits:
        return "orchestration", f"its name {name!r} has the word(s) {', '.join(map(repr, hits))}"
    return "python", "no mark, module or name says otherwise: plain Python, run inline"


def is_orchestration(obj):
    return classify(obj)[0] in ("orchestration", "hybrid")


# ------------------------------------------------------------------ Deferred


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


def _rebuildable(x):
    t = type(x)
    return t in (list, tuple, dict, set, frozenset) or (isinstance(x, tuple) and hasattr(x, "_fields"))


def _scan(x, found, lazy, fixed, depth=0, rebuild=True):
    """Collects the Deferreds inside x (lists, tuples, dicts, sets; 8
    levels) into `found`, and its lazy arrays into `lazy`, or into `fixed`
    where _rebuild cannot replace them (inside other container types)."""
    t = type(x)
    if t in _SCALARS:
        return
    if t is Deferred:
        found.append(x)
    elif t is _xcs.Array:
        if _xcs._is_traced(x):
            (lazy if rebuild else fixed).append(x)
    elif depth < 8 and isinstance(x, (list, tuple, set, frozenset, dict)):
        rebuild = rebuild and _rebuildable(x)
        for v in (x.values() if isinstance(x, dict) else x):
            _scan(v, found, lazy, fixed, depth + 1, rebuild)


def prepare(arrays):
    """On the thread of an example of ``vmap`` over an orchestration
    function: computes the lazy arrays in the list `arrays` together with
    the other examples (:class:`Batcher`); they stay lazy, and reading them
    then computes nothing.  Elsewhere nothing is done here."""
    b = _BATCHER.get()
    if b is not None and arrays:
        b.compute(arrays)


#: How long the examples waiting at a Batcher wait for one that is blocked on
#: an orchestration call, counted from the last arrival (see Batcher) ...
BATCH_WINDOW_S = 0.005
#: ... how long an example waits there at most ...
BATCH_MAX_WAIT_S = 0.02
#: ... and at most this many times what computing its program alone would
#: take (estimated: _LAZY_OP_S per op plus its constants' bytes at
#: _LAZY_BYTES_PER_S): waiting costs the example that much latency, and
#: batching saves about that much work per example that joins.
BATCH_PAYOFF = 10.0
_LAZY_OP_S = 5e-6
_LAZY_BYTES_PER_S = 5e9


class _Request:
    __slots__ = ("key", "arrays", "taken", "done", "alone", "since", "budget", "cv")

    def __init__(self, key, arrays, since, budget, lock):
        self.key, self.arrays, self.since, self.budget = key, arrays, since, budget
        self.taken = self.done = self.alone = False
        self.cv = threading.Condition(lock)  # its thread waits here (on the Batcher's lock)


class Batcher:
    """Where the examples of one ``vmap`` over an orchestration function meet
    to compute their tensor values as one program.

    Each example runs its Python body on its own thread, recording its
    tensor work lazily.  When it needs values (the arguments of an
    orchestration call, its results) it waits here for the others: for as
    long as one is still running Python (it will come soon), for
    BATCH_WINDOW_S after the last arrival when the others are blocked on
    their orchestration calls (calls of similar latency end together), and
    at most BATCH_PAYOFF times the estimated cost of its program alone
    (a big shared weight makes waiting worth it; a few small ops do not),
    never more than BATCH_MAX_WAIT_S.  Then the waiting examples whose pending
    programs are the same (the usual case: they run the same code) are
    computed as one batched program (``_xcs._concretize_batch``: vmap's
    rules over the stacked values, fused as a whole), and an example with a
    program of its own computes it on its own thread.  ``sizes`` lists the
    examples of each batched program.

    The oldest waiting example leads: it alone is woken by the changes
    that may make the batch due (an arrival, a call starting or ending, an
    example finishing), decides, and takes every waiting example; the
    others sleep until their values are done (or until they lead, when the
    leader gives up).  Waking all of them at every change cost more than
    the batching saved (64 examples: thousands of wake-ups a map)."""

    def __init__(self, n, slots):
        self._lock = threading.Lock()
        self._n, self._slots = n, max(1, slots)
        self._started = self._finished = self._waiting = self._blocked = 0
        self._last = 0.0  # when an example last arrived here or went back to running
        self._pending = []
        self.sizes = []

    def _wake_leader(self):
        if self._pending:
            self._pending[0].cv.notify()

    def enter(self):
        with self._lock:
            self._started += 1

    def leave(self):
        with self._lock:
            self._finished += 1
            self._wake_leader()

    def block(self):
        with self._lock:
            self._blocked += 1
            self._wake_leader()

    def unblock(self):
        with self._lock:
            self._blocked -= 1
            self._last = time.monotonic()

    def _due(self, now):
        """True when the waiting examples should be computed now."""
        if any(now - r.since >= r.budget for r in self._pending):
            return True
        live = self._started - self._finished
        if live > self._waiting + self._blocked:  # one is running Python: it may come soon
            return False
        if self._started < self._n and live < self._slots:  # another is about to start
            return False
        return self._blocked == 0 or now - self._last >= BATCH_WINDOW_S

    def compute(self, arrays):
        got = _xcs._lazy_key(arrays)
        if got is None:  # nothing pending, or values of several graphs: the caller computes them
            return
        key, ops, nbytes = got
        budget = min(BATCH_MAX_WAIT_S, BATCH_PAYOFF * (ops * _LAZY_OP_S + nbytes / _LAZY_BYTES_PER_S))
        batch = None
        with self._lock:
            req = _Request(key, arrays, time.monotonic(), budget, self._lock)
            self._last = req.since
            self._pending.append(req)
            self._waiting += 1
            self._wake_leader()
            try:
                while not req.done:
                    leads = not req.taken and self._pending[0] is req
                    now = time.monotonic()
                    if leads and self._due(now):
                        batch, self._pending = self._pending, []
                        for r in batch:
                            r.taken = True
                        break
                    if not leads:  # woken when done, or when it comes to lead
                        req.cv.wait(_WAIT_SLICE_S)
                        continue
                    wake = min(r.since + r.budget for r in self._pending)  # the next deadline (or a notify)
                    if self._blocked:
                        wake = min(wake, self._last + BATCH_WINDOW_S)
                    req.cv.wait(min(max(wake - now, 1e-4), _WAIT_SLICE_S))
            except BaseException:  # (Ctrl-C) not taken: out of the queue, the next one leads
                if not req.taken:
                    self._pending.remove(req)
                    self._waiting -= 1
                    self._wake_leader()
                raise
        if batch is not None:
            try:
                self._run(batch)
            finally:
                with self._lock:  # done requests stop counting at once (their threads wake later)
                    for r in batch:
                        r.done = True
                        r.cv.notify()
                    self._waiting -= len(batch)
                    self._wake_leader()
        # req.alone: the caller computes its values on its own thread (its errors are its own)

    def _run(self, batch):
        groups = {}
        for r in batch:
            groups.setdefault(r.key, []).append(r)
        for group in groups.values():
            if len(group) > 1:
                try:
                    self.sizes.append(_xcs._concretize_batch([r.arrays for r in group]))
                    continue
                except Exception:  # noqa: BLE001 — each example then computes (and raises) its own
                    pass
            for r in group:
                r.alone = True


def _rebuild(x, leaf, depth=0):
    """x with leaf(v) for every value v inside its lists, tuples, dicts,
    sets and namedtuples (8 levels); leaf returns v itself to keep it."""
    t = type(x)
    if t in _SCALARS:
        return x
    if depth >= 8:
        return leaf(x)
    if t is list:
        return [_rebuild(v, leaf, depth + 1) for v in x]
    if t is tuple:
        return tuple(_rebuild(v, leaf, depth + 1) for v in x)
    if t is dict:
        return {k: _rebuild(v, leaf, depth + 1) for k, v in x.items()}
    if t in (set, frozenset):
        return t(_rebuild(v, leaf, depth + 1) for v in x)
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return t(*(_rebuild(v, leaf, depth + 1) for v in x))
    return leaf(x)


def _value_of(x):
    return x._get() if type(x) is Deferred else x


def _resolve(x):
    """x with every Deferred inside replaced by its value (waits)."""
    return x._get() if type(x) is Deferred else _rebuild(x, _value_of)


def wait(tree):
    """``tree`` with every :class:`Deferred` in it replaced by its value
    (lists, tuples, dicts, sets, namedtuples); other values pass through."""
    return _resolve(tree)


def _name_of(fn):
    t = _target(fn)
    mod = getattr(t, "__module__", None)
    qn = getattr(t, "__qualname__", None) or getattr(t, "__name__", None) or type(fn).__qualname__
    return f"{mod}.{qn}" if mod and mod != "__main__" else qn


class Deferred:
    """The pending result of an orchestration call made inside a jitted call.

    Using it as a value waits for the call; passing it to another
    orchestration call makes that call wait for it instead.  If the call
    failed, any use raises :class:`~ember.xcs.errors.XCSExecutionError`
    with the original exception as ``__cause__``.
    """

    __slots__ = ("_scope", "_id", "_fn", "_callee", "_args", "_kwargs", "_state", "_value", "_exc", "_t0", "_t1",
                 "__weakref__")

    def __init__(self, scope, fn, args, kwargs):
        self._scope = scope
        self._id = -1
        self._fn = fn
        self._callee = fn  # kept for the name (messages, views) after _fn is dropped
        self._args = args
        self._kwargs = kwargs
        self._state = _PENDING
        self._value = None
        self._exc = None
        self._t0 = self._t1 = 0.0

    @property
    def _name(self):
        return _name_of(self._callee)

    # -- runs on a worker thread, holding the GIL (called by the task graph)
    def _run(self):
        fn, args, kwargs = self._fn, self._args, self._kwargs
        self._args = self._kwargs = None
        self._t0 = time.perf_counter()
        try:
            self._value = fn(*_resolve(args), **_resolve(kwargs))
            self._state = _DONE
            return True
        except BaseException as e:  # noqa: BLE001 — handed to the caller as __cause__
            self._exc = e
            self._state = _FAILED
            self._scope._failed(self)
            return False
        finally:
            self._t1 = time.perf_counter()

    # -- the value
    def _get(self):
        if self._state == _DONE:
            return self._value
        scope = self._scope
        if self._state not in (_FAILED, _CANCELLED):
            t0 = time.perf_counter()
            g = scope.graph
            b = _BATCHER.get()
            if b is not None:  # a vmap example waiting for its call: the others need not wait for it
                b.block()
            try:
                s = g.wait(self._id, _WAIT_SLICE_S)
                while s < _DONE:  # back in the interpreter between slices: KeyboardInterrupt can land
                    s = g.wait(self._id, _WAIT_SLICE_S)
            finally:
                if b is not None:
                    b.unblock()
            scope.waited_s += time.perf_counter() - t0
            if s == _CANCELLED and self._state == _PENDING:
                self._state = _CANCELLED
        if self._state == _DONE:
            return self._value
        raise scope._error_for(self)

    @property
    def done(self):
        """True once the call finished (successfully or not) or was cancelled."""
        return self._state in (_DONE, _FAILED, _CANCELLED)

    def result(self):
        """The value (waits); raises XCSExecutionError if the call failed."""
        return self._get()

    def __repr__(self):
        state = {_DONE: "done", _FAILED: "failed", _CANCELLED: "cancelled"}.get(self._state, "pending")
        return f"<Deferred #{self._id} {self._name} ({state})>"

    # -- Python glue waits for the value
    def __str__(self):
        return str(self._get())

    def __format__(self, spec):
        return format(self._get(), spec)

    def __bytes__(self):
        return bytes(self._get())

    def __len__(self):
        return len(self._get())

    def __iter__(self):
        return iter(self._get())

    def __reversed__(self):
        return reversed(self._get())

    def __contains__(self, x):
        return x in self._get()

    def __getitem__(self, k):
        return self._get()[k]

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols are looked up on the type; do not wait for them
        return getattr(self._get(), name)

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def __bool__(self):
        return bool(self._get())

    def __hash__(self):
        return hash(self._get())

    def __eq__(self, other):
        return self._get() == _resolve(other)

    def __ne__(self, other):
        return self._get() != _resolve(other)

    def __lt__(self, other):
        return self._get() < _resolve(other)

    def __le__(self, other):
        return self._get() <= _resolve(other)

    def __gt__(self, other):
        return self._get() > _resolve(other)

    def __ge__(self, other):
        return self._get() >= _resolve(other)

    def __int__(self):
        return int(self._get())

    def __float__(self):
        return float(self._get())

    def __index__(self):
        return self._get().__index__()

    def __array__(self, dtype=None, copy=None):
        import numpy as np
        return np.asarray(self._get(), dtype=dtype)


def _binop(name):
    def fwd(self, other):
        return getattr(self._get(), name)(_resolve(other))

    def rev(self, other):
        return getattr(_resolve(other), name)(self._get())
    fwd.__name__ = f"__{name.strip('_')}__"
    return fwd, rev


for _op in ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift",
            "rshift"):
    def _mk(op):
        def fwd(self, other):
            import operator
            return getattr(operator, op if op not in ("and", "or") else op + "_")(self._get(), _resolve(other))

        def rev(self, other):
            import operator
            return getattr(operator, op if op not in ("and", "or") else op + "_")(_resolve(other), self._get())
        return fwd, rev
    _f, _r = _mk(_op)
    setattr(Deferred, f"__{_op}__", _f)
    setattr(Deferred, f"__r{_op}__", _r)
for _op, _fn in (("neg", lambda v: -v), ("pos", lambda v: +v), ("abs", abs), ("invert", lambda v: ~v)):
    setattr(Deferred, f"__{_op}__", (lambda f: lambda self: f(self._get()))(_fn))
del _op, _fn, _f, _r, _mk, _binop


# ------------------------------------------------------------------ the scope of one jitted call


class Scope:
    """The orchestration calls of one jitted call: its task graph, its
    Deferreds, its first failure and its counters."""

    def __init__(self, config, owner_name):
        self.parallel = bool(getattr(config, "parallel", True))
        self.max_workers = getattr(config, "workers", 32)
        self.owner = owner_name
        self.graph = _xcs.TaskGraph(self.max_workers) if self.parallel else None
        self.deferreds = []
        self.failure = None        # the first Deferred that failed
        self.observed = set()      # ids whose failure the body has seen (raised at a use)
        self.calls = 0
        self.waited_s = 0.0
        self.serial_ms = []        # durations of inline calls (parallel=False)
        self._lock = threading.Lock()

    # -- submission (the body's thread)
    def submit(self, fn, args, kwargs):
        self.calls += 1
        # one pass over the arguments: lazy arrays are computed here, on the
        # body's thread; Deferreds of this call become dependencies
        found, lazy, fixed = [], [], []
        _scan(args, found, lazy, fixed)
        if kwargs:
            _scan(kwargs, found, lazy, fixed)
        if lazy or fixed:
            # the call gets the values; the body's own lazy arrays stay lazy,
            # so tensor work on them after the call is recorded (and fused) too
            prepare(lazy + fixed)
            for a in fixed:
                _concretize(a)
            if lazy:
                twins = {id(a): _xcs._lazy_value(a) for a in lazy}
                swap = lambda v: twins.get(id(v), v) if type(v) is _xcs.Array else v  # noqa: E731
                args = _rebuild(args, swap)
                if kwargs:
                    kwargs = _rebuild(kwargs, swap)
        if not self.parallel:  # program order, on this thread
            idx = self.calls - 1
            name = _name_of(fn)
            try:
                return fn(*_resolve(args), **_resolve(kwargs))
            except BaseException as e:
                if not isinstance(e, Exception):
                    raise
                raise XCSExecutionError(
                    f"orchestration call #{idx} {name}() raised {type(e).__name__}: {e}", node_id=idx,
                    callable=name) from e
        d = Deferred(self, fn, args, kwargs)
        deps = [f._id for f in found if f._scope is self]
        f = self.failure
        if f is not None and f._id not in self.observed:
            deps.append(f._id)  # the call will raise: the graph cancels this one at once, nothing new starts
        self.deferreds.append(d)
        d._id = self.graph.submit(d, deps) if deps else self.graph.submit(d)
        if self.graph.state(d._id) == _CANCELLED:
            d._state = _CANCELLED
            d._args = d._kwargs = None
        return d

    def _failed(self, d):  # a worker thread, GIL held
        with self._lock:
            if self.failure is None:
                self.failure = d

    def _error_for(self, d):
        """The XCSExecutionError for a use of failed or cancelled Deferred d.

        A call cancelled because another one failed raises that failure (what
        plain Python would have raised first), naming d as the call that
        needed it."""
        f = d if d._state == _FAILED else self.failure
        if f is None:
            return XCSExecutionError(f"orchestration call #{d._id} {d._name}() in jit({self.owner}) was cancelled "
                                     f"before it started", node_id=d._id, callable=d._name)
        self.observed.add(f._id)
        if not isinstance(f._exc, Exception):  # KeyboardInterrupt, SystemExit: as they are, never wrapped
            return f._exc
        if isinstance(f._exc, XCSExecutionError) and getattr(f._callee, "_xcs_transparent", False):
            return f._exc  # a transformation's own per-example call: the user's call failed inside it
        via = "" if f is d else f" (call #{d._id} {d._name}() was cancelled because of it)"
        err = XCSExecutionError(
            f"orchestration call #{f._id} {f._name}() in jit({self.owner}) raised "
            f"{type(f._exc).__name__}: {f._exc}{via}", node_id=f._id, callable=f._name)
        err.__cause__ = f._exc
        return err

    # -- the end of the call
    def finish(self):
        """Waits for every call; raises the first failure the body did not see."""
        if self.graph is None:
            return
        t0 = time.perf_counter()
        while self.graph.wait(-1, _WAIT_SLICE_S) != _DONE:
            pass
        self.waited_s += time.perf_counter() - t0
        f = self.failure
        if f is not None and f._id not in self.observed:
            raise self._error_for(f)

    def abort(self, exc):
        """The body raised exc.  Every call it submitted before raising would
        have run in the plain function, so they all run to the end (a failed
        call has already cancelled what it could); exc is raised after.  An
        interrupted caller (exc a KeyboardInterrupt) cancels what has not
        started and returns at once: running calls finish in the background
        and their results are dropped."""
        if self.graph is None:
            return
        if isinstance(exc, KeyboardInterrupt):
            self.graph.cancel()
            _ABANDONED.append(self)
            return
        while self.graph.wait(-1, _WAIT_SLICE_S) != _DONE:
            pass

    def record_profile(self, fn, t0):
        """Adds this call, begun at perf_counter() t0, to fn's profile (get_jit_stats)."""
        from ember.xcs.api import stats as _stats

        s = self.stats()
        _stats.record(fn, (time.perf_counter() - t0) * 1e3, 0.0, s["orchestration_calls"], s["peak_concurrency"],
                      s["wait_ms"], mode="orchestration")

    def stats(self):
        s = self.graph.stats() if self.graph is not None else {"peak_running": 1 if self.calls else 0}
        return {"orchestration_calls": self.calls, "peak_concurrency": s["peak_running"],
                "wait_ms": self.waited_s * 1e3}

    # -- views (ember.xcs.runtime / compiler)
    def nodes(self):
        out, g = [], self.graph
        for d in self.deferreds:
            state = {_DONE: "done", _FAILED: "failed", _CANCELLED: "cancelled"}.get(d._state, "pending")
            out.append({"id": d._id, "callable": d._name, "kind": "orchestration",
                        "inputs": list(g.deps(d._id)), "level": g.level(d._id), "state": state,
                        "start_s": d._t0, "end_s": d._t1})
        return out


_ABANDONED = []  # scopes left running by an interrupted call (kept alive until their calls end)


def _reap_abandoned():
    for s in list(_ABANDONED):
        if s.graph is None or s.graph.active == 0:
            _ABANDONED.remove(s)


# ------------------------------------------------------------------ interception


def call_orchestration(fn, args, kwargs):
    """What a marked orchestration callable does when called: inside a
    jitted call, submit to its scope (returns a Deferred); inside a tensor
    trace, ask jit to switch modes; elsewhere, just call."""
    scope = _SCOPE.get()
    if scope is not None:
        return scope.submit(fn, args, kwargs)
    if _TRACING.get():
        raise NeedsOrchestration(_name_of(fn))
    return fn(*args, **kwargs)


class _Intercept:
    """A callable standing in for an orchestration callable that was not
    marked (classified by the heuristics): calls go through
    call_orchestration; everything else is the original's."""

    __slots__ = ("_xcs_wrapped", "__weakref__")

    def __init__(self, fn):
        object.__setattr__(self, "_xcs_wrapped", fn)

    def __call__(self, *args, **kwargs):
        return call_orchestration(object.__getattribute__(self, "_xcs_wrapped"), args, kwargs)

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_xcs_wrapped"), name)

    def __repr__(self):
        return f"<intercepted {object.__getattribute__(self, '_xcs_wrapped')!r}>"


_CODE_NAMES = weakref.WeakKeyDictionary()  # code object -> _code_names (code is immutable)


def _code_names(code, seen=None):
    """Global names a code object (and the code nested in it) reads, and
    whether it assigns any global."""
    if seen is None:
        done = _CODE_NAMES.get(code)
        if done is None:
            done = _CODE_NAMES[code] = _code_names(code, set())
        return done
    names, stores = set(code.co_names), False
    import dis
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            stores = True
    for c in code.co_consts:
        if isinstance(c, types.CodeType) and id(c) not in seen:
            seen.add(id(c))
            n, s = _code_names(c, seen)
            names |= n
            stores = stores or s
    return names, stores


def plan_interception(fn):
    """How jit runs fn's body in orchestration mode so that unmarked
    orchestration callables it names are intercepted.

    Returns ``(body, report)``: body is fn itself or a copy of it whose
    globals (a live overlay of the module's) and closure cells put an
    interceptor in front of each unmarked callable that :func:`classify`
    calls orchestration; report lists ``(name, kind, reason, intercepted)``
    for every callable fn names.
    """
    f = inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
    if not isinstance(f, types.FunctionType):
        return fn, []
    names, stores = _code_names(f.__code__)
    report, wrap_globals, wrap_cells = [], {}, {}
    g = f.__globals__
    for n in sorted(names):
        if n in g:
            obj = g[n]
        elif isinstance(g.get("__builtins__"), dict) and n in g["__builtins__"]:
            continue  # builtins are glue
        else:
            continue
        if not callable(obj) or isinstance(obj, type(sys)):
            continue
        kind, why = classify(obj)
        marked = getattr(obj, "_xcs_is_orchestration", None) is not None or getattr(
            _target(obj), "_xcs_is_orchestration", None) is not None
        need = kind in ("orchestration", "hybrid") and not marked
        if need and not stores:
            wrap_globals[n] = _Intercept(obj)
        report.append((n, kind, why, (need and not stores) or marked))
    for i, n in enumerate(f.__code__.co_freevars):
        try:
            obj = f.__closure__[i].cell_contents
        except ValueError:  # empty cell
            continue
        if not callable(obj):
            continue
        kind, why = classify(obj)
        marked = getattr(obj, "_xcs_is_orchestration", None) is not None
        need = kind in ("orchestration", "hybrid") and not marked
        if need:
            wrap_cells[i] = _Intercept(obj)
        report.append((n, kind, why, need or marked))
    if not wrap_globals and not wrap_cells:
        return fn, report
    glb = _Overlay(g, wrap_globals) if wrap_globals else g
    cells = f.__closure__
    if wrap_cells:
        cells = tuple(types.CellType(wrap_cells[i]) if i in wrap_cells else c for i, c in enumerate(cells))
    body = types.FunctionType(f.__code__, glb, f.__name__, f.__defaults__, cells)
    body.__kwdefaults__ = f.__kwdefaults__
    body.__dict__.update(f.__dict__)
    return body, report


class _Overlay(dict):
    """Globals for the intercepting copy of a function: reads go to the
    module's live globals, except the intercepted names."""

    __slots__ = ("_base", "_over")

    def __init__(self, base, over):
        super().__init__()
        self._base = base
        self._over = over
        dict.__setitem__(self, "__builtins__", base.get("__builtins__", __builtins__))
        dict.__setitem__(self, "__name__", base.get("__name__"))

    def __getitem__(self, k):
        o = self._over.get(k)
        if o is not None:
            return o
        return self._base[k]

    def get(self, k, default=None):
        try:
            return self[k]
        except KeyError:
            return default

    def __contains__(self, k):
        return k in self._over or k in self._base
