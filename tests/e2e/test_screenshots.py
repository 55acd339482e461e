"""Screenshots of every screen, for review by eye (tests/e2e/screenshots/*.png).

These assert no pixels; each asserts that the screen's key elements were visible when it was
captured and that a PNG was written."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, FrameLocator, Page, expect

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

from .conftest import (
    SCREENSHOTS,
    consent,
    fitted_height,
    insert_account,
    new_context,
    open_host,
    portal_ready,
    settle_images,
)

pytestmark = pytest.mark.e2e

WIDE = {"width": 1280, "height": 800}
POPUP = {"width": 520, "height": 700}  # the size portal.js and frame.js open the popup at
TITLES = ("Sandbox CRM", "Sandbox Analytics", "Sandbox Files")


def shoot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Screenshot ``page`` once every frame's fonts are in, with animations stopped."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    for frame in page.frames:
        frame.evaluate("document.fonts.ready.then(() => true)")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert 2_000 < len(data) < 1_500_000, (path, len(data))
    return path


def new_page(browser: Browser, viewport: dict[str, int], dark: bool = False) -> Page:
    context = new_context(browser, viewport=viewport)
    page = context.new_page()
    page.emulate_media(color_scheme="dark" if dark else "light", reduced_motion="reduce")
    return page


def marketplace_ready(frame: FrameLocator) -> None:
    """The user's marketplace has settled in ``frame`` (not the first paint that htmx replaces),
    with every card and every icon loaded."""
    portal_ready(frame)
    expect(frame.locator("section.portal-market:not([data-portal-anonymous])")).to_be_attached()
    for title in TITLES:
        expect(frame.locator("a.portal-card", has_text=title)).to_be_visible()
    settle_images(frame)


def test_screenshot_demo_host_page(browser: Browser, stack: DemoStack) -> None:
    page = new_page(browser, {"width": 1280, "height": 900})
    try:
        page.goto(stack.host.url + "/")
        expect(page.locator("#sdk-status")).to_have_text("SDK ready for demo-user-1.")
        marketplace_ready(page.frame_locator("#inline-portal iframe"))
        marketplace_ready(page.frame_locator("#embed-frame"))
        fitted_height(page, "#inline-portal iframe")
        expect(page.get_by_role("heading", name="Event log")).to_be_visible()
        expect(page.locator("#event-log li").first).to_contain_text("ready")
        shoot(page, "01-demo-host-page")
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("name", "layout", "dark"),
    [
        ("02-modal-wide", "wide", False),
        ("03-modal-narrow", "narrow", False),
        ("06-dark-marketplace", "wide", True),
    ],
)
def test_screenshot_modal(
    browser: Browser, e2e_stack: DemoStack, user_id: str, name: str, layout: str, dark: bool
) -> None:
    page = new_page(browser, WIDE, dark=dark)
    try:
        open_host(page, e2e_stack, user_id)
        page.evaluate("(l) => window.portal.showApps('modal', null, l)", layout)
        expect(page.locator("[role=dialog]")).to_be_visible()
        frame = page.frame_locator("[role=dialog] iframe")
        marketplace_ready(frame)
        expect(frame.get_by_role("searchbox", name="Search apps")).to_be_visible()
        expect(frame.get_by_role("button", name="Close")).to_be_visible()
        body = frame.locator("body")
        expect(body).to_have_class(f"portal portal--modal portal--{layout}")
        if dark:
            background = body.evaluate("(b) => getComputedStyle(b).backgroundColor")
            assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
        shoot(page, name)
    finally:
        page.context.close()


def test_screenshot_inline_narrow(browser: Browser, e2e_stack: DemoStack, user_id: str) -> None:
    page = new_page(browser, {"width": 480, "height": 900})
    try:
        open_host(page, e2e_stack, user_id)
        page.evaluate("window.portal.showApps('inline', 'container', 'narrow')")
        frame = page.frame_locator("#container iframe")
        marketplace_ready(frame)
        expect(frame.locator("body")).to_have_class("portal portal--inline portal--narrow")
        fitted_height(page, "#container iframe")
        shoot(page, "04-inline-narrow", full_page=True)
    finally:
        page.context.close()


def test_screenshot_app_page_with_account(
    browser: Browser, e2e_stack: DemoStack, user_id: str
) -> None:
    insert_account(e2e_stack, user_id, "ada@sandbox.test", "screenshot-ada")
    page = new_page(browser, WIDE)
    try:
        open_host(page, e2e_stack, user_id)
        page.evaluate("window.portal.showApp('sandbox', 'modal')")
        frame = page.frame_locator("[role=dialog] iframe")
        portal_ready(frame)
        expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM")
        row = frame.locator(".portal-account", has_text="ada@sandbox.test")
        expect(row).to_be_visible()
        expect(row.get_by_role("button", name="Disconnect")).to_be_visible()
        expect(frame.get_by_role("button", name="Connect another account")).to_be_visible()
        settle_images(frame)
        shoot(page, "05-app-page-connected")
    finally:
        page.context.close()


def _connect_url(stack: DemoStack, user: str) -> str:
    session = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
        timeout=10,
    )
    assert session.status_code == 201, session.text
    ticket = requests.post(
        f"{stack.portal.url}/portal/api/v1/connect-tickets",
        json={"app": "sandbox", "opener": "frame"},
        headers={"Authorization": f"Bearer {session.json()['token']}", "Origin": stack.host.url},
        timeout=10,
    )
    assert ticket.status_code == 201, ticket.text
    return str(ticket.json()["connect_url"])


def test_screenshot_consent_and_connect_done(
    browser: Browser, e2e_stack: DemoStack, user_id: str
) -> None:
    page = new_page(browser, POPUP)
    try:
        # The popup's pages, opened top-level at the popup's size (no opener: the done page stays).
        page.goto(_connect_url(e2e_stack, user_id))
        expect(
            page.get_by_role("heading", name="wants to access your Sandbox account")
        ).to_be_visible()
        expect(page.locator('input[name="user"]').first).to_be_checked()
        expect(page.locator('button[name="decision"][value="allow"]')).to_be_visible()
        expect(page.locator('button[name="decision"][value="deny"]')).to_be_visible()
        shoot(page, "07-sandbox-consent")

        consent(page)
        expect(page.get_by_role("heading", name="Connected to Sandbox CRM")).to_be_visible()
        expect(page.get_by_role("heading")).to_contain_text("ada@sandbox.test")
        expect(page.get_by_role("button", name="Close window")).to_be_visible()
        assert page.evaluate("document.body.dataset.portalPage") == "connect-done"
        shoot(page, "08-connect-done")
    finally:
        page.context.close()
