"""portal/webhooks.py: signatures, the transactional outbox, and ordered at-least-once delivery
to a real receiver over loopback HTTP (SECURITY.md "Load and faults": host webhook receiver
down, then back -> every webhook delivered after recovery, in order per account, each signed,
none duplicated beyond at-least-once with an idempotency id)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session, stack_database
from flask import Flask, request
from sqlalchemy import select, text

from portal import WebhookVerificationError, verify_webhook
from portal._serving import ServerThread
from portal.demo import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DemoStack,
    portal_config,
)
from portal.service import create_app as create_portal_app
from portal.store import ConnectedAccount, WebhookOutbox, utcnow
from portal.webhooks import deliver_due, enqueue, pending_count, sign
from portal.worker import run_once

BODY = b'{"id":"wh_1","type":"account.connected","created_at":"2026-01-01T00:00:00.000Z","data":{}}'
#: Fake-clock step between worker passes: longer than any backoff (1 h + 10 % jitter).
STEP = timedelta(hours=2)


# --------------------------------------------------------------------------- sign / verify


def test_signed_body_verifies() -> None:
    now = int(time.time())
    header = sign("s3cret", BODY, now)
    assert re.fullmatch(rf"t={now},v1=[0-9a-f]{{64}}", header)
    assert verify_webhook(BODY, header, "s3cret")["id"] == "wh_1"
    assert verify_webhook(BODY.decode(), header, ["other", "s3cret"])["type"] == (
        "account.connected"
    )


def test_tampered_body_is_refused() -> None:
    header = sign("s3cret", BODY, int(time.time()))
    with pytest.raises(WebhookVerificationError, match="No webhook signature matches"):
        verify_webhook(BODY.replace(b"wh_1", b"wh_2"), header, "s3cret")


def test_wrong_secret_is_refused() -> None:
    header = sign("s3cret", BODY, int(time.time()))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, header, "not-the-secret")


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_timestamp_outside_tolerance_is_refused(skew: int) -> None:
    now = time.time()
    header = sign("s3cret", BODY, int(now) + skew)  # a captured request, replayed later
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(BODY, header, "s3cret", now=now)
    assert verify_webhook(BODY, header, "s3cret", tolerance=86401, now=now)


def test_rotation_accepts_either_secret_during_the_overlap() -> None:
    now = int(time.time())
    both = sign(["new-secret", "old-secret"], BODY, now)  # sender holding both
    assert both.count("v1=") == 2
    assert verify_webhook(BODY, both, "old-secret")  # receiver not yet rotated
    assert verify_webhook(BODY, both, "new-secret")  # receiver already rotated
    only_new = sign("new-secret", BODY, now)
    assert verify_webhook(BODY, only_new, ["old-secret", "new-secret"])  # receiver overlap
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, only_new, "old-secret")  # old secret dropped by the sender


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "t=,v1=abc",
        "t=abc,v1=abc",
        "t=1,t=2,v1=abc",
        "v1=abc",
        "t=1700000000",
        "t=1700000000;v1=abc",
        "t=1700000000,v1=" + "a" * 5000,
    ],
    ids=[
        "missing",
        "empty",
        "no-pairs",
        "empty-t",
        "text-t",
        "two-t",
        "no-t",
        "no-v1",
        "semicolons",
        "oversized",
    ],
)
def test_garbled_header_is_refused(header: str | None) -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, header, "s3cret")


def test_body_must_be_a_json_object() -> None:
    now = int(time.time())
    for body in (b"[1,2]", b"not json"):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(body, sign("s3cret", body, now), "s3cret")


# --------------------------------------------------------------------------- receiver


class Receiver:
    """A host backend's webhook endpoint on loopback that records every request it gets.

    ``mode`` is ``"up"`` (204) or ``"503"``; ids in ``reject`` always get 503. ``stop()`` and
    ``start()`` take the server down and bring it back on the same port.
    """

    def __init__(self, secret: str = DEMO_APP_SECRET) -> None:
        self.secret = secret
        self.mode = "up"
        self.reject: set[str] = set()
        self.delay = 0.0
        self.on_call: Callable[[], Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ServerThread | None = None
        self.port = 0
        self.app = Flask("receiver")
        self.app.add_url_rule("/hook", "hook", self._hook, methods=["POST"])

    def _hook(self) -> tuple[str, int]:
        body = request.get_data()
        try:
            event: dict[str, Any] | None = verify_webhook(
                body, request.headers.get("X-Portal-Signature"), self.secret
            )
        except WebhookVerificationError:
            event = None
        webhook_id = request.headers.get("X-Portal-Webhook-Id", "")
        status = 503 if self.mode == "503" or webhook_id in self.reject else 204
        if event is None:
            status = 400
        if self.delay:
            time.sleep(self.delay)
        if self.on_call is not None:
            self.on_call()
        with self._lock:
            self.calls.append(
                {
                    "id": webhook_id,
                    "event": event,
                    "status": status,
                    "content_type": request.headers.get("Content-Type"),
                }
            )
        return "", status

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._server = ServerThread("127.0.0.1", self.port).start(self.app)
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
        self.mode, self.reject, self.delay, self.on_call = "up", set(), 0.0, None

    def delivered(self) -> list[dict[str, Any]]:
        """Events answered 2xx, in arrival order."""
        with self._lock:
            return [c["event"] for c in self.calls if c["status"] < 300]


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Iterator[Receiver]:
    receiver_server.reset()
    if receiver_server._server is None:
        receiver_server.start()
    yield receiver_server
    receiver_server.reset()
    if receiver_server._server is None:
        receiver_server.start()


@pytest.fixture(scope="module")
def hooked(
    receiver_server: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoStack]:
    """A demo stack whose portal sends webhooks to the receiver, with no worker thread: the
    tests drive the worker themselves (with a fake clock to skip backoff waits)."""
    tmp = tmp_path_factory.mktemp("hooked")
    running = DemoStack(
        0,
        0,
        0,
        **stack_database(tmp, "portal"),
        worker=False,
        PORTAL_WEBHOOK_URL=receiver_server.url,
        PORTAL_WEBHOOK_TIMEOUT=2,
    ).start()
    yield running
    running.stop()


def drain(app: Flask, rounds: int = 40) -> None:
    """Run the worker until the outbox is empty, moving the clock past every backoff."""
    now = utcnow()
    for _ in range(rounds):
        run_once(app, now=now)
        if pending_count(app.extensions["portal"]) == 0:
            return
        now += STEP
    raise AssertionError("the outbox did not drain")


def outbox(app: Flask, user_id: str) -> list[WebhookOutbox]:
    """``user_id``'s outbox rows in delivery order."""
    with app.extensions["portal"].store.read() as db:
        rows = list(db.scalars(select(WebhookOutbox).order_by(WebhookOutbox.seq)))
    return [r for r in rows if json.loads(r.payload)["data"].get("user_id") == user_id]


