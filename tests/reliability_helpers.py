"""Helpers of the reliability tests: events queued the way the gateway queues them, but all
at once (so that they land in one batch), workers of a test's own, and reads of the
dead-letter table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from celery import Celery
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.queue import QUEUE_EMBED, TASK_EMBED, enqueue_embed
from common.settings import get_settings
from tests import processes
from tests.conftest import wait_for


def insert_queued(
    db: Engine, texts: Sequence[str], tenant: str = "t1", age_s: float = 0
) -> list[str]:
    """Rows as the gateway commits them (status queued), ``age_s`` old; nothing published."""
    ids = [str(uuid.uuid4()) for _ in texts]
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, idempotency_key, source, type, text, created_at)"
                " VALUES (:id, :tenant, :key, 'jobboard', 'job.posted', :text,"
                " now() - make_interval(secs => :age))"
            ),
            [
                {"id": i, "tenant": tenant, "key": f"direct-{i}", "text": t, "age": age_s}
                for i, t in zip(ids, texts, strict=True)
            ],
        )
    return ids


def queue_events(db: Engine, texts: Sequence[str], tenant: str = "t1") -> list[str]:
    """Insert, then publish every message on one connection: they arrive within milliseconds."""
    ids = insert_queued(db, texts, tenant)
    enqueue_embed(ids, get_settings())
    return ids


def row(db: Engine, event_id: str) -> dict[str, object]:
    with db.connect() as conn:
        found = conn.execute(
            text(
                "SELECT status, attempts, error, embedded_at,"
                " EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = e.id) AS has_vector,"
                " (SELECT count(*) FROM chunks c WHERE c.event_id = e.id) AS chunks"
                " FROM events e WHERE id = :id"
            ),
            {"id": event_id},
        ).one()
    return dict(found._mapping)


def dead_letters_of(db: Engine, event_id: str) -> list[dict[str, object]]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM dead_letters WHERE event_id = :id ORDER BY created_at"),
            {"id": event_id},
        ).all()
    return [dict(r._mapping) for r in rows]


def start_worker(
    env: dict[str, str], logdir: Path, name: str, concurrency: int = 1, **settings: str
) -> processes.Proc:
    proc = processes.worker({**env, **settings}, logdir, name, concurrency=concurrency).start()

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{name} exited:\n{proc.output()[-2000:]}")
        return " ready." in proc.output()

    wait_for(ready, 60, f"{name} ready")
    return proc


def publish(env: dict[str, str], ids: list[str]) -> None:
    """One message naming every id (as the batch endpoint publishes): the events are then
    one batch for certain. Five messages could be flushed as two batches, and a test that
    stops the worker during the first would find the second given back, not embedded."""
    app = Celery("test-publisher", broker=env["REDIS_URL"])
    with app.producer_or_acquire() as producer:
        app.send_task(TASK_EMBED, args=ids, queue=QUEUE_EMBED, producer=producer)
