#!/usr/bin/env python3
"""@jit vs numpy (and jax.jit / torch.compile where installed), one process.

Figures (method: benchmarks/README.md):
  chain      8-op elementwise chain on 1e7 float32 (the same body as
             bench_eager.py): numpy makes 8 passes, a fused jit program one.
             Limit: STREAM triad bandwidth for one read + one write.
  softmax    row softmax of 4096 x 4096 float32.  Limit: one read + one write.
  layernorm  row layer-norm (no affine) of 4096 x 4096 float32, eps 1e-5.
             Limit: one read + one write.
  dispatch   per-call time of a cache hit on a tiny function (one add on
             1-element arrays), next to numpy's eager add.

"hand C" is benchmarks/rowref.c: softmax and layer-norm written by hand as
one pass per row (each row read once, later passes in L1), measured in the
same run: what these rows cost on this machine when nothing is generic.

Each time is the median of --repeats runs after --warmup runs.

Usage: python benchmarks/bench_jit.py [--repeats N] [--warmup N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_binary, bench_parser, machine_info, measure_stream, timeit, write_json  # noqa: E402


def measure_rowref(rows):
    """Best ms of the hand-written one-pass row kernels (benchmarks/rowref.c),
    plain or non-temporal stores, whichever is faster: {"softmax": ms, ...}."""
    exe = bench_binary("xcs_rowref", "rowref.c")
    if exe is None:
        return {}
    r = subprocess.run([str(exe), str(rows), str(rows)], capture_output=True, text=True, check=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return {k: min(d[f"{k}_ms"], d[f"{k}_nt_ms"]) for k in ("softmax", "layernorm")}


def bodies(xp):
    """The workloads written once over an array module: numpy (what xcs jits
    and numpy runs) or jax.numpy (jax cannot trace numpy calls)."""
    def chain(x):
        return xp.tanh(x * 0.5 + 0.25) * xp.exp(-(x * x)) + x

    def softmax(x):
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def layernorm(x):
        m = x.mean(axis=1, keepdims=True)
        d = x - m
        v = (d * d).mean(axis=1, keepdims=True)
        return d / xp.sqrt(v + 1e-5)
    return {"chain": chain, "softmax": softmax, "layernorm": layernorm}


def torch_bodies(torch):
    """The same workloads in torch's spelling (dim/keepdim, amax)."""
    def chain(x):
        return torch.tanh(x * 0.5 + 0.25) * torch.exp(-(x * x)) + x

    def softmax(x):
        e = torch.exp(x - x.amax(dim=1, keepdim=True))
        return e / e.sum(dim=1, keepdim=True)

    def layernorm(x):
        m = x.mean(dim=1, keepdim=True)
        d = x - m
        v = (d * d).mean(dim=1, keepdim=True)
        return d / torch.sqrt(v + 1e-5)
    return {"chain": chain, "softmax": softmax, "layernorm": layernorm}


BODIES = bodies(np)
chain, softmax, layernorm = BODIES["chain"], BODIES["softmax"], BODIES["layernorm"]


def tiny(a, b):
    return a + b


def peers():
    out = {}
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_platforms", "cpu")
        out["jax.jit"] = (jax, jnp)
    except Exception:  # noqa: BLE001 — absent or broken: just not measured
        pass
    try:
        import torch
        out["torch.compile"] = torch
    except Exception:  # noqa: BLE001
        pass
    return out


