"""numpy interop: zero-copy in both directions, buffer protocol,
__array_ufunc__/__array_function__ dispatch, fallback for numpy functions xcs
does not implement, DLPack round trips, immutability, lifetimes."""
import gc
import sys
import weakref

import numpy as np
import pytest

from conftest import assert_close, random_array


def test_asarray_from_numpy_is_zero_copy(xcs, rng):
    for dtype in (np.bool_, np.int32, np.int64, np.float32, np.float64):
        a = random_array(rng, (4, 5), dtype)
        x = xcs.asarray(a)
        assert x.dtype == a.dtype
        assert np.shares_memory(np.asarray(x), a), dtype
        assert_close(x, a)


@pytest.mark.parametrize("view", ["T", "step", "neg", "offset", "bcast"])
def test_asarray_strided_numpy_views(xcs, rng, view):
    a = rng.standard_normal((6, 8))
    v = {"T": a.T, "step": a[::2, 1::3], "neg": a[::-1, ::-2], "offset": a[2:, 3:],
         "bcast": np.broadcast_to(a[0], (5, 8))}[view]
    x = xcs.asarray(v)
    assert x.shape == v.shape
    assert_close(x, v)
    assert np.shares_memory(np.asarray(x), a)
    # and computing on the strided zero-copy input is right
    assert_close(x * 2 + 1, v * 2 + 1)


def test_asarray_converts_other_dtypes(xcs):
    """int8/uint8/... are converted to the nearest supported dtype (docs/api.md);
    float16 is supported, and kept."""
    assert xcs.asarray(np.arange(5, dtype=np.float16)).dtype == np.float16
    for src in (np.int8, np.uint8, np.int16, np.uint16):
        a = np.arange(5).astype(src)
        x = xcs.asarray(a)
        assert x.dtype in (np.float32, np.float64, np.int32, np.int64), (src, x.dtype)
        np.testing.assert_array_equal(np.asarray(x).astype(np.float64), a.astype(np.float64))


def test_asarray_uint64_never_wraps(xcs):
    """uint64 has no exact xcs dtype: values >= 2**63 must not silently become
    negative int64s (converting to float64, numpy's uint64+int64 promotion, or
    raising are both acceptable)."""
    a = np.array([2**63, 2**64 - 1, 1], np.uint64)
    try:
        x = xcs.asarray(a)
    except (OverflowError, xcs.XCSError):
        return
    got = np.asarray(x)
    assert (got.astype(np.float64) >= 0).all(), f"uint64 {a} became {got} ({got.dtype})"
    np.testing.assert_allclose(got.astype(np.float64), a.astype(np.float64), rtol=1e-15)
    small = xcs.asarray(np.array([1, 2], np.uint64))  # in-range values stay exact either way
    np.testing.assert_array_equal(np.asarray(small), [1, 2])


def test_array_copies(xcs, rng):
    a = rng.standard_normal(5)
    x = xcs.array(a)
    assert not np.shares_memory(np.asarray(x), a)
    a[0] = 123.0
    assert float(np.asarray(x)[0]) != 123.0


