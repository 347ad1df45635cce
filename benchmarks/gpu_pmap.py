"""pmap over several GPUs: a data-parallel training step (per-shard grad,
pmean of the gradients in the body, the update) split over every GPU,
against the same step on one GPU, with the staged collectives combined device
to device (NCCL) and, in a child process with XCS_NCCL=0, on the host.  Each
figure is the median of 10 timed calls after warm-up (each call returns host
arrays, so it waits for every device).  With fewer than two GPUs it prints
why and exits 0.  Prints one JSON object per figure.

    PYTHONPATH=build/python python benchmarks/gpu_pmap.py
(XCS_BENCH_SMALL=1: tiny sizes, to check the script, e.g. on the mock's two
GPUs: XCS_CUDA_MODULE=build/tests/c/libxcs_mockcuda.so XCS_MOCK_DEVICES=2.)"""
import json
import os
import subprocess
import sys

import numpy as np

import ember.xcs as xcs
from ember.xcs.bench.measure import timeit
from ember.xcs import grad, pmap, pmean

SMALL = os.environ.get("XCS_BENCH_SMALL") == "1"  # a quick check of this script (the mock's GPUs in CI's build)
REPS = 2 if SMALL else 10
# two 1024x4096 weights: 32 MB of float32 gradients a step
D, H, SHARDS, PER_SHARD = (16, 32, 4, 8) if SMALL else (1024, 4096, 8, 256)


def timed(fn, warm=2):
    """Median ms of REPS calls after `warm` untimed ones."""
    return timeit(fn, REPS, warmup=warm)["median_s"] * 1e3


def loss(params, x, y):
    w1, w2 = params
    return ((np.tanh(x @ w1) @ w2 - y) ** 2).mean()


def step(params, x, y):
    g = grad(loss)(params, x, y)
    return [p - 0.01 * pmean(gp, "i") for p, gp in zip(params, g)]


def main():
    gpus = [f"cuda:{g['ordinal']}" for g in xcs.devices()[1].get("gpus", [])]
    if len(gpus) < 2:
        print(json.dumps({"name": "pmap_split", "skipped": f"{len(gpus)} GPU(s): the split needs two or more"}))
        return
    r = np.random.default_rng(0)
    params = [(r.standard_normal((D, H)) / 32).astype(np.float32), (r.standard_normal((H, D)) / 64).astype(np.float32)]
    x = r.standard_normal((SHARDS, PER_SHARD, D)).astype(np.float32)
    y = r.standard_normal((SHARDS, PER_SHARD, D)).astype(np.float32)
    split = pmap(step, axis_name="i", in_axes=(None, 0, 0), devices=gpus)
    one = pmap(step, axis_name="i", in_axes=(None, 0, 0), devices=gpus[:1])
    got, want = split(params, x, y), one(params, x, y)
    err = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(got, want))
    st = split._xcs_pmap_state
    fig = {"name": "pmap_split", "gpus": len(gpus), "shape": f"{SHARDS} shards x {PER_SHARD} x {D}, MLP {D}-{H}-{D}",
           "collectives": st.get("collectives"), "stages": st.get("last_stages"),
           "split_ms": timed(lambda: [np.asarray(p) for p in split(params, x, y)]),
           "one_gpu_ms": timed(lambda: [np.asarray(p) for p in one(params, x, y)]), "max_abs_diff": err}
    fig["speedup"] = fig["one_gpu_ms"] / fig["split_ms"]
    print(json.dumps(fig), flush=True)
    if os.environ.get("XCS_NCCL") != "0":  # the same with the host combining, for the ratio
        subprocess.run([sys.executable, __file__], env={**os.environ, "XCS_NCCL": "0"}, check=False)


if __name__ == "__main__":
    main()
