"""API keys: made, hashed, listed and revoked (used by the CLI, the gateway and tests).

Keys are 256-bit random strings, so a plain sha256 is a safe way to store them (a slow
password hash buys nothing against a key nobody can guess) and lets the gateway find a key
by an indexed equality lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from common.models import ApiKey

SCOPES = ("ingest", "search", "admin")
KEY_PREFIX = "es_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(scopes: Iterable[str]) -> list[str]:
    """Validated, de-duplicated scopes in canonical order; raises ``ValueError`` on others."""
    wanted = {s.strip() for s in scopes if s.strip()}
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise ValueError(
            f"scopes must be among {', '.join(SCOPES)}; got {sorted(wanted) or 'none'}"
        )
    return [s for s in SCOPES if s in wanted]


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    key: str
    tenant: str
    scopes: list[str]


def create_key(session: Session, tenant: str, scopes: Iterable[str], name: str = "") -> NewKey:
    """Store a new key (its hash) and return it; the caller commits and shows it once."""
    if not tenant or len(tenant) > 64:
        raise ValueError("tenant must be 1-64 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=uuid.uuid4(),
        tenant=tenant,
        name=name,
        prefix=key[:10],
        key_hash=hash_key(key),
        scopes=parse_scopes(scopes),
    )
    session.add(row)
    session.flush()
    return NewKey(row.id, key, tenant, row.scopes)


def list_keys(session: Session, tenant: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if tenant:
        query = query.where(ApiKey.tenant == tenant)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: uuid.UUID) -> bool:
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
