"""Long events on the real stack: embedded as chunk sets, found by any part of their text
with the passage that matched, one complete set whatever happens to the task, and never an
input over the embedder's context."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.chunking import char_chunker
from tests import processes
from tests.conftest import event_body, make_key, new_key, private_stack, status_of, wait_for
from tests.processes import Proc
from tests.reliability_helpers import dead_letters_of, insert_queued, publish, row, start_worker
from tests.stub_embedder import CONTEXT_ERROR, StubServer, stub_tokens

# The test stack's chunker: EMBEDDER=ollama, CHUNK_TOKENS 256 at 3 characters a token.
CHUNKER = char_chunker(256, 32, 3.0)
DUTIES = [
    "Maintain the nightly ingestion of every partner feed into the warehouse.",
    "Review schema changes proposed by the analytics team before they ship.",
    "Answer pages from the on-call rotation within fifteen minutes.",
    "Write a short incident note whenever a load arrives late.",
    "Mentor two junior engineers through their first quarter.",
]


def posting(marker: str, last: str, paragraphs: int = 12) -> str:
    body = "\n\n".join(
        f"Paragraph {i} of the posting {marker}. " + " ".join(DUTIES[i % 5 :] + DUTIES[: i % 5])
        for i in range(paragraphs)
    )
    return f"{body}\n\n{last}"


def ingest(client: httpx.Client, text_: str) -> str:
    response = client.post(
        "/api/v1/events", json=event_body(text_), headers={"Idempotency-Key": new_key()}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def chunk_rows(db: Engine, event_id: str) -> list[tuple[int, int, int, int]]:
    with db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT position, char_start, char_end, tokens FROM chunks"
                    " WHERE event_id = :id ORDER BY position"
                ),
                {"id": event_id},
            )
        ]


def assert_one_complete_set(db: Engine, event_id: str, text_: str) -> None:
    expected = [(c.position, c.start, c.end, c.tokens) for c in CHUNKER.split(text_)]
    assert chunk_rows(db, event_id) == expected


def test_a_long_event_is_found_by_its_last_sentence_with_that_passage(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    marker = uuid.uuid4().hex[:8]
    last = f"The one unusual duty: calibrate the basement seismograph every Friday {marker}."
    long_text = posting(marker, last)
    assert len(long_text) > 4000
    event_id = ingest(client, long_text)
    ingest(client, f"Pastry chef wanted in Lyon, three lines only {marker}")
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
    assert len(chunk_rows(db, event_id)) > 5
    assert_one_complete_set(db, event_id, long_text)

    query = f"calibrate the basement seismograph every Friday {marker}"
    for mode in ("dense", "hybrid", "keyword"):
        found = client.post("/api/v1/search", json={"query": query, "top_k": 3, "mode": mode})
        assert found.status_code == 200, found.text
        hit = found.json()["results"][0]
        assert hit["id"] == event_id, mode
        passage = hit["passage"]
        assert long_text[passage["start"] : passage["end"]] == passage["text"], mode
        assert "seismograph" in passage["text"], (mode, passage)
        assert passage["end"] - passage["start"] < len(long_text) / 3, mode
    from eventsearch import Client

    with Client(str(client.base_url), api_key=client.headers["Authorization"][7:]) as sdk:
        [top] = sdk.search(query, top_k=1, mode="dense").results
    assert top.passage is not None and "seismograph" in top.passage.text
    assert top.text[top.passage.start : top.passage.end] == top.passage.text
    # A short event's passage is its whole text.
    short = client.post(
        "/api/v1/search", json={"query": f"Pastry chef Lyon {marker}", "top_k": 1, "mode": "dense"}
    ).json()["results"][0]
    assert short["passage"] == {"text": short["text"], "start": 0, "end": len(short["text"])}


def test_dense_search_returns_top_k_distinct_events_when_chunks_crowd_the_top(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    # Three long events whose every chunk is the query, and eight short ones farther: the
    # nearest 30 chunks belong to 3 events, yet top_k 8 gets 8 distinct events.
    marker = uuid.uuid4().hex[:8]
    words = f"glacier survey drilling core sample {marker}"
    long_text = ". ".join([words] * 150)
    longs = [ingest(client, long_text) for _ in range(3)]
    shorts = [ingest(client, f"glacier survey station {i} {marker}") for i in range(8)]
    wait_for(
        lambda: all(status_of(client, i)["status"] == "embedded" for i in longs + shorts),
        what="embedded",
    )
    found = client.post(
        "/api/v1/search",
        json={"query": words, "top_k": 8, "mode": "dense", "filters": {"source": ["jobboard"]}},
    ).json()["results"]
    ids = [h["id"] for h in found]
    assert len(ids) == 8 == len(set(ids))
    assert set(ids[:3]) == set(longs) and set(ids[3:]) <= set(shorts)


def run_batch_here(ids: list[str]) -> None:
    import workers.app  # noqa: F401 (first, as a worker does)
    from workers.embed import run_batch

    assert run_batch(ids) is None


def test_a_task_run_twice_leaves_one_chunk_set(
    client: httpx.Client, worker: Proc, db: Engine, stub: StubServer
) -> None:
    marker = uuid.uuid4().hex[:8]
    long_text = posting(marker, f"Closing line {marker}.")
    event_id = ingest(client, long_text)
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
    before = chunk_rows(db, event_id)
    run_batch_here([event_id, event_id])
    assert chunk_rows(db, event_id) == before
    assert_one_complete_set(db, event_id, long_text)


def test_two_runs_at_once_store_one_chunk_set(db: Engine, stub: StubServer) -> None:
    # Both runs claim the event and reach the embedder; the gate lets them store together.
    stub.behaviour.watch, stub.behaviour.hold = uuid.uuid4().hex, True
    long_text = posting(stub.behaviour.watch, "The end.")
    [event_id] = insert_queued(db, [long_text])
    runs = [threading.Thread(target=run_batch_here, args=([event_id],)) for _ in range(2)]
    for run in runs:
        run.start()
    wait_for(lambda: stub.behaviour.watched_in_flight >= 2, what="both runs at the embedder")
    stub.behaviour.gate.set()
    for run in runs:
        run.join(60)
    assert row(db, event_id)["status"] == "embedded"
    assert_one_complete_set(db, event_id, long_text)


def test_delete_removes_the_chunk_set_and_reembed_replaces_it(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    marker = uuid.uuid4().hex[:8]
    long_text = posting(marker, f"Last words {marker}.")
    event_id = ingest(client, long_text)
    wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")

    import workers.app  # noqa: F401
    from workers.reembed import reembed_events

    with db.begin() as conn:  # a set made by other chunk settings (or before chunking)
        conn.execute(text("UPDATE events SET chunking = NULL WHERE id = :id"), {"id": event_id})
        conn.execute(
            text("DELETE FROM chunks WHERE event_id = :id AND position > 0"), {"id": event_id}
        )
    assert len(chunk_rows(db, event_id)) == 1
    assert reembed_events.run([event_id], "stub-embed") == 1
    assert_one_complete_set(db, event_id, long_text)
    assert reembed_events.run([event_id], "stub-embed") == 0  # nothing stale any more

    assert client.delete(f"/api/v1/events/{event_id}").status_code == 204
    # The gateway's session commits as the response goes out: poll, never assume.
    wait_for(lambda: chunk_rows(db, event_id) == [], 10, "the chunk set gone")
    found = client.post(
        "/api/v1/search", json={"query": f"Last words {marker}", "top_k": 5, "mode": "dense"}
    ).json()["results"]
    assert event_id not in [h["id"] for h in found]


def test_the_stub_refuses_an_input_over_its_context_as_ollama_does(stub: StubServer) -> None:
    stub.behaviour.context_tokens = 50
    over = httpx.post(
        f"{stub.url}/api/embed",
        json={"model": "m", "input": ["fits", "word " * 51], "truncate": False},
    )
    assert over.status_code == 400 and over.json() == {"error": CONTEXT_ERROR}
    fits = httpx.post(f"{stub.url}/api/embed", json={"model": "m", "input": ["word " * 50]})
    assert fits.status_code == 200


@pytest.fixture(scope="module")
def own_stack(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Engine, Path]]:
    """A database and broker of this module's own: its workers get killed and configured
    otherwise, and the session's worker must not take their events."""
    with private_stack(stack_env, tmp_path_factory.mktemp("chunks")) as stack:
        yield stack


