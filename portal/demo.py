"""The demo that ``make demo`` runs: a host app, the portal and the sandbox provider.

Three servers on three origins, so the demo really is cross-origin::

    host app   http://127.0.0.1:5000   (the "SaaS product"; its page embeds the portal 3 ways)
    portal     http://localhost:5001   (this package, as its own service)
    sandbox    http://127.0.0.1:5002   (the built-in OAuth 2.0 provider)

SQLite in the portal's instance folder, no credentials, nothing to configure. Run it with
``python -m portal.demo`` (``--help`` for ports).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask, abort, render_template, request

from ._paths import STATIC_DIR, TEMPLATES_DIR
from ._serving import ServerThread
from .auth import normalize_origin, sign_user_token, user_hash
from .flows import EXAMPLES_DIR
from .webhooks import SIGNATURE_HEADER, WebhookVerificationError, verify_webhook
from .worker import Worker

DEMO_APP_KEY = "demo-app-key"
DEMO_APP_SECRET = "demo-app-secret-change-me"  # demo only: a real host keeps this secret
DEMO_CLIENT_ID = "connect-portal-demo"
DEMO_CLIENT_SECRET = "demo-client-secret"
#: The sandbox client of ``sandbox-post`` (client_secret_post at the token endpoint).
DEMO_POST_CLIENT_ID = "connect-portal-demo-post"
DEMO_POST_CLIENT_SECRET = "demo-post-client-secret"
#: Machine-to-machine clients an end user types into ``sandbox-m2m`` (client credentials).
DEMO_M2M_CLIENTS = {
    "m2m_ada": ("m2m-secret-ada", "ada"),
    "m2m_grace": ("m2m-secret-grace", "grace"),
}
#: The demo marketplace, in order: every sandbox app (one per auth method and quirk).
DEMO_ENABLED_APPS = (
    "sandbox-keys",
    "sandbox",
    "sandbox-basic",
    "sandbox-m2m",
    "sandbox-regional",
    "sandbox-tenant-keys",
    "sandbox-nested",
    "sandbox-forever",
    "sandbox-post",
    "sandbox-quirks",
)
#: Sandbox OAuth apps that use the demo client (client_secret_basic).
DEMO_OAUTH_APPS = (
    "sandbox",
    "sandbox-regional",
    "sandbox-nested",
    "sandbox-forever",
    "sandbox-quirks",
)
# A fixed key so demo accounts survive restarts. Never use it outside the demo.
DEMO_ENCRYPTION_KEY = "ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q="
DEMO_USERS = ("demo-user-1", "demo-user-2")
#: The demo's app events: "Contact Created" adds the contact to the user's Sandbox CRM.
DEMO_APP_EVENTS: dict[str, list[dict[str, Any]]] = {
    "Contact Created": [
        {"function": "sandbox-create-contact", "params": {"name": "{name}", "email": "{email}"}}
    ]
}
#: The demo host's flow (``portal/flow_examples/sandbox.yaml``): "When a contact is created
#: here, create it in Sandbox CRM", with a tag each end user sets on the Sandbox CRM app page.
#: ``python -m portal.demo`` runs "Contact Created" through it (instead of
#: :data:`DEMO_APP_EVENTS`), so the App Event button runs only for users who turned it on.
DEMO_FLOWS: dict[str, Any] = {
    "PORTAL_FLOWS_PATH": str(EXAMPLES_DIR / "sandbox.yaml"),
    "PORTAL_APP_EVENTS": {},
}
#: Where the demo host app receives the portal's webhooks.
DEMO_WEBHOOK_PATH = "/webhooks/portal"


def sandbox_app_settings(sandbox_url: str) -> dict[str, dict[str, Any]]:
    """``PORTAL_APPS`` entries enabling every sandbox app against ``sandbox_url``."""
    oauth = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    return {
        **{slug: {"base_url": sandbox_url, **oauth} for slug in DEMO_OAUTH_APPS},
        "sandbox-post": {
            "base_url": sandbox_url,
            "client_id": DEMO_POST_CLIENT_ID,
            "client_secret": DEMO_POST_CLIENT_SECRET,
        },
        "sandbox-keys": {"base_url": sandbox_url},
        "sandbox-basic": {"base_url": sandbox_url},
        "sandbox-m2m": {"base_url": sandbox_url},
        "sandbox-tenant-keys": {"base_url": sandbox_url},
    }


def portal_config(
    portal_url: str, sandbox_url: str, host_origins: list[str], **overrides: Any
) -> dict[str, Any]:
    """Configuration of the portal service for the demo (and the tests)."""
    config: dict[str, Any] = {
        "SECRET_KEY": "demo-secret-key-change-me",
        "PORTAL_BASE_URL": portal_url,
        "PORTAL_ALLOWED_ORIGINS": host_origins,
        "PORTAL_APP_KEYS": {DEMO_APP_KEY: [DEMO_APP_SECRET]},
        "PORTAL_ENCRYPTION_KEYS": [DEMO_ENCRYPTION_KEY],
        "PORTAL_APPS": sandbox_app_settings(sandbox_url),
        "PORTAL_APP_EVENTS": DEMO_APP_EVENTS,
        # Every demo (and test) user shares one app key and one host origin.
        "PORTAL_RATE_LIMIT_SESSIONS": "6000/minute",
    }
    config.update(overrides)
    return config


def demo_jwt_keypair() -> tuple[str, str]:
    """A fresh RSA key pair ``(private PEM, public PEM)`` for the demo's JWT user tokens.

    Generated at every start: the host app signs user tokens with the private key
    (:func:`~portal.auth.sign_user_token`), the portal trusts the public one through
    ``PORTAL_JWT_PUBLIC_KEYS``.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def sandbox_config(sandbox_url: str, portal_url: str, **overrides: Any) -> dict[str, Any]:
    """Configuration of the sandbox provider with the portal registered as its client."""
    config: dict[str, Any] = {
        "SECRET_KEY": "demo-sandbox-secret",
        "SANDBOX_ISSUER": sandbox_url,
        "SANDBOX_CLIENTS": [
            {
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "client_name": "Connect Portal demo",
                "redirect_uris": [
                    f"{portal_url}/portal/oauth/{slug}/callback" for slug in DEMO_OAUTH_APPS
                ],
                "scope": "openid profile contacts.read contacts.write contacts.delete",
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {
                "client_id": DEMO_POST_CLIENT_ID,
                "client_secret": DEMO_POST_CLIENT_SECRET,
                "client_name": "Connect Portal demo (form-body client)",
                "redirect_uris": [f"{portal_url}/portal/oauth/sandbox-post/callback"],
                "scope": "openid profile contacts.read contacts.write contacts.delete",
                "token_endpoint_auth_method": "client_secret_post",
            },
            *(
                {
                    "client_id": client_id,
                    "client_secret": secret,
                    "client_name": f"Machine client of {user}",
                    "grant_types": ["client_credentials"],
                    "user": user,
                    "scope": "profile contacts.read",
                }
                for client_id, (secret, user) in DEMO_M2M_CLIENTS.items()
            ),
        ],
    }
    config.update(overrides)
    return config


def create_host_app(
    portal_url: str,
    app_key: str = DEMO_APP_KEY,
    app_secret: str = DEMO_APP_SECRET,
    jwt_private_key: str | None = None,
    *,
    sandbox_url: str | None = None,
    run_health_checks: Callable[[], int] | None = None,
) -> Flask:
    """The demo host app: one page showing the three ways to embed the portal.

    Its backend computes the user ``hash`` (script-tag mode) and mints an embed token
    server-to-server (iframe mode), exactly as a real host backend would. The connection
    lifecycle card uses the server API the same way (:func:`_add_lifecycle_routes`); with
    ``sandbox_url`` and ``run_health_checks`` it also gets the demo-only fault switch.
    """
    app = Flask(
        "portal.demo_host",
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
        static_url_path="/demo-static",
    )
    app.config["SESSION_COOKIE_NAME"] = "host_session"
    # Webhooks the portal sent (newest last, de-duplicated by id), shown on the page.
    received: list[dict[str, Any]] = []
    received_lock = threading.Lock()
    app.extensions["demo_webhooks"] = received

    @app.post(DEMO_WEBHOOK_PATH)
    def receive_webhook() -> tuple[str, int]:
        # A real host does exactly this: verify the signature over the raw body, then
        # de-duplicate by id (delivery is at least once).
        try:
            event = verify_webhook(
                request.get_data(), request.headers.get(SIGNATURE_HEADER), app_secret
            )
        except WebhookVerificationError as exc:
            return str(exc), 400
        with received_lock:
            if all(seen["id"] != event["id"] for seen in received):
                received.append(event)
                del received[:-100]
        return "", 204

    @app.get("/demo/events/<event_id>")
    def show_event(event_id: str) -> Any:
        # The host backend reads one of its user's events (the runs' outcome) with its secret.
        user_id = request.args.get("user", "")
        if user_id not in DEMO_USERS:
            abort(400)
        response = requests.get(
            f"{portal_url}/portal/api/v1/events/{event_id}",
            headers={"Authorization": f"Bearer {app_secret}", "X-Portal-User-Id": user_id},
            timeout=5,
        )
        return response.json(), response.status_code

    _add_lifecycle_routes(app, portal_url, app_secret, sandbox_url, run_health_checks)

    @app.get(DEMO_WEBHOOK_PATH)
    def list_webhooks() -> Any:
        with received_lock:
            return {"webhooks": list(reversed(received))}

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {portal_url}; frame-src {portal_url}; "
            f"connect-src 'self' {portal_url}; img-src 'self' {portal_url} data:; "
            "style-src 'self'; object-src 'none'; base-uri 'none'"
        )
        return response

    @app.get("/")
    def index() -> str:
        user_id = request.args.get("user", DEMO_USERS[0])
        if user_id not in DEMO_USERS:
            abort(400)
        origin = normalize_origin(request.host_url.rstrip("/")) or ""
        embed_token = None
        try:
            response = requests.post(
                f"{portal_url}/portal/api/v1/sessions",
                json={"userId": user_id, "origin": origin},
                headers={"Authorization": f"Bearer {app_secret}"},
                timeout=5,
            )
            if response.status_code == 201:
                embed_token = response.json()["token"]
        except requests.RequestException:
            pass
        return render_template(
            "portal/demo/host.html",
            portal_url=portal_url,
            app_key=app_key,
            user_id=user_id,
            users=DEMO_USERS,
            hash=user_hash(app_secret, user_id),
            embed_token=embed_token,
            webhooks=list(reversed(received)),
            # Paragon-style authenticate(): a short-lived JWT the backend signs for this user.
            user_token=(
                sign_user_token(jwt_private_key, user_id, app_key, ttl=900)
                if jwt_private_key
                else ""
            ),
        )

    return app


