"""Finding the Procfile's processes under honcho, for the state file and ``eventsearch status``.

honcho runs each Procfile line as ``sh -c`` in a session of its own, under a forked helper,
and reports pids only on its output; so they are found in ``/proc``: among honcho's
descendants, the first whose command line holds the line's command words (``uvicorn``,
``gateway.app:app``; ``celery``, ``workers.app``, ``worker``), taken nearest to honcho so a
worker's pool children are not mistaken for the worker. Linux only; elsewhere none are found.
"""

from __future__ import annotations

import shlex
from pathlib import Path

PROC = Path("/proc")


def procfile(path: Path) -> dict[str, str]:
    """The Procfile's lines as ``{name: command}``."""
    lines = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            lines[name.strip()] = command.strip()
    return lines


def command_words(command: str) -> list[str]:
    """The words that name what runs: no variable assignments, options or expansions."""
    words: list[str] = []
    for word in shlex.split(command):
        if "=" in word.split("/")[0] and not words:
            continue  # VAR=value before the command
        if word.startswith("-") or "$" in word:
            continue
        words.append(word)
    return words[:3]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name in field 2 may hold spaces and parentheses: split after it.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _argv(pid: int) -> list[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _has(argv: list[str], word: str) -> bool:
    return any(arg == word or arg.endswith("/" + word) for arg in argv)


def find(root: int, commands: dict[str, str]) -> dict[str, int]:
    """``{name: pid}`` for the commands found among ``root``'s descendants (breadth first)."""
    if not PROC.is_dir():
        return {}
    tree = _children()
    wanted = {name: command_words(cmd) for name, cmd in commands.items()}
    found: dict[str, int] = {}
    level = tree.get(root, [])
    while level and len(found) < len(wanted):
        for pid in sorted(level):
            argv = _argv(pid)
            if not argv or Path(argv[0]).name in ("sh", "bash", "dash"):
                continue  # the shell honcho runs the line in, not the process itself
            for name, words in wanted.items():
                if name not in found and all(_has(argv, w) for w in words):
                    found[name] = pid
        level = [child for pid in level for child in tree.get(pid, [])]
    return found
