"""Flows on the app page and in the API, the connected-accounts page (``showConnectedAccounts``)
and the functions list (``showFunctions``).

Thin views over :mod:`portal.flows`, :mod:`portal.accounts` and :mod:`portal.functions`:

* ``GET /api/v1/flows[?app=]`` -> ``{"flows": [Flow…]}``; ``PUT /api/v1/flows/<app>/<flow>``
  ``{enabled?, settings?, connectedAccountId?}`` -> Flow (authenticated like the rest of the API:
  a session token, or the app secret with ``X-Portal-User-Id``).
* ``POST /ui/apps/<app>/flows/<flow>`` (htmx, form-encoded): the flow's card again, saved or with
  its errors; ``GET /ui/apps/<app>/flows/<flow>/choices/<field>``: ``<option>`` elements loaded
  from a function of the user's own account.
* ``/embed/apps/<app>/accounts``, ``/ui/apps/<app>/accounts``, ``/apps/<app>/accounts`` and
  ``/embed/functions``, ``/ui/functions``, ``/functions``: iframe shell, partial and mounted page,
  like the app page.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from markupsafe import Markup

from .. import accounts as account_service
from .. import flows as flow_service
from .. import forms
from .. import functions as function_service
from ..errors import InvalidRequest, PortalHTTPError, ResourceNotFound
from ..i18n import gettext as _
from ..state import current_portal
from .common import (
    current_caller,
    mounted_page_context,
    page_context,
)
from .ui import _app_page, _require_mounted

#: Functions listed per page of ``showFunctions`` before "refine the search".
FUNCTIONS_SHOWN = 60
MODES = ("modal", "inline")
LAYOUTS = ("wide", "narrow")


def _mode_layout() -> tuple[str, str]:
    mode = request.args.get("mode", "modal")
    layout = request.args.get("layout", "wide")
    return (mode if mode in (*MODES, "page") else "modal", layout if layout in LAYOUTS else "wide")


def _app_or_404(slug: str) -> Any:
    app = current_portal.app(slug)
    if app is None:
        raise ResourceNotFound(f"No app called {slug!r}.", code="unknown_app")
    return app


# --------------------------------------------------------------------------- JSON API


def api_list_flows() -> Response:
    """``GET /api/v1/flows[?app=]``: ``{"flows": [Flow…]}`` of enabled apps, as the caller
    sees them (see :meth:`portal.flows.UserFlow.to_dict`).

    :raises ResourceNotFound: ``unknown_app``.
    """
    caller = current_caller()
    slug = request.args.get("app")
    if slug is not None:
        _app_or_404(slug)
    items = flow_service.list_user_flows(current_portal, caller.project, caller.user_id, slug)
    return jsonify({"flows": [i.to_dict() for i in items]})


def api_set_flow(app: str, flow: str) -> Response:
    """``PUT /api/v1/flows/<app>/<flow>`` ``{enabled?, settings?, connectedAccountId?}``: turn
    the caller's flow on or off and save its settings; answers the Flow. Fires ``flow.updated``.

    :raises InvalidRequest: 400 ``invalid_json``, ``invalid_settings`` (with
        ``error_details``), ``needs_account``.
    :raises ResourceNotFound: 404 ``unknown_flow``, ``unknown_account``.
    """
    caller = current_caller()
    request.max_content_length = 64 * 1024
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    changes: dict[str, Any] = {}
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise InvalidRequest("`enabled` must be true or false.", code="invalid_json")
        changes["enabled"] = body["enabled"]
    if "settings" in body:
        if not isinstance(body["settings"], dict):
            raise InvalidRequest("`settings` must be an object.", code="invalid_json")
        changes["settings"] = body["settings"]
    if "connectedAccountId" in body:
        account_id = body["connectedAccountId"]
        if account_id is not None and not isinstance(account_id, str):
            raise InvalidRequest("`connectedAccountId` must be a string or null.")
        changes["account_id"] = account_id
    item = flow_service.set_user_flow(
        current_portal, caller.project, caller.user_id, app, flow, **changes
    )
    return jsonify(item.to_dict())


# --------------------------------------------------------------------------- flows on the app page


def _fields(flow: flow_service.Flow) -> list[forms.FormField]:
    """The settings form's fields: the showFunction generator's, with ids unique per flow and
    a dynamic ``<select>`` for properties whose choices come from a function."""
    fields = []
    for f in forms.fields_for(flow.settings_schema):
        source = (f.schema or {}).get(flow_service.CHOICES_KEYWORD)
        widget = "choices" if source and f.kind == "string" else f.widget
        fields.append(dataclasses.replace(f, id=f"portal-flow-{flow.name}-{f.name}", widget=widget))
    return fields


def flow_card(
    item: flow_service.UserFlow,
    accounts: list[dict[str, Any]],
    mode: str,
    layout: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    general_errors: list[str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    """Context of ``_flow.html`` for one flow of the caller."""
    fields = _fields(item.flow)
    return {
        "flow": item.flow,
        "item": item,
        "fields": fields,
        "values": values if values is not None else forms.values_from_params(fields, item.settings),
        "errors": errors or {},
        "general_errors": general_errors or [],
        "saved": saved,
        "accounts": accounts,
        "account_id": item.account_id or item.run_account_id,
        "mode": mode,
        "layout": layout,
    }


def app_flows(app: str, accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The caller's flow cards of ``app`` (``[]`` when it has no flows), for the app page:
    ``_app_page.html`` calls it as ``portal_app_flows(app.name, accounts)`` (``accounts`` are
    the caller's Account dicts of the app). Mode and layout come from the request."""
    caller = current_caller()
    mode, layout = _mode_layout()
    if request.endpoint == "portal.app_page":
        mode = "page"
    active = [a["id"] for a in accounts if a.get("status") == "active"]
    items = flow_service.list_user_flows(
        current_portal, caller.project, caller.user_id, app, active_account_ids=active
    )
    return [flow_card(i, accounts, mode, layout) for i in items]


