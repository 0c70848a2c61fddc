"""The one retry policy for a failed embedding, whether it was a first embedding or a
re-embedding: a transient failure (timeout, connection error, 429, 5xx) is retried after a
full-jitter exponential backoff (AWS architecture blog) never sooner than the embedder's
``Retry-After``, up to ``EMBED_MAX_ATTEMPTS`` attempts, then dead-lettered with its last
error; a permanent one (400, NaN, wrong dimension) is dead-lettered at once.

Where the retry waits differs, for a reason: a queued event waits in the database
(``due_at``; the sweeper publishes it when due), while a re-embedding waits in its Celery
message (``countdown``): its event is ``embedded`` and searchable meanwhile, so the sweeper,
which republishes queued events, does not own it; a re-embedding lost with its worker is
found again by the next ``eventsearch reembed`` (it selects what is still stale). Either
way, giving up leaves a dead letter and the error on the event; a re-embedding keeps the
old vector.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence

from common import metrics
from common.lifecycle import apply
from common.lifecycle import transitions as t
from common.lifecycle.transitions import Pending
from common.settings import QueueSettings

log = logging.getLogger("eventsearch.worker")

RequestIds = Mapping[str, str | None]  # event id -> request id of the message that named it


def backoff(attempt: int, retry_after: float | None, queue: QueueSettings) -> float:
    """Seconds before attempt ``attempt + 1``: uniform in [0, min(max, base * 2^(n-1))],
    never sooner than Retry-After (itself capped at RETRY_BACKOFF_MAX_S)."""
    ceiling = min(queue.retry_backoff_max_s, queue.retry_backoff_s * 2 ** max(attempt - 1, 0))
    delay = random.uniform(0, ceiling)
    return max(delay, min(retry_after or 0.0, queue.retry_backoff_max_s))


def gave_up(error: str, queue: QueueSettings) -> str:
    return f"gave up after {queue.embed_max_attempts} attempts: {error}"


def retry_or_dead_letter(
    events: Sequence[Pending],
    error: str,
    retry_after: float | None,
    queue: QueueSettings,
    rids: RequestIds | None = None,
) -> None:
    """Schedule the events' next attempt (the sweeper publishes it when due), or dead-letter
    those out of attempts."""
    limit = queue.embed_max_attempts
    exhausted = [e for e in events if e.attempts >= limit]
    again = [e for e in events if e.attempts < limit]
    if exhausted:
        metrics.DEAD_LETTERS.inc(apply(t.dead_letter, exhausted, gave_up(error, queue)))
    if again:
        delays = [backoff(e.attempts, retry_after, queue) for e in again]
        apply(t.schedule_retry, again, error, delays, rids)
        metrics.RETRIES.inc(len(again))
    log.info("retrying %d events, %d exhausted: %s", len(again), len(exhausted), error)


def dead_letter_spent(events: Sequence[Pending], queue: QueueSettings) -> list[Pending]:
    """Dead-letter the claimed events past their last attempt (a batch that never finished,
    its worker killed, may have used it); returns the others, still to be embedded."""
    limit = queue.embed_max_attempts
    spent = [e for e in events if e.attempts > limit]
    if spent:
        last = spent[0].error or "the worker was lost during the batch"
        metrics.DEAD_LETTERS.inc(apply(t.dead_letter, spent, gave_up(last, queue)))
    return [e for e in events if e.attempts <= limit]


def dead_letter_now(events: Sequence[Pending], error: str) -> None:
    """A permanent failure: no attempt can help."""
    log.warning("event %s failed permanently: %s", events[0].id, error)
    metrics.DEAD_LETTERS.inc(apply(t.dead_letter, events, error))


def reembed_gave_up(
    ids: Sequence[str], model: str, chunking: str, error: str, attempts: int
) -> None:
    """Re-embedding these events with ``model`` and ``chunking`` failed for good: each keeps
    its old vector and gets the error and a dead letter."""
    written = apply(t.reembed_failed, ids, model, chunking, error, attempts)
    metrics.DEAD_LETTERS.inc(written)
    log.warning("re-embedding of %d events with %s gave up: %s", len(ids), model, error)
