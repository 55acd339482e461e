"""Projects are tenants: a NOT NULL ``project`` (the app key) on every row a project owns.

Accounts, connect attempts, function calls, app events, their runs and outbox webhooks get a
``project`` column; the account identity becomes unique per ``(project, user_id, app,
external_id)``. Existing rows need a project: the one named explicitly (``flask portal db
upgrade --project KEY``, ``PORTAL_MIGRATION_PROJECT``, or ``alembic -x project=KEY``), else the
only key of ``PORTAL_APP_KEYS`` when exactly one is configured. With rows and neither, the
migration stops before changing anything and says what to do; empty tables migrate with any
number of keys. Queued webhooks get ``"project"`` in their JSON body too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Every table whose rows belong to one project, parents before children.
TABLES = (
    "portal_connected_accounts",
    "portal_connect_attempts",
    "portal_function_calls",
    "portal_app_events",
    "portal_app_event_runs",
    "portal_webhook_outbox",
)
OWNER_INDEX = "ix_portal_connected_accounts_owner"
IDENTITY = "uq_portal_account_identity"


def _project() -> str | None:
    """The project existing rows are given: named explicitly, else the only app key."""
    attributes = context.config.attributes
    named = attributes.get("portal_project") or context.get_x_argument(as_dictionary=True).get(
        "project"
    )
    if named:
        return str(named)
    keys = list(attributes.get("portal_app_keys") or [])
    return str(keys[0]) if len(keys) == 1 else None


def upgrade() -> None:
    bind = op.get_bind()
    counts = {
        t: int(bind.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()) for t in TABLES
    }
    project = _project()
    if project is None and any(counts.values()):
        keys = len(context.config.attributes.get("portal_app_keys") or [])
        held = ", ".join(f"{t} ({n})" for t, n in counts.items() if n)
        raise RuntimeError(
            f"Migration 0004 gives every existing row a project (an app key), but rows exist in "
            f"{held} and PORTAL_APP_KEYS has {keys} keys, not exactly one. Name the project "
            "those rows belong to: set PORTAL_MIGRATION_PROJECT = '<app key>' in the portal's "
            "configuration, or run `flask portal db upgrade --project <app key>` (plain "
            "Alembic: `-x project=<app key>`). Nothing was changed."
        )
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("project", sa.String(255), nullable=True))
        if counts[table]:
            bind.execute(sa.text(f"UPDATE {table} SET project = :project"), {"project": project})
    if counts["portal_webhook_outbox"]:
        rows = bind.execute(sa.text("SELECT id, payload FROM portal_webhook_outbox")).all()
        for webhook_id, payload in rows:
            body = json.loads(payload)
            body["project"] = project
            bind.execute(
                sa.text("UPDATE portal_webhook_outbox SET payload = :payload WHERE id = :id"),
                {"payload": json.dumps(body, separators=(",", ":")), "id": webhook_id},
            )
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("project", existing_type=sa.String(255), nullable=False)
            if table == "portal_connected_accounts":
                batch.drop_constraint(IDENTITY, type_="unique")
                batch.create_unique_constraint(
                    IDENTITY, ["project", "user_id", "app", "external_id"]
                )
    op.create_index(OWNER_INDEX, "portal_connected_accounts", ["project", "user_id"])


def downgrade() -> None:
    op.drop_index(OWNER_INDEX, "portal_connected_accounts")
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            if table == "portal_connected_accounts":
                # Two projects may hold the same identity now; the old constraint would refuse
                # them, so a downgrade of such a database fails here, changing nothing.
                batch.drop_constraint(IDENTITY, type_="unique")
                batch.create_unique_constraint(IDENTITY, ["user_id", "app", "external_id"])
            batch.drop_column("project")
