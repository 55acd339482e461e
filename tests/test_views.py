"""Pages and headers (SECURITY.md "Browser and embedding", the parts that need no browser)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api

from portal import accounts as account_service
from portal.demo import DEMO_APP_KEY, DemoStack
from portal.static_files import file_version

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.security("No `postMessage(…, '*')` anywhere")
def test_no_wildcard_postmessage_anywhere() -> None:
    pattern = re.compile(r"postMessage\([^)]*['\"]\*['\"]")
    offenders = [
        str(path)
        for folder in ("static", "templates", "portal")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and "vendor" not in path.parts
        and path.suffix in (".js", ".html", ".py", ".ts")
        and pattern.search(path.read_text("utf-8"))
    ]
    assert offenders == []


@pytest.mark.security("Portal page framed by an origin not allowed")
@pytest.mark.security("Callback and portal pages send `Referrer-Policy: no-referrer`")
def test_pages_send_strict_csp_and_no_referrer(stack: DemoStack, api: Api) -> None:
    for path in (
        "/portal/embed/apps",
        "/portal/embed/apps/sandbox",
        "/portal/embed/apps?mode=inline&layout=narrow",
        "/portal/embed/rpc",
    ):
        response = requests.get(stack.portal.url + path, timeout=10)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors 'self' {stack.host.url}" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
        # The SDK's hidden frame carries no token and is the same for everyone: kept briefly.
        cache = "public, max-age=300" if path == "/portal/embed/rpc" else "no-store"
        assert response.headers["Cache-Control"] == cache


@pytest.mark.security("Callback and portal pages send `Referrer-Policy: no-referrer`")
def test_pages_load_no_third_party_script(stack: DemoStack, api: Api) -> None:
    pages = [
        requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text,
        requests.get(stack.portal.url + "/portal/embed/rpc", timeout=10).text,
        requests.get(stack.portal.url + "/portal/ui/apps", headers=api.headers, timeout=10).text,
    ]
    for html in pages:
        for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html):
            assert src.startswith("/portal/static/"), src
        # No inline script except JSON data blocks, no inline style or handlers (CSP).
        for tag in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html):
            assert 'type="application/json"' in tag
        assert not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html)


def test_htmx_is_pinned_and_eval_disabled(stack: DemoStack) -> None:
    html = requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text
    assert "/portal/static/vendor/htmx-2.0.8.min.js" in html
    assert '"allowEval":false' in html and '"includeIndicatorStyles":false' in html
    assert (ROOT / "static/vendor/htmx-2.0.8.LICENSE").is_file()


@pytest.mark.security("Provider account label containing `</script><script>alert(1)</script>`")
def test_hostile_label_is_inert_in_every_view(stack: DemoStack, api: Api) -> None:
    hostile = "</script><script>alert(1)</script>"
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=api.user_id,
            app="sandbox",
            external_id="x1",
            label=hostile,
            scopes=[],
            credentials={"type": "oauth2", "access_token": "t"},
            expires_at=None,
        )
    page = requests.get(
        f"{stack.portal.url}/portal/ui/apps/sandbox", headers=api.headers, timeout=10
    ).text
    assert hostile not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    listing = api.get("/connected-accounts").json()["connected_accounts"]
    assert listing[0]["label"] == hostile  # JSON carries it as data; the browser test renders it
    deleted = api.delete(f"/connected-accounts/{account.id}")
    assert deleted.status_code == 200


def test_shell_paints_the_catalog_before_the_user_is_known(stack: DemoStack, api: Api) -> None:
    """The iframe shell carries the first page of cards, nobody's (no token reaches the server
    with it); frame.js then swaps in the user's version with the connected badges."""
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=api.user_id,
            app="sandbox",
            external_id="painted-1",
            label="Painted",
            scopes=[],
            credentials={"type": "oauth2", "access_token": "t"},
            expires_at=None,
        )
    card = re.compile(r'<a class="portal-card[^"]*"')
    shell = requests.get(stack.portal.url + "/portal/embed/apps", timeout=10).text
    users = requests.get(stack.portal.url + "/portal/ui/apps", headers=api.headers, timeout=10).text
    assert len(card.findall(shell)) == len(card.findall(users)) > 0
    assert "portal-card--connected" in users and "portal-card--connected" not in shell
    assert "Sandbox CRM" in shell and "portal-skeleton" not in shell
    assert 'data-portal-content-url="/portal/ui/apps?mode=modal&amp;layout=wide"' in shell


