"""The CUDA backend's host side, on any machine: the module probe and the
reasons devices() gives, the CPU fallback with the module absent, Config's
device field and device_put, and the fused groups of real programs lowered
to CUDA C that NVRTC compiles (no GPU needed).  What needs a GPU (running
the kernels, the `cuda` label) is not here."""
import os
import subprocess
import sys

import numpy as np
import pytest

import ember.xcs as xcs
from ember.xcs import _xcs

PROBE = ("import json, numpy as np, ember.xcs as x; d = x.devices()[1]; "
         "f = x.jit(lambda a, b: np.tanh(a @ b).sum(axis=1)); a = np.arange(6.).reshape(2, 3) / 6; "
         "r = np.asarray(f(a, a.T)); assert np.allclose(r, np.tanh(a @ a.T).sum(axis=1)); print(json.dumps(d))")


def _probe(**env):
    e = dict(os.environ)
    for k in ("XCS_DEVICE", "XCS_CUDA_MODULE"):  # the suite's CUDA and mock runs set them: these probe the real module
        e.pop(k, None)
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def _nvrtc():
    try:
        _xcs._nvrtc_compile('extern "C" __global__ void k() {}')
        return True
    except xcs.XCSError:
        return False


def test_devices_reports_cuda_with_a_reason():
    cpu, cuda = xcs.devices()
    assert cpu["kind"] == "cpu" and cpu["available"]
    assert cuda["kind"] == "cuda" and isinstance(cuda["gpus"], list)
    if not cuda["available"]:
        assert cuda["reason"]
        assert xcs.default_device() == "cpu"


def test_fallback_without_the_module_and_with_cuda_disabled():
    d = _probe(XCS_CUDA_MODULE="/nonexistent/libxcs_cuda.so")
    assert not d["available"] and "no CUDA backend module" in d["reason"] and not d["module_loaded"]
    d = _probe(XCS_CUDA="0")
    assert not d["available"] and "XCS_CUDA=0" in d["reason"]


def test_missing_driver_is_named():
    d = _probe(XCS_CUDA_DRIVER="/nonexistent/libcuda.so.1")
    if not d["module_loaded"]:
        pytest.skip("this build has no CUDA backend module")
    assert not d["available"] and "/nonexistent/libcuda.so.1" in d["reason"] and "driver" in d["reason"]


def test_config_device_and_device_put():
    for good in ("auto", "cpu", "cuda", "cuda:1"):
        assert xcs.Config(device=good).device == good
    for bad in ("gpu", "cuda:x", "cpu:0", 3, None):
        with pytest.raises(xcs.XCSValueError, match="Config.device"):
            xcs.Config(device=bad)
    f = xcs.jit(lambda v: v * 2.0, config=xcs.Config(device="cpu"))
    assert np.asarray(f(np.ones(3))).tolist() == [2.0] * 3
    a = xcs.device_put(np.arange(3.0), "cpu")
    assert isinstance(a, xcs.Array) and a.device == "cpu"
    assert xcs.device_put(a, "cpu") is a
    with pytest.raises(xcs.XCSValueError):
        xcs.device_put(a, "tpu")
    if not xcs.devices()[1]["available"]:
        g = xcs.jit(lambda v: v + 1, config=xcs.Config(device="cuda"))
        with pytest.raises(xcs.XCSDeviceError, match="no usable CUDA device"):
            g(np.ones(2))
        with pytest.raises(xcs.XCSDeviceError, match="device='auto'"):
            xcs.device_put(a, "cuda:0")
        assert "CUDA unavailable" in xcs.explain(lambda v: v + 1, np.ones(2))


def test_block_until_ready_on_host_values():
    """Host Arrays are ready: the same object back; pytrees keep their other
    leaves; a lazy value of an orchestration body is computed; a traced one
    raises."""
    from ember.api.decorators import mark_orchestration

    a = xcs.asarray(np.arange(3.0))
    assert a.block_until_ready() is a
    tree = {"a": a, "n": [1, "s", np.ones(2)]}
    assert xcs.block_until_ready(tree) is tree

    @mark_orchestration
    def tool(v):
        return 1.0

    @xcs.jit
    def body(v):
        w = np.tanh(v) * 2  # lazy until needed
        xcs.block_until_ready(w)
        return w + tool(v)
    np.testing.assert_allclose(np.asarray(body(np.ones(3))), np.tanh(1.0) * 2 + 1.0)
    with pytest.raises(xcs.XCSTracerError, match="block_until_ready"):
        xcs.jit(lambda v: v.block_until_ready())(np.ones(2))


