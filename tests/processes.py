"""Real gateway and worker processes for the tests, with their output kept in log files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from stack.ports import free_port, wait_until

BIN = Path(sys.executable).parent


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Self:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Gateway(Proc):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> Gateway:
        def up() -> bool:
            if not self.alive():
                raise RuntimeError(f"gateway exited:\n{self.output()[-3000:]}")
            try:
                return httpx.get(self.url + "/openapi.json", timeout=1).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(up, timeout, "gateway")
        return self


def gateway(env: dict[str, str], logdir: Path, name: str = "gateway") -> Gateway:
    port = free_port()
    # What the Procfile and compose run: uvicorn with h11 and the server's limits.
    args = [sys.executable, "-m", "gateway.server", "--host", "127.0.0.1", "--port", str(port)]
    return Gateway(name, args, env, logdir / f"{name}.log", port=port)


@dataclass
class Worker(Proc):
    metrics_port: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


def worker(env: dict[str, str], logdir: Path, name: str = "worker", concurrency: int = 2) -> Worker:
    # Each worker its own metrics port, so that several can run side by side.
    port = free_port()
    env = {**env, "WORKER_METRICS_PORT": str(port)}
    args = [
        str(BIN / "celery"),
        "-A",
        "workers.app",
        "worker",
        "--loglevel=INFO",
        "--queues=embed",
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
    ]
    return Worker(name, args, env, logdir / f"{name}.log", metrics_port=port)
