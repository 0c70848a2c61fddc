"""Input limits: oversized, malformed or unstorable input is a 4xx in the one error shape,
never a 500 and never a traceback. Against real gateway processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests import processes
from tests.conftest import event_body, event_count, extra_gateway, new_key

SMALL_BODY = 16 * 1024
SMALL_BATCH_BODY = 64 * 1024


@pytest.fixture(scope="module")
def small_gateway(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    """A gateway with small body limits, so that tests need not send megabytes."""
    with extra_gateway(
        stack_env,
        tmp_root,
        "gateway-small",
        MAX_BODY_BYTES=str(SMALL_BODY),
        MAX_BATCH_BODY_BYTES=str(SMALL_BATCH_BODY),
        MAX_METADATA_BYTES="2048",
        MAX_METADATA_DEPTH="4",
        MAX_TEXT_CHARS="1000",
        SEARCH_MAX_TOP_K="5",
    ) as gateway:
        yield gateway


@pytest.fixture
def small(small_gateway: processes.Gateway, api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=small_gateway.url, timeout=30, headers=headers) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["request_id"] and error["message"]
    if code:
        assert error["code"] == code
    return error


def raw_post(
    client: httpx.Client, content: bytes | Iterator[bytes], **headers: str
) -> httpx.Response:
    return client.post(
        "/api/v1/events",
        content=content,
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json", **headers},
    )


def test_body_over_limit_is_413(small: httpx.Client, db: Engine) -> None:
    key = new_key()
    body = json.dumps(event_body("x" * SMALL_BODY)).encode()
    response = small.post(
        "/api/v1/events",
        content=body,
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
    assert event_count(db, "idempotency_key = :k", k=key) == 0


def test_default_body_limit_is_one_mebibyte(client: httpx.Client) -> None:
    body = json.dumps(event_body("x" * (1024 * 1024))).encode()
    assert_error(raw_post(client, body), 413, "payload_too_large")


def test_chunked_body_over_limit_is_413_while_streaming(small: httpx.Client) -> None:
    """No Content-Length to trust: the body is counted as it arrives."""
    chunk = b" " * 4096

    def chunks() -> Iterator[bytes]:
        yield b'{"source": "s", "type": "t", "text": "x"'
        for _ in range(SMALL_BODY // len(chunk) + 2):
            yield chunk
        yield b"}"

    response = raw_post(small, chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_body_under_limit_is_accepted(small: httpx.Client) -> None:
    assert raw_post(small, json.dumps(event_body("x" * 900)).encode()).status_code == 202


def test_batch_endpoint_has_its_own_larger_limit(small: httpx.Client) -> None:
    between = b'{"events": [' + b" " * (SMALL_BODY * 2) + b"]}"
    response = small.post(
        "/api/v1/events/batch", content=between, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []  # an empty batch: nothing accepted, nothing refused
    over = b'{"events": [' + b" " * SMALL_BATCH_BODY + b"]}"
    response = small.post(
        "/api/v1/events/batch", content=over, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_body_that_is_not_json_is_400(client: httpx.Client, db: Engine, content_type: str) -> None:
    """The contract: non-JSON is 422 or 400 (not HTTP's 415), and nothing is stored."""
    text = f"not stored {new_key()}"
    response = raw_post(
        client, json.dumps(event_body(text)).encode(), **{"Content-Type": content_type}
    )
    assert_error(response, 400, "unsupported_media_type")
    assert event_count(db, "text = :t", t=text) == 0


def test_json_with_charset_and_plus_json_are_accepted(client: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        body = json.dumps(event_body()).encode()
        assert raw_post(client, body, **{"Content-Type": content_type}).status_code == 202


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b"null",
        b'"a string"',
        b'{"source": "s", "type": "t", "text": "caf\xc3"}',  # invalid UTF-8
        b'\xff\xfe{"source": "s"}',
        b'{"source": "s", "type": "t", "text": "x", "metadata": {"n": ' + b"9" * 5000 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any parser's recursion
        b'{"source": "s", "type": "t", "text": "x"}{"again": 1}',
        b'{"source": "s", "type": "t", "text": "x", "text": 5}',
    ],
    ids=[
        "empty",
        "broken",
        "array",
        "null",
        "string",
        "bad-utf8",
        "bom-utf16",
        "5000-digit-int",
        "deep-nesting",
        "trailing-data",
        "duplicate-key",
    ],
)
def test_malformed_body_is_4xx_not_500(
    client: httpx.Client, content: bytes, request: pytest.FixtureRequest
) -> None:
    response = raw_post(client, content)
    status, code = MALFORMED_ANSWERS[request.node.callspec.id]
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert "Traceback" not in response.text


