"""Provider webhooks: notifications an app's provider sends to the portal, verified and
forwarded to the host.

An app opts in with a ``webhooks:`` block in its catalog YAML (:class:`~portal.catalog.WebhookSpec`).
The provider POSTs to ``/portal/api/v1/provider-webhooks/<slug>``; :func:`ingest` checks the
signature (hex HMAC of the raw body keyed with the app's client secret, RFC 2104), reads the
topic and the account id from the JSON body, and for a topic listed in ``triggers`` writes one
``app.webhook`` to the outbox (:func:`portal.webhooks.enqueue`) per connected account whose
``external_id`` equals that id, all in one transaction. The worker then delivers them to
``PORTAL_WEBHOOK_URL``, signed with ``X-Portal-Signature``. In the same transaction, the flows
whose trigger is that webhook trigger (:func:`portal.flows.webhook_runs`) queue their runs for
each matching account's user.

Body of each forwarded webhook's ``data``::

    {"app": "<slug>", "topic": "<trigger name>", "account": Account,
     "user_id": "<end user>", "payload": <the provider's notification, unchanged>}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import flows
from .accounts import to_dict
from .catalog import App, WebhookSpec, dotted
from .errors import AuthenticationFailed, InvalidRequest, ResourceNotFound
from .store import ConnectedAccount
from .webhooks import enqueue

if TYPE_CHECKING:
    from .state import PortalState

#: Largest notification body accepted, in bytes (1 MiB).
MAX_BODY = 1024 * 1024
#: Outbox type of a forwarded provider notification.
WEBHOOK_TYPE = "app.webhook"


class InvalidSignature(AuthenticationFailed):
    """401: the notification's signature header is missing or does not match its body."""

    error_code = "invalid_signature"


def webhook_app(state: PortalState, slug: str) -> App:
    """The enabled, usable app ``slug`` that takes provider webhooks.

    :raises ResourceNotFound: no such app, the app has no ``webhooks:`` block, or the secret
        its signatures are keyed with is not configured (nothing could be verified).
    """
    app: App | None = state.app(slug)
    if app is None or app.webhooks is None:
        raise ResourceNotFound(f"No app called {slug!r} takes webhooks.", code="unknown_app")
    if not _secret(app, app.webhooks):
        raise ResourceNotFound(
            f"Webhooks of {app.title} are not configured: its client secret is missing.",
            code="webhooks_not_configured",
        )
    return app


def verify_signature(spec: WebhookSpec, secret: str, body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is ``spec.signature.prefix`` + the hex HMAC of ``body``.

    The HMAC (RFC 2104) uses ``spec.signature.algorithm`` (``sha1`` or ``sha256``) keyed with
    ``secret`` (UTF-8); the hex digest is compared in constant time, case-insensitively.
    A missing header, another prefix or an empty secret is ``False``.
    """
    prefix = spec.signature.prefix
    if not secret or not header_value or not header_value.startswith(prefix):
        return False
    presented = header_value[len(prefix) :].strip().lower()
    if not presented.isascii():
        return False
    digest = hmac.new(secret.encode(), body, getattr(hashlib, spec.signature.algorithm))
    return hmac.compare_digest(digest.hexdigest(), presented)


def account_value(spec: WebhookSpec, payload: Any) -> str | None:
    """The account id at ``spec.account.payload_path`` as a string (as the identity stores
    ``external_id``), or ``None`` when missing, empty or not a scalar."""
    value = dotted(payload, spec.account.payload_path)
    if value is None or value == "" or isinstance(value, Mapping | list):
        return None
    return str(value)[:255]


def trigger_of(spec: WebhookSpec, payload: Any) -> str | None:
    """The trigger name the notification is forwarded as, or ``None`` when it is not
    forwarded (no topic at ``spec.topic_path``, or a topic that maps to no trigger)."""
    topic = dotted(payload, spec.topic_path)
    if not isinstance(topic, str):
        return None
    return spec.trigger(topic)


def _matching(db: Session, app: App, payload: Any) -> list[ConnectedAccount]:
    assert app.webhooks is not None
    value = account_value(app.webhooks, payload)
    if value is None:
        return []
    query = (
        select(ConnectedAccount)
        .where(ConnectedAccount.app == app.slug, ConnectedAccount.external_id == value)
        .order_by(ConnectedAccount.created_at, ConnectedAccount.id)
    )
    return list(db.scalars(query))


def route(state: PortalState, app: App, body_json: Any) -> list[str]:
    """Ids of the connected accounts of ``app`` a notification is for: every account (of any
    end user) whose ``external_id`` equals the value at ``webhooks.account.payload_path``.

    For Intercom that is the notification's ``app_id``, the workspace id the identity stored
    as ``app.id_code`` from ``GET /me``.
    """
    if app.webhooks is None:
        return []
    with state.store.read() as db:
        return [account.id for account in _matching(db, app, body_json)]


def ingest(state: PortalState, app: App, raw_body: bytes, headers: Mapping[str, str]) -> int:
    """Verify one notification and forward it to the host.

    In one transaction, writes one ``app.webhook`` outbox row per matching account (ordering
    key: the account id), so either every account's webhook is queued or none is. A topic
    that is not a trigger, or a notification for no connected account, forwards nothing.

    :param headers: request headers (looked up case-insensitively).
    :returns: how many webhooks were queued (``0`` while ``PORTAL_WEBHOOK_URL`` is unset:
        :func:`portal.webhooks.enqueue` writes nothing then).
    :raises InvalidSignature: missing or wrong signature (checked before the body is parsed).
    :raises InvalidRequest: the body is not a JSON object.
    """
    spec = app.webhooks
    if spec is None:
        raise ResourceNotFound(f"{app.title} takes no webhooks.", code="unknown_app")
    wanted = spec.signature.header.lower()
    header_value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    if not verify_signature(spec, _secret(app, spec), raw_body, header_value):
        raise InvalidSignature(f"The {spec.signature.header} signature does not match the body.")
    try:
        payload = json.loads(raw_body, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest("The body is not JSON.", code="invalid_json") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    trigger = trigger_of(spec, payload)
    if trigger is None:
        return 0
    forwarded = 0
    with state.store.session() as db:
        for account in _matching(db, app, payload):
            data = {
                "app": app.slug,
                "topic": trigger,
                "account": to_dict(account),
                "user_id": account.user_id,
                "payload": payload,
            }
            queued = enqueue(
                db, WEBHOOK_TYPE, data, account.id, project=account.project, state=state
            )
            if queued is not None:
                forwarded += 1
            # Flows of this trigger run for the account's user (portal.flows).
            flows.webhook_runs(state, db, app.slug, trigger, account, payload)
    return forwarded


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6); the outbox must hold valid JSON.
    raise ValueError(f"{name} is not JSON")


def _secret(app: App, spec: WebhookSpec) -> str:
    # Only the client secret for now (catalog.schema.json: webhooks.signature.secret).
    return app.client.client_secret or ""
