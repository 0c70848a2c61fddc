"""Limits on what a request may carry, enforced before any handler runs (pure ASGI).

- Body size: ``MAX_BODY_BYTES`` (1 MiB), ``MAX_BATCH_BODY_BYTES`` on the batch endpoint.
  A declared ``Content-Length`` over the limit is refused at once; a body that is longer
  than declared, or chunked, is counted while it streams in, and the request is refused
  as soon as the count passes the limit. The body is never buffered here.
- NUL characters in the path or query string: 400 (PostgreSQL cannot store them).
- Media type: a body sent to ``/api/`` must be JSON (``application/json`` or ``+json``);
  anything else is 400 ``unsupported_media_type``, rather than a confusing 422 about a
  missing object. HTTP has 415 for this, but the contract promises clients "non-JSON: 422
  or 400", and a client's retry logic keyed on that must not meet a third status.
"""

from __future__ import annotations

import email.message

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.settings import HttpSettings
from gateway.errors import error_response

BATCH_PATH = "/api/v1/events/batch"
EVENTS_PATH = "/api/v1/events"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while the body streams in. FastAPI passes HTTPExceptions
    raised while it reads a body on to the error handlers, so the client gets the usual
    error shape with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class InputLimits:
    """ASGI middleware: body size and media type limits (see the module docstring)."""

    def __init__(self, app: ASGIApp, http: HttpSettings) -> None:
        self.app = app
        self.max_body = http.max_body_bytes
        self.max_batch_body = http.max_batch_body_bytes

    def limit_for(self, path: str) -> int:
        return self.max_batch_body if path.rstrip("/") == BATCH_PATH else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL cannot hold a NUL in text, and no parameter of ours needs one; refusing
            # it here covers every endpoint, including streamed ones that fail mid-answer.
            message = "NUL characters (%00) are not allowed in the URL"
            await reply(scope, receive, send, 400, "bad_request", message)
            return
        limit = self.limit_for(scope["path"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await reply(scope, receive, send, 400, "bad_request", "invalid Content-Length")
                return
            if int(declared) > limit:
                message = f"the request body is larger than {limit} bytes"
                await reply(scope, receive, send, 413, "payload_too_large", message)
                return
        has_body = (declared is not None and int(declared) > 0) or "transfer-encoding" in headers
        content_type = headers.get("content-type")
        if (
            has_body
            and scope["method"] in BODY_METHODS
            and scope["path"].startswith("/api/")
            and content_type is not None
            and not is_json(content_type)
            # A binary-mode CloudEvent's body is its data, of its own media type.
            and not (scope["path"].rstrip("/") == EVENTS_PATH and "ce-specversion" in headers)
        ):
            message = f"the body must be JSON (application/json), not {content_type[:100]!r}"
            await reply(scope, receive, send, 400, "unsupported_media_type", message)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as error:
            # Only when the body was read outside FastAPI's handling (nothing does today).
            if started:
                raise
            await reply(scope, receive, send, 413, "payload_too_large", str(error.detail))


async def reply(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    """Answer from the middleware in the one error shape. ``Connection: close`` because the
    rest of a refused body is never read."""
    response = error_response(status, code, message, headers={"Connection": "close"})
    await response(scope, receive, send)
