"""Request context shared by the views: who is calling, security headers, CORS, errors."""

from __future__ import annotations

import functools
import json
import logging
import re
import zlib
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, jsonify, make_response, render_template, request
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from .._paths import STATIC_DIR
from ..auth import (
    app_key_for_secret,
    bearer_token,
    host_named_user_id,
    normalize_origin,
    peek_jwt,
    verify_bearer_user_token,
)
from ..errors import AuthenticationFailed, OriginNotAllowed, PortalHTTPError, RateLimited
from ..extension import current_portal
from ..proxy import RESPONSE_SECURITY_HEADERS

log = logging.getLogger("portal")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The proxy route (portal.views.proxy): its answers carry the upstream's body.
PROXY_ENDPOINT = "portal.api_proxy"
#: ``Strict-Transport-Security`` of every portal answer over HTTPS (RFC 6797 §6.1).
HSTS = "max-age=31536000; includeSubDomains"
#: Request headers a host page may send cross-origin: the bearer token, and the ones the proxy
#: forwards upstream (portal.proxy.FORWARDED_REQUEST_HEADERS).
ALLOWED_CORS_HEADERS = (
    "Authorization, Content-Type, Accept, Accept-Language, If-Match, If-None-Match, "
    "If-Modified-Since, If-Unmodified-Since, Idempotency-Key, Prefer"
)


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


def wants_json() -> bool:
    """True for the JSON API (errors answer JSON there, HTML pages elsewhere)."""
    return request.blueprint == "portal" and "/api/" in request.path


def error_response(exc: HTTPException) -> tuple[Response | str, int]:
    """Render ``exc`` as ``{"error","message","error_details"}`` JSON or the error page."""
    status = exc.code or 500
    code = getattr(exc, "error_code", None) or (exc.name or "error").lower().replace(" ", "_")
    message = exc.description or exc.name
    details = getattr(exc, "details", [])
    if wants_json():
        response = jsonify({"error": code, "message": message, "error_details": details})
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
        return response, status
    page = render_template(
        "portal/error.html",
        status=status,
        title=exc.name,
        message=message,
        **page_context("error"),
    )
    return page, status


def page_context(page: str, mode: str = "page", layout: str = "wide") -> dict[str, Any]:
    """Variables every full page template needs (see ``templates/portal/base.html``)."""
    return {
        "page": page,
        "mode": mode,
        "layout": layout,
        "mounted": False,
        "csrf_token_value": None,
        "theme": current_portal.config["PORTAL_THEME"],
    }


def content_security_policy() -> str:
    """The portal pages' CSP: no inline script or style, framing only by allowed origins."""
    ancestors = " ".join(["'self'", *sorted(current_portal.allowed_origins)])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {ancestors}"
    )


def _cors_origin() -> str | None:
    origin = request_origin()
    if origin is not None and origin in current_portal.allowed_origins:
        return origin
    return None


def _preflight() -> Response | None:
    if request.method == "OPTIONS" and "/api/" in request.path:
        response = Response(status=204)
        if _cors_origin() is None:
            response.status_code = 403
        return response
    return None


def _headers(response: Response) -> Response:
    headers = response.headers
    if request.endpoint == PROXY_ENDPOINT:
        # The body is the upstream's: the portal's headers are assigned over anything else, and
        # the CSP is a sandbox without scripts (portal.proxy.RESPONSE_SECURITY_HEADERS).
        for name, value in RESPONSE_SECURITY_HEADERS:
            headers[name] = value
        headers["Referrer-Policy"] = "no-referrer"
        if request.is_secure:
            headers["Strict-Transport-Security"] = HSTS
    else:
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.is_secure:
            # RFC 6797: only over HTTPS; a plain-http answer must not carry it (§7.2).
            headers.setdefault("Strict-Transport-Security", HSTS)
    is_static = request.endpoint == "portal.static"
    if not is_static:
        headers["Cache-Control"] = "no-store"
        if "Content-Security-Policy" not in headers:  # the proxy's is set: not rebuilt
            headers["Content-Security-Policy"] = content_security_policy()
    if "/api/" in request.path and (origin := _cors_origin()) is not None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Headers"] = ALLOWED_CORS_HEADERS
        headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        headers["Access-Control-Max-Age"] = "600"
    if "/api/" in request.path or is_static:
        headers.add("Vary", "Origin")
    return response


def _handle(exc: HTTPException) -> tuple[Response | str, int] | Response:
    if isinstance(exc, RateLimitExceeded):
        return _rate_limited()
    return error_response(exc)


