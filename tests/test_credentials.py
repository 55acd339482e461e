"""Token refresh and credentials at rest (SECURITY.md "Proxy and tokens").

Against the live sandbox provider (rotating refresh tokens with reuse detection, RFC 9700
§4.14.2; ``/_sandbox/stats`` counts token and API requests), and against :class:`Upstream`
fake providers where the sandbox cannot play the part (a token endpoint that does not rotate,
an API that refuses every token).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session, sandbox_stats
from sqlalchemy import inspect, select, text
from test_proxy import (
    Upstream,
    account_ids,
    add_account,
    assert_error,
    connect_form,
    fetch,
    proxy,
    server_headers,
    write_app,
)
from werkzeug.wrappers import Request, Response

from portal import signals, user_hash
from portal.crypto import Sealer, generate_key
from portal.demo import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DemoStack,
    sandbox_app_settings,
)
from portal.errors import CredentialError
from portal.store import ConnectedAccount

# --------------------------------------------------------------------------- helpers


def state_of(stack: DemoStack) -> Any:
    return stack.portal_app.extensions["portal"]


def stored(state: Any, account_id: str) -> dict[str, Any]:
    """The account's credentials as the portal stores them, opened with its sealer."""
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        return state.sealer.open(account.id, account.credentials)  # type: ignore[no-any-return]


def stored_row(state: Any, account_id: str) -> ConnectedAccount:
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        return account


def set_stored_expiry(state: Any, account_id: str, when: float) -> None:
    """Make the portal believe the access token expires at ``when`` (the pre-emptive path)."""
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        data = state.sealer.open(account.id, account.credentials)
        data["expires_at"] = int(when)
        account.credentials = state.sealer.seal(account.id, data)
        account.expires_at = datetime.fromtimestamp(when, UTC)


def expire_at_sandbox(stack: DemoStack) -> None:
    """The sandbox now refuses every access token it issued (refresh tokens keep working)."""
    response = requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5)
    assert response.status_code == 200


