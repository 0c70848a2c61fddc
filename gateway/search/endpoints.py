"""``/api/v1/search``: ``POST`` with a JSON body, ``GET`` with query parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, ValidationError

from common.schemas import Fusion, SearchMode, SearchRequest, SearchResponse
from gateway.auth import SearchKey
from gateway.deps import EmbedderDep, ReaderDep, SettingsDep
from gateway.search.filters import from_query
from gateway.search.service import run_search

router = APIRouter(prefix="/api/v1/search", tags=["search"])
PARAMETERS = {"query": "q"}  # SearchRequest's field names that GET spells otherwise


@router.post("", response_model=SearchResponse)
async def search(
    request: SearchRequest,
    connection: ReaderDep,
    embedder: EmbedderDep,
    settings: SettingsDep,
    caller: SearchKey,
) -> SearchResponse:
    """The caller's events best matching ``query``, best first, among those passing
    ``filters``. ``mode``: ``dense`` (vectors), ``keyword`` (full-text) or ``hybrid`` (both,
    fused by reciprocal rank, or with ``fusion: "linear"`` by a weighted sum of min-max
    normalised scores); each hit's ``rankings`` gives its rank in each."""
    return await run_search(request, connection, embedder, settings, caller.tenant)


@router.get("", response_model=SearchResponse)
async def search_get(
    connection: ReaderDep,
    embedder: EmbedderDep,
    settings: SettingsDep,
    caller: SearchKey,
    # Shorter than POST's 10,000: percent-encoded, a long query would pass uvicorn's
    # request-line limit and be refused in plain text before reaching the app.
    q: Annotated[str, Query(min_length=1, max_length=2_000)],
    top_k: Annotated[int, Query(ge=1, description="at most SEARCH_MAX_TOP_K (100)")] = 10,
    mode: SearchMode | None = None,
    fusion: Fusion | None = None,
    source: Annotated[list[str] | None, Query(description="repeatable")] = None,
    type: Annotated[list[str] | None, Query(description="repeatable")] = None,
    occurred_after: AwareDatetime | None = None,
    occurred_before: AwareDatetime | None = None,
    metadata: Annotated[str | None, Query(description='a JSON object: {"k": "v"}')] = None,
    subject: Annotated[list[str] | None, Query(description="repeatable")] = None,
) -> SearchResponse:
    """``GET`` form of search, for curl and browsers: ``?q=...&source=a&source=b&metadata=
    {"company":"Safaricom"}``."""
    filters = from_query(
        source, type, occurred_after, occurred_before, metadata, subject, settings.ingest
    )
    try:
        request = SearchRequest(query=q, top_k=top_k, mode=mode, fusion=fusion, filters=filters)
    except ValidationError as error:  # e.g. a q of blanks only, or top_k over the maximum
        raise RequestValidationError(
            [
                {**e, "loc": ("query", PARAMETERS.get(str(e["loc"][0]), str(e["loc"][0])))}
                for e in error.errors(include_url=False)
            ]
        ) from None
    return await run_search(request, connection, embedder, settings, caller.tenant)
