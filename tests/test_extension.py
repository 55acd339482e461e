"""portal/extension.py, portal/config.py and portal/service.py: the Flask extension, its
configuration checks, mounted mode, and the blinker signals a host subscribes to."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Api, Browser, connect_sandbox, database_config, migrations_head
from flask import Flask, request, session

from portal import ConnectPortal, accounts, current_portal, signals
from portal.config import DEFAULTS
from portal.crypto import generate_key
from portal.demo import DemoStack
from portal.errors import ConfigurationError
from portal.extension import PortalState
from portal.service import config_from_env
from portal.static_files import file_version

# --------------------------------------------------------------------------- helpers

KEYS_ONLY_APPS = {
    "sandbox-keys": {"base_url": "http://127.0.0.1:9"},
    "sandbox-basic": {"base_url": "http://127.0.0.1:9"},
}


def host_flask(tmp_path: Path, **config: Any) -> Flask:
    """A bare host Flask app with a working portal configuration (not yet initialised)."""
    app = Flask(f"host_{uuid.uuid4().hex[:8]}", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="host-secret",
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_APPS=KEYS_ONLY_APPS,
        # The shipped catalog's API-key apps need no host set-up, so they are usable at once:
        # list the two sandbox ones explicitly to keep the marketplace assertions exact.
        PORTAL_ENABLED_APPS=list(KEYS_ONLY_APPS),
        **database_config(tmp_path, uuid.uuid4().hex),
    )
    app.config.update(config)
    return app


def csrf_from(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no csrf-token meta tag"
    return match.group(1)


# --------------------------------------------------------------------------- init patterns


def test_direct_init(tmp_path: Path) -> None:
    app = host_flask(tmp_path)
    portal = ConnectPortal(app)
    state = app.extensions["portal"]
    assert isinstance(state, PortalState)
    assert state.portal is portal
    assert "portal" in app.blueprints
    response = app.test_client().get("/portal/api/v1")
    assert response.status_code == 200
    assert response.get_json() == {"name": "connect-portal", "version": 1}


def test_init_app_pattern_serves_several_apps(tmp_path: Path) -> None:
    portal = ConnectPortal()
    first, second = host_flask(tmp_path), host_flask(tmp_path, PORTAL_THEME="dark")
    portal.init_app(first)
    portal.init_app(second)
    assert first.extensions["portal"] is not second.extensions["portal"]
    assert first.extensions["portal"].store is not second.extensions["portal"].store
    # The extension keeps no app: its per-app state lives in app.extensions only.
    assert not any(isinstance(value, Flask) for value in vars(portal).values())
    with first.app_context():
        assert current_portal.config["PORTAL_THEME"] == "auto"
    with second.app_context():
        assert current_portal.config["PORTAL_THEME"] == "dark"
    for app in (first, second):
        assert app.test_client().get("/portal/api/v1").status_code == 200


def test_initialising_twice_raises_runtime_error(tmp_path: Path) -> None:
    app = host_flask(tmp_path)
    portal = ConnectPortal(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        portal.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        ConnectPortal(app)


def test_current_portal_needs_an_initialised_app(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        current_portal.config  # noqa: B018 - outside any app context
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match="not initialised"):
        current_portal.config  # noqa: B018


def test_service_create_app(stack: DemoStack, make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    root = client.get("/")
    assert root.status_code == 302
    assert root.headers["Location"].endswith("/portal/api/v1")

    # The popup's first-party session cookie (OAuth state + PKCE verifier) is its own cookie,
    # HttpOnly and SameSite=Lax, so it survives only the top-level redirect back.
    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET

    token = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": "svc", "hash": user_hash(DEMO_APP_SECRET, "svc")},
        headers={"Origin": stack.host.url},
    ).get_json()["token"]
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()
    url = urlsplit(ticket["connect_url"])
    started = client.get(f"{url.path}?{url.query}")
    assert started.status_code == 302
    cookies = [c for c in started.headers.getlist("Set-Cookie") if c.startswith("portal_session=")]
    assert len(cookies) == 1, started.headers.getlist("Set-Cookie")
    attributes = {part.strip().lower() for part in cookies[0].split(";")[1:]}
    assert "httponly" in attributes
    assert "samesite=lax" in attributes, cookies[0]


def test_service_config_from_env() -> None:
    config = config_from_env(
        {
            "PORTAL_ALLOWED_ORIGINS": '["https://a.example"]',
            "PORTAL_BASE_URL": "https://portal.example",
            "PORTAL_SESSION_TTL": "60",
            "SECRET_KEY": "s",
            "HOME": "/root",
        }
    )
    assert config == {
        "PORTAL_ALLOWED_ORIGINS": ["https://a.example"],
        "PORTAL_BASE_URL": "https://portal.example",
        "PORTAL_SESSION_TTL": 60,
        "SECRET_KEY": "s",
    }


# --------------------------------------------------------------------------- defaults


def test_every_default_is_set_and_host_values_are_kept(tmp_path: Path) -> None:
    host_values = {
        "PORTAL_THEME": "dark",
        "PORTAL_SESSION_TTL": 120,
        "PORTAL_HTTP_TIMEOUT": 3.5,
        "PORTAL_USER_ID_MAX_LENGTH": 64,
    }
    app = host_flask(tmp_path, **host_values)
    # host_flask sets these itself (and PORTAL_AUTO_MIGRATE=True on PostgreSQL).
    set_by_host_flask = {
        "PORTAL_DATABASE_URL",
        "PORTAL_ENCRYPTION_KEYS",
        "PORTAL_APPS",
        "PORTAL_ENABLED_APPS",
    }
    set_by_host_flask |= set(app.config) & {"PORTAL_AUTO_MIGRATE"}
    ConnectPortal(app)
    assert all(key.startswith("PORTAL_") for key in DEFAULTS)
    for key, default in DEFAULTS.items():
        if key in host_values:
            assert app.config[key] == host_values[key], key
        elif key not in set_by_host_flask:
            assert app.config[key] == default, key


def test_defaults_are_not_shared_between_apps(tmp_path: Path) -> None:
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config.update(
            SECRET_KEY="s",
            TESTING=True,
            **database_config(tmp_path, app.name),
        )
        ConnectPortal(app)
    # A host adding an app key to one app must not grant it on every other app (or DEFAULTS).
    first.config["PORTAL_APP_KEYS"]["first-key"] = ["first-secret"]
    first.config["PORTAL_ALLOWED_ORIGINS"].append("https://first.example")
    assert "first-key" not in second.config["PORTAL_APP_KEYS"]
    assert "https://first.example" not in second.config["PORTAL_ALLOWED_ORIGINS"]
    assert DEFAULTS["PORTAL_APP_KEYS"] == {}
    assert DEFAULTS["PORTAL_ALLOWED_ORIGINS"] == []


# --------------------------------------------------------------------------- configuration errors


def test_missing_secret_key(tmp_path: Path) -> None:
    app = host_flask(tmp_path, SECRET_KEY=None)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        ConnectPortal(app)
    assert "portal" not in app.extensions
    assert "portal" not in app.blueprints


def test_missing_encryption_keys_in_production(tmp_path: Path) -> None:
    app = host_flask(tmp_path, PORTAL_ENCRYPTION_KEYS=[])
    with pytest.raises(ConfigurationError) as info:
        ConnectPortal(app)
    message = str(info.value)
    assert "PORTAL_ENCRYPTION_KEYS" in message
    assert "flask portal generate-key" in message
    assert "python -m portal generate-key" in message
    assert "portal" not in app.extensions


@pytest.mark.parametrize("flag", ["TESTING", "DEBUG"])
def test_missing_encryption_keys_allowed_in_testing_and_debug(
    tmp_path: Path, flag: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = host_flask(tmp_path, PORTAL_ENCRYPTION_KEYS=[], **{flag: True})
    with caplog.at_level(logging.WARNING, logger="portal.extension"):
        ConnectPortal(app)
    assert "PORTAL_ENCRYPTION_KEYS" in caplog.text
    sealer = app.extensions["portal"].sealer
    assert sealer.open("ca_x", sealer.seal("ca_x", {"k": "v"})) == {"k": "v"}


def test_invalid_encryption_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PORTAL_ENCRYPTION_KEYS"):
        ConnectPortal(host_flask(tmp_path, PORTAL_ENCRYPTION_KEYS=["not-a-fernet-key"]))


def test_usable_oauth_app_requires_base_url(tmp_path: Path) -> None:
    apps = {"sandbox": {"base_url": "http://127.0.0.1:9", "client_id": "cid"}}
    with pytest.raises(ConfigurationError, match="PORTAL_BASE_URL"):
        ConnectPortal(host_flask(tmp_path, PORTAL_APPS=apps))
    # With the base URL, the same configuration starts.
    app = host_flask(tmp_path, PORTAL_APPS=apps, PORTAL_BASE_URL="https://portal.example")
    ConnectPortal(app)
    assert app.extensions["portal"].base_url == "https://portal.example"


def test_unusable_oauth_app_needs_no_base_url(tmp_path: Path) -> None:
    # The shipped sandbox app has no client id here, so no redirect URI is ever built.
    app = host_flask(tmp_path)
    ConnectPortal(app)
    assert app.extensions["portal"].base_url is None


@pytest.mark.parametrize("base_url", ["portal.example", "ftp://portal.example", "javascript:x"])
def test_bad_base_url(tmp_path: Path, base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="PORTAL_BASE_URL"):
        ConnectPortal(host_flask(tmp_path, PORTAL_BASE_URL=base_url))


@pytest.mark.parametrize(
    "origin",
    [
        "https://host.example/path",
        "host.example",
        "*",
        "null",
        "ftp://host.example",
        "https://user@host.example",
        "https://host.example?x=1",
    ],
)
def test_bad_allowed_origin(tmp_path: Path, origin: str) -> None:
    good = "https://ok.example"
    with pytest.raises(ConfigurationError, match="PORTAL_ALLOWED_ORIGINS") as info:
        ConnectPortal(host_flask(tmp_path, PORTAL_ALLOWED_ORIGINS=[good, origin]))
    assert repr(origin) in str(info.value)


def test_allowed_origins_are_normalised(tmp_path: Path) -> None:
    app = host_flask(
        tmp_path, PORTAL_ALLOWED_ORIGINS=["HTTPS://Host.Example:443/", "http://127.0.0.1:5000"]
    )
    ConnectPortal(app)
    assert app.extensions["portal"].allowed_origins == {
        "https://host.example",
        "http://127.0.0.1:5000",
    }


def test_invalid_catalog_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "broken.yaml").write_text("slug: broken\n", "utf-8")
    with pytest.raises(ConfigurationError, match="broken.yaml"):
        ConnectPortal(host_flask(tmp_path, PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")]))


def test_default_database_is_in_the_instance_folder(tmp_path: Path) -> None:
    app = host_flask(tmp_path)
    del app.config["PORTAL_DATABASE_URL"]
    ConnectPortal(app)
    assert (tmp_path / "instance" / "portal.sqlite3").is_file()
    assert app.extensions["portal"].store.current_revision() == migrations_head()


def test_auto_migrate_off_leaves_database_empty(tmp_path: Path) -> None:
    app = host_flask(tmp_path, PORTAL_AUTO_MIGRATE=False)
    ConnectPortal(app)
    assert app.extensions["portal"].store.current_revision() is None


# --------------------------------------------------------------------------- URL prefix


def test_url_prefix_is_respected(stack: DemoStack, make_app: Callable[..., Flask]) -> None:
    app = make_app(PORTAL_URL_PREFIX="/connect")
    client = app.test_client()
    assert client.get("/portal/api/v1").status_code == 404
    assert client.get("/connect/api/v1").status_code == 200
    assert client.get("/connect/static/portal.css").status_code == 200
    page = client.get("/connect/embed/apps").get_data(as_text=True)
    assert f'href="/connect/static/portal.css?v={file_version("portal.css")}"' in page
    assert 'data-portal-api="/connect/api/v1"' in page

    from portal import user_hash
    from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET

    created = client.post(
        "/connect/api/v1/sessions",
        json={
            "appKey": DEMO_APP_KEY,
            "userId": "prefixed",
            "hash": user_hash(DEMO_APP_SECRET, "prefixed"),
        },
        headers={"Origin": stack.host.url},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    ticket = client.post(
        "/connect/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers={"Authorization": f"Bearer {created.get_json()['token']}"},
    ).get_json()
    connect_url = urlsplit(ticket["connect_url"])
    assert connect_url.path == "/connect/connect/sandbox"
    started = client.get(f"{connect_url.path}?{connect_url.query}")
    assert started.status_code == 302
    params = parse_qs(urlsplit(started.headers["Location"]).query)
    assert params["redirect_uri"] == [f"{stack.portal.url}/connect/oauth/sandbox/callback"]


# --------------------------------------------------------------------------- mounted mode


def mounted_host(tmp_path: Path) -> tuple[Flask, ConnectPortal]:
    """A host app with its own session login and the portal mounted on it."""
    app = host_flask(tmp_path)
    portal = ConnectPortal()

    @app.post("/login")
    def login() -> str:
        session["user"] = request.form["user"]
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        session.clear()
        return "bye"

    @portal.user_loader
    def current_user() -> str | None:
        return session.get("user")

    portal.init_app(app)
    return app, portal


def seed_account(
    app: Flask,
    user: str,
    app_slug: str = "sandbox-keys",
    external_id: str = "key-1",
    label: str = "Ada Analytics",
) -> str:
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = accounts.upsert_account(
            db,
            state.sealer,
            project=state.mounted_project,  # the host's logged-in users' project
            user_id=user,
            app=app_slug,
            external_id=external_id,
            label=label,
            scopes=[],
            credentials={"type": "api_key", "api_key": "sk_live_secret"},
            expires_at=None,
        )
        return account.id


def test_mounted_marketplace_shows_the_logged_in_users_accounts(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    seed_account(app, "alice")
    alice = app.test_client()
    alice.post("/login", data={"user": "alice"})
    response = alice.get("/portal/apps")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-portal-mounted="1"' in html
    assert csrf_from(html)
    assert 'id="portal-app-grid"' in html
    assert f'href="/portal/static/portal.css?v={file_version("portal.css")}"' in html
    cards = re.findall(r'<a class="portal-card([^"]*)"[^>]*>.*?</a>', html, re.S)
    titles = re.findall(r'<span class="portal-card__title">([^<]+)</span>', html)
    assert set(titles) == {"Sandbox Analytics", "Sandbox Files"}
    connected = dict(zip(titles, [" portal-card--connected" in c for c in cards], strict=True))
    assert connected == {"Sandbox Analytics": True, "Sandbox Files": False}

    bob = app.test_client()
    bob.post("/login", data={"user": "bob"})
    assert "portal-card--connected" not in bob.get("/portal/apps").get_data(as_text=True)


def test_mounted_app_page_lists_accounts(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    account_id = seed_account(app, "alice", label="Ada <b>Analytics</b>")
    client = app.test_client()
    client.post("/login", data={"user": "alice"})
    html = client.get("/portal/apps/sandbox-keys").get_data(as_text=True)
    assert f'data-portal-account-id="{account_id}"' in html
    assert "Ada &lt;b&gt;Analytics&lt;/b&gt;" in html
    assert "<b>Analytics</b>" not in html
    assert "sk_live_secret" not in html


def test_mounted_pages_without_login_answer_401(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    seed_account(app, "alice")
    client = app.test_client()
    for path in ("/portal/apps", "/portal/apps/sandbox-keys"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == "text/html"
        assert "portal-error" in response.get_data(as_text=True)
        assert "Ada Analytics" not in response.get_data(as_text=True)
    api = client.get("/portal/api/v1/connected-accounts")
    assert api.status_code == 401
    assert api.get_json()["error"] == "unauthorized"


def test_mounted_pages_need_a_user_loader(tmp_path: Path) -> None:
    app = host_flask(tmp_path)
    ConnectPortal(app)
    assert app.test_client().get("/portal/apps").status_code == 404


def test_mounted_api_uses_cookie_session_and_csrf(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    account_id = seed_account(app, "alice")
    other_id = seed_account(app, "alice", external_id="key-2", label="Second key")
    client = app.test_client()
    client.post("/login", data={"user": "alice"})

    token = csrf_from(client.get("/portal/apps").get_data(as_text=True))
    proof = {"X-CSRFToken": token}
    listed = client.get("/portal/api/v1/connected-accounts", headers=proof)
    assert listed.status_code == 200
    assert {a["id"] for a in listed.get_json()["connected_accounts"]} == {account_id, other_id}
    session_info = client.get("/portal/api/v1/session", headers=proof).get_json()
    assert session_info["user_id"] == "alice"

    no_csrf = client.delete(f"/portal/api/v1/connected-accounts/{account_id}")
    assert no_csrf.status_code == 403
    assert no_csrf.get_json()["error"] == "csrf_failed"
    bad_csrf = client.delete(
        f"/portal/api/v1/connected-accounts/{account_id}", headers={"X-CSRFToken": "forged"}
    )
    assert bad_csrf.status_code == 403
    assert bad_csrf.get_json()["error"] == "csrf_failed"
    still = client.get(f"/portal/api/v1/connected-accounts/{account_id}", headers=proof)
    assert still.status_code == 200

    deleted = client.delete(
        f"/portal/api/v1/connected-accounts/{account_id}", headers={"X-CSRFToken": token}
    )
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    body = deleted.get_json()
    assert body["connectedAccountId"] == account_id
    assert [a["id"] for a in body["connected_accounts"]] == [other_id]
    gone = client.get(f"/portal/api/v1/connected-accounts/{account_id}", headers=proof)
    assert gone.status_code == 404


def test_mounted_csrf_token_of_another_session_is_refused(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    account_id = seed_account(app, "alice")
    mallory = app.test_client()
    mallory.post("/login", data={"user": "mallory"})
    stolen = csrf_from(mallory.get("/portal/apps").get_data(as_text=True))
    alice = app.test_client()
    alice.post("/login", data={"user": "alice"})
    alice.get("/portal/apps")  # alice has a CSRF session token of her own
    response = alice.delete(
        f"/portal/api/v1/connected-accounts/{account_id}", headers={"X-CSRFToken": stolen}
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "csrf_failed"


def test_mounted_connect_ticket_needs_csrf(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    client = app.test_client()
    client.post("/login", data={"user": "alice"})
    body = {"app": "sandbox-keys", "opener": "frame"}
    refused = client.post("/portal/api/v1/connect-tickets", json=body)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "csrf_failed"
    token = csrf_from(client.get("/portal/apps").get_data(as_text=True))
    created = client.post(
        "/portal/api/v1/connect-tickets", json=body, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["ticket"]


def test_mounted_user_cannot_touch_another_users_account(tmp_path: Path) -> None:
    app, _ = mounted_host(tmp_path)
    alices = seed_account(app, "alice")
    bob = app.test_client()
    bob.post("/login", data={"user": "bob"})
    token = csrf_from(bob.get("/portal/apps").get_data(as_text=True))
    peek = bob.get(f"/portal/api/v1/connected-accounts/{alices}", headers={"X-CSRFToken": token})
    assert peek.status_code == 404
    response = bob.delete(
        f"/portal/api/v1/connected-accounts/{alices}", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 404
    with app.app_context(), current_portal.store.session() as db:
        project = current_portal.mounted_project
        assert accounts.get_account(db, "alice", alices, project=project).id == alices


# --------------------------------------------------------------------------- signals


class Recorder:
    """Collects (sender, kwargs) of every signal it receives, from any thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((sender, kwargs))


