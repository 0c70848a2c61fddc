"""Keyword ranking: Okapi BM25 computed by PostgreSQL over tsvectors (english stemming, GIN
indexes), each event ranked by its best *unit*: a chunk of an embedded event (its
``chunks.search_text``), or the whole text of an event not embedded yet (its
``events.search_text``), which has no chunks.

Why by chunk: a long event scored whole sums words from unrelated parts of it, and its
length pushes every such match down. Measured on long sets made of joined docstrings (README,
Long documents), BM25 by best chunk scored 0.761 nDCG@10 against 0.669 by whole event, and
hybrid search fused with it came above dense search (RRF 1:1: 0.806 against 0.776), where
fused with the whole-event ranking it stayed below. A short event is one chunk holding its
whole text: ranked exactly as before.

PostgreSQL's own ``ts_rank``/``ts_rank_cd`` know nothing of how rare a word is, and a
natural-language query AND-ed word by word matches almost nothing; measured on a BEIR-style
benchmark (README, Search) that ranking scored a third of BM25's nDCG@10. So:

- any of the query's words matches (the GIN indexes find the candidates: every unit, within
  the tenant and the filters, holding at least one of them);
- each candidate unit scores BM25 (k1 = 1.2, b = 0.75): term frequencies from the tsvector's
  positions, document frequencies counted over the candidates (which hold every unit that
  has the word, so they are exact within the filters), N = the units in scope (counted apart
  and kept ``SCOPE_TTL_S``: see :func:`units_in_scope`), and the length of a unit taken as
  its number of distinct lexemes;
- an event's score is its best unit's, and that unit's span is where its passage is looked
  for (gateway/search/passages.py);
- a query using web-search syntax (``"a phrase"``, ``-word``, ``or``) must also be
  satisfied by the event's whole text (``websearch_to_tsquery``), so quotes and exclusions
  keep their meaning for the event, not for one chunk of it.

The cost grows with the number of units holding a query word (``make bench-scale``'s
``keyword_*_by_events``: docs/scaling.md), and the place to swap in a BM25 index extension
later.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY, distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection

from common.models import TEXT_SEARCH_CONFIG, Chunk, Event, EventStatus
from gateway.search.candidates import COLUMNS, Candidate, from_row
from gateway.search.filters import Where, clauses

_CONFIG: ColumnElement[Any] = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
K1, B = 1.2, 0.75
# Quotes, a leading minus or the word "or": the query means more than its words.
_WEB_SYNTAX = re.compile(r'"|(^|\s)-\w|\sor\s', re.IGNORECASE)
SCOPE_TTL_S = 30.0  # how old BM25's N may be (units_in_scope)
SCOPE_CACHE_SIZE = 4096  # tenant and filter combinations remembered per process
_SCOPES: OrderedDict[tuple[tuple[bool, ...], bytes], tuple[float, int]] = OrderedDict()


async def rank(
    connection: AsyncConnection, query: str, where: Where, limit: int
) -> list[Candidate]:
    """The ``limit`` events with the best BM25 score for ``query`` among those passing
    ``where`` (deleted ones never), best first, each by its best unit (its ``region``)."""
    web_syntax = bool(_WEB_SYNTAX.search(query))
    units = await units_in_scope(connection, where)
    params = {**where.params, "query": query, "limit": limit, "units": units}
    rows = await connection.execute(statement(where.shape, web_syntax), params)
    return [
        from_row(row, score=float(row.score), ranking="keyword", rank=i, region=row_span(row))
        for i, row in enumerate(rows, start=1)
    ]


def row_span(row: Any) -> tuple[int, int]:
    return int(row.char_start), int(row.char_end)


def scope(shape: tuple[bool, ...]) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """The conditions of the two kinds of unit. Embedded events are searched by their
    chunks; the others (queued, or failed) have none and are one unit each. Deleted and
    superseded events are never found, and a version of a subject only once embedded: the
    one embedded version is the subject's one hit (common/lifecycle/subjects.py), also while
    a newer one waits."""
    chunked = [
        Chunk.tenant == bindparam("f_tenant"),
        *clauses(shape),
        Event.status == EventStatus.embedded,
    ]
    whole = [
        *clauses(shape),
        Event.status.in_([EventStatus.queued, EventStatus.failed]),
        Event.subject.is_(None),
    ]
    return chunked, whole


@lru_cache(maxsize=128)
def scope_statement(shape: tuple[bool, ...]) -> Select[Any]:
    """How many units one filter shape holds (BM25's N)."""
    chunked, whole = scope(shape)
    chunks = select(func.count()).select_from(Chunk).join(Event, Event.id == Chunk.event_id)
    events = select(func.count()).where(*whole)
    return select(chunks.where(*chunked).scalar_subquery() + events.scalar_subquery())


async def units_in_scope(connection: AsyncConnection, where: Where) -> int:
    """BM25's N for ``where``: counted once per ``SCOPE_TTL_S`` per process, tenant and
    filters. The count reads every chunk in scope (82 of 159 ms of a keyword search at
    100,000 events, bench-scale); N only enters the IDF, through a logarithm, so a count
    some seconds old ranks as a fresh one would (Elasticsearch's term statistics lag
    behind by its refresh interval likewise)."""
    key = (where.shape, orjson.dumps(where.params, option=orjson.OPT_SORT_KEYS))
    now = time.monotonic()
    cached = _SCOPES.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    units = int((await connection.execute(scope_statement(where.shape), where.params)).scalar_one())
    _SCOPES[key] = (now + SCOPE_TTL_S, units)
    _SCOPES.move_to_end(key)
    while len(_SCOPES) > SCOPE_CACHE_SIZE:
        _SCOPES.popitem(last=False)
    return units


@lru_cache(maxsize=128)
def statement(shape: tuple[bool, ...], web_syntax: bool) -> Select[Any]:
    """The BM25 query for one filter shape, built once; bound: the filters' values,
    ``query``, ``limit`` and ``units`` (N, from :func:`units_in_scope`)."""
    query = bindparam("query", type_=Text)
    # plainto_tsquery gives the normalised lexemes joined by '&': OR-ing them is a text
    # rewrite, and the cast back to tsquery keeps the lexemes as they are.
    any_word = cast(
        func.replace(cast(func.plainto_tsquery(_CONFIG, query), Text), "&", "|"), TSQUERY
    )
    chunked, whole = scope(shape)
    # Quotes and exclusions hold for the event's whole text, whichever unit matched.
    syntax = (
        [Event.search_text.op("@@")(func.websearch_to_tsquery(_CONFIG, query))]
        if web_syntax
        else []
    )
    matches = (
        union_all(
            select(
                Chunk.event_id.label("id"),
                Chunk.char_start.label("char_start"),
                Chunk.char_end.label("char_end"),
                Chunk.search_text.label("doc"),
            )
            .join(Event, Event.id == Chunk.event_id)
            .where(*chunked, Chunk.search_text.op("@@")(any_word), *syntax),
            select(
                Event.id,
                literal(0, Integer),
                func.length(Event.text),
                Event.search_text,
            ).where(*whole, Event.search_text.op("@@")(any_word), *syntax),
        )
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    # The query's lexemes only, cut out of each unit's tsvector by C functions: setweight
    # marks them (weight A) and ts_filter keeps what is marked, so unnest yields one row per
    # query word the unit holds, not one per word of the unit (a third of the statement's
    # time at 100,000 units, bench-scale). Stored tsvectors are to_tsvector's, all weight D,
    # so only the query's words carry A.
    words = func.tsvector_to_array(func.to_tsvector(_CONFIG, query))
    query_part = func.ts_filter(
        func.setweight(matches.c.doc, literal_column("'A'::\"char\""), words),
        literal_column("'{a}'::\"char\"[]"),
    )
    lexemes = func.unnest(query_part).table_valued("lexeme", "positions", "weights").lateral("u")
    tf = (
        select(
            matches.c.id,
            matches.c.char_start,
            matches.c.char_end,
            cast(func.length(matches.c.doc), Float).label("dl"),
            lexemes.c.lexeme,
            cast(func.array_length(lexemes.c.positions, 1), Float).label("tf"),
        )
        .select_from(matches.join(lexemes, true()))
        .cte("tf")
    )
    df = select(tf.c.lexeme, func.count().label("df")).group_by(tf.c.lexeme).cte("df")
    # N, counted apart (units_in_scope) and at most SCOPE_TTL_S old; never below a word's df,
    # which a count taken before new units arrived could be.
    n = func.greatest(bindparam("units", type_=Float), cast(df.c.df, Float))
    avgdl = select(func.avg(cast(func.length(matches.c.doc), Float))).scalar_subquery()
    idf = func.ln(1 + (n - df.c.df + 0.5) / (df.c.df + 0.5))
    saturation = tf.c.tf * (K1 + 1) / (tf.c.tf + K1 * (1 - B + B * tf.c.dl / avgdl))
    scores = (
        select(tf.c.id, tf.c.char_start, tf.c.char_end, func.sum(idf * saturation).label("score"))
        .select_from(tf.join(df, df.c.lexeme == tf.c.lexeme))
        .group_by(tf.c.id, tf.c.char_start, tf.c.char_end)
        .cte("scores")
    )
    best = (
        select(scores)
        .ext(distinct_on(scores.c.id))
        .order_by(scores.c.id, scores.c.score.desc(), scores.c.char_start)
        .cte("best")
    )
    # The ``limit`` best before the join that fetches text and metadata (as the dense
    # statement's ``top``): joined first, every scored event was fetched.
    top = (
        select(best)
        .order_by(best.c.score.desc(), best.c.id)
        .limit(bindparam("limit", type_=Integer))
        .cte("top")
    )
    return (
        select(*COLUMNS, top.c.score, top.c.char_start, top.c.char_end)
        .join(top, top.c.id == Event.id)
        .order_by(top.c.score.desc(), Event.id)
    )
