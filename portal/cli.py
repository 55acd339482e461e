"""``flask portal …`` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from .crypto import generate_key
from .extension import current_portal

portal_cli = AppGroup("portal", help="Connect Portal: database, keys and catalog.")


@portal_cli.group("db")
def db_group() -> None:
    """Database migrations (Alembic, version table portal_alembic_version)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    current_portal.store.upgrade(revision)
    click.echo(f"database at revision {current_portal.store.current_revision()}")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' drops every portal table)."""
    current_portal.store.downgrade(revision)
    click.echo(f"database at revision {current_portal.store.current_revision()}")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Print the applied revision."""
    click.echo(current_portal.store.current_revision() or "(empty database)")


@portal_cli.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key for PORTAL_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@portal_cli.group("apps")
def apps_group() -> None:
    """The catalog."""


@apps_group.command("list")
@with_appcontext
def apps_list() -> None:
    """List every app with its auth method and whether it is usable."""
    for app in current_portal.catalog:
        state = "ready" if app.usable else "needs " + ", ".join(app.missing)
        click.echo(f"{app.slug:24} {app.auth_type:8} {state}")


@portal_cli.command("function-calls")
@click.option("--limit", default=50, show_default=True, help="How many of the newest calls.")
@click.option("--function", "name", default=None, help="Only calls of this function.")
@with_appcontext
def function_calls(limit: int, name: str | None) -> None:
    """List recorded function invocations, newest first."""
    from sqlalchemy import select

    from .store import FunctionCall

    query = select(FunctionCall).order_by(FunctionCall.created_at.desc()).limit(limit)
    if name:
        query = query.where(FunctionCall.function == name)
    with current_portal.store.read() as db:
        rows = list(db.scalars(query))
    if not rows:
        click.echo("no function calls recorded")
    for row in rows:
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}Z  {row.function:32} {row.http_status:>3}  "
            f"{row.duration_ms:>6} ms  account {row.account_id}  user {row.user_id}"
        )


@portal_cli.command("worker")
@click.option("--once", is_flag=True, help="One pass over the queues, then exit.")
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds to wait when idle. [default: PORTAL_WORKER_POLL_INTERVAL]",
)
@with_appcontext
def worker_command(once: bool, interval: float | None) -> None:
    """Run app-event functions and deliver webhooks to PORTAL_WEBHOOK_URL.

    Several workers may run at once. SIGTERM or Ctrl+C stops after the item in hand.
    """
    from flask import current_app

    from .worker import run_forever, run_once

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        click.echo(f"handled {run_once(app)} item(s)")
        return
    if not current_portal.config.get("PORTAL_WEBHOOK_URL"):
        click.echo("PORTAL_WEBHOOK_URL is not set: running app events only", err=True)
    click.echo("portal worker running; Ctrl+C to stop")
    run_forever(app, interval)


@portal_cli.command("rotate-keys")
@with_appcontext
def rotate_keys() -> None:
    """Re-seal every credential under the newest key of PORTAL_ENCRYPTION_KEYS.

    Rotation: put the new key first (old keys stay for reading), run this, then drop the old
    keys. Each row is re-sealed in its own transaction; a row no key opens is reported and left
    untouched, and the command exits with status 1.
    """
    from sqlalchemy import select

    from .errors import CredentialError
    from .store import ConnectedAccount

    state = current_portal
    with state.store.read() as db:
        ids = list(db.scalars(select(ConnectedAccount.id)))
    rotated, failed = 0, []
    for account_id in ids:
        with state.store.session() as db:
            account = db.get(ConnectedAccount, account_id)
            if account is None:
                continue
            try:
                account.credentials = state.sealer.rotate(account.credentials)
                state.sealer.open(account.id, account.credentials)
            except CredentialError:
                failed.append(account_id)
                db.rollback()
                continue
            rotated += 1
    click.echo(f"re-sealed {rotated} connected account(s) under the newest key")
    if failed:
        click.echo(f"could not open {len(failed)}: {', '.join(failed)}", err=True)
        raise SystemExit(1)
