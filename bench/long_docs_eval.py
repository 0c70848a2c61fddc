"""``python -m bench.long_docs --eval``: long documents through the whole pipeline against exact
search on their short originals (issue 14's goal: dense within 0.03 nDCG@10 of exact search on
the short set, hybrid at least as good as dense and keyword).

Without ``--source`` it first writes the README's docstring benchmark
(``bench/docstring_beir.py``, 5,000 documents, 500 queries, seed 8); then it draws a subset
(``--documents``, ``--queries``) and joins it into long documents (``bench/long_docs.py``),
scores the references in-process (exact cosine search with the shipped model on the short
subset, and on the long set as the model reads it; BM25 where rank-bm25 is installed), and
runs ``eventsearch eval`` on the long set (and the short subset, unless ``--no-short``)
against its own PostgreSQL, Redis, gateway and a worker with ``EMBEDDER=local``. Figures,
lengths, the command and the machine's load go to ``--out`` and are printed.

    python -m bench.long_docs --eval --documents 2000 --queries 200 --out long-docs.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import long_docs
from cli.beir import load, score

K = 10
DOCSTRING_SET = ("--documents", "5000", "--queries", "500")


def _digest(directory: Path) -> str:
    files = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
    return hashlib.sha256(b"".join((directory / f).read_bytes() for f in files)).hexdigest()


def exact(directory: Path) -> dict[str, float]:
    """Exact cosine search with the workers' local embedder, in-process: what the index
    should match (the model reads each text's first 256 word pieces). Kept beside the set in
    ``exact.json`` with the files' digest, so a second run on the same set (the "after" of a
    before/after pair) does not embed it again."""
    cache = directory / "exact.json"
    digest = _digest(directory)
    if cache.exists() and (kept := json.loads(cache.read_text())).get("digest") == digest:
        return {k: v for k, v in kept.items() if k != "digest"}
    figures = _exact(directory)
    cache.write_text(json.dumps({**figures, "digest": digest}))
    return figures


def _exact(directory: Path) -> dict[str, float]:
    from common.embedders.local import LocalEmbedder

    data = load(directory)
    doc_ids, qids = list(data.corpus), list(data.queries)
    embedder = LocalEmbedder("all-MiniLM-L6-v2", 384)
    started = time.perf_counter()
    docs = np.asarray(embedder.embed(list(data.corpus.values())), dtype=np.float32)
    asked = np.asarray(embedder.embed(list(data.queries.values())), dtype=np.float32)
    best = np.argsort(-(asked @ docs.T), axis=1)[:, :K]  # unit vectors: dot = cosine
    run = {q: [doc_ids[j] for j in row] for q, row in zip(qids, best, strict=True)}
    return {**score(data.qrels, run, K), "s": round(time.perf_counter() - started, 1)}


def bm25(directory: Path) -> dict[str, float] | None:
    """rank-bm25's Okapi BM25 as bench/baselines.py runs it, or None where not installed."""
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return None
    from bench.baselines import tokens

    data = load(directory)
    doc_ids = list(data.corpus)
    index = BM25Okapi([tokens(t) for t in data.corpus.values()])
    run = {
        q: [doc_ids[j] for j in np.argsort(-index.get_scores(tokens(text)))[:K]]
        for q, text in data.queries.items()
    }
    return score(data.qrels, run, K)


