"""Subjects through the client library (Client, AsyncClient) and `eventsearch send
--subject-field`."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cli.send import keyed
from eventsearch import AsyncClient, Client, NotFound
from tests.conftest import make_key, wait_for
from tests.processes import Gateway, Worker
from tests.test_send import run_send, summary


def test_subject_field_sets_the_subject_and_keys_cover_it() -> None:
    line = {"source": "s", "type": "t", "text": "x", "posting": 42}
    event = keyed(line, None, "", "posting")
    assert event["subject"] == "42" and "posting" not in event
    other = keyed({**line, "posting": 43}, None, "", "posting")
    assert other["idempotency_key"] != event["idempotency_key"]
    nested = keyed({**line, "metadata": {"ref": "a/1"}}, "posting", "k-", "metadata.ref")
    assert (nested["subject"], nested["idempotency_key"]) == ("a/1", "k-42")
    assert "posting" not in nested
    with pytest.raises(ValueError, match="subject_field_missing"):
        keyed({"source": "s", "type": "t", "text": "x"}, None, "", "posting")


def test_send_subject_field_makes_versions(
    gateway: Gateway, worker: Worker, db: Engine, tmp_path: object
) -> None:
    tenant = f"send-subj-{uuid.uuid4().hex[:8]}"
    key = make_key(db, tenant, "ingest")
    lines = [
        {"source": "jobs", "type": "job.posted", "text": "kiln operator", "id": "p1",
         "occurred_at": "2026-11-01T09:00:00Z"},
        {"source": "jobs", "type": "job.updated", "text": "kiln operator, nights", "id": "p1",
         "occurred_at": "2026-11-02T09:00:00Z"},
        {"source": "jobs", "type": "job.posted", "text": "glass blower", "id": "p2"},
    ]  # fmt: skip
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    done = run_send(gateway.url, key, "-", "--subject-field", "id", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert summary(done)["accepted"] == 3

    def statuses() -> dict[str, str]:
        with db.connect() as conn:
            rows = conn.execute(
                text("SELECT text, subject, status FROM events WHERE tenant = :t"), {"t": tenant}
            ).all()
        return {f"{r.subject}:{r.text}": r.status for r in rows}

    wait_for(lambda: "queued" not in statuses().values(), 60, "sent versions settled")
    assert statuses() == {
        "p1:kiln operator": "superseded",
        "p1:kiln operator, nights": "embedded",
        "p2:glass blower": "embedded",
    }


def test_client_history_and_delete_subject(gateway: Gateway, worker: Worker, db: Engine) -> None:
    key = make_key(db, f"sdk-subj-{uuid.uuid4().hex[:8]}")
    event = {"source": "jobboard", "type": "job.posted", "subject": "jobs/77"}
    with Client(gateway.url, key) as es:
        first = es.send({**event, "text": "ferry pilot", "occurred_at": "2026-11-01T09:00:00Z"})
        second = es.send({**event, "text": "ferry pilot, Orkney"})  # undated: now, the latest
        assert es.wait_embedded(second.id).subject == "jobs/77"
        wait_for(lambda: es.get(first.id).status == "superseded", 30, "first superseded")
        page = es.history("jobboard", "jobs/77", limit=1)
        assert page.current == second.id and [v.id for v in page.versions] == [second.id]
        rest = es.history("jobboard", "jobs/77", cursor=page.next_cursor)
        assert [v.id for v in rest.versions] == [first.id] and rest.next_cursor is None
        assert [h.subject for h in es.search("ferry pilot", filters={"subject": ["jobs/77"]})] == [
            "jobs/77"
        ]
        es.delete_subject("jobboard", "jobs/77")
        es.delete_subject("jobboard", "jobs/77")  # idempotent
        assert es.get(second.id).status == "deleted"
        with pytest.raises(NotFound):
            es.delete_subject("jobboard", "never-seen")

    async def aio() -> None:
        async with AsyncClient(gateway.url, key) as es:
            history = await es.history("jobboard", "jobs/77")
            assert history.current is None and history.deleted_at is not None
            assert history.versions == []  # erased, subject and all
            await es.delete_subject("jobboard", "jobs/77")

    asyncio.run(aio())
