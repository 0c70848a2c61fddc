"""Alembic environment: the URL comes from the settings (DATABASE_URL), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from common.models import Base
from common.settings import get_settings

target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = context.config.attributes.get("url") or get_settings().sqlalchemy_url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
