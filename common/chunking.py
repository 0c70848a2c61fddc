"""Token-aware chunks of an event's text: what the worker embeds, one vector each.

A text of at most ``CHUNK_WHOLE_TOKENS`` tokens (with the local model: its whole 256-piece
window) is one chunk spanning all of it, so short events are embedded exactly as before (one
input, the whole text, as exact search with the model reads it). A longer text is chunked
paragraph by paragraph (paragraphs are separated by a blank line), and no chunk spans a
paragraph break:

- a paragraph of up to ``CHUNK_WHOLE_TOKENS`` is one chunk, by the same rule as a whole text:
  the model reads it whole;
- a fragment, a paragraph of at most an eighth of ``CHUNK_TOKENS`` (a heading, a one-line
  paragraph), joins the paragraph after it, so that a heading is read with its section and
  no chunk is three words; two paragraphs that can each stand alone are never merged;
- a longer paragraph is cut into chunks of at most ``CHUNK_TOKENS`` tokens (128 with the local
  model), ending at the largest boundary that fits (sentence, then word), each starting with
  up to ``CHUNK_OVERLAP_TOKENS`` tokens of the previous one's end, so a sentence at a
  boundary is read whole by one of its two neighbours.

Why paragraphs first: a chunk holding the end of one paragraph and the start of the next
embeds two subjects at once, and ranks below a chunk of either. Measured on the long
docstring sets (docs/long-documents.md, "Paragraphs first"), dense search by best chunk went
from 0.6375 to 0.6683 nDCG@10 on the 5,000 set (exact search on the short originals: 0.6757)
and from 0.7762 to 0.8094 on the 800 subset, with fewer chunks. Merging short neighbours up to
``CHUNK_TOKENS`` (the first version of the rule) gave back most of it through the pipeline
(0.6431 on the 5,000 set): there, as in a digest of tickets, a short paragraph is a whole
subject of its own. Those sets join their parts with blank lines, so there each paragraph is
one original document: the rule helps most where paragraphs are about different things, and
changes nothing for a text without blank lines (it is one paragraph, cut by the splitter as
before).

Counting:
- ``EMBEDDER=local``: the model's own word pieces (its shipped ``tokenizer.json``), special
  tokens included, so a chunk is never cut by the model's 256-piece window.
- ``ollama``/``openai``: no tokenizer is at hand, so characters stand in, at
  ``EMBED_CHARS_PER_TOKEN`` (3) characters a token: the docstring corpus below averages 3.2
  characters a word piece of the shipped tokenizer (865,372 characters, 270,850 pieces) and
  English prose more, so a chunk of ``CHUNK_TOKENS`` estimated tokens rarely holds more real
  ones. The budget is capped by ``EMBED_CONTEXT_TOKENS``, the server model's context, so no
  input the worker sends is over it by the estimate.

The splitter is `semantic-text-splitter` (Rust; counts with a `tokenizers` Tokenizer and
reports each chunk's character offset), chosen over `langchain-text-splitters`'
RecursiveCharacterTextSplitter by a measurement on 84 documents of about 10,000 characters
(865,000 in all: docstrings of the standard library and installed packages joined in
random order), both at 254 word pieces and 32 of overlap, trimming whitespace, on this
2-core machine under load from other builds:

- time for the 84 documents: semantic-text-splitter 9.8 s (4.7-11 s over runs),
  langchain 6.3 s (3.8 s in another run);
- chunks, each of which costs an embedding: **1,403** of 201 word pieces on average,
  against 1,458 of 147;
- chunks over the budget: none in either;
- a chunk's text equal to the slice of its span: **always**, against not always
  (langchain's ``start_index`` is found back with ``str.find``, which lands on an earlier
  copy of a repeated passage such as a "Parameters" heading);
- boundaries: paragraph, then sentence (Unicode rules), then word, against the separators
  ``"\n\n"``, ``"\n"``, ``" "``;
- dependencies: none beyond `tokenizers` (already here), against langchain-core.

Wrong spans would put a wrong passage in search hits, which alone rules langchain out;
semantic-text-splitter is slower to split (about 7 ms a chunk here, loaded), a fraction of
what embedding the chunk costs, and its fuller chunks leave 4 % fewer to embed.
Overlap in semantic-text-splitter is made of whole units (sentences, words) that fit in
``CHUNK_OVERLAP_TOKENS``: it is an upper bound, and paragraphs that each fill a chunk
share nothing, since each is read whole by one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from semantic_text_splitter import TextSplitter

if TYPE_CHECKING:
    from common.settings import Settings

SPECIAL_TOKENS = 2  # [CLS] and [SEP]: the local model counts them within its 256
FRAGMENT_SHARE = 8  # a paragraph of at most an eighth of a chunk is a fragment (a heading)
PARAGRAPHS = "p"  # the names' mark of paragraph-first chunking (migration 0007 renames sets)


@dataclass(frozen=True)
class Chunk:
    """A part of an event's text: ``text == event_text[start:end]``; ``tokens`` is its size
    as the budget counts it (word pieces with the local model, estimated otherwise)."""

    position: int
    start: int
    end: int
    text: str
    tokens: int


class Counter(Protocol):
    def __call__(self, text: str) -> int: ...


Budget = Callable[[int], int]  # a count of units (word pieces, characters) as tokens


class Chunker:
    """Splits texts into :class:`Chunk`\\ s of at most ``capacity`` units (word pieces, or
    characters), neighbours overlapping by about ``overlap`` units."""

    def __init__(
        self,
        splitter: TextSplitter,
        count: Counter,
        capacity: int,
        overlap: int,
        tokens_of: Budget,
        name: str,
        whole: int | None = None,
    ) -> None:
        self._splitter = splitter
        self._count = count
        self.capacity = capacity
        self.overlap = overlap
        self._tokens_of = tokens_of  # a count of units as tokens the budget counts
        self.whole = max(whole or capacity, capacity)  # a text of at most this is one chunk
        self.fragment = capacity // FRAGMENT_SHARE  # a paragraph this short joins the next
        self.name = name  # which settings made a chunk set (stored with the chunks)

    def split(self, text: str) -> list[Chunk]:
        """The chunks of ``text``, in order; one spanning all of it when it fits ``whole``."""
        units = self._count(text)  # counted once: most texts fit and are one chunk
        if units <= self.whole:
            return [Chunk(0, 0, len(text), text, self._tokens_of(units))]
        chunks = [
            Chunk(position, start, start + len(part), part, self._tokens_of(count))
            for position, (start, part, count) in enumerate(self._pieces(text))
        ]
        if not chunks:  # blanks only, longer than a chunk: the splitter trims them all away
            blank = text[: self.capacity]
            chunks.append(Chunk(0, 0, len(blank), blank, self._tokens_of(self._count(blank))))
        return chunks

    def _pieces(self, text: str) -> Iterator[tuple[int, str, int]]:
        """(offset, text, units) of each chunk of a text longer than ``whole``: paragraph by
        paragraph, a chunk never holding two paragraphs that could each stand alone. A
        paragraph of up to ``whole`` units is one chunk; a longer one is cut by the splitter;
        a fragment (at most ``fragment`` units: a heading, a one-line paragraph) joins the
        paragraph that follows it (a long one: its first chunk) while they fit ``whole``."""
        pending: tuple[int, int, int] | None = None  # start, end, units of waiting fragments
        for start, end in paragraphs(text):
            units = self._count(text[start:end])
            lead, pending = pending, None
            if lead is not None and units <= self.whole:  # a long paragraph: in _cut
                joined = self._count(text[lead[0] : end])
                if joined <= self.whole:
                    start, units = lead[0], joined
                else:
                    yield lead[0], text[lead[0] : lead[1]], lead[2]
                lead = None
            if units <= self.fragment:
                pending = (start, end, units)
            elif units <= self.whole:
                yield start, text[start:end], units
            else:
                yield from self._cut(text, start, end, lead)
        if pending is not None:
            yield pending[0], text[pending[0] : pending[1]], pending[2]

    def _cut(
        self, text: str, start: int, end: int, lead: tuple[int, int, int] | None
    ) -> Iterator[tuple[int, str, int]]:
        """The splitter's chunks of the paragraph ``text[start:end]``; ``lead``, fragments
        before it, opens its first chunk if that still fits ``whole``, else stands alone."""
        parts = [
            (start + offset, part) for offset, part in self._splitter.chunk_indices(text[start:end])
        ]
        if lead is not None:
            first_start, first = parts[0]
            joined = text[lead[0] : first_start + len(first)]
            units = self._count(joined)
            if units <= self.whole:
                yield lead[0], joined, units
                parts = parts[1:]
            else:
                yield lead[0], text[lead[0] : lead[1]], lead[2]
        for offset, part in parts:
            yield offset, part, self._count(part)


# A blank line: the paragraph break of plain text, Markdown and most ticket and posting bodies
# (ASCII whitespace only, so that migration 0007's SQL finds exactly the same breaks).
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """The spans of ``text``'s paragraphs, blank lines between them, whitespace trimmed off
    their edges; blank paragraphs are skipped."""
    start = 0
    for match in (*PARAGRAPH_BREAK.finditer(text), None):
        end = match.start() if match else len(text)
        part = text[start:end]
        stripped = part.strip()
        if stripped:
            left = start + len(part) - len(part.lstrip())
            yield left, left + len(stripped)
        if match:
            start = match.end()


def token_chunker(tokens: int, overlap: int, whole: int | None = None) -> Chunker:
    """Chunks counted in the local model's word pieces, ``tokens`` (and ``whole``) including
    the special tokens the model adds (the splitter counts without them)."""
    from common.embedders.tokenizer import load_tokenizer

    tokenizer = load_tokenizer()
    capacity = tokens - SPECIAL_TOKENS
    splitter = TextSplitter.from_huggingface_tokenizer(
        tokenizer, capacity=capacity, overlap=min(overlap, capacity - 1), trim=True
    )

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def with_specials(pieces: int) -> int:
        return pieces + SPECIAL_TOKENS

    return Chunker(
        splitter,
        count,
        capacity,
        overlap,
        with_specials,
        _name("local", tokens, overlap, 1.0, whole),
        whole - SPECIAL_TOKENS if whole else None,
    )


def char_chunker(
    tokens: int, overlap: int, chars_per_token: float, whole: int | None = None
) -> Chunker:
    """Chunks counted in characters, ``chars_per_token`` standing for a token."""
    capacity = max(int(tokens * chars_per_token), 1)
    chars_overlap = min(int(overlap * chars_per_token), capacity - 1)
    splitter = TextSplitter(capacity=capacity, overlap=chars_overlap, trim=True)

    def estimate(characters: int) -> int:
        return math.ceil(characters / chars_per_token)

    def chars(text: str) -> int:
        return len(text)

    return Chunker(
        splitter,
        chars,
        capacity,
        chars_overlap,
        estimate,
        _name("server", tokens, overlap, chars_per_token, whole),
        int(whole * chars_per_token) if whole else None,
    )


def _name(
    embedder: str, tokens: int, overlap: int, chars_per_token: float, whole: int | None
) -> str:
    """Which settings made a chunk set, e.g. ``wp128o16w256p`` (word pieces) or ``ch768o96p``
    (characters; ``p``: chunked paragraph by paragraph): stored with each chunk, so
    ``eventsearch reembed`` finds sets made otherwise."""
    suffix = (f"w{whole}" if whole and whole > tokens else "") + PARAGRAPHS
    if embedder == "local":
        return f"wp{tokens}o{overlap}{suffix}"
    capacity = max(int(tokens * chars_per_token), 1)
    return f"ch{capacity}o{min(int(overlap * chars_per_token), capacity - 1)}{suffix}"


def budget_tokens(settings: Settings) -> int:
    """Tokens per chunk: ``CHUNK_TOKENS``, within the embedder's context."""
    return min(settings.chunk_tokens, settings.context_tokens)


def whole_tokens(settings: Settings) -> int | None:
    """Tokens up to which a text is one chunk: ``CHUNK_WHOLE_TOKENS``, within the context;
    ``None`` when that is no more than a chunk."""
    whole = min(settings.chunk_whole_tokens or 0, settings.context_tokens)
    return whole if whole > budget_tokens(settings) else None


def _arguments(settings: Settings) -> tuple[str, int, int, float, int | None]:
    return (
        settings.embedder,
        budget_tokens(settings),
        settings.chunk_overlap_tokens,
        settings.embed_chars_per_token,
        whole_tokens(settings),
    )


@lru_cache(maxsize=8)
def _chunker(
    embedder: str, tokens: int, overlap: int, chars_per_token: float, whole: int | None
) -> Chunker:
    if embedder == "local":
        return token_chunker(tokens, overlap, whole)
    return char_chunker(tokens, overlap, chars_per_token, whole)


def chunking_name(settings: Settings) -> str:
    """The name of :func:`chunker_for`'s chunker, without building it (no tokenizer loaded)."""
    return _name(*_arguments(settings))


def chunker_for(settings: Settings) -> Chunker:
    """This process's chunker for the configured embedder (made once)."""
    return _chunker(*_arguments(settings))
