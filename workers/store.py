"""The worker's database side. Each function opens and releases its own connection, so no
connection is held while the embedder works.

Every write is conditional on the event still being ``queued``: a second run of the same
batch (a redelivered message, a sweeper's duplicate) changes nothing, and a deleted event
stays deleted whatever an old task for it does later.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from sqlalchemy import text

from common import subjects
from common.db import sync_sessions


@dataclass(frozen=True)
class Pending:
    id: uuid.UUID
    text: str
    attempts: int  # including the one under way
    error: str | None = None  # the previous attempt's, if any
    subject: str | None = None  # a version of this subject (common/subjects.py)


def claim(ids: Sequence[str], lease_s: float) -> list[Pending]:
    """Count an attempt for the events among ``ids`` still queued and return them.

    The attempt is counted *before* the embedder is called, so that a batch that kills its
    worker every time (a poison pill) still runs out of attempts. ``due_at`` moves to
    ``lease_s`` ahead: if this worker dies, the sweeper publishes the events again then."""
    uids = [uuid.UUID(i) for i in dict.fromkeys(ids)]
    if not uids:
        return []
    with sync_sessions()() as session, session.begin():
        rows = session.execute(
            text(
                "UPDATE events SET attempts = attempts + 1, updated_at = now(),"
                " due_at = now() + make_interval(secs => :lease)"
                " WHERE id = ANY(:ids) AND status = 'queued'"
                " RETURNING id, text, attempts, error, subject"
            ),
            {"ids": uids, "lease": lease_s},
        ).all()
    return [Pending(r.id, r.text, r.attempts, r.error, r.subject) for r in rows]


# The batch's vectors go to a temporary table by binary COPY, then into events with one
# UPDATE ... FROM it. Measured on 64 x 384-d vectors (docs/decisions.md): 6 ms against 34 ms
# for SQLAlchemy's executemany UPDATE and 10 ms for psycopg's, index upkeep aside (pgvector's
# HNSW insertions cost far more than either, whichever way the rows arrive).
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS embed_stage (id uuid, embedding vector) ON COMMIT DELETE ROWS"
)
STORE = text(
    "UPDATE events e SET embedding = s.embedding, model = :model, status = 'embedded',"
    " error = NULL, due_at = NULL, embedded_at = now(), updated_at = now()"
    " FROM embed_stage s WHERE e.id = s.id AND e.status = 'queued'"
)


_vector_type: TypeInfo | None = None


def vector_type(conn: psycopg.Connection[Any]) -> TypeInfo:
    """pgvector's type in this database, looked up once per process."""
    global _vector_type
    if _vector_type is None:
        _vector_type = TypeInfo.fetch(conn, "vector")
        if _vector_type is None:
            raise RuntimeError("the vector extension is missing: run `eventsearch migrate`")
    return _vector_type


def save_vectors(events: Sequence[Pending], vectors: Sequence[list[float]], model: str) -> int:
    """Store the vectors of events still queued; returns how many rows changed."""
    with sync_sessions()() as session, session.begin():
        conn = session.connection()
        conn.exec_driver_sql(STAGE)
        raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
        register_vector_info(raw, vector_type(raw))
        with (
            raw.cursor() as cursor,
            cursor.copy("COPY embed_stage (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["uuid", "vector"])
            for event, vector in zip(events, vectors, strict=True):
                copy.write_row((event.id, np.asarray(vector, dtype=np.float32)))
        subjects.before_store(session, [e.id for e in events if e.subject is not None])
        return conn.execute(STORE, {"model": model}).rowcount


def sift(events: Sequence[Pending], model: str) -> tuple[list[Pending], int]:
    """The claimed events still to embed, and how many took an unchanged text's vector over:
    versions of a subject that are not current, or are unchanged, need no embedder call
    (``common/subjects.sift``)."""
    versions = [e.id for e in events if e.subject is not None]
    if not versions:
        return list(events), 0
    with sync_sessions()() as session, session.begin():
        stale, reused = subjects.sift(session, versions, model)
    return [e for e in events if e.id not in stale and e.id not in reused], len(reused)


def schedule_retry(
    events: Sequence[Pending],
    error: str,
    delays: Sequence[float],
    request_ids: Mapping[str, str | None] | None = None,
) -> None:
    """Keep the error and make each event due again after its delay; the sweeper publishes it
    then (no ETA message sits in a worker's memory, where a restart would lose it), with the
    request id it came with."""
    rids = request_ids or {}
    with sync_sessions()() as session, session.begin():
        session.connection().execute(
            text(
                "UPDATE events SET error = :error, updated_at = now(),"
                " due_at = now() + make_interval(secs => :delay),"
                " request_id = coalesce(:rid, request_id)"
                " WHERE id = :id AND status = 'queued'"
            ),
            [
                {"id": e.id, "error": error[:2000], "delay": d, "rid": rids.get(str(e.id))}
                for e, d in zip(events, delays, strict=True)
            ],
        )


def dead_letter(events: Sequence[Pending], error: str) -> int:
    """Mark the events ``failed`` and write their dead letters, in one statement: the letter
    exists exactly when the status changed (a second run finds nothing queued)."""
    with sync_sessions()() as session, session.begin():
        result = session.execute(
            text(
                "WITH failed AS ("
                " UPDATE events SET status = 'failed', error = :error, due_at = NULL,"
                " updated_at = now()"
                " WHERE id = ANY(:ids) AND status = 'queued'"
                " RETURNING id, tenant, attempts)"
                " INSERT INTO dead_letters (id, event_id, tenant, error, attempts)"
                " SELECT gen_random_uuid(), id, tenant, :error, attempts FROM failed"
            ),
            {"ids": [e.id for e in events], "error": error[:2000]},
        )
        return result.rowcount


def claim_due(sweep_after_s: float, limit: int, unclaimed: bool) -> list[tuple[str, str | None]]:
    """Queued events whose retry is due or whose message is presumed lost; their ``due_at``
    moves ``sweep_after_s`` ahead. The claim is one atomic UPDATE (SKIP LOCKED), so several
    sweepers never hand out the same event twice in one round.

    ``unclaimed``: include events no worker has taken yet (``due_at`` NULL). The sweeper
    leaves them out while the broker queue still holds messages, where theirs most likely
    wait; a backlog older than ``sweep_after_s`` would otherwise be published twice."""
    with sync_sessions()() as session, session.begin():
        rows = session.execute(
            text(
                "UPDATE events SET due_at = now() + make_interval(secs => :after)"
                " WHERE id IN ("
                "  SELECT id FROM events WHERE status = 'queued'"
                "  AND coalesce(due_at, created_at + make_interval(secs => :after)) <= now()"
                "  AND (due_at IS NOT NULL OR :unclaimed)"
                "  ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
                " RETURNING id, request_id"
            ),
            {"after": sweep_after_s, "limit": limit, "unclaimed": unclaimed},
        ).all()
    return [(str(r.id), r.request_id) for r in rows]


def make_due_now(ids: Sequence[str]) -> None:
    """Undo a sweeper's claim whose publishing failed: try again at the next round."""
    with sync_sessions()() as session, session.begin():
        session.execute(
            text("UPDATE events SET due_at = now() WHERE id = ANY(:ids) AND status = 'queued'"),
            {"ids": [uuid.UUID(i) for i in ids]},
        )
