"""Worker failure handling: transient failures retry with backoff (honouring Retry-After) up
to EMBED_MAX_ATTEMPTS, then dead-letter; permanent ones dead-letter at once, alone."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import event_body, new_key, status_of, wait_for
from tests.processes import Proc
from tests.reliability_helpers import dead_letters_of, queue_events, row
from tests.stub_embedder import NAN_MARK, POISON_MARK, StubServer

MAX_ATTEMPTS = 5  # the default of EMBED_MAX_ATTEMPTS, which the test session keeps


def ingest(client: httpx.Client, text_: str | None = None, stub: StubServer | None = None) -> str:
    """Post an event; with ``stub``, its scripted failures are for this event's calls only."""
    if stub is not None:
        stub.behaviour.watch = uuid.uuid4().hex
        text_ = f"{text_ or 'event'} {stub.behaviour.watch}"
    response = client.post(
        "/api/v1/events", json=event_body(text_), headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def settled(client: httpx.Client, event_id: str) -> dict[str, object]:
    wait_for(
        lambda: status_of(client, event_id)["status"] in ("embedded", "failed"),
        what=f"event {event_id} settled",
    )
    return status_of(client, event_id)


def test_transient_failures_are_retried_and_attempts_are_visible(
    client: httpx.Client, worker: Proc, stub: StubServer
) -> None:
    stub.behaviour.fail_status, stub.behaviour.fail_times = 503, 2
    event_id = ingest(client, stub=stub)
    status = settled(client, event_id)
    assert status["status"] == "embedded"
    assert status["attempts"] == 3
    assert status["error"] is None


def test_retry_after_is_honoured(client: httpx.Client, worker: Proc, stub: StubServer) -> None:
    b = stub.behaviour
    b.fail_status, b.fail_times, b.retry_after = 429, 1, "1"
    event_id = ingest(client, stub=stub)
    status = settled(client, event_id)
    assert status["status"] == "embedded" and status["attempts"] == 2
    waited = _seconds(status["embedded_at"]) - _seconds(status["created_at"])
    # The first backoff alone is at most RETRY_BACKOFF_S (0.2 s): only Retry-After explains 1 s.
    assert waited >= 1.0, waited


def test_retry_after_is_capped(client: httpx.Client, worker: Proc, stub: StubServer) -> None:
    b = stub.behaviour
    b.fail_status, b.fail_times, b.retry_after = 503, 1, "3600"
    event_id = ingest(client, stub=stub)
    status = settled(client, event_id)  # within wait_for's 60 s: capped at RETRY_BACKOFF_MAX_S
    assert status["status"] == "embedded" and status["attempts"] == 2
    waited = _seconds(status["embedded_at"]) - _seconds(status["created_at"])
    assert waited < 30, waited


def test_a_timeout_is_transient(client: httpx.Client, worker: Proc, stub: StubServer) -> None:
    stub.behaviour.hang_times, stub.behaviour.hang_s = 1, 4.0  # EMBED_TIMEOUT_S is 3
    event_id = ingest(client, stub=stub)
    status = settled(client, event_id)
    assert status["status"] == "embedded" and status["attempts"] == 2


def test_exhausted_retries_dead_letter_the_event_with_its_last_error(
    client: httpx.Client, worker: Proc, stub: StubServer, db: Engine
) -> None:
    stub.behaviour.fail_status, stub.behaviour.fail_times = 500, 1000
    event_id = ingest(client, stub=stub)
    status = settled(client, event_id)
    assert status["status"] == "failed"
    assert status["attempts"] == MAX_ATTEMPTS
    assert f"gave up after {MAX_ATTEMPTS} attempts" in str(status["error"])
    assert "answered 500" in str(status["error"])
    [letter] = dead_letters_of(db, event_id)
    assert letter["attempts"] == MAX_ATTEMPTS and letter["error"] == status["error"]
    assert letter["tenant"] == "t1"


def test_poisoned_item_is_dead_lettered_alone(
    client: httpx.Client, worker: Proc, stub: StubServer, db: Engine
) -> None:
    texts = [f"healthy event {i} {uuid.uuid4().hex}" for i in range(7)]
    texts.insert(3, f"far too long {POISON_MARK} {uuid.uuid4().hex}")
    ids = queue_events(db, texts)
    wait_for(
        lambda: all(row(db, i)["status"] in ("embedded", "failed") for i in ids), what="settled"
    )
    poisoned = ids[3]
    assert row(db, poisoned)["status"] == "failed"
    assert "answered 400" in str(row(db, poisoned)["error"])
    assert row(db, poisoned)["attempts"] == 1  # permanent: no retry
    assert len(dead_letters_of(db, poisoned)) == 1
    healthy = [i for i in ids if i != poisoned]
    assert all(row(db, i)["status"] == "embedded" for i in healthy)
    assert all(dead_letters_of(db, i) == [] for i in healthy)
    # They did meet the embedder together, and the batch was split to find the bad one.
    assert 8 in stub.behaviour.batch_sizes
    assert 1 in stub.behaviour.batch_sizes


def test_nan_vector_is_dead_lettered_at_once(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    event_id = ingest(client, f"this one comes back as {NAN_MARK} {uuid.uuid4().hex}")
    status = settled(client, event_id)
    assert status["status"] == "failed" and status["attempts"] == 1
    assert "NaN" in str(status["error"])
    assert not row(db, event_id)["has_vector"]
    [letter] = dead_letters_of(db, event_id)
    assert "NaN" in str(letter["error"])


def test_wrong_dimension_is_dead_lettered_at_once(
    client: httpx.Client, worker: Proc, stub: StubServer, db: Engine
) -> None:
    stub.behaviour.wrong_dim = True
    event_id = ingest(client)
    status = settled(client, event_id)
    assert status["status"] == "failed" and status["attempts"] == 1
    assert "385 dimensions" in str(status["error"]) and "EMBED_DIM" in str(status["error"])
    assert len(dead_letters_of(db, event_id)) == 1


def _seconds(stamp: object) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(stamp)).timestamp()
