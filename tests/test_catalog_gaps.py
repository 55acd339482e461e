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
