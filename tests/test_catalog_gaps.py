"""Catalog format gaps closed for real apps (issue 17), each over real loopback HTTP where a
provider is involved: follow-up lookups (Atlassian's cloud id), declarative revocation (GitHub,
Slack, Google), a path prefix for self-hosted instances, placeholders in scopes (Dynamics 365),
body-based failure (Slack's ``ok: false``) and the functions engine's pagination formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
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
    started = client.post(start, data=form) if form else client.get(start)
    assert started.status_code == 302, started.text[:500]
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
