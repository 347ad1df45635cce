"""Retrieval + rerank: tensor code and model calls in one @jit function.

`search` embeds four queries and a 2000-document corpus with a small MLP
(plain numpy code), scores every query against every document (matmul +
softmax), takes each query's top 5, asks the model (the loopback
ember.xcs.bench.ModelServer, 30 ms per call) to grade each of those 20
(query, document) pairs, reranks by grade, and asks once more per query for
a summary of its graded documents (a call that depends on that query's five
grading calls).  Under @jit the numpy code is recorded lazily and run by
fused programs when a value is needed, the 20 grading calls run
concurrently, and each summary starts as soon as its own grades are in: two
round trips of latency instead of 24.  Prints the timing of the plain
function vs the jitted one and checks they return the same results.
Run: PYTHONPATH=build/python .venv/bin/python examples/05_mixed/retrieval_rerank.py
"""
import time

import numpy as np

from ember.api.decorators import mark_orchestration
from ember.xcs import Config, get_jit_stats, jit, wait
from ember.xcs.bench import ModelClient, ModelServer

N_DOCS, N_QUERIES, D_IN, TOP_K, LATENCY_MS = 2000, 4, 64, 5, 30
GRADES = {"relevant": 2, "partial": 1, "irrelevant": 0}
client = None  # set in main(), once the server is up


@mark_orchestration
def grade(query_id, doc_id):
    """A rerank call: how relevant is the document to the query?"""
    text = client.complete(f"query {query_id} vs document {doc_id}: relevance? choices: relevant,partial,irrelevant")
    return GRADES[text.strip()]


@mark_orchestration
def summarise(query_id, doc_ids, grades):
    """A summary of the graded documents, best first (`grades` arrive as values)."""
    ranked = [d for _, d in sorted(zip(grades, doc_ids), key=lambda gd: -gd[0])]
    return client.complete(f"summarise documents {ranked} for query {query_id}").strip()


def embed(x, p):
    """A 2-layer MLP, L2-normalised rows."""
    h = np.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]
    return h / np.sqrt((h * h).sum(axis=-1, keepdims=True))


def search(queries, corpus, p, temperature=0.05):
    q, d = embed(queries, p), embed(corpus, p)
    e = np.exp((q @ d.T) / temperature)
    probs = e / e.sum(axis=-1, keepdims=True)                   # (queries, docs)
    top = np.argsort(-np.asarray(probs), axis=-1)[:, :TOP_K]    # reading probs computes them
    grades = [[grade(i, int(j)) for j in top[i]] for i in range(len(top))]          # 20 calls at once
    summaries = [summarise(i, [int(j) for j in top[i]], grades[i]) for i in range(len(top))]  # each waits for its 5
    grades = np.array(wait(grades))
    # rerank: model grade first, retrieval probability breaks ties
    top_p = np.take_along_axis(np.asarray(probs), top, axis=-1)
    order = np.lexsort((-top_p, -grades), axis=-1)
    reranked = np.take_along_axis(top, order, axis=-1)
    return probs, top, grades, reranked, wait(summaries)


def main():
    global client
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((N_DOCS, D_IN))
    sources = rng.choice(N_DOCS, N_QUERIES, replace=False)
    queries = corpus[sources] + 0.3 * rng.standard_normal((N_QUERIES, D_IN))  # each query paraphrases a document
    p = {"w1": rng.standard_normal((D_IN, 128)) / 8, "b1": np.zeros(128), "w2": rng.standard_normal((128, 32)) / 11}

    fast = jit(search, config=Config(max_workers=32, profile=True))
    with ModelServer(latency_ms=LATENCY_MS) as server:
        client = ModelClient(server.url)
        t0 = time.perf_counter()
        want = search(queries, corpus, p)      # the plain function: numpy eagerly, calls one by one
        t_plain = time.perf_counter() - t0
        times = []
        for _ in range(3):                     # the first call also classifies the callees
            t0 = time.perf_counter()
            got = fast(queries, corpus, p)
            times.append(time.perf_counter() - t0)
    t_jit = min(times)

    np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=1e-9, atol=1e-12)
    for g, w in zip(got[1:4], want[1:4]):
        np.testing.assert_array_equal(np.asarray(g), w)
    assert list(got[4]) == list(want[4])
    top, grades, reranked = (np.asarray(a) for a in got[1:4])
    hits = sum(int(s in t) for s, t in zip(sources, top))
    s = get_jit_stats(fast)
    print(f"{N_QUERIES} queries x {N_DOCS} documents, top {TOP_K} each, "
          f"{N_QUERIES * TOP_K} grading + {N_QUERIES} summary calls at {LATENCY_MS} ms")
    for i in range(N_QUERIES):
        print(f"  query {i}: retrieved {top[i].tolist()} grades {grades[i].tolist()} -> reranked "
              f"{reranked[i].tolist()}; {got[4][i]!r}")
    print(f"the source document is in the top {TOP_K} for {hits}/{N_QUERIES} queries")
    print(f"plain function {t_plain * 1e3:.0f} ms, @jit {t_jit * 1e3:.0f} ms "
          f"(calls: {', '.join(f'{t * 1e3:.0f}' for t in times)} ms): {t_plain / t_jit:.1f}x; "
          f"peak concurrency {s['peak_concurrency']}, {s['orchestration_calls']} orchestration calls in "
          f"{s['calls']} jitted calls")

    assert hits == N_QUERIES, (sources, top)
    assert t_jit < t_plain / 3, (t_jit, t_plain)
    print(f"ok: jitted retrieval + rerank equals the plain function and is {t_plain / t_jit:.1f}x faster "
          f"({t_plain * 1e3:.0f} -> {t_jit * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
