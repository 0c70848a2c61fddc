"""``/api/v1/events``: ingest one event, read its status, list the tenant's events."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from common.errors import NotFound
from common.lifecycle.handoff import hand_off_async
from common.models import Event
from common.schemas import EventAccepted, EventIn, EventOut, EventPage
from common.settings import Settings
from gateway.auth import IngestKey, Principal, SearchKey, authenticate
from gateway.cloudevents import EVENT_OPENAPI
from gateway.cursors import decode_cursor, paged
from gateway.deps import SessionDep
from gateway.event_filters import SHOWN, Source, Status, matching
from gateway.idempotency import (
    IdempotencyRecord,
    Stored,
    fingerprint,
    in_progress,
    key_from_header,
    record_for,
)
from gateway.ingest import NewEvent, Recorded, answer_bytes, record_events

router = APIRouter(prefix="/api/v1/events", tags=["events"])
log = logging.getLogger("eventsearch.gateway")


@router.post(
    "",
    status_code=202,
    response_model=EventAccepted,
    responses={
        400: {"description": "missing or invalid Idempotency-Key"},
        409: {"description": "the first request with this key is still being processed"},
        422: {"description": "invalid body, or key reused with another body"},
        503: {"description": "a store is down; nothing was recorded; retry after Retry-After"},
    },
    openapi_extra=EVENT_OPENAPI,
)
async def ingest_event(
    event: EventIn,
    request: Request,
    caller: IngestKey,
    idempotency_key: Annotated[str | None, Header()] = None,
    x_idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Record an event and queue it for embedding; 202 once it is on the queue.

    The same key with the same body replays the first answer byte for byte
    (``Idempotent-Replayed: true``); with another body it is 422 ``idempotency_key_reused``;
    while the first request still runs, 409 ``idempotency_key_in_progress``.

    Also takes a CloudEvent (docs/subjects.md): structured mode as
    ``application/cloudevents+json``, or binary mode (``ce-*`` headers, the data as the
    body); its ``ce:{source}:{id}`` is then the idempotency key."""
    # The app's settings and Redis client straight from its state, not as dependencies
    # (gateway.deps): each dependency FastAPI solves costs CPU on every POST (issue 16).
    state = request.app.state
    settings: Settings = state.settings
    redis: Redis = state.redis
    key = key_from_header(
        idempotency_key if idempotency_key is not None else x_idempotency_key,
        settings.idempotency_required,
    )
    item = NewEvent(key, fingerprint(await request.json()), event)
    # No lock before the INSERT: the unique key decides, and a repeat of a key that is still
    # being handed off gets 409 (gateway/idempotency.py).
    record = (
        None
        if key is None
        else record_for(redis, caller.tenant, key, item.fp, settings.idempotency_ttl_s)
    )
    if event.subject is None:
        # Recording it is one INSERT (a subject adds statements that settle it): on an
        # autocommit connection that statement is its own transaction, which spares the
        # BEGIN and COMMIT round trips, and no ORM session is set up around it (issue 16);
        # the row is committed before the hand-off all the same, and a withdrawal is one
        # DELETE.
        reader: AsyncEngine = state.reader
        async with reader.connect() as connection:
            recorded, answer = await _accept(connection, redis, item, caller, record, settings)
    else:
        sessions: async_sessionmaker[AsyncSession] = state.sessions
        async with sessions() as session:
            recorded, answer = await _accept(session, redis, item, caller, record, settings)
            await session.commit()
    young = recorded.age_s < settings.idempotency_lock_ttl_s
    if recorded.replayed and record is not None and young:
        # Recorded moments ago: its request may still be handing it off, and would withdraw
        # it if the queue refused it. Only the answer it stored is proof.
        stored = await record.stored()
        if stored is None or stored.location != answer.location:
            raise in_progress(retry_after=1)
    return _answer(answer, recorded.replayed)


async def _accept(
    db: AsyncSession | AsyncConnection,
    redis: Redis,
    item: NewEvent,
    caller: Principal,
    record: IdempotencyRecord | None,
    settings: Settings,
) -> tuple[Recorded, Stored]:
    """Record ``item`` on ``db`` and, if it is new, commit and hand it to the queue, its
    answer stored in the same round trip. Returns what was recorded and its 202 (the same
    bytes for the first request and every replay)."""
    [result] = await record_events(db, caller.tenant, [item], settings.subject_delete_types)
    if isinstance(result, Exception):
        raise result
    accepted = result.accepted
    answer = Stored(202, answer_bytes(accepted), f"/api/v1/events/{accepted.id}")
    if not result.replayed:
        await db.commit()
        # The embed message and the stored answer go in one round trip (issue 16). Should
        # it fail, the hand-off withdraws the row; whether the answer's SET got through is
        # then unknown, and it is deleted either way, so the retry starts afresh.
        try:
            await hand_off_async(
                db,
                redis,
                [str(accepted.id)],
                correlation_id.get(),
                "withdraw",
                settings,
                along=None if record is None else record.completion(answer),
            )
        except BaseException:
            if record is not None:
                await _forget(record)
            raise
    return result, answer


def _answer(stored: Stored, replayed: bool) -> Response:
    headers = {"Location": stored.location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(stored.body, stored.status, headers, media_type="application/json")


async def _forget(record: IdempotencyRecord) -> None:
    try:
        await record.release()
    except RedisError:
        log.warning("could not forget idempotent answer %s; it may be replayed", record.name)


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
    # The vector is not part of the answer: leave it in the database rather than parse
    # 384+ floats on every status poll.
    row = (
        await session.execute(
            select(*SHOWN.values()).where(Event.id == uid, Event.tenant == tenant)
        )
    ).first()
    if row is None:
        raise NotFound(f"no event {event_id!r}")
    return _out(row)


@router.get("", response_model=EventPage, responses={400: {"description": "invalid cursor"}})
async def list_events(
    session: SessionDep,
    caller: SearchKey,
    source: Source = None,
    type: Source = None,
    status: Status = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> EventPage:
    """The caller's tenant's events, newest first, ``limit`` per page (scope ``search``:
    a listing reads every event's text, which an ingest-only key cannot otherwise do).
    Pass ``next_cursor`` back as ``cursor`` for the next page; it is null on the last."""
    query = (
        select(*SHOWN.values())
        .where(*matching(caller.tenant, source, type, status))
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(tuple_(Event.created_at, Event.id) < decode_cursor(cursor))
    rows = [_out(row) for row in (await session.execute(query)).all()]
    page, next_cursor = paged(rows, limit, lambda e: (e.created_at, e.id))
    return EventPage(events=page, next_cursor=next_cursor)


def _out(row: Any) -> EventOut:
    """The answer for a row of :data:`SHOWN`."""
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
        subject=row.subject,
    )