def pipeline(
    directories: Sequence[Path],
    root: Path,
    stall_timeout: float,
    extra: dict[str, str],
    linear: bool = False,
) -> dict[str, Any]:
    """``eventsearch eval`` on each directory against one fresh stack (with ``extra`` in the
    gateway's and worker's environment); its JSON per set. ``linear``: hybrid again with
    ``--fusion linear`` on the same stored corpus, as mode ``hybrid_linear``."""
    from bench.services import services

    figures: dict[str, Any] = {}
    with services(root / "stack") as svc:
        _, key = svc.database("bench_long")
        env = svc.env("bench_long", 5, EMBEDDER="local", EMBED_BATCH_SIZE="64", **extra)
        env.pop("EMBED_MODEL")  # the local embedder's default: the shipped model
        svc.worker(env, "bench-worker-long", concurrency=1)
        gateway = svc.gateway(env, "bench-gateway-long")
        for directory in directories:
            out = root / f"eval-{directory.name}.json"
            base = [str(Path(sys.executable).parent / "eventsearch"), "eval", str(directory)]
            base += ["--url", gateway.url, "--api-key", key]
            base += ["--stall-timeout", str(stall_timeout)]
            started = time.perf_counter()
            subprocess.run(
                [*base, "--out", str(out)], check=True, env={**os.environ, "NO_COLOR": "1"}
            )
            report = json.loads(out.read_text())
            report["wall_s"] = round(time.perf_counter() - started, 1)
            if linear:
                again = root / f"eval-{directory.name}-linear.json"
                fused = [*base, "--out", str(again), "--modes", "hybrid", "--fusion", "linear"]
                subprocess.run(fused, check=True, env={**os.environ, "NO_COLOR": "1"})
                report["modes"]["hybrid_linear"] = json.loads(again.read_text())["modes"]["hybrid"]
            figures[directory.name] = report
    return figures


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's two goals, from this run's figures."""
    modes = results["pipeline"].get(results["long"]["name"], {}).get("modes", {})
    dense = modes.get("dense", {}).get(f"ndcg@{K}")
    keyword = modes.get("keyword", {}).get(f"ndcg@{K}")
    hybrid = modes.get("hybrid", {}).get(f"ndcg@{K}")
    reference = results["references"]["exact_short"][f"ndcg@{K}"]
    goals: dict[str, Any] = {"exact_short_ndcg": round(reference, 4)}
    if dense is not None:
        goals["dense_long_minus_exact_short"] = round(dense - reference, 4)
        goals["dense_within_0.03"] = dense >= reference - 0.03
    if None not in (dense, keyword, hybrid):
        goals["hybrid_at_least_dense_and_keyword"] = hybrid >= max(dense, keyword)
    linear = modes.get("hybrid_linear", {}).get(f"ndcg@{K}")
    if None not in (dense, keyword, linear):
        goals["hybrid_linear_at_least_dense_and_keyword"] = linear >= max(dense, keyword)
    return goals


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.long_docs --eval")
    parser.add_argument("--source", type=Path, help="a short BEIR-layout set (default: docstrings)")
    parser.add_argument("--work", type=Path, help="where the sets go (default: a temp dir)")
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--parts", type=long_docs.parse_range, default=(8, 48))
    parser.add_argument("--tokens", type=long_docs.parse_range, default=(2000, 4000))
    parser.add_argument("--mix", choices=["random", "topic"], default="random")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--no-short", action="store_true", help="skip the short set's pipeline")
    parser.add_argument("--no-pipeline", action="store_true", help="references only")
    parser.add_argument(
        "--linear", action="store_true", help="also hybrid with fusion linear (hybrid_linear)"
    )
    parser.add_argument("--stall-timeout", type=float, default=600.0)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the stack's gateway and worker, e.g. CHUNK_TOKENS=128 (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=Path("long-docs-results.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    work = args.work or Path(tempfile.mkdtemp(prefix="eventsearch-longdocs-"))
    work.mkdir(parents=True, exist_ok=True)
    source = args.source
    if source is None:
        source = work / "pydoc-beir"
        if not (source / "corpus.jsonl").exists():
            script = Path(__file__).with_name("docstring_beir.py")
            subprocess.run([sys.executable, str(script), str(source), *DOCSTRING_SET], check=True)
    name = f"{source.resolve().name}-{args.mix}-s{args.seed}"
    long_dir, short_dir = work / f"{name}-long", work / f"{name}-short"
    long, short = long_docs.join(
        load(source),
        documents=args.documents,
        queries=args.queries,
        parts=args.parts,
        budget=args.tokens,
        mix=args.mix,
        seed=args.seed,
    )
    long_docs.write(long, long_dir)
    long_docs.write(short, short_dir)
    print(f"long-docs: {json.dumps(long_docs.lengths(long))}", flush=True)

    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.long_docs --eval", *(argv or sys.argv[2:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(source),
        "long": {"name": long_dir.name, **long_docs.lengths(long)},
        "short": {"name": short_dir.name, "documents": len(short.corpus)},
    }
    print("long-docs: exact search in-process ...", flush=True)
    references: dict[str, Any] = {"exact_short": exact(short_dir), "exact_long": exact(long_dir)}
    for name_, directory in (("bm25_short", short_dir), ("bm25_long", long_dir)):
        if (figures := bm25(directory)) is not None:
            references[name_] = figures
    results["references"] = references
    results["pipeline"] = {}
    if not args.no_pipeline:
        sets = [long_dir] if args.no_short else [long_dir, short_dir]
        extra = dict(item.split("=", 1) for item in args.env)
        results["settings"] = extra
        results["pipeline"] = pipeline(sets, work, args.stall_timeout, extra, args.linear)
    results["goals"] = verdict(results)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print(f"\n{'figure':<44}nDCG@{K}  recall@{K}")
    for ref, figures in references.items():
        print(f"{'in-process ' + ref:<44}{figures[f'ndcg@{K}']:.4f}   {figures[f'recall@{K}']:.4f}")
    for set_name, report in results["pipeline"].items():
        for mode, figures in report["modes"].items():
            label = f"eval {set_name} {mode}"
            print(f"{label:<44}{figures[f'ndcg@{K}']:.4f}   {figures[f'recall@{K}']:.4f}")
    print(f"goals: {json.dumps(results['goals'])}")
    print(f"machine: {json.dumps(results['machine'])}; {results['seconds']} s; -> {args.out}")
