"""The worker's database side. Each function opens and releases its own connection, so no
connection is held while the embedder works."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update

from common.db import sync_sessions
from common.models import Event, EventStatus


@dataclass(frozen=True)
class Pending:
    id: uuid.UUID
    text: str
    attempts: int


def load_queued(ids: Sequence[str]) -> list[Pending]:
    """The events among ``ids`` still waiting; embedded, failed or deleted ones are skipped,
    which is what makes a redelivered message harmless."""
    uids = [uuid.UUID(i) for i in dict.fromkeys(ids)]
    with sync_sessions()() as session:
        rows = session.execute(
            select(Event.id, Event.text, Event.attempts).where(
                Event.id.in_(uids), Event.status == EventStatus.queued
            )
        ).all()
    return [Pending(r.id, r.text, r.attempts) for r in rows]


def save_vectors(events: Sequence[Pending], vectors: Sequence[list[float]], model: str) -> int:
    """Store the vectors in one executemany; only rows still ``queued`` change, so a deleted
    event stays deleted and a second run of the same batch writes nothing."""
    with sync_sessions()() as session, session.begin():
        result = session.connection().execute(
            update(Event)
            .where(Event.id == bindparam("b_id"), Event.status == EventStatus.queued)
            .values(
                embedding=bindparam("b_embedding", type_=Event.embedding.type),
                model=model,
                status=EventStatus.embedded,
                attempts=Event.attempts + 1,
                error=None,
                embedded_at=func.now(),
                updated_at=func.now(),
            ),
            [{"b_id": e.id, "b_embedding": v} for e, v in zip(events, vectors, strict=True)],
        )
        return result.rowcount


def record_failure(events: Sequence[Pending], error: str, final: bool) -> None:
    """Count an attempt and keep its error; ``final`` marks the events ``failed``."""
    values: dict[str, object] = {
        "attempts": Event.attempts + 1,
        "error": error[:2000],
        "updated_at": func.now(),
    }
    if final:
        values["status"] = EventStatus.failed
    with sync_sessions()() as session, session.begin():
        session.execute(
            update(Event)
            .where(Event.id.in_([e.id for e in events]), Event.status == EventStatus.queued)
            .values(**values)
        )
