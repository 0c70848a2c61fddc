"""Re-embedding after a model change (or a change of chunk settings): which events still carry
another model's vectors or another chunking's set, and
the messages that ask the workers to embed them again.

Shared by ``eventsearch reembed`` (selects and publishes) and the worker task
``events.reembed`` (workers/reembed.py). Rows are updated in place, one batch at a time, and
only while ``embedded``: search keeps answering throughout, from the vectors of its active
model (a gateway on the new model finds more events as the batches land).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from common.chunking import chunking_name
from common.models import Event, EventStatus
from common.queue import QUEUE_EMBED, producer
from common.settings import Settings

TASK_REEMBED = "events.reembed"


def _stale(settings: Settings, tenant: str | None) -> list[ColumnElement[bool]]:
    # Another model's vectors, or chunks made by other chunk settings (NULL: a vector from
    # before chunking, which covers only the start of a long text).
    model, chunking = settings.model_name, chunking_name(settings)
    where: list[ColumnElement[bool]] = [
        Event.status == EventStatus.embedded,
        or_(Event.model.is_distinct_from(model), Event.chunking.is_distinct_from(chunking)),
    ]
    if tenant is not None:
        where.append(Event.tenant == tenant)
    return where


def count_stale(session: Session, settings: Settings, tenant: str | None = None) -> int:
    """Embedded events whose vector is not from ``settings``' model and chunking."""
    return int(session.scalar(select(func.count()).where(*_stale(settings, tenant))) or 0)


def stale_batches(
    session: Session, settings: Settings, tenant: str | None, size: int
) -> Iterator[list[str]]:
    """Their ids, ``size`` at a time, by keyset pagination (no OFFSET over a big table)."""
    after = None
    while True:
        query = select(Event.id).where(*_stale(settings, tenant)).order_by(Event.id).limit(size)
        if after is not None:
            query = query.where(Event.id > after)
        ids = list(session.scalars(query))
        if not ids:
            return
        after = ids[-1]
        yield [str(i) for i in ids]


def enqueue_reembed(batches: Sequence[list[str]], model: str, settings: Settings) -> None:
    """One ``events.reembed`` message per batch, on the embed queue the workers consume.
    ``model`` travels with it: a worker running another model refuses the batch."""
    app = producer(settings.redis_url)
    with app.producer_or_acquire() as publisher:
        for ids in batches:
            app.send_task(TASK_REEMBED, args=[ids, model], queue=QUEUE_EMBED, producer=publisher)
