"""``eventsearch eval DIR`` on a tiny BEIR-layout dataset written here: the corpus goes in
through the gateway, the workers embed it, and nDCG@10 / recall@10 come out per mode."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cli.beir import load, score
from tests.conftest import event_count, extra_gateway, make_key
from tests.processes import BIN, Gateway, Proc

CORPUS = {
    "d1": ("Volcanoes", "Volcanic ash clouds ground flights for days."),
    "d2": ("Glaciers", "Glacier ice retreats as summers warm."),
    "d3": ("", "Ice cores from a glacier record old climates."),
    "d4": ("Bread", "Sourdough needs a lively starter."),
    "d5": ("Chess", "An opening gambit sacrifices a pawn."),
    "d6": ("Bananas", "Banana bread uses overripe fruit."),
}
QUERIES = {"q1": "volcanic ash", "q2": "glacier ice", "q3": "quantum tunnelling", "q9": "unjudged"}
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q2", "d3", 1), ("q3", "d6", 1)]


def write_dataset(root: Path) -> Path:
    directory = root / f"tiny-{uuid.uuid4().hex[:6]}"
    (directory / "qrels").mkdir(parents=True)
    with (directory / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in CORPUS.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (directory / "queries.jsonl").open("w") as out:
        for qid, text in QUERIES.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in QRELS]
    (directory / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return directory


def test_dataset_loads_judged_queries_and_titled_texts(tmp_path: Path) -> None:
    data = load(write_dataset(tmp_path))
    assert set(data.queries) == {"q1", "q2", "q3"}  # q9 has no judgement
    assert data.corpus["d1"] == "Volcanoes\nVolcanic ash clouds ground flights for days."
    assert data.corpus["d3"] == "Ice cores from a glacier record old climates."
    assert data.qrels["q2"] == {"d2": 1, "d3": 1}


def test_scores_are_trec_eval_ndcg_and_recall() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}}
    run = {"q1": ["x", "a"], "q2": ["b"]}
    figures = score(qrels, run, k=10)
    # q1: one relevant at rank 2 -> 1/log2(3); q2: b at rank 1 of ideal b, c -> 1/(1 + 1/log2 3)
    ndcg_q1 = 1 / 1.5849625007211563
    ndcg_q2 = 1 / (1 + 1 / 1.5849625007211563)
    assert figures["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert figures["recall@10"] == pytest.approx((1 + 0.5) / 2)
    # A judged query without any result counts as 0, not as missing.
    assert score(qrels, {"q1": ["a"]}, k=10)["ndcg@10"] == pytest.approx(0.5)


def test_eval_ingests_through_the_gateway_and_prints_metrics_per_mode(
    tmp_path: Path, gateway: Gateway, worker: Proc, db: Engine, stack_env: dict[str, str]
) -> None:
    directory = write_dataset(tmp_path)
    tenant = f"eval-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "figures.json"
    args = [str(BIN / "eventsearch"), "eval", str(directory), "--url", gateway.url]
    env = {**stack_env, "EVENTSEARCH_API_KEY": make_key(db, tenant, "ingest,search")}
    result = subprocess.run(
        [*args, "--out", str(out)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    for name in ("dense", "keyword", "hybrid", "nDCG@10", "recall@10"):
        assert name in result.stdout
    report = json.loads(out.read_text())
    assert report["documents"] == 6 and report["rejected"] == 0 and report["failed"] == 0
    modes = report["modes"]
    # Keyword search finds q1's and q2's documents first and nothing for q3.
    assert modes["keyword"]["ndcg@10"] == pytest.approx(2 / 3)
    assert modes["keyword"]["recall@10"] == pytest.approx(2 / 3)
    # Dense ranks all six documents for every query: everything relevant is in the top 10.
    assert modes["dense"]["recall@10"] == pytest.approx(1.0)
    assert modes["hybrid"]["recall@10"] == pytest.approx(1.0)
    assert modes["hybrid"]["ndcg@10"] >= modes["keyword"]["ndcg@10"]
    assert all(m["queries"] == 3 for m in modes.values())
    assert event_count(db, "tenant = :t", t=tenant) == 6

    # A second run re-uses the stored corpus (same idempotency keys): no new events.
    again = subprocess.run(
        [*args, "--modes", "keyword", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert again.returncode == 0, again.stderr
    assert event_count(db, "tenant = :t", t=tenant) == 6
    assert json.loads(out.read_text())["modes"]["keyword"]["ndcg@10"] == pytest.approx(2 / 3)

    # Hybrid with the other fusion, asked for per search; an unknown one is refused.
    linear = subprocess.run(
        [*args, "--modes", "hybrid", "--fusion", "linear", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert linear.returncode == 0, linear.stderr
    report = json.loads(out.read_text())
    assert report["fusion"] == "linear" and report["modes"]["hybrid"]["recall@10"] == 1.0
    bad = subprocess.run([*args, "--fusion", "max"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown fusion max" in bad.stderr


def test_eval_waits_out_the_rate_limit(
    tmp_path: Path, worker: Proc, db: Engine, stack_env: dict[str, str], tmp_root: Path
) -> None:
    """Nine searches against a limit of two a second: the 429s are waited out as their
    Retry-After says, and the figures are those of an unlimited run."""
    directory = write_dataset(tmp_path)
    key = make_key(db, f"eval-{uuid.uuid4().hex[:8]}", "ingest,search")
    with extra_gateway(stack_env, tmp_root, "gateway-eval", RATE_LIMIT_SEARCH="2/second") as gw:
        out = tmp_path / "figures.json"
        result = subprocess.run(
            [str(BIN / "eventsearch"), "eval", str(directory), "--url", gw.url, "--out", str(out)],
            env={**stack_env, "EVENTSEARCH_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=180,
        )
        log = (tmp_root / "gateway-eval.log").read_text()
    assert result.returncode == 0, result.stderr
    assert '"status": 429' in log  # the limit was met
    assert json.loads(out.read_text())["modes"]["keyword"]["ndcg@10"] == pytest.approx(2 / 3)
