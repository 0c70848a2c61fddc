"""A retrieval benchmark in the BEIR layout, and its scoring.

``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, after a header line).
nDCG@k and recall@k come from pytrec_eval, the Python binding of NIST's trec_eval, which is
what BEIR itself scores with.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Dataset:
    name: str
    corpus: dict[str, str]  # doc id -> the text to index (title, then text)
    queries: dict[str, str]  # only queries that have judgements in the split
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def load(directory: Path, split: str = "test") -> Dataset:
    """Read a BEIR dataset; raises ``FileNotFoundError`` or ``ValueError`` when malformed."""
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels" / f"{split}.tsv").open(encoding="utf-8", newline="") as tsv:
        rows = csv.reader(tsv, delimiter="\t")
        header = next(rows, None)
        if header is None or len(header) < 3:
            raise ValueError(f"qrels/{split}.tsv: expected query-id, corpus-id, score")
        for row in rows:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    corpus = {}
    for doc in _jsonl(directory / "corpus.jsonl"):
        title, body = str(doc.get("title") or "").strip(), str(doc.get("text") or "").strip()
        corpus[str(doc["_id"])] = f"{title}\n{body}" if title else body
    queries = {
        str(q["_id"]): str(q["text"])
        for q in _jsonl(directory / "queries.jsonl")
        if str(q["_id"]) in qrels
    }
    return Dataset(directory.resolve().name, corpus, queries, qrels)


def score(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Sequence[str]], k: int = 10
) -> dict[str, float]:
    """Mean nDCG@k and recall@k over every judged query (a query without results scores 0).
    ``run`` maps a query id to its doc ids, best first."""
    import pytrec_eval

    judged = {q: dict(docs) for q, docs in qrels.items() if any(v > 0 for v in docs.values())}
    # trec_eval orders by score: give strictly decreasing scores so ties cannot reorder.
    ranked = {
        q: {doc: float(len(docs) - i) for i, doc in enumerate(docs)}
        for q, docs in run.items()
        if q in judged and docs
    }
    evaluator = pytrec_eval.RelevanceEvaluator(judged, {f"ndcg_cut.{k}", f"recall.{k}"})
    per_query = evaluator.evaluate(ranked)
    n = len(judged) or 1
    return {
        f"ndcg@{k}": sum(m[f"ndcg_cut_{k}"] for m in per_query.values()) / n,
        f"recall@{k}": sum(m[f"recall_{k}"] for m in per_query.values()) / n,
    }
