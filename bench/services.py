"""The services a bench run needs, all local and its own: PostgreSQL, Redis, the stub embedder,
and gateway/worker processes started on demand."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from common.apikeys import create_key
from common.migrate import upgrade_head
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis
from tests import processes
from tests.stub_embedder import StubServer


@dataclass
class Services:
    root: Path
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    stub: StubServer
    running: list[processes.Proc] = field(default_factory=list)

    def env(self, database: str, redis_db: int, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.pg.url.replace("/eventsearch", f"/{database}"),
            "REDIS_URL": self.redis.url.replace("/0", f"/{redis_db}"),
            "EMBEDDER": "ollama",
            "OLLAMA_URL": self.stub.url,
            "EMBED_MODEL": "stub-embed",
            "EMBED_DIM": "384",
            "EMBED_BATCH_WAIT_MS": "20",
            # The limiter stays in the measured path (one INCR a request) but never refuses.
            **{
                f"RATE_LIMIT_{b}": "100000000/minute" for b in ("INGEST", "SEARCH", "READ", "ADMIN")
            },
            "TMPDIR": str(self.root),
            **extra,
        }

    def database(self, name: str) -> tuple[str, str]:
        """A fresh migrated database; returns (its URL, an API key with every scope)."""
        self.drop(name)
        with psycopg.connect(self.pg.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = self.pg.url.replace("/eventsearch", f"/{name}")
        sa_url = url.replace("postgresql://", "postgresql+psycopg://")
        upgrade_head(sa_url)
        engine = create_engine(sa_url)
        with Session(engine) as session, session.begin():
            key = create_key(session, "bench", ["ingest", "search", "admin"], "bench").key
        engine.dispose()
        return url, key

    def drop(self, name: str) -> None:
        """Drop database ``name`` if it exists, whoever is still connected to it."""
        with psycopg.connect(self.pg.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def gateway(self, env: dict[str, str], name: str) -> processes.Gateway:
        proc = processes.gateway(env, self.root, name).start().wait_ready(timeout=120)
        self.running.append(proc)
        return proc

    def worker(self, env: dict[str, str], name: str, concurrency: int = 2) -> processes.Proc:
        proc = processes.worker(env, self.root, name, concurrency).start()
        self.running.append(proc)
        return proc

    def stop(self, proc: processes.Proc) -> None:
        proc.stop()
        self.running.remove(proc)

    def clean_up(self) -> None:
        """Stops what a part left running and resets the stub (a part that failed midway
        skips its own clean-up)."""
        for proc in list(self.running):
            self.stop(proc)
        self.stub.behaviour.reset()


@contextmanager
def services(root: Path) -> Iterator[Services]:
    root.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(root / "postgres", free_port())
    pg.start()
    redis = EmbeddedRedis(root / "redis", free_port())
    redis.start()
    stub = StubServer().start()
    found = Services(root, pg, redis, stub)
    # This process's own settings (the worker-side code it imports reads them).
    os.environ.update(
        {
            k: v
            for k, v in found.env("eventsearch", 0).items()
            if k in ("DATABASE_URL", "REDIS_URL", "EMBED_DIM", "EMBEDDER")
        }
    )
    from common.settings import get_settings

    get_settings.cache_clear()
    try:
        yield found
    finally:
        found.clean_up()
        stub.shutdown()
        redis.stop()
        pg.stop()
