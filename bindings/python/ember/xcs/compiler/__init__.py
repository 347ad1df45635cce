"""ember.xcs.compiler — tracing, fusion and compiled programs.

Filled by the tracing/fusion issue (DESIGN.md §4.2–4.5).  Nothing is defined
here yet.
"""
