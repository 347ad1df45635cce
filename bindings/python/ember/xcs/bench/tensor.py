"""Tensor workloads: each figure runs xcs (jit) and every installed peer on
the same float32 data, checks xcs against numpy, and reports time, a rate
(GB/s or GFLOP/s where one applies) and ratios."""
from __future__ import annotations

import numpy as np

SIZES = {
    "ew_chain": {"quick": 1 << 18, "default": 1 << 24, "large": 1 << 26},
    "rows": {"quick": (256, 512), "default": (4096, 4096), "large": (8192, 8192)},
    "matmul": {"quick": 256, "default": 1024, "large": 2048},
    "mlp": {"quick": (64, 784, 128, 10), "default": (256, 784, 512, 10), "large": (1024, 784, 1024, 10)},
    "per_example": {"quick": 128, "default": 1024, "large": 4096},
    "scan": {"quick": 100, "default": 1000, "large": 10000},
}


def _chain_np(x):
    return np.tanh(x * 0.5 + 0.25) * np.exp(-(x * x)) + x


def _softmax_np(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm_np(x):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5)


def _torch_fns(torch):
    return {
        "ew_chain": lambda x: torch.tanh(x * 0.5 + 0.25) * torch.exp(-(x * x)) + x,
        "softmax": lambda x: torch.softmax(x, dim=-1),
        "layer_norm": lambda x: torch.nn.functional.layer_norm(x, x.shape[-1:], eps=1e-5),
        "matmul": lambda a, b: a @ b,
    }


def _jax_fns(jnp, jax):
    return {
        "ew_chain": lambda x: jnp.tanh(x * 0.5 + 0.25) * jnp.exp(-(x * x)) + x,
        "softmax": lambda x: jax.nn.softmax(x, axis=-1),
        "layer_norm": lambda x: (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5),
        "matmul": lambda a, b: a @ b,
    }


def _peer_runs(ctx, name, args_np):
    """(peer name, zero-arg fn) for every installed peer of figure `name`."""
    runs = []
    if ctx.peers.get("torch"):
        import torch

        tf = _torch_fns(torch)[name]
        targs = [torch.from_numpy(a) for a in args_np]
        runs.append(("torch", lambda: tf(*targs)))
        if ctx.torch_compile:
            cf = torch.compile(tf)
            runs.append(("torch.compile", lambda: cf(*targs)))
    if ctx.peers.get("jax"):
        import jax
        import jax.numpy as jnp

        jf = jax.jit(_jax_fns(jnp, jax)[name])
        jargs = [jnp.asarray(a) for a in args_np]
        runs.append(("jax.jit", lambda: jf(*jargs).block_until_ready()))
    return runs


def _figure(ctx, figure, size_label, xcs_fn, np_fn, args_np, *, unit, per_second=None, limit=None, peer_name=None,
            tol=1e-4):
    """Times xcs and the peers; returns the result record."""
    import ember.xcs as xcs

    got = np.asarray(xcs_fn(*args_np))
    want = np.asarray(np_fn(*[a.astype(np.float64) for a in args_np]))
    err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want))))) if want.size else 0.0
    r = ctx.time(lambda: xcs_fn(*args_np))
    peers = {"numpy": ctx.time(lambda: np_fn(*args_np))}
    for pname, fn in _peer_runs(ctx, peer_name or figure, args_np):
        peers[pname] = ctx.time(fn)
    return ctx.record("tensor", figure, size_label, r, peers, unit=unit, per_second=per_second, limit=limit,
                      check={"max_rel_err": err, "ok": err <= tol}, xcs_version=xcs.__version__)


SWEEP = {"quick": (12, 20, 2), "default": (12, 26, 2), "large": (12, 28, 2)}  # log2 n: from, to, step


