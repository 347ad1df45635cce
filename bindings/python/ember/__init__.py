"""ember — the Python face of XCS, a tensor runtime written in C.

The tensor runtime lives in :mod:`ember.xcs` (arrays, numpy-named ops, random
numbers, DLPack).  :mod:`ember.api` holds the user-facing decorators that the
orchestration issue fills in.  Importing ``ember`` alone loads nothing heavy.
"""

__version__ = "0.1.0"
