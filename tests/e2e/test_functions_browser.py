"""Functions and the API proxy from the host page, in a real Chromium, host page and portal on
different origins: showFunction's form, invokeFunction's two result shapes, request()."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from portal.demo import DemoStack

from .conftest import click_away, consent, events, open_host, portal_ready, press_away, wait_event

pytestmark = pytest.mark.e2e

DIALOG = "[role=dialog]"
#: Set to a directory to keep screenshots of the function form (for review by eye).
SHOTS = os.environ.get("PORTAL_FUNCTION_SHOTS")

SHOW = """([name, params, account, mode, container, layout]) => {
  window.fnResults = window.fnResults || [];
  window.portal.showFunction(name, params, account, mode, container, layout).then(
    (value) => window.fnResults.push({ ok: true, value }),
    (err) => window.fnResults.push({ ok: false, type: err.type, message: err.message }));
}"""

SETTLE = """(expr) => window.portal[expr.method](...expr.args).then(
  (value) => ({ ok: true, value }),
  (err) => ({ ok: false, type: err.type, status: err.status, body: err.body, message: err.message }))"""


def shoot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def call(page: Page, method: str, *args: Any) -> dict[str, Any]:
    """``await portal[method](...args)`` in the host page: ``{ok, value}`` or ``{ok: false, type…}``."""
    result: dict[str, Any] = page.evaluate(SETTLE, {"method": method, "args": list(args)})
    return result


def connect_via_sdk(page: Page, user: str = "ada") -> str:
    """``connectApp('sandbox')`` from the host page's button and the real provider popup."""
    with page.expect_popup() as info:
        page.click("#connect")
    popup = info.value
    with popup.expect_event("close"):
        consent(popup, user)
    page.wait_for_function("window.connectResults.length > 0")
    result = page.evaluate("window.connectResults[0]")
    assert result["ok"], result
    return str(result["value"])


def show_function(
    page: Page,
    params: dict[str, Any],
    account: str | None = None,
    mode: str = "modal",
    container: str | None = None,
    layout: str = "wide",
) -> None:
    page.evaluate(SHOW, ["sandbox-create-contact", params, account, mode, container, layout])


def results(page: Page) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = page.evaluate("window.fnResults || []")
    return got


def wait_result(page: Page, count: int = 1) -> dict[str, Any]:
    page.wait_for_function("(n) => (window.fnResults || []).length >= n", arg=count)
    return results(page)[count - 1]


def submit(frame: FrameLocator) -> None:
    """Continue; a valid form closes the modal, so the click may remove its own iframe."""
    click_away(frame.get_by_role("button", name="Continue"))


@pytest.fixture
def host(page: Page, e2e_stack: DemoStack, user_id: str) -> Iterator[Page]:
    """The e2e host page, on another origin than the portal, with a sandbox account connected.

    Fails the test if any frame logged a Content-Security-Policy violation."""
    assert urlsplit(e2e_stack.host.url).netloc != urlsplit(e2e_stack.portal.url).netloc
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    open_host(page, e2e_stack, user_id)
    connect_via_sdk(page)
    yield page
    assert violations == []


