"""``GET /api/v1/stats`` (scope ``admin``): the caller's tenant at a glance.

Three queries, each one pass over the tenant's rows: counts by status, source and type (one
``GROUPING SETS`` scan), the recent-throughput, oldest-queued and dead-letter figures, and
its chunks and their tokens (from an index of the chunks' tenant and tokens alone).
The answer is cached in Redis for ``STATS_CACHE_TTL_S`` seconds per tenant, so dashboards
that poll it every second cost one computation per interval, whatever their number; a
cached answer is served byte for byte and says when it was computed (``generated_at``).

Sources and types are reported up to ``STATS_MAX_GROUPS`` each (the most common first), the
rest summed in ``other_sources``/``other_types``: a tenant with a million distinct sources
must not get a million-line answer.

The broker queue is shared by all tenants, so ``queue`` is the broker's (messages waiting
and taken but not yet acknowledged); the tenant's own backlog is ``by_status.queued``.
Redis being down does not fail the answer: the queue figures are ``null`` and nothing is
cached (an operator looks at the stats precisely when something is wrong).

``GET /api/v1/stats/timeline?bucket=minute&points=60`` is the series behind the console's
chart: events accepted and vectors stored per minute, hour or day, cached the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict
from redis import exceptions as redis_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from common.logs import get_logger
from common.models import EventStatus
from gateway.auth import AdminKey
from gateway.deps import RedisDep, SessionDep, SettingsDep
from gateway.observability import queue_figures

log = get_logger("eventsearch.gateway")
router = APIRouter(prefix="/api/v1", tags=["operations"])
CACHE_KEY = "eventsearch:stats:{tenant}"
REDIS_ERRORS = (redis_exc.ConnectionError, redis_exc.TimeoutError)

GROUPS = text(
    """
    SELECT status, source, type, GROUPING(status, source, type) AS g, count(*) AS n
    FROM (
      -- A deleted event's source and type are erased: it counts by status only.
      SELECT status,
        CASE WHEN status = 'deleted' THEN NULL ELSE source END AS source,
        CASE WHEN status = 'deleted' THEN NULL ELSE type END AS type
      FROM events WHERE tenant = :tenant
    ) AS e
    GROUP BY GROUPING SETS ((status), (source), (type))
    """
)
FIGURES = text(
    """
    SELECT
      count(*) FILTER (WHERE embedded_at > now() - interval '1 minute') AS last_minute,
      count(*) FILTER (WHERE embedded_at > now() - interval '1 hour') AS last_hour,
      extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued')) AS oldest,
      (SELECT count(*) FROM dead_letters d
        WHERE d.tenant = :tenant AND d.replayed_at IS NULL) AS dead_letters
    FROM events WHERE tenant = :tenant
    """
)
# From the (tenant) INCLUDE (tokens) index alone: no vector is read.
CHUNKS = text(
    "SELECT count(*) AS n, coalesce(sum(tokens), 0) AS tokens FROM chunks WHERE tenant = :tenant"
)
# GROUPING() is a bit mask over (status, source, type): 1 marks a column not grouped.
BY_STATUS, BY_SOURCE, BY_TYPE = 0b011, 0b101, 0b110


class QueueStats(BaseModel):
    depth: int | None = None
    unacked: int | None = None


class Stats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "dev",
                    "events": 1204,
                    "by_status": {
                        "queued": 3,
                        "embedded": 1190,
                        "failed": 1,
                        "deleted": 10,
                        "superseded": 7,
                    },
                    "by_source": {"jobboard": 1000, "helpdesk": 204},
                    "other_sources": 0,
                    "by_type": {"job.posted": 1000, "ticket.opened": 204},
                    "other_types": 0,
                    "embedded_last_minute": 12,
                    "embedded_last_hour": 640,
                    "dead_letters": 1,
                    "oldest_queued_age_s": 0.8,
                    "queue": {"depth": 2, "unacked": 1},
                    "generated_at": "2026-11-01T09:00:00.120Z",
                    "chunks": 1630,
                    "chunk_tokens": 301244,
                }
            ]
        }
    )

    tenant: str
    events: int
    by_status: dict[str, int]
    by_source: dict[str, int]
    other_sources: int
    by_type: dict[str, int]
    other_types: int
    embedded_last_minute: int
    embedded_last_hour: int
    dead_letters: int
    oldest_queued_age_s: float | None
    queue: QueueStats
    generated_at: datetime
    # The embedded events' chunks (an event is one or more) and their tokens (word pieces of
    # the local model, estimated for Ollama/OpenAI): what embedding the tenant costs.
    chunks: int = 0
    chunk_tokens: int = 0


def top(counts: Counter[str], limit: int) -> tuple[dict[str, int], int]:
    """The ``limit`` largest counts (ties by name, so answers are stable) and the rest's sum."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:limit]), sum(n for _, n in ranked[limit:])


