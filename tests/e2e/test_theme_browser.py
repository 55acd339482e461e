"""Themes, the modal's backdrop, reflow at 320 CSS px and the connect announcement (issue 15,
items 1 and 3), in real Chromium against the loopback demo stack.

The host page is the e2e page, whose CSP is strict (``style-src 'self'``, no inline style):
the session's theme goes in as ``new ConnectPortal({theme})`` (``?theme=<JSON>``), reaches the
portal frame as a served stylesheet, and no frame logs a CSP violation. Screenshots go to
/tmp/h13-shots/ (``H13_SHOTS``) for review by eye; they assert no pixels."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Frame, Page, expect

from portal.demo import DemoStack

from .conftest import (
    consent,
    host_page_url,
    insert_account,
    new_context,
    portal_frame,
    portal_ready,
    wait_event,
)
from .test_accessibility_browser import audit, connect_url

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("H13_SHOTS", "/tmp/h13-shots"))
TEAL = {"mode": "light", "accent": "#0f766e", "radius": "4px", "font": "Georgia, serif"}
AMBER = {"mode": "dark", "accent": "#f59e0b", "radius": "16px", "density": "compact"}
#: The portal's light and dark text colours (static/portal.css --portal-text).
LIGHT_TEXT = "rgb(23, 23, 28)"
DARK_TEXT = "rgb(236, 236, 241)"
#: Its dark page background (an inline view in light has none: the host's shows through).
DARK_BG = "rgb(13, 13, 17)"

#: WCAG 1.4.10 Reflow: in the portal document, every element (visually-hidden ones aside)
#: whose content is wider than its box while the box cuts or scrolls it sideways, and whether
#: the document itself scrolls sideways.
CLIPPED = """() => {
  const cut = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.portal-visually-hidden, [hidden], [aria-hidden=true]')) continue;
    const x = getComputedStyle(el).overflowX;
    if (x !== 'visible' && el.scrollWidth > el.clientWidth + 1) {
      cut.push(el.tagName + '.' + el.className + ' [' + el.textContent.trim().slice(0, 40) + '] ' +
        el.scrollWidth + '>' + el.clientWidth);
    }
  }
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) cut.push('document ' + root.scrollWidth + '>' + root.clientWidth);
  return cut;
}"""


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for frame in page.frames:
        frame.evaluate("document.fonts.ready.then(() => true)")
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def one_pixel_red(png: bytes) -> int:
    """The red channel of a 1x1 PNG (RFC 2083): its IDAT chunks, inflated, are one scanline,
    a filter byte then the pixel, which every filter leaves as is when nothing is above or left."""
    data, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    return zlib.decompress(data)[1]


def watch_csp(page: Page) -> list[str]:
    """Chromium's console reports of CSP violations in ``page`` and its frames."""
    messages: list[str] = []

    def record(m: ConsoleMessage) -> None:
        if "Content Security Policy" in m.text:
            messages.append(f"{m.location.get('url')}: {m.text}")

    page.on("console", record)
    return messages


def open_themed(page: Page, stack: DemoStack, user: str, theme: dict[str, str] | None) -> None:
    params = {"theme": json.dumps(theme)} if theme else {}
    page.goto(host_page_url(stack, user, **params))
    wait_event(page, "ready")


def themed_frame(page: Page, show: str) -> Frame:
    """Run ``show`` on the host page; the portal frame once settled with its theme applied."""
    page.evaluate(show)
    frame = portal_frame(page)
    inner = page.frame_locator("[role=dialog] iframe, #container iframe").first
    expect(inner.locator("link[href*='theme.css']")).to_have_count(1)
    frame.wait_for_function(
        "() => [...document.styleSheets].some((s) => s.href && s.href.includes('theme.css'))"
    )
    return frame


@pytest.fixture
def themed(browser: Browser) -> Any:
    contexts: list[BrowserContext] = []

    def open_page(dark: bool = False, viewport: dict[str, int] | None = None, **kw: Any) -> Page:
        ctx = new_context(
            browser,
            color_scheme="dark" if dark else "light",
            reduced_motion="reduce",
            viewport=viewport or {"width": 1280, "height": 800},
            **kw,
        )
        contexts.append(ctx)
        return ctx.new_page()

    yield open_page
    for ctx in contexts:
        ctx.close()


