"""Write a retrieval benchmark in the BEIR layout from the docstrings of Python's standard
library and installed packages, for ``eventsearch eval`` where no public dataset is at hand.

Each documented function or class whose docstring has a summary paragraph and a body of at
least ``--min-words`` words becomes a document (its body); its summary line becomes the
query whose one relevant document is that body. Summaries that occur twice ("Return the
value.") and bodies that occur twice are left out, so every query has one right answer.
Sources are parsed with ``ast``, never imported. Deterministic for a given Python.

    python bench/docstring_beir.py /tmp/pydoc-beir --documents 5000 --queries 500
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sysconfig
from collections import Counter
from pathlib import Path


def docstrings(root: Path) -> list[tuple[str, str, str]]:
    """(qualified name, summary line, body) for each documented def or class under root."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        skip = ("test", "tests", "testing", "idlelib", "site-packages", "lib2to3", "eventsearch")
        if any(p in skip for p in parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            doc = ast.get_docstring(node)
            if not doc or node.name.startswith("_"):
                continue
            # PEP 257: a summary paragraph, a blank line, then the body.
            summary, _, body = doc.strip().partition("\n\n")
            summary = re.sub(r"\s+", " ", summary).strip()
            body = re.sub(r"\s+", " ", body).strip()
            if summary and body and not summary.endswith(":"):
                found.append((f"{root.name}/{'/'.join(parts)}:{node.name}", summary, body))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--min-words", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()

    paths = sysconfig.get_paths()
    # The standard library, then the packages installed beside it (eventsearch's own
    # dependencies when run from its virtualenv): real English written by many hands.
    items = docstrings(Path(paths["stdlib"])) + docstrings(Path(paths["purelib"]))
    summaries = Counter(s.lower() for _, s, _ in items)
    bodies = Counter(b for _, _, b in items)
    usable = [
        item
        for item in items
        if summaries[item[1].lower()] == 1
        and bodies[item[2]] == 1
        and len(item[2].split()) >= args.min_words
        and 4 <= len(item[1].split()) <= 30
    ]
    rng = random.Random(args.seed)
    docs = rng.sample(usable, min(args.documents, len(usable)))
    asked = rng.sample(docs, min(args.queries, len(docs)))
    (args.out / "qrels").mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w") as corpus:
        for i, (_, _, body) in enumerate(docs):
            corpus.write(json.dumps({"_id": f"d{i}", "title": "", "text": body}) + "\n")
    index = {name: i for i, (name, _, _) in enumerate(docs)}
    with (args.out / "queries.jsonl").open("w") as queries:
        for j, (_, summary, _) in enumerate(asked):
            queries.write(json.dumps({"_id": f"q{j}", "text": summary}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"q{j}\td{index[name]}\t1" for j, (name, _, _) in enumerate(asked)]
    (args.out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    print(f"{len(docs)} documents, {len(asked)} queries ({len(usable)} usable) in {args.out}")


if __name__ == "__main__":
    main()
