"""Every ``PORTAL_*`` configuration key with its default.

:class:`~portal.extension.ConnectPortal` writes each default with ``app.config.setdefault`` in
``init_app``, so a host overrides any of them in its own Flask config.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    #: URL prefix the portal blueprint is mounted at. Default ``"/portal"``.
    "PORTAL_URL_PREFIX": "/portal",
    #: External base URL of the portal's origin, e.g. ``"https://portal.example"``. Used to build
    #: OAuth redirect URIs, which are never built from request headers (RFC 9700 §4.1). Required
    #: for OAuth connect flows. Default ``None``.
    "PORTAL_BASE_URL": None,
    #: Mounted mode: where an end user who is not logged in is sent from the portal's pages
    #: (``/portal/apps`` …), with ``?next=<the page>`` appended, like Flask-Login's
    #: ``login_view``: a URL path or an endpoint name (``"auth.login"``). Default ``None``: those
    #: pages answer 401 with a "sign in first" page.
    "PORTAL_LOGIN_URL": None,
    #: SQLAlchemy URL of the portal's own database. Default ``None``: an SQLite file
    #: ``portal.sqlite3`` in the Flask instance folder.
    "PORTAL_DATABASE_URL": None,
    #: Apply Alembic migrations at start-up. ``None`` (default) means "only for SQLite".
    "PORTAL_AUTO_MIGRATE": None,
    #: Fernet keys (url-safe base64, 32 bytes) sealing credentials at rest; the first encrypts,
    #: all decrypt (rotation). Required outside debug/testing/demo. Default ``[]``.
    "PORTAL_ENCRYPTION_KEYS": [],
    #: Host projects: ``{app_key: [app_secret, …]}``. Several secrets are accepted at once during a
    #: rotation; removing a key revokes it. Default ``{}``.
    "PORTAL_APP_KEYS": {},
    #: The project (tenant) of mounted-mode callers, the host's own logged-in users, who come
    #: with no app key: their accounts, attempts, function calls and events belong to it.
    #: ``None`` (default): the only key of ``PORTAL_APP_KEYS`` when exactly one is configured
    #: (so a mounted host and its own backend share their data), else ``"mounted"``.
    "PORTAL_MOUNTED_PROJECT": None,
    #: The project (app key) that migration 0004 gives rows written before projects existed.
    #: Needed only when such rows exist and ``PORTAL_APP_KEYS`` has not exactly one key (with
    #: one key, rows get that key). ``flask portal db upgrade --project KEY`` does the same.
    #: Default ``None``.
    "PORTAL_MIGRATION_PROJECT": None,
    #: Origins (``scheme://host[:port]``) allowed to embed the portal, create sessions and be
    #: ``return_to`` targets. Default ``[]``.
    "PORTAL_ALLOWED_ORIGINS": [],
    #: Lifetime of a browser session token, in seconds. Default ``3600``.
    "PORTAL_SESSION_TTL": 3600,
    #: Lifetime of a connect ticket (and of one connect attempt), in seconds. Default ``600``.
    "PORTAL_TICKET_TTL": 600,
    #: Longest accepted ``user_id``, in characters. Default ``255``.
    "PORTAL_USER_ID_MAX_LENGTH": 255,
    #: Extra directories of app definition YAML files, loaded after the shipped catalog; a file
    #: with the same slug replaces the shipped one. Default ``[]``.
    "PORTAL_CATALOG_PATHS": [],
    #: Per-app settings that never live in YAML: ``{"slack": {"client_id": …, "client_secret": …,
    #: "base_url": …, "scopes": [...]}}``. Environment variables ``PORTAL_<APP>_CLIENT_ID`` and
    #: ``PORTAL_<APP>_CLIENT_SECRET`` fill gaps. Apps with ``auth.custom_redirect_uri`` (eBay)
    #: also need ``"redirect_uri_value"`` (or ``PORTAL_<APP>_REDIRECT_URI_VALUE``): the value
    #: sent as ``redirect_uri`` in the authorization and token requests (eBay's RuName, set up
    #: at the provider to point at the app's callback URL). Apps whose provider webhooks are
    #: signed with another secret than the client secret (Slack's signing secret, Stripe's
    #: ``whsec_…``) take it as ``"webhook_secret"`` (or ``PORTAL_<APP>_WEBHOOK_SECRET``).
    #: Default ``{}``.
    "PORTAL_APPS": {},
    #: Slugs shown in the marketplace, in this order; other apps do not show and their pages
    #: are 404. ``None`` (default): every usable app: OAuth apps once their client is
    #: configured, and every API-key, username/password and client-credentials app, which
    #: need no host configuration (the end user brings the credential).
    "PORTAL_ENABLED_APPS": None,
    #: Timeout of every request to a provider (token, identity, revocation), in seconds.
    #: Default ``10``.
    "PORTAL_HTTP_TIMEOUT": 10.0,
    #: Networks (CIDR, e.g. ``["10.20.0.0/16", "127.0.0.1/32"]``) that an end-user-chosen host
    #: (a ``hostname`` account field: a self-hosted instance) may resolve to although they are
    #: not public. Every other loopback, private, link-local, shared, reserved or multicast
    #: address is refused before connecting (see :mod:`portal.outbound`). Default ``[]``.
    "PORTAL_OUTBOUND_ALLOWED_NETWORKS": [],
    #: Refresh an access token this many seconds before it expires. Default ``60``.
    "PORTAL_REFRESH_MARGIN": 60,
    #: Largest request body the proxy forwards, in bytes. Default ``10485760`` (10 MiB).
    "PORTAL_PROXY_MAX_BODY": 10 * 1024 * 1024,
    #: Public keys (PEM) that verify host-signed JWT user tokens (Paragon's ``authenticate``),
    #: per app key (the ``projectId``): ``{app_key: [pem, …]}``. Keys come from configuration
    #: only, never from a token header. Default ``{}``.
    "PORTAL_JWT_PUBLIC_KEYS": {},
    #: JWT algorithms accepted for user tokens. Default ``["RS256", "ES256"]``.
    "PORTAL_JWT_ALGORITHMS": ["RS256", "ES256"],
    #: Longest accepted JWT user-token lifetime (``exp`` - now), in seconds. Default ``86400``.
    "PORTAL_JWT_MAX_TTL": 86400,
    #: URL of the host backend's webhook receiver; ``None`` (default) disables webhooks.
    "PORTAL_WEBHOOK_URL": None,
    #: Secret signing webhooks (HMAC-SHA256). ``None`` (default): the first secret of the first
    #: entry of ``PORTAL_APP_KEYS``.
    "PORTAL_WEBHOOK_SECRET": None,
    #: Timeout of one webhook delivery, in seconds. Default ``10``.
    "PORTAL_WEBHOOK_TIMEOUT": 10.0,
    #: Delivery attempts before a webhook is given up (exponential backoff from 1 s, capped at
    #: 1 h). Default ``15``.
    "PORTAL_WEBHOOK_MAX_ATTEMPTS": 15,
    #: App events: which function each event name runs, with a params template filled from the
    #: event payload: ``{"Contact Created": [{"function": "intercom-create-contact",
    #: "params": {"email": "{email}", "name": "{name}"}}]}``. Default ``{}``.
    "PORTAL_APP_EVENTS": {},
    #: Flows the host declares (:mod:`portal.flows`): a YAML file, a directory of them, or a list
    #: of either; each file is ``{"flows": [...]}`` valid against ``portal/flows.schema.json``.
    #: End users turn each flow on and fill in its settings on the app page. ``None`` (default):
    #: no flows.
    "PORTAL_FLOWS_PATH": None,
    #: How often ``flask portal worker`` looks for work when idle, in seconds. Default ``1.0``.
    "PORTAL_WORKER_POLL_INTERVAL": 1.0,
    #: Longest time between two health checks of one connected account, in seconds (the
    #: worker checks sooner when a token that cannot be renewed expires earlier). ``0`` turns
    #: health checks off. Default ``86400`` (24 h).
    "PORTAL_HEALTH_INTERVAL": 86400,
    #: Most accounts health-checked per minute, by all workers together. Default ``60``.
    "PORTAL_HEALTH_MAX_PER_MINUTE": 60,
    #: The portal's theme (:mod:`portal.theme`, README "Theming"): a dict ``{mode, accent,
    #: radius, font, density, logo, name}`` (each optional; a session's ``theme`` overrides
    #: it key by key) or, the older form, just the mode: ``"auto"`` (follows the browser),
    #: ``"light"`` or ``"dark"``. Default ``"auto"``.
    "PORTAL_THEME": "auto",
    #: Languages the portal's pages speak, as gettext locale names (``portal/translations/``):
    #: the ``lang`` an SDK or session asks for and the browser's Accept-Language are matched
    #: against this list only. Default: every shipped catalog.
    "PORTAL_LANGUAGES": ["en", "fr", "de", "es", "ja", "pt_BR", "it", "zh_CN", "ar"],
    #: Language of a page when neither ``lang`` nor Accept-Language names a supported one; must
    #: be one of ``PORTAL_LANGUAGES``. Default ``"en"``.
    "PORTAL_DEFAULT_LANGUAGE": "en",
    #: Redis URL shared by every process of a deployment, e.g. ``"redis://127.0.0.1:6379/0"``;
    #: rate-limit counters live there. ``None`` (default): counters in process memory.
    "PORTAL_REDIS_URL": None,
    #: Enforce the ``PORTAL_RATE_LIMIT_*`` limits below (429 with ``Retry-After``). Default
    #: ``True``.
    "PORTAL_RATE_LIMITS_ENABLED": True,
    #: Prefix of every rate-limit counter key in the storage. Default ``"portal"``.
    "PORTAL_RATE_LIMIT_KEY_PREFIX": "portal",
    #: ``POST /api/v1/sessions`` per app key and origin (``"<count>/<second|minute|hour|day>"``).
    #: Default ``"60/minute"``.
    "PORTAL_RATE_LIMIT_SESSIONS": "60/minute",
    #: ``POST /api/v1/connect-tickets`` (with ``…/reconnect``) and ``/connect/<app>``, each per
    #: end user; ``POST /api/v1/connect-links`` per app key; ``/link`` per client address.
    #: Default ``"30/minute"``.
    "PORTAL_RATE_LIMIT_CONNECT": "30/minute",
    #: Proxy requests (``/api/v1/proxy/…``) per end user. Default ``"600/minute"``.
    "PORTAL_RATE_LIMIT_PROXY": "600/minute",
    #: Proxy requests per app key, all its end users together. Default ``"6000/minute"``.
    "PORTAL_RATE_LIMIT_PROXY_APP_KEY": "6000/minute",
    #: ``POST /api/v1/functions/<name>/invoke`` per end user. Default ``"300/minute"``.
    "PORTAL_RATE_LIMIT_INVOKE": "300/minute",
    #: Requests to the MCP endpoint ``/mcp`` (AI agents) per end user. Default ``"300/minute"``.
    "PORTAL_RATE_LIMIT_MCP": "300/minute",
    #: AI agents (``/mcp``, ``GET /api/v1/tools``): offer and run only functions that are not
    #: ``destructive`` in the catalog (reads). Default ``False``.
    "PORTAL_MCP_READ_ONLY": False,
    #: AI agents: the function names offered as tools, an allow-list for every project and user
    #: (a minted MCP token can narrow it further). ``None`` (default): every function of the
    #: enabled apps.
    "PORTAL_MCP_TOOLS": None,
    #: Lifetime of an MCP token minted without ``expiresIn``, in seconds. Default ``3600``.
    "PORTAL_MCP_TOKEN_TTL": 3600,
    #: Longest lifetime ``POST /api/v1/mcp-tokens`` grants (``expiresIn``), in seconds.
    #: Default ``86400``.
    "PORTAL_MCP_TOKEN_MAX_TTL": 86400,
    #: Format of the log handler the portal attaches to its ``portal`` logger: ``"text"`` or
    #: ``"json"`` (one object per line, with ``request_id``; see :mod:`portal.logs`). The handler
    #: is attached only when the host sets this key itself; the root logger is never touched.
    #: Default ``"text"``.
    "PORTAL_LOG_FORMAT": "text",
    #: Name of the cookie holding the popup's first-party session (OAuth state and PKCE verifier)
    #: when the portal runs as its own service. Default ``"portal_session"``.
    "PORTAL_SESSION_COOKIE_NAME": "portal_session",
}
