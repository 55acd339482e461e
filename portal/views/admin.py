"""The operators' page: ``GET /admin`` (HTML) and ``GET /api/v1/admin/apps`` (JSON).

Who may see it (any one suffices):

* the host backend or an operator's tool with ``Authorization: Bearer <app secret>`` (one of
  ``PORTAL_APP_KEYS``' secrets, as the server-to-server API accepts);
* a request the host's :meth:`ConnectPortal.admin_check <portal.extension.ConnectPortal.admin_check>`
  callback approves (mounted mode: the host's own login, e.g. an admin flag);
* in a browser without either: the app secret typed into the page's form (``POST /admin``,
  nothing kept: no cookie, no session; reloading asks again).

Anyone else gets 401: the JSON error on the API, a page with that form on ``/admin``.

An app secret shows its own project's accounts only (projects are tenants); the host's
``admin_check`` shows every project's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from .. import health, oplog
from ..admin import overview
from ..auth import app_key_for_secret, bearer_token
from ..errors import AuthenticationFailed, InvalidRequest
from ..state import current_portal
from .common import app_logo, content_security_policy, page_context

#: Longest app secret the form accepts, in characters (longer ones are refused unread).
MAX_SECRET_LENGTH = 512


def _key_for(secret: str | None) -> str | None:
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return app_key_for_secret(current_portal.config["PORTAL_APP_KEYS"], secret)


def admin_scope() -> tuple[bool, str | None]:
    """``(allowed, project)`` of this request: a bearer app secret may see its own project
    (its app key); the host's ``admin_check`` callback every project (``None``)."""
    key = _key_for(bearer_token(request.headers.get("Authorization")))
    if key is not None:
        return True, key
    return current_portal.portal.is_admin(), None


def is_admin_request() -> bool:
    """True when this request may see the operators' overview (bearer app secret, or the
    host's ``admin_check`` callback)."""
    return admin_scope()[0]


def _page(status: int, **context: Any) -> tuple[Response, int]:
    response = Response(
        render_template("portal/admin.html", **context, **page_context("admin", "page", "wide"))
    )
    # Operators only: never framed, not even by the allowed host origins.
    response.headers["Content-Security-Policy"] = (
        content_security_policy().rsplit("frame-ancestors", 1)[0] + "frame-ancestors 'none'"
    )
    return response, status


def admin_page() -> tuple[Response, int]:
    """``GET /admin``; ``POST /admin`` with the form's ``app_secret``."""
    refused = None
    allowed, project = admin_scope()
    if not allowed and request.method == "POST":
        project = _key_for(request.form.get("app_secret"))
        allowed = project is not None
        refused = None if allowed else "That is not an app secret of this portal."
    if not allowed:
        return _page(401, signed_in=False, error=refused)
    data = overview(current_portal, project)
    for entry in data["apps"]:
        definition = current_portal.catalog.get(entry["name"])
        assert definition is not None  # overview() lists the catalog's apps only
        entry["logo"] = app_logo(definition)
    log_error = None
    try:
        filters = oplog.filters_from(request.values)
        log_page = oplog.page(current_portal, scope=project, with_accounts=True, **filters)
    except InvalidRequest as exc:
        filters, log_page, log_error = {}, {"entries": [], "next_cursor": None}, exc.description
    return _page(
        200,
        signed_in=True,
        error=None,
        log=log_page,
        log_filters=filters,
        log_error=log_error,
        log_kinds=oplog.KINDS,
        log_statuses=oplog.STATUSES,
        # Signed in with the form: every further request must carry the secret again.
        secret_in_form=request.method == "POST",
        **data,
    )


def admin_apps() -> Response:
    """``GET /api/v1/admin/apps``: :func:`portal.admin.overview` as JSON.

    :raises AuthenticationFailed: neither an app secret as bearer nor the host's check.
    """
    allowed, project = admin_scope()
    if not allowed:
        raise AuthenticationFailed(
            "Send the app secret as 'Authorization: Bearer <app secret>'.", code="admin_only"
        )
    return jsonify(overview(current_portal, project))


def _require_admin() -> str | None:
    """The project an admin API request may see (``None``: every project).

    :raises AuthenticationFailed: neither an app secret as bearer nor the host's check.
    """
    allowed, project = admin_scope()
    if not allowed:
        raise AuthenticationFailed(
            "Send the app secret as 'Authorization: Bearer <app secret>'.", code="admin_only"
        )
    return project


def admin_log() -> Response:
    """``GET /api/v1/admin/log``: one page of the operators' log, newest first
    (:func:`portal.oplog.page`; filters ``project``, ``kind``, ``user_id``, ``app``,
    ``status``, ``since``, ``until``; ``cursor`` and ``limit`` page)."""
    project = _require_admin()
    filters = oplog.filters_from(request.args)
    return jsonify(oplog.page(current_portal, scope=project, **filters))


def admin_log_entry(entry_id: str) -> Response:
    """``GET /api/v1/admin/log/<entry_id>``: one entry with its related account."""
    project = _require_admin()
    return jsonify(oplog.detail(current_portal, entry_id, scope=project))


def admin_unhealthy() -> Response:
    """``GET /api/v1/admin/unhealthy-accounts``: ``{accounts: [...]}``, the accounts in
    ``needs_reauth`` with the reason and time of their last health check."""
    project = _require_admin()
    return jsonify({"accounts": health.unhealthy(current_portal, project)})


def register(bp: Blueprint) -> None:
    """Add the operators' routes to ``bp``."""
    bp.add_url_rule("/admin", "admin_page", admin_page, methods=["GET", "POST"])
    bp.add_url_rule("/api/v1/admin/apps", "api_admin_apps", admin_apps)
    bp.add_url_rule("/api/v1/admin/log", "api_admin_log", admin_log)
    bp.add_url_rule("/api/v1/admin/log/<entry_id>", "api_admin_log_entry", admin_log_entry)
    bp.add_url_rule("/api/v1/admin/unhealthy-accounts", "api_admin_unhealthy", admin_unhealthy)
