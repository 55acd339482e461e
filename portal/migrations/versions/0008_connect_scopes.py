"""Scopes per connect and marketplace-wide connect links (issue 19 items 3 and 4).

``portal_connect_attempts.scopes`` and ``portal_connect_links.scopes``: the extra scopes (from
the app's ``optional_scopes``) a connect asked for, JSON text, ``NULL`` for none.
``portal_connect_links.app`` becomes nullable: a link without an app opens the marketplace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_connect_attempts") as batch:
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=True))
    with op.batch_alter_table("portal_connect_links") as batch:
        batch.add_column(sa.Column("scopes", sa.Text(), nullable=True))
        batch.alter_column("app", existing_type=sa.String(64), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("portal_connect_links") as batch:
        batch.drop_column("scopes")
    op.execute("DELETE FROM portal_connect_links WHERE app IS NULL")
    with op.batch_alter_table("portal_connect_links") as batch:
        batch.alter_column("app", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("portal_connect_attempts") as batch:
        batch.drop_column("scopes")
