"""Hosted connect links (issue 19 item 3): ``portal_connect_links``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Written on a branch next to 0005 (flows) and 0006 (health): the integrator re-chains
``down_revision`` to the last of those when merging (the table depends on nothing of theirs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_connect_links",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(1024), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("error_url", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("attempt_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_portal_connect_links_attempt_id", "portal_connect_links", ["attempt_id"])


def downgrade() -> None:
    op.drop_index("ix_portal_connect_links_attempt_id", "portal_connect_links")
    op.drop_table("portal_connect_links")
