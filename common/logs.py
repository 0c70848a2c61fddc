"""Structured logs: one JSON object per line on stderr, for the gateway and the worker alike.

structlog renders our own lines; the standard library's loggers (uvicorn, Celery,
SQLAlchemy) go through the same renderer, so an operator greps one format. Values bound
with ``structlog.contextvars`` (the request id, the tenant) land on every line logged while
they are bound.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and standard logging to one handler on stderr (idempotent)."""
    global _configured
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    if not _configured:
        structlog.configure(
            processors=[
                *shared,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; make its lines go through ours (its access log is
    # replaced by the gateway's request line, which knows the route, tenant and request id).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every embedder call at INFO ("HTTP Request: POST ..."): a line per search and
    # per batch that says nothing the request and task lines do not, and costs a JSON render
    # on the hot path. Its warnings still come through, and everything with LOG_LEVEL=DEBUG.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``log.info("event", key=value)`` becomes one JSON line."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
