"""HTML pages: iframe shells, htmx partials, and same-origin mounted pages."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from .. import accounts as account_service
from .. import forms
from .. import functions as function_service
from ..catalog import App
from ..errors import PortalHTTPError, ResourceNotFound
from ..i18n import N_, page_language
from ..i18n import gettext as _
from ..i18n import lazy_gettext as _l
from ..i18n import relative_time as relative_time
from ..state import current_portal
from ..theme import stylesheet as theme_stylesheet
from .common import (
    app_logo,
    app_summary,
    current_caller,
    mounted_page_context,
    own_origin,
    page_context,
    theme_from_url,
)

MODES = ("modal", "inline")
LAYOUTS = ("wide", "narrow")


def _mode_layout(default_mode: str = "modal") -> tuple[str, str]:
    mode = request.args.get("mode", default_mode)
    layout = request.args.get("layout", "wide")
    if mode not in (*MODES, "page"):
        mode = default_mode
    if layout not in LAYOUTS:
        layout = "wide"
    return mode, layout


def _app_or_404(slug: str) -> App:
    app = current_portal.app(slug)
    if app is None:
        raise ResourceNotFound(_("There is no app called “%(app)s”.", app=slug))
    return app


#: Cards rendered per marketplace page; "Show more" fetches the next page (htmx) or, without
#: JavaScript, reloads with ``?page=N`` showing pages 1..N.
PAGE_SIZE = 24


def _page_number() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 1000))
    except ValueError:
        return 1


def matches(app: App, needle: str, category: str | None) -> bool:
    """True when ``app`` is in ``category`` (any when ``None``) and ``needle`` (lower-case;
    empty matches all) occurs in its title, slug, description or one of its categories."""
    if category and category not in app.categories:
        return False
    if not needle:
        return True
    haystack = (app.title, app.slug, app.description, *app.categories)
    return any(needle in text.lower() for text in haystack)


def _marketplace(
    mode: str, layout: str, *, only_page: bool = False, anonymous: bool = False
) -> dict[str, Any]:
    """Context of the marketplace templates for ``?q=``, ``?category=`` and ``?page=``.

    ``apps`` holds the cards of pages 1..page (with ``only_page``: of that page only), each an
    AppSummary plus ``logo`` (:func:`~portal.views.common.app_logo`); ``total`` counts every
    match and ``more`` those not shown yet. ``anonymous`` renders the catalog as nobody's (no
    caller needed, every app unconnected): the iframe shell paints it before the user is known.
    """
    q = request.args.get("q", "").strip()[:100]
    category = request.args.get("category", "").strip() or None
    page = _page_number()
    enabled = current_portal.enabled_apps()
    categories = sorted({c for a in enabled for c in a.categories})
    needle = q.lower()
    found = [a for a in enabled if matches(a, needle, category)]
    end = page * PAGE_SIZE
    visible = found[(page - 1) * PAGE_SIZE if only_page else 0 : end]
    counts: Counter[str] = Counter()
    if not anonymous:
        caller = current_caller()
        counts = account_service.connected_counts(
            current_portal.store, caller.user_id, project=caller.project
        )
    apps = [{**app_summary(a, counts.get(a.slug, 0)), "logo": app_logo(a)} for a in visible]
    return {
        "apps": apps,
        "categories": categories,
        "q": q,
        "category": category,
        "mode": mode,
        "layout": layout,
        "page": page,
        "total": len(found),
        "catalog_size": len(enabled),
        "more": max(0, len(found) - end),
        "page_size": PAGE_SIZE,
        "anonymous": anonymous,
    }


def _app_page(slug: str, mode: str, layout: str, *, reconnect_each: bool = False) -> dict[str, Any]:
    """The context of an app's page (``_app_page.html``) and of its accounts page
    (``_accounts_page.html``, with ``reconnect_each``): the app, the caller's accounts with
    their relative times, and a connect ``{url, attempt_id}``. Tickets are single use, so with
    ``reconnect_each`` every account's Reconnect button gets one of its own.

    :raises ResourceNotFound: no such app in the marketplace.
    """
    caller = current_caller()
    app = _app_or_404(slug)
    rows = account_service.user_accounts(
        current_portal.store, caller.user_id, app.slug, project=caller.project
    )
    now = datetime.now(UTC)
    accounts = [
        {
            **account_service.to_dict(a),
            "created_human": relative_time(a.created_at, now),
            "modified_human": relative_time(a.modified_at, now),
        }
        for a in rows
    ]

    def connect() -> dict[str, str]:
        # The iframe (or mounted page) opens the popup, so the result goes to the portal's origin.
        ticket, attempt_id, _ = current_portal.tokens.issue_ticket(
            caller.user_id,
            app.slug,
            caller.host_origin or own_origin(),
            own_origin(),
            project=caller.project,
            theme=caller.theme,
        )
        return {
            "url": url_for("portal.connect", app=app.slug, ticket=ticket, lang=page_language()),
            "attempt_id": attempt_id,
        }

    if reconnect_each:
        for account in accounts:
            account["reconnect"] = connect()
    return {
        "app": {**app_summary(app, len(accounts)), "logo": app_logo(app)},
        "accounts": accounts,
        "connect": connect(),
        "mode": mode,
        "layout": layout,
        "error": None,
    }


def ui_apps() -> str:
    """Partial: the marketplace; just its grid when htmx targets ``#portal-app-grid`` (search,
    category), just one more page of cards when it targets ``#portal-more`` ("Show more")."""
    mode, layout = _mode_layout()
    target = request.headers.get("HX-Target")
    if target == "portal-more":
        context = _marketplace(mode, layout, only_page=True)
        return render_template("portal/_app_cards.html", autofocus_first=True, **context)
    context = _marketplace(mode, layout)
    if target == "portal-app-grid":
        return render_template("portal/_app_grid.html", oob_count=True, **context)
    return render_template("portal/_marketplace.html", **context)


