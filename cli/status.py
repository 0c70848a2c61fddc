"""``eventsearch status``: the stack at a glance.

Servers (PostgreSQL, Redis, the gateway's ``/health``, Flower), the processes ``eventsearch
up`` recorded, the workers alive (their metrics heartbeat in Redis), the broker queue,
events by status over every tenant, and where the dev key is kept. It reads the state file
of ``make up`` (or ``DATABASE_URL``/``REDIS_URL``/``EVENTSEARCH_URL``) and never fails on a
part that is down: that part says ``down`` and the exit status is 1 (0 when all answer,
2 when no stack is known).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import typer

from stack import stackfile

TIMEOUT_S = 3
ORDER = ["up", "postgres", "redis", "honcho", "gateway", "worker", "flower"]


def _state() -> tuple[dict[str, Any], str]:
    """The recorded state (or one made of the environment) and a line naming its origin."""
    home = stackfile.home_dir()
    try:
        state = stackfile.read(home)
    except FileNotFoundError:
        state = {}
    except stackfile.StaleStack as bad:
        typer.echo(str(bad), err=True)
        raise typer.Exit(2) from None
    if state:
        up = state.get("pids", {}).get("up")
        running = "running" if stackfile.alive(up) else "NOT RUNNING (stale file)"
        origin = f"{home / stackfile.FILENAME}: `eventsearch up` pid {up} {running}"
        origin += f", started {state.get('started_at', '?')}"
    else:
        origin = "the environment (no stack file)"
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            state[key.lower()] = os.environ[key]
    if os.environ.get("EVENTSEARCH_URL"):
        state["gateway_url"] = os.environ["EVENTSEARCH_URL"]
    if not state.get("database_url") and not state.get("redis_url"):
        typer.echo(
            f"eventsearch: no stack: {home / stackfile.FILENAME} not found and DATABASE_URL, "
            "REDIS_URL unset; start one with `make up`",
            err=True,
        )
        raise typer.Exit(2)
    return state, origin


def _database(url: str | None) -> dict[str, Any]:
    if not url:
        return {"state": "not configured"}
    import psycopg

    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=TIMEOUT_S
        ) as conn:
            events: dict[str, int] = dict(
                conn.execute("SELECT status, count(*) FROM events GROUP BY 1").fetchall()
            )
            dead = conn.execute(
                "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL"
            ).fetchone()
    except psycopg.Error as error:
        return {"state": f"down: {str(error).strip().splitlines()[0]}"}
    return {"state": "ok", "events": events, "dead_letters": dead[0] if dead else 0}


def _redis(url: str | None) -> dict[str, Any]:
    if not url:
        return {"state": "not configured"}
    import redis

    from common.metrics_relay import INDEX, ttl_s
    from common.queue import queue_figures_sync

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        depth, unacked = queue_figures_sync(client)  # kombu's layout is common/queue.py's
        heartbeat = float(os.environ.get("WORKER_HEARTBEAT_S", "5"))
        workers = client.zrangebyscore(INDEX, time.time() - ttl_s(heartbeat), "+inf")
    except redis.RedisError as error:
        return {"state": f"down: {error}"}
    finally:
        client.close()
    return {
        "state": "ok",
        "queue": {"depth": depth, "unacked": unacked},
        "workers": sorted(w.decode() if isinstance(w, bytes) else str(w) for w in workers),
    }


def _http(url: str | None, path: str) -> str:
    if not url:
        return "not configured"
    import httpx

    try:
        answer = httpx.get(url.rstrip("/") + path, timeout=TIMEOUT_S)
    except httpx.HTTPError as error:
        return f"down: {type(error).__name__}"
    if answer.status_code == 200:
        return "ok"
    try:
        return f"{answer.status_code}: {answer.json()}"
    except ValueError:
        return str(answer.status_code)


def gather() -> tuple[dict[str, Any], str]:
    state, origin = _state()
    pids = state.get("pids", {})
    gateway_url = state.get("gateway_url")
    report: dict[str, Any] = {
        "gateway": {
            "url": state.get("gateway_url"),
            "state": _http(state.get("gateway_url"), "/health"),
        },
        "postgres": {"url": state.get("database_url"), **_database(state.get("database_url"))},
        "redis": {"url": state.get("redis_url"), **_redis(state.get("redis_url"))},
        "flower": {
            "url": state.get("flower_url"),
            "state": _http(state.get("flower_url"), "/healthcheck"),
        },
        "processes": {
            name: {"pid": pids[name], "running": stackfile.alive(pids[name])}
            for name in sorted(pids, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))
        },
        "dev_key_file": state.get("dev_key_file"),
        "flower_password_file": state.get("flower_password_file"),
    }
    if gateway_url:
        report["console_url"] = gateway_url.rstrip("/") + "/console"
    return report, origin


def healthy(report: dict[str, Any]) -> bool:
    servers = [report[name]["state"] for name in ("gateway", "postgres", "redis", "flower")]
    return all(s in ("ok", "not configured") for s in servers) and all(
        p["running"] for p in report["processes"].values()
    )


def render(report: dict[str, Any], origin: str) -> list[str]:
    def where(path: str | None) -> str:
        if not path:
            return "-"
        try:
            return str(Path(path).relative_to(Path.cwd()))
        except ValueError:
            return path

    lines = [f"stack         {origin}"]
    for name in ("gateway", "postgres", "redis", "flower"):
        part = report[name]
        pid = report["processes"].get(name, {}).get("pid")
        lines.append(
            f"{name:<13} {part['url'] or '-'}  {part['state']}" + (f"  pid {pid}" if pid else "")
        )
    if report.get("console_url"):
        lines.append(f"console       {report['console_url']}")
    if report["processes"]:
        lines.append(
            "processes     "
            + ", ".join(
                f"{name} {p['pid']} {'running' if p['running'] else 'GONE'}"
                for name, p in report["processes"].items()
            )
        )
    redis_part = report["redis"]
    if "workers" in redis_part:
        workers = redis_part["workers"]
        lines.append(
            f"workers       {len(workers)} alive" + (f": {', '.join(workers)}" if workers else "")
        )
        queue = redis_part["queue"]
        lines.append(f"queue         {queue['depth']} waiting, {queue['unacked']} taken, not acked")
    pg = report["postgres"]
    if "events" in pg:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(pg["events"].items())) or "none"
        lines.append(f"events        {counts} (all tenants); {pg['dead_letters']} dead letters")
    lines.append(f"dev key       {where(report['dev_key_file'])}")
    lines.append(f"flower login  password in {where(report['flower_password_file'])}")
    return lines


def status(
    as_json: bool = typer.Option(False, "--json", help="the report as one JSON object"),
) -> None:
    """The stack at a glance: servers, processes, workers, queue, events by status, URLs."""
    report, origin = gather()
    if as_json:
        typer.echo(json.dumps({"origin": origin, **report}, indent=2, default=str))
    else:
        for line in render(report, origin):
            typer.echo(line)
    raise typer.Exit(0 if healthy(report) else 1)
