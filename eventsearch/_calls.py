"""Every API call of the clients as data (sans-I/O): what to send, which statuses are
success, and how the answer becomes a result. :class:`eventsearch.Client` and
:class:`eventsearch.AsyncClient` only perform these, blocking or awaited, so the two can
never drift apart; the only code they do not share is the I/O itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from eventsearch import _wire
from eventsearch.models import Accepted, BatchResult, Event, SearchResults, SubjectHistory

R = TypeVar("R")


@dataclass(frozen=True)
class Call(Generic[R]):
    """One logical request: retried as a whole, the same bytes on every attempt."""

    method: str
    path: str
    parse: Callable[[httpx.Response], R]
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ok: tuple[int, ...] = (200,)
    # A 404 on a retry means the attempt that got no answer already did it (DELETE).
    gone_after_retry_ok: bool = False

    def outcome(self, response: httpx.Response, attempt: int) -> httpx.Response:
        """The response when it counts as done, else its typed error (raised)."""
        if self.gone_after_retry_ok and attempt > 1 and response.status_code == 404:
            return response
        return _wire.check(response, self.ok)


def send(event: Mapping[str, Any], idempotency_key: str | None) -> Call[Accepted]:
    key, body = _wire.event_and_key(event, idempotency_key)
    return Call(
        "POST",
        _wire.EVENTS,
        lambda r: Accepted.parse(r.json(), key, _wire.replayed(r), r.headers.get("location")),
        content=body,
        headers={**_wire.JSON, "Idempotency-Key": key},
        ok=(200, 201, 202),
    )


def batch(chunk: list[dict[str, Any]], offset: int) -> Call[BatchResult]:
    """One request of a :meth:`send_batch`; ``offset`` is the index of its first item."""
    return Call(
        "POST",
        f"{_wire.EVENTS}/batch",
        lambda r: BatchResult.parse(r.json(), offset),
        content=_wire.encode({"events": chunk}),
        headers=_wire.JSON,
    )


def get(event_id: str) -> Call[Event]:
    return Call("GET", _wire.event_path(event_id), lambda r: Event.parse(r.json()))


def delete(event_id: str) -> Call[None]:
    return Call(
        "DELETE",
        _wire.event_path(event_id),
        lambda r: None,
        ok=(200, 202, 204),
        gone_after_retry_ok=True,
    )


def history(source: str, subject: str, limit: int, cursor: str | None) -> Call[SubjectHistory]:
    query = f"?limit={limit}" + (f"&cursor={quote(cursor, safe='')}" if cursor else "")
    return Call(
        "GET", _wire.subject_path(source, subject) + query, lambda r: SubjectHistory.parse(r.json())
    )


def delete_subject(source: str, subject: str) -> Call[None]:
    # Deleting twice is 204 too; a 404 on a retry is an unknown subject, never a done one.
    return Call("DELETE", _wire.subject_path(source, subject), lambda r: None, ok=(200, 204))


def search(
    query: str,
    top_k: int,
    mode: str | None,
    filters: Mapping[str, Any] | None,
    fusion: str | None = None,
) -> Call[SearchResults]:
    return Call(
        "POST",
        _wire.SEARCH,
        lambda r: SearchResults.parse(r.json()),
        content=_wire.search_body(query, top_k, mode, filters, fusion),
        headers=_wire.JSON,
    )


def batches(events: Iterable[Mapping[str, Any]], max_batch: int) -> Iterator[Call[BatchResult]]:
    """The requests of one :meth:`send_batch`, made lazily (``events`` may be a generator)."""
    offset = 0
    for chunk in _wire.chunked(_wire.with_keys(events), max_batch):
        yield batch(chunk, offset)
        offset += len(chunk)
