"""Migration 0005 on a database holding vectors: each becomes its event's chunk 0, with the
span its model read, nothing re-embedded; deleted and unembedded events get no chunk; the
old column goes; and the way back restores the vectors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.embedders.tokenizer import load_tokenizer
from common.migrate import alembic_config
from tests.conftest import DIM
from tests.migrated import database_at
from tests.stub_embedder import embed_text

LONG = "The platform team runs the nightly ingestion of every partner feed. " * 40
SHORT = "Senior data engineer in Nairobi"


@pytest.fixture
def old_database(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with database_at("0004", tmp_path) as migrated:
        yield migrated


def insert(engine: Engine, text_: str, status: str, model: str | None, vector: bool) -> uuid.UUID:
    event_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, tenant, source, type, text, status, model, embedding)"
                " VALUES (:id, 't', 's', 'x', :text, :status, :model, CAST(:v AS vector))"
            ),
            {
                "id": event_id,
                "text": text_,
                "status": status,
                "model": model,
                "v": str(embed_text(text_, DIM)) if vector else None,
            },
        )
    return event_id


def test_every_vector_becomes_chunk_0_with_the_span_its_model_read(
    old_database: tuple[str, Engine],
) -> None:
    url, engine = old_database
    local_long = insert(engine, LONG, "embedded", "all-MiniLM-L6-v2", vector=True)
    local_short = insert(engine, SHORT, "embedded", "all-MiniLM-L6-v2", vector=True)
    ollama_long = insert(engine, LONG, "embedded", "nomic-embed-text", vector=True)
    queued = insert(engine, "waiting", "queued", None, vector=False)
    deleted = insert(engine, "", "deleted", None, vector=False)

    command.upgrade(alembic_config(url), "0005")

    with engine.connect() as conn:
        chunks = {
            r.event_id: r
            for r in conn.execute(
                text(
                    "SELECT event_id, position, tenant, char_start, char_end, tokens, model,"
                    " embedding::text AS v FROM chunks"
                )
            )
        }
        columns = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT attname FROM pg_attribute WHERE attrelid = 'events'::regclass"
                    " AND attnum > 0 AND NOT attisdropped"
                )
            )
        }
        indexes = {
            r[0]
            for r in conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'")
            )
        }
        chunking = conn.execute(
            text("SELECT count(*) FROM events WHERE chunking IS NOT NULL")
        ).scalar_one()
    assert set(chunks) == {local_long, local_short, ollama_long}
    assert queued not in chunks and deleted not in chunks
    assert all(c.position == 0 and c.char_start == 0 and c.tenant == "t" for c in chunks.values())
    # The local model read 254 word pieces of the long text (256 with [CLS] and [SEP]).
    encoding = load_tokenizer().encode(LONG, add_special_tokens=False)
    assert chunks[local_long].char_end == encoding.offsets[253][1] < len(LONG)
    assert chunks[local_long].tokens == 256
    assert chunks[local_short].char_end == len(SHORT)
    # Ollama was sent the whole text, untruncated.
    assert (
        chunks[ollama_long].char_end == len(LONG)
        and chunks[ollama_long].model == "nomic-embed-text"
    )
    # The vectors moved as they were.
    stored = [float(x) for x in chunks[local_short].v.strip("[]").split(",")]
    assert stored == pytest.approx(embed_text(SHORT, DIM), abs=1e-6)
    assert "embedding" not in columns and "chunking" in columns
    assert "ix_chunks_embedding_hnsw" in indexes
    assert chunking == 0  # every moved set is stale for `eventsearch reembed`

    # Deleting an event removes its chunks (the trigger), whoever writes the status.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET status = 'deleted' WHERE id = :id"), {"id": local_short}
        )
        left = conn.execute(
            text("SELECT count(*) FROM chunks WHERE event_id = :id"), {"id": local_short}
        ).scalar_one()
    assert left == 0

    command.downgrade(alembic_config(url), "0004")
    with engine.connect() as conn:
        back = conn.execute(
            text("SELECT embedding IS NOT NULL FROM events WHERE id = :id"), {"id": local_long}
        ).scalar_one()
    assert back is True
