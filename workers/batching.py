"""How a group of claimed events meets the embedder: parts within a character budget, one
embedder call each, and a refused part split in halves until the bad input is alone."""

from __future__ import annotations

from collections.abc import Sequence

from common.embedders import PermanentEmbedError, TransientEmbedError
from common.lifecycle import apply
from common.lifecycle import transitions as t
from common.lifecycle.transitions import Pending
from workers.embedder import embedder
from workers.retry_policy import RequestIds, dead_letter_now, retry_or_dead_letter


def budgeted(events: Sequence[Pending], max_chars: int) -> list[list[Pending]]:
    """Consecutive events in parts of at most ``max_chars`` characters of text, one embedder
    call each (a longer text is a part of its own): a batch of long texts must not become
    one request of many megabytes, nor one over what the embedder accepts at a time."""
    parts: list[list[Pending]] = []
    chars = 0
    for event in events:
        if not parts or chars + len(event.text) > max_chars:
            parts.append([])
            chars = 0
        parts[-1].append(event)
        chars += len(event.text)
    return parts


def process(events: Sequence[Pending], rids: RequestIds | None = None) -> None:
    """Embed and store ``events``; on a permanent error, bisect to find the bad input."""
    if not events:
        return
    model = embedder()
    try:
        vectors = model.embed([e.text for e in events])
    except TransientEmbedError as error:
        retry_or_dead_letter(events, str(error), error.retry_after, rids)
        return
    except PermanentEmbedError as error:
        if len(events) == 1:
            dead_letter_now(events, str(error))
            return
        middle = len(events) // 2
        process(events[:middle], rids)
        process(events[middle:], rids)
        return
    apply(t.store, events, vectors, model.model)
