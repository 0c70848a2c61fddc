"""Odd input is the client's 4xx, never a 500 (issue 12, item 2): deeply nested JSON in a
GET search filter, lone surrogates anywhere in a string, control characters outside ASCII
in idempotency keys."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import event_body, new_key

SURROGATE = "k\ud800"


def raw_post(client: httpx.Client, path: str, body: str, **headers: str) -> httpx.Response:
    """``body`` as written (json.dumps escapes a lone surrogate as \\ud800, as a client would)."""
    return client.post(
        path, content=body.encode(), headers={"Content-Type": "application/json", **headers}
    )


@pytest.mark.parametrize("depth", [9, 200, 3000, 9000])
def test_deep_metadata_in_a_get_search_filter_is_422(client: httpx.Client, depth: int) -> None:
    nested = '{"a":' + "[" * depth + "]" * depth + "}"
    answer = client.get("/api/v1/search", params={"q": "x", "metadata": nested})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"][0]["loc"] == ["query", "metadata"]
    assert "MAX_METADATA_DEPTH" in error["details"][0]["msg"]


def test_deep_json_bodies_are_4xx(client: httpx.Client) -> None:
    """Too deep for the JSON parser: FastAPI's own 400 (the contract's "non-JSON: 422 or
    400"); deep but parseable: 422 naming metadata."""
    for depth, status in ((100_000, 400), (500, 422)):
        deep = "[" * depth + "]" * depth
        body = '{"source":"s","type":"t","text":"x","metadata":{"a":' + deep + "}}"
        single = raw_post(client, "/api/v1/events", body, **{"Idempotency-Key": new_key()})
        assert single.status_code == status, single.text
        search = raw_post(
            client, "/api/v1/search", '{"query":"x","filters":{"metadata":{"a":' + deep + "}}}"
        )
        assert search.status_code == status, search.text
        batch = raw_post(client, "/api/v1/events/batch", '{"events":[' + body + "]}")
        assert batch.status_code == (400 if status == 400 else 200), batch.text


@pytest.mark.parametrize(
    "field", ["source", "type", "text", "metadata-key", "metadata-value", "metadata-list"]
)
def test_a_lone_surrogate_in_any_string_is_422(client: httpx.Client, field: str) -> None:
    event: dict[str, object] = event_body()
    if field == "metadata-key":
        event["metadata"] = {SURROGATE: 1}
    elif field == "metadata-value":
        event["metadata"] = {"k": {"deeper": SURROGATE}}
    elif field == "metadata-list":
        event["metadata"] = {"k": ["fine", SURROGATE]}
    else:
        event[field] = SURROGATE
    single = raw_post(client, "/api/v1/events", json.dumps(event), **{"Idempotency-Key": new_key()})
    assert single.status_code == 422, single.text
    assert single.json()["error"]["code"] == "validation_error"
    batch = raw_post(
        client, "/api/v1/events/batch", json.dumps({"events": [{**event, "idempotency_key": "k"}]})
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["status"] == "rejected"


def test_a_lone_surrogate_in_a_field_name_is_422(client: httpx.Client) -> None:
    event = {**event_body(), SURROGATE: "unknown field"}
    single = raw_post(client, "/api/v1/events", json.dumps(event), **{"Idempotency-Key": new_key()})
    assert single.status_code == 422, single.text
    search = raw_post(client, "/api/v1/search", json.dumps({"query": "x", SURROGATE: 1}))
    assert search.status_code == 422, search.text
    batch = raw_post(client, "/api/v1/events/batch", json.dumps({"events": [event]}))
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0]["status"] == "rejected"


def test_a_lone_surrogate_in_a_search_query_is_422(client: httpx.Client) -> None:
    answer = raw_post(client, "/api/v1/search", json.dumps({"query": SURROGATE}))
    assert answer.status_code == 422, answer.text


def test_a_batch_key_with_a_lone_surrogate_is_rejected_and_echoed_as_null(
    client: httpx.Client,
) -> None:
    items = [{**event_body(), "idempotency_key": SURROGATE}, {**event_body(), "idempotency_key": 7}]
    answer = raw_post(client, "/api/v1/events/batch", json.dumps({"events": items}))
    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert first["status"] == "rejected"
    assert first["error"]["code"] == "idempotency_key_invalid"
    assert first["idempotency_key"] is None


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9f", "\u2028", "\u2029"])
def test_keys_with_del_c1_or_line_separators_are_refused(client: httpx.Client, char: str) -> None:
    key = f"key{char}{new_key()}"
    batch = client.post(
        "/api/v1/events/batch", json={"events": [{**event_body(), "idempotency_key": key}]}
    )
    assert batch.json()["results"][0]["error"]["code"] == "idempotency_key_invalid", batch.text
    # A header carries bytes (read as latin-1), so only C1 can be sent there; a DEL byte in
    # a header is the HTTP parser's to refuse (a 400 before the app, see the README).
    if 0x80 <= ord(char) <= 0x9F:
        single = client.post(
            "/api/v1/events",
            json=event_body(),
            headers=[("Idempotency-Key", key.encode("latin-1"))],  # type: ignore[list-item]
        )
        assert single.status_code == 400, single.text
        assert single.json()["error"]["code"] == "idempotency_key_invalid"
