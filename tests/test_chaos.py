"""The chaos suite, small: 1,000 events through worker kills, a Redis kill and a PostgreSQL
restart, with a flaky embedder (``make chaos`` runs 10,000); one event in ten is over 2,000
tokens, and every chunk set must end complete."""

from __future__ import annotations

from pathlib import Path

from tests.chaos.run import run


def test_every_accepted_event_is_embedded_once_or_dead_lettered_through_chaos(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    result = run(1000, tmp_path / "chaos", rate=50, say=lines.append, subjects=20, versions=4)
    report = "\n".join(lines)
    assert result.duplicates == 0, report
    assert result.lost == 0, report
    assert result.unexpected_dead_letters == 0 and not result.problems, report
    assert result.stored == 1000 and result.dead_letters == 10, report  # the marked 1%
    assert result.partial_sets == 0 and result.chunks > 1100, report  # 100 long events
    assert lines[-1].startswith(
        "chaos: sent=1000 stored=1000 duplicates=0 lost=0 dead_letters=10 partial_chunk_sets=0"
    )
    # Versions sent out of order: one current version per subject, the latest.
    assert lines[-2] == (
        "chaos: subjects=20 versions=80 one_current_latest=20 superseded=60 problems=0"
    ), report
    assert sum("SIGKILLed worker" in line for line in lines) == 3
    assert any("SIGKILLed Redis" in line for line in lines)
    assert any("stopped PostgreSQL" in line for line in lines)
