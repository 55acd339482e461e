"""The credential-injecting API proxy (SECURITY.md "Proxy and tokens"), over real HTTP.

Two kinds of upstream: the live sandbox provider of the ``stack`` (its ``/_sandbox/stats``
``api_requests`` counter says how many requests reached its API), and :class:`Upstream`, a
loopback HTTP server that records every request it gets, whatever the path, and answers what
the test tells it to (echo, redirect, slow answer, cookies). Apps pointing at an
:class:`Upstream` are defined by a YAML file in a temporary catalog directory and served by an
in-process portal (``make_app``) driven with the Flask test client.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from conftest import Api, Browser, connect_sandbox, new_session, parse_form, sandbox_stats
from flask import Flask
from werkzeug.wrappers import Request, Response

from portal import accounts as account_service
from portal import user_hash
from portal._serving import ServerThread
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack, sandbox_app_settings
from portal.errors import InvalidRequest
from portal.proxy import build_url

ERROR_KEYS = {"error", "message", "error_details"}


# --------------------------------------------------------------------------- helpers


@dataclass
class Recorded:
    """One request an :class:`Upstream` received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Request], Response]


def echo(request: Request) -> Response:
    """Answer 200 with what was received (method, path, query, headers)."""
    return Response(
        json.dumps(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode(),
                "headers": dict(request.headers),
                "body": request.get_data(as_text=True),
            }
        ),
        content_type="application/json",
    )


@dataclass
class Upstream:
    """A loopback HTTP server standing in for an app's API (or OAuth provider).

    Every request is recorded before any routing (a raw WSGI app, so even paths no router would
    match are seen). ``routes`` maps an exact path to a handler; anything else is echoed.
    """

    routes: dict[str, Handler] = field(default_factory=dict)
    received: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = ServerThread("127.0.0.1", 0)
        self.url = self.server.url
        self.server.start(self._wsgi)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.received.append(
                Recorded(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
        handler = self.routes.get(request.path, echo)
        return handler(request)(environ, start_response)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.stop()


def write_app(folder: Path, slug: str, auth: str, api_base: str = "{base_url}/v1") -> Path:
    """A catalog YAML for a test app; ``auth`` is the YAML ``auth:`` block (indented 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.yaml"
    path.write_text(
        f"slug: {slug}\n"
        f"title: Test {slug}\n"
        "description: An app used by the proxy tests.\n"
        "categories: [Testing]\n"
        "docs_url: https://docs.example.com/\n"
        f"auth:\n{auth}"
        f'api:\n  base_url: "{api_base}"\n',
        "utf-8",
    )
    return path


API_KEY_AUTH = "  type: api_key\n  placement:\n    in: header\n    name: X-Test-Key\n"
TEST_KEY = "tk-secret-0123456789"


def app_with_upstream(
    make_app: Any, tmp_path: Path, stack: DemoStack, base_url: str, **overrides: Any
) -> Flask:
    """A portal whose app ``echo-keys`` (API key in ``X-Test-Key``) has its API at
    ``base_url``/v1."""
    write_app(tmp_path / "catalog", "echo-keys", API_KEY_AUTH)
    return make_app(  # type: ignore[no-any-return]
        PORTAL_CATALOG_PATHS=[str(tmp_path / "catalog")],
        PORTAL_APPS={
            **sandbox_app_settings(stack.sandbox.url),
            "echo-keys": {"base_url": base_url},
        },
        **overrides,
    )


def add_account(
    app: Flask,
    user_id: str,
    slug: str,
    credentials: dict[str, Any],
    external_id: str = "ext-1",
    expires_at: Any = None,
) -> str:
    """Insert a connected account directly through the portal's store; returns its id."""
    state = app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user_id,
            app=slug,
            external_id=external_id,
            label=f"{slug} account",
            scopes=[],
            credentials=credentials,
            expires_at=expires_at,
        )
        return account.id


def fetch(client: Any, path: str, method: str = "GET", **kw: Any) -> Any:
    """A test-client request whose streamed body is read and closed before returning (the
    proxy streams; an unread body would keep the request context open)."""
    response = client.open(path, method=method, **kw)
    response.get_data()
    response.close()
    return response


def server_headers(user_id: str) -> dict[str, str]:
    """Server-to-server authentication: the app secret as bearer, naming the end user."""
    return {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user_id}


def api_requests(stack: DemoStack) -> int:
    return int(sandbox_stats(stack)["api_requests"])


def proxy(api: Api, path: str, method: str = "GET", **kw: Any) -> requests.Response:
    return requests.request(
        method,
        f"{api.base}/proxy/{path}",
        headers={**api.headers, **kw.pop("headers", {})},
        timeout=15,
        **kw,
    )


def connect_form(api: Api, app: str, fields: dict[str, str]) -> None:
    """Connect an API-key or Basic app through its real connect form."""
    browser = Browser()
    ticket = api.ticket(app)
    page = browser.http.get(ticket["connect_url"], timeout=10)
    assert page.status_code == 200, page.text[:300]
    form = parse_form(page.text)
    action = urljoin(ticket["connect_url"], form["action"])
    done = browser.http.post(action, data={**form["fields"], **fields}, timeout=10)
    assert done.status_code == 200, done.text[:300]


def account_ids(api: Api, app: str = "sandbox") -> list[str]:
    response = api.get(f"/connected-accounts?app={app}")
    assert response.status_code == 200
    return [a["id"] for a in response.json()["connected_accounts"]]


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The portal's one error shape ``{"error","message","error_details"}``."""
    body = response.json() if callable(response.json) else response.json
    assert response.status_code == status, body
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["error_details"], list)
    if code is not None:
        assert body["error"] == code, body
    return body  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- happy paths


