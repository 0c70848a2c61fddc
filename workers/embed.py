"""The embed task: a message names one event (a single POST) or up to ``EMBED_BATCH_SIZE``
(a batch POST, the sweeper); celery-batches buffers them and :class:`ReliableBatches` hands
them to :func:`embed_events` in groups of up to ``EMBED_BATCH_SIZE`` events (or whatever
arrived within ``EMBED_BATCH_WAIT_MS``). Each event's text is embedded as chunks
(workers/chunk_embed.py): an embedder call holds up to ``EMBED_BATCH_SIZE`` chunks,
``EMBED_BATCH_MAX_TOKENS`` tokens and ``EMBED_BATCH_MAX_CHARS`` characters, and an event's
whole chunk set is stored in one transaction (it is ``embedded`` only then).

Outcomes, per event:
- embedded: its chunk set is stored (only if the event is still ``queued``: exactly-once
  effect, one complete set or none);
- transient failure (timeout, connection error, 429, 5xx, the batch's soft time limit): the
  error is kept and the event becomes due again after a full-jitter exponential backoff,
  never sooner than the embedder's ``Retry-After`` (capped); the sweeper publishes it then.
  After ``EMBED_MAX_ATTEMPTS`` it is dead-lettered with its last error;
- permanent failure (400/404, NaN or infinite values, wrong dimension): the batch is split in
  halves until the bad input is alone, and that event alone is dead-lettered at once.

The database being down is no event's fault: no attempt is lost, the batch's messages go
back to the broker after a short pause (see :class:`ReliableBatches`).

By concern: ``workers/context.py`` (this process's settings, embedder and embed slots),
``workers/retry_policy.py`` (backoff, attempts, dead letters), ``workers/batching.py``
(parts by chunks, bisection), ``workers/chunk_embed.py`` (chunks, embedder calls),
``workers/reliable_batches.py`` (the celery-batches subclass); this module is the task and
a batch's course, start to end.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery_batches import SimpleRequest
from sqlalchemy import exc as sa_exc

from common import metrics
from common.embed_slots import SlotsBusy
from common.lifecycle import apply, subjects
from common.lifecycle import transitions as t
from common.lifecycle.transitions import Pending
from common.queue import TASK_EMBED
from common.settings import Settings
from workers import chunk_embed, context
from workers.batching import budgeted, process
from workers.context import embedder, slots
from workers.observability import observed
from workers.reliable_batches import REQUEUE, ReliableBatches
from workers.retry_policy import RequestIds, dead_letter_spent, retry_or_dead_letter

log = logging.getLogger("eventsearch.worker")

DB_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError)
DB_PAUSE_MAX_S = 5.0


def run_batch(ids: Sequence[str], rids: RequestIds | None = None) -> str | None:
    """One group of messages, start to end, an embedder call per ``EMBED_BATCH_SIZE`` events;
    returns :data:`REQUEUE` when the database was unreachable. Reads the worker's settings
    (workers/context.py) once and passes them on."""
    settings = context.settings()
    size = settings.embed_batch_size
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        if run_chunk(unique[start : start + size], settings, rids) == REQUEUE:
            # Chunks already stored are skipped when the messages come back.
            return REQUEUE
    return None


def run_chunk(ids: Sequence[str], settings: Settings, rids: RequestIds | None) -> str | None:
    """Claim (an attempt counted), embed and store up to one batch of events, holding one of
    the embedder's EMBED_MAX_CONCURRENCY slots; taken before the claim, so that waiting for a
    busy embedder costs no attempt (no slot in time: the messages go back to the queue)."""
    events: list[Pending] = []
    try:
        with slots().slot(wait_s=settings.embed_timeout_s):
            claim_and_process(ids, rids, events, settings)
    except SlotsBusy as error:
        log.info("embedder busy, batch of %d goes back to the queue: %s", len(ids), error)
        return REQUEUE
    except DB_ERRORS as error:
        # Retrying at once would spin while the database restarts: pause (jittered), then
        # hand the messages back. The attempt claimed (if any) stays counted.
        log.warning("database unavailable, batch of %d goes back to the queue: %r", len(ids), error)
        time.sleep(random.uniform(0.5, min(DB_PAUSE_MAX_S, settings.retry_backoff_max_s)))
        return REQUEUE
    except SoftTimeLimitExceeded:
        log.warning("batch of %d over its time limit; retrying its events", len(events))
        try:
            retry_or_dead_letter(
                events, "the batch exceeded its time limit", None, settings.queue, rids
            )
        except DB_ERRORS:
            return REQUEUE
    return None


def claim_and_process(
    ids: Sequence[str], rids: RequestIds | None, events: list[Pending], settings: Settings
) -> None:
    """The body of :func:`run_chunk`; ``events`` receives the claimed events (its time-limit
    handler retries them)."""
    events += apply(t.claim, ids, settings.sweep_after_s)
    live = sift(dead_letter_spent(events, settings.queue))
    for part in budgeted(live, settings):
        process(part, settings, rids)


def sift(events: list[Pending]) -> list[Pending]:
    """The claimed events still to embed: versions of a subject that are not current, or
    whose text is unchanged, need no embedder call (``common/lifecycle/subjects.sift``)."""
    versions = [e.id for e in events if e.subject is not None]
    if not versions:
        return events
    stale, reused = apply(subjects.sift, versions, embedder().model, chunk_embed.chunker().name)
    metrics.EMBEDDINGS_REUSED.inc(len(reused))
    return [e for e in events if e.id not in stale and e.id not in reused]


@shared_task(base=ReliableBatches, name=TASK_EMBED, acks_late=True)
@observed(TASK_EMBED)
def embed_events(requests: list[SimpleRequest]) -> str | None:
    """Embed every queued event named by a group of buffered messages."""
    rids = {
        str(event_id): (r.request_dict or {}).get("request_id")
        for r in requests
        for event_id in r.args
    }
    return run_batch([str(event_id) for r in requests for event_id in r.args], rids)
