"""A cap on concurrent calls to one embedding server, shared by every worker process.

Ollama answers a few requests at a time (``OLLAMA_NUM_PARALLEL``) and queues the rest; a
fleet of workers that sends more than it can serve only makes every call slower, until calls
time out and are retried, which sends more. ``EMBED_MAX_CONCURRENCY`` (0: no cap) bounds the
calls in flight across all workers: a counting semaphore in Redis, one sorted set per
embedder URL whose members are the holders and whose scores are their lease expiry, so a
holder killed mid-call frees its slot when its lease runs out (the call's timeout plus a
margin) instead of holding it forever.

Acquiring is one Lua call (the expiry sweep, the count and the claim must be one atomic
step); releasing is a ZREM. A caller that waits longer than its deadline gets
:class:`SlotsBusy`; the worker then hands the batch's messages back unclaimed, so waiting
costs an event no attempt.
When Redis cannot be reached the call goes ahead uncapped: the cap protects the embedder,
and the broker being away stops the workers anyway.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis import exceptions as redis_exc

log = logging.getLogger("eventsearch.worker")
KEY = "eventsearch:embed-slots:{target}"
# KEYS[1]: the slots; ARGV: limit, lease in ms, token. Redis's clock, so hosts need not agree.
ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return 1
end
return 0
"""
REDIS_ERRORS = (redis_exc.ConnectionError, redis_exc.TimeoutError, OSError)


class SlotsBusy(Exception):
    """No slot came free before the deadline."""


class EmbedSlots:
    def __init__(self, redis: Redis, target: str, limit: int, lease_s: float) -> None:
        self.redis = redis
        self.key = KEY.format(target=target)
        self.limit = limit
        self.lease_ms = int(lease_s * 1000)
        self.acquire_script = redis.register_script(ACQUIRE)

    @contextmanager
    def slot(self, wait_s: float) -> Iterator[None]:
        """Hold one slot for the block; wait up to ``wait_s`` for one (then SlotsBusy)."""
        if self.limit <= 0:
            yield
            return
        token = uuid.uuid4().hex
        try:
            held = self._acquire(token, wait_s)
        except REDIS_ERRORS as error:
            log.warning("embedder concurrency cap unavailable, calling uncapped: %r", error)
            held = False
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(*REDIS_ERRORS):  # else the lease expires by itself
                    self.redis.zrem(self.key, token)

    def _acquire(self, token: str, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        pause = 0.005
        while True:
            if self.acquire_script(keys=[self.key], args=[self.limit, self.lease_ms, token]):
                return True
            if time.monotonic() + pause > deadline:
                raise SlotsBusy(f"{self.limit} calls to the embedder already in flight")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