def test_buffer_protocol(xcs, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = xcs.asarray(a)
    m = memoryview(x)
    assert m.readonly
    assert m.shape == (3, 4)
    assert m.format in ("f", "<f", "=f")
    assert m.itemsize == 4
    assert m.strides == (16, 4)
    np.testing.assert_array_equal(np.frombuffer(x, dtype=np.float32).reshape(3, 4), a)
    # strided view through the buffer protocol
    mt = memoryview(x.T)
    assert mt.strides == (4, 16)
    assert not mt.c_contiguous
    n = np.asarray(x.T)
    assert n.flags.writeable is False
    np.testing.assert_array_equal(n, a.T)


def test_buffer_in(xcs):
    import array
    buf = array.array("d", [1.0, 2.0, 3.0])
    x = xcs.asarray(buf)
    assert x.dtype == np.float64
    assert_close(x, np.array([1.0, 2.0, 3.0]))
    b = bytearray(np.arange(4, dtype=np.int32).tobytes())
    x = xcs.asarray(memoryview(b).cast("i"))
    assert_close(x, np.arange(4, dtype=np.int32))


def test_array_dunder(xcs, rng):
    a = rng.standard_normal((2, 3))
    x = xcs.asarray(a)
    assert_close(x.__array__(), a)
    assert x.__array__(np.float32).dtype == np.float32
    c = np.array(x, copy=True)
    assert not np.shares_memory(c, a)
    assert_close(x.__array__(copy=None), a)


def test_numpy_keeps_buffer_alive(xcs, rng):
    """np.asarray(x) must keep the storage alive after the Array is gone."""
    a = rng.standard_normal(1000)
    x = xcs.asarray(a) * 2.0  # xcs-owned storage
    n = np.asarray(x)
    del x
    gc.collect()
    junk = [np.ones(1000) * 7 for _ in range(50)]  # reuse freed memory if any
    np.testing.assert_array_equal(n, a * 2.0)
    del junk


def test_xcs_keeps_numpy_alive(xcs):
    a = np.arange(1000.0)
    r = sys.getrefcount(a)
    x = xcs.asarray(a)
    assert sys.getrefcount(a) > r  # the Array holds a reference
    del a
    gc.collect()
    np.testing.assert_array_equal(np.asarray(x), np.arange(1000.0))
    del x
    gc.collect()


def test_release_of_numpy_source(xcs):
    """The wrapped numpy array is released once the Array and its views die."""

    class Holder(np.ndarray):
        pass

    a = np.arange(10.0).view(Holder)
    w = weakref.ref(a)
    x = xcs.asarray(a)
    v = x[2:5].T
    del a
    gc.collect()
    assert w() is not None
    del x
    gc.collect()
    assert w() is not None  # the view still needs it
    np.testing.assert_array_equal(np.asarray(v), np.arange(2.0, 5.0))
    del v
    gc.collect()
    assert w() is None, "Array leaked its numpy source"


# ----------------------------------------------------------------- dispatch

UFUNCS = ["add", "multiply", "subtract", "divide", "maximum", "exp", "log", "sqrt", "tanh", "negative",
          "less", "equal", "logical_and", "floor", "abs"]


@pytest.mark.parametrize("name", UFUNCS)
def test_array_ufunc_dispatch(xcs, rng, name):
    a = rng.uniform(0.5, 2.0, (3, 4))
    b = rng.uniform(0.5, 2.0, (4,))
    x = xcs.asarray(a)
    uf = getattr(np, name)
    args = (x, b) if uf.nin == 2 else (x,)
    nargs = (a, b) if uf.nin == 2 else (a,)
    got = uf(*args)
    assert isinstance(got, xcs.Array), f"np.{name} on an Array returned {type(got)}"
    assert_close(got, uf(*nargs))


FUNCS = [
    ("sum", lambda m, x: m.sum(x, axis=0)),
    ("mean", lambda m, x: m.mean(x)),
    ("max", lambda m, x: m.max(x, axis=1, keepdims=True)),
    ("argmax", lambda m, x: m.argmax(x, axis=1)),
    ("var", lambda m, x: m.var(x, ddof=1)),
    ("matmul", lambda m, x: m.matmul(x, m.transpose(x))),
    ("dot", lambda m, x: m.dot(x, m.transpose(x))),
    ("einsum", lambda m, x: m.einsum("ij,kj->ik", x, x)),
    ("reshape", lambda m, x: m.reshape(x, (4, 3))),
    ("transpose", lambda m, x: m.transpose(x)),
    ("where", lambda m, x: m.where(x > 1, x, 0.0)),
    ("clip", lambda m, x: m.clip(x, 0.8, 1.2)),
    ("concatenate", lambda m, x: m.concatenate([x, x], axis=0)),
    ("stack", lambda m, x: m.stack([x, x])),
    ("take", lambda m, x: m.take(x, [0, 2], axis=1)),
    ("expand_dims", lambda m, x: m.expand_dims(x, 0)),
    ("squeeze", lambda m, x: m.squeeze(m.expand_dims(x, 0))),
    ("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4))),
    ("zeros_like", lambda m, x: m.zeros_like(x)),
]


@pytest.mark.parametrize("name,fn", FUNCS, ids=[f[0] for f in FUNCS])
def test_array_function_dispatch(xcs, rng, name, fn):
    """Plain numpy code on Arrays runs in xcs and returns Arrays."""
    a = rng.uniform(0.5, 2.0, (3, 4))
    x = xcs.asarray(a)
    got = fn(np, x)
    assert isinstance(got, xcs.Array), f"np.{name} on an Array returned {type(got)}"
    assert_close(got, fn(np, a), rtol=1e-12, atol=1e-12)


def test_split_dispatch(xcs, rng):
    a = rng.standard_normal((6, 2))
    parts = np.split(xcs.asarray(a), 3)
    assert len(parts) == 3 and all(isinstance(p, xcs.Array) for p in parts)
    for p, w in zip(parts, np.split(a, 3)):
        assert_close(p, w)


def test_fallback_for_unsupported_numpy_function(xcs, rng):
    """A numpy function xcs does not implement runs in numpy on converted
    inputs, and array results come back as Arrays."""
    a = rng.standard_normal((4, 4))
    x = xcs.asarray(a)
    got = np.cumsum(x, axis=0)
    assert isinstance(got, xcs.Array)
    assert_close(got, np.cumsum(a, axis=0))
    s = np.sort(x, axis=1)
    assert isinstance(s, xcs.Array)
    assert_close(s, np.sort(a, axis=1))
    # a non-array result comes back as is
    assert np.allclose(x, a) is True or np.allclose(x, a) == True  # noqa: E712
    assert np.array_equal(x, a)
    assert np.shape(x) == (4, 4)
    # an unsupported ufunc falls back too
    got = np.arctan2(x, x)
    assert isinstance(got, xcs.Array)
    assert_close(got, np.arctan2(a, a))


def test_mixed_numpy_code(xcs, rng):
    """The DESIGN.md promise: unmodified numpy code works on Arrays."""
    x = xcs.asarray(rng.standard_normal((8, 16)).astype(np.float32))
    w = xcs.asarray(rng.standard_normal((16, 4)).astype(np.float32))
    scores = np.tanh(x @ w).sum(axis=1)
    assert isinstance(scores, xcs.Array)
    ref = np.tanh(np.asarray(x, np.float64) @ np.asarray(w, np.float64)).sum(axis=1)
    assert_close(scores, ref, np.float32, rtol=1e-4, atol=1e-4)
    assert float(scores[0]) == pytest.approx(float(ref[0]), rel=1e-4, abs=1e-4)


def test_out_argument(xcs):
    """out= cannot write into an immutable Array; numpy-array out works or errors cleanly."""
    x = xcs.asarray(np.ones(3))
    out = np.empty(3)
    try:
        r = np.add(x, x, out=out)
    except (xcs.XCSError, TypeError, ValueError):
        return
    np.testing.assert_array_equal(out, 2.0)
    assert r is out or np.shares_memory(np.asarray(r), out)


# ----------------------------------------------------------------- DLPack

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_])
def test_dlpack_to_numpy(xcs, rng, dtype):
    a = random_array(rng, (3, 5), dtype)
    x = xcs.asarray(a) + (0 if dtype != np.bool_ else False)
    assert x.__dlpack_device__() == (1, 0)
    n = np.from_dlpack(x)
    assert n.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(n, np.asarray(x))
    assert np.shares_memory(n, np.asarray(x))


