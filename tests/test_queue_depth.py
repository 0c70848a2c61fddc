"""Queue depth is read in one place (common/queue.py), from kombu's Redis key layout; this
checks that layout against the pinned kombu itself and against messages in a real Redis."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

import redis
import redis.asyncio
from celery import Celery
from kombu.transport.redis import Channel

from common.queue import (
    PRIORITY_SEP,
    PRIORITY_STEPS,
    QUEUE_EMBED,
    QUEUE_KEYS,
    TASK_EMBED,
    UNACKED_KEY,
    queue_depth,
    queue_figures,
    queue_figures_sync,
)
from stack.redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent


class _Keys:
    """Just enough of a kombu Redis channel to ask it for its key names."""

    sep = Channel.sep
    priority_steps = Channel.priority_steps
    priority = Channel.priority
    _q_for_pri = Channel._q_for_pri


def test_the_key_layout_is_kombus() -> None:
    assert f"kombu=={version('kombu')}" in (ROOT / "constraints.txt").read_text()
    assert (Channel.sep, list(Channel.priority_steps)) == (PRIORITY_SEP, list(PRIORITY_STEPS))
    assert Channel.unacked_key == UNACKED_KEY
    keys = _Keys()
    assert [keys._q_for_pri(QUEUE_EMBED, p) for p in PRIORITY_STEPS] == QUEUE_KEYS


def test_depth_counts_every_message_in_a_real_redis(own_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.delete(*QUEUE_KEYS)
    app = Celery("depth-test", broker=own_redis.url)
    with app.producer_or_acquire() as publisher:
        for priority in (None, None, 0, 5, 9):
            app.send_task(
                TASK_EMBED, args=["x"], queue=QUEUE_EMBED, producer=publisher, priority=priority
            )
    assert [client.llen(key) for key in QUEUE_KEYS] == [3, 1, 0, 1]  # 5 is step 3, 9 step 9
    assert queue_depth(client) == 5

    async def figures() -> tuple[int, int]:
        async with redis.asyncio.Redis.from_url(own_redis.url) as conn:
            return await queue_figures(conn)

    assert asyncio.run(figures()) == (5, 0) == queue_figures_sync(client)
    client.delete(*QUEUE_KEYS)
    assert queue_depth(client) == 0
