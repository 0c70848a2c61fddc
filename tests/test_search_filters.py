"""Filters are applied inside the nearest-neighbour search, in every mode, and the tenant
is always one of them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import DIM, make_key
from tests.processes import Gateway
from tests.searchdata import MODEL, store, stored_event
from tests.stub_embedder import embed_text

MODES = ["dense", "keyword", "hybrid"]
ROWS, RARE = 3000, 30  # the filter matches 1% of the tenant's rows


@pytest.fixture(scope="module")
def crowded(db: Engine, gateway: Gateway) -> tuple[httpx.Client, str]:
    """A tenant of 3,000 events near the query, 30 of them (1%) far from it and rare."""
    tenant = f"crowded-{uuid.uuid4().hex[:8]}"
    rows = [
        stored_event(tenant, f"alpha beta gamma common {i}", source="bulk", metadata={"k": "bulk"})
        for i in range(ROWS - RARE)
    ] + [
        stored_event(tenant, f"zeta eta theta rare {i}", source="rare", metadata={"k": "rare"})
        for i in range(RARE)
    ]
    store(db, rows)
    with db.begin() as conn:
        conn.execute(text("ANALYZE events"))
    key = make_key(db, tenant)
    client = httpx.Client(base_url=gateway.url, timeout=30, headers={"X-API-Key": key})
    return client, tenant


QUERY = "alpha beta gamma zeta"


@pytest.mark.parametrize(
    "filters", [{"source": ["rare"]}, {"metadata": {"k": "rare"}}], ids=["source", "metadata"]
)
def test_filter_matching_one_percent_still_fills_top_k(
    crowded: tuple[httpx.Client, str], filters: dict[str, object]
) -> None:
    client, _ = crowded
    response = client.post(
        "/api/v1/search", json={"query": QUERY, "top_k": 10, "mode": "dense", "filters": filters}
    )
    assert response.status_code == 200, response.text
    hits = response.json()["results"]
    assert len(hits) == 10
    assert all(h["source"] == "rare" for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


def _hnsw_top(db: Engine, tenant: str, iterative: str) -> tuple[int, str]:
    """Rows found by the HNSW index alone for the 1% metadata filter, and the plan used."""
    sql = (
        "WITH nearest AS MATERIALIZED (SELECT c.event_id, c.embedding <=> CAST(:q AS vector)"
        " AS d FROM chunks c JOIN events e ON e.id = c.event_id WHERE c.tenant = :t"
        " AND c.model = :m AND e.status = 'embedded'"
        ' AND e.metadata @> \'{"k": "rare"}\' ORDER BY d LIMIT 10) '
        "SELECT event_id FROM nearest ORDER BY d + 0"
    )
    params = {"q": str(embed_text(QUERY, DIM)), "t": tenant, "m": MODEL}
    with db.begin() as conn:
        # With accurate statistics the planner serves a 1% filter from a btree plus an exact
        # sort (also complete); these make it take the HNSW path, whose ordered output needs
        # no inner sort, as it does for larger tenants or less selective filters.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_bitmapscan = off"))
        conn.execute(text("SET LOCAL enable_sort = off"))
        conn.execute(text("SET LOCAL hnsw.ef_search = 64"))
        conn.execute(text(f"SET LOCAL hnsw.iterative_scan = {iterative}"))
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), params))
        found = len(conn.execute(text(sql), params).all())
    return found, plan


def test_without_iterative_scans_the_same_filter_would_come_up_short(
    crowded: tuple[httpx.Client, str], db: Engine
) -> None:
    # Proves the data set is big enough for the test above to mean something: the plain
    # ef_search candidate list holds fewer than top_k rare events.
    _, tenant = crowded
    found, plan = _hnsw_top(db, tenant, "off")
    assert "ix_chunks_embedding_hnsw" in plan, plan
    assert found < 10
    found, _ = _hnsw_top(db, tenant, "relaxed_order")
    assert found == 10


@pytest.fixture(scope="module")
def varied(db: Engine, gateway: Gateway) -> tuple[httpx.Client, dict[str, str]]:
    """A tenant with one event per filter value, all sharing the query's words."""
    tenant = f"varied-{uuid.uuid4().hex[:8]}"
    day = lambda d: datetime(2026, 11, d, 9, tzinfo=UTC)  # noqa: E731
    rows = {
        "job": stored_event(
            tenant, "kiln pottery job", "jobboard", "job.posted", {"co": "A"}, day(1)
        ),
        "ticket": stored_event(
            tenant, "kiln pottery ticket", "tickets", "ticket.opened", {"co": "B"}, day(5)
        ),
        "log": stored_event(
            tenant, "kiln pottery log", "logs", "log.line", {"co": "A", "env": "prod"}, day(9)
        ),
        "undated": stored_event(tenant, "kiln pottery undated", "logs", "log.line", {"co": "C"}),
    }
    ids = dict(zip(rows, store(db, list(rows.values())), strict=True))
    client = httpx.Client(
        base_url=gateway.url, timeout=30, headers={"X-API-Key": make_key(db, tenant)}
    )
    return client, ids


