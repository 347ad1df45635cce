"""ember.xcs.jit — the ``jit`` decorator and its per-function statistics.

Filled by the jit issue (DESIGN.md §4.3).  Nothing is defined here yet.
"""
