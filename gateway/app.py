"""The gateway's app factory; ``python -m gateway.server`` serves it (uvicorn with limits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis

from common import logs, metrics, validation
from common.db import async_engine, async_sessions, read_engine
from common.dimension import check_or_exit
from common.embedders import build_embedder
from common.settings import Settings, load_or_exit
from gateway import (
    batch,
    console,
    dead_letters,
    deletion,
    errors,
    events,
    export,
    health,
    observability,
    openapi,
    search,
    stats,
    subjects,
)
from gateway.auth_middleware import Authentication
from gateway.cloudevents import CloudEventsIn
from gateway.inputs import InputLimits
from gateway.jwt_auth import JwtVerifier
from gateway.observability import RequestObserver
from gateway.ratelimit import RateLimiter, RateLimitHeaders

log = logs.get_logger("eventsearch.gateway")


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
        await app.state.rate_limiter.close()
        await app.state.jwt_verifier.close()
        app.state.embedder.close()
        await app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_or_exit()
    check_or_exit(settings)  # a model that does not fit the vector column stops us here
    validation.use_limits(settings)  # the request schemas' limits are this app's
    logs.configure(settings.log_level, settings.log_format)
    metrics.gateway_only()
    app = FastAPI(
        title="eventsearch",
        version="0.1.0",
        summary="Turns a stream of events into a searchable vector index.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # A trailing slash is 404 in the error shape: Starlette's 307 built its Location
        # from the Host header (an open redirect behind a proxy that passes Host on), and
        # a redirected POST is one more round trip for nothing (issue 12, item 9).
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = async_engine(settings)
    app.state.sessions = async_sessions(app.state.engine)
    app.state.reader = read_engine(app.state.engine)
    app.state.rate_limiter = RateLimiter(settings)
    app.state.jwt_verifier = JwtVerifier(settings.auth)
    # Middleware, innermost first (each add wraps the previous): the rate-limit headers are
    # added to whatever answer the app gives; input limits run before
    # any parsing; authentication (and the caller's rate limit) before those, from the
    # headers alone, so nothing of an unauthenticated body is read or reported on; CORS
    # answers preflights; the observer logs and counts every answer,
    # including those two's; the request id is set outermost so every line carries it.
    app.add_middleware(CloudEventsIn, settings=settings)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(InputLimits, http=settings.http)
    app.add_middleware(
        Authentication,
        auth=settings.auth,
        limiter=app.state.rate_limiter,
        sessions=app.state.sessions,
        verifier=app.state.jwt_verifier,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=[
                "X-Request-ID",
                "Location",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Idempotent-Replayed",
            ],
        )
    app.add_middleware(RequestObserver)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    errors.install(app)
    openapi.install(app)
    app.include_router(batch.router)  # before events: /batch is not an event id
    app.include_router(events.router)
    app.include_router(deletion.router)
    app.include_router(subjects.router)
    app.include_router(dead_letters.router)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(stats.router)
    app.include_router(health.router)
    app.include_router(observability.router)
    app.include_router(console.router)
    return app


app = create_app()
