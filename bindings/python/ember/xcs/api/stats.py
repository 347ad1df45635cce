"""ember.xcs.api.stats — per-function jit statistics (``reset_stats`` and friends).

Filled by the profiler issue (DESIGN.md §4.9).  Nothing is defined here yet.
"""
