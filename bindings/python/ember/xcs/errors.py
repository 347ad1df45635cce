"""ember.xcs.errors — the XCS exception hierarchy.

The classes are created by the C extension (so C code raises them directly)
and live under this module's name::

    XCSError(RuntimeError)
    ├── XCSShapeError(XCSError, ValueError)        shapes do not agree
    ├── XCSValueError(XCSError, ValueError)        bad argument value (axis, size, empty reduction)
    │   ├── XCSOverflowError(XCSValueError, OverflowError) a Python int its integer dtype cannot hold
    │   └── XCSLinAlgError(XCSValueError, numpy.linalg.LinAlgError)
    │                                             a singular or not positive definite matrix
    ├── XCSTypeError(XCSError, TypeError)          dtype / Python type not supported
    ├── XCSIndexError(XCSError, IndexError)        index or axis out of bounds
    ├── XCSZeroDivisionError(XCSError, ZeroDivisionError)
    ├── XCSMemoryError(XCSError, MemoryError)
    ├── XCSTracerError(XCSError, TypeError)       a traced value (inside ``jit``) used as concrete
    │                                             data (bool(), float(), numpy conversion), or a
    │                                             traced array that escaped its jit function
    ├── XCSDeviceError(XCSError)                   a device that was asked for is not usable (the
    │                                             message says why: no driver, no GPU, no runtime)
    └── XCSExecutionError(XCSError)               an orchestration call (LLM / tool) raised inside a
                                                  jitted call: ``.node_id``, ``.callable``, and the
                                                  original exception as ``__cause__``

C statuses map as XCS_ERR_SHAPE -> XCSShapeError, XCS_ERR_VALUE -> XCSValueError, XCS_ERR_TYPE -> XCSTypeError,
XCS_ERR_INDEX -> XCSIndexError, XCS_ERR_ZERO_DIV -> XCSZeroDivisionError,
XCS_ERR_MEMORY -> XCSMemoryError, XCS_ERR_LINALG -> XCSLinAlgError,
XCS_ERR_OVERFLOW -> XCSOverflowError, anything else -> XCSError.
"""

from ember.xcs._xcs import (
    XCSError,
    XCSIndexError,
    XCSLinAlgError,
    XCSMemoryError,
    XCSShapeError,
    XCSValueError,
    XCSTypeError,
    XCSZeroDivisionError,
    XCSOverflowError,
    XCSTracerError,
)

__all__ = [
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
]


class XCSDeviceError(XCSError):
    """A device asked for (``Config(device="cuda")``, ``device_put``) cannot
    be used here; the message gives the reason ``ember.xcs.devices()``
    reports and how to run on the CPU instead."""


class XCSExecutionError(XCSError):
    """An orchestration call failed (or was cancelled because another one
    failed) inside a jitted call.

    ``node_id`` is the call's task id in that jitted call's task graph (0 for
    the first orchestration call made, 1 for the next, ...), ``callable`` its
    qualified name; the exception it raised is ``__cause__``.
    """

    def __init__(self, message, node_id=None, callable=None):  # noqa: A002 (the documented attribute name)
        super().__init__(message)
        self.node_id = node_id
        self.callable = callable