async def compute(session: AsyncSession, redis: RedisDep, tenant: str, groups: int) -> Stats:
    by: dict[int, Counter[str]] = {BY_STATUS: Counter(), BY_SOURCE: Counter(), BY_TYPE: Counter()}
    for row in await session.execute(GROUPS, {"tenant": tenant}):
        value = {BY_STATUS: row.status, BY_SOURCE: row.source, BY_TYPE: row.type}[row.g]
        if value is not None:  # the tombstones' group
            by[row.g][value] = int(row.n)
    figures = (await session.execute(FIGURES, {"tenant": tenant})).one()
    chunks = (await session.execute(CHUNKS, {"tenant": tenant})).one()
    queue = await queue_figures(redis)
    by_source, other_sources = top(by[BY_SOURCE], groups)
    by_type, other_types = top(by[BY_TYPE], groups)
    return Stats(
        tenant=tenant,
        events=sum(by[BY_STATUS].values()),
        by_status={s.value: by[BY_STATUS].get(s.value, 0) for s in EventStatus},
        by_source=by_source,
        other_sources=other_sources,
        by_type=by_type,
        other_types=other_types,
        embedded_last_minute=int(figures.last_minute),
        embedded_last_hour=int(figures.last_hour),
        dead_letters=int(figures.dead_letters),
        oldest_queued_age_s=None if figures.oldest is None else round(float(figures.oldest), 3),
        queue=QueueStats(depth=queue[0], unacked=queue[1]) if queue else QueueStats(),
        generated_at=datetime.now(UTC),
        chunks=int(chunks.n),
        chunk_tokens=int(chunks.tokens),
    )


async def cached(
    redis: RedisDep, key: str, ttl: float, make: Callable[[], Awaitable[str]]
) -> Response:
    """``make()``'s JSON, kept in Redis for ``ttl`` seconds (a cached answer is served byte for
    byte); Redis being down only means nothing is cached."""
    headers = {"Cache-Control": f"private, max-age={int(ttl)}"}
    if ttl > 0:
        try:
            stored = await redis.get(key)
        except REDIS_ERRORS:
            stored = None
        if stored is not None:
            return Response(stored, media_type="application/json", headers=headers)
    body = await make()
    if ttl > 0:
        try:
            await redis.set(key, body, px=int(ttl * 1000))
        except REDIS_ERRORS as error:
            log.warning("stats not cached", key=key, error=repr(error))
    return Response(body, media_type="application/json", headers=headers)


@router.get("/stats", response_model=Stats)
async def stats(
    session: SessionDep, redis: RedisDep, settings: SettingsDep, caller: AdminKey
) -> Response:
    """Events by status, source and type, throughput, dead letters, the oldest queued event's
    age and the broker queue, for the caller's tenant; cached for ``STATS_CACHE_TTL_S``."""

    async def make() -> str:
        figures = await compute(session, redis, caller.tenant, settings.stats_max_groups)
        return figures.model_dump_json()

    key = CACHE_KEY.format(tenant=caller.tenant)
    return await cached(redis, key, settings.stats_cache_ttl_s, make)


# The time series of the console's chart (issue 17), additive to /stats: events accepted and
# vectors stored per bucket. One scan of the tenant's recent rows per bucket size, each row
# counted in the bucket of its created_at and of its embedded_at (date_bin, PostgreSQL 14+).
TIMELINE = text(
    """
    SELECT date_bin(CAST(:step AS interval), at, CAST(:origin AS timestamptz)) AS start,
           kind, count(*) AS n
    FROM (SELECT created_at AS at, 'accepted' AS kind FROM events
           WHERE tenant = :tenant AND created_at >= :since
          UNION ALL
          SELECT embedded_at, 'embedded' FROM events
           WHERE tenant = :tenant AND embedded_at >= :since) AS recent
    GROUP BY 1, 2
    """
)
BucketName = Literal["minute", "hour", "day"]
BUCKETS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
TIMELINE_KEY = "eventsearch:stats:{tenant}:timeline:{bucket}:{points}"


class TimelinePoint(BaseModel):
    start: datetime
    accepted: int
    embedded: int


class Timeline(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "dev",
                    "bucket": "minute",
                    "points": [
                        {"start": "2026-11-01T08:59:00Z", "accepted": 40, "embedded": 38},
                        {"start": "2026-11-01T09:00:00Z", "accepted": 12, "embedded": 14},
                    ],
                    "generated_at": "2026-11-01T09:00:30.120Z",
                }
            ]
        }
    )

    tenant: str
    bucket: BucketName
    points: list[TimelinePoint]
    generated_at: datetime


async def timeline(
    session: AsyncSession, tenant: str, bucket: BucketName, points: int, now: datetime
) -> Timeline:
    step = BUCKETS[bucket]
    # Buckets aligned on the epoch, the last one holding now: no gaps between two answers.
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    last = epoch + ((now - epoch) // step) * step
    first = last - (points - 1) * step
    counts: dict[tuple[datetime, str], int] = {}
    rows = await session.execute(
        TIMELINE,
        {"tenant": tenant, "since": first, "step": step, "origin": epoch},
    )
    for row in rows:
        counts[(row.start, row.kind)] = int(row.n)
    series = [first + i * step for i in range(points)]
    return Timeline(
        tenant=tenant,
        bucket=bucket,
        points=[
            TimelinePoint(
                start=at,
                accepted=counts.get((at, "accepted"), 0),
                embedded=counts.get((at, "embedded"), 0),
            )
            for at in series
        ],
        generated_at=now,
    )


@router.get("/stats/timeline", response_model=Timeline)
async def stats_timeline(
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    caller: AdminKey,
    bucket: BucketName = "minute",
    points: Annotated[int, Query(ge=1, le=1440)] = 60,
) -> Response:
    """Events accepted and vectors stored per ``bucket``, the last ``points`` buckets, oldest
    first (the last bucket holds now; empty buckets are 0). Cached as ``/stats`` is."""

    async def make() -> str:
        answer = await timeline(session, caller.tenant, bucket, points, datetime.now(UTC))
        return answer.model_dump_json()

    key = TIMELINE_KEY.format(tenant=caller.tenant, bucket=bucket, points=points)
    return await cached(redis, key, settings.stats_cache_ttl_s, make)
