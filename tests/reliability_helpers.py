"""Helpers of the reliability tests: events queued the way the gateway queues them, but all
at once (so that they land in one batch), and reads of the dead-letter table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.queue import enqueue_embed


def insert_queued(
    db: Engine, texts: Sequence[str], tenant: str = "t1", age_s: float = 0
) -> list[str]:
    """Rows as the gateway commits them (status queued), ``age_s`` old; nothing published."""
    ids = [str(uuid.uuid4()) for _ in texts]
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, idempotency_key, source, type, text, created_at)"
                " VALUES (:id, :tenant, :key, 'jobboard', 'job.posted', :text,"
                " now() - make_interval(secs => :age))"
            ),
            [
                {"id": i, "tenant": tenant, "key": f"direct-{i}", "text": t, "age": age_s}
                for i, t in zip(ids, texts, strict=True)
            ],
        )
    return ids


def queue_events(db: Engine, texts: Sequence[str], tenant: str = "t1") -> list[str]:
    """Insert, then publish every message on one connection: they arrive within milliseconds."""
    ids = insert_queued(db, texts, tenant)
    enqueue_embed(ids)
    return ids


def row(db: Engine, event_id: str) -> dict[str, object]:
    with db.connect() as conn:
        found = conn.execute(
            text(
                "SELECT status, attempts, error, embedded_at, embedding IS NOT NULL AS has_vector"
                " FROM events WHERE id = :id"
            ),
            {"id": event_id},
        ).one()
    return dict(found._mapping)


def dead_letters_of(db: Engine, event_id: str) -> list[dict[str, object]]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM dead_letters WHERE event_id = :id ORDER BY created_at"),
            {"id": event_id},
        ).all()
    return [dict(r._mapping) for r in rows]
