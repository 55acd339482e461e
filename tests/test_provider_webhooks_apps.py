"""The ten provider webhook triggers added to Intercom's: each app's shipped ``webhooks:``
block, its notifications (shaped and signed as its provider documents them) posted to
``/portal/api/v1/provider-webhooks/<slug>``, routed to the connected account they belong to and
queued for the host as ``app.webhook``; refused when the signature is bad, missing or replayed;
answered 202 and dropped (logged) for no connected account. Slack's URL check, Asana's
handshake, a HubSpot batch over real HTTP and the worker's delivery to the host are tested on
their own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from test_provider_webhooks_schemes import (
    b64_mac,
    basic_headers,
    github_headers,
    hex_mac,
    jira_headers,
    linear_headers,
    shopify_headers,
    slack_headers,
    stripe_headers,
    zendesk_headers,
)

from portal import verify_webhook
from portal._serving import ServerThread
from portal.accounts import upsert_account
from portal.catalog import load_catalog
from portal.demo import DEMO_APP_KEY, DemoStack, sandbox_app_settings
from portal.store import ConnectedAccount, WebhookOutbox
from portal.worker import run_once

WEBHOOK_SECRET = "host-webhook-secret-for-tests"
SLUGS = [
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
]


def client_secret(slug: str) -> str:
    return f"{slug}-client-secret-for-tests-0123456789"


def webhook_secret(slug: str) -> str:
    return f"{slug}-webhook-secret-for-tests-0123456789"


def path(slug: str) -> str:
    return f"/portal/api/v1/provider-webhooks/{slug}"


def token(slug: str, account_id: str, secret: str | None = None) -> str:
    """The per-account URL token as the README tells the host to compute it."""
    key = (secret or client_secret(slug)).encode()
    return hmac.new(key, f"{slug}:{account_id}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Case:
    """How one app's provider notifies: the connected account's external id (and account
    fields), the notification for an account id, its headers and signature, the trigger it
    becomes, and whether it carries a timestamp a replay is refused by."""

    external_id: str
    other_external_id: str
    notification: Callable[[str, float], Any]
    sign: Callable[[bytes, str, float], dict[str, str]]
    trigger: str
    #: The secret the provider signs with: "client" or "webhook".
    secret: str = "webhook"
    headers: Callable[[str], dict[str, str]] = lambda value: {}
    #: Routed by a per-account URL (the notification's own id is not the identity's).
    per_account_url: bool = False
    timestamped: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    other_fields: dict[str, str] = field(default_factory=dict)


def hubspot_sign(slug: str) -> Callable[[bytes, str, float], dict[str, str]]:
    def sign(body: bytes, secret: str, at: float) -> dict[str, str]:
        ts = str(int(at * 1000))
        message = ("POST" + PORTAL_URL + path(slug)).encode() + body + ts.encode()
        return {
            "X-HubSpot-Request-Timestamp": ts,
            "X-HubSpot-Signature-v3": b64_mac(secret, message),
        }

    return sign


PORTAL_URL = ""  # set by the portal_app fixture: PORTAL_BASE_URL, the URL HubSpot signs

CASES: dict[str, Case] = {
    # Slack Events API event_callback envelope ("The Events API", "Event types": app_mention).
    "slack": Case(
        external_id="T0001",
        other_external_id="T0002",
        notification=lambda team, at: {
            "token": "XXYYZZ",
            "team_id": team,
            "api_app_id": "A0PNCHHK2",
            "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0LAN0Z89> hi"},
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:8]}",
            "event_time": int(at),
        },
        sign=slack_headers,
        trigger="app_mention",
        timestamped=True,
    ),
    # HubSpot Webhooks API: a list of events ("Webhooks API", example payload).
    "hubspot": Case(
        external_id="62515",
        other_external_id="99999",
        notification=lambda portal, at: [
            {
                "objectId": 1246965,
                "propertyName": "lifecyclestage",
                "propertyValue": "subscriber",
                "changeSource": "ACADEMY",
                "eventId": 3816279340,
                "subscriptionId": 25,
                "portalId": int(portal),
                "appId": 1160452,
                "occurredAt": int(at * 1000),
                "subscriptionType": "contact.creation",
                "attemptNumber": 0,
            }
        ],
        sign=hubspot_sign("hubspot"),
        trigger="contact.creation",
        secret="client",
        timestamped=True,
    ),
    # GitHub "issues" event (X-GitHub-Event header), abridged.
    "github": Case(
        external_id="583231",
        other_external_id="9919",
        notification=lambda owner, at: {
            "action": "opened",
            "issue": {"number": 1347, "title": "Found a bug"},
            "repository": {
                "id": 1296269,
                "full_name": "octocat/Hello-World",
                "owner": {"id": int(owner), "login": "octocat"},
            },
            "sender": {"id": 1, "login": "someone"},
        },
        sign=github_headers,
        trigger="issues",
        headers=lambda value: {"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4())},
    ),
    # A Stripe Event from a connected account ("Connect webhooks": `account`).
    "stripe-connect": Case(
        external_id="acct_1032D82eZvKYlo2C",
        other_external_id="acct_other",
        notification=lambda account, at: {
            "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
            "object": "event",
            "account": account,
            "api_version": "2024-06-20",
            "created": int(at),
            "data": {"object": {"id": "cus_123", "object": "customer", "email": "a@example.com"}},
            "livemode": False,
            "type": "customer.created",
        },
        sign=stripe_headers,
        trigger="customer.created",
        timestamped=True,
    ),
    # Shopify orders/create: topic and shop in headers.
    "shopify": Case(
        external_id="548380009",
        other_external_id="548380010",
        notification=lambda shop, at: {"id": 820982911946154508, "email": "jon@example.com"},
        sign=shopify_headers,
        trigger="orders/create",
        secret="client",
        headers=lambda shop: {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": f"{shop}.myshopify.com",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        },
        fields={"shop": "serenity"},
        other_fields={"shop": "firefly"},
    ),
    # Zendesk event webhook (ticket.created), per-account URL.
    "zendesk": Case(
        external_id="35436",
        other_external_id="35437",
        notification=lambda _id, at: {
            "type": "zen:event-type:ticket.created",
            "account_id": 88888888,
            "id": "01HNXXXX-CTEXAMPLE",
            "time": "2026-12-05T17:18:10Z",
            "zendesk_event_version": "2022-11-06",
            "subject": "zen:ticket:35436",
            "detail": {"id": "35436", "status": "Open"},
            "event": {"current": {"status": "Open"}},
        },
        sign=zendesk_headers,
        trigger="ticket.created",
        per_account_url=True,
        timestamped=True,
        fields={"subdomain": "serenity"},
        other_fields={"subdomain": "firefly"},
    ),
    # Linear Issue create, per-account URL; webhookTimestamp in the body.
    "linear": Case(
        external_id="viewer-1",
        other_external_id="viewer-2",
        notification=lambda _id, at: {
            "action": "create",
            "type": "Issue",
            "data": {"id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9", "title": "Bug"},
            "url": "https://linear.app/issue/LIN-1778",
            "createdAt": "2026-12-05T17:18:10.000Z",
            "organizationId": "org-1",
            "webhookTimestamp": int(at * 1000),
            "webhookId": "hook-1",
        },
        sign=linear_headers,
        trigger="Issue.create",
        per_account_url=True,
        timestamped=True,
    ),
    # Jira dynamic webhook (jira:issue_created), JWT with the client secret, per-account URL.
    "jira": Case(
        external_id="5b10a2844c20165700ede21g",
        other_external_id="5b10ac8d82e05b22cc7d4ef5",
        notification=lambda _id, at: {
            "timestamp": int(at * 1000),
            "webhookEvent": "jira:issue_created",
            "matchedWebhookIds": [1],
            "issue": {"id": "10002", "key": "ED-1", "fields": {"summary": "A bug"}},
        },
        sign=jira_headers,
        trigger="issue.created",
        secret="client",
        per_account_url=True,
        timestamped=True,
    ),
    # Pipedrive webhooks v2 (deal created), HTTP Basic.
    "pipedrive": Case(
        external_id="18487521",
        other_external_id="18487522",
        notification=lambda owner, at: {
            "meta": {
                "action": "create",
                "entity": "deal",
                "version": "2.0",
                "company_id": 12882925,
                "user_id": int(owner),
                "entity_id": 1,
                "webhook_id": 99,
                "webhook_owner_id": int(owner),
                "timestamp": int(at),
            },
            "data": {"id": 1, "title": "test deal"},
            "previous": None,
        },
        sign=basic_headers,
        trigger="deal.create",
    ),
}


def secret_of(slug: str, case: Case) -> str:
    return client_secret(slug) if case.secret == "client" else webhook_secret(slug)


def connect(
    app: Flask, user_id: str, slug: str, external_id: str, fields: dict[str, str] | None = None
) -> str:
    state = app.extensions["portal"]
    credentials: dict[str, Any] = {"access_token": f"tok-{uuid.uuid4().hex}"}
    if fields:
        credentials["account_fields"] = fields
    with state.store.session() as db:
        account, _ = upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user_id,
            app=slug,
            external_id=external_id,
            label=f"{slug} of {user_id}",
            scopes=[],
            credentials=credentials,
            expires_at=None,
        )
        return account.id


def outbox(app: Flask) -> list[WebhookOutbox]:
    with app.extensions["portal"].store.read() as db:
        return list(db.scalars(select(WebhookOutbox).order_by(WebhookOutbox.seq)))


@pytest.fixture
def portal_app(make_app: Any, stack: DemoStack) -> Flask:
    """Every trigger app configured, webhooks to the host on (nothing delivers them unless
    a test runs the worker)."""
    global PORTAL_URL
    PORTAL_URL = stack.portal.url.rstrip("/")
    apps = {
        slug: {
            "client_id": f"{slug}-client-id",
            "client_secret": client_secret(slug),
            "webhook_secret": webhook_secret(slug),
        }
        for slug in SLUGS
    }
    app: Flask = make_app(
        PORTAL_APPS={**sandbox_app_settings(stack.sandbox.url), **apps},
        PORTAL_WEBHOOK_URL="http://127.0.0.1:9/unused",
        PORTAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return app


def test_the_catalog_ships_eleven_trigger_apps() -> None:
    catalog = load_catalog(environ={})
    shipped = {app.slug: app.webhooks for app in catalog if app.webhooks is not None}
    assert set(shipped) == {"intercom", *SLUGS}
    schemes = {slug: spec.signature.scheme for slug, spec in shipped.items()}
    assert schemes == {
        "intercom": "hmac_hex",
        "slack": "slack",
        "hubspot": "hubspot_v3",
        "github": "github",
        "stripe-connect": "stripe",
        "shopify": "shopify",
        "zendesk": "zendesk",
        "asana": "asana",
        "linear": "linear",
        "jira": "atlassian_jwt",
        "pipedrive": "basic_auth",
    }
    # Each routes by something the connected account already stores (no new column).
    for slug in ("slack", "hubspot", "github", "stripe-connect", "pipedrive"):
        assert shipped[slug].account.match == "external_id", slug
    assert shipped["shopify"].account.match == "account_field"
    for slug in ("zendesk", "asana", "linear", "jira"):
        assert (shipped[slug].account.query, shipped[slug].account.match) == ("account", "id")
    # The identities whose id the notifications carry.
    identities = {slug: catalog.get(slug).identity.external_id for slug in ("slack", "hubspot")}  # type: ignore[union-attr]
    assert identities == {"slack": "team_id", "hubspot": "portalId"}


def _post(
    client: Any,
    slug: str,
    case: Case,
    value: str,
    at: float,
    *,
    query: str = "",
    secret: str | None = None,
    sent: list[Any] | None = None,
) -> Any:
    """POST ``case``'s notification for ``value`` signed at ``at``; the notification is
    appended to ``sent``."""
    notification = case.notification(value, at)
    if sent is not None:
        sent.append(notification)
    body = json.dumps(notification).encode()
    headers = {"Content-Type": "application/json", **case.headers(value)}
    headers.update(case.sign(body, secret or secret_of(slug, case), at))
    return client.post(path(slug) + query, data=body, headers=headers)


@pytest.mark.parametrize("slug", [s for s in SLUGS if s != "asana"])
def test_app_routes_forwards_and_refuses(
    portal_app: Flask, slug: str, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES[slug]
    mine = connect(portal_app, "alice", slug, case.external_id, case.fields)
    other = connect(portal_app, "bob", slug, case.other_external_id, case.other_fields)
    client = portal_app.test_client()
    now = time.time()
    # The value the notification routes by: the account's external id, or its shop, or (per
    # account URL) nothing in the body: the URL carries the account.
    value = case.fields.get("shop", case.external_id)
    query = f"?account={mine}&token={token(slug, mine)}" if case.per_account_url else ""

    sent: list[Any] = []
    good = _post(client, slug, case, value, now, query=query, sent=sent)
    assert good.status_code == 202, good.get_data(as_text=True)
    assert good.get_json() == {"accepted": 1}
    [row] = outbox(portal_app)
    assert row.type == "app.webhook" and row.ordering_key == mine
    data = json.loads(row.payload)["data"]
    assert set(data) == {"app", "topic", "account", "user_id", "payload"}
    assert (data["app"], data["topic"], data["user_id"]) == (slug, case.trigger, "alice")
    assert data["account"]["id"] == mine and data["account"]["external_id"] == case.external_id
    # The notification unchanged (HubSpot's list: its one event).
    assert data["payload"] == (sent[0][0] if isinstance(sent[0], list) else sent[0])
    assert "tok-" not in row.payload

    # For no connected account: 202 (the provider must not retry for ever), logged, dropped.
    caplog.set_level(logging.INFO, logger="portal.provider_webhooks")
    if case.per_account_url:
        unknown = _post(
            client, slug, case, value, now, query=f"?account={mine}&token={token(slug, mine, 'x')}"
        )
    elif case.fields:
        unknown = _post(client, slug, case, "nobody", now)
    else:
        unknown = _post(client, slug, case, "424242", now)
    assert unknown.status_code == 202 and unknown.get_json() == {"accepted": 0}
    assert any("no connected account" in r.getMessage() for r in caplog.records)
    assert len(outbox(portal_app)) == 1

    # The other account gets its own (and only its own).
    other_value = case.other_fields.get("shop", case.other_external_id)
    other_query = f"?account={other}&token={token(slug, other)}" if case.per_account_url else ""
    assert _post(client, slug, case, other_value, now, query=other_query).get_json() == {
        "accepted": 1
    }
    assert [r.ordering_key for r in outbox(portal_app)] == [mine, other]

    # Signed with another secret, or not signed at all: 401, nothing queued.
    bad = _post(client, slug, case, value, now, query=query, secret="not-the-secret-0123456789")
    assert bad.status_code == 401 and bad.get_json()["error"] == "invalid_signature"
    body = json.dumps(case.notification(value, now)).encode()
    unsigned = client.post(path(slug) + query, data=body, headers=case.headers(value))
    assert unsigned.status_code == 401 and unsigned.get_json()["error"] == "invalid_signature"
    # Replayed: signed (correctly) an hour ago.
    if case.timestamped:
        old = _post(client, slug, case, value, now - 3600, query=query)
        assert old.status_code == 401 and old.get_json()["error"] == "invalid_signature"
    assert len(outbox(portal_app)) == 2


def test_slack_url_verification_is_answered_only_when_signed(portal_app: Flask) -> None:
    client = portal_app.test_client()
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        **slack_headers(body, webhook_secret("slack"), time.time()),
    }
    response = client.post(path("slack"), data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    }
    assert outbox(portal_app) == []
    unsigned = client.post(path("slack"), data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401


def test_asana_handshake_then_signed_events(portal_app: Flask) -> None:
    """Asana's X-Hook-Secret handshake stores the secret with the account (sealed) and echoes
    it; the events it later signs with it are forwarded one by one."""
    mine = connect(portal_app, "alice", "asana", "1200000000001")
    other = connect(portal_app, "bob", "asana", "1200000000002")
    client = portal_app.test_client()
    url = f"{path('asana')}?account={mine}&token={token('asana', mine)}"
    hook_secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"

    # A handshake for an account whose URL token is wrong (or another app's token) is refused.
    forged = f"{path('asana')}?account={other}&token={token('asana', mine)}"
    assert client.post(forged, headers={"X-Hook-Secret": "attacker"}).status_code == 401
    assert client.post(path("asana"), headers={"X-Hook-Secret": "attacker"}).status_code == 401

    handshake = client.post(url, headers={"X-Hook-Secret": hook_secret})
    assert handshake.status_code == 200
    assert handshake.headers["X-Hook-Secret"] == hook_secret
    state = portal_app.extensions["portal"]
    with state.store.read() as db:
        account = db.get(ConnectedAccount, mine)
        assert account is not None
        assert hook_secret.encode() not in account.credentials  # sealed, not plaintext
        assert state.sealer.open(account.id, account.credentials)["webhook_secrets"] == [
            hook_secret
        ]

    events = {
        "events": [
            {
                "user": {"gid": "1"},
                "created_at": "2026-12-05T17:18:10.000Z",
                "action": "added",
                "resource": {"gid": "12", "resource_type": "task"},
                "parent": None,
            },
            {
                "user": {"gid": "1"},
                "created_at": "2026-12-05T17:18:11.000Z",
                "action": "changed",
                "resource": {"gid": "12", "resource_type": "task"},
                "change": {"field": "name", "action": "changed"},
            },
            {
                "user": {"gid": "1"},
                "action": "added",
                "resource": {"gid": "13", "resource_type": "section"},
            },
        ]
    }
    body = json.dumps(events).encode()
    signed = client.post(url, data=body, headers={"X-Hook-Signature": hex_mac(hook_secret, body)})
    assert signed.status_code == 202 and signed.get_json() == {"accepted": 2}
    rows = outbox(portal_app)
    assert [json.loads(r.payload)["data"]["topic"] for r in rows] == ["task.added", "task.changed"]
    assert [json.loads(r.payload)["data"]["payload"] for r in rows] == events["events"][:2]
    assert {r.ordering_key for r in rows} == {mine}

    # The heartbeat (no events) forwards nothing.
    empty = b'{"events": []}'
    beat = client.post(url, data=empty, headers={"X-Hook-Signature": hex_mac(hook_secret, empty)})
    assert beat.status_code == 202 and beat.get_json() == {"accepted": 0}
    # Another secret, no signature, or the other account's URL (which learnt no secret): 401.
    for headers, target in (
        ({"X-Hook-Signature": hex_mac("other", body)}, url),
        ({}, url),
        (
            {"X-Hook-Signature": hex_mac(hook_secret, body)},
            f"{path('asana')}?account={other}&token={token('asana', other)}",
        ),
    ):
        assert client.post(target, data=body, headers=headers).status_code == 401
    assert len(outbox(portal_app)) == 2


def test_hubspot_batch_over_http_is_split_and_routed(portal_app: Flask, stack: DemoStack) -> None:
    """Over real HTTP: HubSpot signs the public URL (PORTAL_BASE_URL), not the Host the
    request reached; a batch's events go to their own portals' accounts."""
    first = connect(portal_app, "alice", "hubspot", "62515")
    second = connect(portal_app, "bob", "hubspot", "77777")
    events = [
        {"eventId": 1, "portalId": 62515, "subscriptionType": "contact.creation", "objectId": 1},
        {"eventId": 2, "portalId": 77777, "subscriptionType": "deal.creation", "objectId": 2},
        {
            "eventId": 3,
            "portalId": 77777,
            "subscriptionType": "contact.privacyDeletion",
            "objectId": 3,
        },
        {"eventId": 4, "portalId": 11111, "subscriptionType": "contact.creation", "objectId": 4},
    ]
    body = json.dumps(events).encode()
    server = ServerThread("127.0.0.1", 0).start(portal_app)
    try:
        now = time.time()
        headers = {
            "Content-Type": "application/json",
            **hubspot_sign("hubspot")(body, client_secret("hubspot"), now),
        }
        response = requests.post(
            server.url + path("hubspot"), data=body, headers=headers, timeout=10
        )
        # Signed over the URL actually reached instead of the public one: refused.
        ts = str(int(now * 1000))
        wrong = b64_mac(
            client_secret("hubspot"),
            ("POST" + server.url + path("hubspot")).encode() + body + ts.encode(),
        )
        refused = requests.post(
            server.url + path("hubspot"),
            data=body,
            headers={"X-HubSpot-Request-Timestamp": ts, "X-HubSpot-Signature-v3": wrong},
            timeout=10,
        )
    finally:
        server.stop()
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 2}
    assert refused.status_code == 401
    rows = [json.loads(r.payload)["data"] for r in outbox(portal_app)]
    assert [(d["account"]["id"], d["topic"], d["payload"]["eventId"]) for d in rows] == [
        (first, "contact.creation", 1),
        (second, "deal.creation", 2),
    ]


def test_the_worker_delivers_a_stripe_event_to_the_host(make_app: Any, stack: DemoStack) -> None:
    from test_provider_webhooks import Receiver

    receiver = Receiver()
    try:
        app: Flask = make_app(
            PORTAL_APPS={
                **sandbox_app_settings(stack.sandbox.url),
                "stripe-connect": {
                    "client_id": "ca_1",
                    "client_secret": "sk_test_1",
                    "webhook_secret": "whsec_test",
                },
            },
            PORTAL_WEBHOOK_URL=receiver.url,
            PORTAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        account = connect(app, "alice", "stripe-connect", "acct_1032D82eZvKYlo2C")
        case = CASES["stripe-connect"]
        body = json.dumps(case.notification("acct_1032D82eZvKYlo2C", time.time())).encode()
        headers = {
            "Content-Type": "application/json",
            **stripe_headers(body, "whsec_test", time.time()),
        }
        assert app.test_client().post(
            path("stripe-connect"), data=body, headers=headers
        ).get_json() == {"accepted": 1}
        assert run_once(app) == 1
    finally:
        receiver.server.stop()
    [(headers_seen, delivered)] = receiver.requests
    document = verify_webhook(delivered, headers_seen.get("X-Portal-Signature"), WEBHOOK_SECRET)
    assert document["type"] == "app.webhook"
    data = document["data"]
    assert (data["app"], data["topic"], data["account"]["id"]) == (
        "stripe-connect",
        "customer.created",
        account,
    )
    assert data["payload"] == json.loads(body)


def test_not_configured_secret_is_404(make_app: Any, stack: DemoStack) -> None:
    """Slack signs with its signing secret: without PORTAL_SLACK_WEBHOOK_SECRET nothing could
    be verified, so the endpoint is not there."""
    app: Flask = make_app(
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "slack": {"client_id": "c", "client_secret": "s"},
        }
    )
    body = b'{"type":"url_verification","challenge":"x"}'
    headers = slack_headers(body, "s", time.time())
    response = app.test_client().post(path("slack"), data=body, headers=headers)
    assert response.status_code == 404
    assert response.get_json()["error"] == "webhooks_not_configured"


def test_per_account_token_is_the_documented_hmac(portal_app: Flask) -> None:
    from portal.provider_webhooks import subscription_token

    zendesk = portal_app.extensions["portal"].catalog.get("zendesk")
    assert subscription_token(zendesk, "ca_abc") == token("zendesk", "ca_abc")
    expected = (
        base64.b16encode(
            hmac.new(client_secret("zendesk").encode(), b"zendesk:ca_abc", hashlib.sha256).digest()
        )
        .decode()
        .lower()
    )
    assert subscription_token(zendesk, "ca_abc") == expected
