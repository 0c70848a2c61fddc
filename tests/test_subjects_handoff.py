"""Subjects when the broker is down: a batch's versions are withdrawn (503), and the subject
falls back to the version it had; a deletion in the batch took effect when it was accepted
(docs/subjects.md), and the client's retry is answered as a duplicate."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key, status_of, wait_for
from tests.processes import Gateway, Worker
from tests.test_handoff import dead_broker_gateway  # noqa: F401 (a fixture)


def version(subject: str, text_: str, at: str, **extra: object) -> dict[str, object]:
    return {
        "source": "jobboard",
        "type": "job.updated",
        "text": text_,
        "subject": subject,
        "occurred_at": at,
        "idempotency_key": new_key(),
        **extra,
    }


def current(db: Engine, tenant: str, subject: str) -> object:
    with db.connect() as conn:
        return conn.execute(
            text("SELECT current_event_id FROM subjects WHERE tenant = :t AND subject = :s"),
            {"t": tenant, "s": subject},
        ).scalar()


def test_withdrawn_versions_leave_the_subject_as_it_was(
    gateway: Gateway,
    worker: Worker,
    dead_broker_gateway: Gateway,  # noqa: F811 (the fixture imported above)
    db: Engine,
) -> None:
    tenant = f"subj-down-{uuid.uuid4().hex[:8]}"
    key = make_key(db, tenant)
    up = httpx.Client(base_url=gateway.url, timeout=30, headers={"X-API-Key": key})
    down = httpx.Client(base_url=dead_broker_gateway.url, timeout=30, headers={"X-API-Key": key})
    first = up.post(
        "/api/v1/events/batch",
        json={"events": [version("a", "auk ringer", "2026-11-01T09:00:00Z")]},
    ).json()["results"][0]["id"]
    wait_for(lambda: status_of(up, first)["status"] == "embedded", 60, "first version embedded")

    newer = version("a", "auk ringer, senior", "2026-11-02T09:00:00Z")
    closing = version("b", "closed", "2026-11-02T09:00:00Z", deleted=True)
    other = up.post(
        "/api/v1/events/batch",
        json={"events": [version("b", "guillemot ringer", "2026-11-01T09:00:00Z")]},
    ).json()["results"][0]["id"]
    refused = down.post("/api/v1/events/batch", json={"events": [newer, closing]})
    assert refused.status_code == 503, refused.text
    assert current(db, tenant, "a") == uuid.UUID(first)  # the newer version was taken back
    assert status_of(up, first)["status"] == "embedded"
    # The deletion of "b" was applied when accepted; retried, it is a duplicate.
    assert status_of(up, other)["status"] == "deleted"
    retried = up.post("/api/v1/events/batch", json={"events": [newer, closing]}).json()
    assert [r["status"] for r in retried["results"]] == ["accepted", "duplicate"]
