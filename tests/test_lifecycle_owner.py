"""Only common/lifecycle writes the events table: a reader finds every transition of an
event by name in one file (issue 13). Tests and benchmarks seed rows directly as fixtures,
so only the shipped packages are searched."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("common", "gateway", "workers", "cli", "stack", "eventsearch")
OWNER = ROOT / "common" / "lifecycle"
WRITES = re.compile(
    r"UPDATE\s+events\b|INSERT\s+INTO\s+events\b|DELETE\s+FROM\s+events\b"
    r"|\b(?:update|insert|delete)\(\s*Event\b|Event\.__table__",
    re.IGNORECASE,
)


def test_nothing_outside_common_lifecycle_writes_events() -> None:
    offenders = []
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if OWNER in path.parents or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if WRITES.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_pattern_sees_each_kind_of_write() -> None:
    for line in (
        '"UPDATE events SET status"',
        "'insert into events (id)'",
        '"DELETE FROM events WHERE"',
        "update(Event).where(...)",
        "insert(Event.__table__)",
        "delete(Event)",
    ):
        assert WRITES.search(line), line
    assert not WRITES.search("UPDATE dead_letters SET replayed_at = now()")
