"""Rate limits per API key, counted in Redis (the ``limits`` package, fixed windows).

Each key has one counter per bucket: ``ingest`` (POST/DELETE on events), ``search``,
``read`` (GET on events) and ``admin`` (everything else under ``/api/v1``), each with its
own setting (``RATE_LIMIT_INGEST="1000/minute"``, ...). Answers carry the IETF draft's
``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds) and
``RateLimit-Policy``; a refused request is 429 with ``Retry-After`` as well.

Fixed windows cost one INCR per request; their known weakness (up to twice the limit
across a window boundary) is acceptable for protecting the service from a runaway client.

Fail open: when Redis cannot be reached the request goes through unchecked, a warning is
logged and ``eventsearch_rate_limiter_errors_total`` counts it. Limiting is protection, not
correctness, and a Redis outage must not turn searches (which need only PostgreSQL) into
errors. After a failure the limiter is skipped for a few seconds, so a dead Redis does
not add a connection timeout to every request.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis import exceptions as redis_exc
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import metrics
from common.errors import AppError
from common.logs import get_logger
from common.settings import Settings

log = get_logger("eventsearch.gateway")
BUCKETS = ("ingest", "search", "read", "admin")
SKIP_AFTER_FAILURE_S = 5.0
REDIS_TIMEOUT_S = 0.5
LIMITER_ERRORS = (StorageError, redis_exc.RedisError, OSError, TimeoutError)


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


def bucket_for(method: str, path: str) -> str:
    """Which of the key's limits a request counts against."""
    if path.startswith("/api/v1/search"):
        return "search"
    if path.startswith("/api/v1/events"):
        return "read" if method in ("GET", "HEAD") else "ingest"
    return "admin"


def storage_uri(redis_url: str) -> str:
    """limits' spelling of a redis-py URL (``async+redis://``, ``async+redis+unix://``);
    limits insists on an explicit port where redis-py assumes 6379."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    parts = urlsplit(redis_url)
    if parts.port is None:
        parts = parts._replace(netloc=f"{parts.netloc}:6379")
    return "async+" + urlunsplit(parts)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.items: dict[str, RateLimitItem] = {
            bucket: parse(getattr(settings, f"rate_limit_{bucket}")) for bucket in BUCKETS
        }
        storage = RedisStorage(
            storage_uri(settings.redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix="eventsearch:ratelimit",
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.limiter = FixedWindowRateLimiter(storage)
        self.skip_until = 0.0

    async def check(self, bucket: str, key_id: str) -> dict[str, str]:
        """Count one request of ``key_id``; the RateLimit-* headers to send, or raise 429.

        Returns no headers when limiting is off or Redis failed (fail open)."""
        if not self.enabled or time.monotonic() < self.skip_until:
            return {}
        item = self.items[bucket]
        try:
            allowed = await self.limiter.hit(item, bucket, key_id)
            stats = await self.limiter.get_window_stats(item, bucket, key_id)
        except LIMITER_ERRORS as error:
            self.skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            metrics.RATE_LIMITER_ERRORS.inc()
            log.warning(
                "rate limiter unavailable, letting requests through unchecked",
                error=repr(error),
                skip_s=SKIP_AFTER_FAILURE_S,
            )
            return {}
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(max(0, stats.remaining)),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
        }
        if not allowed:
            metrics.RATE_LIMITED.labels(bucket).inc()
            raise RateLimited(
                f"rate limit of {item.amount} requests per {item.get_expiry()} s "
                f"for '{bucket}' exceeded; retry in {max(reset, 1)} s",
                headers={**headers, "Retry-After": str(max(reset, 1))},
            )
        return headers


class RateLimitHeaders:
    """ASGI middleware: adds the RateLimit-* headers that ``authenticate`` left in the
    request state to the answer, whatever produced it (a model, a Response returned by the
    handler, an error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra = scope.get("state", {}).get("rate_limit_headers")
            if message["type"] == "http.response.start" and extra:
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