def test_oauth_account_proxies_with_its_access_token(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    callback, _ = connect_sandbox(api)
    assert callback.status_code == 200
    before = api_requests(stack)

    listed = proxy(api, "sandbox/contacts", params={"limit": "2"})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert len(page["data"]) == 2 and page["next_cursor"]  # ada's seeded contacts, paginated
    assert listed.headers["Content-Type"].startswith("application/json")
    # Only the portal session token came from the caller: the sandbox accepted the request, so
    # the account's access token was injected.
    me = proxy(api, "sandbox/me")
    assert me.status_code == 200 and me.json()["username"] == "ada"

    created = proxy(
        api, "sandbox/contacts", "POST", json={"name": "Proxy Test", "email": "p@example.com"}
    )
    assert created.status_code == 201, created.text  # status passes through
    contact = created.json()
    fetched = proxy(api, f"sandbox/contacts/{contact['id']}")
    assert fetched.json()["email"] == "p@example.com"
    assert api_requests(stack) - before == 4  # one upstream request per proxied call


def test_api_key_app_proxies_with_the_key_in_its_header(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_form(api, "sandbox-keys", {"api_key": "sk_demo_ada"})
    before = api_requests(stack)
    response = proxy(api, "sandbox-keys/me")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "ada"
    contacts = proxy(api, "sandbox-keys/contacts")
    assert contacts.status_code == 200 and contacts.json()["data"]
    assert api_requests(stack) - before == 2


def test_basic_app_proxies_with_basic_credentials(stack: DemoStack, sandbox: str, api: Api) -> None:
    connect_form(api, "sandbox-basic", {"username": "ada", "password": "lovelace"})
    response = proxy(api, "sandbox-basic/me")
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "ada"


def test_credential_placement_header_seen_by_upstream(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    account_id = add_account(app, "u-place", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    response = fetch(
        app.test_client(),
        f"/portal/api/v1/proxy/echo-keys/items/42?x=1&x=2&connectedAccountId={account_id}"
        "&user_id=u-place",
        headers=server_headers("u-place"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    [seen] = upstream.received
    assert seen.path == "/v1/items/42"
    assert seen.headers["x-test-key"] == TEST_KEY
    assert "authorization" not in seen.headers  # the app secret never leaves the portal
    # The caller's query is forwarded, the portal's own parameters are not.
    assert seen.query == "x=1&x=2"


# --------------------------------------------------------------------------- hostile paths

HOSTILE_PATHS = [
    "//evil.example/x",
    "http://169.254.169.254/",
    "http:%2F%2F169.254.169.254/latest",
    "@evil.example",
    "contacts@evil.example",
    "..%2fx",
    "..%2F..%2Foauth%2Frevoke",
    "%2e%2e/x",
    "contacts/%2e%2e/%2e%2e/_sandbox/reset",
    "%252e%252e/x",
    "%252e%252e%252f_sandbox%252freset",
    "a%0d%0aX:%20y",
    "a%5cb",
    "..%5c..%5cx",
    "a\\b",
]
# Werkzeug's router answers these before the proxy view sees them: ``//`` is merged with a
# 308 redirect (to the proxy route of the merged path), and a decoded CR/LF does not match the
# ``<path:>`` converter (404 HTML page, not the JSON error shape).
ROUTER_HANDLED = {"//evil.example/x", "a%0d%0aX:%20y"}


def raw_request(
    url: str, raw_path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw_path`` byte for byte (``requests``/urllib3 would normalise dot segments)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def connected_api(stack: DemoStack) -> Api:
    """One user with a connected sandbox account, shared by the hostile-path tests."""
    api = new_session(stack, f"user-hostile-{uuid.uuid4().hex[:8]}")
    callback, _ = connect_sandbox(api)
    assert callback.status_code == 200
    return api


@pytest.mark.parametrize("path", [p for p in HOSTILE_PATHS if p not in ROUTER_HANDLED])
@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_hostile_path_is_refused_with_no_outbound_request(
    stack: DemoStack, sandbox: str, connected_api: Api, path: str
) -> None:
    before = sandbox_stats(stack)
    status, headers, body = raw_request(
        stack.portal.url, f"/portal/api/v1/proxy/sandbox/{path}", connected_api.headers
    )
    assert status == 400, body[:300]
    payload = json.loads(body)
    assert set(payload) == ERROR_KEYS and payload["error"] == "invalid_path"
    assert sandbox_stats(stack) == before  # nothing reached the sandbox, not even a reset


@pytest.mark.parametrize("path", sorted(ROUTER_HANDLED))
def test_hostile_path_the_router_sees_first_sends_nothing(
    stack: DemoStack, sandbox: str, connected_api: Api, path: str
) -> None:
    before = sandbox_stats(stack)
    status, headers, _ = raw_request(
        stack.portal.url, f"/portal/api/v1/proxy/sandbox/{path}", connected_api.headers
    )
    assert status != 200
    if 300 <= status < 400:
        # Only ever back to the portal's own proxy route; never a URL on another host.
        target = urlsplit(headers["Location"])
        assert target.path.startswith("/portal/api/v1/proxy/sandbox/")
        assert target.netloc in ("", urlsplit(stack.portal.url).netloc)
    assert sandbox_stats(stack) == before


@pytest.mark.parametrize("path", sorted(ROUTER_HANDLED))
def test_hostile_path_the_router_sees_first_is_a_json_4xx(
    stack: DemoStack, sandbox: str, connected_api: Api, path: str
) -> None:
    status, headers, body = raw_request(
        stack.portal.url, f"/portal/api/v1/proxy/sandbox/{path}", connected_api.headers
    )
    assert status == 400
    assert set(json.loads(body)) == ERROR_KEYS
    assert json.loads(body)["error"] == "invalid_path"


@pytest.mark.parametrize("path", HOSTILE_PATHS)
@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_hostile_path_reaches_no_upstream_at_all(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream, path: str
) -> None:
    """Against a recorder that sees every request on its host, whatever the path."""
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    add_account(app, "u-hostile", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    response = fetch(
        app.test_client(),
        f"/portal/api/v1/proxy/echo-keys/{path}",
        headers=server_headers("u-hostile"),
    )
    assert 400 <= response.status_code < 500 or 300 <= response.status_code < 400
    if path not in ROUTER_HANDLED:
        assert_error(response, 400, "invalid_path")
    assert upstream.count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "/etc/passwd",
        "http://169.254.169.254/",
        "https://evil.example",
        "HTTP://evil.example/",
        "evil.example:443/x",
        "javascript:alert(1)",
        "@evil.example",
        "user@evil.example/x",
        "..",
        "../x",
        "contacts/../../x",
        "./contacts",
        "..%2fx",
        "..%2Fx",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "%252e%252e/x",
        "%25252e%25252e/x",
        "%2525252e%2525252e/x",
        "%2f%2fevil.example",
        "a%0d%0aX:%20y",
        "a\r\nX: y",
        "a\nb",
        "a%00b",
        "a\tb",
        "a b",
        "a\\b",
        "..\\x",
        "a%5cb",
        "",
    ],
)
@pytest.mark.security("Path that is absolute or escapes the base URL")
def test_build_url_refuses_paths_that_could_leave_the_base(path: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_url("http://api.example:8080/v1", path)
    assert caught.value.error_code == "invalid_path"
    assert caught.value.code == 400


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("contacts", "http://api.example:8080/v1/contacts"),
        ("contacts/42", "http://api.example:8080/v1/contacts/42"),
        ("a%2Fb", "http://api.example:8080/v1/a/b"),
        ("q?x=1", "http://api.example:8080/v1/q%3Fx=1"),  # no query smuggled in the path
        ("q#frag", "http://api.example:8080/v1/q%23frag"),
        ("caf\u00e9", "http://api.example:8080/v1/caf%C3%A9"),
        ("a..b/c.d", "http://api.example:8080/v1/a..b/c.d"),
    ],
)
def test_build_url_keeps_relative_paths_under_the_base(path: str, url: str) -> None:
    built = build_url("http://api.example:8080/v1/", path)
    assert built == url
    assert built.startswith("http://api.example:8080/v1/")


# --------------------------------------------------------------------------- redirects, headers


@pytest.mark.security("Upstream redirect to another host")
def test_upstream_redirect_to_another_host_is_not_followed(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    elsewhere = Upstream()
    try:
        target = f"{elsewhere.url}/steal?x=1"
        upstream.routes["/v1/go"] = lambda r: Response(
            "moved", status=302, headers={"Location": target}
        )
        upstream.routes["/v1/go-same"] = lambda r: Response(
            "moved", status=307, headers={"Location": "/v1/landing"}
        )
        app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
        add_account(app, "u-redirect", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
        client = app.test_client()
        response = fetch(
            client, "/portal/api/v1/proxy/echo-keys/go", headers=server_headers("u-redirect")
        )
        assert response.status_code == 302
        assert response.headers["Location"] == target  # answered as is
        # Not even a same-host redirect is followed by the proxy.
        same = fetch(
            client, "/portal/api/v1/proxy/echo-keys/go-same", headers=server_headers("u-redirect")
        )
        assert same.status_code == 307
        time.sleep(0.2)
        assert elsewhere.count() == 0
        assert [r.path for r in upstream.received] == ["/v1/go", "/v1/go-same"]
    finally:
        elsewhere.stop()


@pytest.mark.security("Caller-supplied `Authorization`, `Cookie`, `Host`")
def test_caller_headers_are_filtered_and_set_cookie_dropped(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    def teapot(request: Request) -> Response:
        response = echo(request)
        response.status_code = 418
        response.headers["Set-Cookie"] = "upstream_sid=abc; Path=/"
        response.headers.add("Set-Cookie", "other=1")
        response.headers["X-Upstream"] = "dropped"
        response.headers["ETag"] = '"v1"'
        return response

    upstream.routes["/v1/teapot"] = teapot
    upstream.routes["/v1/create"] = lambda r: Response(
        "{}",
        status=201,
        headers={"Location": "/v1/create/1", "X-Request-Id": "r-1"},
        content_type="application/json",
    )
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    add_account(app, "u-headers", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    client = app.test_client()
    caller = {
        **server_headers("u-headers"),
        "Cookie": "portal_session=secret-cookie; host_session=h",
        "Host": "evil.example",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=10.0.0.1;host=evil.example",
        "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
        "X-API-Key": "sk_caller_supplied",
        "X-Test-Key": "caller-tries-to-override",
        "X-Portal-Extra": "nope",
        "Accept": "application/json",
        "Idempotency-Key": "idem-1",
        "If-None-Match": '"v0"',
    }
    response = fetch(
        client,
        "/portal/api/v1/proxy/echo-keys/teapot",
        "POST",
        headers=caller,
        json={"hello": "world"},
    )
    assert response.status_code == 418
    [seen] = upstream.received
    # Dropped: caller's auth, cookies, Host, proxy and forwarding headers, unknown headers.
    for name in (
        "authorization",
        "cookie",
        "x-forwarded-for",
        "x-forwarded-host",
        "forwarded",
        "proxy-authorization",
        "x-api-key",
        "x-portal-user-id",
        "x-portal-extra",
    ):
        assert name not in seen.headers, name
    assert seen.headers["host"] == urlsplit(upstream.url).netloc
    assert seen.headers["x-test-key"] == TEST_KEY  # the stored key, not the caller's
    # Forwarded: the allow-listed ones, and the body.
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["idempotency-key"] == "idem-1"
    assert seen.headers["if-none-match"] == '"v0"'
    assert seen.headers["content-type"] == "application/json"
    assert json.loads(seen.body) == {"hello": "world"}
    # The way back: no upstream cookie nor unknown header; allow-listed headers and the body
    # pass (tests/test_proxy_response_headers.py has the full list).
    assert "Set-Cookie" not in response.headers
    assert "upstream_sid" not in str(response.headers)
    assert "X-Upstream" not in response.headers
    assert response.headers["ETag"] == '"v1"'
    assert response.json["method"] == "POST"

    created = fetch(
        client, "/portal/api/v1/proxy/echo-keys/create", "POST", headers=server_headers("u-headers")
    )
    assert created.status_code == 201
    assert created.headers["X-Request-Id"] == "r-1"
    assert created.headers["Location"] == "/v1/create/1"


def test_upstream_cookie_of_one_user_never_reaches_another(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    """The proxy pools connections across users; cookies must not ride along."""

    def set_cookie(request: Request) -> Response:
        response = echo(request)
        response.headers["Set-Cookie"] = "upstream_sid=alice-secret; Path=/"
        return response

    upstream.routes["/v1/login"] = set_cookie
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    add_account(app, "u-alice", "echo-keys", {"type": "api_key", "api_key": "key-alice"})
    add_account(app, "u-bob", "echo-keys", {"type": "api_key", "api_key": "key-bob"})
    client = app.test_client()
    assert (
        fetch(
            client, "/portal/api/v1/proxy/echo-keys/login", headers=server_headers("u-alice")
        ).status_code
        == 200
    )
    for user in ("u-bob", "u-alice"):
        assert (
            fetch(
                client, "/portal/api/v1/proxy/echo-keys/me", headers=server_headers(user)
            ).status_code
            == 200
        )
    later = upstream.requests_to("/v1/me")
    assert [r.headers["x-test-key"] for r in later] == ["key-bob", "key-alice"]
    assert all("cookie" not in r.headers for r in later)


def test_session_token_never_reaches_the_upstream(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url)
    add_account(app, "u-session", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    client = app.test_client()
    session = client.post(
        "/portal/api/v1/sessions",
        json={
            "appKey": DEMO_APP_KEY,
            "userId": "u-session",
            "hash": user_hash(DEMO_APP_SECRET, "u-session"),
        },
        headers={"Origin": stack.host.url},
    )
    assert session.status_code == 201
    token = session.json["token"]
    response = fetch(
        client,
        "/portal/api/v1/proxy/echo-keys/whoami",
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
    )
    assert response.status_code == 200
    [seen] = upstream.received
    assert token not in json.dumps(seen.headers) and "authorization" not in seen.headers
    assert "origin" not in seen.headers


# --------------------------------------------------------------------------- timeouts, errors


def test_upstream_timeout_is_504_and_unreachable_is_502(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return echo(request)

    upstream.routes["/v1/slow"] = slow
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url, PORTAL_HTTP_TIMEOUT=0.4)
    add_account(app, "u-slow", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    client = app.test_client()
    began = time.monotonic()
    response = fetch(
        client, "/portal/api/v1/proxy/echo-keys/slow", headers=server_headers("u-slow")
    )
    assert time.monotonic() - began < 1.4
    body = assert_error(response, 504, "upstream_timeout")
    assert TEST_KEY not in json.dumps(body)

    dead = app_with_upstream(make_app, tmp_path / "dead", stack, f"http://127.0.0.1:{free_port()}")
    add_account(dead, "u-dead", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    unreachable = fetch(
        dead.test_client(),
        "/portal/api/v1/proxy/echo-keys/anything",
        headers=server_headers("u-dead"),
    )
    body = assert_error(unreachable, 502, "upstream_error")
    assert "127.0.0.1" not in body["message"]  # no internal address in the message


def test_body_over_the_limit_is_413_and_not_sent(
    make_app: Any, tmp_path: Path, stack: DemoStack, upstream: Upstream
) -> None:
    app = app_with_upstream(make_app, tmp_path, stack, upstream.url, PORTAL_PROXY_MAX_BODY=1000)
    add_account(app, "u-big", "echo-keys", {"type": "api_key", "api_key": TEST_KEY})
    server = ServerThread("127.0.0.1", 0).start(app)  # real HTTP, for a chunked body
    try:
        url = f"{server.url}/portal/api/v1/proxy/echo-keys/upload"
        headers = server_headers("u-big")
        fits = requests.post(url, data=b"x" * 1000, headers=headers, timeout=10)
        assert fits.status_code == 200, fits.text
        assert upstream.received[-1].body == b"x" * 1000
        sized = requests.post(url, data=b"x" * 1001, headers=headers, timeout=10)
        assert_error(sized, 413, "payload_too_large")
        chunked = requests.post(
            url, data=iter([b"x" * 600, b"x" * 600]), headers=headers, timeout=10
        )
        assert "Content-Length" not in chunked.request.headers
        assert chunked.status_code == 413, (chunked.text, [len(r.body) for r in upstream.received])
        assert set(chunked.json()) == ERROR_KEYS
        chunked_fits = requests.post(
            url, data=iter([b"y" * 500, b"y" * 500]), headers=headers, timeout=10
        )
        assert chunked_fits.status_code == 200
        assert upstream.received[-1].body == b"y" * 1000  # whole, not truncated
        # Only the bodies that fit were sent: nothing truncated ever reached the upstream.
        assert [len(r.body) for r in upstream.received] == [1000, 1000]
    finally:
        server.stop()


# --------------------------------------------------------------------------- which account


@pytest.mark.security("Account id of user A requested with user B's session")
def test_another_users_account_id_is_404_and_sends_nothing(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api)
    [account_id] = account_ids(api)
    other = new_session(stack, api.user_id + "-other")
    before = api_requests(stack)
    response = proxy(other, f"sandbox/me?connectedAccountId={account_id}")
    assert_error(response, 404, "not_found")
    unknown = proxy(api, "sandbox/me?connectedAccountId=ca_doesnotexist")
    assert_error(unknown, 404, "not_found")
    # A session user cannot pick another user with the server-to-server header.
    spoof = proxy(other, "sandbox/me", headers={"X-Portal-User-Id": api.user_id})
    assert_error(spoof, 404, "not_connected")
    spoof_query = proxy(other, f"sandbox/me?user_id={api.user_id}")
    assert_error(spoof_query, 404, "not_connected")
    assert api_requests(stack) == before


def test_no_connected_account_is_404_not_connected(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    before = api_requests(stack)
    assert_error(proxy(api, "sandbox/contacts"), 404, "not_connected")
    assert_error(proxy(api, "no-such-app/contacts"), 404, "unknown_app")
    assert api_requests(stack) == before


def test_default_account_is_the_most_recently_modified(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api, user="ada")
    connect_sandbox(api, user="grace")
    assert proxy(api, "sandbox/me").json()["username"] == "grace"
    connect_sandbox(api, user="ada")  # reconnecting bumps modified_at
    assert proxy(api, "sandbox/me").json()["username"] == "ada"
    ids = account_ids(api)  # modified_at descending: [ada, grace]
    assert len(ids) == 2
    chosen = proxy(api, f"sandbox/me?connectedAccountId={ids[1]}")
    assert chosen.json()["username"] == "grace"


def test_server_to_server_caller_proxies_for_the_named_user(
    stack: DemoStack, sandbox: str, api: Api
) -> None:
    connect_sandbox(api, user="grace")
    url = f"{stack.portal.url}/portal/api/v1/proxy/sandbox/me"
    by_header = requests.get(url, headers=server_headers(api.user_id), timeout=10)
    assert by_header.status_code == 200, by_header.text
    assert by_header.json()["username"] == "grace"
    by_query = requests.get(
        url,
        params={"user_id": api.user_id},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert by_query.json()["username"] == "grace"
    nobody = requests.get(url, headers=server_headers(api.user_id + "-x"), timeout=10)
    assert_error(nobody, 404, "not_connected")
    wrong = requests.get(
        url,
        headers={"Authorization": "Bearer not-the-secret", "X-Portal-User-Id": api.user_id},
        timeout=10,
    )
    assert wrong.status_code == 401
    no_user = requests.get(url, headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"}, timeout=10)
    assert 400 <= no_user.status_code < 500


def test_sandbox_counts_api_requests_and_reset_clears_them(stack: DemoStack, sandbox: str) -> None:
    """The ``api_requests`` counter the tests above rely on counts every API request."""
    assert sandbox_stats(stack)["api_requests"] == 0
    requests.get(f"{sandbox}/api/contacts", timeout=5)  # 401, still counted
    requests.get(f"{sandbox}/api/no-such-thing", timeout=5)  # 404, still counted
    requests.get(f"{sandbox}/apikey/me", headers={"X-API-Key": "sk_demo_ada"}, timeout=5)
    requests.get(f"{sandbox}/basic/me", auth=("ada", "lovelace"), timeout=5)
    requests.get(f"{sandbox}/oauth/userinfo", timeout=5)  # not the API
    assert sandbox_stats(stack)["api_requests"] == 4
    requests.post(f"{sandbox}/_sandbox/reset", timeout=5).raise_for_status()
    assert sandbox_stats(stack)["api_requests"] == 0


# ------------------------------------------------------------- self-hosted hosts (SSRF)


def _hostname_app() -> Any:
    from portal.catalog import load_catalog

    app = load_catalog(environ={}).get("mattermost")
    assert app is not None and any(f.format == "hostname" for f in app.account_fields)
    return app


def test_user_chosen_host_resolving_to_loopback_is_refused() -> None:
    """``localhost`` resolves through /etc/hosts here (a real lookup): a self-hosted host that
    points back at the portal's machine is refused before anything is sent."""
    from portal.outbound import Outbound
    from portal.proxy import UpstreamRefused, ensure_public_host

    with pytest.raises(UpstreamRefused) as info:
        ensure_public_host(_policy(Outbound()), _hostname_app(), "localhost")
    assert info.value.code == 403 and "private network" in str(info.value)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fd00::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_user_chosen_host_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    """No DNS server runs here, so name resolution is the portal's injectable resolver,
    answering ``address`` for any name (the only mock in this file)."""
    from portal.outbound import Outbound
    from portal.proxy import UpstreamRefused, ensure_public_host

    state = _policy(Outbound(resolver=lambda host: [address]))
    with pytest.raises(UpstreamRefused):
        ensure_public_host(state, _hostname_app(), "chat.corp.example")


def test_user_chosen_public_host_is_pinned_and_unresolvable_host_is_502() -> None:
    from portal.outbound import Outbound, Pinned
    from portal.proxy import UpstreamError, ensure_public_host

    app = _hostname_app()
    with pytest.raises(UpstreamError):  # does not resolve (a real lookup of .invalid)
        ensure_public_host(_policy(Outbound()), app, "no-such-name.invalid")
    state = _policy(Outbound(resolver=lambda host: ["93.184.215.14"]))
    pinned = ensure_public_host(state, app, "chat.example.com")  # a public address passes
    assert pinned == Pinned("chat.example.com", "93.184.215.14")


def _policy(outbound: Any) -> Any:
    """The one part of the portal's state :func:`ensure_public_host` reads."""
    from types import SimpleNamespace

    return SimpleNamespace(outbound=outbound)
