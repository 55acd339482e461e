"""Reconnect keeping the account id: ``POST /api/v1/connected-accounts/<id>/reconnect``.

The whole OAuth flow runs against the live sandbox provider (real HTTP on loopback); the
sandbox's consent page lets the test sign in as another demo user, which is the wrong account.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session
from flask import Flask
from readme_blocks import block, fill
from sqlalchemy import func, select

from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.store import ConnectAttempt, ConnectedAccount

PREFIX = "/portal/api/v1"


def result_of(html: str) -> dict[str, Any]:
    """The popup result message's ``payload`` of a connect result page."""
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>', html, re.S
    )
    assert match, html[:500]
    return json.loads(match.group(1))["message"]["payload"]  # type: ignore[no-any-return]


def row(stack: DemoStack, account_id: str) -> ConnectedAccount:
    with stack.portal_app.extensions["portal"].store.read() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        return account


def count(stack: DemoStack, user_id: str) -> int:
    with stack.portal_app.extensions["portal"].store.read() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(ConnectedAccount)
                .where(ConnectedAccount.user_id == user_id)
            )
            or 0
        )


def reconnect(api: Api, account_id: str, user: str | None = None) -> requests.Response:
    """Ask for a reconnect ticket and run its OAuth flow, signing in as ``user``."""
    answer = api.post(f"/connected-accounts/{account_id}/reconnect", json={"opener": "frame"})
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert ticket["connectedAccountId"] == account_id
    browser = Browser()
    started = browser.start(ticket["connect_url"])
    assert started.status_code == 302, started.text[:500]
    consent = browser.consent(started.headers["Location"], user=user)
    return browser.callback(consent.callback_url)


def test_reconnect_keeps_the_id_and_label_and_replaces_the_credentials(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    before = row(stack, account_id)
    sealer = stack.portal_app.extensions["portal"].sealer
    old_token = sealer.open(account_id, before.credentials)["access_token"]

    again = reconnect(api, account_id)

    assert again.status_code == 200, again.text[:500]
    payload = result_of(again.text)["payload"]
    assert payload["connectedAccountId"] == account_id
    after = row(stack, account_id)
    assert after.label == before.label == "ada@sandbox.test"
    assert after.created_at == before.created_at
    assert after.modified_at > before.modified_at
    assert sealer.open(account_id, after.credentials)["access_token"] != old_token
    assert count(stack, api.user_id) == 1


def test_reconnect_as_another_account_is_refused_and_leaves_the_account(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    before = row(stack, account_id)

    wrong = reconnect(api, account_id, user="grace")

    assert wrong.status_code == 409, wrong.text[:500]
    error = result_of(wrong.text)["error"]
    assert error["type"] == "wrong_account"
    assert error["message"].startswith("You signed in as another account: grace@sandbox.test.")
    after = row(stack, account_id)
    assert (after.label, after.external_id, after.credentials, after.modified_at) == (
        before.label,
        before.external_id,
        before.credentials,
        before.modified_at,
    )
    assert count(stack, api.user_id) == 1  # grace was not added either
    with stack.portal_app.extensions["portal"].store.read() as db:
        statuses = db.scalars(
            select(ConnectAttempt.status).where(ConnectAttempt.user_id == api.user_id)
        ).all()
    assert sorted(statuses) == ["connected", "failed"]


def test_reconnect_of_another_users_account_is_404(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    other = new_session(stack, api.user_id + "-other")
    answer = other.post(f"/connected-accounts/{account_id}/reconnect")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"
    missing = api.post("/connected-accounts/ca_nope/reconnect")
    assert missing.status_code == 404


def test_server_api_reconnect_with_the_app_secret(stack: DemoStack, sandbox: str, api: Api) -> None:
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    answer = requests.post(
        f"{stack.portal.url}{PREFIX}/connected-accounts/{account_id}/reconnect",
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": api.user_id},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert set(ticket) == {
        "ticket",
        "connect_url",
        "attempt_id",
        "expires_at",
        "connectedAccountId",
    }
    assert urlsplit(ticket["connect_url"]).path == "/portal/connect/sandbox"


def test_another_projects_account_id_is_404(make_app: Any, stack: DemoStack) -> None:
    """Project B's app secret cannot reconnect project A's account, even for the same user."""
    app: Flask = make_app(
        PORTAL_APP_KEYS={DEMO_APP_KEY: [DEMO_APP_SECRET], "proj-b": ["secret-of-b"]},
        PORTAL_RATE_LIMITS_ENABLED=False,
    )
    state = app.extensions["portal"]
    from portal.accounts import upsert_account

    with app.app_context(), state.store.session() as db:
        account, _ = upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id="u-1",
            app="sandbox",
            external_id="ext-1",
            label="a@example.test",
            scopes=[],
            credentials={"type": "oauth2", "access_token": "t"},
            expires_at=None,
        )
        account_id = account.id
    client = app.test_client()

    def ask(secret: str) -> Any:
        return client.post(
            f"{PREFIX}/connected-accounts/{account_id}/reconnect",
            headers={"Authorization": f"Bearer {secret}", "X-Portal-User-Id": "u-1"},
        )

    assert ask("secret-of-b").status_code == 404
    assert ask(DEMO_APP_SECRET).status_code == 201


@pytest.mark.parametrize("body", ['{"opener": "popup"}', "[1]"])
def test_bad_body_is_400(stack: DemoStack, api: Api, body: str) -> None:
    answer = requests.post(
        f"{api.base}/connected-accounts/ca_x/reconnect",
        data=body,
        headers={**api.headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text


@pytest.mark.readme("Reconnect an account, keeping its id", 0)
def test_readme_reconnect_curl_as_written(stack: DemoStack, sandbox: str, api: Api) -> None:
    """The README's curl line, run by curl, gives a ticket whose flow keeps the account id."""
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    code = block("Reconnect an account, keeping its id", 0).code
    command = fill(
        code.split("\n# ->", 1)[0],
        {"https://portal.example": stack.portal.url, "u-42": api.user_id},
    )
    env = {"PATH": os.environ["PATH"], "APP_SECRET": DEMO_APP_SECRET, "ACCOUNT_ID": account_id}
    result = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    promised = re.search(r"# -> (\{.*\})", code)
    assert promised
    assert set(answer) == set(re.findall(r'"(\w+)":', promised.group(1)))
    assert answer["connectedAccountId"] == account_id
    browser = Browser()
    started = browser.start(answer["connect_url"])
    consent = browser.consent(started.headers["Location"])
    again = browser.callback(consent.callback_url)
    assert result_of(again.text)["payload"]["connectedAccountId"] == account_id


def test_reconnect_of_an_account_deleted_meanwhile_fails_and_adds_nothing(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    first, _ = connect_sandbox(api)
    account_id = result_of(first.text)["payload"]["connectedAccountId"]
    ticket = api.post(f"/connected-accounts/{account_id}/reconnect", json={"opener": "frame"})
    browser = Browser()
    started = browser.start(ticket.json()["connect_url"])
    consent = browser.consent(started.headers["Location"])
    assert api.delete(f"/connected-accounts/{account_id}").status_code == 200
    gone = browser.callback(consent.callback_url)
    assert gone.status_code == 404
    assert result_of(gone.text)["error"]["type"] == "account_gone"
    assert count(stack, api.user_id) == 0