def ui_app(app: str) -> str:
    """Partial: one app's page, with a fresh single-use connect ticket."""
    mode, layout = _mode_layout()
    return render_template("portal/_app_page.html", **_app_page(app, mode, layout))


def embed_apps() -> str:
    """Iframe shell of the marketplace with its first page of cards already in it (the catalog
    is nobody's in particular), so it paints from this one response; frame.js then loads the
    user's version (connected badges) with the bearer token from the fragment."""
    mode, layout = _mode_layout()
    content = Markup(
        render_template("portal/_marketplace.html", **_marketplace(mode, layout, anonymous=True))
    )
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_apps", mode=mode, layout=layout),
        content=content,
        heading=_("Connect apps"),
        lazy_htmx=True,  # frame.js loads htmx once the cards are painted
        **page_context("shell", mode, layout),
    )


def embed_app(app: str) -> str:
    """Iframe shell of one app's page."""
    mode, layout = _mode_layout()
    definition = _app_or_404(app)
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_app", app=definition.slug, mode=mode, layout=layout),
        content=None,
        heading=definition.title,
        **page_context("shell", mode, layout),
    )


def embed_rpc() -> str:
    """The host-page SDK's hidden frame: frame.js answers its method calls (``portal:call``
    messages from the session's host origin) with the bearer token each call carries."""
    return render_template("portal/rpc.html")


PREFILL_UNREADABLE = _l(
    "The pre-filled values could not be read, so the form starts with its defaults."
)


def _function_accounts(project: str, user_id: str, app_slug: str) -> list[dict[str, Any]]:
    return [
        dict(account_service.to_dict(a))
        for a in account_service.user_accounts(
            current_portal.store, user_id, app_slug, project=project
        )
    ]


