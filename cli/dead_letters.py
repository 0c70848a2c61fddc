"""``eventsearch dead-letters list|replay``: the dead-letter table from the command line."""

from __future__ import annotations

import uuid

import typer

app = typer.Typer(no_args_is_help=True, help="Dead letters: list, replay.")


@app.command("list")
def list_letters(
    tenant: str | None = typer.Option(None, help="only this tenant's dead letters"),
    limit: int = typer.Option(100, min=1, help="at most this many, newest first"),
) -> None:
    """List the dead letters not yet replayed: id, event, attempts, error."""
    from sqlalchemy import select

    from common.db import sync_sessions
    from common.models import DeadLetter
    from common.settings import load_or_exit

    load_or_exit()
    query = select(DeadLetter).where(DeadLetter.replayed_at.is_(None))
    if tenant:
        query = query.where(DeadLetter.tenant == tenant)
    query = query.order_by(DeadLetter.created_at.desc()).limit(limit)
    with sync_sessions()() as session:
        for letter in session.scalars(query):
            typer.echo(
                f"{letter.id}  event={letter.event_id}  tenant={letter.tenant}  "
                f"attempts={letter.attempts}  {letter.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{letter.error}"
            )


@app.command("replay")
def replay(
    letter_id: str | None = typer.Argument(None, help="the dead letter to replay"),
    all_: bool = typer.Option(False, "--all", help="replay every dead letter (of --tenant)"),
    tenant: str | None = typer.Option(None, help="with --all: only this tenant's"),
) -> None:
    """Queue the dead-lettered events again (attempts reset) and publish them."""
    from common.lifecycle import apply, transitions
    from common.lifecycle.handoff import hand_off
    from common.settings import load_or_exit

    settings = load_or_exit()
    if (letter_id is None) == (not all_):
        typer.echo("eventsearch: give a dead-letter id, or --all", err=True)
        raise typer.Exit(2)
    letter = None
    if letter_id is not None:
        try:
            letter = uuid.UUID(letter_id)
        except ValueError:
            typer.echo(f"eventsearch: no dead letter {letter_id}", err=True)
            raise typer.Exit(1) from None
    done = apply(transitions.replay, None if letter else tenant, letter, settings.sweep_after_s)
    if letter is not None and not done.letters:
        typer.echo(f"eventsearch: no dead letter {letter_id}", err=True)
        raise typer.Exit(1)
    event_ids = [str(i) for i in done.event_ids]
    if not hand_off(event_ids, None, "requeue", settings):
        typer.echo("eventsearch: the queue is unavailable; the sweeper publishes them", err=True)
    typer.echo(f"replayed {len(event_ids)} events")
