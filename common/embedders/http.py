"""Shared plumbing of the embedders that talk HTTP (Ollama, OpenAI-compatible)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx

from common.embedders.base import (
    Embedder,
    TransientEmbedError,
    parse_json,
    raise_for_response,
)


class HttpEmbedder(Embedder):
    """One POST with all the inputs; a sync client for workers, an async one for the gateway."""

    path: str = ""

    def __init__(
        self, model: str, dim: int, base_url: str, timeout: float, headers: dict[str, str]
    ) -> None:
        super().__init__(model, dim)
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._headers = headers
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    @abstractmethod
    def payload(self, texts: Sequence[str]) -> dict[str, Any]: ...

    @abstractmethod
    def vectors(self, data: dict[str, Any]) -> list[list[float]]: ...

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url, timeout=self._timeout, headers=self._headers
            )
        return self._client

    @property
    def aclient(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                base_url=self.base_url, timeout=self._timeout, headers=self._headers
            )
        return self._aclient

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            response = self.client.post(self.path, json=self.payload(texts))
        except httpx.HTTPError as error:
            raise TransientEmbedError(f"{self.name} at {self.base_url}: {error!r}") from None
        raise_for_response(self.name, response)
        return self.vectors(parse_json(self.name, response))

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            response = await self.aclient.post(self.path, json=self.payload(texts))
        except httpx.HTTPError as error:
            raise TransientEmbedError(f"{self.name} at {self.base_url}: {error!r}") from None
        raise_for_response(self.name, response)
        return self.check(texts, self.vectors(parse_json(self.name, response)))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
