"""``/api/v1/events``: ingest one event, read its status."""

from __future__ import annotations

import uuid
from typing import Annotated

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Header, Request, Response
from sqlalchemy import select

from common.errors import NotFound
from common.models import Event
from common.schemas import EventAccepted, EventIn, EventOut
from gateway.auth import IngestKey, Principal, authenticate
from gateway.deps import SessionDep, SettingsDep
from gateway.ingest import check_idempotency_key, fingerprint, hand_off, record_event

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.post(
    "",
    status_code=202,
    response_model=EventAccepted,
    responses={
        400: {"description": "missing or invalid Idempotency-Key"},
        422: {"description": "invalid body, or key reused with another body"},
        503: {"description": "a store is down; retry after Retry-After"},
    },
)
async def ingest_event(
    event: EventIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    caller: IngestKey,
    idempotency_key: Annotated[str | None, Header()] = None,
    x_idempotency_key: Annotated[str | None, Header()] = None,
) -> EventAccepted:
    """Record an event and queue it for embedding. Answers 202 once it is on the queue."""
    key = check_idempotency_key(
        idempotency_key if idempotency_key is not None else x_idempotency_key,
        settings.idempotency_required,
    )
    digest = fingerprint(await request.json())
    accepted, replayed = await record_event(session, caller.tenant, key, digest, event)
    response.headers["Location"] = f"/api/v1/events/{accepted.id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
        return accepted
    await session.commit()
    await hand_off(session, [str(accepted.id)], correlation_id.get())
    return accepted


@router.get("/{event_id}", response_model=EventOut, responses={404: {"description": "unknown"}})
async def get_event(
    event_id: str, session: SessionDep, caller: Annotated[Principal, Depends(authenticate)]
) -> EventOut:
    """The event's processing status (any scope). Another tenant's id is 404, like a missing one."""
    tenant = caller.tenant
    try:
        uid = uuid.UUID(event_id)
    except ValueError:
        raise NotFound(f"no event {event_id!r}") from None
    row = await session.scalar(select(Event).where(Event.id == uid, Event.tenant == tenant))
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    return EventOut(
        id=row.id,
        status=row.status,
        source=row.source,
        type=row.type,
        text=row.text,
        metadata=row.meta,
        occurred_at=row.occurred_at,
        attempts=row.attempts,
        error=row.error,
        model=row.model,
        embedded_at=row.embedded_at,
        created_at=row.created_at,
    )
