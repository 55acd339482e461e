"""Every catalog auth method and provider quirk, end to end over real loopback HTTP.

The live stack (``stack``) enables every sandbox app (portal/demo.py): client credentials
(``sandbox-m2m``), account fields on an OAuth app (``sandbox-regional``) and on an API-key app
(``sandbox-tenant-keys``), a Slack-style nested token response with a Salesforce-style
``instance_url`` (``sandbox-nested``), a token without ``expires_in`` (``sandbox-forever``) and a
client authenticating with ``client_secret_post`` (``sandbox-post``). Static headers, key
prefixes, ``basic_username`` and POST identity lookups run against a recording upstream.
Finally every OAuth 2.0 app of the shipped catalog has its authorization URL checked.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import yaml
from conftest import Api, Browser, continue_url, parse_form, sandbox_stats
from flask import Flask
from sqlalchemy import select
from test_proxy import Upstream

from portal import user_hash
from portal.catalog import (
    SHIPPED_DIR,
    AccountField,
    Catalog,
    InvalidAccountField,
    load_catalog,
    redirect_uri,
    validate_field_value,
    validate_token_field,
)
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.oauth import OAuthClients
from portal.sandbox.variants import DECOY_TOKEN
from portal.store import ConnectAttempt, ConnectedAccount

# --------------------------------------------------------------------------- helpers


def accounts_of(stack: DemoStack, user_id: str) -> list[ConnectedAccount]:
    with stack.portal_app.extensions["portal"].store.read() as db:
        query = select(ConnectedAccount).where(ConnectedAccount.user_id == user_id)
        return list(db.scalars(query))


def credentials_of(stack: DemoStack, account: ConnectedAccount) -> dict[str, Any]:
    sealer = stack.portal_app.extensions["portal"].sealer
    return sealer.open(account.id, account.credentials)  # type: ignore[no-any-return]


def set_credentials(stack: DemoStack, account_id: str, **changes: Any) -> None:
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account = db.get(ConnectedAccount, account_id)
        data = {**state.sealer.open(account.id, account.credentials), **changes}
        account.credentials = state.sealer.seal(account.id, data)


def result(response: requests.Response) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="portal-connect-result">(.*?)</script>',
        response.text,
        re.S,
    )
    assert match, response.text[:800]
    return json.loads(match.group(1))["message"]["payload"]  # type: ignore[no-any-return]


def stat(stack: DemoStack, grant: str) -> int:
    return int(sandbox_stats(stack)["token_requests"][grant])


def submit_form(
    browser: Browser, url: str, values: dict[str, str], *, follow: bool = False
) -> requests.Response:
    """Open the connect form at ``url``, fill ``values`` in, submit it."""
    page = browser.http.get(url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    form = parse_form(page.text)
    fields = {**form["fields"], **values}
    return browser.http.post(
        urljoin(url, form["action"]), data=fields, allow_redirects=follow, timeout=30
    )


def provider_url(started: requests.Response) -> str:
    """Where the OAuth account-field form's answer sends the popup (see ``continue_url``)."""
    assert "Location" not in started.headers
    return continue_url(started.status_code, started.text)


def oauth_connect(api: Api, app: str, fields: dict[str, str] | None = None) -> requests.Response:
    """The whole OAuth connect flow (with the account-field step when ``fields``)."""
    browser = Browser()
    ticket = api.ticket(app)
    if fields is None:
        started = browser.start(ticket["connect_url"])
        assert started.status_code == 302, started.text[:500]
        location = started.headers["Location"]
    else:
        location = provider_url(submit_form(browser, ticket["connect_url"], fields))
    consent = browser.consent(location)
    return browser.callback(consent.callback_url)


def expire_tokens(stack: DemoStack) -> None:
    requests.post(f"{stack.sandbox.url}/_sandbox/expire-access-tokens", timeout=5)


# --------------------------------------------------------------------------- client credentials


def connect_m2m(api: Api, secret: str = "m2m-secret-ada") -> requests.Response:
    ticket = api.ticket("sandbox-m2m")
    return submit_form(
        Browser(), ticket["connect_url"], {"client_id": "m2m_ada", "client_secret": secret}
    )


