"""chunk keywords: each chunk's own ``search_text``, so keyword search ranks an embedded
event by its best chunk, as dense search does; and the chunk sets that paragraph-first
chunking would make alike keep their place

Revision ID: 0007
Revises: 0006

- ``chunks.search_text``: ``to_tsvector('english', …)`` of the chunk's span of its event's
  text, with a GIN index. A chunk spanning the whole text takes the event's own
  ``search_text`` (the same value, not parsed again), and so does chunk 0 of a vector from
  before chunking (``events.chunking`` NULL: its span is what the model read, but keyword
  search read the whole text and still should, until ``eventsearch reembed`` chunks it).
- ``chunk_search_text(text, search_text, char_start, char_end)``: that rule, in one place:
  the worker's store statement calls it, and a BEFORE INSERT trigger fills the column for
  any other writer that leaves it out (COPY, a subject's copied set, tests, benches).
- ``events.chunking`` gains the ``p`` of paragraph-first chunking (common/chunking.py) where
  the new chunker makes the same set: one chunk of the whole text, or a text without a blank
  line (one paragraph, cut as before). Other sets keep their name, so ``eventsearch
  reembed`` finds them stale and chunks them by paragraph; nothing is re-embedded here. The
  way back leaves the names: the older code then sees those sets as stale, which they are
  for it.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION chunk_search_text(body text, whole tsvector, char_start int, char_end int)
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN char_start = 0 AND char_end >= length(body) THEN whole
            ELSE to_tsvector('english', substr(body, char_start + 1, char_end - char_start))
            END
        $$
        """
    )
    op.execute("ALTER TABLE chunks ADD COLUMN search_text tsvector")
    op.execute(
        "UPDATE chunks c SET search_text = CASE WHEN e.chunking IS NULL THEN e.search_text"
        " ELSE chunk_search_text(e.text, e.search_text, c.char_start, c.char_end) END"
        " FROM events e WHERE e.id = c.event_id"
    )
    op.execute("ALTER TABLE chunks ALTER COLUMN search_text SET NOT NULL")
    op.execute(
        """
        CREATE FUNCTION chunks_fill_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            SELECT chunk_search_text(e.text, e.search_text, NEW.char_start, NEW.char_end)
            INTO NEW.search_text FROM events e WHERE e.id = NEW.event_id;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_chunks_search_text BEFORE INSERT ON chunks"
        " FOR EACH ROW WHEN (NEW.search_text IS NULL)"
        " EXECUTE FUNCTION chunks_fill_search_text()"
    )
    op.execute("CREATE INDEX ix_chunks_search_text ON chunks USING gin (search_text)")
    # The regular expression is common/chunking.PARAGRAPH_BREAK's.
    op.execute(
        "UPDATE events e SET chunking = e.chunking || 'p'"
        " WHERE e.chunking IS NOT NULL AND right(e.chunking, 1) <> 'p'"
        r" AND (e.text !~ '\n[ \t\r\f\v]*\n'"
        "  OR NOT EXISTS (SELECT 1 FROM chunks c WHERE c.event_id = e.id AND c.position > 0))"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tr_chunks_search_text ON chunks")
    op.execute("DROP FUNCTION chunks_fill_search_text()")
    op.execute("ALTER TABLE chunks DROP COLUMN search_text")  # its index goes with it
    op.execute("DROP FUNCTION chunk_search_text(text, tsvector, int, int)")
