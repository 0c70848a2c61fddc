"""Writing chunk sets: an event's chunks are replaced as a whole, in the caller's transaction.

The worker's store step (and re-embedding) is three statements in one transaction:
:func:`stage` COPYs every chunk of the batch into a temporary table, the caller's
conditional UPDATE of ``events`` (``WHERE status = 'queued'``, ``RETURNING id``) says which
events change, and :func:`replace` swaps those events' old sets for the staged ones. So a
task run twice (the second finds nothing queued), a worker killed before the commit
(nothing is written) or two workers on one event (the row lock of the UPDATE serialises
them, and the second finds it embedded) all leave exactly one complete set, or none.

Binary COPY into a temporary table, then one INSERT ... SELECT: the fastest way measured
to get a batch of vectors into PostgreSQL (docs/decisions.md 15).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from sqlalchemy import text
from sqlalchemy.orm import Session

from common.chunking import Chunk


@dataclass(frozen=True)
class ChunkSet:
    """Every chunk of one event, in order, with one vector each."""

    event_id: uuid.UUID
    chunks: Sequence[Chunk]
    vectors: Sequence[Sequence[float]]

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.chunks)


STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS chunk_stage (event_id uuid, position int, char_start int,"
    " char_end int, tokens int, embedding vector) ON COMMIT DELETE ROWS"
)
COPY = (
    "COPY chunk_stage (event_id, position, char_start, char_end, tokens, embedding)"
    " FROM STDIN WITH (FORMAT BINARY)"
)
STAGED_EVENTS = "SELECT DISTINCT event_id FROM chunk_stage"
DROP_OLD = text("DELETE FROM chunks WHERE event_id = ANY(:ids)")
INSERT_NEW = text(
    "INSERT INTO chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
    " embedding, search_text)"
    " SELECT s.event_id, s.position, e.tenant, s.char_start, s.char_end, s.tokens, :model,"
    " s.embedding, chunk_search_text(e.text, e.search_text, s.char_start, s.char_end)"
    " FROM chunk_stage s JOIN events e ON e.id = s.event_id"
    " WHERE s.event_id = ANY(:ids)"
)

_vector_type: TypeInfo | None = None


def vector_type(conn: psycopg.Connection[Any]) -> TypeInfo:
    """pgvector's type in this database, looked up once per process."""
    global _vector_type
    if _vector_type is None:
        _vector_type = TypeInfo.fetch(conn, "vector")
        if _vector_type is None:
            raise RuntimeError("the vector extension is missing: run `eventsearch migrate`")
    return _vector_type


def stage(session: Session, sets: Iterable[ChunkSet]) -> None:
    """COPY the sets' chunks into this transaction's ``chunk_stage`` (emptied at commit)."""
    conn = session.connection()
    conn.exec_driver_sql(STAGE)
    # Emptied at commit, but a transaction may stage twice (store, then re-embed).
    conn.exec_driver_sql("DELETE FROM chunk_stage")
    raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    register_vector_info(raw, vector_type(raw))
    with raw.cursor() as cursor, cursor.copy(COPY) as copy:
        copy.set_types(["uuid", "int4", "int4", "int4", "int4", "vector"])
        for chunk_set in sets:
            for chunk, vector in zip(chunk_set.chunks, chunk_set.vectors, strict=True):
                copy.write_row(
                    (
                        chunk_set.event_id,
                        chunk.position,
                        chunk.start,
                        chunk.end,
                        chunk.tokens,
                        np.asarray(vector, dtype=np.float32),
                    )
                )


def replace(session: Session, event_ids: Sequence[uuid.UUID], model: str) -> int:
    """Make the staged sets of ``event_ids`` their only chunks; returns chunks written."""
    if not event_ids:
        return 0
    ids = list(event_ids)
    session.execute(DROP_OLD, {"ids": ids})
    result = session.connection().execute(INSERT_NEW, {"ids": ids, "model": model})
    return result.rowcount
