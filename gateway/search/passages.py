"""The ``passage`` of keyword hits: the words of the query found in the text, with their
surroundings, as a character span of the event's text.

Dense hits carry their best chunk's span from the ranking itself. A hit found by keyword
only gets PostgreSQL's ``ts_headline`` (the same parser and stemming as ``search_text``),
asked for one fragment of up to ``MAX_WORDS`` words holding every word of the query where
the text has them all (else any), with markers around the matches; the
markers are removed and the fragment found back in the text, so that ``passage.text`` is
always ``text[start:end]``. Only the final hits are asked for (``ts_headline`` parses the
whole text again), in one statement. A text no longer than ``WHOLE_CHARS`` is its own
passage.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common.models import TEXT_SEARCH_CONFIG
from gateway.search.candidates import Candidate

WHOLE_CHARS = 300
MAX_WORDS, MIN_WORDS = 40, 20
START, STOP = "\u27e6", "\u27e7"  # mathematical white square brackets: rare in event text
# Every word of the query where the text has them all, else any: ts_headline picks the
# first of the shortest stretches of text matching its query, and with "any word" that is
# merely the first match, however common the word.
HEADLINE = text(
    f"WITH q AS (SELECT plainto_tsquery('{TEXT_SEARCH_CONFIG}', :query) AS every)"
    f" SELECT e.id, ts_headline('{TEXT_SEARCH_CONFIG}', e.text,"
    " CASE WHEN e.search_text @@ q.every THEN q.every"
    " ELSE replace(q.every::text, '&', '|')::tsquery END,"
    " :options) AS fragment FROM events e, q WHERE e.id IN :ids"
).bindparams(bindparam("ids", expanding=True))
OPTIONS = (
    f"MaxFragments=1, MaxWords={MAX_WORDS}, MinWords={MIN_WORDS}, StartSel={START},"
    f" StopSel={STOP}, FragmentDelimiter=\u2026"
)


def span_of(text_: str, fragment: str) -> tuple[int, int]:
    """Where ``fragment`` (markers removed) lies in ``text_``; the text's start when the
    headline cannot be found back (it never rewrites the text it quotes, but be safe)."""
    plain = fragment.replace(START, "").replace(STOP, "").strip()
    start = text_.find(plain) if plain else -1
    if start < 0:
        return 0, min(len(text_), WHOLE_CHARS)
    return start, start + len(plain)


async def fill_keyword_passages(
    connection: AsyncConnection, query: str, hits: Sequence[Candidate]
) -> None:
    """Give every hit without a passage the part of its text around the query's words."""
    missing = [h for h in hits if h.passage is None]
    for hit in missing:
        if len(hit.text) <= WHOLE_CHARS:
            hit.passage = (0, len(hit.text))
    long = {h.id: h for h in missing if h.passage is None}
    if not long:
        return
    rows = await connection.execute(
        HEADLINE, {"ids": list(long), "query": query, "options": OPTIONS}
    )
    for row in rows:
        hit = long[row.id]
        hit.passage = span_of(hit.text, row.fragment or "")
    for hit in long.values():
        if hit.passage is None:
            hit.passage = (0, min(len(hit.text), WHOLE_CHARS))
