"""``eventsearch reembed``: after a model change the workers embed every event again, in
batches, while search keeps answering; search compares only vectors of its active model."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import make_key, wait_for
from tests.processes import BIN, Gateway
from tests.searchdata import MODEL, store, stored_event
from tests.stub_embedder import POISON_MARK, StubServer

NEW_MODEL = "stub-embed-v2"


@pytest.fixture(scope="module")
def new_model_env(
    stack_env: dict[str, str], redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A worker already switched to the new model, on a Redis db of its own so that it never
    takes the session worker's messages (nor they its)."""
    env = {**stack_env, "EMBED_MODEL": NEW_MODEL, "REDIS_URL": redis_server.url.replace("/0", "/2")}
    worker = processes.worker(env, tmp_path_factory.mktemp("reembed"), "worker-v2", 1).start()
    yield env
    worker.stop()


def models_of(db: Engine, ids: list[str]) -> list[str | None]:
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT id::text, model FROM events WHERE id::text = ANY(:ids)"), {"ids": ids}
        ).all()
    by_id = dict(rows)
    return [by_id[i] for i in ids]


def test_reembed_moves_every_event_to_the_new_model_while_search_answers(
    db: Engine, gateway: Gateway, stub: StubServer, new_model_env: dict[str, str], tmp_path: Path
) -> None:
    tenant = f"reembed-{uuid.uuid4().hex[:8]}"
    texts = [f"harbour crane shift {i}" for i in range(7)]
    ids = store(db, [stored_event(tenant, t) for t in texts])
    gone = stored_event(tenant, "harbour crane deleted")
    gone["status"] = "deleted"  # deleted after it was embedded: it keeps its old vector
    [deleted] = store(db, [gone])
    [elsewhere] = store(db, [stored_event(f"other-{tenant}", "harbour crane shift")])
    key = make_key(db, tenant, "search")
    stub.behaviour.delay_s = 0.2  # slow enough that searches land while batches do

    command = [str(BIN / "eventsearch"), "reembed", "--tenant", tenant, "--batch-size", "2"]
    with (tmp_path / "reembed.out").open("w") as output:
        proc = subprocess.Popen(command, env=new_model_env, stdout=output, stderr=output)
    answered = 0
    with httpx.Client(base_url=gateway.url, timeout=30, headers={"X-API-Key": key}) as client:
        while proc.poll() is None or answered == 0:
            response = client.get("/api/v1/search", params={"q": "harbour crane", "mode": "dense"})
            assert response.status_code == 200, response.text
            answered += 1
        assert proc.wait(timeout=60) == 0, (tmp_path / "reembed.out").read_text()
        assert answered >= 2
        assert models_of(db, ids) == [NEW_MODEL] * len(ids)
        # Deleted events and other tenants' events are left as they were.
        assert models_of(db, [deleted, elsewhere]) == [MODEL, MODEL]
        # The session gateway still runs the old model: it compares only vectors of its own
        # model, so the re-embedded events have left its dense ranking (keyword still sees
        # them: words need no model).
        dense = client.get("/api/v1/search", params={"q": "harbour crane", "mode": "dense"})
        assert dense.json()["results"] == []
        keyword = client.get("/api/v1/search", params={"q": "harbour crane", "mode": "keyword"})
        assert {h["id"] for h in keyword.json()["results"]} == set(ids)
    assert "re-embedded with stub-embed-v2" in (tmp_path / "reembed.out").read_text()


def test_reembed_with_nothing_to_do_says_so(db: Engine, new_model_env: dict[str, str]) -> None:
    tenant = f"reembed-none-{uuid.uuid4().hex[:8]}"
    store(db, [stored_event(tenant, "already new", model=NEW_MODEL)])
    result = subprocess.run(
        [str(BIN / "eventsearch"), "reembed", "--tenant", tenant],
        env=new_model_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"already from {NEW_MODEL}" in result.stdout


def letters_of(db: Engine, ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """Per event: its open dead letters, and its error."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id::text, count(d.id), e.error FROM events e"
                " LEFT JOIN dead_letters d ON d.event_id = e.id AND d.replayed_at IS NULL"
                " WHERE e.id::text = ANY(:ids) GROUP BY e.id, e.error"
            ),
            {"ids": ids},
        ).all()
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def test_reembed_out_of_attempts_leaves_a_dead_letter_and_the_old_vector(
    db: Engine, stub: StubServer, new_model_env: dict[str, str]
) -> None:
    tenant = f"reembed-fail-{uuid.uuid4().hex[:8]}"
    mark = f"flaky{uuid.uuid4().hex[:8]}"
    ids = store(db, [stored_event(tenant, f"{mark} quay {i}") for i in range(2)])
    stub.behaviour.watch = mark
    stub.behaviour.fail_times = 1000  # every call with these texts: 503, transient
    result = subprocess.run(
        [str(BIN / "eventsearch"), "reembed", "--tenant", tenant, "--no-wait"],
        env=new_model_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    wait_for(lambda: all(n == 1 for n, _ in letters_of(db, ids).values()), what="dead letters")
    assert stub.behaviour.watched_calls == 5  # EMBED_MAX_ATTEMPTS, one call each
    for count, error in letters_of(db, ids).values():
        assert count == 1
        assert error is not None and error.startswith("gave up after 5 attempts: ")
    assert models_of(db, ids) == [MODEL, MODEL]  # the old vectors stay, and stay searchable
    with db.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT count(*) FROM events e WHERE id::text = ANY(:ids) AND status = 'embedded'"
                " AND EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = e.id)"
            ),
            {"ids": ids},
        ).scalar_one()
    assert kept == 2


def test_reembed_refused_for_good_dead_letters_only_that_text(
    db: Engine, stub: StubServer, new_model_env: dict[str, str]
) -> None:
    tenant = f"reembed-poison-{uuid.uuid4().hex[:8]}"
    good, bad = store(
        db,
        [stored_event(tenant, "quay crane good"), stored_event(tenant, f"quay {POISON_MARK}")],
    )
    result = subprocess.run(
        [str(BIN / "eventsearch"), "reembed", "--tenant", tenant, "--no-wait"],
        env=new_model_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    wait_for(lambda: models_of(db, [good]) == [NEW_MODEL], what="the good text re-embedded")
    wait_for(lambda: letters_of(db, [bad])[bad][0] == 1, what="the refused text's dead letter")
    assert models_of(db, [bad]) == [MODEL]
    assert letters_of(db, [good])[good] == (0, None)
