"""Projects (app keys) are tenants: what app key A created is invisible to app key B.

The portal under test has two app keys, ``proj-a`` and ``proj-b``, each with its own app secret
and JWT key. Under A the test connects a real sandbox account (the whole OAuth flow through the
test client and the live sandbox), invokes a function, triggers an app event whose run the
worker executes, and so writes webhooks. Then it calls *every* route of the OpenAPI document as
B for the same end user (B's app secret, B's session token, B's JWT) and checks that nothing of
A's comes back and nothing is sent upstream; finally A still sees all of its own.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Browser, database_url, migrations_head, sandbox_stats
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, select, text

from portal import user_hash
from portal.auth import sign_user_token
from portal.credentials import load
from portal.demo import DEMO_APP_EVENTS, DemoStack, demo_jwt_keypair
from portal.errors import ConfigurationError, ResourceNotFound
from portal.events import run_due
from portal.flows import EXAMPLES_DIR
from portal.openapi import build
from portal.store import (
    AppEvent,
    AppEventRun,
    ConnectAttempt,
    ConnectedAccount,
    FlowSetting,
    FunctionCall,
    OplogEntry,
    Store,
    WebhookOutbox,
)

A, B = "proj-a", "proj-b"
SECRET = {A: "secret-of-project-a", B: "secret-of-project-b"}
PREFIX = "/portal"


def closed_port() -> int:
    """A loopback port nobody listens on: webhooks are written, never delivered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_projects(
    make_app: Any, stack: DemoStack, sandbox: str, tmp_path: Any
) -> Iterator[dict[str, Any]]:
    """A portal with projects A and B; A has an account, an attempt, a function call, an app
    event with a finished run, webhooks and a flow turned on, all for one end user."""
    keys = {A: demo_jwt_keypair(), B: demo_jwt_keypair()}
    # The demo's flow, on an event of its own (so "Contact Created" keeps its one run).
    flows_file = tmp_path / "flows.yaml"
    flows_file.write_text(
        (EXAMPLES_DIR / "sandbox.yaml").read_text("utf-8").replace("Contact Created", "Flow Event"),
        "utf-8",
    )
    app: Flask = make_app(
        PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]},
        PORTAL_JWT_PUBLIC_KEYS={k: [pair[1]] for k, pair in keys.items()},
        PORTAL_WEBHOOK_URL=f"http://127.0.0.1:{closed_port()}/hook",
        PORTAL_APP_EVENTS=DEMO_APP_EVENTS,
        PORTAL_RATE_LIMITS_ENABLED=False,
        PORTAL_FLOWS_PATH=str(flows_file),
    )
    user = f"u-tenant-{uuid.uuid4().hex[:8]}"
    client = app.test_client()
    origin = stack.host.url
    a_session = session_token(client, origin, A, user)
    ticket = client.post(
        f"{PREFIX}/api/v1/connect-tickets",
        json={"app": "sandbox"},
        headers={"Authorization": f"Bearer {a_session}"},
    ).json
    assert ticket is not None
    started = client.get(urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl())
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    consent = Browser().consent(started.headers["Location"])
    done = client.get(f"{PREFIX}/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert done.status_code == 200, done.get_data(as_text=True)[:300]
    a_server = {"Authorization": f"Bearer {SECRET[A]}", "X-Portal-User-Id": user}
    [account] = client.get(f"{PREFIX}/api/v1/connected-accounts", headers=a_server).json[
        "connected_accounts"
    ]
    invoked = client.post(
        f"{PREFIX}/api/v1/functions/sandbox-list-contacts/invoke",
        json={"params": {}},
        headers=a_server,
    )
    assert invoked.status_code == 200 and invoked.json["network_code"] == 200, invoked.json
    triggered = client.post(
        f"{PREFIX}/api/v1/projects/{A}/sdk/events/trigger",
        json={"name": "Contact Created", "payload": {"name": "Ada", "email": "ada@a.example"}},
        headers=a_server,
    )
    assert triggered.status_code == 202, triggered.json
    with app.app_context():
        run_due(app.extensions["portal"])
    event = client.get(f"{PREFIX}/api/v1/events/{triggered.json['id']}", headers=a_server).json
    assert [r["status"] for r in event["runs"]] == ["succeeded"], event
    # A's user turns the demo flow on, pinned to A's account, with a tag of A's own.
    flow_tag = f"tag-of-a-{uuid.uuid4().hex[:8]}"
    enabled = client.put(
        f"{PREFIX}/api/v1/flows/sandbox/contact-to-crm",
        json={"enabled": True, "settings": {"tag": flow_tag}, "connectedAccountId": account["id"]},
        headers=a_server,
    )
    assert enabled.status_code == 200 and enabled.json["status"] == "ready", enabled.json
    with app.extensions["portal"].store.read() as db:
        entry_id = db.scalars(select(OplogEntry.id).where(OplogEntry.project == A)).first()
    assert entry_id is not None  # A's function call and run are in the operators' log
    yield {
        "app": app,
        "user": user,
        "origin": origin,
        "keys": keys,
        "account_id": account["id"],
        "label": account["label"],
        "attempt_id": ticket["attempt_id"],
        "event_id": event["id"],
        "run_ids": [r["id"] for r in event["runs"]],
        "entry_id": entry_id,
        "a_server": a_server,
        "flow_tag": flow_tag,
    }


def session_token(client: FlaskClient, origin: str, project: str, user: str) -> str:
    """A browser session token of ``project`` for ``user``, created as portal.js does."""
    response = client.post(
        f"{PREFIX}/api/v1/sessions",
        json={"appKey": project, "userId": user, "hash": user_hash(SECRET[project], user)},
        headers={"Origin": origin},
    )
    assert response.status_code == 201, response.json
    return str(response.json["token"])


def credentials_of(project: str, env: dict[str, Any], client: FlaskClient) -> dict[str, Any]:
    """``{kind: (headers, openapi security scheme)}`` for every way ``project`` authenticates."""
    user, origin = env["user"], env["origin"]
    jwt = sign_user_token(env["keys"][project][0], user, project, ttl=600)
    return {
        "app secret": (
            {"Authorization": f"Bearer {SECRET[project]}", "X-Portal-User-Id": user},
            "appSecret",
        ),
        "session token": (
            {
                "Authorization": f"Bearer {session_token(client, origin, project, user)}",
                "Origin": origin,
            },
            "sessionToken",
        ),
        "JWT": ({"Authorization": f"Bearer {jwt}", "Origin": origin}, "userToken"),
    }


def fill(path: str, env: dict[str, Any]) -> str:
    """An OpenAPI path template with A's identifiers in its parameters."""
    values = {
        "app": "sandbox",
        "path": "contacts",
        "account_id": env["account_id"],
        "attempt_id": env["attempt_id"],
        "name": "sandbox-list-contacts",
        "app_key": A,
        "id": env["event_id"],
        "flow": "contact-to-crm",
        "entry_id": env["entry_id"],
    }

    def one(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"no test value for path parameter {match.group(0)}"
        return values[match.group(1)]

    return re.sub(r"\{(\w+)\}", one, path)


def body_for(path: str, env: dict[str, Any]) -> dict[str, Any]:
    """A valid JSON body for each writing route, naming A's account where one is taken."""
    if path.endswith("/sessions"):
        return {"userId": env["user"], "origin": env["origin"]}
    if path.endswith("/connect-tickets"):
        return {"app": "sandbox"}
    if path.endswith("/invoke"):
        return {"params": {}, "connectedAccountId": env["account_id"]}
    if path.endswith("/trigger"):
        return {"name": "Contact Created", "payload": {"name": "Eve", "email": "eve@b.example"}}
    if "/flows/" in path:
        return {"enabled": True, "settings": {"tag": "b"}, "connectedAccountId": env["account_id"]}
    return {}


def leaks(document: Any, forbidden: set[str]) -> list[str]:
    """What of A's shows in a JSON answer: A's ids anywhere, or counts of connected accounts."""
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if node.get("connected") is True:
                found.append(f"{key}: {node}")
            for k, v in node.items():
                if k in ("connected_count", "connectedAccounts") and isinstance(v, int) and v:
                    found.append(f"{k}={v}")
                if k == "accounts" and (
                    (isinstance(v, int) and v) or (isinstance(v, dict) and v.get("total"))
                ):
                    found.append(f"accounts={v}")
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and any(f in node for f in forbidden):
            found.append(f"{key}={node}")

    walk(document)
    return found


@pytest.mark.security("Projects are tenants")
def test_every_api_route_hides_project_a_from_project_b(
    two_projects: dict[str, Any], stack: DemoStack
) -> None:
    env = two_projects
    app: Flask = env["app"]
    client = app.test_client()
    forbidden = {
        env["account_id"],
        env["attempt_id"],
        env["event_id"],
        *env["run_ids"],
        env["flow_tag"],
    }
    before = sandbox_stats(stack)
    calls = 0
    for kind, (headers, scheme) in credentials_of(B, env, client).items():
        for template, operations in build(PREFIX)["paths"].items():
            for method, operation in operations.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                path = fill(template, env)
                queries = [""]
                if "/proxy/" in template:
                    queries.append(f"?connectedAccountId={env['account_id']}")
                for query in queries:
                    response = client.open(
                        path + query,
                        method=method.upper(),
                        headers=headers,
                        json=body_for(template, env) if method != "get" else None,
                    )
                    raw = response.get_data(as_text=True)
                    response.close()
                    calls += 1
                    where = (
                        f"{method.upper()} {path}{query} as B ({kind}) -> {response.status_code}"
                    )
                    if any(scheme in option for option in operation.get("security") or []):
                        # B is authenticated here: a 401 would prove nothing.
                        assert response.status_code != 401, f"{where}: {raw[:300]}"
                    assert response.status_code < 500, f"{where}: {raw[:300]}"
                    try:
                        document = json.loads(raw) if raw else None
                    except ValueError:
                        document = raw
                    found = leaks(document, forbidden)
                    assert not found, f"{where} shows project A's data: {found}"
    assert calls > 40
    after = sandbox_stats(stack)
    assert after == before, "a call as project B reached the provider"

    # B's browser pages (the iframe's partials) show none of A's accounts either.
    headers, _ = credentials_of(B, env, client)["session token"]
    for page in ("/ui/apps", "/ui/apps/sandbox", "/ui/functions/sandbox-list-contacts"):
        response = client.get(PREFIX + page, headers=headers)
        assert response.status_code in (200, 404), page
        html = response.get_data(as_text=True)
        assert env["account_id"] not in html, page
        assert env["label"] not in html, page
        assert "portal-card--connected" not in html, page

    # A still sees everything of its own, and its proxy still reaches the provider.
    a = env["a_server"]
    accounts = client.get(f"{PREFIX}/api/v1/connected-accounts", headers=a).json
    assert [x["id"] for x in accounts["connected_accounts"]] == [env["account_id"]]
    attempt = client.get(f"{PREFIX}/api/v1/connect-attempts/{env['attempt_id']}", headers=a).json
    assert attempt["status"] == "connected"
    assert attempt["connectedAccountId"] == env["account_id"]
    event = client.get(f"{PREFIX}/api/v1/events/{env['event_id']}", headers=a).json
    assert [r["id"] for r in event["runs"]] == env["run_ids"]
    proxied = client.get(f"{PREFIX}/api/v1/proxy/sandbox/contacts", headers=a)
    proxied.get_data()
    proxied.close()
    assert proxied.status_code == 200
    assert sandbox_stats(stack)["api_requests"] == after["api_requests"] + 1


@pytest.mark.security("Projects are tenants")
def test_every_row_carries_its_project(two_projects: dict[str, Any]) -> None:
    env = two_projects
    state = env["app"].extensions["portal"]
    with state.store.read() as db:
        for model in (
            ConnectedAccount,
            ConnectAttempt,
            FunctionCall,
            AppEvent,
            AppEventRun,
            WebhookOutbox,
            FlowSetting,
        ):
            projects = set(db.scalars(select(model.project)))
            assert projects == {A}, (model.__tablename__, projects)
        payloads = [json.loads(p) for p in db.scalars(select(WebhookOutbox.payload))]
    assert {p["type"] for p in payloads} >= {
        "account.connected",
        "app_event.run_finished",
        "flow.updated",
    }
    assert all(p["project"] == A for p in payloads), payloads


@pytest.mark.security("Projects are tenants")
def test_an_event_of_project_b_never_runs_on_project_a_s_account(
    two_projects: dict[str, Any], stack: DemoStack
) -> None:
    env = two_projects
    app: Flask = env["app"]
    client = app.test_client()
    b_server = {"Authorization": f"Bearer {SECRET[B]}", "X-Portal-User-Id": env["user"]}
    before = sandbox_stats(stack)
    triggered = client.post(
        f"{PREFIX}/api/v1/projects/{B}/sdk/events/trigger",
        json={"name": "Contact Created", "payload": {"name": "Eve", "email": "eve@b.example"}},
        headers=b_server,
    )
    assert triggered.status_code == 202
    with app.app_context():
        assert run_due(app.extensions["portal"]) == 1
    event = client.get(f"{PREFIX}/api/v1/events/{triggered.json['id']}", headers=b_server).json
    [run] = event["runs"]
    assert run["status"] == "failed" and run["result"]["error"].startswith("No "), run
    assert sandbox_stats(stack) == before
    # ... and A cannot read B's event.
    assert (
        client.get(
            f"{PREFIX}/api/v1/events/{triggered.json['id']}", headers=env["a_server"]
        ).status_code
        == 404
    )


@pytest.mark.security("Projects are tenants")
def test_credentials_load_by_id_checks_project_and_user(two_projects: dict[str, Any]) -> None:
    env = two_projects
    state = env["app"].extensions["portal"]
    with env["app"].app_context():
        mine = load(state, env["account_id"], env["user"], project=A)
        assert mine.account_id == env["account_id"] and mine.data["access_token"]
        for user, project in ((env["user"], B), ("someone-else", A)):
            with pytest.raises(ResourceNotFound):
                load(state, env["account_id"], user, project=project)


@pytest.mark.security("Projects are tenants")
def test_mounted_callers_have_their_own_project(
    make_app: Any, stack: DemoStack, sandbox: str
) -> None:
    """With two app keys and no PORTAL_MOUNTED_PROJECT, the host's logged-in users live in the
    project ``"mounted"``; with one key they share it (what mounted hosts had before)."""
    two = make_app(PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]})
    assert two.extensions["portal"].mounted_project == "mounted"
    one = make_app(PORTAL_APP_KEYS={A: [SECRET[A]]})
    assert one.extensions["portal"].mounted_project == A
    named = make_app(PORTAL_APP_KEYS={A: [SECRET[A]], B: [SECRET[B]]}, PORTAL_MOUNTED_PROJECT=B)
    assert named.extensions["portal"].mounted_project == B

    user = f"u-mounted-{uuid.uuid4().hex[:8]}"
    portal = two.extensions["portal"].portal
    portal.user_loader(lambda: user)
    state = two.extensions["portal"]
    from portal.accounts import upsert_account

    with state.store.session() as db:
        upsert_account(
            db,
            state.sealer,
            project=A,
            user_id=user,
            app="sandbox-basic",
            external_id="x-1",
            label="A's",
            scopes=[],
            credentials={"type": "basic", "username": "ada", "password": "lovelace"},
            expires_at=None,
        )
    client = two.test_client()
    page = client.get(f"{PREFIX}/apps").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert token, page[:300]
    listed = client.get(
        f"{PREFIX}/api/v1/connected-accounts",
        headers={"X-CSRFToken": token.group(1), "Sec-Fetch-Site": "same-origin"},
    )
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert listed.json["connected_accounts"] == []


