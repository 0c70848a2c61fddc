"""Ollama's ``POST /api/embed``: many inputs per call (``{"model", "input": [...]}``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from common.embedders.base import PermanentEmbedError
from common.embedders.http import HttpEmbedder


class OllamaEmbedder(HttpEmbedder):
    name = "ollama"
    path = "/api/embed"

    def __init__(self, model: str, dim: int, base_url: str, timeout: float) -> None:
        super().__init__(model, dim, base_url, timeout, headers={})

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        # truncate=False: an input over the context length is an error we want to see,
        # not a silently shortened vector.
        return {"model": self.model, "input": list(texts), "truncate": False}

    def vectors(self, data: dict[str, Any]) -> list[list[float]]:
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list):
            raise PermanentEmbedError("ollama answer has no 'embeddings' list")
        return embeddings

    def ping(self) -> str:
        self.client.get("/api/version", timeout=2.0).raise_for_status()
        return "ok"

    async def aping(self) -> str:
        response = await self.aclient.get("/api/version", timeout=2.0)
        response.raise_for_status()
        return "ok"


def ollama_answers(base_url: str) -> bool:
    """True when an Ollama server answers at ``base_url`` (used to choose the embedder)."""
    try:
        return httpx.get(base_url.rstrip("/") + "/api/version", timeout=1.0).is_success
    except httpx.HTTPError:
        return False
