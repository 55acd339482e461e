"""Who is calling: the authenticated end user of a request (:func:`current_caller`).

A bearer app secret (server to server), a host-signed JWT user token, a portal session token,
or, in mounted mode, the host's own login with same-origin proof. Views, the rate limiter's
keys and the services that act for a user all start from :class:`Caller`. (Formerly in
:mod:`portal.views.common`, which re-exports these names.)
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from . import agents
from .auth import (
    app_key_for_secret,
    bearer_token,
    host_named_user_id,
    normalize_origin,
    peek_jwt,
    verify_bearer_user_token,
)
from .errors import AuthenticationFailed, OriginNotAllowed
from .state import current_portal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Largest JSON body the API accepts, in bytes (the API's bodies and the rate limiter's
#: reading of ``POST /sessions``).
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Caller:
    """The end user behind a request and the host origin their events go to.

    ``via`` is ``"session"`` (bearer session token: iframe or portal.js), ``"server"`` (the
    host backend with its app secret as bearer, naming the user in ``X-Portal-User-Id`` or
    ``?user_id=``), ``"jwt"`` (a host-signed JWT user token as bearer; ``host_origin`` is the
    request's allowed ``Origin``, ``None`` without one) or ``"mounted"`` (the host's own cookie
    session and ``user_loader``).

    ``project`` is the tenant every query of the request is scoped to: the app key the caller
    authenticated for (``app_key``: the secret's key, the JWT's ``aud``, the session token's
    key), or ``PORTAL_MOUNTED_PROJECT`` for mounted callers, whose ``app_key`` is ``None`` (and
    for session tokens signed without a key). The empty default matches no row.
    """

    user_id: str
    host_origin: str | None
    via: str
    app_key: str | None = None
    project: str = ""
    #: The session token's theme keys (``via == "session"`` only), see :mod:`portal.theme`.
    theme: dict[str, str] | None = None


def own_origin() -> str:
    """The portal's own origin: from ``PORTAL_BASE_URL`` when set, else this request's."""
    return current_portal.own_origin or normalize_origin(request.host_url) or request.host_url


def request_origin() -> str | None:
    """The request's ``Origin`` header, normalised; ``None`` when absent or ``"null"``."""
    return normalize_origin(request.headers.get("Origin"))


#: Mounted-mode routes a cross-site top-level navigation may open with the host's cookie alone
#: (GET/HEAD only): the full pages and the htmx partials they load (the no-JavaScript links of
#: the marketplace point at those). They render HTML another site cannot read and change
#: nothing. Every other cookie-authenticated request (the whole JSON API, GET included, and
#: every unsafe method) needs :func:`require_same_origin`.
NAVIGABLE_ENDPOINTS = frozenset(
    {
        "portal.apps_page",
        "portal.app_page",
        "portal.function_page",
        "portal.ui_apps",
        "portal.ui_app",
        "portal.ui_function",
        "portal.accounts_page",
        "portal.functions_page",
        "portal.ui_accounts",
        "portal.ui_functions",
    }
)


