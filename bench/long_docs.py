"""Make a long-document BEIR-layout set from a short one, for ``eventsearch eval`` on long
events (issue 14's goal: dense within 0.03 nDCG@10 of exact search on the short originals).

Several documents of the source set (chosen and ordered by a seed) are joined, by blank lines,
into one long document of about ``--tokens`` word pieces of the shipped model's tokenizer
(``common.embedders.tokenizer.count_tokens``), with between ``--parts`` of them each. A long
document is relevant to a query if any of its parts is, with the highest grade among them.
The queries stay as they are, so a search that reads only the start of a document finds a
query's answer only when it sits in the first part, and one that reads every part finds it
wherever it is.

``--mix random`` (the default) joins documents from anywhere, so one long document mixes
unrelated topics; ``--mix topic`` joins lexical neighbours (a chain of nearest documents by
hashed TF-IDF cosine), so the parts of one long document are about one subject and compete
with each other, which is harder for a search by best chunk.

``--join N`` is the simplest form (it was bench/long_beir.py): every N documents in the
seeded order become one, whatever their length (``--parts N:N`` with no token target).

``--documents``/``--queries`` keep a run small: that many queries are drawn (judged ones
only), all their relevant documents are kept, and other documents fill up to ``--documents``.
``--short-out`` writes the same documents and queries unjoined: the reference the long set is
measured against. Deterministic for a given source, arguments and tokenizer.

    python -m bench.long_docs /tmp/pydoc-beir /tmp/pydoc-long --short-out /tmp/pydoc-short \\
        --documents 2000 --queries 200
    python -m bench.long_docs /tmp/pydoc-beir /tmp/pydoc-long --join 5   # every 5 joined
    python -m bench.long_docs --eval       # the runner: bench/long_docs_eval.py
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cli.beir import Dataset, load

SEPARATOR = "\n\n"  # a paragraph break: where a splitter would end a chunk anyway
HASH_DIMS = 4096
NO_BUDGET = (sys.maxsize, sys.maxsize)  # a token target never reached: groups close by count


@dataclass
class Joined:
    """A long set: its documents, the short ids each was made of (in order), and its qrels."""

    corpus: dict[str, str]
    parts: dict[str, list[str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def choose(
    data: Dataset, documents: int = 0, queries: int = 0, seed: int = 14
) -> tuple[list[str], list[str]]:
    """(document ids, query ids) of the subset to join: ``queries`` judged queries (0: all)
    with every relevant document they have in the corpus, then other documents up to
    ``documents`` (0: all). Both lists are sorted; the draw depends on the seed only."""
    rng = random.Random(seed)
    judged = sorted(
        q
        for q in data.queries
        if any(g > 0 and d in data.corpus for d, g in data.qrels.get(q, {}).items())
    )
    asked = sorted(rng.sample(judged, queries)) if 0 < queries < len(judged) else judged
    needed = {d for q in asked for d, g in data.qrels[q].items() if g > 0 and d in data.corpus}
    others = sorted(set(data.corpus) - needed)
    room = max(documents - len(needed), 0) if documents else len(others)
    kept = needed | set(rng.sample(others, min(room, len(others))))
    return sorted(kept), asked


def hash_word(word: str) -> int:
    """FNV-1a of the word's UTF-8 bytes: the same bucket in every process (``hash`` is salted)."""
    h = 0xCBF29CE484222325
    for byte in word.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hashed_tfidf(texts: Sequence[str]) -> np.ndarray:
    """Unit rows of hashed, idf-weighted word counts: enough to tell lexical neighbours."""
    rows = np.zeros((len(texts), HASH_DIMS), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z]{3,}", text.lower()):
            rows[i, hash_word(word) % HASH_DIMS] += 1
    idf = np.log((1 + len(texts)) / (1 + (rows > 0).sum(axis=0))) + 1
    weighted = np.log1p(rows) * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    return weighted / np.where(norms == 0, 1, norms)


def order(ids: Sequence[str], texts: Mapping[str, str], mix: str, seed: int) -> list[str]:
    """The documents in joining order: a seeded shuffle (``random``), or (``topic``) a chain
    from a seeded start that always goes on to the most similar document not yet taken."""
    rng = random.Random(seed + 1)
    shuffled = list(ids)
    rng.shuffle(shuffled)
    if mix == "random" or len(shuffled) < 3:
        return shuffled
    if mix != "topic":
        raise ValueError(f"mix must be random or topic, not {mix!r}")
    vectors = hashed_tfidf([texts[d] for d in shuffled])
    taken = np.zeros(len(shuffled), dtype=bool)
    chain, current = [0], 0
    taken[0] = True
    for _ in range(len(shuffled) - 1):
        similar = vectors @ vectors[current]
        similar[taken] = -np.inf
        current = int(np.argmax(similar))  # ties: the lowest index, so still deterministic
        taken[current] = True
        chain.append(current)
    return [shuffled[i] for i in chain]


def group(
    ordered: Sequence[str],
    tokens: Mapping[str, int],
    parts: tuple[int, int],
    budget: tuple[int, int],
    seed: int,
) -> list[list[str]]:
    """Consecutive runs of ``ordered``: each closes at a token target drawn from ``budget``
    once it has ``parts[0]`` documents, or at ``parts[1]`` documents, or before a document
    that would take it over ``budget[1]``. A short last run joins the one before it."""
    rng = random.Random(seed + 2)
    groups: list[list[str]] = []
    current: list[str] = []
    total, target = 0, rng.randint(*budget)
    for doc in ordered:
        if len(current) >= parts[0] and total + tokens[doc] > budget[1]:
            groups.append(current)  # full enough: the next one would overshoot the budget
            current, total, target = [], 0, rng.randint(*budget)
        current.append(doc)
        total += tokens[doc]
        if len(current) >= parts[1] or (len(current) >= parts[0] and total >= target):
            groups.append(current)
            current, total, target = [], 0, rng.randint(*budget)
    if current:
        if groups and len(current) < parts[0]:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return groups


