"""``eventsearch send``: the real command, against a real gateway on its own Redis (no worker
consumes its queue, so 10,000 events cost no embedding)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cli.send import keyed
from stack.ports import free_port
from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import event_count, make_key, new_key
from tests.scripted_server import ScriptedServer, error


@pytest.fixture(scope="module")
def send_gateway(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[processes.Gateway]:
    redis = EmbeddedRedis(tmp_path_factory.mktemp("send-redis"), free_port())
    redis.start()
    env = {**stack_env, "REDIS_URL": redis.url}
    proc = processes.gateway(env, tmp_path_factory.mktemp("send"), "gateway-send")
    proc.start()
    proc.wait_ready()
    yield proc
    proc.stop()
    redis.stop()


@pytest.fixture
def tenant(request: pytest.FixtureRequest) -> str:
    return f"send-{request.node.name[:40]}-{new_key()[-8:]}"


def run_send(
    url: str, key: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"EVENTSEARCH_URL": url, "EVENTSEARCH_API_KEY": key, "PATH": str(processes.BIN)}
    return subprocess.run(
        [str(processes.BIN / "eventsearch"), "send", *args, "--json", "--no-progress"],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, float]:
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_send_of_10000_lines_twice_gives_10000_accepted_then_10000_duplicates(
    send_gateway: processes.Gateway, db: Engine, tenant: str, tmp_path: Path
) -> None:
    key = make_key(db, tenant, "ingest")
    path = tmp_path / "events.jsonl"
    with path.open("w") as out:
        for i in range(10_000):
            event = {
                "source": "jobboard",
                "type": "job.posted",
                "text": f"posting {i}: data engineer, shift {i % 7}",
                "metadata": {"n": i},
            }
            out.write(json.dumps(event) + "\n")

    first = run_send(send_gateway.url, key, str(path))
    assert first.returncode == 0, first.stderr
    again = run_send(send_gateway.url, key, str(path))
    assert again.returncode == 0, again.stderr

    counts = summary(first)
    assert (counts["lines"], counts["accepted"], counts["duplicate"], counts["rejected"]) == (
        10_000,
        10_000,
        0,
        0,
    )
    counts = summary(again)
    assert (counts["accepted"], counts["duplicate"], counts["rejected"]) == (0, 10_000, 0)
    assert event_count(db, "tenant = :t", t=tenant) == 10_000


def test_send_from_stdin_keys_by_field_and_reports_rejected_lines(
    send_gateway: processes.Gateway, db: Engine, tenant: str
) -> None:
    key = make_key(db, tenant, "ingest")

    def line(posting: str | None, **event: object) -> str:
        body = {"source": "jobboard", "type": "job.posted", **event}
        return json.dumps({**body, "id": posting} if posting else body)

    lines = [
        line("p-1", text="kettles"),
        line("p-2", text="toasters"),
        "{not json",
        line("p-4"),  # no text
        line(None, text="no posting id"),
        "",
        line("p-1", text="kettles"),  # the same posting again, in the same file
    ]
    stdin = "\n".join(lines) + "\n"
    first = run_send(send_gateway.url, key, "-", "--key-field", "id", stdin=stdin)
    assert first.returncode == 1, first.stderr  # some lines were rejected
    counts = summary(first)
    assert (counts["accepted"], counts["duplicate"], counts["rejected"]) == (2, 1, 3)
    assert "line 3: invalid_json" in first.stderr
    assert "line 4: validation_error" in first.stderr and "text" in first.stderr
    assert "line 5: key_field_missing" in first.stderr
    assert event_count(db, "tenant = :t AND idempotency_key IN ('p-1', 'p-2')", t=tenant) == 2

    changed = line("p-2", text="toasters, now on sale") + "\n"
    again = run_send(send_gateway.url, key, "-", "--key-field", "id", stdin=changed)
    assert summary(again)["rejected"] == 1
    assert "line 1: idempotency_key_reused" in again.stderr


def test_content_keys_ignore_key_order_and_spacing() -> None:
    a = keyed(json.loads('{"source": "s", "type": "t", "text": "x"}'), None, "")
    b = keyed(json.loads('{"text":"x","type":"t","source":"s"}'), None, "")
    c = keyed({"source": "s", "type": "t", "text": "y"}, None, "")
    assert a["idempotency_key"] == b["idempotency_key"] != c["idempotency_key"]
    assert a["idempotency_key"].startswith("sha256:")
    assert keyed({"idempotency_key": "own", "text": "x"}, "text", "")["idempotency_key"] == "own"
    assert keyed({"text": "x", "metadata": {"n": 7}}, "metadata.n", "src-")["idempotency_key"] == (
        "src-7"
    )


def test_send_gives_up_after_its_deadline_with_exit_2_and_says_how_to_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"source": "s", "type": "t", "text": "x"}) + "\n")
    # Retry-After 1 s against a 6 s deadline: fewer attempts than the 8 allowed fit, so the
    # deadline (not the attempt count) ends it, and a first answer slower than 5 s (a loaded
    # machine) is all it takes to miss the first retry (0.5 s was too tight under load).
    with ScriptedServer(error(503, "database_unavailable", retry_after="1")) as server:
        done = run_send(server.url, "k", str(path), "--deadline", "6")
    assert done.returncode == 2
    assert "database_unavailable" in done.stderr and "resume" in done.stderr
    assert "retry 1: database_unavailable" in done.stderr  # each retry is shown as it happens
    assert summary(done)["accepted"] == 0
