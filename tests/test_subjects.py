"""Subjects: versions of one thing, the current one the only one search finds, deletion by
endpoint and by event, revival, history, and unchanged text that is not embedded again."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key, status_of, wait_for
from tests.processes import Gateway, Worker
from tests.stub_embedder import StubServer

MODES = ("dense", "keyword", "hybrid")


def send(client: httpx.Client, subject: str, text_: str, at: str | None, **extra: Any) -> str:
    body: dict[str, Any] = {"source": "jobboard", "type": "job.updated", "text": text_}
    body.update(subject=subject, **extra)
    if at is not None:
        body["occurred_at"] = at
    response = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": new_key()})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def settled(client: httpx.Client, *ids: str) -> dict[str, dict[str, Any]]:
    """Wait until none of ``ids`` is queued; their status reads."""
    reads: dict[str, dict[str, Any]] = {}

    def done() -> bool:
        reads.update({i: status_of(client, i) for i in ids})
        return all(r["status"] != "queued" for r in reads.values())

    wait_for(done, 60, "versions settled")
    # Read again: a version stored between two reads of one round may have superseded one
    # read before it; once none is queued, nothing changes any more.
    return {i: status_of(client, i) for i in ids}


def hits(client: httpx.Client, query: str, mode: str, **filters: Any) -> list[dict[str, Any]]:
    body = {"query": query, "top_k": 20, "mode": mode, "filters": filters}
    response = client.post("/api/v1/search", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


@pytest.fixture
def tenant_client(gateway: Gateway, db: Engine) -> httpx.Client:
    """A tenant of its own: search results hold only this test's events."""
    key = make_key(db, f"subj-{uuid.uuid4().hex[:8]}")
    return httpx.Client(base_url=gateway.url, timeout=30, headers={"X-API-Key": key})


