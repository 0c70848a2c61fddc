"""Subjects: events of one tenant, source and subject are versions of one thing.

The current version is the one with the latest key ``(coalesce(occurred_at, created_at),
seq)``: the latest occurred time, ties broken by the order of acceptance. Arrival order never
matters: a late older version is stored as ``superseded`` and never replaces a newer one.

Every change to a subject locks its ``subjects`` row, so the changes to one subject are
serialised whatever gateways and workers make them:

- at ingest (:func:`settle`), the accepted versions and deletions move the subject's
  current key forward (an upsert whose update only ever takes a newer key), and everything
  at or before the latest deletion is erased;
- in the worker, a claimed version that is not current is superseded without an embedder
  call (:func:`sift`), one whose text equals the embedded version's (same model) takes its
  vector over (:func:`sift` too), and storing a vector (:func:`before_store`, in the
  transaction of the store) supersedes the version that was searchable until then.

The partial unique index ``ux_events_subject_embedded`` (migration 0006) allows one
``embedded`` version per subject: should the locking above ever be wrong, the store fails
instead of leaving two versions searchable.

Every function takes a sync :class:`~sqlalchemy.orm.Session` inside a transaction that the
caller commits; the gateway calls them through ``AsyncSession.run_sync``.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

Key = tuple[datetime, int]  # (occurred_at or created_at, seq): the larger is the later

# What deleting erases (the contract: a deleted event keeps its id, status and times, nothing
# of its content): every value the client sent, the subject too. The subjects row keeps the
# subject's name and the deletion's key, which decide whether a later version revives it.
ERASE = (
    "status = 'deleted', source = '', type = '', text = '', metadata = '{}'::jsonb,"
    " occurred_at = NULL, subject = NULL, chunking = NULL, model = NULL, error = NULL,"
    " due_at = NULL, request_id = NULL, updated_at = now()"
)
VERSION_KEY = "(coalesce(e.occurred_at, e.created_at), e.seq)"


@dataclass(frozen=True)
class Version:
    """An accepted event of a subject: a version, or (``deletion``) the subject's deletion."""

    id: uuid.UUID
    source: str
    subject: str
    key: Key
    deletion: bool


def is_deletion(event_type: str, deleted: bool, delete_types: Sequence[str]) -> bool:
    """Whether an event with a subject deletes it: ``"deleted": true``, or a type matching one
    of ``delete_types`` (``SUBJECT_DELETE_TYPES``: fnmatch patterns, ``*.deleted`` by
    default)."""
    if deleted:
        return True
    return any(fnmatch.fnmatchcase(event_type, p) for p in delete_types)


def _latest(
    versions: Sequence[Version],
) -> dict[tuple[str, str], tuple[Version | None, Key | None]]:
    """Per subject: its latest version and the key of its latest deletion in ``versions``."""
    out: dict[tuple[str, str], tuple[Version | None, Key | None]] = {}
    for v in versions:
        latest, deleted = out.get((v.source, v.subject), (None, None))
        if v.deletion:
            deleted = v.key if deleted is None or v.key > deleted else deleted
        elif latest is None or v.key > latest.key:
            latest = v
        out[(v.source, v.subject)] = (latest, deleted)
    return out


