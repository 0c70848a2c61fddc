"""This worker process's settings, embedder and share of the embedding server's slots: the
one place task code reads them from.

The settings are loaded once, when the worker starts (:func:`workers.app.start_up`, on the
``import_modules`` signal in the main process; the pool children inherit them when they
fork), and handed here with :func:`use`. Task code run without a worker's start-up (a test
calling ``run_batch`` in its own process) reads its environment's (``get_settings``).

The embedder is made on first use (the local model loads in the pool child, never before
the fork); ``worker_process_init`` warms it up, ``worker_process_shutdown`` closes it.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from redis import Redis

from common.db import sync_engine
from common.embed_slots import EmbedSlots
from common.embedders import Embedder, build_embedder
from common.settings import Settings, get_settings

_settings: Settings | None = None
_embedder: Embedder | None = None


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
        _embedder = build_embedder(settings())
    return _embedder


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
