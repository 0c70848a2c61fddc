"""A small async load generator (httpx), the same for both sides of every ratio."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from tqdm import tqdm


def rate(
    url: str,
    count: int,
    concurrency: int,
    request: Callable[[int], dict[str, Any]],
    label: str,
    headers: dict[str, str] | None = None,
) -> float:
    """Send ``count`` POSTs (``request(i)`` gives ``json`` and ``headers``) with
    ``concurrency`` in flight; returns successful requests per second."""

    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        ok = 0
        bar = tqdm(total=count, desc=label, unit="req", leave=False)
        async with httpx.AsyncClient(
            base_url=url, limits=limits, timeout=60, headers=headers
        ) as client:

            async def loop() -> None:
                nonlocal ok
                while not queue.empty():
                    i = queue.get_nowait()
                    spec = request(i)
                    response = await client.post(
                        spec["path"], json=spec["json"], headers=spec.get("headers")
                    )
                    ok += response.status_code < 300
                    bar.update()

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        bar.close()
        if ok != count:
            raise RuntimeError(f"{label}: {count - ok} of {count} requests failed")
        return count / elapsed

    return asyncio.run(run())


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(call: Callable[[], object]) -> float:
    """Milliseconds one call took."""
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000
