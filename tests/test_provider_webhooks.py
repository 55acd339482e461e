"""portal/provider_webhooks.py, portal/views/provider_webhooks.py and the catalog's
``webhooks:`` block: Intercom notifications (shaped and signed as Intercom's "Webhook models"
documents them) in, one signed ``app.webhook`` per matching connected account out."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask, request
from sqlalchemy import func, select

from portal import verify_webhook
from portal._serving import ServerThread
from portal.accounts import upsert_account
from portal.catalog import (
    WebhookAccount,
    WebhookSignature,
    WebhookSpec,
    load_catalog,
    validate_definition,
)
from portal.demo import DEMO_APP_KEY, DemoStack, sandbox_app_settings
from portal.errors import CatalogError
from portal.provider_webhooks import MAX_BODY, route, verify_signature
from portal.store import WebhookOutbox
from portal.worker import run_once

CLIENT_SECRET = "intercom-client-secret-for-tests"
WEBHOOK_SECRET = "host-webhook-secret-for-tests"
#: Intercom workspace ids (``app_id`` in notifications, ``app.id_code`` from ``GET /me``).
WORKSPACE = "a86dr8yl"
OTHER_WORKSPACE = "zz9plural"
URL = "/portal/api/v1/provider-webhooks/intercom"


# --------------------------------------------------------------------------- helpers


def signature(body: bytes, secret: str = CLIENT_SECRET, algorithm: str = "sha1") -> str:
    """``X-Hub-Signature`` as Intercom computes it: ``sha1=`` + hex HMAC-SHA1 of the body."""
    return "sha1=" + hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()


def contact(role: str = "user") -> dict[str, Any]:
    """A ``data.item`` of a contact topic (Intercom Contact object, abridged)."""
    return {
        "type": "contact",
        "id": "5ba682d23d7cf92bef87bfd4",
        "workspace_id": WORKSPACE,
        "external_id": "25" if role == "user" else None,
        "role": role,
        "email": "wash@serenity.io",
        "name": "Hoban Washburne",
        "created_at": 1571069751,
        "updated_at": 1571069751,
        "custom_attributes": {"paid_subscriber": True},
    }


def company() -> dict[str, Any]:
    """A ``data.item`` of a company topic (the example of "Webhook notification object")."""
    return {
        "type": "company",
        "id": "531ee472cce572a6ec000006",
        "name": "Example Company Inc.",
        "company_id": "6",
        "remote_created_at": 1394531169,
        "created_at": 1394533506,
        "updated_at": 1396874658,
        "custom_attributes": {},
    }


def notification(topic: str, item: dict[str, Any], app_id: Any = WORKSPACE) -> dict[str, Any]:
    """An Intercom ``notification_event`` (Webhook models, "Webhook notification object")."""
    return {
        "type": "notification_event",
        "app_id": app_id,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": f"notif_{uuid.uuid4()}",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": 1571069751,
        "created_at": 1571069751,
        "self": None,
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode()


def post(client: Any, body: bytes, headers: dict[str, str] | None = None) -> Any:
    sent = {"Content-Type": "application/json", "User-Agent": "intercom-parrot-service-client/1.0"}
    return client.post(URL, data=body, headers={**sent, **(headers or {})})


def post_signed(client: Any, payload: Any) -> Any:
    body = encode(payload)
    return post(client, body, {"X-Hub-Signature": signature(body)})


def connect(app: Flask, user_id: str, external_id: str, slug: str = "intercom") -> str:
    """Store a connected account the way the connect flow does; returns its id."""
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user_id,
            app=slug,
            external_id=external_id,
            label="Serenity",
            scopes=[],
            credentials={"access_token": f"tok-{uuid.uuid4().hex}"},
            expires_at=None,
        )
        return account.id


def outbox(app: Flask) -> list[WebhookOutbox]:
    with app.extensions["portal"].store.read() as db:
        return list(db.scalars(select(WebhookOutbox).order_by(WebhookOutbox.seq)))


def outbox_count(app: Flask) -> int:
    with app.extensions["portal"].store.read() as db:
        return int(db.scalar(select(func.count()).select_from(WebhookOutbox)) or 0)


class Receiver:
    """The host backend's webhook endpoint on loopback, recording every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = Flask("provider-webhooks-receiver")

        @receiver.post("/hooks")
        def hooks() -> tuple[str, int]:
            with self._lock:
                self.requests.append((dict(request.headers), request.get_data()))
            return "", 204

        self.server = ServerThread("127.0.0.1", 0).start(receiver)
        self.url = f"{self.server.url}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.stop()


