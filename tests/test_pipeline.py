"""An event posted, embedded by a real Celery worker through the stub, and found by search."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import event_body, new_key, status_of, wait_for
from tests.processes import Proc
from tests.reliability_helpers import queue_events
from tests.stub_embedder import StubServer


def ingest(client: httpx.Client, text_: str) -> str:
    response = client.post(
        "/api/v1/events", json=event_body(text_), headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_posted_event_is_embedded_and_found_first(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    marker = uuid.uuid4().hex[:8]
    target = f"Senior data engineer in Nairobi {marker}"
    event_id = ingest(client, target)
    ingest(client, f"Pastry chef wanted in Lyon {uuid.uuid4().hex[:8]}")
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
    status = status_of(client, event_id)
    assert status["model"] == "stub-embed"
    assert status["embedded_at"] and status["attempts"] == 1 and status["error"] is None
    with db.connect() as conn:
        dims = conn.execute(
            text("SELECT vector_dims(embedding) FROM chunks WHERE event_id = :id"), {"id": event_id}
        ).scalar_one()
    assert dims == 384

    found = client.get("/api/v1/search", params={"q": target, "top_k": 3, "mode": "dense"}).json()
    assert found["results"][0]["id"] == event_id
    assert found["results"][0]["score"] > 0.99
    assert found["model"] == "stub-embed" and found["mode"] == "dense"

    posted = client.post("/api/v1/search", json={"query": target, "top_k": 1}).json()
    assert [r["id"] for r in posted["results"]] == [event_id]


def test_many_events_are_embedded_in_batches(
    client: httpx.Client, worker: Proc, stub: StubServer, db: Engine
) -> None:
    """Forty messages of one event each, published back to back (as forty single POSTs
    arriving together would be; POSTed one by one from this test, a loaded machine spaced
    them past EMBED_BATCH_WAIT_MS and each went alone): celery-batches buffers them and
    one embedder call serves many."""
    stub.behaviour.watch = uuid.uuid4().hex
    ids = queue_events(db, [f"batch item {i} {stub.behaviour.watch}" for i in range(40)])
    wait_for(
        lambda: all(status_of(client, i)["status"] == "embedded" for i in ids), what="all embedded"
    )
    assert sum(stub.behaviour.watched_sizes) == 40  # each event embedded once
    assert stub.behaviour.watched_calls < 40
    assert max(stub.behaviour.watched_sizes) > 1
