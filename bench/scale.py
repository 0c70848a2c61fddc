"""``make bench-scale``: how dense search and ingest grow (issue 16).

First ``ingest_events_per_s_by_workers`` (bench/scale_ingest.py: the real pipeline with the
stub embedder, one worker then two). Then the synthetic corpus of bench/scale_data.py, loaded
fast into the real ``events`` and ``chunks`` tables of a private embedded PostgreSQL. Each
size adds rows to the previous one, builds the HNSW index again with the migration's ``m`` /
``ef_construction`` (timed, ``maintenance_work_mem`` high). Queries are drawn from the same
law and run through the gateway's own dense statement (``gateway.search.dense.statement``,
best chunk per event) with the gateway's session settings; recall@10 is against exact search
computed in NumPy over the same vectors. Each event's text is bench/scale_keyword.py's
Zipf-like words, and after the HNSW index the two GIN indexes are built again (timed) and the
gateway's keyword statement is timed too (``keyword_*_by_events``).

Sizes: ``BENCH_SCALE_SIZES`` (default ``100000,300000,1000000``), queries
``BENCH_SCALE_QUERIES`` (default 200; keyword queries ``BENCH_SCALE_KEYWORD_QUERIES``,
default 50), ingest events ``BENCH_SCALE_INGEST_EVENTS`` (default
3000). The JSON is written after ingest and after every size, so a run cut short keeps what it
measured and names what it did not.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import create_engine, event, text

from bench import scale_data, scale_ingest, scale_keyword
from bench.services import services

OUT = Path("bench-scale-results.json")


def sizes_from_env() -> list[int]:
    raw = os.environ.get("BENCH_SCALE_SIZES", "100000,300000,1000000")
    return sorted(int(s.replace("_", "")) for s in raw.split(",") if s.strip())


# bench/chunks.py's corpus (issue 14): isotropic noise around random centres.
DIM, CENTRES, NOISE = scale_data.DIM, 1000, 0.06


def vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    picked = centres[rng.integers(0, len(centres), n)]
    v = picked + rng.normal(0, NOISE, (n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def event_id(i: int) -> uuid.UUID:
    return uuid.UUID(int=i + 1)


def build_index(db_url: str) -> tuple[float, int]:
    from common.settings import get_settings

    settings = get_settings()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_hnsw")
        conn.execute("SET maintenance_work_mem = '8GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        conn.execute(
            "CREATE INDEX ix_chunks_embedding_hnsw ON chunks USING hnsw (embedding "
            f"vector_cosine_ops) WITH (m = {settings.hnsw_m}, "
            f"ef_construction = {settings.hnsw_ef_construction})"
        )
        built = time.perf_counter() - started
        conn.execute("ANALYZE events")
        conn.execute("ANALYZE chunks")
        size = conn.execute("SELECT pg_relation_size('ix_chunks_embedding_hnsw')").fetchone()
    return built, int(size[0]) if size else 0


def search(
    db_url: str, queries: np.ndarray, limit: int = 10
) -> tuple[list[float], list[list[str]]]:
    """The gateway's dense statement with the gateway's session settings (common/db.py)."""
    from pgvector.psycopg import register_vector as register

    from common.settings import get_settings
    from gateway.search.dense import OVERSAMPLE, statement

    settings = get_settings()
    engine = create_engine(
        db_url.replace("postgresql://", "postgresql+psycopg://"),
        connect_args={
            "options": f"-c hnsw.ef_search={settings.hnsw_ef_search}"
            " -c hnsw.iterative_scan=relaxed_order"
            f" -c hnsw.max_scan_tuples={settings.hnsw_max_scan_tuples}"
        },
    )
    event.listen(engine, "connect", lambda dbapi, _: register(dbapi))
    stmt = statement((False,) * 6)
    times, found = [], []
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        for i, q in enumerate(queries):
            params: dict[str, Any] = {
                "f_tenant": "bench",
                "query_vector": q,
                "model": "stub-embed",
                "limit": limit * OVERSAMPLE,
                "top_k": limit,
            }
            started = time.perf_counter()
            rows = conn.execute(stmt, params).all()
            elapsed = (time.perf_counter() - started) * 1000
            if i >= 5:  # the first few warm the caches
                times.append(elapsed)
                found.append([str(r.id) for r in rows])
    engine.dispose()
    return times, found


def exact(data: np.ndarray, queries: np.ndarray, k: int = 10) -> list[list[str]]:
    found: list[list[str]] = []
    for at in range(0, len(queries), 50):
        scores = queries[at : at + 50] @ data.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        for row, ids in zip(scores, top, strict=True):
            best = ids[np.argsort(-row[ids])]
            found.append([str(event_id(int(i))) for i in best])
    return found


def load(
    db_url: str,
    corpus: scale_data.Corpus,
    rng: np.random.Generator,
    data: np.ndarray,
    start: int,
    size: int,
) -> float:
    """Rows ``start .. size`` into the database and into ``data``; returns rows per second."""
    started = time.perf_counter()
    for at in range(start, size, scale_data.BLOCK):
        block = corpus.draw(rng, min(scale_data.BLOCK, size - at))
        scale_data.load(db_url, at, block, words=True)
        data[at : at + len(block)] = block
    return (size - start) / (time.perf_counter() - started)


def main() -> None:
    sizes = sizes_from_env()
    n_queries = int(os.environ.get("BENCH_SCALE_QUERIES", "200"))
    rng = np.random.default_rng(16)
    corpus = scale_data.corpus(rng)
    queries = corpus.draw(rng, n_queries + 5)
    keyword_queries = scale_keyword.queries(
        rng, int(os.environ.get("BENCH_SCALE_KEYWORD_QUERIES", "50")) + 3
    )
    results: dict[str, Any] = {
        "corpus": scale_data.DESCRIPTION,
        "sizes_requested": sizes,
        "ingest_events_per_s_by_workers": {},
        "search_p50_ms_by_vectors": {},
        "search_p99_ms_by_vectors": {},
        "recall_at_10_by_vectors": {},
        "hnsw_build_s_by_vectors": {},
        "hnsw_index_mb_by_vectors": {},
        "load_rows_per_s_by_vectors": {},
        "keyword_p50_ms_by_events": {},
        "keyword_p99_ms_by_events": {},
        "keyword_matched_chunks_by_events": {},
        "keyword_top_k_fill_by_events": {},
        "keyword_units_count_ms_by_events": {},
        "gin_build_s_by_events": {},
        "not_measured": list(sizes),
        "errors": {},
    }
    root = Path(tempfile.mkdtemp(prefix="eventsearch-scale-"))
    os.environ.setdefault("TMPDIR", str(root))
    data = np.empty((max(sizes), scale_data.DIM), dtype=np.float32)
    loaded = 0
    with services(root) as svc:
        try:
            results["ingest_events_per_s_by_workers"] = scale_ingest.measure(svc)
        except Exception as exc:  # recorded; the search sizes still run
            results["errors"]["ingest"] = f"{type(exc).__name__}: {exc}"
            svc.clean_up()
        write(results)
        db_url, _ = svc.database("bench_scale")
        for size in sizes:
            key = str(size)
            try:
                rate = load(db_url, corpus, rng, data, loaded, size)
                loaded = size
                results["load_rows_per_s_by_vectors"][key] = round(rate)
                print(f"bench-scale: {size} rows loaded, building HNSW ...", flush=True)
                built, index_bytes = build_index(db_url)
                results["hnsw_build_s_by_vectors"][key] = round(built, 1)
                results["hnsw_index_mb_by_vectors"][key] = round(index_bytes / 2**20, 1)
                times, found = search(db_url, queries)
                truth = exact(data[:size], queries[5:])
                recall = np.mean(
                    [len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]
                )
                results["search_p50_ms_by_vectors"][key] = round(float(np.percentile(times, 50)), 2)
                results["search_p99_ms_by_vectors"][key] = round(float(np.percentile(times, 99)), 2)
                results["recall_at_10_by_vectors"][key] = round(float(recall), 4)
                print(f"bench-scale: {size} rows, building GIN, keyword search ...", flush=True)
                results["gin_build_s_by_events"][key] = round(
                    scale_keyword.build_text_indexes(db_url), 1
                )
                keyword = scale_keyword.search(db_url, keyword_queries)
                results["keyword_p50_ms_by_events"][key] = keyword["p50_ms"]
                results["keyword_p99_ms_by_events"][key] = keyword["p99_ms"]
                results["keyword_matched_chunks_by_events"][key] = keyword["matched_chunks_mean"]
                results["keyword_top_k_fill_by_events"][key] = keyword["top_k_fill"]
                results["keyword_units_count_ms_by_events"][key] = keyword["units_count_ms"]
                results["not_measured"].remove(size)
            except Exception as exc:
                results["errors"][key] = f"{type(exc).__name__}: {exc}"
            p50s = results["search_p50_ms_by_vectors"]
            if len(p50s) > 1:
                first = p50s[str(min(int(k) for k in p50s))]
                results["p50_growth_vs_smallest"] = {
                    k: round(v / first, 2) for k, v in p50s.items()
                }
            write(results)


def write(results: dict[str, Any]) -> None:
    """The JSON after every part: a run cut short keeps what it measured."""
    results["load_average_1m_5m_15m"] = [round(x, 2) for x in os.getloadavg()]
    OUT.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2), flush=True)


if __name__ == "__main__":
    main()
