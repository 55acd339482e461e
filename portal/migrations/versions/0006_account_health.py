"""Account health checks, account metadata and tags, and the operators' log.

* ``portal_connected_accounts`` gains ``metadata`` (the host's JSON object) and the health
  columns ``health_checked_at`` (indexed: the per-minute limit), ``health_next_at`` (indexed:
  the worker's claim query), ``health_reason`` and ``health_failures``.
* ``portal_account_tags``: one row per tag of an account's ``metadata.tags``, indexed by
  ``(project, tag)`` for ``GET /connected-accounts?tag=``.
* ``portal_oplog``: the operators' log, with one index per filter, each ending in
  ``(created_at, id)`` so a filtered first page (and every cursor page) is an index range scan.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OPLOG_INDEXES = {
    "ix_portal_oplog_time": ["created_at", "id"],
    "ix_portal_oplog_project": ["project", "created_at", "id"],
    "ix_portal_oplog_kind": ["project", "kind", "created_at", "id"],
    "ix_portal_oplog_user": ["project", "user_id", "created_at", "id"],
    "ix_portal_oplog_app": ["project", "app", "created_at", "id"],
    "ix_portal_oplog_status": ["project", "status", "created_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("portal_connected_accounts") as batch:
        batch.add_column(sa.Column("metadata", sa.Text(), nullable=True))
        batch.add_column(sa.Column("health_checked_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("health_next_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("health_failures", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_portal_connected_accounts_health", "portal_connected_accounts", ["health_next_at"]
    )
    # The per-minute limit counts recent claims on every worker pass.
    op.create_index(
        "ix_portal_connected_accounts_health_checked",
        "portal_connected_accounts",
        ["health_checked_at"],
    )
    op.create_table(
        "portal_account_tags",
        sa.Column(
            "account_id",
            sa.String(40),
            sa.ForeignKey("portal_connected_accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
    )
    op.create_index("ix_portal_account_tags_project_tag", "portal_account_tags", ["project", "tag"])
    op.create_table(
        "portal_oplog",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(1024), nullable=True),
        sa.Column("app", sa.String(64), nullable=True),
        sa.Column("account_id", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("ref_id", sa.String(64), nullable=True),
        sa.Column("request", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    for name, columns in OPLOG_INDEXES.items():
        op.create_index(name, "portal_oplog", columns)


def downgrade() -> None:
    for name in OPLOG_INDEXES:
        op.drop_index(name, "portal_oplog")
    op.drop_table("portal_oplog")
    op.drop_index("ix_portal_account_tags_project_tag", "portal_account_tags")
    op.drop_table("portal_account_tags")
    op.drop_index("ix_portal_connected_accounts_health_checked", "portal_connected_accounts")
    op.drop_index("ix_portal_connected_accounts_health", "portal_connected_accounts")
    with op.batch_alter_table("portal_connected_accounts") as batch:
        for column in (
            "health_failures",
            "health_reason",
            "health_next_at",
            "health_checked_at",
            "metadata",
        ):
            batch.drop_column(column)
