"""Database engines: async for the gateway (made by create_app from its settings, kept on
``app.state``), sync for the Celery workers and the CLI (one per process, from the process's
settings: every transition of ``common/lifecycle`` opens its session here)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from common.settings import Settings, get_settings
from common.validation import dump_stored_json, load_stored_json

# Sessions in UTC, whatever the server's or PGTZ's zone: timestamptz values are read back in
# the session's zone, and a valid 9999-12-31T23:00Z read in a zone east of UTC is year
# 10000, which psycopg cannot load (issue 12, item 1). Answers are in UTC either way. A
# startup option: it overrides the server's, the role's and PGOPTIONS' zone (not libpq's
# PGTZ, which is sent after it: leave PGTZ unset in the services' environment).
UTC_SESSION = "-c TimeZone=UTC"


def async_engine(settings: Settings) -> AsyncEngine:
    """The gateway's engine (connections are made on first use)."""
    stores, search = settings.stores, settings.search
    return create_async_engine(
        stores.sqlalchemy_url,
        pool_size=stores.db_pool_size,
        max_overflow=stores.db_pool_size,
        pool_pre_ping=True,
        connect_args={
            # A dead database must fail a request quickly (503), not hang it.
            "connect_timeout": 5,
            # Search's HNSW settings as session defaults, so a search spends no round trip
            # on SET LOCAL (dense.configure_scan only raises ef_search for a larger top_k).
            "options": (
                f"{UTC_SESSION} -c hnsw.ef_search={search.hnsw_ef_search}"
                " -c hnsw.iterative_scan=relaxed_order"
                f" -c hnsw.max_scan_tuples={search.hnsw_max_scan_tuples}"
            ),
        },
        json_serializer=dump_stored_json,
        json_deserializer=load_stored_json,
    )


def async_sessions(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


@lru_cache
def sync_engine() -> Engine:
    settings = get_settings()
    # A worker child handles one batch at a time: a small pool is enough.
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=2,
        max_overflow=2,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5, "options": UTC_SESSION},
        json_serializer=dump_stored_json,
        json_deserializer=load_stored_json,
    )


@lru_cache
def sync_sessions() -> sessionmaker:
    return sessionmaker(sync_engine(), expire_on_commit=False)
