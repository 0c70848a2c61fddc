"""Recording events in PostgreSQL (transition ``record``); the handlers then commit and hand
them to the queue through ``common.lifecycle.handoff`` (``if_down="withdraw"``: if
publishing fails the rows are withdrawn and the client gets 503, so its retry is processed
afresh and nothing is half-written). The unique constraint on (tenant, idempotency_key) is
the last line against duplicates, whatever happens to Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.lifecycle import subjects, transitions
from common.models import Event
from common.schemas import EventAccepted, EventIn
from gateway.idempotency import key_reused


@dataclass(frozen=True)
class Recorded:
    """What recording one item gave: its answer, whether it replays an event recorded
    before (a known key with the same body), and then how long ago that one was recorded,
    by the database's clock (a single POST tells a first request still in flight by it)."""

    accepted: EventAccepted
    replayed: bool
    age_s: float = 0.0


@dataclass(frozen=True)
class NewEvent:
    """A validated event about to be recorded."""

    key: str | None
    fp: str
    event: EventIn


def answer_bytes(accepted: EventAccepted) -> bytes:
    """The exact bytes of a 202: stored for replays, and rebuilt identically from the row."""
    return orjson.dumps(accepted.model_dump(mode="json"))


def _row(tenant: str, item: NewEvent) -> dict[str, object]:
    e = item.event
    return {
        "id": uuid.uuid4(),
        "tenant": tenant,
        "idempotency_key": item.key,
        "fingerprint": item.fp,
        "source": e.source,
        "type": e.type,
        "text": e.text,
        "metadata": e.metadata,
        "occurred_at": e.occurred_at,
        "subject": e.subject,
    }


async def record_events(
    session: AsyncSession | AsyncConnection,
    tenant: str,
    items: Sequence[NewEvent],
    delete_types: Sequence[str],
) -> list[Recorded | Exception]:
    """Insert ``items`` in one statement; keys already known give the first event back.

    ``delete_types`` are the event types that delete their subject (``SUBJECT_DELETE_TYPES``,
    read off the flat settings: building the ingest view costs CPU on every POST).

    Returns, per item: its :class:`Recorded`, or the error (``idempotency_key_reused``) for
    a known key sent with another body. Items must have distinct keys. Items without a
    subject may be recorded on an autocommit connection (no ORM session)."""
    if not items:
        return []
    rows = [_row(tenant, item) for item in items]
    # Events that delete their subject (docs/subjects.md): "deleted": true, or their type.
    deleting = {
        cast(uuid.UUID, row["id"])
        for row, item in zip(rows, items, strict=True)
        if item.event.subject is not None
        and subjects.is_deletion(item.event.type, item.event.deleted, delete_types)
    }
    inserted = await session.run_sync(transitions.record, rows, deleting)
    missing = [item.key for row, item in zip(rows, items, strict=True) if row["id"] not in inserted]
    known = {}
    if missing:
        known = {
            r.idempotency_key: r
            for r in await session.execute(
                select(
                    Event.id,
                    Event.created_at,
                    Event.fingerprint,
                    Event.idempotency_key,
                    func.extract("epoch", func.now() - Event.created_at).label("age_s"),
                ).where(Event.tenant == tenant, Event.idempotency_key.in_(missing))
            )
        }
    results: list[Recorded | Exception] = []
    for row, item in zip(rows, items, strict=True):
        created_at = inserted.get(cast(uuid.UUID, row["id"]))
        if created_at is not None:
            answer = EventAccepted(id=row["id"], status="queued", created_at=created_at)
            results.append(Recorded(answer, replayed=False))
            continue
        first = known[item.key]
        if first.fingerprint != item.fp:
            results.append(key_reused())
        else:
            answer = EventAccepted(id=first.id, status="queued", created_at=first.created_at)
            results.append(Recorded(answer, replayed=True, age_s=float(first.age_s)))
    return results
