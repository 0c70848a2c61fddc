"""Run the Alembic migrations from code (``eventsearch migrate``, ``eventsearch up``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    return config


def upgrade_head(url: str | None = None) -> None:
    """Bring the database at ``url`` (default: DATABASE_URL) to the newest schema."""
    command.upgrade(alembic_config(url), "head")
