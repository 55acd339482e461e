"""Real Chromium, mounted mode: an upstream's HTML opened through the proxy runs no script on
the host's origin (SECURITY.md "Outside attacks").

The hostile upstream (:class:`test_proxy.Upstream` on loopback) answers ``/v1/page`` with
``text/html``, ``Content-Security-Policy: script-src 'unsafe-inline'`` and
``X-Content-Type-Options: none``; the page's inline script renames the document and loads an
image from the upstream's ``/hit`` (an image in the document delays its ``load`` event, so once
a navigation has loaded the hit has been received). The host app has the portal mounted and its
own cookie login.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import Error as PlaywrightError
from test_proxy import Upstream
from test_proxy_response_headers import SLUG, USER, mounted_proxy_host
from werkzeug.wrappers import Response

from .conftest import ServerFactory

pytestmark = pytest.mark.e2e

TITLE = "host tab"
PAGE_JS = "document.title = 'pwned'; document.write('<img src=\"HIT\" alt=\"\">');"


def hostile_page(hit_url: str) -> Response:
    html = (
        f"<!doctype html><html><head><title>upstream</title></head><body>"
        f"<script>{PAGE_JS.replace('HIT', hit_url)}</script></body></html>"
    )
    return Response(
        html,
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": "script-src 'unsafe-inline'",
            "X-Content-Type-Options": "none",
            "X-Frame-Options": "ALLOWALL",
            "Access-Control-Allow-Origin": "*",
        },
    )


def navigate(page: Page, url: str) -> None:
    """Go to ``url`` and wait until it has loaded, or has turned into a download (Playwright
    then raises "Download is starting": the tab keeps its document)."""
    try:
        page.goto(url, wait_until="load")
    except PlaywrightError as exc:
        if "Download is starting" not in str(exc):
            raise


@pytest.mark.security("a proxied response never carries the upstream's")
def test_upstream_html_runs_no_script_on_the_hosts_origin(
    browser: Browser, tmp_path: Path, serve: ServerFactory
) -> None:
    upstream = Upstream()
    try:
        hit_url = f"{upstream.url}/hit"
        upstream.routes["/v1/page"] = lambda r: hostile_page(hit_url)
        upstream.routes["/hit"] = lambda r: Response(b"", content_type="image/gif")
        host_app = mounted_proxy_host(tmp_path, upstream.url)
        host_app.add_url_rule("/tab", "tab", lambda: f"<!doctype html><title>{TITLE}</title>")
        host = serve(host_app)
        context = browser.new_context(accept_downloads=True)
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)

            # Control: served from its own origin, the page's script does run in this browser.
            navigate(page, f"{upstream.url}/v1/page")
            assert page.title() == "pwned"
            assert len(upstream.requests_to("/hit")) == 1

            # The logged-in user opens the proxied URL on the host's origin (a GET with the
            # cookie, as a link or a typed URL would send it).
            navigate(page, f"{host.url}/login?user={USER}")
            navigate(page, f"{host.url}/tab")
            assert page.title() == TITLE
            navigate(page, f"{host.url}/portal/api/v1/proxy/{SLUG}/page")
            # Whatever the portal answered (a download, a sandboxed page, or a refusal), the
            # script's effects are absent: no second hit, and the tab is not renamed.
            assert len(upstream.requests_to("/hit")) == 1
            assert page.title() != "pwned"
        finally:
            context.close()
    finally:
        upstream.stop()
