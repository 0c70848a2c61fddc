"""The gateway's embed messages (common.queue.embed_messages, pushed from its async Redis
client by common.lifecycle.handoff.hand_off_async) are the ones kombu pushes: the same
envelope and Celery task message as ``send_task`` through kombu's Redis transport, on the
same list, and a real worker consumes them."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.queue import QUEUE_EMBED, embed_messages, enqueue_embed, producer
from common.settings import Settings, get_settings
from stack.redis import EmbeddedRedis
from tests.conftest import wait_for
from tests.processes import Proc
from tests.reliability_helpers import insert_queued, row

FAR = "2999-01-01T00:00:00Z"  # a hand-off deadline the sweeper never reaches


@pytest.fixture
def own_settings(own_redis: EmbeddedRedis, stack_env: dict[str, str]) -> Settings:
    redis.Redis.from_url(own_redis.url).flushdb()
    return get_settings().model_copy(update={"redis_url": own_redis.url})


def _pushed(url: str) -> list[bytes]:
    """The embed list, oldest first (kombu LPUSHes, the worker BRPOPs)."""
    return list(reversed(redis.Redis.from_url(url).lrange(QUEUE_EMBED, 0, -1)))


def _fields(raw: bytes) -> dict[str, Any]:
    """A message with its body decoded and the ids of this one message blanked out."""
    message = orjson.loads(raw)
    message["body"] = orjson.loads(base64.b64decode(message["body"]))
    headers, properties = message["headers"], message["properties"]
    task_id = headers["id"]
    assert headers["root_id"] == properties["correlation_id"] == task_id
    uuid.UUID(task_id), uuid.UUID(properties["delivery_tag"])
    for name in ("id", "root_id"):
        headers[name] = "-"
    properties["correlation_id"] = properties["delivery_tag"] = "-"
    return message


def test_embed_messages_are_what_kombu_pushes(
    own_settings: Settings, own_redis: EmbeddedRedis
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    enqueue_embed(ids, own_settings, "req-1", chunk=2)
    by_kombu = _pushed(own_redis.url)
    ours = embed_messages(ids, own_settings, "req-1", chunk=2)
    assert len(by_kombu) == len(ours) == 2
    for theirs, mine in zip(by_kombu, ours, strict=True):
        a, b = _fields(theirs), _fields(mine)
        assert a == b
        # Key order as well: the same JSON, not merely an equivalent one.
        assert list(a) == list(b) and list(a["properties"]) == list(b["properties"])
        assert list(a["headers"]) == list(b["headers"])
    assert [_fields(m)["body"][0] for m in ours] == [ids[:2], ids[2:]]
    # Without a request id no header is added, as enqueue_embed adds none.
    assert "request_id" not in orjson.loads(embed_messages(ids, own_settings)[0])["headers"]
    # kombu declared the queue on first use; the worker does that too when it consumes,
    # and a message pushed by the gateway needs nothing else on the broker.
    assert redis.Redis.from_url(own_redis.url).type(QUEUE_EMBED) == b"list"
    producer.cache_clear()


def test_a_real_worker_embeds_what_the_gateway_pushes(db: Engine, worker: Proc) -> None:
    settings = get_settings()
    ids = insert_queued(db, [f"pushed by the gateway {uuid.uuid4().hex}" for _ in range(3)])
    with db.begin() as conn:  # no sweeper publishes them: only our messages can
        conn.execute(
            text("UPDATE events SET due_at = :far WHERE id = ANY(:ids)"),
            {
                "far": FAR,
                "ids": [uuid.UUID(i) for i in ids],
            },
        )

    async def push() -> None:
        client = AsyncRedis.from_url(settings.redis_url)
        try:
            await client.lpush(QUEUE_EMBED, *embed_messages(ids, settings, "req-gw", chunk=2))
        finally:
            await client.aclose()

    asyncio.run(push())
    for event_id in ids:
        wait_for(lambda e=event_id: row(db, e)["status"] == "embedded", what="embedded")
        assert row(db, event_id)["attempts"] == 1 and row(db, event_id)["has_vector"]
