"""The lean read path of search (issue 16): autocommit connections without a pre-ping round
trip, that still never hand out a dead connection nor leak a raised ``hnsw.ef_search``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.db import async_engine, read_engine
from common.schemas import SearchFilters
from common.settings import get_settings
from gateway.search import dense
from gateway.search.filters import conditions
from tests.conftest import DIM


@pytest.fixture
async def reader(stack_env: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    # The engines are per process; this test's event loop is its own, so are they.
    async_engine.cache_clear()
    read_engine.cache_clear()
    yield read_engine()
    await async_engine().dispose()
    async_engine.cache_clear()
    read_engine.cache_clear()


def status(connection: AsyncConnection) -> TransactionStatus:
    raw = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return TransactionStatus(raw.info.transaction_status)


async def ef_search(connection: AsyncConnection) -> str:
    return str((await connection.execute(text("SHOW hnsw.ef_search"))).scalar_one())


async def test_reads_run_without_a_transaction(reader: AsyncEngine) -> None:
    async with reader.connect() as connection:
        await connection.execute(text("SELECT 1"))
        assert status(connection) is TransactionStatus.IDLE  # no BEGIN was sent


async def test_a_large_top_k_raises_ef_search_for_its_own_search_only(
    reader: AsyncEngine,
) -> None:
    settings = get_settings()
    async with reader.connect() as connection:
        where = conditions("tenant-with-nothing", SearchFilters())
        # top_k 100 scans 400 chunks: more than the session's ef_search (160).
        assert await dense.rank(connection, [0.1] * DIM, "stub-embed", where, 100, settings) == []
        assert status(connection) is TransactionStatus.IDLE
        assert await ef_search(connection) == str(settings.hnsw_ef_search)


async def test_a_transaction_left_open_is_rolled_back_on_return_to_the_pool(
    reader: AsyncEngine,
) -> None:
    async with reader.connect() as connection:
        await connection.execute(text("BEGIN"))
        await connection.execute(text("SELECT set_config('hnsw.ef_search', '999', true)"))
        raw = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    assert raw.info.transaction_status == TransactionStatus.IDLE


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    reader: AsyncEngine, db: Engine
) -> None:
    async with reader.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    with db.connect() as admin:  # as a restart or a killed backend would
        admin.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
    # Checked out again, the pooled connection is found closed and replaced: no error.
    async with reader.connect() as connection:
        again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert again != pid
