"""bench/long_docs.py on a tiny synthetic BEIR set: a long document is relevant if any of its
parts is (the highest grade), lengths fall in the asked range, and the output is the same on
every run."""

from __future__ import annotations

import json
from pathlib import Path

from bench.long_docs import join, lengths, main, write
from cli.beir import Dataset, load

TOPICS = ("volcano ash eruption", "glacier ice melt", "sourdough bread starter", "chess opening")


def tiny(documents: int = 60) -> Dataset:
    corpus = {
        f"d{i:02d}": f"Doc {i} about {TOPICS[i % 4]}. " + " ".join(["word"] * (20 + i % 7))
        for i in range(documents)
    }
    queries = {f"q{j}": f"question {j} about {TOPICS[j % 4]}" for j in range(12)}
    qrels = {f"q{j}": {f"d{j * 4:02d}": 1, f"d{j * 4 + 1:02d}": 2} for j in range(12)}
    qrels["q0"]["d59"] = 0  # a judged non-relevant document
    return Dataset("tiny", corpus, queries, qrels)


def words(text: str) -> int:
    return len(text.split()) + 2  # as a tokenizer would, with [CLS] and [SEP]


def test_a_long_document_is_relevant_if_any_part_is_with_the_highest_grade() -> None:
    data = tiny()
    long, short = join(data, parts=(3, 5), budget=(60, 90), seed=3, count=words)
    home = {doc: name for name, parts in long.parts.items() for doc in parts}
    assert sorted(home) == sorted(data.corpus)  # every document in exactly one long one
    assert sum(len(p) for p in long.parts.values()) == len(data.corpus)
    for q, judged in data.qrels.items():
        expected: dict[str, int] = {}
        for doc, grade in judged.items():
            expected[home[doc]] = max(expected.get(home[doc], grade), grade)
        assert long.qrels[q] == expected
    assert short.qrels == data.qrels and short.corpus == data.corpus
    for name, parts in long.parts.items():
        assert long.corpus[name] == "\n\n".join(data.corpus[d] for d in parts)


def test_two_relevant_parts_in_one_long_document_keep_the_higher_grade() -> None:
    data = tiny(8)
    data.qrels = {"q0": {"d00": 1, "d01": 2, "d02": 0}}
    long, _ = join(data, parts=(8, 8), budget=(10**6, 10**6), count=words)
    assert list(long.parts) == ["long0"]
    assert long.qrels == {"q0": {"long0": 2}}


def test_lengths_fall_in_the_asked_parts_and_tokens() -> None:
    data = tiny()
    long, _ = join(data, parts=(3, 6), budget=(80, 120), seed=5, count=words)
    for name, parts in long.parts.items():
        assert 3 <= len(parts) <= 6 + 2  # a short last run joins the one before it
        tokens = sum(words(data.corpus[p]) - 2 for p in parts)
        assert tokens >= 80 or len(parts) >= 6 or name == max(long.parts)


def test_a_subset_keeps_the_chosen_queries_and_their_relevant_documents() -> None:
    data = tiny()
    long, short = join(data, documents=30, queries=5, parts=(2, 4), budget=(40, 60), count=words)
    assert len(short.corpus) == 30 and len(long.queries) == 5
    for q in long.queries:
        for doc, grade in data.qrels[q].items():
            if grade > 0:
                assert doc in short.corpus
        assert long.qrels[q] and short.qrels[q]


def test_the_same_seed_gives_the_same_files_and_another_seed_another(tmp_path: Path) -> None:
    data = tiny()
    for mix in ("random", "topic"):
        written = []
        for run, seed in enumerate((7, 7, 8)):
            long, _ = join(data, parts=(3, 5), budget=(60, 90), mix=mix, seed=seed, count=words)
            write(long, tmp_path / f"{mix}{run}")
            written.append(
                [
                    (tmp_path / f"{mix}{run}" / f).read_bytes()
                    for f in ("corpus.jsonl", "qrels/test.tsv")
                ]
            )
        assert written[0] == written[1]
        assert written[0] != written[2]


def test_topic_mix_joins_lexical_neighbours() -> None:
    long, _ = join(tiny(), parts=(4, 4), budget=(1, 1), mix="topic", count=words)
    # Each document names its topic; a chain of nearest neighbours keeps a topic together.
    same = sum(len({int(d[1:]) % 4 for d in parts}) == 1 for parts in long.parts.values())
    # A seeded shuffle would almost never put four of one topic together (1 in 64 a group).
    assert same >= len(long.parts) // 2


def test_the_command_writes_a_set_eval_reads_with_real_token_counts(tmp_path: Path) -> None:
    data = tiny()
    source = tmp_path / "src"
    write(join(data, parts=(1, 1), budget=(1, 1), count=words)[1], source)
    out, short = tmp_path / "long", tmp_path / "short"
    main(
        [str(source), str(out), "--short-out", str(short), "--parts", "4:8", "--tokens", "150:200"]
    )
    long_set, short_set = load(out), load(short)
    assert set(short_set.corpus) == set(data.corpus)
    assert set(long_set.queries) == set(data.queries)
    parts = json.loads((out / "parts.json").read_text())
    assert sorted(d for p in parts.values() for d in p) == sorted(data.corpus)
    figures = lengths(join(load(source), parts=(4, 8), budget=(150, 200))[0])
    assert figures["parts_min"] >= 4 and figures["tokens_min"] >= 100


def test_join_n_joins_every_n_documents_and_keeps_every_judgement(tmp_path: Path) -> None:
    # The simplest form (once bench/long_beir.py): by count alone, whatever the lengths.
    source, out = tmp_path / "src", tmp_path / "long"
    data = tiny(62)
    write(join(data, parts=(1, 1), budget=(1, 1), count=words)[1], source)
    main([str(source), str(out), "--join", "5"])
    long_set = load(out)
    parts = json.loads((out / "parts.json").read_text())
    # 62 = 11 x 5 + 7: the short last run joins the one before it.
    assert sorted(len(p) for p in parts.values()) == [5] * 11 + [7]
    assert sorted(d for p in parts.values() for d in p) == sorted(data.corpus)
    for q, judged in data.qrels.items():
        for doc, grade in judged.items():
            [home] = [name for name, members in parts.items() if doc in members]
            assert data.corpus[doc] in long_set.corpus[home].split("\n\n")
            assert long_set.qrels[q][home] >= grade


def test_the_runner_checks_the_issues_two_goals() -> None:
    from bench.long_docs_eval import verdict

    def run(dense: float, keyword: float, hybrid: float) -> dict[str, object]:
        modes = {"dense": dense, "keyword": keyword, "hybrid": hybrid}
        return {
            "long": {"name": "L"},
            "references": {"exact_short": {"ndcg@10": 0.70}},
            "pipeline": {"L": {"modes": {m: {"ndcg@10": v} for m, v in modes.items()}}},
        }

    good = verdict(run(0.68, 0.60, 0.71))
    assert good["dense_within_0.03"] and good["hybrid_at_least_dense_and_keyword"]
    bad = verdict(run(0.0011, 0.60, 0.44))
    assert not bad["dense_within_0.03"] and not bad["hybrid_at_least_dense_and_keyword"]
    assert bad["dense_long_minus_exact_short"] == round(0.0011 - 0.70, 4)