def test_host_theme_reaches_the_buttons_radius_and_font(
    themed: Any, e2e_stack: DemoStack, user_id: str
) -> None:
    page = themed()
    csp = watch_csp(page)
    open_themed(page, e2e_stack, user_id, TEAL)
    frame = themed_frame(page, "window.portal.showApp('sandbox', 'modal')")
    connect = frame.locator("[data-portal-connect]")
    expect(connect).to_have_css("background-color", "rgb(15, 118, 110)")
    # #0f766e has 5.47:1 with white: the computed text on it.
    expect(connect).to_have_css("color", "rgb(255, 255, 255)")
    expect(connect).to_have_css("border-top-left-radius", "4px")
    assert frame.evaluate("getComputedStyle(document.body).fontFamily") == "Georgia, serif"
    assert frame.evaluate("document.documentElement.dataset.portalTheme") == "light"
    shoot(page, "theme-teal-light-app-wide")
    assert csp == [], csp


def test_the_sessions_name_heads_the_embed(themed: Any, e2e_stack: DemoStack, user_id: str) -> None:
    page = themed()
    open_themed(page, e2e_stack, user_id, {"name": "Acme <b>Corp</b>", "accent": "#0f766e"})
    frame = themed_frame(page, "window.portal.showApps('modal')")
    brand = frame.locator(".portal-brand")
    expect(brand).to_have_text("Acme <b>Corp</b>")
    assert frame.locator(".portal-brand b").count() == 0
    shoot(page, "theme-brand-name-modal")


def test_a_yellow_accent_gets_black_text(themed: Any, e2e_stack: DemoStack, user_id: str) -> None:
    page = themed()
    open_themed(page, e2e_stack, user_id, {"accent": "#facc15"})
    frame = themed_frame(page, "window.portal.showApp('sandbox', 'modal')")
    connect = frame.locator("[data-portal-connect]")
    expect(connect).to_have_css("background-color", "rgb(250, 204, 21)")
    expect(connect).to_have_css("color", "rgb(0, 0, 0)")


@pytest.mark.parametrize(("os_dark", "mode"), [(True, "light"), (False, "dark")])
def test_the_hosts_mode_wins_over_the_os(
    themed: Any, e2e_stack: DemoStack, user_id: str, os_dark: bool, mode: str
) -> None:
    """A light host on a dark OS gets a light portal (no black slab), and the other way round."""
    page = themed(dark=os_dark)
    open_themed(page, e2e_stack, user_id, {"mode": mode, "accent": "#0f766e"})
    frame = themed_frame(page, "window.portal.showApps('inline', 'container')")
    expect(frame.locator("html")).to_have_attribute("data-portal-theme", mode)
    body = frame.locator("body")
    expect(body).to_have_css("color", LIGHT_TEXT if mode == "light" else DARK_TEXT)
    expect(body).to_have_css("background-color", "rgba(0, 0, 0, 0)" if mode == "light" else DARK_BG)
    assert frame.evaluate("getComputedStyle(document.documentElement).colorScheme") == mode
    shoot(page, f"theme-{mode}-in-{'dark' if os_dark else 'light'}-os")


def test_without_a_mode_the_embed_follows_the_os(
    themed: Any, e2e_stack: DemoStack, user_id: str
) -> None:
    page = themed(dark=True)
    open_themed(page, e2e_stack, user_id, {"accent": "#0f766e"})
    frame = themed_frame(page, "window.portal.showApps('inline', 'container')")
    expect(frame.locator("html")).to_have_attribute("data-portal-theme", "auto")
    expect(frame.locator("body")).to_have_css("color", DARK_TEXT)
    # Accent-coloured text is lightened on the dark surfaces (4.5:1), buttons keep the accent.
    link_colour = frame.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--portal-accent-text')"
    )
    assert link_colour.strip() == "#4b9892"


