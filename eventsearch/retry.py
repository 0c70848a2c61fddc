"""When and how long the client waits before trying again (tenacity underneath).

Retried: no answer (connection errors, timeouts), 409 ``idempotency_key_in_progress``, 429
and 5xx. Never another 4xx: the same request would fail the same way. Waits are exponential
with full jitter (AWS's "Exponential Backoff and Jitter": a uniform draw in
``[0, min(cap, base * 2**n)]``), so clients that failed together do not come back together;
a ``Retry-After`` from the server is a floor under that draw. Everything is bounded twice:
by a number of attempts and by a total deadline that covers attempts and waits alike (a
wait that would end past the deadline is not started; the last error is raised instead).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from eventsearch.errors import EventsearchError

log = logging.getLogger("eventsearch.client")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries. ``attempts=1`` turns retries off."""

    attempts: int = 8
    deadline_s: float = 60.0
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.deadline_s <= 0 or self.backoff_s < 0:
            raise ValueError("RetryPolicy needs attempts >= 1, deadline_s > 0, backoff_s >= 0")


@dataclass(frozen=True)
class RetryEvent:
    """Passed to ``on_retry`` before each wait: which attempt failed, how, and the wait."""

    attempt: int
    error: EventsearchError
    delay_s: float


OnRetry = Callable[[RetryEvent], None]


def is_retryable(error: BaseException) -> bool:
    """True for the failures a retry can cure (see the module docstring)."""
    return isinstance(error, EventsearchError) and bool(error.retryable)


class _WaitHonouringRetryAfter:
    """Full-jitter exponential backoff, never shorter than the server's ``Retry-After``."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.backoff = wait_random_exponential(
            multiplier=policy.backoff_s, max=policy.backoff_max_s
        )

    def __call__(self, state: RetryCallState) -> float:
        delay = float(self.backoff(state))
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, EventsearchError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


def _before_sleep(on_retry: OnRetry | None) -> Callable[[RetryCallState], None]:
    def report(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(error, EventsearchError)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "eventsearch: attempt %d failed (%s); retrying in %.2f s",
            state.attempt_number,
            error,
            delay,
        )
        if on_retry is not None:
            on_retry(RetryEvent(state.attempt_number, error, delay))

    return report


def retrying(policy: RetryPolicy, on_retry: OnRetry | None) -> Retrying:
    """A fresh tenacity controller for one logical call (blocking sleeps)."""
    return Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline_s),
        wait=_WaitHonouringRetryAfter(policy),
        retry=retry_if_exception(is_retryable),
        before_sleep=_before_sleep(on_retry),
        reraise=True,  # the caller gets the last typed error, not tenacity's RetryError
    )


def async_retrying(policy: RetryPolicy, on_retry: OnRetry | None) -> AsyncRetrying:
    """The same controller for ``AsyncClient`` (sleeps with ``asyncio.sleep``)."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline_s),
        wait=_WaitHonouringRetryAfter(policy),
        retry=retry_if_exception(is_retryable),
        before_sleep=_before_sleep(on_retry),
        reraise=True,
    )


class Deadline:
    """The time left of one logical call, so that no single attempt outlives the deadline."""

    def __init__(self, policy: RetryPolicy, timeout_s: float) -> None:
        self.ends = time.monotonic() + policy.deadline_s
        self.timeout_s = timeout_s

    def attempt_timeout(self) -> float:
        """The per-attempt timeout, cut to what is left of the deadline."""
        return max(0.05, min(self.timeout_s, self.ends - time.monotonic()))
