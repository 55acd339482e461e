"""The end user always sees what happened (issue 12): apps that ask for account fields before
OAuth connect in Chromium without a CSP violation, and a failed connect shows a plain message
with a Retry button in the app page. Real Chromium, real sandbox provider on loopback."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, FrameLocator, Page, expect

from portal.demo import DemoStack

from .conftest import consent, open_host, wait_event

pytestmark = pytest.mark.e2e

# Reports every CSP violation of every page (the popup's too) on the console.
CSP_PROBE = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP-VIOLATION ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + location.href);
});
"""


def watch_csp(context: BrowserContext, page: Page) -> list[str]:
    """Collect CSP violation reports (probe events and Chromium's own console errors) of
    ``page`` and every page the context opens later (popups)."""
    context.add_init_script(CSP_PROBE)
    messages: list[str] = []

    def watch(p: Page) -> None:
        def record(m: ConsoleMessage) -> None:
            if "Content Security Policy" in m.text or "CSP-VIOLATION" in m.text:
                messages.append(f"{m.location.get('url')}: {m.text}")

        p.on("console", record)

    watch(page)
    context.on("page", watch)
    return messages


def test_fields_form_then_oauth_connects_without_csp_violation(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    messages = watch_csp(context, page)
    open_host(page, e2e_stack, user_id, app="sandbox-regional")
    with page.expect_popup() as info:
        page.click("#connect")
    popup = info.value
    # The portal's own form step asks where the account is before going to the provider.
    expect(popup.get_by_role("heading", name="Connect Sandbox Helpdesk")).to_be_visible()
    assert popup.url.startswith(e2e_stack.portal.url + "/")
    popup.get_by_label("Data region").select_option("eu")
    popup.get_by_label("Workspace").fill("acme")
    popup.get_by_role("button", name="Continue").click()
    # The provider's consent page of that region and workspace (another origin).
    expect(popup.locator('button[name="decision"][value="allow"]')).to_be_visible()
    assert popup.url.startswith(e2e_stack.sandbox.url + "/regions/eu/tenants/acme/")
    with popup.expect_event("close", timeout=10_000):
        consent(popup)
    payload = wait_event(page, "app-connected")["payload"]
    assert payload["app"]["name"] == "sandbox-regional"
    assert len(payload["connected_accounts"]) == 1
    assert messages == []


def open_sandbox_app_page(page: Page) -> FrameLocator:
    """``showApp('sandbox', 'modal')`` on the host page; returns the dialog's iframe once the
    app page with its Connect button is there."""
    page.evaluate("window.portal.showApp('sandbox', 'modal')")
    frame = page.frame_locator("[role=dialog] iframe")
    expect(frame.get_by_role("button", name="Connect Sandbox CRM")).to_be_enabled()
    return frame


def test_deny_shows_message_and_retry_starts_a_new_connect(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    messages = watch_csp(context, page)
    open_host(page, e2e_stack, user_id)
    frame = open_sandbox_app_page(page)
    with page.expect_popup() as info:
        frame.get_by_role("button", name="Connect Sandbox CRM").click()
    popup = info.value
    with popup.expect_event("close", timeout=10_000):
        consent(popup, decision="deny")
    error = wait_event(page, "error")["payload"]
    assert error["type"] == "access_denied"  # the code stays in the event payload
    alert = frame.get_by_role("alert")
    expect(alert).to_contain_text("You chose not to connect Sandbox CRM.")
    retry = alert.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    # Retry opens a new connect window with a fresh ticket; this time the user allows.
    with page.expect_popup() as info:
        retry.click()
    again = info.value
    expect(frame.get_by_role("alert")).to_have_count(0)
    with again.expect_event("close", timeout=10_000):
        consent(again)
    payload = wait_event(page, "app-connected")["payload"]
    assert payload["app"]["name"] == "sandbox"
    expect(frame.locator(".portal-account", has_text="ada@sandbox.test")).to_be_visible()
    assert messages == []


def test_closed_popup_says_the_window_was_closed(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    messages = watch_csp(context, page)
    open_host(page, e2e_stack, user_id)
    frame = open_sandbox_app_page(page)
    with page.expect_popup() as info:
        frame.get_by_role("button", name="Connect Sandbox CRM").click()
    popup = info.value
    expect(popup.locator('button[name="decision"][value="allow"]')).to_be_visible()
    popup.close()
    assert wait_event(page, "error")["payload"]["type"] == "window_closed"
    alert = frame.get_by_role("alert")
    expect(alert).to_contain_text("The window was closed before the connection finished.")
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
    expect(frame.get_by_role("button", name="Connect Sandbox CRM")).to_be_enabled()
    page.screenshot(path="/tmp/h10-failure-light.png")
    page.set_viewport_size({"width": 375, "height": 740})
    expect(alert.get_by_role("button", name="Retry")).to_be_in_viewport()
    page.screenshot(path="/tmp/h10-failure-phone.png")
    assert messages == []
