"""The state file of ``eventsearch up`` (stack/stackfile.py), without a stack: its mode, what
a command does with a fresh one, and the one line a stale one gives."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stack import stackfile
from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis

BIN = Path(sys.executable).parent


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def state(pid: int, pg_port: int, redis_port: int) -> dict[str, object]:
    return {
        "pids": {"up": pid},
        "database_url": f"postgresql://postgres@127.0.0.1:{pg_port}/eventsearch",
        "redis_url": f"redis://127.0.0.1:{redis_port}/0",
        "gateway_url": "http://127.0.0.1:8123",
    }


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [str(BIN / "eventsearch"), *args],
        env={**env, "EVENTSEARCH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_file_is_its_owners_alone_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = stackfile.write(tmp_path, state(os.getpid(), 1, 2))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stackfile.read(tmp_path)["pids"] == {"up": os.getpid()}


def test_a_running_stack_fills_only_what_the_environment_lacks(
    tmp_path: Path, postgres: EmbeddedPostgres, redis_server: EmbeddedRedis
) -> None:
    stackfile.write(tmp_path, state(os.getpid(), postgres.port, redis_server.port))
    environ = {"REDIS_URL": "redis://elsewhere:6379/0"}
    said = stackfile.apply(environ, tmp_path)
    assert environ["DATABASE_URL"] == f"postgresql://postgres@127.0.0.1:{postgres.port}/eventsearch"
    assert environ["REDIS_URL"] == "redis://elsewhere:6379/0"
    assert environ["EVENTSEARCH_URL"] == "http://127.0.0.1:8123"
    assert said is not None and "DATABASE_URL=" in said and "REDIS_URL" not in said
    assert stackfile.apply({"DATABASE_URL": "x", "REDIS_URL": "y"}, tmp_path) is None


@pytest.mark.parametrize("command", [["keys", "list"], ["dead-letters", "list"], ["migrate"]])
def test_a_stale_file_is_one_line_not_a_traceback(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(state(dead_pid(), free_port(), free_port())))
    done = run(tmp_path, *command)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "is stale" in lines[0] and "make up" in lines[0], done.stderr


def test_servers_gone_under_a_live_up_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(state(os.getpid(), free_port(), free_port())))
    done = run(tmp_path, "keys", "list")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not answer" in done.stderr, done.stderr


def test_no_stack_at_all_says_how_to_start_one(tmp_path: Path) -> None:
    done = run(tmp_path, "keys", "list")
    assert done.returncode == 2
    assert "no running stack" in done.stderr and "make up" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_of_a_stale_stack_names_what_is_down(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(state(dead_pid(), free_port(), free_port())))
    done = run(tmp_path, "status")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT RUNNING" in done.stdout and "down" in done.stdout
    assert "Traceback" not in done.stderr


def test_the_http_commands_ignore_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(state(dead_pid(), free_port(), free_port())))
    done = run(tmp_path, "send", "--help")
    assert done.returncode == 0 and "stale" not in done.stderr
