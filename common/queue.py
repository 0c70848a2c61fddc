"""Task and queue names, and the producer side of the broker shared by the gateway.

Task names follow ``<noun>.<verb>``; the gateway sends by name and never imports the
worker's code.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache

import orjson
from celery import Celery
from celery.utils import uuid
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis

from common.settings import Settings

TASK_EMBED = "events.embed"
QUEUE_EMBED = "embed"

# The one place that knows how kombu's Redis transport (pinned in constraints.txt) lays a
# queue out: one list per priority step, the bare name for step 0 and ``name + sep + step``
# for the others, and the messages taken but not acknowledged in one hash. Messages without
# a priority (all of ours) go to the bare list; the others are counted in case someone sets
# one. tests/test_queue_depth.py checks this against kombu itself and a real Redis.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
QUEUE_KEYS = [QUEUE_EMBED, *(f"{QUEUE_EMBED}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS[1:])]
UNACKED_KEY = "unacked"


def queue_depth(redis: SyncRedis) -> int:
    """Messages waiting in the embed queue (every priority), in one round trip."""
    return queue_figures_sync(redis)[0]


def queue_figures_sync(redis: SyncRedis) -> tuple[int, int]:
    """:func:`queue_figures` for blocking callers (the sweeper, ``eventsearch status``)."""
    with redis.pipeline(transaction=False) as pipe:
        for key in QUEUE_KEYS:
            pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        *depths, unacked = pipe.execute()
    return sum(int(d) for d in depths), int(unacked)


async def queue_figures(redis: AsyncRedis) -> tuple[int, int]:
    """Messages waiting in the embed queue and taken but not acknowledged, in one round trip
    (raises redis' errors)."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in QUEUE_KEYS:
            pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        *depths, unacked = await pipe.execute()
    return sum(int(d) for d in depths), int(unacked)


@lru_cache
def producer(redis_url: str) -> Celery:
    """A Celery app used only to publish (the gateway's side of the broker), one a process
    for each broker: it holds the connection pool."""
    app = Celery("eventsearch-gateway", broker=redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE_EMBED,
        broker_connection_retry_on_startup=True,
        # A publish while Redis is down must fail fast (the gateway answers 503), not retry
        # for minutes while the client's request hangs.
        broker_connection_max_retries=0,
        broker_transport_options={
            "max_retries": 0,
            "socket_timeout": 3,
            "socket_connect_timeout": 3,
        },
        task_publish_retry=False,
    )
    return app


def enqueue_embed(
    event_ids: Sequence[str],
    settings: Settings,
    request_id: str | None = None,
    chunk: int | None = None,
) -> None:
    """Publish embed messages on one broker connection (blocking), ``chunk`` ids a message
    (default: a worker batch, ``EMBED_BATCH_SIZE``).

    A batch of 1,000 events is then 16 messages (16 LPUSHes on one connection) rather than
    1,000, yet still spreads over the workers."""
    app = producer(settings.redis_url)
    headers = {"request_id": request_id} if request_id else {}
    with app.producer_or_acquire() as publisher:
        for args in _chunks(event_ids, chunk or settings.embed_batch_size):
            app.send_task(
                TASK_EMBED,
                args=args,
                queue=QUEUE_EMBED,
                producer=publisher,
                headers=headers,
                retry=False,
            )


# What kombu's Redis transport sets on every message it LPUSHes (kombu.transport.virtual's
# ``prepare_message`` and ``_inplace_augment_message``): delivery mode 2 is Celery's
# default ``persistent``, the body is base64-encoded, and Celery sends a task for a direct
# queue through the anonymous exchange, the routing key naming the queue.
DELIVERY_MODE = 2
BODY_ENCODING = "base64"
CONTENT_TYPE, CONTENT_ENCODING = "application/json", "utf-8"  # kombu's "json" serializer


def _chunks(event_ids: Sequence[str], chunk: int) -> list[list[str]]:
    return [list(event_ids[start : start + chunk]) for start in range(0, len(event_ids), chunk)]


def embed_messages(
    event_ids: Sequence[str],
    settings: Settings,
    request_id: str | None = None,
    chunk: int | None = None,
) -> list[bytes]:
    """The messages :func:`enqueue_embed` would publish, byte for byte in layout, for the
    caller to ``LPUSH`` onto :data:`QUEUE_EMBED` itself (the gateway, from its async Redis
    client, in one round trip with whatever else it sends then; issue 16).

    Celery builds the task message (``app.amqp.as_task_v2``, what ``send_task`` calls, with
    the producer app's settings: origin, ``reply_to``, protocol 2); what is added around it
    is kombu's Redis transport's envelope (kombu pinned in constraints.txt). Our messages
    have no priority, so they go to the bare list (step 0 of :data:`QUEUE_KEYS`); the
    ``unacked`` hash is written by the consumer only. tests/test_queue_messages.py checks
    the result against what kombu itself pushes, and that a real worker consumes it."""
    app = producer(settings.redis_url)
    reply_to = app.thread_oid
    messages = []
    for args in _chunks(event_ids, chunk or settings.embed_batch_size):
        task_id = uuid()
        headers, properties, body, _ = app.amqp.as_task_v2(
            task_id, TASK_EMBED, args, {}, reply_to=reply_to
        )
        if request_id:
            headers["request_id"] = request_id
        # Encoded with orjson rather than kombu's stdlib json (its "json" serializer): the
        # same JSON, keys in the same order, without the spaces (issue 16: ~1% of a POST).
        message = {
            "body": base64.b64encode(orjson.dumps(body)).decode("ascii"),
            "content-encoding": CONTENT_ENCODING,
            "content-type": CONTENT_TYPE,
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": DELIVERY_MODE,
                "delivery_info": {"exchange": "", "routing_key": QUEUE_EMBED},
                "priority": 0,
                "body_encoding": BODY_ENCODING,
                "delivery_tag": uuid(),
            },
        }
        messages.append(orjson.dumps(message))
    return messages
