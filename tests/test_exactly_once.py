"""At-least-once delivery, exactly-once effect: a task run twice changes nothing the second
time, a deleted event stays deleted, and a lost message does not lose its event."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import event_body, make_key, new_key, status_of, wait_for
from tests.processes import Proc
from tests.reliability_helpers import insert_queued, row
from tests.stub_embedder import StubServer


def ingest(client: httpx.Client, text_: str | None = None) -> str:
    response = client.post(
        "/api/v1/events", json=event_body(text_), headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def run_batch_here(ids: list[str]) -> None:
    """The worker's batch code, run in this process against the same database and stub."""
    from workers.embed import run_batch

    assert run_batch(ids) is None


def test_task_run_twice_stores_one_result(
    client: httpx.Client, worker: Proc, db: Engine, stub: StubServer
) -> None:
    event_id = ingest(client)
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
    before = row(db, event_id)
    calls = stub.behaviour.calls
    run_batch_here([event_id, event_id])  # the same message delivered twice more
    run_batch_here([event_id])
    assert row(db, event_id) == before  # same attempts, same embedded_at
    assert stub.behaviour.calls == calls  # and no embedder call was wasted on it


def test_deleted_event_stays_deleted_when_an_old_task_runs(
    client: httpx.Client, db: Engine, stub: StubServer
) -> None:
    [event_id] = insert_queued(db, [f"to be deleted {uuid.uuid4().hex}"])
    assert client.delete(f"/api/v1/events/{event_id}").status_code == 204
    run_batch_here([event_id])  # its message, arriving late
    assert row(db, event_id)["status"] == "deleted"
    assert not row(db, event_id)["has_vector"]
    assert status_of(client, event_id)["status"] == "deleted"


def test_deleted_event_leaves_search(client: httpx.Client, worker: Proc) -> None:
    target = f"Lighthouse keeper wanted in Mombasa {uuid.uuid4().hex[:8]}"
    event_id = ingest(client, target)
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
    found = client.get("/api/v1/search", params={"q": target, "top_k": 1}).json()
    assert found["results"][0]["id"] == event_id

    assert client.delete(f"/api/v1/events/{event_id}").status_code == 204
    found = client.get("/api/v1/search", params={"q": target, "top_k": 5}).json()
    assert event_id not in [r["id"] for r in found["results"]]
    assert status_of(client, event_id)["status"] == "deleted"
    assert client.delete(f"/api/v1/events/{event_id}").status_code == 204  # idempotent


def test_delete_of_another_tenants_event_is_404(
    client: httpx.Client, gateway: object, db: Engine
) -> None:
    event_id = ingest(client)
    other = {"Authorization": f"Bearer {make_key(db, 't2', 'ingest,search')}"}
    response = client.delete(f"/api/v1/events/{event_id}", headers=other)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert status_of(client, event_id)["status"] != "deleted"
    assert client.delete(f"/api/v1/events/{uuid.uuid4()}").status_code == 404
    assert client.delete("/api/v1/events/not-a-uuid").status_code == 404


def test_delete_needs_the_ingest_scope(client: httpx.Client, db: Engine) -> None:
    event_id = ingest(client)
    search_only = {"Authorization": f"Bearer {make_key(db, 't1', 'search')}"}
    response = client.delete(f"/api/v1/events/{event_id}", headers=search_only)
    assert response.status_code == 403


def test_lost_message_is_published_again_by_the_sweeper(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    # Committed by the gateway an hour ago, but its message never reached a worker.
    [event_id] = insert_queued(db, [f"message lost {uuid.uuid4().hex}"], age_s=3600)
    wait_for(lambda: row(db, event_id)["status"] == "embedded", what="swept and embedded")
    assert row(db, event_id)["attempts"] == 1


def test_recent_queued_event_is_left_to_its_message(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    # The other side of the sweeper's rule: an event younger than SWEEP_AFTER_S (30 s here)
    # still has its message on the way, so the sweeper must not publish a duplicate.
    [young] = insert_queued(db, [f"young {uuid.uuid4().hex}"])
    [old] = insert_queued(db, [f"old {uuid.uuid4().hex}"], age_s=3600)
    wait_for(lambda: row(db, old)["status"] == "embedded", what="the old one swept")
    assert row(db, young)["status"] == "queued" and row(db, young)["attempts"] == 0
    # Gone before the sweeper's time comes, so no later test meets it at the embedder.
    assert client.delete(f"/api/v1/events/{young}").status_code == 204
