"""The portal in a real Chromium, host page and portal on different origins (SECURITY.md
"Browser and embedding"; DESIGN.md "Host-page SDK" and "Events to the host page")."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Browser, connect_sandbox, new_session
from flask import Flask
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    FrameLocator,
    Page,
    Playwright,
    Request,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from portal import user_hash
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ENABLED_APPS, DemoStack

from .conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ServerFactory,
    click_away,
    consent,
    events,
    fitted_height,
    host_page_url,
    insert_account,
    open_host,
    portal_frame,
    portal_ready,
    press_away,
    wait_event,
)

pytestmark = pytest.mark.e2e

TITLES = ("Sandbox CRM", "Sandbox Analytics", "Sandbox Files")
ACCOUNT_KEYS = {
    "id",
    "app",
    "label",
    "external_id",
    "status",
    "scopes",
    "created_at",
    "modified_at",
    "metadata",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DIALOG = "[role=dialog]"
HOSTILE = "</script><script>alert(1)</script>"


# ------------------------------------------------------------------------------ helpers


def open_modal(page: Page, layout: str = "wide", app: str | None = None) -> FrameLocator:
    """``showApps('modal')`` (or ``showApp``) on the host page; returns the dialog's iframe
    once its portal document has settled (the user's own content is in)."""
    if app:
        page.evaluate("([a, l]) => window.portal.showApp(a, 'modal', null, l)", [app, layout])
    else:
        page.evaluate("(l) => window.portal.showApps('modal', null, l)", layout)
    frame = page.frame_locator(f"{DIALOG} iframe")
    portal_ready(frame)
    return frame


def open_app_page(frame: FrameLocator, title: str = "Sandbox CRM") -> None:
    """Click the app's card in the settled marketplace and wait for its settled page."""
    portal_ready(frame)
    frame.locator("a.portal-card", has_text=title).click()
    expect(frame.get_by_role("heading", name=title)).to_be_visible()
    portal_ready(frame)


def connect_in_frame(page: Page, frame: FrameLocator, user: str = "ada") -> Page:
    """Click Connect on the app page in the iframe and allow in the provider's popup.

    Returns the popup after it closed itself."""
    with page.expect_popup() as info:
        frame.locator("[data-portal-connect]").click()
    popup = info.value
    with popup.expect_event("close"):
        consent(popup, user)
    return popup


def connect_via_sdk(page: Page, user: str = "ada") -> str:
    """``connectApp('sandbox')`` from the host page's button; returns the resolved account id."""
    before = page.evaluate("window.connectResults.length")
    with page.expect_popup() as info:
        page.click("#connect")
    popup = info.value
    with popup.expect_event("close"):
        consent(popup, user)
    page.wait_for_function("(n) => window.connectResults.length > n", arg=before)
    result = page.evaluate("window.connectResults[window.connectResults.length - 1]")
    assert result["ok"], result
    return str(result["value"])


def assert_account(account: dict[str, Any], label: str) -> None:
    assert set(account) == ACCOUNT_KEYS, account
    assert account["app"] == "sandbox"
    assert account["label"] == label
    assert account["status"] == "active"
    assert account["external_id"]
    assert isinstance(account["scopes"], list)
    assert ISO_UTC.match(account["created_at"]) and ISO_UTC.match(account["modified_at"])


def assert_no_secret(payload: Any) -> None:
    text = json.dumps(payload).lower()
    for word in ("token", "secret", "password", "api_key", "credential"):
        assert word not in text, (word, payload)


def dialog_has_focus(page: Page) -> bool:
    return bool(
        page.evaluate(
            "() => { const d = document.querySelector('[role=dialog]');"
            " return !!d && d.contains(document.activeElement); }"
        )
    )


# ------------------------------------------------------------------------------ 1. modal


def test_modal_wide_renders_marketplace_closes_and_traps_focus(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    page.focus("#connect")
    frame = open_modal(page)

    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    for title in TITLES:
        expect(frame.locator("a.portal-card", has_text=title)).to_be_visible()
    # Wide layout: the dialog is the wide one and cards sit side by side.
    assert dialog.bounding_box()["width"] > 700  # type: ignore[index]
    tops = frame.locator("a.portal-card").evaluate_all(
        "(cards) => cards.map((c) => Math.round(c.getBoundingClientRect().top))"
    )
    assert max(tops.count(top) for top in tops) >= 2, (
        "wide layout should put several cards on one row"
    )

    # Esc with the focus inside the iframe (where showApps puts it) closes the modal.
    assert dialog_has_focus(page)
    press_away(page.frame_locator("[role=dialog] iframe"))
    expect(dialog).to_have_count(0)
    wait_event(page, "modal-closed")
    # The focus goes back to where it was before the modal opened.
    assert page.evaluate("document.activeElement.id") == "connect"

    # The close button inside the iframe closes it too.
    frame = open_modal(page)
    click_away(frame.get_by_role("button", name="Close"))
    expect(dialog).to_have_count(0)
    wait_event(page, "modal-closed", count=2)

    # Tab and Shift+Tab never leave the dialog.
    frame = open_modal(page)
    expect(frame.locator("a.portal-card").first).to_be_visible()
    for _ in range(12):
        page.keyboard.press("Tab")
        assert dialog_has_focus(page), page.evaluate(
            "document.activeElement.outerHTML.slice(0, 80)"
        )
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        assert dialog_has_focus(page), page.evaluate(
            "document.activeElement.outerHTML.slice(0, 80)"
        )
    # ... and the focus really moves between controls inside the portal.
    inner = portal_frame(page).evaluate("document.activeElement && document.activeElement.tagName")
    assert inner not in (None, "BODY", "HTML")
    assert len(events(page, "modal-closed")) == 2


# ------------------------------------------------------------------------------ 2. inline


def test_inline_narrow_iframe_follows_content_height(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    page.evaluate("window.portal.showApps('inline', 'container', 'narrow')")
    iframe = "#container iframe"
    frame = page.frame_locator(iframe)
    expect(page.locator(DIALOG)).to_have_count(0)
    portal_ready(frame)
    for title in TITLES:
        expect(frame.locator("a.portal-card", has_text=title)).to_be_visible()
    expect(frame.locator("body")).to_have_class(re.compile(r"\bportal--narrow\b"))

    market = fitted_height(page, iframe)
    assert market > 100

    open_app_page(frame)
    expect(frame.locator("[data-portal-connect]")).to_be_visible()
    app_page = fitted_height(page, iframe)
    assert app_page > 100 and app_page != market

    frame.get_by_role("link", name="All apps").click()
    expect(frame.locator("a.portal-card", has_text="Sandbox Files")).to_be_visible()
    # Back on the marketplace the iframe shrinks (or grows) back to the marketplace's height.
    assert fitted_height(page, iframe) == market


# ------------------------------------------------------------------------------ 3. connect


def test_connect_in_modal_popup_emits_app_connected(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    open_app_page(frame)
    expect(frame.get_by_text("No account connected yet.")).to_be_visible()

    with page.expect_popup() as info:
        frame.get_by_role("button", name="Connect Sandbox CRM").click()
    popup = info.value
    # The popup shows the provider's own consent page, on the provider's origin.
    expect(popup.locator('button[name="decision"][value="allow"]')).to_be_visible()
    assert popup.url.startswith(e2e_stack.sandbox.url + "/")
    expect(popup.locator('input[name="user"]').first).to_be_checked()
    with popup.expect_event("close"):
        consent(popup)
    assert popup.is_closed()

    payload = wait_event(page, "app-connected")["payload"]
    assert set(payload) == {"app", "connectedAccountId", "connected_accounts"}
    assert set(payload["app"]) == {"name", "title", "icon_url"}
    assert payload["app"]["name"] == "sandbox" and payload["app"]["title"] == "Sandbox CRM"
    assert payload["app"]["icon_url"].startswith(e2e_stack.portal.url + "/")
    assert len(payload["connected_accounts"]) == 1
    account = payload["connected_accounts"][0]
    assert_account(account, "ada@sandbox.test")
    assert account["id"] == payload["connectedAccountId"]
    assert_no_secret(payload)
    assert events(page, "error") == []

    # The app page in the iframe was reloaded and lists the account now.
    row = frame.locator(".portal-account", has_text="ada@sandbox.test")
    expect(row).to_be_visible()
    expect(row.get_by_role("button", name="Disconnect")).to_be_visible()
    expect(frame.locator("[data-portal-connect]")).to_have_text("Connect another account")
    expect(frame.locator("[data-portal-connect]")).to_be_enabled()


def test_reconnect_app_keeps_the_id_and_refuses_another_account(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    first = connect_via_sdk(page, "ada")
    page.evaluate("(id) => { document.getElementById('reconnect').dataset.account = id; }", first)

    for user, expected in (("ada", {"ok": True, "value": first}), ("grace", None)):
        before = page.evaluate("window.connectResults.length")
        with page.expect_popup() as info:
            page.click("#reconnect")
        popup = info.value
        if expected is not None:
            with popup.expect_event("close"):
                consent(popup, user)
        else:
            consent(popup, user)
        page.wait_for_function("(n) => window.connectResults.length > n", arg=before)
        result = page.evaluate("window.connectResults[window.connectResults.length - 1]")
        if expected is not None:
            assert result == expected
        else:
            assert result["ok"] is False and result["type"] == "wrong_account", result
            assert result["message"].startswith("You signed in as another account")
            if not popup.is_closed():
                popup.close()
    accounts = page.evaluate("window.portal.getConnectedAccounts('sandbox')")
    assert [(a["id"], a["label"]) for a in accounts] == [(first, "ada@sandbox.test")]


# ------------------------------------------------------------------------------ 4. connectApp


def test_connect_app_from_host_resolves_and_lists_accounts(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    assert page.evaluate("window.portal.isAppConnected('sandbox')") is False

    first = connect_via_sdk(page, "ada")
    connected = wait_event(page, "app-connected")["payload"]
    assert connected["connectedAccountId"] == first
    assert connected["app"]["title"] == "Sandbox CRM"
    assert_account(connected["connected_accounts"][0], "ada@sandbox.test")
    assert_no_secret(connected)
    assert page.evaluate("window.portal.isAppConnected('sandbox')") is True

    second = connect_via_sdk(page, "grace")
    assert second != first
    assert len(events(page, "app-connected")) == 2
    accounts = page.evaluate("window.portal.getConnectedAccounts('sandbox')")
    assert [a["label"] for a in accounts] == ["grace@sandbox.test", "ada@sandbox.test"]
    assert [a["id"] for a in accounts] == [second, first]
    assert accounts[0]["modified_at"] > accounts[1]["modified_at"]
    for a in accounts:
        assert_account(a, a["label"])

    # Reconnecting ada's account updates it (same id) and moves it to the top.
    again = connect_via_sdk(page, "ada")
    assert again == first
    accounts = page.evaluate("window.portal.getConnectedAccounts('sandbox')")
    assert [a["id"] for a in accounts] == [first, second]
    assert events(page, "error") == []


# ------------------------------------------------------------------------------ 5. disconnect


def test_disconnect_in_app_page_and_from_sdk(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    ada = connect_via_sdk(page, "ada")
    grace = connect_via_sdk(page, "grace")

    frame = open_modal(page, app="sandbox")
    rows = frame.locator(".portal-account")
    expect(rows).to_have_count(2)
    button = frame.locator(f'[data-portal-account-id="{ada}"]')
    button.click()
    expect(button).to_have_text("Confirm disconnect")
    assert events(page, "app-disconnected") == []  # one click only asks for confirmation
    button.click()

    payload = wait_event(page, "app-disconnected")["payload"]
    assert set(payload) == {"app", "connectedAccountId", "connected_accounts"}
    assert payload["app"]["name"] == "sandbox" and payload["app"]["title"] == "Sandbox CRM"
    assert payload["connectedAccountId"] == ada
    assert [a["id"] for a in payload["connected_accounts"]] == [grace]
    assert_account(payload["connected_accounts"][0], "grace@sandbox.test")
    assert_no_secret(payload)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("grace@sandbox.test")

    # disconnectApp without an id works when exactly one account is left.
    page.evaluate("window.portal.disconnectApp('sandbox')")
    payload = wait_event(page, "app-disconnected", count=2)["payload"]
    assert payload["connectedAccountId"] == grace
    assert payload["connected_accounts"] == []
    assert page.evaluate("window.portal.isAppConnected('sandbox')") is False
    assert page.evaluate("window.portal.getConnectedAccounts('sandbox')") == []


# ------------------------------------------------------------------------------ 6. popup blocked

BLOCK_POPUPS = "window.open = function () { return null; };"


def host_log(page: Page) -> list[dict[str, Any]]:
    """Everything the test page recorded in this tab, across navigations."""
    log: list[dict[str, Any]] = page.evaluate(
        "JSON.parse(sessionStorage.getItem('e2e-log') || '[]')"
    )
    return log


def finish_redirect_flow(
    page: Page, stack: DemoStack, nav: Request, home: str, console: list[str]
) -> dict[str, Any]:
    """The top page went to the portal's connect URL: allow, come back, return the event."""
    query = parse_qs(urlsplit(nav.url).query)
    assert urlsplit(nav.url).path == "/portal/connect/sandbox"
    assert query["ticket"][0]
    assert query["return_to"] == [home]
    consent(page)
    try:
        page.wait_for_url(re.compile(re.escape(home) + r"$"))
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"the redirect flow did not come back to the host page; stuck at {page.url}; "
            f"console: {console}"
        ) from None
    # portal.js strips the attempt reference from the address bar once it has looked it up.
    assert "portal_attempt" not in page.url
    return wait_event(page, "app-connected")["payload"]


@pytest.mark.security("`window.open` returns `null`")
def test_popup_blocked_in_frame_falls_back_to_redirect(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    context.add_init_script(BLOCK_POPUPS)
    returned: list[str] = []
    page.on(
        "request",
        lambda r: (
            returned.append(r.url)
            if r.is_navigation_request() and "portal_attempt=" in r.url
            else None
        ),
    )
    home = host_page_url(e2e_stack, user_id)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    open_app_page(frame)
    with page.expect_request(
        lambda r: (
            r.is_navigation_request() and r.frame == page.main_frame and "/portal/connect/" in r.url
        )
    ) as nav:
        frame.locator("[data-portal-connect]").click()

    payload = finish_redirect_flow(page, e2e_stack, nav.value, home, console)
    log = host_log(page)
    kinds = [(e["kind"], e.get("type")) for e in log]
    assert kinds == [
        ("event", "ready"),
        ("event", "error"),
        ("event", "ready"),
        ("event", "app-connected"),
    ], kinds
    assert log[1]["payload"]["type"] == "popup_blocked"
    assert len(returned) == 1
    # The host page gets the attempt's id only; the account id comes from the server.
    result = parse_qs(urlsplit(returned[0]).query)
    assert set(result) == {"user", "portal_attempt"}, result
    [account] = (
        new_session(e2e_stack, user_id)
        .get("/connected-accounts?app=sandbox")
        .json()["connected_accounts"]
    )
    assert payload["connectedAccountId"] == account["id"]
    assert payload["app"]["title"] == "Sandbox CRM"
    assert_account(payload["connected_accounts"][0], "ada@sandbox.test")
    assert_no_secret(payload)


@pytest.mark.security("`window.open` returns `null`")
def test_popup_blocked_connect_app_rejects_and_redirects(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    context.add_init_script(BLOCK_POPUPS)
    home = host_page_url(e2e_stack, user_id)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    open_host(page, e2e_stack, user_id)
    with page.expect_request(
        lambda r: (
            r.is_navigation_request() and r.frame == page.main_frame and "/portal/connect/" in r.url
        )
    ) as nav:
        page.click("#connect")

    payload = finish_redirect_flow(page, e2e_stack, nav.value, home, console)
    log = host_log(page)
    rejected = [e for e in log if e["kind"] == "connect"]
    assert rejected == [
        {"kind": "connect", "ok": False, "type": "popup_blocked", "message": rejected[0]["message"]}
    ]
    errors = [e for e in log if e.get("type") == "error"]
    assert [e["payload"]["type"] for e in errors] == ["popup_blocked"]
    assert_account(payload["connected_accounts"][0], "ada@sandbox.test")
    assert payload["connectedAccountId"] == payload["connected_accounts"][0]["id"]


FORGED = "ca_FORGED"
#: Redirect-mode result values as the SDK before this fix read them from the host page's URL.
FORGED_RESULT = {"portal_status": "connected", "portal_app": "sandbox", "portal_account": FORGED}


def wait_redirect_handled(page: Page) -> None:
    """Until the SDK is ready and has dealt with the page's ``portal_attempt``: it drops the
    parameter from the address bar once the server answered (or it emitted an event)."""
    page.wait_for_function(
        "() => { const e = window.events || [];"
        " return e.some((x) => x.type === 'ready') && (!/[?&]portal_attempt=/.test(location.search)"
        " || e.some((x) => x.type === 'app-connected' || x.type === 'error')); }"
    )


@pytest.mark.parametrize("attempt", ["forged", "other_user"])
@pytest.mark.security("Redirect mode: `?portal_status=connected&portal_account=<forged>`")
def test_redirect_result_in_host_url_is_not_trusted(
    page: Page, e2e_stack: DemoStack, user_id: str, attempt: str
) -> None:
    """A host-page URL with forged result values, and an attempt the server does not confirm
    for this user (made up, or another user's genuine connected attempt), emits no
    ``app-connected``."""
    if attempt == "other_user":
        other = new_session(e2e_stack, f"{user_id}-other")
        response, ticket = connect_sandbox(other, opener="host")
        assert response.status_code == 200
        status = other.get(f"/connect-attempts/{ticket['attempt_id']}").json()
        assert status["status"] == "connected"  # genuine, just not this user's
        attempt_id = ticket["attempt_id"]
    else:
        attempt_id = "x" * 32
    open_host(page, e2e_stack, user_id, **FORGED_RESULT, portal_attempt=attempt_id)
    wait_redirect_handled(page)
    assert events(page, "app-connected") == []
    assert events(page, "error") == []  # not this user's attempt: nothing to report
    query = parse_qs(urlsplit(page.url).query)
    assert "portal_attempt" not in query  # looked up once; a reload does not ask again
    assert page.evaluate("window.portal.getConnectedAccounts('sandbox')") == []


@pytest.mark.security("Redirect mode: `?portal_status=connected&portal_account=<forged>`")
def test_redirect_mode_failed_attempt_emits_the_servers_error(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    """The user's own attempt that the server reports failed: ``error`` with the server's
    code, whatever the URL says."""
    api = new_session(e2e_stack, user_id)
    ticket = api.ticket(opener="host")
    browser = Browser()
    started = browser.start(ticket["connect_url"])
    denied = browser.consent(started.headers["Location"], decision="deny")
    assert browser.callback(denied.callback_url).status_code == 400
    open_host(page, e2e_stack, user_id, **FORGED_RESULT, portal_attempt=ticket["attempt_id"])
    wait_redirect_handled(page)
    error = wait_event(page, "error")["payload"]
    assert error["type"] == "access_denied"
    assert events(page, "app-connected") == []


@pytest.mark.security("`window.open` returns `null`")
def test_popup_blocked_without_redirect_rejects_promptly(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    context.add_init_script(BLOCK_POPUPS)
    open_host(page, e2e_stack, user_id, redirect="off")
    url = page.url
    page.click("#connect")
    page.wait_for_function("window.connectResults.length === 1")
    result = page.evaluate("window.connectResults[0]")
    assert result["ok"] is False and result["type"] == "popup_blocked"
    assert wait_event(page, "error")["payload"]["type"] == "popup_blocked"
    assert page.url == url


# ------------------------------------------------------------------------------ 7. lost opener


@pytest.mark.parametrize("opener", ["frame", "host"])
@pytest.mark.security("Popup that loses `window.opener`")
def test_popup_without_opener_result_arrives_by_polling(
    page: Page, e2e_stack: DemoStack, user_id: str, opener: str
) -> None:
    open_host(page, e2e_stack, user_id)
    if opener == "frame":
        frame = open_modal(page)
        open_app_page(frame)
        trigger = frame.locator("[data-portal-connect]")
    else:
        trigger = page.locator("#connect")
    with page.expect_popup() as info:
        trigger.click()
    popup = info.value
    popup.wait_for_selector('button[name="decision"][value="allow"]')
    assert popup.evaluate("window.opener !== null")
    popup.evaluate("window.opener = null")
    assert popup.evaluate("window.opener === null")

    popup.click('button[name="decision"][value="allow"]')
    payload = wait_event(page, "app-connected")["payload"]
    assert_account(payload["connected_accounts"][0], "ada@sandbox.test")
    assert payload["connectedAccountId"] == payload["connected_accounts"][0]["id"]
    assert payload["app"]["title"] == "Sandbox CRM"
    if opener == "host":
        page.wait_for_function("window.connectResults.length === 1")
        assert page.evaluate("window.connectResults[0]") == {
            "ok": True,
            "value": payload["connectedAccountId"],
        }
    assert events(page, "error") == []


# ------------------------------------------------------------------------------ 8. 3P cookies


@pytest.mark.security("Third-party cookies blocked in Chromium")
def test_works_with_third_party_cookies_blocked(
    playwright: Playwright, tmp_path: Path, e2e_stack: DemoStack, user_id: str
) -> None:
    # Chromium's own setting "Block third-party cookies", in a fresh profile.
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    prefs = {"profile": {"cookie_controls_mode": 1, "block_third_party_cookies": True}}
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800},
    )
    try:
        context.set_default_timeout(10_000)
        portal_requests: list[Request] = []
        context.on(
            "request",
            lambda r: (
                portal_requests.append(r)
                if r.url.startswith(e2e_stack.portal.url + "/portal/")
                else None
            ),
        )
        page = context.pages[0] if context.pages else context.new_page()
        # A cookie the portal's origin could read if third-party cookies were allowed.
        page.goto(f"{e2e_stack.portal.url}/portal/api/v1")
        page.evaluate("document.cookie = 'probe3p=1; SameSite=None; Secure; path=/'")
        assert [c["name"] for c in context.cookies(e2e_stack.portal.url)] == ["probe3p"]

        open_host(page, e2e_stack, user_id)
        frame = open_modal(page)
        for title in TITLES:
            expect(frame.locator("a.portal-card", has_text=title)).to_be_visible()
        # The setting is in force: the portal's iframe has no cookie access.
        inner = portal_frame(page)
        assert inner.evaluate("document.cookie") == ""
        assert inner.evaluate("document.hasStorageAccess()") is False

        open_app_page(frame)
        popup = connect_in_frame(page, frame)
        assert popup.is_closed()
        payload = wait_event(page, "app-connected")["payload"]
        assert_account(payload["connected_accounts"][0], "ada@sandbox.test")
        expect(frame.locator(".portal-account", has_text="ada@sandbox.test")).to_be_visible()

        in_frame = [r for r in portal_requests if r.frame.parent_frame is not None]
        api_calls = [r for r in in_frame if "/portal/api/" in r.url or "/portal/ui/" in r.url]
        assert api_calls, [r.url for r in in_frame]
        for r in api_calls:
            headers = r.all_headers()
            if r.method == "OPTIONS":
                continue
            assert headers.get("authorization", "").startswith("Bearer "), (r.url, headers)
            assert "cookie" not in headers, (r.url, headers)
    finally:
        context.close()


# ------------------------------------------------------------------------------ 9. framing


@pytest.mark.security("Portal page framed by an origin not allowed")
def test_disallowed_origin_cannot_frame_or_start_a_session(
    page: Page, e2e_stack: DemoStack, serve: ServerFactory, user_id: str
) -> None:
    embed_url = f"{e2e_stack.portal.url}/portal/embed/apps?mode=inline"
    evil = Flask("e2e_evil")

    @evil.get("/")
    def index() -> str:
        return f'<!doctype html><title>evil</title><iframe id="p" src="{embed_url}"></iframe>'

    server = serve(evil)
    assert server.url not in (e2e_stack.host.url,)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    with page.expect_response(lambda r: r.url == embed_url) as response_info:
        page.goto(server.url + "/")
    response = response_info.value
    csp = response.headers["content-security-policy"]
    ancestors = re.search(r"frame-ancestors ([^;]*)", csp)
    assert ancestors, csp
    assert e2e_stack.host.url in ancestors.group(1).split()
    assert server.url not in ancestors.group(1)

    child = page.frame_locator("#p")
    page.wait_for_load_state("load")
    frames = [f for f in page.frames if f is not page.main_frame]
    assert len(frames) == 1
    blocked = frames[0]
    # Chromium replaces the refused document with an error page: no portal content at all.
    assert not blocked.url.startswith(e2e_stack.portal.url), blocked.url
    expect(child.locator("body.portal")).to_have_count(0)
    expect(child.locator("#portal-main")).to_have_count(0)
    if not any("frame-ancestors" in text for text in console):
        page.wait_for_event("console", predicate=lambda m: "frame-ancestors" in m.text)

    # The page cannot mint a session either: the API refuses its Origin and sends no CORS grant.
    body = {"appKey": DEMO_APP_KEY, "userId": user_id, "hash": user_hash(DEMO_APP_SECRET, user_id)}
    outcome = page.evaluate(
        """async ([url, body]) => {
          try {
            const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                        body: JSON.stringify(body)});
            return {status: r.status, text: await r.text()};
          } catch (err) { return {error: err.name}; }
        }""",
        [f"{e2e_stack.portal.url}/portal/api/v1/sessions", body],
    )
    assert outcome.get("error") == "TypeError" or outcome.get("status") in (401, 403), outcome
    assert "token" not in json.dumps(outcome)


# ------------------------------------------------------------------------------ 10. messages


def fake_envelope(marker: str, type_: str = "app-connected") -> dict[str, Any]:
    return {
        "source": "connect-portal",
        "version": 1,
        "type": type_,
        "payload": {
            "app": {"name": "sandbox", "title": "Forged", "icon_url": ""},
            "connectedAccountId": marker,
            "connected_accounts": [],
        },
    }


@pytest.mark.security("A `message` event from another origin")
def test_messages_from_other_windows_or_origins_are_ignored_by_portal_js(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    expect(frame.locator("a.portal-card").first).to_be_visible()

    # 1. The host page's own window (right envelope, wrong origin and source).
    page.evaluate("(m) => window.postMessage(m, location.origin)", fake_envelope("self"))
    # 2. A second iframe on the portal's origin (right origin, wrong source).
    page.evaluate(
        """(src) => new Promise((resolve) => {
          const f = document.createElement('iframe');
          f.id = 'rogue';
          f.src = src;
          f.addEventListener('load', resolve, {once: true});
          document.body.append(f);
        })""",
        f"{e2e_stack.portal.url}/portal/embed/apps?mode=inline",
    )
    rogue = portal_frame(page, "#rogue")
    rogue.evaluate(
        "([m, o]) => parent.postMessage(m, o)", [fake_envelope("rogue"), e2e_stack.host.url]
    )
    # 3. A portal-origin window the SDK did not open (right origin, wrong source).
    with page.expect_popup() as info:
        page.evaluate(
            "(u) => { window.open(u, 'stranger'); }", f"{e2e_stack.portal.url}/portal/api/v1"
        )
    stranger = info.value
    stranger.wait_for_load_state()
    stranger.evaluate(
        "([m, o]) => window.opener.postMessage(m, o)",
        [fake_envelope("stranger"), e2e_stack.host.url],
    )
    stranger.close()

    # Control: the same message from the SDK's own iframe is delivered, so the listener was live.
    portal_frame(page).evaluate(
        "([m, o]) => parent.postMessage(m, o)", [fake_envelope("control"), e2e_stack.host.url]
    )
    wait_event(page, "app-connected")
    page.wait_for_timeout(300)
    assert [e["payload"]["connectedAccountId"] for e in events(page, "app-connected")] == [
        "control"
    ]


@pytest.mark.security("A `message` event from another origin")
def test_messages_to_the_iframe_from_other_windows_are_ignored(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    open_app_page(frame)
    attempt_id = frame.locator("[data-portal-connect]").get_attribute("data-portal-attempt-id")
    assert attempt_id
    with page.expect_popup() as info:
        frame.locator("[data-portal-connect]").click()
    popup = info.value
    popup.wait_for_selector('button[name="decision"][value="allow"]')
    expect(frame.locator("[data-portal-connect]")).to_have_attribute("aria-busy", "true")

    forged = {
        "source": "connect-portal",
        "version": 1,
        "type": "portal:connect-result",
        "payload": {
            "status": "connected",
            "attemptId": attempt_id,
            "app": "sandbox",
            "payload": fake_envelope("forged")["payload"],
        },
    }
    # From the host page (wrong source) to the iframe, with the exact portal origin.
    page.evaluate(
        "([m, o]) => document.querySelector('[role=dialog] iframe').contentWindow.postMessage(m, o)",
        [forged, e2e_stack.portal.url],
    )
    # From the real popup while it is on the provider's origin (right source, wrong origin).
    popup.evaluate("(m) => window.opener.postMessage(m, '*')", forged)
    # The iframe's next poll of the attempt (a timer task queued after both messages): it has
    # handled them by then.
    with page.expect_response(lambda r: "/connect-attempts/" in r.url):
        pass
    assert events(page, "app-connected") == []
    expect(frame.locator("[data-portal-connect]")).to_have_attribute("aria-busy", "true")

    # Closing the popup without consenting ends the attempt as window_closed, still no account.
    popup.close()
    error = wait_event(page, "error")["payload"]
    assert error["type"] == "window_closed"
    assert events(page, "app-connected") == []
    assert page.evaluate("window.portal.getConnectedAccounts('sandbox')") == []


# ------------------------------------------------------------------------------ 11. hostile label


@pytest.mark.security("Provider account label containing `</script><script>alert(1)</script>`")
def test_hostile_account_label_is_rendered_inert(
    page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    insert_account(e2e_stack, user_id, HOSTILE, "hostile-1")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_host(page, e2e_stack, user_id)

    frame = open_modal(page)
    card = frame.locator("a.portal-card", has_text="Sandbox CRM")
    expect(card).to_contain_text("Connected")
    card.click()
    label = frame.locator(".portal-account__label")
    expect(label).to_have_text(HOSTILE)
    expect(label).to_be_visible()
    inner = portal_frame(page)
    assert inner.evaluate("document.querySelectorAll('#portal-main script').length") == 0
    accounts = page.evaluate("window.portal.getConnectedAccounts('sandbox')")
    assert [a["label"] for a in accounts] == [HOSTILE]

    # Back to the marketplace and in again (htmx swaps): still inert.
    frame.get_by_role("link", name="All apps").click()
    open_app_page(frame)
    expect(frame.locator(".portal-account__label")).to_have_text(HOSTILE)
    page.wait_for_timeout(200)
    assert dialogs == []


#: For each element matching the selector: is its text isolated from the text around it? Walks
#: from the element up to its block container (where a bidi paragraph ends) and reports the
#: computed `unicode-bidi` met on the way (`<bdi>` computes to `isolate`, HTML §15.3.4), and
#: whether Chromium laid the text after the element out after it (Range rectangles).
BIDI_PROBE = """
(selector) => [...document.querySelectorAll(selector)].map((el) => {
  // The innermost element holding all of el's text (the label itself, wrapper or not).
  let inner = el;
  while (inner.children.length === 1 && inner.firstElementChild.textContent === inner.textContent) {
    inner = inner.firstElementChild;
  }
  const seen = [];
  for (let n = inner; n && n !== document.body; n = n.parentElement) {
    const style = getComputedStyle(n);
    seen.push(style.unicodeBidi);
    if (!style.display.startsWith('inline')) break;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  const box = range.getBoundingClientRect();
  return { text: el.textContent, bidi: seen, left: box.left, right: box.right };
})
"""


@pytest.mark.security("A provider-supplied label with U+202E")
def test_rlo_label_is_isolated_in_chromium(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    rlo = "\u202e"
    insert_account(e2e_stack, user_id, f"{rlo}evil-label", f"{rlo}ext-id")
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    open_app_page(frame)
    expect(frame.locator(".portal-account__label")).to_have_text(f"{rlo}evil-label")
    inner = portal_frame(page)
    for selector in (".portal-account__label", ".portal-account__id"):
        probes = inner.evaluate(BIDI_PROBE, selector)
        assert len(probes) == 1 and rlo in probes[0]["text"], (selector, probes)
        assert "isolate" in probes[0]["bidi"], (selector, probes)
    # The external id is laid out after the label, whatever the label's override says.
    label = inner.evaluate(BIDI_PROBE, ".portal-account__label")[0]
    ident = inner.evaluate(BIDI_PROBE, ".portal-account__id")[0]
    assert ident["left"] >= label["right"] - 1, (label, ident)


# ------------------------------------------------------------------------------ 12. CSP

CSP_PROBE = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP-VIOLATION ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + location.href);
});
"""


def test_no_csp_violation_during_the_modal_flow(
    context: BrowserContext, page: Page, e2e_stack: DemoStack, user_id: str
) -> None:
    context.add_init_script(CSP_PROBE)
    messages: list[str] = []

    def watch(p: Page) -> None:
        def record(m: ConsoleMessage) -> None:
            if "Content Security Policy" in m.text or "CSP-VIOLATION" in m.text:
                messages.append(f"{m.location.get('url')}: {m.text}")

        p.on("console", record)

    watch(page)
    context.on("page", watch)
    open_host(page, e2e_stack, user_id)
    frame = open_modal(page)
    search = frame.get_by_role("searchbox", name="Search apps")
    search.fill("analytics")
    expect(frame.locator("a.portal-card")).to_have_count(1)
    expect(frame.locator("a.portal-card")).to_contain_text("Sandbox Analytics")
    search.fill("")
    expect(frame.locator("a.portal-card")).to_have_count(len(DEMO_ENABLED_APPS))
    open_app_page(frame)
    connect_in_frame(page, frame)
    wait_event(page, "app-connected")
    expect(frame.locator(".portal-account", has_text="ada@sandbox.test")).to_be_visible()
    click_away(frame.get_by_role("button", name="Close"))
    wait_event(page, "modal-closed")
    page.evaluate("window.portal.showApps('inline', 'container', 'narrow')")
    expect(page.frame_locator("#container iframe").locator("a.portal-card").first).to_be_visible()
    page.wait_for_timeout(200)
    assert messages == []
