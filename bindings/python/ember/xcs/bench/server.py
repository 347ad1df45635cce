"""A model server on loopback: OpenAI-style ``/v1/completions`` over real HTTP.

``xcs-bench`` starts one for its orchestration workloads (so a "model call"
is a socket round trip to another thread, not an in-process sleep), and the
examples use it the same way::

    from ember.xcs.bench import ModelServer, ModelClient

    with ModelServer(latency_ms=50, jitter_ms=10) as server:
        client = ModelClient(server.url)
        print(client.complete("Is 7 prime? choices: yes,no"))

Behaviour (all deterministic for a given seed, model and prompt):

* ``POST /v1/completions`` with JSON ``{"model", "prompt", "max_tokens"}``
  answers after ``latency_ms`` ± ``jitter_ms`` (uniform, drawn from a hash of
  the seed, model and prompt) with an OpenAI-shaped body
  ``{"id", "object": "text_completion", "model", "choices": [{"text",
  "index": 0, "finish_reason": "stop"}], "usage"}``.
* The text: when the prompt contains ``choices: a,b,c`` the answer is one of
  them — the first with probability ``accuracy`` (default 0.7), else another —
  so majority votes over several models are meaningful; otherwise
  ``"<model> says <8 hex digits of the hash>"``.
* Failures on purpose: ``error_rate`` (a fraction of requests, chosen by the
  hash) answer HTTP 500 with a JSON error; a prompt containing
  ``[[error]]`` always does; a prompt containing ``[[hang]]`` sleeps
  ``hang_s`` (clients see their timeout).
* ``GET /health`` -> ``{"ok": true, "requests": n}``; ``GET /v1/models``.

Run one by hand: ``python -m ember.xcs.bench.server --port 8000 --latency-ms 50``
(or ``ModelServer(..., process=True)``: a child process, no shared GIL).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["ModelServer", "answer_text"]


def _hash(*parts) -> int:
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


def answer_text(model: str, prompt: str, seed: int = 0, accuracy: float = 0.7) -> str:
    """The text the server answers for (model, prompt) — deterministic."""
    h = _hash(seed, model, prompt)
    low = prompt.lower()
    if "choices:" in low:
        opts = [o.strip() for o in prompt[low.rindex("choices:") + 8:].split("\n")[0].split(",") if o.strip()]
        if opts:
            u = (h & 0xFFFFFFFF) / 2**32
            if u < accuracy or len(opts) == 1:
                return opts[0]
            return opts[1 + (h >> 32) % (len(opts) - 1)]
    return f"{model} says {h & 0xFFFFFFFF:08x}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "xcs-model-server/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the bench prints its own progress
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, code, body):
        # status, headers and body in one write: separate small writes meet
        # Nagle's algorithm and the peer's delayed ACK (milliseconds each)
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        owner = self.server.owner
        if self.path == "/health":
            self._send(200, {"ok": True, "requests": owner.requests})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "xcs-sim", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self):  # noqa: N802
        owner = self.server.owner
        if self.path != "/v1/completions":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
            req = json.loads(self.rfile.read(n) or b"{}")
            prompt, model = str(req["prompt"]), str(req.get("model", "xcs-sim"))
        except (ValueError, KeyError, TypeError) as e:
            self._send(400, {"error": {"message": f"bad request: {e}", "type": "invalid_request_error"}})
            return
        with owner.lock:
            owner.requests += 1
        h = _hash(owner.seed, model, prompt)
        delay = owner.latency_ms + owner.jitter_ms * (2 * ((h >> 16) & 0xFFFF) / 0xFFFF - 1)
        if "[[hang]]" in prompt:
            delay = owner.hang_s * 1e3
        time.sleep(max(delay, 0.0) / 1e3)
        if "[[error]]" in prompt or ((h >> 40) & 0xFFFF) / 0x10000 < owner.error_rate:
            self._send(500, {"error": {"message": f"simulated failure for model {model}", "type": "server_error"}})
            return
        text = answer_text(model, prompt, owner.seed, owner.accuracy)
        self._send(200, {
            "id": f"cmpl-{h & 0xFFFFFFFFFFFF:012x}",
            "object": "text_completion",
            "created": 0,
            "model": model,
            "choices": [{"text": text, "index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                      "total_tokens": len(prompt.split()) + len(text.split())},
        })


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen() backlog: 5 (the default) drops bursts of connections for 1 s


class ModelServer:
    """A threaded HTTP model server on 127.0.0.1 (port 0: any free port).

    Use as a context manager or call ``start()`` / ``stop()``; ``url`` is its
    base URL once started.  Each request is served on its own thread, so
    concurrent calls overlap as they would against a real endpoint.
    ``process=True`` serves from a child process (``python -m
    ember.xcs.bench.server``), so the server's threads do not share the
    caller's GIL: what xcs-bench uses for its timings.
    """

    def __init__(self, latency_ms=50.0, jitter_ms=0.0, error_rate=0.0, accuracy=0.7, seed=0, port=0,
                 host="127.0.0.1", hang_s=30.0, process=False):
        if latency_ms < 0 or jitter_ms < 0 or jitter_ms > latency_ms:
            raise ValueError("need 0 <= jitter_ms <= latency_ms")
        if not 0.0 <= error_rate <= 1.0 or not 0.0 <= accuracy <= 1.0:
            raise ValueError("error_rate and accuracy are fractions in [0, 1]")
        self.latency_ms, self.jitter_ms, self.error_rate = float(latency_ms), float(jitter_ms), float(error_rate)
        self.accuracy, self.seed, self.hang_s = float(accuracy), int(seed), float(hang_s)
        self.host, self.port = host, int(port)
        self.requests = 0
        self.lock = threading.Lock()
        self.process = bool(process)  # serve from a child process (no GIL shared with the caller)
        self._httpd = None
        self._thread = None
        self._proc = None
        self._url = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("ModelServer is not running; call start() or use it in a with block")
        return self._url

    def _start_process(self):
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "ember.xcs.bench.server", "--port", str(self.port), "--latency-ms",
               str(self.latency_ms), "--jitter-ms", str(self.jitter_ms), "--error-rate", str(self.error_rate),
               "--accuracy", str(self.accuracy), "--seed", str(self.seed), "--hang-s", str(self.hang_s)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        if not line.startswith("serving "):
            err = self._proc.stderr.read() if self._proc.poll() is not None else ""
            self._proc.kill()
            self._proc = None
            raise RuntimeError(f"the model server process did not start: {line!r} {err[-500:]}")
        self._url = line.split()[1].rsplit("/v1/", 1)[0]
        return self

    def start(self) -> "ModelServer":
        if self._url is not None:
            return self
        if self.process:
            return self._start_process()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="xcs-model-server", daemon=True)
        self._thread.start()
        self._url = f"http://{self.host}:{httpd.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc.stderr.close()
            self._proc = None
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None
        self._url = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the loopback model server (OpenAI-style /v1/completions).")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--accuracy", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-s", type=float, default=30.0)
    a = ap.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with ModelServer(a.latency_ms, a.jitter_ms, a.error_rate, a.accuracy, a.seed, a.port, hang_s=a.hang_s) as s:
        print(f"serving {s.url}/v1/completions (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
