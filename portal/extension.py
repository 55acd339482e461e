"""The :class:`ConnectPortal` Flask extension.

The top of the package's imports (STYLE.md item 11): ``init_app`` builds the per-app
:class:`~portal.state.PortalState` and registers the views, the rate limiter and the CLI; no
service imports this module. :class:`PortalState`, :data:`current_portal` and
:data:`MOUNTED_PROJECT` live in :mod:`portal.state` and are re-exported here.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from . import logs
from .auth import TokenService, normalize_origin
from .catalog import load_catalog, unusable_warnings
from .cli import portal_cli
from .config import DEFAULTS
from .crypto import Sealer
from .errors import ConfigurationError
from .flows import load_for as load_flows_for
from .i18n import init_babel
from .oauth import OAuthClients
from .outbound import Outbound
from .ratelimit import create_limiter, install
from .state import MOUNTED_PROJECT as MOUNTED_PROJECT
from .state import PortalState as PortalState
from .state import current_portal as current_portal
from .store import Store
from .theme import config_theme
from .views import create_blueprint

__all__ = ["MOUNTED_PROJECT", "ConnectPortal", "PortalState", "current_portal", "mounted_project"]

log = logging.getLogger(__name__)

UserLoader = Callable[[], "str | None"]


def mounted_project(config: Mapping[str, Any]) -> str:
    """The project (tenant) of mounted-mode callers: ``PORTAL_MOUNTED_PROJECT`` when set, else
    the only key of ``PORTAL_APP_KEYS`` when exactly one is configured, else ``"mounted"``.

    :raises ConfigurationError: ``PORTAL_MOUNTED_PROJECT`` is set but not a non-empty string.
    """
    named = config.get("PORTAL_MOUNTED_PROJECT")
    if named is not None:
        if not isinstance(named, str) or not named:
            raise ConfigurationError("PORTAL_MOUNTED_PROJECT must be a non-empty string.")
        return named
    keys = list(config.get("PORTAL_APP_KEYS") or {})
    return str(keys[0]) if len(keys) == 1 else MOUNTED_PROJECT


class ConnectPortal:
    """The connect portal as a Flask extension.

    ``ConnectPortal(app)`` or ``portal = ConnectPortal(); portal.init_app(app)``. Per-app state
    lives in ``app.extensions["portal"]`` (:class:`PortalState`); the extension keeps no app.

    Mounted mode: register :meth:`user_loader` to tell the portal who the logged-in end user is.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._user_loader: UserLoader | None = None
        self._admin_check: Callable[[], bool] | None = None
        if app is not None:
            self.init_app(app)

    def user_loader(self, callback: UserLoader) -> UserLoader:
        """Decorator: ``callback()`` returns the current end user's id (``str``) or ``None``.

        Used by same-origin mounted pages and API calls that carry no session token.
        """
        self._user_loader = callback
        return callback

    def load_user(self) -> str | None:
        """The mounted-mode end user, or ``None`` (no loader, or nobody logged in)."""
        if self._user_loader is None:
            return None
        user = self._user_loader()
        return None if user is None else str(user)

    def admin_check(self, callback: Callable[[], bool]) -> Callable[[], bool]:
        """Decorator: ``callback()`` returns ``True`` when the current request (the host's own
        login, e.g. ``current_user.is_admin``) may see the operators' page ``/portal/admin`` and
        ``/portal/api/v1/admin/apps``. Without it only the app secret as bearer is accepted."""
        self._admin_check = callback
        return callback

    def is_admin(self) -> bool:
        """What the :meth:`admin_check` callback says of this request (``False`` without one)."""
        return bool(self._admin_check is not None and self._admin_check())

    @property
    def has_user_loader(self) -> bool:
        """True when a :meth:`user_loader` callback is registered."""
        return self._user_loader is not None

    def init_app(self, app: Flask) -> None:
        """Configure ``app``: defaults, database, catalog, OAuth clients, blueprint.

        :raises RuntimeError: the portal is already initialised on ``app``.
        :raises ConfigurationError: missing ``SECRET_KEY`` or encryption keys (outside
            debug/testing), OAuth apps without ``PORTAL_BASE_URL``, or an invalid catalog.
        """
        if "portal" in app.extensions:
            raise RuntimeError("ConnectPortal is already initialised on this Flask app.")
        # Only a host that sets PORTAL_LOG_FORMAT itself gets a handler on the "portal" logger.
        explicit_log_format = "PORTAL_LOG_FORMAT" in app.config
        for key, value in DEFAULTS.items():
            # A copy, so one app's list/dict default is never another app's.
            app.config.setdefault(key, copy.deepcopy(value))
        config = app.config

        if not config.get("SECRET_KEY"):
            raise ConfigurationError("SECRET_KEY must be set: it signs session tokens and tickets.")
        try:
            logs.configure(app, explicit_log_format)
            init_babel(app)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

        catalog = load_catalog(
            [Path(p) for p in config["PORTAL_CATALOG_PATHS"]], config["PORTAL_APPS"]
        )
        for line in unusable_warnings(catalog, config["PORTAL_ENABLED_APPS"]):
            log.warning("%s", line)
        base_url = config["PORTAL_BASE_URL"]
        if base_url and normalize_origin(_origin_part(base_url)) is None:
            raise ConfigurationError(f"PORTAL_BASE_URL {base_url!r} is not an http(s) URL.")
        if any(a.oauth2 and a.usable for a in catalog) and not base_url:
            raise ConfigurationError(
                "PORTAL_BASE_URL must be set (e.g. 'https://portal.example'): OAuth redirect "
                "URIs are built from it, never from request headers."
            )
        origins = []
        for origin in config["PORTAL_ALLOWED_ORIGINS"]:
            normal = normalize_origin(origin)
            if normal is None:
                raise ConfigurationError(f"PORTAL_ALLOWED_ORIGINS: {origin!r} is not an origin.")
            origins.append(normal)
        theme = config_theme(config["PORTAL_THEME"])

        keys = list(config["PORTAL_ENCRYPTION_KEYS"])
        if not keys:
            if not (app.debug or app.testing):
                raise ConfigurationError(
                    "PORTAL_ENCRYPTION_KEYS is empty. Generate a key with "
                    "`python -m portal generate-key` (or `flask portal generate-key`; neither "
                    "needs an app) and set PORTAL_ENCRYPTION_KEYS = [key]."
                )
            log.warning(
                "PORTAL_ENCRYPTION_KEYS is empty; deriving a development key from SECRET_KEY"
            )
            keys = [_dev_key(config["SECRET_KEY"])]

        url = config["PORTAL_DATABASE_URL"]
        if not url:
            Path(app.instance_path).mkdir(parents=True, exist_ok=True)
            url = "sqlite:///" + str(Path(app.instance_path) / "portal.sqlite3")
        try:
            outbound = Outbound.from_config(config)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

        store = Store(url)
        auto = config["PORTAL_AUTO_MIGRATE"]
        if auto or (auto is None and store.engine.dialect.name == "sqlite"):
            try:
                store.upgrade(
                    app_keys=list(config["PORTAL_APP_KEYS"]),
                    project=config["PORTAL_MIGRATION_PROJECT"],
                )
            except RuntimeError as exc:  # 0004 found rows of no known project: says what to do
                raise ConfigurationError(str(exc)) from exc

        state = PortalState(
            portal=self,
            catalog=catalog,
            store=store,
            sealer=Sealer(keys),
            tokens=TokenService(
                config["SECRET_KEY"], config["PORTAL_SESSION_TTL"], config["PORTAL_TICKET_TTL"]
            ),
            oauth=OAuthClients(catalog, float(config["PORTAL_HTTP_TIMEOUT"]), outbound),
            allowed_origins=frozenset(origins),
            base_url=base_url.rstrip("/") if base_url else None,
            config=config,
            outbound=outbound,
            mounted_project=mounted_project(config),
            flows=load_flows_for(config, catalog),
            theme=theme,
        )
        app.extensions["portal"] = state

        blueprint = create_blueprint()
        logs.install(blueprint)
        app.register_blueprint(blueprint, url_prefix=config["PORTAL_URL_PREFIX"])

        state.limiter = create_limiter(app)
        install(app, state.limiter)

        if "portal" not in app.cli.commands:
            app.cli.add_command(portal_cli)


def _origin_part(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _dev_key(secret_key: str | bytes) -> str:
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return base64.urlsafe_b64encode(hashlib.sha256(b"portal-dev-key:" + raw).digest()).decode()
