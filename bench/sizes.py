"""Workload sizes: full (``make bench``), quick (``QUICK=1``) and tiny (the harness test)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sizes:
    single_requests: int
    concurrency: int
    batches: int
    batch_size: int
    encode_texts: int
    naive_events: int
    pipeline_events: int
    search_vectors: int
    search_queries: int
    export_events: int
    chunked_events: int  # long events (3-5 chunks) through the local-model pipeline
    chunked_search_events: int  # events of each corpus of search_p50_chunked_vs_single

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


FULL = Sizes(3000, 32, 20, 500, 2000, 400, 4000, 100_000, 200, 100_000, 300, 100_000)
QUICK = Sizes(600, 32, 6, 200, 300, 100, 1000, 10_000, 60, 10_000, 60, 10_000)
TINY = Sizes(40, 8, 2, 20, 16, 10, 40, 600, 8, 300, 3, 300)
