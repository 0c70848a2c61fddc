"""Keyword search at ``make bench-scale``'s sizes: the gateway's own BM25 statement
(``gateway.search.keyword.statement``) over events whose text is made of Zipf-like words.

The words: ``w00020`` .. ``w50000``, each drawn with probability ∝ 1/rank (log-uniform ranks;
the 19 most frequent ranks left out, as a stop-word list leaves out the most frequent words
of a language), 30 a text, every word 6 characters, so that every text is ``TEXT_CHARS``
long and its one chunk spans it whole. The most frequent word is then in ~17 % of the texts,
a word of rank 1,000 in ~0.5 %. A query is three words drawn from the same law.

Why this measure: BM25 here is computed by PostgreSQL over every unit that holds one of the
query's words (gateway/search/keyword.py), so its cost grows with how many units match, not
with ``top_k``; and ``N`` (the units in scope) is a count over the tenant's chunks. This says
at which size that stops being interactive.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import create_engine, text

VOCABULARY, FIRST_RANK, WORDS_PER_TEXT = 50_000, 20, 30
TEXT_CHARS = WORDS_PER_TEXT * 7 - 1
# The migrations' text indexes: a load of this corpus drops them (an insert per row each) and
# build_text_indexes makes them again, as the bench does for HNSW.
TEXT_INDEXES = {"ix_events_search_text": "events", "ix_chunks_search_text": "chunks"}
_RANK_SQL = f"floor({FIRST_RANK} * exp(random() * ln({VOCABULARY} / {FIRST_RANK}.0)))::int"
# Evaluated once a row: the subquery refers to the row's ``i``.
TEXT_SQL = (
    f"(SELECT string_agg('w' || lpad(least({_RANK_SQL}, {VOCABULARY})::text, 5, '0'), ' ')"
    f" FROM generate_series(1, {WORDS_PER_TEXT} + 0 * i))"
)


def queries(rng: np.random.Generator, n: int, words: int = 3) -> list[str]:
    """``n`` queries of ``words`` words of the texts' law."""
    ranks = np.floor(
        FIRST_RANK * np.exp(rng.random((n, words)) * np.log(VOCABULARY / FIRST_RANK))
    ).astype(int)
    ranks = np.minimum(ranks, VOCABULARY)
    return [" ".join(f"w{r:05d}" for r in row) for row in ranks]


def build_text_indexes(db_url: str) -> float:
    """The migrations' GIN indexes on ``events.search_text`` and ``chunks.search_text``,
    built again after a load; returns the seconds both took."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '2GB'")
        started = time.perf_counter()
        for index, table in TEXT_INDEXES.items():
            conn.execute(f"DROP INDEX IF EXISTS {index}")
            conn.execute(f"CREATE INDEX {index} ON {table} USING gin (search_text)")
        built = time.perf_counter() - started
        conn.execute("ANALYZE events")
        conn.execute("ANALYZE chunks")
    return built


def search(db_url: str, texts: list[str], limit: int = 10) -> dict[str, Any]:
    """p50/p99 of the gateway's keyword statement (no filters) and how many chunks held a
    query word (the units BM25 scores), over ``texts``; the first three warm the caches.
    Also how long counting N took once (the gateway does it once per ``SCOPE_TTL_S``)."""
    from gateway.search.keyword import scope_statement, statement

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    shape = (False,) * 6
    stmt = statement(shape, False)
    times: list[float] = []
    matched: list[int] = []
    filled: list[int] = []
    count = text(
        "SELECT count(*) FROM chunks WHERE tenant = 'bench' AND search_text @@"
        " replace(plainto_tsquery('english', :q)::text, '&', '|')::tsquery"
    )
    with engine.connect() as conn:
        # BM25's N, as the gateway keeps it (counted once, not per query: units_in_scope).
        started = time.perf_counter()
        units = conn.execute(scope_statement(shape), {"f_tenant": "bench"}).scalar_one()
        count_ms = (time.perf_counter() - started) * 1000
        for i, q in enumerate(texts):
            params = {"f_tenant": "bench", "query": q, "limit": limit, "units": units}
            started = time.perf_counter()
            rows = conn.execute(stmt, params).all()
            elapsed = (time.perf_counter() - started) * 1000
            if i >= 3:
                times.append(elapsed)
                filled.append(len(rows))
                matched.append(int(conn.execute(count, {"q": q}).scalar_one()))
    engine.dispose()
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p99_ms": round(float(np.percentile(times, 99)), 1),
        "matched_chunks_mean": round(float(np.mean(matched))),
        "top_k_fill": round(float(np.mean(filled)) / limit, 3),
        "units_count_ms": round(count_ms, 1),
    }
