"""``/api/v1/subjects/{source}/{subject}``: a subject's history (``GET``, scope ``search``)
and its deletion (``DELETE``, scope ``ingest``); the rules: ``common/lifecycle/subjects.py``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import func, select, tuple_

from common.errors import NotFound
from common.lifecycle import subjects
from common.models import Event, Subject
from common.schemas import SubjectHistory
from gateway.auth import IngestKey, SearchKey
from gateway.cursors import decode_cursor, paged
from gateway.deps import SessionDep
from gateway.event_filters import SHOWN
from gateway.events import _out

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"])

SourcePath = Annotated[str, Path(min_length=1, max_length=128)]
# :path: an upstream id may hold slashes ("jobs/42").
SubjectPath = Annotated[str, Path(min_length=1, max_length=255)]
KEY_AT = func.coalesce(Event.occurred_at, Event.created_at)


@router.get(
    "/{source}/{subject:path}",
    response_model=SubjectHistory,
    responses={404: {"description": "unknown subject"}, 400: {"description": "invalid cursor"}},
)
async def history(
    source: SourcePath,
    subject: SubjectPath,
    session: SessionDep,
    caller: SearchKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> SubjectHistory:
    """The subject's versions, newest first (the order that decides which is current), with
    their status: ``embedded`` (found by search), ``queued``, ``superseded``, ``deleted``."""
    state = (
        await session.execute(
            select(Subject.current_event_id, Subject.deleted_at).where(
                Subject.tenant == caller.tenant,
                Subject.source == source,
                Subject.subject == subject,
            )
        )
    ).first()
    if state is None:
        raise NotFound(f"no subject {subject!r} of source {source!r}")
    query = (
        select(*SHOWN.values(), KEY_AT.label("key_at"))
        .where(Event.tenant == caller.tenant, Event.source == source, Event.subject == subject)
        .order_by(KEY_AT.desc(), Event.seq.desc())
        .limit(limit + 1)
    )
    if cursor:
        at, last = decode_cursor(cursor)
        last_seq = select(Event.seq).where(Event.id == last).scalar_subquery()
        query = query.where(tuple_(KEY_AT, Event.seq) < tuple_(at, last_seq))
    rows = (await session.execute(query)).all()
    page, next_cursor = paged(rows, limit, lambda row: (row.key_at, row.id))
    return SubjectHistory(
        source=source,
        subject=subject,
        current=state.current_event_id,
        deleted_at=state.deleted_at,
        versions=[_out(row) for row in page],
        next_cursor=next_cursor,
    )


@router.delete(
    "/{source}/{subject:path}",
    status_code=204,
    responses={404: {"description": "unknown subject, or another tenant's"}},
)
async def delete_subject(
    source: SourcePath, subject: SubjectPath, session: SessionDep, caller: IngestKey
) -> Response:
    """Delete the subject: every version is erased (as ``DELETE /api/v1/events/{id}`` does)
    and search finds none. Deleting again is 204 too. A version dated after the deletion
    brings the subject back; one dated before it is erased on arrival."""
    if not await session.run_sync(subjects.delete, caller.tenant, source, subject):
        raise NotFound(f"no subject {subject!r} of source {source!r}")
    return Response(status_code=204)
