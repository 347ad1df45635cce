"""Regressions from a bug hunt over the Python API: bad input that crashed the interpreter (heap
overflow, use-after-free), a leak of every orchestration call, a deadlock, nested maps of strings
that came out transposed, configuration validation, and how orchestration errors reach the
caller."""
import gc
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import _orchestration as orch
from ember.api.decorators import mark_orchestration
from ember.xcs import Config, XCSExecutionError, jit, vmap


def run_isolated(code):
    """code in a fresh interpreter (a crash there fails the test, not the run): its stdout."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout


def test_join_of_temporary_arrays_keeps_them_alive():
    """concatenate/stack of an Array (its rows are new Arrays) or of a generator of Arrays read the
    items after the temporary list holding them was freed."""
    out = run_isolated("""
        import numpy as np, ember.xcs as xcs, ember.xcs.numpy as xnp
        a = np.arange(12.0).reshape(3, 4)
        for _ in range(50):
            assert np.array_equal(np.asarray(xnp.concatenate(xcs.asarray(a))), np.concatenate(a))
            assert np.array_equal(np.asarray(xnp.stack(xcs.asarray(a), 1)), np.stack(a, 1))
            g = xcs._xcs._concatenate(xcs.asarray(np.full(9, float(i))) for i in range(3))
            assert np.array_equal(np.asarray(g), np.repeat([0.0, 1.0, 2.0], 9))
        print("ok")
    """)
    assert out.strip() == "ok"


def test_task_with_a_repeated_dependency():
    """A dependency named many times counts once (it was linked once per mention past the room for
    one: heap corruption); ids int32 cannot hold are unknown tasks, not task 0."""
    out = run_isolated("""
        import time
        import ember.xcs as xcs
        from ember.xcs import jit
        from ember.api.decorators import mark_orchestration
        class T:
            def _run(self):
                return True
        tg = xcs._xcs.TaskGraph(2)
        a = tg.submit(T())
        b = tg.submit(T(), [a] * 100)
        tg.wait()
        assert tg.deps(b) == (a,) and tg.state(b) == 3
        for bad in ([2**32], [2**70], [-1]):
            try:
                tg.submit(T(), bad)
                raise SystemExit("accepted " + repr(bad))
            except xcs.XCSValueError:
                pass
        @mark_orchestration
        def ask(p):
            time.sleep(0.01)
            return "a"
        @mark_orchestration
        def combine(parts):
            return len(parts)
        @jit
        def f(x):
            d = ask("q")
            return combine([d] * 100)
        assert f(1.0) == 100
        print("ok")
    """)
    assert out.strip() == "ok"


def test_orchestration_calls_are_collected():
    """Scope -> TaskGraph -> its tasks -> Deferred -> Scope is a cycle the collector now sees: no
    Scope outlives its call."""
    @mark_orchestration
    def big(p):
        return "x" * 1000

    f = jit(lambda v: len(big(1)))
    m = vmap(lambda p: big(p))
    for _ in range(20):
        assert f(1.0) == 1000
        assert len(m(np.arange(3))) == 3
    gc.collect()
    assert sum(type(o) is orch.Scope for o in gc.get_objects()) == 0


def test_other_thread_calling_a_signature_being_traced():
    """The traced body joins a thread that calls the same signature: that call waits a while for
    the trace, then traces on its own (before: it waited forever)."""
    out = run_isolated("""
        import threading, numpy as np
        from ember.xcs import jit
        @jit
        def f(x):
            if not hasattr(f, "d"):
                f.d = 1
                t = threading.Thread(target=lambda: f(np.ones(3)))
                t.start()
                t.join(timeout=60)
                assert not t.is_alive()
            return x * 2
        assert np.array_equal(np.asarray(f(np.ones(3))), [2, 2, 2])
        print("ok")
    """)
    assert out.strip() == "ok"


@mark_orchestration
def _ask(p):
    return "ans:" + str(p)


def test_nested_vmap_of_strings_keeps_the_example_order():
    S = np.array(list("abcdef")).reshape(2, 3)
    got = vmap(vmap(lambda p: _ask(p)))(S)
    assert got == [["ans:a", "ans:b", "ans:c"], ["ans:d", "ans:e", "ans:f"]]
    d = vmap(vmap(lambda p: {"s": _ask(p), "n": len(_ask(p))}))(S)
    assert d["s"] == got and np.array_equal(np.asarray(d["n"]), np.full((2, 3), 5))
    s, b = vmap(lambda p: (_ask(p), p == "a"))(np.array(list("abc")))
    assert s == ["ans:a", "ans:b", "ans:c"]
    assert isinstance(b, xcs.Array) and b.dtype == np.bool_ and np.array_equal(np.asarray(b), [True, False, False])


def test_config_is_validated_eagerly():
    assert Config(max_workers=np.int64(4)).max_workers == 4
    for bad in (2**31, 10**30, 0, True, 2.0):
        with pytest.raises(xcs.XCSValueError, match="max_workers"):
            Config(max_workers=bad)
    with pytest.raises(xcs.XCSTypeError, match="bogus.*fields are"):
        Config(bogus=1)
    with pytest.raises(xcs.XCSTypeError, match="multiple values"):
        Config(True, parallel=True)


@mark_orchestration
def _maybe_bad(p):
    if p == "b":
        raise ValueError("bad " + p)
    return p


@mark_orchestration
def _interrupt(p):
    raise KeyboardInterrupt


def test_orchestration_errors_reach_the_caller_once_wrapped():
    """A failing call inside vmap is one XCSExecutionError naming the user's callable, its cause the
    user's exception (vmap's per-example call wrapped it a second time); KeyboardInterrupt and
    SystemExit pass as they are."""
    with pytest.raises(XCSExecutionError) as e:
        vmap(lambda p: _maybe_bad(p))(np.array(list("abc")))
    assert e.value.callable.endswith("_maybe_bad") and isinstance(e.value.__cause__, ValueError)
    with pytest.raises(KeyboardInterrupt):
        jit(lambda x: _interrupt(x))(1.0)


def test_vmap_profile_and_stats_of_a_non_function():
    """Config(profile=True) on a vmap over an orchestration function records its calls (it recorded
    nothing); get_jit_stats of something that is no function is an XCSTypeError."""
    from ember.xcs import get_jit_stats
    from ember.xcs.api.stats import reset_stats

    v = vmap(lambda p: _ask(p), config=Config(profile=True))
    v(np.arange(4))
    v(np.arange(3))
    s = get_jit_stats(v)
    assert s["calls"] == 2 and s["orchestration_calls"] == 7 and s["mode"] == "orchestration"
    for f in (get_jit_stats, reset_stats):
        with pytest.raises(xcs.XCSTypeError, match="got int"):
            f(5)


_K = 1.0
_W = np.ones(2)


def test_rebound_closure_and_global_values_trace_again():
    """A tensor-only function's trace bakes in the Python values it reads: rebinding a closure
    variable or a global (a number, a string-selected branch, an array) traces again instead of
    replaying the stale value; unchanged values hit the cache."""
    global _K, _W
    k = 1.0
    h = jit(lambda x: x * k)
    assert np.array_equal(np.asarray(h(np.ones(2))), [1, 1])
    k = 5.0
    assert np.array_equal(np.asarray(h(np.ones(2))), [5, 5])
    g = jit(lambda x: x * _K + _W)
    assert np.array_equal(np.asarray(g(np.ones(2))), [2, 2])
    _K, _W = 3.0, np.full(2, 9.0)
    assert np.array_equal(np.asarray(g(np.ones(2))), [12, 12])
    g(np.ones(2))
    assert g._counts["misses"] == 2 and g._counts["hits"] == 1
    mode = "sum"
    r = jit(lambda x: x.sum() if mode == "sum" else x.max())
    assert float(r(np.arange(3.0))) == 3.0
    mode = "max"
    assert float(r(np.arange(3.0))) == 2.0
    n = float("nan")  # NaN equals itself in the key: one trace
    hn = jit(lambda x: x + n)
    hn(np.ones(2))
    hn(np.ones(2))
    assert hn._counts["misses"] == 1