def main(argv=None):
    ap = bench_parser(__doc__)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args(argv)

    import ember.xcs as xcs

    n = 10**6 if args.quick else 10**7
    rows = 512 if args.quick else 4096
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(n, dtype=np.float32)
    x2 = rng.standard_normal((rows, rows), dtype=np.float32)
    stream, stream_line = measure_stream()
    rowref = measure_rowref(rows)
    print(f"# {machine_info()}", file=sys.stderr)
    print(f"# STREAM: {stream_line}", file=sys.stderr)

    results = []
    found = peers()
    jaxfns = bodies(found["jax.jit"][1]) if "jax.jit" in found else {}
    torchfns = torch_bodies(found["torch.compile"]) if "torch.compile" in found else {}
    if torchfns:  # the same two threads as everyone else
        found["torch.compile"].set_num_threads(max(1, len(__import__("os").sched_getaffinity(0))))

    def mem_figure(name, key, x, nbytes):
        fn = BODIES[key]
        jf = xcs.jit(fn)
        got = np.asarray(jf(x))
        want = fn(x.astype(np.float64))
        err = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) or 1))
        t_np = timeit(lambda: fn(x), args.repeats, args.warmup)
        t_x = timeit(lambda: jf(x), args.repeats, args.warmup)
        st = jf.stats()
        gbps = nbytes / t_x / 1e9
        r = dict(figure=name, xcs_ms=t_x * 1e3, numpy_ms=t_np * 1e3, numpy_over_xcs=t_np / t_x,
                 hand_c_ms=rowref.get(key),
                 xcs_gbps=gbps, limit_gbps=stream, xcs_over_limit=(gbps / stream) if stream else None,
                 fused_groups=st["fused_groups"], kernels_per_call=st["kernels_per_call"], max_rel_err=err)
        if key in jaxfns:
            jax, jnp = found["jax.jit"]
            jj = jax.jit(jaxfns[key])
            xj = jnp.asarray(x)
            jj(xj).block_until_ready()
            r["jax_jit_ms"] = timeit(lambda: jj(xj).block_until_ready(), args.repeats, args.warmup) * 1e3
        if key in torchfns:
            torch = found["torch.compile"]
            tc = torch.compile(torchfns[key])
            xt = torch.from_numpy(x)
            terr = float(np.max(np.abs(tc(xt).numpy() - want)) / (np.max(np.abs(want)) or 1))
            r["torch_compile_ms"] = timeit(lambda: tc(xt), args.repeats, args.warmup) * 1e3
            r["torch_max_rel_err"] = terr
        results.append(r)

    mem_figure(f"chain 8 ops, {n:.0e} f32", "chain", x1, 2 * x1.nbytes)
    mem_figure(f"softmax rows {rows}^2 f32", "softmax", x2, 2 * x2.nbytes)
    mem_figure(f"layernorm rows {rows}^2 f32", "layernorm", x2, 2 * x2.nbytes)

    a = np.ones(1, np.float32)
    b = np.ones(1, np.float32)
    jt = xcs.jit(tiny)
    xa, xb = xcs.asarray(a), xcs.asarray(b)
    jt(xa, xb)
    reps = 20000 if not args.quick else 2000

    def loop(f, *fa):
        def run():
            for _ in range(reps):
                f(*fa)
        return run
    t_jit = timeit(loop(jt, xa, xb), 3, 1) / reps
    t_jit_np = timeit(loop(jt, a, b), 3, 1) / reps
    t_np = timeit(loop(np.add, a, b), 3, 1) / reps
    disp = dict(figure="dispatch: cache hit, 1-element add", xcs_us=t_jit * 1e6, xcs_numpy_args_us=t_jit_np * 1e6,
                numpy_eager_us=t_np * 1e6)
    for name, mod in found.items():
        if name == "jax.jit":
            jax, jnp = mod
            jj = jax.jit(tiny)
            ja, jb = jnp.ones(1), jnp.ones(1)
            jj(ja, jb).block_until_ready()
            disp["jax_jit_us"] = timeit(loop(lambda p, q: jj(p, q).block_until_ready(), ja, jb), 3, 1) / reps * 1e6
        else:
            torch = mod
            tc = torch.compile(tiny)
            ta, tb = torch.ones(1), torch.ones(1)
            tc(ta, tb)
            disp["torch_compile_us"] = timeit(loop(tc, ta, tb), 3, 1) / reps * 1e6
    results.append(disp)

    print(f"{'figure':34} {'xcs ms':>9} {'numpy ms':>9} {'np/xcs':>7} {'jax ms':>8} {'jax/xcs':>7} "
          f"{'torch ms':>8} {'tc/xcs':>7} {'hand C':>8} {'C/xcs':>7} {'xcs GB/s':>9} {'of limit':>8} "
          f"{'groups':>6} {'kernels':>7}")

    def peer(r, key):
        if r.get(key) is None:
            return f"{'-':>8} {'-':>7}"
        return f"{r[key]:8.2f} {r[key] / r['xcs_ms']:7.2f}"
    for r in results[:-1]:
        lim = f"{r['xcs_over_limit']:.2f}" if r["xcs_over_limit"] is not None else "-"
        print(f"{r['figure']:34} {r['xcs_ms']:9.2f} {r['numpy_ms']:9.2f} {r['numpy_over_xcs']:7.2f} "
              f"{peer(r, 'jax_jit_ms')} {peer(r, 'torch_compile_ms')} {peer(r, 'hand_c_ms')} "
              f"{r['xcs_gbps']:9.1f} {lim:>8} {r['fused_groups']:6d} {r['kernels_per_call']:7d}")
    d = results[-1]
    extra = "".join(f", {k[:-3]} {v:.2f} us" for k, v in d.items() if k.endswith("_us") and k not in
                    ("xcs_us", "xcs_numpy_args_us", "numpy_eager_us"))
    print(f"{d['figure']}: xcs {d['xcs_us']:.2f} us (numpy-array args {d['xcs_numpy_args_us']:.2f} us), "
          f"numpy eager add {d['numpy_eager_us']:.2f} us{extra}")
    if not found:
        print("(jax / torch not installed in this environment: their columns are not measured)")
    if args.json:
        write_json(args.json, dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                   machine=machine_info(), stream_gbps=stream, results=results))


if __name__ == "__main__":
    main()
