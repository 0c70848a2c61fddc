"""``python -m bench [--quick|--tiny] [--out bench-results.json]``: runs every measure on its
own local services and prints a table of ratios, each against a baseline from the same run."""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bench import chunks, ingest, pipeline, search
from bench.services import services
from bench.sizes import FULL, QUICK, TINY

GOALS = {
    "ingest_single_vs_bare": ">= 0.8",
    "batch_vs_single": ">= 10",
    "e2e_vs_torch_encode": ">= 1.5",
    "e2e_vs_encode": ">= 0.9",
    "e2e_vs_naive": ">= 10",
    "search_p50_overhead_ms": "<= 3",
    "hnsw_recall_at_10": ">= 0.95",
    "filtered_fill": "1.0",
    "export_rss_growth_mb": "< 50",
    "chunked_e2e_tokens_vs_encode": ">= 0.8",
    "search_p50_chunked_vs_single": "<= 1.5",
}


def met(value: object, goal: str) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    op, _, bound = goal.partition(" ")
    if not bound:
        return "yes" if value >= float(op) else "NO"
    checks = {">=": value >= float(bound), "<=": value <= float(bound), "<": value < float(bound)}
    return "yes" if checks[op] else "NO"


ATTEMPTS = 2  # a part that fails (a subprocess gone on a busy machine) runs once more


def run_part(
    name: str, run: Callable[[], Mapping[str, object]], clean_up: Callable[[], None]
) -> tuple[Mapping[str, object], str | None]:
    """One part's figures, or none and why: a part that fails twice is recorded under
    ``errors`` by the caller, so that every other part still runs and the JSON says which
    figures are missing and why."""
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        print(f"bench: {name} ..." + (f" (attempt {attempt})" if attempt > 1 else ""), flush=True)
        try:
            return run(), None
        except Exception as failure:  # any failure of one part: record it, go on
            error = f"{type(failure).__name__}: {failure}"
            print(f"bench: {name} failed: {error}", file=sys.stderr, flush=True)
        finally:
            clean_up()
    return {}, f"failed {ATTEMPTS} times, last: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (< 3 minutes)")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: checks the harness")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--only",
        choices=[
            "ingest",
            "pipeline",
            "local model",
            "search",
            "chunked pipeline",
            "chunked search",
        ],
        action="append",
        help="run only these parts (repeatable)",
    )
    args = parser.parse_args()
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    started = time.perf_counter()
    results: dict[str, object] = {}
    errors: dict[str, str] = {}
    root = Path(tempfile.mkdtemp(prefix="eventsearch-bench-"))
    os.environ.setdefault("TMPDIR", str(root))
    with services(root) as svc:
        for name, run in (
            ("ingest", ingest.measure),
            ("pipeline", pipeline.measure_naive),
            ("local model", pipeline.measure_encode),
            ("search", search.measure),
            ("chunked pipeline", chunks.measure_pipeline),
            ("chunked search", chunks.measure_search),
        ):
            if args.only and name not in args.only:
                continue
            figures, error = run_part(name, functools.partial(run, svc, sizes), svc.clean_up)
            results.update(figures)
            if error:
                errors[name] = error
    if errors:
        results["errors"] = errors
    results["sizes"] = sizes.as_dict()
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        # Other work on the machine moves every figure: say how busy it was at the end.
        "load_average_1m_5m_15m": [round(x, 2) for x in os.getloadavg()],
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=2))

    print(f"\n{'key':<30}{'value':>12}  {'goal':<8}met")
    for key, goal in GOALS.items():
        value = results.get(key)
        print(f"{key:<30}{value!s:>12}  {goal:<8}{met(value, goal)}")
    print("\nraw figures:")
    for key, value in results.items():
        if key not in GOALS and key not in ("sizes", "machine"):
            print(f"  {key}: {value}")
    print(f"sizes: {sizes.as_dict()}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