def sweep(ctx):
    """Throughput vs size of the elementwise chain (xcs jit and numpy): where
    xcs's fixed costs stop mattering and where the caches end."""
    import ember.xcs as xcs

    f = xcs.jit(_chain_np)
    lo, hi, step = SWEEP[ctx.size]
    rows = []
    for e in range(lo, hi + 1, step):
        n = 1 << e
        x = np.random.default_rng(e).standard_normal(n).astype(np.float32)
        reps = max(3, min(50, (1 << 22) // n))
        tx = measure_min(lambda: f(x), reps)
        tn = measure_min(lambda: _chain_np(x), reps)
        rows.append({"n": n, "xcs_gbs": 8 * n / tx / 1e9, "numpy_gbs": 8 * n / tn / 1e9})
    return {"ew_chain_gbs_vs_n": rows}


def measure_min(fn, reps):
    from ember.xcs.bench import measure

    return measure.timeit(fn, reps, 1)["min_s"]


def run(ctx):
    import ember.xcs as xcs

    rng = np.random.default_rng(0)
    out = []
    bw = ctx.limits["memory_bandwidth"]

    n = SIZES["ew_chain"][ctx.size]
    x = rng.standard_normal(n).astype(np.float32)
    out.append(_figure(ctx, "ew_chain", f"n={n}", xcs.jit(_chain_np), _chain_np, [x], unit="GB/s",
                       per_second=8 * n / 1e9, limit=bw))
    ctx.tick()

    R, C = SIZES["rows"][ctx.size]
    x = rng.standard_normal((R, C)).astype(np.float32)
    out.append(_figure(ctx, "softmax", f"{R}x{C}", xcs.jit(_softmax_np), _softmax_np, [x], unit="GB/s",
                       per_second=8 * R * C / 1e9, limit=bw))
    ctx.tick()
    out.append(_figure(ctx, "layer_norm", f"{R}x{C}", xcs.jit(_layer_norm_np), _layer_norm_np, [x], unit="GB/s",
                       per_second=8 * R * C / 1e9, limit=bw, tol=1e-3))
    ctx.tick()

    m = SIZES["matmul"][ctx.size]
    a = (rng.standard_normal((m, m)) / np.sqrt(m)).astype(np.float32)
    b = (rng.standard_normal((m, m)) / np.sqrt(m)).astype(np.float32)
    out.append(_figure(ctx, "matmul", f"{m}^3", xcs.jit(lambda a, b: a @ b), lambda a, b: a @ b, [a, b],
                       unit="GFLOP/s", per_second=2 * m ** 3 / 1e9))
    ctx.tick()

    out.append(_mlp_step(ctx, rng))
    ctx.tick()
    out.append(_per_example(ctx, rng))
    ctx.tick()
    out.append(_scan(ctx, rng))
    ctx.tick()
    return out


N_TENSOR = 7


# ---------------------------------------------------------------- training figures


def _mlp_params(rng, dims):
    ps = []
    for i, o in zip(dims[:-1], dims[1:]):
        ps += [(rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32), np.zeros(o, np.float32)]
    return ps


def _mlp_loss(params, x, y):
    h = x
    for k in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[k] + params[k + 1])
    logits = h @ params[-2] + params[-1]
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1, keepdims=True)) + m
    return -((logits - lse) * y).sum() / x.shape[0]  # y: one-hot rows


def _mlp_step(ctx, rng):
    import ember.xcs as xcs

    B, D, H, K = SIZES["mlp"][ctx.size]
    params = _mlp_params(rng, [D, H, H, K])
    x = rng.standard_normal((B, D)).astype(np.float32)
    y = np.eye(K, dtype=np.float32)[rng.integers(0, K, B)]
    lr = np.float32(0.01)

    @xcs.jit
    def step(params, x, y):
        loss, g = xcs.value_and_grad(_mlp_loss)(params, x, y)
        return loss, [p - lr * gp for p, gp in zip(params, g)]

    loss0, _ = step(params, x, y)
    want = _mlp_loss([p.astype(np.float64) for p in params], x.astype(np.float64), y)
    err = abs(float(np.asarray(loss0)) - float(want)) / max(1.0, abs(float(want)))
    r = ctx.time(lambda: step(params, x, y))
    peers = {}
    if ctx.peers.get("torch"):
        import torch

        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def t_step(tp=tp):
            h = tx
            for k in range(0, len(tp) - 2, 2):
                h = torch.tanh(h @ tp[k] + tp[k + 1])
            loss = -(torch.log_softmax(h @ tp[-2] + tp[-1], dim=1) * ty).sum() / tx.shape[0]
            gs = torch.autograd.grad(loss, tp)
            with torch.no_grad():
                return loss, [p - 0.01 * g for p, g in zip(tp, gs)]
        peers["torch"] = ctx.time(t_step)
    if ctx.peers.get("jax"):
        import jax
        import jax.numpy as jnp

        def j_loss(ps, x, y):
            h = x
            for k in range(0, len(ps) - 2, 2):
                h = jnp.tanh(h @ ps[k] + ps[k + 1])
            return -(jax.nn.log_softmax(h @ ps[-2] + ps[-1]) * y).sum() / x.shape[0]

        @jax.jit
        def j_step(ps, x, y):
            loss, g = jax.value_and_grad(j_loss)(ps, x, y)
            return loss, [p - 0.01 * gp for p, gp in zip(ps, g)]
        jp, jx, jy = [jnp.asarray(p) for p in params], jnp.asarray(x), jnp.asarray(y)
        peers["jax.jit"] = ctx.time(lambda: jax.block_until_ready(j_step(jp, jx, jy)))
    return ctx.record("tensor", "mlp_step", f"{D}-{H}-{H}-{K} batch {B}", r, peers, unit="ms",
                      check={"max_rel_err": err, "ok": err < 1e-4})


