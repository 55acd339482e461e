"""``flask portal …`` commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext

from .crypto import generate_key
from .state import current_portal

portal_cli = AppGroup("portal", help="Connect Portal: database, keys and catalog.")


@portal_cli.group("db")
def db_group() -> None:
    """Database migrations (Alembic, version table portal_alembic_version)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.option(
    "--project",
    default=None,
    help="The app key that rows written before projects existed belong to (migration 0004; "
    "needed when PORTAL_APP_KEYS has not exactly one key). [default: PORTAL_MIGRATION_PROJECT]",
)
@with_appcontext
def db_upgrade(revision: str, project: str | None) -> None:
    """Apply migrations up to REVISION (default: head)."""
    config = current_portal.config
    current_portal.store.upgrade(
        revision,
        app_keys=list(config["PORTAL_APP_KEYS"]),
        project=project or config["PORTAL_MIGRATION_PROJECT"],
    )
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


@portal_cli.command("generate-key", with_appcontext=False)
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


@apps_group.command("show")
@click.argument("slug")
@with_appcontext
def apps_show(slug: str) -> None:
    """Everything a host needs to set up app SLUG: auth method, endpoints, scopes, account
    fields, whether credentials are configured, the redirect URL to register, docs, functions."""
    from .catalog import redirect_uri

    app = current_portal.catalog.get(slug)
    if app is None:
        raise click.ClickException(
            f"there is no app called {slug!r} (see `flask portal apps list`)"
        )
    for line in describe_app(app, redirect_uri(current_portal, app.slug)):
        click.echo(line)


def describe_app(app: Any, redirect: str | None) -> list[str]:
    """``flask portal apps show``'s lines for ``app`` (no secret: only whether one is set)."""
    env = "PORTAL_" + app.slug.upper().replace("-", "_")
    lines = [
        f"{app.title} ({app.slug})",
        f"  description:   {app.description}",
        f"  categories:    {', '.join(app.categories)}",
        f"  docs:          {app.docs_url or '(none)'}",
        f"  definition:    {app.source}",
        f"  auth:          {app.auth_type}",
        f"  state:         {'ready' if app.usable else 'needs ' + ', '.join(app.missing)}",
    ]
    if app.oauth2 is not None:
        o = app.oauth2
        lines += [
            f"  authorize_url: {o.authorize_url or '(from server metadata)'}",
            f"  token_url:     {o.token_url or '(from server metadata)'}",
        ]
        if o.revoke_url:
            lines.append(f"  revoke_url:    {o.revoke_url}")
        if o.revocation:
            lines.append(f"  revocation:    {o.revocation.method} {o.revocation.url}")
        if o.server_metadata_url:
            lines.append(f"  metadata:      {o.server_metadata_url}")
        lines += [
            f"  scopes:        {o.scope_separator.join(o.scopes) or '(none)'}",
            f"  pkce:          "
            f"{'S256' if o.pkce else f'no (provider refuses it: {o.pkce_unsupported_source})'}",
            f"  client auth:   {o.token_endpoint_auth_method}",
            f"  client_id:     {'set' if app.client.client_id else 'NOT SET'}"
            f" (PORTAL_APPS[{app.slug!r}]['client_id'] or {env}_CLIENT_ID)",
            f"  client_secret: {'set' if app.client.client_secret else 'NOT SET'}"
            f" (PORTAL_APPS[{app.slug!r}]['client_secret'] or {env}_CLIENT_SECRET)",
            f"  redirect URL:  {redirect}   <- register this at the provider",
        ]
        if o.refresh_url:
            lines.insert(
                lines.index(f"  token_url:     {o.token_url}") + 1,
                f"  refresh_url:   {o.refresh_url}",
            )
        if o.custom_redirect_uri:
            lines.append(
                f"  redirect_uri:  {o.redirect_uri_value or 'NOT SET'} (sent instead of the redirect"
                f" URL: PORTAL_APPS[{app.slug!r}]['redirect_uri_value'] or"
                f" {env}_REDIRECT_URI_VALUE, e.g. eBay's RuName for the URL above)"
            )
        if app.token_placement.placement_in == "header":
            lines.append(f"  token header:  {app.token_placement.name}")
        for name, param in o.callback_fields.items():
            lines.append(f"  from callback: {name} <- ?{param}")
    cc = getattr(app, "client_credentials", None)
    if cc is not None:
        lines += [
            f"  token_url:     {cc.token_url}",
            f"  scopes:        {cc.scope_separator.join(cc.scopes) or '(none)'}",
            "  credentials:   the end user enters their own client id and secret",
        ]
    if app.api_key is not None:
        k = app.api_key
        where = k.placement_in + (f" {k.placement_name}" if k.placement_name else "")
        lines.append(f"  api key:       {where} (label {k.key_label!r}); the end user enters it")
    if app.basic is not None:
        lines.append("  credentials:   HTTP Basic username and password; the end user enters them")
    for f in getattr(app, "account_fields", ()):
        shape = f"one of {', '.join(f.enum)}" if f.format == "enum" else f.format
        lines.append(f"  account field: {f.name} ({shape}): {f.label}")
    lines.append(f"  api base URL:  {app.api_base_url or '(needs base_url)'}")
    if app.identity is not None:
        lines.append(f"  identity:      {app.identity.url} -> {app.identity.external_id}")
        for name, path in app.identity.fields.items():
            lines.append(f"  from identity: {name} <- {path}")
    for name, value in app.api_headers.items():
        lines.append(f"  header:        {name}: {value}")  # placeholders only, never values
    if app.functions:
        lines.append(f"  functions ({len(app.functions)}):")
        lines += [f"    {f.name:40} {f.method:6} {f.path}" for f in app.functions]
    else:
        lines.append("  functions:     (none)")
    return lines


