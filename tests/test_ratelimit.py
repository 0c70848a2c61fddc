"""Rate limits per API key, on Redis: 429 with Retry-After and RateLimit-* headers; a Redis
outage lets requests through (fail open) rather than failing them. CORS from settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from stack.ports import free_port
from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key, wait_for

ORIGIN = "https://dashboard.example.org"


@pytest.fixture(scope="module")
def limited_gateway(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    # Windows of an hour: a slow machine cannot cross a window boundary mid-test.
    with extra_gateway(
        stack_env,
        tmp_root,
        "gateway-limited",
        RATE_LIMIT_SEARCH="3/hour",
        RATE_LIMIT_INGEST="2/hour",
        RATE_LIMIT_READ="50/hour",
        CORS_ORIGINS=f"{ORIGIN}, https://other.example.org",
    ) as gateway:
        yield gateway


def search(gateway: processes.Gateway, key: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}/api/v1/search?q=x", headers={"X-API-Key": key})


def test_over_the_limit_is_429_with_retry_after(
    limited_gateway: processes.Gateway, db: Engine
) -> None:
    key = make_key(db, "t-limits", "search")
    answers = [search(limited_gateway, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert 0 < int(answers[0].headers["ratelimit-reset"]) <= 3600
    assert answers[0].headers["ratelimit-policy"] == "3;w=3600"

    refused = search(limited_gateway, key)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["request_id"]
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-limit"] == "3"


def test_limits_are_per_key(limited_gateway: processes.Gateway, db: Engine) -> None:
    first, second = make_key(db, "t-limits", "search"), make_key(db, "t-limits", "search")
    for _ in range(3):
        search(limited_gateway, first)
    assert search(limited_gateway, first).status_code == 429
    assert search(limited_gateway, second).status_code == 200


def test_buckets_are_separate(limited_gateway: processes.Gateway, db: Engine) -> None:
    """Ingest has its own limit: exhausting it leaves search and status reads alone."""
    key = make_key(db, "t-limits", "ingest,search")
    headers = {"X-API-Key": key}
    posted = [
        httpx.post(
            f"{limited_gateway.url}/api/v1/events",
            json=event_body(),
            headers={**headers, "Idempotency-Key": new_key()},
        )
        for _ in range(3)
    ]
    assert [p.status_code for p in posted] == [202, 202, 429]
    assert posted[0].headers["ratelimit-limit"] == "2"
    assert search(limited_gateway, key).status_code == 200
    status = httpx.get(f"{limited_gateway.url}{posted[0].headers['location']}", headers=headers)
    assert status.status_code == 200
    assert status.headers["ratelimit-limit"] == "50"


def test_requests_without_a_valid_key_are_401_not_counted(
    limited_gateway: processes.Gateway,
) -> None:
    for _ in range(5):
        response = httpx.get(f"{limited_gateway.url}/api/v1/search?q=x")
        assert response.status_code == 401
        assert "ratelimit-limit" not in response.headers


def test_limiter_fails_open_when_redis_is_down(
    stack_env: dict[str, str], tmp_root: Path, db: Engine
) -> None:
    """Search needs only PostgreSQL and the embedder: with Redis gone it still answers,
    unlimited, and the gateway says so in its log."""
    key = make_key(db, "t-limits", "search")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with extra_gateway(
        stack_env, tmp_root, "gateway-no-redis", REDIS_URL=dead_redis, RATE_LIMIT_SEARCH="1/hour"
    ) as gateway:
        answers = [search(gateway, key) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
        assert "ratelimit-limit" not in answers[0].headers
        wait_for(
            lambda: "rate limiter unavailable" in gateway.output(), 10, what="fail-open warning"
        )
        metrics = httpx.get(f"{gateway.url}/metrics").text
        assert "eventsearch_rate_limiter_errors_total 1.0" in metrics


def test_cors_preflight_allows_configured_origin(limited_gateway: processes.Gateway) -> None:
    response = httpx.options(
        f"{limited_gateway.url}/api/v1/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_cors_refuses_other_origins(limited_gateway: processes.Gateway) -> None:
    response = httpx.options(
        f"{limited_gateway.url}/api/v1/search",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(gateway: processes.Gateway, api_key: str) -> None:
    response = httpx.get(
        f"{gateway.url}/api/v1/search?q=x", headers={"Origin": ORIGIN, "X-API-Key": api_key}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    preflight = httpx.options(
        f"{gateway.url}/api/v1/search",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
