"""A sample of a public BEIR-layout dataset, itself in the BEIR layout.

``python bench/beir_subset.py SOURCE OUT [--queries 300] [--documents 5000] [--seed 8]``

``SOURCE`` is a BEIR directory (``corpus.jsonl``, ``queries.jsonl``, ``qrels/test.tsv``), or
``GIT_DIR:PATH`` to read one straight out of a git snapshot of a public repository that carries
BEIR data (a bare clone is enough; nothing is checked out). The sample keeps up to ``--queries``
judged queries (chosen by ``--seed``), every document judged for them, and other documents of
the corpus up to ``--documents`` (distractors, also by seed), so exact search over the sample
is a real retrieval task and not a lookup among the relevant ones only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import subprocess
from pathlib import Path


def _read(source: str, name: str) -> str:
    if ":" in source and not Path(source).exists():
        git_dir, _, prefix = source.partition(":")
        path = f"{prefix.rstrip('/')}/{name}" if prefix else name
        return subprocess.run(
            ["git", "--git-dir", git_dir, "show", f"HEAD:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return (Path(source) / name).read_text(encoding="utf-8")


def _jsonl(text: str) -> list[dict]:
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and other line breaks.
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def subset(source: str, out: Path, queries: int, documents: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    rows = list(csv.reader(io.StringIO(_read(source, "qrels/test.tsv")), delimiter="\t"))
    # Some copies leave out the header line; BEIR's readers expect one.
    has_header = bool(rows) and not rows[0][-1].strip().lstrip("-").isdigit()
    header = rows[0] if has_header else ["query-id", "corpus-id", "score"]
    judged = [r for r in rows[int(has_header) :] if len(r) >= 3]
    relevant = {r[0] for r in judged if float(r[2]) > 0}
    all_queries = _jsonl(_read(source, "queries.jsonl"))
    usable = sorted((q for q in all_queries if str(q["_id"]) in relevant), key=lambda q: q["_id"])
    chosen = rng.sample(usable, min(queries, len(usable)))
    chosen_ids = {str(q["_id"]) for q in chosen}
    kept_rows = [r for r in judged if r[0] in chosen_ids]
    needed = {r[1] for r in kept_rows}
    corpus = _jsonl(_read(source, "corpus.jsonl"))
    judged_docs = [d for d in corpus if str(d["_id"]) in needed]
    others = [d for d in corpus if str(d["_id"]) not in needed]
    fill = rng.sample(others, max(0, min(len(others), documents - len(judged_docs))))
    docs = judged_docs + fill
    present = {str(d["_id"]) for d in docs}
    kept_rows = [r for r in kept_rows if r[1] in present]

    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query in chosen:
            handle.write(json.dumps(query, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header[:3])
        writer.writerows(r[:3] for r in kept_rows)
    return {"queries": len(chosen), "documents": len(docs), "judgements": len(kept_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a BEIR directory, or GIT_DIR:PATH in a git snapshot")
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    counts = subset(args.source, args.out, args.queries, args.documents, args.seed)
    print(f"{args.out}: {counts}")


if __name__ == "__main__":
    main()
