"""``/api/v1/search``: semantic search over the stored vectors of the active model."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select, text

from common.embedders import EmbedError
from common.errors import ServiceUnavailable
from common.models import Event, EventStatus
from common.schemas import SearchHit, SearchRequest, SearchResponse
from gateway.auth import SearchKey
from gateway.deps import EmbedderDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/search", tags=["search"])


async def run_search(
    request: SearchRequest,
    session: SessionDep,
    embedder: EmbedderDep,
    settings: SettingsDep,
    tenant: str,
) -> SearchResponse:
    started = time.perf_counter()
    try:
        [vector] = await embedder.aembed([request.query])
    except EmbedError as error:
        raise ServiceUnavailable(
            f"the embedder failed: {error}", code="embedder_unavailable"
        ) from None
    distance = Event.embedding.cosine_distance(vector)
    # ef_search bounds the candidate list of the HNSW scan; it must be >= top_k.
    await session.execute(
        text(f"SET LOCAL hnsw.ef_search = {max(settings.hnsw_ef_search, request.top_k)}")
    )
    rows = await session.execute(
        select(
            Event.id,
            Event.text,
            Event.source,
            Event.type,
            Event.meta,
            Event.occurred_at,
            distance.label("distance"),
        )
        .where(
            Event.tenant == tenant,
            Event.status == EventStatus.embedded,
            # Only vectors of the active model are comparable with the query's.
            Event.model == embedder.model,
        )
        .order_by(distance)
        .limit(request.top_k)
    )
    hits = [
        SearchHit(
            id=r.id,
            score=1.0 - float(r.distance),
            text=r.text,
            source=r.source,
            type=r.type,
            metadata=r.meta,
            occurred_at=r.occurred_at,
        )
        for r in rows
    ]
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return SearchResponse(results=hits, model=embedder.model, mode=request.mode, took_ms=took_ms)


@router.post("", response_model=SearchResponse)
async def search(
    request: SearchRequest,
    session: SessionDep,
    embedder: EmbedderDep,
    settings: SettingsDep,
    caller: SearchKey,
) -> SearchResponse:
    """Nearest events to ``query`` by cosine similarity, best first."""
    return await run_search(request, session, embedder, settings, caller.tenant)


@router.get("", response_model=SearchResponse)
async def search_get(
    session: SessionDep,
    embedder: EmbedderDep,
    settings: SettingsDep,
    caller: SearchKey,
    q: Annotated[str, Query(min_length=1, max_length=10_000)],
    top_k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SearchResponse:
    """``GET`` form of search, for curl and browsers."""
    return await run_search(
        SearchRequest(query=q, top_k=top_k), session, embedder, settings, caller.tenant
    )
