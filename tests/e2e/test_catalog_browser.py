"""The marketplace at full catalog size in real Chromium: server-side search while typing,
category filter, "Show more" paging, logos and monogram tiles; plus screenshots of it and of
the operators' page (tests/e2e/screenshots/1*-catalog-*.png, 15-admin.png)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import stack_database
from playwright.sync_api import Browser, FrameLocator, Page, expect

from portal.catalog import load_catalog
from portal.demo import DEMO_APP_SECRET, DemoStack, sandbox_app_settings
from portal.store import ConnectedAccount
from portal.views.ui import PAGE_SIZE

from .conftest import (
    add_test_routes,
    fitted_height,
    insert_account,
    open_host,
    portal_ready,
    settle_images,
)
from .test_screenshots import WIDE, new_page, shoot

pytestmark = pytest.mark.e2e


def every_app_settings(sandbox_url: str) -> dict[str, dict[str, Any]]:
    """``PORTAL_APPS`` making every catalog app usable: placeholder OAuth clients and base
    URLs (nobody connects to them here), the sandbox apps as in the demo."""
    settings: dict[str, dict[str, Any]] = {}
    for app in load_catalog(environ={}):
        entry: dict[str, Any] = {}
        if "client_id" in app.missing:
            entry.update(client_id=f"screenshot-{app.slug}", client_secret="not-a-secret")
        if "base_url" in app.missing:
            entry["base_url"] = f"https://{app.slug}.example"
        settings[app.slug] = entry
    settings.update(sandbox_app_settings(sandbox_url))
    return settings


@pytest.fixture(scope="module")
def catalog_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    tmp = tmp_path_factory.mktemp("catalog")
    running = DemoStack(0, 0, 0, worker=False, **stack_database(tmp, "portal"))
    config = running.portal_app.config
    # DemoStack built the portal already; rebuild it with the whole catalog enabled.
    from portal.service import create_app

    overrides = dict(config)
    overrides.update(PORTAL_ENABLED_APPS=None, PORTAL_APPS=every_app_settings(running.sandbox.url))
    running.portal_app = create_app(
        {k: v for k, v in overrides.items() if k.startswith(("PORTAL_", "SECRET_KEY"))}
    )
    add_test_routes(running.host_app, running.portal.url)
    running.start()
    yield running
    running.stop()


def enabled_count(stack: DemoStack) -> int:
    with stack.portal_app.app_context():
        return len(stack.portal_app.extensions["portal"].enabled_apps())


def open_modal(page: Page, stack: DemoStack, layout: str = "wide") -> FrameLocator:
    open_host(page, stack, "catalog-user")
    page.evaluate("(l) => window.portal.showApps('modal', null, l)", layout)
    frame = page.frame_locator("[role=dialog] iframe")
    # The shell paints the catalog as nobody's first, then swaps in the user's version.
    portal_ready(frame)
    expect(frame.locator("section.portal-market:not([data-portal-anonymous])")).to_be_attached()
    expect(frame.locator("a.portal-card").first).to_be_visible()
    return frame


def showing(frame: FrameLocator, q: str = "", category: str = "") -> None:
    """Wait until the grid shows the search for ``q`` in ``category`` and has settled (a
    debounced search is no request yet, so the settled state alone would come too early)."""
    grid = frame.locator("#portal-app-grid")
    expect(grid).to_have_attribute("data-portal-q", q)
    expect(grid).to_have_attribute("data-portal-category", category)
    portal_ready(frame)


def test_search_filter_and_show_more(browser: Browser, catalog_stack: DemoStack) -> None:
    total = enabled_count(catalog_stack)
    assert total > 2 * PAGE_SIZE
    page = new_page(browser, WIDE)
    try:
        frame = open_modal(page, catalog_stack)
        cards = frame.locator("a.portal-card")
        expect(cards).to_have_count(PAGE_SIZE)
        expect(frame.locator("#portal-market-count")).to_have_text(str(total))
        # Apps without an icon file get a monogram tile, never a broken image.
        assert frame.locator("a.portal-card .portal-monogram").count() > 0
        assert frame.locator("a.portal-card img.portal-logo--glyph").count() > 0

        more = frame.get_by_role("link", name=re.compile(r"^Show \d+ more"))
        more.click()
        expect(cards).to_have_count(2 * PAGE_SIZE)
        # The first new card has the focus, so keyboard users carry on where they were.
        expect(cards.nth(PAGE_SIZE)).to_be_focused()

        search = frame.get_by_role("searchbox", name="Search apps")
        search.press_sequentially("zoho", delay=40)  # one request after the typing stops
        showing(frame, "zoho")
        expect(cards.first).to_contain_text("Zoho")
        for title in cards.locator(".portal-card__title").all_text_contents():
            assert "zoho" in title.lower()
        expect(frame.locator("#portal-market-count")).to_have_text(str(cards.count()))
        expect(frame.locator("#portal-market-status")).to_contain_text(f"of {total} match")

        # Clearing the search and picking a category at once: the later request wins.
        search.fill("")
        # Many categories: a select (a row of pills for a handful).
        frame.get_by_label("Category").select_option("Accounting")
        showing(frame, "", "Accounting")
        expect(cards.first).to_be_visible()
        expect(frame.get_by_role("link", name=re.compile(r"^Show \d+ more"))).to_have_count(0)
        for meta in cards.locator(".portal-card__meta").all_text_contents():
            assert "Accounting" in meta
        # Enter submits the form through htmx: the iframe does not navigate away.
        search.fill("stripe")
        search.press("Enter")
        showing(frame, "stripe", "Accounting")
        expect(cards).to_have_count(0)
        expect(frame.locator(".portal-empty")).to_contain_text(
            "No apps match “stripe” in Accounting"
        )
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("name", "layout", "dark"),
    [
        ("10-catalog-modal-wide", "wide", False),
        ("11-catalog-modal-narrow", "narrow", False),
        ("13-catalog-dark", "wide", True),
    ],
)
def test_screenshot_catalog_modal(
    browser: Browser, catalog_stack: DemoStack, name: str, layout: str, dark: bool
) -> None:
    page = new_page(browser, WIDE, dark=dark)
    try:
        frame = open_modal(page, catalog_stack, layout)
        settle_images(frame)
        shoot(page, name)
    finally:
        page.context.close()


def test_screenshot_catalog_inline(browser: Browser, catalog_stack: DemoStack) -> None:
    page = new_page(browser, {"width": 480, "height": 1000})
    try:
        open_host(page, catalog_stack, "catalog-user")
        page.evaluate("window.portal.showApps('inline', 'container', 'narrow')")
        frame = page.frame_locator("#container iframe")
        portal_ready(frame)
        expect(frame.locator("section.portal-market:not([data-portal-anonymous])")).to_be_attached()
        expect(frame.locator("a.portal-card").first).to_be_visible()
        settle_images(frame)
        fitted_height(page, "#container iframe")  # the iframe follows its content's height
        page.evaluate("window.scrollTo(0, 0)")
        # The iframe is as tall as its content; the viewport shows its top.
        shoot(page, "12-catalog-inline")
    finally:
        page.context.close()


def test_screenshot_admin(browser: Browser, e2e_stack: DemoStack) -> None:
    """The demo stack: the three sandbox apps ready, the rest of the catalog to register."""
    for n, status in enumerate(("active", "active", "needs_reauth")):
        account = insert_account(e2e_stack, f"admin-shot-{n}", f"user{n}@sandbox.test", f"a{n}")
        if status != "active":
            with e2e_stack.portal_app.extensions["portal"].store.session() as db:
                db.get(ConnectedAccount, account["id"]).status = status
    shots = (
        ("14-admin-signin", False, None),
        ("15-admin", False, "#portal-admin-ready"),
        ("16-admin-todo", False, "#portal-admin-todo"),
        ("17-admin-dark", True, "#portal-admin-ready"),
    )
    for name, dark, section in shots:
        page = new_page(browser, WIDE, dark=dark)
        try:
            page.goto(e2e_stack.portal.url + "/portal/admin")
            expect(page.get_by_role("heading", name="Operators only")).to_be_visible()
            if section is not None:
                page.get_by_label("App secret").fill(DEMO_APP_SECRET)
                page.get_by_role("button", name="Show the overview").click()
                expect(page.locator(section)).to_be_visible()
                expect(page.locator("#portal-admin-ready ~ div")).to_contain_text("Sandbox CRM")
                if section == "#portal-admin-todo":
                    page.locator(section).scroll_into_view_if_needed()
                    page.evaluate("window.scrollBy(0, -24)")
            shoot(page, name)
        finally:
            page.context.close()
