"""The accessibility audit: axe-core (npm, pinned in bench/package-lock.json; ``make axe``
installs it) runs in a real Chromium on every screen of the portal, and a test fails on any
violation of impact ``serious`` or ``critical``, naming rule, impact, target and help.

Screens: the marketplace (modal and inline, wide and narrow, light and dark), the app page with
an account (light and dark), the API-key and basic-auth forms with an error, the popup's result
pages (connected and failed), the operators' page (signed out and in) and showFunction's form.
And the Arabic (right-to-left) marketplace and app page, light and dark.

The audit's contexts bypass the pages' Content-Security-Policy (``bypass_csp``) only so that
axe's script can be injected; the same pages run under their CSP in every other e2e test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Frame, Page, expect

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack

from .conftest import (
    consent,
    insert_account,
    new_context,
    open_host,
    portal_frame,
    portal_ready,
    press_away,
    wait_event,
)

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "bench" / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts that fail the audit (axe's scale: minor, moderate, serious, critical).
FAILING = ("serious", "critical")
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 700}
POPUP = {"width": 520, "height": 700}

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ')),
  }));
}"""


def axe_violations(frame: Frame | Page) -> list[dict[str, Any]]:
    """Every axe-core violation in ``frame``'s document: ``{id, impact, help, targets}``."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make axe` (npm --prefix bench ci)")
    if not frame.evaluate("typeof window.axe !== 'undefined'"):
        frame.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    found: list[dict[str, Any]] = frame.evaluate(RUN_AXE)
    return found


def audit(frame: Frame | Page, screen: str) -> None:
    """Fail when ``frame``'s document has a serious or critical axe violation."""
    found = axe_violations(frame)
    for v in found:  # the minor and moderate ones too, for `pytest -s`
        print(f"axe {screen}: {v['id']} ({v['impact']}) x{len(v['targets'])}")
    bad = [v for v in found if v["impact"] in FAILING]
    lines = [f"{v['id']} ({v['impact']}) at {', '.join(v['targets'])}: {v['help']}" for v in bad]
    assert not bad, f"{screen}: {len(bad)} axe violation(s)\n" + "\n".join(lines)


@pytest.fixture
def audit_browser(browser: Browser) -> Iterator[Any]:
    """Open pages in fresh CSP-bypassing contexts (light or dark); closes them afterwards."""
    contexts: list[Any] = []

    def open_page(viewport: dict[str, int] = WIDE, dark: bool = False) -> Page:
        ctx = new_context(
            browser,
            viewport=viewport,
            bypass_csp=True,
            color_scheme="dark" if dark else "light",
            reduced_motion="reduce",
        )
        contexts.append(ctx)
        return ctx.new_page()

    yield open_page
    for ctx in contexts:
        ctx.close()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("layout", ["wide", "narrow"])
@pytest.mark.parametrize("mode", ["modal", "inline"])
def test_marketplace(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, mode: str, layout: str, dark: bool
) -> None:
    page = audit_browser(WIDE if layout == "wide" else NARROW, dark)
    open_host(page, e2e_stack, user_id)
    container = "'container'" if mode == "inline" else "null"
    page.evaluate(f"window.portal.showApps('{mode}', {container}, '{layout}')")
    frame = portal_frame(page)
    expect(page.frame_locator("iframe").first.locator("a.portal-card").first).to_be_visible()
    audit(frame, f"marketplace {mode} {layout} {'dark' if dark else 'light'}")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_app_page_with_account(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, dark: bool
) -> None:
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"a11y-{user_id}")
    page = audit_browser(WIDE, dark)
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApp('sandbox', 'modal')")
    frame = portal_frame(page)
    expect(frame.locator(".portal-account", has_text="ada@sandbox.test")).to_be_visible()
    audit(frame, f"app page with an account {'dark' if dark else 'light'}")


