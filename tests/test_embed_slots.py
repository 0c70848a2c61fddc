"""EMBED_MAX_CONCURRENCY: calls in flight to one embedding server, across every worker
process, at most the cap; a holder that died frees its slot when its lease ends; without
Redis the call goes ahead.

The tests with a worker run on a PostgreSQL and a Redis of their own (``private_stack``): on
the session's database the worker's sweeper found other modules' queued events (7 in one run)
and published them into this Redis; with every pool child held at the stub they kept the queue
from draining, the held calls ran into the batch's time limit and were retried, and the stub
counted both tries in flight (6 against a cap of 3)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy.engine import Engine

from common.embed_slots import EmbedSlots, SlotsBusy
from common.queue import queue_depth
from stack.ports import free_port
from stack.redis import EmbeddedRedis
from tests.conftest import wait_for
from tests.reliability_helpers import insert_queued, publish, row, start_worker
from tests.stub_embedder import StubServer


def slots(redis: EmbeddedRedis, limit: int, lease_s: float = 30) -> EmbedSlots:
    return EmbedSlots(Redis.from_url(redis.url), f"http://test-{uuid.uuid4().hex}", limit, lease_s)


def test_a_slot_is_refused_while_the_cap_is_held(own_redis: EmbeddedRedis) -> None:
    cap = slots(own_redis, 2)
    with cap.slot(wait_s=1), cap.slot(wait_s=1), pytest.raises(SlotsBusy), cap.slot(wait_s=0.2):
        pass
    with cap.slot(wait_s=0.2):  # released on leaving the block
        pass


def test_a_waiter_gets_the_slot_when_it_is_released(own_redis: EmbeddedRedis) -> None:
    cap = slots(own_redis, 1)
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with cap.slot(wait_s=1):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    threading.Timer(0.3, release.set).start()
    with cap.slot(wait_s=10):
        assert time.monotonic() - started >= 0.3  # it waited for the holder
    thread.join(10)


def test_a_dead_holders_slot_comes_back_after_its_lease(own_redis: EmbeddedRedis) -> None:
    cap = slots(own_redis, 1, lease_s=0.5)
    assert cap.acquire_script(keys=[cap.key], args=[1, cap.lease_ms, "killed-holder"]) == 1
    with pytest.raises(SlotsBusy), cap.slot(wait_s=0.1):
        pass
    with cap.slot(wait_s=5):  # the lease ran out: no release was needed
        pass


def test_without_redis_the_call_goes_ahead_uncapped() -> None:
    dead = EmbedSlots(
        Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5),
        "http://nowhere",
        1,
        30,
    )
    ran = False
    with dead.slot(wait_s=1):
        ran = True
    assert ran


@pytest.mark.parametrize(("cap", "most"), [("1", 1), ("3", 3)])
def test_workers_keep_to_the_cap(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer, cap: str, most: int
) -> None:
    """Three pool children, three one-event batches: with a cap of 1 they go one at a time,
    with 3 all at once (the stub sees how many overlap).

    Deterministic on a loaded machine: the stub holds every call at its gate, and the test
    waits (polling, generous deadline) until the cap is reached and the worker has taken
    every message, then opens the gate; each call then takes 1 s, so a broken cap of 1
    would show overlapping calls. (It sampled a 1 s window before, and under load saw 2 of
    3 calls in flight.)"""
    stack_env, db, tmp_root = own_stack
    env = {
        **stack_env,
        "EMBED_MAX_CONCURRENCY": cap,
        "EMBED_BATCH_SIZE": "1",
        "WORKER_CONCURRENCY": "3",
        "EMBED_TIMEOUT_S": "30",  # the slot wait too: the third waits two calls' time
    }
    worker = start_worker(env, tmp_root, f"slots-{uuid.uuid4().hex[:6]}", concurrency=3)
    try:
        behaviour = stub.behaviour
        behaviour.watch, behaviour.delay_s, behaviour.hold = uuid.uuid4().hex, 1.0, True
        ids = insert_queued(db, [f"{behaviour.watch} capped {i}" for i in range(3)])
        for event_id in ids:
            publish(env, [event_id])
        broker = Redis.from_url(env["REDIS_URL"])
        wait_for(lambda: behaviour.watched_in_flight == most, 120, f"{most} calls in flight")
        wait_for(lambda: queue_depth(broker) == 0, 120, "every message taken by the worker")
        behaviour.gate.set()
        wait_for(lambda: all(row(db, i)["status"] == "embedded" for i in ids), 120, "embedded")
        assert behaviour.max_watched_in_flight == most
        assert all(int(row(db, i)["attempts"]) == 1 for i in ids)  # waited, never refused
    finally:
        worker.stop()


def test_waiting_for_a_busy_embedder_costs_no_attempt(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    """Every slot held elsewhere: the batch waits EMBED_TIMEOUT_S, goes back to the queue
    unclaimed, and is embedded with its first attempt once a slot is free."""
    stack_env, db, tmp_root = own_stack
    env = {**stack_env, "EMBED_MAX_CONCURRENCY": "1"}
    busy = EmbedSlots(Redis.from_url(env["REDIS_URL"]), env["OLLAMA_URL"], 1, lease_s=600)
    assert busy.acquire_script(keys=[busy.key], args=[1, busy.lease_ms, "elsewhere"]) == 1
    worker = start_worker(env, tmp_root, f"busy-{uuid.uuid4().hex[:6]}", EMBED_TIMEOUT_S="1")
    try:
        [event_id] = insert_queued(db, [f"waits for a slot {uuid.uuid4().hex}"])
        publish(env, [event_id])
        wait_for(lambda: worker.output().count("embedder busy") >= 2, 60, "two waits")
        assert row(db, event_id)["status"] == "queued"
        assert int(row(db, event_id)["attempts"]) == 0
        busy.redis.zrem(busy.key, "elsewhere")
        wait_for(lambda: row(db, event_id)["status"] == "embedded", 60, "embedded")
        assert int(row(db, event_id)["attempts"]) == 1
    finally:
        worker.stop()
        busy.redis.delete(busy.key)
