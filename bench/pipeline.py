"""``e2e_vs_naive`` (stub embedder with a fixed cost per call) and ``e2e_vs_encode`` (the real
local model): events per second from the first POST until every event is searchable."""

from __future__ import annotations

import time
import uuid

import httpx
import psycopg
from tqdm import tqdm

from bench.services import Services
from bench.sizes import Sizes
from stack.ports import wait_until

WORDS = [
    "data",
    "engineer",
    "nurse",
    "driver",
    "chef",
    "teacher",
    "analyst",
    "ticket",
    "login",
    "error",
    "payment",
    "refund",
    "shipment",
    "delay",
    "nairobi",
    "lyon",
    "leeds",
    "texas",
    "remote",
    "senior",
    "junior",
    "night",
]


def _texts(n: int) -> list[str]:
    return [
        " ".join(WORDS[(i * k) % len(WORDS)] for k in range(3, 23)) + f" #{i}" for i in range(n)
    ]


def _pipeline_rate(
    svc: Services, url: str, key: str, db_url: str, texts: list[str], label: str
) -> float:
    """Send ``texts`` through the batch API and wait until all are embedded."""
    run = uuid.uuid4().hex[:8]
    auth = {"Authorization": f"Bearer {key}"}
    bar = tqdm(total=len(texts), desc=label, unit="ev", leave=False)
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=auth, timeout=120) as client:
        for start in range(0, len(texts), 500):
            chunk = [
                {"source": "bench", "type": run, "text": t, "idempotency_key": f"{run}-{i}"}
                for i, t in enumerate(texts[start : start + 500], start)
            ]
            response = client.post("/api/v1/events/batch", json={"events": chunk})
            response.raise_for_status()
    with psycopg.connect(db_url, autocommit=True) as conn:

        def done() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE type = %s AND status = 'embedded'", [run]
            ).fetchone()
            bar.n = row[0] if row else 0
            bar.refresh()
            return bar.n >= len(texts)

        wait_until(done, 1800, label)
    elapsed = time.perf_counter() - started
    bar.close()
    return len(texts) / elapsed


def _naive_rate(svc: Services, db_url: str, texts: list[str]) -> float:
    """One embedder call and one INSERT + commit per event: the pattern batching replaces."""
    started = time.perf_counter()
    with httpx.Client(base_url=svc.stub.url, timeout=60) as client, psycopg.connect(db_url) as conn:
        for text in tqdm(texts, desc="naive pattern", unit="ev", leave=False):
            vector = client.post(
                "/api/embed", json={"model": "stub-embed", "input": [text]}
            ).json()["embeddings"][0]
            event_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO events (id, tenant, source, type, text, status, model, embedded_at)"
                " VALUES (%s, 'naive', 'bench', 'naive', %s, 'embedded', 'stub-embed', now())",
                [event_id, text],
            )
            conn.execute(
                "INSERT INTO chunks (event_id, position, tenant, char_start, char_end, tokens,"
                " model, embedding) VALUES (%s, 0, 'naive', 0, %s, 1, 'stub-embed', %s::vector)",
                [event_id, len(text), str(vector)],
            )
            conn.commit()
    return len(texts) / (time.perf_counter() - started)


def measure_naive(svc: Services, sizes: Sizes) -> dict[str, float]:
    db_url, key = svc.database("bench_pipe")
    env = svc.env("bench_pipe", 3, EMBED_BATCH_SIZE="64")
    svc.stub.behaviour.delay_s, svc.stub.behaviour.per_input_delay_s = 0.020, 0.0002
    try:
        naive = _naive_rate(svc, db_url, _texts(sizes.naive_events))
        worker = svc.worker(env, "bench-worker-pipe", concurrency=2)
        gateway = svc.gateway(env, "bench-gateway-pipe")
        _pipeline_rate(svc, gateway.url, key, db_url, ["warm the worker"], "warm-up")
        pipeline = _pipeline_rate(
            svc,
            gateway.url,
            key,
            db_url,
            _texts(sizes.pipeline_events),
            "pipeline (stub 20 ms/call)",
        )
        svc.stop(gateway)
        svc.stop(worker)
    finally:
        svc.stub.behaviour.reset()
    return {
        "naive_events_per_s": round(naive, 1),
        "pipeline_events_per_s": round(pipeline, 1),
        "e2e_vs_naive": round(pipeline / naive, 2),
    }


def _encode_rate(texts: list[str]) -> float:
    """Texts per second of a bare ``model.encode`` in this process, batches of 64."""
    from common.embedders.local import LocalEmbedder

    model = LocalEmbedder("all-MiniLM-L6-v2", 384)
    model.embed(["warm-up"])
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        model.embed(texts[start : start + 64])
    return len(texts) / (time.perf_counter() - started)


def measure_encode(svc: Services, sizes: Sizes) -> dict[str, float]:
    texts = _texts(sizes.encode_texts)
    db_url, key = svc.database("bench_local")
    env = svc.env("bench_local", 4, EMBEDDER="local", EMBED_BATCH_SIZE="64")
    env.pop("EMBED_MODEL")
    # The bare encode runs before and after the pipeline and keeps its best: a noisy
    # machine then cannot flatter the pipeline's side of the ratio.
    encode = _encode_rate(texts)
    worker = svc.worker(env, "bench-worker-local", concurrency=1)
    gateway = svc.gateway(env, "bench-gateway-local")
    _pipeline_rate(svc, gateway.url, key, db_url, ["warm the worker's model"], "warm-up")
    pipeline = _pipeline_rate(svc, gateway.url, key, db_url, texts, "pipeline (local model)")
    svc.stop(gateway)
    svc.stop(worker)
    encode = max(encode, _encode_rate(texts))
    return {
        "encode_texts_per_s": round(encode, 1),
        "e2e_local_events_per_s": round(pipeline, 1),
        "e2e_vs_encode": round(pipeline / encode, 3),
    }
