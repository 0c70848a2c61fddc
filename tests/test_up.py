"""``eventsearch up`` on a bare machine: starts its own PostgreSQL and Redis, runs gateway,
worker and Flower, stops everything on Ctrl-C and keeps the data for the next start."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from stack.ports import free_port, port_open
from tests.conftest import event_body, new_key, wait_for
from tests.stub_embedder import StubServer

BIN = Path(sys.executable).parent


def bare_env(**extra: str) -> dict[str, str]:
    """This environment without the test session's servers: as a new terminal has it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, **extra}


def eventsearch(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """An ``eventsearch`` command in a second terminal: only EVENTSEARCH_HOME says where."""
    return subprocess.run(
        [str(BIN / "eventsearch"), *args],
        env=bare_env(EVENTSEARCH_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def stack_up(home: Path, stub: StubServer, gateway_port: int, flower_port: int) -> Iterator[None]:
    env = bare_env()
    env.update(
        EVENTSEARCH_HOME=str(home),
        GATEWAY_PORT=str(gateway_port),
        FLOWER_PORT=str(flower_port),
        EMBEDDER="ollama",
        OLLAMA_URL=stub.url,
    )
    with open(home.parent / "up.log", "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "eventsearch"), "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        # What Ctrl-C does in a terminal: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0


def test_up_runs_the_whole_stack_and_keeps_data(tmp_path: Path, stub: StubServer) -> None:
    home = tmp_path / "home"
    gateway_port, flower_port = free_port(), free_port()
    url = f"http://127.0.0.1:{gateway_port}"

    def healthy() -> bool:
        try:
            return httpx.get(url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with stack_up(home, stub, gateway_port, flower_port):
        wait_for(healthy, timeout=120, what="gateway healthy")
        auth = {"Authorization": f"Bearer {(home / 'dev-api-key').read_text().strip()}"}
        created = httpx.post(
            url + "/api/v1/events",
            json=event_body("kept across restarts"),
            headers={"Idempotency-Key": new_key(), **auth},
        ).json()
        event_url = f"{url}/api/v1/events/{created['id']}"
        wait_for(
            lambda: httpx.get(event_url, headers=auth).json()["status"] == "embedded",
            what="embedded",
        )
        flower = f"http://127.0.0.1:{flower_port}/"
        wait_for(lambda: port_open(flower_port), what="flower")
        assert httpx.get(flower).status_code == 401
        password = (home / "flower-password").read_text().strip()
        assert httpx.get(flower, auth=("admin", password)).status_code == 200
        commands_find_the_stack(home, url, password)

    assert not port_open(gateway_port) and not port_open(flower_port)
    assert not (home / "postgres" / "postmaster.pid").exists()
    assert not (home / "stack.json").exists()
    # Issue 12, item 6: up says where the key and the password are kept, never them.
    said = (tmp_path / "up.log").read_text()
    assert str(home / "dev-api-key") in said and str(home / "flower-password") in said
    assert password not in said
    assert (home / "dev-api-key").read_text().strip() not in said

    with stack_up(home, stub, gateway_port, flower_port):
        wait_for(healthy, timeout=120, what="gateway healthy again")
        assert httpx.get(event_url, headers=auth).json()["status"] == "embedded"


def commands_find_the_stack(home: Path, url: str, flower_password: str) -> None:
    """Issue 17: a second terminal's commands use the stack ``up`` records, and say so."""
    state_file = home / "stack.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    wait_for(lambda: "flower" in json.loads(state_file.read_text())["pids"], what="pids recorded")
    state = json.loads(state_file.read_text())
    assert state["gateway_url"] == url
    assert state["dev_key_file"] == str(home / "dev-api-key")
    assert flower_password not in state_file.read_text()  # paths of secrets, never secrets
    for name in ("up", "honcho", "postgres", "redis", "gateway", "worker", "flower"):
        assert os.path.exists(f"/proc/{state['pids'][name]}"), name
    # Issue 12, item 6: the password is in Flower's environment, not its argv.
    argv = Path(f"/proc/{state['pids']['flower']}/cmdline").read_bytes()
    assert b"flower" in argv and flower_password.encode() not in argv

    created = eventsearch(home, "keys", "create", "--tenant", "acme", "--scopes", "search")
    assert created.returncode == 0, created.stderr
    assert "using the stack of `eventsearch up`" in created.stderr
    assert state["database_url"] in created.stderr
    key = created.stdout.strip()
    answer = httpx.get(url + "/api/v1/search", params={"q": "x"}, headers={"X-API-Key": key})
    assert answer.status_code == 200, answer.text

    shown = eventsearch(home, "status", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    assert report["gateway"] == {"url": url, "state": "ok"}
    assert report["postgres"]["state"] == report["redis"]["state"] == "ok"
    assert report["postgres"]["events"].get("embedded", 0) >= 1
    assert report["redis"]["queue"]["depth"] >= 0
    assert all(p["running"] for p in report["processes"].values())
    wait_for(
        lambda: json.loads(eventsearch(home, "status", "--json").stdout)["redis"]["workers"],
        what="the worker's heartbeat in status",
    )
    text = eventsearch(home, "status").stdout
    assert f"{url}/console" in text and "dev-api-key" in text
    second = eventsearch(home, "up")  # would stop this stack's PostgreSQL on its way up
    assert second.returncode == 1 and "already runs" in second.stderr, second.stderr


@pytest.mark.parametrize("how", ["SIGTERM to up", "Ctrl-C to the terminal's group"])
def test_up_stopped_while_starting_exits_0_and_stops_what_it_started(
    tmp_path: Path, stub: StubServer, how: str
) -> None:
    """A stop as soon as PostgreSQL runs (start-up under way: pg_ctl, the migration, the dev
    key may be running too, and get the terminal's SIGINT as well): exit 0, no server left."""
    home = tmp_path / "home"
    env = bare_env(
        EVENTSEARCH_HOME=str(home),
        GATEWAY_PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
        EMBEDDER="ollama",
        OLLAMA_URL=stub.url,
    )
    with open(tmp_path / "up.log", "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "eventsearch"), "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfile = home / "postgres" / "postmaster.pid"
    wait_for(pidfile.exists, timeout=120, what="PostgreSQL started")
    if how == "SIGTERM to up":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    assert process.wait(120) == 0, (tmp_path / "up.log").read_text()
    wait_for(lambda: not pidfile.exists(), 30, "PostgreSQL stopped")
    assert not (home / "stack.json").exists()
    stale = eventsearch(home, "keys", "list")
    assert stale.returncode == 2
    assert "no running stack" in stale.stderr and "Traceback" not in stale.stderr
