"""``events.reembed``: embed a batch of already embedded events again with this worker's
model and chunking, and replace their chunk sets whole, in one transaction (``eventsearch
reembed`` publishes the batches).

Only rows still ``embedded`` and not yet on this model and chunking are touched, so a
redelivered batch writes nothing twice and a deleted event stays deleted. Transient embedder
failures retry with the embed task's backoff; a permanently refused text keeps its old
chunk set (the CLI reports what is left).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from celery import Task
from sqlalchemy import or_, select, text

from common import chunk_store
from common.db import sync_sessions
from common.embedders import PermanentEmbedError, TransientEmbedError
from common.models import Event, EventStatus
from common.reembed import TASK_REEMBED
from common.settings import get_settings
from workers import chunk_embed, store
from workers.app import app
from workers.embed import backoff, embedder

log = logging.getLogger("eventsearch.worker")


def load(ids: Sequence[str], model: str) -> list[store.Pending]:
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
    return [store.Pending(r.id, r.text, 0) for r in rows]


SAVE = text(
    "UPDATE events e SET model = :model, chunking = :chunking, embedded_at = now(),"
    " updated_at = now() FROM (SELECT DISTINCT event_id FROM chunk_stage) s"
    " WHERE e.id = s.event_id AND e.status = 'embedded' RETURNING e.id"
)


def save(sets: Sequence[chunk_store.ChunkSet], model: str) -> int:
    """Replace the chunk sets of events still embedded; returns events changed."""
    if not sets:
        return 0
    chunking = chunk_embed.chunker().name
    with sync_sessions()() as session, session.begin():
        chunk_store.stage(session, sets)
        done = [r.id for r in session.execute(SAVE, {"model": model, "chunking": chunking})]
        chunk_store.replace(session, done, model)
    return len(done)


def embed_each(events: Sequence[store.Pending]) -> list[chunk_store.ChunkSet]:
    """One event at a time, after a batch was refused: only the bad text is left out."""
    sets = []
    for event in events:
        try:
            sets += chunk_embed.embed_sets(embedder(), [event])
        except PermanentEmbedError as error:
            log.warning("event %s not re-embedded: %s", event.id, error)
    return sets


@app.task(bind=True, name=TASK_REEMBED, acks_late=True, max_retries=None)
def reembed_events(self: Task, ids: list[str], model: str) -> int:
    """Re-embed ``ids`` with ``model``, which must be this worker's; returns events updated."""
    mine = embedder().model
    if model != mine:
        log.error("reembed for model %r refused: this worker runs %r", model, mine)
        return 0
    events = load(ids, model)
    if not events:
        return 0
    try:
        sets = chunk_embed.embed_sets(embedder(), events)
    except TransientEmbedError as error:
        attempt = self.request.retries + 1
        if attempt >= get_settings().embed_max_attempts:
            log.error("reembed of %d events gave up: %s", len(events), error)
            return 0
        raise self.retry(countdown=backoff(attempt, error.retry_after)) from None
    except PermanentEmbedError:
        sets = embed_each(events)
    return save(sets, model)
