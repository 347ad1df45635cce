"""ember.xcs.compiler — views of what ``jit`` traced and how it can run in parallel.

The seed's names, as thin Python views of the C objects:

``IRGraph``
    The nodes of one traced program: a tensor graph (the C ``Graph``: ops,
    dtypes, shapes, fusion groups) or the task graph of an orchestration
    call (callables, dependencies, states, timings).  ``levels()`` groups the
    nodes by dependency depth; ``dump()`` prints them.
``IRBuilder``
    ``IRBuilder().trace(f, *args)`` traces a tensor function for these
    arguments and returns its optimised ``IRGraph`` (what ``jit`` compiles).
    Orchestration functions are not traced (their Python body re-runs each
    call): record one call with ``ember.xcs.runtime.ExecutionEngine``.
``ParallelismAnalyzer``
    ``ParallelismAnalyzer().analyze(ir)`` -> levels, the widest level, the
    depth (critical path in nodes), and the groups of nodes that can run
    concurrently.
"""
from __future__ import annotations

import dataclasses

from ember.xcs import _xcs
from ember.xcs.errors import XCSValueError

__all__ = ["IRNode", "IRGraph", "IRBuilder", "ParallelismAnalyzer"]


@dataclasses.dataclass(frozen=True)
class IRNode:
    """One node.  Tensor nodes have ``dtype``, ``shape``, ``group`` (fused
    group, None when unfused); orchestration nodes have ``callable``,
    ``state`` and ``start_s`` / ``end_s`` (``time.perf_counter`` seconds)."""

    id: int
    op: str                      # an op name, "input", "const", or "orchestration"
    inputs: tuple = ()
    level: int = 0
    dtype: str | None = None
    shape: tuple | None = None
    group: int | None = None
    stored: bool = True
    callable: str | None = None
    state: str | None = None
    start_s: float | None = None
    end_s: float | None = None


def _levels(nodes):
    level = {}
    for n in nodes:  # nodes come in dependency order in both kinds of graph
        level[n["id"]] = 1 + max((level[i] for i in n["inputs"] if i in level), default=-1)
    return level


class IRGraph:
    """A traced program's nodes (see the module docstring)."""

    def __init__(self, nodes, kind):
        self.nodes = tuple(nodes)
        self.kind = kind  # "tensor" or "orchestration"

    @classmethod
    def from_graph(cls, graph):
        """The view of a C ``Graph`` (ember.xcs._xcs.Graph)."""
        raw = graph.nodes()
        level = _levels(raw)
        return cls([IRNode(id=n["id"], op=n["op"], inputs=tuple(n["inputs"]), level=level[n["id"]],
                           dtype=n["dtype"], shape=tuple(n["shape"]), group=None if n["group"] < 0 else n["group"],
                           stored=n["stored"]) for n in raw], "tensor")

    @classmethod
    def from_tasks(cls, tasks):
        """The view of an orchestration call's task records (JittedFunction
        runs under ExecutionEngine or with profiling record them)."""
        return cls([IRNode(id=t["id"], op="orchestration", inputs=tuple(t["inputs"]), level=t["level"],
                           callable=t["callable"], state=t["state"], start_s=t["start_s"], end_s=t["end_s"])
                    for t in tasks], "orchestration")

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    def levels(self):
        """Node ids grouped by dependency level (level 0 first)."""
        out = {}
        for n in self.nodes:
            out.setdefault(n.level, []).append(n.id)
        return [out[k] for k in sorted(out)]

    def dump(self):
        lines = []
        for n in self.nodes:
            if self.kind == "tensor":
                g = f"  [group {n.group}]" if n.group is not None else ""
                lines.append(f"%{n.id} = {n.op}({', '.join(f'%{i}' for i in n.inputs)}) {n.dtype}{list(n.shape)}"
                             f"  level {n.level}{g}")
            else:
                took = f", {1e3 * (n.end_s - n.start_s):.1f} ms" if n.end_s and n.start_s else ""
                lines.append(f"#{n.id} {n.callable}({', '.join(f'#{i}' for i in n.inputs)})  level {n.level}, "
                             f"{n.state}{took}")
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"<IRGraph {self.kind}: {len(self.nodes)} nodes, {len(self.levels())} levels>"


class IRBuilder:
    """Traces tensor functions into IRGraphs (what jit compiles)."""

    def trace(self, fn, *args, **kwargs):
        from ember.xcs import _orchestration as orch
        from ember.xcs.api.jit import JittedFunction

        jf = fn if isinstance(fn, JittedFunction) else JittedFunction(fn)
        if not jf._planned:
            jf._plan()
        if jf._mode == "orchestration":
            raise XCSValueError(f"IRBuilder.trace: {jf.__name__} makes orchestration calls, so jit re-runs its "
                                f"Python body on every call instead of tracing it; record a call with "
                                f"ember.xcs.runtime.ExecutionEngine().run({jf.__name__}, ...)")
        try:
            entry = jf._trace_aside(args, kwargs)[0]
        except orch.NeedsOrchestration as e:
            raise XCSValueError(f"IRBuilder.trace: {jf.__name__} reached orchestration call {e}; record a call "
                                f"with ember.xcs.runtime.ExecutionEngine instead") from None
        return IRGraph.from_graph(entry.graph)


class ParallelismAnalyzer:
    """What can run at once in an IRGraph."""

    def analyze(self, ir):
        if not isinstance(ir, IRGraph):
            raise XCSValueError(f"ParallelismAnalyzer.analyze expects an IRGraph, got {type(ir).__name__}")
        levels = ir.levels()
        return {"levels": levels, "depth": len(levels), "width": max((len(lv) for lv in levels), default=0),
                "parallel_groups": [lv for lv in levels if len(lv) > 1]}


def _graph_type():  # keeps the C type importable from here for introspection
    return _xcs.Graph
