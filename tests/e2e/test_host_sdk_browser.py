"""The host-page SDK (static/portal.js) and the frame script (static/frame.js) as an end user
feels them on a page with several portal views: focus stays in the modal, the views agree after
a connect or disconnect, the modal is a sheet on phones and shows its loading state (issue 12,
DESIGN.md "Host-page SDK")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Frame, Page, Route, expect

from portal.demo import DemoStack

from .conftest import new_context, open_host, portal_ready, wait_event

pytestmark = pytest.mark.e2e

DIALOG = "[role=dialog]"


def open_demo(page: Page, stack: DemoStack) -> None:
    """The demo host page with its inline portal and its iframe embed settled."""
    page.goto(stack.host.url + "/")
    expect(page.locator("#sdk-status")).to_have_text("SDK ready for demo-user-1.")
    portal_ready(page.frame_locator("#inline-portal iframe"))
    portal_ready(page.frame_locator("#embed-frame"))


def frame_name(page: Page, frame: Frame) -> str:
    """Which view ``frame`` is: host, modal, inline, embed (by the iframe element holding it)."""
    if frame == page.main_frame:
        return "host"
    element = frame.frame_element()
    try:
        return str(
            element.evaluate(
                "(f) => f.closest('dialog') ? 'modal' : f.closest('#inline-portal') ? 'inline'"
                " : f.id === 'embed-frame' ? 'embed' : f.hidden ? 'rpc' : 'other'"
            )
        )
    finally:
        element.dispose()


def focus_owner(page: Page) -> tuple[str, str]:
    """Where the keyboard focus really is: the innermost document whose ``hasFocus()`` is true
    (a parent's is true too while focus is in its child frame), and its active element."""
    owner: tuple[str, str] = ("none", "")
    for frame in page.frames:
        if frame.is_detached():
            continue
        try:
            state: Any = frame.evaluate(
                "() => [document.hasFocus(), document.activeElement ?"
                " document.activeElement.tagName + ' ' + (document.activeElement.textContent || '')"
                ".trim().slice(0, 30) : '']"
            )
        except Exception:  # a frame navigating away meanwhile: not where the focus is
            continue
        if state[0] and not str(state[1]).startswith("IFRAME"):
            owner = (frame_name(page, frame), str(state[1]))
    return owner


def view(page: Page, name: str) -> Frame:
    """The Playwright frame of the view ``name`` (modal, inline, embed)."""
    for frame in page.frames:
        if frame != page.main_frame and not frame.is_detached() and frame_name(page, frame) == name:
            return frame
    raise AssertionError(f"no {name} frame")


# Records every key press and click a view behind the modal receives.
RECORD_INPUT = """() => { window.__input = [];
  for (const type of ['keydown', 'click']) document.addEventListener(type, (e) =>
    window.__input.push(type + ' ' + (e.key || '') + ' ' + e.target.tagName), true); }"""


def test_focus_stays_in_the_modal_on_a_page_with_inline_and_embed(
    page: Page, e2e_stack: DemoStack
) -> None:
    open_demo(page, e2e_stack)
    behind = [view(page, "inline"), view(page, "embed")]
    for frame in behind:
        frame.evaluate(RECORD_INPUT)
    page.click("#open-modal")
    expect(page.locator(DIALOG)).to_be_visible()
    portal_ready(page.frame_locator(f"{DIALOG} iframe"))
    modal = view(page, "modal")
    # The modal's own document holds the focus once it has loaded, not just its iframe element
    # in the host page (Chromium reports that one even when the focus is nowhere or elsewhere).
    modal.wait_for_function("() => document.hasFocus()")
    seen = [("start", focus_owner(page))]
    for key in ["Tab"] * 30 + ["Shift+Tab"] * 30:
        page.keyboard.press(key)
        owner = focus_owner(page)
        seen.append((key, owner))
        assert owner[0] == "modal", seen
    # Something moves the focus into the embed behind the modal (a script, a stray click):
    # the modal takes it back before the next key, so Enter never acts on the embed.
    view(page, "embed").evaluate("document.querySelector('select, a[href], button').focus()")
    modal.wait_for_function("() => document.hasFocus()")
    page.keyboard.press("Enter")
    for frame in behind:
        assert frame.evaluate("window.__input") == [], frame_name(page, frame)
    # Esc from inside the modal's iframe closes it.
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_have_count(0)
    page.wait_for_function(
        "window.demoEvents.some((e) => e.via === 'sdk' && e.type === 'modal-closed')"
    )


def test_views_of_one_instance_agree_after_connect_and_disconnect(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    """An API-key app connected and disconnected in the modal: the inline marketplace of the same
    SDK instance shows it without a page reload (the SDK tells its other frames)."""
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApps('inline', 'container', 'narrow')")
    inline = page.frame_locator("#container iframe")
    portal_ready(inline)
    card = inline.locator("a.portal-card", has_text="Sandbox Analytics")
    expect(card).to_be_visible()
    expect(card.locator(".portal-card__badge")).to_have_count(0)
    # Marks in both documents: a reload of either would lose them.
    page.evaluate("window.notReloaded = true")
    inline.locator("body").evaluate("() => { window.notReloaded = true; }")

    page.evaluate("window.portal.showApp('sandbox-keys', 'modal')")
    modal = page.frame_locator(f"{DIALOG} iframe")
    portal_ready(modal)
    with page.expect_popup() as info:
        modal.locator("[data-portal-connect]").click()
    popup = info.value
    popup.fill('input[name="api_key"]', "sk_demo_ada")
    with popup.expect_event("close"):
        popup.click('button[type="submit"]')
    wait_event(page, "app-connected")
    expect(card.locator(".portal-card__badge")).to_have_text("Connected")

    disconnect = modal.locator("[data-portal-disconnect]")
    disconnect.click()
    expect(disconnect).to_have_text("Confirm disconnect")
    disconnect.click()
    wait_event(page, "app-disconnected")
    expect(card.locator(".portal-card__badge")).to_have_count(0)
    portal_ready(inline)
    assert page.evaluate("window.notReloaded") is True
    assert inline.locator("body").evaluate("() => window.notReloaded") is True


SHOTS = Path("/tmp/h3-shots")


def shot(page: Page, name: str) -> None:
    """A screenshot to look at (not compared): /tmp/h3-shots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), animations="disabled", caret="hide")


def test_modal_shows_loading_state_and_closes_while_its_frame_loads(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    """A slow network: the modal's document is held back. The modal shows a spinner and a
    focused close button meanwhile, never a blank box; the close button and Esc close it."""
    open_host(page, e2e_stack, user_id)
    held: list[Route] = []
    # Answered only when the test says so.
    page.route("**/portal/embed/apps?*", lambda route: held.append(route))
    page.evaluate("() => { window.portal.showApps('modal'); }")
    dialog = page.locator(DIALOG)
    status = dialog.get_by_role("status")
    expect(status).to_have_text("Loading…")
    expect(status).to_be_visible()
    close = dialog.get_by_role("button", name="Close")
    expect(close).to_be_focused()
    box = status.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 400, box
    shot(page, "modal-loading")
    close.click()
    expect(dialog).to_have_count(0)
    wait_event(page, "modal-closed")

    # Esc closes it too while loading; then the held answer arrives and the portal replaces the
    # loading state.
    page.evaluate("() => { window.portal.showApps('modal'); }")
    expect(status).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    wait_event(page, "modal-closed", count=2)
    page.evaluate("() => { window.portal.showApps('modal'); }")
    expect(status).to_be_visible()
    # The first two requests went with their closed modals; the third goes on now.
    assert len(held) == 3, held
    held[-1].continue_()
    portal_ready(page.frame_locator(f"{DIALOG} iframe"))
    expect(status).to_have_count(0)
    expect(dialog.locator("> button")).to_have_count(0)


def test_modal_is_a_full_screen_sheet_on_a_phone(
    browser: Browser, e2e_stack: DemoStack, user_id: str
) -> None:
    context = new_context(browser, viewport={"width": 375, "height": 740})
    try:
        page = context.new_page()
        open_host(page, e2e_stack, user_id)
        page.evaluate("() => { window.portal.showApps('modal', null, 'narrow'); }")
        frame = page.frame_locator(f"{DIALOG} iframe")
        portal_ready(frame)
        expect(frame.locator("a.portal-card").first).to_be_visible()
        box = page.locator(DIALOG).bounding_box()
        assert box == {"x": 0, "y": 0, "width": 375, "height": 740}, box
        inner = page.locator(f"{DIALOG} iframe").bounding_box()
        assert inner is not None and inner["width"] == 375 and inner["height"] >= 730, inner
        shot(page, "modal-phone-375")
        # The focus ring on the modal's first control, as a keyboard user sees it.
        page.keyboard.press("Tab")
        shot(page, "modal-phone-focus")
    finally:
        context.close()
