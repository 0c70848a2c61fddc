"""A tiny HTTP server that answers from a script and records what it was sent.

For the client's tests of answers the real gateway cannot be made to give on demand (429
before rate limits exist, a 503 that never ends). Each request takes the next answer of the
script; the last one repeats. Everything else in the client's tests uses the real gateway.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def error(status: int, code: str, retry_after: str | None = None) -> Answer:
    """An answer in the gateway's error shape."""
    body = {"error": {"code": code, "message": code.replace("_", " "), "request_id": "req-1"}}
    return Answer(status, body, {"Retry-After": retry_after} if retry_after else {})


def accepted(event_id: str = "0b9f3c1e-7d7e-4c1e-9a53-1b2c3d4e5f60") -> Answer:
    body = {"id": event_id, "status": "queued", "created_at": "2026-11-25T16:18:36.340530Z"}
    return Answer(202, body, {"Location": f"/api/v1/events/{event_id}"})


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        headers = {name.lower(): value for name, value in self.headers.items()}
        seen = Seen(self.command, self.path, headers, self.rfile.read(length))
        answer = self.server.take(seen)
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *script: Answer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self, seen: Seen) -> Answer:
        with self.lock:
            self.seen.append(seen)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def __enter__(self) -> ScriptedServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()
