"""Publish after commit (common/lifecycle/handoff.py) with the broker down: ingest withdraws
its rows and answers 503; replay and the sweeper leave the rows queued and due now, and the
sweeper publishes them once the broker answers; re-embedding reports the failure.

The broker here is a real Redis URL on a port nothing listens on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.db import async_engine, async_sessions
from common.lifecycle import transitions
from common.lifecycle.handoff import (
    IfDown,
    QueueUnavailable,
    hand_off,
    hand_off_async,
    publish_reembed,
)
from common.settings import get_settings
from stack.ports import free_port
from stack.redis import EmbeddedRedis
from tests.conftest import event_body, extra_gateway, make_key, new_key, wait_for
from tests.processes import Gateway, Proc
from tests.reliability_helpers import insert_queued, row

FAR = "2999-01-01T00:00:00Z"  # a hand-off deadline the sweeper never reaches


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch, stack_env: dict[str, str]) -> Iterator[None]:
    """This process publishes to a broker that is not there."""
    from common.queue import producer
    from common.settings import get_settings

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    producer.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    producer.cache_clear()


@pytest.fixture
def dead_broker_gateway(stack_env: dict[str, str], tmp_root: Path) -> Iterator[Gateway]:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with extra_gateway(stack_env, tmp_root, "gateway-dead-broker", REDIS_URL=dead) as gw:
        yield gw


def parked(db: Engine, tenant: str) -> str:
    """A queued event no sweeper will touch (its deadline is centuries away)."""
    [event_id] = insert_queued(db, [f"parked {uuid.uuid4().hex}"], tenant)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE events SET due_at = :far WHERE id = :id"), {"far": FAR, "id": event_id}
        )
    return event_id


def due_soon(db: Engine, event_id: str) -> bool:
    """Due now, or already taken by a sweeper since (which moves it SWEEP_AFTER_S ahead):
    either way no longer waiting for the old, far deadline."""
    with db.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT due_at < now() + interval '1 hour' FROM events WHERE id = :id"),
                {"id": event_id},
            ).scalar_one()
        )


def exists(db: Engine, event_id: str) -> bool:
    with db.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM events WHERE id = :id"), {"id": event_id})
        return found.first() is not None


@pytest.mark.usefixtures("broker_down")
def test_withdraw_policy_takes_the_rows_back_and_raises(db: Engine) -> None:
    event_id = parked(db, "handoff")
    with pytest.raises(QueueUnavailable) as raised:
        hand_off([event_id], None, "withdraw", get_settings())
    assert raised.value.code == "queue_unavailable" and raised.value.status_code == 503
    assert not exists(db, event_id)


@pytest.mark.usefixtures("broker_down")
def test_requeue_policy_leaves_the_rows_queued_and_due_now(db: Engine) -> None:
    event_id = parked(db, "handoff")
    assert hand_off([event_id], None, "requeue", get_settings()) is False
    assert row(db, event_id)["status"] == "queued"
    assert due_soon(db, event_id)
    with db.begin() as conn:  # leave nothing queued behind
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": event_id})


@pytest.mark.usefixtures("broker_down")
def test_reembed_publish_reports_the_broker_down() -> None:
    with pytest.raises(QueueUnavailable):
        publish_reembed([[str(uuid.uuid4())]], "some-model", get_settings())


def test_batch_ingest_with_the_broker_down_is_503_and_records_nothing(
    dead_broker_gateway: Gateway, db: Engine
) -> None:
    tenant = f"handoff-{uuid.uuid4().hex[:8]}"
    keys = [new_key(), new_key()]
    with httpx.Client(
        base_url=dead_broker_gateway.url, headers={"X-API-Key": make_key(db, tenant)}, timeout=30
    ) as client:
        events = [{**event_body(), "idempotency_key": k} for k in keys]
        response = client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "queue_unavailable"
    assert response.headers["retry-after"]
    with db.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM events WHERE tenant = :t"), {"t": tenant}
        ).scalar_one()
    assert left == 0


def test_replay_with_the_broker_down_is_202_and_the_sweeper_publishes_it(
    dead_broker_gateway: Gateway, db: Engine, worker: Proc
) -> None:
    tenant = f"handoff-{uuid.uuid4().hex[:8]}"
    event_id = parked(db, tenant)
    with Session(db) as session, session.begin():
        [pending] = transitions.claim(session, [event_id], 30)
        assert transitions.dead_letter(session, [pending], "refused once") == 1
    with httpx.Client(
        base_url=dead_broker_gateway.url,
        headers={"X-API-Key": make_key(db, tenant, "admin")},
        timeout=30,
    ) as admin:
        response = admin.post("/api/v1/dead-letters/replay")
    assert response.status_code == 202, response.text
    assert response.json() == {"replayed": 1, "event_ids": [event_id]}
    # Published by the session worker's sweeper, through the broker that is up.
    wait_for(lambda: row(db, event_id)["status"] == "embedded", what="embedded after replay")


class Along:
    """A command sent in the hand-off's round trip (as the idempotency record is)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.results: list[object] | None = None

    def queue(self, pipe: Pipeline) -> None:
        pipe.set(self.name, b"done", ex=60)

    def sent(self, results: list[object]) -> None:
        self.results = results


