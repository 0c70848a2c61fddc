"""An HTTP server that speaks Ollama's ``/api/embed`` and OpenAI's ``/v1/embeddings``.

It is the one stand-in of the test suite (a live model cannot run in CI). Vectors are a
deterministic bag of hashed words, normalised, so texts sharing words are close and a text
is closest to itself. Tests steer it through :class:`Behaviour`: slow answers, 429/500/503
(with ``Retry-After``), time-outs, NaN or wrong-sized vectors, per-text poison markers, and
a context limit enforced as Ollama enforces it with ``truncate: false`` (400, "the input
length exceeds the context length").
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTEXT_ERROR = "the input length exceeds the context length"  # Ollama's words (truncate: false)
NAN_MARK = "NAN!"  # an input containing this gets NaN values
POISON_MARK = "POISON!"  # a batch containing this is refused with 400 (like an over-long input)
CHAOS = ("429", "500", "hang", "slow")
HOLD_MAX_S = 60.0  # a held call answers after this even if the test never opens the gate


def stub_tokens(text: str) -> int:
    """Tokens as the stub counts them against its context: words and punctuation marks (a
    real tokenizer cuts finer; English runs about 6 characters to one of these)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def embed_text(text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        # Like a real model, every text gets a direction: a zero vector (punctuation only)
        # has no cosine to anything, and would make search scores NaN.
        vector[0], norm = 1.0, 1.0
    return [x / norm for x in vector]


@dataclass
class Behaviour:
    """What the next calls do. ``fail_times`` counts down; 0 means answer normally."""

    dim: int = 384
    delay_s: float = 0.0
    per_input_delay_s: float = 0.0
    fail_status: int = 503
    fail_times: int = 0
    retry_after: str | None = None
    hang_times: int = 0  # calls that never answer in time (sleep ``hang_s``)
    hang_s: float = 30.0
    wrong_dim: bool = False
    # Chaos: this share of calls fails at random (seeded): 429 + Retry-After, 500, a hang
    # past the client's timeout, or a slow but good answer, in equal parts.
    failure_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    failures: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    in_flight: int = 0  # calls being answered right now
    max_watched_in_flight: int = 0  # the most watched calls answered at once
    watched_in_flight: int = 0
    held: int = 0  # watched calls waiting at the gate now (hold, past hold_from)
    # Calls holding a text with this marker: a test's own calls, told apart from those of
    # other workers that share this stub.
    watch: str | None = None
    watched_calls: int = 0
    watched_sizes: list[int] = field(default_factory=list)  # inputs of each watched call
    # While set, watched calls wait (up to HOLD_MAX_S) until the test opens the gate: a test
    # can then act while a call is surely at the embedder, with no race against a delay.
    hold: bool = False
    hold_from: int = 0  # the first this many watched calls are answered even while holding
    gate: threading.Event = field(default_factory=threading.Event)
    # Ollama's context: an input over this many tokens (stub_tokens) is refused with 400, as
    # Ollama does when told not to truncate; None: no limit.
    context_tokens: int | None = None
    refused_over_context: int = 0
    max_input_tokens: int = 0  # the longest input received since the reset, in stub tokens
    max_input_chars: int = 0
    inputs: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)  # how often each text was embedded
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.delay_s = self.per_input_delay_s = 0.0
            self.fail_status, self.fail_times, self.retry_after = 503, 0, None
            self.hang_times, self.wrong_dim = 0, False
            self.failure_rate, self.failures = 0.0, {}
            self.watch, self.watched_calls, self.watched_sizes = None, 0, []
            self.max_watched_in_flight = 0
            self.hold, self.hold_from = False, 0
            self.gate.set()
            self.gate = threading.Event()
            self.calls = self.inputs = 0
            self.context_tokens, self.refused_over_context = None, 0
            self.max_input_tokens = self.max_input_chars = 0
            self.batch_sizes = []
            self.seen = Counter()