def test_dlpack_strided_to_numpy(xcs, rng):
    a = rng.standard_normal((4, 6))
    x = xcs.asarray(a)[::2, ::-1]
    n = np.from_dlpack(x)
    np.testing.assert_array_equal(n, a[::2, ::-1])
    nt = np.from_dlpack(xcs.asarray(a).T)
    np.testing.assert_array_equal(nt, a.T)


def test_dlpack_from_numpy(xcs, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = xcs.from_dlpack(a)
    assert isinstance(x, xcs.Array)
    assert_close(x, a)
    assert np.shares_memory(np.asarray(x), a)
    y = xcs.from_dlpack(a.T[::2])
    assert_close(y, a.T[::2])


def test_dlpack_round_trip(xcs, rng):
    a = rng.standard_normal((5, 2))
    x = xcs.asarray(a)
    y = xcs.from_dlpack(np.from_dlpack(x))
    assert_close(y, a)
    z = xcs.from_dlpack(x)  # Array -> Array
    assert_close(z, a)
    assert np.shares_memory(np.asarray(z), a)


def test_dlpack_versions(xcs):
    x = xcs.asarray(np.arange(3.0))
    cap = x.__dlpack__()
    assert type(cap).__name__ == "PyCapsule"
    cap2 = x.__dlpack__(max_version=(1, 0))
    assert type(cap2).__name__ == "PyCapsule"
    # lifetime: the capsule may outlive the Array
    del x
    gc.collect()
    n = np.from_dlpack(xcs.asarray(np.arange(3.0)))
    np.testing.assert_array_equal(n, np.arange(3.0))


def test_dlpack_copy_false_and_device_errors(xcs):
    x = xcs.asarray(np.arange(3.0))
    with pytest.raises(Exception):
        x.__dlpack__(dl_device=(2, 0))  # CUDA device requested from a CPU array
    with pytest.raises(Exception):
        xcs.from_dlpack(object())


# ----------------------------------------------------------------- immutability

def test_immutable(xcs):
    x = xcs.asarray(np.zeros(3))
    with pytest.raises(xcs.XCSError) as ei:
        x[0] = 1.0
    assert "immutable" in str(ei.value).lower() or "read-only" in str(ei.value).lower() or \
        "assignment" in str(ei.value).lower()
    n = np.asarray(x)
    with pytest.raises(ValueError):
        n[0] = 1.0  # numpy sees a read-only buffer
    with pytest.raises((xcs.XCSError, TypeError, ValueError)):
        np.add(x, 1, out=x)
