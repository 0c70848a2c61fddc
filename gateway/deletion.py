"""``DELETE /api/v1/events/{id}`` (scope ``ingest``): 204, and its chunks leave search (the
database's trigger on ``status = 'deleted'`` removes them in the same transaction: migration
0005).

The row stays with status ``deleted`` and no vector or text, so that a later status read
says ``deleted``, its idempotency key still answers as the first response did, and a task
for it that runs later (a redelivered message) finds nothing queued and writes nothing.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import text

from common.errors import NotFound
from gateway.auth import IngestKey
from gateway.deps import SessionDep

router = APIRouter(prefix="/api/v1/events", tags=["events"])


@router.delete(
    "/{event_id}", status_code=204, responses={404: {"description": "unknown, or another tenant's"}}
)
async def delete_event(event_id: str, session: SessionDep, caller: IngestKey) -> Response:
    """Delete an event of the caller's tenant; deleting it again is 204 too (idempotent)."""
    try:
        uid = uuid.UUID(event_id)
    except ValueError:
        raise NotFound(f"no event {event_id!r}") from None
    deleted = await session.execute(
        text(
            "UPDATE events SET status = 'deleted', text = '', error = NULL,"
            " due_at = NULL, updated_at = now() WHERE id = :id AND tenant = :tenant RETURNING id"
        ),
        {"id": uid, "tenant": caller.tenant},
    )
    if deleted.first() is None:
        raise NotFound(f"no event {event_id!r}")
    # An open dead letter of a deleted event has nothing left to replay.
    await session.execute(
        text("DELETE FROM dead_letters WHERE event_id = :id AND replayed_at IS NULL"), {"id": uid}
    )
    return Response(status_code=204)
