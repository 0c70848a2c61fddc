"""``eventsearch send FILE.jsonl``: stream events from JSON Lines through the batch API.

Resumable by construction: every line gets a stable idempotency key (its own
``idempotency_key``, else ``--key-field``, else a hash of its content), so sending the same
file again, whole or after a crash halfway, answers ``duplicate`` for what already went in
and makes no second event. Needs only the client (httpx, tenacity) and typer/rich.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from eventsearch import Client

EVENT_FIELDS = frozenset(
    {"source", "type", "text", "metadata", "occurred_at", "subject", "deleted"}
)
SHOWN_REJECTIONS = 20


@dataclass
class Line:
    """One input line: its event (with its key) or why it cannot be sent."""

    number: int
    size: int
    event: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Tally:
    lines: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)

    def reject(self, number: int, why: str) -> None:
        self.rejected += 1
        if len(self.rejections) < SHOWN_REJECTIONS:
            self.rejections.append(f"line {number}: {why}")


def _lookup(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def content_key(event: dict[str, Any]) -> str:
    """A key from the event's content, canonical JSON so that key order and spacing in the
    file do not matter. Identical lines are the same event, sent once."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _required(obj: dict[str, Any], path: str, what: str) -> Any:
    value = _lookup(obj, path)
    if value is None or value == "":
        raise ValueError(f"{what}_field_missing: no {path!r} on this line")
    return value


def keyed(
    obj: dict[str, Any], key_field: str | None, key_prefix: str, subject_field: str | None = None
) -> dict[str, Any]:
    """The event to send with its ``idempotency_key``: the line's own, else the value at
    ``key_field`` (a dotted path, e.g. ``metadata.posting_id``), else its content hash.
    ``subject_field`` (a dotted path) gives the event's ``subject``: lines with the same
    one are versions of one thing (docs/subjects.md). A top-level key or subject field that
    is not an event field (``id``) is not sent: the server refuses unknown fields."""
    event = dict(obj)
    own = event.pop("idempotency_key", None)
    key_value = _required(event, key_field, "key") if key_field and not own else None
    if subject_field:
        subject = str(_required(event, subject_field, "subject"))
        for name in (key_field, subject_field):
            if name and not own and "." not in name and name not in EVENT_FIELDS:
                event.pop(name, None)
        event["subject"] = subject
    elif key_field and not own and "." not in key_field and key_field not in EVENT_FIELDS:
        event.pop(key_field)
    if own:
        key = str(own)
    elif key_value is not None:
        key = f"{key_prefix}{key_value}"
    else:
        # The hash covers the subject: a new version of a thing is new content, a new key.
        key = key_prefix + content_key(event)
    return {**event, "idempotency_key": key}


def read_lines(
    stream: IO[bytes], key_field: str | None, key_prefix: str, subject_field: str | None = None
) -> Iterator[Line]:
    """The file's lines, lazily, parsed and keyed (blank lines skipped)."""
    for number, raw in enumerate(stream, start=1):
        line = Line(number, len(raw))
        if raw.strip():
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("validation_error: a line must be a JSON object")
                line.event = keyed(obj, key_field, key_prefix, subject_field)
            except json.JSONDecodeError as error:
                line.error = f"invalid_json: {error.msg} at column {error.colno}"
            except ValueError as error:
                line.error = str(error)
        yield line


