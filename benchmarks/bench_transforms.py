#!/usr/bin/env python3
"""Transformations: grad, vmap(grad), scan — xcs vs peers in one process.

Figures (method: benchmarks/README.md):
  mlp step     one SGD training step of an MLP 784-512-512-10 (tanh, softmax
               cross-entropy), batch 256, float32: jit(value_and_grad) plus
               the update, vs PyTorch eager, torch.compile and jax.jit where
               installed.  Target: faster than PyTorch eager, within 1.2x of
               JAX.
  per-example  gradients of a 3-layer MLP (64-128-128-10) for each of 1024
               examples: vmap(grad) vs a Python loop of (jitted) grad
               (target >= 20x) and vs jax.vmap(jax.grad) /
               torch.func.vmap(torch.func.grad).
  scan         1000 steps of an RNN cell (hidden 64, input 32, float32): scan
               vs a Python loop of the jitted cell (target >= 10x).
  embedding    the gradient of a bag-of-embeddings classifier (table
               8000x128, 64 x 32 tokens, mean, linear head, softmax
               cross-entropy): jit(value_and_grad) wrt the table and the
               head, whose take's adjoint adds 2048 rows back into the
               table, vs jax.jit and PyTorch eager.

Each time is the median of --repeats runs after warm-up (compile excluded;
the first call's time is printed separately).  The two sides of a ratio
(vmap(grad) and its loop, scan and its loop) are timed interleaved, one run
of each per round, and the ratio is given of the medians and of the best
runs: on a shared VM with CPU steal both sides swing 2x between fast and
slow spells, and timing them at different moments skews their ratio.

Usage: python benchmarks/bench_transforms.py [--repeats N] [--quick] [--json PATH|-]
"""
from __future__ import annotations

import datetime
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eager import bench_parser, machine_info, timeit, write_json  # noqa: E402


