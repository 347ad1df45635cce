#!/usr/bin/env python3
"""Orchestration under @jit vs a plain ThreadPoolExecutor and asyncio.gather.

Figures (method: benchmarks/README.md):
  fan-out    N independent calls of a fake model that sleeps 50 ms (releasing
             the GIL), N = 1 ... 256, max_workers = N.  Reported as wall time /
             50 ms: 1.0 is perfect overlap.  Target for xcs: <= 1.1 for N <= 64.
  overhead   scheduling cost per call: N = 256 calls of a callable that
             returns at once, wall time / N.  Target: <= 15 us and below
             ThreadPoolExecutor in the same run.

The peers run the same workload: ThreadPoolExecutor(N).submit for each call
then .result(); asyncio.gather over loop.run_in_executor on a
ThreadPoolExecutor(N) (the model is blocking, as LLM clients mostly are).
Each time is the median of --repeats runs after a warm-up.

Usage: python benchmarks/bench_orchestration.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import machine_info, timeit, write_json  # noqa: E402

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer sizes (a smoke run, not a measurement)")
    ap.add_argument("--json", help="write results as JSON to PATH ('-' for stdout)")
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

    worst = max(r["xcs jit"] for r in results["fan_out"] if r["n"] <= 64)
    print(f"xcs fan-out, N <= 64: worst {worst:.3f}x the model latency (target <= 1.1); overhead "
          f"{row['xcs jit']:.2f} us/call vs ThreadPoolExecutor {row['ThreadPoolExecutor']:.2f} us (target <= 15 "
          f"and below it)")
    if args.json:
        write_json(args.json, dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                   machine=machine_info(), latency_s=LATENCY, results=results))


if __name__ == "__main__":
    main()