FILTER_CASES = [
    ({"source": ["jobboard", "tickets"]}, {"job", "ticket"}),
    ({"type": ["log.line"]}, {"log", "undated"}),
    ({"occurred_after": "2026-11-03T00:00:00Z"}, {"ticket", "log"}),
    ({"occurred_before": "2026-11-05T09:00:00Z"}, {"job"}),
    ({"metadata": {"co": "A"}}, {"job", "log"}),
    ({"metadata": {"co": "A", "env": "prod"}}, {"log"}),
    ({"source": ["logs"], "metadata": {"co": "C"}}, {"undated"}),
    ({"source": ["nowhere"]}, set()),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
def test_each_filter_restricts_every_mode(
    varied: tuple[httpx.Client, dict[str, str]],
    mode: str,
    filters: dict[str, object],
    expected: set[str],
) -> None:
    client, ids = varied
    response = client.post(
        "/api/v1/search",
        json={"query": "kiln pottery", "top_k": 10, "mode": mode, "filters": filters},
    )
    assert response.status_code == 200, response.text
    names = {name for name, i in ids.items() for h in response.json()["results"] if h["id"] == i}
    assert names == expected
    assert len(response.json()["results"]) == len(expected)


def test_get_search_takes_filters_as_query_parameters(
    varied: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, ids = varied
    params: list[tuple[str, str]] = [
        ("q", "kiln pottery"),
        ("source", "jobboard"),
        ("source", "logs"),
        ("metadata", '{"co": "A"}'),
        ("occurred_after", "2026-11-02T00:00:00Z"),
    ]
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == 200, response.text
    assert [h["id"] for h in response.json()["results"]] == [ids["log"]]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "kiln", "metadata": "[1, 2]"},
        {"q": "kiln", "metadata": "not json"},
        {"q": "kiln", "occurred_after": "2026-11-02T00:00:00"},  # no time zone
        {"q": "kiln", "mode": "psychic"},
        {"q": "   "},
    ],
)
def test_bad_search_parameters_are_422_naming_the_field(
    varied: tuple[httpx.Client, dict[str, str]], params: dict[str, str]
) -> None:
    client, _ = varied
    response = client.get("/api/v1/search", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert any(name in error["message"] for name in params if name != "q" or len(params) == 1)


def test_unknown_filter_in_body_is_422(varied: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = varied
    response = client.post("/api/v1/search", json={"query": "kiln", "filters": {"colour": ["red"]}})
    assert response.status_code == 422
    assert "colour" in response.json()["error"]["message"]


@pytest.mark.parametrize("mode", MODES)
def test_search_never_crosses_tenants(
    varied: tuple[httpx.Client, dict[str, str]], db: Engine, mode: str
) -> None:
    client, ids = varied
    other = f"other-{uuid.uuid4().hex[:8]}"
    [stranger] = store(db, [stored_event(other, "kiln pottery job")])
    results = client.post(
        "/api/v1/search", json={"query": "kiln pottery job", "top_k": 100, "mode": mode}
    ).json()["results"]
    assert stranger not in {h["id"] for h in results}
    assert {h["id"] for h in results} <= set(ids.values())
