"""/health: 200 with every dependency up, 503 naming the one that is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.ports import free_port
from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import event_body, new_key


def test_health_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "embedder": "ok"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway_on_own_redis(
    stack_env: dict[str, str], own_redis: EmbeddedRedis, tmp_path: Path
) -> Iterator[processes.Gateway]:
    env = {**stack_env, "REDIS_URL": own_redis.url}
    proc = processes.gateway(env, tmp_path, "gateway-own-redis").start().wait_ready()
    yield proc
    proc.stop()


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
