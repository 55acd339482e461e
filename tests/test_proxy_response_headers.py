"""What a proxied answer carries back (SECURITY.md "Outside attacks"), in mounted mode.

The upstream is :class:`test_proxy.Upstream`, a loopback server that answers what each test
tells it to: a hostile API that returns HTML with a script-friendly ``Content-Security-Policy``,
``X-Content-Type-Options: none``, cookies and CORS headers. The portal is mounted on a host
Flask app with its own cookie login (as ``test_extension.mounted_host``), its app ``echo-keys``
pointing at the upstream; the logged-in user's requests go through the Flask test client.

Also here: paths with Tomcat/Jetty path parameters on dot segments (``..;``, ``%2e%2e;``), which
such servers resolve as ``..``, are refused before anything is sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import database_config
from flask import Flask, request, session
from test_proxy import API_KEY_AUTH, TEST_KEY, Upstream, assert_error, write_app
from werkzeug.wrappers import Request, Response

from portal import ConnectPortal, accounts
from portal.crypto import generate_key
from portal.proxy import pagination_links

#: The policy of every proxied answer: a CSP sandbox without ``allow-scripts``, nothing loads.
PROXY_CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
USER = "alice"
SLUG = "echo-keys"
#: What a hostile upstream would like the browser to apply on the portal's origin.
HOSTILE_HEADERS = [
    ("Content-Security-Policy", "script-src 'unsafe-inline'"),
    ("Content-Security-Policy-Report-Only", "default-src *; report-uri /collect"),
    ("X-Content-Type-Options", "none"),
    ("X-Frame-Options", "ALLOWALL"),
    ("Set-Cookie", "session=hijacked; Path=/"),
    ("Set-Cookie", "upstream_sid=hijacked2; Path=/; Domain=127.0.0.1"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Access-Control-Expose-Headers", "*"),
    ("Refresh", "0; url=https://evil.example/"),
    ("Link", '<https://evil.example/x.js>; rel="preload"; as="script"'),
    ("Clear-Site-Data", '"cookies", "storage"'),
    ("Permissions-Policy", "camera=*, geolocation=*"),
    ("Cross-Origin-Opener-Policy", "unsafe-none"),
    ("Cross-Origin-Embedder-Policy", "unsafe-none"),
    ("Cross-Origin-Resource-Policy", "cross-origin"),
    ("Strict-Transport-Security", "max-age=0"),
    ("Origin-Agent-Cluster", "?0"),
    ("Service-Worker-Allowed", "/"),
    ("Set-Login", "logged-in"),
    ("Referrer-Policy", "unsafe-url"),
    ("Content-Disposition", "inline"),
    ("Cache-Control", "public, max-age=31536000"),
    ("WWW-Authenticate", 'Basic realm="portal"'),
    ("Reporting-Endpoints", 'default="https://evil.example/r"'),
    ("Report-To", '{"group":"default","endpoints":[{"url":"https://evil.example/r"}]}'),
    ("NEL", '{"report_to":"default","max_age":31536000}'),
    ("Timing-Allow-Origin", "*"),
    ("SourceMap", "https://evil.example/map"),
    ("Alt-Svc", 'h2="evil.example:443"'),
    ("Speculation-Rules", '"https://evil.example/rules.json"'),
    ("Supports-Loading-Mode", "credentialed-prerender"),
    ("X-Upstream-Unknown", "dropped"),
]
HOSTILE_HTML = (
    "<!doctype html><title>upstream</title>"
    "<script>document.title = 'pwned'; fetch('/steal')</script>"
)
#: The portal's own answers to the headers it sets itself on every proxied response.
OWN_VALUES = {
    "content-security-policy": [PROXY_CONTENT_SECURITY_POLICY],
    "x-content-type-options": ["nosniff"],
    "referrer-policy": ["no-referrer"],
    "cache-control": ["no-store"],
}


def mounted_proxy_host(tmp_path: Path, upstream_url: str) -> Flask:
    """A host app with its own cookie login (``POST /login`` or ``GET /login?user=``) and the
    portal mounted on it; its only app, ``echo-keys`` (API key in ``X-Test-Key``), has its API
    at ``upstream_url``/v1, and ``alice`` has an account of it."""
    write_app(tmp_path / "catalog", SLUG, API_KEY_AUTH)
    app = Flask(f"host_{uuid.uuid4().hex[:8]}", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="host-secret",
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_CATALOG_PATHS=[str(tmp_path / "catalog")],
        PORTAL_APPS={SLUG: {"base_url": upstream_url}},
        PORTAL_ENABLED_APPS=[SLUG],
        **database_config(tmp_path, uuid.uuid4().hex),
    )
    portal = ConnectPortal()

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str:
        session["user"] = request.values["user"]
        return "ok"

    @portal.user_loader
    def current_user() -> str | None:
        return session.get("user")

    portal.init_app(app)
    state = app.extensions["portal"]
    with state.store.session() as db:
        accounts.upsert_account(
            db,
            state.sealer,
            project=state.mounted_project,
            user_id=USER,
            app=SLUG,
            external_id="ext-1",
            label="echo account",
            scopes=[],
            credentials={"type": "api_key", "api_key": TEST_KEY},
            expires_at=None,
        )
    return app


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(tmp_path: Path, upstream: Upstream) -> Any:
    """Alice's test client, logged in to the mounted host."""
    app = mounted_proxy_host(tmp_path, upstream.url)
    browser = app.test_client()
    assert browser.post("/login", data={"user": USER}).status_code == 200
    return browser


