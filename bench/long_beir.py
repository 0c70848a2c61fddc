"""Make a long-document variant of a BEIR-layout benchmark: every ``--join`` documents of the
corpus (in a seeded random order) become one document, their texts joined by blank lines,
and a query's judgement moves to the long document holding its relevant one ("relevant if
any part is"). The queries stay as they are, so the figures of ``eventsearch eval`` on both
sets compare directly: a search that reads only the start of a document finds a query's
answer in one join of ``--join``, while one that reads every part finds it wherever it is.

    python bench/long_beir.py /tmp/pydoc-beir /tmp/pydoc-long --join 5
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from cli.beir import load


def make_long(source: Path, out: Path, join: int, seed: int = 8, split: str = "test") -> int:
    """Write the long variant of ``source`` to ``out``; returns its number of documents."""
    data = load(source, split)
    ids = sorted(data.corpus)
    random.Random(seed).shuffle(ids)
    groups = [ids[i : i + join] for i in range(0, len(ids), join)]
    home = {doc: f"long{n}" for n, group in enumerate(groups) for doc in group}
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for n, group in enumerate(groups):
            text = "\n\n".join(data.corpus[doc] for doc in group)
            corpus.write(json.dumps({"_id": f"long{n}", "title": "", "text": text}) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for qid, query in data.queries.items():
            queries.write(json.dumps({"_id": qid, "text": query}) + "\n")
    with (out / "qrels" / f"{split}.tsv").open("w", encoding="utf-8", newline="") as tsv:
        writer = csv.writer(tsv, delimiter="\t")
        writer.writerow(["query-id", "corpus-id", "score"])
        for qid, judged in data.qrels.items():
            moved: dict[str, int] = {}
            for doc, grade in judged.items():
                if doc in home:
                    moved[home[doc]] = max(moved.get(home[doc], 0), grade)
            for doc, grade in moved.items():
                writer.writerow([qid, doc, grade])
    return len(groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--join", type=int, default=5, help="documents joined into one")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    n = make_long(args.source, args.out, args.join, args.seed, args.split)
    print(f"{args.out}: {n} documents of {args.join} joined")


if __name__ == "__main__":
    main()
