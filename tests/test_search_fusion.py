"""Reciprocal rank fusion, on its own (no database: a pure function)."""

from __future__ import annotations

import uuid

import pytest

from gateway.search.candidates import Candidate
from gateway.search.fusion import reciprocal_rank_fusion


def candidate(name: str) -> Candidate:
    return Candidate(
        id=uuid.uuid5(uuid.NAMESPACE_OID, name),
        text=name,
        source="s",
        type="t",
        metadata={},
        occurred_at=None,
        score=0.0,
    )


def test_rrf_sums_weight_over_k_plus_rank_and_keeps_each_rank() -> None:
    a, b, c, d = (candidate(n) for n in "abcd")
    fused = reciprocal_rank_fusion(
        {"dense": [a, b, c], "keyword": [c, d]}, {"dense": 1.0, "keyword": 1.0}, k=60
    )
    assert [hit.text for hit in fused][:2] == ["c", "a"]  # b and d tie at 1/62
    by_name = {hit.text: hit for hit in fused}
    assert by_name["c"].score == pytest.approx(1 / 63 + 1 / 61)
    assert by_name["a"].score == pytest.approx(1 / 61)
    assert by_name["c"].rankings == {"dense": 3, "keyword": 1}
    assert by_name["a"].rankings == {"dense": 1}
    assert by_name["d"].rankings == {"keyword": 2}


def test_rrf_weights_shift_the_order() -> None:
    a, b = candidate("a"), candidate("b")
    rankings = {"dense": [a, b], "keyword": [b, a]}
    assert reciprocal_rank_fusion(rankings, {"dense": 2.0, "keyword": 1.0})[0].text == "a"
    assert reciprocal_rank_fusion(rankings, {"dense": 1.0, "keyword": 2.0})[0].text == "b"


def test_rrf_ties_are_broken_deterministically() -> None:
    a, b = candidate("a"), candidate("b")
    first = reciprocal_rank_fusion({"dense": [a], "keyword": [b]}, {})
    again = reciprocal_rank_fusion({"keyword": [b], "dense": [a]}, {})
    assert [h.id for h in first] == [h.id for h in again]