class _Handler(BaseHTTPRequestHandler):
    server: StubServer
    # Keep-alive, as Ollama and OpenAI-compatible servers do: clients reuse connections.
    # Headers and body then go out in one buffered write with Nagle off; written apart,
    # Nagle's algorithm and the client's delayed ACK add ~40 ms to every answer.
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *_: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, allow_nan=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/api/version", "/v1/models"):
            self._send(200, {"version": "stub", "data": []})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length))
        except ValueError:
            self._send(400, {"error": "invalid json"})
            return
        texts = request.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if self.path not in ("/api/embed", "/v1/embeddings") or not isinstance(texts, list):
            self._send(404, {"error": f"unknown endpoint {self.path}"})
            return
        b = self.server.behaviour
        with b.lock:
            b.calls += 1
            b.inputs += len(texts)
            b.seen.update(texts)
            b.batch_sizes.append(len(texts))
            longest = max((stub_tokens(str(t)) for t in texts), default=0)
            b.max_input_tokens = max(b.max_input_tokens, longest)
            b.max_input_chars = max([b.max_input_chars, *(len(str(t)) for t in texts)])
            over = b.context_tokens is not None and longest > b.context_tokens
            b.refused_over_context += int(over)
            watched = b.watch is not None and any(b.watch in str(t) for t in texts)
            b.watched_calls += int(watched)
            if watched:
                b.watched_sizes.append(len(texts))
            # With a watch set, the scripted hangs and failures are for the watched calls only.
            mine = b.watch is None or watched
            hang = b.hang_times > 0 and mine
            b.hang_times -= int(hang)
            fail = b.fail_times > 0 and mine
            b.fail_times -= int(fail)
            chaos = b.rng.choice(CHAOS) if b.rng.random() < b.failure_rate else None
            if chaos:
                b.failures[chaos] = b.failures.get(chaos, 0) + 1
            b.in_flight += 1
            b.watched_in_flight += int(watched)
            b.max_watched_in_flight = max(b.max_watched_in_flight, b.watched_in_flight)
            gate = b.gate if b.hold and watched and b.watched_calls > b.hold_from else None
            b.held += int(gate is not None)
        try:
            if gate is not None:
                gate.wait(HOLD_MAX_S)
            if over:
                self._send(400, {"error": CONTEXT_ERROR})
                return
            self._answer(request, texts, hang, fail, chaos)
        finally:
            with b.lock:
                b.in_flight -= 1
                b.watched_in_flight -= int(watched)
                b.held -= int(gate is not None)

    def _answer(
        self, request: dict[str, Any], texts: list[str], hang: bool, fail: bool, chaos: str | None
    ) -> None:
        b = self.server.behaviour
        delay = b.delay_s + b.per_input_delay_s * len(texts) + (b.hang_s if hang else 0)
        delay += {"hang": b.hang_s, "slow": 0.5}.get(chaos or "", 0.0)
        time.sleep(delay)
        if chaos in ("429", "500"):
            headers = {"Retry-After": "1"} if chaos == "429" else {}
            self._send(int(chaos), {"error": f"stub chaos {chaos}"}, headers)
            return
        if fail:
            headers = {"Retry-After": b.retry_after} if b.retry_after else {}
            self._send(b.fail_status, {"error": f"stub failure {b.fail_status}"}, headers)
            return
        if any(POISON_MARK in t for t in texts):
            self._send(400, {"error": "input length exceeds the context length"})
            return
        dim = b.dim + 1 if b.wrong_dim else b.dim
        vectors = [[math.nan] * dim if NAN_MARK in t else embed_text(t, dim) for t in texts]
        if self.path == "/api/embed":
            self._send(200, {"model": request.get("model"), "embeddings": vectors})
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ]
            self._send(200, {"object": "list", "model": request.get("model"), "data": data})


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.behaviour = Behaviour()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closed its socket before a hung answer: expected, not news.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def start(self) -> StubServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self
