"""The operators' page in real Chromium (issue 19 items 2 and 6): signed in with the app
secret typed into the form, it lists an unhealthy account with its reason, filters the
operators' log, opens an entry's detail and pages to older entries (each further request
asks for the secret again: nothing is kept)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from portal import oplog
from portal.demo import DEMO_APP_KEY, DEMO_APP_SECRET, DemoStack
from portal.store import ConnectedAccount, utcnow

from .conftest import insert_account

pytestmark = pytest.mark.e2e


def test_admin_log_filters_detail_and_paging(page: Page, e2e_stack: DemoStack) -> None:
    user = f"oplog-e2e-{uuid.uuid4().hex[:8]}"
    account = insert_account(e2e_stack, user, "ops@sandbox.test", f"ops-{user}")
    state = e2e_stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        row = db.get(ConnectedAccount, account["id"])
        assert row is not None
        row.status = "needs_reauth"
        row.health_reason = "The verification call /me answered HTTP 401."
        row.health_checked_at = utcnow()
        for n in range(60):
            oplog.record(
                db,
                project=DEMO_APP_KEY,
                kind="function_call",
                status="failed",
                user_id=user,
                app="sandbox",
                account_id=account["id"],
                duration_ms=n,
                ref_id=f"fc_e2e_{n}",
                request={"function": "sandbox-list-contacts", "method": "GET", "params": []},
                error="HTTP 503",
            )
        oplog.record(db, project=DEMO_APP_KEY, kind="webhook", status="succeeded", user_id=user)

    page.goto(e2e_stack.portal.url + "/portal/admin")
    page.get_by_label("App secret").fill(DEMO_APP_SECRET)
    page.get_by_role("button", name="Show the overview").click()
    health = page.locator("[data-portal-unhealthy]")
    expect(health).to_contain_text(account["id"])
    expect(health).to_contain_text("answered HTTP 401")

    filters = page.locator("[data-portal-log-filters]")
    filters.get_by_label("User").fill(user)
    filters.get_by_label("Status").select_option("failed")
    filters.get_by_label("App secret").fill(DEMO_APP_SECRET)
    filters.get_by_role("button", name="Filter").click()
    entries = page.locator("[data-portal-log] > li")
    expect(entries).to_have_count(oplog.PAGE_SIZE)
    expect(page.locator("[data-portal-log-filters]").get_by_label("User")).to_have_value(user)

    first = entries.first
    expect(first.locator("dl")).to_be_hidden()
    first.locator("summary").click()
    expect(first.locator("dl")).to_be_visible()
    expect(first.locator("dl")).to_contain_text("sandbox-list-contacts")
    expect(first.locator("dl")).to_contain_text("HTTP 503")
    expect(first.locator("dl")).to_contain_text(account["id"])
    assert DEMO_APP_SECRET not in page.content()
    assert "e2e-not-a-real-token" not in page.content()

    older = page.locator("form", has=page.get_by_role("button", name="Older entries"))
    older.get_by_label("App secret").fill(DEMO_APP_SECRET)
    older.get_by_role("button", name="Older entries").click()
    expect(entries).to_have_count(10)  # 60 failed entries: 50, then the 10 oldest
    expect(page.get_by_role("button", name="Older entries")).to_have_count(0)
    expect(entries.last).to_contain_text("fc_e2e_0")  # the oldest
