"""Authentication comes first (issue 12, items 3 and 4): from the headers alone, before any
body is read; failures are limited per client address and unknown keys cached briefly.

The gateway trusts X-Forwarded-For from 127.0.0.1 (uvicorn's default trusted proxy), so the
tests play several client addresses from one machine."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.apikeys import hash_key
from common.migrate import upgrade_head
from common.models import ApiKey
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key, wait_for
from tests.rawhttp import exchange, request_head

SIXTEEN_MIB = 16 * 1024 * 1024
FAILURES = 3
NEGATIVE_TTL_S = 5


@pytest.fixture(scope="module")
def guarded(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    """Three failures an hour per address (an hour: no window ends mid-test); checked keys
    trusted for an hour, so a cached key's caller is seen to pass a blocked address."""
    with extra_gateway(
        stack_env,
        tmp_root,
        "gateway-auth-limits",
        AUTH_FAILURE_LIMIT=f"{FAILURES}/hour",
        AUTH_NEGATIVE_CACHE_TTL_S=str(NEGATIVE_TTL_S),
        AUTH_CACHE_TTL_S="3600",
    ) as gateway:
        yield gateway


def address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"


def search(gateway: processes.Gateway, key: str, client: str) -> httpx.Response:
    headers = {"X-API-Key": key, "X-Forwarded-For": client}
    return httpx.get(f"{gateway.url}/api/v1/search", params={"q": "x"}, headers=headers)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer es_wrong"}])
def test_unauthenticated_16_mib_of_invalid_json_is_401_unread(
    gateway: processes.Gateway, headers: dict[str, str]
) -> None:
    """The body is declared (16 MiB, the batch limit) but only its first bytes are sent: a
    server that read it before checking the key would wait for the rest, not answer."""
    head = request_head(
        "POST",
        "/api/v1/events/batch",
        {**headers, "Content-Type": "application/json", "Content-Length": str(SIXTEEN_MIB)},
    )
    answer = exchange(gateway.port, head + b"{not json at all", timeout=30)
    assert answer.status == 401
    error = answer.json()["error"]
    assert error["code"] == "unauthorized" and error["request_id"]
    assert "json" not in error["message"].lower()
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["connection"] == "close" and answer.closed


def test_unauthenticated_body_over_the_size_limit_is_401_not_413(
    gateway: processes.Gateway,
) -> None:
    """Nothing about the body is reported to a caller who has not said who it is."""
    head = request_head(
        "POST",
        "/api/v1/events",
        {"Content-Type": "application/json", "Content-Length": str(SIXTEEN_MIB * 4)},
    )
    assert exchange(gateway.port, head).status == 401


def test_authenticated_invalid_json_still_gets_its_422(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/events",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Idempotency-Key": new_key()},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"


def test_scope_is_checked_by_the_endpoint_after_authentication(
    gateway: processes.Gateway, db: Engine
) -> None:
    search_only = make_key(db, "t1", "search")
    response = httpx.post(
        f"{gateway.url}/api/v1/events",
        json=event_body(),
        headers={"X-API-Key": search_only, "Idempotency-Key": new_key()},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="ingest"' in response.headers["www-authenticate"]


def test_failures_past_the_limit_are_429_per_address(
    guarded: processes.Gateway, db: Engine
) -> None:
    blocked, other = address(), address()
    answers = [search(guarded, f"es_wrong_{uuid.uuid4()}", blocked) for _ in range(FAILURES)]
    assert [a.status_code for a in answers] == [401] * FAILURES

    refused = search(guarded, f"es_wrong_{uuid.uuid4()}", blocked)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "too_many_auth_failures" and error["request_id"]
    assert 3000 <= int(refused.headers["retry-after"]) <= 3600
    # The same wrong key again (negative cache) and a right key not yet checked: refused too,
    # the second without a database query.
    assert search(guarded, answers[0].request.headers["x-api-key"], blocked).status_code == 429
    valid = make_key(db, "t-auth-limits", "search")
    assert search(guarded, valid, blocked).status_code == 429

    assert search(guarded, "es_wrong", other).status_code == 401  # another address: its own count
    assert search(guarded, valid, other).status_code == 200


def test_a_cached_valid_key_passes_a_blocked_address(
    guarded: processes.Gateway, db: Engine
) -> None:
    """Someone else's guessing behind the same address (a NAT) does not stop a known key."""
    shared = address()
    valid = make_key(db, "t-auth-limits", "search")
    assert search(guarded, valid, shared).status_code == 200
    for _ in range(FAILURES + 1):
        search(guarded, f"es_wrong_{uuid.uuid4()}", shared)
    assert search(guarded, f"es_wrong_{uuid.uuid4()}", shared).status_code == 429
    assert search(guarded, valid, shared).status_code == 200


def test_unknown_key_is_refused_from_cache_without_a_query(
    guarded: processes.Gateway, db: Engine
) -> None:
    """A key unknown at first is remembered as unknown for AUTH_NEGATIVE_CACHE_TTL_S: stored
    afterwards, it is still refused until then (no query was made), and works after."""
    key = "es_" + secrets.token_urlsafe(32)
    assert search(guarded, key, address()).status_code == 401
    with Session(db) as session, session.begin():
        session.add(
            ApiKey(
                id=uuid.uuid4(),
                tenant="t-auth-limits",
                name="negative-cache",
                prefix=key[:10],
                key_hash=hash_key(key),
                scopes=["search"],
            )
        )
    assert search(guarded, key, address()).status_code == 401
    wait_for(
        lambda: search(guarded, key, address()).status_code == 200,
        timeout=30,
        what="the negative cache entry to expire",
    )


def test_health_and_docs_need_no_key(gateway: processes.Gateway) -> None:
    assert httpx.get(f"{gateway.url}/openapi.json").status_code == 200
    assert httpx.get(f"{gateway.url}/health").status_code in (200, 503)


def test_key_store_down_is_503_not_401(stack_env: dict[str, str], tmp_path: Path) -> None:
    """A key that cannot be checked is not a wrong key: 503 + Retry-After, and no failure
    is counted against the caller."""
    own = EmbeddedPostgres(tmp_path / "postgres", free_port())
    own.start()
    try:
        upgrade_head(own.url.replace("postgresql://", "postgresql+psycopg://"))
        env = {**stack_env, "DATABASE_URL": own.url, "AUTH_FAILURE_LIMIT": "1/hour"}
        proc = processes.gateway(env, tmp_path, "gateway-auth-db-down").start().wait_ready()
        try:
            own.stop()
            client = address()
            for _ in range(3):
                response = search(proc, f"es_unchecked_{uuid.uuid4()}", client)
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "database_unavailable"
                assert response.headers["retry-after"]
        finally:
            proc.stop()
    finally:
        own.stop()
