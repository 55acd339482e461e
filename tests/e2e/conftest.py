"""Real-Chromium fixtures: one browser per session, a fresh context per test, and an e2e
stack whose host app serves a small test page per end user (``/e2e?user=<id>``).

The e2e stack is a second :class:`~portal.demo.DemoStack` (its host origin is the one the portal
allows); the extra routes are added to its host app before it starts, so the demo host app
itself is not changed. The test page loads ``portal.min.js`` (what hosts get) from the portal's origin and a test
script from its own origin (the host app's CSP forbids inline scripts), creates
``new ConnectPortal({appKey, userId, hash, baseUrl})``, records every SDK event in
``window.events`` (and, across navigations of the tab, in ``sessionStorage``) and exposes
``window.portal``.

Waits are on states, never on time: every portal document says whether it has settled in
``body[data-portal-state]`` (``loading``, ``busy``, ``ready``; static/frame.js), and the
marketplace grid says which search it shows (``data-portal-q``, ``data-portal-category``), so
tests wait for those (:func:`portal_ready`) with auto-retrying locators rather than on cards
that the first paint shows and an htmx swap replaces. Timeouts are generous (:data:`TIMEOUT`)
for a loaded two-core machine; they cost time only when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import stack_database
from flask import Flask, Response, request
from markupsafe import escape
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Frame,
    FrameLocator,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

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
#: Default timeout (ms) of every Playwright wait and ``expect`` here: generous, because a loaded
#: two-core machine can take seconds for what takes milliseconds when idle.
TIMEOUT = 30_000
expect.set_options(timeout=TIMEOUT)
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
  if (ds.theme) options.theme = JSON.parse(ds.theme);
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
  const again = document.getElementById('reconnect');
  again.addEventListener('click', () => {
    // The test puts the account id in data-account first; the popup opens inside the click.
    portal.reconnectApp(button.dataset.app, again.dataset.account).then((value) => {
      window.connectResults.push({ ok: true, value });
    }, (err) => {
      window.connectResults.push({ ok: false, type: err.type, message: err.message });
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
        # ?theme=<JSON>: the session's theme, passed to new ConnectPortal({theme}) as is.
        "data-theme": request.args.get("theme", ""),
    }
    body_attrs = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>e2e host page</title>
<link rel="stylesheet" href="/e2e/test.css">
<script src="{escape(portal_url)}/portal/static/portal.min.js"></script>
</head><body {body_attrs}>
<h1>e2e host page</h1>
<button type="button" id="connect" data-app="{escape(app)}">Connect via SDK</button>
<button type="button" id="reconnect">Reconnect via SDK</button>
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


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh context (no cookies, no storage) whose waits default to :data:`TIMEOUT`."""
    ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
    ctx.set_default_timeout(TIMEOUT)
    return ctx


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh context (no cookies, no storage) per test."""
    ctx = new_context(browser)
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


def wait_event(page: Page, type_: str, count: int = 1) -> dict[str, Any]:
    """Wait until the host page has seen ``count`` events of ``type_``; returns the last one."""
    page.wait_for_function(
        "([t, n]) => (window.events || []).filter((e) => e.type === t).length >= n",
        arg=[type_, count],
    )
    return events(page, type_)[-1]


def click_away(target: Locator) -> None:
    """Click ``target`` when the click removes its own iframe (the modal's Close or Cancel, a
    submit that closes the modal).

    Playwright's mouse click stalled until its timeout when the click's handlers removed the
    clicked frame: first in the hit-target check after the click ("performing click action"
    never done, even with ``no_wait_after``), then, with ``force``, in the mouse dispatch itself
    (seen in a clean-clone CI run and beside stress-ng, on the paragon card's Close). So the
    actionability checks run as waits of their own, and the click is the DOM's: a ``click``
    event dispatched on the element (activation behaviour included, so a submit button
    submits), which returns before the host page's message handler removes the frame. The
    handlers under test are the same; only Chromium's input routing is skipped. The test then
    waits on the outcome's state."""
    expect(target).to_be_visible()
    expect(target).to_be_enabled()
    target.dispatch_event("click")


def click_while_page_settles(target: Locator) -> None:
    """Click ``target``, a button of a page whose layout still moves: the demo host page's
    inline portal frame loads the user's marketplace and reports its height
    (``portal:resize``) at any moment in its first seconds, which moves every section below it.

    A mouse click is aimed at where the button was when Playwright checked it; beside
    stress-ng the frame's resize landed between that check and the mouse event, and the click
    hit something else ("Create a connect link" never ran; no request reached the portal in
    30 s). So, as :func:`click_away` does, the actionability checks run as waits and the click
    is the DOM's, on the element itself, wherever it is by then. Only for buttons that need no
    user activation (no popup): a dispatched click is not one."""
    expect(target).to_be_visible()
    expect(target).to_be_enabled()
    target.dispatch_event("click")


def press_away(frame: FrameLocator, key: str = "Escape") -> None:
    """Press ``key`` where the focus is in ``frame`` when the key closes the modal (and so
    removes that frame). Playwright's real key press stalled until its timeout when the key's
    handlers removed the frame it went to: ``page.keyboard.press`` beside stress-ng and in a
    clean-clone CI run, and ``Locator.press(..., no_wait_after=True)`` once in eight stressed
    runs of tests/e2e. So, as :func:`click_away` does for clicks, the frame settles
    (:func:`portal_ready`) and a ``keydown`` of ``key`` is dispatched on its focused element (or
    its body); it bubbles to the document, where static/frame.js listens, and returns before
    the host page removes the frame. The test then waits on the outcome's state."""
    portal_ready(frame)
    frame.locator(":focus, body").last.dispatch_event("keydown", {"key": key})


def portal_ready(frame: FrameLocator) -> None:
    """Wait until the portal document in ``frame`` has settled: its own content is in (the
    marketplace shell's first paint replaced by the user's version), no request in flight and
    no htmx swap settling (``body[data-portal-state="ready"]``, set by static/frame.js).

    Until then, cards, buttons and the search box may be replaced under the test's hands."""
    expect(frame.locator("body")).to_have_attribute("data-portal-state", "ready")


def portal_frame(page: Page, selector: str = "[role=dialog] iframe, #container iframe") -> Frame:
    """The SDK's iframe (in the modal dialog or in ``#container``) as a Playwright frame, once
    its portal document has settled (:func:`portal_ready`).

    The iframe element belongs to the host page, which htmx never swaps; the Frame follows the
    iframe's navigations, so callers evaluate in whatever document it shows now."""
    portal_ready(page.frame_locator(selector).first)
    # Locator.content_frame is a FrameLocator; a Frame comes from the element, held only here.
    handle = page.locator(selector).first.element_handle()
    inner = handle.content_frame()
    handle.dispose()
    assert inner is not None, selector
    return inner


# In the portal document: start every image now (lazy ones too: they load only near the top
# viewport) and wait until each is decoded; returns the sources that failed.
SETTLE_IMAGES = """async () => {
  const images = [...document.images];
  for (const image of images) image.loading = 'eager';
  const failed = await Promise.all(images.map((image) => image.decode().then(() => null, () => image.src)));
  return failed.filter((src) => src !== null);
}"""


def settle_images(frame: FrameLocator) -> None:
    """Wait until the settled portal document in ``frame`` has every image loaded and decoded."""
    portal_ready(frame)
    failed = frame.locator("body").evaluate(SETTLE_IMAGES)
    assert failed == [], failed


def fitted_height(page: Page, selector: str) -> int:
    """Wait until the inline iframe ``selector`` is as tall as its settled document (portal.js
    follows frame.js's ``portal:resize``), with nothing to scroll inside; returns that height
    in CSS pixels. Both sides are measured again on every poll, across the two origins."""
    frame = page.frame_locator(selector)
    portal_ready(frame)
    iframe = page.locator(selector)
    html = frame.locator("html")
    last: list[Any] = []

    def fitted() -> bool:
        outer = iframe.evaluate("(f) => f.getBoundingClientRect().height")
        inner = html.evaluate(
            "(h) => [Math.ceil(h.getBoundingClientRect().height), h.scrollHeight]"
        )
        last[:] = [outer, *inner]
        return abs(outer - inner[0]) <= 1 and inner[1] <= outer + 1

    deadline = time.monotonic() + TIMEOUT / 1000
    while not fitted():
        assert time.monotonic() < deadline, f"iframe never fitted its content: {last}"
        page.wait_for_timeout(50)  # a poll interval (the two sides live in two documents)
    return round(last[0])


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
