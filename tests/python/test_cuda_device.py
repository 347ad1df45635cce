"""Jitted programs on a real GPU (Config(device="cuda")) against numpy in
float64 and against the same program on the CPU: fused elementwise chains
with broadcasting and strided inputs, reductions over every axis set,
softmax and layer norm, matmuls (float32, float64, TF32 when asked),
integer and bool programs, gathers, scatters, concatenation,
argmax/argmin, argsort and solve/cholesky/slogdet as device kernels and
host-fallback ops (random, eigh) inside device programs,
grad and vmap, device Arrays (host copies, chained
calls, device_put) and the caching allocator's counters.  Skipped, with the
reason, where no CUDA device is usable (CI)."""
import numpy as np
import pytest

import ember.xcs as xcs
import ember.xcs.nn
import ember.xcs.numpy as xnp

CUDA = xcs.devices()[1]
pytestmark = pytest.mark.skipif(not CUDA["available"], reason=f"no usable CUDA device: {CUDA.get('reason')}")
# the mock device (tests/c/mock_module.c, CTest python_mock_cuda) runs this
# file in CI: host memory and CPU kernels, no caching allocator, no overlap
MOCK = CUDA["available"] and CUDA["gpus"][0]["name"] == "xcs mock device"
real_gpu = pytest.mark.skipif(MOCK, reason="needs a real GPU (the mock has no caching allocator and runs on the CPU)")
ON_GPU = xcs.Config(device="cuda")
ON_CPU = xcs.Config(device="cpu")


def test_devices_report_nccl():
    """With a GPU, devices() says whether pmap's collectives across GPUs can
    go through NCCL: its version, or None and why."""
    if MOCK:
        assert CUDA["nccl"] is None and "stand-in" in CUDA["nccl_reason"]
        if len(CUDA["gpus"]) > 1:
            assert "GPUs, no NCCL for pmap's collectives (a stand-in for NCCL" in xcs.explain(lambda x: x)
    elif CUDA["nccl"] is None:
        assert CUDA["nccl_reason"]
    else:
        major, minor, patch = (int(v) for v in CUDA["nccl"].split("."))
        assert major == 2 and CUDA["nccl_reason"] == ""


def both(f, *args, **cfg):
    """f jitted on the GPU and on the CPU, on the same inputs."""
    g = xcs.jit(f, config=xcs.Config(device="cuda", **cfg))
    c = xcs.jit(f, config=xcs.Config(device="cpu"))
    return g(*args), c(*args)