def account_id_of(response: requests.Response) -> str:
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>',
        response.text,
        re.S,
    )
    assert match, response.text[:300]
    return str(json.loads(match.group(1))["message"]["payload"]["payload"]["connectedAccountId"])


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- the outbox


def test_enqueue_is_part_of_the_callers_transaction(make_app: Any) -> None:
    app = make_app(PORTAL_WEBHOOK_URL="http://127.0.0.1:9/hook")
    state = app.extensions["portal"]
    with app.app_context():
        with pytest.raises(RuntimeError), state.store.session() as db:
            assert enqueue(
                db, "account.connected", {"user_id": "u"}, "ca_1", project=DEMO_APP_KEY, state=state
            )
            raise RuntimeError("the change failed after the webhook was written")
        assert pending_count(state) == 0
        with state.store.session() as db:
            webhook_id = enqueue(
                db, "account.connected", {"user_id": "u"}, "ca_1", project=DEMO_APP_KEY
            )
        assert webhook_id is not None and webhook_id.startswith("wh_")
        assert pending_count(state) == 1


def test_nothing_is_recorded_while_webhooks_are_disabled(make_app: Any) -> None:
    app = make_app()
    state = app.extensions["portal"]
    with app.app_context(), state.store.session() as db:
        assert enqueue(db, "account.connected", {}, "ca_1", project=DEMO_APP_KEY) is None
    assert pending_count(state) == 0
    with app.app_context():
        assert run_once(app) == 0


