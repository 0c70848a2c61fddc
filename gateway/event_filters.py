"""The query filters shared by the event list (``GET /api/v1/events``) and the exports:
one ``source``, ``type`` and ``status`` each, all optional, always within the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy import ColumnElement

from common.models import Event
from common.schemas import StatusName

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
