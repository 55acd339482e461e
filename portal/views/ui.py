"""HTML pages: iframe shells, htmx partials, and same-origin mounted pages."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select

from .. import accounts as account_service
from ..errors import ResourceNotFound
from ..extension import current_portal
from ..store import ConnectedAccount
from .common import app_summary, current_caller, mounted_page_context, page_context

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


def _app_or_404(slug: str) -> Any:
    app = current_portal.app(slug)
    if app is None:
        raise ResourceNotFound(f"There is no app called “{slug}”.")
    return app


def relative_time(value: datetime, now: datetime | None = None) -> str:
    """``"just now"``, ``"5 minutes ago"``, ``"3 days ago"`` for an aware UTC time."""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _marketplace(mode: str, layout: str) -> dict[str, Any]:
    caller = current_caller()
    q = request.args.get("q", "").strip()[:100]
    category = request.args.get("category", "").strip() or None
    with current_portal.store.session() as session:
        counts = Counter(
            session.execute(
                select(ConnectedAccount.app).where(ConnectedAccount.user_id == caller.user_id)
            ).scalars()
        )
    enabled = current_portal.enabled_apps()
    categories = sorted({c for a in enabled for c in a.categories})
    needle = q.lower()
    apps = [
        app_summary(a, counts.get(a.slug, 0))
        for a in enabled
        if (not category or category in a.categories)
        and (
            not needle
            or needle in a.title.lower()
            or needle in a.description.lower()
            or any(needle in c.lower() for c in a.categories)
        )
    ]
    return {
        "apps": apps,
        "categories": categories,
        "q": q,
        "category": category,
        "mode": mode,
        "layout": layout,
    }


def _app_page(slug: str, mode: str, layout: str) -> dict[str, Any]:
    caller = current_caller()
    app = _app_or_404(slug)
    with current_portal.store.session() as session:
        rows = account_service.list_accounts(session, caller.user_id, app.slug)
        now = datetime.now(UTC)
        accounts = [
            {**account_service.to_dict(a), "modified_human": relative_time(a.modified_at, now)}
            for a in rows
        ]
    from .common import own_origin

    # The iframe (or mounted page) opens the popup, so the result goes to the portal's origin.
    ticket, attempt_id, _ = current_portal.tokens.issue_ticket(
        caller.user_id, app.slug, caller.host_origin, own_origin()
    )
    return {
        "app": app_summary(app, len(accounts)),
        "accounts": accounts,
        "connect": {
            "url": url_for("portal.connect", app=app.slug, ticket=ticket),
            "attempt_id": attempt_id,
        },
        "mode": mode,
        "layout": layout,
        "error": None,
    }


def ui_apps() -> str:
    """Partial: the marketplace (or just its grid when htmx targets ``#portal-app-grid``)."""
    mode, layout = _mode_layout()
    context = _marketplace(mode, layout)
    if request.headers.get("HX-Target") == "portal-app-grid":
        return render_template("portal/_app_grid.html", **context)
    return render_template("portal/_marketplace.html", **context)


def ui_app(app: str) -> str:
    """Partial: one app's page, with a fresh single-use connect ticket."""
    mode, layout = _mode_layout()
    return render_template("portal/_app_page.html", **_app_page(app, mode, layout))


def embed_apps() -> str:
    """Iframe shell of the marketplace; frame.js loads the content with the bearer token."""
    mode, layout = _mode_layout()
    return render_template(
        "portal/embed.html",
        content_url=url_for("portal.ui_apps", mode=mode, layout=layout),
        content=None,
        heading="Connect apps",
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


def _require_mounted() -> None:
    if not current_portal.portal.has_user_loader:
        abort(404)


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
        heading="Connect apps",
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


def register(bp: Blueprint) -> None:
    """Add the page routes to ``bp``."""
    bp.add_url_rule("/embed/apps", "embed_apps", embed_apps)
    bp.add_url_rule("/embed/apps/<app>", "embed_app", embed_app)
    bp.add_url_rule("/ui/apps", "ui_apps", ui_apps)
    bp.add_url_rule("/ui/apps/<app>", "ui_app", ui_app)
    bp.add_url_rule("/apps", "apps_page", apps_page)
    bp.add_url_rule("/apps/<app>", "app_page", app_page)
