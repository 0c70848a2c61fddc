"""Migration 0007 on a database holding chunk sets: every chunk gets the words of its own span
(a whole-text chunk its event's, a vector from before chunking its whole text's), and any
writer that leaves the column out gets it filled; the sets that paragraph-first chunking
would make alike are renamed as its own; the way back drops the column."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from common.migrate import alembic_config
from tests.conftest import DIM
from tests.migrated import database_at
from tests.stub_embedder import embed_text

SHORT = "Senior data engineer in Nairobi"
LONG = "The harbour crane needs new cables.\n\nThe night shift logs every glacier sample."
SPLIT = LONG.index("\n\n")


@pytest.fixture
def database(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with database_at("0006", tmp_path) as migrated:
        yield migrated


def event(conn: Connection, body: str, chunking: str | None) -> uuid.UUID:
    event_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO events (id, tenant, source, type, text, status, model, chunking)"
            " VALUES (:id, 't', 's', 'x', :text, 'embedded', 'm', :chunking)"
        ),
        {"id": event_id, "text": body, "chunking": chunking},
    )
    return event_id


def chunk(conn: Connection, event_id: uuid.UUID, position: int, start: int, end: int) -> None:
    conn.execute(
        text(
            "INSERT INTO chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
            " embedding) VALUES (:id, :position, 't', :start, :end, 3, 'm', CAST(:v AS vector))"
        ),
        {"id": event_id, "position": position, "start": start, "end": end, "v": str(vec())},
    )


def vec() -> list[float]:
    return embed_text("x", DIM)


def words(conn: Connection, event_id: uuid.UUID) -> list[str]:
    """Each chunk's search_text, as text, in order."""
    return [
        r[0]
        for r in conn.execute(
            text("SELECT search_text::text FROM chunks WHERE event_id = :id ORDER BY position"),
            {"id": event_id},
        )
    ]


def tsvector(conn: Connection, body: str) -> str:
    return str(conn.execute(text("SELECT to_tsvector('english', :t)::text"), {"t": body}).scalar())


def test_each_chunk_gets_the_words_of_its_span(database: tuple[str, Engine]) -> None:
    url, engine = database
    with engine.begin() as conn:
        short = event(conn, SHORT, "ch768o96")
        chunk(conn, short, 0, 0, len(SHORT))
        long = event(conn, LONG, "ch768o96")
        chunk(conn, long, 0, 0, SPLIT)
        chunk(conn, long, 1, SPLIT + 2, len(LONG))
        legacy = event(conn, LONG, None)  # migration 0005's chunk 0: what the model read
        chunk(conn, legacy, 0, 0, SPLIT)
        flat_text = LONG.replace("\n\n", " ")  # one paragraph: cut as before
        flat = event(conn, flat_text, "wp128o16w256")
        chunk(conn, flat, 0, 0, SPLIT)
        chunk(conn, flat, 1, SPLIT + 1, len(flat_text))

    command.upgrade(alembic_config(url), "head")

    with engine.begin() as conn:
        assert words(conn, short) == [tsvector(conn, SHORT)]
        assert words(conn, long) == [
            tsvector(conn, LONG[:SPLIT]),
            tsvector(conn, LONG[SPLIT + 2 :]),
        ]
        assert words(conn, legacy) == [tsvector(conn, LONG)]  # keyword still reads it all
        names: dict[uuid.UUID, str | None] = {
            r.id: r.chunking for r in conn.execute(text("SELECT id, chunking FROM events"))
        }
        # Alike under paragraph-first chunking: one whole chunk, or no blank line in the text.
        assert names[short] == "ch768o96p" and names[flat] == "wp128o16w256p"
        assert names[long] == "ch768o96" and names[legacy] is None  # stale: reembed chunks them
        # A writer leaving the column out (COPY, a test, a bench) gets it filled.
        later = event(conn, LONG, "ch768o96")
        chunk(conn, later, 0, 0, SPLIT)
        chunk(conn, later, 1, SPLIT + 2, len(LONG))
        assert words(conn, later) == words(conn, long)
        nullable, indexed = conn.execute(
            text(
                "SELECT (SELECT is_nullable FROM information_schema.columns"
                "  WHERE table_name = 'chunks' AND column_name = 'search_text'),"
                " EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'ix_chunks_search_text')"
            )
        ).one()
    assert nullable == "NO" and indexed

    command.downgrade(alembic_config(url), "0006")
    with engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'chunks' AND column_name = 'search_text'"
            )
        ).scalar_one()
        kept = conn.execute(text("SELECT count(*) FROM chunks")).scalar_one()
    assert left == 0 and kept == 8
