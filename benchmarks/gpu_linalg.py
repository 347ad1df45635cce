"""Linear algebra on a GPU: solve (n right-hand sides), cholesky, slogdet,
eigvalsh and svdvals of batches of matrices (10000 of 4 x 4, 1000 of
32 x 32, 64 of 512 x 512) and of one 1024 x 1024 matrix, float32 and
float64, as xcs's device kernels (a block per matrix: src/cuda/linalg.c;
eigh below 8 rows and svd below 24 by Jacobi, as the CPU; bigger ones on
the host; solve, cholesky and slogdet of 256 rows or more through cuSOLVER
(src/cuda/solver.c), XCS_CUDA_SOLVER=0 for the kernels as before: the
figures that tune these rules), against PyTorch CUDA
(torch.linalg: cuSOLVER / MAGMA) where torch sees a GPU and against xcs on
the CPU in the same run.  Every operand lives on the device; a figure
records the copies to the host one call makes (0: the kernels ran on the
device) and the largest difference from numpy in float64.  Each figure is
the median of REPS timed calls after warm-up, each call waited for.
Prints one JSON object per figure.  Without a GPU it prints why and exits 0.

    PYTHONPATH=build/python python benchmarks/gpu_linalg.py
(XCS_BENCH_SMALL=1: tiny sizes, to check the script, e.g. on the mock device:
XCS_CUDA_MODULE=build/tests/c/libxcs_mockcuda.so XCS_DEVICE=cuda.)"""
import json
import os

import numpy as np

import ember.xcs as xcs
from gpu_common import SMALL, no_gpu, timed
from gpu_index import downloads_of

SIZES = [(50, 4), (8, 7)] if SMALL else [(10000, 4), (1000, 32), (64, 512), (1, 1024)]  # (batch, n)
if os.environ.get("XCS_LINALG_SIZES"):  # e.g. "1000x32,200x63": batch x n
    SIZES = [tuple(int(v) for v in s.split("x")) for s in os.environ["XCS_LINALG_SIZES"].split(",")]
OPS = {
    "solve": (lambda a, s, b: np.linalg.solve(a, b), "solve"),
    "cholesky": (lambda a, s, b: np.linalg.cholesky(s), "cholesky"),
    "slogdet": (lambda a, s, b: np.linalg.slogdet(s)[1], "slogdet"),
    "eigvalsh": (lambda a, s, b: np.linalg.eigvalsh(s), "eigvalsh"),
    "svdvals": (lambda a, s, b: np.linalg.svd(a, compute_uv=False), "svdvals"),
}


def torch_fn(name):
    import torch

    return {"solve": lambda a, s, b: torch.linalg.solve(a, b),
            "cholesky": lambda a, s, b: torch.linalg.cholesky(s),
            "slogdet": lambda a, s, b: torch.linalg.slogdet(s)[1],
            "eigvalsh": lambda a, s, b: torch.linalg.eigvalsh(s),
            "svdvals": lambda a, s, b: torch.linalg.svdvals(a)}[name]


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def main():
    if no_gpu("gpu_linalg"):
        return
    torch = torch_cuda()
    r = np.random.default_rng(0)
    for batch, n in SIZES:
        a64 = r.standard_normal((batch, n, n)) + np.sqrt(n) * np.eye(n)
        s64 = a64 @ np.swapaxes(a64, -1, -2) + np.eye(n)
        b64 = r.standard_normal((batch, n, n))
        for dt in (np.float32, np.float64):
            host = [v.astype(dt) for v in (a64, s64, b64)]
            dev = [xcs.device_put(v, "cuda") for v in host]
            cpu = [xcs.asarray(v) for v in host]
            for name, (fn, _) in OPS.items():
                if os.environ.get("XCS_LINALG_OPS") and name not in os.environ["XCS_LINALG_OPS"].split(","):
                    continue
                want = fn(a64, s64, b64)
                got = np.asarray(fn(*dev))
                fig = {"name": name, "batch": batch, "n": n, "dtype": np.dtype(dt).name,
                       "xcs_ms": round(timed(lambda: xcs.block_until_ready(fn(*dev))), 3),
                       "xcs_cpu_ms": round(timed(lambda: np.asarray(fn(*cpu))), 3),
                       "downloads_per_call": downloads_of(lambda: fn(*dev)),
                       "max_rel_diff": float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))}
                if torch is not None and not SMALL:
                    tv = [torch.tensor(v, device="cuda") for v in host]
                    tf = torch_fn(name)
                    fig["torch_ms"] = round(timed(lambda: (tf(*tv), torch.cuda.synchronize())), 3)
                print(json.dumps(fig), flush=True)


if __name__ == "__main__":
    main()
