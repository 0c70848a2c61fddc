"""Dense ranking: cosine k-NN over the chunks' HNSW index, filtered inside the scan, each
event ranked by its best chunk.

pgvector's iterative index scan (``hnsw.iterative_scan``) keeps walking the graph until
``limit`` rows have passed the WHERE clause (or ``hnsw.max_scan_tuples`` were visited), so a
selective filter no longer empties the ``ef_search`` candidate list. ``relaxed_order`` may
return rows slightly out of order; as pgvector's README shows, the rows are materialized in a
CTE and sorted again by distance (``+ 0`` keeps PostgreSQL 17+ from dropping that sort).

The scan walks chunks, and one event may own several of the nearest: the statement keeps
each event's best chunk (``DISTINCT ON``) and the ``top_k`` best events. When the chunks
scanned held fewer than ``top_k`` events while the scan was not exhausted, the scan runs
again ``GROWTH`` times deeper, so a search returns ``top_k`` distinct events whenever that
many match, never ``top_k`` chunks that collapse into fewer events.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from common.models import Chunk, Event, EventStatus
from common.settings import SearchSettings
from gateway.search.candidates import COLUMNS, Candidate, from_row
from gateway.search.filters import Where, clauses


async def configure_scan(connection: AsyncConnection, search: SearchSettings, limit: int) -> None:
    """The gateway's connections start with ``hnsw.ef_search``, ``hnsw.iterative_scan`` and
    ``hnsw.max_scan_tuples`` set (common/db.py); ef_search bounds the candidate list of one
    scan step and must be >= the limit, so a larger limit raises it for this transaction
    only (``set_config(..., true)`` = ``SET LOCAL``; :func:`rank` opens the transaction)."""
    if limit <= search.hnsw_ef_search:
        return
    # pgvector's ceiling; past it the iterative scan goes on by itself.
    ef = min(limit, EF_SEARCH_MAX)
    await connection.execute(
        text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef)}
    )


EF_SEARCH_MAX = 1000
OVERSAMPLE = 4  # chunks scanned per event wanted, first try (>= 1: the short-event case)
GROWTH = 4


@lru_cache(maxsize=64)
def statement(shape: tuple[bool, ...]) -> Select[Any]:
    """The dense query for one filter shape, built once; bound: the filters' values,
    ``query_vector``, ``model``, ``limit`` (chunks scanned) and ``top_k`` (events)."""
    query_vector = bindparam("query_vector", type_=Chunk.embedding.type)
    distance = Chunk.embedding.cosine_distance(query_vector).label("distance")
    nearest = (
        select(
            Chunk.event_id.label("event_id"),
            Chunk.position.label("position"),
            Chunk.char_start.label("char_start"),
            Chunk.char_end.label("char_end"),
            distance,
        )
        .join(Event, Event.id == Chunk.event_id)
        .where(
            # On the chunk row itself, so that the index scan filters before any join.
            Chunk.tenant == bindparam("f_tenant"),
            # Only vectors of the active model are comparable with the query's.
            Chunk.model == bindparam("model"),
            *clauses(shape),
            Event.status == EventStatus.embedded,
        )
        .order_by(distance)
        .limit(bindparam("limit", type_=Integer))
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    best = (
        select(nearest)
        .ext(distinct_on(nearest.c.event_id))
        .order_by(nearest.c.event_id, nearest.c.distance + 0, nearest.c.position)
        .cte("best")
    )
    # The top_k best events before the join that fetches their text and metadata: joined
    # first, every event of the scan (4x top_k) was fetched and sorted whole (~0.4 ms).
    top = (
        select(best)
        .order_by(best.c.distance, best.c.event_id)
        .limit(bindparam("top_k", type_=Integer))
        .cte("top")
    )
    scanned = select(func.count()).select_from(nearest).scalar_subquery().label("scanned")
    return (
        select(*COLUMNS, top.c.distance, top.c.char_start, top.c.char_end, top.c.position, scanned)
        .join(top, top.c.event_id == Event.id)
        .order_by(top.c.distance, Event.id)
    )


async def rank(
    connection: AsyncConnection,
    vector: Sequence[float],
    model: str,
    where: Where,
    limit: int,
    search: SearchSettings,
) -> list[Candidate]:
    """The ``limit`` nearest events to ``vector`` among those passing ``where``, best first,
    each by its nearest chunk (the hit's passage)."""
    scan = limit * OVERSAMPLE
    opened = False
    try:
        while True:
            if scan > search.hnsw_ef_search and not opened:
                # Search reads in autocommit: SET LOCAL needs a transaction to be local to.
                # Were it left open, the pool's reset on return would roll it back, so a
                # raised ef_search never outlives its search.
                await connection.execute(text("BEGIN"))
                opened = True
            await configure_scan(connection, search, scan)
            params = {
                **where.params,
                "query_vector": vector,
                "model": model,
                "limit": scan,
                "top_k": limit,
            }
            rows = (await connection.execute(statement(where.shape), params)).all()
            exhausted = not rows or rows[0].scanned < scan
            if len(rows) >= limit or exhausted or scan >= search.hnsw_max_scan_tuples:
                break
            scan = min(scan * GROWTH, search.hnsw_max_scan_tuples)
    finally:
        if opened:  # ends the SET LOCAL (after a failed statement COMMIT rolls back)
            await connection.execute(text("COMMIT"))
    return [
        from_row(
            row,
            score=1.0 - float(row.distance),
            ranking="dense",
            rank=i,
            passage=(row.char_start, row.char_end),
        )
        for i, row in enumerate(rows, start=1)
    ]
