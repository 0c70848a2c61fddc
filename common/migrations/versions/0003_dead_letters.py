"""dead_letters table; events.due_at for scheduled retries and the sweeper

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # When a still-queued event is (re)published by the sweeper: a retry's backoff, or the
    # hand-off deadline after which its message is presumed lost. NULL: created_at + SWEEP_AFTER_S.
    op.add_column("events", sa.Column("due_at", sa.DateTime(timezone=True)))
    # The request id a retry carries, so its log lines join the first attempt's.
    op.add_column("events", sa.Column("request_id", sa.String(64)))
    op.create_index(
        "ix_events_queued_created",
        "events",
        ["created_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "event_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Set when replayed: the row stays as history, and the event may fail again later.
        sa.Column("replayed_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_dead_letters_tenant_created",
        "dead_letters",
        ["tenant", sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text("replayed_at IS NULL"),
    )
    # One open dead letter per event, whatever a task run twice tries to write.
    op.create_index(
        "uq_dead_letters_open_event",
        "dead_letters",
        ["event_id"],
        unique=True,
        postgresql_where=sa.text("replayed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_index("ix_events_queued_created", table_name="events")
    op.drop_column("events", "due_at")
    op.drop_column("events", "request_id")
