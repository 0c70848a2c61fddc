"""The WHERE clause shared by every search mode: the caller's tenant, then the filters.

They go inside each ranking's query, never onto its results, so a ranking can only hold
events that pass them and a selective filter never shrinks a result list below ``top_k``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.dialects.postgresql import JSONB

from common.models import Event
from common.schemas import SearchFilters
from common.settings import IngestSettings
from common.validation import nested_deeper_than


@dataclass(frozen=True)
class Where:
    """The tenant and the filters of one search: ``shape`` says which filters are set and
    ``params`` holds their values. The SQL conditions are :func:`clauses` of the shape, with
    bound parameters, so each ranking builds its statement once per shape, not once per
    search (building was ~15 % of a search's time)."""

    shape: tuple[bool, ...]
    params: dict[str, Any]


def conditions(tenant: str, filters: SearchFilters) -> Where:
    """SQL conditions for ``tenant`` (always) and each filter that is set."""
    values = {
        "f_source": filters.source or None,
        "f_type": filters.type or None,
        "f_after": filters.occurred_after,
        "f_before": filters.occurred_before,
        "f_metadata": filters.metadata or None,
        "f_subject": filters.subject or None,
    }
    shape = tuple(value is not None for value in values.values())
    params = {"f_tenant": tenant, **{k: v for k, v in values.items() if v is not None}}
    return Where(shape, params)


@lru_cache(maxsize=64)
def clauses(shape: tuple[bool, ...]) -> tuple[ColumnElement[bool], ...]:
    """The conditions of a shape, binding ``f_tenant`` and the ``f_*`` of each set filter."""
    has_source, has_type, has_after, has_before, has_metadata, has_subject = shape
    where: list[ColumnElement[bool]] = [Event.tenant == bindparam("f_tenant")]
    if has_source:
        where.append(Event.source.in_(bindparam("f_source", expanding=True)))
    if has_type:
        where.append(Event.type.in_(bindparam("f_type", expanding=True)))
    if has_after:
        where.append(Event.occurred_at >= bindparam("f_after", type_=Event.occurred_at.type))
    if has_before:
        where.append(Event.occurred_at < bindparam("f_before", type_=Event.occurred_at.type))
    if has_metadata:
        # jsonb @>, served by the GIN jsonb_path_ops index.
        where.append(Event.meta.contains(bindparam("f_metadata", type_=JSONB)))
    if has_subject:
        where.append(Event.subject.in_(bindparam("f_subject", expanding=True)))
    return tuple(where)


def from_query(
    source: list[str] | None,
    type_: list[str] | None,
    occurred_after: datetime | None,
    occurred_before: datetime | None,
    metadata: str | None,
    subject: list[str] | None,
    ingest: IngestSettings,
) -> SearchFilters:
    """Filters from GET query parameters; ``metadata`` is a JSON object (``{"k": "v"}``).
    A bad value raises :class:`RequestValidationError`: the usual 422 naming the parameter."""
    meta: Any = None
    if metadata:
        depth = ingest.max_metadata_depth
        if nested_deeper_than(metadata, depth):
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "metadata"),
                        "msg": f"must be nested at most {depth} levels (MAX_METADATA_DEPTH)",
                        "type": "value_error",
                    }
                ]
            )
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
                "subject": subject or None,
            }
        )
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
