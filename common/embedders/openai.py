"""Any OpenAI-compatible ``POST /v1/embeddings`` (vLLM, TEI, llama.cpp, LM Studio, OpenAI)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.embedders.base import PermanentEmbedError
from common.embedders.http import HttpEmbedder


class OpenAIEmbedder(HttpEmbedder):
    name = "openai"
    path = "/embeddings"

    def __init__(
        self, model: str, dim: int, base_url: str, timeout: float, api_key: str | None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(model, dim, base_url, timeout, headers=headers)

    def payload(self, texts: Sequence[str]) -> dict[str, Any]:
        return {"model": self.model, "input": list(texts), "encoding_format": "float"}

    def vectors(self, data: dict[str, Any]) -> list[list[float]]:
        items = data.get("data")
        if not isinstance(items, list):
            raise PermanentEmbedError("openai answer has no 'data' list")
        # The spec gives each item its index; servers may answer out of order.
        try:
            ordered = sorted(items, key=lambda item: item["index"])
            return [item["embedding"] for item in ordered]
        except (KeyError, TypeError):
            raise PermanentEmbedError("openai answer items lack 'index' or 'embedding'") from None

    def ping(self) -> str:
        self.client.get("/models", timeout=2.0).raise_for_status()
        return "ok"

    async def aping(self) -> str:
        response = await self.aclient.get("/models", timeout=2.0)
        response.raise_for_status()
        return "ok"
