"""A worker's local model threads: with LOCAL_THREADS=0, prefork children share the cores
(two children of two threads each on 2 cores oversubscribed them, README "The pipeline
against a bare encode"); a set LOCAL_THREADS, one child, or a pool sharing one model keep
what they had."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import pytest

from common.settings import Settings
from workers import context


@pytest.fixture
def pool() -> Iterator[None]:
    before = context._pool_processes
    yield
    context._pool_processes = before


def settings(threads: int) -> Settings:
    return cast(Settings, SimpleNamespace(local_threads=threads))  # all local_threads reads


def worker_started(pool_cls: object, concurrency: int) -> None:
    context._pool_size(sender=SimpleNamespace(pool_cls=pool_cls, concurrency=concurrency))


def test_prefork_children_share_the_cores(pool: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3})
    worker_started("prefork", 2)
    assert context.local_threads(settings(0)) == 2
    worker_started("prefork", 4)
    assert context.local_threads(settings(0)) == 1
    worker_started("prefork", 8)
    assert context.local_threads(settings(0)) == 1  # never none


def test_set_threads_one_child_or_a_shared_model_keep_their_choice(
    pool: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    worker_started("prefork", 2)
    assert context.local_threads(settings(3)) == 3
    worker_started("prefork", 1)
    assert context.local_threads(settings(0)) == 0
    worker_started("solo", 2)
    assert context.local_threads(settings(0)) == 0
    worker_started("threads", 4)
    assert context.local_threads(settings(0)) == 0
    context._pool_processes = None  # not in a worker (a test calling run_batch)
    assert context.local_threads(settings(0)) == 0


def test_pool_given_as_a_class(pool: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.concurrency.prefork import TaskPool

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    worker_started(TaskPool, 2)
    assert context.local_threads(settings(0)) == 1
