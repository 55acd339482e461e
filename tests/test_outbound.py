"""Every outbound request to an end-user-chosen host (SECURITY.md "Outside attacks"): the
connect-time token request, identity lookup and API-key verification, the proxy and functions
resolve the host once, refuse non-public addresses before any connect, and connect to the
address they checked (no DNS-rebinding window).

No DNS server runs here and no test may send traffic off loopback, so name resolution is the
portal's own injectable resolver (``state.outbound.resolver``), answered by :class:`Resolver`
(a stand-in we control: the only mock here). Every TCP connect that urllib3 makes (``requests``
and the proxy both go through it) is watched by the ``connects`` fixture, which refuses any
non-loopback address before a packet leaves. Upstreams are real loopback HTTP(S) servers.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import urllib3
import urllib3.util.connection
from conftest import parse_form
from flask import Flask
from test_proxy import Upstream, add_account, fetch, server_headers
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portal import outbound, user_hash
from portal._serving import ServerThread
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.store import ConnectAttempt

HOST = "chat.selfhosted.example"
#: What the resolver answers for HOST in the refusal tests (never connected to).
REFUSED = ["10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1", "192.168.1.1"]
QUOTE = "Every outbound request to an end-user-chosen host"


class Resolver:
    """Answers ``answers[i]`` to the i-th lookup (the last one from then on); records every
    name asked for."""

    def __init__(self, *answers: str) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        return [self.answers[min(len(self.calls), len(self.answers)) - 1]]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address urllib3 opens a TCP connection to, in order. Only loopback literals are
    really connected; anything else raises here, before the socket is created."""
    seen: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def guard(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        try:
            loopback = ipaddress.ip_address(address[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(f"test guard: no connect to {address[0]!r}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", guard)
    return seen


def _json(data: dict[str, Any]) -> Response:
    return Response(json.dumps(data), content_type="application/json")


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The self-hosted server on 127.0.0.1: identity, token endpoint and an API."""
    token = {"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1"}
    server = Upstream(
        routes={
            "/me": lambda request: _json({"id": "u1", "name": "Ada"}),
            "/token": lambda request: _json({**token, "expires_in": 3600}),
        }
    )
    try:
        yield server
    finally:
        server.stop()


def _catalog(folder: Path, port: int) -> Path:
    """Three apps whose host is an account field: API key, client credentials, OAuth 2.0."""
    folder.mkdir(exist_ok=True)
    base = f"http://{{host}}:{port}"
    common = (
        "description: A self-hosted app of the outbound tests.\n"
        "categories: [Testing]\n"
        "docs_url: https://docs.example.com/\n"
        "account_fields:\n"
        "  - name: host\n    label: Server\n    format: hostname\n"
        f'api:\n  base_url: "{base}/api"\n'
        f'identity:\n  url: "{base}/me"\n  external_id: id\n  label: name\n'
    )
    (folder / "self-keys.yaml").write_text(
        "slug: self-keys\ntitle: Self Keys\n" + common + "auth:\n  type: api_key\n"
        "  placement:\n    in: header\n    name: X-Test-Key\n"
        "functions:\n  - name: self-keys-thing\n    title: Thing\n    description: d\n"
        "    method: GET\n    path: /thing\n"
        "    params:\n      type: object\n      additionalProperties: false\n"
    )
    (folder / "self-m2m.yaml").write_text(
        "slug: self-m2m\ntitle: Self M2M\n" + common + "auth:\n  type: oauth2_client_credentials\n"
        f'  token_url: "{base}/token"\n'
    )
    (folder / "self-oauth.yaml").write_text(
        "slug: self-oauth\ntitle: Self OAuth\n" + common + "auth:\n  type: oauth2\n"
        f'  authorize_url: "{base}/authorize"\n  token_url: "{base}/token"\n'
        "  scopes: [read]\n"
    )
    return folder


@pytest.fixture
def portal(make_app: Any, tmp_path: Path, upstream: Upstream) -> Flask:
    app: Flask = make_app(
        PORTAL_CATALOG_PATHS=[str(_catalog(tmp_path / "apps", upstream.server.port))],
        PORTAL_APPS={"self-oauth": {"client_id": "cid", "client_secret": "csecret"}},
        PORTAL_OUTBOUND_ALLOWED_NETWORKS=["127.0.0.1/32"],
    )
    return app


def _resolve_with(app: Flask, resolver: Resolver) -> Resolver:
    app.extensions["portal"].outbound.resolver = resolver
    return resolver


def _bearer(client: Any, stack: DemoStack, user: str) -> dict[str, str]:
    token = client.post(
        "/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
    ).json["token"]
    return {"Authorization": f"Bearer {token}"}


def _connect_form(
    app: Flask, stack: DemoStack, slug: str, values: dict[str, str], user: str = "u-out"
) -> tuple[Any, str]:
    """Open ``slug``'s connect form through the test client and submit ``values`` with the
    host; returns (response, attempt id)."""
    client = app.test_client()
    ticket = client.post(
        "/portal/api/v1/connect-tickets", json={"app": slug}, headers=_bearer(client, stack, user)
    ).json
    path = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    form = parse_form(page.text)
    response = client.post(form["action"], data={**form["fields"], "account_host": HOST, **values})
    return response, ticket["attempt_id"]


def _attempt(app: Flask, attempt_id: str) -> ConnectAttempt:
    with app.extensions["portal"].store.read() as db:
        attempt = db.get(ConnectAttempt, attempt_id)
    assert attempt is not None
    return attempt


# ------------------------------------------------------------------ refused before any connect


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security(QUOTE)
def test_api_key_verification_to_private_address_is_refused(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    connects: list[tuple[str, int]],
    address: str,
) -> None:
    resolver = _resolve_with(portal, Resolver(address))
    response, attempt_id = _connect_form(portal, stack, "self-keys", {"api_key": "k-1"})
    assert response.status_code == 403
    assert "private network address" in response.text
    attempt = _attempt(portal, attempt_id)
    assert attempt.status == "failed" and attempt.error_code == "upstream_refused"
    assert resolver.calls == [HOST]
    assert connects == [] and upstream.count() == 0


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security(QUOTE)
def test_client_credentials_token_request_to_private_address_is_refused(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    connects: list[tuple[str, int]],
    address: str,
) -> None:
    resolver = _resolve_with(portal, Resolver(address))
    response, attempt_id = _connect_form(
        portal, stack, "self-m2m", {"client_id": "c", "client_secret": "s"}
    )
    assert response.status_code == 403
    assert "private network address" in response.text
    assert _attempt(portal, attempt_id).error_code == "upstream_refused"
    assert resolver.calls == [HOST]
    assert connects == [] and upstream.count() == 0


def _oauth_code_exchange(app: Flask, stack: DemoStack) -> tuple[Any, str]:
    """Account-field step (the host), then the provider's redirect back with a code through
    the same browser (test client). Returns (callback response, attempt id)."""
    client = app.test_client()
    ticket = client.post(
        "/portal/api/v1/connect-tickets",
        json={"app": "self-oauth"},
        headers=_bearer(client, stack, "u-oauth"),
    ).json
    path = urlsplit(ticket["connect_url"])._replace(scheme="", netloc="").geturl()
    form = parse_form(client.get(path).text)
    started = client.post(form["action"], data={**form["fields"], "account_host": HOST})
    assert started.status_code == 302, started.text[:500]
    location = urlsplit(started.headers["Location"])
    assert location.hostname == HOST  # the browser goes there, not the portal
    state = parse_qs(location.query)["state"][0]
    callback = client.get(f"/portal/oauth/self-oauth/callback?code=c1&state={state}")
    return callback, ticket["attempt_id"]


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security(QUOTE)
def test_oauth_code_exchange_to_private_address_is_refused(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    connects: list[tuple[str, int]],
    address: str,
) -> None:
    resolver = _resolve_with(portal, Resolver(address))
    response, attempt_id = _oauth_code_exchange(portal, stack)
    assert "private network address" in response.text, response.text[:800]
    assert _attempt(portal, attempt_id).error_code == "upstream_refused"
    assert resolver.calls == [HOST]  # the token request, and nothing after it
    assert connects == [] and upstream.count() == 0


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security(QUOTE)
def test_proxy_and_function_to_private_address_are_refused(
    portal: Flask, upstream: Upstream, connects: list[tuple[str, int]], address: str
) -> None:
    add_account(
        portal,
        "u-proxy",
        "self-keys",
        {"type": "api_key", "api_key": "k-1", "account_fields": {"host": HOST}},
    )
    client = portal.test_client()
    resolver = _resolve_with(portal, Resolver(address))
    proxied = fetch(client, "/portal/api/v1/proxy/self-keys/things", headers=server_headers("u-proxy"))
    assert proxied.status_code == 403
    assert proxied.json["error"] == "upstream_refused"
    assert set(proxied.json) == {"error", "message", "error_details"}
    invoked = client.post(
        "/portal/api/v1/functions/self-keys-thing/invoke",
        json={"params": {}},
        headers=server_headers("u-proxy"),
    )
    assert invoked.status_code == 403, invoked.text[:500]
    assert invoked.json["error"] == "upstream_refused"
    assert resolver.calls == [HOST, HOST]
    assert connects == [] and upstream.count() == 0


# ------------------------------------------------------------------ DNS rebinding: pinned


@pytest.fixture
def decoy(upstream: Upstream) -> Iterator[list[str]]:
    """A server on 127.0.0.2, same port as the upstream: where a second lookup would lead."""
    hits: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        hits.append(environ.get("PATH_INFO", ""))
        return Response("decoy")(environ, start_response)

    server = ServerThread("127.0.0.2", upstream.server.port).start(app)
    try:
        yield hits
    finally:
        server.stop()


@pytest.mark.security(QUOTE)
def test_api_key_verification_connects_to_the_checked_address(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    decoy: list[str],
    connects: list[tuple[str, int]],
) -> None:
    """127.0.0.1 is allowed; a second lookup would say 127.0.0.2 (not allowed, and a decoy
    server listens there). The one request is served by 127.0.0.1, with the name as Host."""
    resolver = _resolve_with(portal, Resolver("127.0.0.1", "127.0.0.2"))
    response, attempt_id = _connect_form(portal, stack, "self-keys", {"api_key": "k-1"})
    assert response.status_code == 200, response.text[:800]
    assert _attempt(portal, attempt_id).status == "connected"
    [seen] = upstream.requests_to("/me")
    assert seen.headers["host"] == f"{HOST}:{upstream.server.port}"
    assert seen.headers["x-test-key"] == "k-1"
    assert resolver.calls == [HOST]
    assert connects == [("127.0.0.1", upstream.server.port)]
    assert decoy == []


@pytest.mark.security(QUOTE)
def test_proxy_and_function_connect_to_the_checked_address(
    portal: Flask, upstream: Upstream, decoy: list[str], connects: list[tuple[str, int]]
) -> None:
    add_account(
        portal,
        "u-pin",
        "self-keys",
        {"type": "api_key", "api_key": "k-1", "account_fields": {"host": HOST}},
    )
    client = portal.test_client()
    resolver = _resolve_with(portal, Resolver("127.0.0.1", "127.0.0.2"))
    proxied = fetch(client, "/portal/api/v1/proxy/self-keys/things?q=1", headers=server_headers("u-pin"))
    assert proxied.status_code == 200, proxied.text[:500]
    assert resolver.calls == [HOST]
    resolver = _resolve_with(portal, Resolver("127.0.0.1", "127.0.0.2"))
    invoked = client.post(
        "/portal/api/v1/functions/self-keys-thing/invoke",
        json={"params": {}},
        headers=server_headers("u-pin"),
    )
    assert invoked.status_code == 200, invoked.text[:500]
    assert invoked.json["network_code"] == 200
    assert resolver.calls == [HOST]
    [thing] = upstream.requests_to("/api/things")
    assert thing.query == "q=1" and thing.headers["x-test-key"] == "k-1"
    [function] = upstream.requests_to("/api/thing")
    for request in (thing, function):
        assert request.headers["host"] == f"{HOST}:{upstream.server.port}"
    assert {address for address, _ in connects} == {"127.0.0.1"}
    assert decoy == []


@pytest.mark.security(QUOTE)
def test_oauth_exchange_identity_and_refresh_use_the_checked_address(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    decoy: list[str],
    connects: list[tuple[str, int]],
) -> None:
    """Authlib's sessions (code exchange) and the portal's own (refresh) are pinned too:
    one lookup per request, each answered 127.0.0.1, every request served there."""
    resolver = _resolve_with(portal, Resolver("127.0.0.1"))
    response, attempt_id = _oauth_code_exchange(portal, stack)
    assert _attempt(portal, attempt_id).status == "connected", response.text[:800]
    assert [r.path for r in upstream.received] == ["/token", "/me"]
    assert resolver.calls == [HOST, HOST]
    state = portal.extensions["portal"]
    app = state.catalog.get("self-oauth").resolve({"host": HOST})
    refreshed = state.oauth.refresh(app, "rt-1")
    assert refreshed["access_token"] == "at-1"
    assert [r.path for r in upstream.received] == ["/token", "/me", "/token"]
    assert resolver.calls == [HOST, HOST, HOST]
    for request in upstream.received:
        assert request.headers["host"] == f"{HOST}:{upstream.server.port}"
    assert {address for address, _ in connects} == {"127.0.0.1"}
    assert decoy == []
