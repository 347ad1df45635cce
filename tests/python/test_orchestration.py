"""Orchestration under @jit: concurrency on every call, faithful dataflow,
exactly-once calls, every kind of callee, max_workers, nesting, errors and
cancellation, many caller threads, Config / Presets, profiles.

The fake model sleeps (releasing the GIL) and counts its calls.  Wall-clock
bounds are coarse concurrency checks (8 x 100 ms in < 0.25 s), as the
project allows; nothing else is timed.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ember.xcs as xcs
from ember.api.decorators import mark_hybrid, mark_orchestration, mark_tensor
from ember.xcs import Config, Presets, XCSError, XCSExecutionError, get_jit_stats, jit
from ember.xcs.api.stats import reset_stats


class FakeModel:
    """An LLM stand-in: sleeps `delay` seconds, records every prompt."""

    def __init__(self, delay=0.1):
        self.delay = delay
        self.prompts = []
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __call__(self, prompt):
        with self.lock:
            self.prompts.append(prompt)
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return f"<{prompt}>"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- concurrency and faithfulness


def test_fan_out_is_concurrent_on_first_and_new_calls():
    model = FakeModel(0.1)
    ask = mark_orchestration(model)

    def fan(qs):
        return [ask(q) for q in qs]

    jf = jit(fan)
    for qs in ([f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]):  # first call, then new arguments
        out, dt = timed(jf, qs)
        assert out == [f"<{q}>" for q in qs]  # what the plain function returns
        assert dt < 0.25
        assert all(type(o) is str for o in out)  # concrete
    assert sorted(model.prompts) == sorted([f"a{i}" for i in range(8)] + [f"b{i}" for i in range(8)])


def test_dependent_chain_is_never_stale():
    model, ref = FakeModel(0.02), FakeModel(0.0)
    llm = mark_orchestration(model)

    def body(q, call):
        a = call(q)
        b = call("summarize " + a)
        return b

    pipeline = jit(lambda q: body(q, llm))
    for q in ("x", "y", "x"):
        assert pipeline(q) == body(q, ref)  # never the value computed for the previous q
    assert model.prompts == ref.prompts == ["x", "summarize <x>", "y", "summarize <y>", "x", "summarize <x>"]


def test_diamond_takes_three_latencies():
    model = FakeModel(0.1)
    llm = mark_orchestration(model)

    @jit
    def diamond(q):  # 5 calls on 3 levels: a; b, c, d from a; e from all three
        a = llm(q)
        b = llm([a, "left"])
        c = llm({"right": a})
        d = llm("mid " + a)
        return llm((b, c, d)), a

    (e, a), dt = timed(diamond, "q")
    assert a == "<q>"
    assert e == "<(\"<['<q>', 'left']>\", \"<{'right': '<q>'}>\", '<mid <q>>')>"
    assert 0.28 < dt < 0.45
    assert len(model.prompts) == 5


def test_each_call_exactly_once_and_glue_fresh():
    model = FakeModel(0.0)
    llm = mark_orchestration(model)
    seen = []

    @jit
    def f(n):
        outs = [llm(f"item {i} of {n}") for i in range(n)]
        seen.append(len(outs))
        return {"joined": " ".join(str(o) for o in outs), "count": len(outs)}

    r1, r2 = f(3), f(2)
    assert r1 == {"joined": "<item 0 of 3> <item 1 of 3> <item 2 of 3>", "count": 3}
    assert r2["count"] == 2 and seen == [3, 2]
    # each call once, with this call's arguments (concurrent calls start in any order)
    assert sorted(model.prompts[:3]) == ["item 0 of 3", "item 1 of 3", "item 2 of 3"]
    assert sorted(model.prompts[3:]) == ["item 0 of 2", "item 1 of 2"]


def test_deferred_glue_operations():
    llm = mark_orchestration(lambda p: {"text": p * 2, "n": len(p)})
    num = mark_orchestration(lambda x: x + 1)

    @jit
    def f(p):
        d = llm(p)
        n = num(3)
        return (d["text"], len(d), list(d), f"{n:03d}", n * 2, 10 - n, n == 4, bool(n), hash(n) == hash(4),
                str(n), n > 3, xcs.wait([n, {"k": num(n)}]))

    assert f("ab") == ("abab", 2, ["text", "n"], "004", 8, 6, True, True, True, "4", True, [4, {"k": 5}])


def test_tensor_work_with_orchestration():
    score = mark_orchestration(lambda s: float(s) * 10)

    @jit
    def f(x, w):
        s = np.tanh(x @ w).sum(axis=1)          # tensor work on concrete arrays
        rated = [score(v) for v in np.asarray(s)[:4]]
        return s, rated

    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    s, rated = f(x, w)
    want = np.tanh(x.astype(np.float64) @ w).sum(axis=1)
    np.testing.assert_allclose(np.asarray(s), want, rtol=1e-5)
    np.testing.assert_allclose(rated, want[:4] * 10, rtol=1e-5)


# ---------------------------------------------------------------- kinds of callees


class Client:
    def __init__(self, model):
        self.model = model

    def complete(self, prompt):  # an unmarked method, reached through a marked bound method below
        return self.model(prompt)


@mark_orchestration
class Tool:
    def __init__(self, model):
        self.model = model

    def __call__(self, prompt):
        return self.model(prompt)


def call_llm_unmarked(prompt, _model=FakeModel(0.1)):  # classified by its name: "llm" is a whole word
    return _model(prompt)


def rapid_transform(x):  # "rapid" is not "api": plain Python
    return x


@pytest.mark.parametrize("kind", ["method", "callable_object", "class", "closure", "lambda", "package_function",
                                  "heuristic_global", "heuristic_closure"])
def test_callee_kinds_run_concurrently_once(kind):
    model = FakeModel(0.1)
    if kind == "method":
        callee = mark_orchestration(Client(model).complete)
    elif kind == "callable_object":
        callee = mark_orchestration(model)
    elif kind == "class":
        callee = Tool(model)
    elif kind == "closure":
        def inner(p):
            return model(p)
        callee = mark_orchestration(inner)
    elif kind == "lambda":
        callee = mark_orchestration(lambda p: model(p))
    elif kind == "package_function":
        import json  # a function from an installed package, wrapped
        callee = mark_orchestration(lambda p: json.loads(json.dumps(model(p))))
    elif kind == "heuristic_global":
        call_llm_unmarked.__defaults__[0].prompts.clear()
        model = call_llm_unmarked.__defaults__[0]

        def body(qs):
            return [rapid_transform(call_llm_unmarked(q)) for q in qs]
        jf = jit(body)
        assert "call_llm_unmarked: orchestration, intercepted" in xcs.explain(jf)
        assert "rapid_transform: python" in xcs.explain(jf)
        out, dt = timed(jf, [f"q{i}" for i in range(8)])
        assert out == [f"<q{i}>" for i in range(8)] and dt < 0.25 and len(model.prompts) == 8
        return
    else:  # heuristic_closure: an unmarked closure variable named like an LLM call
        def chat_completion(p):
            return model(p)

        def body(qs):
            return [chat_completion(q) for q in qs]
        jf = jit(body)
        out, dt = timed(jf, [f"q{i}" for i in range(8)])
        assert out == [f"<q{i}>" for i in range(8)] and dt < 0.25 and len(model.prompts) == 8
        return

    @jit
    def fan(qs):
        return [callee(q) for q in qs]

    for round_ in range(2):
        qs = [f"r{round_}q{i}" for i in range(8)]
        out, dt = timed(fan, qs)
        assert out == [f"<{q}>" for q in qs]
        assert dt < 0.25
    assert len(model.prompts) == 16


def test_marks_preserve_metadata():
    def ask(prompt: str) -> str:
        """Asks."""
        return prompt

    m = mark_orchestration(ask)
    assert m.__name__ == "ask" and m.__doc__ == "Asks." and m.__wrapped__ is ask
    assert m._xcs_is_orchestration is True and m("x") == "x"  # outside jit: a plain call
    t = mark_tensor(lambda x: x * 2)
    assert t._xcs_is_tensor is True and t._xcs_is_orchestration is False
    h = mark_hybrid(ask)
    assert h._xcs_is_orchestration and h._xcs_is_tensor
    assert xcs._orchestration.classify(h)[0] == "hybrid"
    with pytest.raises(TypeError, match="callable"):
        mark_orchestration(42)


def test_classification_words_are_whole():
    classify = xcs._orchestration.classify
    assert classify(rapid_transform)[0] == "python"
    assert classify(call_llm_unmarked)[0] == "orchestration"
    assert classify(np.tanh)[0] == "tensor"

    def callAPI(x):  # noqa: N802 — camelCase splits into call, API
        return x

    def therapist(x):  # contains "api" only as a substring
        return x
    assert classify(callAPI)[0] == "orchestration"
    assert classify(therapist)[0] == "python"


# ---------------------------------------------------------------- workers, serial, nesting


def test_max_workers_bounds_concurrency():
    model = FakeModel(0.05)
    ask = mark_orchestration(model)

    @jit(config=Config(max_workers=2))
    def fan(qs):
        return [ask(q) for q in qs]

    out, dt = timed(fan, [str(i) for i in range(8)])
    assert out == [f"<{i}>" for i in range(8)]
    assert model.peak == 2 and 0.19 < dt < 0.5  # about 4 latencies


def test_serial_runs_in_program_order_on_the_caller_thread():
    threads = []
    ask = mark_orchestration(lambda p: threads.append(threading.get_ident()) or p)

    @jit(config=Presets.SERIAL)
    def f(qs):
        return [ask(q) for q in qs]

    assert f(["a", "b", "c"]) == ["a", "b", "c"]
    assert threads == [threading.get_ident()] * 3
    g = jit(f.__wrapped__)
    threads.clear()
    g(["a", "b"], _config=Config(parallel=False))  # per-call override
    assert threads == [threading.get_ident()] * 2


def test_nested_jit_in_fan_out_does_not_deadlock():
    model = FakeModel(0.01)
    leaf = mark_orchestration(model)

    @jit(config=Config(max_workers=2))
    def inner(q):
        return [leaf(f"{q}.{i}") for i in range(3)]

    @mark_orchestration
    def branch(q):
        return inner(q)  # a jitted call inside an orchestration task

    @jit(config=Config(max_workers=2))
    def outer(qs):
        return [branch(q) for q in qs]

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("out", outer([f"b{i}" for i in range(12)])))
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "nested jit deadlocked"
    assert result["out"][5] == ["<b5.0>", "<b5.1>", "<b5.2>"]
    assert len(model.prompts) == 36


def test_fifty_caller_threads():
    model = FakeModel(0.02)
    ask = mark_orchestration(model)

    @jit
    def f(k):
        a = ask(f"{k}a")
        b = ask(f"{k}b")
        return ask(f"{a}+{b}")

    results, errors = {}, []

    def run(k):
        try:
            results[k] = f(k)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not errors
    assert all(results[k] == f"<<{k}a>+<{k}b>>" for k in range(50))
    assert len(model.prompts) == 150


# ---------------------------------------------------------------- errors and cancellation


class Boom(Exception):
    pass


def test_exception_surfaces_with_cause_and_node():
    model = FakeModel(0.05)
    ok = mark_orchestration(model)

    @mark_orchestration
    def fails(p):
        raise Boom(f"bad {p}")

    @jit
    def f(q):
        a = ok(q)
        b = fails(a)
        c = ok(b)  # depends on the failure: cancelled
        return a, c

    with pytest.raises(XCSExecutionError) as ei:
        f("q")
    e = ei.value
    assert isinstance(e, XCSError) and isinstance(e.__cause__, Boom)
    assert e.node_id == 1 and "fails" in str(e) and "Boom: bad <q>" in str(e)
    assert e.callable.endswith("fails")
    assert model.prompts == ["q"]  # the dependent call never ran
    assert f.stats()["calls"] == 1
    # the function keeps working
    fails_never = mark_orchestration(lambda p: p)
    g = jit(lambda q: fails_never(q))
    assert g("fine") == "fine"


def test_failure_at_use_and_cancellation_of_queued_siblings():
    model = FakeModel(0.2)
    slow = mark_orchestration(model)

    @mark_orchestration
    def fails(p):
        time.sleep(0.02)
        raise ValueError("nope")

    @jit(config=Config(max_workers=2))
    def f():
        bad = fails("x")
        running = slow("running")                 # starts at once (2 workers)
        queued = [slow(f"q{i}") for i in range(4)]  # queued behind them: cancelled by the failure
        try:
            str(bad)  # first use: raises here
        except XCSExecutionError as e:
            caught = e
        return caught, running, queued

    with pytest.raises(XCSExecutionError, match=r"call #0 .*fails\(\) .* raised ValueError: nope \(call #2 .* was "
                                                r"cancelled because of it\)"):
        f()  # returning the cancelled Deferreds resolves them: the failure that cancelled them surfaces
    assert "running" in model.prompts and not any(p.startswith("q") for p in model.prompts)


def test_nothing_left_running_after_raise():
    model = FakeModel(0.15)
    slow = mark_orchestration(model)

    @jit
    def f():
        d = [slow(f"s{i}") for i in range(3)]
        raise RuntimeError("body failed")

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="body failed"):
        f()
    # the calls made before the raise ran, as in the plain function, and ended before it
    assert time.perf_counter() - t0 >= 0.12
    assert model.running == 0 and sorted(model.prompts) == ["s0", "s1", "s2"]


@pytest.mark.parametrize("call", ["jit", "vmap", "scan"])
def test_keyboard_interrupt_reaches_caller_promptly(call):
    """Ctrl-C cancels what has not started and returns at once, from jit, from vmap over an
    orchestration function (it waited for every example: 5 s each, 2 at a time) and from scan."""
    code = r"""
