"""Dense ranking: cosine k-NN over the HNSW index, filtered inside the scan.

pgvector's iterative index scan (``hnsw.iterative_scan``) keeps walking the graph until
``limit`` rows have passed the WHERE clause (or ``hnsw.max_scan_tuples`` were visited), so a
selective filter no longer empties the ``ef_search`` candidate list. ``relaxed_order`` may
return rows slightly out of order; as pgvector's README shows, the rows are materialized in a
CTE and sorted again by distance (``+ 0`` keeps PostgreSQL 17+ from dropping that sort).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import Event, EventStatus
from common.settings import Settings
from gateway.search.candidates import COLUMNS, Candidate, from_row


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


async def rank(
    session: AsyncSession,
    vector: Sequence[float],
    model: str,
    where: Sequence[ColumnElement[bool]],
    limit: int,
    settings: Settings,
) -> list[Candidate]:
    """The ``limit`` nearest events to ``vector`` among those passing ``where``, best first."""
    await configure_scan(session, settings, limit)
    distance = Event.embedding.cosine_distance(vector).label("distance")
    nearest = (
        select(*COLUMNS, distance)
        .where(
            *where,
            Event.status == EventStatus.embedded,
            # Only vectors of the active model are comparable with the query's.
            Event.model == model,
        )
        .order_by(distance)
        .limit(limit)
        .cte("nearest")
        .prefix_with("MATERIALIZED")
    )
    rows = await session.execute(select(nearest).order_by(nearest.c.distance + 0))
    return [
        from_row(row, score=1.0 - float(row.distance), ranking="dense", rank=i)
        for i, row in enumerate(rows, start=1)
    ]
