"""Alembic environment of the portal: runs on the engine the :class:`portal.store.Store` passes."""

from __future__ import annotations

from alembic import context

from portal.store import VERSION_TABLE, Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
