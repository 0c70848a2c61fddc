"""Each transition of common/lifecycle/transitions.py on its own, against the real PostgreSQL:
what it changes when its precondition holds, and that it changes nothing when it does not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import CACHE_HIT
from sqlalchemy.orm import Session

from common.chunk_store import ChunkSet
from common.chunking import Chunk
from common.lifecycle import transitions as t
from common.lifecycle.transitions import Pending
from tests.conftest import DIM

TENANT = "lifecycle"


@pytest.fixture
def session(db: Engine) -> Iterator[Session]:
    """A session whose transaction is rolled back after the test: transitions never commit."""
    with Session(db) as s, s.begin():
        yield s
        s.rollback()


def seed(session: Session, status: str = "queued", **values: Any) -> uuid.UUID:
    """One event of ``TENANT`` in ``status``, written as a test fixture (not a transition)."""
    event_id = uuid.uuid4()
    row = {
        "id": event_id,
        "tenant": TENANT,
        "key": f"k-{event_id}",
        "text": values.pop("text", f"text {event_id}"),
        "status": status,
        "attempts": values.pop("attempts", 0),
        "due_at": values.pop("due_at", None),
        "age": values.pop("age", 0),
    }
    assert not values
    session.execute(
        text(
            "INSERT INTO events (id, tenant, idempotency_key, source, type, text, metadata,"
            " status, attempts, due_at, created_at)"
            " VALUES (:id, :tenant, :key, 'src', 'typ', :text, '{\"k\": \"v\"}', :status,"
            " :attempts, CAST(:due_at AS timestamptz), now() - make_interval(secs => :age))"
        ),
        row,
    )
    return event_id


def read(session: Session, event_id: uuid.UUID) -> dict[str, Any]:
    found = session.execute(
        text(
            "SELECT status, attempts, error, source, type, text, metadata, occurred_at, model,"
            " EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = events.id) AS has_vector,"
            " due_at, due_at <= now() AS due_now,"
            " request_id, search_text::text AS search_text"
            " FROM events WHERE id = :id"
        ),
        {"id": event_id},
    ).one_or_none()
    return dict(found._mapping) if found is not None else {}


def letters(session: Session, event_id: uuid.UUID, open_only: bool = False) -> int:
    where = " AND replayed_at IS NULL" if open_only else ""
    return int(
        session.execute(
            text(f"SELECT count(*) FROM dead_letters WHERE event_id = :id{where}"), {"id": event_id}
        ).scalar_one()
    )


def vec(x: float = 1.0) -> list[float]:
    return [x] + [0.0] * (DIM - 1)


def pending(event_id: uuid.UUID, attempts: int = 1) -> Pending:
    return Pending(event_id, "", attempts)


def one_chunk(event_id: uuid.UUID, x: float = 1.0) -> ChunkSet:
    """The chunk set of a one-chunk text (what the worker stores for a short event)."""
    return ChunkSet(event_id, [Chunk(0, 0, 4, "text", 3)], [vec(x)])


def test_record_inserts_queued_and_skips_a_known_key(session: Session) -> None:
    key = f"rec-{uuid.uuid4()}"
    row = {
        "tenant": TENANT,
        "idempotency_key": key,
        "fingerprint": "f",
        "source": "s",
        "type": "t",
        "text": "hello",
        "metadata": {},
        "occurred_at": None,
    }
    first, again = uuid.uuid4(), uuid.uuid4()
    inserted = t.record(session, [{**row, "id": first}])
    assert list(inserted) == [first]
    assert read(session, first)["status"] == "queued"
    assert t.record(session, [{**row, "id": again}]) == {}  # the key is the tenant's already
    assert read(session, again) == {}
    assert t.record(session, []) == {}


def test_record_sends_a_batch_as_one_insert_compiled_once(session: Session, db: Engine) -> None:
    def rows(n: int) -> list[dict[str, Any]]:
        return [
            {
                "id": uuid.uuid4(),
                "tenant": TENANT,
                "idempotency_key": f"many-{uuid.uuid4()}",
                "fingerprint": "f",
                "source": "s",
                "type": "t",
                "text": f"row {i}",
                "metadata": {"i": i},
                "occurred_at": None,
            }
            for i in range(n)
        ]

    sent: list[tuple[str, Any]] = []

    def count(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            sent.append((statement, context.cache_hit))

    event.listen(db, "before_cursor_execute", count)
    try:
        known = rows(1)
        t.record(session, known)
        t.record(session, rows(1))
        batch = [*rows(3), {**known[0], "id": uuid.uuid4()}]  # the last one meets its key
        inserted = t.record(session, batch)
    finally:
        event.remove(db, "before_cursor_execute", count)
    assert set(inserted) == {r["id"] for r in batch[:3]}
    assert [read(session, r["id"])["status"] for r in batch[:3]] == ["queued"] * 3
    assert len(sent) == 3  # one statement a call, the whole batch in the last
    # A single row's statement is compiled once, not on every call.
    assert sent[1][1] is CACHE_HIT


def test_withdraw_takes_back_only_unclaimed_queued_events(session: Session) -> None:
    fresh, claimed, embedded = seed(session), seed(session, attempts=1), seed(session, "embedded")
    assert t.withdraw(session, [str(fresh), claimed, embedded]) == 1
    assert read(session, fresh) == {}
    assert read(session, claimed)["status"] == "queued"
    assert read(session, embedded)["status"] == "embedded"


def test_claim_counts_an_attempt_on_queued_events_only(session: Session) -> None:
    queued, failed = seed(session, attempts=2), seed(session, "failed")
    claimed = t.claim(session, [str(queued), str(queued), str(failed)], lease_s=30)
    assert [(p.id, p.attempts) for p in claimed] == [(queued, 3)]
    after = read(session, queued)
    assert after["attempts"] == 3 and after["due_now"] is False
    assert read(session, failed)["attempts"] == 0
    assert t.claim(session, [], 30) == []


def test_store_embeds_queued_events_only(session: Session) -> None:
    queued, deleted = seed(session), seed(session, "deleted")
    stored = t.store(session, [one_chunk(queued), one_chunk(deleted)], "m1", "c1")
    assert [s.event_id for s in stored] == [queued]
    after = read(session, queued)
    assert (after["status"], after["model"], after["has_vector"]) == ("embedded", "m1", True)
    assert after["due_at"] is None and after["error"] is None
    assert read(session, deleted)["has_vector"] is False
    assert t.store(session, [one_chunk(queued, 2)], "m2", "c1") == []  # a second run: nothing


def test_schedule_retry_keeps_the_error_and_sets_the_due_time(session: Session) -> None:
    queued, embedded = seed(session), seed(session, "embedded")
    changed = t.schedule_retry(
        session, [pending(queued), pending(embedded)], "boom", [0, 0], {str(queued): "rid-1"}
    )
    assert changed == 1
    after = read(session, queued)
    assert (after["status"], after["error"], after["due_now"], after["request_id"]) == (
        "queued",
        "boom",
        True,
        "rid-1",
    )
    assert read(session, embedded)["error"] is None


def test_reembed_failed_counts_a_set_stale_only_by_its_chunking(session: Session) -> None:
    """Same model, other chunking settings: the set is stale, so a re-embedding that gives
    up leaves a dead letter and keeps the old set (it used to match no row and say nothing)."""
    stale, fresh = seed(session), seed(session)
    t.store(session, [one_chunk(stale)], "m", "c1")
    t.store(session, [one_chunk(fresh)], "m", "c2")
    assert t.reembed_failed(session, [stale, fresh], "m", "c2", "refused", 5) == 1
    after = read(session, stale)
    assert (after["model"], after["has_vector"], after["error"]) == ("m", True, "refused")
    assert letters(session, stale) == 1 and letters(session, fresh) == 0


def test_dead_letter_fails_queued_events_with_one_letter_each(session: Session) -> None:
    queued, deleted = seed(session, attempts=5), seed(session, "deleted")
    assert t.dead_letter(session, [pending(queued), pending(deleted)], "x" * 5000) == 1
    after = read(session, queued)
    assert after["status"] == "failed" and after["error"] == "x" * t.ERROR_MAX
    assert letters(session, queued) == 1 and letters(session, deleted) == 0
    assert t.dead_letter(session, [pending(queued)], "again") == 0  # a second run: nothing
    assert letters(session, queued) == 1


def test_claim_due_hands_out_due_events_once(session: Session) -> None:
    session.execute(
        text(
            "UPDATE events SET due_at = now() + interval '1 hour'"
            " WHERE status = 'queued' AND due_at <= now()"
        )
    )  # other tests' rows
    due = seed(session, due_at="2000-01-01T00:00:00Z")
    later = seed(session, due_at="2999-01-01T00:00:00Z")
    unclaimed_old = seed(session, age=3600)
    got = {i for i, _ in t.claim_due(session, 30, 1000, unclaimed=False)}
    assert str(due) in got and str(later) not in got and str(unclaimed_old) not in got
    assert read(session, due)["due_now"] is False  # the new hand-off deadline
    again = {i for i, _ in t.claim_due(session, 30, 1000, unclaimed=True)}
    assert str(due) not in again and str(unclaimed_old) in again


def test_requeue_makes_queued_events_due_now(session: Session) -> None:
    queued = seed(session, due_at="2999-01-01T00:00:00Z")
    failed = seed(session, "failed", due_at="2999-01-01T00:00:00Z")
    assert t.requeue(session, [str(queued), str(failed)]) == 1
    assert read(session, queued)["due_now"] is True
    assert read(session, failed)["due_now"] is False


def test_replay_queues_failed_events_and_marks_their_letters(session: Session) -> None:
    failed = seed(session, attempts=5)
    gone = seed(session, attempts=5)
    t.dead_letter(session, [pending(failed), pending(gone)], "boom")
    t.delete(session, TENANT, gone)  # its letters go with it
    letter = session.execute(
        text("SELECT id FROM dead_letters WHERE event_id = :id"), {"id": failed}
    ).scalar_one()
    assert t.replay(session, "another tenant", None, 30) == t.Replayed(0, [])
    done = t.replay(session, TENANT, letter, 30)
    assert done == t.Replayed(1, [failed])
    after = read(session, failed)
    assert (after["status"], after["attempts"], after["error"]) == ("queued", 0, None)
    assert after["due_now"] is False  # a fresh hand-off deadline, not the old created_at's
    assert letters(session, failed) == 1 and letters(session, failed, open_only=True) == 0
    assert t.replay(session, TENANT, letter, 30) == t.Replayed(0, [])  # replayed already


def test_delete_erases_content_and_keeps_a_tombstone(session: Session) -> None:
    event_id = seed(session, text="secret words", attempts=5)
    t.dead_letter(session, [pending(event_id)], "secret words failed")
    assert t.delete(session, "another tenant", event_id) == "not_found"
    assert read(session, event_id)["text"] == "secret words"
    assert t.delete(session, TENANT, event_id) == "deleted"
    after = read(session, event_id)
    assert after["status"] == "deleted"
    erased = {k: after[k] for k in ("source", "type", "text", "metadata", "error", "model")}
    assert erased == {
        "source": "",
        "type": "",
        "text": "",
        "metadata": {},
        "error": None,
        "model": None,
    }
    assert after["has_vector"] is False and after["occurred_at"] is None
    assert after["search_text"] == ""
    assert letters(session, event_id) == 0
    assert t.delete(session, TENANT, event_id) == "already_deleted"
    assert t.delete(session, TENANT, uuid.uuid4()) == "not_found"


def test_reembed_replaces_vectors_of_embedded_events_only(session: Session) -> None:
    embedded, deleted = seed(session), seed(session, "deleted")
    t.store(session, [one_chunk(embedded)], "old", "c1")
    assert t.reembed(session, [one_chunk(embedded, 2), one_chunk(deleted, 2)], "new", "c1") == 1
    assert read(session, embedded)["model"] == "new"
    assert read(session, deleted)["has_vector"] is False
    assert t.reembed(session, [], "new", "c1") == 0


def test_reembed_failed_keeps_the_vector_and_writes_one_letter(session: Session) -> None:
    embedded, deleted, current = seed(session), seed(session, "deleted"), seed(session)
    t.store(session, [one_chunk(embedded), one_chunk(current)], "old", "c1")
    t.reembed(session, [one_chunk(current, 3)], "new", "c1")
    written = t.reembed_failed(
        session, [str(embedded), deleted, current], "new", "c1", "refused", 5
    )
    assert written == 1  # the deleted one and the one already on "new" are left alone
    after = read(session, embedded)
    assert (after["status"], after["model"], after["has_vector"], after["error"]) == (
        "embedded",
        "old",
        True,
        "refused",
    )
    assert letters(session, embedded) == 1 and letters(session, current) == 0
    assert t.reembed_failed(session, [embedded], "new", "c1", "again", 5) == 0  # a second run
    assert t.reembed(session, [one_chunk(embedded, 2)], "new", "c1") == 1  # a later run succeeds
    assert read(session, embedded)["error"] is None
