"""``eventsearch``: run the stack, migrate, and (later) manage keys and dead letters."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.dead_letters import app as dead_letters
from cli.eval import evaluate
from cli.reembed import reembed
from cli.send import send as send_command
from cli.status import status as status_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
ROOT = Path(__file__).resolve().parent.parent
# Commands that talk to PostgreSQL/Redis themselves: a stale state file stops them with one
# line. The HTTP clients (send, eval) only take the gateway's URL from a running stack's file.
NEEDS_STORES = {"migrate", "keys", "dead-letters", "reembed"}


@app.callback()
def find_stack(ctx: typer.Context) -> None:
    """Use the stack `make up` runs (.eventsearch/stack.json) when DATABASE_URL/REDIS_URL are
    unset; say so on stderr."""
    import os

    from stack import stackfile

    # `up` makes the stack; `status` reports a stale file rather than refusing to start.
    if ctx.invoked_subcommand in ("up", "status", None) or ctx.resilient_parsing:
        return
    try:
        used = stackfile.apply(os.environ)
    except stackfile.StaleStack as stale:
        if ctx.invoked_subcommand not in NEEDS_STORES:
            return
        typer.echo(str(stale), err=True)
        raise typer.Exit(2) from None
    if used:
        typer.echo(used, err=True)
    elif ctx.invoked_subcommand in NEEDS_STORES and not (
        os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")
    ):
        typer.echo(
            f"eventsearch: no running stack ({stackfile.home_dir() / stackfile.FILENAME} not "
            "found) and DATABASE_URL/REDIS_URL unset: start one with `make up` in this "
            "checkout, or set both",
            err=True,
        )
        raise typer.Exit(2)


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
    from common.migrate import SchemaOptions, upgrade_head
    from common.settings import load_or_exit

    settings = load_or_exit()
    # A new events table takes this command's EMBED_DIM and HNSW build settings, passed to
    # the migration explicitly (the migrations read no environment).
    upgrade_head(
        settings.sqlalchemy_url,
        SchemaOptions(settings.embed_dim, settings.hnsw_m, settings.hnsw_ef_construction),
    )
    typer.echo("eventsearch: database migrated")


app.command()(reembed)
app.command("eval")(evaluate)

keys = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")
app.add_typer(keys, name="keys")


@keys.command("create")
def keys_create(
    tenant: str = typer.Option(..., help="the tenant the key acts for"),
    scopes: str = typer.Option("ingest,search", help="comma-separated: ingest, search, admin"),
    name: str = typer.Option("", help="a label for people"),
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from common.apikeys import create_key
    from common.db import sync_sessions
    from common.settings import load_or_exit

    load_or_exit()
    try:
        with sync_sessions()() as session, session.begin():
            new = create_key(session, tenant, scopes.split(","), name)
    except ValueError as error:
        typer.echo(f"eventsearch: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"# key {new.id} for tenant {new.tenant}, scopes {','.join(new.scopes)}", err=True)
    typer.echo(new.key)


@keys.command("list")
def keys_list(tenant: str | None = typer.Option(None, help="only this tenant's keys")) -> None:
    """List keys (never the keys themselves: their first characters only)."""
    from common.apikeys import list_keys
    from common.db import sync_sessions
    from common.settings import load_or_exit

    load_or_exit()
    with sync_sessions()() as session:
        for key in list_keys(session, tenant):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            typer.echo(
                f"{key.id}  {key.prefix}…  tenant={key.tenant}  scopes={','.join(key.scopes)}  "
                f"{state}  last used {used}  {key.name}"
            )


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by id; the gateway stops accepting it within AUTH_CACHE_TTL_S."""
    import uuid

    from common.apikeys import revoke_key
    from common.db import sync_sessions
    from common.settings import load_or_exit

    load_or_exit()
    with sync_sessions()() as session, session.begin():
        revoked = revoke_key(session, uuid.UUID(key_id))
    if not revoked:
        typer.echo(f"eventsearch: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


app.command("send")(send_command)
app.add_typer(dead_letters, name="dead-letters")
app.command("status")(status_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
