"""Dense retrieval quality of each runtime of the local model, against PyTorch's, same data.

``python -m bench.quality DIR [DIR ...] [--runtimes torch,onnx,onnx-int8] [--out quality.json]``

For each BEIR-layout directory (the README's ``eval`` sets: ``bench/docstring_beir.py``; a
public set sampled by ``bench/beir_subset.py``) it embeds corpus and queries with each runtime
and scores exact (brute-force) cosine search with pytrec_eval, as ``bench/baselines.py`` does
for the pipeline's reference. Exact search isolates the runtime: the HNSW index and the
pipeline are the same whichever runtime made the vectors. It prints nDCG@10 and recall@10 per
runtime and each ONNX runtime's nDCG@10 difference to torch (the goal: within 0.005), plus the
mean cosine of its vectors to torch's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.runtimes import RUNTIMES, build
from cli.beir import load, score


def evaluate(
    directory: Path,
    runtimes: tuple[str, ...],
    threads: int,
    k: int = 10,
    vectors_dir: Path | None = None,
) -> dict[str, float]:
    data = load(directory)
    doc_ids, texts = list(data.corpus), list(data.corpus.values())
    qids, queries = list(data.queries), list(data.queries.values())
    figures: dict[str, float] = {"documents": len(texts), "queries": len(queries)}
    vectors: dict[str, np.ndarray] = {}
    for runtime in runtimes:
        started = time.perf_counter()
        cached = vectors_dir / f"{data.name}.{runtime}.npz" if vectors_dir else None
        if cached and cached.exists():  # a rerun (another runtime, another k) reuses them
            stored = np.load(cached)
            docs, asked = stored["docs"], stored["queries"]
        else:
            embedder = build(runtime, threads)
            docs = np.asarray(embedder.embed(texts), dtype=np.float32)
            asked = np.asarray(embedder.embed(queries), dtype=np.float32)
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cached, docs=docs, queries=asked)
        vectors[runtime] = docs
        best = np.argsort(-(asked @ docs.T), axis=1)[:, :k]  # unit vectors: dot = cosine
        run = {q: [doc_ids[j] for j in row] for q, row in zip(qids, best, strict=True)}
        scores = score(data.qrels, run, k)
        figures[f"{runtime}_ndcg@{k}"] = round(scores[f"ndcg@{k}"], 4)
        figures[f"{runtime}_recall@{k}"] = round(scores[f"recall@{k}"], 4)
        figures[f"{runtime}_s"] = round(time.perf_counter() - started, 1)
        print(f"  {data.name} {runtime}: {scores}", flush=True)
    if "torch" in vectors:
        for runtime in runtimes:
            if runtime != "torch":
                delta = figures[f"{runtime}_ndcg@{k}"] - figures[f"torch_ndcg@{k}"]
                figures[f"{runtime}_ndcg_delta"] = round(delta, 4)
                cosine = (vectors[runtime] * vectors["torch"]).sum(1)
                figures[f"{runtime}_mean_cosine"] = round(float(cosine.mean()), 4)
                figures[f"{runtime}_min_cosine"] = round(float(cosine.min()), 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", type=Path, nargs="+")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--vectors", type=Path, help="keep each runtime's vectors here (.npz)")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for directory in args.directories:
        runtimes = tuple(args.runtimes.split(","))
        results[directory.name] = evaluate(
            directory, runtimes, args.threads, vectors_dir=args.vectors
        )
        print(json.dumps({directory.name: results[directory.name]}, indent=1), flush=True)
    results["machine"] = {"load_average_1m": round(os.getloadavg()[0], 2)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