def rel_err(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    # scaled first: the norms square their entries, and squares of values
    # below 1e-162 underflow to 0 (a 0 result against a tiny reference then
    # scored 0 error)
    scale = max(float(np.max(np.abs(want), initial=0.0)), float(np.max(np.abs(got), initial=0.0)), 1e-300)
    return float(np.linalg.norm((got - want) / scale) / max(np.linalg.norm(want / scale), 1e-300))


def rng():
    return np.random.default_rng()  # fresh inputs on every run


def test_elementwise_chain_broadcast_strided():
    r = rng()
    x = r.standard_normal((64, 33, 17)).astype(np.float32)
    b = r.standard_normal((33, 1)).astype(np.float32)
    xt = np.swapaxes(r.standard_normal((17, 33, 64)).astype(np.float32), 0, 2)  # strided
    f = lambda x, b, xt: np.tanh(x * 1.5 + b) * np.exp(-np.abs(xt)) - np.sqrt(x * x + 1)
    g, c = both(f, x, b, xt)
    assert g.device == "cuda:0" and g.dtype == np.float32 and g.shape == x.shape
    want = f(*(v.astype(np.float64) for v in (x, b, xt)))
    assert rel_err(g, want) < 1e-6
    assert rel_err(g, c) < 1e-6


@pytest.mark.parametrize("axis", [None, 0, 1, 2, (0, 2), (1, 2)])
def test_reductions(axis):
    x = rng().standard_normal((31, 40, 67))
    for dt, tol in ((np.float32, 1e-6), (np.float64, 1e-13)):
        xv = x.astype(dt)
        for red in (np.sum, np.max, np.min, np.mean, np.prod):
            # a product of up to 83 080 factors near 1 that stays in float32's range
            v = xv * 0.01 + 1 if red is np.prod else xv
            g, _ = both(lambda a: red(a, axis=axis), v)
            want = red(v.astype(np.float64), axis=axis)
            assert rel_err(g, want) < (tol * 50 if red is np.prod else tol), (red.__name__, dt)


@pytest.mark.parametrize("row_kernels", ["0", "1"])
def test_softmax_and_layer_norm_rows(row_kernels, monkeypatch):
    monkeypatch.setenv("XCS_CUDA_ROW_KERNELS", row_kernels)  # read at every launch
    x = rng().standard_normal((2048, 1000)).astype(np.float32)
    chains = xcs.memory_stats()["row_chains"]

    def softmax(a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def layer_norm(a):
        mu = a.mean(axis=1, keepdims=True)
        return (a - mu) / np.sqrt(a.var(axis=1, keepdims=True) + 1e-5)

    for f in (softmax, layer_norm):
        g, c = both(f, x)
        assert rel_err(g, f(x.astype(np.float64))) < 1e-5
        assert rel_err(g, c) < 1e-5
    if row_kernels == "1":
        assert xcs.memory_stats()["row_chains"] >= chains + 2  # each in one row kernel
    else:
        assert xcs.memory_stats()["row_chains"] == chains


@pytest.mark.parametrize("shapes", [((128, 64), (64, 96)), ((3, 1, 5, 6), (4, 6, 9)), ((33,), (33, 17)),
                                    ((5, 33, 17), (17,)), ((256, 512), (512, 384))])
def test_matmul(shapes):
    r = rng()
    a, b = (r.standard_normal(s) for s in shapes)
    want = a @ b
    for dt, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        g, c = both(lambda p, q: p @ q, a.astype(dt), b.astype(dt))
        assert g.device == "cuda:0" and rel_err(g, want) < tol
    g, _ = both(lambda p, q: np.tanh(p @ q.T.T) + 1, a.astype(np.float32), b.astype(np.float32), allow_tf32=True)
    assert rel_err(g, np.tanh(want) + 1) < 3e-3  # TF32: 10-bit mantissa products


def test_transposed_operands():
    r = rng()
    a, b = r.standard_normal((48, 80)), r.standard_normal((96, 48))
    g, _ = both(lambda p, q: p.T @ q.T, a.astype(np.float32), b.astype(np.float32))
    assert rel_err(g, a.T @ b.T) < 1e-5


def test_integer_and_bool_programs():
    r = rng()
    i = r.integers(-1000, 1000, (50, 60)).astype(np.int64)
    j = r.integers(1, 50, (60,)).astype(np.int32)
    f = lambda i, j: ((i // j) * 3 + i % j, (i > 0) & (i % 2 == 0), np.where(i > j, i, -j))
    g, c = both(f, i, j)
    for gv, cv, wv in zip(g, c, f(i, j)):
        assert np.array_equal(np.asarray(gv), wv) and np.array_equal(np.asarray(cv), wv)
    z = np.zeros(60, np.int32)
    with pytest.raises(xcs.XCSError, match="division by zero"):
        xcs.jit(lambda i, j: i // j, config=ON_GPU)(i, z)


def test_host_fallback_ops_inside_device_programs():
    r = rng()
    x = r.standard_normal((40, 30)).astype(np.float32)
    idx = r.integers(0, 40, 25)
    f = lambda x, idx: (np.argmax(x, axis=1), x[idx] * 2 + 1, np.concatenate([x, x * 2], axis=1), np.take(x, idx % 30, axis=1).max(0))
    g, c = both(f, x, idx)
    for gv, wv in zip(g, f(x, idx)):
        assert np.allclose(np.asarray(gv), wv, rtol=1e-5, atol=1e-5)
    key = xcs.random.key(7)
    noisy = lambda a: xcs.random.uniform(key, (1000,)) * 2 + a
    u = xcs.jit(noisy, config=ON_GPU)(np.ones(1000))
    v = xcs.jit(noisy, config=ON_CPU)(np.ones(1000))
    assert np.array_equal(np.asarray(u), np.asarray(v))  # the same counter-based stream on both
    # a traced key: drawn when the program runs, by the device's kernel (the
    # numbers are not sent up: the call's uploads are the key, a, and the two
    # keys split on the host, which the draw then reads there: no downloads)
    drawn = lambda k, a: (xcs.random.uniform(k, (1000,), minval=-1.0) * 2 + a,
                          xcs.random.normal(xcs.random.split(k)[1], (999,), dtype="float64"))
    on_gpu = xcs.jit(drawn, config=ON_GPU)
    on_gpu(key, np.ones(1000))
    before, down = xcs.memory_stats()["uploads"], xcs.memory_stats()["downloads"]
    u = on_gpu(key, np.ones(1000))
    assert xcs.memory_stats()["uploads"] - before == 3 and xcs.memory_stats()["downloads"] == down
    v = xcs.jit(drawn, config=ON_CPU)(key, np.ones(1000))
    for a, b in zip(u, v):  # the same counters; float64 normals through CUDA's log and cos: ulps apart
        assert a.device.startswith("cuda")
        eps = np.finfo(np.asarray(b).dtype).eps
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=4 * eps, atol=16 * eps)


def test_grad_and_vmap_on_the_gpu():
    r = rng()
    w1, w2 = r.standard_normal((20, 32)) * 0.3, r.standard_normal((32, 4)) * 0.3
    x, y = r.standard_normal((64, 20)), r.standard_normal((64, 4))

    def loss(w1, w2, x, y):
        h = np.tanh(x @ w1)
        return ((h @ w2 - y) ** 2).mean()

    for dt, tol in ((np.float64, 1e-11), (np.float32, 1e-5)):
        args = [v.astype(dt) for v in (w1, w2, x, y)]
        gg = xcs.jit(xcs.grad(loss, argnums=(0, 1)), config=ON_GPU)(*args)
        gc = xcs.jit(xcs.grad(loss, argnums=(0, 1)), config=ON_CPU)(*args)
        for a, b in zip(gg, gc):
            assert a.device == "cuda:0" and rel_err(a, b) < tol
    per = xcs.jit(xcs.vmap(lambda v: np.tanh(v @ w1).sum()), config=ON_GPU)(x)
    assert rel_err(per, np.tanh(x @ w1).sum(axis=1)) < 1e-12


def test_device_arrays_chain_without_host_round_trips():
    x = rng().standard_normal((256, 256)).astype(np.float32)
    f = xcs.jit(lambda a: np.tanh(a) * 2, config=ON_GPU)
    y = f(x)
    assert y.device == "cuda:0" and isinstance(np.asarray(y), np.ndarray)
    z = f(y)  # read on the device
    assert rel_err(z, np.tanh(np.tanh(x.astype(np.float64)) * 2) * 2) < 1e-6
    d = xcs.device_put(x, "cuda")
    assert d.device == "cuda:0" and np.array_equal(np.asarray(d), x)
    assert xcs.device_put(d, "cuda:0") is d
    h = xcs.device_put(d, "cpu")
    assert h.device == "cpu" and np.array_equal(np.asarray(h), x)
    assert rel_err(f(d), np.tanh(x.astype(np.float64)) * 2) < 1e-6
    down = xcs.memory_stats()["downloads"]
    assert (y + 1).device == "cuda:0" and xcs.memory_stats()["downloads"] == down  # eager ops run where y is


def test_eager_ops_run_where_their_operands_live():
    """An eager op on a device Array runs on that device and returns a device
    Array (as JAX's and torch's do): nothing is copied to the host until a
    value is read; host operands (numpy arrays, Python numbers, CPU Arrays)
    are copied to the device; Arrays on two devices are an error."""
    r = rng()
    a = r.standard_normal((6, 5))
    d = xcs.device_put(a, "cuda")
    down = xcs.memory_stats()["downloads"]
    idx = np.array([3, 0, 0, 5])
    cases = [
        (lambda x: np.exp(x) * 2 - 1, lambda x: np.exp(x) * 2 - 1),
        (lambda x: 1.5 / (x + np.arange(5.0)), lambda x: 1.5 / (x + np.arange(5.0))),
        (lambda x: x @ np.ones((5, 2)), lambda x: x @ np.ones((5, 2))),
        (lambda x: np.where(x > 0, x, xcs.asarray(np.zeros(5))), lambda x: np.where(x > 0, x, 0.0)),
        (lambda x: x[1:, ::2].T.reshape(-1), lambda x: x[1:, ::2].T.reshape(-1)),
        (lambda x: x[idx, 1:3], lambda x: x[idx, 1:3]),
        (lambda x: np.take(x, idx, axis=0), lambda x: np.take(x, idx, axis=0)),
        (lambda x: np.concatenate([x, np.ones((1, 5))]), lambda x: np.concatenate([x, np.ones((1, 5))])),
        (lambda x: np.stack([x, x * 2]).sum(axis=(0, 2)), lambda x: np.stack([x, x * 2]).sum(axis=(0, 2))),
        (lambda x: np.argsort(x, axis=0), lambda x: np.argsort(x, axis=0, kind="stable")),
        (lambda x: np.argmax(x, axis=1), lambda x: np.argmax(x, axis=1)),
        (lambda x: (x > 0.5).astype(np.int32) // 2, lambda x: (x > 0.5).astype(np.int32) // 2),
        (lambda x: xcs.nn.softmax(x, axis=-1), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    ]
    got = [f(d) for f, _ in cases]
    assert all(g.device == "cuda:0" for g in got), [g.device for g in got]
    assert xcs.memory_stats()["downloads"] == down  # results stay on the device
    for g, (_, ref) in zip(got, cases):
        np.testing.assert_allclose(np.asarray(g), ref(a), rtol=1e-12, atol=1e-12)
    # indexing with device indices (an argmax's 0-d result, several arrays): gathers on the device
    down = xcs.memory_stats()["downloads"]
    k = np.argmax(d[0])  # < 5: in range on both axes
    kh = int(np.argmax(a[0]))
    ki = xcs.device_put(np.array([[2, 1, 0, 0]]), "cuda")
    idx_cases = [(d[0, k], a[0, kh]), (d[:, k], a[:, kh]), (d[k], a[kh]), (d[k, [1, 2]], a[kh, [1, 2]]),
                 (d[ki, np.arange(4)[None]], a[np.array([[2, 1, 0, 0]]), np.arange(4)[None]]),
                 (d[[0, 1], k], a[[0, 1], kh]), (np.sort(d, axis=0), np.sort(a, axis=0))]
    assert all(g.device == "cuda:0" for g, _ in idx_cases)
    assert xcs.memory_stats()["downloads"] == down
    for g, w in idx_cases:
        np.testing.assert_array_equal(np.asarray(g), w)
    with pytest.raises(xcs.XCSIndexError, match="out of bounds"):
        np.asarray(d[xcs.device_put(np.array([9]), "cuda"), np.array([0])])
    # linear algebra on the device; eigh from 8 rows, svd from 24 and qr
    # from 64 on the host (LAPACK, as the CPU), the result a device Array
    spd = a[:5] @ a[:5].T + 5 * np.eye(5)
    ds = xcs.device_put(spd, "cuda")
    down = xcs.memory_stats()["downloads"]
    la = [(np.linalg.inv(d[:5] + 5 * np.eye(5)), np.linalg.inv(a[:5] + 5 * np.eye(5))),
          (np.linalg.solve(ds, d[:5, :2]), np.linalg.solve(spd, a[:5, :2])),
          (np.linalg.cholesky(ds), np.linalg.cholesky(spd)),
          (np.linalg.slogdet(ds)[1], np.linalg.slogdet(spd)[1]),
          (np.linalg.det(d[:5]), np.linalg.det(a[:5])),
          (np.linalg.eigvalsh(ds), np.linalg.eigvalsh(spd)),
          (np.linalg.svd(d, compute_uv=False), np.linalg.svd(a, compute_uv=False)),
          (np.linalg.qr(d).R, np.linalg.qr(a).R)]
    assert all(g.device == "cuda:0" for g, _ in la)
    assert xcs.memory_stats()["downloads"] == down
    for g, w in la:
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12)
    wv = np.linalg.eigh(ds)
    np.testing.assert_allclose(np.asarray(wv.eigenvectors) * np.asarray(wv.eigenvalues) - spd @ np.asarray(
        wv.eigenvectors), 0, atol=1e-12)
    u, sv, vh = np.linalg.svd(d, full_matrices=False)
    np.testing.assert_allclose(np.asarray(u) * np.asarray(sv) @ np.asarray(vh), a, atol=1e-12)
    for n, on_device in ((12, True), (70, False)):  # values alone: the Jacobi kernel to 63 rows, then LAPACK
        big = r.standard_normal((n, n))
        down = xcs.memory_stats()["downloads"]
        wb = np.linalg.eigvalsh(xcs.device_put(big + big.T, "cuda"))
        assert wb.device == "cuda:0" and (xcs.memory_stats()["downloads"] == down) == on_device, n
        np.testing.assert_allclose(np.asarray(wb), np.linalg.eigvalsh(big + big.T), rtol=1e-10, atol=1e-11)
    with pytest.raises(xcs.XCSValueError, match="Singular matrix"):
        np.asarray(np.linalg.solve(xcs.device_put(np.zeros((3, 3)), "cuda"), np.ones(3)))
    with pytest.raises(xcs.XCSValueError, match="not positive definite"):
        np.asarray(np.linalg.cholesky(-ds))
    assert np.asarray(np.linalg.slogdet(xcs.device_put(np.zeros((2, 3, 3)), "cuda"))[1]).tolist() == [-np.inf] * 2
    # grad of a host function, applied eagerly to a device Array
    g = xcs.grad(lambda x: (x * x).sum())(d)
    np.testing.assert_allclose(np.asarray(g), 2 * a, rtol=1e-12)
    if len(CUDA["gpus"]) > 1:
        e = xcs.device_put(a, "cuda:1")
        assert (e * 2).device == "cuda:1"
        with pytest.raises(xcs.XCSValueError, match="operands on different devices"):
            d + e


def test_device_results_copy_to_the_host_only_when_read():
    x = rng().standard_normal((64, 32)).astype(np.float32)
    f = xcs.jit(lambda a: np.tanh(a) * 2, config=ON_GPU)
    y = f(f(x))  # the inner result feeds the outer call on the device
    assert y.device == "cuda:0" and not xcs._xcs._has_host_copy(y)
    assert y.shape == (64, 32) and y.dtype == np.float32 and y.ndim == 2 and y.size == 2048
    z = f(y)
    assert not xcs._xcs._has_host_copy(y) and not xcs._xcs._has_host_copy(z)
    want = np.tanh(np.tanh(np.tanh(x.astype(np.float64)) * 2) * 2) * 2
    assert rel_err(z, want) < 1e-5  # np.asarray: the copy is made now
    assert xcs._xcs._has_host_copy(z)
    w = f(x)
    # w[0, 0] is a device view: reading it copies one element, not w
    assert float(w[0, 0]) == pytest.approx(np.tanh(x[0, 0]) * 2, rel=1e-5) and not xcs._xcs._has_host_copy(w)
    for read in (repr, str, lambda a: a.tolist(), lambda a: a.strides, lambda a: list(a),
                 lambda a: memoryview(a), lambda a: a.__dlpack__(dl_device=(1, 0)), lambda a: bytes(a)):
        v = f(x)
        read(v)
        assert xcs._xcs._has_host_copy(v)
    for op in (lambda a: a + 1, lambda a: a.sum(), lambda a: a[0], lambda a: a.T @ a):  # ops: on the device
        v = f(x)
        assert op(v).device == "cuda:0" and not xcs._xcs._has_host_copy(v)


@real_gpu
def test_allocator_counters_and_empty_cache():
    f = xcs.jit(lambda a: (a * 2 + 1).sum(axis=0), config=ON_GPU)
    x = rng().standard_normal((1000, 1000)).astype(np.float32)
    for _ in range(3):
        f(x)
    s = xcs.memory_stats("cuda:0")
    assert s["reused"] > 0 and s["peak_bytes"] >= 4_000_000 and s["kernels"] > 0
    xcs.empty_cache("cuda:0")
    assert xcs.memory_stats()["cached_bytes"] == 0


def test_explain_names_the_gpu():
    text = xcs.explain(lambda a: a + 1, np.ones(3))
    if xcs.default_device().startswith("cuda"):
        assert "device: cuda:0" in text


def test_integer_matmul_epilogue_runs_gemm_on_the_host():
    r = rng()
    x = r.integers(-5, 5, (60, 40)).astype(np.int32)
    w = r.integers(-5, 5, (40, 30)).astype(np.int32)
    d = r.integers(1, 7, 30).astype(np.int32)
    g = xcs.jit(lambda x, w, d: np.maximum((x @ w) // d, 0), config=ON_GPU)(x, w, d)
    assert g.device == "cuda:0" and np.array_equal(np.asarray(g), np.maximum((x @ w) // d, 0))


@real_gpu
def test_steady_state_calls_take_no_new_device_memory():
    f = xcs.jit(lambda a: np.tanh(a @ a.T) * 2 - a.sum(axis=1, keepdims=True), config=ON_GPU)
    x = xcs.device_put(rng().standard_normal((300, 300)).astype(np.float32), "cuda")
    for _ in range(2):
        f(x)
    s0 = xcs.memory_stats()
    for _ in range(5):
        f(x)
    s1 = xcs.memory_stats()
    assert s1["device_allocs"] == s0["device_allocs"]  # every block from the cache
    assert s1["reused"] - s0["reused"] == s1["allocs"] - s0["allocs"] > 0
    assert s1["current_bytes"] == s0["current_bytes"]  # nothing kept past a call


@real_gpu
def test_gpu_region_overlaps_orchestration_calls():
    """A coarse concurrency check: an orchestration body's tensor region runs
    on the GPU without the GIL while its 8 calls of 100 ms run on the host
    task graph, so the call takes about the longer of the two, not the sum."""
    import time

    from ember.api.decorators import mark_orchestration

    @mark_orchestration
    def ask(i):
        time.sleep(0.1)
        return i

    r = np.random.default_rng(5)
    w = (r.standard_normal((4096, 4096)) / 64).astype(np.float32)
    x = r.standard_normal((4096, 4096)).astype(np.float32)

    def gpu_part(v):
        for _ in range(30):
            v = np.tanh(v @ w)
        return v.sum()

    @xcs.jit
    def both(v):
        answers = [ask(i) for i in range(8)]
        return gpu_part(v), answers

    gpu_only = xcs.jit(gpu_part, config=ON_GPU)

    def clock(f):
        f(x)  # warm: kernels compiled, blocks cached
        t0 = time.perf_counter()
        out = f(x)
        np.asarray(out[0] if isinstance(out, tuple) else out)
        return time.perf_counter() - t0

    g, b = clock(gpu_only), clock(both)
    assert b < 0.8 * (g + 0.1), (g, b)  # overlapped: well under the sum


def test_dlpack_exchanges_device_memory_zero_copy():
    x = rng().standard_normal((16, 8)).astype(np.float32)
    f = xcs.jit(lambda a: a * 2 + 1, config=ON_GPU)
    y = f(x)
    assert y.__dlpack_device__() == (2, 0)  # kDLCUDA, device 0
    z = xcs.from_dlpack(y.__dlpack__(stream=1, max_version=(1, 0)))  # the device memory itself
    assert z.device == "cuda:0" and z.shape == (16, 8) and z.dtype == np.float32
    assert not xcs._xcs._has_host_copy(y) and not xcs._xcs._has_host_copy(z)
    assert rel_err(f(z), (x.astype(np.float64) * 2 + 1) * 2 + 1) < 1e-6  # read in place by a jitted call
    assert np.array_equal(np.asarray(z), x * 2 + 1)

    class Producer:  # a foreign CUDA array (torch, CuPy): xcs asks for stream 1
        def __init__(self, a):
            self.a, self.streams = a, []

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

        def __dlpack__(self, stream=None, max_version=None):
            self.streams.append(stream)
            return self.a.__dlpack__(stream=stream, max_version=max_version)

    p = Producer(y)
    w = xcs.from_dlpack(p)
    assert p.streams == [1] and w.device == "cuda:0" and np.array_equal(np.asarray(w), np.asarray(y))
    # another stream: the device is synchronised first; a CPU consumer gets the host copy
    assert xcs.from_dlpack(y.__dlpack__(stream=7)).device == "cuda:0"
    h = xcs.from_dlpack(y.__dlpack__(dl_device=(1, 0)))
    assert h.device == "cpu" and np.array_equal(np.asarray(h), x * 2 + 1)
    with pytest.raises(xcs.XCSError, match="cannot export to device"):
        y.__dlpack__(dl_device=(2, 3))
    with pytest.raises(xcs.XCSError, match="0 is not allowed"):
        y.__dlpack__(stream=0)
    with pytest.raises(xcs.XCSError, match="cannot export to device"):
        xcs.asarray(x).__dlpack__(dl_device=(2, 0))


@real_gpu
def test_dlpack_with_torch_cuda_tensors():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    a = xcs.from_dlpack(t)  # zero-copy: the same device memory
    assert a.device == "cuda:0"
    b = xcs.jit(lambda v: v * 2, config=ON_GPU)(a)
    back = torch.from_dlpack(b)
    assert back.is_cuda and torch.equal(back, t * 2)
    t.add_(1)  # writes through: a views t's memory
    assert np.array_equal(np.asarray(xcs.jit(lambda v: v + 0, config=ON_GPU)(a)), np.arange(12.0).reshape(3, 4) + 1)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_dlpack_16bit_with_torch_cuda_tensors(name):
    """16-bit torch CUDA tensors in and out zero-copy; a jitted bias + relu
    on them (cuBLAS's 16-bit GEMM, float32 accumulation) equals torch's."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    dt = getattr(torch, name)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(64, 32, device="cuda", generator=g).to(dt)
    w = torch.randn(32, 16, device="cuda", generator=g).to(dt)
    b = torch.randn(16, device="cuda", generator=g).to(dt)
    xa, wa, ba = (xcs.from_dlpack(t) for t in (x, w, b))
    assert xa.device == "cuda:0" and xa.dtype.name == name
    y = xcs.jit(lambda u, v, c: xnp.maximum(u @ v + c, 0), config=ON_GPU)(xa, wa, ba)
    back = torch.from_dlpack(y)
    assert back.is_cuda and back.dtype == dt
    want = torch.relu(x.float() @ w.float() + b.float())
    tol = 1e-2 if name == "float16" else 6e-2
    assert torch.allclose(back.float(), want, rtol=tol, atol=tol)


def test_host_copy_made_once_under_concurrent_reads():
    import threading

    x = rng().standard_normal((256, 64)).astype(np.float32)
    f = xcs.jit(lambda a: a * 3 - 1, config=ON_GPU)
    want = x * 3 - 1
    for _ in range(5):
        y = f(x)
        assert not xcs._xcs._has_host_copy(y)
        got, barrier = [None] * 8, threading.Barrier(8)

        def read(k):
            barrier.wait()
            got[k] = np.array(y)  # each thread may race to make the host copy

        ts = [threading.Thread(target=read, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert xcs._xcs._has_host_copy(y)
        for g in got:
            np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-6)


def test_block_until_ready_waits_without_a_host_copy(rng):
    x = rng.standard_normal((512, 256)).astype(np.float32)
    f = xcs.jit(lambda a: np.tanh(a @ a.T) * 3, config=ON_GPU)
    y = f(x)
    assert y.block_until_ready() is y
    assert not xcs._xcs._has_host_copy(y)  # waited for, not copied
    out = xcs.block_until_ready({"y": y, "n": 1})
    assert out["y"] is y and not xcs._xcs._has_host_copy(y)
    np.testing.assert_allclose(np.asarray(y), np.tanh(x.astype(np.float64) @ x.T) * 3, rtol=1e-4, atol=1e-4)


def test_threads_share_the_gpu_and_hand_arrays_over(rng):
    """Threads run jitted programs on the GPU at once, each on its own
    stream, and hand device Arrays to each other: a consumer's kernels wait
    for the producer's (events, src/cuda/blocks.c), never for stale data."""
    import threading

    w = rng.standard_normal((64, 64)).astype(np.float32) / 8
    wd = xcs.device_put(w, "cuda")  # written on this thread's stream, read on every worker's
    step = xcs.jit(lambda a, w: np.tanh(a @ w) * 2 + 1, config=ON_GPU)
    total = xcs.jit(lambda a: a.sum(axis=0), config=ON_GPU)
    xs = [rng.standard_normal((512, 64)).astype(np.float32) for _ in range(6)]
    made, errors = [None] * 6, []

    def produce(k):
        try:
            y = xcs.device_put(xs[k], "cuda")
            for _ in range(4):
                y = step(y, wd)
            made[k] = y  # left on the device, its kernels maybe still queued
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    def consume(k, out):
        try:
            out[k] = np.asarray(total(made[k]))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=produce, args=(k,)) for k in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sums = [None] * 6
    ts = [threading.Thread(target=consume, args=(k, sums)) for k in range(6)]  # other threads: other streams
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    for k in range(6):
        y = xs[k].astype(np.float64)
        for _ in range(4):
            y = np.tanh(y @ w) * 2 + 1
        # float32 work summed over 512 rows: its error scales with the sum of
        # magnitudes, not with a column sum that cancels to near 0
        np.testing.assert_allclose(sums[k], y.sum(axis=0), rtol=1e-4, atol=1e-5 * float(np.abs(y).sum(axis=0).max()))


def test_scan_runs_on_the_device(rng):
    """scan's loop program runs on the default device (a usable GPU, or
    XCS_DEVICE): its results are device Arrays equal to a numpy loop, and
    the hoisted x @ U part (one batched GEMM) runs there too and stays
    there (no copy to the host), eagerly or as an op of a jitted program."""
    H, X, T = 16, 6, 40
    W = (rng.standard_normal((H, H)) * 0.3).astype(np.float32)
    U = (rng.standard_normal((X, H)) * 0.3).astype(np.float32)
    xs = rng.standard_normal((T, X)).astype(np.float32)
    h0 = rng.standard_normal(H).astype(np.float32)

    def cell(h, x):
        h = np.tanh(h @ W + x @ U)
        return h, (h * h).sum()

    xs_dev = xcs.device_put(xs, "cuda")
    for reverse in (False, True):
        c, ys = xcs.scan(cell, h0, xs, reverse=reverse)
        assert c.device.startswith("cuda") and ys.device.startswith("cuda")
        # xs there: nothing comes back to the host, the hoisted x @ U included
        f = xcs.jit(lambda xs: xcs.scan(cell, h0, xs, reverse=reverse))
        f(xs_dev)
        down = xcs.memory_stats()["downloads"]
        cj, ysj = f(xs_dev)
        xcs.scan(cell, h0, xs_dev, reverse=reverse)
        assert xcs.memory_stats()["downloads"] == down
        assert rel_err(cj, np.asarray(c)) < 1e-5
        h, want = h0.astype(np.float64), []
        for x in (xs[::-1] if reverse else xs).astype(np.float64):
            h = np.tanh(h @ W + x @ U)
            want.append((h * h).sum())
        np.testing.assert_allclose(np.asarray(c), h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(ys), np.array(want[::-1] if reverse else want), rtol=1e-4, atol=1e-4)


def test_one_step_scan_on_the_device():
    """A loop of one step over device xs: its hoisted part's input is a
    one-element device constant, which the optimiser must not read on the
    host (it did, and crashed)."""
    xs = xcs.device_put(np.array([3.0], np.float32), "cuda")
    c, ys = xcs.scan(lambda c, x: (c + x * 2, c), np.float32(1.0), xs)
    assert float(np.asarray(c)) == 7.0 and np.asarray(ys).tolist() == [1.0]
    g = xcs.jit(xcs.grad(lambda c, xs: xcs.scan(lambda c, x: (c * x + x * 2, c), c, xs)[0]))(np.float32(1.0), xs)
    assert float(np.asarray(g)) == 3.0


def _loop(cell, c0, xs, reverse):
    """scan's reference: a Python loop over numpy values."""
    c, ys = c0, []
    for x in (xs[::-1] if reverse else xs):
        c, y = cell(c, x)
        ys.append(y)
    return c, np.stack(ys[::-1] if reverse else ys)


@pytest.mark.parametrize("reverse", [False, True])
def test_elementwise_scan_is_one_kernel(rng, reverse):
    """A scan whose step is elementwise (a moving average, a recurrence with
    a diagonal transition, an integer counter, a float16 carry rounded every
    step) runs as one kernel for the whole loop, its carries in registers
    (memory_stats()["scan_loops"] counts them): equal to a numpy loop.  A
    step with a matmul runs step by step instead, and is right too."""
    T, B, D = 37, 3, 130
    xs = rng.standard_normal((T, B, D)).astype(np.float32)
    c0 = rng.standard_normal((B, D)).astype(np.float32)
    decay = rng.uniform(0.5, 0.99, D).astype(np.float32)

    def ema(c, x):  # a constant vector broadcast over the rows; the y is the carry
        c = c * decay + (1 - decay) * x
        return c, c

    def two(carry, x):  # two carries; a y that is neither
        a, b = carry
        a2 = a * 0.5 + b
        b2 = np.where(x > 0, b + x, b * 0.25)
        return (a2, b2), a2 - b2

    before = xcs.memory_stats()["scan_loops"]
    c, ys = xcs.scan(ema, c0, xs, reverse=reverse)
    want_c, want_ys = _loop(lambda c, x: (c * decay.astype(np.float64) + (1 - decay.astype(np.float64)) * x,) * 2,
                            c0.astype(np.float64), xs.astype(np.float64), reverse)
    np.testing.assert_allclose(np.asarray(c), want_c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ys), want_ys, rtol=1e-5, atol=1e-5)
    (a, b), ys = xcs.scan(two, (c0, c0 * 2), xs, reverse=reverse)
    (wa, wb), wys = _loop(two, (c0.astype(np.float64), c0.astype(np.float64) * 2), xs.astype(np.float64), reverse)
    np.testing.assert_allclose(np.asarray(a), wa, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(b), wb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ys), wys, rtol=1e-5, atol=1e-5)

    n = rng.integers(-1000, 1000, D).astype(np.int32)
    ks = rng.integers(1, 9, (T, D)).astype(np.int32)
    count = lambda c, k: (c + 7 // k - k % 3, c % 5)  # noqa: E731 (exact in int32)
    c, ys = xcs.scan(count, n, ks, reverse=reverse)
    wc, wys = _loop(count, n, ks, reverse)
    np.testing.assert_array_equal(np.asarray(c), wc)
    np.testing.assert_array_equal(np.asarray(ys), wys)

    h0 = rng.standard_normal(D).astype(np.float16)
    hx = rng.standard_normal((T, D)).astype(np.float16)
    # rounded every step; the Python 0.99 meets a float16 carry, so it is float16(0.99) (NEP 50)
    half = lambda c, x: ((c * np.float32(np.float16(0.99)) + x).astype(np.float16),) * 2  # noqa: E731
    c, ys = xcs.scan(lambda c, x: (c * 0.99 + x,) * 2, h0, hx, reverse=reverse)
    wc, wys = _loop(lambda c, x: half(c.astype(np.float32), x.astype(np.float32)), h0, hx, reverse)
    # c * 0.99 + x rounded to float16 each step; a GPU's FMA rounds the float32 sum once (numpy: twice),
    # so a step may land an ulp apart (H200, 2026-11-27: 1 of 4810): two float16 ulps (2^-24: subnormal)
    for g, w in ((c, wc), (ys, wys)):
        np.testing.assert_allclose(np.asarray(g).astype(np.float32), w.astype(np.float32), rtol=2**-9, atol=2**-23)
    assert xcs.memory_stats()["scan_loops"] == before + 4

    W = (rng.standard_normal((D, D)) * 0.05).astype(np.float32)
    c, ys = xcs.scan(lambda h, x: (np.tanh(h @ W + x),) * 2, c0, xs, reverse=reverse)
    wc, wys = _loop(lambda h, x: (np.tanh(h @ W.astype(np.float64) + x),) * 2, c0.astype(np.float64),
                    xs.astype(np.float64), reverse)
    np.testing.assert_allclose(np.asarray(c), wc, rtol=1e-4, atol=1e-4)
    assert xcs.memory_stats()["scan_loops"] == before + 4  # a matmul: step by step


def test_jitted_scan_op_runs_on_the_device(rng):
    """Inside jit and grad a scan is one op (test_scan_op.py) run as the
    loop program on the program's device: an elementwise step is the
    one-kernel loop there, results stay device Arrays, and the gradient's
    reverse loop (a matmul step: step by step) is right too."""
    T, D = 29, 70
    xs = rng.standard_normal((T, D)).astype(np.float32)
    c0 = rng.standard_normal(D).astype(np.float32)
    decay = rng.uniform(0.5, 0.99, D).astype(np.float32)
    before = xcs.memory_stats()["scan_loops"]
    f = xcs.jit(lambda c, xs, d: xcs.scan(lambda c, x: (c * d + x, c * 2), c, xs))
    c, ys = f(c0, xs, decay)  # d: a value of the trace the body reads (an invariant)
    assert c.device.startswith("cuda") and ys.device.startswith("cuda")
    assert xcs.memory_stats()["scan_loops"] == before + 1
    wc, wys = _loop(lambda c, x: (c * decay.astype(np.float64) + x, c * 2), c0.astype(np.float64),
                    xs.astype(np.float64), False)
    np.testing.assert_allclose(np.asarray(c), wc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ys), wys, rtol=1e-5, atol=1e-5)

    def ema_loss(c, d, xs):
        return xcs.scan(lambda c, x: (c * d + x, c * c), c, xs)[1].sum()

    before = xcs.memory_stats()["scan_loops"]
    gc, gd = xcs.jit(xcs.grad(ema_loss, argnums=(0, 1)))(c0, decay, xs)
    # both loops elementwise: the forward one (its residuals are its carries
    # leaving each step) and the reverse one (the decay's sum rides along)
    assert xcs.memory_stats()["scan_loops"] == before + 2
    d64, cs = decay.astype(np.float64), [c0.astype(np.float64)]
    for x in xs.astype(np.float64):
        cs.append(cs[-1] * d64 + x)
    dc, dd = np.zeros(D), np.zeros(D)
    for t in range(T - 1, -1, -1):  # y_t = c_t^2 (the carry entering step t)
        dc = dc + 2 * cs[t]  # from y_t
        if t > 0:
            dd += dc * cs[t - 1]
            dc = dc * d64
    np.testing.assert_allclose(np.asarray(gc), dc, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(gd), dd, rtol=1e-4, atol=1e-4)

    W = (rng.standard_normal((D, D)) * 0.05).astype(np.float32)

    def loss(W, c, xs):
        return xcs.scan(lambda h, x: (np.tanh(h @ W + x),) * 2, c, xs)[1].sum()

    g = xcs.jit(xcs.grad(loss, argnums=(0, 1)))(W, c0, xs)
    assert g[0].device.startswith("cuda")
    Wd = W.astype(np.float64)
    hs = [c0.astype(np.float64)]
    for x in xs.astype(np.float64):
        hs.append(np.tanh(hs[-1] @ Wd + x))
    dW, dh = np.zeros_like(Wd), np.zeros(D)
    for t in range(T - 1, -1, -1):  # d/dh_{t+1} of sum(h_1..h_T) is 1 plus what flows back
        dpre = (dh + 1) * (1 - hs[t + 1] ** 2)
        dW += np.outer(hs[t], dpre)
        dh = dpre @ Wd.T
    np.testing.assert_allclose(np.asarray(g[0]), dW, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(np.asarray(g[1]), dh, rtol=2e-4, atol=2e-4)


def test_scan_kernel_fault_names_the_step(rng, monkeypatch):
    """An integer division by zero inside the one-kernel loop is reported as
    the step loop reports it: XCSError naming the step."""
    ks = rng.integers(1, 9, (20, 64)).astype(np.int32)
    ks[13, 5] = 0
    with pytest.raises(xcs.XCSError, match="scan step 13"):
        xcs.scan(lambda c, k: (c + 7 // k, c), np.zeros(64, np.int32), ks)
    monkeypatch.setenv("XCS_SCAN_KERNEL", "0")  # the steps alone: the same error
    with pytest.raises(xcs.XCSError, match="scan step 13"):
        xcs.scan(lambda c, k: (c + 7 // k, c), np.zeros(64, np.int32), ks)


def test_gathers_and_their_gradients_stay_on_the_device(rng):
    """take (an embedding lookup, fancy indexing with negative indices),
    its gradient (scatter_add), concatenate and argmax/argmin run as device
    kernels: a training step's call and an evaluation's copy nothing back to
    the host, and equal the CPU's / numpy's; an index out of range found on the device is an XCSIndexError
    naming the axis and its size."""
    V, D, B = 50, 8, 64
    table = (rng.standard_normal((V, D)) * 0.5).astype(np.float32)
    W = (rng.standard_normal((2 * D, 3)) * 0.5).astype(np.float32)
    tok = rng.integers(-V, V, B)

    def loss(table, W, tok):
        e = table[tok]  # a gather with negative indices
        h = np.concatenate([e, np.tanh(e)], axis=1)
        return ((h @ W) ** 2).mean()

    step = xcs.jit(xcs.value_and_grad(loss, argnums=(0, 1)), config=ON_GPU)
    ref = xcs.jit(xcs.value_and_grad(loss, argnums=(0, 1)), config=ON_CPU)
    step(table, W, tok)  # compiled, and its kernels built
    before = xcs.memory_stats()["downloads"]
    v, (gt, gw) = step(table, W, tok)
    assert xcs.memory_stats()["downloads"] == before
    assert v.device.startswith("cuda") and gt.device.startswith("cuda")
    rv, (rt, rw) = ref(table, W, tok)
    assert rel_err(v, rv) < 1e-6 and rel_err(gt, rt) < 1e-5 and rel_err(gw, rw) < 1e-5
    table[3, 5] = np.nan  # argmax/argmin: numpy's first NaN, first extreme
    pick = xcs.jit(lambda t, i: (np.argmax(t[i], axis=1), np.argmin(t.T, axis=1)), config=ON_GPU)
    pick(table, tok)
    before = xcs.memory_stats()["downloads"]
    am, an = pick(table, tok)
    assert xcs.memory_stats()["downloads"] == before and am.device.startswith("cuda")
    assert np.array_equal(np.asarray(am), np.argmax(table[tok], axis=1))
    assert np.array_equal(np.asarray(an), np.argmin(table.T, axis=1))
    with pytest.raises(xcs.XCSIndexError, match="out of bounds for axis 0 with size 50"):
        np.asarray(step(table, W, np.array([0, 3, V])))


def test_closure_weights_go_up_once_unless_they_can_change(rng):
    """A jitted program's constants that cannot change (an Array xcs
    computed, or the copy a trace takes of a transposed numpy array) are
    copied to the device once and kept with the compiled program; a numpy
    array read in place (also through xcs.asarray, which wraps it) is sent
    again on every call, so a change to it shows, as on the CPU
    (test_jit_fusion: closure arrays are captured by reference)."""
    W = rng.standard_normal((64, 64)).astype(np.float32)
    kept, live = xcs.asarray(W) * 0.5, W.copy()
    x = rng.standard_normal(64).astype(np.float32)
    f = xcs.jit(lambda v: np.tanh(v @ kept) + v @ live.T, config=ON_GPU)
    f(x)
    before = xcs.memory_stats()["uploads"]
    y = f(x)
    assert xcs.memory_stats()["uploads"] - before == 1  # x only: kept, and live.T's trace-time copy, stay
    want = np.tanh(x.astype(np.float64) @ (W * 0.5)) + x.astype(np.float64) @ W.T
    assert rel_err(y, want) < 1e-5
    g = xcs.jit(lambda v: v @ live, config=ON_GPU)
    g(x)
    before = xcs.memory_stats()["uploads"]
    live *= 2  # read in place: sent again, and the change shows
    assert rel_err(g(x), x.astype(np.float64) @ (2 * W)) < 1e-5
    assert xcs.memory_stats()["uploads"] - before == 2


def test_kept_weights_lent_through_dlpack_are_sent_again(rng):
    """An Array lent out through DLPack without a copy may be written by its
    consumer (a legacy capsule has no read-only flag): a compiled program
    stops using its kept device copy and sends it on every call, so the
    change shows."""
    W = rng.standard_normal((32, 32)).astype(np.float32)
    kept = xcs.asarray(W) * 1.0  # an Array xcs made: kept on the device
    x = rng.standard_normal(32).astype(np.float32)
    f = xcs.jit(lambda v: v @ kept, config=ON_GPU)
    f(x)
    before = xcs.memory_stats()["uploads"]
    f(x)
    assert xcs.memory_stats()["uploads"] - before == 1  # x only

    class Legacy:  # a consumer that takes the legacy capsule (no read-only flag)
        def __dlpack__(self, stream=None, max_version=None, **kw):
            return kept.__dlpack__()

        def __dlpack_device__(self):
            return kept.__dlpack_device__()

    import ctypes

    view = np.from_dlpack(Legacy())  # numpy itself reads it read-only; torch would not
    alias = np.ctypeslib.as_array(ctypes.cast(view.ctypes.data, ctypes.POINTER(ctypes.c_float)), shape=view.shape)
    alias *= 3  # the consumer writes xcs's memory
    before = xcs.memory_stats()["uploads"]
    assert rel_err(f(x), x.astype(np.float64) @ (3 * W.astype(np.float64))) < 1e-5
    assert xcs.memory_stats()["uploads"] - before == 2  # x, and the lent weight again


def test_device_put_of_a_pytree():
    """A model's parameters (a pytree) go to the device leaf by leaf, as JAX's
    device_put; Python numbers, strings and None stay as they are."""
    p = {"w": rng().standard_normal((3, 2)), "layers": [np.zeros(2), 3.0, "relu"], "extra": None}
    q = xcs.device_put(p, "cuda")
    assert q["w"].device == "cuda:0" and q["layers"][0].device == "cuda:0"
    assert q["layers"][1:] == [3.0, "relu"] and q["extra"] is None
    np.testing.assert_array_equal(np.asarray(q["w"]), p["w"])
    assert xcs.device_put(q, "cpu")["w"].device == "cpu"


def test_linalg_gradients_stay_on_the_device():
    """jit(grad) through solve, inv, slogdet, cholesky, eigh, svd and qr of
    a batch of device matrices: the backward's ops run on the device too (no
    copy to the host) and equal the CPU's gradients."""
    r = rng()
    a = r.standard_normal((8, 5, 5)) + 5 * np.eye(5)
    d = xcs.device_put(a, "cuda")
    sym = lambda x: x + np.swapaxes(x, -1, -2)  # noqa: E731
    fs = [lambda x: np.linalg.slogdet(x)[1].sum(),
          lambda x: (np.linalg.solve(x, np.ones((5, 2))) ** 2).sum(),
          lambda x: np.linalg.inv(x).sum(),
          lambda x: np.linalg.cholesky(x @ np.swapaxes(x, -1, -2) + np.eye(5)).sum(),
          lambda x: (np.linalg.eigh(sym(x))[1][..., 0] ** 2 * np.arange(5)).sum() + np.linalg.eigvalsh(sym(x)).sum(),
          lambda x: np.linalg.svd(x, compute_uv=False).sum(),
          lambda x: np.linalg.qr(x)[1].sum()]
    for f in fs:
        g = xcs.jit(xcs.grad(f))
        want = np.asarray(xcs.jit(xcs.grad(f), config=ON_CPU)(a))
        xcs.block_until_ready(g(d))
        before = xcs.memory_stats()["downloads"]
        got = g(d)
        xcs.block_until_ready(got)
        assert got.device == "cuda:0" and xcs.memory_stats()["downloads"] == before
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-10)


def _cusolver_loads():
    """Whether the backend's cuSOLVER (src/cuda/solver.c's names) can be opened here."""
    import ctypes
    import os
    names = [os.environ.get("XCS_CUSOLVER_LIBRARY")] if os.environ.get("XCS_CUSOLVER_LIBRARY") else [
        "libcusolver.so.12", "libcusolver.so.11", "libcusolver.so", "/usr/local/cuda/lib64/libcusolver.so.12",
        "/usr/local/cuda/lib64/libcusolver.so.11"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


@pytest.mark.parametrize("solver", ["1", "0"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_big_matrices_solve_slogdet_cholesky(solver, dtype, monkeypatch):
    """Matrices of 256 rows and more (src/cuda/codegen.h's
    XCS_CUDA_SOLVER_MIN): solve, slogdet and cholesky through cuSOLVER
    between two kernels (XCS_CUDA_SOLVER=1, the default), or the
    block-per-matrix kernel and the host as before it (=0); either way the
    results are numpy's to the dtype's rounding, stay on the device, and a
    singular or not positive definite matrix is numpy's LinAlgError."""
    monkeypatch.setenv("XCS_CUDA_SOLVER", solver)
    r = rng()
    tol = dict(rtol=2e-3, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)
    for shape in ((256, 256), (2, 300, 300)):
        n = shape[-1]
        a = (r.standard_normal(shape) + n ** 0.5 * np.eye(n)).astype(dtype)
        spd = (a @ np.swapaxes(a, -1, -2) / n + np.eye(n)).astype(dtype)
        b = r.standard_normal(shape[:-1] + (3,)).astype(dtype)
        d, ds, db = (xcs.device_put(v, "cuda") for v in (a, spd, b))
        a64, spd64, b64 = (v.astype(np.float64) for v in (a, spd, b))
        factored = xcs.memory_stats()["solver_factorizations"]
        sign, logdet = np.linalg.slogdet(d)
        if not MOCK and _cusolver_loads():  # the mock has no cuSOLVER: it counts nothing
            xcs.block_until_ready(logdet)
            assert xcs.memory_stats()["solver_factorizations"] - factored == (a.size // (n * n) if solver == "1" else 0)
        got = [(np.linalg.solve(d, db), np.linalg.solve(a64, b64)),
               (np.linalg.solve(d, db[..., 0:1]), np.linalg.solve(a64, b64[..., 0:1])),
               (sign, np.linalg.slogdet(a64)[0]), (logdet, np.linalg.slogdet(a64)[1]),
               (np.linalg.cholesky(ds), np.linalg.cholesky(spd64)),
               (np.linalg.inv(d), np.linalg.inv(a64))]
        assert all(g.device == "cuda:0" and g.dtype == dtype for g, _ in got)
        for g, want in got:
            np.testing.assert_allclose(np.asarray(g), want, **tol)
        with pytest.raises(xcs.XCSValueError, match="Singular matrix"):
            np.asarray(np.linalg.solve(d * xcs.device_put(np.arange(n) != 7, "cuda").astype(dtype), db))
        with pytest.raises(xcs.XCSValueError, match="not positive definite"):
            np.asarray(np.linalg.cholesky(ds - 1e3 * np.eye(n, dtype=dtype) * (np.arange(n) == n - 1)))
        s0, l0 = np.linalg.slogdet(d * xcs.device_put(np.arange(n) != 3, "cuda").astype(dtype))
        assert np.asarray(s0).ravel().tolist() == [0] * (a.size // (n * n))
        assert np.asarray(l0).ravel().tolist() == [-np.inf] * (a.size // (n * n))
