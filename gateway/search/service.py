"""One search: the mode's rankings, each filtered inside its query, fused when hybrid."""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncConnection

from common.embedders import Embedder, EmbedError, PermanentEmbedError
from common.errors import AppError, ServiceUnavailable
from common.schemas import Passage, SearchHit, SearchRequest, SearchResponse
from common.settings import SearchSettings, Settings
from gateway.search import dense, keyword
from gateway.search.candidates import Candidate
from gateway.search.filters import conditions
from gateway.search.fusion import linear_fusion, reciprocal_rank_fusion
from gateway.search.passages import fill_keyword_passages


@lru_cache
def _query_cache(size: int) -> LRUCache[tuple[str, str], list[float]]:
    """The process's query cache of ``size`` entries (one per size: one in a gateway)."""
    return LRUCache(maxsize=max(size, 1))


async def embed_query(embedder: Embedder, query: str, search: SearchSettings) -> list[float]:
    """The query's vector, from a per-process LRU cache when the same query (same model) was
    embedded before: dashboards and retries repeat queries, and the embedder call is most of a
    search's time. An embedder failure is a 503 the client may retry."""
    key = (embedder.model, query)
    cache = _query_cache(search.query_cache_size)
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        [vector] = await embedder.aembed([query])
    except PermanentEmbedError as error:
        # Retrying cannot help (e.g. the query is over the model's context length).
        raise AppError(
            f"the query cannot be embedded: {error}", code="query_not_embeddable", status_code=422
        ) from None
    except EmbedError as error:
        raise ServiceUnavailable(
            f"the embedder failed: {error}", code="embedder_unavailable"
        ) from None
    if search.query_cache_size:
        cache[key] = vector
    return vector


async def run_search(
    request: SearchRequest,
    connection: AsyncConnection,
    embedder: Embedder,
    settings: Settings,
    tenant: str,
) -> SearchResponse:
    """Search ``tenant``'s events in the request's mode (default ``SEARCH_DEFAULT_MODE``)."""
    started = time.perf_counter()
    mode = request.mode or settings.search_default_mode
    where = conditions(tenant, request.filters)
    # Fusion needs more than top_k of each ranking: a hit ranked 30th by both rankings can
    # deserve a place in the fused top 10.
    depth = max(request.top_k, settings.hybrid_candidates) if mode == "hybrid" else request.top_k
    rankings: dict[str, list[Candidate]] = {}
    # The query is embedded (an HTTP call or a model in a thread) while the keyword
    # ranking runs on the database.
    vector = (
        asyncio.create_task(embed_query(embedder, request.query, settings.search))
        if mode != "keyword"
        else None
    )
    try:
        if mode != "dense":
            rankings["keyword"] = await keyword.rank(connection, request.query, where, depth)
        if vector is not None:
            rankings["dense"] = await dense.rank(
                connection, await vector, embedder.model, where, depth, settings.search
            )
    finally:
        if vector is not None and not vector.done():
            vector.cancel()
    if mode == "hybrid":
        weights = {"dense": settings.rrf_weight_dense, "keyword": settings.rrf_weight_keyword}
        if (request.fusion or settings.hybrid_fusion) == "linear":
            fused = linear_fusion(rankings, weights)
        else:
            fused = reciprocal_rank_fusion(rankings, weights, settings.rrf_k)
        hits = fused[: request.top_k]
    else:
        hits = rankings[mode]
    await fill_keyword_passages(connection, request.query, hits)
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return SearchResponse(
        results=[
            SearchHit(
                id=c.id,
                score=c.score,
                text=c.text,
                source=c.source,
                type=c.type,
                metadata=c.metadata,
                occurred_at=c.occurred_at,
                subject=c.subject,
                rankings=c.rankings,
                passage=passage(c),
            )
            for c in hits
        ],
        model=embedder.model,
        mode=mode,
        took_ms=took_ms,
    )


def passage(hit: Candidate) -> Passage | None:
    if hit.passage is None:
        return None
    start, end = hit.passage
    return Passage(text=hit.text[start:end], start=start, end=end)
