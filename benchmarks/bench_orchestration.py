#!/usr/bin/env python3
"""Orchestration under @jit vs a plain ThreadPoolExecutor and asyncio.gather.

Figures (method: benchmarks/README.md):
  fan-out    N independent calls of a fake model that sleeps 50 ms (releasing
             the GIL), N = 1 ... 256, max_workers = N.  Reported as wall time /
             50 ms: 1.0 is perfect overlap.  Target for xcs: <= 1.1 for N <= 64.
  overhead   scheduling cost per call: N = 256 calls of a callable that
             returns at once, wall time / N.  Target: <= 15 us and below
             ThreadPoolExecutor in the same run.
  mixed vmap vmap over B = 64 examples of a function with tensor work
             before and after one 50 ms model call (a 2-layer MLP of width D
             over the example's vector, then a softmax of its output scaled
             by the call's result), D = 256 (0.5 MB of weights) and 2048
             (32 MB): xcs batching the examples' tensor parts vs the same
             with batching off (each example computes alone) vs a
             ThreadPoolExecutor running the function with numpy per example
             (OpenBLAS held to one thread: 64 threads of a multithreaded
             BLAS thrash).  No target: the figure is what batching saves.

The peers run the same workload: ThreadPoolExecutor(N).submit for each call
then .result(); asyncio.gather over loop.run_in_executor on a
ThreadPoolExecutor(N) (the model is blocking, as LLM clients mostly are).
Each time is the median of --repeats runs after a warm-up.

Usage: python benchmarks/bench_orchestration.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads (see mixed vmap above)

import asyncio  # noqa: E402
import concurrent.futures as cf
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_parser, machine_info, timeit, write_json  # noqa: E402

LATENCY = 0.05


def model(prompt):
    time.sleep(LATENCY)
    return prompt


def instant(prompt):
    return prompt


def median_time(fn, repeats):
    return timeit(fn, repeats, 1)  # one warm-up: threads started, caches filled


def runners(callee, n):
    """(name, zero-arg function running n calls of callee) per implementation."""
    from ember.api.decorators import mark_orchestration
    from ember.xcs import Config, jit

    marked = mark_orchestration(callee)

    @jit(config=Config(max_workers=n))
    def fan(qs):
        return [marked(q) for q in qs]

    qs = [f"q{i}" for i in range(n)]
    pool = cf.ThreadPoolExecutor(max_workers=n)

    def tpe():
        return [f.result() for f in [pool.submit(callee, q) for q in qs]]

    def aio():
        async def main():
            loop = asyncio.get_running_loop()
            return await asyncio.gather(*[loop.run_in_executor(pool, callee, q) for q in qs])
        return asyncio.run(main())

    return [("xcs jit", lambda: fan(qs)), ("ThreadPoolExecutor", tpe), ("asyncio.gather", aio)], pool


def mixed_vmap(repeats, B=64, T=1, D=256):
    """The mixed-vmap figure (see the module docstring)."""
    import numpy as np

    import ember.xcs.numpy as xnp
    from ember.api.decorators import mark_orchestration
    from ember.xcs import Config, _orchestration, vmap

    rng = np.random.default_rng(0)
    W1 = (rng.standard_normal((D, D)) / np.sqrt(D)).astype(np.float32)
    W2 = (rng.standard_normal((D, D)) / np.sqrt(D)).astype(np.float32)
    xs = rng.standard_normal((B, T, D)).astype(np.float32)

    @mark_orchestration
    def judge(h):
        time.sleep(LATENCY)
        return float(np.asarray(h).mean())

    def body(x, np_=xnp):
        h = np_.tanh(np_.tanh(x @ W1) @ W2)
        s = judge(h)
        z = h * s
        return np_.exp(z - z.max(axis=-1, keepdims=True)).sum(axis=-1)

    mapped = vmap(body, config=Config(max_workers=B))
    batched = median_time(lambda: mapped(xs), repeats)
    sizes = list(mapped._xcs_vmap_state.get("batches", []))
    window = _orchestration.BATCH_WINDOW_S, _orchestration.BATCH_MAX_WAIT_S
    _orchestration.BATCH_WINDOW_S = _orchestration.BATCH_MAX_WAIT_S = 0.0  # every example computes alone
    try:
        unbatched = median_time(lambda: mapped(xs), repeats)
    finally:
        _orchestration.BATCH_WINDOW_S, _orchestration.BATCH_MAX_WAIT_S = window
    pool = cf.ThreadPoolExecutor(max_workers=B)
    numpy_body = lambda x: body(x, np)  # noqa: E731
    tpe = median_time(lambda: list(pool.map(numpy_body, xs)), repeats)
    pool.shutdown()
    return {"B": B, "tokens": T, "width": D, "xcs_batched_ms": batched * 1e3, "xcs_unbatched_ms": unbatched * 1e3,
            "tpe_numpy_ms": tpe * 1e3, "batch_sizes": sizes}


def main(argv=None):
    ap = bench_parser(__doc__, repeats=5, quick_help="fewer sizes (a smoke run, not a measurement)")
    args = ap.parse_args(argv)
    print(f"# {machine_info()}", file=sys.stderr)
    sizes = [1, 8, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256]
    results = {"fan_out": [], "overhead": []}

    print(f"fan-out of N calls of a {LATENCY * 1e3:.0f} ms model, max_workers = N: wall time / {LATENCY * 1e3:.0f} ms")
    print(f"{'N':>5} {'xcs jit':>9} {'ThreadPoolExecutor':>19} {'asyncio.gather':>15}")
    for n in sizes:
        rs, pool = runners(model, n)
        row = {"n": n}
        for name, fn in rs:
            row[name] = median_time(fn, args.repeats) / LATENCY
        pool.shutdown()
        results["fan_out"].append(row)
        print(f"{n:5d} {row['xcs jit']:9.3f} {row['ThreadPoolExecutor']:19.3f} {row['asyncio.gather']:15.3f}")

    n = 256
    print(f"scheduling overhead per call: {n} calls of a callable that returns at once")
    rs, pool = runners(instant, n)
    row = {"n": n}
    for name, fn in rs:
        row[name] = median_time(fn, max(args.repeats, 20)) / n * 1e6
        print(f"  {name:20} {row[name]:8.2f} us")
    pool.shutdown()
    results["overhead"].append(row)

    results["mixed_vmap"] = []
    for width in (256, 2048):
        mixed = mixed_vmap(args.repeats, D=width)
        results["mixed_vmap"].append(mixed)
        print(f"mixed vmap, {mixed['B']} examples, MLP width {width} around a {LATENCY * 1e3:.0f} ms call: xcs "
              f"batched {mixed['xcs_batched_ms']:.1f} ms (largest program: {max(mixed['batch_sizes'] or [0])} "
              f"examples), unbatched {mixed['xcs_unbatched_ms']:.1f} ms, ThreadPoolExecutor + numpy "
              f"{mixed['tpe_numpy_ms']:.1f} ms")

    worst = max(r["xcs jit"] for r in results["fan_out"] if r["n"] <= 64)
    print(f"xcs fan-out, N <= 64: worst {worst:.3f}x the model latency (target <= 1.1); overhead "
          f"{row['xcs jit']:.2f} us/call vs ThreadPoolExecutor {row['ThreadPoolExecutor']:.2f} us (target <= 15 "
          f"and below it)")
    if args.json:
        write_json(args.json, dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                   machine=machine_info(), latency_s=LATENCY, results=results))


if __name__ == "__main__":
    main()
