"""Mounted mode in real Chromium: the host's cookie session, same-origin proof and the flows.

The mounted host (``http://127.0.0.1:<port>``) and an attacker's page (``http://localhost:<port>``:
another host name, so another *site*, and the host's SameSite=Lax cookie still goes along with a
top-level navigation) run on loopback; the probe app's API is a loopback upstream that records
every request reaching it (see tests/test_mounted_same_origin.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from markupsafe import escape
from playwright.sync_api import BrowserContext, Page, expect
from test_mounted_same_origin import MountedHost, Upstream, mounted_host_app

from portal._serving import ServerThread

pytestmark = pytest.mark.e2e

#: Records the mounted page's ``connect-portal:*`` window events in ``window.portalEvents``
#: (an init script: runs before frame.js, whatever the page's CSP).
RECORD_EVENTS = """
window.portalEvents = [];
for (const type of ['ready', 'app-connected', 'app-disconnected', 'error']) {
  window.addEventListener('connect-portal:' + type, (e) => window.portalEvents.push({type, detail: e.detail}));
}
"""


@pytest.fixture
def host(tmp_path: Path) -> Iterator[MountedHost]:
    upstream = Upstream()
    app = mounted_host_app(tmp_path, upstream.url)
    server = ServerThread("127.0.0.1", 0).start(app)
    yield MountedHost(server.url, app, upstream)
    server.stop()
    upstream.server.stop()


@pytest.fixture
def attacker(host: MountedHost) -> Iterator[str]:
    """Another site's page with plain links into the mounted host (``localhost`` vs
    ``127.0.0.1``: different sites, so the navigation is ``Sec-Fetch-Site: cross-site``)."""
    app = Flask("attacker")
    proxied = f"{host.url}/portal/api/v1/proxy/probe/contacts"
    marketplace = f"{host.url}/portal/apps"

    @app.get("/")
    def index() -> str:
        return (
            "<!doctype html><title>elsewhere</title>"
            f'<a id="steal" href="{escape(proxied)}">win a prize</a> '
            f'<a id="apps" href="{escape(marketplace)}">apps</a>'
        )

    server = ServerThread("127.0.0.1", 0, url_host="localhost").start(app)
    assert server.url.startswith("http://localhost:")
    yield server.url
    server.stop()


def log_in(context: BrowserContext, host: MountedHost, user: str) -> None:
    """The victim logs in to the host: its session cookie lands in this browser context."""
    response = context.request.post(f"{host.url}/login", form={"user": user})
    assert response.ok
    assert any(c["name"] == "session" for c in context.cookies(host.url))


@pytest.mark.security("a cookie-authenticated request with no same-origin proof")
def test_cross_site_navigation_to_the_proxy_reaches_no_upstream(
    page: Page, context: BrowserContext, host: MountedHost, attacker: str
) -> None:
    log_in(context, host, "alice")
    host.seed_account("alice")

    page.goto(attacker)
    with page.expect_navigation() as nav:
        page.click("#steal")
    response = nav.value
    assert response is not None
    assert response.url == f"{host.url}/portal/api/v1/proxy/probe/contacts"
    assert response.status == 403
    request_headers = response.request.all_headers()
    assert request_headers["sec-fetch-site"] == "cross-site"
    assert "session=" in request_headers.get("cookie", "")  # the Lax cookie did go along
    body: dict[str, Any] = response.json()
    assert body["error"] == "csrf_failed"
    assert host.upstream.received() == []

    # The marketplace page itself stays reachable from another site (logged in: the cookie).
    page.goto(attacker)
    with page.expect_navigation() as nav:
        page.click("#apps")
    opened = nav.value
    assert opened is not None and opened.status == 200
    expect(page.locator("body[data-portal-mounted='1']")).to_be_attached()
    assert host.upstream.received() == []


def test_mounted_connect_poll_connect_and_disconnect(
    page: Page, context: BrowserContext, host: MountedHost
) -> None:
    """frame.js on a mounted page sends the CSRF token on every API call, GET included: the
    connect-attempt poll, the connect itself and the disconnect all work."""
    log_in(context, host, "alice")
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{host.url}/portal/apps/probe")
    connect = page.locator("[data-portal-connect]")

    # A popup closed before connecting: frame.js asks the server (GET /connect-attempts/<id>).
    with page.expect_popup() as info:
        connect.click()
    popup = info.value
    popup.wait_for_selector('input[name="api_key"]')
    popup.close()
    page.wait_for_function("() => window.portalEvents.some((e) => e.type === 'error')")
    errors = [e for e in page.evaluate("window.portalEvents") if e["type"] == "error"]
    assert errors[0]["detail"]["type"] == "window_closed", errors
    expect(connect).to_be_enabled()

    # Connect for real (API key form in the popup; the probe's identity endpoint answers).
    with page.expect_popup() as info:
        page.locator("[data-portal-connect]").click()
    popup = info.value
    popup.fill('input[name="api_key"]', "sk_probe_key")
    with popup.expect_event("close"):
        popup.click('button[type="submit"]')
    page.wait_for_function("() => window.portalEvents.some((e) => e.type === 'app-connected')")
    account = page.locator("[data-portal-disconnect]")
    expect(account).to_have_count(1)
    assert len(host.account_ids("alice")) == 1

    # Disconnect (click, then confirm).
    account.click()
    expect(account).to_have_text("Confirm disconnect")
    account.click()
    page.wait_for_function("() => window.portalEvents.some((e) => e.type === 'app-disconnected')")
    expect(page.locator("[data-portal-disconnect]")).to_have_count(0)
    assert host.account_ids("alice") == []
    assert [e["type"] for e in page.evaluate("window.portalEvents")].count("error") == 1


def test_mounted_function_form_submits(
    page: Page, context: BrowserContext, host: MountedHost
) -> None:
    """The mounted function form posts its htmx partial with the token (Chromium adds
    ``Sec-Fetch-Site: same-origin``) and hands the values to the page; nothing goes upstream."""
    log_in(context, host, "alice")
    host.seed_account("alice")
    page.add_init_script(
        "window.functionParams = [];"
        "window.addEventListener('connect-portal:function-params',"
        " (e) => window.functionParams.push(e.detail));"
    )
    page.goto(f"{host.url}/portal/functions/probe-ping")
    page.fill('input[name="note"]', "hello")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click('#portal-function button[type="submit"]')
    assert posted.value.status == 200
    assert posted.value.request.all_headers()["sec-fetch-site"] == "same-origin"
    page.wait_for_function("() => window.functionParams.length === 1")
    detail = page.evaluate("window.functionParams[0]")
    assert detail["name"] == "probe-ping"
    assert detail["params"] == {"note": "hello"}
    assert host.upstream.received() == []


def test_stale_csrf_token_reads_as_an_expired_session(
    page: Page, context: BrowserContext, host: MountedHost
) -> None:
    """The user logged out and in again in another tab: the page's token is stale, so its
    disconnect is refused (403 ``csrf_failed``, nothing deleted) and the page asks for a reload."""
    log_in(context, host, "alice")
    account_id = host.seed_account("alice")
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{host.url}/portal/apps/probe")
    assert context.request.post(f"{host.url}/logout").ok
    log_in(context, host, "alice")  # a new session: a new CSRF secret

    button = page.locator("[data-portal-disconnect]")
    button.click()
    expect(button).to_have_text("Confirm disconnect")
    with page.expect_response(lambda r: r.request.method == "DELETE") as refused:
        button.click()
    assert refused.value.status == 403
    expect(page.locator("#portal-main [role=alert]")).to_contain_text("reload the page")
    page.wait_for_function("() => window.portalEvents.some((e) => e.type === 'error')")
    got = page.evaluate("window.portalEvents")
    assert [e["detail"]["type"] for e in got if e["type"] == "error"] == ["session_expired"]
    assert host.account_ids("alice") == [account_id]
