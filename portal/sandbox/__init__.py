"""The sandbox OAuth 2.0 provider: what "dev keys" are.

A real authorization server (Authlib) with demo users and a tiny contacts API, so the whole
portal works, in the demo and in tests, without credentials for any real provider::

    from portal.sandbox import create_app

    app = create_app({
        "SANDBOX_ISSUER": "http://127.0.0.1:5002",
        "SANDBOX_CLIENTS": [{
            "client_id": "portal", "client_secret": "s3cret",
            "redirect_uris": ["http://127.0.0.1:5001/portal/oauth/sandbox/callback"],
        }],
    })

Standards: RFC 6749 (code and refresh grants only), RFC 7636 (PKCE, required, ``S256`` only;
the ``/_sandbox/faults`` hook can make it optional for confidential clients), OpenID Connect
Core 1.0 (``openid`` scope: an RS256 ``id_token`` with the request's ``nonce``, keys at
``/oauth/jwks``),
RFC 9700 (refresh rotation with reuse detection), RFC 9207 (``iss`` on authorization
responses), RFC 7009 (revocation), RFC 6750 (bearer), RFC 8414 (metadata).

Endpoints: see :mod:`portal.sandbox.views` (OAuth), :mod:`portal.sandbox.api` (REST API, and
the identity endpoints of the API-key and Basic demo apps) and
:mod:`portal.sandbox.hooks` (test and fault hooks). :func:`portal.sandbox.testing.start_sandbox`
runs one on a loopback port in a thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.exceptions import HTTPException

from portal._paths import STATIC_DIR, TEMPLATES_DIR

from . import api, hooks, variants, views
from .config import DEFAULTS, SCOPE_DESCRIPTIONS
from .db import Store
from .db import init_app as init_db
from .monitor import Monitor
from .resources import load_clients, seed_users
from .server import create_authorization_server, create_resource_protector
from .state import SandboxState, sandbox_state

__all__ = ["DEFAULTS", "SCOPE_DESCRIPTIONS", "SandboxState", "create_app", "sandbox_state"]


def _normalise_issuer(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RuntimeError(
            "SANDBOX_ISSUER is required: the sandbox's external base URL, "
            "e.g. 'http://127.0.0.1:5002'."
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RuntimeError(
            f"SANDBOX_ISSUER must be an http(s) URL without query or fragment, not {value!r} "
            "(RFC 8414 §2)."
        )
    return value.rstrip("/")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a sandbox provider app: database created and seeded, clients loaded.

    :param config: overrides of :data:`~portal.sandbox.config.DEFAULTS` (any other Flask key is
        passed through). ``SANDBOX_ISSUER`` is required.
    :raises RuntimeError: if ``SANDBOX_ISSUER`` is missing or not an http(s) URL.
    :raises ValueError: if a ``SANDBOX_CLIENTS`` entry is invalid.
    """
    app = Flask(
        "portal.sandbox",
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
    )
    app.config.update(DEFAULTS)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if config:
        app.config.update(config)
    app.config["SANDBOX_ISSUER"] = _normalise_issuer(app.config["SANDBOX_ISSUER"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)

    store = Store(app.config["SANDBOX_DATABASE_URL"])
    store.create_all()
    with store.session() as session:
        seed_users(session)
        load_clients(session, app.config["SANDBOX_CLIENTS"])

    id_token_key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    app.extensions["sandbox"] = SandboxState(
        store=store,
        server=create_authorization_server(app, id_token_key),
        protector=create_resource_protector(),
        monitor=Monitor(),
        id_token_key=id_token_key,
    )
    init_db(app, store)

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.identity_bp)
    app.register_blueprint(variants.bp)
    if app.config["SANDBOX_TEST_HOOKS"]:
        app.register_blueprint(hooks.bp)

    app.before_request(_count_api_request)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OAuth2Error, _oauth_error)
    return app


#: Path prefixes of the resource API counted as ``api_requests`` by the ``/_sandbox/stats`` hook.
API_PATH_PREFIXES: tuple[str, ...] = ("/api/", "/apikey/", "/basic/")


def _count_api_request() -> Response | None:
    # Every request to the resource API, matched route or not, authenticated or not; then the
    # API fault, if one is set (the /_sandbox/faults hook).
    if (
        request.path.startswith(API_PATH_PREFIXES)
        or request.path in ("/api", "/apikey", "/basic")
        or (request.path.startswith(("/regions/", "/instances/")) and "/api/" in request.path)
    ):
        monitor = sandbox_state().monitor
        monitor.count_api_request()
        fault = monitor.api_fault
        if fault == "500":
            return api.api_error(500, "server_error", "The sandbox API is down (fault).")
        if fault == "reject_credentials" and (
            request.headers.get("X-API-Key")
            or request.headers.get("Authorization", "").lower().startswith("basic ")
        ):
            return api.api_error(401, "invalid_credentials", "This credential was revoked.")
    return None


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", views.BASE_CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(
        ("/oauth/", "/api/", "/_sandbox/", "/apikey/", "/basic/", "/regions/", "/instances/")
    ) or request.path.endswith("/oauth/token"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_")
    message = error.description or error.name or "Error"
    if request.path.endswith("/oauth/authorize"):
        return views.error_page(status, code, message)
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response


def _oauth_error(error: OAuth2Error) -> Response:
    # An OAuth error escaping Authlib's own handling, e.g. ``insecure_transport`` (Authlib
    # accepts plain http only on loopback hosts unless AUTHLIB_INSECURE_TRANSPORT is set).
    status = int(error.status_code or 400)
    code = str(error.error or "invalid_request")
    message = str(error.description or code)
    if request.path == "/oauth/authorize":
        return views.error_page(status, code, message)
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    return response
