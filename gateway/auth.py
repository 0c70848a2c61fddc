"""API keys, scopes and the endpoint dependencies.

``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (or a JWT: gateway/jwt_auth.py).
Authentication happens in gateway.auth_middleware, from the headers alone, before any body is
read; it leaves the :class:`Principal` in the ASGI scope, and the dependencies here only read
it and check the endpoint's scope. Missing or unknown key: 401; a key without the endpoint's
scope: 403.

A found key is cached in-process for ``AUTH_CACHE_TTL_S`` seconds so the hot path does not
query the database per request; revocation therefore takes effect within that time, and
``last_used_at`` is refreshed at most once per TTL per process. An unknown key is remembered
for ``AUTH_NEGATIVE_CACHE_TTL_S`` (a key is 256 random bits and shown once at creation, so no
real key is ever presented before it exists), so repeating a wrong key costs no query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common.apikeys import hash_key
from common.errors import AppError
from common.models import ApiKey
from common.settings import AuthSettings
from gateway.principal import Principal, principal_of

__all__ = ["AdminKey", "IngestKey", "Principal", "SearchKey", "authenticate", "require"]


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="eventsearch"'})


class Forbidden(AppError):
    status_code = 403
    code = "insufficient_scope"

    def __init__(self, message: str, scope: str | None = None) -> None:
        challenge = 'Bearer realm="eventsearch", error="insufficient_scope"'
        if scope:
            challenge += f', scope="{scope}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


def presented_token(headers: dict[str, str]) -> tuple[str | None, bool]:
    """The credential in lower-cased ``headers`` and whether it came as a Bearer token."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), True
    return headers.get("x-api-key") or None, False


class KeyStore:
    """API keys by their sha256, with a positive and a negative in-process cache."""

    def __init__(self, auth: AuthSettings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.known: TTLCache[str, Principal] = TTLCache(maxsize=10_000, ttl=auth.auth_cache_ttl_s)
        self.negative_ttl = auth.auth_negative_cache_ttl_s
        self.unknown: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=self.negative_ttl or 1)

    @staticmethod
    def digest(key: str) -> str:
        return hash_key(key)

    def cached(self, digest: str) -> Principal | None:
        return self.known.get(digest)

    def known_unknown(self, digest: str) -> bool:
        return self.negative_ttl > 0 and digest in self.unknown

    async def lookup(self, digest: str) -> Principal | None:
        """The key's principal from the database (cached either way)."""
        principal = await _lookup(self.sessions, digest)
        if principal is None:
            if self.negative_ttl > 0:
                self.unknown[digest] = True
        else:
            self.known[digest] = principal
        return principal


async def _lookup(sessions: async_sessionmaker[AsyncSession], digest: str) -> Principal | None:
    async with sessions() as session:
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
    """The caller, as gateway.auth_middleware authenticated (and rate-limited) it."""
    principal = principal_of(request.scope)
    if principal is None:  # only outside /api/, where the middleware does not look
        raise Unauthorized("an API key is required (Authorization: Bearer <key> or X-API-Key)")
    return principal


def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets through callers holding ``scope``. It reads the principal
    itself rather than depending on :func:`authenticate`: one dependency for FastAPI to
    solve on every request instead of two (issue 16)."""

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if scope not in principal.scopes:
            what = "API key" if principal.via == "api_key" else "token"
            raise Forbidden(f"this {what} lacks the '{scope}' scope", scope)
        return principal

    return check


IngestKey = Annotated[Principal, Depends(require("ingest"))]
SearchKey = Annotated[Principal, Depends(require("search"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
