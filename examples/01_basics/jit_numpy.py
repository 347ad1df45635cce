"""Plain numpy code under @jit: traced once per signature, fused, run by xcs.

Run: PYTHONPATH=build/python .venv/bin/python examples/01_basics/jit_numpy.py
"""
import time

import numpy as np

from ember.xcs import explain, jit


def layer(x, w, b):
    h = np.tanh(x @ w + b)             # matmul, then one fused elementwise group
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2048, 256), dtype=np.float32)
    w = rng.standard_normal((256, 512), dtype=np.float32) / 16
    b = rng.standard_normal(512, dtype=np.float32)
    fast = jit(layer)
    got = np.asarray(fast(x, w, b))
    want = layer(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))

    def best(f):
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            f(x, w, b)
            ts.append(time.perf_counter() - t0)
        return min(ts)

    t_np, t_jit = best(layer), best(fast)
    s = fast.stats()
    print(explain(layer, x, w, b).split("after optimisation")[1].strip())
    print(f"max abs error vs float64 numpy: {np.max(np.abs(got - want)):.2e}")
    print(f"numpy {t_np * 1e3:.2f} ms, xcs jit {t_jit * 1e3:.2f} ms: {t_np / t_jit:.2f}x "
          f"({s['fused_groups']} fused groups, {s['kernels_per_call']} kernels per call, "
          f"{s['traces']} trace for {s['calls']} calls)")


if __name__ == "__main__":
    main()
