"""The sweeper: publishes queued events whose retry is due, or whose message is presumed lost.

Choice: a thread in each worker's main process (a Celery bootstep), not Celery beat. Beat is
one more process to deploy and must run exactly once (``worker --beat`` is refused with
several workers), whereas this runs wherever a worker runs and needs no leader: each round
claims its events with one atomic ``UPDATE ... FOR UPDATE SKIP LOCKED`` that moves their
``due_at`` ahead, so two sweepers never publish the same event in the same round, and a
message published twice anyway is harmless (the task only touches ``queued`` rows). It does
not run in the pool children, so a worker with N children still sweeps once.

Two kinds of events come due: retries (the task set ``due_at`` = now + backoff; publishing
them from here means no ETA message waits in a worker's memory, where a kill would lose it
until the visibility timeout) and hand-offs gone astray (the gateway commits the row, then
publishes; a message lost by the broker, or held by a worker that died, leaves the event
queued past ``SWEEP_AFTER_S``). Events no worker has taken yet are only swept when the
broker queue is empty: during a backlog their messages are most likely still waiting in it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from redis import Redis

from common.lifecycle import apply
from common.lifecycle import transitions as t
from common.lifecycle.handoff import hand_off
from common.queue import queue_depth
from common.settings import Settings
from workers import context

log = logging.getLogger("eventsearch.sweeper")
BATCH = 1000  # events per round; a larger backlog drains over several rounds


def sweep_once(broker: Redis, settings: Settings) -> int:
    """One round: claim what is due and publish it; returns how many events were published."""
    backlog = queue_depth(broker)
    due = apply(t.claim_due, settings.sweep_after_s, BATCH, unclaimed=backlog == 0)
    if not due:
        return 0
    by_request: dict[str | None, list[str]] = {}
    for event_id, request_id in due:
        by_request.setdefault(request_id, []).append(event_id)
    # A worker batch of ids a message, like the batch endpoint, on the shared producer (which
    # fails fast when Redis is down rather than retrying inside this round); each with the
    # request id its event came with, so the logs of every attempt join up. A failed publish
    # leaves its events due now: the next round tries again (common/lifecycle/handoff.py),
    # and so does the rest of the round, unpublished (one refused publish is enough to know
    # the broker is down: a round of hundreds of request ids must not try each in turn).
    published = 0
    groups = list(by_request.items())
    for index, (request_id, group) in enumerate(groups):
        if not hand_off(group, request_id, "requeue", settings):
            apply(t.requeue, [i for _, rest in groups[index + 1 :] for i in rest])
            break
        published += len(group)
    return published


class Sweeper(bootsteps.StartStopStep):
    """Runs :func:`sweep_once` every ``SWEEP_INTERVAL_S`` in a daemon thread of the worker."""

    # Started after the pool has forked its children, so no child inherits this thread's state.
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        self._thread = threading.Thread(target=self._loop, name="eventsearch-sweeper", daemon=True)
        self._thread.start()

    def stop(self, parent: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        settings = context.settings()
        broker = Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
        while not self._stop.wait(settings.sweep_interval_s):
            try:
                published = sweep_once(broker, settings)
            except Exception as error:  # a store is down: say so, try again next round
                log.warning("sweep failed: %r", error)
                continue
            if published:
                log.info("sweeper published %d queued events", published)