def _function_form(
    name: str,
    mode: str,
    layout: str,
    *,
    values: Any = None,
    params: dict[str, Any] | None = None,
    account_id: str | None = None,
    errors: dict[str, list[str]] | None = None,
    general_errors: list[str] | None = None,
    notice: str | None = None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Context of ``_function_form.html``: the form (or, with ``result``, the done state)."""
    caller = current_caller()
    function = function_service.find(current_portal, name)
    app = current_portal.app(function.app)
    assert app is not None  # find() answered 404 for a function of an app not enabled
    fields = forms.fields_for(function.params)
    accounts = _function_accounts(caller.project, caller.user_id, app.slug)
    ids = [a["id"] for a in accounts]
    account_error = None
    if account_id is not None and account_id not in ids:
        account_error = _("That account is not connected any more; choose another.")
        account_id = None
    if account_id is None and ids:
        account_id = ids[0]
    return {
        "function": function_service.signature(function),
        "app": app_summary(app, len(accounts)),
        "fields": fields,
        "values": values if values is not None else forms.values_from_params(fields, params or {}),
        "accounts": accounts,
        "account_id": account_id,
        "account_error": account_error,
        "errors": errors or {},
        "general_errors": general_errors or [],
        "notice": notice,
        "result": result,
        "mode": mode,
        "layout": layout,
    }


def ui_function(name: str) -> str:
    """Partial: a function's params form (``showFunction``), pre-filled from ``?params=``
    (base64url JSON) and ``?connectedAccountId=``."""
    mode, layout = _mode_layout()
    params = forms.decode_params(request.args.get("params"))
    return render_template(
        "portal/_function_form.html",
        **_function_form(
            name,
            mode,
            layout,
            params=params or {},
            account_id=request.args.get("connectedAccountId") or None,
            notice=str(PREFILL_UNREADABLE) if params is None else None,
        ),
    )


def ui_function_submit(name: str) -> str:
    """htmx submit of the params form: the form again with per-field errors (200), or the done
    state carrying ``{"name", "params", "connectedAccountId"}`` in
    ``<script type="application/json" id="portal-function-params">`` for frame.js."""
    mode, layout = _mode_layout()
    caller = current_caller()
    function = function_service.find(current_portal, name)
    request.max_content_length = 1024 * 1024
    fields = forms.fields_for(function.params)
    params = forms.coerce(fields, request.form)
    details = function_service.validate_params(function, params)
    account_id = request.form.get("connectedAccountId") or None
    account_ok = account_id is None or account_id in [
        a["id"] for a in _function_accounts(caller.project, caller.user_id, function.app)
    ]
    if details or not account_ok:
        errors, general = forms.field_errors(fields, params, details)
        context = _function_form(
            name,
            mode,
            layout,
            values=forms.values_from_form(fields, request.form),
            account_id=account_id,
            errors=errors,
            general_errors=general,
        )
        return render_template("portal/_function_form.html", submitted=True, **context)
    result = {"name": function.name, "params": params, "connectedAccountId": account_id}
    context = _function_form(
        name, mode, layout, params=params, account_id=account_id, result=result
    )
    return render_template(
        "portal/_function_form.html", edit_params=forms.encode_params(params), **context
    )


def embed_function(name: str) -> str:
    """Iframe shell of a function's params form; ``?params=`` (base64url JSON) or
    ``?params_json=`` (JSON, from portal.js) and ``?connectedAccountId=`` are passed on to the
    partial."""
    mode, layout = _mode_layout()
    function = function_service.find(current_portal, name)
    return render_template(
        "portal/function.html",
        content_url=_function_url(function.name, mode, layout),
        content=None,
        heading=function.title,
        **page_context("shell", mode, layout),
    )


def _function_url(name: str, mode: str, layout: str) -> str:
    extra: dict[str, Any] = {
        k: request.args[k] for k in ("params", "connectedAccountId") if request.args.get(k)
    }
    if raw := request.args.get("params_json"):
        # portal.js sends plain JSON (no encoder in the host-page SDK); the partial reads base64url.
        extra["params"] = base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")
    return url_for("portal.ui_function", name=name, mode=mode, layout=layout, **extra)


class SignInRequired(PortalHTTPError):
    """401 on a mounted page when nobody is logged in (rendered as the "sign in" page)."""

    code = 401
    error_code = "sign_in_required"
    name = "Sign in to continue"
    description = N_("Sign in to your account first, then come back to connect your apps.")


def login_url() -> str | None:
    """``PORTAL_LOGIN_URL`` with ``next`` set to this page, or ``None`` when it is unset. An
    endpoint name (no ``/``) is built with ``url_for``; ``next`` is a path on this origin only."""
    target = current_portal.config["PORTAL_LOGIN_URL"]
    if not target:
        return None
    url = str(target) if "/" in str(target) else url_for(str(target))
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'next': request.full_path.rstrip('?')})}"


def _require_mounted() -> None:
    """Mounted pages exist only with a ``user_loader``; with nobody logged in they send the
    browser to ``PORTAL_LOGIN_URL`` (302) or answer the 401 "sign in" page.

    :raises NotFound: no ``user_loader`` is registered (the portal is not mounted).
    :raises SignInRequired: nobody is logged in and ``PORTAL_LOGIN_URL`` is unset.
    """
    if not current_portal.portal.has_user_loader:
        abort(404)
    if current_portal.portal.load_user() is None:
        target = login_url()
        if target is not None:
            abort(redirect(target))
        raise SignInRequired()


def apps_page() -> str:
    """Mounted mode: the marketplace as a full same-origin page."""
    _require_mounted()
    layout = request.args.get("layout", "wide") if request.args.get("layout") in LAYOUTS else "wide"
    content = Markup(render_template("portal/_marketplace.html", **_marketplace("page", layout)))
    context = mounted_page_context("shell")
    context["layout"] = layout
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_apps", mode="page", layout=layout),
        content=content,
        heading=_("Connect apps"),
        **context,
    )


def app_page(app: str) -> str:
    """Mounted mode: one app's page as a full same-origin page."""
    _require_mounted()
    content = Markup(render_template("portal/_app_page.html", **_app_page(app, "page", "wide")))
    definition = _app_or_404(app)
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_app", app=definition.slug, mode="page", layout="wide"),
        content=content,
        heading=definition.title,
        **mounted_page_context("shell"),
    )