@pytest.fixture
def portal_app(make_app: Any, stack: DemoStack, receiver: Receiver) -> Flask:
    """The portal with Intercom configured and webhooks to the loopback receiver."""
    app: Flask = make_app(
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "intercom": {"client_id": "intercom-client-id", "client_secret": CLIENT_SECRET},
        },
        PORTAL_WEBHOOK_URL=receiver.url,
        PORTAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return app


@pytest.fixture
def accounts(portal_app: Flask) -> dict[str, str]:
    """Two end users connected to WORKSPACE, one to another workspace, and a sandbox account
    whose external id happens to equal WORKSPACE."""
    return {
        "alice": connect(portal_app, "alice", WORKSPACE),
        "bob": connect(portal_app, "bob", WORKSPACE),
        "carol": connect(portal_app, "carol", OTHER_WORKSPACE),
        "sandbox": connect(portal_app, "alice", WORKSPACE, slug="sandbox"),
    }


# --------------------------------------------------------------------------- catalog


def test_intercom_webhooks_follow_intercoms_docs() -> None:
    intercom = load_catalog(environ={}).get("intercom")
    assert intercom is not None and intercom.webhooks is not None
    spec = intercom.webhooks
    assert spec.signature == WebhookSignature("X-Hub-Signature", "sha1", "sha1=", "client_secret")
    assert spec.account == WebhookAccount("app_id", "external_id")
    # The identity's external id is the workspace id, the same value as notifications' app_id.
    assert intercom.identity is not None and intercom.identity.external_id == "app.id_code"
    assert spec.topic_path == "topic"
    assert spec.triggers == (
        "contact.created",
        "contact.updated",
        "company.created",
        "company.updated",
    )
    assert spec.trigger("contact.user.created") == "contact.created"
    assert spec.trigger("contact.lead.created") == "contact.created"
    assert spec.trigger("contact.user.updated") == "contact.updated"
    assert spec.trigger("contact.lead.updated") == "contact.updated"
    assert spec.trigger("company.created") == "company.created"
    assert spec.trigger("company.updated") == "company.updated"
    for topic in ("ping", "contact.deleted", "company.deleted", "conversation.user.created"):
        assert spec.trigger(topic) is None


def test_the_apps_that_ship_webhooks() -> None:
    """Intercom and the ten of tests/test_provider_webhooks_apps.py."""
    with_webhooks = {app.slug for app in load_catalog(environ={}) if app.webhooks is not None}
    assert with_webhooks == {
        "intercom",
        "slack",
        "hubspot",
        "github",
        "stripe-connect",
        "shopify",
        "zendesk",
        "asana",
        "linear",
        "jira",
        "pipedrive",
    }


def _definition(webhooks: Any) -> dict[str, Any]:
    return {
        "slug": "acme",
        "title": "Acme",
        "description": "The acme test app.",
        "categories": ["Testing"],
        "docs_url": "https://docs.example.com/acme",
        "auth": {"type": "api_key", "placement": {"in": "header", "name": "X-Key"}},
        "api": {"base_url": "https://api.example.com/v1"},
        "webhooks": webhooks,
    }


def _webhooks(**overrides: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "signature": {"header": "X-Acme-Signature", "algorithm": "sha256"},
        "account": {"payload_path": "account.id", "match": "external_id"},
        "topic_path": "event.type",
        "triggers": ["thing.created"],
    }
    block.update(overrides)
    return block


def _load(tmp_path: Path, webhooks: Any) -> Any:
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(_definition(webhooks)), "utf-8")
    return load_catalog([tmp_path], environ={}).get("acme")


