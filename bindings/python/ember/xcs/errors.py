"""ember.xcs.errors — the XCS exception hierarchy.

The classes are created by the C extension (so C code raises them directly)
and live under this module's name::

    XCSError(RuntimeError)
    ├── XCSShapeError(XCSError, ValueError)        shapes do not agree
    ├── XCSValueError(XCSError, ValueError)        bad argument value (axis, size, empty reduction)
    ├── XCSTypeError(XCSError, TypeError)          dtype / Python type not supported
    ├── XCSIndexError(XCSError, IndexError)        index or axis out of bounds
    ├── XCSZeroDivisionError(XCSError, ZeroDivisionError)
    ├── XCSMemoryError(XCSError, MemoryError)
    └── XCSTracerError(XCSError, TypeError)       a traced value (inside ``jit``) used as concrete
                                                  data (bool(), float(), numpy conversion), or a
                                                  traced array that escaped its jit function

C statuses map as XCS_ERR_SHAPE -> XCSShapeError, XCS_ERR_VALUE -> XCSValueError, XCS_ERR_TYPE -> XCSTypeError,
XCS_ERR_INDEX -> XCSIndexError, XCS_ERR_ZERO_DIV -> XCSZeroDivisionError,
XCS_ERR_MEMORY -> XCSMemoryError, anything else -> XCSError.
"""

from ember.xcs._xcs import (
    XCSError,
    XCSIndexError,
    XCSMemoryError,
    XCSShapeError,
    XCSValueError,
    XCSTypeError,
    XCSZeroDivisionError,
    XCSTracerError,
)

__all__ = [
    "XCSError",
    "XCSShapeError",
    "XCSValueError",
    "XCSTypeError",
    "XCSIndexError",
    "XCSZeroDivisionError",
    "XCSMemoryError",
    "XCSTracerError",
]
