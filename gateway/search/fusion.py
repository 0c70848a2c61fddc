"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

Each ranking contributes ``weight / (k + rank)`` for every event it holds; the fused list is
sorted by the sum. Only ranks matter, so cosine similarities and text-search scores, which
live on unrelated scales, never need calibrating against each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.search.candidates import Candidate


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Candidate]], weights: Mapping[str, float], k: int = 60
) -> list[Candidate]:
    """One list from several rankings, best first; each hit keeps its rank in every ranking
    that held it (``rankings``). Ties go to the best single rank, then to the id, so the
    order is deterministic."""
    fused: dict[object, Candidate] = {}
    for name, ranked in rankings.items():
        weight = weights.get(name, 1.0)
        for position, candidate in enumerate(ranked, start=1):
            hit = fused.get(candidate.id)
            if hit is None:
                hit = fused[candidate.id] = Candidate(
                    **{**candidate.__dict__, "score": 0.0, "rankings": {}}
                )
            hit.rankings[name] = position
            # The dense ranking's passage is its best chunk; keep it whichever came first.
            if hit.passage is None:
                hit.passage = candidate.passage
            if hit.region is None:  # the keyword ranking's best chunk
                hit.region = candidate.region
            hit.score += weight / (k + position)
    return sorted(fused.values(), key=lambda c: (-c.score, min(c.rankings.values()), str(c.id)))