def test_the_backdrop_dims_the_host_page_under_a_strict_csp(
    themed: Any, e2e_stack: DemoStack, user_id: str
) -> None:
    page = themed()
    csp = watch_csp(page)
    open_themed(page, e2e_stack, user_id, None)
    policy = page.evaluate(
        "fetch(location.href).then((r) => r.headers.get('content-security-policy'))"
    )
    assert "style-src 'self'" in policy and "unsafe-inline" not in policy
    page.evaluate("window.portal.showApps('modal')")
    portal_frame(page)
    # The box's own outline, wider than any screen, dims the page around it (::backdrop has no
    # style property; a <style> would break this host's CSP). Over the user agent's backdrop.
    dialog = page.locator("dialog")
    expect(dialog).to_have_css("outline-color", "rgba(0, 0, 0, 0.533)")
    expect(dialog).to_have_css("outline-style", "solid")
    expect(dialog).to_have_css("outline-width", "10000px")
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('dialog'), '::backdrop').backgroundColor"
        )
        == "rgba(0, 0, 0, 0.1)"
    )
    # What the user sees: a point of the white host page outside the box is about 46 % grey.
    red = one_pixel_red(page.screenshot(clip={"x": 20, "y": 400, "width": 1, "height": 1}))
    assert 90 <= red <= 130, red
    shoot(page, "backdrop-light-host")
    assert csp == [], csp


def test_a_custom_theme_passes_the_axe_audit(
    browser: Browser, e2e_stack: DemoStack, user_id: str
) -> None:
    """axe-core on custom-themed screens (light and dark, a pale and a dark accent, the host's
    name heading the frame): no serious or critical violation (colour contrast included)."""
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"theme-a11y-{user_id}")
    for theme in (TEAL, AMBER, {"mode": "light", "accent": "#facc15", "name": "Acme"}):
        ctx = new_context(browser, bypass_csp=True, reduced_motion="reduce")
        try:
            # Each screen on a page of its own (no close in between: see test_prefers_reduced_motion).
            for show in ("window.portal.showApps('modal')", "window.portal.showApp('sandbox')"):
                page = ctx.new_page()
                open_themed(page, e2e_stack, user_id, theme)
                frame = themed_frame(page, show)
                audit(frame, f"{show} themed {theme}")
                page.close()
        finally:
            ctx.close()


REFLOW = {"width": 320, "height": 640}


def test_reflow_at_320_css_px(themed: Any, e2e_stack: DemoStack, user_id: str) -> None:
    """WCAG 1.4.10: 320 CSS px wide (1280 px at 400 %, or a 640 px screen at 200 %: device
    scale factor 2): the marketplace, the app page and the API-key form neither scroll
    sideways nor cut text."""
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"reflow-{user_id}")
    page = themed(viewport=REFLOW, device_scale_factor=2)
    open_themed(page, e2e_stack, user_id, None)
    for name, show in (
        ("marketplace", "window.portal.showApps('modal')"),
        ("app page", "window.portal.showApp('sandbox', 'modal')"),
    ):
        page.evaluate(show)
        frame = portal_frame(page)
        assert frame.evaluate("innerWidth") <= 320
        assert frame.evaluate(CLIPPED) == [], name
        shoot(page, f"reflow-320-{name.replace(' ', '-')}")
        page.evaluate("window.portal.close()")
        expect(page.locator("dialog")).to_have_count(0)
    form = themed(viewport=REFLOW, device_scale_factor=2)
    form.goto(connect_url(e2e_stack, user_id, "sandbox-keys"))
    expect(form.locator("body")).to_have_attribute("data-portal-state", "ready")
    assert form.evaluate(CLIPPED) == []
    form.locator("#api_key").fill("not-the-right-one")
    with form.expect_navigation():
        form.locator("form button[type=submit]").first.click()
    expect(form.get_by_role("alert")).to_be_visible()
    assert form.evaluate(CLIPPED) == []
    shoot(form, "reflow-320-key-form-error")


