"""The few gateway calls ``eventsearch eval`` makes, over HTTP like any client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

BATCH_BYTES = 512 * 1024  # well under the gateway's MAX_BODY_BYTES (1 MiB by default)
BATCH_ITEMS = 500
RETRIES = 20  # of one call answered 429/503
MAX_WAIT_S = 30.0


@dataclass
class Hit:
    id: str
    metadata: dict[str, Any]


class ApiError(Exception):
    """The gateway answered something this client cannot go on from."""


class Gateway:
    def __init__(self, url: str, api_key: str, timeout: float = 60) -> None:
        self.http = httpx.Client(
            base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}
        )

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call, waiting out 429 and 503 as their ``Retry-After`` says (a polling eval
        can meet the key's read limit; the gateway may be restarting); other errors raise."""
        for _ in range(RETRIES):
            response = self.http.request(method, path, **kwargs)
            if response.status_code not in (429, 503):
                break
            time.sleep(min(float(response.headers.get("retry-after") or 1), MAX_WAIT_S))
        return self._check(response)

    def _check(self, response: httpx.Response) -> Any:
        if not response.is_success:
            raise ApiError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return response.json()

    def ingest(
        self, events: Sequence[dict[str, Any]], advance: Callable[[int], None]
    ) -> list[str | None]:
        """Post ``events`` (each with its ``idempotency_key``) through the batch API, in
        requests of at most ``BATCH_ITEMS`` items or ``BATCH_BYTES``; the event id of each
        (the first one's for a duplicate), or ``None`` where it was rejected."""
        ids: list[str | None] = []
        chunk: list[dict[str, Any]] = []
        size = 0
        for event in events:
            item = len(json.dumps(event))
            if chunk and (len(chunk) >= BATCH_ITEMS or size + item > BATCH_BYTES):
                ids += self._post_batch(chunk)
                advance(len(chunk))
                chunk, size = [], 0
            chunk.append(event)
            size += item
        if chunk:
            ids += self._post_batch(chunk)
            advance(len(chunk))
        return ids

    def _post_batch(self, events: list[dict[str, Any]]) -> list[str | None]:
        body = self._send("POST", "/api/v1/events/batch", json={"events": events})
        return [r.get("id") if r["status"] != "rejected" else None for r in body["results"]]

    def wait_embedded(
        self, ids: Sequence[str], advance: Callable[[int], None], stall_timeout: float
    ) -> int:
        """Poll until every event is ``embedded`` or ``failed``; the number that failed.
        Workers take events roughly in order, so each round reads statuses from the oldest
        pending one and stops at the first still queued."""
        pending, failed, last_change = list(ids), 0, time.monotonic()
        while pending:
            done = 0
            for event_id in pending:
                status = self._send("GET", f"/api/v1/events/{event_id}")["status"]
                if status == "queued":
                    break
                failed += status != "embedded"
                done += 1
            if done:
                pending, last_change = pending[done:], time.monotonic()
                advance(done)
            elif time.monotonic() - last_change > stall_timeout:
                raise ApiError(
                    f"{len(pending)} events still queued after {stall_timeout:.0f}s "
                    "without progress: are the workers running?"
                )
            else:
                time.sleep(1.0)  # a poll interval, not a wait for a condition
        return failed

    def search(
        self,
        query: str,
        mode: str,
        top_k: int,
        filters: dict[str, Any],
        fusion: str | None = None,
    ) -> tuple[list[Hit], float]:
        """The hits of one search and the gateway's ``took_ms``; ``fusion`` goes with a
        hybrid search only (when given)."""
        request = {"query": query, "mode": mode, "top_k": top_k, "filters": filters}
        if fusion and mode == "hybrid":
            request["fusion"] = fusion
        body = self._send("POST", "/api/v1/search", json=request)
        hits = [Hit(h["id"], h["metadata"]) for h in body["results"]]
        return hits, float(body["took_ms"])