def _chunks(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    events = 0
    for line in lines:
        chunk.append(line)
        events += line.event is not None
        if events >= size:
            yield chunk
            chunk, events = [], 0
    if chunk:
        yield chunk


def _default_api_key() -> str | None:
    # `make up` writes a development key here; using it makes the quick start one command.
    path = Path(os.environ.get("EVENTSEARCH_HOME", ".eventsearch")) / "dev-api-key"
    return path.read_text().strip() if path.is_file() else None


def send(
    file: str = typer.Argument(..., metavar="FILE.jsonl", help="one event per line; - is stdin"),
    url: str = typer.Option("http://localhost:8000", envvar="EVENTSEARCH_URL", help="gateway"),
    api_key: str | None = typer.Option(
        None, envvar="EVENTSEARCH_API_KEY", help="default: the dev key of `make up`"
    ),
    key_field: str | None = typer.Option(
        None, help="idempotency key from this field (dotted path); default: content hash"
    ),
    key_prefix: str = typer.Option("", help="put before every key (e.g. the file's origin)"),
    subject_field: str | None = typer.Option(
        None, help="subject from this field (dotted path): lines with one subject are versions"
    ),
    batch_size: int = typer.Option(1000, min=1, help="events per request (server max 1000)"),
    timeout: float = typer.Option(60.0, help="seconds per request"),
    deadline: float = typer.Option(300.0, help="seconds of retries per batch before giving up"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Send a JSON Lines file of events through the batch API, resumably.

    Run it again after an interruption: lines already sent answer `duplicate`. Exit status
    0 when every line went in, 1 when some were rejected, 2 when the gateway gave up."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from eventsearch import Client, EventsearchError, RetryEvent, RetryPolicy

    key = api_key or _default_api_key()
    if not key:
        typer.echo("eventsearch: no API key: --api-key, $EVENTSEARCH_API_KEY or make up", err=True)
        raise typer.Exit(2)
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as error:
        typer.echo(f"eventsearch: cannot read {file}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    total = None if file == "-" else os.fstat(stream.fileno()).st_size
    console = Console(stderr=True)
    tally, started = Tally(), time.monotonic()
    failure: EventsearchError | None = None
    policy = RetryPolicy(deadline_s=deadline)

    def on_retry(event: RetryEvent) -> None:
        # Through the bar's console, so the line lands above the bar instead of through it.
        line = f"retry {event.attempt}: {event.error}; waiting {event.delay_s:.1f} s"
        console.print(line, markup=False, highlight=False)

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not (progress and console.is_terminal),
    )
    es = Client(url, key, timeout=timeout, retry=policy, max_batch=batch_size, on_retry=on_retry)
    with stream, bar, es:
        task = bar.add_task("sending", total=total, counts="")
        try:
            for chunk in _chunks(
                read_lines(stream, key_field, key_prefix, subject_field), batch_size
            ):
                _send_chunk(es, chunk, tally)
                bar.update(
                    task,
                    advance=sum(line.size for line in chunk),
                    counts=f"{tally.accepted} new, {tally.duplicate} dup, {tally.rejected} bad",
                )
        except EventsearchError as error:
            failure = error
    _report(tally, time.monotonic() - started, failure, as_json)
    raise typer.Exit(2 if failure else 1 if tally.rejected else 0)


def _send_chunk(es: Client, chunk: list[Line], tally: Tally) -> None:
    sendable = [line for line in chunk if line.event is not None]
    for line in chunk:
        if line.error is not None:
            tally.reject(line.number, line.error)
    if sendable:
        result = es.send_batch([line.event for line in sendable if line.event is not None])
        for item in result.results:
            if item.status == "rejected":
                error = item.error
                why = f"{error.code}: {error.message}" if error else "rejected"
                tally.reject(sendable[item.index].number, why)
        tally.accepted += result.accepted
        tally.duplicate += result.duplicate
    # Counted only once the batch is answered, so an interrupted run reports what went in.
    tally.lines += sum(1 for line in chunk if line.event is not None or line.error is not None)


def _report(tally: Tally, seconds: float, failure: Exception | None, as_json: bool) -> None:
    for rejection in tally.rejections:
        typer.echo(rejection, err=True)
    if tally.rejected > len(tally.rejections):
        typer.echo(f"... and {tally.rejected - len(tally.rejections)} more rejected", err=True)
    if failure is not None:
        typer.echo(f"eventsearch: gave up: {failure}", err=True)
        typer.echo("run the same command again to resume: sent lines answer duplicate", err=True)
    summary = {
        "lines": tally.lines,
        "accepted": tally.accepted,
        "duplicate": tally.duplicate,
        "rejected": tally.rejected,
        "seconds": round(seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        rate = tally.lines / seconds if seconds > 0 else 0.0
        typer.echo(
            f"{tally.lines} lines: {tally.accepted} accepted, {tally.duplicate} duplicate, "
            f"{tally.rejected} rejected in {seconds:.1f} s ({rate:.0f} lines/s)"
        )
