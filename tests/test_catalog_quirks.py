"""Provider quirks the catalog expresses as data, end to end over real loopback HTTP.

``sandbox-quirks`` (portal/sandbox/variants.py, ``/quirks``) combines: a value read from the
authorization response (``auth.callback_fields``, QuickBooks' realmId), a separate refresh
endpoint (``auth.refresh_url``, Figma / Adobe Acrobat Sign), the access token in a named header
(``auth.placement``, Shopify), the host's client id in a header (``api.headers`` ``{client_id}``,
Etsy) and a value read from the identity response (``identity.fields``, Mailchimp / Docusign /
Xero) sent in a header (Xero's ``xero-tenant-id``). eBay's RuName (``custom_redirect_uri``) and
``{client_secret}`` in a header run against a recording provider.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from conftest import Api, Browser
from flask import Flask
from sqlalchemy import select
from test_auth_methods import accounts_of, credentials_of, expire_tokens, result, stat
from test_proxy import Upstream

from portal import user_hash
from portal.catalog import (
    AccountField,
    InvalidAccountField,
    load_catalog,
    validate_field_value,
)
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_CLIENT_ID, DemoStack
from portal.errors import CatalogError
from portal.sandbox.variants import QUIRKS_COMPANY, QUIRKS_REGION
from portal.store import ConnectAttempt, ConnectedAccount

# --------------------------------------------------------------------------- sandbox-quirks


def _consent(api: Api) -> tuple[Browser, Any]:
    browser = Browser()
    ticket = api.ticket("sandbox-quirks")
    started = browser.start(ticket["connect_url"])
    assert started.status_code == 302, started.text[:500]  # no form: every field is derived
    return browser, browser.consent(started.headers["Location"])


def test_quirks_connect_proxy_and_refresh(stack: DemoStack, sandbox: str, api: Api) -> None:
    browser, consent = _consent(api)
    assert consent.params["companyId"] == QUIRKS_COMPANY
    response = browser.callback(consent.callback_url)
    assert result(response)["status"] == "connected", response.text[:800]
    [account] = accounts_of(stack, api.user_id)
    assert account.label == "ada@sandbox.test"
    creds = credentials_of(stack, account)
    # callback_fields (digits) and identity.fields (dns_label), stored as account fields.
    assert creds["account_fields"] == {"company": QUIRKS_COMPANY, "region": QUIRKS_REGION}

    # The token goes in X-Sandbox-Access-Token (the sandbox refuses Authorization), with the
    # host's client id and the identity-derived region as headers, under the company's path.
    contacts = api.get("/proxy/sandbox-quirks/contacts")
    assert contacts.status_code == 200, contacts.text[:500]
    assert contacts.json()["company"] == QUIRKS_COMPANY and contacts.json()["data"]
    me = api.get("/proxy/sandbox-quirks/me")
    assert me.status_code == 200 and me.json()["username"] == "ada"

    # Refresh goes to /quirks/oauth/refresh (the token endpoint refuses refresh grants).
    expire_tokens(stack)
    again = api.get("/proxy/sandbox-quirks/contacts")
    assert again.status_code == 200, again.text[:500]
    assert stat(stack, "refresh_token") == 1
    renewed = credentials_of(stack, accounts_of(stack, api.user_id)[0])
    assert renewed["access_token"] != creds["access_token"]
    assert renewed["account_fields"] == creds["account_fields"]


def test_quirks_sandbox_refuses_what_the_catalog_avoids(stack: DemoStack, sandbox: str) -> None:
    """The variant is strict, so the test above proves each quirk is honoured."""
    base = stack.sandbox.url
    token = requests.post(
        f"{base}/quirks/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(DEMO_CLIENT_ID, "demo-client-secret"),
        timeout=5,
    )
    assert token.status_code == 400 and token.json()["error"] == "unsupported_grant_type"
    refresh = requests.post(
        f"{base}/quirks/oauth/refresh",
        data={"grant_type": "authorization_code", "code": "x"},
        auth=(DEMO_CLIENT_ID, "demo-client-secret"),
        timeout=5,
    )
    assert refresh.status_code == 400
    bearer = requests.get(f"{base}/quirks/me", headers={"Authorization": "Bearer x"}, timeout=5)
    assert bearer.status_code == 401


@pytest.mark.parametrize("value", ["", "../x", "12a", "1" * 33, "٣٤"], ids=repr)
def test_hostile_callback_field_fails_the_attempt(
    stack: DemoStack, sandbox: str, api: Api, value: str
) -> None:
    browser, consent = _consent(api)
    url = consent.callback_url.replace(f"companyId={QUIRKS_COMPANY}", f"companyId={value}")
    assert url != consent.callback_url
    payload = result(browser.callback(url))
    assert payload["status"] == "failed", payload
    assert payload["error"]["type"] == "invalid_request", payload
    assert accounts_of(stack, api.user_id) == []
    assert stat(stack, "authorization_code") == 0  # refused before the code exchange
    with stack.portal_app.extensions["portal"].store.read() as db:
        # This user's only attempt (the stack is shared: other tests' attempts are there too,
        # in no defined order without an ORDER BY).
        [attempt] = db.scalars(
            select(ConnectAttempt).where(ConnectAttempt.user_id == api.user_id)
        ).all()
    assert attempt.status == "failed"


def test_missing_callback_field_fails_the_attempt(stack: DemoStack, sandbox: str, api: Api) -> None:
    browser, consent = _consent(api)
    url = consent.callback_url.replace(f"&companyId={QUIRKS_COMPANY}", "")
    assert url != consent.callback_url
    payload = result(browser.callback(url))
    assert payload["status"] == "failed" and payload["error"]["type"] == "invalid_request"
    assert accounts_of(stack, api.user_id) == []


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("digits", " 4620816365 ", "4620816365"),
        ("uuid", "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ],
)
def test_new_formats_accept(fmt: Any, raw: str, expected: str) -> None:
    assert validate_field_value(AccountField("f", "F", fmt), raw) == expected


@pytest.mark.parametrize(
    ("fmt", "raw"),
    [
        ("digits", "12/34"),
        ("digits", "-1"),
        ("digits", "1 2"),
        ("digits", "１２"),
        ("uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c330"),
        ("uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301/x"),
        ("uuid", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"),
    ],
)
def test_new_formats_refuse(fmt: Any, raw: str) -> None:
    with pytest.raises(InvalidAccountField):
        validate_field_value(AccountField("f", "F", fmt), raw)


def _write(catalog: Path, slug: str, **data: Any) -> None:
    catalog.mkdir(exist_ok=True)
    (catalog / f"{slug}.yaml").write_text(
        yaml.safe_dump(
            {
                "slug": slug,
                "title": slug,
                "description": "d",
                "categories": ["CRM"],
                "docs_url": "https://docs.example.com",
                **data,
            }
        )
    )


OAUTH = {
    "type": "oauth2",
    "authorize_url": "{base_url}/authorize",
    "token_url": "{base_url}/token",
    "pkce": False,
    "pkce_unsupported_source": "https://docs.example.com/no-pkce",
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"auth": {**OAUTH, "callback_fields": {"realm": "realmId"}}},
            "not an account field",
        ),
        (
            {"api": {"base_url": "{base_url}", "headers": {"X-Key": "{nope}"}}},
            "placeholder {nope}",
        ),
        (
            {
                "api": {"base_url": "{base_url}", "headers": {"X-Host": "{api_url}"}},
                "identity": {
                    "url": "{base_url}/me",
                    "external_id": "id",
                    "fields": {"api_url": "u"},
                },
            },
            "must be an account field",
        ),
        (
            {"identity": {"url": "{api_url}/me", "external_id": "id", "fields": {"api_url": "u"}}},
            "identity.url",
        ),
        (
            {"auth": {**OAUTH, "placement": {"in": "header", "name": "Cookie"}}},
            "cannot carry the token",
        ),
    ],
)
def test_quirk_definitions_are_checked(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    _write(
        tmp_path,
        "acme-bad",
        **{"auth": OAUTH, "api": {"base_url": "{base_url}/api"}, **data},
    )
    with pytest.raises(CatalogError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})


def test_placement_header_needs_a_name(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "acme-bad",
        auth={**OAUTH, "placement": {"in": "header"}},
        api={"base_url": "{base_url}/api"},
    )
    with pytest.raises(CatalogError, match="name"):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})


# --------------------------------------------------------------------------- RuName, secret


def _session(app: Flask, stack: DemoStack) -> tuple[Any, dict[str, str]]:
    client = app.test_client()
    token = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": "u-q", "hash": user_hash(DEMO_APP_SECRET, "u-q")},
        headers={"Origin": stack.host.url},
    ).json["token"]
    return client, {"Authorization": f"Bearer {token}"}


def test_custom_redirect_uri_and_client_secret_header(
    make_app: Any, stack: DemoStack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """eBay: the RuName is sent as redirect_uri in the authorization AND token requests while
    the callback stays the portal's; Etsy: ``{client_id}:{client_secret}`` reaches the API in a
    header but never a log line or an error body."""
    upstream = Upstream(
        routes={
            "/token": lambda request: Flask.response_class(
                json.dumps({"access_token": "at-1", "token_type": "Bearer", "expires_in": 60}),
                content_type="application/json",
            ),
            "/api/me": lambda request: Flask.response_class(
                json.dumps({"id": "u1"}), content_type="application/json"
            ),
            "/api/fails": lambda request: Flask.response_class(
                json.dumps({"error": "nope"}), status=500, content_type="application/json"
            ),
        }
    )
    try:
        _write(
            tmp_path,
            "acme-ru",
            auth={**OAUTH, "custom_redirect_uri": True},
            api={
                "base_url": "{base_url}/api",
                "headers": {"x-api-key": "{client_id}:{client_secret}"},
            },
            identity={"url": "/me", "external_id": "id"},
        )
        settings = {"base_url": upstream.url, "client_id": "key-str", "client_secret": "shh-9f2"}
        unset = load_catalog([tmp_path], {"acme-ru": settings}, environ={}).get("acme-ru")
        assert unset is not None and unset.missing == ("redirect_uri_value",)
        settings["redirect_uri_value"] = "Acme_Inc-AcmeApp-PRD-runame"
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-ru": settings})
        client, bearer = _session(app, stack)
        ticket = client.post(
            "/portal/api/v1/connect-tickets", json={"app": "acme-ru"}, headers=bearer
        ).json
        caplog.set_level(logging.DEBUG)
        started = client.get(
            urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
        )
        params = parse_qs(urlsplit(started.headers["Location"]).query)
        assert params["redirect_uri"] == ["Acme_Inc-AcmeApp-PRD-runame"]
        done = client.get(f"/portal/oauth/acme-ru/callback?code=c1&state={params['state'][0]}")
        assert done.status_code == 200, done.text[:500]
        [exchange] = upstream.requests_to("/token")
        assert parse_qs(exchange.body.decode())["redirect_uri"] == ["Acme_Inc-AcmeApp-PRD-runame"]
        assert upstream.requests_to("/api/me")[-1].headers["x-api-key"] == "key-str:shh-9f2"

        ok = client.get("/portal/api/v1/proxy/acme-ru/things", headers=bearer)
        assert ok.status_code == 200
        ok.close()
        seen = upstream.requests_to("/api/things")[-1].headers
        assert seen["x-api-key"] == "key-str:shh-9f2"
        assert seen["authorization"] == "Bearer at-1"
        failed = client.get("/portal/api/v1/proxy/acme-ru/fails", headers=bearer)
        assert failed.status_code == 500
        failed_text = failed.text
        failed.close()
        # (The echoed /things body is the upstream's own view of the request: not checked.)
        for body in (done.text, failed_text, started.text):
            assert "shh-9f2" not in body
        assert "shh-9f2" not in caplog.text
        with app.extensions["portal"].store.read() as db:
            assert db.scalars(select(ConnectedAccount)).one().label == "u1"
        # The proxy's own errors do not carry it either.
        gone = client.get("/portal/api/v1/proxy/acme-ru/../x", headers=bearer)
        assert "shh-9f2" not in gone.text
    finally:
        upstream.stop()


def test_header_placeholder_without_value_is_left_out(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "acme-hdr",
        account_fields=[{"name": "tenant_id", "label": "Tenant", "format": "uuid"}],
        auth=OAUTH,
        api={"base_url": "{base_url}/api", "headers": {"xero-tenant-id": "{tenant_id}", "A": "b"}},
        identity={"url": "{base_url}/c", "external_id": "0.id", "fields": {"tenant_id": "0.id"}},
    )
    catalog = load_catalog(
        [tmp_path], {"acme-hdr": {"base_url": "https://x.example", "client_id": "c"}}, environ={}
    )
    app = catalog.get("acme-hdr")
    assert app is not None and app.derived_fields == {"tenant_id"}
    assert app.headers_for() == {"A": "b"}  # never a literal "{tenant_id}"
    tenant = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert app.resolve({"tenant_id": tenant}).headers_for() == {"xero-tenant-id": tenant, "A": "b"}


def test_host_sees_the_new_settings() -> None:
    """`flask portal apps show` and the admin settings list name the RuName setting and the
    quirks, never a secret value."""
    from portal.admin import settings_for
    from portal.cli import describe_app

    catalog = load_catalog(
        app_settings={
            "ebay": {"client_id": "e", "client_secret": "s"},
            "etsy": {"client_id": "k", "client_secret": "etsy-shared-secret"},
        },
        environ={},
    )
    ebay = catalog.get("ebay")
    assert ebay is not None and ebay.missing == ("redirect_uri_value",)
    rows = {r["name"]: r for r in settings_for(ebay)}
    assert rows["redirect_uri_value"]["needed"] is True
    assert rows["redirect_uri_value"]["env"] == "PORTAL_EBAY_REDIRECT_URI_VALUE"
    assert any("redirect_uri:  NOT SET" in line for line in describe_app(ebay, "https://p/cb"))
    etsy = catalog.get("etsy")
    assert etsy is not None and etsy.usable
    text = "\n".join(describe_app(etsy, "https://p/cb"))
    assert "x-api-key: {client_id}:{client_secret}" in text
    assert "etsy-shared-secret" not in text and "etsy-shared-secret" not in repr(etsy)
    shopify = catalog.get("shopify")
    assert shopify is not None
    assert shopify.token_placement.name == "X-Shopify-Access-Token"


@pytest.mark.parametrize(("dc", "ok"), [("US6", True), ("us6.evil.example", False), ("", False)])
def test_identity_fields_on_an_api_key_app(
    make_app: Any, stack: DemoStack, tmp_path: Path, dc: str, ok: bool
) -> None:
    """identity.fields also fill account fields of form-connected apps, validated first."""
    from test_auth_methods import _form_connect

    upstream = Upstream(
        routes={
            "/meta": lambda request: Flask.response_class(
                json.dumps({"user_id": 7, "dc": dc}), content_type="application/json"
            )
        }
    )
    try:
        _write(
            tmp_path,
            "acme-dc",
            account_fields=[{"name": "dc", "label": "Data centre", "format": "dns_label"}],
            auth={"type": "api_key", "placement": {"in": "header", "name": "X-Key"}},
            api={"base_url": "{base_url}/dc/{dc}/api", "headers": {"X-Dc": "{dc}"}},
            identity={"url": "{base_url}/meta", "external_id": "user_id", "fields": {"dc": "dc"}},
        )
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path)],
            PORTAL_APPS={"acme-dc": {"base_url": upstream.url}},
        )
        client, bearer, response = _form_connect(app, stack, "acme-dc", {"api_key": "k-1"})
        assert "dc" not in parse_form_fields(response.text)  # never asked
        with app.extensions["portal"].store.read() as db:
            accounts = db.scalars(select(ConnectedAccount)).all()
        if not ok:
            assert response.status_code == 400 and accounts == []
            return
        assert response.status_code == 200, response.text[:500]
        [account] = accounts
        state = app.extensions["portal"]
        assert state.sealer.open(account.id, account.credentials)["account_fields"] == {"dc": "us6"}
        proxied = client.get("/portal/api/v1/proxy/acme-dc/lists", headers=bearer)
        assert proxied.status_code == 200
        proxied.close()
        seen = upstream.requests_to("/dc/us6/api/lists")[-1]
        assert seen.headers["x-dc"] == "us6" and seen.headers["x-key"] == "k-1"
    finally:
        upstream.stop()


def parse_form_fields(html: str) -> set[str]:
    """Names of the inputs of a page (empty when it is not a form)."""
    import re

    return set(re.findall(r'<(?:input|select)[^>]*name="([^"]+)"', html))
