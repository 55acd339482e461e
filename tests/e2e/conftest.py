"""Real-Chromium fixtures: one browser per session, a fresh context per test, and an e2e
stack whose host app serves a small test page per end user (``/e2e?user=<id>``).

The e2e stack is a second :class:`~portal.demo.DemoStack` (its host origin is the one the portal
allows); the extra routes are added to its host app before it starts, so the demo host app
itself is not changed. The test page loads ``portal.min.js`` (what hosts get) from the portal's origin and a test
script from its own origin (the host app's CSP forbids inline scripts), creates
``new ConnectPortal({appKey, userId, hash, baseUrl})``, records every SDK event in
``window.events`` (and, across navigations of the tab, in ``sessionStorage``) and exposes
``window.portal``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stack_database
from flask import Flask, Response, request
from markupsafe import escape
from playwright.sync_api import Browser, BrowserContext, Frame, Page, Playwright, sync_playwright

from portal import accounts as account_service
from portal import user_hash
from portal._serving import ServerThread
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

CHROMIUM = os.environ.get("PORTAL_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
#: Every public event the SDK emits (DESIGN.md "Events to the host page").
EVENT_TYPES = ["ready", "app-connected", "app-disconnected", "modal-closed", "error"]
#: Where test_screenshots.py writes (ignored by git; the README's pictures are copies kept in
#: tests/e2e/readme/, so a test run never changes tracked files).
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

# The test page's script. Plain ES2020, served by the host app ('self' in its CSP).
TEST_JS = """
(function () {
  'use strict';
  const ds = document.body.dataset;
  const KEY = 'e2e-log';
  const log = JSON.parse(sessionStorage.getItem(KEY) || '[]');
  const save = (entry) => { log.push(entry); sessionStorage.setItem(KEY, JSON.stringify(log)); };
  const options = { appKey: ds.appKey, userId: ds.userId, hash: ds.hash, baseUrl: ds.baseUrl };
  if (ds.redirect === 'off') options.redirectOnPopupBlocked = false;
  const portal = new ConnectPortal(options);
  window.events = [];
  window.connectResults = [];
  window.e2eLog = log;
  window.portal = portal;
  EVENT_TYPES.forEach((type) => portal.eventEmitter.on(type, (payload) => {
    window.events.push({ type, payload });
    save({ kind: 'event', type, payload });
  }));
  const button = document.getElementById('connect');
  button.addEventListener('click', () => {
    // connectApp must be called inside the click for the popup to be allowed.
    portal.connectApp(button.dataset.app).then((value) => {
      window.connectResults.push({ ok: true, value });
      save({ kind: 'connect', ok: true, value });
    }, (err) => {
      window.connectResults.push({ ok: false, type: err.type, message: err.message });
      save({ kind: 'connect', ok: false, type: err.type, message: err.message });
    });
  });
})();
""".replace("EVENT_TYPES", json.dumps(EVENT_TYPES))

TEST_CSS = """
body { font: 14px system-ui, sans-serif; margin: 16px; }
#container { width: 380px; border: 1px dashed #999; }
"""


def _test_page(portal_url: str) -> str:
    user = request.args.get("user", "")
    if not user:
        return Response("?user= is required", status=400)  # type: ignore[return-value]
    app = request.args.get("app", "sandbox")
    attrs = {
        "data-app-key": DEMO_APP_KEY,
        "data-user-id": user,
        "data-hash": user_hash(DEMO_APP_SECRET, user),
        "data-base-url": f"{portal_url}/portal",
        "data-redirect": request.args.get("redirect", "on"),
    }
    body_attrs = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>e2e host page</title>
<link rel="stylesheet" href="/e2e/test.css">
<script src="{escape(portal_url)}/portal/static/portal.min.js"></script>
</head><body {body_attrs}>
<h1>e2e host page</h1>
<button type="button" id="connect" data-app="{escape(app)}">Connect via SDK</button>
<a href="#" id="host-link">A host link</a>
<div id="container"></div>
<script src="/e2e/test.js"></script>
</body></html>"""


def add_test_routes(host_app: Flask, portal_url: str) -> None:
    """Add ``/e2e`` (the test page) and its script and style to a host app not yet started."""
    host_app.add_url_rule("/e2e", "e2e_page", lambda: _test_page(portal_url))
    host_app.add_url_rule(
        "/e2e/test.js", "e2e_js", lambda: Response(TEST_JS, mimetype="text/javascript")
    )
    host_app.add_url_rule(
        "/e2e/test.css", "e2e_css", lambda: Response(TEST_CSS, mimetype="text/css")
    )


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """Sandbox, portal and host app on three loopback origins; the host serves ``/e2e``."""
    tmp = tmp_path_factory.mktemp("e2e")
    running = DemoStack(0, 0, 0, **stack_database(tmp, "portal"))
    add_test_routes(running.host_app, running.portal.url)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (Playwright never downloads a browser here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    running = launch(playwright)
    yield running
    running.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context (no cookies, no storage) per test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def host_page_url(stack: DemoStack, user: str, **params: str) -> str:
    """The URL of the e2e host page for ``user``."""
    from urllib.parse import urlencode

    return f"{stack.host.url}/e2e?{urlencode({'user': user, **params})}"


def open_host(page: Page, stack: DemoStack, user: str, **params: str) -> None:
    """Load the e2e host page and wait for the SDK's ``ready`` event."""
    page.goto(host_page_url(stack, user, **params))
    wait_event(page, "ready")


def events(page: Page, type_: str | None = None) -> list[dict[str, Any]]:
    """Events the host page's SDK emitted (``{type, payload}``), optionally of one type."""
    got: list[dict[str, Any]] = page.evaluate("window.events")
    return [e for e in got if type_ is None or e["type"] == type_]


def wait_event(page: Page, type_: str, count: int = 1, timeout: float = 10_000) -> dict[str, Any]:
    """Wait until the host page has seen ``count`` events of ``type_``; returns the last one."""
    page.wait_for_function(
        "([t, n]) => (window.events || []).filter((e) => e.type === t).length >= n",
        arg=[type_, count],
        timeout=timeout,
    )
    return events(page, type_)[-1]


def portal_frame(page: Page, selector: str = "[role=dialog] iframe, #container iframe") -> Frame:
    """The SDK's iframe (in the modal dialog or in ``#container``) as a Playwright frame."""
    handle = page.wait_for_selector(selector, state="attached")
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


def insert_account(
    stack: DemoStack, user: str, label: str, external_id: str, app: str = "sandbox"
) -> dict[str, Any]:
    """Store a connected account directly (no provider round trip); returns its public dict."""
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user,
            app=app,
            external_id=external_id,
            label=label,
            scopes=["profile"],
            credentials={"type": "oauth2", "access_token": "e2e-not-a-real-token"},
            expires_at=None,
        )
        return dict(account_service.to_dict(account))


def consent(popup: Page, user: str = "ada", decision: str = "allow") -> None:
    """On the sandbox's consent page: pick the sandbox user and press Allow or Deny."""
    popup.wait_for_selector('button[name="decision"][value="allow"]')
    if user != "ada":
        popup.get_by_role("radio", name=re.compile(rf"\b{re.escape(user)}@sandbox\.test")).check()
    popup.click(f'button[name="decision"][value="{decision}"]')


ServerFactory = Callable[[Flask], ServerThread]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start extra loopback servers (e.g. a page on an origin the portal does not allow)."""
    started: list[ServerThread] = []

    def start(app: Flask) -> ServerThread:
        server = ServerThread("127.0.0.1", 0).start(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
