"""Dense ranking: cosine k-NN over the HNSW index, filtered inside the scan.

pgvector's iterative index scan (``hnsw.iterative_scan``) keeps walking the graph until
``limit`` rows have passed the WHERE clause (or ``hnsw.max_scan_tuples`` were visited), so a
selective filter no longer empties the ``ef_search`` candidate list. ``relaxed_order`` may
return rows slightly out of order; as pgvector's README shows, the rows are materialized in a
CTE and sorted again by distance (``+ 0`` keeps PostgreSQL 17+ from dropping that sort).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import Event, EventStatus
from common.settings import Settings
from gateway.search.candidates import COLUMNS, Candidate, from_row
from gateway.search.filters import Where, clauses


async def configure_scan(session: AsyncSession, settings: Settings, limit: int) -> None:
    """The gateway's connections start with ``hnsw.ef_search``, ``hnsw.iterative_scan`` and
    ``hnsw.max_scan_tuples`` set (common/db.py); ef_search bounds the candidate list of one
    scan step and must be >= the limit, so a larger limit raises it for this transaction
    only (``set_config(..., true)`` = ``SET LOCAL``)."""
    if limit <= settings.hnsw_ef_search:
        return
    await session.execute(
        text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(limit)}
    )


@lru_cache(maxsize=64)
def statement(shape: tuple[bool, ...]) -> Select[Any]:
    """The dense query for one filter shape, built once; bound: the filters' values,
    ``query_vector``, ``model`` and ``limit``."""
    query_vector = bindparam("query_vector", type_=Event.embedding.type)
    distance = Event.embedding.cosine_distance(query_vector).label("distance")
    nearest = (
        select(*COLUMNS, distance)
        .where(
            *clauses(shape),
            Event.status == EventStatus.embedded,
            # Only vectors of the active model are comparable with the query's.
            Event.model == bindparam("model"),
        )
        .order_by(distance)
        .limit(bindparam("limit", type_=Integer))
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    return select(nearest).order_by(nearest.c.distance + 0)


async def rank(
    session: AsyncSession,
    vector: Sequence[float],
    model: str,
    where: Where,
    limit: int,
    settings: Settings,
) -> list[Candidate]:
    """The ``limit`` nearest events to ``vector`` among those passing ``where``, best first."""
    await configure_scan(session, settings, limit)
    params = {**where.params, "query_vector": vector, "model": model, "limit": limit}
    rows = await session.execute(statement(where.shape), params)
    return [
        from_row(row, score=1.0 - float(row.distance), ranking="dense", rank=i)
        for i, row in enumerate(rows, start=1)
    ]