def test_a_minimal_webhooks_block_gets_defaults(tmp_path: Path) -> None:
    acme = _load(tmp_path, _webhooks())
    assert acme.webhooks == WebhookSpec(
        signature=WebhookSignature("X-Acme-Signature", "sha256", "", "client_secret"),
        account=WebhookAccount("account.id", "external_id"),
        topic_path="event.type",
        triggers=("thing.created",),
        topics={},
    )
    assert acme.webhooks.trigger("thing.created") == "thing.created"
    assert acme.webhooks.trigger("thing.deleted") is None


@pytest.mark.parametrize(
    ("webhooks", "field", "problem"),
    [
        (
            _webhooks(signature={"header": "X-Sig", "algorithm": "md5"}),
            "webhooks.signature.algorithm",
            "md5",
        ),
        (_webhooks(signature={"algorithm": "sha1"}), "webhooks.signature", "'header'"),
        (
            _webhooks(signature={"header": "X Sig", "algorithm": "sha1"}),
            "webhooks.signature.header",
            "X Sig",
        ),
        (
            _webhooks(signature={"header": "X-Sig", "algorithm": "sha1", "secret": "api_key"}),
            "webhooks.signature.secret",
            "api_key",
        ),
        (
            _webhooks(account={"payload_path": "id", "match": "label"}),
            "webhooks.account.match",
            "label",
        ),
        (_webhooks(account={"match": "external_id"}), "webhooks.account", "'payload_path'"),
        (_webhooks(triggers=[]), "webhooks.triggers", "[]"),
        (_webhooks(triggers=["a", "a"]), "webhooks.triggers", "non-unique"),
        (_webhooks(topic_path=""), "webhooks.topic_path", "''"),
        (_webhooks(topics={"a.b": 1}), "webhooks.topics.a.b", "1"),
        (_webhooks(secret="in-yaml"), "webhooks", "'secret'"),
        ({"signature": {"header": "X-Sig", "algorithm": "sha1"}}, "webhooks", "'triggers'"),
        ("yes", "webhooks", "'yes'"),
    ],
)
def test_invalid_webhooks_block_names_file_and_field(
    tmp_path: Path, webhooks: Any, field: str, problem: str
) -> None:
    path = tmp_path / "acme.yaml"
    errors = validate_definition(_definition(webhooks), path)
    assert any(e.startswith(f"{path}: {field}:") and problem in e for e in errors), errors
    with pytest.raises(CatalogError) as info:
        _load(tmp_path, webhooks)
    assert f"{path}: {field}:" in str(info.value)


def test_topics_must_rename_to_a_trigger(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        _load(tmp_path, _webhooks(topics={"thing.added": "thing.made"}))
    message = str(info.value)
    assert str(tmp_path / "acme.yaml") in message
    assert "webhooks.topics.thing.added" in message and "'thing.made'" in message


# --------------------------------------------------------------------------- verify_signature


SPEC = WebhookSpec(
    signature=WebhookSignature("X-Hub-Signature", "sha1", "sha1="),
    account=WebhookAccount("app_id"),
    topic_path="topic",
    triggers=("company.created",),
)
BODY = b'{"type":"notification_event","topic":"company.created","app_id":"a86dr8yl"}'


def test_verify_signature_accepts_intercoms_signature() -> None:
    assert verify_signature(SPEC, CLIENT_SECRET, BODY, signature(BODY))
    assert verify_signature(
        SPEC, CLIENT_SECRET, BODY, signature(BODY).upper().replace("SHA1=", "sha1=")
    )


def test_verify_signature_with_sha256() -> None:
    spec = WebhookSpec(
        signature=WebhookSignature("X-Signature", "sha256"),
        account=WebhookAccount("account"),
        topic_path="type",
        triggers=("x",),
    )
    digest = hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    assert verify_signature(spec, "k", BODY, digest)
    assert not verify_signature(spec, "k", BODY, hmac.new(b"k", BODY, hashlib.sha1).hexdigest())


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha1=",
        "sha1=" + "0" * 40,
        signature(BODY)[5:],  # without the prefix
        signature(BODY, secret="another-secret"),
        signature(BODY + b" "),
        signature(BODY, algorithm="sha256"),
        "sha256=" + hmac.new(CLIENT_SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
        signature(BODY) + "00",
        signature(BODY)[:-2],
        signature(BODY)[:-1] + "é",
    ],
    ids=[
        "missing",
        "empty",
        "prefix-only",
        "zeros",
        "no-prefix",
        "other-secret",
        "other-body",
        "sha256-digest",
        "sha256-prefix",
        "too-long",
        "too-short",
        "non-ascii",
    ],
)
def test_verify_signature_refuses(header: str | None) -> None:
    assert not verify_signature(SPEC, CLIENT_SECRET, BODY, header)


def test_verify_signature_refuses_an_empty_secret() -> None:
    assert not verify_signature(SPEC, "", BODY, signature(BODY, secret=""))


# --------------------------------------------------------------------------- forwarding


@pytest.mark.parametrize(
    ("topic", "item", "trigger"),
    [
        ("contact.user.created", contact("user"), "contact.created"),
        ("contact.lead.created", contact("lead"), "contact.created"),
        ("contact.user.updated", contact("user"), "contact.updated"),
        ("contact.lead.updated", contact("lead"), "contact.updated"),
        ("company.created", company(), "company.created"),
        ("company.updated", company(), "company.updated"),
    ],
)
def test_trigger_is_forwarded_once_per_matching_account(
    portal_app: Flask, accounts: dict[str, str], topic: str, item: dict[str, Any], trigger: str
) -> None:
    payload = notification(topic, item)
    response = post_signed(portal_app.test_client(), payload)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"accepted": 2}

    rows = outbox(portal_app)
    assert [row.type for row in rows] == ["app.webhook", "app.webhook"]
    assert {row.ordering_key for row in rows} == {accounts["alice"], accounts["bob"]}
    for row in rows:
        body = json.loads(row.payload)
        assert body["id"] == row.id and body["type"] == "app.webhook"
        data = body["data"]
        assert set(data) == {"app", "topic", "account", "user_id", "payload"}
        assert (data["app"], data["topic"]) == ("intercom", trigger)
        assert data["payload"] == payload  # the notification, unchanged (topic, role, item)
        account = data["account"]
        assert account["id"] == row.ordering_key
        assert data["user_id"] == ("alice" if account["id"] == accounts["alice"] else "bob")
        assert (account["app"], account["external_id"], account["status"]) == (
            "intercom",
            WORKSPACE,
            "active",
        )
        assert "credentials" not in json.dumps(account) and "tok-" not in row.payload


def test_notification_of_another_workspace_forwards_nothing(
    portal_app: Flask, accounts: dict[str, str]
) -> None:
    payload = notification("contact.user.created", contact(), app_id="nobody-connected")
    response = post_signed(portal_app.test_client(), payload)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 0}
    assert outbox_count(portal_app) == 0

    other = post_signed(
        portal_app.test_client(), notification("company.created", company(), OTHER_WORKSPACE)
    )
    assert other.get_json() == {"accepted": 1}
    [row] = outbox(portal_app)
    assert row.ordering_key == accounts["carol"]
    assert json.loads(row.payload)["data"]["user_id"] == "carol"


def test_route_finds_the_workspace_accounts(portal_app: Flask, accounts: dict[str, str]) -> None:
    state = portal_app.extensions["portal"]
    intercom = state.catalog.get("intercom")
    assert sorted(route(state, intercom, notification("company.created", company()))) == sorted(
        [accounts["alice"], accounts["bob"]]
    )
    assert route(state, intercom, notification("ping", {}, OTHER_WORKSPACE)) == [accounts["carol"]]
    assert route(state, intercom, {"topic": "company.created"}) == []
    assert route(state, intercom, notification("company.created", company(), app_id="")) == []


@pytest.mark.parametrize(
    "topic",
    ["ping", "contact.deleted", "company.deleted", "conversation.user.created", "Contact Created"],
)
def test_topic_that_is_no_trigger_is_accepted_and_dropped(
    portal_app: Flask, accounts: dict[str, str], topic: str
) -> None:
    response = post_signed(portal_app.test_client(), notification(topic, {"type": "ping"}))
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 0}
    assert outbox_count(portal_app) == 0


def test_notification_without_topic_or_account_forwards_nothing(
    portal_app: Flask, accounts: dict[str, str]
) -> None:
    client = portal_app.test_client()
    no_topic = notification("company.created", company())
    del no_topic["topic"]
    no_account = notification("company.created", company())
    del no_account["app_id"]
    nested = notification("company.created", company(), app_id={"id": WORKSPACE})
    for payload in (no_topic, no_account, nested, {}):
        response = post_signed(client, payload)
        assert response.status_code == 202
        assert response.get_json() == {"accepted": 0}
    assert outbox_count(portal_app) == 0


