"""The eventsearch client: send events the way a retrying upstream system should.

>>> from eventsearch import Client
>>> with Client("http://localhost:8000", api_key="es_...") as es:
...     accepted = es.send({"source": "jobboard", "type": "job.posted", "text": "..."},
...                        idempotency_key="posting-42")

Needs only httpx and tenacity: nothing of the server (FastAPI, SQLAlchemy, Celery) is
imported, so upstream systems can install it next to anything.
"""

import logging

from eventsearch._wire import __version__
from eventsearch.aio import AsyncClient
from eventsearch.client import Client
from eventsearch.errors import (
    AuthError,
    BadRequest,
    Conflict,
    EmbeddingFailed,
    EventsearchError,
    IdempotencyKeyReused,
    NotFound,
    RateLimited,
    RequestTimeout,
    ServerError,
    TransportError,
    Unavailable,
    ValidationFailed,
    WaitTimeout,
)
from eventsearch.models import (
    Accepted,
    BatchItem,
    BatchResult,
    Event,
    ItemError,
    Passage,
    SearchHit,
    SearchResults,
    SubjectHistory,
)
from eventsearch.retry import RetryEvent, RetryPolicy

# A library leaves output to the application: without its own logging set up, retries are
# silent instead of going to stderr through logging's last-resort handler.
logging.getLogger("eventsearch").addHandler(logging.NullHandler())

__all__ = [
    "Accepted",
    "AsyncClient",
    "AuthError",
    "BadRequest",
    "BatchItem",
    "BatchResult",
    "Client",
    "Conflict",
    "EmbeddingFailed",
    "Event",
    "EventsearchError",
    "IdempotencyKeyReused",
    "ItemError",
    "NotFound",
    "Passage",
    "RateLimited",
    "RequestTimeout",
    "RetryEvent",
    "RetryPolicy",
    "SearchHit",
    "SearchResults",
    "ServerError",
    "SubjectHistory",
    "TransportError",
    "Unavailable",
    "ValidationFailed",
    "WaitTimeout",
    "__version__",
]
