"""This worker process's settings, embedder and share of the embedding server's slots: the
one place task code reads them from.

The settings are loaded once, when the worker starts (:func:`workers.app.start_up`, on the
``import_modules`` signal in the main process; the pool children inherit them when they
fork), and handed here with :func:`use`. Task code run without a worker's start-up (a test
calling ``run_batch`` in its own process) reads its environment's (``get_settings``).

The embedder is made on first use (the local model loads in the pool child, never before
the fork); ``worker_process_init`` warms it up, ``worker_process_shutdown`` closes it.

Each prefork child runs a model of its own, so with ``LOCAL_THREADS=0`` a child's intra-op
threads are its share of the cores (:func:`local_threads`), not every core: two children of
two threads each on 2 cores ran the pipeline at 73.5 events/s against 137.4 with one thread
each, load ~4.5 (README, "The pipeline against a bare encode").
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown
from redis import Redis

from common.db import sync_engine
from common.embed_slots import EmbedSlots
from common.embedders import Embedder, build_embedder
from common.settings import Settings, get_settings

_settings: Settings | None = None
_embedder: Embedder | None = None
_pool_processes: int | None = None  # this worker's prefork children (set at worker_init)


def use(loaded: Settings) -> None:
    """The settings this process runs with (the worker's start-up loads them)."""
    global _settings
    _settings = loaded


def settings() -> Settings:
    """This process's settings: those the worker started with. Task code run outside a
    worker (a test) gets its environment's, read afresh each time, so a test that changes
    the environment and clears get_settings' cache is still obeyed."""
    return _settings if _settings is not None else get_settings()


def embedder() -> Embedder:
    """This process's embedder, made on first use (the local model loads in the pool child)."""
    global _embedder
    if _embedder is None:
        _embedder = build_embedder(settings(), local_threads=local_threads(settings()))
    return _embedder


def local_threads(loaded: Settings) -> int:
    """Intra-op threads of this process's local model: ``LOCAL_THREADS`` when set; else, in
    a worker of N > 1 prefork children, the cores divided among them (at least one), so
    that the children's models together run as many threads as there are cores; else 0
    (the runtime's choice: every core)."""
    if loaded.local_threads or not _pool_processes or _pool_processes <= 1:
        return loaded.local_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // _pool_processes)


@worker_init.connect
def _pool_size(sender: Any = None, **_: Any) -> None:
    # In the worker's main process, before the children fork (they inherit it). Only the
    # prefork pool runs a model per child; a solo or threads pool shares one (its lock).
    global _pool_processes
    pool = getattr(sender, "pool_cls", "")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__name__}"
    prefork = "prefork" in name or name == "processes"
    _pool_processes = int(getattr(sender, "concurrency", 0) or 0) if prefork else 1


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    # A child forked after the parent used the database (the sweeper runs there) must not
    # share the parent's pooled connections.
    sync_engine().dispose(close=False)
    # Loading the local model takes seconds, more than Celery allows a child to start, so it
    # loads in a thread of the child; the first batch waits for it (the embedder's lock).
    if settings().embedder == "local":
        threading.Thread(target=embedder().embed, args=(["warm-up"],), daemon=True).start()


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _embedder is not None:
        _embedder.close()


@lru_cache
def slots() -> EmbedSlots:
    """This process's share of EMBED_MAX_CONCURRENCY (no cap for the in-process model)."""
    embedding, stores = settings().embedding, settings().stores
    limit = 0 if embedding.embedder == "local" else embedding.embed_max_concurrency
    target = embedding.ollama_url if embedding.embedder == "ollama" else embedding.openai_url
    redis = Redis.from_url(stores.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return EmbedSlots(redis, target, limit, lease_s=embedding.embed_timeout_s + 10)
