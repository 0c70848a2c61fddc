"""/health: 200 with every dependency up, 503 naming the one that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from common.migrate import upgrade_head
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key


def test_health_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "embedder": "ok"}


@pytest.fixture
def gateway_on_own_redis(
    stack_env: dict[str, str], own_redis: EmbeddedRedis, tmp_path: Path
) -> Iterator[processes.Gateway]:
    with extra_gateway(stack_env, tmp_path, "gateway-own-redis", REDIS_URL=own_redis.url) as proc:
        yield proc


def test_redis_down_is_503_on_health_and_ingest_and_recovers(
    gateway_on_own_redis: processes.Gateway, own_redis: EmbeddedRedis, api_key: str
) -> None:
    headers = {"X-API-Key": api_key}
    with httpx.Client(base_url=gateway_on_own_redis.url, timeout=30, headers=headers) as client:
        assert client.get("/health").status_code == 200
        own_redis.stop()

        health = client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["redis"].startswith("unavailable")
        assert body["database"] == "ok" and body["embedder"] == "ok"

        key = new_key()
        response = client.post(
            "/api/v1/events", json=event_body(), headers={"Idempotency-Key": key}
        )
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["error"]["code"] in ("queue_unavailable", "redis_unavailable")

        own_redis.start()  # same port: the gateway reconnects by itself
        assert client.get("/health").status_code == 200
        retried = client.post("/api/v1/events", json=event_body(), headers={"Idempotency-Key": key})
        assert retried.status_code == 202, retried.text
        assert "idempotent-replayed" not in retried.headers


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    # A database of this test's own: stopping the session's would break every other test.
    server = EmbeddedPostgres(tmp_path / "postgres", free_port())
    server.start()
    upgrade_head(server.url.replace("postgresql://", "postgresql+psycopg://"))
    yield server
    server.stop()


def test_database_down_is_503_on_health_and_ingest_and_recovers(
    stack_env: dict[str, str], own_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    engine = create_engine(own_postgres.url.replace("postgresql://", "postgresql+psycopg://"))
    key = make_key(engine, "t1")
    engine.dispose()
    env = {**stack_env, "DATABASE_URL": own_postgres.url}
    proc = processes.gateway(env, tmp_path, "gateway-own-postgres").start().wait_ready()
    try:
        with httpx.Client(base_url=proc.url, timeout=30, headers={"X-API-Key": key}) as client:
            first = client.post(
                "/api/v1/events", json=event_body(), headers={"Idempotency-Key": new_key()}
            )
            assert first.status_code == 202
            own_postgres.stop()

            health = client.get("/health")
            assert health.status_code == 503
            body = health.json()
            assert body["database"].startswith("unavailable")
            assert body["redis"] == "ok" and body["embedder"] == "ok"

            for method, url in [
                ("POST", "/api/v1/events"),
                ("GET", f"/api/v1/events/{first.json()['id']}"),
                ("GET", "/api/v1/dead-letters"),
                ("GET", "/api/v1/search?q=anything&mode=dense"),
            ]:
                kwargs = {"json": event_body()} if method == "POST" else {}
                response = client.request(
                    method, url, headers={"Idempotency-Key": new_key()}, **kwargs
                )
                assert response.status_code == 503, (url, response.text)
                assert response.headers["retry-after"]
                assert response.json()["error"]["code"] == "database_unavailable"

            own_postgres.start()  # same port and data: the gateway reconnects by itself
            assert client.get("/health").status_code == 200
            again = client.post(
                "/api/v1/events", json=event_body(), headers={"Idempotency-Key": new_key()}
            )
            assert again.status_code == 202, again.text
            assert client.get(f"/api/v1/events/{first.json()['id']}").status_code == 200
    finally:
        proc.stop()
