"""Timing, peers and machine limits for xcs-bench.

Every figure is timed the same way for xcs and its peers: ``warmup`` runs
(compiles, caches, thread pools), then ``repeat`` timed runs with
``time.perf_counter``; the figure is the median, the spread the min and max.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def timeit(fn, repeat, warmup=1):
    """{"median_s", "min_s", "max_s", "repeat"} of fn() (its result is discarded)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts), "repeat": repeat}


def peers():
    """Which peers this environment has: {"numpy": version, "torch": version|None, "jax": version|None}."""
    out = {"numpy": np.__version__, "torch": None, "jax": None}
    for name in ("torch", "jax"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001  (absent, or broken: not a peer then)
            pass
    return out


def machine():
    """Facts printed with every run (a figure is only comparable on the same machine)."""
    import ember.xcs as xcs

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = xcs.build_info()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "xcs": xcs.__version__,
            "xcs_threads": info["max_threads"], "blas": info["blas"], "platform": platform.platform()}


# ---------------------------------------------------------------- limits

_STREAM_C = r"""
#include <stdlib.h>
#include <omp.h>
/* STREAM triad a = b + s*c over n doubles; best seconds of `reps` runs. */
double xcs_bench_triad(long n, int reps) {
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c), best = 1e30;
    if (!a || !b || !c) { free(a); free(b); free(c); return -1.0; }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) { a[i] = 0.0; b[i] = 1.0; c[i] = 2.0; }
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return best;
}
"""


def _stream_lib():
    """The triad compiled with the system C compiler (cached), or None."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    key = hashlib.sha256(_STREAM_C.encode()).hexdigest()[:12]
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xcs-bench"
    so = d / f"stream-{key}.so"
    if not so.exists():
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                src = Path(tmp) / "stream.c"
                src.write_text(_STREAM_C)
                tmp_so = Path(tmp) / "stream.so"
                subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", str(src), "-o",
                                str(tmp_so)], check=True, capture_output=True, timeout=60)
                shutil.move(str(tmp_so), so)
        except (OSError, subprocess.SubprocessError):
            return None
    try:
        lib = ctypes.CDLL(str(so))
        lib.xcs_bench_triad.restype = ctypes.c_double
        lib.xcs_bench_triad.argtypes = [ctypes.c_long, ctypes.c_int]
        return lib
    except OSError:
        return None


def memory_bandwidth(size):
    """{"name", "value" (GB/s), "unit", "method"}: STREAM triad (3 arrays of
    traffic per element) over arrays far larger than the caches, all cores;
    numpy's single-threaded copy when no C compiler is around."""
    n = {"quick": 1 << 22, "default": 1 << 25, "large": 1 << 25}[size]
    lib = _stream_lib()
    if lib is not None:
        t = lib.xcs_bench_triad(n, 5 if size == "quick" else 10)
        if t > 0:
            return {"name": "stream_triad", "value": 3 * 8 * n / t / 1e9, "unit": "GB/s",
                    "method": f"STREAM triad, {3 * 8 * n >> 20} MiB, OpenMP, best of runs"}
    a, b = np.ones(n), np.empty(n)
    r = timeit(lambda: np.copyto(b, a), 5, 1)
    return {"name": "numpy_copy", "value": 2 * 8 * n / r["min_s"] / 1e9, "unit": "GB/s",
            "method": "numpy copy (no C compiler for the STREAM triad): one thread"}
