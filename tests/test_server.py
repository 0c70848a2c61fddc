"""The HTTP server's own limits (issue 12, item 5), over raw sockets against a real
``python -m gateway.server``: header bytes and count (431), a head deadline against
slow-loris connections (408), and uvicorn's refusals in the one JSON error shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests import processes
from tests.conftest import event_body, event_count, extra_gateway, new_key
from tests.rawhttp import Answer, connect, exchange, read_answer, request_head, wait_closed

HEAD_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    """Default header limits (16 KiB, 100 fields); a one-second head deadline, bodies may
    pause two seconds."""
    with extra_gateway(
        stack_env,
        tmp_root,
        "gateway-server",
        HTTP_HEADER_TIMEOUT_S=str(HEAD_TIMEOUT_S),
        HTTP_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    ) as gateway:
        yield gateway


def assert_refused(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body[:300]
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code and error["message"] and error["request_id"]
    assert answer.headers["x-request-id"] == error["request_id"]
    assert answer.headers["connection"] == "close" and answer.closed


def test_a_one_megabyte_authorization_header_is_431(server: processes.Gateway) -> None:
    head = request_head("GET", "/api/v1/search?q=x", {"Authorization": "Bearer " + "a" * 2**20})
    answer = exchange(server.port, head)
    assert_refused(answer, 431, "request_header_fields_too_large")
    assert "16384 bytes" in answer.json()["error"]["message"]


def test_a_head_just_under_16_kib_reaches_the_app(server: processes.Gateway, api_key: str) -> None:
    headers = {"X-API-Key": api_key, "X-Padding": "p" * (16 * 1024 - 300)}
    assert exchange(server.port, request_head("GET", "/api/v1/search?q=x", headers)).status == 200


def test_more_than_100_header_fields_is_431(server: processes.Gateway) -> None:
    headers = {f"X-H{i}": "1" for i in range(2000)}
    answer = exchange(server.port, request_head("GET", "/health", headers))
    assert_refused(answer, 431, "request_header_fields_too_large")
    assert "more than 100 header fields" in answer.json()["error"]["message"]
    # 101 fields in all (Host is one) is one too many; 100 pass.
    over = exchange(
        server.port, request_head("GET", "/health", {f"X-H{i}": "1" for i in range(100)})
    )
    assert over.status == 431
    fits = exchange(
        server.port, request_head("GET", "/health", {f"X-H{i}": "1" for i in range(99)})
    )
    assert fits.status in (200, 503)


def test_half_a_head_then_silence_is_408_and_closed(server: processes.Gateway) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = read_answer(sock)
    assert_refused(answer, 408, "request_timeout")


def test_a_head_trickling_in_is_cut_off_at_the_deadline(server: processes.Gateway) -> None:
    """Slow-loris: a byte at a time keeps a connection alive for ever where only idle time
    is counted; the deadline runs from the head's start, so the trickle is answered 408."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.settimeout(0.1)
        deadline = time.monotonic() + 60
        data = b""
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            data += chunk
            if not chunk or b"\r\n\r\n" in data:
                break
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]


def test_an_idle_connection_is_closed_without_an_answer(server: processes.Gateway) -> None:
    with connect(server.port) as sock:
        assert wait_closed(sock)


def test_the_deadline_applies_to_each_request_of_a_kept_alive_connection(
    server: processes.Gateway,
) -> None:
    with connect(server.port) as sock:
        sock.sendall(request_head("GET", "/health"))
        assert read_answer(sock).status in (200, 503)
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        assert_refused(read_answer(sock), 408, "request_timeout")


def test_a_request_that_is_not_http_is_400_in_the_error_shape(server: processes.Gateway) -> None:
    assert_refused(exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n"), 400, "bad_request")


def test_ordinary_requests_pass(server: processes.Gateway, api_key: str) -> None:
    answer = exchange(
        server.port, request_head("GET", "/api/v1/search?q=x", {"X-API-Key": api_key})
    )
    assert answer.status == 200
    assert "server" not in answer.headers  # no version advertised


def post_head(api_key: str, key: str, length: int) -> bytes:
    return request_head(
        "POST",
        "/api/v1/events",
        {
            "X-API-Key": api_key,
            "Idempotency-Key": key,
            "Content-Type": "application/json",
            "Content-Length": str(length),
        },
    )


def test_a_body_that_stalls_is_408_and_nothing_is_stored(
    server: processes.Gateway, api_key: str, db: Engine
) -> None:
    key = new_key()
    body = json.dumps(event_body()).encode()
    with connect(server.port) as sock:
        sock.sendall(post_head(api_key, key, len(body)) + body[:10])
        answer = read_answer(sock)
    assert_refused(answer, 408, "request_timeout")
    assert "body paused" in answer.json()["error"]["message"]
    assert event_count(db, "idempotency_key = :k", k=key) == 0
    assert server.alive() and "Traceback" not in server.output()


def test_a_body_that_keeps_coming_may_take_longer_than_the_pause_limit(
    server: processes.Gateway, api_key: str
) -> None:
    """The limit is on each pause (nginx's client_body_timeout), not on the whole body."""
    body = json.dumps(event_body("slow " * 40)).encode()
    pieces = [body[i : i + 16] for i in range(0, len(body), 16)]
    started = time.monotonic()
    with connect(server.port) as sock:
        sock.sendall(post_head(api_key, new_key(), len(body)))
        for piece in pieces:
            # The sender's pace is what is tested (a trickle, each pause a tenth of the
            # limit), not a wait for a condition: load can only lengthen the whole.
            time.sleep(BODY_TIMEOUT_S / 10)
            sock.sendall(piece)
        answer = read_answer(sock)
    assert answer.status == 202, answer.body
    assert time.monotonic() - started > BODY_TIMEOUT_S  # the whole body took longer than one pause
