"""``GET /api/v1/stats`` (scope admin): the caller's tenant at a glance, cached in Redis.

The session's gateway caches stats for a minute (conftest), so each test here uses a tenant
of its own and reads its stats once its events are settled; expiry is tested on a gateway
with a short time to live."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key, wait_for
from tests.reliability_helpers import insert_queued
from tests.stub_embedder import NAN_MARK


class Tenant:
    """A fresh tenant with an admin key, and a client for it."""

    def __init__(self, gateway: processes.Gateway, db: Engine, scopes: str = "ingest,admin"):
        self.name = f"stats-{uuid.uuid4().hex[:8]}"
        headers = {"X-API-Key": make_key(db, self.name, scopes)}
        self.client = httpx.Client(base_url=gateway.url, headers=headers, timeout=30)

    def stats(self) -> dict[str, object]:
        response = self.client.get("/api/v1/stats")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return dict(response.json())

    def ingest(self, *bodies: dict[str, object]) -> list[str]:
        items = [{**body, "idempotency_key": new_key()} for body in bodies]
        response = self.client.post("/api/v1/events/batch", json={"events": items})
        assert response.status_code == 200, response.text
        assert [r["status"] for r in response.json()["results"]] == ["accepted"] * len(items)
        return [str(r["id"]) for r in response.json()["results"]]

    def settled(self, ids: list[str]) -> bool:
        states = [self.client.get(f"/api/v1/events/{i}").json()["status"] for i in ids]
        return all(s in ("embedded", "failed") for s in states)


@pytest.fixture
def tenant(gateway: processes.Gateway, db: Engine) -> Iterator[Tenant]:
    t = Tenant(gateway, db)
    yield t
    t.client.close()


def test_stats_count_the_tenants_events_by_status_source_and_type(
    tenant: Tenant, worker: processes.Proc
) -> None:
    ids = tenant.ingest(
        *(event_body(source="jobboard", type="job.posted") for _ in range(3)),
        event_body(source="helpdesk", type="ticket.opened"),
        event_body(source="helpdesk", type="ticket.closed"),
        event_body(f"refused by the embedder {NAN_MARK}", source="helpdesk", type="ticket.closed"),
    )
    wait_for(lambda: tenant.settled(ids), 60, "every event embedded or dead-lettered")
    assert tenant.client.delete(f"/api/v1/events/{ids[0]}").status_code == 204

    stats = tenant.stats()
    assert stats["tenant"] == tenant.name
    assert stats["events"] == 6
    assert stats["by_status"] == {
        "queued": 0,
        "embedded": 4,
        "failed": 1,
        "deleted": 1,
        "superseded": 0,
    }
    # The deleted event's source and type are erased (issue 12, item 7): by status only.
    assert stats["by_source"] == {"helpdesk": 3, "jobboard": 2}
    assert stats["by_type"] == {"job.posted": 2, "ticket.closed": 2, "ticket.opened": 1}
    assert stats["other_sources"] == stats["other_types"] == 0
    # Vectors stored lately, whatever became of them since (the deleted one counts).
    assert stats["embedded_last_minute"] == stats["embedded_last_hour"] == 5
    assert stats["dead_letters"] == 1
    assert stats["oldest_queued_age_s"] is None
    queue = stats["queue"]
    assert isinstance(queue, dict)
    assert isinstance(queue["depth"], int) and isinstance(queue["unacked"], int)


def test_stats_tell_the_oldest_queued_events_age(tenant: Tenant, db: Engine) -> None:
    # Young enough that the sweeper leaves them alone during the test; deleted after it.
    ids = insert_queued(db, ["waiting a while", "just arrived"], tenant.name, age_s=0)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE events SET created_at = now() - interval '12 seconds' WHERE id = :id"),
            {"id": ids[0]},
        )
    try:
        stats = tenant.stats()
        assert stats["by_status"] == {
            "queued": 2,
            "embedded": 0,
            "failed": 0,
            "deleted": 0,
            "superseded": 0,
        }
        age = stats["oldest_queued_age_s"]
        assert isinstance(age, float) and 12 <= age < 12 + 25
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM events WHERE id = ANY(:ids)"), {"ids": ids})


def test_stats_are_the_callers_tenant_only(
    tenant: Tenant, gateway: processes.Gateway, db: Engine, worker: processes.Proc
) -> None:
    tenant.ingest(event_body(source="only-mine"))
    other = Tenant(gateway, db)
    try:
        stats = other.stats()
        assert stats["tenant"] == other.name
        assert stats["events"] == 0
        assert stats["by_source"] == stats["by_type"] == {}
        assert stats["dead_letters"] == 0
        assert tenant.stats()["by_source"] == {"only-mine": 1}
    finally:
        other.client.close()


def test_stats_need_the_admin_scope(gateway: processes.Gateway, db: Engine) -> None:
    ingest_only = Tenant(gateway, db, scopes="ingest,search")
    try:
        response = ingest_only.client.get("/api/v1/stats")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
        assert httpx.get(f"{gateway.url}/api/v1/stats").status_code == 401
    finally:
        ingest_only.client.close()


def test_many_sources_are_cut_to_the_most_common(
    stack_env: dict[str, str], tmp_root: Path, db: Engine
) -> None:
    with extra_gateway(stack_env, tmp_root, "stats-groups", STATS_MAX_GROUPS="2") as gw:
        t = Tenant(gw, db)
        sources = ["a", "b", "b", "c", "c", "c", "d"]
        ids = insert_queued(db, ["x"] * len(sources), t.name)
        with db.begin() as conn:
            for event_id, source in zip(ids, sources, strict=True):
                conn.execute(
                    text("UPDATE events SET status = 'failed', source = :s WHERE id = :id"),
                    {"s": source, "id": event_id},
                )
        stats = t.stats()
        t.client.close()
    assert stats["by_source"] == {"c": 3, "b": 2}
    assert stats["other_sources"] == 2
    assert stats["by_type"] == {"job.posted": 7}


def test_stats_are_cached_for_their_time_to_live(tenant: Tenant, db: Engine) -> None:
    first = tenant.client.get("/api/v1/stats")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, max-age=60"  # the session's setting
    ids = insert_queued(db, ["arrives after the first read"], tenant.name)
    try:
        second = tenant.client.get("/api/v1/stats")
        assert second.content == first.content  # the cached bytes, though the tenant changed
        assert second.json()["events"] == 0
    finally:
        with db.begin() as conn:
            conn.execute(text("DELETE FROM events WHERE id = ANY(:ids)"), {"ids": ids})


def test_cached_stats_expire(stack_env: dict[str, str], tmp_root: Path, db: Engine) -> None:
    with extra_gateway(stack_env, tmp_root, "stats-cache", STATS_CACHE_TTL_S="1") as gw:
        t = Tenant(gw, db)
        assert t.stats()["events"] == 0
        ids = insert_queued(db, ["arrives after the first read"], t.name)
        try:
            wait_for(lambda: t.stats()["events"] == 1, 30, "the cached answer to expire")
        finally:
            t.client.close()
            with db.begin() as conn:
                conn.execute(text("DELETE FROM events WHERE id = ANY(:ids)"), {"ids": ids})


def test_stats_answer_without_redis(
    stack_env: dict[str, str], own_redis: EmbeddedRedis, tmp_root: Path, db: Engine
) -> None:
    """Stats are what an operator reads when something is down: Redis being away leaves the
    queue figures unknown (null) and the answer uncached, not a 503."""
    with extra_gateway(stack_env, tmp_root, "stats-no-redis", REDIS_URL=own_redis.url) as gw:
        t = Tenant(gw, db)
        try:
            assert t.stats()["queue"] == {"depth": 0, "unacked": 0}
            own_redis.stop()
            stats = t.stats()
            assert stats["queue"] == {"depth": None, "unacked": None}
            assert stats["events"] == 0
        finally:
            t.client.close()
            own_redis.start()


def test_the_timeline_counts_accepted_and_embedded_per_bucket(
    tenant: Tenant, worker: processes.Proc, db: Engine
) -> None:
    """``GET /api/v1/stats/timeline`` (the console's chart): every bucket present, oldest
    first, the last one holding now; events counted where they were accepted and stored."""
    ids = tenant.ingest(event_body(), event_body())
    wait_for(lambda: tenant.settled(ids), 60, "embedded")
    with db.begin() as conn:  # one event accepted and stored three hours ago
        conn.execute(
            text(
                "UPDATE events SET created_at = now() - interval '3 hours',"
                " embedded_at = now() - interval '3 hours' WHERE id = :id"
            ),
            {"id": ids[0]},
        )
    answer = tenant.client.get("/api/v1/stats/timeline", params={"bucket": "hour", "points": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["tenant"] == tenant.name and body["bucket"] == "hour"
    points = body["points"]
    assert len(points) == 5
    assert [p["start"] for p in points] == sorted(p["start"] for p in points)
    by_start = {datetime.fromisoformat(p["start"]): p for p in points}
    for event_id in ids:
        event = tenant.client.get(f"/api/v1/events/{event_id}").json()
        for field, count in (("created_at", "accepted"), ("embedded_at", "embedded")):
            at = datetime.fromisoformat(event[field])
            assert by_start[at.replace(minute=0, second=0, microsecond=0)][count] == 1
    assert sum(p["accepted"] for p in points) == sum(p["embedded"] for p in points) == 2
    assert datetime.fromisoformat(points[-1]["start"]) <= datetime.now(UTC)
    minutes = tenant.client.get("/api/v1/stats/timeline").json()["points"]
    assert len(minutes) == 60 and sum(p["accepted"] for p in minutes) == 1


def test_the_timeline_needs_admin_and_a_known_bucket(
    gateway: processes.Gateway, db: Engine
) -> None:
    searcher = Tenant(gateway, db, scopes="search")
    admin = Tenant(gateway, db)
    try:
        assert searcher.client.get("/api/v1/stats/timeline").status_code == 403
        assert admin.client.get("/api/v1/stats/timeline?bucket=week").status_code == 422
        assert admin.client.get("/api/v1/stats/timeline?points=0").status_code == 422
        assert admin.client.get("/api/v1/stats/timeline?points=1441").status_code == 422
    finally:
        searcher.client.close()
        admin.client.close()