def _per_example(ctx, rng):
    import ember.xcs as xcs

    B = SIZES["per_example"][ctx.size]
    params = _mlp_params(rng, [32, 64, 64, 10])
    x = rng.standard_normal((B, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, B)]

    def loss1(params, x, y):
        return _mlp_loss(params, x[None], y[None])

    pe = xcs.jit(xcs.vmap(xcs.grad(loss1), in_axes=(None, 0, 0)))
    g1 = xcs.jit(xcs.grad(loss1))
    got = pe(params, x, y)
    ref = g1(params, x[3], y[3])
    err = max(float(np.max(np.abs(np.asarray(a)[3] - np.asarray(b)))) for a, b in zip(got, ref))
    r = ctx.time(lambda: pe(params, x, y))
    loop_n = min(B, 64)
    loop = ctx.time(lambda: [g1(params, x[i], y[i]) for i in range(loop_n)])
    loop = {k: (v * B / loop_n if k.endswith("_s") else v) for k, v in loop.items()}  # scaled to the batch
    peers = {"python_loop_of_grad": loop}
    if ctx.peers.get("jax"):
        import jax
        import jax.numpy as jnp

        def j_loss1(ps, x, y):
            h = x[None]
            for k in range(0, len(ps) - 2, 2):
                h = jnp.tanh(h @ ps[k] + ps[k + 1])
            return -(jax.nn.log_softmax(h @ ps[-2] + ps[-1])[0] * y).sum()
        jf = jax.jit(jax.vmap(jax.grad(j_loss1), in_axes=(None, 0, 0)))
        jp, jx, jy = [jnp.asarray(p) for p in params], jnp.asarray(x), jnp.asarray(y)
        peers["jax.vmap(grad)"] = ctx.time(lambda: jax.block_until_ready(jf(jp, jx, jy)))
    return ctx.record("tensor", "per_example_grads", f"3-layer MLP, batch {B}", r, peers, unit="ms",
                      check={"max_rel_err": err, "ok": err < 1e-5})


def _scan(ctx, rng):
    import ember.xcs as xcs

    T, H, D = SIZES["scan"][ctx.size], 64, 32
    W = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    U = (rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
    xs = rng.standard_normal((T, D)).astype(np.float32)
    h0 = np.zeros(H, np.float32)

    def cell(h, x):
        h2 = np.tanh(h @ W + x @ U)
        return h2, h2.sum()

    jcell = xcs.jit(cell)

    def py_loop():
        h = h0
        for t in range(T):
            h, _ = jcell(h, xs[t])
        return h

    h, _ = xcs.scan(cell, h0, xs)
    want = h0.astype(np.float64)
    for t in range(T):
        want = np.tanh(want @ W + xs[t] @ U)
    err = float(np.max(np.abs(np.asarray(h) - want)))
    r = ctx.time(lambda: xcs.scan(cell, h0, xs))
    peers = {"python_loop_of_jit": ctx.time(py_loop)}
    if ctx.peers.get("jax"):
        import jax
        import jax.numpy as jnp

        jW, jU = jnp.asarray(W), jnp.asarray(U)

        @jax.jit
        def jscan(h0, xs):
            return jax.lax.scan(lambda h, x: ((hn := jnp.tanh(h @ jW + x @ jU)), hn.sum()), h0, xs)
        jh, jx = jnp.asarray(h0), jnp.asarray(xs)
        peers["jax.lax.scan"] = ctx.time(lambda: jax.block_until_ready(jscan(jh, jx)))
    return ctx.record("tensor", "scan_rnn", f"{T} steps, hidden {H}", r, peers, unit="ms",
                      check={"max_rel_err": err, "ok": err < 1e-3})
