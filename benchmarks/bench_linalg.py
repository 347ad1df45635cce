#!/usr/bin/env python3
"""numpy.linalg on xcs vs numpy (LAPACK through its bundled OpenBLAS) and
jax.numpy.linalg (when installed), float64, in one process.

Figures (method: benchmarks/README.md): solve (n x n right-hand sides),
cholesky, eigh and svd (reduced) of one n x n matrix for n in 64, 256,
1024 (xcs hands these to LAPACK where its BLAS build has it, one matrix at
a time, on OpenBLAS's threads from 512 rows on), and of a batch of 10000 4 x 4 matrices
(xcs's own loops, threads over the batch), plus grad of log|det| at 256.
Each time is the best of --repeats runs after a warm-up; each xcs result is
checked against numpy's first (values, or the decomposition it makes).

Usage: PYTHONPATH=build/python python benchmarks/bench_linalg.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_parser, machine_info, write_json  # noqa: E402
from bench_half import best  # noqa: E402


def first(r):
    """A result's first array (the eigenvalues of eigh, U of svd)."""
    return r[0] if isinstance(r, tuple) else r


def problems(n, batch, rng):
    """(name, numpy function, arguments, check(xcs result, numpy result))."""
    shape = (batch, n, n) if batch else (n, n)
    a = rng.standard_normal(shape) + np.sqrt(n) * np.eye(n)
    s = a @ np.swapaxes(a, -1, -2) + np.eye(n)
    close = lambda got, want: np.allclose(got, want, rtol=1e-8, atol=1e-8)  # noqa: E731

    def eig_ok(got, want):
        w, v = (np.asarray(t) for t in got)
        return close(w, want[0]) and np.allclose(s @ v, v * w[..., None, :], atol=1e-6 * n)

    def svd_ok(got, want):
        u, sv, vh = (np.asarray(t) for t in got)
        return close(sv, want[1]) and np.allclose((u * sv[..., None, :]) @ vh, a, atol=1e-8 * n)

    return [("solve", np.linalg.solve, (a, a), lambda g, w: close(np.asarray(g), w)),
            ("cholesky", np.linalg.cholesky, (s,), lambda g, w: close(np.asarray(g), w)),
            ("eigh", np.linalg.eigh, (s,), eig_ok),
            ("svd", lambda x: np.linalg.svd(x, full_matrices=False), (a,), svd_ok)]


def main(argv=None):
    ap = bench_parser(__doc__, repeats=5)
    args = ap.parse_args(argv)
    import ember.xcs as xcs

    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
    except ImportError:
        jax = None
    print(f"# {machine_info()}", file=sys.stderr)
    rng = np.random.default_rng(0)
    sizes = [(8, 0), (4, 50)] if args.quick else [(64, 0), (256, 0), (1024, 0), (4, 10000)]
    rows = []
    for n, batch in sizes:
        for name, f, ins, ok in problems(n, batch, rng):
            xins = [xcs.asarray(v) for v in ins]
            got = f(*xins)
            if not ok(got, f(*ins)):
                raise SystemExit(f"bench_linalg: xcs {name} at n={n} disagrees with numpy")
            row = {"figure": name, "n": n, "batch": batch,
                   "xcs_ms": best(lambda: np.asarray(first(f(*xins))), args.repeats) * 1e3,
                   "numpy_ms": best(lambda: f(*ins), args.repeats) * 1e3}
            if jax is not None and name != "svd":
                jf = {"solve": jnp.linalg.solve, "cholesky": jnp.linalg.cholesky, "eigh": jnp.linalg.eigh}[name]
                jins = [jnp.asarray(v) for v in ins]
                jit = jax.jit(jf)
                row["jax_ms"] = best(lambda: jax.block_until_ready(jit(*jins)), args.repeats) * 1e3
            rows.append(row)
    n = 8 if args.quick else 256
    a = rng.standard_normal((n, n)) + np.sqrt(n) * np.eye(n)
    g = xcs.jit(xcs.grad(lambda x: np.linalg.slogdet(x)[1]))
    if not np.allclose(np.asarray(g(a)), np.linalg.inv(a).T, rtol=1e-8, atol=1e-10):
        raise SystemExit("bench_linalg: grad of slogdet disagrees with inv(a).T")
    rows.append({"figure": "grad slogdet", "n": n, "batch": 0,
                 "xcs_ms": best(lambda: np.asarray(g(a)), args.repeats) * 1e3,
                 "numpy_ms": best(lambda: np.linalg.inv(a).T, args.repeats) * 1e3})
    print(f"{'figure':<14} {'n':>5} {'batch':>6} {'xcs ms':>9} {'numpy ms':>9} {'xcs/numpy':>9} {'jax ms':>8}")
    for r in rows:
        jx = f"{r['jax_ms']:8.2f}" if "jax_ms" in r else "       -"
        print(f"{r['figure']:<14} {r['n']:5d} {r['batch']:6d} {r['xcs_ms']:9.2f} {r['numpy_ms']:9.2f} "
              f"{r['xcs_ms'] / r['numpy_ms']:9.2f} {jx}")
    if args.json:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
