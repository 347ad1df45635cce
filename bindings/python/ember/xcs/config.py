"""ember.xcs.config — ``Config`` and ``Presets`` (DESIGN.md §5).

``Config`` is a frozen dataclass validated when it is made: a wrong type or
an out-of-range value raises :class:`~ember.xcs.errors.XCSValueError` (an
``XCSError``) naming the field, so a bad setting fails where it is written,
not deep inside a call::

    from ember.xcs import Config, Presets, jit

    @jit(config=Config(max_workers=4, profile=True))
    def pipeline(q): ...

    pipeline(q, _config=Presets.SERIAL)      # a per-call override

Fields:

``parallel`` (bool, True)
    Run independent orchestration calls concurrently.  False runs every call
    in program order on the caller's thread.
``cache`` (bool, True)
    Reuse compiled tensor programs across calls.  False traces every call.
``profile`` (bool, False)
    Record per-function statistics (``get_jit_stats``).  The environment
    variable ``EMBER_XCS_PROFILE=1`` turns it on for every function whose
    config leaves it False.
``max_workers`` (int >= 1 or None)
    Most orchestration calls in flight at once within one jitted call.
    None means ``DEFAULT_MAX_WORKERS`` (32).
``max_memory_mb`` (number > 0 or None)
    A ceiling on the memory of one jitted call's tensor intermediates (the
    memory plan's arena).  A call whose plan needs more raises
    ``XCSMemoryError`` before it runs anything.  None means no ceiling.
``device`` (str, ``"auto"``)
    Where tensor programs run: ``"auto"`` (a usable GPU, else the CPU),
    ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.  Asking for a CUDA device where
    none is usable raises ``XCSDeviceError`` at the call, with the reason
    ``ember.xcs.devices()`` gives (no driver, no GPU, no device runtime).
    ``XCS_DEVICE`` in the environment changes what ``"auto"`` picks.
``allow_tf32`` (bool, False)
    float32 matmuls on a GPU may use TF32 tensor cores (10-bit mantissa
    products, float32 accumulation; about 3e-4 relative error).  Off, they
    are computed in full float32.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import operator
import os

from ember.xcs.errors import XCSError, XCSTypeError, XCSValueError

__all__ = ["Config", "Presets", "DEFAULT_MAX_WORKERS", "profile_from_env"]

DEFAULT_MAX_WORKERS = 32
_MAX_WORKERS_LIMIT = 2**31 - 1  # the task graph counts in C ints


def _check_bool(name, v):
    if type(v) is not bool:
        raise XCSValueError(f"Config.{name} must be True or False, got {v!r} ({type(v).__name__})")


@dataclasses.dataclass(frozen=True)
class Config:
    """How a jitted function runs (see the module docstring for each field)."""

    parallel: bool = True
    cache: bool = True
    profile: bool = False
    max_workers: int | None = None
    max_memory_mb: float | None = None
    device: str = "auto"
    allow_tf32: bool = False

    def __post_init__(self):
        for name in ("parallel", "cache", "profile", "allow_tf32"):
            _check_bool(name, getattr(self, name))
        w = self.max_workers
        if w is not None:
            if type(w) is bool or not hasattr(type(w), "__index__"):  # numpy ints too, bools not
                raise XCSValueError(f"Config.max_workers must be an int >= 1 or None, got {w!r} "
                                    f"({type(w).__name__})")
            w = operator.index(w)
            object.__setattr__(self, "max_workers", w)
            if not 1 <= w <= _MAX_WORKERS_LIMIT:
                raise XCSValueError(f"Config.max_workers must be between 1 and {_MAX_WORKERS_LIMIT} (or None "
                                    f"for the default {DEFAULT_MAX_WORKERS}), got {w}")
        m = self.max_memory_mb
        if m is not None:
            if type(m) not in (int, float):
                raise XCSValueError(f"Config.max_memory_mb must be a number > 0 or None, got {m!r} "
                                    f"({type(m).__name__})")
            if not (m > 0) or math.isinf(m):
                raise XCSValueError(f"Config.max_memory_mb must be a finite number > 0, got {m}")
        from ember.xcs import _device

        _device.parse(self.device, "Config.device")

    @property
    def workers(self) -> int:
        """``max_workers`` with the default filled in."""
        return DEFAULT_MAX_WORKERS if self.max_workers is None else self.max_workers

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return dataclasses.asdict(self)

    def apply_overrides(self, overrides=None, **kwargs) -> "Config":
        """A new Config with some fields replaced (a dict and/or keywords);
        unknown field names raise ``XCSValueError`` listing the valid ones."""
        changes = dict(overrides or {})
        changes.update(kwargs)
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise XCSValueError(f"Config has no field {', '.join(map(repr, unknown))}; "
                                f"fields are {', '.join(sorted(fields))}")
        return dataclasses.replace(self, **changes)


_dataclass_init = Config.__init__


def _init(self, *args, **kwargs):
    """The dataclass's __init__, its TypeError for an unknown or repeated field raised as
    XCSTypeError (an XCSError, as every invalid configuration) naming the fields."""
    try:
        _dataclass_init(self, *args, **kwargs)
    except TypeError as e:
        if isinstance(e, XCSError):
            raise
        fields = ", ".join(f.name for f in dataclasses.fields(Config))
        raise XCSTypeError(f"Config: {e} (fields are {fields})") from None


_init.__doc__ = _dataclass_init.__doc__
_init.__signature__ = inspect.signature(_dataclass_init)
Config.__init__ = _init


class Presets:
    """Ready-made configurations."""

    SECURE = Config(cache=False, profile=False)   #: retrace every call, record nothing
    DEBUG = Config(profile=True)                  #: record per-function statistics
    LIGHTWEIGHT = Config(max_workers=2)           #: at most 2 orchestration calls at once
    SERIAL = Config(parallel=False)               #: program order on the caller's thread


def profile_from_env() -> bool:
    """True when ``EMBER_XCS_PROFILE`` asks for profiling (1/true/yes/on)."""
    return os.environ.get("EMBER_XCS_PROFILE", "").strip().lower() in ("1", "true", "yes", "on")
