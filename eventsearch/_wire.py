"""What the sync and async clients share: configuration defaults, request bodies, keys,
and turning answers into results or typed errors. No I/O here."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from eventsearch.errors import (
    EmbeddingFailed,
    EventsearchError,
    RequestTimeout,
    TransportError,
    WaitTimeout,
    error_from_response,
)
from eventsearch.models import Event

__version__ = "0.1.0"
USER_AGENT = f"eventsearch-python/{__version__}"
EVENTS = "/api/v1/events"
SEARCH = "/api/v1/search"
SUBJECTS = "/api/v1/subjects"
DEFAULT_URL = "http://localhost:8000"
#: The server's default ``BATCH_MAX_ITEMS``; pass ``max_batch`` when it is set lower.
MAX_BATCH = 1000
JSON = {"Content-Type": "application/json"}

T = TypeVar("T")


def base_url_or_env(base_url: str | None) -> str:
    return (base_url or os.environ.get("EVENTSEARCH_URL") or DEFAULT_URL).rstrip("/")


def api_key_or_env(api_key: str | None) -> str:
    key = api_key or os.environ.get("EVENTSEARCH_API_KEY")
    if not key:
        raise ValueError("no API key: pass api_key=... or set EVENTSEARCH_API_KEY")
    return key


def default_headers(api_key: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT, **(extra or {})}


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(payload: Any) -> bytes:
    """JSON bytes, with datetimes as ISO 8601. Encoded once per logical call, so every retry
    sends the very same bytes (a retry must never look like another body to the server)."""
    return json.dumps(
        payload, default=_json_default, ensure_ascii=False, separators=(",", ":")
    ).encode()


def new_key() -> str:
    """A fresh idempotency key for one logical send."""
    return str(uuid.uuid4())


def event_and_key(event: Mapping[str, Any], key: str | None) -> tuple[str, bytes]:
    """The key (the caller's, else the event's ``idempotency_key``, else a new UUID4) and
    the body to POST, without the key (it travels in the header)."""
    body = dict(event)
    own = body.pop("idempotency_key", None)
    return key or (str(own) if own else new_key()), encode(body)


def with_keys(events: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Batch items, each with an ``idempotency_key`` (a new UUID4 where it had none)."""
    for event in events:
        item = dict(event)
        if not item.get("idempotency_key"):
            item["idempotency_key"] = new_key()
        yield item


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items, read lazily."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def search_body(
    query: str,
    top_k: int,
    mode: str | None,
    filters: Mapping[str, Any] | None,
    fusion: str | None = None,
) -> bytes:
    # Only what the caller set is sent, so the server's defaults stay the server's.
    body: dict[str, Any] = {"query": query, "top_k": top_k}
    if mode is not None:
        body["mode"] = mode
    if filters:
        body["filters"] = dict(filters)
    if fusion is not None:
        body["fusion"] = fusion
    return encode(body)


def check(response: httpx.Response, ok: tuple[int, ...]) -> httpx.Response:
    """The response when its status is expected, else its typed error."""
    if response.status_code in ok:
        return response
    raise error_from_response(response)


def transport_error(error: httpx.TransportError) -> EventsearchError:
    """A typed, retryable error for a request that got no answer."""
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeout(f"no answer in time ({type(error).__name__})", code="timeout")
    return TransportError(f"{type(error).__name__}: {error}", code="connection_error")


def event_path(event_id: str) -> str:
    return f"{EVENTS}/{quote(str(event_id), safe='')}"


def subject_path(source: str, subject: str) -> str:
    return f"{SUBJECTS}/{quote(source, safe='')}/{quote(subject, safe='')}"


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed", "").lower() == "true"


# First and longest pause between status reads in wait_embedded: quick for a fast worker,
# then doubling so that a long wait costs the server little.
WAIT_POLL_S = (0.1, 2.0)


def settled(event: Event) -> bool:
    """True once ``event`` is embedded; raises when it can no longer be."""
    if event.status == "embedded":
        return True
    if event.status in ("failed", "deleted", "superseded"):
        raise EmbeddingFailed(
            f"event {event.id} is {event.status}: {event.error or 'no error recorded'}",
            code=f"event_{event.status}",
        )
    return False


def wait_timeout(event_id: str, timeout: float, status: str) -> WaitTimeout:
    return WaitTimeout(f"event {event_id} still {status} after {timeout:g} s", code="wait_timeout")
