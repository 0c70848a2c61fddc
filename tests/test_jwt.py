"""JWT bearer tokens next to API keys (issue 12): a gateway verifying against a JWKS server of
the test's own (whose keys the tests rotate) and an HS256 secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from common.errors import AppError
from common.settings import Settings
from gateway.jwt_auth import JwtVerifier
from stack.ports import free_port
from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key, wait_for

ISSUER = "https://id.example.org/"
AUDIENCE = "eventsearch-api"
SECRET = "s" * 40
TENANT = "t-jwt"


class Jwks:
    """A JWKS endpoint serving whatever keys the test sets; counts its fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [key.jwk for key in keys]


class SigningKey:
    def __init__(self, kind: str, kid: str) -> None:
        self.kid = kid
        if kind == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.alg = kind
        self.jwk.update(kid=kid, use="sig", alg=kind)

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, **claims: Any) -> str:
        return jwt.encode(payload(**claims), self.private, self.alg, headers={"kid": self.kid})


def payload(**claims: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"user-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 300,
        "tenant": TENANT,
        "scope": "openid eventsearch:search eventsearch:ingest",
    }
    base.update(claims)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: ``alg: none``, or HS256 keyed by a public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def rsa_key(jwks: Jwks) -> SigningKey:
    return SigningKey("RS256", "rsa-1")


@pytest.fixture(scope="module")
def ec_key(jwks: Jwks) -> SigningKey:
    return SigningKey("ES256", "ec-1")


@pytest.fixture(scope="module")
def jwt_gateway(
    stack_env: dict[str, str], tmp_root: Path, jwks: Jwks, rsa_key: SigningKey, ec_key: SigningKey
) -> Iterator[processes.Gateway]:
    jwks.publish(rsa_key, ec_key)
    with extra_gateway(
        stack_env,
        tmp_root,
        "gateway-jwt",
        JWT_JWKS_URL=jwks.url,
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
        JWT_HS256_SECRET=SECRET,
        JWT_SCOPE_PREFIX="eventsearch:",
        JWT_LEEWAY_S="30",
        # Unknown kids fetch again after half a second (10 s by default); the tests poll.
        JWT_JWKS_MIN_REFRESH_S="0.5",
    ) as gateway:
        yield gateway


