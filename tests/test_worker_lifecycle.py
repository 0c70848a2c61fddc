"""A worker stopped (SIGTERM), killed (SIGKILL) or losing a pool child mid-batch loses no
event. These tests run on a PostgreSQL and a Redis of their own, so that the session's worker
and its sweeper cannot do the recovery for them."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import wait_for
from tests.reliability_helpers import insert_queued, publish, row, start_worker
from tests.stub_embedder import StubServer


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def all_embedded(db: Engine, ids: list[str]) -> bool:
    return all(row(db, i)["status"] == "embedded" for i in ids)


def test_sigterm_finishes_the_current_batch(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    worker = start_worker(env, logdir, f"term-{uuid.uuid4().hex[:6]}")
    # The batch's embedder call is held open until the worker has begun its warm shutdown:
    # the signal surely lands mid-batch (a fixed delay raced the embedder's own timeout).
    stub.behaviour.hold, stub.behaviour.watch = True, uuid.uuid4().hex
    ids = insert_queued(db, [f"at shutdown {stub.behaviour.watch} {i}" for i in range(5)])
    publish(env, ids)
    wait_for(lambda: stub.behaviour.watched_calls >= 1, what="the batch at the embedder")
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)  # to the main process only, as Docker does
    wait_for(lambda: "warm shutdown" in worker.output().lower(), what="the warm shutdown")
    assert worker.alive() and not all_embedded(db, ids)
    stub.behaviour.gate.set()
    assert worker.process.wait(60) == 0
    # Warm shutdown: the batch under way was finished and stored before the worker exited.
    assert all_embedded(db, ids)


def test_killed_worker_batch_is_embedded_after_restart(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    fast = {"TASK_TIME_LIMIT_S": "4", "SWEEP_AFTER_S": "6", "BROKER_VISIBILITY_TIMEOUT_S": "10"}
    worker = start_worker(env, logdir, f"kill-{uuid.uuid4().hex[:6]}", **fast)
    stub.behaviour.delay_s, stub.behaviour.watch = 3.0, uuid.uuid4().hex
    ids = insert_queued(db, [f"at kill {stub.behaviour.watch} {i}" for i in range(5)])
    publish(env, ids)
    wait_for(lambda: stub.behaviour.watched_calls >= 1, what="the batch at the embedder")
    worker.stop(signal.SIGKILL)  # the whole process group: nothing gets to ack or give back
    stub.behaviour.delay_s = 0.0
    assert not any(row(db, i)["status"] == "embedded" for i in ids)

    restarted = start_worker(env, logdir, f"restarted-{uuid.uuid4().hex[:6]}", **fast)
    try:
        wait_for(lambda: all_embedded(db, ids), 60, "embedded after the restart")
        assert all(int(row(db, i)["attempts"]) >= 2 for i in ids)  # the lost attempt counted
        with db.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM dead_letters")).scalar_one() == 0
    finally:
        restarted.stop()


def test_lost_pool_child_gives_its_batch_back_at_once(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    # Sweeper and visibility timeout far away: only the immediate requeue can recover in time.
    slow = {"SWEEP_AFTER_S": "600", "BROKER_VISIBILITY_TIMEOUT_S": "900"}
    worker = start_worker(env, logdir, f"child-{uuid.uuid4().hex[:6]}", **slow)
    try:
        stub.behaviour.delay_s, stub.behaviour.watch = 3.0, uuid.uuid4().hex
        ids = insert_queued(db, [f"child lost {stub.behaviour.watch} {i}" for i in range(5)])
        publish(env, ids)
        wait_for(lambda: stub.behaviour.watched_calls >= 1, what="the batch at the embedder")
        assert worker.process is not None
        for child in children(worker.process.pid):
            os.kill(child, signal.SIGKILL)
        stub.behaviour.delay_s = 0.0
        wait_for(lambda: all_embedded(db, ids), 60, "embedded by a new child")
        assert worker.alive()
        assert "WorkerLostError" in worker.output()
    finally:
        worker.stop()


def test_batch_over_its_time_limit_is_retried(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    # Soft limit 2.4 s, long before the embedder's own timeout: only the limit can stop it.
    limits = {
        "TASK_TIME_LIMIT_S": "3",
        "EMBED_TIMEOUT_S": "30",
        "SWEEP_AFTER_S": "10",
        "BROKER_VISIBILITY_TIMEOUT_S": "10",
    }
    worker = start_worker(env, logdir, f"limit-{uuid.uuid4().hex[:6]}", **limits)
    try:
        stub.behaviour.hang_times, stub.behaviour.hang_s = 1, 6.0
        stub.behaviour.watch = uuid.uuid4().hex
        ids = insert_queued(db, [f"stuck at the embedder {stub.behaviour.watch}"])
        publish(env, ids)
        wait_for(lambda: all_embedded(db, ids), 60, "embedded on the retry")
        assert row(db, ids[0])["attempts"] == 2
        assert "over its time limit" in worker.output()
    finally:
        worker.stop()
