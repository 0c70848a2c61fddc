"""Idempotency keys, Stripe/IETF semantics, against a real gateway on its own Redis.

The gateway here has no worker, so the embed queue in its Redis counts what was enqueued."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.apikeys import hash_key
from stack.redis import EmbeddedRedis
from tests import processes
from tests.conftest import event_body, event_count, extra_gateway, make_key, new_key, wait_for


@pytest.fixture(scope="module")
def idem_gateway(
    stack_env: dict[str, str], own_redis: EmbeddedRedis, tmp_root: Path
) -> Iterator[processes.Gateway]:
    with extra_gateway(
        stack_env, tmp_root, "gateway-idem", REDIS_URL=own_redis.url, IDEMPOTENCY_LOCK_TTL_S="2"
    ) as proc:
        yield proc


@pytest.fixture
def tenant_key(db: Engine, request: pytest.FixtureRequest) -> str:
    """A fresh tenant per test, so counts in the database are this test's own."""
    return make_key(db, f"idem-{request.node.name[:40]}-{new_key()[-8:]}", "ingest,search")


@pytest.fixture
def api(idem_gateway: processes.Gateway, tenant_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=idem_gateway.url, timeout=30, headers={"X-API-Key": tenant_key}
    ) as client:
        yield client


def queue_depth(server: EmbeddedRedis) -> int:
    return int(redis.Redis.from_url(server.url).llen("embed"))


def tenant_of(db: Engine, api_key: str) -> str:
    with db.connect() as conn:
        return str(
            conn.execute(
                text("SELECT tenant FROM api_keys WHERE key_hash = :h"), {"h": hash_key(api_key)}
            ).scalar_one()
        )


def tenant_events(db: Engine, api_key: str) -> int:
    return event_count(db, "tenant = :t", t=tenant_of(db, api_key))


def post(
    api: httpx.Client, body: object, key: str | None, header: str = "Idempotency-Key"
) -> httpx.Response:
    headers = {header: key} if key is not None else {}
    return api.post("/api/v1/events", json=body, headers=headers)


