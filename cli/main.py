"""``eventsearch``: run the stack, migrate, and (later) manage keys and dead letters."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
ROOT = Path(__file__).resolve().parent.parent


@app.command()
def up(
    home: Path = typer.Option(Path(".eventsearch"), envvar="EVENTSEARCH_HOME", help="data dir"),
    procfile: Path = typer.Option(ROOT / "Procfile", help="processes to run"),
) -> None:
    """Run gateway, worker and Flower; start PostgreSQL and Redis too unless their URLs are set."""
    from stack.up import run

    raise typer.Exit(run(home.resolve(), procfile.resolve()))


@app.command()
def migrate() -> None:
    """Bring the database (DATABASE_URL) to the newest schema."""
    from common.migrate import upgrade_head
    from common.settings import load_or_exit

    load_or_exit()
    upgrade_head()
    typer.echo("eventsearch: database migrated")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
