"""API-key authentication and scopes.

``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Missing or unknown key: 401;
a key without the endpoint's scope: 403. A found key is cached in-process for
``AUTH_CACHE_TTL_S`` seconds so the hot path does not query the database per request;
revocation therefore takes effect within that time, and ``last_used_at`` is refreshed
at most once per TTL per process.

Every authenticated request then counts against the key's rate limit (gateway/ratelimit.py):
doing it here covers every ``/api/v1`` endpoint, present and future, in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from sqlalchemy import func, select, update

from common.apikeys import hash_key
from common.db import async_sessions
from common.errors import AppError
from common.models import ApiKey
from common.settings import get_settings
from gateway.ratelimit import RateLimiter, bucket_for


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    tenant: str
    scopes: frozenset[str]


@lru_cache
def _cache() -> TTLCache[str, Principal]:
    return TTLCache(maxsize=10_000, ttl=get_settings().auth_cache_ttl_s)


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="eventsearch"'})


class Forbidden(AppError):
    status_code = 403
    code = "insufficient_scope"


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


async def _lookup(digest: str) -> Principal | None:
    async with async_sessions()() as session:
        row = (
            await session.execute(
                select(ApiKey.id, ApiKey.tenant, ApiKey.scopes).where(
                    ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                )
            )
        ).first()
        if row is None:
            return None
        await session.execute(
            update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=func.now())
        )
        await session.commit()
    return Principal(row.id, row.tenant, frozenset(row.scopes))


async def authenticate(request: Request) -> Principal:
    """The caller's key, checked and counted against its rate limit (401 or 429 otherwise)."""
    key = presented_key(request)
    if not key:
        raise Unauthorized("an API key is required (Authorization: Bearer <key> or X-API-Key)")
    digest = hash_key(key)
    principal = _cache().get(digest)
    if principal is None:
        principal = await _lookup(digest)
        if principal is None:
            raise Unauthorized("the API key is unknown or revoked")
        _cache()[digest] = principal
    request.state.principal = principal
    limiter: RateLimiter = request.app.state.rate_limiter
    bucket = bucket_for(request.method, request.url.path)
    # Sent by gateway.ratelimit.RateLimitHeaders on whatever answer follows (handlers that
    # return a Response themselves, such as an idempotent replay, bypass dependency headers).
    request.state.rate_limit_headers = await limiter.check(bucket, str(principal.key_id))
    return principal


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through keys holding ``scope``."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return principal

    return check


IngestKey = Annotated[Principal, Depends(require("ingest"))]
SearchKey = Annotated[Principal, Depends(require("search"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
