"""The README's browser blocks, run in real Chromium (see tests/readme_blocks.py).

A host site of its own (no CSP, like most host pages a reader has) serves each block verbatim
but for the portal's URL, the app key, the user's hash or token: the substitutions a reader
makes. The portal allows that site's origin; everything runs on loopback.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import connect_sandbox, new_session, stack_database
from flask import Flask, Response
from playwright.sync_api import Page, expect
from readme_blocks import block, fill

from portal import sign_user_token, user_hash
from portal._serving import ServerThread
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

pytestmark = pytest.mark.e2e

SDK_SECTION = "Embed it by script tag (another origin)"
PARAGON_SECTION = "Paragon-style: a signed JWT instead of the hash"
IFRAME_SECTION = "Embed it by iframe"
PROXY_SECTION = "Acting for the end user: proxy and functions"
MOUNT_SECTION = "Mount it in a Flask app"


def _page(body: str, portal_url: str, sdk: bool = False) -> str:
    script = f'<script src="{portal_url}/portal/static/portal.min.js"></script>' if sdk else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>README host</title>'
        f"{script}</head><body><h1>README host</h1>\n{body}\n</body></html>"
    )


class ReadmeSite:
    """The reader's host site and the portal stack that allows it."""

    def __init__(self, host: ServerThread, stack: DemoStack) -> None:
        self.host = host
        self.stack = stack
        self.pages: dict[str, str] = {}

    @property
    def portal_url(self) -> str:
        return self.stack.portal.url

    def serve(self, name: str, html: str) -> str:
        """Serve ``html`` at ``/<name>`` of the host site; returns its URL."""
        self.pages[name] = html
        return f"{self.host.url}/{name}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadmeSite]:
    host = ServerThread("127.0.0.1", 0)
    app = Flask("readme_host")
    readme = ReadmeSite(host, None)  # type: ignore[arg-type]

    @app.get("/<name>")
    def page(name: str) -> Response:
        if name not in readme.pages:
            return Response("no such page", status=404)
        return Response(readme.pages[name], mimetype="text/html")

    # The README's apps: Slack with a client id a reader would have (never used to call Slack).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PORTAL_SLACK_CLIENT_ID", "readme-slack-client")
        env.setenv("PORTAL_SLACK_CLIENT_SECRET", "readme-slack-secret")
        tmp = tmp_path_factory.mktemp("readme-browser")
        stack = DemoStack(
            0,
            0,
            0,
            **stack_database(tmp, "portal"),
            worker=False,
            PORTAL_ENABLED_APPS=None,
        )
    config = stack.portal_app.config
    config["PORTAL_ALLOWED_ORIGINS"] = [*config["PORTAL_ALLOWED_ORIGINS"], host.url]
    state = stack.portal_app.extensions["portal"]
    state.allowed_origins = frozenset([*state.allowed_origins, host.url])
    readme.stack = stack
    host.start(app)
    stack.start()
    yield readme
    stack.stop()
    host.stop()


def new_user() -> str:
    return f"readme-{os.urandom(4).hex()}"


@pytest.mark.readme(SDK_SECTION, 1)
def test_script_tag_snippet_opens_the_marketplace(site: ReadmeSite, page: Page) -> None:
    user = "u-42"
    html = fill(
        block(SDK_SECTION, 1).code,
        {
            "https://portal.example": site.portal_url,
            "appKey: 'APP_KEY'": f"appKey: {json.dumps(DEMO_APP_KEY)}",
            "hash: '…'": f"hash: {json.dumps(user_hash(DEMO_APP_SECRET, user))}",
        },
    )
    page.goto(site.serve("script-tag", _page(html, site.portal_url)))
    page.get_by_role("button", name="Integrations").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    frame = page.frame_locator("[role=dialog] iframe")
    expect(frame.get_by_role("heading", name=re.compile(r"^Apps \d+"))).to_be_visible()
    # Slack (configured above) is in the marketplace: search finds its card. Wait until the
    # shell has swapped in the user's own marketplace (its settled state), then for the grid
    # that shows this very search.
    expect(frame.locator("body")).to_have_attribute("data-portal-state", "ready")
    frame.get_by_role("searchbox", name="Search apps").fill("slack")
    expect(frame.locator("[data-portal-q='slack']")).to_be_visible()
    expect(frame.locator(".portal-card__title", has_text=re.compile("^Slack$"))).to_be_visible()


@pytest.mark.readme(PARAGON_SECTION, 1)
def test_paragon_snippet_authenticates_reads_connects_and_sends_an_event(
    site: ReadmeSite, page: Page
) -> None:
    user = new_user()
    token = sign_user_token(site.stack.jwt_private_key, user, DEMO_APP_KEY, ttl=900)
    code = fill(
        block(PARAGON_SECTION, 1).code,
        {"https://portal.example": site.portal_url, "'APP_KEY'": json.dumps(DEMO_APP_KEY)},
    )
    page.goto(site.serve("paragon", _page("", site.portal_url, sdk=True)))
    # The block uses top-level await: it runs as the body of an async function.
    result = page.evaluate(
        "async (userToken) => {\n" + code + "\nreturn {user, ready: true};\n}", token
    )
    assert result["user"]["authenticated"] is True
    assert result["user"]["userId"] == user
    assert "slack" in result["user"]["integrations"]
    # paragon.connect('slack') opened Slack's page in a modal.
    frame = page.frame_locator("[role=dialog] iframe")
    expect(frame.locator("#portal-app-title")).to_have_text("Slack")
    # ...and paragon.event(...) was recorded for this user, in the demo project.
    from sqlalchemy import select

    from portal.store import AppEvent

    state = site.stack.portal_app.extensions["portal"]
    with state.store.read() as db:
        recorded = list(db.scalars(select(AppEvent).where(AppEvent.user_id == user)))
    assert [(e.name, e.payload, e.project) for e in recorded] == [
        ("Contact Created", {"email": "b@example.com"}, DEMO_APP_KEY)
    ]


