"""Embedder clients; ``build_embedder`` picks one from the settings (``EMBEDDER``)."""

from __future__ import annotations

from common.embedders.base import Embedder, EmbedError, PermanentEmbedError, TransientEmbedError
from common.settings import Settings

__all__ = [
    "EmbedError",
    "Embedder",
    "PermanentEmbedError",
    "TransientEmbedError",
    "build_embedder",
]


def build_embedder(settings: Settings, *, local_threads: int | None = None) -> Embedder:
    """The configured embedder. Provider modules are imported here, lazily. ``local_threads``
    overrides ``LOCAL_THREADS`` for the local model (a worker sizes it to its pool)."""
    threads = settings.local_threads if local_threads is None else local_threads
    if settings.embedder == "ollama":
        from common.embedders.ollama import OllamaEmbedder

        return OllamaEmbedder(
            settings.model_name, settings.embed_dim, settings.ollama_url, settings.embed_timeout_s
        )
    if settings.embedder == "openai":
        from common.embedders.openai import OpenAIEmbedder

        return OpenAIEmbedder(
            settings.model_name,
            settings.embed_dim,
            settings.openai_url,
            settings.embed_timeout_s,
            settings.openai_api_key,
        )
    if settings.local_runtime == "torch":
        from common.embedders.local import LocalEmbedder

        return LocalEmbedder(settings.model_name, settings.embed_dim, threads=threads)
    from common.embedders.onnx import OnnxEmbedder

    return OnnxEmbedder(
        settings.model_name,
        settings.embed_dim,
        variant="int8" if settings.local_runtime == "onnx-int8" else "fp32",
        threads=threads,
        cache_dir=settings.local_cache_dir,
    )
