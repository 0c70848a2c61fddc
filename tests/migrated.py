"""A database of its own, migrated up to a given revision: for the tests of one migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from common.migrate import alembic_config
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres


@contextmanager
def database_at(revision: str, directory: Path) -> Iterator[tuple[str, Engine]]:
    """A fresh PostgreSQL in ``directory``, migrated to ``revision``: its URL and an engine."""
    server = EmbeddedPostgres(directory / "postgres", free_port())
    server.start()
    url = server.url.replace("postgresql://", "postgresql+psycopg://")
    command.upgrade(alembic_config(url), revision)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        server.stop()
