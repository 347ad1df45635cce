"""ember.api — user-facing helpers around XCS.

:mod:`ember.api.decorators` holds ``mark_orchestration`` (LLM / tool calls,
run concurrently under ``jit``), ``mark_tensor`` and ``mark_hybrid``.
"""
