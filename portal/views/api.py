"""The JSON API under ``/api/v1``, used by portal.js, frame.js and host backends.

Errors everywhere: ``{"error": code, "message": text, "error_details": [...]}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from .. import accounts as account_service
from .. import attempts, connect_links
from .. import flows as flow_service
from ..auth import (
    app_key_for_secret,
    bearer_token,
    check_user_id,
    normalize_origin,
    verify_user_hash,
    verify_user_token,
)
from ..callers import MAX_BODY as MAX_BODY
from ..callers import Caller
from ..catalog import App
from ..disconnect import disconnect
from ..errors import (
    AuthenticationFailed,
    InvalidRequest,
    OriginNotAllowed,
    ResourceNotFound,
)
from ..oauth import extra_scopes
from ..state import current_portal
from ..theme import parse_theme
from .common import (
    app_ref,
    app_summary,
    caller_theme,
    current_caller,
    own_origin,
    request_origin,
    theme_stylesheet_url,
)


def _json_body() -> dict[str, Any]:
    request.max_content_length = MAX_BODY
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    return data


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def openapi_document() -> Response:
    """``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of this API."""
    from ..openapi import build

    return jsonify(build(current_portal.config["PORTAL_URL_PREFIX"]))


def catalog_schema() -> Response:
    """``GET /api/v1/catalog.schema.json``: the JSON Schema of app definition files, for hosts'
    editors (``# yaml-language-server: $schema=<this URL>``) and CI."""
    from ..catalog import SCHEMA

    return jsonify(SCHEMA)


def api_root() -> Response:
    """``GET /api/v1``: a small index, so the root URL answers something useful."""
    return jsonify({"name": "connect-portal", "version": 1})


def origin_check() -> Response:
    """``GET /api/v1/origin-check?origin=<origin>``: may a page on this origin use the portal?

    Public and CORS-open (``Access-Control-Allow-Origin: *``, no credentials, no secrets): a
    page on an origin the portal refuses gets no CORS answer from ``POST /sessions``, so its
    browser reports only a network error; portal.js asks here to name the cause
    (``origin_not_allowed``), and frame.js to check a bad token's host page before telling it.
    It discloses nothing new: every portal page lists the allowed origins in its CSP
    ``frame-ancestors``.

    :returns: 200 ``{origin, allowed, message}``: ``origin`` normalised (RFC 6454; the
        ``Origin`` header when the parameter is missing), ``null`` when it is not an origin.
    """
    origin = normalize_origin(request.args.get("origin") or request.headers.get("Origin"))
    allowed = origin is not None and origin in current_portal.allowed_origins
    if allowed:
        message = f"{origin} is in PORTAL_ALLOWED_ORIGINS."
    else:
        message = (
            f"This page's origin ({origin or 'none'}) is not in the portal's "
            "PORTAL_ALLOWED_ORIGINS; add it there to use the portal from this page."
        )
    response = jsonify({"origin": origin, "allowed": allowed, "message": message})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def create_session() -> tuple[Response, int]:
    """``POST /api/v1/sessions``: exchange host authentication for a session token.

    Browser: ``{appKey, userId, hash}`` or ``{projectId, userToken}`` (a host-signed JWT, see
    :func:`portal.auth.verify_user_token`) with an allowed ``Origin`` header. Server-to-server:
    ``Authorization: Bearer <app secret>`` and ``{userId, origin}``.

    :returns: 201 ``{token, expires_at, user_id, origin}``.
    :raises AuthenticationFailed: 401; ``invalid_user_token`` for any user-token failure.
    :raises OriginNotAllowed: 403, the page's origin is not in ``PORTAL_ALLOWED_ORIGINS``.
    """
    state = current_portal
    authorization = request.headers.get("Authorization")
    presented_secret = bearer_token(authorization)
    if authorization is not None and presented_secret is None:
        # A backend that sent an empty or malformed secret hears about the secret, not about
        # an origin it never had (browsers never send Authorization here).
        raise AuthenticationFailed(
            "The Authorization header must be 'Bearer <app secret>'.", code="invalid_app_secret"
        )
    body = _json_body()
    if "userToken" in body:
        return _session_for_user_token(body)
    user_id = check_user_id(body.get("userId"), state.config["PORTAL_USER_ID_MAX_LENGTH"])
    if presented_secret is not None:
        app_key = app_key_for_secret(state.config["PORTAL_APP_KEYS"], presented_secret)
        if app_key is None:
            raise AuthenticationFailed("Unknown app secret.", code="invalid_app_secret")
        origin = normalize_origin(body.get("origin"))
        if origin is None or origin not in state.allowed_origins:
            raise OriginNotAllowed("`origin` must be one of PORTAL_ALLOWED_ORIGINS.")
    else:
        origin = request_origin()
        if origin is None or origin not in state.allowed_origins:
            raise OriginNotAllowed("This page's origin is not allowed to use the portal.")
        app_key = body.get("appKey")
        presented_hash = body.get("hash")
        accepted = (
            state.config["PORTAL_APP_KEYS"].get(app_key) if isinstance(app_key, str) else None
        )
        if not accepted:
            raise AuthenticationFailed("Unknown app key.", code="invalid_app_key")
        if not isinstance(presented_hash, str) or len(presented_hash) > 256:
            raise AuthenticationFailed("`hash` is missing.", code="invalid_hash")
        if not verify_user_hash(accepted, user_id, presented_hash):
            raise AuthenticationFailed("`hash` does not match this userId.", code="invalid_hash")
    return _issued_session(user_id, origin, app_key, body)


def _issued_session(
    user_id: str, origin: str, app_key: str | None, body: dict[str, Any]
) -> tuple[Response, int]:
    """The session token; ``body["theme"]`` (optional) is checked and carried in it.

    :raises InvalidRequest: 400 ``invalid_theme`` naming the field (:func:`portal.theme.parse_theme`).
    """
    raw_theme = body.get("theme")
    theme = parse_theme(raw_theme).as_dict() if raw_theme is not None else None
    token, expires_at = current_portal.tokens.issue_session(user_id, origin, app_key, theme)
    body_out = {
        "token": token,
        "expires_at": _iso(expires_at),
        "user_id": user_id,
        "origin": origin,
    }
    return jsonify(body_out), 201


def _session_for_user_token(body: dict[str, Any]) -> tuple[Response, int]:
    """The Paragon form of ``POST /sessions``: ``{projectId, userToken}`` from a browser."""
    state = current_portal
    origin = request_origin()
    if origin is None or origin not in state.allowed_origins:
        raise OriginNotAllowed("This page's origin is not allowed to use the portal.")
    project_id = body.get("projectId")
    public_keys = state.config["PORTAL_JWT_PUBLIC_KEYS"]
    if not isinstance(project_id, str) or not public_keys.get(project_id):
        raise AuthenticationFailed(
            "No JWT public key is configured for this projectId.", code="invalid_user_token"
        )
    user_id = verify_user_token(
        body.get("userToken"),
        public_keys[project_id],
        project_id,
        state.config["PORTAL_JWT_ALGORITHMS"],
        state.config["PORTAL_JWT_MAX_TTL"],
        max_user_id_length=state.config["PORTAL_USER_ID_MAX_LENGTH"],
    )
    return _issued_session(user_id, origin, project_id, body)


def get_session() -> Response:
    """``GET /api/v1/session``: who the bearer token is for, its verified host origin, and its
    theme (the server's ``PORTAL_THEME`` under the session's own keys):
    ``{mode, stylesheet, name, logo}``, ``stylesheet`` a URL or ``null`` (frame.js applies it).
    """
    caller = current_caller()
    theme = caller_theme(caller)
    theme_out = {
        "mode": theme.scheme,
        "stylesheet": theme_stylesheet_url(theme),
        "name": theme.name,
        "logo": theme.logo,
    }
    return jsonify(
        {
            "user_id": caller.user_id,
            "origin": caller.host_origin,
            "via": caller.via,
            "theme": theme_out,
        }
    )


def get_user() -> Response:
    """``GET /api/v1/user``: the caller's integration state, shaped like Paragon's ``getUser()``.

    ``{authenticated: true, userId, integrations: {<app>: {enabled, connectedAccounts,
    needsReauth}}}`` with one entry per enabled app: ``enabled`` when at least one account is
    ``active``, ``connectedAccounts`` counts every account of the app (whatever its status),
    ``needsReauth`` when one of them has status ``needs_reauth``, ``flows`` ``{<flow>: {enabled,
    status, settings}}`` (:func:`portal.flows.user_summary`). (portal.js answers
    ``{authenticated: false}`` itself when there is no session.)
    """
    caller = current_caller()
    statuses = [
        (a.app, a.status)
        for a in account_service.user_accounts(
            current_portal.store, caller.user_id, project=caller.project
        )
    ]
    integrations: dict[str, dict[str, Any]] = {}
    flows = flow_service.user_summary(current_portal, caller.project, caller.user_id)
    for app in current_portal.enabled_apps():
        mine = [status for slug, status in statuses if slug == app.slug]
        integrations[app.slug] = {
            "enabled": "active" in mine,
            "connectedAccounts": len(mine),
            "needsReauth": "needs_reauth" in mine,
            "flows": flows.get(app.slug, {}),
        }
    return jsonify({"authenticated": True, "userId": caller.user_id, "integrations": integrations})


def list_apps() -> Response:
    """``GET /api/v1/apps``: ``{apps: [AppSummary]}`` with the caller's connected flags."""
    caller = current_caller()
    counts = account_service.connected_counts(
        current_portal.store, caller.user_id, project=caller.project
    )
    apps = [app_summary(a, counts.get(a.slug, 0)) for a in current_portal.enabled_apps()]
    return jsonify({"apps": apps})


def _app_or_404(slug: str) -> App:
    app = current_portal.app(slug)
    if app is None:
        raise ResourceNotFound(f"No app called {slug!r}.", code="unknown_app")
    return app


def get_app(app: str) -> Response:
    """``GET /api/v1/apps/<app>``: ``{app: AppSummary, connected_accounts: [Account]}``."""
    caller = current_caller()
    definition = _app_or_404(app)
    accounts = account_service.user_accounts(
        current_portal.store, caller.user_id, definition.slug, project=caller.project
    )
    result = {
        "app": app_summary(definition, len(accounts)),
        "connected_accounts": [account_service.to_dict(a) for a in accounts],
    }
    return jsonify(result)


def list_connected_accounts() -> Response:
    """``GET /api/v1/connected-accounts[?app=][&tag=]``: ``{connected_accounts}``, newest
    first; ``tag`` keeps the accounts whose ``metadata.tags`` holds it."""
    caller = current_caller()
    slug = request.args.get("app")
    if slug is not None:
        _app_or_404(slug)
    accounts = account_service.user_accounts(
        current_portal.store,
        caller.user_id,
        slug,
        project=caller.project,
        tag=request.args.get("tag"),
    )
    result = [account_service.to_dict(a) for a in accounts]
    return jsonify({"connected_accounts": result})


def get_connected_account(account_id: str) -> Response:
    """``GET /api/v1/connected-accounts/<id>``: one Account; another user's id is a 404."""
    caller = current_caller()
    account = account_service.user_account(
        current_portal.store, caller.user_id, account_id, project=caller.project
    )
    return jsonify(account_service.to_dict(account))


def patch_connected_account(account_id: str) -> Response:
    """``PATCH /api/v1/connected-accounts/<id>`` ``{metadata}`` (server-to-server only: app
    secret as bearer): replace the account's metadata; answers the Account.

    :raises AuthenticationFailed: 401 ``server_only`` for a browser session or user token.
    :raises InvalidRequest: 400 ``invalid_metadata`` (see :func:`portal.accounts.check_metadata`).
    """
    caller = current_caller()
    if caller.via != "server":
        raise AuthenticationFailed(
            "Only the host backend (app secret as bearer) may set metadata.", code="server_only"
        )
    body = _json_body()
    if set(body) != {"metadata"}:
        raise InvalidRequest('Send exactly {"metadata": {...}}.', code="invalid_metadata")
    metadata = account_service.check_metadata(body["metadata"])
    return jsonify(
        account_service.replace_metadata(
            current_portal.store, caller.user_id, account_id, metadata, project=caller.project
        )
    )


def delete_connected_account(account_id: str) -> Response:
    """``DELETE /api/v1/connected-accounts/<id>``: revoke at the provider, delete, and answer
    the ``app-disconnected`` payload ``{app, connectedAccountId, connected_accounts}``
    (:func:`portal.disconnect.disconnect`)."""
    caller = current_caller()
    catalog = current_portal.catalog

    def ref(slug: str) -> dict[str, str]:
        definition = catalog.get(slug)
        return app_ref(definition) if definition else {"name": slug, "title": slug, "icon_url": ""}

    done = disconnect(
        current_portal, account_id, user_id=caller.user_id, project=caller.project, ref=ref
    )
    return jsonify(done.payload)


def create_connect_ticket() -> tuple[Response, int]:
    """``POST /api/v1/connect-tickets`` ``{app, opener, scopes?}``: a single-use ticket for the
    popup.

    ``opener`` is ``"frame"`` (the portal iframe opens the popup; results go to the portal's
    own origin) or ``"host"`` (portal.js on the host page opens it). ``scopes`` are extra
    scopes to ask for, each one of the app's ``optional_scopes`` (else 400 ``invalid_scope``).

    :returns: 201 ``{ticket, connect_url, attempt_id, expires_at}``.
    """
    caller = current_caller()
    body = _json_body()
    slug = body.get("app")
    if not isinstance(slug, str):
        raise InvalidRequest("`app` is required.", code="invalid_app")
    return _ticket(caller, _app_or_404(slug), body), 201


def reconnect_connected_account(account_id: str) -> tuple[Response, int]:
    """``POST /api/v1/connected-accounts/<id>/reconnect`` ``{opener?, scopes?}``: a single-use
    connect ticket that re-authorizes this account (same id, label and flows; new credentials).
    The end user must sign in as the same external account, else the attempt fails with
    ``wrong_account`` and the account is left as it was. Another user's or another project's
    account id is a 404. ``scopes`` are extra scopes to ask for (the app's ``optional_scopes``
    only, else 400 ``invalid_scope``): how an account lacking a function's
    ``required_scopes`` gets them.

    :returns: 201 ``{ticket, connect_url, attempt_id, expires_at, connectedAccountId}``.
    """
    caller = current_caller()
    body = _json_body() if request.get_data() else {}
    opener = body.get("opener", "host")
    if opener not in ("host", "frame"):
        raise InvalidRequest("`opener` must be 'host' or 'frame'.")
    account = account_service.user_account(
        current_portal.store, caller.user_id, account_id, project=caller.project
    )
    return _ticket(caller, _app_or_404(account.app), body, reconnect=account.id), 201


def _ticket(
    caller: Caller, definition: App, body: dict[str, Any], reconnect: str | None = None
) -> Response:
    """Issue a connect ticket (or a reconnect ticket for the account ``reconnect``) from the
    request body's ``opener`` and ``scopes``: ``{ticket, connect_url, attempt_id,
    expires_at}``, plus ``connectedAccountId`` for a reconnect.

    :raises InvalidRequest: an ``opener`` other than ``host`` or ``frame``; an extra scope
        that is not one of the app's ``optional_scopes`` (``invalid_scope``).
    """
    opener = body.get("opener", "host")
    if opener not in ("host", "frame"):
        raise InvalidRequest("`opener` must be 'host' or 'frame'.")
    scopes = extra_scopes(definition, body.get("scopes"))
    # A JWT bearer sent without a browser Origin has no host origin: the portal's own stands in.
    host_origin = caller.host_origin or own_origin()
    opener_origin = host_origin if opener == "host" else own_origin()
    ticket, attempt_id, expires_at = current_portal.tokens.issue_ticket(
        caller.user_id,
        definition.slug,
        host_origin,
        opener_origin,
        project=caller.project,
        reconnect=reconnect,
        scopes=scopes,
        theme=caller.theme,
    )
    result: dict[str, Any] = {
        "ticket": ticket,
        "connect_url": own_origin() + url_for("portal.connect", app=definition.slug, ticket=ticket),
        "attempt_id": attempt_id,
        "expires_at": _iso(expires_at),
    }
    if reconnect is not None:
        result["connectedAccountId"] = reconnect
    return jsonify(result)


def _server_project() -> str:
    """The app key whose secret is this request's bearer (server-to-server routes only).

    :raises AuthenticationFailed: 401 ``invalid_app_secret``, no or an unknown app secret.
    """
    secret = bearer_token(request.headers.get("Authorization"))
    app_key = (
        app_key_for_secret(current_portal.config["PORTAL_APP_KEYS"], secret) if secret else None
    )
    if app_key is None:
        raise AuthenticationFailed(
            "This route needs 'Authorization: Bearer <app secret>'.", code="invalid_app_secret"
        )
    return app_key


def create_connect_link() -> tuple[Response, int]:
    """``POST /api/v1/connect-links`` ``{userId, app?, scopes?, expiresIn?, successUrl?,
    errorUrl?}`` (app secret): a single-use, expiring, revocable hosted connect link
    (:mod:`portal.connect_links`). Without ``app`` the link opens the marketplace (the user
    picks the app). ``scopes`` (with ``app`` only) are extra scopes from its
    ``optional_scopes`` (else 400 ``invalid_scope``). ``successUrl``/``errorUrl`` must be on
    ``PORTAL_ALLOWED_ORIGINS`` (else 400 ``invalid_redirect``); ``expiresIn`` is in seconds
    (default 1800, at most 604800).

    :returns: 201 ``{id, url, expires_at}``.
    """
    project = _server_project()
    body = _json_body()
    state = current_portal
    user_id = check_user_id(body.get("userId"), state.config["PORTAL_USER_ID_MAX_LENGTH"])
    slug = body.get("app")
    definition: App | None = None
    if slug is not None:
        if not isinstance(slug, str):
            raise InvalidRequest("`app` must be an app name.", code="invalid_app")
        definition = _app_or_404(slug)
        scopes = extra_scopes(definition, body.get("scopes"))
    elif body.get("scopes") is not None:
        raise InvalidRequest(
            "`scopes` needs `app`: optional scopes belong to one app.", code="invalid_scope"
        )
    else:
        scopes = ()
    expires_in = connect_links.ttl(body.get("expiresIn"))
    success_url = connect_links.allowed_url(state, body.get("successUrl"), "successUrl")
    error_url = connect_links.allowed_url(state, body.get("errorUrl"), "errorUrl")
    created = connect_links.create(
        state,
        project=project,
        user_id=user_id,
        app=definition.slug if definition else None,
        scopes=scopes,
        expires_in=expires_in,
        success_url=success_url,
        error_url=error_url,
    )
    url = own_origin() + url_for("portal.connect_link", token=created.token)
    result = {
        "id": created.id,
        "url": url,
        "expires_at": created.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return jsonify(result), 201


def revoke_connect_link(link_id: str) -> Response:
    """``DELETE /api/v1/connect-links/<id>`` (app secret): the link opens nothing any more.
    Another project's link id is a 404.

    :returns: ``{id, revoked: true}``.
    """
    project = _server_project()
    connect_links.revoke(current_portal, link_id, project=project)
    return jsonify({"id": link_id, "revoked": True})


def get_connect_attempt(attempt_id: str) -> Response:
    """``GET /api/v1/connect-attempts/<id>``: the popup's result, for an opener that lost it.

    ``{status: "pending"|"connected"|"failed", app, connectedAccountId?, payload?, error?}``;
    see :func:`portal.attempts.status` (unknown ids and other users' attempts read as
    ``pending``; one stuck ``exchanging`` past :func:`portal.attempts.exchange_bound` as
    ``failed``/``connect_interrupted``).
    """
    caller = current_caller()
    catalog = current_portal.catalog

    def ref(slug: str) -> dict[str, str]:
        definition = catalog.get(slug)
        return app_ref(definition) if definition else {"name": slug}

    return jsonify(
        attempts.status(
            current_portal, attempt_id, project=caller.project, user_id=caller.user_id, ref=ref
        )
    )


def register(bp: Blueprint) -> None:
    """Add the API routes to ``bp``."""
    prefix = "/api/v1"
    bp.add_url_rule(prefix, "api_root", api_root)
    bp.add_url_rule(f"{prefix}/openapi.json", "api_openapi", openapi_document)
    bp.add_url_rule(f"{prefix}/catalog.schema.json", "api_catalog_schema", catalog_schema)
    bp.add_url_rule(f"{prefix}/origin-check", "api_origin_check", origin_check)
    bp.add_url_rule(f"{prefix}/sessions", "api_create_session", create_session, methods=["POST"])
    bp.add_url_rule(f"{prefix}/session", "api_session", get_session)
    bp.add_url_rule(f"{prefix}/user", "api_user", get_user)
    bp.add_url_rule(f"{prefix}/apps", "api_apps", list_apps)
    bp.add_url_rule(f"{prefix}/apps/<app>", "api_app", get_app)
    bp.add_url_rule(f"{prefix}/connected-accounts", "api_accounts", list_connected_accounts)
    bp.add_url_rule(
        f"{prefix}/connected-accounts/<account_id>", "api_account", get_connected_account
    )
    bp.add_url_rule(
        f"{prefix}/connected-accounts/<account_id>",
        "api_patch_account",
        patch_connected_account,
        methods=["PATCH"],
    )
    bp.add_url_rule(
        f"{prefix}/connected-accounts/<account_id>",
        "api_delete_account",
        delete_connected_account,
        methods=["DELETE"],
    )
    bp.add_url_rule(
        f"{prefix}/connected-accounts/<account_id>/reconnect",
        "api_reconnect_account",
        reconnect_connected_account,
        methods=["POST"],
    )
    bp.add_url_rule(
        f"{prefix}/connect-links", "api_connect_links", create_connect_link, methods=["POST"]
    )
    bp.add_url_rule(
        f"{prefix}/connect-links/<link_id>",
        "api_revoke_connect_link",
        revoke_connect_link,
        methods=["DELETE"],
    )
    bp.add_url_rule(
        f"{prefix}/connect-tickets", "api_connect_tickets", create_connect_ticket, methods=["POST"]
    )
    bp.add_url_rule(
        f"{prefix}/connect-attempts/<attempt_id>", "api_connect_attempt", get_connect_attempt
    )
