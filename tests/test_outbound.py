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
from conftest import continue_url, parse_form
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
            "/.well-known/oauth-authorization-server": lambda request: _json(
                {
                    "issuer": f"http://{HOST}",
                    "authorization_endpoint": f"http://{HOST}/authorize",
                    "token_endpoint": f"http://{HOST}/token",
                }
            ),
        }
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _plain_http_test_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the catalog load the test apps below, whose URLs are ``http://{host}:<port>``.

    The catalog refuses plain ``http`` to any host but a loopback literal (SECURITY.md: catalog
    URLs), and an end-user-chosen ``{host}`` is not one. These upstreams are plain-HTTP
    loopback servers that the tests' resolver maps the chosen names to, so this module admits
    plain ``http://<name>:<port>`` (the catalog checks ``{host}`` filled with a sample name): a
    stand-in, said here as the brief asks. TLS to a pinned
    name is tested for real in the ``*_speaks_tls_*`` tests.
    """
    import re

    from portal import catalog

    real = catalog.is_catalog_url
    test_url = re.compile(r"http://[a-z0-9.-]+:\d+(/|$)")
    monkeypatch.setattr(catalog, "is_catalog_url", lambda v: real(v) or bool(test_url.match(v)))


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
        f'  revoke_url: "{base}/revoke"\n  scopes: [read]\n'
    )
    (folder / "self-discovery.yaml").write_text(
        "slug: self-discovery\ntitle: Self Discovery\n" + common + "auth:\n  type: oauth2\n"
        f'  server_metadata_url: "{base}/.well-known/oauth-authorization-server"\n'
        "  scopes: [read]\n"
    )
    return folder


@pytest.fixture
def portal(make_app: Any, tmp_path: Path, upstream: Upstream) -> Flask:
    app: Flask = make_app(
        PORTAL_CATALOG_PATHS=[str(_catalog(tmp_path / "apps", upstream.server.port))],
        PORTAL_APPS={
            "self-oauth": {"client_id": "cid", "client_secret": "csecret"},
            "self-discovery": {"client_id": "cid", "client_secret": "csecret"},
        },
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
@pytest.mark.security("Every outbound request to an end-user-chosen host")
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
@pytest.mark.security("Every outbound request to an end-user-chosen host")
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
    location = urlsplit(continue_url(started.status_code, started.text))
    assert location.hostname == HOST  # the browser goes there, not the portal
    state = parse_qs(location.query)["state"][0]
    callback = client.get(f"/portal/oauth/self-oauth/callback?code=c1&state={state}")
    return callback, ticket["attempt_id"]


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security("Every outbound request to an end-user-chosen host")
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
    state = portal.extensions["portal"]
    app = state.catalog.get("self-oauth").resolve({"host": HOST})
    assert state.oauth.revoke(app, {"refresh_token": "rt-1"}) is False  # never raises
    assert resolver.calls == [HOST, HOST]
    assert connects == [] and upstream.count() == 0


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_oauth_server_metadata_at_private_address_is_refused(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    connects: list[tuple[str, int]],
    address: str,
) -> None:
    """RFC 8414 discovery at the end user's host, fetched by Authlib's own session before the
    redirect to the provider."""
    resolver = _resolve_with(portal, Resolver(address))
    response, attempt_id = _connect_form(portal, stack, "self-discovery", {})
    assert "private network address" in response.text, response.text[:800]
    assert "Location" not in response.headers
    assert _attempt(portal, attempt_id).error_code == "upstream_refused"
    assert resolver.calls == [HOST]
    assert connects == [] and upstream.count() == 0


@pytest.mark.parametrize("address", REFUSED)
@pytest.mark.security("Every outbound request to an end-user-chosen host")
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
    proxied = fetch(
        client, "/portal/api/v1/proxy/self-keys/things", headers=server_headers("u-proxy")
    )
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


@pytest.mark.security("Every outbound request to an end-user-chosen host")
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


@pytest.mark.security("Every outbound request to an end-user-chosen host")
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
    proxied = fetch(
        client, "/portal/api/v1/proxy/self-keys/things?q=1", headers=server_headers("u-pin")
    )
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


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_oauth_exchange_identity_and_refresh_use_the_checked_address(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    decoy: list[str],
    connects: list[tuple[str, int]],
) -> None:
    """Authlib's sessions (code exchange) and the portal's own (refresh, revocation) are
    pinned too: one lookup per request, each answered 127.0.0.1, every request served there."""
    resolver = _resolve_with(portal, Resolver("127.0.0.1"))
    response, attempt_id = _oauth_code_exchange(portal, stack)
    assert _attempt(portal, attempt_id).status == "connected", response.text[:800]
    assert [r.path for r in upstream.received] == ["/token", "/me"]
    assert resolver.calls == [HOST, HOST]
    state = portal.extensions["portal"]
    app = state.catalog.get("self-oauth").resolve({"host": HOST})
    refreshed = state.oauth.refresh(app, "rt-1")
    assert refreshed["access_token"] == "at-1"
    assert state.oauth.revoke(app, {"refresh_token": "rt-1"}) is True
    assert [r.path for r in upstream.received] == ["/token", "/me", "/token", "/revoke"]
    assert resolver.calls == [HOST] * 4
    for request in upstream.received:
        assert request.headers["host"] == f"{HOST}:{upstream.server.port}"
    assert {address for address, _ in connects} == {"127.0.0.1"}
    assert decoy == []


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_oauth_server_metadata_uses_the_checked_address(
    portal: Flask,
    stack: DemoStack,
    upstream: Upstream,
    decoy: list[str],
    connects: list[tuple[str, int]],
) -> None:
    resolver = _resolve_with(portal, Resolver("127.0.0.1", "127.0.0.2"))
    response, _ = _connect_form(portal, stack, "self-discovery", {})
    assert continue_url(response.status_code, response.text).startswith(f"http://{HOST}/authorize?")
    [metadata] = upstream.received
    assert metadata.path == "/.well-known/oauth-authorization-server"
    assert metadata.headers["host"] == f"{HOST}:{upstream.server.port}"
    assert resolver.calls == [HOST]
    assert connects == [("127.0.0.1", upstream.server.port)]
    assert decoy == []


# ------------------------------------------------------------------ HTTPS: SNI and the name


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for HOST only (no IP address in it), minted
    with ``cryptography``: ``(ca.pem, cert.pem, key.pem)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outbound test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, Path]) -> Iterator[tuple[int, list[str | None]]]:
    """A real HTTPS server on 127.0.0.1 presenting the HOST certificate; answers the Host
    header it got. Yields ``(port, server names sent in the TLS ClientHello)``."""
    _, cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment]

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return _json({"host": request.headers.get("Host"), "path": request.path})(
            environ, start_response
        )

    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1], names
    finally:
        server.shutdown()
        server.server_close()


def _loopback_policy(resolver: Resolver) -> outbound.Outbound:
    return outbound.Outbound(outbound.parse_networks(["127.0.0.1/32"]), resolver)


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_pinned_requests_session_speaks_tls_to_the_name(
    tls_files: tuple[Path, Path, Path],
    tls_server: tuple[int, list[str | None]],
    connects: list[tuple[str, int]],
) -> None:
    """The identity and OAuth sessions' adapter: connected to 127.0.0.1, yet SNI, Host and the
    certificate check are the name (the certificate names no IP address, so a check against
    the address would fail)."""
    port, names = tls_server
    resolver = Resolver("127.0.0.1", "127.0.0.2")
    with _loopback_policy(resolver).session() as session:
        answer = session.get(f"https://{HOST}:{port}/x", verify=str(tls_files[0]), timeout=10)
    assert answer.json() == {"host": f"{HOST}:{port}", "path": "/x"}
    assert names == [HOST]
    assert resolver.calls == [HOST]
    assert connects == [("127.0.0.1", port)]


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_pinned_session_still_checks_the_certificate(
    tls_files: tuple[Path, Path, Path],
    tls_server: tuple[int, list[str | None]],
    connects: list[tuple[str, int]],
) -> None:
    """Pinning does not switch the check off: another name on the same address fails."""
    port, names = tls_server
    other = "other.selfhosted.example"
    with _loopback_policy(Resolver("127.0.0.1")).session() as session:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://{other}:{port}/x", verify=str(tls_files[0]), timeout=10)
    assert names == [other]


@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_proxy_send_speaks_tls_to_the_name(
    monkeypatch: pytest.MonkeyPatch,
    tls_files: tuple[Path, Path, Path],
    tls_server: tuple[int, list[str | None]],
    connects: list[tuple[str, int]],
) -> None:
    """The proxy's own send path (urllib3) with a pinned address. The proxy trusts certifi's
    bundle; here its pool manager trusts the test CA instead (the only substitution)."""
    from types import SimpleNamespace

    from portal import proxy
    from portal.catalog import load_catalog

    port, names = tls_server
    monkeypatch.setattr(
        proxy,
        "_http",
        urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(tls_files[0])),
    )
    mattermost = load_catalog(environ={}).get("mattermost")
    assert mattermost is not None
    app = mattermost.resolve({"host": HOST})
    resolver = Resolver("127.0.0.1", "127.0.0.2")
    state = SimpleNamespace(
        outbound=_loopback_policy(resolver), config={"PORTAL_HTTP_TIMEOUT": 10.0}
    )
    url = f"https://{HOST}:{port}/api/v4/users/me"
    pin = proxy.ensure_public_host(state, app, HOST)  # type: ignore[arg-type]
    assert pin == outbound.Pinned(HOST, "127.0.0.1")
    kwargs = outbound.pool_kwargs("https", HOST)
    assert kwargs == {"server_hostname": HOST, "assert_hostname": HOST}
    for _ in range(2):  # one lookup per request; the address is the checked one each time
        response = proxy._send(
            state,  # type: ignore[arg-type]
            app,
            {"type": "api_key", "api_key": "k"},
            "GET",
            url,
            [],
            {},
            None,
            pin,
        )
        assert json.loads(response.read()) == {"host": f"{HOST}:{port}", "path": "/api/v4/users/me"}
        response.release_conn()
    assert names == [HOST, HOST]  # the test server closes every connection
    assert resolver.calls == [HOST]
    assert connects == [("127.0.0.1", port)] * 2
    # Pools are kept per (address, port, name): the same checked address reuses its pool,
    # another address (a later, different answer) gets its own.
    same = outbound.pinned_pool(proxy._http, "https", pin, port)
    assert same is outbound.pinned_pool(proxy._http, "https", pin, port)
    assert same is not outbound.pinned_pool(
        proxy._http, "https", outbound.Pinned(HOST, "127.0.0.2"), port
    )
    assert (same.host, same.port) == ("127.0.0.1", port)


# ------------------------------------------------------------------ the policy itself


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("::ffff:93.184.215.14", True),  # IPv4-mapped: judged by the IPv4 address
        ("64:ff9b::93.184.215.14", True),  # NAT64 (RFC 6052): likewise
        ("10.0.0.5", False),
        ("172.16.3.4", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # shared (RFC 6598)
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("240.0.0.1", False),  # reserved
        ("224.0.0.1", False),  # multicast
        ("198.18.0.1", False),  # benchmarking
        ("::1", False),
        ("::", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("fec0::1", False),  # deprecated site-local
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::10.0.0.5", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::a00:5", False),  # local-use NAT64 (RFC 8215)
        ("2002:a00:5::1", False),  # 6to4 of 10.0.0.5
    ],
)
@pytest.mark.security("Every outbound request to an end-user-chosen host")
def test_only_global_unicast_addresses_are_permitted(address: str, public: bool) -> None:
    assert outbound.Outbound().permitted(address) is public


def test_allowed_networks_let_exactly_their_addresses_through() -> None:
    policy = outbound.Outbound(outbound.parse_networks(["127.0.0.1/32", "10.20.0.0/16"]))
    assert policy.permitted("127.0.0.1") and policy.permitted("10.20.3.4")
    assert not policy.permitted("127.0.0.2") and not policy.permitted("10.21.0.1")
    assert not policy.permitted("::ffff:127.0.0.1")  # the mapped form is not listed
    with pytest.raises(ValueError, match="PORTAL_OUTBOUND_ALLOWED_NETWORKS"):
        outbound.parse_networks(["127.0.0.1/8"])  # host bits set: a typo, not a network


def test_every_resolved_address_is_checked_and_the_first_is_used() -> None:
    policy = outbound.Outbound(resolver=lambda host: ["93.184.215.14", "10.0.0.5"])
    with pytest.raises(outbound.HostRefused) as info:
        policy.pick(HOST)
    assert info.value.address == "10.0.0.5"
    policy.resolver = lambda host: ["2606:4700::1111", "93.184.215.14"]
    assert policy.pick(HOST) == "2606:4700::1111"
    policy.resolver = lambda host: []
    with pytest.raises(outbound.HostUnresolved):
        policy.pick(HOST)


def test_invalid_allowed_network_stops_start_up(make_app: Any) -> None:
    from portal.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not a network"):
        make_app(PORTAL_OUTBOUND_ALLOWED_NETWORKS=["not-a-network"])


def test_fixed_host_apps_are_never_resolved_by_the_proxy() -> None:
    """The proxy's hot path for catalog-fixed hosts takes no lookup at all."""
    from types import SimpleNamespace

    from portal import proxy
    from portal.catalog import load_catalog

    def no_lookup(host: str) -> list[str]:
        raise AssertionError(f"resolved {host}")

    slack = load_catalog(environ={}).get("slack")
    assert slack is not None and not outbound.user_chosen(slack)
    state = SimpleNamespace(outbound=outbound.Outbound(resolver=no_lookup))
    assert proxy.ensure_public_host(state, slack, "slack.com") is None  # type: ignore[arg-type]