def test_client_credentials_connect_proxy_and_regrant(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    response = connect_m2m(api)
    assert response.status_code == 200, response.text[:500]
    payload = result(response)
    assert payload["status"] == "connected"
    [account] = accounts_of(stack, api.user_id)
    assert account.label == "ada@sandbox.test"
    creds = credentials_of(stack, account)
    assert creds["type"] == "oauth2_client_credentials"
    assert creds["client_id"] == "m2m_ada" and creds["client_secret"] == "m2m-secret-ada"
    assert "refresh_token" not in creds and creds["expires_at"] > time.time()
    assert "m2m-secret-ada" not in response.text
    assert stat(stack, "client_credentials") == 1

    me = api.get("/proxy/sandbox-m2m/me")
    assert me.status_code == 200 and me.json()["username"] == "ada"
    assert stat(stack, "client_credentials") == 1  # fresh token: no grant

    # The provider stops accepting the token: one 401, one new grant, one retry.
    expire_tokens(stack)
    before = sandbox_stats(stack)["api_requests"]
    me = api.get("/proxy/sandbox-m2m/me")
    assert me.status_code == 200
    assert stat(stack, "client_credentials") == 2
    assert sandbox_stats(stack)["api_requests"] - before == 2

    # A token known to be stale is replaced before use: one grant, one API request.
    set_credentials(stack, account.id, expires_at=int(time.time()) - 5)
    before = sandbox_stats(stack)["api_requests"]
    assert api.get("/proxy/sandbox-m2m/contacts").status_code == 200
    assert stat(stack, "client_credentials") == 3
    assert sandbox_stats(stack)["api_requests"] - before == 1


def test_client_credentials_bad_secret_rerenders_form_and_stores_nothing(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    response = connect_m2m(api, secret="wrong-secret")
    assert response.status_code == 400
    assert "did not accept this client ID and secret" in response.text
    assert 'name="csrf_token"' in response.text  # the form again
    assert "wrong-secret" not in response.text
    assert accounts_of(stack, api.user_id) == []
    assert stat(stack, "client_credentials") == 1


def test_client_credentials_form_needs_csrf_token(stack: DemoStack, sandbox: str, api: Api) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-m2m")
    page = browser.http.get(ticket["connect_url"], timeout=10)
    form = parse_form(page.text)
    fields = {k: v for k, v in form["fields"].items() if k != "csrf_token"}
    fields.update(client_id="m2m_ada", client_secret="m2m-secret-ada")
    response = browser.http.post(urljoin(ticket["connect_url"], form["action"]), data=fields)
    assert response.status_code == 400
    assert stat(stack, "client_credentials") == 0
    assert accounts_of(stack, api.user_id) == []


def test_client_credentials_revoked_client_needs_reauth(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    assert connect_m2m(api).status_code == 200
    [account] = accounts_of(stack, api.user_id)
    # The end user rotated the secret at the provider: the stored one no longer works.
    set_credentials(stack, account.id, client_secret="rotated-away", expires_at=1)
    response = api.get("/proxy/sandbox-m2m/me")
    assert response.status_code == 409 and response.json()["error"] == "needs_reauth"
    [account] = accounts_of(stack, api.user_id)
    assert account.status == "needs_reauth"


# --------------------------------------------------------------------------- account fields


def test_oauth_account_fields_reach_authorize_token_and_api(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-regional")
    page = browser.http.get(ticket["connect_url"], timeout=10)
    assert page.status_code == 200
    assert ".helpdesk.example" in page.text  # the suffix is shown
    started = submit_form(
        browser, ticket["connect_url"], {"account_region": "eu", "account_workspace": " Acme "}
    )
    location = provider_url(started)
    # The CSP is not weakened for it: the page moves on by a new navigation, not a redirect.
    assert "form-action 'self';" in started.headers["Content-Security-Policy"]
    assert location.startswith(f"{stack.sandbox.url}/regions/eu/tenants/acme/oauth/authorize?")
    consent = browser.consent(location)
    response = browser.callback(consent.callback_url)
    assert result(response)["status"] == "connected", response.text[:800]
    [account] = accounts_of(stack, api.user_id)
    assert account.external_id == "acme:1"
    assert credentials_of(stack, account)["account_fields"] == {"region": "eu", "workspace": "acme"}
    me = api.get("/proxy/sandbox-regional/me")
    assert me.status_code == 200
    assert (me.json()["region"], me.json()["workspace"]) == ("eu", "acme")
    # The step cannot be replayed once the popup went to the provider.
    again = browser.http.post(
        started.request.url, data={"account_region": "us"}, allow_redirects=False
    )
    assert again.status_code == 400


def test_code_from_one_workspace_is_refused_at_another(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    """The sandbox binds codes to the tenant: proof that the callback uses the attempt's
    values (a portal exchanging at another host would be refused)."""
    browser = Browser()
    ticket = api.ticket("sandbox-regional")
    started = submit_form(
        browser, ticket["connect_url"], {"account_region": "eu", "account_workspace": "acme"}
    )
    consent = browser.consent(provider_url(started))
    code = consent.params["code"]
    wrong = requests.post(
        f"{stack.sandbox.url}/regions/eu/tenants/initech/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "x"},
        auth=("connect-portal-demo", "demo-client-secret"),
        timeout=5,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert result(browser.callback(consent.callback_url))["status"] == "connected"


def test_api_key_form_with_account_fields(stack: DemoStack, sandbox: str, api: Api) -> None:
    ticket = api.ticket("sandbox-tenant-keys")
    response = submit_form(
        Browser(),
        ticket["connect_url"],
        {"account_region": "us", "account_workspace": "globex", "api_key": "sk_demo_grace"},
    )
    assert response.status_code == 200, response.text[:800]
    [account] = accounts_of(stack, api.user_id)
    assert account.external_id == "globex:2"
    me = api.get("/proxy/sandbox-tenant-keys/me")
    assert me.status_code == 200 and me.json()["workspace"] == "globex"


HOSTILE_LABELS = [
    "evil.com/",
    "a.b",
    "127.0.0.1",
    "localhost",
    "x@y",
    "%2e",
    "%2e%2e",
    "acme/../x",
    "acme?x=1",
    "acme#x",
    "acme:443",
    "ａcme",  # fullwidth a
    "acmé",
    "a" * 64,
    "-a",
    "a-",
    "",
    " ",
    "acme\r\nX-Injected: 1",
]


@pytest.mark.parametrize("value", HOSTILE_LABELS, ids=repr)
def test_hostile_workspace_refused_on_key_form(
    stack: DemoStack, sandbox: str, api: Api, value: str
) -> None:
    before = sandbox_stats(stack)["api_requests"]
    ticket = api.ticket("sandbox-tenant-keys")
    response = submit_form(
        Browser(),
        ticket["connect_url"],
        {"account_region": "eu", "account_workspace": value, "api_key": "sk_demo_ada"},
    )
    assert response.status_code == 400
    assert accounts_of(stack, api.user_id) == []
    assert sandbox_stats(stack)["api_requests"] == before  # nothing was sent


@pytest.mark.parametrize(
    ("region", "workspace"),
    [("asia", "acme"), ("EU", "acme"), ("", "acme"), ("eu", "evil.com/"), ("eu", "x@y")],
)
def test_hostile_values_refused_before_the_oauth_redirect(
    stack: DemoStack, sandbox: str, api: Api, region: str, workspace: str
) -> None:
    ticket = api.ticket("sandbox-regional")
    response = submit_form(
        Browser(),
        ticket["connect_url"],
        {"account_region": region, "account_workspace": workspace},
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "portal-continue-link" not in response.text and "http-equiv" not in response.text
    with stack.portal_app.extensions["portal"].store.read() as db:
        attempt = db.get(ConnectAttempt, ticket["attempt_id"])
    assert attempt is not None and attempt.state_hash is None  # never sent to the provider
    assert accounts_of(stack, api.user_id) == []


LABEL = AccountField(name="subdomain", label="Subdomain", format="dns_label")
HOST = AccountField(name="host", label="Host", format="hostname")
REGION = AccountField(name="region", label="Region", format="enum", enum=("us1", "eu1"))


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (LABEL, "acme", "acme"),
        (LABEL, " ACME-2 ", "acme-2"),
        (LABEL, "a" * 63, "a" * 63),
        (HOST, "gitlab.example.com", "gitlab.example.com"),
        (HOST, "Git-Lab.Example.COM", "git-lab.example.com"),
        (HOST, "xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
        (REGION, "eu1", "eu1"),
    ],
)
def test_valid_account_field_values(spec: AccountField, raw: str, expected: str) -> None:
    assert validate_field_value(spec, raw) == expected


@pytest.mark.parametrize(
    ("spec", "raw"),
    [
        *[(LABEL, v) for v in HOSTILE_LABELS],
        (HOST, "127.0.0.1"),
        (HOST, "1.2.3.4"),
        (HOST, "0x7f.1"),
        (HOST, "[::1]"),
        (HOST, "::1"),
        (HOST, "localhost"),
        (HOST, "foo.localhost"),
        (HOST, "printer.local"),
        (HOST, "metadata.google.internal"),
        (HOST, "example"),
        (HOST, "example.com:8080"),
        (HOST, "user@example.com"),
        (HOST, "example.com/"),
        (HOST, "https://example.com"),
        (HOST, "a..com"),
        (HOST, "-a.com"),
        (HOST, "münchen.de"),
        (HOST, "ex%2eample.com"),
        (HOST, ("a" * 60 + ".") * 5 + "com"),
        (HOST, None),
        (REGION, "ap1"),
        (REGION, "EU1"),
        (REGION, " eu1"),
        (REGION, ""),
    ],
    ids=repr,
)
def test_invalid_account_field_values(spec: AccountField, raw: Any) -> None:
    with pytest.raises(InvalidAccountField) as info:
        validate_field_value(spec, raw)
    assert info.value.field == spec.name


@functools.cache
def _configured_catalog() -> Catalog:
    """The shipped catalog with every app configured (fake client id, a base_url)."""
    slugs = [p.stem for p in SHIPPED_DIR.glob("*.yaml")]
    settings = {
        s: {
            "base_url": "http://127.0.0.1:9",
            "client_id": "fake-client-id",
            # Etsy sends "{client_id}:{client_secret}" as x-api-key: not usable without both.
            "client_secret": "fake-client-secret",
            # Only read for apps with auth.custom_redirect_uri (eBay's RuName).
            "redirect_uri_value": f"fake-{s}-runame",
        }
        for s in slugs
    }
    return load_catalog(app_settings=settings, environ={})


def _catalog_app(slug: str) -> Any:
    app = _configured_catalog().get(slug)
    assert app is not None
    return app


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("https://eu1.my.salesforce.com", "https://eu1.my.salesforce.com"),
        ("https://eu1.my.salesforce.com/", "https://eu1.my.salesforce.com"),
        ("http://eu1.my.salesforce.com", None),
        ("https://user:pw@eu1.my.salesforce.com", None),
        ("https://eu1.my.salesforce.com@evil.example", None),
        ("https://127.0.0.1", None),
        ("https://localhost", None),
        ("https://eu1.my.salesforce.com?x=1", None),
        ("https://eu1.my.salesforce.com#x", None),
        ("https://eu1.my.salesforce.com:8443", None),
        ("https://eu1.my.salesforce.com/a/../b", None),
        ("javascript:alert(1)", None),
        ("//evil.example", None),
        ("https://exa mple.com", None),
        (42, None),
        (None, None),
    ],
    ids=repr,
)
def test_token_response_fields_are_validated(raw: Any, ok: str | None) -> None:
    app = _catalog_app("salesforce")
    if ok is None:
        with pytest.raises(InvalidAccountField):
            validate_token_field(app, "instance_url", raw)
    else:
        assert validate_token_field(app, "instance_url", raw) == ok


def test_token_field_http_on_loopback_only_for_sandbox_apps() -> None:
    sandbox = _catalog_app("sandbox-nested")
    assert validate_token_field(sandbox, "instance_url", "http://127.0.0.1:5/x") == (
        "http://127.0.0.1:5/x"
    )
    with pytest.raises(InvalidAccountField):
        validate_token_field(_catalog_app("salesforce"), "instance_url", "http://127.0.0.1:5")
    with pytest.raises(InvalidAccountField):
        validate_token_field(sandbox, "instance_url", "http://10.0.0.1:5")


# --------------------------------------------------------------------------- token responses


def test_nested_token_response_is_stored_and_used(stack: DemoStack, sandbox: str, api: Api) -> None:
    response = oauth_connect(api, "sandbox-nested")
    payload = result(response)
    assert payload["status"] == "connected", response.text[:800]
    [account] = accounts_of(stack, api.user_id)
    creds = credentials_of(stack, account)
    assert creds["access_token"] != DECOY_TOKEN
    assert creds["refresh_token"] and creds["expires_at"] > time.time()
    assert creds["account_fields"] == {"instance_url": f"{stack.sandbox.url}/instances/eu1"}
    assert account.scopes == ["profile", "contacts.read"]  # split on ","
    assert api.get("/proxy/sandbox-nested/me").json()["username"] == "ada"

    expire_tokens(stack)
    contacts = api.get("/proxy/sandbox-nested/contacts")
    assert contacts.status_code == 200 and contacts.json()["data"]
    assert stat(stack, "refresh_token") == 1
    renewed = credentials_of(stack, accounts_of(stack, api.user_id)[0])
    assert renewed["access_token"] not in (creds["access_token"], DECOY_TOKEN)
    assert renewed["refresh_token"] != creds["refresh_token"]  # rotated, read from authed_user


def test_token_without_expires_in_is_never_refreshed_before_use(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    assert result(oauth_connect(api, "sandbox-forever"))["status"] == "connected"
    [account] = accounts_of(stack, api.user_id)
    creds = credentials_of(stack, account)
    assert "expires_at" not in creds and "refresh_token" not in creds
    assert account.expires_at is None
    for _ in range(3):
        assert api.get("/proxy/sandbox-forever/me").status_code == 200
    assert stat(stack, "refresh_token") == 0

    # Revoked or expired after all: the 401 goes back as it is, no refresh, no retry.
    expire_tokens(stack)
    before = sandbox_stats(stack)["api_requests"]
    assert api.get("/proxy/sandbox-forever/me").status_code == 401
    assert sandbox_stats(stack)["api_requests"] - before == 1
    assert stat(stack, "refresh_token") == 0


def test_client_secret_post_code_exchange_and_refresh(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    browser = Browser()
    ticket = api.ticket("sandbox-post")
    started = browser.start(ticket["connect_url"])
    params = parse_qs(urlsplit(started.headers["Location"]).query)
    assert params["prompt"] == ["consent"]  # authorize_params
    consent = browser.consent(started.headers["Location"])
    response = browser.callback(consent.callback_url)
    assert result(response)["status"] == "connected", response.text[:800]
    expire_tokens(stack)
    assert api.get("/proxy/sandbox-post/me").status_code == 200
    assert stat(stack, "refresh_token") == 1  # the sandbox only accepts client_secret_post


def test_token_params_and_auth_method_on_exchange_and_refresh(
    make_app: Any, stack: DemoStack, tmp_path: Path
) -> None:
    """token_params and client_secret_post reach the token endpoint on the code exchange AND
    the refresh (a recording provider)."""
    token = {"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1"}
    upstream = Upstream(
        routes={
            "/token": lambda request: Flask.response_class(
                json.dumps({**token, "expires_in": 3600}), content_type="application/json"
            ),
            "/me": lambda request: Flask.response_class(
                json.dumps({"id": "u1"}), content_type="application/json"
            ),
        }
    )
    try:
        catalog = tmp_path / "apps"
        catalog.mkdir()
        (catalog / "acme-post.yaml").write_text(
            yaml.safe_dump(
                {
                    "slug": "acme-post",
                    "title": "Acme",
                    "description": "d",
                    "categories": ["CRM"],
                    "docs_url": "https://docs.example.com",
                    "auth": {
                        "type": "oauth2",
                        "authorize_url": "{base_url}/authorize",
                        "token_url": "{base_url}/token",
                        "scopes": ["a", "b"],
                        "scope_separator": "+",
                        "pkce": False,
                        "pkce_unsupported_source": "https://docs.example.com/no-pkce",
                        "token_endpoint_auth_method": "client_secret_post",
                        "token_params": {"audience": "acme-api"},
                        "authorize_params": {"access_type": "offline"},
                    },
                    "api": {"base_url": "{base_url}/api"},
                    "identity": {"url": "{base_url}/me", "external_id": "id"},
                }
            )
        )
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(catalog)],
            PORTAL_APPS={
                "acme-post": {
                    "base_url": upstream.url,
                    "client_id": "acme-cid",
                    "client_secret": "acme-secret",
                }
            },
        )
        client = app.test_client()
        session = client.post(
            "/portal/api/v1/sessions",
            json={
                "appKey": DEMO_APP_KEY,
                "userId": "u-post",
                "hash": user_hash(DEMO_APP_SECRET, "u-post"),
            },
            headers={"Origin": stack.host.url},
        ).json["token"]
        bearer = {"Authorization": f"Bearer {session}"}
        ticket = client.post(
            "/portal/api/v1/connect-tickets", json={"app": "acme-post"}, headers=bearer
        ).json
        started = client.get(
            urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
        )
        params = parse_qs(urlsplit(started.headers["Location"]).query)
        assert params["scope"] == ["a+b"] and params["access_type"] == ["offline"]
        assert "code_challenge" not in params
        done = client.get(f"/portal/oauth/acme-post/callback?code=c1&state={params['state'][0]}")
        assert done.status_code == 200, done.text[:500]
        [exchange] = upstream.requests_to("/token")
        form = parse_qs(exchange.body.decode())
        assert form["grant_type"] == ["authorization_code"] and form["audience"] == ["acme-api"]
        assert form["client_id"] == ["acme-cid"] and form["client_secret"] == ["acme-secret"]
        assert "authorization" not in exchange.headers
        assert "code_verifier" not in form

        state = app.extensions["portal"]
        with state.store.read() as db:
            account = db.scalars(select(ConnectedAccount)).one()
        with state.store.session() as db:
            row = db.get(ConnectedAccount, account.id)
            data = {**state.sealer.open(row.id, row.credentials), "expires_at": 1}
            row.credentials = state.sealer.seal(row.id, data)
        proxied = client.get("/portal/api/v1/proxy/acme-post/things", headers=bearer)
        assert proxied.status_code == 200
        refresh = upstream.requests_to("/token")[1]
        form = parse_qs(refresh.body.decode())
        assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["rt-1"]
        assert form["audience"] == ["acme-api"] and form["client_secret"] == ["acme-secret"]
        assert "authorization" not in refresh.headers
    finally:
        upstream.stop()


# --------------------------------------------------------------------------- placement quirks


def _echo_app(catalog: Path, slug: str, auth: dict[str, Any], **extra: Any) -> None:
    catalog.mkdir(exist_ok=True)
    (catalog / f"{slug}.yaml").write_text(
        yaml.safe_dump(
            {
                "slug": slug,
                "title": slug,
                "description": "d",
                "categories": ["CRM"],
                "docs_url": "https://docs.example.com",
                "auth": auth,
                "api": {"base_url": "{base_url}/api", **extra.pop("api", {})},
                **extra,
            }
        )
    )


def _form_connect(app: Flask, stack: DemoStack, slug: str, values: dict[str, str]) -> Any:
    client = app.test_client()
    token = client.post(
        "/portal/api/v1/sessions",
        json={
            "appKey": DEMO_APP_KEY,
            "userId": "u-echo",
            "hash": user_hash(DEMO_APP_SECRET, "u-echo"),
        },
        headers={"Origin": stack.host.url},
    ).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    ticket = client.post("/portal/api/v1/connect-tickets", json={"app": slug}, headers=bearer).json
    path = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
    form = parse_form(client.get(path).text)
    response = client.post(path, data={**form["fields"], **values})
    return client, bearer, response


def test_static_headers_prefix_and_post_identity(
    make_app: Any, stack: DemoStack, tmp_path: Path
) -> None:
    upstream = Upstream(
        routes={
            "/api/whoami": lambda request: Flask.response_class(
                json.dumps({"account": {"id": "acct-7", "name": "Acme"}}),
                content_type="application/json",
            )
        }
    )
    try:
        _echo_app(
            tmp_path / "apps",
            "echo-static",
            {
                "type": "api_key",
                "placement": {"in": "header", "name": "Authorization", "prefix": "Token token="},
            },
            api={"headers": {"Notion-Version": "2022-06-28", "Accept": "application/vnd.x+json"}},
            identity={
                "url": "/whoami",
                "method": "POST",
                "body": None,
                "external_id": "account.id",
                "label": "account.name",
            },
        )
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")],
            PORTAL_APPS={"echo-static": {"base_url": upstream.url}},
        )
        client, bearer, response = _form_connect(app, stack, "echo-static", {"api_key": "K-1"})
        assert response.status_code == 200, response.text[:500]
        lookup = upstream.requests_to("/api/whoami")[-1]
        assert lookup.method == "POST" and lookup.body == b"null"
        assert lookup.headers["content-type"] == "application/json"
        assert lookup.headers["authorization"] == "Token token=K-1"
        assert lookup.headers["notion-version"] == "2022-06-28"

        proxied = client.get(
            "/portal/api/v1/proxy/echo-static/pages",
            headers={**bearer, "Accept": "text/html", "Notion-Version": "1999-01-01"},
        )
        assert proxied.status_code == 200
        seen = upstream.requests_to("/api/pages")[-1].headers
        assert seen["accept"] == "application/vnd.x+json"  # the catalog's, not the caller's
        assert seen["notion-version"] == "2022-06-28"
        assert seen["authorization"] == "Token token=K-1"
    finally:
        upstream.stop()


def test_api_key_as_basic_username(make_app: Any, stack: DemoStack, tmp_path: Path) -> None:
    upstream = Upstream(
        routes={
            "/api/me": lambda request: Flask.response_class(
                json.dumps({"id": 5}), content_type="application/json"
            )
        }
    )
    try:
        _echo_app(
            tmp_path / "apps",
            "echo-basic",
            {"type": "api_key", "placement": {"in": "basic_username", "password": "X"}},
            identity={"url": "/me", "external_id": "id"},
        )
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path / "apps")],
            PORTAL_APPS={"echo-basic": {"base_url": upstream.url}},
        )
        client, bearer, response = _form_connect(app, stack, "echo-basic", {"api_key": "fd-key"})
        assert response.status_code == 200, response.text[:500]
        assert (
            client.get("/portal/api/v1/proxy/echo-basic/tickets", headers=bearer).status_code == 200
        )
        expected = "Basic " + base64.b64encode(b"fd-key:X").decode()
        assert upstream.requests_to("/api/me")[-1].headers["authorization"] == expected
        assert upstream.requests_to("/api/tickets")[-1].headers["authorization"] == expected
    finally:
        upstream.stop()


