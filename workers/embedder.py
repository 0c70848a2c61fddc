"""This worker process's embedder and its share of the embedding server's slots.

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
from common.settings import get_settings

_embedder: Embedder | None = None


def embedder() -> Embedder:
    """This process's embedder, made on first use (the local model loads in the pool child)."""
    global _embedder
    if _embedder is None:
        _embedder = build_embedder(get_settings())
    return _embedder


@worker_process_init.connect
def _warm_up(**_: Any) -> None:
    # A child forked after the parent used the database (the sweeper runs there) must not
    # share the parent's pooled connections.
    sync_engine().dispose(close=False)
    # Loading the local model takes seconds, more than Celery allows a child to start, so it
    # loads in a thread of the child; the first batch waits for it (the embedder's lock).
    if get_settings().embedder == "local":
        threading.Thread(target=embedder().embed, args=(["warm-up"],), daemon=True).start()


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _embedder is not None:
        _embedder.close()


@lru_cache
def slots() -> EmbedSlots:
    """This process's share of EMBED_MAX_CONCURRENCY (no cap for the in-process model)."""
    settings = get_settings()
    limit = 0 if settings.embedder == "local" else settings.embed_max_concurrency
    target = settings.ollama_url if settings.embedder == "ollama" else settings.openai_url
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return EmbedSlots(redis, target, limit, lease_s=settings.embed_timeout_s + 10)
