"""xcs-bench and its loopback model server: the server answers, fails and
hangs as configured, the client turns every failure into an XCSError within
its timeout (never a hang), and `xcs-bench --quick --json` runs and writes
JSON that validates against the documented schema (ember/xcs/bench/schema.json)."""
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import ember.xcs as xcs
from ember.xcs.bench import ModelClient, ModelError, ModelServer, answer_text

SCHEMA = Path(xcs.__file__).parent / "bench" / "schema.json"


@pytest.fixture(scope="module")
def server():
    with ModelServer(latency_ms=30, jitter_ms=5, seed=3) as s:
        yield s


def test_answers_are_deterministic_and_openai_shaped(server):
    c = ModelClient(server.url, model="m1")
    a = c.complete("Is 9 prime? choices: no,yes")
    assert a in ("no", "yes") and a == c.complete("Is 9 prime? choices: no,yes")
    assert a == answer_text("m1", "Is 9 prime? choices: no,yes", seed=3)
    req = urllib.request.Request(server.url + "/v1/completions", method="POST",
                                 data=json.dumps({"model": "m2", "prompt": "hi"}).encode(),
                                 headers={"Content-Type": "application/json"})
    body = json.loads(urllib.request.urlopen(req, timeout=5).read())
    assert body["object"] == "text_completion" and body["model"] == "m2"
    assert body["choices"][0]["text"] == answer_text("m2", "hi", seed=3) and body["usage"]["total_tokens"] > 0
    assert json.loads(urllib.request.urlopen(server.url + "/health", timeout=5).read())["ok"]
    # accuracy: over many prompts the first choice wins about 70% of the time
    wins = sum(answer_text("m", f"q{i} choices: a,b,c") == "a" for i in range(2000))
    assert 0.6 < wins / 2000 < 0.8


