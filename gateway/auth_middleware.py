"""Authentication from the headers alone, before any body is read (issue 12, item 3).

A pure ASGI middleware in front of FastAPI for every ``/api/`` path: it finds the caller
(API key or JWT), counts the request against the caller's rate limit, and leaves the
principal and the RateLimit-* headers in the ASGI scope (gateway.principal) for the
endpoint dependencies. A request that fails here is answered at once in the one error shape
(401, 403, 429, 503) and its body is never read, let alone parsed: an unauthenticated
16 MiB upload costs nothing but its headers, and ``Connection: close`` tells the client
that the rest of it will not be read.

Failures are counted per client address (gateway.auth_failures) and unknown keys are
cached briefly (gateway.auth.KeyStore), so that guessing keys is neither free nor a
database query each.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from common.errors import AppError
from common.settings import AuthSettings
from gateway import errors
from gateway.auth import Forbidden, KeyStore, Unauthorized, presented_token
from gateway.auth_failures import FailureLimiter
from gateway.jwt_auth import JwtVerifier, looks_like_jwt
from gateway.principal import Principal, set_principal
from gateway.ratelimit import RateLimiter, bucket_for

PROTECTED_PREFIX = "/api/"
MISSING = "an API key is required (Authorization: Bearer <key> or X-API-Key)"


class Authentication:
    """ASGI middleware: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        auth: AuthSettings,
        limiter: RateLimiter,
        sessions: async_sessionmaker[AsyncSession],
        verifier: JwtVerifier | None = None,
    ) -> None:
        self.app = app
        self.keys = KeyStore(auth, sessions)
        self.limiter = limiter
        self.failures = FailureLimiter(limiter, auth.auth_failure_limit)
        self.verifier = verifier if auth.jwt_enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await self.authenticate(scope, headers)
            bucket = bucket_for(scope["method"], scope["path"])
            # Sent by gateway.ratelimit.RateLimitHeaders on whatever answer follows.
            rate_headers = await self.limiter.check(bucket, principal.rate_key)
        except AppError as error:
            response = errors.error_response(
                error.status_code,
                error.code,
                error.message,
                headers={**error.headers, **close_if_body(headers)},
            )
            await response(scope, receive, send)
            return
        except errors.DEPENDENCY_ERRORS as error:  # the key store is down: retry later
            await (await errors.dependency_down(None, error))(scope, receive, send)  # type: ignore[arg-type]
            return
        set_principal(scope, principal)
        scope["state"]["rate_limit_headers"] = rate_headers
        await self.app(scope, receive, send)

    async def authenticate(self, scope: Scope, headers: dict[str, str]) -> Principal:
        token, bearer = presented_token(headers)
        if not token:
            raise Unauthorized(MISSING)
        address = client_address(scope)
        if bearer and self.verifier is not None and looks_like_jwt(token):
            try:
                principal = await self.verifier.verify(token)
            except AppError as error:
                if error.status_code != 401:
                    raise
                raise await self.failures.failed(address, error) from None
            if not principal.scopes:
                raise Forbidden("the token grants none of the scopes ingest, search, admin")
            return principal
        digest = self.keys.digest(token)
        cached = self.keys.cached(digest)
        if cached is not None:
            return cached
        unknown = Unauthorized("the API key is unknown or revoked")
        if self.keys.known_unknown(digest):
            raise await self.failures.failed(address, unknown)
        await self.failures.check(address)  # an address over its limit costs no query
        found = await self.keys.lookup(digest)
        if found is None:
            raise await self.failures.failed(address, unknown)
        return found


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def close_if_body(headers: dict[str, str]) -> dict[str, str]:
    """``Connection: close`` when the refused request has a body that will not be read."""
    declared = headers.get("content-length", "0")
    if "transfer-encoding" in headers or (declared.isdigit() and int(declared) > 0):
        return {"Connection": "close"}
    return {}
