"""Function-call log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_function_calls",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("function", sa.String(128), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_portal_function_calls_function", "portal_function_calls", ["function"])
    op.create_index("ix_portal_function_calls_created_at", "portal_function_calls", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_portal_function_calls_created_at", "portal_function_calls")
    op.drop_index("ix_portal_function_calls_function", "portal_function_calls")
    op.drop_table("portal_function_calls")