def _hand_off_async(redis_url: str, event_ids: list[str], if_down: IfDown, along: Along) -> bool:
    """The gateway's hand-off, on a session and an async Redis client of its own."""

    async def run() -> bool:
        engine = async_engine(get_settings())
        client = AsyncRedis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            async with async_sessions(engine)() as session:
                return await hand_off_async(
                    session, client, event_ids, "req-async", if_down, get_settings(), along
                )
        finally:
            await client.aclose()
            await engine.dispose()

    return asyncio.run(run())


def test_async_hand_off_pushes_the_message_and_what_goes_along_in_one_round_trip(
    db: Engine, own_redis: EmbeddedRedis
) -> None:
    event_id = parked(db, "handoff")
    along = Along(f"along-{uuid.uuid4().hex}")
    client = SyncRedis.from_url(own_redis.url)
    before = client.info("commandstats")
    assert _hand_off_async(own_redis.url, [event_id], "withdraw", along) is True
    assert along.results == [True]
    assert client.get(along.name) == b"done"
    [message] = [m for m in client.lrange("embed", 0, -1) if event_id.encode() in m]
    assert orjson.loads(message)["headers"]["request_id"] == "req-async"
    after = client.info("commandstats")
    # One LPUSH and one SET, sent as one pipeline (no MULTI, no kombu bookkeeping).
    for command in ("cmdstat_lpush", "cmdstat_set"):
        assert after[command]["calls"] - before.get(command, {"calls": 0})["calls"] == 1
    assert "cmdstat_multi" not in after and "cmdstat_smembers" not in after
    assert row(db, event_id)["status"] == "queued"
    with db.begin() as conn:  # leave nothing queued behind
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": event_id})


def test_async_hand_off_with_the_broker_down_withdraws_the_rows(db: Engine) -> None:
    event_id = parked(db, "handoff")
    along = Along("never-sent")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(QueueUnavailable) as raised:
        _hand_off_async(dead, [event_id], "withdraw", along)
    assert raised.value.code == "queue_unavailable" and raised.value.status_code == 503
    assert not exists(db, event_id)
    assert along.results is None  # the caller undoes what went along (events.py: _forget)


def test_async_hand_off_with_the_broker_down_requeues_for_replay(db: Engine) -> None:
    event_id = parked(db, "handoff")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert _hand_off_async(dead, [event_id], "requeue", Along("never-sent")) is False
    assert row(db, event_id)["status"] == "queued"
    assert due_soon(db, event_id)
    with db.begin() as conn:  # leave nothing queued behind
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": event_id})
