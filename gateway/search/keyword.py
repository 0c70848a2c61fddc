"""Keyword ranking: PostgreSQL full-text search over the generated ``search_text`` column.

The query is read with ``websearch_to_tsquery`` (quotes for phrases, ``or``, ``-word``), but
a plain AND of every word finds nothing for most natural-language questions, so any word
matches (the same lexemes OR-ed) and events holding all of them come first; within each
group ``ts_rank_cd`` (cover density, normalised to [0, 1)) orders them. Events are searchable
by keyword as soon as they are recorded, embedded or not (deleted ones never).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, Text, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession

from common.models import TEXT_SEARCH_CONFIG, Event, EventStatus
from gateway.search.candidates import COLUMNS, Candidate, from_row

_CONFIG: ColumnElement[Any] = literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig")
# ts_rank_cd normalisation 32: rank / (rank + 1), a score in [0, 1).
_NORMALISE = 32


async def rank(
    session: AsyncSession, query: str, where: Sequence[ColumnElement[bool]], limit: int
) -> list[Candidate]:
    """The ``limit`` events best matching ``query``'s words among those passing ``where``."""
    every_word = func.websearch_to_tsquery(_CONFIG, query)
    # plainto_tsquery gives normalised lexemes joined by '&': OR-ing them is a text rewrite,
    # and the cast back to tsquery keeps the lexemes as they are.
    any_word = cast(
        func.replace(cast(func.plainto_tsquery(_CONFIG, query), Text), "&", "|"), TSQUERY
    )
    all_words = cast(Event.search_text.op("@@")(every_word), Integer)
    density = func.ts_rank_cd(Event.search_text, any_word, _NORMALISE)
    score = ((all_words + density) / 2).label("score")
    rows = await session.execute(
        select(*COLUMNS, score)
        .where(*where, Event.status != EventStatus.deleted, Event.search_text.op("@@")(any_word))
        .order_by(score.desc(), Event.id)
        .limit(limit)
    )
    return [
        from_row(row, score=float(row.score), ranking="keyword", rank=i)
        for i, row in enumerate(rows, start=1)
    ]
