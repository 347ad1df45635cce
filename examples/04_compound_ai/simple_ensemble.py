"""A majority-vote ensemble of model calls, with jit and vmap.

Starts the loopback model server (ember.xcs.bench.ModelServer: real HTTP,
50 +- 10 ms per call).  Five "models" (model names the server hashes into
different answers) each answer twelve multiple-choice arithmetic questions;
the server picks the right choice (listed first) with probability 0.7 per
(model, question), so each model alone gets about 70 % right and the
plurality vote of five gets more.  `vote` asks all five models about one
question and takes the plurality; `jit` runs its five calls concurrently and
`vmap` maps it over the questions as a concurrent map, so all 60 calls
overlap instead of running one after another.  Prints each model's accuracy,
the ensemble's, and the wall time of the plain (sequential) loop vs the
jitted map; checks the answers are identical and the speed-up is > 3x.
Run: PYTHONPATH=build/python .venv/bin/python examples/04_compound_ai/simple_ensemble.py
"""
import time
from collections import Counter

import numpy as np

from ember.api.decorators import mark_orchestration
from ember.xcs import Config, jit, vmap, wait
from ember.xcs.bench import ModelClient, ModelServer

MODELS = ("model-a", "model-b", "model-c", "model-d", "model-e")
LATENCY_MS, JITTER_MS = 50, 10
client = None  # set in main(), once the server is up


@mark_orchestration
def ask(model, question):
    """One model call (an HTTP request to the loopback server)."""
    return client.complete(question, model=model).strip()


def vote(question):
    """Every model answers `question`; the plurality answer wins (ties: the
    earliest model's answer)."""
    answers = wait([ask(m, str(question)) for m in MODELS])  # inside jit: five calls at once
    return Counter(answers).most_common(1)[0][0], tuple(answers)


def questions(rng, n):
    """Arithmetic questions; the right answer is listed first (the server's
    'correct' choice), three wrong ones after it."""
    out, truth = [], []
    for _ in range(n):
        a, b = rng.integers(10, 99, size=2)
        right = int(a + b)
        wrong = [right + d for d in rng.choice([-11, -10, -2, -1, 1, 2, 9, 10], size=3, replace=False)]
        out.append(f"What is {a} + {b}? choices: {right},{','.join(map(str, wrong))}")
        truth.append(str(right))
    return out, truth


def main():
    global client
    qs, truth = questions(np.random.default_rng(0), 12)
    with ModelServer(latency_ms=LATENCY_MS, jitter_ms=JITTER_MS) as server:
        client = ModelClient(server.url)
        ensemble = vmap(jit(vote), config=Config(max_workers=16))
        ensemble(np.array(qs[:1]))  # warm-up: classifies `ask`, starts the first pool threads

        t0 = time.perf_counter()
        seq = [vote(q) for q in qs]  # the plain function: 60 calls one after another
        t_seq = time.perf_counter() - t0

        t0 = time.perf_counter()
        winners, per_model = ensemble(np.array(qs))  # 12 questions x 5 models, concurrently
        t_par = time.perf_counter() - t0
        calls = server.requests

    per_model = [list(col) for col in per_model]  # per model: its answer to each question
    assert list(winners) == [w for w, _ in seq], (winners, seq)
    assert all(per_model[j] == [a[j] for _, a in seq] for j in range(len(MODELS)))

    n, k = len(qs), len(MODELS)
    print(f"{n} questions x {k} models through the loopback server ({LATENCY_MS} +- {JITTER_MS} ms per call)")
    print(f"example: {qs[0]!r} -> votes {[answers[0] for answers in per_model]} -> {winners[0]}")
    single = []
    for m, answers in zip(MODELS, per_model):
        single.append(float(np.mean([a == t for a, t in zip(answers, truth)])))
        print(f"  {m}: accuracy {single[-1]:.3f}")
    acc = float(np.mean([w == t for w, t in zip(winners, truth)]))
    print(f"  majority vote: accuracy {acc:.3f} (single models: mean {np.mean(single):.3f}, best {max(single):.3f})")
    speedup = t_seq / t_par
    print(f"plain loop {t_seq * 1e3:.0f} ms ({n * k} calls one after another), "
          f"vmap(jit(vote)) {t_par * 1e3:.0f} ms: {speedup:.1f}x ({calls} requests served in all)")

    assert acc > np.mean(single), (acc, single)
    assert speedup > 3, speedup
    print(f"ok: ensemble accuracy {acc:.2f} vs {np.mean(single):.2f} for a single model, "
          f"{speedup:.1f}x faster than sequential calls")


if __name__ == "__main__":
    main()