def test_rpc_frame_is_a_bare_page(stack: DemoStack) -> None:
    """The host-page SDK's hidden frame: frame.js only (no htmx, no styles, no token in it)."""
    html = requests.get(stack.portal.url + "/portal/embed/rpc", timeout=10).text
    version = file_version("frame.js")
    assert re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html) == [
        f"/portal/static/frame.js?v={version}"
    ]
    assert 'data-portal-page="rpc"' in html and "stylesheet" not in html


@pytest.mark.security("Callback and portal pages send `Referrer-Policy: no-referrer`")
def test_callback_and_api_are_no_store(stack: DemoStack, api: Api) -> None:
    response = requests.get(stack.portal.url + "/portal/oauth/sandbox/callback?state=x", timeout=10)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert api.get("/apps").headers["Cache-Control"] == "no-store"


def test_marketplace_search_and_category_filter(stack: DemoStack, api: Api) -> None:
    url = f"{stack.portal.url}/portal/ui/apps"
    everything = requests.get(url, headers=api.headers, timeout=10).text
    for title in ("Sandbox CRM", "Sandbox Analytics", "Sandbox Files"):
        assert title in everything
    grid = requests.get(
        url,
        params={"q": "analytics"},
        headers={**api.headers, "HX-Request": "true", "HX-Target": "portal-app-grid"},
        timeout=10,
    ).text
    assert grid.lstrip().startswith("<ul") and 'id="portal-app-grid"' in grid
    assert "Sandbox Analytics" in grid and "Sandbox CRM" not in grid
    by_category = requests.get(
        url, params={"category": "Files & documents"}, headers=api.headers, timeout=10
    ).text
    assert "Sandbox Files" in by_category and "Sandbox Analytics" not in by_category


def test_unknown_app_page_is_404_page(stack: DemoStack, api: Api) -> None:
    response = requests.get(f"{stack.portal.url}/portal/embed/apps/nope", timeout=10)
    assert response.status_code == 404
    assert "nope" in response.text and "<html" in response.text