# --------------------------------------------------------------------------- every OAuth app

SAMPLE = {
    "dns_label": "acme",
    "hostname": "gitlab.example.com",
    "digits": "4620816365",
    "uuid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
}


def _shipped_oauth_slugs() -> list[str]:
    return sorted(a.slug for a in load_catalog(environ={}) if a.auth_type == "oauth2")


def test_whole_shipped_catalog_loads() -> None:
    catalog = load_catalog(environ={})
    assert {a.slug for a in catalog} == {p.stem for p in SHIPPED_DIR.glob("*.yaml")}
    for app in catalog:
        assert app.docs_url or app.slug.startswith("sandbox"), app.slug


@pytest.mark.parametrize("slug", _shipped_oauth_slugs())
def test_authorize_url_of_every_shipped_oauth_app(slug: str) -> None:
    catalog = _configured_catalog()
    app = catalog.get(slug)
    assert app is not None and app.oauth2 is not None and app.usable, app and app.missing
    settings = app.oauth2
    if settings.authorize_url is None:
        pytest.skip("authorization endpoint from server metadata (covered in test_catalog)")
    values = {
        f.name: (f.enum[0] if f.format == "enum" else SAMPLE[f.format]) for f in app.account_fields
    }
    resolved = app.resolve(values)
    assert "{" not in (resolved.oauth2.authorize_url or "")
    oauth = OAuthClients(Catalog([app]), 5)
    callback = redirect_uri("https://portal.example", slug)
    flask_app = Flask(__name__)
    flask_app.secret_key = "test"
    with flask_app.test_request_context():
        response = oauth.authorize_redirect(resolved, callback, "state-123")
    url = urlsplit(response.headers["Location"])
    expected = urlsplit(resolved.oauth2.authorize_url)
    assert (url.scheme, url.netloc, url.path) == (expected.scheme, expected.netloc, expected.path)
    params = {k: v for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    assert params["client_id"] == ["fake-client-id"]
    if settings.custom_redirect_uri:
        assert params["redirect_uri"] == [f"fake-{slug}-runame"]
    else:
        assert params["redirect_uri"] == [f"https://portal.example/portal/oauth/{slug}/callback"]
    assert params["response_type"] == ["code"]
    assert params["state"] == ["state-123"]
    if settings.scopes:
        # Scope placeholders (Dynamics 365's {org}) are filled like the URLs: the resolved app's.
        assert params["scope"] == [settings.scope_separator.join(resolved.oauth2.scopes)]
        assert "{" not in params["scope"][0]
    else:
        assert "scope" not in params
    if settings.pkce:
        assert params["code_challenge_method"] == ["S256"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"][0])
    else:
        assert "code_challenge" not in params and "code_challenge_method" not in params
    for key, value in settings.authorize_params.items():
        assert params.get(key) == [value], key


def test_redirect_uri_helper() -> None:
    assert redirect_uri("https://p.example/", "slack") == (
        "https://p.example/portal/oauth/slack/callback"
    )
    assert redirect_uri("https://p.example", "x", "/connect/") == (
        "https://p.example/connect/oauth/x/callback"
    )
