"""Shared by the views: security headers, CORS, error pages, app summaries and logos. The
caller of a request (:func:`current_caller`, :class:`Caller`, :func:`own_origin`) lives in
:mod:`portal.callers` and is re-exported here."""

from __future__ import annotations

import functools
import json
import logging
import re
import zlib
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from .._paths import STATIC_DIR
from ..callers import NAVIGABLE_ENDPOINTS as NAVIGABLE_ENDPOINTS
from ..callers import SAFE_METHODS as SAFE_METHODS
from ..callers import Caller as Caller
from ..callers import current_caller as current_caller
from ..callers import own_origin as own_origin
from ..callers import request_origin as request_origin
from ..callers import require_same_origin as require_same_origin
from ..catalog import App
from ..errors import PortalHTTPError, RateLimited
from ..i18n import gettext
from ..proxy import RESPONSE_SECURITY_HEADERS
from ..ratelimit import retry_after
from ..state import current_portal
from ..static_files import SHORT_CACHE, cache_control, static_url
from ..theme import Theme, parse_theme

log = logging.getLogger("portal")

#: The theme stylesheet route (views.ui.theme_css): cached immutable, its URL names its content.
THEME_ENDPOINT = "portal.theme_css"
#: The proxy route (portal.views.proxy): its answers carry the upstream's body.
PROXY_ENDPOINT = "portal.api_proxy"
#: The CSP of the API's JSON answers: nothing in them may load, run or be framed (OWASP REST
#: Security Cheat Sheet); the pages' longer policy would only add bytes to every call.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
#: The SDK's hidden frame (portal.views.ui.embed_rpc): the same bytes for everyone (no token,
#: no CSRF value), so it may be kept briefly (portal.static_files.SHORT_CACHE): a second connect
#: within minutes does not fetch it again.
RPC_FRAME_ENDPOINT = "portal.embed_rpc"
#: ``Strict-Transport-Security`` of every portal answer over HTTPS (RFC 6797 §6.1).
HSTS = "max-age=31536000; includeSubDomains"
#: Request headers a host page may send cross-origin: the bearer token, and the ones the proxy
#: forwards upstream (portal.proxy.FORWARDED_REQUEST_HEADERS).
ALLOWED_CORS_HEADERS = (
    "Authorization, Content-Type, Accept, Accept-Language, If-Match, If-None-Match, "
    "If-Modified-Since, If-Unmodified-Since, Idempotency-Key, Prefer"
)


def wants_json() -> bool:
    """True for the JSON API and the MCP endpoint (errors answer JSON there, HTML pages
    elsewhere)."""
    api = "/api/" in request.path or request.endpoint == "portal.mcp"
    return request.blueprint == "portal" and api


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
        message=gettext(message) if message else message,
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
        "theme": page_theme().scheme,
        "theme_css": theme_stylesheet_url(page_theme()),
        "brand": page_theme(),
    }


def use_theme(keys: dict[str, str] | None) -> None:
    """This request's pages wear ``keys`` (a ticket's session theme) over ``PORTAL_THEME``."""
    if keys:
        g._portal_theme = parse_theme(keys).over(current_portal.theme)


def page_theme() -> Theme:
    """The theme of this request's pages: :func:`use_theme`'s, else ``PORTAL_THEME``."""
    theme: Theme = g.get("_portal_theme") or current_portal.theme
    return theme


#: The salt of theme stylesheet URLs (``GET <prefix>/theme.css?t=…``).
THEME_SALT = "portal.theme"


def _theme_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key or "", salt=THEME_SALT)


def caller_theme(caller: Caller) -> Theme:
    """The theme a caller's pages use: the session token's keys over ``PORTAL_THEME``."""
    base = current_portal.theme
    if not caller.theme:
        return base
    return parse_theme(caller.theme).over(base)


def theme_stylesheet_url(theme: Theme) -> str | None:
    """The URL of ``theme``'s stylesheet, ``None`` when it styles nothing. The URL carries
    the theme's style keys, signed, so it is the same for the same theme (cached immutable)
    and names only themes the portal checked."""
    keys = theme.style_keys()
    if not keys or not theme.styled:
        return None
    return url_for("portal.theme_css", t=_theme_signer().dumps(keys))


def theme_from_url(signed: str) -> Theme | None:
    """The theme of a :func:`theme_stylesheet_url`, checked again; ``None`` when forged."""
    try:
        keys = _theme_signer().loads(signed)
    except BadSignature:
        return None
    return parse_theme(keys)


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


