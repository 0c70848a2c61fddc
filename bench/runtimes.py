"""Texts per second of each runtime of the local model against bare PyTorch encode, same run.

``python -m bench.runtimes [--texts 1000] [--threads 2] [--out runtimes.json]`` embeds the same
texts with sentence-transformers (``torch``, batches of 64, the way ``LocalEmbedder`` calls it)
and with each ONNX runtime, twice each, interleaved, keeping each one's best pass, on two
workloads: short texts (~20 words, bench/pipeline.py's events) and long ones (cut at 256 word
pieces). It prints ratios to torch and the mean cosine of each runtime's vectors to torch's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.pipeline import _texts
from common.embedders.base import Embedder
from common.embedders.local import LocalEmbedder
from common.embedders.onnx import OnnxEmbedder
from common.embedders.onnx_export import Variant

RUNTIMES = ("torch", "onnx", "onnx-int8")


def long_texts(n: int) -> list[str]:
    """Texts longer than the model reads (it cuts at 256 word pieces), all different."""
    base = _texts(n)
    return [" ".join([base[i]] + [base[(i * 7 + k) % n] for k in range(1, 14)]) for i in range(n)]


def build(runtime: str, threads: int, cache_dir: Path | None = None) -> Embedder:
    if runtime == "torch":
        return LocalEmbedder("all-MiniLM-L6-v2", 384, threads=threads)
    variant: Variant = "int8" if runtime == "onnx-int8" else "fp32"
    return OnnxEmbedder(
        "all-MiniLM-L6-v2", 384, variant=variant, threads=threads, cache_dir=cache_dir
    )


def rate(embedder: Embedder, texts: list[str], batch: int = 64) -> tuple[float, np.ndarray]:
    """Texts per second of ``embedder`` over ``texts`` in calls of ``batch`` (the worker's)."""
    vectors = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        vectors.extend(embedder.embed(texts[start : start + batch]))
    return len(texts) / (time.perf_counter() - started), np.asarray(vectors)


def measure(
    n: int, threads: int, runtimes: tuple[str, ...] = RUNTIMES, passes: int = 2
) -> dict[str, float]:
    embedders = {name: build(name, threads) for name in runtimes}
    for embedder in embedders.values():
        embedder.embed(["warm-up"])
    figures: dict[str, float] = {}
    for label, texts in (("short", _texts(n)), ("long", long_texts(n))):
        best = dict.fromkeys(runtimes, 0.0)
        vectors: dict[str, np.ndarray] = {}
        for _ in range(passes):  # interleaved, so a busy moment of the machine hits all
            for name, embedder in embedders.items():
                speed, vectors[name] = rate(embedder, texts)
                best[name] = max(best[name], speed)
        for name in runtimes:
            figures[f"{label}_{name}_texts_per_s"] = round(best[name], 1)
            if name != "torch":
                figures[f"{label}_{name}_vs_torch"] = round(best[name] / best["torch"], 2)
                cosine = (vectors[name] * vectors["torch"]).sum(1)
                figures[f"{label}_{name}_mean_cosine"] = round(float(cosine.mean()), 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads, every runtime")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    figures = measure(args.texts, args.threads, tuple(args.runtimes.split(",")))
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    for key, value in figures.items():
        print(f"{key:34} {value}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