def connected_account_id(callback_html: str) -> str:
    match = re.search(r'"connectedAccountId":\s*"([^"]+)"', callback_html)
    assert match, callback_html[:1000]
    return match.group(1)


def test_account_connected_signal(stack: DemoStack, sandbox: str, api: Api) -> None:
    recorder = Recorder()
    with signals.account_connected.connected_to(recorder, sender=stack.portal_app):
        first, _ = connect_sandbox(api)
        second, _ = connect_sandbox(api)  # same sandbox user again: a reconnect
    assert first.status_code == 200 and second.status_code == 200
    mine = [(s, kw) for s, kw in recorder.calls if kw.get("user_id") == api.user_id]
    assert len(mine) == 2
    (sender, created), (_, reconnected) = mine
    assert sender is stack.portal_app
    assert set(created) == {"user_id", "app", "account", "created"}
    assert created["app"] == "sandbox"
    assert created["created"] is True
    assert reconnected["created"] is False
    account = created["account"]
    assert account["id"] == connected_account_id(first.text)
    assert account["app"] == "sandbox"
    assert account["status"] == "active"
    assert set(account) == {
        "id",
        "app",
        "label",
        "external_id",
        "status",
        "scopes",
        "created_at",
        "modified_at",
        "metadata",
    }
    assert reconnected["account"]["id"] == account["id"]
    datetime.fromisoformat(account["created_at"].replace("Z", "+00:00")).astimezone(UTC)


