"""``ingest_single_vs_bare`` and ``batch_vs_single``."""

from __future__ import annotations

import uuid
from typing import Any

from bench.load import rate
from bench.services import Services
from bench.sizes import Sizes
from stack.ports import free_port
from tests import processes


def _body(i: int) -> dict[str, Any]:
    return {
        "source": "bench",
        "type": "ingest",
        "text": f"event number {i} for the benchmark",
        "metadata": {"i": i},
    }


def measure(svc: Services, sizes: Sizes) -> dict[str, float]:
    _, key = svc.database("bench_ingest")
    env = svc.env("bench_ingest", 2)
    gateway = svc.gateway(env, "bench-gateway-ingest")
    port = free_port()
    bare = processes.Gateway(
        "bare",
        [
            str(processes.BIN / "uvicorn"),
            "bench.bare_app:app",
            # The same HTTP parser as the gateway's server (gateway/server.py runs h11), so
            # the ratio compares the apps, not two parsers.
            "--http",
            "h11",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        svc.root / "bare.log",
        port=port,
    )
    bare.start().wait_ready()
    svc.running.append(bare)
    auth = {"Authorization": f"Bearer {key}"}
    run = uuid.uuid4().hex[:8]
    state = {"round": 0}

    def single(i: int) -> dict[str, Any]:
        return {
            "path": "/api/v1/events",
            "json": _body(i),
            "headers": {"Idempotency-Key": f"{run}-{i}-{state['round']}"},
        }

    def plain(i: int) -> dict[str, Any]:
        return {"path": "/bare", "json": _body(i)}

    n, c = sizes.single_requests, sizes.concurrency
    best_api = best_bare = 0.0
    # Alternate the two sides, twice, and keep each side's best: the machine is noisy.
    for round_ in range(2):
        state["round"] = round_
        best_bare = max(best_bare, rate(bare.url, n, c, plain, f"bare endpoint #{round_ + 1}"))
        best_api = max(
            best_api, rate(gateway.url, n, c, single, f"POST /events #{round_ + 1}", auth)
        )

    def batch(i: int) -> dict[str, Any]:
        events = [
            {**_body(j), "idempotency_key": f"{run}-batch-{i}-{j}"} for j in range(sizes.batch_size)
        ]
        return {"path": "/api/v1/events/batch", "json": {"events": events}}

    batches_per_s = rate(gateway.url, sizes.batches, 2, batch, "POST /events/batch", auth)
    svc.stop(bare)
    svc.stop(gateway)
    return {
        "ingest_single_req_per_s": round(best_api, 1),
        "bare_req_per_s": round(best_bare, 1),
        "ingest_single_vs_bare": round(best_api / best_bare, 3),
        "batch_events_per_s": round(batches_per_s * sizes.batch_size, 1),
        "batch_vs_single": round(batches_per_s * sizes.batch_size / best_api, 2),
    }
