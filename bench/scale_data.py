"""The synthetic corpus of ``make bench-scale`` and its fast load (issue 16).

The corpus: unit vectors of the local model's 384 dims drawn from 2,000 clusters whose centres
themselves sit around 40 topics (so that neighbouring clusters overlap, as topics do in real
text). Cluster sizes follow a log-normal law (a few big clusters, many small ones), each
cluster has its own spread, and the noise is anisotropic (a power-law spectrum over one random
rotation: most of a vector's variation lies in a few dozen directions, as in real embedding
spaces) rather than the same isotropic Gaussian everywhere. Queries are drawn from the same
law, not taken from the corpus.

The load: vectors are made with NumPy in blocks, ``events`` rows are made by PostgreSQL
itself (``INSERT ... SELECT generate_series``) and ``chunks`` rows go in one binary COPY whose
bytes NumPy writes in bulk (a structured array laid out as PostgreSQL's binary COPY tuple,
with pgvector's binary ``vector``: int16 dim, int16 unused, big-endian float4s). The previous
loader's per-row ``write_row`` managed a few hundred rows a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import psycopg

from bench.scale_keyword import TEXT_CHARS, TEXT_INDEXES, TEXT_SQL

DIM, TOPICS, CENTRES = 384, 40, 2000
BLOCK = 50_000  # rows made and written at once: ~80 MB of COPY bytes
DESCRIPTION = (
    f"synthetic: {CENTRES} clusters around {TOPICS} topics, log-normal cluster sizes, spread"
    f" per cluster 0.6-1.4 (noise norm against a unit centre), anisotropic power-law noise,"
    f" {DIM} dims, unit norm"
)
TENANT, MODEL = b"bench", b"stub-embed"

CHUNK_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"), ("id_hi", ">u8"), ("id_lo", ">u8"),
        ("position_len", ">i4"), ("position", ">i4"),
        ("tenant_len", ">i4"), ("tenant", f"S{len(TENANT)}"),
        ("start_len", ">i4"), ("start", ">i4"),
        ("end_len", ">i4"), ("end", ">i4"),
        ("tokens_len", ">i4"), ("tokens", ">i4"),
        ("model_len", ">i4"), ("model", f"S{len(MODEL)}"),
        ("vector_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vector", ">f4", (DIM,)),
    ]
)  # fmt: skip
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
# The chunks' columns in the order both benches' binary COPYs write them.
COPY_CHUNKS = (
    "COPY chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
    " embedding) FROM STDIN WITH (FORMAT BINARY)"
)


@dataclass
class Corpus:
    centres: np.ndarray  # (CENTRES, DIM) unit vectors
    weights: np.ndarray  # each cluster's share of the vectors
    spreads: np.ndarray  # each cluster's noise norm
    basis: np.ndarray  # (DIM, DIM) the rotation the noise spectrum is laid along

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` unit vectors of the corpus's law (float32)."""
        picked = rng.choice(CENTRES, size=n, p=self.weights)
        # Unit expected norm, then scaled to the cluster's spread.
        spectrum = np.arange(1, DIM + 1, dtype=np.float32) ** -0.6
        spectrum /= np.linalg.norm(spectrum)
        z = rng.standard_normal((n, DIM), dtype=np.float32) * spectrum
        z = z @ self.basis  # the same spectrum in every cluster, along shared directions
        v = self.centres[picked] + z * self.spreads[picked][:, None]
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def corpus(rng: np.random.Generator) -> Corpus:
    topics = _unit(rng.standard_normal((TOPICS, DIM), dtype=np.float32))
    # Offset norm ~1.1 around a unit topic: a centre's cosine to its topic is about 0.7.
    offsets = rng.standard_normal((CENTRES, DIM), dtype=np.float32) * (1.1 / np.sqrt(DIM))
    centres = _unit(topics[rng.integers(0, TOPICS, CENTRES)] + offsets)
    weights = rng.lognormal(0.0, 1.0, CENTRES)
    spreads = rng.uniform(0.6, 1.4, CENTRES).astype(np.float32)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    return Corpus(centres, weights / weights.sum(), spreads, basis.astype(np.float32))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def chunk_rows(start: int, vectors: np.ndarray, per_event: int = 1, end: int = 12) -> bytes:
    """Binary COPY tuples for the chunks of events ``start ..`` (event ids are
    ``UUID(int=i + 1)``), ``per_event`` consecutive vectors each (positions 0 ..), each
    chunk's span ``0 .. end``."""
    rows = np.zeros(len(vectors), dtype=CHUNK_ROW)
    at = np.arange(len(vectors), dtype=np.uint64)
    rows["fields"] = 8
    rows["id_len"], rows["id_hi"] = 16, 0
    rows["id_lo"] = start + 1 + at // per_event
    rows["position"] = at % per_event
    rows["position_len"] = rows["start_len"] = rows["end_len"] = rows["tokens_len"] = 4
    rows["end"], rows["tokens"] = end, 4
    rows["tenant_len"], rows["tenant"] = len(TENANT), TENANT
    rows["model_len"], rows["model"] = len(MODEL), MODEL
    rows["vector_len"], rows["dim"] = 4 + 4 * DIM, DIM
    rows["vector"] = vectors
    return rows.tobytes()


SHORT_TEXT = "'synthetic ' || i"  # the dense-only corpora's text


def load(
    db_url: str, start: int, vectors: np.ndarray, per_event: int = 1, words: bool = False
) -> None:
    """Events ``start ..`` and their chunks, ``per_event`` consecutive vectors each (call it
    with at most ``BLOCK`` or so vectors: the COPY's bytes are made at once). ``words``: each
    event's text is bench/scale_keyword.py's Zipf-like words (made by PostgreSQL), else
    ``synthetic <i>``."""
    text, end = (TEXT_SQL, TEXT_CHARS) if words else (SHORT_TEXT, 12)
    with psycopg.connect(db_url, autocommit=True) as conn:
        # The migration's HNSW index, kept during a load, costs an index insert per row (it
        # was what made the first loader take 366 s per 100k): the bench rebuilds it anyway.
        conn.execute("DROP INDEX IF EXISTS ix_chunks_embedding_hnsw")
        if words:
            for index in TEXT_INDEXES:  # built again by scale_keyword.build_text_indexes
                conn.execute(f"DROP INDEX IF EXISTS {index}")
        conn.execute(
            "INSERT INTO events (id, tenant, source, type, text, metadata, status, model,"
            " chunking, embedded_at) SELECT lpad(to_hex(i + 1), 32, '0')::uuid, 'bench',"
            f" 'scale', 'doc', {text}, '{{}}', 'embedded', 'stub-embed', 'bench', now()"
            " FROM generate_series(%s::bigint, %s::bigint) AS i",
            [start, start + len(vectors) // per_event - 1],
        )
        with (
            conn.cursor() as cur,
            cur.copy(COPY_CHUNKS) as copy,
        ):
            copy.write(COPY_HEADER + chunk_rows(start, vectors, per_event, end) + COPY_TRAILER)
