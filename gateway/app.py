"""The gateway's app factory; ``uvicorn gateway.app:app`` serves it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from redis.asyncio import Redis

from common.db import async_engine
from common.dimension import check_or_exit
from common.embedders import build_embedder
from common.settings import Settings, load_or_exit
from gateway import batch, errors, events, export, health, search

log = logging.getLogger("eventsearch.gateway")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.redis = Redis.from_url(
        settings.redis_url, socket_timeout=3, socket_connect_timeout=3, health_check_interval=30
    )
    app.state.embedder = build_embedder(settings)
    if settings.embedder == "local":
        # Load the model now (in a thread) so the first search is not the slow one.
        await asyncio.to_thread(app.state.embedder.embed, ["warm-up"])
    try:
        yield
    finally:
        await app.state.redis.aclose()
        app.state.embedder.close()
        await async_engine().dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_or_exit()
    check_or_exit(settings)  # a model that does not fit the vector column stops us here
    app = FastAPI(
        title="eventsearch",
        version="0.1.0",
        summary="Turns a stream of events into a searchable vector index.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.settings = settings
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    errors.install(app)
    app.include_router(batch.router)  # before events: /batch is not an event id
    app.include_router(events.router)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(health.router)
    return app


app = create_app()
