"""The client's retry policy against answers scripted on demand: a 429 before the gateway
has rate limits, a 503 or 500 that never ends. (Retries against the real gateway: a
timeout, Redis down, a real 429, are in test_client.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from eventsearch import (
    Client,
    RateLimited,
    RetryEvent,
    RetryPolicy,
    ServerError,
    Unavailable,
)
from eventsearch.errors import error_from_response, parse_retry_after
from tests.conftest import event_body
from tests.scripted_server import ScriptedServer, accepted, error

FAST = RetryPolicy(attempts=20, deadline_s=60, backoff_s=0.05, backoff_max_s=0.5)


def test_429_with_retry_after_is_waited_out() -> None:
    # Per-key rate limits are not on main yet, so a scripted server plays the gateway.
    retries: list[RetryEvent] = []
    with (
        ScriptedServer(error(429, "rate_limited", retry_after="1"), accepted()) as server,
        Client(server.url, "k", retry=FAST, on_retry=retries.append) as es,
    ):
        result = es.send(event_body("limited"))
    assert result.id == accepted().body["id"]
    assert len(server.seen) == 2
    first, second = server.seen
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body  # the very same bytes: a replay, never "reused"
    [retry] = retries
    assert isinstance(retry.error, RateLimited) and retry.error.code == "rate_limited"
    assert retry.error.retry_after == 1 and retry.delay_s >= 1


def test_retries_stop_after_the_attempts() -> None:
    with (
        ScriptedServer(error(503, "database_unavailable", retry_after="0")) as server,
        Client(server.url, "k", retry=RetryPolicy(attempts=3, backoff_s=0.01)) as es,
        pytest.raises(Unavailable) as raised,
    ):
        es.send(event_body())
    assert len(server.seen) == 3
    assert raised.value.code == "database_unavailable" and raised.value.request_id == "req-1"


def test_no_wait_starts_that_would_end_past_the_deadline() -> None:
    # Retry-After 30 s against a 2 s deadline: the client gives up at once instead of
    # sleeping past its deadline.
    with (
        ScriptedServer(error(429, "rate_limited", retry_after="30")) as server,
        Client(server.url, "k", retry=RetryPolicy(deadline_s=2)) as es,
        pytest.raises(RateLimited),
    ):
        es.send(event_body())
    assert len(server.seen) == 1


def test_backoff_is_jittered_and_capped_without_retry_after() -> None:
    delays: list[float] = []
    policy = RetryPolicy(attempts=6, backoff_s=0.02, backoff_max_s=0.05)
    with (
        ScriptedServer(error(500, "internal_error")) as server,
        Client(server.url, "k", retry=policy, on_retry=lambda e: delays.append(e.delay_s)) as es,
        pytest.raises(ServerError),
    ):
        es.send(event_body())
    assert len(server.seen) == 6 and len(delays) == 5
    assert all(0 <= d <= 0.05 for d in delays)


def test_retry_after_is_read_as_seconds_or_http_date() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("2") == 2.0
    assert 25 <= (parse_retry_after(soon) or 0) <= 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_an_answer_not_in_the_error_shape_is_still_typed() -> None:
    proxy_page = httpx.Response(
        502, text="<html>Bad Gateway</html>", headers={"x-request-id": "r9"}
    )
    failure = error_from_response(proxy_page)
    assert isinstance(failure, Unavailable) and failure.retryable
    assert (failure.code, failure.status, failure.request_id) == ("http_502", 502, "r9")
