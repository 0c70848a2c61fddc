"""The ``Embedder`` interface: one call embeds many texts.

Failures are sorted into two kinds, because the worker treats them differently:
``TransientEmbedError`` (timeouts, connection errors, 429, 5xx: retry with backoff, honouring
``retry_after``) and ``PermanentEmbedError`` (the input or the model is refused, the answer is
malformed: NaN values, a wrong dimension, a wrong count: dead-letter at once).
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import httpx


class EmbedError(Exception):
    transient = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientEmbedError(EmbedError):
    transient = True


class PermanentEmbedError(EmbedError):
    transient = False


class Embedder(ABC):
    """Turns texts into vectors of ``dim`` floats with model ``model``."""

    name: str = "embedder"

    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim

    @abstractmethod
    def _embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in one call; the answer is checked before anyone stores it."""
        if not texts:
            return []
        return self.check(texts, self._embed(texts))

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async variant for the gateway; the default runs :meth:`embed` in a thread."""
        return await asyncio.to_thread(self.embed, texts)

    def check(self, texts: Sequence[str], vectors: list[list[float]]) -> list[list[float]]:
        if len(vectors) != len(texts):
            raise PermanentEmbedError(
                f"{self.name} returned {len(vectors)} vectors for {len(texts)} inputs"
            )
        for vector in vectors:
            if len(vector) != self.dim:
                raise PermanentEmbedError(
                    f"{self.name} model {self.model!r} returned {len(vector)} dimensions; "
                    f"the vector column has {self.dim} (EMBED_DIM)"
                )
            if not all(math.isfinite(x) for x in vector):
                raise PermanentEmbedError(f"{self.name} returned NaN or infinite values")
            if not any(vector):
                # Cosine distance to a zero vector is undefined (NaN scores in search).
                raise PermanentEmbedError(f"{self.name} returned a zero vector")
        return vectors

    def ping(self) -> str:
        """A cheap reachability check for /health; raises on failure."""
        return "ok"

    async def aping(self) -> str:
        return await asyncio.to_thread(self.ping)

    def close(self) -> None:  # noqa: B027 (optional hook; most embedders hold nothing)
        """Release connections (httpx clients)."""


def parse_retry_after(value: str | None, cap: float = 60.0) -> float | None:
    """``Retry-After`` in seconds (delta form only), capped so a server cannot stall a worker."""
    if not value:
        return None
    try:
        return max(0.0, min(float(value), cap))
    except ValueError:
        return None


def raise_for_response(name: str, response: httpx.Response) -> None:
    """Map an HTTP answer to transient (429, 5xx) or permanent (other 4xx) errors."""
    if response.is_success:
        return
    detail = response.text[:300].strip()
    message = f"{name} answered {response.status_code}: {detail}"
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientEmbedError(
            message, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    raise PermanentEmbedError(message)


def parse_json(name: str, response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError as error:
        raise PermanentEmbedError(f"{name} answered with invalid JSON: {error}") from None
    if not isinstance(data, dict):
        raise PermanentEmbedError(f"{name} answered with unexpected JSON")
    return data
