"""Property: the order in which versions and deletions of a subject arrive (alone or several
to a request), and when the worker gets to each, never changes the outcome: the version with
the latest occurred_at is current (if no deletion is later), the only embedded one;
everything at or before the latest deletion is erased; the rest is superseded. Runs the real
settle (gateway) and sift/store (worker) code in this process against the test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.chunk_store import ChunkSet
from common.chunking import Chunk
from common.lifecycle import subjects
from tests.conftest import DIM

BASE = datetime(2026, 11, 1, tzinfo=UTC)
MODEL = "stub-embed"
CHUNKING = "test"

# A history: distinct days, each a version (False) or a deletion (True). Equal days are
# ordered by acceptance, which is arrival: covered by the example tests instead.
histories = st.lists(
    st.tuples(st.integers(0, 30), st.booleans()), min_size=1, max_size=6, unique_by=lambda v: v[0]
)


Run = tuple[list[tuple[int, bool]], list[list[int]], list[bool]]


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """A history, the batches its items arrive in (in order; a batch is one request), and
    after which batches the worker runs (over whatever is queued then)."""
    history = draw(histories)
    order = draw(st.permutations(range(len(history))))
    cuts = draw(st.lists(st.booleans(), min_size=len(history), max_size=len(history)))
    batches: list[list[int]] = [[]]
    for index, cut in zip(order, cuts, strict=True):
        batches[-1].append(index)
        if cut:
            batches.append([])
    batches = [b for b in batches if b]
    work = draw(st.lists(st.booleans(), min_size=len(batches), max_size=len(batches)))
    return history, batches, work


def arrive(db: Engine, tenant: str, items: list[tuple[int, bool]]) -> dict[int, uuid.UUID]:
    """What the gateway does for one request: insert its events, settle their subject (one
    transaction); ``items`` are (day, deletion)."""
    ids: dict[int, uuid.UUID] = {}
    versions = []
    with Session(db) as session, session.begin():
        for day, deletion in items:
            ids[day] = uuid.uuid4()
            at = BASE + timedelta(day)
            row = session.execute(
                text(
                    "INSERT INTO events (id, tenant, source, type, text, metadata, occurred_at,"
                    " status, subject) VALUES (:id, :tenant, 'src', 't', :text, '{}', :at,"
                    " 'queued', 'thing') RETURNING seq"
                ),
                {"id": ids[day], "tenant": tenant, "text": f"day {day}", "at": at},
            ).one()
            versions.append(subjects.Version(ids[day], "src", "thing", (at, row.seq), deletion))
        subjects.settle(session, tenant, versions)
    return ids


def work(db: Engine, tenant: str) -> None:
    """What a worker does with every queued event: claim, sift, embed the rest, store."""
    from common.lifecycle import apply, transitions

    with db.connect() as conn:
        ids = [r.id for r in conn.execute(
            text("SELECT id FROM events WHERE tenant = :t AND status = 'queued'"), {"t": tenant}
        )]  # fmt: skip
    claimed = apply(transitions.claim, ids, 60)
    versions = [e.id for e in claimed if e.subject is not None]
    stale, reused = apply(subjects.sift, versions, MODEL, CHUNKING)
    live = [e for e in claimed if e.id not in stale and e.id not in reused]
    if live:
        vector = [1.0] + [0.0] * (DIM - 1)
        sets = [ChunkSet(e.id, [Chunk(0, 0, len(e.text), e.text, 3)], [vector]) for e in live]
        apply(transitions.store, sets, MODEL, CHUNKING)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=runs())
def test_arrival_order_never_changes_which_version_is_current(db: Engine, run: Run) -> None:
    history, batches, work_after = run
    tenant = f"prop-{uuid.uuid4().hex[:10]}"
    ids: dict[int, uuid.UUID] = {}
    for batch, then_work in zip(batches, work_after, strict=True):
        ids |= arrive(db, tenant, [history[i] for i in batch])
        if then_work:
            work(db, tenant)
    work(db, tenant)

    last_deletion = max((d for d, is_del in history if is_del), default=-1)
    latest = max(d for d, is_del in history if not is_del) if any(
        not is_del for _, is_del in history
    ) else -1  # fmt: skip
    expected = {
        day: "deleted" if is_del or day <= last_deletion
        else "embedded" if day == latest else "superseded"
        for day, is_del in history
    }  # fmt: skip
    with db.connect() as conn:
        status = {
            r.id: r.status
            for r in conn.execute(
                text("SELECT id, status FROM events WHERE tenant = :t"), {"t": tenant}
            )
        }
        current = conn.execute(
            text("SELECT current_event_id FROM subjects WHERE tenant = :t"), {"t": tenant}
        ).scalar_one()
    assert {day: status[event_id] for day, event_id in ids.items()} == expected
    assert current == (ids[latest] if latest > last_deletion else None)


def test_a_version_whose_hand_off_failed_is_forgotten(db: Engine) -> None:
    """The gateway deletes events whose publishing failed; their subject falls back."""
    tenant = f"forget-{uuid.uuid4().hex[:10]}"
    [older] = arrive(db, tenant, [(1, False)]).values()
    [newer] = arrive(db, tenant, [(2, False)]).values()

    def current() -> object:
        with db.connect() as conn:
            return conn.execute(
                text("SELECT current_event_id FROM subjects WHERE tenant = :t"), {"t": tenant}
            ).scalar()

    assert current() == newer
    for gone, expected in ((newer, older), (older, None)):
        with Session(db) as session, session.begin():
            session.execute(text("DELETE FROM events WHERE id = :id"), {"id": gone})
            subjects.forget(session, [gone])
        assert current() == expected  # the last one gone: the subject row too
