"""The WHERE clause shared by every search mode: the caller's tenant, then the filters.

They go inside each ranking's query, never onto its results, so a ranking can only hold
events that pass them and a selective filter never shrinks a result list below ``top_k``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import ColumnElement

from common.models import Event
from common.schemas import SearchFilters


def conditions(tenant: str, filters: SearchFilters) -> list[ColumnElement[bool]]:
    """SQL conditions for ``tenant`` (always) and each filter that is set."""
    where: list[ColumnElement[bool]] = [Event.tenant == tenant]
    if filters.source:
        where.append(Event.source.in_(filters.source))
    if filters.type:
        where.append(Event.type.in_(filters.type))
    if filters.occurred_after is not None:
        where.append(Event.occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        where.append(Event.occurred_at < filters.occurred_before)
    if filters.metadata:
        # jsonb @>, served by the GIN jsonb_path_ops index.
        where.append(Event.meta.contains(filters.metadata))
    return where


def from_query(
    source: list[str] | None,
    type_: list[str] | None,
    occurred_after: datetime | None,
    occurred_before: datetime | None,
    metadata: str | None,
) -> SearchFilters:
    """Filters from GET query parameters; ``metadata`` is a JSON object (``{"k": "v"}``).
    A bad value raises :class:`RequestValidationError`: the usual 422 naming the parameter."""
    meta: Any = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "metadata"),
                        "msg": 'must be a JSON object, e.g. {"company": "Safaricom"}',
                        "type": "json_object",
                    }
                ]
            )
    try:
        return SearchFilters.model_validate(
            {
                "source": source or None,
                "type": type_ or None,
                "occurred_after": occurred_after,
                "occurred_before": occurred_before,
                "metadata": meta,
            }
        )
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
