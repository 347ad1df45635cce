"""numpy's integer, bit-level and floating-point decomposition ufuncs (and
their relatives), composed of ember.xcs.numpy's ops, so they work eagerly and
under jit / grad / vmap alike.

Re-exported by ember.xcs.numpy; ``NUMPY_UFUNCS`` names the numpy ufuncs whose
plain calls (``np.ldexp(x, 2)``) dispatch here from ``Array`` arguments
(ember.xcs._dispatch), ``NUMPY_FUNCTIONS`` the other numpy functions."""

import numpy as _np  # noqa: F401

from ember.xcs import _xcs  # noqa: F401
from ember.xcs import numpy as xnp  # noqa: F401  (attributes read at call time: xnp is still loading here)

__all__ = []

NUMPY_UFUNCS = ()
NUMPY_FUNCTIONS = ()
