"""CloudEvents 1.0 in: ``POST /api/v1/events`` in structured mode (``Content-Type:
application/cloudevents+json``) and binary mode (``ce-*`` headers, the body the data), and
``POST /api/v1/events/batch`` with ``application/cloudevents-batch+json`` (a JSON array of
structured events). Knative, Argo Events, Event Grid and EventBridge API destinations can
then deliver straight here.

A pure ASGI middleware, innermost: each CloudEvent is parsed with the CloudEvents Python
SDK (``cloudevents.core``, which checks the required attributes and their types) and
rewritten into the native request, so idempotency, validation, limits and answers are the
native endpoints' own:

- ``source`` + ``id`` (which the spec says identify an event) are the idempotency key,
  ``ce:{source}:{id}`` (an ``Idempotency-Key`` header is not needed, and is ignored): a
  redelivered event is answered as a duplicate;
- ``subject`` → subject, ``type`` → type, ``time`` → occurred_at; the event's ``id`` and
  its extension attributes go to ``metadata.cloudevent`` (unless the data has that field);
- ``data``: a string is the text; an object's ``CLOUDEVENTS_TEXT_FIELD`` (``text``) is the
  text and its other fields the metadata; a deletion (``type`` matching
  ``SUBJECT_DELETE_TYPES``) needs no data (its text is its type; it is erased anyway).

The SDK's constructor fills a missing ``id`` (a UUID) and ``time`` (now) in, a producer's
convenience; a receiver must not: a redelivery would get a new key, and a version without
``time`` would date itself at its arrival. So the required attributes are checked on the
message first, and ``time`` is taken only when the message has one.

A CloudEvent the SDK refuses is 422 ``invalid_cloudevent`` naming its attributes; in a batch
it rejects only its own item.
"""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.lifecycle.subjects import is_deletion
from common.settings import IngestSettings, Settings
from gateway.errors import error_response

EVENTS_PATH = "/api/v1/events"
BATCH_PATH = "/api/v1/events/batch"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
# An item of a CloudEvents batch that the SDK refused: gateway/batch.py rejects it with this
# message (one bad item rejects only itself).
ITEM_ERROR = "__cloudevent_error__"
FORMAT = JSONFormat()


# The OpenAPI document's word on the CloudEvents bodies (merged into the operations).
CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "data": {"description": "a string (the text), or an object whose `text` is the text"},
    },
    "example": {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "https://jobs.example.com",
        "type": "job.posted",
        "subject": "posting-42",
        "time": "2026-11-01T09:00:00Z",
        "data": {"text": "Senior data engineer, Nairobi", "company": "Safaricom"},
    },
}
EVENT_OPENAPI: dict[str, Any] = {
    "requestBody": {"content": {STRUCTURED: {"schema": CLOUDEVENT_SCHEMA}}}
}
BATCH_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {
            BATCH: {
                "schema": {
                    "type": "array",
                    "items": CLOUDEVENT_SCHEMA,
                    "example": [CLOUDEVENT_SCHEMA["example"]],
                }
            }
        }
    }
}


class InvalidCloudEvent(ValueError):
    def __init__(self, message: str, attributes: list[str]) -> None:
        super().__init__(message)
        self.attributes = attributes


def media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def is_binary(headers: dict[str, str]) -> bool:
    """A binary-mode CloudEvent (its attributes in ``ce-*`` headers); InputLimits lets its
    body be of any media type, as the data's own."""
    return "ce-specversion" in headers


def _parse(make: Any) -> BaseCloudEvent:
    try:
        event: BaseCloudEvent = make()
    except BaseCloudEventException as error:
        names = sorted(getattr(error, "errors", None) or {}) or ["body"]
        raise InvalidCloudEvent(f"not a valid CloudEvent: {error}", names) from None
    except (ValueError, TypeError, AttributeError) as error:  # not JSON, not an object, ...
        raise InvalidCloudEvent(f"not a valid CloudEvent: {error}", ["body"]) from None
    return event


REQUIRED = ("specversion", "id", "source", "type")
CORE_ATTRIBUTES = frozenset(
    {*REQUIRED, "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"}
)


def _required(names: Any) -> None:
    """The message names every required attribute (see the module docstring)."""
    missing = [a for a in REQUIRED if a not in names]
    if missing:
        raise InvalidCloudEvent(f"not a valid CloudEvent: missing {', '.join(missing)}", missing)