def test_newer_version_supersedes_the_older_in_every_search_mode(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    old = send(client, "job-1", "walrus keeper wanted, Tromso", "2026-11-01T09:00:00Z")
    settled(client, old)
    new = send(client, "job-1", "walrus keeper wanted, Tromso, now remote", "2026-11-02T09:00:00Z")
    reads = settled(client, old, new)
    assert reads[new]["status"] == "embedded" and reads[new]["subject"] == "job-1"
    assert reads[old]["status"] == "superseded"
    # Readable by id, with its text.
    assert reads[old]["text"] == "walrus keeper wanted, Tromso"
    for mode in MODES:
        found = hits(client, "walrus keeper Tromso", mode)
        assert [h["id"] for h in found] == [new], mode
        assert found[0]["subject"] == "job-1"


def test_an_older_version_arriving_late_never_replaces_the_newer(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    new = send(client, "job-2", "narwhal guide, Svalbard, updated", "2026-11-02T09:00:00Z")
    settled(client, new)
    late = send(client, "job-2", "narwhal guide, Svalbard", "2026-11-01T09:00:00Z")
    reads = settled(client, new, late)
    assert reads[new]["status"] == "embedded"
    assert reads[late]["status"] == "superseded"
    assert reads[late]["embedded_at"] is None  # never embedded: no embedder call was made
    for mode in MODES:
        assert [h["id"] for h in hits(client, "narwhal guide Svalbard", mode)] == [new]


def test_equal_occurred_at_the_later_accepted_is_current(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    first = send(client, "job-3", "puffin counter, first", "2026-11-01T09:00:00Z")
    second = send(client, "job-3", "puffin counter, second", "2026-11-01T09:00:00Z")
    reads = settled(client, first, second)
    assert (reads[first]["status"], reads[second]["status"]) == ("superseded", "embedded")


def test_versions_in_one_batch_leave_the_latest_current(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    events = [
        {"source": "jobboard", "type": "job.updated", "text": f"otter survey v{n}",
         "subject": "job-4", "occurred_at": f"2026-11-0{n}T09:00:00Z",
         "idempotency_key": new_key()}
        for n in (2, 3, 1)
    ]  # fmt: skip
    response = client.post("/api/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    ids = [r["id"] for r in response.json()["results"]]
    reads = settled(client, *ids)
    assert [reads[i]["status"] for i in ids] == ["superseded", "embedded", "superseded"]
    assert [h["id"] for h in hits(client, "otter survey", "hybrid")] == [ids[1]]


def test_unchanged_text_takes_the_vector_over_without_an_embedder_call(
    tenant_client: httpx.Client, worker: Worker, stub: StubServer
) -> None:
    client = tenant_client
    text_ = f"lighthouse keeper {uuid.uuid4().hex}"
    first = send(client, "job-5", text_, "2026-11-01T09:00:00Z", metadata={"salary": 1})
    settled(client, first)
    assert stub.behaviour.seen[text_] == 1
    second = send(client, "job-5", text_, "2026-11-02T09:00:00Z", metadata={"salary": 2})
    reads = settled(client, first, second)
    assert reads[second]["status"] == "embedded" and reads[second]["model"] == "stub-embed"
    assert reads[first]["status"] == "superseded"
    assert stub.behaviour.seen[text_] == 1  # no second call for the same text
    [hit] = hits(client, "lighthouse keeper", "dense")
    assert hit["id"] == second and hit["metadata"] == {"salary": 2}

    def reused(url: str) -> bool:
        exposition = httpx.get(url, timeout=5).text
        return any(
            line.startswith("eventsearch_embeddings_reused_total") and float(line.split()[-1]) >= 1
            for line in exposition.splitlines()
        )

    # The worker's own exporter, and the gateway's /metrics (relayed, labelled worker=...).
    wait_for(lambda: reused(worker.metrics_url), 30, "counted by the worker")
    wait_for(lambda: reused(f"{client.base_url}/metrics"), 30, "relayed to the gateway")


def test_delete_by_endpoint_erases_every_version_and_is_idempotent(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    a = send(client, "job 6/a", "seal trainer, Bergen", "2026-11-01T09:00:00Z")
    b = send(client, "job 6/a", "seal trainer, Bergen, senior", "2026-11-02T09:00:00Z")
    settled(client, a, b)
    for _ in range(2):
        response = client.delete("/api/v1/subjects/jobboard/job 6/a")
        assert response.status_code == 204, response.text
    for event_id in (a, b):
        read = status_of(client, event_id)
        # Erased as the contract says: id, status and times stay, nothing of the content.
        erased = {k: read[k] for k in ("status", "text", "metadata", "subject", "source")}
        assert erased == {
            "status": "deleted", "text": "", "metadata": {}, "subject": None, "source": ""
        }  # fmt: skip
        assert read["occurred_at"] is None and read["created_at"] is not None
    for mode in MODES:
        assert hits(client, "seal trainer Bergen", mode) == []
    assert client.delete("/api/v1/subjects/jobboard/no-such-job").status_code == 404
    assert client.delete("/api/v1/subjects/elsewhere/job 6/a").status_code == 404
    # The subject's record stays (its deletion date decides what revives it); no version.
    history = client.get("/api/v1/subjects/jobboard/job 6/a").json()
    assert history["current"] is None and history["deleted_at"] is not None
    assert history["versions"] == []


def test_a_version_dated_after_the_deletion_revives_one_dated_before_does_not(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    old = send(client, "job-7", "tern watcher", "2026-01-01T09:00:00Z")
    settled(client, old)
    assert client.delete("/api/v1/subjects/jobboard/job-7").status_code == 204
    before = send(client, "job-7", "tern watcher, late retry", "2026-01-02T09:00:00Z")
    assert settled(client, before)[before]["status"] == "deleted"
    assert hits(client, "tern watcher", "keyword") == []
    after = send(client, "job-7", "tern watcher, reopened", "2099-01-01T09:00:00Z")
    assert settled(client, after)[after]["status"] == "embedded"
    for mode in MODES:
        assert [h["id"] for h in hits(client, "tern watcher", mode)] == [after]


@pytest.mark.parametrize(
    "deletion",
    [{"type": "job.updated", "deleted": True}, {"type": "job.deleted"}],
    ids=["deleted-true", "type-pattern"],
)
def test_a_deletion_event_deletes_its_subject(
    tenant_client: httpx.Client, worker: Worker, deletion: dict[str, Any]
) -> None:
    client = tenant_client
    subject = f"job-{uuid.uuid4().hex[:6]}"
    version = send(client, subject, "gannet spotter, Shetland", "2026-11-01T09:00:00Z")
    settled(client, version)
    body = {"source": "jobboard", "text": "closed", "subject": subject, **deletion}
    body["occurred_at"] = "2026-11-03T09:00:00Z"
    response = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": new_key()})
    assert response.status_code == 202, response.text
    closing = response.json()["id"]
    reads = settled(client, version, closing)
    assert reads[version]["status"] == "deleted" and reads[version]["text"] == ""
    assert reads[closing]["status"] == "deleted"
    assert hits(client, "gannet spotter Shetland", "hybrid") == []
    # An update dated before the deletion, arriving after it, stays out of search.
    late = send(client, subject, "gannet spotter, Shetland, v2", "2026-11-02T09:00:00Z")
    assert settled(client, late)[late]["status"] == "deleted"


def test_history_lists_versions_newest_first_in_pages(
    tenant_client: httpx.Client, worker: Worker, client: httpx.Client
) -> None:
    other_tenant = client
    client = tenant_client
    ids = [send(client, "job-8", f"eider v{n}", f"2026-11-0{n}T09:00:00Z") for n in (3, 1, 2)]
    settled(client, *ids)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/subjects/jobboard/job-8", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["current"] == ids[0] and body["deleted_at"] is None
        seen += [v["id"] for v in body["versions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[0], ids[2], ids[1]]
    assert client.get("/api/v1/subjects/jobboard/job-none").status_code == 404
    assert client.get("/api/v1/subjects/jobboard/job-8?cursor=nope").status_code == 400
    # Another tenant's subject of the same name is not this one: 404, as a missing one.
    assert other_tenant.get("/api/v1/subjects/jobboard/job-8").status_code == 404
    assert other_tenant.delete("/api/v1/subjects/jobboard/job-8").status_code == 404
    assert client.get("/api/v1/subjects/jobboard/job-8").json()["current"] == ids[0]


def test_subject_filter_in_search_get_and_post(tenant_client: httpx.Client, worker: Worker) -> None:
    client = tenant_client
    a = send(client, "job-9a", "kittiwake ranger", None)
    b = send(client, "job-9b", "kittiwake ranger assistant", None)
    settled(client, a, b)
    for mode in MODES:
        assert [h["id"] for h in hits(client, "kittiwake", mode, subject=["job-9b"])] == [b]
    got = client.get("/api/v1/search", params={"q": "kittiwake", "subject": "job-9a"})
    assert [h["id"] for h in got.json()["results"]] == [a]


def test_subject_reads_back_in_list_and_exports(
    tenant_client: httpx.Client, worker: Worker
) -> None:
    client = tenant_client
    event_id = send(client, "job-10", "skua monitor", None)
    listed = client.get("/api/v1/events").json()["events"]
    assert [e["subject"] for e in listed if e["id"] == event_id] == ["job-10"]
    export = client.get("/api/v1/export/events.ndjson").text
    assert '"subject":"job-10"' in export
    csv_head = client.get("/api/v1/export/events.csv").text.splitlines()[0]
    assert csv_head.endswith(",subject")


def test_subject_validation(client: httpx.Client) -> None:
    too_long = {"source": "s", "type": "t", "text": "x", "subject": "x" * 256}
    no_subject = {"source": "s", "type": "t", "text": "x", "deleted": True}
    for body in (too_long, no_subject):
        response = client.post("/api/v1/events", json=body, headers={"Idempotency-Key": new_key()})
        assert response.status_code == 422, response.text
