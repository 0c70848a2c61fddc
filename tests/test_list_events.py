"""``GET /api/v1/events``: the caller's tenant's events, newest first, a page at a time.

Every test lists the events of a fresh tenant of its own, so other tests' events never
appear in its pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import event_body, make_key, new_key, status_of, wait_for
from tests.processes import Gateway, Proc
from tests.reliability_helpers import insert_queued
from tests.stub_embedder import NAN_MARK

URL = "/api/v1/events"


class Tenant(httpx.Client):
    """A client of a tenant no other test writes to, with every scope."""

    def __init__(self, base_url: str, key: str, tenant: str) -> None:
        super().__init__(base_url=base_url, headers={"X-API-Key": key}, timeout=30)
        self.tenant = tenant

    def post_event(self, text: str | None = None, **fields: object) -> str:
        body = {**event_body(text), **fields}
        response = self.post(URL, json=body, headers={"Idempotency-Key": new_key()})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def post_batch(self, n: int) -> list[str]:
        """``n`` events in one request: one transaction, so they share one ``created_at``."""
        events = [{**event_body(), "idempotency_key": new_key()} for _ in range(n)]
        response = self.post(f"{URL}/batch", json={"events": events})
        assert response.status_code == 200, response.text
        return [str(r["id"]) for r in response.json()["results"]]

    def page(self, **params: Any) -> dict[str, Any]:
        response = self.get(URL, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def listed_ids(self, **params: Any) -> list[str]:
        return [e["id"] for e in self.page(limit=1000, **params)["events"]]


def fresh_tenant(gateway: Gateway, db: Engine, prefix: str = "list") -> Tenant:
    tenant = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return Tenant(gateway.url, make_key(db, tenant), tenant)


@pytest.fixture
def me(gateway: Gateway, db: Engine) -> Iterator[Tenant]:
    with fresh_tenant(gateway, db) as client:
        yield client


def test_events_are_listed_newest_first(me: Tenant) -> None:
    posted = [me.post_event() for _ in range(4)]
    body = me.page()
    assert [e["id"] for e in body["events"]] == posted[::-1]
    stamps = [e["created_at"] for e in body["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["next_cursor"] is None


def test_listed_items_are_the_status_read_without_the_vector(me: Tenant, worker: Proc) -> None:
    event_id = me.post_event(metadata={"company": "Safaricom"})
    wait_for(lambda: status_of(me, event_id)["status"] == "embedded", what="embedded")
    [item] = me.page()["events"]
    assert item == status_of(me, event_id)
    assert "embedding" not in item and item["metadata"] == {"company": "Safaricom"}


def test_pagination_with_cursor_covers_every_event_exactly_once(me: Tenant) -> None:
    # A batch's events share a created_at, so the pages must also be ordered by id within one.
    posted = [*me.post_batch(5), me.post_event(), *me.post_batch(4)]
    listed = me.page(limit=1000)["events"]
    everything = [e["id"] for e in listed]
    assert sorted(everything) == sorted(posted)
    assert len({e["created_at"] for e in listed}) == 3  # ties that a page boundary cuts
    seen: list[str] = []
    cursor = None
    for _ in range(len(posted) + 2):
        page = me.page(limit=3, **({"cursor": cursor} if cursor else {}))
        assert len(page["events"]) <= 3
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None, "pagination did not end"
    assert seen == everything  # each once, none missed, in the one-page order


def test_a_full_last_page_has_no_next_cursor(me: Tenant) -> None:
    posted = me.post_batch(4)
    first = me.page(limit=2)
    assert len(first["events"]) == 2 and first["next_cursor"]
    last = me.page(limit=2, cursor=first["next_cursor"])
    assert len(last["events"]) == 2 and last["next_cursor"] is None
    assert sorted(e["id"] for e in first["events"] + last["events"]) == sorted(posted)


def test_list_filters_by_source_and_type(me: Tenant) -> None:
    jobs = me.post_event(source="jobboard", type="job.posted")
    closed = me.post_event(source="jobboard", type="job.closed")
    ticket = me.post_event(source="tickets", type="ticket.opened")
    assert me.listed_ids(source="jobboard") == [closed, jobs]
    assert me.listed_ids(source="tickets") == [ticket]
    assert me.listed_ids(type="job.closed") == [closed]
    assert me.listed_ids(source="jobboard", type="job.posted") == [jobs]
    assert me.listed_ids(source="tickets", type="job.posted") == []
    assert me.listed_ids(source="nowhere") == []


def test_list_filters_by_status(me: Tenant, worker: Proc, db: Engine) -> None:
    embedded = me.post_event()
    failed = me.post_event(f"{NAN_MARK} {uuid.uuid4().hex}")  # the embedder answers NaN
    deleted = me.post_event()
    assert me.delete(f"{URL}/{deleted}").status_code == 204
    wait_for(lambda: status_of(me, embedded)["status"] == "embedded", what="embedded")
    wait_for(lambda: status_of(me, failed)["status"] == "failed", what="dead-lettered")
    # Not published, so it stays queued (the sweeper republishes after SWEEP_AFTER_S, 30 s).
    [queued] = insert_queued(db, [f"queued {uuid.uuid4().hex}"], me.tenant)
    try:
        assert me.listed_ids(status="queued") == [queued]
        assert me.listed_ids(status="embedded") == [embedded]
        assert me.listed_ids(status="failed") == [failed]
        assert me.listed_ids(status="deleted") == [deleted]
        assert sorted(me.listed_ids()) == sorted([embedded, failed, deleted, queued])
    finally:
        me.delete(f"{URL}/{queued}")  # leaves nothing queued behind for the sweeper


def test_another_tenants_events_are_never_listed(gateway: Gateway, db: Engine) -> None:
    with fresh_tenant(gateway, db) as mine, fresh_tenant(gateway, db) as theirs:
        my_ids = [mine.post_event() for _ in range(2)]
        their_ids = theirs.post_batch(3)
        assert sorted(mine.listed_ids()) == sorted(my_ids)
        assert sorted(theirs.listed_ids()) == sorted(their_ids)
        assert mine.listed_ids(source="jobboard", type="job.posted") == my_ids[::-1]
        # A cursor made from another tenant's page still lists only the caller's events.
        cursor = theirs.page(limit=1)["next_cursor"]
        assert cursor is not None
        assert set(mine.listed_ids(cursor=cursor)) <= set(my_ids)


@pytest.mark.parametrize("cursor", ["garbage!", "bm90IGEgY3Vyc29y", "YXxi", "%00"])
def test_invalid_cursor_is_400(me: Tenant, cursor: str) -> None:
    response = me.get(URL, params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "lost"}, "status"),
        ({"source": "x" * 129}, "source"),
    ],
)
def test_limit_out_of_range_or_unknown_status_is_422_naming_the_field(
    me: Tenant, params: dict[str, object], field: str
) -> None:
    response = me.get(URL, params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["message"]
    assert [d["loc"] for d in error["details"]] == [["query", field]]


def test_limit_bounds_are_accepted(me: Tenant) -> None:
    posted = me.post_batch(2)
    assert len(me.page(limit=1)["events"]) == 1
    assert sorted(me.listed_ids()) == sorted(posted)  # limit=1000


def test_list_needs_the_search_scope(gateway: Gateway, db: Engine) -> None:
    tenant = f"list-{uuid.uuid4().hex[:8]}"
    for scopes in ("ingest", "admin", "ingest,admin"):
        key = make_key(db, tenant, scopes)
        response = httpx.get(gateway.url + URL, headers={"X-API-Key": key})
        assert response.status_code == 403, (scopes, response.text)
        assert response.json()["error"]["code"] == "insufficient_scope"
    key = make_key(db, tenant, "search")
    assert httpx.get(gateway.url + URL, headers={"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "es_wrong"}, {"Authorization": "Bearer x"}])
def test_list_without_a_valid_key_is_401(gateway: Gateway, headers: dict[str, str]) -> None:
    response = httpx.get(gateway.url + URL, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