def _programs():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((8, 16)), rng.standard_normal((16, 4)), rng.standard_normal(4)

    def softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def layer_norm(v):
        m = v.mean(axis=-1, keepdims=True)
        return (v - m) / np.sqrt(((v - m) ** 2).mean(axis=-1, keepdims=True) + 1e-5)

    return [
        (softmax, (x,)),
        (layer_norm, (x,)),
        (lambda x, w, b: np.maximum(x @ w + b, 0.0), (x, w, b)),                     # matmul epilogue
        (lambda x: (np.where(x > 0, x, 0.1 * x) ** 2).sum(axis=0), (x,)),            # column reduction
        (lambda x: (x.astype(np.int64) // 3 % 5 == 1).sum(), (x * 10,)),            # ints, bools, casts
        (lambda x: np.tanh(x.T[::2]) * np.float32(2), (x.astype(np.float32),)),      # strided view, f32
    ]


@pytest.mark.parametrize("k", range(6))
def test_real_programs_lower_to_cuda(k):
    fn, args = _programs()[k]
    f = xcs.jit(fn)
    f(*args)
    (entry,) = f._cache.values()
    sources = entry.graph.cuda_sources()
    assert len(sources) == entry.groups >= 1
    for s in sources:
        assert "xcs_fused(" in s["source"] and "#include" not in s["source"]
        if _nvrtc():
            info = _xcs._nvrtc_compile(s["source"], 90)
            assert info["bytes"] > 0 and info["nvrtc_version"] >= 11000


@pytest.mark.skipif(not _nvrtc(), reason="NVRTC is not installed")
def test_nvrtc_errors_carry_the_log():
    with pytest.raises(xcs.XCSError, match="not_declared"):
        _xcs._nvrtc_compile('extern "C" __global__ void k() { not_declared(); }')
    info = _xcs._nvrtc_compile('extern "C" __global__ void k() {}', 80, True)
    assert info["cubin"] and info["bytes"] > 0


def test_orchestration_functions_check_the_device_too():
    if xcs.devices()[1]["available"]:
        pytest.skip("a CUDA device is usable here")
    from ember.api.decorators import mark_orchestration

    @mark_orchestration
    def call(s):
        return s + "!"

    f = xcs.jit(lambda s: call(s), config=xcs.Config(device="cuda"))
    with pytest.raises(xcs.XCSDeviceError):
        f("hi")


@pytest.mark.parametrize("red, dt, acc", [(np.sum, np.float32, "double"), (np.sum, np.float64, "double"),
                                          (np.max, np.float32, "float"), (np.min, np.float64, "double"),
                                          (np.sum, np.int32, "long long"), (np.max, np.int64, "long long")])
def test_reduction_accumulators(red, dt, acc):
    # float sums accumulate in double, maxima in their own type (a reduction
    # once read its register's type before the body had recorded it: every
    # float reduction accumulated in long long)
    f = xcs.jit(lambda a: red(a * 2, axis=0))
    f(np.ones((5, 7), dt))
    (entry,) = f._cache.values()
    (src,) = [s["source"] for s in entry.graph.cuda_sources()]
    assert f"__shared__ {acc} part[" in src


def test_xcs_device_environment(monkeypatch):
    monkeypatch.setenv("XCS_DEVICE", "cpu")
    assert xcs.default_device() == "cpu"
    assert np.asarray(xcs.jit(lambda v: v + 1)(np.ones(2))).tolist() == [2.0, 2.0]
    monkeypatch.setenv("XCS_DEVICE", "tpu")
    with pytest.raises(xcs.XCSValueError, match="XCS_DEVICE"):
        xcs.default_device()
    if not xcs.devices()[1]["available"]:  # asking for a GPU there is not: an error, not a silent CPU run
        monkeypatch.setenv("XCS_DEVICE", "cuda")
        with pytest.raises(xcs.XCSDeviceError, match="XCS_DEVICE='cuda'"):
            xcs.jit(lambda v: v * 3)(np.ones(2))
        assert "device: none usable" in xcs.explain(lambda v: v + 1, np.ones(2))