#: CORS headers only a preflight's answer is read for (Fetch Standard, "CORS-preflight fetch"):
#: an actual answer needs only ``Access-Control-Allow-Origin``.
_PREFLIGHT_HEADERS = (
    ("Access-Control-Allow-Headers", ALLOWED_CORS_HEADERS),
    ("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    ("Access-Control-Max-Age", "600"),
)
#: What the proxy's answers are given over the upstream's headers.
_PROXY_HEADERS = (*RESPONSE_SECURITY_HEADERS, ("Referrer-Policy", "no-referrer"))
#: What the portal's own answers carry unless the view set it.
_PAGE_DEFAULTS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def _headers(response: Response) -> Response:
    """``after_request``: the security, cache and CORS headers of every portal answer.

    The headers the portal decides are collected first and written in one pass over the
    response's list (``assigned`` replace any of the same name, ``defaults`` fill only a gap),
    rather than one scan of the list per header: this runs on every proxied call.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]  # read a dozen times
    endpoint, path, status = req.endpoint, req.path, response.status_code
    api = "/api/" in path
    assigned: dict[str, tuple[str, str]] = {}
    defaults: list[tuple[str, str]] = []
    if endpoint == PROXY_ENDPOINT:
        # The body is the upstream's: the portal's headers are assigned over anything else, and
        # the CSP is a sandbox without scripts (portal.proxy.RESPONSE_SECURITY_HEADERS).
        for name, value in _PROXY_HEADERS:
            assigned[name.lower()] = (name, value)
    else:
        defaults.extend(_PAGE_DEFAULTS)
    if req.is_secure:
        # RFC 6797: only over HTTPS; a plain-http answer must not carry it (§7.2).
        hsts = ("Strict-Transport-Security", HSTS)
        if endpoint == PROXY_ENDPOINT:
            assigned["strict-transport-security"] = hsts
        else:
            defaults.append(hsts)
    is_static = endpoint == "portal.static"
    if is_static and status in (200, 304):
        # Versioned (``?v=<hash>``, portal.static_files.static_url): a year, never revalidated.
        filename = (req.view_args or {}).get("filename")
        assigned["cache-control"] = ("Cache-Control", cache_control(filename, req.args.get("v")))
    elif endpoint == RPC_FRAME_ENDPOINT and status == 200:
        assigned["cache-control"] = ("Cache-Control", SHORT_CACHE)
    elif (not is_static or status >= 400) and endpoint != THEME_ENDPOINT:
        # The theme stylesheet's URL names its content: it keeps its own immutable one.
        assigned["cache-control"] = ("Cache-Control", "no-store")
    if not is_static and endpoint != PROXY_ENDPOINT:  # the proxy's CSP is assigned above
        api_json = api and response.mimetype == "application/json"
        csp = API_CONTENT_SECURITY_POLICY if api_json else content_security_policy()
        defaults.append(("Content-Security-Policy", csp))
    if api and (origin := _cors_origin()) is not None:
        assigned["access-control-allow-origin"] = ("Access-Control-Allow-Origin", origin)
        if req.method == "OPTIONS":
            for name, value in _PREFLIGHT_HEADERS:
                assigned[name.lower()] = (name, value)
    kept: list[tuple[str, str]] = []
    present: set[str] = set()
    for name, value in response.headers.items():
        lower = name.lower()
        if lower not in assigned:
            kept.append((name, value))
            present.add(lower)
    kept.extend(assigned.values())
    kept.extend(item for item in defaults if item[0].lower() not in present)
    if api or is_static:
        kept.append(("Vary", "Origin"))
    response.headers = Headers(kept)
    return response


def _handle(exc: HTTPException) -> tuple[Response | str, int] | Response:
    if isinstance(exc, RateLimitExceeded):
        return _rate_limited()
    return error_response(exc)


def _rate_limited() -> Response:
    """429 ``rate_limited`` (JSON on the API, the error page elsewhere) with ``Retry-After``."""
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
    bp.add_app_template_global(static_url, "static_url")


def mounted_page_context(page: str) -> dict[str, Any]:
    """Page context for same-origin mounted pages: CSRF token in a meta tag."""
    ctx = page_context(page)
    ctx.update(mounted=True, csrf_token_value=generate_csrf())
    return ctx


def icon_file(app: App) -> str | None:
    """The app's icon (:attr:`App.icon_file <portal.catalog.App.icon_file>`): the ``icon:``
    file name (or ``https://`` URL), else ``<slug>.svg`` when ``static/icons/`` has one;
    ``None`` when there is no icon (the pages then draw a monogram tile)."""
    return app.icon_file


def icon_url(app: App, *, versioned: bool = False) -> str:
    """Absolute URL of the app's icon (absolute because the host page shows it too);
    ``icons/default.svg`` for an app without one. ``versioned``: with ``?v=<hash>``
    (:func:`portal.static_files.static_url`, cached for a year), as the portal's own pages use;
    API payloads and events keep the plain URL."""
    icon = icon_file(app) or "default.svg"
    if icon.startswith(("https://", "http://")):  # the catalog allows http on loopback only
        return str(icon)
    if versioned:
        return own_origin() + static_url(f"icons/{icon}")
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


def app_logo(app: App) -> dict[str, Any]:
    """What the pages draw for an app's logo: ``{"url": str | None, "glyph": bool,
    "initials": str, "tone": int}``. ``url`` is ``None`` when the app has no icon (draw the
    monogram); ``glyph`` is true for a simple-icons brand glyph (drawn on a neutral tile)."""
    name = icon_file(app)
    logo = monogram(app.title, app.slug)
    logo["url"] = icon_url(app, versioned=True) if name else None
    logo["glyph"] = bool(name) and name in _brand_glyphs()
    return logo


def app_ref(app: App) -> dict[str, str]:
    """``{name, title, icon_url}`` as event payloads carry it."""
    return {"name": app.slug, "title": app.title, "icon_url": icon_url(app)}


def app_summary(app: App, connected_count: int) -> dict[str, Any]:
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
