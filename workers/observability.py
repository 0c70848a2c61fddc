"""The worker's logs and metrics.

Metrics: the worker is a main process plus a prefork pool, so prometheus-client runs in
multiprocess mode. :func:`prepare` (called by ``workers.app.start_up`` before anything imports
prometheus-client) gives the worker a fresh ``PROMETHEUS_MULTIPROC_DIR`` of its own unless
the operator set one; the main process serves the sum over all its processes on
``WORKER_METRICS_PORT`` (0: none) and ticks a heartbeat gauge every
``WORKER_HEARTBEAT_S``. A pool child that exits has its live gauges removed.

Logs: JSON lines through ``common.logs`` (Celery's own logging setup is skipped). Each run
of a task logs one line: task name, batch size, duration, outcome and the request ids of
the messages in the batch (the gateway's ``X-Request-ID``, sent as a task header).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import structlog
from celery.signals import before_task_publish, setup_logging, worker_init, worker_process_shutdown
from redis import Redis

from common.logs import configure, get_logger
from workers import context

log = get_logger("eventsearch.worker")
F = TypeVar("F", bound=Callable[..., Any])


def prepare() -> None:
    """Multiprocess mode for this worker: a metrics directory only its processes write to."""
    from prometheus_client import values

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _make_private_dir()
    # Celery's command line loads its plugins (Flower among them) before our app, and they
    # import prometheus-client, which picks its value class once at import: pick again now
    # that the directory is known, so that our metrics (created after this) use the files.
    values.ValueClass = values.get_value_class()


def _make_private_dir() -> None:
    path = tempfile.mkdtemp(prefix="eventsearch-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    owner = os.getpid()

    def remove() -> None:
        # Only the process that made it (pool children inherit atexit handlers).
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)


@setup_logging.connect
def _logging(**_: Any) -> None:
    settings = context.settings()
    configure(settings.log_level, settings.log_format)


@worker_init.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    from prometheus_client import start_http_server

    from common import metrics

    settings = context.settings()
    if settings.worker_metrics_port:
        try:
            start_http_server(
                settings.worker_metrics_port,
                addr=settings.worker_metrics_host,
                registry=metrics.registry(),
            )
            log.info("metrics served", port=settings.worker_metrics_port)
        except OSError as error:
            # Two workers on one host with the same port: the second keeps working unwatched
            # rather than refusing to start; the warning says what to change.
            log.warning("metrics port unavailable; set WORKER_METRICS_PORT", error=repr(error))

    name = str(getattr(sender, "hostname", None) or f"worker-{os.getpid()}")

    def beat() -> None:
        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        while True:
            metrics.WORKER_HEARTBEAT.set(time.time())
            relay(redis, name, settings.worker_heartbeat_s)
            time.sleep(settings.worker_heartbeat_s)

    threading.Thread(target=beat, name="metrics-heartbeat", daemon=True).start()


_relay_failed = False


def relay(redis: Redis, name: str, heartbeat_s: float) -> None:
    """Publish this worker's metrics for the gateway's /metrics (common/metrics_relay.py).
    Redis being away costs a warning once per outage, never the heartbeat."""
    global _relay_failed
    from prometheus_client import generate_latest
    from redis import exceptions as redis_exc

    from common import metrics, metrics_relay

    try:
        metrics_relay.publish(redis, name, generate_latest(metrics.registry()), heartbeat_s)
    except (redis_exc.RedisError, OSError) as error:
        if not _relay_failed:
            log.warning("metrics not relayed to the gateway", error=repr(error))
        _relay_failed = True
    else:
        _relay_failed = False


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_: Any) -> None:
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """A task published from inside a task (a retry) keeps the request id it came with."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if headers is not None and request_id and not headers.get("request_id"):
        headers["request_id"] = request_id


def request_ids(requests: Sequence[Any]) -> list[str]:
    """Distinct request ids of a batch's messages, in order."""
    seen: dict[str, None] = {}
    for request in requests:
        value = (getattr(request, "request_dict", None) or {}).get("request_id")
        if value:
            seen[str(value)] = None
    return list(seen)


def observed(task_name: str) -> Callable[[F], F]:
    """Decorate a celery-batches task: one log line and the batch metrics per run."""
    from common import metrics

    def wrap(run: F) -> F:
        @functools.wraps(run)
        def observed_run(requests: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
            ids = request_ids(requests)
            size = sum(max(len(getattr(r, "args", ()) or ()), 1) for r in requests)
            started = time.perf_counter()
            outcome = "error"
            only = ids[0] if len(ids) == 1 else None
            with structlog.contextvars.bound_contextvars(request_id=only):
                try:
                    result = run(requests, *args, **kwargs)
                    outcome = "ok"
                    return result
                finally:
                    duration = time.perf_counter() - started
                    metrics.EMBED_BATCH_SIZE.observe(size)
                    metrics.EMBED_BATCH_DURATION.observe(duration)
                    metrics.EMBED_TASKS.labels(outcome).inc()
                    log.info(
                        "task",
                        task=task_name,
                        batch_size=size,
                        messages=len(requests),
                        duration_ms=round(duration * 1000, 2),
                        outcome=outcome,
                        request_ids=ids,
                    )

        return observed_run  # type: ignore[return-value]

    return wrap