def same_origin_get(client: Any, path: str) -> Any:
    """A GET with every same-origin proof a mounted page's own script would send (the Flask-WTF
    token from the page's meta tag and ``Sec-Fetch-Site``), so the request reaches the upstream
    however strict the mounted-mode checks are."""
    page = client.get("/portal/apps").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, "no csrf-token meta tag"
    response = client.get(
        f"/portal/api/v1/proxy/{SLUG}/{path}",
        headers={"X-CSRFToken": match.group(1), "Sec-Fetch-Site": "same-origin"},
    )
    response.get_data()
    response.close()
    return response


def hostile(content_type: str | None, body: str = HOSTILE_HTML) -> Any:
    def handler(request: Request) -> Response:
        response = Response(body)
        del response.headers["Content-Type"]
        if content_type is not None:
            response.headers["Content-Type"] = content_type
        for name, value in HOSTILE_HEADERS:
            response.headers.add(name, value)
        return response

    return handler


def assert_portal_headers_only(response: Any) -> None:
    headers = response.headers
    for name, value in HOSTILE_HEADERS:
        assert value not in headers.getlist(name), (name, headers.getlist(name))
    assert "hijacked" not in str(headers)
    assert "evil.example" not in str(headers)
    for name, values in OWN_VALUES.items():
        assert headers.getlist(name) == values, name
    for name in (
        "content-security-policy-report-only",
        "x-frame-options",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "refresh",
        "link",
        "clear-site-data",
        "permissions-policy",
        "strict-transport-security",
        "origin-agent-cluster",
        "service-worker-allowed",
        "set-login",
        "www-authenticate",
        "x-upstream-unknown",
    ):
        assert name not in headers, name
    policy = headers["Content-Security-Policy"]
    directives = [d.strip() for d in policy.split(";")]
    assert "sandbox" in directives  # a CSP sandbox with no allow-scripts (nor anything else)
    assert "default-src 'none'" in directives
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/HTML",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/pdf",
        "text/javascript",
        "multipart/x-mixed-replace; boundary=x",
        "application/x-unknown",
        "",
        None,
    ],
)
@pytest.mark.security("a proxied response never carries the upstream's")
def test_active_upstream_answer_carries_only_the_portals_headers(
    client: Any, upstream: Upstream, content_type: str | None
) -> None:
    upstream.routes["/v1/page"] = hostile(content_type)
    response = same_origin_get(client, "page")
    assert response.status_code == 200
    assert upstream.requests_to("/v1/page"), "the request never reached the upstream"
    assert response.get_data(as_text=True) == HOSTILE_HTML  # the body itself is passed as is
    assert_portal_headers_only(response)
    assert response.headers.getlist("Content-Disposition") == ["attachment"]
    if not content_type:  # never the text/html a Response defaults to
        assert response.headers.getlist("Content-Type") == ["application/octet-stream"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/problem+json",
        "application/vnd.api+json",
        "text/plain; charset=utf-8",
        "text/csv",
        "image/png",
    ],
)
@pytest.mark.security("a proxied response never carries the upstream's")
def test_inert_upstream_answer_keeps_its_type_and_useful_headers(
    client: Any, upstream: Upstream, content_type: str
) -> None:
    def api(request: Request) -> Response:
        response = hostile(content_type, '{"ok": true}')(request)
        response.status_code = 429
        response.headers["ETag"] = '"v7"'
        response.headers["Last-Modified"] = "Wed, 21 Oct 2015 07:28:00 GMT"
        response.headers["Retry-After"] = "30"
        response.headers["X-RateLimit-Remaining"] = "0"
        response.headers["X-RateLimit-Reset"] = "1700000000"
        response.headers["RateLimit-Policy"] = "100;w=60"
        response.headers["X-Request-Id"] = "upstream-req-1"
        response.headers["Content-Language"] = "en"
        response.headers["X-Total-Count"] = "42"
        return response

    upstream.routes["/v1/items"] = api
    response = same_origin_get(client, "items")
    assert response.status_code == 429
    assert response.get_data(as_text=True) == '{"ok": true}'
    assert_portal_headers_only(response)
    assert response.headers["Content-Type"] == content_type
    assert "Content-Disposition" not in response.headers  # inert: it may render, sandboxed
    kept = {
        "ETag": '"v7"',
        "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Retry-After": "30",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1700000000",
        "RateLimit-Policy": "100;w=60",
        "X-Request-Id": "upstream-req-1",
        "Content-Language": "en",
        "X-Total-Count": "42",
    }
    for name, value in kept.items():
        assert response.headers.getlist(name) == [value], name


