"""Every configuration key of the sandbox provider with its default.

:func:`portal.sandbox.create_app` writes each default first, then the mapping it was given, so a
caller overrides any of them. Keys are prefixed ``SANDBOX_`` except Flask's own ``SECRET_KEY``
and ``SESSION_COOKIE_NAME``.
"""

from __future__ import annotations

from typing import Any

#: Scopes the sandbox understands, with the sentence the consent page shows for each.
SCOPE_DESCRIPTIONS: dict[str, str] = {
    "openid": "Confirm your identity (OpenID Connect)",
    "profile": "See your name, username and email address",
    "contacts.read": "Read your contacts",
    "contacts.write": "Create contacts on your behalf",
    "contacts.delete": "Delete your contacts",
}

#: Client authentication methods at the token and revocation endpoints (RFC 7591 §2 names).
TOKEN_ENDPOINT_AUTH_METHODS: tuple[str, ...] = ("client_secret_basic", "client_secret_post", "none")

DEFAULTS: dict[str, Any] = {
    #: External base URL of the sandbox, e.g. ``"http://127.0.0.1:5002"``: the RFC 8414
    #: ``issuer``, the RFC 9207 ``iss`` on every authorization response, and the base of every
    #: endpoint URL in the metadata (never built from request headers). Required. Default ``None``.
    "SANDBOX_ISSUER": None,
    #: Flask secret signing the consent page's session cookie. Default ``None``: a random key per
    #: process (sessions do not survive a restart, which is fine for a sandbox).
    "SECRET_KEY": None,
    #: Name of the session cookie. Cookies are not isolated by port, so a sandbox on
    #: ``127.0.0.1:5002`` must not share a cookie name with a portal on ``127.0.0.1:5001``.
    #: Default ``"sandbox_session"``.
    "SESSION_COOKIE_NAME": "sandbox_session",
    #: SQLAlchemy URL of the sandbox's database. Default ``None``: an in-memory SQLite database
    #: shared by every thread (``StaticPool``), so its contents live as long as the process.
    "SANDBOX_DATABASE_URL": None,
    #: Lifetime of an access token, in seconds (the ``expires_in`` of token responses).
    #: Default ``3600``.
    "SANDBOX_ACCESS_TOKEN_TTL": 3600,
    #: Lifetime of an authorization code, in seconds. RFC 6749 §4.1.2 recommends at most ten
    #: minutes. Default ``600``.
    "SANDBOX_AUTHORIZATION_CODE_TTL": 600,
    #: Registered clients, loaded (inserted or updated) at start. Each is a dict with
    #: ``client_id`` (str), ``client_secret`` (str; omit for public clients),
    #: ``client_name`` (optional, shown on the consent page; default the client_id),
    #: ``redirect_uris`` (list of absolute URLs, matched exactly), ``scope`` (optional, space
    #: separated, e.g. ``"profile contacts.read contacts.write"``; default every scope) and
    #: ``token_endpoint_auth_method`` (``"client_secret_basic"`` (default),
    #: ``"client_secret_post"`` or ``"none"``). Default: one demo client, ``sandbox-demo`` /
    #: ``sandbox-demo-secret``, redirecting to
    #: ``http://127.0.0.1:5001/portal/oauth/sandbox/callback``.
    "SANDBOX_CLIENTS": [
        {
            "client_id": "sandbox-demo",
            "client_secret": "sandbox-demo-secret",
            "client_name": "Connect Portal demo",
            "redirect_uris": ["http://127.0.0.1:5001/portal/oauth/sandbox/callback"],
            "scope": "profile contacts.read contacts.write contacts.delete",
            "token_endpoint_auth_method": "client_secret_basic",
        }
    ],
    #: Workspaces of the tenant endpoints (``/regions/<region>/tenants/<workspace>/…``, see
    #: :mod:`portal.sandbox.variants`), by region. Any other region/workspace is 404.
    #: Default ``{"eu": ["acme", "initech"], "us": ["globex"]}``.
    "SANDBOX_TENANTS": {"eu": ["acme", "initech"], "us": ["globex"]},
    #: Serve the test and fault-injection hooks under ``/_sandbox/`` (stats, faults, reset,
    #: expire-access-tokens). They have no authentication: turn them off when the sandbox is
    #: reachable by anyone but you. Default ``True``.
    "SANDBOX_TEST_HOOKS": True,
}