# What each malformed body answers: 422 when it parses as JSON (or fails as JSON syntax),
# 400 when it is not even text the JSON parser can read.
MALFORMED_ANSWERS = {
    "empty": (422, "validation_error"),
    "broken": (422, "invalid_json"),
    "array": (422, "validation_error"),
    "null": (422, "validation_error"),
    "string": (422, "validation_error"),
    "bad-utf8": (400, "bad_request"),
    "bom-utf16": (400, "bad_request"),
    "5000-digit-int": (400, "bad_request"),
    "deep-nesting": (400, "bad_request"),
    "trailing-data": (422, "invalid_json"),
    "duplicate-key": (422, "validation_error"),
}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event_body("nul \u0000 in text"), "text"),
        ({**event_body(), "source": "jobs\u0000"}, "source"),
        ({**event_body(), "type": "\u0000"}, "type"),
        (event_body(metadata={"k": "v\u0000"}), "metadata"),
        (event_body(metadata={"k\u0000": "v"}), "metadata"),
        (event_body(metadata={"k": [{"deep": "\u0000"}]}), "metadata"),
    ],
    ids=["text", "source", "type", "metadata-value", "metadata-key", "metadata-nested"],
)
def test_nul_character_is_422_naming_the_field(
    client: httpx.Client, db: Engine, body: dict, field: str
) -> None:
    key = new_key()
    response = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": key})
    error = assert_error(response, 422, "validation_error")
    assert field in error["message"]
    assert event_count(db, "idempotency_key = :k", k=key) == 0


def test_nul_in_search_query_is_4xx(client: httpx.Client) -> None:
    assert_error(client.post("/api/v1/search", json={"query": "a\u0000b"}), 422)
    # In a URL it is refused before routing, for every endpoint.
    assert_error(client.get("/api/v1/search", params={"q": "a\x00b"}), 400, "bad_request")


@pytest.mark.parametrize(
    "raw_number", [b"1e400", b"-1e400", b"18446744073709551616", b"-9223372036854775809"]
)
def test_numbers_that_cannot_be_stored_are_422(client: httpx.Client, raw_number: bytes) -> None:
    body = b'{"source": "s", "type": "t", "text": "x", "metadata": {"n": ' + raw_number + b"}}"
    error = assert_error(raw_post(client, body), 422, "validation_error")
    assert "metadata" in error["message"]


def test_largest_64_bit_numbers_are_accepted(client: httpx.Client) -> None:
    body = event_body(metadata={"max": 2**63 - 1, "min": -(2**63), "big": 1.7e308})
    assert raw_post(client, json.dumps(body).encode()).status_code == 202


def test_huge_top_k_is_422(client: httpx.Client) -> None:
    for top_k in ("1e400", "99999999999999999999999", "-1"):
        body = b'{"query": "x", "top_k": ' + top_k.encode() + b"}"
        response = client.post(
            "/api/v1/search", content=body, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 422)
    assert_error(client.get("/api/v1/search", params={"q": "x", "top_k": "1" * 50}), 422)


def test_text_over_limit_is_422(small: httpx.Client) -> None:
    error = assert_error(raw_post(small, json.dumps(event_body("x" * 1001)).encode()), 422)
    assert "text" in error["message"]


def test_metadata_too_deep_is_422(small: httpx.Client) -> None:
    deep: dict = {"leaf": 1}
    for _ in range(4):
        deep = {"level": deep}
    error = assert_error(raw_post(small, json.dumps(event_body(metadata=deep)).encode()), 422)
    assert "metadata" in error["message"]
    assert "MAX_METADATA_DEPTH" in json.dumps(error["details"])


def test_metadata_at_depth_limit_is_accepted(small: httpx.Client) -> None:
    deep = {"a": {"b": {"c": [1, 2]}}}  # four levels: object, object, object, list
    assert raw_post(small, json.dumps(event_body(metadata=deep)).encode()).status_code == 202


def test_metadata_too_big_is_422(small: httpx.Client) -> None:
    body = event_body(metadata={f"k{i}": "v" * 100 for i in range(30)})
    error = assert_error(raw_post(small, json.dumps(body).encode()), 422)
    assert "MAX_METADATA_BYTES" in json.dumps(error["details"])


def test_filter_values_over_limit_are_422(client: httpx.Client) -> None:
    """Each value of a search filter is a clause of the query: MAX_FILTER_VALUES (100)."""
    ok = client.post("/api/v1/search", json={"query": "x", "filters": {"source": ["a"] * 100}})
    assert ok.status_code == 200, ok.text
    for filters in ({"source": ["a"] * 101}, {"type": [f"t{i}" for i in range(101)]}):
        response = client.post("/api/v1/search", json={"query": "x", "filters": filters})
        error = assert_error(response, 422, "validation_error")
        assert "MAX_FILTER_VALUES" in json.dumps(error["details"])
    response = client.get("/api/v1/search", params=[("q", "x")] + [("source", "a")] * 101)
    assert_error(response, 422)


