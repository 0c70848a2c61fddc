"""Session fixtures: real PostgreSQL+pgvector, real Redis, the stub embedder, and real gateway
and worker processes. Everything is started here, on free ports, in the test's temp dir."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from common.migrate import upgrade_head
from stack.ports import free_port, wait_until
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis
from tests import processes
from tests.stub_embedder import StubServer

DIM = 384


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def postgres(tmp_root: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_root / "postgres", free_port())
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_root: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_root / "redis", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis of the module's own, for tests that stop it or count its queue."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("own-redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def stack_env(
    postgres: EmbeddedPostgres, redis_server: EmbeddedRedis, stub: StubServer, tmp_root: Path
) -> dict[str, str]:
    """The environment of every process under test (and of this one, for direct DB checks)."""
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis_server.url,
        "EMBEDDER": "ollama",
        "OLLAMA_URL": stub.url,
        "EMBED_MODEL": "stub-embed",
        "EMBED_DIM": str(DIM),
        "EMBED_BATCH_WAIT_MS": "50",
        "EMBED_TIMEOUT_S": "3",
        "RETRY_BACKOFF_S": "0.2",
        "RETRY_BACKOFF_MAX_S": "1",
        "AUTH_CACHE_TTL_S": "1",
        # Long enough that a test reads the same cached stats twice (tests/test_stats.py).
        "STATS_CACHE_TTL_S": "60",
        # The session's keys serve hundreds of tests within a minute; the rate-limit tests
        # run gateways of their own with tiny limits.
        "RATE_LIMIT_SEARCH": "100000/minute",
        "RATE_LIMIT_INGEST": "100000/minute",
        "RATE_LIMIT_READ": "100000/minute",
        "RATE_LIMIT_ADMIN": "100000/minute",
        # Every test's wrong keys come from 127.0.0.1: the failure-limit tests run gateways
        # of their own with small limits (tests/test_auth_limits.py).
        "AUTH_FAILURE_LIMIT": "100000/minute",
        # Reliability timings scaled down so that retries and sweeps happen within a test.
        "TASK_TIME_LIMIT_S": "20",
        "SWEEP_AFTER_S": "30",
        "SWEEP_INTERVAL_S": "0.3",
        "BROKER_VISIBILITY_TIMEOUT_S": "60",
        "TMPDIR": str(tmp_root),
    }
    os.environ.update(env)
    from common.settings import get_settings

    get_settings.cache_clear()
    upgrade_head(postgres.url.replace("postgresql://", "postgresql+psycopg://"))
    return {**os.environ, **env}


@pytest.fixture(scope="session")
def db(stack_env: dict[str, str]) -> Iterator[Engine]:
    engine = create_engine(
        stack_env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://")
    )
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def gateway(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    proc = processes.gateway(stack_env, tmp_root).start().wait_ready()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Worker]:
    proc = processes.worker(stack_env, tmp_root).start()
    yield proc
    proc.stop()


@contextmanager
def extra_gateway(
    stack_env: dict[str, str], tmp_root: Path, name: str, **overrides: str
) -> Iterator[processes.Gateway]:
    """A gateway process of its own with some settings changed (tiny limits, CORS on, ...)."""
    proc = processes.gateway({**stack_env, **overrides}, tmp_root, name).start().wait_ready()
    try:
        yield proc
    finally:
        proc.stop()


def make_key(db: Engine, tenant: str, scopes: str = "ingest,search,admin") -> str:
    from sqlalchemy.orm import Session

    from common.apikeys import create_key

    with Session(db) as session, session.begin():
        return create_key(session, tenant, scopes.split(","), "test").key


@pytest.fixture(scope="session")
def api_key(db: Engine) -> str:
    """A key with every scope for tenant ``t1``, the tenant of ``client``."""
    return make_key(db, "t1")


@pytest.fixture
def client(gateway: processes.Gateway, api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=gateway.url, timeout=30, headers=headers) as c:
        yield c


@pytest.fixture(autouse=True)
def _reset_stub(stub: StubServer) -> None:
    stub.behaviour.reset()


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def event_body(text_: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "source": "jobboard",
        "type": "job.posted",
        "text": text_ or f"event {uuid.uuid4()}",
        **extra,
    }


@contextmanager
def private_stack(
    stack_env: dict[str, str], root: Path
) -> Iterator[tuple[dict[str, str], Engine, Path]]:
    """A PostgreSQL and Redis of a test module's own, migrated: for modules whose workers get
    killed or configured otherwise, so that the session's worker never takes their events.
    Yields the environment for their processes (the embedder's timeout far above the stub's
    delays: a held call must not time out), an engine, and the directory for logs."""
    pg = EmbeddedPostgres(root / "postgres", free_port())
    redis = EmbeddedRedis(root / "redis", free_port())
    pg.start()
    redis.start()
    url = pg.url.replace("postgresql://", "postgresql+psycopg://")
    upgrade_head(url)
    engine = create_engine(url)
    env = {**stack_env, "DATABASE_URL": pg.url, "REDIS_URL": redis.url, "EMBED_TIMEOUT_S": "30"}
    try:
        yield env, engine, root
    finally:
        engine.dispose()
        redis.stop()
        pg.stop()


@pytest.fixture(scope="module")
def own_stack(
    stack_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[dict[str, str], Engine, Path]]:
    """A :func:`private_stack` for the whole module that asks for it."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    with private_stack(stack_env, tmp_path_factory.mktemp(name)) as stack:
        yield stack


def wait_for(check: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    """Poll until ``check()`` is truthy (never a fixed sleep)."""
    wait_until(lambda: bool(check()), timeout, what)


def status_of(client: httpx.Client, event_id: str) -> dict[str, object]:
    response = client.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    return response.json()


def event_count(db: Engine, where: str, **params: object) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM events WHERE {where}"), params).scalar_one()
        )
