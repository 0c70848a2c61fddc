"""Issue 14's two ``make bench`` keys for chunked (long) events.

``chunked_e2e_tokens_vs_encode``: word pieces per second of long events (3 to 5 chunks
each) from the first POST until every one is embedded, through gateway, queue, worker and
database with the local model, against a bare encode in this process of exactly the chunks
the worker's chunker makes of them (same texts, same runtime, batches of 64). Both sides
count the same tokens, so the ratio is the bare encode's time over the pipeline's.

``search_p50_chunked_vs_single``: p50 of the gateway's dense statement (bench/scale.py's
``search``: best chunk per event, the gateway's session settings) over N events of 4 chunks
each, against N one-chunk events: the same events, four times the vectors. Synthetic
vectors (bench/scale.py's clusters): each event has a direction of its own in a cluster and
its chunks lie close around it, closer than to other events of the cluster, so the nearest
chunks of a query crowd into fewer events and the statement's best-chunk-per-event step and
its deeper scans do real work. One-chunk events are single draws of the same distribution.
Both corpora are loaded, vacuumed and indexed first, then searched in interleaved passes,
each keeping its best p50.
"""

from __future__ import annotations

import random

import numpy as np
import psycopg

from bench import scale, scale_data
from bench.pipeline import WORDS, encode_rate, local_pipeline
from bench.services import Services
from bench.sizes import Sizes

SENTENCES, SENTENCE_WORDS = 9, 14  # a paragraph of ~195 word pieces: two 128-token chunks
CHUNKS_PER_EVENT = 4  # search: the "~4 chunks each"
PASSES = 2  # search passes per corpus, interleaved
BLOCK = 25_000  # events generated and COPYed at a time (bounded memory at any size)


def long_texts(n: int) -> list[str]:
    """``n`` different events of 3, 4 or 5 paragraphs of ~195 word pieces (the local
    chunker's 128-token chunks make two of a paragraph: 8 on average; 4 at 256)."""
    texts = []
    for i in range(n):
        rng = random.Random(i)
        paragraphs = []
        for p in range(3 + i % 3):
            sentences = [
                " ".join(rng.choices(WORDS, k=SENTENCE_WORDS)).capitalize() + f" {i}-{p}-{s}."
                for s in range(SENTENCES)
            ]
            paragraphs.append(" ".join(sentences))
        texts.append("\n\n".join(paragraphs))
    return texts


def measure_pipeline(svc: Services, sizes: Sizes) -> dict[str, float]:
    from common.chunking import chunker_for
    from common.settings import Settings

    settings = Settings(embedder="local")  # the worker's settings: EMBEDDER=local, defaults
    runtime = settings.local_runtime
    texts = long_texts(sizes.chunked_events)
    chunks = [c for t in texts for c in chunker_for(settings).split(t)]
    tokens = sum(c.tokens for c in chunks)
    pieces = [c.text for c in chunks]
    # Bare encode before and after the pipeline, keeping the best (as bench/pipeline.py
    # does): a busy moment of the machine cannot flatter the pipeline's side.
    encode = encode_rate(pieces, runtime)
    events_per_s = local_pipeline(svc, texts, runtime)
    encode = max(encode, encode_rate(pieces, runtime))
    e2e_tokens = events_per_s * tokens / len(texts)
    encode_tokens = encode * tokens / len(chunks)
    return {
        "chunked_events": len(texts),
        "chunked_chunks_per_event": round(len(chunks) / len(texts), 2),
        "chunked_tokens_per_chunk": round(tokens / len(chunks), 1),
        "chunked_e2e_tokens_per_s": round(e2e_tokens, 1),
        "chunked_encode_tokens_per_s": round(encode_tokens, 1),
        "chunked_e2e_tokens_vs_encode": round(e2e_tokens / encode_tokens, 3),
    }


def event_vectors(
    rng: np.random.Generator, centres: np.ndarray, events: int, per_event: int
) -> np.ndarray:
    """``per_event`` unit vectors for each of ``events`` events, consecutive: each event a
    direction drawn like bench/scale.py's vectors, its chunks half that noise around it."""
    own = scale.vectors(rng, centres, events)
    noise = rng.normal(0, scale.NOISE / 2, (events * per_event, scale.DIM)).astype(np.float32)
    v = np.repeat(own, per_event, axis=0) + noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _load(svc: Services, database: str, events: int, per_event: int) -> tuple[str, float]:
    """A database of ``events`` events of ``per_event`` chunks, vacuumed (so that neither
    autovacuum nor first-read hint bits land in the timings) and indexed; (its URL, the
    HNSW build's seconds)."""
    rng = np.random.default_rng(14)  # both corpora draw their events alike
    centres = _centres()
    db_url, _ = svc.database(database)
    for start in range(0, events, BLOCK):
        count = min(BLOCK, events - start)
        scale_data.load(db_url, start, event_vectors(rng, centres, count, per_event), per_event)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) events, chunks")  # before the index: a heap pass only
    built, _ = scale.build_index(db_url)
    return db_url, built


def _centres() -> np.ndarray:
    centres = np.random.default_rng(16).normal(0, 1, (scale.CENTRES, scale.DIM))
    return (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)


def measure_search(svc: Services, sizes: Sizes) -> dict[str, object]:
    n = sizes.chunked_search_events
    # Queries from the clusters (bench/scale.py's distribution); the first 5 warm the caches.
    queries = scale.vectors(np.random.default_rng(41), _centres(), max(sizes.search_queries, 20))
    corpora = {
        "single": ("bench_chunks_single", 1),
        "chunked": ("bench_chunks_multi", CHUNKS_PER_EVENT),
    }
    loaded = {side: _load(svc, db, n, per) for side, (db, per) in corpora.items()}
    passes: dict[str, list[float]] = {side: [] for side in corpora}
    fill = dict.fromkeys(corpora, 1.0)
    # Passes interleaved, each side keeping its best p50: a busy moment of the shared
    # machine then cannot favour one side of the ratio.
    for _ in range(PASSES):
        for side, (db_url, _) in loaded.items():
            times, found = scale.search(db_url, queries)
            passes[side].append(round(float(np.percentile(times, 50)), 2))
            full = sum(1 for ids in found if len(set(ids)) == 10) / len(found)
            fill[side] = min(fill[side], full)
    for db, _ in corpora.values():
        svc.drop(db)  # a few hundred MB at full size: not kept for the rest of the run
    p50 = {side: min(figures) for side, figures in passes.items()}
    return {
        "chunked_search_events": n,
        "search_single_p50_ms": round(p50["single"], 2),
        "search_chunked_p50_ms": round(p50["chunked"], 2),
        "search_p50_chunked_vs_single": round(p50["chunked"] / p50["single"], 3),
        "search_single_p50_ms_by_pass": passes["single"],
        "search_chunked_p50_ms_by_pass": passes["chunked"],
        "hnsw_build_single_s": round(loaded["single"][1], 1),
        "hnsw_build_chunked_s": round(loaded["chunked"][1], 1),
        # 1.0: every search returned top_k distinct events on both corpora.
        "search_single_top_k_fill": round(fill["single"], 4),
        "search_chunked_top_k_fill": round(fill["chunked"], 4),
    }
