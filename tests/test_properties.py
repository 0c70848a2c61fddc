"""The property suite of issue 12: whatever the API accepts, every read path gives back.

Each example (tests/property_strategies.py) writes events through every write endpoint
(one by one, with the key bare or as an RFC 8941 string, replayed once; then as a batch)
into a tenant of its own, waits for the worker, and reads them through every read path:
the status read, the list, search in each mode (POST and GET, free and filtered by each
event's own values), both exports and the stats; then deletes one and reads again. The
oracle is the schema itself: an event is expected to be accepted exactly when
``EventIn`` (and the key check) accept it in this process, and to read back as the
validated value (names stripped, times in UTC), with every number of its kind.

Asserted: no answer >= 500, every accepted value read back exactly on every path, no
export cut. ``make test`` runs a short fixed-seed run (``FUZZ_EXAMPLES``, 20 by default);
``FUZZ_EXAMPLES=400 .venv/bin/pytest tests/test_properties.py -s`` runs a longer one and
prints the figures the README quotes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from common.errors import AppError
from common.schemas import EventIn
from gateway.idempotency import check_idempotency_key
from tests.conftest import make_key, wait_for
from tests.processes import Gateway, Worker
from tests.property_strategies import SCENARIOS, Scenario

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
PHASES = [Phase.explicit, Phase.generate] + (
    [Phase.shrink] if os.environ.get("FUZZ_SHRINK") else []
)
FIGURES: Counter[str] = Counter()
EDGE = {"source": "s", "type": "t"}


def expected(body: Any) -> dict[str, Any] | None:
    """The value the API must store for ``body``, or None when it must refuse it."""
    try:
        event = EventIn.model_validate(body)
    except ValidationError:
        return None
    return event.model_dump(include={"source", "type", "text", "metadata", "occurred_at"})


def kinds(node: Any) -> Any:
    """``node`` with each number as its type's name: 1e16 == 10**16, but not for a client."""
    if isinstance(node, dict):
        return {k: kinds(v) for k, v in node.items()}
    if isinstance(node, list):
        return [kinds(v) for v in node]
    return type(node).__name__ if isinstance(node, int | float) else node


def differences(read: dict[str, Any], want: dict[str, Any], where: str) -> list[str]:
    found = []
    for field in ("source", "type", "text"):
        if read.get(field) != want[field]:
            found.append(f"{where}: {field} {read.get(field)!r} != {want[field]!r}")
    if read.get("metadata") != want["metadata"] or kinds(read.get("metadata")) != kinds(
        want["metadata"]
    ):
        found.append(f"{where}: metadata {read.get('metadata')!r} != {want['metadata']!r}")
    at, wanted = read.get("occurred_at"), want["occurred_at"]
    if (at is None) != (wanted is None) or (
        at is not None
        and (datetime.fromisoformat(at) != wanted or not at.endswith(("Z", "+00:00")))
    ):
        found.append(f"{where}: occurred_at {at!r} != {wanted!r}")
    return found