def test_connect_failed_signal(stack: DemoStack, sandbox: str, api: Api) -> None:
    recorder = Recorder()
    connected = Recorder()
    browser = Browser()
    with (
        signals.connect_failed.connected_to(recorder, sender=stack.portal_app),
        signals.account_connected.connected_to(connected, sender=stack.portal_app),
    ):
        ticket = api.ticket("sandbox")
        started = browser.start(ticket["connect_url"])
        consent = browser.consent(started.headers["Location"], decision="deny")
        result = browser.callback(consent.callback_url)
    assert result.status_code == 400
    mine = [kw for _, kw in recorder.calls if kw.get("user_id") == api.user_id]
    assert mine == [
        {
            "user_id": api.user_id,
            "app": "sandbox",
            "error": "access_denied",
            "message": mine[0]["message"],
        }
    ]
    assert isinstance(mine[0]["message"], str) and mine[0]["message"]
    assert not [kw for _, kw in connected.calls if kw.get("user_id") == api.user_id]
    assert api.get("/connected-accounts").json()["connected_accounts"] == []


def test_account_disconnected_signal(stack: DemoStack, sandbox: str, api: Api) -> None:
    callback, _ = connect_sandbox(api)
    account_id = connected_account_id(callback.text)
    recorder = Recorder()
    with signals.account_disconnected.connected_to(recorder, sender=stack.portal_app):
        response = api.delete(f"/connected-accounts/{account_id}")
    assert response.status_code == 200, response.text
    mine = [(s, kw) for s, kw in recorder.calls if kw.get("user_id") == api.user_id]
    assert len(mine) == 1
    sender, kwargs = mine[0]
    assert sender is stack.portal_app
    assert set(kwargs) == {"user_id", "app", "account", "revoked"}
    assert kwargs["app"] == "sandbox"
    assert kwargs["account"]["id"] == account_id
    assert kwargs["revoked"] is True  # the sandbox implements RFC 7009 revocation
    assert "access_token" not in repr(kwargs)


