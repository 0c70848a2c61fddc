"""Recording events: idempotency-key checks, the row, and the hand-off to the queue.

Order of effects, chosen so that nothing is half-written: the row is committed first, then
the message is published; if publishing fails the row is deleted again and the client gets
503 (its retry is then processed afresh). The unique constraint on (tenant, idempotency_key)
is the last line against duplicates, whatever happens to Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import AppError, ServiceUnavailable
from common.models import Event, EventStatus
from common.queue import enqueue_embed
from common.schemas import EventAccepted, EventIn

MAX_KEY_LENGTH = 255


def check_idempotency_key(key: str | None, required: bool) -> str | None:
    """Validate the header value (IETF draft: a string, here at most 255 printable chars)."""
    if key is None or key == "":
        if required:
            raise AppError(
                "the Idempotency-Key header is required on this endpoint",
                code="idempotency_key_missing",
            )
        return None
    if len(key) > MAX_KEY_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise AppError(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters without control characters",
            code="idempotency_key_invalid",
        )
    return key


def fingerprint(payload: Any) -> str:
    """sha256 of the canonical JSON of a parsed body: key order and spacing do not matter."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def record_event(
    session: AsyncSession, tenant: str, key: str | None, digest: str, event: EventIn
) -> tuple[EventAccepted, bool]:
    """Insert the event unless the key is known; returns (the answer, whether it is a replay).

    A known key with another payload is refused (``idempotency_key_reused``)."""
    event_id = uuid.uuid4()
    inserted = (
        await session.execute(
            insert(Event)
            .values(
                id=event_id,
                tenant=tenant,
                idempotency_key=key,
                fingerprint=digest,
                source=event.source,
                type=event.type,
                text=event.text,
                meta=event.metadata,
                occurred_at=event.occurred_at,
                status=EventStatus.queued,
            )
            .on_conflict_do_nothing(constraint="uq_events_tenant_key")
            .returning(Event.id, Event.created_at)
        )
    ).first()
    if inserted is not None:
        return EventAccepted(id=inserted.id, status="queued", created_at=inserted.created_at), False
    first = (
        await session.execute(
            select(Event.id, Event.created_at, Event.fingerprint).where(
                Event.tenant == tenant, Event.idempotency_key == key
            )
        )
    ).one()
    if first.fingerprint != digest:
        raise AppError(
            "this Idempotency-Key was used with a different request body",
            code="idempotency_key_reused",
            status_code=422,
        )
    return EventAccepted(id=first.id, status="queued", created_at=first.created_at), True


async def hand_off(session: AsyncSession, event_ids: list[str], request_id: str | None) -> None:
    """Publish the embed messages for committed events; on failure delete them and raise 503."""
    try:
        await asyncio.to_thread(enqueue_embed, event_ids, request_id)
    except Exception as error:
        await session.execute(delete(Event).where(Event.id.in_([uuid.UUID(i) for i in event_ids])))
        await session.commit()
        raise ServiceUnavailable(
            f"the queue is unavailable ({type(error).__name__}); nothing was recorded, retry later",
            code="queue_unavailable",
        ) from error
