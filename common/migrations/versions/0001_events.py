"""events table with a pgvector column and an HNSW (cosine) index

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import context, op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from common.migrate import SchemaOptions

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _schema() -> SchemaOptions:
    """The options the migrating command passed (common/migrate.upgrade_head), or those of
    ``alembic -x embed_dim=N -x hnsw_m=M -x hnsw_ef_construction=E``; never the environment."""
    config = op.get_context().config
    given = config.attributes.get("schema") if config is not None else None
    if isinstance(given, SchemaOptions):
        return given
    x = context.get_x_argument(as_dictionary=True)
    default = SchemaOptions()
    return SchemaOptions(
        embed_dim=int(x.get("embed_dim", default.embed_dim)),
        hnsw_m=int(x.get("hnsw_m", default.hnsw_m)),
        hnsw_ef_construction=int(x.get("hnsw_ef_construction", default.hnsw_ef_construction)),
    )


def upgrade() -> None:
    schema = _schema()
    dim = schema.embed_dim
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "events",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("metadata", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("model", sa.String(255)),
        sa.Column("embedding", Vector(dim)),
        sa.Column("embedded_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_events_tenant_key"),
        sa.CheckConstraint(
            "status IN ('queued', 'embedded', 'failed', 'deleted')", name="ck_events_status"
        ),
    )
    op.create_index("ix_events_tenant_created", "events", ["tenant", sa.text("created_at DESC")])
    op.create_index("ix_events_status_created", "events", ["status", "created_at"])
    op.execute(
        "CREATE INDEX ix_events_embedding_hnsw ON events USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {int(schema.hnsw_m)}, ef_construction = {int(schema.hnsw_ef_construction)})"
    )


def downgrade() -> None:
    op.drop_table("events")
