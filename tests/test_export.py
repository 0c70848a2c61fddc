"""Export of the caller's events as NDJSON and CSV, streamed."""

from __future__ import annotations

import csv
import io
import json

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key
from tests.processes import Gateway


def test_export_ndjson_and_csv_hold_every_event_of_the_tenant_only(
    gateway: Gateway, db: Engine, client: httpx.Client
) -> None:
    key = make_key(db, f"export-{new_key()[-8:]}")
    auth = {"X-API-Key": key}
    texts = [f'line {i}, with "quotes" and\nnewline' for i in range(25)]
    events = [
        {"source": "s", "type": "t", "text": t, "metadata": {"i": i}, "idempotency_key": new_key()}
        for i, t in enumerate(texts)
    ]
    assert (
        httpx.post(
            f"{gateway.url}/api/v1/events/batch", json={"events": events}, headers=auth
        ).json()["accepted"]
        == 25
    )
    client.post(
        "/api/v1/events",
        json={"source": "s", "type": "t", "text": "other tenant"},
        headers={"Idempotency-Key": new_key()},
    )

    ndjson = httpx.get(f"{gateway.url}/api/v1/export/events.ndjson", headers=auth)
    assert ndjson.status_code == 200
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in ndjson.text.splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(texts)
    assert {r["metadata"]["i"] for r in rows} == set(range(25))

    exported = httpx.get(f"{gateway.url}/api/v1/export/events.csv", headers=auth)
    assert exported.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["text"] for r in records) == sorted(texts)
    assert json.loads(records[0]["metadata"]).keys() == {"i"}

    filtered = httpx.get(
        f"{gateway.url}/api/v1/export/events.ndjson", params={"source": "nope"}, headers=auth
    )
    assert filtered.text == ""


def test_export_needs_the_admin_scope(gateway: Gateway, db: Engine) -> None:
    key = make_key(db, "t1", "ingest,search")
    for fmt in ("ndjson", "csv"):
        response = httpx.get(
            f"{gateway.url}/api/v1/export/events.{fmt}", headers={"X-API-Key": key}
        )
        assert response.status_code == 403
