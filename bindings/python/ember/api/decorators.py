"""ember.api.decorators — ``mark_orchestration``, ``mark_tensor``, ``mark_hybrid``.

They tell ``jit`` what a callable is, so it does not have to guess::

    from ember.api.decorators import mark_orchestration

    @mark_orchestration
    def ask(prompt: str) -> str:          # an LLM / tool call
        return client.complete(prompt)

Inside a jitted call an orchestration callable is submitted to the host task
graph and returns a ``Deferred`` at once (independent calls run
concurrently); outside ``jit`` it is an ordinary call.  ``mark_tensor``
marks numerical code (traced and fused by ``jit``); ``mark_hybrid`` marks a
callable that does both (run as orchestration: its tensor work runs inside
the task).

Each decorator accepts a function, a bound method, a callable object or a
class (its instances' calls are then orchestration calls), sets
``_xcs_is_orchestration`` / ``_xcs_is_tensor`` and returns a callable with
the original's name, docstring, signature and ``__wrapped__``.  Unmarked
callables are classified by :func:`ember.xcs._orchestration.classify`
(module prefixes such as ``openai``, ``anthropic``, ``litellm``; whole words
such as ``llm``, ``completion``); ``ember.xcs.explain(f)`` shows the
decision for every callable a function names.
"""
from __future__ import annotations

import functools
import inspect

from ember.xcs._orchestration import call_orchestration

__all__ = ["mark_orchestration", "mark_tensor", "mark_hybrid"]


def _mark(obj, orchestration, tensor):
    name = "mark_hybrid" if orchestration and tensor else "mark_orchestration" if orchestration else "mark_tensor"
    if inspect.isclass(obj):
        # instances' calls go through the runtime: wrap __call__ on the class
        call = obj.__dict__.get("__call__")
        if call is None:
            raise TypeError(f"{name}: class {obj.__qualname__} defines no __call__")
        if orchestration:
            @functools.wraps(call)
            def __call__(self, *args, **kwargs):
                return call_orchestration(functools.partial(call, self), args, kwargs)
            __call__._xcs_is_orchestration = True
            __call__._xcs_is_tensor = tensor
            obj.__call__ = __call__
        obj._xcs_is_orchestration = orchestration
        obj._xcs_is_tensor = tensor
        return obj
    if not callable(obj):
        raise TypeError(f"{name} expects a callable, got {type(obj).__name__}")
    if not orchestration:
        return _tensor_region(obj)

    try:
        wraps = functools.wraps(obj)
    except (AttributeError, TypeError):
        wraps = (lambda f: f)

    @wraps
    def orchestration_fn(*args, **kwargs):
        return call_orchestration(obj, args, kwargs)

    if not hasattr(orchestration_fn, "__wrapped__"):
        orchestration_fn.__wrapped__ = obj
    if not inspect.isfunction(obj) and not inspect.ismethod(obj):  # a callable object: its name for messages
        orchestration_fn.__qualname__ = getattr(obj, "__qualname__", type(obj).__qualname__)
    orchestration_fn._xcs_is_orchestration = True
    orchestration_fn._xcs_is_tensor = tensor
    return orchestration_fn


def _tensor_region(fn):
    """A marked tensor callable: inside an orchestration-mode jitted call it
    runs through its own jit (traced once per signature, fused, cached), so
    tensor regions of an orchestration body are compiled; inside a trace it
    is traced inline; elsewhere it is a plain call.  Arguments jit cannot
    trace (strings, objects) or value-dependent control flow make that call
    (and, for the latter, every later one) plain."""
    from ember.xcs._orchestration import current_scope
    from ember.xcs.errors import XCSTracerError, XCSTypeError

    state = {"jit": None, "eager": False}

    try:
        wraps = functools.wraps(fn)
    except (AttributeError, TypeError):
        wraps = (lambda f: f)

    @wraps
    def tensor_fn(*args, **kwargs):
        if current_scope() is None or state["eager"]:
            return fn(*args, **kwargs)
        if state["jit"] is None:
            from ember.xcs.api.jit import JittedFunction
            state["jit"] = JittedFunction(fn)
        try:
            return state["jit"](*args, **kwargs)
        except XCSTracerError:
            state["eager"] = True  # value-dependent Python control flow: not traceable
        except XCSTypeError as e:
            if "cannot be traced" not in str(e):
                raise
        return fn(*args, **kwargs)

    if not hasattr(tensor_fn, "__wrapped__"):
        tensor_fn.__wrapped__ = fn
    tensor_fn._xcs_is_orchestration = False
    tensor_fn._xcs_is_tensor = True
    tensor_fn._xcs_jit = lambda: state["jit"]  # the compiled form, once used (for stats / explain)
    return tensor_fn


def mark_orchestration(fn):
    """Marks an LLM / tool call: concurrent (a ``Deferred``) inside ``jit``."""
    return _mark(fn, True, False)


def mark_tensor(fn):
    """Marks numerical code: traced and fused by ``jit``, also when it is
    called from the body of a jitted function that makes orchestration calls
    (that body re-runs in Python; a marked tensor helper is compiled)."""
    return _mark(fn, False, True)


def mark_hybrid(fn):
    """Marks a callable that mixes both: run as an orchestration call."""
    return _mark(fn, True, True)
