"""``e2e_vs_naive`` (stub embedder with a fixed cost per call), ``e2e_vs_torch_encode`` and
``e2e_vs_encode`` (the real local model): events per second from the first POST until every
event is searchable."""

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


def encode_rate(texts: list[str], runtime: str = "torch") -> float:
    """Texts per second of a bare encode in this process, batches of 64 (the worker's)."""
    from bench.runtimes import build, rate

    model = build(runtime, threads=0)  # one process on every core: the runtime's choice
    model.embed(["warm-up"])
    return rate(model, texts)[0]


def default_concurrency() -> int:
    """WORKER_CONCURRENCY's default: the pool children of a worker as deployed."""
    from common.settings import Settings

    return int(Settings.model_fields["worker_concurrency"].default)


def local_pipeline(svc: Services, texts: list[str], runtime: str) -> float:
    database = f"bench_local_{runtime.replace('-', '_')}"
    db_url, key = svc.database(database)
    env = svc.env(database, 4, EMBEDDER="local", EMBED_BATCH_SIZE="64", LOCAL_RUNTIME=runtime)
    env.pop("EMBED_MODEL")
    # The worker as deployed: WORKER_CONCURRENCY's default pool children, each running the
    # model on its share of the cores (workers/context.py local_threads).
    children = default_concurrency()
    worker = svc.worker(env, f"bench-worker-{runtime}", concurrency=children)
    gateway = svc.gateway(env, f"bench-gateway-{runtime}")
    try:
        # One batch per child (two messages of EMBED_BATCH_SIZE events: a job each), so that
        # every child's model is loaded and has run before the timed window opens.
        warm = [f"warm the worker's model {i}" for i in range(64 * children)]
        _pipeline_rate(svc, gateway.url, key, db_url, warm, "warm-up")
        return _pipeline_rate(svc, gateway.url, key, db_url, texts, f"pipeline ({runtime})")
    finally:
        svc.stop(gateway)
        svc.stop(worker)


def measure_encode(svc: Services, sizes: Sizes) -> dict[str, float | str]:
    """``e2e_vs_torch_encode``: events/s through gateway, queue, workers and database with the
    default runtime, against bare PyTorch encode of the same texts in this process;
    ``e2e_vs_encode``: the same pipeline against a bare encode of its own runtime (what the
    pipeline itself costs). The bare encodes run before and after the pipelines and keep their
    best: a noisy machine then cannot flatter the pipeline's side of a ratio."""
    from common.settings import Settings

    default = Settings.model_fields["local_runtime"].default
    texts = _texts(sizes.encode_texts)
    torch_rate = encode_rate(texts, "torch")
    own = encode_rate(texts, default) if default != "torch" else torch_rate
    pipeline = local_pipeline(svc, texts, default)
    figures: dict[str, float] = {}
    if default != "onnx-int8":  # the faster setting, measured alongside the default
        int8 = local_pipeline(svc, texts, "onnx-int8")
        int8_rate = encode_rate(texts, "onnx-int8")
        figures["e2e_int8_events_per_s"] = round(int8, 1)
        figures["encode_int8_texts_per_s"] = round(int8_rate, 1)
        figures["e2e_int8_vs_torch_encode"] = round(int8 / torch_rate, 3)
    torch_rate = max(torch_rate, encode_rate(texts, "torch"))
    own = max(own, encode_rate(texts, default)) if default != "torch" else torch_rate
    return {
        "local_runtime": default,
        "encode_torch_texts_per_s": round(torch_rate, 1),
        "encode_texts_per_s": round(own, 1),
        "e2e_local_events_per_s": round(pipeline, 1),
        "e2e_vs_torch_encode": round(pipeline / torch_rate, 3),
        "e2e_vs_encode": round(pipeline / own, 3),
        **figures,
    }