# --------------------------------------------------------------------------- migration 0004


def _seed_0003(url: str) -> None:
    """Rows of every table as revision 0003 had them (no project column)."""
    engine = create_engine(url)
    now = "2026-11-22 10:00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO portal_connected_accounts (id, user_id, app, external_id, label, "
                "status, scopes, credentials, created_at, modified_at) VALUES ('ca_1', 'u1', "
                "'sandbox', 'e1', 'L', 'active', '[]', :blob, :now, :now)"
            ),
            {"blob": b"sealed", "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO portal_connect_attempts (id, user_id, app, status, host_origin, "
                "opener_origin, created_at, updated_at) VALUES ('at_1', 'u1', 'sandbox', "
                "'started', 'https://h.example', 'https://h.example', :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO portal_function_calls (id, function, app, user_id, account_id, "
                "http_status, duration_ms, created_at) VALUES ('fc_1', 'f', 'sandbox', 'u1', "
                "'ca_1', 200, 5, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO portal_app_events (id, user_id, app_key, name, payload, created_at) "
                "VALUES ('ev_1', 'u1', NULL, 'E', '{}', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO portal_app_event_runs (id, event_id, function, params, status, "
                "attempts, created_at) VALUES ('run_1', 'ev_1', 'f', '{}', 'queued', 0, :now)"
            ),
            {"now": now},
        )
        seq = "" if engine.dialect.name == "postgresql" else ", seq"
        seq_value = "" if engine.dialect.name == "postgresql" else ", 1"
        conn.execute(
            text(
                f"INSERT INTO portal_webhook_outbox (id{seq}, ordering_key, type, payload, "
                f"created_at, attempts, next_attempt_at) VALUES ('wh_1'{seq_value}, 'ca_1', "
                "'account.connected', :payload, :now, 0, :now)"
            ),
            {"payload": '{"id":"wh_1","type":"account.connected","data":{}}', "now": now},
        )
    engine.dispose()