def reset_counters(stack: DemoStack) -> None:
    requests.post(f"{stack.sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()


def refreshes(stack: DemoStack) -> int:
    return int(sandbox_stats(stack)["token_requests"]["refresh_token"])


def api_calls(stack: DemoStack) -> int:
    return int(sandbox_stats(stack)["api_requests"])


def connected(api: Api, user: str | None = None) -> str:
    """Connect the sandbox app for ``api``'s user; the new (or updated) account's id."""
    callback, _ = connect_sandbox(api, user=user)
    assert callback.status_code == 200, callback.text[:300]
    return account_ids(api)[0]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def signal_log(stack: DemoStack) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every token_refreshed / token_refresh_failed signal the stack's portal sends."""
    log: dict[str, list[dict[str, Any]]] = {"refreshed": [], "failed": []}
    lock = threading.Lock()

    def on_refreshed(sender: Any, **kw: Any) -> None:
        with lock:
            log["refreshed"].append(kw)

    def on_failed(sender: Any, **kw: Any) -> None:
        with lock:
            log["failed"].append(kw)

    signals.token_refreshed.connect(on_refreshed, sender=stack.portal_app)
    signals.token_refresh_failed.connect(on_failed, sender=stack.portal_app)
    try:
        yield log
    finally:
        signals.token_refreshed.disconnect(on_refreshed, sender=stack.portal_app)
        signals.token_refresh_failed.disconnect(on_failed, sender=stack.portal_app)


class FakeProvider:
    """An OAuth provider + API on an :class:`Upstream` (``/oauth/token``, ``/api/me``).

    ``rotate``: refresh responses carry a new refresh token. ``api_accepts``: the API accepts
    the access tokens this provider issued (else it answers 401 to every token).
    """

    CLIENT_ID = "fake-client"
    CLIENT_SECRET = "fake-client-secret-DO-NOT-LEAK"

    def __init__(self, upstream: Upstream, *, rotate: bool, api_accepts: bool = True) -> None:
        self.upstream = upstream
        self.rotate = rotate
        self.api_accepts = api_accepts
        self.issued: list[str] = []
        self._lock = threading.Lock()
        upstream.routes["/oauth/token"] = self.token
        upstream.routes["/api/me"] = self.me

    def token(self, request: Request) -> Response:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (self.CLIENT_ID, self.CLIENT_SECRET):
            return Response('{"error":"invalid_client"}', 401, content_type="application/json")
        if request.form.get("grant_type") != "refresh_token":
            return Response(
                '{"error":"unsupported_grant_type"}', 400, content_type="application/json"
            )
        with self._lock:
            n = len(self.issued) + 1
            access = f"at-fake-{n}-{uuid.uuid4().hex}"
            self.issued.append(access)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": 3600}
        if self.rotate:
            body["refresh_token"] = f"rt-fake-{n}-{uuid.uuid4().hex}"
        return Response(json.dumps(body), content_type="application/json")

    def me(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.api_accepts and token in self.issued:
            return Response('{"id": "fake-user"}', content_type="application/json")
        return Response(
            '{"error": "invalid_token", "from": "upstream"}',
            401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            content_type="application/json",
        )

    def token_requests(self) -> list[Any]:
        return self.upstream.requests_to("/oauth/token")

    def api_requests(self) -> list[Any]:
        return self.upstream.requests_to("/api/me")


FAKE_OAUTH_AUTH = (
    "  type: oauth2\n"
    '  authorize_url: "{base_url}/oauth/authorize"\n'
    '  token_url: "{base_url}/oauth/token"\n'
    "  scopes: [read]\n"
    "  token_endpoint_auth_method: client_secret_basic\n"
)


def fake_oauth_app(make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream) -> Any:
    write_app(tmp_path / "catalog", "fake-oauth", FAKE_OAUTH_AUTH, api_base="{base_url}/api")
    return make_app(
        PORTAL_CATALOG_PATHS=[str(tmp_path / "catalog")],
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "fake-oauth": {
                "base_url": upstream.url,
                "client_id": FakeProvider.CLIENT_ID,
                "client_secret": FakeProvider.CLIENT_SECRET,
            },
        },
    )


# --------------------------------------------------------------------------- refresh


def test_expired_token_is_refreshed_once_before_the_call(
    stack: DemoStack, sandbox: str, api: Api, signal_log: dict[str, list[Any]]
) -> None:
    state = state_of(stack)
    account_id = connected(api)
    before = stored(state, account_id)
    assert before["type"] == "oauth2" and before["refresh_token"]
    expire_at_sandbox(stack)
    set_stored_expiry(state, account_id, time.time() - 30)
    reset_counters(stack)

    response = proxy(api, "sandbox/contacts")
    assert response.status_code == 200, response.text
    assert response.json()["data"]
    assert refreshes(stack) == 1
    assert api_calls(stack) == 1  # refreshed first: the stale token was never sent

    after = stored(state, account_id)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and the new one kept
    assert after["expires_at"] > time.time() + 3000
    row = stored_row(state, account_id)
    assert row.expires_at is not None and row.expires_at.timestamp() > time.time() + 3000
    assert row.status == "active"
    for secret in (after["access_token"], after["refresh_token"], before["refresh_token"]):
        assert secret.encode() not in row.credentials  # sealed, not plaintext
    assert [s["account_id"] for s in signal_log["refreshed"]] == [account_id]

    again = proxy(api, "sandbox/contacts")  # the new token is used as is
    assert again.status_code == 200
    assert refreshes(stack) == 1


@pytest.mark.security("Upstream 401 on an unexpired token")
def test_upstream_401_on_unexpired_token_refreshes_once_and_retries_once(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    state = state_of(stack)
    account_id = connected(api)
    before = stored(state, account_id)
    assert before["expires_at"] > time.time() + 600  # the portal thinks it is still valid
    expire_at_sandbox(stack)
    reset_counters(stack)

    response = proxy(api, "sandbox/me")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "ada"
    assert refreshes(stack) == 1
    assert api_calls(stack) == 2  # the 401, then the one retry
    after = stored(state, account_id)
    assert after["refresh_token"] != before["refresh_token"]

    # Now the provider refuses everything: revoke the grant (RFC 7009 §2.1) with the new
    # refresh token, which revokes its access token too.
    revoked = requests.post(
        f"{stack.sandbox.url}/oauth/revoke",
        data={"token": after["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    assert revoked.status_code == 200
    reset_counters(stack)
    refused = proxy(api, "sandbox/me")
    assert_error(refused, 409, "needs_reauth")
    assert refreshes(stack) == 1  # one forced refresh (invalid_grant), no second attempt
    assert api_calls(stack) == 1  # the 401; no retry after the failed refresh
    # Every later call stays bounded too: at most one refresh attempt and one API request.
    for n in range(2, 4):
        assert_error(proxy(api, "sandbox/me"), 409, "needs_reauth")
        assert refreshes(stack) <= n
        assert api_calls(stack) <= n


@pytest.mark.security("Upstream 401 on an unexpired token")
def test_api_refusing_every_token_gets_one_refresh_one_retry_then_its_401(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    provider = FakeProvider(upstream, rotate=True, api_accepts=False)
    app = fake_oauth_app(make_app, tmp_path, stack, upstream)
    account_id = add_account(
        app,
        "u-loop",
        "fake-oauth",
        {
            "type": "oauth2",
            "access_token": "at-old",
            "refresh_token": "rt-old",
            "expires_at": int(time.time()) + 3600,
        },
    )
    response = fetch(
        app.test_client(), "/portal/api/v1/proxy/fake-oauth/me", headers=server_headers("u-loop")
    )
    assert response.status_code == 401  # the upstream's own answer, as is
    assert response.json == {"error": "invalid_token", "from": "upstream"}
    assert len(provider.token_requests()) == 1
    sent = [r.headers["authorization"] for r in provider.api_requests()]
    assert sent == ["Bearer at-old", f"Bearer {provider.issued[0]}"]
    assert stored(app.extensions["portal"], account_id)["access_token"] == provider.issued[0]


@pytest.mark.security("`invalid_grant` on refresh")
def test_invalid_grant_marks_account_needs_reauth_without_retrying(
    stack: DemoStack, sandbox: str, api: Api, signal_log: dict[str, list[Any]]
) -> None:
    state = state_of(stack)
    account_id = connected(api)
    creds = stored(state, account_id)
    revoked = requests.post(
        f"{stack.sandbox.url}/oauth/revoke",
        data={"token": creds["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    assert revoked.status_code == 200
    set_stored_expiry(state, account_id, time.time() - 30)
    reset_counters(stack)

    response = proxy(api, "sandbox/contacts")
    body = assert_error(response, 409, "needs_reauth")
    assert "reconnect" in body["message"].lower()
    assert refreshes(stack) == 1
    assert api_calls(stack) == 0  # the expired token was never sent
    assert stored_row(state, account_id).status == "needs_reauth"
    assert api.get(f"/connected-accounts/{account_id}").json()["status"] == "needs_reauth"
    assert signal_log["failed"] == [
        {
            "user_id": api.user_id,
            "app": "sandbox",
            "account_id": account_id,
            "error": "invalid_grant",
        }
    ]
    assert signal_log["refreshed"] == []

    page = requests.get(
        f"{stack.portal.url}/portal/ui/apps/sandbox", headers=api.headers, timeout=10
    )
    assert page.status_code == 200
    assert "Reconnect" in page.text

    # Reconnecting heals the account.
    assert connected(api) == account_id
    assert stored_row(state, account_id).status == "active"
    assert proxy(api, "sandbox/contacts").status_code == 200


def test_token_endpoint_failure_is_502_and_leaves_the_account_usable(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    state = state_of(stack)
    account_id = connected(api)
    before = stored(state, account_id)
    set_stored_expiry(state, account_id, time.time() - 30)
    reset_counters(stack)
    fault = requests.post(f"{sandbox}/_sandbox/faults", json={"token_endpoint": "500"}, timeout=5)
    assert fault.status_code == 200

    body = assert_error(proxy(api, "sandbox/me"), 502, "upstream_error")
    assert before["refresh_token"] not in json.dumps(body)
    assert refreshes(stack) == 1  # no retry loop against a failing provider
    assert api_calls(stack) == 0
    assert stored_row(state, account_id).status == "active"  # not needs_reauth
    assert stored(state, account_id)["refresh_token"] == before["refresh_token"]

    requests.post(f"{sandbox}/_sandbox/faults", json={"token_endpoint": None}, timeout=5)
    assert proxy(api, "sandbox/me").status_code == 200
    assert refreshes(stack) == 2


@pytest.mark.security("Refresh response without `refresh_token`")
def test_refresh_response_without_refresh_token_keeps_the_old_one(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    provider = FakeProvider(upstream, rotate=False)
    app = fake_oauth_app(make_app, tmp_path, stack, upstream)
    account_id = add_account(
        app,
        "u-keep",
        "fake-oauth",
        {
            "type": "oauth2",
            "access_token": "at-expired",
            "refresh_token": "rt-keep-me",
            "expires_at": int(time.time()) - 100,
        },
    )
    client = app.test_client()
    response = fetch(client, "/portal/api/v1/proxy/fake-oauth/me", headers=server_headers("u-keep"))
    assert response.status_code == 200, response.json
    [token_request] = provider.token_requests()
    form = parse_qs(token_request.body.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["rt-keep-me"]
    expected = (
        "Basic "
        + base64.b64encode(
            f"{FakeProvider.CLIENT_ID}:{FakeProvider.CLIENT_SECRET}".encode()
        ).decode()
    )
    assert token_request.headers["authorization"] == expected

    creds = stored(app.extensions["portal"], account_id)
    assert creds["refresh_token"] == "rt-keep-me"
    assert creds["access_token"] == provider.issued[0]
    assert creds["expires_at"] > time.time() + 3000
    # And the kept refresh token is what the next refresh presents.
    set_stored_expiry(app.extensions["portal"], account_id, time.time() - 100)
    assert (
        fetch(
            client, "/portal/api/v1/proxy/fake-oauth/me", headers=server_headers("u-keep")
        ).status_code
        == 200
    )
    second = provider.token_requests()[1]
    assert parse_qs(second.body.decode())["refresh_token"] == ["rt-keep-me"]


def slow_token_endpoint(sandbox_url: str, seconds: float = 0.5) -> None:
    """The sandbox's token endpoint answers (normally) only after ``seconds``: a refresh stays
    in flight long enough for every concurrent call to pile up behind it."""
    response = requests.post(
        f"{sandbox_url}/_sandbox/faults",
        json={"token_endpoint": "timeout", "timeout_seconds": seconds},
        timeout=5,
    )
    assert response.status_code == 200


@pytest.mark.parametrize("stored_expiry", ["past", "future"])
@pytest.mark.security("50 concurrent calls with an expired access token")
def test_fifty_concurrent_calls_refresh_exactly_once(
    stack: DemoStack, sandbox: str, api: Api, signal_log: dict[str, list[Any]], stored_expiry: str
) -> None:
    """``past``: the portal knows the token expired (pre-emptive refresh); ``future``: only the
    provider knows, every call sees a 401 first (forced refresh). The sandbox rotates refresh
    tokens and revokes the grant on reuse, so a second refresh would also break later calls."""
    state = state_of(stack)
    account_id = connected(api)
    before = stored(state, account_id)
    expire_at_sandbox(stack)
    if stored_expiry == "past":
        set_stored_expiry(state, account_id, time.time() - 30)
    reset_counters(stack)
    slow_token_endpoint(stack.sandbox.url)

    barrier = threading.Barrier(50)

    def call(_: int) -> tuple[int, str]:
        barrier.wait(timeout=30)
        response = proxy(api, "sandbox/me")
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, range(50)))
    assert [status for status, _ in results] == [200] * 50, results[:3]
    assert all(json.loads(body)["username"] == "ada" for _, body in results)
    assert refreshes(stack) == 1
    assert len(signal_log["refreshed"]) == 1
    after = stored(state, account_id)
    assert after["refresh_token"] != before["refresh_token"]
    assert proxy(api, "sandbox/me").status_code == 200  # the grant survived (no reuse)


# --------------------------------------------------------------------------- at rest


def dump_database(state: Any) -> list[tuple[str, str, Any]]:
    """Every value of every row of every table: ``(table, column, value)``."""
    engine = state.store.engine
    rows: list[tuple[str, str, Any]] = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            for row in result.mappings():
                rows.extend((table, column, value) for column, value in row.items())
    return rows


def as_texts(value: Any) -> list[bytes]:
    """A value as bytes, and for binary values their base64 decodings too."""
    if value is None:
        return []
    raw = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()
    out = [raw]
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            out.append(decode(raw + b"=" * (-len(raw) % 4)))
        except ValueError:
            pass
    return out


@pytest.mark.security("A database dump contains no plaintext token or client secret")
def test_database_dump_holds_no_plaintext_secret(stack: DemoStack, sandbox: str, api: Api) -> None:
    state = state_of(stack)
    account_id = connected(api)
    first = stored(state, account_id)
    set_stored_expiry(state, account_id, time.time() - 30)
    assert proxy(api, "sandbox/me").status_code == 200  # a refresh
    second = stored(state, account_id)
    assert second["refresh_token"] != first["refresh_token"]
    connect_form(api, "sandbox-keys", {"api_key": "sk_demo_ada"})
    connect_form(api, "sandbox-basic", {"username": "ada", "password": "lovelace"})

    secrets = {
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        "sk_demo_ada",
        "lovelace",
        DEMO_CLIENT_SECRET,
        DEMO_APP_SECRET,
    }
    rows = dump_database(state)
    assert any(table == "portal_connected_accounts" for table, _, _ in rows)
    for table, column, value in rows:
        for blob in as_texts(value):
            for secret in secrets:
                assert secret.encode() not in blob, f"{secret[:6]}… in {table}.{column}"
    # The database files themselves (SQLite: main file, WAL and shared memory).
    url = state.store.url
    if url.startswith("sqlite:///"):
        base = Path(url.removeprefix("sqlite:///"))
        files = [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists()]
        assert files
        for path in files:
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"{secret[:6]}… in {path.name}"


@pytest.mark.security("A credential blob copied onto another row is rejected")
def test_credential_blob_copied_onto_another_row_is_refused(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    state = state_of(stack)
    victim = connected(api, user="ada")
    attacker_api = new_session(stack, api.user_id + "-b")
    attacker = connected(attacker_api, user="grace")
    assert proxy(attacker_api, "sandbox/me").json()["username"] == "grace"
    with state.store.engine.begin() as conn:
        blob = conn.execute(
            text("SELECT credentials FROM portal_connected_accounts WHERE id = :id"),
            {"id": victim},
        ).scalar_one()
        conn.execute(
            text("UPDATE portal_connected_accounts SET credentials = :blob WHERE id = :id"),
            {"blob": blob, "id": attacker},
        )
    before = sandbox_stats(stack)

    response = proxy(attacker_api, "sandbox/me")
    assert response.status_code == 409
    assert set(response.json()) == {"error", "message", "error_details"}
    assert response.json()["error"] == "credentials_unreadable"
    assert "username" not in response.text  # no upstream answer leaked
    assert sandbox_stats(stack) == before  # nothing was sent, with anyone's token
    with pytest.raises(CredentialError):
        state.sealer.open(attacker, blob)
    assert proxy(api, "sandbox/me").json()["username"] == "ada"  # the victim's row still works


# --------------------------------------------------------------------------- key rotation


def _session_token(client: Any, stack: DemoStack, user: str) -> str:
    response = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    )
    assert response.status_code == 201, response.json
    return str(response.json["token"])


def _connect_via_client(app: Any, stack: DemoStack, user: str) -> None:
    """The whole OAuth connect flow through ``app``'s test client and the live sandbox."""
    client = app.test_client()
    token = _session_token(client, stack, user)
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "sandbox"},
        headers={"Authorization": f"Bearer {token}"},
    ).json
    started = client.get(urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl())
    assert started.status_code == 302
    consent = Browser().consent(started.headers["Location"])
    done = client.get(f"/portal/oauth/sandbox/callback?{urlsplit(consent.callback_url).query}")
    assert done.status_code == 200, done.get_data(as_text=True)[:300]


def _proxy_status(app: Any, user: str, app_slug: str) -> int:
    response = fetch(
        app.test_client(), f"/portal/api/v1/proxy/{app_slug}/me", headers=server_headers(user)
    )
    return int(response.status_code)


@pytest.mark.security("Key rotation (add new key, rotate, drop old key)")
def test_key_rotation_keeps_every_account_working(
    make_app: Any, stack: DemoStack, sandbox: str
) -> None:
    old, new = generate_key(), generate_key()
    user = f"u-rotate-{uuid.uuid4().hex[:8]}"
    first = make_app(PORTAL_ENCRYPTION_KEYS=[old])
    url = first.config["PORTAL_DATABASE_URL"]
    _connect_via_client(first, stack, user)
    add_account(
        first, user, "sandbox-basic", {"type": "basic", "username": "ada", "password": "lovelace"}
    )
    assert _proxy_status(first, user, "sandbox") == 200
    assert _proxy_status(first, user, "sandbox-basic") == 200

    both = make_app(PORTAL_ENCRYPTION_KEYS=[new, old], PORTAL_DATABASE_URL=url)
    assert _proxy_status(both, user, "sandbox") == 200  # new key first: old blobs still open
    assert _proxy_status(both, user, "sandbox-basic") == 200

    result = both.test_cli_runner().invoke(args=["portal", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "re-sealed 2 connected account(s)" in result.output
    store = both.extensions["portal"].store
    with store.session() as db:
        blobs = {a.id: a.credentials for a in db.scalars(select(ConnectedAccount))}
    assert len(blobs) == 2
    for account_id, blob in blobs.items():
        assert Sealer([new]).open(account_id, blob)["type"] in ("oauth2", "basic")
        with pytest.raises(CredentialError):
            Sealer([old]).open(account_id, blob)

    only_new = make_app(PORTAL_ENCRYPTION_KEYS=[new], PORTAL_DATABASE_URL=url)
    assert _proxy_status(only_new, user, "sandbox") == 200
    assert _proxy_status(only_new, user, "sandbox-basic") == 200
    # A portal still on the dropped key can no longer open them (and sends nothing).
    before = sandbox_stats(stack)
    only_old = make_app(PORTAL_ENCRYPTION_KEYS=[old], PORTAL_DATABASE_URL=url)
    assert _proxy_status(only_old, user, "sandbox-basic") == 409
    assert sandbox_stats(stack)["api_requests"] == before["api_requests"]
