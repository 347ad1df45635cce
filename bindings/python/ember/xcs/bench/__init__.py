"""xcs-bench: the benchmark suite, and the loopback model server it talks to.

``xcs-bench --help`` (or ``python -m ember.xcs.bench``) runs the workloads;
``ModelServer`` / ``ModelClient`` are the HTTP model endpoint and client the
orchestration workloads and the examples use.  Method and JSON schema:
docs/benchmarks.md.
"""
from ember.xcs.bench.client import ModelClient, ModelError
from ember.xcs.bench.server import ModelServer, answer_text

__all__ = ["ModelServer", "ModelClient", "ModelError", "answer_text"]
