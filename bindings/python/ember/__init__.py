"""ember — the Python face of XCS, a tensor runtime written in C.

The tensor runtime lives in :mod:`ember.xcs` (arrays, numpy-named ops, random
numbers, DLPack, jit and the transformations, xcs-bench).  :mod:`ember.api`
holds the user-facing decorators (``mark_orchestration``, ...).  Importing
``ember`` alone loads nothing heavy.
"""

__version__ = "0.1.0"
