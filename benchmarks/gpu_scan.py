"""scan on a GPU: an elementwise recurrence (an exponential moving average
with a per-channel decay, the y the carry) run as one kernel for the whole
loop (the default) against the same loop step by step (XCS_SCAN_KERNEL=0:
a launch per step), PyTorch CUDA eager (a Python loop of kernels) where
torch sees a GPU, and the device-to-device copy bandwidth measured in the
same run.  Two shapes: a wide one (bandwidth: each step reads a row of xs
and writes a row of ys) and a long narrow one (launch- and latency-bound).
Then an RNN's training gradient (scan_rnn_grad): jit(grad) of a loss
over `h = tanh(h @ W + x @ U)` for a minibatch, the scan one op of the
program (a forward loop stacking its carries, a reverse loop of the
step's VJP), against the CPU's value and PyTorch CUDA eager (a Python
loop, autograd) where torch sees a GPU.
Each figure is the median of REPS timed calls after warm-up; a call ends
when its carry (its gradient) has been copied to the host.  Prints one
JSON object per figure.  Without a GPU it prints why and exits 0.

    PYTHONPATH=build/python python benchmarks/gpu_scan.py
(XCS_BENCH_SMALL=1: tiny sizes, to check the script, e.g. on the mock device:
XCS_CUDA_MODULE=build/tests/c/libxcs_mockcuda.so XCS_DEVICE=cuda.)"""
import json
import os

import numpy as np

import ember.xcs as xcs
from gpu_common import SMALL, copy_bandwidth, no_gpu, timed

SHAPES = [(8, 64), (16, 8)] if SMALL else [(1024, 1 << 20), (20000, 4096)]  # (steps, channels)
RNN = (6, 4, 8, 16) if SMALL else (512, 32, 256, 512)  # steps, batch, inputs, hidden


def torch_ema(xs, c0, decay):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    x, c, d = (torch.from_numpy(v).cuda() for v in (xs, c0, decay))
    ys = torch.empty_like(x)

    def run():
        h = c
        for t in range(x.shape[0]):
            h = h * d + (1 - d) * x[t]
            ys[t] = h
        return h.cpu()

    return timed(run)


def main():
    if no_gpu("gpu_scan"):
        return
    bw, bw_how = copy_bandwidth()
    r = np.random.default_rng(0)
    for T, N in SHAPES:
        xs_h = r.standard_normal((T, N)).astype(np.float32)
        c0_h = r.standard_normal(N).astype(np.float32)
        decay = r.uniform(0.5, 0.99, N).astype(np.float32)
        xs, c0 = xcs.device_put(xs_h, "cuda"), xcs.device_put(c0_h, "cuda")

        def ema(c, x):
            c = c * decay + (1 - decay) * x
            return c, c

        def run():
            c, ys = xcs.scan(ema, c0, xs)
            return np.asarray(c), ys

        before = xcs.memory_stats()["scan_loops"]
        kernel_ms = timed(run)
        one_kernel = xcs.memory_stats()["scan_loops"] > before
        c_k, ys_k = run()
        os.environ["XCS_SCAN_KERNEL"] = "0"
        try:
            steps_ms = timed(run, warm=1)
            c_s, ys_s = run()
        finally:
            del os.environ["XCS_SCAN_KERNEL"]
        diff = max(float(np.max(np.abs(c_k - c_s))), float(np.max(np.abs(np.asarray(ys_k) - np.asarray(ys_s)))))
        moved = 2 * T * N * 4  # xs read, ys written (the carries stay in registers)
        fig = {"name": "scan_ema", "steps": T, "channels": N, "one_kernel": one_kernel,
               "kernel_ms": round(kernel_ms, 3), "steps_ms": round(steps_ms, 3),
               "speedup": round(steps_ms / kernel_ms, 2),
               "kernel_GBps": round(moved / kernel_ms / 1e6, 1), "copy_GBps": round(bw, 1), "copy_by": bw_how,
               "of_copy": round(moved / kernel_ms / 1e6 / bw, 3), "max_abs_diff": diff}
        t_ms = torch_ema(xs_h, c0_h, decay)
        if t_ms is not None:
            fig["torch_eager_ms"] = round(t_ms, 3)
        print(json.dumps(fig), flush=True)


def torch_rnn_grad(xs, W, U):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    x, u = torch.from_numpy(xs).cuda(), torch.from_numpy(U).cuda()
    w = torch.from_numpy(W).cuda().requires_grad_()

    def run():
        w.grad = None
        h = torch.zeros(x.shape[1], W.shape[0], device="cuda")
        for t in range(x.shape[0]):
            h = torch.tanh(h @ w + x[t] @ u)
        (h * h).sum().backward()
        return w.grad.cpu()

    return timed(run)


def rnn_grad():
    T, B, X, H = RNN
    r = np.random.default_rng(1)
    W = (r.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
    U = (r.standard_normal((X, H)) / np.sqrt(X)).astype(np.float32)
    xs_h = r.standard_normal((T, B, X)).astype(np.float32)

    def loss(W, xs):
        h, _ = xcs.scan(lambda h, x: (np.tanh(h @ W + x @ U), None), np.zeros((B, H), np.float32), xs)
        return (h * h).sum()

    g = xcs.jit(xcs.grad(loss))
    xs, Wd = xcs.device_put(xs_h, "cuda"), xcs.device_put(W, "cuda")
    ms = timed(lambda: np.asarray(g(Wd, xs)))
    got = np.asarray(g(Wd, xs))
    want = np.asarray(xcs.jit(xcs.grad(loss), config=xcs.Config(device="cpu"))(W, xs_h))
    fig = {"name": "scan_rnn_grad", "steps": T, "batch": B, "hidden": H, "xcs_ms": round(ms, 3),
           "rel_err_vs_cpu": float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))}
    t_ms = torch_rnn_grad(xs_h, W, U)
    if t_ms is not None:
        fig["torch_eager_ms"] = round(t_ms, 3)
    print(json.dumps(fig), flush=True)


if __name__ == "__main__":
    main()
    if not xcs.devices()[1]["available"]:
        raise SystemExit(0)
    rnn_grad()