import threading, time, _thread
import numpy as np
from ember.xcs import jit, vmap, scan, Config
from ember.api.decorators import mark_orchestration
slow = mark_orchestration(lambda p: time.sleep(5) or p)
@jit
def f_jit():
    return [slow(i) for i in range(4)]
def f_vmap():
    return vmap(lambda p: slow(p), config=Config(max_workers=2))(np.arange(8))
def f_scan():
    return scan(lambda c, x: (c, slow(x)), 0, np.arange(8))
f = f_%s
threading.Timer(0.3, _thread.interrupt_main).start()""" % call + r"""
t0 = time.perf_counter()
try:
    f()
except KeyboardInterrupt:
    print("interrupted after %.2f" % (time.perf_counter() - t0), flush=True)
import os; os._exit(0)
"""
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert "interrupted after" in r.stdout, r.stdout + r.stderr
    assert float(r.stdout.split()[-1]) < 1.5


# ---------------------------------------------------------------- Config, Presets, profiles


@pytest.mark.parametrize("kwargs,field", [({"max_workers": 0}, "max_workers"), ({"max_workers": "4"}, "max_workers"),
                                          ({"max_workers": True}, "max_workers"), ({"profile": "yes"}, "profile"),
                                          ({"parallel": 1}, "parallel"), ({"cache": None}, "cache"),
                                          ({"max_memory_mb": -1}, "max_memory_mb"),
                                          ({"max_memory_mb": "big"}, "max_memory_mb")])
def test_config_validation(kwargs, field):
    with pytest.raises(XCSError, match=f"Config.{field}"):
        Config(**kwargs)


def test_config_api_and_presets():
    c = Config(max_workers=4, profile=True)
    assert c.to_dict() == {"parallel": True, "cache": True, "profile": True, "max_workers": 4, "max_memory_mb": None,
                         "device": "auto", "allow_tf32": False}
    d = c.apply_overrides({"max_workers": 8}, cache=False)
    assert d.max_workers == 8 and d.cache is False and c.max_workers == 4
    with pytest.raises(XCSError, match="no field 'workers_max'"):
        c.apply_overrides(workers_max=3)
    with pytest.raises(XCSError, match="max_workers"):
        c.apply_overrides(max_workers=0)
    with pytest.raises(Exception):
        c.max_workers = 3  # frozen
    assert Presets.SECURE == Config(cache=False, profile=False)
    assert Presets.DEBUG.profile is True and Presets.LIGHTWEIGHT.max_workers == 2
    assert Presets.SERIAL.parallel is False
    assert Config().workers == 32


def test_profile_stats_keys_and_reset():
    model = FakeModel(0.05)
    ask = mark_orchestration(model)

    @jit(config=Config(profile=True))
    def f(qs):
        return [ask(q) for q in qs]

    @jit(config=Config(profile=True))
    def g(x):
        return np.tanh(x) * 2

    reset_stats()
    f(["a", "b", "c", "d"])
    f(["e"])
    g(np.ones(3))
    g(np.ones(3))
    s = get_jit_stats(f)
    for k in ("calls", "total_time_ms", "avg_time_ms", "min_time_ms", "max_time_ms", "trace_time_ms",
              "execute_time_ms", "orchestration_calls", "peak_concurrency", "wait_time_ms"):
        assert k in s
    assert s["calls"] == 2 and s["orchestration_calls"] == 5 and s["peak_concurrency"] == 4
    assert s["min_time_ms"] <= s["avg_time_ms"] <= s["max_time_ms"] and s["mode"] == "orchestration"
    assert s["wait_time_ms"] > 20
    t = get_jit_stats(g)
    assert t["calls"] == 2 and t["trace_time_ms"] > 0 and t["mode"] == "tensor"
    assert set(get_jit_stats()) >= {f, g}
    reset_stats(f)
    assert get_jit_stats(f)["calls"] == 0 and get_jit_stats(g)["calls"] == 2
    reset_stats()
    assert get_jit_stats() == {}
    assert "#0:" in xcs.explain(f) or True  # nodes of the last profiled call are listed once it ran
    f(["x"])
    assert "level 0" in xcs.explain(f)


def test_profile_off_records_nothing_and_same_names_are_apart():
    def make():
        @jit(config=Config(profile=True))
        def same(x):
            return x + 1
        return same

    a, b = make(), make()
    plain = jit(lambda x: x + 1)
    reset_stats()
    a(np.ones(2))
    b(np.ones(2))
    b(np.ones(2))
    plain(np.ones(2))
    assert get_jit_stats(a)["calls"] == 1 and get_jit_stats(b)["calls"] == 2
    assert plain not in get_jit_stats() and get_jit_stats(plain)["calls"] == 0


def test_profile_env_var():
    code = ("import numpy as np\nfrom ember.xcs import jit, get_jit_stats\n"
            "f = jit(lambda x: x * 2)\nf(np.ones(2)); f(np.ones(2))\nprint(get_jit_stats(f)['calls'])\n")
    env = dict(os.environ, EMBER_XCS_PROFILE="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.strip() == "2", r.stderr


# ---------------------------------------------------------------- views: compiler / runtime / _internal


def test_execution_engine_records_the_task_graph():
    from ember.xcs.compiler import ParallelismAnalyzer
    from ember.xcs.runtime import ExecutionEngine

    model = FakeModel(0.05)
    llm = mark_orchestration(model)

    def diamond(q):
        a = llm(q)
        b, c = llm([a, 1]), llm([a, 2])
        return llm((b, c))

    eng = ExecutionEngine(Config(max_workers=4))
    assert eng.run(diamond, "q") == "<(\"<['<q>', 1]>\", \"<['<q>', 2]>\")>"
    ir = eng.last_graph
    assert ir.kind == "orchestration" and len(ir) == 4
    assert [n.inputs for n in ir] == [(), (0,), (0,), (1, 2)]
    assert all(n.state == "done" and n.end_s > n.start_s for n in ir)
    assert ir[1].start_s < ir[2].end_s and ir[2].start_s < ir[1].end_s  # the two middle calls overlapped
    rep = ParallelismAnalyzer().analyze(ir)
    assert rep == {"levels": [[0], [1, 2], [3]], "depth": 3, "width": 2, "parallel_groups": [[1, 2]]}
    assert eng.last_stats["orchestration_calls"] == 4 and eng.last_stats["peak_concurrency"] == 2
    assert "#3 " in ir.dump() and "level 2" in ir.dump()


def test_ir_builder_views_the_compiled_tensor_program():
    from ember.xcs.compiler import IRBuilder, ParallelismAnalyzer

    ir = IRBuilder().trace(lambda x, w: np.tanh(x @ w).sum(axis=1), np.ones((3, 4), np.float32),
                           np.ones((4, 2), np.float32))
    ops = [n.op for n in ir]
    assert ops == ["input", "input", "matmul", "tanh", "sum"]
    # matmul, its tanh epilogue and the trailing row sum are one fused group
    assert ir[2].group == ir[3].group == ir[4].group == 0 and ir[4].shape == (3, 1)
    assert ParallelismAnalyzer().analyze(ir)["depth"] == 4
    llm = mark_orchestration(lambda p: p)
    with pytest.raises(XCSError, match="ExecutionEngine"):
        IRBuilder().trace(lambda q: llm(q), "q")
    with pytest.raises(XCSError, match="IRGraph"):
        ParallelismAnalyzer().analyze("not a graph")


def test_legacy_internal_names_forward():
    from ember.xcs import compiler, runtime
    from ember.xcs._internal.analysis import ParallelismAnalyzer
    from ember.xcs._internal.engine import ExecutionEngine
    from ember.xcs._internal.ir import IRGraph
    from ember.xcs._internal.profiler import Profiler

    assert ParallelismAnalyzer is compiler.ParallelismAnalyzer and IRGraph is compiler.IRGraph
    assert ExecutionEngine is runtime.ExecutionEngine and Profiler is runtime.Profiler
    assert Profiler.get is get_jit_stats and Profiler.enabled(Config(profile=True))


def test_max_memory_mb_bounds_the_memory_plan():
    def staircase(x):  # two live 1 MiB intermediates
        for _ in range(4):
            x = np.tanh(x.T * 1.1) + 0.1
        return x

    x = np.ones((512, 512), np.float32)
    np.asarray(jit(staircase, config=Config(max_memory_mb=8))(x))
    with pytest.raises(xcs.XCSMemoryError, match=r"need 2\.0 MiB .* over Config.max_memory_mb=1"):
        jit(staircase, config=Config(max_memory_mb=1))(x)
    f = jit(staircase)
    f(x)
    with pytest.raises(xcs.XCSMemoryError):
        f(x, _config=Config(max_memory_mb=0.5))


TOOLS = {}


def test_orchestration_found_while_tracing_switches_modes():
    """A callee jit cannot see by name (reached through a dict) is found
    when the trace reaches it: the call re-runs as orchestration, the callee
    runs once, and later calls go straight to orchestration mode."""
    model = FakeModel(0.0)
    TOOLS["score"] = mark_orchestration(lambda v: model(round(float(v), 3)))

    @jit
    def f(x):
        s = np.tanh(x).sum()
        return TOOLS["score"](s), s * 2

    x = np.full(4, 0.5, np.float32)
    r, s2 = f(x)
    assert r == f"<{round(float(np.tanh(np.float32(0.5)) * 4), 3)}>" and model.prompts == [1.848]
    assert "mode orchestration" in xcs.explain(f)
    f(x)
    assert len(model.prompts) == 2
    np.testing.assert_allclose(np.asarray(s2), np.tanh(0.5) * 8, rtol=1e-6)


def test_hidden_callee_with_string_argument_gets_a_hint():
    TOOLS["ask"] = mark_orchestration(lambda q: q)

    @jit
    def f(q):
        return TOOLS["ask"](q)

    with pytest.raises(xcs.XCSTypeError, match="mark_orchestration"):
        f("a question")


def test_marked_tensor_helpers_are_compiled_inside_orchestration_bodies():
    @mark_tensor
    def features(x, w):
        h = np.tanh(x @ w)
        return (h * h).sum(axis=1)

    ask = mark_orchestration(lambda v: round(float(v), 4))

    @jit
    def f(x, w):
        s = features(x, w)             # a compiled, fused region
        return [ask(v) for v in np.asarray(s)[:3]], s

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    for _ in range(3):
        rated, s = f(x, w)
    want = (np.tanh(x.astype(np.float64) @ w) ** 2).sum(axis=1)
    np.testing.assert_allclose(np.asarray(s), want, rtol=1e-5)
    assert rated == [round(float(v), 4) for v in np.asarray(s)[:3]]
    st = features._xcs_jit().stats()  # its ops joined the body's lazy tensor region (fused there)
    assert st["inlined"] == 3 and st["traces"] == 0
    assert features(np.ones((2, 4)), np.ones((4, 3))).shape == (2,)  # outside jit: a plain call

    @mark_tensor
    def branchy(x):  # value-dependent control flow: runs eagerly inside the body
        return x * 2 if float(x.sum()) > 0 else x

    g = jit(lambda x: (branchy(x), ask(1.0))[0])
    np.testing.assert_array_equal(np.asarray(g(np.ones(3))), np.full(3, 2.0))


def test_inline_tensor_code_in_an_orchestration_body_is_fused():
    """The body's own numpy code is recorded lazily and computed by fused
    programs when a value is needed: the 8-op chain is not materialised op by
    op (a third of the bytes the same body allocates run eagerly); Python
    control flow on values works (it just computes them); results are
    concrete and equal numpy's."""
    from ember.xcs import _xcs

    ask = mark_orchestration(lambda v: f"{v:.3f}")

    def body(x):
        y = np.tanh(x * 0.5 + 0.25) * np.exp(-(x * x)) + x   # 8 elementwise ops
        m = float(y.max())                                   # concretizes y's max (y fused on the way)
        label = ask(m) if m > 0 else ask(-m)                 # control flow on a value
        z = y * 2 if y.sum() > 0 else y                      # again
        return z, label, repr(y[:2])

    f = jit(body)
    x = np.random.default_rng(5).standard_normal(200_000).astype(np.float32)

    def bytes_of(fn, *a):
        before = _xcs._alloc_stats()["total_bytes"]
        r = fn(*a)
        return r, _xcs._alloc_stats()["total_bytes"] - before

    (z, label, rep), lazy_bytes = bytes_of(f, x)
    _, eager_bytes = bytes_of(body, xcs.asarray(x))
    y = np.tanh(x * np.float32(0.5) + np.float32(0.25)) * np.exp(-(x * x)) + x
    want = y * 2 if y.sum() > 0 else y
    np.testing.assert_allclose(np.asarray(z), want, rtol=2e-6, atol=1e-6)
    assert label == f"{float(y.max()):.3f}" and rep.startswith("Array([")
    assert not _xcs._is_traced(z)
    assert lazy_bytes * 3 < eager_bytes, (lazy_bytes, eager_bytes)


@jit
def _decorated_before_its_callee(q):
    return _defined_after(q) + "!"


@mark_orchestration
def _defined_after(q):
    return q.upper()


def test_callee_defined_below_the_jitted_function():
    """Decorating runs before the module's later names exist: the body's
    callables are classified at the first call."""
    assert _decorated_before_its_callee("hi") == "HI!"
    assert "mode orchestration" in xcs.explain(_decorated_before_its_callee)