def _demo_user(value: Any) -> str:
    """``value`` when it is a demo user, else a 400."""
    if value not in DEMO_USERS:
        abort(400)
    return str(value)


def _add_lifecycle_routes(
    app: Flask,
    portal_url: str,
    app_secret: str,
    sandbox_url: str | None,
    run_health_checks: Callable[[], int] | None,
) -> None:
    """The host backend of the demo's connection-lifecycle card, over the portal's server API
    with the app secret (as a real host backend would):

    * ``POST /demo/connect-link`` ``{user, app?}``: a hosted connect link (no ``app``: the
      marketplace) that comes back to this page; answers the portal's ``{id, url, expires_at}``;
    * ``GET /demo/accounts?user=``: the user's accounts, each with the reason of an unhealthy
      one (``GET /admin/unhealthy-accounts``);
    * ``POST /demo/sandbox-fault`` ``{on}``: demo only, the sandbox's ``reject_credentials``
      fault on or off; on, then a health check of every account right away (the worker would
      take up to a day), so an API-key account turns ``needs_reauth`` with its reason.
    """
    server = {"Authorization": f"Bearer {app_secret}"}

    @app.post("/demo/connect-link")
    def demo_connect_link() -> Any:
        body = request.get_json(silent=True) or {}
        user_id = _demo_user(body.get("user"))
        wanted = {"userId": user_id, "successUrl": f"{request.host_url}?user={user_id}"}
        if body.get("app"):
            wanted["app"] = str(body["app"])
        response = requests.post(
            f"{portal_url}/portal/api/v1/connect-links", json=wanted, headers=server, timeout=5
        )
        return response.json(), response.status_code

    @app.get("/demo/accounts")
    def demo_accounts() -> Any:
        user_id = _demo_user(request.args.get("user"))
        listed = requests.get(
            f"{portal_url}/portal/api/v1/connected-accounts",
            headers={**server, "X-Portal-User-Id": user_id},
            timeout=5,
        )
        unhealthy = requests.get(
            f"{portal_url}/portal/api/v1/admin/unhealthy-accounts", headers=server, timeout=5
        )
        if listed.status_code != 200 or unhealthy.status_code != 200:
            return {"error": "portal_unavailable"}, 502
        reasons = {a["id"]: a.get("reason") for a in unhealthy.json()["accounts"]}
        accounts = [
            {**a, "reason": reasons.get(a["id"])} for a in listed.json()["connected_accounts"]
        ]
        return {"accounts": accounts}

    @app.post("/demo/sandbox-fault")
    def demo_sandbox_fault() -> Any:
        if sandbox_url is None or run_health_checks is None:
            abort(404)
        on = bool((request.get_json(silent=True) or {}).get("on"))
        requests.post(
            f"{sandbox_url}/_sandbox/faults",
            json={"api": "reject_credentials" if on else None},
            timeout=5,
        ).raise_for_status()
        return {"fault": on, "checked": run_health_checks() if on else 0}


