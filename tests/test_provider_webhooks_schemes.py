"""portal/webhook_schemes.py: each provider's signature scheme, computed here the way the
provider's documentation describes it, accepted when good and refused when bad, missing,
tampered or (for timestamped schemes) replayed outside the window."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from portal.catalog import WebhookSignature
from portal.webhook_schemes import SCHEMES, Delivery, hubspot_uri, verify

SECRET = "provider-secret-for-tests-0123456789"
OTHER = "another-secret-for-tests-9876543210"
NOW = 1_790_000_000.0
BODY = b'{"type":"event_callback","team_id":"T0001","event":{"type":"app_mention"}}'
URL = "https://portal.example/portal/api/v1/provider-webhooks/hubspot"


def hex_mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def b64_mac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Signers: (body, secret, signed-at seconds) -> headers, exactly as each provider documents.


def slack_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    ts = str(int(at))
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + hex_mac(secret, f"v0:{ts}:".encode() + body),
    }


def hubspot_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    ts = str(int(at * 1000))
    message = ("POST" + URL).encode() + body + ts.encode()
    return {"X-HubSpot-Request-Timestamp": ts, "X-HubSpot-Signature-v3": b64_mac(secret, message)}


def github_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hex_mac(secret, body)}


def stripe_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    t = str(int(at))
    return {"Stripe-Signature": f"t={t},v1={hex_mac(secret, t.encode() + b'.' + body)},v0=abc"}


def shopify_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": b64_mac(secret, body)}


def zendesk_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    ts = iso(at)
    return {
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "X-Zendesk-Webhook-Signature": b64_mac(secret, ts.encode() + body),
    }


def asana_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    return {"X-Hook-Signature": hex_mac(secret, body)}


def linear_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    return {"Linear-Signature": hex_mac(secret, body)}


def jira_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    claims = {"iss": "jira", "iat": int(at), "exp": int(at) + 180}
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret))
    return {"Authorization": f"Bearer {token}"}


def basic_headers(body: bytes, secret: str, at: float) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"pipedrive:{secret}".encode()).decode()}


def linear_body(at: float) -> bytes:
    return json.dumps(
        {"type": "Issue", "action": "create", "webhookTimestamp": int(at * 1000)}
    ).encode()


Signer = Callable[[bytes, str, float], dict[str, str]]
SIGNERS: dict[str, Signer] = {
    "slack": slack_headers,
    "hubspot_v3": hubspot_headers,
    "github": github_headers,
    "stripe": stripe_headers,
    "shopify": shopify_headers,
    "zendesk": zendesk_headers,
    "asana": asana_headers,
    "linear": linear_headers,
    "atlassian_jwt": jira_headers,
    "basic_auth": basic_headers,
}
#: Schemes with a timestamp, and how far off it may be, in seconds.
WINDOWS = {
    "slack": 300,
    "hubspot_v3": 300,
    "stripe": 300,
    "zendesk": 300,
    "linear": 60,
    "atlassian_jwt": 180 + 60,  # the JWT's exp, plus the leeway
}


def delivery(scheme: str, at: float = NOW, secret: str = SECRET, now: float = NOW) -> Delivery:
    body = linear_body(at) if scheme == "linear" else BODY
    return Delivery("POST", URL, SIGNERS[scheme](body, secret, at), body, now)


def check(scheme: str, d: Delivery, secrets: list[str] | None = None) -> bool:
    return verify(WebhookSignature(scheme=scheme), secrets or [SECRET], d)  # type: ignore[arg-type]


def test_every_scheme_has_a_signer_here() -> None:
    assert set(SCHEMES) == {*SIGNERS, "hmac_hex"}


@pytest.mark.parametrize("scheme", SIGNERS)
def test_good_signature_is_accepted(scheme: str) -> None:
    assert check(scheme, delivery(scheme))
    # Header names are case-insensitive (RFC 9110 §5.1).
    d = delivery(scheme)
    lowered = Delivery(d.method, d.url, {k.lower(): v for k, v in d.headers.items()}, d.body, NOW)
    assert check(scheme, lowered)
    # During a rotation (or with several hooks) any configured secret may have signed it.
    assert check(scheme, d, [OTHER, SECRET])


@pytest.mark.parametrize("scheme", SIGNERS)
def test_other_secret_is_refused(scheme: str) -> None:
    assert not check(scheme, delivery(scheme, secret=OTHER))
    assert not check(scheme, delivery(scheme), [""])


@pytest.mark.parametrize("scheme", SIGNERS)
def test_missing_signature_is_refused(scheme: str) -> None:
    d = delivery(scheme)
    assert not check(scheme, Delivery("POST", URL, {}, d.body, NOW))
    for name in d.headers:  # each header on its own missing
        rest = {k: v for k, v in d.headers.items() if k != name}
        assert not check(scheme, Delivery("POST", URL, rest, d.body, NOW)), name
        blank = {**d.headers, name: ""}
        assert not check(scheme, Delivery("POST", URL, blank, d.body, NOW)), name


@pytest.mark.parametrize("scheme", SIGNERS)
def test_tampered_body_is_refused(scheme: str) -> None:
    d = delivery(scheme)
    tampered = d.body.replace(b"T0001", b"T0002").replace(b"Issue", b"Issuf")
    if scheme == "atlassian_jwt":
        # The JWT is not bound to the body (Atlassian documents none): only the bearer proves
        # the sender. A body signed with another secret is what cannot pass.
        assert check(scheme, Delivery("POST", URL, d.headers, tampered, NOW))
        return
    if scheme == "basic_auth":
        assert check(scheme, Delivery("POST", URL, d.headers, tampered, NOW))  # no body MAC
        return
    assert not check(scheme, Delivery("POST", URL, d.headers, tampered, NOW))


@pytest.mark.parametrize("scheme", WINDOWS)
def test_replayed_timestamp_is_refused(scheme: str) -> None:
    window = WINDOWS[scheme]
    assert check(scheme, delivery(scheme, at=NOW - window + 5))
    assert not check(scheme, delivery(scheme, at=NOW - window - 5))
    if scheme != "atlassian_jwt":  # a JWT issued later than now is only refused through iat/nbf
        assert not check(scheme, delivery(scheme, at=NOW + window + 5))


@pytest.mark.parametrize("scheme", ["slack", "hubspot_v3", "stripe", "zendesk"])
def test_timestamp_is_covered_by_the_signature(scheme: str) -> None:
    """A captured delivery with its timestamp header moved to now no longer verifies."""
    old = delivery(scheme, at=NOW - 3600)
    headers = dict(old.headers)
    fresh = delivery(scheme).headers
    for name in headers:
        if "timestamp" in name.lower():
            headers[name] = fresh[name]
    if scheme == "stripe":
        headers["Stripe-Signature"] = headers["Stripe-Signature"].replace(
            f"t={int(NOW - 3600)}", f"t={int(NOW)}"
        )
    assert not check(scheme, Delivery("POST", URL, headers, old.body, NOW))


def test_tolerance_overrides_the_window() -> None:
    sig = WebhookSignature(scheme="slack", tolerance=10)
    assert verify(sig, [SECRET], delivery("slack", at=NOW - 9))
    assert not verify(sig, [SECRET], delivery("slack", at=NOW - 11))


@pytest.mark.parametrize(
    ("scheme", "headers"),
    [
        ("slack", {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}),
        ("slack", {"X-Slack-Request-Timestamp": str(int(NOW)), "X-Slack-Signature": "v1=00"}),
        ("hubspot_v3", {"X-HubSpot-Request-Timestamp": "1e12", "X-HubSpot-Signature-v3": "AA=="}),
        (
            "hubspot_v3",
            {
                "X-HubSpot-Request-Timestamp": str(int(NOW * 1000)),
                "X-HubSpot-Signature-v3": "not base64!",
            },
        ),
        ("github", {"X-Hub-Signature-256": "sha1=" + hex_mac(SECRET, BODY)}),
        ("stripe", {"Stripe-Signature": f"t={int(NOW)},v0={hex_mac(SECRET, BODY)}"}),
        ("stripe", {"Stripe-Signature": f"v1={hex_mac(SECRET, BODY)}"}),
        ("shopify", {"X-Shopify-Hmac-Sha256": hex_mac(SECRET, BODY)}),  # hex, not base64
        (
            "zendesk",
            {
                "X-Zendesk-Webhook-Signature-Timestamp": "yesterday",
                "X-Zendesk-Webhook-Signature": "AA==",
            },
        ),
        (
            "zendesk",
            {
                "X-Zendesk-Webhook-Signature-Timestamp": "2026-01-01T00:00:00",
                "X-Zendesk-Webhook-Signature": "AA==",
            },
        ),
        ("asana", {"X-Hook-Signature": "é" * 64}),
        ("atlassian_jwt", {"Authorization": "Basic abc"}),
        ("atlassian_jwt", {"Authorization": "Bearer not.a.jwt"}),
        ("basic_auth", {"Authorization": "Bearer " + SECRET}),
        ("basic_auth", {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}),
        (
            "basic_auth",
            {"Authorization": "Basic " + base64.b64encode(f":{SECRET}".encode()).decode()},
        ),
        ("basic_auth", {"Authorization": "Basic ???"}),
    ],
)
def test_malformed_headers_are_refused(scheme: str, headers: dict[str, str]) -> None:
    assert not check(scheme, Delivery("POST", URL, headers, BODY, NOW))


def test_stripe_accepts_any_v1_and_refuses_v0_only() -> None:
    t = str(int(NOW))
    good = hex_mac(SECRET, t.encode() + b"." + BODY)
    header = f"t={t},v1={hex_mac(OTHER, t.encode() + b'.' + BODY)},v1={good}"
    assert check("stripe", Delivery("POST", URL, {"Stripe-Signature": header}, BODY, NOW))


def test_hubspot_signs_method_and_decoded_uri() -> None:
    query_url = URL + "?a=b%3Ac"
    ts = str(int(NOW * 1000))
    message = ("POST" + hubspot_uri(query_url)).encode() + BODY + ts.encode()
    headers = {
        "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature-v3": b64_mac(SECRET, message),
    }
    assert hubspot_uri(query_url).endswith("?a=b:c")
    assert check("hubspot_v3", Delivery("POST", query_url, headers, BODY, NOW))
    # Another URL (a forwarded copy aimed elsewhere) or method does not verify.
    assert not check("hubspot_v3", Delivery("POST", query_url + "x", headers, BODY, NOW))
    assert not check("hubspot_v3", Delivery("PUT", query_url, headers, BODY, NOW))


def test_jira_jwt_with_another_algorithm_is_refused() -> None:
    key = OctKey.import_key(SECRET)
    claims: dict[str, Any] = {"iss": "jira", "exp": int(NOW) + 60}
    token = jwt.encode({"alg": "HS512"}, claims, key, algorithms=["HS512"])
    headers = {"Authorization": f"Bearer {token}"}
    assert not check("atlassian_jwt", Delivery("POST", URL, headers, BODY, NOW))
    unsigned = jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])
    headers = {"Authorization": f"Bearer {unsigned}"}
    assert not check("atlassian_jwt", Delivery("POST", URL, headers, BODY, NOW))


def test_linear_without_webhook_timestamp_is_refused() -> None:
    body = b'{"type":"Issue","action":"create"}'
    assert not check("linear", Delivery("POST", URL, linear_headers(body, SECRET, NOW), body, NOW))
    body = b'{"type":"Issue","webhookTimestamp":"1790000000000"}'
    assert not check("linear", Delivery("POST", URL, linear_headers(body, SECRET, NOW), body, NOW))


def test_no_secret_configured_refuses_everything() -> None:
    for scheme in SIGNERS:
        if scheme != "atlassian_jwt":  # joserfc will not even sign with an empty key
            # An HMAC keyed with "" is computable by anyone: never accepted.
            assert not check(scheme, delivery(scheme, secret=""), [""])
        assert not verify(WebhookSignature(scheme=scheme), [], delivery(scheme))  # type: ignore[arg-type]


def test_compares_are_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scheme decides through hmac.compare_digest (a plain == would leak timing)."""
    import portal.webhook_schemes as schemes

    calls: list[str] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append("x")
        return real(a, b)

    monkeypatch.setattr(schemes.hmac, "compare_digest", spy)
    for scheme in SIGNERS:
        if scheme == "atlassian_jwt":
            continue  # joserfc verifies the HS256 MAC itself (hmac.compare_digest inside)
        calls.clear()
        assert check(scheme, delivery(scheme))
        assert calls, scheme


