"""ember.xcs.api.jit — ``jit``: trace once per abstract signature, replay the graph.

How a call runs (DESIGN.md §4.2-4.3, JAX semantics for tensor functions):

1. The arguments are split into static ones (``static_argnums`` /
   ``static_argnames``, compared by value, must be hashable) and dynamic ones,
   a pytree (see :mod:`ember.xcs.api.pytree`).  Dynamic leaves must be arrays
   (``Array``, numpy arrays and scalars, DLPack producers, ``__array__``
   objects) or Python ``bool``/``int``/``float`` (traced as *weak* 0-d values,
   so they promote like Python scalars: ``x * s`` stays float32).
2. Cache key: ``(structure, ((shape, dtype, weak) per leaf), static args)``.
   A hit runs the cached graph (``Graph.run``: no Python, GIL released); a miss
   traces: every leaf becomes a traced ``Array`` of a new ``Graph``, the
   function runs once and each op records a node; closure/global arrays become
   constants.  Python control flow on shapes works; reading a traced value
   (``if x.sum() > 0``, ``float(x)``) raises ``XCSTracerError`` naming the
   source line.
3. Outputs: a pytree of arrays; Python scalars in the output are returned as
   they were at trace time (constants); other objects raise ``XCSTypeError``.
4. The cache is an LRU of ``cache_size`` entries (default 64) per jitted
   function; evictions are counted in ``f.stats()``.

Concurrency: one lock per jitted function guards the cache and counters; a
miss is traced outside it, with a per-key "pending" event so that threads
missing on the same signature trace it once while threads with other
signatures proceed.  ``Graph.run`` is lock-free (``xcs_graph_run`` only reads
the graph) so cached programs run concurrently.

Nesting: a jitted function called with a traced argument (inside another
trace) calls its Python function directly, inlining it into the outer trace;
such calls are counted as ``inlined`` in its stats and touch neither its cache
nor its hit/miss counters.

Compilation: ``Graph.optimize`` removes algebraic no-ops, common
subexpressions and dead nodes, then plans fusion: runs of elementwise ops
(ending in at most one reduction) become one fused program that the CPU
backend runs over cache-sized tiles without materialising intermediates.
``fused_groups`` and ``kernels_per_call`` in ``stats()`` report that plan.
"""

import collections
import functools
import inspect
import os
import threading
import time
import types

import numpy as np

from ember.xcs import _orchestration as orch
from ember.xcs import _xcs
from ember.xcs._xcs import Array, Graph
from ember.xcs.numpy import _numeric
from ember.xcs.api import pytree
from ember.xcs.api import stats as _stats
from ember.xcs.config import Config, profile_from_env
from ember.xcs.errors import XCSError, XCSMemoryError, XCSTracerError, XCSTypeError, XCSValueError

__all__ = ["jit", "explain", "JittedFunction", "DEFAULT_CACHE_SIZE"]

DEFAULT_CACHE_SIZE = 64
# how long a call waits for another thread's trace of its signature before tracing on its own
_PENDING_WAIT_S = 2.0

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))
_DEFAULT_CONFIG = Config()
_is_traced = _xcs._is_traced
_signature = _xcs._signature
_ONE = object()  # a marker leaf

_WEAK = {bool: "bool", int: "int64", float: "float64"}


# ---------------------------------------------------------------- the Python values a trace bakes in
#
# A tensor-only function is traced once per signature, so the Python values its body reads from
# its closure and its module's globals are baked into the trace.  They join the cache key, so a
# rebinding (k = 5.0, W = new_array) traces again instead of replaying the old value: numbers and
# strings by value, arrays (and anything else that is not a number) by identity.  Modules,
# functions and classes are not keyed; nor are values reached through objects or containers
# (self.k, cfg["k"]): pass those as arguments.

_BY_VALUE = frozenset((int, bool, str, bytes, type(None), complex))
_MISSING = object()


