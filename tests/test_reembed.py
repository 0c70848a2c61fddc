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
from tests.conftest import make_key, status_of, wait_for
from tests.processes import BIN, Gateway
from tests.searchdata import MODEL, store, stored_event
from tests.stub_embedder import POISON_MARK, StubServer
from tests.test_chunks import chunk_rows, ingest, posting

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


@pytest.fixture(scope="module")
def rechunk_env(
    stack_env: dict[str, str], redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A worker on the same model with other chunk settings (CHUNK_TOKENS 128): every set
    the session's worker made is stale only by its chunking. A Redis db of its own."""
    env = {**stack_env, "CHUNK_TOKENS": "128", "REDIS_URL": redis_server.url.replace("/0", "/3")}
    worker = processes.worker(env, tmp_path_factory.mktemp("rechunk"), "worker-c128", 1).start()
    yield env
    worker.stop()


def chunk_sets(db: Engine, ids: list[str]) -> dict[str, object]:
    """Everything of these events' chunk sets and the event columns that name them."""
    with db.connect() as conn:
        chunks = conn.execute(
            text(
                "SELECT event_id::text, position, char_start, char_end, tokens, model,"
                " embedding::text FROM chunks WHERE event_id::text = ANY(:ids)"
                " ORDER BY event_id, position"
            ),
            {"ids": ids},
        ).all()
        events = conn.execute(
            text(
                "SELECT id::text, status, model, chunking, embedded_at FROM events"
                " WHERE id::text = ANY(:ids) ORDER BY id"
            ),
            {"ids": ids},
        ).all()
    return {"chunks": [tuple(c) for c in chunks], "events": [tuple(e) for e in events]}


def all_letters(db: Engine, ids: list[str]) -> int:
    """Dead letters of these events, open or replayed."""
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM dead_letters WHERE event_id::text = ANY(:ids)"),
                {"ids": ids},
            ).scalar_one()
        )


def run_reembed(env: dict[str, str], tenant: str) -> None:
    """``eventsearch reembed --no-wait`` for ``tenant``: its stale events in one batch."""
    command = ["reembed", "--tenant", tenant, "--batch-size", "50", "--no-wait"]
    result = subprocess.run(
        [str(BIN / "eventsearch"), *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("change", ["new-model", "same-model-other-chunk-tokens"])
def test_reembed_out_of_attempts_leaves_a_dead_letter_and_the_old_chunk_set(
    change: str,
    request: pytest.FixtureRequest,
    db: Engine,
    gateway: Gateway,
    worker: processes.Worker,
    stub: StubServer,
) -> None:
    """Long events embedded by the pipeline (several chunks each), then re-embedded by a
    worker whose every embedder call for them fails (503, transient): out of attempts,
    each keeps its whole old set (vectors, spans, model, chunking), stays ``embedded`` and
    searchable, and gets the error and one dead letter; a second run writes no second one.
    With the same model and other CHUNK_TOKENS the set is stale only by its chunking (the
    case the transition once missed)."""
    env = request.getfixturevalue("new_model_env" if change == "new-model" else "rechunk_env")
    tenant = f"reembed-fail-{uuid.uuid4().hex[:8]}"
    mark = f"flaky{uuid.uuid4().hex[:8]}"
    key = make_key(db, tenant, "ingest,search")
    client = httpx.Client(base_url=gateway.url, timeout=30, headers={"X-API-Key": key})
    request.addfinalizer(client.close)
    ids = [ingest(client, posting(mark, f"Last duty {i}: the quay {mark}.", 5)) for i in range(2)]
    wait_for(
        lambda: all(status_of(client, i)["status"] == "embedded" for i in ids),
        what="the long events embedded",
    )
    before = chunk_sets(db, ids)
    assert all(len(chunk_rows(db, i)) >= 3 for i in ids), before  # long: several chunks each

    stub.behaviour.watch = mark
    stub.behaviour.fail_times = 1000  # every call with these texts: 503, transient
    run_reembed(env, tenant)
    wait_for(lambda: all(n == 1 for n, _ in letters_of(db, ids).values()), what="dead letters")
    assert stub.behaviour.watched_calls == 5  # EMBED_MAX_ATTEMPTS, one call each
    for count, error in letters_of(db, ids).values():
        assert count == 1
        assert error is not None and error.startswith("gave up after 5 attempts: ")
    assert chunk_sets(db, ids) == before  # the whole old set: vectors, spans, model, chunking
    assert models_of(db, ids) == [MODEL, MODEL]
    assert [status_of(client, i)["status"] for i in ids] == ["embedded", "embedded"]
    found = client.get("/api/v1/search", params={"q": "the quay", "mode": "dense"})
    assert found.status_code == 200, found.text
    assert {h["id"] for h in found.json()["results"]} == set(ids)  # still searchable

    # A second run gives up again. A third stale event, not in the first run, is in its
    # batch: its letter is written in the transaction that writes none for the other two.
    [sentinel] = store(db, [stored_event(tenant, f"{mark} sentinel quay")])
    run_reembed(env, tenant)
    wait_for(lambda: letters_of(db, [sentinel])[sentinel][0] == 1, what="the second run gave up")
    assert all_letters(db, ids) == 2  # one each, still
    assert chunk_sets(db, ids) == before


def test_reembed_refused_for_good_dead_letters_only_that_text(
    db: Engine, stub: StubServer, new_model_env: dict[str, str]
) -> None:
    tenant = f"reembed-poison-{uuid.uuid4().hex[:8]}"
    good, bad = store(
        db,
        [stored_event(tenant, "quay crane good"), stored_event(tenant, f"quay {POISON_MARK}")],
    )
    run_reembed(new_model_env, tenant)
    wait_for(lambda: models_of(db, [good]) == [NEW_MODEL], what="the good text re-embedded")
    wait_for(lambda: letters_of(db, [bad])[bad][0] == 1, what="the refused text's dead letter")
    assert models_of(db, [bad]) == [MODEL]
    assert letters_of(db, [good])[good] == (0, None)