def test_latency_and_concurrency(server):
    c = ModelClient(server.url)
    t0 = time.perf_counter()
    c.complete("one")
    one = time.perf_counter() - t0
    assert 0.025 <= one < 0.5
    out, threads = [], [threading.Thread(target=lambda i=i: out.append(c.complete(f"p{i}"))) for i in range(16)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 16 and time.perf_counter() - t0 < 0.4  # 16 x 30 ms overlap (coarse)

    async def gather():
        return await asyncio.gather(*[c.acomplete(f"p{i}") for i in range(16)])
    t0 = time.perf_counter()
    assert sorted(asyncio.run(gather())) == sorted(out)
    assert time.perf_counter() - t0 < 0.4


def test_errors_timeouts_and_dead_servers():
    with ModelServer(latency_ms=0, error_rate=1.0) as s:
        c = ModelClient(s.url)
        with pytest.raises(ModelError, match="HTTP 500") as e:
            c.complete("anything")
        assert e.value.status == 500 and isinstance(e.value, xcs.XCSError)
        with pytest.raises(ModelError, match="HTTP 500"):
            asyncio.run(c.acomplete("anything"))
        bad = urllib.request.Request(s.url + "/v1/completions", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as h:
            urllib.request.urlopen(bad, timeout=5)
        assert h.value.code == 400
    with ModelServer(latency_ms=0, hang_s=5) as s:
        c = ModelClient(s.url, timeout=0.3)
        assert c.complete("fine").startswith("xcs-sim says")
        t0 = time.perf_counter()
        with pytest.raises(ModelError, match="no answer within 0.3 s"):
            c.complete("wait [[hang]]")
        with pytest.raises(ModelError, match="no answer within"):
            asyncio.run(c.acomplete("wait [[hang]]"))
        assert time.perf_counter() - t0 < 2.0
        with pytest.raises(ModelError, match="simulated failure"):
            c.complete("x [[error]]")
        url = s.url
    dead = ModelClient(url, timeout=2)  # the server is gone
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="cannot reach"):
        dead.complete("hello")
    with pytest.raises(ModelError, match="cannot reach"):
        asyncio.run(dead.acomplete("hello"))
    assert time.perf_counter() - t0 < 3.0
    for bad_args in [dict(latency_ms=-1), dict(error_rate=2), dict(latency_ms=1, jitter_ms=5)]:
        with pytest.raises(ValueError):
            ModelServer(**bad_args)
    with pytest.raises(ValueError):
        ModelClient("ftp://x")
    with pytest.raises(ValueError):
        ModelClient("http://127.0.0.1:1", timeout=0)


def test_server_in_a_child_process():
    with ModelServer(latency_ms=10, process=True, seed=5) as s:
        assert ModelClient(s.url, model="z").complete("q") == answer_text("z", "q", seed=5)
        proc = s._proc
    assert proc.poll() is not None  # stopped


def _bench(*args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ember.xcs.bench", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_bench_quick_json_validates_against_the_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    out = tmp_path / "bench.json"
    # under the AddressSanitizer run (libasan preloaded into an uninstrumented
    # CPython) matplotlib's C++ exceptions trip ASan's __cxa_throw interceptor:
    # the charts are checked in the ordinary run only
    asan = "libasan" in os.environ.get("LD_PRELOAD", "")
    plots = [] if asan else ["--plot", str(tmp_path / "plots")]
    r = _bench("--quick", "--repeat", "2", "--json", str(out), *plots)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)
    figures = {(x["workload"], x["figure"]) for x in doc["results"]}
    assert {("tensor", "ew_chain"), ("tensor", "matmul"), ("tensor", "mlp_step"), ("tensor", "per_example_grads"),
            ("tensor", "scan_rnn"), ("orchestration", "fan_out"), ("orchestration", "chain"),
            ("orchestration", "diamond"), ("orchestration", "vmap_prompts"), ("mixed", "retrieve_rerank")} <= figures
    assert all(x["check"]["ok"] for x in doc["results"])
    assert all("numpy" in x["peers"] for x in doc["results"] if x["workload"] == "tensor" and x["unit"] != "ms")
    assert all({"ThreadPoolExecutor", "sequential"} <= set(x["peers"]) for x in doc["results"]
               if x["figure"] in ("fan_out", "diamond", "vmap_prompts", "retrieve_rerank"))
    assert "workload/figure" in r.stdout and "xcs/limit" in r.stdout and "memory bandwidth" in r.stdout
    if not asan:
        assert (tmp_path / "plots" / "speedup.png").stat().st_size > 1000
        assert (tmp_path / "plots" / "throughput_vs_size.png").stat().st_size > 1000
    assert len(doc["sweeps"]["ew_chain_gbs_vs_n"]) >= 4
    # the schema can fail: a broken document does not validate
    doc["results"][0]["unit"] = "furlongs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()), cls=jsonschema.Draft202012Validator)


def test_bench_arguments():
    r = _bench("--help", timeout=60)
    assert r.returncode == 0 and "--workloads" in r.stdout and "model server" in r.stdout
    r = _bench("--workloads", "bogus", timeout=60)
    assert r.returncode == 2 and "unknown workload" in r.stderr
    r = _bench("--quick", "--repeat", "0", timeout=60)
    assert r.returncode == 2
    if not xcs.devices()[1]["available"]:
        r = _bench("--quick", "--device", "cuda", timeout=60)
        assert r.returncode == 2 and "no usable CUDA device" in r.stderr


def _quick_rows(script, tmp_path):
    """The JSON rows benchmarks/<script> --quick --repeats 1 writes."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, str(root / "benchmarks" / script), "--quick", "--repeats", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(out.read_text())["rows"]


def test_bench_half_quick_runs(tmp_path):
    """benchmarks/bench_half.py --quick: every figure checks its result
    against float64 before timing it, so a wrong 16-bit path fails here."""
    rows = _quick_rows("bench_half.py", tmp_path)
    figures = {(row["figure"].split()[0], row["dtype"], row["impl"]) for row in rows}
    for dt in ("float16", "bfloat16"):
        assert ("convert", dt, "xcs") in figures and ("chain", dt, "xcs jit") in figures
        assert ("matmul", dt, "xcs") in figures
    assert all(row["ms"] > 0 and row["rate"] > 0 for row in rows)


def test_bench_linalg_quick_runs(tmp_path):
    """benchmarks/bench_linalg.py --quick: each xcs result is checked against
    numpy's before it is timed (a wrong decomposition fails the script)."""
    rows = _quick_rows("bench_linalg.py", tmp_path)
    assert {row["figure"] for row in rows} == {"solve", "cholesky", "eigh", "svd", "grad slogdet"}
    assert all(row["xcs_ms"] > 0 and row["numpy_ms"] > 0 for row in rows)


def test_bench_sort_quick_runs(tmp_path):
    """benchmarks/bench_sort.py --quick: every implementation's result is
    checked against numpy.sort (median: numpy.median) before it is timed."""
    rows = _quick_rows("bench_sort.py", tmp_path)
    assert {(row["figure"], row["impl"]) for row in rows} == {
        ("sort", "xcs sort"), ("sort", "xcs argsort + take"), ("sort", "numpy"), ("median", "xcs"), ("median", "numpy")}
    assert all(row["ms"] > 0 for row in rows)


def _gpu_script(name):
    """The JSON figures benchmarks/<name> prints at tiny sizes (XCS_BENCH_SMALL)."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XCS_LINALG_")}  # a session's own sizes
    env["XCS_BENCH_SMALL"] = "1"
    r = subprocess.run([sys.executable, str(root / "benchmarks" / name)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_gpu_pmap_script_runs():
    """benchmarks/gpu_pmap.py at tiny sizes: with two GPUs (in CI the mock's,
    CTest python_mock_cuda) the split step equals one GPU's and both
    combining paths are timed; with fewer it says why and stops."""
    figs = _gpu_script("gpu_pmap.py")
    if len(xcs.devices()[1].get("gpus", [])) < 2:
        assert len(figs) == 1 and "skipped" in figs[0]
        return
    assert len(figs) == 2
    assert figs[0]["collectives"] == "device" or figs[0]["collectives"].startswith("host: no NCCL"), figs[0]
    assert figs[1]["collectives"] == "host: NCCL is turned off (XCS_NCCL=0)"
    assert all(f["max_abs_diff"] < 1e-5 and f["split_ms"] > 0 and f["one_gpu_ms"] > 0 for f in figs)


def test_gpu_scan_script_runs():
    """benchmarks/gpu_scan.py at tiny sizes: on a GPU (in CI the mock's,
    CTest python_mock_cuda) each loop runs as one kernel and equals the
    step-by-step loop, and an RNN's jit(grad) through the scan op equals the
    CPU's; without one it says why and stops."""
    figs = _gpu_script("gpu_scan.py")
    if not xcs.devices()[1]["available"]:
        assert len(figs) == 1 and "skipped" in figs[0]
        return
    assert len(figs) == 3
    assert all(f["one_kernel"] and f["max_abs_diff"] < 1e-5 and f["kernel_ms"] > 0 and f["steps_ms"] > 0
               for f in figs[:2])
    assert figs[2]["name"] == "scan_rnn_grad" and figs[2]["xcs_ms"] > 0 and figs[2]["rel_err_vs_cpu"] < 1e-4


def test_gpu_index_script_runs():
    """benchmarks/gpu_index.py at tiny sizes: on a GPU (in CI the mock's,
    CTest python_mock_cuda) the embedding step, argmax and argsort copy
    nothing to the host and equal the CPU's (numpy's); without one it says why and stops."""
    figs = _gpu_script("gpu_index.py")
    if not xcs.devices()[1]["available"]:
        assert len(figs) == 1 and "skipped" in figs[0]
        return
    step, amax, *sorts = figs
    assert step["downloads_per_call"] == 0 and step["max_abs_diff"] < 1e-5 and step["value_rel_err"] < 1e-5
    assert step["grad_repeatable"]
    assert amax["downloads_per_call"] == 0 and amax["equal"] and step["xcs_ms"] > 0 and amax["xcs_ms"] > 0
    assert [f["name"] for f in sorts] == ["argsort_rows", "argsort_long_row"] and sorts[1]["merge_passes"] == 2
    assert all(f["downloads_per_call"] == 0 and f["equal"] and f["xcs_ms"] > 0 for f in sorts)


def test_gpu_linalg_script_runs():
    """benchmarks/gpu_linalg.py at tiny sizes: on a GPU (in CI the mock's,
    CTest python_mock_cuda) solve, cholesky, slogdet, eigvalsh and svdvals copy nothing to the
    host and agree with numpy to the dtype's precision; without one it says
    why and stops."""
    figs = _gpu_script("gpu_linalg.py")
    if not xcs.devices()[1]["available"]:
        assert len(figs) == 1 and "skipped" in figs[0]
        return
    assert len(figs) == 2 * 2 * 5  # sizes x dtypes x ops
    assert {f["name"] for f in figs} == {"solve", "cholesky", "slogdet", "eigvalsh", "svdvals"}
    assert all(f["downloads_per_call"] == 0 and f["xcs_ms"] > 0 and f["xcs_cpu_ms"] > 0 for f in figs)
    assert all(f["max_rel_diff"] < (1e-4 if f["dtype"] == "float32" else 1e-12) for f in figs), figs
