"""ember.xcs.api — compatibility namespace of the reference implementation.

Filled by the profiler/jit issue (``ember.xcs.api.stats``: ``get_jit_stats``,
``reset_stats``).  Nothing is defined here yet.
"""