def _env_value(v):
    """v's part of the key: a float as it is (no other part is a bare float), or its hex where
    NaN must equal itself and -0.0 differ from 0.0; (type, value) for other numbers and strings;
    id(v) for arrays and other data (the cache entry keeps v alive: the id is not reused while the
    entry lives); None for modules and callables (functions, classes)."""
    t = type(v)
    if t is float:
        return v if v == v and v else v.hex()
    if t is np.ndarray or t is Array:
        return id(v)
    if t in _BY_VALUE:
        return (t, v)
    if t is tuple and len(v) <= 32:
        return (t, tuple(_env_value(x) for x in v))
    if isinstance(v, types.ModuleType) or callable(v):
        return None
    return id(v)


def _global_names(code, out):
    """The global names code (and the functions and comprehensions defined in it) may read."""
    out.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _global_names(c, out)
    return out


def _env_sources(fn):
    """(cells, globals, names) of fn's closure and of the globals its code names that hold data at
    the first call (a module, function or class bound then is taken to stay one); None for
    callables without Python code."""
    fn = inspect.unwrap(fn) if isinstance(fn, types.FunctionType) else fn
    code, g = getattr(fn, "__code__", None), getattr(fn, "__globals__", None)
    if not isinstance(code, types.CodeType) or not isinstance(g, dict):
        return None
    names = tuple(sorted(n for n in _global_names(code, set()) if n in g and _env_value(g[n]) is not None))
    cells = tuple(fn.__closure__ or ())
    return (cells, g, names) if cells or names else None


def _env_values(src):
    """The values of src's closure cells (_MISSING for an empty one: a name bound later) and of
    its globals (_MISSING for one deleted since)."""
    cells, g, names = src
    vals = []
    for c in cells:
        try:
            vals.append(c.cell_contents)
        except ValueError:
            vals.append(_MISSING)
    vals.extend([g.get(n, _MISSING) for n in names])
    return vals


def _env_key(src):
    """The values fn reads from its closure and globals, as a cache key part (see above)."""
    return () if src is None else tuple(map(_env_value, _env_values(src)))


def _env_refs(src):
    """The objects keyed by identity now (kept by the cache entry, so their ids stay theirs)."""
    if src is None:
        return ()
    return tuple(v for v in _env_values(src) if type(v) not in _BY_VALUE and type(v) is not float)


_DT_NAMES = {}  # numpy dtype -> name: dtype.name is a slow Python property


def _dt_name(dt):
    name = _DT_NAMES.get(dt)
    if name is None:
        name = _DT_NAMES[dt] = dt.name
    return name


class _Entry:
    __slots__ = ("graph", "out_tree", "consts", "nodes", "kernels", "groups", "memory", "single", "env_refs")

    def __init__(self, graph, out_tree, consts, nodes, kernels, groups, memory):
        self.graph = graph
        self.out_tree = out_tree
        self.consts = consts  # per output leaf: None (a graph output) or (value,)
        self.nodes = nodes
        self.kernels = kernels  # kernel launches per call (fused groups + unfused ops)
        self.groups = groups    # fused groups
        self.memory = memory    # memory plan: {"buffers", "arena_bytes", "planned_bytes"}
        self.env_refs = ()      # what the key names by identity (_env_refs), alive while the entry is
        # the function returns one array, the graph's only output (no wrapping)
        self.single = len(consts) == 1 and consts[0] is None and pytree.unflatten(out_tree, [_ONE]) is _ONE


