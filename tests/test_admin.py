"""The operators' page (``/portal/admin``) and ``GET /portal/api/v1/admin/apps``: who may see
them, what they show, and that they never show a secret."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import event

from portal import ConnectPortal
from portal import accounts as account_service
from portal.service import create_app
from portal.store import ConnectedAccount

BASE_URL = "https://portal.example"
SECRET = "app-secret-for-operators"
CLIENT_SECRET = "hubspot-client-secret-never-shown"
TOKEN = "access-token-never-shown"
BEARER = {"Authorization": f"Bearer {SECRET}"}


def config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    values = {
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "PORTAL_BASE_URL": BASE_URL,
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "PORTAL_APP_KEYS": {"host": [SECRET]},
        "PORTAL_APPS": {
            "hubspot": {"client_id": "hubspot-client-id", "client_secret": CLIENT_SECRET},
            "sandbox-keys": {"base_url": "https://sandbox.example"},
        },
    }
    values.update(overrides)
    return values


def add_account(app: Flask, slug: str, user: str, external_id: str, status: str) -> str:
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project="host",  # the only app key of config()
            user_id=user,
            app=slug,
            external_id=external_id,
            label=f"{external_id}@example.com",
            scopes=[],
            credentials={"type": "oauth2", "access_token": TOKEN},
            expires_at=None,
        )
        account.status = status
        return str(account.id)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, list[str]]]:
    """The portal service with accounts: hubspot 2 active + 2 needs_reauth, sandbox-keys 1."""
    app = create_app(config(tmp_path_factory.mktemp("admin")))
    stale = [
        add_account(app, "hubspot", "u1", "h-1", "needs_reauth"),
        add_account(app, "hubspot", "u2", "h-2", "needs_reauth"),
    ]
    add_account(app, "hubspot", "u1", "h-3", "active")
    add_account(app, "hubspot", "u3", "h-4", "active")
    add_account(app, "sandbox-keys", "u1", "k-1", "active")
    yield app, stale


def test_refused_without_credentials(service: tuple[Flask, list[str]]) -> None:
    app, _ = service
    client = app.test_client()
    page = client.get("/portal/admin")
    assert page.status_code == 401
    text = page.get_data(as_text=True)
    assert "Operators only" in text and 'name="app_secret"' in text
    assert "hubspot" not in text.lower()
    for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + SECRET}):
        api = client.get("/portal/api/v1/admin/apps", headers=bad)
        assert api.status_code == 401
        assert api.get_json()["error"] == "admin_only"
    # A session-style bearer that is not an app secret is refused too.
    wrong_form = client.post("/portal/admin", data={"app_secret": "nope"})
    assert wrong_form.status_code == 401
    assert "not an app secret" in wrong_form.get_data(as_text=True)
    assert client.post("/portal/admin", data={"app_secret": "x" * 5000}).status_code == 401


def test_overview_json_counts_and_setup(service: tuple[Flask, list[str]]) -> None:
    app, stale = service
    response = app.test_client().get("/portal/api/v1/admin/apps", headers=BEARER)
    assert response.status_code == 200
    data = response.get_json()
    apps = {a["name"]: a for a in data["apps"]}
    assert set(apps) == {a.slug for a in app.extensions["portal"].catalog}

    hubspot = apps["hubspot"]
    assert hubspot["configured"] is True
    assert hubspot["accounts"] == {"total": 4, "active": 2, "needs_reauth": 2}
    assert hubspot["needs_reauth"] == 2
    assert sorted(hubspot["needs_reauth_ids"]) == sorted(stale)
    assert apps["sandbox-keys"]["accounts"] == {"total": 1, "active": 1}
    assert data["totals"]["accounts"] == 5 and data["totals"]["needs_reauth"] == 2

    intercom = apps["intercom"]  # an OAuth app nobody registered
    assert intercom["configured"] is False and intercom["missing"] == ["client_id"]
    assert intercom["redirect_url"] == f"{BASE_URL}/portal/oauth/intercom/callback"
    assert intercom["docs_url"].startswith("https://")
    needed = {s["env"]: s for s in intercom["settings"]}
    assert needed["PORTAL_INTERCOM_CLIENT_ID"]["needed"] is True
    assert needed["PORTAL_INTERCOM_CLIENT_ID"]["config"] == "PORTAL_APPS['intercom']['client_id']"
    assert apps["sandbox-keys"]["redirect_url"] is None  # API key: nothing to register

    # Configured first, then by title.
    flags = [a["configured"] for a in data["apps"]]
    assert flags == sorted(flags, reverse=True)
    body = response.get_data(as_text=True)
    assert CLIENT_SECRET not in body and TOKEN not in body and SECRET not in body


def test_admin_page_html(service: tuple[Flask, list[str]]) -> None:
    app, stale = service
    response = app.test_client().get("/portal/admin", headers=BEARER)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    text = html.unescape(response.get_data(as_text=True))
    ready, todo = text.split('id="portal-admin-todo"')
    assert "HubSpot" in ready and "Intercom" not in ready
    for account_id in stale:
        assert account_id in ready
    assert "Intercom" in todo
    assert f"{BASE_URL}/portal/oauth/intercom/callback" in todo
    assert "PORTAL_INTERCOM_CLIENT_ID" in todo and "PORTAL_APPS['intercom']['client_id']" in todo
    intercom = app.extensions["portal"].catalog.get("intercom")
    assert intercom.docs_url in todo
    assert CLIENT_SECRET not in text and TOKEN not in text and SECRET not in text
    assert " style=" not in text


def test_form_sign_in_shows_the_page_and_keeps_nothing(service: tuple[Flask, list[str]]) -> None:
    app, _ = service
    client = app.test_client()
    response = client.post("/portal/admin", data={"app_secret": SECRET})
    assert response.status_code == 200
    assert 'id="portal-admin-todo"' in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert client.get("/portal/admin").status_code == 401


def test_two_queries_whatever_the_catalog_size(service: tuple[Flask, list[str]]) -> None:
    app, _ = service
    engine = app.extensions["portal"].store.engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if ConnectedAccount.__tablename__ in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert app.test_client().get("/portal/admin", headers=BEARER).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(app.extensions["portal"].catalog) > 10
    assert len(statements) == 2
    assert "GROUP BY" in statements[0].upper()


def test_host_admin_check_in_mounted_mode(tmp_path: Path) -> None:
    host = Flask("host")
    host.config.update(config(tmp_path))
    portal = ConnectPortal(host)

    @portal.admin_check
    def operators_only() -> bool:
        return request.headers.get("X-Host-Role") == "operator"

    client = host.test_client()
    assert client.get("/portal/admin", headers={"X-Host-Role": "operator"}).status_code == 200
    assert (
        client.get("/portal/api/v1/admin/apps", headers={"X-Host-Role": "operator"}).status_code
        == 200
    )
    assert client.get("/portal/admin", headers={"X-Host-Role": "guest"}).status_code == 401
    assert client.get("/portal/api/v1/admin/apps").status_code == 401
    # The app secret still works alongside the host's check.
    assert client.get("/portal/admin", headers=BEARER).status_code == 200
