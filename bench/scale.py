"""``make bench-scale``: how dense search grows with the corpus (issue 16).

Synthetic corpus: clustered random unit vectors of the local model's 384 dims (1,000 cluster
centres, Gaussian noise around each), loaded with binary COPY into the real ``events`` and
``chunks`` tables of a private embedded PostgreSQL started as the bench's stack starts it.
Each size adds rows to the previous one, drops the HNSW index and builds it again with the
migration's ``m`` / ``ef_construction`` (timed, ``maintenance_work_mem`` high). Queries are
drawn from the same distribution and run through the gateway's own dense statement
(``gateway.search.dense.statement``, best chunk per event) with the gateway's session
settings; recall@10 is against exact search computed in NumPy over the same vectors.

Sizes: ``BENCH_SCALE_SIZES`` (default ``100000,300000,1000000``), queries
``BENCH_SCALE_QUERIES`` (default 200). The JSON is written after every size, so a run cut
short keeps what it measured and names what it did not.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy import create_engine, event, text

from bench.services import services

DIM, CENTRES, NOISE = 384, 1000, 0.06
OUT = Path("bench-scale-results.json")


def sizes_from_env() -> list[int]:
    raw = os.environ.get("BENCH_SCALE_SIZES", "100000,300000,1000000")
    return sorted(int(s.replace("_", "")) for s in raw.split(",") if s.strip())


def vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    picked = centres[rng.integers(0, len(centres), n)]
    v = picked + rng.normal(0, NOISE, (n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def event_id(i: int) -> uuid.UUID:
    return uuid.UUID(int=i + 1)


def copy_rows(db_url: str, start: int, block: np.ndarray, per_event: int = 1) -> None:
    """COPY events ``start`` .. and their chunks, ``per_event`` consecutive rows of ``block``
    each (chunk ``position`` 0 .. ``per_event - 1``). The HNSW index is dropped first: rows
    COPYed into a live index are inserted into the graph one by one, many times slower than
    the one build that follows (``build_index``)."""
    stamp = datetime.now(UTC)
    events = len(block) // per_event
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_hnsw")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY events (id, tenant, source, type, text, metadata, status, model, chunking,"
                " embedded_at) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                ["uuid", "varchar", "varchar", "varchar", "text", "jsonb", "varchar",
                 "varchar", "varchar", "timestamptz"]
            )  # fmt: skip
            for i in range(start, start + events):
                copy.write_row(
                    [event_id(i), "bench", "scale", "doc", f"synthetic {i}", "{}",
                     "embedded", "stub-embed", "bench", stamp]
                )  # fmt: skip
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
                " embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["uuid", "int4", "varchar", "int4", "int4", "int4", "varchar", "vector"])
            for j, vec in enumerate(block):
                owner, position = event_id(start + j // per_event), j % per_event
                copy.write_row([owner, position, "bench", 0, 12, 4, "stub-embed", vec])


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
    scores = queries @ data.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [[str(event_id(int(i))) for i in row] for row in top]


def main() -> None:
    sizes = sizes_from_env()
    n_queries = int(os.environ.get("BENCH_SCALE_QUERIES", "200"))
    rng = np.random.default_rng(16)
    centres = rng.normal(0, 1, (CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = vectors(rng, centres, n_queries + 5)
    results: dict[str, Any] = {
        "corpus": f"synthetic: {CENTRES} clusters of unit vectors, {DIM} dims, noise {NOISE}",
        "sizes_requested": sizes,
        "search_p50_ms_by_vectors": {},
        "search_p99_ms_by_vectors": {},
        "recall_at_10_by_vectors": {},
        "hnsw_build_s_by_vectors": {},
        "hnsw_index_mb_by_vectors": {},
        "copy_s_by_vectors": {},
        "not_measured": list(sizes),
        "errors": {},
    }
    root = Path(tempfile.mkdtemp(prefix="eventsearch-scale-"))
    os.environ.setdefault("TMPDIR", str(root))
    data = np.empty((0, DIM), dtype=np.float32)
    with services(root) as svc:
        db_url, _ = svc.database("bench_scale")
        for size in sizes:
            key = str(size)
            try:
                started = time.perf_counter()
                block = vectors(rng, centres, size - len(data))
                copy_rows(db_url, len(data), block)
                data = np.vstack([data, block])
                results["copy_s_by_vectors"][key] = round(time.perf_counter() - started, 1)
                print(f"bench-scale: {size} rows loaded, building HNSW ...", flush=True)
                built, index_bytes = build_index(db_url)
                results["hnsw_build_s_by_vectors"][key] = round(built, 1)
                results["hnsw_index_mb_by_vectors"][key] = round(index_bytes / 2**20, 1)
                times, found = search(db_url, queries)
                truth = exact(data, queries[5:])
                recall = np.mean(
                    [len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]
                )
                results["search_p50_ms_by_vectors"][key] = round(float(np.percentile(times, 50)), 2)
                results["search_p99_ms_by_vectors"][key] = round(float(np.percentile(times, 99)), 2)
                results["recall_at_10_by_vectors"][key] = round(float(recall), 4)
                results["not_measured"].remove(size)
            except Exception as exc:
                results["errors"][key] = f"{type(exc).__name__}: {exc}"
            p50s = results["search_p50_ms_by_vectors"]
            if len(p50s) > 1:
                first = p50s[str(min(int(k) for k in p50s))]
                results["p50_growth_vs_smallest"] = {
                    k: round(v / first, 2) for k, v in p50s.items()
                }
            results["load_average_1m_5m_15m"] = [round(x, 2) for x in os.getloadavg()]
            OUT.write_text(json.dumps(results, indent=2))
            print(json.dumps(results, indent=2), flush=True)


if __name__ == "__main__":
    main()
