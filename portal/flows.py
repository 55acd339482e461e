"""Flows: host-declared automations of one app that each end user turns on and configures.

A host declares flows in YAML (``PORTAL_FLOWS_PATH``: a file, or a directory of ``*.yaml``
files, each ``{"flows": [Flow…]}`` valid against ``portal/flows.schema.json``; examples ship
in ``portal/flow_examples/``). A flow has a ``trigger`` (an app event name, or a trigger of its
app's provider webhooks), the ``function`` it runs with a ``params`` mapping, and a
``settings`` JSON Schema the end user fills in on the app page. This is Paragon's workflows
with User Settings (``../shared/seeds/000``) and the "flows" of Integry's ``showApp``
(``../shared/seeds/002``).

Mapping (:func:`build_params`): in ``params`` a string that is exactly ``{payload.a.b}`` or
``{settings.x}`` takes that value with its JSON type; other placeholders are formatted into the
text (absent values as ``""``); a key whose whole value is absent is left out. Then every
setting whose name is a parameter of the function and that the mapping did not set is passed
as that parameter.

Per end user (table ``portal_flow_settings``, one row per ``(project, user_id, app, flow)``):
``enabled``, ``settings`` (validated with jsonschema, Draft 2020-12, on every write), the chosen
``connectedAccountId`` and the hash of the settings schema the settings were written against.
A flow's ``status`` is ``needs_account`` (no usable account of its app), ``needs_settings``
(settings that do not validate, or a settings schema that changed since they were saved: the
values that still validate are kept, see :func:`migrate_settings`) or ``ready``.

Runs (:func:`event_runs`, :func:`webhook_runs`): a trigger queues one run per enabled, ready
flow of that user, with their settings merged into the params; every other flow the trigger
names records a ``skipped`` run whose result says why (:data:`SKIP_REASONS`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import webhooks
from .accounts import list_accounts
from .catalog import Catalog, dotted, schema_problems
from .errors import ConfigurationError, InvalidRequest, ResourceNotFound
from .flow_types import Flow as Flow
from .flow_types import FlowSet as FlowSet
from .flow_types import Trigger as Trigger
from .store import AppEvent, AppEventRun, ConnectedAccount, FlowSetting, utcnow

if TYPE_CHECKING:
    from .state import PortalState

log = logging.getLogger(__name__)

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "flows.schema.json").read_text("utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA)
#: The shipped example flows (the demo uses ``sandbox.yaml``).
EXAMPLES_DIR = Path(__file__).resolve().parent / "flow_examples"
#: The schema keyword of a settings property whose options come from a function of the
#: user's own account: ``{function, params?, items?, value, label?}``.
CHOICES_KEYWORD = "x-portal-choices"
#: Webhook type sent when an end user changes a flow.
WEBHOOK_TYPE = "flow.updated"

Status = Literal["ready", "needs_settings", "needs_account"]
#: ``result.error`` of a skipped run, and what it means.
SKIP_REASONS = {
    "flow_disabled": "The user has not turned this flow on.",
    "needs_account": "The flow has no connected account to run with.",
    "needs_settings": "The flow's settings are incomplete or no longer valid.",
}

_PLACEHOLDER = re.compile(r"\{(payload|settings)((?:\.[A-Za-z0-9_-]+)*)\}")
_ABSENT = object()


# --------------------------------------------------------------------------- declaration


def validate_file(data: Any, source: Path | str) -> list[str]:
    """Every schema violation of one parsed flows file, each ``"<file>: <field>: <problem>"``."""
    return schema_problems(_VALIDATOR, data, source)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def load_flows(paths: Iterable[Path | str] | Path | str | None) -> FlowSet:
    """Read and validate the flows of ``paths`` (files or directories of ``*.yaml``/``*.yml``).

    :raises ConfigurationError: with *all* problems found (a missing path, YAML errors, schema
        violations, a settings schema that is not a valid JSON Schema, a name declared twice
        for one app), each naming its file.
    """
    if paths is None:
        return FlowSet()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    flows: list[Flow] = []
    problems: list[str] = []
    for item in paths:
        path = Path(item)
        if not path.exists():
            problems.append(f"{path}: flows path does not exist")
            continue
        for file in _files(path):
            try:
                data = yaml.safe_load(file.read_text("utf-8"))
            except yaml.YAMLError as exc:
                problems.append(f"{file}: not valid YAML: {exc}")
                continue
            errors = validate_file(data, file)
            problems.extend(errors)
            if errors:
                continue
            for index, entry in enumerate(data["flows"]):
                flow = _build(entry, file)
                settings = dict(flow.settings_schema)
                try:
                    Draft202012Validator.check_schema(settings)
                except Exception as exc:  # jsonschema.SchemaError
                    problems.append(
                        f"{file}: flows.{index}.settings: not a valid JSON Schema: {exc}"
                    )
                    continue
                if any(f.app == flow.app and f.name == flow.name for f in flows):
                    problems.append(f"{file}: flows.{index}: {flow.key} is declared twice")
                    continue
                flows.append(flow)
    if problems:
        raise ConfigurationError("invalid flow definition(s):\n  " + "\n  ".join(problems))
    return FlowSet(tuple(flows))


def _build(entry: Mapping[str, Any], source: Path) -> Flow:
    trigger = entry["trigger"]
    kind: Literal["app_event", "webhook"] = "app_event" if "event" in trigger else "webhook"
    settings = entry.get("settings") or {"type": "object", "properties": {}}
    return Flow(
        name=entry["name"],
        title=entry["title"],
        description=entry["description"],
        app=entry["app"],
        trigger=Trigger(kind, trigger.get("event") or trigger["webhook"]),
        function=entry["function"],
        params=dict(entry.get("params") or {}),
        settings_schema=settings,
        source=str(source),
    )


def check_against_catalog(flows: FlowSet, catalog: Catalog) -> list[str]:
    """Problems of flows whose app is in the catalog: an unknown function or one of another
    app, a webhook trigger the app does not have, a choices function of another app.

    Flows of apps absent from the catalog are not checked (they never show).
    """
    problems = []
    for flow in flows:
        app = catalog.get(flow.app)
        if app is None:
            continue
        function = catalog.function(flow.function)
        if function is None or function.app != flow.app:
            problems.append(
                f"{flow.source}: {flow.key}: {flow.function!r} is no function of {flow.app}"
            )
        if flow.trigger.type == "webhook" and (
            app.webhooks is None or flow.trigger.name not in app.webhooks.triggers
        ):
            problems.append(
                f"{flow.source}: {flow.key}: {flow.app} has no webhook trigger {flow.trigger.name!r}"
            )
        for name, prop in (flow.settings_schema.get("properties") or {}).items():
            source = prop.get(CHOICES_KEYWORD) if isinstance(prop, Mapping) else None
            if source is None:
                continue
            chooser = catalog.function(str(source.get("function")))
            if chooser is None or chooser.app != flow.app or "value" not in source:
                problems.append(
                    f"{flow.source}: {flow.key}: settings.{name}.{CHOICES_KEYWORD} needs a "
                    f"function of {flow.app} and a value path"
                )
    return problems


def load_for(config: Mapping[str, Any], catalog: Catalog) -> FlowSet:
    """The flows ``config["PORTAL_FLOWS_PATH"]`` declares, checked against ``catalog``.

    :raises ConfigurationError: see :func:`load_flows` and :func:`check_against_catalog`.
    """
    flows = load_flows(config.get("PORTAL_FLOWS_PATH"))
    problems = check_against_catalog(flows, catalog)
    if problems:
        raise ConfigurationError("invalid flow definition(s):\n  " + "\n  ".join(problems))
    return flows


def enabled_flows(state: PortalState, app: str | None = None) -> list[Flow]:
    """Declared flows whose app is enabled (of ``app`` only, when given)."""
    return [
        f for f in state.flows if (app is None or f.app == app) and state.app(f.app) is not None
    ]


def find(state: PortalState, app: str, name: str) -> Flow:
    """The flow ``name`` of the enabled app ``app``.

    :raises ResourceNotFound: ``unknown_flow``.
    """
    flow = state.flows.get(app, name)
    if flow is None or state.app(app) is None:
        raise ResourceNotFound(f"No flow {name!r} of {app!r}.", code="unknown_flow")
    return flow


# --------------------------------------------------------------------------- mapping


def _lookup(context: Mapping[str, Any], root: str, path: str) -> Any:
    value: Any = context.get(root, {})
    for part in path.lstrip(".").split(".") if path else []:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _ABSENT
    return value


def fill(template: Any, payload: Mapping[str, Any], settings: Mapping[str, Any]) -> Any:
    """``template`` with ``{payload.…}`` and ``{settings.…}`` placeholders filled (see the
    module docs); the filled copy, ``template`` is not changed."""
    context = {"payload": payload, "settings": settings}
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(context, whole.group(1), whole.group(2))

        def text(match: re.Match[str]) -> str:
            value = _lookup(context, match.group(1), match.group(2))
            if value is _ABSENT or value is None:
                return ""
            return value if isinstance(value, str) else json.dumps(value)

        return _PLACEHOLDER.sub(text, template)
    if isinstance(template, Mapping):
        out = {k: fill(v, payload, settings) for k, v in template.items()}
        return {k: v for k, v in out.items() if v is not _ABSENT}
    if isinstance(template, list):
        items = [fill(item, payload, settings) for item in template]
        return [v for v in items if v is not _ABSENT]
    return template


def build_params(
    flow: Flow,
    payload: Mapping[str, Any],
    settings: Mapping[str, Any],
    function_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The params of one run: ``flow.params`` filled from ``payload`` and ``settings``, then
    each setting named like a property of ``function_params`` (the function's params schema)
    that the mapping left unset."""
    params = fill(dict(flow.params), payload, settings)
    properties = (function_params or {}).get("properties") or {}
    for name, value in settings.items():
        if name in properties and name not in params:
            params[name] = value
    return dict(params)


