"""portal/health.py: the worker's account health checks (issue 19 item 2), against the live
sandbox provider and its fault switches (``POST /_sandbox/faults``: ``{"api": "500"}`` takes
the API down, ``{"api": "reject_credentials"}`` revokes every demo API key), and the sandbox's
own RFC 7009 revocation for OAuth grants. Two real workers share PostgreSQL (and SQLite) in
the last test."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import Browser, sandbox_stats
from flask import Flask
from sqlalchemy import select, update

from portal import accounts as account_service
from portal.demo import DEMO_APP_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoStack
from portal.health import BACKOFF_BASE, check_due, unhealthy
from portal.store import ConnectedAccount, OplogEntry, WebhookOutbox, utcnow
from portal.worker import Worker

DAY = timedelta(days=1, seconds=1)


def faults(stack: DemoStack, **set_: Any) -> None:
    requests.post(f"{stack.sandbox.url}/_sandbox/faults", json=set_, timeout=5).raise_for_status()


def add_key_account(
    app: Flask, user: str, key: str = "sk_demo_ada", slug: str = "sandbox-keys"
) -> str:
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user,
            app=slug,
            external_id=f"ext-{uuid.uuid4().hex[:8]}",
            label="Ada",
            scopes=[],
            credentials={"type": "api_key", "api_key": key},
            expires_at=None,
        )
        return account.id


def row(app: Flask, account_id: str) -> ConnectedAccount:
    with app.extensions["portal"].store.read() as db:
        found = db.get(ConnectedAccount, account_id)
        assert found is not None
        return found


def webhook_types(app: Flask, account_id: str) -> list[str]:
    with app.extensions["portal"].store.read() as db:
        rows = db.scalars(
            select(WebhookOutbox).where(WebhookOutbox.ordering_key == account_id)
        ).all()
        return [r.type for r in sorted(rows, key=lambda r: r.seq)]


def health_entries(app: Flask, account_id: str) -> list[OplogEntry]:
    with app.extensions["portal"].store.read() as db:
        return list(
            db.scalars(
                select(OplogEntry).where(
                    OplogEntry.kind == "health_check", OplogEntry.account_id == account_id
                )
            )
        )


@pytest.fixture
def app(make_app: Any, sandbox: str) -> Flask:
    return make_app(  # type: ignore[no-any-return]
        PORTAL_WEBHOOK_URL="http://127.0.0.1:9/hook", PORTAL_HEALTH_MAX_PER_MINUTE=1000
    )


def test_new_account_is_not_checked_before_an_interval(app: Flask) -> None:
    account_id = add_key_account(app, "u-new")
    with app.app_context():
        assert check_due(app.extensions["portal"]) == 0
        assert check_due(app.extensions["portal"], utcnow() + DAY) == 1
    assert row(app, account_id).health_checked_at is not None


def test_interval_zero_turns_checks_off(make_app: Any, sandbox: str) -> None:
    app = make_app(PORTAL_HEALTH_INTERVAL=0)
    account_id = add_key_account(app, "u-off")
    with app.app_context():
        assert check_due(app.extensions["portal"], utcnow() + 30 * DAY) == 0
    assert row(app, account_id).health_checked_at is None


def test_revoked_api_key_needs_reauth_then_recovers(app: Flask, stack: DemoStack) -> None:
    state = app.extensions["portal"]
    account_id = add_key_account(app, "u-key")
    later = utcnow() + DAY
    with app.app_context():
        assert check_due(state, later) == 1
        assert row(app, account_id).status == "active"
        assert [e.status for e in health_entries(app, account_id)] == ["succeeded"]
        assert webhook_types(app, account_id) == []

        faults(stack, api="reject_credentials")
        assert check_due(state, later + DAY) == 1
        broken = row(app, account_id)
        assert broken.status == "needs_reauth", [
            (e.status, e.error) for e in health_entries(app, account_id)
        ]
        assert broken.health_reason is not None and "HTTP 401" in broken.health_reason
        assert webhook_types(app, account_id) == ["account.needs_reauth"]
        [listed] = unhealthy(state, DEMO_APP_KEY)
        assert listed["id"] == account_id and "401" in listed["reason"]
        assert listed["last_check"] is not None

        # Still revoked: checked again, no second webhook.
        assert check_due(state, later + 2 * DAY) == 1
        assert webhook_types(app, account_id) == ["account.needs_reauth"]

        faults(stack, api=None)
        assert check_due(state, later + 3 * DAY) == 1
    healed = row(app, account_id)
    assert healed.status == "active" and healed.health_reason is None
    assert webhook_types(app, account_id) == ["account.needs_reauth", "account.recovered"]
    with state.store.read() as db:
        bodies = [json.loads(r.payload) for r in db.scalars(select(WebhookOutbox))]
    recovered = next(b for b in bodies if b["type"] == "account.recovered")
    assert recovered["data"]["account"]["id"] == account_id
    assert recovered["data"]["account"]["status"] == "active"
    assert unhealthy(state, DEMO_APP_KEY) == []
    assert [e.status for e in health_entries(app, account_id)].count("failed") == 2


def test_no_verify_call_means_no_recovery(make_app: Any, sandbox: str) -> None:
    """An account in needs_reauth of an app without ``verify:`` (OpenAI) stays so: nothing
    proved its key works again, so no ``account.recovered``."""
    app = make_app(PORTAL_WEBHOOK_URL="http://127.0.0.1:9/hook", PORTAL_ENABLED_APPS=None)
    account_id = add_key_account(app, "u-noverify", key="sk-not-checked", slug="openai")
    with app.extensions["portal"].store.session() as db:
        found = db.get(ConnectedAccount, account_id)
        assert found is not None
        found.status = "needs_reauth"
    with app.app_context():
        assert check_due(app.extensions["portal"], utcnow() + DAY) == 1
    assert row(app, account_id).status == "needs_reauth"
    assert [e.status for e in health_entries(app, account_id)] == ["failed"]
    assert webhook_types(app, account_id) == []


def test_provider_outage_backs_off_that_provider_and_changes_nothing(
    app: Flask, stack: DemoStack
) -> None:
    state = app.extensions["portal"]
    first, second = add_key_account(app, "u-a"), add_key_account(app, "u-b")
    basic = add_key_account(app, "u-c", slug="sandbox-basic")
    faults(stack, api="500")
    before = sandbox_stats(stack)["api_requests"]
    now = utcnow() + DAY
    with app.app_context():
        # sandbox-keys: one call answers 500, the other account of that app is not asked;
        # sandbox-basic is another app (same sandbox, but its own backoff), asked once.
        assert check_due(state, now) == 2
    assert sandbox_stats(stack)["api_requests"] - before == 2
    for account_id in (first, second, basic):
        checked = row(app, account_id)
        assert checked.status == "active", account_id
        assert checked.health_next_at is not None
        assert checked.health_next_at >= now + timedelta(seconds=BACKOFF_BASE)
    with app.app_context():
        assert check_due(state, now + timedelta(seconds=BACKOFF_BASE - 10)) == 0
    assert webhook_types(app, first) == [] and webhook_types(app, second) == []


def test_never_more_than_n_per_minute(make_app: Any, sandbox: str) -> None:
    app = make_app(PORTAL_HEALTH_MAX_PER_MINUTE=2)
    state = app.extensions["portal"]
    for n in range(5):
        add_key_account(app, f"u-rate-{n}")
    now = utcnow() + DAY
    with app.app_context():
        assert check_due(state, now) == 2
        assert check_due(state, now + timedelta(seconds=30)) == 0
        assert check_due(state, now + timedelta(seconds=61)) == 2
        assert check_due(state, now + timedelta(seconds=122)) == 1


def connect_oauth(app: Flask, stack: DemoStack, user: str) -> str:
    """Connect a real sandbox account through the whole OAuth flow (test client + sandbox)."""
    from portal import user_hash
    from portal.demo import DEMO_APP_SECRET

    client = app.test_client()
    session = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    ).json
    assert session is not None
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox"},
        headers={"Authorization": f"Bearer {session['token']}", "Origin": stack.host.url},
    ).json
    assert ticket is not None, "no ticket"
    started = client.get(urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl())
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    consent = Browser().consent(started.headers["Location"])
    done = client.get(f"/portal/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert done.status_code == 200, done.get_data(as_text=True)[:300]
    with app.extensions["portal"].store.read() as db:
        return str(
            db.scalars(select(ConnectedAccount.id).where(ConnectedAccount.user_id == user)).one()
        )


def test_oauth_token_is_refreshed_before_it_lapses_and_a_revoked_grant_flagged(
    app: Flask, stack: DemoStack
) -> None:
    state = app.extensions["portal"]
    account_id = connect_oauth(app, stack, f"u-oauth-{uuid.uuid4().hex[:6]}")
    opened = state.sealer.open(account_id, row(app, account_id).credentials)
    refreshes = sandbox_stats(stack)["token_requests"]["refresh_token"]
    with app.app_context():
        # The sandbox's access tokens live an hour: shorter than the interval, so refreshed.
        assert check_due(state, utcnow() + DAY) == 1
    assert sandbox_stats(stack)["token_requests"]["refresh_token"] == refreshes + 1
    renewed = state.sealer.open(account_id, row(app, account_id).credentials)
    assert renewed["access_token"] != opened["access_token"]
    assert row(app, account_id).status == "active"

    revoked = requests.post(
        f"{stack.sandbox.url}/oauth/revoke",
        data={"token": renewed["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    assert revoked.status_code == 200
    with app.app_context():
        assert check_due(state, utcnow() + 2 * DAY) == 1
    flagged = row(app, account_id)
    assert flagged.status == "needs_reauth"
    assert flagged.health_reason == "The provider refused the refresh token."
    assert webhook_types(app, account_id)[-1] == "account.needs_reauth"
    sent = len(webhook_types(app, account_id))
    refreshes = sandbox_stats(stack)["token_requests"]["refresh_token"]
    with app.app_context():
        assert check_due(state, utcnow() + 3 * DAY) == 1
    # A refused grant is not asked again (only a reconnect mends it), nor re-announced.
    assert sandbox_stats(stack)["token_requests"]["refresh_token"] == refreshes
    assert len(webhook_types(app, account_id)) == sent


def test_two_workers_check_each_account_once(
    make_app: Any, sandbox: str, stack: DemoStack, shared_database: str
) -> None:
    """Two real worker threads, each with its own app and connection pool, on one database:
    every due account is checked exactly once."""
    config = {
        "PORTAL_DATABASE_URL": shared_database,
        "PORTAL_AUTO_MIGRATE": True,
        "PORTAL_HEALTH_MAX_PER_MINUTE": 1000,
        "PORTAL_WORKER_POLL_INTERVAL": 0.02,
    }
    first = make_app(**config)
    second = make_app(**config)
    ids = [add_key_account(first, f"u-two-{n}") for n in range(24)]
    with first.extensions["portal"].store.session() as db:
        db.execute(update(ConnectedAccount).values(health_next_at=utcnow() - timedelta(seconds=1)))
    before = sandbox_stats(stack)["api_requests"]
    workers = [Worker(first, batch=2).start(), Worker(second, batch=2).start()]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with first.extensions["portal"].store.read() as db:
                done = db.scalar(
                    select(ConnectedAccount.id)
                    .where(ConnectedAccount.health_next_at <= utcnow() + timedelta(hours=1))
                    .limit(1)
                )
            if done is None:
                break
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()
    counts = {account_id: len(health_entries(first, account_id)) for account_id in ids}
    assert counts == dict.fromkeys(ids, 1)
    assert sandbox_stats(stack)["api_requests"] - before == len(ids)
    for app in (first, second):
        app.extensions["portal"].store.dispose()