def function_page(name: str) -> str:
    """Mounted mode: a function's params form as a full same-origin page; on submit frame.js
    dispatches ``connect-portal:function-params`` on ``window``."""
    _require_mounted()
    function = function_service.find(current_portal, name)
    params = forms.decode_params(request.args.get("params"))
    context = _function_form(
        function.name,
        "page",
        "wide",
        params=params or {},
        account_id=request.args.get("connectedAccountId") or None,
        notice=str(PREFILL_UNREADABLE) if params is None else None,
    )
    content = Markup(render_template("portal/_function_form.html", **context))
    return render_template(
        "portal/function.html",
        content_url=_function_url(function.name, "page", "wide"),
        content=content,
        heading=function.title,
        **mounted_page_context("shell"),
    )


def theme_css() -> Response:
    """``GET <prefix>/theme.css?t=<signed theme>``: a theme's custom properties
    (:func:`portal.theme.stylesheet`). The URL names its content, so the answer is cached for a
    year, ``immutable`` (RFC 8246). 404 for a forged or missing ``t``."""
    theme = theme_from_url(request.args.get("t", ""))
    if theme is None:
        raise ResourceNotFound("There is no such theme stylesheet.")
    response = Response(theme_stylesheet(theme), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def register(bp: Blueprint) -> None:
    """Add the page routes to ``bp``."""
    bp.add_url_rule("/theme.css", "theme_css", theme_css)
    bp.add_url_rule("/embed/apps", "embed_apps", embed_apps)
    bp.add_url_rule("/embed/apps/<app>", "embed_app", embed_app)
    bp.add_url_rule("/embed/rpc", "embed_rpc", embed_rpc)
    bp.add_url_rule("/ui/apps", "ui_apps", ui_apps)
    bp.add_url_rule("/ui/apps/<app>", "ui_app", ui_app)
    bp.add_url_rule("/apps", "apps_page", apps_page)
    bp.add_url_rule("/apps/<app>", "app_page", app_page)
    bp.add_url_rule("/embed/functions/<name>", "embed_function", embed_function)
    bp.add_url_rule("/ui/functions/<name>", "ui_function", ui_function)
    bp.add_url_rule(
        "/ui/functions/<name>", "ui_function_submit", ui_function_submit, methods=["POST"]
    )
    bp.add_url_rule("/functions/<name>", "function_page", function_page)