@apps_group.command("validate", with_appcontext=False)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def apps_validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check app definition files against portal/catalog.schema.json.

    PATHS are files or directories (their *.yaml / *.yml); default: the shipped catalog and
    every directory of PORTAL_CATALOG_PATHS (read from the Flask app when one is found). Needs
    no Flask app when PATHS are given. Prints every problem (file: field: problem) and exits
    with status 1 if there is any.
    """
    from flask.cli import NoAppException, ScriptInfo

    from .catalog import SHIPPED_DIR

    targets = list(paths)
    if not targets:
        targets = [SHIPPED_DIR]
        try:
            app = ctx.ensure_object(ScriptInfo).load_app()
        except NoAppException:
            app = None
        if app is not None:
            targets += map(Path, app.config.get("PORTAL_CATALOG_PATHS", []))
    checked, problems = validate_files(targets)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        files = len({p.split(": ", 1)[0] for p in problems})
        click.echo(f"{len(problems)} problem(s) in {files} of {checked} file(s)", err=True)
        raise SystemExit(1)
    click.echo(f"{checked} app definition file(s) valid")


def validate_files(targets: list[Path]) -> tuple[int, list[str]]:
    """Validate every app definition file in ``targets`` (files, or directories of
    ``*.yaml``/``*.yml``): YAML syntax, the JSON Schema (every violation, via
    :func:`portal.catalog.validate_definition`), slug = file name, then the checks loading does
    (absolute URLs, function names and params schemas, webhook topics).

    :returns: ``(files checked, ["<file>: <field>: <problem>", …])``.
    """
    import yaml

    from .catalog import _build_app, validate_definition
    from .errors import CatalogError

    files: list[Path] = []
    problems: list[str] = []
    for target in targets:
        if target.is_dir():
            files += sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
        elif target.is_file():
            files.append(target)
        else:
            problems.append(f"{target}: (file): no such file or directory")
    for path in files:
        try:
            data = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{path}: (file): not valid YAML: {' '.join(str(exc).split())}")
            continue
        errors = validate_definition(data, path)
        slug = data.get("slug") if isinstance(data, dict) else None
        if isinstance(slug, str) and slug != path.stem:
            # Reported beside the schema's problems, so one run shows everything to fix.
            errors.append(f"{path}: slug: {slug!r} must match the file name {path.stem!r}")
        if not errors:
            try:
                _build_app(path, data, {}, {})
            except CatalogError as exc:
                message = str(exc)
                errors = [message if message.startswith(str(path)) else f"{path}: {message}"]
        problems += errors
    return len(files), problems


@apps_group.command("crosscheck", with_appcontext=False)
@click.option("--all", "show_all", is_flag=True, help="Every comparison, agreeing ones too.")
@click.option(
    "--unexplained", is_flag=True, help="Exit with status 1 if a difference has no explanation."
)
def apps_crosscheck(show_all: bool, unexplained: bool) -> None:
    """Compare the catalog's OAuth 2.0 authorize and token URLs with two open catalogs
    (simov/grant, amp-labs/connectors; MIT), from the offline snapshot in scripts/data/.

    Runs ``scripts/crosscheck.py`` of the source checkout (dev tooling: the snapshot is not
    part of the installed package); prints a difference, its explanation (``# crosscheck:``
    comment in the app file) and a summary.
    """
    module = _crosscheck_module()
    rows = module.crosscheck()
    for line in module.report(rows, show_all=show_all):
        click.echo(line)
    if unexplained and any(r.status == "differs" and not r.explanation for r in rows):
        raise SystemExit(1)


def _crosscheck_module() -> Any:
    """``scripts/crosscheck.py`` of the source checkout, imported by file path.

    :raises click.ClickException: when the package runs from an install without ``scripts/``.
    """
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "scripts" / "crosscheck.py"
    spec = importlib.util.spec_from_file_location("portal_scripts_crosscheck", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise click.ClickException(
            f"{path} is not there: the crosscheck is dev tooling of the source checkout"
        )
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return module


@portal_cli.group("functions")
def functions_group() -> None:
    """The catalog's functions (typed actions of an app)."""


