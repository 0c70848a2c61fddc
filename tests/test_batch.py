"""POST /api/v1/events/batch: one result per item, in order; one bad item rejects itself."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import event_body, event_count, make_key, new_key, status_of, wait_for
from tests.processes import Gateway, Proc


def item(text_: str | None = None, key: str | None = None, **extra: object) -> dict[str, object]:
    return {**event_body(text_), "idempotency_key": key or new_key(), **extra}


def test_batch_with_valid_invalid_and_repeated_items(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    k1, k2 = new_key(), new_key()
    a, b = item("first valid", k1), item("second valid", k2)
    earlier = client.post(
        "/api/v1/events",
        json=event_body("sent before"),
        headers={"Idempotency-Key": (k0 := new_key())},
    ).json()
    events = [
        a,
        {"source": "s", "type": "t", "idempotency_key": new_key()},  # no text
        b,
        dict(a),  # repeat inside the batch
        {**event_body("sent before"), "idempotency_key": k0},  # repeat of an earlier POST
        {**event_body("another body"), "idempotency_key": k1},  # key reused, other body
        {**event_body(), "idempotency_key": "x" * 300},
        "not an object",
    ]
    response = client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert [r["status"] for r in results] == [
        "accepted",
        "rejected",
        "accepted",
        "duplicate",
        "duplicate",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 2, 4)
    assert results[3]["id"] == results[0]["id"]
    assert results[4]["id"] == earlier["id"]
    assert results[1]["error"]["code"] == "validation_error"
    assert "text" in results[1]["error"]["message"]
    assert results[5]["error"]["code"] == "idempotency_key_reused"
    assert results[6]["error"]["code"] == "idempotency_key_invalid"
    assert event_count(db, "idempotency_key IN (:a, :b)", a=k1, b=k2) == 2
    for r in (results[0], results[2]):
        wait_for(lambda r=r: status_of(client, r["id"])["status"] == "embedded", what="embedded")


def test_batch_sent_twice_is_all_duplicates(client: httpx.Client, db: Engine) -> None:
    events = [item(f"twice {i}") for i in range(50)]
    first = client.post("/api/v1/events/batch", json={"events": events}).json()
    again = client.post("/api/v1/events/batch", json={"events": events}).json()
    assert first["accepted"] == 50 and again["duplicate"] == 50
    assert [r["id"] for r in first["results"]] == [r["id"] for r in again["results"]]


def test_batch_key_reused_by_single_post_is_a_duplicate(client: httpx.Client) -> None:
    key = new_key()
    single = client.post(
        "/api/v1/events", json=event_body("shared body"), headers={"Idempotency-Key": key}
    ).json()
    result = client.post(
        "/api/v1/events/batch", json={"events": [item("shared body", key)]}
    ).json()["results"][0]
    assert result["status"] == "duplicate" and result["id"] == single["id"]


def test_batch_over_the_maximum_is_422(client: httpx.Client) -> None:
    events = [item() for _ in range(1001)]
    response = client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "batch_too_large"


def test_batch_needs_the_ingest_scope(gateway: Gateway, db: Engine) -> None:
    key = make_key(db, "t1", "search")
    response = httpx.post(
        f"{gateway.url}/api/v1/events/batch", json={"events": [item()]}, headers={"X-API-Key": key}
    )
    assert response.status_code == 403


def test_batch_body_must_hold_events(client: httpx.Client) -> None:
    for body in ({}, {"events": "nope"}, []):
        response = client.post("/api/v1/events/batch", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
