"""PKCE on every OAuth 2.0 app, authorization-code injection, and the OpenID Connect nonce.

SECURITY.md "Outside attacks": PKCE S256 on every OAuth 2.0 app unless its YAML cites the
provider's document that rejects it; authorization-code injection (the attacker's own state +
the victim's code, RFC 9700 §4.5) is refused; a nonce mismatch is a 400 page with the attempt
failed, never a 500.

The injection tests run against a sandbox provider of their own (real HTTP on loopback) whose
PKCE policy is switched to ``optional`` (``/_sandbox/faults``), as most real providers behave:
the provider then binds a code to nothing but the client, so only what the portal sends (a PKCE
challenge, an OpenID Connect nonce) can refuse an injected code. The catalog entry under test
takes its ``pkce`` setting and its ``openid`` scope from a shipped app, so each test exercises
that app's settings as shipped.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import yaml
from conftest import Browser
from flask import Flask
from sqlalchemy import func, select

from portal import user_hash
from portal.catalog import SHIPPED_DIR, App, load_catalog
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.oauth import _oauth_placeholders
from portal.sandbox.testing import RunningSandbox, start_sandbox
from portal.store import ConnectAttempt, ConnectedAccount

SLUG = "sandbox-injection"
CLIENT_ID, CLIENT_SECRET = "injection-client", "injection-secret"
README = Path(__file__).resolve().parents[1] / "README.md"
#: Apps without PKCE (their provider rejects it, documented on their `pkce_unsupported_source`)
#: and without the openid scope: nothing refuses an injected code there. The README's security
#: notes name each of them.
EXPOSED = {"slack"}

pytestmark = pytest.mark.security("PKCE S256 on every OAuth 2.0 app")


# --------------------------------------------------------------------------- the whole catalog


def _openid(app: App) -> bool:
    """True when ``app``'s authorization request asks for the ``openid`` scope."""
    assert app.oauth2 is not None
    return "openid" in " ".join(app.oauth2.scopes).split()


def _sample(app: App) -> App:
    """``app`` resolved with valid sample account-field values when its OAuth URLs have
    placeholders (``{subdomain}``); else ``app`` itself."""
    if not _oauth_placeholders(app):
        return app
    samples = {
        "dns_label": "acme",
        "hostname": "acme.example.com",
        "digits": "123",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    values = {
        f.name: (f.enum[0] if f.format == "enum" else samples[f.format]) for f in app.account_fields
    }
    return app.resolve(values)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse, before any connection, a name lookup of a host that is not loopback: this test
    builds authorize URLs of real providers and must never reach one."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host) not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"outbound lookup of {host!r} from a test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def test_every_oauth2_app_sends_a_s256_challenge_unless_its_provider_documents_a_refusal(
    make_app: Any, loopback_only: None
) -> None:
    """Every shipped authorization-code app's authorize URL carries ``code_challenge`` +
    ``code_challenge_method=S256`` (RFC 7636 §4.3), and ``nonce`` when it asks for ``openid``;
    an app without PKCE names the provider's document (an https URL) that refuses it. Nothing
    reaches a real provider (``loopback_only``): the authorize URL is built from the catalog."""
    shipped = load_catalog()
    oauth_apps = [a for a in shipped if a.oauth2 is not None]
    assert len(oauth_apps) >= 90
    settings = {
        a.slug: {
            "client_id": f"id-{a.slug}",
            "client_secret": "secret",
            "redirect_uri_value": "Host-RuName",
            "base_url": "https://provider.example",
        }
        for a in oauth_apps
    }
    app: Flask = make_app(PORTAL_APPS=settings)
    portal = app.extensions["portal"]
    without_pkce = {}
    for definition in portal.catalog:
        if definition.oauth2 is None:
            continue
        resolved = _sample(definition)
        oauth2 = definition.oauth2
        with app.test_request_context():
            response = portal.oauth.authorize_redirect(resolved, "https://portal.example/cb", "st")
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        if oauth2.pkce:
            assert query.get("code_challenge_method") == ["S256"], definition.slug
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"][0]), definition.slug
        else:
            assert "code_challenge" not in query, definition.slug
            source = getattr(oauth2, "pkce_unsupported_source", None) or ""
            assert re.fullmatch(r"https://\S+", source), definition.slug
            without_pkce[definition.slug] = _openid(definition)
        if _openid(definition):
            assert len(query["nonce"][0]) >= 22, definition.slug
    assert {slug for slug, has_openid in without_pkce.items() if not has_openid} == EXPOSED
    # The exposed apps are named in the README's security notes.
    readme = README.read_text("utf-8")
    notes = readme[readme.index("PKCE S256 on every OAuth 2.0 app") :][:3000]
    for slug in EXPOSED:
        assert f"`{slug}`" in notes


def test_pkce_false_without_a_cited_source_is_refused(tmp_path: Path) -> None:
    """The schema (and so ``flask portal apps validate`` and start-up) refuses ``pkce: false``
    without ``pkce_unsupported_source``, a source that is not an https URL, and a source on an
    app that sends PKCE anyway."""
    from portal.errors import CatalogError

    base = yaml.safe_load((SHIPPED_DIR / "hubspot.yaml").read_text("utf-8"))
    cases = {
        "missing": {"pkce": False},
        "not-https": {"pkce": False, "pkce_unsupported_source": "http://example.com/doc"},
        "with-pkce": {"pkce": True, "pkce_unsupported_source": "https://example.com/doc"},
    }
    for name, auth in cases.items():
        directory = tmp_path / name
        directory.mkdir()
        data = {**base, "auth": {**base["auth"], **auth}}
        (directory / "hubspot.yaml").write_text(yaml.safe_dump(data), "utf-8")
        with pytest.raises(CatalogError) as info:
            load_catalog([directory])
        assert "hubspot.yaml: auth" in str(info.value), name
    fine = tmp_path / "fine"
    fine.mkdir()
    data = {
        **base,
        "auth": {**base["auth"], "pkce": False, "pkce_unsupported_source": "https://x.example/doc"},
    }
    (fine / "hubspot.yaml").write_text(yaml.safe_dump(data), "utf-8")
    assert load_catalog([fine]).get("hubspot").oauth2.pkce is False  # type: ignore[union-attr]


# --------------------------------------------------------------------------- injection


@pytest.fixture(scope="module")
def provider(stack: DemoStack) -> Iterator[RunningSandbox]:
    """A sandbox of these tests' own, its client registered for the test app's callback."""
    running = start_sandbox(
        {
            "SANDBOX_CLIENTS": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{stack.portal.url}/portal/oauth/{SLUG}/callback"],
                    "scope": "openid profile contacts.read contacts.write",
                }
            ]
        }
    )
    yield running
    running.stop()


