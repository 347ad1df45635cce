"""What the GPU benchmark scripts share: timing (the median of REPS calls
after warm-up, through ember.xcs.bench.measure), the device-to-device copy
bandwidth measured in the same run (their limit), and the line a script
prints where no GPU is usable.  XCS_BENCH_SMALL=1: tiny sizes, to check a
script (e.g. on the mock device)."""
import json
import os

import numpy as np

import ember.xcs as xcs
from ember.xcs.bench.measure import timeit

SMALL = os.environ.get("XCS_BENCH_SMALL") == "1"
REPS = 2 if SMALL else 10


def timed(fn, warm=2):
    """Median ms of REPS calls after `warm` untimed ones."""
    return timeit(fn, REPS, warmup=warm)["median_s"] * 1e3


def copy_bandwidth():
    """GB/s of a device-to-device copy of 256 MB (read + written), through
    torch where it sees a GPU, else a jitted xcs copy; and which."""
    n = (1 << 16) if SMALL else (1 << 26)
    try:
        import torch

        if torch.cuda.is_available():
            a = torch.empty(n, device="cuda")
            b = torch.empty_like(a)
            return 8 * n / timed(lambda: (b.copy_(a), torch.cuda.synchronize())) / 1e6, "torch copy_"
    except ImportError:
        pass
    a = xcs.device_put(np.ones(n, np.float32), "cuda")
    f = xcs.jit(lambda x: x * 1.0)
    return 8 * n / timed(lambda: f(a).block_until_ready()) / 1e6, "xcs jitted copy"


def no_gpu(name):
    """True (after printing why, as the script's one figure) when no CUDA
    device is usable."""
    cuda = xcs.devices()[1]
    if cuda["available"]:
        return False
    print(json.dumps({"name": name, "skipped": f"no usable CUDA device: {cuda.get('reason')}"}))
    return True
