"""ember.xcs.transformations — ``vmap``, ``pmap``, ``scan``, ``grad``.

Filled by the transformations issue (DESIGN.md §4.8).  Nothing is defined
here yet.
"""
