"""Batch processing: vmap as a concurrent map, capped by Config(max_workers).

Starts the loopback model server (ember.xcs.bench.ModelServer, 50 ms per
call).  Each of 64 items gets a little tensor work (a feature vector through
a tanh layer, lazily fused) and one model call that labels it from its score.
`vmap` over a function with an orchestration call runs the items as a
concurrent map on the host task graph, at most `Config.max_workers` at once.
Times 1, 4, 16 and 64 workers, prints wall time, throughput and the peak
number of calls in flight, and checks the results are the same for every
worker count (and equal numpy's scores), the cap holds, and 16 workers are
at least 5x faster than 1.  The latency is long next to the Python work of
an HTTP round trip (client and server share this process and its GIL, and
that work is several times slower under AddressSanitizer, where CI runs this
too), so the check measures the concurrency, not the interpreter.
Run: PYTHONPATH=build/python .venv/bin/python examples/06_performance_optimization/batch_processing.py
"""
import threading
import time

import numpy as np

from ember.api.decorators import mark_orchestration
from ember.xcs import Config, vmap
from ember.xcs.bench import ModelClient, ModelServer

N_ITEMS, LATENCY_MS, WORKERS = 64, 50, (1, 4, 16, 64)
client = None  # set in main(), once the server is up
_lock = threading.Lock()
_in_flight = {"now": 0, "peak": 0}


@mark_orchestration
def label(item_id, score):
    """One model call: label the item from its score (and count calls in flight)."""
    with _lock:
        _in_flight["now"] += 1
        _in_flight["peak"] = max(_in_flight["peak"], _in_flight["now"])
    try:
        return client.complete(f"item {item_id} has score {score:+.3f}; label it. choices: keep,review,drop").strip()
    finally:
        with _lock:
            _in_flight["now"] -= 1


def process(item_id, x, w):
    """One item: score it with a small tanh layer, then ask the model for a label."""
    score = np.tanh(x @ w).mean()   # tensor work, computed when the call reads it
    return score, label(int(item_id), float(score))


def main():
    rng = np.random.default_rng(0)
    ids = np.arange(N_ITEMS)
    xs = rng.standard_normal((N_ITEMS, 64))
    w = rng.standard_normal((64, 32)) / 8
    want_scores = np.tanh(xs @ w).mean(axis=1)

    global client
    rows, results = [], {}
    with ModelServer(latency_ms=LATENCY_MS) as server:
        client = ModelClient(server.url)
        vmap(process, in_axes=(0, 0, None))(ids[:4], xs[:4], w)  # warm-up: classification, pool threads
        for n in WORKERS:
            batch = vmap(process, in_axes=(0, 0, None), config=Config(max_workers=n))
            _in_flight["peak"] = 0
            t0 = time.perf_counter()
            scores, labels = batch(ids, xs, w)
            took = time.perf_counter() - t0
            results[n] = (np.asarray(scores), list(labels))
            rows.append((n, took, N_ITEMS / took, _in_flight["peak"]))

    print(f"{N_ITEMS} items, one {LATENCY_MS} ms model call each (plus a tanh layer), vmap with Config(max_workers=n)")
    print(f"{'workers':>8} {'wall ms':>9} {'items/s':>9} {'peak in flight':>15} {'speed-up':>9}")
    base = rows[0][1]
    for n, took, rate, peak in rows:
        print(f"{n:>8} {took * 1e3:>9.0f} {rate:>9.0f} {peak:>15} {base / took:>8.1f}x")
    counts = {k: results[1][1].count(k) for k in ("keep", "review", "drop")}
    print(f"labels: {counts}")
    print(f"ideal (latency only): {N_ITEMS * LATENCY_MS} ms with 1 worker, {N_ITEMS * LATENCY_MS / 16:.0f} ms with 16; "
          f"past ~16 workers the Python work of each HTTP round trip "
          f"(client and server share this process and its GIL: ~{rows[-1][1] / N_ITEMS * 1e3:.1f} ms per call here) "
          f"is the limit, not the latency")

    for n in WORKERS:
        np.testing.assert_allclose(results[n][0], want_scores, rtol=1e-12)
        assert results[n][1] == results[1][1], n
    assert all(peak <= n for n, _, _, peak in rows), rows
    t = {n: took for n, took, _, _ in rows}
    assert t[1] > t[4] > t[16], t
    assert t[1] / t[16] >= 5, t
    print(f"ok: {N_ITEMS} items in {t[1] * 1e3:.0f} ms with 1 worker, {t[16] * 1e3:.0f} ms with 16 "
          f"({t[1] / t[16]:.1f}x), {t[64] * 1e3:.0f} ms with 64 ({t[1] / t[64]:.1f}x)")


if __name__ == "__main__":
    main()
