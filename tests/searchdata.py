"""Events written straight into the table (already embedded with the stub's vectors), so
search tests can have thousands of rows in a second without waiting for a worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.models import Chunk, Event
from tests.conftest import DIM
from tests.stub_embedder import embed_text

MODEL = "stub-embed"
CHUNKING = "ch768o96p"  # the chunker of the test stack (EMBEDDER=ollama, the defaults)


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
        "chunking": CHUNKING if embedded else None,
    }


def store(db: Engine, rows: list[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` in one executemany, each embedded one with its whole text as its one
    chunk (the stub's vector of it); their ids as strings, in order."""
    chunks = [
        {
            "event_id": r["id"],
            "position": 0,
            "tenant": r["tenant"],
            "char_start": 0,
            "char_end": len(r["text"]),
            "tokens": len(r["text"]) // 3 + 1,
            "model": r["model"],
            "embedding": embed_text(r["text"], DIM),
        }
        for r in rows
        if r["status"] == "embedded"
    ]
    with Session(db) as session, session.begin():
        session.execute(insert(Event), rows)
        if chunks:
            session.execute(insert(Chunk), chunks)
    return [str(r["id"]) for r in rows]
