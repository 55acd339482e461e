"""Issue 16 in a real Chromium, host page and portal on different origins: the
connected-accounts page (showConnectedAccounts), the functions list -> showFunction's form ->
"function form filled" (showFunctions), and the flows on the app page (switch, settings,
dynamic choices), with the App Event then running only the flows a user turned on.

The accounts and functions pages are put into the host page as the SDK does (an iframe of
``/portal/embed/…?mode=inline#token=…`` with a session token the host backend minted), so these
tests do not depend on the SDK methods that open them; the app page opens with ``showApp``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from conftest import stack_database
from playwright.sync_api import FrameLocator, Page, expect

from portal.demo import DEMO_APP_SECRET, DEMO_FLOWS, DemoStack
from portal.worker import run_once

from .conftest import (
    SCREENSHOTS,
    add_test_routes,
    consent,
    fitted_height,
    open_host,
    portal_ready,
    settle_images,
)

pytestmark = pytest.mark.e2e

#: The flow with dynamic choices (its options come from the user's own Sandbox CRM contacts).
DEAL_FLOW = """
flows:
  - name: deal-to-contact
    app: sandbox
    title: Add the deal's owner as a contact
    description: When a deal is won, adds a contact for the owner you pick.
    trigger: {event: Deal Won}
    function: sandbox-create-contact
    params:
      name: "{payload.deal} for {settings.owner}"
      email: "{settings.owner}"
    settings:
      type: object
      additionalProperties: false
      required: [owner]
      properties:
        owner:
          title: Owner
          type: string
          minLength: 1
          description: One of your Sandbox CRM contacts.
          x-portal-choices:
            function: sandbox-list-contacts
            params: {limit: 5}
            value: email
            label: name