# One row per subject; the update takes each key only when it is newer than the stored one
# (a row comparison evaluated on the row as locked), so no interleaving of two ingests can
# move a subject back. Every row is updated (and so locked and returned) even when nothing
# changes: the erase below needs the deletion key as committed by whoever came before.
SETTLE = text(
    "INSERT INTO subjects AS s (tenant, source, subject, current_event_id, current_at,"
    " current_seq, deleted_at, deleted_seq)"
    " SELECT :tenant, u.* FROM unnest(CAST(:sources AS text[]), CAST(:subjects AS text[]),"
    " CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[]), CAST(:seqs AS bigint[]),"
    " CAST(:dats AS timestamptz[]), CAST(:dseqs AS bigint[])) AS u"
    " ON CONFLICT (tenant, source, subject) DO UPDATE SET"
    " current_event_id = CASE WHEN (excluded.current_at, excluded.current_seq)"
    "  > (s.current_at, s.current_seq) THEN excluded.current_event_id ELSE s.current_event_id END,"
    " current_at = CASE WHEN (excluded.current_at, excluded.current_seq)"
    "  > (s.current_at, s.current_seq) THEN excluded.current_at ELSE s.current_at END,"
    " current_seq = CASE WHEN (excluded.current_at, excluded.current_seq)"
    "  > (s.current_at, s.current_seq) THEN excluded.current_seq ELSE s.current_seq END,"
    " deleted_at = CASE WHEN s.deleted_at IS NULL OR (excluded.deleted_at, excluded.deleted_seq)"
    "  > (s.deleted_at, s.deleted_seq) THEN excluded.deleted_at ELSE s.deleted_at END,"
    " deleted_seq = CASE WHEN s.deleted_at IS NULL OR (excluded.deleted_at, excluded.deleted_seq)"
    "  > (s.deleted_at, s.deleted_seq) THEN excluded.deleted_seq ELSE s.deleted_seq END,"
    " updated_at = now()"
    " RETURNING s.source, s.subject, s.deleted_at, s.deleted_seq"
)

# Everything of the given subjects at or before their deletion key: erased, its dead letters
# dropped (nothing is left to replay).
ERASE_BEFORE = text(
    "WITH cut AS (SELECT * FROM unnest(CAST(:sources AS text[]), CAST(:subjects AS text[]),"
    "  CAST(:dats AS timestamptz[]), CAST(:dseqs AS bigint[])) AS c(source, subject, at, seq)),"
    " erased AS ("
    f" UPDATE events e SET {ERASE} FROM cut"
    " WHERE e.tenant = :tenant AND e.source = cut.source AND e.subject = cut.subject"
    f" AND e.status <> 'deleted' AND {VERSION_KEY} <= (cut.at, cut.seq)"
    " RETURNING e.id)"
    " DELETE FROM dead_letters WHERE event_id IN (SELECT id FROM erased)"
)


def settle(session: Session | Connection, tenant: str, versions: Sequence[Version]) -> None:
    """Record newly accepted versions and deletions of the tenant's subjects (in the
    transaction that inserted them): each subject's current key moves to the latest one, and
    whatever is at or before its latest deletion (this batch's or an earlier one) is erased."""
    if not versions:
        return
    # Sorted, so that two batches lock shared subjects in the same order (no deadlock).
    latest = sorted(_latest(versions).items())
    rows: list[dict[str, Any]] = []
    for (source, subject), (version, deleted) in latest:
        current_id = version.id if version is not None else None
        current = version.key if version is not None else None
        if deleted is not None and (current is None or deleted > current):
            current_id, current = None, deleted
        assert current is not None
        rows.append(
            {
                "source": source,
                "subject": subject,
                "id": current_id,
                "at": current[0],
                "seq": current[1],
                "dat": deleted[0] if deleted else None,
                "dseq": deleted[1] if deleted else None,
            }
        )
    settled = session.execute(
        SETTLE,
        {
            "tenant": tenant,
            "sources": [r["source"] for r in rows],
            "subjects": [r["subject"] for r in rows],
            "ids": [r["id"] for r in rows],
            "ats": [r["at"] for r in rows],
            "seqs": [r["seq"] for r in rows],
            "dats": [r["dat"] for r in rows],
            "dseqs": [r["dseq"] for r in rows],
        },
    ).all()
    _erase_before(
        session, tenant, [(r.source, r.subject, r.deleted_at, r.deleted_seq) for r in settled]
    )


def _erase_before(
    session: Session | Connection,
    tenant: str,
    cuts: Sequence[tuple[str, str, datetime | None, int | None]],
) -> None:
    cuts = [c for c in cuts if c[2] is not None]
    if not cuts:
        return
    session.execute(
        ERASE_BEFORE,
        {
            "tenant": tenant,
            "sources": [c[0] for c in cuts],
            "subjects": [c[1] for c in cuts],
            "dats": [c[2] for c in cuts],
            "dseqs": [c[3] for c in cuts],
        },
    )