def test_show_function_validates_then_resolves_and_invoke_runs_it(host: Page) -> None:
    page = host
    show_function(page, {"name": "Ada"})
    frame = page.frame_locator(f"{DIALOG} iframe")
    portal_ready(frame)
    name = frame.get_by_label("Name")
    email = frame.get_by_label("Email")
    expect(name).to_have_value("Ada")
    expect(email).to_have_value("")
    expect(frame.get_by_text("Uses your Sandbox CRM account")).to_contain_text("ada@sandbox.test")
    expect(page.locator(DIALOG)).to_have_attribute("aria-label", "Function form")
    shoot(page, "function-modal-wide")

    email.fill("not-an-email")
    submit(frame)
    error = frame.locator(".portal-field--invalid .portal-field__errors")
    expect(error).to_have_text("Enter a valid e-mail address.")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()  # focus moves to the first field to fix
    expect(email).to_have_value("not-an-email")
    expect(name).to_have_value("Ada")
    shoot(page, "function-modal-wide-error")
    assert results(page) == []  # nothing resolves while the form is invalid

    email.fill("ada.lovelace@example.com")
    submit(frame)
    resolved = wait_result(page)
    params = {"name": "Ada", "email": "ada.lovelace@example.com"}
    assert resolved == {"ok": True, "value": params}
    expect(page.locator(DIALOG)).to_have_count(0)  # closed on success
    wait_event(page, "modal-closed")

    invoked = call(page, "invokeFunction", "sandbox-create-contact", params)
    assert invoked["ok"], invoked
    result = invoked["value"]
    assert result["network_code"] == 201
    assert result["output"]["name"] == "Ada"
    assert result["output"]["email"] == "ada.lovelace@example.com"
    assert result["output"]["id"]
    assert "next_page" not in result

    not_run = call(page, "invokeFunction", "sandbox-create-contact", {"name": "Ada", "email": "x"})
    assert not_run["ok"], not_run  # not executed is a result, not a rejection
    assert not_run["value"]["error"]
    assert [d["field"] for d in not_run["value"]["error_details"]] == ["email"]
    assert "network_code" not in not_run["value"]

    unknown = call(page, "invokeFunction", "sandbox-nope", {})
    assert unknown["ok"] and unknown["value"]["error"] == "unknown_function"

    listed = call(page, "invokeFunction", "sandbox-list-contacts", {"limit": 1})
    assert listed["value"]["network_code"] == 200
    assert len(listed["value"]["output"]) == 1 and listed["value"]["next_page"]


def test_get_function_and_request_through_the_proxy(host: Page) -> None:
    page = host
    signature = call(page, "getFunction", "sandbox-create-contact")["value"]
    assert signature["name"] == "sandbox-create-contact" and signature["app"] == "sandbox"
    assert signature["parameters"]["required"] == ["name", "email"]
    assert signature["paginated"] is False and signature["required_scopes"] == []

    listed = call(page, "request", "sandbox", "contacts?limit=2")
    assert listed["ok"], listed
    assert len(listed["value"]["data"]) == 2 and listed["value"]["next_cursor"]

    created = call(
        page,
        "request",
        "sandbox",
        "/contacts",
        {"method": "POST", "body": {"name": "Grace", "email": "grace@example.com"}},
    )
    assert created["ok"], created
    assert created["value"]["name"] == "Grace"
    again = call(page, "request", "sandbox", f"contacts/{created['value']['id']}")
    assert again["value"]["email"] == "grace@example.com"

    bad = call(page, "request", "sandbox", "contacts", {"method": "POST", "body": {"name": ""}})
    assert (bad["ok"], bad["type"], bad["status"]) == (False, "http_error", 400)
    assert bad["body"]["error"] == "invalid_request"

    missing = call(page, "request", "sandbox-basic", "files")
    assert (missing["ok"], missing["type"], missing["status"]) == (False, "http_error", 404)
    assert missing["body"]["error"] == "not_connected"


def test_closing_the_function_modal_rejects_cancelled(host: Page) -> None:
    page = host
    show_function(page, {"name": "Ada"})
    frame = page.frame_locator(f"{DIALOG} iframe")
    portal_ready(frame)
    expect(frame.get_by_label("Name")).to_have_value("Ada")
    click_away(frame.get_by_role("button", name="Cancel"))
    assert wait_result(page)["type"] == "cancelled"
    expect(page.locator(DIALOG)).to_have_count(0)

    show_function(page, {}, layout="narrow")
    frame = page.frame_locator(f"{DIALOG} iframe")
    portal_ready(frame)
    expect(frame.get_by_label("Name")).to_be_visible()
    shoot(page, "function-modal-narrow")
    press_away(frame)
    assert wait_result(page, 2)["type"] == "cancelled"
    assert len(events(page, "modal-closed")) == 2


def test_inline_narrow_function_form_resolves_and_stays(host: Page) -> None:
    page = host
    show_function(page, {"email": "ada@example.com"}, None, "inline", "container", "narrow")
    frame = page.frame_locator("#container iframe")
    portal_ready(frame)
    frame.get_by_label("Name").fill("Ada Inline")
    shoot(page, "function-inline-narrow")
    submit(frame)
    assert wait_result(page) == {
        "ok": True,
        "value": {"name": "Ada Inline", "email": "ada@example.com"},
    }
    expect(frame.get_by_text("Values saved.")).to_be_visible()
    shoot(page, "function-inline-narrow-done")
    frame.get_by_role("button", name="Edit values").click()
    expect(frame.get_by_label("Name")).to_have_value("Ada Inline")
