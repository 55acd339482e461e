"""Catalog format gaps closed for real apps (issue 17), each over real loopback HTTP where a
provider is involved: follow-up lookups (Atlassian's cloud id), declarative revocation (GitHub,
Slack, Google), a path prefix for self-hosted instances, placeholders in scopes (Dynamics 365),
body-based failure (Slack's ``ok: false``) and the functions engine's pagination formats."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import parse_form
from flask import Flask
from sqlalchemy import select
from test_catalog_quirks import OAUTH, _session, _write
from test_proxy import Upstream

from portal.catalog import load_catalog
from portal.demo import DemoStack
from portal.errors import CatalogError
from portal.store import ConnectedAccount

CLOUD = "1324a887-45db-1bf4-1e99-ef0ff456d421"


def _json(payload: Any, status: int = 200) -> Any:
    return lambda request: Flask.response_class(
        json.dumps(payload), status=status, content_type="application/json"
    )


def _connect(app: Flask, stack: DemoStack, slug: str, **form: str) -> tuple[Any, Any, Any]:
    """An OAuth connect of ``slug`` through the portal's test client, the provider's consent
    skipped: ``(client, bearer headers, callback response)``; ``form`` is the account-field
    form, when the app asks for one."""
    client, bearer = _session(app, stack)
    ticket = client.post("/portal/api/v1/connect-tickets", json={"app": slug}, headers=bearer).json
    start = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
    if form:
        page = parse_form(client.get(start).text)
        values = {f"account_{name}": value for name, value in form.items()}
        started = client.post(page["action"], data={**page["fields"], **values})
    else:
        started = client.get(start)
    if form:  # a continue page (no redirect answers a form POST): its link
        assert started.status_code == 200, started.text[-3000:]
        found = re.search(r'href="([^"]+)" id="portal-continue-link"', started.text)
        assert found, started.text[-2000:]
        location = html.unescape(found.group(1))
    else:
        assert started.status_code == 302, started.text[-3000:]
        location = started.headers["Location"]
    params = parse_qs(urlsplit(location).query)
    done = client.get(f"/portal/oauth/{slug}/callback?code=c1&state={params['state'][0]}")
    done.authorize_location = location  # type: ignore[attr-defined]
    return client, bearer, done


def _accounts(app: Flask) -> list[ConnectedAccount]:
    with app.extensions["portal"].store.read() as db:
        return list(db.scalars(select(ConnectedAccount)).all())


# --------------------------------------------------------------------------- 1. lookups

ATLASSIAN_LIKE = {
    "account_fields": [{"name": "cloud_id", "label": "Site", "format": "uuid"}],
    "auth": OAUTH,
    "api": {"base_url": "{base_url}/ex/wiki/{cloud_id}"},
    "lookups": [{"url": "{base_url}/accessible-resources", "fields": {"cloud_id": "0.id"}}],
    "identity": {"url": "{base_url}/me", "external_id": "account_id", "label": "email"},
}
TOKEN = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}


def test_lookup_fills_the_base_path(make_app: Any, stack: DemoStack, tmp_path: Path) -> None:
    """Atlassian: the cloud id read from accessible-resources after the token exchange pins
    the connection's base path; the lookup carries the new token."""
    upstream = Upstream(
        routes={
            "/token": _json(TOKEN),
            "/accessible-resources": _json([{"id": CLOUD.upper(), "name": "acme"}]),
            "/me": _json({"account_id": "557058:abc", "email": "ada@example.com"}),
        }
    )
    try:
        _write(tmp_path, "acme-site", **ATLASSIAN_LIKE)
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-site": settings})
        client, bearer, done = _connect(app, stack, "acme-site")
        assert done.status_code == 200, done.text[:500]
        [lookup] = upstream.requests_to("/accessible-resources")
        assert lookup.method == "GET" and lookup.headers["authorization"] == "Bearer at-1"
        [account] = _accounts(app)
        assert account.external_id == "557058:abc"
        sealed = app.extensions["portal"].sealer.open(account.id, account.credentials)
        assert sealed["account_fields"] == {"cloud_id": CLOUD}  # uuid: lower-cased
        proxied = client.get("/portal/api/v1/proxy/acme-site/wiki/api/v2/pages", headers=bearer)
        assert proxied.status_code == 200
        proxied.close()
        assert upstream.requests_to(f"/ex/wiki/{CLOUD}/wiki/api/v2/pages")
    finally:
        upstream.stop()


@pytest.mark.security("Path that is absolute or escapes the base URL")
@pytest.mark.parametrize(
    "answer",
    [[], [{"id": "../../admin"}], [{"id": "https://evil.example"}], {"id": CLOUD}, "x"],
    ids=["no-site", "traversal", "url", "not-a-list", "not-json-object"],
)
def test_hostile_lookup_answer_fails_the_connect(
    make_app: Any, stack: DemoStack, tmp_path: Path, answer: Any
) -> None:
    upstream = Upstream(
        routes={
            "/token": _json(TOKEN),
            "/accessible-resources": _json(answer),
            "/me": _json({"account_id": "a1"}),
        }
    )
    try:
        _write(tmp_path, "acme-site", **ATLASSIAN_LIKE)
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-site": settings})
        _, _, done = _connect(app, stack, "acme-site")
        assert "failed" in done.text and "invalid_response" in done.text, done.text[:800]
        assert _accounts(app) == []
        assert upstream.requests_to("/me") == []  # nothing after the refused value
    finally:
        upstream.stop()