def test_a_connect_is_announced_in_a_live_region(
    themed: Any, e2e_stack: DemoStack, user_id: str
) -> None:
    page = themed()
    open_themed(page, e2e_stack, user_id, None)
    page.evaluate("window.portal.showApp('sandbox', 'modal')")
    frame = portal_frame(page)
    inner = page.frame_locator("[role=dialog] iframe")
    region = inner.locator("#portal-announce")
    expect(region).to_have_attribute("role", "status")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("")
    with page.expect_popup() as info:
        frame.locator("[data-portal-connect]").click()
    consent(info.value)
    wait_event(page, "app-connected")
    expect(region).to_have_text("Connected Sandbox CRM.")
    # Outside the swapped content: the same element stays, so screen readers hear the change.
    assert (
        frame.evaluate(
            "document.getElementById('portal-main').contains(document.getElementById('portal-announce'))"
        )
        is False
    )
    portal_ready(inner)
    inner.locator("[data-portal-disconnect]").first.click()
    inner.locator("[data-portal-disconnect]").first.click()
    wait_event(page, "app-disconnected")
    expect(region).to_have_text("Disconnected.")


def test_two_contrasting_themes_side_by_side(
    themed: Any, e2e_stack: DemoStack, user_id: str
) -> None:
    """The README's picture (docs/themes.png is a copy of the one written here): the app page
    with an account, inline, under TEAL (light, serif, square) and AMBER (dark, compact,
    round). The accent of each reaches its Connect button."""
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"readme-{user_id}")
    parts = []
    for theme, accent in ((TEAL, "rgb(15, 118, 110)"), (AMBER, "rgb(245, 158, 11)")):
        page = themed(viewport={"width": 520, "height": 1000})
        open_themed(page, e2e_stack, user_id, theme)
        page.evaluate("document.getElementById('container').style.width = '480px'")
        frame = themed_frame(page, "window.portal.showApp('sandbox', 'inline', 'container')")
        expect(frame.locator("[data-portal-connect]")).to_have_css("background-color", accent)
        frame.evaluate("document.fonts.ready.then(() => true)")
        parts.append(page.locator("#container").screenshot(animations="disabled", caret="hide"))
    import base64

    sheet = themed(viewport={"width": 1040, "height": 1040})
    images = "".join(
        f'<img alt="" src="data:image/png;base64,{base64.b64encode(p).decode()}">' for p in parts
    )
    sheet.set_content(
        "<body style='margin:0'><div id='sheet' style='display:inline-flex;gap:16px;"
        f"align-items:flex-start;padding:16px;background:#e5e7eb'>{images}</div></body>"
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    sheet.locator("#sheet").screenshot(path=str(SHOTS / "themes.png"))
    assert (SHOTS / "themes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "theme", "viewport", "show"),
    [
        ("amber-dark-phone-375", AMBER, {"width": 375, "height": 740}, "showApp('sandbox')"),
        ("teal-light-narrow", TEAL, None, "showApps('modal', null, 'narrow')"),
        ("amber-dark-wide", AMBER, None, "showApps('modal')"),
    ],
)
def test_themed_screens(
    themed: Any,
    e2e_stack: DemoStack,
    user_id: str,
    name: str,
    theme: dict[str, str],
    viewport: dict[str, int] | None,
    show: str,
) -> None:
    """Phone, narrow and wide under a theme: the mode and the accent's computed text colour are
    the theme's, the page does not scroll sideways; screenshots for review by eye."""
    page = themed(viewport=viewport)
    open_themed(page, e2e_stack, user_id, theme)
    frame = themed_frame(page, "window.portal." + show)
    expect(frame.locator("html")).to_have_attribute("data-portal-theme", theme["mode"])
    contrast = frame.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--portal-accent-contrast')"
    )
    assert contrast.strip() == ("#000000" if theme is AMBER else "#ffffff")
    # (The narrow list's one-line descriptions end in an ellipsis by design; the app page has
    # them in full. Reflow is test_reflow_at_320_css_px's.)
    assert frame.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shoot(page, f"theme-{name}")
