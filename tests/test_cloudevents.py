"""CloudEvents 1.0 in: structured, binary and batch mode; source + id are the idempotency
key, so a redelivered event is a duplicate; subject, type, time and data map onto the event."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.conftest import status_of, wait_for
from tests.processes import Worker

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def cloudevent(**attributes: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "https://jobs.example.com",
        "type": "com.example.job.posted",
        "subject": f"posting-{uuid.uuid4().hex[:6]}",
        "time": "2026-11-01T09:00:00Z",
        "datacontenttype": "application/json",
        "data": {"text": "Cartographer, Reykjavik", "company": "Landmaelingar"},
        **attributes,
    }


def post_structured(client: httpx.Client, event: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/events", content=json.dumps(event), headers=STRUCTURED)


def test_structured_mode_maps_attributes_and_replays_as_duplicate(client: httpx.Client) -> None:
    event = cloudevent()
    first = post_structured(client, event)
    assert first.status_code == 202, first.text
    read = status_of(client, first.json()["id"])
    assert read["source"] == "https://jobs.example.com"
    assert read["type"] == "com.example.job.posted"
    assert read["subject"] == event["subject"]
    assert read["occurred_at"].startswith("2026-11-01T09:00:00")
    assert read["text"] == "Cartographer, Reykjavik"
    assert read["metadata"] == {"company": "Landmaelingar", "cloudevent": {"id": event["id"]}}
    again = post_structured(client, event)  # redelivered: no Idempotency-Key header needed
    assert again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]


def test_binary_mode_with_text_and_with_json_data(client: httpx.Client) -> None:
    ce_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "/jobs",
        "ce-type": "job.posted",
        "ce-subject": "posting 7",
        "ce-time": "2026-11-02T10:00:00Z",
        "Content-Type": "text/plain; charset=utf-8",
    }
    first = client.post("/api/v1/events", content=b"Glaciologist, Tasiilaq", headers=headers)
    assert first.status_code == 202, first.text
    read = status_of(client, first.json()["id"])
    assert (read["text"], read["subject"], read["type"]) == (
        "Glaciologist, Tasiilaq",
        "posting 7",
        "job.posted",
    )
    again = client.post("/api/v1/events", content=b"Glaciologist, Tasiilaq", headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]

    # An extension attribute (ce-traceid) reads back in metadata.cloudevent.
    headers |= {"ce-id": str(uuid.uuid4()), "ce-traceid": "t-1", "Content-Type": "application/json"}
    body = json.dumps({"text": "Hydrographer", "grade": 3})
    as_json = client.post("/api/v1/events", content=body, headers=headers)
    assert as_json.status_code == 202, as_json.text
    read = status_of(client, as_json.json()["id"])
    assert read["text"] == "Hydrographer"
    assert read["metadata"] == {
        "grade": 3,
        "cloudevent": {"id": headers["ce-id"], "traceid": "t-1"},
    }


def test_batch_mode_each_item_judged_alone_and_replayed_as_duplicates(
    client: httpx.Client,
) -> None:
    good = [cloudevent(), cloudevent(data="Surveyor, Nuuk", datacontenttype="text/plain")]
    bad = {k: v for k, v in cloudevent().items() if k != "id"}
    body = json.dumps([*good, bad])
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    first = client.post("/api/v1/events/batch", content=body, headers=headers)
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected"]
    assert results[2]["error"]["code"] == "invalid_cloudevent"
    assert "id" in results[2]["error"]["message"]
    assert results[0]["idempotency_key"] == f"ce:https://jobs.example.com:{good[0]['id']}"
    assert status_of(client, results[1]["id"])["text"] == "Surveyor, Nuuk"
    again = client.post("/api/v1/events/batch", content=body, headers=headers)
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate", "rejected"]
    assert [r["id"] for r in again.json()["results"][:2]] == [r["id"] for r in results[:2]]


def test_an_invalid_cloudevent_is_422_naming_it(client: httpx.Client) -> None:
    missing = {k: v for k, v in cloudevent().items() if k != "source"}
    response = post_structured(client, missing)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_cloudevent"
    assert ["body", "source"] in [d["loc"] for d in error["details"]]
    not_json = client.post("/api/v1/events", content=b"{nope", headers=STRUCTURED)
    assert not_json.status_code == 422
    bad_time = client.post(
        "/api/v1/events",
        content=b"x",
        headers={"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t",
                 "ce-time": "yesterday", "Content-Type": "text/plain"},
    )  # fmt: skip
    assert bad_time.status_code == 422, bad_time.text


def test_cloudevent_subjects_version_and_delete(client: httpx.Client, worker: Worker) -> None:
    subject = f"posting-{uuid.uuid4().hex[:6]}"
    old = post_structured(client, cloudevent(subject=subject, time="2026-11-01T09:00:00Z"))
    new = post_structured(
        client,
        cloudevent(subject=subject, time="2026-11-03T09:00:00Z", type="com.example.job.updated"),
    )
    ids = [old.json()["id"], new.json()["id"]]
    wait_for(lambda: all(status_of(client, i)["status"] != "queued" for i in ids), 60, "settled")
    assert [status_of(client, i)["status"] for i in ids] == ["superseded", "embedded"]
    # A deletion type (SUBJECT_DELETE_TYPES, *.deleted) with no data at all.
    closed = {k: v for k, v in cloudevent(subject=subject).items() if k != "data"}
    closed |= {"type": "com.example.job.deleted", "time": "2026-11-04T09:00:00Z"}
    assert post_structured(client, closed).status_code == 202
    assert [status_of(client, i)["status"] for i in ids] == ["deleted", "deleted"]