@pytest.mark.security("Catalog URLs (`docs_url`, icons, endpoints) with `javascript:` or `data:`")
@pytest.mark.parametrize(
    ("lookups", "message"),
    [
        (
            [{"url": "{base_url}/r/{cloud_id}", "fields": {"cloud_id": "0.id"}}],
            "which a lookup fills",
        ),
        (
            [
                {"url": "{base_url}/a", "fields": {"cloud_id": "0.id"}},
                {"url": "{base_url}/b", "fields": {"cloud_id": "1.id"}},
            ],
            "filled by two lookups",
        ),
        ([{"url": "javascript:alert(1)", "fields": {"cloud_id": "0.id"}}], "https URL"),
        ([{"url": "http://169.254.169.254/x", "fields": {"cloud_id": "0.id"}}], "https URL"),
    ],
)
def test_lookup_definitions_are_checked(
    tmp_path: Path, lookups: list[dict[str, Any]], message: str
) -> None:
    _write(tmp_path, "acme-bad", **{**ATLASSIAN_LIKE, "lookups": lookups})
    with pytest.raises(CatalogError, match=message):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})


def test_confluence_pins_its_site_by_lookup() -> None:
    confluence = load_catalog(environ={}).get("confluence")
    assert confluence is not None and "cloud_id" in confluence.derived_fields
    [lookup] = confluence.lookups
    assert lookup.url == "https://api.atlassian.com/oauth/token/accessible-resources"
    resolved = confluence.resolve({"cloud_id": CLOUD})
    assert resolved.api_base_url == f"https://api.atlassian.com/ex/confluence/{CLOUD}"


# --------------------------------------------------------------------------- 2. revocation


def _revoking_app(tmp_path: Path, upstream: Upstream, revocation: dict[str, Any]) -> Any:
    _write(
        tmp_path,
        "acme-rev",
        auth={**OAUTH, "revocation": revocation},
        api={"base_url": "{base_url}/api"},
    )
    settings = {"base_url": upstream.url, "client_id": "Iv1.a/b", "client_secret": "sec-9"}
    catalog = load_catalog([tmp_path], {"acme-rev": settings}, environ={})
    app = catalog.get("acme-rev")
    assert app is not None and app.usable
    return catalog, app


CREDS = {"type": "oauth2", "access_token": "at-7", "refresh_token": "rt-7"}


@pytest.mark.parametrize(
    ("revocation", "path", "check"),
    [
        (  # GitHub: DELETE /applications/{client_id}/grant, Basic client auth, JSON body
            {
                "method": "DELETE",
                "url": "{base_url}/applications/{client_id}/grant",
                "auth": "client_basic",
                "token_in": "json",
                "token_param": "access_token",
                "token": "access_token",
            },
            "/applications/Iv1.a/b/grant",  # sent as Iv1.a%2Fb (WSGI decodes it)
            lambda r: (
                r.method == "DELETE"
                and json.loads(r.body) == {"access_token": "at-7"}
                and r.headers["authorization"] == "Basic SXYxLmEvYjpzZWMtOQ=="
            ),
        ),
        (  # Slack: auth.revoke with the token as the bearer credential, nothing else
            {
                "url": "{base_url}/auth.revoke",
                "auth": "bearer",
                "token_in": "none",
                "token": "access_token",
            },
            "/auth.revoke",
            lambda r: (
                r.method == "POST"
                and r.headers["authorization"] == "Bearer at-7"
                and r.body == b""
                and r.query == ""
            ),
        ),
        (  # Google style: the token as a query parameter, no client authentication
            {"url": "{base_url}/revoke", "token_in": "query"},
            "/revoke",
            lambda r: r.query == "token=rt-7" and "authorization" not in r.headers,
        ),
    ],
    ids=["github", "slack", "google"],
)
def test_declared_revocation_request(
    tmp_path: Path, revocation: dict[str, Any], path: str, check: Any
) -> None:
    from portal.oauth import OAuthClients

    upstream = Upstream(routes={path: _json({}, 204)})
    try:
        catalog, app = _revoking_app(tmp_path, upstream, revocation)
        assert OAuthClients(catalog, 5.0).revoke(app, CREDS) is True
        [seen] = upstream.received
        assert check(seen), seen
    finally:
        upstream.stop()