def test_hsts_only_over_https(make_app: Any) -> None:
    app = make_app()
    secure = app.test_client().get("/portal/api/v1", base_url="https://portal.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    page = app.test_client().get("/portal/embed/apps", base_url="https://portal.example")
    assert "includeSubDomains" in page.headers["Strict-Transport-Security"]
    plain = app.test_client().get("/portal/api/v1", base_url="http://portal.example")
    assert "Strict-Transport-Security" not in plain.headers


def test_marketplace_pages_and_searches_the_whole_catalog(make_app: Any) -> None:
    from portal.demo import DEMO_APP_SECRET
    from portal.views.ui import PAGE_SIZE

    app = make_app(PORTAL_ENABLED_APPS=None)
    with app.app_context():
        enabled = [a.title for a in app.extensions["portal"].enabled_apps()]
    assert len(enabled) > PAGE_SIZE
    client = app.test_client()
    # The host backend's app secret as bearer, naming the end user (server-to-server caller).
    headers = {"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": "u-pages"}

    def titles(html: str) -> list[str]:
        return re.findall(r'<span class="portal-card__title">([^<]*)</span>', html)

    first = client.get("/portal/ui/apps", headers=headers).get_data(as_text=True)
    assert titles(first) == [t.replace("&", "&amp;") for t in enabled[:PAGE_SIZE]]
    assert 'id="portal-more"' in first and f"({len(enabled) - PAGE_SIZE} not shown)" in first
    # "Show more" over htmx: only the next page's cards, in place of the button.
    more_headers = {**headers, "HX-Request": "true", "HX-Target": "portal-more"}
    second = client.get("/portal/ui/apps?page=2", headers=more_headers).get_data(as_text=True)
    assert 'id="portal-app-grid"' not in second
    assert titles(second) == [t.replace("&", "&amp;") for t in enabled[PAGE_SIZE : 2 * PAGE_SIZE]]
    # Without JavaScript: ?page=2 renders pages 1 and 2.
    both = client.get("/portal/ui/apps?page=2", headers=headers).get_data(as_text=True)
    assert len(titles(both)) == min(len(enabled), 2 * PAGE_SIZE)

    def search(q: str) -> list[str]:
        html = client.get("/portal/ui/apps", query_string={"q": q}, headers=headers)
        return titles(html.get_data(as_text=True))

    assert search("sandbox-basic") == ["Sandbox Files"]  # the slug
    assert search("SANDBOX FILES") == ["Sandbox Files"]  # the title, any case
    assert "Sandbox Files" in search("signs in with a username")  # the description
    assert "Sandbox Files" in search("files & documents")  # a category
    assert search("no-such-app-anywhere") == []


# ------------------------------------------------------------------ bidi isolation (U+202E)

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: reverses every character after it in its paragraph


class _BidiParser(HTMLParser):
    """Each text node holding ``marker``, with the tags open around it."""

    VOID = frozenset({"input", "img", "br", "meta", "link", "hr", "source", "wbr", "col"})

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.open: list[str] = []
        self.found: list[tuple[str, list[str], str]] = []  # (text, open tags, text after it)
        self._pending: list[tuple[int, int]] = []  # found index, open depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._pending.clear()
        if tag in self.open:
            while self.open and self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        # Text that follows a hostile node inside the same <option> (options hold text only).
        for index, depth in self._pending:
            if len(self.open) >= depth and self.open[depth - 1] == "option":
                text, tags, after = self.found[index]
                self.found[index] = (text, tags, after + data)
        if self.marker in data:
            self.found.append((data, list(self.open), ""))
            if "option" in self.open:
                self._pending.append((len(self.found) - 1, self.open.index("option") + 1))


def hostile_nodes(html: str) -> list[tuple[str, list[str], str]]:
    parser = _BidiParser(RLO)
    parser.feed(html)
    return parser.found


def assert_isolated(html: str, expected: int) -> None:
    nodes = hostile_nodes(html)
    assert len(nodes) >= expected, nodes
    for text, tags, after in nodes:
        if "option" in tags:
            # <option> holds text only: nothing may follow the label inside it.
            assert after.strip() == "", (text, after)
        else:
            assert "bdi" in tags, (text, tags)


@pytest.mark.security("A provider-supplied label with U+202E")
def test_provider_label_with_rlo_is_bidi_isolated(stack: DemoStack, api: Api) -> None:
    from flask import render_template

    from portal.views.common import page_context

    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        for n in (1, 2):
            account, _ = account_service.upsert_account(
                db,
                state.sealer,
                project=DEMO_APP_KEY,
                user_id=api.user_id,
                app="sandbox",
                external_id=f"{RLO}ext-{n}",
                label=f"{RLO}label-{n}" if n == 1 else "",
                scopes=[],
                credentials={"type": "oauth2", "access_token": "t"},
                expires_at=None,
            )
        account.status = "needs_reauth"

    app_page = requests.get(
        f"{stack.portal.url}/portal/ui/apps/sandbox", headers=api.headers, timeout=10
    ).text
    assert f"{RLO}label-1" in app_page and f"{RLO}ext-2" in app_page
    assert_isolated(app_page, 3)  # label 1, external id 1, external id 2 (no label)

    several = requests.get(
        f"{stack.portal.url}/portal/ui/functions/sandbox-list-contacts",
        headers=api.headers,
        timeout=10,
    ).text
    assert "<select" in several and "Reconnect needed" in several
    assert_isolated(several, 2)

    with state.store.session() as db:
        account_service.delete_account(
            db, account_service.get_account(db, api.user_id, account.id, project=DEMO_APP_KEY)
        )
    one = requests.get(
        f"{stack.portal.url}/portal/ui/functions/sandbox-list-contacts",
        headers=api.headers,
        timeout=10,
    ).text
    assert "Uses your" in one
    assert_isolated(one, 1)

    with stack.portal_app.test_request_context("/portal/oauth/sandbox/callback"):
        done = render_template(
            "portal/connect_done.html",
            status="connected",
            app={"title": "Sandbox CRM"},
            account={"label": f"{RLO}label-1", "external_id": "x"},
            error=None,
            result_json={},
            **page_context("connect-done"),
        )
    assert_isolated(done, 1)
