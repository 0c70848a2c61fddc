"""How a group of claimed events meets the embedder: each event's text as its chunks
(workers/chunk_embed.py), parts of about one embedder call's worth of chunks, each part's
chunk sets stored together, and a refused part split in halves until the bad input is
alone."""

from __future__ import annotations

from collections.abc import Sequence

from common import metrics
from common.embedders import PermanentEmbedError, TransientEmbedError
from common.lifecycle import apply
from common.lifecycle import transitions as t
from common.lifecycle.transitions import Pending
from common.settings import Settings
from workers import chunk_embed
from workers.context import embedder
from workers.retry_policy import RequestIds, dead_letter_now, retry_or_dead_letter


def budgeted(events: Sequence[Pending], settings: Settings) -> list[list[Pending]]:
    """Consecutive events in parts of about one embedder call's worth of chunks (at most
    ``EMBED_BATCH_SIZE`` chunks and ``EMBED_BATCH_MAX_TOKENS`` tokens; an event of more is a
    part of its own, spread over several calls), each part stored before the next is
    embedded: a long batch keeps what it finished if it is stopped."""
    return chunk_embed.parts(events, settings)


def process(events: Sequence[Pending], settings: Settings, rids: RequestIds | None = None) -> None:
    """Embed and store ``events``; on a permanent error, bisect to find the bad input."""
    if not events:
        return
    model = embedder()
    try:
        sets = chunk_embed.embed_sets(model, events, settings)
    except TransientEmbedError as error:
        retry_or_dead_letter(events, str(error), error.retry_after, settings.queue, rids)
        return
    except PermanentEmbedError as error:
        if len(events) == 1:
            dead_letter_now(events, str(error))
            return
        middle = len(events) // 2
        process(events[:middle], settings, rids)
        process(events[middle:], settings, rids)
        return
    stored = apply(t.store, sets, model.model, chunk_embed.chunker().name)
    metrics.CHUNKS_EMBEDDED.inc(sum(len(s.chunks) for s in stored))
    metrics.TOKENS_EMBEDDED.inc(sum(s.tokens for s in stored))
