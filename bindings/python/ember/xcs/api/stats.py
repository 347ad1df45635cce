"""ember.xcs.api.stats — per-function profiles of jitted calls.

Profiling is off unless a function's ``Config(profile=True)`` (or a per-call
``_config=``) asks for it, or the environment sets ``EMBER_XCS_PROFILE=1``.
Off, a call only checks one flag.  On, every call records its wall time, the
part spent tracing/compiling, the orchestration calls it made, the most of
them running at once, and how long the caller waited for their results::

    from ember.xcs import Config, jit, get_jit_stats

    @jit(config=Config(profile=True))
    def pipeline(q): ...

    pipeline("a"); pipeline("b")
    get_jit_stats(pipeline)
    # {'calls': 2, 'total_time_ms': ..., 'avg_time_ms': ..., 'min_time_ms': ...,
    #  'max_time_ms': ..., 'trace_time_ms': ..., 'execute_time_ms': ...,
    #  'orchestration_calls': 8, 'peak_concurrency': 4, 'wait_time_ms': ...,
    #  'mode': 'orchestration'}

Records are keyed by the jitted function object (two functions with the same
``__name__`` never share one) and die with it.
"""
from __future__ import annotations

import threading
import weakref

__all__ = ["get_jit_stats", "reset_stats", "record"]

_LOCK = threading.Lock()
_RECORDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _empty():
    return {"calls": 0, "total_time_ms": 0.0, "min_time_ms": 0.0, "max_time_ms": 0.0, "trace_time_ms": 0.0,
            "orchestration_calls": 0, "peak_concurrency": 0, "wait_time_ms": 0.0, "mode": "tensor"}


def record(fn, total_ms, trace_ms=0.0, orchestration_calls=0, peak_concurrency=0, wait_ms=0.0, mode="tensor"):
    """Adds one call of jitted function ``fn`` (used by jit)."""
    with _LOCK:
        r = _RECORDS.get(fn)
        if r is None:
            r = _RECORDS[fn] = _empty()
        r["calls"] += 1
        r["total_time_ms"] += total_ms
        r["min_time_ms"] = total_ms if r["calls"] == 1 else min(r["min_time_ms"], total_ms)
        r["max_time_ms"] = max(r["max_time_ms"], total_ms)
        r["trace_time_ms"] += trace_ms
        r["orchestration_calls"] += orchestration_calls
        r["peak_concurrency"] = max(r["peak_concurrency"], peak_concurrency)
        r["wait_time_ms"] += wait_ms
        r["mode"] = mode


def _view(r):
    out = dict(r)
    out["avg_time_ms"] = r["total_time_ms"] / r["calls"] if r["calls"] else 0.0
    out["execute_time_ms"] = r["total_time_ms"] - r["trace_time_ms"]
    return out


def _key(fn):
    """The jitted function a user's handle stands for (the jitted function
    itself, or the plain function it wraps)."""
    try:
        weakref.ref(fn)
    except TypeError:
        from ember.xcs.errors import XCSTypeError

        raise XCSTypeError(f"expected a jitted (or vmapped) function, got {type(fn).__name__}") from None
    if fn in _RECORDS:
        return fn
    for k in list(_RECORDS.keys()):
        if getattr(k, "__wrapped__", None) is fn:
            return k
    return fn


def get_jit_stats(fn=None):
    """The profile of jitted function ``fn`` (a dict; all zeros when it was
    never called with profiling on), or, without ``fn``, a dict mapping every
    profiled jitted function to its profile."""
    with _LOCK:
        if fn is None:
            return {k: _view(v) for k, v in _RECORDS.items()}
        r = _RECORDS.get(_key(fn))
        return _view(r if r is not None else _empty())


def reset_stats(fn=None):
    """Forgets the profile of ``fn``, or of every function."""
    with _LOCK:
        if fn is None:
            _RECORDS.clear()
        else:
            _RECORDS.pop(_key(fn), None)