def test_declared_revocation_failure_and_no_redirect(tmp_path: Path) -> None:
    """A 4xx is a failed revocation; a redirect is not followed (it would carry the client
    secret to wherever it points)."""
    from portal.oauth import OAuthClients

    elsewhere = Upstream()
    upstream = Upstream(
        routes={
            "/refused": _json({"message": "Not Found"}, 404),
            "/moved": lambda request: Flask.response_class(
                "", status=307, headers={"Location": f"{elsewhere.url}/steal"}
            ),
        }
    )
    try:
        for url in ("{base_url}/refused", "{base_url}/moved"):
            catalog, app = _revoking_app(tmp_path, upstream, {"url": url, "auth": "client_basic"})
            assert OAuthClients(catalog, 5.0).revoke(app, CREDS) is False
        assert elsewhere.count() == 0
    finally:
        upstream.stop()
        elsewhere.stop()


@pytest.mark.security("Catalog URLs (`docs_url`, icons, endpoints) with `javascript:` or `data:`")
def test_revocation_definitions_are_checked(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "acme-bad",
        auth={**OAUTH, "revoke_url": "{base_url}/r", "revocation": {"url": "{base_url}/r"}},
        api={"base_url": "{base_url}/api"},
    )
    with pytest.raises(CatalogError, match="revocation or revoke_url"):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})
    _write(
        tmp_path,
        "acme-bad",
        auth={**OAUTH, "revocation": {"url": "http://10.0.0.1/{client_id}"}},
        api={"base_url": "{base_url}/api"},
    )
    with pytest.raises(CatalogError, match="https URL"):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})


def test_github_and_slack_declare_their_revocation() -> None:
    catalog = load_catalog(
        app_settings={"github": {"client_id": "g"}, "slack": {"client_id": "s"}}, environ={}
    )
    github, slack = catalog.get("github"), catalog.get("slack")
    assert github is not None and github.oauth2 is not None and github.oauth2.revocation
    assert github.oauth2.revocation.url == "https://api.github.com/applications/{client_id}/grant"
    assert github.oauth2.revocation.method == "DELETE"
    assert slack is not None and slack.oauth2 is not None and slack.oauth2.revocation
    assert slack.oauth2.revocation.auth == "bearer"


# --------------------------------------------------------------------------- 5. error_when

SLACK_LIKE_ERROR = {"path": "ok", "equals": False, "message": "error"}


def _slack_like(tmp_path: Path, upstream: Upstream, auth: dict[str, Any] | None = None) -> None:
    _write(
        tmp_path,
        "acme-chat",
        auth=auth or {"type": "api_key", "placement": {"in": "bearer"}},
        api={"base_url": "{base_url}/api", "error_when": SLACK_LIKE_ERROR},
        identity={"url": "{base_url}/api/auth.test", "external_id": "team_id"},
        functions=[
            {
                "name": "acme-chat-list",
                "title": "List",
                "method": "GET",
                "path": "/conversations.list",
                "params": {"type": "object", "properties": {}},
                "output": "channels",
                "pagination": {
                    "cursor_param": "cursor",
                    "next_cursor": "response_metadata.next_cursor",
                },
            }
        ],
    )


def test_error_when_proxy_and_functions(make_app: Any, stack: DemoStack, tmp_path: Path) -> None:
    """Slack's 200 {"ok": false} is a failure for the proxy (502, Slack's body unchanged) and
    for functions (network_code 502, error, error_details); an ok answer is untouched."""
    from test_auth_methods import _form_connect

    answer: dict[str, Any] = {"ok": False, "error": "channel_not_found"}
    upstream = Upstream(
        routes={
            "/api/auth.test": _json({"ok": True, "team_id": "T1"}),
            "/api/chat.postMessage": lambda request: _json(answer)(request),
            "/api/conversations.list": lambda request: _json(answer)(request),
            "/api/text": lambda request: Flask.response_class(
                '{"ok": false}', content_type="text/plain"
            ),
        }
    )
    try:
        _slack_like(tmp_path, upstream)
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path)],
            PORTAL_APPS={"acme-chat": {"base_url": upstream.url}},
        )
        client, bearer, response = _form_connect(app, stack, "acme-chat", {"api_key": "xoxb-1"})
        assert response.status_code == 200, response.text[:500]
        failed = client.post("/portal/api/v1/proxy/acme-chat/chat.postMessage", headers=bearer)
        assert failed.status_code == 502
        assert failed.json == answer  # the caller still reads Slack's own error
        called = client.post(
            "/portal/api/v1/functions/acme-chat-list/invoke", json={"params": {}}, headers=bearer
        )
        assert called.status_code == 200, called.text[:500]
        assert called.json["network_code"] == 502
        assert called.json["error"] == "acme-chat answered with an error: channel_not_found"
        assert called.json["error_details"] == [{"field": "", "message": "channel_not_found"}]
        assert called.json["next_page"] == "" and called.json["output"] == answer
        # Not JSON: not inspected.
        text = client.get("/portal/api/v1/proxy/acme-chat/text", headers=bearer)
        assert text.status_code == 200
        text.close()
        answer.clear()
        answer.update(
            {"ok": True, "channels": [{"id": "C1"}], "response_metadata": {"next_cursor": "n2"}}
        )
        ok = client.post("/portal/api/v1/proxy/acme-chat/chat.postMessage", headers=bearer)
        assert ok.status_code == 200 and ok.json["ok"] is True
        listed = client.post(
            "/portal/api/v1/functions/acme-chat-list/invoke", json={"params": {}}, headers=bearer
        ).json
        assert listed == {"network_code": 200, "output": [{"id": "C1"}], "next_page": "n2"}
    finally:
        upstream.stop()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"ok": False, "error": "invalid_auth"}, "invalid_auth"),
        ({"ok": False}, "error"),
        (
            {"ok": False, "error": "bad\r\nX-Injected: 1" + "x" * 300},
            ("badX-Injected: 1" + "x" * 300)[:200],
        ),
        ({"ok": 0, "error": "x"}, None),  # same JSON type only: 0 is not false
        ({"ok": True, "error": "x"}, None),
        ([{"ok": False}], None),
        ("ok", None),
    ],
)
def test_error_when_reading(document: Any, expected: str | None) -> None:
    from portal.catalog import ErrorWhen

    rule = ErrorWhen(path="ok", equals=False, message="error")
    assert rule.failure(document) == expected


