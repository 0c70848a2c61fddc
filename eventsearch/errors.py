"""Typed errors carrying what the server said: its error code, message and request id.

Every failure the client raises is an :class:`EventsearchError`. The subclass says what to
do about it; ``retryable`` says whether the client's own retries would have tried again
(they already did, up to the policy's attempts and deadline, before raising it).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class EventsearchError(Exception):
    """Base of every client error.

    ``code`` is the server's error code (``validation_error``, ``idempotency_key_reused``,
    ``redis_unavailable``, ...) or the client's own (``timeout``, ``connection_error``);
    ``request_id`` is the gateway's request id, to quote in a bug report or find in its logs.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}"] if self.status is not None else []
        parts += [f"request {self.request_id}"] if self.request_id else []
        return f"{self.code}: {self.message}" + (f" ({', '.join(parts)})" if parts else "")


class TransportError(EventsearchError):
    """The request got no answer: connection refused or reset, DNS, TLS."""

    retryable = True


class RequestTimeout(TransportError):
    """No answer within the timeout. The server may still have done the work: a retry with
    the same idempotency key gets the first answer instead of a second event."""


class BadRequest(EventsearchError):
    """400, 413, 415 and other 4xx without a more precise class (e.g. a missing or invalid
    ``Idempotency-Key``, a body over the size limit)."""


class AuthError(EventsearchError):
    """401 (missing or unknown API key) or 403 (the key lacks the scope)."""


class NotFound(EventsearchError):
    """404: unknown id, or another tenant's (the server does not tell them apart)."""


class Conflict(EventsearchError):
    """409. ``idempotency_key_in_progress`` (the first request with this key still runs) is
    retried after ``Retry-After``; other conflicts are not."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.code == "idempotency_key_in_progress"


class ValidationFailed(EventsearchError):
    """422: the body is invalid (``details`` names the fields), or the batch is too large."""


class IdempotencyKeyReused(ValidationFailed):
    """422 ``idempotency_key_reused``: this key was already used with another body."""


class RateLimited(EventsearchError):
    """429: too many requests for this key; ``retry_after`` says when to come back."""

    retryable = True


class ServerError(EventsearchError):
    """5xx: the server failed."""

    retryable = True


class Unavailable(ServerError):
    """502, 503, 504: a dependency (database, Redis) or the gateway itself is down; nothing
    was recorded, so a retry is processed afresh."""


class EmbeddingFailed(EventsearchError):
    """``wait_embedded``: the event ended ``failed`` (or ``deleted``) instead of embedded."""


class WaitTimeout(EventsearchError, TimeoutError):
    """``wait_embedded``: the event was not embedded within the timeout."""


_BY_STATUS: dict[int, type[EventsearchError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from delta-seconds or an HTTP date; None when absent or
    unreadable (then the client's own backoff applies)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> EventsearchError:
    """The typed error for a non-2xx answer, from the contract's one error shape
    ``{"error": {"code", "message", "request_id", "details"?}}`` (tolerating others)."""
    status = response.status_code
    body: Any = None
    with contextlib.suppress(ValueError):  # a proxy's HTML error page, say
        body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("message") or response.reason_phrase or f"HTTP {status}")
    request_id = error.get("request_id") or response.headers.get("x-request-id")
    details = error.get("details")
    if code == "idempotency_key_reused":
        cls: type[EventsearchError] = IdempotencyKeyReused
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequest
    return cls(
        message,
        code=code,
        status=status,
        request_id=str(request_id) if request_id else None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        details=details if isinstance(details, list) else None,
    )
