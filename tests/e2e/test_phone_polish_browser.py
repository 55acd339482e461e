"""The portal's own pages on a phone and the end user's small moments (issue 12, "phones" and
"polish"), in real Chromium against the loopback demo stack:

- at 375 px nothing inside the portal frame is cut or scrolls sideways: app names wrap, a long
  e-mail label breaks only after ``@`` or a dot, the search spans the width;
- the disconnect confirmation has a Cancel, reachable by keyboard, and Escape cancels it too;
- the API-key form opens with the focus in the key field and, after a refused key, puts it
  back there and says why the field is empty.

Every wait is on a state (``body[data-portal-state]``, events), never on an element a swap
replaces. Screenshots go to /tmp/h4-shots/ (``H4_SHOTS`` to change it) for review by eye; they
assert no pixels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Frame, Page, expect

from portal.demo import DemoStack

from .conftest import (
    consent,
    events,
    fitted_height,
    insert_account,
    open_host,
    portal_frame,
    portal_ready,
    press_away,
    settle_images,
    wait_event,
)

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("H4_SHOTS", "/tmp/h4-shots"))
PHONE = {"width": 375, "height": 740}
LONG_LABEL = "marie-claire.delacroix-fontaine@research.example-university.org"
INLINE = "#container iframe"

# In the portal document: every element of the given selectors whose content is wider than its
# box (cut, or scrolling sideways), and whether the document itself scrolls sideways.
OVERFLOWS = """(selectors) => {
  const cut = [...document.querySelectorAll(selectors)]
    .filter((el) => el.scrollWidth > el.clientWidth)
    .map((el) => el.className + ' [' + el.textContent.trim() + '] ' + el.scrollWidth + '>' + el.clientWidth);
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) cut.push('document ' + root.scrollWidth + '>' + root.clientWidth);
  return cut;
}"""

# Where the lines of an element's text break: for each new line, the characters either side.
LINE_BREAKS = """(el) => {
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const chars = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i += 1) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (rect) chars.push({ c: node.data[i], top: rect.top });
    }
  }
  const breaks = [];
  for (let i = 1; i < chars.length; i += 1) {
    if (chars[i].top > chars[i - 1].top + 2) breaks.push(chars[i - 1].c + chars[i].c);
  }
  return breaks;
}"""


def shoot(page: Page, name: str) -> Path:
    """A screenshot of ``page`` once every frame's fonts are in."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    for frame in page.frames:
        frame.evaluate("document.fonts.ready.then(() => true)")
    # The viewport only: Chromium leaves an iframe's part below the viewport unpainted in a
    # full-page capture, and the first screen is what the phone user sees.
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    return path


def phone_inline(page: Page, stack: DemoStack, user: str, show: str, dark: bool = False) -> Frame:
    """The e2e host page at 375 px with the portal inline, as wide as the page allows (the test
    page's container is 380 px; set through the CSSOM, which the host's CSP permits)."""
    page.set_viewport_size(PHONE)
    page.emulate_media(color_scheme="dark" if dark else "light", reduced_motion="reduce")
    open_host(page, stack, user)
    page.evaluate("document.getElementById('container').style.width = 'auto'")
    page.evaluate(show)
    fitted_height(page, INLINE)
    return portal_frame(page, INLINE)


def overflows(frame: Frame, selectors: str) -> list[str]:
    found: list[str] = frame.evaluate(OVERFLOWS, selectors)
    return found


@pytest.mark.parametrize("layout", ["wide", "narrow"])
def test_marketplace_at_375px_wraps_names_and_search_spans_the_width(
    page: Page, e2e_stack: DemoStack, user_id: str, layout: str
) -> None:
    # "Connected" badges (one with a count) leave the names in a row less room.
    for n, app in enumerate(("sandbox-keys", "sandbox-keys", "sandbox-tenant-keys", "sandbox-m2m")):
        insert_account(e2e_stack, user_id, f"user{n}@sandbox.test", f"id-{n}", app)
    frame = phone_inline(
        page, e2e_stack, user_id, f"window.portal.showApps('inline', 'container', '{layout}')"
    )
    inner = page.frame_locator(INLINE)
    settle_images(inner)
    assert frame.evaluate("document.documentElement.clientWidth") <= 375
    titles = inner.locator(".portal-card__title")
    expect(titles.filter(has_text="Sandbox Status Pages")).to_be_visible()
    expect(inner.locator(".portal-card--connected")).to_have_count(3)
    assert overflows(frame, ".portal-card__title, .portal-card, .portal-market__header") == []
    search: Any = inner.locator(".portal-search").bounding_box()
    header: Any = inner.locator(".portal-market__header").bounding_box()
    assert abs(search["width"] - header["width"]) <= 1, (search, header)
    if layout == "narrow":
        # A name beside a badge really needed a second line: the check above checked something.
        wrapped = titles.evaluate_all(
            "(els) => els.filter((el) => el.getBoundingClientRect().height >"
            " 1.6 * parseFloat(getComputedStyle(el).lineHeight)).map((el) => el.textContent)"
        )
        assert wrapped, "no app name needed two lines at 375 px"
    shoot(page, f"01-marketplace-375-{layout}-light")


