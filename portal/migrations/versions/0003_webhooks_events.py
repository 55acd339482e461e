"""Webhook outbox, app events and their function runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQUENCE = "portal_webhook_outbox_seq"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # Delivery order per ordering key. SQLite has no sequences: portal.webhooks.enqueue
        # takes max(seq) + 1 there, under the write lock every portal transaction holds.
        op.execute(sa.schema.CreateSequence(sa.Sequence(SEQUENCE)))
    op.create_table(
        "portal_webhook_outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "seq",
            sa.BigInteger(),
            nullable=False,
            server_default=sa.text(f"nextval('{SEQUENCE}')") if postgresql else None,
        ),
        sa.Column("ordering_key", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("given_up_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_portal_webhook_outbox_seq", "portal_webhook_outbox", ["seq"], unique=True)
    op.create_index(
        "ix_portal_webhook_outbox_ordering_key", "portal_webhook_outbox", ["ordering_key", "seq"]
    )
    op.create_index(
        "ix_portal_webhook_outbox_due", "portal_webhook_outbox", ["delivered_at", "next_attempt_at"]
    )
    op.create_table(
        "portal_app_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("app_key", sa.String(255), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_portal_app_events_user_id", "portal_app_events", ["user_id"])
    op.create_table(
        "portal_app_event_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "event_id",
            sa.String(40),
            sa.ForeignKey("portal_app_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("function", sa.String(128), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_portal_app_event_runs_event_id", "portal_app_event_runs", ["event_id"])
    op.create_index(
        "ix_portal_app_event_runs_status", "portal_app_event_runs", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_portal_app_event_runs_status", "portal_app_event_runs")
    op.drop_index("ix_portal_app_event_runs_event_id", "portal_app_event_runs")
    op.drop_table("portal_app_event_runs")
    op.drop_index("ix_portal_app_events_user_id", "portal_app_events")
    op.drop_table("portal_app_events")
    op.drop_index("ix_portal_webhook_outbox_due", "portal_webhook_outbox")
    op.drop_index("ix_portal_webhook_outbox_ordering_key", "portal_webhook_outbox")
    op.drop_index("ix_portal_webhook_outbox_seq", "portal_webhook_outbox")
    op.drop_table("portal_webhook_outbox")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence(SEQUENCE)))
