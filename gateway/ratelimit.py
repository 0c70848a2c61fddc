"""Rate limits per API key, counted in Redis in fixed windows, one round trip a request.

Each key has one counter per bucket: ``ingest`` (POST/DELETE on events), ``search``,
``read`` (GET on events) and ``admin`` (everything else under ``/api/v1``), each with its
own setting (``RATE_LIMIT_INGEST="1000/minute"``, ...; the ``limits`` package's notation,
parsed by it). Answers carry the IETF draft's ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds) and ``RateLimit-Policy``; a refused request is 429 with
``Retry-After`` as well.

Counting is a five-line Lua script rather than ``limits``' strategies: they need two round
trips per request (``hit``, then ``get_window_stats`` for the headers), which measured ~1 ms
of a search's ~8; the script increments, starts the window on the first hit and returns
count and time left, atomically, in one. Fixed windows' known weakness (up to twice the
limit across a window boundary) is acceptable for protecting the service from a runaway
client.

Fail open: when Redis cannot be reached the request goes through unchecked, a warning is
logged and ``eventsearch_rate_limiter_errors_total`` counts it. Limiting is protection, not
correctness, and a Redis outage must not turn searches (which need only PostgreSQL) into
errors. After a failure the limiter is skipped for a few seconds, so a dead Redis does
not add a connection timeout to every request.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from redis import exceptions as redis_exc
from redis.asyncio import Redis
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
LIMITER_ERRORS = (redis_exc.RedisError, OSError, TimeoutError)
KEY_PREFIX = "eventsearch:ratelimit"
# KEYS[1]: the counter of one key, bucket and window; ARGV[1]: the window in ms.
# Returns {count including this request, ms until the window ends}.
HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


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


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.items: dict[str, RateLimitItem] = {
            bucket: parse(getattr(settings, f"rate_limit_{bucket}")) for bucket in BUCKETS
        }
        # A client of its own: its short timeouts are the limiter's, not the gateway's.
        self.redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        self.hit = self.redis.register_script(HIT)  # EVALSHA, loading the script when needed
        self.skip_until = 0.0

    async def check(self, bucket: str, key_id: str) -> dict[str, str]:
        """Count one request of ``key_id``; the RateLimit-* headers to send, or raise 429.

        Returns no headers when limiting is off or Redis failed (fail open)."""
        if not self.enabled or time.monotonic() < self.skip_until:
            return {}
        item = self.items[bucket]
        window_s = item.get_expiry()
        key = f"{KEY_PREFIX}:{bucket}:{key_id}:{item.amount}/{window_s}"
        try:
            count, ttl_ms = await self.hit(keys=[key], args=[window_s * 1000])
        except LIMITER_ERRORS as error:
            self.skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            metrics.RATE_LIMITER_ERRORS.inc()
            log.warning(
                "rate limiter unavailable, letting requests through unchecked",
                error=repr(error),
                skip_s=SKIP_AFTER_FAILURE_S,
            )
            return {}
        reset = max(0, math.ceil(int(ttl_ms) / 1000))
        headers = {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(max(0, item.amount - int(count))),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={window_s}",
        }
        if int(count) > item.amount:
            metrics.RATE_LIMITED.labels(bucket).inc()
            raise RateLimited(
                f"rate limit of {item.amount} requests per {window_s} s "
                f"for '{bucket}' exceeded; retry in {max(reset, 1)} s",
                headers={**headers, "Retry-After": str(max(reset, 1))},
            )
        return headers

    async def close(self) -> None:
        await self.redis.aclose()


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