def test_the_worker_never_sends_an_input_over_the_context(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    # 80 stub tokens of context; chunks of 96 estimated tokens at 3 characters each are
    # 288 characters, about 50 stub tokens of English: every one fits.
    stub.behaviour.context_tokens = 80
    worker = start_worker(env, logdir, f"context-{uuid.uuid4().hex[:6]}", EMBED_CONTEXT_TOKENS="96")
    try:
        stub.behaviour.watch = uuid.uuid4().hex
        long_text = posting(stub.behaviour.watch, "The end.", paragraphs=20)
        ids = insert_queued(db, [long_text])
        publish(env, ids)
        wait_for(lambda: row(db, ids[0])["status"] == "embedded", 60, "embedded")
        assert stub.behaviour.refused_over_context == 0
        assert 0 < stub.behaviour.max_input_tokens <= 80
        assert stub.behaviour.max_input_chars <= 288
        assert int(row(db, ids[0])["chunks"]) > 20
    finally:
        worker.stop()


def test_an_input_the_server_still_refuses_as_over_context_is_dead_lettered_saying_so(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    # Configured wrongly: 10 characters a token, so a chunk of 96 "tokens" is 960 characters,
    # over the server's real context of 80 tokens.
    stub.behaviour.context_tokens = 80
    worker = start_worker(
        env,
        logdir,
        f"overctx-{uuid.uuid4().hex[:6]}",
        EMBED_CONTEXT_TOKENS="96",
        EMBED_CHARS_PER_TOKEN="10",
    )
    try:
        stub.behaviour.watch = uuid.uuid4().hex
        # One paragraph, so that chunks fill the 960 characters (each of the posting's
        # paragraphs alone would be a chunk within the real context).
        text_ = posting(stub.behaviour.watch, "The end.").replace("\n\n", " ")
        ids = insert_queued(db, [text_])
        publish(env, ids)
        wait_for(lambda: row(db, ids[0])["status"] == "failed", 60, "dead-lettered")
        [letter] = dead_letters_of(db, ids[0])
        reason = str(letter["error"])
        assert "over the model's context" in reason and "EMBED_CHARS_PER_TOKEN" in reason
        assert "chunks 0-" in reason and CONTEXT_ERROR in reason
        assert not row(db, ids[0])["has_vector"]
    finally:
        worker.stop()


def test_a_worker_killed_mid_event_leaves_no_partial_set_and_the_event_is_embedded_whole(
    own_stack: tuple[dict[str, str], Engine, Path], stub: StubServer
) -> None:
    env, db, logdir = own_stack
    fast = {
        "TASK_TIME_LIMIT_S": "4",
        "SWEEP_AFTER_S": "6",
        "BROKER_VISIBILITY_TIMEOUT_S": "10",
        "EMBED_BATCH_SIZE": "4",  # 4 chunks a call: the event's chunks take several calls
    }
    worker = start_worker(env, logdir, f"killed-{uuid.uuid4().hex[:6]}", **fast)
    stub.behaviour.watch = uuid.uuid4().hex
    long_text = posting(stub.behaviour.watch, "The end.", paragraphs=20)
    assert len(CHUNKER.split(long_text)) > 8
    [event_id] = insert_queued(db, [long_text])
    # Two calls answered, the third held: the kill lands between calls of one event.
    stub.behaviour.hold, stub.behaviour.hold_from = True, stub.behaviour.watched_calls + 2
    publish(env, [event_id])
    # Held, not merely in flight: under load the poll can see an answered call still in flight.
    wait_for(lambda: stub.behaviour.held >= 1, what="the third call held")
    assert stub.behaviour.watched_calls == stub.behaviour.hold_from + 1
    worker.stop(signal.SIGKILL)
    stub.behaviour.gate.set()
    stub.behaviour.hold = False
    assert chunk_rows(db, event_id) == [] and row(db, event_id)["status"] == "queued"

    restarted = start_worker(env, logdir, f"again-{uuid.uuid4().hex[:6]}", **fast)
    try:
        wait_for(lambda: row(db, event_id)["status"] == "embedded", 60, "embedded")
        assert_one_complete_set(db, event_id, long_text)
        assert stub_tokens(long_text) > 0
    finally:
        restarted.stop()


def test_stats_and_metrics_count_chunks_and_tokens(
    gateway: processes.Gateway, worker: Proc, db: Engine
) -> None:
    tenant = f"chunks-{uuid.uuid4().hex[:8]}"
    long_text = posting(tenant, "Counted.")
    with httpx.Client(
        base_url=gateway.url, headers={"X-API-Key": make_key(db, tenant)}, timeout=30
    ) as own:
        ids = [ingest(own, long_text), ingest(own, "one short event")]
        wait_for(
            lambda: all(status_of(own, i)["status"] == "embedded" for i in ids), what="embedded"
        )
        stats = own.get("/api/v1/stats").json()
    chunks = CHUNKER.split(long_text) + CHUNKER.split("one short event")
    assert stats["chunks"] == len(chunks) > 2
    assert stats["chunk_tokens"] == sum(c.tokens for c in chunks)

    def exposed() -> bool:
        text_ = httpx.get(f"{gateway.url}/metrics").text
        return (
            "eventsearch_embed_chunks_total{" in text_
            and "eventsearch_embed_tokens_total{" in text_
        )

    wait_for(exposed, 30, "chunk and token counters relayed from the worker")
