"""``DELETE /api/v1/events/{id}`` erases the event's content (issue 12, item 7): after it,
no read path gives back its text, metadata, source, type or occurred_at, and its vector and
dead letters are gone. What stays is a tombstone: id, status ``deleted``, attempts, times."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import status_of, wait_for
from tests.processes import Gateway, Proc
from tests.stub_embedder import NAN_MARK
from tests.test_list_events import Tenant, fresh_tenant

URL = "/api/v1/events"
ERASED = {"source": "", "type": "", "text": "", "metadata": {}, "occurred_at": None}


@pytest.fixture
def me(gateway: Gateway, db: Engine) -> Iterator[Tenant]:
    with fresh_tenant(gateway, db, "erase") as client:
        yield client


def secret_event(me: Tenant, word: str, mark: str = "") -> str:
    return me.post_event(
        f"{mark}confidential {word} memo about {word}",
        source=f"src-{word}",
        type=f"type-{word}",
        metadata={"owner": word},
        occurred_at="2026-11-01T09:00:00Z",
    )


def everything_read(me: Tenant, word: str) -> str:
    """Every read path of the tenant, concatenated: status reads, the list, search in each
    mode (GET and POST), both exports."""
    pages = [me.get(URL, params={"limit": 1000}).text]
    pages.append(me.get(URL, params={"source": f"src-{word}"}).text)
    for mode in ("dense", "keyword", "hybrid"):
        pages.append(me.get("/api/v1/search", params={"q": word, "mode": mode}).text)
        response = me.post("/api/v1/search", json={"query": f"confidential {word}", "mode": mode})
        assert response.status_code == 200, response.text
        pages.append(response.text)
    for fmt in ("ndjson", "csv"):
        response = me.get(f"/api/v1/export/events.{fmt}")
        assert response.status_code == 200, response.text
        pages.append(response.text)
    return "\n".join(pages)


def test_a_deleted_event_keeps_nothing_of_its_content(me: Tenant, worker: Proc, db: Engine) -> None:
    word = f"zq{uuid.uuid4().hex[:10]}"
    event_id = secret_event(me, word)
    wait_for(lambda: status_of(me, event_id)["status"] == "embedded", what="embedded")
    assert word in everything_read(me, word)  # the paths do show it before

    assert me.delete(f"{URL}/{event_id}").status_code == 204
    after = status_of(me, event_id)  # read at once: the delete is committed before the 204
    assert after["status"] == "deleted"
    assert {k: after[k] for k in ERASED} == ERASED
    assert after["model"] is None and after["error"] is None
    assert after["created_at"] and after["embedded_at"]  # the times stay
    assert word not in everything_read(me, word)

    [listed] = [e for e in me.page(limit=1000)["events"] if e["id"] == event_id]
    assert listed == after
    ndjson = me.get("/api/v1/export/events.ndjson").text.splitlines()
    [line] = [orjson.loads(x) for x in ndjson if event_id in x]
    assert {k: line[k] for k in ERASED} == ERASED and line["status"] == "deleted"
    rows = list(csv.DictReader(io.StringIO(me.get("/api/v1/export/events.csv").text)))
    [row] = [r for r in rows if r["id"] == event_id]
    assert (row["source"], row["type"], row["text"], row["metadata"], row["occurred_at"]) == (
        "",
        "",
        "",
        "{}",
        "",
    )
    with db.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT NOT EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = events.id)"
                " AS no_vector, search_text::text AS search_text,"
                " idempotency_key IS NOT NULL AS keeps_key FROM events WHERE id = :id"
            ),
            {"id": event_id},
        ).one()
    assert (stored.no_vector, stored.search_text, stored.keeps_key) == (True, "", True)


def test_deleting_a_failed_event_deletes_its_dead_letters(
    me: Tenant, worker: Proc, db: Engine
) -> None:
    word = f"zq{uuid.uuid4().hex[:10]}"
    event_id = secret_event(me, word, mark=f"{NAN_MARK} ")  # the embedder answers NaN
    wait_for(lambda: status_of(me, event_id)["status"] == "failed", what="dead-lettered")
    assert me.get("/api/v1/dead-letters").json()["dead_letters"][0]["event_id"] == event_id

    assert me.delete(f"{URL}/{event_id}").status_code == 204
    assert me.get("/api/v1/dead-letters").json()["dead_letters"] == []
    with db.connect() as conn:
        letters = conn.execute(
            text("SELECT count(*) FROM dead_letters WHERE event_id = :id"), {"id": event_id}
        ).scalar_one()
    assert letters == 0
    assert word not in everything_read(me, word)
    assert me.delete(f"{URL}/{event_id}").status_code == 204  # again: still 204, nothing back
