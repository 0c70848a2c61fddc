"""Every Prometheus metric of eventsearch, defined once so that any code can count in one line
(``metrics.RETRIES.inc(n)``).

The gateway serves them on ``GET /metrics``; each worker serves its own on
``WORKER_METRICS_PORT``. A Celery worker is several processes (the prefork pool), so the
worker runs prometheus-client's multiprocess mode: every process writes its values to files
in ``PROMETHEUS_MULTIPROC_DIR`` and the exporter adds them up (see ``workers/observability``).
That variable must be set before this module is imported, which ``workers.app.start_up`` does
(before the worker imports its task modules).
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)

NAMESPACE = "eventsearch"

# --- gateway -------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template (not raw path) and status",
    ["method", "route", "status"],
    namespace=NAMESPACE,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to its last response byte",
    ["method", "route"],
    namespace=NAMESPACE,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS = Counter(
    "events",
    "Events offered to the ingest endpoints, by outcome (accepted, duplicate, rejected)",
    ["outcome"],
    namespace=NAMESPACE,
)
QUEUE_DEPTH = Gauge(
    "queue_depth",
    "Messages waiting in the broker queue (Redis LLEN), read at scrape time",
    ["queue"],
    namespace=NAMESPACE,
    multiprocess_mode="mostrecent",
)
QUEUE_UNACKED = Gauge(
    "queue_unacked",
    "Messages taken by workers but not yet acknowledged (in flight or waiting for a retry)",
    namespace=NAMESPACE,
    multiprocess_mode="mostrecent",
)
RATE_LIMITED = Counter(
    "rate_limited_requests",
    "Requests refused with 429, by limit bucket",
    ["bucket"],
    namespace=NAMESPACE,
)
RATE_LIMITER_ERRORS = Counter(
    "rate_limiter_errors",
    "Requests let through unchecked because the limiter's Redis failed (fail open)",
    namespace=NAMESPACE,
)

# --- worker --------------------------------------------------------------------------------
EMBED_BATCH_SIZE = Histogram(
    "embed_batch_size",
    "Events per run of the batch embed task",
    namespace=NAMESPACE,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
EMBED_BATCH_DURATION = Histogram(
    "embed_batch_duration_seconds",
    "Wall time of one run of the batch embed task (load, embed, store)",
    namespace=NAMESPACE,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EMBED_TASKS = Counter(
    "embed_tasks",
    "Runs of the batch embed task, by outcome (ok, error)",
    ["outcome"],
    namespace=NAMESPACE,
)
RETRIES = Counter(
    "embed_retries",
    "Events re-queued after a transient embedder failure",
    namespace=NAMESPACE,
)
DEAD_LETTERS = Counter(
    "dead_letters",
    "Events given up on (permanent failure or attempts exhausted)",
    namespace=NAMESPACE,
)
EMBEDDINGS_REUSED = Counter(
    "embeddings_reused",
    "New versions of a subject whose unchanged text took the current version's vector over,"
    " with no embedder call",
    namespace=NAMESPACE,
)
CHUNKS_EMBEDDED = Counter(
    "embed_chunks",
    "Chunks embedded and stored (an event is one chunk or more)",
    namespace=NAMESPACE,
)
TOKENS_EMBEDDED = Counter(
    "embed_tokens",
    "Tokens of the chunks stored (word pieces with the local model, estimated otherwise)",
    namespace=NAMESPACE,
)
WORKER_HEARTBEAT = Gauge(
    "worker_heartbeat_timestamp_seconds",
    "Unix time of the worker's last heartbeat; alert when it stops moving",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)


def count_events(accepted: int = 0, duplicate: int = 0, rejected: int = 0) -> None:
    """Count ingest outcomes (the batch endpoint; the single one is counted by the gateway's
    request observer, which also sees the validation failures that never reach a handler)."""
    for outcome, n in (("accepted", accepted), ("duplicate", duplicate), ("rejected", rejected)):
        if n:
            EVENTS.labels(outcome).inc(n)


WORKER_ONLY = (
    EMBED_BATCH_SIZE,
    EMBED_BATCH_DURATION,
    EMBED_TASKS,
    RETRIES,
    DEAD_LETTERS,
    EMBEDDINGS_REUSED,
    WORKER_HEARTBEAT,
    CHUNKS_EMBEDDED,
    TOKENS_EMBEDDED,
)


def worker_family_names() -> frozenset[str]:
    """The family names of :data:`WORKER_ONLY` as the text format's parser gives them."""
    return frozenset(family.name for c in WORKER_ONLY for family in c.describe())


def gateway_only() -> None:
    """Leave the worker's metrics out of this process's exposition: the gateway showing a
    heartbeat of 0 would read as a dead worker. (Idempotent.)"""
    from prometheus_client import REGISTRY

    for collector in WORKER_ONLY:
        with contextlib.suppress(KeyError):
            REGISTRY.unregister(collector)


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, when this process runs in it."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry() -> CollectorRegistry:
    """The registry to expose: this process's own, or the sum over every process writing to
    ``PROMETHEUS_MULTIPROC_DIR`` (the worker's pool; a gateway run with several workers)."""
    if multiprocess_dir() is None:
        from prometheus_client import REGISTRY

        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged
