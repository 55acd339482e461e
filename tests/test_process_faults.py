"""A portal process or a webhook worker SIGKILLed mid-request, then restarted (SECURITY.md
"Load and faults": process killed mid-request -> restart loses nothing committed, leaves
nothing half-written).

Each portal is its own single-process server on a fixed loopback port, so the restarted one
serves the same origin (the redirect URI the provider knows); the provider runs in the test
process and is slowed with its ``/_sandbox/faults`` hooks to hold a request in flight while the
portal dies. SIGKILL: no handler runs, the kernel closes the sockets, an open database
transaction is rolled back by the database (PostgreSQL) or its journal (SQLite).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Browser
from flask import Flask, request
from processes import (
    PortalServer,
    browser_headers,
    flask_command,
    free_port,
    migrate,
    server_headers,
    session_token,
    start_provider,
)
from sqlalchemy import func, select, update

from portal._serving import ServerThread
from portal.attempts import exchange_bound
from portal.config import DEFAULTS
from portal.crypto import Sealer
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ENCRYPTION_KEY, portal_config
from portal.sandbox.testing import RunningSandbox
from portal.service import create_app
from portal.store import ConnectAttempt, ConnectedAccount, Store, WebhookOutbox, utcnow
from portal.webhooks import enqueue, verify_webhook

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("processes"),
    pytest.mark.security("Process killed mid-request"),
]

# The core cases run on both backends; the others on one each, to keep the file short.
ONLY_POSTGRESQL = pytest.mark.parametrize("shared_database", ["postgresql"], indirect=True)
ONLY_SQLITE = pytest.mark.parametrize("shared_database", ["sqlite"], indirect=True)

#: How long the provider holds a slowed token request, in seconds.
HOLD = 3.0


@dataclass
class Site:
    """A portal process (restartable on its port), its provider, its database."""

    config: dict[str, Any]
    port: int
    workdir: Path
    provider: RunningSandbox
    store: Store
    portal: PortalServer | None = None
    runs: int = 0

    def start(self) -> PortalServer:
        self.runs += 1
        self.portal = PortalServer(self.config, self.port, self.workdir, f"portal-{self.runs}")
        return self.portal.ready()

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.provider.url}/_sandbox/stats", timeout=5).json()  # type: ignore[no-any-return]

    def fault(self, mode: str | None) -> None:
        requests.post(
            f"{self.provider.url}/_sandbox/faults",
            json={"token_endpoint": mode, "timeout_seconds": HOLD},
            timeout=5,
        ).raise_for_status()

    def accounts(self, user: str) -> list[ConnectedAccount]:
        with self.store.read() as db:
            return list(
                db.scalars(select(ConnectedAccount).where(ConnectedAccount.user_id == user))
            )

    def attempt(self, attempt_id: str) -> ConnectAttempt | None:
        with self.store.read() as db:
            return db.get(ConnectAttempt, attempt_id)


@pytest.fixture
def site(shared_database: str, tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    provider = start_provider([f"http://127.0.0.1:{port}"])
    config = portal_config(
        "http://unused.invalid",
        provider.url,
        ["http://127.0.0.1:9"],
        PORTAL_DATABASE_URL=shared_database,
        PORTAL_AUTO_MIGRATE=False,
        PORTAL_RATE_LIMITS_ENABLED=False,
    )
    migrate(config)
    running = Site(config, port, tmp_path, provider, Store(shared_database))
    try:
        yield running
    finally:
        if running.portal is not None:
            running.portal.stop()
        running.store.dispose()
        provider.stop()


def _until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _start_connect(portal: PortalServer, user: str) -> tuple[Browser, str, str]:
    """Ticket, popup redirect and consent: ``(browser, callback URL, attempt id)``."""
    ticket = requests.post(
        f"{portal.url}/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers=browser_headers(session_token(portal.url, user)),
        timeout=10,
    )
    assert ticket.status_code == 201, ticket.text
    browser = Browser()
    started = browser.start(ticket.json()["connect_url"])
    assert started.status_code == 302, started.text[:300]
    consent = browser.consent(started.headers["Location"])
    return browser, consent.callback_url, ticket.json()["attempt_id"]


def _in_background(call: Any) -> threading.Thread:
    def run() -> None:
        try:
            call()
        except requests.RequestException:
            pass  # the server died under it: that is the point

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- connect


@pytest.mark.security("Code replayed -> second attempt fails")
def test_killed_between_redirect_and_callback(site: Site) -> None:
    """The attempt row outlives the process; the restarted one completes the callback once."""
    user = f"user-pf-{uuid.uuid4().hex[:8]}"
    first = site.start()
    browser, callback, attempt_id = _start_connect(first, user)
    first.kill()
    attempt = site.attempt(attempt_id)
    assert attempt is not None and attempt.status == "started"

    second = site.start()
    done = browser.callback(callback)
    assert done.status_code == 200, done.text[:300]
    again = browser.callback(callback)
    assert again.status_code == 400
    assert site.stats()["token_requests"]["authorization_code"] == 1
    [account] = site.accounts(user)
    attempt = site.attempt(attempt_id)
    assert attempt is not None and attempt.status == "connected"
    assert attempt.account_id == account.id
    me = requests.get(
        f"{second.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=10
    )
    assert me.status_code == 200, me.text


@pytest.mark.security("Database unavailable between token exchange and commit")
@ONLY_POSTGRESQL
def test_killed_during_code_exchange(site: Site) -> None:
    """Killed while the provider answers the code exchange (it finishes the work: the tokens
    it issued reach nobody): no account row, the used callback is refused after the restart
    (no second exchange of that code), and connecting again works, once."""
    user = f"user-pf-{uuid.uuid4().hex[:8]}"
    first = site.start()
    browser, callback, attempt_id = _start_connect(first, user)
    site.fault("timeout")
    _in_background(lambda: browser.callback(callback))
    _until(lambda: site.stats()["token_requests"]["authorization_code"] == 1, "the exchange")
    first.kill()
    site.fault(None)
    assert site.accounts(user) == []

    second = site.start()
    assert site.accounts(user) == []
    refused = browser.callback(callback)
    assert refused.status_code == 400
    assert site.stats()["token_requests"]["authorization_code"] == 1

    # The claimed attempt stays `exchanging`: polled (as frame.js does when the popup lost its
    # opener) it is pending within exchange_bound, then failed with connect_interrupted. The
    # bound is passed by moving the row's updated_at back in the database, not by sleeping.
    def polled() -> dict[str, Any]:
        response = requests.get(
            f"{second.url}/portal/api/v1/connect-attempts/{attempt_id}",
            headers=browser_headers(session_token(second.url, user)),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    attempt = site.attempt(attempt_id)
    assert attempt is not None and attempt.status == "exchanging"
    assert polled() == {"status": "pending", "app": "sandbox"}
    past_the_bound = utcnow() - exchange_bound({**DEFAULTS, **site.config}) - timedelta(seconds=1)
    with site.store.session() as db:
        db.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.id == attempt_id)
            .values(updated_at=past_the_bound)
        )
    interrupted = polled()
    assert interrupted["status"] == "failed", interrupted
    assert interrupted["error"]["type"] == "connect_interrupted"

    browser, callback, _ = _start_connect(second, user)
    done = browser.callback(callback)
    assert done.status_code == 200, done.text[:300]
    assert site.stats()["token_requests"]["authorization_code"] == 2
    assert len(site.accounts(user)) == 1
    attempt = site.attempt(attempt_id)
    assert attempt is not None and attempt.account_id is None


# --------------------------------------------------------------------------- refresh


def _connected(site: Site, user: str) -> PortalServer:
    portal = site.start()
    browser, callback, _ = _start_connect(portal, user)
    assert browser.callback(callback).status_code == 200
    return portal


def _expire_stored(site: Site, account_id: str) -> dict[str, Any]:
    """Make the stored access token look expired (the portal then refreshes before use)."""
    sealer = Sealer([DEMO_ENCRYPTION_KEY])
    with site.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        data = sealer.open(account.id, account.credentials)
        data["expires_at"] = int(time.time()) - 30
        account.credentials = sealer.seal(account.id, data)
        account.expires_at = utcnow() - timedelta(seconds=30)
    return data


def _opened(site: Site, account_id: str) -> dict[str, Any]:
    with site.store.read() as db:
        account = db.get(ConnectedAccount, account_id)
        assert account is not None
        return Sealer([DEMO_ENCRYPTION_KEY]).open(account.id, account.credentials)


def test_killed_mid_refresh_provider_drops_the_request(site: Site) -> None:
    """The provider cancels the abandoned refresh (``delay`` fault): after the restart the
    stored credentials are exactly the ones before, they open, and the next call refreshes
    with the same refresh token and succeeds."""
    user = f"user-pf-{uuid.uuid4().hex[:8]}"
    first = _connected(site, user)
    [account] = site.accounts(user)
    before = _expire_stored(site, account.id)
    site.fault("delay")
    _in_background(
        lambda: requests.get(
            f"{first.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=30
        )
    )
    _until(lambda: site.stats()["token_requests"]["refresh_token"] == 1, "the refresh")
    first.kill()
    time.sleep(HOLD + 0.5)  # the provider wakes, sees the hang-up, issues nothing
    site.fault(None)
    assert _opened(site, account.id) == before  # not half-written

    second = site.start()
    me = requests.get(
        f"{second.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=30
    )
    assert me.status_code == 200, me.text
    assert site.stats()["token_requests"]["refresh_token"] == 2
    after = _opened(site, account.id)
    assert after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] > time.time()
    [account] = site.accounts(user)
    assert account.status == "active"


@pytest.mark.security("`invalid_grant` on refresh")
@ONLY_SQLITE
def test_killed_mid_refresh_provider_rotates_anyway(site: Site) -> None:
    """The provider finishes the abandoned refresh (``timeout`` fault) and rotates the refresh
    token; the response dies with the process. The portal's row is still whole (the old
    credentials, which open), and the restarted portal's refresh with the retired token is
    refused by the provider's reuse detection (RFC 9700 §4.14.2): the account becomes
    ``needs_reauth`` (409, not 5xx), at most one refresh request per call, no retry loop. This is the known limit
    of rotating refresh tokens without a provider-side grace period, not a portal fault."""
    user = f"user-pf-{uuid.uuid4().hex[:8]}"
    first = _connected(site, user)
    [account] = site.accounts(user)
    before = _expire_stored(site, account.id)
    site.fault("timeout")
    _in_background(
        lambda: requests.get(
            f"{first.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=30
        )
    )
    _until(lambda: site.stats()["token_requests"]["refresh_token"] == 1, "the refresh")
    first.kill()
    time.sleep(HOLD + 0.5)  # the provider wakes and rotates for nobody
    site.fault(None)
    assert _opened(site, account.id) == before

    second = site.start()
    for _ in range(2):
        answer = requests.get(
            f"{second.url}/portal/api/v1/proxy/sandbox/me", headers=server_headers(user), timeout=30
        )
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "needs_reauth"
    # The killed one, then at most one per call (bounded, as in test_credentials).
    assert 2 <= site.stats()["token_requests"]["refresh_token"] <= 3
    [account] = site.accounts(user)
    assert account.status == "needs_reauth"
    assert _opened(site, account.id) == before


# --------------------------------------------------------------------------- webhooks


class HoldingReceiver:
    """A host backend's webhook endpoint that holds the first delivery of each id until
    released, records every delivery, and de-duplicates by webhook id as hosts must."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        app = Flask("holding-receiver")
        app.add_url_rule("/hook", "hook", self._hook, methods=["POST"])
        self.server = ServerThread().start(app)
        self.url = f"{self.server.url}/hook"

    def _hook(self) -> tuple[str, int]:
        event = verify_webhook(
            request.get_data(), request.headers.get("X-Portal-Signature"), DEMO_APP_SECRET
        )
        with self._lock:
            first = all(d["id"] != event["id"] for d in self.deliveries)
            self.deliveries.append(event)
        if first and len(self.deliveries) == 1:
            self.arrived.set()
            self.release.wait(20)
        return "", 204

    def unique(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        with self._lock:
            for event in self.deliveries:
                seen.setdefault(event["id"], event)
        return list(seen.values())


@ONLY_POSTGRESQL
def test_worker_killed_mid_delivery_delivers_after_restart(
    shared_database: str, tmp_path: Path
) -> None:
    """Delivery is at least once: the worker dies while the receiver holds the POST (which the
    receiver did get and process), so the restarted worker sends that webhook again with the
    same id; the receiver's de-duplication by id leaves exactly one of each, in order."""
    receiver = HoldingReceiver()
    config = portal_config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        ["http://127.0.0.1:9"],
        PORTAL_DATABASE_URL=shared_database,
        PORTAL_AUTO_MIGRATE=False,
        PORTAL_WEBHOOK_URL=receiver.url,
        PORTAL_WEBHOOK_TIMEOUT=30,
    )
    migrate(config)
    store = Store(shared_database)
    workers: list[Any] = []
    try:
        # Two webhooks about one account, written as the portal writes them (outbox rows).
        app = create_app(config)
        state = app.extensions["portal"]
        account_id = f"ca_{uuid.uuid4().hex[:12]}"
        with state.store.session() as db:
            for kind in ("account.connected", "account.disconnected"):
                data = {"user_id": "user-wh", "app": "sandbox", "account": {"id": account_id}}
                enqueue(db, kind, data, account_id, project=DEMO_APP_KEY, state=state)
        state.store.dispose()
        with store.read() as db:
            rows = list(db.scalars(select(WebhookOutbox).order_by(WebhookOutbox.seq)))
        assert [r.type for r in rows] == ["account.connected", "account.disconnected"]

        worker = flask_command(config, ["portal", "worker", "--interval", "0.2"], tmp_path, "w1")
        workers.append(worker)
        assert receiver.arrived.wait(60), worker.log()
        worker.kill()
        receiver.release.set()
        # The dead worker's lease (its batch's worst case plus a margin, minutes) runs out: move
        # the clock's mark back instead of waiting.
        with store.session() as db:
            db.execute(
                update(WebhookOutbox)
                .where(WebhookOutbox.delivered_at.is_(None))
                .values(next_attempt_at=utcnow())
            )

        again = flask_command(config, ["portal", "worker", "--interval", "0.2"], tmp_path, "w2")
        workers.append(again)

        def drained() -> bool:
            with store.read() as db:
                return (
                    db.scalar(select(func.count()).where(WebhookOutbox.delivered_at.is_(None))) == 0
                )

        _until(drained, "the outbox to drain", timeout=60)
        ids = [r.id for r in rows]
        assert [d["id"] for d in receiver.deliveries] == [ids[0], ids[0], ids[1]]
        assert [e["id"] for e in receiver.unique()] == ids
        assert receiver.unique()[0]["data"]["account"]["id"] == account_id
        with store.read() as db:
            attempts = [
                r.attempts for r in db.scalars(select(WebhookOutbox).order_by(WebhookOutbox.seq))
            ]
        assert attempts == [2, 1]
    finally:
        for process in workers:
            process.stop()
        receiver.server.stop()
        store.dispose()
