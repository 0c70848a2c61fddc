"""Operations: X-Request-ID from the client to the worker's log, one JSON log line per
request and per task, and Prometheus metrics from the gateway and the worker."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests import processes
from tests.conftest import event_body, extra_gateway, new_key, status_of, wait_for
from tests.stub_embedder import StubServer


def json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def post(client: httpx.Client, body: object, request_id: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": new_key()}
    if request_id:
        headers["X-Request-ID"] = request_id
    return client.post("/api/v1/events", json=body, headers=headers)


def test_request_id_is_returned_and_made_when_missing(client: httpx.Client) -> None:
    given = uuid.uuid4().hex
    response = client.get("/api/v1/search?q=x", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    made = client.get("/api/v1/search?q=x").headers["x-request-id"]
    assert made and made != given
    error = client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"X-Request-ID": given})
    assert error.json()["error"]["request_id"] == given


def test_one_json_line_per_request(client: httpx.Client, gateway: processes.Gateway) -> None:
    request_id = uuid.uuid4().hex
    client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"X-Request-ID": request_id})

    def line() -> dict | None:
        found = [
            entry
            for entry in json_lines(gateway.output())
            if entry.get("event") == "request" and entry.get("request_id") == request_id
        ]
        return found[0] if len(found) == 1 else None

    wait_for(line, 10, "request log line")
    entry = line()
    assert entry is not None
    assert entry["method"] == "GET"
    assert entry["route"] == "/api/v1/events/{event_id}"
    assert entry["status"] == 404
    assert entry["tenant"] == "t1"
    assert entry["duration_ms"] >= 0
    assert entry["level"] == "info" and entry["ts"]


def test_request_id_reaches_the_worker_log(client: httpx.Client, worker: processes.Worker) -> None:
    request_id = uuid.uuid4().hex
    accepted = post(client, event_body(), request_id)
    assert accepted.status_code == 202
    wait_for(lambda: status_of(client, accepted.json()["id"])["status"] == "embedded", 60)

    def task_line() -> dict | None:
        for entry in json_lines(worker.output()):
            if entry.get("event") == "task" and request_id in entry.get("request_ids", []):
                return entry
        return None

    wait_for(task_line, 10, "task log line")
    entry = task_line()
    assert entry is not None
    assert entry["task"] == "events.embed"
    assert entry["outcome"] == "ok"
    assert entry["batch_size"] >= 1 and entry["duration_ms"] >= 0


def test_gateway_metrics_count_requests_and_events(client: httpx.Client) -> None:
    before = httpx.get(f"{client.base_url}/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    body = event_body()
    key = new_key()
    for _ in range(2):  # accepted, then duplicate
        client.post("/api/v1/events", json=body, headers={"Idempotency-Key": key})
    post(client, {"source": "s"})  # rejected
    client.get(f"/api/v1/events/{uuid.uuid4()}")
    after = httpx.get(f"{client.base_url}/metrics").text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before.text, name, **labels)

    assert delta("eventsearch_events_total", outcome="accepted") == 1
    assert delta("eventsearch_events_total", outcome="duplicate") == 1
    assert delta("eventsearch_events_total", outcome="rejected") == 1
    route = "/api/v1/events/{event_id}"
    assert delta("eventsearch_http_requests_total", method="GET", route=route, status="404") == 1
    assert delta("eventsearch_http_request_duration_seconds_count", method="GET", route=route) == 1
    assert "eventsearch_queue_depth" in after
    assert "eventsearch_queue_unacked" in after


def test_unknown_paths_share_one_route_label(client: httpx.Client) -> None:
    for i in range(3):
        client.get(f"/scan/{uuid.uuid4()}/{i}")
    text = httpx.get(f"{client.base_url}/metrics").text
    assert "/scan/" not in text
    assert sample(text, "eventsearch_http_requests_total", route="<unmatched>", status="404") >= 3


def test_queue_depth_reads_the_embed_queue(stack_env: dict[str, str], tmp_root: Path) -> None:
    """A gateway on a Redis database no worker reads, so the queue holds still."""
    quiet = stack_env["REDIS_URL"].rsplit("/", 1)[0] + "/7"
    conn = redis.Redis.from_url(quiet)
    try:
        conn.delete("embed", "unacked")
        with extra_gateway(stack_env, tmp_root, "gateway-queue", REDIS_URL=quiet) as gateway:
            text = httpx.get(f"{gateway.url}/metrics").text
            assert sample(text, "eventsearch_queue_depth", queue="embed") == 0
            conn.rpush("embed", "m1", "m2", "m3")
            conn.hset("unacked", "tag", "m4")
            text = httpx.get(f"{gateway.url}/metrics").text
            assert sample(text, "eventsearch_queue_depth", queue="embed") == 3
            assert sample(text, "eventsearch_queue_unacked") == 1
    finally:
        conn.delete("embed", "unacked")
        conn.close()


WORKER_SAMPLES = ("eventsearch_worker_heartbeat", "eventsearch_embed_", "eventsearch_dead_letters")


def test_gateway_relays_the_live_workers_metrics(
    client: httpx.Client, gateway: processes.Gateway, worker: processes.Worker
) -> None:
    """The contract's GET /metrics has batch sizes and latency, retries and dead letters:
    each live worker's, labelled with its name; the gateway itself adds none (a heartbeat of
    0 from the gateway would read as a dead worker)."""
    [event_id] = [post(client, event_body()).json()["id"]]
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", 60)

    def relayed() -> str:
        text = httpx.get(f"{gateway.url}/metrics").text
        return text if sample(text, "eventsearch_embed_batch_size_count") >= 1 else ""

    wait_for(relayed, 30, "the worker's metrics on the gateway")
    text = relayed()
    families = list(text_string_to_metric_families(text))
    worker_samples = [s for f in families for s in f.samples if s.name.startswith(WORKER_SAMPLES)]
    assert worker_samples and all(s.labels.get("worker") for s in worker_samples)
    names = {s.name for s in worker_samples}
    assert {
        "eventsearch_embed_batch_duration_seconds_count",
        "eventsearch_embed_retries_total",
        "eventsearch_dead_letters_total",
    } <= names
    heartbeats = [s for s in worker_samples if s.name.startswith("eventsearch_worker_heartbeat")]
    assert any(time.time() - 60 < s.value <= time.time() + 1 for s in heartbeats)
    # One HELP/TYPE per family, however many workers: the text format allows no repeats.
    helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
    assert len(helps) == len(set(helps))


def test_a_worker_that_stopped_publishing_drops_out(
    gateway: processes.Gateway, stack_env: dict[str, str]
) -> None:
    from common import metrics_relay

    exposition = (
        b"# TYPE eventsearch_dead_letters_total counter\neventsearch_dead_letters_total 7.0\n"
    )
    with redis.Redis.from_url(stack_env["REDIS_URL"]) as r:
        metrics_relay.publish(r, "gone@nowhere", exposition, heartbeat_s=5)
        assert 'worker="gone@nowhere"' in httpx.get(f"{gateway.url}/metrics").text
        r.zadd(metrics_relay.INDEX, {"gone@nowhere": time.time() - 3600})  # last seen long ago
        assert 'worker="gone@nowhere"' not in httpx.get(f"{gateway.url}/metrics").text
        assert r.zscore(metrics_relay.INDEX, "gone@nowhere") is None  # forgotten


def test_worker_exports_batch_metrics_and_heartbeat(
    client: httpx.Client, worker: processes.Worker, stub: StubServer
) -> None:
    def scrape() -> str:
        try:
            return httpx.get(worker.metrics_url, timeout=2).text
        except httpx.HTTPError:
            return ""

    wait_for(lambda: "eventsearch_embed_batch_size" in scrape(), 30, "worker metrics")
    before = scrape()
    ids = [post(client, event_body()).json()["id"] for _ in range(3)]
    wait_for(lambda: all(status_of(client, i)["status"] == "embedded" for i in ids), 60)

    def counted() -> bool:
        now = scrape()
        return (
            sample(now, "eventsearch_embed_batch_size_sum")
            - sample(before, "eventsearch_embed_batch_size_sum")
            >= 3
        )

    wait_for(counted, 10, "batch metrics")
    after = scrape()
    assert sample(after, "eventsearch_embed_batch_duration_seconds_count") >= 1
    assert sample(after, "eventsearch_embed_tasks_total", outcome="ok") >= 1
    heartbeat = sample(after, "eventsearch_worker_heartbeat_timestamp_seconds")
    assert time.time() - 60 < heartbeat <= time.time() + 1


def test_worker_counts_retries_and_dead_letters(
    client: httpx.Client, worker: processes.Worker, stub: StubServer
) -> None:
    def scrape() -> str:
        return httpx.get(worker.metrics_url, timeout=2).text

    wait_for(lambda: "eventsearch_dead_letters_total" in scrape(), 30, "worker metrics")
    before = scrape()
    stub.behaviour.fail_status, stub.behaviour.fail_times = 503, 1
    retried = post(client, event_body()).json()["id"]
    wait_for(lambda: status_of(client, retried)["status"] == "embedded", 60)
    poisoned = post(client, event_body("POISON! refused by the embedder")).json()["id"]
    wait_for(lambda: status_of(client, poisoned)["status"] == "failed", 60)

    def delta(name: str) -> float:
        return sample(scrape(), name) - sample(before, name)

    wait_for(lambda: delta("eventsearch_embed_retries_total") >= 1, 10, "retry counted")
    wait_for(lambda: delta("eventsearch_dead_letters_total") >= 1, 10, "dead letter counted")


def test_batch_outcomes_are_counted(client: httpx.Client) -> None:
    before = httpx.get(f"{client.base_url}/metrics").text
    key = new_key()
    items = [
        {**event_body(), "idempotency_key": key},
        {**event_body(), "idempotency_key": new_key()},
        {"source": "s", "idempotency_key": new_key()},
    ]
    items.append(dict(items[0]))  # the same key and body again: a duplicate
    response = client.post("/api/v1/events/batch", json={"events": items})
    assert response.status_code == 200, response.text
    after = httpx.get(f"{client.base_url}/metrics").text
    for outcome, n in (("accepted", 2), ("duplicate", 1), ("rejected", 1)):
        delta = sample(after, "eventsearch_events_total", outcome=outcome) - sample(
            before, "eventsearch_events_total", outcome=outcome
        )
        assert delta == n, outcome


def test_a_retried_task_keeps_the_request_id(
    client: httpx.Client, worker: processes.Worker, stub: StubServer
) -> None:
    request_id = uuid.uuid4().hex
    stub.behaviour.fail_status, stub.behaviour.fail_times = 503, 1
    accepted = post(client, event_body(), request_id)
    assert accepted.status_code == 202
    wait_for(lambda: status_of(client, accepted.json()["id"])["status"] == "embedded", 60)

    def task_lines() -> list[dict]:
        return [
            entry
            for entry in json_lines(worker.output())
            if entry.get("event") == "task" and request_id in entry.get("request_ids", [])
        ]

    # The first run re-published the event; the second run's message carried the same id.
    wait_for(lambda: len(task_lines()) >= 2, 10, "two task lines")
    assert status_of(client, accepted.json()["id"])["attempts"] >= 1