@pytest.mark.parametrize(
    ("token_answer", "message"),
    [
        ({"ok": False, "error": "invalid_code"}, "refused the connection (invalid_code)."),
        ({"ok": False, "warning": "superfluous_charset"}, "refused the connection (error)."),
    ],
)
def test_error_when_fails_the_token_exchange_in_words(
    make_app: Any, stack: DemoStack, tmp_path: Path, token_answer: Any, message: str
) -> None:
    upstream = Upstream(routes={"/token": _json(token_answer)})
    try:
        _slack_like(tmp_path, upstream, auth=OAUTH)
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-chat": settings})
        _, _, done = _connect(app, stack, "acme-chat")
        assert "failed" in done.text and f"acme-chat {message}" in done.text, done.text[:1500]
        assert _accounts(app) == []
    finally:
        upstream.stop()


def test_error_when_fails_the_identity_lookup(
    make_app: Any, stack: DemoStack, tmp_path: Path
) -> None:
    from test_auth_methods import _form_connect

    upstream = Upstream(routes={"/api/auth.test": _json({"ok": False, "error": "invalid_auth"})})
    try:
        _slack_like(tmp_path, upstream)
        app = make_app(
            PORTAL_CATALOG_PATHS=[str(tmp_path)],
            PORTAL_APPS={"acme-chat": {"base_url": upstream.url}},
        )
        _, _, response = _form_connect(app, stack, "acme-chat", {"api_key": "xoxb-bad"})
        assert response.status_code == 400
        assert "could not look up the account (invalid_auth)" in response.text
        assert _accounts(app) == []
    finally:
        upstream.stop()


def test_slack_declares_error_when() -> None:
    slack = load_catalog(environ={}).get("slack")
    assert slack is not None and slack.error_when is not None
    assert slack.error_when.failure({"ok": False, "error": "not_in_channel"}) == "not_in_channel"


def test_error_when_fails_a_declared_revocation(tmp_path: Path) -> None:
    from portal.oauth import OAuthClients

    answer = {"ok": False, "error": "invalid_auth"}
    upstream = Upstream(routes={"/auth.revoke": lambda request: _json(answer)(request)})
    try:
        _write(
            tmp_path,
            "acme-rev",
            auth={**OAUTH, "revocation": {"url": "{base_url}/auth.revoke", "auth": "bearer"}},
            api={"base_url": "{base_url}/api", "error_when": SLACK_LIKE_ERROR},
        )
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        catalog = load_catalog([tmp_path], {"acme-rev": settings}, environ={})
        app = catalog.get("acme-rev")
        assert app is not None
        assert OAuthClients(catalog, 5.0).revoke(app, CREDS) is False
        answer.update(ok=True, revoked=True)
        assert OAuthClients(catalog, 5.0).revoke(app, CREDS) is True
    finally:
        upstream.stop()


# --------------------------------------------------------------------------- 4. scopes

DYNAMICS_LIKE = {
    "account_fields": [
        {"name": "org", "label": "Environment", "format": "dns_label"},
        {"name": "region", "label": "Region", "format": "enum", "enum": ["crm", "crm4"]},
    ],
    "auth": {
        **OAUTH,
        "scopes": ["https://{org}.{region}.dynamics.example/user_impersonation", "offline_access"],
    },
    "api": {"base_url": "{base_url}/{org}/{region}/api"},
    "identity": {"url": "{base_url}/whoami", "external_id": "UserId"},
}