def _user_frame(tb):
    """(file, line, function) of the innermost frame outside ember and numpy."""
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename)
        if not path.startswith(_EMBER_DIR + os.sep) and not path.startswith(_NUMPY_DIR + os.sep):
            found = (code.co_filename, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    return found


def _locate(err):
    """XCSTracerError err with 'at file.py:12 in f' appended (once)."""
    if getattr(err, "_xcs_located", False):
        return err
    where = _user_frame(err.__traceback__)
    msg = str(err)
    if where:
        msg = f"{msg} (at {os.path.basename(where[0])}:{where[1]} in {where[2]})"
    new = type(err)(msg)
    new._xcs_located = True
    return new.with_traceback(err.__traceback__)


def _concrete(out):
    """out with every Deferred in it waited for and every lazy array computed
    (the results of a jitted call are concrete)."""
    leaves, tree = pytree.flatten(out)
    lazy = [v for v in leaves if type(v) is Array and _is_traced(v)]
    orch.prepare(lazy)  # with the other examples of a vmap
    for v in lazy:
        _xcs._concretize(v)
    if not any(type(v) is orch.Deferred or isinstance(v, (list, tuple, dict, set)) for v in leaves):
        return out
    return pytree.unflatten(tree, [orch.wait(v) for v in leaves])



def _lazy_args(args, kwargs, device=None):
    """args and kwargs with every numeric array leaf made a constant of a new
    lazy Graph: tensor work in an orchestration body is then recorded and
    computed (fused) when a value is needed, instead of op by op, on
    `device` (None: the CPU; "cuda:N": there, the values coming back to the
    host), without the GIL, so independent orchestration calls run
    meanwhile."""
    leaves, tree = pytree.flatten((args, kwargs))
    g = None
    out = []
    for v in leaves:
        t = type(v)
        if t is Array or (t is np.ndarray and _numeric(v.dtype)):
            if g is None:
                g = Graph(lazy=True, device=device)
            if t is Array and _is_traced(v):
                _xcs._concretize(v)  # an outer lazy region's value
                if _is_traced(v):
                    out.append(v)
                    continue
            v = g.constant(v)
        out.append(v)
    if g is None:
        return args, kwargs
    a, k = pytree.unflatten(tree, out)
    return tuple(a), k


class _Exact(tuple):
    """The weak flag of a Python int that int32 cannot hold: its trace sees the int itself (its value is
    in the cache key), so numpy's eager rules apply to it (arithmetic with an int32 array raises,
    a comparison is exact), which a traced value of unknown size could not follow."""

    __slots__ = ()


def _convert_leaf(leaf):
    """(value passed to Graph.run, (shape, dtype name, weak)) or None when unsupported."""
    t = type(leaf)
    if t is Array:
        return leaf, (leaf.shape, _dt_name(leaf.dtype), False)
    w = _WEAK.get(t)
    if w is not None:
        if t is int and not -2**31 <= leaf < 2**31:
            return leaf, ((), w, _Exact((leaf,)))
        return leaf, ((), w, True)
    if isinstance(leaf, (np.ndarray, np.generic)):
        a = _xcs._asarray(leaf)
        return a, (a.shape, a.dtype.name, False)
    if isinstance(leaf, Array):
        return leaf, (leaf.shape, leaf.dtype.name, False)
    if isinstance(leaf, bool):
        return bool(leaf), ((), "bool", True)
    if isinstance(leaf, int):
        return int(leaf), ((), "int64", True)
    if isinstance(leaf, float):
        return float(leaf), ((), "float64", True)
    if isinstance(leaf, (str, bytes)) or leaf is None:
        return None
    if hasattr(leaf, "__dlpack__") and hasattr(leaf, "__dlpack_device__"):
        try:
            a = _xcs.from_dlpack(leaf)
        except XCSError:
            a = _xcs._asarray(leaf)
        return a, (a.shape, a.dtype.name, False)
    if hasattr(leaf, "__array__") or hasattr(leaf, "__array_interface__"):
        a = _xcs._asarray(leaf)
        return a, (a.shape, a.dtype.name, False)
    return None


class JittedFunction:
    """A function compiled by :func:`jit` (see the module docstring)."""

    def __init__(self, fn, static_argnums=(), static_argnames=(), cache_size=None, config=None, tensor_only=False):
        if not callable(fn):
            raise XCSTypeError(f"jit: expected a callable, got {type(fn).__name__}")
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        if cache_size is None:
            cache_size = DEFAULT_CACHE_SIZE
        if not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 1:
            raise XCSValueError(f"jit: cache_size must be an int >= 1, got {cache_size!r}")
        if config is not None and not isinstance(config, Config):
            raise XCSTypeError(f"jit: config must be an ember.xcs.Config, got {type(config).__name__}")
        self._fn = fn
        self._env = _MISSING  # the closure and globals whose values join the cache key: at the first call
        self._config = config
        self._fast_dev = False  # Graph.run's device under self._config, resolved at the first call
        # orchestration: the body with unmarked LLM/tool callables intercepted,
        # and the classification of every callable fn names (explain(f)); made
        # at the first call, when the names a decorated function uses below
        # its definition exist
        self._body, self._report, self._planned = fn, [], tensor_only  # tensor_only: never orchestration mode
        self._mode = None  # None: tensor until a call says otherwise
        self._profile = bool(getattr(config, "profile", False)) or profile_from_env()
        # the fast path serves cache hits that need no per-call check
        self._fast = not self._profile and (config is None or (config.cache and config.max_memory_mb is None and
                                                               config.device in ("auto", "cpu")))
        self._cache_size = cache_size
        try:
            self._sig = inspect.signature(fn)
        except (TypeError, ValueError):
            self._sig = None
        nums, names = set(), set(static_argnames)
        params = list(self._sig.parameters.values()) if self._sig else []
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for n in static_argnums:
            if not isinstance(n, int):
                raise XCSTypeError(f"jit: static_argnums must be ints, got {n!r}")
            nums.add(n)
            if 0 <= n < len(positional):
                names.add(positional[n])
        for name in static_argnames:
            if name in positional:
                nums.add(positional.index(name))
        self._static_nums = frozenset(nums)
        self._fast_trees = {}  # n -> treedef of n positional array arguments
        self._static_names = frozenset(names)
        self._positional = positional
        self._lock = threading.Lock()
        self._cache = collections.OrderedDict()
        self._pending = {}
        self._counts = dict(calls=0, hits=0, misses=0, evictions=0, traces=0, inlined=0,
                            trace_time_ms=0.0, compile_time_ms=0.0, orchestrated=0)
        self._last_run = None  # task nodes of the last profiled orchestration call
        functools.update_wrapper(self, fn)

    # ------------------------------------------------------------ arguments

    def _split(self, args, kwargs):
        """(dynamic pytree, static key, rebuild(dynamic) -> (args, kwargs))."""
        n = len(args)
        snums = {i + n if i < 0 else i for i in self._static_nums}
        dyn_args = tuple(a for i, a in enumerate(args) if i not in snums)
        static_pos = tuple((i, args[i]) for i in range(n) if i in snums)
        dyn_kw = {k: v for k, v in kwargs.items() if k not in self._static_names}
        static_kw = tuple(sorted((k, v) for k, v in kwargs.items() if k in self._static_names))
        statics = (n, static_pos, static_kw)

        def rebuild(dyn):
            d_args, d_kw = dyn
            it = iter(d_args)
            full = [args[i] if i in snums else next(it) for i in range(n)]
            kw = dict(d_kw)
            kw.update(static_kw)
            return full, kw

        return (dyn_args, dyn_kw), statics, rebuild

    def _arg_name(self, path):
        """A readable name for a dynamic leaf path like "[0][1]['a']" and the static hint."""
        if path.startswith("[0]"):  # positional: [0][i]...
            rest = path[3:]
            i = int(rest[1:rest.index("]")])
            name = self._positional[i] if i < len(self._positional) else None
            hint = f"static_argnums=({i},)" + (f" or static_argnames=({name!r},)" if name else "")
            return f"argument {name or i}{rest[rest.index(']') + 1:]}", hint
        rest = path[3:]
        key = rest[2:rest.index("]") - 1]
        return f"argument {key}{rest[rest.index(']') + 1:]}", f"static_argnames=({key!r},)"

    # ------------------------------------------------------------ calling

    def __call__(self, *args, **kwargs):
        # Fast path for the common call: positional arrays, no static args,
        # already cached.  It builds exactly the key of the general path.
        if not kwargs and not self._static_nums and self._mode is None and self._fast and self._planned:
            sigs = _signature(args)  # None unless every argument is a concrete array
            if sigs is not None:
                n = len(args)
                tree = self._fast_trees.get(n)
                if tree is None:
                    tree = self._fast_trees[n] = pytree.flatten((tuple(range(n)), {}))[1]
                env = self._env
                if env is _MISSING:
                    env = self._env = _env_sources(self._fn)
                key = (tree, sigs, (n, (), ()), _env_key(env))
                with self._lock:
                    entry = self._cache.get(key)
                    if entry is not None:
                        self._cache.move_to_end(key)
                        self._counts["calls"] += 1
                        self._counts["hits"] += 1
                if entry is not None:
                    dev = self._fast_device()
                    if entry.single:
                        return entry.graph.run(args, dev)[0]
                    return self._outputs(entry, args, dev)
        return self._call(args, kwargs)

    def _fast_device(self):
        """Graph.run's device for calls under this function's own config
        (resolved once: the probe and the environment do not change)."""
        dev = self._fast_dev
        if dev is False:
            from ember.xcs import _device

            dev = self._fast_dev = _device.run_device(self._config)
        elif dev is not None:
            _xcs._cuda_set_tf32(bool(getattr(self._config, "allow_tf32", False)))
        return dev

    def _outputs(self, entry, values, dev=None):  # noqa: D401
        outs = iter(entry.graph.run(values, dev))
        leaves_out = [next(outs) if c is None else c[0] for c in entry.consts]
        return pytree.unflatten(entry.out_tree, leaves_out)

    def _call(self, args, kwargs):
        config = kwargs.pop("_config", None) or kwargs.pop("_xcs_config", None) or self._config
        kwargs.pop("_xcs_config", None)
        if config is not None and not isinstance(config, Config):
            raise XCSTypeError(f"jit({self.__name__}): _config must be an ember.xcs.Config, got "
                               f"{type(config).__name__}")
        if not self._planned:
            self._plan()
        if getattr(config, "device", "auto") not in ("auto", "cpu"):  # before any mode: no silent CPU run
            from ember.xcs import _device

            _device.resolve(config.device, f"jit({self.__name__}): Config.device")
        if self._mode == "orchestration":
            return self._call_orchestration(args, kwargs, config)
        prof = self._profile or bool(getattr(config, "profile", False))
        t_start = time.perf_counter() if prof else 0.0
        traced_ms = 0.0
        dyn, statics, rebuild = self._split(args, kwargs)
        leaves, treedef = pytree.flatten(dyn)
        inline = orch._ACTIVE.get() is not None  # called while another function is traced: join its trace
        for leaf in leaves:
            inline = inline or (type(leaf) is Array and _is_traced(leaf))
        if inline:
            with self._lock:
                self._counts["inlined"] += 1
            return self._body(*args, **kwargs)
        values, sigs = [], []
        for i, leaf in enumerate(leaves):
            conv = _convert_leaf(leaf)
            if conv is None:
                self._bad_leaf(dyn, i, leaf)
            if type(conv[1][2]) is not _Exact:  # an exact int is in the trace, not an input
                values.append(conv[0])
            sigs.append(conv[1])
        env = self._env
        if env is _MISSING:
            env = self._env = _env_sources(self._fn)
        key = (treedef, tuple(sigs), statics, _env_key(env))
        env_refs = _env_refs(env)
        try:
            hash(key)
        except TypeError as e:
            raise XCSValueError(f"jit({self.__name__}): static arguments must be hashable (they are part of "
                                f"the cache key): {e}") from None
        use_cache = getattr(config, "cache", True) is not False
        while True:
            with self._lock:
                self._counts["calls"] += 1
                entry = self._cache.get(key) if use_cache else None
                if entry is not None:
                    self._cache.move_to_end(key)
                    self._counts["hits"] += 1
                    break
                ev = self._pending.get(key) if use_cache else None
                if ev is None:
                    ev = threading.Event()
                    if use_cache:
                        self._pending[key] = ev
                    self._counts["misses"] += 1
                    owner = True
                else:
                    self._counts["calls"] -= 1  # counted again after the wait
                    owner = False
            if not owner:
                # another thread is tracing this signature: use its entry.  That thread may be
                # waiting for this one (its traced body joined a thread that calls here), so after
                # a while this call traces on its own instead: never a deadlock, at worst a
                # second trace
                if not ev.wait(_PENDING_WAIT_S):
                    with self._lock:
                        self._counts["calls"] += 1
                        self._counts["misses"] += 1
                    use_cache, owner = False, True
                    ev = threading.Event()
                elif self._mode == "orchestration":
                    return self._call_orchestration(args, kwargs, config)
                else:
                    continue
            t_trace = time.perf_counter()
            try:
                entry = self._compile(args, kwargs, treedef, sigs, rebuild)[0]
            except orch.NeedsOrchestration:
                # an orchestration call was reached: this function re-runs its
                # Python body on every call from now on
                self._mode = "orchestration"
                with self._lock:
                    self._counts["calls"] -= 1
                    self._counts["misses"] -= 1
                entry = None
            finally:
                with self._lock:
                    if use_cache:
                        self._pending.pop(key, None)
                        if entry is not None:
                            entry.env_refs = env_refs
                            self._cache[key] = entry
                            while len(self._cache) > self._cache_size:
                                self._cache.popitem(last=False)
                                self._counts["evictions"] += 1
                ev.set()
            if entry is None:
                return self._call_orchestration(args, kwargs, config)
            traced_ms = (time.perf_counter() - t_trace) * 1e3
            break
        limit = getattr(config, "max_memory_mb", None)
        if limit is not None and entry.memory["arena_bytes"] > limit * 2**20:
            raise XCSMemoryError(
                f"jit({self.__name__}): this call's intermediates need {entry.memory['arena_bytes'] / 2**20:.1f} MiB "
                f"(its memory plan), over Config.max_memory_mb={limit}; raise the limit or split the computation")
        if config is self._config:
            dev = self._fast_device()
        else:
            from ember.xcs import _device

            dev = _device.run_device(config)
        out = self._outputs(entry, values, dev)
        if prof:
            _stats.record(self, (time.perf_counter() - t_start) * 1e3, traced_ms, mode="tensor")
        return out

    def _trace_aside(self, args, kwargs, want_dumps=False):
        """Traces and optimises for these arguments without touching the cache
        or the counters: (entry, dump before, dump after)."""
        dyn, statics, rebuild = self._split(args, kwargs)
        leaves, treedef = pytree.flatten(dyn)
        sigs = []
        for i, leaf in enumerate(leaves):
            conv = _convert_leaf(leaf)
            if conv is None:
                self._bad_leaf(dyn, i, leaf)
            sigs.append(conv[1])
        saved = dict(self._counts)
        try:
            return self._compile(args, kwargs, treedef, sigs, rebuild, want_dumps=want_dumps)
        finally:
            with self._lock:
                self._counts.update(saved)

    def _plan(self):
        """Classifies the callables the body names (once)."""
        body, report = orch.plan_interception(self._fn)
        with self._lock:
            if self._planned:
                return
            self._body, self._report = body, report
            if any(kind in ("orchestration", "hybrid") and hooked for _, kind, _, hooked in report):
                self._mode = "orchestration"
            self._planned = True

    def _call_orchestration(self, args, kwargs, config):
        """Runs the Python body with orchestration calls on the task graph."""
        return self._orchestrate(args, kwargs, config)[0]

    def _run_recorded(self, args, kwargs, config):
        """One call for ExecutionEngine: (result, orchestration scope or None,
        the compiled entry of a tensor call or None)."""
        if not self._planned:
            self._plan()
        if self._mode != "orchestration":
            out = self._call(args, dict(kwargs, _config=config))
            if self._mode == "orchestration":  # this call discovered orchestration and ran as such
                return out, None, None
            with self._lock:
                entry = next(reversed(self._cache.values()), None)
            return out, None, entry
        out, scope = self._orchestrate(args, kwargs, config)
        return out, scope, None

    def _orchestrate(self, args, kwargs, config):
        cfg = config if config is not None else (self._config or _DEFAULT_CONFIG)
        prof = self._profile or bool(getattr(config, "profile", False))
        t0 = time.perf_counter()
        with self._lock:
            self._counts["calls"] += 1
            self._counts["orchestrated"] += 1
        orch._reap_abandoned()
        scope = orch.Scope(cfg, self.__name__)
        tok_scope, tok_trace = orch._SCOPE.set(scope), orch._TRACING.set(False)
        try:
            from ember.xcs import _device

            args, kwargs = _lazy_args(args, kwargs, _device.run_device(cfg))
            out = _concrete(self._body(*args, **kwargs))
            scope.finish()
        except BaseException as e:
            scope.abort(e)
            raise
        finally:
            orch._SCOPE.reset(tok_scope)
            orch._TRACING.reset(tok_trace)
            if prof:
                scope.record_profile(self, t0)
                self._last_run = scope.nodes() if scope.graph is not None else []
        return out, scope

    def _bad_leaf(self, dyn, i, leaf):
        path = pytree.leaf_paths(dyn)[i]
        name, hint = self._arg_name(path)
        raise XCSTypeError(
            f"jit({self.__name__}): {name} is a {type(leaf).__name__}, which cannot be traced (array "
            f"arguments must be arrays, numpy arrays or Python numbers); pass it as a static argument: "
            f"jit({self.__name__}, {hint}); or, if the function makes LLM/tool calls, call them by name (a "
            f"global or closure variable marked with ember.api.decorators.mark_orchestration) so that jit runs "
            f"it in orchestration mode, where any argument is fine")

    def _compile(self, args, kwargs, treedef, sigs, rebuild, want_dumps=False):
        """Traces and optimises one signature; returns (entry, dump before, dump after)."""
        if self._sig is not None:
            try:
                self._sig.bind(*args, **kwargs)
            except TypeError as e:
                raise XCSTypeError(f"jit({self.__name__}): {e}") from None
        g = Graph()
        t0 = time.perf_counter()
        try:
            tracers = [weak[0] if type(weak) is _Exact else g.input(dt, shape, weak=weak) for shape, dt, weak in sigs]
            full_args, full_kw = rebuild(pytree.unflatten(treedef, tracers))
            del tracers
            tok, tok_g = orch._TRACING.set(True), orch._ACTIVE.set(g)
            try:
                out = self._fn(*full_args, **full_kw)
            except XCSTracerError as e:
                raise _locate(e) from None
            finally:
                orch._TRACING.reset(tok)
                orch._ACTIVE.reset(tok_g)
            out_leaves, out_tree = pytree.flatten(out)
            consts = []
            for i, leaf in enumerate(out_leaves):
                if isinstance(leaf, Array):
                    g.output(leaf)
                    consts.append(None)
                elif isinstance(leaf, (np.ndarray, np.generic)):
                    g.output(_xcs._asarray(leaf))
                    consts.append(None)
                elif isinstance(leaf, (bool, int, float, complex)):
                    consts.append((leaf,))
                else:
                    path = pytree.leaf_paths(out)[i] or "the result"
                    raise XCSTypeError(
                        f"jit({self.__name__}): output {path} is a {type(leaf).__name__}; a jitted function "
                        f"returns a pytree (tuple/list/dict/None/dataclass) of arrays and Python numbers")
            del out, out_leaves, full_args, full_kw
        finally:
            g.seal()  # tracers that escaped now fail cleanly
        t1 = time.perf_counter()
        before = g.dump() if want_dumps else None
        g.optimize()
        t2 = time.perf_counter()
        dump = g.dump() if want_dumps else None
        entry = _Entry(g, out_tree, consts, g.num_nodes, g.num_steps, g.num_groups, g.memory)
        with self._lock:
            self._counts["traces"] += 1
            self._counts["trace_time_ms"] += (t1 - t0) * 1e3
            self._counts["compile_time_ms"] += (t2 - t1) * 1e3
        return entry, before, dump

    # ------------------------------------------------------------ introspection

    def stats(self):
        """Counters of this jitted function.

        ``calls`` (not counting inlined ones), ``hits``, ``misses``, ``entries``
        (cached signatures), ``evictions`` (LRU), ``traces``, ``trace_time_ms``,
        ``compile_time_ms`` (optimisation), ``nodes`` (per cached entry, in LRU
        order), ``fused_groups`` (fused programs of the most recent entry),
        ``kernels_per_call`` (kernel launches per call of the most recent
        entry: fused groups plus unfused op nodes), ``arena_bytes`` /
        ``planned_bytes`` (the most recent entry's memory plan: bytes of the one
        buffer its intermediates share per call / they would take unshared),
        ``inlined`` (calls inlined into an outer trace), ``cache_size``.
        """
        with self._lock:
            s = dict(self._counts)
            entries = list(self._cache.values())
        s["entries"] = len(entries)
        s["nodes"] = [e.nodes for e in entries]
        s["fused_groups"] = entries[-1].groups if entries else 0
        s["kernels_per_call"] = entries[-1].kernels if entries else 0
        s["arena_bytes"] = entries[-1].memory["arena_bytes"] if entries else 0
        s["planned_bytes"] = entries[-1].memory["planned_bytes"] if entries else 0
        s["cache_size"] = self._cache_size
        return s

    def clear_cache(self):
        """Drops every cached program (counters are kept)."""
        with self._lock:
            self._cache.clear()

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self):
        return f"<jit {getattr(self._fn, '__qualname__', self._fn)!s}>"