# --------------------------------------------------------------------------- catalog rules


def _app_file(tmp_path: Any, webhooks: dict[str, Any], fields: bool = False) -> Any:
    import yaml

    from portal.catalog import load_catalog

    data: dict[str, Any] = {
        "slug": "acme",
        "title": "Acme",
        "description": "The acme test app.",
        "categories": ["Testing"],
        "docs_url": "https://docs.example.com/acme",
        "auth": {"type": "api_key", "placement": {"in": "header", "name": "X-Key"}},
        "api": {"base_url": "https://{shop}.example.com" if fields else "https://api.example.com"},
        "webhooks": webhooks,
    }
    if fields:
        data["account_fields"] = [{"name": "shop", "label": "Shop", "format": "dns_label"}]
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(data), "utf-8")
    return load_catalog([tmp_path], environ={}).get("acme")


def test_a_provider_scheme_needs_no_header(tmp_path: Any) -> None:
    acme = _app_file(
        tmp_path,
        {
            "signature": {"scheme": "shopify"},
            "account": {
                "header": "X-Shopify-Shop-Domain",
                "match": "account_field",
                "field": "shop",
                "suffix": ".myshopify.com",
            },
            "topic_header": "X-Shopify-Topic",
            "triggers": ["orders/create"],
        },
        fields=True,
    )
    assert acme.webhooks.signature == WebhookSignature(scheme="shopify")
    assert acme.webhooks.account.field == "shop" and acme.webhooks.topic_path == ""


