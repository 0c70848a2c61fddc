"""``events.reembed``: embed a batch of already embedded events again with this worker's
model and chunking, and replace their chunk sets whole, in one transaction (``eventsearch
reembed`` publishes the batches).

Only rows still ``embedded`` and not yet on this model and chunking are touched, so a
redelivered batch writes nothing twice and a deleted event stays deleted. Failures follow
the one retry policy (workers/retry_policy.py): transient ones retry with its backoff up to
``EMBED_MAX_ATTEMPTS``; out of attempts, or refused for good, an event keeps its old chunk
set and gets the error and a dead letter (the CLI reports what is left).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Task, shared_task
from sqlalchemy import or_, select

from common.chunk_store import ChunkSet
from common.db import sync_sessions
from common.embedders import PermanentEmbedError, TransientEmbedError
from common.lifecycle import apply, transitions
from common.lifecycle.transitions import Pending
from common.models import Event, EventStatus
from common.reembed import TASK_REEMBED
from common.settings import Settings
from workers import chunk_embed, context
from workers.context import embedder
from workers.retry_policy import backoff, gave_up, reembed_gave_up

log = logging.getLogger("eventsearch.worker")


def load(ids: Sequence[str], model: str) -> list[Pending]:
    """The events among ``ids`` still embedded with another model or chunking."""
    with sync_sessions()() as session:
        rows = session.execute(
            select(Event.id, Event.text).where(
                Event.id.in_([uuid.UUID(i) for i in ids]),
                Event.status == EventStatus.embedded,
                or_(
                    Event.model.is_distinct_from(model),
                    Event.chunking.is_distinct_from(chunk_embed.chunker().name),
                ),
            )
        ).all()
    return [Pending(r.id, r.text, 0) for r in rows]


def save(sets: Sequence[ChunkSet], model: str) -> int:
    return apply(transitions.reembed, sets, model, chunk_embed.chunker().name)


def embed_each(events: Sequence[Pending], model: str, settings: Settings) -> list[ChunkSet]:
    """One event at a time, after a batch was refused for good: only the bad text is left
    out, dead-lettered with its old chunk set kept (a transient failure here waits for the
    next run: the text is still stale)."""
    sets = []
    for event in events:
        try:
            sets += chunk_embed.embed_sets(embedder(), [event], settings)
        except PermanentEmbedError as error:
            reembed_gave_up([str(event.id)], model, chunk_embed.chunker().name, str(error), 1)
            continue
        except TransientEmbedError as error:
            log.warning("event %s not re-embedded now: %s", event.id, error)
            continue
    return sets


@shared_task(bind=True, name=TASK_REEMBED, acks_late=True, max_retries=None)
def reembed_events(self: Task, ids: list[str], model: str) -> int:
    """Re-embed ``ids`` with ``model``, which must be this worker's; returns rows updated.
    Failures follow workers/retry_policy.py: transient ones are retried with its backoff up
    to EMBED_MAX_ATTEMPTS, then the events keep their old vector and get a dead letter."""
    mine = embedder().model
    if model != mine:
        log.error("reembed for model %r refused: this worker runs %r", model, mine)
        return 0
    events = load(ids, model)
    if not events:
        return 0
    settings = context.settings()
    queue = settings.queue
    try:
        sets = chunk_embed.embed_sets(embedder(), events, settings)
    except TransientEmbedError as error:
        attempt = self.request.retries + 1
        if attempt >= queue.embed_max_attempts:
            ids = [str(e.id) for e in events]
            why = gave_up(str(error), queue)
            reembed_gave_up(ids, model, chunk_embed.chunker().name, why, attempt)
            return 0
        raise self.retry(countdown=backoff(attempt, error.retry_after, queue)) from None
    except PermanentEmbedError:
        sets = embed_each(events, model, settings)
    return save(sets, model)