def from_csv(record: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the stored values: one leading ' dropped (the export's neutralisation)."""
    cells = {k: v[1:] if v.startswith("'") else v for k, v in record.items()}
    return {
        **cells,
        "metadata": json.loads(cells["metadata"]),
        "occurred_at": cells["occurred_at"] or None,
    }


class Run:
    """One example's tenant, its requests and what went wrong."""

    def __init__(self, url: str, key: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key})
        self.problems: list[str] = []
        self.accepted: dict[str, dict[str, Any]] = {}

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        FIGURES["requests"] += 1
        try:
            answer = self.client.request(method, path, **kw)
        except httpx.RemoteProtocolError as error:
            self.problems.append(f"{method} {path}: connection cut ({error})")
            FIGURES["answers >= 500"] += 1
            return None
        if answer.status_code >= 500:
            self.problems.append(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
            FIGURES["answers >= 500"] += 1
            return None
        return answer

    def compare(self, read: dict[str, Any], want: dict[str, Any], where: str) -> None:
        found = differences(read, want, where)
        FIGURES["values not read back"] += len(found)
        self.problems += found

    def agree(self, accepted: bool, want: dict[str, Any] | None, what: str) -> None:
        if accepted != (want is not None):
            self.problems.append(f"{what}: accepted={accepted} but the schema says {want!r}")


def write(run: Run, scenario: Scenario) -> None:
    for index, body in enumerate(scenario.singles):
        payload = json.dumps(body).encode()
        want = expected(json.loads(payload))
        key = f"single-{uuid.uuid4()}"
        header = f'"{key}"' if scenario.quoted else key
        headers = {"Idempotency-Key": header, "Content-Type": "application/json"}
        answer = run.call("POST", "/api/v1/events", content=payload, headers=headers)
        if answer is None:
            continue
        run.agree(answer.status_code == 202, want, f"POST #{index} {answer.text[:200]}")
        if answer.status_code != 202 or want is None:
            continue
        run.accepted[answer.json()["id"]] = want
        if index == 0:  # the retry of a client that lost the answer, with the other form
            again = run.call(
                "POST",
                "/api/v1/events",
                content=payload,
                headers={**headers, "Idempotency-Key": key},
            )
            if again is not None and (
                again.content != answer.content
                or again.headers.get("idempotent-replayed") != "true"
            ):
                run.problems.append(f"replay differs: {again.status_code} {again.text[:200]}")
    if not scenario.batch:
        return
    items, wants = [], []
    for index, (key, body) in enumerate(scenario.batch):
        item = dict(body)
        if key is not None:
            item["idempotency_key"] = f"{key}#{index}" if isinstance(key, str) else key
        items.append(item)
    payload = json.dumps({"events": items}).encode()
    for item in json.loads(payload)["events"]:
        key = item.pop("idempotency_key", None)
        try:
            fit = isinstance(key, str) and check_idempotency_key(key, True) is not None
        except AppError:
            fit = False
        wants.append(expected(item) if fit else None)
    answer = run.call(
        "POST",
        "/api/v1/events/batch",
        content=payload,
        headers={"Content-Type": "application/json"},
    )
    if answer is None:
        return
    if answer.status_code != 200:
        run.problems.append(f"batch: {answer.status_code} {answer.text[:300]}")
        return
    sent_keys = [item.get("idempotency_key") for item in json.loads(payload)["events"]]
    for result, want, key in zip(answer.json()["results"], wants, sent_keys, strict=True):
        run.agree(result["status"] == "accepted", want, f"batch item {result}")
        echo = key if isinstance(key, str) and gettable(key) else None
        if result.get("idempotency_key") != echo:
            run.problems.append(f"batch item's key echoed as {result.get('idempotency_key')!r}")
        if result["status"] == "accepted" and want is not None:
            run.accepted[result["id"]] = want


def settled(run: Run) -> set[str]:
    """Wait (polling) until no accepted event is queued; the ids of the embedded ones."""
    statuses: dict[str, str] = {}
    broken = False

    def none_queued() -> bool:
        nonlocal broken
        for event_id, want in run.accepted.items():
            answer = run.call("GET", f"/api/v1/events/{event_id}")
            if answer is None or answer.status_code != 200:
                run.problems.append(f"status read of {event_id}: {answer and answer.text[:200]}")
                broken = True
                return True
            statuses[event_id] = answer.json()["status"]
            if statuses[event_id] != "queued":
                run.compare(answer.json(), want, "status read")
        return "queued" not in statuses.values()

    wait_for(none_queued, 60, "every accepted event embedded or failed")
    return set() if broken else {i for i, s in statuses.items() if s == "embedded"}


def check_hits(run: Run, answer: httpx.Response | None, where: str) -> list[str]:
    if answer is None or answer.status_code != 200:
        return []
    ids = []
    for hit in answer.json()["results"]:
        want = run.accepted.get(hit["id"])
        if want is None:
            run.problems.append(f"{where}: a hit that was never accepted here: {hit['id']}")
            continue
        run.compare(hit, want, where)
        ids.append(hit["id"])
    return ids


def gettable(text: str) -> bool:
    """Whether ``text`` can be put in a URL at all (a lone surrogate cannot be encoded)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def search(run: Run, scenario: Scenario, embedded: set[str]) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        body = {"query": scenario.query, "top_k": scenario.top_k, "mode": mode}
        check_hits(run, run.call("POST", "/api/v1/search", json=body), f"POST search {mode}")
        if gettable(scenario.query):
            params = {"q": scenario.query, "top_k": scenario.top_k, "mode": mode}
            check_hits(run, run.call("GET", "/api/v1/search", params=params), f"GET search {mode}")
        every = run.call(
            "POST", "/api/v1/search", json={"query": "anything", "top_k": 100, "mode": mode}
        )
        found = set(check_hits(run, every, f"search {mode} for all"))
        # Dense finds exactly the embedded events (top_k 100 > the example's events); hybrid
        # adds keyword matches, embedded or not.
        live = embedded
        if (mode == "dense" and found != live) or (mode == "hybrid" and not live <= found):
            FIGURES["values not read back"] += 1
            run.problems.append(f"{mode} search found {found}, not the embedded {live}")
    for event_id in sorted(embedded)[:2]:
        want = run.accepted[event_id]
        filters: dict[str, Any] = {"source": [want["source"]], "type": [want["type"]]}
        if want["metadata"]:
            filters["metadata"] = want["metadata"]
        if want["occurred_at"] is not None:
            filters["occurred_after"] = want["occurred_at"].isoformat()
            try:
                later = want["occurred_at"] + timedelta(microseconds=1)
            except OverflowError:  # 9999-12-31T23:59:59.999999Z: nothing is later
                pass
            else:
                filters["occurred_before"] = later.isoformat()
        answer = run.call(
            "POST", "/api/v1/search", json={"query": "x", "mode": "dense", "filters": filters}
        )
        if event_id not in check_hits(run, answer, "filtered search"):
            FIGURES["values not read back"] += 1
            run.problems.append(f"filtered search missed {event_id}: {filters!r}")
        params: dict[str, Any] = {
            "q": "x",
            "mode": "dense",
            **{k: v for k, v in filters.items() if k != "metadata"},
        }
        if "metadata" in filters:
            params["metadata"] = json.dumps(filters["metadata"])
        if all(gettable(str(v)) for v in params.values()) and len(str(params)) < 4000:
            answer = run.call("GET", "/api/v1/search", params=params)
            if event_id not in check_hits(run, answer, "GET filtered search"):
                FIGURES["values not read back"] += 1
                run.problems.append(f"GET filtered search missed {event_id}: {params!r}")


def reads(run: Run, deleted: set[str]) -> None:
    """The list and both exports hold every accepted event, each as it was accepted."""
    listed = run.call("GET", "/api/v1/events", params={"limit": 1000})
    exports: dict[str, list[dict[str, Any]]] = {}
    if listed is not None:
        exports["list"] = listed.json()["events"]
    ndjson = run.call("GET", "/api/v1/export/events.ndjson")
    if ndjson is not None:
        # Split on \n only: str.splitlines also splits on U+2028, U+0085 and others, which
        # JSON strings hold unescaped.
        lines = [json.loads(line) for line in ndjson.text.split("\n") if line]
        if lines and "id" not in lines[-1]:
            FIGURES["exports cut"] += 1
            run.problems.append(f"NDJSON export cut: {lines[-1]}")
        exports["ndjson"] = lines
    try:
        with run.client.stream("GET", "/api/v1/export/events.csv") as answer:
            FIGURES["requests"] += 1
            body = answer.read().decode()
        exports["csv"] = [from_csv(r) for r in csv.DictReader(io.StringIO(body, newline=""))]
    except httpx.RemoteProtocolError as error:
        FIGURES["exports cut"] += 1
        run.problems.append(f"CSV export cut: {error}")
    for where, rows in exports.items():
        by_id = {row["id"]: row for row in rows}
        # A deleted event may stay as a tombstone or go.
        if by_id.keys() != run.accepted.keys() and by_id.keys() != run.accepted.keys() - deleted:
            FIGURES["values not read back"] += 1
            run.problems.append(f"{where}: ids {sorted(by_id)} != {sorted(run.accepted)}")
        for event_id, want in run.accepted.items():
            if event_id in by_id and event_id not in deleted:
                run.compare(by_id[event_id], want, where)


def delete_one(run: Run) -> set[str]:
    if not run.accepted:
        return set()
    event_id = next(iter(run.accepted))
    answer = run.call("DELETE", f"/api/v1/events/{event_id}")
    if answer is not None and answer.status_code != 204:
        run.problems.append(f"DELETE: {answer.status_code} {answer.text[:200]}")
    after = run.call("GET", f"/api/v1/events/{event_id}")
    if after is not None and not (
        after.status_code == 404
        or (after.status_code == 200 and after.json()["status"] == "deleted")
    ):
        run.problems.append(f"read after DELETE: {after.status_code} {after.text[:200]}")
    return {event_id}


EDGES = Scenario(
    singles=[
        {**EDGE, "text": "=1+2", "occurred_at": "9999-12-31T23:59:59-14:00"},
        {**EDGE, "text": "edge", "occurred_at": "0001-01-01T00:00:00+14:00"},
        {**EDGE, "text": "-edge", "occurred_at": "9999-12-31T09:59:59.999999-14:00"},
        {" s ": 1, **EDGE, "text": "x"},
    ],
    batch=[
        ("k\ud800", {**EDGE, "text": "surrogate key"}),
        (
            "ok",
            {
                **EDGE,
                "text": "@floats",
                "metadata": {"f": 1e16, "g": [2.0**80, -0.0], "i": 2**63 - 1},
            },
        ),
        (
            "ok",
            {
                **EDGE,
                "text": "'quoted",
                "occurred_at": "0001-01-01T00:00:00-14:00",
                "metadata": {"d": [[[[[[[1]]]]]]]},
            },
        ),
        ("deep", {**EDGE, "text": "deep", "metadata": {"d": [[[[[[[[1]]]]]]]]}}),
        ("\x85", {**EDGE, "text": "c1 key"}),
    ],
    query="edge",
    top_k=100,
    quoted=True,
)


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    FIGURES.clear()
    started = time.monotonic()
    yield
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(FIGURES.items()))
    print(f"\nproperty suite: {summary}; {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(300 + 5 * EXAMPLES)  # about a second an example on a loaded 2-core machine
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
@example(scenario=EDGES)
@given(scenario=SCENARIOS)
def test_whatever_is_accepted_reads_back_on_every_path(
    gateway: Gateway, worker: Worker, db: Engine, scenario: Scenario
) -> None:
    FIGURES["examples"] += 1
    run = Run(gateway.url, make_key(db, f"prop-{uuid.uuid4().hex[:12]}"))
    with run.client:
        write(run, scenario)
        FIGURES["events accepted"] += len(run.accepted)
        FIGURES["events refused"] += len(scenario.singles) + len(scenario.batch) - len(run.accepted)
        embedded = settled(run)
        search(run, scenario, embedded)
        reads(run, set())
        stats = run.call("GET", "/api/v1/stats")
        if stats is not None and stats.json().get("events") != len(run.accepted):
            run.problems.append(f"stats count {stats.json().get('events')} != {len(run.accepted)}")
        deleted = delete_one(run)
        after = run.call(
            "POST", "/api/v1/search", json={"query": "x", "top_k": 100, "mode": "dense"}
        )
        found = set(check_hits(run, after, "dense search after DELETE"))
        if found & deleted or found != embedded - deleted:
            FIGURES["values not read back"] += 1
            run.problems.append(
                f"dense search after DELETE found {found}, not {embedded - deleted}"
            )
        reads(run, deleted)
    assert not run.problems, "\n".join(run.problems[:20])
