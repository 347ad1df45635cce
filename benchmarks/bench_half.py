#!/usr/bin/env python3
"""float16 / bfloat16 on the CPU: xcs vs numpy (float16), ml_dtypes
(bfloat16) and torch (both, when installed), against the machine's limit.

Figures (method: benchmarks/README.md):
  convert   float32 -> 16-bit and back, 2^24 elements: GB/s moved (6 bytes
            an element) and the ratio to the STREAM triad measured in the
            same run;
  chain     the 8-op chain of bench_eager (y = tanh(x * 0.5 + 0.25) *
            exp(-(x * x)) + x) on 2^24 16-bit values, jitted (one fused
            kernel, float32 in registers, one rounding) vs numpy's float16
            ufuncs (each op rounds) vs torch eager, and the same chain in
            float32 through xcs (the 16-bit one moves half the bytes);
  matmul    1024^2 @ 1024^2: xcs (16-bit operands widened, one float32 GEMM,
            rounded once) vs numpy float16 (no BLAS for it) vs torch, and
            xcs float32.
Each time is the best of --repeats runs after a warm-up; every result is
checked against float64 within the 16-bit tolerance before it is timed.

Usage: PYTHONPATH=build/python python benchmarks/bench_half.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_parser, machine_info, measure_stream, write_json  # noqa: E402


def best(fn, repeats):
    """The best of `repeats` timed runs after one warm-up (xcs-bench's timer)."""
    from ember.xcs.bench.measure import timeit
    return timeit(fn, repeats)["min_s"]


def chain(np_, x):
    return np_.tanh(x * 0.5 + 0.25) * np_.exp(-(x * x)) + x


def main(argv=None):
    ap = bench_parser(__doc__)
    args = ap.parse_args(argv)

    import ml_dtypes

    import ember.xcs as xcs
    try:
        import torch
    except ImportError:
        torch = None
    print(f"# {machine_info()}", file=sys.stderr)
    stream, _ = measure_stream() if not args.quick else (None, None)
    n = 1 << (14 if args.quick else 24)
    m = 128 if args.quick else 1024
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal(n).astype(np.float32)
    rows = []

    def row(figure, dtype, impl, seconds, unit, rate, note=""):
        rows.append({"figure": figure, "dtype": dtype, "impl": impl, "ms": seconds * 1e3, "unit": unit,
                     "rate": rate, "of_stream": rate / stream if stream and unit == "GB/s" else None, "note": note})

    halves = [("float16", np.float16, getattr(torch, "float16", None)),
              ("bfloat16", ml_dtypes.bfloat16, getattr(torch, "bfloat16", None))]
    f = xcs.jit(lambda v: chain(np, v))
    ref = chain(np, x32.astype(np.float64))
    for name, dt, tdt in halves:
        h = x32.astype(dt)
        xh, x = xcs.asarray(h), xcs.asarray(x32)
        gb = 6 * n / 1e9
        t = best(lambda: x.astype(dt), args.repeats)
        row("convert f32->16", name, "xcs", t, "GB/s", gb / t)
        t = best(lambda: xh.astype(np.float32), args.repeats)
        row("convert 16->f32", name, "xcs", t, "GB/s", gb / t)
        t = best(lambda: x32.astype(dt), args.repeats)
        row("convert f32->16", name, "numpy" if dt is np.float16 else "ml_dtypes", t, "GB/s", gb / t)
        t = best(lambda: h.astype(np.float32), args.repeats)
        row("convert 16->f32", name, "numpy" if dt is np.float16 else "ml_dtypes", t, "GB/s", gb / t)

        tol = 2.0**-9 if dt is np.float16 else 2.0**-6
        hf = h.astype(np.float64)
        want = chain(np, hf)
        got = np.asarray(f(xh)).astype(np.float64)
        assert np.all(np.abs(got - want) <= tol * (1 + np.abs(want))), name
        cb = 4 * n / 1e9  # read x, write y: the fused chain's bytes
        t = best(lambda: f(xh), args.repeats)
        row("chain 8 ops", name, "xcs jit", t, "GB/s", cb / t)
        if dt is np.float16:
            t = best(lambda: chain(np, h), max(2, args.repeats // 3))
            row("chain 8 ops", name, "numpy", t, "GB/s", cb / t, "each op rounds")
        if torch is not None:
            th = torch.from_numpy(x32).to(tdt)
            t = best(lambda: chain(torch, th), args.repeats)
            row("chain 8 ops", name, "torch eager", t, "GB/s", cb / t)
    t = best(lambda: f(xcs.asarray(x32)), args.repeats)
    row("chain 8 ops", "float32", "xcs jit", t, "GB/s", 8 * n / 1e9 / t)
    assert np.allclose(np.asarray(f(xcs.asarray(x32))), ref, rtol=1e-4, atol=1e-5)

    a32 = (rng.standard_normal((m, m)) / np.sqrt(m)).astype(np.float32)
    b32 = rng.standard_normal((m, m)).astype(np.float32)
    flops = 2.0 * m ** 3
    for name, dt, tdt in halves:
        a, b = a32.astype(dt), b32.astype(dt)
        xa, xb = xcs.asarray(a), xcs.asarray(b)
        want = a.astype(np.float64) @ b.astype(np.float64)
        got = np.asarray(xa @ xb).astype(np.float64)
        assert np.all(np.abs(got - want) <= 2.0**-7 * np.abs(want) + 1e-2), name
        t = best(lambda: xa @ xb, args.repeats)
        row(f"matmul {m}^2", name, "xcs", t, "GFLOP/s", flops / t / 1e9)
        if dt is np.float16:
            t = best(lambda: a @ b, 1)
            row(f"matmul {m}^2", name, "numpy", t, "GFLOP/s", flops / t / 1e9, "no BLAS for float16")
        if torch is not None:
            ta, tb = torch.from_numpy(a32).to(tdt), torch.from_numpy(b32).to(tdt)
            t = best(lambda: ta @ tb, args.repeats)
            row(f"matmul {m}^2", name, "torch", t, "GFLOP/s", flops / t / 1e9)
    xa, xb = xcs.asarray(a32), xcs.asarray(b32)
    t = best(lambda: xa @ xb, args.repeats)
    row(f"matmul {m}^2", "float32", "xcs", t, "GFLOP/s", flops / t / 1e9)

    print(f"STREAM triad: {stream:.1f} GB/s" if stream else "STREAM triad: not measured (--quick)")
    print(f"{'figure':<18} {'dtype':<9} {'impl':<12} {'ms':>9} {'rate':>12} {'of STREAM':>10}  note")
    for r in rows:
        of = f"{r['of_stream']:.2f}" if r["of_stream"] is not None else ""
        print(f"{r['figure']:<18} {r['dtype']:<9} {r['impl']:<12} {r['ms']:9.2f} {r['rate']:8.1f} {r['unit']:<7}"
              f" {of:>6}  {r['note']}")
    if args.json:
        write_json(args.json, {"stream_gbps": stream, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
