"""Signature schemes of provider webhooks, one function per provider scheme.

A catalog app picks one with ``webhooks.signature.scheme`` (:class:`portal.catalog.WebhookSignature`);
:data:`SCHEMES` maps the name to its check. Every check reads the raw body exactly as received
(never a re-serialised parse), compares digests with :func:`hmac.compare_digest`, and answers
``False`` for anything missing, malformed, stale or wrong. ``secrets`` holds every key the
notification may be signed with (one, or several during a rotation / for several hooks); a
scheme accepts the notification when one of them matches.

The HMACs are RFC 2104; the replay windows are each provider's documented tolerance unless
``signature.tolerance`` overrides it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from .catalog import WebhookSignature

#: Replay windows, in seconds, as each provider documents them.
SLACK_TOLERANCE = 300  # "more than five minutes" (Slack, "Verifying requests from Slack")
HUBSPOT_TOLERANCE = 300  # "older than 5 minutes" (HubSpot, "Validating requests", v3)
STRIPE_TOLERANCE = 300  # the libraries' default tolerance (Stripe, "Check the webhook signatures")
ZENDESK_TOLERANCE = 300  # Zendesk sends the timestamp "to prevent replay attacks"; no window given
LINEAR_TOLERANCE = 60  # "within a minute" (Linear, "Webhooks", securing webhooks)
JWT_LEEWAY = 60  # clock skew allowed on an Atlassian JWT's exp/nbf/iat


@dataclass(frozen=True)
class Delivery:
    """One notification as received.

    :ivar method: the HTTP method (``POST``).
    :ivar url: the URL the provider called, as it sees it (HubSpot signs it): the portal's
        ``PORTAL_BASE_URL`` with the request's path and query.
    :ivar headers: request headers (looked up case-insensitively by :meth:`header`).
    :ivar body: the raw body bytes.
    :ivar now: the current time, UNIX seconds.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    now: float

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


Scheme = Callable[[WebhookSignature, Sequence[str], Delivery], bool]


