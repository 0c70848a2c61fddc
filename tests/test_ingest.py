"""POST /api/v1/events and GET /api/v1/events/{id}, against the real gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import event_body, event_count, new_key, status_of, wait_for
from tests.processes import Proc


def post(
    client: httpx.Client, body: object, key: str | None = None, **kw: object
) -> httpx.Response:
    headers = {"Idempotency-Key": key or new_key()}
    return client.post("/api/v1/events", json=body, headers=headers, **kw)  # type: ignore[arg-type]


def test_post_event_is_202_with_location(client: httpx.Client, db: Engine) -> None:
    response = post(
        client, event_body(metadata={"company": "Safaricom"}, occurred_at="2026-11-01T09:00:00Z")
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"] == f"/api/v1/events/{body['id']}"
    assert event_count(db, "id = :id", id=body["id"]) == 1


def test_status_of_a_posted_event(client: httpx.Client, worker: Proc) -> None:
    created = post(client, event_body("status read", metadata={"k": [1, 2]})).json()
    wait_for(lambda: status_of(client, created["id"])["status"] == "embedded", what="embedded")
    status = status_of(client, created["id"])
    assert status["id"] == created["id"] and status["created_at"] == created["created_at"]
    assert status["metadata"] == {"k": [1, 2]} and status["text"] == "status read"
    assert (status["attempts"], status["error"], status["model"]) == (1, None, "stub-embed")
    assert status["embedded_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "job.posted", "text": "no source"}, "source"),
        ({"source": "s", "type": "t"}, "text"),
        ({"source": "s", "type": "t", "text": 42}, "text"),
        ({"source": "s", "type": "t", "text": "x", "metadata": "not an object"}, "metadata"),
        ({"source": "s", "type": "t", "text": "x", "occurred_at": "yesterday"}, "occurred_at"),
        (
            {"source": "s", "type": "t", "text": "x", "occurred_at": "2026-11-01T09:00:00"},
            "occurred_at",
        ),
        ({"source": "", "type": "t", "text": "x"}, "source"),
        ({"source": "s", "type": "t", "text": "x", "colour": "red"}, "colour"),
    ],
)
def test_invalid_body_is_422_naming_the_field(
    client: httpx.Client, db: Engine, body: dict[str, object], field: str
) -> None:
    key = new_key()
    response = post(client, body, key)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]
    assert any(field in [str(p) for p in d["loc"]] for d in error["details"])
    assert error["request_id"]
    assert event_count(db, "idempotency_key = :k", k=key) == 0


def test_unknown_search_mode_is_422(client: httpx.Client) -> None:
    response = client.post("/api/v1/search", json={"query": "x", "mode": "telepathy"})
    assert response.status_code == 422
    assert "mode" in response.json()["error"]["message"]


def test_non_json_body_is_4xx_not_500(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/events",
        content=b"{not json",
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert "Traceback" not in response.text
    assert response.json()["error"]["code"]


def test_unknown_event_is_404(client: httpx.Client) -> None:
    for event_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = client.get(f"/api/v1/events/{event_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_repeated_key_does_not_create_a_second_event(client: httpx.Client, db: Engine) -> None:
    key, body = new_key(), event_body()
    first, second = post(client, body, key), post(client, body, key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert event_count(db, "idempotency_key = :k", k=key) == 1


def test_missing_idempotency_key_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v1/events", json=event_body())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_missing"