def _projects(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    tables = (
        "portal_connected_accounts",
        "portal_connect_attempts",
        "portal_function_calls",
        "portal_app_events",
        "portal_app_event_runs",
        "portal_webhook_outbox",
    )
    with engine.connect() as conn:
        found = {t: set(conn.execute(text(f"SELECT project FROM {t}")).scalars()) for t in tables}
    engine.dispose()
    return found


def test_migration_0004_gives_existing_rows_the_only_project(shared_database: str) -> None:
    store = Store(shared_database)
    store.upgrade("0003")
    _seed_0003(shared_database)
    store.upgrade(app_keys=[A])
    assert store.current_revision() == migrations_head()
    assert all(v == {A} for v in _projects(shared_database).values())
    engine = create_engine(shared_database)
    with engine.connect() as conn:
        payload = conn.execute(text("SELECT payload FROM portal_webhook_outbox")).scalar_one()
        nullable = {
            c["name"]: c["nullable"] for c in inspect(conn).get_columns("portal_connected_accounts")
        }
    engine.dispose()
    assert json.loads(payload)["project"] == A
    assert nullable["project"] is False
    # The identity is per project now: the same account may be connected in another project.
    state_store = Store(shared_database)
    with state_store.session() as db:
        db.add(
            ConnectedAccount(
                id="ca_2",
                project=B,
                user_id="u1",
                app="sandbox",
                external_id="e1",
                label="L",
                credentials=b"x",
            )
        )
        db.flush()
        db.delete(db.get(ConnectedAccount, "ca_2"))  # the old constraint would refuse it
    state_store.dispose()
    store.downgrade("0003")
    store.dispose()


@pytest.mark.parametrize("keys", [[], [A, B]])
def test_migration_0004_stops_on_rows_without_one_key(
    shared_database: str, keys: list[str]
) -> None:
    store = Store(shared_database)
    store.upgrade("0003")
    _seed_0003(shared_database)
    with pytest.raises(RuntimeError, match="PORTAL_MIGRATION_PROJECT") as failed:
        store.upgrade(app_keys=keys)
    assert "portal_connected_accounts" in str(failed.value)
    assert store.current_revision() == "0003"
    # Naming the project, as the message says, migrates.
    store.upgrade(app_keys=keys, project=B)
    assert all(v == {B} for v in _projects(shared_database).values())
    store.dispose()


@pytest.mark.parametrize("keys", [[], [A, B]])
def test_migration_0004_of_empty_tables_needs_no_key(shared_database: str, keys: list[str]) -> None:
    store = Store(shared_database)
    store.upgrade("0003")
    store.upgrade(app_keys=keys)
    assert store.current_revision() == migrations_head()
    store.dispose()


def test_start_up_on_old_rows_names_the_setting_then_migrates(make_app: Any, tmp_path: Any) -> None:
    """A portal that migrates at start-up over pre-project rows and two app keys refuses to
    start, naming PORTAL_MIGRATION_PROJECT; set, it starts and the rows are that project's."""
    url = database_url(tmp_path, "old")
    old = Store(url)
    old.upgrade("0003")
    old.dispose()
    _seed_0003(url)
    keys = {A: [SECRET[A]], B: [SECRET[B]]}
    with pytest.raises(ConfigurationError, match="PORTAL_MIGRATION_PROJECT"):
        make_app(PORTAL_APP_KEYS=keys, PORTAL_DATABASE_URL=url, PORTAL_AUTO_MIGRATE=True)
    app = make_app(
        PORTAL_APP_KEYS=keys,
        PORTAL_DATABASE_URL=url,
        PORTAL_AUTO_MIGRATE=True,
        PORTAL_MIGRATION_PROJECT=A,
    )
    assert all(v == {A} for v in _projects(url).values())
    listed = app.test_cli_runner().invoke(args=["portal", "function-calls", "--project", A])
    assert "account ca_1  project proj-a  user u1" in listed.output
    other = app.test_cli_runner().invoke(args=["portal", "function-calls", "--project", B])
    assert other.output.strip() == "no function calls recorded"
