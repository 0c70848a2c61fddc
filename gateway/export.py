"""``GET /api/v1/export/events.ndjson`` and ``.csv`` (scope ``admin``): the caller's events,
streamed from a server-side cursor in chunks, so memory stays flat whatever the table size.

The stream opens its own connection instead of the request session: the response body is
produced after the endpoint returns, when a request-scoped session may already be closed.
Vectors are not exported (they are large and model-specific; re-embedding rebuilds them).

CSV cells are neutralised against formula injection as OWASP recommends: a cell that
begins with ``=``, ``+``, ``-``, ``@``, tab or carriage return is written with a single
quote (``'``) in front, so that a spreadsheet shows it as text instead of evaluating it. A
cell that begins with ``'`` itself gets one too, which keeps the encoding lossless: drop
one leading ``'`` from any cell that has one to get the stored value back. NDJSON is
written as stored.

A stream that fails after its 200 was sent must not end looking like a complete file
(issue 12): the failure is logged with its traceback; NDJSON then ends with one line in the
error shape, ``{"error": {"code": "export_failed", "message", "request_id"}}``, which no
event line can look like (an event line has an ``id``, and its ``error`` is a string or
null, never an object); CSV has no place for such a line, so the connection is aborted (no
final empty chunk: clients report an incomplete body).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
from asgi_correlation_id import correlation_id
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.models import Event
from gateway.auth import AdminKey
from gateway.deps import EngineDep
from gateway.event_filters import SHOWN, Source, Status, matching

router = APIRouter(prefix="/api/v1/export", tags=["export"])
log = logging.getLogger("eventsearch.gateway")

COLUMNS = tuple(SHOWN)
CHUNK = 1000


def _query(tenant: str, source: str | None, type_: str | None, status: str | None) -> Select[Any]:
    query = select(*SHOWN.values()).where(*matching(tenant, source, type_, status))
    return query.order_by(Event.created_at, Event.id)


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ndjson(rows: Sequence[Any]) -> bytes:
    return b"".join(
        orjson.dumps(dict(zip(COLUMNS, row, strict=True)), default=str) + b"\n" for row in rows
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralised(cell: str) -> str:
    """The CSV cell for ``cell``: quoted with ``'`` when a spreadsheet could take it for
    a formula (see the module docstring)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return neutralised(value) if isinstance(value, str) else str(_iso(value))


def _csv(rows: Sequence[Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=True))
        values["metadata"] = orjson.dumps(values["metadata"]).decode()
        writer.writerow([_cell(values[c]) for c in COLUMNS])
    return out.getvalue().encode()


class ExportAborted(Exception):
    """Raised out of a CSV stream that failed mid-way, so that the server aborts the
    connection instead of ending the body as if it were complete."""


def _ndjson_failure() -> bytes:
    error = {
        "code": "export_failed",
        "message": "the export failed before its end; what came before is incomplete",
        "request_id": correlation_id.get(),
    }
    return orjson.dumps({"error": error}) + b"\n"


async def _stream(
    engine: AsyncEngine,
    query: Select[Any],
    encode: Callable[[Sequence[Any]], bytes],
    head: bytes,
    failure: Callable[[], bytes] | None,
) -> AsyncIterator[bytes]:
    """``head``, then the rows in chunks. On a failure, the last chunk is ``failure()``;
    without one (CSV) the stream raises :class:`ExportAborted`."""
    if head:
        yield head
    try:
        async with engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=CHUNK))
            async for rows in result.partitions(CHUNK):
                yield encode(rows)
    except Exception as error:
        log.exception("export failed mid-stream")
        if failure is None:
            raise ExportAborted("export failed mid-stream; connection aborted") from error
        yield failure()


@router.get("/events.ndjson", response_class=StreamingResponse)
async def export_ndjson(
    caller: AdminKey,
    engine: EngineDep,
    source: Source = None,
    type: Source = None,
    status: Status = None,
) -> StreamingResponse:
    """Every event of the caller's tenant, one JSON object a line, oldest first."""
    query = _query(caller.tenant, source, type, status)
    return StreamingResponse(
        _stream(engine, query, _ndjson, b"", _ndjson_failure),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="events.ndjson"'},
    )


@router.get("/events.csv", response_class=StreamingResponse)
async def export_csv(
    caller: AdminKey,
    engine: EngineDep,
    source: Source = None,
    type: Source = None,
    status: Status = None,
) -> StreamingResponse:
    """The same as CSV with a header row; ``metadata`` is a JSON string."""
    return StreamingResponse(
        _stream(
            engine,
            _query(caller.tenant, source, type, status),
            _csv,
            (",".join(COLUMNS) + "\r\n").encode(),
            None,
        ),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )
