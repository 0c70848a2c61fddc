"""``eventsearch up``: the whole stack on one machine.

Without DATABASE_URL / REDIS_URL it starts PostgreSQL+pgvector and Redis from pip wheels,
keeping their data in ``.eventsearch/`` (a second ``up`` finds it again); with them set,
nothing embedded starts. Then it migrates and runs the Procfile with honcho. Ctrl-C stops
every process, the embedded servers last.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from stack.ports import free_port, port_open
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis

PG_PORT = 54329
REDIS_PORT = 63799


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


def run(home: Path, procfile: Path) -> int:
    """Start what is missing, migrate, run the Procfile until it ends or Ctrl-C."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TMPDIR", str(home / "tmp"))
    home.mkdir(parents=True, exist_ok=True)
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(home / "postgres", _port(PG_PORT))
            pg.start()
            stack.callback(pg.stop)
            env["DATABASE_URL"] = pg.url
            print(f"eventsearch: PostgreSQL+pgvector (embedded) at {pg.url}", flush=True)
        if not env.get("REDIS_URL"):
            rd = EmbeddedRedis(home / "redis", _port(REDIS_PORT))
            rd.start()
            stack.callback(rd.stop)
            env["REDIS_URL"] = rd.url
            print(f"eventsearch: Redis (embedded) at {rd.url}", flush=True)
        env["EMBEDDER"] = _choose_embedder(env)
        env.setdefault("FLOWER_USER", "admin")
        env.setdefault("FLOWER_PASSWORD", _flower_password(home))
        print(f"eventsearch: embedder {env['EMBEDDER']}", flush=True)
        migrate = subprocess.run([sys.executable, "-m", "cli.main", "migrate"], env=env)
        if migrate.returncode:
            return migrate.returncode
        dev_key = _dev_key(home, env)
        port = env.get("GATEWAY_PORT", "8000")
        print(
            f"eventsearch: gateway http://127.0.0.1:{port} (docs at /docs); Flower "
            f"http://127.0.0.1:{env.get('FLOWER_PORT', '5555')} user {env['FLOWER_USER']} "
            f"password {env['FLOWER_PASSWORD']}",
            flush=True,
        )
        print(f"eventsearch: development API key (all scopes, tenant dev): {dev_key}", flush=True)
        honcho = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "honcho",
                "start",
                "-f",
                str(procfile),
                "-d",
                str(procfile.parent),
            ],
            env=env,
        )
        return _supervise(honcho)


def _supervise(honcho: subprocess.Popen[bytes]) -> int:
    """Wait for honcho; a Ctrl-C or SIGTERM is a clean stop, 0, whatever honcho answers.

    Ctrl-C reaches the whole process group, and honcho stops its children itself (exiting
    130); SIGTERM (sent to us alone) is passed on to it. The handlers only note the stop and
    tell honcho: no KeyboardInterrupt is raised, so none can land in the middle of the
    embedded servers' shutdown, whichever process sees the signal first (a race that once
    ended `eventsearch up` with 130 on a loaded machine)."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = honcho.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A stop that honcho saw first (it exits 130 or 143 on SIGINT/SIGTERM) is ours too.
    return 0 if stopping or code in (130, 143, -signal.SIGINT, -signal.SIGTERM) else code
