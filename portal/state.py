"""The portal's per-app state, :class:`PortalState`, and :data:`current_portal`.

This module sits at the bottom of the package's imports (STYLE.md item 11): services and views
read the state from here; :mod:`portal.extension` builds it in ``init_app`` and stores it at
``app.extensions["portal"]``. Nothing here imports a service, a view or the extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app
from werkzeug.local import LocalProxy

from .auth import TokenService, normalize_origin
from .catalog import App, Catalog
from .crypto import Sealer
from .flow_types import FlowSet
from .oauth import OAuthClients
from .outbound import Outbound
from .store import Store
from .theme import Theme

if TYPE_CHECKING:
    from flask_limiter import Limiter

#: The project of mounted-mode callers when ``PORTAL_MOUNTED_PROJECT`` is unset and
#: ``PORTAL_APP_KEYS`` has not exactly one key.
MOUNTED_PROJECT = "mounted"


class PortalHooks(Protocol):
    """What the portal asks of the host through the extension object
    (:class:`portal.extension.ConnectPortal`): its ``user_loader`` and ``admin_check``."""

    @property
    def has_user_loader(self) -> bool:
        """True when a ``user_loader`` callback is registered."""
        ...

    def load_user(self) -> str | None:
        """The mounted-mode end user, or ``None``."""
        ...

    def is_admin(self) -> bool:
        """What the ``admin_check`` callback says of this request (``False`` without one)."""
        ...


@dataclass
class PortalState:
    """Everything the portal keeps per Flask app, at ``app.extensions["portal"]``."""

    portal: PortalHooks
    catalog: Catalog
    store: Store
    sealer: Sealer
    tokens: TokenService
    oauth: OAuthClients
    allowed_origins: frozenset[str]
    base_url: str | None
    config: dict[str, Any]
    #: The outbound policy for end-user-chosen hosts (``PORTAL_OUTBOUND_ALLOWED_NETWORKS`` and
    #: the resolver; :mod:`portal.outbound`), shared with :attr:`oauth`.
    outbound: Outbound = field(default_factory=Outbound)
    #: The rate limiter of this app's portal endpoints (:mod:`portal.ratelimit`).
    limiter: Limiter | None = None
    #: The project of mounted-mode callers (:func:`portal.extension.mounted_project`).
    mounted_project: str = MOUNTED_PROJECT
    #: The host's declared flows (``PORTAL_FLOWS_PATH``, :mod:`portal.flows`).
    flows: FlowSet = field(default_factory=FlowSet)
    #: The server's theme (``PORTAL_THEME``, :func:`portal.theme.config_theme`).
    theme: Theme = field(default_factory=Theme)

    @property
    def own_origin(self) -> str | None:
        """The portal's own origin from ``PORTAL_BASE_URL``, if configured."""
        return normalize_origin(self.base_url) if self.base_url else None

    def enabled_apps(self) -> list[App]:
        """Apps shown in the marketplace: usable ones, in ``PORTAL_ENABLED_APPS`` order if set."""
        return self.catalog.usable(self.config["PORTAL_ENABLED_APPS"])

    def app(self, slug: str) -> App | None:
        """An enabled app by slug, or ``None``."""
        app = self.catalog.get(slug)
        if app is None or not app.usable:
            return None
        enabled = self.config["PORTAL_ENABLED_APPS"]
        if enabled is not None and slug not in enabled:
            return None
        return app


def _get_state() -> PortalState:
    try:
        state: PortalState = current_app.extensions["portal"]
        return state
    except KeyError:
        raise RuntimeError("ConnectPortal is not initialised on the current app.") from None


#: The current app's :class:`PortalState`.
current_portal: PortalState = LocalProxy(_get_state)  # type: ignore[assignment]