def native(
    event: BaseCloudEvent, ingest: IngestSettings, timed: bool
) -> tuple[str, dict[str, Any]]:
    """The idempotency key and the native event body of a CloudEvent (``timed``: the
    message had a ``time``)."""
    body: dict[str, Any] = {"source": event.get_source(), "type": event.get_type()}
    subject = event.get_subject()
    if subject is not None:
        body["subject"] = subject
    when = event.get_time() if timed else None
    if when is not None:
        body["occurred_at"] = when.isoformat()
    data = event.get_data()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCloudEvent("data must be UTF-8 text or JSON", ["data"]) from None
    if isinstance(data, str):
        body["text"] = data
    elif isinstance(data, dict):
        rest = dict(data)
        if ingest.cloudevents_text_field in rest:
            body["text"] = rest.pop(ingest.cloudevents_text_field)
        if rest:
            body["metadata"] = rest
    elif data is not None:
        body["metadata"] = {"data": data}  # a JSON array or number: kept, the text is missing
    if (
        "text" not in body
        and subject is not None
        and is_deletion(event.get_type(), False, ingest.subject_delete_types)
    ):
        body["text"] = event.get_type()
    # The event's own id and its extension attributes read back (the key is not shown).
    trace = {"id": event.get_id()} | {
        k: v for k, v in event.get_attributes().items() if k not in CORE_ATTRIBUTES
    }
    body.setdefault("metadata", {}).setdefault("cloudevent", trace)
    return f"ce:{event.get_source()}:{event.get_id()}", body


def structured(raw: Any) -> BaseCloudEvent:
    if not isinstance(raw, dict):
        raise InvalidCloudEvent("a CloudEvent must be a JSON object", ["body"])
    _required(raw)
    return _parse(lambda: FORMAT.read(None, json.dumps(raw)))


class CloudEventsIn:
    """ASGI middleware rewriting CloudEvents requests into native ones (module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.ingest = settings.ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        kind = media_type(headers)
        if path == EVENTS_PATH and (kind == STRUCTURED or is_binary(headers)):
            body = await read_body(receive)
            try:
                if is_binary(headers):
                    attributes = {h[3:] for h in headers if h.startswith("ce-")}
                    _required(attributes)
                    message = HTTPMessage(headers=headers, body=body)
                    event = _parse(lambda: from_binary(message, FORMAT))
                else:
                    raw = _json(body)
                    event = structured(raw)
                    attributes = set(raw)
                key, native_body = native(event, self.ingest, "time" in attributes)
            except InvalidCloudEvent as error:
                await _refuse(scope, receive, send, error)
                return
            rewritten = json.dumps(native_body).encode()
            extra = {"idempotency-key": key}
        elif path == BATCH_PATH and kind == BATCH:
            try:
                items = _json(await read_body(receive))
                if not isinstance(items, list):
                    raise InvalidCloudEvent("a CloudEvents batch is a JSON array", ["body"])
            except InvalidCloudEvent as error:
                await _refuse(scope, receive, send, error)
                return
            rewritten = json.dumps({"events": [self._item(i) for i in items]}).encode()
            extra = {}
        else:
            await self.app(scope, receive, send)
            return
        await self.app(_with_body(scope, rewritten, extra), _replay(rewritten, receive), send)

    def _item(self, raw: Any) -> dict[str, Any]:
        try:
            key, body = native(structured(raw), self.ingest, "time" in raw)
        except InvalidCloudEvent as error:
            return {ITEM_ERROR: str(error)}
        return {**body, "idempotency_key": key}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise InvalidCloudEvent(f"the body is not JSON: {error}", ["body"]) from None


async def read_body(receive: Receive) -> bytes:
    """The whole body (InputLimits, outside, counts it and stops an oversized one)."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _with_body(scope: Scope, body: bytes, extra: dict[str, str]) -> Scope:
    dropped = {"content-length", "content-type", "idempotency-key", "x-idempotency-key"}
    headers = [
        (k, v)
        for k, v in scope["headers"]
        if k.decode("latin-1").lower() not in dropped
        and not k.decode("latin-1").lower().startswith("ce-")
    ]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode("latin-1"), v.encode()) for k, v in extra.items()]
    return {**scope, "headers": headers}


def _replay(body: bytes, original: Receive) -> Receive:
    """The rewritten body, then the client's own messages (a disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, error: InvalidCloudEvent) -> None:
    details = [
        {"loc": ["body", name], "msg": str(error), "type": "cloudevent"}
        for name in error.attributes
    ]
    response = error_response(422, "invalid_cloudevent", str(error), details=details)
    await response(scope, receive, send)
