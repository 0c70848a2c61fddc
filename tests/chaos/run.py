"""The chaos suite: ``python -m tests.chaos.run --events 10000`` (``make chaos``); a smaller
run is part of ``make test`` (tests/test_chaos.py).

It starts a PostgreSQL, a Redis, the real gateway and two real worker processes, and a stub
embedder failing ~20% of calls (429 + Retry-After, 500, hangs past the timeout, slow answers)
and answering NaN for the marked texts (1%). It sends the events through a client that
retries with the same Idempotency-Key; meanwhile it SIGKILLs a worker three times while a
batch is at the embedder (and starts it again), SIGKILLs Redis once and restarts PostgreSQL
once. Then, from the database: every accepted event is embedded once or dead-lettered with a
reason (only the marked ones), nothing lost, nothing doubled. The last line printed is
``chaos: sent=N stored=N duplicates=0 lost=0 dead_letters=M``; the exit status says whether
the verdict holds.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from common.migrate import upgrade_head
from stack.ports import free_port, wait_until
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis
from tests import processes
from tests.chaos.check import Verdict, settled, verdict
from tests.chaos.client import Sent, send_all
from tests.chaos.subjects import send_versions
from tests.chaos.subjects import verdict as subject_verdict
from tests.stub_embedder import StubServer

# Timings scaled so that a run takes minutes, not hours; each must keep the order the
# settings enforce (visibility timeout and sweep delay longer than a batch may run).
ENV = {
    "ENVIRONMENT": "test",
    "EMBEDDER": "ollama",
    "EMBED_MODEL": "stub-embed",
    "EMBED_DIM": "384",
    "EMBED_TIMEOUT_S": "2",
    "EMBED_BATCH_SIZE": "32",
    "EMBED_BATCH_WAIT_MS": "50",
    # 20% of calls fail: five failures in a row would happen to a few of 10,000 events by
    # chance alone. The run proves that retries end; it is not about the attempt budget.
    "EMBED_MAX_ATTEMPTS": "15",
    "RETRY_BACKOFF_S": "0.2",
    "RETRY_BACKOFF_MAX_S": "2",
    "TASK_TIME_LIMIT_S": "8",
    "SWEEP_AFTER_S": "20",
    "SWEEP_INTERVAL_S": "0.5",
    "BROKER_VISIBILITY_TIMEOUT_S": "20",
    "AUTH_CACHE_TTL_S": "300",
    "WORKER_CONCURRENCY": "1",
    # The limiter stays on (its Redis goes down too), with room for the run's one key.
    "RATE_LIMIT_INGEST": "1000000/minute",
}


class Chaos:
    """The processes of one run, and the faults done to them."""

    def __init__(self, root: Path, seed: int, say: Callable[[str], None]) -> None:
        self.root, self.say = root, say
        self.started = time.monotonic()
        self.actions: list[str] = []
        self.pg = EmbeddedPostgres(root / "postgres", free_port())
        self.redis = EmbeddedRedis(root / "redis", free_port())
        self.stub = StubServer()
        self.stub.behaviour.failure_rate = 0.2
        self.stub.behaviour.hang_s = 3.0  # past EMBED_TIMEOUT_S
        self.stub.behaviour.rng.seed(seed)
        self.env: dict[str, str] = {}
        self.workers: list[processes.Proc] = []
        self.gateway: processes.Gateway | None = None
        self.db: Engine | None = None
        self._saved_environ: dict[str, str] | None = None

    def start(self) -> tuple[str, Engine]:
        self.pg.start()
        self.redis.start()
        self.stub.start()
        url = self.pg.url.replace("postgresql://", "postgresql+psycopg://")
        self.env = {
            **os.environ,
            **ENV,
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "OLLAMA_URL": self.stub.url,
            "TMPDIR": str(self.root),
        }
        # The migrations read the settings of this process: point them here for the run, and
        # put everything back in stop() (inside pytest, later tests use the session's stack).
        self._saved_environ = dict(os.environ)
        os.environ.update({k: v for k, v in self.env.items() if k in ENV or k.endswith("_URL")})
        _forget_settings()
        upgrade_head(url)
        self.db = create_engine(url, pool_pre_ping=True)
        tenant = f"chaos-{uuid.uuid4().hex[:6]}"
        from tests.conftest import make_key

        key = make_key(self.db, tenant, "ingest,search,admin")
        self.gateway = processes.gateway(self.env, self.root, "gateway").start().wait_ready()
        self.workers = [self._worker(name) for name in ("a", "b")]
        self._key, self._tenant = key, tenant
        return key, self.db

    def _worker(self, name: str) -> processes.Proc:
        proc = processes.worker(self.env, self.root, f"worker-{name}", concurrency=1).start()
        wait_until(lambda: " ready." in proc.output(), 60, f"worker {name}")
        return proc

    def note(self, action: str) -> None:
        stamp = f"t={time.monotonic() - self.started:6.1f}s"
        self.actions.append(f"{stamp} {action}")
        self.say(f"chaos: {stamp} {action}")

    def kill_worker(self, index: int) -> None:
        # "Mid-batch": wait (briefly) for a call at the embedder, then kill the whole worker.
        try:
            wait_until(lambda: self.stub.behaviour.in_flight > 0, 10, "a batch in flight")
        except TimeoutError:
            self.note("no batch at the embedder within 10 s; killing anyway")
        old, in_flight = self.workers[index], self.stub.behaviour.in_flight
        old.stop(signal.SIGKILL)
        self.note(f"SIGKILLed {old.name} (calls at the embedder just before: {in_flight})")
        self.workers[index] = self._worker(f"{'ab'[index]}{len(self.actions)}")
        self.note(f"restarted {self.workers[index].name}")

    def restart_redis(self) -> None:
        assert self.redis.process is not None
        self.redis.process.kill()  # SIGKILL: up to a second of the append-only file is lost
        self.redis.process.wait()
        self.note("SIGKILLed Redis")
        self.redis.start()
        self.note("Redis back (same port, same append-only file)")

    def restart_postgres(self) -> None:
        self.pg.stop()
        self.note("stopped PostgreSQL")
        self.pg.start()
        self.note("PostgreSQL back (same port, same data)")

    def stop(self) -> None:
        for proc in [*self.workers, *([self.gateway] if self.gateway else [])]:
            proc.stop()
        self.stub.shutdown()
        if self.db is not None:
            self.db.dispose()
        self.redis.stop()
        self.pg.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            _forget_settings()


def _forget_settings() -> None:
    from common.queue import producer
    from common.settings import get_settings

    get_settings.cache_clear()
    producer.cache_clear()


def say_now(line: str) -> None:
    print(line, flush=True)  # progress shows as it happens, even through a pipe


def run(
    n: int,
    root: Path,
    rate: float,
    seed: int = 5,
    say: Callable[[str], None] = say_now,
    subjects: int = 100,
    versions: int = 5,
) -> Verdict:
    """One chaos run of ``n`` events sent at ``rate`` per second, and meanwhile ``versions``
    versions of each of ``subjects`` subjects, shuffled; returns the verdict (its
    ``subjects`` the subjects' own)."""
    root.mkdir(parents=True, exist_ok=True)
    chaos = Chaos(root, seed, say)
    try:
        key, db = chaos.start()
        assert chaos.gateway is not None
        run_id = uuid.uuid4().hex[:6]
        sent_box: list[Sent] = []
        sender = threading.Thread(
            target=lambda: sent_box.append(send_all(chaos.gateway.url, key, run_id, n, rate)),  # type: ignore[union-attr]
            daemon=True,
        )
        chaos.note(f"sending {n} events at {rate:.0f}/s")
        sending_since = time.monotonic()
        sender.start()
        # The versions are spread over the same time as the events, through the same faults.
        subject_rate = max(subjects * versions / (n / rate), 1.0)
        versions_box: list[Sent] = []
        versions_sender = threading.Thread(
            target=lambda: versions_box.append(
                send_versions(
                    chaos.gateway.url,  # type: ignore[union-attr]
                    key,
                    run_id,
                    subjects,
                    versions,
                    subject_rate,
                    seed,
                )
            ),
            daemon=True,
        )
        versions_sender.start()
        schedule: list[tuple[float, Callable[[], None]]] = [
            (0.15, lambda: chaos.kill_worker(0)),
            (0.30, chaos.restart_redis),
            (0.45, lambda: chaos.kill_worker(1)),
            (0.60, chaos.restart_postgres),
            (0.75, lambda: chaos.kill_worker(0)),
        ]
        for fraction, action in schedule:
            at = sending_since + fraction * n / rate
            while time.monotonic() < at and sender.is_alive():
                time.sleep(0.05)  # the schedule's clock
            action()
        sender.join()
        versions_sender.join()
        sent = sent_box[0]
        chaos.note(f"all sent: {len(sent.accepted)} accepted, {sent.retries} client retries")
        versions_sent = versions_box[0]
        chaos.note(
            f"versions sent out of order: {len(versions_sent.accepted)} accepted,"
            f" {versions_sent.retries} client retries, {len(versions_sent.given_up)} given up"
        )
        wait_until(lambda: settled(db, chaos._tenant), max(120, n / 20), "every event settled")
        chaos.note("nothing left queued")
        result = verdict(db, chaos._tenant, run_id, n, sent)
        b = chaos.stub.behaviour
        say(f"chaos: client answers {dict(sorted(sent.statuses.items()))}")
        say(f"chaos: embedder calls={b.calls} injected failures {dict(sorted(b.failures.items()))}")
        say(
            f"chaos: longest wait accepted->embedded {result.longest_wait_s:.1f}s"
            f" (mean {result.mean_wait_s:.2f}s); most attempts for one event {result.max_attempts}"
        )
        result.subjects = subject_verdict(db, chaos._tenant, run_id, subjects, versions)
        for problem in result.problems + result.subjects.problems[:20]:
            say(f"chaos: PROBLEM {problem}")
        if result.unexpected_dead_letters:
            say(f"chaos: PROBLEM {result.unexpected_dead_letters} unmarked events dead-lettered")
        say(result.subjects.line())
        say(result.line())
        return result
    finally:
        chaos.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="events sent per second")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(".chaos-tmp"))
    parser.add_argument("--subjects", type=int, default=100, help="subjects with versions")
    parser.add_argument("--versions", type=int, default=5, help="versions of each subject")
    args = parser.parse_args(argv)
    root = args.dir.resolve() / uuid.uuid4().hex[:8]
    result = run(
        args.events, root, args.rate, args.seed, subjects=args.subjects, versions=args.versions
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
