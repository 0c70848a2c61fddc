"""``/api/v1/dead-letters`` (scope ``admin``): list the caller's tenant's dead letters, replay
one, replay all. Replaying puts the event back to ``queued`` with its attempts reset, marks
the letter replayed (kept as history) and publishes the event again.

The database change is committed before publishing (``common.lifecycle.handoff``,
``if_down="requeue"``); if publishing fails the answer is still 202, because the event is
durably queued and due now: the sweeper publishes it at its next round (answering 503 would
invite a retry that finds no dead letter to replay).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from common.errors import NotFound
from common.lifecycle import transitions
from common.lifecycle.handoff import hand_off_async
from common.models import DeadLetter, Event
from common.settings import Settings
from gateway.auth import AdminKey
from gateway.cursors import decode_cursor, paged
from gateway.deps import RedisDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    error: str
    attempts: int
    created_at: datetime
    source: str
    type: str


_EXAMPLE_ID = "5c0f3a52-7d4e-4c2a-9a51-2f4b8f7e9c10"


class DeadLetterPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dead_letters": [
                        {
                            "id": "9b1d7c2e-3f4a-4b5c-8d6e-7f8091a2b3c4",
                            "event_id": _EXAMPLE_ID,
                            "error": "ollama returned NaN or infinite values",
                            "attempts": 1,
                            "created_at": "2026-11-01T09:00:03.102Z",
                            "source": "jobboard",
                            "type": "job.posted",
                        }
                    ],
                    "next_cursor": None,
                }
            ]
        }
    )

    dead_letters: list[DeadLetterOut]
    next_cursor: str | None


class Replayed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"replayed": 1, "event_ids": [_EXAMPLE_ID]}]}
    )

    replayed: int
    event_ids: list[uuid.UUID]


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    session: SessionDep,
    caller: AdminKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> DeadLetterPage:
    """Dead letters not yet replayed, newest first, ``limit`` per page."""
    query = (
        select(DeadLetter, Event.source, Event.type)
        .join(Event, Event.id == DeadLetter.event_id)
        .where(DeadLetter.tenant == caller.tenant, DeadLetter.replayed_at.is_(None))
        .order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        after = decode_cursor(cursor)
        query = query.where(tuple_(DeadLetter.created_at, DeadLetter.id) < after)
    rows = (await session.execute(query)).all()
    shown = [
        DeadLetterOut(
            id=row.DeadLetter.id,
            event_id=row.DeadLetter.event_id,
            error=row.DeadLetter.error,
            attempts=row.DeadLetter.attempts,
            created_at=row.DeadLetter.created_at,
            source=row.source,
            type=row.type,
        )
        for row in rows
    ]
    page, next_cursor = paged(shown, limit, lambda d: (d.created_at, d.id))
    return DeadLetterPage(dead_letters=page, next_cursor=next_cursor)


async def replay(
    session: AsyncSession,
    redis: Redis,
    tenant: str,
    letter_id: uuid.UUID | None,
    settings: Settings,
) -> Replayed:
    """Replay one letter (``letter_id``) or all of the tenant's; commits, then publishes."""
    done = await session.run_sync(transitions.replay, tenant, letter_id, settings.sweep_after_s)
    if letter_id is not None and not done.letters:
        raise NotFound(f"no dead letter {letter_id}")
    event_ids = done.event_ids
    await session.commit()
    await hand_off_async(
        session, redis, [str(i) for i in event_ids], correlation_id.get(), "requeue", settings
    )
    return Replayed(replayed=len(event_ids), event_ids=event_ids)


@router.post("/replay", status_code=202, response_model=Replayed)
async def replay_all(
    session: SessionDep, redis: RedisDep, settings: SettingsDep, caller: AdminKey
) -> Replayed:
    """Replay every dead letter of the caller's tenant."""
    return await replay(session, redis, caller.tenant, None, settings)


@router.post(
    "/{dead_letter_id}/replay",
    status_code=202,
    response_model=Replayed,
    responses={404: {"description": "no such dead letter for this tenant"}},
)
async def replay_one(
    dead_letter_id: str,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    caller: AdminKey,
) -> Replayed:
    """Replay one dead letter. Another tenant's, or one already replayed, is 404."""
    try:
        uid = uuid.UUID(dead_letter_id)
    except ValueError:
        raise NotFound(f"no dead letter {dead_letter_id!r}") from None
    return await replay(session, redis, caller.tenant, uid, settings)