BAD_SIGNATURES: dict[str, Callable[[bytes], dict[str, str]]] = {
    "missing": lambda body: {},
    "empty": lambda body: {"X-Hub-Signature": ""},
    "zeros": lambda body: {"X-Hub-Signature": "sha1=" + "0" * 40},
    "another-body": lambda body: {"X-Hub-Signature": signature(b"{}")},
    "another-secret": lambda body: {"X-Hub-Signature": signature(body, secret="other")},
    "without-prefix": lambda body: {"X-Hub-Signature": signature(body)[5:]},
    "another-header": lambda body: {"X-Signature": signature(body)},
}


@pytest.mark.parametrize("make_headers", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_bad_signature_is_401_and_forwards_nothing(
    portal_app: Flask,
    accounts: dict[str, str],
    make_headers: Callable[[bytes], dict[str, str]],
) -> None:
    body = encode(notification("contact.user.created", contact()))
    response = post(portal_app.test_client(), body, make_headers(body))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"
    assert outbox_count(portal_app) == 0


def test_sha256_signature_is_refused_when_sha1_is_configured(
    portal_app: Flask, accounts: dict[str, str]
) -> None:
    body = encode(notification("company.created", company()))
    sha256 = hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).hexdigest()
    client = portal_app.test_client()
    for value in ("sha256=" + sha256, "sha1=" + sha256, signature(body, algorithm="sha256")):
        response = post(client, body, {"X-Hub-Signature": value})
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_signature"
    assert outbox_count(portal_app) == 0


def test_tampered_body_is_refused(portal_app: Flask, accounts: dict[str, str]) -> None:
    """A captured notification re-aimed at another workspace keeps its old signature."""
    original = encode(notification("company.created", company(), OTHER_WORKSPACE))
    tampered = original.replace(OTHER_WORKSPACE.encode(), WORKSPACE.encode())
    response = post(portal_app.test_client(), tampered, {"X-Hub-Signature": signature(original)})
    assert response.status_code == 401
    assert outbox_count(portal_app) == 0


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{", b"[" * 100_000, b'{"a": NaN}']
)
def test_signed_body_that_is_no_json_object_is_400(portal_app: Flask, body: bytes) -> None:
    response = post(portal_app.test_client(), body, {"X-Hub-Signature": signature(body)})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"


def test_signature_is_checked_before_the_body_is_parsed(portal_app: Flask) -> None:
    response = post(portal_app.test_client(), b"not json")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_signature"


def test_oversized_notification_is_413(portal_app: Flask, accounts: dict[str, str]) -> None:
    payload = notification("company.created", {**company(), "padding": "x" * MAX_BODY})
    body = encode(payload)
    response = post(portal_app.test_client(), body, {"X-Hub-Signature": signature(body)})
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert outbox_count(portal_app) == 0
    # Just under the limit is fine.
    payload = notification("company.created", company())
    payload["padding"] = ""
    room = MAX_BODY - len(encode(payload))
    payload["padding"] = "x" * room
    body = encode(payload)
    assert len(body) == MAX_BODY
    response = post(portal_app.test_client(), body, {"X-Hub-Signature": signature(body)})
    assert response.status_code == 202 and response.get_json() == {"accepted": 2}


def test_oversized_chunked_notification_is_413(portal_app: Flask, accounts: dict[str, str]) -> None:
    """Without Content-Length the body is still cut at the limit, over real HTTP."""
    body = encode(notification("company.created", {**company(), "padding": "x" * MAX_BODY}))
    server = ServerThread("127.0.0.1", 0).start(portal_app)
    try:
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        response = requests.post(
            server.url + URL,
            data=chunks,
            headers={"Content-Type": "application/json", "X-Hub-Signature": signature(body)},
            timeout=10,
        )
    finally:
        server.stop()
    assert response.status_code == 413
    assert outbox_count(portal_app) == 0


@pytest.mark.parametrize("slug", ["nope", "sandbox", "salesforce"])
def test_app_without_webhooks_is_404(portal_app: Flask, slug: str) -> None:
    body = encode(notification("company.created", company()))
    client = portal_app.test_client()
    response = client.post(
        f"/portal/api/v1/provider-webhooks/{slug}",
        data=body,
        headers={"X-Hub-Signature": signature(body)},
    )
    assert response.status_code == 404
    assert client.head(f"/portal/api/v1/provider-webhooks/{slug}").status_code == 404


def test_intercom_without_client_secret_is_404(make_app: Any, stack: DemoStack) -> None:
    app: Flask = make_app(
        PORTAL_APPS={**sandbox_app_settings(stack.sandbox.url), "intercom": {"client_id": "cid"}}
    )
    connect(app, "alice", WORKSPACE)
    response = post(app.test_client(), encode(notification("company.created", company())))
    assert response.status_code == 404
    assert response.get_json()["error"] == "webhooks_not_configured"


def test_head_answers_the_providers_url_check(portal_app: Flask) -> None:
    response = portal_app.test_client().head(URL)
    assert response.status_code == 200


def test_no_portal_session_or_csrf_token_is_needed(
    portal_app: Flask, accounts: dict[str, str]
) -> None:
    """Providers hold no portal session; a stray cookie or Origin changes nothing."""
    client = portal_app.test_client()
    client.set_cookie("session", "whatever")
    body = encode(notification("company.updated", company()))
    response = client.post(
        URL,
        data=body,
        headers={"X-Hub-Signature": signature(body), "Origin": "https://evil.example"},
    )
    assert response.status_code == 202 and response.get_json() == {"accepted": 2}


def test_webhooks_disabled_accepts_and_forwards_nothing(make_app: Any, stack: DemoStack) -> None:
    app: Flask = make_app(
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "intercom": {"client_id": "cid", "client_secret": CLIENT_SECRET},
        },
        PORTAL_WEBHOOK_URL=None,
    )
    connect(app, "alice", WORKSPACE)
    response = post_signed(app.test_client(), notification("company.created", company()))
    assert response.status_code == 202 and response.get_json() == {"accepted": 0}
    assert outbox_count(app) == 0