def _accounts(project: str, user_id: str, app: str) -> list[dict[str, Any]]:
    return [
        dict(account_service.to_dict(a))
        for a in account_service.user_accounts(current_portal.store, user_id, app, project=project)
    ]


def ui_flow_submit(app: str, flow: str) -> str:
    """htmx: save one flow from its card's form (switch, account, settings); answers the card,
    saved or with the reasons it was not (per-field errors, a missing account)."""
    mode, layout = _mode_layout()
    caller = current_caller()
    definition = flow_service.find(current_portal, app, flow)
    request.max_content_length = 256 * 1024
    fields = _fields(definition)
    settings = forms.coerce(fields, request.form)
    enabled = request.form.get("enabled") in ("true", "on", "1")
    account_id = request.form.get("connectedAccountId") or None
    accounts = _accounts(caller.project, caller.user_id, app)
    try:
        item = flow_service.set_user_flow(
            current_portal,
            caller.project,
            caller.user_id,
            app,
            flow,
            enabled=enabled,
            settings=settings,
            account_id=account_id,
        )
    except PortalHTTPError as exc:
        current = flow_service.get_user_flow(
            current_portal, caller.project, caller.user_id, app, flow
        )
        errors, general = forms.field_errors(fields, settings, exc.details)
        if exc.error_code == "needs_account":
            title = _app_or_404(app).title
            general = [_("Connect a %(app)s account above before turning this flow on.", app=title)]
        elif exc.error_code == "unknown_account":
            general = [_("That account is not connected any more; choose another.")]
        elif enabled and errors:
            general = [*general, _("Fill in the settings marked below to turn this flow on.")]
        context = flow_card(
            current,
            accounts,
            mode,
            layout,
            values=forms.values_from_form(fields, request.form),
            errors=errors,
            general_errors=general or [str(exc.description)],
        )
        return render_template("portal/_flow.html", card=context)
    return render_template(
        "portal/_flow.html", card=flow_card(item, accounts, mode, layout, saved=True)
    )


def ui_flow_choices(app: str, flow: str, field: str) -> str:
    """htmx: the ``<option>`` elements of a settings field whose choices come from a function
    of the user's own account (``?connectedAccountId=``, ``?selected=``)."""
    caller = current_caller()
    definition = flow_service.find(current_portal, app, flow)
    selected = request.args.get("selected", "")
    try:
        options = flow_service.load_choices(
            current_portal,
            caller.project,
            caller.user_id,
            definition,
            field,
            request.args.get("connectedAccountId") or None,
        )
        problem = None
    except flow_service.ChoicesUnavailable as exc:
        options, problem = [], str(exc)
    return render_template(
        "portal/_flow_choices.html", options=options, selected=selected, problem=problem
    )


# --------------------------------------------------------------------------- showConnectedAccounts


def _accounts_page(slug: str, mode: str, layout: str) -> dict[str, Any]:
    return _app_page(slug, mode, layout, reconnect_each=True)


def ui_accounts(app: str) -> str:
    """Partial: the user's accounts of one app (``showConnectedAccounts``)."""
    mode, layout = _mode_layout()
    return render_template("portal/_accounts_page.html", **_accounts_page(app, mode, layout))


