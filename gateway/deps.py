"""Request dependencies, as ``Annotated`` aliases (``SessionDep``, ``RedisDep``, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from common.db import async_sessions
from common.embedders import Embedder
from common.settings import Settings, get_settings


async def get_session() -> AsyncIterator[AsyncSession]:
    """One session per request; it commits when the handler returns and rolls back on error.
    Services never commit themselves."""
    async with async_sessions()() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def get_embedder(request: Request) -> Embedder:
    embedder: Embedder = request.app.state.embedder
    return embedder


# scope="function": the commit happens before the answer is sent. FastAPI's default for a
# yield dependency ends it after the response, so a client that read right after a 204
# DELETE could still see the event, and a failed commit came after a success answer.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
