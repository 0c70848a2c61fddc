"""Request dependencies, as ``Annotated`` aliases (``SessionDep``, ``RedisDep``, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from common.db import async_sessions, read_engine
from common.embedders import Embedder
from common.settings import Settings, get_settings


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request. It commits when the handler returns, before the response is
    sent (``scope="function"`` below: a client that reads right after its answer sees what
    the request wrote), and rolls back on error. Services never commit; the handlers that
    publish after commit (ingest, dead-letter replay) commit explicitly before the hand-off
    (common/lifecycle/handoff.py), then this commit has nothing left to do."""
    async with async_sessions()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_reader() -> AsyncIterator[AsyncConnection]:
    """A connection for a request that only reads (search): autocommit, so no BEGIN and no
    COMMIT round trips, and no ORM session (its set-up and result handling measured more
    than the statement's own Python work); back in the pool before the answer is sent."""
    async with read_engine().connect() as connection:
        yield connection


# The dependencies below are ``async def`` although they never wait: FastAPI runs a plain
# ``def`` dependency in its thread pool, a thread hop (and a GIL hand-over) per request that
# the profile of a search measured at ~1.8 of its 16 s (issue 16).


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_embedder(request: Request) -> Embedder:
    embedder: Embedder = request.app.state.embedder
    return embedder


async def current_settings() -> Settings:
    """The settings (``get_settings`` itself is sync, and used outside requests too)."""
    return get_settings()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReaderDep = Annotated[AsyncConnection, Depends(get_reader, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
SettingsDep = Annotated[Settings, Depends(current_settings)]
