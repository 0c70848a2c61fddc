"""The dead-letter API (scope admin) and ``eventsearch dead-letters list|replay``."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import make_key, status_of, wait_for
from tests.processes import BIN, Gateway, Proc
from tests.reliability_helpers import dead_letters_of, queue_events, row
from tests.stub_embedder import NAN_MARK, StubServer


def dead_lettered(db: Engine, tenant: str = "t1", n: int = 1) -> list[str]:
    """``n`` events of ``tenant`` that the embedder refuses (NaN), dead-lettered."""
    ids = queue_events(db, [f"{NAN_MARK} {uuid.uuid4().hex}" for _ in range(n)], tenant)
    wait_for(lambda: all(row(db, i)["status"] == "failed" for i in ids), what="dead-lettered")
    return ids


def letter_id(db: Engine, event_id: str) -> str:
    [letter] = [x for x in dead_letters_of(db, event_id) if x["replayed_at"] is None]
    return str(letter["id"])


class Admin(httpx.Client):
    """A client of a fresh tenant with an admin key: its dead letters are this test's only."""

    def __init__(self, base_url: str, key: str, tenant: str) -> None:
        super().__init__(base_url=base_url, headers={"X-API-Key": key}, timeout=30)
        self.tenant = tenant


@pytest.fixture
def admin(gateway: Gateway, db: Engine) -> Iterator[Admin]:
    tenant = f"dl-{uuid.uuid4().hex[:8]}"
    with Admin(gateway.url, make_key(db, tenant, "ingest,search,admin"), tenant) as client:
        yield client


def test_dead_letters_are_listed_newest_first_with_their_error(
    admin: Admin, worker: Proc, db: Engine
) -> None:
    ids = dead_lettered(db, admin.tenant, 3)
    body = admin.get("/api/v1/dead-letters").json()
    assert sorted(x["event_id"] for x in body["dead_letters"]) == sorted(ids)
    first = body["dead_letters"][0]
    assert "NaN" in first["error"] and first["attempts"] == 1
    assert first["source"] == "jobboard" and first["type"] == "job.posted"
    stamps = [x["created_at"] for x in body["dead_letters"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["next_cursor"] is None


def test_dead_letters_are_paginated_by_cursor(admin: Admin, worker: Proc, db: Engine) -> None:
    ids = dead_lettered(db, admin.tenant, 3)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/dead-letters", params=params).json()
        assert len(page["dead_letters"]) <= 2
        seen += [x["event_id"] for x in page["dead_letters"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)  # each once, none missed
    bad = admin.get("/api/v1/dead-letters", params={"cursor": "garbage!"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_replay_one_queues_the_event_again_and_it_is_embedded(
    admin: Admin, worker: Proc, db: Engine, stub: StubServer
) -> None:
    stub.behaviour.fail_status, stub.behaviour.fail_times = 500, 1000  # an outage, then fixed
    [event_id] = queue_events(db, [f"outage victim {uuid.uuid4().hex}"], admin.tenant)
    wait_for(lambda: row(db, event_id)["status"] == "failed", what="dead-lettered")
    stub.behaviour.reset()

    response = admin.post(f"/api/v1/dead-letters/{letter_id(db, event_id)}/replay")
    assert response.status_code == 202, response.text
    assert response.json() == {"replayed": 1, "event_ids": [event_id]}
    wait_for(lambda: row(db, event_id)["status"] == "embedded", what="embedded after replay")
    status = status_of(admin, event_id)
    assert status["attempts"] == 1 and status["error"] is None  # attempts were reset
    assert admin.get("/api/v1/dead-letters").json()["dead_letters"] == []


def test_replayed_letter_cannot_be_replayed_again(admin: Admin, worker: Proc, db: Engine) -> None:
    [event_id] = dead_lettered(db, admin.tenant)
    letter = letter_id(db, event_id)
    assert admin.post(f"/api/v1/dead-letters/{letter}/replay").status_code == 202
    again = admin.post(f"/api/v1/dead-letters/{letter}/replay")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_replay_all_replays_only_the_callers_tenant(admin: Admin, worker: Proc, db: Engine) -> None:
    mine = dead_lettered(db, admin.tenant, 2)
    other_tenant = f"other-{uuid.uuid4().hex[:8]}"
    [theirs] = dead_lettered(db, other_tenant)
    response = admin.post("/api/v1/dead-letters/replay")
    assert response.status_code == 202
    assert sorted(response.json()["event_ids"]) == sorted(mine)
    # The NaN texts fail again, each with a new dead letter; the other tenant's is untouched.
    wait_for(lambda: all(len(dead_letters_of(db, i)) == 2 for i in mine), what="failed again")
    assert len(dead_letters_of(db, theirs)) == 1
    assert dead_letters_of(db, theirs)[0]["replayed_at"] is None


def test_another_tenants_dead_letter_is_404(admin: Admin, worker: Proc, db: Engine) -> None:
    [theirs] = dead_lettered(db, f"other-{uuid.uuid4().hex[:8]}")
    response = admin.post(f"/api/v1/dead-letters/{letter_id(db, theirs)}/replay")
    assert response.status_code == 404
    assert theirs not in [
        x["event_id"] for x in admin.get("/api/v1/dead-letters").json()["dead_letters"]
    ]
    assert admin.post(f"/api/v1/dead-letters/{uuid.uuid4()}/replay").status_code == 404
    assert admin.post("/api/v1/dead-letters/not-a-uuid/replay").status_code == 404


def test_dead_letters_need_the_admin_scope(client: httpx.Client, db: Engine) -> None:
    headers = {"Authorization": f"Bearer {make_key(db, 't1', 'ingest,search')}"}
    assert client.get("/api/v1/dead-letters", headers=headers).status_code == 403
    assert client.post("/api/v1/dead-letters/replay", headers=headers).status_code == 403
    assert client.get("/api/v1/dead-letters", headers={"Authorization": ""}).status_code == 401


def test_cli_lists_and_replays_dead_letters(
    worker: Proc, db: Engine, stack_env: dict[str, str]
) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    [event_id] = dead_lettered(db, tenant)
    cli = str(BIN / "eventsearch")

    listed = subprocess.run(
        [cli, "dead-letters", "list", "--tenant", tenant],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"event={event_id}" in listed.stdout and "NaN" in listed.stdout

    replayed = subprocess.run(
        [cli, "dead-letters", "replay", "--all", "--tenant", tenant],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "replayed 1 events" in replayed.stdout
    wait_for(lambda: len(dead_letters_of(db, event_id)) == 2, what="replayed and failed again")

    unknown = subprocess.run(
        [cli, "dead-letters", "replay", str(uuid.uuid4())],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 1 and "no dead letter" in unknown.stderr
