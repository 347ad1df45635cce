"""Device names and placement: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``.

The CUDA backend is a separate module (``libxcs_cuda.so``) opened at first
use; ``ember.xcs.devices()`` says what it found and, when no GPU can be used,
why.  This build's CUDA backend generates and compiles kernels (NVRTC) and
its device runtime runs them in its own tests, but jitted programs are not
routed to a GPU yet, so every tensor program runs on the CPU:
``device="auto"`` picks the CPU, and asking for ``"cuda"`` explicitly raises
``XCSDeviceError`` with the reason instead of silently running elsewhere.
"""
from __future__ import annotations

import re

from ember.xcs import _xcs
from ember.xcs.errors import XCSDeviceError, XCSValueError

_NAME = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse(name, what="device"):
    """(kind, ordinal or None) of a device name; XCSValueError when malformed."""
    if not isinstance(name, str):
        name = getattr(name, "name", None) if not isinstance(name, str) else name
    m = _NAME.match(name) if isinstance(name, str) else None
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise XCSValueError(f"{what} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def cuda_status():
    """The CUDA entry of ``devices()``."""
    return next(d for d in _xcs._devices() if d["kind"] == "cuda")


def resolve(name, what="device"):
    """The device a program with this setting runs on: ``"cpu"``, or raises
    XCSDeviceError when a CUDA device is asked for and none is usable."""
    kind, ordinal = parse(name, what)
    if kind in ("auto", "cpu"):
        if kind == "auto" and cuda_status().get("available"):
            return "cuda:0"
        return "cpu"
    status = cuda_status()
    if not status.get("available"):
        raise XCSDeviceError(f"{what}={name!r}: no usable CUDA device — {status.get('reason', 'unknown')}. "
                             f"Use device='auto' (or 'cpu') to run on the CPU.")
    gpus = status.get("gpus", [])
    if ordinal is not None and ordinal >= len(gpus):
        raise XCSDeviceError(f"{what}={name!r}: there are {len(gpus)} CUDA device(s)")
    return f"cuda:{ordinal or 0}"


def describe():
    """One line for explain(): where programs run and why."""
    status = cuda_status()
    if status.get("available"):
        return "device: cuda (auto)"
    return f"device: cpu (CUDA unavailable: {status.get('reason', 'unknown')})"


def device_put(x, device="auto"):
    """``x`` as an xcs Array on ``device``.  On the CPU this is
    ``ember.xcs.asarray(x)`` (zero-copy for numpy arrays).  A CUDA device
    raises XCSDeviceError saying why none is usable."""
    where = resolve(device, "device_put: device")
    if where != "cpu":  # a usable GPU: placement arrives with the device runtime
        raise XCSDeviceError(f"device_put: arrays on {where} need the CUDA device runtime, which this build lacks")
    return _xcs._asarray(x) if not isinstance(x, _xcs.Array) else x
