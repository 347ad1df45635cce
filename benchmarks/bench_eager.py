#!/usr/bin/env python3
"""xcs eager vs numpy, in one process, against the machine's limits.

Figures (see benchmarks/README.md for the method):
  chain       8-op elementwise chain on 1e7 float32, op by op (eager) in both:
              y = tanh(x * 0.5 + 0.25) * exp(-(x * x)) + x
  matmul      1024^2 and 2048^2 float32: xcs, numpy (its bundled OpenBLAS), and
              the system OpenBLAS called directly (cblas_sgemm through ctypes)
  softmax     row softmax of 4096 x 4096 float32; numpy:
              e = np.exp(x - x.max(1, keepdims=True)); e / e.sum(1, keepdims=True)
  reductions  sum of 1e7 float32, row sums and row max of 4096 x 4096 float32

Each time is the median of --repeats runs after --warmup runs.  Memory-bound
figures report GB/s (bytes an eager implementation must move: every op reads
its inputs and writes its output once) and the ratio to the STREAM triad
bandwidth measured by xcs_stream in the same run; matmul reports GFLOP/s and
the ratio to the system OpenBLAS.

Usage: python benchmarks/bench_eager.py [--repeats N] [--warmup N] [--json PATH|-]
                                        [--quick] [--only NAME,...]
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- timing

def write_json(path, doc):
    """Writes doc as JSON to path ('-': stdout)."""
    text = json.dumps(doc, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n")


def timeit(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# ----------------------------------------------------------------- limits

def bench_binary(name="xcs_stream", source="stream.c"):
    """Path to a benchmark helper: the CMake-built one, else compiled here with cc."""
    for p in (ROOT / "build" / "benchmarks" / name, ROOT / "benchmarks" / "out" / name):
        if p.exists():
            return p
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / name
    subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-I", str(ROOT / "src" / "host"),
                    str(ROOT / "benchmarks" / source), "-o", str(exe), "-lm"], check=True)
    return exe


def stream_binary():
    return bench_binary("xcs_stream", "stream.c")


def measure_stream():
    exe = stream_binary()
    if exe is None:
        return None, "no C compiler to build xcs_stream"
    r = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)["triad_gbps"], r.stdout.splitlines()[0]


class SystemOpenBLAS:
    """cblas_sgemm from the system libopenblas (what xcs links), via ctypes."""

    def __init__(self):
        self.lib = None
        for name in ("libopenblas.so.0", "libopenblas.so", ctypes.util.find_library("openblas")):
            if not name:
                continue
            try:
                self.lib = ctypes.CDLL(name)
                self.name = name
                break
            except OSError:
                continue
        if self.lib is not None:
            f = self.lib.cblas_sgemm
            f.restype = None
            f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                          ctypes.c_float, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                          ctypes.c_float, ctypes.c_void_p, ctypes.c_int]
            self.sgemm = f
            try:
                cfg = self.lib.openblas_get_config
                cfg.restype = ctypes.c_char_p
                self.config = cfg().decode()
                core = self.lib.openblas_get_corename
                core.restype = ctypes.c_char_p
                self.corename = core().decode()
                nt = self.lib.openblas_get_num_threads
                nt.restype = ctypes.c_int
                self.threads = nt()
            except AttributeError:
                self.config = self.corename = "?"
                self.threads = 0

    def matmul(self, a, b, c):
        n, k = a.shape
        m = b.shape[1]
        # CblasRowMajor=101, CblasNoTrans=111
        self.sgemm(101, 111, 111, n, m, k, 1.0, a.ctypes.data, k, b.ctypes.data, m, 0.0, c.ctypes.data, m)
        return c


def numpy_blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    out = []
    for d in threadpool_info():
        if d.get("user_api") == "blas":
            out.append(f"{d.get('internal_api')} {d.get('version')} ({Path(d.get('filepath', '')).name}), "
                       f"kernel {d.get('architecture')}, {d.get('num_threads')} threads")
    return "; ".join(out) or "no BLAS found"


def machine_info():
    model = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


# ----------------------------------------------------------------- workloads

def workloads(xcs, xnp, nn, quick):
    """(name, xcs fn, numpy fn, kind, amount, limit_fn) tuples.
    kind "bytes": amount is bytes moved; "flops": amount is flops."""
    rng = np.random.default_rng(0)
    n = 1_000_000 if quick else 10_000_000
    f4 = 4
    x_np = rng.standard_normal(n).astype(np.float32)
    x = xcs.asarray(x_np)

    def chain_x():
        return xnp.tanh(x * 0.5 + 0.25) * xnp.exp(-(x * x)) + x

    def chain_np():
        return np.tanh(x_np * 0.5 + 0.25) * np.exp(-(x_np * x_np)) + x_np

    # reads/writes per op: mul(1r,1w) add(1,1) tanh(1,1) mul(1,1) neg(1,1) exp(1,1) mul(2,1) add(2,1)
    chain_bytes = (10 + 8) * n * f4
    out = [("chain 8 ops, 1e7 f32" if not quick else "chain 8 ops, 1e6 f32", chain_x, chain_np, "bytes",
            chain_bytes, None)]

    sizes = (512, 1024) if quick else (1024, 2048)
    for s in sizes:
        a_np = rng.standard_normal((s, s)).astype(np.float32)
        b_np = rng.standard_normal((s, s)).astype(np.float32)
        a, b = xcs.asarray(a_np), xcs.asarray(b_np)
        c_np = np.empty((s, s), np.float32)
        out.append((f"matmul {s}^2 f32", (lambda a=a, b=b: a @ b), (lambda a=a_np, b=b_np: a @ b),
                    "flops", 2.0 * s ** 3, (a_np, b_np, c_np)))

    r = 1024 if quick else 4096
    s_np = (rng.standard_normal((r, r)) * 3).astype(np.float32)
    sx = xcs.asarray(s_np)

    def softmax_np():
        e = np.exp(s_np - s_np.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    # eager numpy moves: max (1r), sub (1r+1w), exp (1r+1w), sum (1r), div (1r+1w) = 8 arrays;
    # a fused row kernel needs 2 (read x, write y).  GB/s is reported on the 2-array minimum.
    out.append((f"softmax rows {r}x{r} f32", lambda: nn.softmax(sx, axis=-1), softmax_np, "bytes",
                2 * r * r * f4, None))
    out.append((f"sum 1e7 f32" if not quick else "sum 1e6 f32", lambda: xnp.sum(x), lambda: np.sum(x_np),
                "bytes", n * f4, None))
    out.append((f"row sum {r}x{r} f32", lambda: xnp.sum(sx, axis=1), lambda: np.sum(s_np, axis=1), "bytes",
                r * r * f4, None))
    out.append((f"row max {r}x{r} f32", lambda: xnp.max(sx, axis=1), lambda: np.max(s_np, axis=1), "bytes",
                r * r * f4, None))
    out.append((f"col sum {r}x{r} f32", lambda: xnp.sum(sx, axis=0), lambda: np.sum(s_np, axis=0), "bytes",
                r * r * f4, None))
    return out


def check_results(name, got, want):
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    err = float(np.max(np.abs(g - w))) if g.size else 0.0
    scale = float(np.max(np.abs(w))) if w.size else 1.0
    return err / max(scale, 1e-30)


def bench_parser(doc, repeats=7, quick_help="smaller sizes (a smoke run, not a measurement)"):
    """The options every benchmark takes: --repeats (timed runs, best kept), --quick, --json."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", metavar="PATH", help="write results as JSON to PATH ('-' for stdout)")
    return ap


