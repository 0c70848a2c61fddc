"""search: a generated tsvector for keyword search, and indexes for the search filters

Revision ID: 0004
Revises: 0003

- ``search_text``: ``to_tsvector('english', text)``, a stored generated column, so that it can
  never disagree with ``text``; GIN-indexed for ``@@``. Adding it rewrites the table once.
- btree indexes that lead with ``tenant`` (every search filters by it) for the filter
  columns, and a GIN ``jsonb_path_ops`` index for metadata containment (``@>``): the planner
  picks them when a filter is selective, and pgvector's iterative HNSW scan otherwise.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE events ADD COLUMN search_text tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
    )
    op.execute("CREATE INDEX ix_events_search_text ON events USING gin (search_text)")
    op.execute("CREATE INDEX ix_events_metadata ON events USING gin (metadata jsonb_path_ops)")
    op.create_index("ix_events_tenant_source", "events", ["tenant", "source"])
    op.create_index("ix_events_tenant_type", "events", ["tenant", "type"])
    op.create_index("ix_events_tenant_occurred", "events", ["tenant", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_events_tenant_occurred", "events")
    op.drop_index("ix_events_tenant_type", "events")
    op.drop_index("ix_events_tenant_source", "events")
    op.execute("DROP INDEX ix_events_metadata")
    op.execute("DROP INDEX ix_events_search_text")
    op.execute("ALTER TABLE events DROP COLUMN search_text")