def _rate_limited() -> Response:
    """429 ``rate_limited`` (JSON on the API, the error page elsewhere) with ``Retry-After``."""
    from ..ratelimit import retry_after

    limiter = current_portal.limiter
    seconds = retry_after(limiter) if limiter is not None else 60
    error = RateLimited(f"Too many requests. Try again in {seconds} seconds.")
    error.retry_after = seconds
    response = make_response(error_response(error))
    response.headers["Retry-After"] = str(seconds)
    return response


def _handle_unexpected(exc: Exception) -> tuple[Response | str, int]:
    if isinstance(exc, HTTPException):
        return error_response(exc)
    log.exception("unhandled error in %s", request.endpoint)
    return error_response(_Internal())


class _Internal(PortalHTTPError):
    code = 500
    error_code = "internal_error"
    description = "Something went wrong on our side. Please try again."


def register(bp: Blueprint) -> None:
    """Install the hooks and error handlers on ``bp``."""
    bp.before_request(_preflight)
    bp.after_request(_headers)
    bp.register_error_handler(HTTPException, _handle)
    bp.register_error_handler(Exception, _handle_unexpected)
    bp.app_context_processor(lambda: {})


def mounted_page_context(page: str) -> dict[str, Any]:
    """Page context for same-origin mounted pages: CSRF token in a meta tag."""
    ctx = page_context(page)
    ctx.update(mounted=True, csrf_token_value=generate_csrf())
    return ctx


def icon_file(app: Any) -> str | None:
    """The app's icon: ``App.icon_file`` when the catalog resolves it, else the ``icon:`` file
    name (or ``https://`` URL), else ``<slug>.svg`` when ``static/icons/`` has one; ``None``
    when there is no icon (the pages then draw a monogram tile)."""
    if hasattr(app, "icon_file"):
        resolved: str | None = app.icon_file
        return resolved
    if app.icon:
        return str(app.icon)
    return f"{app.slug}.svg" if (STATIC_DIR / "icons" / f"{app.slug}.svg").is_file() else None


def icon_url(app: Any) -> str:
    """Absolute URL of the app's icon (absolute because the host page shows it too);
    ``icons/default.svg`` for an app without one."""
    from flask import url_for

    icon = icon_file(app) or "default.svg"
    if icon.startswith(("https://", "http://")):  # the catalog allows http on loopback only
        return str(icon)
    return own_origin() + url_for("portal.static", filename=f"icons/{icon}")


#: Number of monogram colours (``.portal-monogram-0`` … ``-11`` in portal.css).
MONOGRAM_TONES = 12


@functools.cache
def _brand_glyphs() -> frozenset[str]:
    """Icon files vendored from simple-icons (single-colour glyphs drawn on a neutral tile),
    from ``static/icons/simple-icons.json`` (written by ``python -m portal._vendor_icons``)."""
    try:
        manifest = json.loads((STATIC_DIR / "icons" / "simple-icons.json").read_text("utf-8"))
    except (OSError, ValueError):
        return frozenset()
    return frozenset(manifest.get("icons", {}))


def monogram(title: str, slug: str) -> dict[str, Any]:
    """``{"initials", "tone"}`` of an app without an icon: the first letter or digit of the
    first two space-separated words of ``title`` (``"Zoho CRM"`` -> ``"ZC"``, ``"Monday.com"``
    -> ``"M"``), upper-cased, and a colour index in ``range(MONOGRAM_TONES)`` from a CRC-32 of
    ``slug`` (stable across processes and runs)."""
    firsts = [m.group(0) for w in title.split() if (m := re.search(r"[^\W_]", w))]
    initials = "".join(firsts[:2]).upper() or slug[:1].upper()
    return {"initials": initials, "tone": zlib.crc32(slug.encode()) % MONOGRAM_TONES}


def app_logo(app: Any) -> dict[str, Any]:
    """What the pages draw for an app's logo: ``{"url": str | None, "glyph": bool,
    "initials": str, "tone": int}``. ``url`` is ``None`` when the app has no icon (draw the
    monogram); ``glyph`` is true for a simple-icons brand glyph (drawn on a neutral tile)."""
    name = icon_file(app)
    logo = monogram(app.title, app.slug)
    logo["url"] = icon_url(app) if name else None
    logo["glyph"] = bool(name) and name in _brand_glyphs()
    return logo


def app_ref(app: Any) -> dict[str, str]:
    """``{name, title, icon_url}`` as event payloads carry it."""
    return {"name": app.slug, "title": app.title, "icon_url": icon_url(app)}


def app_summary(app: Any, connected_count: int) -> dict[str, Any]:
    """The public AppSummary: ``{name, title, description, categories, icon_url, auth_type,
    connected, connected_count}``."""
    return {
        "name": app.slug,
        "title": app.title,
        "description": app.description,
        "categories": list(app.categories),
        "icon_url": icon_url(app),
        "auth_type": app.auth_type,
        "connected": connected_count > 0,
        "connected_count": connected_count,
    }
