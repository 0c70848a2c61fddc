"""``eventsearch up``: the whole stack on one machine.

Without DATABASE_URL / REDIS_URL it starts PostgreSQL+pgvector and Redis from pip wheels,
keeping their data in ``.eventsearch/`` (a second ``up`` finds it again); with them set,
nothing embedded starts. Then it migrates, records what runs in ``.eventsearch/stack.json``
(:mod:`stack.stackfile`) and runs the Procfile with honcho. Ctrl-C or SIGTERM stops every
process, the embedded servers last, and exits 0.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stack import processes, stackfile
from stack.ports import free_port, port_open
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis

PG_PORT = 54329
REDIS_PORT = 63799
POLL_S = 0.2  # how often the wait loop looks at the stop flag and honcho


def _port(preferred: int) -> int:
    return preferred if not port_open(preferred) else free_port()


def _flower_password(home: Path) -> str:
    path = home / "flower-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(16))
        path.chmod(0o600)
    return path.read_text().strip()


def _dev_key(home: Path, env: dict[str, str]) -> str:
    """A key for tenant ``dev`` with every scope, made on the first start and kept in home."""
    path = home / "dev-api-key"
    if not path.exists():
        made = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "keys",
                "create",
                "--tenant",
                "dev",
                "--scopes",
                "ingest,search,admin",
                "--name",
                "make up development key",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        path.write_text(made.stdout.strip())
        path.chmod(0o600)
    return path.read_text().strip()


def _choose_embedder(env: dict[str, str]) -> str:
    if "EMBEDDER" in env:
        return env["EMBEDDER"]
    from common.embedders.ollama import ollama_answers

    if ollama_answers(env.get("OLLAMA_URL", "http://localhost:11434")):
        env.setdefault("EMBED_DIM", "768")  # nomic-embed-text
        return "ollama"
    return "local"


class StopRequest:
    """SIGINT and SIGTERM only set a flag, which the start-up steps and the wait loop poll:
    a stop at any moment (while PostgreSQL starts, during the migration, while honcho runs)
    takes one path, stops what was started and exits 0. No exception is raised from a
    signal handler, so no stop can land in a window where it is not caught."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signum

    def __bool__(self) -> bool:
        return self.signal is not None

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _stop(process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """SIGTERM ``process`` (honcho passes it on: warm shutdown) and wait; SIGKILL after
    ``timeout``."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(home: Path, procfile: Path) -> int:
    """Start what is missing, migrate, run the Procfile until it ends or Ctrl-C / SIGTERM
    (then 0: a requested stop is a clean exit, whatever the processes answered)."""
    running = _already_running(home)
    if running:
        print(running, file=sys.stderr, flush=True)
        return 1
    stop = StopRequest()
    try:
        code = _run(home, procfile, stop)
    except Exception:
        if stop:  # a start-up step the stop cut short (pg_ctl got the terminal's SIGINT)
            return 0
        raise
    finally:
        stop.restore()
    return 0 if stop else code


def _run(home: Path, procfile: Path, stop: StopRequest) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TMPDIR", str(home / "tmp"))
    home.mkdir(parents=True, exist_ok=True)
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"home": str(home), "pids": {"up": os.getpid()}, "ports": {}}
    # Callbacks run last first: honcho, then the state file, Redis, PostgreSQL.
    with ExitStack() as stack:
        _start_servers(stack, home, env, state, stop)
        if stop:
            return 0
        env["EMBEDDER"] = _choose_embedder(env)
        env.setdefault("FLOWER_USER", "admin")
        env.setdefault("FLOWER_PASSWORD", _flower_password(home))
        print(f"eventsearch: embedder {env['EMBEDDER']}", flush=True)
        migrate = subprocess.run([sys.executable, "-m", "cli.main", "migrate"], env=env)
        if stop:
            return 0
        if migrate.returncode:
            return migrate.returncode
        try:
            _dev_key(home, env)
        except subprocess.CalledProcessError as error:
            if stop:
                return 0
            print(f"eventsearch: could not create the dev key: {error.stderr}", file=sys.stderr)
            return 1
        _record(state, env, home, procfile)
        stack.callback(stackfile.remove, home, os.getpid())
        if stop:
            return 0
        # A session of its own: Ctrl-C in the terminal reaches this process alone, which
        # sends honcho exactly one SIGTERM (honcho would answer a second signal by killing).
        command = ["honcho", "start", "-f", str(procfile), "-d", str(procfile.parent)]
        honcho = subprocess.Popen(
            [sys.executable, "-m", *command],
            env=env,
            start_new_session=True,
        )
        stack.callback(_stop, honcho)
        state["pids"]["honcho"] = honcho.pid
        return _wait(honcho, stop, home, state, processes.procfile(procfile))
    return 0  # unreachable: the with block returns


def _start_servers(
    stack: ExitStack, home: Path, env: dict[str, str], state: dict[str, Any], stop: StopRequest
) -> None:
    """The embedded PostgreSQL and Redis whose URLs ``env`` lacks (none once a stop came)."""
    if not env.get("DATABASE_URL"):
        pg = EmbeddedPostgres(home / "postgres", _port(PG_PORT))
        stack.callback(pg.stop)  # also after a start that a stop interrupted
        pg.start()
        env["DATABASE_URL"] = pg.url
        state["ports"]["postgres"] = pg.port
        state["pids"]["postgres"] = _postmaster_pid(pg.datadir)
        print(f"eventsearch: PostgreSQL+pgvector (embedded) at {pg.url}", flush=True)
    if not env.get("REDIS_URL") and not stop:
        rd = EmbeddedRedis(home / "redis", _port(REDIS_PORT), own_session=True)
        stack.callback(rd.stop)
        rd.start()
        env["REDIS_URL"] = rd.url
        state["ports"]["redis"] = rd.port
        state["pids"]["redis"] = rd.process.pid if rd.process else None
        print(f"eventsearch: Redis (embedded) at {rd.url}", flush=True)


def _record(state: dict[str, Any], env: dict[str, str], home: Path, procfile: Path) -> None:
    """Write the state file and say where everything is (where secrets are kept, never them)."""
    port = env.get("GATEWAY_PORT", "8000")
    flower_port = env.get("FLOWER_PORT", "5555")
    state.update(
        database_url=env["DATABASE_URL"],
        redis_url=env["REDIS_URL"],
        gateway_url=f"http://127.0.0.1:{port}",
        flower_url=f"http://127.0.0.1:{flower_port}",
        flower_user=env["FLOWER_USER"],
        dev_key_file=str(home / "dev-api-key"),
        flower_password_file=str(home / "flower-password"),
        embedder=env["EMBEDDER"],
        procfile=str(procfile),
        started_at=datetime.now(UTC).isoformat(),
    )
    state["ports"].update(gateway=int(port), flower=int(flower_port))
    written = stackfile.write(home, state)
    print(
        f"eventsearch: gateway {state['gateway_url']} (console at /console, docs at /docs); "
        f"Flower {state['flower_url']} user {env['FLOWER_USER']}, password in "
        f"{state['flower_password_file']}",
        flush=True,
    )
    print(
        f"eventsearch: development API key (tenant dev, every scope) in "
        f"{state['dev_key_file']}; this stack is recorded in {written}, so `eventsearch` "
        "commands in another terminal find it",
        flush=True,
    )


def _wait(
    honcho: subprocess.Popen[bytes],
    stop: StopRequest,
    home: Path,
    state: dict[str, Any],
    commands: dict[str, str],
) -> int:
    """Poll until honcho ends (a process died: its exit status) or a stop is requested;
    meanwhile record the Procfile processes' pids once they all run."""
    recorded = False
    while not stop and honcho.poll() is None:
        if not recorded:
            found = processes.find(honcho.pid, commands)
            if len(found) == len(commands):
                state["pids"].update(found)
                stackfile.write(home, state)
                recorded = True
        time.sleep(POLL_S)
    if stop:
        return 0
    return honcho.returncode or 0


def _already_running(home: Path) -> str | None:
    """A line saying so when another ``up`` runs on this home: a second one would stop the
    first one's PostgreSQL (same data dir) on its way up."""
    try:
        pid = stackfile.read(home).get("pids", {}).get("up")
    except (FileNotFoundError, stackfile.StaleStack):
        return None
    if pid == os.getpid() or not stackfile.alive(pid):
        return None
    return (
        f"eventsearch: a stack already runs from {home} (`eventsearch up` pid {pid}); "
        "`.venv/bin/eventsearch status` shows it"
    )


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
