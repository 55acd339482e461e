"""Flows: each end user's state of each host-declared flow, and the flow of an app-event run.

``portal_flow_settings`` holds one row per ``(project, user_id, app, flow)``: on or off, the
settings (JSON), the chosen account and the hash of the settings schema they were valid
against. App-event runs get ``flow`` (``<app>/<flow>``) and ``account_id`` (the account the
flow's user chose), both empty for runs of ``PORTAL_APP_EVENTS``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_flow_settings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=True),
        sa.Column("schema_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("project", "user_id", "app", "flow", name="uq_portal_flow_setting"),
    )
    with op.batch_alter_table("portal_app_event_runs") as batch:
        batch.add_column(sa.Column("flow", sa.String(200), nullable=True))
        batch.add_column(sa.Column("account_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("portal_app_event_runs") as batch:
        batch.drop_column("account_id")
        batch.drop_column("flow")
    op.drop_table("portal_flow_settings")
