"""Embedding events as chunk sets: each event's text is split (common/chunking.py), the
chunks of a group of events are embedded in calls bounded by ``EMBED_BATCH_SIZE`` inputs,
``EMBED_BATCH_MAX_TOKENS`` tokens and ``EMBED_BATCH_MAX_CHARS`` characters, and every
event's vectors come back together as one :class:`~common.chunk_store.ChunkSet`, stored in
one transaction. One 100,000-character event is then a few dozen calls of ordinary size,
never one giant call, and no chunk is ever sent over the model's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from common.chunk_store import ChunkSet
from common.chunking import Chunk, Chunker, chunker_for
from common.embedders import Embedder, PermanentEmbedError
from common.lifecycle.transitions import Pending
from common.settings import Settings
from workers import context


def chunker() -> Chunker:
    """This process's chunker (made once for its settings)."""
    return chunker_for(context.settings())


@lru_cache(maxsize=128)  # above EMBED_BATCH_SIZE's default; up to ~25 MB of long texts
def chunks_of(text: str) -> tuple[Chunk, ...]:
    """The chunks of ``text`` (cached: a batch is grouped by them, then embedded, and a
    bisected batch meets the same texts again)."""
    return tuple(chunker().split(text))


def calls(chunks: Sequence[Chunk], settings: Settings) -> list[list[int]]:
    """Indices of ``chunks`` in consecutive embedder calls within the three budgets (a chunk
    over one of them is a call of its own)."""
    out: list[list[int]] = []
    tokens = chars = 0
    for index, chunk in enumerate(chunks):
        if (
            not out
            or len(out[-1]) >= settings.embed_batch_size
            or tokens + chunk.tokens > settings.embed_batch_max_tokens
            or chars + len(chunk.text) > settings.embed_batch_max_chars
        ):
            out.append([])
            tokens = chars = 0
        out[-1].append(index)
        tokens += chunk.tokens
        chars += len(chunk.text)
    return out


def parts(events: Sequence[Pending], settings: Settings) -> list[list[Pending]]:
    """Consecutive events in groups of about one embedder call's worth of chunks, each
    group stored before the next is embedded (an event of more chunks is a group alone,
    spread over several calls): a long batch keeps what it finished if it is stopped."""
    out: list[list[Pending]] = []
    count = tokens = 0
    for event in events:
        chunks = chunks_of(event.text)
        size = sum(c.tokens for c in chunks)
        if (
            not out
            or count + len(chunks) > settings.embed_batch_size
            or tokens + size > settings.embed_batch_max_tokens
        ):
            out.append([])
            count = tokens = 0
        out[-1].append(event)
        count += len(chunks)
        tokens += size
    return out


def embed_sets(embedder: Embedder, events: Sequence[Pending], settings: Settings) -> list[ChunkSet]:
    """Every event's chunk set with its vectors. Raises the embedder's errors; a permanent
    one for a single event names the chunks of the refused call, and says so when the
    refusal is about the context (which chunking should have made impossible)."""
    flat = [chunk for event in events for chunk in chunks_of(event.text)]
    context = settings.context_tokens
    for chunk in flat:
        if chunk.tokens > context:  # the chunker's budget is within the context: a bug
            raise PermanentEmbedError(over_context(chunk, len(flat), context, settings))
    vectors: list[list[float]] = []
    for call in calls(flat, settings):
        try:
            vectors += embedder.embed([flat[i].text for i in call])
        except PermanentEmbedError as error:
            if len(events) == 1:
                first, last = flat[call[0]], flat[call[-1]]
                what = (
                    f"chunks {first.position}-{last.position} of {len(flat)} (characters "
                    f"{first.start}-{last.end})"
                )
                if "context" in str(error).lower():
                    raise PermanentEmbedError(
                        f"{what} refused as over the model's context although chunked to "
                        f"{settings.chunk_tokens} tokens (estimated at "
                        f"{settings.embed_chars_per_token} characters each; "
                        f"EMBED_CONTEXT_TOKENS={context}): lower CHUNK_TOKENS or "
                        f"EMBED_CHARS_PER_TOKEN: {error}"
                    ) from None
                raise PermanentEmbedError(f"{what} refused: {error}") from None
            raise
    sets: list[ChunkSet] = []
    start = 0
    for event in events:
        chunks = chunks_of(event.text)
        sets.append(ChunkSet(event.id, chunks, vectors[start : start + len(chunks)]))
        start += len(chunks)
    return sets


def over_context(chunk: Chunk, total: int, context: int, settings: Settings) -> str:
    return (
        f"chunk {chunk.position} of {total} (characters {chunk.start}-{chunk.end}) holds "
        f"{chunk.tokens} tokens, over the model's context of {context} (EMBED_CONTEXT_TOKENS): "
        "not sent"
    )
