"""Publish after commit: the one path by which committed events reach the broker.

Every publisher of embed work goes through here: ingest (single and batch), dead-letter
replay (gateway and CLI), the sweeper, and ``eventsearch reembed``. The rows are always
committed first, so a message never names an event the worker cannot find.

**The policy when the broker is down** is one rule: a hand-off that fails is never lost and
never waits ``SWEEP_AFTER_S``; whoever can give the failure back to a caller who will retry
does so and leaves nothing behind, everyone else leaves the rows to the sweeper.

- ``if_down="withdraw"`` (ingest: a client waits and retries on 503): the rows are taken
  back (transition ``withdraw``) and :class:`QueueUnavailable` (503 ``queue_unavailable`` +
  ``Retry-After``) is raised; the client's retry starts afresh, nothing is half-written.
- ``if_down="requeue"`` (dead-letter replay, the sweeper): the rows stay ``queued`` and are
  made due now (transition ``requeue``); the sweeper publishes them at its next round once
  the broker answers. The call returns ``False``; replay still answers 202, since the events
  are durably queued (a 503 would invite a retry that finds no dead letter to replay).
- re-embedding writes nothing before it publishes (the rows stay ``embedded`` with their old
  vector), so :func:`publish_reembed` raises :class:`QueueUnavailable` and the CLI reports
  it; running ``eventsearch reembed`` again resumes with what is still stale.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.errors import ServiceUnavailable
from common.lifecycle import apply, transitions
from common.settings import Settings

log = logging.getLogger("eventsearch.handoff")

IfDown = Literal["withdraw", "requeue"]


class QueueUnavailable(ServiceUnavailable):
    """The broker refused a hand-off; what was committed has been dealt with per policy."""

    def __init__(self, error: BaseException, what: str) -> None:
        super().__init__(
            f"the queue is unavailable ({type(error).__name__}); {what}, retry later",
            code="queue_unavailable",
        )


def _publish(event_ids: Sequence[str], request_id: str | None, settings: Settings) -> None:
    from common.queue import enqueue_embed

    enqueue_embed(event_ids, settings, request_id)


def hand_off(
    event_ids: Sequence[str], request_id: str | None, if_down: IfDown, settings: Settings
) -> bool:
    """Publish embed messages for committed events (blocking). Returns ``True`` once they are
    on the queue; when the broker is down, applies ``if_down`` (in a transaction of its own)
    and raises :class:`QueueUnavailable` (``withdraw``) or returns ``False`` (``requeue``)."""
    if not event_ids:
        return True
    try:
        _publish(event_ids, request_id, settings)
    except Exception as error:
        if if_down == "withdraw":
            apply(transitions.withdraw, event_ids)
            raise QueueUnavailable(error, "nothing was recorded") from error
        apply(transitions.requeue, event_ids)
        log.warning("%d events not published now, the sweeper will: %r", len(event_ids), error)
        return False
    return True


class SentAlong(Protocol):
    """Commands a caller sends in the hand-off's round trip, after the messages (the
    idempotency record of a single POST): they are not part of the hand-off, so their
    failure is theirs to report and does not fail it."""

    def queue(self, pipe: Pipeline) -> None:
        """Add the commands to ``pipe``."""

    def sent(self, results: list[Any]) -> None:
        """Their results, in order; a failed command's is its exception."""


async def hand_off_async(
    session: AsyncSession | AsyncConnection,
    redis: Redis,
    event_ids: Sequence[str],
    request_id: str | None,
    if_down: IfDown,
    settings: Settings,
    along: SentAlong | None = None,
) -> bool:
    """:func:`hand_off` for the gateway: the messages (common.queue.embed_messages, the ones
    kombu would send) are pushed from the gateway's own async Redis client, ``along``'s
    commands in the same round trip, with no thread hop (issue 16); the policy's transition
    runs on the request's session (or autocommit connection), committed at once (the rows
    were committed before).

    The hand-off fails when the round trip does or a push is refused; ``along`` is then
    not known to have been applied or not (the caller undoes it, as it would have without
    the hand-off)."""
    if not event_ids:
        return True
    from common.queue import QUEUE_EMBED, embed_messages

    messages = embed_messages(event_ids, settings, request_id)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.lpush(QUEUE_EMBED, *messages)
            if along is not None:
                along.queue(pipe)
            pushed, *results = await pipe.execute(raise_on_error=False)
        if isinstance(pushed, Exception):
            raise pushed
    except Exception as error:
        if if_down == "withdraw":
            await session.run_sync(transitions.withdraw, event_ids)
            await session.commit()
            raise QueueUnavailable(error, "nothing was recorded") from error
        await session.run_sync(transitions.requeue, event_ids)
        await session.commit()
        log.warning("%d events not published now, the sweeper will: %r", len(event_ids), error)
        return False
    if along is not None:
        along.sent(results)
    return True


def publish_reembed(batches: Sequence[list[str]], model: str, settings: Settings) -> None:
    """Publish ``events.reembed`` messages; nothing is written before, so a broker that is
    down raises :class:`QueueUnavailable` for the operator to see (the rows keep their old
    vectors, and a later run publishes what is still stale)."""
    from common.reembed import enqueue_reembed

    try:
        enqueue_reembed(batches, model, settings)
    except Exception as error:
        raise QueueUnavailable(error, "no re-embedding was queued by this call") from error
