"""``DELETE /api/v1/events/{id}`` (scope ``ingest``): 204, and the event's content is erased.

The row stays as a tombstone (``transitions.delete`` says what it keeps: id, status
``deleted``, times, the idempotency key), so that a later status read says ``deleted``, its
idempotency key still answers as the first response did, and a task for it that runs later
(a redelivered message) finds nothing queued and writes nothing.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from common.errors import NotFound
from common.lifecycle import transitions
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
    outcome = await session.run_sync(transitions.delete, caller.tenant, uid)
    if outcome == "not_found":
        raise NotFound(f"no event {event_id!r}")
    return Response(status_code=204)
