"""What the HTTP layer answers outside the routes (issue 12, item 9): a trailing slash is
404 in the error shape with no redirect; uvicorn's own refusals are plain text, as the
README says."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.processes import Gateway


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/events/"),
        ("POST", "/api/v1/events/"),
        ("GET", "/api/v1/search/"),
        ("GET", "/health/"),
        ("GET", "/api/v1/export/events.csv/"),
    ],
)
def test_a_trailing_slash_is_404_without_a_redirect(
    client: httpx.Client, method: str, path: str
) -> None:
    answer = client.request(method, path, headers={"Host": "evil.example"}, json={})
    assert answer.status_code == 404, answer.text
    assert "location" not in answer.headers
    error = answer.json()["error"]
    assert error["code"] == "not_found"
    assert error["request_id"] == answer.headers["x-request-id"]


def test_a_malformed_request_is_a_400_in_the_error_shape(gateway: Gateway) -> None:
    """Refused by the HTTP parser before the app sees it, yet in the one JSON error shape
    (gateway/server.py answers h11's refusals itself; the README's Operations section)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_request"
