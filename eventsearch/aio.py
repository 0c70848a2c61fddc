"""``eventsearch.AsyncClient``: the asyncio client (``httpx.AsyncClient`` underneath); the
same methods as :class:`eventsearch.Client`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from eventsearch import _calls, _wire
from eventsearch._calls import R
from eventsearch.models import Accepted, BatchResult, Event, SearchResults, SubjectHistory
from eventsearch.retry import Deadline, OnRetry, RetryPolicy, async_retrying


class AsyncClient:
    """The asyncio twin of :class:`eventsearch.Client`: one gateway, one API key, one event
    loop.

    Every call retries what a retry can cure (no answer, 409 in progress, 429, 5xx) within
    ``retry`` (attempts and a total deadline), honouring ``Retry-After``; anything else is
    raised at once as a typed :class:`~eventsearch.errors.EventsearchError`.

    ``base_url`` and ``api_key`` default to ``$EVENTSEARCH_URL`` (else
    ``http://localhost:8000``) and ``$EVENTSEARCH_API_KEY``. ``timeout`` bounds each
    attempt; ``on_retry`` is called before each wait (for logs or metrics); ``transport``
    and ``headers`` go to httpx as they are.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_batch: int = _wire.MAX_BATCH,
        on_retry: OnRetry | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_batch = max_batch
        self.on_retry = on_retry
        self._http = httpx.AsyncClient(
            base_url=_wire.base_url_or_env(base_url),
            headers=_wire.default_headers(_wire.api_key_or_env(api_key), headers),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _perform(self, call: _calls.Call[R]) -> R:
        """``call``, retried by ``self.retry``; each attempt's timeout is what is left."""
        deadline = Deadline(self.retry, self.timeout)
        attempts = 0

        async def once() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    content=call.content,
                    headers=call.headers,
                    timeout=deadline.attempt_timeout(),
                )
            except httpx.TransportError as error:
                raise _wire.transport_error(error) from error
            return call.outcome(response, attempts)

        return call.parse(await async_retrying(self.retry, self.on_retry)(once))

    async def send(self, event: Mapping[str, Any], idempotency_key: str | None = None) -> Accepted:
        """Send one event; returns once it is recorded and queued (the server's 202).

        The idempotency key is ``idempotency_key``, else the event's own
        ``idempotency_key`` field, else a UUID4 made once for this call; every retry reuses
        it, so a retry after a timeout returns the first answer (``replayed=True``) instead
        of making a second event. Pass the upstream record's id to be safe across restarts
        of your own process too."""
        return await self._perform(_calls.send(event, idempotency_key))

    async def send_batch(self, events: Iterable[Mapping[str, Any]]) -> BatchResult:
        """Send many events through the batch endpoint, ``max_batch`` per request.

        Each event may carry its ``idempotency_key``; one is made where it does not.
        Returns one result per event, in input order (``index`` counts from 0 over all of
        ``events``). A batch retried after a timeout reports the items the first attempt
        recorded as ``duplicate``, with their first ids."""
        total = BatchResult()
        for call in _calls.batches(events, self.max_batch):
            total = total + await self._perform(call)
        return total

    async def get(self, event_id: str) -> Event:
        """The event and its processing status; :class:`~eventsearch.errors.NotFound` when
        unknown (or another tenant's)."""
        return await self._perform(_calls.get(event_id))

    async def history(
        self, source: str, subject: str, *, limit: int = 100, cursor: str | None = None
    ) -> SubjectHistory:
        """A subject's versions, newest first, ``limit`` a page (docs/subjects.md)."""
        return await self._perform(_calls.history(source, subject, limit, cursor))

    async def delete_subject(self, source: str, subject: str) -> None:
        """Delete a subject: every version is erased and search finds none; a version
        dated after the deletion brings it back. :class:`~eventsearch.errors.NotFound` when
        the subject is unknown."""
        await self._perform(_calls.delete_subject(source, subject))

    async def delete(self, event_id: str) -> None:
        """Delete an event and its vector. A 404 on a retry counts as done: the attempt
        that got no answer deleted it."""
        await self._perform(_calls.delete(event_id))

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str | None = None,
        filters: Mapping[str, Any] | None = None,
        fusion: str | None = None,
    ) -> SearchResults:
        """Events nearest to ``query``, best first. ``mode`` (``dense``, ``keyword``,
        ``hybrid``), ``filters`` and ``fusion`` (hybrid's: ``rrf`` or ``linear``) are sent
        only when given."""
        return await self._perform(_calls.search(query, top_k, mode, filters, fusion))

    # The same signature as Client.wait_embedded; the deadline is enforced inside.
    async def wait_embedded(self, event_id: str, timeout: float = 60.0) -> Event:  # noqa: ASYNC109
        """Poll the event until it is embedded and return it. Raises
        :class:`~eventsearch.errors.EmbeddingFailed` if it ends ``failed`` or ``deleted``,
        :class:`~eventsearch.errors.WaitTimeout` after ``timeout`` seconds."""
        ends = time.monotonic() + timeout
        pause, longest = _wire.WAIT_POLL_S
        while True:
            event = await self.get(event_id)
            if _wire.settled(event):
                return event
            left = ends - time.monotonic()
            if left <= 0:
                raise _wire.wait_timeout(event_id, timeout, event.status)
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, longest)
