"""Bad input never crashes the interpreter: each error has the right class
(subclass of XCSError and of the matching Python exception) and a message
that names the op and the shapes or values at fault; the process keeps
working afterwards."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def test_error_hierarchy(xcs):
    import ember.xcs.errors as errors
    assert issubclass(xcs.XCSError, RuntimeError)
    pairs = [("XCSShapeError", ValueError), ("XCSTypeError", TypeError), ("XCSIndexError", IndexError),
             ("XCSZeroDivisionError", ZeroDivisionError), ("XCSMemoryError", MemoryError)]
    for name, base in pairs:
        cls = getattr(xcs, name)
        assert issubclass(cls, xcs.XCSError), name
        assert issubclass(cls, base), name
        assert getattr(errors, name) is cls, name
    assert errors.XCSError is xcs.XCSError


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 2)), ((4,), (5,)), ((2, 3, 4), (2, 4)), ((0,), (2,))])
def test_broadcast_error_message(xnp, xcs, sa, sb):
    x, y = xcs.asarray(np.zeros(sa)), xcs.asarray(np.zeros(sb))
    with pytest.raises(xcs.XCSShapeError) as ei:
        xnp.add(x, y)
    msg = str(ei.value)
    assert str(sa) in msg and str(sb) in msg, msg
    assert "add" in msg, msg
    with pytest.raises(ValueError):
        x * y
    with pytest.raises(ValueError):
        xnp.where(xcs.asarray(np.zeros(sa, bool)), x, y)


@pytest.mark.parametrize("call", [
    lambda xnp, x: xnp.sum(x, axis=3),
    lambda xnp, x: xnp.mean(x, axis=-4),
    lambda xnp, x: xnp.argmax(x, axis=3),
    lambda xnp, x: xnp.expand_dims(x, 5),
    lambda xnp, x: xnp.concatenate([x, x], axis=3),
    lambda xnp, x: xnp.take(x, [0], axis=3),
    lambda xnp, x: xnp.var(x, axis=(0, 3)),
])
def test_bad_axis(xnp, xcs, call):
    x = xcs.asarray(np.zeros((2, 3, 4)))
    with pytest.raises(xcs.XCSError) as ei:
        call(xnp, x)
    assert "axis" in str(ei.value).lower(), str(ei.value)


@pytest.mark.parametrize("name", ["uint32", "complex128", "int8", "float8_e4m3fn", "banana", "", "U5"])
def test_bad_dtype_name(xnp, xcs, name):
    with pytest.raises((xcs.XCSTypeError, TypeError)) as ei:
        xnp.zeros((2,), dtype=name)
    if name:
        assert name in str(ei.value) or "dtype" in str(ei.value).lower(), str(ei.value)
    with pytest.raises((xcs.XCSTypeError, TypeError)):
        xcs.asarray(np.zeros(2)).astype(name)


@pytest.mark.parametrize("bad", [{"a": 1}, "hello", None, object(), {1, 2}, b"bytes", lambda: 0])
def test_non_array_operands(xnp, xcs, bad):
    x = xcs.asarray(np.zeros(3))
    with pytest.raises(TypeError) as ei:
        xnp.add(x, bad)
    assert type(bad).__name__ in str(ei.value) or "type" in str(ei.value).lower(), str(ei.value)
    with pytest.raises(TypeError):
        x + bad
    with pytest.raises(TypeError):
        bad + x
    with pytest.raises(TypeError):
        xnp.exp(bad)


def test_non_array_error_names_type(xnp, xcs):
    with pytest.raises(xcs.XCSTypeError) as ei:
        xnp.add(xcs.asarray(np.zeros(3)), {"a": 1})
    assert "dict" in str(ei.value)


@pytest.mark.parametrize("shape", [(2**40, 2**40), (2**31, 2**31, 2**31), (2**62,), (2**63 - 1, 2)])
def test_overflowing_shapes(xnp, xcs, shape):
    with pytest.raises((xcs.XCSMemoryError, xcs.XCSError, OverflowError, ValueError)) as ei:
        xnp.zeros(shape)
    if isinstance(ei.value, xcs.XCSError):
        assert isinstance(ei.value, (MemoryError, ValueError)), type(ei.value)


def test_memory_error_class(xnp, xcs):
    with pytest.raises(xcs.XCSMemoryError) as ei:
        xnp.zeros((2**40, 2**40))
    assert isinstance(ei.value, MemoryError)
    assert "(1099511627776, 1099511627776)" in str(ei.value)
    with pytest.raises(MemoryError):
        xnp.ones((2**40, 2**40), dtype="float32")
    with pytest.raises(MemoryError):
        xnp.broadcast_to(xcs.asarray(np.zeros(1)), (2**40, 2**40)) * 2


def test_huge_but_representable_allocation_fails_cleanly(xnp, xcs):
    """~16 TiB: passes the overflow check, fails in the allocator."""
    with pytest.raises((MemoryError, xcs.XCSError)):
        xnp.zeros((2**41,), dtype="float64")


def test_negative_dims(xnp, xcs):
    with pytest.raises((xcs.XCSError, ValueError)) as ei:
        xnp.zeros((3, -2))
    assert "-2" in str(ei.value)
    with pytest.raises((xcs.XCSError, ValueError)):
        xcs.asarray(np.zeros(6)).reshape(-2, -3)


def test_too_many_dims(xnp, xcs):
    with pytest.raises((xcs.XCSError, ValueError)) as ei:
        xnp.zeros((1,) * 33)
    with pytest.raises((xcs.XCSError, ValueError)):
        xcs.asarray(np.zeros((1,) * 20))


def test_bad_argument_types(xnp, xcs):
    x = xcs.asarray(np.zeros((2, 3)))
    with pytest.raises(TypeError):
        xnp.sum(x, axis="0")
    with pytest.raises((TypeError, xcs.XCSError)):
        xnp.reshape(x, "2,3")
    with pytest.raises((TypeError, xcs.XCSError)):
        xnp.zeros("3")
    with pytest.raises(TypeError):
        xnp.add(x)
    with pytest.raises(TypeError):
        xnp.where(x)
    with pytest.raises((TypeError, xcs.XCSError)):
        xcs.Array()
    # numpy's classes for bad slices: a float bound is a TypeError, a zero step a ValueError
    with pytest.raises(xcs.XCSTypeError, match="slice indices must be integers"):
        x[1.0:2]
    with pytest.raises(xcs.XCSValueError, match="step cannot be zero"):
        x[::0]


def test_nan_inf_inputs_do_not_raise(xnp, xcs):
    a = np.array([np.nan, np.inf, -np.inf, 0.0])
    x = xcs.asarray(a)
    with np.errstate(all="ignore"):
        for fn in ("exp", "log", "sqrt", "tanh", "sin", "floor"):
            np.testing.assert_array_equal(np.asarray(getattr(xnp, fn)(x)), getattr(np, fn)(a))
        np.testing.assert_array_equal(np.asarray(x / x), a / a)


def test_interpreter_keeps_working(xnp, xcs):
    """After a storm of failures, ordinary work still gives right answers."""
    x = xcs.asarray(np.arange(6.0).reshape(2, 3))
    for _ in range(200):
        for bad in (lambda: xnp.add(x, np.zeros(4)), lambda: xnp.sum(x, axis=7),
                    lambda: xnp.zeros((2**40, 2**40)), lambda: xnp.matmul(x, x),
                    lambda: x[5], lambda: xnp.take(x, [99]), lambda: x + "s"):
            try:
                bad()
            except (xcs.XCSError, TypeError, ValueError, IndexError, MemoryError):
                pass
    np.testing.assert_array_equal(np.asarray(xnp.sum(x, axis=1)), [3.0, 12.0])
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(x @ x.T), a @ a.T)


def test_errors_do_not_leak_memory(xnp, xcs):
    """Failing calls must free their temporaries (RSS stays flat)."""
    import resource

    x = xcs.asarray(np.ones((1000, 1000)))
    y = xcs.asarray(np.ones((999,)))

    def storm():
        for _ in range(50):
            try:
                xnp.add(x * 2.0, y)
            except xcs.XCSShapeError:
                pass

    storm()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    storm()
    storm()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 100_000, f"max RSS grew by {after - before} KiB"  # 8 MB temporaries, 100 per storm


def test_bad_input_in_subprocess_does_not_crash():
    """The nastiest inputs run in a child: a segfault would show as a signal."""
    code = textwrap.dedent("""
        import numpy as np, ember.xcs as xcs, ember.xcs.numpy as xnp, ember.xcs.random
        x = xcs.asarray(np.arange(12.0).reshape(3, 4))
        bads = [
            lambda: xnp.zeros((2**63 - 1, 2**63 - 1)),
            lambda: xnp.reshape(x, (2**62, 2**62)),
            lambda: xnp.broadcast_to(x, (2**40, 2**40, 3, 4)),
            lambda: x[:, ::0],
            lambda: x[10**30],
            lambda: xnp.take(x, [2**62]),
            lambda: xnp.take(x, [-2**63]),
            lambda: xnp.einsum("ab,bc->ca", x, x),
            lambda: xnp.einsum("", x),
            lambda: xnp.einsum("a" * 40 + "->", x),
            lambda: xnp.split(x, 0),
            lambda: xnp.split(x, [5, 1, -7], axis=1),
            lambda: xnp.arange(0, 1e30, 1e-30),
            lambda: xnp.linspace(0, 1, -5),
            lambda: xnp.eye(-3),
            lambda: xnp.full((2,), object()),
            lambda: xnp.array([[1, 2], [3]]),
            lambda: xnp.concatenate([x] * 3, axis=-3),
            lambda: xnp.stack([]),
            lambda: xnp.transpose(x, (0, 0)),
            lambda: xnp.squeeze(x, 0),
            lambda: xnp.clip(x, "a", 2),
            lambda: x.astype("complex64"),
            lambda: xcs.asarray(np.zeros(3, dtype=object)),
            lambda: xcs.asarray(np.array(["a", "b"])),
            lambda: xcs.random.uniform(xcs.random.key(0), (-1,)),
            lambda: xcs.random.split(xcs.random.key(0), -1),
            lambda: xcs.from_dlpack(3),
            lambda: x.__dlpack__(stream=5),
            lambda: x.reshape(),
        ]
        failed = 0
        for i, f in enumerate(bads):
            try:
                f()
            except Exception as e:
                if type(e).__name__ in ("SystemError",):
                    print("SystemError from case", i, e)
                    failed += 1
        print("ok", failed)
        raise SystemExit(failed)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr[-3000:]}"
    assert "ok 0" in r.stdout


@pytest.mark.parametrize("shape", [(3,), (0, 4)], ids=["values", "empty"])
@pytest.mark.parametrize("fn, hint", [
    (lambda x: -x, "use ~ or logical_not"), (lambda x: x - x, "use \\^ or logical_xor"),
    (np.sign, "cast to an integer")], ids=["neg", "sub", "sign"])
def test_numeric_ops_refuse_bool_when_called_or_traced(xcs, fn, hint, shape):
    """negative/subtract/sign refuse bool at the op, as numpy does, not in a
    kernel: empty arrays and traces too, with the way out in the message
    (floor_divide/mod/power take bools as numpy's int8: test_numpy_fidelity)."""
    b = xcs.asarray(np.zeros(shape, bool))
    for f in (fn, xcs.jit(fn)):
        with pytest.raises(xcs.XCSTypeError, match=f"not supported for dtype bool \\({hint}"):
            np.asarray(f(b))
