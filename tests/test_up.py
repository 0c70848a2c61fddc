"""``eventsearch up`` on a bare machine: starts its own PostgreSQL and Redis, runs gateway,
worker and Flower, stops everything on Ctrl-C and keeps the data for the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from stack.ports import free_port, port_open
from tests.conftest import event_body, new_key, wait_for
from tests.stub_embedder import StubServer

BIN = Path(sys.executable).parent


@contextmanager
def stack_up(home: Path, stub: StubServer, gateway_port: int, flower_port: int) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
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

    assert not port_open(gateway_port) and not port_open(flower_port)
    assert not (home / "postgres" / "postmaster.pid").exists()

    with stack_up(home, stub, gateway_port, flower_port):
        wait_for(healthy, timeout=120, what="gateway healthy again")
        assert httpx.get(event_url, headers=auth).json()["status"] == "embedded"
