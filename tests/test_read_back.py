"""Whatever the API accepts, every read path gives back (issue 12, item 1), and a read that
fails anyway is our fault (500), never the client's, and never a file that looks complete."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key, wait_for
from tests.processes import Gateway, Worker

# The two values of the issue: valid RFC 3339, but year 10000 and 1 BC once in UTC.
OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
# The edges that are valid, with every extreme offset: (as sent, the instant in UTC).
EDGES = {
    "0001-01-01T00:00:00Z": datetime(1, 1, 1, tzinfo=UTC),
    "0001-01-01T14:00:00+14:00": datetime(1, 1, 1, tzinfo=UTC),
    "0001-01-01T00:00:00-14:00": datetime(1, 1, 1, 14, tzinfo=UTC),
    "9999-12-31T23:59:59.999999Z": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "9999-12-31T09:59:59.999999-14:00": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "9999-12-31T23:59:59+14:00": datetime(9999, 12, 31, 9, 59, 59, tzinfo=UTC),
}


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tenant_client(db: Engine, gateway: Gateway, prefix: str) -> httpx.Client:
    tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return httpx.Client(
        base_url=gateway.url, timeout=30, headers={"X-API-Key": make_key(db, tenant)}
    )


@pytest.mark.parametrize("occurred_at", OUT_OF_RANGE)
def test_occurred_at_outside_years_1_to_9999_in_utc_is_422(
    client: httpx.Client, occurred_at: str
) -> None:
    body = {"source": "s", "type": "t", "text": "edge", "occurred_at": occurred_at}
    single = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": new_key()})
    assert single.status_code == 422, single.text
    error = single.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == ["body", "occurred_at"]
    assert "9999-12-31T23:59:59.999999Z once converted to UTC" in error["details"][0]["msg"]

    batch = client.post(
        "/api/v1/events/batch", json={"events": [{**body, "idempotency_key": new_key()}]}
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["status"] == "rejected"

    search = client.post(
        "/api/v1/search", json={"query": "edge", "filters": {"occurred_after": occurred_at}}
    )
    assert search.status_code == 422, search.text


def test_valid_edge_timestamps_read_back_through_every_read_path(
    db: Engine, gateway: Gateway, worker: Worker
) -> None:
    word = f"edgeword{uuid.uuid4().hex[:8]}"
    with tenant_client(db, gateway, "edges") as c:
        events = [
            {"source": "edges", "type": "t", "text": f"{word} {sent}", "occurred_at": sent}
            for sent in EDGES
        ]
        ids = {}
        for event in events:
            answer = c.post("/api/v1/events", json=event, headers={"Idempotency-Key": new_key()})
            assert answer.status_code == 202, answer.text
            ids[answer.json()["id"]] = EDGES[str(event["occurred_at"])]

        def embedded() -> bool:
            reads = [c.get(f"/api/v1/events/{i}") for i in ids]
            assert all(r.status_code == 200 for r in reads), [r.text for r in reads]
            return all(r.json()["status"] == "embedded" for r in reads)

        wait_for(embedded, what="edge events embedded")
        for event_id, expected in ids.items():
            assert instant(c.get(f"/api/v1/events/{event_id}").json()["occurred_at"]) == expected

        def check(items: list[dict[str, Any]], where: str) -> None:
            got = {item["id"]: instant(item["occurred_at"]) for item in items}
            assert got == ids, where

        listed = c.get("/api/v1/events", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        check(listed.json()["events"], "list")
        for mode in ("dense", "keyword", "hybrid"):
            for answer in (
                c.post("/api/v1/search", json={"query": word, "mode": mode, "top_k": 100}),
                c.get("/api/v1/search", params={"q": word, "mode": mode, "top_k": 100}),
            ):
                assert answer.status_code == 200, (mode, answer.text)
                check(answer.json()["results"], f"search {mode}")
        ndjson = c.get("/api/v1/export/events.ndjson")
        assert ndjson.status_code == 200
        check([json.loads(line) for line in ndjson.text.splitlines()], "ndjson")
        exported = c.get("/api/v1/export/events.csv")
        check(list(csv.DictReader(io.StringIO(exported.text))), "csv")
        stats = c.get("/api/v1/stats")
        assert stats.status_code == 200, stats.text
        assert stats.json()["events"] == len(EDGES)


def _store_unreadable(db: Engine, tenant: str, good: int) -> str:
    """``good`` readable events, then one whose occurred_at is year 10000 in UTC, as an
    earlier version of the API accepted (psycopg cannot load it)."""
    bad = str(uuid.uuid4())
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, source, type, text, metadata, status, attempts,"
                " created_at, updated_at) SELECT gen_random_uuid(), :tenant, 's', 't',"
                " 'good ' || g, '{}', 'queued', 0, now() - interval '1 hour' + g * interval"
                " '1 ms', now() FROM generate_series(1, :good) g"
            ),
            {"tenant": tenant, "good": good},
        )
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, source, type, text, metadata, status, attempts,"
                " occurred_at, created_at, updated_at) VALUES (:id, :tenant, 's', 't', 'bad',"
                " '{}', 'queued', 0, '10000-01-01T00:00:00Z', now(), now())"
            ),
            {"id": bad, "tenant": tenant},
        )
    return bad


def test_a_stored_value_that_cannot_be_read_is_500_not_the_clients_422(
    db: Engine, gateway: Gateway
) -> None:
    tenant = f"unreadable-{uuid.uuid4().hex[:8]}"
    bad = _store_unreadable(db, tenant, 1)
    with httpx.Client(
        base_url=gateway.url, timeout=30, headers={"X-API-Key": make_key(db, tenant)}
    ) as c:
        for answer in (c.get(f"/api/v1/events/{bad}"), c.get("/api/v1/events")):
            assert answer.status_code == 500, answer.text
            error = answer.json()["error"]
            assert error["code"] == "internal_error"
            assert error["request_id"] == answer.headers["x-request-id"]
            assert "traceback" not in answer.text.lower()


def test_an_export_that_fails_mid_stream_never_looks_complete(db: Engine, gateway: Gateway) -> None:
    tenant = f"cut-{uuid.uuid4().hex[:8]}"
    _store_unreadable(db, tenant, 1500)  # the first chunk (1000 rows) streams out fine
    auth = {"X-API-Key": make_key(db, tenant)}
    url = f"{gateway.url}/api/v1/export/events"

    ndjson = httpx.get(f"{url}.ndjson", headers=auth, timeout=30)
    assert ndjson.status_code == 200
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert len(lines) == 1001
    assert all("id" in line for line in lines[:-1])
    assert lines[-1].keys() == {"error"}
    assert lines[-1]["error"]["code"] == "export_failed"
    assert lines[-1]["error"]["request_id"] == ndjson.headers["x-request-id"]

    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", f"{url}.csv", headers=auth, timeout=30) as answer,
    ):
        assert answer.status_code == 200
        for chunk in answer.iter_bytes():
            received += chunk
    assert received.count(b"\n") >= 1001  # the header and the first chunk arrived


def test_sessions_read_in_utc_whatever_the_servers_zone(
    stack_env: dict[str, str], db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid 9999-12-31T23:00Z read in a zone east of UTC would be year 10000. The zone
    a server or role gives its sessions by default is stood in for by libpq's PGOPTIONS
    (the same startup setting, of lower precedence than the engine's own)."""
    from common import db as common_db

    tenant = f"zone-{uuid.uuid4().hex[:8]}"
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, source, type, text, metadata, status, attempts,"
                " occurred_at, created_at, updated_at) VALUES (gen_random_uuid(), :tenant, 's',"
                " 't', 'late', '{}', 'queued', 0, '9999-12-31T23:00:00Z', now(), now())"
            ),
            {"tenant": tenant},
        )
    monkeypatch.setenv("PGOPTIONS", "-c TimeZone=Pacific/Kiritimati")  # UTC+14
    common_db.sync_engine.cache_clear()
    try:
        with common_db.sync_engine().connect() as conn:
            read = conn.execute(
                text("SELECT occurred_at FROM events WHERE tenant = :t"), {"t": tenant}
            ).scalar_one()
        assert read == datetime(9999, 12, 31, 23, tzinfo=UTC)
    finally:
        common_db.sync_engine().dispose()
        common_db.sync_engine.cache_clear()