@pytest.mark.readme(IFRAME_SECTION, 1)
def test_iframe_snippet_sizes_itself_to_the_marketplace(site: ReadmeSite, page: Page) -> None:
    minted = requests.post(
        f"{site.portal_url}/portal/api/v1/sessions",
        json={"userId": "u-42", "origin": site.host.url},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert minted.status_code == 201, minted.text
    html = fill(
        block(IFRAME_SECTION, 1).code,
        {"https://portal.example": site.portal_url, "#token=…": f"#token={minted.json()['token']}"},
    )
    page.set_viewport_size({"width": 1000, "height": 700})
    page.goto(site.serve("iframe", _page(html, site.portal_url)))
    frame = page.frame_locator("#integrations-frame")
    expect(frame.get_by_role("heading", name=re.compile(r"^Apps \d+"))).to_be_visible()
    # Not the browser's 300x150 default: full width, and the height the portal reported.
    page.wait_for_function("() => document.getElementById('integrations-frame').height !== '560'")
    size = page.evaluate(
        """() => {
        const f = document.getElementById('integrations-frame');
        const doc = f.contentDocument;  // cross-origin: null
        return {width: f.getBoundingClientRect().width, height: Number(f.height), doc: doc === null};
    }"""
    )
    assert size["doc"] is True
    assert size["width"] > 900
    assert size["height"] > 150
    content = frame.locator("body").evaluate("b => b.scrollHeight")
    assert abs(size["height"] - content) <= 2, (size, content)


@pytest.mark.readme(PROXY_SECTION, 0)
def test_proxy_and_functions_snippet(site: ReadmeSite, page: Page) -> None:
    """Paragon's request() and Integry's functions, as written, for a user with a sandbox
    account; showFunction's form is filled in by the user."""
    user = new_user()
    connected, _ = connect_sandbox(new_session(site.stack, user))
    assert connected.status_code == 200
    html = (
        "<script>window.portal = new ConnectPortal("
        + json.dumps(
            {
                "appKey": DEMO_APP_KEY,
                "userId": user,
                "hash": user_hash(DEMO_APP_SECRET, user),
                "baseUrl": f"{site.portal_url}/portal",
            }
        )
        + ");</script>"
    )
    # The host page's own script: an inline one (this host has no CSP).
    page.goto(site.serve("proxy", _page(html, site.portal_url, sdk=True)))
    code = block(PROXY_SECTION, 0).code
    page.evaluate(
        "() => { window.readmeRun = (async () => {\n"
        + code
        + "\nreturn {contacts, sig, params, result, page};\n})(); }"
    )
    form = page.frame_locator("[role=dialog] iframe")
    name = form.get_by_label(re.compile("^Name"))
    expect(name).to_have_value("Ada")
    form.get_by_label(re.compile("^Email")).fill("ada@example.com")
    form.get_by_role("button", name=re.compile("Save|Submit|Continue|Done", re.I)).click()
    out: dict[str, Any] = page.evaluate("() => window.readmeRun")
    assert isinstance(out["contacts"], dict) or isinstance(out["contacts"], list)
    assert out["sig"]["name"] == "sandbox-create-contact"
    assert out["params"] == {"name": "Ada", "email": "ada@example.com"}
    assert out["result"]["network_code"] == 201
    assert "next_page" not in out["page"] or out["page"]["next_page"] in (None, "")


@pytest.mark.readme(MOUNT_SECTION, 3)
def test_mounted_csrf_fetch_snippet(page: Page, serve: Any, tmp_path: Any) -> None:
    """The mounted-mode fetch, run on a page of a mounted host: with the meta tag's token it
    reaches the proxy (here: not connected, 404 from the portal, not a 403)."""
    from portal import ConnectPortal
    from portal.crypto import generate_key

    app = Flask("readme_mounted")
    app.config.update(
        SECRET_KEY=os.urandom(16).hex(),
        PORTAL_ENCRYPTION_KEYS=[generate_key()],
        PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'mounted.sqlite3'}",
        PORTAL_BASE_URL="http://127.0.0.1:9",
        PORTAL_APPS={
            "sandbox": {"client_id": "x", "client_secret": "y", "base_url": "http://127.0.0.1:9"}
        },
    )
    portal = ConnectPortal(app)

    @portal.user_loader
    def user() -> str:
        return "u-42"

    server = serve(app)
    page.goto(f"{server.url}/portal/apps")
    status = page.evaluate(
        "async () => { const r = await "
        + block(MOUNT_SECTION, 3).code.strip().rstrip(";")
        + "; return {status: r.status, body: await r.json()}; }"
    )
    assert status["status"] == 404, status
    assert status["body"]["error"] == "not_connected"