def test_scope_placeholders_are_filled_from_the_connect_form(
    make_app: Any, stack: DemoStack, tmp_path: Path
) -> None:
    upstream = Upstream(
        routes={
            "/token": _json(TOKEN),
            "/whoami": _json({"UserId": "u-1"}),
        }
    )
    try:
        _write(tmp_path, "acme-dyn", **DYNAMICS_LIKE)
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-dyn": settings})
        _, _, done = _connect(app, stack, "acme-dyn", org=" Contoso ", region="crm4")
        scope = parse_qs(urlsplit(done.authorize_location).query)["scope"]
        assert scope == ["https://contoso.crm4.dynamics.example/user_impersonation offline_access"]
        assert done.status_code == 200, done.text[:500]
        [account] = _accounts(app)
        assert account.scopes == [
            "https://contoso.crm4.dynamics.example/user_impersonation",
            "offline_access",
        ]
    finally:
        upstream.stop()


@pytest.mark.parametrize(
    "org", ["contoso.evil.example/x", "a b", "contoso%20offline", "contoso,x", "localhost", ""]
)
def test_hostile_scope_value_is_refused_before_the_provider(
    make_app: Any, stack: DemoStack, tmp_path: Path, org: str
) -> None:
    """The value goes through the field's format first: nothing that could add a scope,
    change the resource host or reach the provider."""
    upstream = Upstream()
    try:
        _write(tmp_path, "acme-dyn", **DYNAMICS_LIKE)
        settings = {"base_url": upstream.url, "client_id": "c", "client_secret": "s"}
        app = make_app(PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-dyn": settings})
        client, bearer = _session(app, stack)
        ticket = client.post(
            "/portal/api/v1/connect-tickets", json={"app": "acme-dyn"}, headers=bearer
        ).json
        start = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
        page = parse_form(client.get(start).text)
        values = {"account_org": org, "account_region": "crm4"}
        started = client.post(page["action"], data={**page["fields"], **values})
        assert started.status_code == 400, started.text[:300]
        assert upstream.count() == 0
    finally:
        upstream.stop()


@pytest.mark.parametrize(
    ("extra", "scope"),
    [
        ({}, "https://{nope}.example/x"),  # not an account field
        (  # filled by the identity response: only known after the scopes were sent
            {"identity": {"url": "{base_url}/w", "external_id": "i", "fields": {"org": "o"}}},
            "https://{org}.example/x",
        ),
        ({}, "https://{org.example/x"),
    ],
)
def test_scope_placeholder_definitions_are_checked(
    tmp_path: Path, extra: dict[str, Any], scope: str
) -> None:
    _write(
        tmp_path,
        "acme-bad",
        **{**DYNAMICS_LIKE, **extra, "auth": {**OAUTH, "scopes": [scope]}},
    )
    with pytest.raises(CatalogError, match="scope placeholder"):
        load_catalog([tmp_path], {"acme-bad": {"base_url": "https://x.example"}}, environ={})


def test_a_filled_scope_never_splits() -> None:
    catalog = load_catalog(app_settings={"dynamics-365": {"client_id": "x"}}, environ={})
    dynamics = catalog.get("dynamics-365")
    assert dynamics is not None and dynamics.scope_placeholders == {"org", "region"}
    resolved = dynamics.resolve({"org": "contoso", "region": "crm"})
    assert resolved.oauth2 is not None and resolved.oauth2.scopes[0] == (
        "https://contoso.crm.dynamics.com/user_impersonation"
    )
    with pytest.raises(CatalogError, match="cannot take this value"):
        dynamics.resolve({"org": "a b", "region": "crm"})  # never from a validated field


# --------------------------------------------------------------------------- 3. path prefix


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("  ", ""),
        (None, ""),
        ("/jenkins", "/jenkins"),
        ("jenkins/", "/jenkins"),
        ("/CI/Jenkins~2/", "/CI/Jenkins~2"),
    ],
)
def test_path_prefix_accepts(raw: Any, expected: str) -> None:
    from portal.catalog import AccountField, validate_field_value

    assert validate_field_value(AccountField("path", "Path", "path_prefix"), raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "/..",
        "/a/../b",
        "/a/./b",
        "/%2e%2e",
        "/a%2fb",
        "@evil.example",
        "/x@evil.example",
        ":8080/x",
        "/x?y=1",
        "/x#f",
        "/a;b",
        "/a\\b",
        "/a b",
        "/a//b",
        "/é",
        "/a" * 65,
        "/" + "a" * 65,
        7,
    ],
    ids=repr,
)
def test_path_prefix_refuses(raw: Any) -> None:
    from portal.catalog import AccountField, InvalidAccountField, validate_field_value

    with pytest.raises(InvalidAccountField):
        validate_field_value(AccountField("path", "Path", "path_prefix"), raw)


