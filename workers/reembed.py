"""``events.reembed``: embed a batch of already embedded events again with this worker's
model and replace their vectors in place (``eventsearch reembed`` publishes the batches).

Only rows still ``embedded`` and not yet on this model are touched, so a redelivered batch
writes nothing twice and a deleted event stays deleted. Failures follow the one retry
policy (workers/retry_policy.py): transient ones retry with its backoff up to
``EMBED_MAX_ATTEMPTS``; out of attempts, or refused for good, an event keeps its old vector
and gets the error and a dead letter (the CLI reports what is left).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Task, shared_task
from sqlalchemy import select

from common.db import sync_sessions
from common.embedders import PermanentEmbedError, TransientEmbedError
from common.lifecycle import apply, transitions
from common.models import Event, EventStatus
from common.reembed import TASK_REEMBED
from common.settings import get_settings
from workers.embedder import embedder
from workers.retry_policy import backoff, gave_up, reembed_gave_up

log = logging.getLogger("eventsearch.worker")


def load(ids: Sequence[str], model: str) -> list[tuple[uuid.UUID, str]]:
    with sync_sessions()() as session:
        rows = session.execute(
            select(Event.id, Event.text).where(
                Event.id.in_([uuid.UUID(i) for i in ids]),
                Event.status == EventStatus.embedded,
                Event.model.is_distinct_from(model),
            )
        ).all()
    return [(r.id, r.text) for r in rows]


def save(pairs: Sequence[tuple[uuid.UUID, list[float]]], model: str) -> int:
    return apply(transitions.reembed, pairs, model)


def embed_each(
    events: Sequence[tuple[uuid.UUID, str]], model: str
) -> list[tuple[uuid.UUID, list[float]]]:
    """One call per text, after a batch was refused for good: only the bad text is left out,
    dead-lettered with its old vector kept (a transient failure here waits for the next
    run: the text is still stale)."""
    pairs = []
    for event_id, text in events:
        try:
            [vector] = embedder().embed([text])
        except PermanentEmbedError as error:
            reembed_gave_up([str(event_id)], model, str(error), 1)
            continue
        except TransientEmbedError as error:
            log.warning("event %s not re-embedded now: %s", event_id, error)
            continue
        pairs.append((event_id, vector))
    return pairs


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
    try:
        vectors = embedder().embed([text for _, text in events])
        pairs = [(event_id, v) for (event_id, _), v in zip(events, vectors, strict=True)]
    except TransientEmbedError as error:
        attempt = self.request.retries + 1
        if attempt >= get_settings().embed_max_attempts:
            reembed_gave_up([str(i) for i, _ in events], model, gave_up(str(error)), attempt)
            return 0
        raise self.retry(countdown=backoff(attempt, error.retry_after)) from None
    except PermanentEmbedError:
        pairs = embed_each(events, model)
    return save(pairs, model)