# --------------------------------------------------------------------------- settings


def _details(errors: Iterable[Any]) -> list[dict[str, str]]:
    details = []
    for error in sorted(errors, key=lambda e: list(e.absolute_path)):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            match = re.match(r"'([^']+)'", error.message)
            if match:
                path.append(match.group(1))
        details.append({"field": ".".join(path), "message": error.message})
    return details


def validate_settings(flow: Flow, settings: Any, *, complete: bool = True) -> list[dict[str, str]]:
    """Every violation of the flow's settings schema, each ``{"field", "message"}``.

    :param complete: ``False`` ignores missing required values (a flow that is off may be
        saved half filled in); every value given is still checked.
    """
    if not isinstance(settings, Mapping):
        return [{"field": "", "message": "settings must be an object"}]
    validator = Draft202012Validator(dict(flow.settings_schema))
    errors = [
        e
        for e in validator.iter_errors(dict(settings))
        if complete or not (e.validator == "required" and not e.absolute_path)
    ]
    return _details(errors)


def with_defaults(flow: Flow, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the schema's top-level ``default`` values filled in."""
    filled = dict(settings)
    for name, schema in (flow.settings_schema.get("properties") or {}).items():
        if name not in filled and isinstance(schema, Mapping) and "default" in schema:
            filled[name] = schema["default"]
    return filled


def migrate_settings(schema: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``settings`` that are still valid under a changed ``schema``: each value
    of a declared property that validates against that property's schema, and each other
    value when ``additionalProperties`` allows it (``true``, absent, or a schema it matches).
    """
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties", True)
    kept: dict[str, Any] = {}
    for name, value in settings.items():
        sub = properties.get(name) if name in properties else extra
        if sub is True or (
            isinstance(sub, Mapping) and Draft202012Validator(dict(sub)).is_valid(value)
        ):
            kept[name] = value
    return kept


@dataclass
class UserFlow:
    """One flow as one end user sees it (:meth:`to_dict` is the API's Flow)."""

    flow: Flow
    enabled: bool
    settings: dict[str, Any]
    status: Status
    account_id: str | None
    #: The account a run would use now (``None`` when there is none).
    run_account_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{name, title, description, app, trigger, enabled, settings, settings_schema,
        status, connectedAccountId}``."""
        return {
            "name": self.flow.name,
            "title": self.flow.title,
            "description": self.flow.description,
            "app": self.flow.app,
            "trigger": self.flow.trigger.to_dict(),
            "enabled": self.enabled,
            "settings": self.settings,
            "settings_schema": dict(self.flow.settings_schema),
            "status": self.status,
            "connectedAccountId": self.account_id,
        }


def user_flow(flow: Flow, row: FlowSetting | None, account_ids: list[str]) -> UserFlow:
    """``flow`` for the user whose row is ``row`` and whose accounts of the flow's app are
    ``account_ids`` (most recently modified first)."""
    if row is None:
        settings = with_defaults(flow, {})
        changed = False
        enabled, chosen = False, None
    else:
        changed = row.schema_hash != flow.schema_hash
        stored = dict(row.settings or {})
        settings = migrate_settings(flow.settings_schema, stored) if changed else stored
        enabled, chosen = row.enabled, row.account_id
    run_account = chosen if chosen in account_ids else None
    if chosen is None and account_ids:
        run_account = account_ids[0]
    status: Status
    if run_account is None:
        status = "needs_account"
    elif changed or validate_settings(flow, settings):
        status = "needs_settings"
    else:
        status = "ready"
    return UserFlow(
        flow,
        enabled,
        settings,
        status,
        chosen,
        run_account,
    )


def _rows(
    db: Session, project: str, user_id: str, app: str | None = None
) -> dict[tuple[str, str], FlowSetting]:
    query = select(FlowSetting).where(
        FlowSetting.project == project, FlowSetting.user_id == user_id
    )
    if app is not None:
        query = query.where(FlowSetting.app == app)
    return {(r.app, r.flow): r for r in db.scalars(query)}


def _account_ids(db: Session, project: str, user_id: str, app: str) -> list[str]:
    return [a.id for a in list_accounts(db, user_id, app, project=project) if a.status == "active"]


def list_user_flows(
    state: PortalState,
    project: str,
    user_id: str,
    app: str | None = None,
    active_account_ids: list[str] | None = None,
) -> list[UserFlow]:
    """The flows of enabled apps (of ``app`` only, when given) as ``user_id`` of ``project``
    sees them. Only that project's rows and accounts are read.

    :param active_account_ids: with ``app``, the user's active accounts of it, most recently
        modified first, when the caller has read them already (the app page).
    """
    flows = enabled_flows(state, app)
    if not flows:
        return []
    with state.store.read() as db:
        rows = _rows(db, project, user_id, app)
        accounts: dict[str, list[str]] = {}
        if app is not None and active_account_ids is not None:
            accounts[app] = list(active_account_ids)
        for flow in flows:
            if flow.app not in accounts:
                accounts[flow.app] = _account_ids(db, project, user_id, flow.app)
        return [user_flow(f, rows.get((f.app, f.name)), accounts[f.app]) for f in flows]


def get_user_flow(state: PortalState, project: str, user_id: str, app: str, name: str) -> UserFlow:
    """One flow as ``user_id`` of ``project`` sees it.

    :raises ResourceNotFound: ``unknown_flow``.
    """
    flow = find(state, app, name)
    with state.store.read() as db:
        row = _rows(db, project, user_id, app).get((app, name))
        return user_flow(flow, row, _account_ids(db, project, user_id, app))


def user_summary(state: PortalState, project: str, user_id: str) -> dict[str, dict[str, Any]]:
    """For ``getUser()``: ``{app: {flow name: {enabled, status, settings}}}``."""
    summary: dict[str, dict[str, Any]] = {}
    for item in list_user_flows(state, project, user_id):
        summary.setdefault(item.flow.app, {})[item.flow.name] = {
            "enabled": item.enabled,
            "status": item.status,
            "settings": item.settings,
        }
    return summary


_MISSING = object()


def set_user_flow(
    state: PortalState,
    project: str,
    user_id: str,
    app: str,
    name: str,
    *,
    enabled: bool | None = None,
    settings: Any = _MISSING,
    account_id: Any = _MISSING,
) -> UserFlow:
    """Turn a flow on or off, save its settings and its account, for ``user_id`` of
    ``project``, and queue a ``flow.updated`` webhook in the same transaction.

    Omitted arguments keep what is stored (a flow never saved starts off, with the schema's
    defaults). Settings are validated on every write: completely when the flow is (or stays)
    on, without ``required`` when it is off.

    :param account_id: one of the user's accounts of ``app`` in ``project``, or ``None`` for
        "the most recently modified one".
    :raises ResourceNotFound: ``unknown_flow``; ``unknown_account`` for an account that is not
        this user's account of ``app`` in ``project``.
    :raises InvalidRequest: ``invalid_settings`` with ``error_details``; ``needs_account`` when
        turning the flow on with no account of ``app`` connected.
    """
    flow = find(state, app, name)
    try:
        return _set(state, flow, project, user_id, enabled, settings, account_id)
    except IntegrityError:
        # Two first saves of one user's flow at once (PostgreSQL): the other one inserted the
        # row; this one now updates it.
        return _set(state, flow, project, user_id, enabled, settings, account_id)


def _set(
    state: PortalState,
    flow: Flow,
    project: str,
    user_id: str,
    enabled: bool | None,
    settings: Any,
    account_id: Any,
) -> UserFlow:
    app, name = flow.app, flow.name
    with state.store.session() as db:
        row = _rows(db, project, user_id, app).get((app, name))
        ids = _account_ids(db, project, user_id, app)
        current = user_flow(flow, row, ids)
        new_enabled = current.enabled if enabled is None else bool(enabled)
        new_settings = current.settings if settings is _MISSING else settings
        new_account = current.account_id if account_id is _MISSING else account_id
        if new_account is not None:
            owned = db.scalar(
                select(ConnectedAccount.id).where(
                    ConnectedAccount.id == new_account,
                    ConnectedAccount.project == project,
                    ConnectedAccount.user_id == user_id,
                    ConnectedAccount.app == app,
                )
            )
            if owned is None:
                raise ResourceNotFound("No such connected account.", code="unknown_account")
        details = validate_settings(flow, new_settings, complete=new_enabled)
        if details:
            raise InvalidRequest(
                "The settings are not valid.", code="invalid_settings", details=details
            )
        if new_enabled and not ids:
            title = getattr(state.app(app), "title", app)
            raise InvalidRequest(
                f"Connect a {title} account before turning this flow on.", code="needs_account"
            )
        now = utcnow()
        if row is None:
            row = FlowSetting(
                id="fs_" + secrets.token_urlsafe(18),
                project=project,
                user_id=user_id,
                app=app,
                flow=name,
                created_at=now,
            )
            db.add(row)
        row.enabled = new_enabled
        row.settings = dict(new_settings)
        row.account_id = new_account
        row.schema_hash = flow.schema_hash
        row.updated_at = now
        db.flush()
        result = user_flow(flow, row, ids)
        webhooks.enqueue(
            db,
            WEBHOOK_TYPE,
            {"user_id": user_id, "app": app, "flow": result.to_dict()},
            row.id,
            project=project,
            state=state,
        )
    return result


# --------------------------------------------------------------------------- runs


def _new_run_id() -> str:
    return "run_" + secrets.token_urlsafe(18)


def _runs_for(
    state: PortalState,
    db: Session,
    event: AppEvent,
    flows: list[Flow],
    payload: Mapping[str, Any],
    only_account: str | None = None,
) -> list[AppEventRun]:
    rows = _rows(db, event.project, event.user_id)
    now = utcnow()
    runs: list[AppEventRun] = []
    accounts: dict[str, list[str]] = {}
    for flow in flows:
        if flow.app not in accounts:
            accounts[flow.app] = _account_ids(db, event.project, event.user_id, flow.app)
        ids = accounts[flow.app]
        if only_account is not None:
            # A provider notification is for one account: only flows that run with it.
            ids = [only_account] if only_account in ids else []
        item = user_flow(flow, rows.get((flow.app, flow.name)), ids)
        if only_account is not None and item.account_id not in (None, only_account):
            continue
        run = AppEventRun(
            id=_new_run_id(),
            event_id=event.id,
            project=event.project,
            function=flow.function,
            flow=flow.key,
            attempts=0,
            created_at=now,
        )
        reason = (
            "flow_disabled" if not item.enabled else None if item.status == "ready" else item.status
        )
        if reason is not None:
            run.params = {}
            run.status = "skipped"
            run.result = {"error": reason, "message": SKIP_REASONS[reason]}
            run.finished_at = now
        else:
            function = state.catalog.function(flow.function)
            run.params = build_params(
                flow, payload, item.settings, function.params if function else None
            )
            run.status = "queued"
            run.account_id = item.run_account_id
        runs.append(run)
    return runs


def event_runs(
    state: PortalState, db: Session, event: AppEvent, payload: Mapping[str, Any]
) -> list[AppEventRun]:
    """The runs app event ``event`` causes through flows (not yet added to ``db``): one per
    flow of an enabled app whose trigger is the event's name, ``queued`` when its user turned
    it on and it is ready, else ``skipped`` with ``result = {"error": reason, "message"}``."""
    flows = [
        f
        for f in enabled_flows(state)
        if f.trigger.type == "app_event" and f.trigger.name == event.name
    ]
    return _runs_for(state, db, event, flows, payload) if flows else []


def webhook_runs(
    state: PortalState,
    db: Session,
    app: str,
    trigger: str,
    account: ConnectedAccount,
    payload: Mapping[str, Any],
) -> list[AppEventRun]:
    """Record a provider notification for ``account``'s user as an app event named
    ``<app>:<trigger>`` and add the runs of the flows it triggers (those that run with this
    account, or with the user's most recent one), in ``db``'s transaction. Nothing is written
    when no flow has this trigger."""
    flows = [
        f
        for f in enabled_flows(state, app)
        if f.trigger.type == "webhook" and f.trigger.name == trigger
    ]
    if not flows:
        return []
    event = AppEvent(
        id="ev_" + secrets.token_urlsafe(18),
        project=account.project,
        user_id=account.user_id,
        app_key=None,
        name=f"{app}:{trigger}",
        payload=dict(payload),
        created_at=utcnow(),
    )
    db.add(event)
    db.flush()
    runs = _runs_for(state, db, event, flows, payload, only_account=account.id)
    db.add_all(runs)
    return runs


# --------------------------------------------------------------------------- dynamic choices


class ChoicesUnavailable(Exception):
    """The options of a settings field could not be loaded; the message says why, in words
    for the end user."""


@dataclass(frozen=True)
class Choice:
    """One option of a settings field: the stored ``value`` and the ``label`` shown."""

    value: str
    label: str


def load_choices(
    state: PortalState,
    project: str,
    user_id: str,
    flow: Flow,
    field_name: str,
    account_id: str | None = None,
) -> list[Choice]:
    """The options of settings property ``field_name``, from the function its
    ``x-portal-choices`` names (``{function, params?, items?, value, label?}``), invoked for
    ``user_id`` of ``project`` with ``account_id`` (default: their most recent account of the
    flow's app). ``items`` is the dotted path of the list in the function's output (default:
    the output itself); ``value`` and ``label`` are dotted paths in each item.

    :raises ResourceNotFound: the property has no ``x-portal-choices``.
    :raises ChoicesUnavailable: no account, the function failed or answered no list.
    """
    from .functions import find as find_function
    from .functions import invoke

    prop = (flow.settings_schema.get("properties") or {}).get(field_name)
    source = prop.get(CHOICES_KEYWORD) if isinstance(prop, Mapping) else None
    if not isinstance(source, Mapping):
        raise ResourceNotFound(f"{field_name!r} has no choices.", code="unknown_field")
    function = find_function(state, str(source["function"]))
    try:
        code, result = invoke(
            state, function, user_id, dict(source.get("params") or {}), account_id, project=project
        )
    except Exception as exc:  # timeouts, refused hosts, needs_reauth: all end in words
        log.warning("choices of %s.%s: %s raised %r", flow.key, field_name, function.name, exc)
        raise ChoicesUnavailable("The choices could not be loaded; try again later.") from exc
    if code == 404:
        raise ChoicesUnavailable("Connect an account to load the choices.")
    network = int(result.get("network_code", 0)) if code == 200 else 0
    if code != 200 or not 200 <= network < 300:
        raise ChoicesUnavailable("The choices could not be loaded; try again later.")
    output = result.get("output")
    items = dotted(output, str(source["items"])) if source.get("items") else output
    if not isinstance(items, list):
        raise ChoicesUnavailable("The app answered no list of choices.")
    choices = []
    for item in items:
        value = dotted(item, str(source["value"]))
        if value is None or isinstance(value, (Mapping, list)):
            continue
        label = dotted(item, str(source["label"])) if source.get("label") else None
        choices.append(Choice(str(value), str(label if label is not None else value)))
    return choices