def test_marketplace_at_375px_dark(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    frame = phone_inline(
        page, e2e_stack, user_id, "window.portal.showApps('inline', 'container')", dark=True
    )
    inner = page.frame_locator(INLINE)
    settle_images(inner)
    assert frame.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    assert overflows(frame, ".portal-card__title, .portal-card, .portal-market__header") == []
    shoot(page, "02-marketplace-375-wide-dark")


def test_long_email_label_breaks_only_after_at_or_dot_at_375px(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    insert_account(e2e_stack, user_id, LONG_LABEL, "1")
    frame = phone_inline(
        page, e2e_stack, user_id, "window.portal.showApp('sandbox', 'inline', 'container')"
    )
    inner = page.frame_locator(INLINE)
    settle_images(inner)
    label = inner.locator(".portal-account__label")
    expect(label).to_have_text(LONG_LABEL)
    expect(inner.locator(".portal-account__id")).to_have_text("ID 1")
    assert overflows(frame, ".portal-account__label, .portal-account__id, .portal-account") == []
    breaks: list[str] = label.evaluate(LINE_BREAKS)
    assert breaks, "the label fit on one line: nothing was checked"
    assert all(pair[0] in "@." for pair in breaks), breaks
    # The copied text has no break characters in it.
    assert label.evaluate("(el) => el.innerText.replace(/\\s/g, '')") == LONG_LABEL
    shoot(page, "03-app-page-375-long-email")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_disconnect_confirmation_has_a_keyboard_cancel(
    page: Page, e2e_stack: DemoStack, user_id: str, scheme: str
) -> None:
    account = insert_account(e2e_stack, user_id, "ada@sandbox.test", "1")
    phone_inline(
        page,
        e2e_stack,
        user_id,
        "window.portal.showApp('sandbox', 'inline', 'container')",
        dark=scheme == "dark",
    )
    inner = page.frame_locator(INLINE)
    disconnect = inner.locator(f'[data-portal-account-id="{account["id"]}"]')
    cancel = inner.get_by_role("button", name="Cancel")
    expect(cancel).to_be_hidden()

    disconnect.focus()
    page.keyboard.press("Enter")
    expect(disconnect).to_have_text("Confirm disconnect")
    expect(cancel).to_be_visible()
    shoot(page, f"04-disconnect-confirm-375-{scheme}")
    page.keyboard.press("Tab")
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    expect(disconnect).to_have_text("Disconnect")
    expect(cancel).to_be_hidden()
    expect(disconnect).to_be_focused()

    # Escape takes the question back as well, from the confirm button itself.
    page.keyboard.press("Enter")
    expect(disconnect).to_have_text("Confirm disconnect")
    page.keyboard.press("Escape")
    expect(disconnect).to_have_text("Disconnect")
    expect(disconnect).to_be_focused()
    portal_ready(inner)
    assert events(page, "app-disconnected") == []
    expect(inner.locator(".portal-account")).to_have_count(1)

    # Confirmed, it disconnects.
    disconnect.click()
    expect(cancel).to_be_visible()
    disconnect.click()
    payload = wait_event(page, "app-disconnected")["payload"]
    assert payload["connectedAccountId"] == account["id"]
    expect(inner.locator(".portal-account")).to_have_count(0)


def test_disconnect_cancel_escape_does_not_close_the_modal(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    """In the modal, Escape on a pending confirmation cancels it; the next Escape closes."""
    account = insert_account(e2e_stack, user_id, "ada@sandbox.test", "1")
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApp('sandbox', 'modal')")
    inner = page.frame_locator("[role=dialog] iframe")
    portal_ready(inner)
    disconnect = inner.locator(f'[data-portal-account-id="{account["id"]}"]')
    disconnect.click()
    expect(disconnect).to_have_text("Confirm disconnect")
    page.keyboard.press("Escape")
    expect(disconnect).to_have_text("Disconnect")
    assert events(page, "modal-closed") == []
    press_away(inner)
    wait_event(page, "modal-closed")


def open_key_form(page: Page, stack: DemoStack, user: str, app: str) -> Page:
    frame = phone_inline(
        page, stack, user, f"window.portal.showApp('{app}', 'inline', 'container')"
    )
    assert frame is not None
    inner = page.frame_locator(INLINE)
    with page.expect_popup() as info:
        inner.locator("[data-portal-connect]").click()
    popup = info.value
    expect(popup.locator("body")).to_have_attribute("data-portal-state", "ready")
    return popup


def test_key_form_focus_and_a_refused_key(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    popup = open_key_form(page, e2e_stack, user_id, "sandbox-keys")
    key = popup.locator("#api_key")
    expect(key).to_be_focused()
    # Typing goes straight into the key field.
    popup.keyboard.type("sk_not_a_key")
    expect(key).to_have_value("sk_not_a_key")
    with popup.expect_navigation():
        popup.keyboard.press("Enter")
    expect(popup.locator("body")).to_have_attribute("data-portal-state", "ready")
    expect(popup.get_by_role("alert")).to_contain_text("did not accept")
    expect(key).to_be_focused()
    expect(key).to_have_value("")
    expect(popup.locator(".portal-help--cleared")).to_have_text(
        "For your security, this field was cleared. Please enter it again."
    )
    popup.set_viewport_size({"width": 375, "height": 700})
    shoot(popup, "05-key-form-error-375")
    # The right key then connects.
    key.fill("sk_demo_ada")
    with popup.expect_event("close"):
        popup.get_by_role("button", name="Connect").click()
    wait_event(page, "app-connected")


def test_connect_failure_with_retry_at_375px(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    phone_inline(
        page, e2e_stack, user_id, "window.portal.showApp('sandbox', 'inline', 'container')"
    )
    inner = page.frame_locator(INLINE)
    with page.expect_popup() as info:
        inner.get_by_role("button", name="Connect Sandbox CRM").click()
    popup = info.value
    with popup.expect_event("close"):
        consent(popup, decision="deny")
    assert wait_event(page, "error")["payload"]["type"] == "access_denied"
    alert = inner.get_by_role("alert")
    expect(alert).to_contain_text("You chose not to connect Sandbox CRM.")
    expect(alert.get_by_role("button", name="Retry")).to_be_visible()
    fitted_height(page, INLINE)
    frame = portal_frame(page, INLINE)
    assert overflows(frame, ".portal-connect-failure, .portal-connect__note") == []
    shoot(page, "06-connect-failure-retry-375")


def test_connect_note_on_a_key_app(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    phone_inline(
        page, e2e_stack, user_id, "window.portal.showApp('sandbox-keys', 'inline', 'container')"
    )
    note = page.frame_locator(INLINE).locator(".portal-connect__note")
    expect(note).to_have_text("You'll enter your Sandbox Analytics API key in a new window.")
    shoot(page, "07-key-app-page-375")


def test_invalid_connect_link_page_at_375px(page: Page, e2e_stack: DemoStack) -> None:
    """The popup's own error page (a connect link that cannot be used): a plain heading and
    sentence, the status code last, nothing wider than the phone."""
    page.set_viewport_size(PHONE)
    page.goto(f"{e2e_stack.portal.url}/portal/connect/sandbox?ticket=not-a-ticket")
    expect(page.locator("body")).to_have_attribute("data-portal-state", "ready")
    expect(page.get_by_role("heading", level=1)).to_have_text("That didn't work")
    expect(page.locator(".portal-error__message")).to_have_text("This connect link is not valid.")
    assert overflows(page.main_frame, ".portal-error, .portal-error__title") == []
    shoot(page, "08-popup-error-page-375")


def test_key_form_with_account_fields_fits_a_phone(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    """The form of a key app that also asks where the account is (region, workspace between
    "https://" and ".status.example"): its first field has the focus, nothing is wider than a
    375 px window, and after a refused key the workspace typed is still there."""
    popup = open_key_form(page, e2e_stack, user_id, "sandbox-tenant-keys")
    popup.set_viewport_size({"width": 375, "height": 740})
    expect(popup.get_by_label("Data region")).to_be_focused()
    popup.get_by_label("Data region").select_option("eu")
    popup.get_by_label("Workspace").fill("a-rather-long-workspace-name")
    popup.get_by_label("API key").fill("sk_not_a_key")
    with popup.expect_navigation():
        popup.get_by_role("button", name="Connect").click()
    expect(popup.locator("body")).to_have_attribute("data-portal-state", "ready")
    expect(popup.get_by_label("API key")).to_be_focused()
    expect(popup.get_by_label("Workspace")).to_have_value("a-rather-long-workspace-name")
    expect(popup.get_by_label("Data region")).to_have_value("eu")
    assert overflows(popup.main_frame, ".portal-form, .portal-field, .portal-input-group") == []
    shoot(popup, "09-key-form-with-fields-error-375")
