"""Events written straight into the table (already embedded with the stub's vectors), so
search tests can have thousands of rows in a second without waiting for a worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.models import Event
from tests.conftest import DIM
from tests.stub_embedder import embed_text

MODEL = "stub-embed"


def stored_event(
    tenant: str,
    text_: str,
    source: str = "jobboard",
    type_: str = "job.posted",
    metadata: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    status: str = "embedded",
    model: str = MODEL,
) -> dict[str, Any]:
    """One row as the worker would leave it (``status="queued"``: not embedded yet)."""
    embedded = status == "embedded"
    return {
        "id": uuid.uuid4(),
        "tenant": tenant,
        "source": source,
        "type": type_,
        "text": text_,
        "meta": metadata or {},
        "occurred_at": occurred_at,
        "status": status,
        "attempts": 1 if embedded else 0,
        "model": model if embedded else None,
        "embedding": embed_text(text_, DIM) if embedded else None,
    }


def store(db: Engine, rows: list[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` in one executemany; their ids as strings, in order."""
    with Session(db) as session, session.begin():
        session.execute(insert(Event), rows)
    return [str(r["id"]) for r in rows]