@pytest.mark.security("a proxied response never carries the upstream's")
def test_only_pagination_links_come_back(client: Any, upstream: Upstream) -> None:
    """``Link`` is how GitHub, GitLab and Shopify paginate; only ``next``/``prev``/``first``/
    ``last`` targets come back, rewritten by the portal, never a preload or a stylesheet."""
    links = {
        "mixed": (
            '<https://api.example/v1/items?page=2&fields=a,b>; rel="next", '
            "<https://evil.example/x.js>; rel=preload; as=script, "
            '<https://evil.example/s.css>; rel="stylesheet", '
            '<https://api.example/v1/items?page=9>; rel=last; title="x, y", '
            '<https://api.example/v1/items?page=1>; rel="first prefetch"'
        ),
        "hostile-only": '<https://evil.example/x.js>; rel="modulepreload"',
        "quoted-comma": '<https://evil.example/a>; title="<x>; rel=next"; rel=preload',
        "bad-target": '<https://api.example/"><https://evil.example/x.js>; rel="next"',
    }
    for name, value in links.items():
        upstream.routes[f"/v1/{name}"] = lambda r, value=value: Response(
            "[]", content_type="application/json", headers={"Link": value}
        )
    mixed = same_origin_get(client, "mixed")
    assert mixed.headers.getlist("Link") == [
        '<https://api.example/v1/items?page=2&fields=a,b>; rel="next", '
        '<https://api.example/v1/items?page=9>; rel="last"'
    ]
    for name in ("hostile-only", "quoted-comma", "bad-target"):
        assert "Link" not in same_origin_get(client, name).headers, name


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ('<https://a.example/?p=2>; REL="Next"', '<https://a.example/?p=2>; rel="next"'),
        ("</v1/items?page=3>;rel=prev", '</v1/items?page=3>; rel="prev"'),
        (
            '<https://a.example/2>; rel="next"; anchor="https://evil.example/"',
            '<https://a.example/2>; rel="next"',
        ),
        (
            '<https://a.example/2>; title="a \\"quoted\\" title"; rel=next',
            '<https://a.example/2>; rel="next"',
        ),
        ("<https://a.example/2>; rel=next; rel=preload", None),
        ("<https://a.example/2>; rel*=UTF-8''next", None),
        ('<https://a.example/2>; rel="next', None),
        ('<https://a.example/2; rel="next"', None),
        ("<https://a.example/a b>; rel=next", None),
        ("<>; rel=next", None),
        ("https://a.example/2; rel=next", None),
        ("", None),
    ],
)
def test_pagination_links_parse_unambiguously(value: str, kept: str | None) -> None:
    assert pagination_links(value) == kept


def test_portal_error_on_the_proxy_route_is_sandboxed_too(client: Any, upstream: Upstream) -> None:
    response = same_origin_get(client, "..;/x")
    assert_error(response, 400, "invalid_path")
    assert response.headers["Content-Security-Policy"] == PROXY_CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --------------------------------------------------------------------------- path parameters

PATH_PARAMETER_PATHS = [
    "..;/x",
    "..;/..;/_sandbox/reset",
    "a/..;/..;/x",
    "..;jsessionid=x/x",
    ".;/x",
    "a/.;/b",
    "%2e%2e;/x",
    "%2E%2E;/x",
    "%2e%2E;jsessionid=1/x",
    "%2e;/x",
    "%2E;/x",
    ".%2e;/x",
    "..%3b/x",
    "..%3B/x",
    "%2e%2e%3b/x",
    "%252e%252e%253b/x",
    "a/..;",
    "..;",
]


@pytest.mark.parametrize("path", PATH_PARAMETER_PATHS)
@pytest.mark.security("Proxy path with `..;` or `%2e%2e;` segments")
def test_path_parameter_on_a_dot_segment_sends_nothing(
    client: Any, upstream: Upstream, path: str
) -> None:
    response = same_origin_get(client, path)
    assert_error(response, 400, "invalid_path")
    assert upstream.count() == 0


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("a;b/c", "/v1/a;b/c"),
        ("..a;b", "/v1/..a;b"),
        ("x;..", "/v1/x;.."),
        ("...;/y", "/v1/...;/y"),
    ],
)
def test_other_path_parameters_still_pass(
    client: Any, upstream: Upstream, path: str, sent: str
) -> None:
    assert same_origin_get(client, path).status_code == 200
    [seen] = upstream.received
    assert seen.path == sent
