"""Who is calling: set in the ASGI scope by gateway.auth_middleware before any body is read,
read by the endpoint dependencies (gateway.auth) and the request log line."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

STATE_KEY = "principal"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key (``key_id``) or a JWT's subject."""

    key_id: uuid.UUID | None
    tenant: str
    scopes: frozenset[str]
    via: Literal["api_key", "jwt"] = "api_key"
    subject: str = ""

    @property
    def rate_key(self) -> str:
        """What the per-caller rate limits count against: the key, or the token's subject."""
        if self.key_id is not None:
            return str(self.key_id)
        return f"jwt:{self.tenant}:{self.subject}"


def set_principal(scope: Scope, principal: Principal) -> None:
    scope.setdefault("state", {})[STATE_KEY] = principal


def principal_of(scope: Scope) -> Principal | None:
    found = scope.get("state", {}).get(STATE_KEY)
    return found if isinstance(found, Principal) else None
