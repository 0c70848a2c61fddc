"""The vector column's dimension against ``EMBED_DIM``, checked when a process starts.

The column's dimension is fixed when the table is created (migration 0001). A gateway or
worker configured for a model of another dimension could never store or compare a vector,
so it refuses to start, with one line, instead of failing every event. (The schema could
hold several dimensions, one column or table per model; one column keeps every query on one
HNSW index, and a model change of dimension is rare enough to deserve a fresh database.)
"""

from __future__ import annotations

import sys

import psycopg

from common.settings import Settings


def column_dimension(database_url: str) -> int | None:
    """``chunks.embedding``'s dimension, or ``None`` when the database cannot tell yet
    (unreachable, or not migrated): then the worker's own check guards each vector."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT atttypmod FROM pg_attribute "
                "WHERE attrelid = to_regclass('chunks') AND attname = 'embedding'"
            ).fetchone()
    except psycopg.Error:
        return None
    # pgvector keeps the dimension in the type modifier (-1: declared without one).
    return int(row[0]) if row and row[0] > 0 else None


def check_or_exit(settings: Settings) -> None:
    """Exit 2 with one line when ``EMBED_DIM`` does not fit the vector column."""
    dim = column_dimension(settings.database_url)
    if dim is not None and dim != settings.embed_dim:
        print(
            f"eventsearch: EMBED_DIM={settings.embed_dim} ({settings.model_name}) does not fit "
            f"the database: chunks.embedding holds {dim} dimensions; use a model of {dim} "
            "dimensions or a fresh database (README: Changing models)",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2)