class DemoStack:
    """The three demo servers, started together; used by ``make demo`` and the e2e tests.

    The portal sends its webhooks to the host app's ``/webhooks/portal`` (unless
    ``PORTAL_WEBHOOK_URL`` is overridden), and a :class:`~portal.worker.Worker` thread delivers
    them and runs app events while the stack runs (``worker=False``: no thread; tests then drive
    :func:`portal.worker.run_once` themselves).
    """

    def __init__(
        self,
        host_port: int = 5000,
        portal_port: int = 5001,
        sandbox_port: int = 5002,
        database_url: str | None = None,
        *,
        worker: bool = True,
        **portal_overrides: Any,
    ) -> None:
        from .sandbox import create_app as create_sandbox
        from .service import create_app as create_portal

        self.host = ServerThread("127.0.0.1", host_port)
        self.portal = ServerThread("127.0.0.1", portal_port, url_host="localhost")
        self.sandbox = ServerThread("127.0.0.1", sandbox_port)
        overrides = dict(portal_overrides)
        if database_url:
            overrides["PORTAL_DATABASE_URL"] = database_url
        overrides.setdefault("PORTAL_WEBHOOK_URL", self.host.url + DEMO_WEBHOOK_PATH)
        # Only the sandbox apps work without real accounts: the rest of the catalog stays out
        # of the demo marketplace (PORTAL_ENABLED_APPS=None shows every usable app).
        overrides.setdefault("PORTAL_ENABLED_APPS", list(DEMO_ENABLED_APPS))
        #: The host app's JWT signing key; the portal trusts its public half.
        self.jwt_private_key, jwt_public_key = demo_jwt_keypair()
        overrides.setdefault("PORTAL_JWT_PUBLIC_KEYS", {DEMO_APP_KEY: [jwt_public_key]})
        self.portal_app = create_portal(
            portal_config(self.portal.url, self.sandbox.url, [self.host.url], **overrides)
        )
        self.sandbox_app = create_sandbox(sandbox_config(self.sandbox.url, self.portal.url))
        self.host_app = create_host_app(
            self.portal.url,
            jwt_private_key=self.jwt_private_key,
            sandbox_url=self.sandbox.url,
            run_health_checks=self.run_health_checks,
        )
        self.worker = Worker(self.portal_app) if worker else None

    def start(self) -> DemoStack:
        """Start all three servers."""
        self.sandbox.start(self.sandbox_app)
        self.portal.start(self.portal_app)
        self.host.start(self.host_app)
        if self.worker is not None:
            self.worker.start()
        return self

    def run_health_checks(self) -> int:
        """Check every account's health now (demo only: as if a day had passed, so each one is
        due); returns how many were checked (:func:`portal.health.check_due`)."""
        from datetime import timedelta

        from .health import check_due
        from .store import utcnow

        with self.portal_app.app_context():
            state = self.portal_app.extensions["portal"]
            return check_due(state, utcnow() + timedelta(days=2), limit=500)

    @property
    def mcp_url(self) -> str:
        """The portal's MCP endpoint (AI agents, :mod:`portal.mcp`)."""
        return f"{self.portal.url}/portal/mcp"

    def mcp_token(self, user_id: str = DEMO_USERS[0]) -> str:
        """An MCP token for ``user_id`` of the demo project, valid ``PORTAL_MCP_TOKEN_MAX_TTL``
        seconds (as ``POST /portal/api/v1/mcp-tokens`` mints it)."""
        from .agents import AgentScope, mint_token

        config = self.portal_app.config
        token, _ = mint_token(
            config["SECRET_KEY"],
            AgentScope(DEMO_APP_KEY, user_id),
            int(config["PORTAL_MCP_TOKEN_MAX_TTL"]),
        )
        return token

    def stop(self) -> None:
        """Stop the worker thread, then all three servers."""
        if self.worker is not None:
            self.worker.stop()
        for server in (self.host, self.portal, self.sandbox):
            server.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m portal.demo``."""
    parser = argparse.ArgumentParser(description="Run the Connect Portal demo.")
    parser.add_argument("--host-port", type=int, default=5000)
    parser.add_argument("--portal-port", type=int, default=5001)
    parser.add_argument("--sandbox-port", type=int, default=5002)
    parser.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="PORTAL_LOG_FORMAT"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PORTAL_DATABASE_URL (default: an SQLite file in the instance folder)",
    )
    args = parser.parse_args(argv)
    stack = DemoStack(
        args.host_port,
        args.portal_port,
        args.sandbox_port,
        args.database_url,
        PORTAL_LOG_FORMAT=args.log_format,
        **DEMO_FLOWS,
    ).start()
    print(
        "\nConnect Portal demo is running:\n"
        f"  open  {stack.host.url}/   (the host app; it embeds the portal three ways)\n"
        f"  portal   {stack.portal.url}/portal/  ·  sandbox provider {stack.sandbox.url}/\n"
        "  sandbox users: ada, grace, linus (consent page; no password)\n"
        f"  AI agents (MCP)  {stack.mcp_url}  as {DEMO_USERS[0]}, for 24 h, with the header\n"
        f"    Authorization: Bearer {stack.mcp_token()}\n"
        "Press Ctrl+C to stop.\n",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stack.stop()


if __name__ == "__main__":
    main()
