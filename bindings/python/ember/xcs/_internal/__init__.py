"""ember.xcs._internal — legacy import paths of the reference implementation.

They forward to the structured modules (the seed README's migration notes):
``_internal.analysis`` -> :mod:`ember.xcs.compiler` (``ParallelismAnalyzer``),
``_internal.ir`` -> ``IRGraph`` / ``IRNode``, ``_internal.builder`` ->
``IRBuilder``, ``_internal.engine`` -> :mod:`ember.xcs.runtime`
(``ExecutionEngine``), ``_internal.profiler`` -> ``Profiler``.  New code
should import from ``ember.xcs.compiler`` and ``ember.xcs.runtime``.
"""
import sys
import types

from ember.xcs import compiler as _compiler
from ember.xcs import runtime as _runtime

_FORWARDS = {
    "analysis": (_compiler, ("ParallelismAnalyzer",)),
    "ir": (_compiler, ("IRGraph", "IRNode")),
    "builder": (_compiler, ("IRBuilder",)),
    "engine": (_runtime, ("ExecutionEngine",)),
    "profiler": (_runtime, ("Profiler",)),
}

for _name, (_target, _names) in _FORWARDS.items():
    _mod = types.ModuleType(f"{__name__}.{_name}", f"Legacy alias: forwards to {_target.__name__}.")
    for _n in _names:
        setattr(_mod, _n, getattr(_target, _n))
    _mod.__all__ = list(_names)
    sys.modules[_mod.__name__] = _mod
    globals()[_name] = _mod

from ember.xcs.compiler import IRBuilder, IRGraph, IRNode, ParallelismAnalyzer  # noqa: E402
from ember.xcs.runtime import ExecutionEngine, Profiler  # noqa: E402

__all__ = ["analysis", "ir", "builder", "engine", "profiler", "IRBuilder", "IRGraph", "IRNode",
           "ParallelismAnalyzer", "ExecutionEngine", "Profiler"]
