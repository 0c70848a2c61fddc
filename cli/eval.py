"""``eventsearch eval DIR``: score the running service on a BEIR-layout benchmark.

The corpus goes in through the gateway's batch API like any events (source ``eval``, type
``beir.<name>``, idempotency key ``eval:<name>:<doc id>``, so a second run re-uses what the
first one stored), the workers embed it, and every judged query runs through the search API
in each mode, restricted by a filter to this corpus. nDCG@10 and recall@10 per mode are
printed and written as JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

SOURCE = "eval"
TEXT_LIMIT = 100_000  # the gateway's MAX_TEXT_CHARS default


def _default_key() -> str | None:
    # `make up` keeps the development key here.
    path = Path(".eventsearch") / "dev-api-key"
    return path.read_text().strip() if path.exists() else None


def evaluate(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="BEIR dataset"),
    url: str = typer.Option("http://localhost:8000", envvar="EVENTSEARCH_URL"),
    api_key: str | None = typer.Option(
        None, envvar="EVENTSEARCH_API_KEY", help="scopes ingest,search (default: the dev key)"
    ),
    modes: str = typer.Option("dense,keyword,hybrid", help="comma-separated"),
    split: str = typer.Option("test", help="qrels/<split>.tsv"),
    top_k: int = typer.Option(10, min=1, max=100, help="the k of nDCG@k and recall@k"),
    max_queries: int = typer.Option(0, min=0, help="only the first N queries (0: all)"),
    out: Path | None = typer.Option(None, help="JSON results (default: eval-<name>.json)"),
    stall_timeout: float = typer.Option(120.0, help="give up when embedding stalls this long"),
    fusion: str | None = typer.Option(
        None, help="hybrid's fusion, rrf or linear (default: the gateway's HYBRID_FUSION)"
    ),
) -> None:
    """Ingest DIR's corpus, wait for the workers, run its queries in each mode, and print
    nDCG@k and recall@k per mode."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from cli import beir
    from cli.apiclient import ApiError, Gateway

    key = api_key or _default_key()
    if not key:
        typer.echo("eventsearch: give --api-key or EVENTSEARCH_API_KEY", err=True)
        raise typer.Exit(2)
    wanted = [m.strip() for m in modes.split(",") if m.strip()]
    if bad := [m for m in wanted if m not in ("dense", "keyword", "hybrid")]:
        typer.echo(f"eventsearch: unknown mode {', '.join(bad)}", err=True)
        raise typer.Exit(2)
    if fusion not in (None, "rrf", "linear"):
        typer.echo(f"eventsearch: unknown fusion {fusion}", err=True)
        raise typer.Exit(2)
    try:
        data = beir.load(directory, split)
    except (OSError, ValueError, KeyError) as error:
        typer.echo(f"eventsearch: {directory} is not a BEIR dataset: {error}", err=True)
        raise typer.Exit(2) from None
    queries = list(data.queries.items())[: max_queries or None]
    event_type = f"beir.{data.name}"[:128]
    filters = {"source": [SOURCE], "type": [event_type]}
    events = [
        {
            "source": SOURCE,
            "type": event_type,
            "text": text[:TEXT_LIMIT] or "(empty)",
            "metadata": {"beir_id": doc_id},
            "idempotency_key": f"eval:{data.name}:{doc_id}"[:255],
        }
        for doc_id, text in data.corpus.items()
    ]
    console = Console(stderr=True)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    gateway = Gateway(url, key)
    results: dict[str, Any] = {}
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("ingesting corpus", total=len(events))
            ids = gateway.ingest(events, lambda n: progress.advance(task, n))
            accepted = [i for i in ids if i]
            task = progress.add_task("waiting for the workers", total=len(accepted))
            failed = gateway.wait_embedded(
                accepted, lambda n: progress.advance(task, n), stall_timeout
            )
            for mode in wanted:
                task = progress.add_task(f"searching: {mode}", total=len(queries))
                run: dict[str, list[str]] = {}
                took: list[float] = []
                started = time.perf_counter()
                for qid, query in queries:
                    hits, ms = gateway.search(query, mode, top_k, filters, fusion)
                    run[qid] = [str(h.metadata.get("beir_id")) for h in hits]
                    took.append(ms)
                    progress.advance(task)
                qrels = {q: data.qrels[q] for q, _ in queries}
                results[mode] = {
                    **beir.score(qrels, run, top_k),
                    "queries": len(queries),
                    "mean_took_ms": round(sum(took) / max(len(took), 1), 2),
                    "wall_s": round(time.perf_counter() - started, 2),
                }
    except (ApiError, OSError) as error:  # httpx errors are OSErrors' kin: report, exit 1
        typer.echo(f"eventsearch: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        gateway.close()
    report = {
        "dataset": data.name,
        "split": split,
        "documents": len(events),
        "rejected": len(ids) - len(accepted),
        "failed": failed,
        "fusion": fusion,  # hybrid's, when asked for (None: the gateway's default)
        "modes": results,
    }
    table = Table(title=f"{data.name}: {len(events)} documents, {len(queries)} queries")
    for column in ("mode", f"nDCG@{top_k}", f"recall@{top_k}", "mean took_ms"):
        table.add_column(column)
    for mode, figures in results.items():
        table.add_row(
            mode,
            f"{figures[f'ndcg@{top_k}']:.4f}",
            f"{figures[f'recall@{top_k}']:.4f}",
            f"{figures['mean_took_ms']:.1f}",
        )
    Console().print(table)
    target = out or Path(f"eval-{data.name}.json")
    target.write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(f"eventsearch: results written to {target}", err=True)
