"""ember.xcs.runtime — running jitted calls and watching them run.

``ExecutionEngine``
    ``ExecutionEngine(config).run(f, *args, **kwargs)`` runs one jitted call
    (``f`` jitted or plain) with ``config`` and keeps a record of it:
    ``last_graph`` (an ``ember.xcs.compiler.IRGraph``: for an orchestration
    call, every call it made with its dependencies, dependency level, state
    and start/end times, so overlaps are visible; for a tensor call, the
    compiled program's nodes) and ``last_stats`` (orchestration calls, peak
    concurrency, time spent waiting, wall time).
``Profiler``
    The per-function profiles behind ``get_jit_stats``: ``Profiler.get(f)``,
    ``Profiler.get()`` (all), ``Profiler.reset(f=None)``,
    ``Profiler.enabled(config)`` (whether a call with that config records).

The host task graph itself is C (src/host/taskgraph.c); its Python face is
``ember.xcs._xcs.TaskGraph``.
"""
from __future__ import annotations

import time

from ember.xcs import _orchestration as orch
from ember.xcs.api import stats as _stats
from ember.xcs.compiler import IRGraph
from ember.xcs.config import Config, profile_from_env

__all__ = ["ExecutionEngine", "Profiler"]


class ExecutionEngine:
    """Runs jitted calls and records the last one (see the module docstring)."""

    def __init__(self, config=None):
        self.config = config if config is not None else Config()
        self.last_graph = None
        self.last_stats = None

    def run(self, fn, *args, **kwargs):
        from ember.xcs.api.jit import JittedFunction

        jf = fn if isinstance(fn, JittedFunction) else JittedFunction(fn, config=self.config)
        t0 = time.perf_counter()
        out, scope, entry = jf._run_recorded(args, kwargs, self.config)
        wall_ms = (time.perf_counter() - t0) * 1e3
        if scope is not None:
            self.last_graph = IRGraph.from_tasks(scope.nodes() if scope.graph is not None else [])
            s = scope.stats()
            self.last_stats = {"mode": "orchestration", "wall_ms": wall_ms, **s}
        else:
            self.last_graph = IRGraph.from_graph(entry.graph) if entry is not None else None
            self.last_stats = {"mode": "tensor", "wall_ms": wall_ms, "orchestration_calls": 0,
                               "peak_concurrency": 0, "wait_ms": 0.0}
        return out


class Profiler:
    """The per-function profiles (``get_jit_stats``)."""

    get = staticmethod(_stats.get_jit_stats)
    reset = staticmethod(_stats.reset_stats)

    @staticmethod
    def enabled(config=None):
        return bool(getattr(config, "profile", False)) or profile_from_env()


def _scope():  # the orchestration scope of the jitted call running on this thread (for debugging)
    return orch.current_scope()
