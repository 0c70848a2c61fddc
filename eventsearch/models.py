"""What the client returns: plain frozen dataclasses (no pydantic, so that the client needs
nothing beyond httpx and tenacity). Each keeps the server's whole JSON in ``raw``, so fields
the server adds later are readable before the client knows them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventStatus = Literal["queued", "embedded", "failed", "deleted", "superseded"]
ItemStatus = Literal["accepted", "duplicate", "rejected"]


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Accepted:
    """The answer to ``send``: the event's id, and whether the server replayed the first
    answer for this idempotency key (a retry, or the same event sent again)."""

    id: str
    status: EventStatus
    created_at: datetime | None
    idempotency_key: str
    replayed: bool
    location: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(
        cls, body: Mapping[str, Any], key: str, replayed: bool, location: str | None
    ) -> Accepted:
        return cls(
            id=str(body["id"]),
            status=body.get("status", "queued"),
            created_at=_time(body.get("created_at")),
            idempotency_key=key,
            replayed=replayed,
            location=location,
            raw=body,
        )


@dataclass(frozen=True)
class ItemError:
    """Why one batch item was rejected (``details`` lists invalid fields, as for a 422)."""

    code: str
    message: str
    details: list[Any] | None = None


@dataclass(frozen=True)
class BatchItem:
    """One event's outcome in ``send_batch``; ``index`` is its position in the input."""

    index: int
    status: ItemStatus
    id: str | None
    idempotency_key: str | None
    error: ItemError | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any], offset: int = 0) -> BatchItem:
        error = body.get("error")
        return cls(
            index=int(body["index"]) + offset,
            status=body["status"],
            id=str(body["id"]) if body.get("id") is not None else None,
            idempotency_key=body.get("idempotency_key"),
            error=ItemError(error["code"], error["message"], error.get("details"))
            if isinstance(error, Mapping)
            else None,
        )


@dataclass(frozen=True)
class BatchResult:
    """Counts and one result per input event, in input order."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    results: list[BatchItem] = field(default_factory=list)

    @classmethod
    def parse(cls, body: Mapping[str, Any], offset: int = 0) -> BatchResult:
        return cls(
            accepted=int(body["accepted"]),
            duplicate=int(body["duplicate"]),
            rejected=int(body["rejected"]),
            results=[BatchItem.parse(item, offset) for item in body["results"]],
        )

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.accepted + other.accepted,
            self.duplicate + other.duplicate,
            self.rejected + other.rejected,
            self.results + other.results,
        )

    @property
    def failed(self) -> list[BatchItem]:
        """The rejected items."""
        return [item for item in self.results if item.status == "rejected"]


@dataclass(frozen=True)
class Event:
    """An event as ``get`` reads it, with its processing status."""

    id: str
    status: EventStatus
    source: str
    type: str
    text: str
    metadata: dict[str, Any]
    occurred_at: datetime | None
    attempts: int
    error: str | None
    model: str | None
    embedded_at: datetime | None
    created_at: datetime | None
    subject: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Event:
        return cls(
            id=str(body["id"]),
            status=body["status"],
            source=body.get("source", ""),
            type=body.get("type", ""),
            text=body.get("text", ""),
            metadata=dict(body.get("metadata") or {}),
            occurred_at=_time(body.get("occurred_at")),
            attempts=int(body.get("attempts") or 0),
            error=body.get("error"),
            model=body.get("model"),
            embedded_at=_time(body.get("embedded_at")),
            created_at=_time(body.get("created_at")),
            subject=body.get("subject"),
            raw=body,
        )


@dataclass(frozen=True)
class Passage:
    """The part of a hit's text that matched: ``hit.text[start:end] == text``."""

    text: str
    start: int
    end: int

    @classmethod
    def parse(cls, body: Mapping[str, Any] | None) -> Passage | None:
        if not body:
            return None
        return cls(text=str(body["text"]), start=int(body["start"]), end=int(body["end"]))


@dataclass(frozen=True)
class SearchHit:
    """One search result; ``score`` is higher for closer matches, ``passage`` the part of
    ``text`` that matched (the best chunk of a long event; None from an older server)."""

    id: str
    score: float
    text: str
    source: str
    type: str
    metadata: dict[str, Any]
    occurred_at: datetime | None
    passage: Passage | None = None
    subject: str | None = None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SearchHit:
        return cls(
            id=str(body["id"]),
            score=float(body["score"]),
            text=body.get("text", ""),
            source=body.get("source", ""),
            type=body.get("type", ""),
            metadata=dict(body.get("metadata") or {}),
            occurred_at=_time(body.get("occurred_at")),
            subject=body.get("subject"),
            passage=Passage.parse(body.get("passage")),
        )


@dataclass(frozen=True)
class SubjectHistory:
    """A subject's versions newest first; ``current`` is the id search finds once embedded
    (``None`` after a deletion); pass ``next_cursor`` as ``cursor`` for the next page."""

    source: str
    subject: str
    current: str | None
    deleted_at: datetime | None
    versions: list[Event]
    next_cursor: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SubjectHistory:
        current = body.get("current")
        return cls(
            source=str(body["source"]),
            subject=str(body["subject"]),
            current=str(current) if current is not None else None,
            deleted_at=_time(body.get("deleted_at")),
            versions=[Event.parse(v) for v in body.get("versions") or []],
            next_cursor=body.get("next_cursor"),
        )


@dataclass(frozen=True)
class SearchResults:
    """Hits best first; iterate over it directly."""

    results: list[SearchHit]
    model: str
    mode: str
    took_ms: float
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SearchResults:
        return cls(
            results=[SearchHit.parse(hit) for hit in body["results"]],
            model=str(body.get("model", "")),
            mode=str(body.get("mode", "")),
            took_ms=float(body.get("took_ms") or 0.0),
            raw=body,
        )

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)
