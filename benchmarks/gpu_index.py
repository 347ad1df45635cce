"""Gathers on a GPU: an embedding lookup and its gradient (a training step
whose forward gathers rows of a table by token and whose backward
scatter-adds the rows' gradients back), argmax over the logits, and argsort
(a stable sort: of the logits' rows, and of one long row), against
PyTorch CUDA eager where torch sees a GPU and the device-to-device copy
bandwidth measured in the same run.  Every operand lives on the device; a
figure records the copies to the host one call makes (0: the gather, the
scatter, argmax and argsort ran as device kernels).  Each figure is the median of
REPS timed calls after warm-up, each call waited for.  Prints one JSON
object per figure.  Without a GPU it prints why and exits 0.

    PYTHONPATH=build/python python benchmarks/gpu_index.py
(XCS_BENCH_SMALL=1: tiny sizes, to check the script, e.g. on the mock device:
XCS_CUDA_MODULE=build/tests/c/libxcs_mockcuda.so XCS_DEVICE=cuda.)"""
import json

import numpy as np

import ember.xcs as xcs
from gpu_common import SMALL, copy_bandwidth, no_gpu, timed

V, D, B, K = (64, 8, 32, 4) if SMALL else (65536, 512, 32768, 16)  # vocabulary, width, tokens, classes
C = 16 if SMALL else 1024  # argmax: classes per row
N = 5000 if SMALL else 1 << 24  # argsort: one long row


def loss(table, w, tok):
    return ((table[tok] @ w) ** 2).mean()


def downloads_of(fn):
    """Copies to the host one call of fn makes."""
    before = xcs.memory_stats()["downloads"]
    xcs.block_until_ready(fn())
    return xcs.memory_stats()["downloads"] - before


def torch_figures(table, w, tok):
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    tt = torch.tensor(table, device="cuda", requires_grad=True)
    tw = torch.tensor(w, device="cuda", requires_grad=True)
    ti = torch.tensor(tok % V, device="cuda")

    def step():
        out = ((torch.nn.functional.embedding(ti, tt) @ tw) ** 2).mean()
        g = torch.autograd.grad(out, (tt, tw))
        torch.cuda.synchronize()
        return g

    logits = torch.tensor(np.random.default_rng(3).standard_normal((B, C)).astype(np.float32), device="cuda")
    row = torch.tensor(np.random.default_rng(4).standard_normal(N).astype(np.float32), device="cuda")
    return {"torch_step_ms": round(timed(step), 3),
            "torch_argmax_ms": round(timed(lambda: (logits.argmax(1), torch.cuda.synchronize())), 3),
            "torch_argsort_rows_ms": round(timed(lambda: (torch.argsort(logits, dim=1, stable=True),
                                                          torch.cuda.synchronize())), 3),
            "torch_argsort_long_ms": round(timed(lambda: (torch.argsort(row, stable=True),
                                                          torch.cuda.synchronize())), 3)}


def main():
    if no_gpu("gpu_index"):
        return
    bw, bw_how = copy_bandwidth()
    r = np.random.default_rng(0)
    table = (r.standard_normal((V, D)) * 0.1).astype(np.float32)
    w = (r.standard_normal((D, K)) * 0.1).astype(np.float32)
    tok = r.integers(-V, V, B)  # negative ones count from the end
    dt, dw, di = (xcs.device_put(a, "cuda") for a in (table, w, tok))
    step = xcs.jit(xcs.value_and_grad(loss, argnums=(0, 1)))
    run = lambda: step(dt, dw, di)  # noqa: E731
    ms = timed(lambda: xcs.block_until_ready(run()))
    value, (gt, gw) = run()
    _, (gt2, _) = run()  # the table's gradient sums repeated rows: the same bits every run
    ref_value, (rt, rw) = xcs.jit(xcs.value_and_grad(loss, argnums=(0, 1)), config=xcs.Config(device="cpu"))(
        table, w, tok)
    err = max(float(np.max(np.abs(np.asarray(g) - np.asarray(h)))) for g, h in ((gt, rt), (gw, rw)))
    # the forward gathers B rows (read + written), the backward scatter-adds them (read; the
    # table's gradient zeroed and written)
    moved = 4 * (2 * B * D + B * D + 2 * V * D)
    fig = {"name": "embedding_step", "shape": f"table {V}x{D}, {B} tokens, {K} outputs", "xcs_ms": round(ms, 3),
           "index_GBps": round(moved / ms / 1e6, 1), "copy_GBps": round(bw, 1), "copy_by": bw_how,
           "downloads_per_call": downloads_of(run), "max_abs_diff": err,
           "grad_repeatable": bool(np.array_equal(np.asarray(gt), np.asarray(gt2))),
           "value_rel_err": abs(float(np.asarray(value)) / float(np.asarray(ref_value)) - 1)}
    logits_h = r.standard_normal((B, C)).astype(np.float32)
    logits = xcs.device_put(logits_h, "cuda")
    pick = xcs.jit(lambda z: np.argmax(z, axis=1))
    amax = {"name": "argmax_rows", "shape": f"{B}x{C}",
            "xcs_ms": round(timed(lambda: xcs.block_until_ready(pick(logits))), 3),
            "downloads_per_call": downloads_of(lambda: pick(logits)),
            "equal": bool(np.array_equal(np.asarray(pick(logits)), np.argmax(logits_h, axis=1)))}
    order = xcs.jit(lambda z: np.argsort(z, axis=-1))
    long_h = r.standard_normal(N).astype(np.float32)
    long_d = xcs.device_put(long_h, "cuda")
    sorts = []
    for name, h, d in (("argsort_rows", logits_h, logits), ("argsort_long_row", long_h, long_d)):
        # a merge sort moves its 16-byte keys once a pass: reported as the passes' bytes
        passes = 1 + max(0, int(np.ceil(np.log2(h.shape[-1] / 2048))))
        ms = timed(lambda: xcs.block_until_ready(order(d)))
        sorts.append({"name": name, "shape": "x".join(map(str, h.shape)), "xcs_ms": round(ms, 3),
                      "merge_passes": passes - 1, "key_GBps": round(32 * h.size * passes / ms / 1e6, 1),
                      "downloads_per_call": downloads_of(lambda: order(d)),
                      "equal": bool(np.array_equal(np.asarray(order(d)), np.argsort(h, axis=-1, kind="stable")))})
    if not SMALL:
        t = torch_figures(table, w, tok)
        if "torch_step_ms" in t:
            fig["torch_eager_ms"] = t["torch_step_ms"]
            amax["torch_eager_ms"] = t["torch_argmax_ms"]
            sorts[0]["torch_eager_ms"] = t["torch_argsort_rows_ms"]
            sorts[1]["torch_eager_ms"] = t["torch_argsort_long_ms"]
    for f in (fig, amax, *sorts):
        print(json.dumps(f), flush=True)


if __name__ == "__main__":
    main()
