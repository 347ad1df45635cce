#!/usr/bin/env python3
"""The main job's demo: which backend runs, and a few array programs run by
ember.xcs and by numpy side by side, with the max abs error and the time of
each.  Run by scripts/run.sh with the package installed in .venv."""
from __future__ import annotations

import sys
import time

import numpy as np


def timed(fn, repeats=5):
    fn()  # warm-up
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> int:
    import ember.xcs as xcs
    import ember.xcs.nn as nn
    import ember.xcs.numpy as xnp
    import ember.xcs.random as xr

    print(f"ember.xcs from {xcs.__file__}")
    print("devices:")
    for d in xcs.devices():
        state = "available" if d.get("available") else f"unavailable ({d.get('reason', '?')})"
        extras = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("kind", "name", "available", "reason"))
        print(f"  {d.get('kind')}: {d.get('name')} — {state}{'; ' + extras if extras else ''}")
    print(f"default device: {xcs.default_device()}")

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(2_000_000).astype(np.float32)
    a_np = rng.standard_normal((512, 512)).astype(np.float32)
    b_np = rng.standard_normal((512, 512)).astype(np.float32)
    s_np = (rng.standard_normal((1024, 1024)) * 4).astype(np.float32)
    x, a, b, s = (xcs.asarray(v) for v in (x_np, a_np, b_np, s_np))

    def np_softmax(v):
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    programs = [
        ("elementwise chain  tanh(x*0.5+0.25)*exp(-x*x)+x  (2e6 f32)",
         lambda: xnp.tanh(x * 0.5 + 0.25) * xnp.exp(-(x * x)) + x,
         lambda: np.tanh(x_np * 0.5 + 0.25) * np.exp(-(x_np * x_np)) + x_np),
        ("matmul  (512x512) @ (512x512) f32",
         lambda: a @ b, lambda: a_np @ b_np),
        ("row softmax  1024x1024 f32",
         lambda: nn.softmax(s, axis=-1), lambda: np_softmax(s_np)),
        ("reductions  sum, mean(axis=0), max(axis=1), argmax",
         lambda: (xnp.sum(s), xnp.mean(s, axis=0), xnp.max(s, axis=1), xnp.argmax(s)),
         lambda: (np.sum(s_np), np.mean(s_np, axis=0), np.max(s_np, axis=1), np.argmax(s_np))),
        ("numpy code on Arrays  np.tanh(a @ b).sum(axis=1)",
         lambda: np.tanh(a @ b).sum(axis=1), lambda: np.tanh(a_np @ b_np).sum(axis=1)),
    ]

    print()
    print(f"{'program':<58} {'max abs err':>12} {'xcs ms':>9} {'numpy ms':>9}")
    ok = True
    for name, fx, fn in programs:
        got, tx = timed(fx)
        want, tn = timed(fn)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        err = max(float(np.max(np.abs(np.asarray(g, np.float64) - np.asarray(w, np.float64)), initial=0.0))
                  for g, w in zip(got, want))
        scale = max(float(np.max(np.abs(np.asarray(w, np.float64)), initial=1.0)) for w in want)
        ok &= err <= 1e-3 * max(scale, 1.0)
        print(f"{name:<58} {err:12.3e} {tx * 1e3:9.2f} {tn * 1e3:9.2f}")

    key = xr.key(0)
    k1, k2 = np.asarray(xr.split(key))
    u = np.asarray(xr.uniform(xcs.asarray(k1), (100_000,)))
    z = np.asarray(xr.normal(xcs.asarray(k2), (100_000,)))
    print(f"\nrandom (Philox): uniform mean {u.mean():.4f} (0.5), normal mean {z.mean():+.4f} std {z.std():.4f} (1)")
    print("\nall results match numpy" if ok else "\nMISMATCH against numpy")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
