"""ember.xcs.config — ``Config`` and ``Presets`` (DESIGN.md §5).

Filled by the jit/config issue: a frozen ``Config(parallel, cache, profile,
max_workers, max_memory_mb)`` validated eagerly, and the SECURE / DEBUG /
LIGHTWEIGHT / SERIAL presets.  Nothing is defined here yet.
"""
