"""One log line and the Prometheus counts for every request, and ``GET /metrics``.

The middleware is pure ASGI (no ``BaseHTTPMiddleware``: it would buffer streamed exports
and break context variables). Routes are labelled by their template
(``/api/v1/events/{event_id}``), never by raw path, so a scan of random URLs cannot blow
up the number of series; unknown paths share one label.
"""

from __future__ import annotations

import time

import structlog
from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import exceptions as redis_exc
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import metrics, metrics_relay, queue
from common.logs import get_logger
from common.queue import QUEUE_EMBED
from common.settings import Settings

log = get_logger("eventsearch.gateway")
UNMATCHED = "<unmatched>"
INGEST_ROUTE = "/api/v1/events"
STATIC_PATHS = frozenset({INGEST_ROUTE, f"{INGEST_ROUTE}/batch"})
REJECTED = frozenset({400, 413, 415, 422})


def route_of(scope: Scope) -> str:
    """The template of the route that served ``scope`` (FastAPI leaves it in the scope),
    a fixed path (docs, or ingest refused by the input limits before routing), or
    ``<unmatched>``."""
    route = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    if "endpoint" in scope or scope["path"] in STATIC_PATHS:
        return str(scope["path"])
    return UNMATCHED


def count_ingest(method: str, route: str, status: int, replayed: bool) -> None:
    """Events accepted/duplicate/rejected by the single-event endpoint, read off its answer
    (validation failures never reach the handler, so the handler cannot count them)."""
    if method != "POST" or route != INGEST_ROUTE:
        return
    if status == 202:
        metrics.EVENTS.labels("duplicate" if replayed else "accepted").inc()
    elif status in REJECTED:
        metrics.EVENTS.labels("rejected").inc()


class RequestObserver:
    """ASGI middleware: one structured log line and the request metrics per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        replayed = False

        async def observed_send(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                replayed = any(
                    k.lower() == b"idempotent-replayed" for k, _ in message.get("headers", [])
                )
            await send(message)

        request_id = correlation_id.get()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, observed_send)
            finally:
                duration = time.perf_counter() - started
                method, route = scope["method"], route_of(scope)
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_DURATION.labels(method, route).observe(duration)
                count_ingest(method, route, status, replayed)
                principal = scope.get("state", {}).get("principal")
                log.info(
                    "request",
                    method=method,
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                    tenant=getattr(principal, "tenant", None),
                )


router = APIRouter(tags=["operations"])


async def queue_figures(redis: Redis) -> tuple[int, int] | None:
    """Messages waiting in the broker queue and taken but not acknowledged, in one round
    trip; ``None`` when Redis cannot be reached (logged)."""
    try:
        return await queue.queue_figures(redis)
    except (redis_exc.ConnectionError, redis_exc.TimeoutError) as error:
        log.warning("queue figures unavailable", error=repr(error))
        return None


async def read_queue_depth(request: Request) -> None:
    """Refresh the queue gauges from Redis; when Redis is down they keep their last value
    (the /health endpoint and the gateway's 503s tell that story)."""
    figures = await queue_figures(request.app.state.redis)
    if figures is not None:
        metrics.QUEUE_DEPTH.labels(QUEUE_EMBED).set(figures[0])
        metrics.QUEUE_UNACKED.set(figures[1])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": "eventsearch_queue_depth 0"}}}},
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format: requests, events, queue depth, rate limiting, and every live
    worker's batches, retries, dead letters and heartbeat, labelled ``worker`` (relayed
    through Redis: common/metrics_relay.py). No key needed: keep the port private."""
    await read_queue_depth(request)
    body = generate_latest(metrics.registry())
    settings: Settings = request.app.state.settings
    try:
        workers = await metrics_relay.collect(
            request.app.state.redis, settings.observability.worker_heartbeat_s
        )
    except (redis_exc.ConnectionError, redis_exc.TimeoutError) as error:
        log.warning("worker metrics unavailable", error=repr(error))
        workers = {}
    if workers:
        body += metrics_relay.relabel(workers, metrics.worker_family_names())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