def test_top_k_over_the_maximum_is_422_naming_the_setting(
    client: httpx.Client, small: httpx.Client
) -> None:
    """SEARCH_MAX_TOP_K bounds the rows a search reads and sends: 100 by default, 5 on the
    small gateway; GET names its own parameter."""
    assert client.post("/api/v1/search", json={"query": "x", "top_k": 100}).status_code == 200
    error = assert_error(client.post("/api/v1/search", json={"query": "x", "top_k": 101}), 422)
    assert error["details"][0]["loc"] == ["body", "top_k"]
    assert "SEARCH_MAX_TOP_K" in error["details"][0]["msg"]
    assert small.get("/api/v1/search", params={"q": "x", "top_k": 5}).status_code == 200
    error = assert_error(small.get("/api/v1/search", params={"q": "x", "top_k": 6}), 422)
    assert error["details"][0]["loc"] == ["query", "top_k"]
    assert "at most 5" in error["details"][0]["msg"]
    error = assert_error(small.post("/api/v1/search", json={"query": "x", "top_k": 6}), 422)
    assert error["details"][0]["loc"] == ["body", "top_k"]


@pytest.mark.parametrize(
    "filters",
    [
        {"source": ["a\u0000"]},
        {"metadata": {"k": "\u0000"}},
        {"metadata": {"n": 2**70}},
        {"occurred_after": 0},
    ],
    ids=["nul-source", "nul-metadata", "huge-int", "numeric-time"],
)
def test_unstorable_filter_values_are_422(client: httpx.Client, filters: dict) -> None:
    response = client.post("/api/v1/search", json={"query": "x", "filters": filters})
    assert_error(response, 422)


def test_errors_have_one_shape_for_unknown_paths_and_methods(client: httpx.Client) -> None:
    assert_error(client.get("/no/such/path"), 404, "not_found")
    assert_error(client.put("/api/v1/search", json={}), 405, "method_not_allowed")


def test_batch_item_with_unstorable_values_is_rejected_alone(client: httpx.Client) -> None:
    items = [
        {**event_body(), "idempotency_key": new_key()},
        {**event_body(metadata={"n": 2**70}), "idempotency_key": new_key()},
        {**event_body("nul \u0000"), "idempotency_key": new_key()},
        {**event_body(metadata={"k\u0000": 1}), "idempotency_key": new_key()},
    ]
    response = client.post("/api/v1/events/batch", json={"events": items})
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "rejected"]


@pytest.mark.parametrize(
    ("url", "status", "code"),
    [
        ("/api/v1/export/events.ndjson?source=a%00b", 400, "bad_request"),
        ("/api/v1/export/events.csv?source=%00", 400, "bad_request"),
        ("/api/v1/events/%00", 400, "bad_request"),
        # Bytes that are not UTF-8 decode to replacement characters: a query like any other.
        ("/api/v1/search?q=%FF%FE", 200, None),
        ("/api/v1/search?q=x&top_k=1e400", 422, "validation_error"),
    ],
)
def test_bad_query_parameters_are_4xx_not_500(
    client: httpx.Client, url: str, status: int, code: str | None
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    if code is None:  # a search answer, whatever it finds
        assert set(response.json()) == {"results", "model", "mode", "took_ms"}
    else:
        error = response.json()["error"]
        assert error["code"] == code and error["request_id"]


def test_large_floats_in_metadata_survive_storage_and_export(client: httpx.Client) -> None:
    """jsonb prints 1e20 as a 21-digit integer; reading it back must not break exports."""
    metadata = {"big": 1e20, "tiny": -1e300, "int": 2**62}
    created = raw_post(client, json.dumps(event_body(metadata=metadata)).encode())
    assert created.status_code == 202, created.text
    stored = client.get(created.headers["location"]).json()["metadata"]
    assert stored == metadata
    exported = client.get("/api/v1/export/events.ndjson")
    assert exported.status_code == 200
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert any(r["id"] == created.json()["id"] and r["metadata"] == metadata for r in rows)


@pytest.mark.parametrize("value", [0, 1767225600, -2.4e-247, True])
def test_occurred_at_must_be_an_rfc3339_string(client: httpx.Client, value: object) -> None:
    body = event_body(occurred_at=value)
    error = assert_error(raw_post(client, json.dumps(body).encode()), 422)
    assert "occurred_at" in error["message"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"X-API-Key": "es_wrong"}, 401, "unauthorized"),
        (None, 413, "payload_too_large"),  # the session's valid key
    ],
    ids=["no-key", "wrong-key", "valid-key"],
)
def test_body_limits_apply_only_after_authentication(
    small_gateway: processes.Gateway,
    api_key: str,
    headers: dict[str, str] | None,
    status: int,
    code: str,
) -> None:
    """The key is checked from the headers first (issue 12): an unknown caller learns
    nothing about its body, not even that it is too large."""
    body = json.dumps(event_body("x" * SMALL_BODY)).encode()
    response = httpx.post(
        f"{small_gateway.url}/api/v1/events",
        content=body,
        headers={
            "Idempotency-Key": new_key(),
            "Content-Type": "application/json",
            **(headers if headers is not None else {"X-API-Key": api_key}),
        },
    )
    assert_error(response, status, code)
