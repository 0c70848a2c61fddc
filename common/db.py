"""Database engines: async for the gateway (made by create_app from its settings, kept on
``app.state``), sync for the Celery workers and the CLI (one per process, from the process's
settings: every transition of ``common/lifecycle`` opens its session here)."""

from __future__ import annotations

import select
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from common.settings import SearchSettings, Settings, get_settings
from common.validation import dump_stored_json, load_stored_json

# Sessions in UTC, whatever the server's or PGTZ's zone: timestamptz values are read back in
# the session's zone, and a valid 9999-12-31T23:00Z read in a zone east of UTC is year
# 10000, which psycopg cannot load (issue 12, item 1). Answers are in UTC either way. A
# startup option: it overrides the server's, the role's and PGOPTIONS' zone (not libpq's
# PGTZ, which is sent after it: leave PGTZ unset in the services' environment).
UTC_SESSION = "-c TimeZone=UTC"
# Connections older than this are replaced at checkout: the liveness check below sees a
# connection the server closed, not one a firewall dropped without a word.
POOL_RECYCLE_S = 1800


def drop_if_closed(_dbapi: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection's liveness check at checkout, without a round trip: an idle
    connection has nothing to read, so a readable socket means the server has closed it
    (a restart sends "terminating connection" and closes; a killed backend closes). The
    pool then replaces it (up to three tries), as ``pool_pre_ping`` would, which cost a
    ``SELECT 1`` round trip on every checkout (issue 16)."""
    conn = record.driver_connection
    if conn is None or conn.closed or conn.broken:
        raise exc.DisconnectionError("the connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        raise exc.DisconnectionError("the server closed the connection")


def gateway_options(search: SearchSettings) -> str:
    """The startup options of the gateway's connections: UTC, and search's HNSW settings as
    session defaults, so a search spends no round trip on SET LOCAL (dense.configure_scan
    only raises ef_search for a larger top_k). bench/search.py times the gateway's own
    statement raw on a connection with the same options."""
    return (
        f"{UTC_SESSION} -c hnsw.ef_search={search.hnsw_ef_search}"
        " -c hnsw.iterative_scan=relaxed_order"
        f" -c hnsw.max_scan_tuples={search.hnsw_max_scan_tuples}"
    )


def async_engine(settings: Settings) -> AsyncEngine:
    """The gateway's engine (connections are made on first use)."""
    stores = settings.stores
    engine = create_async_engine(
        stores.sqlalchemy_url,
        # 2 x DB_POOL_SIZE connections at most, as before, but all of them kept: an overflow
        # connection was closed on its return as soon as DB_POOL_SIZE were idle, and under
        # steady load (more requests in flight than DB_POOL_SIZE) one checkout in 25 opened
        # a new one (a backend started, its statements prepared afresh; issue 16).
        pool_size=2 * stores.db_pool_size,
        max_overflow=0,
        pool_recycle=POOL_RECYCLE_S,
        connect_args={
            # A dead database must fail a request quickly (503), not hang it.
            "connect_timeout": 5,
            "options": gateway_options(settings.search),
        },
        json_serializer=dump_stored_json,
        json_deserializer=load_stored_json,
    )
    event.listen(engine.sync_engine.pool, "checkout", drop_if_closed)
    return engine


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` (same pool, the same primary) in autocommit, for requests that only read
    and for the single-statement INSERT of a POST without a subject (gateway/events.py): a
    statement is its own transaction, so it spends no round trip on BEGIN and COMMIT
    (psycopg sends BEGIN before the first statement of a transaction otherwise)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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
