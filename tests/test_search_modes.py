"""Search modes: dense (vectors), keyword (full-text), hybrid (fused), and which rankings
each hit came from."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from common.settings import Settings
from tests.conftest import make_key
from tests.processes import Gateway
from tests.searchdata import store, stored_event
from tests.stub_embedder import StubServer

# The test stack leaves RRF_WEIGHT_* unset: hybrid fuses with the defaults.
WEIGHTS = {
    "dense": Settings.model_fields["rrf_weight_dense"].default,
    "keyword": Settings.model_fields["rrf_weight_keyword"].default,
}


@pytest.fixture(scope="module")
def library(db: Engine, gateway: Gateway) -> tuple[httpx.Client, dict[str, str], Engine]:
    tenant = f"modes-{uuid.uuid4().hex[:8]}"
    rows = {
        "both": stored_event(tenant, "glacier hiking boots for winter trails"),
        "one_word": stored_event(tenant, "boots repaired while you wait"),
        "stems": stored_event(tenant, "she hiked glaciers in winter"),
        "unrelated": stored_event(tenant, "tax return deadline reminder"),
        # Recorded but not embedded yet: keyword search sees it, dense cannot.
        "queued": stored_event(tenant, "glacier hiking map, not embedded yet", status="queued"),
        "deleted": stored_event(tenant, "glacier hiking boots, deleted", status="deleted"),
    }
    ids = dict(zip(rows, store(db, list(rows.values())), strict=True))
    client = httpx.Client(
        base_url=gateway.url, timeout=30, headers={"X-API-Key": make_key(db, tenant)}
    )
    return client, ids, db


def search(client: httpx.Client, query: str, **body: object) -> dict[str, Any]:
    response = client.post("/api/v1/search", json={"query": query, **body})
    assert response.status_code == 200, response.text
    return response.json()


def names(ids: dict[str, str], response: dict[str, Any]) -> list[str]:
    by_id = {i: name for name, i in ids.items()}
    return [by_id[h["id"]] for h in response["results"]]


def test_keyword_mode_matches_stems_and_ranks_by_bm25(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, ids, _ = library
    found = search(client, "glacier hiking boots", mode="keyword")
    ranked = names(ids, found)
    assert found["mode"] == "keyword"
    assert ranked[0] == "both"  # the only event holding every word, rare "boots" among them
    # "hiked glaciers" meets "hiking glacier" through the english stemmer.
    assert {"stems", "one_word", "queued"} <= set(ranked)
    assert "unrelated" not in ranked and "deleted" not in ranked
    assert all(set(h["rankings"]) == {"keyword"} for h in found["results"])
    assert [h["rankings"]["keyword"] for h in found["results"]] == list(range(1, len(ranked) + 1))


def test_keyword_mode_understands_web_search_syntax(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, ids, _ = library
    assert names(ids, search(client, '"hiking boots"', mode="keyword"))[0] == "both"
    assert names(ids, search(client, "zzzz qqqq", mode="keyword")) == []
    assert names(ids, search(client, "the and of", mode="keyword")) == []  # stop words only


def test_dense_mode_sees_only_embedded_events(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, ids, _ = library
    found = search(client, "glacier hiking boots", mode="dense", top_k=100)
    ranked = names(ids, found)
    assert ranked[0] == "both"
    assert "queued" not in ranked and "deleted" not in ranked
    assert set(ranked) == {"both", "one_word", "stems", "unrelated"}
    assert all(set(h["rankings"]) == {"dense"} for h in found["results"])


def test_hybrid_hit_says_which_rankings_it_came_from(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, ids, _ = library
    query = "glacier hiking boots"
    dense = {h["id"]: i for i, h in enumerate(search(client, query, mode="dense")["results"], 1)}
    keyword = {
        h["id"]: i for i, h in enumerate(search(client, query, mode="keyword")["results"], 1)
    }
    found = search(client, query, mode="hybrid")
    assert found["mode"] == "hybrid"
    results = found["results"]
    assert results[0]["id"] == ids["both"]
    for hit in results:
        expected = {}
        if hit["id"] in dense:
            expected["dense"] = dense[hit["id"]]
        if hit["id"] in keyword:
            expected["keyword"] = keyword[hit["id"]]
        assert hit["rankings"] == expected
        score = sum(WEIGHTS[ranking] / (60 + r) for ranking, r in expected.items())
        assert hit["score"] == pytest.approx(score)
    [queued] = [h for h in results if h["id"] == ids["queued"]]
    assert set(queued["rankings"]) == {"keyword"}  # not embedded: no dense rank
    scores = [h["score"] for h in results]
    assert scores == sorted(scores, reverse=True)


def test_linear_fusion_sums_each_rankings_min_max_normalised_score(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, ids, _ = library
    query = "glacier hiking boots"

    def normalised(mode: str) -> dict[str, float]:
        hits = search(client, query, mode=mode, top_k=50)["results"]  # the whole ranking
        low, high = min(h["score"] for h in hits), max(h["score"] for h in hits)
        return {h["id"]: (h["score"] - low) / (high - low) for h in hits}

    dense, keyword = normalised("dense"), normalised("keyword")
    found = search(client, query, mode="hybrid", fusion="linear", top_k=50)["results"]
    assert {h["id"] for h in found} == set(dense) | set(keyword)
    for hit in found:
        expected = WEIGHTS["dense"] * dense.get(hit["id"], 0.0)
        expected += WEIGHTS["keyword"] * keyword.get(hit["id"], 0.0)
        assert hit["score"] == pytest.approx(expected)
        held = {
            name for name, ranked in (("dense", dense), ("keyword", keyword)) if hit["id"] in ranked
        }
        assert set(hit["rankings"]) == held
    assert found[0]["id"] == ids["both"]
    scores = [h["score"] for h in found]
    assert scores == sorted(scores, reverse=True)
    by_get = client.get("/api/v1/search", params={"q": query, "fusion": "linear", "top_k": 50})
    assert [h["id"] for h in by_get.json()["results"]] == [h["id"] for h in found]
    # RRF stays the default, and an unknown fusion is the client's mistake.
    rrf = search(client, query, mode="hybrid", top_k=50)["results"]
    assert rrf == search(client, query, mode="hybrid", fusion="rrf", top_k=50)["results"]
    for bad in (
        client.post("/api/v1/search", json={"query": query, "fusion": "max"}),
        client.get("/api/v1/search", params={"q": query, "fusion": "max"}),
    ):
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_search_without_a_mode_uses_the_default_hybrid(
    library: tuple[httpx.Client, dict[str, str], Engine],
) -> None:
    client, _, _ = library
    assert search(client, "glacier")["mode"] == "hybrid"
    response = client.get("/api/v1/search", params={"q": "glacier"})
    assert response.json()["mode"] == "hybrid"


def test_keyword_mode_weighs_rare_words_above_common_ones(db: Engine, gateway: Gateway) -> None:
    tenant = f"bm25-{uuid.uuid4().hex[:8]}"
    rows = [stored_event(tenant, f"quarterly report number {i} filed") for i in range(6)]
    rows.append(stored_event(tenant, "zeppelin spotted overhead"))
    ids = store(db, rows)
    with httpx.Client(
        base_url=gateway.url, timeout=30, headers={"X-API-Key": make_key(db, tenant)}
    ) as client:
        found = search(client, "report zeppelin", mode="keyword")
    # Both words occur once per matching event; the one in a single event weighs more.
    assert found["results"][0]["id"] == ids[-1]
    assert len(found["results"]) == 7


def test_repeated_query_is_embedded_once(client: httpx.Client, stub: StubServer) -> None:
    """The gateway keeps query vectors in an LRU cache (QUERY_CACHE_SIZE)."""
    query = f"cached query {uuid.uuid4().hex}"
    for _ in range(3):
        response = client.get("/api/v1/search", params={"q": query, "mode": "dense"})
        assert response.status_code == 200
    assert stub.behaviour.seen[query] == 1


def test_query_the_embedder_refuses_is_422_not_503(client: httpx.Client) -> None:
    """A permanent embedder refusal (here: over the context length) cannot be retried."""
    from tests.stub_embedder import POISON_MARK

    response = client.post("/api/v1/search", json={"query": f"x {POISON_MARK}", "mode": "dense"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "query_not_embeddable"
