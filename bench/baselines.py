"""Reference figures for ``eventsearch eval``, outside the service, on the same dataset:

- ``exact``: exact (brute-force) cosine search with all-MiniLM-L6-v2, embedding corpus and
  queries in-process with the same embedder class the workers use: what the pipeline's
  dense mode must match (the issue's goal: within 0.005 nDCG@10).
- ``bm25``: Okapi BM25 (rank-bm25, k1=1.5, b=0.75) over lowercased word tokens without
  stop words: the lexical baseline hybrid must beat.

Scored by the same function as ``eventsearch eval`` (pytrec_eval).

    pip install rank-bm25   # bench only, not a dependency of the service
    python bench/baselines.py /tmp/pydoc-beir --out baselines.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from cli.beir import load, score
from common.embedders.local import LocalEmbedder

STOP = {
    *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in"),
    *("is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were"),
    *("will", "with", "which", "not", "can", "if", "into", "than", "then", "there", "they"),
}


def tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", text.lower()) if w not in STOP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = load(args.directory)
    doc_ids, texts = list(data.corpus), list(data.corpus.values())
    qids, queries = list(data.queries), list(data.queries.values())
    figures: dict[str, dict[str, float]] = {}

    started = time.perf_counter()
    embedder = LocalEmbedder("all-MiniLM-L6-v2", 384)
    docs = np.asarray(embedder.embed(texts), dtype=np.float32)
    asked = np.asarray(embedder.embed(queries), dtype=np.float32)
    best = np.argsort(-(asked @ docs.T), axis=1)[:, : args.k]  # unit vectors: dot = cosine
    run = {q: [doc_ids[j] for j in row] for q, row in zip(qids, best, strict=True)}
    figures["exact"] = {**score(data.qrels, run, args.k), "s": time.perf_counter() - started}

    from rank_bm25 import BM25Okapi

    started = time.perf_counter()
    bm25 = BM25Okapi([tokens(t) for t in texts])
    run = {}
    for qid, query in zip(qids, queries, strict=True):
        top = np.argsort(-bm25.get_scores(tokens(query)))[: args.k]
        run[qid] = [doc_ids[j] for j in top]
    figures["bm25"] = {**score(data.qrels, run, args.k), "s": time.perf_counter() - started}

    for name, values in figures.items():
        print(
            f"{name:6} nDCG@{args.k} {values[f'ndcg@{args.k}']:.4f}  "
            f"recall@{args.k} {values[f'recall@{args.k}']:.4f}  ({values['s']:.0f} s)"
        )
    if args.out:
        args.out.write_text(json.dumps({"dataset": data.name, **figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