"""

# Puts an inline portal page into the host page the way portal.js does, and records every
# message the portal posts to the host page (checked by origin and source, as portal.js does).
EMBED = """([src, portalOrigin]) => {
  window.portalMessages = [];
  const box = document.createElement('div');
  box.id = 'flows-box';
  box.style.width = '760px';
  const frame = document.createElement('iframe');
  frame.id = 'flows-frame';
  frame.title = 'Connect Portal';
  frame.style.width = '100%';
  frame.style.height = '900px';
  frame.style.border = '0';
  frame.src = src;
  box.append(frame);
  document.body.append(box);
  window.addEventListener('message', (event) => {
    if (event.origin !== portalOrigin || event.source !== frame.contentWindow) return;
    if (event.data && event.data.source === 'connect-portal') window.portalMessages.push(event.data);
  });
}"""


@pytest.fixture(scope="module")
def flow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """The demo's configuration with its flow (``DEMO_FLOWS``) and a flow with dynamic choices;
    the test page at ``/e2e``; no worker thread (the tests run the queue)."""
    tmp = tmp_path_factory.mktemp("flows-e2e")
    deal = tmp / "deal.yaml"
    deal.write_text(DEAL_FLOW, "utf-8")
    config = {**DEMO_FLOWS, "PORTAL_FLOWS_PATH": [DEMO_FLOWS["PORTAL_FLOWS_PATH"], str(deal)]}
    running = DemoStack(0, 0, 0, worker=False, **config, **stack_database(tmp, "portal"))
    add_test_routes(running.host_app, running.portal.url)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def host(page: Page, flow_stack: DemoStack) -> Iterator[Page]:
    """The e2e host page for a fresh user; fails the test on any CSP violation."""
    violations: list[str] = []
    page.on(
        "console",
        lambda m: (
            violations.append(f"{m.location} {m.text}")
            if "Content Security Policy" in m.text
            else None
        ),
    )
    open_host(page, flow_stack, f"user-{uuid.uuid4().hex[:10]}")
    yield page
    assert violations == []


def user_of(page: Page) -> str:
    return str(page.evaluate("document.body.dataset.userId"))


def embed(page: Page, stack: DemoStack, path: str, **query: str) -> FrameLocator:
    """Inline ``/portal/embed/<path>`` in the host page with a token the host backend minted."""
    session = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"userId": user_of(page), "origin": stack.host.url},
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}"},
        timeout=10,
    )
    assert session.status_code == 201, session.text
    params = urlencode({"mode": "inline", "layout": "wide", **query})
    src = f"{stack.portal.url}/portal/embed/{path}?{params}#token={session.json()['token']}"
    page.evaluate(EMBED, [src, stack.portal.url])
    frame = page.frame_locator("#flows-frame")
    portal_ready(frame)
    return frame


def connect(page: Page, sandbox_user: str = "ada") -> str:
    """connectApp('sandbox') from the host page's button and the provider's real popup."""
    before = len(page.evaluate("window.connectResults"))
    with page.expect_popup() as info:
        page.click("#connect")
    popup = info.value
    with popup.expect_event("close"):
        consent(popup, sandbox_user)
    page.wait_for_function("(n) => window.connectResults.length > n", arg=before)
    result = page.evaluate("window.connectResults[window.connectResults.length - 1]")
    assert result["ok"], result
    return str(result["value"])


def api(stack: DemoStack, page: Page, path: str) -> Any:
    """GET ``/portal/api/v1/<path>`` as the host backend, for the page's user."""
    response = requests.get(
        f"{stack.portal.url}/portal/api/v1/{path}",
        headers={"Authorization": f"Bearer {DEMO_APP_SECRET}", "X-Portal-User-Id": user_of(page)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_accounts_page_lists_reconnects_and_disconnects(
    host: Page, flow_stack: DemoStack
) -> None:
    page = host
    first = connect(page, "ada")
    frame = embed(page, flow_stack, "apps/sandbox/accounts")
    expect(frame.locator("#portal-app-title")).to_have_text("Sandbox CRM accounts")
    row = frame.locator(f'[data-portal-account="{first}"]')
    expect(row).to_contain_text("ada@sandbox.test")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("Connected just now")

    # Reconnect runs the connect flow again; the same external account keeps its row.
    with page.expect_popup() as info:
        row.get_by_role("button", name="Reconnect").click()
    with info.value.expect_event("close"):
        consent(info.value, "ada")
    page.wait_for_function("window.portalMessages.some((m) => m.type === 'app-connected')")
    connected = page.evaluate(
        "window.portalMessages.find((m) => m.type === 'app-connected').payload"
    )
    assert connected["connectedAccountId"] == first
    assert [a["id"] for a in connected["connected_accounts"]] == [first]
    portal_ready(frame)
    expect(frame.locator("[data-portal-account]")).to_have_count(1)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # for review by eye
    page.locator("#flows-box").screenshot(path=str(SCREENSHOTS / "accounts-page.png"))
    disconnect = frame.locator(f'[data-portal-account="{first}"]').get_by_role(
        "button", name="Disconnect"
    )
    disconnect.click()
    expect(disconnect).to_have_text("Confirm disconnect")
    disconnect.click()
    portal_ready(frame)
    expect(frame.get_by_text("No Sandbox CRM account connected yet.")).to_be_visible()
    page.wait_for_function("window.portalMessages.some((m) => m.type === 'app-disconnected')")
    assert api(flow_stack, page, "connected-accounts?app=sandbox")["connected_accounts"] == []


def test_the_functions_list_opens_a_form_whose_values_come_back(
    host: Page, flow_stack: DemoStack
) -> None:
    page = host
    account = connect(page)
    frame = embed(page, flow_stack, "functions", app="sandbox")
    results = frame.locator("#portal-function-results")
    expect(results).to_have_attribute("data-portal-function-total", "4")
    expect(frame.locator('[data-portal-function="sandbox-get-contact"]')).to_contain_text(
        "One contact by its id."
    )
    frame.get_by_role("searchbox", name="Search functions").fill("create")
    expect(results).to_have_attribute("data-portal-function-total", "1")
    portal_ready(frame)
    item = frame.locator('[data-portal-function="sandbox-create-contact"]')
    expect(item).to_contain_text("email required")
    frame.get_by_role("searchbox", name="Search functions").fill("")
    expect(results).to_have_attribute("data-portal-function-total", "4")
    portal_ready(frame)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # for review by eye
    page.locator("#flows-box").screenshot(path=str(SCREENSHOTS / "functions-list.png"))
    frame.get_by_role("searchbox", name="Search functions").fill("create")
    expect(results).to_have_attribute("data-portal-function-total", "1")
    portal_ready(frame)
    item.get_by_role("link", name="Create a contact").click()
    portal_ready(frame)
    frame.get_by_label("Name").fill("Grace Hopper")
    frame.get_by_label("Email").fill("grace@example.com")
    frame.get_by_role("button", name="Continue").click()
    portal_ready(frame)
    expect(frame.get_by_text("Values saved.")).to_be_visible()
    page.wait_for_function("window.portalMessages.some((m) => m.type === 'portal:function-params')")
    filled = page.evaluate(
        "window.portalMessages.find((m) => m.type === 'portal:function-params').payload"
    )
    assert filled == {
        "name": "sandbox-create-contact",
        "params": {"name": "Grace Hopper", "email": "grace@example.com"},
        "connectedAccountId": account,
    }


def flow_card(frame: FrameLocator, name: str) -> Any:
    return frame.locator(f'[data-portal-flow="{name}"]')


def test_flows_on_the_app_page_switch_settings_choices_and_runs(
    host: Page, flow_stack: DemoStack
) -> None:
    page = host
    connect(page)
    page.evaluate("window.portal.showApp('sandbox', 'inline', 'container', 'wide')")
    page.evaluate("document.getElementById('container').style.width = '760px'")
    frame = page.frame_locator("#container iframe")
    portal_ready(frame)
    crm = flow_card(frame, "contact-to-crm")
    expect(crm).to_have_attribute("data-portal-flow-enabled", "false")
    expect(crm.get_by_label("Tag")).to_have_value("from-app")

    # An empty tag cannot be switched on: the card comes back off, with the field's error.
    crm.get_by_label("Tag").fill("")
    crm.get_by_role("switch").check()
    portal_ready(frame)
    expect(crm).to_have_attribute("data-portal-flow-enabled", "false")
    expect(crm.locator(".portal-field--invalid")).to_contain_text("This field is required.")
    expect(crm.get_by_role("switch")).not_to_be_checked()

    crm.get_by_label("Tag").fill("vip")
    crm.get_by_role("switch").check()
    portal_ready(frame)
    expect(crm).to_have_attribute("data-portal-flow-enabled", "true")
    expect(crm).to_have_attribute("data-portal-flow-status", "ready")
    expect(crm.get_by_role("status")).to_have_text("Saved. The flow is on.")

    # Dynamic choices: the owner's options come from the user's own Sandbox CRM contacts.
    deal = flow_card(frame, "deal-to-contact")
    owner = deal.get_by_label("Owner")
    expect(owner.locator("option", has_text="Mary Somerville")).to_have_count(1)
    owner.select_option(label="Mary Somerville")
    deal.get_by_role("button", name="Save settings").click()
    portal_ready(frame)
    expect(deal.get_by_role("status")).to_have_text("Saved. The flow is off.")
    expect(deal.get_by_label("Owner")).to_have_value("mary@sandbox.test")

    flows = {f["name"]: f for f in api(flow_stack, page, "flows?app=sandbox")["flows"]}
    assert flows["contact-to-crm"]["enabled"] is True
    assert flows["contact-to-crm"]["settings"] == {"tag": "vip"}
    assert flows["deal-to-contact"]["enabled"] is False
    assert flows["deal-to-contact"]["settings"] == {"owner": "mary@sandbox.test"}

    # The App Event runs the flow the user turned on, with their tag.
    receipt = page.evaluate(
        "window.portal.event('Contact Created', {name: 'Brandon', email: 'b@example.com'})"
    )
    [run] = receipt["runs"]
    assert (run["flow"], run["status"]) == ("sandbox/contact-to-crm", "queued")
    while run_once(flow_stack.portal_app):
        pass
    event = api(flow_stack, page, f"events/{receipt['id']}")
    assert event["runs"][0]["status"] == "succeeded", event
    assert event["runs"][0]["result"]["output"]["name"] == "Brandon (vip)"

    # Off again: the next event's run is skipped.
    crm.get_by_role("switch").uncheck()
    portal_ready(frame)
    expect(crm).to_have_attribute("data-portal-flow-enabled", "false")
    skipped = page.evaluate("window.portal.event('Contact Created', {name: 'Nobody'})")
    assert [r["status"] for r in skipped["runs"]] == ["skipped"]

    # The app page as a user who comes back sees it (the README's picture is a copy of this
    # shot: docs/flows-app-page.png); the first flow is on again for it.
    crm.get_by_role("switch").check()
    portal_ready(frame)
    expect(crm).to_have_attribute("data-portal-flow-enabled", "true")
    page.set_viewport_size({"width": 1280, "height": 1800})  # the whole page paints at once
    open_host(page, flow_stack, user_of(page))
    page.evaluate("document.getElementById('container').style.width = '640px'")
    page.evaluate("window.portal.showApp('sandbox', 'inline', 'container', 'wide')")
    settle_images(page.frame_locator("#container iframe"))
    fitted_height(page, "#container iframe")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#container").screenshot(path=str(SCREENSHOTS / "flows-app-page.png"))


def test_the_demo_app_event_runs_the_flow_only_for_a_user_who_turned_it_on(
    page: Page, flow_stack: DemoStack
) -> None:
    from conftest import Browser, connect_sandbox, new_session

    on, off = new_session(flow_stack, "demo-user-1"), new_session(flow_stack, "demo-user-2")
    for user in (on, off):
        response, _ = connect_sandbox(user, Browser())
        assert response.status_code == 200
    body = {"enabled": True, "settings": {"tag": "demo"}}
    saved = requests.put(
        on.base + "/flows/sandbox/contact-to-crm", json=body, headers=on.headers, timeout=10
    )
    assert saved.status_code == 200, saved.text

    output = page.locator("#paragon-output")
    page.goto(f"{flow_stack.host.url}/?user=demo-user-2")
    expect(page.locator("#paragon-status")).to_have_text("authenticate() resolved for demo-user-2.")
    page.click("#paragon-event")
    expect(output).to_contain_text('"status": "skipped"')
    expect(output).to_contain_text('"flow": "sandbox/contact-to-crm"')

    page.goto(f"{flow_stack.host.url}/?user=demo-user-1")
    expect(page.locator("#paragon-status")).to_have_text("authenticate() resolved for demo-user-1.")
    page.click("#paragon-event")
    expect(output).to_contain_text("runs in progress")
    while run_once(flow_stack.portal_app):  # this stack has no worker thread
        pass
    expect(output).to_contain_text('"status": "succeeded"')
    expect(output).to_contain_text('"name": "Brandon (demo)"')
