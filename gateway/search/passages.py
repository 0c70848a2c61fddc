"""The ``passage`` of keyword hits: the words of the query found in the text, with their
surroundings, as a character span of the event's text.

Dense hits carry their best chunk's span from the ranking itself. A hit found by keyword
only gets PostgreSQL's ``ts_headline`` (the same parser and stemming as ``search_text``) over
its *region*, the best chunk of the keyword ranking (an event not yet chunked: its whole
text), asked for one fragment of up to ``MAX_WORDS`` words holding every word of the query
where the region has them all (else any), with markers around the matches; the markers are
removed and the fragment found back in the region, so that ``passage.text`` is always
``text[start:end]``. Only the final hits are asked for, in one statement, and only their
regions are parsed again. A region without any of the words (chunk 0 of a vector from before
chunking: keyword search reads its whole text, migration 0007) is given up for the whole
text. A text no longer than ``WHOLE_CHARS`` is its own passage.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Integer

from common.models import TEXT_SEARCH_CONFIG
from gateway.search.candidates import Candidate

WHOLE_CHARS = 300
MAX_WORDS, MIN_WORDS = 40, 20
START, STOP = "\u27e6", "\u27e7"  # mathematical white square brackets: rare in event text
_CONFIG = f"'{TEXT_SEARCH_CONFIG}'"
# Every word of the query where the region has them all, else any: ts_headline picks the
# first of the shortest stretches of text matching its query, and with "any word" that is
# merely the first match, however common the word.
HEADLINE = text(
    f"WITH q AS (SELECT plainto_tsquery({_CONFIG}, :query) AS every),"
    " w AS (SELECT every, replace(every::text, '&', '|')::tsquery AS any FROM q),"
    " h AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), :starts, :ends) AS h(id, s, e)),"
    " r AS (SELECT h.id, h.s, ev.text, ev.search_text, p.part, to_tsvector("
    f"{_CONFIG}, p.part) AS v FROM h JOIN events ev ON ev.id = h.id,"
    "  LATERAL (SELECT substr(ev.text, h.s + 1, h.e - h.s) AS part) p)"
    " SELECT r.id, CASE WHEN r.v @@ w.any THEN r.s ELSE 0 END AS s,"
    " CASE WHEN r.v @@ w.any THEN"
    f"  ts_headline({_CONFIG}, r.part,"
    "   CASE WHEN r.v @@ w.every THEN w.every ELSE w.any END, :options)"
    f" ELSE ts_headline({_CONFIG}, r.text,"
    "   CASE WHEN r.search_text @@ w.every THEN w.every ELSE w.any END, :options)"
    " END AS fragment FROM r, w"
).bindparams(bindparam("starts", type_=ARRAY(Integer)), bindparam("ends", type_=ARRAY(Integer)))
OPTIONS = (
    f"MaxFragments=1, MaxWords={MAX_WORDS}, MinWords={MIN_WORDS}, StartSel={START},"
    f" StopSel={STOP}, FragmentDelimiter=\u2026"
)


def span_of(text_: str, fragment: str, start: int = 0) -> tuple[int, int]:
    """Where ``fragment`` (markers removed) lies in ``text_``, looked for from ``start``; the
    text's start when the headline cannot be found back (it never rewrites the text it
    quotes, but be safe)."""
    plain = fragment.replace(START, "").replace(STOP, "").strip()
    at = text_.find(plain, start) if plain else -1
    if at < 0:
        return 0, min(len(text_), WHOLE_CHARS)
    return at, at + len(plain)


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
    regions = {i: h.region or (0, len(h.text)) for i, h in long.items()}
    rows = await connection.execute(
        HEADLINE,
        {
            "ids": [str(i) for i in long],
            "starts": [s for s, _ in regions.values()],
            "ends": [e for _, e in regions.values()],
            "query": query,
            "options": OPTIONS,
        },
    )
    for row in rows:
        hit = long[row.id]
        hit.passage = span_of(hit.text, row.fragment or "", row.s)
    for hit in long.values():
        if hit.passage is None:
            hit.passage = (0, min(len(hit.text), WHOLE_CHARS))
