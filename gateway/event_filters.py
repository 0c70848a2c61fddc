"""What the event reads (``GET /api/v1/events``, ``GET /api/v1/events/{id}``) and the exports
share: the columns they show, and the filters of the list and the exports (one ``source``,
``type`` and ``status`` each, all optional, always within the caller's tenant)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from common.models import Event
from common.schemas import StatusName

# Every column but the vector, the tsvector and the bookkeeping (idempotency key,
# fingerprint, due_at, ...), named as the answers name them, in the exports' column order.
SHOWN: dict[str, InstrumentedAttribute[Any]] = {
    "id": Event.id,
    "status": Event.status,
    "source": Event.source,
    "type": Event.type,
    "text": Event.text,
    "metadata": Event.meta,
    "occurred_at": Event.occurred_at,
    "created_at": Event.created_at,
    "embedded_at": Event.embedded_at,
    "model": Event.model,
    "attempts": Event.attempts,
    "error": Event.error,
    "subject": Event.subject,
}

Source = Annotated[str | None, Query(max_length=128)]
Status = Annotated[StatusName | None, Query()]


def matching(
    tenant: str, source: str | None, type_: str | None, status: str | None
) -> list[ColumnElement[bool]]:
    """The conditions on the tenant's events with this source, type and status (``None``: any)."""
    conditions = [Event.tenant == tenant]
    for column, value in ((Event.source, source), (Event.type, type_), (Event.status, status)):
        if value is not None:
            conditions.append(column == value)
    return conditions