def jit(fn=None, *, static_argnums=(), static_argnames=(), cache_size=None, config=None):
    """Compiles ``fn`` for repeated calls (usable as ``@jit`` and ``@jit(...)``).

    ``static_argnums`` / ``static_argnames``: arguments that steer Python
    control flow; compared by value (must be hashable), one trace per value.
    ``cache_size``: cached signatures per function (LRU, default 64).
    ``config``: an ``ember.xcs.Config`` (``cache=False`` traces every call).
    """
    if fn is None:
        return functools.partial(jit, static_argnums=static_argnums, static_argnames=static_argnames,
                                 cache_size=cache_size, config=config)
    return JittedFunction(fn, static_argnums, static_argnames, cache_size, config)


def _classification(jf):
    """Lines saying how jit treats each callable jf's body names."""
    mode = jf._mode or "tensor (until an orchestration call is reached)"
    lines = [f"jit({jf.__name__}): mode {mode}"]
    if not jf._report:
        lines.append("  (names no callables jit classifies)")
    for name, kind, why, hooked in jf._report:
        tag = ", intercepted" if hooked and kind in ("orchestration", "hybrid") else ""
        lines.append(f"  {name}: {kind}{tag} — {why}")
    return "\n".join(lines) + "\n"


def explain(f, *args, print=False, **kwargs):  # noqa: A002  (print= is the documented switch)
    """What jit does with ``f`` (jitted or plain).

    Always: the mode (tensor: traced and compiled; orchestration: the Python
    body re-runs each call, LLM/tool calls run on the task graph) and, for
    every callable the body names, how it was classified and why.  With
    arguments of a tensor function: its IR for them, before and after
    optimisation (traced afresh; the cache and the statistics are
    untouched).  Returns the text; ``print=True`` also prints it.
    """
    jf = f if isinstance(f, JittedFunction) else JittedFunction(f)
    if not jf._planned:
        jf._plan()
    from ember.xcs import _device

    text = _classification(jf) + _device.describe() + "\n"
    if (args or kwargs) and jf._mode != "orchestration":
        try:
            entry, before, after = jf._trace_aside(args, kwargs, want_dumps=True)
        except orch.NeedsOrchestration as e:
            entry = None
            text += f"tracing reached orchestration call {e}: this function runs in orchestration mode\n"
        if entry is not None:
            text += (f"jit({jf.__name__}) — {entry.graph.num_inputs} inputs, {entry.graph.num_outputs} outputs\n"
                     f"before optimisation:\n{before}after optimisation ({entry.nodes} nodes, "
                     f"{entry.kernels} kernels, {entry.groups} fused groups):\n{after}")
    elif jf._last_run:
        text += "last profiled call's orchestration tasks (id: callable, level, inputs, state):\n"
        for n in jf._last_run:
            text += f"  #{n['id']}: {n['callable']}, level {n['level']}, inputs {n['inputs']}, {n['state']}\n"
    if print:
        import builtins
        builtins.print(text)
    return text
