"""The real CUDA backend module (libxcs_cuda.so, src/cuda) through the
Python package, on the fake CUDA driver (tests/c/fake_cuda_driver.c): its
streams are threads that run copies late, after random delays, and it runs
no kernels.  So without a GPU this checks the module's loading and probe,
device Arrays' uploads and downloads through the pinned staging buffers of
per-thread streams, block_until_ready, the allocator's counters, and that a
kernel the driver refuses comes back as an XCSError naming it; and, with
two fake devices and the fake NCCL (tests/c/fake_nccl.c), pmap's collectives
combined device to device.

CTest python_fake_driver runs it with XCS_CUDA_DRIVER pointing at the fake
(the driver is chosen when the package first probes), XCS_FAKE_CUDA_DEVICES=2
and XCS_NCCL_LIBRARY pointing at the fake NCCL; elsewhere it is skipped."""
import os
import threading

import numpy as np
import pytest

import ember.xcs as xcs

pytestmark = pytest.mark.skipif(os.environ.get("XCS_FAKE_CUDA_RUN") != "1",
                                reason="runs under CTest python_fake_driver (XCS_CUDA_DRIVER=the fake driver)")


def test_the_module_finds_the_fake_device():
    cuda = xcs.devices()[1]
    assert cuda["available"], cuda.get("reason")
    assert cuda["gpus"][0]["name"] == "xcs fake CUDA device 0"
    assert cuda["nccl"] == "2.28.0" and cuda["nccl_reason"] == ""  # the fake NCCL's version, 22800
    assert xcs.default_device() == "cuda:0"


@pytest.mark.parametrize("n", [1, 1000, 3_000_000])  # up to 24 MB: several staging chunks
def test_round_trips_through_the_staging_buffers(n, rng):
    x = rng.standard_normal(n)
    d = xcs.device_put(x, "cuda")
    assert d.device == "cuda:0"
    assert d.block_until_ready() is d
    np.testing.assert_array_equal(np.asarray(d), x)
    f16 = rng.standard_normal((n, 1)).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(xcs.device_put(f16, "cuda")), f16)


def test_threads_upload_and_read_on_their_own_streams(rng):
    xs = [rng.standard_normal((300, 257)) for _ in range(6)]
    got, errors = [None] * 6, []

    def work(k):
        try:
            for _ in range(5):
                a = xcs.device_put(xs[k] * (k + 1), "cuda")
                xcs.block_until_ready([a])
                got[k] = np.array(a)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    for k in range(6):
        np.testing.assert_array_equal(got[k], xs[k] * (k + 1))


def test_an_array_made_on_one_thread_is_read_on_another(rng):
    x = rng.standard_normal((2000, 500))
    made = []
    t = threading.Thread(target=lambda: made.append(xcs.device_put(x, "cuda")))  # its upload still queued
    t.start()
    t.join()
    np.testing.assert_array_equal(np.asarray(made[0]), x)  # read on this thread's stream


def test_allocator_counters_and_empty_cache(rng):
    xcs.empty_cache()
    before = xcs.memory_stats()
    a = xcs.device_put(rng.standard_normal(100_000), "cuda")
    now = xcs.memory_stats()
    assert now["current_bytes"] >= before["current_bytes"] + 800_000
    del a
    after = xcs.memory_stats()
    assert after["cached_bytes"] >= 800_000  # back to the cache, not the driver
    xcs.empty_cache()
    assert xcs.memory_stats()["cached_bytes"] == 0


def test_a_refused_kernel_is_an_error_naming_it(rng):
    d = xcs.device_put(rng.standard_normal(10), "cuda")
    f = xcs.jit(lambda a: a * 2 + 1, config=xcs.Config(device="cuda"))
    with pytest.raises(xcs.XCSError, match=r"kernel xcs_[0-9a-f]+: CUDA cuLaunchKernel failed: CUDA_ERROR_NOT_SUPPORTED"):
        f(d)


def test_collectives_across_the_devices_through_nccl(rng):
    """pmap's device-to-device combining (_device_collective) through the real
    module, NCCL being the fake: its ranks meet on the two devices' streams,
    after the uploads that wrote their parts; every result on its part's
    device; threads combining at once."""
    from ember.xcs import _xcs

    gpus = [f"cuda:{g['ordinal']}" for g in xcs.devices()[1]["gpus"]]
    assert gpus == ["cuda:0", "cuda:1"]
    a, b = rng.standard_normal((300, 40)), rng.standard_normal((200, 40))
    g = _xcs._device_collective("all_gather", [xcs.device_put(a, "cuda:0"), xcs.device_put(b, "cuda:1")])
    assert isinstance(g, list), g
    assert [r.device for r in g] == gpus
    for r in g:
        np.testing.assert_array_equal(np.asarray(r), np.concatenate([a, b]))
    results, errors = {}, []

    def work(k):
        try:
            for j in range(4):
                r = np.random.default_rng(k * 10 + j)
                x = [r.standard_normal((50 + k, 7)).astype(np.float32) for _ in gpus]
                kind = ("psum", "pmax")[(k + j) % 2]
                res = _xcs._device_collective(kind, [xcs.device_put(v, d) for v, d in zip(x, gpus)])
                want = x[0] + x[1] if kind == "psum" else np.maximum(x[0], x[1])
                results[k, j] = all(np.array_equal(np.asarray(r), want) for r in res)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert len(results) == 16 and all(results.values())
    # int64 and float16 parts; a sum of booleans stays on the host
    i = [rng.integers(-100, 100, size=33) for _ in gpus]
    s = _xcs._device_collective("psum", [xcs.device_put(v, d) for v, d in zip(i, gpus)])
    np.testing.assert_array_equal(np.asarray(s[1]), i[0] + i[1])
    h = [rng.integers(-8, 8, size=9).astype(np.float16) for _ in gpus]
    m = _xcs._device_collective("pmax", [xcs.device_put(v, d) for v, d in zip(h, gpus)])
    np.testing.assert_array_equal(np.asarray(m[0]), np.maximum(h[0], h[1]))
    flags = [xcs.device_put(rng.random(5) < 0.5, d) for d in gpus]
    assert isinstance(_xcs._device_collective("psum", flags), str)
