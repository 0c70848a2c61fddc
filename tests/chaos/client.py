"""The chaos suite's client: sends events at a steady rate from a few threads and retries
each one with the same Idempotency-Key on connection errors, 5xx, 409 (in flight) and 429
(honouring Retry-After), as a careful upstream system would, until it is accepted (202) or
its deadline passes."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from tests.stub_embedder import NAN_MARK

RETRYABLE = {409, 429, 500, 502, 503, 504}


def is_marked(i: int) -> bool:
    """About 1% of the events carry the NaN mark: the embedder answers NaN for them."""
    return i % 100 == 7


def is_long(i: int) -> bool:
    """One event in ten is over 2,000 tokens (some 8,800 characters): a chunk set of a dozen."""
    return i % 10 == 3


def text_of(run: str, i: int) -> str:
    mark = f" {NAN_MARK}" if is_marked(i) else ""
    head = f"chaos {run} event {i} job posting number {i}{mark}"
    if not is_long(i):
        return head
    body = "\n\n".join(
        f"Section {k} of posting {i}: the role, its duties, the team and the hiring steps, "
        "described at length as real postings are. " * 3
        for k in range(24)
    )
    return f"{head}\n\n{body}"


@dataclass
class Sent:
    accepted: dict[int, str] = field(default_factory=dict)  # event number -> id
    given_up: list[int] = field(default_factory=list)
    retries: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.statuses[what] = self.statuses.get(what, 0) + 1


def send_one(
    client: httpx.Client, body: dict[str, object], key: str, i: int, sent: Sent, deadline_s: float
) -> None:
    """Send ``body`` (number ``i``) until it is accepted, retrying with the same ``key``."""
    headers = {"Idempotency-Key": key}
    give_up_at = time.monotonic() + deadline_s
    pause = 0.1
    while time.monotonic() < give_up_at:
        try:
            response = client.post("/api/v1/events", json=body, headers=headers)
        except httpx.HTTPError as error:
            sent.count(type(error).__name__)
            wait = pause
        else:
            sent.count(str(response.status_code))
            if response.status_code == 202:
                with sent.lock:
                    sent.accepted[i] = response.json()["id"]
                return
            if response.status_code not in RETRYABLE:
                raise AssertionError(f"event {i}: {response.status_code} {response.text}")
            wait = max(pause, float(response.headers.get("retry-after") or 0))
        with sent.lock:
            sent.retries += 1
        time.sleep(random.uniform(wait / 2, wait))  # the client's backoff, not a test wait
        pause = min(pause * 2, 2.0)
    with sent.lock:
        sent.given_up.append(i)


def send_all(base_url: str, key: str, run: str, n: int, rate: float, threads: int = 8) -> Sent:
    """Send events 0..n-1, paced at ``rate`` per second overall; returns what was accepted."""
    sent = Sent()
    started = time.monotonic()
    limits = httpx.Limits(max_connections=threads)
    with httpx.Client(
        base_url=base_url, headers={"X-API-Key": key}, timeout=10, limits=limits
    ) as client:

        def paced(i: int) -> None:
            time.sleep(max(0.0, started + i / rate - time.monotonic()))  # pacing, not waiting
            body = {"source": "chaos", "type": "job.posted", "text": text_of(run, i)}
            send_one(client, body, f"chaos-{run}-{i}", i, sent, deadline_s=180)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(paced, range(n)))
    return sent
