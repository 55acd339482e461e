"""Issue 19 in Chromium: ``connectApp(app, {scopes})`` through the popup, and the demo host
page's connection-lifecycle card (a hosted connect link, an unhealthy account with its reason
made by the sandbox's fault switch, a reconnect that recovers it).

Screenshots of the card (wide and 375 px) and of the hosted marketplace page go to
``$E2E_SHOTS`` when set (else ``tests/e2e/screenshots``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from portal import accounts as account_service
from portal.demo import DEMO_APP_KEY, DemoStack
from portal.store import ConnectedAccount

from .conftest import SCREENSHOTS, click_while_page_settles, consent, open_host, wait_event

SHOTS = Path(os.environ.get("E2E_SHOTS") or SCREENSHOTS)
SCOPED_BUTTON = """() => {
  const b = document.createElement('button');
  b.id = 'scoped';
  b.textContent = 'connect with scopes';
  b.addEventListener('click', () => {
    window.portal.connectApp('sandbox', { scopes: ['contacts.delete'] }).then(
      (value) => window.connectResults.push({ ok: true, value }),
      (err) => window.connectResults.push({ ok: false, type: err.type, message: err.message }));
  });
  document.body.append(b);
}"""


def test_connect_app_with_scopes_asks_for_them_and_stores_the_grant(
    page: Page, e2e_stack: DemoStack
) -> None:
    user = f"e2e-scopes-{uuid.uuid4().hex[:8]}"
    open_host(page, e2e_stack, user)
    page.evaluate(SCOPED_BUTTON)
    with page.expect_popup() as info:
        page.click("#scoped")
    popup = info.value
    popup.wait_for_url("**/oauth/authorize**")
    assert "contacts.delete" in popup.url
    expect(popup.get_by_text("Delete your contacts")).to_be_visible()
    consent(popup)
    page.wait_for_function("() => window.connectResults.length > 0")
    [result] = page.evaluate("window.connectResults")
    assert result["ok"], result
    connected = wait_event(page, "app-connected")
    [account] = [
        a for a in connected["payload"]["connected_accounts"] if a["id"] == result["value"]
    ]
    assert account["scopes"] == ["profile", "contacts.read", "contacts.write", "contacts.delete"]

    # A scope the app does not offer: the promise rejects with the server's invalid_scope.
    if not popup.is_closed():  # the same window name would reuse it: no new popup
        popup.wait_for_event("close")
    page.evaluate(SCOPED_BUTTON.replace("'contacts.delete'", "'contacts.admin'"))
    page.evaluate("() => { window.connectResults.length = 0; }")
    with page.expect_popup():
        page.locator("#scoped").last.click()
    page.wait_for_function("() => window.connectResults.length > 0")
    [refused] = page.evaluate("window.connectResults")
    assert refused["ok"] is False and refused["type"] == "invalid_scope", refused


@pytest.fixture(scope="module")
def lifecycle_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """A stack of its own: the demo's fault switch checks the health of every account."""
    from conftest import stack_database

    tmp = tmp_path_factory.mktemp("lifecycle")
    running = DemoStack(0, 0, 0, **stack_database(tmp, "portal")).start()
    yield running
    requests.post(f"{running.sandbox.url}/_sandbox/reset", timeout=5)
    running.stop()


def add_key_account(stack: DemoStack, user: str) -> str:
    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        account, _ = account_service.upsert_account(
            db,
            state.sealer,
            project=DEMO_APP_KEY,
            user_id=user,
            app="sandbox-keys",
            external_id="1",  # ada's id at the sandbox (GET /apikey/me), as a connect stores it
            label="Ada Lovelace",
            scopes=[],
            credentials={"type": "api_key", "api_key": "sk_demo_ada"},
            expires_at=None,
        )
        return account.id


def test_demo_page_shows_a_connect_link_an_unhealthy_account_and_a_reconnect(
    page: Page, lifecycle_stack: DemoStack
) -> None:
    stack = lifecycle_stack
    account_id = add_key_account(stack, "demo-user-2")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{stack.host.url}/?user=demo-user-2")
    item = page.locator(f'#lifecycle-accounts [data-account-id="{account_id}"]')
    expect(item).to_have_attribute("data-status", "active")

    click_while_page_settles(page.locator("#make-link"))
    link = page.locator("#connect-link-url")
    expect(link).to_contain_text(f"{stack.portal.url}/portal/link?token=")

    click_while_page_settles(page.locator("#fault-on"))
    expect(item).to_have_attribute("data-status", "needs_reauth")
    expect(item.locator(".demo-account__reason")).to_contain_text("401")
    card = page.locator("section[aria-labelledby=lifecycle-title]")
    card.screenshot(path=str(SHOTS / "lifecycle-card-wide.png"))
    page.set_viewport_size({"width": 375, "height": 800})
    card.screenshot(path=str(SHOTS / "lifecycle-card-375.png"))
    page.set_viewport_size({"width": 1280, "height": 800})

    click_while_page_settles(page.locator("#fault-off"))
    expect(page.locator("#lifecycle-status")).to_contain_text("API keys work again")
    with page.expect_popup() as info:
        item.get_by_role("button", name="Reconnect").click()
    popup = info.value
    popup.fill('input[name="api_key"]', "sk_demo_ada")
    with popup.expect_event("close"):
        popup.click('button[type="submit"]')
    expect(page.locator("#lifecycle-status")).to_have_text(
        f"reconnectApp resolved with {account_id} (same id)."
    )
    expect(item).to_have_attribute("data-status", "active")
    expect(item.locator(".demo-account__reason")).to_have_count(0)
    expect(page.locator("#webhook-log")).to_contain_text("account.recovered")
    with stack.portal_app.extensions["portal"].store.read() as db:
        row = db.get(ConnectedAccount, account_id)
        assert row is not None and row.status == "active"

    # The marketplace link opens the hosted marketplace on the portal's origin.
    href = link.get_attribute("href")
    assert href
    page.goto(href)
    expect(page.get_by_role("heading", name="Choose an app to connect")).to_be_visible()
    expect(page.locator('button[data-app="sandbox"]')).to_be_visible()
    page.screenshot(path=str(SHOTS / "link-marketplace-wide.png"))
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(SHOTS / "link-marketplace-375.png"))
