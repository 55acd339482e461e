"""The portal as its own service (gunicorn ``'portal.service:create_app()'``).

Configuration comes from the mapping given, else from ``PORTAL_*`` environment variables
(values that parse as JSON are decoded, so lists and dicts can be given as JSON) plus
``SECRET_KEY``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request
from flask.wrappers import Response as FlaskResponse
from werkzeug.wrappers import Response

from .extension import ConnectPortal


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``PORTAL_*`` and ``SECRET_KEY`` from the environment, JSON-decoded where possible."""
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for key, raw in env.items():
        if key.startswith("PORTAL_") or key == "SECRET_KEY":
            try:
                config[key] = json.loads(raw)
            except ValueError:
                config[key] = raw
    return config


class LazyCookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, minus its work on requests that have no session cookie
    and never touch the session (the proxy, the JSON API): no serializer is built to open an
    empty session and no cookie settings are read to save it. Anything else is Flask's own
    :class:`~flask.sessions.SecureCookieSessionInterface`, unchanged."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session when the request carries no session cookie, else Flask's."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        """Nothing for an empty session nobody read or changed (Flask would do nothing
        either), else Flask's."""
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Flask app serving only the portal, with its own first-party session cookie.

    :raises ConfigurationError: see :meth:`ConnectPortal.init_app`.
    """
    app = Flask("portal.service", instance_relative_config=True)
    app.config.update(config_from_env() if config is None else config)
    app.config["SESSION_COOKIE_NAME"] = app.config.get(
        "PORTAL_SESSION_COOKIE_NAME", "portal_session"
    )
    # The popup's session only needs to survive the top-level redirect back from the provider.
    # (Flask's own defaults already hold these keys, so setdefault would not apply them.)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.session_interface = LazyCookieSessionInterface()
    # The service owns its process, so the portal's log handler is on (text unless the
    # configuration says "json"); a mounted portal leaves logging to its host.
    app.config.setdefault("PORTAL_LOG_FORMAT", "text")
    ConnectPortal(app)

    @app.get("/")
    def index() -> Response:
        return redirect(url_for("portal.api_root"))

    return app
