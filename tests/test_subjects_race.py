"""Versions of the same subjects racing through two gateways and two workers leave exactly
one current version per subject, the right one; and the database itself refuses a second
searchable version (the partial unique index), whatever code would try."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc, text
from sqlalchemy.engine import Engine

from tests import processes
from tests.conftest import extra_gateway, make_key, new_key, wait_for
from tests.processes import Gateway, Worker
from tests.stub_embedder import StubServer

SUBJECTS, VERSIONS = 8, 6


@pytest.fixture(scope="module")
def second_worker(stack_env: dict[str, str], tmp_root: Path) -> Iterator[Worker]:
    proc = processes.worker(stack_env, tmp_root, "worker-subjects").start()
    yield proc
    proc.stop()


def test_racing_versions_leave_one_current_version_the_latest(
    gateway: Gateway,
    worker: Worker,
    second_worker: Worker,
    stack_env: dict[str, str],
    tmp_root: Path,
    db: Engine,
    stub: StubServer,
) -> None:
    tenant = f"race-{uuid.uuid4().hex[:8]}"
    key = make_key(db, tenant)
    rng = random.Random(15)
    # Days drawn with repeats: equal occurred_at, decided by the order of acceptance.
    sends = [
        (f"s{s}", f"2026-11-{rng.randint(1, 4):02d}T09:00:00Z", v)
        for s in range(SUBJECTS)
        for v in range(VERSIONS)
    ]
    rng.shuffle(sends)
    stub.behaviour.delay_s = 0.05  # calls overlap between the workers' batches
    with extra_gateway(stack_env, tmp_root, "gateway-subjects") as other:
        clients = [
            httpx.Client(base_url=g.url, timeout=30, headers={"X-API-Key": key})
            for g in (gateway, other)
        ]

        def post(n: int) -> None:
            subject, at, v = sends[n]
            body = {"source": "race", "type": "t", "text": f"{subject} version {v}"}
            body |= {"subject": subject, "occurred_at": at}
            response = clients[n % 2].post(
                "/api/v1/events", json=body, headers={"Idempotency-Key": new_key()}
            )
            assert response.status_code == 202, response.text

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, range(len(sends))))

    def settled() -> bool:
        with db.connect() as conn:
            return not conn.execute(
                text("SELECT 1 FROM events WHERE tenant = :t AND status = 'queued' LIMIT 1"),
                {"t": tenant},
            ).first()

    wait_for(settled, 120, "every version settled")
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT subject, id, status, occurred_at, seq FROM events WHERE tenant = :t"
                " ORDER BY subject, occurred_at DESC, seq DESC"
            ),
            {"t": tenant},
        ).all()
        current = dict(
            conn.execute(
                text("SELECT subject, current_event_id FROM subjects WHERE tenant = :t"),
                {"t": tenant},
            ).all()
        )
    by_subject: dict[str, list[Any]] = {}
    for row in rows:
        by_subject.setdefault(row.subject, []).append(row)
    assert len(by_subject) == SUBJECTS
    for subject, versions in by_subject.items():
        latest, *older = versions  # ordered by (occurred_at, seq) descending
        assert latest.status == "embedded", subject
        assert all(v.status == "superseded" for v in older), subject
        assert current[subject] == latest.id

    # The constraint, not the locking, has the last word: a second embedded version of a
    # subject cannot be written.
    loser = by_subject["s0"][1].id
    with pytest.raises(exc.IntegrityError), db.begin() as conn:
        conn.execute(text("UPDATE events SET status = 'embedded' WHERE id = :id"), {"id": loser})