def require_same_origin() -> None:
    """Same-origin proof of a cookie-authenticated (mounted) request.

    Fetch Metadata (W3C "Fetch Metadata Request Headers" §2.1): a ``Sec-Fetch-Site`` other than
    ``same-origin`` (``cross-site``, ``same-site``, ``none``) is refused outright. Then, whether
    or not the browser sent ``Sec-Fetch-*``, the request must carry the session's Flask-WTF
    CSRF token (``generate_csrf()``, the mounted pages' ``<meta name="csrf-token">``) in
    ``X-CSRFToken``: a header another site cannot set without a CORS preflight the portal
    refuses (OWASP CSRF Prevention Cheat Sheet, "Custom Request Headers").

    :raises OriginNotAllowed: 403 ``csrf_failed``, before anything is read, changed or sent.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        raise OriginNotAllowed(
            f"A cookie-authenticated request from another site ({site}) is refused; "
            "call the portal from the host's own pages.",
            code="csrf_failed",
        )
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except ValidationError as exc:
        raise OriginNotAllowed(
            f"CSRF check failed: {exc} Send the session's CSRF token in X-CSRFToken.",
            code="csrf_failed",
        ) from exc


def current_caller() -> Caller:
    """The authenticated caller of this request (cached in ``g``).

    A bearer wins: an app secret, a JWT user token (for the project its ``aud`` names, see
    :func:`portal.auth.verify_user_token`) or a session token. Otherwise mounted mode asks the
    ``user_loader`` and requires same-origin proof (:func:`require_same_origin`) on every
    request except a GET/HEAD of a page in :data:`NAVIGABLE_ENDPOINTS`.

    :raises AuthenticationFailed: no valid token and no logged-in mounted user.
    :raises OriginNotAllowed: the token is presented from an origin it was not issued to (a JWT:
        from an origin not in ``PORTAL_ALLOWED_ORIGINS``); 403 ``csrf_failed``: a mounted
        request without same-origin proof.
    """
    cached: Caller | None = g.get("_portal_caller")
    if cached is not None:
        return cached
    token = bearer_token(request.headers.get("Authorization"))
    server_key = (
        app_key_for_secret(current_portal.config["PORTAL_APP_KEYS"], token) if token else None
    )
    if server_key is not None:
        # Server-to-server: the host backend names the end user (DESIGN.md, issue 3 item 5).
        user_id = host_named_user_id(
            request.headers.get("X-Portal-User-Id"),
            request.query_string,
            current_portal.config["PORTAL_USER_ID_MAX_LENGTH"],
        )
        caller = Caller(user_id, own_origin(), "server", app_key=server_key, project=server_key)
    elif token is not None and peek_jwt(token) is not None:
        config = current_portal.config
        project_id, user_id = verify_bearer_user_token(
            token,
            config["PORTAL_JWT_PUBLIC_KEYS"],
            config["PORTAL_JWT_ALGORITHMS"],
            config["PORTAL_JWT_MAX_TTL"],
            max_user_id_length=config["PORTAL_USER_ID_MAX_LENGTH"],
        )
        origin = request_origin()
        if origin is not None and origin not in {*current_portal.allowed_origins, own_origin()}:
            raise OriginNotAllowed(
                "This user token is presented from an origin that is not allowed.",
                code="origin_mismatch",
            )
        caller = Caller(user_id, origin, "jwt", app_key=project_id, project=project_id)
    elif token is not None:
        claims = current_portal.tokens.read_session(token)
        origin = request_origin()
        if origin is not None and origin not in (claims.origin, own_origin()):
            raise OriginNotAllowed(
                "This session token was issued to another origin.", code="origin_mismatch"
            )
        caller = Caller(
            claims.user_id,
            claims.origin,
            "session",
            app_key=claims.app_key,
            project=claims.app_key or current_portal.mounted_project,
            theme=claims.theme,
        )
    else:
        mounted_user = current_portal.portal.load_user()
        if mounted_user is None:
            raise AuthenticationFailed("Sign in first: no session token and no logged-in user.")
        if not (request.method in SAFE_METHODS and request.endpoint in NAVIGABLE_ENDPOINTS):
            require_same_origin()
        caller = Caller(
            mounted_user, own_origin(), "mounted", project=current_portal.mounted_project
        )
    g._portal_caller = caller
    return caller


def agent_scope() -> agents.AgentScope:
    """Who the agent of this request acts for (cached in ``g``).

    A bearer that is an MCP token gives its scope (project, user, allow-lists); any other
    caller is resolved as the JSON API does (:func:`current_caller`), with
    no allow-lists.

    :raises AuthenticationFailed: 401: no caller, a forged, tampered or expired token.
    """
    cached: agents.AgentScope | None = g.get("_portal_agent_scope")
    if cached is not None:
        return cached
    token = bearer_token(request.headers.get("Authorization"))
    config = current_portal.config
    scope: agents.AgentScope | None = None
    if token is not None and app_key_for_secret(config["PORTAL_APP_KEYS"], token) is None:
        try:
            scope = agents.read_token(
                config["SECRET_KEY"], token, int(config["PORTAL_MCP_TOKEN_MAX_TTL"])
            )
        except AuthenticationFailed as exc:
            if exc.error_code == "token_expired":
                raise
            # Not an MCP token: a session token or a JWT user token, read below.
    if scope is None:
        caller = current_caller()
        scope = agents.AgentScope(caller.project, caller.user_id)
    g._portal_agent_scope = scope
    return scope
