"""Rate limits on the portal's own endpoints, with Flask-Limiter.

One :class:`flask_limiter.Limiter` per Flask app (``PortalState.limiter``). It has no default or
application limits and exempts every request outside the ``portal`` blueprint, so a host that
mounts the portal keeps its own routes (and its own Flask-Limiter, if any) to itself. Counters
live in Redis when ``PORTAL_REDIS_URL`` is set (shared by every process of a deployment), in
memory otherwise.

=========================================  ==============================  ====================
Endpoint                                   Limit (config key)              Counted per
=========================================  ==============================  ====================
``POST /api/v1/sessions``                  ``PORTAL_RATE_LIMIT_SESSIONS``  app key and origin
``POST /api/v1/connect-tickets``           ``PORTAL_RATE_LIMIT_CONNECT``   end user
``GET|POST /connect/<app>``                ``PORTAL_RATE_LIMIT_CONNECT``   the ticket's end user
``/api/v1/proxy/<app>/<path>``             ``PORTAL_RATE_LIMIT_PROXY``     end user
``/api/v1/proxy/<app>/<path>``             ``PORTAL_RATE_LIMIT_PROXY_APP_KEY``  app key
``POST /api/v1/functions/<name>/invoke``   ``PORTAL_RATE_LIMIT_INVOKE``    end user
``/mcp`` (AI agents)                       ``PORTAL_RATE_LIMIT_MCP``       end user
=========================================  ==============================  ====================

An end user is the caller's ``user_id`` within its app key (:func:`portal.callers.
current_caller`). A breach raises :class:`flask_limiter.RateLimitExceeded`, which the blueprint
answers as :class:`portal.errors.RateLimited` (429 with ``Retry-After``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, request
from flask_limiter import Limiter

from .auth import app_key_for_secret, bearer_token, normalize_origin
from .callers import MAX_BODY, agent_scope, current_caller
from .state import current_portal

#: Blueprint name whose endpoints are limited; every other request is exempt.
BLUEPRINT = "portal"


def create_limiter(app: Flask) -> Limiter:
    """A limiter for ``app`` configured from its ``PORTAL_*`` keys (no limit of its own yet).

    ``RATELIMIT_ENABLED`` is not left behind in ``app.config``: a host's own Flask-Limiter reads
    that key, and the portal's switch is ``PORTAL_RATE_LIMITS_ENABLED``.
    """
    config = app.config
    had_enabled = "RATELIMIT_ENABLED" in config
    limiter = Limiter(
        _unscoped_key,
        default_limits=[],
        application_limits=[],
        storage_uri=config["PORTAL_REDIS_URL"] or "memory://",
        key_prefix=config["PORTAL_RATE_LIMIT_KEY_PREFIX"],
        strategy="fixed-window",
        headers_enabled=False,  # proxied answers carry the provider's own X-RateLimit-* headers
        enabled=bool(config["PORTAL_RATE_LIMITS_ENABLED"]),
    )
    limiter.request_filter(lambda: request.blueprint != BLUEPRINT)
    limiter.init_app(app)
    limiter.enabled = bool(config["PORTAL_RATE_LIMITS_ENABLED"])
    if not had_enabled:
        config.pop("RATELIMIT_ENABLED", None)
    return limiter


def install(app: Flask, limiter: Limiter) -> None:
    """Wrap the portal's limited view functions of ``app`` (after the blueprint is registered)."""
    views: dict[str, Any] = app.view_functions
    table: list[tuple[str, str, str, Callable[[], str]]] = [
        ("api_create_session", "PORTAL_RATE_LIMIT_SESSIONS", "sessions", session_key),
        ("api_connect_tickets", "PORTAL_RATE_LIMIT_CONNECT", "connect-tickets", end_user_key),
        ("connect", "PORTAL_RATE_LIMIT_CONNECT", "connect", ticket_user_key),
        ("api_proxy", "PORTAL_RATE_LIMIT_PROXY", "proxy", end_user_key),
        ("api_proxy", "PORTAL_RATE_LIMIT_PROXY_APP_KEY", "proxy-app", app_key),
        ("api_invoke_function", "PORTAL_RATE_LIMIT_INVOKE", "invoke", end_user_key),
        ("mcp", "PORTAL_RATE_LIMIT_MCP", "mcp", agent_user_key),
    ]
    for endpoint, config_key, scope, key_func in table:
        name = f"{BLUEPRINT}.{endpoint}"
        views[name] = limiter.shared_limit(_config_value(config_key), scope, key_func=key_func)(
            views[name]
        )


def retry_after(limiter: Limiter) -> int:
    """Seconds until the limit breached by this request resets (at least 1)."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))


def _config_value(key: str) -> Callable[[], str]:
    # Read at request time, so every app sees its own value.
    return lambda: str(current_portal.config[key])


def _unscoped_key() -> str:
    return request.remote_addr or "unknown"


def end_user_key() -> str:
    """``user:<app key>:<user_id>`` of the authenticated caller.

    :raises AuthenticationFailed: no valid caller (answered before any counting).
    """
    caller = current_caller()
    return f"user:{caller.app_key or '-'}:{caller.user_id}"


def agent_user_key() -> str:
    """``user:<project>:<user_id>`` of the AI agent's end user (MCP token or API caller).

    :raises AuthenticationFailed: no valid caller (answered before any counting).
    """
    scope = agent_scope()
    return f"user:{scope.project}:{scope.user_id}"


def app_key() -> str:
    """``app:<app key>`` of the authenticated caller (``-`` for mounted callers: the host)."""
    return f"app:{current_caller().app_key or '-'}"


def ticket_user_key() -> str:
    """``ticket-user:<host origin>:<user_id>`` from the ``/connect`` request's ticket.

    :raises InvalidConnectAttempt: missing, forged or expired ticket.
    """
    app = (request.view_args or {}).get("app", "")
    claims = current_portal.tokens.read_ticket(request.values.get("ticket"), str(app))
    return f"ticket-user:{claims.host_origin}:{claims.user_id}"


def session_key() -> str:
    """``session:<app key>:<origin>`` as ``POST /sessions`` names them (not yet verified).

    The app key is the bearer app secret's, else the body's ``appKey`` or ``projectId``; the
    origin is the body's ``origin`` (server-to-server) or the request's ``Origin``.
    """
    request.max_content_length = MAX_BODY
    body: Any = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    secret = bearer_token(request.headers.get("Authorization"))
    key: Any = None
    origin: str | None
    if secret is not None:
        key = app_key_for_secret(current_portal.config["PORTAL_APP_KEYS"], secret)
        origin = normalize_origin(body.get("origin"))
    else:
        key = body.get("appKey") or body.get("projectId")
        origin = normalize_origin(request.headers.get("Origin"))
    key = key if isinstance(key, str) else "-"
    return f"session:{key[:255]}:{origin or '-'}"