def delete(session: Session, tenant: str, source: str, subject: str) -> bool:
    """Delete a subject now (``DELETE /api/v1/subjects/...``): every version is erased and
    search finds none; ``False`` when the subject is unknown. The deletion is dated now, or
    at the current version when that is dated later (a version dated in the future must not
    survive the deletion), so only a version dated after it brings the subject back.
    Deleting again is a new deletion, dated anew (idempotent in effect)."""
    row = session.execute(
        text(
            "UPDATE subjects s SET current_event_id = NULL,"
            " current_at = d.at, current_seq = d.seq, deleted_at = d.at, deleted_seq = d.seq,"
            " updated_at = now()"
            " FROM (SELECT greatest(now(), current_at) AS at,"
            "  nextval(pg_get_serial_sequence('events', 'seq')) AS seq FROM subjects"
            "  WHERE tenant = :tenant AND source = :source AND subject = :subject FOR UPDATE) d"
            " WHERE s.tenant = :tenant AND s.source = :source AND s.subject = :subject"
            " RETURNING s.deleted_at, s.deleted_seq"
        ),
        {"tenant": tenant, "source": source, "subject": subject},
    ).first()
    if row is None:
        return False
    _erase_before(session, tenant, [(source, subject, row.deleted_at, row.deleted_seq)])
    return True


def forget(session: Session | Connection, ids: Sequence[uuid.UUID]) -> None:
    """Events of ``ids`` were removed again (their hand-off to the queue failed): a subject
    whose current version was one of them falls back to its latest remaining version, or to
    its deletion, or (nothing left) disappears. Rare, so plain and row by row."""
    lost = session.execute(
        text(
            "SELECT tenant, source, subject, deleted_at, deleted_seq FROM subjects"
            " WHERE current_event_id = ANY(:ids) ORDER BY tenant, source, subject FOR UPDATE"
        ),
        {"ids": list(ids)},
    ).all()
    for s in lost:
        where = {"tenant": s.tenant, "source": s.source, "subject": s.subject}
        best = session.execute(
            text(
                "SELECT e.id, coalesce(e.occurred_at, e.created_at) AS at, e.seq FROM events e"
                " WHERE e.tenant = :tenant AND e.source = :source AND e.subject = :subject"
                " AND e.status <> 'deleted' AND e.id <> ALL(:ids)"
                f" ORDER BY {VERSION_KEY} DESC LIMIT 1"
            ),
            {**where, "ids": list(ids)},
        ).first()
        deleted = (s.deleted_at, s.deleted_seq) if s.deleted_at is not None else None
        if best is not None and (deleted is None or (best.at, best.seq) > deleted):
            current: tuple[Any, ...] | None = (best.id, best.at, best.seq)
        elif deleted is not None:
            current = (None, *deleted)
        else:
            current = None
        if current is None:
            session.execute(
                text(
                    "DELETE FROM subjects WHERE tenant = :tenant AND source = :source"
                    " AND subject = :subject"
                ),
                where,
            )
        else:
            session.execute(
                text(
                    "UPDATE subjects SET current_event_id = :id, current_at = :at,"
                    " current_seq = :seq, updated_at = now() WHERE tenant = :tenant"
                    " AND source = :source AND subject = :subject"
                ),
                {**where, "id": current[0], "at": current[1], "seq": current[2]},
            )


# --- the worker ------------------------------------------------------------------------------