def test_all_or_nothing(
    portal_app: Flask, accounts: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhooks of one notification are written in one transaction: a failure while
    queueing the second leaves no row for the first either."""
    from portal import provider_webhooks, webhooks

    calls: list[str] = []

    def failing_enqueue(*args: Any, **kwargs: Any) -> str | None:
        calls.append(args[3])
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return webhooks.enqueue(*args, **kwargs)

    monkeypatch.setattr(provider_webhooks, "enqueue", failing_enqueue)
    response = post_signed(portal_app.test_client(), notification("company.created", company()))
    assert response.status_code == 500
    assert len(calls) == 2
    assert outbox_count(portal_app) == 0


# --------------------------------------------------------------------------- delivery


def test_worker_delivers_signed_app_webhooks_to_the_host(
    portal_app: Flask, accounts: dict[str, str], receiver: Receiver
) -> None:
    created = notification("contact.lead.created", contact("lead"))
    updated = notification("contact.lead.updated", {**contact("lead"), "name": "Wash"})
    client = portal_app.test_client()
    assert post_signed(client, created).get_json() == {"accepted": 2}
    assert post_signed(client, updated).get_json() == {"accepted": 2}

    assert run_once(portal_app) == 4
    assert len(receiver.requests) == 4
    seen: dict[str, list[tuple[str, str]]] = {}
    for headers, body in receiver.requests:
        document = verify_webhook(body, headers.get("X-Portal-Signature"), WEBHOOK_SECRET)
        assert headers["X-Portal-Webhook-Id"] == document["id"]
        assert document["type"] == "app.webhook"
        data = document["data"]
        assert data["app"] == "intercom"
        assert data["payload"]["data"]["item"]["role"] == "lead"
        seen.setdefault(data["account"]["id"], []).append((data["topic"], data["payload"]["id"]))
    # Each account got both, in order.
    expected = [("contact.created", created["id"]), ("contact.updated", updated["id"])]
    assert seen == {accounts["alice"]: expected, accounts["bob"]: expected}
    assert run_once(portal_app) == 0
