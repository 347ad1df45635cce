"""Concurrent LLM/tool calls inside @jit, mixed with tensor code.

A fake model stands in for an LLM client (it sleeps, as a network call
would).  The jitted pipeline scores documents with numpy code, asks the
model about the best four concurrently, then asks once more with all four
answers (a dependent call): two round trips of latency instead of five.
Run: python examples/02_orchestration/concurrent_calls.py
"""
import time

import numpy as np

from ember.api.decorators import mark_orchestration
from ember.xcs import Config, get_jit_stats, jit, wait

LATENCY = 0.2


@mark_orchestration
def ask(prompt):
    time.sleep(LATENCY)  # a network round trip
    return f"answer to [{prompt}]"


@jit(config=Config(max_workers=8, profile=True))
def pipeline(docs, query):
    scores = np.tanh(docs @ query)                       # tensor work (fused, lazy)
    best = np.argsort(-np.asarray(scores))[:4]           # reading it computes it
    answers = [ask(f"doc {i} scored {float(scores[i]):.2f}") for i in best]  # 4 calls at once
    # str.join accepts only real str objects: wait() turns the Deferreds into them
    summary = ask("summarize: " + " | ".join(wait(answers)))
    return scores, summary


rng = np.random.default_rng(0)
docs, query = rng.standard_normal((100, 16)), rng.standard_normal(16)
t0 = time.perf_counter()
pipeline(docs, query)  # the first call also traces (and, on a GPU, compiles its kernels)
first = time.perf_counter() - t0
t0 = time.perf_counter()
scores, summary = pipeline(docs, query)
took = time.perf_counter() - t0
np.testing.assert_allclose(np.asarray(scores), np.tanh(docs @ query), rtol=1e-12)
s = get_jit_stats(pipeline)
print(summary[:80] + "...")
print(f"5 calls of {LATENCY:.1f} s in {took:.2f} s (one after another: {5 * LATENCY:.1f} s; the first call, "
      f"tracing too: {first:.2f} s); peak concurrency {s['peak_concurrency']}")
assert took < 3.5 * LATENCY, took
print("ok: orchestration calls overlapped, results equal the plain function's")
