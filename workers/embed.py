"""The embed task: messages carry one event id each; celery-batches hands them to
:func:`embed_events` in batches of up to ``EMBED_BATCH_SIZE`` (or whatever arrived within
``EMBED_BATCH_WAIT_MS``), and one embedder call serves the whole batch.

Failures: a transient one (timeout, 429, 5xx, connection) re-publishes the events with
exponential backoff and full jitter (honouring ``Retry-After``) until ``EMBED_MAX_ATTEMPTS``;
a permanent one splits the batch to isolate the bad input and fails only that event.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from celery_batches import Batches, SimpleRequest

from common import metrics
from common.embedders import Embedder, PermanentEmbedError, TransientEmbedError, build_embedder
from common.queue import TASK_EMBED
from common.settings import get_settings
from workers import store
from workers.app import app
from workers.observability import observed

log = logging.getLogger("eventsearch.worker")
_settings = get_settings()
_embedder: Embedder | None = None


def embedder() -> Embedder:
    """This process's embedder, made on first use (the local model loads in the pool child)."""
    global _embedder
    if _embedder is None:
        _embedder = build_embedder(_settings)
    return _embedder


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    # Loading the local model takes seconds, more than Celery allows a child to start, so it
    # loads in a thread of the child; the first batch waits for it (the embedder's lock).
    if _settings.embedder == "local":
        threading.Thread(target=embedder().embed, args=(["warm-up"],), daemon=True).start()


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _embedder is not None:
        _embedder.close()


def backoff(attempt: int, retry_after: float | None) -> float:
    """Full-jitter exponential backoff (AWS architecture blog), never sooner than Retry-After."""
    ceiling = min(
        _settings.retry_backoff_max_s, _settings.retry_backoff_s * 2 ** max(attempt - 1, 0)
    )
    delay = random.uniform(0, ceiling)
    return max(delay, retry_after or 0.0)


def process(events: Sequence[store.Pending]) -> None:
    """Embed and store ``events``; on a permanent error, bisect to find the bad input."""
    if not events:
        return
    model = embedder()
    try:
        vectors = model.embed([e.text for e in events])
    except TransientEmbedError as error:
        retry(events, str(error), error.retry_after)
        return
    except PermanentEmbedError as error:
        if len(events) == 1:
            log.warning("event %s failed permanently: %s", events[0].id, error)
            metrics.DEAD_LETTERS.inc()
            store.record_failure(events, str(error), final=True)
            return
        middle = len(events) // 2
        process(events[:middle])
        process(events[middle:])
        return
    store.save_vectors(events, vectors, model.model)


def retry(events: Sequence[store.Pending], error: str, retry_after: float | None) -> None:
    exhausted = [e for e in events if e.attempts + 1 >= _settings.embed_max_attempts]
    again = [e for e in events if e.attempts + 1 < _settings.embed_max_attempts]
    if exhausted:
        store.record_failure(
            exhausted, f"gave up after {_settings.embed_max_attempts} attempts: {error}", final=True
        )
    if again:
        store.record_failure(again, error, final=False)
        for event in again:
            embed_events.apply_async(
                args=[str(event.id)], countdown=backoff(event.attempts + 1, retry_after)
            )
    log.info("retrying %d events, %d exhausted: %s", len(again), len(exhausted), error)
    metrics.RETRIES.inc(len(again))
    metrics.DEAD_LETTERS.inc(len(exhausted))


@app.task(
    base=Batches,
    name=TASK_EMBED,
    flush_every=_settings.embed_batch_size,
    flush_interval=max(_settings.embed_batch_wait_ms, 1) / 1000,
    acks_late=True,
)
@observed(TASK_EMBED)
def embed_events(requests: list[SimpleRequest]) -> None:
    """Embed every queued event named by the buffered messages (a message names one event,
    or a chunk of a batch POST), ``EMBED_BATCH_SIZE`` events an embedder call."""
    ids = [str(event_id) for r in requests for event_id in r.args]
    size = _settings.embed_batch_size
    for start in range(0, len(ids), size):
        process(store.load_queued(ids[start : start + size]))
