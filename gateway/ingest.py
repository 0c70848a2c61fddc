"""Recording events in PostgreSQL and handing them to the queue.

Order of effects, chosen so that nothing is half-written: rows are committed first, then
the messages are published; if publishing fails the rows are deleted again and the client
gets 503 (its retry is then processed afresh). The unique constraint on
(tenant, idempotency_key) is the last line against duplicates, whatever happens to Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common import subjects
from common.errors import ServiceUnavailable
from common.models import Event, EventStatus
from common.queue import enqueue_embed
from common.schemas import EventAccepted, EventIn
from gateway.idempotency import key_reused


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
        "status": EventStatus.queued,
        "subject": e.subject,
    }


def versions(
    rows: Sequence[dict[str, Any]], items: Sequence[NewEvent], inserted: dict[Any, Any]
) -> list[subjects.Version]:
    """The newly inserted events that have a subject, as its versions (or deletions)."""
    return [
        subjects.Version(
            new.id,
            item.event.source,
            item.event.subject,
            (item.event.occurred_at or new.created_at, new.seq),
            subjects.is_deletion(item.event.type, item.event.deleted),
        )
        for row, item in zip(rows, items, strict=True)
        if item.event.subject is not None and (new := inserted.get(row["id"])) is not None
    ]


async def record_events(
    session: AsyncSession, tenant: str, items: Sequence[NewEvent]
) -> list[tuple[EventAccepted, bool] | Exception]:
    """Insert ``items`` in one statement; keys already known give the first event back.

    Returns, per item: ``(answer, replayed)``, or the error (``idempotency_key_reused``) for
    a known key sent with another body. Items must have distinct keys."""
    if not items:
        return []
    rows = [_row(tenant, item) for item in items]
    table = cast(Table, Event.__table__)
    inserted = {
        r.id: r
        for r in await session.execute(
            insert(table)
            .values(rows)
            .on_conflict_do_nothing(constraint="uq_events_tenant_key")
            .returning(table.c.id, table.c.created_at, table.c.seq)
        )
    }
    await session.run_sync(subjects.settle, tenant, versions(rows, items, inserted))
    missing = [item.key for row, item in zip(rows, items, strict=True) if row["id"] not in inserted]
    known = {}
    if missing:
        known = {
            r.idempotency_key: r
            for r in await session.execute(
                select(Event.id, Event.created_at, Event.fingerprint, Event.idempotency_key).where(
                    Event.tenant == tenant, Event.idempotency_key.in_(missing)
                )
            )
        }
    results: list[tuple[EventAccepted, bool] | Exception] = []
    for row, item in zip(rows, items, strict=True):
        new = inserted.get(row["id"])
        if new is not None:
            results.append(
                (EventAccepted(id=new.id, status="queued", created_at=new.created_at), False)
            )
            continue
        first = known[item.key]
        if first.fingerprint != item.fp:
            results.append(key_reused())
        else:
            answer = EventAccepted(id=first.id, status="queued", created_at=first.created_at)
            results.append((answer, True))
    return results


async def hand_off(session: AsyncSession, event_ids: list[str], request_id: str | None) -> None:
    """Publish embed messages for committed events; on failure delete them and raise 503."""
    if not event_ids:
        return
    try:
        await asyncio.to_thread(enqueue_embed, event_ids, request_id)
    except Exception as error:
        uids = [uuid.UUID(i) for i in event_ids]
        await session.execute(delete(Event).where(Event.id.in_(uids)))
        await session.run_sync(subjects.forget, uids)
        await session.commit()
        raise ServiceUnavailable(
            f"the queue is unavailable ({type(error).__name__}); nothing was recorded, retry later",
            code="queue_unavailable",
        ) from error
