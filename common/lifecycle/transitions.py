"""Every write to the ``events`` table, as a named transition of an event's lifecycle.

Each function takes a sync SQLAlchemy :class:`~sqlalchemy.orm.Session`, never commits (the
caller owns the transaction: ``with sessions() as s, s.begin():`` in a worker, or
``await session.run_sync(transition, ...)`` on the gateway's ``AsyncSession``), states its
precondition in its own SQL (``WHERE status = 'queued'`` ...) and returns what happened, so
that a second run of the same step (a redelivered message, a sweeper's duplicate, a retried
request) changes nothing and says so.

The states (docs/architecture.md draws them)::

    record ──► queued ──claim──► queued (attempt counted, leased)
                 │  ▲  ├─store──────────► embedded ──reembed──► embedded (new model)
                 │  │  ├─schedule_retry─► queued (due after a backoff)
                 │  │  └─dead_letter────► failed ──replay──► queued
                 │  └─claim_due / requeue (the sweeper's hand-off deadline)
                 └─withdraw (its hand-off failed: the row goes) ; any ──delete──► deleted
    embedded ──reembed_failed──► embedded (old vector kept, error + dead letter)

Versions of a subject (``common/lifecycle/subjects.py``): a ``queued`` version that is not
its subject's current one becomes ``superseded`` (``sift``, ``before_store``), an ``embedded``
one too when a newer version is stored; a subject's deletion erases its versions as
:func:`delete` does.

``deleted`` is final: no transition leaves it, and every other transition's precondition
excludes it, so an old task for a deleted event writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from common import chunk_store
from common.lifecycle import subjects
from common.models import Event

ERROR_MAX = 2000  # characters of an error kept on the event and its dead letter


@dataclass(frozen=True)
class Pending:
    """A claimed event: what the worker needs to embed it."""

    id: uuid.UUID
    text: str
    attempts: int  # including the one under way
    error: str | None = None  # the previous attempt's, if any
    subject: str | None = None  # a version of this subject (common/lifecycle/subjects.py)


@dataclass(frozen=True)
class Replayed:
    """What :func:`replay` did: how many dead letters it marked, which events it queued."""

    letters: int
    event_ids: list[uuid.UUID]


DeleteOutcome = Literal["deleted", "already_deleted", "not_found"]


def _uuids(ids: Iterable[str | uuid.UUID]) -> list[uuid.UUID]:
    return [i if isinstance(i, uuid.UUID) else uuid.UUID(i) for i in dict.fromkeys(ids)]


# --- ingest ---------------------------------------------------------------------------


_EVENTS = cast(Table, Event.__table__)
# The rows as parameters, not in the statement (``.values([...])``): a statement that holds
# its values is compiled afresh on every call, which measured ~0.3 ms of CPU a single POST
# (issue 16); this one is built once and compiled once. SQLAlchemy still sends the rows as
# one multi-row INSERT (its "insertmanyvalues"), RETURNING included.
RECORD = (
    insert(_EVENTS)
    .on_conflict_do_nothing(constraint="uq_events_tenant_key")
    .returning(_EVENTS.c.id, _EVENTS.c.created_at, _EVENTS.c.seq)
)


def record(
    session: Session | Connection,
    rows: Sequence[Mapping[str, Any]],
    deleting: Collection[uuid.UUID] = (),
) -> dict[uuid.UUID, datetime]:
    """(none) → ``queued``: insert new events of one tenant in one statement. Precondition:
    no event of the tenant holds the idempotency key yet (``ON CONFLICT DO NOTHING`` on
    ``uq_events_tenant_key``). Returns the ids inserted with their ``created_at``; a row
    missing from the answer met a known key (the caller looks up the first event).

    Rows with a ``subject`` are versions of it, and settle it in the same transaction
    (:func:`common.lifecycle.subjects.settle`); those whose id is in ``deleting`` delete it.
    Rows without one may be recorded on a plain (autocommit) :class:`Connection`, with no
    ORM session around the statement (the gateway's single POST, issue 16)."""
    if not rows:
        return {}
    result = session.execute(RECORD, [{**row, "status": "queued"} for row in rows])
    inserted = {row.id: row for row in result}
    versions = [
        subjects.Version(
            new.id,
            row["source"],
            row["subject"],
            (row.get("occurred_at") or new.created_at, new.seq),
            new.id in deleting,
        )
        for row in rows
        if row.get("subject") is not None and (new := inserted.get(row["id"])) is not None
    ]
    subjects.settle(session, rows[0]["tenant"], versions)
    return {row.id: row.created_at for row in inserted.values()}


WITHDRAW = text(
    "DELETE FROM events WHERE id = ANY(:ids) AND status = 'queued' AND attempts = 0 RETURNING id"
)


def withdraw(session: Session | Connection, ids: Iterable[str | uuid.UUID]) -> int:
    """``queued`` → (none): take back events whose hand-off to the broker failed, so that
    the client's retry starts afresh. Precondition: still queued and never claimed (no
    worker has seen them). Returns how many rows went."""
    uids = _uuids(ids)
    if not uids:
        return 0
    connection = session.connection() if isinstance(session, Session) else session
    gone = [r.id for r in connection.execute(WITHDRAW, {"ids": uids})]
    # A subject whose current version went falls back to its latest remaining one.
    subjects.forget(session, gone)
    return len(gone)


# --- the worker -----------------------------------------------------------------------

CLAIM = text(
    "UPDATE events SET attempts = attempts + 1, updated_at = now(),"
    " due_at = now() + make_interval(secs => :lease)"
    " WHERE id = ANY(:ids) AND status = 'queued'"
    " RETURNING id, text, attempts, error, subject"
)


def claim(session: Session, ids: Iterable[str | uuid.UUID], lease_s: float) -> list[Pending]:
    """``queued`` → ``queued`` with an attempt counted: the events among ``ids`` still
    queued, returned for embedding.

    The attempt is counted *before* the embedder is called, so that a batch that kills its
    worker every time (a poison pill) still runs out of attempts. ``due_at`` moves to
    ``lease_s`` ahead: if this worker dies, the sweeper publishes the events again then."""
    uids = _uuids(ids)
    if not uids:
        return []
    rows = session.execute(CLAIM, {"ids": uids, "lease": lease_s}).all()
    return [Pending(r.id, r.text, r.attempts, r.error, r.subject) for r in rows]


# The batch's chunks go to a temporary table by binary COPY (common/chunk_store.py); the
# UPDATE of the events still queued says which sets are stored, and those replace whatever
# the events had, in the same transaction: one complete chunk set per event, or none.
STORE = text(
    "UPDATE events e SET model = :model, chunking = :chunking, status = 'embedded',"
    " error = NULL, due_at = NULL, embedded_at = now(), updated_at = now()"
    " FROM (SELECT DISTINCT event_id FROM chunk_stage) s"
    " WHERE e.id = s.event_id AND e.status = 'queued' RETURNING e.id"
)


def store(
    session: Session, sets: Sequence[chunk_store.ChunkSet], model: str, chunking: str
) -> list[chunk_store.ChunkSet]:
    """``queued`` → ``embedded``: store the whole chunk set of each event still queued (an
    event is embedded only with all its chunks). Returns the sets stored (fewer than given
    when some events were deleted or stored meanwhile). Needs a psycopg (sync) connection:
    it writes the vectors by binary COPY."""
    if not sets:
        return []
    chunk_store.stage(session, sets)
    # Under the subjects' locks: versions no longer current are superseded instead, and the
    # version each one replaces in search is superseded (common/lifecycle/subjects.py).
    subjects.before_store(session, [s.event_id for s in sets])
    stored = {r.id for r in session.execute(STORE, {"model": model, "chunking": chunking})}
    chunk_store.replace(session, list(stored), model)
    return [s for s in sets if s.event_id in stored]


SCHEDULE_RETRY = text(
    "UPDATE events SET error = :error, updated_at = now(),"
    " due_at = now() + make_interval(secs => :delay),"
    " request_id = coalesce(:rid, request_id)"
    " WHERE id = :id AND status = 'queued'"
)


def schedule_retry(
    session: Session,
    events: Sequence[Pending],
    error: str,
    delays: Sequence[float],
    request_ids: Mapping[str, str | None] | None = None,
) -> int:
    """``queued`` → ``queued``, due again after its delay, with the error kept. The sweeper
    publishes it then (no ETA message sits in a worker's memory, where a restart would lose
    it), with the request id it came with. Returns how many rows changed."""
    if not events:
        return 0
    rids = request_ids or {}
    result = session.connection().execute(
        SCHEDULE_RETRY,
        [
            {"id": e.id, "error": error[:ERROR_MAX], "delay": d, "rid": rids.get(str(e.id))}
            for e, d in zip(events, delays, strict=True)
        ],
    )
    return result.rowcount


DEAD_LETTER = text(
    "WITH failed AS ("
    " UPDATE events SET status = 'failed', error = :error, due_at = NULL, updated_at = now()"
    " WHERE id = ANY(:ids) AND status = 'queued'"
    " RETURNING id, tenant, attempts)"
    " INSERT INTO dead_letters (id, event_id, tenant, error, attempts)"
    " SELECT gen_random_uuid(), id, tenant, :error, attempts FROM failed"
)


def dead_letter(session: Session, events: Sequence[Pending], error: str) -> int:
    """``queued`` → ``failed``, with a dead letter, in one statement: the letter exists
    exactly when the status changed (a second run finds nothing queued). Returns how many
    events failed."""
    if not events:
        return 0
    ids = [e.id for e in events]
    return (
        session.connection().execute(DEAD_LETTER, {"ids": ids, "error": error[:ERROR_MAX]}).rowcount
    )


# --- the sweeper ----------------------------------------------------------------------

CLAIM_DUE = text(
    "UPDATE events SET due_at = now() + make_interval(secs => :after)"
    " WHERE id IN ("
    "  SELECT id FROM events WHERE status = 'queued'"
    "  AND coalesce(due_at, created_at + make_interval(secs => :after)) <= now()"
    "  AND (due_at IS NOT NULL OR :unclaimed)"
    "  ORDER BY created_at LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " RETURNING id, request_id"
)


def claim_due(
    session: Session, sweep_after_s: float, limit: int, unclaimed: bool
) -> list[tuple[str, str | None]]:
    """``queued`` (due) → ``queued`` with a new hand-off deadline ``sweep_after_s`` ahead:
    events whose retry is due or whose message is presumed lost, for the sweeper to publish.
    One atomic UPDATE (SKIP LOCKED), so several sweepers never hand out the same event twice
    in one round. Returns ``(id, request_id)`` pairs.

    ``unclaimed``: include events no worker has taken yet (``due_at`` NULL). The sweeper
    leaves them out while the broker queue still holds messages, where theirs most likely
    wait; a backlog older than ``sweep_after_s`` would otherwise be published twice."""
    rows = session.execute(
        CLAIM_DUE, {"after": sweep_after_s, "limit": limit, "unclaimed": unclaimed}
    ).all()
    return [(str(r.id), r.request_id) for r in rows]


REQUEUE = text("UPDATE events SET due_at = now() WHERE id = ANY(:ids) AND status = 'queued'")


def requeue(session: Session | Connection, ids: Iterable[str | uuid.UUID]) -> int:
    """``queued`` → ``queued``, due now: a hand-off whose publishing failed is the sweeper's
    to publish at its next round (rather than after ``SWEEP_AFTER_S``). Returns how many
    rows changed."""
    uids = _uuids(ids)
    if not uids:
        return 0
    connection = session.connection() if isinstance(session, Session) else session
    return connection.execute(REQUEUE, {"ids": uids}).rowcount


# --- dead letters ---------------------------------------------------------------------

OPEN_LETTERS = (
    "SELECT id, event_id FROM dead_letters WHERE replayed_at IS NULL"
    " AND (CAST(:tenant AS text) IS NULL OR tenant = :tenant)"
    " AND (CAST(:letter AS uuid) IS NULL OR id = :letter)"
    " FOR UPDATE SKIP LOCKED"
)
MARK_REPLAYED = text("UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(:ids)")
# due_at: the sweeper's deadline for this new hand-off (NULL would mean created_at + the
# delay, long past for an old event, and the sweeper would publish it a second time).
REPLAY = text(
    "UPDATE events SET status = 'queued', attempts = 0, error = NULL, updated_at = now(),"
    " due_at = now() + make_interval(secs => :after)"
    " WHERE id = ANY(:ids) AND status = 'failed' RETURNING id"
)


def replay(
    session: Session, tenant: str | None, letter_id: uuid.UUID | None, sweep_after_s: float
) -> Replayed:
    """``failed`` → ``queued`` with the attempts reset: the open dead letters of ``tenant``
    (``None``: every tenant's), or only ``letter_id``, are marked replayed (they stay as
    history) and their events queued again. Precondition: the letter is open and its event
    still ``failed`` (a deleted one stays deleted). Letters another replay holds are skipped.
    The caller publishes :attr:`Replayed.event_ids` after the commit."""
    letters = session.execute(text(OPEN_LETTERS), {"tenant": tenant, "letter": letter_id}).all()
    if not letters:
        return Replayed(0, [])
    session.execute(MARK_REPLAYED, {"ids": [r.id for r in letters]})
    queued = session.execute(REPLAY, {"ids": [r.event_id for r in letters], "after": sweep_after_s})
    return Replayed(len(letters), [r.id for r in queued])


# --- deletion -------------------------------------------------------------------------

# The tombstone keeps the id, the tenant, the idempotency key and fingerprint (a retry of
# the first request still gets its answer, never a second event), the status and the
# times (created, updated = deleted, embedded); every value the client sent is erased. The
# event's chunks (their vectors and spans) go in the same statement: the database's trigger
# on status 'deleted' removes them (migration 0005), whoever writes that status.
DELETE = text(
    "UPDATE events SET status = 'deleted', source = '', type = '', text = '',"
    " metadata = '{}'::jsonb, occurred_at = NULL, subject = NULL, chunking = NULL, model = NULL,"
    " error = NULL, due_at = NULL, request_id = NULL, updated_at = now()"
    " WHERE id = :id AND tenant = :tenant AND status <> 'deleted' RETURNING id"
)
DELETE_LETTERS = text("DELETE FROM dead_letters WHERE event_id = :id")
EXISTS = text("SELECT 1 FROM events WHERE id = :id AND tenant = :tenant")


def delete(session: Session, tenant: str, event_id: uuid.UUID) -> DeleteOutcome:
    """any → ``deleted``, erasing the event's content: its text (and so its search text),
    metadata, source, type, occurred_at, vector, model and error, and its dead letters.
    Precondition: the event is the tenant's and not deleted yet. Returns ``deleted``,
    ``already_deleted`` (nothing written) or ``not_found`` (missing, or another tenant's)."""
    if session.execute(DELETE, {"id": event_id, "tenant": tenant}).first() is not None:
        session.execute(DELETE_LETTERS, {"id": event_id})
        return "deleted"
    found = session.execute(EXISTS, {"id": event_id, "tenant": tenant}).first()
    return "already_deleted" if found is not None else "not_found"


# --- re-embedding ---------------------------------------------------------------------

REEMBED = text(
    "UPDATE events e SET model = :model, chunking = :chunking, embedded_at = now(),"
    " error = NULL, updated_at = now() FROM (SELECT DISTINCT event_id FROM chunk_stage) s"
    " WHERE e.id = s.event_id AND e.status = 'embedded' RETURNING e.id"
)


def reembed(
    session: Session, sets: Sequence[chunk_store.ChunkSet], model: str, chunking: str
) -> int:
    """``embedded`` → ``embedded`` with ``model``'s chunk set in place of the old one, whole
    (and the error of an earlier failed re-embedding cleared). Precondition: still embedded
    (a deleted event stays deleted). Returns events changed."""
    if not sets:
        return 0
    chunk_store.stage(session, sets)
    done = [r.id for r in session.execute(REEMBED, {"model": model, "chunking": chunking})]
    chunk_store.replace(session, done, model)
    return len(done)


REEMBED_FAILED = text(
    "WITH kept AS ("
    " UPDATE events SET error = :error, updated_at = now()"
    " WHERE id = ANY(:ids) AND status = 'embedded'"
    " AND (model IS DISTINCT FROM :model OR chunking IS DISTINCT FROM :chunking)"
    " AND NOT EXISTS (SELECT 1 FROM dead_letters d"
    "  WHERE d.event_id = events.id AND d.replayed_at IS NULL)"
    " RETURNING id, tenant)"
    " INSERT INTO dead_letters (id, event_id, tenant, error, attempts)"
    " SELECT gen_random_uuid(), id, tenant, :error, :attempts FROM kept"
)


def reembed_failed(
    session: Session,
    ids: Iterable[str | uuid.UUID],
    model: str,
    chunking: str,
    error: str,
    attempts: int,
) -> int:
    """``embedded`` → ``embedded`` with its old vector kept, the error on the event and a
    dead letter: re-embedding with ``model`` gave up (out of attempts, or refused for good).
    Precondition: still embedded, still stale (not yet on ``model`` or not yet cut by
    ``chunking``: a set stale only because the chunking settings changed counts too), and
    no open dead letter (a second run writes none). Replaying the letter marks it replayed;
    ``eventsearch reembed`` picks the event up again, since it is still stale. Returns how
    many letters were written."""
    uids = _uuids(ids)
    if not uids:
        return 0
    params = {
        "ids": uids,
        "model": model,
        "chunking": chunking,
        "error": error[:ERROR_MAX],
        "attempts": attempts,
    }
    return session.connection().execute(REEMBED_FAILED, params).rowcount
