"""``GET /health``: 200 when the database, Redis and the embedder answer; 503 naming which not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from common.schemas import Health
from gateway.deps import EmbedderDep, RedisDep, SessionDep

router = APIRouter(tags=["operations"])
TIMEOUT_S = 2.0


async def probe(check: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(check, TIMEOUT_S)
        return "ok"
    except Exception as error:
        return f"unavailable: {type(error).__name__}"


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(session: SessionDep, redis: RedisDep, embedder: EmbedderDep) -> JSONResponse:
    database, redis_state, embedder_state = await asyncio.gather(
        probe(session.execute(text("SELECT 1"))),
        probe(redis.ping()),
        probe(embedder.aping()),
    )
    ok = database == redis_state == embedder_state == "ok"
    body = Health(
        status="ok" if ok else "unavailable",
        database=database,
        redis=redis_state,
        embedder=embedder_state,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