def test_unknown_type_is_refused(make_app: Any) -> None:
    app = make_app(PORTAL_WEBHOOK_URL="http://127.0.0.1:9/hook")
    with app.app_context(), app.extensions["portal"].store.session() as db:
        with pytest.raises(ValueError):
            enqueue(db, "account.exploded", {}, "ca_1", project=DEMO_APP_KEY)


def test_failed_connect_writes_no_webhook_and_no_account(
    hooked: DemoStack, receiver: Receiver
) -> None:
    """The outbox table disappears between token exchange and commit: the account is not
    saved either (one transaction), and a retry stores both."""
    api = new_session(hooked, new_user())
    store = hooked.portal_app.extensions["portal"].store
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE portal_webhook_outbox RENAME TO portal_outbox_away"))
    try:
        failed, _ = connect_sandbox(api)
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE portal_outbox_away RENAME TO portal_webhook_outbox"))
    assert failed.status_code == 503
    assert api.get("/connected-accounts").json()["connected_accounts"] == []
    assert outbox(hooked.portal_app, api.user_id) == []

    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE portal_connected_accounts RENAME TO portal_ca_away"))
    try:
        failed, _ = connect_sandbox(api)
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE portal_ca_away RENAME TO portal_connected_accounts"))
    assert failed.status_code == 503
    assert outbox(hooked.portal_app, api.user_id) == []

    retry, _ = connect_sandbox(api)
    assert retry.status_code == 200
    [row] = outbox(hooked.portal_app, api.user_id)
    assert row.type == "account.connected"
    drain(hooked.portal_app)


# --------------------------------------------------------------------------- delivery


