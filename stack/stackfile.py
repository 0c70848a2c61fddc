"""``.eventsearch/stack.json``: what a running ``eventsearch up`` started, for other commands.

``eventsearch up`` writes it (mode 0600) once its servers answer, again once the Procfile's
processes have pids, and removes it when it stops. Every other ``eventsearch`` command
reads it when ``DATABASE_URL``/``REDIS_URL`` are unset, so a second terminal needs no
exports. It holds URLs, ports, pids and the *paths* of the dev key and the Flower password,
not the secrets themselves (the embedded PostgreSQL trusts local connections, so its URL has
no password; a ``DATABASE_URL`` given to ``up`` is recorded as given, which is one reason the
file is its owner's alone).

A file left by an ``up`` that was killed is *stale*: its process is gone, or its servers no
longer answer. Reading one raises :class:`StaleStack` with one line saying so, never a
connection traceback from deep inside a command.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stack.ports import port_open

FILENAME = "stack.json"
ROOT = Path(__file__).resolve().parent.parent


class StaleStack(Exception):
    """The state file names a stack that is not running; ``str()`` is the line to print."""


def home_dir() -> Path:
    """``$EVENTSEARCH_HOME``, else ``./.eventsearch``, else the checkout's ``.eventsearch``
    (so a command run from a subdirectory still finds the stack ``make up`` started)."""
    if os.environ.get("EVENTSEARCH_HOME"):
        return Path(os.environ["EVENTSEARCH_HOME"])
    here = Path(".eventsearch")
    if (here / FILENAME).exists() or not (ROOT / ".eventsearch" / FILENAME).exists():
        return here
    return ROOT / ".eventsearch"


def write(home: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically, readable by its owner only (it names pids and paths of
    secrets; a reader of the pids could signal the stack)."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / FILENAME
    partial = home / f".{FILENAME}.{os.getpid()}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the umask cannot widen it, an old file's mode does not matter
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(partial, target)
    return target


def remove(home: Path, pid: int) -> None:
    """Remove the file if the ``up`` of ``pid`` wrote it (not one a later ``up`` wrote)."""
    try:
        if read(home).get("pids", {}).get("up") == pid:
            (home / FILENAME).unlink()
    except (FileNotFoundError, StaleStack):
        pass


def read(home: Path) -> dict[str, Any]:
    """The recorded state; ``FileNotFoundError`` when there is none."""
    path = home / FILENAME
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise StaleStack(f"eventsearch: {path} is not valid JSON; remove it") from None
    if not isinstance(state, dict):
        raise StaleStack(f"eventsearch: {path} is not a stack file; remove it")
    return state


def alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def answers(url: str) -> bool:
    """A server at ``url``'s host and port accepts connections."""
    parts = urlsplit(url)
    try:
        return parts.port is not None and port_open(parts.port, parts.hostname or "127.0.0.1")
    except (OSError, ValueError):  # a host that does not resolve, a port out of range
        return False


def check(home: Path, state: dict[str, Any]) -> None:
    """Raise :class:`StaleStack` unless the ``up`` that wrote ``state`` runs and its servers
    answer."""
    path = home / FILENAME
    pid = state.get("pids", {}).get("up")
    if not alive(pid):
        raise StaleStack(
            f"eventsearch: {path} is stale: the `eventsearch up` that wrote it (pid {pid}) "
            "is not running; start the stack with `make up`, or set DATABASE_URL and REDIS_URL"
        )
    for name, key in (("PostgreSQL", "database_url"), ("Redis", "redis_url")):
        url = state.get(key)
        if not isinstance(url, str) or not answers(url):
            raise StaleStack(
                f"eventsearch: {path}: {name} at {url} does not answer although "
                f"`eventsearch up` (pid {pid}) runs; it may still be starting, or see its output"
            )


def apply(environ: MutableMapping[str, str], home: Path | None = None) -> str | None:
    """Fill ``DATABASE_URL``/``REDIS_URL`` (and ``EVENTSEARCH_URL``) that ``environ`` lacks from
    the state file of a running stack; the line to tell the user what was used, or ``None``
    when nothing was taken from the file (both set, or no file). Raises :class:`StaleStack`
    when the file is stale and something was needed from it."""
    wanted = [k for k in ("DATABASE_URL", "REDIS_URL") if not environ.get(k)]
    if not wanted:
        return None
    home = home or home_dir()
    try:
        state = read(home)
    except FileNotFoundError:
        return None
    check(home, state)
    used = []
    for key in wanted:
        environ[key] = state[key.lower()]
        used.append(f"{key}={environ[key]}")
    if not environ.get("EVENTSEARCH_URL") and state.get("gateway_url"):
        environ["EVENTSEARCH_URL"] = state["gateway_url"]
    environ.setdefault("EVENTSEARCH_HOME", str(home))
    return (
        f"eventsearch: using the stack of `eventsearch up` (pid {state['pids']['up']}, "
        f"{home / FILENAME}): {', '.join(used)}"
    )