def join(
    data: Dataset,
    *,
    documents: int = 0,
    queries: int = 0,
    parts: tuple[int, int] = (8, 48),
    budget: tuple[int, int] = (2000, 4000),
    mix: str = "random",
    seed: int = 14,
    count: Callable[[str], int] | None = None,
) -> tuple[Joined, Joined]:
    """(the long set, the short subset it was made of) from ``data``; ``count`` counts a
    text's tokens (default: the shipped model's tokenizer)."""
    if count is None:
        from common.embedders.tokenizer import count_tokens

        count = count_tokens
    ids, asked = choose(data, documents, queries, seed)
    # A document's pieces without [CLS] and [SEP]: the long text has those once.
    tokens = {d: max(count(data.corpus[d]) - 2, 0) for d in ids}
    groups = group(order(ids, data.corpus, mix, seed), tokens, parts, budget, seed)
    width = len(str(len(groups) - 1))
    names = [f"long{n:0{width}d}" for n in range(len(groups))]
    home = {doc: name for name, members in zip(names, groups, strict=True) for doc in members}
    queries_kept = {q: data.queries[q] for q in asked}
    long_qrels: dict[str, dict[str, int]] = {}
    short_qrels: dict[str, dict[str, int]] = {}
    for q in asked:
        for doc, grade in sorted(data.qrels[q].items()):
            if doc not in home:
                continue
            short_qrels.setdefault(q, {})[doc] = grade
            moved = long_qrels.setdefault(q, {})
            moved[home[doc]] = max(moved.get(home[doc], grade), grade)
    texts = [SEPARATOR.join(data.corpus[d] for d in members) for members in groups]
    long = Joined(
        corpus=dict(zip(names, texts, strict=True)),
        parts=dict(zip(names, groups, strict=True)),
        queries=queries_kept,
        qrels=long_qrels,
    )
    short = Joined(
        corpus={d: data.corpus[d] for d in ids},
        parts={d: [d] for d in ids},
        queries=queries_kept,
        qrels=short_qrels,
    )
    return long, short


def write(joined: Joined, directory: Path, split: str = "test") -> None:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` as ``cli.beir.load``
    reads them (the title is already in each text, so it is left empty)."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with (directory / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc, text in joined.corpus.items():
            out.write(json.dumps({"_id": doc, "title": "", "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as out:
        for q, text in joined.queries.items():
            out.write(json.dumps({"_id": q, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, docs in joined.qrels.items() for d, g in docs.items()]
    (directory / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (directory / "parts.json").open("w", encoding="utf-8") as out:
        json.dump(joined.parts, out)


def lengths(joined: Joined, count: Callable[[str], int] | None = None) -> dict[str, float]:
    """Token and part counts of the long documents (min, median, max), counted on the joined
    text with the model's tokenizer."""
    if count is None:
        from common.embedders.tokenizer import count_tokens

        count = count_tokens
    tokens = [count(text) for text in joined.corpus.values()]
    parts = [len(p) for p in joined.parts.values()]
    return {
        "documents": len(tokens),
        "tokens_min": min(tokens),
        "tokens_median": statistics.median(tokens),
        "tokens_max": max(tokens),
        "parts_min": min(parts),
        "parts_median": statistics.median(parts),
        "parts_max": max(parts),
        "queries": len(joined.qrels),
    }


def parse_range(text: str) -> tuple[int, int]:
    """``MIN:MAX`` (or one number for both) from the command line."""
    low, _, high = text.partition(":")
    return int(low), int(high or low)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--eval" in argv:
        from bench import long_docs_eval

        argv.remove("--eval")
        long_docs_eval.main(argv)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a BEIR-layout set")
    parser.add_argument("out", type=Path, help="where the long set goes")
    parser.add_argument("--short-out", type=Path, help="the same documents and queries, unjoined")
    parser.add_argument("--documents", type=int, default=0, help="short documents kept (0: all)")
    parser.add_argument("--queries", type=int, default=0, help="judged queries kept (0: all)")
    parser.add_argument("--parts", type=parse_range, default=(8, 48), help="MIN:MAX parts")
    parser.add_argument("--tokens", type=parse_range, default=(2000, 4000), help="MIN:MAX tokens")
    parser.add_argument(
        "--join", type=int, default=0, help="every N documents joined, no token target"
    )
    parser.add_argument("--mix", choices=["random", "topic"], default="random")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    data = load(args.source, args.split)
    parts, budget, count = args.parts, args.tokens, None
    if args.join:  # by count alone: no token is counted (len stands in for the tokenizer)
        parts, budget, count = (args.join, args.join), NO_BUDGET, len
    long, short = join(
        data,
        documents=args.documents,
        queries=args.queries,
        parts=parts,
        budget=budget,
        mix=args.mix,
        seed=args.seed,
        count=count,
    )
    write(long, args.out, args.split)
    if args.short_out:
        write(short, args.short_out, args.split)
    print(json.dumps({"long": str(args.out), **lengths(long)}))


if __name__ == "__main__":
    main()
