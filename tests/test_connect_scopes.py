"""Issue 19, the rest of the connection lifecycle: scopes per connect (``optional_scopes``),
``required_scopes`` answering ``insufficient_scope``, ``account.recovered`` on a reconnect,
marketplace-wide connect links and where a failed hosted link goes.

Every flow runs against the live sandbox provider over loopback HTTP (its ``contacts.delete``
scope is the sandbox app's optional one); tenant isolation uses an in-process portal with two
projects wired to the same sandbox.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from conftest import Api, Browser, parse_form
from flask import Flask
from sqlalchemy import select, update

from portal.catalog import Catalog
from portal.demo import DEMO_APP_SECRET, DemoStack
from portal.oauth import granted_scopes
from portal.store import ConnectedAccount, ConnectLink, WebhookOutbox

PREFIX = "/portal/api/v1"
DEFAULT = ["profile", "contacts.read", "contacts.write"]


def catalog_of(stack: DemoStack) -> Catalog:
    catalog: Catalog = stack.portal_app.extensions["portal"].catalog
    return catalog


def result_payload(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>', page, re.S
    )
    assert match, page[:500]
    return json.loads(match.group(1))["message"]["payload"]  # type: ignore[no-any-return]


def run_ticket(ticket: dict[str, Any]) -> tuple[str, requests.Response]:
    """Run the OAuth flow of a ticket: (the authorize URL, the callback's result page)."""
    browser = Browser()
    started = browser.start(ticket["connect_url"])
    assert started.status_code == 302, started.text[:500]
    authorize = started.headers["Location"]
    consent = browser.consent(authorize)
    return authorize, browser.callback(consent.callback_url)


def asked_scopes(authorize_url: str) -> list[str]:
    return parse_qs(urlsplit(authorize_url).query)["scope"][0].split()


def account_row(stack: DemoStack, account_id: str) -> ConnectedAccount:
    with stack.portal_app.extensions["portal"].store.read() as db:
        found = db.get(ConnectedAccount, account_id)
        assert found is not None
        return found


def webhook_types(stack: DemoStack, account_id: str) -> list[str]:
    with stack.portal_app.extensions["portal"].store.read() as db:
        rows = db.scalars(
            select(WebhookOutbox).where(WebhookOutbox.ordering_key == account_id)
        ).all()
        return [r.type for r in sorted(rows, key=lambda r: r.seq)]


def connect(api: Api, scopes: list[str] | None = None) -> tuple[str, str]:
    """Connect the sandbox for ``api``'s user: (authorize URL, account id)."""
    body: dict[str, Any] = {"app": "sandbox", "opener": "frame"}
    if scopes is not None:
        body["scopes"] = scopes
    answer = api.post("/connect-tickets", json=body)
    assert answer.status_code == 201, answer.text
    authorize, result = run_ticket(answer.json())
    assert result.status_code == 200, result.text[:500]
    return authorize, result_payload(result.text)["payload"]["connectedAccountId"]


# --------------------------------------------------------------------------- scopes per connect


def test_extra_scope_is_asked_for_granted_stored_and_shown(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    authorize, account_id = connect(api, ["contacts.delete"])
    assert asked_scopes(authorize) == [*DEFAULT, "contacts.delete"]
    # The sandbox's token response says what it granted (RFC 6749 §5.1 `scope`).
    assert account_row(stack, account_id).scopes == [*DEFAULT, "contacts.delete"]
    listed = api.get("/connected-accounts", params={"app": "sandbox"}).json()
    [shown] = [a for a in listed["connected_accounts"] if a["id"] == account_id]
    assert shown["scopes"] == [*DEFAULT, "contacts.delete"]


def test_without_scopes_only_the_default_ones_are_asked_for(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    authorize, account_id = connect(api)
    assert asked_scopes(authorize) == DEFAULT
    assert account_row(stack, account_id).scopes == DEFAULT


@pytest.mark.parametrize(
    "scopes",
    [["admin"], ["contacts.delete", "contacts.admin"], "contacts.delete", [1], ["profile"]],
)
def test_a_scope_outside_optional_scopes_is_refused(
    stack: DemoStack, api: Api, scopes: Any
) -> None:
    answer = api.post("/connect-tickets", json={"app": "sandbox", "scopes": scopes})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_scope"
    assert body["message"]
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        refused = [s for s in scopes if s != "contacts.delete"]
        assert [d["field"] for d in body["error_details"]] == ["scopes"] * len(refused)
        assert all(s in body["message"] for s in refused)
        assert "contacts.delete" in body["message"]  # the allowed ones are named


def test_reconnect_and_connect_link_refuse_other_scopes_too(stack: DemoStack, api: Api) -> None:
    link = requests.post(
        f"{stack.portal.url}{PREFIX}/connect-links",
        json={"userId": "u-scopes", "app": "sandbox", "scopes": ["root"]},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert link.status_code == 400 and link.json()["error"] == "invalid_scope"
    no_app = requests.post(
        f"{stack.portal.url}{PREFIX}/connect-links",
        json={"userId": "u-scopes", "scopes": ["contacts.delete"]},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert no_app.status_code == 400 and no_app.json()["error"] == "invalid_scope"
    reconnect = api.post("/connected-accounts/ca_missing/reconnect", json={"scopes": ["x"]})
    assert reconnect.status_code == 404  # the account is looked up first: no probing


def test_an_app_without_optional_scopes_refuses_every_extra_scope(
    stack: DemoStack, api: Api
) -> None:
    answer = api.post("/connect-tickets", json={"app": "sandbox-keys", "scopes": ["a"]})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"
    assert "none" in answer.json()["message"]


def test_granted_scopes_come_from_the_token_response_else_from_the_request(
    stack: DemoStack,
) -> None:
    app = catalog_of(stack).get("sandbox")
    assert app is not None
    # The provider narrowed the request: what it says wins (RFC 6749 §5.1).
    assert granted_scopes(app, {"scope": "profile"}, ["contacts.delete"]) == ["profile"]
    # No `scope` in the response: what was requested was granted (RFC 6749 §3.3).
    assert granted_scopes(app, {}, ["contacts.delete"]) == [*DEFAULT, "contacts.delete"]
    assert granted_scopes(app, {"scope": " "}, ()) == DEFAULT


def test_catalog_reads_optional_and_required_scopes(stack: DemoStack) -> None:
    app = catalog_of(stack).get("sandbox")
    assert app is not None and app.oauth2 is not None
    assert app.oauth2.optional_scopes == ("contacts.delete",)
    delete = next(f for f in app.functions if f.name == "sandbox-delete-contact")
    assert delete.required_scopes == ("contacts.delete",)
    listing = next(f for f in app.functions if f.name == "sandbox-list-contacts")
    assert listing.required_scopes == ()


# --------------------------------------------------------------------------- required_scopes


def invoke(api: Api, name: str, params: dict[str, Any]) -> requests.Response:
    return api.post(f"/functions/{name}/invoke", json={"params": params})


def test_function_needing_a_scope_answers_insufficient_scope_until_reconnected(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    _, account_id = connect(api)
    created = invoke(api, "sandbox-create-contact", {"name": "Grace", "email": "g@example.test"})
    assert created.status_code == 200 and created.json()["network_code"] == 201, created.text
    contact = str(created.json()["output"]["id"])

    refused = invoke(api, "sandbox-delete-contact", {"id": contact})

    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["error"] == "insufficient_scope"
    assert "contacts.delete" in body["message"]
    [hint] = body["error_details"]
    assert hint["missing_scopes"] == ["contacts.delete"]
    assert hint["connectedAccountId"] == account_id
    assert hint["reconnect"]["path"] == f"/api/v1/connected-accounts/{account_id}/reconnect"

    # Follow the hint: reconnect asking for the missing scope, then the call goes through.
    ticket = api.post(
        hint["reconnect"]["path"].removeprefix("/api/v1"), json=hint["reconnect"]["body"]
    )
    assert ticket.status_code == 201, ticket.text
    authorize, result = run_ticket(ticket.json())
    assert result.status_code == 200, result.text[:500]
    assert "contacts.delete" in asked_scopes(authorize)
    assert account_row(stack, account_id).scopes == [*DEFAULT, "contacts.delete"]
    deleted = invoke(api, "sandbox-delete-contact", {"id": contact})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["network_code"] == 204
    again = invoke(api, "sandbox-get-contact", {"id": contact})
    assert again.json()["network_code"] == 404


# --------------------------------------------------------------------------- recovered


def test_reconnect_of_a_needs_reauth_account_sends_recovered(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    _, account_id = connect(api)
    store = stack.portal_app.extensions["portal"].store
    with store.session() as db:  # what the health worker leaves behind (test_health.py)
        db.execute(
            update(ConnectedAccount)
            .where(ConnectedAccount.id == account_id)
            .values(status="needs_reauth", health_reason="The refresh token was refused.")
        )
    ticket = api.post(f"/connected-accounts/{account_id}/reconnect", json={"opener": "frame"})
    _, result = run_ticket(ticket.json())
    assert result.status_code == 200, result.text[:500]
    assert account_row(stack, account_id).status == "active"
    assert webhook_types(stack, account_id) == [
        "account.connected",
        "account.reconnected",
        "account.recovered",
    ]
    with store.read() as db:
        bodies = [
            json.loads(r.payload)
            for r in db.scalars(
                select(WebhookOutbox).where(WebhookOutbox.ordering_key == account_id)
            )
        ]
    recovered = next(b for b in bodies if b["type"] == "account.recovered")
    assert recovered["data"]["account"]["status"] == "active"
    assert recovered["data"]["reason"] is None

    # A reconnect of a healthy account sends no recovered.
    ticket = api.post(f"/connected-accounts/{account_id}/reconnect", json={"opener": "frame"})
    run_ticket(ticket.json())
    assert webhook_types(stack, account_id).count("account.recovered") == 1


# --------------------------------------------------------------------------- connect links


def make_link(stack: DemoStack, **body: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.portal.url}{PREFIX}/connect-links",
        json={"userId": "u-market", **body},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def meta_refresh(page: str) -> str:
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', page)
    assert refresh, page[:500]
    return html.unescape(refresh.group(1))


def open_marketplace(url: str) -> tuple[Browser, requests.Response]:
    browser = Browser()
    opened = browser.http.get(url, allow_redirects=False, timeout=10)
    assert opened.status_code == 303, opened.text[:500]
    page = browser.http.get(urljoin(url, opened.headers["Location"]), timeout=10)
    assert page.status_code == 200, page.text[:500]
    return browser, page


def pick(browser: Browser, page: requests.Response, app: str) -> requests.Response:
    forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    [(action, inner)] = [f for f in forms if f'data-app="{app}"' in f[1]]
    fields = parse_form(f'<form action="{action}">{inner}</form>')["fields"]
    return browser.http.post(urljoin(page.url, html.unescape(action)), data=fields, timeout=10)


def test_marketplace_link_lets_the_user_pick_an_app_once(stack: DemoStack, sandbox: str) -> None:
    link = make_link(stack, successUrl=f"{stack.host.url}/done")
    browser, page = open_marketplace(link["url"])
    assert "Choose an app to connect" in page.text
    assert 'data-app="sandbox"' in page.text and 'data-app="sandbox-keys"' in page.text

    moved = pick(browser, page, "sandbox")

    assert moved.status_code == 200, moved.text[:500]
    connect_url = urljoin(moved.url, meta_refresh(moved.text))
    assert urlsplit(connect_url).path == "/portal/connect/sandbox"
    started = browser.start(connect_url)
    assert started.status_code == 302, started.text[:500]
    consent = browser.consent(started.headers["Location"])
    result = browser.callback(consent.callback_url)
    assert result.status_code == 200, result.text[:500]
    target = urlsplit(meta_refresh(result.text))
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{stack.host.url}/done"
    with stack.portal_app.extensions["portal"].store.read() as db:
        row = db.get(ConnectLink, link["id"])
        assert row is not None and row.app == "sandbox" and row.attempt_id is not None
        assert "portal_attempt=" + row.attempt_id in target.query

    # The link connected one app, once: a second pick and a second open are refused.
    second = pick(browser, page, "sandbox-keys")
    assert second.status_code == 400 and "not valid any more" in second.text
    reopened = requests.get(link["url"], allow_redirects=False, timeout=10)
    assert reopened.status_code == 400


def test_marketplace_pick_needs_the_csrf_token_and_the_opening_browser(
    stack: DemoStack, sandbox: str
) -> None:
    link = make_link(stack)
    browser, page = open_marketplace(link["url"])
    action = f"{stack.portal.url}/portal/link/apps/sandbox"
    forged = browser.http.post(action, data={}, timeout=10)
    assert forged.status_code == 400
    # Another browser (no Flask session naming the link) sees no marketplace.
    stranger = Browser()
    assert stranger.http.get(f"{stack.portal.url}/portal/link/apps", timeout=10).status_code == 400
    # The real pick still works after the forged one.
    assert pick(browser, page, "sandbox").status_code == 200


@pytest.mark.security("Projects are tenants")
def test_marketplace_link_connects_for_its_own_project(make_app: Any, stack: DemoStack) -> None:
    app: Flask = make_app(
        PORTAL_APP_KEYS={"proj-a": ["secret-a"], "proj-b": ["secret-b"]},
        PORTAL_RATE_LIMITS_ENABLED=False,
    )
    client = app.test_client()
    made = client.post(
        f"{PREFIX}/connect-links",
        json={"userId": "u-1"},
        headers={"Authorization": "Bearer secret-a"},
    )
    assert made.status_code == 201, made.text
    link = made.json
    assert link is not None
    assert (
        client.delete(
            f"{PREFIX}/connect-links/{link['id']}", headers={"Authorization": "Bearer secret-b"}
        ).status_code
        == 404
    )
    path = urlsplit(link["url"])
    opened = client.get(f"{path.path}?{path.query}")
    assert opened.status_code == 303
    page = client.get(opened.headers["Location"])
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    moved = client.post("/portal/link/apps/sandbox", data={"csrf_token": token.group(1)})
    assert moved.status_code == 200, moved.text[:500]
    connect_url = urlsplit(meta_refresh(moved.text))
    started = client.get(f"{connect_url.path}?{connect_url.query}")
    assert started.status_code == 302  # on to the sandbox
    from portal.store import ConnectAttempt

    with app.extensions["portal"].store.read() as db:
        row = db.get(ConnectLink, link["id"])
        assert row is not None and row.attempt_id is not None
        attempt = db.get(ConnectAttempt, row.attempt_id)
        assert attempt is not None
        assert (attempt.project, attempt.user_id, attempt.app) == ("proj-a", "u-1", "sandbox")


def test_link_with_scopes_asks_for_them(stack: DemoStack, sandbox: str) -> None:
    link = make_link(stack, app="sandbox", scopes=["contacts.delete"])
    browser = Browser()
    opened = browser.http.get(link["url"], allow_redirects=False, timeout=10)
    assert opened.status_code == 302
    started = browser.start(urljoin(link["url"], opened.headers["Location"]))
    assert started.status_code == 302
    assert asked_scopes(started.headers["Location"]) == [*DEFAULT, "contacts.delete"]


def test_failed_link_connect_without_error_url_never_goes_to_success_url(
    stack: DemoStack, sandbox: str
) -> None:
    """With only ``successUrl``, a denied consent ends on the portal's own result page (with
    the reason), not on successUrl as if it had worked."""
    link = make_link(stack, app="sandbox", successUrl=f"{stack.host.url}/done")
    browser = Browser()
    opened = browser.http.get(link["url"], allow_redirects=False, timeout=10)
    started = browser.start(urljoin(link["url"], opened.headers["Location"]))
    consent = browser.consent(started.headers["Location"], decision="deny")
    result = browser.callback(consent.callback_url)

    assert result.status_code == 400
    assert 'http-equiv="refresh"' not in result.text
    assert "/done" not in result.text
    assert "Couldn't connect to Sandbox CRM" in result.text
    assert "Ask for a new one" in result.text
    assert result_payload(result.text)["status"] == "failed"


# --------------------------------------------------------------------------- README

README_SECTION = "Scopes per connect (incremental authorization)"


@pytest.mark.readme(README_SECTION, 0)
def test_readme_scopes_yaml_is_what_the_sandbox_app_ships(stack: DemoStack) -> None:
    import yaml
    from readme_blocks import block

    doc = yaml.safe_load(block(README_SECTION, 0).code)
    app = catalog_of(stack).get("sandbox")
    assert app is not None and app.oauth2 is not None
    assert tuple(doc["auth"]["scopes"]) == app.oauth2.scopes
    assert tuple(doc["auth"]["optional_scopes"]) == app.oauth2.optional_scopes
    [function] = doc["functions"]
    shipped = next(f for f in app.functions if f.name == function["name"])
    assert tuple(function["required_scopes"]) == shipped.required_scopes


@pytest.mark.readme(README_SECTION, 1)
def test_readme_insufficient_scope_python_as_written(stack: DemoStack, sandbox: str) -> None:
    import uuid

    from conftest import new_session
    from readme_blocks import block, fill

    user = f"readme-scopes-{uuid.uuid4().hex[:8]}"
    api = new_session(stack, user)
    _, account_id = connect(api)
    created = invoke(api, "sandbox-create-contact", {"name": "Ada", "email": "a@example.test"})
    namespace: dict[str, Any] = {
        "APP_SECRET": DEMO_APP_SECRET,
        "contact_id": str(created.json()["output"]["id"]),
    }
    code = fill(
        block(README_SECTION, 1).code,
        {
            "https://portal.example/portal/api/v1": f"{stack.portal.url}{PREFIX}",
            '"u-42"': repr(user),
        },
    )
    exec(compile(code, "README.md (scopes)", "exec"), namespace)
    assert namespace["hint"]["missing_scopes"] == ["contacts.delete"]
    authorize, result = run_ticket(namespace["ticket"])
    assert result.status_code == 200, result.text[:500]
    assert asked_scopes(authorize) == [*DEFAULT, "contacts.delete"]
    assert result_payload(result.text)["payload"]["connectedAccountId"] == account_id
