"""ember.xcs.jit — the ``jit`` decorator (compatibility path of ``ember.xcs.api.jit``).

This module is itself callable, so both spellings work::

    from ember.xcs import jit          # the decorator: @jit, @jit(static_argnums=...)
    import ember.xcs.jit               # this module (jit.jit, jit.explain, ...)
"""

import sys
import types

from ember.xcs.api.jit import DEFAULT_CACHE_SIZE, JittedFunction, explain, jit

__all__ = ["jit", "explain", "JittedFunction", "DEFAULT_CACHE_SIZE"]


class _CallableModule(types.ModuleType):
    def __call__(self, fn=None, **options):
        return jit(fn, **options)


sys.modules[__name__].__class__ = _CallableModule
