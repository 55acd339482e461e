"""The operators' overview: which apps are set up, what is left to register, account health.

Read by the admin page and ``GET /api/v1/admin/apps`` (:mod:`portal.views.admin`). Never holds a
credential: only whether a client id / secret is set, counts, and account ids.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from .accounts import iso
from .catalog import App, redirect_uri
from .store import ConnectedAccount

#: At most this many ``needs_reauth`` account ids are listed per app (the count is exact).
REAUTH_IDS_LIMIT = 50


def _env_prefix(slug: str) -> str:
    return "PORTAL_" + slug.upper().replace("-", "_")


def settings_for(app: App) -> list[dict[str, Any]]:
    """The host-side settings ``app`` reads: ``[{"name", "config", "env", "set", "needed"}]``
    with ``config`` the ``PORTAL_APPS`` key path and ``env`` the environment variable;
    ``needed`` is true for what keeps the app from being usable now."""
    slug, env = app.slug, _env_prefix(app.slug)
    rows = []
    if app.oauth2 is not None:
        rows += [
            ("client_id", bool(app.client.client_id), "client_id" in app.missing),
            ("client_secret", bool(app.client.client_secret), "client_secret" in app.missing),
        ]
        if app.oauth2.custom_redirect_uri:  # eBay's RuName
            rows.append(
                (
                    "redirect_uri_value",
                    bool(app.oauth2.redirect_uri_value),
                    "redirect_uri_value" in app.missing,
                )
            )
    if "base_url" in app.missing:
        rows.append(("base_url", False, True))
    return [
        {
            "name": name,
            "config": f"PORTAL_APPS[{slug!r}][{name!r}]",
            "env": f"{env}_{name.upper()}",
            "set": is_set,
            "needed": needed,
        }
        for name, is_set, needed in rows
    ]


def unhealthy_dict(row: Any) -> dict[str, Any]:
    """What the operators see of an account in ``needs_reauth``: ``{id, project, user_id, app,
    label, reason, last_check, next_check}`` (times ISO-8601 or ``None``; ``reason`` from the
    last health check, see :mod:`portal.health`). Never a credential."""
    return {
        "id": row.id,
        "project": row.project,
        "user_id": row.user_id,
        "app": row.app,
        "label": row.label,
        "reason": row.health_reason,
        "last_check": iso(row.health_checked_at) if row.health_checked_at else None,
        "next_check": iso(row.health_next_at) if row.health_next_at else None,
    }


def overview(state: Any, project: str | None = None) -> dict[str, Any]:
    """Every catalog app with its set-up state and account counts.

    The counts are of ``project``'s accounts only when it is given (an operator who signed in
    with one project's app secret); ``None`` counts every project's (the host's own
    ``admin_check``, which speaks for the whole portal).

    Two queries whatever the catalog size: one ``GROUP BY app, status`` for the counts, one for
    the ids of accounts in ``needs_reauth`` (at most :data:`REAUTH_IDS_LIMIT` listed per app).

    :param state: the portal's state (``current_portal``).
    :returns: ``{"apps": [App overview…], "unhealthy": [:func:`unhealthy_dict`…] (at most
        :data:`REAUTH_IDS_LIMIT` per app, most recently checked first), "totals": {"apps",
        "configured", "accounts", "needs_reauth"}}``: configured apps first (those in the marketplace before those
        ``PORTAL_ENABLED_APPS`` hides), then by title. An App overview is
        ``{"name", "title", "auth_type", "categories", "configured", "enabled", "missing",
        "docs_url", "redirect_url" (OAuth apps, else None), "settings" (:func:`settings_for`),
        "accounts": {"total", "<status>": n…}, "needs_reauth": n, "needs_reauth_ids": [...]}``.
    """
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    reauth_ids: dict[str, list[str]] = defaultdict(list)
    scope = [] if project is None else [ConnectedAccount.project == project]
    with state.store.read() as db:
        rows = db.execute(
            select(ConnectedAccount.app, ConnectedAccount.status, func.count())
            .where(*scope)
            .group_by(ConnectedAccount.app, ConnectedAccount.status)
        )
        for slug, status, n in rows:
            counts[slug][status] = n
        stale = db.execute(
            select(
                ConnectedAccount.app,
                ConnectedAccount.id,
                ConnectedAccount.project,
                ConnectedAccount.user_id,
                ConnectedAccount.label,
                ConnectedAccount.health_reason,
                ConnectedAccount.health_checked_at,
                ConnectedAccount.health_next_at,
            )
            .where(ConnectedAccount.status == "needs_reauth", *scope)
            .order_by(ConnectedAccount.app, ConnectedAccount.modified_at.desc())
        )
        unhealthy: list[Any] = []
        for row in stale:
            if len(reauth_ids[row.app]) < REAUTH_IDS_LIMIT:
                reauth_ids[row.app].append(row.id)
                unhealthy.append(row)

    enabled = state.config["PORTAL_ENABLED_APPS"]
    apps = []
    for app in state.catalog:
        by_status = counts.get(app.slug, {})
        apps.append(
            {
                "name": app.slug,
                "title": app.title,
                "auth_type": app.auth_type,
                "categories": list(app.categories),
                "configured": app.usable,
                "enabled": app.usable and (enabled is None or app.slug in enabled),
                "missing": list(app.missing),
                "docs_url": app.docs_url,
                "redirect_url": redirect_uri(state, app.slug) if app.oauth2 else None,
                "settings": settings_for(app),
                "accounts": {"total": sum(by_status.values()), **by_status},
                "needs_reauth": by_status.get("needs_reauth", 0),
                "needs_reauth_ids": reauth_ids.get(app.slug, []),
            }
        )
    apps.sort(key=lambda a: (not a["configured"], not a["enabled"], a["title"].lower()))
    unhealthy.sort(
        key=lambda r: (r.health_checked_at is not None, r.health_checked_at), reverse=True
    )
    return {
        "apps": apps,
        "unhealthy": [unhealthy_dict(r) for r in unhealthy],
        "totals": {
            "apps": len(apps),
            "configured": sum(a["configured"] for a in apps),
            "accounts": sum(a["accounts"]["total"] for a in apps),
            "needs_reauth": sum(a["needs_reauth"] for a in apps),
        },
    }
