"""The proxy's hot-path caches never serve what the database or the clock no longer allows.

* opened credentials (:func:`portal.credentials.open_cached`) are bound to the exact sealed blob
  of the row read for this request: a refresh or reconnect written by another process, a
  disconnect, a tampered or copied blob, or another app's keys are all seen at once;
* verified session tokens (:meth:`portal.auth.TokenService.read_session`) still expire, and a
  cached token is still refused by a service with another secret.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from test_proxy import (
    TEST_KEY,
    Upstream,
    add_account,
    app_with_upstream,
    assert_error,
    fetch,
    server_headers,
)

from portal.auth import TokenService
from portal.crypto import generate_key
from portal.demo import DEMO_APP_KEY, DemoStack
from portal.errors import AuthenticationFailed
from portal.store import ConnectedAccount

USER = "hot-path-user"
URL = "/portal/api/v1/proxy/echo-keys/things"


@pytest.fixture
def upstream() -> Any:
    server = Upstream()
    yield server
    server.stop()


def sent_keys(upstream: Upstream) -> list[str | None]:
    return [r.headers.get("x-test-key") for r in upstream.requests_to("/v1/things")]


def test_a_new_blob_written_elsewhere_is_used_at_once(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    account_id = add_account(app, USER, "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    client = app.test_client()
    for _ in range(2):  # the second call is served from the opened-credentials cache
        assert fetch(client, URL, headers=server_headers(USER)).status_code == 200
    # Another process reconnects the account: a new sealed blob in the row.
    state = app.extensions["portal"]
    with state.store.session() as db:
        db.execute(
            update(ConnectedAccount)
            .where(ConnectedAccount.id == account_id)
            .values(
                credentials=state.sealer.seal(account_id, {"type": "api_key", "api_key": "new"})
            )
        )
    assert fetch(client, URL, headers=server_headers(USER)).status_code == 200
    assert sent_keys(upstream) == [TEST_KEY, TEST_KEY, "new"]
    # A blob tampered with is refused even though this process opened the account before.
    with state.store.session() as db:
        blob = db.scalars(select(ConnectedAccount.credentials)).one()
        tampered = blob[:-6] + (b"AAAAAA" if blob[-6:] != b"AAAAAA" else b"BBBBBB")
        db.execute(update(ConnectedAccount).values(credentials=tampered))
    assert_error(fetch(client, URL, headers=server_headers(USER)), 409, "credentials_unreadable")
    # Disconnected elsewhere: no row, no call, whatever was cached.
    with state.store.session() as db:
        db.execute(update(ConnectedAccount).values(credentials=blob))
    assert fetch(client, URL, headers=server_headers(USER)).status_code == 200
    with state.store.session() as db:
        db.execute(delete(ConnectedAccount))
    assert_error(fetch(client, URL, headers=server_headers(USER)), 404, "not_connected")
    assert len(sent_keys(upstream)) == 4


def test_a_blob_copied_to_another_account_or_app_does_not_open(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    first = add_account(app, USER, "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    second = add_account(app, USER, "echo-keys", {"type": "api_key", "api_key": "two"}, "ext-2")
    client = app.test_client()
    for account_id in (first, second):  # both opened, so both cached
        assert (
            fetch(
                client, f"{URL}?connectedAccountId={account_id}", headers=server_headers(USER)
            ).status_code
            == 200
        )
    state = app.extensions["portal"]
    with state.store.session() as db:
        blob = db.scalars(
            select(ConnectedAccount.credentials).where(ConnectedAccount.id == first)
        ).one()
        db.execute(
            update(ConnectedAccount).where(ConnectedAccount.id == second).values(credentials=blob)
        )
    response = fetch(client, f"{URL}?connectedAccountId={second}", headers=server_headers(USER))
    assert_error(response, 409, "credentials_unreadable")
    # Another portal app with other keys on a copy of that row: its own keys decide.
    other = app_with_upstream(
        make_app, tmp_path / "other", stack, upstream.url, PORTAL_ENCRYPTION_KEYS=[generate_key()]
    )
    with other.extensions["portal"].store.session() as db:
        db.add(
            ConnectedAccount(
                id=first,
                project=DEMO_APP_KEY,
                user_id=USER,
                app="echo-keys",
                external_id="ext-1",
                label="x",
                scopes=[],
                credentials=blob,
            )
        )
    response = fetch(other.test_client(), URL, headers=server_headers(USER))
    assert_error(response, 409, "credentials_unreadable")
    assert sent_keys(upstream) == [TEST_KEY, "two"]


def test_a_verified_session_token_still_expires() -> None:
    tokens = TokenService("secret", session_ttl=1, ticket_ttl=600)
    token, _ = tokens.issue_session("alice", "http://host.example", None)
    assert tokens.read_session(token).user_id == "alice"
    assert tokens.read_session(token).user_id == "alice"  # from the verified cache
    with pytest.raises(AuthenticationFailed):
        TokenService("other-secret", 1, 600).read_session(token)
    time.sleep(2.1)
    with pytest.raises(AuthenticationFailed) as info:
        tokens.read_session(token)
    assert info.value.error_code == "token_expired"