def test_same_key_same_payload_replays_first_response(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    key, body = new_key(), event_body()
    before = queue_depth(own_redis)
    first = post(api, body, key)
    again = post(api, dict(reversed(list(body.items()))), key)  # same JSON, other key order
    assert first.status_code == again.status_code == 202
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert queue_depth(own_redis) == before + 1
    assert tenant_events(db, tenant_key) == 1


def test_x_idempotency_key_header_is_accepted(api: httpx.Client) -> None:
    key, body = new_key(), event_body()
    first = post(api, body, key, header="X-Idempotency-Key")
    again = post(api, body, key, header="Idempotency-Key")
    assert first.status_code == 202 and again.content == first.content


def test_same_key_different_payload_is_422(api: httpx.Client, db: Engine, tenant_key: str) -> None:
    key = new_key()
    assert post(api, event_body("first body"), key).status_code == 202
    response = post(api, event_body("another body"), key)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert tenant_events(db, tenant_key) == 1


def test_missing_key_is_400(api: httpx.Client) -> None:
    response = post(api, event_body(), None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_missing"


@pytest.mark.parametrize("key", ["k" * 256, "tab\there", "two\ttabs\there"])
def test_overlong_or_control_character_key_is_400(api: httpx.Client, key: str) -> None:
    response = api.post("/api/v1/events", json=event_body(), headers=[("Idempotency-Key", key)])  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"


def test_key_of_255_characters_is_fine(api: httpx.Client) -> None:
    assert post(api, event_body(), new_key().ljust(255, "k")).status_code == 202


def test_rejected_request_stores_no_key(api: httpx.Client, db: Engine, tenant_key: str) -> None:
    key = new_key()
    invalid = post(api, {"source": "s", "type": "t"}, key)
    assert invalid.status_code == 422
    retried = post(api, event_body(), key)
    assert retried.status_code == 202
    assert "idempotent-replayed" not in retried.headers
    assert tenant_events(db, tenant_key) == 1


def test_refused_publish_withdraws_the_event_and_forgets_the_answer_sent_along(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    """The embed message and the stored answer go in one pipeline: when the push is
    refused (here the queue's key holds a string, so LPUSH fails while the SET after it
    succeeds), the event is withdrawn, the answer 503, and the key released, so the
    retry is processed afresh rather than replayed."""
    server = redis.Redis.from_url(own_redis.url)
    key, body = new_key(), event_body()
    if server.exists("embed"):
        server.rename("embed", "embed-aside")
    server.set("embed", b"not a list")
    try:
        refused = post(api, body, key)
    finally:
        server.delete("embed")
        if server.exists("embed-aside"):
            server.rename("embed-aside", "embed")
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "queue_unavailable"
    assert tenant_events(db, tenant_key) == 0
    assert not server.keys(f"idem:{tenant_of(db, tenant_key)}:*")
    before = queue_depth(own_redis)
    retried = post(api, body, key)
    assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
    assert tenant_events(db, tenant_key) == 1
    assert queue_depth(own_redis) == before + 1


def record_in_flight(db: Engine, tenant: str, key: str, body: dict[str, object]) -> str:
    """What a first request leaves between its INSERT and its hand-off: the event recorded
    (queued, with the body's fingerprint), no answer stored yet. Also what a request that
    died there leaves behind. Returns the event's id."""
    from gateway.idempotency import fingerprint

    with db.begin() as conn:
        return str(
            conn.execute(
                text(
                    "INSERT INTO events (id, tenant, idempotency_key, fingerprint, source, type,"
                    " text) VALUES (gen_random_uuid(), :t, :k, :fp, :s, :ty, :x) RETURNING id"
                ),
                {
                    "t": tenant,
                    "k": key,
                    "fp": fingerprint(body),
                    "s": body["source"],
                    "ty": body["type"],
                    "x": body["text"],
                },
            ).scalar_one()
        )


def test_same_key_while_first_in_flight_is_409(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    """The first request has recorded its event and not yet handed it off: a repeat gets
    409 with Retry-After (its answer is not stored yet), another body 422; nothing is
    enqueued by either."""
    key, body = new_key(), event_body()
    record_in_flight(db, tenant_of(db, tenant_key), key, body)
    before = queue_depth(own_redis)
    second = post(api, body, key)
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "idempotency_key_in_progress"
    assert int(second.headers["retry-after"]) >= 1
    other = post(api, event_body("another body"), key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert queue_depth(own_redis) == before
    assert tenant_events(db, tenant_key) == 1


def test_a_request_that_died_after_recording_frees_its_key(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    """A request that died between its INSERT and its hand-off stored no answer: its key
    answers 409 until the event is IDEMPOTENCY_LOCK_TTL_S old (2 s here), then the event's
    answer, rebuilt from the row (the sweeper hands the event off; no second event)."""
    key, body = new_key(), event_body()
    event_id = record_in_flight(db, tenant_of(db, tenant_key), key, body)
    assert post(api, body, key).status_code == 409
    wait_for(lambda: post(api, body, key).status_code == 202, timeout=30, what="key freed")
    again = post(api, body, key)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == event_id
    assert again.headers["location"] == f"/api/v1/events/{event_id}"
    assert tenant_events(db, tenant_key) == 1


def test_a_repeat_waiting_on_the_first_insert_gets_409_or_its_answer(
    api: httpx.Client, db: Engine, tenant_key: str
) -> None:
    """Two requests with one key whose INSERTs both wait on the unique index (an
    uncommitted row holds it, so both are in flight for as long as the test wants, with no
    sleep): when it is released, one records the event and answers 202; the other sees that
    event and answers 409, or replays its 202 byte for byte if it was already stored."""
    key, body = new_key(), event_body()
    tenant = tenant_of(db, tenant_key)
    blocker = db.connect()
    tx = blocker.begin()
    blocker.execute(
        text(
            "INSERT INTO events (id, tenant, idempotency_key, source, type, text) "
            "VALUES (gen_random_uuid(), :t, :k, 's', 't', 'blocker')"
        ),
        {"t": tenant, "k": key},
    )

    def both_waiting() -> bool:
        with db.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO events%'"
                )
            ).scalar_one()
            return int(waiting) >= 2

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=str(api.base_url), headers=api.headers, timeout=60
        ) as client:
            sent = [
                asyncio.create_task(
                    client.post("/api/v1/events", json=body, headers={"Idempotency-Key": key})
                )
                for _ in range(2)
            ]
            await asyncio.to_thread(wait_for, both_waiting, 30, "both requests in flight")
            tx.rollback()
            return list(await asyncio.gather(*sent))

    try:
        responses = asyncio.run(scenario())
    finally:
        blocker.close()
    firsts = [
        r for r in responses if r.status_code == 202 and "idempotent-replayed" not in r.headers
    ]
    assert len(firsts) == 1, [r.text for r in responses]
    [other] = [r for r in responses if r is not firsts[0]]
    if other.status_code == 409:
        assert other.json()["error"]["code"] == "idempotency_key_in_progress"
    else:
        assert other.status_code == 202 and other.headers["idempotent-replayed"] == "true"
        assert other.content == firsts[0].content
    assert post(api, body, key).content == firsts[0].content
    assert tenant_events(db, tenant_key) == 1


def test_redis_restart_with_lost_records_still_one_event(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    key, body = new_key(), event_body()
    first = post(api, body, key)
    assert first.status_code == 202
    own_redis.stop()
    shutil.rmtree(own_redis.datadir)  # every idempotency record is gone
    own_redis.start()
    wait_for(lambda: api.get("/health").status_code == 200, what="gateway reconnected")
    # With its stored answer gone, a young event's repeat is 409 until IDEMPOTENCY_LOCK_TTL_S
    # (2 s here), as if its request were still in flight; then the row answers.
    wait_for(lambda: post(api, body, key).status_code == 202, timeout=30, what="replay")
    again = post(api, body, key)
    assert again.status_code == 202
    assert again.content == first.content  # rebuilt from the row, byte for byte
    assert again.headers["idempotent-replayed"] == "true"
    assert post(api, event_body("other"), key).status_code == 422
    assert tenant_events(db, tenant_key) == 1


def test_1000_concurrent_requests_over_100_keys_make_100_events(
    api: httpx.Client, own_redis: EmbeddedRedis, db: Engine, tenant_key: str
) -> None:
    keys = [new_key() for _ in range(100)]
    bodies = {k: event_body(f"concurrent {k}") for k in keys}
    before = queue_depth(own_redis)

    async def send_all() -> list[tuple[str, httpx.Response]]:
        # uvicorn closes idle connections after 5 s; expiring ours sooner means a loaded
        # machine never hands a request to a connection the server is closing (ReadError).
        limits = httpx.Limits(max_connections=100, keepalive_expiry=1.0)
        async with httpx.AsyncClient(
            base_url=str(api.base_url), headers=api.headers, timeout=120, limits=limits
        ) as client:

            async def one(k: str) -> tuple[str, httpx.Response]:
                return k, await client.post(
                    "/api/v1/events", json=bodies[k], headers={"Idempotency-Key": k}
                )

            return await asyncio.gather(*(one(keys[i % 100]) for i in range(1000)))

    responses = asyncio.run(send_all())
    assert tenant_events(db, tenant_key) == 100
    assert queue_depth(own_redis) - before == 100
    firsts: dict[str, bytes] = {}
    for k, response in responses:
        assert response.status_code in (202, 409), response.text
        if response.status_code == 202 and "idempotent-replayed" not in response.headers:
            assert k not in firsts  # one first answer per key
            firsts[k] = response.content
    assert len(firsts) == 100
    for k, response in responses:
        if response.status_code == 202:
            assert response.content == firsts[k]


def test_an_answer_that_outlived_its_event_is_not_replayed(
    api: httpx.Client, db: Engine, tenant_key: str
) -> None:
    """The answer is stored in the hand-off's round trip; should its reply be lost, the row
    withdrawn and Redis gone before the key is released, the stored 202 names an event that
    is not there. A retry then is taken afresh, not replayed (simulated: the row deleted)."""
    key = new_key()
    first = post(api, event_body("outlived"), key)
    assert first.status_code == 202
    with db.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": first.json()["id"]})
    again = post(api, event_body("outlived"), key)
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert api.get(f"/api/v1/events/{again.json()['id']}").status_code == 200
    replay = post(api, event_body("outlived"), key)
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == again.content
    assert tenant_events(db, tenant_key) == 1
