"""A small client for OpenAI-style ``/v1/completions`` endpoints.

Blocking (``complete``: what LLM SDKs mostly are, and what ``jit`` runs
concurrently on its task graph) and asyncio (``acomplete``: a real
non-blocking HTTP/1.1 request on asyncio streams, for the
``asyncio.gather`` peer).  Every failure is an :class:`ModelError` (an
``XCSError``) naming the URL and what went wrong: a dead server, a timeout
(never a hang: every request has one), an HTTP error with the server's
message, or a malformed answer.
"""
from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from ember.xcs.errors import XCSError

__all__ = ["ModelClient", "ModelError"]


class ModelError(XCSError):
    """A model call failed; ``status`` is the HTTP status (None when no
    answer came: refused, timed out, malformed)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ModelClient:
    """Calls ``{base_url}/v1/completions`` with ``model``; each request times
    out after ``timeout`` seconds."""

    def __init__(self, base_url, model="xcs-sim", timeout=10.0, max_tokens=16):
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.base_url = base_url.rstrip("/")
        self.model, self.timeout, self.max_tokens = model, float(timeout), int(max_tokens)
        u = urllib.parse.urlsplit(self.base_url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"base_url must be http://host[:port], got {base_url!r}")
        self._host, self._port = u.hostname, u.port or 80
        self._url = self.base_url + "/v1/completions"

    def _body(self, prompt, model):
        return json.dumps({"model": model or self.model, "prompt": prompt, "max_tokens": self.max_tokens}).encode()

    def _text(self, status, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            raise ModelError(f"{self._url}: HTTP {status} with a body that is not JSON: {raw[:120]!r}", status) from None
        if status != 200:
            msg = body.get("error", {}).get("message", raw[:200]) if isinstance(body, dict) else raw[:200]
            raise ModelError(f"{self._url}: HTTP {status}: {msg}", status)
        try:
            return body["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise ModelError(f"{self._url}: answer without choices[0].text: {str(body)[:200]}", status) from None

    def complete(self, prompt, model=None):
        """The completion text for ``prompt`` (blocking)."""
        req = urllib.request.Request(self._url, data=self._body(prompt, model),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return self._text(r.status, r.read().decode())
        except urllib.error.HTTPError as e:
            return self._text(e.code, e.read().decode(errors="replace"))
        except (socket.timeout, TimeoutError):
            raise ModelError(f"{self._url}: no answer within {self.timeout:g} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise ModelError(f"{self._url}: no answer within {self.timeout:g} s") from None
            raise ModelError(f"{self._url}: cannot reach the model server ({e.reason})") from None
        except OSError as e:  # reset / refused after connect
            raise ModelError(f"{self._url}: connection failed ({e})") from None

    async def acomplete(self, prompt, model=None):
        """The completion text for ``prompt`` on asyncio streams (one
        connection per request, ``Connection: close``)."""
        body = self._body(prompt, model)
        head = (f"POST /v1/completions HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")

        async def go():
            reader, writer = await asyncio.open_connection(self._host, self._port)
            try:
                writer.write(head.encode() + body)
                await writer.drain()
                raw = await reader.read()
            finally:
                writer.close()
            head_raw, _, payload = raw.partition(b"\r\n\r\n")
            status = int(head_raw.split(b" ", 2)[1])
            return self._text(status, payload.decode(errors="replace"))

        try:
            return await asyncio.wait_for(go(), self.timeout)
        except asyncio.TimeoutError:
            raise ModelError(f"{self._url}: no answer within {self.timeout:g} s") from None
        except (OSError, IndexError, ValueError) as e:
            raise ModelError(f"{self._url}: cannot reach the model server ({e})") from None
