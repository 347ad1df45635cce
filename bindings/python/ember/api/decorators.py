"""ember.api.decorators — ``mark_orchestration``, ``mark_tensor``, ``mark_hybrid``.

Placeholder: these decorators classify callables for ``jit`` (an LLM/tool call
runs on the host task graph; tensor code is traced and fused).  They arrive
with the orchestration issue together with ``jit`` itself; until then this
module defines nothing, so code that uses them fails loudly at import instead
of silently running without the promised semantics.
"""
