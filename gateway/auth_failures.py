"""Failed authentications counted per client address (``AUTH_FAILURE_LIMIT``, 30/minute).

Guessing keys must not be free: every failure (unknown or revoked key, bad token) counts
against the client's address in Redis, in the same fixed windows and with the same Lua
counter as the per-key rate limits (gateway/ratelimit.py); past the limit the address gets
429 ``too_many_auth_failures`` with ``Retry-After`` until the window ends, and its unknown
keys are refused before any database query. A caller whose valid key is already cached is
not held up by failures of others behind the same address.

The address is the connection's peer, or what a trusted proxy says (uvicorn's
``--forwarded-allow-ips``, see gateway/server.py). Fail open, like the rate limiter, and
sharing its state: when Redis cannot be reached, nothing is counted and nothing is refused,
and both stay off for the same few seconds (one failure, one warning, one count).
"""

from __future__ import annotations

import math
import time

from limits import parse
from redis.asyncio import Redis

from common import metrics
from common.errors import AppError
from common.logs import get_logger
from gateway.ratelimit import HIT, LIMITER_ERRORS, SKIP_AFTER_FAILURE_S, RateLimiter

log = get_logger("eventsearch.gateway")
KEY_PREFIX = "eventsearch:authfail"


class TooManyFailures(AppError):
    status_code = 429
    code = "too_many_auth_failures"

    def __init__(self, limit: int, window_s: int, retry_after: int) -> None:
        super().__init__(
            f"more than {limit} failed authentications from this address within {window_s} s;"
            f" retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class FailureLimiter:
    def __init__(self, limiter: RateLimiter, limit: str) -> None:
        self.limiter = limiter
        self.redis: Redis = limiter.redis
        self.item = parse(limit)
        self.hit = self.redis.register_script(HIT)

    def skipped(self) -> bool:
        return time.monotonic() < self.limiter.skip_until

    def key(self, address: str) -> str:
        return f"{KEY_PREFIX}:{address}:{self.item.amount}/{self.item.get_expiry()}"

    def _refusal(self, retry_ms: int) -> TooManyFailures:
        retry_after = max(1, math.ceil(retry_ms / 1000))
        return TooManyFailures(self.item.amount, self.item.get_expiry(), retry_after)

    def _unavailable(self, error: Exception) -> None:
        self.limiter.skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
        metrics.RATE_LIMITER_ERRORS.inc()
        log.warning(
            "rate limiter unavailable (auth failures), letting requests through unchecked",
            error=repr(error),
            skip_s=SKIP_AFTER_FAILURE_S,
        )

    async def check(self, address: str) -> None:
        """Raise 429 when ``address`` is over its failure limit (one round trip)."""
        if self.skipped():
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self.key(address))
                pipe.pttl(self.key(address))
                count, ttl_ms = await pipe.execute()
        except LIMITER_ERRORS as error:
            self._unavailable(error)
            return
        if count is not None and int(count) >= self.item.amount:
            raise self._refusal(int(ttl_ms))

    async def failed(self, address: str, error: AppError) -> AppError:
        """Count one failure of ``address``; the error to answer (429 once over the limit)."""
        if self.skipped():
            return error
        window_ms = self.item.get_expiry() * 1000
        try:
            count, ttl_ms = await self.hit(keys=[self.key(address)], args=[window_ms])
        except LIMITER_ERRORS as exc:
            self._unavailable(exc)
            return error
        if int(count) > self.item.amount:
            return self._refusal(int(ttl_ms))
        return error
