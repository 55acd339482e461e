"""The state a portal document exposes for whoever must wait on it (tests, host tooling):
``body[data-portal-state]`` from static/frame.js, and the marketplace grid's
``data-portal-q`` / ``data-portal-category``. The marketplace shell paints nobody's cards first
and htmx then swaps in the user's version; a test that acts on the first paint's elements
races that swap ("Element is not attached to the DOM", a search typed into a box about to be
replaced). These tests hold the portal's requests in the browser to see each state."""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from portal.demo import DemoStack

from .conftest import TIMEOUT, insert_account, open_host

pytestmark = pytest.mark.e2e

MARKETPLACE = re.compile(r"/portal/ui/apps\?")


def test_shell_is_ready_only_once_the_users_content_has_settled(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    insert_account(e2e_stack, user_id, "ada@sandbox.test", "settled-ada")
    held = hold(page, MARKETPLACE)  # the iframe's htmx requests wait for the test
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApps('modal')")
    frame = page.frame_locator("[role=dialog] iframe")
    state = frame.locator("body")
    crm = frame.locator("a.portal-card", has_text="Sandbox CRM")

    # The first paint is visible (nobody's cards), but the user's version is still to come.
    expect(frame.locator("section.portal-market[data-portal-anonymous]")).to_be_attached()
    expect(crm).to_be_visible()
    expect(state).to_have_attribute("data-portal-state", "busy")
    route = next_held(page, held)
    assert urlparts(route.request.url) == ("/portal/ui/apps", "")
    expect(crm).not_to_contain_text("Connected")

    route.continue_()
    expect(state).to_have_attribute("data-portal-state", "ready")
    # Ready means the swap is done: the user's own marketplace, with the connected badge.
    expect(frame.locator("section.portal-market[data-portal-anonymous]")).to_have_count(0)
    expect(crm).to_contain_text("Connected")
    assert frame.locator("body .htmx-request, body .htmx-settling").count() == 0

    # A search is busy until its grid is in; the grid says which search it shows.
    grid = frame.locator("#portal-app-grid")
    expect(grid).to_have_attribute("data-portal-q", "")
    frame.get_by_role("searchbox", name="Search apps").fill("analytics")
    expect(state).to_have_attribute("data-portal-state", "busy")
    route = next_held(page, held)
    assert urlparts(route.request.url) == ("/portal/ui/apps", "analytics")
    expect(grid).to_have_attribute("data-portal-q", "")
    route.continue_()
    expect(state).to_have_attribute("data-portal-state", "ready")
    expect(grid).to_have_attribute("data-portal-q", "analytics")
    expect(grid).to_have_attribute("data-portal-category", "")
    expect(frame.locator("a.portal-card")).to_have_count(1)


def test_app_page_shell_is_loading_until_its_content_is_in(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    held = hold(page, re.compile(r"/portal/ui/apps/sandbox\?"))
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApp('sandbox', 'modal')")
    frame = page.frame_locator("[role=dialog] iframe")
    state = frame.locator("body")
    expect(state).to_have_attribute("data-portal-state", "busy")
    expect(frame.locator(".portal-skeleton")).to_be_attached()
    next_held(page, held).continue_()
    expect(state).to_have_attribute("data-portal-state", "ready")
    expect(frame.locator("[data-portal-connect]")).to_be_enabled()


def hold(page: Page, url: re.Pattern[str]) -> list[Route]:
    """Requests of ``page`` (and its frames) to ``url`` wait in the returned list until the
    test continues them."""
    held: list[Route] = []

    def handler(route: Route) -> None:
        held.append(route)

    page.route(url, handler)
    return held


def next_held(page: Page, held: list[Route]) -> Route:
    """The oldest held request. The browser may show its effect (``busy``) before the test has
    been handed the route, so Playwright's events are pumped (short waits, bounded by
    :data:`TIMEOUT`) until it is there."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while not held:
        assert time.monotonic() < deadline, "no request was held"
        page.wait_for_timeout(20)  # lets Playwright deliver the route to the handler
    return held.pop(0)


def urlparts(url: str) -> tuple[str, str]:
    """(path, the ``q`` parameter) of a request URL."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query).get("q", [""])[0]


def test_a_card_clicked_while_the_users_marketplace_loads_is_not_swapped_away(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    held = hold(page, MARKETPLACE)
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApps('modal')")
    frame = page.frame_locator("[role=dialog] iframe")
    state = frame.locator("body")
    expect(state).to_have_attribute("data-portal-state", "busy")  # the user's version is held
    frame.locator("a.portal-card", has_text="Sandbox CRM").click()
    expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM")
    # The marketplace's answer comes late; it must not take the user back to the grid.
    with contextlib.suppress(PlaywrightError):  # the page has dropped that request
        next_held(page, held).continue_()
    expect(state).to_have_attribute("data-portal-state", "ready")
    expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM")
    expect(frame.locator("#portal-app-grid")).to_have_count(0)
    expect(frame.locator("[data-portal-connect]")).to_be_enabled()