def connect_url(stack: DemoStack, user: str, app: str) -> str:
    """A connect ticket's URL for ``app`` (what the popup opens), made through the API."""
    session = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"appKey": DEMO_APP_KEY, "userId": user, "hash": user_hash(DEMO_APP_SECRET, user)},
        headers={"Origin": stack.host.url},
        timeout=10,
    )
    assert session.status_code == 201, session.text
    ticket = requests.post(
        f"{stack.portal.url}/portal/api/v1/connect-tickets",
        json={"app": app, "opener": "frame"},
        headers={"Authorization": f"Bearer {session.json()['token']}", "Origin": stack.host.url},
        timeout=10,
    )
    assert ticket.status_code == 201, ticket.text
    return str(ticket.json()["connect_url"])


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("app", ["sandbox-keys", "sandbox-basic"])
def test_credential_form_with_an_error(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, app: str, dark: bool
) -> None:
    page = audit_browser(POPUP, dark)
    page.goto(connect_url(e2e_stack, user_id, app))
    expect(page.locator("body")).to_have_attribute("data-portal-state", "ready")
    audit(page, f"{app} form {'dark' if dark else 'light'}")
    for field in page.locator("form input:not([type=hidden])").all():
        field.fill("not-the-right-one")
    with page.expect_navigation():
        page.locator("form button[type=submit]").first.click()
    expect(page.locator("body")).to_have_attribute("data-portal-state", "ready")
    expect(page.get_by_role("alert")).to_be_visible()
    audit(page, f"{app} form with an error {'dark' if dark else 'light'}")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_popup_result_page(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, decision: str, dark: bool
) -> None:
    page = audit_browser(POPUP, dark)
    page.goto(connect_url(e2e_stack, user_id, "sandbox"))
    consent(page, decision=decision)
    expect(page.locator("body[data-portal-page]")).to_be_attached()
    expect(page.get_by_role("heading").first).to_be_visible()
    audit(page, f"popup result ({decision}) {'dark' if dark else 'light'}")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_admin(audit_browser: Any, e2e_stack: DemoStack, dark: bool) -> None:
    page = audit_browser(WIDE, dark)
    page.goto(e2e_stack.portal.url + "/portal/admin")
    expect(page.get_by_role("heading", name="Operators only")).to_be_visible()
    audit(page, f"admin sign-in {'dark' if dark else 'light'}")
    page.get_by_label("App secret").fill(DEMO_APP_SECRET)
    page.get_by_role("button", name="Show the overview").click()
    expect(page.locator("#portal-admin-ready")).to_be_visible()
    audit(page, f"admin overview {'dark' if dark else 'light'}")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("mode", ["modal", "inline"])
def test_show_function_form(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, mode: str, dark: bool
) -> None:
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"a11y-fn-{user_id}")
    page = audit_browser(WIDE, dark)
    open_host(page, e2e_stack, user_id)
    container = "'container'" if mode == "inline" else "null"
    page.evaluate(
        "() => { window.portal.showFunction('sandbox-create-contact', {name: 'Ada'}, null,"
        f" '{mode}', {container}).catch(() => {{}}); }}"
    )
    frame = portal_frame(page)
    inner = page.frame_locator("[role=dialog] iframe, #container iframe").first
    email = inner.get_by_label("Email")
    expect(email).to_be_visible()
    screen = f"showFunction form {mode} {'dark' if dark else 'light'}"
    audit(frame, screen)
    email.fill("not-an-email")
    inner.get_by_role("button", name="Continue").click()
    expect(email).to_have_attribute("aria-invalid", "true")
    portal_ready(inner)
    audit(frame, f"{screen} with an error")


# Every element's and pseudo-element's transitions and animations: ``[where, durations, name]``.
MOTION = """() => {
  const out = [];
  for (const el of [document.documentElement, ...document.querySelectorAll('*')]) {
    for (const pseudo of [null, '::before', '::after']) {
      const cs = getComputedStyle(el, pseudo);
      const where = (el.className && String(el.className)) || el.tagName;
      out.push([where + (pseudo || ''), cs.transitionDuration, cs.transitionDelay,
                cs.animationName, cs.animationDuration]);
    }
  }
  return out;
}"""


def _seconds(value: str) -> list[float]:
    """CSS time list ('0.15s, 10ms') in seconds."""
    return [float(t[:-2]) / 1000 if t.endswith("ms") else float(t[:-1]) for t in value.split(",")]


def moving(frame: Frame) -> list[str]:
    """Elements of ``frame`` with a transition longer than 0.01 ms, or an animation other than
    the busy spinner turning slowly (a stopped spinner looks broken)."""
    found = []
    for where, duration, delay, animation, anim_duration in frame.evaluate(MOTION):
        if max(_seconds(duration)) > 0.00001 or max(_seconds(delay)) > 0:
            found.append(f"{where}: transition {duration} delay {delay}")
        if animation != "none" and not (
            animation == "portal-spin" and min(_seconds(anim_duration)) >= 1.5
        ):
            found.append(f"{where}: animation {animation} {anim_duration}")
    return found


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_prefers_reduced_motion(
    browser: Browser, e2e_stack: DemoStack, user_id: str, motion: str
) -> None:
    """Under ``prefers-reduced-motion: reduce`` nothing in the portal transitions or animates
    (the busy spinner turns slowly); without it the same check finds motion (the check works)."""
    insert_account(e2e_stack, user_id, "ada@sandbox.test", f"a11y-motion-{user_id}")
    ctx = new_context(browser, reduced_motion=motion)
    try:
        # Each screen on a page of its own: closing the modal with Esc in between is the
        # keyboard test's subject, and a key that removes the focused iframe could leave
        # Playwright's keyboard.press waiting for ever (seen once in a CI run).
        for script in ("window.portal.showApps('modal')", "window.portal.showApp('sandbox')"):
            page = ctx.new_page()
            open_host(page, e2e_stack, user_id)
            page.evaluate(script)
            frame = portal_frame(page)
            found = moving(frame)
            if motion == "reduce":
                assert found == [], found
            else:
                assert found, "no transition at all without reduced motion"
            page.close()
    finally:
        ctx.close()


