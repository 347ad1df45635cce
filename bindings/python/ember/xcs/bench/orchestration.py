"""Orchestration and mixed workloads against the loopback model server.

Every call is an HTTP request to ``ModelServer`` (latency L).  The "limit"
of each figure is its critical path: the number of dependent calls times the
measured time of one call alone (L plus the HTTP round trip, ~1-2 ms for
Python's http.server): a ratio to it of 1.0 is perfect overlap.  Many
concurrent calls also queue in the server itself (one Python process), which
costs every peer alike.  Peers run the same calls with a
ThreadPoolExecutor and with asyncio.gather (ModelClient.acomplete: real
non-blocking sockets) where the shape allows, and one after another (the
plain function, timed once: it is the slow baseline)."""
from __future__ import annotations

import asyncio
import concurrent.futures as cf

import numpy as np

SIZES = {"quick": 16, "default": 64, "large": 256}
N_ORCH = 4
N_MIXED = 1


def _ask(client):
    from ember.api.decorators import mark_orchestration

    @mark_orchestration
    def ask(prompt):
        return client.complete(prompt)
    return ask


def run(ctx):
    from ember.xcs import Config, jit, vmap, wait

    client, N = ctx.client, SIZES[ctx.size]
    L = ctx.call_s
    ask = _ask(client)
    pool = cf.ThreadPoolExecutor(max_workers=N)
    out = []
    try:
        # fan-out: N independent calls
        qs = [f"question {i}" for i in range(N)]

        @jit(config=Config(max_workers=N))
        def fan(qs):
            return [ask(q) for q in qs]

        async def a_fan():
            return await asyncio.gather(*[client.acomplete(q) for q in qs])

        want = [client.complete(q) for q in qs[:4]]
        ok = fan(qs)[:4] == want
        r = ctx.time(lambda: fan(qs))
        peers = {"ThreadPoolExecutor": ctx.time(lambda: list(pool.map(client.complete, qs))),
                 "asyncio.gather": ctx.time(lambda: asyncio.run(a_fan())),
                 "sequential": ctx.time_once(lambda: [client.complete(q) for q in qs])}
        out.append(ctx.record("orchestration", "fan_out", f"{N} calls", r, peers, unit="ms", ideal_s=L,
                              check={"ok": ok}))
        ctx.tick()

        # chain: dependent calls, nothing to overlap (the overhead figure)
        depth = max(4, N // 8)

        def chain_plain(q):
            for _ in range(depth):
                q = client.complete(q + " >")
            return q

        @jit
        def chain(q):
            for _ in range(depth):
                q = ask(q + " >")
            return q

        ok = wait(chain("start")) == chain_plain("start")
        r = ctx.time(lambda: wait(chain("start")))
        peers = {"sequential": ctx.time_once(lambda: chain_plain("start"))}
        out.append(ctx.record("orchestration", "chain", f"{depth} dependent calls", r, peers, unit="ms",
                              ideal_s=depth * L, check={"ok": ok}))
        ctx.tick()

        # diamond: one call, N/2 that depend on it, one that joins them
        W = max(2, N // 2)

        def diamond_plain(q):
            a = client.complete(q)
            bs = [client.complete(f"{a} part {i}") for i in range(W)]
            return client.complete("join " + "|".join(bs))

        @jit(config=Config(max_workers=W))
        def diamond(q):
            a = ask(q)
            bs = [ask(f"{a} part {i}") for i in range(W)]
            return ask("join " + "|".join(wait(bs)))

        def diamond_tpe(q):
            a = client.complete(q)
            bs = list(pool.map(client.complete, [f"{a} part {i}" for i in range(W)]))
            return client.complete("join " + "|".join(bs))

        async def diamond_aio(q):
            a = await client.acomplete(q)
            bs = await asyncio.gather(*[client.acomplete(f"{a} part {i}") for i in range(W)])
            return await client.acomplete("join " + "|".join(bs))

        ok = wait(diamond("d")) == diamond_plain("d")
        r = ctx.time(lambda: wait(diamond("d")))
        peers = {"ThreadPoolExecutor": ctx.time(lambda: diamond_tpe("d")),
                 "asyncio.gather": ctx.time(lambda: asyncio.run(diamond_aio("d"))),
                 "sequential": ctx.time_once(lambda: diamond_plain("d"))}
        out.append(ctx.record("orchestration", "diamond", f"1 + {W} + 1 calls", r, peers, unit="ms", ideal_s=3 * L,
                              check={"ok": ok}))
        ctx.tick()

        # vmap over prompts: each example makes two dependent calls
        prompts = [f"prompt {i}" for i in range(N)]

        def two_plain(p):
            return client.complete(client.complete(p) + " ?")

        def two(p):
            return ask(ask(p) + " ?")

        mapped = vmap(two, config=Config(max_workers=N))

        async def two_aio(p):
            return await client.acomplete(await client.acomplete(p) + " ?")

        async def vm_aio():
            return await asyncio.gather(*[two_aio(p) for p in prompts])

        batch = np.array(prompts)  # vmap maps the leading axis of an array (a list is a pytree of leaves)
        ok = list(mapped(batch))[:3] == [two_plain(p) for p in prompts[:3]]
        r = ctx.time(lambda: mapped(batch))
        peers = {"ThreadPoolExecutor": ctx.time(lambda: list(pool.map(two_plain, prompts))),
                 "asyncio.gather": ctx.time(lambda: asyncio.run(vm_aio())),
                 "sequential": ctx.time_once(lambda: [two_plain(p) for p in prompts])}
        out.append(ctx.record("orchestration", "vmap_prompts", f"{N} prompts x 2 calls", r, peers, unit="ms",
                              ideal_s=2 * L, check={"ok": ok}))
        ctx.tick()
    finally:
        pool.shutdown(wait=True)
    return out


# ---------------------------------------------------------------- mixed


def run_mixed(ctx):
    """Retrieval and rerank: embed queries with a small MLP, score them against
    a corpus (matmul + softmax), send each query's top-k documents to
    concurrent model calls, and aggregate each query's answers with one more
    call.  Tensor work and calls in one @jit function."""
    from ember.xcs import Config, jit, wait

    client, L = ctx.client, ctx.call_s
    Q = {"quick": 4, "default": 8, "large": 32}[ctx.size]
    D = {"quick": 2048, "default": 20000, "large": 100000}[ctx.size]
    K, F, E = 4, 64, 32
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((Q, F)).astype(np.float32)
    W1 = (rng.standard_normal((F, 64)) / 8).astype(np.float32)
    W2 = (rng.standard_normal((64, E)) / 8).astype(np.float32)
    corpus = rng.standard_normal((D, E)).astype(np.float32)
    ask = _ask(client)

    def scores_of(feats, W1, W2, corpus):
        emb = np.tanh(feats @ W1) @ W2
        s = emb @ corpus.T
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def pipeline_plain(feats, W1, W2, corpus):
        p = scores_of(feats, W1, W2, corpus)
        top = np.argsort(-p, axis=1)[:, :K]
        answers = [[client.complete(f"rerank q{i} doc{j}") for j in top[i]] for i in range(Q)]
        return p, [client.complete("aggregate: " + "|".join(a)) for a in answers]

    @jit(config=Config(max_workers=Q * K))
    def pipeline(feats, W1, W2, corpus):
        p = scores_of(feats, W1, W2, corpus)
        top = np.argsort(-np.asarray(p), axis=1)[:, :K]
        answers = [[ask(f"rerank q{i} doc{int(j)}") for j in top[i]] for i in range(Q)]
        return p, [ask("aggregate: " + "|".join(wait(a))) for a in answers]

    pool = cf.ThreadPoolExecutor(max_workers=Q * K)

    def pipeline_tpe(feats, W1, W2, corpus):
        p = scores_of(feats, W1, W2, corpus)
        top = np.argsort(-p, axis=1)[:, :K]
        futs = [[pool.submit(client.complete, f"rerank q{i} doc{j}") for j in top[i]] for i in range(Q)]
        finals = [pool.submit(lambda fs: client.complete("aggregate: " + "|".join(f.result() for f in fs)), fs)
                  for fs in futs]
        return p, [f.result() for f in finals]

    args = (feats, W1, W2, corpus)
    try:
        p, finals = pipeline(*args)
        p0, finals0 = pipeline_plain(*args)
        finals = [wait(f) for f in finals]
        err = float(np.max(np.abs(np.asarray(p) - p0)))
        ok = finals == finals0 and err < 1e-4
        r = ctx.time(lambda: wait(pipeline(*args)[1]))
        peers = {"ThreadPoolExecutor": ctx.time(lambda: pipeline_tpe(*args)),
                 "sequential": ctx.time_once(lambda: pipeline_plain(*args))}
    finally:
        pool.shutdown(wait=True)
    ctx.tick()
    return [ctx.record("mixed", "retrieve_rerank", f"{Q} queries x {D} docs, top-{K}", r, peers, unit="ms",
                       ideal_s=2 * L, check={"max_rel_err": err, "ok": ok})]
