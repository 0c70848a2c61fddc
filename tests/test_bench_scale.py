"""``make bench-scale`` runs end to end on tiny sizes and writes every key (figures are
measured by the bench, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench import scale_keyword
from bench.scale_keyword import FIRST_RANK, TEXT_CHARS, TEXT_SQL, VOCABULARY, WORDS_PER_TEXT


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
    for key in (
        "search_p50_ms_by_vectors",
        "recall_at_10_by_vectors",
        "hnsw_index_mb_by_vectors",
        "keyword_p50_ms_by_events",
        "keyword_matched_chunks_by_events",
        "gin_build_s_by_events",
    ):
        assert set(results[key]) == {"1000", "2000"}, key
    # More events, more of them hold a query's words (the same queries at both sizes).
    matched = results["keyword_matched_chunks_by_events"]
    assert 0 < matched["1000"] < matched["2000"]


def test_keyword_corpus_texts_are_words_of_the_vocabulary(db: Engine) -> None:
    """Every text of the keyword corpus is WORDS_PER_TEXT words w<rank> of the vocabulary,
    TEXT_CHARS long (its one chunk spans it whole), and frequent ranks are frequent."""
    with db.connect() as conn:
        texts = (
            conn.execute(text(f"SELECT {TEXT_SQL} FROM generate_series(1, 2000) AS i"))
            .scalars()
            .all()
        )
    assert len(set(texts)) == len(texts)
    words = [w for t in texts for w in t.split(" ")]
    assert all(len(t) == TEXT_CHARS for t in texts)
    assert len(words) == 2000 * WORDS_PER_TEXT
    ranks = [int(w[1:]) for w in words]
    assert all(w[0] == "w" for w in words)
    assert min(ranks) >= FIRST_RANK and max(ranks) <= VOCABULARY
    # Probability ∝ 1/rank: ranks 20..199 are ln 10 / ln 2500 = 0.294 of draws.
    share = sum(r < 200 for r in ranks) / len(ranks)
    assert 0.28 < share < 0.31, share
    queries = scale_keyword.queries(np.random.default_rng(0), 100)
    assert all(len(q.split(" ")) == 3 for q in queries)