@functions_group.command("list")
@click.option("--app", "slug", default=None, help="Only the functions of this app (its slug).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of signatures.")
@with_appcontext
def functions_list(slug: str | None, as_json: bool) -> None:
    """List every function of the catalog: name, method, path, whether it is paginated and
    whether it changes something (``write``) or only reads (``read``)."""
    import json

    from .functions import signature

    catalog = current_portal.catalog
    if slug is not None and catalog.get(slug) is None:
        raise click.ClickException(
            f"there is no app called {slug!r} (see `flask portal apps list`)"
        )
    functions = [f for app in catalog if slug in (None, app.slug) for f in app.functions]
    if as_json:
        rows = [
            {**signature(f), "method": f.method, "path": f.path, "destructive": f.destructive}
            for f in functions
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for f in functions:
        flags = ("paginated " if f.pagination else "") + ("write" if f.destructive else "read")
        click.echo(f"{f.name:44} {f.method:6} {f.path:56} {flags}")
    click.echo(f"{len(functions)} function(s)")


@functions_group.command("show")
@click.argument("name")
@with_appcontext
def functions_show(name: str) -> None:
    """Everything about function NAME: its request, pagination, output and params schema."""
    import json

    fn = current_portal.catalog.function(name)
    if fn is None:
        raise click.ClickException(
            f"there is no function called {name!r} (see `flask portal functions list`)"
        )
    lines = [
        f"{fn.title} ({fn.name})",
        f"  app:         {fn.app}",
        f"  description: {fn.description}",
        f"  request:     {fn.method} {fn.path}",
        f"  changes:     {'yes (destructive)' if fn.destructive else 'no (read only)'}",
        f"  output:      {fn.output or '(the whole response body)'}",
    ]
    if fn.query:
        lines.append(f"  query:       {json.dumps(dict(fn.query))}")
    if fn.body is not None:
        lines.append(f"  body ({fn.body_format}): {json.dumps(fn.body)}")
    if fn.pagination is not None:
        p = fn.pagination
        lines.append(
            f"  pagination:  params.next_page -> {p.cursor_in} {p.cursor_param};"
            f" next cursor <- {p.next_cursor}"
        )
    lines.append("  params:")
    lines += ["    " + line for line in json.dumps(dict(fn.params), indent=2).splitlines()]
    for line in lines:
        click.echo(line)


@portal_cli.command("function-calls")
@click.option("--limit", default=50, show_default=True, help="How many of the newest calls.")
@click.option("--function", "name", default=None, help="Only calls of this function.")
@click.option("--project", default=None, help="Only calls of this project (app key).")
@with_appcontext
def function_calls(limit: int, name: str | None, project: str | None) -> None:
    """List recorded function invocations (of every project unless --project), newest first."""
    from sqlalchemy import select

    from .store import FunctionCall

    query = select(FunctionCall).order_by(FunctionCall.created_at.desc()).limit(limit)
    if name:
        query = query.where(FunctionCall.function == name)
    if project:
        query = query.where(FunctionCall.project == project)
    with current_portal.store.read() as db:
        rows = list(db.scalars(query))
    if not rows:
        click.echo("no function calls recorded")
    for row in rows:
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}Z  {row.function:32} {row.http_status:>3}  "
            f"{row.duration_ms:>6} ms  account {row.account_id}  project {row.project}  "
            f"user {row.user_id}"
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
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Rows re-sealed per committed transaction.",
)
@click.option(
    "--pause",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait after each batch, to spread the work on a busy database.",
)
@with_appcontext
def rotate_keys(batch_size: int, pause: float) -> None:
    """Re-seal every credential under the newest key of PORTAL_ENCRYPTION_KEYS.

    Rotation: put the new key first in every portal process (old keys stay for reading), run
    this, then drop the old keys. Rows go in batches, each committed on its own and printed as
    progress; rows already under the newest key are skipped, so re-running after an
    interruption finishes the job. Safe while serving: a batch locks its rows as a token refresh
    does and re-seals what it read under that lock. A row no key opens is reported and left
    untouched, and the command exits with status 1.
    """
    from .accounts import reseal_credentials

    state = current_portal
    resealed, skipped, failed = 0, 0, []
    for batch in reseal_credentials(state.store, state.sealer, batch_size):
        resealed += batch.resealed
        skipped += batch.skipped
        failed += batch.failed
        click.echo(
            f"{batch.done}/{batch.total}: re-sealed {batch.resealed}, "
            f"already current {batch.skipped}, unreadable {len(batch.failed)}"
        )
        if pause and batch.done < batch.total:
            time.sleep(pause)
    click.echo(
        f"re-sealed {resealed} connected account(s) under the newest key; {skipped} already were"
    )
    if failed:
        click.echo(f"could not open {len(failed)}: {', '.join(failed)}", err=True)
        raise SystemExit(1)
