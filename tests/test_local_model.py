"""The whole path with the real in-process model (EMBEDDER=local, all-MiniLM-L6-v2).

It runs its own gateway and worker on a database and a Redis db of its own, so that its
384-d vectors of another model never meet the stub's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine

from common.embedders.local import LocalEmbedder
from common.migrate import upgrade_head
from stack.postgres import EmbeddedPostgres
from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import make_key, new_key, wait_for

pytestmark = pytest.mark.slow

JOBS = [
    "Senior data engineer in Nairobi, building Spark pipelines for a telecom",
    "Pastry chef wanted for a bakery in Lyon, early mornings",
    "Registered nurse for night shifts at a children's hospital in Leeds",
    "Truck driver with a heavy goods licence, routes across Texas",
]


def test_local_model_gives_unit_384_vectors() -> None:
    embedder = LocalEmbedder("all-MiniLM-L6-v2", 384)
    [a, b, c] = embedder.embed(["data engineer", "data engineering job", "baking bread"])
    assert len(a) == 384 and abs(sum(x * x for x in a) - 1) < 1e-3
    dot = lambda u, v: sum(x * y for x, y in zip(u, v, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c)


@pytest.fixture(scope="module")
def local_stack(
    postgres: EmbeddedPostgres,
    redis_server: EmbeddedRedis,
    stack_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS eventsearch_local")
        conn.execute("CREATE DATABASE eventsearch_local")
    url = postgres.url.replace("/eventsearch", "/eventsearch_local")
    upgrade_head(url.replace("postgresql://", "postgresql+psycopg://"))
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    key = make_key(engine, "local")
    engine.dispose()
    env = {
        **stack_env,
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url.replace("/0", "/1"),
        "EMBEDDER": "local",
    }
    env.pop("EMBED_MODEL")
    logs = tmp_path_factory.mktemp("local")
    worker = processes.worker(env, logs, "worker-local", concurrency=1).start()
    gateway = processes.gateway(env, logs, "gateway-local").start().wait_ready(timeout=120)
    yield gateway.url, key
    gateway.stop()
    worker.stop()


def test_search_with_the_real_model_finds_by_meaning(local_stack: tuple[str, str]) -> None:
    url, key = local_stack
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key}) as client:
        ids = []
        for text in JOBS:
            response = client.post(
                "/api/v1/events",
                headers={"Idempotency-Key": new_key()},
                json={"source": "jobboard", "type": "job.posted", "text": text},
            )
            assert response.status_code == 202
            ids.append(response.json()["id"])

        def all_embedded() -> bool:
            return all(
                client.get(f"/api/v1/events/{i}").json()["status"] == "embedded" for i in ids
            )

        wait_for(all_embedded, timeout=180, what="embedded by the local model")
        found = client.get("/api/v1/search", params={"q": "data engineering jobs in Kenya"}).json()
        assert found["model"] == "all-MiniLM-L6-v2"
        assert found["results"][0]["id"] == ids[0]
        assert found["results"][0]["score"] > found["results"][1]["score"]
        status = client.get(f"/api/v1/events/{ids[0]}").json()
        assert status["model"] == "all-MiniLM-L6-v2"


def test_a_long_posting_is_found_by_its_last_duty_with_the_real_model(
    local_stack: tuple[str, str],
) -> None:
    # The case: a long posting whose one distinctive duty is its last sentence, and
    # an unrelated short one. The model reads 256 word pieces: without chunks the long
    # posting's vector knew nothing of that duty and scored below the unrelated one.
    url, key = local_stack
    routine = (
        "You will join the platform team that runs the nightly ingestion of partner feeds, "
        "review pull requests, keep the dashboards green and write runbooks for on-call. "
    )
    paragraphs = [f"Week {i}: {routine}" for i in range(30)]
    last = "Finally, you will care for the beehives on the office roof and harvest the honey."
    posting = "\n\n".join([*paragraphs, last])
    assert len(posting) > 4500
    with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": key}) as client:
        ids = []
        for text in (posting, "Pastry chef wanted for a bakery in Lyon, early mornings"):
            response = client.post(
                "/api/v1/events",
                headers={"Idempotency-Key": new_key()},
                json={"source": "long", "type": "job.posted", "text": text},
            )
            assert response.status_code == 202
            ids.append(response.json()["id"])
        wait_for(
            lambda: all(
                client.get(f"/api/v1/events/{i}").json()["status"] == "embedded" for i in ids
            ),
            timeout=180,
            what="embedded by the local model",
        )
        found = client.post(
            "/api/v1/search",
            json={
                "query": "looking after bees and collecting honey on the roof",
                "top_k": 2,
                "mode": "dense",
                "filters": {"source": ["long"]},
            },
        ).json()["results"]
    assert found[0]["id"] == ids[0]
    passage = found[0]["passage"]
    assert (
        "beehives" in passage["text"]
        and posting[passage["start"] : passage["end"]] == (passage["text"])
    )