def main(argv=None):
    ap = bench_parser(__doc__)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", help="comma-separated substrings of figure names to run")
    args = ap.parse_args(argv)

    import ember.xcs as xcs
    import ember.xcs.nn as nn
    import ember.xcs.numpy as xnp

    load1 = os.getloadavg()[0]  # before anything of ours runs
    info = machine_info()
    info["xcs_devices"] = xcs.devices()
    try:
        info["xcs_build"] = xcs.build_info()
    except Exception as e:  # noqa: BLE001 - informational only
        info["xcs_build"] = repr(e)
    info["numpy_blas"] = numpy_blas_info()
    sysblas = SystemOpenBLAS()
    info["system_openblas"] = (f"{sysblas.name}: {sysblas.config}, core {sysblas.corename}, "
                               f"{sysblas.threads} threads") if sysblas.lib else "not found"
    stream_gbps, stream_line = measure_stream()
    info["stream"] = stream_line

    print(f"# xcs eager vs numpy — {info['date']}")
    print(f"# machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, numpy {info['numpy']}")
    print(f"# numpy BLAS: {info['numpy_blas']}")
    print(f"# system OpenBLAS: {info['system_openblas']}")
    print(f"# xcs: {info['xcs_devices']}")
    print(f"# OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={info['OPENBLAS_L2_SIZE']} "
          f"OMP_NUM_THREADS={info['OMP_NUM_THREADS']}")
    print(f"# limit: {stream_line}")
    info["loadavg_1min"] = load1
    print(f"# load average (1 min) before the run: {load1:.2f}"
          + ("  — WARNING: the machine is busy; multi-threaded figures and STREAM will read low"
             if load1 > 0.7 else ""))
    print()

    rows = []
    hdr = f"{'figure':<28} {'xcs ms':>9} {'numpy ms':>9} {'xcs/np':>7} {'xcs rate':>13} {'np rate':>13} " \
          f"{'limit':>13} {'xcs/limit':>9} {'relerr':>8}"
    print(hdr)
    print("-" * len(hdr))
    for name, fx, fn, kind, amount, extra in workloads(xcs, xnp, nn, args.quick):
        if args.only and not any(s in name for s in args.only.split(",")):
            continue
        reps = max(3, args.repeats // 2) if ("2048" in name or "4096" in name) else args.repeats
        relerr = check_results(name, fx(), fn())
        tx = timeit(fx, reps, args.warmup)
        tn = timeit(fn, reps, args.warmup)
        row = {"figure": name, "xcs_s": tx, "numpy_s": tn, "ratio_numpy": tx / tn, "kind": kind,
               "amount": amount, "relerr": relerr}
        if kind == "bytes":
            row["xcs_rate"] = amount / tx / 1e9
            row["numpy_rate"] = amount / tn / 1e9
            row["unit"] = "GB/s"
            row["limit"] = stream_gbps
            row["limit_name"] = "STREAM triad"
        else:
            row["xcs_rate"] = amount / tx / 1e9
            row["numpy_rate"] = amount / tn / 1e9
            row["unit"] = "GFLOP/s"
            if sysblas.lib is not None:
                a_np, b_np, c_np = extra
                tb = timeit(lambda: sysblas.matmul(a_np, b_np, c_np), reps, args.warmup)
                row["limit"] = amount / tb / 1e9
                row["limit_name"] = "system OpenBLAS sgemm"
            else:
                row["limit"] = None
        row["ratio_limit"] = (row["xcs_rate"] / row["limit"]) if row.get("limit") else None
        rows.append(row)
        lim = f"{row['limit']:.1f} {row['unit']}" if row.get("limit") else "n/a"
        rl = f"{row['ratio_limit']:.2f}" if row["ratio_limit"] else "n/a"
        print(f"{name:<28} {tx * 1e3:9.2f} {tn * 1e3:9.2f} {tx / tn:7.2f} "
              f"{row['xcs_rate']:8.1f} {row['unit']:<4} {row['numpy_rate']:8.1f} {row['unit']:<4} "
              f"{lim:>13} {rl:>9} {relerr:8.1e}", flush=True)

    worst = max(rows, key=lambda r: r["ratio_numpy"]) if rows else None
    if worst:
        target = "meets" if worst["ratio_numpy"] <= 1.25 else "MISSES"
        print(f"\nworst xcs/numpy: {worst['ratio_numpy']:.2f} ({worst['figure']}) — {target} the 1.25x target")
        for r in rows:
            if r["kind"] == "flops" and r.get("limit"):
                ratio = r["limit"] / r["xcs_rate"]
                print(f"{r['figure']}: xcs takes {ratio:.2f}x the system OpenBLAS time "
                      f"({'meets' if ratio <= 1.2 else 'MISSES'} the 1.2x target)")
    if args.json:
        write_json(args.json, {"info": info, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
