"""The bench harness runs end to end on tiny sizes and writes every key as a number.
(Figures are measured by `make bench`, never asserted in tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEYS = [
    "ingest_single_vs_bare",
    "batch_vs_single",
    "e2e_vs_encode",
    "e2e_vs_torch_encode",
    "e2e_vs_naive",
    "search_p50_overhead_ms",
    "hnsw_recall_at_10",
    "export_rss_growth_mb",
    "chunked_e2e_tokens_vs_encode",
    "search_p50_chunked_vs_single",
]


def test_bench_harness_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(results[key], int | float), key
    assert "filtered_fill" in results
    assert "ingest_single_vs_bare" in run.stdout


def test_a_failing_part_is_recorded_and_retried_once() -> None:
    from bench.__main__ import ATTEMPTS, run_part

    calls: list[str] = []

    def broken() -> dict[str, object]:
        calls.append("run")
        raise ConnectionError("gateway gone")

    figures, error = run_part("search", broken, lambda: calls.append("clean"))
    assert figures == {}
    assert error == f"failed {ATTEMPTS} times, last: ConnectionError: gateway gone"
    assert calls == ["run", "clean"] * ATTEMPTS

    attempts: list[int] = []

    def flaky() -> dict[str, object]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first try")
        return {"key": 1.0}

    assert run_part("ingest", flaky, lambda: None) == ({"key": 1.0}, None)
    assert len(attempts) == 2
