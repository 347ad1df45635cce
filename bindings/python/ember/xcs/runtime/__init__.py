"""ember.xcs.runtime — the host task graph and orchestration execution.

Filled by the orchestration issue (DESIGN.md §4.7).  Nothing is defined here
yet.
"""
