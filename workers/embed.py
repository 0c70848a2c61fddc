"""The embed task: a message names one event (a single POST) or up to ``EMBED_BATCH_SIZE``
(a batch POST, the sweeper); celery-batches buffers them and :class:`ReliableBatches` hands
them to :func:`embed_events` in groups of up to ``EMBED_BATCH_SIZE`` events (or whatever
arrived within ``EMBED_BATCH_WAIT_MS``); one embedder call serves a group, or one per
``EMBED_BATCH_MAX_CHARS`` of its text.

Outcomes, per event:
- embedded: the vector is stored (only if the event is still ``queued``: exactly-once effect);
- transient failure (timeout, connection error, 429, 5xx, the batch's soft time limit): the
  error is kept and the event becomes due again after a full-jitter exponential backoff,
  never sooner than the embedder's ``Retry-After`` (capped); the sweeper publishes it then.
  After ``EMBED_MAX_ATTEMPTS`` it is dead-lettered with its last error;
- permanent failure (400/404, NaN or infinite values, wrong dimension): the batch is split in
  halves until the bad input is alone, and that event alone is dead-lettered at once.

The database being down is no event's fault: no attempt is lost, the batch's messages go
back to the broker after a short pause (see :class:`ReliableBatches`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task
from redis import Redis
from sqlalchemy import exc as sa_exc

from common import metrics
from common.db import sync_engine
from common.embed_slots import EmbedSlots, SlotsBusy
from common.embedders import Embedder, PermanentEmbedError, TransientEmbedError, build_embedder
from common.queue import TASK_EMBED
from common.settings import get_settings
from workers import store
from workers.app import app
from workers.observability import observed

log = logging.getLogger("eventsearch.worker")
_settings = get_settings()
_embedder: Embedder | None = None

REQUEUE = "requeue"  # the batch's result when its messages must go back to the broker
DB_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError)
DB_PAUSE_MAX_S = 5.0


def embedder() -> Embedder:
    """This process's embedder, made on first use (the local model loads in the pool child)."""
    global _embedder
    if _embedder is None:
        _embedder = build_embedder(_settings)
    return _embedder


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    # A child forked after the parent used the database (the sweeper runs there) must not
    # share the parent's pooled connections.
    sync_engine().dispose(close=False)
    # Loading the local model takes seconds, more than Celery allows a child to start, so it
    # loads in a thread of the child; the first batch waits for it (the embedder's lock).
    if _settings.embedder == "local":
        threading.Thread(target=embedder().embed, args=(["warm-up"],), daemon=True).start()


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _embedder is not None:
        _embedder.close()