def embed_accounts(app: str) -> str:
    """Iframe shell of the accounts page."""
    mode, layout = _mode_layout()
    definition = _app_or_404(app)
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_accounts", app=definition.slug, mode=mode, layout=layout),
        content=None,
        heading=_("%(app)s accounts", app=definition.title),
        **page_context("shell", mode, layout),
    )


def accounts_page(app: str) -> str:
    """Mounted mode: the accounts page as a full same-origin page."""
    _require_mounted()
    definition = _app_or_404(app)
    content = Markup(
        render_template("portal/_accounts_page.html", **_accounts_page(app, "page", "wide"))
    )
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_accounts", app=definition.slug, mode="page", layout="wide"),
        content=content,
        heading=_("%(app)s accounts", app=definition.title),
        **mounted_page_context("shell"),
    )


# --------------------------------------------------------------------------- showFunctions


def _function_matches(function: Any, app: Any, needle: str) -> bool:
    if not needle:
        return True
    haystack = (function.name, function.title, function.description, app.title, app.slug)
    return any(needle in str(text).lower() for text in haystack)


def _functions_page(mode: str, layout: str) -> dict[str, Any]:
    current_caller()
    q = request.args.get("q", "").strip()[:100]
    slug = request.args.get("app", "").strip() or None
    needle = q.lower()
    apps = [a for a in current_portal.enabled_apps() if a.functions]
    found = []
    for app in apps:
        if slug is not None and app.slug != slug:
            continue
        for function in app.functions:
            if _function_matches(function, app, needle):
                signature = function_service.signature(function)
                fields = forms.fields_for(function.params)
                found.append({**signature, "app_title": app.title, "fields": fields})
    return {
        "functions": found[:FUNCTIONS_SHOWN],
        "total": len(found),
        "more": max(0, len(found) - FUNCTIONS_SHOWN),
        "apps": [{"name": a.slug, "title": a.title} for a in apps],
        "app": slug,
        "q": q,
        "mode": mode,
        "layout": layout,
    }


def ui_functions() -> str:
    """Partial: the functions list (``showFunctions``), ``?app=`` and ``?q=`` filtered on the
    server; just its results when htmx targets ``#portal-function-results``."""
    mode, layout = _mode_layout()
    context = _functions_page(mode, layout)
    if request.headers.get("HX-Target") == "portal-function-results":
        return render_template("portal/_function_results.html", **context)
    return render_template("portal/_functions.html", **context)


def _functions_url(mode: str, layout: str) -> str:
    extra: dict[str, Any] = {k: request.args[k] for k in ("app", "q") if request.args.get(k)}
    return url_for("portal.ui_functions", mode=mode, layout=layout, **extra)


def embed_functions() -> str:
    """Iframe shell of the functions list (``?app=``, ``?q=`` passed on)."""
    mode, layout = _mode_layout()
    return render_template(
        "portal/embed.html",
        content_url=_functions_url(mode, layout),
        content=None,
        heading=_("Functions"),
        **page_context("shell", mode, layout),
    )


def functions_page() -> str:
    """Mounted mode: the functions list as a full same-origin page."""
    _require_mounted()
    content = Markup(render_template("portal/_functions.html", **_functions_page("page", "wide")))
    return render_template(
        "portal/embed.html",
        content_url=_functions_url("page", "wide"),
        content=content,
        heading=_("Functions"),
        **mounted_page_context("shell"),
    )


def register(bp: Blueprint) -> None:
    """Add the flow, accounts-page and functions-list routes to ``bp``, and the app page's
    ``portal_app_flows`` template global."""
    bp.add_app_template_global(app_flows, "portal_app_flows")
    bp.add_url_rule("/api/v1/flows", "api_flows", api_list_flows)
    bp.add_url_rule("/api/v1/flows/<app>/<flow>", "api_flow", api_set_flow, methods=["PUT"])
    bp.add_url_rule(
        "/ui/apps/<app>/flows/<flow>", "ui_flow_submit", ui_flow_submit, methods=["POST"]
    )
    bp.add_url_rule(
        "/ui/apps/<app>/flows/<flow>/choices/<field>", "ui_flow_choices", ui_flow_choices
    )
    bp.add_url_rule("/embed/apps/<app>/accounts", "embed_accounts", embed_accounts)
    bp.add_url_rule("/ui/apps/<app>/accounts", "ui_accounts", ui_accounts)
    bp.add_url_rule("/apps/<app>/accounts", "accounts_page", accounts_page)
    bp.add_url_rule("/embed/functions", "embed_functions", embed_functions)
    bp.add_url_rule("/ui/functions", "ui_functions", ui_functions)
    bp.add_url_rule("/functions", "functions_page", functions_page)