@pytest.fixture
def prefixed(make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A self-hosted API-key app under ``http://{host}:<port>{path}``, the host resolved by the
    tests' resolver to a loopback upstream that ``PORTAL_OUTBOUND_ALLOWED_NETWORKS`` admits
    (the escape hatch test_outbound.py uses; plain http to a name is admitted the same way)."""
    import re as re_

    from portal import catalog

    real = catalog.is_catalog_url
    test_url = re_.compile(r"http://[a-z0-9.-]+:\d+(/|$)")
    monkeypatch.setattr(catalog, "is_catalog_url", lambda v: real(v) or bool(test_url.match(v)))
    upstream = Upstream(routes={"/ci/me": _json({"id": "u-7", "name": "Ada"})})
    base = f"http://{{host}}:{upstream.server.port}{{path}}"
    _write(
        tmp_path,
        "self-path",
        account_fields=[
            {"name": "host", "label": "Server", "format": "hostname"},
            {"name": "path", "label": "Path", "format": "path_prefix"},
        ],
        auth={"type": "api_key", "placement": {"in": "header", "name": "X-Test-Key"}},
        api={"base_url": f"{base}/api"},
        identity={"url": f"{base}/me", "external_id": "id", "label": "name"},
    )
    app = make_app(
        PORTAL_CATALOG_PATHS=[str(tmp_path)],
        PORTAL_OUTBOUND_ALLOWED_NETWORKS=["127.0.0.1/32"],
    )
    try:
        yield app, upstream
    finally:
        upstream.stop()


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_path_prefix_reaches_the_instance_under_its_path(prefixed: Any, stack: DemoStack) -> None:
    from test_outbound import HOST, Resolver, _bearer, _connect_form, _resolve_with

    app, upstream = prefixed
    resolver = _resolve_with(app, Resolver("127.0.0.1"))
    response, _ = _connect_form(
        app, stack, "self-path", {"account_path": "ci/", "api_key": "k-1"}, user="u-path"
    )
    assert response.status_code == 200, response.text[:800]
    [me] = upstream.requests_to("/ci/me")
    assert me.headers["host"] == f"{HOST}:{upstream.server.port}"
    client = app.test_client()
    bearer = _bearer(client, stack, "u-path")
    proxied = client.get("/portal/api/v1/proxy/self-path/things", headers=bearer)
    assert proxied.status_code == 200
    proxied.close()
    assert upstream.requests_to("/ci/api/things")
    # The pinned base path holds: nothing climbs out of /ci/api.
    for path in ("../me", "%2e%2e/%2e%2e/admin", "..;/x"):
        refused = client.get(f"/portal/api/v1/proxy/self-path/{path}", headers=bearer)
        assert refused.status_code == 400, path
    assert set(resolver.calls) == {HOST}


@pytest.mark.security("Every outbound request to an end-user-chosen host")
@pytest.mark.parametrize("path", ["/..", "@evil.example", "/x?y=1", "/x#f", "/%2e%2e"])
def test_hostile_path_prefix_is_refused_before_anything_is_sent(
    prefixed: Any, stack: DemoStack, path: str
) -> None:
    from test_outbound import Resolver, _connect_form, _resolve_with

    app, upstream = prefixed
    resolver = _resolve_with(app, Resolver("127.0.0.1"))
    response, _ = _connect_form(app, stack, "self-path", {"account_path": path, "api_key": "k"})
    assert response.status_code == 400, response.text[:500]
    assert resolver.calls == [] and upstream.count() == 0


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_path_prefix_keeps_the_private_address_guard(prefixed: Any, stack: DemoStack) -> None:
    from test_outbound import Resolver, _connect_form, _resolve_with

    app, upstream = prefixed
    _resolve_with(app, Resolver("10.0.0.5"))
    response, _ = _connect_form(app, stack, "self-path", {"account_path": "/ci", "api_key": "k"})
    assert response.status_code == 403 and "private network address" in response.text
    assert upstream.count() == 0


def test_jenkins_takes_a_path_prefix() -> None:
    jenkins = load_catalog(environ={}).get("jenkins")
    assert jenkins is not None
    resolved = jenkins.resolve({"host": "ci.example.com", "path": "/jenkins"})
    assert resolved.api_base_url == "https://ci.example.com/jenkins"
    assert jenkins.resolve({"host": "ci.example.com", "path": ""}).api_base_url == (
        "https://ci.example.com"
    )


# --------------------------------------------------------------------------- 6. functions

#: Functions with URL-based pagination and the documented response each is tested against
#: here (test_function_requests.py counts them as covered).
URL_PAGED = {
    "salesforce-query": (
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
        {
            "totalSize": 3214,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-2000",
            "records": [],
        },
        "/services/data/v62.0/query/01gD0000002HU6KIAW-2000",
    ),
}


def test_salesforce_pages_by_next_records_url() -> None:
    from portal.functions import _next_page, build_request

    catalog = load_catalog(environ={})
    fn = catalog.function("salesforce-query")
    assert fn is not None and fn.pagination is not None and fn.pagination.url_based
    base = "https://acme.my.salesforce.com/services/data/v62.0"
    document, expected = URL_PAGED["salesforce-query"]
    assert _next_page(fn, base, document, []) == expected
    assert _next_page(fn, base, {"done": True, "records": []}, []) == ""
    second = build_request(fn, {"q": "SELECT Id FROM Account", "next_page": expected}, base)
    assert (second["method"], second["path"], second["query"]) == (
        "GET",
        "query/01gD0000002HU6KIAW-2000",
        [],
    )


BASE = "https://graph.example.com/v1.0"


@pytest.mark.parametrize(
    ("value", "path", "query"),
    [
        (f"{BASE}/me/messages?$skip=10", "me/messages", [("$skip", "10")]),
        ("/v1.0/query/01g-2000", "query/01g-2000", []),
        (f"{BASE}", "", []),
    ],
)
def test_next_page_target_accepts(value: str, path: str, query: list[tuple[str, str]]) -> None:
    from portal.functions import next_page_target

    assert next_page_target(BASE, value) == (path, query)


@pytest.mark.security("Path that is absolute or escapes the base URL")
@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/v1.0/me",
        "https://graph.example.com.evil.example/v1.0/me",
        "https://graph.example.com:444/v1.0/me",
        "http://graph.example.com/v1.0/me",
        "https://x@graph.example.com/v1.0/me",
        "https://graph.example.com@evil.example/v1.0/me",
        "//evil.example/v1.0/me",
        "/v2.0/me",
        "/v1.0x/me",
        "/",
        f"{BASE}/me#frag",
        f"{BASE}/me\\..\\x",
        f"{BASE}/me\r\nX: y",
        "javascript:alert(1)",
        "me/messages",
        "",
        42,
    ],
    ids=repr,
)
def test_next_page_target_refuses(value: Any) -> None:
    from portal.errors import InvalidRequest
    from portal.functions import next_page_target

    with pytest.raises(InvalidRequest):
        next_page_target(BASE, value)


PAGED = [
    {
        "name": "acme-fn-graph",
        "title": "Graph-style list",
        "method": "GET",
        "path": "/me/messages",
        "params": {"type": "object", "properties": {"top": {"type": "integer"}}},
        "query": {"$top": "{top}"},
        "output": "value",
        "pagination": {"next_url": "@odata.nextLink"},
    },
    {
        "name": "acme-fn-link",
        "title": "GitHub-style list",
        "method": "GET",
        "path": "/issues",
        "params": {"type": "object", "properties": {}},
        "pagination": {"next_link": True},
    },
    {
        "name": "acme-fn-channel",
        "title": "Channel messages",
        "method": "GET",
        "path": "/teams/{team}/channels/{channel}/messages",
        "params": {
            "type": "object",
            "properties": {"team": {"type": "string"}, "channel": {"type": "string"}},
        },
    },
    {
        "name": "acme-fn-resource",
        "title": "A resource by name",
        "method": "GET",
        "path": "/{resource}",
        "params": {"type": "object", "properties": {"resource": {"type": "string"}}},
    },
    {
        "name": "acme-fn-graphql",
        "title": "GraphQL",
        "method": "POST",
        "path": "",
        "params": {"type": "object", "properties": {"query": {"type": "string"}}},
        "body": {"query": "{query}"},
    },
]


@pytest.fixture
def functions_app(make_app: Any, tmp_path: Path) -> Any:
    from test_proxy import add_account

    elsewhere = Upstream()
    pages: dict[str, Any] = {}
    upstream = Upstream(
        routes={
            "/api/me/messages": lambda request: _json(pages["graph"])(request),
            "/api/issues": lambda request: Flask.response_class(
                "[]", content_type="application/json", headers={"Link": pages["link"]}
            ),
        }
    )
    _write(
        tmp_path,
        "acme-fn",
        auth={"type": "api_key", "placement": {"in": "basic_password", "username": "api"}},
        api={"base_url": "{base_url}/api"},
        functions=PAGED,
    )
    app = make_app(
        PORTAL_CATALOG_PATHS=[str(tmp_path)], PORTAL_APPS={"acme-fn": {"base_url": upstream.url}}
    )
    add_account(app, "u-fn", "acme-fn", {"type": "api_key", "api_key": "key-1"})
    try:
        yield app, upstream, elsewhere, pages
    finally:
        upstream.stop()
        elsewhere.stop()


def _invoke(app: Flask, name: str, params: dict[str, Any]) -> Any:
    from test_proxy import server_headers

    return app.test_client().post(
        f"/portal/api/v1/functions/{name}/invoke",
        json={"params": params},
        headers=server_headers("u-fn"),
    )


@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_next_url_pagination_follows_on_the_api_only(functions_app: Any) -> None:
    """Graph: page 2 is the @odata.nextLink URL; a hostile upstream's next link to another host
    is never given, and a caller's next_page on another host is refused before sending."""
    app, upstream, elsewhere, pages = functions_app
    own = f"{upstream.url}/api/me/messages?$top=2&$skiptoken=X%3D1"
    pages["graph"] = {"value": [{"id": "m1"}], "@odata.nextLink": own}
    first = _invoke(app, "acme-fn-graph", {"top": 2}).json
    assert first == {"network_code": 200, "output": [{"id": "m1"}], "next_page": own}
    pages["graph"] = {"value": [{"id": "m2"}]}
    second = _invoke(app, "acme-fn-graph", {"top": 2, "next_page": own}).json
    assert second == {"network_code": 200, "output": [{"id": "m2"}], "next_page": ""}
    assert upstream.requests_to("/api/me/messages")[-1].query == "%24top=2&%24skiptoken=X%3D1"
    # Hostile upstream: a next link to another host (or another path) is dropped.
    for hostile in (f"{elsewhere.url}/api/me/messages?$skiptoken=1", f"{upstream.url}/oauth/x"):
        pages["graph"] = {"value": [], "@odata.nextLink": hostile}
        assert _invoke(app, "acme-fn-graph", {}).json["next_page"] == ""
    # A caller's next_page on another host: 400, nothing sent anywhere.
    before = upstream.count()
    refused = _invoke(app, "acme-fn-graph", {"next_page": f"{elsewhere.url}/api/me/messages"})
    assert refused.status_code == 400 and refused.json["error_details"][0]["field"] == "next_page"
    assert upstream.count() == before and elsewhere.count() == 0


@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_link_header_pagination(functions_app: Any) -> None:
    app, upstream, elsewhere, pages = functions_app
    own = f"{upstream.url}/api/issues?page=2&per_page=30"
    pages["link"] = f'<{own}>; rel="next", <{upstream.url}/api/issues?page=9>; rel="last"'
    first = _invoke(app, "acme-fn-link", {}).json
    assert first["next_page"] == own and first["network_code"] == 200
    pages["link"] = f'<{upstream.url}/api/issues?page=1>; rel="prev"'
    second = _invoke(app, "acme-fn-link", {"next_page": own}).json
    assert second["next_page"] == ""
    assert upstream.requests_to("/api/issues")[-1].query == "page=2&per_page=30"
    pages["link"] = f'<{elsewhere.url}/api/issues?page=2>; rel="next"'
    assert _invoke(app, "acme-fn-link", {}).json["next_page"] == ""
    assert elsewhere.count() == 0


@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_at_and_colon_in_path_segments(functions_app: Any) -> None:
    """Teams channel ids and People API resource names reach the API; nothing can leave it."""
    app, upstream, _, _ = functions_app
    ok = _invoke(app, "acme-fn-channel", {"team": "t-1", "channel": "19:abc@thread.tacv2"})
    assert ok.json["network_code"] == 200, ok.json
    [seen] = upstream.requests_to("/api/teams/t-1/channels/19:abc@thread.tacv2/messages")
    assert seen.headers["authorization"] == "Basic YXBpOmtleS0x"  # api:key-1 (Mailgun style)
    people = _invoke(app, "acme-fn-resource", {"resource": "people/me"})
    assert people.json["network_code"] == 200
    assert upstream.requests_to("/api/people/me")
    before = upstream.count()
    for value in (
        "@evil.example",
        "evil.example@x",
        "javascript:alert(1)",
        "..",
        "a/../../x",
        "%2e%2e/x",
        "a\\b",
    ):
        refused = _invoke(app, "acme-fn-resource", {"resource": value})
        assert refused.status_code == 400, value
    assert upstream.count() == before


def test_empty_path_is_the_base_url(functions_app: Any) -> None:
    """monday.com's GraphQL endpoint is its API base URL itself."""
    app, upstream, _, _ = functions_app
    called = _invoke(app, "acme-fn-graphql", {"query": "{ me { id } }"})
    assert called.json["network_code"] == 200
    [seen] = upstream.requests_to("/api")
    assert seen.method == "POST" and json.loads(seen.body) == {"query": "{ me { id } }"}


@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_the_proxy_still_refuses_an_empty_path_and_a_first_segment_at(functions_app: Any) -> None:
    from test_proxy import fetch, server_headers

    app, upstream, _, _ = functions_app
    client = app.test_client()
    for path in ("@evil.example", "a:b@evil.example/x"):
        response = fetch(
            client, f"/portal/api/v1/proxy/acme-fn/{path}", headers=server_headers("u-fn")
        )
        assert response.status_code == 400, path
    assert upstream.count() == 0


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ({"in": "basic_password"}, "username"),
        ({"in": "basic_username", "username": "api"}, "username"),
        ({"in": "basic_password", "username": "a:b"}, "does not match"),
    ],
)
def test_basic_password_definitions_are_checked(
    tmp_path: Path, placement: dict[str, Any], message: str
) -> None:
    _write(
        tmp_path,
        "acme-bad",
        auth={"type": "api_key", "placement": placement},
        api={"base_url": "https://x.example"},
    )
    with pytest.raises(CatalogError, match=message):
        load_catalog([tmp_path], environ={})


def test_mailgun_sends_the_key_as_the_password() -> None:
    from portal.identity import request_kwargs

    mailgun = load_catalog(environ={}).get("mailgun")
    assert mailgun is not None
    kwargs = request_kwargs(
        mailgun.resolve({"region": "api.eu"}), {"type": "api_key", "api_key": "k"}
    )
    assert kwargs["auth"] == ("api", "k")
