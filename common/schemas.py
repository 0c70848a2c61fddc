"""Pydantic schemas of the public API (requests and responses)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from common.validation import (
    EventText,
    FilterValues,
    Metadata,
    Name,
    SubjectName,
    SubjectValues,
    Timestamp,
    TopK,
    no_nul,
)

SearchMode = Literal["dense", "keyword", "hybrid"]
Fusion = Literal["rrf", "linear"]
StatusName = Literal["queued", "embedded", "failed", "deleted", "superseded"]


class EventIn(BaseModel):
    """An event from an upstream system. Unknown fields are refused, so a typo is an error."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "jobboard",
                    "type": "job.posted",
                    "text": "Senior data engineer, Nairobi",
                    "metadata": {"company": "Safaricom"},
                    "occurred_at": "2026-11-01T09:00:00Z",
                }
            ]
        },
    )

    source: Name
    type: Name
    text: EventText
    metadata: Metadata = Field(default_factory=dict)
    occurred_at: Timestamp | None = None
    subject: SubjectName | None = Field(
        None,
        description="the upstream's id of the thing this event is about: events of one source "
        "and subject are versions, the latest occurred_at current (docs/subjects.md)",
    )
    deleted: bool = Field(
        False, description="this event deletes its subject (needs `subject`; docs/subjects.md)"
    )

    @model_validator(mode="after")
    def _deletion_has_subject(self) -> EventIn:
        if self.deleted and self.subject is None:
            raise ValueError("deleted: true needs a subject to delete")
        return self


class EventAccepted(BaseModel):
    id: uuid.UUID
    status: StatusName
    created_at: datetime


class BatchIn(BaseModel):
    """Items are validated one by one in the handler, so one bad item rejects only itself."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "source": "jobboard",
                            "type": "job.posted",
                            "text": "Data engineer",
                            "idempotency_key": "posting-1",
                        },
                        {
                            "source": "tickets",
                            "type": "ticket.opened",
                            "text": "Login fails",
                            "idempotency_key": "ticket-77",
                        },
                    ]
                }
            ]
        },
    )

    events: list[Any]


class ItemError(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    id: uuid.UUID | None = None
    idempotency_key: str | None = None
    error: ItemError | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[BatchItemResult]


class EventOut(BaseModel):
    id: uuid.UUID
    status: StatusName
    source: str
    type: str
    text: str
    metadata: dict[str, Any]
    occurred_at: datetime | None
    attempts: int
    error: str | None
    model: str | None
    embedded_at: datetime | None
    created_at: datetime
    subject: str | None = None


class EventPage(BaseModel):
    """A page of ``GET /api/v1/events``, newest first; ``next_cursor`` is null on the last."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "id": "5c0f3a52-7d4e-4c2a-9a51-2f4b8f7e9c10",
                            "status": "embedded",
                            "source": "jobboard",
                            "type": "job.posted",
                            "text": "Senior data engineer, Nairobi",
                            "metadata": {"company": "Safaricom"},
                            "occurred_at": "2026-11-01T09:00:00Z",
                            "attempts": 1,
                            "error": None,
                            "model": "nomic-embed-text",
                            "embedded_at": "2026-11-01T09:00:03.102Z",
                            "created_at": "2026-11-01T09:00:02.418Z",
                        }
                    ],
                    "next_cursor": "MjAyNi0xMS0wMVQwOTowMDowMi40MTgwMDArMDA6MDB8NWMwZjNhNTIt"
                    "N2Q0ZS00YzJhLTlhNTEtMmY0YjhmN2U5YzEw",
                }
            ]
        }
    )

    events: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class SearchFilters(BaseModel):
    """Restrictions applied inside the search (not to its results): every one must hold."""

    model_config = ConfigDict(extra="forbid")

    # Each list at most MAX_FILTER_VALUES; metadata within the same limits as an event's.
    source: FilterValues | None = Field(None, description="any of these sources")
    type: FilterValues | None = Field(None, description="any of these types")
    occurred_after: Timestamp | None = Field(None, description="occurred_at >= this")
    occurred_before: Timestamp | None = Field(None, description="occurred_at < this")
    metadata: Metadata | None = Field(
        None, description="JSON containment: the event's metadata includes all of this"
    )
    subject: SubjectValues | None = Field(None, description="any of these subjects")


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "query": "data engineering jobs in Kenya",
                    "top_k": 5,
                    "mode": "hybrid",
                    "filters": {"source": ["jobboard"], "metadata": {"company": "Safaricom"}},
                }
            ]
        },
    )

    query: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
        AfterValidator(no_nul),
    ]
    top_k: TopK = 10
    mode: SearchMode | None = Field(None, description="default: SEARCH_DEFAULT_MODE (hybrid)")
    fusion: Fusion | None = Field(
        None,
        description="how hybrid fuses its rankings: rrf (reciprocal rank) or linear (weighted"
        " sum of min-max normalised scores); default HYBRID_FUSION (rrf); other modes ignore it",
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)


class Passage(BaseModel):
    """The part of the event's text that matched: ``text == event.text[start:end]``
    (character offsets, as Python and JavaScript's ``Array.from`` count them)."""

    text: str
    start: int
    end: int


class SearchHit(BaseModel):
    id: uuid.UUID
    score: float
    text: str
    source: str
    type: str
    metadata: dict[str, Any]
    occurred_at: datetime | None
    subject: str | None = None
    rankings: dict[Literal["dense", "keyword"], int] = Field(
        default_factory=dict,
        description="the hit's 1-based rank in each ranking it came from, e.g. "
        '{"dense": 3, "keyword": 1}',
    )
    passage: Passage | None = Field(
        None,
        description="the matching part of the text: the best chunk (dense, hybrid), or the "
        "words found and their surroundings (keyword)",
    )


class SearchResponse(BaseModel):
    results: list[SearchHit]
    model: str
    mode: SearchMode
    took_ms: float


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    redis: str
    embedder: str


class SubjectHistory(BaseModel):
    """``GET /api/v1/subjects/{source}/{subject}``: its versions newest first (by occurred_at,
    ties by acceptance), ``current`` the one search finds once embedded (null after a
    deletion), ``deleted_at`` its latest deletion's date; ``next_cursor`` null on the last."""

    source: str
    subject: str
    current: uuid.UUID | None
    deleted_at: datetime | None
    versions: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")
