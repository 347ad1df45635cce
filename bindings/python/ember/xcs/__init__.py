"""ember.xcs — the XCS tensor runtime.

``Array`` is an immutable n-dimensional array computed by the C runtime.  It
speaks numpy's protocols, so plain numpy code works on it::

    import numpy as np
    from ember import xcs
    from ember.xcs import numpy as xnp

    x = xcs.asarray(np.arange(6.0).reshape(2, 3))   # zero-copy from numpy
    y = np.tanh(x) @ x.T                            # computed by xcs, an Array
    np.asarray(y)                                   # zero-copy back to numpy

Submodules: :mod:`ember.xcs.numpy` (numpy-named functions), :mod:`ember.xcs.nn`
(activations, softmax, logsumexp), :mod:`ember.xcs.random` (counter-based
Philox keys), :mod:`ember.xcs.errors` (the exception hierarchy).

``jit`` traces a function once per abstract signature and replays the
recorded graph (see :mod:`ember.xcs.api.jit`); ``explain(f, *args)`` shows
that graph before and after optimisation.
"""

import os as _os

import numpy as _np  # noqa: F401  (numpy's own BLAS reads the environment first: left as it is)


def _load_extension():
    """Imports the C extension with OPENBLAS_THREAD_TIMEOUT (log2 of the
    cycles an idle OpenBLAS worker spins before it sleeps) at 18 unless the
    user set it: the library links its own OpenBLAS (big GEMMs, LAPACK), whose
    workers otherwise spin ~40 ms after it loads and after each threaded call,
    taking a core from xcs's OpenMP threads (on 2 cores the first ops after
    import took 5-7 ms instead of 0.07; eigh 1024^2 and svd 512^2 keep their
    speed at 18 (2^18 cycles, ~0.1 ms), not at 4).  OpenBLAS reads it once, as
    it loads; the environment is restored after."""
    key = "OPENBLAS_THREAD_TIMEOUT"
    mine = key not in _os.environ
    if mine:
        _os.environ[key] = "18"
    try:
        from ember.xcs import _xcs as ext
    finally:
        if mine:
            _os.environ.pop(key, None)
    return ext


_xcs = _load_extension()
from ember.xcs._xcs import Array, from_dlpack  # noqa: E402
from ember.xcs.errors import (
    XCSError,
    XCSIndexError,
    XCSMemoryError,
    XCSShapeError,
    XCSValueError,
    XCSLinAlgError,
    XCSTypeError,
    XCSZeroDivisionError,
    XCSOverflowError,
    XCSTracerError,
    XCSExecutionError,
    XCSDeviceError,
)
from ember.xcs.config import Config, Presets
from ember.xcs import numpy, nn, random  # noqa: E402  (numpy here is ember.xcs.numpy)
from ember.xcs.numpy import array, asarray
from ember.xcs import _dispatch  # registers Array.__array_ufunc__ / __array_function__
from ember.xcs.api.pytree import register_dataclass
from ember.xcs.api.jit import explain
from ember.xcs._device import block_until_ready, device_put, empty_cache, memory_stats
from ember.xcs.api.stats import get_jit_stats
from ember.xcs._orchestration import Deferred, wait
from ember.xcs import jit  # the callable module ember.xcs.jit: @jit and `import ember.xcs.jit` both work
from ember.xcs.transformations import (all_gather, axis_index, grad, pmap, pmax, pmean, psum, scan,
                                       value_and_grad, vmap)

__version__ = _xcs.__version__


def devices():
    """The backends of this build, one dict each.

    ``{"kind": "cpu", "name": "cpu", "threads": N, "blas": "openblas"|"blocked",
    "openmp": bool, "available": True}`` first, then the CUDA backend:
    ``{"kind": "cuda", "available": bool, "gpus": [{"name", "ordinal",
    "compute_capability", "sm_count", "memory_bytes"}], ...}`` and, when it
    cannot be used, a ``reason`` (no module in this build, no driver, no GPU,
    no device runtime), ``module``, ``module_loaded``, ``driver_version`` and
    ``nvrtc_version`` (0 when missing).  ``XCS_CUDA=0`` skips the probe.
    With a GPU, ``nccl`` is NCCL's version (``"2.28.9"``; pmap combines its
    collectives across GPUs through it), or None with ``nccl_reason``.
    """
    return _xcs._devices()


def default_device():
    """Where tensor programs run with ``Config(device="auto")``: ``"cpu"``,
    or ``"cuda:0"`` when the CUDA backend has a usable device."""
    from ember.xcs import _device

    return _device.resolve("auto")


def build_info():
    """Facts about this build: version, OpenMP, CBLAS, thread count, dtypes, limits."""
    return _xcs._build_info()


__all__ = [
    "Array",
    "array",
    "asarray",
    "from_dlpack",
    "devices",
    "default_device",
    "device_put",
    "block_until_ready",
    "empty_cache",
    "memory_stats",
    "build_info",
    "XCSError",
    "XCSShapeError",
    "XCSValueError",
    "XCSLinAlgError",
    "XCSTypeError",
    "XCSIndexError",
    "XCSZeroDivisionError",
    "XCSOverflowError",
    "XCSMemoryError",
    "XCSTracerError",
    "XCSExecutionError",
    "XCSDeviceError",
    "jit",
    "explain",
    "register_dataclass",
    "numpy",
    "nn",
    "random",
]
