"""Run the Alembic migrations from code (``eventsearch migrate``, ``eventsearch up``, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class SchemaOptions:
    """What the first migration fixes for good: the vector column's dimension and its HNSW
    index's build parameters. Passed to the migrations explicitly (``config.attributes``,
    or ``alembic -x embed_dim=768 ...``); a migration never reads the environment, so the
    schema depends on what the migrating command was told, not on who runs it."""

    embed_dim: int = 384
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64


def alembic_config(url: str | None = None, schema: SchemaOptions | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    config.attributes["schema"] = schema or SchemaOptions()
    return config


def upgrade_head(url: str | None = None, schema: SchemaOptions | None = None) -> None:
    """Bring the database at ``url`` (default: DATABASE_URL) to the newest schema; a new
    events table is made with ``schema`` (default: 384 dimensions, m 16, ef_construction 64)."""
    command.upgrade(alembic_config(url, schema), "head")
