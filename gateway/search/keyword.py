"""Keyword ranking: Okapi BM25 computed by PostgreSQL over the generated ``search_text``
tsvector (english stemming, GIN index).

PostgreSQL's own ``ts_rank``/``ts_rank_cd`` know nothing of how rare a word is, and a
natural-language query AND-ed word by word matches almost nothing; measured on a BEIR-style
benchmark (README, Search) that ranking scored a third of BM25's nDCG@10. So:

- any of the query's words matches (the GIN index finds the candidates: every event, within
  the tenant and the filters, holding at least one of them);
- each candidate scores BM25 (k1 = 1.2, b = 0.75): term frequencies from the tsvector's
  positions, document frequencies counted over the candidates (which hold every event that
  has the word, so they are exact within the filters), N = the events in scope, and the
  length of a document taken as its number of distinct lexemes;
- a query using web-search syntax (``"a phrase"``, ``-word``, ``or``) must also satisfy
  ``websearch_to_tsquery``, so quotes and exclusions keep their meaning.

The cost grows with the number of events holding a query word; fine for the sizes this
service targets per tenant, and the place to swap in a BM25 index extension later.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncConnection

from common.models import TEXT_SEARCH_CONFIG, Event, EventStatus
from gateway.search.candidates import COLUMNS, Candidate, from_row
from gateway.search.filters import Where, clauses

_CONFIG: ColumnElement[Any] = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
K1, B = 1.2, 0.75
# Quotes, a leading minus or the word "or": the query means more than its words.
_WEB_SYNTAX = re.compile(r'"|(^|\s)-\w|\sor\s', re.IGNORECASE)


async def rank(
    connection: AsyncConnection, query: str, where: Where, limit: int
) -> list[Candidate]:
    """The ``limit`` events with the best BM25 score for ``query`` among those passing
    ``where`` (deleted ones never), best first."""
    web_syntax = bool(_WEB_SYNTAX.search(query))
    params = {**where.params, "query": query, "limit": limit}
    rows = await connection.execute(statement(where.shape, web_syntax), params)
    return [
        from_row(row, score=float(row.score), ranking="keyword", rank=i)
        for i, row in enumerate(rows, start=1)
    ]


@lru_cache(maxsize=128)
def statement(shape: tuple[bool, ...], web_syntax: bool) -> Select[Any]:
    """The BM25 query for one filter shape, built once; bound: the filters' values,
    ``query`` and ``limit``."""
    query = bindparam("query", type_=Text)
    # plainto_tsquery gives the normalised lexemes joined by '&': OR-ing them is a text
    # rewrite, and the cast back to tsquery keeps the lexemes as they are.
    any_word = cast(
        func.replace(cast(func.plainto_tsquery(_CONFIG, query), Text), "&", "|"), TSQUERY
    )
    scope = [
        *clauses(shape),
        Event.status.not_in([EventStatus.deleted, EventStatus.superseded]),
        # A version of a subject is found once embedded: the one embedded version is the
        # subject's one hit (common/lifecycle/subjects.py), also while a newer one waits.
        or_(Event.subject.is_(None), Event.status == EventStatus.embedded),
    ]
    match = [*scope, Event.search_text.op("@@")(any_word)]
    if web_syntax:
        match.append(Event.search_text.op("@@")(func.websearch_to_tsquery(_CONFIG, query)))
    terms = select(
        func.unnest(func.tsvector_to_array(func.to_tsvector(_CONFIG, query))).label("lexeme")
    ).cte("terms")
    matches = (
        select(
            Event.id.label("id"),
            Event.search_text.label("doc"),
            cast(func.length(Event.search_text), Float).label("dl"),
        )
        .where(*match)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    lexemes = func.unnest(matches.c.doc).table_valued("lexeme", "positions", "weights").lateral("u")
    tf = (
        select(
            matches.c.id,
            matches.c.dl,
            lexemes.c.lexeme,
            cast(func.array_length(lexemes.c.positions, 1), Float).label("tf"),
        )
        .select_from(matches.join(lexemes, true()))
        .where(lexemes.c.lexeme.in_(select(terms.c.lexeme)))
        .cte("tf")
    )
    df = select(tf.c.lexeme, func.count().label("df")).group_by(tf.c.lexeme).cte("df")
    n = select(cast(func.count(), Float)).where(*scope).scalar_subquery()
    avgdl = select(func.avg(matches.c.dl)).scalar_subquery()
    idf = func.ln(1 + (n - df.c.df + 0.5) / (df.c.df + 0.5))
    saturation = tf.c.tf * (K1 + 1) / (tf.c.tf + K1 * (1 - B + B * tf.c.dl / avgdl))
    scores = (
        select(tf.c.id, func.sum(idf * saturation).label("score"))
        .select_from(tf.join(df, df.c.lexeme == tf.c.lexeme))
        .group_by(tf.c.id)
        .cte("scores")
    )
    return (
        select(*COLUMNS, scores.c.score)
        .join(scores, scores.c.id == Event.id)
        .order_by(scores.c.score.desc(), Event.id)
        .limit(bindparam("limit", type_=Integer))
    )