@pytest.fixture
def optional_pkce(provider: RunningSandbox) -> Iterator[RunningSandbox]:
    """The provider with PKCE optional for confidential clients (most real providers)."""
    hook = f"{provider.url}/_sandbox/faults"
    assert requests.post(hook, json={"pkce": "optional"}, timeout=5).json()["pkce"] == "optional"
    yield provider
    requests.post(f"{provider.url}/_sandbox/reset", timeout=5).raise_for_status()


def _portal_like(make_app: Any, tmp_path: Path, provider: RunningSandbox, like: str) -> Flask:
    """A portal whose ``sandbox-injection`` app is the shipped sandbox app pointed at
    ``provider``, with the shipped ``like`` app's PKCE setting and ``openid`` scope."""
    shipped = load_catalog().get(like)
    assert shipped is not None and shipped.oauth2 is not None
    data = yaml.safe_load((SHIPPED_DIR / "sandbox.yaml").read_text("utf-8"))
    data.update(slug=SLUG, title=f"Provider like {shipped.title}")
    data.pop("functions", None)
    auth = data["auth"]
    auth["pkce"] = shipped.oauth2.pkce
    source = getattr(shipped.oauth2, "pkce_unsupported_source", None)
    if source:
        auth["pkce_unsupported_source"] = source
    if _openid(shipped):
        auth["scopes"] = ["openid", *auth["scopes"]]
        auth["jwks_uri"] = "{base_url}/oauth/jwks"
    (tmp_path / "apps").mkdir(exist_ok=True)
    (tmp_path / "apps" / f"{SLUG}.yaml").write_text(yaml.safe_dump(data), "utf-8")
    return make_app(  # type: ignore[no-any-return]
        PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")],
        PORTAL_APPS={
            SLUG: {"base_url": provider.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        },
    )


class Popup:
    """One end user's popup: a test client of the portal (its own cookies) and a session."""

    def __init__(self, app: Flask, stack: DemoStack, user: str) -> None:
        self.client = app.test_client()
        self.user = user
        response = self.client.post(
            "/portal/api/v1/sessions",
            json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
            headers={"Origin": stack.host.url},
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        self.headers = {"Authorization": f"Bearer {response.get_json()['token']}"}

    def start(self) -> tuple[str, str]:
        """Open the connect URL: (attempt id, the provider's authorization URL)."""
        ticket = self.client.post(
            "/portal/api/v1/connect-tickets", json={"app": SLUG}, headers=self.headers
        ).get_json()
        parts = urlsplit(ticket["connect_url"])
        started = self.client.get(f"{parts.path}?{parts.query}")
        assert started.status_code == 302, started.get_data(as_text=True)[:500]
        return ticket["attempt_id"], started.headers["Location"]

    def callback(self, params: dict[str, str]) -> Any:
        return self.client.get(f"/portal/oauth/{SLUG}/callback?{urlencode(params)}")

    def attempt(self, attempt_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/portal/api/v1/connect-attempts/{attempt_id}", headers=self.headers
        )
        return response.get_json()  # type: ignore[no-any-return]


def _accounts(app: Flask, user: str) -> int:
    with app.extensions["portal"].store.session() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(ConnectedAccount)
                .where(ConnectedAccount.user_id == user)
            )
        )


