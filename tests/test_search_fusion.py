"""Hybrid fusion, on its own (no database: pure functions): reciprocal rank fusion and the
linear combination of min-max normalised scores."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.search.candidates import Candidate
from gateway.search.fusion import linear_fusion, min_max, reciprocal_rank_fusion


def candidate(name: str, score: float = 0.0) -> Candidate:
    return Candidate(
        id=uuid.uuid5(uuid.NAMESPACE_OID, name),
        text=name,
        source="s",
        type="t",
        metadata={},
        occurred_at=None,
        score=score,
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


def test_linear_fusion_sums_weighted_min_max_scores() -> None:
    # Dense: a far ahead of b and c. Keyword: d first, c second, a last.
    dense = [candidate("a", 0.9), candidate("b", 0.5), candidate("c", 0.4)]
    keyword = [candidate("d", 12.0), candidate("c", 9.0), candidate("a", 2.0)]
    fused = linear_fusion({"dense": dense, "keyword": keyword}, {"dense": 1.0, "keyword": 2.0})
    by_name = {hit.text: hit for hit in fused}
    assert by_name["a"].score == pytest.approx(1.0 + 2.0 * 0.0)
    assert by_name["b"].score == pytest.approx((0.5 - 0.4) / 0.5)
    assert by_name["c"].score == pytest.approx(0.0 + 2.0 * 0.7)
    assert by_name["d"].score == pytest.approx(2.0)
    assert [hit.text for hit in fused] == ["d", "c", "a", "b"]
    assert by_name["c"].rankings == {"dense": 3, "keyword": 2}
    assert by_name["d"].rankings == {"keyword": 1}


def test_min_max_of_equal_scores_is_all_ones_and_of_none_is_empty() -> None:
    assert min_max([candidate("a", 3.0), candidate("b", 3.0)]) == [1.0, 1.0]
    assert min_max([]) == []


scores = st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=20)


@given(scores, scores, st.floats(0, 10), st.floats(0, 10))
def test_linear_fusion_scores_lie_within_the_weights_and_come_sorted(
    dense_scores: list[float], keyword_scores: list[float], w_dense: float, w_keyword: float
) -> None:
    dense = [candidate(f"d{i}", s) for i, s in enumerate(sorted(dense_scores, reverse=True))]
    keyword = [candidate(f"k{i}", s) for i, s in enumerate(sorted(keyword_scores, reverse=True))]
    keyword += dense[:2]  # some events in both rankings (their keyword score is their own)
    keyword.sort(key=lambda c: -c.score)
    fused = linear_fusion(
        {"dense": dense, "keyword": keyword}, {"dense": w_dense, "keyword": w_keyword}
    )
    assert len(fused) == len({c.id for c in dense + keyword})
    assert all(-1e-9 <= hit.score <= w_dense + w_keyword + 1e-9 for hit in fused)
    assert [hit.score for hit in fused] == sorted((hit.score for hit in fused), reverse=True)
    if dense:
        assert fused[0].score >= w_dense - 1e-9  # dense's best alone scores its whole weight