# --------------------------------------------------------------------------- start-up warnings


@pytest.mark.parametrize(
    "placeholder", ["…", "...", "<client id>", "your-client-id", "CHANGEME", ""]
)
def test_placeholder_client_id_is_not_configured(tmp_path: Path, placeholder: str) -> None:
    """A client id copied from a README (``"…"``) does not make the app "ready"."""
    app = host_flask(
        tmp_path,
        PORTAL_BASE_URL="https://portal.example",
        PORTAL_APPS={**KEYS_ONLY_APPS, "slack": {"client_id": placeholder, "client_secret": "s"}},
    )
    ConnectPortal(app)
    slack = app.extensions["portal"].catalog.get("slack")
    assert slack is not None and not slack.usable
    assert "client_id" in slack.missing


def test_real_looking_client_id_is_configured(tmp_path: Path) -> None:
    app = host_flask(
        tmp_path,
        PORTAL_BASE_URL="https://portal.example",
        PORTAL_APPS={**KEYS_ONLY_APPS, "slack": {"client_id": "1234.5678", "client_secret": "s"}},
    )
    ConnectPortal(app)
    assert app.extensions["portal"].catalog.get("slack").usable


def test_start_up_names_every_enabled_app_that_will_not_show(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = host_flask(
        tmp_path,
        PORTAL_BASE_URL="https://portal.example",
        PORTAL_APPS={**KEYS_ONLY_APPS, "slack": {"client_id": "…", "client_secret": "…"}},
        PORTAL_ENABLED_APPS=[*KEYS_ONLY_APPS, "slack", "hubspot", "no-such-app"],
    )
    with caplog.at_level("WARNING", logger="portal"):
        ConnectPortal(app)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'slack'" in line and "client_id" in line for line in lines), lines
    assert any("'hubspot'" in line and "client_id" in line for line in lines), lines
    assert any("'no-such-app'" in line and "not in the catalog" in line for line in lines), lines
    assert not any(slug in " ".join(lines) for slug in KEYS_ONLY_APPS)