def search(gateway: processes.Gateway, token: str) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}/api/v1/search",
        params={"q": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_invalid_token(response: httpx.Response, words: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_token" and error["request_id"]
    assert words in error["message"], error["message"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


def test_valid_rs256_token_searches_and_ingests_as_its_tenant(
    jwt_gateway: processes.Gateway, rsa_key: SigningKey, db: Any
) -> None:
    token = rsa_key.sign()
    assert search(jwt_gateway, token).status_code == 200
    posted = httpx.post(
        f"{jwt_gateway.url}/api/v1/events",
        json=event_body(),
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": new_key()},
    )
    assert posted.status_code == 202, posted.text
    # The event is the claim's tenant's: its API key reads it, another tenant's does not.
    location = jwt_gateway.url + posted.headers["location"]
    own = httpx.get(location, headers={"X-API-Key": make_key(db, TENANT, "search")})
    assert own.status_code == 200
    other = httpx.get(location, headers={"X-API-Key": make_key(db, "t-jwt-other", "search")})
    assert other.status_code == 404


def test_valid_es256_and_hs256_tokens_are_accepted(
    jwt_gateway: processes.Gateway, ec_key: SigningKey
) -> None:
    assert search(jwt_gateway, ec_key.sign()).status_code == 200
    hs = jwt.encode(payload(), SECRET, "HS256")
    assert search(jwt_gateway, hs).status_code == 200


def test_keys_are_cached_not_fetched_per_request(
    jwt_gateway: processes.Gateway, jwks: Jwks, rsa_key: SigningKey
) -> None:
    assert search(jwt_gateway, rsa_key.sign()).status_code == 200
    before = jwks.fetches
    for _ in range(10):
        assert search(jwt_gateway, rsa_key.sign()).status_code == 200
    assert jwks.fetches == before


def test_expired_token_is_401(jwt_gateway: processes.Gateway, rsa_key: SigningKey) -> None:
    now = int(time.time())
    expired = rsa_key.sign(iat=now - 600, exp=now - 120)
    assert_invalid_token(search(jwt_gateway, expired), "expired")
    # Within the leeway (30 s here) a just-expired token still passes: clocks differ.
    assert search(jwt_gateway, rsa_key.sign(exp=now - 5)).status_code == 200


def test_token_not_yet_valid_or_without_exp_is_401(
    jwt_gateway: processes.Gateway, rsa_key: SigningKey
) -> None:
    later = int(time.time()) + 600
    assert_invalid_token(search(jwt_gateway, rsa_key.sign(nbf=later)), "not valid yet")
    assert_invalid_token(search(jwt_gateway, rsa_key.sign(exp=None)), "'exp'")


def test_wrong_audience_is_401(jwt_gateway: processes.Gateway, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(aud="another-api")
    assert_invalid_token(search(jwt_gateway, token), "audience")
    assert_invalid_token(search(jwt_gateway, rsa_key.sign(aud=None)), "'aud'")


def test_wrong_issuer_is_401(jwt_gateway: processes.Gateway, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(iss="https://evil.example.org/")
    assert_invalid_token(search(jwt_gateway, token), "issuer")


def test_unknown_kid_is_401_until_the_provider_publishes_it(
    jwt_gateway: processes.Gateway, jwks: Jwks, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    """Key rotation: a token signed by a key the cached set does not have makes the gateway
    fetch the set again; once the provider publishes the key, the token is accepted, and a
    key the provider dropped is refused."""
    rotated = SigningKey("RS256", f"rsa-{uuid.uuid4().hex[:6]}")
    token = rotated.sign()
    assert_invalid_token(search(jwt_gateway, token), "key id")
    jwks.publish(rotated, ec_key)  # rsa-1 retired
    try:
        wait_for(
            lambda: search(jwt_gateway, token).status_code == 200,
            timeout=30,
            what="the rotated key to be fetched",
        )
        assert_invalid_token(search(jwt_gateway, rsa_key.sign()), "key id")
    finally:
        jwks.publish(rsa_key, ec_key)
        wait_for(lambda: search(jwt_gateway, rsa_key.sign()).status_code == 200, timeout=30)


def test_alg_none_is_refused(jwt_gateway: processes.Gateway) -> None:
    for alg in ("none", "None", "NONE"):
        token = hand_made({"alg": alg, "typ": "JWT"}, payload(), None)
        assert_invalid_token(search(jwt_gateway, token), "alg none")


def test_hs256_signed_with_the_public_key_is_refused(
    jwt_gateway: processes.Gateway, rsa_key: SigningKey
) -> None:
    """The classic confusion: HS256 keyed by the RSA public key (anybody has it), naming the
    RSA key's kid. The public key is never an HMAC secret here."""
    for secret in (rsa_key.public_pem(), json.dumps(rsa_key.jwk).encode()):
        token = hand_made({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}, payload(), secret)
        assert_invalid_token(search(jwt_gateway, token), "signature")


def test_rs256_header_on_an_ec_key_is_refused(
    jwt_gateway: processes.Gateway, ec_key: SigningKey
) -> None:
    token = hand_made({"alg": "RS256", "kid": ec_key.kid}, payload(), b"x" * 32)
    assert_invalid_token(search(jwt_gateway, token), "not a key for RS256")


def test_tampered_claims_are_refused(jwt_gateway: processes.Gateway, rsa_key: SigningKey) -> None:
    header, _, signature = rsa_key.sign().split(".")
    forged = b64(json.dumps(payload(tenant="t1")).encode())
    assert_invalid_token(search(jwt_gateway, f"{header}.{forged}.{signature}"), "signature")


def test_scopes_come_from_the_prefixed_scope_claim(
    jwt_gateway: processes.Gateway, rsa_key: SigningKey
) -> None:
    search_only = rsa_key.sign(scope="openid eventsearch:search")
    posted = httpx.post(
        f"{jwt_gateway.url}/api/v1/events",
        json=event_body(),
        headers={"Authorization": f"Bearer {search_only}", "Idempotency-Key": new_key()},
    )
    assert posted.status_code == 403
    assert posted.json()["error"]["code"] == "insufficient_scope"
    assert 'scope="ingest"' in posted.headers["www-authenticate"]
    # Unprefixed names are someone else's scopes: a token with only those grants nothing.
    response = search(jwt_gateway, rsa_key.sign(scope="search ingest admin"))
    assert response.status_code == 403


def test_token_without_a_tenant_is_401(jwt_gateway: processes.Gateway, rsa_key: SigningKey) -> None:
    assert_invalid_token(search(jwt_gateway, rsa_key.sign(tenant=None)), "tenant")


def test_api_keys_still_work_next_to_jwt(jwt_gateway: processes.Gateway, api_key: str) -> None:
    assert search(jwt_gateway, api_key).status_code == 200


def test_a_jwt_where_none_is_configured_is_an_unknown_key(
    gateway: processes.Gateway, rsa_key: SigningKey
) -> None:
    response = search(gateway, rsa_key.sign())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def verifier(**env: str) -> JwtVerifier:
    settings = Settings(
        database_url="postgresql://u@h/db",
        redis_url="redis://h",
        jwt_hs256_secret=SECRET,
        **env,  # type: ignore[arg-type]
    )
    return JwtVerifier(settings.auth)


@pytest.mark.parametrize(
    ("env", "claims", "tenant", "scopes"),
    [
        ({}, {"tenant": "a", "scope": "search ingest openid"}, "a", {"search", "ingest"}),
        (
            {"jwt_scope_claim": "permissions"},
            {"tenant": "a", "permissions": ["admin"]},
            "a",
            {"admin"},
        ),
        (
            {"jwt_tenant_claim": "org.id", "jwt_scope_prefix": "es:"},
            {"org": {"id": "acme"}, "scope": "es:search search es:root"},
            "acme",
            {"search"},
        ),
    ],
    ids=["oauth-scope", "list-claim", "nested-tenant-prefix"],
)
def test_tenant_and_scopes_from_configured_claims(
    env: dict[str, str], claims: dict[str, Any], tenant: str, scopes: set[str]
) -> None:
    principal = verifier(**env).principal(claims)
    assert principal.tenant == tenant and principal.scopes == scopes and principal.via == "jwt"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"jwt_jwks_url": "https://id.example.org/jwks"}, "JWT_ISSUER and JWT_AUDIENCE"),
        ({"jwt_hs256_secret": "short"}, "at least 32 bytes"),
        ({"jwt_algorithms": "RS256,HS256"}, "must be among"),
        ({"jwt_algorithms": "none"}, "must be among"),
    ],
)
def test_unsafe_jwt_settings_fail_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(database_url="postgresql://u@h/db", redis_url="redis://h", **env)  # type: ignore[arg-type]


def jwks_settings(url: str, **env: str) -> Settings:
    return Settings(
        database_url="postgresql://u@h/db",
        redis_url="redis://h",
        jwt_jwks_url=url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        **env,  # type: ignore[arg-type]
    )


async def test_a_stale_key_set_is_fetched_again_behind_the_request(
    jwks: Jwks, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    jwks.publish(rsa_key, ec_key)
    verifier = JwtVerifier(jwks_settings(jwks.url, jwt_jwks_min_refresh_s="0").auth)
    try:
        assert (await verifier.verify(rsa_key.sign())).tenant == TENANT
        before = jwks.fetches
        for _ in range(3):
            assert verifier.jwks is not None
            verifier.jwks.fetched_at -= 3600  # older than JWT_JWKS_CACHE_S
            assert (await verifier.verify(rsa_key.sign())).tenant == TENANT
            assert verifier.jwks.background is not None  # the verification did not wait
            await verifier.jwks.background
        assert jwks.fetches == before + 3
    finally:
        await verifier.close()


async def test_keys_are_kept_while_the_provider_is_down(rsa_key: SigningKey) -> None:
    provider = Jwks()
    provider.publish(rsa_key)
    verifier = JwtVerifier(jwks_settings(provider.url, jwt_jwks_min_refresh_s="0").auth)
    try:
        assert (await verifier.verify(rsa_key.sign())).tenant == TENANT
        provider.server.shutdown()
        provider.server.server_close()
        for _ in range(3):
            assert verifier.jwks is not None
            verifier.jwks.fetched_at -= 3600
            assert (await verifier.verify(rsa_key.sign())).tenant == TENANT
            if verifier.jwks.background is not None:
                await verifier.jwks.background
    finally:
        await verifier.close()


async def test_no_keys_ever_fetched_is_503_not_401(rsa_key: SigningKey) -> None:
    verifier = JwtVerifier(jwks_settings(f"http://127.0.0.1:{free_port()}/jwks").auth)
    try:
        with pytest.raises(AppError) as refused:
            await verifier.verify(rsa_key.sign())
        assert refused.value.status_code == 503 and refused.value.code == "jwks_unavailable"
        assert refused.value.headers["Retry-After"]
    finally:
        await verifier.close()
