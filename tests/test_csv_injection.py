"""CSV export neutralises formula injection (issue 12, item 8): cells a spreadsheet would
evaluate get a leading single quote (OWASP), losslessly; NDJSON keeps values as stored."""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key
from tests.processes import Gateway

DANGEROUS = ["=1+2", "+1", "-1", "@SUM(A1:A2)", "\tx", "\rx", '=HYPERLINK("http://x")']
QUOTED = ["'already quoted", "'=1"]  # quoted too, so that dropping one ' is always right
HARMLESS = ["plain", " =1 with a space", "1-2", "a=b"]


def test_csv_cells_that_could_be_formulas_are_quoted(db: Engine, gateway: Gateway) -> None:
    tenant = f"csv-{uuid.uuid4().hex[:8]}"
    texts = DANGEROUS + QUOTED + HARMLESS
    events = [
        {"source": "=src", "type": "-t", "text": t, "idempotency_key": new_key()} for t in texts
    ]
    auth = {"X-API-Key": make_key(db, tenant)}
    batch = httpx.post(f"{gateway.url}/api/v1/events/batch", json={"events": events}, headers=auth)
    assert batch.json()["accepted"] == len(texts), batch.text

    exported = httpx.get(f"{gateway.url}/api/v1/export/events.csv", headers=auth)
    records = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    cells = sorted(r["text"] for r in records)
    expected = sorted(["'" + t for t in DANGEROUS + QUOTED] + HARMLESS)
    assert cells == expected
    assert {r["source"] for r in records} == {"'=src"}
    assert {r["type"] for r in records} == {"'-t"}
    assert sorted(c[1:] if c.startswith("'") else c for c in cells) == sorted(texts)

    ndjson = httpx.get(f"{gateway.url}/api/v1/export/events.ndjson", headers=auth)
    rows = [json.loads(line) for line in ndjson.text.splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(texts)
    assert {r["source"] for r in rows} == {"=src"}
