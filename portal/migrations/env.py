"""Alembic environment of the portal: runs on the engine the :class:`portal.store.Store` passes.

``config.attributes`` may also carry ``portal_app_keys`` (the configured app keys) and
``portal_project`` (the project existing rows are given), which migration 0004 reads.
"""

from __future__ import annotations

from alembic import context

from portal.store import VERSION_TABLE, Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a SQLite table by copying it and dropping the old one; with
        # foreign keys on, that DROP first deletes the rows of its ON DELETE CASCADE children
        # (portal_app_event_runs). Alembic's documented remedy: foreign keys off for the run.
        # The pragma is a no-op inside a transaction, so it is set before BEGIN, and the
        # pooled connection gets it back on whatever happens.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                version_table=VERSION_TABLE,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
