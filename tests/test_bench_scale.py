"""``make bench-scale`` runs end to end on tiny sizes and writes every key (figures are
measured by the bench, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_scale_writes_every_key_at_tiny_sizes(tmp_path: Path) -> None:
    # It runs in tmp_path (where it writes its JSON): bench/ is found from the repository
    # root, as `make bench-scale` finds it from its working directory.
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        "BENCH_SCALE_SIZES": "1000,2000",
        "BENCH_SCALE_QUERIES": "10",
        "BENCH_SCALE_INGEST_EVENTS": "50",
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench.scale"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "bench-scale-results.json").read_text())
    assert results["errors"] == {} and results["not_measured"] == []
    assert set(results["ingest_events_per_s_by_workers"]) == {"1", "2"}
    for key in ("search_p50_ms_by_vectors", "recall_at_10_by_vectors", "hnsw_index_mb_by_vectors"):
        assert set(results[key]) == {"1000", "2000"}, key
