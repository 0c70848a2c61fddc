"""Worker metrics relayed through Redis, so that the gateway's ``GET /metrics`` shows the whole
pipeline: batch sizes and latency, retries, dead letters and heartbeats next to the requests.

Each worker's main process publishes its exposition (the sum over its pool) every
``WORKER_HEARTBEAT_S`` under a key of its own that expires after :func:`ttl_s`, and notes
its name in an index; the gateway reads the live ones and serves them with a ``worker``
label (the Celery node name). A worker that stops publishing drops out of the gateway's
answer within the time to live, while its heartbeat gauge shows when it stopped.

Prometheus can still scrape each worker's own ``WORKER_METRICS_PORT``; the relay is for
deployments where one scrape target is what is wanted (or the workers' ports are not
reachable). The index is a sorted set, so the gateway never SCANs the keyspace (which holds
every idempotency record).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

INDEX = "eventsearch:metrics:workers"  # sorted set: worker name -> time of its last publish
KEY = "eventsearch:metrics:worker:{name}"


def ttl_s(heartbeat_s: float) -> float:
    """How long a worker's published metrics count as live: three missed heartbeats."""
    return max(3 * heartbeat_s, 15.0)


def publish(redis: Redis, name: str, exposition: bytes, heartbeat_s: float) -> None:
    """Store one worker's exposition (atomically with its index entry)."""
    with redis.pipeline() as pipe:
        pipe.set(KEY.format(name=name), exposition, px=int(ttl_s(heartbeat_s) * 1000))
        pipe.zadd(INDEX, {name: time.time()})
        pipe.execute()


async def collect(redis: AsyncRedis, heartbeat_s: float) -> dict[str, bytes]:
    """The expositions of the live workers, by worker name; forgets the dead ones."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(INDEX, 0, time.time() - ttl_s(heartbeat_s))
        pipe.zrange(INDEX, 0, -1)
        _, names = await pipe.execute()
    if not names:
        return {}
    texts = await redis.mget([KEY.format(name=n.decode()) for n in names])
    return {
        n.decode(): t if isinstance(t, bytes) else t.encode()
        for n, t in zip(names, texts, strict=True)
        if t is not None
    }


class _Families:
    """A collector serving metric families made elsewhere."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def relabel(expositions: dict[str, bytes], only: Collection[str]) -> bytes:
    """One exposition of the workers' families named in ``only``, each sample labelled with
    its ``worker`` (families of the same name merged, as the text format requires). The
    rest of a worker's exposition (process and Python figures, the gateway's families at
    zero) would repeat families the gateway serves itself."""
    families: dict[str, Metric] = {}
    for worker, text in sorted(expositions.items()):
        for family in text_string_to_metric_families(text.decode()):
            if family.name not in only:
                continue
            merged = families.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            merged.samples.extend(
                sample._replace(labels={**sample.labels, "worker": worker})
                for sample in family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families.values()))
    return generate_latest(registry)
