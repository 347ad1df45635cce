"""The real CUDA backend module (libxcs_cuda.so, src/cuda) through the
Python package, on the fake CUDA driver (tests/c/fake_cuda_driver.c): its
streams are threads that run copies late, after random delays, and it runs
no kernels.  So without a GPU this checks the module's loading and probe,
device Arrays' uploads and downloads through the pinned staging buffers of
per-thread streams, block_until_ready, the allocator's counters, and that a
kernel the driver refuses comes back as an XCSError naming it.

CTest python_fake_driver runs it with XCS_CUDA_DRIVER pointing at the fake
(the driver is chosen when the package first probes); elsewhere it is
skipped."""
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