@lru_cache
def slots() -> EmbedSlots:
    """This process's share of EMBED_MAX_CONCURRENCY (no cap for the in-process model)."""
    limit = 0 if _settings.embedder == "local" else _settings.embed_max_concurrency
    target = _settings.ollama_url if _settings.embedder == "ollama" else _settings.openai_url
    redis = Redis.from_url(_settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return EmbedSlots(redis, target, limit, lease_s=_settings.embed_timeout_s + 10)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Full-jitter exponential backoff (AWS architecture blog), never sooner than Retry-After."""
    ceiling = min(
        _settings.retry_backoff_max_s, _settings.retry_backoff_s * 2 ** max(attempt - 1, 0)
    )
    delay = random.uniform(0, ceiling)
    return max(delay, min(retry_after or 0.0, _settings.retry_backoff_max_s))


RequestIds = Mapping[str, str | None]  # event id -> request id of the message that named it


def process(events: Sequence[store.Pending], rids: RequestIds | None = None) -> None:
    """Embed and store ``events``; on a permanent error, bisect to find the bad input."""
    if not events:
        return
    model = embedder()
    try:
        vectors = model.embed([e.text for e in events])
    except TransientEmbedError as error:
        retry(events, str(error), error.retry_after, rids)
        return
    except PermanentEmbedError as error:
        if len(events) == 1:
            log.warning("event %s failed permanently: %s", events[0].id, error)
            metrics.DEAD_LETTERS.inc(store.dead_letter(events, str(error)))
            return
        middle = len(events) // 2
        process(events[:middle], rids)
        process(events[middle:], rids)
        return
    store.save_vectors(events, vectors, model.model)


def retry(
    events: Sequence[store.Pending],
    error: str,
    retry_after: float | None,
    rids: RequestIds | None = None,
) -> None:
    """Schedule the events' next attempt, or dead-letter those out of attempts."""
    limit = _settings.embed_max_attempts
    exhausted = [e for e in events if e.attempts >= limit]
    again = [e for e in events if e.attempts < limit]
    if exhausted:
        dead = store.dead_letter(exhausted, f"gave up after {limit} attempts: {error}")
        metrics.DEAD_LETTERS.inc(dead)
    if again:
        delays = [backoff(e.attempts, retry_after) for e in again]
        store.schedule_retry(again, error, delays, rids)
        metrics.RETRIES.inc(len(again))
    log.info("retrying %d events, %d exhausted: %s", len(again), len(exhausted), error)


def run_batch(ids: Sequence[str], rids: RequestIds | None = None) -> str | None:
    """One group of messages, start to end, an embedder call per ``EMBED_BATCH_SIZE`` events;
    returns :data:`REQUEUE` when the database was unreachable."""
    size = _settings.embed_batch_size
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        if run_chunk(unique[start : start + size], rids) == REQUEUE:
            # Chunks already stored are skipped when the messages come back.
            return REQUEUE
    return None


def run_chunk(ids: Sequence[str], rids: RequestIds | None = None) -> str | None:
    """Claim (an attempt counted), embed and store up to one batch of events, holding one of
    the embedder's EMBED_MAX_CONCURRENCY slots; taken before the claim, so that waiting for a
    busy embedder costs no attempt (no slot in time: the messages go back to the queue)."""
    events: list[store.Pending] = []
    try:
        with slots().slot(wait_s=_settings.embed_timeout_s):
            claim_and_process(ids, rids, events)
    except SlotsBusy as error:
        log.info("embedder busy, batch of %d goes back to the queue: %s", len(ids), error)
        return REQUEUE
    except DB_ERRORS as error:
        # Retrying at once would spin while the database restarts: pause (jittered), then
        # hand the messages back. The attempt claimed (if any) stays counted.
        log.warning("database unavailable, batch of %d goes back to the queue: %r", len(ids), error)
        time.sleep(random.uniform(0.5, min(DB_PAUSE_MAX_S, _settings.retry_backoff_max_s)))
        return REQUEUE
    except SoftTimeLimitExceeded:
        log.warning("batch of %d over its time limit; retrying its events", len(events))
        try:
            retry(events, "the batch exceeded its time limit", None, rids)
        except DB_ERRORS:
            return REQUEUE
    return None


def claim_and_process(
    ids: Sequence[str], rids: RequestIds | None, events: list[store.Pending]
) -> None:
    """The body of :func:`run_chunk`; ``events`` receives the claimed events (its time-limit
    handler retries them)."""
    events += store.claim(ids, _settings.sweep_after_s)
    # A batch that never finished (its worker was killed) may have used the last attempt.
    spent = [e for e in events if e.attempts > _settings.embed_max_attempts]
    if spent:
        last = spent[0].error or "the worker was lost during the batch"
        dead = store.dead_letter(
            spent, f"gave up after {_settings.embed_max_attempts} attempts: {last}"
        )
        metrics.DEAD_LETTERS.inc(dead)
    live = [e for e in events if e.attempts <= _settings.embed_max_attempts]
    live, reused = store.sift(live, embedder().model)
    metrics.EMBEDDINGS_REUSED.inc(reused)
    for part in budgeted(live, _settings.embed_batch_max_chars):
        process(part, rids)


def budgeted(events: Sequence[store.Pending], max_chars: int) -> list[list[store.Pending]]:
    """Consecutive events in parts of at most ``max_chars`` characters of text, one embedder
    call each (a longer text is a part of its own): a batch of long texts must not become
    one request of many megabytes, nor one over what the embedder accepts at a time."""
    parts: list[list[store.Pending]] = []
    chars = 0
    for event in events:
        if not parts or chars + len(event.text) > max_chars:
            parts.append([])
            chars = 0
        parts[-1].append(event)
        chars += len(event.text)
    return parts


def groups(requests: Collection[Any], size: int) -> list[list[Any]]:
    """Consecutive requests holding up to ``size`` event ids together (a message naming more
    is a group of its own), so that one pool job is about one embedder call and the time
    limits of a job keep their meaning."""
    out: list[list[Any]] = []
    count = 0
    for request in requests:
        n = max(len(request.args or ()), 1)
        if not out or count + n > size:
            out.append([])
            count = 0
        out[-1].append(request)
        count += n
    return out


class ReliableBatches(Batches):
    """celery-batches acks a late-acked batch only when the pool job returns a result; a child
    killed mid-batch or a hard time limit would leave its messages unacked in this worker
    until the broker's visibility timeout. Here: a lost child gives the messages back at once
    (what ``task_reject_on_worker_lost`` does for ordinary tasks); a hard time limit acks
    them (the events stay queued with an attempt counted, and the sweeper brings them back,
    so a batch that always hangs ends in the dead-letter table, not in a loop); a batch
    whose result is :data:`REQUEUE` gives them back too."""

    def flush(self, requests: Collection[Any]) -> Any:
        for group in groups(requests, _settings.embed_batch_size):
            self._apply(group)

    def _apply(self, requests: list[Any]) -> Any:
        batch = ([SimpleRequest.from_request(r) for r in requests],)

        def on_return(result: object) -> None:
            for request in requests:
                if result == REQUEUE:
                    request.reject(requeue=True)
                else:
                    request.acknowledge()

        def on_error(info: ExceptionInfo) -> None:
            kind = getattr(info, "type", None)
            lost = isinstance(kind, type) and issubclass(kind, WorkerLostError)
            name = kind.__name__ if isinstance(kind, type) else repr(info)
            log.warning("batch of %d ended abnormally (%s)", len(requests), name)
            for request in requests:
                if lost:
                    request.reject(requeue=True)
                else:
                    request.acknowledge()

        return self._pool.apply_async(
            apply_batches_task, (self, batch, 0, None), callback=on_return, error_callback=on_error
        )


@app.task(
    base=ReliableBatches,
    name=TASK_EMBED,
    flush_every=_settings.embed_batch_size,
    flush_interval=max(_settings.embed_batch_wait_ms, 1) / 1000,
    acks_late=True,
)
@observed(TASK_EMBED)
def embed_events(requests: list[SimpleRequest]) -> str | None:
    """Embed every queued event named by a group of buffered messages."""
    rids = {
        str(event_id): (r.request_dict or {}).get("request_id")
        for r in requests
        for event_id in r.args
    }
    return run_batch([str(event_id) for r in requests for event_id in r.args], rids)
