"""Provider webhooks: notifications an app's provider sends to the portal, verified and
forwarded to the host.

An app opts in with a ``webhooks:`` block in its catalog YAML (:class:`~portal.catalog.WebhookSpec`).
The provider POSTs to ``/portal/api/v1/provider-webhooks/<slug>``; :func:`ingest` checks the
signature with the app's scheme (:mod:`portal.webhook_schemes`: Intercom's hex HMAC, Slack v0,
HubSpot v3, GitHub, Stripe, Shopify, Zendesk, Asana, Linear, Atlassian JWT, HTTP Basic) on the
raw body before anything is parsed, reads the topic and the account id (from the body, a header
or the subscribed URL), and for a topic listed in ``triggers`` writes one ``app.webhook`` to the
outbox (:func:`portal.webhooks.enqueue`) per connected account it routes to, all in one
transaction. The worker then delivers them to ``PORTAL_WEBHOOK_URL``, signed with
``X-Portal-Signature``. In the same transaction, the flows whose trigger is that webhook trigger
(:func:`portal.flows.webhook_runs`) queue their runs for each matching account's user.

A notification for no connected account is answered 202 ``{"accepted": 0}`` (the provider must
not retry it for ever) and logged. Two handshakes are answered too: Slack's signed
``url_verification`` (the ``challenge`` echoed) and Asana's ``X-Hook-Secret`` (echoed, and the
secret stored, sealed, in the connected account's credentials to check later signatures).

Body of each forwarded webhook's ``data``::

    {"app": "<slug>", "topic": "<trigger name>", "account": Account,
     "user_id": "<end user>", "payload": <the provider's notification, unchanged>}

For a batch (``webhooks.batch``: HubSpot's list, Asana's ``events``) ``payload`` is one event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import flows
from .accounts import to_dict
from .catalog import App, WebhookSpec, dotted
from .errors import AuthenticationFailed, CredentialError, InvalidRequest, ResourceNotFound
from .store import ConnectedAccount
from .webhook_schemes import Delivery, hmac_hex, verify
from .webhooks import enqueue

if TYPE_CHECKING:
    from .state import PortalState

log = logging.getLogger(__name__)

#: Largest notification body accepted, in bytes (1 MiB).
MAX_BODY = 1024 * 1024
#: Outbox type of a forwarded provider notification.
WEBHOOK_TYPE = "app.webhook"
#: Query parameter of a per-account subscription URL carrying :func:`subscription_token`.
TOKEN_PARAM = "token"
#: Handshake secrets kept per connected account (the newest; Asana: one per webhook).
MAX_ACCOUNT_SECRETS = 50


class InvalidSignature(AuthenticationFailed):
    """401: the notification's signature header is missing or does not match its body."""

    error_code = "invalid_signature"


@dataclass
class Outcome:
    """What :func:`ingest` did: ``accepted`` webhooks queued; ``reply`` a JSON body to answer
    with instead of ``{"accepted": n}`` (Slack's challenge) and ``headers`` to add (Asana's
    ``X-Hook-Secret``); ``handshake`` true for a handshake (answered 200, not 202)."""

    accepted: int = 0
    reply: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    handshake: bool = False


def webhook_app(state: PortalState, slug: str) -> App:
    """The enabled, usable app ``slug`` that takes provider webhooks.

    :raises ResourceNotFound: no such app, the app has no ``webhooks:`` block, or the secret
        its signatures are keyed with is not configured (nothing could be verified).
    """
    app: App | None = state.app(slug)
    if app is None or app.webhooks is None:
        raise ResourceNotFound(f"No app called {slug!r} takes webhooks.", code="unknown_app")
    spec = app.webhooks
    # Per-account secrets (Asana) and per-account URLs are keyed with the client secret.
    needs = "client_secret" if spec.signature.secret == "account" else spec.signature.secret
    if not _configured_secret(app, needs):
        raise ResourceNotFound(
            f"Webhooks of {app.title} are not configured: its {needs.replace('_', ' ')} "
            "is missing.",
            code="webhooks_not_configured",
        )
    return app


