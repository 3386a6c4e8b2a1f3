"""Stand-in model providers for the AI tests: no real model can run here, so these small HTTP
servers speak the providers' real wire formats — OpenAI-compatible chat completions as SSE
(`data: {...}` chunks, a final usage chunk, `data: [DONE]`), the Azure OpenAI deployment URL
shape, and Ollama's `/api/chat` NDJSON — and record every connection and request.

The upstream model name picks the behaviour:
  ok        three tokens and usage            r429   429 + Retry-After: 0.2 once, then ok
  e500      always HTTP 500                   slow   first byte after 3 s
  cut       two tokens, then the connection closes mid-stream
  hang      one token, then nothing until the client closes (the close time is recorded)
  flood     5,000 tokens whatever max_tokens says, usage claims 1,000,000 output tokens
  nousage   tokens but no usage fields (the server counts)
  router-api  a router model's JSON answer: {"decision": "api", "reason": …, "tier": "tier1"}
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StandIn:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.closed_at: list[float] = []
        self.r429_seen: set[str] = set()
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def setup(self) -> None:
                with standin.lock:
                    standin.connections += 1
                super().setup()

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with standin.lock:
                    standin.requests.append(
                        {"path": self.path, "headers": {k.title(): v for k, v in self.headers.items()}, "body": body}
                    )
                standin.serve(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ behaviours
    def serve(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "ok")
        ollama = h.path.startswith("/api/chat")
        if model == "e500":
            self._plain(h, 500, b'{"error": "boom"}')
            return
        if model == "r429":
            key = json.dumps(body.get("messages"))
            with self.lock:
                first = key not in self.r429_seen
                self.r429_seen.add(key)
            if first:
                self._plain(h, 429, b'{"error": "slow down"}', {"Retry-After": "0.2"})
                return
        if model == "slow":
            time.sleep(3)
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        h.end_headers()
        write = self._ndjson if ollama else self._sse
        try:
            if model == "flood":
                for _ in range(5000):
                    write(h, "word ")
                write(h, None, usage=(10, 1_000_000))
                return
            if model == "cut":
                write(h, "one ")
                write(h, "two ")
                h.wfile.flush()
                h.connection.shutdown(socket.SHUT_RDWR)
                return
            if model == "hang":
                write(h, "first ")
                h.wfile.flush()
                sock = h.connection
                while True:
                    ready, _, _ = select.select([sock], [], [], 0.002)
                    if ready and sock.recv(1, socket.MSG_PEEK) == b"":
                        with self.lock:
                            self.closed_at.append(time.time())
                        return
            pieces = ("Hello", " from", " stand-in")
            if model == "router-api":  # a router model's answer, in two tokens
                pieces = ('{"decision": "api", "reason": "long input",', ' "tier": "tier1"}')
            for piece in pieces:
                write(h, piece)
            write(h, None, usage=None if model == "nousage" else (12, 3))
        except (BrokenPipeError, ConnectionResetError):
            with self.lock:
                self.closed_at.append(time.time())

    @staticmethod
    def _plain(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _sse(h: BaseHTTPRequestHandler, piece: str | None, usage: tuple[int, int] | None = None) -> None:
        if piece is not None:
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": piece}}],
            }
            h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            return
        if usage is not None:
            chunk = {"id": "c1", "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
            h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()

    @staticmethod
    def _ndjson(h: BaseHTTPRequestHandler, piece: str | None, usage: tuple[int, int] | None = None) -> None:
        if piece is not None:
            h.wfile.write(
                json.dumps({"message": {"role": "assistant", "content": piece}, "done": False}).encode() + b"\n"
            )
            return
        last: dict[str, Any] = {"message": {"role": "assistant", "content": ""}, "done": True}
        if usage is not None:
            last.update(prompt_eval_count=usage[0], eval_count=usage[1])
        h.wfile.write(json.dumps(last).encode() + b"\n")
        h.wfile.flush()