def _result(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>', page, re.S
    )
    assert match, "no connect result on the page"
    payload: dict[str, Any] = json.loads(match.group(1))["message"]["payload"]
    return payload


def _inject(app: Flask, stack: DemoStack) -> tuple[Popup, str, Any]:
    """The victim approves at the provider, but their code never reaches the portal from their
    browser: the attacker, who started an attempt of their own (their state, their session),
    delivers it. Returns (attacker's popup, attacker's attempt id, callback response)."""
    victim = Popup(app, stack, "victim-user")
    _, victim_authorize = victim.start()
    victim_code = Browser().consent(victim_authorize).params["code"]
    attacker = Popup(app, stack, "attacker-user")
    attempt_id, attacker_authorize = attacker.start()
    attacker_state = parse_qs(urlsplit(attacker_authorize).query)["state"][0]
    issuer = app.extensions["portal"].catalog.get(SLUG).issuer
    response = attacker.callback({"code": victim_code, "state": attacker_state, "iss": issuer})
    return attacker, attempt_id, response


@pytest.mark.parametrize(
    ("like", "refusal", "status"),
    [
        ("hubspot", "invalid_grant", 502),  # PKCE: the provider refuses the attacker's verifier
        ("gmail", "invalid_grant", 502),  # PKCE (and a nonce)
        ("linkedin", "invalid_nonce", 400),  # no PKCE (documented); the nonce refuses it
    ],
)
def test_authorization_code_injection_is_refused(
    make_app: Any,
    tmp_path: Path,
    stack: DemoStack,
    optional_pkce: RunningSandbox,
    like: str,
    refusal: str,
    status: int,
) -> None:
    app = _portal_like(make_app, tmp_path, optional_pkce, like)
    attacker, attempt_id, response = _inject(app, stack)

    assert response.status_code == status, response.get_data(as_text=True)[:800]
    result = _result(response.get_data(as_text=True))
    assert result["status"] == "failed" and result["error"]["type"] == refusal
    assert _accounts(app, "attacker-user") == 0
    assert _accounts(app, "victim-user") == 0
    state = attacker.attempt(attempt_id)
    assert state["status"] == "failed" and state["error"]["type"] == refusal


def test_control_injection_succeeds_on_an_app_with_neither_pkce_nor_openid(
    make_app: Any, tmp_path: Path, stack: DemoStack, optional_pkce: RunningSandbox
) -> None:
    """The harness can see an injection succeed: with Slack's settings (PKCE refused by the
    provider, no openid scope) the victim's account is bound to the attacker. This is the
    exposure the README's security notes name."""
    app = _portal_like(make_app, tmp_path, optional_pkce, "slack")
    _, _, response = _inject(app, stack)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    assert _accounts(app, "attacker-user") == 1


# --------------------------------------------------------------------------- nonce mismatch


def test_id_token_nonce_mismatch_is_a_400_page_and_a_failed_attempt(
    make_app: Any, tmp_path: Path, stack: DemoStack, optional_pkce: RunningSandbox
) -> None:
    """The provider's id_token carries another nonce than the attempt sent (OpenID Connect
    Core §3.1.3.7): a readable 400 page, the attempt ``failed`` with ``invalid_nonce``, the
    ``error`` result posted to the host, no account — never a 500 or an attempt left
    ``exchanging``."""
    provider = optional_pkce
    app = _portal_like(make_app, tmp_path, provider, "gmail")
    popup = Popup(app, stack, "nonce-user")
    attempt_id, authorize = popup.start()
    assert parse_qs(urlsplit(authorize).query)["nonce"][0]
    consent = Browser().consent(authorize)
    hook = f"{provider.url}/_sandbox/faults"
    requests.post(hook, json={"id_token": "wrong_nonce"}, timeout=5).raise_for_status()
    try:
        response = popup.callback(consent.params)
    finally:
        requests.post(hook, json={"id_token": None}, timeout=5).raise_for_status()

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert "Couldn't connect to Provider like Gmail" in page
    assert "was not meant for this connection, so it was not used" in page
    result = _result(page)
    assert result["status"] == "failed"
    assert result["error"]["type"] == "invalid_nonce"
    assert result["attemptId"] == attempt_id
    state = popup.attempt(attempt_id)
    assert state["status"] == "failed" and state["error"]["type"] == "invalid_nonce"
    with app.extensions["portal"].store.session() as db:
        row = db.get(ConnectAttempt, attempt_id)
        assert row is not None and row.status == "failed" and row.error_code == "invalid_nonce"
    assert _accounts(app, "nonce-user") == 0

    # The same flow with the right nonce connects (the id_token is verified, not ignored).
    again_id, again = popup.start()
    ok = popup.callback(Browser().consent(again).params)
    assert ok.status_code == 200, ok.get_data(as_text=True)[:800]
    assert popup.attempt(again_id)["status"] == "connected"
