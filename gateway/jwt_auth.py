"""JWT bearer tokens next to API keys (issue 12), verified with PyJWT.

``Authorization: Bearer <JWT>`` is taken as a token when JWT is configured and the value
has a JWT's three dot-separated parts (API keys, ``es_...``, have none). Two ways to trust
a token, by its header's ``alg``:

- ``JWT_JWKS_URL``: RS256/ES256 (``JWT_ALGORITHMS``) signed by a key of the provider's JWKS.
  The keys are fetched with httpx (awaited, never blocking the event loop) and cached; after
  ``JWT_JWKS_CACHE_S`` the set is fetched again behind a request that found its key, and at
  once when a token names a ``kid`` not in the set (key rotation), at most once per
  ``JWT_JWKS_MIN_REFRESH_S`` so that made-up kids cannot make us hammer the provider. A
  failed fetch keeps the keys we had. ``JWT_ISSUER`` and ``JWT_AUDIENCE`` are then required.
- ``JWT_HS256_SECRET``: HS256 with a shared secret (at least 32 bytes).

``alg: none`` is refused, and so is algorithm confusion: an HS token is never checked
against a JWKS key (whose public half anybody has), an RS/ES token never against the
secret, and a key is only used with algorithms of its own type. ``exp`` is required;
``exp``, ``nbf``, ``iss`` and ``aud`` are checked with ``JWT_LEEWAY_S`` of clock skew.

The tenant is the ``JWT_TENANT_CLAIM`` claim (a dotted path into nested claims); the scopes
come from ``JWT_SCOPE_CLAIM`` (OAuth's space-separated ``scope`` by default; a list works
too), keeping those that start with ``JWT_SCOPE_PREFIX`` (e.g. ``eventsearch:search``) and
mapping them to ``ingest``/``search``/``admin``; others are ignored. Failures answer 401 with
``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750, 3.1).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import jwt
from jwt.exceptions import InvalidTokenError, PyJWKError

from common.apikeys import SCOPES
from common.errors import AppError
from common.logs import get_logger
from common.settings import AuthSettings
from gateway.principal import Principal

log = get_logger("eventsearch.gateway")
HMAC_ALGORITHMS = ("HS256",)
# A key is used only with the algorithms of its own type (RFC 7518's families).
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
MAX_TOKEN_CHARS = 8192
MAX_TENANT_CHARS = 64


class InvalidToken(AppError):
    status_code = 401
    code = "invalid_token"

    def __init__(self, message: str) -> None:
        description = message.replace('"', "'").replace("\\", "")
        super().__init__(
            f"invalid token: {message}",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="eventsearch", error="invalid_token", '
                    f'error_description="{description}"'
                )
            },
        )


class JwksUnavailable(AppError):
    status_code = 503
    code = "jwks_unavailable"


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("es_")


class JwksKeys:
    """The provider's signing keys by ``kid``, fetched when stale or when a kid is unknown."""

    def __init__(self, url: str, auth: AuthSettings) -> None:
        self.url = url
        self.max_age_s = auth.jwt_jwks_cache_s
        self.min_refresh_s = auth.jwt_jwks_min_refresh_s
        self.timeout_s = auth.jwt_jwks_timeout_s
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at = -math.inf  # last successful fetch
        self.attempted_at = -math.inf  # last fetch, successful or not
        self.lock = asyncio.Lock()
        self.client: httpx.AsyncClient | None = None
        self.background: asyncio.Task[None] | None = None

    def _background_done(self, _: asyncio.Task[None]) -> None:
        self.background = None

    def _may_fetch(self) -> bool:
        return time.monotonic() - self.attempted_at >= self.min_refresh_s

    async def key(self, kid: str | None) -> jwt.PyJWK:
        stale = time.monotonic() - self.fetched_at > self.max_age_s
        found = self._find(kid)
        if found is not None:
            if stale and self._may_fetch() and self.background is None:
                # The key is known: answer now with it, refresh the set behind this request.
                self.background = asyncio.create_task(self.refresh(self.attempted_at))
                self.background.add_done_callback(self._background_done)
            return found
        if self._may_fetch():
            await self.refresh(self.attempted_at)
        found = self._find(kid)
        if found is not None:
            return found
        if not self.keys and self.fetched_at == -math.inf:
            raise JwksUnavailable(
                "the identity provider's keys cannot be fetched; retry later",
                headers={"Retry-After": str(max(1, math.ceil(self.min_refresh_s)))},
            )
        raise InvalidToken("the token's key id is not in the provider's key set")

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self.keys.get(kid)
        # No kid: unambiguous only when the set has one key.
        return next(iter(self.keys.values())) if len(self.keys) == 1 else None

    async def refresh(self, seen_attempt: float) -> None:
        async with self.lock:
            if self.attempted_at != seen_attempt:
                return  # another request fetched while this one waited
            self.attempted_at = time.monotonic()
            if self.client is None:
                self.client = httpx.AsyncClient(timeout=self.timeout_s)
            try:
                response = await self.client.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as error:
                log.warning("JWKS fetch failed, keeping the keys we had", error=repr(error))
                return
            self.keys = parse_jwks(document)
            self.fetched_at = time.monotonic()
            log.info("JWKS fetched", keys=len(self.keys))

    async def close(self) -> None:
        if self.background is not None:
            await asyncio.gather(self.background, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """Signing keys of a JWKS document by kid; keys we cannot use are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC"):
            continue  # an "oct" key in a public set would be an HMAC secret anybody can read
        try:
            key = jwt.PyJWK(entry)
        except (PyJWKError, InvalidTokenError, ValueError, TypeError) as error:
            log.warning("JWKS key skipped", kid=entry.get("kid"), error=repr(error))
            continue
        keys[str(entry.get("kid", f"#{index}"))] = key
    return keys


def claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class JwtVerifier:
    def __init__(self, auth: AuthSettings) -> None:
        self.jwks = JwksKeys(auth.jwt_jwks_url, auth) if auth.jwt_jwks_url else None
        self.secret = auth.jwt_hs256_secret.get_secret_value() if auth.jwt_hs256_secret else None
        self.algorithms = frozenset(auth.jwt_algorithms)
        self.issuer = auth.jwt_issuer
        self.audience = auth.jwt_audience
        self.leeway = auth.jwt_leeway_s
        self.tenant_claim = auth.jwt_tenant_claim
        self.scope_claim = auth.jwt_scope_claim
        self.scope_prefix = auth.jwt_scope_prefix

    async def verify(self, token: str) -> Principal:
        """The token's principal, or ``InvalidToken`` (401)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            raise InvalidToken("the token is malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise InvalidToken("unsigned tokens (alg none) are not accepted")
        key: Any
        if alg in HMAC_ALGORITHMS and self.secret is not None:
            key = self.secret
        elif alg in self.algorithms and self.jwks is not None:
            kid = header.get("kid")
            found = await self.jwks.key(kid if isinstance(kid, str) else None)
            if found.key_type != KEY_TYPES.get(alg[:2]):
                raise InvalidToken(f"the key '{kid}' is not a key for {alg}")
            key = found.key
        else:
            raise InvalidToken(f"the algorithm {alg} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token's issuer is not trusted") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token lacks the '{error.claim}' claim") from None
        except InvalidTokenError:
            raise InvalidToken("the token's signature or claims are invalid") from None
        return self.principal(claims)

    def principal(self, claims: dict[str, Any]) -> Principal:
        tenant = claim(claims, self.tenant_claim)
        if not isinstance(tenant, str) or not 0 < len(tenant) <= MAX_TENANT_CHARS:
            raise InvalidToken(f"the token has no tenant in its '{self.tenant_claim}' claim")
        subject = claims.get("sub")
        return Principal(
            key_id=None,
            tenant=tenant,
            scopes=self.scopes(claim(claims, self.scope_claim)),
            via="jwt",
            subject=subject if isinstance(subject, str) else "",
        )

    def scopes(self, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            names = value.split()
        elif isinstance(value, list):
            names = [v for v in value if isinstance(v, str)]
        else:
            names = []
        prefix = self.scope_prefix
        wanted = {n[len(prefix) :] for n in names if n.startswith(prefix)}
        return frozenset(s for s in SCOPES if s in wanted)

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()