def test_connect_reconnect_disconnect_reach_the_receiver(
    hooked: DemoStack, receiver: Receiver
) -> None:
    api = new_session(hooked, new_user())
    first, _ = connect_sandbox(api)
    account_id = account_id_of(first)
    connect_sandbox(api)  # the same external account again: reconnected
    assert api.delete(f"/connected-accounts/{account_id}").status_code == 200
    drain(hooked.portal_app)

    events = [e for e in receiver.delivered() if e["data"].get("user_id") == api.user_id]
    assert [e["type"] for e in events] == [
        "account.connected",
        "account.reconnected",
        "account.disconnected",
    ]
    connected = events[0]
    assert set(connected) == {"id", "type", "project", "created_at", "data"}
    assert connected["project"] == DEMO_APP_KEY  # the project (app key) whose data it reports
    assert re.fullmatch(r"wh_[A-Za-z0-9_-]{24}", connected["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", connected["created_at"])
    data = connected["data"]
    assert data["app"] == "sandbox"
    assert data["account"]["id"] == account_id
    assert data["account"]["label"] == "ada@sandbox.test"
    assert [a["id"] for a in data["connected_accounts"]] == [account_id]
    assert "credentials" not in json.dumps(events) and "access_token" not in json.dumps(events)
    assert events[2]["data"]["account"]["id"] == account_id
    assert events[2]["data"]["connected_accounts"] == []
    for call in receiver.calls:
        assert call["content_type"] == "application/json"
        assert call["event"] is not None  # every request was signed
        assert call["id"] == call["event"]["id"]  # X-Portal-Webhook-Id names the body's id


def test_reconnect_route_sends_account_reconnected_for_the_same_id(
    hooked: DemoStack, receiver: Receiver
) -> None:
    api = new_session(hooked, new_user())
    account_id = account_id_of(connect_sandbox(api)[0])
    ticket = api.post(f"/connected-accounts/{account_id}/reconnect", json={"opener": "frame"})
    assert ticket.status_code == 201, ticket.text
    browser = Browser()
    started = browser.start(ticket.json()["connect_url"])
    consent = browser.consent(started.headers["Location"])
    assert account_id_of(browser.callback(consent.callback_url)) == account_id
    drain(hooked.portal_app)

    events = [e for e in receiver.delivered() if e["data"].get("user_id") == api.user_id]
    assert [e["type"] for e in events] == ["account.connected", "account.reconnected"]
    assert events[1]["data"]["account"]["id"] == account_id


@pytest.mark.security("`invalid_grant` on refresh")
def test_refused_refresh_sends_needs_reauth(hooked: DemoStack, receiver: Receiver) -> None:
    api = new_session(hooked, new_user())
    account_id = account_id_of(connect_sandbox(api)[0])
    state = hooked.portal_app.extensions["portal"]
    with state.store.read() as db:
        row = db.get(ConnectedAccount, account_id)
        assert row is not None
        refresh_token = state.sealer.open(account_id, row.credentials)["refresh_token"]
    revoked = requests.post(  # the end user revoked the grant at the provider (RFC 7009)
        f"{hooked.sandbox.url}/oauth/revoke",
        data={"token": refresh_token, "token_type_hint": "refresh_token"},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        timeout=5,
    )
    assert revoked.status_code == 200
    assert api.get("/proxy/sandbox/contacts").status_code == 409  # needs_reauth
    drain(hooked.portal_app)
    mine = [e for e in receiver.delivered() if e["data"].get("user_id") == api.user_id]
    assert [e["type"] for e in mine] == ["account.connected", "account.needs_reauth"]
    assert mine[1]["data"]["app"] == "sandbox"
    assert mine[1]["data"]["account"]["id"] == account_id
    assert mine[1]["data"]["account"]["status"] == "needs_reauth"


@pytest.mark.security("Host webhook receiver down, then back")
def test_receiver_down_then_back_loses_nothing_and_keeps_order(
    hooked: DemoStack, receiver: Receiver
) -> None:
    api = new_session(hooked, new_user())
    receiver.stop()  # connection refused
    ada = account_id_of(connect_sandbox(api, user="ada")[0])
    grace = account_id_of(connect_sandbox(api, user="grace")[0])
    connect_sandbox(api, user="ada")  # reconnected
    assert api.delete(f"/connected-accounts/{grace}").status_code == 200
    connect_sandbox(api, user="ada")  # reconnected again

    app = hooked.portal_app
    now = utcnow()
    for _ in range(3):  # the worker keeps trying while the receiver is down
        run_once(app, now=now)
        now += STEP
    rows = outbox(app, api.user_id)
    assert len(rows) == 5
    assert all(r.delivered_at is None and r.given_up_at is None for r in rows)
    heads = [r for r in rows if r.attempts]
    assert {r.ordering_key for r in heads} == {ada, grace}
    assert all(r.attempts == 3 for r in heads)  # only each account's oldest row is tried
    assert all(r.last_error and "could not connect" in r.last_error for r in heads)
    assert all(DEMO_APP_SECRET not in (r.last_error or "") for r in heads)

    receiver.start()
    receiver.mode = "503"  # back, but failing
    for _ in range(2):
        run_once(app, now=now)
        now += STEP
    assert receiver.delivered() == []
    receiver.mode = "up"
    drain(app)

    expected = [(r.id, r.ordering_key, r.type) for r in outbox(app, api.user_id)]
    mine = [
        c for c in receiver.calls if c["event"] and c["event"]["data"]["user_id"] == api.user_id
    ]
    assert all(c["event"] is not None for c in receiver.calls)  # each signed
    delivered = [c["id"] for c in mine if c["status"] < 300]
    assert Counter(delivered) == Counter(r[0] for r in expected)  # none lost, none twice
    assert {c["id"] for c in mine if c["status"] >= 500} <= set(delivered)  # same id on retry
    for key in (ada, grace):
        in_order = [i for i, k, _ in expected if k == key]
        assert [i for i in delivered if i in in_order] == in_order
    types = {key: [t for _, k, t in expected if k == key] for key in (ada, grace)}
    assert types[ada] == ["account.connected", "account.reconnected", "account.reconnected"]
    assert types[grace] == ["account.connected", "account.disconnected"]
    assert all(r.delivered_at is not None for r in outbox(app, api.user_id))


def test_given_up_after_max_attempts_unblocks_the_key(make_app: Any, receiver: Receiver) -> None:
    app = make_app(PORTAL_WEBHOOK_URL=receiver.url, PORTAL_WEBHOOK_MAX_ATTEMPTS=3)
    state = app.extensions["portal"]
    with app.app_context():
        with state.store.session() as db:
            first = enqueue(db, "account.connected", {"n": 1}, "ca_key", project=DEMO_APP_KEY)
            second = enqueue(db, "account.disconnected", {"n": 2}, "ca_key", project=DEMO_APP_KEY)
        assert first and second
        receiver.reject = {first}
        drain(app)
        with state.store.read() as db:
            gave_up = db.get(WebhookOutbox, first)
            done = db.get(WebhookOutbox, second)
            assert gave_up is not None and done is not None
            assert gave_up.given_up_at is not None and gave_up.delivered_at is None
            assert gave_up.attempts == 3 and gave_up.last_error == "HTTP 503"
            assert done.delivered_at is not None and done.attempts == 1
        # The second was held back until the first was given up, then delivered once.
        assert [c["id"] for c in receiver.calls] == [first, first, first, second]
        assert run_once(app, now=utcnow() + STEP * 10) == 0  # a given-up row stays given up


def test_backoff_waits_between_attempts(make_app: Any, receiver: Receiver) -> None:
    app = make_app(PORTAL_WEBHOOK_URL=receiver.url)
    state = app.extensions["portal"]
    receiver.mode = "503"
    with app.app_context():
        with state.store.session() as db:
            webhook_id = enqueue(db, "account.connected", {}, "ca_backoff", project=DEMO_APP_KEY)
        now = utcnow()
        assert deliver_due(state, now) == 1
        assert deliver_due(state, now) == 0  # not due again yet
        assert deliver_due(state, now + timedelta(seconds=0.5)) == 0
        assert deliver_due(state, now + timedelta(seconds=1.2)) == 1  # 1 s (+10 %) later
        with state.store.read() as db:
            row = db.get(WebhookOutbox, webhook_id)
            assert row is not None and row.attempts == 2
            wait = (row.next_attempt_at - (now + timedelta(seconds=1.2))).total_seconds()
            assert 2 <= wait <= 2.2  # then 2 s, and so on up to an hour
        receiver.mode = "up"
        drain(app)


def test_redirect_is_not_followed(make_app: Any, receiver: Receiver) -> None:
    moved = Flask("moved")
    moved.add_url_rule(
        "/hook", "hook", lambda: ("", 307, {"Location": receiver.url}), methods=["POST"]
    )
    server = ServerThread().start(moved)
    try:
        app = make_app(PORTAL_WEBHOOK_URL=f"{server.url}/hook")
        state = app.extensions["portal"]
        with app.app_context():
            with state.store.session() as db:
                webhook_id = enqueue(db, "account.connected", {}, "ca_moved", project=DEMO_APP_KEY)
            assert deliver_due(state) == 1
            with state.store.read() as db:
                row = db.get(WebhookOutbox, webhook_id)
                assert row is not None and row.delivered_at is None
                assert row.last_error == "HTTP 307"
        assert receiver.calls == []
    finally:
        server.stop()


def test_demo_host_page_lists_the_webhooks_it_received(stack: DemoStack, api: Api) -> None:
    """The demo's own worker thread delivers to the demo host app's receiver."""
    account_id = account_id_of(connect_sandbox(api)[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        hooks = requests.get(f"{stack.host.url}/webhooks/portal", timeout=5).json()["webhooks"]
        if any(h["data"].get("account", {}).get("id") == account_id for h in hooks):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the demo host never received account.connected")
    page = requests.get(f"{stack.host.url}/", timeout=10).text
    assert "Webhooks received" in page and account_id in page
    forged = requests.post(
        f"{stack.host.url}/webhooks/portal",
        data=BODY,
        headers={"X-Portal-Signature": sign("wrong", BODY, int(time.time()))},
        timeout=5,
    )
    assert forged.status_code == 400


# --------------------------------------------------------------------------- several workers


@pytest.mark.security("Host webhook receiver down, then back")
def test_two_workers_deliver_each_webhook_once_in_order(
    stack: DemoStack, shared_database: str, receiver: Receiver
) -> None:
    def portal() -> Flask:
        config = portal_config(
            stack.portal.url,
            stack.sandbox.url,
            [stack.host.url],
            PORTAL_DATABASE_URL=shared_database,
            PORTAL_AUTO_MIGRATE=True,
            PORTAL_WEBHOOK_URL=receiver.url,
        )
        return create_portal_app(config)

    first, second = portal(), portal()  # two engines: like two worker processes
    keys = [f"ca_{n}" for n in range(8)]
    with first.app_context(), first.extensions["portal"].store.session() as db:
        ids = [
            enqueue(db, "account.reconnected", {"n": n}, keys[n % 8], project=DEMO_APP_KEY)
            for n in range(48)
        ]
    receiver.delay = 0.005  # so the two workers really overlap
    errors: list[BaseException] = []

    def work(app: Flask) -> None:
        try:
            deadline = time.monotonic() + 60
            while pending_count(app.extensions["portal"]) and time.monotonic() < deadline:
                with app.app_context():
                    deliver_due(app.extensions["portal"], limit=5)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    try:
        assert errors == []
        delivered = [c["id"] for c in receiver.calls if c["status"] < 300]
        assert Counter(delivered) == Counter(ids)  # every id exactly once
        for key in keys:
            in_order = [i for n, i in enumerate(ids) if keys[n % 8] == key]
            assert [i for i in delivered if i in in_order] == in_order
    finally:
        first.extensions["portal"].store.dispose()
        second.extensions["portal"].store.dispose()


def test_stopping_worker_gives_claimed_rows_back(make_app: Any, receiver: Receiver) -> None:
    """SIGTERM sets the stop flag: the delivery in hand finishes, the rest of the claimed batch
    is due again at once and the claim does not count as an attempt."""
    app = make_app(PORTAL_WEBHOOK_URL=receiver.url)
    state = app.extensions["portal"]
    stop = threading.Event()
    receiver.on_call = stop.set
    with app.app_context():
        with state.store.session() as db:
            first = enqueue(db, "account.connected", {}, "ca_stop_1", project=DEMO_APP_KEY)
            second = enqueue(db, "account.connected", {}, "ca_stop_2", project=DEMO_APP_KEY)
        assert deliver_due(state, stop=stop) == 1
        assert [c["id"] for c in receiver.calls] == [first]
        with state.store.read() as db:
            row = db.get(WebhookOutbox, second)
            assert row is not None and row.attempts == 0 and row.next_attempt_at <= utcnow()
        assert deliver_due(state, stop=stop) == 0  # stopped: claims nothing
        assert deliver_due(state) == 1
    assert [e["id"] for e in receiver.delivered()] == [first, second]