SUPERSEDE_STALE = text(
    "UPDATE events e SET status = 'superseded', due_at = NULL, updated_at = now()"
    " FROM subjects s WHERE e.id = ANY(:ids) AND e.status = 'queued' AND e.subject IS NOT NULL"
    " AND s.tenant = e.tenant AND s.source = e.source AND s.subject = e.subject"
    " AND s.current_event_id IS DISTINCT FROM e.id"
    " RETURNING e.id"
)
# The version each of ``ids`` replaces in search: superseded, its chunks (vectors) dropped.
SUPERSEDE_PREVIOUS = text(
    "WITH old AS ("
    " UPDATE events o SET status = 'superseded', updated_at = now()"
    " FROM events e WHERE e.id = ANY(:ids) AND e.status = 'queued'"
    " AND e.subject IS NOT NULL AND o.tenant = e.tenant AND o.source = e.source"
    " AND o.subject = e.subject AND o.status = 'embedded' AND o.id <> e.id"
    " RETURNING o.id)"
    " DELETE FROM chunks WHERE event_id IN (SELECT id FROM old)"
)
# A queued version whose text equals its subject's embedded version's, of the same model and
# chunker, takes that version's chunk set over (copied: a queued event has no chunks; it
# stays queued until the old one is superseded, two embedded would break the unique index).
COPY_VECTOR = text(
    "WITH pairs AS ("
    " SELECT e.id AS new_id, o.id AS old_id, o.model, o.chunking FROM events e JOIN events o"
    " ON o.tenant = e.tenant AND o.source = e.source AND o.subject = e.subject"
    " WHERE e.id = ANY(:ids) AND e.status = 'queued' AND e.subject IS NOT NULL"
    " AND o.status = 'embedded' AND o.model = :model AND o.chunking = :chunking"
    " AND o.text = e.text AND o.id <> e.id),"
    " copied AS ("
    " INSERT INTO chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
    "  embedding, search_text)"
    " SELECT p.new_id, c.position, c.tenant, c.char_start, c.char_end, c.tokens, c.model,"
    "  c.embedding, c.search_text FROM pairs p JOIN chunks c ON c.event_id = p.old_id)"
    " UPDATE events e SET model = p.model, chunking = p.chunking FROM pairs p"
    " WHERE e.id = p.new_id RETURNING e.id"
)
MARK_EMBEDDED = text(
    "UPDATE events SET status = 'embedded', error = NULL, due_at = NULL, embedded_at = now(),"
    " updated_at = now() WHERE id = ANY(:ids) AND status = 'queued'"
)


def _lock(session: Session, ids: Sequence[uuid.UUID]) -> bool:
    """Lock the subjects of the queued events among ``ids``, in one order (no deadlocks);
    ``False`` when none of them has a subject."""
    return bool(
        session.execute(
            text(
                "SELECT 1 FROM subjects s WHERE (s.tenant, s.source, s.subject) IN ("
                " SELECT tenant, source, subject FROM events"
                " WHERE id = ANY(:ids) AND subject IS NOT NULL AND status = 'queued')"
                " ORDER BY s.tenant, s.source, s.subject FOR UPDATE OF s"
            ),
            {"ids": list(ids)},
        ).all()
    )


def sift(
    session: Session, ids: Sequence[uuid.UUID], model: str, chunking: str
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Before embedding claimed events, under their subjects' locks: those that are not
    their subject's current version become ``superseded`` (no embedder call; a version that
    is not current never becomes current again), and current ones whose text equals their
    subject's embedded version's (same ``model`` and ``chunking``) take its chunks over and
    are ``embedded``.
    Returns ``(superseded ids, reused ids)``; the others are to be embedded."""
    if not ids or not _lock(session, ids):
        return set(), set()
    params = {"ids": list(ids)}
    stale = {r.id for r in session.execute(SUPERSEDE_STALE, params)}
    copy = {**params, "model": model, "chunking": chunking}
    reused = {r.id for r in session.execute(COPY_VECTOR, copy)}
    if reused:
        session.execute(SUPERSEDE_PREVIOUS, {"ids": list(reused)})
        session.execute(MARK_EMBEDDED, {"ids": list(reused)})
    return stale, reused


def before_store(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """In the transaction that stores the vectors of ``ids`` (still ``queued``), under the
    lock of their subjects: those no longer current become ``superseded`` (the store then
    skips them), and the version each current one replaces in search becomes ``superseded``."""
    if not ids or not _lock(session, ids):
        return
    session.execute(SUPERSEDE_STALE, {"ids": list(ids)})
    session.execute(SUPERSEDE_PREVIOUS, {"ids": list(ids)})