def interleaved(fns, repeats):
    """Per fn, (median, min) seconds over `repeats` rounds that run each fn
    once, in turn (after one warm-up call each)."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(ts, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [(statistics.median(t), min(t)) for t in ts]


def init_mlp(rng, sizes, dtype=np.float32):
    return [((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype), np.zeros(b, dtype)) for a, b in
            zip(sizes[:-1], sizes[1:])]


def mlp_loss(xp, log_softmax):
    def loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = xp.tanh(h @ w + b)
        w, b = params[-1]
        logits = h @ w + b
        return -(log_softmax(logits) * y).sum() / x.shape[0]
    return loss


def peers():
    found = {}
    try:
        import jax
        jax.config.update("jax_platforms", "cpu")
        found["jax"] = jax
    except Exception:  # noqa: BLE001 — absent: not measured
        pass
    try:
        import torch
        torch.set_num_threads(2)
        found["torch"] = torch
    except Exception:  # noqa: BLE001
        pass
    return found


def main(argv=None):
    ap = bench_parser(__doc__)
    args = ap.parse_args(argv)
    import ember.xcs as xcs
    from ember.xcs import nn

    print(f"# {machine_info()}", file=sys.stderr)
    rng = np.random.default_rng(0)
    found = peers()
    results = {}
    q = args.quick

    # ---------------------------------------------------------------- MLP step
    sizes = [784, 512, 512, 10] if not q else [64, 32, 32, 10]
    batch = 256 if not q else 32
    params = init_mlp(rng, sizes)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    lr = np.float32(0.01)
    loss = mlp_loss(np, lambda z: nn.log_softmax(z, axis=-1))

    @xcs.jit
    def step(params, x, y):
        val, g = xcs.value_and_grad(loss)(params, x, y)
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, g)], val

    t0 = time.perf_counter()
    step(params, x, y)
    first = time.perf_counter() - t0
    r = {"xcs_ms": timeit(lambda: step(params, x, y), args.repeats, 1) * 1e3, "xcs_first_call_ms": first * 1e3}
    if "jax" in found:
        jax = found["jax"]
        jnp = jax.numpy
        jloss = mlp_loss(jnp, lambda z: jax.nn.log_softmax(z, axis=-1))

        @jax.jit
        def jstep(params, x, y):
            val, g = jax.value_and_grad(jloss)(params, x, y)
            return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, g)], val
        jp = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        jx, jy = jnp.asarray(x), jnp.asarray(y)
        jax.block_until_ready(jstep(jp, jx, jy))
        r["jax_ms"] = timeit(lambda: jax.block_until_ready(jstep(jp, jx, jy)), args.repeats, 1) * 1e3
    if "torch" in found:
        torch = found["torch"]
        tp = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in params]
        tx, ty = torch.tensor(x), torch.tensor(y)
        tloss = mlp_loss(torch, lambda z: torch.log_softmax(z, dim=-1))

        def tstep(fn):
            val = fn(tp, tx, ty)
            grads = torch.autograd.grad(val, [t for pair in tp for t in pair])
            with torch.no_grad():
                return [t - lr * g for t, g in zip([t for pair in tp for t in pair], grads)], val
        r["torch_eager_ms"] = timeit(lambda: tstep(tloss), args.repeats, 1) * 1e3
        try:
            cl = torch.compile(tloss)
            tstep(cl)
            r["torch_compile_ms"] = timeit(lambda: tstep(cl), args.repeats, 1) * 1e3
        except Exception as e:  # noqa: BLE001 — report, do not fail the run
            r["torch_compile_error"] = str(e)[:200]
    results["mlp_step"] = r

    # ---------------------------------------------------------------- per-example gradients
    sizes2 = [64, 128, 128, 10]
    n = 1024 if not q else 64
    p2 = init_mlp(rng, sizes2)
    x2 = rng.standard_normal((n, sizes2[0])).astype(np.float32)
    y2 = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]

    def one_loss(params, x, y):
        return loss(params, x[None, :], y[None, :])

    per_ex = xcs.jit(xcs.vmap(xcs.grad(one_loss), in_axes=(None, 0, 0)))
    g_one = xcs.jit(xcs.grad(one_loss))
    per_ex(p2, x2, y2)
    g_one(p2, x2[0], y2[0])
    loop_n = min(n, 128)
    (vm, vb), (lm, lb) = interleaved([lambda: per_ex(p2, x2, y2),
                                      lambda: [g_one(p2, x2[i], y2[i]) for i in range(loop_n)]], args.repeats)
    r = {"xcs_vmap_ms": vm * 1e3, "xcs_vmap_best_ms": vb * 1e3,
         "xcs_loop_ms": lm * 1e3 * n / loop_n, "xcs_loop_best_ms": lb * 1e3 * n / loop_n}
    if "jax" in found:
        jax = found["jax"]
        jnp = jax.numpy
        jl = mlp_loss(jnp, lambda z: jax.nn.log_softmax(z, axis=-1))
        jf = jax.jit(jax.vmap(jax.grad(lambda p, x, y: jl(p, x[None, :], y[None, :])), in_axes=(None, 0, 0)))
        jp2 = [(jnp.asarray(w), jnp.asarray(b)) for w, b in p2]
        jx2, jy2 = jnp.asarray(x2), jnp.asarray(y2)
        jax.block_until_ready(jf(jp2, jx2, jy2))
        r["jax_ms"] = timeit(lambda: jax.block_until_ready(jf(jp2, jx2, jy2)), args.repeats, 1) * 1e3
    if "torch" in found:
        torch = found["torch"]
        try:
            from torch.func import grad as tgrad, vmap as tvmap
            tl = mlp_loss(torch, lambda z: torch.log_softmax(z, dim=-1))
            tp2 = [(torch.tensor(w), torch.tensor(b)) for w, b in p2]
            tfn = tvmap(tgrad(lambda p, x, y: tl(p, x[None, :], y[None, :])), in_dims=(None, 0, 0))
            tx2, ty2 = torch.tensor(x2), torch.tensor(y2)
            tfn(tp2, tx2, ty2)
            r["torch_func_ms"] = timeit(lambda: tfn(tp2, tx2, ty2), args.repeats, 1) * 1e3
        except Exception as e:  # noqa: BLE001
            r["torch_func_error"] = str(e)[:200]
    results["per_example_grads"] = r

    # ---------------------------------------------------------------- scan
    T = 1000 if not q else 50
    H, D = 64, 32
    W = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    U = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
    xs = rng.standard_normal((T, D)).astype(np.float32)
    h0 = np.zeros(H, np.float32)

    def cell(h, x):
        h2 = np.tanh(h @ W + x @ U)
        return h2, h2.sum()

    jcell = xcs.jit(cell)
    t0 = time.perf_counter()
    xcs.scan(cell, h0, xs)
    first = time.perf_counter() - t0

    def py_loop():
        h = h0
        for t in range(T):
            h, _ = jcell(h, xs[t])
        return h
    (sm, sb), (lm, lb) = interleaved([lambda: xcs.scan(cell, h0, xs), py_loop], args.repeats)
    r = {"xcs_scan_ms": sm * 1e3, "xcs_scan_best_ms": sb * 1e3, "xcs_scan_first_call_ms": first * 1e3,
         "python_loop_jitted_cell_ms": lm * 1e3, "python_loop_jitted_cell_best_ms": lb * 1e3}
    results["scan_rnn"] = r

    # ---------------------------------------------------------------- embedding gradient
    V, Dm, Bt, L = (8000, 128, 64, 32) if not q else (500, 16, 8, 8)
    table = (rng.standard_normal((V, Dm)) * 0.1).astype(np.float32)
    head = (rng.standard_normal((Dm, 10)) * 0.1).astype(np.float32)
    tok = rng.integers(0, V, (Bt, L))
    lab = np.eye(10, dtype=np.float32)[rng.integers(0, 10, Bt)]

    def emb_loss(take, log_softmax):
        def f(table, head, tok, lab):
            e = take(table, tok).mean(axis=1)
            return -(log_softmax(e @ head) * lab).sum() / tok.shape[0]
        return f

    eg = xcs.jit(xcs.value_and_grad(emb_loss(lambda t, i: xcs.numpy.take(t, i, axis=0),
                                             lambda z: nn.log_softmax(z, axis=-1)), argnums=(0, 1)))
    t0 = time.perf_counter()
    eg(table, head, tok, lab)
    first = time.perf_counter() - t0
    r = {"xcs_ms": timeit(lambda: eg(table, head, tok, lab), args.repeats, 1) * 1e3, "xcs_first_call_ms": first * 1e3}
    if "jax" in found:
        jax = found["jax"]
        jnp = jax.numpy
        jg = jax.jit(jax.value_and_grad(emb_loss(lambda t, i: jnp.take(t, i, axis=0),
                                                 lambda z: jax.nn.log_softmax(z, axis=-1)), argnums=(0, 1)))
        ja = [jnp.asarray(a) for a in (table, head, tok, lab)]
        jax.block_until_ready(jg(*ja))
        r["jax_ms"] = timeit(lambda: jax.block_until_ready(jg(*ja)), args.repeats, 1) * 1e3
    if "torch" in found:
        torch = found["torch"]
        tt, th = torch.tensor(table, requires_grad=True), torch.tensor(head, requires_grad=True)
        ti, tl = torch.tensor(tok), torch.tensor(lab)
        tf = emb_loss(lambda t, i: torch.nn.functional.embedding(i, t), lambda z: torch.log_softmax(z, dim=-1))

        def tstep():
            val = tf(tt, th, ti, tl)
            return val, torch.autograd.grad(val, [tt, th])
        r["torch_eager_ms"] = timeit(tstep, args.repeats, 1) * 1e3
    results["embedding_grad"] = r

    # ---------------------------------------------------------------- report
    m = results["mlp_step"]
    print(f"MLP {'-'.join(map(str, sizes))} step, batch {batch}: xcs {m['xcs_ms']:.2f} ms "
          f"(first call {m['xcs_first_call_ms']:.0f} ms)"
          + "".join(f", {k[:-3]} {v:.2f} ms" for k, v in m.items() if k.endswith("_ms") and k.startswith(("jax",
                                                                                                             "torch"))))
    if "torch_eager_ms" in m:
        print(f"  vs PyTorch eager: {m['torch_eager_ms'] / m['xcs_ms']:.2f}x faster (target > 1)")
    if "jax_ms" in m:
        print(f"  vs jax.jit: xcs takes {m['xcs_ms'] / m['jax_ms']:.2f}x JAX's time (target <= 1.2)")
    p = results["per_example_grads"]
    print(f"per-example grads, {n} examples: vmap(grad) {p['xcs_vmap_ms']:.2f} ms (best {p['xcs_vmap_best_ms']:.2f}), "
          f"loop of grad {p['xcs_loop_ms']:.1f} ms (best {p['xcs_loop_best_ms']:.1f}): "
          f"{p['xcs_loop_ms'] / p['xcs_vmap_ms']:.1f}x of medians, {p['xcs_loop_best_ms'] / p['xcs_vmap_best_ms']:.1f}x "
          "of bests (target >= 20)"
          + "".join(f", {k[:-3]} {v:.2f} ms" for k, v in p.items() if k.endswith("_ms") and k.startswith(("jax",
                                                                                                             "torch"))))
    s = results["scan_rnn"]
    print(f"scan of {T} RNN steps: {s['xcs_scan_ms']:.2f} ms (best {s['xcs_scan_best_ms']:.2f}, first call "
          f"{s['xcs_scan_first_call_ms']:.0f} ms), Python loop of the jitted cell {s['python_loop_jitted_cell_ms']:.1f} ms "
          f"(best {s['python_loop_jitted_cell_best_ms']:.1f}): "
          f"{s['python_loop_jitted_cell_ms'] / s['xcs_scan_ms']:.1f}x of medians, "
          f"{s['python_loop_jitted_cell_best_ms'] / s['xcs_scan_best_ms']:.1f}x of bests (target >= 10)")
    e = results["embedding_grad"]
    print(f"embedding gradient, table {V}x{Dm}, {Bt}x{L} tokens: xcs {e['xcs_ms']:.2f} ms "
          f"(first call {e['xcs_first_call_ms']:.0f} ms)"
          + "".join(f", {k[:-3]} {v:.2f} ms" for k, v in e.items() if k.endswith("_ms") and k.startswith(("jax",
                                                                                                             "torch"))))
    if not found:
        print("(jax / torch not installed in this environment: their columns are not measured)")
    if args.json:
        write_json(args.json, dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                   machine=machine_info(), results=results))


if __name__ == "__main__":
    main()
