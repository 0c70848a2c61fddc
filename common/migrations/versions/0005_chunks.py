"""chunks: a vector per chunk of an event's text, with its character span; the HNSW index
moves there, and every existing vector becomes its event's chunk 0 (nothing re-embedded)

Revision ID: 0005
Revises: 0004

- ``chunks`` (event_id, position) is the primary key: an event's chunk set is its rows,
  replaced whole in one transaction by the worker, so it is complete or absent. ``tenant``
  and ``model`` are copied from the event so that the HNSW scan filters on the chunk rows
  themselves before any join. ON DELETE CASCADE for rows removed outright, and a trigger
  that removes the set when an event becomes ``deleted`` (deletion keeps a tombstone row),
  whoever writes that status.
- ``events.chunking``: the chunker that made the event's set (``wp256o32``: word pieces,
  budget, overlap); NULL for the vectors moved here, so ``eventsearch reembed`` can find
  and chunk them.
- The legacy span, honestly: the local model (all-MiniLM-L6-v2) read the first 256 word
  pieces, [CLS] and [SEP] included, and nothing after, so its chunk 0 ends where the 254th
  word piece of the text ends (its own tokenizer tells where). Ollama and OpenAI-compatible
  servers were sent the whole text without truncation (a text over their context was
  refused and never got a vector), so theirs spans the whole text.
- ``events.embedding`` and its index go: no vector lives outside ``chunks``, whose column
  has the same dimension and whose index the same opclass, m and ef_construction (read from
  the database: a migration reads no environment).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_READ = 254  # word pieces the local model read of a text, [CLS] and [SEP] aside
CHARS_PER_TOKEN = 3.0  # estimate for the other models' token counts (EMBED_CHARS_PER_TOKEN)
BATCH = 1000


def _existing() -> tuple[int, int, int]:
    """The dimension of events.embedding and its index's m and ef_construction, as 0001 made
    them: the chunks' column and index are their like (a migration reads no environment)."""
    conn = op.get_bind()
    dim = conn.execute(
        sa.text(
            "SELECT atttypmod FROM pg_attribute"
            " WHERE attrelid = 'events'::regclass AND attname = 'embedding'"
        )
    ).scalar_one()
    options = (
        conn.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE relname = 'ix_events_embedding_hnsw'")
        ).scalar()
        or []
    )
    given = dict(o.split("=", 1) for o in options)
    return int(dim), int(given.get("m", 16)), int(given.get("ef_construction", 64))


def upgrade() -> None:
    dim, m, ef_construction = _existing()
    op.create_table(
        "chunks",
        sa.Column(
            "event_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("char_start", sa.Integer, nullable=False),
        sa.Column("char_end", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("embedding", Vector(dim), nullable=False),
        sa.CheckConstraint("0 <= char_start AND char_start <= char_end", name="ck_chunks_span"),
    )
    op.add_column("events", sa.Column("chunking", sa.String(64)))
    op.execute(
        "INSERT INTO chunks (event_id, position, tenant, char_start, char_end, tokens, model,"
        " embedding)"
        " SELECT id, 0, tenant, 0, length(text),"
        f" ceil(length(text) / {CHARS_PER_TOKEN})::int + 2, coalesce(model, ''), embedding"
        " FROM events WHERE embedding IS NOT NULL AND status <> 'deleted'"
    )
    _local_spans()
    # Stats count a tenant's chunks and tokens from this index alone (no vector is read).
    op.execute("CREATE INDEX ix_chunks_tenant ON chunks (tenant) INCLUDE (tokens)")
    op.execute(
        "CREATE INDEX ix_chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {m}, ef_construction = {ef_construction})"
    )
    op.execute(
        """
        CREATE FUNCTION chunks_leave_deleted_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM chunks WHERE event_id = NEW.id;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_events_deleted_chunks AFTER UPDATE OF status ON events"
        " FOR EACH ROW WHEN (NEW.status = 'deleted' AND OLD.status <> 'deleted')"
        " EXECUTE FUNCTION chunks_leave_deleted_events()"
    )
    op.execute("DROP INDEX IF EXISTS ix_events_embedding_hnsw")
    op.drop_column("events", "embedding")


def _local_spans() -> None:
    """Chunk 0 of a local-model vector ends where the model stopped reading (keyset batches:
    the texts never all sit in memory)."""
    conn = op.get_bind()
    tokenizer = None
    after = None
    while True:
        batch = conn.execute(
            sa.text(
                "SELECT c.event_id, e.text FROM chunks c JOIN events e ON e.id = c.event_id"
                " WHERE c.model = :model AND (CAST(:after AS uuid) IS NULL OR c.event_id > :after)"
                " ORDER BY c.event_id LIMIT :limit"
            ),
            {"model": LOCAL_MODEL, "after": after, "limit": BATCH},
        ).all()
        if not batch:
            return
        if tokenizer is None:
            from common.embedders.tokenizer import load_tokenizer

            tokenizer = load_tokenizer()
        updates = []
        for event_id, text in batch:
            encoding = tokenizer.encode(text, add_special_tokens=False)
            read = min(len(encoding.ids), LOCAL_READ)
            end = encoding.offsets[read - 1][1] if read else len(text)
            updates.append({"id": event_id, "end": end, "tokens": read + 2})
        conn.execute(
            sa.text(
                "UPDATE chunks SET char_end = :end, tokens = :tokens"
                " WHERE event_id = :id AND position = 0"
            ),
            updates,
        )
        after = batch[-1][0]


def downgrade() -> None:
    dim = op.get_bind().execute(
        sa.text(
            "SELECT atttypmod FROM pg_attribute"
            " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        )
    ).scalar_one()
    op.add_column("events", sa.Column("embedding", Vector(dim)))
    op.execute(
        "UPDATE events e SET embedding = c.embedding FROM chunks c"
        " WHERE c.event_id = e.id AND c.position = 0"
    )
    op.execute(
        "CREATE INDEX ix_events_embedding_hnsw ON events USING hnsw (embedding vector_cosine_ops)"
    )
    op.execute("DROP TRIGGER tr_events_deleted_chunks ON events")
    op.execute("DROP FUNCTION chunks_leave_deleted_events()")
    op.drop_column("events", "chunking")
    op.drop_table("chunks")