def tab_to(page: Page, frame: Frame, selector: str, text: str = "") -> None:
    """Press Tab (at most 40 times) until the focus is on ``selector`` (with ``text``) in
    ``frame``; fails naming where the focus went otherwise."""
    check = """([sel, text]) => { const a = document.activeElement;
      return !!a && a.matches(sel) && a.textContent.includes(text); }"""
    for _ in range(40):
        if frame.evaluate(check, [selector, text]):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached {selector} {text!r}")


def test_keyboard_only(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    """Open, search, connect an API-key app, disconnect, close: Tab, typing, Enter and Escape
    only (the host page opens the portal with showApps, as a host's own button would)."""
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApps('modal')")
    frame = portal_frame(page)
    inner = page.frame_locator("[role=dialog] iframe")

    tab_to(page, frame, "input[type=search]")
    page.keyboard.type("Analytics")
    expect(inner.locator("#portal-app-grid")).to_have_attribute("data-portal-q", "Analytics")
    portal_ready(inner)
    tab_to(page, frame, "a.portal-card", "Sandbox Analytics")
    page.keyboard.press("Enter")
    expect(inner.locator("#portal-app-title")).to_have_text("Sandbox Analytics")
    portal_ready(inner)

    tab_to(page, frame, "[data-portal-connect]")
    with page.expect_popup() as info:
        page.keyboard.press("Enter")
    popup = info.value
    expect(popup.locator("#api_key")).to_be_focused()
    popup.keyboard.type("sk_demo_ada")
    with popup.expect_event("close"):
        popup.keyboard.press("Enter")
    connected = wait_event(page, "app-connected")
    expect(inner.locator("[data-portal-disconnect]")).to_have_count(1)
    portal_ready(inner)

    tab_to(page, frame, "[data-portal-disconnect]")
    page.keyboard.press("Enter")
    expect(inner.locator("[data-portal-disconnect]")).to_have_text("Confirm disconnect")
    page.keyboard.press("Enter")
    disconnected = wait_event(page, "app-disconnected")
    assert connected["payload"]["app"]["name"] == "sandbox-keys"
    assert disconnected["payload"]["app"]["name"] == "sandbox-keys"
    expect(inner.locator("[data-portal-disconnect]")).to_have_count(0)

    # Esc where the focus is in the settled modal (press_away: the key removes its own frame).
    press_away(inner)
    wait_event(page, "modal-closed")
    expect(page.locator("[role=dialog]")).to_have_count(0)


# A second SDK instance on the host page, speaking `lang` (README "Languages").
SHOW_IN = """([lang, app]) => {
  const d = document.body.dataset;
  const sdk = new ConnectPortal({ appKey: d.appKey, userId: d.userId, hash: d.hash, baseUrl: d.baseUrl, lang });
  return app ? sdk.showApp(app, 'modal') : sdk.showApps('modal');
}"""


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("app", ["", "sandbox"], ids=["marketplace", "app-page"])
def test_right_to_left_pages(
    audit_browser: Any, e2e_stack: DemoStack, user_id: str, app: str, dark: bool
) -> None:
    """The Arabic (right-to-left) marketplace and app page, with an account on the latter."""
    if app:
        insert_account(e2e_stack, user_id, "ada@sandbox.test", f"a11y-rtl-{user_id}")
    page = audit_browser(WIDE, dark)
    open_host(page, e2e_stack, user_id)
    page.evaluate(SHOW_IN, ["ar", app])
    frame = portal_frame(page)
    assert frame.evaluate("document.documentElement.dir") == "rtl"
    if app:
        expect(page.frame_locator("iframe").first.locator(".portal-account")).to_have_count(1)
    else:
        expect(page.frame_locator("iframe").first.locator("a.portal-card").first).to_be_visible()
    audit(frame, f"rtl {app or 'marketplace'} {'dark' if dark else 'light'}")
