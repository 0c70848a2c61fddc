"""``eventsearch reembed``: after a model change, embed every event again with the
configured model, in the background, in batches, with a progress bar."""

from __future__ import annotations

import time

import typer


def reembed(
    tenant: str | None = typer.Option(None, help="only this tenant's events (default: all)"),
    batch_size: int = typer.Option(0, min=0, help="events per message (0: EMBED_BATCH_SIZE)"),
    wait: bool = typer.Option(True, help="follow the workers with a progress bar"),
    stall_timeout: float = typer.Option(
        120.0, help="give up waiting when nothing progressed for this many seconds"
    ),
) -> None:
    """Queue every embedded event whose vector is not from EMBED_MODEL for the workers, which
    must already run that model; search keeps answering from the active model's vectors."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from common.db import sync_sessions
    from common.dimension import check_or_exit
    from common.lifecycle.handoff import QueueUnavailable, publish_reembed
    from common.reembed import count_stale, stale_batches
    from common.settings import load_or_exit

    settings = load_or_exit()
    check_or_exit(settings)
    model = settings.model_name
    size = batch_size or settings.embed_batch_size
    with sync_sessions()() as session:
        total = count_stale(session, settings, tenant)
        if total == 0:
            typer.echo(f"eventsearch: every vector is already from {model}")
            return
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            queued = progress.add_task("queueing", total=total)
            try:
                for ids in stale_batches(session, settings, tenant, size):
                    publish_reembed([ids], model, settings)
                    progress.advance(queued, len(ids))
            except QueueUnavailable as error:  # nothing written: a later run resumes
                typer.echo(f"eventsearch: {error.message}", err=True)
                raise typer.Exit(1) from None
            if not wait:
                typer.echo(f"eventsearch: {total} events queued for re-embedding with {model}")
                return
            done = progress.add_task(f"re-embedding with {model}", total=total)
            left, last_change = total, time.monotonic()
            while left:
                time.sleep(0.5)  # a progress poll, not a wait for a condition
                now_left = count_stale(session, settings, tenant)
                if now_left != left:
                    left, last_change = now_left, time.monotonic()
                    progress.update(done, completed=total - left)
                elif time.monotonic() - last_change > stall_timeout:
                    break
    if left:
        typer.echo(
            f"eventsearch: {left} of {total} events still not from {model} after "
            f"{stall_timeout:.0f}s without progress: do the workers run EMBED_MODEL={model}? "
            "(texts the model refuses keep their old vector; see the worker log)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"eventsearch: {total} events re-embedded with {model}")