def _mac(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def _hex_matches(presented: str, secrets: Sequence[str], message: bytes, algo: str) -> bool:
    presented = presented.strip().lower()
    if not presented or not presented.isascii():
        return False
    found = False
    for secret in secrets:
        if secret:
            expected = _mac(secret, message, algo).hex()
            found |= hmac.compare_digest(expected, presented)
    return found


def _b64_matches(presented: str, secrets: Sequence[str], message: bytes) -> bool:
    try:
        raw = base64.b64decode(presented.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    found = False
    for secret in secrets:
        if secret:
            found |= hmac.compare_digest(_mac(secret, message), raw)
    return found


def _fresh(timestamp: float, now: float, tolerance: int) -> bool:
    return abs(now - timestamp) <= tolerance


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value.strip()) > 16:
        return None
    return int(value.strip())


def hmac_hex(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """``sig.header`` = ``sig.prefix`` + hex HMAC-``sig.algorithm`` of the body (Intercom's
    ``X-Hub-Signature: sha1=…``); the hex digest is compared case-insensitively."""
    value = d.header(sig.header) if sig.header else None
    if not value or not value.startswith(sig.prefix):
        return False
    return _hex_matches(value[len(sig.prefix) :], secrets, d.body, sig.algorithm)


def slack(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Slack v0: ``X-Slack-Signature: v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` keyed
    with the app's signing secret, ``X-Slack-Request-Timestamp`` (UNIX seconds) within 5 minutes.
    Source: https://api.slack.com/authentication/verifying-requests-from-slack"""
    timestamp = _int(d.header("X-Slack-Request-Timestamp"))
    value = d.header("X-Slack-Signature") or ""
    if timestamp is None or not value.startswith("v0="):
        return False
    if not _fresh(timestamp, d.now, sig.tolerance or SLACK_TOLERANCE):
        return False
    message = b"v0:" + str(timestamp).encode() + b":" + d.body
    return _hex_matches(value[3:], secrets, message, "sha256")


#: The escapes HubSpot decodes in the request URI before signing (v3, "Validate the v3 request
#: signature": the table of URL-encoded characters).
_HUBSPOT_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def hubspot_uri(url: str) -> str:
    """``url`` with the escapes HubSpot decodes before signing decoded (either case)."""
    out = url
    for escape, char in _HUBSPOT_DECODE.items():
        out = out.replace(escape, char).replace(escape.lower(), char)
    return out


def hubspot_v3(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """HubSpot v3: ``X-HubSpot-Signature-v3`` = base64 HMAC-SHA256 of method + URI + body +
    timestamp keyed with the client secret; ``X-HubSpot-Request-Timestamp`` (milliseconds)
    within 5 minutes.
    Source: https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
    """
    millis = _int(d.header("X-HubSpot-Request-Timestamp"))
    value = d.header("X-HubSpot-Signature-v3")
    if millis is None or not value:
        return False
    if not _fresh(millis / 1000, d.now, sig.tolerance or HUBSPOT_TOLERANCE):
        return False
    message = (d.method.upper() + hubspot_uri(d.url)).encode() + d.body + str(millis).encode()
    return _b64_matches(value, secrets, message)


def github(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """GitHub: ``X-Hub-Signature-256: sha256=`` + hex HMAC-SHA256 of the body keyed with the
    webhook secret (no timestamp: GitHub documents none).
    Source: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries"""
    value = d.header("X-Hub-Signature-256") or ""
    if not value.startswith("sha256="):
        return False
    return _hex_matches(value[7:], secrets, d.body, "sha256")


def stripe(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Stripe: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=…][,v0=…]``, each ``v1`` the hex
    HMAC-SHA256 of ``{t}.{body}`` keyed with the endpoint secret (``whsec_…``); one ``v1`` must
    match and ``t`` be within 300 s (the libraries' default tolerance).
    Source: https://docs.stripe.com/webhooks#verify-manually"""
    value = d.header("Stripe-Signature") or ""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in value.split(","):
        key, _, part = item.strip().partition("=")
        if key == "t":
            timestamp = _int(part)
        elif key == "v1":
            candidates.append(part)
    if timestamp is None or not candidates:
        return False
    if not _fresh(timestamp, d.now, sig.tolerance or STRIPE_TOLERANCE):
        return False
    message = str(timestamp).encode() + b"." + d.body
    found = False
    for candidate in candidates[:8]:
        found |= _hex_matches(candidate, secrets, message, "sha256")
    return found


def shopify(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Shopify: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the body keyed with the app's
    client secret (no signed timestamp).
    Source: https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify
    """
    value = d.header("X-Shopify-Hmac-Sha256")
    return bool(value) and _b64_matches(value or "", secrets, d.body)


def _iso_seconds(value: str | None) -> float | None:
    if not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def zendesk(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Zendesk: ``X-Zendesk-Webhook-Signature`` = base64 HMAC-SHA256 of timestamp + body keyed
    with the webhook's signing secret; ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601).
    Zendesk gives no window: the portal allows 300 s.
    Source: https://developer.zendesk.com/documentation/webhooks/verifying/"""
    raw_timestamp = d.header("X-Zendesk-Webhook-Signature-Timestamp")
    value = d.header("X-Zendesk-Webhook-Signature")
    timestamp = _iso_seconds(raw_timestamp)
    if timestamp is None or raw_timestamp is None or not value:
        return False
    if not _fresh(timestamp, d.now, sig.tolerance or ZENDESK_TOLERANCE):
        return False
    return _b64_matches(value, secrets, raw_timestamp.encode() + d.body)


def asana(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Asana: ``X-Hook-Signature`` = hex HMAC-SHA256 of the body keyed with the secret Asana
    sent in the ``X-Hook-Secret`` handshake that created the webhook (no timestamp).
    Source: https://developers.asana.com/docs/webhooks-guide#security"""
    value = d.header("X-Hook-Signature")
    return bool(value) and _hex_matches(value or "", secrets, d.body, "sha256")


def linear(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Linear: ``Linear-Signature`` = hex HMAC-SHA256 of the body keyed with the webhook's
    signing secret; then the body's ``webhookTimestamp`` (milliseconds) within a minute.
    The body is parsed only once the signature matched.
    Source: https://linear.app/developers/webhooks#securing-webhooks"""
    value = d.header("Linear-Signature")
    if not value or not _hex_matches(value, secrets, d.body, "sha256"):
        return False
    try:
        payload = json.loads(d.body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    millis = payload.get("webhookTimestamp") if isinstance(payload, dict) else None
    if isinstance(millis, bool) or not isinstance(millis, int):
        return False
    return _fresh(millis / 1000, d.now, sig.tolerance or LINEAR_TOLERANCE)


def atlassian_jwt(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """Atlassian (Jira) dynamic webhooks of OAuth 2.0 apps: ``Authorization: Bearer <JWT>``,
    HS256-signed with the app's client secret (RFC 7519); ``exp``, ``nbf`` and ``iat`` are
    checked when present (60 s leeway). Admin webhooks' ``X-Hub-Signature`` is not used: OAuth
    2.0 apps register dynamic webhooks (``POST /rest/api/3/webhook``), which carry the JWT.
    Source: https://developer.atlassian.com/cloud/jira/platform/webhooks/#webhooks-authentication-for-oauth-2-0-apps
    """
    value = d.header("Authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 8192:
        return False
    for secret in secrets:
        if not secret:
            continue
        try:
            decoded = jwt.decode(token.strip(), OctKey.import_key(secret), algorithms=["HS256"])
            claims: dict[str, Any] = dict(decoded.claims)
            jwt.JWTClaimsRegistry(now=int(d.now), leeway=JWT_LEEWAY).validate(claims)
        except (JoseError, ValueError, TypeError):
            continue
        return True
    return False


def basic_auth(sig: WebhookSignature, secrets: Sequence[str], d: Delivery) -> bool:
    """HTTP Basic (RFC 7617), as Pipedrive authenticates webhook deliveries: the host creates
    the webhook with ``http_auth_user`` (any) and ``http_auth_password`` = the webhook secret;
    the password is compared in constant time.
    Source: https://pipedrive.readme.io/docs/guide-for-webhooks (HTTP basic auth)"""
    value = d.header("Authorization") or ""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return False
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        return False
    found = False
    for secret in secrets:
        if secret:
            found |= hmac.compare_digest(password.encode(), secret.encode())
    return found


#: Scheme name (catalog ``webhooks.signature.scheme``) -> its check.
SCHEMES: Mapping[str, Scheme] = {
    "hmac_hex": hmac_hex,
    "slack": slack,
    "hubspot_v3": hubspot_v3,
    "github": github,
    "stripe": stripe,
    "shopify": shopify,
    "zendesk": zendesk,
    "asana": asana,
    "linear": linear,
    "atlassian_jwt": atlassian_jwt,
    "basic_auth": basic_auth,
}


def verify(sig: WebhookSignature, secrets: Sequence[str], delivery: Delivery) -> bool:
    """True when ``delivery`` carries a valid, fresh signature under ``sig.scheme`` with one of
    ``secrets`` (empty secrets never match)."""
    if not any(secrets):
        return False
    return SCHEMES[sig.scheme](sig, secrets, delivery)