@pytest.mark.parametrize(
    ("webhooks", "message"),
    [
        # hmac_hex (the default) still needs its header and algorithm.
        (
            {
                "signature": {"scheme": "hmac_hex"},
                "account": {"payload_path": "a", "match": "external_id"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "'header'",
        ),
        (
            {
                "signature": {"scheme": "md5"},
                "account": {"payload_path": "a", "match": "external_id"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "md5",
        ),
        # Neither a topic path nor a topic header.
        (
            {
                "signature": {"scheme": "github"},
                "account": {"payload_path": "a", "match": "external_id"},
                "triggers": ["x"],
            },
            "'topic_path'",
        ),
        # No account source.
        (
            {
                "signature": {"scheme": "github"},
                "account": {"match": "external_id"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "'payload_path'",
        ),
        # account_field without its field, or with a field the app does not have.
        (
            {
                "signature": {"scheme": "github"},
                "account": {"header": "X-A", "match": "account_field"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "'field'",
        ),
        (
            {
                "signature": {"scheme": "github"},
                "account": {"header": "X-A", "match": "account_field", "field": "shop"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "not an account field",
        ),
        # A per-account secret needs a per-account URL to learn it for.
        (
            {
                "signature": {"scheme": "asana", "secret": "account"},
                "account": {"payload_path": "a", "match": "external_id"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "needs webhooks.account.query",
        ),
        (
            {
                "signature": {"scheme": "slack", "tolerance": 0},
                "account": {"payload_path": "a", "match": "external_id"},
                "topic_path": "t",
                "triggers": ["x"],
            },
            "tolerance",
        ),
    ],
)
def test_invalid_scheme_blocks_are_refused(
    tmp_path: Any, webhooks: dict[str, Any], message: str
) -> None:
    from portal.errors import CatalogError

    with pytest.raises(CatalogError) as info:
        _app_file(tmp_path, webhooks)
    assert message in str(info.value) and "acme.yaml" in str(info.value)
