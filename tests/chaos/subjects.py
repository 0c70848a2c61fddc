"""The chaos suite's subjects: ``subjects`` things with ``versions`` versions each, sent in a
shuffled order (older versions arriving after newer ones) through the same faults as the
other events, each retried with its own key. The verdict: every subject has exactly one
current version, the latest (by occurred_at), embedded; every other version is superseded;
none is lost or doubled."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.chaos.client import Sent, send_one

SOURCE = "chaos-subjects"
BASE = datetime(2026, 11, 1, tzinfo=UTC)


def body_of(run: str, subject: int, version: int) -> dict[str, object]:
    return {
        "source": SOURCE,
        "type": "job.updated",
        "text": f"chaos {run} subject {subject} version {version} posting",
        "subject": f"{run}-s{subject}",
        "occurred_at": (BASE + timedelta(hours=version)).isoformat(),
    }


def send_versions(
    base_url: str, key: str, run: str, subjects: int, versions: int, rate: float, seed: int
) -> Sent:
    """Every version of every subject, shuffled, paced at ``rate`` per second."""
    order = [(s, v) for s in range(subjects) for v in range(versions)]
    random.Random(seed).shuffle(order)
    sent = Sent()
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=10) as client:

        def paced(n: int) -> None:
            time.sleep(max(0.0, started + n / rate - time.monotonic()))  # pacing, not waiting
            s, v = order[n]
            body = body_of(run, s, v)
            send_one(client, body, f"chaos-{run}-s{s}-v{v}", s * versions + v, sent, 180)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(paced, range(len(order))))
    return sent


@dataclass
class SubjectVerdict:
    subjects: int
    versions: int
    current_latest: int = 0
    superseded: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.current_latest == self.subjects

    def line(self) -> str:
        return (
            f"chaos: subjects={self.subjects} versions={self.subjects * self.versions}"
            f" one_current_latest={self.current_latest} superseded={self.superseded}"
            f" problems={len(self.problems)}"
        )


def verdict(db: Engine, tenant: str, run: str, subjects: int, versions: int) -> SubjectVerdict:
    result = SubjectVerdict(subjects, versions)
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.subject, e.text, e.status, e.occurred_at,"
                " s.current_event_id = e.id AS current FROM events e JOIN subjects s"
                " ON s.tenant = e.tenant AND s.source = e.source AND s.subject = e.subject"
                " WHERE e.tenant = :t AND e.source = :source"
            ),
            {"t": tenant, "source": SOURCE},
        ).all()
    by_subject: dict[str, list[Any]] = {}
    for row in rows:
        by_subject.setdefault(row.subject, []).append(row)
    for s in range(subjects):
        name = f"{run}-s{s}"
        got = by_subject.get(name, [])
        if len(got) != versions or len({r.text for r in got}) != versions:
            result.problems.append(f"{name}: {len(got)} rows for {versions} versions")
            continue
        embedded = [r for r in got if r.status == "embedded"]
        latest = max(got, key=lambda r: r.occurred_at)
        if embedded == [latest] and latest.current:
            result.current_latest += 1
        else:
            result.problems.append(f"{name}: embedded {len(embedded)}, latest not current")
        result.superseded += sum(r.status == "superseded" for r in got)
    return result
