"""Connected accounts and connect attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_connected_accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("modified_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "app", "external_id", name="uq_portal_account_identity"),
    )
    op.create_index(
        "ix_portal_connected_accounts_user_id", "portal_connected_accounts", ["user_id"]
    )
    op.create_table(
        "portal_connect_attempts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("host_origin", sa.String(255), nullable=False),
        sa.Column("opener_origin", sa.String(255), nullable=False),
        sa.Column("return_to", sa.Text(), nullable=True),
        sa.Column("account_id", sa.String(40), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_connect_attempts")
    op.drop_index("ix_portal_connected_accounts_user_id", "portal_connected_accounts")
    op.drop_table("portal_connected_accounts")
