"""numpy's stacking, splitting, rearranging and product functions, composed
of ember.xcs.numpy's (so they work eagerly and under jit / grad / vmap alike).

Re-exported by ember.xcs.numpy; ``NUMPY_FUNCTIONS`` names the numpy functions
that dispatch here from ``Array`` arguments (ember.xcs._dispatch), dotted for
numpy submodules; ``LINALG`` holds the numpy.linalg ones."""

from ember.xcs import numpy as xnp  # noqa: F401  (attributes read at call time: xnp is still loading here)

__all__ = []
NUMPY_FUNCTIONS = ()
LINALG = {}
