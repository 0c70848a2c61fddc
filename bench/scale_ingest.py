"""``ingest_events_per_s_by_workers`` of ``make bench-scale``: events per second from the first
POST until every event is embedded, through the real gateway, Redis queue and Celery workers
with the stub embedder (no delay: the pipeline is measured, not a model), with one worker
process and then two (each ``--concurrency=1``: a worker stands for one more host's worth of
workers), into a fresh database with the migration's HNSW index."""

from __future__ import annotations

import os

from bench.pipeline import _pipeline_rate, _texts
from bench.services import Services


def measure(svc: Services) -> dict[str, float]:
    n = int(os.environ.get("BENCH_SCALE_INGEST_EVENTS", "3000"))
    db_url, key = svc.database("bench_scale_ingest")
    env = svc.env("bench_scale_ingest", 5, EMBED_BATCH_SIZE="64")
    svc.stub.behaviour.reset()
    gateway = svc.gateway(env, "bench-gateway-scale")
    rates: dict[str, float] = {}
    workers = []
    try:
        for count in (1, 2):
            workers.append(svc.worker(env, f"bench-worker-scale-{count}", concurrency=1))
            _pipeline_rate(svc, gateway.url, key, db_url, ["warm the workers"] * count, "warm-up")
            rate = _pipeline_rate(
                svc, gateway.url, key, db_url, _texts(n), f"ingest ({count} worker(s))"
            )
            rates[str(count)] = round(rate, 1)
    finally:
        for proc in workers:
            svc.stop(proc)
        svc.stop(gateway)
    return rates
