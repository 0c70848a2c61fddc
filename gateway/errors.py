"""One error shape for every failure: ``{"error": {"code", "message", "request_id"}}``.

Validation errors also carry ``details`` (FastAPI's ``detail`` items). No handler ever
returns a traceback; unexpected exceptions are logged with theirs and answered as 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError as PydanticValidationError
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.errors import AppError

log = logging.getLogger("eventsearch.gateway")

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    redis_exc.ConnectionError,
    redis_exc.TimeoutError,
    BrokerError,
)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": correlation_id.get()}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.code, exc.message, headers=exc.headers)


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = jsonable_encoder(exc.errors(), exclude={"input", "ctx", "url"})
    # The input echoed back could be megabytes of the client's body; the location is enough.
    fields = ", ".join(sorted({_field(item["loc"]) for item in items}))
    json_invalid = any(item.get("type") == "json_invalid" for item in items)
    message = "request body is not valid JSON" if json_invalid else f"invalid fields: {fields}"
    code = "invalid_json" if json_invalid else "validation_error"
    return error_response(422, code, message, details=items)


async def model_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """A model built from request data inside a handler (e.g. GET query parameters turned
    into a request model) refused it: that is the client's input, so 422 like any other."""
    assert isinstance(exc, PydanticValidationError)
    return await validation_error(_, RequestValidationError(exc.errors()))


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def dependency_down(_: Request, exc: Exception) -> JSONResponse:
    """A store went away mid-request: the client should retry, so 503 + Retry-After."""
    which = (
        "database" if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) else "redis"
    )
    log.warning("%s unavailable: %r", which, exc)
    return error_response(
        503,
        f"{which}_unavailable",
        f"the {which} is unavailable; retry later",
        headers={"Retry-After": "1"},
    )


WRITES = ("INSERT", "UPDATE", "DELETE")


def is_write_refusal(exc: sa_exc.DataError) -> bool:
    """A value refused while writing (an INSERT, UPDATE or DELETE): the request's. On a
    read it is ours: a value that was stored but cannot be loaded (psycopg's loaders raise
    DataError, e.g. for a year 10000), or a parameter the schemas should have refused."""
    return (exc.statement or "").lstrip().upper().startswith(WRITES)


async def invalid_value(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL refused a value the schemas let through (a NUL byte, a number out of
    range, malformed text) on a write: the request is at fault, so 422 rather than 500.
    The schemas are meant to catch these first; this is the net under them.

    A read that fails on a value is never the client's fault (issue 12: a stored year
    10000 made every read of its tenant a 422 blaming the request): logged with its
    traceback and answered 500 like any other fault of ours."""
    assert isinstance(exc, sa_exc.DataError)
    if not is_write_refusal(exc):
        return await unexpected_error(request, exc)
    log.warning("database refused a value: %s", exc)
    return error_response(422, "invalid_value", "a value in the request cannot be stored")


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the request id identifies it")


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(PydanticValidationError, model_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(sa_exc.DataError, invalid_value)
    for exc_type in DEPENDENCY_ERRORS:
        app.add_exception_handler(exc_type, dependency_down)
    app.add_exception_handler(Exception, unexpected_error)
