"""The OpenAPI document, completed for clients and for the schemathesis fuzzing run:

- every ``/api/v1`` operation documents the errors any of them can answer (401, 403, 413,
  415, 422, 429, 503, ...) with the one error shape, instead of FastAPI's
  ``HTTPValidationError`` which this service never sends;
- the API-key schemes (Bearer and ``X-API-Key``) are declared, so ``/docs`` can send a key;
- every parameter and request body has an example (taken from the tables below when the
  endpoint's own code gives none).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_ID = "5c0f3a52-7d4e-4c2a-9a51-2f4b8f7e9c10"
PARAMETER_EXAMPLES: dict[str, Any] = {
    "event_id": EXAMPLE_ID,
    "id": EXAMPLE_ID,
    "dead_letter_id": EXAMPLE_ID,
    "q": "data engineering jobs in Kenya",
    "top_k": 5,
    "mode": "hybrid",
    "fusion": "rrf",
    "limit": 20,
    # A real cursor (gateway/cursors.py), so that the documented request is a valid one.
    "cursor": "MjAyNi0xMS0wMVQwOTowMDowMi40MTgwMDArMDA6MDB8"
    "NWMwZjNhNTItN2Q0ZS00YzJhLTlhNTEtMmY0YjhmN2U5YzEw",
    "source": "jobboard",
    "type": "job.posted",
    "status": "embedded",
    "occurred_after": "2026-11-01T00:00:00Z",
    "occurred_before": "2026-12-01T00:00:00Z",
    "metadata": '{"company": "Safaricom"}',
    "idempotency-key": "posting-2026-11-01-0001",
    "x-idempotency-key": "posting-2026-11-01-0001",
    "subject": "posting-42",
}
EXAMPLE_TIME = "2026-11-01T09:00:02.418Z"
HIT = {
    "id": EXAMPLE_ID,
    "score": 0.83,
    "text": "Senior data engineer, Nairobi",
    "source": "jobboard",
    "type": "job.posted",
    "metadata": {"company": "Safaricom"},
    "occurred_at": "2026-11-01T09:00:00Z",
}
# Examples of request and response models, used where the model itself gives none.
SCHEMA_EXAMPLES: dict[str, Any] = {
    "SearchRequest": {"query": "data engineering jobs in Kenya", "top_k": 5},
    "EventAccepted": {"id": EXAMPLE_ID, "status": "queued", "created_at": EXAMPLE_TIME},
    "EventOut": {
        **{k: v for k, v in HIT.items() if k != "score"},
        "status": "embedded",
        "attempts": 1,
        "error": None,
        "model": "nomic-embed-text",
        "embedded_at": "2026-11-01T09:00:03.102Z",
        "created_at": EXAMPLE_TIME,
    },
    "SearchResponse": {
        "results": [HIT],
        "model": "nomic-embed-text",
        "mode": "dense",
        "took_ms": 12.4,
    },
    "BatchResult": {
        "accepted": 1,
        "duplicate": 1,
        "rejected": 0,
        "results": [
            {"index": 0, "status": "accepted", "id": EXAMPLE_ID, "idempotency_key": "posting-1"},
            {"index": 1, "status": "duplicate", "id": EXAMPLE_ID, "idempotency_key": "posting-1"},
        ],
    },
    "Health": {"status": "ok", "database": "ok", "redis": "ok", "embedder": "ok"},
}
SCHEMA_EXAMPLES["SubjectHistory"] = {
    "source": "jobboard",
    "subject": "posting-42",
    "current": EXAMPLE_ID,
    "deleted_at": None,
    "versions": [{**SCHEMA_EXAMPLES["EventOut"], "subject": "posting-42"}],
    "next_cursor": None,
}
ERRORS: dict[str, str] = {
    "400": "bad request: missing or invalid header, unparsable or non-JSON body",
    "401": "missing, unknown or revoked API key, or an invalid JWT (`invalid_token`)",
    "403": "the API key or token lacks the scope this endpoint needs",
    "404": "not found (another tenant's id answers the same)",
    "405": "method not allowed",
    "413": "request body over the size limit",
    "422": "validation failed; `details` lists the fields",
    "429": "rate limit of the API key exceeded (see Retry-After and RateLimit-*), or too"
    " many failed authentications from the address (`too_many_auth_failures`)",
    "503": "a store is down; retry after Retry-After",
}
BODY_ERRORS = ("413",)
RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("Retry-After", "seconds to wait"),
        ("RateLimit-Limit", "requests allowed in the window"),
        ("RateLimit-Remaining", "requests left in the window"),
        ("RateLimit-Reset", "seconds until the window resets"),
    )
}


class ErrorInfo(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str = Field(examples=["invalid fields: text"])
    request_id: str | None = Field(examples=["0a4f3c1e9b8d4e6f8a2b1c3d5e7f9a0b"])
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The one error shape of every failure."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "rate_limited",
                        "message": "rate limit exceeded; retry in 12 s",
                        "request_id": "0a4f3c1e9b8d4e6f8a2b1c3d5e7f9a0b",
                    }
                }
            ]
        }
    )
    error: ErrorInfo


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for parameter in operation.get("parameters", []):
        example = PARAMETER_EXAMPLES.get(parameter["name"].lower())
        if "example" not in parameter and "examples" not in parameter and example is not None:
            parameter["example"] = example
    if not path.startswith("/api/"):
        return
    operation["security"] = [{"Bearer": []}, {"ApiKeyHeader": []}]
    wanted = [c for c in ERRORS if c not in BODY_ERRORS or method in ("post", "put", "patch")]
    for code in wanted:
        if code == "404" and "{" not in path:
            continue
        entry = responses.setdefault(code, {"description": ERRORS[code]})
        entry["content"] = _error_content()
        if code in ("429", "503"):
            entry["headers"] = (
                RATE_HEADERS if code == "429" else {"Retry-After": RATE_HEADERS["Retry-After"]}
            )


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the completions listed in the module docstring (cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    for name, example in SCHEMA_EXAMPLES.items():
        if name in schemas and "examples" not in schemas[name]:
            schemas[name]["examples"] = [example]
    components["securitySchemes"] = {
        "Bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key (es_...), or a JWT where JWT_JWKS_URL or "
            "JWT_HS256_SECRET is set",
        },
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_operation(path, method, operation)
    # FastAPI's validation-error models are no longer referenced: drop them.
    for name in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{name}"' not in json.dumps(schema):
            schemas.pop(name, None)
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
