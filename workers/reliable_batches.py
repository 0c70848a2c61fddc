"""celery-batches with late acks that hold: :class:`ReliableBatches` replaces its ``flush``.

It uses celery-batches internals (``self._pool``, set in ``Strategy``; ``apply_batches_task``
and its arguments; ``SimpleRequest.from_request``; ``flush_every``/``flush_interval`` read
in ``Strategy``), so celery-batches is pinned to one version (pyproject.toml,
constraints.txt) and tests/test_celery_batches_pin.py fails when any of them changes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from workers import context

log = logging.getLogger("eventsearch.worker")

REQUEUE = "requeue"  # the batch's result when its messages must go back to the broker


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

    # celery-batches reads these when the worker starts consuming (Strategy), not at import.
    @property
    def flush_every(self) -> int:
        return context.settings().embed_batch_size

    @property
    def flush_interval(self) -> float:
        return max(context.settings().embed_batch_wait_ms, 1) / 1000

    def flush(self, requests: Collection[Any]) -> Any:
        for group in groups(requests, context.settings().embed_batch_size):
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
