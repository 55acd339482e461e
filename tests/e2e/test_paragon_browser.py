"""The Paragon-style SDK surface in a real Chromium: ``new ConnectPortal({baseUrl})``,
``authenticate(projectId, userToken)``, ``getUser()``, ``connect()`` and ``event()``, with a JWT
user token the test signs with the host app's key (SECURITY.md "Host authentication")."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import Page, expect

from portal import sign_user_token
from portal.demo import DEMO_APP_KEY, DemoStack

from .conftest import click_away, consent, open_host, portal_ready

pytestmark = pytest.mark.e2e

# Runs in the e2e host page (which has loaded portal.js from the portal's origin): a second,
# Paragon-style instance next to the page's own {appKey, userId, hash} one.
AUTHENTICATE = """
async ([baseUrl, projectId, token]) => {
  const p = new ConnectPortal({ baseUrl });
  window.paragon = p;
  window.paragonEvents = [];
  ['ready', 'app-connected', 'app-disconnected', 'modal-closed', 'error'].forEach((type) =>
    p.eventEmitter.on(type, (payload) => window.paragonEvents.push({ type, payload })));
  const before = await p.getUser();
  try {
    await p.authenticate(projectId, token);
    return { before, ok: true };
  } catch (err) {
    return { before, ok: false, type: err.type, status: err.status };
  }
}
"""


def authenticate(page: Page, stack: DemoStack, token: str) -> dict[str, Any]:
    """Create the Paragon-style instance on the page and ``authenticate()`` it with ``token``."""
    result: dict[str, Any] = page.evaluate(
        AUTHENTICATE, [f"{stack.portal.url}/portal", DEMO_APP_KEY, token]
    )
    return result


def paragon_events(page: Page, type_: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = page.evaluate("window.paragonEvents")
    return [e for e in got if e["type"] == type_]


def get_user(page: Page) -> dict[str, Any]:
    user: dict[str, Any] = page.evaluate("window.paragon.getUser()")
    return user


def test_authenticate_get_user_and_connect(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    open_host(page, e2e_stack, user_id)
    token = sign_user_token(e2e_stack.jwt_private_key, user_id, DEMO_APP_KEY, ttl=600)
    result = authenticate(page, e2e_stack, token)
    assert result == {"before": {"authenticated": False}, "ok": True}
    page.wait_for_function("window.paragonEvents.some((e) => e.type === 'ready')")
    assert paragon_events(page, "ready")[0]["payload"] == {"isReady": True}
    assert paragon_events(page, "error") == []

    nothing = {"enabled": False, "connectedAccounts": 0, "needsReauth": False, "flows": {}}
    before = get_user(page)
    assert before["authenticated"] is True and before["userId"] == user_id
    assert before["integrations"]["sandbox"] == nothing
    assert set(before) == {"authenticated", "userId", "integrations"}

    # connect('sandbox') opens the app's page in the modal; Connect there opens the popup.
    page.evaluate("window.paragon.connect('sandbox')")
    frame = page.frame_locator("[role=dialog] iframe")
    portal_ready(frame)
    expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM")
    with page.expect_popup() as info:
        frame.locator("[data-portal-connect]").click()
    popup = info.value
    with popup.expect_event("close"):
        consent(popup)
    page.wait_for_function("window.paragonEvents.some((e) => e.type === 'app-connected')")
    connected = paragon_events(page, "app-connected")[0]["payload"]
    assert connected["app"]["name"] == "sandbox"

    after = get_user(page)
    assert after["userId"] == user_id
    assert after["integrations"]["sandbox"] == {
        "enabled": True,
        "connectedAccounts": 1,
        "needsReauth": False,
        "flows": {},
    }
    assert after["integrations"]["sandbox-keys"] == nothing
    # The page's own {appKey, userId, hash} instance heard nothing of this.
    assert page.evaluate("window.events.filter((e) => e.type === 'app-connected').length") == 0


def other_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize("kind", ["other-key", "wrong-project", "expired", "garbage"])
def test_bad_token_gives_unauthenticated_user(
    page: Page, e2e_stack: DemoStack, user_id: str, kind: str
) -> None:
    key = e2e_stack.jwt_private_key
    token = {
        "other-key": lambda: sign_user_token(other_key_pem(), user_id, DEMO_APP_KEY),
        "wrong-project": lambda: sign_user_token(key, user_id, "another-project"),
        "expired": lambda: sign_user_token(key, user_id, DEMO_APP_KEY, ttl=-300),
        "garbage": lambda: "not.a.jwt",
    }[kind]()
    open_host(page, e2e_stack, user_id)
    result = authenticate(page, e2e_stack, token)
    assert result == {
        "before": {"authenticated": False},
        "ok": False,
        "type": "invalid_user_token",
        "status": 401,
    }
    page.wait_for_function("window.paragonEvents.some((e) => e.type === 'error')")
    assert paragon_events(page, "error")[0]["payload"]["type"] == "invalid_user_token"
    assert paragon_events(page, "ready") == []
    assert get_user(page) == {"authenticated": False}
    # Other methods reject rather than pretend.
    rejected = page.evaluate(
        "window.paragon.event('Contact Created', {}).then(() => 'resolved', (e) => e.type)"
    )
    assert rejected == "invalid_user_token"


def test_methods_before_authenticate(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    open_host(page, e2e_stack, user_id)
    outcome = page.evaluate(
        """async (baseUrl) => {
          const p = new ConnectPortal({ baseUrl });
          const seen = [];
          p.eventEmitter.on('ready', () => seen.push('ready'));
          p.eventEmitter.on('error', () => seen.push('error'));
          const user = await p.getUser();
          const show = await p.showApps('modal').then(() => 'resolved', (e) => e.type);
          const event = await p.event('Contact Created', {}).then(() => 'resolved', (e) => e.type);
          await new Promise((r) => setTimeout(r, 200));
          return { user, show, event, seen, dialogs: document.querySelectorAll('[role=dialog]').length };
        }""",
        f"{e2e_stack.portal.url}/portal",
    )
    assert outcome == {
        "user": {"authenticated": False},
        "show": "not_authenticated",
        "event": "not_authenticated",
        "seen": [],
        "dialogs": 0,
    }


def test_event_is_accepted(page: Page, e2e_stack: DemoStack, user_id: str) -> None:
    open_host(page, e2e_stack, user_id)
    token = sign_user_token(e2e_stack.jwt_private_key, user_id, DEMO_APP_KEY, ttl=600)
    assert authenticate(page, e2e_stack, token)["ok"] is True
    receipt = page.evaluate(
        "window.paragon.event('Unsubscribed Event', {name: 'Brandon', email: 'b@useparagon.com'})"
    )
    assert receipt["name"] == "Unsubscribed Event"
    assert isinstance(receipt["id"], str) and receipt["id"]
    assert receipt["runs"] == []


def test_demo_page_paragon_card(page: Page, e2e_stack: DemoStack) -> None:
    page.goto(e2e_stack.host.url + "/")
    status = page.locator("#paragon-status")
    expect(status).to_have_text("authenticate() resolved for demo-user-1.")
    # The inline portal above this card fills in asynchronously; click once the page is settled.
    portal_ready(page.frame_locator("#inline-portal iframe"))
    page.click("#paragon-get-user")
    output = page.locator("#paragon-output")
    expect(output).to_contain_text('"authenticated": true')
    expect(output).to_contain_text('"userId": "demo-user-1"')
    expect(output).to_contain_text('"sandbox": {')
    page.click("#paragon-event")
    expect(output).to_contain_text("event() → 202 Accepted")
    expect(output).to_contain_text('"name": "Contact Created"')
    page.click("#paragon-connect")
    frame = page.frame_locator("[role=dialog] iframe")
    expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM")
    click_away(frame.get_by_role("button", name="Close"))
    expect(page.locator("[role=dialog]")).to_have_count(0)
