"""ember.xcs._internal — legacy re-exports of the reference implementation.

Filled once the modules it re-exports exist (jit, transformations, config).
Nothing is defined here yet.
"""
