"""The chaos suite's verdict, read from the database alone."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.chaos.client import Sent, is_marked, text_of
from tests.chaos.subjects import SubjectVerdict


@dataclass
class Verdict:
    sent: int
    stored: int
    duplicates: int
    lost: int
    dead_letters: int
    unexpected_dead_letters: int
    longest_wait_s: float
    mean_wait_s: float
    max_attempts: int
    problems: list[str]
    partial_sets: int = 0  # embedded events whose chunk set has a gap or stops short
    chunks: int = 0

    subjects: SubjectVerdict | None = None  # the subjects' own (tests/chaos/subjects.py)

    @property
    def ok(self) -> bool:
        if self.subjects is not None and not self.subjects.ok:
            return False
        return not (
            self.duplicates
            or self.lost
            or self.unexpected_dead_letters
            or self.problems
            or self.partial_sets
        )

    def line(self) -> str:
        return (
            f"chaos: sent={self.sent} stored={self.stored} duplicates={self.duplicates}"
            f" lost={self.lost} dead_letters={self.dead_letters}"
            f" partial_chunk_sets={self.partial_sets} chunks={self.chunks}"
        )


def settled(db: Engine, tenant: str) -> bool:
    """True when none of the tenant's events is still queued."""
    with db.connect() as conn:
        return not conn.execute(
            text("SELECT 1 FROM events WHERE tenant = :t AND status = 'queued' LIMIT 1"),
            {"t": tenant},
        ).first()


def verdict(db: Engine, tenant: str, run: str, n: int, sent: Sent) -> Verdict:
    """Every accepted event is embedded once (one row, one vector) or dead-lettered with a
    reason, and only the NaN-marked ones are dead-lettered; nothing lost, nothing doubled."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id::text AS id, e.text, e.status, e.attempts, e.model,"
                " EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = e.id) AS has_vector,"
                " (SELECT count(*) FROM chunks c WHERE c.event_id = e.id) AS chunks,"
                " (SELECT max(position) FROM chunks c WHERE c.event_id = e.id) AS last,"
                " (SELECT max(char_end) FROM chunks c WHERE c.event_id = e.id) AS reach,"
                " extract(epoch FROM e.embedded_at - e.created_at) AS waited,"
                " (SELECT count(*) FROM dead_letters d WHERE d.event_id = e.id"
                "   AND d.replayed_at IS NULL AND d.error <> '') AS letters"
                " FROM events e WHERE e.tenant = :t AND e.source = 'chaos'"
            ),
            {"t": tenant},
        ).all()
    by_text: dict[str, list[object]] = {}
    for row in rows:
        by_text.setdefault(row.text, []).append(row)
    by_id = {row.id: row for row in rows}
    duplicates = len(rows) - len(by_text)
    problems: list[str] = []
    lost = len(sent.given_up)
    unexpected = partial = 0
    for i in range(n):
        if i in sent.given_up:
            continue
        event_id = sent.accepted.get(i)
        row = by_id.get(event_id) if event_id else None
        if row is None or len(by_text.get(text_of(run, i), [])) != 1:
            lost += 1
            continue
        if row.status == "embedded" and row.has_vector and row.letters == 0:
            if is_marked(i):
                problems.append(f"event {i} has NaN values but was stored")
            # One complete set: positions 0..n-1, the last reaching the text's end.
            if row.chunks != row.last + 1 or row.reach not in (
                len(row.text),
                len(row.text.rstrip()),
            ):
                partial += 1
        elif row.status == "failed" and row.letters == 1 and not row.has_vector:
            if not is_marked(i):
                unexpected += 1
        else:
            lost += 1
            problems.append(f"event {i} ended {row.status}, letters={row.letters}")
    waits = [float(r.waited) for r in rows if r.waited is not None]
    return Verdict(
        sent=n,
        stored=len(rows),
        duplicates=duplicates,
        lost=lost,
        dead_letters=sum(int(r.letters) for r in rows),
        unexpected_dead_letters=unexpected,
        longest_wait_s=max(waits, default=0.0),
        mean_wait_s=sum(waits) / len(waits) if waits else 0.0,
        max_attempts=max((int(r.attempts) for r in rows), default=0),
        problems=problems[:20],
        partial_sets=partial,
        chunks=sum(int(r.chunks) for r in rows),
    )
