"""The local model on ONNX Runtime (``EMBEDDER=local``, ``LOCAL_RUNTIME=onnx|onnx-int8``).

Same model, same vectors as the PyTorch runtime (``common/embedders/local.py``): the shipped
all-MiniLM-L6-v2 exported once to ONNX (``onnx_export.py``), fed by the model's own tokenizer
(``tokenizer.py``, cut at 256 word pieces as sentence-transformers cuts), mean-pooled and
normalised inside the graph. This module never imports torch: a missing or damaged export is
made by a child process (``python -m common.embedders.onnx_export``), so the gateway, which
embeds every query, keeps torch out of its memory and its start-up.

Texts are encoded in batches of 64 sorted by length (as sentence-transformers does), so a
batch pads to its own longest text, not to the call's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.embedders.base import Embedder, PermanentEmbedError
from common.embedders.onnx_export import Variant, cached_path, is_intact

BATCH = 64


def default_cache_dir() -> Path:
    """``LOCAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/eventsearch`` (``~/.cache/eventsearch``)."""
    configured = os.environ.get("LOCAL_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eventsearch"


def model_file(cache_dir: Path, model_path: Path, variant: Variant) -> Path:
    """The intact cached export, made by a child process when it is missing or damaged."""
    path = cached_path(cache_dir, model_path, variant)
    if is_intact(path):
        return path
    command = [sys.executable, "-m", "common.embedders.onnx_export", "--variant", variant]
    command += ["--cache-dir", str(cache_dir), "--model-path", str(model_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if run.returncode != 0 or not is_intact(path):
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise PermanentEmbedError(f"ONNX export of the local model failed: {' | '.join(tail)}")
    return path


class OnnxEmbedder(Embedder):
    """all-MiniLM-L6-v2 on ONNX Runtime, fp32 (exact) or int8 (MatMul weights, per channel)."""

    name = "local"

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        variant: Variant = "fp32",
        threads: int = 0,
        cache_dir: Path | None = None,
        model_path: Path | None = None,
    ) -> None:
        super().__init__(model, dim)
        self.variant: Variant = variant
        self.threads = threads
        self.cache_dir = cache_dir or default_cache_dir()
        self._model_path = model_path
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Export (first time only), then open the session; idempotent and thread-safe."""
        with self._lock:
            if self._session is None:
                if self.model != "all-MiniLM-L6-v2":
                    raise PermanentEmbedError(
                        f"EMBEDDER=local ships only all-MiniLM-L6-v2, not {self.model!r}"
                    )
                import onnxruntime

                from common.embedders.tokenizer import load_tokenizer, local_model_path

                model_path = self._model_path or local_model_path()
                path = model_file(self.cache_dir, model_path, self.variant)
                options = onnxruntime.SessionOptions()
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.intra_op_num_threads = self.threads  # 0: ONNX Runtime's choice (cores)
                options.inter_op_num_threads = 1
                self._tokenizer = load_tokenizer(model_path, truncate=True)
                self._session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
        return self._session

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return self._session.run(["sentence_embedding"], feeds)[0]

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        rows: list[list[float]] = [[] for _ in texts]
        with self._lock:  # one inference at a time per process: threads are set per session
            for start in range(0, len(order), BATCH):
                picked = order[start : start + BATCH]
                for i, vector in zip(picked, self._run([texts[i] for i in picked]), strict=True):
                    rows[i] = vector.tolist()
        return rows