def verify_signature(spec: WebhookSpec, secret: str, body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is ``spec.signature.prefix`` + the hex HMAC of ``body``
    (scheme ``hmac_hex``, :func:`portal.webhook_schemes.hmac_hex`).

    The HMAC (RFC 2104) uses ``spec.signature.algorithm`` (``sha1`` or ``sha256``) keyed with
    ``secret`` (UTF-8); the hex digest is compared in constant time, case-insensitively.
    A missing header, another prefix or an empty secret is ``False``.
    """
    headers = {spec.signature.header: header_value} if header_value is not None else {}
    delivery = Delivery("POST", "", headers, body, time.time())
    return bool(secret) and hmac_hex(spec.signature, [secret], delivery)


def subscription_token(app: App, account_id: str) -> str:
    """The ``token`` query parameter of ``app``'s subscription URL for one connected account:
    hex HMAC-SHA256 (RFC 2104) of ``"<slug>:<account id>"`` keyed with the app's client secret.

    Apps routed by URL (``webhooks.account.query``) are subscribed by the host, per connected
    account, at ``PORTAL_BASE_URL/portal/api/v1/provider-webhooks/<slug>?account=<id>&token=
    <this>``; the host computes the same value with its client secret. Empty without a client
    secret.
    """
    secret = app.client.client_secret or ""
    if not secret:
        return ""
    message = f"{app.slug}:{account_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def account_value(spec: WebhookSpec, payload: Any) -> str | None:
    """The account id at ``spec.account.payload_path`` as a string (as the identity stores
    ``external_id``), or ``None`` when missing, empty or not a scalar."""
    if not spec.account.payload_path:
        return None
    value = dotted(payload, spec.account.payload_path)
    if value is None or value == "" or isinstance(value, Mapping | list):
        return None
    return str(value)[:255]


def topic_of(spec: WebhookSpec, payload: Any, headers: Mapping[str, str] | None = None) -> str:
    """The provider's topic: the ``topic_header`` header, else the values at the
    space-separated ``topic_path`` paths joined with ``.``; ``""`` when any is missing."""
    if spec.topic_header:
        delivery = Delivery("POST", "", headers or {}, b"", 0.0)
        return (delivery.header(spec.topic_header) or "").strip()
    parts = []
    for path in spec.topic_path.split():
        value = dotted(payload, path)
        if not isinstance(value, str) or not value:
            return ""
        parts.append(value)
    return ".".join(parts)


def trigger_of(
    spec: WebhookSpec, payload: Any, headers: Mapping[str, str] | None = None
) -> str | None:
    """The trigger name the notification is forwarded as, or ``None`` when it is not
    forwarded (no topic, or a topic that maps to no trigger)."""
    topic = topic_of(spec, payload, headers)
    return spec.trigger(topic) if topic else None


@dataclass(frozen=True)
class _Source:
    """Where an event's account id may be read besides the event itself."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)


def _query_account(app: App, spec: WebhookSpec, query: Mapping[str, str]) -> str | None:
    """The connected-account id of a per-account URL whose token is right, else ``None``."""
    account_id = query.get(spec.account.query, "")
    token = query.get(TOKEN_PARAM, "")
    expected = subscription_token(app, account_id)
    if not account_id or not expected or not token.isascii():
        return None
    return account_id if hmac.compare_digest(expected, token.lower()) else None


def _value(app: App, event: Any, source: _Source) -> str | None:
    spec = app.webhooks
    assert spec is not None
    if spec.account.query:
        return _query_account(app, spec, source.query)
    if spec.account.header:
        value = Delivery("POST", "", source.headers, b"", 0.0).header(spec.account.header)
        return value.strip()[:255] if value and value.strip() else None
    return account_value(spec, event)


def _matching(
    state: PortalState, db: Session, app: App, event: Any, source: _Source | None = None
) -> list[ConnectedAccount]:
    spec = app.webhooks
    assert spec is not None
    value = _value(app, event, source or _Source())
    if value is None:
        return []
    query = select(ConnectedAccount).where(ConnectedAccount.app == app.slug)
    if spec.account.match == "external_id":
        query = query.where(ConnectedAccount.external_id == value)
    elif spec.account.match == "id":
        query = query.where(ConnectedAccount.id == value)
    accounts = list(db.scalars(query.order_by(ConnectedAccount.created_at, ConnectedAccount.id)))
    if spec.account.match != "account_field":
        return accounts
    # The account fields are sealed with the credentials: open each account of the app.
    wanted = value.lower()
    return [a for a in accounts if _field_value(state, a, spec) == wanted]


def _field_value(state: PortalState, account: ConnectedAccount, spec: WebhookSpec) -> str | None:
    try:
        credentials = state.sealer.open(account.id, account.credentials)
    except CredentialError:
        return None
    value = (credentials.get("account_fields") or {}).get(spec.account.field)
    return f"{value}{spec.account.suffix}".lower() if isinstance(value, str) and value else None


def route(
    state: PortalState,
    app: App,
    body_json: Any,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> list[str]:
    """Ids of the connected accounts of ``app`` one event is for: every account (of any end
    user) whose ``webhooks.account.match`` value equals the event's account id, read at
    ``payload_path``, in the ``header`` header, or from the ``query`` parameter of a
    per-account URL (with a right :func:`subscription_token`).

    For Intercom that is the notification's ``app_id``, the workspace id the identity stored
    as ``app.id_code`` from ``GET /me``.
    """
    if app.webhooks is None:
        return []
    source = _Source(headers or {}, query or {})
    with state.store.read() as db:
        return [account.id for account in _matching(state, db, app, body_json, source)]


def ingest(
    state: PortalState,
    app: App,
    raw_body: bytes,
    headers: Mapping[str, str],
    *,
    method: str = "POST",
    url: str = "",
    query: Mapping[str, str] | None = None,
    now: float | None = None,
) -> Outcome:
    """Verify one notification and forward it to the host.

    In one transaction, writes one ``app.webhook`` outbox row per matching account and event
    (ordering key: the account id), so either every webhook is queued or none is. A topic
    that is not a trigger, or an event for no connected account (logged), forwards nothing.

    :param headers: request headers (looked up case-insensitively).
    :param url: the URL the provider called (HubSpot v3 signs it).
    :param query: the URL's query parameters (per-account URLs).
    :param now: the current time in UNIX seconds (default: the clock), for replay windows.
    :returns: the :class:`Outcome`; ``accepted`` is ``0`` while ``PORTAL_WEBHOOK_URL`` is unset
        (:func:`portal.webhooks.enqueue` writes nothing then).
    :raises InvalidSignature: missing, wrong or stale signature (checked before the body is
        parsed).
    :raises InvalidRequest: the body is not a JSON object (or, for ``batch: .``, a list).
    """
    spec = app.webhooks
    if spec is None:
        raise ResourceNotFound(f"{app.title} takes no webhooks.", code="unknown_app")
    query = query or {}
    delivery = Delivery(method, url, headers, raw_body, time.time() if now is None else now)
    if spec.signature.scheme == "asana" and delivery.header("X-Hook-Secret") is not None:
        return _asana_handshake(state, app, delivery, query)
    if not verify(spec.signature, _secrets(state, app, query), delivery):
        raise InvalidSignature(f"The {app.title} signature does not match the body.")
    payload = _parse(raw_body, allow_list=spec.batch == ".")
    if spec.signature.scheme == "slack" and payload.get("type") == "url_verification":
        # Slack's Events API URL check: answer its challenge (already signed and verified).
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise InvalidRequest("The url_verification has no challenge.", code="invalid_json")
        return Outcome(reply={"challenge": challenge}, handshake=True)
    return Outcome(accepted=_forward(state, app, payload, _Source(headers, query)))


def _forward(state: PortalState, app: App, payload: Any, source: _Source) -> int:
    spec = app.webhooks
    assert spec is not None
    forwarded = 0
    with state.store.session() as db:
        for event in _events(spec, payload):
            trigger = trigger_of(spec, event, source.headers)
            if trigger is None:
                continue
            accounts = _matching(state, db, app, event, source)
            if not accounts:
                log.info(
                    "%s webhook %r for no connected account (account %r): ignored",
                    app.slug,
                    trigger,
                    _value(app, event, source),
                )
            for account in accounts:
                data = {
                    "app": app.slug,
                    "topic": trigger,
                    "account": to_dict(account),
                    "user_id": account.user_id,
                    "payload": event,
                }
                queued = enqueue(
                    db, WEBHOOK_TYPE, data, account.id, project=account.project, state=state
                )
                if queued is not None:
                    forwarded += 1
                # Flows of this trigger run for the account's user (portal.flows).
                flows.webhook_runs(state, db, app.slug, trigger, account, event)
    return forwarded


def _events(spec: WebhookSpec, payload: Any) -> list[Any]:
    """The events of one notification: itself, or the dict items of its ``batch`` list."""
    if not spec.batch:
        return [payload]
    found = payload if spec.batch == "." else dotted(payload, spec.batch)
    return [event for event in found if isinstance(event, dict)] if isinstance(found, list) else []


def _parse(raw_body: bytes, *, allow_list: bool) -> Any:
    try:
        payload = json.loads(raw_body, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest("The body is not JSON.", code="invalid_json") from exc
    if not isinstance(payload, dict) and not (allow_list and isinstance(payload, list)):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    return payload


def _asana_handshake(
    state: PortalState, app: App, delivery: Delivery, query: Mapping[str, str]
) -> Outcome:
    """Asana's webhook handshake: store the ``X-Hook-Secret`` (sealed, with the account's
    credentials) of a per-account URL with a right token, and echo it (200).

    :raises InvalidSignature: the URL's account or token is wrong (the webhook is not created).
    """
    assert app.webhooks is not None
    secret = (delivery.header("X-Hook-Secret") or "").strip()
    account_id = _query_account(app, app.webhooks, query)
    if not secret or len(secret) > 512 or account_id is None:
        raise InvalidSignature(f"The {app.title} handshake is not for a connected account.")
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        if account is None or account.app != app.slug:
            raise InvalidSignature(f"The {app.title} handshake is not for a connected account.")
        data = state.sealer.open(account.id, account.credentials)
        kept = [s for s in data.get("webhook_secrets", []) if s != secret]
        data["webhook_secrets"] = [*kept, secret][-MAX_ACCOUNT_SECRETS:]
        account.credentials = state.sealer.seal(account.id, data)
    log.info("%s webhook handshake for connected account %s", app.slug, account_id)
    return Outcome(reply={}, headers={"X-Hook-Secret": secret}, handshake=True)


def _secrets(state: PortalState, app: App, query: Mapping[str, str]) -> list[str]:
    """The keys a notification may be signed with."""
    spec = app.webhooks
    assert spec is not None
    if spec.signature.secret != "account":
        return [_configured_secret(app, spec.signature.secret)]
    account_id = _query_account(app, spec, query)
    if account_id is None:
        return []
    with state.store.read() as db:
        account = db.get(ConnectedAccount, account_id)
        if account is None or account.app != app.slug:
            return []
        try:
            data = state.sealer.open(account.id, account.credentials)
        except CredentialError:
            return []
    return [s for s in data.get("webhook_secrets", []) if isinstance(s, str)]


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6); the outbox must hold valid JSON.
    raise ValueError(f"{name} is not JSON")


def _configured_secret(app: App, which: str) -> str:
    """The app's ``client_secret`` or ``webhook_secret`` (``""`` when not configured)."""
    if which == "webhook_secret":
        return app.client.webhook_secret or ""
    return app.client.client_secret or ""