def _types(node: Any) -> Any:
    """The value with every number replaced by its type's name, to compare kinds exactly
    (``1e16 == 10**16`` in Python, but a client reading ``10000000000000000`` gets an int)."""
    if isinstance(node, dict):
        return {k: _types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_types(v) for v in node]
    return type(node).__name__ if isinstance(node, int | float) else node


def test_whole_floats_from_1e16_up_read_back_as_floats(db: Engine, gateway: Gateway) -> None:
    metadata = {
        "big": 1e16,
        "negative": -1.7976931348623157e308,
        "list": [1e22, 2.0**80, 9007199254740993.0, 123.0, 1e-7, 5e-324],
        "int": 10**16,
        "ints": [-(2**63), 2**63 - 1],
    }
    word = f"floats{uuid.uuid4().hex[:8]}"
    with tenant_client(db, gateway, "floats") as c:
        event = {"source": "s", "type": "t", "text": word, "metadata": metadata}
        sent = c.post("/api/v1/events", json=event, headers={"Idempotency-Key": new_key()})
        assert sent.status_code == 202, sent.text
        event_id = sent.json()["id"]
        reads = {
            "status": c.get(f"/api/v1/events/{event_id}").json()["metadata"],
            "list": c.get("/api/v1/events").json()["events"][0]["metadata"],
            "keyword": c.post("/api/v1/search", json={"query": word, "mode": "keyword"}).json()[
                "results"
            ][0]["metadata"],
            "ndjson": json.loads(c.get("/api/v1/export/events.ndjson").text)["metadata"],
            "csv": json.loads(
                next(csv.DictReader(io.StringIO(c.get("/api/v1/export/events.csv").text)))[
                    "metadata"
                ]
            ),
        }
        filtered = c.post(
            "/api/v1/search",
            json={"query": word, "mode": "keyword", "filters": {"metadata": {"big": 1e16}}},
        )
        assert [h["id"] for h in filtered.json()["results"]] == [event_id]
    for path, read in reads.items():
        assert read == metadata, path
        assert _types(read) == _types(metadata), path


def test_only_a_value_refused_by_a_write_is_the_clients() -> None:
    from sqlalchemy.exc import DataError

    from gateway.errors import is_write_refusal

    def error(statement: str) -> DataError:
        return DataError(statement, {}, Exception("value out of range"))

    assert is_write_refusal(error("INSERT INTO events (id) VALUES (%(id)s)"))
    assert is_write_refusal(error("\n  update events SET text = %(t)s"))
    assert is_write_refusal(error("DELETE FROM events WHERE id = %(id)s"))
    assert not is_write_refusal(error("SELECT events.occurred_at FROM events"))
    assert not is_write_refusal(error("WITH hits AS (SELECT 1) SELECT * FROM hits"))
