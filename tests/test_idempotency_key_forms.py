"""``Idempotency-Key: "abc"`` (the IETF draft's RFC 8941 sf-string) is the same key as
``abc`` (issue 12, item 10): the parser, property-tested, and both forms through the API."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import AppError
from gateway.idempotency import MAX_KEY_LENGTH, key_from_header, parse_sf_string
from tests.conftest import event_body, new_key

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
KEYS = st.text(PRINTABLE, min_size=1, max_size=MAX_KEY_LENGTH)


def sf_string(key: str) -> str:
    """RFC 8941 section 4.1.6: serialise a string."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=500, derandomize=True, database=None)
@given(KEYS)
def test_the_quoted_form_is_the_same_key(key: str) -> None:
    assert key_from_header(sf_string(key), required=True) == key
    assert key_from_header(" " + sf_string(key) + " ", required=True) == key


@settings(max_examples=500, derandomize=True, database=None)
@given(KEYS.filter(lambda k: not k.lstrip(" ").startswith('"')))
def test_a_bare_key_is_itself(key: str) -> None:
    assert key_from_header(key, required=True) == key


@settings(max_examples=2000, derandomize=True, database=None)
@given(st.text(max_size=300) | st.builds(lambda k: '"' + k, st.text(max_size=300)))
def test_any_header_value_is_a_key_or_invalid_never_a_crash(value: str) -> None:
    try:
        key = key_from_header(value, required=True)
    except AppError as error:
        assert error.code in ("idempotency_key_invalid", "idempotency_key_missing")
        assert error.status_code == 400
    else:
        assert key is not None and 1 <= len(key) <= MAX_KEY_LENGTH


@pytest.mark.parametrize(
    "value", ['"abc', '"a\\bc"', '"abc";p=1', '"abc" x', '""', '"caf\u00e9"', '"a\tb"']
)
def test_malformed_quoted_strings_are_invalid(value: str) -> None:
    with pytest.raises(AppError) as refused:
        parse_sf_string(value)
    assert refused.value.code == "idempotency_key_invalid"


def test_escapes_are_read() -> None:
    assert parse_sf_string('"a\\"b\\\\c"') == 'a"b\\c'


def test_both_forms_name_one_key_through_the_api(client: httpx.Client) -> None:
    key, body = new_key() + '"q\\', event_body()
    first = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": sf_string(key)})
    assert first.status_code == 202, first.text
    bare = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": key})
    assert bare.status_code == 202
    assert bare.headers["idempotent-replayed"] == "true"
    assert bare.content == first.content
    batch = client.post("/api/v1/events/batch", json={"events": [{**body, "idempotency_key": key}]})
    assert batch.json()["results"][0] == {**batch.json()["results"][0], "status": "duplicate"}
    assert batch.json()["results"][0]["id"] == first.json()["id"]
    broken = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": '"unclosed'})
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "idempotency_key_invalid"
