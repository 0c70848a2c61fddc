"""A pool job carries at most a worker batch of events, whatever the messages hold; an
embedder call at most EMBED_BATCH_SIZE chunks, EMBED_BATCH_MAX_TOKENS tokens and
EMBED_BATCH_MAX_CHARS characters."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.engine import Engine

from stack.redis import EmbeddedRedis
from tests.conftest import wait_for
from tests.reliability_helpers import insert_queued, publish, row, start_worker
from tests.stub_embedder import StubServer


@pytest.mark.usefixtures("stack_env")  # importing the worker reads its settings
def test_buffered_messages_are_grouped_by_event_count_not_message_count() -> None:
    from workers.reliable_batches import groups

    singles = [SimpleNamespace(args=[f"e{i}"]) for i in range(5)]
    chunk = SimpleNamespace(args=[f"c{i}" for i in range(3)])
    big = SimpleNamespace(args=[f"b{i}" for i in range(9)])
    grouped = groups([*singles, chunk, big, singles[0]], size=4)
    sizes = [sum(len(r.args) for r in g) for g in grouped]
    assert sizes == [4, 1 + 3, 9, 1]  # a message over the size is a group of its own
    assert [r for g in grouped for r in g] == [*singles, chunk, big, singles[0]]  # order kept


@pytest.mark.usefixtures("stack_env")
def test_events_are_grouped_by_their_chunks_and_calls_by_chunks_tokens_and_characters() -> None:
    from common.lifecycle.transitions import Pending
    from common.settings import get_settings
    from workers.batching import budgeted
    from workers.chunk_embed import calls, chunks_of

    settings = get_settings().model_copy(
        update={"embed_batch_size": 4, "embed_batch_max_tokens": 10_000}
    )
    # The test stack's chunker: 768 characters a chunk (256 tokens at 3 characters each).
    sizes = (40, 40, 40, 3000, 10, 10)
    events = [Pending(uuid.uuid4(), "word " * (n // 5), 1) for n in sizes]
    assert [len(chunks_of(e.text)) for e in events] == [1, 1, 1, 5, 1, 1]
    grouped = budgeted(events, settings)
    assert [[len(e.text) for e in part] for part in grouped] == [
        [40, 40, 40],
        [3000],
        [10, 10],
    ]
    assert budgeted([], settings) == []
    chunks = [c for e in events for c in chunks_of(e.text)]
    assert [len(c) for c in calls(chunks, settings)] == [4, 4, 2]
    few_tokens = settings.model_copy(update={"embed_batch_max_tokens": 300})
    assert all(sum(chunks[i].tokens for i in call) <= 300 for call in calls(chunks, few_tokens))
    few_chars = settings.model_copy(update={"embed_batch_max_chars": 100})
    assert [len(c) for c in calls(chunks[:3], few_chars)] == [2, 1]


def test_a_worker_batch_is_embedded_in_calls_within_the_character_budget(
    stack_env: dict[str, str],
    own_redis: EmbeddedRedis,
    tmp_root: Path,
    db: Engine,
    stub: StubServer,
) -> None:
    """Five 40-character texts in one message, a budget of 100: three embedder calls."""
    env = {**stack_env, "REDIS_URL": own_redis.url, "EMBED_BATCH_MAX_CHARS": "100"}
    worker = start_worker(env, tmp_root, f"chars-{uuid.uuid4().hex[:6]}")
    try:
        stub.behaviour.watch = uuid.uuid4().hex[:16]
        texts = [f"{stub.behaviour.watch} budget {i} ".ljust(40, "x") for i in range(5)]
        ids = insert_queued(db, texts)
        publish(env, ids)
        wait_for(lambda: all(row(db, i)["status"] == "embedded" for i in ids), 60, "embedded")
        assert stub.behaviour.watched_sizes == [2, 2, 1]
    finally:
        worker.stop()
