"""Device names and placement: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``.

The CUDA backend is a separate module (``libxcs_cuda.so``) opened at first
use; ``ember.xcs.devices()`` says what it found and, when no GPU can be used,
why.  With a usable GPU, ``device="auto"`` (the default) runs jitted tensor
programs there: fused groups as NVRTC-compiled kernels, matmuls through
cuBLAS, and the few ops without a device kernel (gathers, scatters, sorts,
random numbers, argmax) on the host with their operands copied down and
their values copied back.  ``XCS_DEVICE=cpu`` (or ``cuda:N``) in the
environment changes what ``"auto"`` picks.  Asking for ``"cuda"`` where no
GPU is usable raises ``XCSDeviceError`` with the reason instead of silently
running elsewhere.

A jitted function run on a GPU returns Arrays on that device (``.device`` is
``"cuda:N"``).  Their values are copied to the host only when something
reads them there (numpy, printing, ``float()``, eager ops), once; another
jitted call on the same device reads the device copy, so a chain of jitted
calls moves nothing between host and device.
"""
from __future__ import annotations

import os
import re

from ember.xcs import _xcs
from ember.xcs.errors import XCSDeviceError, XCSValueError

_NAME = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")
_STATUS = []  # the CUDA entry of devices(), read once (the probe is immutable)


def parse(name, what="device"):
    """(kind, ordinal or None) of a device name; XCSValueError when malformed."""
    if not isinstance(name, str):
        name = getattr(name, "name", None) if not isinstance(name, str) else name
    m = _NAME.match(name) if isinstance(name, str) else None
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise XCSValueError(f"{what} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def cuda_status():
    """The CUDA entry of ``devices()`` as first probed."""
    if not _STATUS:
        _STATUS.append(next(d for d in _xcs._devices() if d["kind"] == "cuda"))
    return _STATUS[0]


def resolve(name, what="device"):
    """The device a program with this setting runs on: ``"cpu"`` or
    ``"cuda:N"``; raises XCSDeviceError when a CUDA device is asked for and
    none is usable."""
    kind, ordinal = parse(name, what)
    if kind == "auto":
        env = os.environ.get("XCS_DEVICE", "").strip()
        if env and env != "auto":
            return resolve(env, "XCS_DEVICE")
        return "cuda:0" if cuda_status().get("available") else "cpu"
    if kind == "cpu":
        return "cpu"
    status = cuda_status()
    if not status.get("available"):
        raise XCSDeviceError(f"{what}={name!r}: no usable CUDA device — {status.get('reason', 'unknown')}. "
                             f"Use device='auto' (or 'cpu') to run on the CPU.")
    gpus = status.get("gpus", [])
    if ordinal is not None and ordinal >= len(gpus):
        raise XCSDeviceError(f"{what}={name!r}: there are {len(gpus)} CUDA device(s)")
    return f"cuda:{ordinal or 0}"


def run_device(config):
    """The ``device=`` argument of Graph.run for a call under ``config``:
    None on the CPU, else ``"cuda:N"`` (with TF32 set as the config asks)."""
    where = resolve(getattr(config, "device", "auto") if config is not None else "auto")
    if where == "cpu":
        return None
    _xcs._cuda_set_tf32(bool(getattr(config, "allow_tf32", False)))
    return where


def describe():
    """One line for explain(): where programs run and why."""
    status = cuda_status()
    try:
        where = resolve("auto")
    except XCSDeviceError as e:  # XCS_DEVICE asks for a GPU there is not
        return f"device: none usable ({e})"
    if where != "cpu":
        gpus = status.get("gpus") or [{}]
        line = f"device: {where} ({gpus[0].get('name', 'GPU')}, sm_{gpus[0].get('compute_capability', '?')})"
        if len(gpus) > 1:  # what pmap over them combines its collectives with
            nccl = status.get("nccl")
            line += f"; {len(gpus)} GPUs, " + (f"NCCL {nccl} for pmap's collectives" if nccl else
                                              f"no NCCL for pmap's collectives ({status.get('nccl_reason') or '?'})")
        return line
    if status.get("available"):
        return "device: cpu (XCS_DEVICE asks for it; a CUDA device is available)"
    return f"device: cpu (CUDA unavailable: {status.get('reason', 'unknown')})"


def device_put(x, device="auto"):
    """``x`` as an xcs Array on ``device``: on the CPU, ``ember.xcs.asarray(x)``
    (zero-copy for numpy arrays; an Array on a GPU gives its host copy); on a
    GPU, an Array whose values were uploaded there (it keeps its host copy),
    which jitted functions running on that device read without a copy.  A
    pytree (dicts, lists, tuples of arrays: a model's parameters) is placed
    leaf by leaf, as JAX's; its other leaves (Python numbers, strings, None)
    are kept as they are."""
    where = resolve(device, "device_put: device")
    if isinstance(x, (dict, list, tuple)):
        from ember.xcs.api import pytree

        leaves, tree = pytree.flatten(x)
        return pytree.unflatten(tree, [_xcs._device_put(v, where) if _is_array(v) else v for v in leaves])
    return _xcs._device_put(x, where)


def _is_array(v):
    """An array leaf device_put moves (xcs Arrays, numpy arrays and scalars)."""
    import numpy as np

    return type(v) is _xcs.Array or isinstance(v, (np.ndarray, np.generic))


def block_until_ready(x):
    """``x`` (an Array or a pytree of them), once the GPU work computing
    each of its Arrays is done: the calling thread waits for the streams that
    write them (their events), without copying anything to the host and
    without waiting for other work on the device.  Lazy values are computed
    first; host values are returned at once.  For timing, as JAX's
    ``block_until_ready``."""
    from ember.xcs.api import pytree

    for leaf in pytree.flatten(x)[0]:
        if type(leaf) is _xcs.Array:
            leaf.block_until_ready()
    return x


def memory_stats(device="cuda:0"):
    """The CUDA caching allocator's counters for ``device``: current_bytes,
    peak_bytes, cached_bytes, allocs, reused (served from the cache),
    device_allocs (cuMemAlloc calls) and kernels (compiled so far)."""
    kind, ordinal = parse(device, "memory_stats: device")
    if kind != "cuda":
        raise XCSValueError(f"memory_stats: device must be 'cuda' or 'cuda:N', got {device!r}")
    return _xcs._cuda_stats(ordinal or 0)


def empty_cache(device="cuda:0"):
    """Gives the CUDA caching allocator's free blocks back to the driver."""
    kind, ordinal = parse(device, "empty_cache: device")
    if kind == "cuda":
        _xcs._cuda_empty_cache(ordinal or 0)
